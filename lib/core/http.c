#include "http.h"
#include "../core/sha256.h"

#include "lazy_curl.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool is_remote(const char *url)
{
	return bng_str_has_prefix(url, "http://") || bng_str_has_prefix(url, "https://");
}

static const char *local_path(const char *url)
{
	return bng_str_has_prefix(url, "file://") ? url + strlen("file://") : url;
}

typedef struct {
	int fd;             /* download target, or -1 for memory */
	char *buf;
	size_t len, cap;
	uint64_t max, done, total;
	bng_sha256 sha;
	bng_op *op;
	const char *url;
	struct timespec last_event;
	bool too_big, write_failed;
} xfer;

static size_t on_data(char *data, size_t size, size_t n, void *ud)
{
	xfer *x = ud;
	size_t len = size * n;
	if (x->done + len > x->max) {
		x->too_big = true;
		return 0;
	}
	if (x->fd >= 0) {
		for (size_t off = 0; off < len;) {
			ssize_t w = write(x->fd, data + off, len - off);
			if (w <= 0) {
				x->write_failed = true;
				return 0;
			}
			off += (size_t)w;
		}
	} else {
		if (x->len + len + 1 > x->cap) {
			x->cap = (x->len + len + 1) * 2;
			x->buf = realloc(x->buf, x->cap);
			if (!x->buf)
				abort();
		}
		memcpy(x->buf + x->len, data, len);
		x->len += len;
		x->buf[x->len] = '\0';
	}
	bng_sha256_update(&x->sha, data, len);
	x->done += len;
	return len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	xfer *x = ud;
	if (bng_op_cancelled(x->op))
		return 1;
	x->total = dltotal > 0 ? (uint64_t)dltotal : 0;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (x->op && x->fd >= 0 && (now.tv_sec - x->last_event.tv_sec) * 1000 + (now.tv_nsec - x->last_event.tv_nsec) / 1000000 >= 200) {
		x->last_event = now;
		bng_op_event(x->op, json_pack("{s:s,s:s,s:I,s:I}", "stage", "download", "url", x->url, "done",
					      (json_int_t)x->done, "total", (json_int_t)x->total));
	}
	return 0;
}

static int fetch(const char *url, xfer *x)
{
	CURL *c = curl_easy_init();
	if (!c)
		return bng_err(BANGER_ENOMEM, "cannot start an HTTP transfer");
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a stalled server fails instead of hanging */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "banger");
	CURLcode cc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (cc == CURLE_OK)
		return 0;
	if (cc == CURLE_ABORTED_BY_CALLBACK)
		return bng_err(BANGER_ECANCELED, "download of %s cancelled", url);
	if (x->too_big)
		return bng_err(BANGER_ETOOBIG, "%s is larger than the %llu bytes expected", url, (unsigned long long)x->max);
	if (x->write_failed)
		return bng_err_errno(BANGER_EIO, errno, "cannot save %s", url);
	if (cc == CURLE_HTTP_RETURNED_ERROR)
		return bng_err(status == 404 ? BANGER_ENOTFOUND : BANGER_EIO, "GET %s: HTTP %ld", url, status);
	return bng_err(BANGER_EIO, "GET %s: %s", url, *errbuf ? errbuf : curl_easy_strerror(cc));
}

int bng_http_get(const char *url, size_t max, char **body, size_t *len)
{
	if (!is_remote(url)) {
		size_t n;
		int rc = bng_read_file(local_path(url), body, &n);
		if (!rc && n > max) {
			free(*body);
			return bng_err(BANGER_ETOOBIG, "%s is larger than %zu bytes", url, max);
		}
		if (!rc && len)
			*len = n;
		return rc;
	}
	xfer x = {.fd = -1, .max = max, .url = url};
	bng_sha256_init(&x.sha);
	int rc = fetch(url, &x);
	if (rc) {
		free(x.buf);
		return rc;
	}
	if (!x.buf)
		x.buf = bng_strdup("");
	*body = x.buf;
	if (len)
		*len = x.len;
	return 0;
}

int bng_http_download(const char *url, const char *path, const char *sha256_hex, uint64_t max, bng_op *op)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return bng_err_errno(BANGER_EIO, errno, "cannot create %s", path);
	xfer x = {.fd = fd, .max = max, .op = op, .url = url};
	bng_sha256_init(&x.sha);
	int rc;
	if (is_remote(url)) {
		rc = fetch(url, &x);
	} else {
		int in = open(local_path(url), O_RDONLY | O_CLOEXEC);
		rc = in < 0 ? bng_err_errno(bng_code_from_errno(errno), errno, "cannot open %s", url) : 0;
		char buf[1 << 16];
		ssize_t n;
		while (!rc && (n = read(in, buf, sizeof(buf))) > 0)
			if (on_data(buf, 1, (size_t)n, &x) != (size_t)n)
				rc = x.too_big ? bng_err(BANGER_ETOOBIG, "%s is larger than expected", url)
					       : bng_err_errno(BANGER_EIO, errno, "cannot save %s", url);
		if (in >= 0)
			close(in);
	}
	if (!rc && fsync(fd) != 0)
		rc = bng_err_errno(BANGER_EIO, errno, "cannot save %s", path);
	close(fd);
	if (!rc && sha256_hex) {
		uint8_t d[BNG_SHA256_LEN];
		char hex[65];
		bng_sha256_final(&x.sha, d);
		bng_sha256_hex(d, hex);
		if (strcmp(hex, sha256_hex))
			rc = bng_err(BANGER_EPROTO, "sha256 mismatch for %s: expected %s, got %s", url, sha256_hex, hex);
	}
	if (rc)
		unlink(path);
	return rc;
}

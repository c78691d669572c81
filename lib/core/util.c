/* Small memory, string and file helpers. Allocation failure aborts: a
 * sandbox manager that cannot allocate a few bytes cannot recover usefully. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <time.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void *bng_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

void *bng_xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	if (!p)
		abort();
	return p;
}

char *bng_strdup(const char *s)
{
	if (!s)
		return NULL;
	char *p = strdup(s);
	if (!p)
		abort();
	return p;
}

char *bng_vasprintf(const char *fmt, va_list ap)
{
	char *out;
	if (vasprintf(&out, fmt, ap) < 0)
		abort();
	return out;
}

char *bng_asprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = bng_vasprintf(fmt, ap);
	va_end(ap);
	return s;
}

bool bng_str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int bng_mkdir_p(const char *path, mode_t mode)
{
	char *buf = bng_strdup(path);
	for (char *p = buf + 1;; p++) {
		bool end = *p == '\0';
		if (*p == '/' || end) {
			*p = '\0';
			if (mkdir(buf, mode) != 0 && errno != EEXIST) {
				int e = errno;
				int rc = bng_err_errno(bng_code_from_errno(e), e, "cannot create directory %s", buf);
				free(buf);
				return rc;
			}
			if (end)
				break;
			*p = '/';
		}
	}
	free(buf);
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return bng_err(BANGER_EIO, "%s exists and is not a directory", path);
	return 0;
}

int bng_read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return bng_err_errno(bng_code_from_errno(errno), errno, "cannot open %s", path);
	size_t cap = 4096, n = 0;
	char *buf = bng_xmalloc(cap);
	size_t r;
	while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (cap - n - 1 == 0) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
	}
	int failed = ferror(f);
	fclose(f);
	if (failed) {
		free(buf);
		return bng_err(BANGER_EIO, "cannot read %s", path);
	}
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

int bng_write_file_atomic(const char *path, const char *data, size_t len, mode_t mode)
{
	char *tmp = bng_asprintf("%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		int rc = bng_err_errno(bng_code_from_errno(errno), errno, "cannot create %s", tmp);
		free(tmp);
		return rc;
	}
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	int e = errno;
	if (off != len || fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
		if (off == len)
			e = errno;
		unlink(tmp);
		free(tmp);
		return bng_err_errno(bng_code_from_errno(e), e, "cannot write %s", path);
	}
	free(tmp);
	return 0;
}

int bng_dir_writable(const char *dir)
{
	int rc = bng_mkdir_p(dir, 0700);
	if (rc)
		return rc;
	char *probe = bng_asprintf("%s/.write-probe.%d", dir, (int)getpid());
	int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = bng_err_errno(bng_code_from_errno(errno), errno, "directory %s is not writable", dir);
	} else {
		close(fd);
		unlink(probe);
	}
	free(probe);
	return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) == 0 || errno == ENOENT ? 0 : -1;
}

int bng_rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : bng_err_errno(BANGER_EIO, errno, "cannot remove %s", path);
	if (nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS) != 0)
		return bng_err_errno(BANGER_EIO, errno, "cannot remove %s", path);
	return 0;
}

void bng_random_id(char out[13])
{
	unsigned char b[6] = {0};
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, b, sizeof(b)) != (ssize_t)sizeof(b)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		memcpy(b, &ts.tv_nsec, sizeof(b) < sizeof(ts.tv_nsec) ? sizeof(b) : sizeof(ts.tv_nsec));
	}
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < 6; i++)
		snprintf(out + i * 2, 3, "%02x", b[i]);
}

void bng_now_iso(char out[32])
{
	time_t now = time(NULL);
	struct tm tm;
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
}

int bng_check_name(const char *name, const char *what)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > 63)
		return bng_err(BANGER_EINVAL, "invalid %s name '%s': use 1-63 characters", what, name ? name : "");
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return bng_err(BANGER_EINVAL,
				       "invalid %s name '%s': use lowercase letters, digits and '-' only", what, name);
	}
	if (name[0] == '-' || name[n - 1] == '-')
		return bng_err(BANGER_EINVAL, "invalid %s name '%s': it cannot start or end with '-'", what, name);
	return 0;
}

BANGER_API int banger_check_name(const char *name)
{
	bng_err_clear();
	return bng_check_name(name, "vm");
}

char *bng_file_tail(const char *path, off_t since, size_t max_lines)
{
	char buf[4096];
	ssize_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0) {
		off_t from = st.st_size - (off_t)sizeof(buf) + 1;
		if (from < since)
			from = since;
		if (from < st.st_size)
			n = pread(fd, buf, sizeof(buf) - 1, from);
	}
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	const char *lines[16];
	size_t nl = 0;
	if (max_lines > BNG_ARRAY_LEN(lines))
		max_lines = BNG_ARRAY_LEN(lines);
	for (char *save = NULL, *l = strtok_r(buf, "\r\n", &save); l; l = strtok_r(NULL, "\r\n", &save)) {
		if (!*l)
			continue;
		if (nl && nl == max_lines) {
			memmove(lines, lines + 1, (nl - 1) * sizeof(lines[0]));
			nl--;
		}
		if (!max_lines)
			break;
		lines[nl++] = l;
	}
	size_t len = 1;
	for (size_t i = 0; i < nl; i++)
		len += strlen(lines[i]) + 2;
	char *out = bng_xmalloc(len);
	out[0] = '\0';
	for (size_t i = 0; i < nl; i++) {
		if (i)
			strcat(out, "; ");
		strcat(out, lines[i]);
	}
	return out;
}

char *bng_base64(const void *data, size_t len)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	char *out = bng_xmalloc((len + 2) / 3 * 4 + 1), *o = out;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < len ? p[i + 2] : 0);
		*o++ = abc[v >> 18 & 63];
		*o++ = abc[v >> 12 & 63];
		*o++ = i + 1 < len ? abc[v >> 6 & 63] : '=';
		*o++ = i + 2 < len ? abc[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

int bng_base64_decode(const char *text, char **out, size_t *len)
{
	size_t n = strlen(text);
	char *buf = bng_xmalloc(n / 4 * 3 + 3), *o = buf;
	uint32_t v = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		char c = text[i];
		int d = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
			: c == '+' ? 62 : c == '/' ? 63 : c == '=' ? -2 : -1;
		if (d == -2)
			break;
		if (d < 0) {
			free(buf);
			return bng_err(BANGER_EINVAL, "not base64: byte %zu is '%c'", i, c);
		}
		v = v << 6 | (uint32_t)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*o++ = (char)(v >> bits & 0xff);
		}
	}
	*out = buf;
	*len = (size_t)(o - buf);
	return 0;
}

long long bng_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

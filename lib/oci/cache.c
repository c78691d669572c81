/* The blob cache: OCI image layout under <cache_dir>/oci. A blob appears
 * under its final name only complete and verified (temp file, fsync,
 * rename), and a per-blob flock makes concurrent pulls, in threads or
 * processes, download each blob once; its lock file is removed on release. */
#include "oci_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK (1 << 20)

bool oci_digest_valid(const char *d)
{
	if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
		return false;
	for (const char *p = d + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return bng_err_errno(bng_code_from_errno(errno), errno, "cannot open %s", dir);
	int rc = fsync(fd) == 0 ? 0 : bng_err_errno(BANGER_EIO, errno, "cannot sync %s", dir);
	close(fd);
	return rc;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Atomic write with a unique temp name: bng_write_file_atomic's per-pid
 * temp name would collide between threads writing the same file. */
static int write_unique(const char *path, const char *data, size_t len)
{
	char *tmp = bng_asprintf("%s.tmp.XXXXXX", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		int rc = bng_err_errno(bng_code_from_errno(errno), errno, "cannot create a file next to %s", path);
		free(tmp);
		return rc;
	}
	int rc = 0;
	if (fchmod(fd, 0644) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0)
		rc = bng_err_errno(BANGER_EIO, errno, "cannot write %s", tmp);
	if (close(fd) != 0 && !rc)
		rc = bng_err_errno(BANGER_EIO, errno, "cannot write %s", tmp);
	if (!rc && rename(tmp, path) != 0)
		rc = bng_err_errno(BANGER_EIO, errno, "cannot rename %s to %s", tmp, path);
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

int oci_cache_open(oci_cache *c, const char *cache_dir)
{
	memset(c, 0, sizeof(*c));
	if (!cache_dir || !*cache_dir)
		return bng_err(BANGER_EINVAL, "no cache directory given for the image cache");
	c->root = bng_asprintf("%s/oci", cache_dir);
	c->blobs = bng_asprintf("%s/blobs/sha256", c->root);
	int rc = bng_mkdir_p(c->blobs, 0755);
	if (!rc) {
		char *layout = bng_asprintf("%s/oci-layout", c->root);
		if (access(layout, F_OK) != 0) {
			static const char marker[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
			rc = write_unique(layout, marker, sizeof(marker) - 1);
		}
		free(layout);
	}
	if (rc)
		oci_cache_close(c);
	return rc;
}

void oci_cache_close(oci_cache *c)
{
	free(c->root);
	free(c->blobs);
	c->root = c->blobs = NULL;
}

char *oci_cache_path(const oci_cache *c, const char *digest)
{
	return bng_asprintf("%s/%s", c->blobs, digest + 7);
}

static int mismatch(const char *digest, const uint8_t got[BNG_SHA256_LEN], uint64_t got_size, int64_t want_size)
{
	char hex[65];
	bng_sha256_hex(got, hex);
	if (want_size >= 0 && got_size != (uint64_t)want_size)
		return bng_err(BANGER_EPROTO, "digest mismatch for %s: got sha256:%s (%llu bytes, expected %lld)", digest,
			       hex, (unsigned long long)got_size, (long long)want_size);
	return bng_err(BANGER_EPROTO, "digest mismatch for %s: got sha256:%s", digest, hex);
}

int oci_cache_verify(const char *path, const char *digest, int64_t size, bng_op *op)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return bng_err(BANGER_ENOTFOUND, "%s is not cached", digest);
		return bng_err_errno(bng_code_from_errno(errno), errno, "cannot open %s", path);
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int rc = bng_err_errno(BANGER_EIO, errno, "cannot stat %s", path);
		close(fd);
		return rc;
	}
	if (size >= 0 && st.st_size != size) {
		close(fd);
		return bng_err(BANGER_EPROTO, "cached %s has %lld bytes, expected %lld", digest, (long long)st.st_size,
			       (long long)size);
	}
	bng_sha256 sha;
	bng_sha256_init(&sha);
	char *buf = bng_xmalloc(READ_CHUNK);
	int rc = 0;
	uint64_t total = 0;
	for (;;) {
		if (bng_op_cancelled(op)) {
			rc = bng_err(BANGER_ECANCELED, "cancelled while verifying %s", digest);
			break;
		}
		ssize_t r = read(fd, buf, READ_CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = bng_err_errno(BANGER_EIO, errno, "cannot read %s", path);
			break;
		}
		if (r == 0)
			break;
		bng_sha256_update(&sha, buf, (size_t)r);
		total += (uint64_t)r;
	}
	free(buf);
	close(fd);
	if (rc)
		return rc;
	uint8_t got[BNG_SHA256_LEN];
	bng_sha256_final(&sha, got);
	char hex[65];
	bng_sha256_hex(got, hex);
	if (strcmp(hex, digest + 7) != 0 || (size >= 0 && total != (uint64_t)size))
		return mismatch(digest, got, total, size);
	return 0;
}

/* Takes an exclusive flock on path, creating the file. Whoever holds it
 * removes the file before letting go (unlock_file), so no lock file stays
 * in the cache; a waiter that then gets the lock of a removed file sees the
 * path gone, or naming a newer file, and starts over on that one. With op,
 * the wait polls op (a cancelled pull stops waiting; what names the lock
 * in that error); without, it blocks. */
static int lock_file(const char *path, bng_op *op, const char *what, int *out)
{
	*out = -1;
	for (;;) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			return bng_err_errno(bng_code_from_errno(errno), errno, "cannot open lock file %s", path);
		int rc = 0;
		while (!rc && flock(fd, op ? LOCK_EX | LOCK_NB : LOCK_EX) != 0) {
			if (errno == EINTR)
				continue;
			if (errno != EWOULDBLOCK)
				rc = bng_err_errno(BANGER_EIO, errno, "cannot lock %s", path);
			else if ((rc = bng_op_sleep(op, 50)) != 0)
				rc = bng_err(rc, "cancelled while waiting for another pull of %s", what);
		}
		struct stat held, named;
		if (!rc && fstat(fd, &held) != 0)
			rc = bng_err_errno(BANGER_EIO, errno, "cannot stat %s", path);
		if (!rc) {
			if (stat(path, &named) == 0) {
				if (held.st_dev == named.st_dev && held.st_ino == named.st_ino) {
					*out = fd;
					return 0;
				}
			} else if (errno != ENOENT) {
				rc = bng_err_errno(BANGER_EIO, errno, "cannot stat %s", path);
			}
		}
		close(fd); /* a removed file: lock the one the path names now */
		if (rc)
			return rc;
	}
}

static void unlock_file(const char *path, int fd)
{
	if (fd < 0)
		return;
	unlink(path); /* still held: nobody else can have it */
	close(fd);    /* releases the flock */
}

static char *blob_lock_path(const oci_cache *c, const char *digest)
{
	return bng_asprintf("%s/%s.lock", c->blobs, digest + 7);
}

int oci_cache_lock(const oci_cache *c, const char *digest, bng_op *op, int *out)
{
	char *path = blob_lock_path(c, digest);
	int rc = lock_file(path, op, digest, out);
	free(path);
	return rc;
}

void oci_cache_unlock(const oci_cache *c, const char *digest, int fd)
{
	char *path = blob_lock_path(c, digest);
	unlock_file(path, fd);
	free(path);
}

/* Temp files of this blob left by a killed pull: with the lock held nobody
 * else can be writing one. */
static void remove_stale_temps(const oci_cache *c, const char *digest)
{
	DIR *d = opendir(c->blobs);
	if (!d)
		return;
	char prefix[80];
	int n = snprintf(prefix, sizeof(prefix), "%s.tmp.", digest + 7);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, (size_t)n) == 0)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

/* Removes what killed pulls left in <cache_dir>/oci/blobs/sha256: a blob's
 * temp files and its lock file, for each blob whose lock nobody holds (a
 * pull running in another process keeps its own). Engine start runs it. */
int bng_oci_cache_sweep(const char *cache_dir)
{
	char *blobs = bng_asprintf("%s/oci/blobs/sha256", cache_dir);
	DIR *d = opendir(blobs);
	if (!d) {
		free(blobs);
		return 0;
	}
	json_t *seen = json_object();
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		if (strspn(n, "0123456789abcdef") == 64 && (!strcmp(n + 64, ".lock") || !strncmp(n + 64, ".tmp.", 5))) {
			char hex[65];
			memcpy(hex, n, 64);
			hex[64] = '\0';
			json_object_set_new(seen, hex, json_true());
		}
	}
	closedir(d);
	const char *hex;
	json_t *v;
	oci_cache c = {.blobs = blobs};
	json_object_foreach(seen, hex, v) {
		char *digest = bng_asprintf("sha256:%s", hex);
		char *path = blob_lock_path(&c, digest);
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		struct stat held, named;
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &held) == 0 && stat(path, &named) == 0 &&
		    held.st_dev == named.st_dev && held.st_ino == named.st_ino) {
			remove_stale_temps(&c, digest);
			unlock_file(path, fd);
		} else if (fd >= 0) {
			close(fd); /* a pull holds it (or just replaced it): its files are its own */
		}
		free(path);
		free(digest);
	}
	json_decref(seen);
	free(blobs);
	return 0;
}

int oci_writer_open(const oci_cache *c, const char *digest, oci_writer *w)
{
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	remove_stale_temps(c, digest);
	w->final = oci_cache_path(c, digest);
	w->tmp = bng_asprintf("%s.tmp.XXXXXX", w->final);
	w->fd = mkostemp(w->tmp, O_CLOEXEC);
	if (w->fd < 0) {
		int rc = bng_err_errno(bng_code_from_errno(errno), errno, "cannot create a temp file in %s", c->blobs);
		free(w->tmp);
		free(w->final);
		w->tmp = w->final = NULL;
		return rc;
	}
	bng_sha256_init(&w->sha);
	return 0;
}

int oci_writer_write(oci_writer *w, const void *data, size_t len)
{
	if (write_all(w->fd, data, len) != 0)
		return bng_err_errno(BANGER_EIO, errno, "cannot write %s", w->tmp);
	bng_sha256_update(&w->sha, data, len);
	w->written += len;
	return 0;
}

int oci_writer_commit(oci_writer *w, const char *digest, uint64_t size)
{
	uint8_t got[BNG_SHA256_LEN];
	char hex[65];
	bng_sha256_final(&w->sha, got);
	bng_sha256_hex(got, hex);
	int rc = 0;
	if (w->written != size || strcmp(hex, digest + 7) != 0)
		rc = mismatch(digest, got, w->written, (int64_t)size);
	else if (fchmod(w->fd, 0644) != 0 || fsync(w->fd) != 0)
		rc = bng_err_errno(BANGER_EIO, errno, "cannot write %s", w->tmp);
	if (close(w->fd) != 0 && !rc)
		rc = bng_err_errno(BANGER_EIO, errno, "cannot write %s", w->tmp);
	w->fd = -1;
	if (!rc && rename(w->tmp, w->final) != 0)
		rc = bng_err_errno(BANGER_EIO, errno, "cannot rename %s to %s", w->tmp, w->final);
	if (!rc) {
		char *dir = bng_strdup(w->final);
		*strrchr(dir, '/') = '\0';
		rc = fsync_dir(dir);
		free(dir);
	}
	if (rc)
		unlink(w->tmp);
	free(w->tmp);
	free(w->final);
	w->tmp = w->final = NULL;
	return rc;
}

void oci_writer_abort(oci_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp)
		unlink(w->tmp);
	free(w->tmp);
	free(w->final);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
}

int oci_cache_put(const oci_cache *c, const char *digest, const void *data, size_t len, bng_op *op)
{
	int lock;
	int rc = oci_cache_lock(c, digest, op, &lock);
	if (rc)
		return rc;
	char *path = oci_cache_path(c, digest);
	if (oci_cache_verify(path, digest, (int64_t)len, op) != 0) {
		oci_writer w;
		rc = oci_writer_open(c, digest, &w);
		if (!rc) {
			rc = oci_writer_write(&w, data, len);
			if (rc)
				oci_writer_abort(&w);
			else
				rc = oci_writer_commit(&w, digest, len);
		}
	}
	free(path);
	oci_cache_unlock(c, digest, lock);
	return rc;
}

/* Reads at most max bytes: -1 when absent, -2 when longer (so corrupt),
 * -3 when unreadable. */
static int read_bounded(const char *path, size_t max, char **data, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -1 : -3;
	char *buf = bng_xmalloc(max + 1);
	size_t n = 0;
	int rc = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, max + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -3;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			rc = -2;
			break;
		}
	}
	close(fd);
	if (rc) {
		free(buf);
		return rc;
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return 0;
}

int oci_cache_get(const oci_cache *c, const char *digest, size_t max, bng_op *op, char **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	char *path = oci_cache_path(c, digest);
	char *buf = NULL;
	size_t n = 0;
	int r = read_bounded(path, max, &buf, &n);
	if (r == 0) {
		char got[72];
		bng_sha256_digest(buf, n, got);
		if (strcmp(got, digest) == 0) {
			free(path);
			*data = buf;
			*len = n;
			return 0;
		}
		free(buf);
	}
	if (r != -1) {
		/* Corrupt or unreadable: drop it under the lock, rechecking in
		 * case another pull just replaced it. */
		int lock;
		if (oci_cache_lock(c, digest, op, &lock) == 0) {
			if (oci_cache_verify(path, digest, -1, op) == BANGER_EPROTO)
				unlink(path);
			oci_cache_unlock(c, digest, lock);
		}
	}
	free(path);
	return bng_err(BANGER_ENOTFOUND, "%s is not cached", digest);
}

int oci_cache_tag(const oci_cache *c, const char *ref_name, const char *media_type, const char *digest,
		  uint64_t size)
{
	char *lock_path = bng_asprintf("%s/index.json.lock", c->root);
	char *path = bng_asprintf("%s/index.json", c->root);
	/* Held only for a read-modify-write of a small file. */
	int fd;
	int rc = lock_file(lock_path, NULL, "index.json", &fd);
	if (rc)
		goto out;
	json_t *index = json_load_file(path, 0, NULL);
	json_t *old = json_is_object(index) ? json_object_get(index, "manifests") : NULL;
	json_t *list = json_array();
	size_t i;
	json_t *m;
	json_array_foreach(json_is_array(old) ? old : NULL, i, m) {
		const char *name = json_string_value(
			json_object_get(json_object_get(m, "annotations"), "org.opencontainers.image.ref.name"));
		if (!name || strcmp(name, ref_name) != 0)
			json_array_append(list, m);
	}
	json_decref(index);
	json_array_append_new(list, json_pack("{s:s,s:s,s:I,s:{s:s}}", "mediaType", media_type, "digest", digest,
					      "size", (json_int_t)size, "annotations",
					      "org.opencontainers.image.ref.name", ref_name));
	index = json_pack("{s:i,s:s,s:o}", "schemaVersion", 2, "mediaType", "application/vnd.oci.image.index.v1+json",
			  "manifests", list);
	char *text = index ? json_dumps(index, JSON_INDENT(2)) : NULL;
	json_decref(index);
	if (!text) {
		rc = bng_err(BANGER_ENOMEM, "cannot encode %s", path);
		goto out;
	}
	rc = write_unique(path, text, strlen(text));
	free(text);
out:
	unlock_file(lock_path, fd);
	free(lock_path);
	free(path);
	return rc;
}

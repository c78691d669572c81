/* bzImage -> vmlinux, and the in-process decompressor it shares with
 * compressed modules. Boot protocol facts: Documentation/x86/boot.rst. */
#include "kernel.h"

#include "../core/lazy_archive.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Offsets in the real-mode header (boot.rst, "The Real-Mode Kernel Header"). */
#define HDR_SETUP_SECTS 0x1f1
#define HDR_BOOT_FLAG 0x1fe
#define HDR_MAGIC 0x202 /* "HdrS" */
#define HDR_VERSION 0x206
#define HDR_PAYLOAD_OFFSET 0x248 /* protocol 2.08+, relative to the protected-mode code */
#define HDR_PAYLOAD_LENGTH 0x24c
#define HDR_END 0x250

#define MAX_KERNEL_FILE (512u << 20) /* no real bzImage comes near this */
#define MAX_VMLINUX ((size_t)1 << 30)

static uint32_t le32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* Compressions the kernel build can use for its payload (and module tools
 * for modules), by magic. The kernel appends the uncompressed size as a
 * little-endian u32 to every format but gzip, where it is the trailer's own
 * ISIZE field. */
typedef struct {
	const char *name;
	unsigned char magic[6];
	size_t magic_len;
	bool size_appended;
	int filter; /* ARCHIVE_FILTER_*, for archive_read_support_filter_by_code */
} codec;

static const codec codecs[] = {
	{"gzip", {0x1f, 0x8b}, 2, false, ARCHIVE_FILTER_GZIP},
	{"xz", {0xfd, '7', 'z', 'X', 'Z', 0x00}, 6, true, ARCHIVE_FILTER_XZ},
	{"zstd", {0x28, 0xb5, 0x2f, 0xfd}, 4, true, ARCHIVE_FILTER_ZSTD},
	{"bzip2", {'B', 'Z', 'h'}, 3, true, ARCHIVE_FILTER_BZIP2},
	{"lz4", {0x02, 0x21, 0x4c, 0x18}, 4, true, ARCHIVE_FILTER_LZ4}, /* legacy frame (lz4 -l) */
	{"lz4", {0x04, 0x22, 0x4d, 0x18}, 4, true, ARCHIVE_FILTER_LZ4},
	{"lzma", {0x5d, 0x00, 0x00}, 3, true, ARCHIVE_FILTER_LZMA},
};

static const codec *codec_for(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < BNG_ARRAY_LEN(codecs); i++)
		if (len >= codecs[i].magic_len && !memcmp(p, codecs[i].magic, codecs[i].magic_len))
			return &codecs[i];
	return NULL;
}

typedef int (*sink_fn)(void *ud, const void *buf, size_t n);

/* Streams the decompressed bytes of data through sink. Only the detected
 * codec's filter is registered, and one that would run an external program
 * (ARCHIVE_WARN) is refused: decompression stays in process. */
static int unpack_stream(const codec *c, const void *data, size_t len, size_t max_out, const char *what,
			 sink_fn sink, void *ud, size_t *total)
{
	struct archive *a = archive_read_new();
	if (!a)
		return bng_err(BANGER_ENOMEM, "out of memory");
	int rc = 0;
	if (archive_read_support_filter_by_code(a, c->filter) != ARCHIVE_OK) {
		rc = bng_err(BANGER_EUNSUPPORTED,
			     "%s is %s-compressed but this libarchive cannot unpack %s in process: "
			     "install a libarchive built with %s support",
			     what, c->name, c->name, c->name);
		goto out;
	}
	archive_read_support_format_raw(a);
	struct archive_entry *ent;
	if (archive_read_open_memory(a, data, len) != ARCHIVE_OK || archive_read_next_header(a, &ent) != ARCHIVE_OK) {
		rc = bng_err(BANGER_EINVAL, "cannot unpack %s (%s): %s", what, c->name, archive_error_string(a));
		goto out;
	}
	if (archive_filter_count(a) < 2) { /* only the raw "none" filter: the codec did not recognise it */
		rc = bng_err(BANGER_EINVAL, "%s looks %s-compressed but is not valid %s data", what, c->name, c->name);
		goto out;
	}
	char buf[64 * 1024];
	*total = 0;
	for (;;) {
		la_ssize_t n = archive_read_data(a, buf, sizeof(buf));
		if (n == 0)
			break;
		if (n < 0) {
			rc = bng_err(BANGER_EINVAL, "cannot unpack %s (%s, corrupt or truncated): %s", what, c->name,
				     archive_error_string(a));
			goto out;
		}
		if ((size_t)n > max_out - *total) {
			rc = bng_err(BANGER_ETOOBIG, "%s unpacks to more than %zu MiB: refusing it", what, max_out >> 20);
			goto out;
		}
		*total += (size_t)n;
		if ((rc = sink(ud, buf, (size_t)n)))
			goto out;
	}
out:
	archive_read_free(a);
	return rc;
}

typedef struct {
	char *buf;
	size_t len, cap;
} membuf;

static int mem_sink(void *ud, const void *buf, size_t n)
{
	membuf *m = ud;
	if (m->len + n > m->cap) {
		size_t cap = m->cap ? m->cap : 64 * 1024;
		while (cap < m->len + n)
			cap *= 2;
		char *p = realloc(m->buf, cap);
		if (!p)
			abort();
		m->buf = p;
		m->cap = cap;
	}
	memcpy(m->buf + m->len, buf, n);
	m->len += n;
	return 0;
}

int bng_kernel_unpack(const void *data, size_t len, size_t max_out, const char *what, void **out, size_t *out_len)
{
	const codec *c = codec_for(data, len);
	if (!c)
		return bng_err(BANGER_EINVAL, "%s is not gzip, xz, zstd, bzip2, lz4 or lzma data", what);
	membuf m = {0};
	size_t total = 0;
	int rc = unpack_stream(c, data, len, max_out, what, mem_sink, &m, &total);
	if (rc) {
		free(m.buf);
		return rc;
	}
	*out = m.buf ? m.buf : bng_xcalloc(1, 1);
	*out_len = m.len;
	return 0;
}

int bng_kernel_module_suffix(const char *name)
{
	static const char *const sfx[] = {".ko", ".ko.xz", ".ko.zst", ".ko.gz"};
	size_t n = strlen(name);
	for (size_t i = 0; i < BNG_ARRAY_LEN(sfx); i++) {
		size_t s = strlen(sfx[i]);
		if (n > s && !strcmp(name + n - s, sfx[i]))
			return (int)(s - 3);
	}
	return -1;
}

/* ---- output file: temp in the same directory, renamed when complete ---- */

typedef struct {
	int fd;
	char *tmp;
	const char *path;
	bool elf_checked;
} outfile;

static int out_open(outfile *o, const char *path)
{
	o->path = path;
	o->elf_checked = false;
	o->tmp = bng_asprintf("%s.tmp-XXXXXX", path);
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->fd < 0) {
		int rc = bng_err_errno(bng_code_from_errno(errno), errno, "cannot create %s", o->tmp);
		free(o->tmp);
		o->tmp = NULL;
		return rc;
	}
	return 0;
}

static int out_write(void *ud, const void *buf, size_t n)
{
	outfile *o = ud;
	if (!o->elf_checked) { /* the first block is at least 4 bytes unless the whole output is smaller */
		if (n < 4 || memcmp(buf, "\177ELF", 4) != 0)
			return bng_err(BANGER_EINVAL,
				       "the kernel inside the bzImage is not an ELF file: the bzImage is corrupt "
				       "or not an x86 Linux kernel");
		o->elf_checked = true;
	}
	const char *p = buf;
	while (n) {
		ssize_t w = write(o->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return bng_err_errno(bng_code_from_errno(errno), errno, "cannot write %s", o->tmp);
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Publishes the temp file (rc == 0) or removes it. */
static int out_close(outfile *o, int rc)
{
	if (!rc && (fchmod(o->fd, 0644) != 0 || close(o->fd) != 0))
		rc = bng_err_errno(BANGER_EIO, errno, "cannot write %s", o->tmp);
	else if (rc)
		close(o->fd);
	if (!rc && rename(o->tmp, o->path) != 0)
		rc = bng_err_errno(bng_code_from_errno(errno), errno, "cannot rename %s to %s", o->tmp, o->path);
	if (rc)
		unlink(o->tmp);
	free(o->tmp);
	return rc;
}

int bng_vmlinux_from_bzimage(const char *bzimage, const char *out_elf)
{
	return bng_kernel_vmlinux(bzimage, bzimage, out_elf);
}

int bng_kernel_vmlinux(const char *path, const char *bzimage, const char *out_elf)
{
	if (!path || !out_elf)
		return bng_err(BANGER_EINVAL, "bzImage and output paths are required");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bng_err_errno(bng_code_from_errno(errno), errno, "cannot open kernel %s", bzimage);
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return bng_err(BANGER_EINVAL, "kernel %s is not a regular file", bzimage);
	}
	if (st.st_size > MAX_KERNEL_FILE) {
		close(fd);
		return bng_err(BANGER_ETOOBIG, "kernel %s is %lld MiB: too big for a kernel image", bzimage,
			       (long long)(st.st_size >> 20));
	}
	size_t size = (size_t)st.st_size;
	const unsigned char *k = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
	close(fd);
	if (k == MAP_FAILED)
		return bng_err_errno(BANGER_EIO, errno, "cannot read kernel %s", bzimage);

	int rc;
	outfile o;
	if (size >= 4 && !memcmp(k, "\177ELF", 4)) { /* already a vmlinux */
		if (!(rc = out_open(&o, out_elf)))
			rc = out_close(&o, out_write(&o, k, size));
		goto out;
	}
	if (size < HDR_END || memcmp(k + HDR_MAGIC, "HdrS", 4) != 0 || le16(k + HDR_BOOT_FLAG) != 0xaa55) {
		rc = bng_err(BANGER_EINVAL,
			     "%s is not an x86 bzImage (no \"HdrS\" boot header) nor an ELF vmlinux: give the "
			     "vmlinuz from /boot or a kernel build's arch/x86/boot/bzImage",
			     bzimage);
		goto out;
	}
	uint16_t version = le16(k + HDR_VERSION);
	if (version < 0x208) {
		rc = bng_err(BANGER_EUNSUPPORTED,
			     "%s uses x86 boot protocol %u.%02u, older than 2.08 (Linux 2.6.26): it has no payload "
			     "fields; use a newer kernel",
			     bzimage, version >> 8, version & 0xff);
		goto out;
	}
	size_t setup_sects = k[HDR_SETUP_SECTS] ? k[HDR_SETUP_SECTS] : 4; /* 0 means 4, for old loaders */
	size_t pm_start = (setup_sects + 1) * 512;
	size_t off = le32(k + HDR_PAYLOAD_OFFSET), len = le32(k + HDR_PAYLOAD_LENGTH);
	if (pm_start > size || off > size - pm_start || len > size - pm_start - off || len < 8) {
		rc = bng_err(BANGER_EINVAL,
			     "%s is truncated or corrupt: its header puts the compressed kernel at %zu+%zu bytes "
			     "but the file has %zu",
			     bzimage, pm_start + off, len, size);
		goto out;
	}
	const unsigned char *payload = k + pm_start + off;
	const codec *c = codec_for(payload, len);
	if (!c) {
		rc = bng_err(BANGER_EUNSUPPORTED,
			     "%s: unknown compression for the kernel payload (magic %02x %02x %02x %02x); banger "
			     "reads gzip, xz, zstd, lzma, bzip2 and lz4 kernels (rebuild without LZO)",
			     bzimage, payload[0], payload[1], payload[2], payload[3]);
		goto out;
	}
	uint32_t want = le32(payload + len - 4);
	if ((rc = out_open(&o, out_elf)))
		goto out;
	size_t total = 0;
	rc = unpack_stream(c, payload, c->size_appended ? len - 4 : len, MAX_VMLINUX, bzimage, out_write, &o, &total);
	if (!rc && !o.elf_checked)
		rc = bng_err(BANGER_EINVAL, "the kernel inside %s is empty", bzimage);
	if (!rc && (uint32_t)total != want)
		rc = bng_err(BANGER_EINVAL, "%s is corrupt: its kernel unpacked to %zu bytes but the image records %u",
			     bzimage, total, want);
	rc = out_close(&o, rc);
out:
	if (size)
		munmap((void *)k, size);
	return rc;
}

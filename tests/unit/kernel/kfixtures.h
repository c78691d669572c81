/* Synthetic kernels for the lib/kernel tests: fake ELF files, modules with
 * a .modinfo section, bzImages around a compressed payload, .deb files.
 * Everything is built in memory with libarchive, nothing comes from the
 * host. */
#ifndef BANGER_TEST_KFIXTURES_H
#define BANGER_TEST_KFIXTURES_H

#include "check.h"

#include "kernel/kernel.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <stdint.h>

typedef struct {
	unsigned char *p;
	size_t len, cap;
} fx_buf;

static inline void fx_put(fx_buf *b, const void *data, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 256;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
}

static inline void fx_put_zero(fx_buf *b, size_t n)
{
	while (n--)
		fx_put(b, "", 1);
}

static inline void fx_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* An ELF64 x86-64 file: 64-byte header, then `filler` bytes. With interp,
 * one PT_INTERP program header (a dynamically linked program). */
static inline fx_buf fx_elf(size_t filler, bool interp)
{
	fx_buf b = {0};
	unsigned char h[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
	fx_le(h + 0x10, 2, 2);  /* ET_EXEC */
	fx_le(h + 0x12, 62, 2); /* EM_X86_64 */
	fx_le(h + 0x14, 1, 4);
	fx_le(h + 0x34, 64, 2); /* e_ehsize */
	fx_le(h + 0x36, 56, 2); /* e_phentsize */
	if (interp) {
		fx_le(h + 0x20, 64, 8); /* e_phoff */
		fx_le(h + 0x38, 1, 2);  /* e_phnum */
	}
	fx_put(&b, h, sizeof(h));
	if (interp) {
		unsigned char ph[56] = {0};
		fx_le(ph, 3, 4); /* PT_INTERP */
		fx_put(&b, ph, sizeof(ph));
	}
	for (size_t i = 0; i < filler; i++) {
		unsigned char c = (unsigned char)(i * 7 + i / 251);
		fx_put(&b, &c, 1);
	}
	return b;
}

/* A kernel module: ELF64 with a .modinfo section holding name=, depends=
 * and (when not NULL) softdep=. */
static inline fx_buf fx_module(const char *name, const char *depends, const char *softdep)
{
	fx_buf info = {0};
	char line[512];
	int n = snprintf(line, sizeof(line), "license=GPL");
	fx_put(&info, line, (size_t)n + 1);
	if (softdep) {
		n = snprintf(line, sizeof(line), "softdep=%s", softdep);
		fx_put(&info, line, (size_t)n + 1);
	}
	n = snprintf(line, sizeof(line), "depends=%s", depends);
	fx_put(&info, line, (size_t)n + 1);
	n = snprintf(line, sizeof(line), "name=%s", name);
	fx_put(&info, line, (size_t)n + 1);
	static const char shstr[] = "\0.modinfo\0.shstrtab\0.text";
	fx_buf b = {0};
	unsigned char h[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
	fx_le(h + 0x10, 1, 2); /* ET_REL */
	fx_le(h + 0x12, 62, 2);
	fx_le(h + 0x14, 1, 4);
	size_t info_off = 64, str_off = info_off + info.len, sh_off = (str_off + sizeof(shstr) + 7) & ~(size_t)7;
	fx_le(h + 0x28, sh_off, 8);
	fx_le(h + 0x34, 64, 2);
	fx_le(h + 0x3a, 64, 2); /* e_shentsize */
	fx_le(h + 0x3c, 4, 2);  /* e_shnum: null, .text, .modinfo, .shstrtab */
	fx_le(h + 0x3e, 3, 2);  /* e_shstrndx */
	fx_put(&b, h, sizeof(h));
	fx_put(&b, info.p, info.len);
	fx_put(&b, shstr, sizeof(shstr));
	fx_put_zero(&b, sh_off - b.len);
	unsigned char sh[4][64] = {{0}};
	fx_le(sh[1], 20, 4); /* ".text", empty */
	fx_le(sh[1] + 4, 1, 4);
	fx_le(sh[2], 1, 4); /* ".modinfo" */
	fx_le(sh[2] + 4, 1, 4);
	fx_le(sh[2] + 0x18, info_off, 8);
	fx_le(sh[2] + 0x20, info.len, 8);
	fx_le(sh[3], 10, 4); /* ".shstrtab" */
	fx_le(sh[3] + 4, 3, 4);
	fx_le(sh[3] + 0x18, str_off, 8);
	fx_le(sh[3] + 0x20, sizeof(shstr), 8);
	fx_put(&b, sh, sizeof(sh));
	free(info.p);
	return b;
}

/* data compressed by libarchive's writer ("gzip", "xz", "zstd", "bzip2",
 * "lzma", "lz4" frame). */
static inline fx_buf fx_compress(const char *filter, const void *data, size_t len)
{
	fx_buf b = {0};
	b.cap = len * 2 + 65536;
	b.p = malloc(b.cap);
	struct archive *a = archive_write_new();
	if (!b.p || !a || archive_write_set_format_raw(a) != ARCHIVE_OK ||
	    archive_write_add_filter_by_name(a, filter) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open_memory(a, b.p, b.cap, &b.len) != ARCHIVE_OK) {
		fprintf(stderr, "fx_compress %s: %s\n", filter, a ? archive_error_string(a) : "no memory");
		abort();
	}
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "data");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, (la_int64_t)len);
	if (archive_write_header(a, e) != ARCHIVE_OK || archive_write_data(a, data, len) != (la_ssize_t)len ||
	    archive_write_close(a) != ARCHIVE_OK) {
		fprintf(stderr, "fx_compress %s: %s\n", filter, archive_error_string(a));
		abort();
	}
	archive_entry_free(e);
	archive_write_free(a);
	return b;
}

/* The legacy LZ4 frame the kernel build uses (lz4 -l), which libarchive
 * reads but does not write: one block of literals only. */
static inline fx_buf fx_lz4_legacy(const void *data, size_t len)
{
	fx_buf blk = {0}, b = {0};
	unsigned char token = (unsigned char)((len >= 15 ? 15 : len) << 4);
	fx_put(&blk, &token, 1);
	if (len >= 15) {
		size_t rest = len - 15;
		for (; rest >= 255; rest -= 255)
			fx_put(&blk, "\xff", 1);
		unsigned char r = (unsigned char)rest;
		fx_put(&blk, &r, 1);
	}
	fx_put(&blk, data, len);
	unsigned char hdr[8] = {0x02, 0x21, 0x4c, 0x18};
	fx_le(hdr + 4, blk.len, 4);
	fx_put(&b, hdr, sizeof(hdr));
	fx_put(&b, blk.p, blk.len);
	free(blk.p);
	return b;
}

/* A bzImage: real-mode header (setup_sects 3, "HdrS", the given protocol
 * version, payload fields), then the payload; the kernel build appends the
 * uncompressed size to every codec but gzip. */
static inline fx_buf fx_bzimage(const fx_buf *payload, uint32_t usize, bool append_size, uint16_t version)
{
	fx_buf b = {0};
	size_t setup = 4 * 512; /* (setup_sects + 1) sectors */
	fx_put_zero(&b, setup);
	b.p[0x1f1] = 3;
	fx_le(b.p + 0x1fe, 0xaa55, 2);
	memcpy(b.p + 0x202, "HdrS", 4);
	fx_le(b.p + 0x206, version, 2);
	fx_le(b.p + 0x20e, 0x300 - 0x200, 2); /* kernel_version string at 0x300 */
	strcpy((char *)b.p + 0x300, "6.9.9-test (fixture) #1");
	unsigned char pad[0x80] = {0};
	fx_put(&b, pad, sizeof(pad)); /* payload_offset 0x80 into the protected-mode part */
	fx_le(b.p + 0x248, 0x80, 4);
	fx_put(&b, payload->p, payload->len);
	size_t plen = payload->len;
	if (append_size) {
		unsigned char s[4];
		fx_le(s, usize, 4);
		fx_put(&b, s, 4);
		plen += 4;
	}
	fx_le(b.p + 0x24c, plen, 4);
	fx_put_zero(&b, 100); /* trailing data after the payload, as real images have */
	return b;
}

static inline void fx_write(const char *path, const fx_buf *b)
{
	check_write_file(path, b->p ? (const char *)b->p : "", b->len);
}

static inline bool fx_file_equals(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	unsigned char *buf = malloc(len + 1);
	size_t n = fread(buf, 1, len + 1, f);
	fclose(f);
	bool eq = n == len && memcmp(buf, data, len) == 0;
	free(buf);
	return eq;
}

static inline bool fx_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* Number of entries in dir whose name contains needle. */
static inline int fx_count_matching(const char *dir, const char *needle)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += strstr(de->d_name, needle) != NULL;
	closedir(d);
	return n;
}

#endif

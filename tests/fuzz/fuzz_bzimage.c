/* libFuzzer target: bzImage / ELF vmlinux reading as `kernel import` does
 * it (bng_kernel_vmlinux on a file), and the in-process decompressor that
 * compressed modules share (bng_kernel_unpack). A success leaves an ELF
 * file: the input itself for a vmlinux, else exactly as many bytes as the
 * bzImage records for its payload. A failure leaves no output and no temp
 * file behind. The decompressor never returns more than it was allowed. */
#include "fuzz.h"
#include "core/internal.h"
#include "kernel/kernel.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UNPACK_MAX (1u << 20)

static char dir[64] = "";

static void cleanup(void) { bng_rm_rf(dir); }

static size_t entries(const char *path)
{
	DIR *d = opendir(path);
	REQUIRE(d != NULL);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!*dir) {
		const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
		snprintf(dir, sizeof(dir), "%.40s/fuzz-bzimage-XXXXXX", tmp);
		REQUIRE(mkdtemp(dir) != NULL);
		atexit(cleanup);
	}
	char in[96], out[96];
	snprintf(in, sizeof(in), "%s/vmlinuz", dir);
	snprintf(out, sizeof(out), "%s/vmlinux", dir);
	REQUIRE(bng_write_file_atomic(in, (const char *)data, size, 0644) == 0);

	int rc = bng_kernel_vmlinux(in, "fuzz-kernel", out);
	struct stat st;
	if (rc) {
		REQUIRE(rc == BANGER_EINVAL || rc == BANGER_EUNSUPPORTED || rc == BANGER_ETOOBIG);
		REQUIRE(*banger_error_last());
		REQUIRE(entries(dir) == 1); /* the input only: no output, no temp file */
	} else {
		REQUIRE(stat(out, &st) == 0 && st.st_size >= 4);
		REQUIRE(entries(dir) == 2);
		char *got;
		size_t len;
		REQUIRE(bng_read_file(out, &got, &len) == 0);
		REQUIRE(!memcmp(got, "\177ELF", 4));
		if (size >= 4 && !memcmp(data, "\177ELF", 4)) {
			REQUIRE(len == size && !memcmp(got, data, size));
		} else {
			/* the payload's recorded size (the last 4 bytes of it) */
			REQUIRE(size >= 0x250);
			size_t setup = data[0x1f1] ? data[0x1f1] : 4;
			size_t end = (setup + 1) * 512 + le32(data + 0x248) + le32(data + 0x24c);
			REQUIRE(end <= size && (uint32_t)len == le32(data + end - 4));
		}
		free(got);
		REQUIRE(unlink(out) == 0);
	}
	REQUIRE(unlink(in) == 0);

	void *plain = (void *)1;
	size_t plen = 12345;
	rc = bng_kernel_unpack(data, size, UNPACK_MAX, "fuzz module", &plain, &plen);
	if (rc) {
		REQUIRE(rc == BANGER_EINVAL || rc == BANGER_EUNSUPPORTED || rc == BANGER_ETOOBIG);
		REQUIRE(*banger_error_last());
	} else {
		REQUIRE(plen <= UNPACK_MAX);
		free(plain);
	}
	bng_err_clear();
	return 0;
}

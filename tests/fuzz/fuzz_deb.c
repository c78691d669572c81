/* libFuzzer target: a Debian linux-image .deb (ar + data.tar.*, read with
 * libarchive) through bng_kernel_import_deb, as `kernel import --deb` runs
 * it: member names, links, kernel versions, modules (.modinfo, depmod) and
 * the vmlinuz. BANGER_BUSYBOX points nowhere, so a package that gets that
 * far stops at the initramfs instead of running cpio for every input.
 * Invariants: the import fails with a message, and leaves nothing behind:
 * no staging directory, no destination, only the .deb in the directory. */
#include "fuzz.h"
#include "core/internal.h"
#include "kernel/kernel.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64] = "";

static void cleanup(void) { bng_rm_rf(dir); }

static void only_the_deb(void)
{
	DIR *d = opendir(dir);
	REQUIRE(d != NULL);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "k.deb"))
			fprintf(stderr, "left behind: %s\n", de->d_name);
		REQUIRE(!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || !strcmp(de->d_name, "k.deb"));
	}
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!*dir) {
		const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
		snprintf(dir, sizeof(dir), "%.40s/fuzz-deb-XXXXXX", tmp);
		REQUIRE(mkdtemp(dir) != NULL);
		atexit(cleanup);
		setenv("BANGER_BUSYBOX", "/nonexistent/busybox", 1);
	}
	char deb[96], dest[96];
	snprintf(deb, sizeof(deb), "%s/k.deb", dir);
	snprintf(dest, sizeof(dest), "%s/kernel", dir);
	REQUIRE(bng_write_file_atomic(deb, (const char *)data, size, 0644) == 0);

	json_t *manifest = NULL;
	int rc = bng_kernel_import_deb(deb, dest, NULL, &manifest);
	REQUIRE(rc < 0 && manifest == NULL);
	REQUIRE(*banger_error_last());
	if (getenv("BANGER_FUZZ_VERBOSE")) /* how far a seed gets */
		fprintf(stderr, "import: %s\n", banger_error_last());
	only_the_deb();
	REQUIRE(unlink(deb) == 0);
	bng_err_clear();
	return 0;
}

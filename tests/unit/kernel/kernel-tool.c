/* A driver for lib/kernel, for the integration tests and for poking at
 * kernels by hand:
 *   kernel-tool import-deb DEB DEST
 *   kernel-tool import-dir SRC DEST
 *   kernel-tool vmlinux BZIMAGE OUT
 *   kernel-tool initramfs MODULES_ROOT|- KVER OUT [BUSYBOX [INIT]]
 *   kernel-tool depmod MODULES_ROOT
 * Prints the manifest (or module list) as JSON on stdout and progress
 * events on stderr. */
#include "kernel/kernel.h"

#include <stdio.h>
#include <string.h>

static void print_event(bng_op *op, json_t *ev)
{
	(void)op;
	char *s = json_dumps(ev, JSON_COMPACT);
	fprintf(stderr, "event %s\n", s);
	free(s);
	json_decref(ev);
}

static int usage(void)
{
	fputs("usage: kernel-tool import-deb DEB DEST | import-dir SRC DEST | vmlinux BZIMAGE OUT |\n"
	      "       initramfs MODULES_ROOT|- KVER OUT [BUSYBOX [INIT]] | depmod MODULES_ROOT\n",
	      stderr);
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	const char *cmd = argv[1];
	bng_op op = {.emit = print_event};
	json_t *out = NULL;
	int rc;
	if (!strcmp(cmd, "import-deb") && argc == 4)
		rc = bng_kernel_import_deb(argv[2], argv[3], &op, &out);
	else if (!strcmp(cmd, "import-dir") && argc == 4)
		rc = bng_kernel_import_dir(argv[2], argv[3], &op, &out);
	else if (!strcmp(cmd, "vmlinux") && argc == 4)
		rc = bng_vmlinux_from_bzimage(argv[2], argv[3]);
	else if (!strcmp(cmd, "initramfs") && argc >= 5 && argc <= 7)
		rc = bng_initramfs_build(strcmp(argv[2], "-") ? argv[2] : NULL, argv[3], argc > 5 ? argv[5] : NULL,
					 argc > 6 ? argv[6] : NULL, argv[4], &out);
	else if (!strcmp(cmd, "depmod") && argc == 3)
		rc = bng_kernel_depmod(argv[2]);
	else
		return usage();
	if (rc) {
		fprintf(stderr, "kernel-tool: %s (%s)\n", banger_error_last(), banger_strerror(rc));
		return 1;
	}
	if (out) {
		char *s = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
		puts(s);
		free(s);
		json_decref(out);
	}
	return 0;
}

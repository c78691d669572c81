/* The kernel module's methods (kernel.*) and its start-up hook: a crash
 * between publishing a kernel directory and inserting its row leaves a
 * directory (or a staging one) that the next engine removes. */
#include "store.h"

static int kernel_reconcile(bng_engine *e) { return bng_clean_leftovers(e, e->kernels_dir, "kernels"); }

static const bng_method kernel_methods[] = {
	{"kernel.import", "name:str,from:str?,deb:str?",
	 "import a kernel from a directory or a Debian linux-image .deb (vmlinux + generated initramfs)",
	 bng_m_kernel_import, "0.1"},
	{"kernel.pull", "name:str", "a kernel bundle from the kernel catalog", bng_m_kernel_pull, "0.1"},
	{"kernel.list", "", "installed kernels", bng_m_kernel_list, "0.1"},
	{"kernel.catalog", "", "the kernel catalog, with which entries are pulled", bng_m_kernel_catalog, "0.1"},
	{"kernel.show", "name:str", "one kernel by name or id", bng_m_kernel_show, "0.1"},
	{"kernel.rm", "name:str", "remove a kernel and its files", bng_m_kernel_rm, "0.1"},
};

const bng_module bng_kernel_module = {.name = "kernel",
				  .methods = kernel_methods,
				  .nmethods = BNG_ARRAY_LEN(kernel_methods),
				  .reconcile = kernel_reconcile};

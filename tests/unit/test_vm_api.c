/* The typed VM API (include/banger/vm.h) without a guest: argument checks,
 * options, lookups and lists through a local engine. */
#include "check.h"

#include <banger.h>
#include <stdlib.h>

int main(void)
{
	char *tmp = check_tmpdir("vmapi");
	char *uri = NULL;
	if (asprintf(&uri, "local:%s/state", tmp) < 0)
		return 1;
	setenv("BANGER_CONFIG_DIR", tmp, 1);
	banger_ctx *ctx;
	CHECK_OK(banger_ctx_open(&ctx, uri, NULL));

	banger_vm *vm = (banger_vm *)1;
	CHECK_EQ_INT(banger_vm_lookup(&vm, ctx, "nope"), BANGER_ENOTFOUND);
	CHECK(vm == NULL);
	CHECK_STR_CONTAINS(banger_error_last(), "vm 'nope' not found");
	CHECK_EQ_INT(banger_vm_lookup(&vm, NULL, "x"), BANGER_EINVAL);
	banger_vm **vms = NULL;
	size_t n = 99;
	CHECK_OK(banger_vm_list(&vms, &n, ctx, 1));
	CHECK_EQ_INT((int)n, 0);
	banger_vm_list_free(vms, n);

	banger_vm_options *o;
	CHECK_OK(banger_vm_options_new(&o));
	CHECK_OK(banger_vm_options_set_name(o, "Bad_Name"));
	CHECK_OK(banger_vm_options_set_start(o, 0));
	CHECK_EQ_INT(banger_vm_options_set_init(NULL, "banger"), BANGER_EINVAL);
	CHECK_OK(banger_vm_options_set_init(o, "banger")); /* a declared parameter: the name is what fails */
	CHECK_EQ_INT(banger_vm_create(&vm, ctx, o), BANGER_EINVAL); /* checked by vm.create */
	CHECK_STR_CONTAINS(banger_error_last(), "invalid vm name");
	banger_vm_options_free(o);

	banger_exec_options *e;
	CHECK_OK(banger_exec_options_new(&e));
	CHECK_EQ_INT(banger_exec_options_add_env(e, "NOEQUALS"), BANGER_EINVAL);
	const char *argv[] = {"true", NULL};
	CHECK_EQ_INT(banger_exec_options_set_argv(e, 2, argv), BANGER_EINVAL); /* a NULL argument */
	CHECK_OK(banger_exec_options_set_argv(e, 1, argv));
	banger_exec_result *r = NULL;
	CHECK_EQ_INT(banger_vm_exec(&r, NULL, e), BANGER_EINVAL);
	banger_exec_options_free(e);

	/* NULLs are no-ops, as everywhere in the API */
	banger_vm_unref(NULL);
	banger_vm_options_free(NULL);
	banger_exec_result_free(NULL);
	CHECK(banger_vm_name(NULL) == NULL);

	banger_ctx_unref(ctx);
	free(uri);
	check_rm_rf(tmp);
	free(tmp);
	return check_summary();
}

/* A VM from C: create one (or use the one named), run a command in it with
 * its output streamed, print the exit status, delete what was created.
 *
 *   cc vm-exec.c $(pkg-config --cflags --libs banger) -o vm-exec
 *   ./vm-exec unix: [VM]        (or local:/some/state)
 */
#include <banger.h>
#include <stdio.h>

static void on_output(int stream, const char *data, size_t len, void *userdata)
{
	(void)userdata;
	fwrite(data, 1, len, stream == 2 ? stderr : stdout);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s URI [VM]\n", argv[0]);
		return 2;
	}
	banger_ctx *ctx = NULL;
	banger_vm *vm = NULL;
	banger_exec_options *opts = NULL;
	banger_exec_result *res = NULL;
	int status = 1;
	if (banger_ctx_open(&ctx, argv[1], NULL) != 0)
		goto out;
	if (argc > 2) {
		if (banger_vm_lookup(&vm, ctx, argv[2]) != 0)
			goto out;
	} else {
		banger_vm_options *o;
		banger_vm_options_new(&o);
		banger_vm_options_set_vcpus(o, 1);
		int rc = banger_vm_create(&vm, ctx, o);
		banger_vm_options_free(o);
		if (rc != 0)
			goto out;
	}
	printf("vm %s (%s) is %s at %s\n", banger_vm_name(vm), banger_vm_id(vm), banger_vm_state(vm), banger_vm_ip(vm));
	const char *cmd[] = {"sh", "-c", "echo hello from $(hostname); echo to stderr >&2; exit 3"};
	banger_exec_options_new(&opts);
	banger_exec_options_set_argv(opts, 3, cmd);
	banger_exec_options_add_env(opts, "GREETING=hi");
	banger_exec_options_set_output_cb(opts, on_output, NULL);
	if (banger_vm_exec(&res, vm, opts) != 0)
		goto out;
	printf("exit status %d\n", (int)banger_exec_result_exit_code(res));
	status = 0;
out:
	if (status)
		fprintf(stderr, "vm-exec: %s\n", banger_error_last());
	if (vm && argc == 2 && banger_vm_delete(vm) != 0)
		fprintf(stderr, "vm-exec: could not delete the VM: %s\n", banger_error_last());
	banger_exec_result_free(res);
	banger_exec_options_free(opts);
	banger_vm_unref(vm);
	banger_ctx_unref(ctx);
	return status;
}

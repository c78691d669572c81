/* A workspace from C: ship the git repository PATH into a running VM
 * (progress as it goes), ask whether the host tree moved on, and take the
 * guest's changes back as a patch (printed on stdout).
 *
 *   cc vm-workspace.c $(pkg-config --cflags --libs banger) -o vm-workspace
 *   ./vm-workspace unix: VM PATH [GUEST_PATH] > change.patch
 */
#include <banger.h>
#include <stdio.h>

/* overlay says how many files (total), copy how many bytes went (done);
 * ship's file and byte counts are fields of the whole event */
static void progress(const banger_progress *p, void *userdata)
{
	(void)userdata;
	fprintf(stderr, "%s:", banger_progress_stage(p));
	if (banger_progress_total(p) >= 0)
		fprintf(stderr, " total %lld", (long long)banger_progress_total(p));
	if (banger_progress_done(p) >= 0)
		fprintf(stderr, " done %lld", (long long)banger_progress_done(p));
	fprintf(stderr, " %s\n", banger_progress_json(p));
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s URI VM PATH [GUEST_PATH]\n", argv[0]);
		return 2;
	}
	banger_ctx *ctx;
	banger_vm *vm;
	if (banger_ctx_open(&ctx, argv[1], NULL) != 0 || banger_vm_lookup(&vm, ctx, argv[2]) != 0) {
		fprintf(stderr, "%s\n", banger_error_last());
		return 1;
	}
	banger_workspace_options *o;
	banger_workspace_options_new(&o);
	banger_workspace_options_set_path(o, argv[3]);
	if (argc > 4)
		banger_workspace_options_set_guest_path(o, argv[4]);
	banger_workspace_options_set_force(o, 1);
	banger_workspace_options_set_progress_cb(o, progress, NULL);
	banger_workspace *ws;
	int rc = banger_workspace_prepare(&ws, vm, o);
	banger_workspace_options_free(o);
	if (rc != 0) {
		fprintf(stderr, "prepare: %s\n", banger_error_last());
		return 1;
	}
	fprintf(stderr, "%s at %s (%s, commit %.12s)\n", banger_workspace_host_path(ws), banger_workspace_guest_path(ws),
		banger_workspace_mode(ws), banger_workspace_head_commit(ws));
	int changed = 0;
	const char *reason = NULL;
	if (banger_workspace_status(ws, &changed, &reason) == 0)
		fprintf(stderr, "changed since shipped: %s%s%s\n", changed ? "yes: " : "no", changed ? reason : "", "");
	char *patch;
	size_t len;
	if (banger_workspace_export(ws, NULL, &patch, &len) != 0) {
		fprintf(stderr, "export: %s\n", banger_error_last());
		return 1;
	}
	fwrite(patch, 1, len, stdout);
	banger_free(patch);
	banger_workspace_unref(ws);
	banger_vm_unref(vm);
	banger_ctx_unref(ctx);
	return 0;
}

/* banger vm workspace prepare|export|show: a host git repository into a
 * VM and its changes back out as a patch (vm.workspace.*). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An absolute form of a host path given on the command line. */
static char *absolute(const char *path)
{
	char cwd[4096], *abs = NULL;
	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		abs = strdup(path);
	else if (asprintf(&abs, "%s/%s", cwd, path) < 0)
		abort();
	size_t n = strlen(abs);
	while (n > 1 && abs[n - 1] == '/')
		abs[--n] = '\0';
	return abs;
}

int workspace_prepare(const char *vm, const char *path, const char *guest_path, const char *mode, bool untracked,
		      bool dry, bool force, bool json, char **guest_out)
{
	char *abs = absolute(path);
	json_t *params = json_pack("{s:s}", "path", abs);
	free(abs);
	if (vm)
		json_object_set_new(params, "name", json_string(vm));
	if (guest_path)
		json_object_set_new(params, "guest_path", json_string(guest_path));
	if (mode)
		json_object_set_new(params, "mode", json_string(mode));
	const bool bools[] = {untracked, dry, force};
	static const char *const keys[] = {"include_untracked", "dry_run", "force"};
	for (size_t i = 0; i < 3; i++)
		if (bools[i])
			json_object_set_new(params, keys[i], json_true());
	json_t *res = NULL;
	int rc = call_with("vm.workspace.prepare", params, &res);
	if (rc)
		return api_fail(rc);
	const char *g = json_string_value(json_object_get(res, "guest_path"));
	if (json) {
		print_json(res);
	} else if (dry) {
		json_t *f;
		size_t i;
		json_array_foreach(json_object_get(res, "file_list"), i, f)
			puts(json_string_value(f));
		fprintf(stderr, "%lld files, %lld bytes would go to %s (commit %.12s)\n",
			(long long)json_integer_value(json_object_get(res, "files")),
			(long long)json_integer_value(json_object_get(res, "bytes")), g,
			json_string_value(json_object_get(res, "head_commit")));
	} else {
		fprintf(stderr, "workspace %s in %s: %lld files, %lld bytes at commit %.12s\n", g, vm,
			(long long)json_integer_value(json_object_get(res, "files")),
			(long long)json_integer_value(json_object_get(res, "bytes")),
			json_string_value(json_object_get(res, "head_commit")));
	}
	if (guest_out)
		*guest_out = strdup(g ? g : "/root/repo");
	json_decref(res);
	return 0;
}

int cmd_vm_workspace_prepare(const command *cmd, args *a)
{
	if (a->argc < 1 || a->argc > 2)
		return fail(EXIT_USAGE, "usage: banger %s VM [PATH] (PATH: a git repository, default .)", cmd->path);
	bool dry = flag_set(a, "--dry-run");
	int rc = workspace_prepare(a->argv[0], a->argc == 2 ? a->argv[1] : ".", flag_value(a, "--guest-path"),
				   flag_value(a, "--mode"), flag_set(a, "--include-untracked"), dry, flag_set(a, "--force"),
				   a->json, NULL);
	if (!rc && !dry && !a->json)
		printf("next: banger vm exec %s -- <cmd>   (runs in the workspace)\n"
		       "      banger vm workspace export %s --output change.patch\n",
		       a->argv[0], a->argv[0]);
	return rc;
}

/* The guest directory vm.exec should start in for vm (malloc'd), or NULL
 * when the VM has no workspace. With auto_prepare, a workspace behind the
 * host tree is shipped again first; without, a warning says so. */
char *workspace_cwd(const char *vm, bool auto_prepare, int *rc)
{
	*rc = 0;
	json_t *st = NULL;
	int r = call_with("vm.workspace.status", json_pack("{s:s}", "name", vm), &st);
	if (r == BANGER_ENOTFOUND && strstr(banger_error_last(), "no workspace")) {
		if (auto_prepare)
			fprintf(stderr, "warning: --auto-prepare: vm %s has no workspace (banger vm workspace prepare %s PATH)\n",
				vm, vm);
		return NULL;
	}
	if (r) {
		*rc = api_fail(r);
		return NULL;
	}
	char *guest = strdup(json_string_value(json_object_get(st, "guest_path")));
	const char *reason = json_string_value(json_object_get(st, "reason"));
	const char *host = json_string_value(json_object_get(st, "host_path"));
	bool missing = json_is_false(json_object_get(st, "guest_present"));
	if (missing && !auto_prepare) { /* nowhere to start in: the guest's default directory */
		fprintf(stderr, "warning: vm %s's workspace %s is missing in the guest (--auto-prepare ships it again)\n",
			vm, guest);
		free(guest);
		json_decref(st);
		return NULL;
	}
	if (json_is_true(json_object_get(st, "changed"))) {
		if (auto_prepare) {
			fprintf(stderr, "%s: shipping the workspace again (--auto-prepare)\n", reason);
			*rc = workspace_prepare(vm, host, guest, NULL, json_is_true(json_object_get(st, "include_untracked")),
						false, false, false, NULL);
		} else {
			fprintf(stderr, "warning: vm %s's workspace %s is behind %s: %s (--auto-prepare ships it again)\n",
				vm, guest, host, reason);
		}
	}
	json_decref(st);
	if (*rc) {
		free(guest);
		return NULL;
	}
	return guest;
}

static unsigned char *unbase64(const char *b64, size_t *len)
{
	static signed char value[256];
	if (!value['B']) {
		memset(value, -1, sizeof(value));
		const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		for (int i = 0; i < 64; i++)
			value[(unsigned char)abc[i]] = (signed char)i;
	}
	size_t n = strlen(b64), o = 0;
	unsigned char *out = malloc(n / 4 * 3 + 3);
	unsigned v = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int d = value[(unsigned char)b64[i]];
		if (d < 0)
			continue;
		v = v << 6 | (unsigned)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
		}
	}
	*len = o;
	return out;
}

int cmd_vm_workspace_export(const command *cmd, args *a)
{
	if (a->argc != 1)
		return fail(EXIT_USAGE, "usage: banger %s VM [--output FILE] [--base-commit C]", cmd->path);
	json_t *params = json_pack("{s:s}", "name", a->argv[0]);
	if (flag_value(a, "--base-commit"))
		json_object_set_new(params, "base_commit", json_string(flag_value(a, "--base-commit")));
	json_t *res = NULL;
	int rc = call_with("vm.workspace.export", params, &res);
	if (rc)
		return api_fail(rc);
	const char *output = flag_value(a, "--output");
	const char *b64 = json_string_value(json_object_get(res, "patch_b64"));
	const char *text = json_string_value(json_object_get(res, "patch"));
	size_t len = 0;
	unsigned char *bin = b64 ? unbase64(b64, &len) : NULL;
	const void *patch = bin ? (const void *)bin : (const void *)(text ? text : "");
	if (!bin)
		len = strlen(text ? text : "");
	if (output) {
		FILE *f = fopen(output, "wb");
		if (!f || fwrite(patch, 1, len, f) != len || fclose(f) != 0)
			rc = fail(1, "cannot write %s", output);
	} else if (!a->json) {
		fwrite(patch, 1, len, stdout);
	}
	if (!rc && a->json) {
		print_json(res);
	} else if (!rc && output) {
		json_t *f;
		size_t i;
		json_array_foreach(json_object_get(res, "files"), i, f)
			fprintf(stderr, "%s\t%s\n", json_string_value(json_object_get(f, "status")),
				json_string_value(json_object_get(f, "path")));
		fprintf(stderr, "%zu files changed; patch in %s\n", json_array_size(json_object_get(res, "files")), output);
	}
	free(bin);
	json_decref(res);
	return rc;
}

int cmd_vm_workspace_show(const command *cmd, args *a)
{
	if (a->argc != 1)
		return fail(EXIT_USAGE, "'banger %s' takes one vm name", cmd->path);
	json_t *res = NULL;
	int rc = call_with("vm.workspace.show", json_pack("{s:s}", "name", a->argv[0]), &res);
	if (rc)
		return api_fail(rc);
	if (a->json) {
		print_json(res);
	} else {
		static const char *const keys[] = {"host_path", "guest_path", "mode", "head_commit", "files_digest",
						   "created_at"};
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			printf("%-13s %s\n", keys[i], json_string_value(json_object_get(res, keys[i])));
	}
	json_decref(res);
	return 0;
}

/* banger kernel …: glue over the kernel.* methods. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s && *s ? s : "-";
}

static int print_kernel(json_t *k, bool json)
{
	if (json) {
		print_json(k);
	} else {
		json_t *files = json_object_get(k, "files");
		const char *rows[] = {"name", str(k, "name"), "id", str(k, "id"), "version", str(k, "version"),
				      "source", str(k, "source"), "dir", str(k, "dir"),
				      "vmlinux", str(json_object_get(files, "vmlinux"), "path"),
				      "vmlinuz", str(json_object_get(files, "vmlinuz"), "path"),
				      "initrd", str(json_object_get(files, "initrd.img"), "path"),
				      "created", str(k, "created_at")};
		print_table(rows, 2, 9);
	}
	json_decref(k);
	return 0;
}

int cmd_kernel_import(const command *cmd, args *a)
{
	if (a->argc != 1)
		return fail(EXIT_USAGE, "'banger %s' takes one kernel name", cmd->path);
	const char *from = flag_value(a, "--from"), *deb = flag_value(a, "--deb");
	if (!from == !deb)
		return fail(EXIT_USAGE, "kernel import needs --from DIR or --deb linux-image-*.deb");
	char *abs = realpath(from ? from : deb, NULL);
	if (!abs)
		return fail(1, "cannot read %s: %s", from ? from : deb, strerror(errno));
	json_t *params = json_pack("{s:s,s:s}", "name", a->argv[0], from ? "from" : "deb", abs);
	free(abs);
	json_t *k;
	int rc = call_with("kernel.import", params, &k);
	return rc ? api_fail(rc) : print_kernel(k, a->json);
}

int cmd_kernel_pull(const command *cmd, args *a)
{
	if (a->argc != 1)
		return fail(EXIT_USAGE, "'banger %s' takes one catalog kernel name (see banger kernel list --available)",
			    cmd->path);
	json_t *k;
	int rc = call_with("kernel.pull", json_pack("{s:s}", "name", a->argv[0]), &k);
	return rc ? api_fail(rc) : print_kernel(k, a->json);
}

int cmd_kernel_list(const command *cmd, args *a)
{
	(void)cmd;
	bool available = flag_set(a, "--available");
	json_t *res;
	int rc = call_default(available ? "kernel.catalog" : "kernel.list", &res);
	if (rc)
		return api_fail(rc);
	json_t *list = json_object_get(res, "kernels");
	if (a->json) {
		print_json(list);
		json_decref(res);
		return 0;
	}
	size_t n = json_array_size(list), i;
	const char **cells = calloc((n + 1) * 4, sizeof(char *));
	const char *head_installed[] = {"NAME", "VERSION", "SOURCE", "CREATED"};
	const char *head_available[] = {"NAME", "STATE", "VERSION", "DESCRIPTION"};
	memcpy(cells, available ? head_available : head_installed, sizeof(head_installed));
	json_t *k;
	json_array_foreach(list, i, k) {
		const char *installed[] = {str(k, "name"), str(k, "version"), str(k, "source"), str(k, "created_at")};
		const char *catalog[] = {str(k, "name"), json_is_true(json_object_get(k, "pulled")) ? "pulled" : "available",
					 str(k, "kernel_version"), str(k, "description")};
		memcpy(cells + (i + 1) * 4, available ? catalog : installed, sizeof(installed));
	}
	print_table(cells, 4, n + 1);
	if (available && n == 0)
		fprintf(stderr, "the kernel catalog is empty: import a distro kernel (banger kernel import NAME --deb "
				"linux-image-*.deb)\n");
	free(cells);
	json_decref(res);
	return 0;
}

int cmd_kernel_show(const command *cmd, args *a)
{
	if (a->argc != 1)
		return fail(EXIT_USAGE, "'banger %s' takes one kernel name", cmd->path);
	json_t *k;
	int rc = call_with("kernel.show", json_pack("{s:s}", "name", a->argv[0]), &k);
	return rc ? api_fail(rc) : print_kernel(k, a->json);
}

int cmd_kernel_rm(const command *cmd, args *a)
{
	if (a->argc == 0)
		return fail(EXIT_USAGE, "'banger %s' needs at least one kernel name", cmd->path);
	int status = 0;
	for (int i = 0; i < a->argc; i++) {
		json_t *res;
		int rc = call_with("kernel.rm", json_pack("{s:s}", "name", a->argv[i]), &res);
		if (rc) {
			status = api_fail(rc);
			continue;
		}
		printf("removed kernel %s (%s)\n", str(res, "name"), str(res, "id"));
		json_decref(res);
	}
	return status;
}

/* banger image …: glue over the image.* methods. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "1.5G" style sizes for tables. */
static void human(json_t *bytes, char *buf, size_t len)
{
	if (!json_is_integer(bytes)) {
		snprintf(buf, len, "-");
		return;
	}
	double v = (double)json_integer_value(bytes);
	const char *units = "BKMGT";
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f%c" : "%.0f%c", v, units[u]);
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s && *s ? s : "-";
}

/* Prints one image as "key  value" rows, or JSON. */
static int print_image(json_t *img, bool json)
{
	if (json) {
		print_json(img);
	} else {
		char size[32], usage[32];
		human(json_object_get(img, "rootfs_size"), size, sizeof(size));
		human(json_object_get(img, "disk_usage"), usage, sizeof(usage));
		const char *rows[] = {"name", str(img, "name"), "id", str(img, "id"), "rootfs", str(img, "rootfs"),
				      "size", size, "disk usage", usage, "source", str(img, "source"),
				      "digest", str(img, "digest"), "kernel", str(img, "kernel"),
				      "created", str(img, "created_at")};
		print_table(rows, 2, 9);
	}
	json_decref(img);
	return 0;
}

static int need_name(const command *cmd, args *a)
{
	if (a->argc == 1)
		return 0;
	return fail(EXIT_USAGE, "'banger %s' takes exactly one image name; see 'banger %s --help'", cmd->path, cmd->path);
}

/* Copies stdin to a private temp file the daemon can read (same uid). */
static char *spool_stdin(void)
{
	const char *dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	size_t n = strlen(dir) + 32;
	char *path = malloc(n);
	snprintf(path, n, "%s/banger-import-XXXXXX", dir);
	int fd = mkstemp(path);
	if (fd < 0) {
		fail(1, "cannot create a temp file in %s: %s (set TMPDIR)", dir, strerror(errno));
		free(path);
		return NULL;
	}
	char buf[1 << 16];
	ssize_t r;
	while ((r = read(0, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0; off < r;) {
			ssize_t w = write(fd, buf + off, (size_t)(r - off));
			if (w <= 0) {
				fail(1, "cannot spool stdin to %s: %s", path, strerror(errno));
				close(fd);
				unlink(path);
				free(path);
				return NULL;
			}
			off += w;
		}
	close(fd);
	return path;
}

int cmd_image_import(const command *cmd, args *a)
{
	if (need_name(cmd, a))
		return EXIT_USAGE;
	json_t *tars = json_array();
	char *spooled = NULL;
	int rc = 0;
	for (int i = 0; i < a->nflags && !rc; i++) {
		if (strncmp(a->flags[i].name, "--tar", a->flags[i].name_len) || a->flags[i].name_len != 5)
			continue;
		const char *tar = a->flags[i].value;
		char *abs = NULL;
		if (!strcmp(tar, "-")) {
			if (spooled || isatty(0))
				rc = fail(EXIT_USAGE, "--tar - reads one tar stream from stdin (and stdin must not be a terminal)");
			else if (!(abs = spooled = spool_stdin()))
				rc = 1;
			else
				abs = strdup(spooled);
		} else if (!(abs = realpath(tar, NULL))) {
			rc = fail(1, "cannot read %s: %s", tar, strerror(errno));
		}
		if (abs)
			json_array_append_new(tars, json_string(abs));
		free(abs);
	}
	if (!rc && json_array_size(tars) == 0)
		rc = fail(EXIT_USAGE, "image import needs --tar FILE (repeat it for layers, oldest first; '-' reads stdin)");
	json_t *img = NULL;
	if (!rc) {
		json_t *params = json_pack("{s:s,s:O}", "name", a->argv[0], "tars", tars);
		if (flag_value(a, "--size"))
			json_object_set_new(params, "size", json_string(flag_value(a, "--size")));
		if (flag_value(a, "--kernel"))
			json_object_set_new(params, "kernel", json_string(flag_value(a, "--kernel")));
		if (spooled && json_array_size(tars) == 1)
			json_object_set_new(params, "source", json_string("<stdin>"));
		rc = call_with("image.import", params, &img);
		rc = rc ? api_fail(rc) : print_image(img, a->json);
	}
	if (spooled)
		unlink(spooled);
	free(spooled);
	json_decref(tars);
	return rc;
}

int cmd_image_register(const command *cmd, args *a)
{
	if (need_name(cmd, a))
		return EXIT_USAGE;
	const char *rootfs = flag_value(a, "--rootfs");
	if (!rootfs || !*rootfs)
		return fail(EXIT_USAGE, "image register needs --rootfs /path/to/rootfs.ext4");
	char *abs = realpath(rootfs, NULL);
	if (!abs)
		return fail(1, "cannot read %s: %s", rootfs, strerror(errno));
	json_t *params = json_pack("{s:s,s:s}", "name", a->argv[0], "rootfs", abs);
	free(abs);
	if (flag_value(a, "--kernel"))
		json_object_set_new(params, "kernel", json_string(flag_value(a, "--kernel")));
	json_t *img;
	int rc = call_with("image.register", params, &img);
	return rc ? api_fail(rc) : print_image(img, a->json);
}

/* `image list --available`: the catalog with a STATE column. */
static int list_catalog(args *a)
{
	json_t *res;
	int rc = call_default("image.catalog", &res);
	if (rc)
		return api_fail(rc);
	json_t *entries = json_object_get(res, "images");
	if (a->json) {
		print_json(entries);
		json_decref(res);
		return 0;
	}
	size_t n = json_array_size(entries), i;
	const char **cells = calloc((n + 1) * 4, sizeof(char *));
	char (*sizes)[32] = calloc(n + 1, sizeof(*sizes));
	const char *head[] = {"NAME", "STATE", "SIZE", "DESCRIPTION"};
	memcpy(cells, head, sizeof(head));
	json_t *e;
	json_array_foreach(entries, i, e) {
		human(json_object_get(e, "size"), sizes[i], 32);
		const char *row[] = {str(e, "name"), json_is_true(json_object_get(e, "pulled")) ? "pulled" : "available",
				     sizes[i], str(e, "description")};
		memcpy(cells + (i + 1) * 4, row, sizeof(row));
	}
	print_table(cells, 4, n + 1);
	if (n == 0)
		fprintf(stderr, "the image catalog is empty: pull OCI images (banger image pull debian:bookworm) or build "
				"one (banger image build)\n");
	free(cells);
	free(sizes);
	json_decref(res);
	return 0;
}

int cmd_image_list(const command *cmd, args *a)
{
	(void)cmd;
	if (flag_set(a, "--available"))
		return list_catalog(a);
	json_t *res;
	int rc = call_default("image.list", &res);
	if (rc)
		return api_fail(rc);
	json_t *images = json_object_get(res, "images");
	if (a->json) {
		print_json(images);
		json_decref(res);
		return 0;
	}
	size_t n = json_array_size(images), i;
	const char **cells = calloc((n + 1) * 6, sizeof(char *));
	char (*sizes)[2][32] = calloc(n + 1, sizeof(*sizes));
	const char *head[] = {"NAME", "ID", "ROOTFS SIZE", "DISK", "SOURCE", "CREATED"};
	memcpy(cells, head, sizeof(head));
	json_t *img;
	json_array_foreach(images, i, img) {
		human(json_object_get(img, "rootfs_size"), sizes[i][0], 32);
		human(json_object_get(img, "disk_usage"), sizes[i][1], 32);
		const char *row[] = {str(img, "name"), str(img, "id"), sizes[i][0], sizes[i][1], str(img, "source"),
				     str(img, "created_at")};
		memcpy(cells + (i + 1) * 6, row, sizeof(row));
	}
	print_table(cells, 6, n + 1);
	free(cells);
	free(sizes);
	json_decref(res);
	return 0;
}

int cmd_image_show(const command *cmd, args *a)
{
	if (need_name(cmd, a))
		return EXIT_USAGE;
	json_t *img;
	int rc = call_with("image.show", json_pack("{s:s}", "name", a->argv[0]), &img);
	return rc ? api_fail(rc) : print_image(img, a->json);
}

int cmd_image_rm(const command *cmd, args *a)
{
	if (a->argc == 0)
		return fail(EXIT_USAGE, "'banger %s' needs at least one image name", cmd->path);
	int status = 0;
	for (int i = 0; i < a->argc; i++) {
		json_t *res;
		int rc = call_with("image.rm", json_pack("{s:s}", "name", a->argv[i]), &res);
		if (rc) {
			status = api_fail(rc);
			continue;
		}
		printf("removed image %s (%s)\n", str(res, "name"), str(res, "id"));
		json_decref(res);
	}
	return status;
}

int cmd_image_build(const command *cmd, args *a)
{
	if (a->argc > 1)
		return fail(EXIT_USAGE, "'banger %s' takes at most one image name", cmd->path);
	json_t *params = json_object();
	if (a->argc == 1)
		json_object_set_new(params, "name", json_string(a->argv[0]));
	static const char *const str_flags[] = {"--suite", "--mirror", "--size"};
	for (size_t i = 0; i < sizeof(str_flags) / sizeof(str_flags[0]); i++)
		if (flag_value(a, str_flags[i]))
			json_object_set_new(params, str_flags[i] + 2, json_string(flag_value(a, str_flags[i])));
	if (flag_set(a, "--minimal"))
		json_object_set_new(params, "minimal", json_true());
	if (flag_set(a, "--no-systemd"))
		json_object_set_new(params, "systemd", json_false());
	json_t *img;
	int rc = call_with("image.build", params, &img);
	return rc ? api_fail(rc) : print_image(img, a->json);
}

int cmd_image_pull(const command *cmd, args *a)
{
	if (a->argc != 1)
		return fail(EXIT_USAGE, "'banger %s' takes one reference: a catalog name or an OCI ref like debian:bookworm",
			    cmd->path);
	json_t *params = json_pack("{s:s}", "ref", a->argv[0]);
	static const char *const str_flags[] = {"--name", "--size", "--kernel"};
	for (size_t i = 0; i < sizeof(str_flags) / sizeof(str_flags[0]); i++)
		if (flag_value(a, str_flags[i]))
			json_object_set_new(params, str_flags[i] + 2, json_string(flag_value(a, str_flags[i])));
	json_t *img;
	int rc = call_with("image.pull", params, &img);
	return rc ? api_fail(rc) : print_image(img, a->json);
}

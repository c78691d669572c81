/* The kernel store: kernel directories under <state>/kernels/<id>/ recorded
 * in SQLite; import (.deb or directory), catalog pull, list, show, rm. */
#include "store.h"
#include "kernel.h"
#include "../catalog/catalog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char columns[] = "id, name, version, source, dir, manifest, created_at";

static void decorate(json_t *k)
{
	json_t *m = json_object_get(k, "manifest");
	if (json_is_string(m))
		json_object_set_new(k, "manifest", json_loads(json_string_value(m), 0, NULL));
	const char *dir = json_string_value(json_object_get(k, "dir"));
	static const char *const files[] = {BNG_KERNEL_VMLINUX, BNG_KERNEL_VMLINUZ, BNG_KERNEL_INITRD};
	json_t *paths = json_object();
	for (size_t i = 0; dir && i < BNG_ARRAY_LEN(files); i++) {
		char *p = bng_asprintf("%s/%s", dir, files[i]);
		struct stat st;
		if (stat(p, &st) == 0)
			json_object_set_new(paths, files[i], json_pack("{s:s,s:I}", "path", p, "size", (json_int_t)st.st_size));
		free(p);
	}
	json_object_set_new(k, "files", paths);
}

int bng_kernel_get(bng_engine *e, const char *ref, json_t **kernel)
{
	int rc = bng_store_get(&e->store, "kernels", columns, ref, "kernel", kernel);
	if (!rc)
		decorate(*kernel);
	return rc;
}

/* Takes the name's reservation and checks the name is free. */
static int claim(bng_engine *e, const char *name, bng_op *op, char **key)
{
	int rc = bng_check_name(name, "kernel");
	if (rc)
		return rc;
	*key = bng_asprintf("kernel:%s", name);
	rc = bng_engine_reserve(e, *key, op);
	if (rc) {
		free(*key);
		*key = NULL;
		return rc;
	}
	json_t *k;
	if (bng_kernel_get(e, name, &k) == 0) {
		json_decref(k);
		bng_engine_release(e, *key);
		free(*key);
		*key = NULL;
		return bng_err(BANGER_EEXIST, "kernel '%s' already exists", name);
	}
	return 0;
}

static void unclaim(bng_engine *e, char *key)
{
	if (key)
		bng_engine_release(e, key);
	free(key);
}

/* Records the published directory dir as kernel id/name. */
static int record(bng_engine *e, const char *id, const char *name, const char *dir, const char *source,
		  json_t *manifest, json_t **result)
{
	char created[32];
	bng_now_iso(created);
	char *mtext = json_dumps(manifest ? manifest : json_object(), JSON_COMPACT);
	const char *version = json_string_value(json_object_get(manifest, "kernel_version"));
	const char *params[] = {id, name, version ? version : "unknown", source, dir, mtext, created};
	int rc = bng_store_run(&e->store,
			       "INSERT INTO kernels (id, name, version, source, dir, manifest, created_at)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
			       7, params);
	free(mtext);
	if (rc) {
		bng_rm_rf(dir);
		return rc;
	}
	return bng_kernel_get(e, id, result);
}

int bng_m_kernel_import(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	const char *name = json_string_value(json_object_get(params, "name"));
	const char *from = json_string_value(json_object_get(params, "from"));
	const char *deb = json_string_value(json_object_get(params, "deb"));
	if (!from == !deb)
		return bng_err(BANGER_EINVAL, "kernel.import needs exactly one of from (a directory) or deb (a package)");
	const char *src = from ? from : deb;
	if (src[0] != '/')
		return bng_err(BANGER_EINVAL, "kernel import: %s must be an absolute path", src);
	char *key = NULL;
	int rc = claim(e, name, op, &key);
	if (rc)
		return rc;
	char id[13];
	bng_random_id(id);
	char *dir = bng_asprintf("%s/%s", e->kernels_dir, id);
	json_t *manifest = NULL;
	rc = from ? bng_kernel_import_dir(from, dir, op, &manifest) : bng_kernel_import_deb(deb, dir, op, &manifest);
	if (!rc) {
		char *source = bng_asprintf("%s:%s", from ? "dir" : "deb", src);
		rc = record(e, id, name, dir, source, manifest, result);
		free(source);
	}
	json_decref(manifest);
	free(dir);
	unclaim(e, key);
	return rc;
}

int bng_m_kernel_pull(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	const char *name = json_string_value(json_object_get(params, "name"));
	json_t *catalog;
	int rc = bng_catalog_load(e, "kernels", &catalog);
	if (rc)
		return rc;
	json_t *entry = bng_catalog_find(catalog, "kernels", name);
	if (!entry) {
		json_decref(catalog);
		return bng_err(BANGER_ENOTFOUND, "kernel '%s' is not in the catalog", name);
	}
	char *key = NULL;
	rc = claim(e, name, op, &key);
	char *bundle = NULL, *staging = NULL, *dir = NULL;
	char id[13];
	bng_random_id(id);
	if (!rc)
		rc = bng_catalog_fetch(e, entry, op, &bundle);
	if (!rc) {
		static const char *const allowed[] = {BNG_KERNEL_VMLINUX, BNG_KERNEL_VMLINUZ, BNG_KERNEL_INITRD,
						      BNG_KERNEL_MODULES, BNG_KERNEL_MANIFEST, "config", NULL};
		staging = bng_asprintf("%s/.staging-%s", e->kernels_dir, id);
		dir = bng_asprintf("%s/%s", e->kernels_dir, id);
		bng_op_event(op, json_pack("{s:s}", "stage", "extract"));
		rc = bng_mkdir_p(staging, 0700);
		if (!rc)
			rc = bng_bundle_extract(bundle, staging, allowed);
		unlink(bundle);
	}
	json_t *manifest = NULL;
	if (!rc) {
		char *vmlinux = bng_asprintf("%s/%s", staging, BNG_KERNEL_VMLINUX);
		char *initrd = bng_asprintf("%s/%s", staging, BNG_KERNEL_INITRD);
		char *mpath = bng_asprintf("%s/%s", staging, BNG_KERNEL_MANIFEST);
		if (access(vmlinux, R_OK) != 0 || access(initrd, R_OK) != 0)
			rc = bng_err(BANGER_EPROTO, "kernel bundle '%s' must hold vmlinux and initrd.img", name);
		char *text = NULL;
		if (!rc && bng_read_file(mpath, &text, NULL) == 0)
			manifest = json_loads(text, 0, NULL);
		free(text);
		free(vmlinux);
		free(initrd);
		free(mpath);
	}
	if (!rc)
		rc = bng_publish_dir(staging, dir);
	if (!rc) {
		char *source = bng_asprintf("catalog:%s", name);
		rc = record(e, id, name, dir, source, manifest, result);
		free(source);
	}
	if (rc && staging) {
		char *msg = bng_strdup(banger_error_last());
		bng_rm_rf(staging);
		bng_err(rc, "%s", msg);
		free(msg);
	}
	json_decref(manifest);
	json_decref(catalog);
	free(bundle);
	free(staging);
	free(dir);
	unclaim(e, key);
	return rc;
}

int bng_m_kernel_list(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)params;
	(void)op;
	json_t *rows;
	char *sql = bng_asprintf("SELECT %s FROM kernels ORDER BY created_at, name", columns);
	int rc = bng_store_query(&e->store, &rows, sql, 0, NULL);
	free(sql);
	if (rc)
		return rc;
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) decorate(row);
	*result = json_pack("{s:o}", "kernels", rows);
	return 0;
}

int bng_m_kernel_show(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	return bng_kernel_get(e, json_string_value(json_object_get(params, "name")), result);
}

int bng_m_kernel_rm(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	json_t *k;
	int rc = bng_kernel_get(e, json_string_value(json_object_get(params, "name")), &k);
	if (rc)
		return rc;
	rc = bng_store_delete_unused(&e->store, "kernels", "kernel_id", "kernel", k);
	if (!rc)
		rc = bng_rm_rf(json_string_value(json_object_get(k, "dir")));
	if (!rc)
		*result = json_pack("{s:O,s:O}", "id", json_object_get(k, "id"), "name", json_object_get(k, "name"));
	json_decref(k);
	return rc;
}

int bng_m_kernel_catalog(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)params;
	(void)op;
	return bng_catalog_with_state(e, "kernels", bng_kernel_get, result);
}

/* Image store: build from tars, register, list, show, remove. */
#include "image.h"
#include "../core/units.h"
#include "../fs/ext4.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char image_columns[] = "id, name, source, digest, rootfs, managed, kernel, config, created_at";

/* Adds apparent and allocated sizes and parses the stored config. */
static void decorate(json_t *img)
{
	struct stat st;
	const char *rootfs = json_string_value(json_object_get(img, "rootfs"));
	if (rootfs && stat(rootfs, &st) == 0) {
		json_object_set_new(img, "rootfs_size", json_integer((json_int_t)st.st_size));
		json_object_set_new(img, "disk_usage", json_integer((json_int_t)st.st_blocks * 512));
	} else {
		json_object_set_new(img, "rootfs_size", json_null());
		json_object_set_new(img, "disk_usage", json_null());
	}
	json_t *cfg = json_object_get(img, "config");
	if (json_is_string(cfg))
		json_object_set_new(img, "config", json_loads(json_string_value(cfg), 0, NULL));
	json_object_set_new(img, "managed", json_boolean(json_integer_value(json_object_get(img, "managed"))));
}

int bng_image_get(bng_engine *e, const char *ref, json_t **image)
{
	int rc = bng_store_get(&e->store, "images", image_columns, ref, "image", image);
	if (!rc)
		decorate(*image);
	return rc;
}

static int name_free(bng_engine *e, const char *name)
{
	json_t *img;
	int rc = bng_image_get(e, name, &img);
	if (rc == BANGER_ENOTFOUND)
		return 0;
	if (!rc) {
		json_decref(img);
		rc = bng_err(BANGER_EEXIST, "image '%s' already exists", name);
	}
	return rc;
}

static int insert_row(bng_engine *e, const char *id, const char *name, const char *rootfs, bool managed, json_t *meta)
{
	char created[32];
	bng_now_iso(created);
	char *config = json_object_get(meta, "config") ? json_dumps(json_object_get(meta, "config"), JSON_COMPACT) : NULL;
	const char *params[] = {
		id, name, json_string_value(json_object_get(meta, "source")),
		json_string_value(json_object_get(meta, "digest")), rootfs, managed ? "1" : "0",
		json_string_value(json_object_get(meta, "kernel")), config, created,
	};
	int rc = bng_store_run(&e->store,
			       "INSERT INTO images (id, name, source, digest, rootfs, managed, kernel, config, created_at)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
			       9, params);
	free(config);
	return rc;
}

int bng_image_publish(bng_engine *e, const char *id, const char *name, const char *staging, json_t *meta,
		      json_t **result)
{
	char *final = bng_asprintf("%s/%s", e->images_dir, id);
	char *published = bng_asprintf("%s/rootfs.ext4", final);
	int rc = name_free(e, name); /* checked again: a concurrent creator may have won */
	if (!rc)
		rc = bng_publish_dir(staging, final);
	if (!rc && (rc = insert_row(e, id, name, published, true, meta)) != 0)
		bng_rm_rf(final);
	if (!rc)
		rc = bng_image_get(e, id, result);
	free(final);
	free(published);
	return rc;
}

int bng_image_build(bng_engine *e, const char *name, const char *const *tars, const char *const *labels,
		    size_t ntars, const char *size_str, json_t *meta, bng_op *op, json_t **result)
{
	int rc = bng_check_name(name, "image");
	if (rc)
		return rc;
	char id[13];
	bng_random_id(id);
	char *staging = bng_asprintf("%s/.staging-%s", e->images_dir, id);
	char *rootfs = bng_asprintf("%s/rootfs.ext4", staging);
	bng_ext4 *fs = NULL;
	uint64_t size = 0, inodes = 0;

	rc = name_free(e, name);
	if (!rc && size_str && (rc = bng_parse_size(size_str, &size)) == 0 && size < (64ull << 20))
		rc = bng_err(BANGER_EINVAL, "size %s is too small: images need at least 64M", size_str);
	if (!rc) {
		/* read the layers once up front for content-aware sizing and inodes */
		bng_op_event(op, json_pack("{s:s}", "stage", "scan"));
		bng_tar_stats st = {0};
		for (size_t i = 0; !rc && i < ntars; i++)
			rc = bng_tar_scan(tars[i], labels ? labels[i] : NULL, &st);
		uint64_t auto_size = bng_ext4_size_for(&st, &inodes);
		if (!rc && size && size < st.data_bytes)
			rc = bng_err(BANGER_EINVAL, "size %s is smaller than the content (%llu bytes)", size_str,
				     (unsigned long long)st.data_bytes);
		if (!size)
			size = auto_size;
	}
	if (!rc)
		rc = bng_mkdir_p(staging, 0700);
	if (!rc)
		rc = bng_ext4_create(&fs, rootfs, size, inodes);
	for (size_t i = 0; !rc && i < ntars; i++) {
		bng_op_event(op, json_pack("{s:s,s:I,s:I}", "stage", "layer", "done", (json_int_t)i, "total", (json_int_t)ntars));
		rc = bng_ext4_apply_tar(fs, tars[i], labels ? labels[i] : NULL, op);
	}
	if (rc) {
		bng_ext4_abort(fs);
	} else {
		bng_op_event(op, json_pack("{s:s}", "stage", "publish"));
		rc = bng_ext4_close(fs);
	}
	if (!rc)
		rc = bng_image_publish(e, id, name, staging, meta, result);
	if (rc) {
		char *msg = bng_strdup(banger_error_last());
		bng_rm_rf(staging); /* nothing half-built stays behind */
		bng_err(rc, "%s", msg);
		free(msg);
	}
	free(staging);
	free(rootfs);
	return rc;
}

int bng_image_reserve(bng_engine *e, const char *name, bng_op *op, char **key)
{
	int rc = bng_check_name(name, "image");
	if (rc)
		return rc;
	*key = bng_asprintf("image:%s", name);
	rc = bng_engine_reserve(e, *key, op);
	if (rc) {
		free(*key);
		*key = NULL;
	}
	return rc;
}

void bng_image_release(bng_engine *e, char *key)
{
	if (key)
		bng_engine_release(e, key);
	free(key);
}

int bng_m_image_import(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	json_t *tars = json_object_get(params, "tars");
	size_t n = json_array_size(tars), i;
	if (n == 0 || n > 128)
		return bng_err(BANGER_EINVAL, "image.import: give 1 to 128 tars");
	const char **paths = bng_xcalloc(n, sizeof(char *));
	json_t *t;
	json_array_foreach(tars, i, t) {
		paths[i] = json_string_value(t);
		if (!paths[i] || paths[i][0] != '/') {
			free(paths);
			return bng_err(BANGER_EINVAL, "image.import: tars must be absolute paths");
		}
	}
	const char *label = json_string_value(json_object_get(params, "source"));
	json_t *meta = json_pack("{s:s+}", "source", "tar:", label ? label : paths[0]);
	json_t *kernel = json_object_get(params, "kernel");
	if (kernel)
		json_object_set(meta, "kernel", kernel);
	const char *name = json_string_value(json_object_get(params, "name"));
	char *key = NULL;
	int rc = bng_image_reserve(e, name, op, &key);
	if (!rc)
		rc = bng_image_build(e, name, paths, NULL, n, json_string_value(json_object_get(params, "size")), meta,
				     op, result);
	bng_image_release(e, key);
	json_decref(meta);
	free(paths);
	return rc;
}

int bng_m_image_register(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	const char *name = json_string_value(json_object_get(params, "name"));
	const char *rootfs = json_string_value(json_object_get(params, "rootfs"));
	int rc = bng_check_name(name, "image");
	if (rc)
		return rc;
	if (rootfs[0] != '/')
		return bng_err(BANGER_EINVAL, "rootfs must be an absolute path (got '%s')", rootfs);
	bng_ext4 *fs;
	rc = bng_ext4_open(&fs, rootfs); /* it must be an ext4 image we can read */
	if (rc)
		return bng_err(rc, "cannot register %s: %s", rootfs, banger_error_last());
	bng_ext4_abort(fs);
	rc = name_free(e, name);
	if (rc)
		return rc;
	char id[13];
	bng_random_id(id);
	json_t *meta = json_pack("{s:s+}", "source", "register:", rootfs);
	json_t *kernel = json_object_get(params, "kernel");
	if (kernel)
		json_object_set(meta, "kernel", kernel);
	rc = insert_row(e, id, name, rootfs, false, meta);
	json_decref(meta);
	return rc ? rc : bng_image_get(e, id, result);
}

int bng_m_image_list(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)params;
	(void)op;
	json_t *rows;
	char *sql = bng_asprintf("SELECT %s FROM images ORDER BY created_at, name", image_columns);
	int rc = bng_store_query(&e->store, &rows, sql, 0, NULL);
	free(sql);
	if (rc)
		return rc;
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) decorate(row);
	*result = json_pack("{s:o}", "images", rows);
	return 0;
}

int bng_m_image_show(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	return bng_image_get(e, json_string_value(json_object_get(params, "name")), result);
}

int bng_m_image_rm(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	json_t *img;
	int rc = bng_image_get(e, json_string_value(json_object_get(params, "name")), &img);
	if (rc)
		return rc;
	const char *id = json_string_value(json_object_get(img, "id"));
	rc = bng_store_delete_unused(&e->store, "images", "image_id", "image", img);
	if (!rc && json_is_true(json_object_get(img, "managed"))) {
		char *dir = bng_asprintf("%s/%s", e->images_dir, id);
		rc = bng_rm_rf(dir); /* the row is gone: leftovers are cleaned at next start anyway */
		free(dir);
	}
	if (!rc)
		*result = json_pack("{s:O,s:O}", "id", json_object_get(img, "id"), "name", json_object_get(img, "name"));
	json_decref(img);
	return rc;
}

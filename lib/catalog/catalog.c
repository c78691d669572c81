/* Catalog loading, bundle download and hardened bundle extraction. */
#include "catalog.h"
#include "../core/http.h"
#include "../fs/ext4.h"

#include "../core/lazy_archive.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The catalogs shipped with this build: empty until release CI publishes
 * bundles (as the reference implementation's started). */
static const char embedded_images[] = "{\"version\": 1, \"images\": []}";
static const char embedded_kernels[] = "{\"version\": 1, \"kernels\": []}";

int bng_catalog_load(bng_engine *e, const char *kind, json_t **catalog)
{
	char key[32];
	snprintf(key, sizeof(key), "%s_catalog", !strcmp(kind, "images") ? "image" : "kernel");
	const char *where = bng_config_str(&e->config, key);
	char *text = NULL;
	int rc = 0;
	if (*where)
		rc = bng_http_get(where, 4 << 20, &text, NULL);
	if (rc)
		return bng_err(rc, "cannot read the %s catalog (%s = %s): %s", kind, key, where, banger_error_last());
	json_error_t jerr;
	json_t *doc = json_loads(text ? text : !strcmp(kind, "images") ? embedded_images : embedded_kernels, 0, &jerr);
	free(text);
	if (!doc || !json_is_array(json_object_get(doc, kind))) {
		json_decref(doc);
		return bng_err(BANGER_EPROTO, "the %s catalog %s is not valid: %s", kind, *where ? where : "(embedded)",
			       doc ? "no list of entries" : jerr.text);
	}
	*catalog = doc;
	return 0;
}

json_t *bng_catalog_find(json_t *catalog, const char *kind, const char *name)
{
	size_t i;
	json_t *entry;
	json_array_foreach(json_object_get(catalog, kind), i, entry) {
		const char *n = json_string_value(json_object_get(entry, "name"));
		if (n && !strcmp(n, name))
			return entry;
	}
	return NULL;
}

int bng_catalog_with_state(bng_engine *e, const char *kind, int (*get)(bng_engine *, const char *, json_t **),
			   json_t **result)
{
	json_t *catalog;
	int rc = bng_catalog_load(e, kind, &catalog);
	if (rc)
		return rc;
	size_t i;
	json_t *entry;
	json_array_foreach(json_object_get(catalog, kind), i, entry) {
		json_t *local = NULL;
		const char *n = json_string_value(json_object_get(entry, "name"));
		json_object_set_new(entry, "pulled", json_boolean(n && get(e, n, &local) == 0));
		json_decref(local);
	}
	*result = json_pack("{s:O}", kind, json_object_get(catalog, kind));
	json_decref(catalog);
	return 0;
}

int bng_catalog_fetch(bng_engine *e, json_t *entry, bng_op *op, char **path)
{
	const char *url = json_string_value(json_object_get(entry, "url"));
	const char *sha = json_string_value(json_object_get(entry, "sha256"));
	json_int_t size = json_integer_value(json_object_get(entry, "size"));
	if (!url || !sha || strlen(sha) != 64 || size <= 0)
		return bng_err(BANGER_EPROTO, "catalog entry '%s' needs url, sha256 and size",
			       json_string_value(json_object_get(entry, "name")));
	char id[13];
	bng_random_id(id);
	*path = bng_asprintf("%s/bundle-%s.tar.zst", e->tmp_dir, id);
	int rc = bng_http_download(url, *path, sha, (uint64_t)size, op);
	if (rc) {
		free(*path);
		*path = NULL;
	}
	return rc;
}

static bool top_allowed(const char *name, const char *const *allowed)
{
	if (!allowed)
		return true;
	size_t n = strcspn(name, "/");
	for (; *allowed; allowed++)
		if (strlen(*allowed) == n && !strncmp(*allowed, name, n))
			return true;
	return false;
}

int bng_bundle_extract(const char *bundle, const char *dir, const char *const *allowed)
{
	struct archive *in = archive_read_new();
	archive_read_support_filter_all(in);
	archive_read_support_format_tar(in);
	struct archive *out = archive_write_disk_new();
	/* names are checked by bng_clean_member_name, then prefixed with dir;
	 * libarchive still refuses ".." and writing through symlinks */
	archive_write_disk_set_options(out, ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
						    ARCHIVE_EXTRACT_SPARSE | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM);
	int rc = 0;
	if (archive_read_open_filename(in, bundle, 1 << 16) != ARCHIVE_OK)
		rc = bng_err(BANGER_EIO, "cannot read bundle %s: %s", bundle, archive_error_string(in));
	struct archive_entry *e;
	int r = ARCHIVE_OK;
	while (!rc && (r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
		char name[4096];
		rc = bng_clean_member_name(archive_entry_pathname(e) ? archive_entry_pathname(e) : "", name, sizeof(name),
					   "bundle entry");
		if (rc)
			break;
		mode_t type = archive_entry_filetype(e);
		if (!*name)
			continue;
		if ((type != AE_IFREG && type != AE_IFDIR) || archive_entry_hardlink(e)) {
			rc = bng_err(BANGER_EINVAL, "bundle entry '%s' is not a plain file or directory", name);
			break;
		}
		if (!top_allowed(name, allowed)) {
			rc = bng_err(BANGER_EINVAL, "bundle entry '%s' is not expected in this bundle", name);
			break;
		}
		char *target = bng_asprintf("%s/%s", dir, name);
		archive_entry_set_pathname(e, target);
		free(target);
		if (archive_write_header(out, e) != ARCHIVE_OK) {
			rc = bng_err(BANGER_EINVAL, "bundle entry '%s' rejected: %s", name, archive_error_string(out));
			break;
		}
		const void *buf;
		size_t len;
		la_int64_t off;
		int dr;
		while ((dr = archive_read_data_block(in, &buf, &len, &off)) == ARCHIVE_OK)
			if (archive_write_data_block(out, buf, len, off) != ARCHIVE_OK) {
				rc = bng_err(BANGER_EIO, "cannot write %s: %s", name, archive_error_string(out));
				break;
			}
		if (!rc && dr != ARCHIVE_EOF)
			rc = bng_err(BANGER_EIO, "bundle %s is truncated or corrupt: %s", bundle, archive_error_string(in));
		if (!rc && archive_write_finish_entry(out) != ARCHIVE_OK)
			rc = bng_err(BANGER_EIO, "cannot finish %s: %s", name, archive_error_string(out));
	}
	if (!rc && r != ARCHIVE_EOF)
		rc = bng_err(BANGER_EIO, "bundle %s is not a readable tar: %s", bundle, archive_error_string(in));
	archive_read_free(in);
	archive_write_free(out);
	return rc;
}

/* `image.pull`: a catalog bundle by name, otherwise an OCI image from a
 * registry, layers streamed from the blob cache into the ext4 writer. */
#include "../catalog/catalog.h"
#include "image.h"
#include "../fs/ext4.h"
#include "../oci/oci.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int pull_bundle(bng_engine *e, json_t *entry, const char *name, json_t *params, bng_op *op, json_t **result)
{
	char *bundle = NULL;
	int rc = bng_catalog_fetch(e, entry, op, &bundle);
	if (rc)
		return rc;
	char id[13];
	bng_random_id(id);
	char *staging = bng_asprintf("%s/.staging-%s", e->images_dir, id);
	char *rootfs = bng_asprintf("%s/rootfs.ext4", staging);
	static const char *const allowed[] = {"rootfs.ext4", "manifest.json", NULL};
	bng_op_event(op, json_pack("{s:s}", "stage", "extract"));
	rc = bng_mkdir_p(staging, 0700);
	if (!rc)
		rc = bng_bundle_extract(bundle, staging, allowed);
	unlink(bundle);
	bng_ext4 *fs = NULL;
	if (!rc && (rc = bng_ext4_open(&fs, rootfs)) != 0)
		rc = bng_err(rc, "bundle for '%s' has no usable rootfs.ext4: %s", name, banger_error_last());
	bng_ext4_abort(fs);
	if (!rc) {
		json_t *kernel = json_object_get(params, "kernel") ? json_object_get(params, "kernel")
								  : json_object_get(entry, "kernel");
		json_t *meta = json_pack("{s:s+,s:s+,s:O?}", "source", "catalog:",
					 json_string_value(json_object_get(entry, "name")), "digest", "sha256:",
					 json_string_value(json_object_get(entry, "sha256")), "kernel", kernel);
		rc = bng_image_publish(e, id, name, staging, meta, result);
		json_decref(meta);
	}
	if (rc) {
		char *msg = bng_strdup(banger_error_last());
		bng_rm_rf(staging);
		bng_err(rc, "%s", msg);
		free(msg);
	}
	free(bundle);
	free(staging);
	free(rootfs);
	return rc;
}

static int pull_oci(bng_engine *e, const char *ref, const char *name, json_t *params, bng_op *op, json_t **result)
{
	bng_oci_image img;
	int rc = bng_oci_pull(e->paths.cache_dir, ref, bng_config_str(&e->config, "insecure_registries"), op, &img);
	if (!rc) {
		/* errors name the layer as the user knows it, not its cache path */
		const char **layers = bng_xcalloc(img.n_layers + 1, sizeof(char *));
		char **labels = bng_xcalloc(img.n_layers + 1, sizeof(char *));
		for (size_t i = 0; i < img.n_layers; i++) {
			layers[i] = img.layers[i].path;
			labels[i] = bng_asprintf("layer %zu of %zu (%.19s…) of %s", i + 1, img.n_layers,
						 img.layers[i].digest, ref);
		}
		json_t *meta = json_pack("{s:s+,s:s,s:O,s:O?}", "source", "oci:", ref, "digest", img.manifest_digest,
					 "config", img.runtime, "kernel", json_object_get(params, "kernel"));
		rc = bng_image_build(e, name, layers, (const char *const *)labels, img.n_layers,
				     json_string_value(json_object_get(params, "size")), meta, op, result);
		json_decref(meta);
		for (size_t i = 0; i < img.n_layers; i++)
			free(labels[i]);
		free(labels);
		free(layers);
	}
	bng_oci_image_free(&img);
	return rc;
}

int bng_m_image_pull(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	const char *ref = json_string_value(json_object_get(params, "ref"));
	const char *name = json_string_value(json_object_get(params, "name"));
	json_t *catalog = NULL;
	int rc = bng_catalog_load(e, "images", &catalog);
	json_t *entry = rc ? NULL : bng_catalog_find(catalog, "images", ref);
	char *derived = NULL;
	if (!rc && !name) {
		if (entry)
			name = ref;
		else if (!(rc = bng_oci_default_name(ref, &derived)))
			name = derived;
	}
	char *key = NULL;
	if (!rc)
		rc = bng_image_reserve(e, name, op, &key);
	if (!rc)
		rc = entry ? pull_bundle(e, entry, name, params, op, result) : pull_oci(e, ref, name, params, op, result);
	bng_image_release(e, key);
	json_decref(catalog);
	free(derived);
	return rc;
}

int bng_m_image_catalog(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)params;
	(void)op;
	return bng_catalog_with_state(e, "images", bng_image_get, result);
}

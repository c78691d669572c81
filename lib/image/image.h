/* Images: a published rootfs.ext4 (plus its source, digest and OCI config)
 * recorded in the state store. */
#ifndef BANGER_IMAGE_H
#define BANGER_IMAGE_H

#include "../method/method.h"

/* One creator per image name (see bng_engine_reserve): take it before
 * checking whether the name exists, release it (NULL is fine) after. */
int bng_image_reserve(bng_engine *e, const char *name, bng_op *op, char **key);
void bng_image_release(bng_engine *e, char *key);

/* Builds an image from tar layers (oldest first) and publishes it
 * atomically: staging dir + rename + one INSERT. Hold the name's reservation. labels[i] (labels
 * NULL: the paths) names layer i in errors. size_str (may be NULL)
 * overrides the content-aware size. meta holds the row's source, digest,
 * config and kernel. On success *result is the image's JSON. */
int bng_image_build(bng_engine *e, const char *name, const char *const *tars, const char *const *labels,
		    size_t ntars, const char *size_str, json_t *meta, bng_op *op, json_t **result);

/* Publishes staging (holding rootfs.ext4) as image id/name: rename, then
 * one INSERT (meta: source, digest, config, kernel). */
int bng_image_publish(bng_engine *e, const char *id, const char *name, const char *staging, json_t *meta,
		      json_t **result);

/* The image's row as JSON (by name or id), with sizes from disk. */
int bng_image_get(bng_engine *e, const char *ref, json_t **image);

/* The image module (methods.c): the image.* methods and hooks, for lib/modules.c. */
extern const bng_module bng_image_module;

int bng_m_image_import(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_image_register(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_image_build(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_image_pull(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_image_catalog(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_image_list(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_image_show(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_image_rm(bng_engine *e, json_t *params, json_t **result, bng_op *op);

#endif

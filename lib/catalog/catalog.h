/* Catalogs: lists of prebuilt bundles (.tar.zst) with sha256 and size. The
 * catalog compiled into the library is replaced by the config keys
 * image_catalog / kernel_catalog (a path or an http(s) URL). */
#ifndef BANGER_CATALOG_H
#define BANGER_CATALOG_H

#include "../method/method.h"

/* kind: "images" or "kernels". *catalog is {"version":1,"<kind>":[entries]};
 * an entry is {name, description, url, sha256, size, kernel?}. */
int bng_catalog_load(bng_engine *e, const char *kind, json_t **catalog);
/* The entry named name (borrowed from catalog), or NULL. */
json_t *bng_catalog_find(json_t *catalog, const char *kind, const char *name);
/* The catalog of kind with each entry marked "pulled" when get(e, name)
 * finds it locally: {"<kind>": [entries]} (the image/kernel.catalog result). */
int bng_catalog_with_state(bng_engine *e, const char *kind, int (*get)(bng_engine *, const char *, json_t **),
			   json_t **result);

/* Downloads entry's bundle into tmp_dir, checking its sha256 and size;
 * *path is the file (malloc'd; the caller unlinks it). */
int bng_catalog_fetch(bng_engine *e, json_t *entry, bng_op *op, char **path);

/* Extracts bundle into dir (which must exist) with libarchive's secure
 * extraction (no "..", no absolute paths, no writing through symlinks),
 * keeping only regular files and directories; sparse-aware. allowed (NULL:
 * anything) lists the top-level names a bundle may hold. */
int bng_bundle_extract(const char *bundle, const char *dir, const char *const *allowed);

#endif

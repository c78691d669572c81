/* OCI registry client: image references, anonymous pulls over the
 * distribution v2 API, and a verified blob cache in OCI image-layout form
 * (<cache_dir>/oci/blobs/sha256/<hex>). Internal to libbanger. */
#ifndef BANGER_OCI_H
#define BANGER_OCI_H

#include "../core/internal.h"
#include "../core/op.h"

#include <stdint.h>

/* ---- references ---- */

/* A parsed docker-style reference. Docker Hub names are normalised:
 * "debian" is registry-1.docker.io / library/debian / tag "latest". */
typedef struct bng_oci_ref {
	char registry[256];   /* host[:port]; IPv6 as "[::1]:5000" */
	char repository[256]; /* path components, e.g. "library/debian" */
	char tag[129];        /* "" when the reference names only a digest */
	char digest[72];      /* "sha256:<64 hex>" or "" */
} bng_oci_ref;

/* Parses s (e.g. "debian:bookworm", "ghcr.io/a/b:1", "localhost:5000/x:1",
 * "127.0.0.1:5000/x@sha256:<hex>"); BANGER_EINVAL with the reason if bad. */
int bng_oci_parse_ref(const char *s, bng_oci_ref *out);
/* Canonical text "registry/repository[:tag][@digest]" (malloc'd). */
char *bng_oci_ref_string(const bng_oci_ref *r);
/* Default banger image name for a reference: last path component plus the
 * tag (omitted for "latest"; the digest's first 12 hex when there is no
 * tag), lowercase [a-z0-9-], 1-63 characters, no leading/trailing '-'.
 * "debian:bookworm" -> "debian-bookworm"; malloc'd. */
char *bng_oci_ref_default_name(const bng_oci_ref *r);
/* Parses ref and derives its default name into *out (malloc'd). */
int bng_oci_default_name(const char *ref, char **out);

/* ---- pulled images ---- */

typedef enum bng_oci_compression {
	BNG_OCI_TAR = 0,
	BNG_OCI_TAR_GZIP = 1,
	BNG_OCI_TAR_ZSTD = 2,
} bng_oci_compression;

/* A verified blob in the cache. */
typedef struct bng_oci_blob {
	char digest[72];  /* "sha256:<hex>" */
	char *media_type; /* as the manifest declares it */
	uint64_t size;
	char *path; /* <cache_dir>/oci/blobs/sha256/<hex> */
	bng_oci_compression compression; /* layers only */
} bng_oci_blob;

typedef struct bng_oci_image {
	char *ref;          /* the reference as given */
	bng_oci_ref parsed; /* ... and parsed */
	/* Digest of the linux/amd64 image manifest (for a manifest list or
	 * index, the selected entry's, not the list's). */
	char manifest_digest[72];
	/* Digest of what the reference resolved to: the list/index when there
	 * was one, otherwise manifest_digest. Pull this digest to repeat the
	 * pull exactly. */
	char resolved_digest[72];
	bng_oci_blob config;
	bng_oci_blob *layers; /* in application order, lowest first */
	size_t n_layers;
	/* The whole image config document (os, architecture, rootfs.diff_ids,
	 * history, ...). */
	json_t *config_json;
	/* config_json's "config" object (Env, Cmd, Entrypoint, WorkingDir,
	 * User, ...): borrowed from config_json, never NULL (may be empty). */
	json_t *runtime;
} bng_oci_image;

/* Pulls ref for linux/amd64 into <cache_dir>/oci and fills *out (free it
 * with bng_oci_image_free, also after a failure). Emits
 * {"stage":"resolve","ref"} once and {"stage":"pull","digest","done","total"}
 * per blob (throttled; the final one has done == total and "cached": true
 * when the blob was already present). Polls op for cancellation
 * (BANGER_ECANCELED). A reference by digest whose blobs are all cached needs
 * no network; one by tag costs one manifest request.
 * Plain http is used for localhost, 127.0.0.1, ::1 and the hosts (host or
 * host:port) in insecure_registries (comma separated; config insecure_registries). */
int bng_oci_pull(const char *cache_dir, const char *ref, const char *insecure_registries, bng_op *op,
		 bng_oci_image *out);
void bng_oci_image_free(bng_oci_image *img);
/* Removes the temp and lock files that killed pulls left under
 * <cache_dir>/oci, for every blob no running pull holds. */
int bng_oci_cache_sweep(const char *cache_dir);
/* The image as JSON (ref, digests, config, layers, image_config); new
 * reference. */
json_t *bng_oci_image_to_json(const bng_oci_image *img);

/* Media type name of a compression ("tar", "tar+gzip", "tar+zstd"). */
const char *bng_oci_compression_name(bng_oci_compression c);

#endif

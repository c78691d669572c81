/* Pieces shared by the OCI module's files: the blob cache (cache.c) and the
 * HTTP side of the registry protocol (http.c). */
#ifndef BANGER_OCI_INT_H
#define BANGER_OCI_INT_H

#include "oci.h"
#include "../core/sha256.h"

#include "../core/lazy_curl.h"

/* "sha256:" + 64 lowercase hex: the only digests we hash, and safe to use
 * as a file name. */
bool oci_digest_valid(const char *digest);

/* ---- blob cache (cache.c) ---- */

typedef struct oci_cache {
	char *root;  /* <cache_dir>/oci */
	char *blobs; /* <root>/blobs/sha256 */
} oci_cache;

/* Creates the layout directories and the oci-layout marker. */
int oci_cache_open(oci_cache *c, const char *cache_dir);
void oci_cache_close(oci_cache *c);
char *oci_cache_path(const oci_cache *c, const char *digest);

/* Checks that path holds exactly size bytes (size < 0: any) hashing to
 * digest. BANGER_ENOTFOUND if absent, BANGER_EPROTO if it does not match. */
int oci_cache_verify(const char *path, const char *digest, int64_t size, bng_op *op);

/* Exclusive flock on <blobs>/<hex>.lock, waiting (cancellably) for other
 * threads and processes. Unlock removes the file, so none stays in the
 * cache (one left by a killed pull goes with the next pull of its blob). */
int oci_cache_lock(const oci_cache *c, const char *digest, bng_op *op, int *fd);
void oci_cache_unlock(const oci_cache *c, const char *digest, int fd);

/* A download in progress: a temp file next to its final name, hashed as it
 * is written. Call with the blob's lock held. */
typedef struct oci_writer {
	int fd;
	char *tmp;
	char *final;
	bng_sha256 sha;
	uint64_t written;
} oci_writer;

int oci_writer_open(const oci_cache *c, const char *digest, oci_writer *w);
int oci_writer_write(oci_writer *w, const void *data, size_t len);
/* Checks digest and size, then fsync + rename into place. On any failure the
 * temp file is removed. */
int oci_writer_commit(oci_writer *w, const char *digest, uint64_t size);
/* Removes the temp file (no-op after commit). */
void oci_writer_abort(oci_writer *w);

/* Stores a small blob already in memory (a manifest) under its digest. */
int oci_cache_put(const oci_cache *c, const char *digest, const void *data, size_t len, bng_op *op);
/* Reads a small cached blob, verified; BANGER_ENOTFOUND when absent or when
 * it was corrupt (then it is deleted). */
int oci_cache_get(const oci_cache *c, const char *digest, size_t max, bng_op *op, char **data, size_t *len);

/* Records ref_name -> descriptor in <root>/index.json. */
int oci_cache_tag(const oci_cache *c, const char *ref_name, const char *media_type, const char *digest,
		  uint64_t size);

/* ---- manifests and indexes (pull.c): pure checks of registry JSON ---- */

typedef struct oci_desc {
	const char *media_type; /* NULL when absent; borrowed from the document */
	const char *digest;     /* valid (oci_digest_valid) */
	uint64_t size;
} oci_desc;

typedef enum { OCI_KIND_INDEX, OCI_KIND_MANIFEST } oci_manifest_kind;

/* Parses a manifest or index body and tells which it is (its "mediaType",
 * else content_type, else its shape); *media_type is one of the four
 * supported types (a static string). *doc is a new reference on success,
 * NULL on failure (BANGER_EPROTO or BANGER_EUNSUPPORTED). ref_text names
 * the image in errors. */
int oci_manifest_parse(const char *ref_text, const char *body, size_t len, const char *content_type, json_t **doc,
		       oci_manifest_kind *kind, const char **media_type);
/* The linux/amd64 image manifest an index lists (borrowed from index). */
int oci_index_select(const char *ref_text, json_t *index, oci_desc *out);

/* What an image manifest declares, checked: config descriptor and type,
 * sizes, layer descriptors and their compressions. */
typedef struct oci_plan {
	oci_desc config;
	oci_desc *layers;
	bng_oci_compression *compression; /* per layer */
	size_t n_layers;
} oci_plan;

/* Fills *out (free with oci_plan_free; nothing to free on failure). */
int oci_manifest_plan(const char *ref_text, json_t *manifest, oci_plan *out);
void oci_plan_free(oci_plan *p);

/* ---- registry HTTP (http.c) ---- */

typedef struct oci_client {
	CURL *curl;
	bng_op *op;
	const char *ref_text; /* for messages */
	const bng_oci_ref *ref;
	char *base;  /* "http[s]://registry/v2/repository" */
	char *token; /* bearer token, once we have one */
	char errbuf[CURL_ERROR_SIZE];
} oci_client;

/* Receives the body of a 2xx response; returns 0 or a banger error code
 * (with bng_err set) to abort the transfer. */
typedef int (*oci_sink_fn)(void *ud, const char *data, size_t len);

typedef struct oci_resp {
	long status;
	char *content_type;
	char *docker_digest; /* Docker-Content-Digest */
	char *body;          /* the error body, or the body when no sink was given */
	size_t body_len;
	char *url;           /* final URL after redirects */
} oci_resp;

int oci_client_init(oci_client *c, const bng_oci_ref *ref, const char *ref_text, const char *insecure, bng_op *op);
void oci_client_free(oci_client *c);
void oci_resp_free(oci_resp *r);
/* True for registries spoken to over plain http. */
bool oci_registry_insecure(const char *registry, const char *insecure);

/* GETs base + path (e.g. "/manifests/latest"). The body goes to sink when
 * given, otherwise into r->body (at most max bytes, else BANGER_ETOOBIG).
 * Handles the anonymous bearer-token dance on 401. Returns 0 whenever an
 * HTTP response arrived, whatever its status; negative on transport
 * failures, cancellation or a sink error. */
int oci_get(oci_client *c, const char *path, const char *accept, oci_sink_fn sink, void *ud, size_t max,
	    oci_resp *r);
/* Turns a non-2xx response into a banger error; what names the object
 * ("manifest", "blob sha256:..."). */
int oci_http_error(const oci_client *c, const oci_resp *r, const char *what);

#endif

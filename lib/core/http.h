/* Plain HTTP(S) downloads for catalogs and bundles (libcurl): bounded,
 * hashed while streaming, cancellable, with progress events. */
#ifndef BANGER_HTTP_H
#define BANGER_HTTP_H

#include "op.h"

/* GETs url into a malloc'd NUL-terminated buffer of at most max bytes.
 * "file:" URLs and plain paths read the file. */
int bng_http_get(const char *url, size_t max, char **body, size_t *len);

/* Downloads url to path (created 0600, replaced), at most max bytes. If
 * sha256_hex is given the content must match it (BANGER_EPROTO otherwise).
 * On any failure path is removed. Emits {"stage":"download","url","done",
 * "total"} events (throttled). */
int bng_http_download(const char *url, const char *path, const char *sha256_hex, uint64_t max, bng_op *op);

#endif

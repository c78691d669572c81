/* A compact streaming SHA-256 (FIPS 180-4) for blobs, bundles and files: none of
 * banger's dependencies exports one. */
#ifndef BANGER_SHA256_H
#define BANGER_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define BNG_SHA256_LEN 32

typedef struct bng_sha256 {
	uint32_t h[8];
	uint64_t total; /* bytes hashed so far */
	uint8_t buf[64];
	size_t used; /* bytes pending in buf */
} bng_sha256;

void bng_sha256_init(bng_sha256 *c);
void bng_sha256_update(bng_sha256 *c, const void *data, size_t len);
/* Finishes the hash; c must be re-initialised before reuse. */
void bng_sha256_final(bng_sha256 *c, uint8_t out[BNG_SHA256_LEN]);
/* Lowercase hex of a digest: 64 characters plus NUL. */
void bng_sha256_hex(const uint8_t digest[BNG_SHA256_LEN], char out[65]);
/* One-shot helper: "sha256:<hex>" (71 characters plus NUL) of data. */
void bng_sha256_digest(const void *data, size_t len, char out[72]);

#endif

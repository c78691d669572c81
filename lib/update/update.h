/* banger update, inside the library: release manifests (signature first,
 * then the JSON), version order, and the test hooks a test build may
 * define. The flow itself is banger_update() (include/banger/update.h). */
#ifndef BANGER_UPDATE_H
#define BANGER_UPDATE_H

#include "core/internal.h"

#include <stdint.h>

#define BNG_UPDATE_MAX_MANIFEST (256u << 10)
#define BNG_UPDATE_MAX_FILES 64
#define BNG_UPDATE_MAX_FILE_SIZE (1ull << 30)

typedef struct {
	char *path;        /* relative to the install prefix: "bin/bangerd" */
	char sha256[65];   /* lowercase hex */
	uint64_t size;
	unsigned mode;     /* permission bits, 0 .. 0777 */
} bng_update_file;

typedef struct {
	char *version;
	char *date;
	char *arch;        /* uname -m of the hosts it is for */
	bng_update_file *files;
	size_t nfiles;
} bng_update_manifest;

/* Verifies an ECDSA P-256 signature (DER, as `openssl dgst -sha256 -sign`
 * writes it) over SHA-256 of msg with the PEM public key. 0 if it holds;
 * BANGER_EPROTO if it does not; BANGER_EINVAL for a key that is not P-256. */
int bng_update_verify(const char *pem, const void *msg, size_t len, const void *sig, size_t sig_len);

/* Parses a manifest whose signature was already verified: every field
 * checked (paths relative and clean, digests hex, modes without setuid
 * bits, sizes bounded). BANGER_EPROTO names the first problem. */
int bng_update_manifest_parse(bng_update_manifest *m, const char *text, size_t len);
void bng_update_manifest_free(bng_update_manifest *m);

/* A release version: 1-64 of [0-9A-Za-z.+-], starting with a digit, no
 * "..". 0 or BANGER_EINVAL. */
int bng_update_check_version(const char *v);
/* Orders versions: numeric dot-separated parts, then a "-suffix" release
 * sorts before the same version without one. <0, 0, >0. */
int bng_update_version_cmp(const char *a, const char *b);

/* Test builds only (tests/update/test_stamp.c): never defined in
 * libbanger.so, where these weak hidden references stay NULL, so nothing
 * at run time can replace the compiled-in key there. */
/* Path of a PEM public key to trust instead of the compiled-in one. */
const char *bng_update_test_key(void) __attribute__((weak, visibility("hidden")));
/* Called at each named step of an update (a test may kill the process). */
void bng_update_test_point(const char *step) __attribute__((weak, visibility("hidden")));

#endif

/* banger — common definitions: error codes, memory, version. */
#ifndef BANGER_COMMON_H
#define BANGER_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* enum banger_error_code (BANGER_OK, BANGER_EINVAL = -1, …), generated from
 * lib/core/errors.tsv: the codes' one table. */
#include "banger/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define BANGER_API __attribute__((visibility("default")))
#else
#define BANGER_API
#endif

/* Message describing the last error on the calling thread ("" if none). The
 * pointer stays valid until the next banger call on this thread. */
BANGER_API const char *banger_error_last(void);
/* Code of the last error on the calling thread (0 if none). */
BANGER_API int banger_error_last_code(void);
/* Stable short name of an error code, e.g. "EINVAL". */
BANGER_API const char *banger_strerror(int code);

/* Checks a VM/image/kernel name: 1-63 of [a-z0-9-], no leading or trailing
 * '-' (a DNS label). 0 if valid, else BANGER_EINVAL with the reason. */
BANGER_API int banger_check_name(const char *name);

/* Frees any string or buffer handed out by libbanger. NULL is a no-op. */
BANGER_API void banger_free(void *ptr);

/* Version stamp shared by every banger binary: "0.1.0 (abc1234, 2026-11-26)". */
BANGER_API const char *banger_version(void);
BANGER_API const char *banger_version_number(void); /* "0.1.0" */
BANGER_API const char *banger_version_commit(void); /* "abc1234" or "unknown" */
BANGER_API const char *banger_version_date(void);   /* "2026-11-26T15:00:00Z" */

#ifdef __cplusplus
}
#endif
#endif

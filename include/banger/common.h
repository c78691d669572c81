/* banger — common definitions: error codes, memory, version. */
#ifndef BANGER_COMMON_H
#define BANGER_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define BANGER_API __attribute__((visibility("default")))
#else
#define BANGER_API
#endif

/* Error codes. Append-only: a value never changes meaning once released. */
enum banger_error_code {
	BANGER_OK = 0,
	BANGER_EINVAL = -1,       /* invalid argument or parameter */
	BANGER_ENOMEM = -2,       /* out of memory */
	BANGER_EIO = -3,          /* I/O error on the host */
	BANGER_ENOTFOUND = -4,    /* no such object */
	BANGER_EEXIST = -5,       /* object already exists */
	BANGER_EBUSY = -6,        /* resource in use (e.g. state dir locked) */
	BANGER_EPERM = -7,        /* permission denied */
	BANGER_ECANCELED = -8,    /* operation cancelled */
	BANGER_EPROTO = -9,       /* malformed message or protocol violation */
	BANGER_ENOMETHOD = -10,   /* unknown RPC method */
	BANGER_ECONFIG = -11,     /* invalid configuration */
	BANGER_EUNSUPPORTED = -12,/* not supported by this host or driver */
	BANGER_ESTATE = -13,      /* state store (SQLite) error */
	BANGER_ETIMEDOUT = -14,   /* timed out */
	BANGER_ECONNECT = -15,    /* daemon unreachable */
	BANGER_ETOOBIG = -16,     /* message or input over its size limit */
	BANGER_EINTERNAL = -17,   /* a bug in banger: please report it */
};

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

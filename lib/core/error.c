/* Thread-local error state: every failing call leaves its message here. */
#include "internal.h"
#include "error-names.h" /* generated from lib/core/errors.tsv */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define BNG_ERR_MAX 1024

static _Thread_local char last_msg[BNG_ERR_MAX];
static _Thread_local int last_code;

/* Formats into a scratch buffer first: callers may wrap the previous
 * message, passing banger_error_last() as an argument. */
static int set_verr(int code, int errno_value, const char *fmt, va_list ap)
{
	char buf[BNG_ERR_MAX];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (errno_value && n >= 0 && (size_t)n < sizeof(buf))
		snprintf(buf + n, sizeof(buf) - (size_t)n, ": %s", strerror(errno_value));
	memcpy(last_msg, buf, sizeof(buf));
	last_code = code;
	return code;
}

int bng_err(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_verr(code, 0, fmt, ap);
	va_end(ap);
	return code;
}

int bng_err_errno(int code, int errno_value, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_verr(code, errno_value, fmt, ap);
	va_end(ap);
	return code;
}

void bng_err_clear(void)
{
	last_msg[0] = '\0';
	last_code = 0;
}

int bng_code_from_errno(int e)
{
	switch (e) {
	case ENOENT: return BANGER_ENOTFOUND;
	case EEXIST: return BANGER_EEXIST;
	case EACCES: case EPERM: case EROFS: return BANGER_EPERM;
	case ENOMEM: return BANGER_ENOMEM;
	case EBUSY: case EWOULDBLOCK: return BANGER_EBUSY;
	case EINVAL: return BANGER_EINVAL;
	case ETIMEDOUT: return BANGER_ETIMEDOUT;
	case ECONNREFUSED: return BANGER_ECONNECT;
	default: return BANGER_EIO;
	}
}

BANGER_API const char *banger_error_last(void) { return last_msg; }
BANGER_API int banger_error_last_code(void) { return last_code; }

BANGER_API const char *banger_strerror(int code)
{
	/* compared as ints: -INT_MIN would overflow */
	if (code > 0 || code <= -(int)BNG_ARRAY_LEN(bng_error_names))
		return "EUNKNOWN";
	return bng_error_names[-code];
}

/* Internal helpers shared across libbanger modules. Not installed. */
#ifndef BANGER_INTERNAL_H
#define BANGER_INTERNAL_H

#include <banger.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/types.h>

#define BNG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define BNG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- errors (core/error.c): thread-local last error ---- */
/* Records code + formatted message for this thread and returns code. */
int bng_err(int code, const char *fmt, ...) BNG_PRINTF(2, 3);
/* Like bng_err, appending ": strerror(errno_value)". */
int bng_err_errno(int code, int errno_value, const char *fmt, ...) BNG_PRINTF(3, 4);
/* Maps an errno to the closest banger code. */
int bng_code_from_errno(int errno_value);
void bng_err_clear(void);

/* ---- memory and strings (core/util.c) ---- */
void *bng_xmalloc(size_t n);
void *bng_xcalloc(size_t n, size_t m);
char *bng_strdup(const char *s);
char *bng_asprintf(const char *fmt, ...) BNG_PRINTF(1, 2);
char *bng_vasprintf(const char *fmt, va_list ap);
bool bng_str_has_prefix(const char *s, const char *prefix);
/* o[key] when it is a string, else NULL: a field of a JSON row or params. */
static inline const char *bng_jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* ---- files (core/util.c) ---- */
/* mkdir -p with the given mode for created components. */
int bng_mkdir_p(const char *path, mode_t mode);
/* Reads a whole file (NUL-terminated); sets *len when len != NULL. */
int bng_read_file(const char *path, char **out, size_t *len);
/* The last max_lines (at most 16) non-empty lines of the log at path written
 * after offset since, joined with "; " (malloc'd; "" if there are none). */
char *bng_file_tail(const char *path, off_t since, size_t max_lines);
/* Milliseconds of CLOCK_MONOTONIC: for deadlines. */
long long bng_now_ms(void);
/* data as standard base64 with padding (malloc'd). */
char *bng_base64(const void *data, size_t len);
/* Decodes standard base64 (padding optional) into *out (malloc'd). */
int bng_base64_decode(const char *text, char **out, size_t *len);
/* Writes data to path atomically (temp file in the same dir + rename). */
int bng_write_file_atomic(const char *path, const char *data, size_t len, mode_t mode);
/* Checks that dir exists (creating it) and that we can create files in it. */
int bng_dir_writable(const char *dir);

/* Removes path and everything below it (no error if it does not exist). */
int bng_rm_rf(const char *path);
/* 12 random hex characters + NUL. */
void bng_random_id(char out[13]);
/* Current UTC time as 2026-11-26T15:00:00Z. */
void bng_now_iso(char out[32]);
/* Object names (images, kernels, VMs): 1-63 of [a-z0-9-], no leading or
 * trailing '-' (a DNS label). what names the object in the error. */
int bng_check_name(const char *name, const char *what);

/* ---- host facts (core/host.c) ---- */
long bng_host_cpus(void);
uint64_t bng_host_mem_mib(void);
/* Finds an executable on PATH (or checks an explicit path); NULL if none. */
char *bng_find_exe(const char *name);

#endif

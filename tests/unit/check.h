/* A tiny assertion kit for the unit tests: every CHECK prints file:line and
 * counts a failure instead of aborting, so one run reports every problem.
 * main() ends with `return check_summary();`, nonzero if anything failed. */
#ifndef BANGER_TEST_CHECK_H
#define BANGER_TEST_CHECK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw, mkdtemp (meson passes it; this is for other builds) */
#endif

#include <banger.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_total __attribute__((unused));
static int check_failed __attribute__((unused));

static inline void check_fail_(const char *file, int line, const char *fmt, const char *a, const char *b)
{
	check_failed++;
	fprintf(stderr, "%s:%d: check failed: ", file, line);
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
}

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		check_total++;                                                               \
		if (!(cond))                                                                 \
			check_fail_(__FILE__, __LINE__, "%s%s", #cond, "");                  \
	} while (0)

#define CHECK_EQ_INT(actual, expected)                                                       \
	do {                                                                                 \
		long long chk_a_ = (long long)(actual), chk_e_ = (long long)(expected);      \
		check_total++;                                                               \
		if (chk_a_ != chk_e_) {                                                      \
			check_failed++;                                                      \
			fprintf(stderr, "%s:%d: check failed: %s == %s (got %lld, want %lld)\n", \
				__FILE__, __LINE__, #actual, #expected, chk_a_, chk_e_);     \
		}                                                                            \
	} while (0)

#define CHECK_EQ_STR(actual, expected)                                                       \
	do {                                                                                 \
		const char *chk_a_ = (actual), *chk_e_ = (expected);                         \
		check_total++;                                                               \
		if (!chk_a_ || !chk_e_ || strcmp(chk_a_, chk_e_) != 0) {                     \
			check_failed++;                                                      \
			fprintf(stderr, "%s:%d: check failed: %s == %s (got \"%s\", want \"%s\")\n", \
				__FILE__, __LINE__, #actual, #expected, chk_a_ ? chk_a_ : "(null)", \
				chk_e_ ? chk_e_ : "(null)");                                 \
		}                                                                            \
	} while (0)

#define CHECK_STR_CONTAINS(haystack, needle)                                                 \
	do {                                                                                 \
		const char *chk_h_ = (haystack), *chk_n_ = (needle);                         \
		check_total++;                                                               \
		if (!chk_h_ || !chk_n_ || !strstr(chk_h_, chk_n_)) {                         \
			check_failed++;                                                      \
			fprintf(stderr, "%s:%d: check failed: %s contains \"%s\" (got \"%s\")\n", \
				__FILE__, __LINE__, #haystack, chk_n_ ? chk_n_ : "(null)",   \
				chk_h_ ? chk_h_ : "(null)");                                 \
		}                                                                            \
	} while (0)

/* A banger call that must succeed; shows the library's message if not. */
#define CHECK_OK(expr)                                                                       \
	do {                                                                                 \
		int chk_rc_ = (expr);                                                        \
		check_total++;                                                               \
		if (chk_rc_ != 0) {                                                          \
			check_failed++;                                                      \
			fprintf(stderr, "%s:%d: check failed: %s returned %d (%s): %s\n",    \
				__FILE__, __LINE__, #expr, chk_rc_, banger_strerror(chk_rc_), \
				banger_error_last());                                        \
		}                                                                            \
	} while (0)

/* Prints the tally; the value to return from main. */
static inline int check_summary(void)
{
	fprintf(stderr, "%d checks, %d failed\n", check_total, check_failed);
	return check_failed ? 1 : 0;
}

/* ---- scratch directories ---- */

/* A fresh directory under $TMPDIR (or /tmp), malloc'd; aborts on failure. */
static inline char *check_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	size_t n = strlen(base && *base ? base : "/tmp") + strlen(tag) + 32;
	char *path = malloc(n);
	if (!path)
		abort();
	snprintf(path, n, "%s/banger-%s-XXXXXX", base && *base ? base : "/tmp", tag);
	if (!mkdtemp(path)) {
		perror("mkdtemp");
		abort();
	}
	return path;
}

static inline int check_rm_one_(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* rm -rf path. */
static inline void check_rm_rf(const char *path)
{
	nftw(path, check_rm_one_, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes a whole file; aborts on failure. */
static inline void check_write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		abort();
	}
}

#endif

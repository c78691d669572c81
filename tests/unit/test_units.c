/* Human units (lib/core/units.c): sizes and durations, both directions. */
#include "check.h"

#include "core/units.h"

#include <stdint.h>

static void size_ok(int at, const char *s, uint64_t want)
{
	uint64_t v = 0xDEADBEEF;
	int rc = bng_parse_size(s, &v);
	check_total++;
	if (rc != 0 || v != want) {
		check_failed++;
		fprintf(stderr, "%s:%d: check failed: bng_parse_size(\"%s\") = %d, %llu; want 0, %llu (%s)\n", __FILE__,
			at, s, rc, (unsigned long long)v, (unsigned long long)want, banger_error_last());
	}
}

static void size_bad(int at, const char *s, const char *what)
{
	uint64_t v = 12345;
	int rc = bng_parse_size(s, &v);
	check_total++;
	if (rc != BANGER_EINVAL || v != 12345 || !strstr(banger_error_last(), what)) {
		check_failed++;
		fprintf(stderr,
			"%s:%d: check failed: bng_parse_size(\"%s\") = %d, %llu (\"%s\"); want EINVAL mentioning "
			"\"%s\", output untouched\n",
			__FILE__, at, s ? s : "(null)", rc, (unsigned long long)v, banger_error_last(), what);
	}
}

static void duration_ok(int at, const char *s, int64_t want)
{
	int64_t v = -1;
	int rc = bng_parse_duration(s, &v);
	check_total++;
	if (rc != 0 || v != want) {
		check_failed++;
		fprintf(stderr, "%s:%d: check failed: bng_parse_duration(\"%s\") = %d, %lld; want 0, %lld (%s)\n",
			__FILE__, at, s, rc, (long long)v, (long long)want, banger_error_last());
	}
}

static void duration_bad(int at, const char *s, const char *what)
{
	int64_t v = 12345;
	int rc = bng_parse_duration(s, &v);
	check_total++;
	if (rc != BANGER_EINVAL || v != 12345 || !strstr(banger_error_last(), what)) {
		check_failed++;
		fprintf(stderr,
			"%s:%d: check failed: bng_parse_duration(\"%s\") = %d, %lld (\"%s\"); want EINVAL mentioning "
			"\"%s\", output untouched\n",
			__FILE__, at, s ? s : "(null)", rc, (long long)v, banger_error_last(), what);
	}
}

static void format_is(int at, uint64_t bytes, const char *want)
{
	char *s = bng_format_size(bytes);
	check_total++;
	if (!s || strcmp(s, want) != 0) {
		check_failed++;
		fprintf(stderr, "%s:%d: check failed: bng_format_size(%llu) = \"%s\", want \"%s\"\n", __FILE__, at,
			(unsigned long long)bytes, s ? s : "(null)", want);
	}
	free(s);
}

#define SIZE_OK(s, want) size_ok(__LINE__, s, want)
#define SIZE_BAD(s, what) size_bad(__LINE__, s, what)
#define DURATION_OK(s, want) duration_ok(__LINE__, s, want)
#define DURATION_BAD(s, what) duration_bad(__LINE__, s, what)
#define FORMAT_IS(bytes, want) format_is(__LINE__, bytes, want)

static void test_sizes(void)
{
	SIZE_OK("0", 0);
	SIZE_OK("1", 1);
	SIZE_OK("512", 512);
	SIZE_OK("1048576", 1048576);
	SIZE_OK("1K", 1024);
	SIZE_OK("4k", 4096);
	SIZE_OK("512M", 512ULL << 20);
	SIZE_OK("4G", 4ULL << 30);
	SIZE_OK("4g", 4ULL << 30);
	SIZE_OK("8GiB", 8ULL << 30);
	SIZE_OK("8GB", 8ULL << 30);
	SIZE_OK("8Gb", 8ULL << 30);
	SIZE_OK("2T", 2ULL << 40);
	SIZE_OK("16777215T", 16777215ULL << 40);
	SIZE_OK("17179869183G", 17179869183ULL << 30);
	SIZE_OK("007M", 7ULL << 20);

	SIZE_BAD("", "invalid size");
	SIZE_BAD(NULL, "invalid size");
	SIZE_BAD("G", "invalid size 'G'");
	SIZE_BAD("-1", "invalid size '-1'");
	SIZE_BAD(" 4G", "invalid size");
	SIZE_BAD("4 G", "units: K, M, G, T");
	SIZE_BAD("4X", "units: K, M, G, T");
	SIZE_BAD("4P", "units");
	SIZE_BAD("1.5G", "invalid size '1.5G'");
	SIZE_BAD("4GiBx", "invalid size");
	SIZE_BAD("4iB", "invalid size");
	SIZE_BAD("4B", "invalid size"); /* a bare B is not a unit */
	SIZE_BAD("4G ", "invalid size");
	SIZE_BAD("16777216T", "too large");  /* 2^64 */
	SIZE_BAD("17179869184G", "too large"); /* 2^64 */
	SIZE_BAD("99999999999999999999", "too large");
	SIZE_BAD("999999999999999999999999999999M", "too large");
}

static void test_durations(void)
{
	DURATION_OK("0", 0);
	DURATION_OK("90", 90);
	DURATION_OK("0s", 0);
	DURATION_OK("90s", 90);
	DURATION_OK("30m", 1800);
	DURATION_OK("24h", 86400);
	DURATION_OK("2d", 172800);
	DURATION_OK("1h30m", 5400);
	DURATION_OK("1d2h3m4s", 86400 + 7200 + 180 + 4);
	DURATION_OK("90m30s", 5430);
	DURATION_OK("1000000000s", 1000000000);

	DURATION_BAD("", "invalid duration");
	DURATION_BAD(NULL, "invalid duration");
	DURATION_BAD("h", "invalid duration 'h'");
	DURATION_BAD("-1", "invalid duration");
	DURATION_BAD("5x", "units: s, m, h, d");
	DURATION_BAD("5H", "units");
	DURATION_BAD("1h30", "units");
	DURATION_BAD("1.5h", "invalid duration");
	DURATION_BAD("1 h", "invalid duration");
	DURATION_BAD("1hh", "invalid duration");
	DURATION_BAD("99999999999", "too large");
	DURATION_BAD("99999999999s", "too large");
	DURATION_BAD("20000000d", "too large");
}

static void test_format(void)
{
	FORMAT_IS(0, "0B");
	FORMAT_IS(1, "1B");
	FORMAT_IS(1023, "1023B");
	FORMAT_IS(1024, "1K");
	FORMAT_IS(1536, "1.5K");
	FORMAT_IS(512ULL << 20, "512M");
	FORMAT_IS(8ULL << 30, "8G");
	FORMAT_IS(3ULL << 29, "1.5G");
	FORMAT_IS(1ULL << 40, "1T");
	FORMAT_IS(2048ULL << 40, "2048T");

	/* format and parse agree on whole units */
	static const uint64_t round_trip[] = {0, 7, 1024, 3ULL << 20, 9ULL << 30, 5ULL << 40};
	for (size_t i = 0; i < sizeof(round_trip) / sizeof(round_trip[0]); i++) {
		char *s = bng_format_size(round_trip[i]);
		if (s && s[strlen(s) - 1] == 'B')
			s[strlen(s) - 1] = '\0'; /* "7B" parses as "7" */
		uint64_t v = 1;
		CHECK_OK(bng_parse_size(s, &v));
		CHECK_EQ_INT(v, round_trip[i]);
		free(s);
	}
}

static void test_format_boundaries(void)
{
	static const struct { uint64_t bytes; const char *want; } cases[] = {
		{1048575, "1.0M"}, {(1ull << 30) - 1, "1.0G"}, {1536, "1.5K"}, {1023, "1023B"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = bng_format_size(cases[i].bytes);
		CHECK_EQ_STR(got, cases[i].want);
		free(got);
	}
}

int main(void)
{
	test_format_boundaries();
	test_sizes();
	test_durations();
	test_format();
	return check_summary();
}

/* Error codes (lib/core/errors.tsv → <banger/errors.h>, banger_strerror):
 * the enum and the names are one table, and out-of-range codes are safe. */
#include "check.h"

#include <limits.h>

static void test_names(void)
{
	CHECK_EQ_STR(banger_strerror(BANGER_OK), "OK");
	CHECK_EQ_STR(banger_strerror(BANGER_EINVAL), "EINVAL");
	CHECK_EQ_STR(banger_strerror(BANGER_ENOTFOUND), "ENOTFOUND");
	CHECK_EQ_STR(banger_strerror(BANGER_EINTERNAL), "EINTERNAL");
	CHECK_EQ_INT(BANGER_EINVAL, -1);
	CHECK_EQ_INT(BANGER_EINTERNAL, -17);
}

/* Every code from 0 down has a distinct name until the first unknown one,
 * and the last enumerator is among them. */
static void test_dense(void)
{
	int n = 0;
	for (int code = 0; strcmp(banger_strerror(code), "EUNKNOWN") != 0 && n < 1000; code--, n++) {
		const char *name = banger_strerror(code);
		CHECK(code == 0 ? strcmp(name, "OK") == 0 : name[0] == 'E');
		for (int other = 0; other > code; other--)
			CHECK(strcmp(banger_strerror(other), name) != 0);
	}
	CHECK(n >= 1 - BANGER_EINTERNAL);
}

static void test_out_of_range(void)
{
	CHECK_EQ_STR(banger_strerror(1), "EUNKNOWN");
	CHECK_EQ_STR(banger_strerror(INT_MAX), "EUNKNOWN");
	CHECK_EQ_STR(banger_strerror(INT_MIN), "EUNKNOWN"); /* -INT_MIN would overflow */
	CHECK_EQ_STR(banger_strerror(-100000), "EUNKNOWN");
}

int main(void)
{
	test_names();
	test_dense();
	test_out_of_range();
	return check_summary();
}

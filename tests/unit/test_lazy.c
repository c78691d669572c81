/* Libraries opened on first use (lib/core/lazy.c): a real one loads and
 * its table is filled; a missing library or symbol is an error naming
 * both, never a crash; loading is done once. */
#include "check.h"

#include "core/lazy.h"
#include "core/lazy_sqlite.h"

int main(void)
{
	/* a real one: the store's SQLite */
	CHECK_EQ_INT(bng_lazy_load(&bng_lazy_sqlite), 0);
	CHECK(strstr(sqlite3_errstr(SQLITE_BUSY), "locked") != NULL); /* through the table */
	CHECK_EQ_INT(bng_lazy_load(&bng_lazy_sqlite), 0);             /* once, then cached */

	/* a library that is not there */
	static const char *const one[] = {"anything"};
	void *slot[1];
	bng_lazy_lib missing = {.soname = "libbanger-no-such.so.9", .package = "nothing", .names = one,
				.table = slot, .count = 1};
	CHECK_EQ_INT(bng_lazy_load(&missing), BANGER_EUNSUPPORTED);
	CHECK(strstr(banger_error_last(), "libbanger-no-such.so.9") && strstr(banger_error_last(), "nothing"));
	CHECK_EQ_INT(bng_lazy_load(&missing), BANGER_EUNSUPPORTED); /* the failure is kept */

	/* a library without a symbol banger wants */
	static const char *const wrong[] = {"sqlite3_errstr", "sqlite3_no_such_function"};
	void *slots[2];
	bng_lazy_lib old = {.soname = bng_lazy_sqlite.soname, .package = "libsqlite3-0", .names = wrong,
			    .table = slots, .count = 2};
	CHECK_EQ_INT(bng_lazy_load(&old), BANGER_EUNSUPPORTED);
	CHECK(strstr(banger_error_last(), "sqlite3_no_such_function") != NULL);
	return check_summary();
}

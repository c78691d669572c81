/* For the update tests only (tests/meson.build): the version stamp of
 * lib/core/version.c, with the version number from $BANGER_TEST_VERSION,
 * and the update module's test hooks: the release key from
 * $BANGER_TEST_UPDATE_KEY (a PEM file) and a SIGKILL at the step named by
 * $BANGER_TEST_UPDATE_KILL_AT ("journal", "swap:bin/bangerd", "stopped",
 * "committed", ...). Never part of libbanger.so. */
#include "core/internal.h"
#include "stamp.h"
#include "update/update.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *number(void)
{
	const char *v = getenv("BANGER_TEST_VERSION");
	return v && *v ? v : BANGER_STAMP_VERSION;
}

BANGER_API const char *banger_version(void)
{
	static char buf[256];
	snprintf(buf, sizeof(buf), "%s (%s, %s)", number(), BANGER_STAMP_COMMIT, BANGER_STAMP_DATE);
	return buf;
}
BANGER_API const char *banger_version_number(void) { return number(); }
BANGER_API const char *banger_version_commit(void) { return BANGER_STAMP_COMMIT; }
BANGER_API const char *banger_version_date(void) { return BANGER_STAMP_DATE; }
BANGER_API void banger_free(void *ptr) { free(ptr); }

const char *bng_update_test_key(void)
{
	const char *k = getenv("BANGER_TEST_UPDATE_KEY");
	return k && *k ? k : NULL;
}

void bng_update_test_point(const char *step)
{
	const char *at = getenv("BANGER_TEST_UPDATE_KILL_AT");
	if (at && !strcmp(at, step))
		raise(SIGKILL);
}

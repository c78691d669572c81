/* The build stamp every banger binary shares (meson.build: stamp.h). */
#include "internal.h"
#include "stamp.h"

#include <stdlib.h>

/* Tests build a copy of the daemon with a different stamp to exercise
 * stale-daemon replacement (tests/meson.build). */
#ifndef BANGER_STAMP_SUFFIX
#define BANGER_STAMP_SUFFIX ""
#endif

BANGER_API const char *banger_version(void)
{
	return BANGER_STAMP_VERSION BANGER_STAMP_SUFFIX " (" BANGER_STAMP_COMMIT ", " BANGER_STAMP_DATE ")";
}
BANGER_API const char *banger_version_number(void) { return BANGER_STAMP_VERSION BANGER_STAMP_SUFFIX; }
BANGER_API const char *banger_version_commit(void) { return BANGER_STAMP_COMMIT; }
BANGER_API const char *banger_version_date(void) { return BANGER_STAMP_DATE; }
BANGER_API void banger_free(void *ptr) { free(ptr); }

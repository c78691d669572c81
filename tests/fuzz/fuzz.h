/* What every libFuzzer target here shares: its entry point and REQUIRE,
 * which aborts (a finding for libFuzzer) with the broken invariant and the
 * library's last error. */
#ifndef BANGER_FUZZ_H
#define BANGER_FUZZ_H

#include <banger/common.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                              \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: requirement failed: %s (last error: %s)\n", __FILE__, \
				__LINE__, #cond, banger_error_last());                             \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#endif

/* The kernel store (store.c): kernel.* methods and lookups by name or id. */
#ifndef BANGER_KERNEL_STORE_H
#define BANGER_KERNEL_STORE_H

#include "../engine/engine.h"

/* The kernel's row as JSON, with manifest and file paths/sizes. */
int bng_kernel_get(bng_engine *e, const char *ref, json_t **kernel);

#endif

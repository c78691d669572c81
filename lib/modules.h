/* The modules the engine serves, in the order rpc.methods lists their
 * methods and their start-up hooks run (modules.c). */
#ifndef BANGER_MODULES_H
#define BANGER_MODULES_H

#include "method/method.h"

extern const bng_module *const bng_modules[];
extern const size_t bng_modules_count;

#endif

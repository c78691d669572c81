/* The one place that names every module serving methods. It sits at the
 * top, with the public API (ctx.c), so the engine includes none of them:
 * each module owns its method table and hooks (e.g. lib/vm/methods.c) and
 * this list hands them to bng_engine_open. A new module adds its descriptor
 * here; docs/rpc.md follows this order. */
#include "modules.h"
#include "engine/engine.h"
#include "image/image.h"
#include "kernel/store.h"
#include "vm/vm.h"

const bng_module *const bng_modules[] = {
	&bng_engine_module, /* engine.status, config.show, doctor, store.check, rpc.methods */
	&bng_image_module,
	&bng_kernel_module,
	&bng_vm_module,
	&bng_debug_module, /* debug.ticks */
};
const size_t bng_modules_count = BNG_ARRAY_LEN(bng_modules);

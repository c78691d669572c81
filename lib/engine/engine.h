/* The local engine: owns a state directory (exclusive lock), the config and
 * the state store, and serves every registered module's methods from one
 * dispatch. The context methods receive (bng_engine) and the module
 * descriptor live below the modules, in lib/method/method.h; the list of
 * modules is assembled above the engine (lib/modules.c). */
#ifndef BANGER_ENGINE_H
#define BANGER_ENGINE_H

#include "../method/method.h"

/* Opens the engine over state_dir with the given modules (see bng_module):
 * their methods are served, and rpc.methods lists them, in this order;
 * their reconcile hooks run in this order once the state is open. */
int bng_engine_open(bng_engine **out, const char *state_dir, const char *config_path,
		    const bng_module *const *modules, size_t nmodules);
void bng_engine_close(bng_engine *e);
/* Starts each module's background services (bng_module.services): for an
 * engine a long-lived process serves (bangerd). They stop at close. */
void bng_engine_start_services(bng_engine *e);

/* Validates params against the method's declared parameters and runs it.
 * On success *result is set (new reference). */
int bng_engine_dispatch(bng_engine *e, const char *method, json_t *params, json_t **result, bng_op *op);

/* The engine's own methods (methods.c, doctor.c): engine.status,
 * config.show, doctor, store.check, rpc.methods; and debug.ticks. */
extern const bng_module bng_engine_module;
extern const bng_module bng_debug_module;

int bng_m_engine_status(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_config_show(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_doctor(bng_engine *e, json_t *params, json_t **result, bng_op *op);
/* doctor_host.c: the privileges, /dev/net/tun, the programs banger runs
 * and the system service, appended to out as doctor checks. */
void bng_doctor_host_checks(bng_engine *e, json_t *out);
int bng_m_debug_ticks(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_debug_echo(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_rpc_methods(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_store_check(bng_engine *e, json_t *params, json_t **result, bng_op *op);

#endif

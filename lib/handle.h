/* What the typed handles (vm_handle.c, session_handle.c) share: one method
 * run through a context, and a VM handle's context. */
#ifndef BANGER_HANDLE_H
#define BANGER_HANDLE_H

#include <banger/vm.h>
#include <jansson.h>

/* Runs method with params (borrowed); *result (may be NULL) gets the
 * result object. An event callback, when given, sees every event. */
int bng_handle_run(banger_ctx *ctx, const char *method, json_t *params, json_t **result, banger_event_cb cb, void *ud);
banger_ctx *bng_vm_handle_ctx(const banger_vm *vm);
/* params[key] = the argc strings of argv, or an error naming the bad one. */
int bng_handle_set_argv(json_t *params, const char *key, size_t argc, const char *const *argv, const char *what);

#endif

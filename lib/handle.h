/* What the typed handles (vm_handle.c, session_handle.c,
 * workspace_handle.c, image_handle.c) share: one method run through a
 * context, records kept from its results, option setters and progress. */
#ifndef BANGER_HANDLE_H
#define BANGER_HANDLE_H

#include <banger/exec.h>
#include <banger/progress.h>
#include <banger/vm.h>
#include <jansson.h>
#include <stdatomic.h>

/* Runs method with params (borrowed); *result (may be NULL) gets the
 * result object. An event callback, when given, sees every event. */
int bng_handle_run(banger_ctx *ctx, const char *method, json_t *params, json_t **result, banger_event_cb cb, void *ud);
/* The same, handing every event to a typed progress callback (may be NULL). */
int bng_handle_run_progress(banger_ctx *ctx, const char *method, json_t *params, json_t **result,
			    banger_progress_cb cb, void *ud);
banger_ctx *bng_vm_handle_ctx(const banger_vm *vm);
/* A streaming call with input (vm.exec, vm.session.attach) run on a thread
 * of its own as a banger_process (include/banger/exec.h); params borrowed,
 * first_input (may be NULL) goes to its stdin first. */
int bng_process_start(banger_process **out, banger_ctx *ctx, const char *method, json_t *params,
		      banger_output_cb cb, void *ud, const char *first_input);

/* ---- option setters over a params object; NULL/0 removes the key ---- */
int bng_handle_set_str(json_t *params, const char *key, const char *value);
int bng_handle_set_int(json_t *params, const char *key, int32_t value);
int bng_handle_set_bool(json_t *params, const char *key, int value);
/* params[key] = the argc strings of argv, or an error naming the bad one. */
int bng_handle_set_argv(json_t *params, const char *key, size_t argc, const char *const *argv, const char *what);

/* ---- a refcounted record (a VM, image or kernel row) and its context;
 * the first member of each public handle struct ---- */
typedef struct bng_record {
	atomic_int refs;
	banger_ctx *ctx;
	json_t *row;
	char *text; /* the row as JSON text, made on demand */
} bng_record;

/* A zeroed handle of size bytes whose record holds ctx (ref'd) and row (stolen). */
void *bng_record_new(size_t size, banger_ctx *ctx, json_t *row);
void bng_record_ref(bng_record *r);
/* Drops a reference; frees the handle with the last one. */
void bng_record_unref(bng_record *r);
void bng_record_set_row(bng_record *r, json_t *row);
/* A string field of the row (NULL when r is NULL or the field is absent). */
const char *bng_record_str(const bng_record *r, const char *key);
const char *bng_record_json(const bng_record *r);
/* Runs method (params borrowed); on success the result becomes a new handle. */
int bng_record_fetch(void **out, size_t size, banger_ctx *ctx, const char *method, json_t *params,
		     banger_progress_cb cb, void *ud);
/* Runs a list method and wraps each row of result[key] in a handle. */
int bng_record_list(void ***out, size_t *count, size_t size, banger_ctx *ctx, const char *method, json_t *params,
		    const char *key);
void bng_record_list_free(void **handles, size_t count);

#endif

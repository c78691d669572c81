/* banger — VMs as typed objects over a context (since 0.2).
 *
 *   banger_vm_options *o;
 *   banger_vm_options_new(&o);
 *   banger_vm_options_set_name(o, "dev");
 *   banger_vm *vm;
 *   if (banger_vm_create(&vm, ctx, o) != 0) fprintf(stderr, "%s\n", banger_error_last());
 *   banger_vm_options_free(o);
 *   ... banger_vm_exec(&res, vm, exec_options) ...
 *   banger_vm_delete(vm);
 *   banger_vm_unref(vm);
 *
 * Each call runs one method of the dispatch table ("vm.create", "vm.exec",
 * ...) through the context, so both transports work. Calls block the
 * calling thread; for async work run the method with banger_call_start.
 * Options are opaque with setters: adding one needs no ABI change. */
#ifndef BANGER_VM_PUBLIC_H
#define BANGER_VM_PUBLIC_H

#include "ctx.h"
#include "progress.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct banger_vm banger_vm;
typedef struct banger_vm_options banger_vm_options;
typedef struct banger_exec_options banger_exec_options;
typedef struct banger_exec_result banger_exec_result;

/* ---- creating and finding ---- */
BANGER_API int banger_vm_options_new(banger_vm_options **out);
BANGER_API void banger_vm_options_free(banger_vm_options *o);
/* Each setter copies its string; NULL (or 0) goes back to the default. */
BANGER_API int banger_vm_options_set_name(banger_vm_options *o, const char *name);
BANGER_API int banger_vm_options_set_image(banger_vm_options *o, const char *image);
BANGER_API int banger_vm_options_set_kernel(banger_vm_options *o, const char *kernel);
BANGER_API int banger_vm_options_set_vcpus(banger_vm_options *o, int32_t vcpus);
BANGER_API int banger_vm_options_set_memory_mib(banger_vm_options *o, int32_t mib);
/* "8G", "512M" ... */
BANGER_API int banger_vm_options_set_disk_size(banger_vm_options *o, const char *size);
BANGER_API int banger_vm_options_set_nat(banger_vm_options *o, int enabled);
/* The guest's PID 1: "auto" (default), "banger" or "systemd" (vm.create's init). */
BANGER_API int banger_vm_options_set_init(banger_vm_options *o, const char *init);
/* Create the VM without booting it (default: boot it). */
BANGER_API int banger_vm_options_set_start(banger_vm_options *o, int enabled);
/* Each stage of the create as it happens (spec, resolve, network, disk, boot, ...). */
BANGER_API int banger_vm_options_set_progress_cb(banger_vm_options *o, banger_progress_cb cb, void *userdata);

/* Creates (and boots) a VM; opts may be NULL (every default). */
BANGER_API int banger_vm_create(banger_vm **out, banger_ctx *ctx, const banger_vm_options *opts);
/* The VM named (or with the id) ref; BANGER_ENOTFOUND if there is none. */
BANGER_API int banger_vm_lookup(banger_vm **out, banger_ctx *ctx, const char *ref);
/* Every VM (running only unless all): *out is an array of *count handles,
 * freed with banger_vm_list_free. */
BANGER_API int banger_vm_list(banger_vm ***out, size_t *count, banger_ctx *ctx, int all);
BANGER_API void banger_vm_list_free(banger_vm **vms, size_t count);
BANGER_API banger_vm *banger_vm_ref(banger_vm *vm);
BANGER_API void banger_vm_unref(banger_vm *vm);

/* ---- fields, as of the last call that returned the VM (refresh reads
 * them again); strings live as long as the handle or its next refresh ---- */
BANGER_API const char *banger_vm_name(const banger_vm *vm);
BANGER_API const char *banger_vm_id(const banger_vm *vm);
/* "running", "stopped", "creating", "starting", "error" */
BANGER_API const char *banger_vm_state(const banger_vm *vm);
BANGER_API const char *banger_vm_ip(const banger_vm *vm);
BANGER_API int32_t banger_vm_vcpus(const banger_vm *vm);
BANGER_API int32_t banger_vm_memory_mib(const banger_vm *vm);
/* The whole row as JSON text (every field, including ones added later). */
BANGER_API const char *banger_vm_json(const banger_vm *vm);
BANGER_API int banger_vm_refresh(banger_vm *vm);

/* ---- verbs ---- */
BANGER_API int banger_vm_start(banger_vm *vm);
BANGER_API int banger_vm_stop(banger_vm *vm);
BANGER_API int banger_vm_restart(banger_vm *vm);
/* Kills and removes the VM with its disk; the handle stays valid (its
 * fields read as they were) and is still unref'd by the caller. */
BANGER_API int banger_vm_delete(banger_vm *vm);

/* ---- running commands in the guest (over its agent, no SSH) ---- */
/* Output as it comes: stream is 1 (stdout) or 2 (stderr). Called on the
 * thread running banger_vm_exec. */
typedef void (*banger_output_cb)(int stream, const char *data, size_t len, void *userdata);

BANGER_API int banger_exec_options_new(banger_exec_options **out);
BANGER_API void banger_exec_options_free(banger_exec_options *o);
/* The command: argc strings, copied (no varargs). Required. */
BANGER_API int banger_exec_options_set_argv(banger_exec_options *o, size_t argc, const char *const *argv);
BANGER_API int banger_exec_options_set_cwd(banger_exec_options *o, const char *dir);
BANGER_API int banger_exec_options_set_user(banger_exec_options *o, const char *user);
/* One "NAME=VALUE" more in the command's environment. */
BANGER_API int banger_exec_options_add_env(banger_exec_options *o, const char *name_value);
/* Text for its stdin (UTF-8), which is then closed; default: none. */
BANGER_API int banger_exec_options_set_stdin(banger_exec_options *o, const char *text);
BANGER_API int banger_exec_options_set_timeout(banger_exec_options *o, int32_t seconds);
/* With a callback, output is streamed to it and not kept in the result. */
BANGER_API int banger_exec_options_set_output_cb(banger_exec_options *o, banger_output_cb cb, void *userdata);

/* Runs the command to its end. 0 when it ran (whatever its exit status);
 * an error when it could not run (not found, no such cwd, VM stopped). */
BANGER_API int banger_vm_exec(banger_exec_result **out, banger_vm *vm, const banger_exec_options *opts);
/* The exit status: 128 + N when signal N ended it. */
BANGER_API int32_t banger_exec_result_exit_code(const banger_exec_result *r);
/* The signal's number, 0 if none. */
BANGER_API int32_t banger_exec_result_signal(const banger_exec_result *r);
/* Collected output (empty when streamed to a callback); *len may be NULL. */
BANGER_API const char *banger_exec_result_stdout(const banger_exec_result *r, size_t *len);
BANGER_API const char *banger_exec_result_stderr(const banger_exec_result *r, size_t *len);
BANGER_API void banger_exec_result_free(banger_exec_result *r);

#ifdef __cplusplus
}
#endif
#endif

/* The local engine: owns a state directory (exclusive lock), the config and
 * the state store, and serves every API method from one dispatch table. */
#ifndef BANGER_ENGINE_H
#define BANGER_ENGINE_H

#include "../core/config.h"
#include "../core/internal.h"
#include "../core/op.h"
#include "../core/paths.h"
#include "../store/store.h"

#include <pthread.h>
#include <time.h>

typedef struct bng_engine {
	bng_paths paths;
	bng_config config;
	bng_store store;
	int lock_fd;
	char *images_dir;  /* <state>/images/<id>/rootfs.ext4 */
	char *kernels_dir; /* <state>/kernels/<id>/ */
	char *tmp_dir;     /* <state>/tmp: scratch, emptied at open */
	pthread_mutex_t reserve_lock;
	pthread_cond_t reserve_cond;
	json_t *reserved;  /* "image:<name>" etc. being created right now */
	int kvm_usable;    /* qemu under KVM: -1 not probed yet, 0 no, 1 yes (under reserve_lock) */
	char *kvm_why;
	struct bng_tap_pool *tap_pool; /* lib/vm/tap_pool.h; made at reconcile */
	char net_tag[5]; /* names this engine's taps and NAT chain: a hash of the state dir */
	struct timespec started; /* CLOCK_MONOTONIC */
	time_t started_wall;
} bng_engine;

int bng_engine_open(bng_engine **out, const char *state_dir, const char *config_path);
void bng_engine_close(bng_engine *e);

/* Reserves key (e.g. "image:debian") for one creator at a time, waiting
 * (cancellably) while another call holds it; re-check what exists after. */
int bng_engine_reserve(bng_engine *e, const char *key, bng_op *op);
void bng_engine_release(bng_engine *e, const char *key);
/* Publishes staging (a directory) as final with rename(2). */
int bng_publish_dir(const char *staging, const char *final);

/* Validates params against the method's declared parameters and runs it.
 * On success *result is set (new reference). */
int bng_engine_dispatch(bng_engine *e, const char *method, json_t *params, json_t **result, bng_op *op);

/* ---- method table ---- */
typedef int (*bng_method_fn)(bng_engine *e, json_t *params, json_t **result, bng_op *op);
typedef struct {
	const char *name;
	/* comma-separated "name:type" with type in int|str|bool|obj|arr and a
	 * trailing '?' for optional parameters, e.g. "count:int?,name:str" */
	const char *params;
	const char *summary;
	bng_method_fn fn;
} bng_method;

/* Every module's methods, in one place (methods.c). */
extern const bng_method bng_methods[];
extern const size_t bng_methods_count;

/* Method implementations, grouped by module. */
int bng_m_engine_status(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_config_show(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_doctor(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_debug_ticks(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_rpc_methods(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_store_check(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_image_import(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_image_register(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_image_list(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_image_show(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_image_build(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_image_pull(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_image_catalog(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_kernel_import(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_kernel_pull(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_kernel_list(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_kernel_show(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_kernel_rm(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_kernel_catalog(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_create(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_start(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_stop(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_restart(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_kill(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_delete(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_prune(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_list(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_show(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_logs(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_exec(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_ports(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_stats(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_set(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_image_rm(bng_engine *e, json_t *params, json_t **result, bng_op *op);

#endif

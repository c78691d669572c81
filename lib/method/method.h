/* What a module that serves methods builds on: the engine context every
 * method receives (bng_engine: paths, config, store, reservations), the
 * method table entry, the module descriptor the engine registers (methods
 * plus start-up, status and close hooks), and the helpers methods share.
 * image, kernel, vm ... include this header, never lib/engine/, which sits
 * above them: the top layer (lib/modules.c) hands their descriptors to
 * bng_engine_open. */
#ifndef BANGER_METHOD_H
#define BANGER_METHOD_H

#include "../core/config.h"
#include "../core/internal.h"
#include "../core/op.h"
#include "../core/paths.h"
#include "../store/store.h"

#include <pthread.h>
#include <time.h>

struct bng_module;

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
	struct bng_idle *idle;         /* lib/vm/idle.h; NULL unless auto_stop_stale_after */
	struct bng_vm_dns *dns; /* lib/vm/dns.c: the vm. zone; made at reconcile */
	char net_tag[5]; /* names this engine's taps and NAT chain: a hash of the state dir */
	struct timespec started; /* CLOCK_MONOTONIC */
	time_t started_wall;
	const struct bng_module *const *modules; /* registered at open, in rpc.methods order */
	size_t nmodules;
} bng_engine;

/* Reserves key (e.g. "image:debian") for one creator at a time, waiting
 * (cancellably) while another call holds it; re-check what exists after. */
int bng_engine_reserve(bng_engine *e, const char *key, bng_op *op);
void bng_engine_release(bng_engine *e, const char *key);
/* Publishes staging (a directory) as final with rename(2). */
int bng_publish_dir(const char *staging, const char *final);
/* Removes what a crash left in dir (one subdirectory per row of table):
 * staging directories, and published directories the database has no row
 * for (the crash came between the rename and the insert). */
int bng_clean_leftovers(bng_engine *e, const char *dir, const char *table);

/* ---- method tables ---- */
typedef int (*bng_method_fn)(bng_engine *e, json_t *params, json_t **result, bng_op *op);
typedef struct {
	const char *name;
	/* comma-separated "name:type" with type in int|str|bool|obj|arr and a
	 * trailing '?' for optional parameters, e.g. "count:int?,name:str" */
	const char *params;
	const char *summary;
	bng_method_fn fn;
	/* the release that first served it; a parameter added later says so
	 * in docs/rpc.md */
	const char *since;
} bng_method;

/* A module as the engine sees it: its methods and its hooks (each may be
 * NULL). */
typedef struct bng_module {
	const char *name;
	const bng_method *methods;
	size_t nmethods;
	/* At engine open, in registration order, once the store is open and the
	 * state directories exist: repair what a crash or a dead VMM left. A
	 * failure fails the open. */
	int (*reconcile)(bng_engine *e);
	/* After reconcile, only in an engine a long-lived process serves
	 * (banger_opts_set_services; bangerd): start background services.
	 * They must not fail the open: problems go to status and doctor. */
	void (*services)(bng_engine *e);
	/* engine.status: adds this module's fields to the status object. */
	void (*status)(bng_engine *e, json_t *status);
	/* doctor: appends this module's checks ({name, status, detail}). */
	void (*doctor)(bng_engine *e, json_t *checks);
	/* At engine close, in reverse registration order, before the store
	 * closes; also after a failed open (whatever reconcile got to). */
	void (*close)(bng_engine *e);
} bng_module;

#endif

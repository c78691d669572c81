/* What the vm module's own files share (internal: nothing outside lib/vm
 * includes it): the VM row (records.c), its network (net_attach.c), its
 * disk (disk.c), its hypervisor (boot.c) and the image and kernel it runs
 * on (provision.c). vm.c's methods are built from these. */
#ifndef BANGER_VM_INT_H
#define BANGER_VM_INT_H

#include "vm.h"
#include "../vmm/vmm.h"

#include <stdbool.h>
#include <time.h>

/* ---- the row (records.c) ---- */

/* Sets one string column (value may be NULL) on vm and in its row. */
int bng_vm_set(bng_engine *e, bng_vm_row *vm, enum bng_vm_column column, const char *value);
/* Replaces a string field of a row (value may be NULL), for bng_vm_save. */
void bng_vm_put(char **field, const char *value);
/* Adds vm as a new row (every column). */
int bng_vm_insert(bng_engine *e, const bng_vm_row *vm);
/* Writes the columns which (BNG_VM_* bits) names from vm into its row. */
int bng_vm_save(bng_engine *e, const bng_vm_row *vm, unsigned which);
/* <state>/vms/<id> and <runtime>/<id> (to free). */
char *bng_vm_dir(bng_engine *e, const bng_vm_row *vm);
char *bng_vm_run_dir(bng_engine *e, const bng_vm_row *vm);
/* Reports a finished stage with how long it took since *t0, and restarts
 * *t0. */
void bng_vm_stage(bng_op *op, const char *name, struct timespec *t0);

/* ---- the network (net_attach.c) ---- */

/* Gives a VM that is about to boot a tap of its own, warm from the pool
 * when it has one; the row records it until the VM stops. */
int bng_vm_net_setup(bng_engine *e, bng_vm_row *vm);
/* The "ip" column of a query's rows, as a JSON array. */
int bng_vm_query_ips(bng_engine *e, const char *sql, json_t **ips);
/* Makes the engine's NAT chain masquerade exactly the VMs that have NAT
 * and a network right now (a tap). */
int bng_vm_nat_sync(bng_engine *e);
/* Deletes the VM's tap and makes its row forget it. */
void bng_vm_net_teardown(bng_engine *e, bng_vm_row *vm);

/* ---- the per-VM disk (disk.c) ---- */

/* Creates the sparse overlay disk at path with what makes this VM itself
 * in its upper layer (and the first-boot SSH installer when first_boot). */
int bng_vm_make_overlay(bng_engine *e, const bng_vm_row *vm, const char *path, const char *pubkey, const char *host_key,
			bool first_boot);
/* Puts this banger's guest agent into the stopped VM's overlay again. */
int bng_vm_refresh_agent(const char *overlay);

/* ---- the hypervisor (boot.c) ---- */

/* The agent channel's socket path in a VMM state, and whether it is
 * Firecracker's hybrid vsock. */
const char *bng_vm_agent_channel(json_t *vmm_state, bool *vsock);
/* The driver that runs vm (NULL for none). */
const bng_vmm_driver *bng_vm_driver_of(const bng_vm_row *vm);
/* Boots the VM (its row holds everything) and waits for the agent and SSH;
 * t0 times the stages it reports. */
int bng_vm_boot(bng_engine *e, bng_vm_row *vm, bng_op *op, struct timespec *t0);
/* Kills any process whose command line names this VM's runtime directory and
 * waits (at most 3 s) for them to be gone; bng_vm_halt calls it. */
void bng_vm_kill_run_dir_strays(bng_engine *e, const bng_vm_row *vm);
/* Stops the VMM: graceful (agent sync + poweroff, bounded wait) when asked,
 * then signal sig (SIGKILL when 0). Leaves the row stopped and the tap gone. */
int bng_vm_halt(bng_engine *e, bng_vm_row *vm, bool graceful, int sig);

/* ---- the image and kernel (provision.c) ---- */

/* The image and kernel params name (or the image's kernel, or the
 * defaults, provisioned on a fresh host), as new references. */
int bng_vm_resolve_image_kernel(bng_engine *e, json_t *params, json_t **image, json_t **kernel, bng_op *op);

#endif

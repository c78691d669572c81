/* VMs: the lifecycle (create, start, stop, restart, kill, delete), their
 * rows in the store, per-VM disks and files, and re-adoption of running VMs
 * when the engine starts. */
#ifndef BANGER_VM_H
#define BANGER_VM_H

#include "../engine/engine.h"

/* Marks dead VMs stopped (freeing their taps) and removes half-created ones;
 * VMs whose VMM still runs are kept as they are. Called at engine open. */
int bng_vm_reconcile(bng_engine *e);

/* The running VM ref names (*vm, a new reference) and its agent channel
 * (*path points into *vm). EUNSUPPORTED when it is not running. */
int bng_vm_agent(bng_engine *e, const char *ref, json_t **vm, const char **path, bool *vsock);

#endif

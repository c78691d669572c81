/* auto_stop_stale_after (idle.c): the process-wide record of when each VM
 * was last used, and the engine's watcher that stops VMs unused too long. */
#ifndef BANGER_VM_IDLE_H
#define BANGER_VM_IDLE_H

#include "../method/method.h"

typedef struct bng_idle bng_idle;

/* Marks vm_id used now; busy_delta +1 when a guest command begins, -1 when
 * it ends (a VM with a command running is never idle), 0 for a one-off. */
void bng_vm_activity(const char *vm_id, int busy_delta);

/* Starts the watcher over e's VMs (NULL when after_s is 0: off). */
bng_idle *bng_idle_start(bng_engine *e, long long after_s);
/* engine.status's "auto_stop": settings and the last auto-stops. */
json_t *bng_idle_status(bng_idle *w);
/* Stops the watcher (waits for a stop it is doing). NULL is fine. */
void bng_idle_free(bng_idle *w);

#endif

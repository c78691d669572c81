/* A running operation, as seen by the code doing the work: emit progress
 * events, poll for cancellation. Every layer takes one (NULL is fine); the
 * transports (lib/ctx.c, lib/rpc) fill it in. */
#ifndef BANGER_OP_H
#define BANGER_OP_H

#include "internal.h"

#include <stdatomic.h>

typedef struct bng_op {
	void (*emit)(struct bng_op *op, json_t *event); /* takes ownership of event */
	void *emit_ud;
	atomic_int *cancel;
} bng_op;

static inline bool bng_op_cancelled(const bng_op *op) { return op && op->cancel && atomic_load(op->cancel); }
/* Sends a progress event (steals the reference). */
void bng_op_event(bng_op *op, json_t *event);
/* Sleeps up to ms, waking early when the op is cancelled; returns
 * BANGER_ECANCELED if it was. */
int bng_op_sleep(bng_op *op, int ms);

#endif

/* A running operation, as seen by the code doing the work: emit progress
 * events, poll for cancellation. Every layer takes one (NULL is fine); the
 * transports (lib/ctx.c, lib/rpc) fill it in. */
#ifndef BANGER_OP_H
#define BANGER_OP_H

#include "internal.h"

#include <stdatomic.h>

/* Messages the caller sends to a running call (stdin for a command, a
 * signal, a terminal size): a bounded, thread-safe queue. */
typedef struct bng_inbox bng_inbox;

typedef struct bng_op {
	void (*emit)(struct bng_op *op, json_t *event); /* takes ownership of event */
	void *emit_ud;
	atomic_int *cancel;
	bng_inbox *inbox; /* may be NULL: the caller sends nothing */
} bng_op;

static inline bool bng_op_cancelled(const bng_op *op) { return op && op->cancel && atomic_load(op->cancel); }
/* Sends a progress event (steals the reference). */
void bng_op_event(bng_op *op, json_t *event);
/* Sleeps up to ms, waking early when the op is cancelled; returns
 * BANGER_ECANCELED if it was. */
int bng_op_sleep(bng_op *op, int ms);

#define BNG_INBOX_MAX_BYTES (8u << 20) /* of queued JSON text */

bng_inbox *bng_inbox_new(void);
void bng_inbox_free(bng_inbox *in);
/* Queues msg (stolen); ETOOBIG when the queue already holds
 * BNG_INBOX_MAX_BYTES (the call does not read as fast as it is fed). */
int bng_inbox_push(bng_inbox *in, json_t *msg);
/* The oldest message (a new reference), NULL when there is none. */
json_t *bng_inbox_pop(bng_inbox *in);
/* Readable while the queue is not empty: for callers that poll. */
int bng_inbox_fd(bng_inbox *in);

/* The next message the caller sent to this op, or NULL (no inbox, or
 * nothing yet). Never blocks. */
static inline json_t *bng_op_input(bng_op *op) { return op && op->inbox ? bng_inbox_pop(op->inbox) : NULL; }

#endif

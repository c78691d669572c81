/* Progress events and cancellation for a running operation (op.h). */
#include "op.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

void bng_op_event(bng_op *op, json_t *event)
{
	if (op && op->emit)
		op->emit(op, event);
	else
		json_decref(event);
}

int bng_op_sleep(bng_op *op, int ms)
{
	for (int left = ms; left > 0; left -= 20) {
		if (bng_op_cancelled(op))
			return bng_err(BANGER_ECANCELED, "cancelled");
		usleep((useconds_t)(left < 20 ? left : 20) * 1000);
	}
	return bng_op_cancelled(op) ? bng_err(BANGER_ECANCELED, "cancelled") : 0;
}

typedef struct inbox_item {
	struct inbox_item *next;
	json_t *msg;
	size_t bytes;
} inbox_item;

struct bng_inbox {
	pthread_mutex_t lock;
	inbox_item *head, *tail;
	size_t bytes;
	int fd; /* eventfd: its counter is the number of queued messages */
};

bng_inbox *bng_inbox_new(void)
{
	bng_inbox *in = bng_xcalloc(1, sizeof(*in));
	pthread_mutex_init(&in->lock, NULL);
	in->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
	return in;
}

void bng_inbox_free(bng_inbox *in)
{
	if (!in)
		return;
	for (inbox_item *i = in->head, *n; i; i = n) {
		n = i->next;
		json_decref(i->msg);
		free(i);
	}
	if (in->fd >= 0)
		close(in->fd);
	pthread_mutex_destroy(&in->lock);
	free(in);
}

/* What a message weighs against the bound: its text, roughly. */
static size_t weight(json_t *msg)
{
	size_t n = 64;
	const char *k;
	json_t *v;
	json_object_foreach(msg, k, v) n += strlen(k) + (json_is_string(v) ? json_string_length(v) : 16);
	return n;
}

int bng_inbox_push(bng_inbox *in, json_t *msg)
{
	size_t w = weight(msg);
	pthread_mutex_lock(&in->lock);
	if (in->bytes + w > BNG_INBOX_MAX_BYTES) {
		pthread_mutex_unlock(&in->lock);
		json_decref(msg);
		return bng_err(BANGER_ETOOBIG, "the call has %zu bytes of input it has not read yet", in->bytes);
	}
	inbox_item *i = bng_xcalloc(1, sizeof(*i));
	i->msg = msg;
	i->bytes = w;
	if (in->tail)
		in->tail->next = i;
	else
		in->head = i;
	in->tail = i;
	in->bytes += w;
	uint64_t one = 1;
	if (in->fd >= 0 && write(in->fd, &one, sizeof(one)) < 0) {
		/* the counter cannot overflow below 2^64 - 1 messages */
	}
	pthread_mutex_unlock(&in->lock);
	return 0;
}

json_t *bng_inbox_pop(bng_inbox *in)
{
	pthread_mutex_lock(&in->lock);
	inbox_item *i = in->head;
	if (i) {
		in->head = i->next;
		if (!in->head)
			in->tail = NULL;
		in->bytes -= i->bytes;
		uint64_t v;
		if (in->fd >= 0 && read(in->fd, &v, sizeof(v)) < 0) {
			/* nothing to take: the counter was already drained */
		}
	}
	pthread_mutex_unlock(&in->lock);
	if (!i)
		return NULL;
	json_t *msg = i->msg;
	free(i);
	return msg;
}

int bng_inbox_fd(bng_inbox *in) { return in ? in->fd : -1; }

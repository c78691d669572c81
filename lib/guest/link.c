/* The agent link: one frame-mode connection per VM agent in this process,
 * a reader thread that sorts the guest's frames into per-stream queues,
 * and callers that wait on them. Memory is bounded by the windows: a
 * stream's queue never holds more than the credit the host granted. */
#include "link.h"
#include "frames.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define FRAME_MAGIC BNG_FRAME_MAGIC
#define FRAME_MAX BNG_FRAME_PAYLOAD_MAX
#define OUT_WINDOW 262144u /* guest -> host output per stream at first, docs/agent-protocol.md */
/* What we let a stream have in flight: the first window is small, and an
 * emulated guest's round trip is tens of ms, so a wider one is granted
 * at once (throughput is window / round trip; memory stays bounded). */
#ifndef LINK_OUT_WINDOW
#define LINK_OUT_WINDOW (4u << 20)
#endif
#define IN_WINDOW 65536u   /* host -> guest stdin per stream */
#define STDIN_CHUNK 32768u
#define CREDIT_BATCH 65536u /* grant back in batches, not per frame */

enum {
	F_CALL = 1, F_REPLY, F_EXEC, F_STARTED, F_STDIN, F_STDOUT, F_STDERR, F_ERROR, F_EXIT, F_CREDIT, F_SIGNAL,
	F_RESIZE,
};

typedef struct chunk {
	struct chunk *next;
	int fd;
	size_t len;
	char data[];
} chunk;

typedef struct stream {
	struct stream *next;
	uint32_t id;
	chunk *head, *tail;
	size_t out_allowed;  /* output bytes the guest may still send */
	size_t stdin_credit; /* stdin bytes we may still send */
	json_t *started, *exit;
	char *error;
} stream;

typedef struct pending_call {
	struct pending_call *next;
	json_int_t id;
	json_t *reply;
} pending_call;

struct bng_agent_link {
	atomic_int refs;
	char *path;
	int fd;
	pthread_t reader;
	pthread_mutex_t lock; /* everything below, and the lists */
	pthread_cond_t cond;  /* broadcast on every frame and on breaking */
	pthread_mutex_t write_lock;
	bool broken;
	char why[256];
	stream *streams;
	pending_call *calls;
	uint32_t next_stream;
	bng_agent_link *next_in_registry;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static bng_agent_link *registry;
static atomic_uint next_call_id = 1;

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Marks the link broken (first reason wins) and wakes every waiter.
 * Called with l->lock held. */
static void break_locked(bng_agent_link *l, const char *why)
{
	if (!l->broken) {
		l->broken = true;
		snprintf(l->why, sizeof(l->why), "%s", why);
	}
	pthread_cond_broadcast(&l->cond);
}

static int broken_err(bng_agent_link *l)
{
	return bng_err(BANGER_ECONNECT, "lost the connection to the guest agent: %s", l->why);
}

static int send_frame(bng_agent_link *l, int type, uint32_t sid, const void *payload, size_t len)
{
	unsigned char h[12] = {FRAME_MAGIC, (unsigned char)type, 0, 0};
	put_be32(h + 4, sid);
	put_be32(h + 8, (uint32_t)len);
	struct iovec iov[2] = {{h, sizeof(h)}, {(void *)payload, len}};
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
	size_t left = sizeof(h) + len;
	pthread_mutex_lock(&l->write_lock);
	int err = 0;
	while (left) {
		ssize_t w = sendmsg(l->fd, &m, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			err = w < 0 ? errno : EPIPE;
			break;
		}
		left -= (size_t)w;
		while (w > 0 && m.msg_iovlen) { /* advance past what went out */
			size_t take = (size_t)w < m.msg_iov->iov_len ? (size_t)w : m.msg_iov->iov_len;
			m.msg_iov->iov_base = (char *)m.msg_iov->iov_base + take;
			m.msg_iov->iov_len -= take;
			w -= (ssize_t)take;
			if (!m.msg_iov->iov_len) {
				m.msg_iov++;
				m.msg_iovlen--;
			}
		}
	}
	pthread_mutex_unlock(&l->write_lock);
	if (!err)
		return 0;
	pthread_mutex_lock(&l->lock);
	break_locked(l, strerror(err));
	pthread_mutex_unlock(&l->lock);
	return broken_err(l);
}

static int send_u32(bng_agent_link *l, int type, uint32_t sid, uint32_t v)
{
	unsigned char p[4];
	put_be32(p, v);
	return send_frame(l, type, sid, p, sizeof(p));
}

static int send_json(bng_agent_link *l, int type, uint32_t sid, json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT);
	if (!text)
		return bng_err(BANGER_EINVAL, "guest agent request is not valid JSON text");
	size_t len = strlen(text);
	int rc = len > FRAME_MAX ? bng_err(BANGER_ETOOBIG, "guest agent request longer than %u bytes", FRAME_MAX)
				 : send_frame(l, type, sid, text, len);
	free(text);
	return rc;
}

static stream *find_stream(bng_agent_link *l, uint32_t sid)
{
	for (stream *s = l->streams; s; s = s->next)
		if (s->id == sid)
			return s;
	return NULL;
}

/* One frame from the guest, with l->lock held. Frames for streams or calls
 * nobody waits for any more are dropped. */
static void dispatch_locked(bng_agent_link *l, int type, uint32_t sid, const char *p, size_t len)
{
	if (type == F_REPLY) {
		json_t *msg = json_loadb(p, len, 0, NULL);
		json_t *jid = json_object_get(msg, "id");
		for (pending_call *c = l->calls; c && json_is_integer(jid); c = c->next)
			if (c->id == json_integer_value(jid) && !c->reply) {
				c->reply = json_incref(msg);
				break;
			}
		json_decref(msg);
		return;
	}
	stream *s = find_stream(l, sid);
	if (!s)
		return;
	switch (type) {
	case F_STDOUT:
	case F_STDERR: {
		if (len > s->out_allowed) {
			break_locked(l, "the guest agent sent more output than its window allows");
			return;
		}
		s->out_allowed -= len;
		chunk *c = bng_xmalloc(sizeof(*c) + len);
		c->next = NULL;
		c->fd = type == F_STDOUT ? 1 : 2;
		c->len = len;
		memcpy(c->data, p, len);
		if (s->tail)
			s->tail->next = c;
		else
			s->head = c;
		s->tail = c;
		break;
	}
	case F_CREDIT:
		if (len == 4)
			s->stdin_credit += get_be32((const unsigned char *)p);
		break;
	case F_STARTED:
		json_decref(s->started);
		s->started = json_loadb(p, len, 0, NULL);
		break;
	case F_EXIT:
		json_decref(s->exit);
		s->exit = json_loadb(p, len, 0, NULL);
		if (!json_is_object(s->exit)) {
			json_decref(s->exit);
			s->exit = json_object(); /* an exit we cannot read is still an exit */
		}
		break;
	case F_ERROR: {
		json_t *msg = json_loadb(p, len, 0, NULL);
		const char *e = json_string_value(json_object_get(msg, "error"));
		free(s->error);
		s->error = bng_strdup(e ? e : "the command failed to start");
		json_decref(msg);
		break;
	}
	default:
		break;
	}
}

static void on_frame(void *ud, const bng_agent_frame *f)
{
	dispatch_locked(ud, f->type, f->stream, f->payload, f->len);
}

static void *reader_main(void *arg)
{
	bng_agent_link *l = arg;
	char why[160] = "the guest agent closed the connection";
	bng_agent_frames dec;
	bng_agent_frames_init(&dec);
	char *buf = bng_xmalloc(65536);
	for (;;) {
		ssize_t n = recv(l->fd, buf, 65536, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		pthread_mutex_lock(&l->lock);
		int rc = bng_agent_frames_feed(&dec, buf, (size_t)n, on_frame, l);
		if (rc)
			snprintf(why, sizeof(why), "%s", banger_error_last());
		pthread_cond_broadcast(&l->cond);
		pthread_mutex_unlock(&l->lock);
		if (rc)
			break;
	}
	free(buf);
	bng_agent_frames_free(&dec);
	pthread_mutex_lock(&l->lock);
	break_locked(l, why);
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

/* Waits on the link's condition for up to ms (< 1000), l->lock held. */
static void wait_a_little(bng_agent_link *l, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += ms * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&l->cond, &l->lock, &ts);
}

/* ---- the registry ---- */

static void link_free(bng_agent_link *l)
{
	shutdown(l->fd, SHUT_RDWR); /* wakes the reader */
	pthread_join(l->reader, NULL);
	close(l->fd);
	for (stream *s = l->streams, *n; s; s = n) { /* none: callers hold refs while they wait */
		n = s->next;
		free(s);
	}
	pthread_mutex_destroy(&l->lock);
	pthread_mutex_destroy(&l->write_lock);
	pthread_cond_destroy(&l->cond);
	free(l->path);
	free(l);
}

void bng_agent_link_unref(bng_agent_link *l)
{
	if (l && atomic_fetch_sub(&l->refs, 1) == 1)
		link_free(l);
}

/* Removes l from the registry (registry_lock held) and drops its ref. */
static void unregister_locked(bng_agent_link *l)
{
	for (bng_agent_link **pp = &registry; *pp; pp = &(*pp)->next_in_registry)
		if (*pp == l) {
			*pp = l->next_in_registry;
			bng_agent_link_unref(l);
			return;
		}
}

/* Connects and asks for frame mode. An unanswered request is asked again
 * on a fresh connection (longer waits each time, within timeout_ms): right
 * after boot, with the boot's own connection just gone, a busy emulated
 * guest has been seen to leave the first one unanswered for 10 s. */
static int connect_framed(const char *path, bool vsock, int timeout_ms, int *fd_out)
{
	long long deadline = bng_now_ms() + (timeout_ms > 0 ? timeout_ms : 5000);
	int attempt_ms = 2000, rc;
	for (;;) {
		int left = (int)(deadline - bng_now_ms()), fd = -1;
		if (left <= 0)
			left = 1;
		json_t *reply = NULL;
		rc = bng_agent_connect(path, vsock, left, &fd);
		if (!rc) {
			rc = bng_agent_call(fd, "frames", left < attempt_ms ? left : attempt_ms, &reply);
			if (!rc && json_integer_value(json_object_get(reply, "version")) != 1)
				rc = bng_err(BANGER_EPROTO, "the guest agent speaks frame version %lld, banger speaks 1",
					     (long long)json_integer_value(json_object_get(reply, "version")));
			else if (rc == BANGER_EIO)
				rc = bng_err(BANGER_EUNSUPPORTED, "the guest agent is too old for frames (%s): restart the VM",
					     banger_error_last());
		}
		json_decref(reply);
		if (!rc) {
			*fd_out = fd;
			return 0;
		}
		if (fd >= 0)
			close(fd);
		if (rc != BANGER_ETIMEDOUT || bng_now_ms() >= deadline)
			return rc;
		attempt_ms *= 2;
	}
}

static int link_open(const char *path, bool vsock, int timeout_ms, bng_agent_link **out)
{
	int fd;
	int rc = connect_framed(path, vsock, timeout_ms, &fd);
	if (rc)
		return rc;
	/* a guest that stops reading must not hold a sender (and the write
	 * lock) for ever */
	struct timeval tv = {30, 0};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	bng_agent_link *l = bng_xmalloc(sizeof(*l));
	memset(l, 0, sizeof(*l));
	atomic_init(&l->refs, 1);
	l->path = bng_strdup(path);
	l->fd = fd;
	l->next_stream = 1;
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->write_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&l->reader, NULL, reader_main, l) != 0) {
		close(fd);
		free(l->path);
		free(l);
		return bng_err(BANGER_ENOMEM, "cannot start the guest agent reader thread");
	}
	*out = l;
	return 0;
}

int bng_agent_link_get(const char *path, bool vsock, int timeout_ms, bng_agent_link **out)
{
	*out = NULL;
	if (!path || !*path)
		return bng_err(BANGER_EINVAL, "no guest agent socket path given");
	pthread_mutex_lock(&registry_lock);
	bng_agent_link *l = registry;
	while (l && strcmp(l->path, path))
		l = l->next_in_registry;
	if (l) {
		pthread_mutex_lock(&l->lock);
		bool broken = l->broken;
		pthread_mutex_unlock(&l->lock);
		if (broken) {
			unregister_locked(l);
			l = NULL;
		}
	}
	int rc = 0;
	if (!l && (rc = link_open(path, vsock, timeout_ms, &l)) == 0) {
		l->next_in_registry = registry;
		registry = l; /* the registry's reference */
	}
	if (l)
		atomic_fetch_add(&l->refs, 1);
	pthread_mutex_unlock(&registry_lock);
	*out = l;
	return rc;
}

void bng_agent_link_forget(const char *path)
{
	pthread_mutex_lock(&registry_lock);
	for (bng_agent_link *l = registry; l; l = l->next_in_registry)
		if (!strcmp(l->path, path)) {
			pthread_mutex_lock(&l->lock);
			break_locked(l, "the VM is stopping");
			pthread_mutex_unlock(&l->lock);
			shutdown(l->fd, SHUT_RDWR); /* frees the channel now, not at the last unref */
			unregister_locked(l);
			break;
		}
	pthread_mutex_unlock(&registry_lock);
}

/* ---- calls ---- */

int bng_agent_link_call(bng_agent_link *l, const char *op, int timeout_ms, const bng_agent_watch *w, json_t **reply)
{
	*reply = NULL;
	pending_call c = {.id = (json_int_t)(atomic_fetch_add(&next_call_id, 1) & 0x7fffffff)};
	pthread_mutex_lock(&l->lock);
	c.next = l->calls;
	l->calls = &c;
	pthread_mutex_unlock(&l->lock);
	json_t *req = json_pack("{s:I,s:s}", "id", c.id, "op", op);
	int rc = send_json(l, F_CALL, 0, req);
	json_decref(req);
	long long deadline = bng_now_ms() + timeout_ms;
	pthread_mutex_lock(&l->lock);
	while (!rc && !c.reply) {
		if (l->broken) {
			rc = broken_err(l);
		} else if (bng_now_ms() >= deadline) {
			rc = bng_err(BANGER_ETIMEDOUT, "the guest agent did not answer \"%s\" within %d ms", op, timeout_ms);
		} else if ((rc = bng_agent_watch_check(w)) == 0) {
			wait_a_little(l, 50);
		}
	}
	for (pending_call **pp = &l->calls; *pp; pp = &(*pp)->next)
		if (*pp == &c) {
			*pp = c.next;
			break;
		}
	pthread_mutex_unlock(&l->lock);
	if (rc) {
		json_decref(c.reply);
		return rc;
	}
	json_t *ok = json_object_get(c.reply, "ok");
	if (json_is_true(ok)) {
		*reply = c.reply;
		return 0;
	}
	const char *err = json_string_value(json_object_get(c.reply, "error"));
	rc = json_is_false(ok) ? bng_err(BANGER_EIO, "guest agent: %s: %s", op, err ? err : "failed without a message")
			       : bng_err(BANGER_EPROTO, "bad reply from the guest agent to \"%s\": no \"ok\"", op);
	json_decref(c.reply);
	return rc;
}

/* ---- exec ---- */

static void stream_remove(bng_agent_link *l, stream *s)
{
	pthread_mutex_lock(&l->lock);
	for (stream **pp = &l->streams; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	pthread_mutex_unlock(&l->lock);
	for (chunk *c = s->head, *n; c; c = n) {
		n = c->next;
		free(c);
	}
	json_decref(s->started);
	json_decref(s->exit);
	free(s->error);
	free(s);
}

int bng_agent_link_exec(bng_agent_link *l, json_t *spec, const bng_exec_io *io, int timeout_ms,
			const bng_agent_watch *w, json_t **status)
{
	*status = NULL;
	stream *s = bng_xmalloc(sizeof(*s));
	memset(s, 0, sizeof(*s));
	s->out_allowed = OUT_WINDOW;
	s->stdin_credit = IN_WINDOW;
	pthread_mutex_lock(&l->lock);
	do
		s->id = l->next_stream++;
	while (!s->id || find_stream(l, s->id));
	s->next = l->streams;
	l->streams = s;
	pthread_mutex_unlock(&l->lock);

	int rc = send_json(l, F_EXEC, s->id, spec);
	if (!rc && LINK_OUT_WINDOW > OUT_WINDOW) {
		pthread_mutex_lock(&l->lock);
		s->out_allowed += LINK_OUT_WINDOW - OUT_WINDOW;
		pthread_mutex_unlock(&l->lock);
		rc = send_u32(l, F_CREDIT, s->id, LINK_OUT_WINDOW - OUT_WINDOW);
	}
	/* stdin: a fixed buffer, or what the caller sends while it runs */
	bool streaming = io && io->input, pulling = io && io->stdin_pull && !streaming;
	char *pending = NULL;
	size_t plen = 0, poff = 0, taken = 0, to_grant = 0;
	bool eof_wanted = !streaming && !pulling, stdin_closed = false;
	if (pulling)
		pending = bng_xmalloc(STDIN_CHUNK);
	if (!streaming && io && io->stdin_data) {
		pending = bng_xmalloc(io->stdin_len + 1);
		memcpy(pending, io->stdin_data, io->stdin_len);
		plen = io->stdin_len;
	}
	long long deadline = timeout_ms > 0 ? bng_now_ms() + timeout_ms : 0;
	while (!rc) {
		json_t *msg;
		while (!rc && streaming && !stdin_closed && !eof_wanted && poff == plen && (msg = io->input(io->ud))) {
			const char *data = json_string_value(json_object_get(msg, "stdin"));
			json_t *resize = json_object_get(msg, "resize");
			if (data) {
				free(pending);
				pending = NULL;
				poff = plen = 0;
				rc = bng_base64_decode(data, &pending, &plen);
			} else if (json_is_true(json_object_get(msg, "stdin_eof"))) {
				eof_wanted = true;
			} else if (json_is_integer(json_object_get(msg, "signal"))) {
				rc = send_u32(l, F_SIGNAL, s->id, (uint32_t)json_integer_value(json_object_get(msg, "signal")));
			} else if (json_array_size(resize) == 2) {
				unsigned char p[4] = {0};
				json_int_t rows = json_integer_value(json_array_get(resize, 0)),
					   cols = json_integer_value(json_array_get(resize, 1));
				p[0] = (unsigned char)(rows >> 8);
				p[1] = (unsigned char)rows;
				p[2] = (unsigned char)(cols >> 8);
				p[3] = (unsigned char)cols;
				rc = send_frame(l, F_RESIZE, s->id, p, sizeof(p));
			}
			json_decref(msg);
		}
		if (!rc && pulling && !eof_wanted && poff == plen) {
			ssize_t n = io->stdin_pull(io->ud, pending, STDIN_CHUNK);
			if (n < 0)
				rc = (int)n;
			poff = 0;
			plen = n > 0 ? (size_t)n : 0;
			eof_wanted = n == 0;
		}
		if (rc)
			break;
		pthread_mutex_lock(&l->lock);
		chunk *got = s->head;
		s->head = s->tail = NULL;
		size_t credit = s->stdin_credit;
		bool done = s->exit || s->error, broken = l->broken;
		bool can_send = !stdin_closed && ((plen > poff && credit) || (plen == poff && eof_wanted));
		bool idle = !got && !done && !broken && !can_send;
		if (idle && io && io->idle) {
			pthread_mutex_unlock(&l->lock);
			io->idle(io->ud);
			pthread_mutex_lock(&l->lock);
			idle = !s->head && !s->exit && !s->error && !l->broken;
		}
		if (idle)
			wait_a_little(l, streaming ? 10 : 50);
		pthread_mutex_unlock(&l->lock);
		if (broken && !got && !done) {
			rc = broken_err(l);
			break;
		}
		/* stdin, within the guest's window; then its end */
		while (!rc && !stdin_closed) {
			size_t left = plen - poff;
			if ((left && !credit) || (!left && !eof_wanted))
				break; /* the rest when the guest grants (or the caller sends) more */
			size_t n = left < credit ? left : credit;
			if (n > STDIN_CHUNK)
				n = STDIN_CHUNK;
			rc = send_frame(l, F_STDIN, s->id, n ? pending + poff : "", n);
			poff += n;
			taken += n;
			credit -= n;
			pthread_mutex_lock(&l->lock);
			s->stdin_credit -= n;
			pthread_mutex_unlock(&l->lock);
			stdin_closed = left == 0; /* the empty frame just sent */
			if (n && io && io->stdin_taken)
				io->stdin_taken(io->ud, taken);
		}
		for (chunk *c = got, *n; c; c = n) {
			n = c->next;
			if (!rc && io && io->output)
				rc = io->output(io->ud, c->fd, c->data, c->len);
			to_grant += c->len;
			free(c);
		}
		/* a window's worth may be in flight: grant back what was taken */
		if (!rc && to_grant && (to_grant >= CREDIT_BATCH || !got || done)) {
			pthread_mutex_lock(&l->lock); /* before the guest can use it */
			s->out_allowed += to_grant;
			pthread_mutex_unlock(&l->lock);
			rc = send_u32(l, F_CREDIT, s->id, (uint32_t)to_grant);
			to_grant = 0;
		}
		if (rc)
			break;
		if (done) {
			pthread_mutex_lock(&l->lock);
			bool drained = !s->head;
			pthread_mutex_unlock(&l->lock);
			if (!drained)
				continue;
			if (io && io->idle)
				io->idle(io->ud);
			if (s->error) {
				rc = bng_err(BANGER_EIO, "%s", s->error);
			} else {
				*status = json_deep_copy(s->exit);
				if (json_is_object(s->started))
					json_object_set(*status, "pid", json_object_get(s->started, "pid"));
			}
			break;
		}
		if ((rc = bng_agent_watch_check(w)) == 0 && deadline && bng_now_ms() >= deadline)
			rc = bng_err(BANGER_ETIMEDOUT, "the command did not finish within %d s: killed", timeout_ms / 1000);
	}
	if (rc && !s->exit && !s->error && !l->broken) {
		int saved = rc;
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", banger_error_last());
		send_u32(l, F_SIGNAL, s->id, 9); /* nobody will read it any more */
		rc = bng_err(saved, "%s", msg);
	}
	free(pending);
	stream_remove(l, s);
	return rc;
}

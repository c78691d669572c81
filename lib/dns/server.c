/* DNS over UDP and TCP (RFC 1035 4.2, RFC 7766) on a libuv loop of its own,
 * on its own thread: answering never waits behind an RPC call, nor an RPC
 * call behind a slow TCP client. Sockets are bound in the caller's thread,
 * so a port in use fails there, and handed to the loop to serve. */
#include "dns.h"

#include "../core/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define MAX_TCP_CONNS 64
#define TCP_IDLE_MS 10000             /* RFC 7766 suggests seconds, not minutes */
#define TCP_MAX_QUEUED (256u << 10)   /* replies a client is not reading: close it */
#define MAX_LISTENERS 8

typedef struct listener listener;
typedef struct tconn tconn;

struct bng_dns_server {
	uv_loop_t loop;
	uv_async_t wake;
	pthread_t thread;
	pthread_mutex_t lock;
	bng_dns_lookup_fn lookup;
	void *ud;
	/* under lock: sockets bound but not yet on the loop, and the stop flag */
	int pending[MAX_LISTENERS][2];
	int npending;
	bool stopping;
	json_t *names; /* "ip:port" served, under lock */
	int nlisteners;
	atomic_ulong queries;
	/* loop thread only */
	listener *listeners;
	tconn *conns;
	int nconns;
};

struct listener {
	uv_udp_t udp;
	uv_tcp_t tcp;
	bng_dns_server *s;
	uint8_t rbuf[BNG_DNS_TCP_MAX]; /* a datagram; larger ones are dropped as partial */
	listener *next;
	int open;
};

struct tconn {
	uv_tcp_t h;
	uv_timer_t idle;
	bng_dns_server *s;
	uint8_t buf[2 + BNG_DNS_TCP_MAX]; /* always room for one whole message */
	size_t len;
	int open;
	bool closing;
	tconn *next;
};

/* ---- TCP connections ---- */

static void tconn_closed(uv_handle_t *h)
{
	tconn *c = h->data;
	if (--c->open > 0)
		return;
	for (tconn **p = &c->s->conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	c->s->nconns--;
	free(c);
}

static void tconn_close(tconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->h, tconn_closed);
	uv_close((uv_handle_t *)&c->idle, tconn_closed);
}

static void on_idle(uv_timer_t *t) { tconn_close(t->data); }

static void tconn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)hint;
	tconn *c = h->data;
	*b = uv_buf_init((char *)c->buf + c->len, (unsigned)(sizeof(c->buf) - c->len));
}

static void on_tcp_written(uv_write_t *w, int status)
{
	(void)status; /* a failed write shows as a read error next */
	free(w->data);
	free(w);
}

static void tconn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	(void)b;
	tconn *c = st->data;
	if (n < 0) {
		tconn_close(c);
		return;
	}
	c->len += (size_t)n;
	uv_timer_again(&c->idle);
	/* every whole message in the buffer, in order */
	while (c->len >= 2) {
		size_t mlen = (size_t)c->buf[0] << 8 | c->buf[1];
		if (c->len < 2 + mlen)
			break;
		uint8_t *reply = bng_xmalloc(2 + BNG_DNS_TCP_MAX);
		size_t rlen = bng_dns_answer(c->buf + 2, mlen, reply + 2, BNG_DNS_TCP_MAX, true, c->s->lookup, c->s->ud);
		atomic_fetch_add(&c->s->queries, 1);
		memmove(c->buf, c->buf + 2 + mlen, c->len - 2 - mlen);
		c->len -= 2 + mlen;
		if (!rlen || uv_stream_get_write_queue_size(st) > TCP_MAX_QUEUED) {
			free(reply); /* not a query, or a client that does not read */
			tconn_close(c);
			return;
		}
		reply[0] = (uint8_t)(rlen >> 8);
		reply[1] = (uint8_t)rlen;
		uv_write_t *w = bng_xcalloc(1, sizeof(*w));
		w->data = reply;
		uv_buf_t out = uv_buf_init((char *)reply, (unsigned)(2 + rlen));
		if (uv_write(w, st, &out, 1, on_tcp_written) != 0) {
			free(reply);
			free(w);
			tconn_close(c);
			return;
		}
	}
}

static void on_tcp_conn(uv_stream_t *ls, int status)
{
	listener *l = ls->data;
	bng_dns_server *s = l->s;
	if (status < 0)
		return;
	tconn *c = bng_xcalloc(1, sizeof(*c));
	c->s = s;
	c->open = 2;
	uv_tcp_init(&s->loop, &c->h);
	uv_timer_init(&s->loop, &c->idle);
	c->h.data = c->idle.data = c;
	c->next = s->conns;
	s->conns = c;
	s->nconns++;
	if (uv_accept(ls, (uv_stream_t *)&c->h) != 0 || s->nconns > MAX_TCP_CONNS) {
		tconn_close(c); /* over the limit: the client retries or uses UDP */
		return;
	}
	uv_timer_start(&c->idle, on_idle, TCP_IDLE_MS, TCP_IDLE_MS);
	uv_read_start((uv_stream_t *)&c->h, tconn_alloc, tconn_read);
}

/* ---- UDP ---- */

static void udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)hint;
	listener *l = h->data;
	*b = uv_buf_init((char *)l->rbuf, sizeof(l->rbuf));
}

static void udp_read(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *from, unsigned flags)
{
	listener *l = h->data;
	if (n <= 0 || !from || (flags & UV_UDP_PARTIAL))
		return;
	uint8_t reply[BNG_DNS_UDP_EDNS];
	size_t rlen = bng_dns_answer((const uint8_t *)b->base, (size_t)n, reply, sizeof(reply), false, l->s->lookup,
				     l->s->ud);
	atomic_fetch_add(&l->s->queries, 1);
	if (rlen) { /* a full socket buffer drops the reply: the client asks again */
		uv_buf_t out = uv_buf_init((char *)reply, (unsigned)rlen);
		uv_udp_try_send(h, &out, 1, from);
	}
}

/* ---- the loop ---- */

static void listener_closed(uv_handle_t *h)
{
	listener *l = h->data;
	if (--l->open == 0)
		free(l);
}

static void on_wake(uv_async_t *a)
{
	bng_dns_server *s = a->data;
	pthread_mutex_lock(&s->lock);
	int fds[MAX_LISTENERS][2], n = s->npending;
	memcpy(fds, s->pending, sizeof(fds));
	s->npending = 0;
	bool stopping = s->stopping;
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < n; i++) {
		listener *l = bng_xcalloc(1, sizeof(*l));
		l->s = s;
		l->open = 2;
		uv_udp_init(&s->loop, &l->udp);
		uv_tcp_init(&s->loop, &l->tcp);
		l->udp.data = l->tcp.data = l;
		l->next = s->listeners;
		s->listeners = l;
		if (uv_udp_open(&l->udp, fds[i][0]) == 0)
			uv_udp_recv_start(&l->udp, udp_alloc, udp_read);
		else
			close(fds[i][0]);
		if (uv_tcp_open(&l->tcp, fds[i][1]) == 0)
			uv_listen((uv_stream_t *)&l->tcp, 64, on_tcp_conn);
		else
			close(fds[i][1]);
	}
	if (!stopping)
		return;
	for (listener *l = s->listeners; l; l = l->next) {
		uv_close((uv_handle_t *)&l->udp, listener_closed);
		uv_close((uv_handle_t *)&l->tcp, listener_closed);
	}
	s->listeners = NULL;
	for (tconn *c = s->conns; c; c = c->next)
		tconn_close(c);
	uv_close((uv_handle_t *)&s->wake, NULL);
}

static void *run(void *arg)
{
	bng_dns_server *s = arg;
	uv_run(&s->loop, UV_RUN_DEFAULT);
	return NULL;
}

int bng_dns_server_new(bng_dns_server **out, bng_dns_lookup_fn lookup, void *ud)
{
	bng_dns_server *s = bng_xcalloc(1, sizeof(*s));
	s->lookup = lookup;
	s->ud = ud;
	s->names = json_array();
	pthread_mutex_init(&s->lock, NULL);
	int rc = uv_loop_init(&s->loop);
	if (rc == 0 && (rc = uv_async_init(&s->loop, &s->wake, on_wake)) != 0)
		uv_loop_close(&s->loop);
	if (rc != 0) {
		json_decref(s->names);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return bng_err(BANGER_EIO, "dns: cannot make an event loop: %s", uv_strerror(rc));
	}
	s->wake.data = s;
	if ((rc = pthread_create(&s->thread, NULL, run, s)) != 0) {
		uv_close((uv_handle_t *)&s->wake, NULL);
		uv_run(&s->loop, UV_RUN_DEFAULT);
		uv_loop_close(&s->loop);
		json_decref(s->names);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return bng_err(BANGER_EIO, "dns: cannot start a thread: %s", strerror(rc));
	}
	*out = s;
	return 0;
}

static int bound(int type, const struct sockaddr_in *sa, const char *what)
{
	int fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
	if (fd < 0)
		return bng_err(BANGER_EIO, "dns: socket: %s", strerror(errno));
	/* TCP only: a restarted daemon rebinds over TIME_WAIT; on UDP the same
	 * option would let two servers share the port */
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
		int err = errno;
		close(fd);
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip));
		return bng_err(err == EADDRINUSE ? BANGER_EBUSY : err == EACCES ? BANGER_EPERM : BANGER_EIO,
			       "dns: cannot listen on %s:%u/%s: %s", ip, ntohs(sa->sin_port), what, strerror(err));
	}
	return fd;
}

int bng_dns_server_listen(bng_dns_server *s, const char *ip, unsigned port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (!port || port > 65535 || inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return bng_err(BANGER_EINVAL, "dns: bad listen address %s:%u", ip, port);
	int udp = bound(SOCK_DGRAM, &sa, "udp");
	if (udp < 0)
		return udp;
	int tcp = bound(SOCK_STREAM, &sa, "tcp");
	if (tcp < 0) {
		close(udp);
		return tcp;
	}
	pthread_mutex_lock(&s->lock);
	int rc = 0;
	if (s->stopping || s->nlisteners >= MAX_LISTENERS) {
		rc = bng_err(BANGER_EINVAL, "dns: at most %d listen addresses", MAX_LISTENERS);
		close(udp);
		close(tcp);
	} else {
		s->pending[s->npending][0] = udp;
		s->pending[s->npending][1] = tcp;
		s->npending++;
		s->nlisteners++;
		char *name = bng_asprintf("%s:%u", ip, port);
		json_array_append_new(s->names, json_string(name));
		free(name);
	}
	pthread_mutex_unlock(&s->lock);
	if (!rc)
		uv_async_send(&s->wake);
	return rc;
}

json_t *bng_dns_server_status(bng_dns_server *s)
{
	pthread_mutex_lock(&s->lock);
	json_t *st = json_pack("{s:O,s:I}", "listen", s->names, "queries", (json_int_t)atomic_load(&s->queries));
	pthread_mutex_unlock(&s->lock);
	return st;
}

void bng_dns_server_free(bng_dns_server *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_mutex_unlock(&s->lock);
	uv_async_send(&s->wake);
	pthread_join(s->thread, NULL);
	uv_loop_close(&s->loop);
	json_decref(s->names);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

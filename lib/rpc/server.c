/* The RPC server: a libuv pipe listener whose connections carry framed JSON
 * requests, each run as an async call on the served context. */
#include "client.h"
#include "frame.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define MAX_INFLIGHT_PER_CONN 64

typedef struct conn conn;
typedef struct request request;

struct banger_server {
	uv_pipe_t listener;
	uv_loop_t *loop;
	banger_ctx *ctx;
	char *socket_path;
	banger_log_cb log_cb;
	void *log_ud;
	uint32_t max_frame;
	conn *conns;
	bool closing;
	int refs; /* listener + connections */
	unsigned long next_conn_id;
};

struct request {
	conn *c;
	json_t *id;
	banger_call *call;
	request *next;
};

struct conn {
	uv_pipe_t pipe;
	banger_server *srv;
	bng_frame_decoder dec;
	request *reqs;
	int inflight;
	int refs; /* handle + requests */
	bool closing;
	unsigned long id;
	uid_t uid;
	pid_t pid;
	conn *next;
};

static void slog(banger_server *s, int level, const char *fmt, ...) BNG_PRINTF(3, 4);
static void slog(banger_server *s, int level, const char *fmt, ...)
{
	if (!s->log_cb)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *msg = bng_vasprintf(fmt, ap);
	va_end(ap);
	s->log_cb(level, msg, s->log_ud);
	free(msg);
}

static void server_unref(banger_server *s)
{
	if (--s->refs > 0)
		return;
	slog(s, BANGER_LOG_INFO, "server stopped");
	banger_ctx_unref(s->ctx);
	free(s->socket_path);
	free(s);
}

/* ---- connections ---- */

static void conn_unref(conn *c)
{
	if (--c->refs > 0)
		return;
	banger_server *s = c->srv;
	for (conn **p = &s->conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	bng_frame_decoder_free(&c->dec);
	free(c);
	server_unref(s);
}

static void on_conn_closed(uv_handle_t *h) { conn_unref(h->data); }

static void conn_close(conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	for (request *r = c->reqs; r; r = r->next)
		banger_call_cancel(r->call); /* the client is gone: stop its work */
	uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

typedef struct {
	uv_write_t req;
	char *buf;
	conn *c;
	bool close_after;
} write_req;

static void on_written(uv_write_t *w, int status)
{
	write_req *wr = (write_req *)w;
	if (status < 0 || wr->close_after)
		conn_close(wr->c);
	conn_unref(wr->c);
	free(wr->buf);
	free(wr);
}

/* Sends msg (stolen) to the client; drops it if the connection is closing. */
static void conn_send_frame(conn *c, int rc, char *buf, size_t len, bool close_after);

static void conn_send(conn *c, json_t *msg, bool close_after)
{
	char *buf;
	size_t len;
	int rc = bng_frame_encode(msg, &buf, &len);
	json_decref(msg);
	conn_send_frame(c, rc, buf, len, close_after);
}

static void conn_send_frame(conn *c, int rc, char *buf, size_t len, bool close_after)
{
	if (rc || c->closing) {
		if (!rc)
			free(buf);
		return;
	}
	write_req *wr = bng_xcalloc(1, sizeof(*wr));
	wr->buf = buf;
	wr->c = c;
	wr->close_after = close_after;
	c->refs++;
	uv_buf_t b = uv_buf_init(buf, (unsigned)len);
	if (uv_write(&wr->req, (uv_stream_t *)&c->pipe, &b, 1, on_written) != 0) {
		free(buf);
		free(wr);
		conn_close(c);
		conn_unref(c);
	}
}

static void send_error(conn *c, json_t *id, int code, const char *message, bool close_after)
{
	conn_send(c,
		  json_pack("{s:O,s:{s:i,s:s,s:s}}", "id", id ? id : json_null(), "error", "code", code, "name",
			    banger_strerror(code), "message", message),
		  close_after);
}

/* ---- requests ---- */

/* The event is the library's own JSON text: wrapped as it is, not parsed
 * and printed again (a command's streamed output is megabytes of it). */
static void on_event(const char *event_json, void *ud)
{
	request *r = ud;
	char *id = json_dumps(r->id, JSON_COMPACT | JSON_ENCODE_ANY);
	char *text = bng_asprintf("{\"id\":%s,\"event\":%s}", id ? id : "null", event_json);
	char *buf;
	size_t len;
	int rc = bng_frame_encode_text(text, strlen(text), &buf, &len);
	free(text);
	free(id);
	conn_send_frame(r->c, rc, buf, len, false);
}

static void on_done(banger_call *call, int err, void *ud)
{
	request *r = ud;
	conn *c = r->c;
	if (err) {
		send_error(c, r->id, err, banger_call_error(call), false);
		slog(c->srv, BANGER_LOG_DEBUG, "conn %lu: call failed: %s", c->id, banger_call_error(call));
	} else {
		json_t *res = json_loads(banger_call_result(call), JSON_DECODE_ANY, NULL);
		conn_send(c, json_pack("{s:O,s:o}", "id", r->id, "result", res ? res : json_null()), false);
	}
	for (request **p = &c->reqs; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			break;
		}
	c->inflight--;
	json_decref(r->id);
	banger_call_unref(r->call);
	free(r);
	conn_unref(c);
}

static request *find_request(conn *c, json_t *id)
{
	for (request *r = c->reqs; r; r = r->next)
		if (json_equal(r->id, id))
			return r;
	return NULL;
}

static void handle_message(conn *c, json_t *msg)
{
	json_t *id = json_object_get(msg, "id");
	if (!id || !(json_is_integer(id) || json_is_string(id))) {
		send_error(c, NULL, BANGER_EPROTO, "request needs an \"id\" (integer or string)", false);
		return;
	}
	if (json_object_get(msg, "cancel")) {
		request *r = find_request(c, id);
		if (r)
			banger_call_cancel(r->call);
		return;
	}
	json_t *input = json_object_get(msg, "input");
	if (input) {
		request *r = find_request(c, id);
		char *text = json_is_object(input) ? json_dumps(input, JSON_COMPACT) : NULL;
		int rc = r ? (text ? banger_call_send_input(r->call, text)
				   : bng_err(BANGER_EPROTO, "\"input\" must be a JSON object"))
			   : 0; /* the call already ended: its input is moot */
		free(text);
		if (rc) { /* input the call cannot take ends it: its client learns why */
			send_error(c, id, rc, banger_error_last(), false);
			banger_call_cancel(r->call);
		}
		return;
	}
	json_t *method = json_object_get(msg, "method");
	json_t *params = json_object_get(msg, "params");
	if (!json_is_string(method)) {
		send_error(c, id, BANGER_EPROTO, "request needs a \"method\" string", false);
		return;
	}
	if (params && !json_is_object(params)) {
		send_error(c, id, BANGER_EINVAL, "\"params\" must be a JSON object", false);
		return;
	}
	if (find_request(c, id)) {
		send_error(c, id, BANGER_EPROTO, "a request with this id is already running", false);
		return;
	}
	if (c->inflight >= MAX_INFLIGHT_PER_CONN) {
		send_error(c, id, BANGER_EBUSY, "too many requests in flight on this connection", false);
		return;
	}
	char *pj = params ? json_dumps(params, JSON_COMPACT) : NULL;
	banger_call *call;
	int rc = banger_call_new(&call, json_string_value(method), pj);
	free(pj);
	if (rc) {
		send_error(c, id, rc, banger_error_last(), false);
		return;
	}
	request *r = bng_xcalloc(1, sizeof(*r));
	r->c = c;
	r->id = json_incref(id);
	r->call = call;
	banger_call_set_event_cb(call, on_event, r);
	c->refs++;
	rc = banger_call_start(c->srv->ctx, call, c->srv->loop, on_done, r);
	if (rc) {
		send_error(c, id, rc, banger_error_last(), false);
		json_decref(r->id);
		banger_call_unref(call);
		free(r);
		conn_unref(c);
		return;
	}
	slog(c->srv, BANGER_LOG_DEBUG, "conn %lu: %s", c->id, json_string_value(method));
	r->next = c->reqs;
	c->reqs = r;
	c->inflight++;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	buf->base = bng_xmalloc(suggested);
	buf->len = suggested;
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
	conn *c = stream->data;
	if (n < 0) {
		free(buf->base);
		conn_close(c);
		return;
	}
	bng_frame_decoder_feed(&c->dec, buf->base, (size_t)n);
	free(buf->base);
	for (;;) {
		json_t *msg;
		int got = bng_frame_decoder_next(&c->dec, &msg);
		if (got == 0)
			break;
		if (got == BANGER_ETOOBIG) {
			slog(c->srv, BANGER_LOG_WARN, "conn %lu: %s; closing", c->id, banger_error_last());
			uv_read_stop(stream);
			send_error(c, NULL, BANGER_ETOOBIG, banger_error_last(), true);
			return;
		}
		if (got < 0) {
			send_error(c, NULL, got, banger_error_last(), false);
			continue;
		}
		handle_message(c, msg);
		json_decref(msg);
	}
}

static void on_connection(uv_stream_t *listener, int status)
{
	banger_server *s = listener->data;
	if (status < 0) {
		slog(s, BANGER_LOG_WARN, "accept failed: %s", uv_strerror(status));
		return;
	}
	conn *c = bng_xcalloc(1, sizeof(*c));
	c->srv = s;
	c->refs = 1;
	c->id = ++s->next_conn_id;
	c->pipe.data = c;
	bng_frame_decoder_init(&c->dec, s->max_frame);
	uv_pipe_init(s->loop, &c->pipe, 0);
	s->refs++;
	c->next = s->conns;
	s->conns = c;
	if (uv_accept(listener, (uv_stream_t *)&c->pipe) != 0) {
		conn_close(c);
		return;
	}
	uv_os_fd_t fd;
	struct ucred cred = {0};
	socklen_t len = sizeof(cred);
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		conn_close(c);
		return;
	}
	c->uid = cred.uid;
	c->pid = cred.pid;
	if (cred.uid != geteuid() && cred.uid != 0) {
		slog(s, BANGER_LOG_WARN, "refused connection from uid %u (pid %d)", (unsigned)cred.uid, (int)cred.pid);
		char *msg = bng_asprintf("permission denied: bangerd serves uid %u and root only (you are uid %u)",
					 (unsigned)geteuid(), (unsigned)cred.uid);
		send_error(c, NULL, BANGER_EPERM, msg, true);
		free(msg);
		return;
	}
	uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

/* ---- lifecycle ---- */

BANGER_API int banger_server_new(banger_server **out, banger_ctx *ctx, struct uv_loop_s *loop, const char *path)
{
	bng_err_clear();
	if (!out || !ctx || !loop || !path || !*path)
		return bng_err(BANGER_EINVAL, "banger_server_new: ctx, loop and socket path are required");
	/* a socket file nobody answers on is a leftover: replace it */
	int fd;
	if (bng_client_connect(path, &fd, NULL) == 0) {
		close(fd);
		return bng_err(BANGER_EBUSY, "another bangerd is already serving %s", path);
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return bng_err(BANGER_EEXIST, "%s exists and is not a socket; remove it", path);
		unlink(path);
	}
	char *dir = bng_strdup(path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		int rc = bng_mkdir_p(dir, 0700);
		if (rc) {
			free(dir);
			return rc;
		}
	}
	free(dir);
	banger_server *s = bng_xcalloc(1, sizeof(*s));
	s->loop = loop;
	s->ctx = banger_ctx_ref(ctx);
	s->socket_path = bng_strdup(path);
	s->max_frame = BNG_FRAME_MAX_DEFAULT;
	s->refs = 1;
	s->listener.data = s;
	uv_pipe_init(loop, &s->listener, 0);
	mode_t old = umask(0177); /* the socket is born 0600: no window for others */
	int r = uv_pipe_bind(&s->listener, path);
	umask(old);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
	if (r != 0) {
		int rc = bng_err(BANGER_EIO, "cannot listen on %s: %s", path, uv_strerror(r));
		s->refs = 1;
		s->log_cb = NULL;
		uv_close((uv_handle_t *)&s->listener, NULL);
		/* the handle is freed with s once the loop processes the close */
		uv_run(loop, UV_RUN_NOWAIT);
		banger_ctx_unref(s->ctx);
		free(s->socket_path);
		free(s);
		return rc;
	}
	chmod(path, 0600);
	*out = s;
	return 0;
}

BANGER_API int banger_server_set_log_cb(banger_server *s, banger_log_cb cb, void *ud)
{
	if (!s)
		return bng_err(BANGER_EINVAL, "server is NULL");
	s->log_cb = cb;
	s->log_ud = ud;
	return 0;
}

BANGER_API int banger_server_set_max_frame(banger_server *s, uint32_t bytes)
{
	if (!s || bytes < 1024)
		return bng_err(BANGER_EINVAL, "max frame must be at least 1024 bytes");
	s->max_frame = bytes;
	return 0;
}

static void on_listener_closed(uv_handle_t *h) { server_unref(h->data); }

BANGER_API void banger_server_shutdown(banger_server *s)
{
	if (!s || s->closing)
		return;
	s->closing = true;
	slog(s, BANGER_LOG_INFO, "shutting down");
	unlink(s->socket_path);
	for (conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		conn_close(c);
	}
	uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

/* Public API: contexts (local engine or bangerd client) and calls, run
 * synchronously or on a worker thread reporting to a libuv loop. */
#include "core/internal.h"
#include "core/paths.h"
#include "engine/engine.h"
#include "modules.h"
#include "rpc/client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct banger_opts {
	int autostart;
	char *daemon_path;
	char *config_path;
	int services;
};

struct banger_ctx {
	atomic_int refs;
	bool remote;
	bng_engine *engine;  /* local */
	char *socket_path;   /* remote */
};

typedef struct async_state async_state;

struct banger_call {
	atomic_int refs;
	char *method;
	json_t *params;
	banger_event_cb event_cb;
	void *event_ud;
	atomic_int cancel;
	bng_inbox *inbox; /* banger_call_send_input */
	int err;
	char *errmsg;
	char *result;
	async_state *async;
};

/* ---- options ---- */

BANGER_API int banger_opts_new(banger_opts **out)
{
	if (!out)
		return bng_err(BANGER_EINVAL, "banger_opts_new: out is NULL");
	*out = bng_xcalloc(1, sizeof(banger_opts));
	return 0;
}

BANGER_API void banger_opts_free(banger_opts *o)
{
	if (!o)
		return;
	free(o->daemon_path);
	free(o->config_path);
	free(o);
}

BANGER_API int banger_opts_set_autostart(banger_opts *o, int enabled)
{
	if (!o)
		return bng_err(BANGER_EINVAL, "opts is NULL");
	o->autostart = enabled != 0;
	return 0;
}

static int set_str(banger_opts *o, char **field, const char *v)
{
	if (!o)
		return bng_err(BANGER_EINVAL, "opts is NULL");
	free(*field);
	*field = v && *v ? bng_strdup(v) : NULL;
	return 0;
}

BANGER_API int banger_opts_set_daemon_path(banger_opts *o, const char *path)
{
	return set_str(o, o ? &o->daemon_path : NULL, path);
}

BANGER_API int banger_opts_set_config_path(banger_opts *o, const char *path)
{
	return set_str(o, o ? &o->config_path : NULL, path);
}

BANGER_API int banger_opts_set_services(banger_opts *o, int enabled)
{
	bng_err_clear();
	if (!o)
		return bng_err(BANGER_EINVAL, "banger_opts_set_services: opts is NULL");
	o->services = enabled != 0;
	return 0;
}

/* ---- contexts ---- */

BANGER_API int banger_check_migrations(const char *state_dir, char **report_json)
{
	bng_err_clear();
	if (!report_json)
		return bng_err(BANGER_EINVAL, "banger_check_migrations: report_json is NULL");
	bng_paths p;
	bng_paths_init(&p, state_dir);
	json_t *report = NULL;
	int rc = bng_store_check(p.db, &report);
	bng_paths_free(&p);
	if (!rc)
		*report_json = json_dumps(report, JSON_COMPACT);
	json_decref(report);
	return rc;
}

BANGER_API int banger_default_socket(char **out)
{
	if (!out)
		return bng_err(BANGER_EINVAL, "banger_default_socket: out is NULL");
	*out = bng_paths_default_socket();
	return 0;
}

BANGER_API int banger_ctx_open(banger_ctx **out, const char *uri, const banger_opts *opts)
{
	bng_err_clear();
	if (!out)
		return bng_err(BANGER_EINVAL, "banger_ctx_open: out is NULL");
	*out = NULL;
	if (!uri || !*uri)
		uri = "unix:";
	banger_ctx *ctx = bng_xcalloc(1, sizeof(*ctx));
	atomic_init(&ctx->refs, 1);
	int rc;
	if (bng_str_has_prefix(uri, "local:")) {
		const char *dir = uri + strlen("local:");
		if (*dir && *dir != '/') {
			free(ctx);
			return bng_err(BANGER_EINVAL, "local: state directory must be an absolute path (got '%s')", dir);
		}
		rc = bng_engine_open(&ctx->engine, dir, opts ? opts->config_path : NULL, bng_modules, bng_modules_count);
		if (!rc && opts && opts->services)
			bng_engine_start_services(ctx->engine);
	} else if (bng_str_has_prefix(uri, "unix:")) {
		const char *path = uri + strlen("unix:");
		ctx->remote = true;
		bool service = false; /* the system service's socket: systemd starts that daemon */
		ctx->socket_path = *path ? bng_strdup(path) : bng_client_default_socket(&service);
		rc = opts && opts->autostart && !service ? bng_client_ensure_daemon(ctx->socket_path, opts->daemon_path)
							 : 0;
	} else {
		free(ctx);
		return bng_err(BANGER_EINVAL, "unsupported context URI '%s' (use local:[state-dir] or unix:[socket])", uri);
	}
	if (rc) {
		free(ctx->socket_path);
		free(ctx);
		return rc;
	}
	*out = ctx;
	return 0;
}

BANGER_API banger_ctx *banger_ctx_ref(banger_ctx *ctx)
{
	if (ctx)
		atomic_fetch_add(&ctx->refs, 1);
	return ctx;
}

BANGER_API void banger_ctx_unref(banger_ctx *ctx)
{
	if (!ctx || atomic_fetch_sub(&ctx->refs, 1) != 1)
		return;
	bng_engine_close(ctx->engine);
	free(ctx->socket_path);
	free(ctx);
}

BANGER_API const char *banger_ctx_transport(const banger_ctx *ctx)
{
	return !ctx ? "" : ctx->remote ? "unix" : "local";
}

/* ---- calls ---- */

BANGER_API int banger_call_new(banger_call **out, const char *method, const char *params_json)
{
	bng_err_clear();
	if (!out || !method || !*method)
		return bng_err(BANGER_EINVAL, "banger_call_new: method is required");
	json_t *params;
	if (params_json && *params_json) {
		json_error_t jerr;
		params = json_loads(params_json, JSON_REJECT_DUPLICATES, &jerr);
		if (!params)
			return bng_err(BANGER_EPROTO, "params for %s are not valid JSON: %s", method, jerr.text);
		if (!json_is_object(params)) {
			json_decref(params);
			return bng_err(BANGER_EPROTO, "params for %s must be a JSON object", method);
		}
	} else {
		params = json_object();
	}
	banger_call *c = bng_xcalloc(1, sizeof(*c));
	atomic_init(&c->refs, 1);
	atomic_init(&c->cancel, 0);
	c->inbox = bng_inbox_new();
	c->method = bng_strdup(method);
	c->params = params;
	*out = c;
	return 0;
}

BANGER_API banger_call *banger_call_ref(banger_call *c)
{
	if (c)
		atomic_fetch_add(&c->refs, 1);
	return c;
}

BANGER_API void banger_call_unref(banger_call *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	free(c->method);
	bng_inbox_free(c->inbox);
	json_decref(c->params);
	free(c->errmsg);
	free(c->result);
	free(c);
}

BANGER_API int banger_call_set_event_cb(banger_call *c, banger_event_cb cb, void *ud)
{
	if (!c)
		return bng_err(BANGER_EINVAL, "call is NULL");
	c->event_cb = cb;
	c->event_ud = ud;
	return 0;
}

BANGER_API void banger_call_cancel(banger_call *c)
{
	if (c)
		atomic_store(&c->cancel, 1);
}

BANGER_API int banger_call_send_input(banger_call *c, const char *message_json)
{
	if (!c || !message_json)
		return bng_err(BANGER_EINVAL, "banger_call_send_input: call and message are required");
	json_error_t jerr;
	json_t *msg = json_loads(message_json, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(msg)) {
		json_decref(msg);
		return bng_err(BANGER_EPROTO, "input for %s must be a JSON object", c->method);
	}
	return bng_inbox_push(c->inbox, msg);
}

BANGER_API const char *banger_call_result(const banger_call *c) { return c ? c->result : NULL; }
BANGER_API const char *banger_call_error(const banger_call *c) { return c && c->errmsg ? c->errmsg : ""; }

/* Runs the call through the context's transport on this thread. */
static int execute(banger_ctx *ctx, banger_call *c, bng_op *op)
{
	free(c->result);
	free(c->errmsg);
	c->result = c->errmsg = NULL;
	json_t *result = NULL;
	int rc = ctx->remote ? bng_client_exec(ctx->socket_path, c->method, c->params, &result, op)
			     : bng_engine_dispatch(ctx->engine, c->method, c->params, &result, op);
	if (rc) {
		c->errmsg = bng_strdup(banger_error_last());
	} else {
		c->result = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
	}
	json_decref(result);
	c->err = rc;
	return rc;
}

static void emit_direct(bng_op *op, json_t *ev)
{
	banger_call *c = op->emit_ud;
	if (c->event_cb) {
		char *s = json_dumps(ev, JSON_COMPACT);
		c->event_cb(s, c->event_ud);
		free(s);
	}
	json_decref(ev);
}

BANGER_API int banger_call_run(banger_ctx *ctx, banger_call *c)
{
	bng_err_clear();
	if (!ctx || !c)
		return bng_err(BANGER_EINVAL, "banger_call_run: ctx and call are required");
	if (c->async)
		return bng_err(BANGER_EBUSY, "call %s is already running", c->method);
	bng_op op = {.emit = emit_direct, .emit_ud = c, .cancel = &c->cancel, .inbox = c->inbox};
	int rc = execute(ctx, c, &op);
	if (rc)
		bng_err(rc, "%s", c->errmsg);
	return rc;
}

BANGER_API int banger_ctx_call(banger_ctx *ctx, const char *method, const char *params_json, char **result_json)
{
	banger_call *c;
	int rc = banger_call_new(&c, method, params_json);
	if (rc)
		return rc;
	rc = banger_call_run(ctx, c);
	if (!rc && result_json)
		*result_json = bng_strdup(c->result);
	banger_call_unref(c);
	return rc;
}

/* ---- async: a worker thread per call, reporting to the caller's loop ---- */

typedef struct queued_event {
	char *json;
	struct queued_event *next;
} queued_event;

struct async_state {
	uv_async_t wake;
	uv_thread_t thread;
	pthread_mutex_t lock;
	queued_event *head, *tail;
	bool finished;
	banger_ctx *ctx;
	banger_call *call;
	banger_done_cb done_cb;
	void *done_ud;
};

static void emit_queued(bng_op *op, json_t *ev)
{
	async_state *a = op->emit_ud;
	queued_event *q = bng_xcalloc(1, sizeof(*q));
	q->json = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	pthread_mutex_lock(&a->lock);
	if (a->tail)
		a->tail->next = q;
	else
		a->head = q;
	a->tail = q;
	pthread_mutex_unlock(&a->lock);
	uv_async_send(&a->wake);
}

static void worker(void *arg)
{
	async_state *a = arg;
	bng_op op = {.emit = emit_queued, .emit_ud = a, .cancel = &a->call->cancel, .inbox = a->call->inbox};
	execute(a->ctx, a->call, &op);
	pthread_mutex_lock(&a->lock);
	a->finished = true;
	pthread_mutex_unlock(&a->lock);
	uv_async_send(&a->wake);
}

static void on_closed(uv_handle_t *h)
{
	async_state *a = h->data;
	banger_call *c = a->call;
	c->async = NULL;
	pthread_mutex_destroy(&a->lock);
	if (a->done_cb)
		a->done_cb(c, c->err, a->done_ud);
	banger_ctx_unref(a->ctx);
	free(a);
	banger_call_unref(c);
}

static void on_wake(uv_async_t *h)
{
	async_state *a = h->data;
	pthread_mutex_lock(&a->lock);
	queued_event *q = a->head;
	a->head = a->tail = NULL;
	bool finished = a->finished;
	pthread_mutex_unlock(&a->lock);
	while (q) {
		queued_event *next = q->next;
		if (a->call->event_cb)
			a->call->event_cb(q->json, a->call->event_ud);
		free(q->json);
		free(q);
		q = next;
	}
	if (finished) {
		uv_thread_join(&a->thread);
		uv_close((uv_handle_t *)&a->wake, on_closed);
	}
}

BANGER_API int banger_call_start(banger_ctx *ctx, banger_call *c, struct uv_loop_s *loop, banger_done_cb done_cb,
				 void *ud)
{
	bng_err_clear();
	if (!ctx || !c || !loop)
		return bng_err(BANGER_EINVAL, "banger_call_start: ctx, call and loop are required");
	if (c->async)
		return bng_err(BANGER_EBUSY, "call %s is already running", c->method);
	async_state *a = bng_xcalloc(1, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	a->ctx = banger_ctx_ref(ctx);
	a->call = banger_call_ref(c);
	a->done_cb = done_cb;
	a->done_ud = ud;
	a->wake.data = a;
	if (uv_async_init(loop, &a->wake, on_wake) != 0) {
		pthread_mutex_destroy(&a->lock);
		banger_ctx_unref(ctx);
		banger_call_unref(c);
		free(a);
		return bng_err(BANGER_EIO, "cannot attach %s to the event loop", c->method);
	}
	c->async = a;
	if (uv_thread_create(&a->thread, worker, a) != 0) {
		c->async = NULL;
		a->done_cb = NULL; /* a failed start never calls back */
		uv_close((uv_handle_t *)&a->wake, on_closed);
		return bng_err(BANGER_EIO, "cannot start a worker thread for %s", c->method);
	}
	return 0;
}

/* The local engine (lib/engine) and the public call API over it (lib/ctx.c):
 * the state-dir lock, permission errors, dispatch and parameter checks,
 * progress events, cancellation, and async calls on a libuv loop. */
#include "check.h"

#include "engine/engine.h"
#include "modules.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <uv.h>

static char *base;       /* scratch root, 0755 so an unprivileged child can read it */
static char *config_dir; /* $BANGER_CONFIG_DIR */

static char *sub(const char *name) { return bng_asprintf("%s/%s", base, name); }

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void setup(void)
{
	base = check_tmpdir("engine");
	chmod(base, 0755);
	config_dir = sub("config");
	char *cache = sub("cache"), *runtime = sub("runtime");
	mkdir(config_dir, 0755);
	setenv("BANGER_CONFIG_DIR", config_dir, 1);
	setenv("BANGER_CACHE_DIR", cache, 1);
	setenv("BANGER_RUNTIME_DIR", runtime, 1);
	unsetenv("BANGER_CONFIG");
	unsetenv("BANGER_STATE_DIR");
	unsetenv("BANGER_SOCKET");
	free(cache);
	free(runtime);
}

/* ---- the state-directory lock ---- */

static void test_lock(void)
{
	char *state = sub("state-lock");
	bng_engine *e1 = NULL, *e2 = NULL;
	CHECK_OK(bng_engine_open(&e1, state, NULL, bng_modules, bng_modules_count));
	if (!e1) {
		free(state);
		return;
	}
	CHECK_EQ_STR(e1->paths.state_dir, state);
	struct stat st;
	CHECK(stat(state, &st) == 0 && S_ISDIR(st.st_mode));
	CHECK(access(e1->paths.db, F_OK) == 0);
	CHECK(stat(e1->paths.cache_dir, &st) == 0 && S_ISDIR(st.st_mode));

	/* the lock file holds our pid */
	char *lock = NULL;
	CHECK_OK(bng_read_file(e1->paths.lock, &lock, NULL));
	CHECK_EQ_INT(lock ? strtol(lock, NULL, 10) : 0, getpid());
	free(lock);

	/* a second engine on the same directory is refused, naming us */
	CHECK_EQ_INT(bng_engine_open(&e2, state, NULL, bng_modules, bng_modules_count), BANGER_EBUSY);
	CHECK(e2 == NULL);
	CHECK_EQ_INT(banger_error_last_code(), BANGER_EBUSY);
	char want[64];
	snprintf(want, sizeof(want), "in use by pid %d", (int)getpid());
	CHECK_STR_CONTAINS(banger_error_last(), want);
	CHECK_STR_CONTAINS(banger_error_last(), state);
	CHECK_STR_CONTAINS(banger_error_last(), "(test_engine)");

	/* so is a public context on it */
	char *uri = bng_asprintf("local:%s", state);
	banger_ctx *ctx = NULL;
	CHECK_EQ_INT(banger_ctx_open(&ctx, uri, NULL), BANGER_EBUSY);
	CHECK(ctx == NULL);
	CHECK_STR_CONTAINS(banger_error_last(), want);

	/* closing releases it */
	bng_engine_close(e1);
	CHECK_OK(bng_engine_open(&e2, state, NULL, bng_modules, bng_modules_count));
	bng_engine_close(e2);
	CHECK_OK(banger_ctx_open(&ctx, uri, NULL));
	CHECK_EQ_STR(banger_ctx_transport(ctx), "local");
	banger_ctx_unref(ctx);
	bng_engine_close(NULL);
	free(uri);
	free(state);
}

/* ---- a state directory we may not write ---- */

static void test_not_writable(void)
{
	char *ro = sub("state-ro");
	CHECK_EQ_INT(mkdir(ro, 0755), 0);
	bool root = geteuid() == 0;
	if (!root)
		chmod(ro, 0555); /* unprivileged: our own read-only dir does the same */
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		if (root && (setgid(65534) != 0 || setuid(65534) != 0)) {
			perror("setuid(65534)");
			_exit(2);
		}
		bng_engine *e = NULL;
		int rc = bng_engine_open(&e, ro, NULL, bng_modules, bng_modules_count);
		const char *msg = banger_error_last();
		bool ok = rc == BANGER_EPERM && e == NULL && strstr(msg, "not writable") && strstr(msg, ro);
		if (!ok)
			fprintf(stderr, "%s:%d: child (uid %d): bng_engine_open(%s) = %d (%s): %s\n", __FILE__, __LINE__,
				(int)getuid(), ro, rc, banger_strerror(rc), msg);
		if (e)
			bng_engine_close(e);
		_exit(ok ? 0 : 1); /* no exit handlers: LSan cannot trace a setuid child */
	}
	CHECK(pid > 0);
	int status = 0;
	CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ_INT(WEXITSTATUS(status), 0);
	/* and nothing was created in it */
	char *lock = bng_asprintf("%s/lock", ro);
	CHECK(access(lock, F_OK) != 0);
	free(lock);
	free(ro);
}

/* ---- dispatch ---- */

static json_t *parse_json(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, 0, &jerr);
	if (!v) {
		fprintf(stderr, "bad test JSON %s: %s\n", text, jerr.text);
		abort();
	}
	return v;
}

/* Dispatches method with params given as JSON text (NULL: no params). */
static int dispatch(bng_engine *e, const char *method, const char *params, json_t **result, bng_op *op)
{
	json_t *p = params ? parse_json(params) : NULL;
	json_t *r = NULL;
	int rc = bng_engine_dispatch(e, method, p, &r, op);
	json_decref(p);
	if (result)
		*result = r;
	else
		json_decref(r);
	return rc;
}

static void expect_einval(int at, bng_engine *e, const char *method, const char *params, const char *what)
{
	json_t *r = (json_t *)1;
	int before = check_failed;
	CHECK_EQ_INT(dispatch(e, method, params, &r, NULL), BANGER_EINVAL);
	CHECK(r == NULL);
	CHECK_STR_CONTAINS(banger_error_last(), what);
	CHECK_STR_CONTAINS(banger_error_last(), method);
	if (check_failed != before)
		fprintf(stderr, "%s:%d: ^ for %s %s\n", __FILE__, at, method, params);
}
#define EXPECT_EINVAL(e, m, p, what) expect_einval(__LINE__, e, m, p, what)

static void collect_event(bng_op *op, json_t *ev)
{
	json_array_append_new((json_t *)op->emit_ud, ev);
}

typedef struct {
	atomic_int *flag;
	int delay_ms;
} canceller;

static void *cancel_later(void *arg)
{
	canceller *c = arg;
	usleep((useconds_t)c->delay_ms * 1000);
	atomic_store(c->flag, 1);
	return NULL;
}

static void test_dispatch(void)
{
	char *state = sub("state-dispatch");
	bng_engine *e = NULL;
	CHECK_OK(bng_engine_open(&e, state, NULL, bng_modules, bng_modules_count));
	if (!e) {
		free(state);
		return;
	}
	json_t *r = NULL;

	/* unknown methods */
	CHECK_EQ_INT(dispatch(e, "no.such.method", "{}", &r, NULL), BANGER_ENOMETHOD);
	CHECK(r == NULL);
	CHECK_EQ_INT(banger_error_last_code(), BANGER_ENOMETHOD);
	CHECK_STR_CONTAINS(banger_error_last(), "unknown method 'no.such.method'");
	CHECK_EQ_INT(dispatch(e, NULL, NULL, &r, NULL), BANGER_ENOMETHOD);
	CHECK_EQ_INT(dispatch(e, "", NULL, &r, NULL), BANGER_ENOMETHOD);
	CHECK_EQ_INT(dispatch(e, "debug.tick", "{\"count\":1}", &r, NULL), BANGER_ENOMETHOD);

	/* parameter validation names the parameter */
	EXPECT_EINVAL(e, "debug.ticks", "{\"count\":\"3\"}", "parameter 'count' must be an integer");
	EXPECT_EINVAL(e, "debug.ticks", "{\"count\":1.5}", "'count'");
	EXPECT_EINVAL(e, "debug.ticks", "{\"count\":true}", "'count'");
	EXPECT_EINVAL(e, "debug.ticks", "{\"count\":1,\"interval_ms\":\"fast\"}", "parameter 'interval_ms' must be an integer");
	EXPECT_EINVAL(e, "debug.ticks", "{}", "missing required parameter 'count'");
	EXPECT_EINVAL(e, "debug.ticks", NULL, "missing required parameter 'count'");
	EXPECT_EINVAL(e, "debug.ticks", "{\"interval_ms\":1}", "missing required parameter 'count'");
	EXPECT_EINVAL(e, "debug.ticks", "{\"count\":null}", "missing required parameter 'count'");
	EXPECT_EINVAL(e, "debug.ticks", "{\"count\":1,\"bogus\":true}", "unknown parameter 'bogus'");
	EXPECT_EINVAL(e, "engine.status", "{\"verbose\":1}", "unknown parameter 'verbose'");
	EXPECT_EINVAL(e, "debug.ticks", "[1]", "params must be a JSON object");
	/* the method's own range checks */
	EXPECT_EINVAL(e, "debug.ticks", "{\"count\":-1}", "count must be between");
	EXPECT_EINVAL(e, "debug.ticks", "{\"count\":1,\"interval_ms\":600000}", "interval_ms must be between");

	/* methods with no params */
	CHECK_OK(dispatch(e, "engine.status", NULL, &r, NULL));
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "pid")), getpid());
	CHECK_EQ_STR(json_string_value(json_object_get(r, "state_dir")), state);
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "schema_version")), bng_store_latest_version());
	CHECK_EQ_STR(json_string_value(json_object_get(r, "version")), banger_version_number());
	json_decref(r);

	CHECK_OK(dispatch(e, "rpc.methods", "{}", &r, NULL));
	json_t *methods = json_object_get(r, "methods");
	/* every registered module's methods, in registration order, each once */
	size_t total = 0;
	for (size_t k = 0; k < bng_modules_count; k++)
		total += bng_modules[k]->nmethods;
	CHECK_EQ_INT(json_array_size(methods), total);
	CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(methods, 0), "name")), "engine.status");
	bool has_ticks = false;
	json_t *names = json_object();
	size_t i;
	json_t *m;
	json_array_foreach(methods, i, m) {
		const char *name = json_string_value(json_object_get(m, "name"));
		CHECK(!json_object_get(names, name));
		json_object_set_new(names, name, json_true());
		if (!strcmp(name, "debug.ticks"))
			has_ticks = !strcmp(json_string_value(json_object_get(m, "params")), "count:int,interval_ms:int?");
	}
	json_decref(names);
	CHECK(has_ticks);
	json_decref(r);

	CHECK_OK(dispatch(e, "config.show", NULL, &r, NULL));
	CHECK(json_is_object(json_object_get(json_object_get(r, "values"), "vm_defaults.vcpu")));
	json_decref(r);

	CHECK_OK(dispatch(e, "store.check", NULL, &r, NULL));
	CHECK(json_is_true(json_object_get(r, "exists")));
	CHECK_EQ_INT(json_array_size(json_object_get(r, "pending")), 0);
	json_decref(r);

	/* debug.ticks: count events, in order, then the result */
	json_t *events = json_array();
	bng_op op = {.emit = collect_event, .emit_ud = events, .cancel = NULL};
	CHECK_OK(dispatch(e, "debug.ticks", "{\"count\":3,\"interval_ms\":0}", &r, &op));
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "ticks")), 3);
	json_decref(r);
	CHECK_EQ_INT(json_array_size(events), 3);
	json_t *ev;
	json_array_foreach(events, i, ev) {
		CHECK_EQ_STR(json_string_value(json_object_get(ev, "stage")), "tick");
		CHECK_EQ_INT(json_integer_value(json_object_get(ev, "done")), (long long)i + 1);
		CHECK_EQ_INT(json_integer_value(json_object_get(ev, "total")), 3);
	}
	json_array_clear(events);
	/* zero ticks: no events, still a result */
	CHECK_OK(dispatch(e, "debug.ticks", "{\"count\":0}", &r, &op));
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "ticks")), 0);
	CHECK_EQ_INT(json_array_size(events), 0);
	json_decref(r);
	/* no op at all: events are dropped */
	CHECK_OK(dispatch(e, "debug.ticks", "{\"count\":2,\"interval_ms\":1}", &r, NULL));
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "ticks")), 2);
	json_decref(r);

	/* cancellation from another thread stops it mid-way */
	atomic_int flag;
	atomic_init(&flag, 0);
	op.cancel = &flag;
	canceller c = {.flag = &flag, .delay_ms = 150};
	pthread_t t;
	CHECK_EQ_INT(pthread_create(&t, NULL, cancel_later, &c), 0);
	double t0 = now_s();
	r = (json_t *)1;
	CHECK_EQ_INT(dispatch(e, "debug.ticks", "{\"count\":1000,\"interval_ms\":10}", &r, &op), BANGER_ECANCELED);
	double took = now_s() - t0;
	pthread_join(t, NULL);
	CHECK(r == NULL);
	CHECK_EQ_INT(banger_error_last_code(), BANGER_ECANCELED);
	CHECK(took < 5.0);
	size_t n = json_array_size(events);
	CHECK(n < 1000);
	char want[96];
	snprintf(want, sizeof(want), "cancelled after %zu of 1000 ticks", n);
	CHECK_STR_CONTAINS(banger_error_last(), want);
	json_array_clear(events);

	/* already cancelled: the method does not run */
	CHECK_EQ_INT(dispatch(e, "debug.ticks", "{\"count\":5,\"interval_ms\":0}", &r, &op), BANGER_ECANCELED);
	CHECK_EQ_INT(json_array_size(events), 0);
	CHECK_STR_CONTAINS(banger_error_last(), "cancelled");
	/* validation still comes first */
	CHECK_EQ_INT(dispatch(e, "debug.ticks", "{}", &r, &op), BANGER_EINVAL);

	json_decref(events);
	bng_engine_close(e);
	free(state);
}

/* ---- the public async API on a libuv loop ---- */

typedef struct {
	pthread_t loop_thread;
	int events;
	int events_off_loop;
	int events_after_done;
	int events_out_of_order;
	int done_calls;
	int done_off_loop;
	int done_err;
	char result[256];
	char error[512];
} probe;

static void on_event(const char *event_json, void *ud)
{
	probe *p = ud;
	p->events++;
	if (!pthread_equal(pthread_self(), p->loop_thread))
		p->events_off_loop++;
	if (p->done_calls)
		p->events_after_done++;
	json_t *ev = parse_json(event_json);
	if (json_integer_value(json_object_get(ev, "done")) != p->events)
		p->events_out_of_order++;
	json_decref(ev);
}

static void on_done(banger_call *call, int err, void *ud)
{
	probe *p = ud;
	p->done_calls++;
	if (!pthread_equal(pthread_self(), p->loop_thread))
		p->done_off_loop++;
	p->done_err = err;
	const char *res = banger_call_result(call);
	snprintf(p->result, sizeof(p->result), "%s", res ? res : "(null)");
	snprintf(p->error, sizeof(p->error), "%s", banger_call_error(call));
}

static void cancel_on_timer(uv_timer_t *t)
{
	banger_call_cancel(t->data);
	uv_close((uv_handle_t *)t, NULL);
}

/* Starts method on loop and runs the loop dry; cancel_ms < 0: no cancel,
 * 0: cancel right after start, > 0: cancel from a loop timer. */
static int run_async(banger_ctx *ctx, uv_loop_t *loop, const char *method, const char *params, int cancel_ms,
		     probe *p)
{
	memset(p, 0, sizeof(*p));
	p->loop_thread = pthread_self();
	banger_call *call = NULL;
	int rc = banger_call_new(&call, method, params);
	if (rc)
		return rc;
	banger_call_set_event_cb(call, on_event, p);
	rc = banger_call_start(ctx, call, loop, on_done, p);
	if (rc) {
		banger_call_unref(call);
		return rc;
	}
	/* starting it again while it runs is refused (and never calls back) */
	CHECK_EQ_INT(banger_call_start(ctx, call, loop, on_done, p), BANGER_EBUSY);
	uv_timer_t timer;
	if (cancel_ms == 0) {
		banger_call_cancel(call);
	} else if (cancel_ms > 0) {
		uv_timer_init(loop, &timer);
		timer.data = call;
		uv_timer_start(&timer, cancel_on_timer, (uint64_t)cancel_ms, 0);
	}
	/* nothing is delivered before the loop runs */
	CHECK_EQ_INT(p->done_calls, 0);
	CHECK_EQ_INT(p->events, 0);
	uv_run(loop, UV_RUN_DEFAULT);
	banger_call_unref(call);
	return 0;
}

static void test_async(void)
{
	char *state = sub("state-async");
	char *uri = bng_asprintf("local:%s", state);
	banger_ctx *ctx = NULL;
	CHECK_OK(banger_ctx_open(&ctx, uri, NULL));
	if (!ctx) {
		free(uri);
		free(state);
		return;
	}
	uv_loop_t loop;
	CHECK_EQ_INT(uv_loop_init(&loop), 0);
	probe p;

	/* a call that finishes: all events, then exactly one done, on the loop thread */
	CHECK_OK(run_async(ctx, &loop, "debug.ticks", "{\"count\":5,\"interval_ms\":10}", -1, &p));
	CHECK_EQ_INT(p.done_calls, 1);
	CHECK_EQ_INT(p.done_err, 0);
	CHECK_EQ_INT(p.done_off_loop, 0);
	CHECK_EQ_INT(p.events, 5);
	CHECK_EQ_INT(p.events_off_loop, 0);
	CHECK_EQ_INT(p.events_after_done, 0);
	CHECK_EQ_INT(p.events_out_of_order, 0);
	CHECK_EQ_STR(p.result, "{\"ticks\":5}");
	CHECK_EQ_STR(p.error, "");

	/* fast events (no interval) are all delivered too */
	CHECK_OK(run_async(ctx, &loop, "debug.ticks", "{\"count\":200,\"interval_ms\":0}", -1, &p));
	CHECK_EQ_INT(p.done_calls, 1);
	CHECK_EQ_INT(p.events, 200);
	CHECK_EQ_INT(p.events_out_of_order, 0);
	CHECK_EQ_INT(p.events_after_done, 0);

	/* a failing call reports its error through done */
	CHECK_OK(run_async(ctx, &loop, "debug.ticks", "{\"count\":\"x\"}", -1, &p));
	CHECK_EQ_INT(p.done_calls, 1);
	CHECK_EQ_INT(p.done_err, BANGER_EINVAL);
	CHECK_STR_CONTAINS(p.error, "'count'");
	CHECK_EQ_STR(p.result, "(null)");
	CHECK_OK(run_async(ctx, &loop, "no.such", NULL, -1, &p));
	CHECK_EQ_INT(p.done_calls, 1);
	CHECK_EQ_INT(p.done_err, BANGER_ENOMETHOD);

	/* cancelled right after start */
	double t0 = now_s();
	CHECK_OK(run_async(ctx, &loop, "debug.ticks", "{\"count\":1000,\"interval_ms\":10}", 0, &p));
	CHECK(now_s() - t0 < 5.0);
	CHECK_EQ_INT(p.done_calls, 1);
	CHECK_EQ_INT(p.done_off_loop, 0);
	CHECK_EQ_INT(p.done_err, BANGER_ECANCELED);
	CHECK(p.events < 1000);
	CHECK_STR_CONTAINS(p.error, "cancel");
	CHECK_EQ_STR(p.result, "(null)");

	/* cancelled mid-way from a timer on the loop */
	t0 = now_s();
	CHECK_OK(run_async(ctx, &loop, "debug.ticks", "{\"count\":1000,\"interval_ms\":10}", 120, &p));
	CHECK(now_s() - t0 < 5.0);
	CHECK_EQ_INT(p.done_calls, 1);
	CHECK_EQ_INT(p.done_err, BANGER_ECANCELED);
	CHECK(p.events < 1000);
	CHECK_EQ_INT(p.events_after_done, 0);
	CHECK_EQ_INT(p.events_out_of_order, 0);
	char want[96];
	snprintf(want, sizeof(want), "cancelled after %d of 1000 ticks", p.events);
	CHECK_STR_CONTAINS(p.error, want);

	/* a start that fails never calls back */
	banger_call *call = NULL;
	CHECK_OK(banger_call_new(&call, "engine.status", NULL));
	memset(&p, 0, sizeof(p));
	CHECK_EQ_INT(banger_call_start(ctx, call, NULL, on_done, &p), BANGER_EINVAL);
	CHECK_EQ_INT(banger_call_start(NULL, call, &loop, on_done, &p), BANGER_EINVAL);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(p.done_calls, 0);

	/* the same call object can run synchronously afterwards */
	CHECK_OK(banger_call_run(ctx, call));
	json_t *status = parse_json(banger_call_result(call) ? banger_call_result(call) : "{}");
	CHECK_EQ_INT(json_integer_value(json_object_get(status, "pid")), getpid());
	json_decref(status);
	banger_call_unref(call);

	/* the convenience wrapper */
	char *out = NULL;
	CHECK_OK(banger_ctx_call(ctx, "debug.ticks", "{\"count\":1,\"interval_ms\":0}", &out));
	CHECK_EQ_STR(out, "{\"ticks\":1}");
	banger_free(out);
	out = NULL;
	CHECK_EQ_INT(banger_ctx_call(ctx, "debug.ticks", "[]", &out), BANGER_EPROTO);
	CHECK(out == NULL);
	CHECK_EQ_INT(banger_ctx_call(ctx, "debug.ticks", "{\"count\":", &out), BANGER_EPROTO);

	/* the context outlives an unref while a call still holds it */
	banger_ctx_ref(ctx);
	banger_ctx_unref(ctx);

	CHECK_EQ_INT(uv_loop_close(&loop), 0);
	banger_ctx_unref(ctx);
	free(uri);
	free(state);
}

static void test_ctx_uris(void)
{
	banger_ctx *ctx = (banger_ctx *)1;
	CHECK_EQ_INT(banger_ctx_open(&ctx, "local:relative/dir", NULL), BANGER_EINVAL);
	CHECK(ctx == NULL);
	CHECK_STR_CONTAINS(banger_error_last(), "absolute path");
	CHECK_EQ_INT(banger_ctx_open(&ctx, "ftp://x", NULL), BANGER_EINVAL);
	CHECK_STR_CONTAINS(banger_error_last(), "unsupported context URI");
	CHECK_EQ_INT(banger_ctx_open(NULL, "local:/x", NULL), BANGER_EINVAL);
}

/* ---- a broken config file stops a local context from opening ---- */

static void test_bad_config(void)
{
	char *state = sub("state-badcfg");
	char *uri = bng_asprintf("local:%s", state);
	char *cfg = bng_asprintf("%s/config.toml", config_dir);
	banger_ctx *ctx = NULL;

	static const char syntax[] = "log_level = 'info'\n\n[vm_defaults]\nvcpu = \n";
	check_write_file(cfg, syntax, sizeof(syntax) - 1);
	CHECK_EQ_INT(banger_ctx_open(&ctx, uri, NULL), BANGER_ECONFIG);
	CHECK(ctx == NULL);
	char *want = bng_asprintf("%s:4: missing value", cfg);
	CHECK_STR_CONTAINS(banger_error_last(), want);
	free(want);

	static const char type[] = "# banger\nvmm = \"xen\"\n";
	check_write_file(cfg, type, sizeof(type) - 1);
	CHECK_EQ_INT(banger_ctx_open(&ctx, uri, NULL), BANGER_ECONFIG);
	want = bng_asprintf("%s:2: vmm: must be one of", cfg);
	CHECK_STR_CONTAINS(banger_error_last(), want);
	free(want);

	/* an explicit config path is the one named */
	char *other = sub("other.toml");
	static const char other_text[] = "[vm_defaults]\n\ndisk_size = \"lots\"\n";
	check_write_file(other, other_text, sizeof(other_text) - 1);
	banger_opts *opts = NULL;
	CHECK_OK(banger_opts_new(&opts));
	CHECK_OK(banger_opts_set_config_path(opts, other));
	CHECK_EQ_INT(banger_ctx_open(&ctx, uri, opts), BANGER_ECONFIG);
	want = bng_asprintf("%s:3: vm_defaults.disk_size:", other);
	CHECK_STR_CONTAINS(banger_error_last(), want);
	free(want);

	/* the failed opens left no lock behind: fixing the file is enough */
	unlink(cfg);
	CHECK_OK(banger_ctx_open(&ctx, uri, NULL));
	banger_ctx_unref(ctx);
	ctx = NULL;
	static const char good[] = "[vm_defaults]\ndisk_size = \"2G\"\n";
	check_write_file(other, good, sizeof(good) - 1);
	CHECK_OK(banger_ctx_open(&ctx, uri, opts));
	char *out = NULL;
	CHECK_OK(banger_ctx_call(ctx, "config.show", NULL, &out));
	json_t *shown = parse_json(out ? out : "{}");
	json_t *disk = json_object_get(json_object_get(shown, "values"), "vm_defaults.disk_size");
	CHECK_EQ_INT(json_integer_value(json_object_get(disk, "value")), 2LL << 30);
	CHECK_EQ_STR(json_string_value(json_object_get(disk, "source")), "config");
	CHECK_EQ_INT(json_integer_value(json_object_get(disk, "line")), 2);
	CHECK_EQ_STR(json_string_value(json_object_get(shown, "path")), other);
	json_decref(shown);
	banger_free(out);
	banger_ctx_unref(ctx);
	banger_opts_free(opts);

	free(other);
	free(cfg);
	free(uri);
	free(state);
}

int main(void)
{
	setup();
	test_lock();
	test_not_writable();
	test_dispatch();
	test_async();
	test_ctx_uris();
	test_bad_config();
	check_rm_rf(base);
	free(config_dir);
	free(base);
	return check_summary();
}

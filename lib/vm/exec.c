/* vm.exec: a command in a running guest over the agent link, no SSH (one
 * SSH session costs seconds of an emulated CPU; a frame costs microseconds).
 * Output is streamed as events ({"output":"stdout"|"stderr","data":<base64>})
 * or collected into the result. */
#include "vm.h"
#include "../image/image.h"
#include "idle.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define COLLECT_MAX (16u << 20) /* per stream, when not streaming */

#define EVENT_MAX (256u << 10) /* output bytes per event when streamed */

typedef struct {
	bng_op *op;
	bool stream;
	bng_output out; /* collected, or (streamed) waiting for its event */
	bool truncated;
} exec_sink;

void bng_output_append(bng_output *o, int fd, const char *data, size_t len)
{
	int i = fd == 2;
	if (o->len[i] + len + 1 > o->cap[i]) {
		o->cap[i] = (o->len[i] + len + 1) * 2;
		char *grown = realloc(o->buf[i], o->cap[i]);
		if (!grown)
			abort(); /* as bng_xmalloc */
		o->buf[i] = grown;
	}
	memcpy(o->buf[i] + o->len[i], data, len);
	o->len[i] += len;
	o->buf[i][o->len[i]] = '\0';
}

int bng_output_collect(void *ud, int fd, const char *data, size_t len)
{
	bng_output_append(ud, fd, data, len);
	return 0;
}

void bng_output_free(bng_output *o)
{
	free(o->buf[0]);
	free(o->buf[1]);
	*o = (bng_output){0};
}

int bng_vm_guest_run(bng_agent_link *link, const bng_vm_row *vm, bng_op *op, json_t *spec, const bng_exec_io *io,
		     int timeout_ms, int *code, json_t **status_out)
{
	bng_agent_watch watch = bng_vm_watch(vm, op);
	json_t *status = NULL;
	const char *id = vm->id;
	bng_vm_activity(id, +1); /* never idle while a command runs */
	int rc = bng_agent_link_exec(link, spec, io, timeout_ms, &watch, &status);
	bng_vm_activity(id, -1);
	if (!rc) {
		json_int_t sig = json_integer_value(json_object_get(status, "signal"));
		*code = sig ? 128 + (int)sig : (int)json_integer_value(json_object_get(status, "exit_code"));
	}
	if (status_out)
		*status_out = status;
	else
		json_decref(status);
	return rc;
}

/* Streamed output goes out in pieces of up to EVENT_MAX: one event per
 * frame would cost more than the bytes (an event crosses threads, JSON
 * and base64). */
static void flush_events(void *ud)
{
	exec_sink *k = ud;
	for (int i = 0; k->stream && i < 2; i++)
		if (k->out.len[i]) {
			char *b64 = bng_base64(k->out.buf[i], k->out.len[i]);
			bng_op_event(k->op, json_pack("{s:s,s:s}", "output", i ? "stderr" : "stdout", "data", b64));
			free(b64);
			k->out.len[i] = 0;
		}
}

static int on_output(void *ud, int fd, const char *data, size_t len)
{
	exec_sink *k = ud;
	int i = fd == 2;
	if (k->stream) {
		if (k->out.len[!i]) /* keep stdout and stderr in the order they came */
			flush_events(k);
		bng_output_append(&k->out, fd, data, len);
		if (k->out.len[i] >= EVENT_MAX)
			flush_events(k);
		return 0;
	}
	if (k->out.len[i] + len > COLLECT_MAX) { /* keep the head, as the SSH path did */
		len = COLLECT_MAX - k->out.len[i];
		k->truncated = true;
	}
	bng_output_append(&k->out, fd, data, len);
	return 0;
}

/* Collected output as a JSON string; bytes that are not UTF-8 come back
 * as base64 under "<name>_b64" instead. */
static void put_output(json_t *result, const char *name, const char *data, size_t len)
{
	json_t *s = json_stringn(data ? data : "", len);
	if (s) {
		json_object_set_new(result, name, s);
		return;
	}
	char *key = bng_asprintf("%s_b64", name), *b64 = bng_base64(data, len);
	json_object_set_new(result, name, json_string(""));
	json_object_set_new(result, key, json_string(b64));
	free(key);
	free(b64);
}

/* An OCI image's config (Env, WorkingDir, User) as defaults for a command,
 * as `docker exec` has them: the caller's env adds to and overrides the
 * image's (the agent keeps the last value of a name), its cwd and user win. */
static void image_defaults(bng_engine *e, const bng_vm_row *vm, json_t *spec)
{
	json_t *image = NULL;
	if (bng_image_get(e, vm->image_id, &image) != 0)
		return;
	json_t *cfg = json_object_get(image, "config");
	json_t *env = json_array(), *v;
	size_t i;
	json_array_foreach(json_object_get(cfg, "Env"), i, v)
		if (json_is_string(v) && strchr(json_string_value(v), '=') != json_string_value(v) &&
		    strchr(json_string_value(v), '='))
			json_array_append(env, v);
	if (json_array_size(env)) {
		json_array_extend(env, json_object_get(spec, "env"));
		json_object_set(spec, "env", env);
	}
	json_decref(env);
	const char *cwd = json_string_value(json_object_get(cfg, "WorkingDir"));
	if (cwd && *cwd && !json_object_get(spec, "cwd"))
		json_object_set_new(spec, "cwd", json_string(cwd));
	const char *user = json_string_value(json_object_get(cfg, "User"));
	size_t ulen = user ? strcspn(user, ":") : 0; /* "user:group": the agent takes the user's groups */
	if (ulen && !json_object_get(spec, "user"))
		json_object_set_new(spec, "user", json_stringn(user, ulen));
	json_decref(image);
}

static json_t *next_input(void *ud) { return bng_op_input(((exec_sink *)ud)->op); }

/* Tells the caller how much of its stdin went on, so it can send more
 * without filling the call's inbox. */
static void stdin_taken(void *ud, size_t total)
{
	bng_op_event(((exec_sink *)ud)->op, json_pack("{s:I}", "stdin_taken", (json_int_t)total));
}

int bng_m_vm_exec(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	bng_vm_row *vm;
	bng_agent_link *link;
	json_t *argv = json_object_get(params, "argv");
	if (json_array_size(argv) == 0)
		return bng_err(BANGER_EINVAL, "vm.exec needs a command (argv)");
	int rc = bng_vm_link(e, json_string_value(json_object_get(params, "name")), &vm, &link);
	if (rc)
		return rc;
	json_t *spec = json_pack("{s:O}", "argv", argv);
	static const char *const passed[] = {"env", "cwd", "user", "tty", "rows", "cols"};
	for (size_t i = 0; i < BNG_ARRAY_LEN(passed); i++)
		if (json_object_get(params, passed[i]))
			json_object_set(spec, passed[i], json_object_get(params, passed[i]));
	image_defaults(e, vm, spec);
	exec_sink sink = {.op = op, .stream = json_is_true(json_object_get(params, "stream"))};
	const char *in = json_string_value(json_object_get(params, "stdin"));
	bng_exec_io io = {.output = on_output, .ud = &sink, .stdin_data = in, .stdin_len = in ? strlen(in) : 0,
			  .idle = flush_events};
	if (json_is_true(json_object_get(params, "stdin_stream"))) {
		io.input = next_input;
		io.stdin_taken = stdin_taken;
	}
	json_int_t timeout = json_integer_value(json_object_get(params, "timeout_s"));
	json_t *status = NULL;
	int code = 0;
	rc = bng_vm_guest_run(link, vm, op, spec, &io, timeout > 0 ? (int)timeout * 1000 : 0, &code, &status);
	if (!rc) {
		json_int_t sig = json_integer_value(json_object_get(status, "signal"));
		*result = json_pack("{s:i,s:O}", "exit_code", code, "pid", json_object_get(status, "pid") ?: json_null());
		if (sig) {
			const char *name = sigabbrev_np((int)sig);
			json_object_set_new(*result, "signal", name ? json_string(name) : json_integer(sig));
		}
		if (!sink.stream) {
			put_output(*result, "stdout", sink.out.buf[0], sink.out.len[0]);
			put_output(*result, "stderr", sink.out.buf[1], sink.out.len[1]);
			json_object_set_new(*result, "truncated", json_boolean(sink.truncated));
		}
	}
	bng_output_free(&sink.out);
	json_decref(status);
	json_decref(spec);
	bng_agent_link_unref(link);
	bng_vm_free(vm);
	return rc;
}

/* Typed session handles (include/banger/session.h) over vm.session.*: each
 * call runs one method through the VM's context and keeps the session it
 * returns. */
#include "handle.h"
#include "core/internal.h"

#include <banger/session.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct banger_session {
	atomic_int refs;
	banger_vm *vm;
	json_t *doc;
	char *text; /* banger_session_json */
};

struct banger_session_options {
	json_t *params;
};

BANGER_API int banger_session_options_new(banger_session_options **out)
{
	if (!out)
		return bng_err(BANGER_EINVAL, "banger_session_options_new: out is NULL");
	*out = bng_xcalloc(1, sizeof(**out));
	(*out)->params = json_pack("{s:[],s:[],s:[]}", "argv", "env", "require");
	return 0;
}

BANGER_API void banger_session_options_free(banger_session_options *o)
{
	if (o) {
		json_decref(o->params);
		free(o);
	}
}

BANGER_API int banger_session_options_set_argv(banger_session_options *o, size_t argc, const char *const *argv)
{
	return bng_handle_set_argv(o ? o->params : NULL, "argv", argc, argv, "banger_session_options_set_argv");
}

BANGER_API int banger_session_options_set_cwd(banger_session_options *o, const char *dir)
{
	return bng_handle_set_str(o ? o->params : NULL, "cwd", dir);
}

static int append(banger_session_options *o, const char *key, const char *value)
{
	if (!o || !value)
		return bng_err(BANGER_EINVAL, "options and a value are required");
	if (json_array_append_new(json_object_get(o->params, key), json_string(value)) != 0)
		return bng_err(BANGER_EINVAL, "%s entry is not UTF-8", key);
	return 0;
}

BANGER_API int banger_session_options_add_env(banger_session_options *o, const char *name_value)
{
	if (!name_value || !strchr(name_value, '=') || name_value[0] == '=')
		return bng_err(BANGER_EINVAL, "banger_session_options_add_env wants \"NAME=VALUE\"");
	return append(o, "env", name_value);
}

BANGER_API int banger_session_options_add_require(banger_session_options *o, const char *command)
{
	return append(o, "require", command);
}

static int set_bool(banger_session_options *o, const char *key, json_t *value)
{
	if (!o) {
		json_decref(value);
		return bng_err(BANGER_EINVAL, "options are NULL");
	}
	json_object_set_new(o->params, key, value);
	return 0;
}

BANGER_API int banger_session_options_set_pipe_stdin(banger_session_options *o, int enabled)
{
	return set_bool(o, "stdin_mode", json_string(enabled ? "pipe" : "detached"));
}

BANGER_API int banger_session_options_set_tty(banger_session_options *o, int enabled)
{
	return set_bool(o, "tty", json_boolean(enabled));
}

/* ---- handles ---- */

static banger_session *wrap(banger_vm *vm, json_t *doc)
{
	banger_session *s = bng_xcalloc(1, sizeof(*s));
	atomic_init(&s->refs, 1);
	s->vm = banger_vm_ref(vm);
	s->doc = doc;
	return s;
}

static void set_doc(banger_session *s, json_t *doc)
{
	json_decref(s->doc);
	s->doc = doc;
	free(s->text);
	s->text = NULL;
}

/* params for a method on (vm, name), or NULL when name is not UTF-8. */
static json_t *target(banger_vm *vm, const char *name)
{
	return json_pack("{s:s,s:s}", "name", banger_vm_id(vm), "session", name);
}

static int call_on(banger_vm *vm, const char *method, json_t *params, json_t **res)
{
	if (!params)
		return bng_err(BANGER_EINVAL, "%s: the session name is NULL or not UTF-8", method);
	int rc = bng_handle_run(bng_vm_handle_ctx(vm), method, params, res, NULL, NULL);
	json_decref(params);
	return rc;
}

BANGER_API int banger_session_start(banger_session **out, banger_vm *vm, const char *name,
				    const banger_session_options *opts)
{
	if (!out || !vm || !name || !opts)
		return bng_err(BANGER_EINVAL, "banger_session_start: out, vm, name and options are required");
	*out = NULL;
	json_t *params = target(vm, name), *doc = NULL;
	if (params)
		json_object_update(params, opts->params);
	int rc = call_on(vm, "vm.session.start", params, &doc);
	if (!rc)
		*out = wrap(vm, doc);
	return rc;
}

BANGER_API int banger_session_lookup(banger_session **out, banger_vm *vm, const char *name)
{
	if (!out || !vm || !name)
		return bng_err(BANGER_EINVAL, "banger_session_lookup: out, vm and name are required");
	*out = NULL;
	json_t *doc = NULL;
	int rc = call_on(vm, "vm.session.show", target(vm, name), &doc);
	if (!rc)
		*out = wrap(vm, doc);
	return rc;
}

BANGER_API int banger_session_list(banger_session ***out, size_t *count, banger_vm *vm)
{
	if (!out || !count || !vm)
		return bng_err(BANGER_EINVAL, "banger_session_list: out, count and vm are required");
	*out = NULL;
	*count = 0;
	json_t *res = NULL;
	int rc = call_on(vm, "vm.session.list", json_pack("{s:s}", "name", banger_vm_id(vm)), &res);
	if (rc)
		return rc;
	json_t *list = json_object_get(res, "sessions");
	*out = bng_xcalloc(json_array_size(list) + 1, sizeof(banger_session *));
	size_t i;
	json_t *doc;
	json_array_foreach(list, i, doc) (*out)[i] = wrap(vm, json_incref(doc));
	*count = json_array_size(list);
	json_decref(res);
	return 0;
}

BANGER_API void banger_session_list_free(banger_session **sessions, size_t count)
{
	for (size_t i = 0; sessions && i < count; i++)
		banger_session_unref(sessions[i]);
	free(sessions);
}

BANGER_API banger_session *banger_session_ref(banger_session *s)
{
	if (s)
		atomic_fetch_add(&s->refs, 1);
	return s;
}

BANGER_API void banger_session_unref(banger_session *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	banger_vm_unref(s->vm);
	json_decref(s->doc);
	free(s->text);
	free(s);
}

/* ---- fields ---- */

static const char *field(const banger_session *s, const char *key)
{
	return s ? json_string_value(json_object_get(s->doc, key)) : NULL;
}

BANGER_API const char *banger_session_name(const banger_session *s) { return field(s, "name"); }
BANGER_API const char *banger_session_state(const banger_session *s) { return field(s, "state"); }
BANGER_API const char *banger_session_signal(const banger_session *s) { return field(s, "signal"); }

BANGER_API int32_t banger_session_pid(const banger_session *s)
{
	return s ? (int32_t)json_integer_value(json_object_get(s->doc, "pid")) : 0;
}

BANGER_API int32_t banger_session_exit_code(const banger_session *s)
{
	json_t *code = s ? json_object_get(s->doc, "exit_code") : NULL;
	return json_is_integer(code) ? (int32_t)json_integer_value(code) : -1;
}

BANGER_API const char *banger_session_json(const banger_session *s)
{
	if (!s)
		return NULL;
	struct banger_session *mut = (struct banger_session *)s; /* a cache, not a change */
	if (!mut->text)
		mut->text = json_dumps(s->doc, JSON_COMPACT);
	return mut->text;
}

/* ---- verbs ---- */

/* Runs method on the session; a session in its result replaces ours. */
static int verb(banger_session *s, const char *method, json_t *extra)
{
	if (!s) {
		json_decref(extra);
		return bng_err(BANGER_EINVAL, "%s: session is NULL", method);
	}
	json_t *params = target(s->vm, field(s, "name")), *doc = NULL;
	if (params && extra)
		json_object_update(params, extra);
	json_decref(extra);
	int rc = call_on(s->vm, method, params, &doc);
	if (!rc && json_is_string(json_object_get(doc, "state")))
		set_doc(s, doc);
	else
		json_decref(doc);
	return rc;
}

BANGER_API int banger_session_refresh(banger_session *s) { return verb(s, "vm.session.show", NULL); }
BANGER_API int banger_session_stop(banger_session *s) { return verb(s, "vm.session.stop", NULL); }

BANGER_API int banger_session_kill(banger_session *s, const char *signal)
{
	return verb(s, "vm.session.kill", signal ? json_pack("{s:s}", "signal", signal) : NULL);
}

BANGER_API int banger_session_send(banger_session *s, const char *text)
{
	json_t *data = text ? json_string(text) : NULL;
	if (!data)
		return bng_err(BANGER_EINVAL, "banger_session_send: text is NULL or not UTF-8");
	return verb(s, "vm.session.send", json_pack("{s:o}", "data", data));
}

typedef struct {
	banger_output_cb cb;
	void *ud;
} logs_sink;

static void on_logs_event(const char *event_json, void *ud)
{
	logs_sink *sink = ud;
	json_t *ev = json_loads(event_json, 0, NULL);
	const char *data = json_string_value(json_object_get(ev, "data"));
	char *bytes;
	size_t len;
	if (json_object_get(ev, "output") && data && bng_base64_decode(data, &bytes, &len) == 0) {
		sink->cb(1, bytes, len, sink->ud);
		free(bytes);
	}
	json_decref(ev);
}

BANGER_API int banger_session_logs(banger_session *s, banger_output_cb cb, void *userdata, int flags,
				   int32_t tail_lines)
{
	if (!s || !cb)
		return bng_err(BANGER_EINVAL, "banger_session_logs: session and callback are required");
	if ((flags & BANGER_LOGS_STDOUT) && (flags & BANGER_LOGS_STDERR))
		return bng_err(BANGER_EINVAL, "banger_session_logs: stdout or stderr, not both (neither: both)");
	json_t *params = target(s->vm, field(s, "name"));
	if (!params)
		return bng_err(BANGER_EINVAL, "banger_session_logs: the session has no name");
	json_object_set_new(params, "stream", json_true());
	if (flags & BANGER_LOGS_FOLLOW)
		json_object_set_new(params, "follow", json_true());
	if (flags & (BANGER_LOGS_STDOUT | BANGER_LOGS_STDERR))
		json_object_set_new(params, "output", json_string(flags & BANGER_LOGS_STDOUT ? "stdout" : "stderr"));
	if (tail_lines >= 0)
		json_object_set_new(params, "tail", json_integer(tail_lines));
	logs_sink sink = {cb, userdata};
	json_t *res = NULL;
	int rc = bng_handle_run(bng_vm_handle_ctx(s->vm), "vm.session.logs", params, &res, on_logs_event, &sink);
	json_decref(params);
	if (!rc && json_integer_value(json_object_get(res, "exit_code")) != 0)
		rc = bng_err(BANGER_EIO, "the guest could not read the session's logs (status %lld)",
			     (long long)json_integer_value(json_object_get(res, "exit_code")));
	json_decref(res);
	return rc;
}

BANGER_API int banger_session_attach(banger_process **out, banger_session *s, int32_t rows, int32_t cols,
				     banger_output_cb cb, void *ud)
{
	if (!out || !s || rows < 0 || cols < 0 || rows > 65535 || cols > 65535)
		return bng_err(BANGER_EINVAL, "banger_session_attach: out, a session and a size of 0..65535 are required");
	json_t *params = target(s->vm, banger_session_name(s));
	json_object_set_new(params, "holder", json_sprintf("libbanger in pid %d", (int)getpid()));
	if (json_is_true(json_object_get(s->doc, "tty")) && rows && cols) {
		json_object_set_new(params, "tty", json_true());
		json_object_set_new(params, "rows", json_integer(rows));
		json_object_set_new(params, "cols", json_integer(cols));
	}
	int rc = bng_process_start(out, bng_vm_handle_ctx(s->vm), "vm.session.attach", params, cb, ud, NULL);
	json_decref(params);
	return rc;
}

/* Typed VM handles (include/banger/vm.h) over the dispatch: each call
 * builds its params, runs one method through the context (either
 * transport) and keeps the row it returns. */
#include "handle.h"
#include "core/internal.h"

#include <banger/exec.h>
#include <banger/vm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct banger_vm {
	bng_record rec;
};

struct banger_vm_options {
	json_t *params;
	banger_progress_cb progress;
	void *progress_ud;
};

struct banger_exec_options {
	json_t *params;
	banger_output_cb cb;
	void *ud;
};

struct banger_exec_result {
	int32_t exit_code, signal;
	char *out, *err;
	size_t out_len, err_len;
};

banger_ctx *bng_vm_handle_ctx(const banger_vm *vm) { return vm->rec.ctx; }

static const char *field(const banger_vm *vm, const char *key) { return bng_record_str(vm ? &vm->rec : NULL, key); }

/* ---- options ---- */

BANGER_API int banger_vm_options_new(banger_vm_options **out)
{
	if (!out)
		return bng_err(BANGER_EINVAL, "banger_vm_options_new: out is NULL");
	*out = bng_xcalloc(1, sizeof(**out));
	(*out)->params = json_object();
	return 0;
}

BANGER_API void banger_vm_options_free(banger_vm_options *o)
{
	if (o) {
		json_decref(o->params);
		free(o);
	}
}

#define P(o) ((o) ? (o)->params : NULL)
BANGER_API int banger_vm_options_set_name(banger_vm_options *o, const char *v) { return bng_handle_set_str(P(o), "name", v); }
BANGER_API int banger_vm_options_set_image(banger_vm_options *o, const char *v) { return bng_handle_set_str(P(o), "image", v); }
BANGER_API int banger_vm_options_set_kernel(banger_vm_options *o, const char *v) { return bng_handle_set_str(P(o), "kernel", v); }
BANGER_API int banger_vm_options_set_vcpus(banger_vm_options *o, int32_t v) { return bng_handle_set_int(P(o), "vcpu", v); }
BANGER_API int banger_vm_options_set_memory_mib(banger_vm_options *o, int32_t v) { return bng_handle_set_int(P(o), "memory_mib", v); }
BANGER_API int banger_vm_options_set_disk_size(banger_vm_options *o, const char *v) { return bng_handle_set_str(P(o), "disk_size", v); }
BANGER_API int banger_vm_options_set_init(banger_vm_options *o, const char *v) { return bng_handle_set_str(P(o), "init", v); }
BANGER_API int banger_vm_options_set_nat(banger_vm_options *o, int enabled) { return bng_handle_set_bool(P(o), "nat", enabled); }
BANGER_API int banger_vm_options_set_start(banger_vm_options *o, int enabled) { return bng_handle_set_bool(P(o), "start", enabled); }

BANGER_API int banger_vm_options_set_progress_cb(banger_vm_options *o, banger_progress_cb cb, void *userdata)
{
	if (!o)
		return bng_err(BANGER_EINVAL, "options are NULL");
	o->progress = cb;
	o->progress_ud = userdata;
	return 0;
}

/* ---- handles ---- */

BANGER_API int banger_vm_create(banger_vm **out, banger_ctx *ctx, const banger_vm_options *opts)
{
	if (!out || !ctx)
		return bng_err(BANGER_EINVAL, "banger_vm_create: out and ctx are required");
	json_t *params = opts ? json_deep_copy(opts->params) : json_object();
	int rc = bng_record_fetch((void **)out, sizeof(banger_vm), ctx, "vm.create", params,
				  opts ? opts->progress : NULL, opts ? opts->progress_ud : NULL);
	json_decref(params);
	return rc;
}

BANGER_API int banger_vm_lookup(banger_vm **out, banger_ctx *ctx, const char *ref)
{
	if (!out || !ctx || !ref)
		return bng_err(BANGER_EINVAL, "banger_vm_lookup: out, ctx and ref are required");
	json_t *params = json_pack("{s:s}", "name", ref);
	int rc = bng_record_fetch((void **)out, sizeof(banger_vm), ctx, "vm.show", params, NULL, NULL);
	json_decref(params);
	return rc;
}

BANGER_API int banger_vm_list(banger_vm ***out, size_t *count, banger_ctx *ctx, int all)
{
	if (!out || !count || !ctx)
		return bng_err(BANGER_EINVAL, "banger_vm_list: out, count and ctx are required");
	json_t *params = json_pack("{s:b}", "all", all);
	int rc = bng_record_list((void ***)out, count, sizeof(banger_vm), ctx, "vm.list", params, "vms");
	json_decref(params);
	return rc;
}

BANGER_API void banger_vm_list_free(banger_vm **vms, size_t count) { bng_record_list_free((void **)vms, count); }

BANGER_API banger_vm *banger_vm_ref(banger_vm *vm)
{
	bng_record_ref(vm ? &vm->rec : NULL);
	return vm;
}

BANGER_API void banger_vm_unref(banger_vm *vm) { bng_record_unref(vm ? &vm->rec : NULL); }

BANGER_API const char *banger_vm_name(const banger_vm *vm) { return field(vm, "name"); }
BANGER_API const char *banger_vm_id(const banger_vm *vm) { return field(vm, "id"); }
BANGER_API const char *banger_vm_state(const banger_vm *vm) { return field(vm, "state"); }
BANGER_API const char *banger_vm_ip(const banger_vm *vm) { return field(vm, "ip"); }

BANGER_API int32_t banger_vm_vcpus(const banger_vm *vm)
{
	return vm ? (int32_t)json_integer_value(json_object_get(vm->rec.row, "vcpu")) : 0;
}

BANGER_API int32_t banger_vm_memory_mib(const banger_vm *vm)
{
	return vm ? (int32_t)json_integer_value(json_object_get(vm->rec.row, "memory_mib")) : 0;
}

BANGER_API const char *banger_vm_json(const banger_vm *vm) { return bng_record_json(vm ? &vm->rec : NULL); }

/* Runs a verb on the VM by id; its result (the row) replaces ours when it
 * is one. */
static int verb(banger_vm *vm, const char *method)
{
	if (!vm)
		return bng_err(BANGER_EINVAL, "%s: vm is NULL", method);
	json_t *params = json_pack("{s:s}", "name", field(vm, "id")), *row = NULL;
	int rc = bng_handle_run(vm->rec.ctx, method, params, &row, NULL, NULL);
	json_decref(params);
	if (!rc && json_is_string(json_object_get(row, "state")))
		bng_record_set_row(&vm->rec, row);
	else
		json_decref(row);
	return rc;
}

BANGER_API int banger_vm_refresh(banger_vm *vm) { return verb(vm, "vm.show"); }
BANGER_API int banger_vm_start(banger_vm *vm) { return verb(vm, "vm.start"); }
BANGER_API int banger_vm_stop(banger_vm *vm) { return verb(vm, "vm.stop"); }
BANGER_API int banger_vm_restart(banger_vm *vm) { return verb(vm, "vm.restart"); }
BANGER_API int banger_vm_delete(banger_vm *vm) { return verb(vm, "vm.delete"); }

/* ---- exec ---- */

BANGER_API int banger_exec_options_new(banger_exec_options **out)
{
	if (!out)
		return bng_err(BANGER_EINVAL, "banger_exec_options_new: out is NULL");
	*out = bng_xcalloc(1, sizeof(**out));
	(*out)->params = json_pack("{s:[],s:[]}", "argv", "env");
	return 0;
}

BANGER_API void banger_exec_options_free(banger_exec_options *o)
{
	if (o) {
		json_decref(o->params);
		free(o);
	}
}

BANGER_API int banger_exec_options_set_argv(banger_exec_options *o, size_t argc, const char *const *argv)
{
	return bng_handle_set_argv(o ? o->params : NULL, "argv", argc, argv, "banger_exec_options_set_argv");
}

BANGER_API int banger_exec_options_set_cwd(banger_exec_options *o, const char *v) { return bng_handle_set_str(P(o), "cwd", v); }
BANGER_API int banger_exec_options_set_user(banger_exec_options *o, const char *v) { return bng_handle_set_str(P(o), "user", v); }
BANGER_API int banger_exec_options_set_stdin(banger_exec_options *o, const char *v) { return bng_handle_set_str(P(o), "stdin", v); }
BANGER_API int banger_exec_options_set_timeout(banger_exec_options *o, int32_t s) { return bng_handle_set_int(P(o), "timeout_s", s); }

BANGER_API int banger_exec_options_add_env(banger_exec_options *o, const char *name_value)
{
	if (!o || !name_value || !strchr(name_value, '=') || name_value[0] == '=')
		return bng_err(BANGER_EINVAL, "banger_exec_options_add_env wants \"NAME=VALUE\"");
	if (json_array_append_new(json_object_get(o->params, "env"), json_string(name_value)) != 0)
		return bng_err(BANGER_EINVAL, "the environment entry is not UTF-8");
	return 0;
}

BANGER_API int banger_exec_options_set_output_cb(banger_exec_options *o, banger_output_cb cb, void *ud)
{
	if (!o)
		return bng_err(BANGER_EINVAL, "options are NULL");
	o->cb = cb;
	o->ud = ud;
	return 0;
}

static void on_output_event(const char *event_json, void *ud)
{
	const banger_exec_options *o = ud;
	json_t *ev = json_loads(event_json, 0, NULL);
	const char *stream = json_string_value(json_object_get(ev, "output"));
	const char *data = json_string_value(json_object_get(ev, "data"));
	char *bytes;
	size_t len;
	if (stream && data && bng_base64_decode(data, &bytes, &len) == 0) {
		o->cb(strcmp(stream, "stderr") ? 1 : 2, bytes, len, o->ud);
		free(bytes);
	}
	json_decref(ev);
}

static char *output_copy(json_t *res, const char *key, size_t *len)
{
	char *b64key = bng_asprintf("%s_b64", key), *out = NULL;
	const char *b64 = json_string_value(json_object_get(res, b64key));
	free(b64key);
	if (b64 && bng_base64_decode(b64, &out, len) == 0)
		return out;
	json_t *s = json_object_get(res, key);
	*len = json_string_length(s);
	out = bng_xmalloc(*len + 1);
	memcpy(out, json_string_value(s) ? json_string_value(s) : "", *len);
	out[*len] = '\0';
	return out;
}

static banger_exec_result *exec_result(json_t *res)
{
	banger_exec_result *r = bng_xcalloc(1, sizeof(*r));
	r->exit_code = (int32_t)json_integer_value(json_object_get(res, "exit_code"));
	r->signal = json_object_get(res, "signal") ? r->exit_code - 128 : 0;
	r->out = output_copy(res, "stdout", &r->out_len);
	r->err = output_copy(res, "stderr", &r->err_len);
	return r;
}

BANGER_API int banger_vm_exec(banger_exec_result **out, banger_vm *vm, const banger_exec_options *opts)
{
	if (!out || !vm || !opts)
		return bng_err(BANGER_EINVAL, "banger_vm_exec: out, vm and options are required");
	*out = NULL;
	if (json_array_size(json_object_get(opts->params, "argv")) == 0)
		return bng_err(BANGER_EINVAL, "banger_vm_exec: no command (banger_exec_options_set_argv)");
	json_t *params = json_deep_copy(opts->params), *res = NULL;
	json_object_set_new(params, "name", json_string(field(vm, "id")));
	json_object_set_new(params, "stream", json_boolean(opts->cb != NULL));
	int rc = bng_handle_run(vm->rec.ctx, "vm.exec", params, &res, opts->cb ? on_output_event : NULL, (void *)opts);
	json_decref(params);
	if (rc)
		return rc;
	*out = exec_result(res);
	json_decref(res);
	return 0;
}

BANGER_API int32_t banger_exec_result_exit_code(const banger_exec_result *r) { return r ? r->exit_code : -1; }
BANGER_API int32_t banger_exec_result_signal(const banger_exec_result *r) { return r ? r->signal : 0; }

BANGER_API const char *banger_exec_result_stdout(const banger_exec_result *r, size_t *len)
{
	if (len)
		*len = r ? r->out_len : 0;
	return r ? r->out : NULL;
}

BANGER_API const char *banger_exec_result_stderr(const banger_exec_result *r, size_t *len)
{
	if (len)
		*len = r ? r->err_len : 0;
	return r ? r->err : NULL;
}

BANGER_API void banger_exec_result_free(banger_exec_result *r)
{
	if (r) {
		free(r->out);
		free(r->err);
		free(r);
	}
}

/* ---- processes: one vm.exec call on a thread of its own ---- */

struct banger_process {
	banger_ctx *ctx;
	banger_call *call;
	banger_output_cb cb;
	void *ud;
	pthread_t thread;
	int rc;
	bool waited;
};

BANGER_API int banger_exec_options_set_tty(banger_exec_options *o, int32_t rows, int32_t cols)
{
	if (!o || rows < 0 || cols < 0 || rows > 65535 || cols > 65535)
		return bng_err(BANGER_EINVAL, "banger_exec_options_set_tty: options and a size of 0..65535 are required");
	json_object_set_new(o->params, "tty", json_true());
	json_object_set_new(o->params, "rows", json_integer(rows ? rows : 24));
	json_object_set_new(o->params, "cols", json_integer(cols ? cols : 80));
	return 0;
}

static void on_process_event(const char *event_json, void *ud)
{
	banger_process *p = ud;
	banger_exec_options o = {.cb = p->cb, .ud = p->ud};
	on_output_event(event_json, &o);
}

static void *process_main(void *arg)
{
	banger_process *p = arg;
	p->rc = banger_call_run(p->ctx, p->call);
	return NULL;
}

int bng_process_start(banger_process **out, banger_ctx *ctx, const char *method, json_t *params,
		      banger_output_cb cb, void *ud, const char *first_input)
{
	*out = NULL;
	json_object_set_new(params, "stream", json_boolean(cb != NULL));
	json_object_set_new(params, "stdin_stream", json_true());
	char *text = json_dumps(params, JSON_COMPACT);
	banger_process *p = bng_xcalloc(1, sizeof(*p));
	int rc = banger_call_new(&p->call, method, text);
	free(text);
	if (rc) {
		free(p);
		return rc;
	}
	p->ctx = banger_ctx_ref(ctx);
	p->cb = cb;
	p->ud = ud;
	if (p->cb)
		banger_call_set_event_cb(p->call, on_process_event, p);
	if (first_input && *first_input)
		banger_process_write(p, first_input, strlen(first_input));
	if (pthread_create(&p->thread, NULL, process_main, p) != 0) {
		banger_call_unref(p->call);
		banger_ctx_unref(p->ctx);
		free(p);
		return bng_err(BANGER_ENOMEM, "%s: cannot start a thread", method);
	}
	*out = p;
	return 0;
}

BANGER_API int banger_vm_spawn(banger_process **out, banger_vm *vm, const banger_exec_options *opts)
{
	if (!out || !vm || !opts)
		return bng_err(BANGER_EINVAL, "banger_vm_spawn: out, vm and options are required");
	*out = NULL;
	if (json_array_size(json_object_get(opts->params, "argv")) == 0)
		return bng_err(BANGER_EINVAL, "banger_vm_spawn: no command (banger_exec_options_set_argv)");
	json_t *params = json_deep_copy(opts->params);
	json_object_set_new(params, "name", json_string(field(vm, "id")));
	json_object_del(params, "stdin"); /* written first, as input */
	int rc = bng_process_start(out, vm->rec.ctx, "vm.exec", params, opts->cb, opts->ud,
				   json_string_value(json_object_get(opts->params, "stdin")));
	json_decref(params);
	return rc;
}

static int send_msg(banger_process *p, json_t *msg)
{
	if (!p) {
		json_decref(msg);
		return bng_err(BANGER_EINVAL, "process is NULL");
	}
	char *text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	int rc = banger_call_send_input(p->call, text);
	free(text);
	return rc;
}

BANGER_API int banger_process_write(banger_process *p, const void *data, size_t len)
{
	if (!data && len)
		return bng_err(BANGER_EINVAL, "banger_process_write: data is NULL");
	char *b64 = bng_base64(data, len);
	int rc = send_msg(p, json_pack("{s:s}", "stdin", b64));
	free(b64);
	return rc;
}

BANGER_API int banger_process_close_stdin(banger_process *p) { return send_msg(p, json_pack("{s:b}", "stdin_eof", 1)); }
BANGER_API int banger_process_signal(banger_process *p, int signo)
{
	if (signo <= 0 || signo > 64)
		return bng_err(BANGER_EINVAL, "banger_process_signal: no signal %d", signo);
	return send_msg(p, json_pack("{s:i}", "signal", signo));
}

BANGER_API int banger_process_resize(banger_process *p, int32_t rows, int32_t cols)
{
	if (rows <= 0 || cols <= 0 || rows > 65535 || cols > 65535)
		return bng_err(BANGER_EINVAL, "banger_process_resize: rows and cols are 1..65535");
	return send_msg(p, json_pack("{s:[i,i]}", "resize", rows, cols));
}

BANGER_API int banger_process_wait(banger_process *p, banger_exec_result **out)
{
	if (!p || !out)
		return bng_err(BANGER_EINVAL, "banger_process_wait: process and out are required");
	*out = NULL;
	if (p->waited)
		return bng_err(BANGER_EINVAL, "banger_process_wait: already waited for");
	pthread_join(p->thread, NULL);
	p->waited = true;
	if (p->rc)
		return bng_err(p->rc, "%s", banger_call_error(p->call));
	json_t *res = json_loads(banger_call_result(p->call), 0, NULL);
	*out = exec_result(res);
	json_decref(res);
	return 0;
}

BANGER_API void banger_process_free(banger_process *p)
{
	if (!p)
		return;
	if (!p->waited) {
		banger_call_cancel(p->call);
		pthread_join(p->thread, NULL);
	}
	banger_call_unref(p->call);
	banger_ctx_unref(p->ctx);
	free(p);
}

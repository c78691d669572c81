/* vm.session.*: durable sessions. The guest owns them: each verb runs
 * `banger-agent session VERB` in the guest over the agent (see
 * guest/agent/session.c), so a session outlives the CLI, bangerd and any
 * connection. The store keeps each session's last known state, which is
 * what `list` and `show` report while the VM is not running (a session
 * that was running then reads as exited). */
#include "vm.h"

#include <stdlib.h>
#include <string.h>

#define GUEST_AGENT "/usr/local/libexec/banger-agent"
#define CALL_TIMEOUT_MS 60000 /* stop waits up to 15 s in the guest */

/* Appends the flag and its value to a guest command line. */
static void add_flag(json_t *args, const char *flag, const char *value)
{
	json_array_append_new(args, json_string(flag));
	json_array_append_new(args, json_string(value));
}

static bool valid_session_name(const char *n)
{
	size_t len = n ? strlen(n) : 0;
	if (len == 0 || len > 64 || n[0] == '.' || n[0] == '-')
		return false;
	return strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

static const char *session_param(json_t *params, int *rc)
{
	const char *s = json_string_value(json_object_get(params, "session"));
	if (!valid_session_name(s))
		*rc = bng_err(BANGER_EINVAL, "invalid session name '%s': 1-64 of A-Z a-z 0-9 . _ - (not starting with . or -)",
			      s ? s : "");
	return s;
}

/* The guest verb's exit status as our error code, with its message. */
static int guest_error(int code, const char *said, const char *vm_name)
{
	if (!strncmp(said, "usage: banger-agent [--device", 29))
		return bng_err(BANGER_EUNSUPPORTED, "vm '%s' runs a guest agent without sessions", vm_name);
	static const int codes[] = {BANGER_EIO, BANGER_EIO, BANGER_EINVAL, BANGER_ENOTFOUND,
				    BANGER_EEXIST, BANGER_EBUSY, BANGER_EUNSUPPORTED};
	int rc = code > 0 && code < (int)BNG_ARRAY_LEN(codes) ? codes[code] : BANGER_EIO;
	size_t len = strlen(said);
	while (len && said[len - 1] == '\n')
		len--;
	return bng_err(rc, "%.*s", (int)len, len ? said : "the guest's session command failed");
}

/* Runs `banger-agent session <args...>` (args stolen) in vm's guest; its
 * stdout parsed as JSON into *out (may be NULL). */
static int guest_session(bng_engine *e, const char *vm_ref, json_t *args, const char *in, bng_vm_row **vm_out,
			 json_t **out)
{
	bng_vm_row *vm;
	bng_agent_link *link;
	int rc = bng_vm_link(e, vm_ref, &vm, &link);
	if (rc) {
		json_decref(args);
		return rc;
	}
	json_t *argv = json_pack("[s,s]", GUEST_AGENT, "session");
	json_array_extend(argv, args);
	json_decref(args);
	json_t *spec = json_pack("{s:o,s:[s]}", "argv", argv, "env", "HOME=/root");
	bng_output o = {0};
	bng_exec_io io = {.output = bng_output_collect, .ud = &o, .stdin_data = in ? in : "", .stdin_len = in ? strlen(in) : 0};
	int code = 0;
	rc = bng_vm_guest_run(link, vm, NULL, spec, &io, CALL_TIMEOUT_MS, &code, NULL);
	json_decref(spec);
	bng_agent_link_unref(link);
	if (!rc && code)
		rc = guest_error(code, o.len[1] ? o.buf[1] : (o.buf[0] ? o.buf[0] : ""), vm->name);
	if (!rc && out) {
		json_error_t jerr;
		*out = json_loads(o.buf[0] ? o.buf[0] : "", 0, &jerr);
		if (!*out)
			rc = bng_err(BANGER_EPROTO, "the guest's session answer is not JSON: %s", jerr.text);
	}
	bng_output_free(&o);
	if (!rc && vm_out)
		*vm_out = vm;
	else
		bng_vm_free(vm);
	return rc;
}

/* ---- the store's copy ---- */

static void remember(bng_engine *e, const bng_vm_row *vm, json_t *s)
{
	char *doc = json_dumps(s, JSON_COMPACT);
	const char *p[3] = {vm->id, json_string_value(json_object_get(s, "name")), doc};
	if (p[0] && p[1])
		bng_store_run(&e->store,
			      "INSERT INTO sessions (vm_id, name, doc) VALUES (?1, ?2, ?3)"
			      " ON CONFLICT (vm_id, name) DO UPDATE SET doc = excluded.doc",
			      3, p);
	free(doc);
}

/* The sessions the store knows for a VM that is not running: any that was
 * running ended with the VM. */
static int remembered(bng_engine *e, const bng_vm_row *vm, const char *only, json_t **out)
{
	const char *p[2] = {vm->id, only};
	json_t *rows;
	int rc = bng_store_query(&e->store, &rows,
				 only ? "SELECT doc FROM sessions WHERE vm_id = ?1 AND name = ?2 ORDER BY name"
				      : "SELECT doc FROM sessions WHERE vm_id = ?1 ORDER BY name",
				 only ? 2 : 1, p);
	if (rc)
		return rc;
	*out = json_array();
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) {
		json_t *s = json_loads(json_string_value(json_object_get(row, "doc")), 0, NULL);
		if (!s)
			continue;
		if (!strcmp(json_string_value(json_object_get(s, "state")) ?: "", "running")) {
			json_object_set_new(s, "state", json_string("exited"));
			json_object_del(s, "pid");
			json_object_del(s, "attached");
			json_object_set_new(s, "error", json_string("the VM stopped while the session ran"));
		}
		json_array_append_new(*out, s);
	}
	json_decref(rows);
	return 0;
}


/* ---- methods ---- */

int bng_m_vm_session_start(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	int rc = 0;
	const char *name = session_param(params, &rc);
	if (rc)
		return rc;
	json_t *argv = json_object_get(params, "argv");
	if (json_array_size(argv) == 0)
		return bng_err(BANGER_EINVAL, "vm.session.start needs a command (argv)");
	const char *mode = json_string_value(json_object_get(params, "stdin_mode"));
	if (mode && strcmp(mode, "detached") && strcmp(mode, "pipe"))
		return bng_err(BANGER_EINVAL, "stdin_mode is detached or pipe (got '%s')", mode);
	json_t *args = json_pack("[s,s,s]", "start", "--name", name);
	const char *cwd = json_string_value(json_object_get(params, "cwd"));
	if (cwd)
		add_flag(args, "--cwd", cwd);
	if (mode)
		add_flag(args, "--stdin-mode", mode);
	if (json_is_true(json_object_get(params, "tty")))
		json_array_append_new(args, json_string("--tty"));
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(params, "env"), i, v) {
		if (!json_is_string(v) || !strchr(json_string_value(v), '=')) {
			json_decref(args);
			return bng_err(BANGER_EINVAL, "env entries are \"KEY=VALUE\" strings");
		}
		add_flag(args, "--env", json_string_value(v));
	}
	json_array_foreach(json_object_get(params, "require"), i, v) {
		if (!json_is_string(v)) {
			json_decref(args);
			return bng_err(BANGER_EINVAL, "require lists command names");
		}
		add_flag(args, "--require-command", json_string_value(v));
	}
	json_array_append_new(args, json_string("--"));
	json_array_foreach(argv, i, v) {
		if (!json_is_string(v)) {
			json_decref(args);
			return bng_err(BANGER_EINVAL, "argv holds strings");
		}
		json_array_append(args, v);
	}
	const char *vm_ref = json_string_value(json_object_get(params, "name"));
	bng_vm_row *vm = NULL;
	json_t *started = NULL, *shown = NULL;
	rc = guest_session(e, vm_ref, args, NULL, &vm, &started);
	json_decref(started);
	bng_vm_free(vm);
	vm = NULL;
	if (!rc)
		rc = guest_session(e, vm_ref, json_pack("[s,s]", "show", name), NULL, &vm, &shown);
	if (!rc) {
		remember(e, vm, shown);
		json_object_set_new(shown, "vm", json_string(vm->name));
		*result = shown;
		bng_vm_free(vm);
	}
	return rc;
}

int bng_m_vm_session_list(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	bng_vm_row *vm;
	json_t *list = NULL;
	const char *ref = json_string_value(json_object_get(params, "name"));
	int rc = bng_vm_get(e, ref, &vm);
	if (rc)
		return rc;
	if (!strcmp(vm->state, "running")) {
		bng_vm_free(vm);
		vm = NULL;
		rc = guest_session(e, ref, json_pack("[s]", "list"), NULL, &vm, &list);
		size_t i;
		json_t *s;
		json_array_foreach(list, i, s) remember(e, vm, s);
	} else {
		rc = remembered(e, vm, NULL, &list);
	}
	if (!rc)
		*result = json_pack("{s:s,s:o}", "vm", vm->name, "sessions", list);
	bng_vm_free(vm);
	return rc;
}

int bng_m_vm_session_show(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	int rc = 0;
	const char *name = session_param(params, &rc);
	if (rc)
		return rc;
	bng_vm_row *vm;
	json_t *s = NULL;
	const char *ref = json_string_value(json_object_get(params, "name"));
	rc = bng_vm_get(e, ref, &vm);
	if (rc)
		return rc;
	if (!strcmp(vm->state, "running")) {
		bng_vm_free(vm);
		vm = NULL;
		rc = guest_session(e, ref, json_pack("[s,s]", "show", name), NULL, &vm, &s);
		if (!rc)
			remember(e, vm, s);
	} else {
		json_t *list = NULL;
		rc = remembered(e, vm, name, &list);
		if (!rc && !(s = json_incref(json_array_get(list, 0))))
			rc = bng_err(BANGER_ENOTFOUND, "no session '%s' in vm '%s'", name,
				     vm->name);
		json_decref(list);
	}
	if (!rc) {
		json_object_set_new(s, "vm", json_string(vm->name));
		*result = s;
	}
	bng_vm_free(vm);
	return rc;
}

/* logs and attach stream through vm.exec: output as its events, stdin and
 * pty size from the caller as its input. The session is looked at first, so
 * that an unknown or ended one is a clear error, not a guest exit status. */
static int through_exec(bng_engine *e, json_t *params, json_t *args, bng_op *op, json_t **result)
{
	json_t *show = NULL;
	int rc = bng_m_vm_session_show(e, params, &show, NULL);
	if (rc) {
		json_decref(args);
		return rc;
	}
	json_decref(show);
	json_t *argv = json_pack("[s,s]", GUEST_AGENT, "session");
	json_array_extend(argv, args);
	json_decref(args);
	json_t *exec = json_deep_copy(params);
	json_object_del(exec, "session");
	json_object_set_new(exec, "argv", argv);
	if (!json_is_array(json_object_get(exec, "env")))
		json_object_set_new(exec, "env", json_array());
	json_array_append_new(json_object_get(exec, "env"), json_string("HOME=/root"));
	rc = bng_m_vm_exec(e, exec, result, op);
	json_decref(exec);
	return rc;
}

int bng_m_vm_session_logs(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	int rc = 0;
	const char *name = session_param(params, &rc);
	if (rc)
		return rc;
	const char *stream = json_string_value(json_object_get(params, "output"));
	if (stream && strcmp(stream, "stdout") && strcmp(stream, "stderr"))
		return bng_err(BANGER_EINVAL, "output is stdout or stderr (got '%s')", stream);
	json_t *args = json_pack("[s,s]", "logs", name);
	if (stream)
		add_flag(args, "--stream", stream);
	if (json_is_true(json_object_get(params, "follow")))
		json_array_append_new(args, json_string("--follow"));
	json_t *tail = json_object_get(params, "tail");
	if (json_is_integer(tail)) {
		if (json_integer_value(tail) < 0) {
			json_decref(args);
			return bng_err(BANGER_EINVAL, "tail is a number of lines (>= 0)");
		}
		char lines[24];
		snprintf(lines, sizeof(lines), "%lld", (long long)json_integer_value(tail));
		add_flag(args, "--tail", lines);
	}
	json_t *p = json_deep_copy(params);
	json_object_del(p, "output");
	json_object_del(p, "follow");
	json_object_del(p, "tail");
	rc = through_exec(e, p, args, op, result);
	json_decref(p);
	return rc;
}

int bng_m_vm_session_attach(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	int rc = 0;
	const char *name = session_param(params, &rc);
	if (rc)
		return rc;
	const char *holder = json_string_value(json_object_get(params, "holder"));
	json_t *args = json_pack("[s,s,s,s]", "attach", name, "--holder", holder ? holder : "an API client");
	json_t *p = json_deep_copy(params);
	json_object_del(p, "holder");
	rc = through_exec(e, p, args, op, result);
	json_decref(p);
	return rc;
}

int bng_m_vm_session_send(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	int rc = 0;
	const char *name = session_param(params, &rc);
	if (rc)
		return rc;
	const char *data = json_string_value(json_object_get(params, "data"));
	if (!data)
		return bng_err(BANGER_EINVAL, "vm.session.send needs data (a string)");
	return guest_session(e, json_string_value(json_object_get(params, "name")), json_pack("[s,s]", "send", name), data,
			     NULL, result);
}

static int signal_verb(bng_engine *e, json_t *params, json_t *args, json_t **result)
{
	bng_vm_row *vm = NULL;
	json_t *how = NULL;
	int rc = guest_session(e, json_string_value(json_object_get(params, "name")), args, NULL, &vm, &how);
	bng_vm_free(vm);
	if (!rc)
		rc = bng_m_vm_session_show(e, params, result, NULL);
	if (!rc)
		json_object_update(*result, how);
	json_decref(how);
	return rc;
}

int bng_m_vm_session_stop(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	int rc = 0;
	const char *name = session_param(params, &rc);
	return rc ? rc : signal_verb(e, params, json_pack("[s,s]", "stop", name), result);
}

int bng_m_vm_session_kill(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	int rc = 0;
	const char *name = session_param(params, &rc);
	if (rc)
		return rc;
	const char *sig = json_string_value(json_object_get(params, "signal"));
	return signal_verb(e, params, json_pack("[s,s,s,s]", "kill", name, "--signal", sig ? sig : "KILL"), result);
}

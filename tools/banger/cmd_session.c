/* banger vm session ...: durable sessions (vm.session.*). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s && *s ? s : "-";
}

/* "exit 0", "signal TERM", "running", or the reason it ended without one. */
static void outcome(json_t *s, char *out, size_t cap)
{
	json_t *code = json_object_get(s, "exit_code");
	if (!strcmp(str(s, "state"), "running"))
		snprintf(out, cap, "running (pid %lld)", (long long)json_integer_value(json_object_get(s, "pid")));
	else if (json_is_integer(code))
		snprintf(out, cap, "exit %lld", (long long)json_integer_value(code));
	else if (json_object_get(s, "signal"))
		snprintf(out, cap, "signal %s", str(s, "signal"));
	else
		snprintf(out, cap, "ended: %s", str(s, "error"));
}

static char *command_line(json_t *s)
{
	size_t i, len = 0;
	json_t *v;
	json_array_foreach(json_object_get(s, "argv"), i, v) len += strlen(json_string_value(v) ?: "") + 1;
	char *out = calloc(1, len + 1);
	json_array_foreach(json_object_get(s, "argv"), i, v)
	{
		if (i)
			strcat(out, " ");
		strcat(out, json_string_value(v) ?: "");
	}
	return out;
}

static int print_session(json_t *s, bool json)
{
	if (json) {
		print_json(s);
		return 0;
	}
	char state[160];
	outcome(s, state, sizeof(state));
	char *cmd = command_line(s);
	const char *rows[] = {"name", str(s, "name"), "vm", str(s, "vm"), "state", state, "command", cmd,
			      "cwd", str(s, "cwd"), "stdin", str(s, "stdin_mode"), "started", str(s, "started_at"),
			      "ended", str(s, "ended_at"), "attached", str(s, "attached")};
	print_table(rows, 2, 9);
	free(cmd);
	return 0;
}

/* Runs a method that answers with the session; prints it. */
static int session_call(const char *method, json_t *params, args *a, const char *verb)
{
	json_t *res = NULL;
	int rc = call_with(method, params, &res);
	if (rc)
		return api_fail(rc);
	if (a->json || !verb) {
		print_session(res, a->json);
	} else {
		char state[160];
		outcome(res, state, sizeof(state));
		printf("%s session %s in %s: %s\n", verb, str(res, "name"), str(res, "vm"), state);
	}
	json_decref(res);
	return 0;
}

static json_t *target(args *a)
{
	return json_pack("{s:s,s:s}", "name", a->argv[0], "session", a->argv[1]);
}

static bool two_names(const command *cmd, args *a, int *rc)
{
	if (a->argc == 2)
		return true;
	*rc = fail(EXIT_USAGE, "usage: banger %s <vm> <session>", cmd->path);
	return false;
}

int cmd_vm_session_start(const command *cmd, args *a)
{
	const char *name = flag_value(a, "--name");
	if (a->argc < 2 || !name)
		return fail(EXIT_USAGE, "usage: banger %s <vm> --name NAME [flags] -- CMD [ARG...]", cmd->path);
	json_t *argv = json_array(), *env = json_array(), *require = json_array();
	for (int i = 1; i < a->argc; i++)
		json_array_append_new(argv, json_string(a->argv[i]));
	for (int i = 0; i < a->nflags; i++) {
		const char *f = a->flags[i].name;
		size_t n = a->flags[i].name_len;
		if (n == 5 && !strncmp(f, "--env", 5)) {
			if (!strchr(a->flags[i].value, '=')) {
				json_decref(argv);
				json_decref(env);
				json_decref(require);
				return fail(EXIT_USAGE, "--env wants NAME=VALUE, got '%s'", a->flags[i].value);
			}
			json_array_append_new(env, json_string(a->flags[i].value));
		} else if (n == 17 && !strncmp(f, "--require-command", 17)) {
			json_array_append_new(require, json_string(a->flags[i].value));
		}
	}
	json_t *params = json_pack("{s:s,s:s,s:o,s:o,s:o,s:b}", "name", a->argv[0], "session", name, "argv", argv,
				   "env", env, "require", require, "tty", flag_set(a, "--tty"));
	if (flag_value(a, "--cwd"))
		json_object_set_new(params, "cwd", json_string(flag_value(a, "--cwd")));
	if (flag_value(a, "--stdin-mode"))
		json_object_set_new(params, "stdin_mode", json_string(flag_value(a, "--stdin-mode")));
	json_t *res = NULL;
	int rc = call_with("vm.session.start", params, &res);
	if (rc)
		return api_fail(rc);
	if (a->json) {
		print_json(res);
	} else {
		char state[160];
		outcome(res, state, sizeof(state));
		printf("started session %s in %s: %s\n", str(res, "name"), str(res, "vm"), state);
		printf("  banger vm session logs %s %s --follow\n  banger vm session attach %s %s\n", a->argv[0], name,
		       a->argv[0], name);
	}
	json_decref(res);
	return 0;
}

int cmd_vm_session_list(const command *cmd, args *a)
{
	if (a->argc != 1)
		return fail(EXIT_USAGE, "usage: banger %s <vm>", cmd->path);
	json_t *res = NULL;
	int rc = call_with("vm.session.list", json_pack("{s:s}", "name", a->argv[0]), &res);
	if (rc)
		return api_fail(rc);
	json_t *list = json_object_get(res, "sessions");
	if (a->json) {
		print_json(list);
	} else if (json_array_size(list) == 0) {
		fprintf(stderr, "no sessions in %s (banger vm session start %s --name NAME -- CMD)\n", a->argv[0],
			a->argv[0]);
	} else {
		size_t n = json_array_size(list), i;
		const char **cells = calloc((n + 1) * 4, sizeof(char *));
		char **owned = calloc(n * 2, sizeof(char *));
		cells[0] = "NAME";
		cells[1] = "STATE";
		cells[2] = "STARTED";
		cells[3] = "COMMAND";
		json_t *s;
		json_array_foreach(list, i, s) {
			char state[160];
			outcome(s, state, sizeof(state));
			owned[2 * i] = strdup(state);
			owned[2 * i + 1] = command_line(s);
			cells[4 * (i + 1)] = str(s, "name");
			cells[4 * (i + 1) + 1] = owned[2 * i];
			cells[4 * (i + 1) + 2] = str(s, "started_at");
			cells[4 * (i + 1) + 3] = owned[2 * i + 1];
		}
		print_table(cells, 4, n + 1);
		for (i = 0; i < 2 * n; i++)
			free(owned[i]);
		free(owned);
		free(cells);
	}
	json_decref(res);
	return 0;
}

int cmd_vm_session_show(const command *cmd, args *a)
{
	int rc = 0;
	return two_names(cmd, a, &rc) ? session_call("vm.session.show", target(a), a, NULL) : rc;
}

int cmd_vm_session_logs(const command *cmd, args *a)
{
	int rc = 0;
	if (!two_names(cmd, a, &rc))
		return rc;
	json_t *params = target(a);
	const char *stream = flag_value(a, "--stream");
	if (stream)
		json_object_set_new(params, "output", json_string(stream));
	if (flag_set(a, "--follow") || flag_set(a, "-f"))
		json_object_set_new(params, "follow", json_true());
	if (flag_value(a, "--tail")) {
		char *end;
		long n = strtol(flag_value(a, "--tail"), &end, 10);
		if (*end || n < 0) {
			json_decref(params);
			return fail(EXIT_USAGE, "--tail wants a number of lines, got '%s'", flag_value(a, "--tail"));
		}
		json_object_set_new(params, "tail", json_integer(n));
	}
	bool ran;
	int status = exec_call("vm.session.logs", params, false, false, NULL, &ran);
	return ran && status ? fail(1, "session logs: the guest side ended with status %d", status) : status;
}

int cmd_vm_session_attach(const command *cmd, args *a)
{
	int rc = 0;
	if (!two_names(cmd, a, &rc))
		return rc;
	char host[256] = "?";
	gethostname(host, sizeof(host) - 1);
	const char *user = getenv("USER");
	json_t *params = target(a);
	json_object_set_new(params, "holder", json_sprintf("banger vm session attach on %s (user %s, pid %d)", host,
							      user ? user : "?", (int)getpid()));
	bool ran;
	int status = exec_call("vm.session.attach", params, true, isatty(0), NULL, &ran);
	return status;
}

int cmd_vm_session_send(const command *cmd, args *a)
{
	if (a->argc != 3)
		return fail(EXIT_USAGE, "usage: banger %s <vm> <session> DATA|-  (- reads stdin)", cmd->path);
	char *data = NULL;
	size_t len = 0;
	if (!strcmp(a->argv[2], "-")) {
		FILE *m = open_memstream(&data, &len);
		char buf[65536];
		size_t n;
		while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
			fwrite(buf, 1, n, m);
		fclose(m);
	} else {
		data = strdup(a->argv[2]);
		len = strlen(data);
	}
	json_t *text = json_stringn(data, len);
	free(data);
	if (!text)
		return fail(EXIT_USAGE, "session send takes text (UTF-8, no NUL bytes)");
	json_t *params = json_pack("{s:s,s:s,s:o}", "name", a->argv[0], "session", a->argv[1], "data", text);
	json_t *res = NULL;
	int rc = call_with("vm.session.send", params, &res);
	if (rc)
		return api_fail(rc);
	if (a->json)
		print_json(res);
	json_decref(res);
	return 0;
}

int cmd_vm_session_stop(const command *cmd, args *a)
{
	int rc = 0;
	if (!two_names(cmd, a, &rc))
		return rc;
	if (!strcmp(cmd->path, "vm session kill")) {
		json_t *params = target(a);
		if (flag_value(a, "--signal"))
			json_object_set_new(params, "signal", json_string(flag_value(a, "--signal")));
		return session_call("vm.session.kill", params, a, "signalled");
	}
	return session_call("vm.session.stop", target(a), a, "stopped");
}

/* banger vm …: glue over the vm.* methods; `ssh` (OpenSSH) for interactive
 * sessions and `vm run -- cmd`, so terminals, signals and streaming behave
 * as users expect. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s && *s ? s : "-";
}

static int print_vm(json_t *vm, bool json)
{
	if (json) {
		print_json(vm);
	} else {
		char spec[96];
		snprintf(spec, sizeof(spec), "%lld vcpu | %lld MiB | %lld MiB disk",
			 (long long)json_integer_value(json_object_get(vm, "vcpu")),
			 (long long)json_integer_value(json_object_get(vm, "memory_mib")),
			 (long long)json_integer_value(json_object_get(vm, "disk_size")) >> 20);
		const char *rows[] = {"name", str(vm, "name"), "id", str(vm, "id"), "state", str(vm, "state"),
				      "ip", str(vm, "ip"), "spec", spec, "driver", str(vm, "driver"),
				      "boot id", str(vm, "boot_id"), "created", str(vm, "created_at"),
				      "error", str(vm, "error"), "stopped by", str(vm, "stop_reason")};
		print_table(rows, 2, 10);
	}
	json_decref(vm);
	return 0;
}

/* Spec flags shared by create and run. */
static json_t *spec_params(args *a)
{
	json_t *p = json_object();
	static const char *const strs[][2] = {{"--name", "name"}, {"--image", "image"}, {"--kernel", "kernel"},
					      {"--disk-size", "disk_size"}, {"--init", "init"}};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if (flag_value(a, strs[i][0]))
			json_object_set_new(p, strs[i][1], json_string(flag_value(a, strs[i][0])));
	if (flag_value(a, "--vcpu"))
		json_object_set_new(p, "vcpu", json_integer(strtoll(flag_value(a, "--vcpu"), NULL, 10)));
	if (flag_value(a, "--memory"))
		json_object_set_new(p, "memory_mib", json_integer(strtoll(flag_value(a, "--memory"), NULL, 10)));
	if (flag_set(a, "--nat"))
		json_object_set_new(p, "nat", json_true());
	return p;
}

static int check_name_flag(args *a)
{
	const char *name = flag_value(a, "--name");
	if (name && banger_check_name(name))
		return fail(EXIT_USAGE, "%s", banger_error_last());
	return 0;
}

static int create(args *a, json_t *params, json_t **vm)
{
	banger_ctx *ctx;
	int rc = open_ctx(&ctx);
	if (rc)
		return rc;
	char *p = json_dumps(params, JSON_COMPACT);
	json_decref(params);
	rc = call(ctx, "vm.create", p, vm);
	free(p);
	banger_ctx_unref(ctx);
	(void)a;
	return rc;
}

int cmd_vm_create(const command *cmd, args *a)
{
	(void)cmd;
	if (check_name_flag(a))
		return EXIT_USAGE;
	json_t *params = spec_params(a);
	if (flag_set(a, "--no-start"))
		json_object_set_new(params, "start", json_false());
	json_t *vm;
	int rc = create(a, params, &vm);
	return rc ? api_fail(rc) : print_vm(vm, a->json);
}

/* Runs `ssh` to the VM (interactive when argv is empty); returns its exit
 * status, which is the remote command's (128 + N when a signal N ended it,
 * as a local shell reports it). *connected: whether ssh got in at all (it
 * exits 255 both when it cannot and when the command does). */
static int ssh_to(const char *name, int argc, char **argv, bool *connected)
{
	*connected = true;
	json_t *vm;
	int rc = call_with("vm.show", json_pack("{s:s}", "name", name), &vm);
	if (rc)
		return api_fail(rc);
	if (json_is_false(json_object_get(vm, "sshd"))) {
		json_decref(vm);
		return fail(1, "vm %s runs no SSH server (its image has no sshd and banger's init is its PID 1): "
			       "run commands with banger vm exec %s -- CMD", name, name);
	}
	json_t *ssh = json_object_get(vm, "ssh");
	char *known = NULL, *identity = NULL, *dest = NULL;
	if (asprintf(&known, "UserKnownHostsFile=%s", str(ssh, "known_hosts")) < 0 ||
	    asprintf(&identity, "%s", str(ssh, "key")) < 0 ||
	    asprintf(&dest, "%s@%s", str(ssh, "user"), str(ssh, "host")) < 0)
		abort();
	json_decref(vm);
	/* The remote command is one string, each argument quoted for the
	 * remote shell. That shell waits for the command instead of exec'ing
	 * it, and outlives a Ctrl-C (a trap handler, unlike an ignore, is not
	 * inherited), so a signal comes back as 128 + N, not as ssh's 255. */
	static const char prefix[] = "trap : INT QUIT; ", suffix[] = "; exit $?";
	size_t len = sizeof(prefix) + sizeof(suffix), o = 0;
	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) * 4 + 3;
	char *remote = calloc(1, len);
	if (argc) {
		memcpy(remote, prefix, sizeof(prefix) - 1);
		o = sizeof(prefix) - 1;
	}
	for (int i = 0; i < argc; i++) {
		if (i)
			remote[o++] = ' ';
		remote[o++] = '\'';
		for (const char *c = argv[i]; *c; c++) {
			if (*c == '\'') { /* close, escaped quote, reopen */
				memcpy(remote + o, "'\\''", 4);
				o += 4;
			} else {
				remote[o++] = *c;
			}
		}
		remote[o++] = '\'';
	}
	if (argc)
		memcpy(remote + o, suffix, sizeof(suffix));
	/* LocalCommand runs only once ssh is in: it removes this marker (in
	 * /tmp, not $TMPDIR: ssh would expand a '%' in the path) */
	char marker[] = "/tmp/banger-ssh-XXXXXX", *local_cmd = NULL;
	int marker_fd = mkstemp(marker);
	if (marker_fd >= 0) {
		close(marker_fd);
		if (asprintf(&local_cmd, "LocalCommand=rm -f %s", marker) < 0)
			abort();
	}
	const char *ssh_argv[32];
	int n = 0;
	ssh_argv[n++] = "ssh";
	ssh_argv[n++] = "-i";
	ssh_argv[n++] = identity;
	ssh_argv[n++] = "-o";
	ssh_argv[n++] = known;
	ssh_argv[n++] = "-o";
	ssh_argv[n++] = "StrictHostKeyChecking=yes";
	ssh_argv[n++] = "-o";
	ssh_argv[n++] = "IdentitiesOnly=yes";
	ssh_argv[n++] = "-o";
	ssh_argv[n++] = "LogLevel=ERROR";
	ssh_argv[n++] = "-o"; /* bounds the connect and the server's greeting on a slow guest */
	ssh_argv[n++] = "ConnectTimeout=90";
	ssh_argv[n++] = "-o"; /* a shared connection would skip this VM's known_hosts and LocalCommand */
	ssh_argv[n++] = "ControlMaster=no";
	ssh_argv[n++] = "-o";
	ssh_argv[n++] = "ControlPath=none";
	if (local_cmd) {
		ssh_argv[n++] = "-o";
		ssh_argv[n++] = "PermitLocalCommand=yes";
		ssh_argv[n++] = "-o";
		ssh_argv[n++] = local_cmd;
	}
	if (argc == 0 || isatty(0))
		ssh_argv[n++] = isatty(0) ? "-t" : "-T";
	ssh_argv[n++] = dest;
	if (argc)
		ssh_argv[n++] = remote;
	ssh_argv[n] = NULL;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		execvp("ssh", (char *const *)ssh_argv);
		fprintf(stderr, "banger: cannot run ssh: %s (apt-get install openssh-client)\n", strerror(errno));
		_exit(127);
	}
	int status = 0;
	if (pid < 0) {
		fprintf(stderr, "banger: cannot start ssh: %s\n", strerror(errno));
		status = 255 << 8;
	}
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (local_cmd) { /* ssh's own failures are 255; a command's 255 comes after LocalCommand ran */
		*connected = pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 255 || access(marker, F_OK) != 0;
		unlink(marker);
	}
	free(local_cmd);
	free(known);
	free(identity);
	free(dest);
	free(remote);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* ssh said why above. */
static void not_connected(const char *name)
{
	fail(0, "could not ssh to vm %s (its console: banger vm logs %s)", name, name);
}

static void remove_vm(const char *name)
{
	json_t *res;
	if (call_with("vm.delete", json_pack("{s:s}", "name", name), &res) == 0)
		json_decref(res);
	else
		fail(0, "could not remove vm %s: %s", name, banger_error_last());
}


int cmd_vm_run(const command *cmd, args *a)
{
	(void)cmd;
	bool rm = flag_set(a, "--rm"), detach = flag_set(a, "-d");
	/* banger vm run [PATH] [-- CMD...]: what comes before "--" is a repository */
	int npath = a->before_dashes >= 0 ? a->before_dashes : a->argc;
	if (npath > 1)
		return fail(EXIT_USAGE, "usage: banger vm run [PATH] [-- CMD [ARG...]]: one repository path; the command "
					"goes after --");
	const char *path = npath ? a->argv[0] : NULL;
	int cmdc = a->argc - npath;
	char **cmdv = a->argv + npath;
	bool dry = flag_set(a, "--dry-run"), untracked = flag_set(a, "--include-untracked");
	if ((dry || untracked) && !path)
		return fail(EXIT_USAGE, "--dry-run and --include-untracked are about a repository: banger vm run PATH ...");
	if (dry) /* what would be shipped, and no VM */
		return workspace_prepare(NULL, path, NULL, NULL, untracked, true, false, a->json, NULL);
	if (detach && rm)
		return fail(EXIT_USAGE, "-d and --rm cannot be combined: a detached VM is kept until you delete it");
	if (detach && cmdc)
		return fail(EXIT_USAGE, "-d cannot run a command: drop -d, or run it later with banger vm exec NAME -- CMD");
	if (check_name_flag(a))
		return EXIT_USAGE;
	json_t *vm;
	int rc = create(a, spec_params(a), &vm);
	if (rc)
		return api_fail(rc);
	char *name = strdup(str(vm, "name")), *image_id = strdup(str(vm, "image_id"));
	json_decref(vm);
	char *guest = NULL;
	if (path) {
		rc = workspace_prepare(name, path, NULL, NULL, untracked, false, false, false, &guest);
		if (rc) {
			if (rm)
				remove_vm(name);
			else
				fprintf(stderr, "vm %s is kept (banger vm rm %s)\n", name, name);
			free(name);
			free(image_id);
			return rc;
		}
	}
	if (detach || (path && !cmdc)) {
		printf("%s\n", name);
		if (path && !detach)
			fprintf(stderr, "next: banger vm exec %s -- <cmd>   (runs in %s)\n"
					"      banger vm ssh %s\n"
					"      banger vm workspace export %s --output change.patch\n",
				name, guest, name, name);
		free(guest);
		free(name);
		free(image_id);
		return 0;
	}
	/* over the guest agent (stdin goes along, a pty when this is a
	 * terminal): as `docker run`, the image's Entrypoint followed by the
	 * command given, else by its Cmd; an image with neither (or no OCI
	 * config) gets the command, or a login shell */
	json_t *image = NULL, *argv = json_array();
	if (call_with("image.show", json_pack("{s:s}", "name", image_id), &image) != 0)
		image = NULL; /* gone already: vm.exec will say what is wrong */
	free(image_id);
	json_t *cfg = json_object_get(image, "config");
	json_array_extend(argv, json_object_get(cfg, "Entrypoint"));
	if (cmdc == 0)
		json_array_extend(argv, json_object_get(cfg, "Cmd"));
	if (cmdc == 0 && json_array_size(argv) == 0)
		for (int i = 0; i < 3; i++)
			json_array_append_new(argv, json_string((const char *[]){"/bin/sh", "-c",
				"if command -v bash >/dev/null; then exec bash -l; else exec sh -l; fi"}[i]));
	for (int i = 0; i < cmdc; i++)
		json_array_append_new(argv, json_string(cmdv[i]));
	json_decref(image);
	json_t *params = json_pack("{s:s,s:o,s:[]}", "name", name, "argv", argv, "env");
	if (guest)
		json_object_set_new(params, "cwd", json_string(guest));
	free(guest);
	bool ran;
	int status = exec_call("vm.exec", params, true, isatty(0), NULL, &ran);
	if (!ran)
		fail(0, "could not run the command in vm %s; it is kept for a post-mortem: banger vm logs %s "
			"(then banger vm rm %s)", name, name, name);
	else if (rm)
		remove_vm(name);
	else if (cmdc == 0)
		fprintf(stderr, "vm %s is still running (stop it with: banger vm stop %s)\n", name, name);
	free(name);
	return status;
}

int cmd_vm_ssh(const command *cmd, args *a)
{
	if (a->argc < 1)
		return fail(EXIT_USAGE, "'banger %s' needs a vm name", cmd->path);
	bool connected;
	int status = ssh_to(a->argv[0], a->argc - 1, a->argv + 1, &connected);
	if (!connected)
		not_connected(a->argv[0]);
	else if (a->argc == 1)
		fprintf(stderr, "vm %s is still running (stop it with: banger vm stop %s)\n", a->argv[0], a->argv[0]);
	return status;
}

/* ---- exec over the agent: output, stdin, signals and the terminal ---- */

typedef struct {
	banger_call *call;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t sent, taken; /* stdin bytes sent to the call, and passed on to the guest */
	bool tty;
} exec_session;

static char *base64(const unsigned char *p, size_t len)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < len ? p[i + 2] : 0);
		*o++ = abc[v >> 18 & 63];
		*o++ = abc[v >> 12 & 63];
		*o++ = i + 1 < len ? abc[v >> 6 & 63] : '=';
		*o++ = i + 2 < len ? abc[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static void send_input(exec_session *x, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	banger_call_send_input(x->call, text); /* a call that ended takes no more: nothing to do */
	free(text);
	json_decref(msg);
}

/* Our stdin to the command, at most 1 MiB ahead of what the guest took. */
static void *pump_stdin(void *arg)
{
	exec_session *x = arg;
	unsigned char buf[32768];
	for (;;) {
		pthread_mutex_lock(&x->lock);
		while (x->sent - x->taken > (1u << 20))
			pthread_cond_wait(&x->cond, &x->lock);
		pthread_mutex_unlock(&x->lock);
		ssize_t n = read(0, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			send_input(x, json_pack("{s:b}", "stdin_eof", 1));
			return NULL;
		}
		char *b64 = base64(buf, (size_t)n);
		send_input(x, json_pack("{s:s}", "stdin", b64));
		free(b64);
		pthread_mutex_lock(&x->lock);
		x->sent += (size_t)n;
		pthread_mutex_unlock(&x->lock);
	}
}

static void send_size(exec_session *x)
{
	struct winsize ws;
	if (ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col)
		send_input(x, json_pack("{s:[i,i]}", "resize", ws.ws_row, ws.ws_col));
}

/* Signals for the command, not for us: a terminal's new size, and the
 * signals a user sends (Ctrl-C is a byte on the pty with -t). */
static void *forward_signals(void *arg)
{
	exec_session *x = arg;
	sigset_t set;
	sigemptyset(&set);
	int sigs[] = {SIGWINCH, SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	for (;;) {
		int sig;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGWINCH)
			send_size(x);
		else
			send_input(x, json_pack("{s:i}", "signal", sig));
	}
	return NULL;
}

static void on_exec_event(const char *event_json, void *ud)
{
	exec_session *x = ud;
	json_t *ev = json_loads(event_json, 0, NULL);
	const char *stream = json_string_value(json_object_get(ev, "output"));
	if (stream) {
		write_output(stream, json_string_value(json_object_get(ev, "data")) ?: "");
	} else if (json_is_integer(json_object_get(ev, "stdin_taken"))) {
		pthread_mutex_lock(&x->lock);
		x->taken = (size_t)json_integer_value(json_object_get(ev, "stdin_taken"));
		pthread_cond_signal(&x->cond);
		pthread_mutex_unlock(&x->lock);
	}
	json_decref(ev);
}

static struct termios saved_termios;
static bool termios_saved;

static void restore_terminal(void)
{
	if (termios_saved)
		tcsetattr(0, TCSAFLUSH, &saved_termios);
	termios_saved = false;
}

int exec_call(const char *method, json_t *params, bool interactive, bool tty, json_t **json_out, bool *ran)
{
	*ran = false;
	if (tty) {
		struct winsize ws = {0};
		if (ioctl(0, TIOCGWINSZ, &ws) != 0 || !ws.ws_row || !ws.ws_col) /* a terminal that says no size */
			ws = (struct winsize){.ws_row = 24, .ws_col = 80};
		const char *term = getenv("TERM");
		json_object_set_new(params, "tty", json_true());
		json_array_append_new(json_object_get(params, "env"), json_sprintf("TERM=%s", term && *term ? term : "xterm"));
		json_object_set_new(params, "rows", json_integer(ws.ws_row));
		json_object_set_new(params, "cols", json_integer(ws.ws_col));
	}
	json_object_set_new(params, "stream", json_boolean(!json_out)); /* --json: collected in the result */
	if (interactive)
		json_object_set_new(params, "stdin_stream", json_true());
	char *text = json_dumps(params, JSON_COMPACT);
	json_decref(params);
	banger_ctx *ctx;
	banger_call *call;
	int rc = open_ctx(&ctx);
	if (rc) {
		free(text);
		return api_fail(rc);
	}
	rc = banger_call_new(&call, method, text);
	free(text);
	if (rc) {
		banger_ctx_unref(ctx);
		return api_fail(rc);
	}
	exec_session x = {.call = call, .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .tty = tty};
	banger_call_set_event_cb(call, on_exec_event, &x);
	sigset_t set, old;
	sigemptyset(&set);
	int sigs[] = {SIGWINCH, SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	pthread_sigmask(SIG_BLOCK, &set, &old); /* the threads below inherit it; sigwait takes them */
	pthread_t t;
	if (pthread_create(&t, NULL, forward_signals, &x) == 0)
		pthread_detach(t);
	if (interactive && pthread_create(&t, NULL, pump_stdin, &x) == 0)
		pthread_detach(t); /* blocked in read(0) when we are done: the process exit ends it */
	if (tty && tcgetattr(0, &saved_termios) == 0) {
		termios_saved = true;
		atexit(restore_terminal);
		struct termios raw = saved_termios;
		cfmakeraw(&raw);
		tcsetattr(0, TCSAFLUSH, &raw);
	}
	rc = banger_call_run(ctx, call);
	restore_terminal();
	int status = 0;
	if (rc) {
		status = api_fail(rc);
	} else {
		json_t *res = json_loads(banger_call_result(call), 0, NULL);
		status = (int)json_integer_value(json_object_get(res, "exit_code"));
		*ran = true;
		if (json_out)
			*json_out = res;
		else
			json_decref(res);
	}
	banger_call_unref(call);
	banger_ctx_unref(ctx);
	return status;
}

int cmd_vm_exec(const command *cmd, args *a)
{
	if (a->argc < 2)
		return fail(EXIT_USAGE, "usage: banger %s NAME -- CMD [ARG...]", cmd->path);
	bool tty = flag_set(a, "-t"), interactive = flag_set(a, "-i") || tty;
	if (tty && !isatty(0))
		return fail(EXIT_USAGE, "-t needs a terminal on stdin (drop -t, or use -i to stream stdin)");
	json_t *argv = json_array(), *env = json_array();
	for (int i = 1; i < a->argc; i++)
		json_array_append_new(argv, json_string(a->argv[i]));
	for (int i = 0; i < a->nflags; i++)
		if (a->flags[i].name_len == 5 && !strncmp(a->flags[i].name, "--env", 5)) {
			if (!strchr(a->flags[i].value, '=')) {
				json_decref(argv);
				json_decref(env);
				return fail(EXIT_USAGE, "--env wants NAME=VALUE, got '%s'", a->flags[i].value);
			}
			json_array_append_new(env, json_string(a->flags[i].value));
		}
	json_t *params = json_pack("{s:s,s:o,s:o}", "name", a->argv[0], "argv", argv, "env", env);
	if (flag_value(a, "--cwd")) {
		json_object_set_new(params, "cwd", json_string(flag_value(a, "--cwd")));
	} else {
		/* in the VM's workspace when it has one, said when it is behind the host */
		int rc = 0;
		char *ws = workspace_cwd(a->argv[0], flag_set(a, "--auto-prepare"), &rc);
		if (rc) {
			json_decref(params);
			return rc;
		}
		if (ws)
			json_object_set_new(params, "cwd", json_string(ws));
		free(ws);
	}
	if (flag_value(a, "--user"))
		json_object_set_new(params, "user", json_string(flag_value(a, "--user")));
	if (flag_value(a, "--timeout")) {
		char *end;
		long t = strtol(flag_value(a, "--timeout"), &end, 10);
		if (*end || t <= 0) {
			json_decref(params);
			return fail(EXIT_USAGE, "--timeout wants whole seconds, got '%s'", flag_value(a, "--timeout"));
		}
		json_object_set_new(params, "timeout_s", json_integer(t));
	}
	json_t *res = NULL;
	bool ran;
	int status = exec_call("vm.exec", params, interactive, tty, a->json ? &res : NULL, &ran);
	if (res) {
		print_json(res);
		json_decref(res);
	}
	return status;
}

/* "VM:/path" -> the VM's name (malloc'd) and *path into arg; NULL for a
 * host path. */
static char *vm_part(const char *arg, const char **path)
{
	const char *colon = strchr(arg, ':');
	if (!colon || colon == arg || strchr(arg, '/') < colon)
		return NULL;
	*path = colon + 1;
	return strndup(arg, (size_t)(colon - arg));
}

int cmd_vm_cp(const command *cmd, args *a)
{
	if (a->argc != 2)
		return fail(EXIT_USAGE, "usage: banger %s SRC DST (one of them VM:/path)", cmd->path);
	const char *src_path = NULL, *dst_path = NULL;
	char *src_vm = vm_part(a->argv[0], &src_path), *dst_vm = vm_part(a->argv[1], &dst_path);
	int rc = 0;
	if (!src_vm == !dst_vm)
		rc = fail(EXIT_USAGE, "exactly one of SRC and DST is VM:/path (e.g. banger vm cp ./src dev:/root/)");
	const char *guest = src_vm ? src_path : dst_path, *host = src_vm ? a->argv[1] : a->argv[0];
	if (!rc && guest[0] != '/')
		rc = fail(EXIT_USAGE, "the path in the VM must be absolute (got '%s')", guest);
	char *abs_host = NULL;
	if (!rc) {
		char cwd[4096];
		if (host[0] == '/' || !getcwd(cwd, sizeof(cwd)))
			abs_host = strdup(host);
		else if (asprintf(&abs_host, "%s/%s", cwd, host) < 0)
			abort();
		size_t n = strlen(abs_host); /* "dir/" and "dir" name the same place */
		while (n > 1 && abs_host[n - 1] == '/')
			abs_host[--n] = '\0';
	}
	json_t *res = NULL;
	if (!rc) {
		rc = call_with("vm.cp", json_pack("{s:s,s:s,s:s,s:s}", "name", src_vm ? src_vm : dst_vm, "direction",
						   src_vm ? "out" : "in", "host_path", abs_host, "guest_path", guest),
			       &res);
		if (rc)
			rc = api_fail(rc);
		else if (a->json)
			print_json(res);
	}
	json_decref(res);
	free(abs_host);
	free(src_vm);
	free(dst_vm);
	return rc;
}

/* ---- many refs at once ---- */

typedef struct {
	const char *method;
	const char *name;
	json_t *extra;
	int rc;
	char *error;
	json_t *result;
} job;

static void *run_job(void *arg)
{
	job *j = arg;
	json_t *params = json_pack("{s:s}", "name", j->name);
	if (j->extra)
		json_object_update(params, j->extra);
	j->rc = call_with(j->method, params, &j->result);
	if (j->rc)
		j->error = with_hint(j->rc, banger_error_last());
	return NULL;
}

/* Runs method on every named VM concurrently; reports in the order given. */
static int for_each_vm(const command *cmd, args *a, const char *method, const char *verb, json_t *extra)
{
	if (a->argc == 0)
		return fail(EXIT_USAGE, "'banger %s' needs at least one vm name", cmd->path);
	job *jobs = calloc((size_t)a->argc, sizeof(job));
	pthread_t *threads = calloc((size_t)a->argc, sizeof(pthread_t));
	int status = 0, n = 0;
	for (int i = 0; i < a->argc; i++) {
		bool dup = false;
		for (int k = 0; k < n; k++)
			dup |= !strcmp(jobs[k].name, a->argv[i]);
		if (dup)
			continue;
		jobs[n] = (job){.method = method, .name = a->argv[i], .extra = extra};
		pthread_create(&threads[n], NULL, run_job, &jobs[n]);
		n++;
	}
	for (int i = 0; i < n; i++) {
		pthread_join(threads[i], NULL);
		if (jobs[i].rc) {
			fail(0, "%s: %s", jobs[i].name, jobs[i].error);
			status = jobs[i].rc == BANGER_ECONNECT ? EXIT_DAEMON : 1;
		} else if (a->json) {
			print_json(jobs[i].result);
		} else {
			printf("%s %s\n", verb, jobs[i].name);
		}
		json_decref(jobs[i].result);
		free(jobs[i].error);
	}
	free(jobs);
	free(threads);
	return status;
}

int cmd_vm_start(const command *cmd, args *a) { return for_each_vm(cmd, a, "vm.start", "started", NULL); }
int cmd_vm_stop(const command *cmd, args *a) { return for_each_vm(cmd, a, "vm.stop", "stopped", NULL); }
int cmd_vm_restart(const command *cmd, args *a) { return for_each_vm(cmd, a, "vm.restart", "restarted", NULL); }
int cmd_vm_delete(const command *cmd, args *a) { return for_each_vm(cmd, a, "vm.delete", "deleted", NULL); }

int cmd_vm_kill(const command *cmd, args *a)
{
	json_t *extra = flag_value(a, "--signal") ? json_pack("{s:s}", "signal", flag_value(a, "--signal")) : NULL;
	int rc = for_each_vm(cmd, a, "vm.kill", "killed", extra);
	json_decref(extra);
	return rc;
}

int cmd_vm_list(const command *cmd, args *a)
{
	(void)cmd;
	json_t *res;
	int rc = call_with("vm.list", json_pack("{s:b}", "all", flag_set(a, "--all") || flag_set(a, "--latest")), &res);
	if (rc)
		return api_fail(rc);
	json_t *vms = json_object_get(res, "vms");
	if (flag_set(a, "--latest") && json_array_size(vms) > 1) { /* only the newest */
		json_t *last = json_incref(json_array_get(vms, json_array_size(vms) - 1));
		json_array_clear(vms);
		json_array_append_new(vms, last);
	}
	size_t n = json_array_size(vms), i;
	json_t *vm;
	if (a->json) {
		print_json(vms);
	} else if (flag_set(a, "--quiet") || flag_set(a, "-q")) {
		json_array_foreach(vms, i, vm) printf("%s\n", str(vm, "id"));
	} else {
		const char **cells = calloc((n + 1) * 6, sizeof(char *));
		const char *head[] = {"NAME", "STATE", "IP", "IMAGE", "VCPU/MEM", "CREATED"};
		char (*spec)[32] = calloc(n + 1, sizeof(*spec));
		memcpy(cells, head, sizeof(head));
		json_array_foreach(vms, i, vm) {
			snprintf(spec[i], 32, "%lld/%lldM", (long long)json_integer_value(json_object_get(vm, "vcpu")),
				 (long long)json_integer_value(json_object_get(vm, "memory_mib")));
			const char *row[] = {str(vm, "name"), str(vm, "state"), str(vm, "ip"), str(vm, "image_id"), spec[i],
					     str(vm, "created_at")};
			memcpy(cells + (i + 1) * 6, row, sizeof(row));
		}
		print_table(cells, 6, n + 1);
		free(cells);
		free(spec);
	}
	json_decref(res);
	return 0;
}

static int one_vm(const command *cmd, args *a, const char *method, json_t **res)
{
	if (a->argc != 1)
		return fail(EXIT_USAGE, "'banger %s' takes one vm name", cmd->path);
	int rc = call_with(method, json_pack("{s:s}", "name", a->argv[0]), res);
	return rc ? api_fail(rc) : 0;
}

int cmd_vm_show(const command *cmd, args *a)
{
	json_t *vm;
	int rc = one_vm(cmd, a, "vm.show", &vm);
	return rc ? rc : print_vm(vm, a->json);
}

int cmd_vm_logs(const command *cmd, args *a)
{
	json_t *res;
	int rc = one_vm(cmd, a, "vm.logs", &res);
	if (rc)
		return rc;
	fputs(json_string_value(json_object_get(res, "console")), stdout);
	json_decref(res);
	return 0;
}

int cmd_vm_generic(const command *cmd, args *a)
{
	/* stats and ports: JSON is the honest format for nested data */
	char method[32];
	snprintf(method, sizeof(method), "vm.%s", strrchr(cmd->path, ' ') + 1);
	json_t *res;
	int rc = one_vm(cmd, a, method, &res);
	if (rc)
		return rc;
	json_t *ports = json_object_get(res, "ports");
	if (!a->json && ports) {
		size_t n = json_array_size(ports), i;
		const char **cells = calloc((n + 1) * 4, sizeof(char *));
		char (*ep)[80] = calloc(n + 1, sizeof(*ep));
		const char *head[] = {"PROTO", "ENDPOINT", "PROCESS", "COMMAND"};
		memcpy(cells, head, sizeof(head));
		json_t *p;
		json_array_foreach(ports, i, p) {
			snprintf(ep[i], 80, "%s%s", str(p, "endpoint"), json_is_true(json_object_get(p, "guest_only")) ? " (guest only)" : "");
			const char *row[] = {str(p, "service"), ep[i], str(p, "process"), str(p, "command")};
			memcpy(cells + (i + 1) * 4, row, sizeof(row));
		}
		print_table(cells, 4, n + 1);
		free(cells);
		free(ep);
	} else {
		print_json(res);
	}
	json_decref(res);
	return 0;
}

int cmd_vm_prune(const command *cmd, args *a)
{
	(void)cmd;
	if (!flag_set(a, "--force") && !flag_set(a, "-f")) {
		json_t *res;
		int rc = call_with("vm.list", json_pack("{s:b}", "all", 1), &res);
		if (rc)
			return api_fail(rc);
		size_t i, n = 0;
		json_t *vm;
		json_array_foreach(json_object_get(res, "vms"), i, vm) if (strcmp(str(vm, "state"), "running")) {
			printf("%s  %s\n", str(vm, "name"), str(vm, "state"));
			n++;
		}
		json_decref(res);
		if (n == 0) {
			printf("nothing to prune\n");
			return 0;
		}
		if (!isatty(0))
			return fail(1, "prune deletes the VMs above: confirm with --force (stdin is not a terminal)");
		printf("delete these %zu VMs? [y/N] ", n);
		fflush(stdout);
		char answer[8] = "";
		if (!fgets(answer, sizeof(answer), stdin) || (answer[0] != 'y' && answer[0] != 'Y'))
			return 1;
	}
	json_t *res;
	int rc = call_default("vm.prune", &res);
	if (rc)
		return api_fail(rc);
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(res, "removed"), i, v) printf("deleted %s\n", json_string_value(v));
	json_array_foreach(json_object_get(res, "failed"), i, v) fail(0, "%s: %s", str(v, "id"), str(v, "error"));
	int failed = json_array_size(json_object_get(res, "failed")) > 0;
	json_decref(res);
	return failed;
}

int cmd_vm_set(const command *cmd, args *a)
{
	if (a->argc != 1)
		return fail(EXIT_USAGE, "'banger %s' takes one vm name", cmd->path);
	json_t *params = spec_params(a);
	json_object_set_new(params, "name", json_string(a->argv[0]));
	json_t *vm;
	int rc = call_with("vm.set", params, &vm);
	return rc ? api_fail(rc) : print_vm(vm, a->json);
}

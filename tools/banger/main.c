/* banger: the command-line front end. Glue only: parse flags, call one API
 * method, print. Exit codes: 0 ok, 1 failed, 2 usage, 3 bangerd
 * unreachable, 130 interrupted (docs/banger.1.md). */
#include "cli.h"


#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;
static banger_call *volatile current_call;

/* ---- output ---- */

bool use_color(FILE *f)
{
	const char *term = getenv("TERM");
	return isatty(fileno(f)) && !getenv("NO_COLOR") && !(term && !strcmp(term, "dumb"));
}

const char *paint(FILE *f, const char *status)
{
	if (!use_color(f))
		return "";
	if (!strcmp(status, "PASS"))
		return "\033[32m";
	if (!strcmp(status, "WARN"))
		return "\033[33m";
	return "\033[31m";
}

int fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%sbanger:%s ", use_color(stderr) ? "\033[31m" : "", use_color(stderr) ? "\033[0m" : "");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return code;
}

/* ---- advice on what to type ----
 *
 * The library's messages say what is wrong (docs/CONVENTIONS.md); the
 * commands that put it right are the CLI's to give. Each row adds its hint
 * to a message with the code that holds `before`, then a name without
 * quotes, then `after`: right after `after`, at the end of the message
 * (END), or in place of before..after (SWAP). "{}" in the hint is that
 * name. `cmds`: the commands the row is for, '|' between them ("image" is
 * every image command), or NULL for all. */
enum { AFTER, END, SWAP };
static const struct cli_hint {
	const char *cmds;
	int code;
	const char *before, *after;
	int where;
	const char *hint;
} cli_hints[] = {
	{NULL, BANGER_ENOTFOUND, "vm '", "' not found", AFTER, "; run 'banger vm list --all'"},
	{NULL, BANGER_ENOTFOUND, "image '", "' not found", AFTER, "; run 'banger image list'"},
	{NULL, BANGER_ENOTFOUND, "kernel '", "' not found", AFTER, "; run 'banger kernel list'"},
	{NULL, BANGER_ENOTFOUND, "kernel '", "' is not in the catalog", AFTER, "; run 'banger kernel list --available'"},
	{NULL, BANGER_EEXIST, "kernel '", "' already exists", AFTER, "; remove it first (banger kernel rm {})"},
	{NULL, BANGER_EEXIST, "image '", "' already exists", AFTER,
	 "; remove it first (banger image rm {}) or pick another --name"},
	{NULL, BANGER_EEXIST, "image '", "' exists with other contents", AFTER, "; remove it first (banger image rm {})"},
	{"image", BANGER_EIO, "the image is full (", ")", AFTER, "; give it more room with --size"},
	{NULL, BANGER_EUNSUPPORTED, "image '", "' has no /sbin/init to run", AFTER, ": create the VM with --init banger"},
	{NULL, BANGER_EUNSUPPORTED, "image '", "' has no SSH server (/usr/sbin/sshd)", END,
	 ": install openssh-server in it, create the VM with --nat so banger installs it on first boot, or with --init "
	 "banger (no SSH, exec only)"},
	{NULL, BANGER_EBUSY, "vm '", "' must be stopped to change it", AFTER, " (banger vm stop {})"},
	{NULL, 0, "the VM '", "' is kept for a post-mortem", AFTER, ": banger vm logs {}"},
	{NULL, BANGER_EUNSUPPORTED, "vm '", "' runs a guest agent without sessions", AFTER,
	 ": restart it (banger vm restart {}) to get the current one"},
	{NULL, BANGER_ENOTFOUND, "VM '", "' has no workspace", AFTER, "; run 'banger vm workspace prepare {} PATH'"},
	{NULL, BANGER_EBUSY, "is in use by pid ", ")", AFTER, "; stop it (banger daemon stop) or use another state directory"},
	{NULL, 0, "(needed by the VM's nat", ")", SWAP, "(or create the VM without --nat)"},
	{"vm create|vm run", BANGER_ENOTFOUND, "image '", "'", END,
	 " (build the default with 'banger image build' or pull one)"},
	{"vm create|vm run", BANGER_ENOTFOUND, "kernel '", "'", END,
	 " (import one: banger kernel import {} --deb linux-image-*.deb)"},
};

static const char *current_command; /* the running command's path */

static bool hint_applies(const struct cli_hint *h)
{
	if (!h->cmds)
		return true;
	if (!current_command)
		return false;
	for (const char *p = h->cmds; *p;) {
		size_t n = strcspn(p, "|");
		if (!strncmp(current_command, p, n) && (current_command[n] == ' ' || !current_command[n]))
			return true;
		p += n + (p[n] == '|');
	}
	return false;
}

/* Whether msg has h's before, name and after: where `before` starts and
 * `after` ends in *from, *to, the name in *name, *name_len. */
static bool hint_match(const struct cli_hint *h, const char *msg, const char **from, const char **to,
		       const char **name, size_t *name_len)
{
	for (const char *p = strstr(msg, h->before); p; p = strstr(p + 1, h->before)) {
		const char *n = p + strlen(h->before);
		const char *a = strstr(n, h->after);
		if (a && !memchr(n, '\'', (size_t)(a - n))) {
			*from = p;
			*to = a + strlen(h->after);
			*name = n;
			*name_len = (size_t)(a - n);
			return true;
		}
	}
	return false;
}

static void hint_append(char **out, size_t *len, const char *text, size_t n)
{
	*out = realloc(*out, *len + n + 1);
	memcpy(*out + *len, text, n);
	*len += n;
	(*out)[*len] = '\0';
}

/* msg with the CLI's hints for err added (malloc'd). */
char *with_hint(int err, const char *msg)
{
	char *out = strdup(msg);
	size_t len = strlen(out);
	for (size_t i = 0; i < sizeof(cli_hints) / sizeof(cli_hints[0]); i++) {
		const struct cli_hint *h = &cli_hints[i];
		const char *from, *to, *name;
		size_t name_len;
		if ((h->code && h->code != err) || !hint_applies(h) || !hint_match(h, out, &from, &to, &name, &name_len))
			continue;
		/* out = out[0, head) + hint + out[at_off, len) */
		size_t at_off = h->where == END ? len : (size_t)(to - out), name_off = (size_t)(name - out);
		size_t head = h->where == SWAP ? (size_t)(from - out) : at_off;
		char *next = NULL;
		size_t next_len = 0;
		hint_append(&next, &next_len, out, head);
		for (const char *t = h->hint; *t;) {
			const char *brace = strstr(t, "{}");
			size_t n = brace ? (size_t)(brace - t) : strlen(t);
			hint_append(&next, &next_len, t, n);
			if (!brace)
				break;
			hint_append(&next, &next_len, out + name_off, name_len);
			t = brace + 2;
		}
		hint_append(&next, &next_len, out + at_off, len - at_off);
		free(out);
		out = next;
		len = next_len;
	}
	return out;
}

/* Exit code for a failed API call, with its message (and the CLI's hint) printed. */
int api_fail(int err)
{
	if (err == BANGER_ECANCELED && interrupted)
		return fail(EXIT_INTERRUPTED, "interrupted");
	char *msg = with_hint(err, banger_error_last());
	fail(1, "%s", msg);
	free(msg);
	if (err == BANGER_EPERM && strstr(banger_error_last(), "root helper bangerd-root")) {
		struct passwd *pw = getpwuid(getuid());
		fprintf(stderr, "hint: run bangerd as a service of this user with its root helper (`sudo banger system "
				"install --user %s`), or start the helper by hand (as root: `bangerd-root --owner %lu`)\n",
			pw ? pw->pw_name : "USER", (unsigned long)getuid());
	}
	return err == BANGER_ECONNECT ? EXIT_DAEMON : 1;
}

/* Prints rows of cells aligned in columns two spaces apart. */
void print_table(const char *const *cells, size_t ncols, size_t nrows)
{
	size_t width[16] = {0};
	for (size_t r = 0; r < nrows; r++)
		for (size_t c = 0; c < ncols; c++) {
			size_t w = strlen(cells[r * ncols + c]);
			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < nrows; r++) {
		for (size_t c = 0; c < ncols; c++) {
			const char *cell = cells[r * ncols + c];
			if (c + 1 == ncols)
				printf("%s\n", cell);
			else
				printf("%-*s  ", (int)width[c], cell);
		}
	}
}

void print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2));
	printf("%s\n", s);
	free(s);
}

/* ---- calling the API ---- */

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
	if (current_call)
		banger_call_cancel(current_call);
}

/* Opens the context from $BANGER_URI (default: bangerd, started on demand). */
int open_ctx(banger_ctx **ctx)
{
	const char *uri = getenv("BANGER_URI");
	banger_opts *opts;
	banger_opts_new(&opts);
	banger_opts_set_autostart(opts, 1);
	int rc = banger_ctx_open(ctx, uri && *uri ? uri : "unix:", opts);
	banger_opts_free(opts);
	return rc;
}

static int progress_width;
static bool progress_tty;

static void clear_progress(void)
{
	if (progress_width)
		fprintf(stderr, "\r%*s\r", progress_width, "");
	progress_width = 0;
}

/* Progress: a VM's `spec:` line always (it says what is being made); on a
 * terminal, each finished stage on a line of its own with its time, and
 * everything else on one line rewritten in place. */
void write_output(const char *stream, const char *b64)
{
	static signed char value[256];
	if (!value['B']) { /* a lookup table, made once: output can be gigabytes */
		memset(value, -1, sizeof(value));
		const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		for (int i = 0; i < 64; i++)
			value[(unsigned char)abc[i]] = (signed char)i;
	}
	FILE *f = strcmp(stream, "stderr") ? stdout : stderr;
	size_t n = strlen(b64), o = 0;
	unsigned char *out = malloc(n / 4 * 3 + 3);
	unsigned v = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int d = value[(unsigned char)b64[i]];
		if (d < 0)
			continue; /* padding */
		v = v << 6 | (unsigned)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
		}
	}
	fwrite(out, 1, o, f);
	free(out);
	fflush(f);
}

static void show_progress(const char *event_json, void *ud)
{
	const char *method = ud;
	json_t *ev = json_loads(event_json, 0, NULL);
	const char *output = json_string_value(json_object_get(ev, "output"));
	if (output) {
		clear_progress();
		write_output(output, json_string_value(json_object_get(ev, "data")) ?: "");
		json_decref(ev);
		return;
	}
	const char *warning = json_string_value(json_object_get(ev, "warning"));
	if (warning) { /* shown with or without a terminal */
		clear_progress();
		fprintf(stderr, "warning: %s\n", warning);
		json_decref(ev);
		return;
	}
	const char *stage = json_string_value(json_object_get(ev, "stage"));
	json_t *seconds = json_object_get(ev, "seconds");
	if (stage && !strcmp(stage, "spec") && json_is_string(json_object_get(ev, "spec"))) {
		clear_progress();
		fprintf(stderr, "spec: %s\n", json_string_value(json_object_get(ev, "spec")));
		json_decref(ev);
		return;
	}
	if (!progress_tty) {
		json_decref(ev);
		return;
	}
	if (stage && json_is_number(seconds)) {
		clear_progress();
		fprintf(stderr, "  %-10s %7.2f s\n", stage, json_number_value(seconds));
		json_decref(ev);
		return;
	}
	json_t *done = json_object_get(ev, "done"), *total = json_object_get(ev, "total");
	char detail[160] = "";
	if (json_object_get(ev, "digest")) { /* bytes of a download */
		snprintf(detail, sizeof(detail), " %.19s %.1f/%.1f MB", json_string_value(json_object_get(ev, "digest")),
			 (double)json_integer_value(done) / 1e6, (double)json_integer_value(total) / 1e6);
	} else if (json_object_get(ev, "entries")) {
		snprintf(detail, sizeof(detail), " %lld entries", (long long)json_integer_value(json_object_get(ev, "entries")));
	} else if (done && total) {
		snprintf(detail, sizeof(detail), " %lld/%lld", (long long)json_integer_value(done),
			 (long long)json_integer_value(total));
	}
	char line[256];
	int n = snprintf(line, sizeof(line), "[%s] %s%s", method, stage ? stage : "", detail);
	/* plain carriage returns and padding: no escape codes, so NO_COLOR holds */
	fprintf(stderr, "\r%s%*s", line, progress_width > n ? progress_width - n : 0, "");
	progress_width = n;
	fflush(stderr);
	json_decref(ev);
}

/* Runs method with params (JSON text or NULL) and parses its result into
 * *out, showing progress on a terminal. */
int call(banger_ctx *ctx, const char *method, const char *params, json_t **out)
{
	banger_call *c;
	int rc = banger_call_new(&c, method, params);
	if (rc)
		return rc;
	progress_tty = isatty(2) && !getenv("NO_PROGRESS");
	banger_call_set_event_cb(c, show_progress, (void *)method);
	current_call = c;
	rc = banger_call_run(ctx, c);
	current_call = NULL;
	clear_progress();
	if (!rc)
		*out = json_loads(banger_call_result(c), JSON_DECODE_ANY, NULL);
	banger_call_unref(c);
	return rc;
}

/* Opens the default context and runs one method: the common case. */
int call_default(const char *method, json_t **out) { return call_with(method, NULL, out); }

int call_with(const char *method, json_t *params, json_t **out)
{
	banger_ctx *ctx;
	char *p = params ? json_dumps(params, JSON_COMPACT) : NULL;
	json_decref(params);
	int rc = open_ctx(&ctx);
	if (!rc) {
		rc = call(ctx, method, p, out);
		banger_ctx_unref(ctx);
	}
	free(p);
	return rc;
}

/* ---- commands ---- */

static int cmd_version(const command *cmd, args *a)
{
	(void)cmd;
	if (a->json) {
		json_t *v = json_pack("{s:s,s:s,s:s}", "version", banger_version_number(), "commit",
				      banger_version_commit(), "build_date", banger_version_date());
		print_json(v);
		json_decref(v);
		return 0;
	}
	const char *rows[] = {"version:", banger_version_number(), "commit:", banger_version_commit(),
			      "built:", banger_version_date()};
	print_table(rows, 2, 3);
	return 0;
}

static int cmd_config_show(const command *cmd, args *a)
{
	(void)cmd;
	json_t *cfg;
	int rc = call_default("config.show", &cfg);
	if (rc)
		return api_fail(rc);
	if (a->json) {
		print_json(cfg);
		json_decref(cfg);
		return 0;
	}
	json_t *vals = json_object_get(cfg, "values");
	size_t n = json_object_size(vals) + 1, i = 1;
	const char **cells = calloc(n * 3, sizeof(char *));
	char **owned = calloc(n, sizeof(char *));
	cells[0] = "KEY", cells[1] = "VALUE", cells[2] = "SOURCE";
	const char *key;
	json_t *v;
	json_object_foreach(vals, key, v) {
		json_t *val = json_object_get(v, "text") ? json_object_get(v, "text") : json_object_get(v, "value");
		owned[i] = json_is_string(val) ? strdup(json_string_value(val)) : json_dumps(val, JSON_ENCODE_ANY);
		cells[i * 3] = key;
		cells[i * 3 + 1] = *owned[i] ? owned[i] : "-";
		cells[i * 3 + 2] = json_string_value(json_object_get(v, "source"));
		i++;
	}
	printf("# %s%s\n", json_string_value(json_object_get(cfg, "path")),
	       json_is_true(json_object_get(cfg, "found")) ? "" : " (not found: defaults)");
	print_table(cells, 3, n);
	json_array_foreach(json_object_get(cfg, "warnings"), i, v) fail(0, "warning: %s", json_string_value(v));
	for (i = 0; i < n; i++)
		free(owned[i]);
	free(owned);
	free(cells);
	json_decref(cfg);
	return 0;
}

/* What a doctor row's remedy (lib/engine/doctor*.c) means at this CLI. */
static const char *const doctor_remedies[][2] = {
	{"system-install", "banger system install (as root)"},
	{"system-restart", "banger system restart (as root)"},
	{"system-status", "as root: banger system status"},
	{"config-show", "banger config show lists them"},
	{"root-helper", "as root: banger system install --user USER (bangerd as USER with its root helper), or "
			"bangerd-root --owner UID"},
};

static const char *doctor_remedy(const char *remedy)
{
	for (size_t i = 0; remedy && i < sizeof(doctor_remedies) / sizeof(doctor_remedies[0]); i++)
		if (!strcmp(remedy, doctor_remedies[i][0]))
			return doctor_remedies[i][1];
	return NULL;
}

static int cmd_doctor(const command *cmd, args *a)
{
	(void)cmd;
	/* doctor must report even when bangerd cannot start: then it checks
	 * this host with an in-process engine */
	json_t *checks = json_array(), *report = NULL;
	banger_ctx *ctx = NULL;
	int rc = open_ctx(&ctx);
	if (!rc) {
		json_t *st;
		rc = call(ctx, "engine.status", NULL, &st);
		if (!rc) {
			json_array_append_new(checks, json_pack("{s:s,s:s,s:s++}", "name", "daemon", "status", "PASS",
								"detail", "bangerd ", json_string_value(json_object_get(st, "stamp")),
								strcmp(banger_ctx_transport(ctx), "local") ? "" : " (in-process)"));
			json_decref(st);
			rc = call(ctx, "doctor", NULL, &report);
		}
	}
	if (rc) {
		json_array_append_new(checks, json_pack("{s:s,s:s,s:s}", "name", "daemon", "status", "FAIL", "detail",
							banger_error_last()));
		banger_ctx_unref(ctx);
		ctx = NULL;
		if (banger_ctx_open(&ctx, "local:", NULL) == 0)
			call(ctx, "doctor", NULL, &report);
	}
	banger_ctx_unref(ctx);
	json_array_extend(checks, json_object_get(report, "checks"));
	int failed = 0;
	size_t i;
	json_t *c;
	json_array_foreach(checks, i, c) failed |= !strcmp(json_string_value(json_object_get(c, "status")), "FAIL");
	if (a->json) {
		json_t *out = json_pack("{s:O,s:O?,s:b}", "checks", checks, "driver", json_object_get(report, "driver"),
					"ok", !failed);
		print_json(out);
		json_decref(out);
	} else {
		json_array_foreach(checks, i, c) {
			const char *st = json_string_value(json_object_get(c, "status"));
			const char *fix = doctor_remedy(json_string_value(json_object_get(c, "remedy")));
			printf("%s%s%s  %-12s %s%s%s\n", paint(stdout, st), st, use_color(stdout) ? "\033[0m" : "",
			       json_string_value(json_object_get(c, "name")), json_string_value(json_object_get(c, "detail")),
			       fix ? ": " : "", fix ? fix : "");
		}
	}
	json_decref(checks);
	json_decref(report);
	return failed ? 1 : 0;
}

static char *socket_path(void)
{
	const char *uri = getenv("BANGER_URI");
	if (uri && !strncmp(uri, "unix:", 5) && uri[5])
		return strdup(uri + 5);
	char *s, *copy;
	banger_default_socket(&s);
	copy = strdup(s);
	banger_free(s);
	return copy;
}

static int cmd_daemon_status(const command *cmd, args *a)
{
	(void)cmd;
	char *sock = socket_path(), *uri = malloc(strlen(sock) + 6);
	sprintf(uri, "unix:%s", sock);
	banger_ctx *ctx;
	json_t *st = NULL;
	int rc = banger_ctx_open(&ctx, uri, NULL); /* status never starts the daemon */
	if (!rc) {
		rc = call(ctx, "engine.status", NULL, &st);
		banger_ctx_unref(ctx);
	}
	free(uri);
	if (rc == BANGER_ECONNECT) {
		if (a->json)
			printf("{\"running\": false, \"socket\": \"%s\"}\n", sock);
		else
			printf("bangerd is not running (socket %s)\n", sock);
		free(sock);
		return EXIT_DAEMON;
	}
	if (rc) {
		free(sock);
		return api_fail(rc);
	}
	json_object_set_new(st, "running", json_true());
	json_object_set_new(st, "socket", json_string(sock));
	free(sock);
	if (a->json) {
		print_json(st);
	} else {
		char pid[32], uptime[32];
		snprintf(pid, sizeof(pid), "%lld", (long long)json_integer_value(json_object_get(st, "pid")));
		snprintf(uptime, sizeof(uptime), "%.0fs", json_real_value(json_object_get(st, "uptime_s")));
		json_t *as = json_object_get(st, "auto_stop");
		char auto_stop[96] = "off (auto_stop_stale_after = 0)";
		if (json_is_true(json_object_get(as, "enabled")))
			snprintf(auto_stop, sizeof(auto_stop), "VMs unused for %llds (checked every %llds; %zu stopped)",
				 (long long)json_integer_value(json_object_get(as, "after_s")),
				 (long long)json_integer_value(json_object_get(as, "check_every_s")),
				 json_array_size(json_object_get(as, "stopped")));
		/* dns: where the vm. zone is served and how many names it has */
		json_t *dns = json_object_get(st, "dns"), *addr;
		char *where = NULL;
		size_t i;
		json_array_foreach(json_object_get(dns, "listen"), i, addr) {
			char *more = NULL;
			if (asprintf(&more, "%s%s%s", where ? where : "", where ? ", " : "", json_string_value(addr)) < 0)
				more = NULL;
			free(where);
			where = more;
		}
		const char *err = json_string_value(json_object_get(dns, "error"));
		char *dns_row = NULL;
		int n = !dns ? asprintf(&dns_row, "-")
			: err ? asprintf(&dns_row, "not served: %s", err)
			: !where ? asprintf(&dns_row, "off")
			: asprintf(&dns_row, "zone vm. on %s, %lld records", where,
				   (long long)json_integer_value(json_object_get(dns, "records")));
		if (n < 0)
			dns_row = NULL;
		free(where);
		const char *rows[] = {
			"state", "running", "pid", pid, "uptime", uptime,
			"version", json_string_value(json_object_get(st, "stamp")),
			"socket", json_string_value(json_object_get(st, "socket")),
			"state dir", json_string_value(json_object_get(st, "state_dir")),
			"dns", dns_row ? dns_row : "-",
			"auto stop", auto_stop,
		};
		print_table(rows, 2, 8);
		free(dns_row);
	}
	json_decref(st);
	return 0;
}

static int cmd_daemon_stop(const command *cmd, args *a)
{
	(void)cmd;
	(void)a;
	char *sock = socket_path();
	int pid = 0;
	int rc = banger_daemon_stop(sock, &pid);
	if (rc == BANGER_ECONNECT)
		printf("bangerd is not running (socket %s)\n", sock);
	else if (!rc)
		printf("stopped bangerd (pid %d)\n", pid);
	free(sock);
	return rc && rc != BANGER_ECONNECT ? api_fail(rc) : 0;
}

static int cmd_daemon_socket(const command *cmd, args *a)
{
	(void)cmd;
	(void)a;
	char *sock = socket_path();
	printf("%s\n", sock);
	free(sock);
	return 0;
}

/* Matches argv[0] against cmd->flags ("--json --name= --size=": a trailing
 * '=' takes a value, as "--name X" or "--name=X"). Returns the number of
 * argv entries used, or -1 after printing why not. */
static int parse_flag(const command *cmd, args *a, int argc, char **argv)
{
	const char *arg = argv[0];
	const char *eq = strchr(arg, '=');
	size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
	for (const char *f = cmd->flags; *f;) {
		size_t len = strcspn(f, " ");
		bool takes_value = f[len - 1] == '=';
		size_t name_len = takes_value ? len - 1 : len;
		if (name_len == n && !strncmp(f, arg, n)) {
			if (a->nflags == MAX_FLAGS)
				return fail(EXIT_USAGE, "too many flags"), -1;
			const char *value = "";
			int used = 1;
			if (takes_value) {
				if (eq) {
					value = eq + 1;
				} else if (argc > 1) {
					value = argv[1];
					used = 2;
				} else {
					return fail(EXIT_USAGE, "flag %.*s needs a value; see 'banger %s --help'", (int)n, arg,
						    cmd->path), -1;
				}
			} else if (eq) {
				return fail(EXIT_USAGE, "flag %.*s takes no value", (int)n, arg), -1;
			}
			a->flags[a->nflags].name = f;
			a->flags[a->nflags].name_len = name_len;
			a->flags[a->nflags].value = value;
			a->nflags++;
			return used;
		}
		f += len;
		while (*f == ' ')
			f++;
	}
	return fail(EXIT_USAGE, "unknown flag '%s' for 'banger %s'; see 'banger %s --help'", arg, cmd->path,
		    cmd->path), -1;
}

const char *flag_value(const args *a, const char *name)
{
	for (int i = a->nflags - 1; i >= 0; i--)
		if (strlen(name) == a->flags[i].name_len && !strncmp(a->flags[i].name, name, a->flags[i].name_len))
			return a->flags[i].value;
	return NULL;
}

bool flag_set(const args *a, const char *name) { return flag_value(a, name) != NULL; }

const command commands[] = {
	{"version", "", "", "--json", "print version, commit and build date", cmd_version},
	{"doctor", "", "", "--json", "check what this host can run (PASS/WARN/FAIL per check)", cmd_doctor},
	{"config show", "", "", "--json", "show the resolved config and where each value comes from", cmd_config_show},
	{"daemon status", "", "", "--json", "show whether bangerd runs, its pid, version and socket", cmd_daemon_status},
	{"daemon stop", "", "", "", "stop bangerd (running VMs keep running)", cmd_daemon_stop},
	{"daemon socket", "", "", "", "print the socket path bangerd serves", cmd_daemon_socket},
	{"vm run", "", "[path] [-- cmd [arg...]]",
	 "--name= --image= --kernel= --vcpu= --memory= --disk-size= --nat --init= --rm -d --dry-run --include-untracked "
	 "--json",
	 "create a VM and open a shell in it, or run the image's entrypoint or a command (exit code propagated); with "
	 "a repository PATH, ship it to /root/repo first (the command runs there); --rm deletes the VM after",
	 cmd_vm_run},
	{"vm create", "", "", "--name= --image= --kernel= --vcpu= --memory= --disk-size= --nat --init= --no-start --json",
	 "create and boot a VM (live stages on a terminal); --init auto|banger|systemd picks its PID 1",
	 cmd_vm_create},
	{"vm start", "", "<vm>...", "--json", "boot stopped VMs (their disks kept)", cmd_vm_start},
	{"vm stop", "", "<vm>...", "--json", "sync and power off VMs (bounded wait, then kill)", cmd_vm_stop},
	{"vm restart", "", "<vm>...", "--json", "stop and start VMs (new boot id)", cmd_vm_restart},
	{"vm kill", "", "<vm>...", "--signal= --json", "signal the VMM (default KILL)", cmd_vm_kill},
	{"vm delete", "rm", "<vm>...", "--json", "kill and remove VMs with their disks", cmd_vm_delete},
	{"vm prune", "", "", "--force -f", "delete every VM that is not running", cmd_vm_prune},
	{"vm list", "ls ps", "", "--all --latest --quiet -q --json", "list running VMs (--all: every VM)", cmd_vm_list},
	{"vm show", "", "<vm>", "--json", "show one VM", cmd_vm_show},
	{"vm logs", "", "<vm>", "", "print the guest's console output", cmd_vm_logs},
	{"vm stats", "", "<vm>", "--json", "VMM cpu time and memory, guest uptime", cmd_vm_generic},
	{"vm ports", "", "<vm>", "--json", "listening ports in the guest", cmd_vm_generic},
	{"vm ssh", "", "<vm> [-- cmd [arg...]]", "", "ssh into a VM, or run one command", cmd_vm_ssh},
	{"vm cp", "", "<src> <dst>", "--json",
	 "copy files or directories between the host and a VM (VM:/path): modes, owners, times, symlinks kept", cmd_vm_cp},
	{"vm exec", "", "<vm> -- cmd [arg...]", "--cwd= --env= --user= --timeout= -i -t --auto-prepare --json",
	 "run a command in the guest over its agent (no SSH), in its workspace when it has one: output streamed, "
	 "exit code propagated; --auto-prepare ships a workspace behind the host tree again first",
	 cmd_vm_exec},
	{"vm set", "", "<vm>", "--vcpu= --memory= --disk-size= --json", "change a stopped VM's spec", cmd_vm_set},
	{"vm workspace prepare", "", "<vm> [path]", "--guest-path= --mode= --include-untracked --dry-run --force --json",
	 "ship a git repository (default .) into a VM: shallow history + the working tree's files",
	 cmd_vm_workspace_prepare},
	{"vm workspace export", "", "<vm>", "--output= --base-commit= --json",
	 "the VM checkout's changes as a binary patch (stdout, or --output FILE)", cmd_vm_workspace_export},
	{"vm workspace show", "", "<vm>", "--json", "show a VM's workspace record", cmd_vm_workspace_show},
	{"vm session start", "", "<vm> -- cmd [arg...]",
	 "--name= --cwd= --env= --stdin-mode= --tty --require-command= --json",
	 "start a durable session in the guest (it outlives this command and bangerd); checks cwd and the commands "
	 "first",
	 cmd_vm_session_start},
	{"vm session list", "ls", "<vm>", "--json", "list a VM's sessions", cmd_vm_session_list},
	{"vm session show", "", "<vm> <session>", "--json", "show one session", cmd_vm_session_show},
	{"vm session logs", "", "<vm> <session>", "--stream= --follow -f --tail=",
	 "print a session's output (--stream stdout|stderr; --follow until it ends)", cmd_vm_session_logs},
	{"vm session attach", "", "<vm> <session>", "",
	 "attach to a running session (one client at a time; Ctrl-] detaches, the session keeps running)",
	 cmd_vm_session_attach},
	{"vm session send", "", "<vm> <session> <data|->", "--json",
	 "write to a pipe session's stdin without attaching (- reads stdin)", cmd_vm_session_send},
	{"vm session stop", "", "<vm> <session>", "--json", "TERM the session, KILL after 10 s", cmd_vm_session_stop},
	{"vm session kill", "", "<vm> <session>", "--signal= --json", "signal the session (default KILL)",
	 cmd_vm_session_stop},
	{"ssh-config", "", "", "--install --uninstall --json",
	 "ssh <vm>.vm with stock OpenSSH: print the config, or add (--install) or remove (--uninstall) its "
	 "Include in ~/.ssh/config",
	 cmd_ssh_config},
	{"ps", "", "", "--all --latest --quiet -q --json", "running VMs (same as banger vm list)", cmd_vm_list},
	{"image import", "", "<name>", "--tar= --size= --kernel= --json",
	 "build an image from a tar file ('-' reads stdin): docker export, a layer, a rootfs tar", cmd_image_import},
	{"image register", "", "<name>", "--rootfs= --kernel= --json", "record an existing rootfs.ext4 as an image",
	 cmd_image_register},
	{"image build", "", "[name]", "--suite= --minimal --no-systemd --mirror= --size= --json",
	 "build the default Debian image (debian-bookworm) from the package mirror; cached by content",
	 cmd_image_build},
	{"image pull", "", "<ref>", "--name= --size= --kernel= --json",
	 "pull a catalog image by name, or an OCI image (debian:bookworm, localhost:5000/app:1, …@sha256:…)",
	 cmd_image_pull},
	{"image list", "ls", "", "--available --json", "list images with their sizes (--available: the catalog)",
	 cmd_image_list},
	{"image show", "", "<name>", "--json", "show one image", cmd_image_show},
	{"image rm", "delete", "<name>...", "", "remove images and their files", cmd_image_rm},
	{"kernel import", "", "<name>", "--from= --deb= --json",
	 "import a kernel from a directory (--from) or a Debian linux-image-*.deb (--deb)", cmd_kernel_import},
	{"kernel pull", "", "<name>", "--json", "pull a kernel bundle from the kernel catalog", cmd_kernel_pull},
	{"kernel list", "ls", "", "--available --json", "list kernels (--available: the catalog)", cmd_kernel_list},
	{"kernel show", "", "<name>", "--json", "show one kernel", cmd_kernel_show},
	{"kernel rm", "delete remove", "<name>...", "", "remove kernels and their files", cmd_kernel_rm},
	{"update", "", "", "--check --to= --dry-run --prefix= --url= --json",
	 "update banger from its signed releases (--check: exit 1 when a newer one exists; --to VERSION; --dry-run "
	 "changes nothing); a failed update rolls back",
	 cmd_update},
	{"system install", "", "", "--user= --json",
	 "run bangerd as a systemd service (as root): writes bangerd.service, /etc/banger/config.toml when absent "
	 "and /var/lib/banger/install.json, then enables and starts it; --user U: bangerd runs as U, and the root "
	 "helper bangerd-root@<uid>.service does what needs root",
	 cmd_system_install},
	{"system status", "", "", "--json", "show what system install recorded and whether bangerd.service is active",
	 cmd_system_status},
	{"system restart", "", "", "--json", "restart bangerd.service (running VMs keep running)", cmd_system_restart},
	{"system uninstall", "", "", "--purge",
	 "stop, disable and remove bangerd.service (and the root helper's unit), keeping state and config (--purge "
	 "removes them too)",
	 cmd_system_uninstall},
	{"completion", "", "bash|zsh|fish", "", "print a shell completion script", cmd_completion},
	{"help", "", "[command...]", "", "show help for a command", cmd_help},
};
const size_t ncommands = sizeof(commands) / sizeof(commands[0]);

int main(int argc, char **argv)
{
	/* Started with stdin, stdout or stderr closed (a CI job without
	 * input): /dev/null takes the slot, or the next socket would, and
	 * `vm exec -i` would read it as the command's stdin. */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF && open("/dev/null", fd ? O_WRONLY : O_RDONLY) != fd)
			return 1;
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_sigint};
	sigaction(SIGINT, &sa, NULL);
	if (argc < 2)
		return print_help(NULL, 0, stderr), EXIT_USAGE;
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return print_help(NULL, 0, stdout), 0;
	if (!strcmp(argv[1], "--version"))
		return printf("banger %s\n", banger_version()), 0;
	size_t depth;
	const command *cmd = resolve(argc - 1, argv + 1, &depth);
	if (!cmd)
		return EXIT_USAGE;
	args a = {.before_dashes = -1};
	char **pos = calloc((size_t)argc, sizeof(char *));
	a.argv = pos;
	bool only_positional = false;
	for (int i = 1 + (int)depth; i < argc; i++) {
		const char *arg = argv[i];
		if (only_positional || arg[0] != '-' || !arg[1]) {
			pos[a.argc++] = argv[i];
			continue;
		}
		if (!strcmp(arg, "--")) {
			only_positional = true;
			a.before_dashes = a.argc;
			continue;
		}
		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			print_command_help(cmd, stdout);
			free(pos);
			return 0;
		}
		int used = parse_flag(cmd, &a, argc - i, argv + i);
		if (used < 0) {
			free(pos);
			return EXIT_USAGE;
		}
		i += used - 1;
	}
	a.json = flag_set(&a, "--json");
	current_command = cmd->path;
	int rc = cmd->run(cmd, &a);
	free(pos);
	return rc;
}

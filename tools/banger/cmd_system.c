/* banger system install|status|restart|uninstall: bangerd as a systemd
 * service (data/systemd/bangerd.service.in) over the system layout: config
 * /etc/banger/config.toml, state /var/lib/banger (install.json: what was
 * installed, when, by which banger), cache /var/cache/banger, socket
 * /run/banger/bangerd.sock.
 *
 * Test hooks (tests/integration/test_system.py; the test hosts have no
 * systemd as PID 1): BANGER_SYSTEM_ROOT prefixes every path these commands
 * read or write (as DESTDIR does; the unit's own text keeps the system
 * paths) and BANGER_SYSTEMCTL replaces systemctl. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pwd.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
extern const char system_unit_template[]; /* system_unit.c, generated */

#define UNIT "bangerd.service"
#define UNIT_PATH "/etc/systemd/system/" UNIT
#define CONFIG_DIR "/etc/banger"
#define CONFIG_PATH CONFIG_DIR "/config.toml"
#define STATE_DIR "/var/lib/banger"
#define CACHE_DIR "/var/cache/banger"
#define RUNTIME_DIR "/run/banger"
#define SOCKET_PATH RUNTIME_DIR "/bangerd.sock"
#define META_PATH STATE_DIR "/install.json"

static const char config_template[] =
	"# banger's config for the system service (bangerd.service): keys, types and\n"
	"# defaults in docs/config.md; `banger config show` prints the values in use.\n"
	"# `banger system install` wrote this file because there was none, and never\n"
	"# overwrites it; `banger system restart` makes bangerd read it again.\n";

/* A system path under $BANGER_SYSTEM_ROOT (malloc'd). */
static char *at(const char *path)
{
	const char *root = getenv("BANGER_SYSTEM_ROOT");
	char *p = NULL;
	if (asprintf(&p, "%s%s", root && *root ? root : "", path) < 0)
		abort();
	return p;
}

/* Runs systemctl ARGS; *out (may be NULL) gets the first line it prints
 * (malloc'd, "" when none). Returns its exit status, or -1 when it could
 * not run (errno kept). */
static int systemctl(const char *const *sargs, char **out)
{
	const char *exe = getenv("BANGER_SYSTEMCTL");
	if (!exe || !*exe)
		exe = "systemctl";
	const char *argv[8] = {exe};
	size_t n = 1;
	for (; sargs[n - 1] && n < 7; n++)
		argv[n] = sargs[n - 1];
	argv[n] = NULL;
	int pipefd[2] = {-1, -1};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (out) {
		if (pipe2(pipefd, O_CLOEXEC) != 0)
			return -1;
		posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	}
	pid_t pid;
	int err = posix_spawnp(&pid, exe, &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (out)
		close(pipefd[1]);
	if (err) {
		if (out)
			close(pipefd[0]);
		errno = err;
		return -1;
	}
	if (out) {
		char buf[256];
		size_t len = 0;
		ssize_t r;
		while ((r = read(pipefd[0], buf + len, sizeof(buf) - 1 - len)) > 0 && (len += (size_t)r) < sizeof(buf) - 1)
			;
		close(pipefd[0]);
		buf[len] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		*out = strdup(buf);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* systemctl ARGS that must succeed; fails naming it otherwise. */
static int must(const char *const *sargs)
{
	int st = systemctl(sargs, NULL);
	if (st == 0)
		return 0;
	char cmd[256] = "systemctl";
	for (size_t i = 0; sargs[i]; i++)
		snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " %s", sargs[i]);
	if (st < 0)
		return fail(1, "cannot run %s: %s", cmd, strerror(errno));
	return fail(1, "%s failed (exit %d): journalctl -u bangerd says why", cmd, st);
}

/* "active", "inactive", "failed" ... (malloc'd; "unknown" when systemctl
 * could not say). */
static char *unit_state(const char *verb)
{
	const char *sargs[] = {verb, UNIT, NULL};
	char *s = NULL;
	if (systemctl(sargs, &s) < 0 || !s || !*s) {
		free(s);
		s = strdup("unknown");
	}
	return s;
}

static int need_root(const char *verb, const char *what)
{
	if (geteuid() == 0)
		return 0;
	return fail(1, "banger system %s needs root: it %s; run it with sudo", verb, what);
}

static int mkdirs(const char *path, mode_t mode)
{
	char *p = strdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST) {
			int e = errno;
			free(p);
			return fail(1, "cannot create %s: %s", path, strerror(e));
		}
		*s = '/';
	}
	free(p);
	if (mkdir(path, mode) != 0 && errno != EEXIST)
		return fail(1, "cannot create %s: %s", path, strerror(errno));
	return 0;
}

/* The whole file (malloc'd, NUL-terminated), or NULL (errno set). */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0, r;
	char *buf = malloc(cap);
	while ((r = fread(buf + len, 1, cap - len - 1, f)) > 0)
		if ((len += r) == cap - 1)
			buf = realloc(buf, cap *= 2);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/* Writes path through a temporary file and rename, so a reader never sees
 * half of it. */
static int write_atomic(const char *path, const char *text, mode_t mode)
{
	char *tmp = NULL;
	if (asprintf(&tmp, "%s.tmp-%d", path, (int)getpid()) < 0)
		abort();
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t len = strlen(text);
	int e = fd < 0 ? errno : 0;
	if (!e && (write(fd, text, len) != (ssize_t)len || fchmod(fd, mode) != 0 || fsync(fd) != 0))
		e = errno ? errno : EIO;
	if (fd >= 0 && close(fd) != 0 && !e)
		e = errno;
	if (!e && rename(tmp, path) != 0)
		e = errno;
	if (e)
		unlink(tmp);
	free(tmp);
	return e ? fail(1, "cannot write %s: %s", path, strerror(e)) : 0;
}

/* The bangerd this banger runs: $BANGERD, else the one beside it (or, in a
 * build tree, in ../bangerd/); an absolute, resolved path (malloc'd). */
static char *find_bangerd(void)
{
	const char *env = getenv("BANGERD");
	if (env && *env)
		return realpath(env, NULL);
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return NULL;
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	static const char *const rel[] = {"bangerd", "../bangerd/bangerd"};
	for (size_t i = 0; i < 2; i++) {
		char *cand = NULL;
		if (asprintf(&cand, "%s/%s", self, rel[i]) < 0)
			abort();
		char *real = access(cand, X_OK) == 0 ? realpath(cand, NULL) : NULL;
		free(cand);
		if (real)
			return real;
	}
	return NULL;
}

/* The unit with ExecStart naming bangerd (malloc'd). */
static char *unit_text(const char *bangerd)
{
	const char *mark = strstr(system_unit_template, "@BANGERD@");
	char *text = NULL;
	if (!mark || asprintf(&text, "%.*s%s%s", (int)(mark - system_unit_template), system_unit_template, bangerd,
			      mark + strlen("@BANGERD@")) < 0)
		abort();
	return text;
}

/* install.json, or NULL when there is none; *denied (may be NULL) is set
 * when it cannot be read for want of permission (/var/lib/banger is 0700). */
static json_t *read_meta(bool *denied)
{
	char *path = at(META_PATH);
	json_error_t jerr;
	json_t *m = json_load_file(path, 0, &jerr);
	int e = m ? 0 : access(path, R_OK) == 0 ? EINVAL : errno;
	if (denied)
		*denied = e == EACCES;
	if (e == EINVAL)
		fail(0, "warning: %s is unreadable: %s", path, jerr.text);
	free(path);
	return json_is_object(m) ? m : (json_decref(m), NULL);
}

/* An on-demand bangerd (started by root's CLI) may already serve the
 * service's socket: it goes, so the service can bind it. Its VMs keep
 * running and its state stays where it was. */
static void stop_on_demand_daemon(void)
{
	char *sock = at(SOCKET_PATH), *uri = NULL;
	if (asprintf(&uri, "unix:%s", sock) < 0)
		abort();
	banger_ctx *ctx;
	json_t *st = NULL;
	if (banger_ctx_open(&ctx, uri, NULL) == 0) {
		if (call(ctx, "engine.status", NULL, &st) != 0)
			st = NULL;
		banger_ctx_unref(ctx);
	}
	int pid = 0;
	if (st && banger_daemon_stop(sock, &pid) == 0)
		printf("stopped the bangerd started on demand (pid %d, state %s): the service keeps its state in %s\n",
		       pid, json_string_value(json_object_get(st, "state_dir")), STATE_DIR);
	json_decref(st);
	free(uri);
	free(sock);
}

int cmd_system_install(const command *cmd, args *a)
{
	(void)cmd;
	const char *user = flag_value(a, "--user");
	if (user) {
		struct passwd *pw = getpwnam(user);
		if (!pw)
			return fail(EXIT_USAGE, "--user %s: no such user", user);
		if (pw->pw_uid != 0)
			return fail(1, "--user %s: bangerd cannot run as %s yet: it makes the bridge, taps and NAT rules "
				       "itself, which needs root, until the root helper (bangerd-root) lands; install without "
				       "--user (the service runs as root)",
				    user, user);
	}
	if (need_root("install", "writes " UNIT_PATH ", " CONFIG_DIR " and " STATE_DIR))
		return 1;
	char *bangerd = find_bangerd();
	if (!bangerd)
		return fail(1, "no bangerd beside this banger: install banger first, or set BANGERD=/path/to/bangerd");
	if (bangerd[strcspn(bangerd, " \t\n\"\\%$;")]) {
		fail(1, "cannot name %s in a unit's ExecStart: move banger to a plain path", bangerd);
		free(bangerd);
		return 1;
	}
	json_t *old = read_meta(NULL);
	char *unit = at(UNIT_PATH), *cfg = at(CONFIG_PATH), *state = at(STATE_DIR), *cache = at(CACHE_DIR),
	     *unitdir = at("/etc/systemd/system"), *cfgdir = at(CONFIG_DIR), *meta = at(META_PATH);
	char *text = unit_text(bangerd), *cur = slurp(unit);
	bool unit_written = !cur || strcmp(cur, text) != 0, config_written = false;
	int rc = mkdirs(unitdir, 0755) || mkdirs(cfgdir, 0755) || mkdirs(state, 0700) || mkdirs(cache, 0700);
	if (!rc && unit_written)
		rc = write_atomic(unit, text, 0644);
	if (!rc) {
		/* the config is the admin's: written when absent, never replaced */
		int fd = open(cfg, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0) {
			config_written = true;
			size_t len = strlen(config_template);
			if (write(fd, config_template, len) != (ssize_t)len)
				rc = fail(1, "cannot write %s: %s", cfg, strerror(errno));
			close(fd);
		} else if (errno != EEXIST) {
			rc = fail(1, "cannot write %s: %s", cfg, strerror(errno));
		}
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	char now[32];
	time_t t = time(NULL);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	const char *first = json_string_value(json_object_get(old, "installed_at"));
	json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "version",
			      banger_version_number(), "stamp", banger_version(), "installed_at", first ? first : now,
			      "updated_at", now, "user", "root", "unit", UNIT_PATH, "bangerd", bangerd, "banger", self,
			      "config", CONFIG_PATH, "state_dir", STATE_DIR, "cache_dir", CACHE_DIR, "runtime_dir",
			      RUNTIME_DIR, "socket", SOCKET_PATH);
	if (!rc) {
		char *body = json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS);
		size_t len = strlen(body);
		body = realloc(body, len + 2);
		memcpy(body + len, "\n", 2);
		rc = write_atomic(meta, body, 0644);
		free(body);
	}
	if (!rc && !old)
		stop_on_demand_daemon();
	static const char *const reload[] = {"daemon-reload", NULL}, *const enable[] = {"enable", "--now", UNIT, NULL},
				 *const restart[] = {"try-restart", UNIT, NULL};
	if (!rc)
		rc = must(reload) || must(enable);
	/* a changed unit (a new bangerd path, new settings) takes effect now */
	if (!rc && old && unit_written)
		rc = must(restart);
	char *active = rc ? NULL : unit_state("is-active");
	if (!rc && a->json) {
		json_object_set_new(m, "unit_written", json_boolean(unit_written));
		json_object_set_new(m, "config_written", json_boolean(config_written));
		json_object_set_new(m, "active", json_string(active));
		print_json(m);
	} else if (!rc) {
		char *unit_row = NULL, *cfg_row = NULL, *svc_row = NULL;
		if (asprintf(&unit_row, "%s (%s)", unit, unit_written ? "written" : "unchanged") < 0 ||
		    asprintf(&cfg_row, "%s (%s)", cfg, config_written ? "written" : "kept: never overwritten") < 0 ||
		    asprintf(&svc_row, "%s, enabled (%s)", UNIT, active) < 0)
			abort();
		const char *rows[] = {"unit", unit_row, "bangerd", bangerd, "config", cfg_row, "state", state,
				      "socket", SOCKET_PATH, "service", svc_row};
		print_table(rows, 2, 6);
		free(unit_row);
		free(cfg_row);
		free(svc_row);
	}
	free(active);
	json_decref(m);
	json_decref(old);
	free(text);
	free(cur);
	free(bangerd);
	free(unit);
	free(cfg);
	free(state);
	free(cache);
	free(unitdir);
	free(cfgdir);
	free(meta);
	return rc ? 1 : 0;
}

int cmd_system_status(const command *cmd, args *a)
{
	(void)cmd;
	bool denied = false;
	json_t *m = read_meta(&denied);
	if (!m && denied) {
		char *p = at(META_PATH);
		fail(1, "cannot read %s: %s: sudo banger system status", p, strerror(EACCES));
		free(p);
		return 1;
	}
	if (!m) {
		if (a->json)
			printf("{\"installed\": false}\n");
		else
			printf("bangerd is not installed as a service (sudo banger system install sets it up)\n");
		return 1;
	}
	char *active = unit_state("is-active"), *enabled = unit_state("is-enabled");
	json_object_set_new(m, "installed", json_true());
	json_object_set_new(m, "active", json_string(active));
	json_object_set_new(m, "enabled", json_string(enabled));
	if (a->json) {
		print_json(m);
	} else {
		char *svc = NULL;
		if (asprintf(&svc, "%s %s, %s", UNIT, active, enabled) < 0)
			abort();
		const char *keys[][2] = {
			{"version", "version"}, {"installed", "installed_at"}, {"updated", "updated_at"}, {"user", "user"},
			{"unit", "unit"}, {"bangerd", "bangerd"}, {"config", "config"}, {"state", "state_dir"},
			{"socket", "socket"},
		};
		const char *rows[20] = {"service", svc};
		size_t nrows = 1;
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			rows[nrows * 2] = keys[i][0];
			rows[nrows * 2 + 1] = json_string_value(json_object_get(m, keys[i][1])) ?: "-";
			nrows++;
		}
		print_table(rows, 2, nrows);
		free(svc);
	}
	int rc = !strcmp(active, "active") ? 0 : EXIT_DAEMON;
	free(active);
	free(enabled);
	json_decref(m);
	return rc;
}

int cmd_system_restart(const command *cmd, args *a)
{
	(void)cmd;
	if (need_root("restart", "restarts " UNIT))
		return 1;
	json_t *m = read_meta(NULL);
	if (!m)
		return fail(1, "bangerd is not installed as a service: sudo banger system install");
	json_decref(m);
	static const char *const restart[] = {"restart", UNIT, NULL};
	if (must(restart))
		return 1;
	char *active = unit_state("is-active");
	int rc = strcmp(active, "active") ? fail(1, "%s is %s after the restart: journalctl -u bangerd says why", UNIT, active) : 0;
	if (!rc && a->json)
		printf("{\"restarted\": true, \"active\": \"%s\"}\n", active);
	else if (!rc)
		printf("restarted %s (%s); running VMs kept running\n", UNIT, active);
	free(active);
	return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	int r = flag == FTW_DP ? rmdir(path) : unlink(path);
	if (r != 0 && errno != ENOENT) {
		fail(0, "cannot remove %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int rm_tree(const char *path)
{
	if (access(path, F_OK) != 0)
		return 0;
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 ? 1 : 0;
}

/* --purge would delete the disks of VMs still running: refused while the
 * service's bangerd reports any (stopped through it they lose nothing). */
static int running_vms(void)
{
	char *sock = at(SOCKET_PATH), *uri = NULL;
	if (asprintf(&uri, "unix:%s", sock) < 0)
		abort();
	free(sock);
	banger_ctx *ctx;
	json_t *res = NULL;
	int rc = banger_ctx_open(&ctx, uri, NULL);
	free(uri);
	if (rc)
		return 0;
	rc = call(ctx, "vm.list", "{\"all\": false}", &res);
	banger_ctx_unref(ctx);
	if (rc)
		return 0;
	json_t *vms = json_object_get(res, "vms"), *vm;
	size_t i, n = json_array_size(vms);
	if (n) {
		char names[256] = "";
		json_array_foreach(vms, i, vm) snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
							i ? " " : "", json_string_value(json_object_get(vm, "name")));
		fail(0, "%zu VM%s running (%s): stop %s first (banger vm stop %s), or uninstall without --purge, "
			"which keeps VMs and their disks",
		     n, n == 1 ? " is" : "s are", names, n == 1 ? "it" : "them", names);
	}
	json_decref(res);
	return (int)n;
}

int cmd_system_uninstall(const command *cmd, args *a)
{
	(void)cmd;
	bool purge = flag_set(a, "--purge");
	if (need_root("uninstall", "removes " UNIT_PATH))
		return 1;
	if (purge && running_vms())
		return 1;
	char *unit = at(UNIT_PATH), *meta = at(META_PATH);
	json_t *m = read_meta(NULL);
	bool had_unit = access(unit, F_OK) == 0;
	int rc = 0;
	if (had_unit) {
		/* stopping leaves the VMs running (KillMode=process) */
		static const char *const disable[] = {"disable", "--now", UNIT, NULL};
		rc = must(disable);
		if (!rc && unlink(unit) != 0 && errno != ENOENT)
			rc = fail(1, "cannot remove %s: %s", unit, strerror(errno));
		static const char *const reload[] = {"daemon-reload", NULL};
		if (!rc)
			rc = must(reload);
	}
	if (!rc && unlink(meta) != 0 && errno != ENOENT)
		rc = fail(1, "cannot remove %s: %s", meta, strerror(errno));
	if (!rc) {
		if (had_unit || m)
			printf("removed %s (disabled and stopped; running VMs keep running) and %s\n", unit, meta);
		else
			printf("bangerd is not installed as a service: no unit to remove\n");
	}
	if (!rc && purge) {
		const char *what[][2] = {
			{STATE_DIR, "state.db, images, kernels, VM disks, SSH keys, logs"},
			{CACHE_DIR, "downloads"},
			{CONFIG_DIR, "config.toml"},
			{RUNTIME_DIR, "the socket, VM runtime directories"},
		};
		printf("--purge removes:\n");
		for (size_t i = 0; i < 4; i++) {
			char *p = at(what[i][0]);
			printf("  %s (%s)\n", p, what[i][1]);
			free(p);
		}
		fflush(stdout);
		for (size_t i = 0; i < 4; i++) {
			char *p = at(what[i][0]);
			rc |= rm_tree(p);
			free(p);
		}
		if (!rc)
			printf("purged\n");
	} else if (!rc) {
		char *s = at(STATE_DIR), *c = at(CACHE_DIR), *f = at(CONFIG_PATH);
		printf("kept %s, %s and %s (banger system uninstall --purge removes them)\n", s, c, f);
		free(s);
		free(c);
		free(f);
	}
	json_decref(m);
	free(unit);
	free(meta);
	return rc ? 1 : 0;
}

/* banger system install|status|restart|uninstall: bangerd as a systemd
 * service (data/systemd/bangerd.service.in) over the system layout: config
 * /etc/banger/config.toml, state /var/lib/banger (install.json: what was
 * installed, when, by which banger), cache /var/cache/banger, socket
 * /run/banger/bangerd.sock.
 *
 * With --user U (not root) bangerd runs as U (docs/privileges.md): a
 * drop-in, bangerd.service.d/owner.conf, sets User=, Group=, the kvm group
 * and CAP_NET_BIND_SERVICE alone, and requires the root helper's instance
 * bangerd-root@<uid of U>.service (data/systemd/bangerd-root@.service.in,
 * written beside it, ExecStart naming the bangerd-root beside this banger),
 * which does the network steps that need root. State and cache belong to
 * U. Without --user the service runs as root and neither is there.
 *
 * Test hooks (tests/integration/test_system.py; the test hosts have no
 * systemd as PID 1): BANGER_SYSTEM_ROOT prefixes every path these commands
 * read or write (as DESTDIR does; the unit's own text keeps the system
 * paths) and BANGER_SYSTEMCTL replaces systemctl. */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
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
extern const char system_unit_template[];      /* system_unit.c, generated */
extern const char system_root_unit_template[]; /* the helper's, likewise */

#define UNIT "bangerd.service"
#define UNIT_PATH "/etc/systemd/system/" UNIT
#define DROPIN_DIR "/etc/systemd/system/" UNIT ".d"
#define DROPIN_PATH DROPIN_DIR "/owner.conf"
#define ROOT_UNIT_PATH "/etc/systemd/system/bangerd-root@.service"
#define ROOT_RUNTIME_DIR "/run/banger-root"
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

/* "active", "inactive", "failed" ... of a unit (malloc'd; "unknown" when
 * systemctl could not say). */
static char *state_of(const char *verb, const char *unit)
{
	const char *sargs[] = {verb, unit, NULL};
	char *s = NULL;
	if (systemctl(sargs, &s) < 0 || !s || !*s) {
		free(s);
		s = strdup("unknown");
	}
	return s;
}

static char *unit_state(const char *verb)
{
	return state_of(verb, UNIT);
}

/* The helper's instance for uid: "bangerd-root@<uid>.service". */
static void helper_unit(char out[64], unsigned long uid)
{
	snprintf(out, 64, "bangerd-root@%lu.service", uid);
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

/* A program this banger goes with: $env, else the one beside it (or, in a
 * build tree, in ../<name>/); an absolute, resolved path (malloc'd). */
static char *find_beside(const char *env_name, const char *name)
{
	const char *env = getenv(env_name);
	if (env && *env)
		return realpath(env, NULL);
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return NULL;
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	for (size_t i = 0; i < 2; i++) {
		char *cand = NULL;
		if ((i == 0 ? asprintf(&cand, "%s/%s", self, name) : asprintf(&cand, "%s/../%s/%s", self, name, name)) < 0)
			abort();
		char *real = access(cand, X_OK) == 0 ? realpath(cand, NULL) : NULL;
		free(cand);
		if (real)
			return real;
	}
	return NULL;
}

/* The bangerd this banger runs ($BANGERD, else beside it). */
static char *find_bangerd(void)
{
	return find_beside("BANGERD", "bangerd");
}

/* A path that can stand in a unit's ExecStart as it is. */
static bool unit_safe(const char *path)
{
	return !path[strcspn(path, " \t\n\"\\%$;")];
}

/* template with its mark (the one @NAME@ in ExecStart) replaced by exe
 * (malloc'd). */
static char *fill(const char *template, const char *mark, const char *exe)
{
	const char *at_mark = strstr(template, mark);
	char *text = NULL;
	if (!at_mark || asprintf(&text, "%.*s%s%s", (int)(at_mark - template), template, exe, at_mark + strlen(mark)) < 0)
		abort();
	return text;
}

/* The unit with ExecStart naming bangerd (malloc'd). */
static char *unit_text(const char *bangerd)
{
	return fill(system_unit_template, "@BANGERD@", bangerd);
}

/* The drop-in that runs bangerd.service as pw's user (malloc'd): the
 * helper's instance first, the owner's uid and primary group, the kvm group
 * where there is one (Debian's /dev/kvm is root:kvm 0660), and of all
 * capabilities only CAP_NET_BIND_SERVICE, for the guests' DNS listener on
 * <bridge_ip>:53. */
static char *dropin_text(const struct passwd *pw)
{
	char helper[64], gid[32];
	helper_unit(helper, (unsigned long)pw->pw_uid);
	struct group *gr = getgrgid(pw->pw_gid);
	snprintf(gid, sizeof(gid), "%lu", (unsigned long)pw->pw_gid);
	const char *group = gr && gr->gr_name ? gr->gr_name : gid;
	char *text = NULL;
	if (asprintf(&text,
		     "# Written by banger system install --user %s: bangerd runs as %s, and the root\n"
		     "# helper %s does the steps that need root (docs/privileges.md).\n"
		     "[Unit]\n"
		     "Requires=%s\n"
		     "After=%s\n"
		     "\n"
		     "[Service]\n"
		     "User=%s\n"
		     "Group=%s\n"
		     "%s"
		     "AmbientCapabilities=CAP_NET_BIND_SERVICE\n"
		     "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n",
		     pw->pw_name, pw->pw_name, helper, helper, helper, pw->pw_name, group,
		     getgrnam("kvm") ? "SupplementaryGroups=kvm\n" : "") < 0)
		abort();
	return text;
}

/* Writes path with text when it differs (or is missing); *changed says
 * whether it did. */
static int write_if_changed(const char *path, const char *text, bool *changed)
{
	char *cur = slurp(path);
	*changed = !cur || strcmp(cur, text) != 0;
	free(cur);
	return *changed ? write_atomic(path, text, 0644) : 0;
}

/* Removes path if it is there; *removed says whether it was. */
static int remove_file(const char *path, bool *removed)
{
	*removed = false;
	if (unlink(path) == 0)
		*removed = true;
	else if (errno != ENOENT)
		return fail(1, "cannot remove %s: %s", path, strerror(errno));
	return 0;
}

/* Gives name (under dirfd) and everything below it to uid:gid, never
 * following a link: every step is relative to a directory already opened
 * with O_NOFOLLOW, so a tree its old owner can still change cannot send the
 * walk outside it. */
static int chown_at(int dirfd, const char *name, const char *path, uid_t uid, gid_t gid, int depth)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : fail(1, "cannot chown %s: %s", path, strerror(errno));
	if ((st.st_uid != uid || st.st_gid != gid) && fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0 &&
	    errno != ENOENT)
		return fail(1, "cannot chown %s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return 0;
	if (depth > 64)
		return fail(1, "cannot chown %s: nested over 64 directories deep", path);
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return fail(1, "cannot chown inside %s: %s", path, strerror(errno));
	}
	int rc = 0;
	struct dirent *ent;
	while (!rc && (ent = readdir(d)) != NULL) {
		if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, ".."))
			continue;
		char *sub = NULL;
		if (asprintf(&sub, "%s/%s", path, ent->d_name) < 0)
			abort();
		rc = chown_at(fd, ent->d_name, sub, uid, gid, depth + 1);
		free(sub);
	}
	closedir(d);
	return rc;
}

static int chown_tree(const char *path, uid_t uid, gid_t gid)
{
	return chown_at(AT_FDCWD, path, path, uid, gid, 0);
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

/* The owner --user names: the user, uid and primary group (copied). */
typedef struct {
	char *name;
	uid_t uid;
	gid_t gid;
	char *dropin; /* the drop-in's text; NULL for root */
} owner;

int cmd_system_install(const command *cmd, args *a)
{
	(void)cmd;
	const char *user = flag_value(a, "--user");
	owner o = {.name = strdup("root")};
	if (user) {
		struct passwd *pw = getpwnam(user);
		if (!pw) {
			free(o.name);
			return fail(EXIT_USAGE, "--user %s: no such user", user);
		}
		if (pw->pw_uid != 0) {
			free(o.name);
			o = (owner){.name = strdup(pw->pw_name), .uid = pw->pw_uid, .gid = pw->pw_gid,
				    .dropin = dropin_text(pw)};
		}
	}
	bool as_user = o.uid != 0;
	char *bangerd = NULL, *helper_exe = NULL;
	int rc = 0;
	if (need_root("install", "writes " UNIT_PATH ", " CONFIG_DIR " and " STATE_DIR)) {
		rc = 1;
		goto out;
	}
	if (!(bangerd = find_bangerd())) {
		rc = fail(1, "no bangerd beside this banger: install banger first, or set BANGERD=/path/to/bangerd");
		goto out;
	}
	if (as_user && !(helper_exe = find_beside("BANGERD_ROOT", "bangerd-root"))) {
		rc = fail(1, "no bangerd-root beside this banger (bangerd runs as %s and needs the root helper): "
			     "install banger first, or set BANGERD_ROOT=/path/to/bangerd-root",
			  o.name);
		goto out;
	}
	const char *exes[] = {bangerd, helper_exe};
	for (size_t i = 0; i < 2; i++)
		if (exes[i] && !unit_safe(exes[i])) {
			rc = fail(1, "cannot name %s in a unit's ExecStart: move banger to a plain path", exes[i]);
			goto out;
		}
	json_t *old = read_meta(NULL);
	json_int_t old_uid = json_integer_value(json_object_get(old, "uid"));
	char *unit = at(UNIT_PATH), *cfg = at(CONFIG_PATH), *state = at(STATE_DIR), *cache = at(CACHE_DIR),
	     *unitdir = at("/etc/systemd/system"), *cfgdir = at(CONFIG_DIR), *meta = at(META_PATH),
	     *dropin = at(DROPIN_PATH), *dropindir = at(DROPIN_DIR), *rootunit = at(ROOT_UNIT_PATH);
	char *text = unit_text(bangerd), *root_text = helper_exe ? fill(system_root_unit_template, "@BANGERD_ROOT@",
									  helper_exe)
								 : NULL;
	bool unit_written = false, config_written = false, dropin_changed = false, helper_written = false,
	     helper_removed = false;
	char helper[64] = "";
	if (as_user)
		helper_unit(helper, (unsigned long)o.uid);
	rc = mkdirs(unitdir, 0755) || mkdirs(cfgdir, 0755) || mkdirs(state, 0700) || mkdirs(cache, 0700);
	if (!rc)
		rc = write_if_changed(unit, text, &unit_written);
	/* the owner: a drop-in and the helper's unit, or neither */
	if (!rc && as_user)
		rc = mkdirs(dropindir, 0755) || write_if_changed(dropin, o.dropin, &dropin_changed) ||
		     write_if_changed(rootunit, root_text, &helper_written);
	if (!rc && !as_user) {
		rc = remove_file(dropin, &dropin_changed) || remove_file(rootunit, &helper_removed);
		if (!rc && rmdir(dropindir) != 0 && errno != ENOENT && errno != ENOTEMPTY)
			rc = fail(1, "cannot remove %s: %s", dropindir, strerror(errno));
	}
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
	/* state and cache are the service user's before its first start (and
	 * root's again when it goes back to root: a tree the user can change
	 * must not be what a root bangerd trusts) */
	if (!rc)
		rc = chown_tree(state, o.uid, o.gid) || chown_tree(cache, o.uid, o.gid);
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	char now[32];
	time_t t = time(NULL);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	const char *first = json_string_value(json_object_get(old, "installed_at"));
	json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "version",
			      banger_version_number(), "stamp", banger_version(), "installed_at", first ? first : now,
			      "updated_at", now, "user", o.name, "uid", (json_int_t)o.uid, "unit", UNIT_PATH, "bangerd",
			      bangerd, "banger", self, "config", CONFIG_PATH, "state_dir", STATE_DIR, "cache_dir",
			      CACHE_DIR, "runtime_dir", RUNTIME_DIR, "socket", SOCKET_PATH);
	if (as_user) {
		json_object_set_new(m, "dropin", json_string(DROPIN_PATH));
		json_object_set_new(m, "helper_unit", json_string(helper));
		json_object_set_new(m, "bangerd_root", json_string(helper_exe));
		json_object_set_new(m, "root_socket", json_string(ROOT_RUNTIME_DIR "/root.sock"));
	}
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
		rc = must(reload);
	/* another owner's helper (or one no longer needed) goes first */
	char old_helper[64];
	helper_unit(old_helper, (unsigned long)old_uid);
	const char *disable_old[] = {"disable", "--now", old_helper, NULL};
	if (!rc && old_uid > 0 && (json_int_t)o.uid != old_uid)
		rc = must(disable_old);
	/* the helper before bangerd, which requires it */
	const char *enable_helper[] = {"enable", "--now", helper, NULL}, *restart_helper[] = {"try-restart", helper, NULL};
	if (!rc && as_user)
		rc = must(enable_helper);
	if (!rc && as_user && old && helper_written)
		rc = must(restart_helper);
	if (!rc)
		rc = must(enable);
	/* a changed unit (a new bangerd path, new settings, another owner)
	 * takes effect now */
	if (!rc && old && (unit_written || dropin_changed))
		rc = must(restart);
	char *active = rc ? NULL : unit_state("is-active");
	char *helper_active = rc || !as_user ? NULL : state_of("is-active", helper);
	if (!rc && a->json) {
		json_object_set_new(m, "unit_written", json_boolean(unit_written));
		json_object_set_new(m, "config_written", json_boolean(config_written));
		json_object_set_new(m, "active", json_string(active));
		if (as_user)
			json_object_set_new(m, "helper_active", json_string(helper_active));
		print_json(m);
	} else if (!rc) {
		char *unit_row = NULL, *cfg_row = NULL, *svc_row = NULL, *user_row = NULL, *helper_row = NULL;
		if (asprintf(&unit_row, "%s (%s)", unit, unit_written ? "written" : "unchanged") < 0 ||
		    asprintf(&cfg_row, "%s (%s)", cfg, config_written ? "written" : "kept: never overwritten") < 0 ||
		    asprintf(&svc_row, "%s, enabled (%s)", UNIT, active) < 0 ||
		    asprintf(&user_row, "%s (uid %lu)", o.name, (unsigned long)o.uid) < 0 ||
		    asprintf(&helper_row, "%s, enabled (%s): %s", helper, helper_active ? helper_active : "",
			     helper_exe ? helper_exe : "") < 0)
			abort();
		const char *rows[] = {"unit", unit_row, "bangerd", bangerd, "user", user_row, "config", cfg_row,
				      "state", state, "socket", SOCKET_PATH, "service", svc_row, "helper", helper_row};
		print_table(rows, 2, as_user ? 8 : 7);
		free(unit_row);
		free(cfg_row);
		free(svc_row);
		free(user_row);
		free(helper_row);
	}
	free(active);
	free(helper_active);
	json_decref(m);
	json_decref(old);
	free(text);
	free(root_text);
	free(unit);
	free(cfg);
	free(state);
	free(cache);
	free(unitdir);
	free(cfgdir);
	free(meta);
	free(dropin);
	free(dropindir);
	free(rootunit);
out:
	free(bangerd);
	free(helper_exe);
	free(o.name);
	free(o.dropin);
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
	const char *helper = json_string_value(json_object_get(m, "helper_unit"));
	char *helper_active = helper ? state_of("is-active", helper) : NULL,
	     *helper_enabled = helper ? state_of("is-enabled", helper) : NULL;
	json_object_set_new(m, "installed", json_true());
	json_object_set_new(m, "active", json_string(active));
	json_object_set_new(m, "enabled", json_string(enabled));
	if (helper) {
		json_object_set_new(m, "helper_active", json_string(helper_active));
		json_object_set_new(m, "helper_enabled", json_string(helper_enabled));
	}
	if (a->json) {
		print_json(m);
	} else {
		char *svc = NULL, *user = NULL, *helper_row = NULL;
		const char *name = json_string_value(json_object_get(m, "user"));
		if (asprintf(&svc, "%s %s, %s", UNIT, active, enabled) < 0 ||
		    asprintf(&user, "%s (uid %lld)", name ? name : "-",
			     (long long)json_integer_value(json_object_get(m, "uid"))) < 0 ||
		    asprintf(&helper_row, "%s %s, %s", helper ? helper : "-", helper_active ? helper_active : "-",
			     helper_enabled ? helper_enabled : "-") < 0)
			abort();
		const char *keys[][2] = {
			{"version", "version"}, {"installed", "installed_at"}, {"updated", "updated_at"},
			{"unit", "unit"}, {"bangerd", "bangerd"}, {"config", "config"}, {"state", "state_dir"},
			{"socket", "socket"},
		};
		const char *rows[24] = {"service", svc, "user", user};
		size_t nrows = 2;
		if (helper) {
			rows[nrows * 2] = "helper";
			rows[nrows * 2 + 1] = helper_row;
			nrows++;
		}
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			rows[nrows * 2] = keys[i][0];
			rows[nrows * 2 + 1] = json_string_value(json_object_get(m, keys[i][1])) ?: "-";
			nrows++;
		}
		print_table(rows, 2, nrows);
		free(svc);
		free(user);
		free(helper_row);
	}
	/* active: bangerd, and the helper it needs when it runs as a user */
	int rc = !strcmp(active, "active") && (!helper || !strcmp(helper_active, "active")) ? 0 : EXIT_DAEMON;
	free(active);
	free(enabled);
	free(helper_active);
	free(helper_enabled);
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
	char *unit = at(UNIT_PATH), *meta = at(META_PATH), *dropin = at(DROPIN_PATH), *dropindir = at(DROPIN_DIR),
	     *rootunit = at(ROOT_UNIT_PATH);
	json_t *m = read_meta(NULL);
	const char *helper = json_string_value(json_object_get(m, "helper_unit"));
	bool had_unit = access(unit, F_OK) == 0, removed = false;
	int rc = 0;
	if (had_unit) {
		/* stopping leaves the VMs running (KillMode=process) */
		static const char *const disable[] = {"disable", "--now", UNIT, NULL};
		rc = must(disable);
	}
	/* then the helper it required (the taps and NAT rules stay with the VMs) */
	const char *disable_helper[] = {"disable", "--now", helper, NULL};
	if (!rc && helper)
		rc = must(disable_helper);
	if (!rc)
		rc = remove_file(unit, &removed) || remove_file(dropin, &removed) || remove_file(rootunit, &removed);
	if (!rc && rmdir(dropindir) != 0 && errno != ENOENT && errno != ENOTEMPTY)
		rc = fail(1, "cannot remove %s: %s", dropindir, strerror(errno));
	static const char *const reload[] = {"daemon-reload", NULL};
	if (!rc && (had_unit || helper))
		rc = must(reload);
	if (!rc && unlink(meta) != 0 && errno != ENOENT)
		rc = fail(1, "cannot remove %s: %s", meta, strerror(errno));
	if (!rc) {
		if (had_unit || m)
			printf("removed %s%s%s (disabled and stopped; running VMs keep running) and %s\n", unit,
			       helper ? ", its drop-in and the root helper's " : "", helper ? helper : "", meta);
		else
			printf("bangerd is not installed as a service: no unit to remove\n");
	}
	if (!rc && purge) {
		const char *what[][2] = {
			{STATE_DIR, "state.db, images, kernels, VM disks, SSH keys, logs"},
			{CACHE_DIR, "downloads"},
			{CONFIG_DIR, "config.toml"},
			{RUNTIME_DIR, "the socket, VM runtime directories"},
			{ROOT_RUNTIME_DIR, "the root helper's socket"},
		};
		size_t nwhat = sizeof(what) / sizeof(what[0]);
		printf("--purge removes:\n");
		for (size_t i = 0; i < nwhat; i++) {
			char *p = at(what[i][0]);
			if (i < 4 || access(p, F_OK) == 0)
				printf("  %s (%s)\n", p, what[i][1]);
			free(p);
		}
		fflush(stdout);
		for (size_t i = 0; i < nwhat; i++) {
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
	free(dropin);
	free(dropindir);
	free(rootunit);
	return rc ? 1 : 0;
}

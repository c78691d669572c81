/* banger update (docs/releases.md): fetch the release's manifest and its
 * signature, verify, stage every file under the prefix and check its
 * sha256 and size, then swap them in under a journal, restart bangerd and
 * check that it answers with the new version. Any failure after the first
 * swap restores the previous files and daemon; the journal lets the next
 * run roll back an update that was killed half way.
 *
 * Swapping one file: link(P, P.prev) keeps the old inode under a second
 * name, then rename(staged, P) replaces P atomically, so P always exists.
 * Rolling back: rename(P.prev, P), or unlink(P) for a file the release
 * added. Both are idempotent, so a rollback that is itself killed is simply
 * run again. */
#include "update.h"
#include "core/config.h"
#include "core/http.h"
#include "core/paths.h"
#include "core/proc.h"
#include "rpc/client.h"
#include "update/update_key.h"

#include <banger/update.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define JOURNAL ".banger-update.json"
#define STAGING ".banger-update-"

typedef struct {
	banger_event_cb cb;
	void *ud;
	json_t *log; /* every message, for the report */
} upd;

static void say(upd *u, const char *stage, const char *fmt, ...) BNG_PRINTF(3, 4);
static void say(upd *u, const char *stage, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = bng_vasprintf(fmt, ap);
	va_end(ap);
	json_array_append_new(u->log, json_string(msg));
	if (u->cb) {
		json_t *ev = json_pack("{s:s,s:s}", "stage", stage, "message", msg);
		char *text = json_dumps(ev, JSON_COMPACT);
		u->cb(text, u->ud);
		free(text);
		json_decref(ev);
	}
	free(msg);
}

static void point(const char *step)
{
	if (bng_update_test_point)
		bng_update_test_point(step);
}

static void fsync_dir_of(const char *path)
{
	char *dir = bng_strdup(path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else if (slash)
		*slash = '\0';
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

/* ---- the release: latest version, manifest, signature ---- */

static char *trusted_key(void)
{
	const char *path = bng_update_test_key ? bng_update_test_key() : NULL;
	if (path) {
		char *pem = NULL;
		size_t len;
		if (bng_read_file(path, &pem, &len) == 0)
			return pem;
	}
	return bng_strdup(BNG_UPDATE_KEY_PEM);
}

static int fetch_latest(const char *url, char **version)
{
	char *u = bng_asprintf("%s/latest", url), *body = NULL;
	size_t len;
	int rc = bng_http_get(u, 256, &body, &len);
	if (rc) {
		rc = bng_err(rc, "cannot read the latest release version: %s", banger_error_last());
		free(u);
		return rc;
	}
	free(u);
	body[strcspn(body, " \t\r\n")] = '\0';
	if (bng_update_check_version(body)) {
		rc = bng_err(BANGER_EPROTO, "%s/latest does not hold a release version", url);
		free(body);
		return rc;
	}
	*version = body;
	return 0;
}

/* Fetches <url>/<version>/manifest.json and .sig, verifies, parses. */
static int fetch_manifest(const char *url, const char *version, bool asked, bng_update_manifest *m)
{
	char *mu = bng_asprintf("%s/%s/manifest.json", url, version);
	char *su = bng_asprintf("%s/%s/manifest.json.sig", url, version);
	char *text = NULL, *sig = NULL, *key = NULL;
	size_t len = 0, sig_len = 0;
	int rc = bng_http_get(mu, BNG_UPDATE_MAX_MANIFEST, &text, &len);
	if (rc == BANGER_ENOTFOUND && asked) {
		rc = bng_err(BANGER_ENOTFOUND, "there is no release %s at %s", version, url);
		goto out;
	}
	if (rc) {
		rc = bng_err(rc, "cannot fetch the manifest of %s: %s", version, banger_error_last());
		goto out;
	}
	rc = bng_http_get(su, 1024, &sig, &sig_len);
	if (rc) {
		rc = bng_err(rc, "cannot fetch the signature of release %s: %s", version, banger_error_last());
		goto out;
	}
	key = trusted_key();
	rc = bng_update_verify(key, text, len, sig, sig_len);
	if (rc) {
		rc = bng_err(rc, "the manifest of release %s is not signed by the release key (%s): refusing it", version,
			     banger_error_last());
		goto out;
	}
	rc = bng_update_manifest_parse(m, text, len);
	if (rc) {
		rc = bng_err(rc, "release %s: %s", version, banger_error_last());
		goto out;
	}
	struct utsname un;
	uname(&un);
	if (strcmp(m->version, version)) {
		rc = bng_err(BANGER_EPROTO, "the manifest at %s is for release %s, not %s: refusing it", mu, m->version,
			     version);
	} else if (strcmp(m->arch, un.machine)) {
		rc = bng_err(BANGER_EUNSUPPORTED, "release %s is built for %s, this host is %s", version, m->arch,
			     un.machine);
	}
	if (rc)
		bng_update_manifest_free(m);
out:
	free(mu);
	free(su);
	free(text);
	free(sig);
	free(key);
	return rc;
}

/* ---- the install prefix ---- */

static int find_prefix(const char *given, char **out)
{
	char buf[PATH_MAX];
	if (given && *given) {
		if (!realpath(given, buf))
			return bng_err_errno(bng_code_from_errno(errno), errno, "install prefix %s", given);
		*out = bng_strdup(buf);
		return 0;
	}
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n <= 0)
		return bng_err_errno(BANGER_EIO, errno, "cannot read /proc/self/exe");
	buf[n] = '\0';
	char *slash = strrchr(buf, '/');
	if (slash)
		*slash = '\0';
	slash = strrchr(buf, '/');
	if (!slash || strcmp(slash, "/bin"))
		return bng_err(BANGER_EINVAL, "cannot tell where banger is installed: %s is not a bin/ directory", buf);
	*slash = '\0';
	*out = bng_strdup(*buf ? buf : "/");
	return 0;
}

/* The nearest existing directory holding path: where creating it needs
 * write permission. */
static char *existing_parent(const char *path)
{
	char *dir = bng_strdup(path);
	for (;;) {
		char *slash = strrchr(dir, '/');
		if (!slash || slash == dir) {
			free(dir);
			return bng_strdup("/");
		}
		*slash = '\0';
		struct stat st;
		if (stat(dir, &st) == 0)
			return dir;
	}
}

static int need_write(const char *dir, const char *prefix)
{
	if (access(dir, W_OK) == 0)
		return 0;
	return bng_err(BANGER_EPERM, "no permission to change the banger installed in %s (%s is not writable by uid %d)",
		       prefix, dir, (int)geteuid());
}

static char *join(const char *a, const char *b) { return bng_asprintf("%s/%s", a, b); }

/* ---- the daemon ---- */

typedef struct {
	bool running;
	bool supervised; /* bangerd.service's: systemd restarts it, not us */
	pid_t pid;
	char *stamp;
	char *state_dir;
} daemon_info;

static void daemon_info_free(daemon_info *d)
{
	free(d->stamp);
	free(d->state_dir);
	memset(d, 0, sizeof(*d));
}

static int daemon_probe(const char *socket_path, daemon_info *d)
{
	memset(d, 0, sizeof(*d));
	int fd;
	if (bng_client_connect(socket_path, &fd, &d->pid) != 0)
		return BANGER_ECONNECT;
	close(fd);
	json_t *st = NULL;
	int rc = bng_client_exec(socket_path, "engine.status", NULL, &st, NULL);
	if (rc)
		return rc;
	d->running = true;
	d->supervised = json_is_true(json_object_get(st, "supervised"));
	d->stamp = bng_strdup(json_string_value(json_object_get(st, "stamp")) ?: "");
	const char *sd = json_string_value(json_object_get(st, "state_dir"));
	d->state_dir = sd ? bng_strdup(sd) : NULL;
	json_decref(st);
	return 0;
}

static bool stamp_is(const char *stamp, const char *version)
{
	size_t n = strlen(version);
	return stamp && !strncmp(stamp, version, n) && (stamp[n] == ' ' || stamp[n] == '\0');
}

/* Runs exe --version with a 10 s bound; *out gets its first line. */
static int run_version(const char *exe, char **out)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return bng_err_errno(BANGER_EIO, errno, "pipe");
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return bng_err_errno(BANGER_EIO, errno, "fork");
	}
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		execl(exe, exe, "--version", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char buf[512];
	size_t got = 0;
	long long deadline = bng_now_ms() + 10000;
	for (;;) {
		long long left = deadline - bng_now_ms();
		struct pollfd pf = {p[0], POLLIN, 0};
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			break;
		ssize_t n = read(p[0], buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == sizeof(buf) - 1)
			break;
	}
	close(p[0]);
	buf[got] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	int status = 0;
	if (bng_now_ms() >= deadline)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return bng_err(BANGER_EIO, "%s --version failed (status %d): %s", exe,
			       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), *buf ? buf : "no output");
	*out = bng_strdup(buf);
	return 0;
}

/* `systemctl restart bangerd.service` (BANGER_SYSTEMCTL replaces systemctl
 * in tests), then the service's new daemon probed until it answers (30 s):
 * systemd returns once it has started the process. */
static int service_restart(upd *u, const char *socket_path, daemon_info *d)
{
	const char *exe = getenv("BANGER_SYSTEMCTL");
	const char *argv[] = {exe && *exe ? exe : "systemctl", "restart", "bangerd.service", NULL};
	int rc = bng_run(argv, NULL, NULL, NULL, NULL, NULL);
	if (rc)
		return bng_err(rc, "systemctl restart bangerd.service: %s", banger_error_last());
	say(u, "restart", "restarted bangerd.service with systemctl");
	for (int tries = 0; tries < 300; tries++) {
		if (daemon_probe(socket_path, d) == 0)
			return 0;
		daemon_info_free(d);
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return bng_err(BANGER_ETIMEDOUT, "bangerd.service did not answer on %s within 30 s of its restart", socket_path);
}

/* The installed bangerd answers as version: restarted on the socket when
 * one ran before (by systemd when it is the service's), else asked for
 * --version. */
static int health_check(upd *u, const char *prefix, const char *socket_path, bool restart, bool supervised,
			const char *version)
{
	char *exe = join(prefix, "bin/bangerd");
	int rc;
	if (restart) {
		daemon_info d = {0};
		rc = supervised ? service_restart(u, socket_path, &d) : bng_client_spawn_daemon(exe, socket_path);
		if (!rc) {
			if (!supervised)
				rc = daemon_probe(socket_path, &d);
			if (rc)
				rc = bng_err(rc, "bangerd started but did not answer engine.status: %s", banger_error_last());
			else if (!stamp_is(d.stamp, version))
				rc = bng_err(BANGER_EPROTO, "bangerd answers as %s, not %s", d.stamp, version);
			else
				say(u, "health", "bangerd %s answers on %s (pid %d)", d.stamp, socket_path, (int)d.pid);
			daemon_info_free(&d);
		}
	} else {
		char *line = NULL;
		rc = run_version(exe, &line);
		if (!rc && !(bng_str_has_prefix(line, "bangerd ") && stamp_is(line + 8, version)))
			rc = bng_err(BANGER_EPROTO, "%s --version says '%s', not %s", exe, line, version);
		else if (!rc)
			say(u, "health", "%s reports %s", exe, line + 8);
		free(line);
	}
	free(exe);
	return rc;
}

/* ---- journal, swap, rollback ---- */

static int journal_write(const char *prefix, json_t *j)
{
	char *path = join(prefix, JOURNAL);
	char *text = json_dumps(j, JSON_INDENT(2));
	int rc = bng_write_file_atomic(path, text, strlen(text), 0644);
	fsync_dir_of(path);
	free(text);
	free(path);
	return rc;
}

/* Puts back what the journal's files were; returns how many changed. */
static int restore_files(const char *prefix, json_t *files, json_t *restored)
{
	int n = 0;
	for (size_t i = json_array_size(files); i-- > 0;) {
		json_t *f = json_array_get(files, i);
		const char *rel = json_string_value(json_object_get(f, "path"));
		if (!rel)
			continue;
		char *p = join(prefix, rel), *prev = bng_asprintf("%s.prev", p);
		struct stat st;
		if (json_is_true(json_object_get(f, "had_old"))) {
			if (lstat(prev, &st) == 0) {
				if (rename(prev, p) == 0)
					n++, json_array_append_new(restored, json_string(rel));
				unlink(prev); /* still there when both named one inode */
			}
		} else if (lstat(p, &st) == 0 && json_is_true(json_object_get(f, "swapped"))) {
			if (unlink(p) == 0)
				n++, json_array_append_new(restored, json_string(rel));
		}
		fsync_dir_of(p);
		free(p);
		free(prev);
	}
	return n;
}

static void drop_prev(const char *prefix, json_t *files)
{
	size_t i;
	json_t *f;
	json_array_foreach(files, i, f) {
		char *prev = bng_asprintf("%s/%s.prev", prefix, json_string_value(json_object_get(f, "path")) ?: "");
		unlink(prev);
		free(prev);
	}
}

static void remove_staging_dirs(const char *prefix)
{
	DIR *d = opendir(prefix);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		if (bng_str_has_prefix(e->d_name, STAGING)) {
			char *p = join(prefix, e->d_name);
			bng_rm_rf(p);
			free(p);
		}
	closedir(d);
}

/* Starts the (restored) bangerd again when one ran before the update and
 * none answers now; says what happened. */
static void restart_previous(upd *u, const char *prefix, const char *socket_path, const char *old_stamp,
			     bool supervised, char **note)
{
	daemon_info d;
	if (supervised) { /* the service's daemon may be the new one: systemd restarts the old files */
		/* A new bangerd that kept failing made systemd restart it
		 * (Restart=on-failure) until its start limit: then it refuses
		 * any start, ours too, until the unit's failure is reset. */
		const char *exe = getenv("BANGER_SYSTEMCTL");
		const char *argv[] = {exe && *exe ? exe : "systemctl", "reset-failed", "bangerd.service", NULL};
		bng_run(argv, NULL, NULL, NULL, NULL, NULL);
		if (service_restart(u, socket_path, &d) == 0) {
			*note = bng_asprintf("bangerd.service runs bangerd %s again (pid %d)", d.stamp, (int)d.pid);
			daemon_info_free(&d);
		} else {
			*note = bng_asprintf("bangerd.service did not start again: %s", banger_error_last());
		}
		say(u, "rollback", "%s", *note);
		return;
	}
	if (daemon_probe(socket_path, &d) == 0) {
		*note = bng_asprintf("bangerd %s answers on %s", d.stamp, socket_path);
		daemon_info_free(&d);
		return;
	}
	char *exe = join(prefix, "bin/bangerd");
	if (bng_client_spawn_daemon(exe, socket_path) == 0 && daemon_probe(socket_path, &d) == 0) {
		*note = bng_asprintf("bangerd %s runs again (pid %d)%s", d.stamp, (int)d.pid,
				     old_stamp && strcmp(old_stamp, d.stamp) ? " (not the stamp it had before!)" : "");
		daemon_info_free(&d);
	} else {
		*note = bng_asprintf("the previous bangerd did not start again: %s", banger_error_last());
	}
	say(u, "rollback", "%s", *note);
	free(exe);
}

/* An update that was killed half way: rolled back (or, if it had already
 * committed, its cleanup finished). */
static int recover(upd *u, const char *prefix, const char *socket_path)
{
	char *path = join(prefix, JOURNAL), *text = NULL;
	size_t len;
	if (bng_read_file(path, &text, &len) != 0) {
		free(path);
		return 0;
	}
	json_t *j = json_loadb(text, len, 0, NULL);
	free(text);
	const char *state = json_string_value(json_object_get(j, "state")) ?: "";
	json_t *files = json_object_get(j, "files");
	const char *to = json_string_value(json_object_get(j, "to")) ?: "?";
	const char *from = json_string_value(json_object_get(j, "from")) ?: "?";
	if (!strcmp(state, "committed")) {
		drop_prev(prefix, files);
		say(u, "recover", "finished the cleanup of the update to %s that was interrupted after it succeeded", to);
	} else {
		json_t *restored = json_array();
		restore_files(prefix, files, restored);
		char *names = NULL;
		size_t i;
		json_t *r;
		json_array_foreach(restored, i, r) {
			char *more = bng_asprintf("%s%s%s", names ? names : "", names ? ", " : "", json_string_value(r));
			free(names);
			names = more;
		}
		say(u, "recover", "rolled back the update from %s to %s that was interrupted: %s", from, to,
		    names ? names : "no file had been replaced yet");
		free(names);
		json_decref(restored);
		json_t *dm = json_object_get(j, "daemon");
		if (json_is_true(json_object_get(dm, "running"))) {
			char *note = NULL;
			restart_previous(u, prefix, json_string_value(json_object_get(dm, "socket")) ?: socket_path,
					 json_string_value(json_object_get(dm, "stamp")),
					 json_is_true(json_object_get(dm, "supervised")), &note);
			free(note);
		}
	}
	json_decref(j);
	remove_staging_dirs(prefix);
	unlink(path);
	fsync_dir_of(path);
	free(path);
	return 0;
}

/* ---- staging ---- */

static int stage(upd *u, const char *url, const bng_update_manifest *m, const char *dir)
{
	for (size_t i = 0; i < m->nfiles; i++) {
		const bng_update_file *f = &m->files[i];
		char *dst = join(dir, f->path), *src = bng_asprintf("%s/%s/%s", url, m->version, f->path);
		char *parent = bng_strdup(dst), *slash = strrchr(parent, '/');
		if (slash)
			*slash = '\0';
		int rc = bng_mkdir_p(parent, 0755);
		if (!rc)
			rc = bng_http_download(src, dst, f->sha256, f->size, NULL);
		struct stat st;
		if (!rc && (stat(dst, &st) != 0 || (uint64_t)st.st_size != f->size))
			rc = bng_err(BANGER_EPROTO, "%s is %lld bytes, the manifest says %llu", src,
				     (long long)st.st_size, (unsigned long long)f->size);
		if (!rc && chmod(dst, f->mode) != 0)
			rc = bng_err_errno(BANGER_EIO, errno, "cannot set the mode of the staged %s", f->path);
		if (!rc) {
			int fd = open(dst, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				fsync(fd);
				close(fd);
			}
		}
		if (rc)
			rc = bng_err(rc, "release %s, file %s: %s", m->version, f->path, banger_error_last());
		free(parent);
		free(src);
		free(dst);
		if (rc)
			return rc;
		point("staged");
	}
	say(u, "verify", "downloaded %zu files of release %s; every sha256 and size matches the signed manifest",
	    m->nfiles, m->version);
	return 0;
}

/* ---- the update ---- */

typedef struct {
	const char *url, *to, *socket;
	bool check, dry_run;
	char *prefix;
} params;

static json_t *plan(const char *prefix, const bng_update_manifest *m)
{
	json_t *files = json_array();
	for (size_t i = 0; i < m->nfiles; i++) {
		char *p = join(prefix, m->files[i].path);
		struct stat st;
		bool exists = lstat(p, &st) == 0;
		json_array_append_new(files, json_pack("{s:s,s:s,s:I,s:s,s:s}", "path", m->files[i].path, "target", p,
						       "size", (json_int_t)m->files[i].size, "sha256",
						       m->files[i].sha256, "action", exists ? "replace" : "add"));
		free(p);
	}
	return files;
}

static int apply(upd *u, const params *pr, const bng_update_manifest *m, const char *current, json_t *report)
{
	const char *prefix = pr->prefix;
	json_t *files = json_object_get(report, "files");
	size_t i;
	json_t *f;
	int rc = 0;
	/* permission for every directory a file lands in, before any change */
	json_array_foreach(files, i, f) {
		char *dir = existing_parent(json_string_value(json_object_get(f, "target")));
		rc = need_write(dir, prefix);
		free(dir);
		if (rc)
			return rc;
	}
	remove_staging_dirs(prefix);
	char *staging = bng_asprintf("%s/%s%s", prefix, STAGING, m->version);
	if (bng_mkdir_p(staging, 0700) != 0) {
		rc = bng_err(banger_error_last_code(), "cannot create %s: %s", staging, banger_error_last());
		free(staging);
		return rc;
	}
	rc = stage(u, pr->url, m, staging);
	if (rc) {
		bng_rm_rf(staging);
		free(staging);
		return rc;
	}

	daemon_info before;
	daemon_probe(pr->socket, &before);
	json_t *jfiles = json_array();
	json_array_foreach(files, i, f) {
		json_array_append_new(jfiles, json_pack("{s:s,s:b,s:b}", "path", json_string_value(json_object_get(f, "path")),
							"had_old", !strcmp(json_string_value(json_object_get(f, "action")), "replace"),
							"swapped", 0));
		char *prev = bng_asprintf("%s.prev", json_string_value(json_object_get(f, "target")));
		unlink(prev); /* a stale one from an old run */
		free(prev);
	}
	json_t *journal = json_pack("{s:s,s:s,s:s,s:s,s:o,s:{s:b,s:b,s:s,s:s?}}", "state", "swapping", "from", current,
				    "to", m->version, "staging", staging, "files", jfiles, "daemon", "running",
				    before.running, "supervised", before.supervised, "socket", pr->socket, "stamp",
				    before.stamp);
	rc = journal_write(prefix, journal);
	char *failure = rc ? bng_asprintf("writing %s/%s: %s", prefix, JOURNAL, banger_error_last()) : NULL;
	point("journal");
	json_array_foreach(files, i, f) {
		if (rc)
			break;
		const char *rel = json_string_value(json_object_get(f, "path"));
		const char *target = json_string_value(json_object_get(f, "target"));
		char *staged = join(staging, rel), *prev = bng_asprintf("%s.prev", target);
		char *dir = bng_strdup(target), *slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
		json_t *jf = json_array_get(jfiles, i);
		if (bng_mkdir_p(dir, 0755) != 0)
			rc = banger_error_last_code();
		else if (json_is_true(json_object_get(jf, "had_old")) && link(target, prev) != 0)
			rc = bng_err_errno(BANGER_EIO, errno, "cannot keep %s as %s", target, prev);
		if (!rc) {
			/* recorded before the rename: a rollback only ever removes a new file it may have put there */
			json_object_set_new(jf, "swapped", json_true());
			rc = journal_write(prefix, journal);
		}
		if (!rc && rename(staged, target) != 0)
			rc = bng_err_errno(BANGER_EIO, errno, "cannot move %s into place", target);
		if (rc)
			failure = bng_asprintf("swapping %s: %s", rel, banger_error_last());
		fsync_dir_of(target);
		free(dir);
		free(staged);
		free(prev);
		if (!rc) {
			char step[256];
			snprintf(step, sizeof(step), "swap:%s", rel);
			point(step);
		}
	}
	if (!rc)
		say(u, "swap", "installed %zu files of %s in %s (previous ones kept as *.prev until the health check)",
		    json_array_size(files), m->version, prefix);

	/* restart and health check */
	bool restarted = false;
	if (!rc && before.running && before.supervised) {
		restarted = true; /* systemd stops and starts it in the health check */
	} else if (!rc && before.running) {
		int pid = 0;
		rc = banger_daemon_stop(pr->socket, &pid);
		if (rc && rc != BANGER_ECONNECT)
			failure = bng_asprintf("stopping bangerd: %s", banger_error_last());
		else {
			rc = 0;
			restarted = true;
			say(u, "restart", "stopped bangerd %s (pid %d); running VMs keep running", before.stamp, pid);
			point("stopped");
		}
	}
	if (!rc) {
		rc = health_check(u, prefix, pr->socket, before.running, before.supervised, m->version);
		if (rc)
			failure = bng_asprintf("health check: %s", banger_error_last());
	}
	if (!rc) {
		json_object_set_new(journal, "state", json_string("committed"));
		journal_write(prefix, journal);
		point("committed");
		drop_prev(prefix, jfiles);
		bng_rm_rf(staging);
		char *jp = join(prefix, JOURNAL);
		unlink(jp);
		fsync_dir_of(jp);
		free(jp);
		say(u, "done", "banger %s is installed in %s", m->version, prefix);
	} else {
		/* rollback: the new daemon goes, the old files and daemon come back */
		say(u, "rollback", "the update to %s failed (%s): rolling back", m->version, failure ? failure : "?");
		if (restarted && !before.supervised)
			banger_daemon_stop(pr->socket, NULL);
		json_t *restored = json_array();
		restore_files(prefix, jfiles, restored);
		char *names = NULL;
		json_array_foreach(restored, i, f) {
			char *more = bng_asprintf("%s%s%s", names ? names : "", names ? ", " : "", json_string_value(f));
			free(names);
			names = more;
		}
		say(u, "rollback", "restored the previous %s", names ? names : "files (none had been replaced)");
		char *note = NULL;
		if (before.running)
			restart_previous(u, prefix, pr->socket, before.stamp, before.supervised, &note);
		bng_rm_rf(staging);
		char *jp = join(prefix, JOURNAL);
		unlink(jp);
		free(jp);
		/* a daemon that would not start is this update's failure, not "bangerd unreachable" */
		rc = bng_err(rc && rc != BANGER_ECONNECT ? rc : BANGER_EIO, "update to %s failed at %s; rolled back: restored %s in %s%s%s",
			     m->version, failure ? failure : "?", names ? names : "nothing (no file had been replaced)",
			     prefix, note ? "; " : "", note ? note : "");
		free(names);
		free(note);
		json_decref(restored);
	}
	json_object_set_new(report, "result", json_string(rc ? "rolled-back" : "updated"));
	free(failure);
	json_decref(journal);
	daemon_info_free(&before);
	free(staging);
	return rc;
}

static int dry_run(upd *u, const params *pr, const bng_update_manifest *m, json_t *report)
{
	char tmpl[] = "/tmp/banger-update-XXXXXX";
	const char *tmpdir = getenv("TMPDIR");
	char *dir_tmpl = tmpdir && *tmpdir ? bng_asprintf("%s/banger-update-XXXXXX", tmpdir) : bng_strdup(tmpl);
	if (!mkdtemp(dir_tmpl)) {
		int rc = bng_err_errno(BANGER_EIO, errno, "cannot create a temporary directory");
		free(dir_tmpl);
		return rc;
	}
	int rc = stage(u, pr->url, m, dir_tmpl);
	bng_rm_rf(dir_tmpl);
	free(dir_tmpl);
	if (rc)
		return rc;
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(report, "files"), i, f)
		say(u, "plan", "would %s %s", json_string_value(json_object_get(f, "action")),
		    json_string_value(json_object_get(f, "target")));
	daemon_info d;
	if (daemon_probe(pr->socket, &d) == 0)
		say(u, "plan", "would restart bangerd %s (pid %d) and check that it answers as %s", d.stamp, (int)d.pid,
		    m->version);
	else
		say(u, "plan", "would check that %s/bin/bangerd reports %s (no bangerd runs on %s)", pr->prefix, m->version,
		    pr->socket);
	daemon_info_free(&d);
	char *root = join(pr->prefix, "bin");
	if (access(root, W_OK) != 0)
		say(u, "plan", "the update itself needs write permission to %s", root);
	free(root);
	json_object_set_new(report, "result", json_string("would-update"));
	return 0;
}

static int get_params(const char *params_json, params *p)
{
	memset(p, 0, sizeof(*p));
	json_error_t jerr;
	json_t *j = params_json ? json_loads(params_json, 0, &jerr) : json_object();
	if (!json_is_object(j)) {
		json_decref(j);
		return bng_err(BANGER_EINVAL, "update params must be a JSON object");
	}
	static const char *const strs[] = {"url", "to", "prefix", "socket"};
	static const char *const bools[] = {"check", "dry_run"};
	const char *key;
	json_t *v;
	json_object_foreach(j, key, v) {
		bool ok = false;
		for (size_t i = 0; i < 4; i++)
			ok |= !strcmp(key, strs[i]) && (json_is_string(v) || json_is_null(v));
		for (size_t i = 0; i < 2; i++)
			ok |= !strcmp(key, bools[i]) && json_is_boolean(v);
		if (!ok) {
			json_decref(j);
			return bng_err(BANGER_EINVAL, "update: unknown or mistyped parameter '%s'", key);
		}
	}
	/* kept alive in the params: copied strings */
	const char *s;
	p->url = (s = json_string_value(json_object_get(j, "url"))) && *s ? bng_strdup(s) : NULL;
	p->to = (s = json_string_value(json_object_get(j, "to"))) && *s ? bng_strdup(s) : NULL;
	p->prefix = (s = json_string_value(json_object_get(j, "prefix"))) && *s ? bng_strdup(s) : NULL;
	p->socket = (s = json_string_value(json_object_get(j, "socket"))) && *s ? bng_strdup(s) : NULL;
	p->check = json_is_true(json_object_get(j, "check"));
	p->dry_run = json_is_true(json_object_get(j, "dry_run"));
	json_decref(j);
	return 0;
}

static void free_params(params *p)
{
	free((char *)p->url);
	free((char *)p->to);
	free((char *)p->socket);
	free(p->prefix);
}

BANGER_API int banger_update(const char *params_json, banger_event_cb progress, void *userdata, char **report_json)
{
	bng_err_clear();
	if (!report_json)
		return bng_err(BANGER_EINVAL, "report_json is NULL");
	*report_json = NULL;
	params pr;
	int rc = get_params(params_json, &pr);
	if (rc)
		return rc;
	upd u = {progress, userdata, json_array()};
	bng_update_manifest m = {0};
	char *latest = NULL, *given_prefix = pr.prefix;
	int lock_fd = -1;
	json_t *report = NULL;
	const char *current = banger_version_number();
	pr.prefix = NULL;

	if (!pr.url) {
		bng_paths paths;
		bng_paths_init(&paths, NULL);
		bng_config cfg;
		rc = bng_config_load(&cfg, paths.config_file, paths.config_dir);
		if (!rc)
			pr.url = bng_strdup(bng_config_str(&cfg, "update_url"));
		bng_config_free(&cfg);
		bng_paths_free(&paths);
		if (rc)
			goto out;
	}
	while (*pr.url && pr.url[strlen(pr.url) - 1] == '/')
		((char *)pr.url)[strlen(pr.url) - 1] = '\0';
	if (!*pr.url) {
		rc = bng_err(BANGER_ECONFIG, "no release URL: update_url is empty");
		goto out;
	}
	if (!pr.socket)
		pr.socket = bng_paths_default_socket();
	rc = find_prefix(given_prefix, &pr.prefix);
	if (rc)
		goto out;
	if (pr.to && (rc = bng_update_check_version(pr.to)))
		goto out;

	bool changes = !pr.check && !pr.dry_run;
	char *jp = join(pr.prefix, JOURNAL);
	bool interrupted = access(jp, F_OK) == 0;
	free(jp);
	if (changes) {
		/* privilege first: nothing is fetched for an update that could not be installed */
		char *bin = join(pr.prefix, "bin");
		struct stat st;
		rc = need_write(pr.prefix, pr.prefix);
		if (!rc && stat(bin, &st) == 0)
			rc = need_write(bin, pr.prefix);
		free(bin);
		if (rc)
			goto out;
		/* one update at a time: a lock on the prefix directory itself (no file left behind) */
		lock_fd = open(pr.prefix, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
			rc = bng_err_errno(lock_fd < 0 ? BANGER_EIO : BANGER_EBUSY, errno,
					   "another update is running on %s", pr.prefix);
			goto out;
		}
		if (interrupted)
			recover(&u, pr.prefix, pr.socket);
	} else if (interrupted) {
		say(&u, "recover", "an interrupted update left %s/%s: the next update rolls it back", pr.prefix,
		    JOURNAL);
	}

	if (!pr.to && (rc = fetch_latest(pr.url, &latest)))
		goto out;
	const char *target = pr.to ? pr.to : latest;
	rc = fetch_manifest(pr.url, target, pr.to != NULL, &m);
	if (rc)
		goto out;
	int cmp = bng_update_version_cmp(target, current);
	report = json_pack("{s:s,s:s?,s:s,s:s,s:s,s:s,s:b,s:o}", "current", current, "latest", latest, "target", target,
			   "date", m.date, "prefix", pr.prefix, "url", pr.url, "update_available", cmp > 0, "files",
			   plan(pr.prefix, &m));
	if (pr.check) {
		json_object_set_new(report, "result", json_string(cmp > 0 ? "available" : "up-to-date"));
		say(&u, "check", cmp > 0 ? "banger %s is installed; %s (%s) is available" : "banger %s is installed; the release is %s (%s)",
		    current, target, m.date);
	} else if (cmp == 0 || (cmp < 0 && !pr.to)) {
		json_object_set_new(report, "result", json_string("up-to-date"));
		say(&u, "check", cmp == 0 ? "banger %s is installed: nothing to do" : "banger %s is newer than the latest release %s: nothing to do (--to downgrades)", current, target);
	} else {
		say(&u, "plan", "%s banger %s -> %s in %s", pr.dry_run ? "would update" : "updating", current, target, pr.prefix);
		rc = pr.dry_run ? dry_run(&u, &pr, &m, report) : apply(&u, &pr, &m, current, report);
	}
	if (!rc) {
		json_object_set(report, "log", u.log);
		*report_json = json_dumps(report, JSON_INDENT(2));
	}
out:
	json_decref(report);
	json_decref(u.log);
	bng_update_manifest_free(&m);
	free(latest);
	free(given_prefix);
	free_params(&pr);
	if (lock_fd >= 0)
		close(lock_fd);
	return rc;
}

/* The Firecracker driver. The VMM runs detached (own session, reparented to
 * init, stdout = the guest's serial console, stderr = its process log) and is
 * configured over its REST API on a Unix socket with libcurl; the guest agent
 * is reached through hybrid vsock (<run_dir>/vsock.sock, CONNECT <port>).
 * The contract is Firecracker v1.16.1's swagger; tests check every request we
 * send against it (tests/integration/fake_firecracker.py).
 *
 * With cfg->jailer (config firecracker_jailer; root only, `jailer` next to
 * the firecracker binary) the VMM runs under the jailer, dropped to an
 * unprivileged uid/gid (cfg->jail_uid/gid: config firecracker_uid/gid,
 * 65534 by default), chrooted at <dir of the writable disk>/jail/<exe>/<id>/root:
 * on the images' filesystem, so the kernel, initrd and disks are hard links
 * (a read-only file from another filesystem is reflinked or copied). That
 * filesystem must not be nodev or noexec (checked at start and by doctor).
 * <run_dir>/api.sock and vsock.sock link to the sockets in the jail. The
 * writable disk (and restored snapshot files) belong to the jail's uid
 * while the VMM runs and go back to their owner, and the jail goes, once it
 * has stopped (shutdown, kill, release). */
#include "firecracker.h"
#include "../core/proc.h"
#include "../guest/agent.h"

#include "../core/lazy_curl.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FC_BODY_MAX 51200         /* Firecracker refuses bigger request bodies */
#define FC_REPLY_MAX (64 * 1024)  /* its replies are small JSON objects */
#define FC_SUN_PATH_MAX 107       /* sockaddr_un.sun_path less the NUL */
#define FC_CMDLINE_MAX 2048       /* x86_64 kernel command line, Firecracker's additions included */
#define FC_CMDLINE_RESERVE 256    /* what Firecracker appends for up to 4 disks, a NIC and vsock */
#define FC_MAX_VCPUS 32
#define FC_GUEST_CID 3
#define FC_AGENT_PORT 1024
#define FC_READY_MS 10000         /* the spec says the socket answers within ms; slow hosts get slack */
#define FC_REQ_MS 10000
#define FC_SNAPSHOT_MS (10 * 60 * 1000) /* writing or mapping guest memory can take a while */
#define FC_KILL_WAIT_MS 10000
#define FC_BOOT_ARGS "console=ttyS0 reboot=k panic=1"
#define FC_LOG_MAX (4 << 20)     /* firecracker.log and .metrics are rotated past this unless cfg->log_max says */

/* ---- the process: /proc facts that survive a daemon restart ---- */

/* readlink of /proc/<pid>/exe, without the " (deleted)" an upgrade adds. */
static char *proc_exe(pid_t pid)
{
	char path[64], buf[PATH_MAX];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	size_t len = (size_t)n, dl = strlen(" (deleted)");
	if (len > dl && strcmp(buf + len - dl, " (deleted)") == 0)
		buf[len - dl] = '\0';
	return bng_strdup(buf);
}

/* The last non-empty line written to path since offset: the VMM's last words. */
static char *last_words(const char *path, off_t offset)
{
	char *line = path ? bng_file_tail(path, offset, 1) : NULL;
	if (line && !*line) {
		free(line);
		line = NULL;
	}
	return line;
}

/* Why Firecracker exited, from its own log in path since offset. Its logger
 * writes "<time> [<id>:<thread>...] <message>" lines (to stdout until PUT
 * /logger names a file), and main.rs logs an error's Display form just
 * before "Firecracker exiting with error. exit_code=N" (stderr only gets
 * "Error: <Debug form>"). NULL when it did not exit that way. */
static char *fc_exit_reason(const char *path, off_t offset, const char *id)
{
	if (!path)
		return NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	char buf[16384];
	ssize_t n = 0;
	if (fstat(fd, &st) == 0 && st.st_size > offset) {
		off_t from = st.st_size - offset > (off_t)sizeof(buf) - 1 ? st.st_size - (off_t)sizeof(buf) + 1 : offset;
		n = pread(fd, buf, sizeof(buf) - 1, from);
	}
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	char *reason = NULL, *prev = NULL, *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *open_b = strstr(line, " [");
		char *close_b = open_b ? strstr(open_b, "] ") : NULL;
		if (!close_b)
			continue; /* the guest's console, not Firecracker's log */
		const char *tag = open_b + 2;
		size_t idl = strlen(id);
		if (!(strncmp(tag, id, idl) == 0 && tag[idl] == ':') &&
		    !bng_str_has_prefix(tag, "anonymous-instance:"))
			continue;
		char *msg = close_b + 2;
		msg[strcspn(msg, "\r")] = '\0';
		if (bng_str_has_prefix(msg, "Firecracker exiting with error")) {
			if (prev) {
				free(reason);
				reason = bng_strdup(prev);
			}
		} else {
			prev = msg;
		}
	}
	return reason;
}

/* ---- its log and metrics: rotated, never unbounded ---- */

/* Firecracker opens its log and metrics files read-write without O_APPEND
 * and writes them for as long as it runs (a metrics line a minute, forever).
 * Truncating such a file would only move its writes past a hole. So once
 * it has opened them, the driver sets O_APPEND on its open file description
 * (a duplicate taken with pidfd_getfd shares it); then a truncated file
 * really starts again at 0. Best effort: without it (an old kernel, no
 * ptrace rights) a truncated file is sparse, its disk use still capped. */
static void append_mode(pid_t pid, const char *path)
{
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_getfd)
	struct stat want;
	if (pid <= 0 || stat(path, &want) != 0)
		return;
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return;
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		struct stat st;
		char link[384];
		snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
		if (*end || fd < 0 || stat(link, &st) != 0 || st.st_dev != want.st_dev || st.st_ino != want.st_ino)
			continue;
		int dup = (int)syscall(SYS_pidfd_getfd, pidfd, (int)fd, 0);
		if (dup < 0)
			continue;
		int flags = fcntl(dup, F_GETFL);
		if (flags >= 0 && !(flags & O_APPEND))
			fcntl(dup, F_SETFL, flags | O_APPEND);
		close(dup);
	}
	if (d)
		closedir(d);
	close(pidfd);
#else
	(void)pid;
	(void)path;
#endif
}

/* Rotates path once it has grown past the cap: its newest content goes to
 * <path>.1 (the one before is dropped) and the file starts again empty
 * (copy-and-truncate: Firecracker keeps its descriptor). Jailed, the jail's
 * uid owns the directory: nothing here follows a link it may have put
 * there. */
static void rotate_if_big(const char *path, off_t max)
{
	struct stat st;
	if (!path || lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= max)
		return;
	int in = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (in < 0 || fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
		if (in >= 0)
			close(in);
		return;
	}
	char *old = bng_asprintf("%s.1", path), *tmp = bng_asprintf("%s.1.tmp", path);
	unlink(tmp);
	int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	bool ok = out >= 0;
	/* the newest max bytes are what is worth keeping, from a line's start */
	off_t from = st.st_size > max ? st.st_size - max : 0;
	char buf[1 << 16];
	ssize_t got = ok && from > 0 ? pread(in, buf, sizeof(buf), from) : 0;
	char *nl = got > 0 ? memchr(buf, '\n', (size_t)got) : NULL;
	if (nl)
		from += nl - buf + 1;
	for (ssize_t n; ok && (n = pread(in, buf, sizeof(buf), from)) != 0; from += n)
		ok = n > 0 && write(out, buf, (size_t)n) == n;
	if (out >= 0 && close(out) != 0)
		ok = false;
	if (ok && rename(tmp, old) == 0) {
		if (ftruncate(in, 0) != 0)
			unlink(old); /* best effort: next time */
	} else {
		unlink(tmp);
	}
	close(in);
	free(old);
	free(tmp);
}

/* ---- the REST client ---- */

typedef struct fc_api {
	CURL *curl;
	char *sock;
	bng_op *op;
} fc_api;

typedef struct reply_buf {
	char *data;
	size_t len;
	bool too_big;
} reply_buf;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
/* Not reentrant on every libcurl: once per process, never cleaned up. */
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static int api_open(fc_api *a, const char *sock, bng_op *op)
{
	memset(a, 0, sizeof(*a));
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return bng_err(BANGER_EIO, "firecracker: cannot initialise libcurl: %s", curl_easy_strerror(curl_init_rc));
	/* one handle per operation: its requests share a connection */
	if (!(a->curl = curl_easy_init()))
		return bng_err(BANGER_ENOMEM, "firecracker: cannot create a libcurl handle");
	a->sock = bng_strdup(sock);
	a->op = op;
	return 0;
}

static void api_close(fc_api *a)
{
	if (a->curl)
		curl_easy_cleanup(a->curl);
	free(a->sock);
	memset(a, 0, sizeof(*a));
}

static size_t on_reply(char *ptr, size_t size, size_t nmemb, void *ud)
{
	reply_buf *r = ud;
	size_t n = size * nmemb;
	if (r->len + n > FC_REPLY_MAX) {
		r->too_big = true;
		return 0;
	}
	char *grown = realloc(r->data, r->len + n + 1);
	if (!grown)
		return 0;
	r->data = grown;
	memcpy(r->data + r->len, ptr, n);
	r->len += n;
	r->data[r->len] = '\0';
	return n;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)a, (void)b, (void)c, (void)d;
	return bng_op_cancelled(ud) ? 1 : 0;
}

/* One request. body (borrowed, may be NULL) goes out as JSON with a
 * Content-Length; a 2xx reply's JSON lands in *reply when asked for. Errors
 * name the request: "firecracker: PUT /drives/vda: <fault_message>". */
static int api_call(fc_api *a, const char *method, const char *path, json_t *body, int timeout_ms, json_t **reply)
{
	if (reply)
		*reply = NULL;
	char *text = NULL;
	if (body) {
		text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
		if (!text)
			return bng_err(BANGER_ENOMEM, "firecracker: %s %s: cannot encode the request", method, path);
		size_t n = strlen(text);
		if (n > FC_BODY_MAX) {
			free(text);
			return bng_err(BANGER_ETOOBIG,
				       "firecracker: %s %s: the request body is %zu bytes, Firecracker accepts at most %d: "
				       "shorten the paths or kernel arguments",
				       method, path, n, FC_BODY_MAX);
		}
	}
	char url[512], errbuf[CURL_ERROR_SIZE] = "";
	snprintf(url, sizeof(url), "http://localhost%s", path);
	reply_buf r = {0};
	struct curl_slist *hdrs = NULL;
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (text) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
	}
	CURL *h = a->curl;
	curl_easy_reset(h); /* keeps the connection */
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, a->sock);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROXY, ""); /* never route the local socket through http_proxy */
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_reply);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
	if (a->op) {
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, a->op);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	}
	if (text) {
		/* POSTFIELDS + a custom verb: a plain Content-Length body, never chunked */
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	free(text);
	int rc = 0;
	if (cc != CURLE_OK) {
		const char *why = *errbuf ? errbuf : curl_easy_strerror(cc);
		if (cc == CURLE_ABORTED_BY_CALLBACK)
			rc = bng_err(BANGER_ECANCELED, "firecracker: %s %s: cancelled", method, path);
		else if (r.too_big)
			rc = bng_err(BANGER_EPROTO, "firecracker: %s %s: the reply is over %d bytes", method, path,
				     FC_REPLY_MAX);
		else if (cc == CURLE_OPERATION_TIMEDOUT)
			rc = bng_err(BANGER_ETIMEDOUT, "firecracker: %s %s: no answer on %s within %d ms", method, path,
				     a->sock, timeout_ms);
		else if (cc == CURLE_COULDNT_CONNECT)
			rc = bng_err(BANGER_ECONNECT, "firecracker: %s %s: nothing answers on %s (%s)", method, path,
				     a->sock, why);
		else
			rc = bng_err(BANGER_EIO, "firecracker: %s %s: %s", method, path, why);
	} else if (status < 200 || status > 299) {
		json_t *err = r.data ? json_loads(r.data, 0, NULL) : NULL;
		const char *fault = json_string_value(json_object_get(err, "fault_message"));
		if (fault)
			rc = bng_err(BANGER_EIO, "firecracker: %s %s: %s", method, path, fault);
		else
			rc = bng_err(BANGER_EIO, "firecracker: %s %s: HTTP %ld%s%.200s", method, path, status,
				     r.data ? ": " : "", r.data ? r.data : "");
		json_decref(err);
	} else if (reply && r.len) {
		json_error_t je;
		if (!(*reply = json_loads(r.data, 0, &je)))
			rc = bng_err(BANGER_EPROTO, "firecracker: %s %s: the reply is not JSON: %s", method, path, je.text);
	}
	free(r.data);
	return rc;
}

/* PUT/PATCH with a body built by json_pack-style callers (steals body). */
static int api_send(fc_api *a, const char *method, const char *path, json_t *body, int timeout_ms)
{
	if (!body)
		return bng_err(BANGER_ENOMEM, "firecracker: %s %s: out of memory", method, path);
	int rc = api_call(a, method, path, body, timeout_ms, NULL);
	json_decref(body);
	return rc;
}

/* ---- one VM's files and process ---- */

typedef struct fc_vm {
	const bng_vm_config *cfg;
	char *binary;   /* absolute path of firecracker */
	char *jailer;   /* absolute path of the jailer; NULL when not jailed */
	char *jail_base;/* the jailer's --chroot-base-dir (see jail_base()) */
	char *jail_dir; /* <jail_base>/<exe>/<id>: the jailer's, removed before each start and after each stop */
	char *root;     /* Firecracker's files live here: run_dir, or jail_dir/root */
	char *api_sock; /* host paths, always in run_dir (jailed: symlinks to the sockets in the jail) */
	char *vsock;
	json_t *owned;  /* jailed: files handed to the jail's uid, [{path, uid, gid, dev, ino}] to give back */
	uid_t uid;
	gid_t gid;
	pid_t pid;
	long long start_time;
	off_t plog_start; /* where this run's output starts in the process log (stderr) */
	off_t clog_start; /* ... and in the console log (stdout: Firecracker's own log until PUT /logger) */
	bool explained;   /* the error already holds the VMM's last words */
	fc_api api;
} fc_vm;

static void vm_free(fc_vm *vm)
{
	api_close(&vm->api);
	free(vm->binary);
	free(vm->jailer);
	free(vm->jail_base);
	free(vm->jail_dir);
	json_decref(vm->owned);
	free(vm->root);
	free(vm->api_sock);
	free(vm->vsock);
}

/* A file in Firecracker's directory, as the host sees it. */
static char *host_path(const fc_vm *vm, const char *name) { return bng_asprintf("%s/%s", vm->root, name); }

/* The same file as Firecracker sees it (inside the chroot when jailed). */
static char *vmm_path(const fc_vm *vm, const char *name)
{
	return vm->jailer ? bng_asprintf("/%s", name) : host_path(vm, name);
}

static int check_sock_path(const char *path, const char *what)
{
	size_t n = strlen(path);
	if (n > FC_SUN_PATH_MAX)
		return bng_err(BANGER_EINVAL,
			       "firecracker: the %s path %s is %zu bytes, Unix sockets allow at most %d: use a shorter "
			       "runtime directory (BANGER_RUNTIME_DIR) or VM id",
			       what, path, n, FC_SUN_PATH_MAX);
	return 0;
}

static int real_file(const char *path, char **out);
static void kill_vmms_of(const char *id, const char *api, const char *jail_root, const char *base);

/* Where the jails go: next to the VM's first writable disk (the VM's own
 * state directory, on the images' filesystem), so the disks, kernel and
 * initrd are hard links there (O(1), no EXDEV), and what the jailed VMM
 * writes stays on that disk's filesystem. run_dir is often a tmpfs (/run)
 * that shares no filesystem with the images. Without a writable disk:
 * <run_dir>/jail (read-only files are copied in when they are elsewhere). */
static char *jail_base(const bng_vm_config *cfg)
{
	for (int i = 0; i < cfg->ndisks; i++) {
		char *disk = NULL;
		if (cfg->disks[i].read_only || !cfg->disks[i].path || real_file(cfg->disks[i].path, &disk) != 0)
			continue;
		char *slash = strrchr(disk, '/');
		char *base = bng_asprintf("%.*s/jail", (int)(slash - disk), disk);
		free(disk);
		return base;
	}
	bng_err_clear();
	return bng_asprintf("%s/jail", cfg->run_dir);
}

/* Decodes mountinfo's octal escapes (\040 for a space) in place. */
static void mountinfo_unescape(char *s)
{
	char *o = s;
	for (char *i = s; *i; i++) {
		if (i[0] == '\\' && i[1] >= '0' && i[1] <= '3' && i[2] >= '0' && i[2] <= '7' && i[3] >= '0' && i[3] <= '7') {
			*o++ = (char)((i[1] - '0') * 64 + (i[2] - '0') * 8 + (i[3] - '0'));
			i += 3;
		} else {
			*o++ = *i;
		}
	}
	*o = '\0';
}

/* The mount point path is under (the longest mountinfo entry that prefixes
 * it), for messages; NULL if unknown. */
static char *mount_point_of(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return NULL;
	char *line = NULL, *best = NULL;
	size_t cap = 0, best_len = 0;
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *mnt = NULL;
		strtok_r(line, " ", &save);
		for (int field = 2; field <= 5; field++)
			mnt = strtok_r(NULL, " ", &save);
		if (!mnt)
			continue;
		mountinfo_unescape(mnt);
		size_t n = strlen(mnt);
		bool under = strcmp(mnt, "/") == 0 || (strncmp(path, mnt, n) == 0 && (path[n] == '/' || path[n] == '\0'));
		if (under && (n > best_len || !best)) {
			free(best);
			best = bng_strdup(mnt);
			best_len = n;
		}
	}
	free(line);
	fclose(f);
	return best;
}

int bng_firecracker_check_jail_fs(const char *dir)
{
	/* the jail may not exist yet: its nearest existing ancestor decides */
	char *p = bng_strdup(dir);
	struct statvfs sv;
	while (statvfs(p, &sv) != 0) {
		char *slash = strrchr(p, '/');
		if (errno != ENOENT || !slash || slash == p) {
			int e = errno;
			int rc = bng_err_errno(bng_code_from_errno(e), e, "firecracker: cannot check the jail's filesystem at %s", p);
			free(p);
			return rc;
		}
		*slash = '\0';
	}
	int rc = 0;
	if (sv.f_flag & (ST_NODEV | ST_NOEXEC)) {
		char real[PATH_MAX];
		char *mnt = mount_point_of(realpath(p, real) ? real : p);
		bool nodev = sv.f_flag & ST_NODEV, noexec = sv.f_flag & ST_NOEXEC;
		rc = bng_err(BANGER_EUNSUPPORTED,
			     "firecracker: the jail %s would be on %s, mounted %s%s%s: the jailer makes /dev/kvm and "
			     "/dev/net/tun in the jail and runs a copy of firecracker from it, and %s%s%s there; remount it "
			     "without %s or keep banger's state directory (where the jails go) on another filesystem",
			     dir, mnt ? mnt : "a filesystem", nodev ? "nodev" : "", nodev && noexec ? "," : "",
			     noexec ? "noexec" : "", nodev ? "device nodes cannot be opened" : "",
			     nodev && noexec ? " and " : "", noexec ? "nothing can be executed" : "",
			     nodev && noexec ? "nodev,noexec" : nodev ? "nodev" : "noexec");
		free(mnt);
	}
	free(p);
	return rc;
}

/* Finds the binary and decides on the jailer; sets every path. */
static int vm_init(fc_vm *vm, const bng_vm_config *cfg, bng_op *op)
{
	memset(vm, 0, sizeof(*vm));
	vm->cfg = cfg;
	if (!cfg || !cfg->id || !*cfg->id || !cfg->run_dir || !*cfg->run_dir)
		return bng_err(BANGER_EINVAL, "firecracker: a VM needs an id and a runtime directory");
	char *found = bng_find_exe(cfg->binary ? cfg->binary : "firecracker");
	if (!found) {
		if (cfg->binary)
			return bng_err(BANGER_ENOTFOUND, "firecracker: %s is not an executable: check the configured "
				       "firecracker binary", cfg->binary);
		return bng_err(BANGER_ENOTFOUND, "firecracker: no `firecracker` on PATH: install Firecracker v1.16 "
			       "(a static release binary) or configure its path, or use the qemu driver");
	}
	char real[PATH_MAX];
	vm->binary = bng_strdup(realpath(found, real) ? real : found);
	if (cfg->jailer) {
		/* next to the configured path (often a symlink), else next to its target */
		char *jailer = NULL;
		const char *next_to[2] = {found, vm->binary};
		for (int i = 0; i < 2 && !jailer; i++) {
			const char *slash = strrchr(next_to[i], '/');
			char *cand = bng_asprintf("%.*s/jailer", (int)(slash - next_to[i]), next_to[i]);
			if (access(cand, X_OK) == 0)
				jailer = cand;
			else
				free(cand);
		}
		int rc = 0;
		if (geteuid() != 0)
			rc = bng_err(BANGER_EPERM, "firecracker: firecracker_jailer is on but the jailer needs root "
				     "(this process runs as uid %u)", (unsigned)geteuid());
		else if (!jailer)
			rc = bng_err(BANGER_ENOTFOUND, "firecracker: firecracker_jailer is on but there is no executable "
				     "`jailer` next to %s (the jailer of the same Firecracker release belongs there)", found);
		free(found);
		if (rc) {
			free(jailer);
			return rc;
		}
		vm->jailer = jailer;
		vm->uid = cfg->jail_uid;
		vm->gid = cfg->jail_gid;
		const char *exe_name = strrchr(vm->binary, '/') + 1;
		vm->jail_base = jail_base(cfg);
		vm->jail_dir = bng_asprintf("%s/%s/%s", vm->jail_base, exe_name, cfg->id);
		vm->root = bng_asprintf("%s/root", vm->jail_dir);
		vm->owned = json_array();
	} else {
		free(found);
		vm->root = bng_strdup(cfg->run_dir);
	}
	vm->api_sock = bng_asprintf("%s/api.sock", cfg->run_dir);
	vm->vsock = bng_asprintf("%s/vsock.sock", cfg->run_dir);
	int rc = check_sock_path(vm->api_sock, "API socket");
	if (!rc)
		rc = check_sock_path(vm->vsock, "vsock");
	if (!rc)
		rc = api_open(&vm->api, vm->api_sock, op);
	return rc;
}

/* Copies a file across filesystems (a read-only file into the jail, a
 * snapshot out of it): a reflink where the filesystem has them (O(1)),
 * else a copy that keeps its holes (images are sparse). */
static int copy_in(const char *src, const char *dst, mode_t mode)
{
	int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return bng_err_errno(bng_code_from_errno(errno), errno, "firecracker: cannot open %s", src);
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (out < 0) {
		int e = errno;
		close(in);
		return bng_err_errno(bng_code_from_errno(e), e, "firecracker: cannot create %s", dst);
	}
	int rc = 0;
	struct stat st;
	if (ioctl(out, FICLONE, in) != 0) {
		rc = fstat(in, &st) != 0 ? bng_err_errno(BANGER_EIO, errno, "firecracker: %s", src) : 0;
		for (off_t data = 0; !rc && data < st.st_size;) {
			data = lseek(in, data, SEEK_DATA);
			if (data < 0)
				break; /* only a hole is left (ENXIO) */
			off_t hole = lseek(in, data, SEEK_HOLE);
			if (hole < 0)
				hole = st.st_size;
			while (!rc && data < hole) {
				char buf[1 << 16];
				size_t want = hole - data < (off_t)sizeof(buf) ? (size_t)(hole - data) : sizeof(buf);
				ssize_t n = pread(in, buf, want, data);
				if (n <= 0 || pwrite(out, buf, (size_t)n, data) != n)
					rc = bng_err_errno(BANGER_EIO, n < 0 ? errno : EIO, "firecracker: cannot copy %s to %s",
							   src, dst);
				else
					data += n;
			}
		}
		if (!rc && ftruncate(out, st.st_size) != 0)
			rc = bng_err_errno(BANGER_EIO, errno, "firecracker: cannot copy %s to %s", src, dst);
	}
	close(in);
	if (close(out) != 0 && !rc)
		rc = bng_err_errno(BANGER_EIO, errno, "firecracker: cannot copy %s to %s", src, dst);
	if (rc)
		unlink(dst);
	return rc;
}

/* Hands path to the jail's uid/gid, remembering its owner: release()
 * gives it back once the VMM is gone. */
static int hand_over(fc_vm *vm, const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return bng_err_errno(bng_code_from_errno(errno), errno, "firecracker: %s", path);
	if (chown(path, vm->uid, vm->gid) != 0)
		return bng_err_errno(BANGER_EPERM, errno, "firecracker: cannot hand %s to uid %u", path, (unsigned)vm->uid);
	json_array_append_new(vm->owned, json_pack("{s:s, s:I, s:I, s:I, s:I}", "path", path, "uid",
						   (json_int_t)st.st_uid, "gid", (json_int_t)st.st_gid, "dev",
						   (json_int_t)st.st_dev, "ino", (json_int_t)st.st_ino));
	return 0;
}

/* How Firecracker uses a file: reads it (kernel, initrd, a read-only disk:
 * a copy does when it cannot be linked, and it must already be readable
 * to the jail's uid), writes it (a writable disk: only the file itself
 * will do, handed to the jail's uid), or reads one that is ours alone
 * (snapshot files: handed over while the VM runs, copied if need be). */
typedef enum { FC_READ, FC_WRITE, FC_READ_OURS } fc_use;

/* Makes a host file visible to Firecracker under name: its own path, or a
 * hard link in the jail (the jail shares the images' filesystem, see
 * jail_base()), a copy for a file read from elsewhere. What is handed to
 * the jail's uid is recorded and given back by release(). *out is the
 * path to give Firecracker. */
static int expose(fc_vm *vm, const char *src, const char *name, fc_use use, char **out)
{
	*out = NULL;
	if (!vm->jailer) {
		*out = bng_strdup(src);
		return 0;
	}
	char *dst = host_path(vm, name);
	int rc = 0;
	bool copied = false;
	struct stat st;
	if (link(src, dst) != 0) {
		int e = errno;
		if (e == EXDEV && use != FC_WRITE) {
			rc = copy_in(src, dst, use == FC_READ_OURS ? 0400 : 0444);
			copied = true;
		} else if (e == EXDEV) {
			rc = bng_err(BANGER_EUNSUPPORTED,
				     "firecracker: the jailer needs the writable disk %s in the jail %s, but they are on "
				     "different filesystems and a copy would not keep the guest's writes: keep the disk on the "
				     "jail's filesystem", src, vm->root);
		} else {
			rc = bng_err_errno(bng_code_from_errno(e), e, "firecracker: cannot link %s into the jail", src);
		}
	}
	if (rc) {
		/* nothing to add */
	} else if (copied) {
		if (use == FC_READ_OURS && chown(dst, vm->uid, vm->gid) != 0)
			rc = bng_err_errno(BANGER_EPERM, errno, "firecracker: cannot hand %s to uid %u", dst,
					   (unsigned)vm->uid);
	} else if (use != FC_READ) {
		rc = hand_over(vm, src);
	} else if (stat(dst, &st) == 0 && st.st_uid != vm->uid && !(st.st_mode & S_IROTH)) {
		rc = bng_err(BANGER_EPERM, "firecracker: the jailed VMM (uid %u) cannot read %s: make it world-readable",
			     (unsigned)vm->uid, src);
	}
	if (!rc)
		*out = vmm_path(vm, name);
	free(dst);
	return rc;
}

/* An empty file Firecracker may write (its logger and metrics open, never
 * create, their paths). */
static int make_vmm_file(fc_vm *vm, const char *name, char **out)
{
	char *p = host_path(vm, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	int rc = 0;
	if (fd < 0)
		rc = bng_err_errno(bng_code_from_errno(errno), errno, "firecracker: cannot create %s", p);
	else if (vm->jailer && fchown(fd, vm->uid, vm->gid) != 0)
		rc = bng_err_errno(BANGER_EPERM, errno, "firecracker: cannot hand %s to uid %u", p, (unsigned)vm->uid);
	if (fd >= 0)
		close(fd);
	free(p);
	*out = rc ? NULL : vmm_path(vm, name);
	return rc;
}

/* Whether something listens on the Unix socket at path. A busy Firecracker
 * (one API thread) still takes connections into its backlog; a stale
 * socket file refuses them. */
static bool sock_listening(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return false;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return false;
	bool listening = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN;
	close(fd);
	return listening;
}

/* Removes what a previous run left: sockets (Firecracker refuses to bind an
 * existing path) and, jailed, the whole jail (the jailer refuses to reuse
 * one), then makes the jail root ours to fill and the VMM's to write. */
static int prepare_dir(fc_vm *vm)
{
	/* stale, not live: never pull the socket from under a running VMM (a
	 * busy one, a snapshot in progress, accepts and answers late) */
	if (sock_listening(vm->api_sock))
		return bng_err(BANGER_EBUSY, "firecracker: a VMM already answers on %s: stop that VM first",
			       vm->api_sock);
	if (unlink(vm->api_sock) != 0 && errno != ENOENT)
		return bng_err_errno(bng_code_from_errno(errno), errno, "firecracker: cannot remove the stale socket %s",
				     vm->api_sock);
	if (unlink(vm->vsock) != 0 && errno != ENOENT)
		return bng_err_errno(bng_code_from_errno(errno), errno, "firecracker: cannot remove the stale socket %s",
				     vm->vsock);
	/* a VMM of this VM that nobody recorded (its runtime dir, with the
	 * socket, may have been wiped) must not keep running, nor have its
	 * jail removed from under it */
	kill_vmms_of(vm->cfg->id, vm->api_sock, vm->jailer ? vm->root : NULL, vm->jail_base);
	if (!vm->jailer)
		return 0;
	int rc = bng_firecracker_check_jail_fs(vm->jail_dir);
	if (!rc)
		rc = bng_rm_rf(vm->jail_dir);
	if (!rc)
		rc = bng_mkdir_p(vm->root, 0700);
	if (!rc && chown(vm->root, vm->uid, vm->gid) != 0)
		rc = bng_err_errno(BANGER_EPERM, errno, "firecracker: cannot hand %s to uid %u", vm->root, (unsigned)vm->uid);
	/* the host reaches the jail's sockets through run_dir: short paths
	 * (sun_path has 107 bytes) wherever the jail is */
	const char *socks[2][2] = {{vm->api_sock, "api.sock"}, {vm->vsock, "vsock.sock"}};
	for (int i = 0; !rc && i < 2; i++) {
		char *target = host_path(vm, socks[i][1]);
		if (symlink(target, socks[i][0]) != 0)
			rc = bng_err_errno(bng_code_from_errno(errno), errno, "firecracker: cannot link %s to %s", socks[i][0],
					   target);
		free(target);
	}
	return rc;
}

static int open_log(const char *path, int *fd)
{
	*fd = open(path ? path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (*fd < 0)
		return bng_err_errno(bng_code_from_errno(errno), errno, "firecracker: cannot open %s", path);
	return 0;
}

/* Starts argv detached: a double fork so the VMM is nobody's child here (no
 * zombie for the embedder, survives the daemon), its own session (no
 * terminal signals), default signal dispositions, stdin /dev/null, stdout to
 * the console log, stderr to the process log, nothing else inherited. */
static int spawn(fc_vm *vm, char *const argv[])
{
	const bng_vm_config *cfg = vm->cfg;
	int out_fd = -1, err_fd = -1;
	int rc = open_log(cfg->process_log, &err_fd);
	if (!rc)
		rc = open_log(cfg->console_log ? cfg->console_log : cfg->process_log, &out_fd);
	if (rc)
		goto out;
	/* a marker between runs; what follows it is this run's last words */
	char now[32];
	struct stat st;
	bng_now_iso(now);
	dprintf(err_fd, "--- banger %s: starting %s%s for VM %s\n", now, vm->jailer ? "jailed " : "", vm->binary,
		cfg->id);
	vm->plog_start = fstat(err_fd, &st) == 0 ? st.st_size : 0;
	vm->clog_start = fstat(out_fd, &st) == 0 ? st.st_size : 0;
	pid_t vmm = 0;
	if ((rc = bng_spawn_detached(argv, out_fd, err_fd, cfg->run_dir, &vmm)) != 0) {
		rc = bng_err(rc, "firecracker: %s", banger_error_last());
		goto out;
	}
	vm->pid = vmm;
	{
		unsigned long long started = 0;
		bng_proc_stat(vmm, NULL, &started);
		vm->start_time = (long long)started;
	}
out:
	if (out_fd >= 0)
		close(out_fd);
	if (err_fd >= 0)
		close(err_fd);
	return rc;
}

/* Why the VMM failed, from its own words when it left any: the reason its
 * logger wrote on the way out (stdout, i.e. the console log, before PUT
 * /logger; firecracker.log after), else the last line on stderr (the
 * jailer's errors, a Rust panic), else the last line of firecracker.log. */
static char *vmm_last_words(const fc_vm *vm)
{
	const bng_vm_config *cfg = vm->cfg;
	char *log = host_path(vm, "firecracker.log");
	char *w = fc_exit_reason(cfg->console_log ? cfg->console_log : cfg->process_log, vm->clog_start, cfg->id);
	if (!w)
		w = fc_exit_reason(log, 0, cfg->id);
	if (!w)
		w = last_words(cfg->process_log, vm->plog_start);
	if (!w)
		w = last_words(log, 0);
	free(log);
	return w;
}

/* Adds the VMM's last words to the current error if it has died. */
static int explain(const fc_vm *vm, int rc)
{
	if (!vm->pid || vm->explained || !bng_proc_gone(vm->pid, (unsigned long long)vm->start_time))
		return rc;
	char *w = vmm_last_words(vm);
	if (w)
		rc = bng_err(rc, "%s (firecracker exited: %s)", banger_error_last(), w);
	else
		rc = bng_err(rc, "%s (firecracker exited without a word; see %s)", banger_error_last(),
			     vm->cfg->process_log ? vm->cfg->process_log : "its log");
	free(w);
	return rc;
}

/* Spawns Firecracker (jailed or not) and waits, cancellably, until its API
 * socket answers GET /. */
static int launch(fc_vm *vm, bng_op *op)
{
	const bng_vm_config *cfg = vm->cfg;
	char *api_arg = vmm_path(vm, "api.sock");
	char *run_base = vm->jail_base;
	char uid[16], gid[16];
	snprintf(uid, sizeof(uid), "%u", (unsigned)vm->uid);
	snprintf(gid, sizeof(gid), "%u", (unsigned)vm->gid);
	/* The jailer execs firecracker in place (no --daemonize/--new-pid-ns),
	 * so the pid we get is the VMM's; it leaves cgroups alone without
	 * --cgroup, and it clears the environment. */
	char *jailed[] = {vm->jailer, "--id", (char *)cfg->id, "--exec-file", vm->binary, "--uid", uid, "--gid", gid,
			  "--chroot-base-dir", run_base, "--", "--api-sock", api_arg, NULL};
	char *plain[] = {vm->binary, "--api-sock", api_arg, "--id", (char *)cfg->id, NULL};
	int rc = spawn(vm, vm->jailer ? jailed : plain);
	free(api_arg);
	if (rc)
		return rc;
	bng_op_event(op, json_pack("{s:s,s:i}", "stage", "vmm", "pid", (int)vm->pid)); /* exec'd */
	for (long long deadline = bng_now_ms() + FC_READY_MS;;) {
		if (bng_proc_gone(vm->pid, (unsigned long long)vm->start_time)) {
			char *w = vmm_last_words(vm);
			rc = bng_err(BANGER_EIO, "firecracker exited during startup: %s (stdout: %s, stderr: %s)",
				     w ? w : "no output", cfg->console_log ? cfg->console_log : "none",
				     cfg->process_log ? cfg->process_log : "none");
			free(w);
			vm->explained = true;
			return rc;
		}
		if (access(vm->api_sock, F_OK) == 0 && api_call(&vm->api, "GET", "/", NULL, 1000, NULL) == 0)
			return 0;
		if (bng_op_cancelled(op))
			return bng_err(BANGER_ECANCELED, "firecracker: start cancelled");
		if (bng_now_ms() >= deadline)
			return bng_err(BANGER_ETIMEDOUT, "firecracker (pid %d) did not answer on %s within %d s; see %s",
				       (int)vm->pid, vm->api_sock, FC_READY_MS / 1000,
				       cfg->process_log ? cfg->process_log : "its log");
		if ((rc = bng_op_sleep(op, 10)) != 0)
			return bng_err(rc, "firecracker: start cancelled");
	}
}

/* Logger and metrics files, the first resources on a fresh process. */
static int setup_logging(fc_vm *vm)
{
	char *log = NULL, *metrics = NULL;
	int rc = make_vmm_file(vm, "firecracker.log", &log);
	if (!rc)
		rc = make_vmm_file(vm, "firecracker.metrics", &metrics);
	if (!rc)
		rc = api_send(&vm->api, "PUT", "/logger", json_pack("{s:s, s:s}", "log_path", log, "level", "Info"),
			      FC_REQ_MS);
	if (!rc)
		rc = api_send(&vm->api, "PUT", "/metrics", json_pack("{s:s}", "metrics_path", metrics), FC_REQ_MS);
	free(log);
	free(metrics);
	if (!rc) { /* Firecracker has them open now */
		char *paths[2] = {host_path(vm, "firecracker.log"), host_path(vm, "firecracker.metrics")};
		for (int i = 0; i < 2; i++) {
			append_mode(vm->pid, paths[i]);
			free(paths[i]);
		}
	}
	return rc;
}

/* Gives files handed to the jail's uid back to their owners (the same
 * file only: a path replaced since is left alone). */
static void give_back(json_t *owned)
{
	size_t i;
	json_t *o;
	json_array_foreach(owned, i, o) {
		const char *path = json_string_value(json_object_get(o, "path"));
		struct stat st;
		if (!path || stat(path, &st) != 0 || (json_int_t)st.st_dev != json_integer_value(json_object_get(o, "dev")) ||
		    (json_int_t)st.st_ino != json_integer_value(json_object_get(o, "ino")))
			continue;
		if (chown(path, (uid_t)json_integer_value(json_object_get(o, "uid")),
			  (gid_t)json_integer_value(json_object_get(o, "gid"))) != 0)
			continue; /* best effort: the next start hands it over again anyway */
	}
}

/* Removes a jail <base>/<exe>/<id> (its hard links, copies, device nodes
 * and sockets) once its VMM is gone; the jailer never cleans up. */
static void remove_jail(const char *jail_dir, const char *jail_root)
{
	/* only what this driver made: <jail_dir>/root was the chroot */
	char *root = jail_dir ? bng_asprintf("%s/root", jail_dir) : NULL;
	if (root && jail_root && strcmp(root, jail_root) == 0 && strstr(jail_dir, "/jail/"))
		bng_rm_rf(jail_dir);
	free(root);
}

/* Kills a VMM that failed to come up, and its sockets and jail; gives
 * back what it was handed; keeps the error. */
static void abandon(fc_vm *vm)
{
	if (vm->pid <= 0)
		return; /* nothing launched: the sockets may be another run's */
	if (!bng_proc_gone(vm->pid, (unsigned long long)vm->start_time)) {
		kill(vm->pid, SIGKILL);
		bng_proc_wait_gone(vm->pid, (unsigned long long)vm->start_time, FC_KILL_WAIT_MS);
	}
	unlink(vm->api_sock);
	unlink(vm->vsock);
	if (vm->jailer) {
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", banger_error_last());
		int code = banger_error_last_code();
		give_back(vm->owned);
		remove_jail(vm->jail_dir, vm->root);
		bng_err(code, "%s", msg);
	}
}

static json_t *make_state(const fc_vm *vm)
{
	char *exe = proc_exe(vm->pid);
	json_t *st = json_pack("{s:s, s:I, s:I, s:s, s:{s:s, s:s, s:i, s:i}, s:s, s:s, s:I}", "driver", "firecracker",
			       "pid", (json_int_t)vm->pid, "start_time", (json_int_t)vm->start_time, "control_socket",
			       vm->api_sock, "agent", "kind", "vsock_uds", "path", vm->vsock, "port", FC_AGENT_PORT, "cid",
			       FC_GUEST_CID, "binary", vm->binary, "run_dir", vm->cfg->run_dir, "log_max",
			       (json_int_t)(vm->cfg->log_max > 0 ? vm->cfg->log_max : FC_LOG_MAX));
	/* what /proc/<pid>/exe says (python for a script, a path inside the
	 * jail's mount namespace when jailed): alive() compares it verbatim */
	if (st && exe)
		json_object_set_new(st, "exe", json_string(exe));
	if (st) {
		char *log = host_path(vm, "firecracker.log"), *metrics = host_path(vm, "firecracker.metrics");
		json_object_set_new(st, "log_files", json_pack("[s, s]", log, metrics));
		free(log);
		free(metrics);
	}
	if (st && vm->jailer) {
		json_object_set_new(st, "jail_root", json_string(vm->root));
		json_object_set_new(st, "jail_dir", json_string(vm->jail_dir));
		json_object_set(st, "owned", vm->owned);
	}
	free(exe);
	return st;
}

/* Rejects kernel arguments Firecracker adds itself: doubling them confuses
 * the guest (two roots, two device lists). */
static int check_cmdline(const char *cmdline)
{
	if (!cmdline)
		return 0;
	char *copy = bng_strdup(cmdline), *save = NULL;
	int rc = 0;
	for (char *t = strtok_r(copy, " \t", &save); t && !rc; t = strtok_r(NULL, " \t", &save))
		if (bng_str_has_prefix(t, "root=") || bng_str_has_prefix(t, "virtio_mmio.device=") ||
		    strcmp(t, "pci=off") == 0)
			rc = bng_err(BANGER_EINVAL, "firecracker: kernel argument '%s' is Firecracker's own (it adds "
				     "root=, pci=off and virtio_mmio.device= itself): drop it", t);
	free(copy);
	return rc;
}

static int check_config(const bng_vm_config *cfg)
{
	if (cfg->vcpus < 1 || cfg->vcpus > FC_MAX_VCPUS)
		return bng_err(BANGER_EINVAL, "firecracker: %d vCPUs asked for; Firecracker runs 1 to %d", cfg->vcpus,
			       FC_MAX_VCPUS);
	if (cfg->mem_mib < 1)
		return bng_err(BANGER_EINVAL, "firecracker: %d MiB of memory asked for; give at least 1", cfg->mem_mib);
	if (cfg->ndisks < 0 || cfg->ndisks > BNG_VMM_MAX_DISKS)
		return bng_err(BANGER_EINVAL, "firecracker: %d disks; at most %d", cfg->ndisks, BNG_VMM_MAX_DISKS);
	if (!cfg->kernel_dir)
		return bng_err(BANGER_EINVAL, "firecracker: no kernel directory");
	/* Firecracker appends root=, pci=off and a virtio_mmio.device= per
	 * device within the same limit: leave them room */
	size_t n = strlen(FC_BOOT_ARGS) + 1 + (cfg->cmdline ? strlen(cfg->cmdline) : 0);
	if (n > FC_CMDLINE_MAX - FC_CMDLINE_RESERVE)
		return bng_err(BANGER_ETOOBIG, "firecracker: the kernel command line is %zu bytes; at most %d fit next to "
			       "Firecracker's own arguments: shorten it", n, FC_CMDLINE_MAX - FC_CMDLINE_RESERVE);
	return check_cmdline(cfg->cmdline);
}

/* An absolute, existing path (Firecracker runs in run_dir, and the jail's
 * hard links need the real file). */
static int real_file(const char *path, char **out)
{
	char buf[PATH_MAX];
	if (!realpath(path, buf))
		return bng_err_errno(bng_code_from_errno(errno), errno, "firecracker: %s", path);
	*out = bng_strdup(buf);
	return 0;
}

/* The kernel must be an uncompressed ELF vmlinux: Firecracker v1.16 on
 * x86_64 boots nothing else, and would only say so at InstanceStart. */
static int find_kernel(const char *kernel_dir, char **vmlinux, char **initrd)
{
	*vmlinux = *initrd = NULL;
	char *k = bng_asprintf("%s/vmlinux", kernel_dir);
	int rc = real_file(k, vmlinux);
	if (rc) {
		rc = bng_err(rc, "firecracker: %s has no vmlinux: Firecracker boots an uncompressed ELF kernel "
			     "(vmlinux), not a bzImage; re-import the kernel with its vmlinux", kernel_dir);
	} else {
		unsigned char magic[4] = {0};
		int fd = open(*vmlinux, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, magic, sizeof(magic)) : -1;
		if (fd >= 0)
			close(fd);
		if (n != 4 || memcmp(magic, "\177ELF", 4) != 0)
			rc = bng_err(BANGER_EINVAL, "firecracker: %s is not an ELF kernel: Firecracker v1.16 boots only "
				     "an uncompressed vmlinux; re-import the kernel", k);
	}
	free(k);
	if (!rc) {
		char *i = bng_asprintf("%s/initrd.img", kernel_dir);
		if (access(i, F_OK) == 0)
			rc = real_file(i, initrd);
		free(i);
	}
	if (rc) {
		free(*vmlinux);
		*vmlinux = NULL;
	}
	return rc;
}

/* Missing disks are found before a VMM is spawned for nothing. */
static int check_disks(const bng_vm_config *cfg)
{
	for (int i = 0; i < cfg->ndisks; i++) {
		char *disk = NULL;
		int rc = cfg->disks[i].path ? real_file(cfg->disks[i].path, &disk)
					    : bng_err(BANGER_EINVAL, "firecracker: disk %d has no path", i);
		free(disk);
		if (rc)
			return bng_err(rc, "%s (disk vd%c)", banger_error_last(), 'a' + i);
	}
	return 0;
}

/* Everything before InstanceStart, in Firecracker's documented order. */
static int configure(fc_vm *vm, const char *kernel, const char *initrd)
{
	const bng_vm_config *cfg = vm->cfg;
	char *k_arg = NULL, *i_arg = NULL, *vsock_arg = NULL, *args = NULL;
	int rc = setup_logging(vm);
	if (!rc)
		rc = api_send(&vm->api, "PUT", "/machine-config",
			      json_pack("{s:i, s:i, s:b}", "vcpu_count", cfg->vcpus, "mem_size_mib", cfg->mem_mib, "smt", 0),
			      FC_REQ_MS);
	if (!rc)
		rc = expose(vm, kernel, "vmlinux", FC_READ, &k_arg);
	if (!rc && initrd)
		rc = expose(vm, initrd, "initrd.img", FC_READ, &i_arg);
	if (!rc) {
		args = cfg->cmdline && *cfg->cmdline ? bng_asprintf("%s %s", FC_BOOT_ARGS, cfg->cmdline)
						     : bng_strdup(FC_BOOT_ARGS);
		json_t *boot = json_pack("{s:s, s:s}", "kernel_image_path", k_arg, "boot_args", args);
		if (boot && i_arg)
			json_object_set_new(boot, "initrd_path", json_string(i_arg));
		rc = api_send(&vm->api, "PUT", "/boot-source", boot, FC_REQ_MS);
	}
	for (int i = 0; !rc && i < cfg->ndisks; i++) {
		char id[8], path[40], *disk = NULL, *d_arg = NULL;
		snprintf(id, sizeof(id), "vd%c", 'a' + i);
		snprintf(path, sizeof(path), "/drives/%s", id);
		rc = real_file(cfg->disks[i].path, &disk);
		if (!rc)
			rc = expose(vm, disk, id, cfg->disks[i].read_only ? FC_READ : FC_WRITE, &d_arg);
		/* not a root device: banger's initramfs mounts the disks. A writable
		 * one is Writeback: with Firecracker's default (Unsafe) a guest's
		 * fsync never reaches the host's disk */
		if (!rc) {
			json_t *drive = json_pack("{s:s, s:s, s:b, s:b}", "drive_id", id, "path_on_host", d_arg,
						  "is_root_device", 0, "is_read_only", cfg->disks[i].read_only);
			if (drive && !cfg->disks[i].read_only)
				json_object_set_new(drive, "cache_type", json_string("Writeback"));
			rc = api_send(&vm->api, "PUT", path, drive, FC_REQ_MS);
		}
		free(disk);
		free(d_arg);
	}
	if (!rc && cfg->tap) {
		json_t *net = json_pack("{s:s, s:s}", "iface_id", "eth0", "host_dev_name", cfg->tap);
		if (net && cfg->mac)
			json_object_set_new(net, "guest_mac", json_string(cfg->mac));
		rc = api_send(&vm->api, "PUT", "/network-interfaces/eth0", net, FC_REQ_MS);
	}
	if (!rc) {
		vsock_arg = vmm_path(vm, "vsock.sock");
		rc = api_send(&vm->api, "PUT", "/vsock",
			      json_pack("{s:i, s:s}", "guest_cid", FC_GUEST_CID, "uds_path", vsock_arg), FC_REQ_MS);
	}
	free(k_arg);
	free(i_arg);
	free(vsock_arg);
	free(args);
	return rc;
}

static int fc_start(const bng_vm_config *cfg, bng_op *op, json_t **state)
{
	*state = NULL;
	fc_vm vm;
	char *kernel = NULL, *initrd = NULL;
	int rc = vm_init(&vm, cfg, op);
	if (!rc)
		rc = check_config(cfg);
	if (!rc)
		rc = find_kernel(cfg->kernel_dir, &kernel, &initrd);
	if (!rc)
		rc = check_disks(cfg);
	if (!rc)
		rc = prepare_dir(&vm);
	if (!rc)
		rc = launch(&vm, op);
	if (!rc)
		rc = configure(&vm, kernel, initrd);
	if (!rc)
		rc = api_send(&vm.api, "PUT", "/actions", json_pack("{s:s}", "action_type", "InstanceStart"), FC_REQ_MS);
	if (!rc && !(*state = make_state(&vm)))
		rc = bng_err(BANGER_ENOMEM, "firecracker: out of memory");
	if (rc) {
		rc = explain(&vm, rc);
		abandon(&vm);
	}
	free(kernel);
	free(initrd);
	vm_free(&vm);
	return rc;
}

/* ---- calls on a running VM, from its state ---- */

typedef struct fc_ref {
	pid_t pid;
	long long start_time;
	const char *sock;
	const char *vsock;
	const char *exe;
	const char *jail_root;
	const char *jail_dir;
	json_t *owned;
	json_t *log_files;
	off_t log_max;
} fc_ref;

static int parse_state(json_t *state, fc_ref *r)
{
	memset(r, 0, sizeof(*r));
	json_t *pid = json_object_get(state, "pid");
	r->sock = json_string_value(json_object_get(state, "control_socket"));
	r->vsock = json_string_value(json_object_get(json_object_get(state, "agent"), "path"));
	r->exe = json_string_value(json_object_get(state, "exe"));
	r->jail_root = json_string_value(json_object_get(state, "jail_root"));
	r->jail_dir = json_string_value(json_object_get(state, "jail_dir"));
	r->owned = json_object_get(state, "owned");
	r->log_files = json_object_get(state, "log_files");
	/* the cap the VM was started with (a state from before it: the default) */
	json_int_t max = json_integer_value(json_object_get(state, "log_max"));
	r->log_max = max > 0 ? (off_t)max : FC_LOG_MAX;
	r->start_time = json_integer_value(json_object_get(state, "start_time"));
	const char *driver = json_string_value(json_object_get(state, "driver"));
	if (!json_is_integer(pid) || json_integer_value(pid) <= 1 || json_integer_value(pid) > INT_MAX || !r->sock ||
	    (driver && strcmp(driver, "firecracker") != 0))
		return bng_err(BANGER_EINVAL, "firecracker: this VM's state has no firecracker pid and control_socket: "
			       "it was not started by the firecracker driver");
	r->pid = (pid_t)json_integer_value(pid);
	return 0;
}

/* Keeps a running VMM's log and metrics under the cap: whenever banger
 * looks at the VM (alive: vm list/show, start, reconcile; pause, resume,
 * snapshot). */
static void cap_logs(const fc_ref *r)
{
	size_t i;
	json_t *f;
	json_array_foreach(r->log_files, i, f) rotate_if_big(json_string_value(f), r->log_max);
}

static bool same_vmm(const fc_ref *r)
{
	if (bng_proc_gone(r->pid, (unsigned long long)r->start_time))
		return false;
	if (!r->exe)
		return true;
	char *exe = proc_exe(r->pid);
	bool same = exe && strcmp(exe, r->exe) == 0;
	free(exe);
	return same;
}

/* After the VMM is gone: its sockets would only mislead; what it was
 * handed goes back to its owners (overlay.ext4 and restored snapshot files
 * would stay the jail uid's for good), and its jail goes. */
static void forget_sockets(const fc_ref *r)
{
	unlink(r->sock);
	if (r->vsock)
		unlink(r->vsock);
	give_back(r->owned);
	remove_jail(r->jail_dir, r->jail_root);
}

static int fc_release(json_t *state)
{
	fc_ref r;
	int rc = parse_state(state, &r);
	if (rc)
		return rc;
	if (same_vmm(&r))
		return bng_err(BANGER_EBUSY, "firecracker (pid %d) still runs: stop the VM first", (int)r.pid);
	forget_sockets(&r);
	return 0;
}

static int ref_call(json_t *state, const char *method, const char *path, json_t *body, int timeout_ms)
{
	fc_ref r;
	fc_api api;
	int rc = parse_state(state, &r);
	if (rc) {
		json_decref(body);
		return rc;
	}
	if (!same_vmm(&r)) {
		json_decref(body);
		return bng_err(BANGER_ENOTFOUND, "firecracker (pid %d) is not running: start the VM again", (int)r.pid);
	}
	cap_logs(&r);
	if (!(rc = api_open(&api, r.sock, NULL)))
		rc = api_send(&api, method, path, body, timeout_ms);
	else
		json_decref(body);
	api_close(&api);
	return rc;
}

static int fc_shutdown(json_t *state, int timeout_ms)
{
	fc_ref r;
	int rc = parse_state(state, &r);
	if (rc)
		return rc;
	if (!same_vmm(&r)) {
		forget_sockets(&r);
		return 0;
	}
	rc = ref_call(state, "PUT", "/actions", json_pack("{s:s}", "action_type", "SendCtrlAltDel"),
		      timeout_ms > 0 && timeout_ms < FC_REQ_MS ? timeout_ms : FC_REQ_MS);
	if (rc && !bng_proc_gone(r.pid, (unsigned long long)r.start_time))
		return rc;
	if (!bng_proc_wait_gone(r.pid, (unsigned long long)r.start_time, timeout_ms > 0 ? timeout_ms : 0))
		return bng_err(BANGER_ETIMEDOUT, "firecracker (pid %d) still runs %d ms after Ctrl-Alt-Del: the guest "
			       "ignored it (it needs i8042 keyboard support and reboot=k); kill the VM", (int)r.pid,
			       timeout_ms);
	forget_sockets(&r);
	return 0;
}

static int fc_kill(json_t *state, int sig)
{
	fc_ref r;
	int rc = parse_state(state, &r);
	if (rc)
		return rc;
	if (!sig)
		sig = SIGKILL;
	/* never signal a stranger that inherited the pid */
	if (!same_vmm(&r)) {
		forget_sockets(&r);
		return 0;
	}
	if (kill(r.pid, sig) != 0) {
		if (errno == ESRCH) {
			forget_sockets(&r);
			return 0;
		}
		return bng_err_errno(bng_code_from_errno(errno), errno, "firecracker: cannot signal pid %d", (int)r.pid);
	}
	if (!bng_proc_wait_gone(r.pid, (unsigned long long)r.start_time, FC_KILL_WAIT_MS))
		return bng_err(BANGER_ETIMEDOUT, "firecracker (pid %d) still runs %d s after signal %d: try SIGKILL",
			       (int)r.pid, FC_KILL_WAIT_MS / 1000, sig);
	forget_sockets(&r);
	return 0;
}

static int fc_pause(json_t *state)
{
	return ref_call(state, "PATCH", "/vm", json_pack("{s:s}", "state", "Paused"), FC_REQ_MS);
}

static int fc_resume(json_t *state)
{
	return ref_call(state, "PATCH", "/vm", json_pack("{s:s}", "state", "Resumed"), FC_REQ_MS);
}

#define SNAP_STATE "vmstate"
#define SNAP_MEM "memory"

/* A full snapshot (device state + guest memory) into dir. The VM must be
 * paused for it; a running VM is paused here and resumed afterwards.
 * Firecracker writes <name>.partial files (inside its chroot when jailed)
 * that are then renamed into dir: never truncating a memory file that a
 * restored VM still maps, and never writing through the jail's hard links. */
static int fc_snapshot(json_t *state, const char *dir)
{
	fc_ref r;
	fc_api api;
	int rc = parse_state(state, &r);
	if (rc)
		return rc;
	if (!dir || !*dir)
		return bng_err(BANGER_EINVAL, "firecracker: snapshot needs a directory");
	if (!same_vmm(&r))
		return bng_err(BANGER_ENOTFOUND, "firecracker (pid %d) is not running: nothing to snapshot", (int)r.pid);
	cap_logs(&r);
	if ((rc = bng_mkdir_p(dir, 0700)) != 0)
		return rc;
	char real[PATH_MAX];
	if (!realpath(dir, real))
		return bng_err_errno(bng_code_from_errno(errno), errno, "firecracker: %s", dir);
	if ((rc = api_open(&api, r.sock, NULL)) != 0) {
		api_close(&api);
		return rc;
	}
	json_t *info = NULL;
	rc = api_call(&api, "GET", "/", NULL, FC_REQ_MS, &info);
	const char *vm_state = json_string_value(json_object_get(info, "state"));
	bool was_running = !rc && vm_state && strcmp(vm_state, "Running") == 0;
	json_decref(info);
	if (!rc && was_running)
		rc = api_send(&api, "PATCH", "/vm", json_pack("{s:s}", "state", "Paused"), FC_REQ_MS);
	const char *names[2] = {SNAP_STATE, SNAP_MEM};
	char *partial[2], *arg[2];
	for (int i = 0; i < 2; i++) {
		partial[i] = bng_asprintf("%s/%s.partial", r.jail_root ? r.jail_root : real, names[i]);
		arg[i] = r.jail_root ? bng_asprintf("/%s.partial", names[i]) : bng_strdup(partial[i]);
		unlink(partial[i]);
	}
	if (!rc)
		rc = api_send(&api, "PUT", "/snapshot/create",
			      json_pack("{s:s, s:s, s:s}", "snapshot_type", "Full", "snapshot_path", arg[0],
					"mem_file_path", arg[1]),
			      FC_SNAPSHOT_MS);
	for (int i = 1; !rc && i >= 0; i--) { /* memory first: vmstate marks a complete pair */
		char *to = bng_asprintf("%s/%s", real, names[i]);
		char *tmp = bng_asprintf("%s.partial", to);
		struct stat st;
		/* jailed, the VMM's uid owns the directory: take files only, never a
		 * link it could point anywhere (a restore hands the files over) */
		if (lstat(partial[i], &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
			rc = bng_err(BANGER_EIO, "firecracker: the snapshot left %s, which is not a plain file", partial[i]);
		} else if (rename(partial[i], to) == 0) {
			/* the jailed VMM made it as its uid: the snapshot is ours */
			if (r.jail_root && chown(to, geteuid(), getegid()) != 0)
				rc = bng_err_errno(BANGER_EPERM, errno, "firecracker: cannot take %s back from the jail", to);
		} else if (errno == EXDEV) { /* the jail is on another filesystem than dir */
			unlink(tmp);
			rc = copy_in(partial[i], tmp, 0600);
			if (!rc && rename(tmp, to) != 0)
				rc = bng_err_errno(BANGER_EIO, errno, "firecracker: cannot move %s to %s", tmp, to);
			if (rc)
				unlink(tmp);
			unlink(partial[i]);
		} else {
			rc = bng_err_errno(BANGER_EIO, errno, "firecracker: cannot move %s to %s", partial[i], to);
		}
		free(tmp);
		free(to);
	}
	if (rc)
		for (int i = 0; i < 2; i++)
			unlink(partial[i]);
	if (was_running) { /* also after a failed create: leave the VM as we found it */
		int saved = rc;
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", banger_error_last());
		int rc2 = api_send(&api, "PATCH", "/vm", json_pack("{s:s}", "state", "Resumed"), FC_REQ_MS);
		rc = saved ? bng_err(saved, "%s", msg) : rc2;
	}
	for (int i = 0; i < 2; i++) {
		free(partial[i]);
		free(arg[i]);
	}
	api_close(&api);
	return rc;
}

/* A restored guest's clock resumes at snapshot time: the agent sets it to
 * the host's. Best effort, bounded: a guest without an agent still runs,
 * and state's "clock_set" says whether it happened. */
static void set_guest_clock(const fc_vm *vm, json_t *state)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	json_t *args = json_pack("{s:I}", "ms", (json_int_t)now.tv_sec * 1000 + now.tv_nsec / 1000000), *reply = NULL;
	int fd = -1;
	bool ok = bng_agent_connect(vm->vsock, true, 2000, &fd) == 0 &&
		  bng_agent_call_args(fd, "set_clock", args, 3000, &reply) == 0;
	if (!ok)
		bng_err_clear();
	if (fd >= 0)
		close(fd);
	json_decref(reply);
	json_decref(args);
	json_object_set_new(state, "clock_set", json_boolean(ok));
}

/* A fresh process loading dir's snapshot. Disks are found where they were
 * at snapshot time (jailed: the same names in the new jail); the vsock
 * socket and the tap follow cfg. */
static int fc_restore(const bng_vm_config *cfg, const char *dir, bng_op *op, json_t **state)
{
	*state = NULL;
	fc_vm vm;
	char *snap = NULL, *mem = NULL, *s_arg = NULL, *m_arg = NULL, *vsock_arg = NULL;
	int rc = vm_init(&vm, cfg, op);
	if (!rc && (!dir || !*dir))
		rc = bng_err(BANGER_EINVAL, "firecracker: restore needs a snapshot directory");
	if (!rc) {
		char *p = bng_asprintf("%s/%s", dir, SNAP_STATE);
		rc = real_file(p, &snap);
		free(p);
		if (!rc) {
			p = bng_asprintf("%s/%s", dir, SNAP_MEM);
			rc = real_file(p, &mem);
			free(p);
		}
		if (rc)
			rc = bng_err(rc, "%s: %s is not a firecracker snapshot directory", banger_error_last(), dir);
	}
	if (!rc)
		rc = prepare_dir(&vm);
	if (!rc)
		rc = launch(&vm, op);
	if (!rc)
		rc = setup_logging(&vm);
	if (!rc)
		rc = expose(&vm, snap, SNAP_STATE, FC_READ_OURS, &s_arg);
	if (!rc)
		rc = expose(&vm, mem, SNAP_MEM, FC_READ_OURS, &m_arg);
	for (int i = 0; !rc && vm.jailer && i < cfg->ndisks; i++) {
		char id[8], *disk = NULL, *ignored = NULL;
		snprintf(id, sizeof(id), "vd%c", 'a' + i);
		rc = real_file(cfg->disks[i].path, &disk);
		if (!rc)
			rc = expose(&vm, disk, id, cfg->disks[i].read_only ? FC_READ : FC_WRITE, &ignored);
		free(disk);
		free(ignored);
	}
	if (!rc) {
		vsock_arg = vmm_path(&vm, "vsock.sock");
		json_t *body = json_pack("{s:s, s:{s:s, s:s}, s:b, s:{s:s}}", "snapshot_path", s_arg, "mem_backend",
					 "backend_type", "File", "backend_path", m_arg, "resume_vm", 1, "vsock_override",
					 "uds_path", vsock_arg);
		if (body && cfg->tap)
			json_object_set_new(body, "network_overrides",
					    json_pack("[{s:s, s:s}]", "iface_id", "eth0", "host_dev_name", cfg->tap));
		rc = api_send(&vm.api, "PUT", "/snapshot/load", body, FC_SNAPSHOT_MS);
	}
	if (!rc && !(*state = make_state(&vm)))
		rc = bng_err(BANGER_ENOMEM, "firecracker: out of memory");
	if (!rc)
		set_guest_clock(&vm, *state);
	if (rc) {
		rc = explain(&vm, rc);
		abandon(&vm);
	}
	free(snap);
	free(mem);
	free(s_arg);
	free(m_arg);
	free(vsock_arg);
	vm_free(&vm);
	return rc;
}

/* From the process alone (pid, start time, executable): Firecracker serves
 * its API on one thread, so a long request (a snapshot writing guest
 * memory) delays every other one, GET / included, and a busy VMM must not
 * look dead (its VM would be marked stopped and lose its tap). A live VMM's
 * log and metrics get rotated here too: banger looks often. */
static bool fc_alive(json_t *state)
{
	fc_ref r;
	/* without its start time or executable recorded, the pid alone
	 * proves nothing */
	if (parse_state(state, &r) != 0 || !(r.start_time > 0 || r.exe) || !same_vmm(&r))
		return false;
	cap_logs(&r);
	return true;
}

/* Whether a process's root or cwd is the directory st describes: a jailed
 * Firecracker's root is its chroot (the real jailer pivots into it; the
 * fake one runs there). */
static bool proc_dir_is(long pid, const char *which, const struct stat *st)
{
	char path[64];
	struct stat p;
	snprintf(path, sizeof(path), "/proc/%ld/%s", pid, which);
	return stat(path, &p) == 0 && p.st_dev == st->st_dev && p.st_ino == st->st_ino;
}

/* A process's arguments (NUL-separated) as a NULL-terminated vector into
 * *buf; NULL if it has none (a kernel thread) or is gone. */
static char **proc_argv(long pid, char **buf)
{
	char path[64];
	size_t len = 0;
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
	*buf = NULL;
	if (bng_read_file(path, buf, &len) != 0 || len == 0) {
		bng_err_clear();
		free(*buf);
		*buf = NULL;
		return NULL;
	}
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += (*buf)[i] == '\0';
	char **argv = calloc(n + 2, sizeof(*argv));
	if (!argv)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < len && k <= n; i += strlen(*buf + i) + 1)
		argv[k++] = *buf + i;
	return argv;
}

static bool names_firecracker(const char *arg)
{
	const char *base = arg ? strrchr(arg, '/') : NULL;
	return arg && strstr(base ? base + 1 : arg, "firecracker");
}

/* Kills the Firecracker processes of VM id that no state records. api is
 * <run_dir>/api.sock, which an unjailed one names on its command line;
 * jail_root, when known, is the chroot a jailed one runs in (its command
 * line names no host path: "/firecracker --id <id> ... --api-sock
 * /api.sock"), and base the --chroot-base-dir a jailer that has not exec'd
 * yet names. Only processes whose program is firecracker (the jailer
 * insists on the name) or the jailer, with this id where jailed, are
 * considered. */
static void kill_vmms_of(const char *id, const char *api, const char *jail_root, const char *base)
{
	struct stat jail;
	bool jailed = jail_root && stat(jail_root, &jail) == 0 && S_ISDIR(jail.st_mode);
	DIR *d = opendir("/proc");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char *end, *buf;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 1 || pid == (long)getpid())
			continue;
		char **argv = proc_argv(pid, &buf);
		if (!argv)
			continue;
		bool fc = names_firecracker(argv[0]) || (argv[0] && names_firecracker(argv[1]));
		const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
		bool jailer = !strcmp(prog, "jailer");
		bool stray = false, has_id = false, has_base = false;
		for (int i = 0; argv[i] && argv[i + 1]; i++) {
			has_id |= !strcmp(argv[i], "--id") && !strcmp(argv[i + 1], id);
			has_base |= base && !strcmp(argv[i], "--chroot-base-dir") && !strcmp(argv[i + 1], base);
			stray |= fc && !strcmp(argv[i], "--api-sock") && !strcmp(argv[i + 1], api);
		}
		if (jailed && fc && has_id && (proc_dir_is(pid, "root", &jail) || proc_dir_is(pid, "cwd", &jail)))
			stray = true;
		if (jailer && has_id && has_base)
			stray = true;
		if (stray)
			kill((pid_t)pid, SIGKILL);
		free(argv);
		free(buf);
	}
	if (d)
		closedir(d);
}

/* Strays of VM id after its recorded VMM is gone (the daemon died between
 * spawning one and writing the VM's state): <run_dir>/api.sock names the
 * unjailed one, or links into the jailed one's chroot
 * (<base>/<exe>/<id>/root/api.sock). */
static void fc_kill_strays(const char *id, const char *run_dir)
{
	if (!id || !run_dir)
		return;
	char *api = bng_asprintf("%s/api.sock", run_dir);
	char target[PATH_MAX];
	char *root = NULL, *base = NULL;
	ssize_t n = readlink(api, target, sizeof(target) - 1);
	if (n > 0) {
		target[n] = '\0';
		char *slash = strrchr(target, '/');
		if (slash && strcmp(slash, "/api.sock") == 0) {
			*slash = '\0';
			root = bng_strdup(target);
			for (int up = 0; up < 3 && (slash = strrchr(target, '/')); up++)
				*slash = '\0';
			if (slash)
				base = bng_strdup(target);
		}
	}
	kill_vmms_of(id, api, root, base);
	free(root);
	free(base);
	free(api);
}

const bng_vmm_driver bng_vmm_firecracker = {
	.name = "firecracker",
	.features = BNG_VMM_FEAT_PAUSE | BNG_VMM_FEAT_SNAPSHOT | BNG_VMM_FEAT_VSOCK,
	.stop_op = "reboot", /* no ACPI power-off on x86: only the i8042 reset (reboot=k) ends the process */
	.start = fc_start,
	.shutdown = fc_shutdown,
	.kill = fc_kill,
	.pause = fc_pause,
	.resume = fc_resume,
	.snapshot = fc_snapshot,
	.restore = fc_restore,
	.alive = fc_alive,
	.release = fc_release,
	.kill_strays = fc_kill_strays,
};

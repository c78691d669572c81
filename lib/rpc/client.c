/* Remote transport client and daemon autostart. */
#include "client.h"
#include "frame.h"
#include "../core/paths.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int bng_client_connect(const char *socket_path, int *fd_out, pid_t *peer_pid)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(socket_path) >= sizeof(sa.sun_path))
		return bng_err(BANGER_EINVAL, "socket path %s is longer than %zu bytes", socket_path, sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, socket_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return bng_err_errno(BANGER_EIO, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(fd);
		if (e == EACCES || e == EPERM)
			return bng_err_errno(BANGER_EPERM, e, "cannot connect to bangerd at %s", socket_path);
		return bng_err_errno(BANGER_ECONNECT, e, "cannot connect to bangerd at %s", socket_path);
	}
	if (peer_pid) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		*peer_pid = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 ? cred.pid : 0;
	}
	*fd_out = fd;
	return 0;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return bng_err_errno(BANGER_ECONNECT, errno, "lost connection to bangerd");
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

static int send_msg(int fd, json_t *msg)
{
	char *buf;
	size_t len;
	int rc = bng_frame_encode(msg, &buf, &len);
	json_decref(msg);
	if (rc)
		return rc;
	rc = send_all(fd, buf, len);
	free(buf);
	return rc;
}

/* Turns an error reply {"code":-N,"message":"..."} into our error state. */
static int remote_error(json_t *err)
{
	json_int_t code = json_integer_value(json_object_get(err, "code"));
	const char *msg = json_string_value(json_object_get(err, "message"));
	if (code >= 0 || code < -1000)
		code = BANGER_EPROTO;
	return bng_err((int)code, "%s", msg ? msg : "bangerd returned an error without a message");
}

static int exec_on_fd(int fd, const char *method, json_t *params, json_t **result, bng_op *op)
{
	json_t *p = params ? json_incref(params) : json_object();
	int rc = send_msg(fd, json_pack("{s:i,s:s,s:o}", "id", 1, "method", method, "params", p));
	if (rc)
		return rc;
	bng_frame_decoder dec;
	bng_frame_decoder_init(&dec, BNG_FRAME_MAX_DEFAULT);
	bool cancel_sent = false;
	for (;;) {
		json_t *msg;
		int got = bng_frame_decoder_next(&dec, &msg);
		if (got < 0) {
			rc = bng_err(got, "bad reply from bangerd: %s", banger_error_last());
			break;
		}
		if (got) {
			json_t *ev = json_object_get(msg, "event");
			json_t *res = json_object_get(msg, "result");
			json_t *err = json_object_get(msg, "error");
			if (ev) {
				bng_op_event(op, json_incref(ev));
				json_decref(msg);
				continue;
			}
			if (res) {
				*result = json_incref(res);
				rc = 0;
			} else if (json_is_object(err)) {
				rc = remote_error(err);
			} else {
				rc = bng_err(BANGER_EPROTO, "bad reply from bangerd: no result, error or event");
			}
			json_decref(msg);
			break;
		}
		if (!cancel_sent && bng_op_cancelled(op)) {
			cancel_sent = true;
			rc = send_msg(fd, json_pack("{s:i,s:b}", "id", 1, "cancel", 1));
			if (rc)
				break;
		}
		json_t *input;
		while (!rc && (input = bng_op_input(op)) != NULL) /* the caller's messages to the call */
			rc = send_msg(fd, json_pack("{s:i,s:o}", "id", 1, "input", input));
		if (rc)
			break;
		struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN}, {.fd = op && op->inbox ? bng_inbox_fd(op->inbox) : -1,
								       .events = POLLIN}};
		int pr = poll(pfd, 2, 50);
		if (pr < 0 && errno != EINTR) {
			rc = bng_err_errno(BANGER_EIO, errno, "poll");
			break;
		}
		if (pr <= 0 || !(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		char buf[65536];
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = bng_err(BANGER_ECONNECT, "bangerd closed the connection before replying to %s (see its log)", method);
			break;
		}
		bng_frame_decoder_feed(&dec, buf, (size_t)n);
	}
	bng_frame_decoder_free(&dec);
	return rc;
}

int bng_client_exec(const char *socket_path, const char *method, json_t *params, json_t **result, bng_op *op)
{
	int fd;
	int rc = bng_client_connect(socket_path, &fd, NULL);
	if (rc)
		return rc;
	rc = exec_on_fd(fd, method, params, result, op);
	close(fd);
	return rc;
}

/* ---- which socket "unix:" means ---- */

#define SERVICE_SOCKET "/run/banger/bangerd.sock"

char *bng_client_default_socket(bool *service)
{
	*service = false;
	char *own = bng_paths_default_socket();
	const char *sock_env = getenv("BANGER_SOCKET"), *run_env = getenv("BANGER_RUNTIME_DIR");
	int fd;
	if ((sock_env && *sock_env) || (run_env && *run_env))
		return own; /* a layout of the caller's own choosing */
	if (bng_client_connect(own, &fd, NULL) == 0) {
		close(fd);
		return own;
	}
	const char *root = getenv("BANGER_SYSTEM_ROOT");
	char *svc = bng_asprintf("%s%s", root ? root : "", SERVICE_SOCKET);
	struct stat st;
	if (strcmp(svc, own) != 0 && lstat(svc, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == geteuid()) {
		*service = true;
		free(own);
		return svc;
	}
	free(svc);
	return own;
}

/* ---- autostart ---- */

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* bangerd path: explicit, $BANGERD, next to the running program, PATH. */
static char *find_daemon(const char *daemon_path)
{
	if (daemon_path && *daemon_path)
		return bng_strdup(daemon_path);
	const char *env = getenv("BANGERD");
	if (env && *env)
		return bng_strdup(env);
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			char *cand = bng_asprintf("%s/bangerd", self);
			if (access(cand, X_OK) == 0)
				return cand;
			free(cand);
			cand = bng_asprintf("%s/../bangerd/bangerd", self); /* build tree: tools/banger -> tools/bangerd */
			if (access(cand, X_OK) == 0)
				return cand;
			free(cand);
		}
	}
	return bng_find_exe("bangerd");
}

/* True once pid is gone or a zombie (its parent may not have reaped it). */
static bool process_gone(pid_t pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return kill(pid, 0) != 0 && errno == ESRCH;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *paren = strrchr(buf, ')'); /* "pid (comm) S ..." */
	return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

/* Last line of a log file, for error messages (malloc'd, may be NULL). */
static char *last_log_line(const char *log)
{
	char *text = NULL;
	size_t len = 0;
	if (!log || bng_read_file(log, &text, &len) != 0)
		return NULL;
	while (len && text[len - 1] == '\n')
		text[--len] = '\0';
	char *nl = strrchr(text, '\n');
	char *line = bng_strdup(nl ? nl + 1 : text);
	free(text);
	return line;
}

/* Starts bangerd detached (own session, stdio to its log, reparented to
 * init so no embedder inherits a zombie) and waits for the socket to
 * answer, or for the daemon to die and say why. */
static int spawn_daemon(const char *exe, const char *socket_path)
{
	if (access(exe, X_OK) != 0)
		return bng_err_errno(BANGER_ECONNECT, errno, "cannot start bangerd: %s", exe);
	char *log = NULL;
	{
		bng_paths p;
		bng_paths_init(&p, NULL);
		if (bng_mkdir_p(p.state_dir, 0700) == 0)
			log = bng_asprintf("%s/bangerd.log", p.state_dir);
		bng_paths_free(&p);
	}
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		free(log);
		return bng_err_errno(BANGER_EIO, errno, "pipe");
	}
	pid_t pid = fork();
	if (pid < 0) {
		free(log);
		close(pfd[0]);
		close(pfd[1]);
		return bng_err_errno(BANGER_EIO, errno, "fork");
	}
	if (pid == 0) {
		setsid();
		pid_t daemon_pid = fork();
		if (daemon_pid != 0) {
			ssize_t w = write(pfd[1], &daemon_pid, sizeof(daemon_pid));
			_exit(w == sizeof(daemon_pid) ? 0 : 1);
		}
		int in = open("/dev/null", O_RDONLY);
		int out = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0600) : -1;
		if (out < 0)
			out = open("/dev/null", O_WRONLY);
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		execl(exe, "bangerd", "--socket", socket_path, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	pid_t daemon_pid = 0;
	ssize_t r = read(pfd[0], &daemon_pid, sizeof(daemon_pid));
	close(pfd[0]);
	waitpid(pid, NULL, 0);
	int rc = BANGER_ECONNECT;
	bool explained = false;
	for (int waited = 0; r == sizeof(daemon_pid) && waited < 10000; waited += 10) {
		int fd;
		if (bng_client_connect(socket_path, &fd, NULL) == 0) {
			close(fd);
			rc = 0;
			break;
		}
		if (process_gone(daemon_pid)) {
			char *why = last_log_line(log);
			rc = bng_err(BANGER_ECONNECT, "bangerd exited during startup: %s (log: %s)",
				     why && *why ? why : "no output", log ? log : "none");
			free(why);
			explained = true;
			break;
		}
		sleep_ms(10);
	}
	if (rc && !explained)
		bng_err(BANGER_ECONNECT, "started %s but it did not answer on %s within 10s; see %s", exe,
			socket_path, log ? log : "its output");
	free(log);
	return rc;
}

/* Stops the daemon at pid and waits for it to exit (SIGKILL after 10 s). */
static int stop_daemon(pid_t pid, const char *socket_path)
{
	if (pid <= 0)
		return bng_err(BANGER_EIO, "cannot tell which process serves %s", socket_path);
	if (kill(pid, SIGTERM) != 0 && errno != ESRCH)
		return bng_err_errno(BANGER_EPERM, errno, "cannot stop bangerd (pid %d)", (int)pid);
	for (int waited = 0; waited < 10000; waited += 20) {
		if (process_gone(pid))
			return 0;
		sleep_ms(20);
	}
	kill(pid, SIGKILL);
	sleep_ms(100);
	return 0;
}

BANGER_API int banger_daemon_stop(const char *socket_path, int *pid_out)
{
	bng_err_clear();
	char *deflt = NULL;
	if (!socket_path || !*socket_path)
		socket_path = deflt = bng_paths_default_socket();
	int fd;
	pid_t peer = 0;
	int rc = bng_client_connect(socket_path, &fd, &peer);
	if (!rc) {
		close(fd);
		rc = stop_daemon(peer, socket_path);
		if (!rc && pid_out)
			*pid_out = (int)peer;
	}
	free(deflt);
	return rc;
}

int bng_client_spawn_daemon(const char *exe, const char *socket_path) { return spawn_daemon(exe, socket_path); }

int bng_client_ensure_daemon(const char *socket_path, const char *daemon_path)
{
	int fd;
	pid_t peer = 0;
	int rc = bng_client_connect(socket_path, &fd, &peer);
	if (rc == BANGER_EPERM)
		return rc;
	if (rc == 0) {
		json_t *status = NULL;
		rc = exec_on_fd(fd, "engine.status", NULL, &status, NULL);
		close(fd);
		if (rc)
			return rc;
		const char *stamp = json_string_value(json_object_get(status, "stamp"));
		bool same = stamp && !strcmp(stamp, banger_version());
		/* a service's daemon is the service manager's to replace (banger
		 * system restart): stopping it here would leave none running */
		bool supervised = json_is_true(json_object_get(status, "supervised"));
		json_decref(status);
		if (same || supervised)
			return 0;
		/* an older (or newer) bangerd: replace it with ours */
		rc = stop_daemon(peer, socket_path);
		if (rc)
			return rc;
	}
	char *exe = find_daemon(daemon_path);
	if (!exe)
		return bng_err(BANGER_ECONNECT, "bangerd is not running and no bangerd executable was found; install "
						"banger or set BANGERD=/path/to/bangerd");
	rc = spawn_daemon(exe, socket_path);
	free(exe);
	return rc;
}

/* Guest agent client: newline-delimited JSON over a Unix socket, optionally
 * through Firecracker's hybrid vsock handshake. Every wait is a poll with a
 * deadline, so a silent guest costs a timeout, never a hang. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long deadline_after(int timeout_ms) { return bng_now_ms() + (timeout_ms > 0 ? timeout_ms : 0); }

static int remaining_ms(long long deadline)
{
	long long left = deadline - bng_now_ms();
	return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

int bng_agent_watch_check(const bng_agent_watch *w)
{
	if (w && bng_op_cancelled(w->op))
		return bng_err(BANGER_ECANCELED, "cancelled while waiting for the guest agent");
	if (w && w->vm_gone && w->vm_gone(w->ud))
		return bng_err(BANGER_EIO, "the VM stopped: its hypervisor process exited");
	return 0;
}

/* Waits for events on fd until the deadline, checking the watch every
 * 50 ms: 1 when ready, 0 on timeout, a negative code on error. */
static int wait_fd(int fd, short events, long long deadline, const bng_agent_watch *w)
{
	for (;;) {
		int rc = bng_agent_watch_check(w);
		if (rc)
			return rc;
		int left = remaining_ms(deadline);
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, left < 50 ? left : 50);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return bng_err_errno(BANGER_EIO, errno, "poll");
		if (left == 0)
			return 0;
	}
}

/* MSG_DONTWAIT everywhere: the fd stays blocking for the caller, yet no
 * call here can block past its deadline. */
static int send_all(int fd, const char *data, size_t len, long long deadline, const bng_agent_watch *w,
		    const char *what)
{
	while (len) {
		ssize_t sent = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (sent > 0) {
			data += sent;
			len -= (size_t)sent;
			continue;
		}
		if (sent < 0 && errno == EINTR)
			continue;
		if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_fd(fd, POLLOUT, deadline, w);
			if (r < 0)
				return r;
			if (r == 0)
				return bng_err(BANGER_ETIMEDOUT, "timed out sending to %s", what);
			continue;
		}
		return bng_err_errno(BANGER_ECONNECT, errno, "lost the connection to %s", what);
	}
	return 0;
}

int bng_agent_connect_unix(const char *path, int timeout_ms, int *fd_out)
{
	*fd_out = -1;
	if (!path || !*path)
		return bng_err(BANGER_EINVAL, "no guest agent socket path given");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return bng_err(BANGER_EINVAL, "socket path %s is longer than %zu bytes", path, sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return bng_err_errno(BANGER_EIO, errno, "socket");
	long long deadline = deadline_after(timeout_ms);
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		if (e == EINTR)
			continue;
		/* Unix sockets have no EINPROGRESS: a full backlog says EAGAIN. */
		if (e == EAGAIN && remaining_ms(deadline) > 0) {
			struct timespec ts = {0, 10 * 1000000L};
			nanosleep(&ts, NULL);
			continue;
		}
		close(fd);
		if (e == EAGAIN)
			return bng_err(BANGER_ETIMEDOUT, "guest agent socket %s did not accept within %d ms", path, timeout_ms);
		if (e == EACCES || e == EPERM)
			return bng_err_errno(BANGER_EPERM, e, "cannot connect to guest agent socket %s", path);
		return bng_err_errno(BANGER_ECONNECT, e, "cannot connect to guest agent socket %s", path);
	}
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	*fd_out = fd;
	return 0;
}

int bng_agent_connect_vsock_uds(const char *uds_path, uint32_t port, int timeout_ms, int *fd_out)
{
	*fd_out = -1;
	long long deadline = deadline_after(timeout_ms);
	int fd;
	int rc = bng_agent_connect_unix(uds_path, timeout_ms, &fd);
	if (rc)
		return rc;
	char req[32];
	int n = snprintf(req, sizeof(req), "CONNECT %u\n", (unsigned)port);
	rc = send_all(fd, req, (size_t)n, deadline, NULL, "the Firecracker vsock socket");
	if (rc) {
		close(fd);
		return rc;
	}
	/* One byte at a time: whatever follows the OK line is the guest's. */
	char line[64];
	size_t len = 0;
	for (;;) {
		rc = wait_fd(fd, POLLIN, deadline, NULL);
		if (rc <= 0) {
			close(fd);
			return rc < 0 ? rc
				      : bng_err(BANGER_ETIMEDOUT, "no answer to CONNECT %u from the Firecracker vsock socket %s within %d ms",
						(unsigned)port, uds_path, timeout_ms);
		}
		char ch;
		ssize_t r = recv(fd, &ch, 1, MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : 0;
			close(fd);
			/* Firecracker hangs up when nothing in the guest accepts. */
			if (e)
				return bng_err_errno(BANGER_ECONNECT, e, "guest is not listening on vsock port %u (%s)", (unsigned)port, uds_path);
			return bng_err(BANGER_ECONNECT, "guest is not listening on vsock port %u (%s closed the connection)", (unsigned)port,
				       uds_path);
		}
		if (ch == '\n')
			break;
		if (len == sizeof(line) - 1) {
			close(fd);
			return bng_err(BANGER_EPROTO, "vsock handshake on %s: reply line too long", uds_path);
		}
		line[len++] = ch;
	}
	line[len] = '\0';
	if (len && line[len - 1] == '\r')
		line[--len] = '\0';
	if (len < 4 || memcmp(line, "OK ", 3) != 0 || strspn(line + 3, "0123456789") != len - 3) {
		close(fd);
		return bng_err(BANGER_EPROTO, "vsock handshake on %s: expected \"OK <port>\", got \"%.40s\"", uds_path, line);
	}
	*fd_out = fd;
	return 0;
}

/* Reads one line (newline stripped, NUL-terminated). It peeks before it
 * consumes, so nothing past the newline is taken: a later reply stays in
 * the socket for the next call. BANGER_ETIMEDOUT is returned without a
 * message; the caller knows what was asked. */
static int read_line(int fd, long long deadline, const bng_agent_watch *w, char **out, size_t *out_len)
{
	char *line = NULL;
	size_t len = 0, cap = 0;
	char chunk[4096];
	for (;;) {
		ssize_t n = recv(fd, chunk, sizeof(chunk), MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_fd(fd, POLLIN, deadline, w);
			if (r <= 0) {
				free(line);
				return r < 0 ? r : BANGER_ETIMEDOUT;
			}
			continue;
		}
		if (n <= 0) {
			int e = n < 0 ? errno : 0;
			free(line);
			if (e)
				return bng_err_errno(BANGER_ECONNECT, e, "lost the connection to the guest agent");
			return bng_err(BANGER_ECONNECT, "the guest agent closed the connection");
		}
		char *nl = memchr(chunk, '\n', (size_t)n);
		size_t take = nl ? (size_t)(nl - chunk) + 1 : (size_t)n;
		if (len + take > BNG_AGENT_REPLY_MAX) {
			free(line);
			return bng_err(BANGER_ETOOBIG, "guest agent reply longer than %u bytes", BNG_AGENT_REPLY_MAX);
		}
		if (len + take + 1 > cap) {
			cap = (len + take + 1) * 2;
			char *grown = realloc(line, cap);
			if (!grown)
				abort(); /* as bng_xmalloc */
			line = grown;
		}
		ssize_t got = recv(fd, line + len, take, MSG_DONTWAIT);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			free(line);
			return bng_err_errno(BANGER_ECONNECT, got < 0 ? errno : EPIPE, "lost the connection to the guest agent");
		}
		len += (size_t)got;
		if (nl && (size_t)got == take) {
			line[--len] = '\0';
			*out = line;
			*out_len = len;
			return 0;
		}
	}
}

static atomic_uint next_call_id = 1;

static int agent_call(int fd, const char *name, json_t *args, int timeout_ms, const bng_agent_watch *w,
		      json_t **reply)
{
	*reply = NULL;
	if (fd < 0 || !name || !*name)
		return bng_err(BANGER_EINVAL, "guest agent call needs a connection and an op");
	long long deadline = deadline_after(timeout_ms);
	/* Ids are unique per process, so a stale reply never matches. */
	json_int_t id = (json_int_t)(atomic_fetch_add(&next_call_id, 1) & 0x7fffffff);
	json_t *req = json_pack("{s:I,s:s}", "id", id, "op", name);
	if (req && args)
		json_object_update_missing(req, args);
	char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!text)
		return bng_err(BANGER_EINVAL, "guest agent op is not valid UTF-8");
	char *wire = bng_asprintf("%s\n", text);
	free(text);
	int rc = send_all(fd, wire, strlen(wire), deadline, w, "the guest agent");
	if (rc) {
		free(wire);
		return rc;
	}

	char unreadable[64] = "";
	int hellos = 0;
	for (;;) {
		char *line;
		size_t len;
		rc = read_line(fd, deadline, w, &line, &len);
		if (rc == BANGER_ETIMEDOUT) {
			rc = bng_err(BANGER_ETIMEDOUT, "the guest agent did not answer \"%s\" within %d ms%s%s%s%s", name,
				     timeout_ms, hellos ? " (it restarted meanwhile)" : "",
				     *unreadable ? " (it sent an unreadable line: \"" : "", unreadable, *unreadable ? "\")" : "");
			break;
		}
		if (rc)
			break;
		json_error_t jerr;
		json_t *msg = json_loadb(line, len, 0, &jerr);
		if (!json_is_object(msg)) {
			/* Possibly the tail of a reply a timed-out call had half read. */
			snprintf(unreadable, sizeof(unreadable), "%.40s", line);
			json_decref(msg);
			free(line);
			continue;
		}
		free(line);
		if (!strcmp(json_string_value(json_object_get(msg, "event")) ?: "", "hello")) {
			/* The agent (re)opened its port: what we sent before may have
			 * gone to a process that is gone, so ask again (same id; a
			 * second reply is skipped by a later call). */
			json_decref(msg);
			hellos++;
			if ((rc = send_all(fd, wire, strlen(wire), deadline, w, "the guest agent")) != 0)
				break;
			continue;
		}
		json_t *jid = json_object_get(msg, "id");
		if (!json_is_integer(jid) || json_integer_value(jid) != id) {
			json_decref(msg); /* a reply to an earlier, timed-out call */
			continue;
		}
		json_t *ok = json_object_get(msg, "ok");
		if (json_is_true(ok)) {
			*reply = msg;
			rc = 0;
			break;
		}
		if (json_is_false(ok)) {
			const char *err = json_string_value(json_object_get(msg, "error"));
			rc = bng_err(BANGER_EIO, "guest agent: %s: %s", name, err ? err : "failed without a message");
		} else {
			rc = bng_err(BANGER_EPROTO, "bad reply from the guest agent to \"%s\": no \"ok\"", name);
		}
		json_decref(msg);
		break;
	}
	free(wire);
	return rc;
}

int bng_agent_call(int fd, const char *op, int timeout_ms, json_t **reply)
{
	return agent_call(fd, op, NULL, timeout_ms, NULL, reply);
}

int bng_agent_call_args(int fd, const char *op, json_t *args, int timeout_ms, json_t **reply)
{
	return agent_call(fd, op, args, timeout_ms, NULL, reply);
}

int bng_agent_connect(const char *path, bool vsock, int timeout_ms, int *fd)
{
	return vsock ? bng_agent_connect_vsock_uds(path, BNG_AGENT_VSOCK_PORT, timeout_ms, fd)
		     : bng_agent_connect_unix(path, timeout_ms, fd);
}

/* Sleeps up to ms in 50 ms steps, ending early with the watch's error. */
static int watch_sleep(const bng_agent_watch *w, int ms)
{
	long long deadline = deadline_after(ms);
	int left, rc;
	while ((rc = bng_agent_watch_check(w)) == 0 && (left = remaining_ms(deadline)) > 0) {
		struct timespec ts = {0, (left < 50 ? left : 50) * 1000000L};
		nanosleep(&ts, NULL);
	}
	return rc;
}

int bng_agent_wait_healthy(const char *path_or_uds, bool vsock, int timeout_ms, const bng_agent_watch *w,
			   json_t **health)
{
	*health = NULL;
	if (!path_or_uds || !*path_or_uds)
		return bng_err(BANGER_EINVAL, "no guest agent socket path given");
	long long deadline = deadline_after(timeout_ms);
	char last[256] = "no attempt made";
	int fd = -1, attempt_ms = 500, timeouts = 0, rc = 0, left;
	while ((left = remaining_ms(deadline)) > 0) {
		rc = 0;
		if (fd < 0) {
			int t = left < 1000 ? left : 1000;
			rc = bng_agent_connect(path_or_uds, vsock, t, &fd);
		}
		if (!rc) {
			/* Longer waits each time: a slow (TCG) guest still gets to
			 * answer; the earlier request's late reply is skipped by id. */
			int t = left < attempt_ms ? left : attempt_ms;
			rc = agent_call(fd, "health", NULL, t, w, health);
			if (!rc)
				break;
			if (attempt_ms < 4000)
				attempt_ms *= 2;
		}
		if (rc == BANGER_ECANCELED || (rc == BANGER_EIO && bng_agent_watch_check(w)))
			break;
		snprintf(last, sizeof(last), "%s", banger_error_last());
		/* On a timeout keep the connection: QEMU holds our request until the
		 * agent opens its port, and the agent's hello makes us ask again
		 * after it restarts. Every fourth timeout in a row starts afresh,
		 * in case the channel itself is wedged. Anything else: reconnect. */
		timeouts = rc == BANGER_ETIMEDOUT ? timeouts + 1 : 0;
		if (fd >= 0 && (rc != BANGER_ETIMEDOUT || timeouts % 4 == 0)) {
			close(fd);
			fd = -1;
		}
		left = remaining_ms(deadline);
		if (fd < 0 && (rc = watch_sleep(w, left < 100 ? left : 100)) != 0)
			break;
		rc = BANGER_ETIMEDOUT;
	}
	if (fd >= 0)
		close(fd);
	if (!rc)
		return 0;
	if (rc != BANGER_ETIMEDOUT)
		return rc;
	return bng_err(BANGER_ETIMEDOUT, "the guest agent at %s did not answer within %d s (last error: %s)", path_or_uds,
		       timeout_ms / 1000, last);
}

int bng_agent_wait_sshd(const char *path_or_uds, bool vsock, int timeout_ms, const bng_agent_watch *w)
{
	long long deadline = deadline_after(timeout_ms);
	char last[256] = "no attempt made";
	int fd = -1, rc = BANGER_ETIMEDOUT, left;
	while ((left = remaining_ms(deadline)) > 0) {
		if (fd < 0 && bng_agent_connect(path_or_uds, vsock, left < 2000 ? left : 2000, &fd) != 0)
			fd = -1;
		json_t *reply = NULL;
		/* wait_sshd waits in the guest for up to 1 s: a slow guest gets 10 */
		rc = fd < 0 ? BANGER_ECONNECT : agent_call(fd, "wait_sshd", NULL, left < 10000 ? left : 10000, w, &reply);
		bool listening = !rc && json_is_true(json_object_get(reply, "listening"));
		json_decref(reply);
		if (listening || rc == BANGER_ECANCELED || (rc == BANGER_EIO && bng_agent_watch_check(w)))
			break;
		snprintf(last, sizeof(last), "%s", rc ? banger_error_last() : "nothing listens on port 22");
		if (rc && rc != BANGER_ETIMEDOUT && fd >= 0) { /* after a timeout, the late reply is skipped by id */
			close(fd);
			fd = -1;
		}
		left = remaining_ms(deadline); /* wait_sshd itself waits in the guest; a failure waits here */
		if (rc && (rc = watch_sleep(w, left < 500 ? left : 500)) != 0)
			break;
		rc = BANGER_ETIMEDOUT;
	}
	if (fd >= 0)
		close(fd);
	if (!rc)
		return 0;
	if (rc != BANGER_ETIMEDOUT)
		return rc;
	return bng_err(BANGER_ETIMEDOUT, "sshd did not start listening in the guest within %d s (last: %s)",
		       timeout_ms / 1000, last);
}

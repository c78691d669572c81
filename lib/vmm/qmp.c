#include "qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A QMP line bigger than this is not something we asked for. */
#define QMP_MAX_LINE (1 << 20)

struct bng_qmp {
	int fd;
	char *what;
	char *buf;
	size_t len, cap;
	unsigned long next_id;
	unsigned events;
};

static int left_ms(long long deadline)
{
	long long left = deadline - bng_now_ms();
	return left < 0 ? 0 : (int)left;
}

/* Waits for fd to become ready for events before the deadline. */
static int wait_fd(bng_qmp *q, short events, long long deadline, const char *doing)
{
	for (;;) {
		struct pollfd p = {.fd = q->fd, .events = events};
		int r = poll(&p, 1, left_ms(deadline));
		if (r > 0)
			return 0;
		if (r == 0)
			return bng_err(BANGER_ETIMEDOUT, "QEMU did not answer on %s while %s (is the VM process stuck?)",
				       q->what, doing);
		if (errno != EINTR)
			return bng_err_errno(BANGER_EIO, errno, "poll on %s", q->what);
	}
}

static int send_all(bng_qmp *q, const char *data, size_t len, long long deadline, const char *doing)
{
	while (len > 0) {
		/* MSG_NOSIGNAL: a VM that just died must not SIGPIPE the daemon. */
		ssize_t n = send(q->fd, data, len, MSG_NOSIGNAL);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rc = wait_fd(q, POLLOUT, deadline, doing);
			if (rc)
				return rc;
			continue;
		}
		return bng_err_errno(BANGER_EIO, errno, "cannot write to %s while %s", q->what, doing);
	}
	return 0;
}

/* Reads the next JSON object (one line) before the deadline. */
static int read_msg(bng_qmp *q, long long deadline, const char *doing, json_t **out)
{
	for (;;) {
		char *nl = q->len ? memchr(q->buf, '\n', q->len) : NULL;
		if (nl) {
			size_t n = (size_t)(nl - q->buf) + 1;
			size_t skip = 0;
			while (skip < n - 1 && (q->buf[skip] == ' ' || q->buf[skip] == '\t' || q->buf[skip] == '\r'))
				skip++;
			json_t *msg = NULL;
			json_error_t jerr;
			if (skip < n - 1)
				msg = json_loadb(q->buf, n, 0, &jerr);
			bool blank = skip >= n - 1;
			memmove(q->buf, q->buf + n, q->len - n);
			q->len -= n;
			if (blank)
				continue;
			if (!msg || !json_is_object(msg)) {
				json_decref(msg);
				return bng_err(BANGER_EPROTO, "malformed QMP message from %s while %s", q->what, doing);
			}
			*out = msg;
			return 0;
		}
		if (q->len >= QMP_MAX_LINE)
			return bng_err(BANGER_ETOOBIG, "QMP message from %s over %d bytes while %s", q->what,
				       QMP_MAX_LINE, doing);
		if (q->cap - q->len < 4096) {
			size_t cap = q->cap ? q->cap * 2 : 8192;
			char *nb = realloc(q->buf, cap);
			if (!nb)
				return bng_err(BANGER_ENOMEM, "out of memory");
			q->buf = nb;
			q->cap = cap;
		}
		ssize_t r = recv(q->fd, q->buf + q->len, q->cap - q->len, 0);
		if (r > 0) {
			q->len += (size_t)r;
			continue;
		}
		if (r == 0)
			return bng_err(BANGER_EIO, "QEMU closed %s while %s (did the VM process exit?)", q->what, doing);
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return bng_err_errno(BANGER_EIO, errno, "cannot read from %s while %s", q->what, doing);
		int rc = wait_fd(q, POLLIN, deadline, doing);
		if (rc)
			return rc;
	}
}

static int execute_until(bng_qmp *q, const char *command, json_t *args, long long deadline, json_t **ret)
{
	char doing[96];
	snprintf(doing, sizeof(doing), "running %s", command);
	unsigned long id = ++q->next_id;
	json_t *req = json_pack("{s:s, s:I}", "execute", command, "id", (json_int_t)id);
	if (!req)
		return bng_err(BANGER_ENOMEM, "out of memory");
	if (args)
		json_object_set(req, "arguments", args);
	char *line = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!line)
		return bng_err(BANGER_ENOMEM, "out of memory");
	size_t n = strlen(line);
	line[n] = '\n'; /* QMP reads lines: the NUL becomes the terminator */
	int rc = send_all(q, line, n + 1, deadline, doing);
	free(line);
	if (rc)
		return rc;
	for (;;) {
		json_t *msg = NULL;
		rc = read_msg(q, deadline, doing, &msg);
		if (rc)
			return rc;
		if (json_object_get(msg, "event")) {
			q->events++;
			json_decref(msg);
			continue;
		}
		/* A reply to an earlier command that timed out arrives late: skip it. */
		json_t *rid = json_object_get(msg, "id");
		if (rid && (!json_is_integer(rid) || (unsigned long)json_integer_value(rid) != id)) {
			json_decref(msg);
			continue;
		}
		json_t *err = json_object_get(msg, "error");
		json_t *val = json_object_get(msg, "return");
		if (err) {
			const char *cls = json_string_value(json_object_get(err, "class"));
			const char *desc = json_string_value(json_object_get(err, "desc"));
			rc = bng_err(cls && !strcmp(cls, "CommandNotFound") ? BANGER_EUNSUPPORTED : BANGER_EIO,
				     "QEMU refused %s: %s (%s)", command, desc ? desc : "no description",
				     cls ? cls : "no error class");
			json_decref(msg);
			return rc;
		}
		if (!val) {
			json_decref(msg);
			return bng_err(BANGER_EPROTO, "QMP reply to %s from %s has neither return nor error", command,
				       q->what);
		}
		if (ret)
			*ret = json_incref(val);
		json_decref(msg);
		return 0;
	}
}

/* Greeting, then capability negotiation. */
static int handshake(bng_qmp *q, long long deadline)
{
	for (;;) {
		json_t *msg = NULL;
		int rc = read_msg(q, deadline, "waiting for the QMP greeting", &msg);
		if (rc)
			return rc;
		bool greeting = json_is_object(json_object_get(msg, "QMP"));
		bool event = json_object_get(msg, "event") != NULL;
		json_decref(msg);
		if (greeting)
			break;
		if (!event)
			return bng_err(BANGER_EPROTO, "%s does not speak QMP (no greeting)", q->what);
		q->events++;
	}
	return execute_until(q, "qmp_capabilities", NULL, deadline, NULL);
}

int bng_qmp_open_fd(bng_qmp **out, int fd, const char *what, int timeout_ms)
{
	*out = NULL;
	long long deadline = bng_now_ms() + timeout_ms;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int e = errno;
		close(fd);
		return bng_err_errno(BANGER_EIO, e, "cannot set up %s", what);
	}
	bng_qmp *q = bng_xcalloc(1, sizeof(*q));
	q->fd = fd;
	q->what = bng_strdup(what);
	int rc = handshake(q, deadline);
	if (rc) {
		bng_qmp_close(q);
		return rc;
	}
	*out = q;
	return 0;
}

int bng_qmp_connect(bng_qmp **out, const char *path, int timeout_ms)
{
	*out = NULL;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return bng_err(BANGER_EINVAL, "QMP socket path %s is too long for a Unix socket (max %zu bytes)", path,
			       sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return bng_err_errno(BANGER_EIO, errno, "socket");
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (errno == EINTR)
			continue;
		int e = errno;
		close(fd);
		return bng_err_errno(BANGER_ECONNECT, e, "cannot connect to QMP socket %s (is the VM running?)", path);
	}
	char what[160];
	snprintf(what, sizeof(what), "QMP socket %s", path);
	return bng_qmp_open_fd(out, fd, what, timeout_ms);
}

int bng_qmp_execute(bng_qmp *q, const char *command, json_t *args, int timeout_ms, json_t **ret)
{
	if (ret)
		*ret = NULL;
	return execute_until(q, command, args, bng_now_ms() + timeout_ms, ret);
}

unsigned bng_qmp_events_skipped(const bng_qmp *q)
{
	return q ? q->events : 0;
}

void bng_qmp_close(bng_qmp *q)
{
	if (!q)
		return;
	close(q->fd);
	free(q->what);
	free(q->buf);
	free(q);
}

int bng_qmp_call(const char *path, const char *command, json_t *args, int timeout_ms, json_t **ret)
{
	if (ret)
		*ret = NULL;
	long long deadline = bng_now_ms() + timeout_ms;
	bng_qmp *q = NULL;
	int rc = bng_qmp_connect(&q, path, timeout_ms);
	if (rc)
		return rc;
	rc = execute_until(q, command, args, deadline, ret);
	bng_qmp_close(q);
	return rc;
}

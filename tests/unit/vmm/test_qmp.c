/* lib/vmm/qmp.c against a fake QMP server: a thread on the other end of a
 * socketpair (or a real listening Unix socket) that plays one scripted
 * conversation per test: greeting, capabilities, replies, async events,
 * error replies, stale replies, silence, garbage, hang-ups. */
#include "../check.h"

#include "vmm/qmp.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#define CHECK_ERR(expr, code, needle)                                                        \
	do {                                                                                 \
		int chk_r_ = (expr);                                                         \
		CHECK_EQ_INT(chk_r_, code);                                                  \
		CHECK_STR_CONTAINS(banger_error_last(), needle);                             \
	} while (0)

static const char greeting[] =
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, "
	"\"capabilities\": [\"oob\"]}}\r\n";

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the fake server's side ---- */

typedef struct server server;
typedef void (*script_fn)(server *s);
struct server {
	int fd;
	script_fn script;
	pthread_t thread;
	char buf[65536];
	size_t len;
	int failures; /* checks that failed on the server thread */
};

static void srv_send(server *s, const char *text)
{
	size_t len = strlen(text);
	while (len) {
		ssize_t n = send(s->fd, text, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		text += n;
		len -= (size_t)n;
	}
}

/* Reads one request line; NULL on EOF. */
static json_t *srv_read(server *s)
{
	for (;;) {
		char *nl = memchr(s->buf, '\n', s->len);
		if (nl) {
			size_t n = (size_t)(nl - s->buf) + 1;
			json_t *req = json_loadb(s->buf, n, 0, NULL);
			memmove(s->buf, s->buf + n, s->len - n);
			s->len -= n;
			if (!req)
				s->failures++;
			return req;
		}
		ssize_t r = recv(s->fd, s->buf + s->len, sizeof(s->buf) - s->len, 0);
		if (r <= 0)
			return NULL;
		s->len += (size_t)r;
	}
}

/* Reads a request, checks it runs command, returns its id (-1 if none). */
static long long srv_expect(server *s, const char *command)
{
	json_t *req = srv_read(s);
	const char *cmd = json_string_value(json_object_get(req, "execute"));
	if (!cmd || strcmp(cmd, command) != 0) {
		fprintf(stderr, "fake QMP: wanted %s, got %s\n", command, cmd ? cmd : "(nothing)");
		s->failures++;
	}
	json_t *id = json_object_get(req, "id");
	long long v = json_is_integer(id) ? json_integer_value(id) : -1;
	json_decref(req);
	return v;
}

static void srv_reply(server *s, long long id, const char *ret)
{
	char line[1024];
	snprintf(line, sizeof(line), "{\"return\": %s, \"id\": %lld}\r\n", ret, id);
	srv_send(s, line);
}

static void srv_handshake(server *s)
{
	srv_send(s, greeting);
	srv_reply(s, srv_expect(s, "qmp_capabilities"), "{}");
}

static void *srv_main(void *arg)
{
	server *s = arg;
	s->script(s);
	shutdown(s->fd, SHUT_RDWR);
	return NULL;
}

/* Starts the server on a socketpair; *client gets the other end. */
static server *srv_start(script_fn script, int *client)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	server *s = calloc(1, sizeof(*s));
	s->fd = sv[1];
	s->script = script;
	*client = sv[0];
	pthread_create(&s->thread, NULL, srv_main, s);
	return s;
}

static void srv_join(server *s)
{
	pthread_join(s->thread, NULL);
	CHECK_EQ_INT(s->failures, 0);
	close(s->fd);
	free(s);
}

/* ---- scripts ---- */

static void script_basic(server *s)
{
	srv_handshake(s);
	long long id = srv_expect(s, "query-status");
	/* Events may come at any time; the client must skip them. */
	srv_send(s, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"RESUME\"}\r\n");
	srv_send(s, "\r\n"); /* a blank line is not a message */
	srv_send(s, "{\"event\": \"NIC_RX_FILTER_CHANGED\", \"data\": {\"path\": \"/x\"}}\r\n");
	srv_reply(s, id, "{\"status\": \"running\", \"singlestep\": false, \"running\": true}");
	/* Arguments reach the server. */
	json_t *req = srv_read(s);
	json_t *args = json_object_get(req, "arguments");
	if (!json_is_object(args) || json_integer_value(json_object_get(args, "value")) != 42)
		s->failures++;
	srv_reply(s, json_integer_value(json_object_get(req, "id")), "{}");
	json_decref(req);
	/* A reply split into single bytes, without an id, with a bare \n. */
	srv_expect(s, "stop");
	const char *reply = "{\"return\": {}}\n";
	for (const char *p = reply; *p; p++) {
		char one[2] = {*p, 0};
		srv_send(s, one);
		usleep(1000);
	}
}

static void test_basic(void)
{
	int fd;
	server *s = srv_start(script_basic, &fd);
	bng_qmp *q = NULL;
	CHECK_OK(bng_qmp_open_fd(&q, fd, "fake QMP", 2000));
	json_t *ret = NULL;
	CHECK_OK(bng_qmp_execute(q, "query-status", NULL, 2000, &ret));
	CHECK_EQ_STR(json_string_value(json_object_get(ret, "status")), "running");
	CHECK(json_is_true(json_object_get(ret, "running")));
	CHECK_EQ_INT(bng_qmp_events_skipped(q), 2);
	json_decref(ret);
	json_t *args = json_pack("{s:i}", "value", 42);
	CHECK_OK(bng_qmp_execute(q, "human-monitor-command", args, 2000, NULL));
	json_decref(args);
	CHECK_OK(bng_qmp_execute(q, "stop", NULL, 2000, &ret));
	CHECK(json_is_object(ret) && json_object_size(ret) == 0);
	json_decref(ret);
	bng_qmp_close(q);
	srv_join(s);
}

static void script_errors(server *s)
{
	srv_handshake(s);
	srv_send(s, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command bogus has not been found\"}, "
		    "\"id\": ");
	char id[32];
	snprintf(id, sizeof(id), "%lld}\r\n", srv_expect(s, "bogus"));
	srv_send(s, id);
	long long i = srv_expect(s, "cont");
	char line[256];
	snprintf(line, sizeof(line),
		 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Resetting the VM is required\"}, \"id\": %lld}\r\n",
		 i);
	srv_send(s, line);
	/* Neither return nor error. */
	snprintf(line, sizeof(line), "{\"id\": %lld}\r\n", srv_expect(s, "query-status"));
	srv_send(s, line);
	/* Not JSON at all. */
	srv_expect(s, "query-status");
	srv_send(s, "this is not json\r\n");
}

static void test_errors(void)
{
	int fd;
	server *s = srv_start(script_errors, &fd);
	bng_qmp *q = NULL;
	CHECK_OK(bng_qmp_open_fd(&q, fd, "fake QMP", 2000));
	json_t *ret = (json_t *)1;
	CHECK_ERR(bng_qmp_execute(q, "bogus", NULL, 2000, &ret), BANGER_EUNSUPPORTED, "The command bogus has not been found");
	CHECK(ret == NULL);
	CHECK_ERR(bng_qmp_execute(q, "cont", NULL, 2000, NULL), BANGER_EIO, "QEMU refused cont: Resetting the VM is required (GenericError)");
	CHECK_ERR(bng_qmp_execute(q, "query-status", NULL, 2000, NULL), BANGER_EPROTO, "neither return nor error");
	CHECK_ERR(bng_qmp_execute(q, "query-status", NULL, 2000, NULL), BANGER_EPROTO, "malformed QMP message");
	bng_qmp_close(q);
	srv_join(s);
}

static void script_timeout(server *s)
{
	srv_handshake(s);
	long long slow = srv_expect(s, "query-status");
	/* ...no answer until the client gave up and asked something else... */
	long long next = srv_expect(s, "query-name");
	srv_reply(s, slow, "{\"status\": \"running\"}"); /* stale: must be skipped */
	srv_reply(s, next, "{\"name\": \"vm\"}");
	/* Then silence until the client hangs up. */
	srv_expect(s, "query-status");
	srv_read(s);
}

static void test_timeout(void)
{
	int fd;
	server *s = srv_start(script_timeout, &fd);
	bng_qmp *q = NULL;
	CHECK_OK(bng_qmp_open_fd(&q, fd, "fake QMP", 2000));
	long long t0 = now_ms();
	CHECK_ERR(bng_qmp_execute(q, "query-status", NULL, 300, NULL), BANGER_ETIMEDOUT, "running query-status");
	long long took = now_ms() - t0;
	CHECK(took >= 280 && took < 2000);
	json_t *ret = NULL;
	CHECK_OK(bng_qmp_execute(q, "query-name", NULL, 2000, &ret));
	CHECK_EQ_STR(json_string_value(json_object_get(ret, "name")), "vm");
	json_decref(ret);
	CHECK_ERR(bng_qmp_execute(q, "query-status", NULL, 100, NULL), BANGER_ETIMEDOUT, "did not answer");
	bng_qmp_close(q); /* the server sees EOF and ends */
	srv_join(s);
}

static void script_silent(server *s)
{
	srv_read(s); /* no greeting: wait for the client to give up */
}

static void script_not_qmp(server *s)
{
	srv_send(s, "{\"hello\": \"world\"}\n");
	srv_read(s);
}

static void script_event_then_greeting(server *s)
{
	srv_send(s, "{\"event\": \"EARLY\"}\n");
	srv_handshake(s);
	srv_read(s);
}

static void script_hangup(server *s)
{
	srv_handshake(s);
	srv_expect(s, "quit");
	/* closes without replying, like QEMU on quit */
}

static void script_caps_refused(server *s)
{
	srv_send(s, greeting);
	char line[256];
	snprintf(line, sizeof(line), "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, \"id\": %lld}\n",
		 srv_expect(s, "qmp_capabilities"));
	srv_send(s, line);
	srv_read(s);
}

static void script_huge(server *s)
{
	srv_handshake(s);
	srv_expect(s, "query-status");
	char *big = malloc((1 << 20) + 16);
	memset(big, ' ', (1 << 20) + 15);
	big[(1 << 20) + 15] = '\0';
	srv_send(s, big);
	free(big);
	srv_read(s);
}

static void test_handshake_failures(void)
{
	int fd;
	bng_qmp *q = (bng_qmp *)1;
	server *s = srv_start(script_silent, &fd);
	long long t0 = now_ms();
	CHECK_ERR(bng_qmp_open_fd(&q, fd, "fake QMP", 200), BANGER_ETIMEDOUT, "waiting for the QMP greeting");
	CHECK(now_ms() - t0 < 2000);
	CHECK(q == NULL);
	srv_join(s);

	s = srv_start(script_not_qmp, &fd);
	CHECK_ERR(bng_qmp_open_fd(&q, fd, "fake QMP", 2000), BANGER_EPROTO, "does not speak QMP");
	srv_join(s);

	s = srv_start(script_caps_refused, &fd);
	CHECK_ERR(bng_qmp_open_fd(&q, fd, "fake QMP", 2000), BANGER_EIO, "QEMU refused qmp_capabilities");
	srv_join(s);

	s = srv_start(script_event_then_greeting, &fd);
	CHECK_OK(bng_qmp_open_fd(&q, fd, "fake QMP", 2000));
	CHECK_EQ_INT(bng_qmp_events_skipped(q), 1);
	bng_qmp_close(q);
	srv_join(s);

	s = srv_start(script_hangup, &fd);
	CHECK_OK(bng_qmp_open_fd(&q, fd, "fake QMP", 2000));
	CHECK_ERR(bng_qmp_execute(q, "quit", NULL, 2000, NULL), BANGER_EIO, "QEMU closed fake QMP");
	/* Writing to a closed peer gives an error, not SIGPIPE. */
	int rc = bng_qmp_execute(q, "quit", NULL, 500, NULL);
	CHECK(rc == BANGER_EIO);
	bng_qmp_close(q);
	srv_join(s);

	s = srv_start(script_huge, &fd);
	CHECK_OK(bng_qmp_open_fd(&q, fd, "fake QMP", 2000));
	CHECK_ERR(bng_qmp_execute(q, "query-status", NULL, 5000, NULL), BANGER_ETOOBIG, "over 1048576 bytes");
	bng_qmp_close(q);
	srv_join(s);
}

/* ---- over a real Unix socket ---- */

typedef struct {
	int listen_fd;
	server *s;
} listener;

static void script_call(server *s)
{
	srv_handshake(s);
	srv_reply(s, srv_expect(s, "query-status"), "{\"status\": \"paused\", \"running\": false}");
	srv_read(s);
}

static void *accept_main(void *arg)
{
	listener *l = arg;
	struct pollfd p = {.fd = l->listen_fd, .events = POLLIN};
	if (poll(&p, 1, 5000) != 1)
		return NULL;
	int fd = accept4(l->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return NULL;
	l->s->fd = fd;
	l->s->script(l->s);
	close(fd);
	return NULL;
}

static void test_unix_socket(void)
{
	char *dir = check_tmpdir("qmp");
	char path[256];
	snprintf(path, sizeof(path), "%s/qmp.sock", dir);

	CHECK_ERR(bng_qmp_call(path, "query-status", NULL, 500, NULL), BANGER_ECONNECT, "is the VM running?");
	char longpath[200];
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	CHECK_ERR(bng_qmp_call(longpath, "query-status", NULL, 500, NULL), BANGER_EINVAL, "too long");

	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, path, strlen(path) + 1); /* check_tmpdir paths are short */
	CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(listen(lfd, 4) == 0);
	server srv = {.script = script_call};
	listener l = {.listen_fd = lfd, .s = &srv};
	pthread_t t;
	pthread_create(&t, NULL, accept_main, &l);
	json_t *ret = NULL;
	CHECK_OK(bng_qmp_call(path, "query-status", NULL, 2000, &ret));
	CHECK_EQ_STR(json_string_value(json_object_get(ret, "status")), "paused");
	json_decref(ret);
	pthread_join(t, NULL);
	CHECK_EQ_INT(srv.failures, 0);

	/* Listening but never accepting: the greeting never comes. */
	long long t0 = now_ms();
	CHECK_ERR(bng_qmp_call(path, "query-status", NULL, 300, NULL), BANGER_ETIMEDOUT, "greeting");
	CHECK(now_ms() - t0 < 2000);
	close(lfd);
	check_rm_rf(dir);
	free(dir);
}

int main(void)
{
	test_basic();
	test_errors();
	test_timeout();
	test_handshake_failures();
	test_unix_socket();
	return check_summary();
}

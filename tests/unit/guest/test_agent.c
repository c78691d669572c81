/* The guest agent (guest/agent/agent.c, binary in $BANGER_AGENT) run on the
 * host, driven through lib/guest's client and through raw bytes: health,
 * ports, wait_sshd, sync, refused power ops, malformed and oversized lines, many
 * requests, stdio and pty device modes, and Firecracker's hybrid vsock
 * handshake through a fake Firecracker socket. */
#include "check.h"
#include "guest/agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

#define MAX_LINE 65536

static const char *agent_bin;
static char *tmp;

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static char *read_text(const char *path)
{
	char *text = NULL;
	if (bng_read_file(path, &text, NULL) != 0)
		return NULL;
	size_t n = strlen(text);
	while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
		text[--n] = '\0';
	return text;
}

/* ---- agent processes ---- */

/* Runs the agent with args (NULL-terminated); stdin/stdout replaced when >= 0. */
static pid_t spawn(const char *const *args, int in_fd, int out_fd)
{
	const char *argv[16] = {agent_bin};
	size_t n = 1;
	for (; args[n - 1] && n < 15; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		abort();
	}
	if (pid == 0) {
		if (in_fd >= 0)
			dup2(in_fd, STDIN_FILENO);
		if (out_fd >= 0)
			dup2(out_fd, STDOUT_FILENO);
		execv(agent_bin, (char *const *)argv);
		perror(agent_bin);
		_exit(127);
	}
	return pid;
}

/* Waits up to ms for pid; its wait status, or -1 if it is still running. */
static int wait_exit(pid_t pid, int ms)
{
	for (long long end = mono_ms() + ms;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (mono_ms() >= end)
			return -1;
		sleep_ms(10);
	}
}

/* SIGTERM must end the agent cleanly (a crash would show here). */
static void stop_agent(pid_t pid)
{
	kill(pid, SIGTERM);
	int st = wait_exit(pid, 5000);
	if (st == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		CHECK(!"agent did not stop on SIGTERM");
		return;
	}
	CHECK(WIFEXITED(st));
	CHECK_EQ_INT(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0);
}

static pid_t start_unix_agent(const char *sock)
{
	const char *args[] = {"--listen-unix", sock, NULL};
	pid_t pid = spawn(args, -1, -1);
	json_t *health = NULL;
	CHECK_OK(bng_agent_wait_healthy(sock, false, 10000, NULL, &health));
	json_decref(health);
	return pid;
}

static int connect_agent(const char *sock)
{
	int fd = -1;
	CHECK_OK(bng_agent_connect_unix(sock, 2000, &fd));
	return fd;
}

/* ---- raw line I/O ---- */

static void write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t w = write(fd, p, len); /* SIGPIPE is ignored */
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			perror("send");
			CHECK(!"write to the agent failed");
			return;
		}
		p += w;
		len -= (size_t)w;
	}
}

/* One line from fd (any fd: socket, pipe, pty), without its newline; NULL
 * on EOF or after timeout_ms. */
static char *read_line_fd(int fd, int timeout_ms)
{
	size_t len = 0, cap = 256;
	char *line = malloc(cap);
	long long end = mono_ms() + timeout_ms;
	for (;;) {
		int left = (int)(end - mono_ms());
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		char ch;
		ssize_t n = read(fd, &ch, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (ch == '\n') {
			line[len] = '\0';
			return line;
		}
		if (len + 2 > cap)
			line = realloc(line, cap *= 2);
		line[len++] = ch;
	}
	free(line);
	return NULL;
}

/* Reads one reply line; it must be a JSON object (so valid UTF-8, as
 * jansson checks). */
static json_t *read_reply(int fd)
{
	char *line = read_line_fd(fd, 10000);
	CHECK(line != NULL);
	if (!line)
		return NULL;
	json_error_t err;
	json_t *j = json_loads(line, 0, &err);
	if (!json_is_object(j))
		fprintf(stderr, "not a JSON object: %.200s (%s)\n", line, err.text);
	CHECK(json_is_object(j));
	free(line);
	return j;
}

static json_t *exchange(int fd, const char *data, size_t len)
{
	write_all(fd, data, len);
	return read_reply(fd);
}

static json_t *exchange_str(int fd, const char *line) { return exchange(fd, line, strlen(line)); }

static const char *jstr(json_t *obj, const char *key) { return json_string_value(json_object_get(obj, key)); }

/* An {"ok":false} reply with id (-1: null) whose error contains needle. */
static void check_error_reply(json_t *r, long long id, const char *needle, int line)
{
	json_t *jid = json_object_get(r, "id");
	bool id_ok = id < 0 ? json_is_null(jid) : json_is_integer(jid) && json_integer_value(jid) == id;
	bool ok_false = json_is_false(json_object_get(r, "ok"));
	const char *e = jstr(r, "error");
	if (!id_ok || !ok_false || !e || !strstr(e, needle)) {
		char *dump = r ? json_dumps(r, 0) : NULL;
		fprintf(stderr, "line %d: want error reply id %lld containing \"%s\", got %s\n", line, id, needle,
			dump ? dump : "(none)");
		free(dump);
	}
	CHECK(id_ok);
	CHECK(ok_false);
	CHECK_STR_CONTAINS(e, needle);
	json_decref(r);
}
#define CHECK_ERROR_REPLY(r, id, needle) check_error_reply((r), (id), (needle), __LINE__)

/* ---- health, ports, sync, power ---- */

static void test_health(const char *sock)
{
	int fd = connect_agent(sock);
	json_t *h = NULL;
	CHECK_OK(bng_agent_call(fd, "health", 5000, &h));
	char *boot_id = read_text("/proc/sys/kernel/random/boot_id");
	CHECK(boot_id != NULL);
	CHECK_EQ_STR(jstr(h, "boot_id"), boot_id);
	CHECK_EQ_STR(jstr(h, "version"), banger_version());
	struct utsname un;
	CHECK(uname(&un) == 0);
	CHECK_EQ_STR(jstr(h, "hostname"), un.nodename);
	json_t *up = json_object_get(h, "uptime_s");
	CHECK(json_is_number(up) && json_number_value(up) > 0);
	CHECK(json_is_true(json_object_get(h, "ok")));
	free(boot_id);
	json_decref(h);
	close(fd);
}

/* Finds {"proto","address","port"} in a ports reply. */
static json_t *find_port(json_t *ports, const char *proto, const char *addr, unsigned port)
{
	size_t i;
	json_t *e;
	json_array_foreach(ports, i, e) {
		if (strcmp(jstr(e, "proto") ? jstr(e, "proto") : "", proto) == 0 &&
		    strcmp(jstr(e, "address") ? jstr(e, "address") : "", addr) == 0 &&
		    json_integer_value(json_object_get(e, "port")) == (json_int_t)port)
			return e;
	}
	return NULL;
}

static unsigned bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	CHECK(getsockname(fd, (struct sockaddr *)&ss, &len) == 0);
	return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					: ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int bound_socket(int family, int type, bool do_listen)
{
	int fd = socket(family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int rc;
	if (family == AF_INET6) {
		struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
		rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
	} else {
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
	}
	if (rc != 0 || (do_listen && listen(fd, 4) != 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void check_mine(json_t *e, const char *what)
{
	if (!e)
		fprintf(stderr, "ports: %s not found\n", what);
	CHECK(e != NULL);
	if (!e)
		return;
	char *comm = read_text("/proc/self/comm");
	CHECK_EQ_INT(json_integer_value(json_object_get(e, "pid")), getpid());
	CHECK_EQ_STR(jstr(e, "process"), comm);
	CHECK_STR_CONTAINS(jstr(e, "command"), "test_agent");
	free(comm);
}

static void test_ports(const char *sock)
{
	int tcp = bound_socket(AF_INET, SOCK_STREAM, true);
	int udp = bound_socket(AF_INET, SOCK_DGRAM, false);
	int tcp6 = bound_socket(AF_INET6, SOCK_STREAM, true); /* -1 without IPv6 */
	CHECK(tcp >= 0 && udp >= 0);
	/* An established connection is not a listening port. */
	int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)bound_port(tcp)),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(connect(client, (struct sockaddr *)&to, sizeof(to)) == 0);

	int fd = connect_agent(sock);
	json_t *r = NULL;
	CHECK_OK(bng_agent_call(fd, "ports", 5000, &r));
	json_t *ports = json_object_get(r, "ports");
	CHECK(json_is_array(ports));
	check_mine(find_port(ports, "tcp", "127.0.0.1", bound_port(tcp)), "tcp listener");
	check_mine(find_port(ports, "udp", "127.0.0.1", bound_port(udp)), "udp socket");
	if (tcp6 >= 0)
		check_mine(find_port(ports, "tcp6", "::1", bound_port(tcp6)), "tcp6 listener");
	CHECK(find_port(ports, "tcp", "127.0.0.1", bound_port(client)) == NULL);

	/* Every entry is well formed, and the list is sorted by port. */
	size_t i;
	json_t *e;
	json_int_t prev = 0;
	json_array_foreach(ports, i, e) {
		json_int_t port = json_integer_value(json_object_get(e, "port"));
		CHECK(port > 0 && port < 65536 && port >= prev);
		prev = port;
		const char *proto = jstr(e, "proto");
		CHECK(proto && (!strcmp(proto, "tcp") || !strcmp(proto, "tcp6") || !strcmp(proto, "udp") || !strcmp(proto, "udp6")));
		CHECK(jstr(e, "address") != NULL);
		json_t *pid = json_object_get(e, "pid");
		CHECK(json_is_null(pid) || json_integer_value(pid) > 0);
		CHECK(json_is_null(json_object_get(e, "process")) || jstr(e, "process"));
		CHECK(json_is_null(json_object_get(e, "command")) || jstr(e, "command"));
	}
	json_decref(r);
	close(fd);
	close(client);
	close(tcp);
	close(udp);
	if (tcp6 >= 0)
		close(tcp6);
}

static void test_sync_and_power(const char *sock)
{
	int fd = connect_agent(sock);
	json_t *r = NULL;
	CHECK_OK(bng_agent_call(fd, "sync", 10000, &r));
	CHECK(json_is_true(json_object_get(r, "ok")));
	json_decref(r);

	/* Power ops outside device mode are refused, with a reason. */
	const char *power[] = {"poweroff", "reboot"};
	for (size_t i = 0; i < 2; i++) {
		r = NULL;
		CHECK_EQ_INT(bng_agent_call(fd, power[i], 5000, &r), BANGER_EIO);
		CHECK(r == NULL);
		CHECK_STR_CONTAINS(banger_error_last(), "disabled");
		CHECK_STR_CONTAINS(banger_error_last(), power[i]);
	}
	/* So is setting the clock (it would be this host's), with or without ms. */
	json_t *args = json_pack("{s:I}", "ms", (json_int_t)1);
	CHECK_EQ_INT(bng_agent_call_args(fd, "set_clock", args, 5000, &r), BANGER_EIO);
	CHECK_STR_CONTAINS(banger_error_last(), "set_clock is disabled");
	json_decref(args);
	args = json_pack("{s:s}", "ms", "soon");
	CHECK_EQ_INT(bng_agent_call_args(fd, "set_clock", args, 5000, &r), BANGER_EIO);
	CHECK_STR_CONTAINS(banger_error_last(), "\"ms\" must be an integer");
	json_decref(args);
	CHECK_EQ_INT(bng_agent_call(fd, "frobnicate", 5000, &r), BANGER_EIO);
	CHECK_STR_CONTAINS(banger_error_last(), "unknown op \"frobnicate\"");
	/* Still serving after the refusals. */
	CHECK_OK(bng_agent_call(fd, "health", 5000, &r));
	json_decref(r);
	close(fd);
}

/* ---- hostile input ---- */

static void test_malformed(const char *sock)
{
	int fd = connect_agent(sock);
	CHECK_ERROR_REPLY(exchange_str(fd, "not json\n"), -1, "malformed request");
	CHECK_ERROR_REPLY(exchange_str(fd, "[1,2]\n"), -1, "JSON object");
	CHECK_ERROR_REPLY(exchange_str(fd, "{\"id\":5\n"), 5, "malformed");
	CHECK_ERROR_REPLY(exchange_str(fd, "{\"id\":\"x\",\"op\":\"health\"}\n"), -1, "\"id\" must be an integer");
	CHECK_ERROR_REPLY(exchange_str(fd, "{\"id\":1.5,\"op\":\"health\"}\n"), -1, "\"id\" must be an integer");
	CHECK_ERROR_REPLY(exchange_str(fd, "{\"id\":9223372036854775808,\"op\":\"sync\"}\n"), -1, "out of range");
	CHECK_ERROR_REPLY(exchange_str(fd, "{\"id\":9,\"op\":42}\n"), 9, "\"op\" must be a string");
	CHECK_ERROR_REPLY(exchange_str(fd, "{\"id\":10,\"op\":\"health\"} x\n"), 10, "trailing data");
	CHECK_ERROR_REPLY(exchange_str(fd, "{\"id\":11,\"op\":\"sync\",}\n"), 11, "malformed");
	CHECK_ERROR_REPLY(exchange_str(fd, "{\"id\":12,\"op\":\"he\\qlth\"}\n"), 12, "bad escape");
	CHECK_ERROR_REPLY(exchange_str(fd, "{\"id\":13,\"op\":\"he\tlth\"}\n"), 13, "control character");
	CHECK_ERROR_REPLY(exchange(fd, "{\"id\":14,\"op\":\"he\0th\"}\n", 23), 14, "control character");
	CHECK_ERROR_REPLY(exchange_str(fd, "{\"id\":15}\n"), 15, "missing \"op\"");
	CHECK_ERROR_REPLY(exchange_str(fd, "{\"id\":16,\"op\":\"x\",\"a\":tru}\n"), 16, "invalid JSON value");
	CHECK_ERROR_REPLY(exchange_str(fd, "{\"id\":17,\"op\":\"x\",\"a\":01}\n"), 17, "expected");
	/* Arbitrary bytes in the op come back as valid JSON (read_reply parses
	 * it with jansson, which insists on UTF-8 and refuses \u0000). */
	CHECK_ERROR_REPLY(exchange_str(fd, "{\"id\":18,\"op\":\"\xff\xfe\xc0\x80\"}\n"), 18, "unknown op");
	CHECK_ERROR_REPLY(exchange_str(fd, "{\"id\":19,\"op\":\"a\\u0000b\\ud800\\udc00\\udfff\"}\n"), 19, "unknown op");
	CHECK_ERROR_REPLY(exchange_str(fd, "{\"id\":20,\"op\":\"health\\\"}\\n{\"}\n"), 20, "unknown op");

	/* Deep nesting is refused, not recursed into. */
	size_t depth = 60000;
	char *deep = malloc(depth + 32);
	int n = snprintf(deep, 32, "{\"id\":21,\"x\":");
	memset(deep + n, '[', depth);
	deep[n + depth] = '\n';
	CHECK_ERROR_REPLY(exchange(fd, deep, (size_t)n + depth + 1), 21, "nesting too deep");
	free(deep);

	/* Valid but unusual requests work. */
	json_t *r = exchange_str(fd, " {\"op\" : \"sync\", \"id\" : -9223372036854775808, \"x\":[{},[],\"\\u00e9\",-0.5e3,true,null]}\r\n");
	CHECK(json_is_true(json_object_get(r, "ok")));
	CHECK(json_integer_value(json_object_get(r, "id")) == INT64_MIN);
	json_decref(r);
	r = exchange_str(fd, "{\"id\":1,\"id\":22,\"op\":\"x\",\"op\":\"\\u0073ync\"}\n");
	CHECK(json_is_true(json_object_get(r, "ok")));
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "id")), 22);
	json_decref(r);

	/* Blank lines get no reply: the next reply answers the next request. */
	r = exchange_str(fd, "\n\r\n  \t \n{\"id\":23,\"op\":\"sync\"}\n");
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "id")), 23);
	json_decref(r);

	/* A request dribbled in byte by byte. */
	const char *req = "{\"id\":24,\"op\":\"health\"}\n";
	for (size_t i = 0; req[i + 1]; i++)
		write_all(fd, req + i, 1);
	r = exchange_str(fd, "\n");
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "id")), 24);
	CHECK(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	close(fd);

	/* A client leaving mid-line does not disturb the agent. */
	fd = connect_agent(sock);
	write_all(fd, "{\"id\":25,\"op\":\"he", 17);
	close(fd);
	fd = connect_agent(sock);
	CHECK_OK(bng_agent_call(fd, "health", 5000, &r));
	json_decref(r);
	close(fd);

	/* A last request without its newline is answered at EOF, then the
	 * agent closes. */
	fd = connect_agent(sock);
	write_all(fd, "{\"id\":26,\"op\":\"sync\"}", 21);
	shutdown(fd, SHUT_WR);
	r = read_reply(fd);
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "id")), 26);
	json_decref(r);
	char *eof = read_line_fd(fd, 5000);
	CHECK(eof == NULL);
	close(fd);
}

/* A padded health request exactly `len` bytes long (newline excluded). */
static char *padded_request(int id, size_t len)
{
	char head[64];
	int h = snprintf(head, sizeof(head), "{\"id\":%d,\"op\":\"health\",\"pad\":\"", id);
	char *req = malloc(len + 2);
	memcpy(req, head, (size_t)h);
	memset(req + h, 'a', len - (size_t)h - 2);
	memcpy(req + len - 2, "\"}\n", 3);
	return req;
}

static void test_oversized(const char *sock)
{
	int fd = connect_agent(sock);
	/* Exactly at the cap: answered. */
	char *req = padded_request(30, MAX_LINE);
	json_t *r = exchange(fd, req, MAX_LINE + 1);
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "id")), 30);
	CHECK(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	free(req);

	/* One byte over: refused. */
	req = padded_request(31, MAX_LINE + 1);
	CHECK_ERROR_REPLY(exchange(fd, req, MAX_LINE + 2), -1, "longer than 65536");
	free(req);

	/* Far over: one error for the whole line, then normal service. */
	size_t big = 1000000;
	char *huge = malloc(big + 1);
	memset(huge, '{', big);
	huge[big] = '\n';
	CHECK_ERROR_REPLY(exchange(fd, huge, big + 1), -1, "longer than 65536");
	free(huge);
	r = exchange_str(fd, "{\"id\":32,\"op\":\"sync\"}\n");
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "id")), 32);
	json_decref(r);
	close(fd);
}

/* Random lines, half of them mutated requests: every reply is valid JSON
 * and the agent keeps answering. */
static void test_random_lines(const char *sock)
{
	int fd = connect_agent(sock);
	unsigned seed = 12345;
	const char *seeds[] = {"{\"id\":1,\"op\":\"health\"}", "{\"id\":2,\"op\":\"ports\",\"x\":[1,{\"a\":\"\\u00e9\"}]}",
			       "{\"op\":\"sync\",\"id\":-3}", "[\"\\ud83d\\ude00\",1e5,null,true,false]"};
	for (int iter = 0; iter < 1500; iter++) {
		char line[300];
		size_t len;
		if (iter % 2) {
			const char *s = seeds[rand_r(&seed) % 4];
			len = strlen(s);
			memcpy(line, s, len);
			for (int k = rand_r(&seed) % 4; k >= 0; k--) {
				size_t at = (size_t)rand_r(&seed) % len;
				line[at] = (char)(rand_r(&seed) % 256);
			}
			if (rand_r(&seed) % 3 == 0)
				len = (size_t)rand_r(&seed) % len;
		} else {
			len = (size_t)rand_r(&seed) % sizeof(line);
			for (size_t k = 0; k < len; k++)
				line[k] = (char)(rand_r(&seed) % 256);
		}
		for (size_t k = 0; k < len; k++)
			if (line[k] == '\n')
				line[k] = ' ';
		write_all(fd, line, len);
		char probe[64];
		int id = 100000 + iter;
		int pn = snprintf(probe, sizeof(probe), "\n{\"id\":%d,\"op\":\"sync\"}\n", id);
		write_all(fd, probe, (size_t)pn);
		/* Zero or one reply to the random line, then the probe's. */
		for (int got = 0;; got++) {
			json_t *r = read_reply(fd);
			if (!r)
				goto out;
			json_int_t rid = json_integer_value(json_object_get(r, "id"));
			json_decref(r);
			if (rid == id)
				break;
			CHECK(got == 0);
		}
	}
out:
	close(fd);
}

/* ---- volume ---- */

static void test_many(const char *sock)
{
	int fd = connect_agent(sock);
	int fails = 0;
	for (int i = 0; i < 2000; i++) {
		json_t *r = NULL;
		if (bng_agent_call(fd, i % 3 ? "health" : "sync", 5000, &r) != 0)
			fails++;
		json_decref(r);
	}
	CHECK_EQ_INT(fails, 0);
	close(fd);

	for (int i = 0; i < 200; i++) {
		fd = connect_agent(sock);
		json_t *r = NULL;
		if (bng_agent_call(fd, "health", 5000, &r) != 0)
			fails++;
		json_decref(r);
		close(fd);
	}
	CHECK_EQ_INT(fails, 0);

	/* Pipelined: 500 requests in one write, 500 replies in order. */
	fd = connect_agent(sock);
	size_t cap = 500 * 40, len = 0;
	char *batch = malloc(cap);
	for (int i = 0; i < 500; i++)
		len += (size_t)snprintf(batch + len, cap - len, "{\"id\":%d,\"op\":\"%s\"}\n", 1000 + i, i % 2 ? "health" : "sync");
	write_all(fd, batch, len);
	free(batch);
	for (int i = 0; i < 500; i++) {
		json_t *r = read_reply(fd);
		if (json_integer_value(json_object_get(r, "id")) != 1000 + i || !json_is_true(json_object_get(r, "ok")))
			fails++;
		json_decref(r);
		if (!r)
			break;
	}
	CHECK_EQ_INT(fails, 0);
	close(fd);

	/* Many clients at once: the agent serves 64; later ones wait in the
	 * backlog, not dropped, and are served once others leave. */
	enum { LIMIT = 64, EXTRA = 6 };
	int fds[LIMIT + EXTRA];
	for (int i = 0; i < LIMIT + EXTRA; i++)
		fds[i] = connect_agent(sock);
	json_t *r = NULL;
	for (int i = 0; i < LIMIT; i++) {
		if (bng_agent_call(fds[i], "health", 5000, &r) != 0)
			fails++;
		json_decref(r);
	}
	CHECK_EQ_INT(fails, 0);
	CHECK_EQ_INT(bng_agent_call(fds[LIMIT], "health", 300, &r), BANGER_ETIMEDOUT);
	for (int i = 0; i < LIMIT; i++)
		close(fds[i]);
	for (int i = LIMIT; i < LIMIT + EXTRA; i++) {
		if (bng_agent_call(fds[i], "health", 5000, &r) != 0)
			fails++;
		json_decref(r);
		close(fds[i]);
	}
	CHECK_EQ_INT(fails, 0);
}

/* ---- other modes ---- */

static void test_stdio(void)
{
	int in[2], out[2];
	CHECK(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0);
	const char *args[] = {"--stdio", NULL};
	pid_t pid = spawn(args, in[0], out[1]);
	close(in[0]);
	close(out[1]);
	const char *reqs = "{\"id\":1,\"op\":\"health\"}\n{\"id\":2,\"op\":\"poweroff\"}\n{\"id\":3,\"op\":\"sync\"}";
	CHECK(write(in[1], reqs, strlen(reqs)) == (ssize_t)strlen(reqs));
	close(in[1]); /* EOF: the last, unterminated request is still answered */
	json_t *r = read_reply(out[0]);
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "id")), 1);
	CHECK(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	CHECK_ERROR_REPLY(read_reply(out[0]), 2, "disabled");
	r = read_reply(out[0]);
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "id")), 3);
	json_decref(r);
	char *more = read_line_fd(out[0], 5000);
	CHECK(more == NULL);
	close(out[0]);
	int st = wait_exit(pid, 5000);
	CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (st == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

/* Power ops for real, inside a PID namespace of their own: there reboot(2)
 * only ends the namespace, its init killed and seen by the parent as
 * SIGINT for power-off, SIGHUP for restart (reboot(2), pid_namespaces(7)).
 * The host is never at stake: the agent is exec'd only as PID 1 of a new
 * namespace. Skipped where namespaces are not allowed. */
/* Waits for a child that unshared a namespace: its wait status, or -1
 * when it hung (a failure) or could not unshare (exit 77: skipped, said). */
static int wait_ns_child(pid_t child, int ms, const char *what)
{
	int st = wait_exit(child, ms);
	if (st == -1) {
		kill(child, SIGKILL);
		waitpid(child, &st, 0);
		fprintf(stderr, "%s did not finish\n", what);
		CHECK(!"a namespaced test child did not finish");
		return -1;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		fprintf(stderr, "skipped: %s (unshare: not permitted here)\n", what);
		return -1;
	}
	return st;
}

static void test_power_in_pidns(const char *op, int want_sig)
{
	int out[2];
	CHECK(pipe2(out, O_CLOEXEC) == 0);
	pid_t child = fork();
	if (child == 0) {
		if (unshare(CLONE_NEWPID) != 0)
			_exit(77);
		int in[2];
		if (pipe2(in, O_CLOEXEC) != 0)
			_exit(98);
		pid_t init = fork();
		if (init == 0) {
			if (getpid() != 1)
				_exit(78);
			dup2(in[0], STDIN_FILENO);
			dup2(out[1], STDOUT_FILENO);
			execl(agent_bin, agent_bin, "--stdio", "--allow-power", (char *)NULL);
			_exit(127);
		}
		char req[64];
		int n = snprintf(req, sizeof(req), "{\"id\":7,\"op\":\"%s\"}\n", op);
		if (write(in[1], req, (size_t)n) != n) /* in[1] stays open: no EOF */
			_exit(97);
		int st;
		if (waitpid(init, &st, 0) != init)
			_exit(96);
		_exit(WIFSIGNALED(st) ? 100 + WTERMSIG(st) : WIFEXITED(st) ? WEXITSTATUS(st) : 99);
	}
	close(out[1]);
	char what[64];
	snprintf(what, sizeof(what), "%s in a PID namespace", op);
	int st = wait_ns_child(child, 15000, what);
	if (st != -1) {
		CHECK_EQ_INT(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 100 + want_sig);
		/* The reply was written before the namespace went down. */
		json_t *r = read_reply(out[0]);
		CHECK_EQ_INT(json_integer_value(json_object_get(r, "id")), 7);
		CHECK(json_is_true(json_object_get(r, "ok")));
		json_decref(r);
	}
	close(out[0]);
}

/* CPU time (user + system, clock ticks) pid has used. */
static long long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* comm may hold spaces */
	unsigned long long ut = 0, st = 0;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

/* Device mode on a pty standing in for the virtio-serial port. */
static void test_device_pty(void)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	CHECK(master >= 0);
	if (master < 0)
		return;
	CHECK(grantpt(master) == 0 && unlockpt(master) == 0);
	char slave_path[64];
	CHECK(ptsname_r(master, slave_path, sizeof(slave_path)) == 0);
	int slave = open(slave_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	struct termios t;
	CHECK(slave >= 0 && tcgetattr(slave, &t) == 0);
	cfmakeraw(&t); /* no echo, no CRLF: bytes as virtio-serial carries them */
	CHECK(tcsetattr(slave, TCSANOW, &t) == 0);

	/* --vsock-port 0: never listen on the host's vsock. Power ops are
	 * allowed in device mode, so none is sent here. */
	const char *args[] = {"--device", slave_path, "--vsock-port", "0", NULL};
	pid_t pid = spawn(args, -1, -1);
	json_t *r = NULL;
	/* Opening the port, the agent announces itself first. */
	char *line = read_line_fd(master, 5000);
	json_t *hello = line ? json_loads(line, 0, NULL) : NULL;
	free(line);
	CHECK_EQ_STR(jstr(hello, "event"), "hello");
	CHECK_EQ_INT(json_integer_value(json_object_get(hello, "pid")), pid);
	CHECK(json_is_string(json_object_get(hello, "boot_id")));
	json_decref(hello);
	for (int i = 0; i < 50 && !r; i++) {
		write_all(master, "{\"id\":40,\"op\":\"health\"}\n", 24);
		line = read_line_fd(master, 200);
		if (line)
			r = json_loads(line, 0, NULL);
		free(line);
	}
	CHECK(r != NULL);
	CHECK(json_is_true(json_object_get(r, "ok")));
	CHECK_EQ_STR(jstr(r, "version"), banger_version());
	json_decref(r);

	/* The host side hangs up for good: the agent keeps retrying the port
	 * without spinning. */
	close(master);
	sleep_ms(200);
	long long before = cpu_ticks(pid);
	sleep_ms(1000);
	long long used = cpu_ticks(pid) - before;
	CHECK(before >= 0 && used < sysconf(_SC_CLK_TCK) / 5);
	stop_agent(pid);
	close(slave);

	/* A missing device is waited for, not fatal. */
	char *missing = bng_asprintf("%s/no-such-port", tmp);
	const char *args2[] = {"--device", missing, "--vsock-port", "0", NULL};
	pid = spawn(args2, -1, -1);
	CHECK_EQ_INT(wait_exit(pid, 400), -1);
	stop_agent(pid);
	free(missing);
}

/* ---- Firecracker's hybrid vsock, faked ---- */

enum fc_mode { FC_PROXY, FC_HANGUP, FC_GARBAGE, FC_SILENT };

typedef struct {
	char *path;
	const char *agent_sock;
	int listen_fd;
	atomic_int mode;
	atomic_int stop;
	atomic_int handshakes;
	char last_request[64];
	pthread_mutex_t lock;
	pthread_t thread;
} fake_fc;

static void proxy(int a, int b)
{
	char buf[65536];
	for (;;) {
		struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
		if (poll(p, 2, 10000) <= 0)
			return;
		for (int i = 0; i < 2; i++) {
			if (!p[i].revents)
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			if (n <= 0)
				return;
			const char *q = buf;
			int to = i ? a : b;
			while (n > 0) {
				ssize_t w = send(to, q, (size_t)n, MSG_NOSIGNAL);
				if (w <= 0)
					return;
				q += w;
				n -= w;
			}
		}
	}
}

/* Serves one connection at a time, as Firecracker's muxer would look to a
 * single host client. */
static void *fake_fc_main(void *arg)
{
	fake_fc *fc = arg;
	while (!atomic_load(&fc->stop)) {
		struct pollfd p = {.fd = fc->listen_fd, .events = POLLIN};
		if (poll(&p, 1, 50) <= 0)
			continue;
		int c = accept4(fc->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		char line[64];
		size_t len = 0;
		char ch;
		while (len < sizeof(line) - 1 && read(c, &ch, 1) == 1 && ch != '\n')
			line[len++] = ch;
		line[len] = '\0';
		pthread_mutex_lock(&fc->lock);
		memcpy(fc->last_request, line, len + 1);
		pthread_mutex_unlock(&fc->lock);
		atomic_fetch_add(&fc->handshakes, 1);
		switch (atomic_load(&fc->mode)) {
		case FC_PROXY: {
			int g = -1;
			if (bng_agent_connect_unix(fc->agent_sock, 2000, &g) == 0) {
				send(c, "OK 1234\n", 8, MSG_NOSIGNAL);
				proxy(c, g);
				close(g);
			}
			break;
		}
		case FC_GARBAGE:
			send(c, "NOPE 1\n", 7, MSG_NOSIGNAL);
			break;
		case FC_SILENT:
			sleep_ms(500);
			break;
		default:
			break;
		}
		close(c);
	}
	return NULL;
}

static void fake_fc_start(fake_fc *fc, const char *agent_sock)
{
	memset(fc, 0, sizeof(*fc));
	fc->path = bng_asprintf("%s/fc.vsock", tmp);
	fc->agent_sock = agent_sock;
	pthread_mutex_init(&fc->lock, NULL);
	fc->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fc->path);
	CHECK(bind(fc->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(listen(fc->listen_fd, 8) == 0);
	CHECK(pthread_create(&fc->thread, NULL, fake_fc_main, fc) == 0);
}

static void fake_fc_stop(fake_fc *fc)
{
	atomic_store(&fc->stop, 1);
	pthread_join(fc->thread, NULL);
	close(fc->listen_fd);
	pthread_mutex_destroy(&fc->lock);
	free(fc->path);
}

static void test_vsock_hybrid(const char *agent_sock)
{
	fake_fc fc;
	fake_fc_start(&fc, agent_sock);

	int fd = -1;
	CHECK_OK(bng_agent_connect_vsock_uds(fc.path, BNG_AGENT_VSOCK_PORT, 2000, &fd));
	pthread_mutex_lock(&fc.lock);
	CHECK_EQ_STR(fc.last_request, "CONNECT 1024");
	pthread_mutex_unlock(&fc.lock);
	json_t *r = NULL;
	CHECK_OK(bng_agent_call(fd, "health", 5000, &r));
	CHECK(json_is_string(json_object_get(r, "boot_id")));
	json_decref(r);
	CHECK_OK(bng_agent_call(fd, "ports", 5000, &r));
	CHECK(json_is_array(json_object_get(r, "ports")));
	json_decref(r);
	close(fd);

	r = NULL;
	CHECK_OK(bng_agent_wait_healthy(fc.path, true, 5000, NULL, &r));
	CHECK_EQ_STR(jstr(r, "version"), banger_version());
	json_decref(r);

	/* Nothing listening in the guest: Firecracker hangs up. */
	atomic_store(&fc.mode, FC_HANGUP);
	CHECK_EQ_INT(bng_agent_connect_vsock_uds(fc.path, 1024, 2000, &fd), BANGER_ECONNECT);
	CHECK_STR_CONTAINS(banger_error_last(), "not listening on vsock port 1024");
	CHECK_EQ_INT(fd, -1);
	atomic_store(&fc.mode, FC_GARBAGE);
	CHECK_EQ_INT(bng_agent_connect_vsock_uds(fc.path, 1024, 2000, &fd), BANGER_EPROTO);
	CHECK_STR_CONTAINS(banger_error_last(), "NOPE 1");
	atomic_store(&fc.mode, FC_SILENT);
	long long t0 = mono_ms();
	CHECK_EQ_INT(bng_agent_connect_vsock_uds(fc.path, 1024, 200, &fd), BANGER_ETIMEDOUT);
	CHECK(mono_ms() - t0 < 2000);
	/* wait_healthy keeps retrying a guest that is not up yet. */
	atomic_store(&fc.mode, FC_HANGUP);
	int before = atomic_load(&fc.handshakes);
	CHECK_EQ_INT(bng_agent_wait_healthy(fc.path, true, 600, NULL, &r), BANGER_ETIMEDOUT);
	CHECK_STR_CONTAINS(banger_error_last(), "not listening");
	CHECK(atomic_load(&fc.handshakes) - before >= 2);
	fake_fc_stop(&fc);
}

/* ---- client edge cases against scripted peers ---- */

typedef struct {
	int fd;
	int script;
} peer;

enum { PEER_SILENT, PEER_STALE_THEN_RIGHT, PEER_NO_OK, PEER_ERROR, PEER_HANGUP, PEER_SLOW, PEER_RESTARTS };

static void *peer_main(void *arg)
{
	peer *p = arg;
	for (;;) {
		char *line = read_line_fd(p->fd, 3000);
		if (!line)
			break;
		json_t *req = json_loads(line, 0, NULL);
		free(line);
		json_int_t id = json_integer_value(json_object_get(req, "id"));
		json_decref(req);
		char out[256];
		int n = 0;
		switch (p->script) {
		case PEER_STALE_THEN_RIGHT:
			n = snprintf(out, sizeof(out), "{\"id\":%lld,\"ok\":true}\nnot json at all\n{\"id\":%lld,\"ok\":true,\"x\":1}\n",
				     (long long)id - 1, (long long)id);
			break;
		case PEER_NO_OK:
			n = snprintf(out, sizeof(out), "{\"id\":%lld}\n", (long long)id);
			break;
		case PEER_ERROR:
			n = snprintf(out, sizeof(out), "{\"id\":%lld,\"ok\":false,\"error\":\"disk on fire\"}\n", (long long)id);
			break;
		case PEER_HANGUP:
			shutdown(p->fd, SHUT_RDWR);
			return NULL;
		case PEER_RESTARTS:
			/* The agent that read this request died with it; its successor
			 * announces itself and answers what it reads from then on. */
			p->script = PEER_SLOW + 100;
			n = snprintf(out, sizeof(out), "{\"id\":null,\"event\":\"hello\",\"pid\":2}\n");
			break;
		case PEER_SLOW + 100:
			n = snprintf(out, sizeof(out), "{\"id\":%lld,\"ok\":true,\"x\":2}\n", (long long)id);
			break;
		case PEER_SLOW:
			sleep_ms(300);
			n = snprintf(out, sizeof(out), "{\"id\":%lld,\"ok\":true}\n", (long long)id);
			break;
		default:
			break;
		}
		if (n > 0 && send(p->fd, out, (size_t)n, MSG_NOSIGNAL) != n)
			break;
	}
	return NULL;
}

static int call_scripted(int script, int timeout_ms, json_t **reply)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	peer p = {sv[1], script};
	pthread_t t;
	pthread_create(&t, NULL, peer_main, &p);
	int rc = bng_agent_call(sv[0], "health", timeout_ms, reply);
	if (script == PEER_SLOW) {
		/* The late reply to the timed-out call is skipped by the next. */
		CHECK_EQ_INT(rc, BANGER_ETIMEDOUT);
		rc = bng_agent_call(sv[0], "sync", 3000, reply);
	}
	shutdown(sv[0], SHUT_RDWR);
	pthread_join(t, NULL);
	close(sv[0]);
	close(sv[1]);
	return rc;
}

static atomic_int cancel_flag;

static bool always_gone(void *ud)
{
	(void)ud;
	return true;
}

static void *cancel_soon(void *arg)
{
	(void)arg;
	sleep_ms(200);
	atomic_store(&cancel_flag, 1);
	return NULL;
}

static void test_client_edges(void)
{
	json_t *r = NULL;
	long long t0 = mono_ms();
	CHECK_EQ_INT(call_scripted(PEER_SILENT, 200, &r), BANGER_ETIMEDOUT);
	CHECK(mono_ms() - t0 >= 150 && mono_ms() - t0 < 3000);
	CHECK_STR_CONTAINS(banger_error_last(), "did not answer \"health\" within 200 ms");
	CHECK(r == NULL);

	CHECK_OK(call_scripted(PEER_STALE_THEN_RIGHT, 2000, &r));
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "x")), 1);
	json_decref(r);
	r = NULL;
	CHECK_EQ_INT(call_scripted(PEER_NO_OK, 2000, &r), BANGER_EPROTO);
	CHECK_EQ_INT(call_scripted(PEER_ERROR, 2000, &r), BANGER_EIO);
	CHECK_STR_CONTAINS(banger_error_last(), "disk on fire");
	CHECK_EQ_INT(call_scripted(PEER_HANGUP, 2000, &r), BANGER_ECONNECT);
	CHECK_OK(call_scripted(PEER_SLOW, 100, &r));
	json_decref(r);
	r = NULL;
	/* A request lost with a restarting agent is sent again on its hello. */
	t0 = mono_ms();
	CHECK_OK(call_scripted(PEER_RESTARTS, 5000, &r));
	CHECK(mono_ms() - t0 < 2000);
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "x")), 2);
	json_decref(r);
	r = NULL;
	/* A wait ends as soon as the VM is gone, naming why. */
	t0 = mono_ms();
	bng_agent_watch gone = {.vm_gone = always_gone};
	CHECK_EQ_INT(bng_agent_wait_healthy(tmp, false, 20000, &gone, &r), BANGER_EIO);
	CHECK(mono_ms() - t0 < 2000);
	CHECK_STR_CONTAINS(banger_error_last(), "hypervisor process exited");
	CHECK_EQ_INT(bng_agent_wait_sshd(tmp, false, 20000, &gone), BANGER_EIO);
	CHECK(mono_ms() - t0 < 4000);

	CHECK_EQ_INT(bng_agent_call(-1, "health", 100, &r), BANGER_EINVAL);
	int fd = 0;
	char *nowhere = bng_asprintf("%s/nothing.sock", tmp);
	CHECK_EQ_INT(bng_agent_connect_unix(nowhere, 100, &fd), BANGER_ECONNECT);
	CHECK_EQ_INT(fd, -1);
	char long_path[200];
	memset(long_path, 'x', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	CHECK_EQ_INT(bng_agent_connect_unix(long_path, 100, &fd), BANGER_EINVAL);

	t0 = mono_ms();
	CHECK_EQ_INT(bng_agent_wait_healthy(nowhere, false, 300, NULL, &r), BANGER_ETIMEDOUT);
	CHECK(mono_ms() - t0 < 3000);
	CHECK_STR_CONTAINS(banger_error_last(), "last error");

	/* Cancellation ends a long wait promptly. */
	bng_op op = {.cancel = &cancel_flag};
	pthread_t t;
	pthread_create(&t, NULL, cancel_soon, NULL);
	t0 = mono_ms();
	CHECK_EQ_INT(bng_agent_wait_healthy(nowhere, false, 20000, &(bng_agent_watch){.op = &op}, &r), BANGER_ECANCELED);
	CHECK(mono_ms() - t0 < 3000);
	pthread_join(t, NULL);
	free(nowhere);
}

/* "wait_sshd" in a private network namespace, where only this test can
 * listen on port 22: false after its bounded wait, true at once when
 * something listens, and true within a poll step of a listener appearing. */
static int listen_22(void)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(22), .sin_addr.s_addr = htonl(INADDR_ANY)};
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s, 4) != 0)
		return -1;
	return s;
}

static void *listen_22_later(void *fdp)
{
	sleep_ms(300);
	*(int *)fdp = listen_22();
	return NULL;
}

static void wait_sshd_in_netns(const char *sock)
{
	pid_t agent = start_unix_agent(sock);
	int fd = connect_agent(sock);
	json_t *r = NULL;
	long long t0 = mono_ms();
	CHECK_OK(bng_agent_call(fd, "wait_sshd", 5000, &r));
	long long waited = mono_ms() - t0;
	CHECK(json_is_false(json_object_get(r, "listening")));
	CHECK(waited >= 900 && waited < 3000);
	json_decref(r);

	int l = listen_22();
	CHECK(l >= 0);
	t0 = mono_ms();
	CHECK_OK(bng_agent_call(fd, "wait_sshd", 5000, &r));
	CHECK(json_is_true(json_object_get(r, "listening")));
	CHECK(mono_ms() - t0 < 500);
	json_decref(r);
	close(l);

	int later = -1;
	pthread_t th;
	pthread_create(&th, NULL, listen_22_later, &later);
	t0 = mono_ms();
	CHECK_OK(bng_agent_call(fd, "wait_sshd", 5000, &r));
	waited = mono_ms() - t0;
	pthread_join(th, NULL);
	CHECK(later >= 0);
	CHECK(json_is_true(json_object_get(r, "listening")));
	CHECK(waited >= 250 && waited < 900);
	json_decref(r);
	if (later >= 0)
		close(later);
	close(fd);

	/* The host's wait on it: a timeout, a listener appearing, a cancel. */
	t0 = mono_ms();
	CHECK_EQ_INT(bng_agent_wait_sshd(sock, false, 1500, NULL), BANGER_ETIMEDOUT);
	CHECK(mono_ms() - t0 >= 1400 && mono_ms() - t0 < 4000);
	CHECK_STR_CONTAINS(banger_error_last(), "sshd did not start listening");
	later = -1;
	pthread_create(&th, NULL, listen_22_later, &later);
	t0 = mono_ms();
	CHECK_OK(bng_agent_wait_sshd(sock, false, 10000, NULL));
	CHECK(mono_ms() - t0 < 1500);
	pthread_join(th, NULL);
	if (later >= 0)
		close(later);
	atomic_store(&cancel_flag, 0);
	bng_op op = {.cancel = &cancel_flag};
	pthread_create(&th, NULL, cancel_soon, NULL);
	t0 = mono_ms();
	CHECK_EQ_INT(bng_agent_wait_sshd(sock, false, 20000, &(bng_agent_watch){.op = &op}), BANGER_ECANCELED);
	CHECK(mono_ms() - t0 < 2000);
	pthread_join(th, NULL);
	atomic_store(&cancel_flag, 0);
	stop_agent(agent);
}

static void test_wait_sshd(void)
{
	char *sock = bng_asprintf("%s/netns-agent.sock", tmp);
	pid_t child = fork();
	if (child == 0) {
		if (unshare(CLONE_NEWNET) != 0)
			_exit(77);
		wait_sshd_in_netns(sock);
		_exit(check_failed ? 1 : 0);
	}
	int st = wait_ns_child(child, 20000, "wait_sshd in a network namespace");
	if (st != -1)
		CHECK_EQ_INT(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0); /* its own failures are printed above */
	free(sock);
}

/* The host starts waiting before the agent exists, as it does at boot. */
static void test_late_agent(void)
{
	char *sock = bng_asprintf("%s/late.sock", tmp);
	pid_t pid = fork();
	if (pid == 0) {
		sleep_ms(500);
		execl(agent_bin, agent_bin, "--listen-unix", sock, (char *)NULL);
		_exit(127);
	}
	json_t *h = NULL;
	long long t0 = mono_ms();
	CHECK_OK(bng_agent_wait_healthy(sock, false, 10000, NULL, &h));
	CHECK(mono_ms() - t0 >= 400);
	CHECK(json_is_string(json_object_get(h, "boot_id")));
	json_decref(h);
	stop_agent(pid);
	free(sock);
}

int main(void)
{
	agent_bin = getenv("BANGER_AGENT");
	if (!agent_bin || access(agent_bin, X_OK) != 0) {
		fprintf(stderr, "test_agent: set BANGER_AGENT to the agent binary (meson test does)\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	tmp = check_tmpdir("agent");
	char *sock = bng_asprintf("%s/agent.sock", tmp);
	pid_t pid = start_unix_agent(sock);

	test_health(sock);
	test_ports(sock);
	test_sync_and_power(sock);
	test_malformed(sock);
	test_oversized(sock);
	test_random_lines(sock);
	test_many(sock);
	test_vsock_hybrid(sock);
	/* The agent survived all of the above. */
	CHECK_EQ_INT(wait_exit(pid, 0), -1);
	stop_agent(pid);
	struct stat st;
	CHECK(stat(sock, &st) != 0); /* removed at exit */

	test_stdio();
	test_power_in_pidns("poweroff", SIGINT);
	test_power_in_pidns("reboot", SIGHUP);
	test_device_pty();
	test_client_edges();
	test_late_agent();
	test_wait_sshd();

	check_rm_rf(tmp);
	free(sock);
	free(tmp);
	return check_summary();
}

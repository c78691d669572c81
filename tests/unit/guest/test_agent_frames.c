/* The guest agent's frame mode (docs/agent-protocol.md), driven through raw
 * frames over --listen-unix and --stdio: CALL, EXEC with pipes and with a
 * pty, exit codes and signals, stdin and its credit, stderr, errors before
 * STARTED, many streams and connections, flow control (a command whose
 * output is not read stalls at its window, others go on), SIGNAL, RESIZE,
 * commands killed when their connection goes, the way back to line mode
 * (a bad magic byte, an oversized frame), idle CPU, device mode on a pty,
 * and reaping as PID 1. */
#include "check.h"
#include "guest/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

enum { F_CALL = 1, F_REPLY, F_EXEC, F_STARTED, F_STDIN, F_STDOUT, F_STDERR, F_ERROR, F_EXIT, F_CREDIT, F_SIGNAL, F_RESIZE };
#define WINDOW_OUT 262144
#define WINDOW_IN 65536

static const char *agent_bin;
static char *tmp;
static pid_t agent_pid;

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

/* ---- raw I/O ---- */

static void write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t w = write(fd, p, len); /* SIGPIPE is ignored */
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			CHECK(!"write to the agent failed");
			return;
		}
		p += w;
		len -= (size_t)w;
	}
}

/* Exactly n bytes within timeout_ms; false on EOF or timeout. */
static bool read_exact(int fd, void *data, size_t n, int timeout_ms)
{
	char *p = data;
	long long end = mono_ms() + timeout_ms;
	while (n) {
		int left = (int)(end - mono_ms());
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&pf, 1, left) <= 0)
			return false;
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

/* One line (a byte at a time: nothing after it is consumed), or NULL. */
static char *read_line(int fd, int timeout_ms)
{
	size_t len = 0, cap = 256;
	char *line = malloc(cap);
	for (;;) {
		char ch;
		if (!read_exact(fd, &ch, 1, timeout_ms)) {
			free(line);
			return NULL;
		}
		if (ch == '\n') {
			line[len] = '\0';
			return line;
		}
		if (len + 2 > cap)
			line = realloc(line, cap *= 2);
		line[len++] = ch;
	}
}

static json_t *read_json_line(int fd)
{
	char *line = read_line(fd, 10000);
	json_t *j = line ? json_loads(line, 0, NULL) : NULL;
	if (!json_is_object(j))
		fprintf(stderr, "not a JSON line: %.200s\n", line ? line : "(none)");
	CHECK(json_is_object(j));
	free(line);
	return j;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void send_frame(int fd, int type, uint32_t sid, const void *p, size_t n)
{
	unsigned char h[12] = {0xB7, (unsigned char)type, 0, 0};
	put32(h + 4, sid);
	put32(h + 8, (uint32_t)n);
	write_all(fd, h, sizeof(h));
	if (n)
		write_all(fd, p, n);
}

static void send_str(int fd, int type, uint32_t sid, const char *s) { send_frame(fd, type, sid, s, strlen(s)); }

static void send_u32(int fd, int type, uint32_t sid, uint32_t v)
{
	unsigned char p[4];
	put32(p, v);
	send_frame(fd, type, sid, p, 4);
}

typedef struct {
	int type;
	uint32_t sid;
	unsigned char *p; /* NUL-terminated */
	uint32_t len;
} frame;

static bool recv_frame(int fd, frame *f, int timeout_ms)
{
	unsigned char h[12];
	f->p = NULL;
	if (!read_exact(fd, h, sizeof(h), timeout_ms))
		return false;
	CHECK_EQ_INT(h[0], 0xB7);
	CHECK_EQ_INT(h[2] | h[3], 0);
	f->type = h[1];
	f->sid = get32(h + 4);
	f->len = get32(h + 8);
	CHECK(f->len <= 65536);
	if (h[0] != 0xB7 || f->len > 65536)
		return false;
	f->p = malloc(f->len + 1);
	f->p[f->len] = '\0';
	if (!read_exact(fd, f->p, f->len, timeout_ms)) {
		free(f->p);
		f->p = NULL;
		return false;
	}
	return true;
}

/* Switches a fresh connection to frame mode. */
static void start_frames(int fd)
{
	write_all(fd, "{\"id\":1,\"op\":\"frames\"}\n", 23);
	json_t *r = read_json_line(fd);
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "id")), 1);
	CHECK(json_is_true(json_object_get(r, "ok")));
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "version")), 1);
	json_decref(r);
}

static int frames_connect(const char *sock)
{
	int fd = -1;
	CHECK_OK(bng_agent_connect_unix(sock, 2000, &fd));
	start_frames(fd);
	return fd;
}

/* ---- streams, as the host sees them ---- */

typedef struct {
	uint32_t sid;
	char *out, *err;
	size_t out_len, err_len;
	int pid;
	bool done;
	int exit_code, sig; /* -1: none */
	char *error;        /* an ERROR frame's message */
	bool auto_credit;   /* give back every output byte at once */
	bool count_only;    /* stdout: count the bytes and their non-zero ones */
	size_t nonzero;
	long long credit;   /* CREDIT received (for stdin) */
} sres;

static void sres_init(sres *r, uint32_t sid)
{
	memset(r, 0, sizeof(*r));
	r->sid = sid;
	r->exit_code = r->sig = -1;
	r->auto_credit = true;
	r->credit = WINDOW_IN;
}

static void sres_free(sres *r)
{
	free(r->out);
	free(r->err);
	free(r->error);
}

static size_t pow2_at_least(size_t n)
{
	size_t c = 64;
	while (c < n)
		c *= 2;
	return c;
}

/* The capacity is the power of two the length implies. */
static void append(char **b, size_t *len, const void *p, size_t n)
{
	if (!*b || pow2_at_least(*len + n + 1) > pow2_at_least(*len + 1))
		*b = realloc(*b, pow2_at_least(*len + n + 1));
	memcpy(*b + *len, p, n);
	*len += n;
	(*b)[*len] = '\0';
}

static json_t *frame_json(const frame *f)
{
	json_error_t e;
	json_t *j = json_loadb((const char *)f->p, f->len, 0, &e);
	if (!json_is_object(j))
		fprintf(stderr, "frame %d on %u: not a JSON object: %.200s\n", f->type, f->sid, f->p);
	CHECK(json_is_object(j));
	return j;
}

/* Handles one frame for rs[0..n); false on timeout or EOF. */
static bool pump_one(int fd, sres *rs, size_t n, int timeout_ms)
{
	frame f;
	if (!recv_frame(fd, &f, timeout_ms))
		return false;
	sres *r = NULL;
	for (size_t i = 0; i < n; i++)
		if (rs[i].sid == f.sid)
			r = &rs[i];
	if (!r) {
		fprintf(stderr, "frame type %d for unexpected stream %u\n", f.type, f.sid);
		CHECK(!"a frame for a stream not asked for");
		free(f.p);
		return true;
	}
	CHECK(!r->done);
	json_t *j = NULL;
	switch (f.type) {
	case F_STARTED:
		j = frame_json(&f);
		r->pid = (int)json_integer_value(json_object_get(j, "pid"));
		CHECK(r->pid > 0);
		break;
	case F_STDOUT:
	case F_STDERR:
		if (f.type == F_STDOUT && r->count_only) {
			r->out_len += f.len;
			for (uint32_t i = 0; i < f.len; i++)
				r->nonzero += f.p[i] != 0;
		} else if (f.type == F_STDOUT)
			append(&r->out, &r->out_len, f.p, f.len);
		else
			append(&r->err, &r->err_len, f.p, f.len);
		CHECK(f.len > 0);
		if (r->auto_credit)
			send_u32(fd, F_CREDIT, f.sid, f.len);
		break;
	case F_CREDIT:
		CHECK_EQ_INT(f.len, 4);
		r->credit += get32(f.p);
		break;
	case F_ERROR:
		j = frame_json(&f);
		r->error = strdup(json_string_value(json_object_get(j, "error")) ?: "");
		r->done = true;
		break;
	case F_EXIT:
		j = frame_json(&f);
		if (json_object_get(j, "exit_code"))
			r->exit_code = (int)json_integer_value(json_object_get(j, "exit_code"));
		if (json_object_get(j, "signal"))
			r->sig = (int)json_integer_value(json_object_get(j, "signal"));
		CHECK((r->exit_code >= 0) != (r->sig >= 0));
		r->done = true;
		break;
	default:
		fprintf(stderr, "unexpected frame type %d\n", f.type);
		CHECK(!"unexpected frame type");
	}
	json_decref(j);
	free(f.p);
	return true;
}

static bool all_done(const sres *rs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!rs[i].done)
			return false;
	return true;
}

/* Pumps until every stream is over; false on timeout. */
static bool pump(int fd, sres *rs, size_t n, int timeout_ms)
{
	long long end = mono_ms() + timeout_ms;
	while (!all_done(rs, n)) {
		int left = (int)(end - mono_ms());
		if (left <= 0 || !pump_one(fd, rs, n, left)) {
			CHECK(!"streams did not finish");
			return false;
		}
	}
	return true;
}

/* EXEC req on sid, stdin (may be NULL: left open) sent and closed, and
 * the stream pumped to its end. */
static void run(int fd, sres *r, uint32_t sid, const char *req, const char *in)
{
	sres_init(r, sid);
	send_str(fd, F_EXEC, sid, req);
	if (in) {
		if (*in)
			send_str(fd, F_STDIN, sid, in);
		send_frame(fd, F_STDIN, sid, NULL, 0);
	}
	pump(fd, r, 1, 15000);
}

static void check_exit(const sres *r, int code, const char *out, int line)
{
	if (r->exit_code != code || (out && (!r->out || strcmp(r->out, out) != 0)))
		fprintf(stderr, "line %d: stream %u: exit %d signal %d error %s out \"%s\" err \"%s\"\n", line, r->sid,
			r->exit_code, r->sig, r->error ? r->error : "-", r->out ? r->out : "", r->err ? r->err : "");
	CHECK_EQ_INT(r->exit_code, code);
	CHECK(r->pid > 0);
	if (out)
		CHECK_EQ_STR(r->out ? r->out : "", out);
}
#define CHECK_EXIT(r, code, out) check_exit((r), (code), (out), __LINE__)

static bool pid_gone(int pid, int ms)
{
	for (long long end = mono_ms() + ms; mono_ms() < end; sleep_ms(20))
		if (kill(pid, 0) != 0 && errno == ESRCH)
			return true;
	return false;
}

/* CPU time (user + system, clock ticks) pid has used. */
static long long cpu_ticks(pid_t pid)
{
	char path[64], b[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(b, 1, sizeof(b) - 1, f) : 0;
	if (f)
		fclose(f);
	b[n] = '\0';
	char *p = strrchr(b, ')');
	unsigned long long ut = 0, st = 0;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

static void check_idle(const char *what)
{
	long long before = cpu_ticks(agent_pid);
	sleep_ms(1000);
	long long used = cpu_ticks(agent_pid) - before;
	if (used >= sysconf(_SC_CLK_TCK) / 10)
		fprintf(stderr, "%s: the agent used %lld ticks in 1 s\n", what, used);
	CHECK(before >= 0 && used < sysconf(_SC_CLK_TCK) / 10);
}

/* ---- tests ---- */

static void test_call(const char *sock)
{
	int fd = frames_connect(sock);
	send_str(fd, F_CALL, 0, "{\"id\":5,\"op\":\"health\"}");
	frame f;
	CHECK(recv_frame(fd, &f, 5000));
	CHECK_EQ_INT(f.type, F_REPLY);
	CHECK_EQ_INT(f.sid, 0);
	json_t *j = frame_json(&f);
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "id")), 5);
	CHECK(json_is_true(json_object_get(j, "ok")));
	CHECK(json_is_string(json_object_get(j, "boot_id")));
	json_decref(j);
	free(f.p);
	send_str(fd, F_CALL, 0, "{\"id\":6,\"op\":\"frames\"}");
	CHECK(recv_frame(fd, &f, 5000));
	j = frame_json(&f);
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "id")), 6);
	CHECK(json_is_false(json_object_get(j, "ok")));
	CHECK_STR_CONTAINS(json_string_value(json_object_get(j, "error")), "already");
	json_decref(j);
	free(f.p);
	send_str(fd, F_CALL, 0, "{\"id\":7,\"op\":\"poweroff\"}"); /* refused outside device mode */
	CHECK(recv_frame(fd, &f, 5000));
	j = frame_json(&f);
	CHECK(json_is_false(json_object_get(j, "ok")));
	json_decref(j);
	free(f.p);
	send_str(fd, F_CALL, 0, "not json");
	CHECK(recv_frame(fd, &f, 5000));
	j = frame_json(&f);
	CHECK(json_is_null(json_object_get(j, "id")));
	CHECK_STR_CONTAINS(json_string_value(json_object_get(j, "error")), "malformed");
	json_decref(j);
	free(f.p);
	close(fd);
}

static void test_exec_basic(const char *sock)
{
	int fd = frames_connect(sock);
	sres r;
	run(fd, &r, 1, "{\"argv\":[\"echo\",\"hello\"]}", NULL);
	CHECK_EXIT(&r, 0, "hello\n");
	CHECK(r.err == NULL);
	sres_free(&r);

	run(fd, &r, 2, "{\"argv\":[\"sh\",\"-c\",\"exit 3\"]}", NULL);
	CHECK_EXIT(&r, 3, NULL);
	sres_free(&r);

	run(fd, &r, 3, "{\"argv\":[\"sh\",\"-c\",\"kill -TERM $$\"]}", NULL);
	CHECK_EQ_INT(r.sig, 15);
	CHECK_EQ_INT(r.exit_code, -1);
	sres_free(&r);

	run(fd, &r, 4, "{\"argv\":[\"sh\",\"-c\",\"echo out; echo err >&2; echo out2\"]}", NULL);
	CHECK_EXIT(&r, 0, "out\nout2\n");
	CHECK_EQ_STR(r.err, "err\n");
	sres_free(&r);

	run(fd, &r, 5, "{\"argv\":[\"cat\"]}", "round trip\n");
	CHECK_EXIT(&r, 0, "round trip\n");
	sres_free(&r);

	/* The minimal environment, env added (and overriding), cwd. */
	run(fd, &r, 6,
	    "{\"argv\":[\"sh\",\"-c\",\"echo $FOO,$PATH,${TERM-unset},$HOME; pwd\"],"
	    "\"env\":[\"FOO=bar\",\"PATH=/usr/bin:/bin\"],\"cwd\":\"/tmp\",\"tty\":false}",
	    NULL);
	struct passwd *me = getpwuid(geteuid());
	char *want = bng_asprintf("bar,/usr/bin:/bin,unset,%s\n/tmp\n", me ? me->pw_dir : "/");
	CHECK_EXIT(&r, 0, want);
	free(want);
	sres_free(&r);
	/* cwd defaults to the home directory */
	run(fd, &r, 7, "{\"argv\":[\"pwd\"],\"cwd\":null,\"unknown\":[1,{\"x\":2}]}", NULL);
	char *home = bng_asprintf("%s\n", me ? me->pw_dir : "/");
	CHECK_EXIT(&r, 0, home);
	free(home);
	sres_free(&r);

	/* Failures before the command runs: ERROR, no STARTED. */
	run(fd, &r, 8, "{\"argv\":[\"pwd\"],\"cwd\":\"/nonexistent-dir\"}", NULL);
	CHECK_STR_CONTAINS(r.error, "/nonexistent-dir");
	CHECK_EQ_INT(r.pid, 0);
	sres_free(&r);
	run(fd, &r, 9, "{\"argv\":[\"no-such-command-here\"]}", NULL);
	CHECK_STR_CONTAINS(r.error, "no-such-command-here");
	CHECK_EQ_INT(r.pid, 0);
	sres_free(&r);
	run(fd, &r, 10, "{\"argv\":[\"/etc/passwd\"]}", NULL); /* not executable */
	CHECK_STR_CONTAINS(r.error, "ermission");
	sres_free(&r);
	run(fd, &r, 11, "{\"argv\":[\"true\"],\"user\":\"no-such-user\"}", NULL);
	CHECK_STR_CONTAINS(r.error, "no-such-user");
	sres_free(&r);
	const char *bad[] = {"{\"argv\":[]}", "{}", "{\"argv\":\"ls\"}", "{\"argv\":[1]}", "[\"ls\"]", "",
			     "{\"argv\":[\"ls\"],\"env\":[\"NOEQUALS\"]}", "{\"argv\":[\"ls\"],\"rows\":0}",
			     "{\"argv\":[\"a\\u0000b\"]}", "{\"argv\":[\"ls\"]} x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		run(fd, &r, 20 + (uint32_t)i, bad[i], NULL);
		CHECK(r.error != NULL);
		CHECK_EQ_INT(r.pid, 0);
		sres_free(&r);
	}
	/* Stream id 0 is not a stream; an id in use is refused. */
	run(fd, &r, 0, "{\"argv\":[\"true\"]}", NULL);
	CHECK(r.error != NULL);
	sres_free(&r);
	sres a, b;
	sres_init(&a, 40);
	send_str(fd, F_EXEC, 40, "{\"argv\":[\"cat\"]}");
	while (!a.pid && pump_one(fd, &a, 1, 5000)) {
	}
	send_str(fd, F_EXEC, 40, "{\"argv\":[\"true\"]}");
	sres_init(&b, 40);
	pump(fd, &b, 1, 5000);
	CHECK_STR_CONTAINS(b.error, "in use");
	sres_free(&b);
	send_frame(fd, F_STDIN, 40, NULL, 0);
	pump(fd, &a, 1, 5000);
	CHECK_EXIT(&a, 0, NULL);
	sres_free(&a);
	/* Frames for streams that are over (or never were) are ignored. */
	send_u32(fd, F_CREDIT, 40, 100);
	send_u32(fd, F_SIGNAL, 999, 9);
	send_str(fd, F_STDIN, 998, "x");
	send_str(fd, 99, 1, "a type from the future");

	/* As another user. */
	struct passwd *nobody = getpwnam("nobody");
	if (geteuid() == 0 && nobody) {
		run(fd, &r, 50, "{\"argv\":[\"sh\",\"-c\",\"id -u; echo $USER\"],\"user\":\"nobody\",\"cwd\":\"/\"}", NULL);
		char *id = bng_asprintf("%d\nnobody\n", (int)nobody->pw_uid);
		CHECK_EXIT(&r, 0, id);
		free(id);
		sres_free(&r);
	}
	/* The connection still works (nothing above broke the framing). */
	run(fd, &r, 51, "{\"argv\":[\"echo\",\"still\"]}", NULL);
	CHECK_EXIT(&r, 0, "still\n");
	sres_free(&r);
	close(fd);
}

/* Big stdin through cat, sent within the windows the agent grants. */
static void test_stdin_flow(const char *sock)
{
	int fd = frames_connect(sock);
	sres r;
	sres_init(&r, 1);
	send_str(fd, F_EXEC, 1, "{\"argv\":[\"sh\",\"-c\",\"cat; echo done >&2\"]}");
	size_t total = 3 * 1024 * 1024 + 17, sent = 0;
	char *data = malloc(total);
	for (size_t i = 0; i < total; i++)
		data[i] = (char)('a' + i % 23);
	long long end = mono_ms() + 30000;
	while (sent < total && mono_ms() < end) {
		long long window = r.credit - (long long)sent;
		CHECK(window >= 0 && window <= WINDOW_IN);
		if (window > 0) {
			size_t n = total - sent < 65536 ? total - sent : 65536;
			if ((long long)n > window)
				n = (size_t)window;
			send_frame(fd, F_STDIN, 1, data + sent, n);
			sent += n;
			continue;
		}
		if (!pump_one(fd, &r, 1, 5000))
			break;
	}
	CHECK_EQ_INT(sent, total);
	send_frame(fd, F_STDIN, 1, NULL, 0);
	pump(fd, &r, 1, 30000);
	CHECK_EXIT(&r, 0, NULL);
	CHECK_EQ_INT(r.out_len, total);
	CHECK(r.out && memcmp(r.out, data, total) == 0);
	CHECK_EQ_STR(r.err, "done\n");
	sres_free(&r);

	/* A command that does not read stdin: what the host sends is dropped
	 * and credited once it has gone. */
	sres_init(&r, 2);
	send_str(fd, F_EXEC, 2, "{\"argv\":[\"sh\",\"-c\",\"exec 0<&-; sleep 0.2; echo ok\"]}");
	sleep_ms(100);
	send_frame(fd, F_STDIN, 2, data, 65536);
	pump(fd, &r, 1, 5000);
	CHECK_EXIT(&r, 0, "ok\n");
	sres_free(&r);
	free(data);
	close(fd);
}

/* Many streams at once, on several connections. */
static void test_concurrent(const char *sock)
{
	enum { N = 64 };
	int fd = frames_connect(sock), fd2 = frames_connect(sock);
	int line_fd = -1;
	CHECK_OK(bng_agent_connect_unix(sock, 2000, &line_fd));
	sres *rs = calloc(N, sizeof(*rs)), other;
	long long t0 = mono_ms();
	for (int i = 0; i < N; i++) {
		char req[128];
		snprintf(req, sizeof(req), "{\"argv\":[\"sh\",\"-c\",\"sleep 0.5; echo $0; echo e$0 >&2\",\"%d\"]}", i);
		sres_init(&rs[i], (uint32_t)(1000 + i));
		send_str(fd, F_EXEC, (uint32_t)(1000 + i), req);
	}
	sres_init(&other, 7);
	send_str(fd2, F_EXEC, 7, "{\"argv\":[\"sh\",\"-c\",\"sleep 0.2; echo other\"]}");
	/* Line mode keeps working meanwhile. */
	json_t *h = NULL;
	CHECK_OK(bng_agent_call(line_fd, "health", 5000, &h));
	json_decref(h);
	pump(fd2, &other, 1, 10000);
	CHECK_EXIT(&other, 0, "other\n");
	sres_free(&other);
	pump(fd, rs, N, 30000);
	long long took = mono_ms() - t0;
	for (int i = 0; i < N; i++) {
		char want[32], want_err[32];
		snprintf(want, sizeof(want), "%d\n", i);
		snprintf(want_err, sizeof(want_err), "e%d\n", i);
		CHECK_EXIT(&rs[i], 0, want);
		CHECK_EQ_STR(rs[i].err, want_err);
		sres_free(&rs[i]);
	}
	CHECK(took < 10000); /* they ran side by side, not 64 x 0.5 s */
	free(rs);
	close(fd);
	close(fd2);
	close(line_fd);
}

static char *proc_status_field(pid_t pid, const char *key)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	char *v = NULL;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = strdup(line + strlen(key));
	if (f)
		fclose(f);
	return v;
}

/* A command printing 50 MB to a host that grants no credit stalls at the
 * window, without the agent buffering or spinning, while another stream
 * still completes; credit lets it finish with every byte. */
static void test_output_flow(const char *sock)
{
	const long long total = 50 * 1000 * 1000;
	int fd = frames_connect(sock);
	sres rs[2];
	sres_init(&rs[0], 1);
	rs[0].auto_credit = false;
	rs[0].count_only = true;
	sres_init(&rs[1], 2);
	send_str(fd, F_EXEC, 1, "{\"argv\":[\"head\",\"-c\",\"50000000\",\"/dev/zero\"]}");
	/* Let it fill everything it can. */
	long long end = mono_ms() + 10000;
	while ((long long)rs[0].out_len < WINDOW_OUT && mono_ms() < end)
		pump_one(fd, rs, 1, 1000);
	CHECK_EQ_INT(rs[0].out_len, WINDOW_OUT);
	send_str(fd, F_EXEC, 2, "{\"argv\":[\"sh\",\"-c\",\"echo side; echo side2 >&2\"]}");
	pump(fd, &rs[1], 1, 10000);
	CHECK_EXIT(&rs[1], 0, "side\n");
	CHECK_EQ_STR(rs[1].err, "side2\n");
	frame f;
	CHECK(!recv_frame(fd, &f, 300)); /* nothing more without credit */
	CHECK_EQ_INT(rs[0].out_len, WINDOW_OUT);
	CHECK(!rs[0].done);
	check_idle("stalled output");
	char *rss = proc_status_field(agent_pid, "VmHWM:");
	long long hwm_before = rss ? atoll(rss) : -1;
	free(rss);

	/* Credit in dribbles first: exactly what is granted comes. */
	send_u32(fd, F_CREDIT, 1, 1000);
	while (rs[0].out_len < WINDOW_OUT + 1000 && pump_one(fd, rs, 1, 2000)) {
	}
	CHECK_EQ_INT(rs[0].out_len, WINDOW_OUT + 1000);
	CHECK(!recv_frame(fd, &f, 200));
	/* Then a window's worth, renewed as bytes arrive. */
	rs[0].auto_credit = true;
	send_u32(fd, F_CREDIT, 1, WINDOW_OUT);
	pump(fd, rs, 1, 60000);
	CHECK_EXIT(&rs[0], 0, NULL);
	CHECK_EQ_INT(rs[0].out_len, total);
	CHECK_EQ_INT(rs[0].nonzero, 0);
	/* The agent's peak memory hardly moved through 50 MB. */
	rss = proc_status_field(agent_pid, "VmHWM:");
	long long hwm_after = rss ? atoll(rss) : -1;
	free(rss);
	if (hwm_after - hwm_before >= 8192)
		fprintf(stderr, "agent peak RSS %lld kB -> %lld kB\n", hwm_before, hwm_after);
	CHECK(hwm_before > 0 && hwm_after - hwm_before < 8192);
	sres_free(&rs[0]);
	sres_free(&rs[1]);

	/* A command that exited with output still unsent waits for credit
	 * (and the agent does not spin on its closed pipe), then EXITs. */
	sres_init(&rs[0], 3);
	rs[0].auto_credit = false;
	send_str(fd, F_EXEC, 3, "{\"argv\":[\"head\",\"-c\",\"300000\",\"/dev/zero\"]}");
	while ((long long)rs[0].out_len < WINDOW_OUT && pump_one(fd, rs, 1, 5000)) {
	}
	sleep_ms(200); /* head has exited by now */
	check_idle("exited, output pending");
	CHECK(!rs[0].done);
	send_u32(fd, F_CREDIT, 3, 1u << 20);
	pump(fd, rs, 1, 10000);
	CHECK_EXIT(&rs[0], 0, NULL);
	CHECK_EQ_INT(rs[0].out_len, 300000);
	sres_free(&rs[0]);
	close(fd);
}

static void test_signal(const char *sock)
{
	int fd = frames_connect(sock);
	sres r;
	sres_init(&r, 1);
	send_str(fd, F_EXEC, 1, "{\"argv\":[\"sleep\",\"30\"]}");
	while (!r.pid && pump_one(fd, &r, 1, 5000)) {
	}
	send_u32(fd, F_SIGNAL, 1, SIGTERM);
	pump(fd, &r, 1, 5000);
	CHECK_EQ_INT(r.sig, SIGTERM);
	sres_free(&r);
	/* The whole process group: the background sleep holds stdout, so
	 * EXIT comes only once it is gone too. */
	sres_init(&r, 2);
	long long t0 = mono_ms();
	send_str(fd, F_EXEC, 2, "{\"argv\":[\"sh\",\"-c\",\"sleep 30 & sleep 30\"]}");
	while (!r.pid && pump_one(fd, &r, 1, 5000)) {
	}
	sleep_ms(100);
	send_u32(fd, F_SIGNAL, 2, SIGKILL);
	pump(fd, &r, 1, 10000);
	CHECK_EQ_INT(r.sig, SIGKILL);
	CHECK(mono_ms() - t0 < 5000);
	sres_free(&r);
	close(fd);
}

static void test_tty(const char *sock)
{
	int fd = frames_connect(sock);
	sres r;
	run(fd, &r, 1, "{\"argv\":[\"tty\"],\"tty\":true}", NULL);
	CHECK_EXIT(&r, 0, NULL);
	CHECK(r.out && strncmp(r.out, "/dev/pts/", 9) == 0);
	sres_free(&r);
	run(fd, &r, 2, "{\"argv\":[\"stty\",\"size\"],\"tty\":true,\"rows\":33,\"cols\":101}", NULL);
	CHECK_EXIT(&r, 0, "33 101\r\n");
	sres_free(&r);
	/* stderr goes to the terminal too; TERM is set. */
	run(fd, &r, 3, "{\"argv\":[\"sh\",\"-c\",\"echo $TERM >&2\"],\"tty\":true}", NULL);
	CHECK_EXIT(&r, 0, "xterm-256color\r\n");
	CHECK(r.err == NULL);
	sres_free(&r);
	/* RESIZE while it runs. */
	sres_init(&r, 4);
	send_str(fd, F_EXEC, 4, "{\"argv\":[\"sh\",\"-c\",\"stty -echo; stty size; read x; stty size\"],\"tty\":true}");
	long long end = mono_ms() + 5000;
	while ((!r.out || !strstr(r.out, "24 80\r\n")) && mono_ms() < end)
		pump_one(fd, &r, 1, 1000);
	CHECK_STR_CONTAINS(r.out, "24 80\r\n");
	unsigned char rc[4] = {0, 50, 0, 132};
	send_frame(fd, F_RESIZE, 4, rc, 4);
	send_str(fd, F_STDIN, 4, "\n");
	pump(fd, &r, 1, 5000);
	CHECK_EXIT(&r, 0, "24 80\r\n50 132\r\n");
	sres_free(&r);
	/* Closing stdin: the terminal's EOF, so cat ends normally. */
	for (int i = 0; i < 20; i++) {
		run(fd, &r, 10 + (uint32_t)i, "{\"argv\":[\"cat\"],\"tty\":true}", "hi\n");
		CHECK_EXIT(&r, 0, "hi\r\nhi\r\n");
		sres_free(&r);
	}
	/* A terminal's controlling process killed: EXIT says so. */
	run(fd, &r, 40, "{\"argv\":[\"sh\",\"-c\",\"kill -KILL $$\"],\"tty\":true}", NULL);
	CHECK_EQ_INT(r.sig, SIGKILL);
	sres_free(&r);
	close(fd);
}

/* The connection going away takes its commands along. */
static void test_close_kills(const char *sock)
{
	int fd = frames_connect(sock);
	sres rs[2];
	sres_init(&rs[0], 1);
	sres_init(&rs[1], 2);
	send_str(fd, F_EXEC, 1, "{\"argv\":[\"sleep\",\"30\"]}");
	send_str(fd, F_EXEC, 2, "{\"argv\":[\"sleep\",\"30\"],\"tty\":true}");
	while ((!rs[0].pid || !rs[1].pid) && pump_one(fd, rs, 2, 5000)) {
	}
	CHECK(rs[0].pid > 0 && rs[1].pid > 0);
	close(fd);
	CHECK(pid_gone(rs[0].pid, 5000)); /* killed and reaped (a zombie would still be there) */
	CHECK(pid_gone(rs[1].pid, 5000));
	sres_free(&rs[0]);
	sres_free(&rs[1]);
}

/* A byte other than the magic: a new host in line mode. */
static void test_bad_magic(const char *sock)
{
	int fd = frames_connect(sock);
	sres r;
	sres_init(&r, 1);
	send_str(fd, F_EXEC, 1, "{\"argv\":[\"sleep\",\"30\"]}");
	while (!r.pid && pump_one(fd, &r, 1, 5000)) {
	}
	write_all(fd, "{\"id\":1,\"op\":\"health\"}\n", 23);
	json_t *j = read_json_line(fd);
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "id")), 1);
	CHECK(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	CHECK(pid_gone(r.pid, 5000));
	sres_free(&r);
	/* And frame mode again from there, the first frame sent right behind
	 * the request (frames start after its newline). */
	char req[128] = "{\"id\":2,\"op\":\"frames\"}\n";
	const char *exec = "{\"argv\":[\"echo\",\"again\"],\"tty\":null,\"rows\":null}";
	size_t rl = strlen(req), el = strlen(exec);
	unsigned char *eh = (unsigned char *)req + rl;
	eh[0] = 0xB7;
	eh[1] = F_EXEC;
	eh[2] = eh[3] = 0;
	put32(eh + 4, 1);
	put32(eh + 8, (uint32_t)el);
	memcpy(req + rl + 12, exec, el);
	write_all(fd, req, rl + 12 + el);
	j = read_json_line(fd);
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "id")), 2);
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "version")), 1);
	json_decref(j);
	sres_init(&r, 1);
	pump(fd, &r, 1, 5000);
	CHECK_EXIT(&r, 0, "again\n");
	sres_free(&r);
	/* The magic, then a line: frames resume where the header said. Here a
	 * whole frame arrives in pieces, then the line. */
	unsigned char h[12] = {0xB7, F_CALL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 22};
	write_all(fd, h, 5);
	sleep_ms(50);
	write_all(fd, h + 5, 7);
	write_all(fd, "{\"id\":3,\"op\":\"health\"}", 22);
	frame f;
	CHECK(recv_frame(fd, &f, 5000));
	CHECK_EQ_INT(f.type, F_REPLY);
	free(f.p);
	write_all(fd, "\n{\"id\":4,\"op\":\"sync\"}\n", 23); /* a blank line first */
	j = read_json_line(fd);
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "id")), 4);
	json_decref(j);
	close(fd);
}

/* A frame longer than the limit: refused with a line-mode error, and the
 * connection is back in line mode. */
static void test_oversized(const char *sock)
{
	int fd = frames_connect(sock);
	sres r;
	sres_init(&r, 1);
	send_str(fd, F_EXEC, 1, "{\"argv\":[\"sleep\",\"30\"]}");
	while (!r.pid && pump_one(fd, &r, 1, 5000)) {
	}
	unsigned char h[12] = {0xB7, F_STDIN, 0, 0, 0, 0, 0, 1};
	put32(h + 8, 65537);
	write_all(fd, h, sizeof(h));
	write_all(fd, "junk\n", 5);
	json_t *j = read_json_line(fd);
	CHECK(json_is_null(json_object_get(j, "id")));
	CHECK(json_is_false(json_object_get(j, "ok")));
	CHECK_STR_CONTAINS(json_string_value(json_object_get(j, "error")), "longer than 65536");
	json_decref(j);
	CHECK(pid_gone(r.pid, 5000));
	sres_free(&r);
	write_all(fd, "{\"id\":2,\"op\":\"health\"}\n", 23);
	j = read_json_line(fd);
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "id")), 2);
	CHECK(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	close(fd);
}

/* An idle frame connection with a command waiting on stdin costs nothing. */
static void test_idle(const char *sock)
{
	int fd = frames_connect(sock);
	sres r;
	sres_init(&r, 1);
	send_str(fd, F_EXEC, 1, "{\"argv\":[\"cat\"]}");
	while (!r.pid && pump_one(fd, &r, 1, 5000)) {
	}
	sres_init(&r, 2);
	send_str(fd, F_EXEC, 2, "{\"argv\":[\"cat\"],\"tty\":true}");
	while (!r.pid && pump_one(fd, &r, 1, 5000)) {
	}
	check_idle("commands waiting for stdin");
	close(fd);
	CHECK(pid_gone(r.pid, 5000));
}

/* Device mode, on a pty standing in for the virtio-serial port: frames
 * after the hello, and the host hanging up takes the commands along. */
static void test_device(void)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	CHECK(master >= 0 && grantpt(master) == 0 && unlockpt(master) == 0);
	char slave_path[64];
	CHECK(ptsname_r(master, slave_path, sizeof(slave_path)) == 0);
	int slave = open(slave_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	struct termios t;
	CHECK(slave >= 0 && tcgetattr(slave, &t) == 0);
	cfmakeraw(&t); /* bytes as virtio-serial carries them */
	CHECK(tcsetattr(slave, TCSANOW, &t) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		execl(agent_bin, agent_bin, "--device", slave_path, "--vsock-port", "0", (char *)NULL);
		_exit(127);
	}
	json_t *hello = read_json_line(master);
	CHECK_EQ_STR(json_string_value(json_object_get(hello, "event")), "hello");
	json_decref(hello);
	start_frames(master);
	sres r;
	run(master, &r, 1, "{\"argv\":[\"sh\",\"-c\",\"head -c 100000 /dev/zero | tr '\\\\0' x; echo\"]}", NULL);
	CHECK_EXIT(&r, 0, NULL);
	CHECK_EQ_INT(r.out_len, 100001);
	sres_free(&r);
	sres_init(&r, 2);
	send_str(master, F_EXEC, 2, "{\"argv\":[\"sleep\",\"30\"]}");
	while (!r.pid && pump_one(master, &r, 1, 5000)) {
	}
	close(master);
	CHECK(r.pid > 0 && pid_gone(r.pid, 5000));
	sres_free(&r);
	kill(pid, SIGTERM);
	int st;
	CHECK_EQ_INT(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(slave);
}

/* As PID 1 (a PID namespace): commands' statuses are collected and
 * orphans reparented to the agent are reaped. Skipped where unshare is not
 * allowed. */
static void test_pid1(void)
{
	int sp[2], pp[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0 && pipe2(pp, O_CLOEXEC) == 0);
	pid_t child = fork();
	if (child == 0) {
		if (unshare(CLONE_NEWPID) != 0)
			_exit(77);
		pid_t init = fork();
		if (init == 0) {
			/* --stdio on one socket: fds 0 and 1 differ, as with pipes */
			dup2(sp[1], STDIN_FILENO);
			dup2(sp[1], STDOUT_FILENO);
			execl(agent_bin, agent_bin, "--stdio", (char *)NULL);
			_exit(127);
		}
		close(sp[0]); /* the agent's EOF is the test closing its end */
		close(sp[1]);
		if (write(pp[1], &init, sizeof(init)) != sizeof(init))
			_exit(97);
		int st;
		if (waitpid(init, &st, 0) != init)
			_exit(96);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 99);
	}
	close(sp[1]);
	close(pp[1]);
	pid_t init = 0;
	bool ran = read_exact(pp[0], &init, sizeof(init), 5000);
	close(pp[0]);
	int fd = sp[0];
	if (ran) {
		start_frames(fd);
		sres r;
		/* The orphaned sleep holds stdout: EXIT comes after it ends. */
		run(fd, &r, 1, "{\"argv\":[\"sh\",\"-c\",\"(sleep 0.3 &); exit 7\"]}", NULL);
		CHECK_EXIT(&r, 7, NULL);
		sres_free(&r);
		run(fd, &r, 2, "{\"argv\":[\"sh\",\"-c\",\"kill -INT $$\"]}", NULL);
		CHECK_EQ_INT(r.sig, SIGINT);
		sres_free(&r);
		/* No zombie is left among the agent's children. */
		char path[96];
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)init, (int)init);
		char *kids = NULL;
		for (long long end = mono_ms() + 3000; mono_ms() < end; sleep_ms(50)) {
			free(kids);
			kids = NULL;
			if (bng_read_file(path, &kids, NULL) != 0 || !kids[0])
				break;
		}
		if (kids && kids[0])
			fprintf(stderr, "the agent as PID 1 still has children: %s\n", kids);
		CHECK(!kids || !kids[0]);
		free(kids);
	}
	close(fd); /* EOF: the agent exits */
	int st = 0;
	CHECK_EQ_INT(waitpid(child, &st, 0), child);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		fprintf(stderr, "skipped: the agent as PID 1 (unshare: not permitted here)\n");
	else
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
	agent_bin = getenv("BANGER_AGENT");
	if (!agent_bin || access(agent_bin, X_OK) != 0) {
		fprintf(stderr, "test_agent_frames: set BANGER_AGENT to the agent binary (meson test does)\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	tmp = check_tmpdir("agent-frames");
	char *sock = bng_asprintf("%s/agent.sock", tmp);
	agent_pid = fork();
	if (agent_pid == 0) {
		execl(agent_bin, agent_bin, "--listen-unix", sock, (char *)NULL);
		_exit(127);
	}
	json_t *h = NULL;
	CHECK_OK(bng_agent_wait_healthy(sock, false, 10000, NULL, &h));
	json_decref(h);

	test_call(sock);
	test_exec_basic(sock);
	test_stdin_flow(sock);
	test_concurrent(sock);
	test_output_flow(sock);
	test_signal(sock);
	test_tty(sock);
	test_close_kills(sock);
	test_bad_magic(sock);
	test_oversized(sock);
	test_idle(sock);

	int st;
	CHECK_EQ_INT(waitpid(agent_pid, &st, WNOHANG), 0); /* it survived all of the above */
	kill(agent_pid, SIGTERM);
	CHECK_EQ_INT(waitpid(agent_pid, &st, 0), agent_pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	test_device();
	test_pid1();

	check_rm_rf(tmp);
	free(sock);
	free(tmp);
	return check_summary();
}

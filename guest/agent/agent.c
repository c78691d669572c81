/* banger-agent: the guest side of banger's host <-> guest channel.
 *
 * Answers newline-delimited JSON requests, one reply line per request:
 *   {"id":1,"op":"health"} -> {"id":1,"ok":true,"boot_id":"...",...}
 * It runs inside the VM as a static binary with no dependencies, so it works
 * in any rootfs and in the initramfs; the JSON code here is the minimum the
 * protocol needs (lib/guest/agent.c is the host side, with jansson).
 *
 * The "frames" op switches a connection to frame mode (docs/agent-protocol.md):
 * binary frames carrying the same requests (CALL/REPLY) and streams of
 * commands (EXEC) with their stdin, stdout, stderr, signals, pty size and
 * exit, flow-controlled per stream. One poll loop serves it all: a command's
 * pipes are polled only while its output may be sent, so one that prints
 * without end blocks in its own write() and costs nothing. Every child is
 * reaped (SIGCHLD through a self-pipe), as init must.
 *
 * Channels: by default (device mode) the virtio-serial port "banger.agent"
 * (QEMU, which has no vhost-vsock on our hosts) and AF_VSOCK port 1024
 * (Firecracker's hybrid vsock), whichever exist; both are retried while they
 * are missing. --listen-unix and --stdio serve tests and debugging, and
 * refuse power operations unless --allow-power is given. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4; meson also passes it */
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "init.h"
#include "initramfs.h"
#include "session.h"

#ifndef BANGER_AGENT_VERSION
#define BANGER_AGENT_VERSION "unknown"
#endif

#define MAX_LINE 65536 /* request bytes per line, newline excluded */
#define MAX_CONNS 64 /* clients; the serial port or stdio has its own slot */
#define MAX_DEPTH 32 /* JSON nesting we are willing to skip over */
#define DEFAULT_VSOCK_PORT 1024
#define SERIAL_NAME "banger.agent"
#define SERIAL_LINK "/dev/virtio-ports/" SERIAL_NAME

/* Frame mode (docs/agent-protocol.md). */
#define FRAME_MAGIC 0xB7
#define FRAME_HDR 12
#define MAX_PAYLOAD 65536
#define IN_CAP (FRAME_HDR + MAX_PAYLOAD) /* a whole frame; also >= MAX_LINE + 1 */
#define STDIN_WINDOW 65536   /* STDIN the host may send before our first CREDIT */
#define OUTPUT_WINDOW 262144 /* STDOUT + STDERR we may send before the host's first CREDIT */
#define OUT_LIMIT 131072     /* commands' output is read only while less waits on the connection */
#define MAX_STREAMS 256      /* per connection */
#define START_TIMEOUT_MS 5000 /* from fork to exec */
#define ACT_FRAMES (-1)      /* build_reply: switch to frame mode after this reply */
#define ACT_CLOCK (-2)       /* set_clock: privileged like the power ops, done at once */
enum { F_CALL = 1, F_REPLY, F_EXEC, F_STARTED, F_STDIN, F_STDOUT, F_STDERR, F_ERROR, F_EXIT, F_CREDIT, F_SIGNAL, F_RESIZE };

/* musl-gcc ships no kernel headers: the stable UAPI layout of
 * <linux/vm_sockets.h>. */
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
struct vsock_addr {
	sa_family_t family;
	unsigned short reserved1;
	unsigned int port;
	unsigned int cid;
	unsigned char flags;
	unsigned char zero[3];
};
#define VSOCK_CID_ANY 0xFFFFFFFFu
#define VSOCK_CID_HOST 2u

#define PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))

static volatile sig_atomic_t stop_requested;

/* --init: banger's PID 1 is our parent, and whether it started sshd */
static bool init_mode, init_sshd;

static void logmsg(const char *fmt, ...) PRINTF_LIKE(1, 2);
static void logmsg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("banger-agent: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- growable output buffer ---- */

typedef struct {
	char *p;
	size_t len, cap;
	bool oom; /* an allocation failed: the content is incomplete */
} buf;

static void buf_reserve(buf *b, size_t extra)
{
	if (b->oom || b->len + extra < b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap <= b->len + extra) {
		if (cap > SIZE_MAX / 4) {
			b->oom = true;
			return;
		}
		cap *= 2;
	}
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return;
	}
	b->p = p;
	b->cap = cap;
}

static void buf_add(buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	if (b->oom)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_puts(buf *b, const char *s) { buf_add(b, s, strlen(s)); }

/* For short formatted pieces (numbers): longer output marks the buffer bad. */
static void buf_printf(buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void buf_printf(buf *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		b->oom = true;
	else
		buf_add(b, tmp, (size_t)n);
}

static void buf_free(buf *b)
{
	free(b->p);
	*b = (buf){0};
}

/* Length of the valid UTF-8 sequence at s, 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0], cp;
	size_t len;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)))
		return 0;
	if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))
		return 0;
	return len;
}

/* Appends s as a JSON string. Invalid UTF-8 (command lines and host names
 * are arbitrary bytes) becomes U+FFFD, so the host's strict parser accepts
 * every reply. */
static void buf_json_str(buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	buf_add(b, "\"", 1);
	for (size_t i = 0; i < n;) {
		unsigned char c = u[i];
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			buf_add(b, esc, 2);
			i++;
		} else if (c == 0) {
			/* \u0000 is valid JSON, but jansson refuses it by default. */
			buf_add(b, "\\ufffd", 6);
			i++;
		} else if (c < 0x20 || c == 0x7F) {
			buf_printf(b, "\\u%04x", c);
			i++;
		} else {
			size_t l = utf8_len(u + i, n - i);
			if (l)
				buf_add(b, s + i, l);
			else
				buf_add(b, "\\ufffd", 6);
			i += l ? l : 1;
		}
	}
	buf_add(b, "\"", 1);
}

/* A C string as JSON, or null. */
static void buf_json_cstr(buf *b, const char *s)
{
	if (s)
		buf_json_str(b, s, strlen(s));
	else
		buf_puts(b, "null");
}

/* ---- request parsing: validates the whole line, keeps "id" and "op" ---- */

typedef struct {
	const char *p, *end;
	const char *err; /* first error */
} jparser;

typedef struct {
	char *out;  /* may be NULL: decode and drop */
	size_t cap; /* bytes at out, including the NUL */
	size_t len; /* full decoded length (may exceed cap) */
} jsink;

static bool jfail(jparser *j, const char *msg)
{
	if (!j->err)
		j->err = msg;
	return false;
}

static void jws(jparser *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static bool jpeek(jparser *j, char c) { return j->p < j->end && *j->p == c; }

static void sink_byte(jsink *s, unsigned char c)
{
	if (s->out && s->len + 1 < s->cap)
		s->out[s->len] = (char)c;
	s->len++;
}

static void sink_cp(jsink *s, unsigned cp)
{
	if (cp < 0x80) {
		sink_byte(s, (unsigned char)cp);
	} else if (cp < 0x800) {
		sink_byte(s, (unsigned char)(0xC0 | cp >> 6));
		sink_byte(s, (unsigned char)(0x80 | (cp & 0x3F)));
	} else if (cp < 0x10000) {
		sink_byte(s, (unsigned char)(0xE0 | cp >> 12));
		sink_byte(s, (unsigned char)(0x80 | (cp >> 6 & 0x3F)));
		sink_byte(s, (unsigned char)(0x80 | (cp & 0x3F)));
	} else {
		sink_byte(s, (unsigned char)(0xF0 | cp >> 18));
		sink_byte(s, (unsigned char)(0x80 | (cp >> 12 & 0x3F)));
		sink_byte(s, (unsigned char)(0x80 | (cp >> 6 & 0x3F)));
		sink_byte(s, (unsigned char)(0x80 | (cp & 0x3F)));
	}
}

/* Four hex digits at j->p, or -1. */
static int jhex4(jparser *j)
{
	if (j->end - j->p < 4)
		return -1;
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = j->p[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	j->p += 4;
	return v;
}

/* A string at j->p; decoded bytes go to s (truncated, NUL-terminated). */
static bool jstring(jparser *j, jsink *s)
{
	if (!jpeek(j, '"'))
		return jfail(j, "expected a string");
	j->p++;
	while (j->p < j->end) {
		unsigned char c = (unsigned char)*j->p++;
		if (c == '"') {
			if (s->out && s->cap)
				s->out[s->len < s->cap ? s->len : s->cap - 1] = '\0';
			return true;
		}
		if (c < 0x20)
			return jfail(j, "control character in a string");
		if (c != '\\') {
			sink_byte(s, c);
			continue;
		}
		if (j->p >= j->end)
			break;
		char e = *j->p++;
		switch (e) {
		case '"': sink_byte(s, '"'); break;
		case '\\': sink_byte(s, '\\'); break;
		case '/': sink_byte(s, '/'); break;
		case 'b': sink_byte(s, '\b'); break;
		case 'f': sink_byte(s, '\f'); break;
		case 'n': sink_byte(s, '\n'); break;
		case 'r': sink_byte(s, '\r'); break;
		case 't': sink_byte(s, '\t'); break;
		case 'u': {
			int cp = jhex4(j);
			if (cp < 0)
				return jfail(j, "bad \\u escape");
			if (cp >= 0xD800 && cp <= 0xDBFF && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
				jparser save = *j;
				j->p += 2;
				int lo = jhex4(j);
				if (lo >= 0xDC00 && lo <= 0xDFFF)
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				else
					*j = save; /* not a pair: the next escape stands alone */
			}
			sink_cp(s, cp >= 0xD800 && cp <= 0xDFFF ? 0xFFFD : (unsigned)cp);
			break;
		}
		default:
			return jfail(j, "bad escape in a string");
		}
	}
	return jfail(j, "unterminated string");
}

static bool jdigits(jparser *j)
{
	const char *start = j->p;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	return j->p > start;
}

/* A number at j->p; *is_int says whether it had no fraction or exponent. */
static bool jnumber(jparser *j, bool *is_int)
{
	*is_int = true;
	if (jpeek(j, '-'))
		j->p++;
	if (jpeek(j, '0'))
		j->p++;
	else if (!jdigits(j))
		return jfail(j, "bad number");
	if (jpeek(j, '.')) {
		j->p++;
		*is_int = false;
		if (!jdigits(j))
			return jfail(j, "bad number");
	}
	if (jpeek(j, 'e') || jpeek(j, 'E')) {
		j->p++;
		*is_int = false;
		if (jpeek(j, '+') || jpeek(j, '-'))
			j->p++;
		if (!jdigits(j))
			return jfail(j, "bad number");
	}
	return true;
}

static bool jliteral(jparser *j, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		return jfail(j, "invalid JSON value");
	j->p += n;
	return true;
}

/* Checks and skips any value; depth bounds the recursion. */
static bool jvalue(jparser *j, int depth)
{
	if (depth > MAX_DEPTH)
		return jfail(j, "nesting too deep");
	jws(j);
	if (j->p >= j->end)
		return jfail(j, "unexpected end of line");
	char c = *j->p;
	if (c == '"') {
		jsink none = {0};
		return jstring(j, &none);
	}
	if (c == '-' || (c >= '0' && c <= '9')) {
		bool is_int;
		return jnumber(j, &is_int);
	}
	if (c == 't')
		return jliteral(j, "true");
	if (c == 'f')
		return jliteral(j, "false");
	if (c == 'n')
		return jliteral(j, "null");
	if (c != '{' && c != '[')
		return jfail(j, "invalid JSON value");
	char close = c == '{' ? '}' : ']';
	j->p++;
	jws(j);
	if (jpeek(j, close)) {
		j->p++;
		return true;
	}
	for (;;) {
		if (c == '{') {
			jws(j);
			jsink none = {0};
			if (!jstring(j, &none))
				return false;
			jws(j);
			if (!jpeek(j, ':'))
				return jfail(j, "expected ':'");
			j->p++;
		}
		if (!jvalue(j, depth + 1))
			return false;
		jws(j);
		if (jpeek(j, ',')) {
			j->p++;
			continue;
		}
		if (jpeek(j, close)) {
			j->p++;
			return true;
		}
		return jfail(j, c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

typedef struct {
	bool has_id;
	long long id;
	bool has_op;
	char op[40];
	size_t op_len; /* full length; over sizeof(op) - 1 means truncated */
	bool has_ms;
	long long ms; /* set_clock: the host's wall clock, ms since the epoch */
} request;

/* An integer field (null allowed: *has stays false). */
static bool parse_int(jparser *j, const char *not_int, const char *too_big, bool *has, long long *out)
{
	if (jpeek(j, 'n'))
		return jliteral(j, "null");
	const char *start = j->p;
	bool is_int;
	if (!(jpeek(j, '-') || (j->p < j->end && *j->p >= '0' && *j->p <= '9')) || !jnumber(j, &is_int) || !is_int)
		return jfail(j, not_int);
	char tmp[24];
	size_t n = (size_t)(j->p - start);
	if (n >= sizeof(tmp))
		return jfail(j, too_big);
	memcpy(tmp, start, n);
	tmp[n] = '\0';
	errno = 0;
	long long v = strtoll(tmp, NULL, 10);
	if (errno)
		return jfail(j, too_big);
	*has = true;
	*out = v;
	return true;
}

static bool parse_id(jparser *j, request *r)
{
	return parse_int(j, "\"id\" must be an integer", "\"id\" out of range", &r->has_id, &r->id);
}

/* Parses one request line; NULL on success, else what is wrong. r->has_id
 * is kept even on failure, so the error can still name the request. */
static const char *parse_request(const char *s, size_t n, request *r)
{
	jparser j = {s, s + n, NULL};
	memset(r, 0, sizeof(*r));
	jws(&j);
	if (!jpeek(&j, '{'))
		return "a request must be a JSON object";
	j.p++;
	jws(&j);
	if (jpeek(&j, '}')) {
		j.p++;
	} else {
		for (;;) {
			char key[4];
			jsink ks = {key, sizeof(key), 0};
			jws(&j);
			if (!jstring(&j, &ks))
				return j.err;
			jws(&j);
			if (!jpeek(&j, ':'))
				return "expected ':'";
			j.p++;
			jws(&j);
			if (ks.len == 2 && memcmp(key, "id", 2) == 0) {
				if (!parse_id(&j, r))
					return j.err;
			} else if (ks.len == 2 && memcmp(key, "op", 2) == 0) {
				if (!jpeek(&j, '"'))
					return "\"op\" must be a string";
				jsink os = {r->op, sizeof(r->op), 0};
				if (!jstring(&j, &os))
					return j.err;
				r->has_op = true;
				r->op_len = os.len;
			} else if (ks.len == 2 && memcmp(key, "ms", 2) == 0) {
				if (!parse_int(&j, "\"ms\" must be an integer", "\"ms\" out of range", &r->has_ms, &r->ms))
					return j.err;
			} else if (!jvalue(&j, 1)) {
				return j.err;
			}
			jws(&j);
			if (jpeek(&j, ',')) {
				j.p++;
				continue;
			}
			if (jpeek(&j, '}')) {
				j.p++;
				break;
			}
			return "expected ',' or '}'";
		}
	}
	jws(&j);
	if (j.p != j.end)
		return "trailing data after the request object";
	return NULL;
}

/* ---- small file helpers ---- */

/* Reads up to cap - 1 bytes of a (proc) file, NUL-terminated; -1 on error. */
static ssize_t read_small(const char *path, char *out, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = 0;
	while (len + 1 < cap) {
		ssize_t n = read(fd, out + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	out[len] = '\0';
	return (ssize_t)len;
}

static void rtrim(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r' || s[n - 1] == '\t'))
		s[--n] = '\0';
}

/* ---- ops: each appends its fields after "id" or returns an error ---- */

static const char *op_health(buf *b)
{
	char boot_id[64];
	bool have_boot_id = read_small("/proc/sys/kernel/random/boot_id", boot_id, sizeof(boot_id)) > 0;
	if (have_boot_id)
		rtrim(boot_id);
	struct timespec up = {0, 0};
	clock_gettime(CLOCK_BOOTTIME, &up);
	struct utsname un;
	bool have_uname = uname(&un) == 0;

	buf_puts(b, ",\"ok\":true,\"boot_id\":");
	buf_json_cstr(b, have_boot_id ? boot_id : NULL);
	buf_printf(b, ",\"uptime_s\":%lld.%02ld", (long long)up.tv_sec, up.tv_nsec / 10000000);
	buf_puts(b, ",\"version\":");
	buf_json_cstr(b, BANGER_AGENT_VERSION);
	buf_puts(b, ",\"hostname\":");
	buf_json_cstr(b, have_uname ? un.nodename : NULL);
	if (init_mode) /* the host waits for sshd only where there is one */
		buf_printf(b, ",\"init\":\"banger\",\"sshd\":%s", init_sshd ? "true" : "false");
	return NULL;
}

static const char *op_sync(buf *b)
{
	sync();
	buf_puts(b, ",\"ok\":true");
	return NULL;
}

typedef struct {
	const char *proto;
	char addr[INET6_ADDRSTRLEN];
	unsigned port;
	unsigned long inode;
	int pid; /* 0: no owner found */
} port_ent;

typedef struct {
	port_ent *v;
	size_t n, cap;
} port_list;

/* Appends the listening (TCP) or bound, unconnected (UDP) sockets of one
 * /proc/net table. A missing table (no IPv6) is not an error. */
static const char *read_net_table(const char *path, const char *proto, bool v6, bool tcp, port_list *l)
{
	static char err[96];
	FILE *f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT && v6)
			return NULL;
		snprintf(err, sizeof(err), "cannot read %s: %s", path, strerror(errno));
		return err;
	}
	char line[512];
	if (!fgets(line, sizeof(line), f)) { /* header */
		fclose(f);
		return NULL;
	}
	while (fgets(line, sizeof(line), f)) {
		char local[40];
		unsigned port, st;
		unsigned long inode;
		if (sscanf(line, " %*u: %39[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x %*s %*s %*s %*s %*s %lu", local, &port,
			   &st, &inode) != 4)
			continue;
		/* 0x0A is TCP_LISTEN; an unconnected UDP socket sits in TCP_CLOSE (7). */
		if (tcp ? st != 0x0A : st != 0x07 || port == 0)
			continue;
		size_t hex = strlen(local);
		if (hex != (v6 ? 32u : 8u) || port > 65535)
			continue;
		/* The kernel prints the address as 32-bit words in host order. */
		unsigned char bytes[16];
		for (size_t i = 0; i < hex / 8; i++) {
			char word[9];
			memcpy(word, local + 8 * i, 8);
			word[8] = '\0';
			uint32_t w = (uint32_t)strtoul(word, NULL, 16);
			memcpy(bytes + 4 * i, &w, 4);
		}
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 32;
			port_ent *v = realloc(l->v, cap * sizeof(*v));
			if (!v) {
				fclose(f);
				return "out of memory";
			}
			l->v = v;
			l->cap = cap;
		}
		port_ent *e = &l->v[l->n];
		if (!inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, e->addr, sizeof(e->addr)))
			continue;
		e->proto = proto;
		e->port = port;
		e->inode = inode;
		e->pid = 0;
		l->n++;
	}
	fclose(f);
	return NULL;
}

typedef struct {
	unsigned long inode;
	int pid;
} owner;

static int cmp_owner(const void *a, const void *b)
{
	unsigned long x = ((const owner *)a)->inode, y = ((const owner *)b)->inode;
	return x < y ? -1 : x > y;
}

/* Finds each socket's owning process through the /proc/<pid>/fd links. A
 * socket shared by several processes (a forking server) goes to the lowest
 * pid, usually the parent that opened it. */
static void find_owners(port_list *l)
{
	if (!l->n)
		return;
	owner *own = calloc(l->n, sizeof(*own));
	if (!own)
		return;
	for (size_t i = 0; i < l->n; i++)
		own[i].inode = l->v[i].inode;
	qsort(own, l->n, sizeof(*own), cmp_owner);

	DIR *proc = opendir("/proc");
	struct dirent *de;
	while (proc && (de = readdir(proc))) {
		char *endp;
		long pid = strtol(de->d_name, &endp, 10);
		if (*endp || pid <= 0 || pid > INT_MAX)
			continue;
		char path[64];
		snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
		int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			continue;
		DIR *fds = fdopendir(dfd);
		if (!fds) {
			close(dfd);
			continue;
		}
		struct dirent *fe;
		while ((fe = readdir(fds))) {
			char link[64];
			ssize_t k = readlinkat(dirfd(fds), fe->d_name, link, sizeof(link) - 1);
			if (k <= 0)
				continue;
			link[k] = '\0';
			owner key = {0, 0};
			if (sscanf(link, "socket:[%lu]", &key.inode) != 1 || key.inode == 0)
				continue;
			owner *hit = bsearch(&key, own, l->n, sizeof(*own), cmp_owner);
			if (hit && (!hit->pid || pid < hit->pid))
				hit->pid = (int)pid;
		}
		closedir(fds);
	}
	if (proc)
		closedir(proc);
	for (size_t i = 0; i < l->n; i++) {
		owner key = {l->v[i].inode, 0};
		owner *hit = l->v[i].inode ? bsearch(&key, own, l->n, sizeof(*own), cmp_owner) : NULL;
		l->v[i].pid = hit ? hit->pid : 0;
	}
	free(own);
}

static int cmp_port(const void *a, const void *b)
{
	const port_ent *x = a, *y = b;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	int c = strcmp(x->proto, y->proto);
	if (c)
		return c;
	c = strcmp(x->addr, y->addr);
	if (c)
		return c;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static const char *op_ports(buf *b)
{
	static const struct {
		const char *path, *proto;
		bool v6, tcp;
	} tables[] = {
		{"/proc/net/tcp", "tcp", false, true},
		{"/proc/net/tcp6", "tcp6", true, true},
		{"/proc/net/udp", "udp", false, false},
		{"/proc/net/udp6", "udp6", true, false},
	};
	port_list l = {0};
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		const char *err = read_net_table(tables[i].path, tables[i].proto, tables[i].v6, tables[i].tcp, &l);
		if (err) {
			free(l.v);
			return err;
		}
	}
	find_owners(&l);
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), cmp_port);

	buf_puts(b, ",\"ok\":true,\"ports\":[");
	bool first = true;
	for (size_t i = 0; i < l.n; i++) {
		const port_ent *e = &l.v[i];
		/* SO_REUSEPORT groups list the same socket address once per socket. */
		if (i && cmp_port(e, &l.v[i - 1]) == 0)
			continue;
		buf_puts(b, first ? "{\"proto\":" : ",{\"proto\":");
		first = false;
		buf_json_cstr(b, e->proto);
		buf_puts(b, ",\"address\":");
		buf_json_cstr(b, e->addr);
		buf_printf(b, ",\"port\":%u", e->port);
		char comm[64], cmd[4096], path[64];
		bool have_comm = false, have_cmd = false;
		if (e->pid) {
			buf_printf(b, ",\"pid\":%d", e->pid);
			snprintf(path, sizeof(path), "/proc/%d/comm", e->pid);
			have_comm = read_small(path, comm, sizeof(comm)) > 0;
			if (have_comm)
				rtrim(comm);
			snprintf(path, sizeof(path), "/proc/%d/cmdline", e->pid);
			ssize_t n = read_small(path, cmd, sizeof(cmd));
			/* Arguments are NUL-separated; a kernel thread has none. */
			for (ssize_t k = 0; k < n; k++)
				if (cmd[k] == '\0')
					cmd[k] = ' ';
			if (n > 0) {
				rtrim(cmd);
				have_cmd = cmd[0] != '\0';
			}
		} else {
			buf_puts(b, ",\"pid\":null");
		}
		buf_puts(b, ",\"process\":");
		buf_json_cstr(b, have_comm ? comm : NULL);
		buf_puts(b, ",\"command\":");
		buf_json_cstr(b, have_cmd ? cmd : NULL);
		buf_puts(b, "}");
	}
	buf_puts(b, "]");
	free(l.v);
	return NULL;
}

/* Waits, up to WAIT_SSHD_MS, for a TCP socket listening on port 22: the
 * host's boot waits on this instead of polling "ports", so it learns within
 * a poll step of the guest's time, and the guest is spared a /proc/<pid>/fd
 * scan per poll while it boots. Blocking is fine: during boot the host's
 * waiter is the only client. */
#define WAIT_SSHD_MS 1000
#define WAIT_SSHD_STEP_MS 20

static const char *op_wait_sshd(buf *b)
{
	long long deadline = now_ms() + WAIT_SSHD_MS;
	bool listening = false;
	for (;;) {
		port_list l = {0};
		const char *err = read_net_table("/proc/net/tcp", "tcp", false, true, &l);
		if (!err)
			err = read_net_table("/proc/net/tcp6", "tcp6", true, true, &l);
		for (size_t i = 0; !err && i < l.n; i++)
			listening |= l.v[i].port == 22;
		free(l.v);
		if (err)
			return err;
		if (listening || now_ms() >= deadline)
			break;
		struct timespec step = {0, WAIT_SSHD_STEP_MS * 1000000L};
		nanosleep(&step, NULL);
	}
	buf_printf(b, ",\"ok\":true,\"listening\":%s", listening ? "true" : "false");
	return NULL;
}

/* Established TCP connections with a peer off this guest (loopback ones are
 * the guest talking to itself): the host's idle watcher
 * (auto_stop_stale_after) reads any as "someone is using this VM", an SSH
 * login or a client of a served port alike. */
static long count_remote_connections(const char *path, bool v6)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return 0; /* no IPv6 */
	char line[512];
	long n = 0;
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		char remote[40];
		unsigned st;
		if (sscanf(line, " %*u: %*[0-9A-Fa-f]:%*x %39[0-9A-Fa-f]:%*x %x", remote, &st) != 2 || st != 0x01)
			continue;
		if (strlen(remote) != (v6 ? 32u : 8u))
			continue;
		unsigned char bytes[16];
		for (size_t i = 0; i < strlen(remote) / 8; i++) {
			char word[9];
			memcpy(word, remote + 8 * i, 8);
			word[8] = '\0';
			uint32_t w = (uint32_t)strtoul(word, NULL, 16);
			memcpy(bytes + 4 * i, &w, 4);
		}
		static const unsigned char v6_loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
		static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		bool loopback = v6 ? !memcmp(bytes, v6_loop, 16) || (!memcmp(bytes, v4_mapped, 12) && bytes[12] == 127)
				   : bytes[0] == 127;
		n += !loopback;
	}
	fclose(f);
	return n;
}

static const char *op_activity(buf *b)
{
	long n = count_remote_connections("/proc/net/tcp", false) + count_remote_connections("/proc/net/tcp6", true);
	buf_printf(b, ",\"ok\":true,\"connections\":%ld", n);
	return NULL;
}

static const struct {
	const char *name;
	const char *(*fn)(buf *b);
	int power; /* reboot(2) command, 0 for ordinary ops, ACT_FRAMES for "frames" */
} ops[] = {
	{"health", op_health, 0},
	{"ports", op_ports, 0},
	{"wait_sshd", op_wait_sshd, 0},
	{"activity", op_activity, 0},
	{"sync", op_sync, 0},
	{"poweroff", NULL, RB_POWER_OFF},
	{"reboot", NULL, RB_AUTOBOOT},
	{"frames", NULL, ACT_FRAMES},
	{"set_clock", NULL, ACT_CLOCK},
};

/* ---- connections ---- */

enum conn_kind { CONN_STREAM, CONN_SERIAL, CONN_STDIO };

/* One command started by EXEC. */
typedef struct {
	uint32_t id;
	pid_t pid; /* also its process group and session */
	bool exited; /* reaped: status is set */
	bool over;   /* EXIT or ERROR sent, or the connection left: freed in the sweep */
	bool tty;
	bool pty_eof; /* the pty master read EIO: it stays open until the stream
		       * is freed, as closing it would SIGHUP a command not yet gone */
	int status;
	int fd[3]; /* stdin (we write), stdout, stderr (we read); -1 once closed. With
		    * a tty the pty master is fd[1], for both directions. */
	buf in;    /* STDIN not yet written to the command */
	size_t in_off;
	bool in_eof;  /* the host closed stdin: close it once `in` is written */
	bool in_dead; /* stdin is closed: STDIN is dropped, and credited */
	uint32_t in_window;    /* STDIN bytes the host may still send */
	uint32_t in_ungranted; /* written to the command (or dropped), not yet credited */
	long long out_credit;  /* STDOUT + STDERR bytes we may still send */
} stream;

typedef struct {
	enum conn_kind kind;
	int rfd, wfd;
	char *in; /* IN_CAP bytes: a full line and its newline, or a whole frame */
	size_t in_len;
	bool discarding; /* inside an oversized line: drop through its newline */
	bool eof;        /* the peer is done sending: close once answered */
	bool dead;
	bool hup;        /* serial: the host hung up (handled in conn_event) */
	long long paused_until; /* serial: not polled before this (ms) */
	buf out;
	size_t out_off;
	/* frame mode */
	bool frames;
	stream **st;
	size_t nst, stcap;
	size_t rr;        /* round robin: the stream polled first */
	short rrev, wrev; /* poll results for rfd and wfd */
} conn;

static struct {
	bool allow_power;
	conn *conns[MAX_CONNS + 1];
	size_t nconns;
	int listen_fd; /* --listen-unix or vsock; -1 if none */
	bool listen_vsock;
	/* device mode */
	bool device_mode;
	const char *device; /* --device, else discovered */
	unsigned vsock_port; /* 0: off */
	conn *serial;
	long long serial_retry_at, vsock_retry_at;
	int vsock_backoff_ms;
	bool serial_logged, vsock_logged;
	/* commands */
	int sigchld_r, sigchld_w; /* self-pipe: SIGCHLD wakes poll */
	struct rlimit nofile;     /* as we found it: commands get it back */
} g = {.listen_fd = -1, .sigchld_r = -1, .sigchld_w = -1};

static size_t out_len(const conn *c) { return c->out.len - c->out_off; }
static bool out_pending(const conn *c) { return c->out_off < c->out.len; }

static conn *conn_new(enum conn_kind kind, int rfd, int wfd)
{
	if (g.nconns >= MAX_CONNS + (kind == CONN_STREAM ? 0 : 1))
		return NULL;
	conn *c = calloc(1, sizeof(*c));
	if (c)
		c->in = malloc(IN_CAP);
	if (!c || !c->in) {
		free(c);
		return NULL;
	}
	c->kind = kind;
	c->rfd = rfd;
	c->wfd = wfd;
	g.conns[g.nconns++] = c;
	return c;
}

static void stream_free(stream *s)
{
	for (int i = 0; i < 3; i++)
		if (s->fd[i] >= 0)
			close(s->fd[i]);
	buf_free(&s->in);
	free(s);
}

/* Every output byte of the command has been read. */
static bool output_done(const stream *s) { return (s->tty ? s->pty_eof : s->fd[1] < 0) && s->fd[2] < 0; }

/* SIGKILLs the command's process group unless it is known to be done. */
static void stream_kill(stream *s)
{
	if (!s->over && (!s->exited || !output_done(s)))
		kill(-s->pid, SIGKILL);
	s->over = true;
}

/* Ends every stream of c (the connection closes, or leaves frame mode). */
static void streams_end(conn *c)
{
	for (size_t i = 0; i < c->nst; i++)
		stream_kill(c->st[i]);
}

static void conn_free(conn *c)
{
	streams_end(c);
	for (size_t i = 0; i < c->nst; i++)
		stream_free(c->st[i]);
	free(c->st);
	if (c->kind != CONN_STDIO) {
		close(c->rfd);
		if (c->wfd != c->rfd)
			close(c->wfd);
	}
	buf_free(&c->out);
	free(c->in);
	free(c);
}

/* The peer went away. The serial port stays open: closing it would make
 * the kernel discard what the host sends right after reconnecting. */
static void conn_hangup(conn *c)
{
	if (c->kind == CONN_SERIAL)
		c->hup = true;
	else
		c->dead = true;
}

static void conn_flush(conn *c)
{
	while (out_pending(c)) {
		ssize_t w = write(c->wfd, c->out.p + c->out_off, c->out.len - c->out_off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (w < 0 && (errno == EPIPE || errno == ENODEV)) { /* virtio-serial: no host */
			conn_hangup(c);
			return;
		}
		if (w <= 0) {
			c->dead = true;
			return;
		}
		c->out_off += (size_t)w;
	}
	c->out.len = c->out_off = 0;
	if (c->out.cap > (1u << 20)) /* do not keep a large ports reply around */
		buf_free(&c->out);
}

/* The reply must leave before the machine does. Bounded, so a host that
 * stopped reading cannot keep the VM up. */
static void conn_flush_bounded(conn *c, int ms)
{
	long long end = now_ms() + ms;
	conn_flush(c);
	while (!c->dead && !c->hup && out_pending(c) && now_ms() < end) {
		struct pollfd p = {c->wfd, POLLOUT, 0};
		poll(&p, 1, 50);
		conn_flush(c);
	}
}

static void do_power(conn *c, int cmd)
{
	conn_flush_bounded(c, 2000);
	sync();
	/* Written is not yet read: give the host a moment before the channel
	 * disappears with the machine. */
	struct timespec ts = {0, 200 * 1000000L};
	nanosleep(&ts, NULL);
	if (reboot(cmd) != 0)
		logmsg("reboot: %s", strerror(errno));
}

static void reply_error(buf *b, const char *msg)
{
	buf_puts(b, ",\"ok\":false,\"error\":");
	buf_json_cstr(b, msg);
}

/* Appends the reply object (no newline) to one request to out. Returns
 * what to do once it is sent: a reboot(2) command, ACT_FRAMES, or 0. In a
 * frame (framed) the reply must fit one, and "frames" is refused. */
static int build_reply(const char *line, size_t n, bool framed, buf *out)
{
	request r;
	const char *err = parse_request(line, n, &r);
	buf b = {0};
	int act = 0;
	if (r.has_id)
		buf_printf(&b, "{\"id\":%lld", r.id);
	else
		buf_puts(&b, "{\"id\":null");
	if (err) {
		char msg[128];
		snprintf(msg, sizeof(msg), "malformed request: %s", err);
		reply_error(&b, msg);
	} else if (!r.has_op) {
		reply_error(&b, "missing \"op\"");
	} else {
		size_t i;
		for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			if (r.op_len == strlen(ops[i].name) && memcmp(r.op, ops[i].name, r.op_len) == 0)
				break;
		if (i == sizeof(ops) / sizeof(ops[0])) {
			/* Raw bytes (the op may hold a NUL from \u0000): buf_json_str escapes them. */
			buf msg = {0};
			size_t shown = r.op_len < sizeof(r.op) ? r.op_len : sizeof(r.op) - 1;
			buf_puts(&msg, "unknown op \"");
			buf_add(&msg, r.op, shown);
			buf_puts(&msg, shown < r.op_len ? "...\"" : "\"");
			buf_puts(&b, ",\"ok\":false,\"error\":");
			buf_json_str(&b, msg.p ? msg.p : "", msg.len);
			b.oom = b.oom || msg.oom;
			buf_free(&msg);
		} else if (ops[i].power == ACT_FRAMES && framed) {
			reply_error(&b, "already in frame mode");
		} else if (ops[i].power == ACT_FRAMES) {
			buf_puts(&b, ",\"ok\":true,\"version\":1");
			act = ACT_FRAMES;
		} else if (ops[i].power == ACT_CLOCK && !g.allow_power) {
			reply_error(&b, "set_clock is disabled in this mode (start the agent with --allow-power)");
		} else if (ops[i].power == ACT_CLOCK) {
			/* a restored snapshot's clock stopped at snapshot time */
			struct timespec ts = {r.ms / 1000, (long)(r.ms % 1000) * 1000000L};
			if (!r.has_ms || r.ms < 0)
				reply_error(&b, "set_clock needs \"ms\": milliseconds since the epoch");
			else if (clock_settime(CLOCK_REALTIME, &ts) != 0)
				reply_error(&b, strerror(errno));
			else
				buf_puts(&b, ",\"ok\":true");
		} else if (ops[i].power && !g.allow_power) {
			reply_error(&b, "power operations are disabled in this mode (start the agent with --allow-power)");
		} else if (ops[i].power && geteuid() != 0) {
			reply_error(&b, "power operations need the agent to run as root");
		} else if (ops[i].power) {
			buf_puts(&b, ",\"ok\":true");
			act = ops[i].power;
		} else {
			buf fields = {0};
			const char *op_err = ops[i].fn(&fields);
			if (op_err)
				reply_error(&b, op_err);
			else if (!fields.oom && fields.len)
				buf_add(&b, fields.p, fields.len);
			else
				b.oom = true;
			buf_free(&fields);
		}
	}
	buf_puts(&b, "}");
	if (b.oom || (framed && b.len > MAX_PAYLOAD)) {
		const char *why = b.oom ? "out of memory" : "reply longer than a frame (65536 bytes)";
		buf_free(&b);
		if (r.has_id)
			buf_printf(&b, "{\"id\":%lld", r.id);
		else
			buf_puts(&b, "{\"id\":null");
		reply_error(&b, why);
		buf_puts(&b, "}");
		if (act == ACT_FRAMES)
			act = 0;
	}
	buf_add(out, b.p ? b.p : "", b.len);
	buf_free(&b);
	return act;
}

/* Answers one request line into c->out; runs a power op after its reply. */
static void handle_line(conn *c, const char *line, size_t n)
{
	while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	size_t lead = 0;
	while (lead < n && (line[lead] == ' ' || line[lead] == '\t'))
		lead++;
	if (lead == n)
		return; /* blank line: nothing asked, nothing answered */

	int act = build_reply(line, n, false, &c->out);
	buf_add(&c->out, "\n", 1);
	if (c->out.oom) { /* nothing sensible left to send on this connection */
		c->dead = true;
		return;
	}
	if (act == ACT_FRAMES)
		c->frames = true; /* from the byte after this request's newline */
	else if (act)
		do_power(c, act);
}

/* ---- frame mode ---- */

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void frame_header(unsigned char *h, int type, uint32_t id, size_t n)
{
	h[0] = FRAME_MAGIC;
	h[1] = (unsigned char)type;
	h[2] = h[3] = 0;
	put_be32(h + 4, id);
	put_be32(h + 8, (uint32_t)n);
}

/* Makes room at the end of c->out: what was sent is dropped. */
static void out_compact(conn *c)
{
	if (c->out_off && c->out_off >= out_len(c)) {
		memmove(c->out.p, c->out.p + c->out_off, out_len(c));
		c->out.len -= c->out_off;
		c->out_off = 0;
	}
}

static void put_frame(conn *c, int type, uint32_t id, const void *p, size_t n)
{
	unsigned char h[FRAME_HDR];
	frame_header(h, type, id, n);
	out_compact(c);
	buf_add(&c->out, (const char *)h, sizeof(h));
	buf_add(&c->out, p, n);
	if (c->out.oom)
		c->dead = true;
}

static void put_u32_frame(conn *c, int type, uint32_t id, uint32_t v)
{
	unsigned char p[4];
	put_be32(p, v);
	put_frame(c, type, id, p, 4);
}

/* ERROR {"error":msg}: the stream is over (or never began). */
static void put_error(conn *c, uint32_t id, const char *msg)
{
	buf b = {0};
	buf_puts(&b, "{\"error\":");
	buf_json_cstr(&b, msg);
	buf_puts(&b, "}");
	if (b.oom)
		c->dead = true;
	else
		put_frame(c, F_ERROR, id, b.p, b.len);
	buf_free(&b);
}

static stream *find_stream(conn *c, uint32_t id)
{
	for (size_t i = 0; i < c->nst; i++)
		if (c->st[i]->id == id && !c->st[i]->over)
			return c->st[i];
	return NULL;
}

/* The stream failed after STARTED: ERROR, and its process group goes. */
static void stream_fail(conn *c, stream *s, const char *msg)
{
	put_error(c, s->id, msg);
	stream_kill(s);
}

/* Leaves frame mode: the streams end, unsent frames are dropped (the peer
 * is a new host speaking line mode, or a broken one). */
static void frames_leave(conn *c)
{
	streams_end(c);
	c->frames = false;
	c->discarding = false;
	c->out.len = c->out_off = 0;
}

/* ---- EXEC: parsing ---- */

typedef struct {
	char **argv, **env; /* NULL-terminated */
	size_t argc, envc;
	char *cwd, *user;
	bool tty;
	int rows, cols;
} exec_req;

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void exec_req_free(exec_req *x)
{
	strv_free(x->argv);
	strv_free(x->env);
	free(x->cwd);
	free(x->user);
}

/* A string value, decoded and malloc'd; NULL with j->err set on errors. */
static char *jdup(jparser *j)
{
	jparser start = *j;
	jsink m = {0};
	if (!jstring(j, &m))
		return NULL;
	char *s = malloc(m.len + 1);
	if (!s) {
		jfail(j, "out of memory");
		return NULL;
	}
	*j = start;
	jsink out = {s, m.len + 1, 0};
	jstring(j, &out);
	if (strlen(s) != m.len) {
		free(s);
		jfail(j, "strings may not contain NUL");
		return NULL;
	}
	return s;
}

static bool jdup_to(jparser *j, char **out)
{
	free(*out);
	return (*out = jdup(j)) != NULL;
}

static bool jstrv(jparser *j, char ***v, size_t *n)
{
	strv_free(*v);
	*v = NULL;
	*n = 0;
	if (!jpeek(j, '['))
		return jfail(j, "expected an array of strings");
	j->p++;
	jws(j);
	if (jpeek(j, ']')) {
		j->p++;
		return true;
	}
	for (;;) {
		jws(j);
		char *s = jdup(j);
		if (!s)
			return false;
		char **nv = realloc(*v, (*n + 2) * sizeof(*nv));
		if (!nv) {
			free(s);
			return jfail(j, "out of memory");
		}
		*v = nv;
		nv[(*n)++] = s;
		nv[*n] = NULL;
		jws(j);
		if (jpeek(j, ',')) {
			j->p++;
			continue;
		}
		if (jpeek(j, ']')) {
			j->p++;
			return true;
		}
		return jfail(j, "expected ',' or ']'");
	}
}

static bool jint_range(jparser *j, long lo, long hi, int *out)
{
	const char *start = j->p;
	bool is_int;
	if (!(jpeek(j, '-') || (j->p < j->end && *j->p >= '0' && *j->p <= '9')) || !jnumber(j, &is_int) || !is_int)
		return jfail(j, "expected an integer");
	char tmp[24];
	size_t n = (size_t)(j->p - start);
	if (n >= sizeof(tmp))
		return jfail(j, "integer out of range");
	memcpy(tmp, start, n);
	tmp[n] = '\0';
	long v = strtol(tmp, NULL, 10);
	if (v < lo || v > hi)
		return jfail(j, "integer out of range");
	*out = (int)v;
	return true;
}

static const char *parse_exec(const char *p, size_t n, exec_req *x)
{
	static char err[96];
	jparser j = {p, p + n, NULL};
	x->rows = 24;
	x->cols = 80;
	jws(&j);
	if (!jpeek(&j, '{'))
		return "EXEC needs a JSON object";
	j.p++;
	jws(&j);
	if (jpeek(&j, '}'))
		j.p++;
	else
		for (;;) {
			char key[8];
			jsink ks = {key, sizeof(key), 0};
			jws(&j);
			if (!jstring(&j, &ks))
				goto bad;
			jws(&j);
			if (!jpeek(&j, ':')) {
				jfail(&j, "expected ':'");
				goto bad;
			}
			j.p++;
			jws(&j);
#define KEY(k) (ks.len == sizeof(k) - 1 && memcmp(key, k, ks.len) == 0)
			bool ok;
			if (jpeek(&j, 'n') && !KEY("argv")) /* an optional field left out */
				ok = jliteral(&j, "null");
			else if (KEY("argv"))
				ok = jstrv(&j, &x->argv, &x->argc);
			else if (KEY("env"))
				ok = jstrv(&j, &x->env, &x->envc);
			else if (KEY("cwd"))
				ok = jdup_to(&j, &x->cwd);
			else if (KEY("user"))
				ok = jdup_to(&j, &x->user);
			else if (KEY("tty"))
				ok = (x->tty = jpeek(&j, 't')) ? jliteral(&j, "true") : jliteral(&j, "false");
			else if (KEY("rows"))
				ok = jint_range(&j, 1, 65535, &x->rows);
			else if (KEY("cols"))
				ok = jint_range(&j, 1, 65535, &x->cols);
			else
				ok = jvalue(&j, 1);
#undef KEY
			if (!ok)
				goto bad;
			jws(&j);
			if (jpeek(&j, ',')) {
				j.p++;
				continue;
			}
			if (jpeek(&j, '}')) {
				j.p++;
				break;
			}
			jfail(&j, "expected ',' or '}'");
			goto bad;
		}
	jws(&j);
	if (j.p != j.end)
		return "trailing data after the EXEC object";
	if (!x->argc)
		return "\"argv\" must be a non-empty array of strings";
	for (size_t i = 0; i < x->envc; i++)
		if (!strchr(x->env[i], '=') || x->env[i][0] == '=')
			return "\"env\" entries must be KEY=VALUE";
	return NULL;
bad:
	snprintf(err, sizeof(err), "malformed EXEC: %s", j.err ? j.err : "?");
	return err;
}

/* ---- EXEC: starting the command ---- */

/* In the child, before exec: tells the agent why it failed, then exits. */
static void child_fail(int sfd, const char *what, const char *arg)
{
	char msg[600];
	int n = snprintf(msg, sizeof(msg), "%s %s: %s", what, arg, strerror(errno));
	if (n > 0 && write(sfd, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1) < 0) {
	}
	_exit(127);
}

typedef struct {
	const exec_req *x;
	char **envp;
	const struct passwd *pw; /* NULL: stay who we are */
	const char *home;
	const char *slave; /* tty */
	int in, out, err; /* pipes: the command's ends */
	int sfd;          /* status pipe, close-on-exec */
} child_setup;

static void child_run(const child_setup *cs)
{
	signal(SIGPIPE, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setrlimit(RLIMIT_NOFILE, &g.nofile);
	if (setsid() < 0)
		child_fail(cs->sfd, "cannot start", "a session");
	if (cs->slave) {
		int t = open(cs->slave, O_RDWR); /* a session leader's first tty: its controlling one */
		if (t < 0)
			child_fail(cs->sfd, "cannot open", cs->slave);
		ioctl(t, TIOCSCTTY, 0);
		if (cs->pw && geteuid() == 0 && fchown(t, cs->pw->pw_uid, cs->pw->pw_gid) != 0) {
		}
		if (dup2(t, 0) < 0 || dup2(t, 1) < 0 || dup2(t, 2) < 0)
			child_fail(cs->sfd, "cannot set up", "the terminal");
		if (t > 2)
			close(t);
	} else if (dup2(cs->in, 0) < 0 || dup2(cs->out, 1) < 0 || dup2(cs->err, 2) < 0) {
		child_fail(cs->sfd, "cannot set up", "pipes");
	}
	if (cs->pw && (initgroups(cs->pw->pw_name, cs->pw->pw_gid) != 0 || setgid(cs->pw->pw_gid) != 0 ||
		       setuid(cs->pw->pw_uid) != 0))
		child_fail(cs->sfd, "cannot switch to user", cs->pw->pw_name);
	if (cs->x->cwd) {
		if (chdir(cs->x->cwd) != 0)
			child_fail(cs->sfd, "cannot change directory to", cs->x->cwd);
	} else if (chdir(cs->home) != 0 && chdir("/") != 0) {
	}
	environ = cs->envp;
	execvp(cs->x->argv[0], cs->x->argv);
	child_fail(cs->sfd, "cannot execute", cs->x->argv[0]);
}

/* Sets the environment entry "KEY=..." (kv) in envp (room for one more). */
static void env_set(char **envp, size_t *n, char *kv)
{
	size_t klen = (size_t)(strchr(kv, '=') - kv) + 1;
	for (size_t i = 0; i < *n; i++)
		if (strncmp(envp[i], kv, klen) == 0) {
			envp[i] = kv;
			return;
		}
	envp[(*n)++] = kv;
	envp[*n] = NULL;
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* Starts x for s: its fds and pid are set. NULL, or why it failed (in err). */
static const char *spawn_command(const exec_req *x, stream *s, char *err, size_t errcap)
{
	child_setup cs = {.x = x, .in = -1, .out = -1, .err = -1, .sfd = -1};
	const struct passwd *pw;
	if (x->user) {
		pw = getpwnam(x->user);
		char *end;
		unsigned long uid = strtoul(x->user, &end, 10);
		if (!pw && *x->user && !*end) /* an OCI image's User may be a uid */
			pw = getpwuid((uid_t)uid);
		if (!pw) {
			snprintf(err, errcap, "unknown user \"%s\"", x->user);
			return err;
		}
		/* An unprivileged agent may still run commands as itself. */
		if (pw->pw_uid != geteuid() || geteuid() == 0)
			cs.pw = pw;
	} else {
		pw = getpwuid(geteuid());
	}
	cs.home = pw && pw->pw_dir[0] ? pw->pw_dir : "/";
	const char *name = pw ? pw->pw_name : geteuid() == 0 ? "root" : NULL;

	char home_kv[PATH_MAX + 8], user_kv[300];
	snprintf(home_kv, sizeof(home_kv), "HOME=%s", cs.home);
	snprintf(user_kv, sizeof(user_kv), "USER=%s", name ? name : "");
	char **envp = malloc((x->envc + 5) * sizeof(*envp));
	if (!envp)
		return "out of memory";
	size_t ne = 0;
	envp[0] = NULL;
	env_set(envp, &ne, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	env_set(envp, &ne, home_kv);
	if (name)
		env_set(envp, &ne, user_kv);
	if (x->tty)
		env_set(envp, &ne, "TERM=xterm-256color");
	for (size_t i = 0; i < x->envc; i++)
		env_set(envp, &ne, x->env[i]);
	cs.envp = envp;

	const char *fail = NULL;
	int p_in[2] = {-1, -1}, p_out[2] = {-1, -1}, p_err[2] = {-1, -1}, p_st[2] = {-1, -1};
	int master = -1;
	char slave[64];
	if (x->tty) {
		struct winsize ws = {.ws_row = (unsigned short)x->rows, .ws_col = (unsigned short)x->cols};
		master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 ||
		    ptsname_r(master, slave, sizeof(slave)) != 0 || ioctl(master, TIOCSWINSZ, &ws) != 0)
			fail = "cannot open a pty";
		cs.slave = slave;
	} else if (pipe2(p_in, O_CLOEXEC) != 0 || pipe2(p_out, O_CLOEXEC) != 0 || pipe2(p_err, O_CLOEXEC) != 0) {
		fail = "cannot create pipes";
	}
	if (!fail && pipe2(p_st, O_CLOEXEC) != 0)
		fail = "cannot create pipes";
	if (!fail)
		set_nonblock(p_st[0]);
	pid_t pid = -1;
	if (!fail) {
		cs.in = p_in[0];
		cs.out = p_out[1];
		cs.err = p_err[1];
		cs.sfd = p_st[1];
		pid = fork();
		if (pid == 0)
			child_run(&cs);
		if (pid < 0)
			fail = "cannot fork";
	}
	if (fail) {
		snprintf(err, errcap, "%s: %s", fail, strerror(errno));
		fail = err;
	}
	free(envp);
	int keep[3] = {p_in[1], p_out[0], p_err[0]};
	int drop[5] = {p_in[0], p_out[1], p_err[1], p_st[1], -1};
	for (int i = 0; i < 5; i++)
		if (drop[i] >= 0)
			close(drop[i]);

	/* The status pipe closes at exec (close-on-exec) or carries why not. */
	size_t got = 0;
	long long deadline = now_ms() + START_TIMEOUT_MS;
	while (!fail) {
		struct pollfd p = {p_st[0], POLLIN, 0};
		long long left = deadline - now_ms();
		if (left <= 0) {
			kill(pid, SIGKILL);
			snprintf(err, errcap, "the command did not start within %d ms", START_TIMEOUT_MS);
			fail = err;
			break;
		}
		int pr = poll(&p, 1, (int)left);
		if (pr == 0 || (pr < 0 && errno == EINTR))
			continue; /* the deadline is checked above */
		ssize_t n = read(p_st[0], err + got, errcap - 1 - got); /* non-blocking */
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n > 0 && got + (size_t)n < errcap - 1) {
			got += (size_t)n;
			continue;
		}
		if (n > 0)
			got += (size_t)n;
		if (got) {
			err[got] = '\0';
			fail = err;
		}
		break;
	}
	if (p_st[0] >= 0)
		close(p_st[0]);
	if (fail) {
		if (pid > 0)
			waitpid(pid, NULL, 0); /* it exits right after saying why */
		for (int i = 0; i < 3; i++)
			if (keep[i] >= 0)
				close(keep[i]);
		if (master >= 0)
			close(master);
		return fail;
	}
	s->pid = pid;
	s->tty = x->tty;
	if (x->tty) {
		s->fd[0] = s->fd[2] = -1;
		s->fd[1] = master;
	} else {
		memcpy(s->fd, keep, sizeof(keep));
		set_nonblock(s->fd[0]);
		set_nonblock(s->fd[2]);
	}
	set_nonblock(s->fd[1]);
	return NULL;
}

static void frame_exec(conn *c, uint32_t id, const char *p, size_t n)
{
	char err[512];
	if (id == 0) {
		put_error(c, id, "stream id 0 is for CALL and REPLY");
		return;
	}
	if (find_stream(c, id)) {
		snprintf(err, sizeof(err), "stream %u is in use", (unsigned)id);
		put_error(c, id, err);
		return;
	}
	size_t live = 0;
	for (size_t i = 0; i < c->nst; i++)
		live += !c->st[i]->over;
	if (live >= MAX_STREAMS) {
		put_error(c, id, "too many streams on this connection");
		return;
	}
	if (c->nst == c->stcap) {
		size_t cap = c->stcap ? c->stcap * 2 : 8;
		stream **v = realloc(c->st, cap * sizeof(*v));
		if (!v) {
			put_error(c, id, "out of memory");
			return;
		}
		c->st = v;
		c->stcap = cap;
	}
	exec_req x = {0};
	stream *s = calloc(1, sizeof(*s));
	const char *fail = s ? parse_exec(p, n, &x) : "out of memory";
	if (!fail)
		fail = spawn_command(&x, s, err, sizeof(err));
	exec_req_free(&x);
	if (fail) {
		put_error(c, id, fail);
		free(s);
		return;
	}
	s->id = id;
	s->in_window = STDIN_WINDOW;
	s->out_credit = OUTPUT_WINDOW;
	c->st[c->nst++] = s;
	char pl[40];
	int k = snprintf(pl, sizeof(pl), "{\"pid\":%d}", (int)s->pid);
	put_frame(c, F_STARTED, id, pl, (size_t)k);
}

/* ---- streams at work ---- */

static int stdin_fd(const stream *s) { return s->in_dead ? -1 : s->tty ? s->fd[1] : s->fd[0]; }

/* Gives the host back the STDIN window we used: in bulk, or once the
 * command has taken everything. */
static void credit_back(conn *c, stream *s)
{
	if (!s->in_ungranted || s->in_eof)
		return;
	if (s->in_ungranted < STDIN_WINDOW / 4 && s->in_off < s->in.len)
		return;
	put_u32_frame(c, F_CREDIT, s->id, s->in_ungranted);
	s->in_window += s->in_ungranted;
	s->in_ungranted = 0;
}

/* Stdin is over (the host closed it, or the command did): what is left is
 * dropped, and credited. */
static void stdin_close(stream *s)
{
	s->in_ungranted += (uint32_t)(s->in.len - s->in_off);
	s->in.len = s->in_off = 0;
	if (!s->tty && s->fd[0] >= 0) {
		close(s->fd[0]);
		s->fd[0] = -1;
	}
	s->in_dead = true;
}

static void stream_write(conn *c, stream *s)
{
	int fd = stdin_fd(s);
	while (fd >= 0 && s->in_off < s->in.len) {
		ssize_t w = write(fd, s->in.p + s->in_off, s->in.len - s->in_off);
		if (w > 0) {
			s->in_off += (size_t)w;
			s->in_ungranted += (uint32_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			break;
		} else { /* EPIPE: the command closed its stdin; EIO: the pty is gone */
			stdin_close(s);
			fd = -1;
		}
	}
	if (s->in_off == s->in.len) {
		s->in.len = s->in_off = 0;
		if (s->in_eof && fd >= 0) {
			/* A terminal has no stdin to close: it reads its EOF character. */
			struct termios t;
			if (s->tty && tcgetattr(fd, &t) == 0 && (t.c_lflag & ICANON) && write(fd, &t.c_cc[VEOF], 1) < 0) {
			}
			stdin_close(s);
		}
	}
	credit_back(c, s);
}

static void frame_stdin(conn *c, stream *s, const char *p, size_t n)
{
	if (n > s->in_window) {
		stream_fail(c, s, "STDIN beyond the window the agent granted");
		return;
	}
	s->in_window -= (uint32_t)n;
	if (s->in_eof)
		return; /* after the host closed it: nothing to do */
	if (n == 0) {
		s->in_eof = true;
	} else if (s->in_dead) {
		s->in_ungranted += (uint32_t)n;
	} else {
		if (s->in_off) {
			memmove(s->in.p, s->in.p + s->in_off, s->in.len - s->in_off);
			s->in.len -= s->in_off;
			s->in_off = 0;
		}
		buf_add(&s->in, p, n);
		if (s->in.oom) {
			stream_fail(c, s, "out of memory");
			return;
		}
	}
	stream_write(c, s);
}

/* Reads the command's output (which: 1 stdout, 2 stderr) as one frame
 * straight into the connection's output. */
static void stream_read(conn *c, stream *s, int which)
{
	int fd = s->fd[which];
	if (fd < 0 || s->pty_eof || s->over || s->out_credit <= 0 || out_len(c) >= OUT_LIMIT)
		return;
	size_t want = s->out_credit < MAX_PAYLOAD ? (size_t)s->out_credit : MAX_PAYLOAD;
	out_compact(c);
	buf_reserve(&c->out, FRAME_HDR + want);
	if (c->out.oom) {
		c->dead = true;
		return;
	}
	ssize_t n = read(fd, c->out.p + c->out.len + FRAME_HDR, want);
	if (n > 0) {
		frame_header((unsigned char *)c->out.p + c->out.len, which == 1 ? F_STDOUT : F_STDERR, s->id,
			     (size_t)n);
		c->out.len += FRAME_HDR + (size_t)n;
		s->out_credit -= n;
		return;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	/* EOF; a pty master reads EIO once the command's side is closed. */
	if (s->tty) {
		s->pty_eof = true;
		stdin_close(s);
	} else {
		close(fd);
		s->fd[which] = -1;
	}
}

/* One frame from the host. */
static void handle_frame(conn *c, int type, uint32_t id, const char *p, size_t n)
{
	if (type == F_CALL) {
		buf b = {0};
		int act = build_reply(p, n, true, &b);
		if (b.oom)
			c->dead = true;
		else
			put_frame(c, F_REPLY, 0, b.p, b.len);
		buf_free(&b);
		if (act && !c->dead)
			do_power(c, act);
		return;
	}
	if (type == F_EXEC) {
		frame_exec(c, id, p, n);
		return;
	}
	stream *s = find_stream(c, id);
	const unsigned char *u = (const unsigned char *)p;
	if (!s) /* e.g. a CREDIT that crossed the EXIT: ignored */
		return;
	if (type == F_STDIN) {
		frame_stdin(c, s, p, n);
	} else if (type == F_CREDIT && n == 4) {
		s->out_credit += get_be32(u);
		if (s->out_credit > (1LL << 40))
			s->out_credit = 1LL << 40;
	} else if (type == F_SIGNAL && n == 4) {
		uint32_t sig = get_be32(u);
		if (sig > 0 && sig < 65)
			kill(-s->pid, (int)sig);
	} else if (type == F_RESIZE && n == 4 && s->tty && s->fd[1] >= 0) {
		struct winsize ws = {.ws_row = (unsigned short)(u[0] << 8 | u[1]),
				     .ws_col = (unsigned short)(u[2] << 8 | u[3])};
		ioctl(s->fd[1], TIOCSWINSZ, &ws);
	}
	/* Anything else (a type we do not take, a bad size) is skipped. */
}

enum { FRAME_OK, FRAME_MORE, FRAME_NOT_MAGIC, FRAME_TOO_BIG };

/* The frame starting at h (avail > 0 bytes there): FRAME_OK with its type,
 * stream id and payload length once it is all there, else why not. No
 * state and no I/O, so the fuzz target calls it on its own. */
static int frame_parse(const unsigned char *h, size_t avail, int *type, uint32_t *id, uint32_t *n)
{
	if (h[0] != FRAME_MAGIC)
		return FRAME_NOT_MAGIC;
	if (avail < FRAME_HDR)
		return FRAME_MORE;
	*type = h[1];
	*id = get_be32(h + 4);
	*n = get_be32(h + 8);
	if (*n > MAX_PAYLOAD)
		return FRAME_TOO_BIG;
	return avail < FRAME_HDR + *n ? FRAME_MORE : FRAME_OK;
}

/* Handles the complete frames in c->in, pausing while the connection's
 * output is over its bound. A byte other than the magic where a frame
 * starts means a new host in line mode: back to line mode from that byte. */
static void frames_process(conn *c)
{
	size_t pos = 0;
	while (c->frames && !c->dead && !c->hup && pos < c->in_len) {
		const unsigned char *h = (const unsigned char *)c->in + pos;
		int type = 0, verdict;
		uint32_t id = 0, n = 0;
		verdict = frame_parse(h, c->in_len - pos, &type, &id, &n);
		if (verdict == FRAME_NOT_MAGIC) {
			frames_leave(c);
			break;
		}
		if (verdict == FRAME_TOO_BIG) {
			/* No way to find the next frame: a line-mode error, and the
			 * rest is dropped through the next newline. */
			frames_leave(c);
			buf_puts(&c->out, "{\"id\":null,\"ok\":false,\"error\":\"frame payload longer than 65536 bytes\"}\n");
			c->discarding = true;
			break;
		}
		if (verdict == FRAME_MORE || out_len(c) >= OUT_LIMIT)
			break;
		handle_frame(c, type, id, (const char *)h + FRAME_HDR, n);
		pos += FRAME_HDR + n;
	}
	if (pos) {
		memmove(c->in, c->in + pos, c->in_len - pos);
		c->in_len -= pos;
	}
}

/* Answers every complete line in c->in, pausing while a reply is still
 * being written (backpressure: one reply is buffered at most). */
static void lines_process(conn *c)
{
	size_t start = 0;
	while (!c->frames && !c->dead && !c->hup && !out_pending(c)) {
		char *line = c->in + start;
		char *nl = memchr(line, '\n', c->in_len - start);
		if (!nl) {
			if (c->discarding) {
				start = c->in_len;
			} else if (c->in_len - start > MAX_LINE) {
				buf_puts(&c->out, "{\"id\":null,\"ok\":false,\"error\":\"request line longer than 65536 bytes\"}\n");
				c->discarding = true;
				start = c->in_len;
				conn_flush(c);
			}
			break;
		}
		size_t n = (size_t)(nl - line);
		start += n + 1;
		if (c->discarding) {
			c->discarding = false;
			continue;
		}
		handle_line(c, line, n);
		conn_flush(c);
	}
	if (start) {
		memmove(c->in, c->in + start, c->in_len - start);
		c->in_len -= start;
	}
}

static void conn_process(conn *c)
{
	for (;;) {
		bool frames = c->frames;
		if (frames)
			frames_process(c);
		else
			lines_process(c);
		if (c->frames == frames)
			break;
	}
}

static void conn_read(conn *c, short rev)
{
	size_t cap = c->frames ? IN_CAP : MAX_LINE + 1;
	if (c->in_len >= cap) { /* cannot happen: processing empties a full buffer */
		c->dead = true;
		return;
	}
	ssize_t n = read(c->rfd, c->in + c->in_len, cap - c->in_len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
		/* A hangup with nothing to read would make poll spin. */
		if (errno != EINTR && !(rev & POLLIN) && (rev & (POLLHUP | POLLERR)))
			conn_hangup(c);
		return;
	}
	if (n < 0) {
		c->dead = true; /* a serial port is reopened later (unplugged?) */
		return;
	}
	if (n == 0 && c->kind == CONN_SERIAL) {
		conn_hangup(c); /* virtio-serial reads EOF while no host is connected */
		return;
	}
	if (n == 0) {
		c->eof = true;
		if (c->in_len && !c->discarding && !c->frames)
			c->in[c->in_len++] = '\n'; /* answer a last, unterminated request */
	} else {
		c->in_len += (size_t)n;
	}
	conn_process(c);
	if (c->eof && c->frames)
		streams_end(c); /* the host is gone: so are its commands */
}

/* After a serial hangup: poll reports POLLHUP for as long as no host is
 * connected, so look again after a pause. Input and unsent line-mode output
 * are kept: the guest learns of a reconnect (control queue) after it may
 * already have read the new host's request, whose reply then fails with
 * ENODEV and must go out later. A stale reply is harmless: the host skips
 * ids it did not ask for. Frame mode ends: its streams, its unsent frames
 * and a partial frame go. */
static void conn_after_hup(conn *c)
{
	c->hup = false;
	c->paused_until = now_ms() + 200;
	if (c->frames) {
		frames_leave(c);
		if (c->in_len && (unsigned char)c->in[0] == FRAME_MAGIC)
			c->in_len = 0;
	}
}

static void conn_event(conn *c, short rev)
{
	if (!rev)
		return;
	if (rev & POLLNVAL) {
		c->dead = true;
		return;
	}
	if (out_pending(c)) {
		if (rev & POLLOUT) {
			conn_flush(c);
			if (!c->dead && !c->hup && !out_pending(c))
				conn_process(c);
		} else {
			conn_hangup(c); /* hung up while we still had a reply to send */
		}
	} else {
		conn_read(c, rev);
	}
	if (c->hup)
		conn_after_hup(c);
}

/* Frame mode polls reading and writing at once. */
static void conn_event_frames(conn *c)
{
	short rrev = c->rrev, wrev = c->wrev;
	if ((rrev | wrev) & POLLNVAL) {
		c->dead = true;
		return;
	}
	if (wrev & POLLOUT)
		conn_flush(c);
	else if (out_pending(c) && (wrev & (POLLHUP | POLLERR)))
		conn_hangup(c);
	if (!c->dead && !c->hup) {
		if (rrev & (POLLIN | POLLHUP | POLLERR))
			conn_read(c, rrev);
		else
			conn_process(c); /* input that waited for the output to drain */
	}
	if (c->hup)
		conn_after_hup(c);
}

/* ---- children ---- */

static void on_sigchld(int sig)
{
	(void)sig;
	int e = errno;
	if (write(g.sigchld_w, "", 1) < 0) {
	}
	errno = e;
}

/* Reaps every child that exited: a stream's command records its status,
 * anything else (an orphan, as init; a killed stream's) is dropped. */
static void reap(void)
{
	char tmp[64];
	while (read(g.sigchld_r, tmp, sizeof(tmp)) > 0) {
	}
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (size_t i = 0; i < g.nconns; i++) {
			conn *c = g.conns[i];
			for (size_t k = 0; k < c->nst; k++)
				if (c->st[k]->pid == pid && !c->st[k]->exited) {
					c->st[k]->exited = true;
					c->st[k]->status = st;
				}
		}
	}
}

/* EXIT for commands that exited and whose output is all sent; frees the
 * streams that are over. */
static void streams_sweep(conn *c)
{
	size_t keep = 0;
	for (size_t i = 0; i < c->nst; i++) {
		stream *s = c->st[i];
		if (!s->over && s->exited && output_done(s)) {
			char pl[40];
			int n = WIFSIGNALED(s->status) ? snprintf(pl, sizeof(pl), "{\"signal\":%d}", WTERMSIG(s->status))
						       : snprintf(pl, sizeof(pl), "{\"exit_code\":%d}", WEXITSTATUS(s->status));
			put_frame(c, F_EXIT, s->id, pl, (size_t)n);
			s->over = true;
		}
		if (s->over)
			stream_free(s);
		else
			c->st[keep++] = s;
	}
	c->nst = keep;
}

/* ---- listeners and device discovery ---- */

/* Accepts while there is room; past MAX_CONNS clients wait in the backlog
 * (serve() stops polling the listener) instead of being dropped. */
static void accept_all(void)
{
	while (g.nconns < MAX_CONNS) {
		struct sockaddr_storage sa;
		socklen_t len = sizeof(sa);
		int fd = accept4(g.listen_fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			logmsg("accept: %s", strerror(errno));
			if (g.listen_vsock) { /* e.g. the transport went away: listen afresh */
				close(g.listen_fd);
				g.listen_fd = -1;
				g.vsock_retry_at = now_ms() + 1000;
			} else { /* the listener stays readable: do not spin */
				struct timespec ts = {0, 100 * 1000000L};
				nanosleep(&ts, NULL);
			}
			return;
		}
		/* In the guest only the host (CID 2) may drive the agent. */
		if (g.listen_vsock && ((struct vsock_addr *)&sa)->cid != VSOCK_CID_HOST) {
			close(fd);
			continue;
		}
		if (!conn_new(CONN_STREAM, fd, fd))
			close(fd); /* out of memory */
	}
}

/* The virtio-serial port: --device, udev's link, or a scan of sysfs when
 * there is no udev (initramfs). */
static bool find_serial(char *path, size_t cap)
{
	if (g.device) {
		snprintf(path, cap, "%s", g.device);
		return access(path, F_OK) == 0;
	}
	if (access(SERIAL_LINK, F_OK) == 0) {
		snprintf(path, cap, "%s", SERIAL_LINK);
		return true;
	}
	DIR *d = opendir("/sys/class/virtio-ports");
	struct dirent *de;
	bool found = false;
	while (d && !found && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char name_path[sizeof(de->d_name) + 40], name[64];
		snprintf(name_path, sizeof(name_path), "/sys/class/virtio-ports/%s/name", de->d_name);
		if (read_small(name_path, name, sizeof(name)) <= 0)
			continue;
		rtrim(name);
		if (strcmp(name, SERIAL_NAME) == 0) {
			snprintf(path, cap, "/dev/%s", de->d_name);
			found = true;
		}
	}
	if (d)
		closedir(d);
	return found;
}

static int vsock_listen(unsigned port)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct vsock_addr a = {.family = AF_VSOCK, .port = port, .cid = VSOCK_CID_ANY};
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 16) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* The first line on a newly opened serial port: a host waiting for a reply
 * learns that the agent (re)started and that what it sent before may never
 * have been read, so it asks again. Sent before any reply on this port. */
static void announce(conn *c)
{
	char boot_id[64];
	bool have_boot_id = read_small("/proc/sys/kernel/random/boot_id", boot_id, sizeof(boot_id)) > 0;
	if (have_boot_id)
		rtrim(boot_id);
	buf_printf(&c->out, "{\"id\":null,\"event\":\"hello\",\"pid\":%d,\"boot_id\":", (int)getpid());
	buf_json_cstr(&c->out, have_boot_id ? boot_id : NULL);
	buf_puts(&c->out, "}\n");
	conn_flush(c);
}

/* Opens whichever device-mode channels are missing and due; *timeout gets
 * the wait until the next retry. */
static void device_tick(int *timeout)
{
	long long now = now_ms();
	if (!g.serial && now >= g.serial_retry_at) {
		char path[PATH_MAX];
		bool exists = find_serial(path, sizeof(path));
		int fd = exists ? open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY) : -1;
		if (fd >= 0) {
			g.serial = conn_new(CONN_SERIAL, fd, fd);
			if (!g.serial) {
				close(fd);
			} else {
				announce(g.serial);
			}
			if (g.serial && !g.serial_logged) {
				logmsg("serving %s", path); /* once: it may be reopened after errors */
				g.serial_logged = true;
			}
		}
		/* Poll a present but unopenable port often, a missing one rarely. */
		if (!g.serial)
			g.serial_retry_at = now + (exists ? 200 : 1000);
	}
	if (g.vsock_port && g.listen_fd < 0 && now >= g.vsock_retry_at) {
		int fd = vsock_listen(g.vsock_port);
		if (fd >= 0) {
			g.listen_fd = fd;
			g.listen_vsock = true;
			logmsg("listening on vsock port %u", g.vsock_port);
		} else {
			if (!g.vsock_logged)
				logmsg("vsock port %u unavailable (%s); retrying", g.vsock_port, strerror(-fd));
			g.vsock_logged = true;
			/* Each failed socket() may run modprobe: back off. */
			g.vsock_backoff_ms = g.vsock_backoff_ms ? g.vsock_backoff_ms * 2 : 1000;
			if (g.vsock_backoff_ms > 30000)
				g.vsock_backoff_ms = 30000;
			g.vsock_retry_at = now + g.vsock_backoff_ms;
		}
	}
	long long next = -1;
	if (!g.serial)
		next = g.serial_retry_at;
	if (g.vsock_port && g.listen_fd < 0 && (next < 0 || g.vsock_retry_at < next))
		next = g.vsock_retry_at;
	if (next >= 0)
		*timeout = next <= now ? 0 : (int)(next - now > 60000 ? 60000 : next - now);
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		logmsg("socket path %s is too long", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path); /* a stale socket from an earlier run */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 16) != 0) {
		logmsg("cannot listen on %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* What a pollfd entry is for. */
typedef struct {
	enum { P_CHILD, P_LISTEN, P_CONN, P_CONN_R, P_CONN_W, P_STREAM } kind;
	conn *c;
	stream *s;
	int which; /* P_STREAM: 0 stdin, 1 stdout (or the pty), 2 stderr */
} ptag;

static struct pollfd *pfd;
static ptag *ptags;
static size_t pcap;

static bool poll_add(size_t *np, int fd, short events, ptag tag)
{
	if (*np == pcap) {
		size_t cap = pcap ? pcap * 2 : 64;
		struct pollfd *p = realloc(pfd, cap * sizeof(*p));
		if (!p)
			return false;
		pfd = p;
		ptag *t = realloc(ptags, cap * sizeof(*t));
		if (!t)
			return false;
		ptags = t;
		pcap = cap;
	}
	pfd[*np] = (struct pollfd){fd, events, 0};
	ptags[(*np)++] = tag;
	return true;
}

/* A frame-mode connection and its streams, for poll. Output of a stream is
 * polled only while it may be read (credit, room on the connection): an fd
 * at EOF that we do not read would make poll spin. */
static void poll_frames(conn *c, size_t *np)
{
	bool room = out_len(c) < OUT_LIMIT;
	short rev = c->in_len < IN_CAP && room && !c->eof ? POLLIN : 0;
	short wev = out_pending(c) ? POLLOUT : 0;
	if (c->rfd == c->wfd) {
		if (rev | wev)
			poll_add(np, c->rfd, rev | wev, (ptag){P_CONN_R, c, NULL, 3});
	} else {
		if (rev)
			poll_add(np, c->rfd, rev, (ptag){P_CONN_R, c, NULL, 1});
		if (wev)
			poll_add(np, c->wfd, wev, (ptag){P_CONN_W, c, NULL, 2});
	}
	/* Round robin: the first stream polled reads first. */
	size_t first = c->nst ? c->rr++ % c->nst : 0;
	for (size_t k = 0; k < c->nst; k++) {
		stream *s = c->st[(first + k) % c->nst];
		if (s->over)
			continue;
		bool can_read = room && s->out_credit > 0;
		bool can_write = stdin_fd(s) >= 0 && s->in_off < s->in.len;
		if (s->tty) {
			short ev = (can_read ? POLLIN : 0) | (can_write ? POLLOUT : 0);
			if (!s->pty_eof && ev)
				poll_add(np, s->fd[1], ev, (ptag){P_STREAM, c, s, 1});
			continue;
		}
		if (can_write)
			poll_add(np, s->fd[0], POLLOUT, (ptag){P_STREAM, c, s, 0});
		for (int w = 1; w <= 2; w++)
			if (can_read && s->fd[w] >= 0)
				poll_add(np, s->fd[w], POLLIN, (ptag){P_STREAM, c, s, w});
	}
}

static void serve(bool stdio_mode)
{
	while (!stop_requested) {
		int timeout = -1;
		if (g.device_mode)
			device_tick(&timeout);
		size_t np = 0;
		poll_add(&np, g.sigchld_r, POLLIN, (ptag){P_CHILD, NULL, NULL, 0});
		long long now = now_ms();
		for (size_t i = 0; i < g.nconns; i++) {
			conn *c = g.conns[i];
			c->rrev = c->wrev = 0;
			if (c->paused_until > now) {
				int wait = (int)(c->paused_until - now);
				if (timeout < 0 || wait < timeout)
					timeout = wait;
				continue;
			}
			if (c->frames)
				poll_frames(c, &np);
			else if (out_pending(c))
				poll_add(&np, c->wfd, POLLOUT, (ptag){P_CONN, c, NULL, 0});
			else
				poll_add(&np, c->rfd, POLLIN, (ptag){P_CONN, c, NULL, 0});
		}
		if (g.listen_fd >= 0 && g.nconns < MAX_CONNS)
			poll_add(&np, g.listen_fd, POLLIN, (ptag){P_LISTEN, NULL, NULL, 0});
		if (np <= 1 && timeout < 0 && !g.nconns)
			return;
		if (poll(pfd, np, timeout) < 0) {
			if (errno == EINTR)
				continue;
			logmsg("poll: %s", strerror(errno));
			return;
		}
		/* Connections first (they may end streams), then streams. */
		for (size_t i = 0; i < np; i++) {
			ptag *t = &ptags[i];
			short rev = pfd[i].revents;
			if (t->kind == P_CONN)
				conn_event(t->c, rev);
			if (t->kind == P_CONN_R)
				t->c->rrev = rev;
			if (t->kind == P_CONN_W || (t->kind == P_CONN_R && t->which == 3))
				t->c->wrev = rev;
		}
		for (size_t i = 0; i < g.nconns; i++)
			if (g.conns[i]->frames && (g.conns[i]->rrev || g.conns[i]->wrev))
				conn_event_frames(g.conns[i]);
		for (size_t i = 0; i < np; i++) {
			ptag *t = &ptags[i];
			short rev = pfd[i].revents;
			if (t->kind != P_STREAM || !rev || t->c->dead || t->s->over)
				continue;
			/* A pty master hangs up once the command's side is closed:
			 * nobody reads stdin any more (and polling it would spin). */
			if (t->s->tty && (rev & POLLHUP))
				stdin_close(t->s);
			if (t->which == 0 || (t->s->tty && (rev & POLLOUT)))
				stream_write(t->c, t->s);
			if (t->which && (rev & (POLLIN | POLLHUP | POLLERR)))
				stream_read(t->c, t->s, t->which);
		}
		bool child = np && ptags[0].kind == P_CHILD && pfd[0].revents;
		bool listen = np && ptags[np - 1].kind == P_LISTEN && pfd[np - 1].revents;
		if (listen)
			accept_all();
		if (child)
			reap();
		/* Drop finished connections; the serial port is reopened later. */
		size_t keep = 0;
		for (size_t i = 0; i < g.nconns; i++) {
			conn *c = g.conns[i];
			if (c->frames && !c->dead)
				streams_sweep(c);
			if (c->eof && !c->dead && !out_pending(c))
				c->dead = true;
			if (!c->dead) {
				g.conns[keep++] = c;
				continue;
			}
			if (c == g.serial) {
				g.serial = NULL;
				g.serial_retry_at = now_ms() + 200;
			}
			conn_free(c);
		}
		g.nconns = keep;
		if (stdio_mode && g.nconns == 0)
			return;
	}
}

static void usage(FILE *f)
{
	fputs("usage: banger-agent [--device PATH] [--vsock-port N] [--allow-power]\n"
	      "       banger-agent --listen-unix PATH [--allow-power]\n"
	      "       banger-agent --stdio [--allow-power]\n"
	      "       banger-agent --init   (as PID 1: banger's init, then device mode)\n"
	      "       banger-agent --version\n"
	      "       banger-agent session start|list|show|logs|attach|send|stop|kill ... (sessions)\n"
	      "Serves banger's guest agent protocol: one JSON request per line.\n"
	      "Default (device mode): the virtio-serial port " SERIAL_NAME " and vsock port 1024.\n"
	      "  --device PATH     serve this character device instead of the " SERIAL_NAME " port\n"
	      "  --vsock-port N    vsock port to listen on (0: none; default 1024)\n"
	      "  --listen-unix P   serve a Unix socket instead (tests)\n"
	      "  --stdio           serve stdin/stdout instead (tests)\n"
	      "  --allow-power     allow poweroff/reboot outside device mode\n",
	      f);
}

int main(int argc, char **argv)
{
	if (getpid() == 1 && strcmp(argv[0], "/init") == 0)
		return initramfs_main(); /* the kernel ran banger's initramfs */
	if (argc > 1 && strcmp(argv[1], "session") == 0)
		return session_main(argc - 1, argv + 1); /* a verb the host runs as a command */
	if (argc == 2 && strcmp(argv[1], "--init") == 0) {
		/* PID 1 stays in init_boot; its child serves in device mode */
		if (init_boot(&init_sshd) != 0)
			return 2;
		init_mode = true;
		argc = 1;
	}
	const char *unix_path = NULL;
	bool stdio_mode = false;
	g.vsock_port = DEFAULT_VSOCK_PORT;
	bool allow_power = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;
		if (strcmp(a, "--listen-unix") == 0 && has_val) {
			unix_path = argv[++i];
		} else if (strcmp(a, "--stdio") == 0) {
			stdio_mode = true;
		} else if (strcmp(a, "--device") == 0 && has_val) {
			g.device = argv[++i];
		} else if (strcmp(a, "--vsock-port") == 0 && has_val) {
			char *end;
			unsigned long p = strtoul(argv[++i], &end, 10);
			if (*end || p > UINT32_MAX - 1) {
				logmsg("bad vsock port %s", argv[i]);
				return 2;
			}
			g.vsock_port = (unsigned)p;
		} else if (strcmp(a, "--allow-power") == 0) {
			allow_power = true;
		} else if (strcmp(a, "--version") == 0) {
			puts(BANGER_AGENT_VERSION);
			return 0;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (unix_path && stdio_mode) {
		logmsg("--listen-unix and --stdio are exclusive");
		return 2;
	}

	/* Commands get fds 0-2 by dup2 from pipes that must not be 0-2. */
	int nullfd;
	while ((nullfd = open("/dev/null", O_RDWR)) >= 0 && nullfd < 3) {
	}
	if (nullfd > 2)
		close(nullfd);
	signal(SIGPIPE, SIG_IGN);
	/* SIGCHLD wakes poll through a self-pipe; every child is reaped, as
	 * init (a bare initramfs) must: a command's status goes in its EXIT,
	 * any other child (an orphan) is dropped. */
	int sp[2];
	if (pipe2(sp, O_CLOEXEC | O_NONBLOCK) != 0) {
		logmsg("pipe: %s", strerror(errno));
		return 1;
	}
	g.sigchld_r = sp[0];
	g.sigchld_w = sp[1];
	struct sigaction sc = {.sa_handler = on_sigchld, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
	sigaction(SIGCHLD, &sc, NULL);
	/* Three fds a command: raise the soft limit (commands get it back). */
	if (getrlimit(RLIMIT_NOFILE, &g.nofile) == 0) {
		struct rlimit more = g.nofile;
		more.rlim_cur = more.rlim_max > 65536 ? 65536 : more.rlim_max;
		if (more.rlim_cur > g.nofile.rlim_cur)
			setrlimit(RLIMIT_NOFILE, &more);
	}
	if (getpid() != 1) {
		/* As init (a bare initramfs) exiting would panic the kernel, so
		 * there SIGTERM keeps its default: ignored for PID 1. */
		struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: poll returns */
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
	}

	if (unix_path) {
		g.listen_fd = listen_unix(unix_path);
		if (g.listen_fd < 0)
			return 1;
		g.allow_power = allow_power;
	} else if (stdio_mode) {
		if (!conn_new(CONN_STDIO, STDIN_FILENO, STDOUT_FILENO)) {
			logmsg("out of memory");
			return 1;
		}
		g.allow_power = allow_power;
	} else {
		g.device_mode = true;
		g.allow_power = true; /* the host powering off its own VM is the point */
	}
	serve(stdio_mode);
	for (size_t i = 0; i < g.nconns; i++)
		streams_end(g.conns[i]); /* no command outlives the agent */
	if (unix_path)
		unlink(unix_path);
	return 0;
}

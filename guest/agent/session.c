/* banger-agent session VERB ...: durable sessions in the guest.
 *
 * The host runs these verbs as ordinary commands over the agent (vm.exec),
 * so a session needs nothing from the agent's poll loop and outlives it,
 * the host's bangerd and every connection. `start` forks a supervisor
 * (its own session, re-parented to init) that owns the command: it writes
 * the command's output to capped logs, keeps its exit status, and serves
 * one attached client at a time on a Unix socket. Everything a session is
 * lives in SESSIONS_DIR/<name>/:
 *   meta.json    what was started (written once, by start)
 *   pid          the supervisor's pid, then " <boot_id>"
 *   stdout.log, stderr.log, output.log (both, in order), each capped with
 *                one older generation (*.log.1)
 *   stdin        a FIFO: the command's stdin in pipe mode (send writes it)
 *   sock         the supervisor's socket (attach)
 *   exit.json    {"exit_code":N} or {"signal":"TERM"}, with "ended_at"
 * Exit codes (the host maps them to error codes): 2 bad request or failed
 * preflight, 3 no such session, 4 name taken, 5 attached elsewhere,
 * 6 not possible for this kind of session, 1 anything else. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "session.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define SESSIONS_DIR "/var/lib/banger/sessions"
#define LOG_CAP (8L << 20)  /* bytes per log file before it rolls to .1 */
#define STOP_GRACE_MS 10000 /* stop: TERM, then KILL after this */
#define DETACH_KEY 0x1d     /* Ctrl-] */
#define ATTACH_BACKLOG (1 << 20) /* output queued for a slow attacher before it is dropped */

#define PRINTF(a, b) __attribute__((format(printf, a, b)))

enum { E_GENERIC = 1, E_INVALID = 2, E_NOTFOUND = 3, E_EXISTS = 4, E_BUSY = 5, E_UNSUPPORTED = 6 };

static void PRINTF(2, 3) __attribute__((noreturn)) fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

/* musl has no sigabbrev_np: the x86-64 and arm64 numbering of 1..31. */
static const char *const signames[32] = {
	NULL,   "HUP",  "INT",    "QUIT", "ILL",  "TRAP", "ABRT", "BUS",  "FPE",  "KILL",  "USR1",
	"SEGV", "USR2", "PIPE",   "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN",
	"TTOU", "URG",  "XCPU",   "XFSZ", "VTALRM", "PROF", "WINCH", "IO",  "PWR",  "SYS"};

static const char *signame(int sig) { return sig > 0 && sig < 32 ? signames[sig] : NULL; }

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void iso_now(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f); /* UTF-8 passes through; the host checks it */
	}
	fputc('"', f);
}

static bool valid_name(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > 64 || n[0] == '.' || n[0] == '-')
		return false;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
		      *p == '_' || *p == '-'))
			return false;
	return true;
}

/* Where sessions live: BANGER_AGENT_SESSIONS overrides it for tests that
 * run the agent on the host. */
static const char *sessions_dir(void)
{
	const char *d = getenv("BANGER_AGENT_SESSIONS");
	return d && *d == '/' ? d : SESSIONS_DIR;
}

/* name's directory, or a file in it: one of 4 static buffers, reused in
 * turn, so keep a copy of any path used across other calls. */
static char *path_of(const char *name, const char *file)
{
	static char buf[4][PATH_MAX];
	static int next;
	char *p = buf[next++ % 4];
	snprintf(p, PATH_MAX, "%s/%s%s%s", sessions_dir(), name, file ? "/" : "", file ? file : "");
	return p;
}

static ssize_t slurp(const char *path, char *out, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, out, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	out[n] = '\0';
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
	return n;
}

static void boot_id(char out[64])
{
	if (slurp("/proc/sys/kernel/random/boot_id", out, 64) < 0)
		out[0] = '\0';
}

/* Whether name's supervisor runs (this boot, that pid, still our program). */
static bool supervisor_alive(const char *name, pid_t *pid_out)
{
	char text[128], boot[64];
	if (slurp(path_of(name, "pid"), text, sizeof(text)) <= 0)
		return false;
	long pid = 0;
	char rec_boot[64] = "";
	if (sscanf(text, "%ld %63s", &pid, rec_boot) < 1 || pid <= 0)
		return false;
	boot_id(boot);
	if (strcmp(boot, rec_boot))
		return false; /* a pid from an earlier boot */
	if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
		return false;
	if (pid_out)
		*pid_out = (pid_t)pid;
	return true;
}

/* Running: its supervisor lives and has not recorded the end (it writes
 * exit.json last, just before it exits). */
static bool session_running(const char *name)
{
	struct stat st;
	return supervisor_alive(name, NULL) && stat(path_of(name, "exit.json"), &st) != 0;
}

/* The command's pid (its process group: it leads one). */
static pid_t command_pid(const char *name)
{
	char text[64];
	if (slurp(path_of(name, "command.pid"), text, sizeof(text)) <= 0)
		return 0;
	return (pid_t)atol(text);
}

static bool exists(const char *name)
{
	struct stat st;
	return stat(path_of(name, "meta.json"), &st) == 0;
}

static void need_session(const char *name)
{
	if (!valid_name(name))
		fail(E_INVALID, "invalid session name '%s' (1-64 of A-Z a-z 0-9 . _ -)", name);
	if (!exists(name))
		fail(E_NOTFOUND, "no session '%s' in this VM (banger vm session list)", name);
}

/* Finds cmd as execvp would; full receives the path. */
static bool on_path(const char *cmd, char *full, size_t cap)
{
	if (!cmd || !*cmd)
		return false;
	if (strchr(cmd, '/')) {
		snprintf(full, cap, "%s", cmd);
		return access(cmd, X_OK) == 0;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (const char *p = path;;) {
		const char *colon = strchr(p, ':');
		size_t len = colon ? (size_t)(colon - p) : strlen(p);
		snprintf(full, cap, "%.*s/%s", (int)len, len ? p : ".", cmd);
		struct stat st;
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
			return true;
		if (!colon)
			return false;
		p = colon + 1;
	}
}

/* ---- the supervisor ---- */

typedef struct {
	int fd;
	const char *path;
	off_t size;
} logfile;

static void log_open(logfile *l, const char *name, const char *file)
{
	l->path = strdup(path_of(name, file));
	l->fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	struct stat st;
	l->size = l->fd >= 0 && fstat(l->fd, &st) == 0 ? st.st_size : 0;
}

/* Appends; past LOG_CAP the file becomes .1 (replacing the older one). */
static void log_write(logfile *l, const char *p, size_t n)
{
	if (l->fd < 0)
		return;
	if (l->size + (off_t)n > LOG_CAP) {
		char old[PATH_MAX + 3];
		snprintf(old, sizeof(old), "%s.1", l->path);
		rename(l->path, old);
		close(l->fd);
		l->fd = open(l->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
		l->size = 0;
		if (l->fd < 0)
			return;
	}
	while (n > 0) {
		ssize_t w = write(l->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		l->size += w;
		p += w;
		n -= (size_t)w;
	}
}

typedef struct {
	const char *name;
	bool tty;
	int out[2];      /* the command's stdout/stderr (tty: out[0] is the pty master, out[1] -1) */
	int listen_fd;
	int client;      /* the attached client, -1 when none */
	char *backlog;   /* output not yet sent to the client */
	size_t blen;
	char in[4096];   /* the client's partial input frame */
	size_t ilen;
	logfile logs[3]; /* stdout, stderr, output */
} super;

static void drop_client(super *s)
{
	if (s->client >= 0)
		close(s->client);
	s->client = -1;
	s->blen = 0;
	s->ilen = 0;
	unlink(path_of(s->name, "attached"));
}

static void to_client(super *s, const char *p, size_t n)
{
	if (s->client < 0)
		return;
	if (s->blen == 0) {
		ssize_t w = send(s->client, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN) {
			drop_client(s);
			return;
		}
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		}
	}
	if (n == 0)
		return;
	if (s->blen + n > ATTACH_BACKLOG) { /* a client that does not read: let it go */
		drop_client(s);
		return;
	}
	char *b = realloc(s->backlog, s->blen + n);
	if (!b) {
		drop_client(s);
		return;
	}
	s->backlog = b;
	memcpy(b + s->blen, p, n);
	s->blen += n;
}

static void flush_client(super *s)
{
	if (s->client < 0 || s->blen == 0)
		return;
	ssize_t w = send(s->client, s->backlog, s->blen, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w < 0 && errno != EAGAIN) {
		drop_client(s);
		return;
	}
	if (w > 0) {
		memmove(s->backlog, s->backlog + w, s->blen - (size_t)w);
		s->blen -= (size_t)w;
	}
}

/* Reads one of the command's outputs: false at its end. */
static bool pump_output(super *s, int which)
{
	char buf[16384];
	ssize_t n = read(s->out[which], buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false; /* EOF, or EIO: a pty whose last holder closed it */
	log_write(&s->logs[which], buf, (size_t)n);
	log_write(&s->logs[2], buf, (size_t)n);
	to_client(s, buf, (size_t)n);
	return true;
}

/* A new client: "A <holder>\n" to attach. One at a time: a second one is
 * told who holds the session. */
static void accept_client(super *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	char hello[512];
	size_t n = 0;
	struct pollfd p = {fd, POLLIN, 0};
	while (n < sizeof(hello) - 1 && poll(&p, 1, 2000) > 0) {
		ssize_t r = read(fd, hello + n, 1);
		if (r <= 0 || hello[n] == '\n')
			break;
		n++;
	}
	hello[n] = '\0';
	if (n < 2 || hello[0] != 'A') {
		close(fd);
		return;
	}
	if (s->client >= 0) {
		char holder[512] = "another client";
		slurp(path_of(s->name, "attached"), holder, sizeof(holder));
		dprintf(fd, "busy %s\n", holder);
		close(fd);
		return;
	}
	if (dprintf(fd, "ok\n") < 0) {
		close(fd);
		return;
	}
	s->client = fd;
	int a = open(path_of(s->name, "attached"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (a >= 0) {
		dprintf(a, "%s\n", hello + 2);
		close(a);
	}
}

/* The client's frames: 'd' len16 data (into the pty or the stdin FIFO), 'w'
 * rows16 cols16 (the pty's size). */
static void client_input(super *s, int stdin_w)
{
	ssize_t n = read(s->client, s->in + s->ilen, sizeof(s->in) - s->ilen);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		drop_client(s);
		return;
	}
	s->ilen += (size_t)n;
	size_t off = 0;
	while (s->ilen - off >= 3) {
		unsigned char *h = (unsigned char *)s->in + off;
		size_t len = (size_t)h[1] << 8 | h[2];
		if (len > sizeof(s->in) - 3) {
			drop_client(s);
			return;
		}
		if (s->ilen - off < 3 + len)
			break;
		if (h[0] == 'd' && stdin_w >= 0) {
			const char *p = (const char *)h + 3;
			size_t left = len;
			while (left > 0) {
				ssize_t w = write(stdin_w, p, left);
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					break;
				p += w;
				left -= (size_t)w;
			}
		} else if (h[0] == 'w' && len == 4 && s->tty) {
			struct winsize ws = {.ws_row = (unsigned short)(h[3] << 8 | h[4]),
					     .ws_col = (unsigned short)(h[5] << 8 | h[6])};
			ioctl(s->out[0], TIOCSWINSZ, &ws);
		}
		off += 3 + len;
	}
	memmove(s->in, s->in + off, s->ilen - off);
	s->ilen -= off;
}

static int sigchld_pipe[2];

static void on_chld(int sig)
{
	(void)sig;
	int e = errno;
	if (write(sigchld_pipe[1], "c", 1) < 0) {
	}
	errno = e;
}

static void write_exit(const char *name, int status, const char *error)
{
	char tmp[PATH_MAX], ended[32];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path_of(name, "exit.json"));
	FILE *f = fopen(tmp, "we");
	if (!f)
		return;
	iso_now(ended);
	fputs("{", f);
	if (error) {
		fputs("\"error\":", f);
		json_str(f, error);
	} else if (WIFSIGNALED(status)) {
		const char *sn = signame(WTERMSIG(status));
		if (sn) {
			fputs("\"signal\":", f);
			json_str(f, sn);
		} else {
			fprintf(f, "\"signal\":%d", WTERMSIG(status));
		}
	} else {
		fprintf(f, "\"exit_code\":%d", WEXITSTATUS(status));
	}
	fputs(",\"ended_at\":", f);
	json_str(f, ended);
	fputs("}\n", f);
	fclose(f);
	rename(tmp, path_of(name, "exit.json"));
}

typedef struct {
	const char *name, *cwd, *stdin_mode;
	bool tty;
	char **env;
	size_t nenv;
	char **argv;
} start_req;

/* Runs in the supervisor: starts the command and serves it until it ends.
 * ready is written "ok\n" or the reason it could not start. */
static void supervise(const start_req *r, int ready)
{
	super s = {.name = r->name, .tty = r->tty, .out = {-1, -1}, .client = -1};
	const char *logs[3] = {"stdout.log", "stderr.log", "output.log"};
	for (int i = 0; i < 3; i++)
		log_open(&s.logs[i], r->name, logs[i]);

	int stdin_r = -1, stdin_w = -1; /* pipe mode: the FIFO, both ends ours so it never reads EOF */
	bool pipe_mode = !strcmp(r->stdin_mode, "pipe");
	if (pipe_mode && !r->tty) {
		const char *fifo = path_of(r->name, "stdin");
		unlink(fifo);
		if (mkfifo(fifo, 0600) != 0 || (stdin_r = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0 ||
		    (stdin_w = open(fifo, O_WRONLY | O_CLOEXEC)) < 0) {
			dprintf(ready, "cannot make the stdin FIFO: %s\n", strerror(errno));
			_exit(1);
		}
		fcntl(stdin_r, F_SETFL, fcntl(stdin_r, F_GETFL) & ~O_NONBLOCK);
	}
	int err_pipe[2];
	int outp[2] = {-1, -1}, errp[2] = {-1, -1};
	int master = -1;
	pid_t child;
	if (pipe2(err_pipe, O_CLOEXEC) != 0) {
		dprintf(ready, "pipe: %s\n", strerror(errno));
		_exit(1);
	}
	if (r->tty) {
		struct winsize ws = {.ws_row = 24, .ws_col = 80};
		child = forkpty(&master, NULL, NULL, &ws);
	} else {
		if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
			dprintf(ready, "pipe: %s\n", strerror(errno));
			_exit(1);
		}
		child = fork();
	}
	if (child < 0) {
		dprintf(ready, "fork: %s\n", strerror(errno));
		_exit(1);
	}
	if (child == 0) {
		close(err_pipe[0]);
		if (!r->tty) {
			setsid();
			int in = stdin_r >= 0 ? stdin_r : open("/dev/null", O_RDONLY);
			dup2(in, 0);
			dup2(outp[1], 1);
			dup2(errp[1], 2);
		}
		/* what the supervisor ignores, the command must not inherit */
		signal(SIGPIPE, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		for (size_t i = 0; i < r->nenv; i++)
			putenv(r->env[i]);
		if (r->cwd && chdir(r->cwd) != 0) {
			dprintf(err_pipe[1], "cannot change directory to %s: %s", r->cwd, strerror(errno));
			_exit(127);
		}
		execvp(r->argv[0], r->argv);
		dprintf(err_pipe[1], "cannot execute %s: %s", r->argv[0], strerror(errno));
		_exit(127);
	}
	close(err_pipe[1]);
	char why[512];
	ssize_t k = read(err_pipe[0], why, sizeof(why) - 1);
	close(err_pipe[0]);
	if (k > 0) {
		why[k] = '\0';
		waitpid(child, NULL, 0);
		dprintf(ready, "%s\n", why);
		_exit(1);
	}
	if (r->tty) {
		s.out[0] = master;
	} else {
		close(outp[1]);
		close(errp[1]);
		s.out[0] = outp[0];
		s.out[1] = errp[0];
	}
	for (int i = 0; i < 2; i++)
		if (s.out[i] >= 0)
			fcntl(s.out[i], F_SETFL, fcntl(s.out[i], F_GETFL) | O_NONBLOCK);
	FILE *cp = fopen(path_of(r->name, "command.pid"), "we");
	if (cp) {
		fprintf(cp, "%d\n", (int)child);
		fclose(cp);
	}

	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path_of(r->name, "sock"));
	unlink(sa.sun_path);
	s.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s.listen_fd < 0 || bind(s.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(s.listen_fd, 4) != 0)
		s.listen_fd = -1; /* the session still runs; attach says it cannot */
	dprintf(ready, "ok\n");
	close(ready);

	int status = 0;
	bool exited = false;
	while (!exited || s.out[0] >= 0 || s.out[1] >= 0) {
		struct pollfd p[6];
		int np = 0, ip_out[2] = {-1, -1}, ip_listen = -1, ip_client = -1;
		for (int i = 0; i < 2; i++)
			if (s.out[i] >= 0) {
				ip_out[i] = np;
				p[np++] = (struct pollfd){s.out[i], POLLIN, 0};
			}
		if (s.listen_fd >= 0) {
			ip_listen = np;
			p[np++] = (struct pollfd){s.listen_fd, POLLIN, 0};
		}
		if (s.client >= 0) {
			ip_client = np;
			p[np++] = (struct pollfd){s.client, (short)(POLLIN | (s.blen ? POLLOUT : 0)), 0};
		}
		p[np++] = (struct pollfd){sigchld_pipe[0], POLLIN, 0};
		/* once the command has ended, what it left in the pipes is read, but
		 * a grandchild holding them open does not keep the session up */
		int n = poll(p, (nfds_t)np, exited ? 200 : -1);
		if (n < 0 && errno != EINTR)
			break;
		if (n == 0 && exited)
			break;
		for (int i = 0; i < 2; i++)
			if (ip_out[i] >= 0 && p[ip_out[i]].revents && !pump_output(&s, i)) {
				close(s.out[i]);
				s.out[i] = -1;
			}
		if (ip_client >= 0 && s.client >= 0 && (p[ip_client].revents & POLLOUT))
			flush_client(&s);
		if (ip_client >= 0 && s.client >= 0 && (p[ip_client].revents & (POLLIN | POLLHUP | POLLERR)))
			client_input(&s, r->tty ? master : stdin_w);
		if (ip_listen >= 0 && (p[ip_listen].revents & POLLIN))
			accept_client(&s);
		if (p[np - 1].revents & POLLIN) {
			char drain[64];
			while (read(sigchld_pipe[0], drain, sizeof(drain)) > 0) {
			}
			int st;
			pid_t w;
			while ((w = waitpid(-1, &st, WNOHANG)) > 0)
				if (w == child) {
					status = st;
					exited = true;
				}
		}
	}
	if (s.client >= 0) {
		/* what the client has not been sent yet, then the end */
		fcntl(s.client, F_SETFL, fcntl(s.client, F_GETFL) & ~O_NONBLOCK);
		struct timeval tv = {5, 0};
		setsockopt(s.client, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (s.blen && send(s.client, s.backlog, s.blen, MSG_NOSIGNAL) < 0) {
		}
		drop_client(&s);
	}
	if (s.listen_fd >= 0)
		close(s.listen_fd);
	unlink(path_of(r->name, "sock"));
	/* last: once exit.json exists, nothing of this session is in use and
	 * its name may be started again */
	write_exit(r->name, status, NULL);
	_exit(0);
}

static int cmd_start(int argc, char **argv)
{
	start_req r = {.stdin_mode = "detached"};
	char **require = calloc((size_t)argc, sizeof(char *));
	r.env = calloc((size_t)argc, sizeof(char *));
	size_t nreq = 0;
	int i = 0;
	for (; i < argc; i++) {
		const char *a = argv[i];
		bool val = i + 1 < argc;
		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strcmp(a, "--name") && val) {
			r.name = argv[++i];
		} else if (!strcmp(a, "--cwd") && val) {
			r.cwd = argv[++i];
		} else if (!strcmp(a, "--env") && val) {
			if (!strchr(argv[i + 1], '=') || argv[i + 1][0] == '=')
				fail(E_INVALID, "--env takes KEY=VALUE (got '%s')", argv[i + 1]);
			r.env[r.nenv++] = argv[++i];
		} else if (!strcmp(a, "--stdin-mode") && val) {
			r.stdin_mode = argv[++i];
		} else if (!strcmp(a, "--tty")) {
			r.tty = true;
		} else if (!strcmp(a, "--require-command") && val) {
			require[nreq++] = argv[++i];
		} else {
			fail(E_INVALID, "session start: unknown argument '%s'", a);
		}
	}
	r.argv = argv + i;
	if (!r.name)
		fail(E_INVALID, "session start needs --name");
	if (!valid_name(r.name))
		fail(E_INVALID, "invalid session name '%s' (1-64 of A-Z a-z 0-9 . _ -)", r.name);
	if (i >= argc)
		fail(E_INVALID, "session start needs a command after --");
	if (strcmp(r.stdin_mode, "detached") && strcmp(r.stdin_mode, "pipe"))
		fail(E_INVALID, "--stdin-mode is detached or pipe (got '%s')", r.stdin_mode);

	/* preflight: what would make the command fail at once, said plainly */
	struct stat st;
	if (r.cwd && (stat(r.cwd, &st) != 0 || !S_ISDIR(st.st_mode)))
		fail(E_INVALID, "session '%s': working directory %s does not exist in the guest", r.name, r.cwd);
	char full[PATH_MAX];
	for (size_t k = 0; k < nreq; k++)
		if (!on_path(require[k], full, sizeof(full)))
			fail(E_INVALID, "session '%s': required command '%s' is not on the guest's PATH (%s)", r.name,
			     require[k], getenv("PATH") ? getenv("PATH") : "");
	if (!on_path(r.argv[0], full, sizeof(full)))
		fail(E_INVALID, "session '%s': command '%s' is not on the guest's PATH (%s)", r.name, r.argv[0],
		     getenv("PATH") ? getenv("PATH") : "");

	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", sessions_dir());
	for (char *slash = dir + 1;; slash++) { /* mkdir -p */
		bool end = *slash == '\0';
		if (*slash == '/' || end) {
			*slash = '\0';
			if (mkdir(dir, end ? 0700 : 0755) != 0 && errno != EEXIST)
				fail(E_GENERIC, "cannot make %s: %s", dir, strerror(errno));
			if (end)
				break;
			*slash = '/';
		}
	}
	/* one start per name at a time: the lock is the sessions dir's */
	int lock = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lock < 0 || flock(lock, LOCK_EX) != 0)
		fail(E_GENERIC, "cannot lock %s: %s", dir, strerror(errno));
	if (session_running(r.name))
		fail(E_EXISTS, "session '%s' already runs in this VM: pick another name, or stop it first", r.name);
	/* an ended session's name is free again: its files go */
	if (exists(r.name)) {
		static const char *const files[] = {"meta.json", "pid", "command.pid", "exit.json", "stdout.log",
						    "stderr.log", "output.log", "stdout.log.1", "stderr.log.1",
						    "output.log.1", "stdin", "sock", "attached"};
		for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); k++)
			unlink(path_of(r.name, files[k]));
	}
	if (mkdir(path_of(r.name, NULL), 0700) != 0 && errno != EEXIST)
		fail(E_GENERIC, "cannot make %s: %s", path_of(r.name, NULL), strerror(errno));

	char started[32], boot[64];
	iso_now(started);
	boot_id(boot);
	FILE *m = fopen(path_of(r.name, "meta.json"), "we");
	if (!m)
		fail(E_GENERIC, "cannot write the session's metadata: %s", strerror(errno));
	fputs("{\"name\":", m);
	json_str(m, r.name);
	fputs(",\"argv\":[", m);
	for (char **a = r.argv; *a; a++) {
		if (a != r.argv)
			fputc(',', m);
		json_str(m, *a);
	}
	fputs("],\"cwd\":", m);
	if (r.cwd)
		json_str(m, r.cwd);
	else
		fputs("null", m);
	fputs(",\"stdin_mode\":", m);
	json_str(m, r.tty ? "tty" : r.stdin_mode);
	fprintf(m, ",\"tty\":%s,\"started_at\":", r.tty ? "true" : "false");
	json_str(m, started);
	fputs(",\"boot_id\":", m);
	json_str(m, boot);
	fputs("}\n", m);
	fclose(m);

	int ready[2];
	if (pipe2(ready, O_CLOEXEC) != 0 || pipe(sigchld_pipe) != 0)
		fail(E_GENERIC, "pipe: %s", strerror(errno));
	fflush(NULL);
	pid_t sup = fork();
	if (sup < 0)
		fail(E_GENERIC, "fork: %s", strerror(errno));
	if (sup == 0) {
		/* away from the agent's command: its own session, no inherited
		 * stdio (the exec's pipes must reach EOF when start exits) */
		close(ready[0]);
		close(lock);
		setsid();
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
		fcntl(sigchld_pipe[0], F_SETFD, FD_CLOEXEC);
		fcntl(sigchld_pipe[1], F_SETFD, FD_CLOEXEC);
		fcntl(sigchld_pipe[0], F_SETFL, O_NONBLOCK);
		fcntl(sigchld_pipe[1], F_SETFL, O_NONBLOCK);
		struct sigaction sc = {.sa_handler = on_chld, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
		sigaction(SIGCHLD, &sc, NULL);
		signal(SIGPIPE, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGTERM, SIG_IGN); /* stop signals the command; the supervisor records its end */
		FILE *pf = fopen(path_of(r.name, "pid"), "we");
		if (pf) {
			fprintf(pf, "%d %s\n", (int)getpid(), boot);
			fclose(pf);
		}
		supervise(&r, ready[1]);
	}
	close(ready[1]);
	char msg[1024];
	size_t n = 0;
	ssize_t k;
	while (n < sizeof(msg) - 1 && (k = read(ready[0], msg + n, sizeof(msg) - 1 - n)) > 0)
		n += (size_t)k;
	msg[n] = '\0';
	if (strcmp(msg, "ok\n")) {
		if (n && msg[n - 1] == '\n')
			msg[n - 1] = '\0';
		unlink(path_of(r.name, "pid"));
		write_exit(r.name, 0, n ? msg : "the supervisor ended before starting the command");
		fail(E_INVALID, "session '%s': %s", r.name, n ? msg : "could not start");
	}
	printf("{\"name\":");
	json_str(stdout, r.name);
	printf(",\"pid\":%d}\n", (int)command_pid(r.name));
	free(require);
	free(r.env);
	return 0;
}

/* One session as JSON: meta.json with its state added. */
static void print_session(const char *name)
{
	static char meta[65536], exitj[1024];
	if (slurp(path_of(name, "meta.json"), meta, sizeof(meta)) <= 0 || meta[strlen(meta) - 1] != '}')
		return;
	bool alive = supervisor_alive(name, NULL);
	bool ended = slurp(path_of(name, "exit.json"), exitj, sizeof(exitj)) > 0 && exitj[0] == '{';
	meta[strlen(meta) - 1] = '\0';
	fputs(meta, stdout);
	const char *state = alive && !ended ? "running" : "exited";
	printf(",\"state\":\"%s\"", state);
	if (alive && !ended)
		printf(",\"pid\":%d", (int)command_pid(name));
	char holder[512];
	if (alive && !ended && slurp(path_of(name, "attached"), holder, sizeof(holder)) > 0) {
		fputs(",\"attached\":", stdout);
		json_str(stdout, holder);
	}
	if (ended) {
		exitj[strlen(exitj) - 1] = '\0';
		printf(",%s}", exitj + 1);
	} else if (!alive) {
		fputs(",\"error\":\"the session ended without an exit status (the VM rebooted, or its supervisor "
		      "was killed)\"}",
		      stdout);
	} else {
		fputs("}", stdout);
	}
}

static int cmd_list(void)
{
	DIR *d = opendir(sessions_dir());
	fputs("[", stdout);
	bool first = true;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!valid_name(de->d_name) || !exists(de->d_name))
			continue;
		if (!first)
			fputs(",", stdout);
		first = false;
		print_session(de->d_name);
	}
	if (d)
		closedir(d);
	fputs("]\n", stdout);
	return 0;
}

static int cmd_show(const char *name)
{
	need_session(name);
	print_session(name);
	fputs("\n", stdout);
	return 0;
}

/* Copies fd's bytes from off to its end (or to limit, when >= 0) onto
 * stdout; returns the new offset. */
static off_t copy_out(int fd, off_t off, off_t limit)
{
	char buf[65536];
	ssize_t n;
	while ((limit < 0 || off < limit) &&
	       (n = pread(fd, buf, limit < 0 || limit - off > (off_t)sizeof(buf) ? sizeof(buf) : (size_t)(limit - off),
			  off)) > 0) {
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			exit(E_GENERIC);
		off += n;
	}
	fflush(stdout);
	return off;
}

/* Offset in the text of path (plus its .1) where its last `lines` lines
 * begin, counted over both, path read up to path_end (-1: its end);
 * *from_old says whether it starts in .1. */
static off_t tail_start(const char *path, long lines, off_t path_end, bool *from_old)
{
	char old[PATH_MAX + 3];
	snprintf(old, sizeof(old), "%s.1", path);
	const char *files[2] = {path, old};
	long seen = 0;
	for (int f = 0; f < 2; f++) {
		int fd = open(files[f], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct stat st;
		off_t end = fstat(fd, &st) == 0 ? st.st_size : 0;
		if (f == 0 && path_end >= 0 && path_end < end)
			end = path_end; /* counted from where the caller stops reading */
		char buf[8192];
		off_t pos = end;
		bool last_byte = true;
		while (pos > 0) {
			size_t want = pos > (off_t)sizeof(buf) ? sizeof(buf) : (size_t)pos;
			pos -= (off_t)want;
			if (pread(fd, buf, want, pos) != (ssize_t)want)
				break;
			for (size_t k = want; k-- > 0;) {
				/* a newline that ends the file does not start a line */
				if (buf[k] == '\n' && !(last_byte && f == 0 && pos + (off_t)k == end - 1)) {
					if (++seen == lines) {
						close(fd);
						*from_old = f == 1;
						return pos + (off_t)k + 1;
					}
				}
				last_byte = false;
			}
		}
		close(fd);
	}
	*from_old = true;
	return 0;
}

static int cmd_logs(int argc, char **argv)
{
	const char *name = NULL, *stream = "output";
	bool follow = false;
	long tail = -1;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--follow"))
			follow = true;
		else if (!strcmp(argv[i], "--stream") && i + 1 < argc)
			stream = argv[++i];
		else if (!strcmp(argv[i], "--tail") && i + 1 < argc)
			tail = atol(argv[++i]);
		else if (!name)
			name = argv[i];
		else
			fail(E_INVALID, "session logs: unknown argument '%s'", argv[i]);
	}
	if (!name)
		fail(E_INVALID, "session logs needs a session name");
	need_session(name);
	if (!strcmp(stream, "all"))
		stream = "output";
	if (strcmp(stream, "stdout") && strcmp(stream, "stderr") && strcmp(stream, "output"))
		fail(E_INVALID, "--stream is stdout or stderr (got '%s')", stream);
	char file[32];
	snprintf(file, sizeof(file), "%s.log", stream);
	char path[PATH_MAX]; /* a copy: path_of's buffers are reused by supervisor_alive below */
	snprintf(path, sizeof(path), "%s", path_of(name, file));
	char old[PATH_MAX + 3];
	snprintf(old, sizeof(old), "%s.1", path);
	/* without --follow, the log as it is now: a live session's new lines
	 * would make --tail N print more than N */
	struct stat now_st;
	off_t end = follow || stat(path, &now_st) != 0 ? -1 : now_st.st_size;
	bool from_old = true;
	off_t start = tail >= 0 ? tail_start(path, tail, end, &from_old) : 0;
	if (tail == 0) {
		from_old = false;
		struct stat st;
		start = end >= 0 ? end : stat(path, &st) == 0 ? st.st_size : 0;
	}
	int fd = open(old, O_RDONLY | O_CLOEXEC);
	if (from_old && fd >= 0) {
		copy_out(fd, start, -1);
		start = 0;
	}
	if (fd >= 0)
		close(fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t off = fd >= 0 ? copy_out(fd, start, end) : 0;
	while (follow) {
		/* until the session has ended and its last bytes are out */
		bool done = !session_running(name);
		struct timespec step = {0, 100 * 1000000L};
		nanosleep(&step, NULL);
		struct stat st, now;
		if (fd >= 0 && fstat(fd, &st) == 0 && stat(path, &now) == 0 && now.st_ino != st.st_ino) {
			copy_out(fd, off, -1); /* rolled to .1: finish the old file, go on with the new */
			close(fd);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			off = 0;
		}
		if (fd < 0)
			fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			off = copy_out(fd, off, -1);
		if (done)
			break;
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

static int cmd_send(const char *name)
{
	need_session(name);
	char meta[65536];
	slurp(path_of(name, "meta.json"), meta, sizeof(meta));
	if (!strstr(meta, "\"stdin_mode\":\"pipe\""))
		fail(E_UNSUPPORTED, "session '%s' takes no input: start it with --stdin-mode pipe (or attach to a --tty one)",
		     name);
	if (!session_running(name))
		fail(E_UNSUPPORTED, "session '%s' has ended", name);
	int fd = open(path_of(name, "stdin"), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		fail(E_GENERIC, "cannot open the session's stdin: %s", strerror(errno));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	/* writes of at most PIPE_BUF are atomic: another sender's bytes never
	 * land inside one of ours */
	char buf[PIPE_BUF];
	ssize_t n;
	long long total = 0;
	while ((n = read(0, buf, sizeof(buf))) > 0) {
		if (write(fd, buf, (size_t)n) != n)
			fail(E_GENERIC, "writing to the session's stdin: %s", strerror(errno));
		total += n;
	}
	close(fd);
	printf("{\"bytes\":%lld}\n", total);
	return 0;
}

/* Signals the command's process group. */
static void signal_session(const char *name, int sig)
{
	pid_t pid = command_pid(name);
	if (!session_running(name) || pid <= 0)
		fail(E_UNSUPPORTED, "session '%s' has ended", name);
	if (kill(-pid, sig) != 0 && kill(pid, sig) != 0)
		fail(E_GENERIC, "cannot signal session '%s': %s", name, strerror(errno));
}

static int parse_signal(const char *s)
{
	if (s[0] >= '0' && s[0] <= '9')
		return atoi(s);
	if (!strncmp(s, "SIG", 3))
		s += 3;
	for (int i = 1; i < 65; i++) {
		const char *n = signame(i);
		if (n && !strcmp(n, s))
			return i;
	}
	return 0;
}

static int cmd_kill(int argc, char **argv)
{
	const char *name = NULL;
	int sig = SIGKILL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--signal") && i + 1 < argc) {
			sig = parse_signal(argv[++i]);
			if (sig <= 0 || sig > 64)
				fail(E_INVALID, "unknown signal '%s'", argv[i]);
		} else if (!name) {
			name = argv[i];
		}
	}
	if (!name)
		fail(E_INVALID, "session kill needs a session name");
	need_session(name);
	signal_session(name, sig);
	printf("{\"signal\":\"%s\"}\n", signame(sig) ? signame(sig) : "?");
	return 0;
}

static int cmd_stop(const char *name)
{
	need_session(name);
	signal_session(name, SIGTERM);
	const char *how = "TERM";
	long long deadline = mono_ms() + STOP_GRACE_MS;
	while (session_running(name) && mono_ms() < deadline) {
		struct timespec step = {0, 50 * 1000000L};
		nanosleep(&step, NULL);
	}
	if (session_running(name)) {
		pid_t pid = command_pid(name);
		if (pid > 0 && kill(-pid, SIGKILL) != 0)
			kill(pid, SIGKILL);
		how = "KILL";
		deadline = mono_ms() + 5000;
		while (session_running(name) && mono_ms() < deadline) {
			struct timespec step = {0, 50 * 1000000L};
			nanosleep(&step, NULL);
		}
	}
	printf("{\"stopped_by\":\"%s\"}\n", how);
	return 0;
}

/* ---- attach: this process is the client, on the exec's stdio ---- */

static void send_frame(int fd, char type, const void *p, size_t n)
{
	unsigned char h[3] = {(unsigned char)type, (unsigned char)(n >> 8), (unsigned char)n};
	struct iovec v[2] = {{h, 3}, {(void *)p, n}};
	struct msghdr m = {.msg_iov = v, .msg_iovlen = 2};
	if (sendmsg(fd, &m, MSG_NOSIGNAL) < 0) {
	}
}

static volatile sig_atomic_t winch = 1;
static void on_winch(int sig)
{
	(void)sig;
	winch = 1;
}

static int cmd_attach(int argc, char **argv)
{
	const char *name = NULL, *holder = "a client";
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--holder") && i + 1 < argc)
			holder = argv[++i];
		else if (!name)
			name = argv[i];
	}
	if (!name)
		fail(E_INVALID, "session attach needs a session name");
	need_session(name);
	if (!session_running(name))
		fail(E_UNSUPPORTED, "session '%s' has ended: banger vm session logs shows its output", name);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path_of(name, "sock"));
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		fail(E_GENERIC, "cannot reach session '%s': %s", name, strerror(errno));
	dprintf(fd, "A %s\n", holder);
	char line[600];
	size_t n = 0;
	while (n < sizeof(line) - 1 && read(fd, line + n, 1) == 1 && line[n] != '\n')
		n++;
	line[n] = '\0';
	if (!strncmp(line, "busy ", 5))
		fail(E_BUSY, "session '%s' is attached elsewhere (%s)", name, line + 5);
	if (strcmp(line, "ok"))
		fail(E_GENERIC, "session '%s' did not accept the attach", name);
	bool tty = isatty(0);
	struct termios saved;
	if (tty && tcgetattr(0, &saved) == 0) {
		struct termios raw = saved;
		cfmakeraw(&raw);
		tcsetattr(0, TCSANOW, &raw);
	}
	signal(SIGWINCH, on_winch);
	fprintf(stderr, "[attached to session %s; detach with Ctrl-]]\r\n", name);
	bool detached = false, in_open = true;
	for (;;) {
		if (tty && winch) {
			winch = 0;
			struct winsize ws;
			if (ioctl(0, TIOCGWINSZ, &ws) == 0) {
				unsigned char w[4] = {(unsigned char)(ws.ws_row >> 8), (unsigned char)ws.ws_row,
						      (unsigned char)(ws.ws_col >> 8), (unsigned char)ws.ws_col};
				send_frame(fd, 'w', w, 4);
			}
		}
		struct pollfd p[2] = {{fd, POLLIN, 0}, {in_open ? 0 : -1, POLLIN, 0}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents) {
			char buf[16384];
			ssize_t k = read(fd, buf, sizeof(buf));
			if (k <= 0)
				break; /* the session ended */
			if (write(1, buf, (size_t)k) < 0)
				break;
		}
		if (p[1].revents) {
			char buf[4096];
			ssize_t k = read(0, buf, sizeof(buf));
			if (k <= 0) {
				in_open = false;
				continue;
			}
			char *key = tty ? memchr(buf, DETACH_KEY, (size_t)k) : NULL;
			if (key)
				k = key - buf;
			if (k > 0)
				send_frame(fd, 'd', buf, (size_t)k);
			if (key) {
				detached = true;
				break;
			}
		}
	}
	if (tty)
		tcsetattr(0, TCSANOW, &saved);
	close(fd);
	if (detached) {
		fprintf(stderr, "\r\n[detached from session %s; it keeps running]\r\n", name);
		return 0;
	}
	char exitj[256];
	if (slurp(path_of(name, "exit.json"), exitj, sizeof(exitj)) > 0)
		fprintf(stderr, "\r\n[session %s ended: %s]\r\n", name, exitj);
	return 0;
}

int session_main(int argc, char **argv)
{
	if (argc < 2)
		fail(E_INVALID, "usage: banger-agent session start|list|show|logs|attach|send|stop|kill ...");
	const char *verb = argv[1];
	argc -= 2;
	argv += 2;
	if (!strcmp(verb, "start"))
		return cmd_start(argc, argv);
	if (!strcmp(verb, "list"))
		return cmd_list();
	if (!strcmp(verb, "logs"))
		return cmd_logs(argc, argv);
	if (!strcmp(verb, "attach"))
		return cmd_attach(argc, argv);
	if (!strcmp(verb, "kill"))
		return cmd_kill(argc, argv);
	if (argc != 1)
		fail(E_INVALID, "session %s takes a session name", verb);
	if (!strcmp(verb, "show"))
		return cmd_show(argv[0]);
	if (!strcmp(verb, "send"))
		return cmd_send(argv[0]);
	if (!strcmp(verb, "stop"))
		return cmd_stop(argv[0]);
	fail(E_INVALID, "unknown session verb '%s'", verb);
	return 2;
}

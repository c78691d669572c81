/* bangerd-root: the narrow root helper (docs/privileges.md). It serves the
 * owning user's bangerd the few network steps that need root: a fixed
 * allow-list of verbs with validated arguments (lib/net/root_helper.c),
 * over a root-owned unix socket, to peers whose SO_PEERCRED uid is the
 * configured owner or root. It never runs a shell; the one program it runs
 * is resolvectl (resolver.route and resolver.revert, which take no
 * arguments), by absolute path with an empty environment, on its own
 * configured bridge and bridge_ip. One connection at a time: every request
 * is a few netlink messages or one bounded resolvectl run. */
#include "core/config.h"
#include "net/root_helper.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQUESTS_PER_CONNECTION 64

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	char ts[32];
	time_t now = time(NULL);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	fprintf(stderr, "%s bangerd-root[%d]: ", ts, (int)getpid());
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bangerd-root --owner UID [--socket PATH] [--config FILE] [--bridge NAME]\n"
		   "                    [--bridge-ip IP] [--cidr CIDR]\n"
		   "\n"
		   "Serves the owning user's bangerd the privileged network steps (bridge, taps,\n"
		   "NAT, IPv4 forwarding, systemd-resolved routing of .vm) on a root-owned\n"
		   "socket. Runs as root.\n"
		   "  --owner UID      the one non-root uid it serves (required)\n"
		   "  --socket PATH    socket to serve (default " BNG_ROOT_SOCKET_DEFAULT ")\n"
		   "  --config FILE    banger config for bridge_name, bridge_ip, cidr\n"
		   "                   (default /etc/banger/config.toml; missing: the defaults)\n"
		   "  --bridge NAME, --bridge-ip IP, --cidr CIDR   override the config\n");
}

static void send_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void reply(int fd, json_t *resp)
{
	char *text = json_dumps(resp, JSON_COMPACT);
	json_decref(resp);
	if (text) {
		send_all(fd, text, strlen(text));
		send_all(fd, "\n", 1);
	}
	free(text);
}

static void refuse(int fd, const char *code, const char *msg)
{
	reply(fd, json_pack("{s:b,s:s,s:s}", "ok", 0, "error", code, "message", msg));
}

static void handle_line(const bng_root_policy *p, int fd, const struct ucred *cr, const char *line, size_t len)
{
	char *summary = NULL;
	json_t *resp = bng_root_handle(p, cr->uid, line, len, &summary);
	logf_("uid %lu pid %ld: %s", (unsigned long)cr->uid, (long)cr->pid, summary);
	free(summary);
	reply(fd, resp);
}

static void serve_connection(const bng_root_policy *p, int fd)
{
	struct ucred cr;
	socklen_t sl = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &sl) != 0) {
		logf_("refused a connection: SO_PEERCRED: %s", strerror(errno));
		return;
	}
	if (!bng_root_peer_allowed(p, cr.uid)) {
		logf_("refused a connection from uid %lu pid %ld: only uid %lu and root are served",
		      (unsigned long)cr.uid, (long)cr.pid, (unsigned long)p->owner);
		refuse(fd, "EPERM", "this uid may not use the root helper");
		return;
	}
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	static char buf[BNG_ROOT_MAX_REQUEST + 1];
	size_t got = 0;
	int served = 0;
	for (;;) {
		char *nl;
		while ((nl = memchr(buf, '\n', got)) != NULL) {
			size_t len = (size_t)(nl - buf);
			handle_line(p, fd, &cr, buf, len);
			memmove(buf, nl + 1, got - len - 1);
			got -= len + 1;
			if (++served >= MAX_REQUESTS_PER_CONNECTION)
				return;
		}
		if (got == sizeof(buf)) {
			logf_("uid %lu pid %ld: refused: a request over %d bytes", (unsigned long)cr.uid, (long)cr.pid,
			      BNG_ROOT_MAX_REQUEST);
			refuse(fd, "ETOOBIG", "request over the size limit");
			/* Read (and drop) a bounded rest before closing: closing
			 * on unread data resets the connection, and the client
			 * would lose the answer. */
			shutdown(fd, SHUT_WR);
			for (size_t dropped = 0; dropped < (1u << 20);) {
				ssize_t d = recv(fd, buf, sizeof(buf), 0);
				if (d <= 0)
					break;
				dropped += (size_t)d;
			}
			return;
		}
		ssize_t r = recv(fd, buf + got, sizeof(buf) - got, 0);
		if (r < 0 && errno == EINTR && !stopping)
			continue;
		if (r <= 0) {
			if (r == 0 && got > 0) /* a last line without its newline */
				handle_line(p, fd, &cr, buf, got);
			else if (r < 0)
				logf_("uid %lu pid %ld: dropped: %s", (unsigned long)cr.uid, (long)cr.pid,
				      errno == EAGAIN ? "no complete request within 5 s" : strerror(errno));
			return;
		}
		got += (size_t)r;
	}
}

static int open_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		logf_("socket path too long: %s", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	char *dir = strdup(path);
	char *slash = dir ? strrchr(dir, '/') : NULL;
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST)
			logf_("creating %s: %s", dir, strerror(errno));
	}
	free(dir);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			logf_("%s exists and is not a socket: not replacing it", path);
			return -1;
		}
		unlink(path); /* a previous run's */
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 16) != 0) {
		logf_("serving %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* Anyone may connect; SO_PEERCRED decides who is served, and a
	 * refused peer gets an answer and a log line rather than EACCES. */
	if (chmod(sa.sun_path, 0666) != 0) {
		int e = errno;
		logf_("making %s world-connectable: %s", sa.sun_path, strerror(e));
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

/* Tells systemd (Type=notify) that the socket is there, so a unit ordered
 * after this one finds it: one datagram to $NOTIFY_SOCKET, no libsystemd. */
static void notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = path ? strlen(path) : 0;
	if (!n || n >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@'))
		return;
	memcpy(sa.sun_path, path, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* an abstract socket */
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, "READY=1", 7, MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
		logf_("telling systemd it is ready: %s", strerror(errno));
	close(fd);
}

int main(int argc, char **argv)
{
	const char *socket_path = BNG_ROOT_SOCKET_DEFAULT, *config_path = "/etc/banger/config.toml";
	const char *bridge = NULL, *bridge_ip = NULL, *cidr = NULL;
	long owner = -1;
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'}, {"owner", required_argument, NULL, 'o'},
		{"config", required_argument, NULL, 'c'}, {"bridge", required_argument, NULL, 'b'},
		{"bridge-ip", required_argument, NULL, 'i'}, {"cidr", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	int c;
	char *end;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's': socket_path = optarg; break;
		case 'c': config_path = optarg; break;
		case 'b': bridge = optarg; break;
		case 'i': bridge_ip = optarg; break;
		case 'n': cidr = optarg; break;
		case 'o':
			errno = 0;
			owner = strtol(optarg, &end, 10);
			if (errno || *end || owner <= 0 || owner >= 0xffffffffL) {
				fprintf(stderr, "bangerd-root: --owner: not a non-root uid: %s\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc || owner < 0) {
		usage(stderr);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "bangerd-root: must run as root (it does the steps that need root)\n");
		return 1;
	}
	bng_config cfg;
	if (bng_config_load(&cfg, config_path, "/etc/banger") != 0) {
		fprintf(stderr, "bangerd-root: %s\n", banger_error_last());
		return 1;
	}
	bng_root_policy policy;
	int rc = bng_root_policy_init(&policy, (uid_t)owner, bridge ? bridge : bng_config_str(&cfg, "bridge_name"),
				      bridge_ip ? bridge_ip : bng_config_str(&cfg, "bridge_ip"),
				      cidr ? cidr : bng_config_str(&cfg, "cidr"));
	bng_config_free(&cfg);
	if (rc) {
		fprintf(stderr, "bangerd-root: %s\n", banger_error_last());
		return 1;
	}
	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: accept() returns */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	umask(022);
	int lfd = open_socket(socket_path);
	if (lfd < 0)
		return 1;
	logf_("serving %s for uid %ld: bridge %s %s/%d", socket_path, owner, policy.bridge, policy.bridge_ip,
	      policy.prefix_len);
	notify_ready();
	while (!stopping) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR) {
				logf_("accept: %s", strerror(errno));
				usleep(100 * 1000); /* EMFILE and the like: do not spin */
			}
			continue;
		}
		serve_connection(&policy, fd);
		close(fd);
	}
	close(lfd);
	unlink(socket_path);
	logf_("stopped");
	return 0;
}

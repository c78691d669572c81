/* `.vm` routed through systemd-resolved (net.h, "resolver routing"): the
 * one place banger's net code runs a program, resolvectl, and the one
 * program the root helper runs. Always by absolute path, with an empty
 * environment, output captured and the wait bounded, so the same code is
 * fit for the helper (which runs it as root for its owner). */
#include "net.h"
#include "root_helper.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RESOLVED_SOCKET "/run/systemd/resolve/io.systemd.Resolve"
#define RESOLVECTL_TIMEOUT_MS 10000

bool bng_net_resolved_running(void)
{
	return access(RESOLVED_SOCKET, F_OK) == 0;
}

static const char *resolvectl_path(void)
{
	static const char *const paths[] = {"/usr/bin/resolvectl", "/bin/resolvectl"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

/* Runs resolvectl with args (NULL-terminated, at most 4): 0 when it exits
 * 0, else BANGER_EIO with its status and the last line it printed. */
static int resolvectl(const char *const *args)
{
	const char *exe = resolvectl_path();
	if (!exe)
		return bng_err(BANGER_EUNSUPPORTED, "systemd-resolved runs but resolvectl is in neither /usr/bin nor /bin");
	char *argv[6] = {(char *)"resolvectl"};
	size_t n = 1;
	for (; args[n - 1] && n < 5; n++)
		argv[n] = (char *)args[n - 1];
	argv[n] = NULL;
	char *const envp[] = {NULL};
	int pfd[2] = {-1, -1}, rc = 0, err;
	pid_t pid = -1;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	/* default dispositions and an empty mask: not the caller's (the helper
	 * ignores SIGPIPE; bangerd's threads block signals) */
	posix_spawnattr_t attr;
	posix_spawnattr_init(&attr);
	sigset_t all, none;
	sigfillset(&all);
	sigemptyset(&none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		rc = bng_err_errno(BANGER_EIO, errno, "resolvectl: pipe");
		goto out;
	}
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	if ((err = posix_spawn(&pid, exe, &fa, &attr, argv, envp)) != 0) {
		pid = -1;
		rc = bng_err_errno(BANGER_EIO, err, "running %s", exe);
		goto out;
	}
	close(pfd[1]);
	pfd[1] = -1;
	char buf[1024];
	size_t got = 0;
	bool timed_out = false;
	for (long long deadline = bng_now_ms() + RESOLVECTL_TIMEOUT_MS;;) {
		long long left = deadline - bng_now_ms();
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		int pr = left > 0 ? poll(&p, 1, (int)left) : 0;
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			timed_out = pr == 0;
			break;
		}
		char chunk[512];
		ssize_t r = read(pfd[0], chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		/* keep the tail: the last line says why */
		size_t take = (size_t)r < sizeof(buf) - 1 ? (size_t)r : sizeof(buf) - 1;
		if (got + take > sizeof(buf) - 1) {
			size_t drop = got + take - (sizeof(buf) - 1);
			memmove(buf, buf + drop, got - drop);
			got -= drop;
		}
		memcpy(buf + got, chunk + (size_t)r - take, take);
		got += take;
	}
	if (timed_out)
		kill(pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pid = -1;
	buf[got] = '\0';
	while (got && (buf[got - 1] == '\n' || buf[got - 1] == '\r'))
		buf[--got] = '\0';
	char *last = strrchr(buf, '\n');
	last = last ? last + 1 : buf;
	for (char *c = last; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	if (timed_out)
		rc = bng_err(BANGER_ETIMEDOUT, "resolvectl %s %s did not finish within %d s", args[0], args[1] ? args[1] : "",
			     RESOLVECTL_TIMEOUT_MS / 1000);
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		rc = bng_err(BANGER_EIO, "resolvectl %s %s failed (%s %d)%s%s", args[0], args[1] ? args[1] : "",
			     WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
			     *last ? ": " : "", last);
out:
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	return rc;
}

static int check_resolved(void)
{
	if (!bng_net_resolved_running())
		return bng_err(BANGER_EUNSUPPORTED, "systemd-resolved does not run on this host (no %s): nothing to route "
						    ".vm through",
			       RESOLVED_SOCKET);
	return 0;
}

int bng_net_resolver_route(const char *bridge, const char *ip)
{
	if (bng_net_via_helper())
		return bng_root_resolver_route();
	struct in_addr a;
	int rc = bng_net_check_ifname(bridge);
	if (!rc && (!ip || inet_pton(AF_INET, ip, &a) != 1))
		rc = bng_err(BANGER_EINVAL, "resolver: not an IPv4 address: %s", ip ? ip : "(none)");
	if (!rc)
		rc = check_resolved();
	const char *dns[] = {"dns", bridge, ip, NULL};
	const char *domain[] = {"domain", bridge, "~vm", NULL};
	if (!rc)
		rc = resolvectl(dns);
	if (!rc)
		rc = resolvectl(domain);
	return rc;
}

int bng_net_resolver_revert(const char *bridge)
{
	if (bng_net_via_helper())
		return bng_root_resolver_revert();
	int rc = bng_net_check_ifname(bridge);
	if (!rc)
		rc = check_resolved();
	const char *revert[] = {"revert", bridge, NULL};
	if (!rc)
		rc = resolvectl(revert);
	return rc;
}

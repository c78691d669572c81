#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int bng_run(const char *const *argv, const char *stdout_path, const char *log_path, bng_line_cb cb, void *ud,
	    bng_op *op)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return bng_err_errno(BANGER_EIO, errno, "pipe");
	int out_fd = -1;
	if (stdout_path && (out_fd = open(stdout_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		int e = errno;
		close(pfd[0]);
		close(pfd[1]);
		return bng_err_errno(BANGER_EIO, e, "cannot create %s", stdout_path);
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(pfd[0]);
		close(pfd[1]);
		if (out_fd >= 0)
			close(out_fd);
		return bng_err_errno(BANGER_EIO, e, "fork");
	}
	if (pid == 0) {
		setpgid(0, 0); /* cancel kills the whole group */
		/* A helper dies with us: one left running after a kill -9 would
		 * write into the scratch directory the next start cleared. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int null = open("/dev/null", O_RDONLY);
		dup2(null, 0);
		dup2(out_fd >= 0 ? out_fd : pfd[1], 1);
		dup2(pfd[1], 2);
		execvp(argv[0], (char *const *)argv);
		dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	if (out_fd >= 0)
		close(out_fd);
	FILE *log = log_path ? fopen(log_path, "a") : NULL;
	char buf[8192], line[1024] = "", last[1024] = "";
	size_t used = 0;
	bool cancelled = false;
	for (;;) {
		if (!cancelled && bng_op_cancelled(op)) {
			cancelled = true;
			kill(-pid, SIGKILL);
		}
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		int r = poll(&p, 1, 100);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		ssize_t n = read(pfd[0], buf, sizeof(buf));
		if (n <= 0)
			break;
		if (log)
			fwrite(buf, 1, (size_t)n, log);
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n' || used == sizeof(line) - 1) {
				line[used] = '\0';
				if (used) {
					memcpy(last, line, used + 1);
					if (cb)
						cb(line, ud);
				}
				used = 0;
			} else {
				line[used++] = buf[i];
			}
		}
	}
	close(pfd[0]);
	if (log)
		fclose(log);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (cancelled)
		return bng_err(BANGER_ECANCELED, "%s: cancelled", argv[0]);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFSIGNALED(status))
		return bng_err(BANGER_EIO, "%s was killed by signal %d%s%s", argv[0], WTERMSIG(status), *last ? ": " : "",
			       last);
	return bng_err(BANGER_EIO, "%s failed with exit status %d%s%s", argv[0], WEXITSTATUS(status),
		       *last ? ": " : "", last);
}

/* What the forked children of bng_spawn_detached report over its pipe. */
typedef struct {
	int what; /* 1: the program's pid in value; 2: errno of a failed step in value */
	int value;
	int step; /* 0 setsid, 1 fork, 2 chdir, 3 exec */
} spawn_msg;

static void spawn_report(int fd, int what, int value, int step)
{
	spawn_msg m = {what, value, step};
	ssize_t w = write(fd, &m, sizeof(m));
	(void)w;
}

/* dup2 that also works when from == to (then dup2 would leave CLOEXEC set). */
static void dup_to(int from, int to)
{
	if (from == to)
		fcntl(to, F_SETFD, 0);
	else
		dup2(from, to);
}

int bng_spawn_detached(char *const argv[], int out_fd, int err_fd, const char *cwd, pid_t *out)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return bng_err_errno(BANGER_EIO, errno, "pipe");
	int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return bng_err_errno(BANGER_EIO, e, "cannot open /dev/null");
	}
	/* For kernels without close_range (before 5.11); sysconf is not safe after fork. */
	long open_max = sysconf(_SC_OPEN_MAX);
	int max_fd = open_max > 0 && open_max < 65536 ? (int)open_max : 65536;
	pid_t mid = fork();
	if (mid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		close(null_fd);
		return bng_err_errno(BANGER_EIO, e, "fork");
	}
	if (mid == 0) {
		if (setsid() < 0) {
			spawn_report(p[1], 2, errno, 0);
			_exit(1);
		}
		pid_t child = fork();
		if (child < 0) {
			spawn_report(p[1], 2, errno, 1);
			_exit(1);
		}
		if (child > 0) {
			spawn_report(p[1], 1, (int)child, 0);
			_exit(0);
		}
		/* default signal handling and an empty mask, whatever the caller
		 * had (an ignored SIGPIPE or SIGTERM survives exec) */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		struct sigaction dfl = {.sa_handler = SIG_DFL};
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				sigaction(sig, &dfl, NULL);
		dup_to(null_fd, 0);
		dup_to(out_fd, 1);
		dup_to(err_fd, 2);
		/* nothing else of the caller's leaks: sockets, locks, the database;
		 * the status pipe is already CLOEXEC */
		if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
			for (int fd = 3; fd < max_fd; fd++)
				fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (cwd && chdir(cwd) != 0) {
			spawn_report(p[1], 2, errno, 2);
			_exit(126);
		}
		execv(argv[0], argv);
		spawn_report(p[1], 2, errno, 3);
		_exit(127);
	}
	close(p[1]);
	close(null_fd);
	while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
		;
	/* EOF comes when the program's exec closed the pipe (or everyone died) */
	pid_t child = 0;
	int fail_errno = 0, fail_step = -1;
	spawn_msg m;
	for (;;) {
		ssize_t n = read(p[0], &m, sizeof(m));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(m))
			break;
		if (m.what == 1)
			child = (pid_t)m.value;
		else if (m.what == 2 && fail_step < 0) {
			fail_errno = m.value;
			fail_step = m.step;
		}
	}
	close(p[0]);
	static const char *const steps[] = {"setsid", "fork", "chdir", "exec"};
	if (fail_step >= 0)
		return bng_err_errno(fail_step == 3 ? bng_code_from_errno(fail_errno) : BANGER_EIO, fail_errno,
				     "cannot start %s (%s)", argv[0], steps[fail_step]);
	if (child <= 0)
		return bng_err(BANGER_EIO, "cannot start %s: the launcher process died", argv[0]);
	*out = child;
	return 0;
}

int bng_proc_stat(pid_t pid, char *state, unsigned long long *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = pid > 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0)
		return BANGER_ENOTFOUND;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return BANGER_ENOTFOUND;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields resume after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || !p[1] || !p[2])
		return BANGER_ENOTFOUND;
	p += 2;
	if (state)
		*state = *p;
	/* state is field 3, starttime field 22. */
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (start)
		*start = p ? strtoull(p, NULL, 10) : 0;
	return 0;
}

bool bng_proc_gone(pid_t pid, unsigned long long start)
{
	char state;
	unsigned long long now_start;
	if (bng_proc_stat(pid, &state, &now_start) != 0)
		return true;
	if (start && now_start != start)
		return true; /* the pid now belongs to another process */
	if (state == 'Z' || state == 'X') {
		/* If we happen to be its parent (a subreaper), reap it. */
		waitpid(pid, NULL, WNOHANG);
		return true;
	}
	return false;
}

bool bng_proc_wait_gone(pid_t pid, unsigned long long start, int timeout_ms)
{
	for (long long deadline = bng_now_ms() + timeout_ms;; usleep(10 * 1000)) {
		if (bng_proc_gone(pid, start))
			return true;
		if (bng_now_ms() >= deadline)
			return false;
	}
}

#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

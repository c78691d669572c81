/* Running helper programs (debootstrap, tar, qemu-img ...) as children:
 * output to a log file, lines reported as they come, cancellable. */
#ifndef BANGER_PROC_H
#define BANGER_PROC_H

#include "op.h"

/* Called for each line the child prints (stdout and stderr merged). */
typedef void (*bng_line_cb)(const char *line, void *ud);

/* Runs argv[0] (searched on PATH) with argv, stdin from stdin_path (NULL:
 * /dev/null), stdout to stdout_path (NULL: merged with stderr into the log).
 * Every output line is appended to log_path (may be NULL) and passed to cb.
 * Cancelling the op kills the child's process group. Returns 0 if it exits 0,
 * otherwise BANGER_EIO naming the program, its status and the last line. */
int bng_run(const char *const *argv, const char *stdout_path, const char *log_path, bng_line_cb cb, void *ud,
	    bng_op *op);

/* Starts argv[0] (a path) detached: a double fork, so the program is
 * nobody's child here (no zombie for an embedder; it outlives the daemon),
 * in its own session, with default signal dispositions and an empty mask,
 * stdin /dev/null, stdout and stderr on out_fd and err_fd, in cwd (NULL:
 * unchanged), and no other descriptor of the caller. *pid is set once the
 * exec succeeded; a failed step is reported by name. Only async-signal-safe
 * calls after fork: the caller may be multithreaded. */
int bng_spawn_detached(char *const argv[], int out_fd, int err_fd, const char *cwd, pid_t *pid);

#endif

/* Running helper programs (debootstrap, tar, qemu-img ...) as children:
 * output to a log file, lines reported as they come, cancellable. */
#ifndef BANGER_PROC_H
#define BANGER_PROC_H

#include "op.h"

#include <stdbool.h>
#include <sys/types.h>

/* Called for each line the child prints (stdout and stderr merged). */
typedef void (*bng_line_cb)(const char *line, void *ud);

/* Runs argv[0] (searched on PATH) with argv, stdin from stdin_path (NULL:
 * /dev/null), stdout to stdout_path (NULL: merged with stderr into the log).
 * Every output line is appended to log_path (may be NULL) and passed to cb.
 * Cancelling the op kills the child's process group; the child is killed
 * when the calling thread's process dies. Returns 0 if it exits 0,
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

/* A process we may not have forked: its state letter (R, S, Z ...) and
 * start time (clock ticks after boot, /proc/<pid>/stat field 22); either
 * out-param may be NULL. BANGER_ENOTFOUND when there is no such process. */
int bng_proc_stat(pid_t pid, char *state, unsigned long long *start);

/* Gone: no process, a zombie, or the pid reused by a process that started
 * at another time than start (0: any). */
bool bng_proc_gone(pid_t pid, unsigned long long start);

/* Polls every 10 ms until the process is gone; false if it outlived
 * timeout_ms. */
bool bng_proc_wait_gone(pid_t pid, unsigned long long start, int timeout_ms);

#endif

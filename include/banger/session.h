/* banger — durable sessions as typed objects (since 0.2).
 *
 *   banger_session_options *o;
 *   banger_session_options_new(&o);
 *   const char *argv[] = {"python3", "-m", "http.server"};
 *   banger_session_options_set_argv(o, 3, argv);
 *   banger_session *s;
 *   if (banger_session_start(&s, vm, "web", o) != 0) fprintf(stderr, "%s\n", banger_error_last());
 *   banger_session_options_free(o);
 *   ... banger_session_logs(s, on_output, NULL, BANGER_LOGS_FOLLOW, -1) ...
 *   banger_session_stop(s);
 *   banger_session_unref(s);
 *
 * The guest owns a session's process: it outlives the caller, bangerd and
 * every connection. Each call runs one vm.session.* method through the VM's
 * context (either transport); calls block the calling thread, except
 * banger_session_attach, which gives a banger_process (exec.h) to talk to. */
#ifndef BANGER_SESSION_PUBLIC_H
#define BANGER_SESSION_PUBLIC_H

#include "exec.h"
#include "vm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct banger_session banger_session;
typedef struct banger_session_options banger_session_options;

BANGER_API int banger_session_options_new(banger_session_options **out);
BANGER_API void banger_session_options_free(banger_session_options *o);
/* The command: argc strings, copied. Required. */
BANGER_API int banger_session_options_set_argv(banger_session_options *o, size_t argc, const char *const *argv);
BANGER_API int banger_session_options_set_cwd(banger_session_options *o, const char *dir);
/* One "NAME=VALUE" more in the command's environment. */
BANGER_API int banger_session_options_add_env(banger_session_options *o, const char *name_value);
/* A command that must be on the guest's PATH, checked before starting. */
BANGER_API int banger_session_options_add_require(banger_session_options *o, const char *command);
/* stdin: 0 /dev/null (default), 1 a pipe that banger_session_send writes. */
BANGER_API int banger_session_options_set_pipe_stdin(banger_session_options *o, int enabled);
/* A pty for the command (attach then drives a terminal). */
BANGER_API int banger_session_options_set_tty(banger_session_options *o, int enabled);

/* Starts the session `name` (1-64 of A-Z a-z 0-9 . _ -) in vm, after a
 * preflight of the cwd and the commands: BANGER_EINVAL saying which is
 * missing; BANGER_EEXIST while a session of that name runs. */
BANGER_API int banger_session_start(banger_session **out, banger_vm *vm, const char *name,
				    const banger_session_options *opts);
/* The session name in vm; BANGER_ENOTFOUND if there is none. */
BANGER_API int banger_session_lookup(banger_session **out, banger_vm *vm, const char *name);
/* vm's sessions: *out is an array of *count handles, freed with
 * banger_session_list_free. While the VM is not running: the last known
 * state (a session that was running then reads as exited). */
BANGER_API int banger_session_list(banger_session ***out, size_t *count, banger_vm *vm);
BANGER_API void banger_session_list_free(banger_session **sessions, size_t count);
BANGER_API banger_session *banger_session_ref(banger_session *s);
BANGER_API void banger_session_unref(banger_session *s);

/* ---- fields, as of the last call that returned the session ---- */
BANGER_API const char *banger_session_name(const banger_session *s);
/* "running" or "exited" */
BANGER_API const char *banger_session_state(const banger_session *s);
/* The command's pid in the guest while it runs, else 0. */
BANGER_API int32_t banger_session_pid(const banger_session *s);
/* Its exit status once it exited normally, else -1. */
BANGER_API int32_t banger_session_exit_code(const banger_session *s);
/* The signal that ended it ("TERM"), else NULL. */
BANGER_API const char *banger_session_signal(const banger_session *s);
/* Attaches to a running session: its live output goes to cb (as it comes,
 * on the process's thread); banger_process_write feeds its pty or pipe
 * stdin, banger_process_resize sizes a tty session (rows and cols here are
 * its first size; 0, 0 keeps it). One attacher at a time: a second gets
 * BANGER_EBUSY naming the holder. banger_process_free detaches and leaves
 * the session running; banger_process_wait waits for the session to end. */
BANGER_API int banger_session_attach(banger_process **out, banger_session *s, int32_t rows, int32_t cols,
				     banger_output_cb cb, void *userdata);
/* Every field as JSON text (argv, cwd, times, attached, error ...). */
BANGER_API const char *banger_session_json(const banger_session *s);
BANGER_API int banger_session_refresh(banger_session *s);

/* ---- verbs ---- */
/* Into a pipe session's stdin (text; atomic up to 4096 bytes). */
BANGER_API int banger_session_send(banger_session *s, const char *text);
/* TERM its process group, KILL after 10 s; the handle is refreshed. */
BANGER_API int banger_session_stop(banger_session *s);
/* A signal by name ("INT", "SIGHUP") or NULL for KILL. */
BANGER_API int banger_session_kill(banger_session *s, const char *signal);

#define BANGER_LOGS_FOLLOW 1 /* until the session ends */
#define BANGER_LOGS_STDOUT 2 /* only its stdout (default: both, in order) */
#define BANGER_LOGS_STDERR 4 /* only its stderr */
/* Its output (kept in the guest), to cb (stream 1) as it is read; tail_lines
 * >= 0 starts that many lines from the end. */
BANGER_API int banger_session_logs(banger_session *s, banger_output_cb cb, void *userdata, int flags,
				   int32_t tail_lines);

#ifdef __cplusplus
}
#endif
#endif

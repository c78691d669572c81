/* banger — a guest command as a process you talk to while it runs (since
 * 0.2): write its stdin, signal it, resize its pty, wait for its end.
 *
 *   banger_process *p;
 *   banger_exec_options_set_output_cb(o, on_output, NULL);  // called on p's thread
 *   banger_vm_spawn(&p, vm, o);
 *   banger_process_write(p, "hello\n", 6);
 *   banger_process_close_stdin(p);
 *   banger_exec_result *r;
 *   banger_process_wait(p, &r);
 *   banger_process_free(p);
 *
 * A process is one vm.exec call run on a thread of its own; the writes,
 * signals and sizes are that call's input (banger_call_send_input). Every
 * function but wait and free may be called from any thread. */
#ifndef BANGER_EXEC_PUBLIC_H
#define BANGER_EXEC_PUBLIC_H

#include "vm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct banger_process banger_process;

/* A pty for the command, rows x cols (0, 0: 24 x 80). */
BANGER_API int banger_exec_options_set_tty(banger_exec_options *o, int32_t rows, int32_t cols);

/* Starts opts' command in vm and returns at once. Its output goes to the
 * options' output callback (on the process's thread) or is kept for the
 * result. opts may be freed once this returns. */
BANGER_API int banger_vm_spawn(banger_process **out, banger_vm *vm, const banger_exec_options *opts);
/* Bytes for its stdin, queued in order; BANGER_ETOOBIG while 8 MiB are
 * still unread. */
BANGER_API int banger_process_write(banger_process *p, const void *data, size_t len);
BANGER_API int banger_process_close_stdin(banger_process *p);
BANGER_API int banger_process_signal(banger_process *p, int signo);
BANGER_API int banger_process_resize(banger_process *p, int32_t rows, int32_t cols);
/* Waits for its end: *out as banger_vm_exec gives it. Once only. */
BANGER_API int banger_process_wait(banger_process *p, banger_exec_result **out);
/* Cancels it if it still runs, waits for the thread, frees p. */
BANGER_API void banger_process_free(banger_process *p);

#ifdef __cplusplus
}
#endif
#endif

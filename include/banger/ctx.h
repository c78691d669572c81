/* banger — contexts and calls: one API over two transports.
 *
 * A context is opened from a URI:
 *   "local:"          in-process engine on the default state directory
 *   "local:/path"     in-process engine owning /path (exclusive lock)
 *   "unix:"           client of bangerd on the default socket, or on the
 *                     system service's when it runs as this user (below)
 *   "unix:/path.sock" client of bangerd on that socket
 *
 * "unix:" with no path: the caller's default socket (banger_default_socket)
 * when $BANGER_SOCKET or $BANGER_RUNTIME_DIR is set or a daemon answers
 * there; else /run/banger/bangerd.sock when it is a socket owned by the
 * caller's uid (the bangerd.service of `banger system install --user`,
 * which runs as this user), and autostart leaves that one to systemd; else
 * the default socket, where autostart starts a private bangerd.
 *
 * Every operation is a method of one dispatch table ("engine.status",
 * "config.show", ...) taking JSON params and producing a JSON result. A call
 * object carries the method, params, progress callback, cancellation flag
 * and, once finished, the result or the error. */
#ifndef BANGER_CTX_H
#define BANGER_CTX_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct banger_ctx banger_ctx;
typedef struct banger_opts banger_opts;
typedef struct banger_call banger_call;
struct uv_loop_s;

/* ---- options for banger_ctx_open ---- */
BANGER_API int banger_opts_new(banger_opts **out);
BANGER_API void banger_opts_free(banger_opts *opts);
/* unix: start bangerd when nothing answers on the socket, and replace a
 * daemon whose version stamp differs from this library's (default off). */
BANGER_API int banger_opts_set_autostart(banger_opts *opts, int enabled);
/* unix: the bangerd executable autostart runs (default: $BANGERD, then the
 * bangerd next to the running program, then the installed one). */
BANGER_API int banger_opts_set_daemon_path(banger_opts *opts, const char *path);
/* local: config file to read instead of the XDG default. */
BANGER_API int banger_opts_set_config_path(banger_opts *opts, const char *path);
/* local: run the background services a long-lived process owns (default
 * off): the vm. DNS zone (dns_listen) and the idle watcher
 * (auto_stop_stale_after). bangerd turns it on; a short-lived program must
 * not, or its exit would take them away from the daemon. Since 0.2. */
BANGER_API int banger_opts_set_services(banger_opts *opts, int enabled);

/* The caller's own socket, where its bangerd serves: $BANGER_SOCKET, else
 * <runtime dir>/bangerd.sock (free with banger_free). "unix:" means it
 * unless the system service runs as this user (see the top of this file). */
BANGER_API int banger_default_socket(char **out);

/* Stops the bangerd serving socket_path (SIGTERM to the socket's peer pid,
 * then waits up to 10 s, then SIGKILL). *pid_out (may be NULL) receives
 * the pid. BANGER_ECONNECT if nothing serves the socket. */
BANGER_API int banger_daemon_stop(const char *socket_path, int *pid_out);

/* Validates the state database of state_dir (NULL: the default) without
 * changing it or taking the engine's lock: applied migrations must be known
 * to this build and pending ones must apply cleanly. *report_json (free
 * with banger_free) lists them. */
BANGER_API int banger_check_migrations(const char *state_dir, char **report_json);

/* ---- contexts ---- */
BANGER_API int banger_ctx_open(banger_ctx **out, const char *uri, const banger_opts *opts);
BANGER_API banger_ctx *banger_ctx_ref(banger_ctx *ctx);
BANGER_API void banger_ctx_unref(banger_ctx *ctx);
/* "local" or "unix". */
BANGER_API const char *banger_ctx_transport(const banger_ctx *ctx);

/* ---- calls ---- */
/* Progress event: a JSON object such as {"stage":"tick","done":1,"total":3}. */
typedef void (*banger_event_cb)(const char *event_json, void *userdata);
/* Completion of banger_call_start: err is 0 or a negative code, and the
 * message (if any) is banger_call_error(call). */
typedef void (*banger_done_cb)(banger_call *call, int err, void *userdata);

/* params_json may be NULL (= "{}"). Fails with BANGER_EPROTO if it is not a
 * JSON object. */
BANGER_API int banger_call_new(banger_call **out, const char *method, const char *params_json);
BANGER_API banger_call *banger_call_ref(banger_call *call);
BANGER_API void banger_call_unref(banger_call *call);
BANGER_API int banger_call_set_event_cb(banger_call *call, banger_event_cb cb, void *userdata);
/* Requests cancellation; safe from any thread and from a signal handler. */
BANGER_API void banger_call_cancel(banger_call *call);
/* Sends a message (a JSON object) to the running call: what it means is
 * the method's (vm.exec with "stdin_stream": {"stdin":"<base64>"},
 * {"stdin_eof":true}, {"signal":N}, {"resize":[rows,cols]}). Safe from any
 * thread; messages are queued, in order, before or while the call runs.
 * BANGER_ETOOBIG while 8 MiB of earlier input is still unread. Since 0.2. */
BANGER_API int banger_call_send_input(banger_call *call, const char *message_json);
/* Result JSON once the call succeeded (NULL otherwise); owned by the call. */
BANGER_API const char *banger_call_result(const banger_call *call);
/* Error message once the call failed ("" otherwise); owned by the call. */
BANGER_API const char *banger_call_error(const banger_call *call);

/* Runs the call to completion on the calling thread. Events are delivered on
 * this thread before it returns. Returns 0 or a negative code; the message
 * is also available from banger_error_last(). */
BANGER_API int banger_call_run(banger_ctx *ctx, banger_call *call);

/* Starts the call on a worker thread and returns at once. Must be called on
 * the thread running `loop`; events and exactly one done_cb are delivered on
 * that loop's thread. If this returns an error, done_cb is never called. */
BANGER_API int banger_call_start(banger_ctx *ctx, banger_call *call, struct uv_loop_s *loop,
				 banger_done_cb done_cb, void *userdata);

/* Convenience: run method with params and hand back the result JSON (free
 * with banger_free). */
BANGER_API int banger_ctx_call(banger_ctx *ctx, const char *method, const char *params_json,
			       char **result_json);

#ifdef __cplusplus
}
#endif
#endif

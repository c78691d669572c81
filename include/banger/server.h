/* banger — serving a context's API on a Unix socket (what bangerd does).
 *
 * Protocol (docs/rpc.md): frames of a 4-byte big-endian length plus one JSON
 * object. Requests {"id", "method", "params"}; replies {"id", "event"}*,
 * then {"id", "result"} or {"id", "error": {"code", "message"}}; a client
 * cancels with {"id", "cancel": true}. Only the server's own uid and root
 * may connect. */
#ifndef BANGER_SERVER_H
#define BANGER_SERVER_H

#include "ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct banger_server banger_server;

enum banger_log_level { BANGER_LOG_DEBUG = 0, BANGER_LOG_INFO = 1, BANGER_LOG_WARN = 2, BANGER_LOG_ERROR = 3 };
typedef void (*banger_log_cb)(int level, const char *message, void *userdata);

/* Binds socket_path (mode 0600; a stale socket nobody answers on is
 * replaced, a live one is an error) and serves ctx on loop. Must be called
 * on the loop's thread. */
BANGER_API int banger_server_new(banger_server **out, banger_ctx *ctx, struct uv_loop_s *loop,
				 const char *socket_path);
BANGER_API int banger_server_set_log_cb(banger_server *srv, banger_log_cb cb, void *userdata);
/* Largest accepted request frame in bytes (default 4 MiB). */
BANGER_API int banger_server_set_max_frame(banger_server *srv, uint32_t bytes);
/* Stops accepting, removes the socket, cancels in-flight calls and closes
 * connections; the loop runs dry once those calls finish. The server is
 * freed then. Call once, on the loop's thread. */
BANGER_API void banger_server_shutdown(banger_server *srv);

#ifdef __cplusplus
}
#endif
#endif

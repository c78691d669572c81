/* The remote transport: one connection per call to bangerd's socket. */
#ifndef BANGER_CLIENT_H
#define BANGER_CLIENT_H

#include "../core/op.h"

/* Connects to socket_path (CLOEXEC); BANGER_ECONNECT if nobody answers.
 * peer_pid (may be NULL) receives the server's pid from SO_PEERCRED. */
int bng_client_connect(const char *socket_path, int *fd_out, pid_t *peer_pid);

/* Sends {"id":1,"method","params"} and reads events until the result or the
 * error. Events go to op->emit; op->cancel is polled and forwarded as a
 * cancel message. */
int bng_client_exec(const char *socket_path, const char *method, json_t *params, json_t **result, bng_op *op);

/* The socket a "unix:" context with no path talks to (the rule, in one
 * place; include/banger/ctx.h words it): the caller's default socket when
 * $BANGER_SOCKET or $BANGER_RUNTIME_DIR is set (a layout of its own, as
 * the tests' is) or a daemon answers there; else the system
 * service's /run/banger/bangerd.sock when it is a socket owned by our
 * euid (bangerd.service runs as this user: `system install --user`), with
 * *service set, since that daemon is systemd's to start, not autostart's;
 * else the default socket. BANGER_SYSTEM_ROOT prefixes the service's path
 * (a test hook, as for `banger system`). Malloc'd. */
char *bng_client_default_socket(bool *service);

/* Autostart: make sure a bangerd with our version stamp serves socket_path,
 * starting daemon_path (or replacing a stale daemon) as needed. */
int bng_client_ensure_daemon(const char *socket_path, const char *daemon_path);

/* Starts the bangerd at exe detached on socket_path, whatever its version,
 * and waits (10 s) until it answers or exits (its log's last line is the
 * error). For banger update, which checks the version itself. */
int bng_client_spawn_daemon(const char *exe, const char *socket_path);

#endif

/* A small client for QEMU's machine protocol (QMP): JSON lines over a Unix
 * socket. connect reads the greeting and negotiates capabilities; execute
 * sends one command and waits for its reply, skipping asynchronous events
 * and stale replies to earlier (timed-out) commands. Every wait is bounded.
 * QEMU serves one QMP client at a time, so keep connections short. */
#ifndef BANGER_QMP_H
#define BANGER_QMP_H

#include "../core/internal.h"

typedef struct bng_qmp bng_qmp;

/* Connects to the socket at path, reads the greeting and sends
 * qmp_capabilities, all within timeout_ms. BANGER_ECONNECT when nothing
 * listens there, BANGER_ETIMEDOUT when QEMU does not answer. */
int bng_qmp_connect(bng_qmp **out, const char *path, int timeout_ms);
/* The same over an already connected stream socket, which it takes over
 * (closed on failure too); what names the peer in errors. */
int bng_qmp_open_fd(bng_qmp **out, int fd, const char *what, int timeout_ms);
/* Runs command with args (borrowed; NULL for none). On success *ret (when
 * ret != NULL) gets the "return" value (new reference). An error reply gives
 * BANGER_EIO (BANGER_EUNSUPPORTED for an unknown command) with QEMU's
 * description; BANGER_ETIMEDOUT after timeout_ms. */
int bng_qmp_execute(bng_qmp *q, const char *command, json_t *args, int timeout_ms, json_t **ret);
/* Number of asynchronous events skipped so far (for tests and diagnostics). */
unsigned bng_qmp_events_skipped(const bng_qmp *q);
void bng_qmp_close(bng_qmp *q);

/* connect + execute + close, sharing one timeout. */
int bng_qmp_call(const char *path, const char *command, json_t *args, int timeout_ms, json_t **ret);

#endif

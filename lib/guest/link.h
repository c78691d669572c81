/* One connection to a VM's guest agent in frame mode (docs/agent-protocol.md),
 * shared by every caller in this process: JSON calls and many concurrent
 * exec streams multiplexed over it, each with its own flow-control window.
 * QEMU's virtio-serial socket takes one client at a time, so a process
 * that talks to a running VM does it through its one link. */
#ifndef BANGER_GUEST_LINK_H
#define BANGER_GUEST_LINK_H

#include "agent.h"

#include <stddef.h>
#include <sys/types.h>

typedef struct bng_agent_link bng_agent_link;

/* The process's link to the agent at path (vsock: through Firecracker's
 * UDS), connecting and switching to frame mode if there is none or the
 * last one broke. A new reference: bng_agent_link_unref it. */
int bng_agent_link_get(const char *path, bool vsock, int timeout_ms, bng_agent_link **out);
void bng_agent_link_unref(bng_agent_link *l);

/* Closes the link to path, if any (the VM is stopping): its streams and
 * calls fail with ECONNECT and the channel is free for another client. */
void bng_agent_link_forget(const char *path);

/* A line-mode op (health, ports, sync ...) over the link. */
int bng_agent_link_call(bng_agent_link *l, const char *op, int timeout_ms, const bng_agent_watch *w, json_t **reply);

/* One command's I/O. output gets each chunk as it arrives (fd 1 or 2) on
 * the calling thread; a nonzero return ends the exec (the command is
 * killed) with that code. stdin_data (may be NULL) is sent, then stdin is
 * closed. */
typedef struct bng_exec_io {
	int (*output)(void *ud, int fd, const char *data, size_t len);
	void *ud;
	const char *stdin_data;
	size_t stdin_len;
	/* Instead of stdin_data, when set: polled for the caller's messages
	 * ({"stdin":"<base64>"}, {"stdin_eof":true}, {"signal":N},
	 * {"resize":[rows,cols]}), NULL when there is none yet; a new
	 * reference. stdin_taken reports the bytes sent on so far. */
	json_t *(*input)(void *ud);
	void (*stdin_taken)(void *ud, size_t total);
	/* Or, when set: stdin pulled as it is needed (may block); 0 at its
	 * end, negative (an error code) to fail the exec. */
	ssize_t (*stdin_pull)(void *ud, char *buf, size_t cap);
	/* Called (may be NULL) when no output is waiting, before the exec
	 * waits for more, and once at its end: the moment to pass on output
	 * gathered into larger pieces. */
	void (*idle)(void *ud);
} bng_exec_io;

/* Runs spec ({"argv":[...],"env"?,"cwd"?,"user"?,"tty"?,...}) in the guest
 * and streams its output to io until it exits; *status gets {"exit_code":N}
 * or {"signal":N} and "pid". timeout_ms > 0 kills it after that long
 * (ETIMEDOUT); cancelling the watch's op kills it too (ECANCELED). EIO with
 * the agent's message when it could not start the command. */
int bng_agent_link_exec(bng_agent_link *l, json_t *spec, const bng_exec_io *io, int timeout_ms,
			const bng_agent_watch *w, json_t **status);

#endif

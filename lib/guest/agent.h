/* Host side of the guest agent protocol (guest/agent/agent.c): one JSON
 * request per line, {"id":N,"op":"health"}, one reply line per request with
 * the same id and "ok". The channel is a Unix socket: QEMU's chardev for the
 * virtio-serial port "banger.agent", or Firecracker's hybrid vsock socket
 * (CONNECT <port> / OK <hostport> handshake first). */
#ifndef BANGER_GUEST_AGENT_H
#define BANGER_GUEST_AGENT_H

#include "../core/internal.h"
#include "../core/op.h"

#include <stdint.h>

#define BNG_AGENT_VSOCK_PORT 1024
#define BNG_AGENT_SERIAL_NAME "banger.agent" /* virtio-serial port name */
#define BNG_AGENT_REPLY_MAX (16u << 20)      /* longest reply line we accept */

/* What a wait watches besides its deadline; both members may be NULL, and
 * so may the watch. */
typedef struct bng_agent_watch {
	bng_op *op;                /* cancellation: BANGER_ECANCELED */
	bool (*vm_gone)(void *ud); /* true once the VM's hypervisor exited: BANGER_EIO at once */
	void *ud;
} bng_agent_watch;

/* What ends a wait early besides its deadline: ECANCELED, or EIO once the
 * VM's hypervisor has exited (nothing will ever answer); else 0. */
int bng_agent_watch_check(const bng_agent_watch *w);

/* Connects to a Unix socket (QEMU's chardev for the agent's port), waiting
 * at most timeout_ms for a full backlog to drain. One attempt: ECONNECT if
 * nothing listens there. */
int bng_agent_connect_unix(const char *path, int timeout_ms, int *fd);

/* Connects through Firecracker's vsock Unix socket to guest port `port`:
 * sends "CONNECT <port>\n" and expects "OK <hostport>\n" within timeout_ms.
 * ECONNECT when the guest is not listening (Firecracker hangs up). */
int bng_agent_connect_vsock_uds(const char *uds_path, uint32_t port, int timeout_ms, int *fd);

/* One attempt at either channel: vsock through the Firecracker UDS at
 * path to port 1024, else the Unix socket at path. */
int bng_agent_connect(const char *path, bool vsock, int timeout_ms, int *fd);

/* Sends {"id","op"} on fd and waits up to timeout_ms for the reply with that
 * id, skipping stale replies to earlier, timed-out calls; the fd stays
 * usable after a timeout. The agent's {"event":"hello"} line (sent when it
 * opens its serial port) makes it send the request again: an agent that
 * restarted may never have read it. *reply gets the whole reply object (new
 * reference). ETIMEDOUT on timeout, ECONNECT if the agent hangs up, EIO with
 * the agent's message for an {"ok":false} reply, EPROTO for a bad reply. */
int bng_agent_call(int fd, const char *op, int timeout_ms, json_t **reply);
/* The same with more fields in the request (args, an object: borrowed),
 * e.g. set_clock's {"ms": ...}. */
int bng_agent_call_args(int fd, const char *op, json_t *args, int timeout_ms, json_t **reply);

/* Connects (vsock: through the Firecracker UDS at path_or_uds to port 1024;
 * else the Unix socket at path_or_uds) and asks for "health" until the agent
 * answers or timeout_ms pass; ends early as the watch says. *health gets the
 * health reply. ETIMEDOUT names the last failure. */
int bng_agent_wait_healthy(const char *path_or_uds, bool vsock, int timeout_ms, const bng_agent_watch *w,
			   json_t **health);

/* Waits until something listens on TCP port 22 in the guest, asking the
 * agent's "wait_sshd" (which answers the moment it does). Ends early as the
 * watch says; ETIMEDOUT after timeout_ms, naming the last failure. */
int bng_agent_wait_sshd(const char *path_or_uds, bool vsock, int timeout_ms, const bng_agent_watch *w);

#endif

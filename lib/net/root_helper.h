/* The root helper, bangerd-root (docs/privileges.md): both of its sides.
 *
 * Client: when this process is not root, net.h's privileged calls send one
 * request each over the helper's unix socket (bng_root_* below).
 *
 * Server: the helper's policy (the fixed allow-list of verbs and the
 * validation of every argument) as one pure-ish function over a request
 * line, so tests can drive it without a socket.
 *
 * Wire format: newline-delimited JSON, one request object per line and one
 * response line per request, at most BNG_ROOT_MAX_REQUEST bytes a line:
 *   {"verb":"tap.create","name":"bt1a2b-0","bridge":"br-banger"}
 *   {"ok":true}  or  {"ok":false,"error":"EPERM","message":"..."} */
#ifndef BANGER_NET_ROOT_HELPER_H
#define BANGER_NET_ROOT_HELPER_H

#include "../core/internal.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The helper's own runtime directory (bangerd-root@.service's
 * RuntimeDirectory=banger-root): not /run/banger, which systemd hands to
 * the user bangerd.service runs as. */
#define BNG_ROOT_SOCKET_DEFAULT "/run/banger-root/root.sock"
#define BNG_ROOT_MAX_REQUEST 4096
/* Most addresses one nat.sync names. */
#define BNG_ROOT_MAX_NAT_IPS 1024

/* ---- client (root_helper.c) ---- */

/* True when the privileged net calls must go through the helper: the
 * effective uid is not 0 and CAP_NET_ADMIN is not in the effective set. */
bool bng_net_via_helper(void);

/* The helper's socket: $BANGER_ROOT_SOCKET, else BNG_ROOT_SOCKET_DEFAULT. */
const char *bng_root_socket_path(void);

int bng_root_bridge_ensure(const char *name, const char *ip, int prefix_len);
int bng_root_tap_create(const char *name, const char *bridge);
int bng_root_tap_delete(const char *name, bool missing_ok);
int bng_root_nat_sync(const char *tag, const char *bridge, json_t *ips);
int bng_root_ip_forward_enable(void);
/* Route `.vm` through systemd-resolved on the helper's own bridge and
 * bridge_ip, and undo it: no arguments go over the wire. */
int bng_root_resolver_route(void);
int bng_root_resolver_revert(void);
/* Whether the helper serves this uid (doctor): changes nothing. */
int bng_root_ping(void);

/* ---- server policy ---- */

typedef struct {
	uid_t owner;         /* the one non-root uid served */
	char bridge[16];     /* the configured bridge_name */
	char bridge_ip[16];  /* bridge_ip */
	uint32_t net;        /* cidr: network (host order) and prefix */
	int prefix_len;
} bng_root_policy;

/* Fills a policy from config values; BANGER_ECONFIG/EINVAL on bad ones
 * (bridge_ip must lie inside cidr). */
int bng_root_policy_init(bng_root_policy *p, uid_t owner, const char *bridge, const char *bridge_ip,
			 const char *cidr);

/* Whether a peer's uid may talk to the helper at all: root or the owner. */
bool bng_root_peer_allowed(const bng_root_policy *p, uid_t uid);

/* banger's own tap names (lib/vm/tap_pool.c): "bt" + 1-4 lowercase hex
 * digits (the engine's tag) + "-" + 1-8 decimal digits. BANGER_EINVAL
 * otherwise, with the reason. */
int bng_root_check_tap_name(const char *name);
/* A NAT tag: 1-4 lowercase hex digits. */
int bng_root_check_tag(const char *tag);

/* Handles one request line from a peer of uid peer_uid (already allowed):
 * parses, checks the verb against the allow-list and every argument, then
 * does it. Returns the response object (never NULL). *summary gets a
 * one-line description for the log ("tap.create bt1a2b-0: ok", "refused:
 * ..."), which the caller frees. */
json_t *bng_root_handle(const bng_root_policy *p, uid_t peer_uid, const char *line, size_t len, char **summary);

#endif

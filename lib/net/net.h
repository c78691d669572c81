/* Host networking for guests: a bridge with the gateway address, one
 * persistent tap per VM enslaved to it, and the pure helpers that name taps
 * and pick addresses and MACs.
 *
 * Everything talks rtnetlink through libmnl (never `ip` or `brctl`), one
 * netlink socket per call, so every function is safe to call from any
 * thread; the one program run is resolvectl, for systemd-resolved's
 * routing of `.vm` (resolver.c). Functions return 0 or a negative BANGER_E* code and leave a
 * message in banger_error_last(); they never print. Creating or changing
 * devices needs root or CAP_NET_ADMIN (BANGER_EPERM otherwise).
 *
 * When the process is not root (euid != 0) and lacks CAP_NET_ADMIN, the
 * privileged calls
 * (bridge_ensure, tap_create, link_delete*, nat_sync, ip_forward_enable,
 * resolver_route, resolver_revert)
 * go to the root helper, bangerd-root, over its socket instead
 * (root_helper.h, docs/privileges.md): a tap it makes is owned by this
 * process's uid, and it deletes only taps of banger's naming that this uid
 * owns. As root nothing changes. */
#ifndef BANGER_NET_H
#define BANGER_NET_H

#include "../core/internal.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Linux interface names: at most 15 characters (IFNAMSIZ - 1). */
#define BNG_NET_IFNAME_MAX 15

/* Checks a network device name: 1-15 characters, none of '/', ':' or
 * whitespace, not "." or "..". BANGER_EINVAL otherwise. */
int bng_net_check_ifname(const char *name);

/* ---- devices (link.c) ---- */

/* Creates bridge `name` if it is missing, gives it ip/prefix_len (if ip is
 * not NULL) and brings it up. Idempotent: an existing bridge and an address
 * already present are fine; other addresses the bridge has are left alone.
 * Safe to race with another process or thread doing the same. A device of
 * that name that is not a bridge is BANGER_EEXIST. */
int bng_net_bridge_ensure(const char *name, const char *ip, int prefix_len);

/* Deletes bridge `name` (its ports are released, not deleted).
 * BANGER_ENOTFOUND if missing, BANGER_EINVAL if it is not a bridge. */
int bng_net_bridge_delete(const char *name);

/* Creates persistent tap `name` (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, as
 * Firecracker and QEMU's vhost-less virtio-net expect), owned by
 * owner/group so an unprivileged VMM can open it ((uid_t)-1 / (gid_t)-1:
 * leave unset), enslaved to `bridge` and up. The bridge must exist
 * (BANGER_ENOTFOUND); a device already named `name` is BANGER_EEXIST. On
 * failure nothing is left behind. */
int bng_net_tap_create(const char *name, const char *bridge, uid_t owner, gid_t group);

/* Deletes any network device. BANGER_ENOTFOUND if there is none. */
int bng_net_link_delete(const char *name);
/* Same, but a missing device is success (cleanup paths). */
int bng_net_link_delete_if_exists(const char *name);

/* Sets *exists to whether a network device called `name` exists. */
int bng_net_link_exists(const char *name, bool *exists);

/* *names = a new JSON array with the name of every device whose name starts
 * with prefix (NULL or "": all), in ifindex order. For finding taps leaked by
 * a crash. The caller owns *names; it is untouched on error. */
int bng_net_link_list(const char *prefix, json_t **names);

/* Whether a device called `name` exists (*found), is a tap (*is_tap) and
 * the uid that owns it (*owner; -1 for no owner or not a tap). Read-only:
 * needs no privilege. */
int bng_net_tap_info(const char *name, bool *found, bool *is_tap, int64_t *owner);

/* Brings device `name` up or down. */
int bng_net_link_set_up(const char *name, bool up);

/* ---- NAT (nat.c, nftables over nfnetlink) ---- */

/* Makes chain postrouting-<tag> of table "ip banger" masquerade exactly the
 * traffic from each IPv4 address in ips (a JSON array of strings) that
 * leaves through any device but bridge, in one atomic batch, and turns on
 * IPv4 forwarding. An empty array deletes the chain (and creates nothing
 * where there was none). One tag per engine. */
int bng_net_nat_sync(const char *tag, const char *bridge, json_t *ips);

/* Writes 1 to /proc/sys/net/ipv4/ip_forward (nat_sync does it too). */
int bng_net_ip_forward_enable(void);

/* ---- resolver routing (resolver.c) ---- */

/* Whether systemd-resolved runs (its socket
 * /run/systemd/resolve/io.systemd.Resolve exists). */
bool bng_net_resolved_running(void);

/* Routes the `vm` domain to ip's DNS listener on link bridge through
 * systemd-resolved: exactly `resolvectl dns <bridge> <ip>` and `resolvectl
 * domain <bridge> ~vm`, run by absolute path (/usr/bin, else /bin) with an
 * empty environment, each bounded to 10 s. BANGER_EUNSUPPORTED where
 * resolved does not run. Without privilege it is the root helper's
 * resolver.route, which routes the helper's own configured bridge and
 * bridge_ip (the arguments are not sent). */
int bng_net_resolver_route(const char *bridge, const char *ip);

/* Undoes it: `resolvectl revert <bridge>` (the helper's resolver.revert
 * without privilege). */
int bng_net_resolver_revert(const char *bridge);

/* ---- pure helpers (addr.c) ---- */

/* Parses "a.b.c.d/n" (n 0-32) into the network address in host byte order
 * and the prefix length. Host bits set ("10.0.0.1/24") are BANGER_EINVAL:
 * a pool is named by its network address. Outputs untouched on error. */
int bng_net_parse_cidr(const char *cidr, uint32_t *net, int *prefix);

/* Picks the lowest host address of cidr that is not the network address,
 * the broadcast address, gateway_ip (may be NULL) or any entry of used (a
 * JSON array of "a.b.c.d" strings; NULL means none; entries outside cidr are
 * ignored). Writes it dotted-quad to out. BANGER_EBUSY when the pool is
 * full, BANGER_EINVAL for a bad cidr, gateway or used entry. */
int bng_net_alloc_ip(const char *cidr, const char *gateway_ip, json_t *used, char out[16]);

/* A stable MAC for a VM id: "02:xx:xx:xx:xx:xx", locally administered and
 * unicast, the rest a hash of id. */
void bng_net_mac_from_id(const char *id, char out[18]);

#endif

/* Network devices over rtnetlink (libmnl): bridges, taps and link queries.
 *
 * Every public call opens its own NETLINK_ROUTE socket, sends requests with
 * NLM_F_ACK and its own sequence numbers, and reads until the kernel's ACK,
 * error or end of dump, so calls never share state and any thread may make
 * them. Extended ACKs are switched on so errors carry the kernel's reason. */
#include "net.h"
#include "nl.h"
#include "root_helper.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static struct ifinfomsg *put_ifinfo(struct nlmsghdr *nlh, int index)
{
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = index;
	return ifi;
}

/* ---- link queries ---- */

struct link_info {
	bool found;
	int index;
	unsigned int flags;  /* IFF_* */
	unsigned int master; /* ifindex of the bridge it is enslaved to, or 0 */
	char kind[32];       /* IFLA_INFO_KIND: "bridge", "tun", "" for hardware */
	bool tun_is_tap;     /* kind "tun": IFLA_TUN_TYPE is IFF_TAP */
	int64_t tun_owner;   /* kind "tun": IFLA_TUN_OWNER, -1 when unset or unknown */
	char name[IFNAMSIZ];
};

static void copy_attr_str(char *dst, size_t size, const struct nlattr *attr)
{
	size_t n = mnl_attr_get_payload_len(attr);
	const char *s = mnl_attr_get_payload(attr);
	n = strnlen(s, n);
	if (n >= size)
		n = size - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* Fills a link_info from an RTM_NEWLINK message; 0 or EPROTO. */
static int parse_link(const struct nlmsghdr *h, struct link_info *li)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(h);
	if (h->nlmsg_len < mnl_nlmsg_size(sizeof(*ifi)))
		return EPROTO;
	memset(li, 0, sizeof(*li));
	li->found = true;
	li->index = ifi->ifi_index;
	li->flags = ifi->ifi_flags;
	li->tun_owner = -1;
	const struct nlattr *attr;
	mnl_attr_for_each(attr, h, sizeof(*ifi)) {
		switch (mnl_attr_get_type(attr)) {
		case IFLA_IFNAME:
			copy_attr_str(li->name, sizeof(li->name), attr);
			break;
		case IFLA_MASTER:
			if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
				li->master = mnl_attr_get_u32(attr);
			break;
		case IFLA_LINKINFO: {
			const struct nlattr *sub;
			mnl_attr_for_each_nested(sub, attr) {
				if (mnl_attr_get_type(sub) == IFLA_INFO_KIND)
					copy_attr_str(li->kind, sizeof(li->kind), sub);
				if (mnl_attr_get_type(sub) != IFLA_INFO_DATA)
					continue;
				const struct nlattr *d;
				mnl_attr_for_each_nested(d, sub) {
					if (mnl_attr_get_type(d) == IFLA_TUN_TYPE &&
					    mnl_attr_validate(d, MNL_TYPE_U8) == 0)
						li->tun_is_tap = mnl_attr_get_u8(d) == IFF_TAP;
					if (mnl_attr_get_type(d) == IFLA_TUN_OWNER &&
					    mnl_attr_validate(d, MNL_TYPE_U32) == 0 &&
					    mnl_attr_get_u32(d) != (uint32_t)-1)
						li->tun_owner = mnl_attr_get_u32(d);
				}
			}
			break;
		}
		}
	}
	return 0;
}

static int link_info_cb(const struct nlmsghdr *h, void *data)
{
	return h->nlmsg_type == RTM_NEWLINK ? parse_link(h, data) : 0;
}

/* Looks a device up by name: 0 with li->found false when it is missing, or a
 * positive errno. */
static int get_link(struct nl *nl, const char *name, struct link_info *li)
{
	memset(li, 0, sizeof(*li));
	struct nlmsghdr *nlh = nl_request(nl, RTM_GETLINK, 0);
	put_ifinfo(nlh, 0);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	int e = nl_talk(nl, nlh, link_info_cb, li);
	if (e == ENODEV) {
		memset(li, 0, sizeof(*li));
		return 0;
	}
	return e;
}

/* RTM_SETLINK by name (index 0) or index: up/down, and a master when
 * master > 0. Returns 0 or a positive errno. */
static int set_link(struct nl *nl, const char *name, int index, bool up, unsigned int master)
{
	struct nlmsghdr *nlh = nl_request(nl, RTM_SETLINK, 0);
	struct ifinfomsg *ifi = put_ifinfo(nlh, index);
	ifi->ifi_change = IFF_UP;
	ifi->ifi_flags = up ? IFF_UP : 0;
	if (index <= 0)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	if (master > 0)
		mnl_attr_put_u32(nlh, IFLA_MASTER, master);
	return nl_talk(nl, nlh, NULL, NULL);
}

static int del_link(struct nl *nl, const char *name, int index)
{
	struct nlmsghdr *nlh = nl_request(nl, RTM_DELLINK, 0);
	put_ifinfo(nlh, index);
	if (index <= 0)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	return nl_talk(nl, nlh, NULL, NULL);
}

/* ---- bridges ---- */

static int add_ipv4(struct nl *nl, int index, struct in_addr addr, int prefix_len)
{
	struct nlmsghdr *nlh = nl_request(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)prefix_len;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (unsigned int)index;
	mnl_attr_put(nlh, IFA_LOCAL, sizeof(addr), &addr);
	mnl_attr_put(nlh, IFA_ADDRESS, sizeof(addr), &addr);
	if (prefix_len < 31) {
		/* What `ip addr add ... brd +` sets: guests' broadcasts (DHCP, ARP
		 * probes) then reach the host side. */
		uint32_t host_mask = prefix_len == 0 ? 0xffffffffu : (1u << (32 - prefix_len)) - 1;
		struct in_addr brd = {.s_addr = addr.s_addr | htonl(host_mask)};
		mnl_attr_put(nlh, IFA_BROADCAST, sizeof(brd), &brd);
	}
	return nl_talk(nl, nlh, NULL, NULL);
}

int bng_net_bridge_ensure(const char *name, const char *ip, int prefix_len)
{
	if (bng_net_via_helper())
		return bng_root_bridge_ensure(name, ip, prefix_len);

	int rc = bng_net_check_ifname(name);
	if (rc)
		return rc;
	struct in_addr addr;
	if (ip && inet_pton(AF_INET, ip, &addr) != 1)
		return bng_err(BANGER_EINVAL, "bridge address \"%s\" is not an IPv4 address", ip);
	if (ip && (prefix_len < 1 || prefix_len > 32))
		return bng_err(BANGER_EINVAL, "bridge prefix length %d is out of range: use 1 to 32", prefix_len);

	struct nl nl;
	if ((rc = nl_open(&nl, NETLINK_ROUTE)))
		return rc;

	/* Create exclusively and accept EEXIST, rather than look first: two
	 * processes racing here then both succeed. */
	struct nlmsghdr *nlh = nl_request(&nl, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	put_ifinfo(nlh, 0);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	struct nlattr *linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
	mnl_attr_nest_end(nlh, linkinfo);
	int e = nl_talk(&nl, nlh, NULL, NULL);
	if (e && e != EEXIST) {
		rc = net_fail(&nl, e, "creating bridge %s", name);
		goto out;
	}

	struct link_info li;
	if ((e = get_link(&nl, name, &li))) {
		rc = net_fail(&nl, e, "looking up bridge %s", name);
		goto out;
	}
	if (!li.found) {
		rc = bng_err(BANGER_ENOTFOUND, "bridge %s disappeared while being set up: was it deleted concurrently?",
			     name);
		goto out;
	}
	if (strcmp(li.kind, "bridge") != 0) {
		rc = bng_err(BANGER_EEXIST,
			     "network device %s already exists and is not a bridge (kind \"%s\"): choose another "
			     "bridge name or delete that device",
			     name, li.kind[0] ? li.kind : "none");
		goto out;
	}
	if (ip) {
		/* EEXIST: the same address and prefix are already there. Other
		 * addresses stay: someone else may rely on them. */
		e = add_ipv4(&nl, li.index, addr, prefix_len);
		if (e && e != EEXIST) {
			rc = net_fail(&nl, e, "adding address %s/%d to bridge %s", ip, prefix_len, name);
			goto out;
		}
	}
	if (!(li.flags & IFF_UP) && (e = set_link(&nl, name, li.index, true, 0))) {
		rc = net_fail(&nl, e, "bringing bridge %s up", name);
		goto out;
	}
	rc = 0;
out:
	nl_close(&nl);
	return rc;
}

int bng_net_bridge_delete(const char *name)
{
	int rc = bng_net_check_ifname(name);
	if (rc)
		return rc;
	struct nl nl;
	if ((rc = nl_open(&nl, NETLINK_ROUTE)))
		return rc;
	struct link_info li;
	int e = get_link(&nl, name, &li);
	if (e)
		rc = net_fail(&nl, e, "looking up bridge %s", name);
	else if (!li.found)
		rc = bng_err(BANGER_ENOTFOUND, "there is no bridge named %s", name);
	else if (strcmp(li.kind, "bridge") != 0)
		rc = bng_err(BANGER_EINVAL, "network device %s is not a bridge (kind \"%s\"): not deleting it", name,
			     li.kind[0] ? li.kind : "none");
	else if ((e = del_link(&nl, name, li.index)))
		rc = net_fail(&nl, e, "deleting bridge %s", name);
	nl_close(&nl);
	return rc;
}

/* ---- taps ---- */

/* Creates the persistent tap device; on error nothing is left (closing a
 * tun fd that was never made persistent destroys its device). */
static int make_persistent_tap(const char *name, uid_t owner, gid_t group)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT || e == ENODEV || e == ENXIO)
			return bng_err_errno(BANGER_EUNSUPPORTED, e,
					     "opening /dev/net/tun: the tun driver is not available: load it with "
					     "`modprobe tun` (and create the node with `mknod /dev/net/tun c 10 200` "
					     "if it is still missing)");
		return net_fail(NULL, e, "opening /dev/net/tun to create tap %s", name);
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name) + 1);
	/* IFF_TUN_EXCL: fail rather than attach to an existing device, which
	 * could be another VM's tap. */
	unsigned short flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_TUN_EXCL;
	/* ifr_flags is a short and IFF_TUN_EXCL its sign bit: copy the bits. */
	memcpy(&ifr.ifr_flags, &flags, sizeof(flags));
	int rc = 0;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		if (e == EBUSY)
			rc = bng_err(BANGER_EEXIST,
				     "creating tap %s: a network device of that name already exists (a leftover "
				     "of a crashed VM?): delete it first",
				     name);
		else
			rc = net_fail(NULL, e, "creating tap %s", name);
	} else if (owner != (uid_t)-1 && ioctl(fd, TUNSETOWNER, (unsigned long)owner) < 0) {
		rc = net_fail(NULL, errno, "setting the owner of tap %s to uid %lu", name, (unsigned long)owner);
	} else if (group != (gid_t)-1 && ioctl(fd, TUNSETGROUP, (unsigned long)group) < 0) {
		rc = net_fail(NULL, errno, "setting the group of tap %s to gid %lu", name, (unsigned long)group);
	} else if (ioctl(fd, TUNSETPERSIST, 1UL) < 0) {
		rc = net_fail(NULL, errno, "making tap %s persistent", name);
	}
	close(fd);
	return rc;
}

int bng_net_tap_create(const char *name, const char *bridge, uid_t owner, gid_t group)
{
	if (bng_net_via_helper())
		return bng_root_tap_create(name, bridge); /* owned by our uid */
	int rc = bng_net_check_ifname(name);
	if (rc || (rc = bng_net_check_ifname(bridge)))
		return rc;
	struct nl nl;
	if ((rc = nl_open(&nl, NETLINK_ROUTE)))
		return rc;

	/* Check the bridge before creating anything, so a bad bridge costs no
	 * cleanup. */
	struct link_info br;
	int e = get_link(&nl, bridge, &br);
	if (e) {
		rc = net_fail(&nl, e, "looking up bridge %s for tap %s", bridge, name);
		goto out;
	}
	if (!br.found) {
		rc = bng_err(BANGER_ENOTFOUND, "cannot attach tap %s: bridge %s does not exist: create it first",
			     name, bridge);
		goto out;
	}
	if (strcmp(br.kind, "bridge") != 0) {
		rc = bng_err(BANGER_EINVAL, "cannot attach tap %s to %s: it is not a bridge (kind \"%s\")", name,
			     bridge, br.kind[0] ? br.kind : "none");
		goto out;
	}

	if ((rc = make_persistent_tap(name, owner, group)))
		goto out;
	if ((e = set_link(&nl, name, 0, true, (unsigned int)br.index))) {
		rc = net_fail(&nl, e, "attaching tap %s to bridge %s and bringing it up", name, bridge);
		/* Persistent now: remove it, keeping the first error's message. */
		del_link(&nl, name, 0);
	}
out:
	nl_close(&nl);
	return rc;
}

/* ---- any link ---- */

static int link_delete(const char *name, bool missing_ok)
{
	if (bng_net_via_helper())
		return bng_root_tap_delete(name, missing_ok); /* the helper deletes only our taps */
	int rc = bng_net_check_ifname(name);
	if (rc)
		return rc;
	struct nl nl;
	if ((rc = nl_open(&nl, NETLINK_ROUTE)))
		return rc;
	int e = del_link(&nl, name, 0);
	if (e == ENODEV && missing_ok)
		rc = 0;
	else if (e == ENODEV)
		rc = bng_err(BANGER_ENOTFOUND, "there is no network device named %s", name);
	else if (e)
		rc = net_fail(&nl, e, "deleting network device %s", name);
	nl_close(&nl);
	return rc;
}

int bng_net_link_delete(const char *name)
{
	return link_delete(name, false);
}

int bng_net_link_delete_if_exists(const char *name)
{
	return link_delete(name, true);
}

int bng_net_link_exists(const char *name, bool *exists)
{
	int rc = bng_net_check_ifname(name);
	if (rc)
		return rc;
	struct nl nl;
	if ((rc = nl_open(&nl, NETLINK_ROUTE)))
		return rc;
	struct link_info li;
	int e = get_link(&nl, name, &li);
	if (e)
		rc = net_fail(&nl, e, "looking up network device %s", name);
	else
		*exists = li.found;
	nl_close(&nl);
	return rc;
}

struct list_ctx {
	const char *prefix;
	json_t *names;
};

static int list_cb(const struct nlmsghdr *h, void *data)
{
	struct list_ctx *lc = data;
	struct link_info li;
	if (h->nlmsg_type != RTM_NEWLINK)
		return 0;
	int e = parse_link(h, &li);
	if (e)
		return e;
	if (li.name[0] && bng_str_has_prefix(li.name, lc->prefix) &&
	    json_array_append_new(lc->names, json_string(li.name)) != 0)
		return ENOMEM;
	return 0;
}

int bng_net_link_list(const char *prefix, json_t **names)
{
	struct nl nl;
	int rc = nl_open(&nl, NETLINK_ROUTE);
	if (rc)
		return rc;
	struct list_ctx lc = {.prefix = prefix ? prefix : "", .names = NULL};
	int e = EAGAIN;
	/* A dump racing with device changes is flagged inconsistent; a few
	 * retries settle it. */
	for (int attempt = 0; attempt < 5 && e == EAGAIN; attempt++) {
		json_decref(lc.names);
		lc.names = json_array();
		if (!lc.names)
			abort(); /* as bng_xmalloc: allocation failure is fatal */
		struct nlmsghdr *nlh = nl_request(&nl, RTM_GETLINK, NLM_F_DUMP);
		put_ifinfo(nlh, 0);
		e = nl_talk(&nl, nlh, list_cb, &lc);
	}
	if (e) {
		json_decref(lc.names);
		rc = e == EAGAIN ? bng_err(BANGER_EBUSY, "listing network devices: they kept changing during "
							 "the listing: try again")
				 : net_fail(&nl, e, "listing network devices");
	} else {
		*names = lc.names;
	}
	nl_close(&nl);
	return rc;
}

int bng_net_link_set_up(const char *name, bool up)
{
	int rc = bng_net_check_ifname(name);
	if (rc)
		return rc;
	struct nl nl;
	if ((rc = nl_open(&nl, NETLINK_ROUTE)))
		return rc;
	int e = set_link(&nl, name, 0, up, 0);
	if (e == ENODEV)
		rc = bng_err(BANGER_ENOTFOUND, "there is no network device named %s", name);
	else if (e)
		rc = net_fail(&nl, e, "bringing network device %s %s", name, up ? "up" : "down");
	nl_close(&nl);
	return rc;
}

int bng_net_tap_info(const char *name, bool *found, bool *is_tap, int64_t *owner)
{
	int rc = bng_net_check_ifname(name);
	if (rc)
		return rc;
	struct nl nl;
	if ((rc = nl_open(&nl, NETLINK_ROUTE)))
		return rc;
	struct link_info li;
	int e = get_link(&nl, name, &li);
	if (e) {
		rc = net_fail(&nl, e, "looking up network device %s", name);
	} else {
		*found = li.found;
		*is_tap = li.found && !strcmp(li.kind, "tun") && li.tun_is_tap;
		*owner = li.found ? li.tun_owner : -1;
	}
	nl_close(&nl);
	return rc;
}

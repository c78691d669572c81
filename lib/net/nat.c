/* NAT for guests over nfnetlink (nftables, through libmnl: no `nft` or
 * `iptables` binary needed). Each engine owns one chain, postrouting-<tag>,
 * in the ip table "banger", and every sync rewrites it whole in one atomic
 * batch, so the kernel's rules always equal what the caller asked for. */
#include "net.h"
#include "nl.h"
#include "root_helper.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAT_TABLE "banger"
#define NAT_PRIORITY 100 /* srcnat */
#define REPLY_TIMEOUT_MS 5000

static struct nlmsghdr *nft_msg(struct mnl_nlmsg_batch *b, uint16_t type, uint16_t flags, uint8_t family,
				uint16_t res_id, uint32_t seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(mnl_nlmsg_batch_current(b));
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = seq;
	struct nfgenmsg *g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = family;
	g->version = NFNETLINK_V0;
	g->res_id = htons(res_id);
	return nlh;
}

static uint16_t nft_type(int msg) { return (uint16_t)((NFNL_SUBSYS_NFTABLES << 8) | msg); }

/* Opens one expression of a rule's list; close it with mnl_attr_nest_end. */
static struct nlattr *expr_begin(struct nlmsghdr *nlh, const char *name)
{
	struct nlattr *elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
	mnl_attr_put_strz(nlh, NFTA_EXPR_NAME, name);
	return elem;
}

static void put_cmp(struct nlmsghdr *nlh, enum nft_cmp_ops op, const void *value, size_t len)
{
	struct nlattr *elem = expr_begin(nlh, "cmp");
	struct nlattr *data = mnl_attr_nest_start(nlh, NFTA_EXPR_DATA);
	mnl_attr_put_u32(nlh, NFTA_CMP_SREG, htonl(NFT_REG_1));
	mnl_attr_put_u32(nlh, NFTA_CMP_OP, htonl(op));
	struct nlattr *v = mnl_attr_nest_start(nlh, NFTA_CMP_DATA);
	mnl_attr_put(nlh, NFTA_DATA_VALUE, len, value);
	mnl_attr_nest_end(nlh, v);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, elem);
}

/* ip saddr == addr, oifname != bridge: masquerade */
static void put_rule(struct nlmsghdr *nlh, const char *chain, struct in_addr addr, const char *bridge)
{
	mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, NAT_TABLE);
	mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, chain);
	struct nlattr *list = mnl_attr_nest_start(nlh, NFTA_RULE_EXPRESSIONS);
	struct nlattr *elem = expr_begin(nlh, "payload");
	struct nlattr *data = mnl_attr_nest_start(nlh, NFTA_EXPR_DATA);
	mnl_attr_put_u32(nlh, NFTA_PAYLOAD_DREG, htonl(NFT_REG_1));
	mnl_attr_put_u32(nlh, NFTA_PAYLOAD_BASE, htonl(NFT_PAYLOAD_NETWORK_HEADER));
	mnl_attr_put_u32(nlh, NFTA_PAYLOAD_OFFSET, htonl(12)); /* the IPv4 source address */
	mnl_attr_put_u32(nlh, NFTA_PAYLOAD_LEN, htonl(4));
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, elem);
	put_cmp(nlh, NFT_CMP_EQ, &addr, sizeof(addr));
	elem = expr_begin(nlh, "meta");
	data = mnl_attr_nest_start(nlh, NFTA_EXPR_DATA);
	mnl_attr_put_u32(nlh, NFTA_META_KEY, htonl(NFT_META_OIFNAME));
	mnl_attr_put_u32(nlh, NFTA_META_DREG, htonl(NFT_REG_1));
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, elem);
	char name[IFNAMSIZ] = {0}; /* interface names compare as the whole 16 bytes */
	memcpy(name, bridge, strnlen(bridge, IFNAMSIZ - 1));
	put_cmp(nlh, NFT_CMP_NEQ, name, sizeof(name));
	mnl_attr_nest_end(nlh, expr_begin(nlh, "masq"));
	mnl_attr_nest_end(nlh, list);
}

/* Reads the answers to `acks` acknowledged messages; 0 or the first
 * error's positive errno (the kernel then rolls the whole batch back). */
static int read_acks(struct nl *nl, uint32_t first_seq, int acks)
{
	while (acks > 0) {
		struct pollfd pfd = {.fd = mnl_socket_get_fd(nl->sock), .events = POLLIN};
		int n = poll(&pfd, 1, REPLY_TIMEOUT_MS);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? ETIMEDOUT : errno;
		ssize_t len = mnl_socket_recvfrom(nl->sock, nl->buf, NL_BUF_SIZE);
		if (len < 0)
			return errno;
		int left = (int)len;
		for (const struct nlmsghdr *h = (const struct nlmsghdr *)nl->buf; mnl_nlmsg_ok(h, left);
		     h = mnl_nlmsg_next(h, &left)) {
			if (h->nlmsg_seq < first_seq || h->nlmsg_type != NLMSG_ERROR)
				continue;
			int e = nl_error(nl, h);
			if (e)
				return e;
			acks--;
		}
	}
	return 0;
}

int bng_net_ip_forward_enable(void)
{
	if (bng_net_via_helper())
		return bng_root_ip_forward_enable();
	int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "1\n", 2) != 2) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return bng_err_errno(e == EACCES || e == EROFS ? BANGER_EPERM : BANGER_EIO, e,
				     "turning on IPv4 forwarding (/proc/sys/net/ipv4/ip_forward) for NAT");
	}
	close(fd);
	return 0;
}

int bng_net_nat_sync(const char *tag, const char *bridge, json_t *ips)
{
	if (bng_net_via_helper())
		return bng_root_nat_sync(tag, bridge, ips); /* forwarding too */
	char chain[64];
	snprintf(chain, sizeof(chain), "postrouting-%s", tag);
	size_t count = json_array_size(ips);
	struct in_addr *addrs = bng_xcalloc(count ? count : 1, sizeof(*addrs));
	int rc = bng_net_check_ifname(bridge);
	for (size_t i = 0; !rc && i < count; i++)
		if (!json_is_string(json_array_get(ips, i)) ||
		    inet_pton(AF_INET, json_string_value(json_array_get(ips, i)), &addrs[i]) != 1)
			rc = bng_err(BANGER_EINVAL, "NAT: not an IPv4 address: %s",
				     json_is_string(json_array_get(ips, i)) ? json_string_value(json_array_get(ips, i))
									   : "(not a string)");
	if (rc) {
		free(addrs);
		return rc;
	}
	struct nl nl;
	if ((rc = nl_open(&nl, NETLINK_NETFILTER))) {
		free(addrs);
		return rc;
	}
	size_t size = 4096 + count * 512; /* a rule is about 200 bytes */
	char *buf = bng_xcalloc(1, size);
	struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(buf, size);
	uint32_t seq = ++nl.seq, first = seq;
	int acks = 0;
	nft_msg(b, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, seq++);
	mnl_nlmsg_batch_next(b);
	if (count == 0) {
		/* nothing to masquerade: the chain goes (and nothing is created
		 * where there never was NAT) */
		struct nlmsghdr *nlh = nft_msg(b, nft_type(NFT_MSG_DELCHAIN), NLM_F_ACK, NFPROTO_IPV4, 0, seq++);
		mnl_attr_put_strz(nlh, NFTA_CHAIN_TABLE, NAT_TABLE);
		mnl_attr_put_strz(nlh, NFTA_CHAIN_NAME, chain);
		mnl_nlmsg_batch_next(b);
		acks++;
	} else {
		struct nlmsghdr *nlh =
			nft_msg(b, nft_type(NFT_MSG_NEWTABLE), NLM_F_CREATE | NLM_F_ACK, NFPROTO_IPV4, 0, seq++);
		mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, NAT_TABLE);
		mnl_nlmsg_batch_next(b);
		nlh = nft_msg(b, nft_type(NFT_MSG_NEWCHAIN), NLM_F_CREATE | NLM_F_ACK, NFPROTO_IPV4, 0, seq++);
		mnl_attr_put_strz(nlh, NFTA_CHAIN_TABLE, NAT_TABLE);
		mnl_attr_put_strz(nlh, NFTA_CHAIN_NAME, chain);
		struct nlattr *hook = mnl_attr_nest_start(nlh, NFTA_CHAIN_HOOK);
		mnl_attr_put_u32(nlh, NFTA_HOOK_HOOKNUM, htonl(NF_INET_POST_ROUTING));
		mnl_attr_put_u32(nlh, NFTA_HOOK_PRIORITY, htonl(NAT_PRIORITY));
		mnl_attr_nest_end(nlh, hook);
		mnl_attr_put_strz(nlh, NFTA_CHAIN_TYPE, "nat");
		mnl_nlmsg_batch_next(b);
		nlh = nft_msg(b, nft_type(NFT_MSG_DELRULE), NLM_F_ACK, NFPROTO_IPV4, 0, seq++); /* flush the chain */
		mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, NAT_TABLE);
		mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, chain);
		mnl_nlmsg_batch_next(b);
		acks += 3;
		for (size_t i = 0; i < count; i++) {
			nlh = nft_msg(b, nft_type(NFT_MSG_NEWRULE), NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK, NFPROTO_IPV4,
				      0, seq++);
			put_rule(nlh, chain, addrs[i], bridge);
			mnl_nlmsg_batch_next(b);
			acks++;
		}
	}
	nft_msg(b, NFNL_MSG_BATCH_END, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, seq++);
	mnl_nlmsg_batch_next(b);
	nl.ext[0] = '\0';
	if (mnl_socket_sendto(nl.sock, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b)) < 0)
		rc = net_fail(&nl, errno, "NAT: sending the nftables batch");
	else if ((rc = read_acks(&nl, first, acks)) != 0)
		rc = count == 0 && rc == ENOENT ? 0 /* there was no chain */
						: net_fail(&nl, rc, "NAT: writing chain %s of table ip %s", chain,
							   NAT_TABLE);
	mnl_nlmsg_batch_stop(b);
	free(buf);
	nl_close(&nl);
	free(addrs);
	if (!rc && count)
		rc = bng_net_ip_forward_enable();
	return rc;
}

/* The netlink exchange shared by lib/net's modules (rtnetlink for devices,
 * nfnetlink for NAT): one socket per call, requests with NLM_F_ACK and
 * their own sequence numbers, extended ACKs on so errors carry the
 * kernel's reason. Internal to lib/net. */
#ifndef BANGER_NET_NL_H
#define BANGER_NET_NL_H

#include "../core/internal.h"

#include <libmnl/libmnl.h>
#include <stdbool.h>

/* Large enough that the kernel never truncates a dump message (it sizes dump
 * batches from the reader's buffer, up to 32 KiB). */
#define NL_BUF_SIZE 32768
/* Our largest request is a few hundred bytes. */
#define NL_REQ_MAX 1024

struct nl {
	struct mnl_socket *sock;
	unsigned int portid;
	unsigned int seq;
	char *buf;     /* requests are built here; replies are read here */
	char ext[256]; /* the kernel's extended-ACK text for the last error */
};

/* Called for every data message answering the current request; returns 0
 * or an errno value that ends the exchange. */
typedef int (*nl_data_cb)(const struct nlmsghdr *h, void *data);

/* Opens and binds a socket on bus (NETLINK_ROUTE, NETLINK_NETFILTER). */
int nl_open(struct nl *nl, int bus);
void nl_close(struct nl *nl);
/* Starts a request in nl->buf: NLM_F_REQUEST | NLM_F_ACK | flags, next seq. */
struct nlmsghdr *nl_request(struct nl *nl, uint16_t type, uint16_t flags);
/* An NLMSG_ERROR message: 0 for an ACK, else the positive errno, with the
 * extended-ACK text kept in nl->ext. */
int nl_error(struct nl *nl, const struct nlmsghdr *h);
/* Sends nlh and reads replies until its ACK, error or (for dumps) end.
 * Returns 0 or a positive errno; EAGAIN: a dump was interrupted by a
 * concurrent change, retry it. */
int nl_talk(struct nl *nl, struct nlmsghdr *nlh, nl_data_cb cb, void *data);
/* Reports errno e from the kernel for the operation fmt describes, with
 * the kernel's extended-ACK text when there is one; returns the code. */
int net_fail(const struct nl *nl, int e, const char *fmt, ...) BNG_PRINTF(3, 4);

#endif

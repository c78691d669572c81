/* The netlink exchange (see nl.h). */
#include "nl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* ---- errors ---- */

/* Reports errno e from the kernel for the operation described by fmt, with
 * the kernel's extended-ACK text when there is one. */
int net_fail(const struct nl *nl, int e, const char *fmt, ...)
{
	char what[256], ext[300] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (nl && nl->ext[0])
		snprintf(ext, sizeof(ext), " (kernel: %s)", nl->ext);
	switch (e) {
	case EPERM:
	case EACCES:
		return bng_err(BANGER_EPERM,
			       "%s: %s%s: changing the host network needs root or CAP_NET_ADMIN: run bangerd as "
			       "root or grant it CAP_NET_ADMIN",
			       what, strerror(e), ext);
	case ENODEV:
		return bng_err(BANGER_ENOTFOUND, "%s: %s%s", what, strerror(e), ext);
	case EPROTO:
		return bng_err(BANGER_EPROTO, "%s: malformed netlink reply from the kernel", what);
	default:
		return bng_err(bng_code_from_errno(e), "%s: %s%s", what, strerror(e), ext);
	}
}

/* ---- the netlink exchange ---- */

int nl_open(struct nl *nl, int bus)
{
	memset(nl, 0, sizeof(*nl));
	nl->sock = mnl_socket_open(bus);
	if (!nl->sock)
		return bng_err_errno(BANGER_EIO, errno, "opening a netlink socket");
	/* Best effort: without them errors just lose the kernel's explanation.
	 * CAP_ACK stops the kernel echoing our request inside each error. */
	int one = 1;
	mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;
		mnl_socket_close(nl->sock);
		nl->sock = NULL;
		return bng_err_errno(BANGER_EIO, e, "binding a netlink socket");
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (unsigned int)time(NULL);
	nl->buf = bng_xmalloc(NL_BUF_SIZE);
	return 0;
}

void nl_close(struct nl *nl)
{
	if (nl->sock)
		mnl_socket_close(nl->sock);
	free(nl->buf);
	nl->sock = NULL;
	nl->buf = NULL;
}

/* Starts a request in nl->buf: NLM_F_REQUEST | NLM_F_ACK | flags, next seq. */
struct nlmsghdr *nl_request(struct nl *nl, uint16_t type, uint16_t flags)
{
	/* libmnl leaves attribute padding unwritten: zero it rather than send
	 * stale bytes of an earlier reply. Requests are far smaller than this. */
	memset(nl->buf, 0, NL_REQ_MAX);
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++nl->seq;
	return nlh;
}

static int ext_ack_cb(const struct nlattr *attr, void *data)
{
	struct nl *nl = data;
	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
		snprintf(nl->ext, sizeof(nl->ext), "%s", mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

/* An NLMSG_ERROR message: 0 for an ACK, else the positive errno, with the
 * extended-ACK text kept in nl->ext. */
int nl_error(struct nl *nl, const struct nlmsghdr *h)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
	if (h->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
		return EPROTO;
	if (e->error == 0)
		return 0;
	if (h->nlmsg_flags & NLM_F_ACK_TLVS) {
		/* The attributes follow the echoed request, which is only its header
		 * when NETLINK_CAP_ACK took effect. */
		size_t off = sizeof(*e);
		if (!(h->nlmsg_flags & NLM_F_CAPPED) && e->msg.nlmsg_len >= sizeof(struct nlmsghdr))
			off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
		if (off <= mnl_nlmsg_get_payload_len(h))
			mnl_attr_parse(h, (unsigned int)off, ext_ack_cb, nl);
	}
	return e->error < 0 ? -e->error : EPROTO;
}

/* Sends nlh and reads replies until its ACK, error or (for dumps) end.
 * Returns 0 or a positive errno; EAGAIN means a dump was interrupted by a
 * concurrent change and should be retried. */
int nl_talk(struct nl *nl, struct nlmsghdr *nlh, nl_data_cb cb, void *data)
{
	unsigned int seq = nlh->nlmsg_seq;
	bool interrupted = false;
	nl->ext[0] = '\0';
	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
		return errno;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl->sock, nl->buf, NL_BUF_SIZE);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		int len = (int)n;
		for (const struct nlmsghdr *h = (const struct nlmsghdr *)nl->buf; mnl_nlmsg_ok(h, len);
		     h = mnl_nlmsg_next(h, &len)) {
			/* Leftovers of an earlier request abandoned mid-dump. */
			if (h->nlmsg_seq != seq || (h->nlmsg_pid && h->nlmsg_pid != nl->portid))
				continue;
			if (h->nlmsg_flags & NLM_F_DUMP_INTR)
				interrupted = true;
			switch (h->nlmsg_type) {
			case NLMSG_ERROR:
				return nl_error(nl, h);
			case NLMSG_DONE: {
				/* A dump ends here: the kernel sends no ACK after it. */
				int err = 0;
				if (mnl_nlmsg_get_payload_len(h) >= sizeof(int))
					memcpy(&err, mnl_nlmsg_get_payload(h), sizeof(int));
				if (err < 0)
					return -err;
				return interrupted ? EAGAIN : 0;
			}
			case NLMSG_NOOP:
			case NLMSG_OVERRUN:
				continue;
			default:
				if (cb) {
					int e = cb(h, data);
					if (e)
						return e;
				}
			}
		}
	}
}


/* One DNS query in, one response out, for the zone `vm.` (RFC 1035, EDNS0
 * from RFC 6891). Every length comes from the packet, so every read is
 * checked against qlen and every write against the reply's limit. A query
 * names no earlier data, so compression pointers in it are refused outright:
 * no pointer is ever followed, and pointer loops cannot exist. */
#include "dns.h"

#include <string.h>

#define T_A 1
#define T_NS 2
#define T_SOA 6
#define T_OPT 41
#define T_IXFR 251
#define T_AXFR 252
#define T_ANY 255
#define C_IN 1
#define C_ANY 255
#define HDR 12
#define MAX_LABELS 128 /* a 255-byte name holds at most 127 labels */

typedef struct {
	uint8_t *p;
	size_t len, cap;
	bool over;
} wbuf;

static void put(wbuf *w, const void *d, size_t n)
{
	if (w->over || n > w->cap - w->len) {
		w->over = true;
		return;
	}
	memcpy(w->p + w->len, d, n);
	w->len += n;
}

static void put16(wbuf *w, unsigned v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	put(w, b, 2);
}

static void put32(wbuf *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	put(w, b, 4);
}

static unsigned get16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }

typedef struct {
	size_t start, end; /* q[start..end): the name's wire form */
	int nlabels;
	size_t label[MAX_LABELS]; /* offset of each label's length byte */
} qname;

/* An uncompressed name at q[*off]; -1 when it is malformed. */
static int parse_name(const uint8_t *q, size_t qlen, size_t *off, qname *n)
{
	size_t o = *off, total = 0;
	n->start = o;
	n->nlabels = 0;
	for (;;) {
		if (o >= qlen)
			return -1;
		uint8_t l = q[o];
		if (l & 0xc0) /* a pointer (0xc0) or an obsolete label type */
			return -1;
		total += 1u + l;
		if (total > 255)
			return -1;
		if (l == 0)
			break;
		if (l > qlen - o - 1)
			return -1;
		n->label[n->nlabels++] = o;
		o += 1u + l;
	}
	*off = n->end = o + 1;
	return 0;
}

static bool label_is(const uint8_t *l, const char *s)
{
	size_t n = strlen(s);
	if (l[0] != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = l[1 + i];
		if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != (uint8_t)s[i])
			return false;
	}
	return true;
}

/* The header of a response to q with no records (FORMERR, NOTIMP, TC). */
static size_t bare(const uint8_t *q, uint8_t *out, size_t cap, unsigned rcode)
{
	if (cap < HDR)
		return 0;
	memset(out, 0, HDR);
	out[0] = q[0];
	out[1] = q[1];
	out[2] = (uint8_t)(0x80 | (q[2] & 0x79)); /* QR, the opcode and RD echoed */
	out[3] = (uint8_t)rcode;
	return HDR;
}

typedef struct {
	const uint8_t *q;
	qname name;
	unsigned qtype, qclass;
	size_t zone_off; /* where "vm." lies in the response (for pointers) */
	bool edns;
	unsigned edns_version;
} query;

static void put_soa(wbuf *w, const query *x)
{
	put16(w, 0xc000 | (unsigned)x->zone_off);
	put16(w, T_SOA);
	put16(w, C_IN);
	put32(w, BNG_DNS_TTL);
	put16(w, 2 + 11 + 2 + 20);
	put16(w, 0xc000 | (unsigned)x->zone_off); /* mname: vm. */
	put(w, "\x0ahostmaster", 11);               /* rname: hostmaster.vm. */
	put16(w, 0xc000 | (unsigned)x->zone_off);
	put32(w, 1);           /* serial: nothing transfers this zone */
	put32(w, 3600);        /* refresh */
	put32(w, 600);         /* retry */
	put32(w, 86400);       /* expire */
	put32(w, BNG_DNS_TTL); /* negative answers expire as fast as records */
}

static void put_ns(wbuf *w, const query *x)
{
	put16(w, 0xc000 | (unsigned)x->zone_off);
	put16(w, T_NS);
	put16(w, C_IN);
	put32(w, BNG_DNS_TTL);
	put16(w, 2);
	put16(w, 0xc000 | (unsigned)x->zone_off);
}

static void put_a(wbuf *w, uint32_t ip)
{
	put16(w, 0xc000 | HDR); /* the question's name */
	put16(w, T_A);
	put16(w, C_IN);
	put32(w, BNG_DNS_TTL);
	put16(w, 4);
	put(w, &ip, 4);
}

static void put_opt(wbuf *w, const query *x)
{
	put(w, "", 1);
	put16(w, T_OPT);
	put16(w, BNG_DNS_UDP_EDNS);
	put32(w, x->edns_version ? 1u << 24 : 0); /* BADVERS: extended rcode 16 = 1 << 4 */
	put16(w, 0);
}

/* Fills w with the whole response; w->over when it does not fit. */
static void respond(wbuf *w, query *x, bng_dns_lookup_fn lookup, void *ud)
{
	const uint8_t *q = x->q;
	unsigned rcode = BNG_DNS_NOERROR, an, ns;
	bool aa = true, ns_soa = false, ans_soa = false, ans_ns = false, ans_a = false;
	uint32_t ip = 0;
	int n = x->name.nlabels;
	x->zone_off = n ? HDR + (x->name.label[n - 1] - x->name.start) : 0;

	if (x->edns && x->edns_version) {
		aa = false; /* BADVERS: no answer, just the OPT saying so */
	} else if (n == 0 || !label_is(q + x->name.label[n - 1], "vm") || (x->qclass != C_IN && x->qclass != C_ANY) ||
		   x->qtype == T_AXFR || x->qtype == T_IXFR) {
		rcode = BNG_DNS_REFUSED; /* not ours: a stub resolver asks its next server */
		aa = false;
	} else if (n == 1) { /* the apex */
		ans_soa = x->qtype == T_SOA || x->qtype == T_ANY;
		ans_ns = x->qtype == T_NS || x->qtype == T_ANY;
		ns_soa = !ans_soa && !ans_ns;
	} else {
		int found = 0;
		const uint8_t *l = q + x->name.label[0];
		char label[64];
		bool plain = n == 2;
		for (unsigned i = 0; plain && i < l[0]; i++) {
			uint8_t c = l[1 + i];
			if (c >= 'A' && c <= 'Z')
				c = (uint8_t)(c + 32);
			plain = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
			label[i] = (char)c;
		}
		if (plain) { /* anything else cannot be a VM name */
			label[l[0]] = '\0';
			found = lookup(label, &ip, ud);
		}
		if (found < 0) {
			rcode = BNG_DNS_SERVFAIL;
			aa = false;
		} else if (found == 0) {
			rcode = BNG_DNS_NXDOMAIN;
			ns_soa = true;
		} else if (x->qtype == T_A || x->qtype == T_ANY) {
			ans_a = true;
		} else {
			ns_soa = true; /* NODATA: the name exists, not with this type */
		}
	}
	an = ans_a + ans_soa + ans_ns;
	ns = ns_soa;
	put16(w, get16(q));
	put16(w, 0x8000 | (get16(q + 2) & 0x7900) | (aa ? 0x0400 : 0) | (rcode & 0xf));
	put16(w, 1);
	put16(w, an);
	put16(w, ns);
	put16(w, x->edns);
	put(w, q + x->name.start, x->name.end - x->name.start + 4);
	if (ans_a)
		put_a(w, ip);
	if (ans_soa)
		put_soa(w, x);
	if (ans_ns)
		put_ns(w, x);
	if (ns_soa)
		put_soa(w, x);
	if (x->edns)
		put_opt(w, x);
}

size_t bng_dns_answer(const uint8_t *q, size_t qlen, uint8_t *out, size_t outsize, bool tcp,
		      bng_dns_lookup_fn lookup, void *ud)
{
	if (!q || qlen < HDR || (q[2] & 0x80)) /* never answer a response: no loops between servers */
		return 0;
	if ((q[2] >> 3 & 0xf) != 0)
		return bare(q, out, outsize, BNG_DNS_NOTIMP);
	if (get16(q + 4) != 1 || get16(q + 6) != 0 || get16(q + 8) != 0)
		return bare(q, out, outsize, BNG_DNS_FORMERR);
	query x = {.q = q};
	size_t off = HDR;
	if (parse_name(q, qlen, &off, &x.name) != 0 || qlen - off < 4)
		return bare(q, out, outsize, BNG_DNS_FORMERR);
	x.qtype = get16(q + off);
	x.qclass = get16(q + off + 2);
	off += 4;
	unsigned edns_size = 0;
	for (unsigned i = 0, ar = get16(q + 10); i < ar; i++) {
		qname rn;
		if (parse_name(q, qlen, &off, &rn) != 0 || qlen - off < 10)
			return bare(q, out, outsize, BNG_DNS_FORMERR);
		unsigned type = get16(q + off), rdlen = get16(q + off + 8);
		if (rdlen > qlen - off - 10)
			return bare(q, out, outsize, BNG_DNS_FORMERR);
		if (type == T_OPT) {
			if (x.edns || rn.nlabels) /* one OPT, owned by the root */
				return bare(q, out, outsize, BNG_DNS_FORMERR);
			x.edns = true;
			edns_size = get16(q + off + 2);
			x.edns_version = q[off + 5];
		}
		off += 10u + rdlen;
	}
	if (off != qlen) /* bytes after the last record */
		return bare(q, out, outsize, BNG_DNS_FORMERR);

	size_t limit = BNG_DNS_UDP_PLAIN;
	if (tcp)
		limit = BNG_DNS_TCP_MAX;
	else if (x.edns)
		limit = edns_size < BNG_DNS_UDP_PLAIN ? BNG_DNS_UDP_PLAIN
			: edns_size > BNG_DNS_UDP_EDNS ? BNG_DNS_UDP_EDNS : edns_size;
	if (limit > outsize)
		limit = outsize;
	wbuf w = {.p = out, .cap = limit};
	respond(&w, &x, lookup, ud);
	if (!w.over)
		return w.len;
	/* too big for this transport: the question alone, TC set, so the
	 * client asks again over TCP */
	size_t len = bare(q, out, limit, BNG_DNS_NOERROR);
	size_t qlen_q = x.name.end - x.name.start + 4;
	if (!len)
		return 0;
	out[2] |= 0x02;
	if (qlen_q <= limit - len) {
		memcpy(out + len, q + x.name.start, qlen_q);
		out[5] = 1;
		len += qlen_q;
	}
	return len;
}

int bng_dns_parse_listen(const char *s, char ip[16], unsigned *port)
{
	const char *colon = s ? strrchr(s, ':') : NULL;
	if (!colon || colon == s || (size_t)(colon - s) >= 16 || !colon[1])
		return -1;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = '\0';
	unsigned p = 0;
	for (const char *c = colon + 1; *c; c++) {
		if (*c < '0' || *c > '9' || p > 65535)
			return -1;
		p = p * 10 + (unsigned)(*c - '0');
	}
	if (p == 0 || p > 65535)
		return -1;
	*port = p;
	for (const char *c = ip; *c; c++) /* dotted quad only; inet_pton checks the rest */
		if ((*c < '0' || *c > '9') && *c != '.')
			return -1;
	return 0;
}

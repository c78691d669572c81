/* A second, independent reader of DNS responses for the unit test and the
 * fuzzer: it walks every record (following compression pointers, bounded)
 * and fails on anything a resolver would reject. */
#ifndef BANGER_TEST_DNS_READER_H
#define BANGER_TEST_DNS_READER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
	unsigned id, flags, rcode, qd, an, ns, ar;
	unsigned qtype;
	char qname[256];        /* dotted, as sent */
	unsigned an_type[4];    /* the answer section's types */
	uint8_t a[4];           /* the first A record */
	unsigned ttl;           /* the first answer's TTL */
	int ns_soa;             /* an SOA in the authority section */
	int opt;                /* an OPT in the additional section */
	unsigned opt_size, opt_ext_rcode;
} dns_reply;

static unsigned rd16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }

/* The name at *off (pointers followed, at most 16 hops, each strictly
 * backwards); *off moves past it in the message. -1 if malformed. */
static int rd_name(const uint8_t *m, size_t len, size_t *off, char *out, size_t outsize)
{
	size_t o = *off, end = 0, w = 0, total = 0;
	int hops = 0;
	for (;;) {
		if (o >= len)
			return -1;
		uint8_t l = m[o];
		if ((l & 0xc0) == 0xc0) {
			if (o + 1 >= len || ++hops > 16)
				return -1;
			size_t to = (size_t)(l & 0x3f) << 8 | m[o + 1];
			if (!end)
				end = o + 2;
			if (to >= o)
				return -1;
			o = to;
			continue;
		}
		if (l & 0xc0)
			return -1;
		if (l == 0) {
			o++;
			break;
		}
		if (o + 1 + l > len || (total += 1u + l) > 255)
			return -1;
		if (out && w + l + 2 <= outsize) {
			memcpy(out + w, m + o + 1, l);
			w += l;
			out[w++] = '.';
		}
		o += 1u + l;
	}
	if (out && outsize)
		out[w < outsize ? w : outsize - 1] = '\0';
	*off = end ? end : o;
	return 0;
}

static int dns_read(const uint8_t *m, size_t len, dns_reply *r)
{
	memset(r, 0, sizeof(*r));
	if (len < 12)
		return -1;
	r->id = rd16(m);
	r->flags = rd16(m + 2);
	r->rcode = r->flags & 0xf;
	r->qd = rd16(m + 4);
	r->an = rd16(m + 6);
	r->ns = rd16(m + 8);
	r->ar = rd16(m + 10);
	size_t o = 12;
	for (unsigned i = 0; i < r->qd; i++) {
		if (rd_name(m, len, &o, i ? NULL : r->qname, sizeof(r->qname)) || len - o < 4)
			return -1;
		if (!i)
			r->qtype = rd16(m + o);
		o += 4;
	}
	unsigned total = r->an + r->ns + r->ar;
	for (unsigned i = 0; i < total; i++) {
		if (rd_name(m, len, &o, NULL, 0) || len - o < 10)
			return -1;
		unsigned type = rd16(m + o), rdlen = rd16(m + o + 8);
		unsigned long ttl = (unsigned long)rd16(m + o + 4) << 16 | rd16(m + o + 6);
		if (rdlen > len - o - 10)
			return -1;
		const uint8_t *rd = m + o + 10;
		if (i < r->an) {
			if (i < 4)
				r->an_type[i] = type;
			if (i == 0)
				r->ttl = (unsigned)ttl;
			if (type == 1) {
				if (rdlen != 4)
					return -1;
				memcpy(r->a, rd, 4);
			}
		} else if (i < r->an + r->ns) {
			if (type == 6) {
				size_t so = o + 10;
				if (rd_name(m, len, &so, NULL, 0) || rd_name(m, len, &so, NULL, 0) || so + 20 != o + 10 + rdlen)
					return -1;
				r->ns_soa = 1;
			}
		} else if (type == 41) {
			r->opt = 1;
			r->opt_size = rd16(m + o + 2);
			r->opt_ext_rcode = (unsigned)(ttl >> 24);
		}
		o += 10u + rdlen;
	}
	return o == len ? 0 : -1;
}

#endif

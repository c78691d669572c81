/* The vm. zone's packets (lib/dns/packet.c): every rcode, NODATA, the
 * apex, case, EDNS0, TC, and malformed queries (truncated, pointers,
 * oversized), each response read back by tests/dns_reader.h. Also the
 * listeners (server.c) over real UDP and TCP sockets on 127.0.0.1. */
#include "check.h"

#include "../dns_reader.h"
#include "dns/dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

static int lookups;

static int lookup(const char *label, uint32_t *ip, void *ud)
{
	(void)ud;
	lookups++;
	if (!strcmp(label, "box")) {
		inet_pton(AF_INET, "172.16.0.5", ip);
		return 1;
	}
	if (!strcmp(label, "broken"))
		return -1;
	return 0;
}

/* A query for dotted name (no trailing dot) of type; edns: its payload
 * size (0: no OPT). */
static size_t query(uint8_t *q, unsigned id, const char *name, unsigned type, unsigned edns)
{
	size_t o = 12;
	memset(q, 0, 12);
	q[0] = (uint8_t)(id >> 8);
	q[1] = (uint8_t)id;
	q[2] = 0x01; /* RD */
	q[5] = 1;
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t n = dot ? (size_t)(dot - name) : strlen(name);
		q[o++] = (uint8_t)n;
		memcpy(q + o, name, n);
		o += n;
		name += n + (dot ? 1 : 0);
	}
	q[o++] = 0;
	q[o++] = (uint8_t)(type >> 8);
	q[o++] = (uint8_t)type;
	q[o++] = 0;
	q[o++] = 1;
	if (edns) {
		q[11] = 1;
		uint8_t opt[11] = {0, 0, 41, (uint8_t)(edns >> 8), (uint8_t)edns, 0, 0, 0, 0, 0, 0};
		memcpy(q + o, opt, sizeof(opt));
		o += sizeof(opt);
	}
	return o;
}

static size_t ask(const uint8_t *q, size_t qlen, bool tcp, dns_reply *r)
{
	static uint8_t out[65535];
	size_t n = bng_dns_answer(q, qlen, out, sizeof(out), tcp, lookup, NULL);
	if (n) {
		CHECK(dns_read(out, n, r) == 0);
		CHECK(r->flags & 0x8000);
		CHECK_EQ_INT(r->id, (unsigned)q[0] << 8 | q[1]);
		CHECK(n <= (tcp ? 65535u : 1232u));
	}
	return n;
}

static void test_answers(void)
{
	uint8_t q[600];
	dns_reply r;

	/* A of a running VM, in any case; AA and RD echoed */
	CHECK(ask(q, query(q, 0x1234, "box.vm", 1, 0), false, &r));
	CHECK_EQ_INT(r.rcode, BNG_DNS_NOERROR);
	CHECK(r.flags & 0x0400);
	CHECK(r.flags & 0x0100);
	CHECK_EQ_INT(r.an, 1);
	CHECK_EQ_INT(r.an_type[0], 1);
	CHECK_EQ_INT(r.ttl, BNG_DNS_TTL);
	CHECK(!memcmp(r.a, "\xac\x10\x00\x05", 4));
	CHECK_EQ_STR(r.qname, "box.vm.");
	CHECK(ask(q, query(q, 1, "BoX.Vm", 1, 0), false, &r));
	CHECK_EQ_INT(r.an, 1);
	CHECK_EQ_STR(r.qname, "BoX.Vm."); /* the question is echoed as asked */
	CHECK(ask(q, query(q, 1, "box.vm", 255, 0), false, &r)); /* ANY */
	CHECK_EQ_INT(r.an, 1);

	/* NODATA: the name exists without AAAA */
	CHECK(ask(q, query(q, 2, "box.vm", 28, 0), false, &r));
	CHECK_EQ_INT(r.rcode, BNG_DNS_NOERROR);
	CHECK_EQ_INT(r.an, 0);
	CHECK_EQ_INT(r.ns, 1);
	CHECK(r.ns_soa);

	/* NXDOMAIN: unknown, below a VM name, or not a VM name at all */
	const char *missing[] = {"nobox.vm", "a.box.vm", "bad_?name.vm"};
	for (size_t i = 0; i < 3; i++) {
		CHECK(ask(q, query(q, 3, missing[i], 1, 0), false, &r));
		CHECK_EQ_INT(r.rcode, BNG_DNS_NXDOMAIN);
		CHECK(r.flags & 0x0400);
		CHECK(r.ns_soa);
	}
	/* a label with a NUL must not reach the lookup as "box" */
	size_t n = query(q, 3, "boxXx.vm", 1, 0);
	q[16] = 0;
	lookups = 0;
	CHECK(ask(q, n, false, &r));
	CHECK_EQ_INT(r.rcode, BNG_DNS_NXDOMAIN);
	CHECK_EQ_INT(lookups, 0);

	/* SERVFAIL when the store cannot answer */
	CHECK(ask(q, query(q, 4, "broken.vm", 1, 0), false, &r));
	CHECK_EQ_INT(r.rcode, BNG_DNS_SERVFAIL);

	/* the apex: SOA, NS, ANY, NODATA for A */
	CHECK(ask(q, query(q, 5, "vm", 6, 0), false, &r));
	CHECK_EQ_INT(r.rcode, BNG_DNS_NOERROR);
	CHECK_EQ_INT(r.an, 1);
	CHECK_EQ_INT(r.an_type[0], 6);
	CHECK(ask(q, query(q, 5, "VM", 2, 0), false, &r));
	CHECK_EQ_INT(r.an_type[0], 2);
	CHECK(ask(q, query(q, 5, "vm", 255, 0), false, &r));
	CHECK_EQ_INT(r.an, 2);
	CHECK(ask(q, query(q, 5, "vm", 1, 0), false, &r));
	CHECK_EQ_INT(r.an, 0);
	CHECK(r.ns_soa);

	/* REFUSED outside the zone, for zone transfers and other classes */
	const char *outside[] = {"example.com", "vm.example", "box.vmx", ""};
	for (size_t i = 0; i < 4; i++) {
		CHECK(ask(q, query(q, 6, outside[i], 1, 0), false, &r));
		CHECK_EQ_INT(r.rcode, BNG_DNS_REFUSED);
		CHECK(!(r.flags & 0x0400));
		CHECK_EQ_INT(r.an + r.ns, 0);
	}
	CHECK(ask(q, query(q, 6, "vm", 252, 0), true, &r));
	CHECK_EQ_INT(r.rcode, BNG_DNS_REFUSED);
	n = query(q, 6, "box.vm", 1, 0);
	q[n - 1] = 3; /* CHAOS */
	CHECK(ask(q, n, false, &r));
	CHECK_EQ_INT(r.rcode, BNG_DNS_REFUSED);
}

static void test_edns_and_tc(void)
{
	uint8_t q[600], out[600];
	dns_reply r;
	CHECK(ask(q, query(q, 7, "box.vm", 1, 4096), false, &r));
	CHECK(r.opt);
	CHECK_EQ_INT(r.opt_size, BNG_DNS_UDP_EDNS);
	CHECK_EQ_INT(r.an, 1);
	/* EDNS version 1: BADVERS (extended rcode 16) */
	size_t n = query(q, 7, "box.vm", 1, 4096);
	q[n - 5] = 1; /* the version byte of the OPT's TTL */
	CHECK(ask(q, n, false, &r));
	CHECK(r.opt);
	CHECK_EQ_INT(r.opt_ext_rcode << 4 | r.rcode, 16);
	CHECK_EQ_INT(r.an, 0);
	/* two OPT records */
	n = query(q, 7, "box.vm", 1, 4096);
	memcpy(q + n, q + n - 11, 11);
	q[11] = 2;
	CHECK(ask(q, n + 11, false, &r));
	CHECK_EQ_INT(r.rcode, BNG_DNS_FORMERR);

	/* a reply over the limit keeps the question and sets TC */
	n = query(q, 8, "vm", 255, 0);
	size_t full = bng_dns_answer(q, n, out, sizeof(out), false, lookup, NULL);
	size_t cut = bng_dns_answer(q, n, out, full - 1, false, lookup, NULL);
	CHECK(cut > 12 && cut < full);
	CHECK(dns_read(out, cut, &r) == 0);
	CHECK(r.flags & 0x0200);
	CHECK_EQ_INT(r.qd, 1);
	CHECK_EQ_INT(r.an, 0);
	/* room for the header only */
	CHECK_EQ_INT(bng_dns_answer(q, n, out, 14, false, lookup, NULL), 12);
	CHECK(out[2] & 0x02);
	CHECK_EQ_INT(bng_dns_answer(q, n, out, 11, false, lookup, NULL), 0);
}

static void test_malformed(void)
{
	uint8_t q[70000];
	dns_reply r;
	size_t n = query(q, 9, "box.vm", 1, 0);
	/* shorter than a header: nothing; truncated anywhere after: FORMERR */
	CHECK_EQ_INT(bng_dns_answer(q, 11, q + 1000, 512, false, lookup, NULL), 0);
	for (size_t len = 12; len < n; len++) {
		CHECK(ask(q, len, false, &r));
		CHECK_EQ_INT(r.rcode, BNG_DNS_FORMERR);
		CHECK_EQ_INT(r.qd + r.an + r.ns + r.ar, 0);
	}
	/* trailing bytes */
	CHECK(ask(q, n + 1, false, &r));
	CHECK_EQ_INT(r.rcode, BNG_DNS_FORMERR);
	/* a response is never answered */
	q[2] |= 0x80;
	CHECK_EQ_INT(ask(q, n, false, &r), 0);
	q[2] &= 0x7f;
	/* QDCOUNT 0 and 2, ANCOUNT 1 */
	q[5] = 0;
	CHECK(ask(q, n, false, &r) && r.rcode == BNG_DNS_FORMERR);
	q[5] = 2;
	CHECK(ask(q, n, false, &r) && r.rcode == BNG_DNS_FORMERR);
	q[5] = 1;
	q[7] = 1;
	CHECK(ask(q, n, false, &r) && r.rcode == BNG_DNS_FORMERR);
	q[7] = 0;
	/* opcode STATUS (2), UPDATE (5): NOTIMP */
	q[2] = 2 << 3;
	CHECK(ask(q, n, false, &r) && r.rcode == BNG_DNS_NOTIMP);
	q[2] = 5 << 3;
	CHECK(ask(q, n, false, &r) && r.rcode == BNG_DNS_NOTIMP);
	q[2] = 0;

	/* compression pointers: to itself (a loop), forwards, backwards */
	static const uint8_t loop[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
	CHECK(ask(loop, sizeof(loop), false, &r) && r.rcode == BNG_DNS_FORMERR);
	static const uint8_t chain[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'b', 'o', 'x', 0xc0, 16, 0, 1, 0, 1};
	CHECK(ask(chain, sizeof(chain), false, &r) && r.rcode == BNG_DNS_FORMERR);
	/* an obsolete label type (0x40) */
	n = query(q, 9, "box.vm", 1, 0);
	q[12] = 0x43;
	CHECK(ask(q, n, false, &r) && r.rcode == BNG_DNS_FORMERR);

	/* a name of 255 bytes is fine, 256 is not */
	char name[300];
	memset(name, 0, sizeof(name));
	for (int i = 0; i < 4; i++)
		memset(name + i * 64, 'a', 63), name[i * 64 + 63] = '.';
	memset(name + 3 * 64, 'a', 58);
	strcpy(name + 3 * 64 + 58, ".vm"); /* 3 * 64 + 59 + 3 + 1 = 255 on the wire */
	n = query(q, 10, name, 1, 0);
	CHECK_EQ_INT(n - 12 - 4, 255);
	CHECK(ask(q, n, false, &r) && r.rcode == BNG_DNS_NXDOMAIN);
	name[3 * 64 + 58] = 'a';
	memcpy(name + 3 * 64 + 59, ".vm", 4);
	n = query(q, 10, name, 1, 0);
	CHECK(ask(q, n, false, &r) && r.rcode == BNG_DNS_FORMERR);

	/* oversized: a valid query followed by 64 KiB of junk, over TCP */
	n = query(q, 11, "box.vm", 1, 0);
	memset(q + n, 0xc0, 65535 - n);
	CHECK(ask(q, 65535, true, &r) && r.rcode == BNG_DNS_FORMERR);
	/* an additional record claiming more data than there is */
	n = query(q, 11, "box.vm", 1, 4096);
	q[n - 1] = 200;
	CHECK(ask(q, n, false, &r) && r.rcode == BNG_DNS_FORMERR);
}

static void test_parse_listen(void)
{
	char ip[16];
	unsigned port;
	CHECK(bng_dns_parse_listen("127.0.0.1:42069", ip, &port) == 0);
	CHECK_EQ_STR(ip, "127.0.0.1");
	CHECK_EQ_INT(port, 42069);
	CHECK(bng_dns_parse_listen("127.0.0.1", ip, &port) != 0);
	CHECK(bng_dns_parse_listen("127.0.0.1:0", ip, &port) != 0);
	CHECK(bng_dns_parse_listen("127.0.0.1:99999999999", ip, &port) != 0);
	CHECK(bng_dns_parse_listen(":53", ip, &port) != 0);
	CHECK(bng_dns_parse_listen("[::1]:53", ip, &port) != 0);
}

/* The listeners: a port found free, UDP and TCP (two pipelined queries),
 * a second bind of the same port refused. */
static void test_server(void)
{
	int probe = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	CHECK(bind(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(getsockname(probe, (struct sockaddr *)&sa, &sl) == 0);
	close(probe);
	unsigned port = ntohs(sa.sin_port);

	bng_dns_server *s;
	CHECK(bng_dns_server_new(&s, lookup, NULL) == 0);
	CHECK(bng_dns_server_listen(s, "127.0.0.1", port) == 0);
	CHECK(bng_dns_server_listen(s, "127.0.0.1", port) == BANGER_EBUSY);
	CHECK(bng_dns_server_listen(s, "nonsense", port) == BANGER_EINVAL);

	uint8_t q[64], buf[2048];
	dns_reply r;
	struct timeval tv = {.tv_sec = 5};
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	size_t n = query(q, 77, "box.vm", 1, 0);
	CHECK(sendto(u, q, n, 0, (struct sockaddr *)&sa, sizeof(sa)) == (ssize_t)n);
	ssize_t got = recv(u, buf, sizeof(buf), 0);
	CHECK(got > 0 && dns_read(buf, (size_t)got, &r) == 0 && r.id == 77 && r.an == 1);
	close(u);

	int t = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(t, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	CHECK(connect(t, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	uint8_t two[128];
	size_t a = query(two + 2, 1, "box.vm", 1, 0);
	two[0] = 0, two[1] = (uint8_t)a;
	size_t b = query(two + 4 + a, 2, "nobox.vm", 1, 0);
	two[2 + a] = 0, two[3 + a] = (uint8_t)b;
	CHECK(send(t, two, 4 + a + b, 0) == (ssize_t)(4 + a + b));
	size_t have = 0;
	while (have < sizeof(buf)) {
		got = recv(t, buf + have, sizeof(buf) - have, 0);
		if (got <= 0)
			break;
		have += (size_t)got;
		size_t l1 = have >= 2 ? (size_t)buf[0] << 8 | buf[1] : 0;
		if (l1 && have >= 2 + l1 + 2 && have >= 4 + l1 + ((size_t)buf[2 + l1] << 8 | buf[3 + l1]))
			break;
	}
	size_t l1 = (size_t)buf[0] << 8 | buf[1];
	CHECK(have > 2 + l1 && dns_read(buf + 2, l1, &r) == 0 && r.id == 1 && r.an == 1);
	CHECK(dns_read(buf + 4 + l1, have - 4 - l1, &r) == 0 && r.id == 2 && r.rcode == BNG_DNS_NXDOMAIN);
	/* a connection left open is closed by the server's free */
	json_t *st = bng_dns_server_status(s);
	CHECK_EQ_INT(json_integer_value(json_object_get(st, "queries")), 3);
	CHECK_EQ_INT(json_array_size(json_object_get(st, "listen")), 1);
	json_decref(st);
	bng_dns_server_free(s);
	close(t);
}

int main(void)
{
	test_answers();
	test_edns_and_tc();
	test_malformed();
	test_parse_listen();
	test_server();
	return check_summary();
}

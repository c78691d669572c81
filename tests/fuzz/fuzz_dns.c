/* libFuzzer target: DNS queries to the vm. zone (lib/dns/packet.c). Byte 0
 * picks TCP or UDP (bit 0) and a reply buffer size (the rest), the other
 * bytes are the query. Every response must fit its limit, echo the ID, have
 * QR set, and read cleanly with the independent reader
 * (tests/dns_reader.h); answering twice must give the same bytes. */
#include "fuzz.h"
#include "../dns_reader.h"
#include "dns/dns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int lookup(const char *label, uint32_t *ip, void *ud)
{
	(void)ud;
	size_t n = strlen(label);
	REQUIRE(n >= 1 && n <= 63);
	for (size_t i = 0; i < n; i++) /* only plain lower-case labels get here */
		REQUIRE((label[i] >= 'a' && label[i] <= 'z') || (label[i] >= '0' && label[i] <= '9') ||
			label[i] == '-' || label[i] == '_');
	if (label[0] == 'x')
		return -1;
	*ip = 0x0500100a;
	return label[0] < 'm';
}

static void check(const uint8_t *q, size_t qlen, bool tcp, size_t outsize)
{
	static uint8_t out[65535], again[65535];
	size_t n = bng_dns_answer(q, qlen, out, outsize, tcp, lookup, NULL);
	REQUIRE(n <= outsize);
	REQUIRE(n <= (tcp ? 65535u : (size_t)BNG_DNS_UDP_EDNS));
	if (!n)
		return;
	REQUIRE(n >= 12 && qlen >= 12);
	REQUIRE(out[0] == q[0] && out[1] == q[1]);
	REQUIRE(out[2] & 0x80);
	dns_reply r;
	REQUIRE(dns_read(out, n, &r) == 0);
	REQUIRE(r.qd <= 1);
	if (!tcp && !r.opt)
		REQUIRE(n <= BNG_DNS_UDP_PLAIN);
	REQUIRE(bng_dns_answer(q, qlen, again, outsize, tcp, lookup, NULL) == n);
	REQUIRE(!memcmp(out, again, n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool tcp = data[0] & 1;
	/* the query in a buffer of its own size, so ASan sees any overread */
	uint8_t *q = malloc(size - 1 ? size - 1 : 1);
	memcpy(q, data + 1, size - 1);
	check(q, size - 1, tcp, 65535);
	check(q, size - 1, tcp, (size_t)(data[0] >> 1) * 4); /* 0..508: the TC path */
	free(q);
	return 0;
}

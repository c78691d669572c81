/* Pure network helpers: interface names, CIDR parsing, address allocation,
 * MACs. No syscalls, so they are unit-testable anywhere. */
#include "net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bng_net_check_ifname(const char *name)
{
	if (!name || !*name)
		return bng_err(BANGER_EINVAL, "network device name is empty");
	size_t len = strlen(name);
	if (len > BNG_NET_IFNAME_MAX)
		return bng_err(BANGER_EINVAL,
			       "network device name \"%s\" is %zu characters long: Linux allows at most %d",
			       name, len, BNG_NET_IFNAME_MAX);
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return bng_err(BANGER_EINVAL, "\"%s\" is not a valid network device name", name);
	for (const char *p = name; *p; p++) {
		/* The kernel's own rule (dev_valid_name): these would break sysfs paths
		 * and alias syntax. */
		if (*p == '/' || *p == ':' || isspace((unsigned char)*p))
			return bng_err(BANGER_EINVAL,
				       "network device name \"%s\" contains '/', ':' or whitespace: use letters, "
				       "digits and '-'",
				       name);
	}
	return 0;
}

/* inet_pton alone, in host byte order. */
static bool parse_ipv4(const char *s, uint32_t *out)
{
	struct in_addr a;
	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return false;
	*out = ntohl(a.s_addr);
	return true;
}

static void format_ipv4(uint32_t addr, char out[16])
{
	snprintf(out, 16, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 0xff, (addr >> 8) & 0xff, addr & 0xff);
}

static uint32_t prefix_mask(int prefix)
{
	/* Shifting a 32-bit value by 32 is undefined, hence the special case. */
	return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
}

int bng_net_parse_cidr(const char *cidr, uint32_t *net, int *prefix)
{
	if (!cidr)
		return bng_err(BANGER_EINVAL, "CIDR is missing: expected a.b.c.d/n, e.g. 172.30.0.0/24");
	const char *slash = strchr(cidr, '/');
	char ip[16];
	size_t iplen = slash ? (size_t)(slash - cidr) : 0;
	if (!slash || iplen == 0 || iplen >= sizeof(ip))
		return bng_err(BANGER_EINVAL, "\"%s\" is not an IPv4 CIDR: expected a.b.c.d/n, e.g. 172.30.0.0/24",
			       cidr);
	memcpy(ip, cidr, iplen);
	ip[iplen] = '\0';

	/* Digits only: strtol would accept signs, spaces and hex. */
	const char *p = slash + 1;
	int n = 0;
	size_t digits = 0;
	for (; *p >= '0' && *p <= '9' && digits < 3; p++, digits++)
		n = n * 10 + (*p - '0');
	if (digits == 0 || *p != '\0' || n > 32)
		return bng_err(BANGER_EINVAL, "\"%s\" has a bad prefix length: expected /0 to /32", cidr);

	uint32_t addr;
	if (!parse_ipv4(ip, &addr))
		return bng_err(BANGER_EINVAL, "\"%s\" is not an IPv4 CIDR: \"%s\" is not an IPv4 address", cidr, ip);
	uint32_t mask = prefix_mask(n);
	if (addr & ~mask) {
		char netstr[16];
		format_ipv4(addr & mask, netstr);
		return bng_err(BANGER_EINVAL, "\"%s\" has host bits set: did you mean %s/%d?", cidr, netstr, n);
	}
	*net = addr;
	*prefix = n;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int bng_net_alloc_ip(const char *cidr, const char *gateway_ip, json_t *used, char out[16])
{
	uint32_t net;
	int prefix;
	int rc = bng_net_parse_cidr(cidr, &net, &prefix);
	if (rc)
		return rc;
	if (prefix > 30)
		return bng_err(BANGER_EINVAL, "%s has no room for guests: use a /30 or wider network", cidr);
	uint32_t mask = prefix_mask(prefix);
	uint32_t first = net + 1, last = (net | ~mask) - 1;

	if (used && !json_is_array(used))
		return bng_err(BANGER_EINVAL, "used addresses must be a JSON array of strings");
	size_t nused = used ? json_array_size(used) : 0;
	/* Taken addresses inside the pool, sorted: then the lowest free one is
	 * found in one pass however many VMs there are. */
	uint32_t *taken = bng_xcalloc(nused + 1, sizeof(*taken));
	size_t ntaken = 0;

	if (gateway_ip) {
		uint32_t gw;
		if (!parse_ipv4(gateway_ip, &gw)) {
			free(taken);
			return bng_err(BANGER_EINVAL, "gateway \"%s\" is not an IPv4 address", gateway_ip);
		}
		if ((gw & mask) != net) {
			free(taken);
			return bng_err(BANGER_EINVAL, "gateway %s is outside %s: pick a gateway inside the network",
				       gateway_ip, cidr);
		}
		taken[ntaken++] = gw;
	}
	for (size_t i = 0; i < nused; i++) {
		const char *s = json_string_value(json_array_get(used, i));
		uint32_t a;
		if (!s || !parse_ipv4(s, &a)) {
			free(taken);
			return bng_err(BANGER_EINVAL, "used address #%zu (%s) is not an IPv4 address string", i,
				       s ? s : "not a string");
		}
		if ((a & mask) == net)
			taken[ntaken++] = a;
	}
	qsort(taken, ntaken, sizeof(*taken), cmp_u32);

	uint32_t cand = first;
	for (size_t i = 0; i < ntaken && cand <= last; i++) {
		if (taken[i] < cand)
			continue; /* network address or a duplicate */
		if (taken[i] > cand)
			break;
		cand++;
	}
	free(taken);
	if (cand > last)
		return bng_err(BANGER_EBUSY, "no free address in %s: delete some VMs or widen cidr", cidr);
	format_ipv4(cand, out);
	return 0;
}

/* FNV-1a, then a 64-bit finalizer so that ids differing in one character
 * differ in every output byte. */
static uint64_t hash_id(const char *id)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)(id ? id : ""); *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ull;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h;
}

void bng_net_mac_from_id(const char *id, char out[18])
{
	uint64_t h = hash_id(id);
	/* First octet 0x02: locally administered (bit 1) and unicast (bit 0 clear),
	 * so it can never collide with a vendor's address. */
	snprintf(out, 18, "02:%02x:%02x:%02x:%02x:%02x", (unsigned)(h >> 32) & 0xff, (unsigned)(h >> 24) & 0xff,
		 (unsigned)(h >> 16) & 0xff, (unsigned)(h >> 8) & 0xff, (unsigned)h & 0xff);
}

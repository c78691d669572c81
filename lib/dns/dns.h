/* The authoritative `vm.` zone on the wire: a query in, a response out
 * (packet.c, pure and allocation-free, fuzzed), and UDP/TCP listeners on
 * their own libuv loop thread (server.c). The zone's records come from a
 * lookup callback, so this module knows nothing about VMs. */
#ifndef BANGER_DNS_H
#define BANGER_DNS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BNG_DNS_UDP_PLAIN 512  /* a UDP reply to a query without EDNS0 */
#define BNG_DNS_UDP_EDNS 1232  /* our EDNS0 payload size: no IP fragmentation */
#define BNG_DNS_TCP_MAX 65535  /* a TCP message's 2-byte length */
#define BNG_DNS_TTL 5          /* records follow VM starts and stops: keep caches short */

enum { BNG_DNS_NOERROR = 0, BNG_DNS_FORMERR = 1, BNG_DNS_SERVFAIL = 2, BNG_DNS_NXDOMAIN = 3, BNG_DNS_NOTIMP = 4,
       BNG_DNS_REFUSED = 5 };

/* label: the one label before "vm." in lower case ("box" for BOX.vm.).
 * Returns 1 with *ip (network byte order) when the name has an A record,
 * 0 when it does not exist, -1 when the lookup failed (SERVFAIL). */
typedef int (*bng_dns_lookup_fn)(const char *label, uint32_t *ip, void *ud);

/* Answers the query q[0..qlen) into out (outsize bytes) and returns the
 * response's length, or 0 when nothing must be sent (shorter than a header,
 * or itself a response). tcp lifts the UDP size limits (512 without EDNS0,
 * else the client's size capped at BNG_DNS_UDP_EDNS); an answer over the
 * limit (or over outsize) is sent without records, with TC set. Nothing is
 * read outside q and nothing written outside out. */
size_t bng_dns_answer(const uint8_t *q, size_t qlen, uint8_t *out, size_t outsize, bool tcp,
		      bng_dns_lookup_fn lookup, void *ud);

/* ---- server.c ---- */
typedef struct bng_dns_server bng_dns_server;

/* Starts the server's thread and loop; no listener yet. */
int bng_dns_server_new(bng_dns_server **out, bng_dns_lookup_fn lookup, void *ud);
/* Binds UDP and TCP on ip:port (IPv4) in the caller's thread, so a busy
 * port fails here, then serves them on the server's loop. */
int bng_dns_server_listen(bng_dns_server *s, const char *ip, unsigned port);
/* Closes every listener and connection and joins the thread. */
void bng_dns_server_free(bng_dns_server *s);
/* {"listen": ["ip:port", ...], "queries": n} */
json_t *bng_dns_server_status(bng_dns_server *s);

/* Splits "ip:port" (IPv4, port 1..65535). */
int bng_dns_parse_listen(const char *s, char ip[16], unsigned *port);

#endif

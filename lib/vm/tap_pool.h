/* The warm tap pool: taps made ahead of time (enslaved to the bridge, up),
 * so a VM's network stage takes a name off a list instead of waiting on
 * netlink round trips.
 *
 * An engine names its taps "bt<tag>-<n>" (its network tag: four hex digits
 * of a hash of its state directory), so engines that share a network namespace never
 * take or clean up each other's taps. A refill thread keeps `size` idle
 * taps; it starts on the first take, so an engine that never boots a VM
 * never touches the host's network. Idle taps outlive the engine and are
 * adopted by the next one (a daemon restart keeps the pool warm). All
 * functions are thread safe. */
#ifndef BANGER_TAP_POOL_H
#define BANGER_TAP_POOL_H

#include <jansson.h>
#include <stdbool.h>

typedef struct bng_tap_pool bng_tap_pool;

/* A pool of `size` (0: none kept, every take creates) idle taps on bridge
 * (given bridge_ip/prefix_len when the pool has to create it). */
bng_tap_pool *bng_tap_pool_new(const char *tag, int size, const char *bridge, const char *bridge_ip, int prefix_len);

/* Adopts this engine's existing taps that no VM row names (in_use: a JSON
 * array of tap names) as idle, up to size, deleting the rest; numbering
 * continues past every name seen. Called once, at engine open. */
void bng_tap_pool_adopt(bng_tap_pool *p, json_t *in_use);

/* Writes a tap name the caller now owns (it must delete it when done):
 * an idle one when there is one (*warm = true), otherwise one created now. */
int bng_tap_pool_take(bng_tap_pool *p, char out[16], bool *warm);

/* {"size", "prefix", "idle": [names], "error": last refill failure or null} */
json_t *bng_tap_pool_status(bng_tap_pool *p);

/* Stops the refill thread (idle taps stay for the next engine). */
void bng_tap_pool_free(bng_tap_pool *p);

#endif

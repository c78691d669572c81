/* The warm tap pool (see tap_pool.h). */
#include "tap_pool.h"
#include "../core/internal.h"
#include "../net/net.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bng_tap_pool {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool thread_started, stopping;
	bool failed;       /* the last refill failed: wait for the next take before trying again */
	char *error;       /* its message */
	int size;
	unsigned long next; /* the next number to name a tap with */
	char prefix[8];     /* "bt" + tag + "-" */
	char *bridge, *bridge_ip;
	int prefix_len;
	json_t *idle;       /* names, oldest first */
};

bng_tap_pool *bng_tap_pool_new(const char *tag, int size, const char *bridge, const char *bridge_ip, int prefix_len)
{
	bng_tap_pool *p = bng_xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	snprintf(p->prefix, sizeof(p->prefix), "bt%.4s-", tag);
	p->size = size;
	p->bridge = bng_strdup(bridge);
	p->bridge_ip = bng_strdup(bridge_ip);
	p->prefix_len = prefix_len;
	p->idle = json_array();
	return p;
}

/* The number in one of our names, or -1 for someone else's name. */
static long number_of(const bng_tap_pool *p, const char *name)
{
	size_t n = strlen(p->prefix);
	if (strncmp(name, p->prefix, n) || !name[n] || strspn(name + n, "0123456789") != strlen(name + n))
		return -1;
	return strtol(name + n, NULL, 10);
}

static bool contains(json_t *names, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(names, i, v) if (!strcmp(json_string_value(v), name)) return true;
	return false;
}

void bng_tap_pool_adopt(bng_tap_pool *p, json_t *in_use)
{
	json_t *links = NULL;
	size_t i;
	json_t *v;
	pthread_mutex_lock(&p->lock);
	json_array_foreach(in_use, i, v) {
		long n = json_is_string(v) ? number_of(p, json_string_value(v)) : -1;
		if (n >= 0 && (unsigned long)n >= p->next)
			p->next = (unsigned long)n + 1;
	}
	if (bng_net_link_list(p->prefix, &links) == 0) {
		json_array_foreach(links, i, v) {
			const char *name = json_string_value(v);
			long n = number_of(p, name);
			if (n < 0 || contains(in_use, name))
				continue; /* a VM's: reconcile decides */
			if ((unsigned long)n >= p->next)
				p->next = (unsigned long)n + 1;
			if (json_array_size(p->idle) < (size_t)p->size)
				json_array_append(p->idle, v);
			else
				bng_net_link_delete_if_exists(name);
		}
		json_decref(links);
	}
	pthread_mutex_unlock(&p->lock);
}

/* Under the lock: the next unused name. */
static void next_name(bng_tap_pool *p, char out[16])
{
	snprintf(out, 16, "%s%lu", p->prefix, p->next++ % 100000000ul);
}

static int make_tap(bng_tap_pool *p, const char *name)
{
	int rc = bng_net_bridge_ensure(p->bridge, p->bridge_ip, p->prefix_len);
	return rc ? rc : bng_net_tap_create(name, p->bridge, (uid_t)-1, (gid_t)-1);
}

static void *refill(void *arg)
{
	bng_tap_pool *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stopping && (p->failed || json_array_size(p->idle) >= (size_t)p->size))
			pthread_cond_wait(&p->wake, &p->lock);
		if (p->stopping)
			break;
		char name[16];
		next_name(p, name);
		pthread_mutex_unlock(&p->lock);
		int rc = make_tap(p, name);
		pthread_mutex_lock(&p->lock);
		if (!rc) {
			json_array_append_new(p->idle, json_string(name));
		} else if (rc != BANGER_EEXIST) { /* a name taken by hand: just move on */
			p->failed = true;
			free(p->error);
			p->error = bng_strdup(banger_error_last());
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int bng_tap_pool_take(bng_tap_pool *p, char out[16], bool *warm)
{
	pthread_mutex_lock(&p->lock);
	*warm = json_array_size(p->idle) > 0;
	if (*warm) {
		snprintf(out, 16, "%s", json_string_value(json_array_get(p->idle, 0)));
		json_array_remove(p->idle, 0);
	} else {
		next_name(p, out);
	}
	p->failed = false;
	if (p->size > 0 && !p->thread_started)
		p->thread_started = pthread_create(&p->thread, NULL, refill, p) == 0;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	if (*warm) {
		bool exists = false;
		if (bng_net_link_exists(out, &exists) == 0 && exists)
			return 0;
		*warm = false; /* deleted behind our back: make it again */
	}
	return make_tap(p, out);
}

json_t *bng_tap_pool_status(bng_tap_pool *p)
{
	pthread_mutex_lock(&p->lock);
	/* a copy of the idle list: the refill thread keeps changing it */
	json_t *s = json_pack("{s:i,s:s,s:o,s:s?}", "size", p->size, "prefix", p->prefix, "idle", json_deep_copy(p->idle),
			      "error", p->failed ? p->error : NULL);
	pthread_mutex_unlock(&p->lock);
	return s;
}

void bng_tap_pool_free(bng_tap_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	if (p->thread_started)
		pthread_join(p->thread, NULL);
	json_decref(p->idle);
	free(p->error);
	free(p->bridge);
	free(p->bridge_ip);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
	free(p);
}

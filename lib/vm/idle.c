/* auto_stop_stale_after: stops running VMs nobody has used for that long.
 * "Used" is any of: a guest command (exec, cp, workspace: busy while it
 * runs), any other call through the VM's agent link (vm ports, vm stats),
 * or an established TCP connection to a peer outside the guest (an SSH
 * login, a client of a served port; the agent's "activity" op). A VM's
 * clock starts when the watcher first sees it running, so an engine that
 * has just opened never stops what it has not watched for the full time.
 *
 * The activity registry is process-wide, keyed by VM id (ids are unique
 * across state directories), so guest commands mark it without an engine
 * at hand. The watcher thread belongs to the engine (vm module hooks). */
#include "idle.h"
#include "vm.h"
#include "../core/internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- the activity registry: id -> [last_ms, busy] ---- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *reg; /* created on first use, lives for the process */

static json_t *entry(const char *id)
{
	if (!reg)
		reg = json_object();
	json_t *en = json_object_get(reg, id);
	if (!en) {
		en = json_pack("[I,i]", (json_int_t)bng_now_ms(), 0);
		json_object_set_new(reg, id, en);
	}
	return en;
}

void bng_vm_activity(const char *vm_id, int busy_delta)
{
	if (!vm_id)
		return;
	pthread_mutex_lock(&reg_lock);
	json_t *en = entry(vm_id);
	json_int_t busy = json_integer_value(json_array_get(en, 1)) + busy_delta;
	json_array_set_new(en, 0, json_integer(bng_now_ms()));
	json_array_set_new(en, 1, json_integer(busy < 0 ? 0 : busy));
	pthread_mutex_unlock(&reg_lock);
}

/* Milliseconds since vm_id was last used (0 while busy); the first look
 * starts its clock. */
static long long idle_ms(const char *vm_id)
{
	pthread_mutex_lock(&reg_lock);
	json_t *en = entry(vm_id);
	long long now = bng_now_ms();
	if (json_integer_value(json_array_get(en, 1)) > 0)
		json_array_set_new(en, 0, json_integer(now));
	long long idle = now - json_integer_value(json_array_get(en, 0));
	pthread_mutex_unlock(&reg_lock);
	return idle;
}

/* A VM that is not running starts afresh when it runs again. */
static void forget(const char *vm_id)
{
	pthread_mutex_lock(&reg_lock);
	if (reg)
		json_object_del(reg, vm_id);
	pthread_mutex_unlock(&reg_lock);
}

/* ---- the watcher ---- */

struct bng_idle {
	bng_engine *e;
	long long after_ms;
	long long tick_ms;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
	json_t *stopped; /* the last auto-stops, newest last: {name, idle_s, at} */
};

/* Asks the guest whether a peer is connected; true when it cannot tell
 * (an agent without the op, a guest busy elsewhere): never stop blind. */
static bool guest_connected(bng_engine *e, const char *id)
{
	bng_vm_row *vm;
	bng_agent_link *link;
	if (bng_vm_link_quiet(e, id, &vm, &link))
		return true;
	bng_agent_watch watch = bng_vm_watch(vm, NULL);
	json_t *reply = NULL;
	bool connected = true;
	if (bng_agent_link_call(link, "activity", 5000, &watch, &reply) == 0)
		connected = json_integer_value(json_object_get(reply, "connections")) > 0;
	json_decref(reply);
	bng_agent_link_unref(link);
	bng_vm_free(vm);
	return connected;
}

static void scan(bng_idle *w)
{
	json_t *rows = NULL;
	if (bng_store_query(&w->e->store, &rows, "SELECT id, name, state FROM vms", 0, NULL))
		return;
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) {
		const char *id = json_string_value(json_object_get(row, "id"));
		const char *name = json_string_value(json_object_get(row, "name"));
		if (strcmp(json_string_value(json_object_get(row, "state")), "running")) {
			forget(id);
			continue;
		}
		/* asked at every look, not only near the limit: a connection seen
		 * now keeps the VM used until at least now, so its end is known
		 * within a look */
		if (idle_ms(id) < w->tick_ms)
			continue;
		if (guest_connected(w->e, id)) {
			bng_vm_activity(id, 0);
			continue;
		}
		long long idle = idle_ms(id); /* a command may have begun meanwhile */
		if (idle < w->after_ms)
			continue;
		char *reason = bng_asprintf("auto_stop_stale_after: no use for %llds", idle / 1000);
		if (bng_vm_stop_for(w->e, id, reason) == 0) {
			char at[32];
			bng_now_iso(at);
			pthread_mutex_lock(&w->lock);
			json_array_append_new(w->stopped, json_pack("{s:s,s:I,s:s}", "name", name, "idle_s",
								     (json_int_t)(idle / 1000), "at", at));
			if (json_array_size(w->stopped) > 10)
				json_array_remove(w->stopped, 0);
			pthread_mutex_unlock(&w->lock);
		}
		free(reason);
		forget(id);
	}
	json_decref(rows);
}

static void *watch_main(void *arg)
{
	bng_idle *w = arg;
	pthread_mutex_lock(&w->lock);
	while (!w->stopping) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += w->tick_ms / 1000;
		until.tv_nsec += (w->tick_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&w->wake, &w->lock, &until);
		if (w->stopping)
			break;
		pthread_mutex_unlock(&w->lock);
		scan(w);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

bng_idle *bng_idle_start(bng_engine *e, long long after_s)
{
	if (after_s <= 0)
		return NULL;
	bng_idle *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->e = e;
	w->after_ms = after_s * 1000;
	/* a VM stops within about a sixth of the limit after it, and no more
	 * than a look every second or less than one every half minute */
	w->tick_ms = w->after_ms / 6;
	if (w->tick_ms < 1000)
		w->tick_ms = 1000;
	if (w->tick_ms > 30000)
		w->tick_ms = 30000;
	w->stopped = json_array();
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &attr);
	pthread_condattr_destroy(&attr);
	w->thread_started = pthread_create(&w->thread, NULL, watch_main, w) == 0;
	if (!w->thread_started) {
		bng_idle_free(w);
		return NULL;
	}
	return w;
}

json_t *bng_idle_status(bng_idle *w)
{
	if (!w)
		return json_pack("{s:b}", "enabled", 0);
	pthread_mutex_lock(&w->lock);
	json_t *s = json_pack("{s:b,s:I,s:I,s:O}", "enabled", 1, "after_s", (json_int_t)(w->after_ms / 1000),
			      "check_every_s", (json_int_t)(w->tick_ms / 1000), "stopped", w->stopped);
	pthread_mutex_unlock(&w->lock);
	return s;
}

void bng_idle_free(bng_idle *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	if (w->thread_started)
		pthread_join(w->thread, NULL);
	json_decref(w->stopped);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	free(w);
}

/* The engine's own methods (engine.status, config.show, doctor,
 * store.check, rpc.methods) and debug.ticks: their table entries, with
 * parameters and one line of help, and the small ones themselves. Every
 * module keeps its own table (e.g. lib/vm/methods.c); docs/rpc.md lists them
 * all, in the order lib/modules.c registers them. */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const bng_method engine_methods[] = {
	{"engine.status", "", "version stamp, pid, uptime and paths of the engine", bng_m_engine_status, "0.1"},
	{"config.show", "", "resolved config with the source of every value", bng_m_config_show, "0.1"},
	{"doctor", "", "host checks: KVM, hypervisors, driver choice, state, config", bng_m_doctor, "0.1"},
	{"store.check", "", "validate the state database's migrations", bng_m_store_check, "0.1"},
	{"rpc.methods", "", "list the methods of this table", bng_m_rpc_methods, "0.1"},
};

const bng_module bng_engine_module = {.name = "engine", .methods = engine_methods, .nmethods = BNG_ARRAY_LEN(engine_methods)};

static const bng_method debug_methods[] = {
	{"debug.ticks", "count:int,interval_ms:int?", "emit count progress events (tests progress and cancel)",
	 bng_m_debug_ticks, "0.1"},
	{"debug.echo", "", "emit each input message as an event until one has \"eof\" (tests call input)",
	 bng_m_debug_echo, "0.2"},
};

const bng_module bng_debug_module = {.name = "debug", .methods = debug_methods, .nmethods = BNG_ARRAY_LEN(debug_methods)};

/* Whether this process runs as bangerd.service: systemd keeps a service's
 * processes in a cgroup named after the unit (what a process inherits, as
 * INVOCATION_ID, would also mark a daemon autostarted by a client that
 * itself runs under some service). A client must not replace such a
 * daemon: the service manager would not bring it back. */
static bool in_service_cgroup(void)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[1024];
	bool yes = false;
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		const char *last = strrchr(line, '/');
		yes |= last && !strcmp(last + 1, "bangerd.service");
	}
	if (f)
		fclose(f);
	return yes;
}

int bng_m_engine_status(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)params;
	(void)op;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double uptime = (double)(now.tv_sec - e->started.tv_sec) + (double)(now.tv_nsec - e->started.tv_nsec) / 1e9;
	char started[32];
	strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", gmtime(&e->started_wall));
	*result = json_pack("{s:s,s:s,s:s,s:s,s:i,s:s,s:f,s:s,s:s,s:s,s:i}", "version", banger_version_number(),
			    "commit", banger_version_commit(), "build_date", banger_version_date(), "stamp",
			    banger_version(), "pid", (int)getpid(), "started_at", started, "uptime_s", uptime,
			    "state_dir", e->paths.state_dir, "config_file", e->paths.config_file, "cache_dir",
			    e->paths.cache_dir, "schema_version", e->store.schema_version);
	json_object_set_new(*result, "supervised", json_boolean(in_service_cgroup()));
	for (size_t i = 0; i < e->nmodules; i++)
		if (e->modules[i]->status)
			e->modules[i]->status(e, *result);
	return 0;
}

int bng_m_config_show(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)params;
	(void)op;
	*result = bng_config_to_json(&e->config);
	return 0;
}

int bng_m_store_check(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)params;
	(void)op;
	return bng_store_check(e->paths.db, result);
}

int bng_m_rpc_methods(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)params;
	(void)op;
	json_t *list = json_array();
	for (size_t i = 0; i < e->nmodules; i++)
		for (size_t j = 0; j < e->modules[i]->nmethods; j++) {
			const bng_method *m = &e->modules[i]->methods[j];
			json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s}", "name", m->name, "params", m->params,
							      "summary", m->summary, "since", m->since ? m->since : "0.1"));
		}
	*result = json_pack("{s:o}", "methods", list);
	return 0;
}

int bng_m_debug_ticks(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)e;
	json_int_t count = json_integer_value(json_object_get(params, "count"));
	json_t *iv = json_object_get(params, "interval_ms");
	json_int_t interval = iv ? json_integer_value(iv) : 100;
	if (count < 0 || count > 100000)
		return bng_err(BANGER_EINVAL, "debug.ticks: count must be between 0 and 100000");
	if (interval < 0 || interval > 60000)
		return bng_err(BANGER_EINVAL, "debug.ticks: interval_ms must be between 0 and 60000");
	for (json_int_t i = 1; i <= count; i++) {
		int rc = bng_op_sleep(op, (int)interval);
		if (rc)
			return bng_err(rc, "debug.ticks: cancelled after %lld of %lld ticks", (long long)(i - 1),
				       (long long)count);
		bng_op_event(op, json_pack("{s:s,s:I,s:I}", "stage", "tick", "done", (json_int_t)i, "total", count));
	}
	*result = json_pack("{s:I}", "ticks", count);
	return 0;
}

int bng_m_debug_echo(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)e;
	(void)params;
	json_int_t count = 0;
	for (;;) {
		json_t *msg = bng_op_input(op);
		if (!msg) {
			int rc = bng_op_sleep(op, 5);
			if (rc)
				return rc;
			continue;
		}
		bool eof = json_is_true(json_object_get(msg, "eof"));
		bng_op_event(op, json_pack("{s:o}", "echo", msg));
		count++;
		if (eof)
			break;
	}
	*result = json_pack("{s:I}", "count", count);
	return 0;
}

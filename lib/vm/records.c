/* A VM's row in the store and what derives from it: reading and updating
 * the row, its state and runtime directories, and the stage events with
 * timings that create and boot report. Every other file of the vm module
 * reaches the row through these (vm_int.h). */
#include "vm_int.h"
#include "../store/store.h"

#include <stdlib.h>
#include <time.h>

static const char columns[] = "id, name, image_id, kernel_id, vcpu, memory_mib, disk_size, state, driver, vmm, ip, "
			      "mac, tap, nat, host_key, boot_id, error, stop_reason, created_at, started_at, init, sshd";

int bng_vm_get(bng_engine *e, const char *ref, json_t **vm)
{
	int rc = bng_store_get(&e->store, "vms", columns, ref, "vm", vm);
	if (!rc)
	{
		json_t *vmm = json_object_get(*vm, "vmm");
		if (json_is_string(vmm))
			json_object_set_new(*vm, "vmm", json_loads(json_string_value(vmm), 0, NULL));
		json_object_set_new(*vm, "nat", json_boolean(json_integer_value(json_object_get(*vm, "nat"))));
		json_object_set_new(*vm, "sshd", json_boolean(json_integer_value(json_object_get(*vm, "sshd"))));
	}
	return rc;
}

const char *bng_vm_str(json_t *vm, const char *key) { return json_string_value(json_object_get(vm, key)); }

/* Sets columns from fields ({"state": "running", "vmm": {...}}) on the row
 * and in vm. */
int bng_vm_update(bng_engine *e, json_t *vm, json_t *fields)
{
	const char *k;
	json_t *v;
	char *sql = bng_strdup("UPDATE vms SET ");
	const char *params[16];
	char *owned[16] = {0};
	int n = 0;
	json_object_foreach(fields, k, v) {
		char *next = bng_asprintf("%s%s%s = ?%d", sql, n ? ", " : "", k, n + 1);
		free(sql);
		sql = next;
		if (json_is_string(v))
			params[n] = json_string_value(v);
		else if (json_is_null(v))
			params[n] = NULL;
		else
			params[n] = owned[n] = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		n++;
	}
	char *full = bng_asprintf("%s WHERE id = ?%d", sql, n + 1);
	params[n] = bng_vm_str(vm, "id");
	int rc = bng_store_run(&e->store, full, n + 1, params);
	free(sql);
	free(full);
	for (int i = 0; i < n; i++)
		free(owned[i]);
	if (!rc)
		json_object_update(vm, fields);
	json_decref(fields);
	return rc;
}

char *bng_vm_dir(bng_engine *e, json_t *vm)
{
	return bng_asprintf("%s/vms/%s", e->paths.state_dir, bng_vm_str(vm, "id"));
}

char *bng_vm_run_dir(bng_engine *e, json_t *vm)
{
	return bng_asprintf("%s/%s", e->paths.runtime_dir, bng_vm_str(vm, "id"));
}

static double since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Reports a finished stage with how long it took. */
void bng_vm_stage(bng_op *op, const char *name, struct timespec *t0)
{
	bng_op_event(op, json_pack("{s:s,s:f}", "stage", name, "seconds", since(t0)));
	clock_gettime(CLOCK_MONOTONIC, t0);
}

/* The driver registry and the calls that turn empty vtable slots into
 * BANGER_EUNSUPPORTED. */
#include "vmm.h"
#include "firecracker.h"
#include "../core/proc.h"

#include <stdio.h>
#include <string.h>

/* Every driver banger knows, in the order `vmm = "auto"` should consider
 * them. A new driver adds its vtable here (and its file to meson.build). */
static const bng_vmm_driver *const drivers[] = {
	&bng_vmm_qemu,
	&bng_vmm_firecracker,
};

const bng_vmm_driver *bng_vmm_driver_get(const char *name)
{
	char known[128] = "";
	for (size_t i = 0; i < BNG_ARRAY_LEN(drivers); i++) {
		if (name && strcmp(drivers[i]->name, name) == 0)
			return drivers[i];
		size_t used = strlen(known);
		snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "", drivers[i]->name);
	}
	bng_err(BANGER_ECONFIG, "unknown VMM driver \"%s\": this build knows %s", name ? name : "", known);
	return NULL;
}

static int unsupported(const bng_vmm_driver *d, const char *what)
{
	return bng_err(BANGER_EUNSUPPORTED, "the %s driver cannot %s VMs", d->name, what);
}

int bng_vmm_pause(const bng_vmm_driver *d, json_t *state)
{
	if (!d || !state)
		return bng_err(BANGER_EINVAL, "pause: no driver or VM state");
	return d->pause ? d->pause(state) : unsupported(d, "pause");
}

int bng_vmm_resume(const bng_vmm_driver *d, json_t *state)
{
	if (!d || !state)
		return bng_err(BANGER_EINVAL, "resume: no driver or VM state");
	return d->resume ? d->resume(state) : unsupported(d, "resume");
}

int bng_vmm_snapshot(const bng_vmm_driver *d, json_t *state, const char *dir)
{
	if (!d || !state || !dir)
		return bng_err(BANGER_EINVAL, "snapshot: no driver, VM state or directory");
	return d->snapshot ? d->snapshot(state, dir) : unsupported(d, "snapshot");
}

bool bng_vmm_process_gone(json_t *state)
{
	json_int_t pid = json_integer_value(json_object_get(state, "pid"));
	/* qemu records its start time as proc_start, firecracker as start_time */
	json_t *start = json_object_get(state, "proc_start");
	if (!start)
		start = json_object_get(state, "start_time");
	return pid <= 0 || bng_proc_gone((pid_t)pid, (unsigned long long)json_integer_value(start));
}

void bng_vmm_kill_strays(const char *id, const char *run_dir)
{
	for (size_t i = 0; i < BNG_ARRAY_LEN(drivers); i++)
		if (drivers[i]->kill_strays)
			drivers[i]->kill_strays(id, run_dir);
}

/* The dispatch table: every API method, its parameters and one line of
 * help. Local and remote transports both end up here; docs/rpc.md lists the
 * same methods. */
#include "engine.h"
#include "../vm/tap_pool.h"

#include <stdlib.h>
#include <unistd.h>

const bng_method bng_methods[] = {
	{"engine.status", "", "version stamp, pid, uptime and paths of the engine", bng_m_engine_status},
	{"config.show", "", "resolved config with the source of every value", bng_m_config_show},
	{"doctor", "", "host checks: KVM, hypervisors, driver choice, state, config", bng_m_doctor},
	{"store.check", "", "validate the state database's migrations", bng_m_store_check},
	{"rpc.methods", "", "list the methods of this table", bng_m_rpc_methods},
	{"image.import", "name:str,tars:arr,size:str?,kernel:str?,source:str?",
	 "build an image from tars applied in order (docker export, OCI layers); source labels the origin",
	 bng_m_image_import},
	{"image.register", "name:str,rootfs:str,kernel:str?", "record an existing rootfs.ext4 as an image",
	 bng_m_image_register},
	{"image.build", "name:str?,suite:str?,minimal:bool?,mirror:str?,size:str?",
	 "build the default Debian image from the package mirror (debootstrap), cached by content",
	 bng_m_image_build},
	{"image.pull", "ref:str,name:str?,size:str?,kernel:str?",
	 "a catalog image by name, or an OCI image (docker-style ref) from its registry", bng_m_image_pull},
	{"image.catalog", "", "the image catalog, with which entries are pulled", bng_m_image_catalog},
	{"image.list", "", "images with their rootfs sizes", bng_m_image_list},
	{"image.show", "name:str", "one image by name or id", bng_m_image_show},
	{"image.rm", "name:str", "remove an image and its files", bng_m_image_rm},
	{"kernel.import", "name:str,from:str?,deb:str?",
	 "import a kernel from a directory or a Debian linux-image .deb (vmlinux + generated initramfs)",
	 bng_m_kernel_import},
	{"kernel.pull", "name:str", "a kernel bundle from the kernel catalog", bng_m_kernel_pull},
	{"kernel.list", "", "installed kernels", bng_m_kernel_list},
	{"kernel.catalog", "", "the kernel catalog, with which entries are pulled", bng_m_kernel_catalog},
	{"kernel.show", "name:str", "one kernel by name or id", bng_m_kernel_show},
	{"kernel.rm", "name:str", "remove a kernel and its files", bng_m_kernel_rm},
	{"vm.create", "name:str?,image:str?,kernel:str?,vcpu:int?,memory_mib:int?,disk_size:str?,start:bool?,nat:bool?",
	 "create (and boot) a VM; events: spec, then each stage with its seconds", bng_m_vm_create},
	{"vm.start", "name:str", "boot a stopped VM (its disk kept)", bng_m_vm_start},
	{"vm.stop", "name:str", "sync and power off, bounded wait, then kill", bng_m_vm_stop},
	{"vm.restart", "name:str", "stop then start (a new boot_id)", bng_m_vm_restart},
	{"vm.kill", "name:str,signal:str?", "signal the VMM (default KILL); the VM ends stopped", bng_m_vm_kill},
	{"vm.delete", "name:str", "kill and remove a VM with its disk", bng_m_vm_delete},
	{"vm.prune", "", "delete every VM that is not running", bng_m_vm_prune},
	{"vm.list", "all:bool?", "running VMs (all: every VM)", bng_m_vm_list},
	{"vm.show", "name:str", "one VM, with how to reach it over SSH", bng_m_vm_show},
	{"vm.logs", "name:str,tail_bytes:int?", "the guest's console output", bng_m_vm_logs},
	{"vm.exec", "name:str,argv:arr,stdin:str?,timeout_s:int?",
	 "run a command over SSH: exit_code, stdout, stderr", bng_m_vm_exec},
	{"vm.ports", "name:str", "listening ports in the guest (from the agent)", bng_m_vm_ports},
	{"vm.stats", "name:str", "VMM cpu time and memory, guest uptime", bng_m_vm_stats},
	{"vm.set", "name:str,vcpu:int?,memory_mib:int?,disk_size:str?", "change a stopped VM's spec", bng_m_vm_set},
	{"debug.ticks", "count:int,interval_ms:int?", "emit count progress events (tests progress and cancel)",
	 bng_m_debug_ticks},
};
const size_t bng_methods_count = BNG_ARRAY_LEN(bng_methods);

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
	json_object_set_new(*result, "tap_pool", e->tap_pool ? bng_tap_pool_status(e->tap_pool) : json_null());
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
	(void)e;
	(void)params;
	(void)op;
	json_t *list = json_array();
	for (size_t i = 0; i < bng_methods_count; i++)
		json_array_append_new(list, json_pack("{s:s,s:s,s:s}", "name", bng_methods[i].name, "params",
						      bng_methods[i].params, "summary", bng_methods[i].summary));
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

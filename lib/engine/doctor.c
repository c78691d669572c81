/* `doctor`: what this host can do, check by check, PASS/WARN/FAIL with a
 * reason and what to do about it. */
#include "engine.h"
#include "../core/units.h"
#include "../vmm/firecracker.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

typedef struct {
	json_t *checks;
	bng_op *op;
	int total;
} report;

/* Appends a row (taken over) and reports it as a check event. */
static void add_row(report *r, json_t *row)
{
	json_array_append_new(r->checks, row);
	bng_op_event(r->op, json_pack("{s:s,s:O,s:O,s:i,s:i}", "stage", "check", "name", json_object_get(row, "name"),
				      "status", json_object_get(row, "status"), "done", (int)json_array_size(r->checks),
				      "total", r->total));
}

static void add_fix(report *r, const char *name, const char *status, char *detail, const char *remedy)
{
	add_row(r, json_pack("{s:s,s:s,s:s,s:s*}", "name", name, "status", status, "detail", detail, "remedy", remedy));
	free(detail);
}

static void add(report *r, const char *name, const char *status, char *detail)
{
	add_fix(r, name, status, detail, NULL);
}

/* KVM is usable when /dev/kvm opens, speaks API 12 and creates a VM. */
static bool check_kvm(report *r)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		add(r, "kvm", "WARN",
		    e == ENOENT ? bng_strdup("/dev/kvm is missing: VMs run under QEMU TCG (slow); firecracker needs KVM")
				: bng_asprintf("cannot open /dev/kvm: %s (add your user to the 'kvm' group): VMs run under "
					     "QEMU TCG meanwhile (slow); firecracker needs KVM",
					     strerror(e)));
		return false;
	}
	int api = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION) {
		close(fd);
		add(r, "kvm", "WARN", bng_asprintf("/dev/kvm reports API version %d, expected %d", api, KVM_API_VERSION));
		return false;
	}
	int vm = ioctl(fd, KVM_CREATE_VM, 0);
	if (vm < 0) {
		int e = errno;
		close(fd);
		add(r, "kvm", "WARN", bng_asprintf("/dev/kvm cannot create a VM: %s", strerror(e)));
		return false;
	}
	close(vm);
	close(fd);
	add(r, "kvm", "PASS", bng_strdup("/dev/kvm usable (API 12, VM created)"));
	return true;
}

/* The jailer (config firecracker_jailer): root, a jailer next to
 * firecracker, and a jail filesystem (the VMs' state directories) that is
 * not nodev or noexec. */
static void check_jailer(report *r, bng_engine *e, const char *fc)
{
	if (!bng_config_bool(&e->config, "firecracker_jailer")) {
		add(r, "jailer", "PASS", bng_strdup("not used (firecracker_jailer is off): firecracker runs unjailed"));
		return;
	}
	if (geteuid() != 0) {
		add(r, "jailer", "FAIL", bng_asprintf("firecracker_jailer is on (config %s) but the jailer needs root: run "
						      "bangerd as root or turn it off", e->config.path));
		return;
	}
	char *jailer = NULL;
	if (fc) {
		char real[PATH_MAX];
		const char *next_to[2] = {fc, realpath(fc, real) ? real : fc};
		for (int i = 0; i < 2 && !jailer; i++) {
			const char *slash = strrchr(next_to[i], '/');
			char *cand = bng_asprintf("%.*s/jailer", (int)(slash - next_to[i]), next_to[i]);
			if (access(cand, X_OK) == 0)
				jailer = cand;
			else
				free(cand);
		}
	}
	char *vms = bng_asprintf("%s/vms", e->paths.state_dir);
	if (!jailer)
		add(r, "jailer", "FAIL", bng_asprintf("firecracker_jailer is on but there is no executable `jailer` next "
						      "to %s: install the one from the same Firecracker release", fc ? fc : "firecracker"));
	else if (bng_firecracker_check_jail_fs(vms) != 0)
		add(r, "jailer", "FAIL", bng_strdup(banger_error_last()));
	else
		add(r, "jailer", "PASS", bng_asprintf("%s; jails go in each VM's directory under %s (not nodev, not noexec)",
						      jailer, vms));
	free(jailer);
	free(vms);
}

int bng_m_doctor(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)params;
	report r = {.checks = json_array(), .op = op, .total = 9};
	const bng_config *cfg = &e->config;
	/* doctor_host.c's checks, then the modules' own (the vm. zone), reported last */
	json_t *more = json_array();
	bng_doctor_host_checks(e, more); /* privileges, tun, the programs banger runs, the service */
	for (size_t m = 0; m < e->nmodules; m++)
		if (e->modules[m]->doctor)
			e->modules[m]->doctor(e, more);
	r.total += (int)json_array_size(more);

	bool kvm = check_kvm(&r);
	/* /dev/kvm may open and still hang guests (nested PVM): the first VM
	 * boot probes for real, and that verdict wins */
	pthread_mutex_lock(&e->reserve_lock);
	int probed = e->kvm_usable;
	char *probe_why = e->kvm_why ? bng_strdup(e->kvm_why) : NULL;
	pthread_mutex_unlock(&e->reserve_lock);
	if (probed >= 0) {
		r.total++;
		add(&r, "kvm probe", probed ? "PASS" : "WARN",
		    bng_asprintf("a test boot under KVM %s%s%s", probed ? "worked" : "failed: VMs use TCG",
				 probe_why ? ": " : "", probe_why ? probe_why : ""));
		kvm = kvm && probed;
	}
	free(probe_why);

	const char *fc_cfg = bng_config_str(cfg, "firecracker_bin");
	char *fc = bng_find_exe(*fc_cfg ? fc_cfg : "firecracker");
	if (fc)
		add(&r, "firecracker", "PASS", bng_asprintf("%s", fc));
	else
		add(&r, "firecracker", "WARN",
		    *fc_cfg ? bng_asprintf("firecracker_bin %s is not executable (config %s)", fc_cfg, cfg->path)
			    : bng_strdup("firecracker not found on PATH: install it or set firecracker_bin; the qemu "
					 "driver is used meanwhile"));

	check_jailer(&r, e, fc);

	char *qemu = bng_find_exe("qemu-system-x86_64");
	if (qemu)
		add(&r, "qemu", "PASS", bng_strdup(qemu));
	else
		add(&r, "qemu", "WARN", bng_strdup("qemu-system-x86_64 not found: apt-get install qemu-system-x86"));

	/* which driver `vmm` selects, and whether it can run */
	const char *vmm = bng_config_str(cfg, "vmm");
	const char *driver = NULL;
	char *why = NULL;
	if (!strcmp(vmm, "firecracker") || (!strcmp(vmm, "auto") && fc && kvm)) {
		if (fc && kvm)
			driver = "firecracker";
		else
			why = bng_asprintf("vmm = \"firecracker\" needs %s", !fc ? "a firecracker binary" : "a usable /dev/kvm");
	} else if (qemu) {
		driver = kvm ? "qemu-kvm" : "qemu-tcg";
	} else {
		why = bng_strdup("no usable hypervisor: apt-get install qemu-system-x86 (or install firecracker on a KVM host)");
	}
	if (driver)
		add(&r, "driver", "PASS", bng_asprintf("vmm = \"%s\" selects %s", vmm, driver));
	else
		add(&r, "driver", "FAIL", why);
	if (driver)
		free(why);

	if (access("/dev/vhost-vsock", R_OK | W_OK) == 0)
		add(&r, "vsock", "PASS", bng_strdup("/dev/vhost-vsock available"));
	else
		add(&r, "vsock", "WARN", bng_strdup("/dev/vhost-vsock absent: the qemu driver reaches the guest agent over virtio-serial"));

	if (bng_dir_writable(e->paths.state_dir) == 0)
		add(&r, "state", "PASS", bng_asprintf("%s (schema v%d)", e->paths.db, e->store.schema_version));
	else
		add(&r, "state", "FAIL", bng_strdup(banger_error_last()));

	size_t nwarn = json_array_size(cfg->warnings);
	if (!cfg->file_found)
		add(&r, "config", "PASS", bng_asprintf("no %s: using defaults", cfg->path));
	else if (nwarn) {
		char *others = nwarn > 1 ? bng_asprintf(" (and %zu more)", nwarn - 1) : bng_strdup("");
		add_fix(&r, "config", "WARN",
			bng_asprintf("%s: %s%s", cfg->path, json_string_value(json_array_get(cfg->warnings, 0)), others),
			nwarn > 1 ? "config-show" : NULL);
		free(others);
	} else {
		add(&r, "config", "PASS", bng_strdup(cfg->path));
	}

	char *disk = bng_format_size((uint64_t)bng_config_int(cfg, "vm_defaults.disk_size"));
	add(&r, "vm defaults", "PASS",
	    bng_asprintf("%lld vcpu (%s) | %lld MiB (%s) | %s disk (%s); override in %s [vm_defaults]",
			 (long long)bng_config_int(cfg, "vm_defaults.vcpu"),
			 json_string_value(json_object_get(cfg->sources, "vm_defaults.vcpu")),
			 (long long)bng_config_int(cfg, "vm_defaults.memory_mib"),
			 json_string_value(json_object_get(cfg->sources, "vm_defaults.memory_mib")), disk,
			 json_string_value(json_object_get(cfg->sources, "vm_defaults.disk_size")), cfg->path));
	free(disk);

	size_t i;
	json_t *c;
	json_array_foreach(more, i, c) add_row(&r, json_incref(c)); /* the host checks' rows as they are */
	json_decref(more);

	*result = json_pack("{s:o,s:s?}", "checks", r.checks, "driver", driver);
	free(fc);
	free(qemu);
	return 0;
}

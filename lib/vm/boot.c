/* The hypervisor side of a VM: picking its driver (Firecracker, or qemu
 * with or without KVM), booting it and waiting for its agent and SSH,
 * what a wait on its agent watches, and halting it (graceful through the
 * agent, then killed), including VMM processes nobody recorded. */
#include "vm_int.h"
#include "../core/proc.h"
#include "../guest/agent.h"
#include "../image/image.h"
#include "../kernel/kernel.h"
#include "../kernel/store.h"
#include "../net/net.h"
#include "../ssh/ssh.h"
#include "idle.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AGENT_TIMEOUT_MS 600000 /* 10 TCG guests on 2 cores take minutes to boot */
#define SSH_TIMEOUT_MS 90000
#define STOP_TIMEOUT_MS 30000

/* Which driver runs this VM, and whether qemu may use KVM (a real probe:
 * /dev/kvm may open yet hang guests). Cached for the engine's lifetime. */
static int pick_driver(bng_engine *e, json_t *kernel, bng_op *op, const char **driver, bool *kvm, char **binary)
{
	const char *vmm = bng_config_str(&e->config, "vmm");
	const char *fc_bin = bng_config_str(&e->config, "firecracker_bin");
	char *fc = bng_find_exe(*fc_bin ? fc_bin : "firecracker");
	*binary = NULL;
	if (!strcmp(vmm, "firecracker") || (!strcmp(vmm, "auto") && fc && access("/dev/kvm", R_OK | W_OK) == 0)) {
		if (!fc)
			return bng_err(BANGER_EUNSUPPORTED, "vmm = \"firecracker\" but no firecracker binary was found: "
							     "install it or set firecracker_bin");
		*driver = "firecracker";
		*binary = fc;
		*kvm = true;
		return 0;
	}
	free(fc);
	*driver = "qemu";
	const char *accel = bng_config_str(&e->config, "qemu_accel");
	if (!strcmp(accel, "tcg") || !strcmp(accel, "kvm")) {
		*kvm = !strcmp(accel, "kvm");
		return 0;
	}
	pthread_mutex_lock(&e->reserve_lock);
	int known = e->kvm_usable;
	pthread_mutex_unlock(&e->reserve_lock);
	if (known < 0) {
		bool usable = false;
		char *why = NULL;
		bng_op_event(op, json_pack("{s:s}", "stage", "probe-kvm"));
		if (bng_qemu_kvm_usable(bng_jstr(kernel, "dir"), NULL, 15000, &usable, &why) != 0)
			usable = false;
		pthread_mutex_lock(&e->reserve_lock);
		e->kvm_usable = usable;
		free(e->kvm_why);
		e->kvm_why = why;
		pthread_mutex_unlock(&e->reserve_lock);
		known = usable;
	}
	*kvm = known == 1;
	return 0;
}

/* The driver's agent channel ({"kind","path"} in the VMM state): its
 * socket path, and whether it is Firecracker's hybrid vsock. */
const char *bng_vm_agent_channel(json_t *vmm_state, bool *vsock)
{
	json_t *agent = json_object_get(vmm_state, "agent");
	*vsock = !strcmp(json_string_value(json_object_get(agent, "kind")) ?: "", "vsock_uds");
	return json_string_value(json_object_get(agent, "path"));
}

const bng_vmm_driver *bng_vm_driver_of(const bng_vm_row *vm)
{
	return bng_vmm_driver_get(vm->driver);
}

static bool vmm_gone(void *state) { return bng_vmm_process_gone(state); }

/* A boot wait's failure, naming the stage; when the VM itself went away,
 * the console's last lines say why (a panic, a failed mount). */
static int boot_failed(int rc, const char *stage_name, const char *console)
{
	if (rc == BANGER_ECANCELED)
		return rc;
	char *why = bng_strdup(banger_error_last());
	char *tail = rc == BANGER_EIO ? bng_file_tail(console, 0, 6) : bng_strdup("");
	rc = bng_err(rc, "boot failed at stage %s: %s%s%s (console: %s)", stage_name, why,
		     *tail ? "; its console's last lines: " : "", tail, console);
	free(tail);
	free(why);
	return rc;
}

/* Boots the VM (its row holds everything) and waits for the agent and SSH.
 * A VM being created stays "creating" until it is ready, so a daemon that
 * dies half way removes it at next start instead of adopting it. */
int bng_vm_boot(bng_engine *e, bng_vm_row *vm, bng_op *op, struct timespec *t0)
{
	json_t *image = NULL, *kernel = NULL;
	int rc = bng_image_get(e, vm->image_id, &image);
	if (!rc)
		rc = bng_kernel_get(e, vm->kernel_id, &kernel);
	bool rebuilt = false;
	if (!rc && (rc = bng_kernel_initramfs_refresh(bng_jstr(kernel, "dir"), bng_jstr(kernel, "version"),
						       &rebuilt)) == 0 && rebuilt)
		bng_op_event(op, json_pack("{s:s,s:s}", "stage", "initramfs", "kernel", bng_jstr(kernel, "name")));
	const char *driver_name = NULL;
	bool kvm = false;
	char *binary = NULL;
	if (!rc)
		rc = pick_driver(e, kernel, op, &driver_name, &kvm, &binary);
	bool creating = !strcmp(vm->state, "creating");
	if (!rc && !creating) { /* create sets the network up before the disk */
		rc = bng_vm_net_setup(e, vm);
		if (!rc)
			bng_vm_stage(op, "network", t0);
	}
	if (!rc && vm->nat && (rc = bng_vm_nat_sync(e)) != 0)
		rc = bng_err(rc, "%s (needed by the VM's nat)", banger_error_last());
	char *dir = bng_vm_dir(e, vm), *rdir = bng_vm_run_dir(e, vm);
	char *overlay = bng_asprintf("%s/overlay.ext4", dir);
	char *console = bng_asprintf("%s/console.log", dir);
	char *vmmlog = bng_asprintf("%s/vmm.log", dir);
	if (!rc && !creating)
		rc = bng_vm_refresh_agent(overlay);
	if (!rc) {
		bng_rm_rf(rdir);
		rc = bng_mkdir_p(rdir, 0700);
	}
	json_t *state = NULL;
	if (!rc) {
		uint32_t net;
		int prefix = 24;
		bng_net_parse_cidr(bng_config_str(&e->config, "cidr"), &net, &prefix);
		/* banger's own init: the agent as PID 1 (guest/agent/init.c) */
		bool own_init = !strcmp(vm->init ?: "", "banger");
		const char *extra = bng_config_str(&e->config, "kernel_args");
		char *cmdline = bng_asprintf("%s%sbanger.root=/dev/vda banger.overlay=/dev/vdb banger.ip=%s/%d,%s,%s "
					     "systemd.hostname=%s%s",
					     extra, *extra ? " " : "", vm->ip, prefix, bng_config_str(&e->config, "bridge_ip"),
					     bng_config_str(&e->config, "default_dns"), vm->name,
					     own_init ? " banger.init=\"/usr/local/libexec/banger-agent --init\"" : "");
		bng_vm_config cfg = {
			.id = vm->id, .run_dir = rdir, .console_log = console, .process_log = vmmlog,
			.vcpus = vm->vcpu, .mem_mib = vm->memory_mib,
			.kernel_dir = bng_jstr(kernel, "dir"), .cmdline = cmdline,
			.disks = {{bng_jstr(image, "rootfs"), true}, {overlay, false}}, .ndisks = 2,
			.tap = vm->tap, .mac = vm->mac, .binary = binary, .kvm = kvm,
			.jailer = bng_config_bool(&e->config, "firecracker_jailer"),
			.jail_uid = (uid_t)bng_config_int(&e->config, "firecracker_uid"),
			.jail_gid = (gid_t)bng_config_int(&e->config, "firecracker_gid"),
			.log_max = bng_config_int(&e->config, "firecracker_log_max"),
		};
		const bng_vmm_driver *d = bng_vmm_driver_get(driver_name);
		rc = d ? d->start(&cfg, op, &state) : bng_err(BANGER_EUNSUPPORTED, "no %s driver", driver_name);
		free(cmdline);
	}
	if (!rc) {
		char started[32];
		bng_now_iso(started);
		bng_vm_put(&vm->state, creating ? "creating" : "starting");
		bng_vm_put(&vm->driver, driver_name);
		bng_vm_put(&vm->started_at, started);
		json_t *was = vm->vmm;
		vm->vmm = json_incref(state);
		rc = bng_vm_save(e, vm, BNG_VM_STATE | BNG_VM_DRIVER | BNG_VM_VMM | BNG_VM_STARTED_AT);
		if (rc) { /* unrecorded: a failed create then removes it as a stray, as a stop would */
			json_decref(vm->vmm);
			vm->vmm = was;
		} else {
			json_decref(was);
		}
		bng_vm_stage(op, "boot", t0);
	}
	json_t *health = NULL;
	bool vsock = false;
	const char *agent = bng_vm_agent_channel(state, &vsock);
	/* a guest that panics or reboots ends its VMM: every wait sees it at once */
	bng_agent_watch watch = {.op = op, .vm_gone = vmm_gone, .ud = state};
	if (!rc) {
		rc = bng_agent_wait_healthy(agent, vsock, AGENT_TIMEOUT_MS, &watch, &health);
		if (rc)
			rc = boot_failed(rc, "agent", console);
	}
	/* under banger's init the agent says whether it started an sshd: a
	 * guest without one is reached through the agent alone */
	json_t *has_sshd = json_object_get(health, "sshd");
	bool sshd = !json_is_boolean(has_sshd) || json_is_true(has_sshd);
	if (!rc) {
		bng_vm_put(&vm->boot_id, bng_jstr(health, "boot_id"));
		vm->sshd = sshd;
		rc = bng_vm_save(e, vm, BNG_VM_BOOT_ID | BNG_VM_SSHD);
		bng_vm_stage(op, "agent", t0);
	}
	/* a busy host boots slowly: the agent tells when sshd listens */
	if (!rc && sshd && (rc = bng_agent_wait_sshd(agent, vsock, AGENT_TIMEOUT_MS, &watch)) != 0)
		rc = boot_failed(rc, "ssh", console);
	/* With the host key made at create and pinned, a listening sshd is
	 * ready: a handshake here would only repeat the caller's own (one SSH
	 * session costs seconds of an emulated CPU). A VM from before keys were
	 * made at create learns and pins its key in a handshake, bounded. */
	if (!rc && sshd && !vm->host_key) {
		bng_ssh_target t = {.host = vm->ip, .port = 22, .user = "root",
				    .key_path = bng_config_str(&e->config, "ssh_key_path")};
		char *host_key = NULL;
		rc = bng_ssh_wait(&t, SSH_TIMEOUT_MS, op, &host_key);
		if (rc)
			rc = bng_err(rc, "%s; the VM '%s' is kept for a post-mortem", banger_error_last(),
				     vm->name);
		else
			rc = bng_vm_set(e, vm, BNG_VM_HOST_KEY, host_key);
		free(host_key);
	}
	if (!rc) {
		if (sshd)
			bng_vm_stage(op, "ssh", t0);
		bng_vm_put(&vm->state, "running");
		bng_vm_put(&vm->error, NULL);
		bng_vm_put(&vm->stop_reason, NULL);
		rc = bng_vm_save(e, vm, BNG_VM_STATE | BNG_VM_ERROR | BNG_VM_STOP_REASON);
		bng_vm_activity(vm->id, 0); /* its idle clock starts at boot */
	}
	json_t *identity = NULL;
	if (!rc && bng_vm_identity_sync(e, vm, op, &identity) == 0)
		bng_vm_stage(op, "identity", t0);
	json_decref(identity);
	if (rc && strcmp(vm->state, "creating")) {
		char *msg = bng_strdup(banger_error_last());
		bng_vm_put(&vm->state, "error");
		bng_vm_put(&vm->error, msg);
		bng_vm_save(e, vm, BNG_VM_STATE | BNG_VM_ERROR);
		bng_err(rc, "%s", msg);
		free(msg);
	}
	json_decref(health);
	json_decref(state);
	json_decref(image);
	json_decref(kernel);
	free(binary);
	free(dir);
	free(rdir);
	free(overlay);
	free(console);
	free(vmmlog);
	return rc;
}

/* Kills any process whose command line names this VM's runtime directory:
 * a VMM the daemon started but died before recording (its pid is then
 * known to nobody else). */
void bng_vm_kill_run_dir_strays(bng_engine *e, const bng_vm_row *vm)
{
	char *rdir = bng_vm_run_dir(e, vm);
	char *needle = bng_asprintf("%s/", rdir);
	pid_t killed[16];
	size_t nkilled = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 1 || pid == getpid())
			continue;
		char *path = bng_asprintf("/proc/%ld/cmdline", pid);
		char *text = NULL;
		size_t len = 0;
		if (bng_read_file(path, &text, &len) == 0) {
			for (size_t i = 0; i + 1 < len; i++)
				if (!text[i])
					text[i] = ' '; /* NUL-separated arguments */
			if (strstr(text, needle) && kill((pid_t)pid, SIGKILL) == 0 && nkilled < BNG_ARRAY_LEN(killed))
				killed[nkilled++] = (pid_t)pid;
		}
		free(text);
		free(path);
	}
	if (d)
		closedir(d);
	/* until they are gone (bounded): a VMM still exiting holds its disk's
	 * write lock, and the next start of this VM would trip over it */
	for (long long until = bng_now_ms() + 3000; nkilled && bng_now_ms() < until;) {
		size_t left = 0;
		for (size_t i = 0; i < nkilled; i++) {
			char st = 0;
			if (bng_proc_stat(killed[i], &st, NULL) == 0 && st != 'Z')
				killed[left++] = killed[i];
		}
		nkilled = left;
		if (nkilled)
			usleep(10000);
	}
	free(needle);
	free(rdir);
}

/* Stops the VMM: graceful (agent sync + poweroff, bounded wait), then kill.
 * Leaves the row stopped and the tap gone. */
int bng_vm_halt(bng_engine *e, bng_vm_row *vm, bool graceful, int sig)
{
	json_t *state = vm->vmm;
	const bng_vmm_driver *d = bng_vm_driver_of(vm);
	if (d && json_is_object(state) && d->alive(state)) {
		int rc = BANGER_ETIMEDOUT;
		bool vsock = false;
		const char *path = bng_vm_agent_channel(state, &vsock);
		if (path) /* its commands end now; the channel takes one client: ours */
			bng_agent_link_forget(path);
		/* a daemon that dies from here on must not leave "running" on a
		 * guest told to power off: the next engine finishes the stop */
		bool was_running = !strcmp(vm->state, "running");
		if (graceful && was_running)
			bng_vm_set(e, vm, BNG_VM_STATE, "stopping");
		if (graceful) {
			int fd = -1;
			json_t *reply = NULL;
			/* the guest syncs its disks first: nothing written is lost; then
			 * it ends the way that makes this VMM exit (poweroff, or reboot
			 * where a reset is the only way out) */
			if (bng_agent_connect(path, vsock, 2000, &fd) == 0) {
				bng_agent_call(fd, "sync", 10000, &reply);
				json_decref(reply);
				reply = NULL;
				bng_agent_call(fd, d->stop_op ? d->stop_op : "poweroff", 5000, &reply);
				json_decref(reply);
				close(fd);
			}
			rc = d->shutdown(state, STOP_TIMEOUT_MS);
		}
		if (rc)
			rc = d->kill(state, sig ? sig : SIGKILL);
		if (rc && d->alive(state)) {
			if (graceful && was_running)
				bng_vm_set(e, vm, BNG_VM_STATE, "running");
			return rc;
		}
	}
	/* the VMM is gone (or was already): the driver takes back what it
	 * handed over (a jail's file ownership) and removes what it left;
	 * any VMM still running for this VM is one nobody recorded */
	if (d && json_is_object(state) && d->release)
		d->release(state);
	char *rdir = bng_vm_run_dir(e, vm);
	bng_vmm_kill_strays(vm->id, rdir);
	/* any driver's: a start killed inside the driver's start left a VMM
	 * that the row (still "stopped") does not name */
	bng_vm_kill_run_dir_strays(e, vm);
	bng_vm_net_teardown(e, vm);
	bng_rm_rf(rdir);
	free(rdir);
	return bng_vm_set(e, vm, BNG_VM_STATE, "stopped");
}

bng_agent_watch bng_vm_watch(const bng_vm_row *vm, bng_op *op)
{
	return (bng_agent_watch){.op = op, .vm_gone = vmm_gone, .ud = vm->vmm};
}

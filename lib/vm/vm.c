/* The VM lifecycle. A VM is a row (state, resources) plus:
 *   <state>/vms/<id>/overlay.ext4  the per-VM writable disk (sparse, O(1) to
 *                                  create); banger's initramfs stacks it over
 *                                  the image's read-only base with overlayfs
 *   <state>/vms/<id>/console.log   the guest's serial console
 *   <state>/vms/<id>/vmm.log       the VMM's own output
 *   <runtime>/<id>/                control and agent sockets
 * Create and boot report stages (resolve, network, disk, boot, agent, ssh,
 * ready) with their timings. */
#include "vm.h"
#include "../core/proc.h"
#include "../core/sha256.h"
#include "../core/units.h"
#include "../catalog/catalog.h"
#include "../fs/ext4.h"
#include "../guest/agent.h"
#include "../guest/link.h"
#include "../image/image.h"
#include "../kernel/store.h"
#include "../net/net.h"
#include "../ssh/ssh.h"
#include "../vmm/vmm.h"
#include "idle.h"
#include "tap_pool.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AGENT_TIMEOUT_MS 600000 /* 10 TCG guests on 2 cores take minutes to boot */
#define SSH_TIMEOUT_MS 90000
#define STOP_TIMEOUT_MS 30000

static const char columns[] = "id, name, image_id, kernel_id, vcpu, memory_mib, disk_size, state, driver, vmm, ip, "
			      "mac, tap, nat, host_key, boot_id, error, stop_reason, created_at, started_at, init, sshd";

/* ---- rows ---- */

static int vm_get(bng_engine *e, const char *ref, json_t **vm)
{
	int rc = bng_store_get(&e->store, "vms", columns, ref, "vm", "banger vm list --all", vm);
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

static const char *S(json_t *vm, const char *key) { return json_string_value(json_object_get(vm, key)); }

/* Sets columns from fields ({"state": "running", "vmm": {...}}) on the row
 * and in vm. */
static int vm_update(bng_engine *e, json_t *vm, json_t *fields)
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
	params[n] = S(vm, "id");
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

static char *vm_dir(bng_engine *e, json_t *vm) { return bng_asprintf("%s/vms/%s", e->paths.state_dir, S(vm, "id")); }
static char *run_dir(bng_engine *e, json_t *vm) { return bng_asprintf("%s/%s", e->paths.runtime_dir, S(vm, "id")); }

static double since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Reports a finished stage with how long it took. */
static void stage(bng_op *op, const char *name, struct timespec *t0)
{
	bng_op_event(op, json_pack("{s:s,s:f}", "stage", name, "seconds", since(t0)));
	clock_gettime(CLOCK_MONOTONIC, t0);
}

/* ---- networking ---- */

/* Gives a VM that is about to boot a tap of its own, warm from the pool
 * when it has one; the row records it until the VM stops. */
static int net_setup(bng_engine *e, json_t *vm)
{
	char tap[16];
	bool warm = false;
	int rc = bng_tap_pool_take(e->tap_pool, tap, &warm);
	if (!rc) {
		rc = vm_update(e, vm, json_pack("{s:s}", "tap", tap));
		if (rc)
			bng_net_link_delete_if_exists(tap);
	}
	if (!rc)
		bng_vm_dns_guest(e); /* the bridge exists now */
	return rc;
}

/* The "ip" column of a query's rows, as a JSON array. */
static int query_ips(bng_engine *e, const char *sql, json_t **ips)
{
	json_t *rows = NULL, *row;
	int rc = bng_store_query(&e->store, &rows, sql, 0, NULL);
	size_t i;
	*ips = rc ? NULL : json_array();
	json_array_foreach(rows, i, row) json_array_append(*ips, json_object_get(row, "ip"));
	json_decref(rows);
	return rc;
}

/* Makes the engine's NAT chain masquerade exactly the VMs that have NAT
 * and a network right now (a tap). One sync at a time: each one writes the
 * whole chain from the rows it read. */
static int nat_sync(bng_engine *e)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&lock);
	json_t *ips = NULL;
	int rc = query_ips(e, "SELECT ip FROM vms WHERE nat = 1 AND tap != '' ORDER BY ip", &ips);
	if (!rc)
		rc = bng_net_nat_sync(e->net_tag, bng_config_str(&e->config, "bridge_name"), ips);
	json_decref(ips);
	pthread_mutex_unlock(&lock);
	return rc;
}

/* Deletes the VM's tap; the row forgets it, so a stale name never reaches a
 * tap the pool has since handed to another VM. */
static void net_teardown(bng_engine *e, json_t *vm)
{
	if (S(vm, "tap") && *S(vm, "tap")) {
		bng_net_link_delete_if_exists(S(vm, "tap"));
		vm_update(e, vm, json_pack("{s:s}", "tap", ""));
		if (json_is_true(json_object_get(vm, "nat")))
			nat_sync(e);
	}
}

/* ---- the per-VM disk ---- */

/* No start limit: systemd's default gives up after 5 quick failures, and
 * then nothing in the guest answers the host again. */
static const char agent_unit[] = "[Unit]\nDescription=banger guest agent\nDefaultDependencies=no\nStartLimitIntervalSec=0\n"
				 "After=systemd-udevd.service\n\n[Service]\nExecStart=/usr/local/libexec/banger-agent\n"
				 "Restart=always\nRestartSec=1\n\n[Install]\nWantedBy=sysinit.target\n";

/* Images without sshd get one on first boot (vm create --nat), installed by
 * guest/first-boot/banger-first-boot while its marker exists. */
extern const char bng_first_boot_script[]; /* first_boot.c, generated */
static const char first_boot_unit[] =
	"[Unit]\nDescription=banger: install an SSH server on first boot\n"
	"ConditionPathExists=/var/lib/banger/first-boot-pending\nAfter=network.target\n\n"
	"[Service]\nType=oneshot\nExecStart=/usr/local/libexec/banger-first-boot\n\n"
	"[Install]\nWantedBy=multi-user.target\n";

/* Puts program `name` (data) in the VM's layer as /usr/local/libexec/<name>
 * with its systemd unit <name>.service, enabled for `target`. */
static int put_guest_service(bng_ext4 *fs, const char *name, const void *data, size_t len, const char *unit,
			     const char *target)
{
	char *exe = bng_asprintf("upper/usr/local/libexec/%s", name);
	char *unit_path = bng_asprintf("upper/etc/systemd/system/%s.service", name);
	char *wants = bng_asprintf("upper/etc/systemd/system/%s.wants/%s.service", target, name);
	int rc = bng_ext4_put_file(fs, exe, data, len, 0755, 0, 0);
	if (!rc)
		rc = bng_ext4_put_file(fs, unit_path, unit, strlen(unit), 0644, 0, 0);
	if (!rc)
		rc = bng_ext4_put_symlink(fs, wants, unit_path + strlen("upper"));
	free(exe);
	free(unit_path);
	free(wants);
	return rc;
}

/* The guest agent binary: $BANGER_AGENT, the build tree, the install dir. */
static char *agent_binary(void)
{
	const char *env = getenv("BANGER_AGENT");
	if (env && *env)
		return bng_strdup(env);
#ifdef BANGER_BUILD_AGENT
	if (access(BANGER_BUILD_AGENT, X_OK) == 0)
		return bng_strdup(BANGER_BUILD_AGENT);
#endif
#ifdef BANGER_LIBEXEC_AGENT
	if (access(BANGER_LIBEXEC_AGENT, X_OK) == 0)
		return bng_strdup(BANGER_LIBEXEC_AGENT);
#endif
	return NULL;
}

/* Puts this banger's guest agent and its unit in the VM's layer. */
static int put_agent(bng_ext4 *fs)
{
	char *agent = agent_binary(), *data = NULL;
	size_t len = 0;
	int rc = agent ? bng_read_file(agent, &data, &len)
		       : bng_err(BANGER_ENOTFOUND, "the guest agent (banger-agent) was not found: reinstall banger or "
						   "set BANGER_AGENT=/path/to/banger-agent");
	if (!rc)
		rc = put_guest_service(fs, "banger-agent", data, len, agent_unit, "sysinit.target");
	free(data);
	free(agent);
	return rc;
}

/* Every later boot puts the agent in again: the guest always runs the agent
 * of the banger that talks to it, so an upgrade reaches VMs made before it
 * (a few ms: one file into the stopped VM's own disk). */
static int refresh_agent(const char *overlay)
{
	bng_ext4 *fs;
	int rc = bng_ext4_open(&fs, overlay);
	if (rc)
		return rc;
	rc = put_agent(fs);
	if (rc) {
		bng_ext4_abort(fs);
		return rc;
	}
	return bng_ext4_close(fs);
}

/* Creates the sparse overlay disk and writes what makes this VM itself
 * into its upper layer: SSH key, hostname, resolver, the guest agent. The
 * image's base is never touched. */
static int make_overlay(bng_engine *e, json_t *vm, const char *path, const char *pubkey, const char *host_key,
			bool first_boot)
{
	bng_ext4 *fs;
	int rc = bng_ext4_create(&fs, path, (uint64_t)json_integer_value(json_object_get(vm, "disk_size")), 0);
	if (rc)
		return rc;
	char *keys = bng_asprintf("%s banger\n", pubkey); /* "banger": replaced when the key changes */
	char *hosts = bng_asprintf("127.0.0.1 localhost\n127.0.1.1 %s\n", S(vm, "name"));
	char *hostname = bng_asprintf("%s\n", S(vm, "name"));
	char *resolv = bng_asprintf("nameserver %s\n", bng_config_str(&e->config, "default_dns"));
	rc = bng_ext4_put_dir(fs, "upper", 0755, 0, 0);
	if (!rc)
		rc = bng_ext4_put_dir(fs, "upper/root", 0700, 0, 0);
	if (!rc)
		rc = bng_ext4_put_dir(fs, "upper/root/.ssh", 0700, 0, 0);
	if (!rc)
		rc = bng_ext4_put_file(fs, "upper/root/.ssh/authorized_keys", keys, strlen(keys), 0600, 0, 0);
	if (!rc)
		rc = bng_ext4_put_file(fs, "upper/etc/hostname", hostname, strlen(hostname), 0644, 0, 0);
	if (!rc)
		rc = bng_ext4_put_file(fs, "upper/etc/hosts", hosts, strlen(hosts), 0644, 0, 0);
	if (!rc)
		rc = bng_ext4_put_file(fs, "upper/etc/resolv.conf", resolv, strlen(resolv), 0644, 0, 0);
	if (!rc) /* its host key, made on the host; the image's keygen unit then has nothing to do */
		rc = bng_ext4_put_file(fs, "upper/etc/ssh/ssh_host_ed25519_key", host_key, strlen(host_key), 0600, 0, 0);
	if (!rc) {
		char *pub = bng_asprintf("%s\n", S(vm, "host_key"));
		rc = bng_ext4_put_file(fs, "upper/etc/ssh/ssh_host_ed25519_key.pub", pub, strlen(pub), 0644, 0, 0);
		free(pub);
	}
	if (!rc) /* reaps LVM snapshots of e2scrub, which a VM has none of: half a minute of an emulated CPU at boot */
		rc = bng_ext4_put_symlink(fs, "upper/etc/systemd/system/e2scrub_reap.service", "/dev/null");
	if (!rc && first_boot)
		rc = put_guest_service(fs, "banger-first-boot", bng_first_boot_script, strlen(bng_first_boot_script),
				       first_boot_unit, "multi-user.target");
	if (!rc && first_boot)
		rc = bng_ext4_put_file(fs, "upper/var/lib/banger/first-boot-pending", "", 0, 0644, 0, 0);
	if (!rc)
		rc = put_agent(fs);
	free(keys);
	free(hosts);
	free(hostname);
	free(resolv);
	if (rc) {
		bng_ext4_abort(fs);
	} else {
		rc = bng_ext4_close(fs);
	}
	if (rc) /* name the disk: a bare "cannot look up system" says nothing of which */
		rc = bng_err(rc, "cannot write the VM's disk %s: %s", path, banger_error_last());
	return rc;
}

/* ---- the hypervisor ---- */

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
		if (bng_qemu_kvm_usable(S(kernel, "dir"), NULL, 15000, &usable, &why) != 0)
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
static const char *agent_channel(json_t *vmm_state, bool *vsock)
{
	json_t *agent = json_object_get(vmm_state, "agent");
	*vsock = !strcmp(json_string_value(json_object_get(agent, "kind")) ?: "", "vsock_uds");
	return json_string_value(json_object_get(agent, "path"));
}

static const bng_vmm_driver *driver_of(json_t *vm)
{
	return bng_vmm_driver_get(S(vm, "driver"));
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
static int boot(bng_engine *e, json_t *vm, bng_op *op, struct timespec *t0)
{
	json_t *image = NULL, *kernel = NULL;
	int rc = bng_image_get(e, S(vm, "image_id"), &image);
	if (!rc)
		rc = bng_kernel_get(e, S(vm, "kernel_id"), &kernel);
	const char *driver_name = NULL;
	bool kvm = false;
	char *binary = NULL;
	if (!rc)
		rc = pick_driver(e, kernel, op, &driver_name, &kvm, &binary);
	bool creating = !strcmp(S(vm, "state"), "creating");
	if (!rc && !creating) { /* create sets the network up before the disk */
		rc = net_setup(e, vm);
		if (!rc)
			stage(op, "network", t0);
	}
	if (!rc && json_is_true(json_object_get(vm, "nat")) && (rc = nat_sync(e)) != 0)
		rc = bng_err(rc, "%s (or create the VM without --nat)", banger_error_last());
	char *dir = vm_dir(e, vm), *rdir = run_dir(e, vm);
	char *overlay = bng_asprintf("%s/overlay.ext4", dir);
	char *console = bng_asprintf("%s/console.log", dir);
	char *vmmlog = bng_asprintf("%s/vmm.log", dir);
	if (!rc && !creating)
		rc = refresh_agent(overlay);
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
		bool own_init = !strcmp(S(vm, "init") ?: "", "banger");
		char *cmdline = bng_asprintf("banger.root=/dev/vda banger.overlay=/dev/vdb banger.ip=%s/%d,%s,%s "
					     "systemd.hostname=%s%s",
					     S(vm, "ip"), prefix, bng_config_str(&e->config, "bridge_ip"),
					     bng_config_str(&e->config, "default_dns"), S(vm, "name"),
					     own_init ? " banger.init=\"/usr/local/libexec/banger-agent --init\"" : "");
		bng_vm_config cfg = {
			.id = S(vm, "id"), .run_dir = rdir, .console_log = console, .process_log = vmmlog,
			.vcpus = (int)json_integer_value(json_object_get(vm, "vcpu")),
			.mem_mib = (int)json_integer_value(json_object_get(vm, "memory_mib")),
			.kernel_dir = S(kernel, "dir"), .cmdline = cmdline,
			.disks = {{S(image, "rootfs"), true}, {overlay, false}}, .ndisks = 2,
			.tap = S(vm, "tap"), .mac = S(vm, "mac"), .binary = binary, .kvm = kvm,
		};
		const bng_vmm_driver *d = bng_vmm_driver_get(driver_name);
		rc = d ? d->start(&cfg, op, &state) : bng_err(BANGER_EUNSUPPORTED, "no %s driver", driver_name);
		free(cmdline);
	}
	if (!rc) {
		char started[32];
		bng_now_iso(started);
		rc = vm_update(e, vm, json_pack("{s:s,s:s,s:O,s:s}", "state", creating ? "creating" : "starting", "driver",
						driver_name, "vmm", state, "started_at", started));
		stage(op, "boot", t0);
	}
	json_t *health = NULL;
	bool vsock = false;
	const char *agent = agent_channel(state, &vsock);
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
		rc = vm_update(e, vm, json_pack("{s:O,s:s}", "boot_id", json_object_get(health, "boot_id"), "sshd",
						sshd ? "1" : "0"));
		json_object_set_new(vm, "sshd", json_boolean(sshd));
		stage(op, "agent", t0);
	}
	/* a busy host boots slowly: the agent tells when sshd listens */
	if (!rc && sshd && (rc = bng_agent_wait_sshd(agent, vsock, AGENT_TIMEOUT_MS, &watch)) != 0)
		rc = boot_failed(rc, "ssh", console);
	/* With the host key made at create and pinned, a listening sshd is
	 * ready: a handshake here would only repeat the caller's own (one SSH
	 * session costs seconds of an emulated CPU). A VM from before keys were
	 * made at create learns and pins its key in a handshake, bounded. */
	if (!rc && sshd && !S(vm, "host_key")) {
		bng_ssh_target t = {.host = S(vm, "ip"), .port = 22, .user = "root",
				    .key_path = bng_config_str(&e->config, "ssh_key_path")};
		char *host_key = NULL;
		rc = bng_ssh_wait(&t, SSH_TIMEOUT_MS, op, &host_key);
		if (rc)
			rc = bng_err(rc, "%s; the VM is kept for a post-mortem: banger vm logs %s", banger_error_last(),
				     S(vm, "name"));
		else
			rc = vm_update(e, vm, json_pack("{s:s}", "host_key", host_key));
		free(host_key);
	}
	if (!rc) {
		if (sshd)
			stage(op, "ssh", t0);
		rc = vm_update(e, vm, json_pack("{s:s,s:n,s:n}", "state", "running", "error", "stop_reason"));
		bng_vm_activity(S(vm, "id"), 0); /* its idle clock starts at boot */
	}
	json_t *identity = NULL;
	if (!rc && bng_vm_identity_sync(e, vm, op, &identity) == 0)
		stage(op, "identity", t0);
	json_decref(identity);
	if (rc && strcmp(S(vm, "state"), "creating")) {
		char *msg = bng_strdup(banger_error_last());
		vm_update(e, vm, json_pack("{s:s,s:s}", "state", "error", "error", msg));
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
static void kill_strays(bng_engine *e, json_t *vm)
{
	char *rdir = run_dir(e, vm);
	char *needle = bng_asprintf("%s/", rdir);
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
			if (strstr(text, needle))
				kill((pid_t)pid, SIGKILL);
		}
		free(text);
		free(path);
	}
	if (d)
		closedir(d);
	free(needle);
	free(rdir);
}

/* Stops the VMM: graceful (agent sync + poweroff, bounded wait), then kill.
 * Leaves the row stopped and the tap gone. */
static int halt(bng_engine *e, json_t *vm, bool graceful, int sig)
{
	json_t *state = json_object_get(vm, "vmm");
	const bng_vmm_driver *d = driver_of(vm);
	if (d && json_is_object(state) && d->alive(state)) {
		int rc = BANGER_ETIMEDOUT;
		bool vsock = false;
		const char *path = agent_channel(state, &vsock);
		if (path) /* its commands end now; the channel takes one client: ours */
			bng_agent_link_forget(path);
		/* a daemon that dies from here on must not leave "running" on a
		 * guest told to power off: the next engine finishes the stop */
		bool was_running = !strcmp(S(vm, "state"), "running");
		if (graceful && was_running)
			vm_update(e, vm, json_pack("{s:s}", "state", "stopping"));
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
				vm_update(e, vm, json_pack("{s:s}", "state", "running"));
			return rc;
		}
	}
	/* the VMM is gone (or was already): the driver takes back what it
	 * handed over (a jail's file ownership) and removes what it left;
	 * any VMM still running for this VM is one nobody recorded */
	if (d && json_is_object(state) && d->release)
		d->release(state);
	char *rdir = run_dir(e, vm);
	bng_vmm_kill_strays(S(vm, "id"), rdir);
	net_teardown(e, vm);
	bng_rm_rf(rdir);
	free(rdir);
	return vm_update(e, vm, json_pack("{s:s}", "state", "stopped"));
}

/* ---- methods ---- */

static int lock_vm(bng_engine *e, json_t *vm, bng_op *op, char **key)
{
	*key = bng_asprintf("vm:%s", S(vm, "id"));
	int rc = bng_engine_reserve(e, *key, op);
	if (rc) {
		free(*key);
		*key = NULL;
	}
	return rc;
}

static void unlock_vm(bng_engine *e, char *key)
{
	if (key)
		bng_engine_release(e, key);
	free(key);
}

/* Resolves params.name to a locked VM row (re-read under the lock). */
static int locked(bng_engine *e, json_t *params, bng_op *op, json_t **vm, char **key)
{
	int rc = vm_get(e, json_string_value(json_object_get(params, "name")), vm);
	if (rc)
		return rc;
	rc = lock_vm(e, *vm, op, key);
	json_t *fresh = NULL;
	if (!rc)
		rc = vm_get(e, S(*vm, "id"), &fresh);
	json_decref(*vm);
	*vm = fresh;
	if (rc) {
		unlock_vm(e, *key);
		*key = NULL;
	}
	return rc;
}

/* The distro kernel package's real name: the cloud metapackage depends on
 * it (linux-image-cloud-amd64 -> linux-image-6.1.0-N-cloud-amd64). */
static void on_depends(const char *line, void *ud)
{
	char **pkg = ud;
	const char *d = strstr(line, "Depends: linux-image-");
	if (d && !*pkg)
		*pkg = bng_strdup(d + strlen("Depends: "));
}

/* The default kernel on a fresh host: from the kernel catalog when it has
 * it, else the distro's cloud kernel package fetched with apt. */
static int provision_kernel(bng_engine *e, const char *name, bng_op *op)
{
	json_t *catalog = NULL, *result = NULL;
	int rc = bng_catalog_load(e, "kernels", &catalog);
	bool listed = !rc && bng_catalog_find(catalog, "kernels", name);
	json_decref(catalog);
	bng_op_event(op, json_pack("{s:s,s:s,s:s}", "stage", "provision", "kernel", name, "from",
				   listed ? "catalog" : "distro package"));
	if (listed) {
		json_t *p = json_pack("{s:s}", "name", name);
		rc = bng_m_kernel_pull(e, p, &result, op);
		json_decref(p);
		json_decref(result);
		return rc;
	}
	char *debs = bng_asprintf("%s/debs", e->paths.cache_dir);
	char *pkg = NULL;
	rc = bng_mkdir_p(debs, 0700);
	const char *depends[] = {"apt-cache", "depends", "linux-image-cloud-amd64", NULL};
	if (!rc)
		rc = bng_run(depends, NULL, NULL, on_depends, &pkg, op);
	if (!rc && !pkg)
		rc = bng_err(BANGER_ENOTFOUND, "apt cannot resolve linux-image-cloud-amd64: import a kernel yourself "
					       "(banger kernel import %s --deb FILE)", name);
	char *script = NULL;
	if (!rc) {
		pkg[strcspn(pkg, " \t<>")] = '\0';
		script = bng_asprintf("cd '%s' && apt-get download '%s'", debs, pkg);
		const char *get[] = {"sh", "-c", script, NULL};
		rc = bng_run(get, NULL, NULL, NULL, NULL, op);
	}
	char *deb = NULL;
	if (!rc) {
		char *pattern = bng_asprintf("%s_", pkg);
		DIR *d = opendir(debs);
		struct dirent *de;
		while (d && (de = readdir(d)))
			if (!strncmp(de->d_name, pattern, strlen(pattern)) && strstr(de->d_name, ".deb"))
				deb = bng_asprintf("%s/%s", debs, de->d_name);
		if (d)
			closedir(d);
		free(pattern);
		if (!deb)
			rc = bng_err(BANGER_ENOTFOUND, "apt-get download %s left no .deb in %s", pkg, debs);
	}
	if (!rc) {
		json_t *p = json_pack("{s:s,s:s}", "name", name, "deb", deb);
		rc = bng_m_kernel_import(e, p, &result, op);
		json_decref(p);
		json_decref(result);
	}
	free(deb);
	free(script);
	free(pkg);
	free(debs);
	return rc;
}

/* The default image on a fresh host: the catalog's, else built from the
 * Debian mirror. */
static int provision_image(bng_engine *e, const char *name, bng_op *op)
{
	json_t *catalog = NULL, *result = NULL;
	int rc = bng_catalog_load(e, "images", &catalog);
	bool listed = !rc && bng_catalog_find(catalog, "images", name);
	json_decref(catalog);
	bng_op_event(op, json_pack("{s:s,s:s,s:s}", "stage", "provision", "image", name, "from",
				   listed ? "catalog" : "debian mirror"));
	json_t *p = listed ? json_pack("{s:s}", "ref", name) : json_pack("{s:s}", "name", name);
	rc = listed ? bng_m_image_pull(e, p, &result, op) : bng_m_image_build(e, p, &result, op);
	json_decref(p);
	json_decref(result);
	return rc;
}

static int resolve_image_kernel(bng_engine *e, json_t *params, json_t **image, json_t **kernel, bng_op *op)
{
	const char *iname = json_string_value(json_object_get(params, "image"));
	const char *default_image = bng_config_str(&e->config, "default_image_name");
	if (!iname)
		iname = default_image;
	int rc = bng_image_get(e, iname, image);
	if (rc == BANGER_ENOTFOUND && !strcmp(iname, default_image)) {
		/* a fresh host: get the default once (concurrent callers wait for it) */
		rc = provision_image(e, iname, op);
		if (!rc || rc == BANGER_EEXIST)
			rc = bng_image_get(e, iname, image);
	}
	if (rc)
		return bng_err(rc, "%s (build the default with 'banger image build' or pull one)", banger_error_last());
	const char *kname = json_string_value(json_object_get(params, "kernel"));
	if (!kname)
		kname = json_string_value(json_object_get(*image, "kernel"));
	const char *default_kernel = bng_config_str(&e->config, "default_kernel_name");
	if (!kname)
		kname = default_kernel;
	rc = bng_kernel_get(e, kname, kernel);
	if (rc == BANGER_ENOTFOUND && !strcmp(kname, default_kernel)) {
		rc = provision_kernel(e, kname, op);
		if (!rc || rc == BANGER_EEXIST)
			rc = bng_kernel_get(e, kname, kernel);
	}
	if (rc) {
		json_decref(*image);
		*image = NULL;
		return bng_err(rc, "%s (import one: banger kernel import %s --deb linux-image-*.deb)", banger_error_last(),
			       kname);
	}
	return 0;
}

/* Who is the VM's PID 1. auto: systemd where the image's /sbin/init leads
 * to it; otherwise (no init, busybox's, a container image's) banger's own
 * (guest/agent/init.c), which needs nothing from the image. */
static int pick_init(json_t *image, const char *want, const char **mode)
{
	if (!want)
		want = "auto";
	if (strcmp(want, "auto") && strcmp(want, "banger") && strcmp(want, "systemd"))
		return bng_err(BANGER_EINVAL, "init must be auto, banger or systemd (got '%s')", want);
	*mode = "banger";
	if (!strcmp(want, "banger"))
		return 0;
	bool found = false;
	char target[4096];
	int rc = bng_ext4_resolve_exec(S(image, "rootfs"), "sbin/init", &found, target, sizeof(target));
	if (rc)
		return rc;
	if (!strcmp(want, "systemd") && !found)
		return bng_err(BANGER_EUNSUPPORTED, "image '%s' has no /sbin/init to run: create the VM with --init banger",
			       S(image, "name"));
	if (!strcmp(want, "systemd") || (found && strstr(target, "systemd")))
		*mode = "systemd";
	return 0;
}

static int allocate_ip(bng_engine *e, char out[16])
{
	json_t *used = NULL;
	int rc = query_ips(e, "SELECT ip FROM vms", &used);
	if (!rc)
		rc = bng_net_alloc_ip(bng_config_str(&e->config, "cidr"), bng_config_str(&e->config, "bridge_ip"), used, out);
	json_decref(used);
	return rc;
}

static char *generated_name(void)
{
	static const char *const adj[] = {"brisk", "calm", "eager", "fuzzy", "jolly", "lucky", "nimble", "quiet",
					  "rapid", "sunny", "tidy", "witty"};
	static const char *const noun[] = {"otter", "falcon", "lynx", "heron", "badger", "panda", "koala", "tapir",
					   "gecko", "ibis", "marten", "wombat"};
	char id[13];
	bng_random_id(id);
	unsigned v = (unsigned)strtoul(id + 8, NULL, 16);
	return bng_asprintf("%s-%s-%.4s", adj[v % 12], noun[(v / 12) % 12], id);
}

int bng_m_vm_create(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	char *name = json_string_value(json_object_get(params, "name"))
			     ? bng_strdup(json_string_value(json_object_get(params, "name")))
			     : generated_name();
	json_int_t vcpu = json_object_get(params, "vcpu") ? json_integer_value(json_object_get(params, "vcpu"))
							   : bng_config_int(&e->config, "vm_defaults.vcpu");
	json_int_t mem = json_object_get(params, "memory_mib")
				 ? json_integer_value(json_object_get(params, "memory_mib"))
				 : bng_config_int(&e->config, "vm_defaults.memory_mib");
	uint64_t disk = (uint64_t)bng_config_int(&e->config, "vm_defaults.disk_size");
	bool nat = json_is_true(json_object_get(params, "nat"));
	int rc = bng_check_name(name, "vm");
	if (!rc && (vcpu < 1 || vcpu > 64))
		rc = bng_err(BANGER_EINVAL, "vcpu must be between 1 and 64 (got %lld)", (long long)vcpu);
	if (!rc && (mem < 128 || mem > (1 << 20)))
		rc = bng_err(BANGER_EINVAL, "memory must be between 128 and 1048576 MiB (got %lld)", (long long)mem);
	if (!rc && json_object_get(params, "disk_size") &&
	    (rc = bng_parse_size(json_string_value(json_object_get(params, "disk_size")), &disk)) == 0 && disk < (64u << 20))
		rc = bng_err(BANGER_EINVAL, "disk size must be at least 64M");
	json_t *image = NULL, *kernel = NULL, *vm = NULL;
	char *key = NULL;
	if (!rc)
		rc = resolve_image_kernel(e, params, &image, &kernel, op);
	bool sshd = false;
	const char *init = NULL;
	if (!rc)
		rc = pick_init(image, json_string_value(json_object_get(params, "init")), &init);
	bool systemd = init && !strcmp(init, "systemd");
	if (!rc && (rc = bng_ext4_exists(S(image, "rootfs"), "usr/sbin/sshd", &sshd)) == 0 && !sshd && !nat && systemd)
		/* the systemd boot waits for sshd: say so now, not after a 90 s wait */
		rc = bng_err(BANGER_EUNSUPPORTED,
			     "image '%s' has no SSH server (/usr/sbin/sshd): install openssh-server in it, create the VM "
			     "with --nat so banger installs it on first boot, or with --init banger (no SSH, exec only)",
			     S(image, "name"));
	if (!rc) {
		char *disk_text = bng_format_size(disk);
		char *spec = bng_asprintf("%lld vcpu | %lld MiB | %s disk", (long long)vcpu, (long long)mem, disk_text);
		bng_op_event(op, json_pack("{s:s,s:s}", "stage", "spec", "spec", spec));
		free(spec);
		free(disk_text);
		stage(op, "resolve", &t0);
		/* one creator per name, and one IP allocation at a time */
		key = bng_asprintf("vm-name:%s", name);
		rc = bng_engine_reserve(e, "vm-create", op);
		if (!rc) {
			json_t *existing;
			if (vm_get(e, name, &existing) == 0) {
				json_decref(existing);
				rc = bng_err(BANGER_EEXIST, "vm '%s' already exists", name);
			}
		}
		char id[13], ip[16] = "", mac[18], tap[1] = ""; /* a tap is taken at boot */
		bng_random_id(id);
		bng_net_mac_from_id(id, mac);
		if (!rc)
			rc = allocate_ip(e, ip);
		if (!rc) {
			char created[32], vcpu_s[24], mem_s[24], disk_s[24];
			bng_now_iso(created);
			snprintf(vcpu_s, sizeof(vcpu_s), "%lld", (long long)vcpu);
			snprintf(mem_s, sizeof(mem_s), "%lld", (long long)mem);
			snprintf(disk_s, sizeof(disk_s), "%llu", (unsigned long long)disk);
			/* the row exists from here on, in state "creating": a crash is cleaned up at next start */
			const char *p[] = {id,  name, S(image, "id"), S(kernel, "id"), vcpu_s, mem_s, disk_s, ip, mac,
					   tap, created, nat ? "1" : "0", init, sshd || systemd ? "1" : "0"};
			rc = bng_store_run(&e->store,
					   "INSERT INTO vms (id, name, image_id, kernel_id, vcpu, memory_mib, disk_size, state,"
					   " driver, ip, mac, tap, created_at, nat, init, sshd) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
					   " ?7, 'creating', 'none', ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
					   14, p);
		}
		bng_engine_release(e, "vm-create");
		if (!rc)
			rc = vm_get(e, id, &vm);
	}
	char *vkey = NULL;
	if (!rc)
		rc = lock_vm(e, vm, op, &vkey);
	char *dir = vm ? vm_dir(e, vm) : NULL;
	if (!rc) {
		char *overlay = bng_asprintf("%s/overlay.ext4", dir);
		char *pubkey = NULL;
		if (!json_is_false(json_object_get(params, "start"))) {
			rc = net_setup(e, vm);
			if (!rc)
				stage(op, "network", &t0);
		}
		if (!rc)
			rc = bng_mkdir_p(dir, 0700);
		if (!rc)
			rc = bng_ssh_ensure_key(bng_config_str(&e->config, "ssh_key_path"), &pubkey);
		char *host_priv = NULL, *host_pub = NULL;
		if (!rc && (rc = bng_ssh_new_host_key(dir, &host_priv, &host_pub)) == 0)
			rc = vm_update(e, vm, json_pack("{s:s}", "host_key", host_pub)); /* pinned before it ever boots */
		if (!rc)
			rc = make_overlay(e, vm, overlay, pubkey, host_priv, !sshd && systemd);
		if (host_priv)
			explicit_bzero(host_priv, strlen(host_priv));
		free(host_priv);
		free(host_pub);
		if (!rc)
			stage(op, "disk", &t0);
		free(pubkey);
		free(overlay);
	}
	if (!rc && !json_is_false(json_object_get(params, "start"))) {
		rc = boot(e, vm, op, &t0);
		if (rc && json_object_get(vm, "vmm") && !json_is_null(json_object_get(vm, "vmm"))) {
			/* it booted but never became reachable: keep it for a post-mortem (vm logs) */
			char *msg = bng_strdup(banger_error_last());
			vm_update(e, vm, json_pack("{s:s,s:s}", "state", "error", "error", msg));
			bng_err(rc, "%s", msg);
			free(msg);
		}
	} else if (!rc) {
		rc = vm_update(e, vm, json_pack("{s:s}", "state", "stopped"));
	}
	if (rc && vm && !strcmp(S(vm, "state") ?: "", "creating")) {
		/* failed before its VMM ever ran: nothing of it stays */
		char *msg = bng_strdup(banger_error_last());
		halt(e, vm, false, 0);
		bng_rm_rf(dir);
		const char *id = S(vm, "id");
		bng_store_run(&e->store, "DELETE FROM vms WHERE id = ?1", 1, &id);
		bng_err(rc, "%s", msg);
		free(msg);
	}
	if (!rc) {
		stage(op, "ready", &t0);
		bng_vm_ssh_files_sync(e); /* best effort: `ssh <name>.vm` */
		rc = vm_get(e, S(vm, "id"), result);
	}
	unlock_vm(e, vkey);
	json_decref(vm);
	json_decref(image);
	json_decref(kernel);
	free(key);
	free(dir);
	free(name);
	return rc;
}

/* What start/stop/restart/kill do to a VM, under its lock. */
typedef int (*vm_action)(bng_engine *e, json_t *vm, json_t *params, bng_op *op);

/* Locks the VM named in params, runs action, returns the VM's fresh row. */
static int with_locked_vm(bng_engine *e, json_t *params, bng_op *op, json_t **result, vm_action action)
{
	json_t *vm;
	char *key;
	int rc = locked(e, params, op, &vm, &key);
	if (rc)
		return rc;
	rc = action(e, vm, params, op);
	if (!rc)
		rc = vm_get(e, S(vm, "id"), result);
	unlock_vm(e, key);
	json_decref(vm);
	return rc;
}

static int do_start(bng_engine *e, json_t *vm, json_t *params, bng_op *op)
{
	(void)params;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	const bng_vmm_driver *d = driver_of(vm);
	if (!strcmp(S(vm, "state"), "running") && d && d->alive(json_object_get(vm, "vmm")))
		return bng_err(BANGER_EBUSY, "vm '%s' is already running", S(vm, "name"));
	return boot(e, vm, op, &t0);
}

static int do_stop(bng_engine *e, json_t *vm, json_t *params, bng_op *op)
{
	(void)params;
	(void)op;
	return halt(e, vm, true, 0);
}

static int do_restart(bng_engine *e, json_t *vm, json_t *params, bng_op *op)
{
	(void)params;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = halt(e, vm, true, 0);
	return rc ? rc : boot(e, vm, op, &t0);
}

static int do_kill(bng_engine *e, json_t *vm, json_t *params, bng_op *op)
{
	(void)op;
	const char *sig = json_string_value(json_object_get(params, "signal"));
	int signo = SIGKILL;
	if (sig) {
		static const struct { const char *name; int no; } sigs[] = {
			{"KILL", SIGKILL}, {"TERM", SIGTERM}, {"INT", SIGINT}, {"HUP", SIGHUP}, {"QUIT", SIGQUIT}};
		signo = 0;
		for (size_t i = 0; i < BNG_ARRAY_LEN(sigs); i++)
			if (!strcmp(sig, sigs[i].name) || (!strncmp(sig, "SIG", 3) && !strcmp(sig + 3, sigs[i].name)))
				signo = sigs[i].no;
		if (!signo)
			return bng_err(BANGER_EINVAL, "unknown signal '%s' (KILL, TERM, INT, HUP, QUIT)", sig);
	}
	return halt(e, vm, false, signo);
}

int bng_m_vm_start(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	return with_locked_vm(e, params, op, result, do_start);
}

int bng_m_vm_stop(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	return with_locked_vm(e, params, op, result, do_stop);
}

int bng_m_vm_restart(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	return with_locked_vm(e, params, op, result, do_restart);
}

int bng_m_vm_kill(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	return with_locked_vm(e, params, op, result, do_kill);
}

static int destroy(bng_engine *e, json_t *vm)
{
	int rc = halt(e, vm, false, SIGKILL);
	if (!rc)
		kill_strays(e, vm);
	/* the row goes first: a daemon killed half way through the removal
	 * leaves a directory without a row, which the next engine removes, never
	 * a row whose disk is half gone */
	const char *id = S(vm, "id");
	if (!rc)
		rc = bng_store_run(&e->store, "DELETE FROM vms WHERE id = ?1", 1, &id);
	char *dir = vm_dir(e, vm);
	if (!rc)
		rc = bng_rm_rf(dir);
	free(dir);
	if (!rc)
		bng_vm_ssh_files_sync(e);
	return rc;
}

int bng_m_vm_delete(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	json_t *vm;
	char *key;
	int rc = locked(e, params, op, &vm, &key);
	if (rc)
		return rc;
	rc = destroy(e, vm);
	if (!rc)
		*result = json_pack("{s:O,s:O}", "id", json_object_get(vm, "id"), "name", json_object_get(vm, "name"));
	unlock_vm(e, key);
	json_decref(vm);
	return rc;
}

int bng_m_vm_prune(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)params;
	json_t *rows;
	int rc = bng_store_query(&e->store, &rows, "SELECT id FROM vms WHERE state != 'running' ORDER BY created_at", 0,
				 NULL);
	if (rc)
		return rc;
	json_t *removed = json_array(), *failed = json_array();
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) {
		json_t *p = json_pack("{s:O}", "name", json_object_get(row, "id")), *r = NULL;
		if (bng_m_vm_delete(e, p, &r, op) == 0)
			json_array_append(removed, json_object_get(r, "name"));
		else
			json_array_append_new(failed, json_pack("{s:O,s:s}", "id", json_object_get(row, "id"), "error",
								banger_error_last()));
		json_decref(r);
		json_decref(p);
	}
	json_decref(rows);
	*result = json_pack("{s:o,s:o}", "removed", removed, "failed", failed);
	return 0;
}

/* Why a VM whose VMM ended without banger stopping it reads stopped. */
#define VMM_LOST "its VMM exited without banger stopping it (killed, crashed, powered off from inside, or a host reboot)"

/* A VM whose VMM is gone: everything a stop removes goes (tap, runtime
 * directory, strays), and the row says stopped, and why. */
static void lost(bng_engine *e, json_t *vm, const char *why)
{
	halt(e, vm, false, SIGKILL);
	vm_update(e, vm, json_pack("{s:s}", "stop_reason", why));
}

/* Refreshes a row's state against reality (a VM that died is stopped). */
static void refresh(bng_engine *e, json_t *vm)
{
	const bng_vmm_driver *d = driver_of(vm);
	if (!strcmp(S(vm, "state"), "running") && !(d && d->alive(json_object_get(vm, "vmm"))))
		lost(e, vm, VMM_LOST);
}

int bng_m_vm_list(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	json_t *rows;
	char *sql = bng_asprintf("SELECT id FROM vms ORDER BY created_at, name");
	int rc = bng_store_query(&e->store, &rows, sql, 0, NULL);
	free(sql);
	if (rc)
		return rc;
	bool all = json_is_true(json_object_get(params, "all"));
	json_t *out = json_array();
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) {
		json_t *vm;
		if (vm_get(e, json_string_value(json_object_get(row, "id")), &vm) != 0)
			continue;
		refresh(e, vm);
		if (all || !strcmp(S(vm, "state"), "running"))
			json_array_append(out, vm);
		json_decref(vm);
	}
	json_decref(rows);
	*result = json_pack("{s:o}", "vms", out);
	return 0;
}

int bng_m_vm_show(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	json_t *vm;
	int rc = vm_get(e, json_string_value(json_object_get(params, "name")), &vm);
	if (rc)
		return rc;
	refresh(e, vm);
	char *dir = vm_dir(e, vm);
	char *known = bng_asprintf("%s/known_hosts", dir);
	if (S(vm, "host_key")) { /* for `ssh` run by the CLI: this VM's key only */
		char *line = bng_asprintf("%s %s\n", S(vm, "ip"), S(vm, "host_key"));
		bng_write_file_atomic(known, line, strlen(line), 0600);
		free(line);
	}
	json_object_set_new(vm, "ssh", json_pack("{s:s,s:i,s:s,s:s,s:s}", "host", S(vm, "ip"), "port", 22, "user", "root",
						  "key", bng_config_str(&e->config, "ssh_key_path"), "known_hosts", known));
	char *console = bng_asprintf("%s/console.log", dir);
	json_object_set_new(vm, "console_log", json_string(console));
	free(console);
	free(known);
	free(dir);
	*result = vm;
	return 0;
}

int bng_m_vm_logs(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	json_t *vm;
	int rc = vm_get(e, json_string_value(json_object_get(params, "name")), &vm);
	if (rc)
		return rc;
	char *dir = vm_dir(e, vm);
	char *path = bng_asprintf("%s/console.log", dir);
	char *text = NULL;
	size_t len = 0;
	if (bng_read_file(path, &text, &len) != 0)
		text = bng_strdup("");
	json_int_t tail = json_integer_value(json_object_get(params, "tail_bytes"));
	const char *start = text;
	if (tail > 0 && (size_t)tail < len)
		start = text + len - (size_t)tail;
	*result = json_pack("{s:s,s:s%}", "path", path, "console", start, strlen(start));
	free(text);
	free(path);
	free(dir);
	json_decref(vm);
	return 0;
}

int bng_vm_link(bng_engine *e, const char *ref, json_t **vm, bng_agent_link **link)
{
	int rc = bng_vm_link_quiet(e, ref, vm, link);
	if (!rc)
		bng_vm_activity(S(*vm, "id"), 0);
	return rc;
}

int bng_vm_stop_for(bng_engine *e, const char *ref, const char *reason)
{
	json_t *params = json_pack("{s:s}", "name", ref);
	json_t *vm;
	char *key;
	int rc = locked(e, params, NULL, &vm, &key);
	json_decref(params);
	if (rc)
		return rc;
	/* checked again under the lock: a user may have stopped or restarted it */
	if (strcmp(S(vm, "state"), "running"))
		rc = bng_err(BANGER_EBUSY, "vm '%s' is no longer running", S(vm, "name"));
	if (!rc)
		rc = halt(e, vm, true, 0);
	if (!rc)
		rc = vm_update(e, vm, json_pack("{s:s}", "stop_reason", reason));
	unlock_vm(e, key);
	json_decref(vm);
	return rc;
}

int bng_vm_link_quiet(bng_engine *e, const char *ref, json_t **vm, bng_agent_link **link)
{
	*link = NULL;
	int rc = vm_get(e, ref, vm);
	if (rc)
		return rc;
	bool vsock;
	const char *path = agent_channel(json_object_get(*vm, "vmm"), &vsock);
	if (strcmp(S(*vm, "state"), "running") || !path)
		rc = bng_err(BANGER_EUNSUPPORTED, "vm '%s' is not running", S(*vm, "name"));
	else
		rc = bng_agent_link_get(path, vsock, 30000, link); /* a guest just booted may be slow to answer */
	if (rc) {
		json_decref(*vm);
		*vm = NULL;
	}
	return rc;
}

bng_agent_watch bng_vm_watch(json_t *vm, bng_op *op)
{
	return (bng_agent_watch){.op = op, .vm_gone = vmm_gone, .ud = json_object_get(vm, "vmm")};
}

static int agent_op(bng_engine *e, json_t *params, const char *what, json_t **reply)
{
	json_t *vm;
	bng_agent_link *link;
	int rc = bng_vm_link(e, json_string_value(json_object_get(params, "name")), &vm, &link);
	if (rc)
		return rc;
	bng_agent_watch watch = bng_vm_watch(vm, NULL);
	rc = bng_agent_link_call(link, what, 15000, &watch, reply);
	bng_agent_link_unref(link);
	json_decref(vm);
	return rc;
}

int bng_m_vm_stats(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	json_t *vm;
	int rc = vm_get(e, json_string_value(json_object_get(params, "name")), &vm);
	if (rc)
		return rc;
	json_int_t pid = json_integer_value(json_object_get(json_object_get(vm, "vmm"), "pid"));
	*result = json_pack("{s:O,s:O}", "name", json_object_get(vm, "name"), "state", json_object_get(vm, "state"));
	char *path = bng_asprintf("/proc/%lld/stat", (long long)pid);
	char *text = NULL;
	if (pid > 0 && bng_read_file(path, &text, NULL) == 0) {
		/* fields after "(comm)": state ppid ... utime(14) stime(15) ... rss(24) */
		const char *p = strrchr(text, ')');
		unsigned long long utime = 0, stime = 0;
		long long rss = 0;
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %*u %*u %lld",
				&utime, &stime, &rss) == 3) {
			long tick = sysconf(_SC_CLK_TCK);
			json_object_set_new(*result, "cpu_seconds", json_real((double)(utime + stime) / (double)tick));
			json_object_set_new(*result, "rss_bytes", json_integer(rss * sysconf(_SC_PAGESIZE)));
		}
	}
	free(text);
	free(path);
	json_t *health = NULL;
	if (!strcmp(S(vm, "state"), "running") && agent_op(e, params, "health", &health) == 0)
		json_object_set(*result, "guest_uptime_s", json_object_get(health, "uptime_s"));
	json_decref(health);
	json_decref(vm);
	return 0;
}

int bng_m_vm_set(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	json_t *vm;
	char *key;
	int rc = locked(e, params, op, &vm, &key);
	if (rc)
		return rc;
	if (strcmp(S(vm, "state"), "stopped"))
		rc = bng_err(BANGER_EBUSY, "vm '%s' must be stopped to change it (banger vm stop %s)", S(vm, "name"),
			     S(vm, "name"));
	json_t *fields = json_object();
	json_t *v;
	if (!rc && (v = json_object_get(params, "vcpu"))) {
		if (json_integer_value(v) < 1 || json_integer_value(v) > 64)
			rc = bng_err(BANGER_EINVAL, "vcpu must be between 1 and 64");
		json_object_set_new(fields, "vcpu", json_sprintf("%lld", (long long)json_integer_value(v)));
	}
	if (!rc && (v = json_object_get(params, "memory_mib"))) {
		if (json_integer_value(v) < 128)
			rc = bng_err(BANGER_EINVAL, "memory must be at least 128 MiB");
		json_object_set_new(fields, "memory_mib", json_sprintf("%lld", (long long)json_integer_value(v)));
	}
	if (!rc && (v = json_object_get(params, "disk_size"))) {
		uint64_t size;
		rc = bng_parse_size(json_string_value(v), &size);
		uint64_t cur = (uint64_t)json_integer_value(json_object_get(vm, "disk_size"));
		if (!rc && size < cur)
			rc = bng_err(BANGER_EINVAL, "disks only grow: %s is smaller than the current size", json_string_value(v));
		if (!rc && size > cur) {
			/* grow the sparse file, then the filesystem in it (e2fsprogs) */
			char *dir = vm_dir(e, vm);
			char *overlay = bng_asprintf("%s/overlay.ext4", dir);
			if (truncate(overlay, (off_t)size) != 0)
				rc = bng_err_errno(BANGER_EIO, errno, "cannot grow %s", overlay);
			const char *check[] = {"e2fsck", "-fy", overlay, NULL};
			const char *grow[] = {"resize2fs", overlay, NULL};
			if (!rc)
				bng_run(check, NULL, NULL, NULL, NULL, op); /* resize2fs wants a checked fs */
			if (!rc && (rc = bng_run(grow, NULL, NULL, NULL, NULL, op)) != 0)
				rc = bng_err(rc, "cannot grow the filesystem in %s: %s", overlay, banger_error_last());
			free(overlay);
			free(dir);
			json_object_set_new(fields, "disk_size", json_sprintf("%llu", (unsigned long long)size));
		}
	}
	if (!rc)
		rc = vm_update(e, vm, json_incref(fields));
	json_decref(fields);
	if (!rc)
		rc = vm_get(e, S(vm, "id"), result);
	unlock_vm(e, key);
	json_decref(vm);
	return rc;
}

/* Removes the runtime directories (<runtime>/<12 hex>) of VMs that have
 * no row or do not run; the socket and anything else there stay. */
static void clean_runtime(bng_engine *e)
{
	DIR *d = opendir(e->paths.runtime_dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (strlen(de->d_name) != 12 || strspn(de->d_name, "0123456789abcdef") != 12)
			continue;
		json_t *vm = NULL;
		if (vm_get(e, de->d_name, &vm) == 0 && !strcmp(S(vm, "state"), "running")) {
			json_decref(vm);
			continue;
		}
		if (vm && !strcmp(S(vm, "state"), "error")) { /* kept for a post-mortem */
			json_decref(vm);
			continue;
		}
		json_decref(vm);
		char *p = bng_asprintf("%s/%s", e->paths.runtime_dir, de->d_name);
		bng_vmm_kill_strays(de->d_name, p);
		bng_rm_rf(p);
		free(p);
	}
	if (d)
		closedir(d);
}

int bng_vm_reconcile(bng_engine *e)
{
	char digest[72]; /* "sha256:" + hex */
	bng_sha256_digest(e->paths.state_dir, strlen(e->paths.state_dir), digest);
	snprintf(e->net_tag, sizeof(e->net_tag), "%.4s", digest + 7);
	json_t *rows;
	int rc = bng_store_query(&e->store, &rows, "SELECT id FROM vms", 0, NULL);
	if (rc)
		return rc;
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) {
		json_t *vm;
		if (vm_get(e, json_string_value(json_object_get(row, "id")), &vm) != 0)
			continue;
		const char *state = S(vm, "state");
		const bng_vmm_driver *d = driver_of(vm);
		bool alive = d && json_is_object(json_object_get(vm, "vmm")) && d->alive(json_object_get(vm, "vmm"));
		if (!strcmp(state, "creating")) {
			destroy(e, vm); /* a create the daemon died in: remove every trace */
		} else if (!strcmp(state, "stopping")) {
			halt(e, vm, false, SIGKILL); /* a stop the daemon died in: finish it */
		} else if (!strcmp(state, "starting")) {
			/* a start the daemon died in: its caller got an error, and the
			 * boot's later steps (agent, boot_id, identity) never ran */
			halt(e, vm, false, SIGKILL);
			vm_update(e, vm, json_pack("{s:s}", "stop_reason",
						   "bangerd stopped during its start: start it again"));
		} else if (!strcmp(state, "running")) {
			if (!alive)
				lost(e, vm, VMM_LOST);
		} else if (strcmp(state, "error")) {
			/* stopped: a start or stop the daemon died in may have left a
			 * VMM it had not recorded yet, the tap, the runtime directory */
			halt(e, vm, false, SIGKILL);
		}
		json_decref(vm);
	}
	json_decref(rows);
	/* what no row names: a VM directory whose delete the daemon died in,
	 * the runtime directory of a VM that is gone */
	char *vms_dir = bng_asprintf("%s/vms", e->paths.state_dir);
	bng_clean_leftovers(e, vms_dir, "vms");
	free(vms_dir);
	clean_runtime(e);
	/* the pool adopts this engine's taps no VM owns (a crash between
	 * taking one and recording it, or the last engine's idle taps) */
	uint32_t net;
	int prefix = 24;
	bng_net_parse_cidr(bng_config_str(&e->config, "cidr"), &net, &prefix);
	e->tap_pool = bng_tap_pool_new(e->net_tag, (int)bng_config_int(&e->config, "tap_pool_size"),
				       bng_config_str(&e->config, "bridge_name"), bng_config_str(&e->config, "bridge_ip"),
				       prefix);
	json_t *owned = NULL;
	if (bng_store_query(&e->store, &owned, "SELECT tap FROM vms WHERE tap != ''", 0, NULL) == 0) {
		json_t *names = json_array();
		json_array_foreach(owned, i, row) json_array_append(names, json_object_get(row, "tap"));
		bng_tap_pool_adopt(e->tap_pool, names);
		json_decref(names);
	}
	json_decref(owned);
	nat_sync(e); /* best effort: no rules for VMs that died with the last engine */
	bng_vm_ssh_files_sync(e);
	return 0;
}

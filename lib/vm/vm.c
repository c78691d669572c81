/* The VM lifecycle. A VM is a row (state, resources) plus:
 *   <state>/vms/<id>/overlay.ext4  the per-VM writable disk (sparse, O(1) to
 *                                  create); banger's initramfs stacks it over
 *                                  the image's read-only base with overlayfs
 *   <state>/vms/<id>/console.log   the guest's serial console
 *   <state>/vms/<id>/vmm.log       the VMM's own output
 *   <runtime>/<id>/                control and agent sockets
 * Create and boot report stages (resolve, network, disk, boot, agent, ssh,
 * ready) with their timings.
 * This file holds the methods and reconcile; the row, the network, the
 * disk, the hypervisor and default image/kernel provisioning are in
 * records.c, net_attach.c, disk.c, boot.c and provision.c (vm_int.h). */
#include "vm_int.h"
#include "../core/proc.h"
#include "../core/sha256.h"
#include "../core/units.h"
#include "../fs/ext4.h"
#include "../guest/link.h"
#include "../net/net.h"
#include "../ssh/ssh.h"
#include "../vmm/vmm.h"
#include "idle.h"
#include "tap_pool.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- methods ---- */

static int lock_vm(bng_engine *e, const bng_vm_row *vm, bng_op *op, char **key)
{
	*key = bng_asprintf("vm:%s", vm->id);
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

/* The VM's row as read now, as the wire shows it (the methods' result). */
static int fresh_json(bng_engine *e, const char *id, json_t **result)
{
	bng_vm_row *vm = NULL;
	int rc = bng_vm_get(e, id, &vm);
	if (!rc)
		*result = bng_vm_json(vm);
	bng_vm_free(vm);
	return rc;
}

/* Resolves params.name to a locked VM row (re-read under the lock). */
static int locked(bng_engine *e, json_t *params, bng_op *op, bng_vm_row **vm, char **key)
{
	int rc = bng_vm_get(e, json_string_value(json_object_get(params, "name")), vm);
	if (rc)
		return rc;
	rc = lock_vm(e, *vm, op, key);
	bng_vm_row *fresh = NULL;
	if (!rc)
		rc = bng_vm_get(e, (*vm)->id, &fresh);
	bng_vm_free(*vm);
	*vm = fresh;
	if (rc) {
		unlock_vm(e, *key);
		*key = NULL;
	}
	return rc;
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
	int rc = bng_ext4_resolve_exec(bng_jstr(image, "rootfs"), "sbin/init", &found, target, sizeof(target));
	if (rc)
		return rc;
	if (!strcmp(want, "systemd") && !found)
		return bng_err(BANGER_EUNSUPPORTED, "image '%s' has no /sbin/init to run",
			       bng_jstr(image, "name"));
	if (!strcmp(want, "systemd") || (found && strstr(target, "systemd")))
		*mode = "systemd";
	return 0;
}

static int allocate_ip(bng_engine *e, char out[16])
{
	json_t *used = NULL;
	int rc = bng_vm_query_ips(e, "SELECT ip FROM vms", &used);
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
	json_t *image = NULL, *kernel = NULL;
	bng_vm_row *vm = NULL;
	if (!rc)
		rc = bng_vm_resolve_image_kernel(e, params, &image, &kernel, op);
	bool sshd = false;
	const char *init = NULL;
	if (!rc)
		rc = pick_init(image, json_string_value(json_object_get(params, "init")), &init);
	bool systemd = init && !strcmp(init, "systemd");
	if (!rc && (rc = bng_ext4_exists(bng_jstr(image, "rootfs"), "usr/sbin/sshd", &sshd)) == 0 && !sshd && !nat &&
	    systemd)
		/* the systemd boot waits for sshd: say so now, not after a 90 s wait */
		rc = bng_err(BANGER_EUNSUPPORTED,
			     "image '%s' has no SSH server (/usr/sbin/sshd), which a systemd boot without nat needs",
			     bng_jstr(image, "name"));
	if (!rc) {
		char *disk_text = bng_format_size(disk);
		char *spec = bng_asprintf("%lld vcpu | %lld MiB | %s disk", (long long)vcpu, (long long)mem, disk_text);
		bng_op_event(op, json_pack("{s:s,s:s}", "stage", "spec", "spec", spec));
		free(spec);
		free(disk_text);
		bng_vm_stage(op, "resolve", &t0);
		/* one creator at a time: the name's check and the IP allocation */
		rc = bng_engine_reserve(e, "vm-create", op);
		bool reserved = rc == 0;
		if (!rc) {
			bng_vm_row *existing;
			if (bng_vm_get(e, name, &existing) == 0) {
				bng_vm_free(existing);
				rc = bng_err(BANGER_EEXIST, "vm '%s' already exists", name);
			}
		}
		char id[13], ip[16] = "", mac[18], created[32];
		bng_random_id(id);
		bng_net_mac_from_id(id, mac);
		bng_now_iso(created);
		if (!rc)
			rc = allocate_ip(e, ip);
		if (!rc) {
			/* the row exists from here on, in state "creating": a crash is cleaned up at next start */
			vm = bng_xcalloc(1, sizeof(*vm));
			const struct { char **field; const char *value; } strings[] = {
				{&vm->id, id}, {&vm->name, name}, {&vm->image_id, bng_jstr(image, "id")},
				{&vm->kernel_id, bng_jstr(kernel, "id")}, {&vm->state, "creating"}, {&vm->driver, "none"},
				{&vm->ip, ip}, {&vm->mac, mac}, {&vm->tap, ""} /* a tap is taken at boot */,
				{&vm->created_at, created}, {&vm->init, init}};
			for (size_t i = 0; i < BNG_ARRAY_LEN(strings); i++)
				bng_vm_put(strings[i].field, strings[i].value);
			vm->vcpu = (int)vcpu;
			vm->memory_mib = (int)mem;
			vm->disk_size = disk;
			vm->nat = nat;
			vm->sshd = sshd || systemd;
			rc = bng_vm_insert(e, vm);
			if (rc) {
				bng_vm_free(vm);
				vm = NULL;
			}
		}
		if (reserved)
			bng_engine_release(e, "vm-create");
	}
	char *vkey = NULL;
	if (!rc)
		rc = lock_vm(e, vm, op, &vkey);
	char *dir = vm ? bng_vm_dir(e, vm) : NULL;
	if (!rc) {
		char *overlay = bng_asprintf("%s/overlay.ext4", dir);
		char *pubkey = NULL;
		if (!json_is_false(json_object_get(params, "start"))) {
			rc = bng_vm_net_setup(e, vm);
			if (!rc)
				bng_vm_stage(op, "network", &t0);
		}
		if (!rc)
			rc = bng_mkdir_p(dir, 0700);
		if (!rc)
			rc = bng_ssh_ensure_key(bng_config_str(&e->config, "ssh_key_path"), &pubkey);
		char *host_priv = NULL, *host_pub = NULL;
		if (!rc && (rc = bng_ssh_new_host_key(dir, &host_priv, &host_pub)) == 0)
			rc = bng_vm_set(e, vm, BNG_VM_HOST_KEY, host_pub); /* pinned before it ever boots */
		if (!rc)
			rc = bng_vm_make_overlay(e, vm, overlay, pubkey, host_priv, !sshd && systemd);
		if (host_priv)
			explicit_bzero(host_priv, strlen(host_priv));
		free(host_priv);
		free(host_pub);
		if (!rc)
			bng_vm_stage(op, "disk", &t0);
		free(pubkey);
		free(overlay);
	}
	if (!rc && !json_is_false(json_object_get(params, "start"))) {
		rc = bng_vm_boot(e, vm, op, &t0);
		if (rc && vm->vmm) {
			/* it booted but never became reachable: keep it for a post-mortem (vm logs) */
			char *msg = bng_strdup(banger_error_last());
			bng_vm_put(&vm->state, "error");
			bng_vm_put(&vm->error, msg);
			bng_vm_save(e, vm, BNG_VM_STATE | BNG_VM_ERROR);
			bng_err(rc, "%s", msg);
			free(msg);
		}
	} else if (!rc) {
		rc = bng_vm_set(e, vm, BNG_VM_STATE, "stopped");
	}
	if (rc && vm && !strcmp(vm->state, "creating")) {
		/* failed before its VMM ever ran: nothing of it stays */
		char *msg = bng_strdup(banger_error_last());
		bng_vm_halt(e, vm, false, 0);
		bng_rm_rf(dir);
		const char *id = vm->id;
		bng_store_run(&e->store, "DELETE FROM vms WHERE id = ?1", 1, &id);
		bng_err(rc, "%s", msg);
		free(msg);
	}
	if (!rc) {
		bng_vm_stage(op, "ready", &t0);
		bng_vm_ssh_files_sync(e); /* best effort: `ssh <name>.vm` */
		rc = fresh_json(e, vm->id, result);
	}
	unlock_vm(e, vkey);
	bng_vm_free(vm);
	json_decref(image);
	json_decref(kernel);
	free(dir);
	free(name);
	return rc;
}

/* What start/stop/restart/kill do to a VM, under its lock. */
typedef int (*vm_action)(bng_engine *e, bng_vm_row *vm, json_t *params, bng_op *op);

/* Locks the VM named in params, runs action, returns the VM's fresh row. */
static int with_locked_vm(bng_engine *e, json_t *params, bng_op *op, json_t **result, vm_action action)
{
	bng_vm_row *vm;
	char *key;
	int rc = locked(e, params, op, &vm, &key);
	if (rc)
		return rc;
	rc = action(e, vm, params, op);
	if (!rc)
		rc = fresh_json(e, vm->id, result);
	unlock_vm(e, key);
	bng_vm_free(vm);
	return rc;
}

static int do_start(bng_engine *e, bng_vm_row *vm, json_t *params, bng_op *op)
{
	(void)params;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	const bng_vmm_driver *d = bng_vm_driver_of(vm);
	if (!strcmp(vm->state, "running") && d && d->alive(vm->vmm))
		return bng_err(BANGER_EBUSY, "vm '%s' is already running", vm->name);
	return bng_vm_boot(e, vm, op, &t0);
}

static int do_stop(bng_engine *e, bng_vm_row *vm, json_t *params, bng_op *op)
{
	(void)params;
	(void)op;
	return bng_vm_halt(e, vm, true, 0);
}

static int do_restart(bng_engine *e, bng_vm_row *vm, json_t *params, bng_op *op)
{
	(void)params;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = bng_vm_halt(e, vm, true, 0);
	return rc ? rc : bng_vm_boot(e, vm, op, &t0);
}

static int do_kill(bng_engine *e, bng_vm_row *vm, json_t *params, bng_op *op)
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
	return bng_vm_halt(e, vm, false, signo);
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

static int destroy(bng_engine *e, bng_vm_row *vm)
{
	int rc = bng_vm_halt(e, vm, false, SIGKILL); /* strays included */
	/* the row goes first: a daemon killed half way through the removal
	 * leaves a directory without a row, which the next engine removes, never
	 * a row whose disk is half gone */
	const char *id = vm->id;
	if (!rc)
		rc = bng_store_run(&e->store, "DELETE FROM vms WHERE id = ?1", 1, &id);
	char *dir = bng_vm_dir(e, vm);
	if (!rc)
		rc = bng_rm_rf(dir);
	free(dir);
	if (!rc)
		bng_vm_ssh_files_sync(e);
	return rc;
}

int bng_m_vm_delete(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	bng_vm_row *vm;
	char *key;
	int rc = locked(e, params, op, &vm, &key);
	if (rc)
		return rc;
	rc = destroy(e, vm);
	if (!rc)
		*result = json_pack("{s:s,s:s}", "id", vm->id, "name", vm->name);
	unlock_vm(e, key);
	bng_vm_free(vm);
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
static void lost(bng_engine *e, bng_vm_row *vm, const char *why)
{
	bng_vm_halt(e, vm, false, SIGKILL);
	bng_vm_set(e, vm, BNG_VM_STOP_REASON, why);
}

/* Refreshes a row's state against reality (a VM that died is stopped). */
static void refresh(bng_engine *e, bng_vm_row *vm)
{
	const bng_vmm_driver *d = bng_vm_driver_of(vm);
	if (!strcmp(vm->state, "running") && !(d && d->alive(vm->vmm)))
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
		bng_vm_row *vm;
		if (bng_vm_get(e, json_string_value(json_object_get(row, "id")), &vm) != 0)
			continue;
		refresh(e, vm);
		if (all || !strcmp(vm->state, "running"))
			json_array_append_new(out, bng_vm_json(vm));
		bng_vm_free(vm);
	}
	json_decref(rows);
	*result = json_pack("{s:o}", "vms", out);
	return 0;
}

int bng_m_vm_show(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	bng_vm_row *vm;
	int rc = bng_vm_get(e, json_string_value(json_object_get(params, "name")), &vm);
	if (rc)
		return rc;
	refresh(e, vm);
	char *dir = bng_vm_dir(e, vm);
	char *known = bng_asprintf("%s/known_hosts", dir);
	if (vm->host_key) { /* for `ssh` run by the CLI: this VM's key only */
		char *line = bng_asprintf("%s %s\n", vm->ip, vm->host_key);
		bng_write_file_atomic(known, line, strlen(line), 0600);
		free(line);
	}
	json_t *shown = bng_vm_json(vm);
	json_object_set_new(shown, "ssh", json_pack("{s:s,s:i,s:s,s:s,s:s}", "host", vm->ip, "port", 22,
						  "user", "root", "key", bng_config_str(&e->config, "ssh_key_path"),
						  "known_hosts", known));
	char *console = bng_asprintf("%s/console.log", dir);
	json_object_set_new(shown, "console_log", json_string(console));
	free(console);
	free(known);
	free(dir);
	bng_vm_free(vm);
	*result = shown;
	return 0;
}

int bng_m_vm_logs(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	bng_vm_row *vm;
	int rc = bng_vm_get(e, json_string_value(json_object_get(params, "name")), &vm);
	if (rc)
		return rc;
	char *dir = bng_vm_dir(e, vm);
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
	bng_vm_free(vm);
	return 0;
}

int bng_vm_link(bng_engine *e, const char *ref, bng_vm_row **vm, bng_agent_link **link)
{
	int rc = bng_vm_link_quiet(e, ref, vm, link);
	if (!rc)
		bng_vm_activity((*vm)->id, 0);
	return rc;
}

int bng_vm_stop_for(bng_engine *e, const char *ref, const char *reason)
{
	json_t *params = json_pack("{s:s}", "name", ref);
	bng_vm_row *vm;
	char *key;
	int rc = locked(e, params, NULL, &vm, &key);
	json_decref(params);
	if (rc)
		return rc;
	/* checked again under the lock: a user may have stopped or restarted it */
	if (strcmp(vm->state, "running"))
		rc = bng_err(BANGER_EBUSY, "vm '%s' is no longer running", vm->name);
	if (!rc)
		rc = bng_vm_halt(e, vm, true, 0);
	if (!rc)
		rc = bng_vm_set(e, vm, BNG_VM_STOP_REASON, reason);
	unlock_vm(e, key);
	bng_vm_free(vm);
	return rc;
}

int bng_vm_link_quiet(bng_engine *e, const char *ref, bng_vm_row **vm, bng_agent_link **link)
{
	*link = NULL;
	int rc = bng_vm_get(e, ref, vm);
	if (rc)
		return rc;
	bool vsock;
	const char *path = bng_vm_agent_channel((*vm)->vmm, &vsock);
	if (strcmp((*vm)->state, "running") || !path)
		rc = bng_err(BANGER_EUNSUPPORTED, "vm '%s' is not running", (*vm)->name);
	else
		rc = bng_agent_link_get(path, vsock, 30000, link); /* a guest just booted may be slow to answer */
	if (rc) {
		bng_vm_free(*vm);
		*vm = NULL;
	}
	return rc;
}

static int agent_op(bng_engine *e, json_t *params, const char *what, json_t **reply)
{
	bng_vm_row *vm;
	bng_agent_link *link;
	int rc = bng_vm_link(e, json_string_value(json_object_get(params, "name")), &vm, &link);
	if (rc)
		return rc;
	bng_agent_watch watch = bng_vm_watch(vm, NULL);
	rc = bng_agent_link_call(link, what, 15000, &watch, reply);
	bng_agent_link_unref(link);
	bng_vm_free(vm);
	return rc;
}

int bng_m_vm_stats(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	bng_vm_row *vm;
	int rc = bng_vm_get(e, json_string_value(json_object_get(params, "name")), &vm);
	if (rc)
		return rc;
	json_int_t pid = json_integer_value(json_object_get(vm->vmm, "pid")); /* the driver's state */
	*result = json_pack("{s:s,s:s}", "name", vm->name, "state", vm->state);
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
	if (!strcmp(vm->state, "running") && agent_op(e, params, "health", &health) == 0)
		json_object_set(*result, "guest_uptime_s", json_object_get(health, "uptime_s"));
	json_decref(health);
	bng_vm_free(vm);
	return 0;
}

int bng_m_vm_set(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	bng_vm_row *vm;
	char *key;
	int rc = locked(e, params, op, &vm, &key);
	if (rc)
		return rc;
	if (strcmp(vm->state, "stopped"))
		rc = bng_err(BANGER_EBUSY, "vm '%s' must be stopped to change it", vm->name);
	unsigned changed = 0;
	json_t *v;
	if (!rc && (v = json_object_get(params, "vcpu"))) {
		if (json_integer_value(v) < 1 || json_integer_value(v) > 64)
			rc = bng_err(BANGER_EINVAL, "vcpu must be between 1 and 64");
		vm->vcpu = (int)json_integer_value(v);
		changed |= BNG_VM_VCPU;
	}
	if (!rc && (v = json_object_get(params, "memory_mib"))) {
		if (json_integer_value(v) < 128 || json_integer_value(v) > (1 << 20))
			rc = bng_err(BANGER_EINVAL, "memory must be between 128 and 1048576 MiB");
		vm->memory_mib = (int)json_integer_value(v);
		changed |= BNG_VM_MEMORY_MIB;
	}
	if (!rc && (v = json_object_get(params, "disk_size"))) {
		uint64_t size;
		rc = bng_parse_size(json_string_value(v), &size);
		if (!rc && size < vm->disk_size)
			rc = bng_err(BANGER_EINVAL, "disks only grow: %s is smaller than the current size", json_string_value(v));
		if (!rc && size > vm->disk_size) {
			/* grow the sparse file, then the filesystem in it (e2fsprogs) */
			char *dir = bng_vm_dir(e, vm);
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
			vm->disk_size = size;
			changed |= BNG_VM_DISK_SIZE;
		}
	}
	if (!rc)
		rc = bng_vm_save(e, vm, changed);
	if (!rc)
		rc = fresh_json(e, vm->id, result);
	unlock_vm(e, key);
	bng_vm_free(vm);
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
		bng_vm_row *vm = NULL;
		if (bng_vm_get(e, de->d_name, &vm) == 0 && !strcmp(vm->state, "running")) {
			bng_vm_free(vm);
			continue;
		}
		if (vm && !strcmp(vm->state, "error")) { /* kept for a post-mortem */
			bng_vm_free(vm);
			continue;
		}
		bng_vm_free(vm);
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
		bng_vm_row *vm;
		if (bng_vm_get(e, json_string_value(json_object_get(row, "id")), &vm) != 0)
			continue;
		const char *state = vm->state;
		const bng_vmm_driver *d = bng_vm_driver_of(vm);
		bool alive = d && json_is_object(vm->vmm) && d->alive(vm->vmm);
		if (!strcmp(state, "creating")) {
			destroy(e, vm); /* a create the daemon died in: remove every trace */
		} else if (!strcmp(state, "stopping")) {
			bng_vm_halt(e, vm, false, SIGKILL); /* a stop the daemon died in: finish it */
		} else if (!strcmp(state, "starting")) {
			/* a start the daemon died in: its caller got an error, and the
			 * boot's later steps (agent, boot_id, identity) never ran */
			bng_vm_halt(e, vm, false, SIGKILL);
			bng_vm_set(e, vm, BNG_VM_STOP_REASON, "bangerd stopped during its start: start it again");
		} else if (!strcmp(state, "running")) {
			if (!alive)
				lost(e, vm, VMM_LOST);
		} else if (strcmp(state, "error")) {
			/* stopped: a start or stop the daemon died in may have left a
			 * VMM it had not recorded yet, the tap, the runtime directory */
			bng_vm_halt(e, vm, false, SIGKILL);
		}
		bng_vm_free(vm);
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
	bng_vm_nat_sync(e); /* best effort: no rules for VMs that died with the last engine */
	bng_vm_ssh_files_sync(e);
	return 0;
}

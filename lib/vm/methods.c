/* The VM module's methods (vm.*) and its hooks: re-adopting VMs at engine
 * open (bng_vm_reconcile, which also makes the warm tap pool), the pool in
 * engine.status, and stopping the pool's refill thread at close; the vm.
 * zone (dns.c) in engine.status and doctor, served from open to close. */
#include "vm.h"
#include "idle.h"
#include "tap_pool.h"

static void vm_status(bng_engine *e, json_t *status)
{
	json_object_set_new(status, "tap_pool", e->tap_pool ? bng_tap_pool_status(e->tap_pool) : json_null());
	json_object_set_new(status, "auto_stop", bng_idle_status(e->idle));
	json_object_set_new(status, "dns", bng_vm_dns_status(e));
}

/* What bangerd runs for as long as it serves: the vm. zone and the idle
 * watcher. */
static void vm_services(bng_engine *e)
{
	bng_vm_dns_open(e);
	e->idle = bng_idle_start(e, bng_config_int(&e->config, "auto_stop_stale_after"));
}

static void vm_close(bng_engine *e)
{
	bng_idle_free(e->idle); /* first: it may be stopping a VM */
	e->idle = NULL;
	bng_vm_dns_close(e);
	bng_tap_pool_free(e->tap_pool);
	e->tap_pool = NULL;
}

static const bng_method vm_methods[] = {
	{"vm.create", "name:str?,image:str?,kernel:str?,vcpu:int?,memory_mib:int?,disk_size:str?,start:bool?,nat:bool?,"
	 "init:str?",
	 "create (and boot) a VM; events: spec, then each stage with its seconds", bng_m_vm_create, "0.1"},
	{"vm.start", "name:str", "boot a stopped VM (its disk kept)", bng_m_vm_start, "0.1"},
	{"vm.stop", "name:str", "sync and power off, bounded wait, then kill", bng_m_vm_stop, "0.1"},
	{"vm.restart", "name:str", "stop then start (a new boot_id)", bng_m_vm_restart, "0.1"},
	{"vm.kill", "name:str,signal:str?", "signal the VMM (default KILL); the VM ends stopped", bng_m_vm_kill, "0.1"},
	{"vm.delete", "name:str", "kill and remove a VM with its disk", bng_m_vm_delete, "0.1"},
	{"vm.prune", "", "delete every VM that is not running", bng_m_vm_prune, "0.1"},
	{"vm.list", "all:bool?", "running VMs (all: every VM)", bng_m_vm_list, "0.1"},
	{"vm.show", "name:str", "one VM, with how to reach it over SSH", bng_m_vm_show, "0.1"},
	{"vm.logs", "name:str,tail_bytes:int?", "the guest's console output", bng_m_vm_logs, "0.1"},
	{"vm.exec",
	 "name:str,argv:arr,stdin:str?,stdin_stream:bool?,timeout_s:int?,cwd:str?,env:arr?,user:str?,tty:bool?,"
	 "rows:int?,cols:int?,stream:bool?",
	 "run a command over the guest agent: exit_code (and stdout, stderr unless streamed as events)",
	 bng_m_vm_exec, "0.1"},
	{"vm.cp", "name:str,direction:str,host_path:str,guest_path:str",
	 "copy a file or directory into (in) or out of (out) a running guest as a tar stream: bytes, files",
	 bng_m_vm_cp, "0.2"},
	{"vm.ports", "name:str",
	 "listening ports in the guest (from the agent), one row per service, with a <name>.vm endpoint and "
	 "http/https found by probing",
	 bng_m_vm_ports, "0.1"},
	{"vm.stats", "name:str", "VMM cpu time and memory, guest uptime", bng_m_vm_stats, "0.1"},
	{"vm.set", "name:str,vcpu:int?,memory_mib:int?,disk_size:str?", "change a stopped VM's spec", bng_m_vm_set, "0.1"},
	{"vm.ssh_config", "",
	 "the files that let stock OpenSSH reach every VM as <name>.vm: config (to Include), known_hosts, key, "
	 "block (the Host *.vm defaults)",
	 bng_m_vm_ssh_config, "0.2"},
	{"vm.workspace.prepare",
	 "name:str?,path:str,guest_path:str?,mode:str?,include_untracked:bool?,dry_run:bool?,force:bool?",
	 "a host git repository into a running guest (shallow clone + working tree overlay): guest_path, "
	 "head_commit, files, bytes (dry_run: the file list, nothing written)",
	 bng_m_vm_workspace_prepare, "0.2"},
	{"vm.workspace.export", "name:str,base_commit:str?",
	 "the guest checkout's changes since base_commit (default: the prepared commit) as a binary patch: "
	 "patch (or patch_b64), files",
	 bng_m_vm_workspace_export, "0.2"},
	{"vm.workspace.show", "name:str", "the VM's workspace record", bng_m_vm_workspace_show, "0.2"},
	{"vm.workspace.status", "name:str",
	 "the workspace record plus whether the host tree changed since it was shipped: changed, reason, host_head",
	 bng_m_vm_workspace_status, "0.2"},
	{"vm.session.start",
	 "name:str,session:str,argv:arr,cwd:str?,env:arr?,stdin_mode:str?,tty:bool?,require:arr?",
	 "start a durable session (the guest owns it: it outlives the CLI and bangerd) after a preflight of "
	 "cwd, the command and each required command on the guest PATH: the session",
	 bng_m_vm_session_start, "0.2"},
	{"vm.session.list", "name:str", "the VM's sessions (the store's last view while it is not running)",
	 bng_m_vm_session_list, "0.2"},
	{"vm.session.show", "name:str,session:str", "one session: state, pid, exit status, times, attached",
	 bng_m_vm_session_show, "0.2"},
	{"vm.session.logs",
	 "name:str,session:str,output:str?,follow:bool?,tail:int?,stream:bool?",
	 "a session's output (both streams in order, or output stdout|stderr), follow until it ends; as vm.exec "
	 "returns output",
	 bng_m_vm_session_logs, "0.2"},
	{"vm.session.attach",
	 "name:str,session:str,holder:str?,stdin_stream:bool?,tty:bool?,rows:int?,cols:int?,stream:bool?",
	 "attach to a running session (one client at a time: EBUSY names the holder); as vm.exec with input; "
	 "Ctrl-] detaches",
	 bng_m_vm_session_attach, "0.2"},
	{"vm.session.send", "name:str,session:str,data:str",
	 "write data to a pipe session's stdin without attaching (atomic up to 4096 bytes): bytes",
	 bng_m_vm_session_send, "0.2"},
	{"vm.session.stop", "name:str,session:str", "TERM the session's process group, KILL after 10 s: the session",
	 bng_m_vm_session_stop, "0.2"},
	{"vm.session.kill", "name:str,session:str,signal:str?", "signal the session's process group (default KILL)",
	 bng_m_vm_session_kill, "0.2"},
};

const bng_module bng_vm_module = {.name = "vm",
				  .methods = vm_methods,
				  .nmethods = BNG_ARRAY_LEN(vm_methods),
				  .reconcile = bng_vm_reconcile,
				  .status = vm_status,
				  .doctor = bng_vm_dns_doctor,
				  .services = vm_services,
				  .close = vm_close};

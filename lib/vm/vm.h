/* VMs: the lifecycle (create, start, stop, restart, kill, delete), their
 * rows in the store, per-VM disks and files, and re-adoption of running VMs
 * when the engine starts. */
#ifndef BANGER_VM_H
#define BANGER_VM_H

#include "../guest/link.h"
#include "../method/method.h"

#include <stdbool.h>
#include <stdint.h>

/* A VM's row (lib/vm/records.c reads and saves it). Strings are owned and
 * NULL where the column is NULL; state and tap are never NULL. */
typedef struct bng_vm_row {
	char *id, *name, *image_id, *kernel_id;
	int vcpu, memory_mib;
	uint64_t disk_size;
	char *state;  /* creating, starting, running, stopping, stopped, error */
	char *driver; /* the VMM driver's name; "none" before the first boot */
	json_t *vmm;  /* the driver's state of its running VMM (NULL: none) */
	char *ip, *mac;
	char *tap; /* "" while it has none */
	bool nat;
	char *host_key, *boot_id, *error, *stop_reason, *created_at, *started_at;
	char *init; /* who is PID 1: "banger" or "systemd" */
	bool sshd;
} bng_vm_row;

/* The columns, for bng_vm_save: bit i is the row's i-th field above. */
enum bng_vm_column {
	BNG_VM_ID = 1u << 0, BNG_VM_NAME = 1u << 1, BNG_VM_IMAGE_ID = 1u << 2, BNG_VM_KERNEL_ID = 1u << 3,
	BNG_VM_VCPU = 1u << 4, BNG_VM_MEMORY_MIB = 1u << 5, BNG_VM_DISK_SIZE = 1u << 6, BNG_VM_STATE = 1u << 7,
	BNG_VM_DRIVER = 1u << 8, BNG_VM_VMM = 1u << 9, BNG_VM_IP = 1u << 10, BNG_VM_MAC = 1u << 11,
	BNG_VM_TAP = 1u << 12, BNG_VM_NAT = 1u << 13, BNG_VM_HOST_KEY = 1u << 14, BNG_VM_BOOT_ID = 1u << 15,
	BNG_VM_ERROR = 1u << 16, BNG_VM_STOP_REASON = 1u << 17, BNG_VM_CREATED_AT = 1u << 18,
	BNG_VM_STARTED_AT = 1u << 19, BNG_VM_INIT = 1u << 20, BNG_VM_SSHD = 1u << 21,
};
#define BNG_VM_NCOLUMNS 22

/* The VM ref names (id or name) as a new *vm; bng_vm_free frees it. */
int bng_vm_get(bng_engine *e, const char *ref, bng_vm_row **vm);
void bng_vm_free(bng_vm_row *vm);
/* The row as the wire shows it (vm.show, vm.list): every column, vmm as
 * an object, nat and sshd as booleans. */
json_t *bng_vm_json(const bng_vm_row *vm);

/* Marks dead VMs stopped (freeing their taps) and removes half-created ones;
 * VMs whose VMM still runs are kept as they are. The vm module's reconcile
 * hook (engine open); it also makes the warm tap pool. */
int bng_vm_reconcile(bng_engine *e);

/* The running VM ref names (*vm, a new row) and the link to its
 * guest agent (a new reference). EUNSUPPORTED when it is not running. */
int bng_vm_link(bng_engine *e, const char *ref, bng_vm_row **vm, bng_agent_link **link);
/* bng_vm_link without marking the VM used (idle.c), for the idle watcher. */
int bng_vm_link_quiet(bng_engine *e, const char *ref, bng_vm_row **vm, bng_agent_link **link);
/* Stops ref as vm.stop does if it still runs, and records why in its row's
 * stop_reason (cleared at the next boot). */
int bng_vm_stop_for(bng_engine *e, const char *ref, const char *reason);
/* What a wait on vm's agent watches: op's cancellation, the VMM's process. */
bng_agent_watch bng_vm_watch(const bng_vm_row *vm, bng_op *op);

/* A guest command's output: stdout in buf[0], stderr in buf[1], each kept
 * NUL-terminated (exec.c). */
typedef struct bng_output {
	char *buf[2];
	size_t len[2], cap[2];
} bng_output;
void bng_output_append(bng_output *o, int fd, const char *data, size_t len);
/* A bng_exec_io output callback appending to the bng_output in ud. */
int bng_output_collect(void *ud, int fd, const char *data, size_t len);
void bng_output_free(bng_output *o);

/* Runs spec (borrowed: {"argv",...}) in vm's guest with io (may be NULL)
 * until it ends, as vm.exec does: *code gets its exit status (128 + N for
 * signal N), *status (may be NULL) the agent's whole answer. */
int bng_vm_guest_run(bng_agent_link *link, const bng_vm_row *vm, bng_op *op, json_t *spec, const bng_exec_io *io,
		     int timeout_ms, int *code, json_t **status);

/* Streams host_path as one tar whose entries sit under top into the stdin
 * of spec (borrowed) run in vm's guest (cp.c); out (may be NULL) collects
 * the command's output, *code gets its exit status, *bytes (may be NULL)
 * the stream's size. Fails on the host side's errors and refusals; a
 * command that failed is the caller's to read in *code and out. */
int bng_vm_tar_in(bng_agent_link *link, const bng_vm_row *vm, const char *host_path, const char *top, json_t *spec,
		  bng_output *out, int *code, size_t *bytes, bng_op *op);

/* Rewrites <state>/ssh/known_hosts and <state>/ssh/config from the VM rows
 * (ssh_config.c); called whenever VMs come or go. */
int bng_vm_ssh_files_sync(bng_engine *e);

/* The developer's git identity, banger's SSH key, AI tool credentials and
 * [[file_sync]] files into a running VM through its agent (identity.c).
 * Problems become warning events and *report's "warnings"; *report also
 * lists the guest paths "synced". */
int bng_vm_identity_sync(bng_engine *e, const bng_vm_row *vm, bng_op *op, json_t **report);

/* The vm. zone (dns.c): served from reconcile (dns_listen) to close; the
 * guest-facing listener on <bridge_ip>:53 is tried again at each boot until
 * it serves. Status and doctor never fail. */
typedef struct bng_vm_dns bng_vm_dns;
void bng_vm_dns_open(bng_engine *e);
void bng_vm_dns_close(bng_engine *e);
void bng_vm_dns_guest(bng_engine *e);
bool bng_vm_dns_guest_served(bng_engine *e);
json_t *bng_vm_dns_status(bng_engine *e);
void bng_vm_dns_doctor(bng_engine *e, json_t *checks);

/* The vm module (methods.c): the vm.* methods and hooks, for lib/modules.c. */
extern const bng_module bng_vm_module;

int bng_m_vm_create(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_start(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_stop(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_restart(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_kill(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_delete(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_prune(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_list(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_show(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_logs(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_exec(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_cp(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_ports(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_stats(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_set(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_ssh_config(bng_engine *e, json_t *params, json_t **result, bng_op *op);
/* workspace.c */
int bng_m_vm_workspace_prepare(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_workspace_export(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_workspace_show(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_workspace_status(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_session_start(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_session_list(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_session_show(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_session_logs(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_session_attach(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_session_send(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_session_stop(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_vm_session_kill(bng_engine *e, json_t *params, json_t **result, bng_op *op);

#endif

/* Hypervisor drivers: one vtable, a driver per VMM (qemu, firecracker).
 * A driver starts a VM process that outlives the daemon (own session, no
 * signals forwarded), talks to it over its control socket, and can re-find
 * it later from the state it returned (pid + sockets). Empty slots mean the
 * driver cannot do that: callers get BANGER_EUNSUPPORTED naming the driver. */
#ifndef BANGER_VMM_H
#define BANGER_VMM_H

#include "../core/op.h"

#include <stdbool.h>
#include <sys/types.h>

#define BNG_VMM_MAX_DISKS 4

typedef struct bng_vm_disk {
	const char *path;
	bool read_only;
} bng_vm_disk;

/* Everything a driver needs to boot one VM. Strings are borrowed. */
typedef struct bng_vm_config {
	const char *id;         /* VM id: names sockets and processes */
	const char *run_dir;    /* per-VM runtime dir (exists, 0700): control/agent sockets live here */
	const char *console_log;/* the guest's serial console goes here (appended) */
	const char *process_log;/* the VMM's own stdout/stderr */
	int vcpus;
	int mem_mib;
	const char *kernel_dir; /* holds vmlinuz (qemu), vmlinux (firecracker), initrd.img */
	const char *cmdline;    /* banger's kernel arguments (banger.root=..., banger.overlay=...); drivers add
				   their own console settings */
	bng_vm_disk disks[BNG_VMM_MAX_DISKS]; /* in order: vda, vdb, ... */
	int ndisks;
	const char *tap;        /* host tap device, NULL for no network */
	const char *mac;        /* guest MAC for the tap */
	const char *binary;     /* VMM executable; NULL: the driver's default on PATH */
	bool kvm;               /* qemu: -accel kvm instead of tcg */
	/* firecracker (config firecracker_jailer, _uid, _gid, _log_max): */
	bool jailer;            /* run it under its jailer (root only; `jailer` next to the binary) */
	uid_t jail_uid;         /* the ids the jailer drops to (read only with jailer) */
	gid_t jail_gid;
	long long log_max;      /* bytes past which firecracker.log and .metrics are rotated; 0: 4 MiB */
} bng_vm_config;

enum {
	BNG_VMM_FEAT_PAUSE = 1 << 0,
	BNG_VMM_FEAT_SNAPSHOT = 1 << 1,
	BNG_VMM_FEAT_VSOCK = 1 << 2,
};

typedef struct bng_vmm_driver {
	const char *name;
	unsigned features;
	/* The guest agent op that ends the guest so that this VMM exits, sent
	 * after "sync" on a graceful stop: "poweroff" where the machine can
	 * power off (qemu: ACPI), "reboot" where only a reset ends the process
	 * (firecracker: x86 has no ACPI power-off, a powered-off guest leaves
	 * Firecracker running; reboot=k's i8042 reset makes it exit). NULL
	 * means "poweroff". */
	const char *stop_op;
	/* Starts the VM and returns once the VMM runs the guest (not once the
	 * guest has booted). *state (new JSON object) records what later calls
	 * and a restarted daemon need: {"driver","pid","control_socket",
	 * "agent":{"kind":"unix"|"vsock_uds","path","port"?}, ...}. On failure
	 * nothing is left running and the error names the VMM's last words
	 * (from process_log). */
	int (*start)(const bng_vm_config *cfg, bng_op *op, json_t **state);
	/* Asks the guest to go (ACPI power button / Ctrl-Alt-Del), waits up to
	 * timeout_ms for the process to exit; BANGER_ETIMEDOUT if it did not
	 * (the caller then kills). */
	int (*shutdown)(json_t *state, int timeout_ms);
	/* Sends signal to the VMM process (SIGKILL when 0) and waits for it to go. */
	int (*kill)(json_t *state, int signal);
	int (*pause)(json_t *state);
	int (*resume)(json_t *state);
	int (*snapshot)(json_t *state, const char *dir);
	int (*restore)(const bng_vm_config *cfg, const char *dir, bng_op *op, json_t **state);
	/* True if the process in state is still this VM's VMM (pid alive with
	 * its recorded start time, same executable; qemu also asks QMP): used to
	 * re-adopt VMs after a daemon restart and to notice dead ones.
	 * firecracker answers from the process alone: its one API thread may be
	 * busy for minutes (a snapshot) and the VM is not dead for it. */
	bool (*alive)(json_t *state);
	/* Once the VMM is gone (stopped, killed, or found dead): gives back what
	 * start/restore handed to it (jailed firecracker: file ownership) and
	 * removes what it left (sockets, the jail). BANGER_EBUSY while the VMM
	 * runs; idempotent. NULL: nothing to do. shutdown and kill do it
	 * themselves when the VMM goes. */
	int (*release)(json_t *state);
	/* Kills this driver's VMM processes for VM id (runtime dir run_dir)
	 * that no state records: the daemon died between spawning one and
	 * writing the VM's state. Recognises its own (a jailed Firecracker's
	 * command line names no host path). NULL: the caller's command-line
	 * match (run_dir) does. */
	void (*kill_strays)(const char *id, const char *run_dir);
} bng_vmm_driver;

/* The drivers, one file each (vmm.c lists them for bng_vmm_driver_get). */
extern const bng_vmm_driver bng_vmm_qemu; /* qemu.c */

/* Looks a driver up by name; NULL (with BANGER_ECONFIG naming the known
 * drivers as the last error) when there is none. */
const bng_vmm_driver *bng_vmm_driver_get(const char *name);

/* Calls that go through the vtable and turn empty slots into
 * BANGER_EUNSUPPORTED "<driver> cannot <what>". */
int bng_vmm_pause(const bng_vmm_driver *d, json_t *state);
int bng_vmm_resume(const bng_vmm_driver *d, json_t *state);
int bng_vmm_snapshot(const bng_vmm_driver *d, json_t *state, const char *dir);

/* True once the VMM process that state records (pid and start time) has
 * exited: a process check only, cheap enough to call between polls. */
bool bng_vmm_process_gone(json_t *state);

/* Every driver's kill_strays for VM id: run after the VM's recorded VMM is
 * gone, when any process left for it is a stray (whichever driver, or
 * none, the row names). */
void bng_vmm_kill_strays(const char *id, const char *run_dir);

/* The kernel qemu boots from kernel_dir (malloc'd into *path): the ELF
 * vmlinux when it has a PVH entry, else the bzImage vmlinuz; ENOTFOUND
 * when neither can boot. */
int bng_qemu_kernel_path(const char *kernel_dir, char **path);

/* Whether qemu can run guests under KVM here: boots kernel_dir's kernel
 * and initramfs with banger.probe=1 under -accel kvm and waits up to
 * timeout_ms for init's "banger-init: probe ok" (a /dev/kvm that opens may
 * still hang guests). *why (malloc'd) explains the verdict. */
int bng_qemu_kvm_usable(const char *kernel_dir, const char *qemu_binary, int timeout_ms, bool *usable, char **why);

#endif

/* The qemu driver: qemu-system-x86_64 -M microvm, driven over QMP.
 *
 * The VM process is spawned detached (double fork, own session, stdio to the
 * process log) so it outlives the daemon and is reaped by init; everything a
 * later call or a restarted daemon needs is in the state object: pid, process
 * start time (guards against pid reuse), resolved executable, QMP socket and
 * the agent's virtio-serial socket. */
#include "../core/proc.h"
#include "qmp.h"
#include "vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#define QEMU_DEFAULT_BINARY "qemu-system-x86_64"
#define QEMU_START_TIMEOUT_MS 10000
#define QEMU_QMP_TIMEOUT_MS 5000
#define QEMU_KILL_WAIT_MS 10000

extern char **environ;

/* ---- state ---- */

typedef struct {
	pid_t pid;
	unsigned long long start;
	const char *exe;
	const char *qmp;
} qstate;

static int state_parse(json_t *state, qstate *s)
{
	memset(s, 0, sizeof(*s));
	json_t *pid = json_object_get(state, "pid");
	if (!json_is_integer(pid) || json_integer_value(pid) <= 0 || json_integer_value(pid) > INT_MAX)
		return bng_err(BANGER_EINVAL, "qemu VM state has no valid pid (was it written by the qemu driver?)");
	s->pid = (pid_t)json_integer_value(pid);
	json_t *start = json_object_get(state, "proc_start");
	if (json_is_integer(start))
		s->start = (unsigned long long)json_integer_value(start);
	s->exe = json_string_value(json_object_get(state, "exe"));
	s->qmp = json_string_value(json_object_get(state, "control_socket"));
	if (!s->qmp)
		return bng_err(BANGER_EINVAL, "qemu VM state has no control_socket (was it written by the qemu driver?)");
	return 0;
}

/* True if pid still runs this VM's qemu: same start time and executable. A
 * binary replaced by a package upgrade reads as "<path> (deleted)" and still
 * counts. */
static bool state_proc_ours(const qstate *s)
{
	if (bng_proc_gone(s->pid, s->start))
		return false;
	if (!s->exe)
		return true;
	char path[64], exe[PATH_MAX + 16];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)s->pid);
	ssize_t n = readlink(path, exe, sizeof(exe) - 1);
	if (n < 0)
		return false;
	exe[n] = '\0';
	size_t len = strlen(s->exe);
	return strncmp(exe, s->exe, len) == 0 && (exe[len] == '\0' || strcmp(exe + len, " (deleted)") == 0);
}

/* ---- building the command line ---- */

typedef struct {
	char **v;
	size_t n, cap;
} strv;

static void strv_add(strv *a, char *s) /* takes s */
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		char **nv = realloc(a->v, a->cap * sizeof(*nv));
		if (!nv)
			abort();
		a->v = nv;
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void strv_free(strv *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
}

static void arg(strv *a, const char *s)
{
	strv_add(a, bng_strdup(s));
}

static void argf(strv *a, const char *fmt, ...) BNG_PRINTF(2, 3);
static void argf(strv *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	strv_add(a, bng_vasprintf(fmt, ap));
	va_end(ap);
}

/* QEMU option values separate on ',': a literal comma is written twice. */
static char *opt_escape(const char *s)
{
	size_t extra = 0;
	for (const char *p = s; *p; p++)
		extra += *p == ',';
	char *out = bng_xmalloc(strlen(s) + extra + 1), *o = out;
	for (const char *p = s; *p; p++) {
		*o++ = *p;
		if (*p == ',')
			*o++ = ',';
	}
	*o = '\0';
	return out;
}

/* The host's TSC rate in kHz, 0 when unknown. Under TCG the guest's TSC is
 * the host's, and a guest kernel that must calibrate it against the PIT
 * fails whenever the host is busy ("tsc: Unable to calibrate against PIT")
 * and then hangs early in boot; tsc_early_khz= skips that calibration.
 * Measured once per process against CLOCK_MONOTONIC_RAW over 20 ms. */
static unsigned long host_tsc_khz_value;

#if defined(__x86_64__)
static bool tsc_sample(long long *ns, unsigned long long *tsc)
{
	long long best = -1;
	for (int i = 0; i < 5; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC_RAW, &a);
		unsigned long long t = __rdtsc();
		clock_gettime(CLOCK_MONOTONIC_RAW, &b);
		long long an = (long long)a.tv_sec * 1000000000 + a.tv_nsec;
		long long bn = (long long)b.tv_sec * 1000000000 + b.tv_nsec;
		if (best < 0 || bn - an < best) {
			best = bn - an;
			*ns = an + (bn - an) / 2;
			*tsc = t;
		}
	}
	return best >= 0 && best < 50000; /* a preempted sample would skew the rate */
}
#endif

static void host_tsc_khz_measure(void)
{
#if defined(__x86_64__)
	char *cpuinfo = NULL;
	if (bng_read_file("/proc/cpuinfo", &cpuinfo, NULL) != 0)
		return;
	/* Only an invariant TSC ticks at one rate the guest can be told. */
	bool invariant = strstr(cpuinfo, " constant_tsc") && strstr(cpuinfo, " nonstop_tsc");
	free(cpuinfo);
	if (!invariant)
		return;
	long long ns0, ns1;
	unsigned long long c0, c1;
	if (!tsc_sample(&ns0, &c0))
		return;
	struct timespec d = {.tv_nsec = 20 * 1000 * 1000};
	while (nanosleep(&d, &d) != 0 && errno == EINTR)
		;
	if (!tsc_sample(&ns1, &c1) || ns1 <= ns0 || c1 <= c0)
		return;
	host_tsc_khz_value = (unsigned long)((double)(c1 - c0) * 1e6 / (double)(ns1 - ns0));
#endif
}

static unsigned long host_tsc_khz(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, host_tsc_khz_measure);
	return host_tsc_khz_value;
}

/* The kernel's CONFIG_HZ from <kernel dir>/config, 0 when unknown. */
static unsigned long kernel_hz(const char *kernel_dir)
{
	char *path = bng_asprintf("%s/config", kernel_dir ? kernel_dir : ""), *text = NULL;
	unsigned long hz = 0;
	if (kernel_dir && bng_read_file(path, &text, NULL) == 0) {
		const char *v = strstr(text, "\nCONFIG_HZ=");
		v = !strncmp(text, "CONFIG_HZ=", 10) ? text + 10 : v ? v + 11 : NULL;
		if (v)
			hz = strtoul(v, NULL, 10);
	}
	free(text);
	free(path);
	return hz >= 100 && hz <= 1000 ? hz : 0;
}

typedef struct {
	char *qmp, *agent, *kernel, *initrd;
} qpaths;

static void qpaths_free(qpaths *p)
{
	free(p->qmp);
	free(p->agent);
	free(p->kernel);
	free(p->initrd);
}

static void build_argv(strv *a, const bng_vm_config *cfg, const char *exe, const qpaths *p, bool with_initrd)
{
	char *e;
	arg(a, exe);
	if (cfg->id && *cfg->id) {
		e = opt_escape(cfg->id);
		arg(a, "-name");
		argf(a, "banger-%s", e);
		free(e);
	}
	/* microvm's defaults (ACPI on) are what lets modular virtio_mmio find its
	 * devices: they are enumerated in the DSDT, not on the command line. */
	arg(a, "-M");
	arg(a, "microvm");
	arg(a, "-accel");
	arg(a, cfg->kvm ? "kvm" : "tcg");
	arg(a, "-cpu");
	arg(a, cfg->kvm ? "host" : "max");
	arg(a, "-smp");
	argf(a, "%d", cfg->vcpus);
	arg(a, "-m");
	argf(a, "%d", cfg->mem_mib);
	arg(a, "-nodefaults");
	arg(a, "-no-user-config");
	arg(a, "-nographic");
	arg(a, "-no-reboot");
	arg(a, "-kernel");
	arg(a, p->kernel);
	if (with_initrd) {
		arg(a, "-initrd");
		arg(a, p->initrd);
	}
	char tsc[80] = "";
	unsigned long khz = cfg->kvm ? 0 : host_tsc_khz(), hz = khz ? kernel_hz(cfg->kernel_dir) : 0;
	/* lpj= (TSC ticks per jiffy): each secondary vCPU would calibrate its
	 * delay loop otherwise, ~0.15 s of an emulated boot per vCPU */
	if (khz && hz)
		snprintf(tsc, sizeof(tsc), " tsc_early_khz=%lu lpj=%lu", khz, khz * 1000 / hz);
	else if (khz)
		snprintf(tsc, sizeof(tsc), " tsc_early_khz=%lu", khz);
	arg(a, "-append");
	argf(a, "console=ttyS0 panic=-1 reboot=t%s%s%s", tsc, cfg->cmdline && *cfg->cmdline ? " " : "",
	     cfg->cmdline ? cfg->cmdline : "");

	e = opt_escape(cfg->console_log);
	arg(a, "-chardev");
	argf(a, "file,id=console,path=%s,append=on", e);
	free(e);
	arg(a, "-serial");
	arg(a, "chardev:console");

	for (int i = 0; i < cfg->ndisks; i++) {
		e = opt_escape(cfg->disks[i].path);
		arg(a, "-drive");
		/* Writeback cache: the shared read-only base is cached once by the
		 * host for all its VMs. discard keeps per-VM disks sparse. */
		if (cfg->disks[i].read_only)
			argf(a, "if=none,id=disk%d,file=%s,format=raw,readonly=on,cache=writeback,aio=threads", i, e);
		else
			argf(a, "if=none,id=disk%d,file=%s,format=raw,cache=writeback,aio=threads,discard=unmap,"
				"detect-zeroes=unmap", i, e);
		free(e);
		arg(a, "-device");
		argf(a, "virtio-blk-device,drive=disk%d", i);
	}

	if (cfg->tap && *cfg->tap) {
		e = opt_escape(cfg->tap);
		arg(a, "-netdev");
		argf(a, "tap,id=net0,ifname=%s,script=no,downscript=no,vhost=off", e);
		free(e);
		arg(a, "-device");
		if (cfg->mac && *cfg->mac) {
			char *m = opt_escape(cfg->mac);
			argf(a, "virtio-net-device,netdev=net0,mac=%s", m);
			free(m);
		} else {
			arg(a, "virtio-net-device,netdev=net0");
		}
	}

	/* The guest agent's channel: vhost-vsock is not available everywhere,
	 * virtio-serial to a host Unix socket is. */
	arg(a, "-device");
	arg(a, "virtio-serial-device");
	e = opt_escape(p->agent);
	arg(a, "-chardev");
	argf(a, "socket,id=agent,path=%s,server=on,wait=off", e);
	free(e);
	arg(a, "-device");
	arg(a, "virtserialport,chardev=agent,name=banger.agent");

	e = opt_escape(p->qmp);
	arg(a, "-chardev");
	argf(a, "socket,id=qmp,path=%s,server=on,wait=off", e);
	free(e);
	arg(a, "-mon");
	arg(a, "chardev=qmp,mode=control");
}

/* ---- the kernel ---- */

static uint64_t rd_le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	while (n--)
		v = v << 8 | p[n];
	return v;
}

/* Whether an x86-64 ELF kernel carries Xen's PVH entry note
 * (XEN_ELFNOTE_PHYS32_ENTRY): qemu then boots it directly, without the
 * bzImage's real-mode setup and decompression (about 0.5 s under TCG). */
static bool elf_has_pvh_entry(const char *path)
{
	enum { PT_NOTE = 4, XEN_ELFNOTE_PHYS32_ENTRY = 18, MAX_NOTES = 64 << 10 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	unsigned char eh[64];
	bool found = false;
	if (pread(fd, eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) || memcmp(eh, "\x7f" "ELF", 4) != 0 || eh[4] != 2 ||
	    eh[5] != 1 || rd_le(eh + 18, 2) != 62 || rd_le(eh + 54, 2) != 56)
		goto out;
	uint64_t phoff = rd_le(eh + 32, 8);
	unsigned phnum = (unsigned)rd_le(eh + 56, 2);
	for (unsigned i = 0; i < phnum && !found; i++) {
		unsigned char ph[56];
		if (phoff > INT64_MAX - 56 * (uint64_t)phnum ||
		    pread(fd, ph, sizeof(ph), (off_t)(phoff + 56 * (uint64_t)i)) != (ssize_t)sizeof(ph))
			break;
		uint64_t off = rd_le(ph + 8, 8), size = rd_le(ph + 32, 8);
		if (rd_le(ph, 4) != PT_NOTE || size > MAX_NOTES || off > INT64_MAX)
			continue;
		unsigned char *notes = malloc(size ? size : 1);
		if (notes && pread(fd, notes, size, (off_t)off) == (ssize_t)size) {
			/* namesz, descsz, type, then name and desc, each 4-aligned */
			for (uint64_t at = 0; at + 12 <= size && !found;) {
				uint64_t namesz = rd_le(notes + at, 4), descsz = rd_le(notes + at + 4, 4);
				uint64_t type = rd_le(notes + at + 8, 4);
				uint64_t next = at + 12 + ((namesz + 3) & ~3ull) + ((descsz + 3) & ~3ull);
				if (next > size)
					break;
				found = type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 && !memcmp(notes + at + 12, "Xen", 4);
				at = next;
			}
		}
		free(notes);
	}
out:
	close(fd);
	return found;
}

int bng_qemu_kernel_path(const char *kernel_dir, char **out)
{
	char *elf = bng_asprintf("%s/vmlinux", kernel_dir);
	if (elf_has_pvh_entry(elf)) {
		*out = elf;
		return 0;
	}
	char *bz = bng_asprintf("%s/vmlinuz", kernel_dir);
	if (access(bz, R_OK) == 0) {
		free(elf);
		*out = bz;
		return 0;
	}
	int rc = bng_err_errno(BANGER_ENOTFOUND, errno, "kernel %s is missing, and %s cannot boot through PVH: "
			       "re-import the kernel", bz, elf);
	free(elf);
	free(bz);
	return rc;
}

static bool path_fits_socket(const char *path)
{
	struct sockaddr_un sa;
	return strlen(path) < sizeof(sa.sun_path);
}

static int check_config(const bng_vm_config *cfg)
{
	if (!cfg || !cfg->run_dir || !cfg->kernel_dir || !cfg->console_log || !cfg->process_log)
		return bng_err(BANGER_EINVAL, "qemu: the VM config needs run_dir, kernel_dir, console_log and process_log");
	if (cfg->vcpus < 1 || cfg->mem_mib < 16)
		return bng_err(BANGER_EINVAL, "qemu: a VM needs at least 1 vCPU and 16 MiB of memory (got %d vCPUs, %d MiB)",
			       cfg->vcpus, cfg->mem_mib);
	if (cfg->ndisks < 0 || cfg->ndisks > BNG_VMM_MAX_DISKS)
		return bng_err(BANGER_EINVAL, "qemu: a VM takes 0 to %d disks (got %d)", BNG_VMM_MAX_DISKS, cfg->ndisks);
	for (int i = 0; i < cfg->ndisks; i++) {
		const bng_vm_disk *d = &cfg->disks[i];
		if (!d->path || !*d->path)
			return bng_err(BANGER_EINVAL, "qemu: disk %d has no path", i);
		if (access(d->path, d->read_only ? R_OK : R_OK | W_OK) != 0)
			return bng_err_errno(bng_code_from_errno(errno), errno, "qemu: cannot use disk %s%s", d->path,
					     d->read_only ? "" : " read-write");
	}
	return 0;
}

static int qemu_start(const bng_vm_config *cfg, bng_op *op, json_t **state)
{
	*state = NULL;
	int rc = check_config(cfg);
	if (rc)
		return rc;
	const char *want = cfg->binary && *cfg->binary ? cfg->binary : QEMU_DEFAULT_BINARY;
	char *found = bng_find_exe(want);
	if (!found)
		return bng_err(BANGER_ENOTFOUND, "%s not found%s: install it (apt-get install qemu-system-x86) or set "
			       "the VMM binary in the config", want, strchr(want, '/') ? "" : " on PATH");
	char exe[PATH_MAX];
	if (!realpath(found, exe)) {
		int e = errno;
		free(found);
		return bng_err_errno(BANGER_ENOTFOUND, e, "cannot resolve %s", want);
	}
	free(found);

	/* Absolute socket paths: the state outlives this process's cwd. */
	char run_dir[PATH_MAX];
	if (!realpath(cfg->run_dir, run_dir))
		return bng_err_errno(bng_code_from_errno(errno), errno, "qemu: run directory %s", cfg->run_dir);
	qpaths p = {
		.qmp = bng_asprintf("%s/qmp.sock", run_dir),
		.agent = bng_asprintf("%s/agent.sock", run_dir),
		.initrd = bng_asprintf("%s/initrd.img", cfg->kernel_dir),
	};
	strv argv = {0};
	int log_fd = -1;
	pid_t pid = 0;
	char *tail = NULL;
	if (!path_fits_socket(p.qmp) || !path_fits_socket(p.agent)) {
		rc = bng_err(BANGER_EINVAL, "run directory %s is too long for Unix sockets (max %zu bytes for %s): "
			     "use a shorter runtime directory", cfg->run_dir, sizeof(((struct sockaddr_un *)0)->sun_path) - 1,
			     p.agent);
		goto out;
	}
	if ((rc = bng_qemu_kernel_path(cfg->kernel_dir, &p.kernel)))
		goto out;
	/* A kernel with built-in drivers can boot without an initramfs. */
	bool with_initrd = access(p.initrd, R_OK) == 0;
	build_argv(&argv, cfg, exe, &p, with_initrd);

	log_fd = open(cfg->process_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (log_fd < 0) {
		rc = bng_err_errno(bng_code_from_errno(errno), errno, "cannot open the VMM log %s", cfg->process_log);
		goto out;
	}
	/* The command line heads this boot's part of the log, for debugging;
	 * error messages quote only what qemu wrote after it. */
	dprintf(log_fd, "banger: starting");
	for (size_t i = 0; i < argv.n; i++)
		dprintf(log_fd, " %s", argv.v[i]);
	dprintf(log_fd, "\n");
	off_t log_since = lseek(log_fd, 0, SEEK_END);

	/* A previous run's sockets would make QEMU fail to bind. */
	unlink(p.qmp);
	unlink(p.agent);
	rc = bng_spawn_detached(argv.v, log_fd, log_fd, NULL, &pid);
	if (rc)
		goto out;
	bng_op_event(op, json_pack("{s:s,s:i}", "stage", "vmm", "pid", (int)pid)); /* exec'd: the guest is running */
	unsigned long long started = 0;
	bng_proc_stat(pid, NULL, &started);

	long long deadline = bng_now_ms() + QEMU_START_TIMEOUT_MS;
	char last_status[32] = "no answer";
	for (;;) {
		if (bng_op_cancelled(op)) {
			rc = bng_err(BANGER_ECANCELED, "cancelled while starting the VM");
			break;
		}
		if (bng_proc_gone(pid, started)) {
			tail = bng_file_tail(cfg->process_log, log_since, 4);
			if (*tail)
				rc = bng_err(BANGER_EIO, "qemu exited while starting the VM: %s", tail);
			else
				rc = bng_err(BANGER_EIO, "qemu exited while starting the VM and printed nothing (see %s)",
					     cfg->process_log);
			pid = 0;
			break;
		}
		int left = (int)(deadline - bng_now_ms());
		if (left <= 0) {
			tail = bng_file_tail(cfg->process_log, log_since, 4);
			rc = bng_err(BANGER_ETIMEDOUT, "qemu did not report a running VM on %s within %d s (%s)%s%s", p.qmp,
				     QEMU_START_TIMEOUT_MS / 1000, last_status, *tail ? ": " : "", tail);
			break;
		}
		if (access(p.qmp, F_OK) == 0) {
			json_t *st = NULL;
			if (bng_qmp_call(p.qmp, "query-status", NULL, left < 2000 ? left : 2000, &st) == 0) {
				const char *status = json_string_value(json_object_get(st, "status"));
				snprintf(last_status, sizeof(last_status), "status %s", status ? status : "unknown");
				bool running = status && strcmp(status, "running") == 0;
				json_decref(st);
				if (running)
					break;
			}
		}
		usleep(20 * 1000);
	}
	if (rc) {
		if (pid > 0) {
			kill(pid, SIGKILL);
			bng_proc_wait_gone(pid, started, 5000);
		}
		goto out;
	}
	/* What the process runs now is what alive() will compare: when the
	 * binary is a wrapper script that execs qemu, that is qemu, not it. */
	char live[PATH_MAX], link[64];
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	ssize_t ln = readlink(link, live, sizeof(live) - 1);
	if (ln > 0) {
		live[ln] = '\0';
		snprintf(exe, sizeof(exe), "%s", live);
	}
	*state = json_pack("{s:s, s:i, s:I, s:s, s:{s:s, s:s}, s:s}", "driver", "qemu", "pid", (int)pid, "proc_start",
			   (json_int_t)started, "control_socket", p.qmp, "agent", "kind", "unix", "path", p.agent, "exe",
			   exe);
	if (!*state) {
		kill(pid, SIGKILL);
		rc = bng_err(BANGER_ENOMEM, "out of memory");
	}
out:
	if (log_fd >= 0)
		close(log_fd);
	free(tail);
	strv_free(&argv);
	qpaths_free(&p);
	return rc;
}

static int qemu_shutdown(json_t *state, int timeout_ms)
{
	qstate s;
	int rc = state_parse(state, &s);
	if (rc)
		return rc;
	if (!state_proc_ours(&s))
		return 0;
	long long deadline = bng_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	/* ACPI power button. Without ACPI in the guest this does nothing, and the
	 * guest agent's poweroff is the graceful path; either way we wait. */
	int ask = timeout_ms < 2000 ? timeout_ms : 2000;
	if (ask > 0 && bng_qmp_call(s.qmp, "system_powerdown", NULL, ask, NULL) != 0)
		bng_err_clear();
	int left = (int)(deadline - bng_now_ms());
	if (bng_proc_wait_gone(s.pid, s.start, left > 0 ? left : 0))
		return 0;
	return bng_err(BANGER_ETIMEDOUT, "the VM (qemu pid %d) is still running %d ms after the power-off request: "
		       "kill it", (int)s.pid, timeout_ms);
}

static int qemu_kill(json_t *state, int sig)
{
	qstate s;
	int rc = state_parse(state, &s);
	if (rc)
		return rc;
	if (sig == 0)
		sig = SIGKILL;
	/* A pid that no longer runs this VM's qemu must never be signalled. */
	if (!state_proc_ours(&s))
		return 0;
	if (kill(s.pid, sig) != 0) {
		if (errno == ESRCH)
			return 0;
		return bng_err_errno(bng_code_from_errno(errno), errno, "cannot signal the VM's qemu process %d", (int)s.pid);
	}
	if (bng_proc_wait_gone(s.pid, s.start, QEMU_KILL_WAIT_MS))
		return 0;
	if (sig != SIGKILL)
		return bng_err(BANGER_ETIMEDOUT, "qemu process %d is still running %d s after signal %d: kill it with SIGKILL",
			       (int)s.pid, QEMU_KILL_WAIT_MS / 1000, sig);
	return bng_err(BANGER_ETIMEDOUT, "qemu process %d is still running %d s after SIGKILL (stuck in the kernel? "
		       "see /proc/%d/stack)", (int)s.pid, QEMU_KILL_WAIT_MS / 1000, (int)s.pid);
}

static int qmp_simple(json_t *state, const char *command, const char *what)
{
	qstate s;
	int rc = state_parse(state, &s);
	if (rc)
		return rc;
	if (!state_proc_ours(&s))
		return bng_err(BANGER_ENOTFOUND, "cannot %s the VM: its qemu process %d is no longer running", what,
			       (int)s.pid);
	return bng_qmp_call(s.qmp, command, NULL, QEMU_QMP_TIMEOUT_MS, NULL);
}

static int qemu_pause(json_t *state)
{
	return qmp_simple(state, "stop", "pause");
}

static int qemu_resume(json_t *state)
{
	return qmp_simple(state, "cont", "resume");
}

static bool qemu_alive(json_t *state)
{
	qstate s;
	if (state_parse(state, &s) != 0 || !state_proc_ours(&s)) {
		bng_err_clear();
		return false;
	}
	json_t *st = NULL;
	int rc = bng_qmp_call(s.qmp, "query-status", NULL, 2000, &st);
	json_decref(st);
	if (rc)
		bng_err_clear();
	return rc == 0;
}

const bng_vmm_driver bng_vmm_qemu = {
	.name = "qemu",
	.features = BNG_VMM_FEAT_PAUSE,
	.stop_op = "poweroff", /* ACPI: the guest powers the microvm off and QEMU exits */
	.start = qemu_start,
	.shutdown = qemu_shutdown,
	.kill = qemu_kill,
	.pause = qemu_pause,
	.resume = qemu_resume,
	.snapshot = NULL, /* QMP migrate-to-file could do it; not needed yet */
	.restore = NULL,
	.alive = qemu_alive,
};

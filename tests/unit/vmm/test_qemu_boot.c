/* The qemu driver booting real guests under TCG: Debian's cloud kernel and a
 * tiny busybox initramfs built by mkguest.sh (its /init loads the virtio
 * modules, reports the disks, NIC, command line and agent port on the
 * console, then powers off, or with vmmtest=sleep pings the agent port
 * forever). Checks the disks, NIC and MAC, the agent channel, a guest that
 * powers off by itself, pause/resume, shutdown's timeout, kill, alive(), a
 * VM that outlives the process that started it, and the KVM probe.
 * Exits 77 (skipped) without qemu-system-x86_64 or the guest's makings. */
#include "../check.h"

#include "vmm/qmp.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#define CHECK_ERR(expr, code, needle)                                                        \
	do {                                                                                 \
		int chk_r_ = (expr);                                                         \
		CHECK_EQ_INT(chk_r_, code);                                                  \
		CHECK_STR_CONTAINS(banger_error_last(), needle);                             \
	} while (0)

#define BOOT_TIMEOUT_MS 90000

static char *dir, *kdir;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* <dir>/<name>[/<leaf>] */
static char *path_in(const char *name, const char *leaf)
{
	return leaf ? bng_asprintf("%s/%s/%s", dir, name, leaf) : bng_asprintf("%s/%s", dir, name);
}

/* Process state letter from /proc/<pid>/stat, 0 if there is none. */
static char proc_state(pid_t pid, pid_t *ppid)
{
	char path[64], buf[512] = "";
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	char st = 0;
	int pp = 0;
	sscanf(p + 2, "%c %d", &st, &pp);
	if (ppid)
		*ppid = pp;
	return st;
}

static bool pid_running(pid_t pid)
{
	char st = proc_state(pid, NULL);
	return st && st != 'Z' && st != 'X';
}

/* Waits for needle in the console log; the elapsed ms, or -1. */
static long long wait_console(const char *path, const char *needle, int timeout_ms)
{
	long long t0 = now_ms();
	while (now_ms() - t0 < timeout_ms) {
		char *text = NULL;
		bng_read_file(path, &text, NULL);
		bool found = text && strstr(text, needle);
		free(text);
		if (found)
			return now_ms() - t0;
		usleep(10 * 1000);
	}
	fprintf(stderr, "timed out waiting for \"%s\" in %s\n", needle, path);
	return -1;
}

typedef struct {
	char *run, *console, *log;
	bng_vm_config cfg;
} vm_files;

static void vm_files_init(vm_files *f, const char *name, const char *cmdline)
{
	char *base = path_in(name, NULL);
	mkdir(base, 0700);
	f->run = path_in(name, "run");
	mkdir(f->run, 0700);
	f->console = path_in(name, "console.log");
	f->log = path_in(name, "vmm.log");
	free(base);
	bng_vm_config cfg = {
		.id = name, .run_dir = f->run, .console_log = f->console, .process_log = f->log,
		.vcpus = 2, .mem_mib = 512, .kernel_dir = kdir, .cmdline = cmdline,
	};
	f->cfg = cfg;
}

static void vm_files_free(vm_files *f)
{
	free(f->run);
	free(f->console);
	free(f->log);
}

static void dump_on_failure(const vm_files *f, int failed_before)
{
	if (check_failed == failed_before)
		return;
	char *text = NULL;
	if (bng_read_file(f->console, &text, NULL) == 0)
		fprintf(stderr, "---- console (%s) ----\n%s\n----\n", f->console, text);
	free(text);
	text = NULL;
	if (bng_read_file(f->log, &text, NULL) == 0)
		fprintf(stderr, "---- vmm log ----\n%s\n----\n", text);
	free(text);
}

static const char *query_status(json_t *state)
{
	static char status[32];
	json_t *ret = NULL;
	int rc = bng_qmp_call(json_string_value(json_object_get(state, "control_socket")), "query-status", NULL, 5000,
			      &ret);
	snprintf(status, sizeof(status), "%s", rc ? "error" : json_string_value(json_object_get(ret, "status")));
	json_decref(ret);
	return status;
}

/* A guest with two disks and a NIC that reports them and powers off. */
static void test_boot_and_poweroff(void)
{
	int failed_before = check_failed;
	vm_files f;
	vm_files_init(&f, "boot", "vmmtest=boot quiet");
	char *ro = path_in("ro.img", NULL), *rw = path_in("rw.img", NULL);
	char block[4096] = "BANGERDISK01";
	check_write_file(ro, block, sizeof(block));
	memset(block, 0, sizeof(block));
	strcpy(block, "WRITABLEDISK");
	check_write_file(rw, block, sizeof(block));
	f.cfg.ndisks = 2;
	f.cfg.disks[0] = (bng_vm_disk){.path = ro, .read_only = true};
	f.cfg.disks[1] = (bng_vm_disk){.path = rw, .read_only = false};
	/* A tap that QEMU creates inside our private network namespace. */
	bool net = unshare(CLONE_NEWNET) == 0;
	if (net) {
		f.cfg.tap = "bngvmm0";
		f.cfg.mac = "52:54:00:12:34:56";
	} else {
		fprintf(stderr, "no network namespace (%s): booting without a NIC\n", strerror(errno));
	}

	json_t *state = NULL;
	long long t0 = now_ms();
	CHECK_OK(bng_vmm_qemu.start(&f.cfg, NULL, &state));
	long long t_start = now_ms() - t0;
	if (!state) {
		dump_on_failure(&f, failed_before);
		goto out;
	}
	long long marker = wait_console(f.console, "vmm-test: init up", BOOT_TIMEOUT_MS);
	CHECK(marker >= 0);
	fprintf(stderr, "boot: start() returned after %lld ms; guest init marker %lld ms after spawn\n", t_start,
		marker >= 0 ? marker + t_start : -1);

	/* The state a restarted daemon would need. */
	CHECK_EQ_STR(json_string_value(json_object_get(state, "driver")), "qemu");
	pid_t pid = (pid_t)json_integer_value(json_object_get(state, "pid"));
	CHECK(pid > 0);
	char want[PATH_MAX];
	snprintf(want, sizeof(want), "%s/qmp.sock", f.run);
	CHECK_EQ_STR(json_string_value(json_object_get(state, "control_socket")), want);
	json_t *agent = json_object_get(state, "agent");
	CHECK_EQ_STR(json_string_value(json_object_get(agent, "kind")), "unix");
	snprintf(want, sizeof(want), "%s/agent.sock", f.run);
	CHECK_EQ_STR(json_string_value(json_object_get(agent, "path")), want);
	char *exe = bng_find_exe("qemu-system-x86_64");
	char real[PATH_MAX] = "";
	CHECK(exe && realpath(exe, real));
	CHECK_EQ_STR(json_string_value(json_object_get(state, "exe")), real);
	free(exe);
	CHECK(json_integer_value(json_object_get(state, "proc_start")) > 0);

	CHECK(wait_console(f.console, "vmm-test: done", BOOT_TIMEOUT_MS) >= 0);
	/* -no-reboot + poweroff -f: the process ends by itself. */
	long long t1 = now_ms();
	while (pid_running(pid) && now_ms() - t1 < 30000)
		usleep(50 * 1000);
	CHECK(!pid_running(pid));
	CHECK(!bng_vmm_qemu.alive(state));
	CHECK_OK(bng_vmm_qemu.kill(state, 0)); /* gone: nothing to do */

	char *text = NULL;
	CHECK_OK(bng_read_file(f.console, &text, NULL));
	CHECK_STR_CONTAINS(text, "vmm-test: cmdline console=ttyS0 panic=-1 reboot=t");
	CHECK_STR_CONTAINS(text, " vmmtest=boot quiet");
	/* under TCG with a known TSC rate: lpj= from it and the kernel's
	 * CONFIG_HZ (main writes a config with 250), so no vCPU calibrates */
	const char *khz_at = strstr(text, "tsc_early_khz=");
	if (khz_at) {
		char want_lpj[64];
		snprintf(want_lpj, sizeof(want_lpj), " lpj=%lu ", strtoul(khz_at + 14, NULL, 10) * 1000 / 250);
		CHECK_STR_CONTAINS(text, want_lpj);
	}
	CHECK_STR_CONTAINS(text, "vmm-test: vda ro=1 head=BANGERDISK01");
	CHECK_STR_CONTAINS(text, "vmm-test: vdb ro=0 head=WRITABLEDISK");
	CHECK_STR_CONTAINS(text, "vmm-test: agent port=/dev/vport");
	if (net)
		CHECK_STR_CONTAINS(text, "vmm-test: eth0 mac=52:54:00:12:34:56");
	free(text);
	text = NULL;
	CHECK_OK(bng_read_file(f.log, &text, NULL));
	CHECK_STR_CONTAINS(text, "banger: starting ");
	CHECK_STR_CONTAINS(text, "readonly=on");
	free(text);
	dump_on_failure(&f, failed_before);
out:
	json_decref(state);
	free(ro);
	free(rw);
	vm_files_free(&f);
}

/* Reads from the agent socket until needle shows up (or timeout). */
static bool agent_hears(const char *path, const char *needle, int timeout_ms)
{
	long long t0 = now_ms();
	char buf[4096];
	size_t used = 0;
	while (now_ms() - t0 < timeout_ms) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			close(fd);
			usleep(100 * 1000);
			continue;
		}
		while (now_ms() - t0 < timeout_ms) {
			struct pollfd p = {.fd = fd, .events = POLLIN};
			if (poll(&p, 1, 200) <= 0)
				continue;
			ssize_t n = read(fd, buf + used, sizeof(buf) - 1 - used);
			if (n <= 0)
				break;
			used += (size_t)n;
			buf[used] = '\0';
			if (strstr(buf, needle)) {
				close(fd);
				return true;
			}
			if (used > sizeof(buf) / 2) {
				memmove(buf, buf + used - 64, 64);
				used = 64;
			}
		}
		close(fd);
	}
	return false;
}

/* Started by a child that exits at once: the VM lives on, reparented, and
 * the grandparent pauses, resumes and kills it from the state alone. */
static void test_detached_lifecycle(void)
{
	int failed_before = check_failed;
	vm_files f;
	vm_files_init(&f, "life", "vmmtest=sleep");
	int p[2];
	if (pipe(p) != 0)
		abort();
	pid_t child = fork();
	if (child == 0) {
		close(p[0]);
		json_t *st = NULL;
		int rc = bng_vmm_qemu.start(&f.cfg, NULL, &st);
		if (rc)
			dprintf(2, "child: start failed: %s\n", banger_error_last());
		char *s = st ? json_dumps(st, JSON_COMPACT) : NULL;
		if (s && write(p[1], s, strlen(s)) < 0)
			_exit(2);
		_exit(rc ? 1 : 0);
	}
	close(p[1]);
	char buf[4096];
	size_t used = 0;
	ssize_t n;
	while ((n = read(p[0], buf + used, sizeof(buf) - 1 - used)) > 0)
		used += (size_t)n;
	buf[used] = '\0';
	close(p[0]);
	int status = 0;
	CHECK(waitpid(child, &status, 0) == child);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	json_t *state = json_loads(buf, 0, NULL);
	CHECK(state != NULL);
	if (!state) {
		dump_on_failure(&f, failed_before);
		goto out;
	}
	pid_t pid = (pid_t)json_integer_value(json_object_get(state, "pid"));
	pid_t ppid = 0;
	CHECK(pid_running(pid));
	proc_state(pid, &ppid);
	CHECK(ppid != getpid() && ppid != child); /* init or a subreaper reaps it */
	CHECK(bng_vmm_qemu.alive(state));

	/* The agent channel carries what the guest writes to its port. */
	const char *agent = json_string_value(json_object_get(json_object_get(state, "agent"), "path"));
	CHECK(agent_hears(agent, "ping from guest", BOOT_TIMEOUT_MS));
	CHECK(wait_console(f.console, "vmm-test: sleeping", 5000) >= 0);

	CHECK_EQ_STR(query_status(state), "running");
	CHECK_OK(bng_vmm_pause(&bng_vmm_qemu, state));
	CHECK_EQ_STR(query_status(state), "paused");
	CHECK(bng_vmm_qemu.alive(state)); /* paused is still alive */
	CHECK_OK(bng_vmm_resume(&bng_vmm_qemu, state));
	CHECK_EQ_STR(query_status(state), "running");

	/* This guest ignores the ACPI power button: shutdown reports the
	 * timeout and leaves the VM to the caller. */
	long long t0 = now_ms();
	CHECK_ERR(bng_vmm_qemu.shutdown(state, 1500), BANGER_ETIMEDOUT, "kill it");
	long long took = now_ms() - t0;
	CHECK(took >= 1400 && took < 5000);
	CHECK(bng_vmm_qemu.alive(state));

	CHECK_OK(bng_vmm_qemu.kill(state, 0));
	CHECK(!pid_running(pid));
	CHECK(!bng_vmm_qemu.alive(state));
	CHECK_OK(bng_vmm_qemu.kill(state, SIGKILL));
	CHECK_ERR(bng_vmm_pause(&bng_vmm_qemu, state), BANGER_ENOTFOUND, "no longer running");
	dump_on_failure(&f, failed_before);
out:
	if (state && pid_running((pid_t)json_integer_value(json_object_get(state, "pid"))))
		kill((pid_t)json_integer_value(json_object_get(state, "pid")), SIGKILL);
	json_decref(state);
	vm_files_free(&f);
}

/* A qemu wrapper that runs the probe under TCG instead, with the probe's
 * banger.probe=1 swapped for mode's words: every verdict the probe can
 * reach, on any host. It records its pid (the VM's: it execs qemu). */
static char *probe_wrapper(const char *name, const char *mode)
{
	char *path = path_in(name, NULL);
	char *pidfile = path_in(name, NULL);
	char *body = bng_asprintf(
		"#!/bin/sh\n"
		"echo $$ > %s.pid\n"
		"khz=$(awk '/^cpu MHz/ { printf \"%%d\", $4 * 1000; exit }' /proc/cpuinfo)\n"
		"for a; do\n"
		"  shift\n"
		"  case \"$a\" in\n"
		"    kvm) a=tcg ;;\n"
		"    host) a=max ;;\n"
		"    *banger.probe=1*) a=\"$(echo \"$a\" | sed \"s/banger.probe=1/%s/\") tsc_early_khz=$khz\" ;;\n"
		"  esac\n"
		"  set -- \"$@\" \"$a\"\n"
		"done\n"
		"exec qemu-system-x86_64 \"$@\"\n",
		pidfile, mode);
	check_write_file(path, body, strlen(body));
	chmod(path, 0755);
	free(body);
	free(pidfile);
	return path;
}

static pid_t wrapper_pid(const char *wrapper)
{
	char *pidfile = bng_asprintf("%s.pid", wrapper);
	char *text = NULL;
	pid_t pid = 0;
	if (bng_read_file(pidfile, &text, NULL) == 0)
		pid = (pid_t)atoi(text);
	free(text);
	free(pidfile);
	return pid;
}

static void test_kvm_probe(void)
{
	bool usable = true;
	char *why = NULL;
	CHECK_ERR(bng_qemu_kvm_usable("/nonexistent", NULL, 1000, &usable, &why), BANGER_ENOTFOUND, "no kernel");
	CHECK(!usable && !why);

	/* This host, for real: whatever the verdict, it comes in time, with a
	 * reason. */
	long long t0 = now_ms();
	CHECK_OK(bng_qemu_kvm_usable(kdir, NULL, 8000, &usable, &why));
	long long took = now_ms() - t0;
	CHECK(took < 8000 + 5000);
	CHECK(why && *why);
	fprintf(stderr, "kvm probe (this host): usable=%s after %lld ms: %s\n", usable ? "yes" : "no", took,
		why ? why : "(null)");
	free(why);
	why = NULL;

	/* If /dev/kvm is not there at all, the probe cannot say more. */
	if (access("/dev/kvm", R_OK | W_OK) != 0)
		return;

	/* A guest that boots and prints the marker. */
	char *w = probe_wrapper("probe-ok", "banger.probe=1");
	CHECK_OK(bng_qemu_kvm_usable(kdir, w, 60000, &usable, &why));
	CHECK(usable);
	CHECK_STR_CONTAINS(why, "a guest booted under KVM (probe ok after");
	fprintf(stderr, "kvm probe (TCG wrapper): %s\n", why ? why : "(null)");
	free(why);
	why = NULL;
	free(w);

	/* A guest that powers off without the marker (an init that does not
	 * know banger.probe). */
	w = probe_wrapper("probe-stops", "vmmtest=boot");
	CHECK_OK(bng_qemu_kvm_usable(kdir, w, 60000, &usable, &why));
	CHECK(!usable);
	CHECK_STR_CONTAINS(why, "stopped under KVM without printing \"banger-init: probe ok\"");
	CHECK_STR_CONTAINS(why, "using TCG");
	free(why);
	why = NULL;
	free(w);

	/* A guest that never gets there: stopped at the timeout, VM killed. */
	w = probe_wrapper("probe-stalls", "vmmtest=sleep");
	t0 = now_ms();
	CHECK_OK(bng_qemu_kvm_usable(kdir, w, 3000, &usable, &why));
	took = now_ms() - t0;
	CHECK(!usable);
	CHECK(took >= 3000 && took < 3000 + 5000);
	CHECK(why && (strstr(why, "the guest stalled under KVM: no probe marker within 3 s (last console line:") ||
		      strstr(why, "no output within 3 s under KVM: using TCG")));
	fprintf(stderr, "kvm probe (stalling guest): %s\n", why ? why : "(null)");
	pid_t vm = wrapper_pid(w);
	CHECK(vm > 0 && !pid_running(vm));
	free(why);
	free(w);
}

int main(void)
{
	char *qemu = bng_find_exe("qemu-system-x86_64");
	if (!qemu) {
		fprintf(stderr, "skip: needs qemu-system-x86_64 (apt-get install qemu-system-x86)\n");
		return 77;
	}
	free(qemu);
	const char *mk = getenv("BANGER_VMM_MKGUEST");
	if (!mk) {
		fprintf(stderr, "skip: BANGER_VMM_MKGUEST (tests/unit/vmm/mkguest.sh) is not set\n");
		return 77;
	}
	dir = check_tmpdir("qemu");
	kdir = path_in("kernel", NULL);
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", mk, kdir, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		check_rm_rf(dir);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
			return 77;
		fprintf(stderr, "mkguest.sh failed\n");
		return 1;
	}
	char *config = path_in("kernel", "config");
	static const char hz[] = "# Linux/x86 test\nCONFIG_HZ_250=y\nCONFIG_HZ=250\n";
	check_write_file(config, hz, sizeof(hz) - 1);
	free(config);
	test_boot_and_poweroff();
	test_detached_lifecycle();
	test_kvm_probe();
	check_rm_rf(dir);
	free(kdir);
	free(dir);
	return check_summary();
}

/* lib/vmm without a real VMM: the driver registry, the wrappers' errors for
 * empty slots, the qemu driver's config checks, and its start failures with
 * fake qemu binaries (one that dies talking, one that never opens QMP, a
 * cancelled start): the error quotes the VMM's last words and nothing is
 * left running. Also the state guards: a pid that is not this VM's qemu is
 * never signalled. */
#include "../check.h"

#include "vmm/vmm.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define CHECK_ERR(expr, code, needle)                                                        \
	do {                                                                                 \
		int chk_r_ = (expr);                                                         \
		CHECK_EQ_INT(chk_r_, code);                                                  \
		CHECK_STR_CONTAINS(banger_error_last(), needle);                             \
	} while (0)

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dir;

static char *path_in(const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static char *write_script(const char *name, const char *body)
{
	char *p = path_in(name);
	check_write_file(p, body, strlen(body));
	chmod(p, 0755);
	return p;
}

static bool pid_running(pid_t pid)
{
	char path[64], buf[512] = "";
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static pid_t read_pid(const char *path)
{
	char *text = NULL;
	if (bng_read_file(path, &text, NULL) != 0)
		return 0;
	pid_t pid = (pid_t)atoi(text);
	free(text);
	return pid;
}

static void *cancel_later(void *arg)
{
	usleep(500 * 1000);
	atomic_store((atomic_int *)arg, 1);
	return NULL;
}

static void test_registry(void)
{
	CHECK(bng_vmm_driver_get("qemu") == &bng_vmm_qemu);
	CHECK_EQ_STR(bng_vmm_qemu.name, "qemu");
	CHECK(bng_vmm_qemu.features & BNG_VMM_FEAT_PAUSE);
	CHECK(!(bng_vmm_qemu.features & BNG_VMM_FEAT_SNAPSHOT));
	CHECK(bng_vmm_driver_get("bhyve") == NULL);
	CHECK_EQ_INT(banger_error_last_code(), BANGER_ECONFIG);
	CHECK_STR_CONTAINS(banger_error_last(), "unknown VMM driver \"bhyve\": this build knows qemu");
	CHECK(bng_vmm_driver_get(NULL) == NULL);

	json_t *state = json_object();
	CHECK_ERR(bng_vmm_snapshot(&bng_vmm_qemu, state, "/tmp"), BANGER_EUNSUPPORTED, "the qemu driver cannot snapshot VMs");
	CHECK_ERR(bng_vmm_pause(NULL, state), BANGER_EINVAL, "no driver");
	bng_vmm_driver empty = {.name = "empty"};
	CHECK_ERR(bng_vmm_pause(&empty, state), BANGER_EUNSUPPORTED, "the empty driver cannot pause VMs");
	CHECK_ERR(bng_vmm_resume(&empty, state), BANGER_EUNSUPPORTED, "the empty driver cannot resume VMs");
	/* qemu's own slots check the state they are given. */
	CHECK_ERR(bng_vmm_pause(&bng_vmm_qemu, state), BANGER_EINVAL, "no valid pid");
	CHECK(!bng_vmm_qemu.alive(state));
	CHECK_ERR(bng_vmm_qemu.kill(state, 0), BANGER_EINVAL, "no valid pid");
	json_decref(state);
}

/* A config whose kernel dir holds an empty vmlinuz: enough for fake qemus. */
static bng_vm_config base_config(void)
{
	static char *kdir, *run, *console, *log;
	if (!kdir) {
		kdir = path_in("kernel");
		run = path_in("run");
		console = path_in("console.log");
		log = path_in("vmm.log");
		mkdir(kdir, 0755);
		mkdir(run, 0700);
		char *k = path_in("kernel/vmlinuz");
		check_write_file(k, "", 0);
		free(k);
	}
	bng_vm_config cfg = {
		.id = "t1", .run_dir = run, .console_log = console, .process_log = log,
		.vcpus = 1, .mem_mib = 128, .kernel_dir = kdir,
	};
	return cfg;
}

static void test_config_errors(void)
{
	json_t *state = NULL;
	bng_vm_config cfg = base_config();
	cfg.vcpus = 0;
	CHECK_ERR(bng_vmm_qemu.start(&cfg, NULL, &state), BANGER_EINVAL, "at least 1 vCPU");
	cfg = base_config();
	cfg.ndisks = 1;
	cfg.disks[0].path = "/nonexistent/disk.img";
	CHECK_ERR(bng_vmm_qemu.start(&cfg, NULL, &state), BANGER_ENOTFOUND, "cannot use disk /nonexistent/disk.img");
	cfg = base_config();
	cfg.binary = "/nonexistent/qemu";
	CHECK_ERR(bng_vmm_qemu.start(&cfg, NULL, &state), BANGER_ENOTFOUND, "/nonexistent/qemu not found");
	cfg = base_config();
	cfg.binary = "no-such-qemu-binary";
	CHECK_ERR(bng_vmm_qemu.start(&cfg, NULL, &state), BANGER_ENOTFOUND, "not found on PATH: install it");
	cfg = base_config();
	cfg.binary = "/bin/true";
	char *nokernel = path_in("nokernel");
	cfg.kernel_dir = nokernel;
	CHECK_ERR(bng_vmm_qemu.start(&cfg, NULL, &state), BANGER_ENOTFOUND, "nokernel/vmlinuz is missing");
	free(nokernel);
	cfg = base_config();
	cfg.binary = "/bin/true";
	char name[101];
	memset(name, 'd', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	char *longdir = path_in(name);
	mkdir(longdir, 0700);
	cfg.run_dir = longdir;
	CHECK_ERR(bng_vmm_qemu.start(&cfg, NULL, &state), BANGER_EINVAL, "too long for Unix sockets");
	free(longdir);
	cfg.run_dir = "/nonexistent/run";
	CHECK_ERR(bng_vmm_qemu.start(&cfg, NULL, &state), BANGER_ENOTFOUND, "run directory /nonexistent/run");
	CHECK(state == NULL);
}

static void test_start_failures(void)
{
	json_t *state = NULL;
	bng_vm_config cfg = base_config();

	/* Dies at once, saying why on stderr: the error quotes it, not the log's
	 * older lines nor banger's own command-line header. */
	char *log = path_in("vmm.log");
	check_write_file(log, "old line from an earlier boot\n", 30);
	char *dies = write_script("qemu-dies", "#!/bin/sh\necho 'qemu-system-x86_64: -drive x: Could not open' >&2\n"
					       "echo 'second complaint' >&2\nexit 1\n");
	cfg.binary = dies;
	CHECK_ERR(bng_vmm_qemu.start(&cfg, NULL, &state), BANGER_EIO,
		  "qemu exited while starting the VM: qemu-system-x86_64: -drive x: Could not open; second complaint");
	CHECK(!strstr(banger_error_last(), "old line"));
	CHECK(!strstr(banger_error_last(), "banger: starting"));
	CHECK(state == NULL);
	char *text = NULL;
	CHECK_OK(bng_read_file(log, &text, NULL));
	CHECK_STR_CONTAINS(text, "banger: starting ");
	CHECK_STR_CONTAINS(text, " -M microvm -accel tcg -cpu max ");
	free(text);

	/* Silent death. */
	char *silent = write_script("qemu-silent", "#!/bin/sh\nexit 3\n");
	cfg.binary = silent;
	CHECK_ERR(bng_vmm_qemu.start(&cfg, NULL, &state), BANGER_EIO, "printed nothing (see ");
	CHECK_STR_CONTAINS(banger_error_last(), "vmm.log)");

	/* Not executable at all (exec fails in the child). */
	char *noexec = path_in("qemu-noexec");
	check_write_file(noexec, "\x7f" "ELFgarbage", 10);
	chmod(noexec, 0755);
	cfg.binary = noexec;
	int rc = bng_vmm_qemu.start(&cfg, NULL, &state);
	CHECK(rc < 0);
	CHECK_STR_CONTAINS(banger_error_last(), "cannot start");

	/* Runs but never answers on QMP: times out after ~10 s and is killed.
	 * It also checks what a detached VM gets: its own session and stdin
	 * from /dev/null. */
	char *pidfile = path_in("hang.pid");
	char *probe = path_in("hang.facts");
	char body[1024];
	snprintf(body, sizeof(body),
		 "#!/bin/sh\necho $$ > %s\n"
		 "{ cat /proc/$$/stat; readlink /proc/$$/fd/0; } > %s 2>&1\n"
		 "echo 'still thinking'\nexec sleep 60\n",
		 pidfile, probe);
	char *hangs = write_script("qemu-hangs", body);
	cfg.binary = hangs;
	long long t0 = now_ms();
	CHECK_ERR(bng_vmm_qemu.start(&cfg, NULL, &state), BANGER_ETIMEDOUT, "did not report a running VM");
	CHECK_STR_CONTAINS(banger_error_last(), "still thinking");
	long long took = now_ms() - t0;
	CHECK(took >= 9500 && took < 20000);
	pid_t pid = read_pid(pidfile);
	CHECK(pid > 0);
	CHECK(pid > 0 && !pid_running(pid));
	text = NULL;
	CHECK_OK(bng_read_file(probe, &text, NULL));
	if (text) {
		/* stat fields after "(comm)": state ppid pgrp session */
		int ppid = 0, pgrp = 0, sid = 0;
		char *p = strrchr(text, ')');
		CHECK(p && sscanf(p + 2, "%*c %d %d %d", &ppid, &pgrp, &sid) == 3);
		/* A session of its own (led by the launcher that exited, so it can
		 * never take a controlling terminal), and its own process group. */
		CHECK(sid != getsid(0));
		CHECK(pgrp != getpgrp());
		CHECK_EQ_INT(pgrp, sid);
		CHECK(ppid != getpid()); /* not our child */
		CHECK_STR_CONTAINS(text, "/dev/null");
		free(text);
	}

	/* Cancelled while waiting: ECANCELED soon after, nothing left behind. */
	unlink(pidfile);
	atomic_int cancel = 0;
	bng_op op = {.cancel = &cancel};
	pthread_t t;
	pthread_create(&t, NULL, cancel_later, &cancel);
	t0 = now_ms();
	CHECK_ERR(bng_vmm_qemu.start(&cfg, &op, &state), BANGER_ECANCELED, "cancelled");
	took = now_ms() - t0;
	CHECK(took >= 400 && took < 3000);
	pthread_join(t, NULL);
	pid = read_pid(pidfile);
	CHECK(pid > 0 && !pid_running(pid));
	CHECK(state == NULL);

	free(log);
	free(dies);
	free(silent);
	free(noexec);
	free(pidfile);
	free(probe);
	free(hangs);
}

/* State that names a live process which is not this VM's qemu. */
/* A minimal x86-64 ELF: one PT_NOTE segment holding one note. */
static void write_elf_with_note(const char *path, const char *name, uint32_t type)
{
	unsigned char f[160] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
	f[18] = 62;   /* EM_X86_64 */
	f[32] = 64;   /* e_phoff */
	f[54] = 56;   /* e_phentsize */
	f[56] = 1;    /* e_phnum */
	f[64] = 4;    /* p_type PT_NOTE */
	f[72] = 120;  /* p_offset */
	f[96] = 20;   /* p_filesz: 12 + "Xen\0" + a 4-byte desc */
	f[120] = 4;   /* namesz */
	f[124] = 4;   /* descsz */
	memcpy(f + 128, &type, 4);
	memcpy(f + 132, name, 4);
	check_write_file(path, (const char *)f, sizeof(f));
}

/* qemu boots the ELF vmlinux through PVH when it carries Xen's
 * PHYS32_ENTRY note, else the bzImage; vmm.log records the command line. */
static void test_kernel_choice(void)
{
	json_t *state = NULL;
	bng_vm_config cfg = base_config();
	char *log = path_in("vmm.log"), *elf = path_in("kernel/vmlinux"), *bz = path_in("kernel/vmlinuz");
	cfg.binary = write_script("qemu-fails", "#!/bin/sh\necho no >&2\nexit 1\n");
	char *want_elf = bng_asprintf("-kernel %s ", elf), *want_bz = bng_asprintf("-kernel %s ", bz);
	const struct {
		const char *name;
		uint32_t type;
		bool pvh;
	} cases[] = {{"Xen", 18, true}, {"Xen", 17, false}, {"Xe!", 18, false}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_elf_with_note(elf, cases[i].name, cases[i].type);
		check_write_file(log, "", 0);
		CHECK_EQ_INT(bng_vmm_qemu.start(&cfg, NULL, &state), BANGER_EIO);
		char *text = NULL;
		CHECK_OK(bng_read_file(log, &text, NULL));
		CHECK_STR_CONTAINS(text, cases[i].pvh ? want_elf : want_bz);
		free(text);
	}
	/* A truncated ELF falls back too; with no bzImage both are named. */
	check_write_file(elf, "\x7f" "ELF\2\1", 6);
	unlink(bz);
	CHECK_ERR(bng_vmm_qemu.start(&cfg, NULL, &state), BANGER_ENOTFOUND, "cannot boot through PVH");
	check_write_file(bz, "", 0);
	unlink(elf);
	CHECK(state == NULL);
	free(want_elf);
	free(want_bz);
	free((char *)cfg.binary);
	free(log);
	free(elf);
	free(bz);
}

static void test_state_guards(void)
{
	pid_t child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	json_t *state = json_pack("{s:s, s:i, s:s, s:s}", "driver", "qemu", "pid", (int)child, "control_socket",
				  "/nonexistent/qmp.sock", "exe", "/usr/bin/qemu-system-x86_64");
	/* Another executable: not ours, never signalled. */
	CHECK(!bng_vmm_qemu.alive(state));
	CHECK_OK(bng_vmm_qemu.kill(state, SIGKILL));
	CHECK(pid_running(child));
	CHECK_ERR(bng_vmm_qemu.pause(state), BANGER_ENOTFOUND, "no longer running");
	CHECK_OK(bng_vmm_qemu.shutdown(state, 100));
	/* Right executable but another start time: a reused pid. */
	char exe[4096];
	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)child);
	char real[4096];
	ssize_t n = readlink(exe, real, sizeof(real) - 1);
	real[n > 0 ? n : 0] = '\0';
	json_object_set_new(state, "exe", json_string(real));
	json_object_set_new(state, "proc_start", json_integer(1));
	CHECK_OK(bng_vmm_qemu.kill(state, SIGKILL));
	CHECK(pid_running(child));
	/* Without the start-time guard the same state does reach it (and QMP
	 * does not answer, so it is not alive either). */
	json_object_del(state, "proc_start");
	CHECK(!bng_vmm_qemu.alive(state));
	CHECK_OK(bng_vmm_qemu.kill(state, SIGTERM));
	CHECK(!pid_running(child));
	/* kill reaps a zombie child of ours (the subreaper case) */
	CHECK(waitpid(child, NULL, WNOHANG) <= 0);
	/* Gone: kill and shutdown are no-ops. */
	CHECK_OK(bng_vmm_qemu.kill(state, 0));
	CHECK_OK(bng_vmm_qemu.shutdown(state, 100));
	json_decref(state);
}

int main(void)
{
	dir = check_tmpdir("vmm");
	test_registry();
	test_config_errors();
	test_start_failures();
	test_kernel_choice();
	test_state_guards();
	check_rm_rf(dir);
	free(dir);
	return check_summary();
}

/* The firecracker driver without a VMM: config checks, clear errors for a
 * missing binary or kernel, a VMM that dies or hangs at start (cancel),
 * and state that no longer names our process (pid reuse, garbage). The
 * request sequence itself is tested against the fake firecracker from
 * tests/integration/test_firecracker.py. */
#include "../check.h"
#include "vmm/firecracker.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

static char *dir;

/* dir/name; the result stays valid for the next 63 calls */
static char *path(const char *name)
{
	static char buf[64][512];
	static int n;
	char *p = buf[n++ % 64];
	snprintf(p, 512, "%s/%s", dir, name);
	return p;
}

static void script(const char *name, const char *body)
{
	char text[1024];
	snprintf(text, sizeof(text), "#!/bin/sh\n%s\n", body);
	check_write_file(path(name), text, strlen(text));
	chmod(path(name), 0755);
}

/* A config with a valid-looking ELF kernel and an initrd. */
static bng_vm_config base_config(void)
{
	bng_vm_config cfg = {
		.id = "vm1",
		.run_dir = dir,
		.console_log = path("console.log"),
		.process_log = path("process.log"),
		.vcpus = 1,
		.mem_mib = 128,
		.kernel_dir = dir,
		.cmdline = "banger.root=/dev/vda",
		.binary = "/bin/false",
	};
	return cfg;
}

static int start(const bng_vm_config *cfg, bng_op *op)
{
	json_t *state = NULL;
	int rc = bng_vmm_firecracker.start(cfg, op, &state);
	if (state) {
		bng_vmm_firecracker.kill(state, 0);
		json_decref(state);
	}
	return rc;
}

static void test_config_errors(void)
{
	bng_vm_config cfg = base_config();
	cfg.binary = path("no-such-binary");
	CHECK_EQ_INT(start(&cfg, NULL), BANGER_ENOTFOUND);
	CHECK_STR_CONTAINS(banger_error_last(), "no-such-binary");

	cfg = base_config();
	cfg.vcpus = 0;
	CHECK_EQ_INT(start(&cfg, NULL), BANGER_EINVAL);
	CHECK_STR_CONTAINS(banger_error_last(), "vCPUs");
	cfg.vcpus = 33;
	CHECK_EQ_INT(start(&cfg, NULL), BANGER_EINVAL);

	cfg = base_config();
	cfg.mem_mib = 0;
	CHECK_EQ_INT(start(&cfg, NULL), BANGER_EINVAL);

	cfg = base_config();
	cfg.ndisks = BNG_VMM_MAX_DISKS + 1;
	CHECK_EQ_INT(start(&cfg, NULL), BANGER_EINVAL);

	/* Firecracker's own arguments are refused, banger's are fine */
	const char *bad[] = {"root=/dev/vda", "quiet pci=off", "virtio_mmio.device=4K@0xd0000000:5"};
	for (size_t i = 0; i < BNG_ARRAY_LEN(bad); i++) {
		cfg = base_config();
		cfg.cmdline = bad[i];
		CHECK_EQ_INT(start(&cfg, NULL), BANGER_EINVAL);
		CHECK_STR_CONTAINS(banger_error_last(), "Firecracker's own");
	}

	cfg = base_config();
	cfg.disks[0].path = path("no-such-disk");
	cfg.ndisks = 1;
	CHECK_EQ_INT(start(&cfg, NULL), BANGER_ENOTFOUND);
	CHECK_STR_CONTAINS(banger_error_last(), "no-such-disk");
	CHECK_STR_CONTAINS(banger_error_last(), "(disk vda)");

	/* the kernel command line, with room left for Firecracker's own */
	char big[2048];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cfg = base_config();
	cfg.cmdline = big;
	CHECK_EQ_INT(start(&cfg, NULL), BANGER_ETOOBIG);
	CHECK_STR_CONTAINS(banger_error_last(), "kernel command line");
	big[1700] = '\0';
	cfg.binary = "/bin/false"; /* passes the check, then fails to start */
	CHECK_EQ_INT(start(&cfg, NULL), BANGER_EIO);

	/* socket paths: sun_path holds 107 bytes */
	char long_dir[300];
	snprintf(long_dir, sizeof(long_dir), "%s/%0*d", dir, 100, 0);
	mkdir(long_dir, 0700);
	cfg = base_config();
	cfg.run_dir = long_dir;
	CHECK_EQ_INT(start(&cfg, NULL), BANGER_EINVAL);
	CHECK_STR_CONTAINS(banger_error_last(), "at most 107");
	rmdir(long_dir);

	cfg = base_config();
	cfg.id = NULL;
	CHECK_EQ_INT(start(&cfg, NULL), BANGER_EINVAL);
}

static void test_kernel_checks(void)
{
	bng_vm_config cfg = base_config();
	unlink(path("vmlinux"));
	CHECK_EQ_INT(start(&cfg, NULL), BANGER_ENOTFOUND);
	CHECK_STR_CONTAINS(banger_error_last(), "vmlinux");

	/* a bzImage where the ELF vmlinux should be */
	check_write_file(path("vmlinux"), "MZ\0\0HdrS", 8);
	CHECK_EQ_INT(start(&cfg, NULL), BANGER_EINVAL);
	CHECK_STR_CONTAINS(banger_error_last(), "not an ELF kernel");
	check_write_file(path("vmlinux"), "\177ELF\2\1\1\0", 8);
}

static void test_dies_at_start(void)
{
	bng_vm_config cfg = base_config();
	script("dies", "echo 'Error: bad things happened' >&2; exit 1");
	cfg.binary = path("dies");
	CHECK_EQ_INT(start(&cfg, NULL), BANGER_EIO);
	CHECK_STR_CONTAINS(banger_error_last(), "exited during startup");
	CHECK_STR_CONTAINS(banger_error_last(), "bad things happened");

	cfg.binary = "/bin/false"; /* says nothing */
	CHECK_EQ_INT(start(&cfg, NULL), BANGER_EIO);
	CHECK_STR_CONTAINS(banger_error_last(), "no output");

	/* the process log keeps what the VMM said, after our marker line */
	char *log = NULL;
	CHECK_OK(bng_read_file(path("process.log"), &log, NULL));
	CHECK_STR_CONTAINS(log, "--- banger ");
	CHECK_STR_CONTAINS(log, "bad things happened");
	free(log);
}

static atomic_int cancel_flag;

/* Long enough for the hanging VMM to have written its pid. */
static void *cancel_later(void *arg)
{
	(void)arg;
	usleep(300 * 1000);
	atomic_store(&cancel_flag, 1);
	return NULL;
}

/* A VMM that never opens its socket: cancelling the start kills it. */
static void test_cancel(void)
{
	bng_vm_config cfg = base_config();
	char body[600];
	snprintf(body, sizeof(body), "echo $$ > %s; exec sleep 30", path("hang.pid"));
	script("hang", body);
	cfg.binary = path("hang");
	unlink(path("hang.pid"));
	bng_op op = {.cancel = &cancel_flag};
	pthread_t t;
	pthread_create(&t, NULL, cancel_later, NULL);
	CHECK_EQ_INT(start(&cfg, &op), BANGER_ECANCELED);
	pthread_join(t, NULL);
	char *pid_text = NULL;
	if (bng_read_file(path("hang.pid"), &pid_text, NULL) == 0) {
		pid_t pid = (pid_t)atoi(pid_text);
		CHECK(pid > 1);
		/* gone, or a zombie waiting for init */
		char stat_path[64], *stat = NULL;
		snprintf(stat_path, sizeof(stat_path), "/proc/%d/stat", (int)pid);
		if (bng_read_file(stat_path, &stat, NULL) == 0)
			CHECK_STR_CONTAINS(strrchr(stat, ')'), ") Z");
		free(stat);
	} else {
		CHECK(!"the hanging VMM never ran");
	}
	free(pid_text);
}

static void test_stale_state(void)
{
	const bng_vmm_driver *d = &bng_vmm_firecracker;
	CHECK(d->pause && d->resume && d->snapshot && d->restore && d->alive && d->shutdown && d->kill);
	CHECK(d->features & BNG_VMM_FEAT_VSOCK);

	json_t *garbage = json_pack("{s:s}", "driver", "firecracker");
	CHECK_EQ_INT(d->kill(garbage, 0), BANGER_EINVAL);
	CHECK(!d->alive(garbage));
	CHECK_EQ_INT(d->pause(garbage), BANGER_EINVAL);
	json_decref(garbage);

	json_t *other = json_pack("{s:s, s:i, s:s}", "driver", "qemu", "pid", 1234, "control_socket", "/x");
	CHECK_EQ_INT(d->kill(other, 0), BANGER_EINVAL);
	json_decref(other);

	/* our own pid with another start time: a reused pid must never be signalled */
	json_t *reused = json_pack("{s:s, s:i, s:I, s:s, s:s}", "driver", "firecracker", "pid", (int)getpid(),
				   "start_time", (json_int_t)1, "control_socket", path("api.sock"), "exe", "/nope");
	CHECK(!d->alive(reused));
	CHECK_OK(d->kill(reused, SIGTERM));
	CHECK_OK(d->shutdown(reused, 100));
	CHECK_EQ_INT(d->pause(reused), BANGER_ENOTFOUND);
	CHECK_STR_CONTAINS(banger_error_last(), "not running");
	CHECK_EQ_INT(d->snapshot(reused, path("snap")), BANGER_ENOTFOUND);
	json_decref(reused);

	/* a live pid recorded without its start time or executable proves nothing */
	json_t *mute = json_pack("{s:s, s:i, s:s}", "driver", "firecracker", "pid", (int)getpid(), "control_socket",
				 path("api.sock"));
	CHECK(!d->alive(mute));
	CHECK_EQ_INT(d->resume(mute), BANGER_ECONNECT);
	CHECK_STR_CONTAINS(banger_error_last(), "PATCH /vm");
	json_decref(mute);

	/* the process itself (pid + start time) is alive even when nothing
	 * answers on the socket: a busy API thread is not a dead VM */
	char *text = NULL;
	long long start = 0;
	if (bng_read_file("/proc/self/stat", &text, NULL) == 0) {
		const char *p = strrchr(text, ')');
		for (int field = 2; p && field < 22; field++)
			p = strchr(p + 1, ' ');
		start = p ? strtoll(p + 1, NULL, 10) : 0;
	}
	free(text);
	CHECK(start > 0);
	json_t *ours = json_pack("{s:s, s:i, s:I, s:s}", "driver", "firecracker", "pid", (int)getpid(), "start_time",
				 (json_int_t)start, "control_socket", path("api.sock"));
	CHECK(d->alive(ours));
	json_object_set_new(ours, "start_time", json_integer(start + 1));
	CHECK(!d->alive(ours)); /* a reused pid */
	json_decref(ours);
}

static void test_restore_errors(void)
{
	bng_vm_config cfg = base_config();
	json_t *state = NULL;
	CHECK_EQ_INT(bng_vmm_firecracker.restore(&cfg, path("no-snapshot"), NULL, &state), BANGER_ENOTFOUND);
	CHECK_STR_CONTAINS(banger_error_last(), "not a firecracker snapshot directory");
	CHECK(state == NULL);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	dir = check_tmpdir("fc");
	check_write_file(path("vmlinux"), "\177ELF\2\1\1\0", 8);
	check_write_file(path("initrd.img"), "initrd", 6);
	test_config_errors();
	test_kernel_checks();
	test_dies_at_start();
	test_cancel();
	test_stale_state();
	test_restore_errors();
	check_rm_rf(dir);
	free(dir);
	return check_summary();
}

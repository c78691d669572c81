/* Does KVM really run guests here? Opening /dev/kvm proves little: on a
 * nested PVM host it opens fine and every stock guest hangs. So boot the
 * kernel for real, with banger.probe=1, and wait for the initramfs to say
 * "banger-init: probe ok" on the console (it powers off right after). */
#include "vmm.h"
#include "../core/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define PROBE_MARKER "banger-init: probe ok"

/* The console's last non-empty line, cut to fit a message (malloc'd). */
static char *last_line(const char *text)
{
	const char *end = text + strlen(text);
	while (end > text && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		end--;
	const char *start = end;
	while (start > text && start[-1] != '\n')
		start--;
	size_t len = (size_t)(end - start);
	if (len > 160) {
		start = end - 160;
		len = 160;
	}
	char *out = bng_xmalloc(len + 1);
	memcpy(out, start, len);
	out[len] = '\0';
	return out;
}

int bng_qemu_kvm_usable(const char *kernel_dir, const char *qemu_binary, int timeout_ms, bool *usable, char **why)
{
	*usable = false;
	*why = NULL;
	if (!kernel_dir || timeout_ms <= 0)
		return bng_err(BANGER_EINVAL, "KVM probe: needs a kernel directory and a positive timeout");
	/* the kernel the driver will boot (a vmlinux-only kernel dir is fine) */
	char *kernel = NULL;
	int rc = bng_qemu_kernel_path(kernel_dir, &kernel);
	free(kernel);
	if (rc)
		return bng_err(rc, "KVM probe: no kernel to boot: %s", banger_error_last());

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		*why = bng_asprintf("cannot open /dev/kvm (%s): using TCG", strerror(errno));
		return 0;
	}
	int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
	close(kvm);
	if (api != KVM_API_VERSION) {
		*why = bng_asprintf("/dev/kvm speaks KVM API %d, not %d: using TCG", api, KVM_API_VERSION);
		return 0;
	}

	const char *tmp = getenv("TMPDIR");
	char *dir = bng_asprintf("%s/banger-kvm-probe-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		int e = errno;
		free(dir);
		return bng_err_errno(BANGER_EIO, e, "KVM probe: cannot create a scratch directory");
	}
	char *console = bng_asprintf("%s/console.log", dir);
	char *log = bng_asprintf("%s/qemu.log", dir);
	bng_vm_config cfg = {
		.id = "kvm-probe",
		.run_dir = dir,
		.console_log = console,
		.process_log = log,
		.vcpus = 1,
		.mem_mib = 256,
		.kernel_dir = kernel_dir,
		.cmdline = "banger.probe=1",
		.binary = qemu_binary,
		.kvm = true,
	};
	json_t *state = NULL;
	long long t0 = bng_now_ms();
	rc = bng_vmm_qemu.start(&cfg, NULL, &state);
	if (rc) {
		*why = bng_asprintf("qemu cannot start a VM under KVM (%s): using TCG", banger_error_last());
		goto out;
	}
	pid_t pid = (pid_t)json_integer_value(json_object_get(state, "pid"));
	char *text = NULL;
	bool exited = false;
	for (;;) {
		free(text);
		text = NULL;
		bng_read_file(console, &text, NULL);
		if (text && strstr(text, PROBE_MARKER)) {
			*usable = true;
			break;
		}
		/* Read the console once more after an exit: the marker may have
		 * landed just before qemu went. */
		if (exited || bng_now_ms() - t0 >= timeout_ms)
			break;
		exited = bng_proc_gone(pid, 0);
		if (!exited)
			usleep(50 * 1000);
	}
	bng_vmm_qemu.kill(state, SIGKILL);
	double secs = (double)(bng_now_ms() - t0) / 1000.0;
	char *last = last_line(text ? text : "");
	if (*usable)
		*why = bng_asprintf("a guest booted under KVM (probe ok after %.1f s)", secs);
	else if (exited)
		*why = bng_asprintf("the probe guest stopped under KVM without printing \"%s\" (last console line: "
				    "\"%s\"): using TCG", PROBE_MARKER, last);
	else if (!*last)
		*why = bng_asprintf("no output within %.0f s under KVM: using TCG", (double)timeout_ms / 1000.0);
	else
		*why = bng_asprintf("the guest stalled under KVM: no probe marker within %.0f s (last console line: "
				    "\"%s\"): using TCG", (double)timeout_ms / 1000.0, last);
	free(last);
	free(text);
	bng_err_clear();
out:
	json_decref(state);
	bng_rm_rf(dir);
	free(console);
	free(log);
	free(dir);
	return 0;
}

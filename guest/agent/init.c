/* banger-agent --init: banger's own PID 1, for images with no usable
 * /sbin/init (a busybox or a debootstrap minbase rootfs, most container
 * images). banger's initramfs has already mounted the root, moved /dev,
 * /proc and /sys into it and set eth0's address and the resolver; this
 * finishes what an init does for a developer's sandbox and keeps PID 1
 * small: the agent runs as its child, so a crashing agent is restarted
 * (as systemd's Restart=always does) instead of panicking the kernel. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void say(const char *what, const char *path)
{
	fprintf(stderr, "banger-agent: init: %s %s: %s\n", what, path, strerror(errno));
}

/* A mount point differs in device from its parent (or is the root). */
static bool mounted(const char *path)
{
	struct stat st, up;
	char parent[256];
	snprintf(parent, sizeof(parent), "%s/..", path);
	if (stat(path, &st) != 0 || stat(parent, &up) != 0)
		return false;
	return st.st_dev != up.st_dev || st.st_ino == up.st_ino;
}

/* Mounts fs on path unless something is there already (the initramfs
 * moved /dev, /proc and /sys; /run holds the overlay's layers). */
static void mount_once(const char *fs, const char *path, unsigned long flags, const char *opts)
{
	mkdir(path, 0755); /* the root is writable: an image may lack the directory */
	if (mounted(path))
		return;
	if (mount(fs, path, fs, flags, opts) != 0)
		say("cannot mount", path);
}

static void set_hostname(void)
{
	char name[65] = "";
	FILE *f = fopen("/etc/hostname", "r"); /* banger writes the VM's name there */
	if (f) {
		if (!fgets(name, sizeof(name), f))
			name[0] = '\0';
		fclose(f);
	}
	name[strcspn(name, " \t\r\n")] = '\0';
	if (name[0] && sethostname(name, strlen(name)) != 0)
		say("cannot set hostname", name);
}

/* Starts the image's sshd, which daemonizes itself, in a child so the agent
 * need not wait for it (the host waits for port 22 through the agent).
 * Host keys: banger puts the VM's ed25519 key in its layer; ssh-keygen -A
 * (tens of seconds of an emulated CPU) runs only for a root with none. */
static bool start_sshd(void)
{
	if (access("/usr/sbin/sshd", X_OK) != 0)
		return false;
	mkdir("/run/sshd", 0755); /* its privilege separation directory */
	pid_t pid = fork();
	if (pid != 0)
		return pid > 0;
	static const char *const keys[] = {"/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ecdsa_key",
					   "/etc/ssh/ssh_host_rsa_key"};
	bool any = false;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		any = any || access(keys[i], R_OK) == 0;
	if (!any && access("/usr/bin/ssh-keygen", X_OK) == 0) {
		pid_t keygen = fork();
		if (keygen == 0) {
			execl("/usr/bin/ssh-keygen", "ssh-keygen", "-A", (char *)NULL);
			_exit(127);
		}
		while (keygen > 0 && waitpid(keygen, NULL, 0) < 0 && errno == EINTR) {
		}
	}
	execl("/usr/sbin/sshd", "/usr/sbin/sshd", (char *)NULL); /* sshd re-execs itself: an absolute path */
	say("cannot run", "/usr/sbin/sshd");
	_exit(127);
}

int init_boot(bool *sshd)
{
	if (getpid() != 1) {
		fprintf(stderr, "banger-agent: --init must be PID 1 (banger.init= on the kernel command line)\n");
		return -1;
	}
	umask(022);
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	mount_once("proc", "/proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_once("sysfs", "/sys", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_once("devtmpfs", "/dev", MS_NOSUID, "mode=0755");
	mount_once("devpts", "/dev/pts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666");
	mount_once("tmpfs", "/dev/shm", MS_NOSUID | MS_NODEV, "mode=1777");
	mount_once("cgroup2", "/sys/fs/cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC, "nsdelegate");
	mount_once("tmpfs", "/run", MS_NOSUID | MS_NODEV, "mode=0755");
	mount_once("tmpfs", "/tmp", MS_NOSUID | MS_NODEV, "mode=1777");
	/* what udev or systemd would add: shells' process substitution uses /dev/fd */
	static const char *const links[][2] = {{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
					       {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"}};
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		if (symlink(links[i][0], links[i][1]) != 0 && errno != EEXIST)
			say("cannot link", links[i][1]);
	set_hostname();
	*sshd = start_sshd();
	for (;;) {
		pid_t agent = fork();
		if (agent == 0)
			return 0;
		if (agent < 0)
			say("cannot fork", "the agent");
		/* Reap everything: orphans are ours. Signals without a handler
		 * never reach PID 1, so SIGTERM or SIGINT from a guest command
		 * cannot end the machine. */
		for (;;) {
			int st;
			pid_t pid = wait(&st);
			if (pid < 0 && errno == EINTR)
				continue;
			if (pid == agent || pid < 0)
				break;
		}
		fprintf(stderr, "banger-agent: init: the agent exited; starting it again in 1 s\n");
		nanosleep(&(struct timespec){1, 0}, NULL);
	}
}

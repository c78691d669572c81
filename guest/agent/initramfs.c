/* banger-agent as the initramfs's /init: what guest/init/init (the busybox
 * script, kept as /init.sh) does on every ordinary boot, without starting
 * a program per step. Under TCG each program costs 10-40 ms, and the
 * script started about 40 of them (0.7 s of a 3 s boot).
 *
 * It reads the same kernel arguments (banger.root, banger.rootfstype,
 * banger.overlay, banger.ip, banger.init, banger.probe, MODULE.PARAM=VALUE)
 * and prints the same "banger-init:" lines. What it leaves to the script:
 * banger.debug (a shell on failure) and LABEL=/UUID= devices (findfs). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "initramfs.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 256
#define DEVICE_WAIT_MS 10000
#define POLL_MS 10

static void vsay(const char *prefix, const char *fmt, va_list ap)
{
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	printf("banger-init: %s%s\n", prefix, line);
	fflush(stdout);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay("", fmt, ap);
	va_end(ap);
}

static void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	/* No power-off path (some VMMs): exiting PID 1 panics, and panic=-1 reboots. */
	_exit(1);
}

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay("FATAL: ", fmt, ap);
	va_end(ap);
	power_off();
	_exit(1);
}

size_t initramfs_split_cmdline(char *line, char **argv, size_t max)
{
	size_t n = 0;
	char *out = line;
	const char *in = line;
	while (*in && n < max) {
		while (*in == ' ' || *in == '\t' || *in == '\n')
			in++;
		if (!*in)
			break;
		argv[n++] = out;
		bool quoted = false;
		for (; *in && (quoted || (*in != ' ' && *in != '\t' && *in != '\n')); in++)
			if (*in == '"')
				quoted = !quoted;
			else
				*out++ = *in;
		if (*in)
			in++;
		*out++ = '\0';
	}
	return n;
}

int initramfs_split_words(char *s, char **argv, size_t max)
{
	size_t n = 0;
	char *out = s;
	const char *in = s;
	for (;;) {
		while (*in == ' ' || *in == '\t' || *in == '\n')
			in++;
		if (!*in)
			break;
		if (n + 1 >= max)
			return -1;
		argv[n++] = out;
		while (*in && *in != ' ' && *in != '\t' && *in != '\n') {
			if (*in == '\'') {
				const char *end = strchr(in + 1, '\'');
				if (!end)
					return -1;
				memmove(out, in + 1, (size_t)(end - in - 1));
				out += end - in - 1;
				in = end + 1;
			} else if (*in == '"') {
				for (in++; *in && *in != '"'; in++) {
					if (*in == '\\' && (in[1] == '"' || in[1] == '\\' || in[1] == '$' || in[1] == '`'))
						in++;
					*out++ = *in;
				}
				if (*in != '"')
					return -1;
				in++;
			} else if (*in == '\\' && in[1]) {
				*out++ = in[1];
				in += 2;
			} else {
				*out++ = *in++;
			}
		}
		/* The word ends at a blank, which the write above may have reached. */
		bool more = *in != '\0';
		*out++ = '\0';
		if (more)
			in++;
	}
	argv[n] = NULL;
	return (int)n;
}

static void sleep_ms(int ms)
{
	nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000L}, NULL);
}

static bool wait_for(const char *path, bool block)
{
	for (int waited = 0;; waited += POLL_MS) {
		struct stat st;
		if (stat(path, &st) == 0 && (!block || S_ISBLK(st.st_mode)))
			return true;
		if (waited >= DEVICE_WAIT_MS)
			return false;
		sleep_ms(POLL_MS);
	}
}

static char *read_text(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	ssize_t r;
	while (buf && (r = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)r;
		if (len + 1 == cap) {
			char *more = realloc(buf, cap *= 2);
			if (!more) {
				free(buf);
				buf = NULL;
			}
			buf = more;
		}
	}
	close(fd);
	if (buf)
		buf[len] = '\0';
	return buf;
}

typedef struct {
	char *args[MAX_ARGS];
	size_t nargs;
	const char *root, *rootfstype, *overlay, *ip, *init;
	bool debug, probe;
} boot_args;

static void parse_args(boot_args *b, char *cmdline)
{
	b->root = "/dev/vda";
	b->rootfstype = "ext4";
	b->init = "/sbin/init";
	b->nargs = initramfs_split_cmdline(cmdline, b->args, MAX_ARGS);
	for (size_t i = 0; i < b->nargs; i++) {
		const char *a = b->args[i], *eq = strchr(a, '=');
		const char *v = eq ? eq + 1 : "";
		if (!strncmp(a, "banger.root=", 12))
			b->root = v;
		else if (!strncmp(a, "banger.rootfstype=", 18))
			b->rootfstype = v;
		else if (!strncmp(a, "banger.overlay=", 15))
			b->overlay = v;
		else if (!strncmp(a, "banger.ip=", 10))
			b->ip = v;
		else if (!strncmp(a, "banger.init=", 12))
			b->init = v;
		else if (!strcmp(a, "banger.debug") || !strncmp(a, "banger.debug=", 13))
			b->debug = true;
		else if (!strcmp(a, "banger.probe") || !strncmp(a, "banger.probe=", 13))
			b->probe = true;
	}
}

/* MODULE.PARAM=VALUE arguments for one module, space-separated. */
static void module_params(const boot_args *b, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name), len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < b->nargs; i++) {
		const char *a = b->args[i];
		if (strncmp(a, name, nl) || a[nl] != '.' || !strchr(a + nl + 1, '='))
			continue;
		int w = snprintf(out + len, cap - len, "%s%s", len ? " " : "", a + nl + 1);
		if (w < 0 || (size_t)w >= cap - len) {
			say("warning: parameters for module %s are too long: some dropped", name);
			break;
		}
		len += (size_t)w;
	}
}

/* /etc/banger-modules: "name path" per line, in dependency order. */
static void load_modules(const boot_args *b)
{
	char *list = read_text("/etc/banger-modules");
	for (char *save = NULL, *line = list ? strtok_r(list, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *name = line, *path = strchr(line, ' ');
		if (!path)
			continue;
		*path++ = '\0';
		char params[2048];
		module_params(b, name, params, sizeof(params));
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || syscall(SYS_finit_module, fd, params, 0) != 0) {
			if (errno != EEXIST) /* built in or already loaded */
				say("warning: cannot load module %s: %s", name, strerror(errno));
		}
		if (fd >= 0)
			close(fd);
	}
	free(list);
}

static void mkdirs(const char *path)
{
	char p[512];
	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0755);
			*s = '/';
		}
	mkdir(p, 0755);
}

static void mount_or_die(const char *src, const char *dst, const char *fs, unsigned long flags, const char *opts,
			 const char *why)
{
	if (mount(src, dst, fs, flags, opts) != 0)
		fatal("%s: %s", why, strerror(errno));
}

static void mount_root(const boot_args *b)
{
	if (!wait_for(b->root, true))
		fatal("root device %s did not appear within 10 s (is the disk attached, and its driver loaded?)", b->root);
	char why[256];
	if (!b->overlay) {
		snprintf(why, sizeof(why), "cannot mount root %s (%s) on /newroot", b->root, b->rootfstype);
		mount_or_die(b->root, "/newroot", b->rootfstype, 0, NULL, why);
		return;
	}
	if (!wait_for(b->overlay, true))
		fatal("overlay device %s did not appear within 10 s", b->overlay);
	mkdir("/lower", 0755);
	mkdir("/rw", 0755);
	snprintf(why, sizeof(why), "cannot mount root %s (%s) read-only on /lower", b->root, b->rootfstype);
	mount_or_die(b->root, "/lower", b->rootfstype, MS_RDONLY, NULL, why);
	snprintf(why, sizeof(why), "cannot mount overlay disk %s (ext4) on /rw", b->overlay);
	mount_or_die(b->overlay, "/rw", "ext4", 0, NULL, why);
	if ((mkdir("/rw/upper", 0755) && errno != EEXIST) || (mkdir("/rw/work", 0755) && errno != EEXIST))
		fatal("cannot create upper and work directories on %s: %s", b->overlay, strerror(errno));
	snprintf(why, sizeof(why), "cannot mount the overlay of %s and %s", b->root, b->overlay);
	mount_or_die("overlay", "/newroot", "overlay", 0, "lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work", why);
	/* A tmpfs /run is kept by systemd (it is already a mount point), so the
	 * layers stay reachable at /run/banger/{lower,rw} in the guest. */
	mkdir("/newroot/run", 0755);
	if (mount("tmpfs", "/newroot/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0)
		fatal("cannot mount a tmpfs on /run: %s", strerror(errno));
	mkdirs("/newroot/run/banger/lower");
	mkdirs("/newroot/run/banger/rw");
	if (mount("/lower", "/newroot/run/banger/lower", NULL, MS_MOVE, NULL) != 0 ||
	    mount("/rw", "/newroot/run/banger/rw", NULL, MS_MOVE, NULL) != 0)
		fatal("cannot move the overlay layers under /run/banger: %s", strerror(errno));
}

static int if_flags_up(int s, const char *dev)
{
	struct ifreq r = {0};
	snprintf(r.ifr_name, sizeof(r.ifr_name), "%s", dev);
	if (ioctl(s, SIOCGIFFLAGS, &r) != 0)
		return -1;
	r.ifr_flags |= IFF_UP;
	return ioctl(s, SIOCSIFFLAGS, &r);
}

static void set_sin(struct sockaddr *sa, in_addr_t a)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = a};
	memcpy(sa, &sin, sizeof(sin));
}

/* banger.ip=ADDR/PREFIX,GATEWAY[,DNS] */
static void set_network(const char *spec)
{
	char buf[128], *addr = buf, *gw, *dns = NULL, *slash;
	snprintf(buf, sizeof(buf), "%s", spec);
	if ((gw = strchr(buf, ',')) != NULL) {
		*gw++ = '\0';
		if ((dns = strchr(gw, ',')) != NULL)
			*dns++ = '\0';
	}
	long prefix = 32;
	if ((slash = strchr(addr, '/')) != NULL) {
		*slash = '\0';
		char *end;
		prefix = strtol(slash + 1, &end, 10);
		if (*end || prefix < 0 || prefix > 32)
			prefix = -1;
	}
	struct in_addr a, g = {0};
	if (prefix < 0 || inet_pton(AF_INET, addr, &a) != 1 || (gw && *gw && inet_pton(AF_INET, gw, &g) != 1))
		fatal("cannot parse banger.ip=%s (ADDR/PREFIX,GATEWAY[,DNS])", spec);
	if (!wait_for("/sys/class/net/eth0", false))
		fatal("no eth0 within 10 s: is a virtio-net device attached?");
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		fatal("cannot open a socket to configure eth0: %s", strerror(errno));
	if_flags_up(s, "lo");
	if (if_flags_up(s, "eth0") != 0)
		fatal("cannot bring eth0 up: %s", strerror(errno));
	struct ifreq r = {0};
	snprintf(r.ifr_name, sizeof(r.ifr_name), "eth0");
	set_sin(&r.ifr_addr, a.s_addr);
	if (ioctl(s, SIOCSIFADDR, &r) != 0)
		fatal("cannot add address %s to eth0: %s", addr, strerror(errno));
	set_sin(&r.ifr_netmask, prefix ? htonl(~0u << (32 - prefix)) : 0);
	if (ioctl(s, SIOCSIFNETMASK, &r) != 0)
		fatal("cannot set eth0's prefix /%ld: %s", prefix, strerror(errno));
	if (gw && *gw) {
		struct rtentry rt = {0};
		set_sin(&rt.rt_dst, 0);
		set_sin(&rt.rt_genmask, 0);
		set_sin(&rt.rt_gateway, g.s_addr);
		rt.rt_flags = RTF_UP | RTF_GATEWAY;
		rt.rt_dev = (char *)"eth0";
		if (ioctl(s, SIOCADDRT, &rt) != 0)
			fatal("cannot add default route via %s: %s", gw, strerror(errno));
	}
	close(s);
	if (dns && *dns) {
		/* A dangling resolver symlink (systemd-resolved) is replaced by a file. */
		struct stat st;
		if (lstat("/newroot/etc/resolv.conf", &st) == 0 && S_ISLNK(st.st_mode))
			unlink("/newroot/etc/resolv.conf");
		FILE *f = fopen("/newroot/etc/resolv.conf", "we");
		if (!f || fprintf(f, "nameserver %s\n", dns) < 0 || fclose(f) != 0)
			say("warning: cannot write /etc/resolv.conf");
	}
	say("eth0 is %s/%ld%s%s", addr, prefix, gw && *gw ? " via " : "", gw && *gw ? gw : "");
}

/* Frees the initramfs's memory: everything on its filesystem but the new
 * root, as switch_root does. */
static void delete_contents(int dirfd, dev_t dev)
{
	DIR *d = fdopendir(dirfd);
	if (!d) {
		close(dirfd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != dev)
			continue; /* a mount point: the new root, or one moved into it */
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				delete_contents(sub, dev);
			unlinkat(dirfd, e->d_name, AT_REMOVEDIR);
		} else {
			unlinkat(dirfd, e->d_name, 0);
		}
	}
	closedir(d);
}

static void switch_root(const boot_args *b)
{
	char spec[1024], path[1100];
	snprintf(spec, sizeof(spec), "%s", b->init);
	char *argv[64];
	if (initramfs_split_words(spec, argv, 64) < 1)
		fatal("cannot split banger.init=%s into words (unterminated quote, or over 63 words)", b->init);
	snprintf(path, sizeof(path), "/newroot%s", argv[0]);
	struct stat st;
	if (argv[0][0] != '/' || (access(path, X_OK) != 0 && (lstat(path, &st) != 0 || !S_ISLNK(st.st_mode))))
		fatal("init %s is not an executable in the root filesystem (banger.init=...)", argv[0]);
	static const char *const moved[] = {"dev", "proc", "sys"};
	for (size_t i = 0; i < sizeof(moved) / sizeof(moved[0]); i++) {
		char from[16], to[32];
		snprintf(from, sizeof(from), "/%s", moved[i]);
		snprintf(to, sizeof(to), "/newroot/%s", moved[i]);
		if (stat(to, &st) == 0 && S_ISDIR(st.st_mode))
			mount(from, to, NULL, MS_MOVE, NULL);
		else
			umount2(from, MNT_DETACH);
	}
	say("switching root");
	struct stat root;
	if (stat("/", &root) == 0)
		delete_contents(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC), root.st_dev);
	if (chdir("/newroot") != 0 || mount(".", "/", NULL, MS_MOVE, NULL) != 0 || chroot(".") != 0 || chdir("/") != 0)
		fatal("cannot switch to the new root: %s", strerror(errno));
	execv(argv[0], argv);
	fatal("cannot run init %s: %s", argv[0], strerror(errno));
}

/* The script handles what this does not; it mounts for itself. */
static void hand_to_script(void)
{
	umount2("/dev", MNT_DETACH);
	umount2("/sys", MNT_DETACH);
	umount2("/proc", MNT_DETACH);
	execl("/init.sh", "/init", (char *)NULL);
	fatal("cannot run /init.sh: %s", strerror(errno));
}

static bool is_tag(const char *dev)
{
	return dev && (!strncmp(dev, "LABEL=", 6) || !strncmp(dev, "UUID=", 5));
}

int initramfs_main(void)
{
	setenv("PATH", "/bin:/sbin", 1);
	mkdir("/dev", 0755);
	mkdir("/proc", 0555);
	mkdir("/sys", 0555);
	mkdir("/newroot", 0755);
	if (mount("proc", "/proc", "proc", 0, NULL) != 0)
		fatal("cannot mount /proc: %s", strerror(errno));
	if (mount("sysfs", "/sys", "sysfs", 0, NULL) != 0)
		fatal("cannot mount /sys: %s", strerror(errno));
	if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) != 0)
		fatal("cannot mount /dev: %s", strerror(errno));
	static boot_args b;
	char *cmdline = read_text("/proc/cmdline");
	if (!cmdline)
		fatal("cannot read /proc/cmdline: %s", strerror(errno));
	parse_args(&b, cmdline);
	if (b.debug || is_tag(b.root) || is_tag(b.overlay))
		hand_to_script();
	load_modules(&b);
	say("modules loaded");
	if (b.probe) {
		say("probe ok");
		power_off();
	}
	mount_root(&b);
	say("root mounted");
	if (b.ip && *b.ip)
		set_network(b.ip);
	switch_root(&b);
	return 1;
}

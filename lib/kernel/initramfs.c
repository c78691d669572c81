/* The generated initramfs: an uncompressed cpio (newc) with a static busybox,
 * the guest agent as /init (the guest init script, its fallback, as /init.sh)
 * and the modules a distro kernel needs to reach its root disk, written with
 * libarchive. Entries carry mtime 0 and uid 0, so
 * the same inputs give the same archive. */
#include "kmod.h"

#include "../core/lazy_archive.h"
#include "../core/paths.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const char bng_guest_init_text[]; /* guest_init.c, generated from guest/init/init */

const char *bng_kernel_init_script(size_t *len)
{
	if (len)
		*len = strlen(bng_guest_init_text);
	return bng_guest_init_text;
}

/* Block (virtio_blk over mmio for microvm/Firecracker, pci for the rest),
 * network, the agent channels (vsock, virtio-serial) and the filesystems
 * init mounts. Dependencies are added by resolution. */
const char *const bng_initramfs_modules[] = {
	"virtio_mmio", "virtio_pci", "virtio_blk", "virtio_net", "vsock", "vmw_vsock_virtio_transport",
	"virtio_console", "overlay", "ext4",
};
const size_t bng_initramfs_modules_count = BNG_ARRAY_LEN(bng_initramfs_modules);

/* Applets init uses (and a few for a debug shell), linked to /bin/busybox. */
static const char *const applets[] = {
	"sh", "ash", "awk", "cat", "cttyhack", "dmesg", "echo", "findfs", "grep", "insmod", "ip", "ln", "ls",
	"lsmod", "mkdir", "modprobe", "mount", "poweroff", "printf", "reboot", "rm", "sed", "setsid", "sleep",
	"switch_root", "umount", "usleep",
};

#define MAX_BUSYBOX (64u << 20)
#define MAX_INIT (1u << 20)

/* A static executable has no PT_INTERP program header: the initramfs has
 * no dynamic loader or libc. what names the program (read from path into
 * buf), fix says what to do when it is dynamically linked. */
static int static_elf(const char *buf, size_t len, const char *path, const char *what, const char *fix)
{
	const unsigned char *e = (const unsigned char *)buf;
	if (len < 64 || memcmp(e, "\177ELF", 4) != 0 || e[4] != 2 || e[5] != 1)
		return bng_err(BANGER_EINVAL, "%s %s is not an x86-64 ELF executable", what, path);
	uint64_t phoff = 0;
	for (int i = 7; i >= 0; i--)
		phoff = phoff << 8 | e[0x20 + i];
	uint16_t phentsize = (uint16_t)(e[0x36] | e[0x37] << 8), phnum = (uint16_t)(e[0x38] | e[0x39] << 8);
	if (phentsize < 56 || phoff > len || (uint64_t)phnum * phentsize > len - phoff)
		return bng_err(BANGER_EINVAL, "%s %s has a corrupt ELF header", what, path);
	for (uint16_t i = 0; i < phnum; i++) {
		const unsigned char *ph = e + phoff + (size_t)i * phentsize;
		if ((ph[0] | ph[1] << 8 | ph[2] << 16 | (uint32_t)ph[3] << 24) == 3 /* PT_INTERP */)
			return bng_err(BANGER_EINVAL, "%s %s is dynamically linked and cannot run in the initramfs: %s",
				       what, path, fix);
	}
	return 0;
}

static int check_static_elf(const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	int rc = bng_read_file(path, &buf, &len);
	if (!rc)
		rc = static_elf(buf, len, path, "busybox",
				"install busybox-static (apt-get install busybox-static) or set BANGER_BUSYBOX");
	free(buf);
	return rc;
}

int bng_kernel_find_busybox(char **out)
{
	const char *env = getenv("BANGER_BUSYBOX");
	if (env && *env) {
		int rc = check_static_elf(env);
		if (rc)
			return rc;
		*out = bng_strdup(env);
		return 0;
	}
	static const char *const candidates[] = {"/bin/busybox", "/usr/bin/busybox", "/usr/lib/initramfs-tools/bin/busybox"};
	for (size_t i = 0; i < BNG_ARRAY_LEN(candidates); i++) {
		if (access(candidates[i], X_OK) != 0)
			continue;
		if (check_static_elf(candidates[i]) == 0) {
			*out = bng_strdup(candidates[i]);
			return 0;
		}
	}
	bng_err_clear();
	return bng_err(BANGER_ENOTFOUND,
		       "no statically linked busybox found (looked at BANGER_BUSYBOX, /bin/busybox, /usr/bin/busybox): "
		       "install busybox-static (apt-get install busybox-static)");
}

/* ---- archive writing ---- */

typedef struct {
	struct archive *a;
	const char *out_path;
	char **dirs; /* directories already written */
	size_t ndirs;
	int64_t ino;
} cpio;

static int cpio_err(cpio *c, const char *path)
{
	return bng_err(BANGER_EIO, "cannot write %s into initramfs %s: %s", path, c->out_path, archive_error_string(c->a));
}

static int cpio_entry(cpio *c, const char *path, mode_t mode, const void *data, size_t len, const char *link,
		      unsigned rmajor, unsigned rminor)
{
	struct archive_entry *e = archive_entry_new();
	if (!e)
		return bng_err(BANGER_ENOMEM, "out of memory");
	archive_entry_set_pathname(e, path);
	archive_entry_set_mode(e, mode);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_mtime(e, 0, 0);
	archive_entry_set_ino64(e, ++c->ino);
	archive_entry_set_nlink(e, S_ISDIR(mode) ? 2 : 1);
	if (link)
		archive_entry_set_symlink(e, link);
	if (S_ISCHR(mode)) {
		archive_entry_set_rdevmajor(e, rmajor);
		archive_entry_set_rdevminor(e, rminor);
	}
	archive_entry_set_size(e, S_ISREG(mode) ? (la_int64_t)len : link ? (la_int64_t)strlen(link) : 0);
	int rc = 0;
	if (archive_write_header(c->a, e) != ARCHIVE_OK)
		rc = cpio_err(c, path);
	else if (S_ISREG(mode) && len && archive_write_data(c->a, data, len) != (la_ssize_t)len)
		rc = cpio_err(c, path);
	archive_entry_free(e);
	return rc;
}

/* Writes path and any missing parents as 0755 directories. */
static int cpio_dir(cpio *c, const char *path)
{
	for (size_t i = 0; i < c->ndirs; i++)
		if (!strcmp(c->dirs[i], path))
			return 0;
	const char *slash = strrchr(path, '/');
	if (slash) {
		char *parent = bng_strdup(path);
		parent[slash - path] = '\0';
		int rc = cpio_dir(c, parent);
		free(parent);
		if (rc)
			return rc;
	}
	int rc = cpio_entry(c, path, S_IFDIR | 0755, NULL, 0, NULL, 0, 0);
	if (rc)
		return rc;
	char **p = realloc(c->dirs, (c->ndirs + 1) * sizeof(*p));
	if (!p)
		abort();
	p[c->ndirs++] = bng_strdup(path);
	c->dirs = p;
	return 0;
}

static int cpio_file(cpio *c, const char *path, mode_t perm, const void *data, size_t len)
{
	const char *slash = strrchr(path, '/');
	if (slash) {
		char *parent = bng_strdup(path);
		parent[slash - path] = '\0';
		int rc = cpio_dir(c, parent);
		free(parent);
		if (rc)
			return rc;
	}
	return cpio_entry(c, path, S_IFREG | perm, data, len, NULL, 0, 0);
}

/* Whether the kernel loads only signed modules: its config (<kernel
 * dir>/config, two levels above <kernel dir>/modules/<version>) forces
 * signatures or a lockdown that needs them, or cannot be read. (A
 * kernel_args with module.sig_enforce=1 or lockdown= needs a kernel whose
 * config says so.) */
static bool signatures_required(const char *modules_root)
{
	static const char *const forcing[] = {"CONFIG_MODULE_SIG_FORCE=y", "CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY=y",
					      "CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY=y",
					      "CONFIG_IMA_APPRAISE_REQUIRE_MODULE_SIGS=y"};
	char *path = bng_asprintf("%s/../../config", modules_root), *text = NULL;
	bool required = bng_read_file(path, &text, NULL) != 0;
	for (size_t i = 0; !required && i < BNG_ARRAY_LEN(forcing); i++)
		required = strstr(text, forcing[i]) != NULL;
	free(text);
	free(path);
	return required;
}

/* A module's length without its appended signature: the PKCS#7 blob, the
 * 12-byte struct module_signature (lengths at bytes 3, 4 and 8-11, big
 * endian) and the marker. Checking the RSA signatures of the ~13 modules
 * took ~0.2 s of an emulated guest's boot; without one, the kernel loads a
 * module as it would a locally built one (one "module verification
 * failed" line, taint flag E). */
static size_t unsigned_len(const void *data, size_t len)
{
	static const char marker[] = "~Module signature appended~\n";
	const size_t ml = sizeof(marker) - 1;
	const unsigned char *d = data;
	if (len < ml + 12 || memcmp(d + len - ml, marker, ml) != 0)
		return len;
	const unsigned char *info = d + len - ml - 12;
	uint64_t blob = (uint64_t)info[3] + info[4] +
			((uint64_t)info[8] << 24 | (uint64_t)info[9] << 16 | (uint64_t)info[10] << 8 | info[11]);
	return blob <= len - ml - 12 ? (size_t)(len - ml - 12 - blob) : len;
}

static int add_modules(cpio *c, const char *root, const char *kver, bng_kmod **order, size_t n)
{
	bool strip = root && !signatures_required(root);
	size_t cap = 256, used = 0;
	char *list = bng_xmalloc(cap);
	list[0] = '\0';
	int rc = 0;
	for (size_t i = 0; !rc && i < n; i++) {
		void *data;
		size_t len;
		if ((rc = bng_kmod_read(root, order[i]->path, &data, &len)))
			break;
		if (strip)
			len = unsigned_len(data, len);
		/* Stored uncompressed: busybox insmod and older kernels take plain .ko only. */
		char *rel = bng_strdup(order[i]->path);
		rel[strlen(rel) - (size_t)bng_kernel_module_suffix(rel)] = '\0';
		char *dst = bng_asprintf("lib/modules/%s/%s", kver, rel);
		rc = cpio_file(c, dst, 0644, data, len);
		char *line = bng_asprintf("%s /%s\n", order[i]->name, dst);
		size_t ll = strlen(line);
		if (used + ll + 1 > cap) {
			while (used + ll + 1 > cap)
				cap *= 2;
			char *p = realloc(list, cap);
			if (!p)
				abort();
			list = p;
		}
		memcpy(list + used, line, ll + 1);
		used += ll;
		free(line);
		free(dst);
		free(rel);
		free(data);
	}
	if (!rc)
		rc = cpio_file(c, "etc/banger-modules", 0644, list, used);
	free(list);
	return rc;
}

static int write_initramfs(cpio *c, const char *root, const char *kver, const char *busybox, const char *init,
			   size_t init_len, const char *agent, size_t agent_len, bng_kmod **order, size_t n)
{
	static const char *const dirs[] = {"bin", "sbin", "dev", "etc", "lib", "newroot", "proc", "run", "sys", "tmp"};
	int rc = 0;
	for (size_t i = 0; !rc && i < BNG_ARRAY_LEN(dirs); i++)
		rc = cpio_dir(c, dirs[i]);
	/* The kernel opens /dev/console for init before anything mounts devtmpfs. */
	if (!rc)
		rc = cpio_entry(c, "dev/console", S_IFCHR | 0600, NULL, 0, NULL, 5, 1);
	if (!rc)
		rc = cpio_entry(c, "dev/null", S_IFCHR | 0666, NULL, 0, NULL, 1, 3);
	if (!rc) {
		char *bb;
		size_t bblen;
		if (!(rc = bng_read_file(busybox, &bb, &bblen))) {
			rc = bblen > MAX_BUSYBOX ? bng_err(BANGER_ETOOBIG, "busybox %s is over 64 MiB", busybox)
						 : cpio_file(c, "bin/busybox", 0755, bb, bblen);
			free(bb);
		}
	}
	for (size_t i = 0; !rc && i < BNG_ARRAY_LEN(applets); i++) {
		char *p = bng_asprintf("bin/%s", applets[i]);
		rc = cpio_entry(c, p, S_IFLNK | 0777, NULL, 0, "busybox", 0, 0);
		free(p);
	}
	/* With the agent as /init, the script is its fallback (init.sh). */
	if (!rc && agent)
		rc = cpio_file(c, "init", 0755, agent, agent_len);
	if (!rc)
		rc = cpio_file(c, agent ? "init.sh" : "init", 0755, init, init_len);
	if (!rc)
		rc = add_modules(c, root, kver, order, n);
	return rc;
}

int bng_initramfs_build(const char *modules_root, const char *kver, const char *busybox, const char *init_script,
			const char *out_path, json_t **loaded)
{
	if (!out_path)
		return bng_err(BANGER_EINVAL, "initramfs output path is required");
	struct stat st;
	if (modules_root && stat(modules_root, &st) != 0)
		modules_root = NULL; /* everything built in */
	char *kv = NULL;
	if (kver && *kver) {
		if (strchr(kver, '/') || !strcmp(kver, ".") || !strcmp(kver, ".."))
			return bng_err(BANGER_EINVAL, "kernel version '%s' is not a plain name", kver);
		kv = bng_strdup(kver);
	} else if (modules_root) {
		const char *b = strrchr(modules_root, '/');
		kv = bng_strdup(b && b[1] ? b + 1 : modules_root);
	}

	char *bb = NULL, *init_buf = NULL, *tmp = NULL, *agent = NULL;
	size_t agent_len = 0;
	bng_kmod_index idx = {0};
	bng_kmod **order = NULL;
	size_t norder = 0;
	cpio c = {.out_path = out_path};
	int fd = -1, rc;
	if (busybox) {
		rc = check_static_elf(busybox);
		bb = bng_strdup(busybox);
	} else {
		rc = bng_kernel_find_busybox(&bb);
	}
	if (rc)
		goto out;
	size_t init_len;
	const char *init;
	if (init_script) {
		if ((rc = bng_read_file(init_script, &init_buf, &init_len)))
			goto out;
		if (init_len > MAX_INIT || init_len < 2 || memcmp(init_buf, "#!", 2) != 0) {
			rc = bng_err(BANGER_EINVAL, "init script %s must be a script starting with #! (under 1 MiB)",
				     init_script);
			goto out;
		}
		init = init_buf;
	} else {
		init = bng_kernel_init_script(&init_len);
		/* The agent does the script's usual work without a program per
		 * step (guest/agent/initramfs.c); without one the script does. */
		char *path = bng_agent_binary();
		if (path && (rc = bng_read_file(path, &agent, &agent_len)) != 0) {
			free(path);
			goto out;
		}
		if (agent && static_elf(agent, agent_len, path, "the guest agent", "rebuild it with -static") != 0) {
			free(agent);
			agent = NULL;
		}
		free(path);
	}
	if ((rc = bng_kmod_index_load(&idx, modules_root)))
		goto out;
	if ((rc = bng_kmod_resolve(&idx, bng_initramfs_modules, bng_initramfs_modules_count, &order, &norder)))
		goto out;
	if (norder && !kv) {
		rc = bng_err(BANGER_EINVAL, "the kernel version is required to place modules in the initramfs");
		goto out;
	}

	tmp = bng_asprintf("%s.tmp-XXXXXX", out_path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		rc = bng_err_errno(bng_code_from_errno(errno), errno, "cannot create %s", tmp);
		free(tmp);
		tmp = NULL;
		goto out;
	}
	c.a = archive_write_new();
	/* Uncompressed: inflating 3 MB under TCG delayed /init by ~0.15 s, and
	 * the disk it saves is small next to the kernel's. */
	if (!c.a || archive_write_set_format_cpio_newc(c.a) != ARCHIVE_OK) {
		rc = bng_err(BANGER_EUNSUPPORTED, "this libarchive cannot write cpio archives in process");
		goto out;
	}
	archive_write_set_bytes_in_last_block(c.a, 1); /* no padding to 10 KiB blocks */
	if (archive_write_open_fd(c.a, fd) != ARCHIVE_OK) {
		rc = cpio_err(&c, "the header");
		goto out;
	}
	if ((rc = write_initramfs(&c, modules_root, kv, bb, init, init_len, agent, agent_len, order, norder)))
		goto out;
	if (archive_write_close(c.a) != ARCHIVE_OK) {
		rc = cpio_err(&c, "the trailer");
		goto out;
	}
	if (fchmod(fd, 0644) != 0 || fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		rc = bng_err_errno(BANGER_EIO, errno, "cannot write %s", tmp);
		goto out;
	}
	fd = -1;
	if (rename(tmp, out_path) != 0) {
		rc = bng_err_errno(bng_code_from_errno(errno), errno, "cannot rename %s to %s", tmp, out_path);
		goto out;
	}
	free(tmp);
	tmp = NULL;
	if (loaded) {
		*loaded = json_array();
		for (size_t i = 0; i < norder; i++)
			json_array_append_new(*loaded, json_string(order[i]->name));
	}
out:
	if (c.a)
		archive_write_free(c.a); /* closes nothing of ours: open_fd leaves fd to us */
	if (fd >= 0)
		close(fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	for (size_t i = 0; i < c.ndirs; i++)
		free(c.dirs[i]);
	free(c.dirs);
	free(order);
	bng_kmod_index_free(&idx);
	free(init_buf);
	free(agent);
	free(bb);
	free(kv);
	return rc;
}

int bng_kernel_initramfs_refresh(const char *kernel_dir, const char *kver, bool *rebuilt)
{
	*rebuilt = false;
	char *initrd = bng_asprintf("%s/initrd.img", kernel_dir);
	unsigned char head[2] = {0};
	int fd = open(initrd, O_RDONLY | O_CLOEXEC), rc = 0;
	bool old = fd >= 0 && read(fd, head, sizeof(head)) == (ssize_t)sizeof(head) && head[0] == 0x1f && head[1] == 0x8b;
	if (fd >= 0)
		close(fd);
	if (old) {
		char *mods = bng_asprintf("%s/modules/%s", kernel_dir, kver ? kver : "");
		struct stat st;
		rc = bng_initramfs_build(kver && stat(mods, &st) == 0 ? mods : NULL, kver, NULL, NULL, initrd, NULL);
		*rebuilt = rc == 0;
		free(mods);
	}
	free(initrd);
	return rc;
}

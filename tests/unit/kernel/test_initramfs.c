/* The initramfs (lib/kernel/initramfs.c, kmod.c) against a synthetic
 * modules tree: load order from .modinfo and from modules.dep, built-in
 * and absent modules skipped, compressed modules unpacked, soft
 * dependencies, and the archive read back with libarchive. */
#include "kfixtures.h"

#include "kernel/kmod.h"

#define KVER "6.9.9-test"

static char *dir, *root, *busybox, *agent;

static void put_module(const char *rel, const char *name, const char *depends, const char *softdep, const char *codec)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	CHECK_OK(bng_mkdir_p(path, 0755));
	*slash = '/';
	fx_buf m = fx_module(name, depends, softdep);
	if (codec) {
		fx_buf z = fx_compress(codec, m.p, m.len);
		fx_write(path, &z);
		free(z.p);
	} else {
		fx_write(path, &m);
	}
	free(m.p);
}

/* A tree shaped like Debian's cloud kernel, with twists: vsock built in,
 * the vsock transport absent, virtio_net compressed, ext4 with a soft
 * dependency on the crc32c algorithm and a chain of hard ones. */
static void make_tree(void)
{
	put_module("kernel/drivers/virtio/virtio_ring.ko", "virtio_ring", "", NULL, NULL);
	put_module("kernel/drivers/virtio/virtio.ko", "virtio", "virtio_ring", NULL, NULL);
	put_module("kernel/drivers/virtio/virtio_mmio.ko", "virtio_mmio", "virtio,virtio_ring", NULL, NULL);
	put_module("kernel/drivers/virtio/virtio_pci_legacy_dev.ko", "virtio_pci_legacy_dev", "", NULL, NULL);
	put_module("kernel/drivers/virtio/virtio_pci_modern_dev.ko", "virtio_pci_modern_dev", "", NULL, NULL);
	put_module("kernel/drivers/virtio/virtio_pci.ko", "virtio_pci",
		   "virtio_pci_legacy_dev,virtio_pci_modern_dev,virtio,virtio_ring", NULL, NULL);
	put_module("kernel/drivers/block/virtio_blk.ko", "virtio_blk", "virtio,virtio_ring", NULL, NULL);
	put_module("kernel/net/core/failover.ko", "failover", "", NULL, NULL);
	put_module("kernel/drivers/net/net_failover.ko", "net_failover", "failover", NULL, NULL);
	put_module("kernel/drivers/net/virtio_net.ko.xz", "virtio_net", "net_failover,virtio,virtio_ring", NULL, "xz");
	put_module("kernel/drivers/char/virtio_console.ko.zst", "virtio_console", "virtio,virtio_ring", NULL, "zstd");
	put_module("kernel/fs/overlayfs/overlay.ko", "overlay", "", NULL, NULL);
	put_module("kernel/lib/crc16.ko", "crc16", "", NULL, NULL);
	put_module("kernel/fs/mbcache.ko", "mbcache", "", NULL, NULL);
	put_module("kernel/fs/jbd2/jbd2.ko", "jbd2", "", NULL, NULL);
	put_module("kernel/crypto/crc32c_generic.ko", "crc32c_generic", "", NULL, NULL);
	put_module("kernel/fs/ext4/ext4.ko", "ext4", "mbcache,jbd2,crc16", "pre: crc32c", NULL);
	put_module("kernel/net/unrelated/unrelated.ko", "unrelated", "virtio", NULL, NULL); /* not wanted */
	char path[1024];
	snprintf(path, sizeof(path), "%s/modules.builtin", root);
	static const char builtin[] = "kernel/net/vmw_vsock/vsock.ko\nkernel/fs/fat/fat.ko\n";
	check_write_file(path, builtin, sizeof(builtin) - 1);
}

static const char *const want_order[] = {
	"virtio_ring", "virtio", "virtio_mmio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
	"virtio_blk", "failover", "net_failover", "virtio_net", "virtio_console", "overlay", "crc32c_generic",
	"mbcache", "jbd2", "crc16", "ext4",
};
#define NWANT (sizeof(want_order) / sizeof(want_order[0]))

static void check_order(int line, json_t *loaded)
{
	check_total++;
	bool ok = json_is_array(loaded) && json_array_size(loaded) == NWANT;
	for (size_t i = 0; ok && i < NWANT; i++)
		ok = !strcmp(json_string_value(json_array_get(loaded, i)), want_order[i]);
	if (!ok) {
		check_failed++;
		char *s = json_dumps(loaded, JSON_COMPACT);
		fprintf(stderr, "%s:%d: check failed: load order %s\n", __FILE__, line, s ? s : "(null)");
		free(s);
	}
}

/* The archive's entries, read back: name -> (type, data). */
typedef struct {
	char *name;
	mode_t type;
	char *data;
	size_t len;
	char *link;
	unsigned rmajor, rminor;
} entry;

typedef struct {
	entry *e;
	size_t n;
	const char *filter;
	const char *format;
} listing;

static listing read_archive(const char *path)
{
	listing l = {0};
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
		fprintf(stderr, "cannot open %s: %s\n", path, archive_error_string(a));
		archive_read_free(a);
		return l;
	}
	struct archive_entry *ae;
	while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
		l.e = realloc(l.e, (l.n + 1) * sizeof(*l.e));
		entry *e = &l.e[l.n++];
		memset(e, 0, sizeof(*e));
		e->name = strdup(archive_entry_pathname(ae));
		e->type = archive_entry_filetype(ae);
		if (archive_entry_symlink(ae))
			e->link = strdup(archive_entry_symlink(ae));
		e->rmajor = archive_entry_rdevmajor(ae);
		e->rminor = archive_entry_rdevminor(ae);
		e->len = (size_t)archive_entry_size(ae);
		e->data = malloc(e->len + 1);
		if (e->type == AE_IFREG && e->len)
			archive_read_data(a, e->data, e->len);
		e->data[e->type == AE_IFREG ? e->len : 0] = '\0';
		if (archive_entry_uid(ae) != 0 || archive_entry_mtime(ae) != 0)
			fprintf(stderr, "entry %s: uid %lld mtime %lld\n", e->name, (long long)archive_entry_uid(ae),
				(long long)archive_entry_mtime(ae));
	}
	l.filter = archive_filter_name(a, 0);
	l.format = archive_format_name(a);
	l.filter = l.filter ? strdup(l.filter) : NULL;
	l.format = l.format ? strdup(l.format) : NULL;
	archive_read_free(a);
	return l;
}

static void free_listing(listing *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->e[i].name);
		free(l->e[i].data);
		free(l->e[i].link);
	}
	free(l->e);
	free((char *)l->filter);
	free((char *)l->format);
}

static entry *find(listing *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->e[i].name, name))
			return &l->e[i];
	return NULL;
}

/* Each entry's parent directory comes before it (the kernel's unpacker
 * does not create parents). */
static bool parents_first(listing *l)
{
	for (size_t i = 0; i < l->n; i++) {
		char *parent = strdup(l->e[i].name), *slash = strrchr(parent, '/');
		bool ok = true;
		if (slash) {
			*slash = '\0';
			ok = false;
			for (size_t j = 0; j < i; j++)
				if (!strcmp(l->e[j].name, parent) && l->e[j].type == AE_IFDIR)
					ok = true;
		}
		free(parent);
		if (!ok) {
			fprintf(stderr, "entry %s comes before its parent\n", l->e[i].name);
			return false;
		}
	}
	return true;
}

static void check_archive(const char *out, const char *init_text)
{
	listing l = read_archive(out);
	CHECK_EQ_STR(l.filter, "none");
	CHECK_STR_CONTAINS(l.format, "SVR4"); /* newc: "SVR4 cpio nocrc" */
	CHECK(parents_first(&l));
	/* The agent (BANGER_AGENT, a fake static ELF here) is /init, the
	 * script its fallback. */
	entry *e = find(&l, "init");
	CHECK(e && e->type == AE_IFREG && e->len == 5000 + 64 && !memcmp(e->data, "\177ELF", 4));
	e = find(&l, "init.sh");
	CHECK(e && e->type == AE_IFREG);
	if (e)
		CHECK_EQ_STR(e->data, init_text);
	e = find(&l, "bin/busybox");
	CHECK(e && e->type == AE_IFREG && e->len > 64 && !memcmp(e->data, "\177ELF", 4));
	e = find(&l, "bin/sh");
	CHECK(e && e->type == AE_IFLNK && e->link && !strcmp(e->link, "busybox"));
	static const char *const applets[] = {"switch_root", "insmod", "mount", "ip", "awk", "usleep", "poweroff"};
	for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "bin/%s", applets[i]);
		CHECK(find(&l, name) != NULL);
	}
	e = find(&l, "dev/console");
	CHECK(e && e->type == AE_IFCHR && e->rmajor == 5 && e->rminor == 1);
	static const char *const dirs[] = {"dev", "proc", "sys", "newroot", "tmp", "run"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		e = find(&l, dirs[i]);
		CHECK(e && e->type == AE_IFDIR);
	}
	/* Modules: uncompressed, under /lib/modules/<ver>, listed in order. */
	e = find(&l, "lib/modules/" KVER "/kernel/drivers/net/virtio_net.ko");
	CHECK(e && e->type == AE_IFREG && !memcmp(e->data, "\177ELF", 4));
	CHECK(find(&l, "lib/modules/" KVER "/kernel/drivers/net/virtio_net.ko.xz") == NULL);
	e = find(&l, "lib/modules/" KVER "/kernel/drivers/char/virtio_console.ko");
	CHECK(e && e->type == AE_IFREG && !memcmp(e->data, "\177ELF", 4));
	CHECK(find(&l, "lib/modules/" KVER "/kernel/net/unrelated/unrelated.ko") == NULL);
	e = find(&l, "etc/banger-modules");
	CHECK(e != NULL);
	if (e) {
		char want[4096] = "";
		for (size_t i = 0; i < NWANT; i++) {
			bng_kmod_index idx;
			CHECK_OK(bng_kmod_index_load(&idx, root));
			bng_kmod *m = bng_kmod_find(&idx, want_order[i]);
			char line[512], *rel = m ? strdup(m->path) : strdup("?");
			int sfx = bng_kernel_module_suffix(rel);
			if (sfx > 0)
				rel[strlen(rel) - (size_t)sfx] = '\0';
			snprintf(line, sizeof(line), "%s /lib/modules/" KVER "/%s\n", want_order[i], rel);
			strcat(want, line);
			free(rel);
			bng_kmod_index_free(&idx);
		}
		CHECK_EQ_STR(e->data, want);
	}
	size_t modules = 0;
	for (size_t i = 0; i < l.n; i++)
		modules += l.e[i].type == AE_IFREG && strstr(l.e[i].name, ".ko");
	CHECK_EQ_INT(modules, NWANT);
	free_listing(&l);
}

static void test_from_modinfo(void)
{
	char out[1024];
	snprintf(out, sizeof(out), "%s/initrd.img", dir);
	json_t *loaded = NULL;
	CHECK_OK(bng_initramfs_build(root, KVER, busybox, NULL, out, &loaded));
	check_order(__LINE__, loaded);
	json_decref(loaded);
	check_archive(out, bng_kernel_init_script(NULL));
	CHECK_EQ_INT(fx_count_matching(dir, ".tmp-"), 0);

	/* Same inputs, same bytes. */
	char out2[1024];
	snprintf(out2, sizeof(out2), "%s/initrd2.img", dir);
	CHECK_OK(bng_initramfs_build(root, KVER, busybox, NULL, out2, NULL));
	char *a, *b;
	size_t alen, blen;
	CHECK_OK(bng_read_file(out, &a, &alen));
	CHECK_OK(bng_read_file(out2, &b, &blen));
	CHECK(alen == blen && !memcmp(a, b, alen));
	CHECK(alen > 10 && !memcmp(a, "070701", 6)); /* newc, uncompressed */
	free(a);
	free(b);
}

static void test_from_depmod(void)
{
	CHECK_OK(bng_kernel_depmod(root));
	char path[1024], *text = NULL;
	snprintf(path, sizeof(path), "%s/modules.dep", root);
	CHECK_OK(bng_read_file(path, &text, NULL));
	/* depmod's format: the whole closure, last loaded first. */
	CHECK_STR_CONTAINS(text, "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko "
				 "kernel/drivers/virtio/virtio_ring.ko\n");
	CHECK_STR_CONTAINS(text, "kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/virtio/virtio.ko "
				 "kernel/drivers/virtio/virtio_ring.ko kernel/drivers/net/net_failover.ko "
				 "kernel/net/core/failover.ko\n");
	CHECK_STR_CONTAINS(text, "kernel/drivers/virtio/virtio_ring.ko:\n");
	free(text);
	snprintf(path, sizeof(path), "%s/modules.softdep", root);
	CHECK_OK(bng_read_file(path, &text, NULL));
	CHECK_STR_CONTAINS(text, "softdep ext4 pre: crc32c\n");
	free(text);

	/* With modules.dep present it is what counts: same order. */
	char out[1024];
	snprintf(out, sizeof(out), "%s/initrd-dep.img", dir);
	json_t *loaded = NULL;
	CHECK_OK(bng_initramfs_build(root, KVER, busybox, NULL, out, &loaded));
	check_order(__LINE__, loaded);
	json_decref(loaded);
	check_archive(out, bng_kernel_init_script(NULL));
}

static void test_everything_builtin(void)
{
	char out[1024], init[1024];
	snprintf(out, sizeof(out), "%s/initrd-builtin.img", dir);
	snprintf(init, sizeof(init), "%s/my-init", dir);
	static const char script[] = "#!/bin/sh\necho custom init\n";
	check_write_file(init, script, sizeof(script) - 1);
	json_t *loaded = NULL;
	CHECK_OK(bng_initramfs_build(NULL, NULL, busybox, init, out, &loaded));
	CHECK(json_is_array(loaded) && json_array_size(loaded) == 0);
	json_decref(loaded);
	listing l = read_archive(out);
	entry *e = find(&l, "init");
	CHECK(e && !strcmp(e->data, script));
	e = find(&l, "etc/banger-modules");
	CHECK(e && e->len == 0);
	for (size_t i = 0; i < l.n; i++)
		CHECK(!strstr(l.e[i].name, ".ko"));
	free_listing(&l);

	/* A modules root that does not exist means the same. */
	char missing[1024];
	snprintf(missing, sizeof(missing), "%s/no/such/modules", dir);
	CHECK_OK(bng_initramfs_build(missing, KVER, busybox, init, out, &loaded));
	CHECK_EQ_INT(json_array_size(loaded), 0);
	json_decref(loaded);

	/* Not a script. */
	check_write_file(init, "\x7f" "ELF", 4);
	CHECK_EQ_INT(bng_initramfs_build(NULL, NULL, busybox, init, out, NULL), BANGER_EINVAL);
	CHECK_STR_CONTAINS(banger_error_last(), "#!");
}

static void test_errors(void)
{
	char out[1024];
	snprintf(out, sizeof(out), "%s/initrd-bad.img", dir);

	/* A dynamically linked busybox cannot run in the initramfs. */
	char dyn[1024];
	snprintf(dyn, sizeof(dyn), "%s/busybox-dynamic", dir);
	fx_buf d = fx_elf(100, true);
	fx_write(dyn, &d);
	free(d.p);
	CHECK_EQ_INT(bng_initramfs_build(root, KVER, dyn, NULL, out, NULL), BANGER_EINVAL);
	CHECK_STR_CONTAINS(banger_error_last(), "busybox-static");
	CHECK(!fx_exists(out));
	/* A dynamically linked agent is left out: the script is /init. */
	setenv("BANGER_AGENT", dyn, 1);
	CHECK_OK(bng_initramfs_build(root, KVER, busybox, NULL, out, NULL));
	listing l = read_archive(out);
	entry *e = find(&l, "init");
	CHECK(e && e->data && !strcmp(e->data, bng_kernel_init_script(NULL)));
	CHECK(find(&l, "init.sh") == NULL);
	free_listing(&l);
	unlink(out);
	setenv("BANGER_AGENT", agent, 1);
	setenv("BANGER_BUSYBOX", dyn, 1);
	char *found = NULL;
	CHECK_EQ_INT(bng_kernel_find_busybox(&found), BANGER_EINVAL);
	setenv("BANGER_BUSYBOX", busybox, 1);
	CHECK_OK(bng_kernel_find_busybox(&found));
	CHECK_EQ_STR(found, busybox);
	free(found);
	unsetenv("BANGER_BUSYBOX");

	/* A missing hard dependency is an incomplete tree. */
	char *broken = check_tmpdir("kmod-broken");
	char *saved = root;
	root = broken;
	put_module("kernel/drivers/block/virtio_blk.ko", "virtio_blk", "virtio,virtio_ring", NULL, NULL);
	put_module("kernel/drivers/virtio/virtio.ko", "virtio", "", NULL, NULL);
	CHECK_EQ_INT(bng_initramfs_build(broken, KVER, busybox, NULL, out, NULL), BANGER_EINVAL);
	CHECK_STR_CONTAINS(banger_error_last(), "virtio_ring");
	CHECK(!fx_exists(out));
	CHECK_EQ_INT(fx_count_matching(dir, ".tmp-"), 0);

	/* A dependency cycle. */
	put_module("kernel/drivers/virtio/virtio_ring.ko", "virtio_ring", "virtio_blk", NULL, NULL);
	CHECK_EQ_INT(bng_initramfs_build(broken, KVER, busybox, NULL, out, NULL), BANGER_EINVAL);
	CHECK_STR_CONTAINS(banger_error_last(), "depends on itself");
	CHECK(!fx_exists(out));

	/* A module that is not ELF. */
	char path[1024];
	snprintf(path, sizeof(path), "%s/kernel/drivers/virtio/virtio_ring.ko", broken);
	check_write_file(path, "not an elf file, clearly not", 28);
	CHECK_EQ_INT(bng_initramfs_build(broken, KVER, busybox, NULL, out, NULL), BANGER_EINVAL);
	CHECK_STR_CONTAINS(banger_error_last(), "ELF64");

	/* A corrupt section table. */
	fx_buf m = fx_module("virtio_ring", "", NULL);
	fx_le(m.p + 0x28, m.len - 10, 8);
	fx_write(path, &m);
	free(m.p);
	CHECK_EQ_INT(bng_initramfs_build(broken, KVER, busybox, NULL, out, NULL), BANGER_EINVAL);
	CHECK_STR_CONTAINS(banger_error_last(), "corrupt");

	/* Two modules named alike. */
	fx_buf ok = fx_module("virtio_ring", "", NULL);
	fx_write(path, &ok);
	free(ok.p);
	put_module("kernel/other/virtio-ring.ko", "virtio_ring", "", NULL, NULL);
	CHECK_EQ_INT(bng_initramfs_build(broken, KVER, busybox, NULL, out, NULL), BANGER_EINVAL);
	CHECK_STR_CONTAINS(banger_error_last(), "two modules named virtio_ring");

	/* A bad kernel version. */
	CHECK_EQ_INT(bng_initramfs_build(NULL, "../x", busybox, NULL, out, NULL), BANGER_EINVAL);
	root = saved;
	check_rm_rf(broken);
	free(broken);
	CHECK(!fx_exists(out));
}

/* An initrd.img from an older banger (gzip) is rebuilt from the kernel
 * directory's modules tree; a current one is left alone. */
static void test_refresh(void)
{
	char kdir[1024], mods[1100], initrd[1100];
	snprintf(kdir, sizeof(kdir), "%s/kdir", dir);
	snprintf(mods, sizeof(mods), "%s/modules", kdir);
	snprintf(initrd, sizeof(initrd), "%s/initrd.img", kdir);
	mkdir(kdir, 0755);
	char *lib_modules = bng_asprintf("%s/lib/modules", dir);
	CHECK(symlink(lib_modules, mods) == 0); /* kdir/modules/KVER is the fixture tree */
	free(lib_modules);
	setenv("BANGER_BUSYBOX", busybox, 1);
	bool rebuilt = true;
	CHECK_OK(bng_kernel_initramfs_refresh(kdir, KVER, &rebuilt)); /* no initrd at all: nothing to do */
	CHECK(!rebuilt && !fx_exists(initrd));
	check_write_file(initrd, "\x1f\x8b\x08\x00old", 8);
	CHECK_OK(bng_kernel_initramfs_refresh(kdir, KVER, &rebuilt));
	CHECK(rebuilt);
	check_archive(initrd, bng_kernel_init_script(NULL));
	CHECK_OK(bng_kernel_initramfs_refresh(kdir, KVER, &rebuilt));
	CHECK(!rebuilt);
	unsetenv("BANGER_BUSYBOX");
}

static void test_init_script(void)
{
	size_t len;
	const char *s = bng_kernel_init_script(&len);
	CHECK(len > 100 && len == strlen(s));
	CHECK(!strncmp(s, "#!/bin/sh\n", 10));
	static const char *const markers[] = {"echo \"banger-init: $*\"", "log \"modules loaded\"",
					      "log \"root mounted\"", "log \"switching root\"", "log \"FATAL: $*\"",
					      "exec switch_root /newroot $init"};
	for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++)
		CHECK_STR_CONTAINS(s, markers[i]);
}

/* Appended module signatures: stripped when the kernel's config says it
 * does not require them, kept when it does or cannot be read. */
static size_t module_len_in(const char *out, const char *name)
{
	listing l = read_archive(out);
	entry *e = find(&l, name);
	size_t len = e && e->type == AE_IFREG ? e->len : 0;
	CHECK(e == NULL || !memcmp(e->data, "\177ELF", 4));
	free_listing(&l);
	return len;
}

static void test_signatures(void)
{
	char path[1024], out[1024], config[1024];
	snprintf(path, sizeof(path), "%s/kernel/fs/overlayfs/overlay.ko", root);
	snprintf(out, sizeof(out), "%s/initrd-sig.img", dir);
	snprintf(config, sizeof(config), "%s/../../config", root);
	char *plain = NULL;
	size_t plain_len = 0;
	CHECK_OK(bng_read_file(path, &plain, &plain_len));
	/* a 300-byte PKCS#7 blob, struct module_signature (id_type 2, sig_len
	 * big endian at 8..11), the marker */
	fx_buf signed_mod = {0};
	fx_put(&signed_mod, plain, plain_len);
	fx_put_zero(&signed_mod, 300);
	unsigned char info[12] = {0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 300 >> 8, 300 & 0xff};
	fx_put(&signed_mod, info, sizeof(info));
	fx_put(&signed_mod, "~Module signature appended~\n", 28);
	fx_write(path, &signed_mod);
	const char *name = "lib/modules/" KVER "/kernel/fs/overlayfs/overlay.ko";

	unlink(config); /* unknown: kept */
	CHECK_OK(bng_initramfs_build(root, KVER, busybox, NULL, out, NULL));
	CHECK_EQ_INT(module_len_in(out, name), signed_mod.len);
	static const char forced[] = "CONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_FORCE=y\n";
	check_write_file(config, forced, sizeof(forced) - 1);
	CHECK_OK(bng_initramfs_build(root, KVER, busybox, NULL, out, NULL));
	CHECK_EQ_INT(module_len_in(out, name), signed_mod.len);
	static const char lockdown[] = "CONFIG_MODULE_SIG=y\nCONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY=y\n";
	check_write_file(config, lockdown, sizeof(lockdown) - 1);
	CHECK_OK(bng_initramfs_build(root, KVER, busybox, NULL, out, NULL));
	CHECK_EQ_INT(module_len_in(out, name), signed_mod.len);
	static const char optional[] = "CONFIG_MODULE_SIG=y\n# CONFIG_MODULE_SIG_FORCE is not set\n";
	check_write_file(config, optional, sizeof(optional) - 1);
	CHECK_OK(bng_initramfs_build(root, KVER, busybox, NULL, out, NULL));
	CHECK_EQ_INT(module_len_in(out, name), plain_len);
	/* a marker whose lengths overrun the file is left alone */
	unsigned char huge[12] = {0, 0, 2, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff};
	memcpy(signed_mod.p + signed_mod.len - 40, huge, sizeof(huge));
	fx_write(path, &signed_mod);
	CHECK_OK(bng_initramfs_build(root, KVER, busybox, NULL, out, NULL));
	CHECK_EQ_INT(module_len_in(out, name), signed_mod.len);

	check_write_file(path, plain, plain_len);
	unlink(config);
	unlink(out);
	free(signed_mod.p);
	free(plain);
}

int main(void)
{
	dir = check_tmpdir("initramfs");
	root = malloc(strlen(dir) + 64);
	sprintf(root, "%s/lib/modules/%s", dir, KVER);
	busybox = malloc(strlen(dir) + 16);
	sprintf(busybox, "%s/busybox", dir);
	fx_buf bb = fx_elf(10000, false);
	fx_write(busybox, &bb);
	free(bb.p);
	agent = malloc(strlen(dir) + 16);
	sprintf(agent, "%s/agent", dir);
	fx_buf ag = fx_elf(5000, false);
	fx_write(agent, &ag);
	free(ag.p);
	setenv("BANGER_AGENT", agent, 1);
	make_tree();
	test_from_modinfo();
	test_from_depmod();
	test_everything_builtin();
	test_errors();
	test_init_script();
	test_refresh();
	test_signatures();
	check_rm_rf(dir);
	free(dir);
	free(root);
	free(busybox);
	free(agent);
	return check_summary();
}

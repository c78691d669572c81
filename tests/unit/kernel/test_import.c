/* Kernel import (lib/kernel/import.c) from synthetic .deb files and
 * directories: the kernel directory it produces, and hostile packages
 * ("..", absolute names, escaping or written-through symlinks, stray hard
 * links) refused with nothing left behind. */
#include "kfixtures.h"

#include <stdatomic.h>

#define KVER "6.9.9-test"

static char *dir, *busybox;

typedef struct {
	const char *name;
	mode_t type; /* AE_IFREG, AE_IFDIR, AE_IFLNK; 0 with hardlink set */
	const void *data;
	size_t len;
	const char *target; /* symlink or hard link target */
} member;

static fx_buf make_tar(const member *m, size_t n, const char *filter)
{
	fx_buf b = {0};
	b.cap = 8 << 20;
	b.p = malloc(b.cap);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (strcmp(filter, "none") != 0)
		archive_write_add_filter_by_name(a, filter);
	archive_write_set_bytes_in_last_block(a, 1);
	if (archive_write_open_memory(a, b.p, b.cap, &b.len) != ARCHIVE_OK)
		abort();
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, m[i].name);
		archive_entry_set_mtime(e, 1700000000, 0);
		if (!m[i].type && m[i].target) {
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, 0644);
			archive_entry_set_hardlink(e, m[i].target);
		} else {
			archive_entry_set_filetype(e, m[i].type);
			archive_entry_set_perm(e, m[i].type == AE_IFDIR ? 0755 : m[i].type == AE_IFLNK ? 0777 : 0644);
			if (m[i].type == AE_IFLNK)
				archive_entry_set_symlink(e, m[i].target);
			if (m[i].type == AE_IFREG)
				archive_entry_set_size(e, (la_int64_t)m[i].len);
		}
		if (archive_write_header(a, e) != ARCHIVE_OK) {
			fprintf(stderr, "tar %s: %s\n", m[i].name, archive_error_string(a));
			abort();
		}
		if (m[i].type == AE_IFREG && m[i].len)
			archive_write_data(a, m[i].data, m[i].len);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	return b;
}

/* A .deb: ar of debian-binary, control.tar.xz and data.tar.<codec>. */
static char *make_deb(const char *name, const member *m, size_t n, const char *codec)
{
	static const member control[] = {{"./control", AE_IFREG, "Package: test\n", 14, NULL}};
	fx_buf ctl = make_tar(control, 1, "xz"), data = make_tar(m, n, codec);
	char data_name[32];
	snprintf(data_name, sizeof(data_name), "data.tar%s%s", strcmp(codec, "none") ? "." : "",
		 !strcmp(codec, "none") ? "" : !strcmp(codec, "zstd") ? "zst" : !strcmp(codec, "gzip") ? "gz" : codec);
	const struct {
		const char *name;
		const void *p;
		size_t len;
	} parts[] = {{"debian-binary", "2.0\n", 4}, {"control.tar.xz", ctl.p, ctl.len}, {data_name, data.p, data.len}};
	fx_buf deb = {0};
	deb.cap = data.len + ctl.len + 65536;
	deb.p = malloc(deb.cap);
	struct archive *a = archive_write_new();
	archive_write_set_format_ar_bsd(a);
	archive_write_set_bytes_in_last_block(a, 1);
	if (archive_write_open_memory(a, deb.p, deb.cap, &deb.len) != ARCHIVE_OK)
		abort();
	for (size_t i = 0; i < 3; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, parts[i].name);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)parts[i].len);
		if (archive_write_header(a, e) != ARCHIVE_OK)
			abort();
		archive_write_data(a, parts[i].p, parts[i].len);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	size_t pn = strlen(dir) + strlen(name) + 2;
	char *path = malloc(pn);
	snprintf(path, pn, "%s/%s", dir, name);
	fx_write(path, &deb);
	free(deb.p);
	free(ctl.p);
	free(data.p);
	return path;
}

static char *dest_path(const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 16;
	char *p = malloc(n);
	snprintf(p, n, "%s/out/%s", dir, name);
	return p;
}

static int events_seen;
static char event_log[4096];

static void on_event(bng_op *op, json_t *ev)
{
	(void)op;
	const char *stage = json_string_value(json_object_get(ev, "stage"));
	events_seen++;
	if (stage && strlen(event_log) + strlen(stage) + 2 < sizeof(event_log)) {
		strcat(event_log, stage);
		strcat(event_log, " ");
	}
	json_decref(ev);
}

/* ---- fixtures ---- */

static fx_buf kernel_elf(void)
{
	fx_buf elf = fx_elf(50000, false);
	fx_put(&elf, "Linux version 6.7.0-elf (fixture) #1 SMP", 40);
	return elf;
}

static fx_buf kernel_bzimage(const char *codec)
{
	fx_buf elf = kernel_elf(), z = fx_compress(codec, elf.p, elf.len);
	fx_buf img = fx_bzimage(&z, (uint32_t)elf.len, strcmp(codec, "gzip") != 0, 0x20f);
	free(elf.p);
	free(z.p);
	return img;
}

static void test_good_deb(void)
{
	fx_buf img = kernel_bzimage("zstd");
	fx_buf ring = fx_module("virtio_ring", "", NULL), virtio = fx_module("virtio", "virtio_ring", NULL);
	fx_buf blk = fx_module("virtio_blk", "virtio,virtio_ring", NULL);
	fx_buf blkz = fx_compress("zstd", blk.p, blk.len);
	static const char builtin[] = "kernel/fs/ext4/ext4.ko\n";
	const member m[] = {
		{"./", AE_IFDIR, NULL, 0, NULL},
		{"./boot/", AE_IFDIR, NULL, 0, NULL},
		{"./boot/vmlinuz-" KVER, AE_IFREG, img.p, img.len, NULL},
		{"./boot/config-" KVER, AE_IFREG, "CONFIG_X=y\n", 11, NULL},
		{"./boot/System.map-" KVER, AE_IFREG, "ffff T x\n", 9, NULL},
		{"./lib/modules/" KVER "/", AE_IFDIR, NULL, 0, NULL},
		{"./lib/modules/" KVER "/kernel/drivers/virtio/virtio_ring.ko", AE_IFREG, ring.p, ring.len, NULL},
		{"./lib/modules/" KVER "/kernel/drivers/virtio/virtio.ko", AE_IFREG, virtio.p, virtio.len, NULL},
		{"./lib/modules/" KVER "/kernel/drivers/block/virtio_blk.ko.zst", AE_IFREG, blkz.p, blkz.len, NULL},
		{"./lib/modules/" KVER "/modules.builtin", AE_IFREG, builtin, sizeof(builtin) - 1, NULL},
		{"./lib/modules/" KVER "/modules.order", AE_IFREG, "kernel/x.ko\n", 12, NULL},
		{"./lib/modules/" KVER "/notes.txt", AE_IFREG, "notes\n", 6, NULL},
		{"./lib/modules/" KVER "/notes-link.txt", 0, NULL, 0, "./lib/modules/" KVER "/notes.txt"},
		{"./lib/modules/" KVER "/kernel/extra", AE_IFLNK, NULL, 0, "drivers/virtio"},
		{"./lib/modules/" KVER "/build", AE_IFLNK, NULL, 0, "/usr/src/linux-headers-" KVER},
		{"./usr/share/doc/linux-image-" KVER "/changelog.gz", AE_IFREG, "x", 1, NULL},
	};
	char *deb = make_deb("linux-image-" KVER "_1_amd64.deb", m, sizeof(m) / sizeof(m[0]), "xz");
	char *dest = dest_path("good");
	atomic_int cancel = 0;
	bng_op op = {.emit = on_event, .cancel = &cancel};
	json_t *man = NULL;
	events_seen = 0;
	event_log[0] = '\0';
	CHECK_OK(bng_kernel_import_deb(deb, dest, &op, &man));
	CHECK_EQ_STR(event_log, "extract vmlinux depmod initramfs checksum publish ");
	CHECK_EQ_STR(json_string_value(json_object_get(man, "kernel_version")), KVER);
	CHECK_EQ_STR(json_string_value(json_object_get(man, "source")), "deb:linux-image-" KVER "_1_amd64.deb");
	CHECK(json_string_length(json_object_get(man, "created_at")) == 20);
	json_t *mods = json_object_get(man, "modules");
	CHECK(json_array_size(mods) == 3);
	CHECK_EQ_STR(json_string_value(json_array_get(mods, 0)), "virtio_ring");
	CHECK_EQ_STR(json_string_value(json_array_get(mods, 1)), "virtio");
	CHECK_EQ_STR(json_string_value(json_array_get(mods, 2)), "virtio_blk");

	char p[2048], hex[65];
	snprintf(p, sizeof(p), "%s/vmlinuz", dest);
	CHECK(fx_file_equals(p, img.p, img.len));
	CHECK_OK(bng_kernel_sha256_file(p, hex));
	CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(man, "sha256"), "vmlinuz")), hex);
	snprintf(p, sizeof(p), "%s/vmlinux", dest);
	fx_buf elf = kernel_elf();
	CHECK(fx_file_equals(p, elf.p, elf.len));
	free(elf.p);
	CHECK_OK(bng_kernel_sha256_file(p, hex));
	CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(man, "sha256"), "vmlinux")), hex);
	snprintf(p, sizeof(p), "%s/initrd.img", dest);
	CHECK_OK(bng_kernel_sha256_file(p, hex));
	CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(man, "sha256"), "initrd")), hex);
	snprintf(p, sizeof(p), "%s/config", dest);
	CHECK(fx_file_equals(p, "CONFIG_X=y\n", 11));
	snprintf(p, sizeof(p), "%s/modules/" KVER "/kernel/drivers/block/virtio_blk.ko", dest);
	CHECK(fx_file_equals(p, blk.p, blk.len));
	snprintf(p, sizeof(p), "%s/modules/" KVER "/kernel/drivers/block/virtio_blk.ko.zst", dest);
	CHECK(!fx_exists(p));
	snprintf(p, sizeof(p), "%s/modules/" KVER "/build", dest);
	CHECK(!fx_exists(p));
	snprintf(p, sizeof(p), "%s/modules/" KVER "/kernel/extra", dest);
	char target[256] = "";
	CHECK(readlink(p, target, sizeof(target) - 1) > 0 && !strcmp(target, "drivers/virtio"));
	struct stat a, b;
	snprintf(p, sizeof(p), "%s/modules/" KVER "/notes.txt", dest);
	CHECK(stat(p, &a) == 0);
	snprintf(p, sizeof(p), "%s/modules/" KVER "/notes-link.txt", dest);
	CHECK(stat(p, &b) == 0 && a.st_ino == b.st_ino);
	snprintf(p, sizeof(p), "%s/modules/" KVER "/modules.dep", dest);
	char *dep = NULL;
	CHECK_OK(bng_read_file(p, &dep, NULL));
	CHECK_STR_CONTAINS(dep, "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko "
				"kernel/drivers/virtio/virtio_ring.ko\n");
	free(dep);
	snprintf(p, sizeof(p), "%s/usr", dest);
	CHECK(!fx_exists(p));
	snprintf(p, sizeof(p), "%s/manifest.json", dest);
	json_t *disk = json_load_file(p, 0, NULL);
	CHECK(disk && json_equal(disk, man));
	json_decref(disk);
	json_decref(man);

	/* The parent holds the kernel and no staging leftovers. */
	snprintf(p, sizeof(p), "%s/out", dir);
	CHECK_EQ_INT(fx_count_matching(p, ".tmp-"), 0);

	/* Importing onto an existing kernel is refused. */
	CHECK_EQ_INT(bng_kernel_import_deb(deb, dest, NULL, NULL), BANGER_EEXIST);
	CHECK_STR_CONTAINS(banger_error_last(), "already exists");

	free(deb);
	free(dest);
	free(img.p);
	free(ring.p);
	free(virtio.p);
	free(blk.p);
	free(blkz.p);
}

/* A package that must be refused, leaving nothing in out/. */
static void expect_refused(int line, const char *tag, const member *m, size_t n, int code, const char *what)
{
	char name[128];
	snprintf(name, sizeof(name), "hostile-%s.deb", tag);
	char *deb = make_deb(name, m, n, "gzip");
	char *dest = dest_path(tag);
	int rc = bng_kernel_import_deb(deb, dest, NULL, NULL);
	if (getenv("KTEST_VERBOSE"))
		fprintf(stderr, "%s: %s\n", tag, banger_error_last());
	check_total++;
	if (rc != code || !strstr(banger_error_last(), what)) {
		check_failed++;
		fprintf(stderr, "%s:%d: check failed: %s: got %d \"%s\", want %d mentioning \"%s\"\n", __FILE__, line, tag,
			rc, banger_error_last(), code, what);
	}
	CHECK(!fx_exists(dest));
	char out[1024], outside[1024];
	snprintf(out, sizeof(out), "%s/out", dir);
	CHECK_EQ_INT(fx_count_matching(out, tag), 0);
	snprintf(outside, sizeof(outside), "%s/outside", dir);
	CHECK_EQ_INT(fx_count_matching(outside, "evil"), 0);
	unlink(deb);
	free(deb);
	free(dest);
}

static void test_hostile_debs(void)
{
	fx_buf img = kernel_bzimage("gzip");
	fx_buf ko = fx_module("virtio_ring", "", NULL);
	char outside[1024];
	snprintf(outside, sizeof(outside), "%s/outside", dir);
	CHECK_OK(bng_mkdir_p(outside, 0755));
#define KERNEL {"./boot/vmlinuz-" KVER, AE_IFREG, img.p, img.len, NULL}
#define MOD(path) "./lib/modules/" KVER "/" path

	const member dotdot[] = {KERNEL, {MOD("../../../../outside/evil.ko"), AE_IFREG, ko.p, ko.len, NULL}};
	expect_refused(__LINE__, "dotdot", dotdot, 2, BANGER_EINVAL, "'..'");

	const member dotdot_skipped[] = {KERNEL, {"./usr/../../outside/evil", AE_IFREG, "x", 1, NULL}};
	expect_refused(__LINE__, "dotdot2", dotdot_skipped, 2, BANGER_EINVAL, "'..'");

	const member absolute[] = {KERNEL, {"/lib/modules/" KVER "/evil.ko", AE_IFREG, ko.p, ko.len, NULL}};
	expect_refused(__LINE__, "absolute", absolute, 2, BANGER_EINVAL, "absolute");

	const member esc_link[] = {KERNEL, {MOD("kernel/evil"), AE_IFLNK, NULL, 0, "../../../../../outside"}};
	expect_refused(__LINE__, "esclink", esc_link, 2, BANGER_EINVAL, "escapes");

	const member abs_link[] = {KERNEL, {MOD("kernel/evil"), AE_IFLNK, NULL, 0, "/etc"}};
	expect_refused(__LINE__, "abslink", abs_link, 2, BANGER_EINVAL, "outside the kernel tree");

	/* A link that stays inside, then a member written through it. */
	const member through[] = {KERNEL,
				  {MOD("kernel/sub/"), AE_IFDIR, NULL, 0, NULL},
				  {MOD("kernel/d"), AE_IFLNK, NULL, 0, "sub"},
				  {MOD("kernel/d/evil.ko"), AE_IFREG, ko.p, ko.len, NULL}};
	expect_refused(__LINE__, "through", through, 4, BANGER_EINVAL, "symlink");

	/* Lexically inside, physically out: a -> .. makes a/../.. climb twice. */
	const member chain[] = {KERNEL,
				{MOD("a"), AE_IFLNK, NULL, 0, ".."},
				{MOD("b"), AE_IFLNK, NULL, 0, "a/../../../outside"}};
	expect_refused(__LINE__, "chain", chain, 3, BANGER_EINVAL, "escapes");

	const member hard[] = {KERNEL, {MOD("kernel/evil.ko"), 0, NULL, 0, "./etc/passwd"}};
	expect_refused(__LINE__, "hardlink", hard, 2, BANGER_EINVAL, "hard link");

	const member hard_missing[] = {KERNEL, {MOD("kernel/evil.ko"), 0, NULL, 0, MOD("kernel/none.ko")}};
	expect_refused(__LINE__, "hardmissing", hard_missing, 2, BANGER_EINVAL, "hard link");

	const member meta[] = {{"./usr/share/doc/linux-image-cloud-amd64/copyright", AE_IFREG, "x", 1, NULL}};
	expect_refused(__LINE__, "metapackage", meta, 1, BANGER_EINVAL, "metapackage");

	const member two[] = {KERNEL, {"./boot/vmlinuz-7.0.0-other", AE_IFREG, img.p, img.len, NULL}};
	expect_refused(__LINE__, "twokernels", two, 2, BANGER_EINVAL, "two kernels");

	const member link_kernel[] = {{"./boot/vmlinuz-" KVER, AE_IFLNK, NULL, 0, "vmlinuz-other"}};
	expect_refused(__LINE__, "linkkernel", link_kernel, 1, BANGER_EUNSUPPORTED, "symlink");

	/* A version that would be a path. */
	const member dotver[] = {{"./boot/vmlinuz-..", AE_IFREG, img.p, img.len, NULL}};
	expect_refused(__LINE__, "dotver", dotver, 1, BANGER_EINVAL, "not a plain version");

	/* A kernel that is no bzImage fails at vmlinux, after extraction. */
	const member junk[] = {{"./boot/vmlinuz-" KVER, AE_IFREG, "not a kernel at all, no header here", 35, NULL}};
	expect_refused(__LINE__, "junkkernel", junk, 1, BANGER_EINVAL, "not an x86 bzImage");

	/* Cancelled before it starts: nothing is left either. */
	const member ok[] = {KERNEL, {MOD("kernel/virtio_ring.ko"), AE_IFREG, ko.p, ko.len, NULL}};
	char *deb = make_deb("cancel.deb", ok, 2, "zstd");
	char *dest = dest_path("cancelled");
	atomic_int cancel = 1;
	bng_op op = {.cancel = &cancel};
	CHECK_EQ_INT(bng_kernel_import_deb(deb, dest, &op, NULL), BANGER_ECANCELED);
	CHECK(!fx_exists(dest));
	char out[1024];
	snprintf(out, sizeof(out), "%s/out", dir);
	CHECK_EQ_INT(fx_count_matching(out, "cancelled"), 0);
	/* ...and the same package imports when not cancelled (zstd data.tar). */
	CHECK_OK(bng_kernel_import_deb(deb, dest, NULL, NULL));
	free(deb);
	free(dest);

	/* Not a .deb at all. */
	char notdeb[1024];
	snprintf(notdeb, sizeof(notdeb), "%s/not.deb", dir);
	check_write_file(notdeb, "just some text, not an ar archive\n", 34);
	dest = dest_path("notdeb");
	CHECK_EQ_INT(bng_kernel_import_deb(notdeb, dest, NULL, NULL), BANGER_EINVAL);
	CHECK_STR_CONTAINS(banger_error_last(), "not.deb");
	CHECK(!fx_exists(dest));
	CHECK_EQ_INT(fx_count_matching(out, "notdeb"), 0);
	snprintf(notdeb, sizeof(notdeb), "%s/missing.deb", dir);
	CHECK_EQ_INT(bng_kernel_import_deb(notdeb, dest, NULL, NULL), BANGER_ENOTFOUND);
	CHECK_EQ_INT(fx_count_matching(out, "notdeb"), 0);
	free(dest);
	CHECK_EQ_INT(bng_kernel_import_deb(NULL, "x", NULL, NULL), BANGER_EINVAL);
	free(img.p);
	free(ko.p);
#undef KERNEL
#undef MOD
}

static void put(const char *path, const fx_buf *b)
{
	char *d = strdup(path);
	*strrchr(d, '/') = '\0';
	CHECK_OK(bng_mkdir_p(d, 0755));
	free(d);
	fx_write(path, b);
}

static void test_import_dir(void)
{
	char src[1024], p[2048];
	snprintf(src, sizeof(src), "%s/srcdir", dir);
	fx_buf img = kernel_bzimage("xz");
	snprintf(p, sizeof(p), "%s/bzImage", src);
	put(p, &img);
	fx_buf ring = fx_module("virtio_ring", "", NULL), ringz = fx_compress("xz", ring.p, ring.len);
	snprintf(p, sizeof(p), "%s/lib/modules/%s/kernel/virtio_ring.ko.xz", src, KVER);
	put(p, &ringz);
	fx_buf net = fx_module("virtio_net", "virtio_ring", NULL);
	snprintf(p, sizeof(p), "%s/lib/modules/%s/kernel/net/virtio_net.ko", src, KVER);
	put(p, &net);
	snprintf(p, sizeof(p), "%s/lib/modules/%s/source", src, KVER);
	CHECK(symlink("/usr/src/somewhere", p) == 0);

	char *dest = dest_path("fromdir");
	json_t *man = NULL;
	CHECK_OK(bng_kernel_import_dir(src, dest, NULL, &man));
	CHECK_EQ_STR(json_string_value(json_object_get(man, "kernel_version")), KVER);
	char want_source[1100];
	snprintf(want_source, sizeof(want_source), "dir:%s", src);
	CHECK_EQ_STR(json_string_value(json_object_get(man, "source")), want_source);
	CHECK_EQ_INT(json_array_size(json_object_get(man, "modules")), 2);
	snprintf(p, sizeof(p), "%s/modules/%s/kernel/virtio_ring.ko", dest, KVER);
	CHECK(fx_file_equals(p, ring.p, ring.len));
	snprintf(p, sizeof(p), "%s/vmlinuz", dest);
	CHECK(fx_file_equals(p, img.p, img.len));
	snprintf(p, sizeof(p), "%s/vmlinux", dest);
	CHECK(fx_exists(p));
	json_decref(man);
	free(dest);

	/* A re-import of banger's own kernel directory works too. */
	char *again = dest_path("again");
	char *first = dest_path("fromdir");
	CHECK_OK(bng_kernel_import_dir(first, again, NULL, &man));
	CHECK_EQ_STR(json_string_value(json_object_get(man, "kernel_version")), KVER);
	CHECK_EQ_INT(json_array_size(json_object_get(man, "modules")), 2);
	json_decref(man);
	free(again);
	free(first);

	/* An escaping symlink in the modules tree is refused. */
	snprintf(p, sizeof(p), "%s/lib/modules/%s/kernel/evil", src, KVER);
	CHECK(symlink("../../../../../../etc", p) == 0);
	dest = dest_path("evil-dir");
	CHECK_EQ_INT(bng_kernel_import_dir(src, dest, NULL, NULL), BANGER_EINVAL);
	CHECK_STR_CONTAINS(banger_error_last(), "escapes");
	CHECK(!fx_exists(dest));
	snprintf(p, sizeof(p), "%s/out", dir);
	CHECK_EQ_INT(fx_count_matching(p, "evil-dir"), 0);
	free(dest);

	/* Just an ELF vmlinux, everything built in. */
	char elfdir[1024];
	snprintf(elfdir, sizeof(elfdir), "%s/elfonly", dir);
	fx_buf elf = kernel_elf();
	snprintf(p, sizeof(p), "%s/vmlinux", elfdir);
	put(p, &elf);
	dest = dest_path("elfonly");
	CHECK_OK(bng_kernel_import_dir(elfdir, dest, NULL, &man));
	CHECK_EQ_STR(json_string_value(json_object_get(man, "kernel_version")), "6.7.0-elf");
	CHECK_EQ_INT(json_array_size(json_object_get(man, "modules")), 0);
	json_t *sums = json_object_get(man, "sha256");
	CHECK(json_object_get(sums, "vmlinux") && json_object_get(sums, "initrd") && !json_object_get(sums, "vmlinuz"));
	snprintf(p, sizeof(p), "%s/vmlinux", dest);
	CHECK(fx_file_equals(p, elf.p, elf.len));
	json_decref(man);
	free(dest);

	/* A bzImage whose version string is a path, and no other version. */
	char weird[1024];
	snprintf(weird, sizeof(weird), "%s/weirdver", dir);
	fx_buf wimg = kernel_bzimage("gzip");
	strcpy((char *)wimg.p + 0x300, "../../../outside/x #1");
	snprintf(p, sizeof(p), "%s/bzImage", weird);
	put(p, &wimg);
	snprintf(p, sizeof(p), "%s/modules", weird); /* empty: no modules, not ambiguous */
	CHECK_OK(bng_mkdir_p(p, 0755));
	dest = dest_path("weirdver");
	CHECK_EQ_INT(bng_kernel_import_dir(weird, dest, NULL, NULL), BANGER_EINVAL);
	CHECK_STR_CONTAINS(banger_error_last(), "not a plain version");
	CHECK(!fx_exists(dest));
	strcpy((char *)wimg.p + 0x300, "5.10.0-from-header #1");
	snprintf(p, sizeof(p), "%s/bzImage", weird);
	put(p, &wimg);
	CHECK_OK(bng_kernel_import_dir(weird, dest, NULL, &man));
	CHECK_EQ_STR(json_string_value(json_object_get(man, "kernel_version")), "5.10.0-from-header");
	json_decref(man);
	free(dest);
	free(wimg.p);

	/* Nothing to import; ambiguous modules. */
	char empty[1024];
	snprintf(empty, sizeof(empty), "%s/emptydir", dir);
	CHECK_OK(bng_mkdir_p(empty, 0755));
	dest = dest_path("empty");
	CHECK_EQ_INT(bng_kernel_import_dir(empty, dest, NULL, NULL), BANGER_ENOTFOUND);
	CHECK_STR_CONTAINS(banger_error_last(), "holds no kernel");
	snprintf(p, sizeof(p), "%s/vmlinuz", empty);
	put(p, &img);
	snprintf(p, sizeof(p), "%s/modules/1.0/kernel/a.ko", empty);
	put(p, &net);
	snprintf(p, sizeof(p), "%s/modules/2.0/kernel/a.ko", empty);
	put(p, &net);
	CHECK_EQ_INT(bng_kernel_import_dir(empty, dest, NULL, NULL), BANGER_EINVAL);
	CHECK_STR_CONTAINS(banger_error_last(), "cannot tell which modules");
	CHECK(!fx_exists(dest));
	snprintf(p, sizeof(p), "%s/nonexistent", dir);
	CHECK_EQ_INT(bng_kernel_import_dir(p, dest, NULL, NULL), BANGER_ENOTFOUND);
	snprintf(p, sizeof(p), "%s/out", dir);
	CHECK_EQ_INT(fx_count_matching(p, ".tmp-"), 0);
	free(dest);

	free(img.p);
	free(ring.p);
	free(ringz.p);
	free(net.p);
	free(elf.p);
}

int main(void)
{
	dir = check_tmpdir("kimport");
	busybox = malloc(strlen(dir) + 16);
	sprintf(busybox, "%s/busybox", dir);
	fx_buf bb = fx_elf(10000, false);
	fx_write(busybox, &bb);
	free(bb.p);
	setenv("BANGER_BUSYBOX", busybox, 1); /* hermetic: not the host's */
	test_good_deb();
	test_hostile_debs();
	test_import_dir();
	check_rm_rf(dir);
	free(dir);
	free(busybox);
	return check_summary();
}

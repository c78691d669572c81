/* Kernel import: a Debian linux-image .deb (ar + data.tar.*, streamed with
 * libarchive, no dpkg) or a directory, staged in "<dest>.tmp-XXXXXX" and
 * renamed to dest once vmlinux, the modules index, the initramfs and the
 * manifest are complete.
 *
 * Staging never follows a symlink: every parent directory is opened with
 * O_NOFOLLOW from the staging root, member names with "..", absolute names
 * and link targets that could leave the tree fail the import. */
#include "kmod.h"

#include "../core/lazy_archive.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_PATH_LEN 1024
#define MAX_COMPRESSED_MODULE (64u << 20)
#define MAX_MODULE (256u << 20)
#define PROGRESS_STEP (4u << 20)

typedef struct {
	int rootfd; /* the staging directory */
	char *root;
	const char *src; /* what is imported, for messages */
	char *kver;
	char *image_name; /* the kernel image as the source names it */
	bool have_vmlinuz, have_vmlinux, unpacked_modules;
	bng_op *op;
} stage;

static void event(bng_op *op, const char *name) { bng_op_event(op, json_pack("{s:s}", "stage", name)); }

static int cancelled(stage *s)
{
	return bng_op_cancelled(s->op) ? bng_err(BANGER_ECANCELED, "kernel import of %s cancelled", s->src) : 0;
}

/* ---- names ---- */

/* Normalises a member name into out: no leading "./" or "/", no "." or
 * empty components, no trailing "/"; "" is the root. Refuses absolute
 * names and "..": a kernel package never needs them. */
static int clean_name(const char *src, const char *name, char out[MAX_PATH_LEN])
{
	const char *p = name;
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	if (*p == '/')
		return bng_err(BANGER_EINVAL, "%s: member '%s' has an absolute path: refusing a hostile or broken package",
			       src, name);
	size_t o = 0;
	while (*p) {
		while (*p == '/')
			p++;
		const char *c = p;
		while (*p && *p != '/')
			p++;
		size_t n = (size_t)(p - c);
		if (!n || (n == 1 && c[0] == '.'))
			continue;
		if (n == 2 && c[0] == '.' && c[1] == '.')
			return bng_err(BANGER_EINVAL, "%s: member '%s' contains '..': refusing a hostile or broken package",
				       src, name);
		if (o + n + 2 > MAX_PATH_LEN)
			return bng_err(BANGER_EINVAL, "%s: member name '%.64s...' is too long", src, name);
		if (o)
			out[o++] = '/';
		memcpy(out + o, c, n);
		o += n;
	}
	out[o] = '\0';
	return 0;
}

/* A kernel version becomes a directory name: allow what uname -r uses. */
static int check_kver(stage *s, const char *kver)
{
	size_t n = strlen(kver);
	bool ok = n > 0 && n < 128 && kver[0] != '.' && kver[0] != '-';
	for (size_t i = 0; ok && i < n; i++)
		ok = (kver[i] >= 'a' && kver[i] <= 'z') || (kver[i] >= 'A' && kver[i] <= 'Z') ||
		     (kver[i] >= '0' && kver[i] <= '9') || strchr("._+~-", kver[i]);
	return ok ? 0
		  : bng_err(BANGER_EINVAL, "%s: kernel version '%.64s' is not a plain version string (like 6.1.0-9-amd64)",
			    s->src, kver);
}

/* Depth of the directory holding rel ("a/b/c" -> 2). */
static int parent_depth(const char *rel)
{
	int d = 0;
	for (const char *p = rel; *p; p++)
		d += *p == '/';
	return d;
}

/* A symlink target may only climb ("..") at its start, and not above the
 * staging root; after that it only descends. With parents that are never
 * symlinks (staging refuses them), such a link cannot resolve outside. */
static int check_link_target(stage *s, const char *rel, const char *target)
{
	if (!*target || *target == '/')
		return bng_err(BANGER_EINVAL,
			       "%s: symlink %s points to '%s', outside the kernel tree: refusing a hostile or broken "
			       "package",
			       s->src, rel, target);
	int up = 0;
	bool descended = false;
	for (const char *p = target; *p;) {
		const char *c = p;
		while (*p && *p != '/')
			p++;
		size_t n = (size_t)(p - c);
		while (*p == '/')
			p++;
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			if (descended || ++up > parent_depth(rel))
				return bng_err(BANGER_EINVAL,
					       "%s: symlink %s points to '%s', which escapes the kernel tree: refusing a "
					       "hostile or broken package",
					       s->src, rel, target);
		} else if (n && !(n == 1 && c[0] == '.')) {
			descended = true;
		}
	}
	return 0;
}

/* ---- staging: every path relative to rootfd, no symlink followed ---- */

/* Opens (creating as 0755 directories) the parent of rel; *leaf points
 * into rel. Returns a directory fd or a negative banger code. */
static int open_parent(stage *s, const char *rel, const char **leaf)
{
	int fd = dup(s->rootfd);
	if (fd < 0)
		return bng_err_errno(BANGER_EIO, errno, "cannot open %s", s->root);
	const char *p = rel;
	for (;;) {
		const char *slash = strchr(p, '/');
		if (!slash)
			break;
		char comp[256];
		size_t n = (size_t)(slash - p);
		if (n >= sizeof(comp)) {
			close(fd);
			return bng_err(BANGER_EINVAL, "%s: a directory name in '%s' is too long", s->src, rel);
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		if (mkdirat(fd, comp, 0755) != 0 && errno != EEXIST) {
			int e = errno;
			close(fd);
			return bng_err_errno(bng_code_from_errno(e), e, "cannot create %s/%.*s", s->root,
					     (int)(slash - rel), rel);
		}
		int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(fd);
		if (next < 0)
			return e == ELOOP || e == ENOTDIR
				       ? bng_err(BANGER_EINVAL,
						 "%s: '%.*s' is a symlink or file, and member %s would be written through "
						 "it: refusing a hostile or broken package",
						 s->src, (int)(slash - rel), rel, rel)
				       : bng_err_errno(bng_code_from_errno(e), e, "cannot open %s/%.*s", s->root,
						       (int)(slash - rel), rel);
		fd = next;
		p = slash + 1;
	}
	*leaf = p;
	return fd;
}

/* Removes a non-directory at leaf so that a later member replaces it, as
 * tar extraction does. */
static void clear_leaf(int dirfd, const char *leaf)
{
	struct stat st;
	if (fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
		unlinkat(dirfd, leaf, 0);
}

static int stage_dir(stage *s, const char *rel)
{
	if (!*rel)
		return 0;
	const char *leaf;
	int dfd = open_parent(s, rel, &leaf);
	if (dfd < 0)
		return dfd;
	int rc = 0;
	struct stat st;
	if (mkdirat(dfd, leaf, 0755) != 0 &&
	    (errno != EEXIST || fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)))
		rc = bng_err_errno(bng_code_from_errno(errno), errno, "cannot create directory %s/%s", s->root, rel);
	close(dfd);
	return rc;
}

typedef la_ssize_t (*read_fn)(void *ud, void *buf, size_t n);

static int stage_file(stage *s, const char *rel, mode_t mode, read_fn rd, void *ud, const char *what)
{
	const char *leaf;
	int dfd = open_parent(s, rel, &leaf);
	if (dfd < 0)
		return dfd;
	clear_leaf(dfd, leaf);
	mode_t perm = (mode & 0111) ? 0755 : 0644; /* no setuid or odd modes from a package */
	int fd = openat(dfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, perm);
	int e = errno;
	close(dfd);
	if (fd < 0)
		return bng_err_errno(bng_code_from_errno(e), e, "cannot create %s/%s", s->root, rel);
	char *buf = bng_xmalloc(256 * 1024); /* imports run on worker threads: no static buffer */
	int rc = 0;
	for (;;) {
		la_ssize_t n = rd(ud, buf, 256 * 1024);
		if (n < 0) {
			rc = bng_err(BANGER_EIO, "cannot read %s from %s: %s", what, s->src, banger_error_last());
			break;
		}
		if (n == 0)
			break;
		for (la_ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = bng_err_errno(bng_code_from_errno(errno), errno, "cannot write %s/%s", s->root, rel);
				break;
			}
			off += w;
		}
		if (rc)
			break;
	}
	free(buf);
	if (close(fd) != 0 && !rc)
		rc = bng_err_errno(BANGER_EIO, errno, "cannot write %s/%s", s->root, rel);
	return rc;
}

static int stage_symlink(stage *s, const char *rel, const char *target)
{
	int rc = check_link_target(s, rel, target);
	if (rc)
		return rc;
	const char *leaf;
	int dfd = open_parent(s, rel, &leaf);
	if (dfd < 0)
		return dfd;
	clear_leaf(dfd, leaf);
	if (symlinkat(target, dfd, leaf) != 0)
		rc = bng_err_errno(bng_code_from_errno(errno), errno, "cannot create symlink %s/%s", s->root, rel);
	close(dfd);
	return rc;
}

/* target_rel is already mapped into the staging tree. */
static int stage_hardlink(stage *s, const char *rel, const char *target_rel)
{
	const char *tleaf, *leaf;
	int tfd = open_parent(s, target_rel, &tleaf);
	if (tfd < 0)
		return tfd;
	int dfd = open_parent(s, rel, &leaf);
	if (dfd < 0) {
		close(tfd);
		return dfd;
	}
	int rc = 0;
	struct stat st;
	if (fstatat(tfd, tleaf, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
		rc = bng_err(BANGER_EINVAL, "%s: hard link %s points to %s, which is not a file extracted before it",
			     s->src, rel, target_rel);
	if (!rc) {
		clear_leaf(dfd, leaf);
		if (linkat(tfd, tleaf, dfd, leaf, 0) != 0)
			rc = bng_err_errno(bng_code_from_errno(errno), errno, "cannot link %s/%s", s->root, rel);
	}
	close(tfd);
	close(dfd);
	return rc;
}

/* ---- readers for stage_file ---- */

typedef struct {
	const char *p;
	size_t left;
} memreader;

static la_ssize_t mem_read(void *ud, void *buf, size_t n)
{
	memreader *m = ud;
	if (n > m->left)
		n = m->left;
	memcpy(buf, m->p, n);
	m->p += n;
	m->left -= n;
	return (la_ssize_t)n;
}

static la_ssize_t archive_read(void *ud, void *buf, size_t n)
{
	la_ssize_t r = archive_read_data(ud, buf, n);
	if (r < 0)
		bng_err(BANGER_EIO, "%s", archive_error_string(ud));
	return r;
}

static la_ssize_t fd_read(void *ud, void *buf, size_t n)
{
	for (;;) {
		ssize_t r = read(*(int *)ud, buf, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			bng_err_errno(BANGER_EIO, errno, "read failed");
		return r;
	}
}

/* Stages a module, unpacking .ko.xz/.zst/.gz into a plain .ko: busybox
 * insmod (and kernels without module decompression) load only those. */
static int stage_module(stage *s, const char *rel, read_fn rd, void *ud, int64_t size)
{
	int sfx = bng_kernel_module_suffix(rel);
	if (sfx == 0)
		return stage_file(s, rel, 0644, rd, ud, rel);
	if (size < 0 || size > (int64_t)MAX_COMPRESSED_MODULE)
		return bng_err(BANGER_ETOOBIG, "%s: module %s is over 64 MiB compressed", s->src, rel);
	char *buf = bng_xmalloc((size_t)size);
	size_t got = 0;
	while (got < (size_t)size) {
		la_ssize_t n = rd(ud, buf + got, (size_t)size - got);
		if (n <= 0) {
			free(buf);
			return n < 0 ? bng_err(BANGER_EIO, "cannot read %s from %s: %s", rel, s->src, banger_error_last())
				     : bng_err(BANGER_EIO, "%s: module %s is truncated", s->src, rel);
		}
		got += (size_t)n;
	}
	void *plain;
	size_t plen;
	char *what = bng_asprintf("%s in %s", rel, s->src);
	int rc = bng_kernel_unpack(buf, got, MAX_MODULE, what, &plain, &plen);
	free(what);
	free(buf);
	if (rc)
		return rc;
	char *plain_rel = bng_strdup(rel);
	plain_rel[strlen(plain_rel) - (size_t)sfx] = '\0';
	memreader m = {plain, plen};
	rc = stage_file(s, plain_rel, 0644, mem_read, &m, plain_rel);
	free(plain_rel);
	free(plain);
	s->unpacked_modules = true;
	return rc;
}

/* ---- the .deb ---- */

/* Where a data.tar member goes in the kernel directory, or NULL to skip
 * it: boot/vmlinuz-<ver> -> vmlinuz, boot/config-<ver> -> config,
 * [usr/]lib/modules/<ver>/X -> modules/<ver>/X. *vmlinuz_ver is set for the
 * kernel image. */
static char *map_deb_member(const char *name, const char **vmlinuz_ver)
{
	*vmlinuz_ver = NULL;
	if (bng_str_has_prefix(name, "boot/vmlinuz-") && !strchr(name + 13, '/') && name[13]) {
		*vmlinuz_ver = name + 13;
		return bng_strdup(BNG_KERNEL_VMLINUZ);
	}
	if (bng_str_has_prefix(name, "boot/config-") && !strchr(name + 12, '/') && name[12])
		return bng_strdup("config");
	const char *m = bng_str_has_prefix(name, "lib/modules/")       ? name + 12
			: bng_str_has_prefix(name, "usr/lib/modules/") ? name + 16
								       : NULL;
	if (!m || !*m)
		return NULL;
	const char *slash = strchr(m, '/');
	if (slash) { /* build/ and source/ point at headers, not modules */
		const char *rest = slash + 1;
		size_t n = strcspn(rest, "/");
		if ((n == 5 && !strncmp(rest, "build", 5)) || (n == 6 && !strncmp(rest, "source", 6)))
			return NULL;
	}
	return bng_asprintf(BNG_KERNEL_MODULES "/%s", m);
}

typedef struct {
	struct archive *outer;
	char buf[64 * 1024];
} outer_reader;

static la_ssize_t outer_read(struct archive *a, void *ud, const void **out)
{
	outer_reader *r = ud;
	la_ssize_t n = archive_read_data(r->outer, r->buf, sizeof(r->buf));
	if (n < 0)
		archive_set_error(a, EIO, "%s", archive_error_string(r->outer));
	*out = r->buf;
	return n;
}

/* Registers only the decompressors that run in process (ARCHIVE_OK; WARN
 * means libarchive would run an external program). */
static void support_filters(struct archive *a)
{
	const int filters[] = {ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_XZ, ARCHIVE_FILTER_ZSTD, ARCHIVE_FILTER_BZIP2,
			       ARCHIVE_FILTER_LZMA};
	for (size_t i = 0; i < BNG_ARRAY_LEN(filters); i++) {
		struct archive *probe = archive_read_new();
		if (probe && archive_read_support_filter_by_code(probe, filters[i]) == ARCHIVE_OK)
			archive_read_support_filter_by_code(a, filters[i]);
		archive_read_free(probe);
	}
}

static int deb_member(stage *s, struct archive *in, struct archive_entry *e)
{
	char name[MAX_PATH_LEN];
	int rc = clean_name(s->src, archive_entry_pathname(e), name);
	if (rc)
		return rc;
	const char *hardlink = archive_entry_hardlink(e);
	char hl_name[MAX_PATH_LEN];
	if (hardlink && (rc = clean_name(s->src, hardlink, hl_name)))
		return rc;
	const char *ver;
	char *dst = map_deb_member(name, &ver);
	if (!dst)
		return 0;
	mode_t type = archive_entry_filetype(e);
	if (ver && (rc = check_kver(s, ver))) {
		free(dst);
		return rc;
	}
	if (hardlink) {
		const char *hv;
		char *tdst = map_deb_member(hl_name, &hv);
		rc = tdst ? stage_hardlink(s, dst, tdst)
			  : bng_err(BANGER_EINVAL, "%s: hard link %s points outside the kernel files (%s)", s->src, name,
				    hl_name);
		free(tdst);
	} else if (type == AE_IFDIR) {
		rc = ver ? bng_err(BANGER_EINVAL, "%s: %s is a directory, not a kernel image", s->src, name)
			 : stage_dir(s, dst);
	} else if (type == AE_IFLNK) {
		rc = ver ? bng_err(BANGER_EUNSUPPORTED, "%s: %s is a symlink; banger needs the kernel image itself",
				   s->src, name)
			 : stage_symlink(s, dst, archive_entry_symlink(e));
	} else if (type == AE_IFREG) {
		if (ver) {
			if (s->kver && strcmp(s->kver, ver) != 0)
				rc = bng_err(BANGER_EINVAL, "%s holds two kernels (%s and %s): import one package per kernel",
					     s->src, s->kver, ver);
			else if (!s->kver)
				s->kver = bng_strdup(ver);
			s->have_vmlinuz = true;
			free(s->image_name);
			s->image_name = bng_asprintf("%s in %s", name, s->src);
		}
		if (!rc)
			rc = bng_kernel_module_suffix(dst) >= 0
				     ? stage_module(s, dst, archive_read, in, archive_entry_size(e))
				     : stage_file(s, dst, archive_entry_mode(e), archive_read, in, name);
	} /* device nodes and fifos have no place in a kernel tree: skipped */
	free(dst);
	return rc;
}

static int read_deb(stage *s, const char *deb_path)
{
	struct stat st;
	if (stat(deb_path, &st) != 0)
		return bng_err_errno(bng_code_from_errno(errno), errno, "cannot open kernel package %s", deb_path);
	struct archive *outer = archive_read_new(), *in = NULL;
	if (!outer)
		return bng_err(BANGER_ENOMEM, "out of memory");
	archive_read_support_format_ar(outer);
	int rc = 0;
	bool seen_data = false;
	if (archive_read_open_filename(outer, deb_path, 64 * 1024) != ARCHIVE_OK) {
		rc = bng_err(BANGER_EINVAL, "cannot open %s as a Debian package: %s", deb_path,
			     archive_error_string(outer));
		goto out;
	}
	struct archive_entry *ae;
	int r;
	while ((r = archive_read_next_header(outer, &ae)) == ARCHIVE_OK) {
		const char *member = archive_entry_pathname(ae);
		if (!member || !bng_str_has_prefix(member, "data.tar"))
			continue;
		seen_data = true;
		in = archive_read_new();
		outer_reader *rd = bng_xcalloc(1, sizeof(*rd));
		rd->outer = outer;
		archive_read_support_format_tar(in);
		support_filters(in);
		if (archive_read_open(in, rd, NULL, outer_read, NULL) != ARCHIVE_OK) {
			rc = bng_err(BANGER_EINVAL, "%s: cannot read %s: %s", deb_path, member, archive_error_string(in));
			free(rd);
			goto out;
		}
		uint64_t last = 0;
		struct archive_entry *e;
		while (!rc && (r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
			if ((rc = cancelled(s)))
				break;
			uint64_t done = (uint64_t)archive_filter_bytes(outer, -1);
			if (done - last >= PROGRESS_STEP) {
				last = done;
				bng_op_event(s->op, json_pack("{s:s,s:I,s:I}", "stage", "extract", "done", (json_int_t)done,
							      "total", (json_int_t)st.st_size));
			}
			rc = deb_member(s, in, e);
		}
		if (!rc && r != ARCHIVE_EOF)
			rc = bng_err(BANGER_EINVAL, "%s: %s is corrupt or truncated: %s", deb_path, member,
				     archive_error_string(in));
		archive_read_free(in);
		in = NULL;
		free(rd);
		if (rc)
			goto out;
		bng_op_event(s->op, json_pack("{s:s,s:I,s:I}", "stage", "extract", "done", (json_int_t)st.st_size, "total",
					      (json_int_t)st.st_size));
	}
	if (r != ARCHIVE_EOF && r != ARCHIVE_OK)
		rc = bng_err(BANGER_EINVAL, "%s is not a valid Debian package (ar archive): %s", deb_path,
			     archive_error_string(outer));
	else if (!seen_data)
		rc = bng_err(BANGER_EINVAL, "%s has no data.tar member: it is not a Debian package", deb_path);
	else if (!s->have_vmlinuz)
		rc = bng_err(BANGER_EINVAL,
			     "%s holds no boot/vmlinuz-*: it is not a kernel image package (linux-image-cloud-amd64 "
			     "is a metapackage: import the linux-image-<version>-cloud-amd64 package it depends on)",
			     deb_path);
out:
	if (in)
		archive_read_free(in);
	archive_read_free(outer);
	return rc;
}

/* ---- a directory ---- */

static int copy_file(stage *s, const char *src, const char *rel, mode_t mode, off_t size, bool module)
{
	int fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bng_err_errno(bng_code_from_errno(errno), errno, "cannot open %s", src);
	int rc = module ? stage_module(s, rel, fd_read, &fd, size) : stage_file(s, rel, mode, fd_read, &fd, src);
	close(fd);
	return rc;
}

/* Copies the tree at src (a modules root) to staging path rel. */
static int copy_tree(stage *s, const char *src, const char *rel, int depth, unsigned *count)
{
	if (depth > 32)
		return bng_err(BANGER_EINVAL, "%s nests deeper than 32 directories", src);
	int rc = stage_dir(s, rel);
	if (rc)
		return rc;
	DIR *d = opendir(src);
	if (!d)
		return bng_err_errno(bng_code_from_errno(errno), errno, "cannot read directory %s", src);
	struct dirent *de;
	while (!rc && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (depth == 0 && (!strcmp(de->d_name, "build") || !strcmp(de->d_name, "source")))
			continue;
		if ((rc = cancelled(s)))
			break;
		char *from = bng_asprintf("%s/%s", src, de->d_name);
		char *to = bng_asprintf("%s/%s", rel, de->d_name);
		struct stat st;
		if (lstat(from, &st) != 0) {
			rc = bng_err_errno(bng_code_from_errno(errno), errno, "cannot stat %s", from);
		} else if (S_ISDIR(st.st_mode)) {
			rc = copy_tree(s, from, to, depth + 1, count);
		} else if (S_ISREG(st.st_mode)) {
			rc = copy_file(s, from, to, st.st_mode, st.st_size, bng_kernel_module_suffix(to) >= 0);
			if (!rc && ++*count % 256 == 0)
				bng_op_event(s->op, json_pack("{s:s,s:i}", "stage", "copy", "done", (int)*count));
		} else if (S_ISLNK(st.st_mode)) {
			char target[MAX_PATH_LEN];
			ssize_t n = readlink(from, target, sizeof(target) - 1);
			if (n < 0) {
				rc = bng_err_errno(BANGER_EIO, errno, "cannot read symlink %s", from);
			} else {
				target[n] = '\0';
				rc = stage_symlink(s, to, target);
			}
		}
		free(from);
		free(to);
	}
	closedir(d);
	return rc;
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The single subdirectory of dir, malloc'd, or NULL (none or several;
 * *several says which). */
static char *only_subdir(const char *dir, bool *several)
{
	*several = false;
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	char *found = NULL;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *p = bng_asprintf("%s/%s", dir, de->d_name);
		if (is_dir(p)) {
			if (found)
				*several = true;
			else
				found = bng_strdup(de->d_name);
		}
		free(p);
	}
	closedir(d);
	if (*several) {
		free(found);
		return NULL;
	}
	return found;
}

/* The only entry of dir named prefix*, malloc'd full path, or NULL. */
static char *only_match(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	char *found = NULL;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (bng_str_has_prefix(de->d_name, prefix) && de->d_name[strlen(prefix)]) {
			n++;
			free(found);
			found = bng_asprintf("%s/%s", dir, de->d_name);
		}
	closedir(d);
	if (n != 1) {
		free(found);
		return NULL;
	}
	return found;
}

/* The version string a kernel image carries: the bzImage header's
 * kernel_version field (protocol 2.00+) or, in an ELF vmlinux, the banner
 * "Linux version X ...". malloc'd or NULL. */
static char *version_from_image(const char *path)
{
	char *buf;
	size_t len;
	if (bng_read_file(path, &buf, &len) != 0) {
		bng_err_clear();
		return NULL;
	}
	const char *v = NULL, *end = buf + len;
	if (len > 0x210 && !memcmp(buf + 0x202, "HdrS", 4)) {
		size_t off = (size_t)((unsigned char)buf[0x20e] | (unsigned char)buf[0x20f] << 8) + 0x200;
		if (off < len && ((unsigned char)buf[0x20e] | (unsigned char)buf[0x20f]))
			v = buf + off;
	} else {
		const char *p = memmem(buf, len, "Linux version ", 14);
		if (p)
			v = p + 14;
	}
	char *out = NULL;
	if (v) {
		size_t n = 0;
		while (v + n < end && n < 128 && v[n] > ' ' && v[n] < 127)
			n++;
		if (n) {
			out = bng_xmalloc(n + 1);
			memcpy(out, v, n);
			out[n] = '\0';
		}
	}
	free(buf);
	return out;
}

static int read_dir_source(stage *s, const char *src)
{
	if (!is_dir(src))
		return bng_err(BANGER_ENOTFOUND, "kernel directory %s does not exist", src);
	static const char *const names[] = {"vmlinuz", "bzImage", "vmlinux"};
	char *image = NULL, *boot = bng_asprintf("%s/boot", src);
	for (size_t i = 0; !image && i < BNG_ARRAY_LEN(names); i++) {
		char *p = bng_asprintf("%s/%s", src, names[i]);
		if (is_file(p))
			image = p;
		else
			free(p);
	}
	if (!image)
		image = only_match(src, "vmlinuz-");
	if (!image)
		image = only_match(boot, "vmlinuz-");
	if (!image) {
		free(boot);
		return bng_err(BANGER_ENOTFOUND,
			       "%s holds no kernel: put the bzImage there as vmlinuz (or bzImage), or an ELF vmlinux",
			       src);
	}
	const char *base = strrchr(image, '/') + 1;
	if (bng_str_has_prefix(base, "vmlinuz-"))
		s->kver = bng_strdup(base + 8);

	/* Modules: modules/<ver>/, modules/ itself, or lib/modules/<ver>/. */
	char *mods = NULL, *mver = NULL;
	char *m1 = bng_asprintf("%s/modules", src), *m2 = bng_asprintf("%s/lib/modules", src);
	char *probe_dep = bng_asprintf("%s/modules.dep", m1), *probe_kernel = bng_asprintf("%s/kernel", m1);
	bool several1 = false, several2 = false;
	if (is_dir(m1) && (is_file(probe_dep) || is_dir(probe_kernel))) {
		mods = bng_strdup(m1);
	} else if ((mver = only_subdir(m1, &several1))) {
		mods = bng_asprintf("%s/%s", m1, mver);
	} else if (!several1 && (mver = only_subdir(m2, &several2))) {
		mods = bng_asprintf("%s/%s", m2, mver);
	} else if (several1 || several2) {
		free(image);
		free(boot);
		free(m1);
		free(m2);
		free(probe_dep);
		free(probe_kernel);
		return bng_err(BANGER_EINVAL, "%s: cannot tell which modules to use: keep one <version> directory under "
			       "modules/ or lib/modules/", src);
	}
	free(m1);
	free(m2);
	free(probe_dep);
	free(probe_kernel);
	if (mver && s->kver && strcmp(mver, s->kver) != 0) {
		free(s->kver);
		s->kver = NULL;
	}
	if (mver && !s->kver)
		s->kver = bng_strdup(mver);
	free(mver);
	if (!s->kver)
		s->kver = version_from_image(image);
	if (!s->kver)
		s->kver = bng_strdup("unknown");

	int rc = check_kver(s, s->kver);
	struct stat st;
	if (!rc && stat(image, &st) != 0) {
		rc = bng_err_errno(BANGER_EIO, errno, "cannot stat %s", image);
	} else if (!rc) {
		char magic[4] = {0};
		FILE *f = fopen(image, "re");
		if (f) {
			if (fread(magic, 1, 4, f) != 4)
				magic[0] = 0;
			fclose(f);
		}
		bool elf = !memcmp(magic, "\177ELF", 4);
		rc = copy_file(s, image, elf ? BNG_KERNEL_VMLINUX : BNG_KERNEL_VMLINUZ, 0644, st.st_size, false);
		s->have_vmlinux = elf;
		s->have_vmlinuz = !elf;
		s->image_name = bng_strdup(image);
	}
	char *config = bng_asprintf("%s/config", src), *bconfig = bng_asprintf("%s/config-%s", boot, s->kver);
	if (!rc && (is_file(config) || is_file(bconfig)))
		rc = copy_file(s, is_file(config) ? config : bconfig, "config", 0644, 0, false);
	free(config);
	free(bconfig);
	if (!rc && mods) {
		unsigned count = 0;
		char *rel = bng_asprintf(BNG_KERNEL_MODULES "/%s", s->kver);
		rc = copy_tree(s, mods, rel, 0, &count);
		free(rel);
	}
	free(mods);
	free(image);
	free(boot);
	return rc;
}

/* ---- finishing and publishing ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void remove_tree(const char *path) { nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS); }

static int finish(stage *s, const char *source, const char *dest, json_t **manifest)
{
	int rc;
	char *modroot = bng_asprintf("%s/" BNG_KERNEL_MODULES "/%s", s->root, s->kver);
	char *vmlinuz = bng_asprintf("%s/" BNG_KERNEL_VMLINUZ, s->root);
	char *vmlinux = bng_asprintf("%s/" BNG_KERNEL_VMLINUX, s->root);
	char *initrd = bng_asprintf("%s/" BNG_KERNEL_INITRD, s->root);
	char *dep = bng_asprintf("%s/modules.dep", modroot);
	json_t *loaded = NULL, *m = NULL;
	if ((rc = cancelled(s)))
		goto out;
	if (s->have_vmlinuz) {
		event(s->op, "vmlinux");
		if ((rc = bng_kernel_vmlinux(vmlinuz, s->image_name ? s->image_name : vmlinuz, vmlinux)))
			goto out;
	}
	if ((rc = cancelled(s)))
		goto out;
	if (is_dir(modroot) && (s->unpacked_modules || !is_file(dep))) {
		event(s->op, "depmod");
		if ((rc = bng_kernel_depmod(modroot)))
			goto out;
	}
	if ((rc = cancelled(s)))
		goto out;
	event(s->op, "initramfs");
	if ((rc = bng_initramfs_build(is_dir(modroot) ? modroot : NULL, s->kver, NULL, NULL, initrd, &loaded)))
		goto out;
	if ((rc = cancelled(s)))
		goto out;
	event(s->op, "checksum");
	json_t *sums = json_object();
	const struct {
		const char *key, *path;
		bool present;
	} files[] = {{"vmlinux", vmlinux, true}, {"vmlinuz", vmlinuz, s->have_vmlinuz}, {"initrd", initrd, true}};
	for (size_t i = 0; !rc && i < BNG_ARRAY_LEN(files); i++) {
		char hex[65];
		if (files[i].present && !(rc = bng_kernel_sha256_file(files[i].path, hex)))
			json_object_set_new(sums, files[i].key, json_string(hex));
	}
	char now[32];
	time_t t = time(NULL);
	struct tm tm;
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	m = json_pack("{s:s,s:s,s:s,s:s,s:o,s:O}", "kernel_version", s->kver, "source", source, "created_at", now,
		      "arch", "x86_64", "sha256", sums, "modules", loaded);
	if (rc)
		goto out;
	char *text = json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS);
	char *mpath = bng_asprintf("%s/" BNG_KERNEL_MANIFEST, s->root);
	size_t tlen = strlen(text);
	text = realloc(text, tlen + 2);
	if (!text)
		abort();
	memcpy(text + tlen, "\n", 2);
	rc = bng_write_file_atomic(mpath, text, tlen + 1, 0644);
	free(text);
	free(mpath);
	if (rc || (rc = cancelled(s)))
		goto out;
	event(s->op, "publish");
	if (syncfs(s->rootfd) != 0) {
		rc = bng_err_errno(BANGER_EIO, errno, "cannot flush %s to disk", s->root);
		goto out;
	}
	if (rename(s->root, dest) != 0) {
		rc = errno == EEXIST || errno == ENOTEMPTY
			     ? bng_err(BANGER_EEXIST, "kernel directory %s appeared during the import: remove it and retry",
				       dest)
			     : bng_err_errno(bng_code_from_errno(errno), errno, "cannot rename %s to %s", s->root, dest);
		goto out;
	}
	if (manifest)
		*manifest = json_incref(m);
out:
	json_decref(m);
	json_decref(loaded);
	free(modroot);
	free(vmlinuz);
	free(vmlinux);
	free(initrd);
	free(dep);
	return rc;
}

static int stage_open(stage *s, const char *src, const char *dest, bng_op *op)
{
	memset(s, 0, sizeof(*s));
	s->rootfd = -1;
	s->src = src;
	s->op = op;
	struct stat st;
	if (lstat(dest, &st) == 0)
		return bng_err(BANGER_EEXIST, "kernel directory %s already exists: remove it or import elsewhere", dest);
	char *parent = bng_strdup(dest);
	char *slash = strrchr(parent, '/');
	int rc = 0;
	if (slash && slash != parent) {
		*slash = '\0';
		rc = bng_mkdir_p(parent, 0755);
	}
	free(parent);
	if (rc)
		return rc;
	s->root = bng_asprintf("%s.tmp-XXXXXX", dest);
	if (!mkdtemp(s->root)) {
		rc = bng_err_errno(bng_code_from_errno(errno), errno, "cannot create a staging directory next to %s",
				   dest);
		free(s->root);
		s->root = NULL;
		return rc;
	}
	chmod(s->root, 0755);
	s->rootfd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->rootfd < 0) {
		rc = bng_err_errno(BANGER_EIO, errno, "cannot open %s", s->root);
		rmdir(s->root);
		free(s->root);
		s->root = NULL;
	}
	return rc;
}

/* Removes the staging tree unless it was published (rc == 0). */
static int stage_close(stage *s, int rc)
{
	if (s->rootfd >= 0)
		close(s->rootfd);
	if (rc && s->root)
		remove_tree(s->root);
	free(s->root);
	free(s->kver);
	free(s->image_name);
	return rc;
}

int bng_kernel_import_deb(const char *deb_path, const char *dest_dir, bng_op *op, json_t **manifest)
{
	if (!deb_path || !*deb_path || !dest_dir || !*dest_dir)
		return bng_err(BANGER_EINVAL, "a .deb path and a destination directory are required");
	stage s;
	int rc = stage_open(&s, deb_path, dest_dir, op);
	if (rc)
		return rc;
	if (!(rc = read_deb(&s, deb_path))) {
		const char *base = strrchr(deb_path, '/');
		char *source = bng_asprintf("deb:%s", base ? base + 1 : deb_path);
		rc = finish(&s, source, dest_dir, manifest);
		free(source);
	}
	return stage_close(&s, rc);
}

int bng_kernel_import_dir(const char *src_dir, const char *dest_dir, bng_op *op, json_t **manifest)
{
	if (!src_dir || !*src_dir || !dest_dir || !*dest_dir)
		return bng_err(BANGER_EINVAL, "a source directory and a destination directory are required");
	char *abs = realpath(src_dir, NULL);
	if (!abs)
		return bng_err_errno(bng_code_from_errno(errno), errno, "kernel directory %s", src_dir);
	stage s;
	int rc = stage_open(&s, abs, dest_dir, op);
	if (!rc) {
		if (!(rc = read_dir_source(&s, abs))) {
			char *source = bng_asprintf("dir:%s", abs);
			rc = finish(&s, source, dest_dir, manifest);
			free(source);
		}
		rc = stage_close(&s, rc);
	}
	free(abs);
	return rc;
}

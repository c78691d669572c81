/* Applying tar streams to an ext4 image: name hygiene, OCI whiteouts, every
 * entry type, xattrs. Layers apply oldest first; an entry replaces what a
 * lower layer had at its path, and whiteouts delete lower-layer paths. */
#include "ext4_internal.h"

#include "../core/lazy_archive.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define MAX_ENTRY_SIZE (1ull << 40) /* 1 TiB: anything bigger is hostile */

/* Normalises a tar member name into out ("a/b/c", no leading "./" or "/",
 * no trailing "/"). "" is the root itself. Rejects what could escape or
 * confuse: "..", "." in the middle, empty components, absolute paths,
 * over-long names. */
int bng_clean_member_name(const char *name, char *out, size_t len, const char *what)
{
	const char *p = name;
	while (p[0] == '.' && p[1] == '/')
		for (p += 2; *p == '/';)
			p++;
	if (!strcmp(p, "."))
		p = "";
	if (*p == '/')
		return bng_err(BANGER_EINVAL, "%s '%s': absolute paths are not allowed in an image tar", what, name);
	size_t n = strlen(p);
	while (n && p[n - 1] == '/')
		n--;
	if (n >= len)
		return bng_err(BANGER_EINVAL, "%s '%.64s...': name too long", what, name);
	memcpy(out, p, n);
	out[n] = '\0';
	for (char *c = out; *out && c;) {
		char *slash = strchr(c, '/');
		size_t clen = slash ? (size_t)(slash - c) : strlen(c);
		if (clen == 0)
			return bng_err(BANGER_EINVAL, "%s '%s': empty path component", what, name);
		if ((clen == 1 && c[0] == '.') || (clen == 2 && c[0] == '.' && c[1] == '.'))
			return bng_err(BANGER_EINVAL, "%s '%s': '.' and '..' components are not allowed (path traversal)",
				       what, name);
		if (clen > 255)
			return bng_err(BANGER_EINVAL, "%s '%.64s...': a component is longer than 255 bytes", what, name);
		c = slash ? slash + 1 : NULL;
	}
	return 0;
}

/* True if a relative symlink at dir/ with this target climbs above root. */
static bool link_escapes(const char *path, const char *target)
{
	if (target[0] == '/')
		return false; /* absolute targets resolve inside the guest's root */
	int depth = 0;
	for (const char *c = path; (c = strchr(c, '/')); c++)
		depth++; /* components of the link's directory */
	for (const char *c = target; *c;) {
		size_t n = strcspn(c, "/");
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			if (--depth < 0)
				return true;
		} else if (n && !(n == 1 && c[0] == '.')) {
			depth++;
		}
		c += n;
		while (*c == '/')
			c++;
	}
	return false;
}

/* Whiteouts and opaque markers act on lower layers only: what this layer
 * created stays. */
static int clear_lower(bng_ext4 *x, ext2_ino_t dir)
{
	char **names;
	size_t n;
	int rc = bng_ext4_list(x, dir, &names, &n);
	for (size_t i = 0; !rc && i < n; i++) {
		ext2_ino_t ino;
		if (bng_ext4_lookup(x, dir, names[i], &ino) != 0 || bng_ext4_marked(x->created, ino))
			continue;
		if (bng_ext4_marked(x->declared, ino)) {
			/* a lower directory this layer re-declared: keep it, drop its lower contents */
			rc = clear_lower(x, ino);
			continue;
		}
		rc = bng_ext4_remove_at(x, dir, names[i]);
	}
	bng_ext4_free_names(names, n);
	return rc;
}

static int apply_whiteout(bng_ext4 *x, const char *path, const char *base)
{
	ext2_ino_t dir;
	char leaf[256];
	int rc = bng_ext4_walk(x, path, false, &dir, leaf, sizeof(leaf));
	if (rc == BANGER_ENOTFOUND)
		return 0; /* nothing below to hide */
	if (rc)
		return rc;
	if (!strcmp(base, WH_OPAQUE)) {
		ext2_ino_t target;
		/* path is "<dir>/.wh..wh..opq": dir/leaf is the marker, dir the opaque directory */
		(void)target;
		return clear_lower(x, dir);
	}
	ext2_ino_t ino;
	const char *victim = base + strlen(WH_PREFIX);
	if (bng_ext4_lookup(x, dir, victim, &ino) != 0 || bng_ext4_marked(x->created, ino))
		return 0;
	return bng_ext4_remove_at(x, dir, victim);
}

/* A tar stream, read in two stages: libarchive's filters decompress (the
 * "raw" format), and its tar reader parses what they yield through feed().
 * Counting those bytes, and knowing whether they ended cleanly, tells a
 * stream that stops after its last entry's data (a writer that left out
 * the padding and the two zero blocks, which Go's archive/tar accepts)
 * from one cut inside an entry, which the tar reader alone cannot. */
typedef struct tar_in {
	struct archive *raw, *tar;
	uint64_t total;		    /* decompressed bytes handed to the tar reader */
	bool ended;		    /* ... and all of them: the stream ended cleanly */
	uint64_t data_at, data_len; /* where the current entry's data lies (0, 0: none) */
} tar_in;

static const char *why(struct archive *a)
{
	return archive_error_string(a) ? archive_error_string(a) : "unknown error";
}

static la_ssize_t feed(struct archive *a, void *ud, const void **buf)
{
	tar_in *in = ud;
	size_t len = 0;
	la_int64_t off;
	int r;
	do
		r = archive_read_data_block(in->raw, buf, &len, &off);
	while ((r == ARCHIVE_OK || r == ARCHIVE_WARN) && len == 0);
	if (r == ARCHIVE_EOF) {
		in->ended = true;
		return 0;
	}
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
		archive_set_error(a, archive_errno(in->raw), "%s", why(in->raw));
		return -1;
	}
	in->total += len;
	return (la_ssize_t)len;
}

/* The stream ended cleanly after all of the current entry's data, before
 * the end of its padding: the entry is complete and nothing follows it.
 * libarchive reports that as an error; anything else it reports is one. */
static bool ended_in_padding(const tar_in *in)
{
	uint64_t end = in->data_at + in->data_len;
	return in->ended && in->data_len && in->total >= end && in->total < ((end + 511) & ~511ull);
}

static int tar_open(tar_in *in, const char *path, int fd, const char *label)
{
	memset(in, 0, sizeof(*in));
	struct archive_entry *e;
	in->raw = archive_read_new();
	archive_read_support_filter_all(in->raw);
	archive_read_support_format_raw(in->raw);
	int r = path ? archive_read_open_filename(in->raw, path, 1 << 16) : archive_read_open_fd(in->raw, fd, 1 << 16);
	if (r == ARCHIVE_OK)
		r = archive_read_next_header(in->raw, &e);
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
		return bng_err(BANGER_EIO, "%s: cannot read it (%s)", label, why(in->raw));
	in->tar = archive_read_new();
	archive_read_support_format_tar(in->tar);
	archive_read_support_format_gnutar(in->tar);
	if (archive_read_open(in->tar, in, NULL, feed, NULL) != ARCHIVE_OK)
		return bng_err(BANGER_EIO, "%s: cannot read it (%s)", label, why(in->tar));
	return 0;
}

static void tar_close(tar_in *in)
{
	if (in->tar)
		archive_read_free(in->tar);
	if (in->raw)
		archive_read_free(in->raw);
}

/* The next entry into *e, or *e = NULL at the end of the stream. */
static int tar_next(tar_in *in, struct archive_entry **e, const char *label)
{
	int r = archive_read_next_header(in->tar, e);
	if (r == ARCHIVE_OK || r == ARCHIVE_WARN) {
		bool data = archive_entry_filetype(*e) == AE_IFREG && !archive_entry_hardlink(*e) &&
			    !archive_entry_sparse_count(*e) && archive_entry_size(*e) > 0;
		in->data_at = (uint64_t)archive_filter_bytes(in->tar, 0);
		in->data_len = data ? (uint64_t)archive_entry_size(*e) : 0;
		return 0;
	}
	*e = NULL;
	if (r == ARCHIVE_EOF || ended_in_padding(in))
		return 0;
	return bng_err(BANGER_EIO, "%s: not a readable tar stream (%s)", label, why(in->tar));
}

static int write_data(bng_ext4 *x, tar_in *in, ext2_ino_t ino, int64_t size, const char *path)
{
	ext2_file_t f;
	errcode_t err = ext2fs_file_open(x->fs, ino, EXT2_FILE_WRITE, &f);
	if (err)
		return bng_ext2_err(err, "%s: cannot open for writing", path);
	int rc = 0;
	const void *buf;
	size_t len;
	la_int64_t off;
	int r;
	while ((r = archive_read_data_block(in->tar, &buf, &len, &off)) == ARCHIVE_OK) {
		if (off < 0 || (uint64_t)off + len > (uint64_t)size) {
			rc = bng_err(BANGER_EINVAL, "%s: data beyond the entry's declared size", path);
			break;
		}
		rc = bng_ext4_file_write(f, (uint64_t)off, buf, len);
		if (rc)
			break;
	}
	if (!rc && r != ARCHIVE_EOF && !ended_in_padding(in))
		rc = bng_err(BANGER_EIO, "%s: truncated or corrupt tar data: %s", path, why(in->tar));
	if (!rc && (err = ext2fs_file_set_size2(f, (ext2_off64_t)size)))
		rc = bng_ext2_err(err, "%s: cannot set size", path);
	err = ext2fs_file_close(f);
	if (!rc && err)
		rc = bng_ext2_err(err, "%s: cannot flush", path);
	return rc;
}

static int apply_xattrs(bng_ext4 *x, struct archive_entry *e, ext2_ino_t ino, const char *path)
{
	const char *key;
	const void *value;
	size_t size;
	if (archive_entry_xattr_reset(e) == 0)
		return 0;
	while (archive_entry_xattr_next(e, &key, &value, &size) == ARCHIVE_OK) {
		int rc = bng_ext4_set_xattr(x, ino, key, value, size);
		if (rc)
			return bng_err(rc, "%s: %s", path, banger_error_last());
	}
	return 0;
}

/* One entry: replace whatever the path held with what the entry says.
 * Errors name the entry; the caller adds the layer. */
static int apply_entry(bng_ext4 *x, tar_in *in, struct archive_entry *e)
{
	char path[4096], leaf[256];
	int rc = bng_clean_member_name(archive_entry_pathname(e) ? archive_entry_pathname(e) : "", path, sizeof(path), "entry");
	if (rc)
		return rc;
	mode_t type = archive_entry_filetype(e);
	mode_t perm = archive_entry_perm(e) & 07777;
	uid_t uid = (uid_t)archive_entry_uid(e);
	gid_t gid = (gid_t)archive_entry_gid(e);
	uint32_t mtime = (uint32_t)archive_entry_mtime(e);
	const char *hardlink = archive_entry_hardlink(e);

	if (!*path) /* the root directory's own metadata */
		return type == AE_IFDIR ? bng_ext4_set_meta(x, EXT2_ROOT_INO, perm, uid, gid, mtime) : 0;
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (!strncmp(base, WH_PREFIX, strlen(WH_PREFIX))) {
		const char *victim = base + strlen(WH_PREFIX);
		if (strcmp(base, WH_OPAQUE) && (!*victim || !strcmp(victim, ".") || !strcmp(victim, "..")))
			return bng_err(BANGER_EINVAL, "invalid whiteout '%s'", path);
		return apply_whiteout(x, path, base);
	}
	/* container-runtime markers make systemd misdetect the virtualisation */
	if (!strcmp(path, ".dockerenv") || !strcmp(path, "run/.containerenv"))
		return 0;
	int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
	if (size < 0 || (uint64_t)size > MAX_ENTRY_SIZE ||
	    (uint64_t)size > ext2fs_blocks_count(x->fs->super) * (uint64_t)x->fs->blocksize)
		return bng_err(BANGER_EINVAL, "entry '%s' claims an absurd size (%lld bytes)", path, (long long)size);

	ext2_ino_t dir, ino;
	rc = bng_ext4_walk(x, path, true, &dir, leaf, sizeof(leaf));
	if (rc)
		return bng_err(rc, "entry '%s': %s", path, banger_error_last());

	if (hardlink) {
		char target[4096], tleaf[256];
		ext2_ino_t tdir, tino;
		rc = bng_clean_member_name(hardlink, target, sizeof(target), "hardlink target");
		if (!rc && !*target)
			rc = bng_err(BANGER_EINVAL, "hardlink to the root directory");
		if (!rc)
			rc = bng_ext4_walk(x, target, false, &tdir, tleaf, sizeof(tleaf));
		if (!rc)
			rc = bng_ext4_lookup(x, tdir, tleaf, &tino);
		if (rc)
			return bng_err(BANGER_EINVAL, "hardlink '%s' -> '%s': %s", path, hardlink,
				       rc == BANGER_ENOTFOUND ? "target does not exist" : banger_error_last());
		if (bng_ext4_lookup(x, dir, leaf, &ino) == 0 && ino == tino)
			return 0; /* already the same file */
		rc = bng_ext4_remove_at(x, dir, leaf);
		if (!rc)
			rc = bng_ext4_hardlink(x, dir, leaf, tino);
		return rc;
	}

	/* an existing directory stays (its lower contents too) when the entry
	 * is a directory; anything else at the path is replaced */
	bool exists = bng_ext4_lookup(x, dir, leaf, &ino) == 0;
	if (exists && type == AE_IFDIR) {
		struct ext2_inode inode;
		if (ext2fs_read_inode(x->fs, ino, &inode) == 0 && LINUX_S_ISDIR(inode.i_mode)) {
			rc = bng_ext4_set_meta(x, ino, perm, uid, gid, mtime);
			return rc ? rc : apply_xattrs(x, e, ino, path);
		}
	}
	if (exists && (rc = bng_ext4_remove_at(x, dir, leaf)))
		return rc;

	switch (type) {
	case AE_IFDIR:
		rc = bng_ext4_mkdir(x, dir, leaf, perm, uid, gid, mtime, &ino);
		break;
	case AE_IFREG:
		rc = bng_ext4_mknode(x, dir, leaf, LINUX_S_IFREG | perm, uid, gid, mtime, 0, &ino);
		if (!rc)
			rc = write_data(x, in, ino, size, path);
		break;
	case AE_IFLNK: {
		const char *target = archive_entry_symlink(e);
		if (!target || !*target)
			return bng_err(BANGER_EINVAL, "symlink '%s' has no target", path);
		if (link_escapes(path, target))
			return bng_err(BANGER_EINVAL, "symlink '%s' -> '%s' escapes the image root", path, target);
		rc = bng_ext4_symlink(x, dir, leaf, target, uid, gid, mtime);
		if (!rc)
			rc = bng_ext4_lookup(x, dir, leaf, &ino);
		break;
	}
	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFIFO:
	case AE_IFSOCK: {
		mode_t m = type == AE_IFCHR ? LINUX_S_IFCHR : type == AE_IFBLK ? LINUX_S_IFBLK
			 : type == AE_IFIFO ? LINUX_S_IFIFO : LINUX_S_IFSOCK;
		rc = bng_ext4_mknode(x, dir, leaf, m | perm, uid, gid, mtime, archive_entry_rdev(e), &ino);
		break;
	}
	default:
		return bng_err(BANGER_EINVAL, "entry '%s' has an unsupported type (0%o)", path, (unsigned)type);
	}
	if (!rc)
		rc = apply_xattrs(x, e, ino, path);
	return rc;
}

static int apply_archive(bng_ext4 *x, tar_in *in, const char *label, bng_op *op)
{
	bng_ext4_layer_reset(x);
	struct archive_entry *e;
	int rc;
	uint64_t entries = 0;
	while (!(rc = tar_next(in, &e, label)) && e) {
		if (bng_op_cancelled(op)) {
			rc = bng_err(BANGER_ECANCELED, "%s: cancelled", label);
			break;
		}
		if ((rc = apply_entry(x, in, e)) != 0) {
			rc = bng_err(rc, "%s: %s", label, banger_error_last());
			break;
		}
		if (++entries % 2000 == 0)
			bng_op_event(op, json_pack("{s:s,s:s,s:I}", "stage", "unpack", "layer", label, "entries",
						   (json_int_t)entries));
	}
	if (!rc)
		bng_op_event(op, json_pack("{s:s,s:s,s:I,s:b}", "stage", "unpack", "layer", label, "entries",
					   (json_int_t)entries, "finished", 1));
	return rc;
}

int bng_ext4_apply_tar(bng_ext4 *x, const char *tar_path, const char *label, bng_op *op)
{
	tar_in in;
	int rc = tar_open(&in, tar_path, -1, label ? label : tar_path);
	if (!rc)
		rc = apply_archive(x, &in, label ? label : tar_path, op);
	tar_close(&in);
	return rc;
}

int bng_ext4_apply_tar_fd(bng_ext4 *x, int fd, const char *label, bng_op *op)
{
	tar_in in;
	int rc = tar_open(&in, NULL, fd, label);
	if (!rc)
		rc = apply_archive(x, &in, label, op);
	tar_close(&in);
	return rc;
}

int bng_tar_scan(const char *tar_path, const char *label, bng_tar_stats *s)
{
	tar_in in;
	struct archive_entry *e;
	int rc = tar_open(&in, tar_path, -1, label ? label : tar_path);
	while (!rc && !(rc = tar_next(&in, &e, label ? label : tar_path)) && e) {
		int64_t size = archive_entry_size(e);
		s->entries++;
		if (archive_entry_filetype(e) == AE_IFDIR)
			s->dirs++;
		if (archive_entry_filetype(e) == AE_IFREG && size > 0 && !archive_entry_hardlink(e)) {
			s->data_bytes += ((uint64_t)size + 4095) & ~4095ull;
			if ((uint64_t)size > s->largest)
				s->largest = (uint64_t)size;
		}
	}
	tar_close(&in);
	return rc;
}

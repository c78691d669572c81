/* ext4 images through libext2fs: create, open, and the inode-level
 * operations (files, directories, links, devices, xattrs, removal) that the
 * tar applier (tar.c) and image customisation use. */
#include "ext4_internal.h"
#include "../core/proc.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static pthread_once_t error_table_once = PTHREAD_ONCE_INIT;
static void load_error_table(void) { add_error_table(&et_ext2_error_table); }

int bng_ext2_err(errcode_t e, const char *fmt, ...)
{
	pthread_once(&error_table_once, load_error_table);
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (e == EXT2_ET_BLOCK_ALLOC_FAIL || e == EXT2_ET_INODE_ALLOC_FAIL || e == EXT2_ET_DIR_NO_SPACE)
		return bng_err(BANGER_EIO, "%s: the image is full (%s)", what,
			       error_message(e));
	if (e == ENOSPC || e == EXT2_ET_SHORT_WRITE)
		return bng_err(BANGER_EIO, "%s: the host disk is full (%s)", what, error_message(e));
	return bng_err(BANGER_EIO, "%s: %s", what, error_message(e));
}

/* ---- create / open / close ---- */

static void random_bytes(void *buf, size_t n)
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, buf, n) != (ssize_t)n)
		memset(buf, 0x5a, n); /* uniqueness only; nothing secret */
	if (fd >= 0)
		close(fd);
}

static bng_ext4 *wrap(ext2_filsys fs, const char *path)
{
	bng_ext4 *x = bng_xcalloc(1, sizeof(*x));
	x->fs = fs;
	x->path = bng_strdup(path);
	x->now = (uint32_t)time(NULL);
	fs->umask = 0; /* modes come from the tar entries, verbatim */
	return x;
}

uint64_t bng_ext4_size_for(const bng_tar_stats *s, uint64_t *inodes)
{
	uint64_t n_inodes = s->entries + s->entries / 4 + 4096;
	/* data, a directory block per directory, 256-byte inodes, ~3% for
	 * bitmaps/descriptors/extent blocks, a journal, then 25% headroom */
	uint64_t meta = s->dirs * 4096 + n_inodes * 256;
	uint64_t journal = 64ull << 20;
	uint64_t size = (s->data_bytes + meta) * 103 / 100 + journal;
	size += size / 4 + (32ull << 20);
	if (size < (64ull << 20))
		size = 64ull << 20;
	size = (size + (1 << 20) - 1) & ~((uint64_t)(1 << 20) - 1);
	if (inodes)
		*inodes = n_inodes;
	return size;
}

int bng_ext4_create(bng_ext4 **out, const char *path, uint64_t size, uint64_t inodes)
{
	if (size < (8ull << 20))
		return bng_err(BANGER_EINVAL, "ext4 image size %llu bytes is too small (minimum 8M)", (unsigned long long)size);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return bng_err_errno(bng_code_from_errno(errno), errno, "cannot create %s", path);
	int trunc = ftruncate(fd, (off_t)size); /* sparse: only written blocks use disk */
	int e = errno;
	close(fd);
	if (trunc != 0) {
		unlink(path);
		return bng_err_errno(BANGER_EIO, e, "cannot size %s", path);
	}

	struct ext2_super_block param;
	memset(&param, 0, sizeof(param));
	param.s_rev_level = EXT2_DYNAMIC_REV;
	param.s_log_block_size = 2; /* 4 KiB */
	ext2fs_blocks_count_set(&param, size / 4096);
	param.s_inodes_count = (uint32_t)(inodes ? inodes : size / 16384);
	param.s_inode_size = 256;
	param.s_log_groups_per_flex = 4;
	param.s_desc_size = EXT2_MIN_DESC_SIZE_64BIT;
	param.s_feature_compat = EXT2_FEATURE_COMPAT_EXT_ATTR | EXT2_FEATURE_COMPAT_DIR_INDEX;
	param.s_feature_incompat = EXT2_FEATURE_INCOMPAT_FILETYPE | EXT3_FEATURE_INCOMPAT_EXTENTS |
				   EXT4_FEATURE_INCOMPAT_FLEX_BG | EXT4_FEATURE_INCOMPAT_64BIT;
	param.s_feature_ro_compat = EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER | EXT2_FEATURE_RO_COMPAT_LARGE_FILE |
				    EXT4_FEATURE_RO_COMPAT_HUGE_FILE | EXT4_FEATURE_RO_COMPAT_DIR_NLINK |
				    EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE | EXT4_FEATURE_RO_COMPAT_METADATA_CSUM;
	param.s_min_extra_isize = param.s_want_extra_isize = 32;

	ext2_filsys fs;
	errcode_t err = ext2fs_initialize(path, EXT2_FLAG_EXCLUSIVE | EXT2_FLAG_64BITS, &param, unix_io_manager, &fs);
	if (err) {
		unlink(path);
		return bng_ext2_err(err, "cannot create an ext4 filesystem in %s", path);
	}
	random_bytes(fs->super->s_uuid, sizeof(fs->super->s_uuid));
	random_bytes(fs->super->s_hash_seed, sizeof(fs->super->s_hash_seed));
	fs->super->s_checksum_type = EXT2_CRC32C_CHKSUM;
	ext2fs_init_csum_seed(fs);
	fs->super->s_def_hash_version = EXT2_HASH_HALF_MD4;
	fs->super->s_max_mnt_count = (__u16)-1;
	fs->super->s_kbytes_written = 1;
	strncpy((char *)fs->super->s_volume_name, "banger", sizeof(fs->super->s_volume_name));
	bng_ext4 *x = wrap(fs, path);

	/* the sparse file reads as zeros, so inode tables are zeroed already:
	 * say so, and the kernel never lazily initialises them */
	err = ext2fs_allocate_tables(fs);
	for (dgrp_t g = 0; !err && g < fs->group_desc_count; g++) {
		ext2fs_bg_flags_set(fs, g, EXT2_BG_INODE_ZEROED);
		ext2fs_group_desc_csum_set(fs, g);
	}
	if (!err) /* reserved inodes 1..10 and the bad-blocks inode */
		for (ext2_ino_t i = EXT2_ROOT_INO + 1; i < EXT2_FIRST_INODE(fs->super); i++)
			ext2fs_inode_alloc_stats2(fs, i, +1, 0);
	if (!err) {
		/* the inline ext2fs_mark_inode_bitmap2 would bind the symbol directly */
		ext2fs_mark_generic_bmap((ext2fs_generic_bitmap)fs->inode_map, EXT2_BAD_INO);
		ext2fs_inode_alloc_stats2(fs, EXT2_BAD_INO, +1, 0);
		err = ext2fs_update_bb_inode(fs, NULL);
	}
	/* as mke2fs makes them: / 0755, lost+found 0700 and 16 KiB, so that
	 * e2fsck can reconnect files without allocating */
	fs->umask = 022;
	if (!err)
		err = ext2fs_mkdir(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, 0);
	fs->umask = 077;
	if (!err)
		err = ext2fs_mkdir(fs, EXT2_ROOT_INO, 0, "lost+found");
	fs->umask = 0;
	ext2_ino_t lpf;
	if (!err)
		err = ext2fs_lookup(fs, EXT2_ROOT_INO, "lost+found", sizeof("lost+found") - 1, NULL, &lpf);
	for (unsigned lpf_size = fs->blocksize; !err && lpf_size < 16384; lpf_size += fs->blocksize)
		err = ext2fs_expand_dir(fs, lpf);
	if (!err) {
		struct ext2fs_journal_params jp;
		err = ext2fs_get_journal_params(&jp, fs);
		if (!err)
			err = ext2fs_add_journal_inode3(fs, &jp, ~0ULL, 0);
	}
	if (err) {
		bng_ext2_err(err, "cannot lay out the ext4 filesystem in %s", path);
		bng_ext4_abort(x);
		unlink(path);
		return BANGER_EIO;
	}
	*out = x;
	return 0;
}

/* A filesystem a kernel did not unmount (a guest powered off after sync,
 * or killed) has committed transactions in its journal that the next mount
 * replays over their home blocks. libext2fs does not replay journals: a
 * write made before the replay would be overwritten by it (a VM's agent
 * binary came back half old, half new: "Exec format error"). So replay
 * first, with e2fsck, which does nothing else with -E journal_only. */
static int replay_journal(const char *path)
{
	const char *argv[] = {"e2fsck", "-E", "journal_only", "-p", path, NULL};
	int rc = bng_run(argv, NULL, NULL, NULL, NULL, NULL);
	if (rc)
		return bng_err(rc, "cannot replay the journal of %s, which its last user left unclean: %s", path,
			       banger_error_last());
	return 0;
}

int bng_ext4_open(bng_ext4 **out, const char *path)
{
	ext2_filsys fs;
	int flags = EXT2_FLAG_RW | EXT2_FLAG_64BITS | EXT2_FLAG_EXCLUSIVE;
	errcode_t err = ext2fs_open2(path, NULL, flags, 0, 0, unix_io_manager, &fs);
	if (!err && ext2fs_has_feature_journal_needs_recovery(fs->super)) {
		ext2fs_close_free(&fs);
		int rc = replay_journal(path);
		if (rc)
			return rc;
		err = ext2fs_open2(path, NULL, flags, 0, 0, unix_io_manager, &fs);
		if (!err && ext2fs_has_feature_journal_needs_recovery(fs->super)) {
			ext2fs_close_free(&fs);
			return bng_err(BANGER_EIO, "%s still has a journal to replay after e2fsck ran", path);
		}
	}
	if (err)
		return bng_ext2_err(err, "cannot open ext4 image %s", path);
	err = ext2fs_read_bitmaps(fs);
	if (err) {
		ext2fs_close_free(&fs);
		return bng_ext2_err(err, "cannot read the bitmaps of %s", path);
	}
	*out = wrap(fs, path);
	return 0;
}

int bng_ext4_exists(const char *image_path, const char *path, bool *exists)
{
	ext2_filsys fs;
	errcode_t err = ext2fs_open2(image_path, NULL, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);
	if (err)
		return bng_ext2_err(err, "cannot open ext4 image %s", image_path);
	bng_ext4 *x = wrap(fs, image_path);
	ext2_ino_t dir, ino;
	char leaf[256];
	int rc = bng_ext4_walk(x, path, false, &dir, leaf, sizeof(leaf));
	if (!rc)
		rc = bng_ext4_lookup(x, dir, leaf, &ino);
	*exists = rc == 0;
	bng_ext4_abort(x);
	return rc == 0 || rc == BANGER_ENOTFOUND ? 0 : rc;
}

static int read_link(bng_ext4 *x, ext2_ino_t ino, struct ext2_inode *inode, char *buf, size_t len);

int bng_ext4_resolve_exec(const char *image_path, const char *path, bool *found, char *target, size_t len)
{
	*found = false;
	ext2_filsys fs;
	errcode_t err = ext2fs_open2(image_path, NULL, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);
	if (err)
		return bng_ext2_err(err, "cannot open ext4 image %s", image_path);
	bng_ext4 *x = wrap(fs, image_path);
	char *cur = bng_strdup(path);
	int rc = 0;
	for (int links = 0; !rc; links++) {
		ext2_ino_t dir, ino;
		char leaf[256], link[4096];
		struct ext2_inode inode;
		rc = bng_ext4_walk(x, cur, false, &dir, leaf, sizeof(leaf));
		if (!rc)
			rc = bng_ext4_lookup(x, dir, leaf, &ino);
		if (!rc && (err = ext2fs_read_inode(x->fs, ino, &inode)) != 0)
			rc = bng_ext2_err(err, "%s: cannot read inode %u", cur, ino);
		if (rc)
			break;
		if (!LINUX_S_ISLNK(inode.i_mode)) {
			*found = LINUX_S_ISREG(inode.i_mode) && (inode.i_mode & 0111);
			break;
		}
		if (links >= 40 || (rc = read_link(x, ino, &inode, link, sizeof(link))) != 0)
			break;
		/* a relative target is relative to the link's directory */
		char *slash = strrchr(cur, '/');
		char *next = link[0] == '/' || !slash ? bng_strdup(link) : bng_asprintf("%.*s/%s", (int)(slash - cur), cur, link);
		free(cur);
		cur = next;
	}
	snprintf(target, len, "%s", cur);
	free(cur);
	bng_ext4_abort(x);
	/* a missing or broken path is an answer: nothing to run there */
	return rc == BANGER_ENOTFOUND || rc == BANGER_EINVAL ? 0 : rc;
}

static void free_wrapper(bng_ext4 *x)
{
	free(x->created);
	free(x->declared);
	free(x->path);
	free(x);
}

int bng_ext4_close(bng_ext4 *x)
{
	if (!x)
		return 0;
	errcode_t err = ext2fs_close_free(&x->fs);
	int rc = err ? bng_ext2_err(err, "cannot write %s", x->path) : 0;
	free_wrapper(x);
	return rc;
}

void bng_ext4_abort(bng_ext4 *x)
{
	if (!x)
		return;
	if (x->fs) {
		x->fs->flags &= ~EXT2_FLAG_DIRTY; /* nothing worth flushing */
		ext2fs_free(x->fs);
	}
	free_wrapper(x);
}

/* ---- per-layer bookkeeping: which inodes this layer created/declared ---- */

void bng_ext4_layer_reset(bng_ext4 *x)
{
	size_t bytes = (size_t)x->fs->super->s_inodes_count / 8 + 1;
	if (!x->created) {
		x->created = bng_xcalloc(1, bytes);
		x->declared = bng_xcalloc(1, bytes);
	} else {
		memset(x->created, 0, bytes);
		memset(x->declared, 0, bytes);
	}
}

static void mark(uint8_t *bits, ext2_ino_t ino)
{
	if (bits)
		bits[ino / 8] |= (uint8_t)(1u << (ino % 8));
}

bool bng_ext4_marked(const uint8_t *bits, ext2_ino_t ino) { return bits && (bits[ino / 8] >> (ino % 8)) & 1; }

/* ---- lookups and path walking ---- */

int bng_ext4_lookup(bng_ext4 *x, ext2_ino_t dir, const char *name, ext2_ino_t *ino)
{
	errcode_t err = ext2fs_lookup(x->fs, dir, name, (int)strlen(name), NULL, ino);
	if (err == EXT2_ET_FILE_NOT_FOUND)
		return BANGER_ENOTFOUND;
	return err ? bng_ext2_err(err, "cannot look up %s", name) : 0;
}

static int read_link(bng_ext4 *x, ext2_ino_t ino, struct ext2_inode *inode, char *buf, size_t len)
{
	size_t size = EXT2_I_SIZE(inode);
	if (size >= len)
		return bng_err(BANGER_EINVAL, "symlink target too long");
	if (ext2fs_is_fast_symlink(inode)) {
		memcpy(buf, (char *)inode->i_block, size);
	} else {
		ext2_file_t f;
		unsigned got = 0;
		errcode_t err = ext2fs_file_open2(x->fs, ino, inode, 0, &f);
		if (!err) {
			err = ext2fs_file_read(f, buf, (unsigned)size, &got);
			ext2fs_file_close(f);
		}
		if (err || got != size)
			return bng_ext2_err(err, "cannot read symlink");
	}
	buf[size] = '\0';
	return 0;
}

int bng_ext4_walk(bng_ext4 *x, const char *path, bool create, ext2_ino_t *dir_out, char *leaf, size_t leaf_len)
{
	enum { MAX_DEPTH = 256, MAX_LINKS = 40 };
	ext2_ino_t stack[MAX_DEPTH];
	int depth = 0, links = 0, rc = 0;
	stack[0] = EXT2_ROOT_INO;
	char *rest = bng_strdup(path);
	for (;;) {
		char *p = rest;
		while (*p == '/')
			p++;
		char *slash = strchr(p, '/');
		char *after = slash;
		while (after && *after == '/')
			after++; /* "a//b" may come from symlink targets */
		if (!slash || !*after) {
			/* last component: the caller's leaf */
			size_t n = slash ? (size_t)(slash - p) : strlen(p);
			if (n == 0 || n >= leaf_len) {
				rc = bng_err(BANGER_EINVAL, "%s: invalid name", path);
				break;
			}
			memcpy(leaf, p, n);
			leaf[n] = '\0';
			*dir_out = stack[depth];
			break;
		}
		*slash = '\0';
		char *comp = p;
		if (!strcmp(comp, ".")) {
			memmove(rest, after, strlen(after) + 1);
			continue;
		}
		if (!strcmp(comp, "..")) {
			if (depth == 0) {
				rc = bng_err(BANGER_EINVAL, "%s: a parent symlink leads outside the image root", path);
				break;
			}
			depth--;
			memmove(rest, after, strlen(after) + 1);
			continue;
		}
		ext2_ino_t ino;
		rc = bng_ext4_lookup(x, stack[depth], comp, &ino);
		if (rc == BANGER_ENOTFOUND && create) {
			rc = bng_ext4_mkdir(x, stack[depth], comp, 0755, 0, 0, x->now, &ino);
		} else if (rc == BANGER_ENOTFOUND) {
			rc = bng_err(BANGER_ENOTFOUND, "%s: %s does not exist", path, comp);
		}
		if (rc)
			break;
		struct ext2_inode inode;
		errcode_t err = ext2fs_read_inode(x->fs, ino, &inode);
		if (err) {
			rc = bng_ext2_err(err, "%s: cannot read inode %u", path, ino);
			break;
		}
		if (LINUX_S_ISDIR(inode.i_mode)) {
			if (depth + 1 >= MAX_DEPTH) {
				rc = bng_err(BANGER_EINVAL, "%s: too deep", path);
				break;
			}
			stack[++depth] = ino;
			memmove(rest, after, strlen(after) + 1);
		} else if (LINUX_S_ISLNK(inode.i_mode)) {
			char target[4096];
			if (++links > MAX_LINKS) {
				rc = bng_err(BANGER_EINVAL, "%s: too many levels of symbolic links", path);
				break;
			}
			rc = read_link(x, ino, &inode, target, sizeof(target));
			if (rc)
				break;
			if (target[0] == '/')
				depth = 0; /* absolute targets resolve inside the guest's root */
			char *next = bng_asprintf("%s/%s", target, after);
			free(rest);
			rest = next;
		} else {
			rc = bng_err(BANGER_EINVAL, "%s: %s is not a directory", path, comp);
			break;
		}
	}
	free(rest);
	return rc;
}

/* ---- creating inodes ---- */

static void set_owner(struct ext2_inode *inode, uid_t uid, gid_t gid)
{
	inode->i_uid = (__u16)uid;
	ext2fs_set_i_uid_high(*inode, (__u16)(uid >> 16));
	inode->i_gid = (__u16)gid;
	ext2fs_set_i_gid_high(*inode, (__u16)(gid >> 16));
}

static int dirent_type(unsigned mode)
{
	if (LINUX_S_ISREG(mode)) return EXT2_FT_REG_FILE;
	if (LINUX_S_ISDIR(mode)) return EXT2_FT_DIR;
	if (LINUX_S_ISLNK(mode)) return EXT2_FT_SYMLINK;
	if (LINUX_S_ISCHR(mode)) return EXT2_FT_CHRDEV;
	if (LINUX_S_ISBLK(mode)) return EXT2_FT_BLKDEV;
	if (LINUX_S_ISFIFO(mode)) return EXT2_FT_FIFO;
	return EXT2_FT_SOCK;
}

/* Links name -> ino in dir, growing the directory when it is full. */
static errcode_t link_entry(bng_ext4 *x, ext2_ino_t dir, const char *name, ext2_ino_t ino, int ftype)
{
	errcode_t err = ext2fs_link(x->fs, dir, name, ino, ftype);
	if (err == EXT2_ET_DIR_NO_SPACE) {
		err = ext2fs_expand_dir(x->fs, dir);
		if (!err)
			err = ext2fs_link(x->fs, dir, name, ino, ftype);
	}
	return err;
}

int bng_ext4_set_meta(bng_ext4 *x, ext2_ino_t ino, mode_t mode, uid_t uid, gid_t gid, uint32_t mtime)
{
	struct ext2_inode inode;
	errcode_t err = ext2fs_read_inode(x->fs, ino, &inode);
	if (!err) {
		inode.i_mode = (__u16)((inode.i_mode & LINUX_S_IFMT) | (mode & 07777));
		set_owner(&inode, uid, gid);
		inode.i_atime = inode.i_ctime = inode.i_mtime = mtime;
		err = ext2fs_write_inode(x->fs, ino, &inode);
	}
	mark(x->declared, ino);
	return err ? bng_ext2_err(err, "cannot update inode %u", ino) : 0;
}

int bng_ext4_mkdir(bng_ext4 *x, ext2_ino_t dir, const char *name, mode_t mode, uid_t uid, gid_t gid, uint32_t mtime,
		   ext2_ino_t *out)
{
	errcode_t err = ext2fs_mkdir(x->fs, dir, 0, name);
	if (err == EXT2_ET_DIR_NO_SPACE) {
		err = ext2fs_expand_dir(x->fs, dir);
		if (!err)
			err = ext2fs_mkdir(x->fs, dir, 0, name);
	}
	if (err)
		return bng_ext2_err(err, "cannot create directory %s", name);
	ext2_ino_t ino;
	int rc = bng_ext4_lookup(x, dir, name, &ino);
	if (!rc)
		rc = bng_ext4_set_meta(x, ino, mode, uid, gid, mtime);
	mark(x->created, ino);
	if (!rc && out)
		*out = ino;
	return rc;
}

/* A new inode of mode linked at dir/name; regular files get an extent tree. */
int bng_ext4_mknode(bng_ext4 *x, ext2_ino_t dir, const char *name, mode_t mode, uid_t uid, gid_t gid,
		    uint32_t mtime, dev_t rdev, ext2_ino_t *out)
{
	ext2_filsys fs = x->fs;
	ext2_ino_t ino;
	errcode_t err = ext2fs_new_inode(fs, dir, (int)mode, NULL, &ino);
	if (err)
		return bng_ext2_err(err, "cannot allocate an inode for %s", name);
	err = link_entry(x, dir, name, ino, dirent_type(mode));
	if (err)
		return bng_ext2_err(err, "cannot link %s", name);
	ext2fs_inode_alloc_stats2(fs, ino, +1, 0);
	struct ext2_inode inode;
	memset(&inode, 0, sizeof(inode));
	inode.i_mode = (__u16)mode;
	set_owner(&inode, uid, gid);
	inode.i_links_count = 1;
	inode.i_atime = inode.i_ctime = inode.i_mtime = mtime;
	if (LINUX_S_ISCHR(mode) || LINUX_S_ISBLK(mode)) {
		unsigned maj = major(rdev), min = minor(rdev);
		if (maj < 256 && min < 256)
			inode.i_block[0] = maj * 256 + min;
		else
			inode.i_block[1] = (min & 0xff) | (maj << 8) | ((min & ~0xffu) << 12);
	}
	if (LINUX_S_ISREG(mode) && ext2fs_has_feature_extents(fs->super)) {
		ext2_extent_handle_t h;
		err = ext2fs_extent_open2(fs, ino, &inode, &h); /* writes an empty extent header */
		if (err)
			return bng_ext2_err(err, "cannot initialise %s", name);
		ext2fs_extent_free(h);
	}
	err = ext2fs_write_new_inode(fs, ino, &inode);
	if (err)
		return bng_ext2_err(err, "cannot write inode for %s", name);
	mark(x->created, ino);
	mark(x->declared, ino);
	*out = ino;
	return 0;
}

int bng_ext4_symlink(bng_ext4 *x, ext2_ino_t dir, const char *name, const char *target, uid_t uid, gid_t gid,
		     uint32_t mtime)
{
	errcode_t err = ext2fs_symlink(x->fs, dir, 0, name, target);
	if (err == EXT2_ET_DIR_NO_SPACE) {
		err = ext2fs_expand_dir(x->fs, dir);
		if (!err)
			err = ext2fs_symlink(x->fs, dir, 0, name, target);
	}
	if (err)
		return bng_ext2_err(err, "cannot create symlink %s", name);
	ext2_ino_t ino;
	int rc = bng_ext4_lookup(x, dir, name, &ino);
	if (!rc)
		rc = bng_ext4_set_meta(x, ino, 0777, uid, gid, mtime);
	mark(x->created, ino);
	return rc;
}

int bng_ext4_hardlink(bng_ext4 *x, ext2_ino_t dir, const char *name, ext2_ino_t target)
{
	struct ext2_inode inode;
	errcode_t err = ext2fs_read_inode(x->fs, target, &inode);
	if (!err && LINUX_S_ISDIR(inode.i_mode))
		return bng_err(BANGER_EINVAL, "%s: hard links to directories are not allowed", name);
	if (!err)
		err = link_entry(x, dir, name, target, dirent_type(inode.i_mode));
	if (!err) {
		inode.i_links_count++;
		err = ext2fs_write_inode(x->fs, target, &inode);
	}
	mark(x->created, target);
	return err ? bng_ext2_err(err, "cannot hard-link %s", name) : 0;
}

/* Writes data at the file's current end, leaving all-zero blocks as holes. */
int bng_ext4_file_write(ext2_file_t f, uint64_t offset, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	static const unsigned char zero[4096];
	while (len) {
		size_t in_block = 4096 - (size_t)(offset % 4096);
		size_t n = len < in_block ? len : in_block;
		if (!(n == 4096 && !memcmp(p, zero, 4096))) {
			errcode_t err = ext2fs_file_llseek(f, offset, EXT2_SEEK_SET, NULL);
			unsigned written = 0;
			if (!err)
				err = ext2fs_file_write(f, p, (unsigned)n, &written);
			if (err || written != n)
				return bng_ext2_err(err ? err : EXT2_ET_SHORT_WRITE, "cannot write file data");
		}
		offset += n;
		p += n;
		len -= n;
	}
	return 0;
}

/* ---- removal ---- */

typedef struct {
	char **names;
	size_t n, cap;
} name_list;

static int collect_names(struct ext2_dir_entry *d, int offset, int blocksize, char *buf, void *priv)
{
	(void)offset;
	(void)blocksize;
	(void)buf;
	name_list *l = priv;
	int len = ext2fs_dirent_name_len(d);
	if ((len == 1 && d->name[0] == '.') || (len == 2 && d->name[0] == '.' && d->name[1] == '.'))
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->names = realloc(l->names, l->cap * sizeof(char *));
		if (!l->names)
			abort();
	}
	char *s = bng_xmalloc((size_t)len + 1);
	memcpy(s, d->name, (size_t)len);
	s[len] = '\0';
	l->names[l->n++] = s;
	return 0;
}

int bng_ext4_list(bng_ext4 *x, ext2_ino_t dir, char ***names, size_t *n)
{
	name_list l = {0};
	errcode_t err = ext2fs_dir_iterate(x->fs, dir, 0, NULL, collect_names, &l);
	if (err) {
		for (size_t i = 0; i < l.n; i++)
			free(l.names[i]);
		free(l.names);
		return bng_ext2_err(err, "cannot list directory inode %u", dir);
	}
	*names = l.names;
	*n = l.n;
	return 0;
}

void bng_ext4_free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int bng_ext4_remove_at(bng_ext4 *x, ext2_ino_t dir, const char *name)
{
	ext2_filsys fs = x->fs;
	ext2_ino_t ino;
	int rc = bng_ext4_lookup(x, dir, name, &ino);
	if (rc)
		return rc == BANGER_ENOTFOUND ? 0 : rc;
	struct ext2_inode_large inode;
	errcode_t err = ext2fs_read_inode_full(fs, ino, (struct ext2_inode *)&inode, sizeof(inode));
	if (err)
		return bng_ext2_err(err, "cannot read %s", name);
	bool is_dir = LINUX_S_ISDIR(inode.i_mode);
	if (is_dir) {
		char **names = NULL;
		size_t n = 0;
		rc = bng_ext4_list(x, ino, &names, &n);
		for (size_t i = 0; !rc && i < n; i++)
			rc = bng_ext4_remove_at(x, ino, names[i]);
		bng_ext4_free_names(names, n);
		if (rc)
			return rc;
		err = ext2fs_read_inode_full(fs, ino, (struct ext2_inode *)&inode, sizeof(inode));
	}
	if (!err)
		err = ext2fs_unlink(fs, dir, name, ino, 0);
	if (err)
		return bng_ext2_err(err, "cannot remove %s", name);
	if (is_dir) {
		struct ext2_inode parent;
		if (!ext2fs_read_inode(fs, dir, &parent) && parent.i_links_count > 1) {
			parent.i_links_count--;
			ext2fs_write_inode(fs, dir, &parent);
		}
		inode.i_links_count = 0;
	} else if (inode.i_links_count > 0) {
		inode.i_links_count--;
	}
	if (inode.i_links_count == 0) {
		if (ext2fs_inode_has_valid_blocks2(fs, (struct ext2_inode *)&inode))
			err = ext2fs_punch(fs, ino, (struct ext2_inode *)&inode, NULL, 0, ~0ULL);
		if (!err)
			err = ext2fs_free_ext_attr(fs, ino, &inode);
		inode.i_dtime = x->now;
		if (!err)
			ext2fs_inode_alloc_stats2(fs, ino, -1, is_dir);
	}
	if (!err)
		err = ext2fs_write_inode_full(fs, ino, (struct ext2_inode *)&inode, sizeof(inode));
	return err ? bng_ext2_err(err, "cannot free %s", name) : 0;
}

int bng_ext4_remove(bng_ext4 *x, const char *path)
{
	ext2_ino_t dir;
	char leaf[256];
	int rc = bng_ext4_walk(x, path, false, &dir, leaf, sizeof(leaf));
	if (rc == BANGER_ENOTFOUND)
		return 0;
	return rc ? rc : bng_ext4_remove_at(x, dir, leaf);
}

int bng_ext4_put_file(bng_ext4 *x, const char *path, const void *data, size_t len, mode_t mode, uid_t uid, gid_t gid)
{
	ext2_ino_t dir, ino;
	char leaf[256];
	int rc = bng_ext4_walk(x, path, true, &dir, leaf, sizeof(leaf));
	if (!rc)
		rc = bng_ext4_remove_at(x, dir, leaf);
	if (!rc)
		rc = bng_ext4_mknode(x, dir, leaf, LINUX_S_IFREG | (mode & 07777), uid, gid, x->now, 0, &ino);
	if (rc)
		return rc;
	ext2_file_t f;
	errcode_t err = ext2fs_file_open(x->fs, ino, EXT2_FILE_WRITE, &f);
	if (err)
		return bng_ext2_err(err, "cannot open %s", path);
	rc = bng_ext4_file_write(f, 0, data, len);
	if (!rc && (err = ext2fs_file_set_size2(f, len)))
		rc = bng_ext2_err(err, "cannot size %s", path);
	err = ext2fs_file_close(f);
	if (!rc && err)
		rc = bng_ext2_err(err, "cannot close %s", path);
	return rc;
}

int bng_ext4_put_dir(bng_ext4 *x, const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	ext2_ino_t dir, ino;
	char leaf[256];
	int rc = bng_ext4_walk(x, path, true, &dir, leaf, sizeof(leaf));
	if (rc)
		return rc;
	if (bng_ext4_lookup(x, dir, leaf, &ino) == 0)
		return bng_ext4_set_meta(x, ino, mode, uid, gid, x->now);
	return bng_ext4_mkdir(x, dir, leaf, mode, uid, gid, x->now, NULL);
}

int bng_ext4_put_symlink(bng_ext4 *x, const char *path, const char *target)
{
	ext2_ino_t dir;
	char leaf[256];
	int rc = bng_ext4_walk(x, path, true, &dir, leaf, sizeof(leaf));
	if (!rc)
		rc = bng_ext4_remove_at(x, dir, leaf);
	if (!rc)
		rc = bng_ext4_symlink(x, dir, leaf, target, 0, 0, x->now);
	return rc;
}

int bng_ext4_set_xattr(bng_ext4 *x, ext2_ino_t ino, const char *key, const void *value, size_t len)
{
	struct ext2_xattr_handle *h;
	errcode_t err = ext2fs_xattrs_open(x->fs, ino, &h);
	if (!err) {
		err = ext2fs_xattrs_read(h);
		if (!err)
			err = ext2fs_xattr_set(h, key, value, len);
		errcode_t cerr = ext2fs_xattrs_close(&h);
		if (!err)
			err = cerr;
	}
	return err ? bng_ext2_err(err, "cannot set xattr %s", key) : 0;
}

/* Inode-level helpers shared by ext4.c and tar.c. */
#ifndef BANGER_EXT4_INTERNAL_H
#define BANGER_EXT4_INTERNAL_H

#include "ext4.h"

#include <ext2fs/ext2_fs.h>
#include "../core/lazy_ext2fs.h"
#include <stdbool.h>
#include <sys/sysmacros.h>

struct bng_ext4 {
	ext2_filsys fs;
	char *path;
	uint32_t now;
	/* inodes this layer created, and those it created or re-declared:
	 * an opaque whiteout keeps exactly the current layer's entries */
	uint8_t *created, *declared;
};

int bng_ext2_err(errcode_t e, const char *fmt, ...) BNG_PRINTF(2, 3);
void bng_ext4_layer_reset(bng_ext4 *x);
bool bng_ext4_marked(const uint8_t *bits, ext2_ino_t ino);
int bng_ext4_lookup(bng_ext4 *x, ext2_ino_t dir, const char *name, ext2_ino_t *ino);
/* Resolves the directory holding path's last component, following symlinks
 * inside the image (an escape is an error); create makes missing parents. */
int bng_ext4_walk(bng_ext4 *x, const char *path, bool create, ext2_ino_t *dir, char *leaf, size_t leaf_len);
int bng_ext4_set_meta(bng_ext4 *x, ext2_ino_t ino, mode_t mode, uid_t uid, gid_t gid, uint32_t mtime);
int bng_ext4_mkdir(bng_ext4 *x, ext2_ino_t dir, const char *name, mode_t mode, uid_t uid, gid_t gid,
		   uint32_t mtime, ext2_ino_t *out);
int bng_ext4_mknode(bng_ext4 *x, ext2_ino_t dir, const char *name, mode_t mode, uid_t uid, gid_t gid,
		    uint32_t mtime, dev_t rdev, ext2_ino_t *out);
int bng_ext4_symlink(bng_ext4 *x, ext2_ino_t dir, const char *name, const char *target, uid_t uid, gid_t gid,
		     uint32_t mtime);
int bng_ext4_hardlink(bng_ext4 *x, ext2_ino_t dir, const char *name, ext2_ino_t target);
int bng_ext4_file_write(ext2_file_t f, uint64_t offset, const void *buf, size_t len);
int bng_ext4_remove_at(bng_ext4 *x, ext2_ino_t dir, const char *name);
int bng_ext4_list(bng_ext4 *x, ext2_ino_t dir, char ***names, size_t *n);
void bng_ext4_free_names(char **names, size_t n);
int bng_ext4_set_xattr(bng_ext4 *x, ext2_ino_t ino, const char *key, const void *value, size_t len);

#endif

/* The ext4 writer: builds filesystem images in process with libext2fs,
 * straight from tar streams (OCI layers, docker-export tars, tars of a
 * directory). No mkfs -d, no debugfs, no root, no staging directory. */
#ifndef BANGER_EXT4_H
#define BANGER_EXT4_H

#include "../core/op.h"

#include <stdint.h>
#include <sys/types.h>

typedef struct bng_ext4 bng_ext4;

/* What a set of tar streams holds, for content-aware sizing. */
typedef struct {
	uint64_t data_bytes; /* regular file bytes, rounded up to 4 KiB blocks */
	uint64_t entries;    /* inodes needed */
	uint64_t dirs;
	uint64_t largest;    /* largest single file */
} bng_tar_stats;

/* Adds the contents of one tar file (any compression libarchive reads).
 * label (NULL: the path) names the file in errors. */
int bng_tar_scan(const char *tar_path, const char *label, bng_tar_stats *stats);
/* Image size for stats: data + metadata + journal + headroom, never less
 * than 64 MiB, rounded up to 1 MiB. Sets *inodes to the inode count to use. */
uint64_t bng_ext4_size_for(const bng_tar_stats *stats, uint64_t *inodes);

/* Creates a sparse ext4 filesystem of size bytes at path (which must not
 * exist) holding an empty root (0755 root:root) and lost+found. inodes = 0
 * picks one inode per 16 KiB. */
int bng_ext4_create(bng_ext4 **out, const char *path, uint64_t size, uint64_t inodes);
/* Opens an existing ext4 image read-write (to add or replace files). */
int bng_ext4_open(bng_ext4 **out, const char *path);
/* True if path exists in the image at image_path (opened read-only). */
int bng_ext4_exists(const char *image_path, const char *path, bool *exists);
/* Follows path and the symlinks it ends in (inside the image) to what they
 * name: *found says whether that is an executable regular file, and
 * target (len bytes) holds the last path followed ("lib/systemd/systemd"
 * for a Debian /sbin/init). */
int bng_ext4_resolve_exec(const char *image_path, const char *path, bool *found, char *target, size_t len);

/* Flushes everything and closes. On error the image is unusable. */
int bng_ext4_close(bng_ext4 *fs);
/* Closes without caring about the result (failure paths delete the file). */
void bng_ext4_abort(bng_ext4 *fs);

/* Applies one tar stream: entries in order, OCI whiteouts (.wh.<name>
 * deletes the name from lower layers, .wh..wh..opq clears the directory's
 * lower contents), existing paths replaced. Rejects (BANGER_EINVAL, naming
 * the entry) traversal, escaping symlinks and hardlinks, entries under a
 * symlinked parent that escapes, malformed names and absurd sizes. A stream
 * may end without the two zero blocks (and the last entry's padding) once
 * its last entry's data is complete, as Go's archive/tar allows; one cut
 * inside an entry is an error. Errors start with label (NULL: the path).
 * Call once per layer, oldest first. */
int bng_ext4_apply_tar(bng_ext4 *fs, const char *tar_path, const char *label, bng_op *op);
/* Same, from an open file descriptor (a pipe: read once, not closed). */
int bng_ext4_apply_tar_fd(bng_ext4 *fs, int fd, const char *label, bng_op *op);

/* Normalises a tar member name into out ("a/b", no leading "./", no
 * trailing "/", "" for the root), rejecting absolute paths, "." and ".."
 * components, empty components and over-long names. what ("entry",
 * "hardlink target") prefixes the error. */
int bng_clean_member_name(const char *name, char *out, size_t len, const char *what);

/* Writes (creating or replacing) a regular file; missing parent directories
 * are created 0755 root:root. */
int bng_ext4_put_file(bng_ext4 *fs, const char *path, const void *data, size_t len, mode_t mode, uid_t uid,
		      gid_t gid);
/* Creates (or re-moded) directory path and missing parents (0755). */
int bng_ext4_put_dir(bng_ext4 *fs, const char *path, mode_t mode, uid_t uid, gid_t gid);
/* Creates or replaces a symlink at path. */
int bng_ext4_put_symlink(bng_ext4 *fs, const char *path, const char *target);

/* Removes a path (recursively) if it exists. */
int bng_ext4_remove(bng_ext4 *fs, const char *path);

#endif

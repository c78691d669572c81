/* Test driver for the ext4 writer, reading back with libext2fs only.
 *   ext4-tool build OUT SIZE|auto TAR...   build an image from tar layers
 *   ext4-tool dump IMG                     one JSON object per path
 *   ext4-tool put IMG PATH TEXT            add/replace a file
 *   ext4-tool rm IMG PATH                  remove a path
 *   ext4-tool resolve IMG PATH             "exec TARGET" or "none TARGET"
 *                                          (bng_ext4_resolve_exec) */
#include "fs/ext4_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(const char *what)
{
	fprintf(stderr, "ext4-tool: %s: %s\n", what, banger_error_last());
	return 1;
}

/* FNV-1a 64 of the file content: enough to compare trees in tests. */
static uint64_t content_hash(ext2_filsys fs, ext2_ino_t ino)
{
	uint64_t h = 1469598103934665603ull;
	ext2_file_t f;
	if (ext2fs_file_open(fs, ino, 0, &f))
		return 0;
	char buf[65536];
	unsigned got;
	while (!ext2fs_file_read(f, buf, sizeof(buf), &got) && got)
		for (unsigned i = 0; i < got; i++)
			h = (h ^ (unsigned char)buf[i]) * 1099511628211ull;
	ext2fs_file_close(f);
	return h;
}

static void dump_dir(ext2_filsys fs, bng_ext4 *x, ext2_ino_t dir, const char *prefix)
{
	char **names;
	size_t n;
	if (bng_ext4_list(x, dir, &names, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		ext2_ino_t ino;
		if (bng_ext4_lookup(x, dir, names[i], &ino))
			continue;
		char *path = bng_asprintf("%s/%s", prefix, names[i]);
		struct ext2_inode in;
		ext2fs_read_inode(fs, ino, &in);
		const char *type = LINUX_S_ISDIR(in.i_mode) ? "dir" : LINUX_S_ISREG(in.i_mode) ? "file"
				 : LINUX_S_ISLNK(in.i_mode) ? "symlink" : LINUX_S_ISCHR(in.i_mode) ? "char"
				 : LINUX_S_ISBLK(in.i_mode) ? "block" : LINUX_S_ISFIFO(in.i_mode) ? "fifo" : "socket";
		json_t *o = json_pack("{s:s,s:s,s:i,s:I,s:I,s:I,s:i,s:i,s:I}", "path", path, "type", type, "mode",
				      in.i_mode & 07777, "uid", (json_int_t)inode_uid(in), "gid",
				      (json_int_t)inode_gid(in), "size", (json_int_t)EXT2_I_SIZE(&in), "nlink",
				      in.i_links_count, "ino", ino, "mtime", (json_int_t)in.i_mtime);
		if (LINUX_S_ISREG(in.i_mode)) {
			char hex[17];
			snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)content_hash(fs, ino));
			json_object_set_new(o, "hash", json_string(hex));
		}
		if (LINUX_S_ISLNK(in.i_mode)) {
			char target[4096] = "";
			if (ext2fs_is_fast_symlink(&in)) {
				memcpy(target, in.i_block, EXT2_I_SIZE(&in));
				target[EXT2_I_SIZE(&in)] = 0;
			} else {
				ext2_file_t f;
				unsigned got = 0;
				if (!ext2fs_file_open(fs, ino, 0, &f)) {
					ext2fs_file_read(f, target, sizeof(target) - 1, &got);
					target[got] = 0;
					ext2fs_file_close(f);
				}
			}
			json_object_set_new(o, "target", json_string(target));
		}
		if (LINUX_S_ISCHR(in.i_mode) || LINUX_S_ISBLK(in.i_mode)) {
			unsigned maj, min;
			if (in.i_block[0]) {
				maj = (in.i_block[0] >> 8) & 255;
				min = in.i_block[0] & 255;
			} else {
				maj = (in.i_block[1] & 0xfff00) >> 8;
				min = (in.i_block[1] & 0xff) | ((in.i_block[1] >> 12) & 0xfff00);
			}
			json_object_set_new(o, "rdev", json_pack("[i,i]", maj, min));
		}
		struct ext2_xattr_handle *h;
		if (!ext2fs_xattrs_open(fs, ino, &h)) {
			size_t count = 0;
			if (!ext2fs_xattrs_read(h) && !ext2fs_xattrs_count(h, &count) && count) {
				json_t *xa = json_object();
				static const char *keys[] = {"security.capability", "user.banger", "trusted.overlay.opaque",
							     "security.selinux"};
				for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
					void *val;
					size_t len;
					if (!ext2fs_xattr_get(h, keys[k], &val, &len)) {
						char *hex = bng_xmalloc(len * 2 + 1);
						for (size_t b = 0; b < len; b++)
							sprintf(hex + b * 2, "%02x", ((unsigned char *)val)[b]);
						json_object_set_new(xa, keys[k], json_string(hex));
						free(hex);
						ext2fs_free_mem(&val);
					}
				}
				json_object_set_new(o, "xattrs", xa);
			}
			ext2fs_xattrs_close(&h);
		}
		char *line = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		printf("%s\n", line);
		free(line);
		json_decref(o);
		if (LINUX_S_ISDIR(in.i_mode) && strcmp(names[i], "lost+found"))
			dump_dir(fs, x, ino, path);
		free(path);
	}
	bng_ext4_free_names(names, n);
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "build")) {
		uint64_t size, inodes = 0;
		if (!strcmp(argv[3], "auto")) {
			bng_tar_stats st = {0};
			for (int i = 4; i < argc; i++)
				if (bng_tar_scan(argv[i], NULL, &st))
					return die("scan");
			size = bng_ext4_size_for(&st, &inodes);
		} else {
			size = strtoull(argv[3], NULL, 0);
		}
		bng_ext4 *x;
		if (bng_ext4_create(&x, argv[2], size, inodes))
			return die("create");
		for (int i = 4; i < argc; i++)
			if (bng_ext4_apply_tar(x, argv[i], NULL, NULL)) {
				die("apply");
				bng_ext4_abort(x);
				remove(argv[2]);
				return 1;
			}
		if (bng_ext4_close(x))
			return die("close");
		printf("{\"size\": %llu, \"inodes\": %llu}\n", (unsigned long long)size, (unsigned long long)inodes);
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "resolve")) {
		bool found;
		char target[4096];
		if (bng_ext4_resolve_exec(argv[2], argv[3], &found, target, sizeof(target)))
			return die("resolve");
		printf("%s %s\n", found ? "exec" : "none", target);
		return 0;
	}
	bng_ext4 *x;
	if (argc < 3 || bng_ext4_open(&x, argv[2]))
		return argc < 3 ? (fprintf(stderr, "usage: see ext4-tool.c\n"), 2) : die("open");
	int rc = 0;
	if (!strcmp(argv[1], "dump")) {
		struct ext2_inode root;
		ext2fs_read_inode(x->fs, EXT2_ROOT_INO, &root);
		printf("{\"path\":\"/\",\"mode\":%d,\"uid\":%u,\"gid\":%u,\"type\":\"dir\"}\n", root.i_mode & 07777,
		       inode_uid(root), inode_gid(root));
		dump_dir(x->fs, x, EXT2_ROOT_INO, "");
	} else if (!strcmp(argv[1], "put") && argc == 5) {
		rc = bng_ext4_put_file(x, argv[3], argv[4], strlen(argv[4]), 0644, 0, 0) ? die("put") : 0;
	} else if (!strcmp(argv[1], "rm") && argc == 4) {
		rc = bng_ext4_remove(x, argv[3]) ? die("rm") : 0;
	} else {
		fprintf(stderr, "usage: see ext4-tool.c\n");
		rc = 2;
	}
	if (bng_ext4_close(x))
		return die("close");
	return rc;
}

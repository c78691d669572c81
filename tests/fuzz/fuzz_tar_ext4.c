/* libFuzzer target: a tar layer (any compression libarchive reads) applied
 * to a fresh ext4 image through bng_ext4_apply_tar, the path `image import`
 * and OCI layer application take. Invariants:
 *  - a rejected layer fails with a message that starts with its label;
 *  - an applied one leaves an image that closes cleanly and reopens, whose
 *    tree (walked with libext2fs) has only valid names, in-use inodes and
 *    no symlink that climbs above the root from where it sits;
 *  - for layers of plain files and directories, every file's last entry is
 *    a regular file of the declared size in the image, unless a later entry
 *    replaced one of its parents.
 * With BANGER_FUZZ_FSCK=1 each applied image also passes `e2fsck -fn`: run.sh
 * does that for the seed corpus only (a process per input is too slow for
 * the fuzzing loop). */
#include "fuzz.h"
#include "core/internal.h"
#include "fs/ext4_internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define LABEL "fuzz layer 1"
#define IMAGE_SIZE (8ull << 20) /* the writer's minimum: cheap to create */
#define MAX_FILES 256

static char dir[64] = "";

static void cleanup(void) { bng_rm_rf(dir); }

/* ---- what the tar says (read independently, for the oracle) ---- */

typedef struct {
	char path[4096];
	bool is_file;
	int64_t size;
} entry;

typedef struct {
	entry *e;
	size_t n;
	bool simple; /* only plain files and directories, no whiteouts */
} listing;

static void list_tar(const uint8_t *data, size_t size, listing *l)
{
	l->e = calloc(MAX_FILES, sizeof(*l->e));
	REQUIRE(l->e != NULL);
	l->n = 0;
	l->simple = true;
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	struct archive_entry *ae;
	if (archive_read_open_memory(a, data, size) != ARCHIVE_OK)
		l->simple = false;
	while (l->simple && archive_read_next_header(a, &ae) == ARCHIVE_OK) {
		mode_t t = archive_entry_filetype(ae);
		const char *name = archive_entry_pathname(ae);
		if (l->n == MAX_FILES || !name || archive_entry_hardlink(ae) || (t != AE_IFREG && t != AE_IFDIR) ||
		    strstr(name, ".wh.") || archive_entry_sparse_count(ae)) {
			l->simple = false;
			break;
		}
		entry *e = &l->e[l->n];
		if (bng_clean_member_name(name, e->path, sizeof(e->path), "entry") != 0 || !*e->path ||
		    !strcmp(e->path, ".dockerenv") || !strcmp(e->path, "run/.containerenv"))
			continue; /* the apply must have refused it, or skips it */
		e->is_file = t == AE_IFREG;
		e->size = archive_entry_size(ae);
		l->n++;
	}
	archive_read_free(a);
	bng_err_clear();
}

/* True when a later entry than i replaced entry i or one of its parents. */
static bool replaced(const listing *l, size_t i)
{
	const char *p = l->e[i].path;
	for (size_t k = i + 1; k < l->n; k++) {
		const entry *q = &l->e[k];
		size_t n = strlen(q->path);
		if (!strcmp(q->path, p))
			return true;
		if (q->is_file && !strncmp(q->path, p, n) && p[n] == '/')
			return true;
	}
	return false;
}

/* ---- the image ---- */

/* Whether a symlink at path (relative to the root) with this target
 * resolves above the root; written apart from the library's own check. */
static bool climbs_out(const char *path, const char *target)
{
	if (target[0] == '/')
		return false;
	long depth = 0;
	for (const char *c = path; *c; c++)
		depth += *c == '/';
	char *t = bng_strdup(target), *save = NULL;
	bool out = false;
	for (char *tok = strtok_r(t, "/", &save); tok && !out; tok = strtok_r(NULL, "/", &save)) {
		if (!strcmp(tok, ".."))
			out = --depth < 0;
		else if (strcmp(tok, "."))
			depth++;
	}
	free(t);
	return out;
}

typedef struct {
	ext2_filsys fs;
	const char *dir_path;
	size_t seen;
	char *sub[64];
	size_t nsub;
} walk;

static int visit(struct ext2_dir_entry *de, int offset, int blocksize, char *buf, void *ud)
{
	walk *w = ud;
	size_t len = ext2fs_dirent_name_len(de);
	char name[256];
	REQUIRE(len > 0 && len < sizeof(name));
	memcpy(name, de->name, len);
	name[len] = '\0';
	REQUIRE(!memchr(name, '/', len) && !memchr(name, '\0', len));
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	REQUIRE(++w->seen <= w->fs->super->s_inodes_count);
	ext2_ino_t ino = de->inode;
	REQUIRE(ino >= 1 && ino <= w->fs->super->s_inodes_count);
	REQUIRE(ext2fs_test_inode_bitmap2(w->fs->inode_map, ino));
	struct ext2_inode inode;
	REQUIRE(ext2fs_read_inode(w->fs, ino, &inode) == 0);
	REQUIRE(inode.i_links_count > 0 && inode.i_mode != 0);
	char *path = *w->dir_path ? bng_asprintf("%s/%s", w->dir_path, name) : bng_strdup(name);
	if (LINUX_S_ISLNK(inode.i_mode)) {
		char target[4097] = "";
		ext2_file_t f;
		unsigned int got = 0;
		uint64_t sz = EXT2_I_SIZE(&inode);
		REQUIRE(sz > 0 && sz < sizeof(target));
		if (ext2fs_is_fast_symlink(&inode)) {
			memcpy(target, inode.i_block, sz);
		} else {
			REQUIRE(ext2fs_file_open(w->fs, ino, 0, &f) == 0);
			REQUIRE(ext2fs_file_read(f, target, (unsigned)sz, &got) == 0 && got == sz);
			ext2fs_file_close(f);
		}
		REQUIRE(!climbs_out(path, target));
	}
	if (LINUX_S_ISDIR(inode.i_mode) && strcmp(path, "lost+found") && w->nsub < BNG_ARRAY_LEN(w->sub))
		w->sub[w->nsub++] = bng_strdup(path);
	free(path);
	return 0;
}

static void walk_tree(ext2_filsys fs, const char *path, size_t *seen, int depth)
{
	REQUIRE(depth < 2048);
	ext2_ino_t ino;
	if (*path)
		REQUIRE(ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, &ino) == 0);
	else
		ino = EXT2_ROOT_INO;
	walk w = {.fs = fs, .dir_path = path, .seen = *seen};
	REQUIRE(ext2fs_dir_iterate(fs, ino, 0, NULL, visit, &w) == 0);
	*seen = w.seen;
	for (size_t i = 0; i < w.nsub; i++) {
		walk_tree(fs, w.sub[i], seen, depth + 1);
		free(w.sub[i]);
	}
}

static void check_image(const char *image, const listing *l)
{
	ext2_filsys fs;
	REQUIRE(ext2fs_open2(image, NULL, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs) == 0);
	REQUIRE(ext2fs_read_bitmaps(fs) == 0);
	size_t seen = 0;
	walk_tree(fs, "", &seen, 0);
	for (size_t i = 0; l->simple && i < l->n; i++) {
		const entry *e = &l->e[i];
		if (!e->is_file || replaced(l, i))
			continue;
		ext2_ino_t ino;
		struct ext2_inode inode;
		if (ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, e->path, &ino) != 0)
			fprintf(stderr, "'%s' is missing from the image\n", e->path);
		REQUIRE(ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, e->path, &ino) == 0);
		REQUIRE(ext2fs_read_inode(fs, ino, &inode) == 0);
		REQUIRE(LINUX_S_ISREG(inode.i_mode));
		REQUIRE(EXT2_I_SIZE(&inode) == (uint64_t)e->size);
	}
	ext2fs_close_free(&fs);
	if (getenv("BANGER_FUZZ_FSCK") && *getenv("BANGER_FUZZ_FSCK") == '1') {
		char *cmd = bng_asprintf("e2fsck -fn '%s' >&2", image);
		int st = system(cmd);
		free(cmd);
		REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!*dir) {
		const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
		snprintf(dir, sizeof(dir), "%.40s/fuzz-tar-XXXXXX", tmp);
		REQUIRE(mkdtemp(dir) != NULL);
		atexit(cleanup);
	}
	char tar[96], image[96];
	snprintf(tar, sizeof(tar), "%s/layer.tar", dir);
	snprintf(image, sizeof(image), "%s/rootfs.ext4", dir);
	REQUIRE(bng_write_file_atomic(tar, (const char *)data, size, 0644) == 0);
	unlink(image);

	bng_ext4 *x;
	REQUIRE(bng_ext4_create(&x, image, IMAGE_SIZE, 0) == 0);
	int rc = bng_ext4_apply_tar(x, tar, LABEL, NULL);
	if (rc) {
		REQUIRE(rc < 0);
		REQUIRE(!strncmp(banger_error_last(), LABEL ": ", strlen(LABEL ": ")));
		bng_ext4_abort(x);
	} else {
		REQUIRE(bng_ext4_close(x) == 0);
		listing l;
		list_tar(data, size, &l);
		check_image(image, &l);
		free(l.e);
	}
	unlink(image);
	unlink(tar);
	bng_err_clear();
	return 0;
}

/* vm.workspace.*: a host git repository into a running guest and a patch
 * back out. prepare (shallow mode) makes a depth-10 no-checkout clone of
 * the repository in a staging directory on the host (no host hook runs)
 * and adds the working tree's files that differ from HEAD (untracked ones
 * on request; symlinks as symlinks, modes kept); one guest command takes
 * it as a tar stream and checks out the rest from the shipped history, so
 * a file HEAD already has travels once, compressed in the pack, and the
 * index has its stat data without hashing it under emulation. Uncommitted
 * host edits show as changes. full_copy mode ships the directory as it is
 * (.git, submodules, every file) and keeps its index. Shipping records
 * the guest working tree's id, so preparing again is refused only over
 * changes made in the guest since. export diffs the guest's tree against
 * the prepared commit through a throwaway index in
 * the git dir: the guest repository's own index is never touched. */
#include "vm.h"
#include "../core/internal.h"
#include "../core/proc.h"
#include "../core/sha256.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- host git ---- */

/* Runs git with args in dir (NULL: none); its stdout into *out (may be
 * NULL), trailing newline trimmed when trim. */
static int host_git(const char *scratch, const char *dir, const char *const *args, char **out, size_t *out_len,
		    bool trim, bng_op *op)
{
	const char *argv[24] = {"git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"};
	size_t n = 5;
	if (dir) {
		argv[n++] = "-C";
		argv[n++] = dir;
	}
	for (size_t i = 0; args[i] && n < BNG_ARRAY_LEN(argv) - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	char *stdout_path = bng_asprintf("%s/git.out", scratch), *log = bng_asprintf("%s/git.log", scratch);
	unlink(log);
	int rc = bng_run(argv, stdout_path, log, NULL, NULL, op);
	if (!rc && out) {
		size_t len = 0;
		rc = bng_read_file(stdout_path, out, &len);
		if (!rc && trim)
			while (len && ((*out)[len - 1] == '\n' || (*out)[len - 1] == '\r'))
				(*out)[--len] = '\0';
		if (out_len)
			*out_len = len;
	}
	unlink(stdout_path);
	free(stdout_path);
	free(log);
	return rc;
}

/* A git config value as the repository resolves it (global included);
 * NULL when unset. */
static char *host_config(const char *scratch, const char *top, const char *key, bng_op *op)
{
	char *v = NULL;
	if (host_git(scratch, top, (const char *[]){"config", "--get", key, NULL}, &v, NULL, true, op) || !*v) {
		free(v);
		bng_err_clear();
		return NULL;
	}
	return v;
}

/* ---- the overlay: files from the working tree into the staging clone ---- */

static int mkparents(const char *path)
{
	char *d = bng_strdup(path), *slash = strrchr(d, '/');
	int rc = 0;
	if (slash) {
		*slash = '\0';
		rc = bng_mkdir_p(d, 0755);
	}
	free(d);
	return rc;
}

static int copy_regular(const char *from, const char *to, mode_t mode, size_t *bytes)
{
	int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return bng_err_errno(BANGER_EIO, errno, "cannot read %s", from);
	unlink(to);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode & 07777);
	int rc = 0;
	if (out < 0)
		rc = bng_err_errno(BANGER_EIO, errno, "cannot write %s", to);
	char buf[65536];
	ssize_t n = 0;
	while (!rc && (n = read(in, buf, sizeof(buf))) > 0) {
		for (ssize_t done = 0; !rc && done < n;) {
			ssize_t w = write(out, buf + done, (size_t)(n - done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				rc = bng_err_errno(BANGER_EIO, errno, "cannot write %s", to);
			else
				done += w;
		}
		*bytes += (size_t)n;
	}
	if (!rc && n < 0)
		rc = bng_err_errno(BANGER_EIO, errno, "cannot read %s", from);
	if (!rc && fchmod(out, mode & 07777) != 0) /* the umask narrowed it */
		rc = bng_err_errno(BANGER_EIO, errno, "cannot chmod %s", to);
	if (out >= 0)
		close(out);
	close(in);
	return rc;
}

/* One path of the list: a regular file or a symlink (never followed);
 * a path gone from the working tree (deleted, not yet committed) and a
 * directory (a nested repository) are skipped. *shipped says which. */
static int overlay_one(const char *top, const char *stage, const char *rel, size_t *bytes, bool *shipped)
{
	char *from = bng_asprintf("%s/%s", top, rel), *to = bng_asprintf("%s/%s", stage, rel);
	struct stat st;
	int rc = 0;
	*shipped = false;
	if (lstat(from, &st) != 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			rc = bng_err_errno(BANGER_EIO, errno, "cannot stat %s", from);
	} else if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlink(from, target, sizeof(target) - 1);
		if (n < 0)
			rc = bng_err_errno(BANGER_EIO, errno, "cannot read the link %s", from);
		if (!rc)
			rc = mkparents(to);
		if (!rc) {
			target[n] = '\0';
			unlink(to);
			if (symlink(target, to) != 0)
				rc = bng_err_errno(BANGER_EIO, errno, "cannot make the link %s", to);
			*bytes += (size_t)n;
			*shipped = !rc;
		}
	} else if (S_ISREG(st.st_mode)) {
		rc = mkparents(to);
		if (!rc)
			rc = copy_regular(from, to, st.st_mode, bytes);
		*shipped = !rc;
	}
	free(from);
	free(to);
	return rc;
}

/* A path for a result: a JSON string when it is UTF-8, else appended to
 * b64 (the caller's "<key>_b64" list) and NULL. */
static json_t *name_or_b64(const char *name, size_t len, json_t *b64)
{
	json_t *s = json_stringn(name, len);
	if (!s) {
		char *enc = bng_base64(name, len);
		json_array_append_new(b64, json_string(enc));
		free(enc);
	}
	return s;
}

/* ---- guest ---- */

/* Runs `sh -c script sh args...` (args stolen) in the guest as root with HOME=/root; its
 * exit code in *code, output in *out. */
static int guest_sh(bng_agent_link *link, const bng_vm_row *vm, bng_op *op, const char *script, json_t *args, bng_output *out,
		    int *code)
{
	json_t *argv = json_pack("[s,s,s,s]", "sh", "-c", script, "sh");
	json_array_extend(argv, args);
	json_decref(args); /* stolen: callers pass a fresh array */
	json_t *spec = json_pack("{s:o,s:[s]}", "argv", argv, "env", "HOME=/root");
	bng_exec_io io = {.output = bng_output_collect, .ud = out};
	int rc = bng_vm_guest_run(link, vm, op, spec, &io, 0, code, NULL);
	json_decref(spec);
	return rc;
}

static const char *said(bng_output *c) { return c->len[1] ? c->buf[1] : (c->len[0] ? c->buf[0] : ""); }

/* ---- vm.workspace.prepare ---- */

static int vm_row(bng_engine *e, json_t *params, bng_vm_row **vm)
{
	return bng_vm_get(e, bng_jstr(params, "name"), vm);
}

/* The repository at path: its top level and HEAD commit; refuses bare
 * repositories, non-repositories, repositories without commits and (in
 * shallow mode) submodules. */
/* Files (of any kind, directories aside) and bytes under dir, as a full
 * copy ships them. */
static void count_tree(const char *dir, size_t *files, size_t *bytes)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *p = bng_asprintf("%s/%s", dir, de->d_name);
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			count_tree(p, files, bytes);
		} else if (lstat(p, &st) == 0) {
			(*files)++;
			*bytes += (size_t)st.st_size;
		}
		free(p);
	}
	if (d)
		closedir(d);
}

static int inspect(const char *scratch, const char *path, bool full_copy, char **top, char **head, bng_op *op)
{
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return bng_err(BANGER_ENOTFOUND, "%s is not a directory", path);
	char *bare = NULL;
	if (host_git(scratch, path, (const char *[]){"rev-parse", "--is-bare-repository", NULL}, &bare, NULL, true,
		     op)) {
		bng_err_clear();
		return bng_err(BANGER_EINVAL, "%s is not a git repository", path);
	}
	bool is_bare = !strcmp(bare, "true");
	free(bare);
	if (is_bare)
		return bng_err(BANGER_EINVAL, "%s is a bare repository: a workspace needs a working tree", path);
	if (host_git(scratch, path, (const char *[]){"rev-parse", "--show-toplevel", NULL}, top, NULL, true, op) ||
	    !**top) {
		bng_err_clear();
		return bng_err(BANGER_EINVAL, "%s is not inside a git working tree", path);
	}
	if (host_git(scratch, *top, (const char *[]){"rev-parse", "--verify", "-q", "HEAD^{commit}", NULL}, head, NULL,
		     true, op) ||
	    !**head) {
		bng_err_clear();
		return bng_err(BANGER_EINVAL, "%s has no commit yet: commit something first", *top);
	}
	char *gm = bng_asprintf("%s/.gitmodules", *top);
	bool submodules = access(gm, F_OK) == 0;
	free(gm);
	if (submodules && !full_copy)
		return bng_err(BANGER_EUNSUPPORTED,
			       "%s has submodules (.gitmodules): the shallow mode does not ship them; the "
			       "full_copy mode (mode full_copy) copies the whole repository",
			       *top);
	return 0;
}

/* The NUL-separated list of paths to ship. */
static int list_files(const char *scratch, const char *top, bool untracked, json_t **files, char **digest, bng_op *op)
{
	char *out = NULL;
	size_t len = 0;
	const char *tracked[] = {"ls-files", "-z", NULL};
	const char *both[] = {"ls-files", "-z", "--cached", "--others", "--exclude-standard", NULL};
	int rc = host_git(scratch, top, untracked ? both : tracked, &out, &len, false, op);
	if (rc) {
		free(out);
		return rc;
	}
	*files = json_array();
	bng_sha256 h;
	bng_sha256_init(&h);
	for (size_t i = 0; i < len;) {
		size_t n = strnlen(out + i, len - i);
		json_t *s = json_stringn_nocheck(out + i, n);
		/* ls-files lists a path once per stage during a merge */
		size_t k = json_array_size(*files);
		if (!(k && !strcmp(json_string_value(json_array_get(*files, k - 1)), json_string_value(s))))
			json_array_append(*files, s);
		json_decref(s);
		bng_sha256_update(&h, out + i, n + 1);
		i += n + 1;
	}
	uint8_t d[BNG_SHA256_LEN];
	char hex[65];
	bng_sha256_final(&h, d);
	bng_sha256_hex(d, hex);
	*digest = bng_asprintf("sha256:%s", hex);
	free(out);
	return 0;
}

/* What the host tree looked like when shipped: HEAD and, for each listed
 * file, its type, mode, size and mtime (a symlink's target too). A later
 * equal state means nothing a prepare would ship has changed (an edit that
 * keeps size and mtime to the nanosecond aside). */
static char *tree_state(const char *top, const char *head, json_t *files)
{
	bng_sha256 h;
	bng_sha256_init(&h);
	bng_sha256_update(&h, head, strlen(head) + 1);
	for (size_t i = 0; i < json_array_size(files); i++) {
		const char *name = json_string_value(json_array_get(files, i));
		char *p = bng_asprintf("%s/%s", top, name);
		struct stat st;
		char line[160] = "gone";
		if (lstat(p, &st) == 0)
			snprintf(line, sizeof(line), "%o %lld %lld.%09ld", (unsigned)st.st_mode, (long long)st.st_size,
				 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
		bng_sha256_update(&h, name, strlen(name) + 1);
		bng_sha256_update(&h, line, strlen(line) + 1);
		char target[4096];
		ssize_t n = S_ISLNK(st.st_mode) ? readlink(p, target, sizeof(target)) : -1;
		if (n > 0)
			bng_sha256_update(&h, target, (size_t)n);
		free(p);
	}
	uint8_t d[BNG_SHA256_LEN];
	char hex[65];
	bng_sha256_final(&h, d);
	bng_sha256_hex(d, hex);
	return bng_asprintf("sha256:%s", hex);
}

/* The id of the working tree's content in $PWD (tracked and untracked,
 * ignored files aside) through a throwaway index: the repository's own
 * index is not touched. */
#define GUEST_TREE_ID                                                                                                  \
	"gd=$(git rev-parse --absolute-git-dir)\n"                                                                   \
	"export GIT_INDEX_FILE=\"$gd/banger-tree-index\"\n"                                                          \
	"rm -f \"$GIT_INDEX_FILE\"\n"                                                                                \
	/* from the repository's index, whose stat data spares hashing unchanged files */                       \
	"{ cp \"$gd/index\" \"$GIT_INDEX_FILE\" 2>/dev/null || git read-tree HEAD; }\n"                              \
	"git add -A && t=$(git write-tree)\n"                                                                        \
	"rm -f \"$GIT_INDEX_FILE\"\n"                                                                                \
	"unset GIT_INDEX_FILE\n"

/* One guest command does the whole guest side, its stdin the tar of the
 * staging directory (entries under the guest path's last name): $1 the
 * guest path, $2 the tree id the last shipping recorded ("" when none),
 * $3 "force" or "", $4 the tree id the host computed for a shallow
 * checkout ("" for a full copy). Refuses (exit 3) over a path that is not
 * a checkout or has changes made in the guest since it was shipped. A
 * shallow checkout comes with HEAD's index: the files .git/banger-checkout
 * lists (the ones the host's working tree has as HEAD has them) are
 * checked out from the shipped history, with their stat data, around the
 * working-tree files that came in the stream. Ends with the checkout's
 * tree id on stdout ($2 next time). Every program started costs ~0.1 s
 * under emulation, so a fresh shallow checkout starts five. */
static const char guest_prepare[] =
	"set -e\n"
	"if [ -e \"$1\" ] && [ \"$3\" != force ]; then\n"
	"  c=0\n"
	"  ( [ -d \"$1/.git\" ] || exit 2\n"
	"    cd \"$1\" || exit 2\n"
	"    if [ -n \"$2\" ]; then\n" GUEST_TREE_ID "      [ \"$t\" = \"$2\" ] && exit 0 || exit 2\n    fi\n"
	"    s=$(git status --porcelain 2>/dev/null) || exit 2\n"
	"    [ -z \"$s\" ] ) || c=$?\n"
	"  [ $c = 0 ] || exit 3\n"
	"fi\n"
	"p=${1%/*}\n"
	"[ ! -e \"$1\" ] && [ ! -L \"$1\" ] || rm -rf \"$1\"\n"
	"[ -d \"${p:-/}\" ] || mkdir -p \"${p:-/}\"\n"
	"tar -x -p -f - -C \"${p:-/}\"\n"
	"cd \"$1\"\n"
	"git config --global --replace-all --fixed-value safe.directory \"$1\" \"$1\" 2>/dev/null ||"
	" git config --global --get-all safe.directory 2>/dev/null | grep -qxF \"$1\" ||"
	" git config --global --add safe.directory \"$1\"\n"
	"if [ -n \"$4\" ]; then\n"
	/* $W: 0 (a worker per CPU) for many files, where inflating and writing
	 * them is most of it; 1 for a few, where starting workers costs more */
	"  git -c checkout.workers=\"$W\" checkout-index -u -z --stdin < .git/banger-checkout\n"
	"  rm -f .git/banger-checkout\n"
	"  echo \"$4\"\n"
	"  exit 0\n"
	"fi\n" GUEST_TREE_ID "echo \"$t\"\n";

/* Replaces guest with stage's tree in one guest command (refused over
 * changes made in the guest since the shipping whose tree id was
 * shipped_tree, unless force); shallow_tree is a shallow checkout's tree
 * id (NULL for a full copy), checkout_files how many files it checks out;
 * *tree gets the new checkout's tree id, *sent the stream's size. */
static int ship(bng_engine *e, const bng_vm_row *vm, const char *stage, const char *guest, const char *shipped_tree,
		bool force, const char *shallow_tree, size_t checkout_files, char **tree, size_t *sent, bng_op *op)
{
	bng_agent_link *link;
	bng_vm_row *running;
	int rc = bng_vm_link(e, vm->id, &running, &link);
	if (rc)
		return rc;
	char *base = bng_strdup(strrchr(guest, '/') + 1);
	json_t *spec = json_pack("{s:[s,s,s,s,s,s,s,s],s:[s,s,s]}", "argv", "sh", "-c", guest_prepare, "sh", guest,
				 shipped_tree ? shipped_tree : "", force ? "force" : "", shallow_tree ? shallow_tree : "",
				 "env", "HOME=/root", "TAR_OPTIONS=--delay-directory-restore",
				 checkout_files >= 1000 ? "W=0" : "W=1");
	bng_output c = {0};
	int code = -1;
	rc = bng_vm_tar_in(link, running, stage, base, spec, &c, &code, sent, op);
	if (!rc && code == 3)
		rc = bng_err(BANGER_EEXIST,
			     "%s in the VM has changes made since it was shipped, or is not a checkout (they would be "
			     "lost): export them first, or use force",
			     guest);
	else if (!rc && code)
		rc = bng_err(BANGER_EIO, "preparing the checkout in the VM failed (is git installed there?): %s",
			     said(&c));
	if (!rc) {
		size_t n = c.len[0];
		while (n && c.buf[0][n - 1] == '\n')
			n--;
		*tree = bng_asprintf("%.*s", (int)n, c.buf[0] ? c.buf[0] : "");
	}
	bng_output_free(&c);
	json_decref(spec);
	free(base);
	bng_agent_link_unref(link);
	bng_vm_free(running);
	return rc;
}

/* NUL-separated names (git -z output) as the keys of a set. */
static json_t *name_set(const char *out, size_t len)
{
	json_t *set = json_object();
	for (size_t i = 0; i < len;) {
		size_t n = strnlen(out + i, len - i);
		if (n)
			json_object_set_new_nocheck(set, out + i, json_true());
		i += n + 1;
	}
	return set;
}

/* Appends name and its NUL to f; false on a write error. */
static bool put_z(FILE *f, const char *name) { return fwrite(name, 1, strlen(name) + 1, f) == strlen(name) + 1; }

/* Shallow mode's working tree: each listed file the host has as HEAD has
 * it (a tracked path git does not report as changed) goes on the list of
 * files the guest checks out from the shipped history, written to
 * stage/.git/banger-checkout; every other listed file (changed, added,
 * untracked) is copied into stage to travel as it is. Paths gone from the
 * working tree go nowhere, so they read as deleted in the guest. The
 * copied and the deleted paths go to changes_path, NUL-separated (*changes
 * counts them). nfiles and bytes count the working tree, overlaid what is
 * copied. */
static int split_tree(const char *scratch, const char *top, const char *stage, json_t *files, const char *changes_path,
		      size_t *changes, size_t *nfiles, size_t *bytes, size_t *overlaid, bng_op *op)
{
	char *out = NULL;
	size_t len = 0;
	int rc = host_git(scratch, top, (const char *[]){"ls-tree", "-r", "-z", "--name-only", "--full-tree", "HEAD", NULL},
			  &out, &len, false, op);
	json_t *head = rc ? NULL : name_set(out, len);
	free(out);
	out = NULL;
	/* without refreshing the host's index: a file only its stat data calls
	 * changed is copied, which costs bytes, never correctness */
	if (!rc)
		rc = host_git(scratch, top, (const char *[]){"diff-index", "-z", "--name-only", "--no-renames", "HEAD", NULL},
			      &out, &len, false, op);
	json_t *changed = rc ? NULL : name_set(out, len), *checked = json_object();
	free(out);
	char *list_path = bng_asprintf("%s/.git/banger-checkout", stage);
	FILE *list = rc ? NULL : fopen(list_path, "we"), *chg = rc ? NULL : fopen(changes_path, "we");
	if (!rc && (!list || !chg))
		rc = bng_err_errno(BANGER_EIO, errno, "cannot write %s", !list ? list_path : changes_path);
	bng_op_event(op, json_pack("{s:s,s:I}", "stage", "overlay", "total", (json_int_t)json_array_size(files)));
	for (size_t i = 0; !rc && i < json_array_size(files); i++) {
		const char *name = json_string_value(json_array_get(files, i));
		char *p = bng_asprintf("%s/%s", top, name);
		struct stat st;
		bool kept = lstat(p, &st) == 0 && (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode));
		free(p);
		if (!kept)
			continue;
		if (json_object_get(head, name) && !json_object_get(changed, name)) {
			if (!put_z(list, name))
				rc = bng_err_errno(BANGER_EIO, errno, "cannot write %s", list_path);
			json_object_set_new_nocheck(checked, name, json_true());
			*bytes += (size_t)st.st_size;
			(*nfiles)++;
			continue;
		}
		bool one = false;
		size_t before = *bytes;
		rc = overlay_one(top, stage, name, bytes, &one);
		if (!rc && one && !put_z(chg, name))
			rc = bng_err_errno(BANGER_EIO, errno, "cannot write %s", changes_path);
		if (one) {
			json_object_set_new_nocheck(checked, name, json_true());
			(*nfiles)++;
			(*overlaid)++;
			(*changes)++;
		} else {
			*bytes = before;
		}
	}
	const char *name;
	json_t *v;
	json_object_foreach(head, name, v) {
		if (rc || json_object_get(checked, name))
			continue;
		if (!put_z(chg, name)) /* in HEAD, not in what goes: deleted */
			rc = bng_err_errno(BANGER_EIO, errno, "cannot write %s", changes_path);
		(*changes)++;
	}
	if (list && fclose(list) != 0 && !rc)
		rc = bng_err_errno(BANGER_EIO, errno, "cannot write %s", list_path);
	if (chg && fclose(chg) != 0 && !rc)
		rc = bng_err_errno(BANGER_EIO, errno, "cannot write %s", changes_path);
	free(list_path);
	json_decref(head);
	json_decref(changed);
	json_decref(checked);
	return rc;
}

/* The tree id the guest's checkout will have: HEAD's with the changed
 * paths (the copied ones in stage, the deleted ones absent) staged over
 * it, computed here where hashing is cheap. stage's index is left as
 * HEAD's, which the guest's checkout starts from. */
static int shallow_tree_id(const char *scratch, const char *stage, const char *changes_path, size_t changes,
			   char **tree, bng_op *op)
{
	int rc = host_git(scratch, stage, (const char *[]){"read-tree", "HEAD", NULL}, NULL, NULL, false, op);
	if (rc || !changes)
		return rc ? rc : host_git(scratch, stage, (const char *[]){"rev-parse", "HEAD^{tree}", NULL}, tree, NULL, true, op);
	char *from = bng_asprintf("--pathspec-from-file=%s", changes_path);
	/* -f: a path the host ignores but ships (staged there) is staged here too */
	rc = host_git(scratch, stage,
		      (const char *[]){"--literal-pathspecs", "add", "-A", "-f", from, "--pathspec-file-nul", NULL}, NULL,
		      NULL, false, op);
	free(from);
	if (!rc)
		rc = host_git(scratch, stage, (const char *[]){"write-tree", NULL}, tree, NULL, true, op);
	if (!rc)
		rc = host_git(scratch, stage, (const char *[]){"read-tree", "HEAD", NULL}, NULL, NULL, false, op);
	return rc;
}

int bng_m_vm_workspace_prepare(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	const char *path = json_string_value(json_object_get(params, "path"));
	const char *guest = json_string_value(json_object_get(params, "guest_path"));
	const char *mode = json_string_value(json_object_get(params, "mode"));
	bool dry = json_is_true(json_object_get(params, "dry_run"));
	bool untracked = json_is_true(json_object_get(params, "include_untracked"));
	bool force = json_is_true(json_object_get(params, "force"));
	if (!guest)
		guest = "/root/repo";
	if (!path || path[0] != '/')
		return bng_err(BANGER_EINVAL, "vm.workspace.prepare: path must be an absolute host path");
	/* the last name is the top of the tar stream: one plain name per component */
	char guest_buf[PATH_MAX];
	size_t glen = strlen(guest);
	while (glen > 1 && guest[glen - 1] == '/')
		glen--;
	bool plain = guest[0] == '/' && glen > 1 && glen < sizeof(guest_buf);
	if (plain) {
		memcpy(guest_buf, guest, glen);
		guest_buf[glen] = '\0';
		guest = guest_buf;
		const char *last = strrchr(guest, '/') + 1;
		plain = !strstr(guest, "//") && !strstr(guest, "/./") && !strstr(guest, "/../") && strcmp(last, ".") &&
			strcmp(last, "..");
	}
	if (!plain)
		return bng_err(BANGER_EINVAL, "vm.workspace.prepare: guest_path must be an absolute path below / "
					      "without . or .. components");
	if (!mode)
		mode = "shallow";
	if (strcmp(mode, "shallow") && strcmp(mode, "full_copy"))
		return bng_err(BANGER_EINVAL, "workspace mode '%s': shallow (default) or full_copy", mode);
	bool full = !strcmp(mode, "full_copy");
	bng_vm_row *vm = NULL;
	int rc = 0;
	if (json_object_get(params, "name"))
		rc = vm_row(e, params, &vm);
	else if (!dry) /* only a dry run (vm run --dry-run) goes without a VM */
		rc = bng_err(BANGER_EINVAL, "vm.workspace.prepare needs a VM name (name)");
	if (rc)
		return rc;
	char *scratch = bng_asprintf("%s/ws-XXXXXX", e->tmp_dir);
	if (bng_mkdir_p(e->tmp_dir, 0700) != 0 || !mkdtemp(scratch)) {
		rc = bng_err_errno(BANGER_EIO, errno, "cannot make a staging directory in %s", e->tmp_dir);
		free(scratch);
		bng_vm_free(vm);
		return rc;
	}
	char *top = NULL, *head = NULL, *digest = NULL, *tree = NULL, *shallow_tree = NULL;
	json_t *files = NULL;
	char *stage = bng_asprintf("%s/repo", scratch);
	rc = inspect(scratch, path, full, &top, &head, op);
	if (!rc)
		rc = list_files(scratch, top, untracked, &files, &digest, op);
	size_t bytes = 0, shipped = 0, overlaid = 0, sent = 0;
	if (!rc && dry && full) {
		count_tree(top, &shipped, &bytes); /* everything under top goes: no list to show */
		*result = json_pack("{s:s,s:s,s:s,s:I,s:I,s:b}", "guest_path", guest, "head_commit", head, "mode", mode,
				    "files", (json_int_t)shipped, "bytes", (json_int_t)bytes, "dry_run", 1);
	} else if (!rc && dry) {
		for (size_t i = 0; i < json_array_size(files); i++) {
			struct stat st;
			char *p = bng_asprintf("%s/%s", top, json_string_value(json_array_get(files, i)));
			if (lstat(p, &st) == 0 && (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
				bytes += (size_t)st.st_size;
			free(p);
		}
		/* names that are not UTF-8 cannot be JSON strings: base64 in file_list_b64 */
		json_t *list = json_array(), *b64 = json_array();
		for (size_t i = 0; i < json_array_size(files); i++) {
			json_t *f = json_array_get(files, i);
			json_t *s = name_or_b64(json_string_value(f), json_string_length(f), b64);
			if (s)
				json_array_append_new(list, s);
		}
		*result = json_pack("{s:s,s:s,s:s,s:o,s:I,s:I,s:b}", "guest_path", guest, "head_commit", head, "mode",
				    mode, "file_list", list, "files", (json_int_t)json_array_size(files), "bytes",
				    (json_int_t)bytes, "dry_run", 1);
		if (json_array_size(b64))
			json_object_set(*result, "file_list_b64", b64);
		json_decref(b64);
	} else if (!rc) {
		if (full) {
			/* the directory as it is: .git, submodules, untracked and ignored files */
			count_tree(top, &shipped, &bytes);
		} else {
			bng_op_event(op, json_pack("{s:s}", "stage", "clone"));
			char *url = bng_asprintf("file://%s", top);
			rc = host_git(scratch, NULL,
				      (const char *[]){"clone", "-q", "--no-checkout", "--depth", "10", url, stage, NULL}, NULL,
				      NULL, false, op);
			free(url);
			char *cloned = NULL;
			if (!rc) /* HEAD's commit must be the clone's: a detached HEAD is not what a clone follows */
				rc = host_git(scratch, stage, (const char *[]){"rev-parse", "HEAD", NULL}, &cloned, NULL, true, op);
			if (!rc && strcmp(cloned, head)) {
				rc = host_git(scratch, stage, (const char *[]){"fetch", "-q", "--depth", "10", "origin", head, NULL},
					      NULL, NULL, false, op);
				if (!rc)
					rc = host_git(scratch, stage, (const char *[]){"update-ref", "--no-deref", "HEAD", head, NULL},
						      NULL, NULL, false, op);
			}
			free(cloned);
			char *origin = rc ? NULL : host_config(scratch, top, "remote.origin.url", op);
			if (!rc)
				rc = origin ? host_git(scratch, stage,
						       (const char *[]){"remote", "set-url", "origin", origin, NULL}, NULL, NULL,
						       false, op)
					    : host_git(scratch, stage, (const char *[]){"remote", "remove", "origin", NULL}, NULL,
						       NULL, false, op);
			free(origin);
			static const char *const identity[] = {"user.name", "user.email"};
			for (size_t i = 0; !rc && i < BNG_ARRAY_LEN(identity); i++) {
				char *v = host_config(scratch, top, identity[i], op);
				if (v)
					rc = host_git(scratch, stage, (const char *[]){"config", identity[i], v, NULL}, NULL, NULL,
						      false, op);
				free(v);
			}
			char *changes_path = bng_asprintf("%s/changes", scratch);
			size_t changes = 0;
			if (!rc)
				rc = split_tree(scratch, top, stage, files, changes_path, &changes, &shipped, &bytes, &overlaid, op);
			if (!rc)
				rc = shallow_tree_id(scratch, stage, changes_path, changes, &shallow_tree, op);
			free(changes_path);
		}
		if (!rc) {
			bng_op_event(op, json_pack("{s:s,s:I,s:I}", "stage", "ship", "files", (json_int_t)shipped, "bytes",
						   (json_int_t)bytes));
			json_t *prev = NULL;
			const char *id = vm->id;
			bng_store_query(&e->store, &prev, "SELECT guest_path, guest_tree FROM workspaces WHERE vm_id = ?1",
					1, &id);
			json_t *row0 = json_array_get(prev, 0);
			const char *was = json_string_value(json_object_get(row0, "guest_path"));
			rc = ship(e, vm, full ? top : stage, guest,
				  was && !strcmp(was, guest) ? json_string_value(json_object_get(row0, "guest_tree")) : NULL,
				  force, shallow_tree, shipped - overlaid, &tree, &sent, op);
			json_decref(prev);
		}
		if (!rc) {
			char now[32];
			bng_now_iso(now);
			char *state = tree_state(top, head, files);
			const char *row[] = {vm->id, top, guest, mode, head, digest,
					     now, state, untracked ? "1" : "0", tree};
			rc = bng_store_run(&e->store,
					   "INSERT OR REPLACE INTO workspaces (vm_id, host_path, guest_path, mode, head_commit,"
					   " files_digest, created_at, tree_state, include_untracked, guest_tree)"
					   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
					   10, row);
			free(state);
		}
		if (!rc)
			*result = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I}", "guest_path", guest, "host_path", top,
					    "head_commit", head, "mode", mode, "files", (json_int_t)shipped, "bytes",
					    (json_int_t)bytes, "overlaid", (json_int_t)(full ? shipped : overlaid), "sent_bytes",
					    (json_int_t)sent);
	}
	bng_rm_rf(scratch);
	free(scratch);
	free(stage);
	free(tree);
	free(shallow_tree);
	free(top);
	free(head);
	free(digest);
	json_decref(files);
	bng_vm_free(vm);
	return rc;
}

/* ---- vm.workspace.show ---- */

static int workspace_row(bng_engine *e, const bng_vm_row *vm, json_t **ws)
{
	json_t *rows = NULL;
	const char *id = vm->id;
	int rc = bng_store_query(&e->store, &rows,
				 "SELECT host_path, guest_path, mode, head_commit, files_digest, created_at, tree_state,"
				 " include_untracked FROM workspaces WHERE vm_id = ?1",
				 1, &id);
	if (!rc && json_array_size(rows) == 0)
		rc = bng_err(BANGER_ENOTFOUND, "VM '%s' has no workspace", vm->name);
	if (!rc) {
		*ws = json_incref(json_array_get(rows, 0));
		json_object_set_new(*ws, "vm", json_string(vm->name));
		json_object_set_new(*ws, "include_untracked",
				    json_boolean(json_integer_value(json_object_get(*ws, "include_untracked"))));
	}
	json_decref(rows);
	return rc;
}

int bng_m_vm_workspace_show(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)op;
	bng_vm_row *vm = NULL;
	int rc = vm_row(e, params, &vm);
	if (!rc)
		rc = workspace_row(e, vm, result);
	bng_vm_free(vm);
	return rc;
}

/* ---- vm.workspace.status ---- */

int bng_m_vm_workspace_status(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	bng_vm_row *vm = NULL;
	json_t *ws = NULL;
	int rc = vm_row(e, params, &vm);
	if (!rc)
		rc = workspace_row(e, vm, &ws);
	char *scratch = NULL, *top = NULL, *head = NULL, *digest = NULL, *state = NULL;
	json_t *files = NULL;
	const char *why = NULL;
	if (!rc) {
		scratch = bng_asprintf("%s/wss-XXXXXX", e->tmp_dir);
		if (bng_mkdir_p(e->tmp_dir, 0700) != 0 || !mkdtemp(scratch))
			rc = bng_err_errno(BANGER_EIO, errno, "cannot make a scratch directory in %s", e->tmp_dir);
	}
	const char *host = json_string_value(json_object_get(ws, "host_path"));
	if (!rc && inspect(scratch, host, true, &top, &head, op) != 0) {
		why = "the host repository is gone or no longer a repository";
	} else if (!rc) {
		const char *was = json_string_value(json_object_get(ws, "head_commit"));
		rc = list_files(scratch, top, json_is_true(json_object_get(ws, "include_untracked")), &files, &digest, op);
		if (!rc)
			state = tree_state(top, head, files);
		if (!rc && strcmp(head, was))
			why = "the host's HEAD moved since the workspace was shipped";
		else if (!rc && strcmp(state, json_string_value(json_object_get(ws, "tree_state")) ?: ""))
			why = "files in the host tree changed since the workspace was shipped";
	}
	/* whether the checkout is there at all: a prepare killed half way, or
	 * a user, can remove it; null when the VM does not run */
	json_t *present = json_null();
	bng_agent_link *link = NULL;
	bng_vm_row *running = NULL;
	if (!rc && !strcmp(vm->state, "running") &&
	    bng_vm_link(e, vm->id, &running, &link) == 0) {
		bng_output c = {0};
		int code = 0;
		if (guest_sh(link, running, op, "[ -d \"$1/.git\" ]",
			     json_pack("[s]", json_string_value(json_object_get(ws, "guest_path"))), &c, &code) == 0)
			present = json_boolean(code == 0);
		bng_output_free(&c);
		bng_agent_link_unref(link);
		bng_vm_free(running);
	}
	if (!rc) /* a failed probe leaves present null; rc's own message stays */
		bng_err_clear();
	if (!rc && json_is_false(present) && !why)
		why = "the checkout is missing in the guest";
	if (!rc) {
		*result = json_incref(ws);
		json_object_set_new(*result, "guest_present", present);
		present = NULL;
		json_object_set_new(*result, "changed", json_boolean(why != NULL));
		json_object_set_new(*result, "reason", why ? json_string(why) : json_null());
		json_object_set_new(*result, "host_head", head ? json_string(head) : json_null());
		json_object_del(*result, "tree_state");
	}
	if (scratch)
		bng_rm_rf(scratch);
	free(scratch);
	free(top);
	free(head);
	free(digest);
	free(state);
	json_decref(files);
	json_decref(present);
	json_decref(ws);
	bng_vm_free(vm);
	return rc;
}

/* ---- vm.workspace.export ---- */

/* Prints the name-status list (raw, -z), a NUL, then the patch: one diff
 * makes both, since each program started costs ~0.1 s under emulation.
 * The diff is of the working tree against $2 (guest commits included),
 * through a hard link of the repository's index in the git dir: its stat
 * data spare hashing the files that did not change, and what git writes
 * (the diff's stat refresh, intent-to-add entries) goes through a lock
 * file renamed over the link, never into .git/index; no object is written
 * either. Untracked files that are not ignored (listed meanwhile, from
 * the real index) become intent-to-add entries, so the patch has them as
 * new files, paired with deleted ones as renames; git add runs only when
 * there are some (a git without --pathspec-from-file, or a file gone
 * since it was listed, makes it stage everything in a copy of the index
 * instead, as add -A does). The names end in the shell's pid: exports that
 * overlap do not share them, and the next export removes a killed one's. */
static const char guest_export[] =
	"set -e\n"
	"cd \"$1\"\n"
	"if [ -d .git ]; then gd=$PWD/.git; else gd=$(git rev-parse --absolute-git-dir); fi\n"
	/* what a killed export left: its pid (the name's middle; git adds .lock) runs no more */
	"for f in \"$gd\"/banger-export-index.* \"$gd\"/banger-export-new.*; do\n"
	"  p=${f#\"$gd\"/banger-export-*.}; p=${p%%.*}; [ ! -e \"$f\" ] || [ -d \"/proc/$p\" ] || rm -f \"$f\"\n"
	"done\n"
	"i=$gd/banger-export-index.$$ n=$gd/banger-export-new.$$\n"
	"trap 'rm -f \"$i\" \"$n\"' EXIT\n"
	"git ls-files -o --exclude-standard -z >\"$n\" &\n"
	"export GIT_INDEX_FILE=\"$i\"\n"
	"ln -f \"$gd/index\" \"$i\" 2>/dev/null || cp \"$gd/index\" \"$i\" 2>/dev/null || { rm -f \"$i\"; git read-tree \"$2\"; }\n"
	"wait $!\n"
	"d='--patch-with-raw -z --binary --no-ext-diff --no-textconv --ignore-submodules=dirty'\n"
	"if [ ! -s \"$n\" ]; then git diff $d \"$2\"\n"
	"elif git --literal-pathspecs add -N --pathspec-from-file=\"$n\" --pathspec-file-nul 2>/dev/null; then\n"
	"  git diff $d \"$2\"\n"
	/* a git before 2.26, or a file gone since it was listed: stage all of
	 * it in a copy of the index, as add -A does (writing objects) */
	"else\n"
	"  rm -f \"$i\"; cp \"$gd/index\" \"$i\" 2>/dev/null || git read-tree \"$2\"\n"
	"  git add -A && git diff --cached $d \"$2\"\n"
	"fi\n";

/* f[key] = name, or f[key_b64] = its base64 when it is not UTF-8. */
static void put_name(json_t *f, const char *key, const char *name)
{
	json_t *s = json_stringn(name, strlen(name));
	if (s) {
		json_object_set_new(f, key, s);
		return;
	}
	char *k = bng_asprintf("%s_b64", key), *enc = bng_base64(name, strlen(name));
	json_object_set_new(f, k, json_string(enc));
	free(k);
	free(enc);
}

int bng_m_vm_workspace_export(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	bng_vm_row *vm = NULL;
	json_t *ws = NULL;
	int rc = vm_row(e, params, &vm);
	if (!rc)
		rc = workspace_row(e, vm, &ws);
	const char *base = json_string_value(json_object_get(params, "base_commit"));
	if (!base)
		base = json_string_value(json_object_get(ws, "head_commit"));
	if (!rc && (!base || !*base || base[0] == '-'))
		rc = bng_err(BANGER_EINVAL, "vm.workspace.export: invalid base_commit");
	bng_agent_link *link = NULL;
	bng_vm_row *running = NULL;
	if (!rc)
		rc = bng_vm_link(e, vm->id, &running, &link);
	bng_output c = {0};
	int code = 0;
	if (!rc)
		rc = guest_sh(link, running, op, guest_export,
			      json_pack("[s,s]", json_string_value(json_object_get(ws, "guest_path")), base), &c, &code);
	if (!rc && code)
		rc = bng_err(BANGER_EIO, "export in the VM failed with status %d: %s", code, said(&c));
	if (!rc) {
		/* ":<modes> <ids> <status>\0<path>\0" (a second path for renames and
		 * copies) per file, a NUL, then the patch */
		const char *p = c.buf[0] ? c.buf[0] : "", *stop = p + c.len[0];
		json_t *list = json_array();
		while (!rc && p < stop && *p == ':') {
			const char *hdr_end = memchr(p, '\0', (size_t)(stop - p)), *status = hdr_end;
			while (status && status > p && status[-1] != ' ')
				status--;
			if (!hdr_end || hdr_end + 1 >= stop || status == p) {
				rc = bng_err(BANGER_EPROTO, "export in the VM printed a file list git does not make");
				break;
			}
			const char *a = hdr_end + 1;
			p = a + strnlen(a, (size_t)(stop - a)) + 1;
			json_t *f = json_pack("{s:s#}", "status", status, (int)strcspn(status, "0123456789"));
			if ((status[0] == 'R' || status[0] == 'C') && p < stop) {
				put_name(f, "from", a);
				a = p;
				p += strnlen(p, (size_t)(stop - p)) + 1;
			}
			put_name(f, "path", a);
			json_array_append_new(list, f);
		}
		if (p < stop && *p == '\0')
			p++;
		const char *patch = p > stop ? stop : p;
		size_t plen = (size_t)(stop - patch);
		if (rc) {
			json_decref(list);
			goto out;
		}
		*result = json_pack("{s:s,s:o}", "base_commit", base, "files", list);
		json_t *s = json_stringn(patch, plen);
		if (s) {
			json_object_set_new(*result, "patch", s);
		} else {
			char *b64 = bng_base64(patch, plen);
			json_object_set_new(*result, "patch_b64", json_string(b64));
			free(b64);
		}
	}
out:
	bng_output_free(&c);
	if (link)
		bng_agent_link_unref(link);
	bng_vm_free(running);
	json_decref(ws);
	bng_vm_free(vm);
	return rc;
}

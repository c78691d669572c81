/* banger ssh-config: stock OpenSSH reaches every VM as <name>.vm. The
 * library keeps <state>/ssh/config (a Host stanza per VM and the Host *.vm
 * defaults) and <state>/ssh/known_hosts current; --install puts one marked
 * Include of that config at the top of ~/.ssh/config (an Include after a
 * Host line would only apply inside that Host), --uninstall takes exactly
 * those lines out again. The user's own lines are never rewritten. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BEGIN_MARK "# >>> banger: VMs as <name>.vm (banger ssh-config --uninstall removes this) >>>\n"
#define END_MARK "# <<< banger <<<\n"

static char *user_ssh_config(void)
{
	const char *home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : NULL;
	}
	char *path = NULL;
	if (home && asprintf(&path, "%s/.ssh/config", home) < 0)
		path = NULL;
	return path;
}

/* The whole file in *text (NUL-terminated; "" when it does not exist). */
static int read_all(const char *path, char **text, size_t *len, mode_t *mode)
{
	*text = NULL;
	*len = 0;
	*mode = 0600;
	FILE *f = fopen(path, "rb");
	if (!f)
		return errno == ENOENT ? (*text = strdup(""), 0) : -errno;
	struct stat st;
	if (fstat(fileno(f), &st) == 0)
		*mode = st.st_mode & 07777;
	size_t cap = 4096;
	char *buf = malloc(cap);
	size_t n;
	while ((n = fread(buf + *len, 1, cap - *len - 1, f)) > 0) {
		*len += n;
		if (cap - *len < 2)
			buf = realloc(buf, cap *= 2);
	}
	int err = ferror(f) ? -EIO : 0;
	fclose(f);
	buf[*len] = '\0';
	*text = buf;
	return err;
}

/* Writes next to the real file (a dotfile manager's symlink stays a
 * symlink) and renames over it, so a crash leaves the old or new file. */
static int write_atomic(const char *path, const char *data, size_t len, mode_t mode)
{
	char *real = realpath(path, NULL);
	const char *target = real ? real : path;
	char *tmp = NULL;
	if (asprintf(&tmp, "%s.banger-tmp", target) < 0) {
		free(real);
		return -ENOMEM;
	}
	int err = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		err = -errno;
	for (size_t off = 0; !err && off < len;) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno != EINTR)
			err = -errno;
		else if (w > 0)
			off += (size_t)w;
	}
	if (fd >= 0 && !err && (fchmod(fd, mode) || fsync(fd)))
		err = -errno;
	if (fd >= 0 && close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, target))
		err = -errno;
	if (err)
		unlink(tmp);
	free(tmp);
	free(real);
	return err;
}

/* Where the managed block starts and ends in text (*end just past it). */
static bool find_block(const char *text, size_t *start, size_t *end)
{
	for (const char *p = text; (p = strstr(p, BEGIN_MARK));) {
		if (p == text || p[-1] == '\n') {
			const char *e = strstr(p, END_MARK);
			if (!e)
				return false;
			*start = (size_t)(p - text);
			*end = (size_t)(e - text) + strlen(END_MARK);
			return true;
		}
		p++;
	}
	return false;
}

int cmd_ssh_config(const command *cmd, args *a)
{
	(void)cmd;
	bool install = flag_set(a, "--install"), uninstall = flag_set(a, "--uninstall");
	if (install && uninstall)
		return fail(EXIT_USAGE, "--install and --uninstall exclude each other");
	json_t *res = NULL;
	int rc;
	if (!uninstall && (rc = call_default("vm.ssh_config", &res)) != 0)
		return api_fail(rc);
	if (!install && !uninstall) {
		if (a->json) {
			print_json(res);
		} else {
			char *text;
			size_t len;
			mode_t mode;
			if (read_all(json_string_value(json_object_get(res, "config")), &text, &len, &mode) == 0)
				fputs(text, stdout);
			free(text);
			printf("# `banger ssh-config --install` adds to ~/.ssh/config:\n#   Include \"%s\"\n",
			       json_string_value(json_object_get(res, "config")));
		}
		json_decref(res);
		return 0;
	}

	char *path = user_ssh_config();
	if (!path) {
		json_decref(res);
		return fail(1, "cannot find your home directory (set HOME)");
	}
	char *text, *block = NULL;
	size_t len, start, end;
	mode_t mode;
	int err = read_all(path, &text, &len, &mode);
	if (err) {
		rc = fail(1, "cannot read %s: %s", path, strerror(-err));
		json_decref(res);
		free(text);
		free(path);
		return rc;
	}
	bool has = find_block(text, &start, &end);
	const char *status;
	char *out = NULL;
	size_t out_len = 0;
	if (install) {
		if (asprintf(&block, BEGIN_MARK "Include \"%s\"\n" END_MARK,
			     json_string_value(json_object_get(res, "config"))) < 0)
			block = NULL;
		size_t blen = block ? strlen(block) : 0;
		if (has && end - start == blen && !memcmp(text + start, block, blen)) {
			status = "already installed";
		} else {
			/* a new block goes first; an old one is replaced where it is */
			size_t at = has ? start : 0, skip = has ? end - start : 0;
			out_len = len - skip + blen;
			out = malloc(out_len + 1);
			memcpy(out, text, at);
			memcpy(out + at, block, blen);
			memcpy(out + at + blen, text + at + skip, len - at - skip);
			status = has ? "updated" : "installed";
		}
	} else if (has) {
		out_len = len - (end - start);
		out = malloc(out_len + 1);
		memcpy(out, text, start);
		memcpy(out + start, text + end, len - end);
		status = "uninstalled";
	} else {
		status = "not installed";
	}
	if (out) {
		char *dir = strdup(path);
		*strrchr(dir, '/') = '\0';
		if (mkdir(dir, 0700) && errno != EEXIST)
			err = -errno;
		free(dir);
		if (!err && uninstall && out_len == 0)
			err = unlink(path) ? -errno : 0; /* nothing of the user's was there */
		else if (!err)
			err = write_atomic(path, out, out_len, mode);
	}
	if (err) {
		rc = fail(1, "cannot write %s: %s", path, strerror(-err));
	} else if (a->json) {
		json_t *j = json_pack("{s:s,s:s}", "path", path, "status", status);
		print_json(j);
		json_decref(j);
		rc = 0;
	} else {
		printf("%s: %s\n", path, status);
		if (install)
			printf("try: ssh <vm>.vm\n");
		rc = 0;
	}
	free(out);
	free(block);
	free(text);
	free(path);
	json_decref(res);
	return rc;
}

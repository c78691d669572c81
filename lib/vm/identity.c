/* The developer's identity in the guest, at every start, through the agent
 * (never through the image): the host's global git user.name/user.email
 * into root's ~/.gitconfig, banger's SSH key in authorized_keys (replacing
 * an older banger key), the AI tools' credential files the host has, and
 * the config's [[file_sync]] entries. Host paths must stay inside the
 * owner's home after symlinks are resolved. Nothing here fails a start: a
 * file that cannot be synced becomes a warning event and a line of the
 * report. */
#include "vm.h"
#include "../core/internal.h"
#include "../core/proc.h"
#include "../ssh/ssh.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files larger than this are not synced (credentials and dotfiles are
 * small; a directory or a big file belongs in `vm cp`). */
#define SYNC_MAX_BYTES (16u << 20)

/* Well-known AI tool credentials: host path under ~, guest path. */
static const char *const credentials[][2] = {
	{".local/share/opencode/auth.json", "/root/.local/share/opencode/auth.json"},
	{".claude/.credentials.json", "/root/.claude/.credentials.json"},
	{".pi/agent/auth.json", "/root/.pi/agent/auth.json"},
};

/* Writes stdin to $1 with mode $2 (octal), parents made 0700, replaced
 * atomically. */
static const char put_script[] = "set -e; umask 077; mkdir -p \"$(dirname \"$1\")\"; t=\"$1.banger-tmp\"; "
				 "cat > \"$t\"; chmod \"$2\" \"$t\"; mv -f \"$t\" \"$1\"";

/* The three steps every start makes, in one guest shell (each program
 * the guest starts costs ~0.1 s under emulation, so the shell's builtins
 * do what they can). One line per step on stdout: "ok <step>" or
 * "fail <step> <why>".
 * git ($1 name, $2 email, $3 the [user] section quoted for git's config
 * format; "" skips): a missing or empty ~/.gitconfig gets the section; an
 * other one is set with the guest's git when it has one, unless it holds
 * exactly that section already.
 * resolv ($4; "" skips): /etc/resolv.conf replaced atomically, 0644.
 * keys ($5, an authorized_keys line; "" skips): every authorized key but
 * older banger ones (comment "banger") kept, $5 added unless its key is
 * there already; 0600, replaced atomically. */
static const char base_script[] =
	"umask 077\n"
	"step() { if err=$( { \"$2\"; } 2>&1 ); then echo \"ok $1\"; else echo \"fail $1 $err\" | tr '\\n' ' '; echo; fi; }\n"
	"git_step() {\n"
	"  f=/root/.gitconfig; c=\n"
	"  if [ -s \"$f\" ]; then while IFS= read -r l || [ -n \"$l\" ]; do c=\"$c$l\n\"; done < \"$f\"; fi\n"
	"  if [ ! -s \"$f\" ]; then printf '%s' \"$G3\" > \"$f\"\n"
	"  elif [ \"$c\" != \"$G3\" ] && command -v git >/dev/null 2>&1; then\n"
	"    git config --file \"$f\" user.name \"$G1\" && git config --file \"$f\" user.email \"$G2\"; fi\n"
	"}\n"
	"resolv_step() { umask 022; printf '%s' \"$R\" > /etc/resolv.conf.banger-tmp &&"
	" mv -f /etc/resolv.conf.banger-tmp /etc/resolv.conf; }\n"
	"keys_step() {\n"
	"  [ -d /root/.ssh ] || mkdir -p /root/.ssh\n"
	"  f=/root/.ssh/authorized_keys; k=${K#* }; k=${k%% *}; found=; out=\n"
	"  if [ -f \"$f\" ]; then while IFS= read -r l || [ -n \"$l\" ]; do\n"
	"    case \"$l\" in *\" $k\"*) found=1;; esac\n"
	"    case \"$l\" in *' banger') ;; *) out=\"$out$l\n\";; esac\n"
	"  done < \"$f\"; fi\n"
	"  [ -n \"$found\" ] || { printf '%s%s\\n' \"$out\" \"$K\" > \"$f.banger-tmp\" && mv -f \"$f.banger-tmp\" \"$f\"; }\n"
	"}\n"
	"G1=$1 G2=$2 G3=$3 R=$4 K=$5\n"
	"[ -z \"$G3\" ] || step git git_step\n"
	"[ -z \"$R\" ] || step resolv resolv_step\n"
	"[ -z \"$K\" ] || step keys keys_step\n";

typedef struct {
	bng_agent_link *link;
	bng_vm_row *vm;
	bng_op *op;
	json_t *synced, *warnings;
} sync_ctx;

static void warn(sync_ctx *c, const char *fmt, const char *a, const char *b)
{
	char *msg = bng_asprintf(fmt, a, b);
	json_array_append_new(c->warnings, json_string(msg));
	free(msg);
}

/* Runs `sh -c script sh args...` in the guest with stdin; 0 when it exits 0. */
static int guest_sh(sync_ctx *c, const char *script, const char *const *args, const char *in, size_t in_len,
		    bng_output *keep)
{
	json_t *argv = json_pack("[s,s,s,s]", "sh", "-c", script, "sh");
	for (size_t i = 0; args[i]; i++)
		json_array_append_new(argv, json_string(args[i]));
	json_t *spec = json_pack("{s:o}", "argv", argv);
	bng_output out = {0};
	bng_exec_io io = {.output = bng_output_collect, .ud = &out, .stdin_data = in ? in : "", .stdin_len = in_len};
	int code = -1;
	int rc = bng_vm_guest_run(c->link, c->vm, c->op, spec, &io, 30000, &code, NULL);
	if (!rc && code != 0)
		rc = bng_err(BANGER_EIO, "exit status %d%s%.200s", code, out.len[1] ? ": " : "", out.buf[1] ? out.buf[1] : "");
	if (keep && !rc)
		*keep = out;
	else
		bng_output_free(&out);
	json_decref(spec);
	return rc;
}

static char *owner_home(void)
{
	const char *home = getenv("HOME");
	if (home && home[0] == '/')
		return realpath(home, NULL);
	struct passwd *pw = getpwuid(geteuid());
	return pw ? realpath(pw->pw_dir, NULL) : NULL;
}

/* Copies host (a path the caller resolved inside home) to guest. */
static void put_file(sync_ctx *c, const char *host, const char *shown, const char *guest, const char *mode)
{
	char *data = NULL;
	size_t len = 0;
	struct stat st;
	if (stat(host, &st) != 0 || !S_ISREG(st.st_mode)) {
		warn(c, "%s: not synced: %s", shown, "not a regular file");
		return;
	}
	if (st.st_size > (off_t)SYNC_MAX_BYTES) {
		warn(c, "%s: not synced: %s", shown, "larger than 16 MiB (copy it into the VM instead)");
		return;
	}
	char mode_text[8];
	if (!mode) {
		snprintf(mode_text, sizeof(mode_text), "%o", (unsigned)(st.st_mode & 07777));
		mode = mode_text;
	}
	if (bng_read_file(host, &data, &len) != 0) {
		warn(c, "%s: not synced: %s", shown, banger_error_last());
		return;
	}
	const char *args[] = {guest, mode, NULL};
	if (guest_sh(c, put_script, args, data, len, NULL) == 0)
		json_array_append_new(c->synced, json_string(guest));
	else
		warn(c, "%s: could not be written in the guest: %s", guest, banger_error_last());
	explicit_bzero(data, len);
	free(data);
}

/* host ("~/x" or absolute) resolved; NULL (with a warning) when it is
 * missing or, after symlinks, not inside home. */
static char *inside_home(sync_ctx *c, const char *home, const char *host)
{
	char *want = !strncmp(host, "~/", 2) ? bng_asprintf("%s/%s", home, host + 2) : bng_strdup(host);
	char *real = realpath(want, NULL);
	free(want);
	size_t n = strlen(home);
	if (!real) {
		warn(c, "%s: not synced: %s", host, strerror(errno));
		return NULL;
	}
	if (strncmp(real, home, n) || real[n] != '/') {
		warn(c, "%s: not synced: it resolves to %s, outside your home", host, real);
		free(real);
		return NULL;
	}
	return real;
}

/* The host's global git identity, or NULL when unset. */
static char *host_git(bng_engine *e, const char *key, const char *vm_id)
{
	char *out_path = bng_asprintf("%s/vms/%s/git-identity.out", e->paths.state_dir, vm_id);
	const char *argv[] = {"git", "config", "--global", "--get", key, NULL};
	char *value = NULL;
	size_t len = 0;
	if (bng_run(argv, out_path, NULL, NULL, NULL, NULL) == 0 && bng_read_file(out_path, &value, &len) == 0) {
		while (len && (value[len - 1] == '\n' || value[len - 1] == '\r'))
			value[--len] = '\0';
		if (!len || memchr(value, '\n', len)) {
			free(value);
			value = NULL;
		}
	}
	unlink(out_path);
	free(out_path);
	return value;
}

/* A value in git's config syntax: quoted, \ and " escaped. */
static char *git_quote(const char *v)
{
	char *out = bng_xmalloc(strlen(v) * 2 + 3), *o = out;
	*o++ = '"';
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			*o++ = '\\';
		*o++ = *v;
	}
	*o++ = '"';
	*o = '\0';
	return out;
}

/* git identity, resolver and SSH key in one guest shell (base_script);
 * a step that fails is a warning named as before. */
static void sync_base(bng_engine *e, sync_ctx *c, const char *vm_id)
{
	char *name = host_git(e, "user.name", vm_id), *email = host_git(e, "user.email", vm_id);
	char *section = NULL, *resolv = NULL, *key_line = NULL, *pubkey = NULL;
	if (name && email) {
		char *qn = git_quote(name), *qe = git_quote(email);
		section = bng_asprintf("[user]\n\tname = %s\n\temail = %s\n", qn, qe);
		free(qn);
		free(qe);
	}
	/* the vm. zone first, default_dns for the rest: the guest init writes
	 * only default_dns (an old initramfs too), so this comes after boot */
	if (bng_vm_dns_guest_served(e))
		resolv = bng_asprintf("nameserver %s\nnameserver %s\noptions timeout:2\n",
				      bng_config_str(&e->config, "bridge_ip"), bng_config_str(&e->config, "default_dns"));
	if (bng_ssh_ensure_key(bng_config_str(&e->config, "ssh_key_path"), &pubkey) == 0)
		key_line = bng_asprintf("%s banger", pubkey);
	static const struct {
		const char *step, *path, *warning;
	} steps[] = {
		{"git", "/root/.gitconfig", "git identity: could not be set in the guest: "},
		{"resolv", "/etc/resolv.conf", "/etc/resolv.conf: "},
		{"keys", "/root/.ssh/authorized_keys", "/root/.ssh/authorized_keys: "},
	};
	const char *values[] = {section, resolv, key_line};
	const char *args[] = {section ? name : "", section ? email : "", section ?: "", resolv ?: "", key_line ?: "",
			      NULL};
	bng_output out = {0};
	int rc = (section || resolv || key_line) ? guest_sh(c, base_script, args, NULL, 0, &out) : 0;
	for (size_t i = 0; i < BNG_ARRAY_LEN(steps); i++) {
		if (!values[i])
			continue;
		char *ok = bng_asprintf("ok %s\n", steps[i].step), *fail = bng_asprintf("fail %s ", steps[i].step);
		const char *text = out.buf[0] ? out.buf[0] : "", *f = strstr(text, fail);
		if (!rc && strstr(text, ok)) {
			json_array_append_new(c->synced, json_string(steps[i].path));
		} else {
			const char *why = rc ? banger_error_last() : f ? f + strlen(fail) : "the guest did not say";
			char *line = bng_asprintf("%.*s", (int)strcspn(why, "\n"), why);
			warn(c, "%s%s", steps[i].warning, line);
			free(line);
		}
		free(ok);
		free(fail);
	}
	bng_output_free(&out);
	free(section);
	free(resolv);
	free(key_line);
	free(pubkey);
	free(name);
	free(email);
}

int bng_vm_identity_sync(bng_engine *e, const bng_vm_row *vm, bng_op *op, json_t **report)
{
	sync_ctx c = {.op = op, .synced = json_array(), .warnings = json_array()};
	const char *id = vm->id;
	int rc = bng_vm_link(e, id, &c.vm, &c.link);
	if (rc) {
		json_decref(c.synced);
		json_decref(c.warnings);
		return rc;
	}
	sync_base(e, &c, id);

	char *home = owner_home();
	if (home) {
		char *gone = bng_strdup("");
		for (size_t i = 0; i < BNG_ARRAY_LEN(credentials); i++) {
			char *path = bng_asprintf("%s/%s", home, credentials[i][0]);
			if (access(path, F_OK) != 0) {
				char *more = bng_asprintf("%s%s~/%s", gone, *gone ? ", " : "", credentials[i][0]);
				free(gone);
				gone = more;
			} else {
				char *shown = bng_asprintf("~/%s", credentials[i][0]);
				char *real = inside_home(&c, home, shown);
				if (real)
					put_file(&c, real, shown, credentials[i][1], "600");
				free(real);
				free(shown);
			}
			free(path);
		}
		if (*gone)
			warn(&c, "not in the guest (missing on this host): %s%s", gone, "");
		free(gone);
		size_t i;
		json_t *entry;
		json_array_foreach(json_object_get(e->config.values, "file_sync"), i, entry) {
			const char *host = json_string_value(json_object_get(entry, "host"));
			char *real = inside_home(&c, home, host);
			if (real)
				put_file(&c, real, host, json_string_value(json_object_get(entry, "guest")),
					 json_string_value(json_object_get(entry, "mode")));
			free(real);
		}
	} else {
		warn(&c, "%s%s", "no home directory: credentials and file_sync skipped", "");
	}
	free(home);
	size_t i;
	json_t *w;
	json_array_foreach(c.warnings, i, w) bng_op_event(op, json_pack("{s:s,s:O}", "stage", "identity", "warning", w));
	*report = json_pack("{s:o,s:o}", "synced", c.synced, "warnings", c.warnings);
	bng_agent_link_unref(c.link);
	bng_vm_free(c.vm);
	return 0;
}

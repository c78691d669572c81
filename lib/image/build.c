/* `image.build`: the default image from Debian's package mirror alone:
 * debootstrap into a scratch tree, identity stripped, first-boot units
 * added, then its tar stream through the ext4 writer. The tar is cached by
 * content (suite, variant, packages, mirror), so a rebuild is one pass of
 * the ext4 writer and an unchanged image is returned as it is. */
#include "image.h"
#include "../core/proc.h"
#include "../core/sha256.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What every banger guest needs (sshd for exec, networking, TLS roots, the
 * basics a developer reaches for), and the smallest bootable set. */
static const char full_packages[] = "systemd-sysv,udev,dbus,openssh-server,iproute2,iputils-ping,ca-certificates,"
				    "curl,git,sudo,less,procps,netbase,vim-tiny,locales,tzdata";
static const char minimal_packages[] = "systemd-sysv,udev,openssh-server,iproute2";
/* Without systemd (systemd:false): minbase has no init, so banger's own
 * (the agent's --init mode) boots it and starts its sshd. */
static const char nosystemd_packages[] = "openssh-server,iproute2";
static const char nosystemd_full_packages[] = "openssh-server,iproute2,iputils-ping,ca-certificates,curl,git,sudo,less,"
					      "procps,netbase,vim-tiny,locales,tzdata";

/* sshd refuses to start without host keys, and the image ships none: each
 * VM makes its own on first boot. */
static const char keygen_unit[] =
	"[Unit]\n"
	"Description=banger: generate this VM's SSH host keys\n"
	"Before=ssh.service\n"
	"ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key\n"
	"\n"
	"[Service]\n"
	"Type=oneshot\n"
	"ExecStart=/usr/bin/ssh-keygen -A\n"
	"\n"
	"[Install]\n"
	"WantedBy=ssh.service\n";

typedef struct {
	bng_op *op;
	char last[256]; /* debootstrap's last line: what its failure is named by */
} debootstrap_run;

static void on_line(const char *line, void *ud)
{
	debootstrap_run *run = ud;
	snprintf(run->last, sizeof(run->last), "%s", line);
	if (!strncmp(line, "I: ", 3)) /* debootstrap's progress lines */
		bng_op_event(run->op, json_pack("{s:s,s:s}", "stage", "debootstrap", "message", line + 3));
}

static int write_text(const char *path, const char *text)
{
	return bng_write_file_atomic(path, text, strlen(text), 0644);
}

/* Strips per-VM identity and installs the first-boot key generator. */
static int customise(const char *root)
{
	char *p;
	int rc = 0;
	static const char *const keys[] = {"rsa", "ecdsa", "ed25519", "dsa"};
	for (size_t i = 0; i < BNG_ARRAY_LEN(keys); i++) {
		for (int pub = 0; pub < 2; pub++) {
			p = bng_asprintf("%s/etc/ssh/ssh_host_%s_key%s", root, keys[i], pub ? ".pub" : "");
			unlink(p);
			free(p);
		}
	}
	p = bng_asprintf("%s/etc/machine-id", root); /* empty: systemd makes one per boot */
	rc = write_text(p, "");
	free(p);
	p = bng_asprintf("%s/var/lib/dbus/machine-id", root);
	unlink(p);
	free(p);
	if (!rc) {
		p = bng_asprintf("%s/etc/systemd/system/banger-ssh-keygen.service", root);
		rc = write_text(p, keygen_unit);
		free(p);
	}
	if (!rc) {
		char *dir = bng_asprintf("%s/etc/systemd/system/ssh.service.wants", root);
		rc = bng_mkdir_p(dir, 0755);
		p = bng_asprintf("%s/banger-ssh-keygen.service", dir);
		if (!rc && symlink("/etc/systemd/system/banger-ssh-keygen.service", p) != 0 && errno != EEXIST)
			rc = bng_err_errno(BANGER_EIO, errno, "cannot enable banger-ssh-keygen.service");
		free(p);
		free(dir);
	}
	if (!rc) {
		p = bng_asprintf("%s/etc/hostname", root);
		rc = write_text(p, "banger\n");
		free(p);
	}
	return rc;
}

int bng_m_image_build(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	const char *suite = json_string_value(json_object_get(params, "suite"));
	const char *name = json_string_value(json_object_get(params, "name"));
	const char *mirror = json_string_value(json_object_get(params, "mirror"));
	bool minimal = json_is_true(json_object_get(params, "minimal"));
	bool systemd = !json_is_false(json_object_get(params, "systemd"));
	if (!suite)
		suite = "bookworm";
	if (!mirror)
		mirror = bng_config_str(&e->config, "debian_mirror");
	char *default_name = bng_asprintf("debian-%s%s%s", suite, minimal ? "-minimal" : "", systemd ? "" : "-nosystemd");
	if (!name)
		name = default_name;
	const char *packages = systemd ? (minimal ? minimal_packages : full_packages)
				       : (minimal ? nosystemd_packages : nosystemd_full_packages);
	int rc = bng_check_name(name, "image");
	if (!rc && strspn(suite, "abcdefghijklmnopqrstuvwxyz-") != strlen(suite))
		rc = bng_err(BANGER_EINVAL, "invalid Debian suite '%s'", suite);
	if (rc) {
		free(default_name);
		return rc;
	}

	/* the content key: the same inputs make the same tree */
	char key[72];
	char *recipe = bng_asprintf("debootstrap\nminbase\n%s\n%s\n%s\n%s", suite, packages, mirror, keygen_unit);
	bng_sha256_digest(recipe, strlen(recipe), key);
	free(recipe);

	char *reservation = NULL;
	rc = bng_image_reserve(e, name, op, &reservation);
	if (rc) {
		free(default_name);
		return rc;
	}
	json_t *existing;
	if (bng_image_get(e, name, &existing) == 0) {
		bng_image_release(e, reservation);
		const char *digest = json_string_value(json_object_get(existing, "digest"));
		bool same = digest && !strcmp(digest, key);
		if (same) {
			bng_op_event(op, json_pack("{s:s}", "stage", "cached"));
			*result = existing;
			free(default_name);
			return 0;
		}
		json_decref(existing);
		free(default_name);
		return bng_err(BANGER_EEXIST, "image '%s' exists with other contents", name);
	}

	char *cache_dir = bng_asprintf("%s/rootfs", e->paths.cache_dir);
	char *tar = bng_asprintf("%s/%s.tar", cache_dir, key + strlen("sha256:"));
	char scratch_id[13];
	bng_random_id(scratch_id);
	char *scratch = bng_asprintf("%s/debootstrap-%s", e->tmp_dir, scratch_id);
	char *tree = bng_asprintf("%s/root", scratch);
	char *tmp_tar = bng_asprintf("%s/rootfs.tar", scratch);
	char *log = bng_asprintf("%s/debootstrap.log", scratch);
	rc = bng_mkdir_p(cache_dir, 0700);
	if (!rc && access(tar, R_OK) != 0) {
		if (geteuid() != 0)
			rc = bng_err(BANGER_EPERM, "building %s runs debootstrap, which needs root: run bangerd as root, "
						   "or pull or import an image instead",
				     name);
		char *exe = rc ? NULL : bng_find_exe("debootstrap");
		if (!rc && !exe)
			rc = bng_err(BANGER_EUNSUPPORTED, "debootstrap is not installed: apt-get install debootstrap");
		free(exe);
		if (!rc) {
			bng_rm_rf(scratch);
			rc = bng_mkdir_p(scratch, 0700);
		}
		if (!rc) {
			char *include = bng_asprintf("--include=%s", packages);
			/* a stalled mirror must not hang the build forever (seen: wget stuck for hours) */
			const char *argv[] = {"timeout", "--kill-after=30", "1800", "debootstrap", "--variant=minbase",
					      include, suite, tree, mirror, NULL};
			bng_op_event(op, json_pack("{s:s,s:s}", "stage", "debootstrap", "message", mirror));
			debootstrap_run run = {.op = op, .last = "no output"};
			rc = bng_run(argv, NULL, log, on_line, &run, op);
			if (rc && rc != BANGER_ECANCELED) /* named after debootstrap, not the timeout(1) around it */
				rc = bng_err(rc, "debootstrap of %s from %s failed: %s", suite, mirror, run.last);
			free(include);
		}
		if (!rc)
			rc = customise(tree);
		if (!rc) {
			bng_op_event(op, json_pack("{s:s}", "stage", "tar"));
			const char *argv[] = {"tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", tree, "-cf",
					      tmp_tar, ".", NULL};
			rc = bng_run(argv, NULL, log, NULL, NULL, op);
		}
		if (!rc && rename(tmp_tar, tar) != 0)
			rc = bng_err_errno(BANGER_EIO, errno, "cannot cache %s", tar);
	}
	bng_rm_rf(scratch); /* the tree was only ever a means to the tar */
	if (!rc) {
		json_t *meta = json_pack("{s:s+,s:s}", "source", "debootstrap:", suite, "digest", key);
		const char *tars[] = {tar};
		rc = bng_image_build(e, name, tars, NULL, 1, json_string_value(json_object_get(params, "size")), meta,
				     op, result);
		json_decref(meta);
	}
	bng_image_release(e, reservation);
	free(default_name);
	free(cache_dir);
	free(tar);
	free(scratch);
	free(tree);
	free(tmp_tar);
	free(log);
	return rc;
}

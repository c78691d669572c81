/* doctor's host checks beyond the hypervisor (doctor.c runs them): the
 * privileges the engine's process has for the network it makes, the
 * programs banger runs (only those it really execs: the bridge, taps and
 * NAT go over netlink, so neither `ip` nor `nft` is needed), each with the
 * feature that needs it and the Debian package that has it, and the system
 * service (`banger system install`, tools/banger/cmd_system.c). */
#include "engine.h"
#include "../core/proc.h"
#include "../net/root_helper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CAP_NET_ADMIN_BIT 12

/* remedy (NULL for none) names what fixes the row, for the caller to put
 * in its own words: the CLI turns "system-install" into the command. */
static void check_fix(json_t *out, const char *name, const char *status, char *detail, const char *remedy)
{
	json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:s*}", "name", name, "status", status, "detail", detail,
					     "remedy", remedy));
	free(detail);
}

static void check(json_t *out, const char *name, const char *status, char *detail)
{
	check_fix(out, name, status, detail, NULL);
}

/* The effective capability set of this process (/proc/self/status CapEff). */
static unsigned long long cap_eff(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long caps = 0;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "CapEff:", 7)) {
			caps = strtoull(line + 7, NULL, 16);
			break;
		}
	if (f)
		fclose(f);
	return caps;
}

static void check_privileges(json_t *out)
{
	uid_t uid = geteuid();
	if (uid == 0) {
		check(out, "privileges", "PASS",
		      bng_strdup("running as root: enough for the bridge, taps and NAT rules"));
		return;
	}
	if (cap_eff() & (1ULL << CAP_NET_ADMIN_BIT))
		check(out, "privileges", "PASS",
		      bng_asprintf("uid %u with CAP_NET_ADMIN: enough for the bridge, taps and NAT rules", (unsigned)uid));
	else if (bng_root_ping() == 0)
		check(out, "privileges", "PASS",
		      bng_asprintf("uid %u without CAP_NET_ADMIN: the bridge, taps and NAT rules go through the root "
				   "helper bangerd-root on %s, which serves this uid",
				   (unsigned)uid, bng_root_socket_path()));
	else
		check_fix(out, "privileges", "FAIL",
			  bng_asprintf("uid %u without CAP_NET_ADMIN: this engine cannot make the bridge, taps or NAT "
				       "rules, so VMs cannot start, and the root helper does not serve it (%s)",
				       (unsigned)uid, banger_error_last()),
			  "root-helper");
}

static void check_tun(json_t *out)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		check(out, "tun", "PASS", bng_strdup("/dev/net/tun usable (each VM's tap)"));
		return;
	}
	int e = errno;
	check(out, "tun", "FAIL",
	      e == ENOENT ? bng_strdup("/dev/net/tun is missing: VMs get no tap; load the driver with `modprobe tun`")
			  : bng_asprintf("cannot open /dev/net/tun: %s: VMs get no tap (Debian makes it mode 0666; making "
					 "a tap also needs CAP_NET_ADMIN)",
					 strerror(e)));
}

/* The programs banger runs, with what needs each (grep lib/ for their
 * argv): FAIL where every VM needs it, WARN where one feature does. */
static const struct {
	const char *exe, *feature, *package, *missing;
} tools[] = {
	{"ssh-keygen", "SSH keys: the managed key and each VM's host key (vm create)", "openssh-client", "FAIL"},
	{"ssh", "SSH into VMs (vm ssh, ssh <name>.vm)", "openssh-client", "WARN"},
	{"git", "workspaces (vm run PATH, vm workspace prepare) and the git identity put in guests", "git", "WARN"},
	{"debootstrap", "image build (the Debian image from the mirror, and the default image where no catalog has one)",
	 "debootstrap", "WARN"},
	{"tar", "image build (debootstrap's tree into the image)", "tar", "WARN"},
	{"e2fsck", "opening an image whose journal a kernel left (a VM that was not stopped cleanly)", "e2fsprogs",
	 "WARN"},
	{"apt-get", "the default kernel on a fresh host (linux-image-cloud-amd64 from the distribution)", "apt",
	 "WARN"},
};

static void check_tools(json_t *out)
{
	for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
		char *path = bng_find_exe(tools[i].exe);
		if (path)
			check(out, tools[i].exe, "PASS", bng_asprintf("%s: %s", path, tools[i].feature));
		else
			check(out, tools[i].exe, tools[i].missing,
			      bng_asprintf("%s not found: %s need%s it; apt-get install %s", tools[i].exe, tools[i].feature,
					   tools[i].missing[0] == 'F' ? "" : "s", tools[i].package));
		free(path);
	}
}

static void first_line(const char *line, void *ud)
{
	char **s = ud;
	if (!*s)
		*s = bng_strdup(line);
}

/* `banger system install` (test hooks: BANGER_SYSTEM_ROOT prefixes its
 * paths, BANGER_SYSTEMCTL replaces systemctl; docs/banger.1.md). */
static void check_service(json_t *out, bng_engine *e)
{
	const char *root = getenv("BANGER_SYSTEM_ROOT");
	root = root ? root : "";
	char *meta_path = bng_asprintf("%s/var/lib/banger/install.json", root);
	char *unit = bng_asprintf("%s/etc/systemd/system/bangerd.service", root);
	json_t *meta = json_load_file(meta_path, 0, NULL);
	int meta_errno = meta ? 0 : access(meta_path, R_OK) == 0 ? EINVAL : errno;
	bool has_unit = access(unit, F_OK) == 0;
	if (!meta && meta_errno == ENOENT && !has_unit) {
		check(out, "service", "PASS", bng_strdup("not installed: bangerd starts on demand"));
	} else if (!meta) {
		if (meta_errno == EACCES)
			check_fix(out, "service", "WARN", bng_asprintf("cannot read %s: %s", meta_path, strerror(EACCES)),
				  "system-status");
		else
			check_fix(out, "service", "WARN",
				  bng_asprintf("%s %s", has_unit ? "no readable" : "no", meta_path), "system-install");
	} else if (!has_unit) {
		check_fix(out, "service", "WARN", bng_asprintf("%s has no unit %s", meta_path, unit), "system-install");
	} else {
		const char *exe = getenv("BANGER_SYSTEMCTL");
		const char *argv[] = {exe && *exe ? exe : "systemctl", "is-active", "bangerd.service", NULL};
		char *state = NULL;
		bng_run(argv, NULL, NULL, first_line, &state, NULL); /* exits 3 when inactive: the line says */
		const char *state_dir = json_string_value(json_object_get(meta, "state_dir"));
		char *other = state_dir && strcmp(state_dir, e->paths.state_dir)
				      ? bng_asprintf("; this engine's state is %s, not the service's %s", e->paths.state_dir,
						     state_dir)
				      : bng_strdup("");
		const char *version = json_string_value(json_object_get(meta, "version"));
		const char *at = json_string_value(json_object_get(meta, "installed_at"));
		if (state && !strcmp(state, "active"))
			check(out, "service", "PASS",
			      bng_asprintf("bangerd.service active (banger %s, installed %s)%s", version ? version : "?",
					   at ? at : "?", other));
		else
			check_fix(out, "service", "WARN",
				  bng_asprintf("bangerd.service is %s (journalctl -u bangerd says why)%s",
					       state ? state : "unknown (systemctl did not say)", other),
				  "system-restart");
		free(other);
		free(state);
	}
	json_decref(meta);
	free(meta_path);
	free(unit);
}

void bng_doctor_host_checks(bng_engine *e, json_t *out)
{
	check_privileges(out);
	check_tun(out);
	check_tools(out);
	check_service(out, e);
}

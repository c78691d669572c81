/* The per-VM disk: the sparse overlay made at create, whose upper layer
 * holds what makes the VM itself (SSH keys, hostname, resolver, host key,
 * the first-boot SSH installer), and the guest agent with its systemd
 * unit, put in again at every later boot. */
#include "vm_int.h"
#include "../core/paths.h"
#include "../fs/ext4.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* No start limit: systemd's default gives up after 5 quick failures, and
 * then nothing in the guest answers the host again. */
static const char agent_unit[] = "[Unit]\nDescription=banger guest agent\nDefaultDependencies=no\nStartLimitIntervalSec=0\n"
				 "After=systemd-udevd.service\n\n[Service]\nExecStart=/usr/local/libexec/banger-agent\n"
				 "Restart=always\nRestartSec=1\n\n[Install]\nWantedBy=sysinit.target\n";

/* Images without sshd get one on first boot (vm create --nat), installed by
 * guest/first-boot/banger-first-boot while its marker exists. */
extern const char bng_first_boot_script[]; /* first_boot.c, generated */
static const char first_boot_unit[] =
	"[Unit]\nDescription=banger: install an SSH server on first boot\n"
	"ConditionPathExists=/var/lib/banger/first-boot-pending\nAfter=network.target\n\n"
	"[Service]\nType=oneshot\nExecStart=/usr/local/libexec/banger-first-boot\n\n"
	"[Install]\nWantedBy=multi-user.target\n";

/* Puts program `name` (data) in the VM's layer as /usr/local/libexec/<name>
 * with its systemd unit <name>.service, enabled for `target`. */
static int put_guest_service(bng_ext4 *fs, const char *name, const void *data, size_t len, const char *unit,
			     const char *target)
{
	char *exe = bng_asprintf("upper/usr/local/libexec/%s", name);
	char *unit_path = bng_asprintf("upper/etc/systemd/system/%s.service", name);
	char *wants = bng_asprintf("upper/etc/systemd/system/%s.wants/%s.service", target, name);
	int rc = bng_ext4_put_file(fs, exe, data, len, 0755, 0, 0);
	if (!rc)
		rc = bng_ext4_put_file(fs, unit_path, unit, strlen(unit), 0644, 0, 0);
	if (!rc)
		rc = bng_ext4_put_symlink(fs, wants, unit_path + strlen("upper"));
	free(exe);
	free(unit_path);
	free(wants);
	return rc;
}

/* Puts this banger's guest agent and its unit in the VM's layer. */
static int put_agent(bng_ext4 *fs)
{
	char *agent = bng_agent_binary(), *data = NULL;
	size_t len = 0;
	int rc = agent ? bng_read_file(agent, &data, &len)
		       : bng_err(BANGER_ENOTFOUND, "the guest agent (banger-agent) was not found: reinstall banger or "
						   "set BANGER_AGENT=/path/to/banger-agent");
	if (!rc)
		rc = put_guest_service(fs, "banger-agent", data, len, agent_unit, "sysinit.target");
	free(data);
	free(agent);
	return rc;
}

/* Every later boot puts the agent in again: the guest always runs the agent
 * of the banger that talks to it, so an upgrade reaches VMs made before it
 * (a few ms: one file into the stopped VM's own disk). */
int bng_vm_refresh_agent(const char *overlay)
{
	bng_ext4 *fs;
	int rc = bng_ext4_open(&fs, overlay);
	if (rc)
		return rc;
	rc = put_agent(fs);
	if (rc) {
		bng_ext4_abort(fs);
		return rc;
	}
	return bng_ext4_close(fs);
}

/* Creates the sparse overlay disk and writes what makes this VM itself
 * into its upper layer: SSH key, hostname, resolver, the guest agent. The
 * image's base is never touched. */
int bng_vm_make_overlay(bng_engine *e, const bng_vm_row *vm, const char *path, const char *pubkey, const char *host_key,
			bool first_boot)
{
	bng_ext4 *fs;
	int rc = bng_ext4_create(&fs, path, vm->disk_size, 0);
	if (rc)
		return rc;
	char *keys = bng_asprintf("%s banger\n", pubkey); /* "banger": replaced when the key changes */
	char *hosts = bng_asprintf("127.0.0.1 localhost\n127.0.1.1 %s\n", vm->name);
	char *hostname = bng_asprintf("%s\n", vm->name);
	char *resolv = bng_asprintf("nameserver %s\n", bng_config_str(&e->config, "default_dns"));
	rc = bng_ext4_put_dir(fs, "upper", 0755, 0, 0);
	if (!rc)
		rc = bng_ext4_put_dir(fs, "upper/root", 0700, 0, 0);
	if (!rc)
		rc = bng_ext4_put_dir(fs, "upper/root/.ssh", 0700, 0, 0);
	if (!rc)
		rc = bng_ext4_put_file(fs, "upper/root/.ssh/authorized_keys", keys, strlen(keys), 0600, 0, 0);
	if (!rc)
		rc = bng_ext4_put_file(fs, "upper/etc/hostname", hostname, strlen(hostname), 0644, 0, 0);
	if (!rc)
		rc = bng_ext4_put_file(fs, "upper/etc/hosts", hosts, strlen(hosts), 0644, 0, 0);
	if (!rc)
		rc = bng_ext4_put_file(fs, "upper/etc/resolv.conf", resolv, strlen(resolv), 0644, 0, 0);
	if (!rc) /* its host key, made on the host; the image's keygen unit then has nothing to do */
		rc = bng_ext4_put_file(fs, "upper/etc/ssh/ssh_host_ed25519_key", host_key, strlen(host_key), 0600, 0, 0);
	if (!rc) {
		char *pub = bng_asprintf("%s\n", vm->host_key);
		rc = bng_ext4_put_file(fs, "upper/etc/ssh/ssh_host_ed25519_key.pub", pub, strlen(pub), 0644, 0, 0);
		free(pub);
	}
	if (!rc) /* reaps LVM snapshots of e2scrub, which a VM has none of: half a minute of an emulated CPU at boot */
		rc = bng_ext4_put_symlink(fs, "upper/etc/systemd/system/e2scrub_reap.service", "/dev/null");
	if (!rc && first_boot)
		rc = put_guest_service(fs, "banger-first-boot", bng_first_boot_script, strlen(bng_first_boot_script),
				       first_boot_unit, "multi-user.target");
	if (!rc && first_boot)
		rc = bng_ext4_put_file(fs, "upper/var/lib/banger/first-boot-pending", "", 0, 0644, 0, 0);
	if (!rc)
		rc = put_agent(fs);
	free(keys);
	free(hosts);
	free(hostname);
	free(resolv);
	if (rc) {
		bng_ext4_abort(fs);
	} else {
		rc = bng_ext4_close(fs);
	}
	if (rc) /* name the disk: a bare "cannot look up system" says nothing of which */
		rc = bng_err(rc, "cannot write the VM's disk %s: %s", path, banger_error_last());
	return rc;
}

/* Reaching VMs with stock OpenSSH: two files under <state>/ssh that banger
 * rewrites whenever the set of VMs changes (create, delete, prune, engine
 * open):
 *   known_hosts  every VM's pinned host key, under "<name>.vm" and its IP;
 *   config       a "Host <name>.vm" stanza per VM (HostName = its IP, so
 *                `ssh box.vm` works with or without .vm DNS routing) and a
 *                "Host *.vm" block: banger's key, that known_hosts, strict
 *                host key checking, public key authentication only.
 * `banger ssh-config --install` puts one `Include` of that config into
 * ~/.ssh/config; the user's file never changes again as VMs come and go. */
#include "vm.h"
#include "../core/internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Two writers reading the rows before either writes could leave the
 * older set last; one at a time, each reading the rows afresh. */
static pthread_mutex_t sync_lock = PTHREAD_MUTEX_INITIALIZER;

static char *ssh_dir(bng_engine *e) { return bng_asprintf("%s/ssh", e->paths.state_dir); }

/* The "Host *.vm" defaults (key, known_hosts): also what `banger
 * ssh-config` prints. */
static void put_defaults(FILE *out, const char *key, const char *known)
{
	fprintf(out,
		       "Host *.vm\n"
		       "    User root\n"
		       "    IdentityFile \"%s\"\n"
		       "    IdentitiesOnly yes\n"
		       "    UserKnownHostsFile \"%s\"\n"
		       "    StrictHostKeyChecking yes\n"
		       "    PreferredAuthentications publickey\n"
		       "    PasswordAuthentication no\n"
		       "    KbdInteractiveAuthentication no\n",
		       key, known);
}

int bng_vm_ssh_files_sync(bng_engine *e)
{
	pthread_mutex_lock(&sync_lock);
	json_t *rows = NULL;
	char *dir = ssh_dir(e);
	char *known = bng_asprintf("%s/known_hosts", dir), *config = bng_asprintf("%s/config", dir);
	int rc = bng_mkdir_p(dir, 0700);
	if (!rc)
		rc = bng_store_query(&e->store, &rows,
				     "SELECT name, ip, host_key FROM vms WHERE state != 'creating' ORDER BY name", 0, NULL);
	if (!rc) {
		char *hosts = NULL, *cfg = NULL;
		size_t hosts_len = 0, cfg_len = 0;
		FILE *hf = open_memstream(&hosts, &hosts_len), *cf = open_memstream(&cfg, &cfg_len);
		fprintf(cf, "# Written by banger as VMs come and go; edits are lost.\n");
		size_t i;
		json_t *row;
		json_array_foreach(rows, i, row) {
			const char *name = json_string_value(json_object_get(row, "name"));
			const char *ip = json_string_value(json_object_get(row, "ip"));
			const char *key = json_string_value(json_object_get(row, "host_key"));
			if (!name || !ip || !*ip)
				continue;
			if (key && *key)
				fprintf(hf, "%s.vm,%s %s\n", name, ip, key);
			/* HostKeyAlias: the key is found under the name whatever
			 * address ssh ends up dialling */
			fprintf(cf, "Host %s.vm\n    HostName %s\n    HostKeyAlias %s.vm\n", name, ip, name);
		}
		put_defaults(cf, bng_config_str(&e->config, "ssh_key_path"), known);
		fclose(hf);
		fclose(cf);
		rc = bng_write_file_atomic(known, hosts, hosts_len, 0600);
		if (!rc)
			rc = bng_write_file_atomic(config, cfg, cfg_len, 0600);
		free(hosts);
		free(cfg);
	}
	json_decref(rows);
	free(known);
	free(config);
	free(dir);
	pthread_mutex_unlock(&sync_lock);
	return rc;
}

int bng_m_vm_ssh_config(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	(void)params;
	(void)op;
	int rc = bng_vm_ssh_files_sync(e);
	if (rc)
		return rc;
	char *dir = ssh_dir(e);
	char *known = bng_asprintf("%s/known_hosts", dir), *config = bng_asprintf("%s/config", dir);
	char *block = NULL;
	size_t block_len = 0;
	FILE *bf = open_memstream(&block, &block_len);
	put_defaults(bf, bng_config_str(&e->config, "ssh_key_path"), known);
	fclose(bf);
	*result = json_pack("{s:s,s:s,s:s,s:s}", "config", config, "known_hosts", known, "key",
			    bng_config_str(&e->config, "ssh_key_path"), "block", block);
	free(block);
	free(known);
	free(config);
	free(dir);
	return 0;
}

/* fc-tool: drives the firecracker driver (lib/vmm/firecracker.c) from
 * tests/integration/test_firecracker.py, with the fake firecracker as the
 * binary. Prints the VM state as JSON; on failure "fc-tool: CODE: message"
 * on stderr and exit 1.
 *
 *   fc-tool start CONFIG.json            -> state JSON
 *   fc-tool restore CONFIG.json DIR      -> state JSON
 *   fc-tool shutdown STATE.json [TIMEOUT_MS]
 *   fc-tool kill STATE.json [SIGNAL]
 *   fc-tool pause|resume STATE.json
 *   fc-tool snapshot STATE.json DIR
 *   fc-tool alive STATE.json             -> "true" / "false"
 *
 * CONFIG: {"id", "run_dir", "console_log", "process_log", "vcpus", "mem_mib",
 * "kernel_dir", "cmdline", "disks": [{"path", "read_only"}], "tap", "mac",
 * "binary", "jailer", "jail_uid", "jail_gid", "log_max", "cancel_after_ms"}
 * (the jail ids default to 65534 like config firecracker_uid/gid; the last
 * cancels the operation from another thread after that long). */
#include "vmm/firecracker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int cancel_flag;

static void *canceller(void *arg)
{
	usleep((useconds_t)(intptr_t)arg * 1000);
	atomic_store(&cancel_flag, 1);
	return NULL;
}

static json_t *load(const char *path)
{
	json_error_t e;
	json_t *j = json_load_file(path, 0, &e);
	if (!j)
		fprintf(stderr, "fc-tool: %s: %s (line %d)\n", path, e.text, e.line);
	return j;
}

static const char *str(json_t *cfg, const char *key) { return json_string_value(json_object_get(cfg, key)); }

static void to_config(json_t *j, bng_vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->id = str(j, "id");
	cfg->run_dir = str(j, "run_dir");
	cfg->console_log = str(j, "console_log");
	cfg->process_log = str(j, "process_log");
	cfg->vcpus = (int)json_integer_value(json_object_get(j, "vcpus"));
	cfg->mem_mib = (int)json_integer_value(json_object_get(j, "mem_mib"));
	cfg->kernel_dir = str(j, "kernel_dir");
	cfg->cmdline = str(j, "cmdline");
	cfg->tap = str(j, "tap");
	cfg->mac = str(j, "mac");
	cfg->binary = str(j, "binary");
	cfg->jailer = json_is_true(json_object_get(j, "jailer"));
	json_t *uid = json_object_get(j, "jail_uid"), *gid = json_object_get(j, "jail_gid");
	cfg->jail_uid = (uid_t)(uid ? json_integer_value(uid) : 65534);
	cfg->jail_gid = (gid_t)(gid ? json_integer_value(gid) : 65534);
	cfg->log_max = json_integer_value(json_object_get(j, "log_max"));
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(j, "disks"), i, d)
	{
		if (i >= BNG_VMM_MAX_DISKS) {
			cfg->ndisks = (int)i + 1; /* let the driver refuse it */
			break;
		}
		cfg->disks[i].path = str(d, "path");
		cfg->disks[i].read_only = json_is_true(json_object_get(d, "read_only"));
		cfg->ndisks = (int)i + 1;
	}
}

static int fail(int rc)
{
	fprintf(stderr, "fc-tool: %s: %s\n", banger_strerror(rc), banger_error_last());
	return 1;
}

static int print_state(json_t *state)
{
	char *s = json_dumps(state, JSON_SORT_KEYS);
	printf("%s\n", s);
	free(s);
	json_decref(state);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: fc-tool start|restore CONFIG [DIR] | shutdown|kill|pause|resume|snapshot|alive STATE "
			"[ARG]\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	const bng_vmm_driver *d = &bng_vmm_firecracker;
	const char *cmd = argv[1];
	json_t *in = load(argv[2]);
	if (!in)
		return 2;
	int rc, ret = 0;
	if (strcmp(cmd, "start") == 0 || strcmp(cmd, "restore") == 0) {
		bool restore = cmd[0] == 'r';
		if (restore && argc < 4) {
			json_decref(in);
			return usage();
		}
		bng_vm_config cfg;
		to_config(in, &cfg);
		bng_op op = {.cancel = &cancel_flag};
		pthread_t t;
		json_int_t after = json_integer_value(json_object_get(in, "cancel_after_ms"));
		if (after > 0)
			pthread_create(&t, NULL, canceller, (void *)(intptr_t)after);
		json_t *state = NULL;
		rc = restore ? d->restore(&cfg, argv[3], &op, &state) : d->start(&cfg, &op, &state);
		if (after > 0)
			pthread_join(t, NULL);
		ret = rc ? fail(rc) : print_state(state);
	} else if (strcmp(cmd, "shutdown") == 0) {
		rc = d->shutdown(in, argc > 3 ? atoi(argv[3]) : 5000);
		ret = rc ? fail(rc) : 0;
	} else if (strcmp(cmd, "kill") == 0) {
		rc = d->kill(in, argc > 3 ? atoi(argv[3]) : 0);
		ret = rc ? fail(rc) : 0;
	} else if (strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0) {
		rc = cmd[0] == 'p' ? d->pause(in) : d->resume(in);
		ret = rc ? fail(rc) : 0;
	} else if (strcmp(cmd, "snapshot") == 0 && argc > 3) {
		rc = d->snapshot(in, argv[3]);
		ret = rc ? fail(rc) : 0;
	} else if (strcmp(cmd, "alive") == 0) {
		printf("%s\n", d->alive(in) ? "true" : "false");
	} else {
		ret = usage();
	}
	json_decref(in);
	return ret;
}

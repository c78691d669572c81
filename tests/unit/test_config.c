/* Config resolution (lib/core/config.c): defaults and their provenance,
 * overrides from text, warnings and the exact shape of every error. */
#include "check.h"

#include "core/config.h"
#include "core/internal.h"

#include <jansson.h>
#include <sys/stat.h>

#define PATH "/fake/etc/banger/config.toml"
#define CONFIG_DIR "/fake/cfgdir"

static const char *source_of(const bng_config *cfg, const char *key)
{
	return json_string_value(json_object_get(cfg->sources, key));
}

static int parse(bng_config *cfg, const char *text)
{
	return bng_config_parse(cfg, PATH, text, text ? strlen(text) : 0, CONFIG_DIR);
}

static void test_defaults(void)
{
	bng_config cfg;
	CHECK_OK(parse(&cfg, NULL));
	CHECK(!cfg.file_found);
	CHECK_EQ_STR(cfg.path, PATH);
	CHECK_EQ_INT(json_array_size(cfg.warnings), 0);
	CHECK_EQ_INT(json_object_size(cfg.lines), 0);

	CHECK_EQ_STR(bng_config_str(&cfg, "log_level"), "info");
	CHECK_EQ_STR(source_of(&cfg, "log_level"), "builtin");
	CHECK_EQ_STR(bng_config_str(&cfg, "vmm"), "auto");
	CHECK_EQ_STR(bng_config_str(&cfg, "bridge_name"), "br-banger");
	CHECK_STR_CONTAINS(bng_config_str(&cfg, "kernel_args"), "cryptomgr.notests=1");
	CHECK_EQ_STR(bng_config_str(&cfg, "bridge_ip"), "172.16.0.1");
	CHECK_EQ_STR(bng_config_str(&cfg, "cidr"), "172.16.0.0/24");
	CHECK_EQ_STR(bng_config_str(&cfg, "default_dns"), "1.1.1.1");
	CHECK_EQ_STR(bng_config_str(&cfg, "dns_listen"), "127.0.0.1:42069");
	CHECK_EQ_STR(bng_config_str(&cfg, "default_image_name"), "debian-bookworm");
	CHECK_EQ_INT(bng_config_int(&cfg, "tap_pool_size"), 4);
	CHECK_EQ_INT(bng_config_int(&cfg, "vm_defaults.disk_size"), 8LL << 30);
	CHECK_EQ_STR(source_of(&cfg, "vm_defaults.disk_size"), "builtin");
	CHECK_EQ_INT(bng_config_int(&cfg, "auto_stop_stale_after"), 0);
	CHECK_EQ_STR(source_of(&cfg, "auto_stop_stale_after"), "builtin");
	CHECK_EQ_STR(bng_config_str(&cfg, "ssh_key_path"), CONFIG_DIR "/ssh/id_ed25519");
	CHECK_EQ_STR(source_of(&cfg, "ssh_key_path"), "builtin");
	CHECK_EQ_STR(bng_config_str(&cfg, "firecracker_bin"), "");
	CHECK(json_is_false(json_object_get(cfg.values, "firecracker_jailer")));
	CHECK(!bng_config_bool(&cfg, "firecracker_jailer"));
	CHECK_EQ_STR(source_of(&cfg, "firecracker_jailer"), "builtin");
	CHECK_EQ_INT(bng_config_int(&cfg, "firecracker_uid"), 65534);
	CHECK_EQ_INT(bng_config_int(&cfg, "firecracker_gid"), 65534);
	CHECK_EQ_INT(bng_config_int(&cfg, "firecracker_log_max"), 4 << 20);

	/* host-aware seeds: cpus/4 capped at 4 and RAM/8 capped at 8 GiB,
	 * never below the builtin floor; "auto" when the host value wins */
	long cpus = bng_host_cpus() / 4;
	if (cpus > 4)
		cpus = 4;
	if (cpus >= 1) {
		CHECK_EQ_INT(bng_config_int(&cfg, "vm_defaults.vcpu"), cpus);
		CHECK_EQ_STR(source_of(&cfg, "vm_defaults.vcpu"), "auto");
	} else {
		CHECK_EQ_INT(bng_config_int(&cfg, "vm_defaults.vcpu"), 1);
		CHECK_EQ_STR(source_of(&cfg, "vm_defaults.vcpu"), "builtin");
	}
	int64_t mem = (int64_t)(bng_host_mem_mib() / 8);
	if (mem > 8192)
		mem = 8192;
	if (mem >= 2048) {
		CHECK_EQ_INT(bng_config_int(&cfg, "vm_defaults.memory_mib"), mem);
		CHECK_EQ_STR(source_of(&cfg, "vm_defaults.memory_mib"), "auto");
	} else {
		CHECK_EQ_INT(bng_config_int(&cfg, "vm_defaults.memory_mib"), 2048);
		CHECK_EQ_STR(source_of(&cfg, "vm_defaults.memory_mib"), "builtin");
	}

	/* every value has a source, and nothing but builtin/auto */
	const char *k;
	json_t *v;
	json_object_foreach(cfg.values, k, v) {
		const char *src = source_of(&cfg, k);
		CHECK(src && (!strcmp(src, "builtin") || !strcmp(src, "auto")));
	}
	/* every documented key (docs/config.md) and nothing else */
	static const char *const documented[] = {
		"log_level", "vmm", "qemu_accel", "default_kernel_name", "firecracker_bin", "firecracker_jailer",
		"firecracker_uid", "firecracker_gid", "firecracker_log_max", "ssh_key_path", "kernel_args", "default_image_name", "image_catalog",
		"kernel_catalog", "debian_mirror", "insecure_registries", "update_url", "auto_stop_stale_after", "bridge_name", "bridge_ip", "cidr", "tap_pool_size", "default_dns", "dns_listen",
		"vm_defaults.vcpu", "vm_defaults.memory_mib", "vm_defaults.disk_size", "file_sync",
	};
	for (size_t i = 0; i < sizeof(documented) / sizeof(documented[0]); i++)
		CHECK(json_object_get(cfg.values, documented[i]) != NULL);
	CHECK_EQ_INT(json_object_size(cfg.values), sizeof(documented) / sizeof(documented[0]));

	/* the JSON view used by `config show` */
	json_t *j = bng_config_to_json(&cfg);
	CHECK_EQ_STR(json_string_value(json_object_get(j, "path")), PATH);
	CHECK(json_is_false(json_object_get(j, "found")));
	json_t *vals = json_object_get(j, "values");
	CHECK_EQ_INT(json_object_size(vals), sizeof(documented) / sizeof(documented[0]));
	json_t *disk = json_object_get(vals, "vm_defaults.disk_size");
	CHECK_EQ_STR(json_string_value(json_object_get(disk, "text")), "8G");
	CHECK_EQ_STR(json_string_value(json_object_get(disk, "source")), "builtin");
	CHECK_EQ_INT(json_integer_value(json_object_get(disk, "value")), 8LL << 30);
	CHECK(json_object_get(disk, "line") == NULL);
	CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(vals, "auto_stop_stale_after"), "text")), "0s");
	CHECK(json_object_get(json_object_get(vals, "log_level"), "text") == NULL);
	CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(vals, "firecracker_log_max"), "text")), "4M");
	CHECK(json_is_false(json_object_get(json_object_get(vals, "firecracker_jailer"), "value")));
	json_decref(j);
	bng_config_free(&cfg);

	/* an empty (but present) file is all defaults too */
	CHECK_OK(parse(&cfg, ""));
	CHECK(cfg.file_found);
	CHECK_EQ_STR(source_of(&cfg, "log_level"), "builtin");
	bng_config_free(&cfg);
}

static void test_overrides(void)
{
	bng_config cfg;
	const char *text = "# my config\n"                        /* 1 */
			   "log_level = \"debug\"\n"               /* 2 */
			   "vmm = 'qemu'\n"                        /* 3 */
			   "auto_stop_stale_after = \"24h\"\n"     /* 4 */
			   "tap_pool_size = 30\n"                  /* 5 */
			   "ssh_key_path = \"/keys/id\"\n"         /* 6 */
			   "cidr = \"10.0.0.0/16\"\n"              /* 7 */
			   "\n"                                    /* 8 */
			   "[vm_defaults]\n"                       /* 9 */
			   "vcpu = 2\n"                            /* 10 */
			   "disk_size = \"4G\"\n"                  /* 11 */
			   "# twelve\n"                            /* 12 */
			   "memory_mib = 0x400\n";                 /* 13 */
	CHECK_OK(parse(&cfg, text));
	CHECK(cfg.file_found);
	CHECK_EQ_INT(json_array_size(cfg.warnings), 0);
	CHECK_EQ_STR(bng_config_str(&cfg, "log_level"), "debug");
	CHECK_EQ_STR(source_of(&cfg, "log_level"), "config");
	CHECK_EQ_STR(bng_config_str(&cfg, "vmm"), "qemu");
	CHECK_EQ_INT(bng_config_int(&cfg, "auto_stop_stale_after"), 86400);
	CHECK_EQ_STR(source_of(&cfg, "auto_stop_stale_after"), "config");
	CHECK_EQ_INT(bng_config_int(&cfg, "tap_pool_size"), 30);
	CHECK_EQ_STR(bng_config_str(&cfg, "ssh_key_path"), "/keys/id");
	CHECK_EQ_STR(source_of(&cfg, "ssh_key_path"), "config");
	CHECK_EQ_STR(bng_config_str(&cfg, "cidr"), "10.0.0.0/16");
	CHECK_EQ_INT(bng_config_int(&cfg, "vm_defaults.vcpu"), 2);
	CHECK_EQ_STR(source_of(&cfg, "vm_defaults.vcpu"), "config");
	CHECK_EQ_INT(bng_config_int(&cfg, "vm_defaults.disk_size"), 4LL << 30);
	CHECK_EQ_INT(bng_config_int(&cfg, "vm_defaults.memory_mib"), 1024);
	/* untouched keys keep their defaults */
	CHECK_EQ_STR(source_of(&cfg, "bridge_name"), "builtin");

	json_t *j = bng_config_to_json(&cfg);
	json_t *vals = json_object_get(j, "values");
	CHECK(json_is_true(json_object_get(j, "found")));
	json_t *e = json_object_get(vals, "log_level");
	CHECK_EQ_STR(json_string_value(json_object_get(e, "source")), "config");
	CHECK_EQ_INT(json_integer_value(json_object_get(e, "line")), 2);
	e = json_object_get(vals, "auto_stop_stale_after");
	CHECK_EQ_INT(json_integer_value(json_object_get(e, "line")), 4);
	CHECK_EQ_STR(json_string_value(json_object_get(e, "text")), "86400s");
	e = json_object_get(vals, "vm_defaults.vcpu");
	CHECK_EQ_INT(json_integer_value(json_object_get(e, "line")), 10);
	e = json_object_get(vals, "vm_defaults.disk_size");
	CHECK_EQ_INT(json_integer_value(json_object_get(e, "line")), 11);
	CHECK_EQ_STR(json_string_value(json_object_get(e, "text")), "4G");
	CHECK_EQ_INT(json_integer_value(json_object_get(e, "value")), 4LL << 30);
	e = json_object_get(vals, "vm_defaults.memory_mib");
	CHECK_EQ_INT(json_integer_value(json_object_get(e, "line")), 13);
	CHECK(json_object_get(json_object_get(vals, "bridge_name"), "line") == NULL);
	json_decref(j);
	bng_config_free(&cfg);

	/* dotted keys at the root reach the same settings */
	CHECK_OK(parse(&cfg, "vm_defaults.vcpu = 3\nvm_defaults.disk_size = \"512M\"\n"));
	CHECK_EQ_INT(bng_config_int(&cfg, "vm_defaults.vcpu"), 3);
	CHECK_EQ_INT(bng_config_int(&cfg, "vm_defaults.disk_size"), 512LL << 20);
	CHECK_EQ_INT(json_integer_value(json_object_get(cfg.lines, "vm_defaults.disk_size")), 2);
	bng_config_free(&cfg);

	/* durations in every unit; sizes with suffixes */
	CHECK_OK(parse(&cfg, "auto_stop_stale_after = \"1h30m\"\n[vm_defaults]\ndisk_size = \"1TiB\"\n"));
	CHECK_EQ_INT(bng_config_int(&cfg, "auto_stop_stale_after"), 5400);
	bng_config_free(&cfg);
	CHECK_OK(parse(&cfg, "auto_stop_stale_after = \"90s\"\n"));
	CHECK_EQ_INT(bng_config_int(&cfg, "auto_stop_stale_after"), 90);
	bng_config_free(&cfg);
	CHECK_OK(parse(&cfg, "auto_stop_stale_after = \"2m\"\n[vm_defaults]\ndisk_size = \"1TiB\"\n"));
	CHECK_EQ_INT(bng_config_int(&cfg, "auto_stop_stale_after"), 120);
	CHECK_EQ_INT(bng_config_int(&cfg, "vm_defaults.disk_size"), 1LL << 40);
	bng_config_free(&cfg);

	/* the firecracker jailer's settings: a boolean, ids, a size in bytes or with a unit */
	CHECK_OK(parse(&cfg, "firecracker_jailer = true\nfirecracker_uid = 1000\nfirecracker_gid = 0\n"
			     "firecracker_log_max = 65536\n"));
	CHECK(bng_config_bool(&cfg, "firecracker_jailer"));
	CHECK_EQ_STR(source_of(&cfg, "firecracker_jailer"), "config");
	CHECK_EQ_INT(bng_config_int(&cfg, "firecracker_uid"), 1000);
	CHECK_EQ_INT(bng_config_int(&cfg, "firecracker_gid"), 0);
	CHECK_EQ_INT(bng_config_int(&cfg, "firecracker_log_max"), 65536);
	bng_config_free(&cfg);
	CHECK_OK(parse(&cfg, "firecracker_jailer = false\nfirecracker_uid = 4294967294\nfirecracker_log_max = \"64K\"\n"));
	CHECK(!bng_config_bool(&cfg, "firecracker_jailer"));
	CHECK_EQ_STR(source_of(&cfg, "firecracker_jailer"), "config");
	CHECK_EQ_INT(bng_config_int(&cfg, "firecracker_uid"), 4294967294LL);
	CHECK_EQ_INT(bng_config_int(&cfg, "firecracker_log_max"), 65536);
	bng_config_free(&cfg);

	/* [[file_sync]]: an array of tables, in file order */
	CHECK_OK(parse(&cfg, "log_level = 'info'\n[[file_sync]]\nhost = \"~/.npmrc\"\nguest = \"/root/.npmrc\"\n"
			     "mode = \"0600\"\n\n[[file_sync]]\nhost = \"/home/u/x\"\nguest = \"/etc/x\"\n"));
	json_t *fs = json_object_get(cfg.values, "file_sync");
	CHECK_EQ_INT(json_array_size(fs), 2);
	CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(fs, 0), "host")), "~/.npmrc");
	CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(fs, 0), "mode")), "0600");
	CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(fs, 1), "guest")), "/etc/x");
	CHECK(json_object_get(json_array_get(fs, 1), "mode") == NULL);
	CHECK_EQ_STR(source_of(&cfg, "file_sync"), "config");
	bng_config_free(&cfg);
}

static void test_warnings(void)
{
	bng_config cfg;
	CHECK_OK(parse(&cfg, "log_level = 'warn'\n"          /* 1 */
			     "colour = true\n"                /* 2 */
			     "\n"                             /* 3 */
			     "[vm_defaults]\n"                /* 4 */
			     "cpus = 2\n"                     /* 5 */
			     "\n"                             /* 6 */
			     "[network]\n"                    /* 7 */
			     "# comment\n"                    /* 8 */
			     "mtu = 1500\n"                   /* 9 */
			     "speed = 10\n"));                /* 10 */
	CHECK_EQ_INT(json_array_size(cfg.warnings), 3);
	CHECK_EQ_STR(json_string_value(json_array_get(cfg.warnings, 0)), PATH ":2: unknown key 'colour' (ignored)");
	CHECK_EQ_STR(json_string_value(json_array_get(cfg.warnings, 1)),
		     PATH ":5: unknown key 'vm_defaults.cpus' (ignored)");
	/* an unknown table is reported once, at its header */
	CHECK_EQ_STR(json_string_value(json_array_get(cfg.warnings, 2)), PATH ":7: unknown key 'network' (ignored)");
	/* keys that never did anything: a warning naming them, even when their value is odd */
	bng_config old;
	CHECK_OK(parse(&old, "stats_poll_interval = '5s'\nmetrics_poll_interval = -1\n[vm_defaults]\n"
			     "system_overlay_size = '8G'\nvcpu = 2\n"));
	CHECK_EQ_INT(json_array_size(old.warnings), 3);
	CHECK_EQ_STR(json_string_value(json_array_get(old.warnings, 0)),
		     PATH ":1: 'stats_poll_interval' is no longer used: remove it (ignored)");
	CHECK_EQ_STR(json_string_value(json_array_get(old.warnings, 1)),
		     PATH ":2: 'metrics_poll_interval' is no longer used: remove it (ignored)");
	CHECK_EQ_STR(json_string_value(json_array_get(old.warnings, 2)),
		     PATH ":4: 'vm_defaults.system_overlay_size' is no longer used: remove it (ignored)");
	CHECK_EQ_INT(bng_config_int(&old, "vm_defaults.vcpu"), 2);
	CHECK(json_object_get(old.values, "stats_poll_interval") == NULL);
	bng_config_free(&old);
	bng_config empty_table;
	CHECK_OK(parse(&empty_table, "\n[foo]\n"));
	CHECK_EQ_STR(json_string_value(json_array_get(empty_table.warnings, 0)), PATH ":2: unknown key 'foo' (ignored)");
	bng_config_free(&empty_table);
	/* the known keys still apply */
	CHECK_EQ_STR(bng_config_str(&cfg, "log_level"), "warn");
	CHECK_EQ_STR(source_of(&cfg, "log_level"), "config");
	CHECK(json_object_get(cfg.values, "colour") == NULL);
	json_t *j = bng_config_to_json(&cfg);
	CHECK_EQ_INT(json_array_size(json_object_get(j, "warnings")), 3);
	json_decref(j);
	bng_config_free(&cfg);
}

/* text must fail with exactly "<PATH>:<line>: <key>: <detail...>". */
static void expect_error(int at, const char *text, int line, const char *key, const char *detail)
{
	bng_config cfg;
	memset(&cfg, 0xAA, sizeof(cfg));
	int before = check_failed;
	int rc = parse(&cfg, text);
	CHECK_EQ_INT(rc, BANGER_ECONFIG);
	CHECK_EQ_INT(banger_error_last_code(), BANGER_ECONFIG);
	char prefix[256];
	snprintf(prefix, sizeof(prefix), "%s:%d: %s: ", PATH, line, key);
	const char *msg = banger_error_last();
	CHECK(strncmp(msg, prefix, strlen(prefix)) == 0);
	CHECK_STR_CONTAINS(msg, detail);
	/* a failed parse leaves nothing to free */
	CHECK(cfg.path == NULL && cfg.values == NULL && cfg.warnings == NULL);
	if (check_failed != before)
		fprintf(stderr, "%s:%d: ^ for config \"%s\" (message \"%s\", want prefix \"%s\")\n", __FILE__, at, text,
			msg, prefix);
	if (rc == 0)
		bng_config_free(&cfg);
}

#define EXPECT_ERROR(text, line, key, detail) expect_error(__LINE__, text, line, key, detail)

static void test_errors(void)
{
	EXPECT_ERROR("[vm_defaults]\nvcpu = \"two\"\n", 2, "vm_defaults.vcpu", "must be an integer");
	EXPECT_ERROR("log_level = 'info'\n\n[vm_defaults]\nvcpu = 0\n", 4, "vm_defaults.vcpu",
		     "between 1 and 64 (got 0)");
	EXPECT_ERROR("vm_defaults.vcpu = 65\n", 1, "vm_defaults.vcpu", "between 1 and 64");
	EXPECT_ERROR("[vm_defaults]\nmemory_mib = 64\n", 2, "vm_defaults.memory_mib", "between 128 and");
	EXPECT_ERROR("\nvmm = \"xen\"\n", 2, "vmm", "must be one of auto|firecracker|qemu (got \"xen\")");
	EXPECT_ERROR("bridge_ip = \"300.1.1.1\"\n", 1, "bridge_ip", "IPv4 address (got \"300.1.1.1\")");
	EXPECT_ERROR("default_dns = \"::1\"\n", 1, "default_dns", "IPv4 address");
	EXPECT_ERROR("dns_listen = \"127.0.0.1\"\n", 1, "dns_listen", "IPv4 address and port");
	EXPECT_ERROR("dns_listen = \"127.0.0.1:0\"\n", 1, "dns_listen", "IPv4 address and port");
	EXPECT_ERROR("dns_listen = \"127.0.0.1:65536\"\n", 1, "dns_listen", "IPv4 address and port");
	EXPECT_ERROR("dns_listen = \"[::1]:53\"\n", 1, "dns_listen", "IPv4 address and port");
	EXPECT_ERROR("\n\ncidr = \"10.0.0.0/40\"\n", 3, "cidr", "prefix of 8..30");
	EXPECT_ERROR("cidr = \"10.0.0.0/ +24\"\n", 1, "cidr", "prefix of 8..30");
	/* a known scalar key written as a table, and a known table given a scalar */
	EXPECT_ERROR("\n[vmm]\nx = 1\n", 2, "vmm", "must be a string");
	EXPECT_ERROR("vm_defaults = 5\n", 1, "vm_defaults", "must be a table");
	EXPECT_ERROR("cidr = \"10.0.0.0\"\n", 1, "cidr", "IPv4 network");
	EXPECT_ERROR("cidr = \"10.0.0.0/24x\"\n", 1, "cidr", "IPv4 network");
	EXPECT_ERROR("cidr = \"10.0.0.300/24\"\n", 1, "cidr", "IPv4 network");
	EXPECT_ERROR("cidr = \"10.0.0.0/\"\n", 1, "cidr", "IPv4 network");
	EXPECT_ERROR("[vm_defaults]\ndisk_size = \"huge\"\n", 2, "vm_defaults.disk_size",
		     "must be a size like 512M or 8G (got \"huge\")");
	EXPECT_ERROR("[vm_defaults]\ndisk_size = \"0\"\n", 2, "vm_defaults.disk_size", "size");
	EXPECT_ERROR("bridge_name = \"a-very-long-bridge\"\n", 1, "bridge_name", "1..15 characters");
	EXPECT_ERROR("bridge_name = \"\"\n", 1, "bridge_name", "1..15 characters");
	EXPECT_ERROR("bridge_name = \"br 0\"\n", 1, "bridge_name", "interface name");
	EXPECT_ERROR("kernel_args = \"a=\\\"b c\"\n", 1, "kernel_args", "paired double quotes");
	EXPECT_ERROR("kernel_args = \"quiet\\nloglevel=1\"\n", 1, "kernel_args", "on one line");
	EXPECT_ERROR("log_level = 3\n", 1, "log_level", "must be a string");
	EXPECT_ERROR("log_level = \"loud\"\n", 1, "log_level", "debug|info|warn|error");
	EXPECT_ERROR("auto_stop_stale_after = \"soon\"\n", 1, "auto_stop_stale_after", "duration like");
	EXPECT_ERROR("auto_stop_stale_after = -5\n", 1, "auto_stop_stale_after", "string");
	EXPECT_ERROR("tap_pool_size = 65\n", 1, "tap_pool_size", "between 0 and 64");
	EXPECT_ERROR("tap_pool_size = [1]\n", 1, "tap_pool_size", "integer");
	EXPECT_ERROR("default_image_name = true\n", 1, "default_image_name", "must be a string");
	EXPECT_ERROR("[[file_sync]]\nhost = \"~/a\"\n", 1, "file_sync", "guest must be an absolute path");
	EXPECT_ERROR("[[file_sync]]\nhost = \"rel/a\"\nguest = \"/a\"\n", 1, "file_sync", "host must be a path");
	EXPECT_ERROR("[[file_sync]]\nhost = \"~/a\"\nguest = \"/a\"\nmode = \"0999\"\n", 1, "file_sync",
		     "mode must be octal");
	EXPECT_ERROR("[[file_sync]]\nhost = \"~/a\"\nguest = \"/a\"\nowner = \"me\"\n", 1, "file_sync",
		     "unknown key 'owner'");
	EXPECT_ERROR("file_sync = \"~/a\"\n", 1, "file_sync", "[[file_sync]] tables");
	EXPECT_ERROR("firecracker_jailer = 1\n", 1, "firecracker_jailer", "must be true or false");
	EXPECT_ERROR("firecracker_jailer = \"true\"\n", 1, "firecracker_jailer", "must be true or false");
	EXPECT_ERROR("firecracker_uid = -1\n", 1, "firecracker_uid", "between 0 and 4294967294 (got -1)");
	EXPECT_ERROR("firecracker_gid = 4294967295\n", 1, "firecracker_gid", "between 0 and 4294967294");
	EXPECT_ERROR("firecracker_uid = \"65534\"\n", 1, "firecracker_uid", "must be an integer");
	EXPECT_ERROR("firecracker_gid = \"nogroup\"\n", 1, "firecracker_gid", "must be an integer");
	EXPECT_ERROR("firecracker_log_max = 0\n", 1, "firecracker_log_max", "positive number of bytes");
	EXPECT_ERROR("firecracker_log_max = -4096\n", 1, "firecracker_log_max", "(got -4096)");
	EXPECT_ERROR("firecracker_log_max = \"lots\"\n", 1, "firecracker_log_max", "size like 512M or 8G (got \"lots\")");
	EXPECT_ERROR("firecracker_log_max = true\n", 1, "firecracker_log_max", "number of bytes or a size");
	/* the first bad key in file order is the one reported */
	EXPECT_ERROR("vmm = 'xen'\nlog_level = 3\n", 1, "vmm", "xen");
}

static void test_syntax_errors(void)
{
	bng_config cfg;
	const char *text = "log_level = 'info'\n\n[vm_defaults]\nvcpu = \n";
	CHECK_EQ_INT(parse(&cfg, text), BANGER_ECONFIG);
	CHECK_EQ_STR(banger_error_last(), PATH ":4: missing value");

	CHECK_EQ_INT(parse(&cfg, "a = 1\na = 2\n"), BANGER_ECONFIG);
	CHECK_EQ_STR(banger_error_last(), PATH ":2: key 'a' defined twice");

	CHECK_EQ_INT(parse(&cfg, "x = 1.5\n"), BANGER_ECONFIG);
	CHECK_STR_CONTAINS(banger_error_last(), PATH ":1: unsupported value '1.5'");
	CHECK(strstr(banger_error_last(), "line") == NULL);
}

static void test_load(void)
{
	char *dir = check_tmpdir("config");
	char *path = bng_asprintf("%s/config.toml", dir);
	bng_config cfg;

	/* a missing file is all defaults */
	CHECK_OK(bng_config_load(&cfg, path, dir));
	CHECK(!cfg.file_found);
	CHECK_EQ_STR(cfg.path, path);
	bng_config_free(&cfg);

	const char good[] = "[vm_defaults]\nvcpu = 5\n";
	check_write_file(path, good, sizeof(good) - 1);
	CHECK_OK(bng_config_load(&cfg, path, dir));
	CHECK(cfg.file_found);
	CHECK_EQ_INT(bng_config_int(&cfg, "vm_defaults.vcpu"), 5);
	bng_config_free(&cfg);

	const char bad[] = "\n\n[vm_defaults]\nvcpu = \"x\"\n";
	check_write_file(path, bad, sizeof(bad) - 1);
	CHECK_EQ_INT(bng_config_load(&cfg, path, dir), BANGER_ECONFIG);
	char *want = bng_asprintf("%s:4: vm_defaults.vcpu: must be an integer", path);
	CHECK_EQ_STR(banger_error_last(), want);
	free(want);

	/* a directory where the file should be cannot be read */
	unlink(path);
	mkdir(path, 0700);
	CHECK_EQ_INT(bng_config_load(&cfg, path, dir), BANGER_ECONFIG);
	/* the wrapped message survives being formatted around itself */
	want = bng_asprintf("cannot read config %s: cannot read %s", path, path);
	CHECK_STR_CONTAINS(banger_error_last(), want);
	free(want);

	check_rm_rf(dir);
	free(path);
	free(dir);
}

int main(void)
{
	test_defaults();
	test_overrides();
	test_warnings();
	test_errors();
	test_syntax_errors();
	test_load();
	return check_summary();
}

/* Config resolution. One table lists every key with its type, limits and
 * default; parsing, validation, provenance and `config show` all read it. */
#include "config.h"
#include "internal.h"
#include "toml.h"
#include "units.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { K_STRING, K_ENUM, K_BOOL, K_INT, K_SIZE, K_DURATION, K_IPV4, K_CIDR, K_IFNAME, K_LISTEN, K_FILE_SYNC, K_KARGS } key_type;

typedef struct {
	const char *name;
	key_type type;
	const char *def;     /* builtin default (as written in a config file) */
	const char *choices; /* K_ENUM: "a|b|c" */
	int64_t min, max;    /* K_INT */
} key_spec;

static const key_spec keys[] = {
	{"log_level", K_ENUM, "info", "debug|info|warn|error", 0, 0},
	{"vmm", K_ENUM, "auto", "auto|firecracker|qemu", 0, 0},
	{"qemu_accel", K_ENUM, "auto", "auto|kvm|tcg", 0, 0},
	{"firecracker_bin", K_STRING, "", NULL, 0, 0},
	{"firecracker_jailer", K_BOOL, "false", NULL, 0, 0},             /* run firecracker under its jailer (root) */
	{"firecracker_uid", K_INT, "65534", NULL, 0, 4294967294LL},     /* the ids the jailer drops to */
	{"firecracker_gid", K_INT, "65534", NULL, 0, 4294967294LL},
	{"firecracker_log_max", K_SIZE, "4M", NULL, 0, 0},               /* firecracker.log/.metrics rotate past it */
	{"ssh_key_path", K_STRING, "", NULL, 0, 0},
	/* Guest kernel arguments before banger's own. The default skips the
	 * crypto self-tests and the kprobe-events setup: 0.4 s of each boot
	 * under TCG. */
	{"kernel_args", K_KARGS, "cryptomgr.notests=1 initcall_blacklist=init_kprobe_trace,crypto_kdf108_init", NULL, 0, 0},
	{"default_image_name", K_STRING, "debian-bookworm", NULL, 0, 0},
	{"default_kernel_name", K_STRING, "debian-cloud", NULL, 0, 0},
	{"image_catalog", K_STRING, "", NULL, 0, 0},
	{"kernel_catalog", K_STRING, "", NULL, 0, 0},
	{"insecure_registries", K_STRING, "", NULL, 0, 0}, /* "host[:port], ...": plain http */
	{"debian_mirror", K_STRING, "http://deb.debian.org/debian", NULL, 0, 0},
	{"update_url", K_STRING, "https://releases.banger.dev/banger", NULL, 0, 0},
	{"auto_stop_stale_after", K_DURATION, "0", NULL, 0, 0},
	{"bridge_name", K_IFNAME, "br-banger", NULL, 0, 0},
	{"bridge_ip", K_IPV4, "172.16.0.1", NULL, 0, 0},
	{"cidr", K_CIDR, "172.16.0.0/24", NULL, 0, 0},
	{"tap_pool_size", K_INT, "4", NULL, 0, 64},
	{"default_dns", K_IPV4, "1.1.1.1", NULL, 0, 0},
	{"dns_listen", K_LISTEN, "127.0.0.1:42069", NULL, 0, 0},
	{"file_sync", K_FILE_SYNC, "", NULL, 0, 0},
	{"vm_defaults.vcpu", K_INT, "1", NULL, 1, 64},
	{"vm_defaults.memory_mib", K_INT, "2048", NULL, 128, 1 << 20},
	{"vm_defaults.disk_size", K_SIZE, "8G", NULL, 0, 0},
};

/* Keys older configs may hold that never did anything here: a warning that
 * says so, not an "unknown key" that suggests a typo. */
static const char *const retired_keys[] = {
	"stats_poll_interval",             /* vm stats reads the VMM's /proc on demand */
	"metrics_poll_interval",           /* no metrics are collected in the background */
	"vm_defaults.system_overlay_size", /* a VM has one disk: vm_defaults.disk_size */
};

static bool is_retired(const char *name)
{
	for (size_t i = 0; i < BNG_ARRAY_LEN(retired_keys); i++)
		if (!strcmp(name, retired_keys[i]))
			return true;
	return false;
}

/* Host-aware defaults (seeds): vcpu = cpus/4 capped at 4, memory = RAM/8
 * capped at 8 GiB; the builtin value is the floor. */
static bool host_default(const char *name, int64_t *out)
{
	if (!strcmp(name, "vm_defaults.vcpu")) {
		long v = bng_host_cpus() / 4;
		*out = v > 4 ? 4 : v;
		return true;
	}
	if (!strcmp(name, "vm_defaults.memory_mib")) {
		uint64_t v = bng_host_mem_mib() / 8;
		*out = v > 8192 ? 8192 : (int64_t)v;
		return true;
	}
	return false;
}

static const key_spec *find_key(const char *name)
{
	for (size_t i = 0; i < BNG_ARRAY_LEN(keys); i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

static bool is_table_prefix(const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < BNG_ARRAY_LEN(keys); i++)
		if (!strncmp(keys[i].name, name, n) && keys[i].name[n] == '.')
			return true;
	return false;
}

static bool enum_has(const char *choices, const char *v)
{
	size_t n = strlen(v);
	for (const char *c = choices; *c;) {
		const char *bar = strchr(c, '|');
		size_t len = bar ? (size_t)(bar - c) : strlen(c);
		if (len == n && !strncmp(c, v, n))
			return true;
		if (!bar)
			break;
		c = bar + 1;
	}
	return false;
}

/* [[file_sync]] entries: {host = "~/..." or an absolute path, guest = an
 * absolute path, mode = "0600" (optional)}. Whether host stays inside the
 * owner's home is checked when it is copied (symlinks can change). */
static json_t *convert_file_sync(json_t *raw, char **why)
{
	if (!json_is_array(raw)) {
		*why = bng_asprintf("must be [[file_sync]] tables with host, guest and mode");
		return NULL;
	}
	size_t i;
	json_t *e;
	json_array_foreach(raw, i, e) {
		const char *k;
		json_t *v;
		json_object_foreach(e, k, v) {
			if (strcmp(k, "host") && strcmp(k, "guest") && strcmp(k, "mode")) {
				*why = bng_asprintf("entry %zu: unknown key '%s' (host, guest, mode)", i + 1, k);
				return NULL;
			}
			if (!json_is_string(v)) {
				*why = bng_asprintf("entry %zu: %s must be a string", i + 1, k);
				return NULL;
			}
		}
		const char *host = json_string_value(json_object_get(e, "host"));
		const char *guest = json_string_value(json_object_get(e, "guest"));
		const char *mode = json_string_value(json_object_get(e, "mode"));
		char *end = NULL;
		long m = mode ? strtol(mode, &end, 8) : 0;
		if (!host || (strncmp(host, "~/", 2) && host[0] != '/'))
			*why = bng_asprintf("entry %zu: host must be a path in your home (\"~/...\" or absolute)", i + 1);
		else if (!guest || guest[0] != '/' || strstr(guest, "/../") || !strcmp(guest, "/"))
			*why = bng_asprintf("entry %zu: guest must be an absolute path like /root/.config/x", i + 1);
		else if (mode && (!*mode || *end || m < 0 || m > 07777))
			*why = bng_asprintf("entry %zu: mode must be octal like \"0600\" (got \"%s\")", i + 1, mode);
		if (*why)
			return NULL;
	}
	return json_incref(raw);
}

/* Converts a raw TOML value to the stored form, or explains the problem in
 * why (a static or thread-local message). */
static json_t *convert(const key_spec *k, json_t *raw, char **why)
{
	if (k->type == K_FILE_SYNC)
		return convert_file_sync(raw, why);
	if (k->type == K_BOOL) {
		if (!json_is_boolean(raw)) {
			*why = bng_asprintf("must be true or false");
			return NULL;
		}
		return json_incref(raw);
	}
	if (k->type == K_INT) {
		if (!json_is_integer(raw)) {
			*why = bng_asprintf("must be an integer");
			return NULL;
		}
		json_int_t v = json_integer_value(raw);
		if (v < k->min || v > k->max) {
			*why = bng_asprintf("must be between %lld and %lld (got %lld)", (long long)k->min,
					    (long long)k->max, (long long)v);
			return NULL;
		}
		return json_integer(v);
	}
	if (k->type == K_SIZE && json_is_integer(raw)) {
		if (json_integer_value(raw) > 0)
			return json_integer(json_integer_value(raw));
		*why = bng_asprintf("must be a positive number of bytes or a size like 512M (got %lld)",
				    (long long)json_integer_value(raw));
		return NULL;
	}
	if (k->type == K_SIZE && !json_is_string(raw)) {
		*why = bng_asprintf("must be a number of bytes or a size like 512M or 8G");
		return NULL;
	}
	if (k->type == K_DURATION && json_is_integer(raw) && json_integer_value(raw) >= 0)
		return json_integer(json_integer_value(raw));
	if (!json_is_string(raw)) {
		*why = bng_asprintf("must be a string");
		return NULL;
	}
	const char *s = json_string_value(raw);
	switch (k->type) {
	case K_ENUM:
		if (!enum_has(k->choices, s)) {
			*why = bng_asprintf("must be one of %s (got \"%s\")", k->choices, s);
			return NULL;
		}
		break;
	case K_SIZE: {
		uint64_t v;
		if (bng_parse_size(s, &v) || v == 0 || v > (uint64_t)INT64_MAX) {
			*why = bng_asprintf("must be a size like 512M or 8G (got \"%s\")", s);
			return NULL;
		}
		return json_integer((json_int_t)v);
	}
	case K_DURATION: {
		int64_t v;
		if (bng_parse_duration(s, &v)) {
			*why = bng_asprintf("must be a duration like 0, 90s, 30m or 24h (got \"%s\")", s);
			return NULL;
		}
		return json_integer(v);
	}
	case K_IPV4: {
		struct in_addr a;
		if (inet_pton(AF_INET, s, &a) != 1) {
			*why = bng_asprintf("must be an IPv4 address (got \"%s\")", s);
			return NULL;
		}
		break;
	}
	case K_LISTEN: { /* IPv4:port, or "off" / "" */
		char ip[16];
		const char *colon = strrchr(s, ':');
		struct in_addr a;
		char *end;
		long port = colon && isdigit((unsigned char)colon[1]) ? strtol(colon + 1, &end, 10) : -1;
		if (*s && strcmp(s, "off") &&
		    (!colon || (size_t)(colon - s) >= sizeof(ip) || port < 1 || port > 65535 || *end ||
		     (memcpy(ip, s, (size_t)(colon - s)), ip[colon - s] = '\0', inet_pton(AF_INET, ip, &a) != 1))) {
			*why = bng_asprintf("must be an IPv4 address and port like 127.0.0.1:42069, or \"off\" (got \"%s\")", s);
			return NULL;
		}
		break;
	}
	case K_CIDR: {
		char ip[32];
		const char *slash = strchr(s, '/');
		struct in_addr a;
		char *end;
		long bits = slash && isdigit((unsigned char)slash[1]) ? strtol(slash + 1, &end, 10) : -1;
		if (!slash || (size_t)(slash - s) >= sizeof(ip) || bits < 8 || *end || bits > 30 ||
		    (memcpy(ip, s, (size_t)(slash - s)), ip[slash - s] = '\0', inet_pton(AF_INET, ip, &a) != 1)) {
			*why = bng_asprintf("must be an IPv4 network like 172.16.0.0/24 with a prefix of 8..30 (got \"%s\")", s);
			return NULL;
		}
		break;
	}
	case K_IFNAME:
		if (!*s || strlen(s) > 15 || strpbrk(s, "/ \t:")) {
			*why = bng_asprintf("must be a network interface name of 1..15 characters without '/', ':' or spaces (got \"%s\")", s);
			return NULL;
		}
		break;
	case K_KARGS: { /* printable, quotes paired (they group words for the kernel), short */
		size_t quotes = 0, n = strlen(s);
		bool ok = n <= 512;
		for (const char *c = s; ok && *c; c++) {
			ok = (unsigned char)*c >= 0x20 && *c != 0x7f;
			quotes += *c == '"';
		}
		if (!ok || quotes % 2) {
			*why = bng_asprintf("must be kernel arguments on one line, at most 512 bytes, with paired double quotes");
			return NULL;
		}
		break;
	}
	default:
		break;
	}
	return json_string(s);
}

/* Flattens the TOML document into dotted keys, collecting unknown ones. */
static void flatten(json_t *obj, const char *prefix, json_t *flat)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v) {
		char *name = *prefix ? bng_asprintf("%s.%s", prefix, k) : bng_strdup(k);
		if (json_is_object(v) && is_table_prefix(name))
			flatten(v, name, flat);
		else
			json_object_set(flat, name, v);
		free(name);
	}
}

static void set_value(bng_config *cfg, const char *name, json_t *v, const char *source)
{
	json_object_set_new(cfg->values, name, v);
	json_object_set_new(cfg->sources, name, json_string(source));
}

int bng_config_parse(bng_config *cfg, const char *path, const char *text, size_t len, const char *config_dir)
{
	json_t *doc = NULL;
	int rc = 0;
	memset(cfg, 0, sizeof(*cfg));
	cfg->path = bng_strdup(path);
	cfg->values = json_object();
	cfg->sources = json_object();
	cfg->warnings = json_array();
	cfg->lines = NULL;
	if (text) {
		cfg->file_found = true;
		if (bng_toml_parse(text, len, &doc, &cfg->lines, NULL)) {
			char *msg = bng_strdup(banger_error_last());
			/* "line N: msg" -> "path:N: msg" */
			rc = bng_err(BANGER_ECONFIG, "%s:%s", path, msg + strlen("line "));
			free(msg);
			bng_config_free(cfg);
			return rc;
		}
	} else {
		doc = json_object();
	}
	if (!cfg->lines)
		cfg->lines = json_object();
	json_t *flat = json_object();
	flatten(doc, "", flat);
	const char *name;
	json_t *raw;
	json_object_foreach(flat, name, raw) {
		const key_spec *k = find_key(name);
		json_int_t line = json_integer_value(json_object_get(cfg->lines, name));
		if (!k && is_table_prefix(name)) {
			rc = bng_err(BANGER_ECONFIG, "%s:%lld: %s: must be a table ([%s])", path, (long long)line, name, name);
			break;
		}
		if (!k && is_retired(name)) {
			json_array_append_new(cfg->warnings, json_sprintf("%s:%lld: '%s' is no longer used: remove it (ignored)",
									  path, (long long)line, name));
			continue;
		}
		if (!k) {
			/* a whole unknown table has no line of its own: use its first key's */
			if (!line) {
				const char *lk;
				json_t *lv;
				size_t n = strlen(name);
				json_object_foreach(cfg->lines, lk, lv) if (!strncmp(lk, name, n) && lk[n] == '.' &&
									    (!line || json_integer_value(lv) < line))
					line = json_integer_value(lv);
			}
			json_array_append_new(cfg->warnings,
					      json_sprintf("%s:%lld: unknown key '%s' (ignored)", path, (long long)line, name));
			continue;
		}
		char *why = NULL;
		json_t *v = convert(k, raw, &why);
		if (!v) {
			rc = bng_err(BANGER_ECONFIG, "%s:%lld: %s: %s", path, (long long)line, name, why);
			free(why);
			break;
		}
		set_value(cfg, name, v, "config");
	}
	json_decref(flat);
	json_decref(doc);
	if (rc) {
		bng_config_free(cfg);
		return rc;
	}
	for (size_t i = 0; i < BNG_ARRAY_LEN(keys); i++) {
		const key_spec *k = &keys[i];
		if (json_object_get(cfg->values, k->name))
			continue;
		char *why = NULL;
		json_t *def = k->type == K_INT	     ? json_integer(strtoll(k->def, NULL, 10))
			      : k->type == K_BOOL      ? json_boolean(!strcmp(k->def, "true"))
			      : k->type == K_FILE_SYNC ? json_array()
						       : json_string(k->def);
		json_t *v = convert(k, def, &why);
		json_decref(def);
		if (!v)
			abort(); /* builtin defaults are valid by construction */
		int64_t host;
		if (host_default(k->name, &host) && host >= json_integer_value(v)) {
			json_decref(v);
			set_value(cfg, k->name, json_integer(host), "auto");
		} else {
			set_value(cfg, k->name, v, "builtin");
		}
	}
	if (!*bng_config_str(cfg, "ssh_key_path"))
		json_object_set_new(cfg->values, "ssh_key_path", json_sprintf("%s/ssh/id_ed25519", config_dir));
	return 0;
}

int bng_config_load(bng_config *cfg, const char *path, const char *config_dir)
{
	char *text = NULL;
	size_t len = 0;
	if (access(path, F_OK) == 0 || errno != ENOENT) {
		int rc = bng_read_file(path, &text, &len);
		if (rc)
			return bng_err(BANGER_ECONFIG, "cannot read config %s: %s", path, banger_error_last());
	}
	int rc = bng_config_parse(cfg, path, text, len, config_dir);
	free(text);
	return rc;
}

void bng_config_free(bng_config *cfg)
{
	free(cfg->path);
	json_decref(cfg->values);
	json_decref(cfg->sources);
	json_decref(cfg->lines);
	json_decref(cfg->warnings);
	memset(cfg, 0, sizeof(*cfg));
}

const char *bng_config_str(const bng_config *cfg, const char *key)
{
	const char *s = json_string_value(json_object_get(cfg->values, key));
	return s ? s : "";
}

int64_t bng_config_int(const bng_config *cfg, const char *key)
{
	return json_integer_value(json_object_get(cfg->values, key));
}

bool bng_config_bool(const bng_config *cfg, const char *key)
{
	return json_is_true(json_object_get(cfg->values, key));
}

json_t *bng_config_to_json(const bng_config *cfg)
{
	json_t *vals = json_object();
	for (size_t i = 0; i < BNG_ARRAY_LEN(keys); i++) {
		const char *name = keys[i].name;
		json_t *e = json_pack("{sOsO}", "value", json_object_get(cfg->values, name), "source",
				      json_object_get(cfg->sources, name));
		if (keys[i].type == K_SIZE || keys[i].type == K_DURATION) {
			json_int_t n = json_integer_value(json_object_get(cfg->values, name));
			char *text = keys[i].type == K_SIZE ? bng_format_size((uint64_t)n) : bng_asprintf("%llds", (long long)n);
			json_object_set_new(e, "text", json_string(text));
			free(text);
		}
		json_t *line = json_object_get(cfg->lines, name);
		if (line)
			json_object_set(e, "line", line);
		json_object_set_new(vals, name, e);
	}
	return json_pack("{sssbsosO}", "path", cfg->path, "found", cfg->file_found, "values", vals, "warnings",
			 cfg->warnings);
}

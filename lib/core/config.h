/* banger's config: ~/.config/banger/config.toml resolved against built-in
 * and host-aware defaults, each value remembering where it came from. */
#ifndef BANGER_CONFIG_H
#define BANGER_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
	char *path;        /* the file read (or that would be read) */
	bool file_found;
	json_t *values;    /* "vm_defaults.vcpu" -> 2, "bridge_name" -> "br-banger", ... */
	json_t *sources;   /* same keys -> "config" | "auto" | "builtin" */
	json_t *lines;     /* keys set in the file -> line number */
	json_t *warnings;  /* array of strings, e.g. unknown keys */
} bng_config;

/* Loads path (missing file = all defaults). On a bad file returns
 * BANGER_ECONFIG with "<path>:<line>: <key>: <problem>". config_dir is
 * where the default ssh key lives. */
int bng_config_load(bng_config *cfg, const char *path, const char *config_dir);
/* Parses config text as if it came from path (used by load and by tests). */
int bng_config_parse(bng_config *cfg, const char *path, const char *text, size_t len,
		     const char *config_dir);
void bng_config_free(bng_config *cfg);

const char *bng_config_str(const bng_config *cfg, const char *key);
int64_t bng_config_int(const bng_config *cfg, const char *key);
bool bng_config_bool(const bng_config *cfg, const char *key);
/* {"path", "found", "values": {key: {"value", "source", "line"?, "text"?}},
 * "warnings": [...]}; "text" is the human form of sizes and durations. */
json_t *bng_config_to_json(const bng_config *cfg);

#endif

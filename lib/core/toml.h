/* A small TOML parser for banger's config subset: tables ([a] and [a.b]),
 * dotted and quoted keys, basic and literal strings, integers (decimal,
 * 0x/0o/0b, underscores), booleans, arrays (nested, multi-line, trailing
 * comma), arrays of tables ([[a]]) and comments. Floats, dates, inline
 * tables and multi-line strings are rejected with a clear error: config
 * does not need them, and no C TOML library is packaged in Debian. */
#ifndef BANGER_TOML_H
#define BANGER_TOML_H

#include <jansson.h>
#include <stddef.h>

/* Parses text into a JSON object (tables become objects). On success *out
 * is the document and *lines (if non-NULL) maps each dotted key path
 * ("vm_defaults.vcpu") to the line it was set on. On failure returns
 * BANGER_ECONFIG with message "line N: ..." and *errline = N. */
int bng_toml_parse(const char *text, size_t len, json_t **out, json_t **lines, int *errline);

#endif

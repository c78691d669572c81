/* TOML subset parser; see toml.h for what is accepted. Works on a length-
 * delimited buffer so embedded NULs are caught, never read past. */
#include "toml.h"
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOML_MAX_DEPTH 32

typedef struct {
	const char *p, *end;
	int line;
	int errline;
	char err[256];
	json_t *root;
	json_t *lines;
	json_t *table;      /* current table (borrowed) */
	json_t *defined;    /* set of explicitly defined table paths */
	json_t *arrays;     /* set of array-of-tables paths ([[x]]) */
	char *table_path;   /* dotted path of the current table, "" for root */
} parser;

static int fail(parser *ps, const char *fmt, ...) BNG_PRINTF(2, 3);
static int fail(parser *ps, const char *fmt, ...)
{
	if (ps->err[0])
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ps->err, sizeof(ps->err), fmt, ap);
	va_end(ap);
	ps->errline = ps->line;
	return -1;
}

static int peek(parser *ps) { return ps->p < ps->end ? (unsigned char)*ps->p : -1; }

static void skip_ws(parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'))
		ps->p++;
}

static void skip_comment(parser *ps)
{
	if (peek(ps) == '#')
		while (ps->p < ps->end && *ps->p != '\n')
			ps->p++;
}

/* Consumes the end of a line: optional comment, then '\n', '\r\n' or EOF. */
static int expect_eol(parser *ps)
{
	skip_ws(ps);
	skip_comment(ps);
	if (ps->p >= ps->end)
		return 0;
	if (*ps->p == '\r' && ps->p + 1 < ps->end && ps->p[1] == '\n')
		ps->p++;
	if (*ps->p != '\n')
		return fail(ps, "unexpected '%c' after value (expected end of line)", *ps->p);
	ps->p++;
	ps->line++;
	return 0;
}

/* Skips blank lines, whitespace and comments, e.g. inside arrays. */
static void skip_space_nl(parser *ps)
{
	for (;;) {
		skip_ws(ps);
		skip_comment(ps);
		if (ps->p < ps->end && (*ps->p == '\n' || *ps->p == '\r')) {
			if (*ps->p == '\n')
				ps->line++;
			ps->p++;
			continue;
		}
		return;
	}
}

static void put_utf8(char *buf, size_t *n, unsigned long cp)
{
	if (cp < 0x80) {
		buf[(*n)++] = (char)cp;
	} else if (cp < 0x800) {
		buf[(*n)++] = (char)(0xC0 | (cp >> 6));
		buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		buf[(*n)++] = (char)(0xE0 | (cp >> 12));
		buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
		buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
	} else {
		buf[(*n)++] = (char)(0xF0 | (cp >> 18));
		buf[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
		buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
		buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
	}
}

/* Parses a "basic" or 'literal' single-line string; returns malloc'd text. */
static char *parse_string(parser *ps)
{
	char quote = *ps->p++;
	if (ps->p + 1 < ps->end && ps->p[0] == quote && ps->p[1] == quote) {
		fail(ps, "multi-line strings are not supported");
		return NULL;
	}
	size_t cap = (size_t)(ps->end - ps->p) * 2 + 8, n = 0;
	char *buf = bng_xmalloc(cap);
	int rc = 0;
	for (;;) {
		if (ps->p >= ps->end || *ps->p == '\n') {
			rc = fail(ps, "unterminated string");
			goto out;
		}
		char c = *ps->p++;
		if (c == quote)
			break;
		if ((unsigned char)c < 0x20 && c != '\t') {
			rc = fail(ps, "control character in string");
			goto out;
		}
		if (c != '\\' || quote == '\'') {
			buf[n++] = c;
			continue;
		}
		if (ps->p >= ps->end) {
			rc = fail(ps, "unterminated string");
			goto out;
		}
		char e = *ps->p++;
		switch (e) {
		case 'b': buf[n++] = '\b'; break;
		case 't': buf[n++] = '\t'; break;
		case 'n': buf[n++] = '\n'; break;
		case 'f': buf[n++] = '\f'; break;
		case 'r': buf[n++] = '\r'; break;
		case '"': buf[n++] = '"'; break;
		case '\\': buf[n++] = '\\'; break;
		case 'u':
		case 'U': {
			int digits = e == 'u' ? 4 : 8;
			unsigned long cp = 0;
			for (int i = 0; i < digits; i++) {
				if (ps->p >= ps->end || !isxdigit((unsigned char)*ps->p)) {
					rc = fail(ps, "invalid \\%c escape: expected %d hex digits", e, digits);
					goto out;
				}
				char h = *ps->p++;
				cp = cp * 16 + (unsigned long)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
			}
			if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
				rc = fail(ps, "invalid unicode escape U+%lX", cp);
				goto out;
			}
			put_utf8(buf, &n, cp);
			break;
		}
		default:
			rc = fail(ps, "invalid escape '\\%c' in string", e);
			goto out;
		}
	}
	buf[n] = '\0';
out:
	if (rc) {
		free(buf);
		buf = NULL;
	}
	return buf;
}

static char *parse_key_part(parser *ps)
{
	int c = peek(ps);
	if (c == '"' || c == '\'')
		return parse_string(ps);
	const char *start = ps->p;
	while (ps->p < ps->end && (isalnum((unsigned char)*ps->p) || *ps->p == '_' || *ps->p == '-'))
		ps->p++;
	if (ps->p == start) {
		if (c < 0 || c == '\n')
			fail(ps, "expected a key");
		else
			fail(ps, "invalid character '%c' in key", c);
		return NULL;
	}
	size_t n = (size_t)(ps->p - start);
	char *k = bng_xmalloc(n + 1);
	memcpy(k, start, n);
	k[n] = '\0';
	return k;
}

/* Parses a dotted key into a JSON array of parts. */
static json_t *parse_key(parser *ps)
{
	json_t *parts = json_array();
	for (;;) {
		skip_ws(ps);
		char *part = parse_key_part(ps);
		if (!part) {
			json_decref(parts);
			return NULL;
		}
		json_t *s = json_string(part);
		free(part);
		if (!s) {
			fail(ps, "key is not valid UTF-8");
			json_decref(parts);
			return NULL;
		}
		json_array_append_new(parts, s);
		skip_ws(ps);
		if (peek(ps) != '.')
			return parts;
		ps->p++;
	}
}

static json_t *parse_value(parser *ps, int depth);

/* Records that the number text breaks TOML's integer syntax; returns NULL. */
static json_t *invalid_value(parser *ps, const char *text)
{
	fail(ps, "invalid value '%s'", text);
	return NULL;
}

static json_t *parse_integer(parser *ps)
{
	char buf[80];
	size_t n = 0;
	while (ps->p < ps->end && (isalnum((unsigned char)*ps->p) || *ps->p == '_' || *ps->p == '+' ||
				   *ps->p == '-' || *ps->p == '.' || *ps->p == ':')) {
		if (n + 1 >= sizeof(buf)) {
			fail(ps, "number too long");
			return NULL;
		}
		buf[n++] = *ps->p++;
	}
	buf[n] = '\0';
	bool hex = strstr(buf, "0x") != NULL;
	if (n >= 10 && isdigit((unsigned char)buf[0]) && buf[4] == '-' && buf[7] == '-') {
		fail(ps, "unsupported value '%s' (dates are not supported)", buf);
		return NULL;
	}
	if (strpbrk(buf, ".:") || (!hex && strpbrk(buf, "eE")) || strstr(buf, "inf") || strstr(buf, "nan")) {
		fail(ps, "unsupported value '%s' (floats and dates are not supported)", buf);
		return NULL;
	}
	const char *s = buf;
	bool neg = false;
	if (*s == '+' || *s == '-') {
		neg = *s == '-';
		s++;
	}
	int base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o' || s[1] == 'b')) {
		if (buf[0] == '+' || buf[0] == '-')
			return invalid_value(ps, buf);
		base = s[1] == 'x' ? 16 : s[1] == 'o' ? 8 : 2;
		s += 2;
	} else if (s[0] == '0' && s[1] != '\0') {
		return invalid_value(ps, buf); /* leading zeros are not allowed */
	}
	char digits[80];
	size_t d = 0;
	bool prev_digit = false;
	for (; *s; s++) {
		if (*s == '_') {
			if (!prev_digit || !s[1] || s[1] == '_')
				return invalid_value(ps, buf);
			prev_digit = false;
			continue;
		}
		digits[d++] = *s;
		prev_digit = true;
	}
	digits[d] = '\0';
	if (d == 0)
		return invalid_value(ps, buf);
	char *endp;
	errno = 0;
	unsigned long long v = strtoull(digits, &endp, base);
	if (*endp || digits[0] == '-' || digits[0] == '+')
		return invalid_value(ps, buf);
	if (errno == ERANGE || v > (unsigned long long)INT64_MAX + (neg ? 1u : 0u)) {
		fail(ps, "integer '%s' out of range", buf);
		return NULL;
	}
	return json_integer(neg ? (json_int_t)(0 - v) : (json_int_t)v);
}

static json_t *parse_array(parser *ps, int depth)
{
	ps->p++; /* '[' */
	json_t *arr = json_array();
	for (;;) {
		skip_space_nl(ps);
		if (peek(ps) == ']') {
			ps->p++;
			return arr;
		}
		json_t *v = parse_value(ps, depth + 1);
		if (!v) {
			json_decref(arr);
			return NULL;
		}
		json_array_append_new(arr, v);
		skip_space_nl(ps);
		int c = peek(ps);
		if (c == ',') {
			ps->p++;
			continue;
		}
		if (c == ']') {
			ps->p++;
			return arr;
		}
		fail(ps, c < 0 ? "unterminated array" : "expected ',' or ']' in array");
		json_decref(arr);
		return NULL;
	}
}

static json_t *parse_value(parser *ps, int depth)
{
	if (depth > TOML_MAX_DEPTH) {
		fail(ps, "arrays nested too deeply");
		return NULL;
	}
	skip_ws(ps);
	int c = peek(ps);
	if (c == '"' || c == '\'') {
		char *s = parse_string(ps);
		if (!s)
			return NULL;
		json_t *v = json_string(s);
		free(s);
		if (!v)
			fail(ps, "string is not valid UTF-8");
		return v;
	}
	if (c == '[')
		return parse_array(ps, depth);
	if (c == '{') {
		fail(ps, "inline tables are not supported; use a [table] header");
		return NULL;
	}
	size_t left = (size_t)(ps->end - ps->p);
	if (left >= 4 && !memcmp(ps->p, "true", 4) && (left == 4 || !isalnum((unsigned char)ps->p[4]))) {
		ps->p += 4;
		return json_true();
	}
	if (left >= 5 && !memcmp(ps->p, "false", 5) && (left == 5 || !isalnum((unsigned char)ps->p[5]))) {
		ps->p += 5;
		return json_false();
	}
	if (c >= 0 && (isdigit(c) || c == '+' || c == '-'))
		return parse_integer(ps);
	if (c < 0 || c == '\n' || c == '\r' || c == '#')
		fail(ps, "missing value");
	else
		fail(ps, "invalid value starting with '%c'", c);
	return NULL;
}

static char *join_path(const char *prefix, json_t *parts, size_t upto)
{
	char *out = bng_strdup(prefix);
	for (size_t i = 0; i < upto; i++) {
		char *next = *out ? bng_asprintf("%s.%s", out, json_string_value(json_array_get(parts, i)))
				  : bng_strdup(json_string_value(json_array_get(parts, i)));
		free(out);
		out = next;
	}
	return out;
}

/* Walks/creates tables along parts[0..n) starting at base. */
static json_t *descend(parser *ps, json_t *base, json_t *parts, size_t n, const char *base_path)
{
	json_t *t = base;
	for (size_t i = 0; i < n; i++) {
		const char *k = json_string_value(json_array_get(parts, i));
		json_t *next = json_object_get(t, k);
		if (!next) {
			next = json_object();
			json_object_set_new(t, k, next);
		} else if (!json_is_object(next)) {
			char *p = join_path(base_path, parts, i + 1);
			fail(ps, "key '%s' is already a value, not a table", p);
			free(p);
			return NULL;
		}
		t = next;
	}
	return t;
}

/* [[a.b]]: appends a new table to the array a.b and makes it current. Its
 * keys' lines are recorded as "a.b.<index>.<key>". */
static int parse_array_table_header(parser *ps)
{
	ps->p += 2; /* "[[" */
	skip_ws(ps);
	json_t *parts = parse_key(ps);
	if (!parts)
		return -1;
	if (ps->end - ps->p < 2 || ps->p[0] != ']' || ps->p[1] != ']') {
		json_decref(parts);
		return fail(ps, "expected ']]' to close an array of tables header");
	}
	ps->p += 2;
	size_t n = json_array_size(parts);
	char *path = join_path("", parts, n);
	int rc = 0;
	json_t *parent = descend(ps, ps->root, parts, n - 1, "");
	const char *last = json_string_value(json_array_get(parts, n - 1));
	json_t *arr = parent ? json_object_get(parent, last) : NULL;
	if (!parent) {
		rc = -1;
	} else if (arr && !json_object_get(ps->arrays, path)) {
		rc = fail(ps, "key '%s' is already a value or a table, not an array of tables", path);
	} else {
		if (!arr) {
			arr = json_array();
			json_object_set_new(parent, last, arr);
			json_object_set_new(ps->arrays, path, json_true());
			json_object_set_new(ps->lines, path, json_integer(ps->line));
		}
		json_t *t = json_object();
		json_array_append_new(arr, t);
		ps->table = t;
		free(ps->table_path);
		ps->table_path = bng_asprintf("%s.%zu", path, json_array_size(arr) - 1);
	}
	free(path);
	json_decref(parts);
	return rc ? rc : expect_eol(ps);
}

static int parse_table_header(parser *ps)
{
	if (ps->end - ps->p >= 2 && ps->p[1] == '[')
		return parse_array_table_header(ps);
	ps->p++; /* '[' */
	json_t *parts = parse_key(ps);
	if (!parts)
		return -1;
	if (peek(ps) != ']') {
		json_decref(parts);
		return fail(ps, "expected ']' to close table header");
	}
	ps->p++;
	char *path = join_path("", parts, json_array_size(parts));
	int rc = 0;
	if (json_object_get(ps->defined, path)) {
		rc = fail(ps, "table [%s] defined twice", path);
	} else {
		json_t *t = descend(ps, ps->root, parts, json_array_size(parts), "");
		if (!t) {
			rc = -1;
		} else {
			json_object_set_new(ps->defined, path, json_true());
			json_object_set_new(ps->lines, path, json_integer(ps->line));
			ps->table = t;
			free(ps->table_path);
			ps->table_path = path;
			path = NULL;
		}
	}
	free(path);
	json_decref(parts);
	return rc ? rc : expect_eol(ps);
}

static int parse_keyval(parser *ps)
{
	json_t *parts = parse_key(ps);
	if (!parts)
		return -1;
	skip_ws(ps);
	if (peek(ps) != '=') {
		json_decref(parts);
		return fail(ps, "expected '=' after key");
	}
	ps->p++;
	size_t n = json_array_size(parts);
	char *full = join_path(ps->table_path, parts, n);
	int rc = -1;
	json_t *t = descend(ps, ps->table, parts, n - 1, ps->table_path);
	if (t) {
		const char *last = json_string_value(json_array_get(parts, n - 1));
		if (json_object_get(t, last)) {
			fail(ps, "key '%s' defined twice", full);
		} else {
			int line = ps->line;
			json_t *v = parse_value(ps, 0);
			if (v) {
				json_object_set_new(t, last, v);
				json_object_set_new(ps->lines, full, json_integer(line));
				rc = expect_eol(ps);
			}
		}
	}
	free(full);
	json_decref(parts);
	return rc;
}

int bng_toml_parse(const char *text, size_t len, json_t **out, json_t **lines, int *errline)
{
	parser ps = {.p = text, .end = text + len, .line = 1};
	ps.root = json_object();
	ps.lines = json_object();
	ps.defined = json_object();
	ps.arrays = json_object();
	ps.table = ps.root;
	ps.table_path = bng_strdup("");
	int rc = 0;
	if (memchr(text, '\0', len)) {
		const char *nul = memchr(text, '\0', len);
		for (const char *c = text; c < nul; c++)
			if (*c == '\n')
				ps.line++;
		rc = fail(&ps, "NUL byte in file");
	}
	while (!rc) {
		skip_space_nl(&ps);
		if (ps.p >= ps.end)
			break;
		rc = *ps.p == '[' ? parse_table_header(&ps) : parse_keyval(&ps);
	}
	free(ps.table_path);
	json_decref(ps.defined);
	json_decref(ps.arrays);
	if (rc) {
		json_decref(ps.root);
		json_decref(ps.lines);
		if (errline)
			*errline = ps.errline;
		return bng_err(BANGER_ECONFIG, "line %d: %s", ps.errline, ps.err);
	}
	*out = ps.root;
	if (lines)
		*lines = ps.lines;
	else
		json_decref(ps.lines);
	return 0;
}

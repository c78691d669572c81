/* The TOML subset parser (lib/core/toml.c): what it accepts, and that every
 * rejection names the right line. */
#include "check.h"

#include "core/toml.h"

#include <jansson.h>

/* Parses text that must be valid; returns the document (or NULL). */
static json_t *parse_ok(int at, const char *text, size_t len, json_t **lines)
{
	json_t *doc = NULL;
	int errline = -1;
	int rc = bng_toml_parse(text, len, &doc, lines, &errline);
	check_total++;
	if (rc != 0 || !doc) {
		check_failed++;
		fprintf(stderr, "%s:%d: check failed: document should parse, got %d: %s\n", __FILE__, at, rc,
			banger_error_last());
		return NULL;
	}
	return doc;
}

/* Parses text that must fail on want_line with a message containing what. */
static void expect_error(int at, const char *text, size_t len, int want_line, const char *what)
{
	json_t *doc = NULL, *lines = NULL;
	int errline = -1;
	int before = check_failed;
	int rc = bng_toml_parse(text, len, &doc, &lines, &errline);
	CHECK_EQ_INT(rc, BANGER_ECONFIG);
	CHECK_EQ_INT(banger_error_last_code(), BANGER_ECONFIG);
	CHECK(doc == NULL);
	CHECK(lines == NULL);
	CHECK_EQ_INT(errline, want_line);
	char prefix[32];
	snprintf(prefix, sizeof(prefix), "line %d: ", want_line);
	CHECK(strncmp(banger_error_last(), prefix, strlen(prefix)) == 0);
	CHECK_STR_CONTAINS(banger_error_last(), what);
	if (check_failed != before)
		fprintf(stderr, "%s:%d: ^ for document \"%.*s\" (message \"%s\")\n", __FILE__, at, (int)len, text,
			banger_error_last());
	json_decref(doc);
	json_decref(lines);
}

#define PARSE_OK(text, lines) parse_ok(__LINE__, text, strlen(text), lines)
#define EXPECT_ERROR(text, line, what) expect_error(__LINE__, text, strlen(text), line, what)

static const char valid_doc[] =
	"# a config in the supported subset\n"                         /* 1 */
	"title = \"banger\"   # trailing comment\n"                     /* 2 */
	"literal = 'C:\\path\\no\\escape'\n"                            /* 3 */
	"escapes = \"t\\tn\\nq\\\"b\\\\e\\u00e9\\U0001F600\\b\\f\\r\"\n" /* 4 */
	"\"quoted key\" = 1\n"                                          /* 5 */
	"'literal key' = 2\n"                                           /* 6 */
	"site.\"example.com\" = true\n"                                 /* 7 */
	"a . b.c = 3\n"                                                 /* 8 */
	"dec = 1_000_000\n"                                             /* 9 */
	"neg = -42\n"                                                   /* 10 */
	"pos = +7\n"                                                    /* 11 */
	"hex = 0xDEAD_beef\n"                                           /* 12 */
	"oct = 0o755\n"                                                 /* 13 */
	"bin = 0b1010\n"                                                /* 14 */
	"zero = 0\n"                                                    /* 15 */
	"min = -9223372036854775808\n"                                  /* 16 */
	"max = 9223372036854775807\n"                                   /* 17 */
	"yes = true\n"                                                  /* 18 */
	"no = false\n"                                                  /* 19 */
	"empty = \"\"\n"                                                /* 20 */
	"nested = [\n"                                                  /* 21 */
	"  [1, 2], # comment after an element\n"                        /* 22 */
	"  [\"x\", 'y'],\n"                                             /* 23 */
	"  [],\n"                                                       /* 24 */
	"  # a comment line inside the array\n"                         /* 25 */
	"  [[true]],\n"                                                 /* 26 */
	"]\n"                                                           /* 27 */
	"after = 1\n"                                                   /* 28 */
	"\n"                                                            /* 29 */
	"[server]\n"                                                    /* 30 */
	"port = 8080\n"                                                 /* 31 */
	"\n"                                                            /* 32 */
	"[server.tls]   # comment after a header\n"                     /* 33 */
	"enabled = false\n"                                             /* 34 */
	"[ spaced . \"quoted.part\" ]\n"                                /* 35 */
	"k = 'v'";                                                      /* 36, no final newline */

static void test_valid(void)
{
	json_t *lines = NULL;
	json_t *doc = PARSE_OK(valid_doc, &lines);
	if (!doc)
		return;
	CHECK_EQ_STR(json_string_value(json_object_get(doc, "title")), "banger");
	CHECK_EQ_STR(json_string_value(json_object_get(doc, "literal")), "C:\\path\\no\\escape");
	CHECK_EQ_STR(json_string_value(json_object_get(doc, "escapes")),
		     "t\tn\nq\"b\\e\xc3\xa9\xf0\x9f\x98\x80\b\f\r");
	CHECK_EQ_INT(json_integer_value(json_object_get(doc, "quoted key")), 1);
	CHECK_EQ_INT(json_integer_value(json_object_get(doc, "literal key")), 2);
	CHECK(json_is_true(json_object_get(json_object_get(doc, "site"), "example.com")));
	CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(json_object_get(doc, "a"), "b"), "c")), 3);
	CHECK_EQ_INT(json_integer_value(json_object_get(doc, "dec")), 1000000);
	CHECK_EQ_INT(json_integer_value(json_object_get(doc, "neg")), -42);
	CHECK_EQ_INT(json_integer_value(json_object_get(doc, "pos")), 7);
	CHECK_EQ_INT(json_integer_value(json_object_get(doc, "hex")), 0xDEADBEEFLL);
	CHECK_EQ_INT(json_integer_value(json_object_get(doc, "oct")), 0755);
	CHECK_EQ_INT(json_integer_value(json_object_get(doc, "bin")), 10);
	CHECK(json_is_integer(json_object_get(doc, "zero")));
	CHECK_EQ_INT(json_integer_value(json_object_get(doc, "zero")), 0);
	CHECK(json_integer_value(json_object_get(doc, "min")) == INT64_MIN);
	CHECK(json_integer_value(json_object_get(doc, "max")) == INT64_MAX);
	CHECK(json_is_true(json_object_get(doc, "yes")));
	CHECK(json_is_false(json_object_get(doc, "no")));
	CHECK_EQ_STR(json_string_value(json_object_get(doc, "empty")), "");

	json_error_t jerr;
	json_t *want = json_loads("[[1,2],[\"x\",\"y\"],[],[[true]]]", 0, &jerr);
	CHECK(json_equal(json_object_get(doc, "nested"), want));
	json_decref(want);
	CHECK_EQ_INT(json_integer_value(json_object_get(doc, "after")), 1);

	json_t *server = json_object_get(doc, "server");
	CHECK(json_is_object(server));
	CHECK_EQ_INT(json_integer_value(json_object_get(server, "port")), 8080);
	CHECK(json_is_false(json_object_get(json_object_get(server, "tls"), "enabled")));
	CHECK_EQ_STR(json_string_value(
			     json_object_get(json_object_get(json_object_get(doc, "spaced"), "quoted.part"), "k")),
		     "v");
	/* nothing else leaked into the root */
	CHECK_EQ_INT(json_object_size(doc), 23);

	/* lines: dotted paths to where each key was set */
	CHECK_EQ_INT(json_integer_value(json_object_get(lines, "title")), 2);
	CHECK_EQ_INT(json_integer_value(json_object_get(lines, "quoted key")), 5);
	CHECK_EQ_INT(json_integer_value(json_object_get(lines, "a.b.c")), 8);
	CHECK_EQ_INT(json_integer_value(json_object_get(lines, "nested")), 21);
	CHECK_EQ_INT(json_integer_value(json_object_get(lines, "after")), 28);
	CHECK_EQ_INT(json_integer_value(json_object_get(lines, "server.port")), 31);
	CHECK_EQ_INT(json_integer_value(json_object_get(lines, "server.tls.enabled")), 34);
	CHECK_EQ_INT(json_integer_value(json_object_get(lines, "spaced.quoted.part.k")), 36);
	CHECK_EQ_INT(json_integer_value(json_object_get(lines, "server")), 30); /* table headers have lines too */

	json_decref(doc);
	json_decref(lines);
}

static void test_valid_small(void)
{
	/* empty and comment-only documents are empty objects */
	json_t *doc = parse_ok(__LINE__, "", 0, NULL);
	CHECK(json_is_object(doc) && json_object_size(doc) == 0);
	json_decref(doc);
	doc = PARSE_OK("# only a comment\n\n   \t\n# another", NULL);
	CHECK(json_is_object(doc) && json_object_size(doc) == 0);
	json_decref(doc);

	/* CRLF line endings everywhere, lines still counted right */
	json_t *lines = NULL;
	doc = PARSE_OK("a = 1\r\n[t]\r\n# c\r\nb = \"x\" # c\r\nc = [\r\n  1,\r\n  2,\r\n]\r\n\r\nd = true\r\n", &lines);
	if (doc) {
		CHECK_EQ_INT(json_integer_value(json_object_get(doc, "a")), 1);
		json_t *t = json_object_get(doc, "t");
		CHECK_EQ_STR(json_string_value(json_object_get(t, "b")), "x");
		CHECK_EQ_INT(json_array_size(json_object_get(t, "c")), 2);
		CHECK(json_is_true(json_object_get(t, "d")));
		CHECK_EQ_INT(json_integer_value(json_object_get(lines, "a")), 1);
		CHECK_EQ_INT(json_integer_value(json_object_get(lines, "t.b")), 4);
		CHECK_EQ_INT(json_integer_value(json_object_get(lines, "t.c")), 5);
		CHECK_EQ_INT(json_integer_value(json_object_get(lines, "t.d")), 10);
	}
	json_decref(doc);
	json_decref(lines);

	/* sub-tables after dotted keys extend the same table */
	doc = PARSE_OK("[a]\nx = 1\n[a.b]\ny = 2\n[c]\n", NULL);
	if (doc) {
		CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(json_object_get(doc, "a"), "b"), "y")),
			     2);
		CHECK(json_is_object(json_object_get(doc, "c")));
	}
	json_decref(doc);

	/* integer corner cases */
	doc = PARSE_OK("a = -0\nb = 0x0\nc = 0b1111_0000\nd = 0o7_7\ne = 0xff\nf = 1_2_3\n", NULL);
	if (doc) {
		CHECK_EQ_INT(json_integer_value(json_object_get(doc, "a")), 0);
		CHECK_EQ_INT(json_integer_value(json_object_get(doc, "b")), 0);
		CHECK_EQ_INT(json_integer_value(json_object_get(doc, "c")), 0xF0);
		CHECK_EQ_INT(json_integer_value(json_object_get(doc, "d")), 077);
		CHECK_EQ_INT(json_integer_value(json_object_get(doc, "e")), 255);
		CHECK_EQ_INT(json_integer_value(json_object_get(doc, "f")), 123);
	}
	json_decref(doc);

	/* arrays of tables: each header appends a table; lines by index */
	lines = NULL;
	doc = PARSE_OK("top = 1\n[[sync]]\nhost = 'a'\n\n[[sync]]\nhost = 'b'\nmode = '0600'\n[t]\nx = 2\n", &lines);
	if (doc) {
		json_t *arr = json_object_get(doc, "sync");
		CHECK_EQ_INT(json_array_size(arr), 2);
		CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(arr, 0), "host")), "a");
		CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(arr, 1), "mode")), "0600");
		CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(doc, "t"), "x")), 2);
		CHECK_EQ_INT(json_integer_value(json_object_get(lines, "sync")), 2);
		CHECK_EQ_INT(json_integer_value(json_object_get(lines, "sync.1.mode")), 7);
	}
	json_decref(doc);
	json_decref(lines);

	/* a NULL lines pointer is allowed */
	doc = PARSE_OK("x = 'y'\n", NULL);
	CHECK_EQ_STR(json_string_value(json_object_get(doc, "x")), "y");
	json_decref(doc);
}

static void test_errors(void)
{
	/* unterminated strings */
	EXPECT_ERROR("a = 1\nb = \"abc\nc = 2\n", 2, "unterminated string");
	EXPECT_ERROR("a = 1\r\nb = \r\n", 2, "missing value");
	EXPECT_ERROR("d = 1979-05-27\n", 1, "dates are not supported");
	EXPECT_ERROR("a = 1\n\nb = 'abc", 3, "unterminated string");
	EXPECT_ERROR("a = \"abc\\", 1, "unterminated string");
	/* missing value */
	EXPECT_ERROR("a = 1\n\nb =\nc = 2\n", 3, "missing value");
	EXPECT_ERROR("b = # nothing\n", 1, "missing value");
	EXPECT_ERROR("x = 1\nb =", 2, "missing value");
	/* bad escapes */
	EXPECT_ERROR("x = 1\ns = \"a\\qb\"\n", 2, "invalid escape");
	EXPECT_ERROR("\n\ns = \"\\u12\"\n", 3, "hex digits");
	EXPECT_ERROR("s = \"\\uD800\"\n", 1, "invalid unicode escape");
	EXPECT_ERROR("s = \"\\u0000\"\n", 1, "invalid unicode escape");
	EXPECT_ERROR("s = \"\\U00110000\"\n", 1, "invalid unicode escape");
	EXPECT_ERROR("a = 1\ns = \"tab\x01\"\n", 2, "control character");
	/* duplicate keys */
	EXPECT_ERROR("a = 1\nb = 2\na = 3\n", 3, "defined twice");
	EXPECT_ERROR("[t]\nx = 1\n\nx = 2\n", 4, "'t.x' defined twice");
	EXPECT_ERROR("a.b = 1\n[a]\nb = 2\n", 3, "'a.b' defined twice");
	/* table defined twice */
	EXPECT_ERROR("[t]\na = 1\n\n[t]\n", 4, "table [t] defined twice");
	EXPECT_ERROR("[a.b]\n[a]\n[a.b]\n", 3, "table [a.b] defined twice");
	/* key already a value */
	EXPECT_ERROR("a = 1\n[a.b]\n", 2, "already a value");
	EXPECT_ERROR("a = 1\na.b = 2\n", 2, "'a' is already a value");
	EXPECT_ERROR("[t]\nv = 1\n[t.v]\n", 3, "'t.v' is already a value");
	/* floats */
	EXPECT_ERROR("x = 1\ny = 3.14\n", 2, "floats");
	EXPECT_ERROR("y = 1e5\n", 1, "floats");
	EXPECT_ERROR("\ny = +inf\n", 2, "floats");
	EXPECT_ERROR("y = nan\n", 1, "invalid value");
	/* dates */
	EXPECT_ERROR("x = 1\nd = 1979-05-27T07:32:00Z\n", 2, "dates");
	EXPECT_ERROR("x = 1\n\nd = 07:32:00\n", 3, "dates");
	EXPECT_ERROR("\n\n\nd = 1979-05-27\n", 4, "1979-05-27");
	/* inline tables */
	EXPECT_ERROR("\n\nt = { a = 1 }\n", 3, "inline tables");
	EXPECT_ERROR("a = [\n1,\n{ b = 2 },\n]\n", 3, "inline tables");
	/* arrays of tables: not over a value or a table, closed with ]] */
	EXPECT_ERROR("items = 1\n[[items]]\n", 2, "not an array of tables");
	EXPECT_ERROR("[items]\n[[items]]\n", 2, "not an array of tables");
	EXPECT_ERROR("[[items]\n", 1, "expected ']]'");
	EXPECT_ERROR("[[items]]\n[items]\n", 2, "not a table");
	EXPECT_ERROR("[[items]]\na = 1\na = 2\n", 3, "defined twice");
	/* multi-line strings */
	EXPECT_ERROR("a = 1\ns = \"\"\"\nabc\n\"\"\"\n", 2, "multi-line strings");
	EXPECT_ERROR("s = '''abc'''\n", 1, "multi-line strings");
	/* garbage after a value or header */
	EXPECT_ERROR("a = 1 2\n", 1, "after value");
	EXPECT_ERROR("a = 1\nb = \"x\" y\n", 2, "after value");
	EXPECT_ERROR("a = true false\n", 1, "after value");
	EXPECT_ERROR("\n[t] junk\n", 2, "after value");
	EXPECT_ERROR("a = [1] ,\n", 1, "after value");
	EXPECT_ERROR("[t\nx = 1\n", 1, "expected ']'");
	/* leading zeros */
	EXPECT_ERROR("a = 1\nb = 007\n", 2, "'007'");
	EXPECT_ERROR("b = -01\n", 1, "'-01'");
	/* malformed integers */
	EXPECT_ERROR("b = 1__0\n", 1, "invalid value");
	EXPECT_ERROR("b = 10_\n", 1, "invalid value");
	EXPECT_ERROR("b = 0x\n", 1, "invalid value");
	EXPECT_ERROR("b = 0b102\n", 1, "invalid value");
	EXPECT_ERROR("b = -0x10\n", 1, "invalid value");
	EXPECT_ERROR("b = truex\n", 1, "invalid value");
	/* integer overflow */
	EXPECT_ERROR("big = 9223372036854775808\n", 1, "out of range");
	EXPECT_ERROR("a = 1\nbig = -9223372036854775809\n", 2, "out of range");
	EXPECT_ERROR("big = 0xFFFFFFFFFFFFFFFF\n", 1, "out of range");
	EXPECT_ERROR("big = 123456789012345678901234567890\n", 1, "out of range");
	/* NUL bytes, reported on their own line */
	static const char nul_doc[] = "a = 1\nb = 2\nc = \"x\0y\"\nd = 4\n";
	expect_error(__LINE__, nul_doc, sizeof(nul_doc) - 1, 3, "NUL byte");
	static const char nul_first[] = "\0a = 1\n";
	expect_error(__LINE__, nul_first, sizeof(nul_first) - 1, 1, "NUL byte");
	/* unterminated arrays */
	EXPECT_ERROR("a = [1,\n2,\n3", 3, "unterminated array");
	EXPECT_ERROR("x = 0\na = [1 2]\n", 2, "expected ','");
	EXPECT_ERROR("a = [\n  [1,\n  2\n", 4, "unterminated array");
	/* invalid key characters */
	EXPECT_ERROR("a = 1\n$b = 2\n", 2, "invalid character '$' in key");
	EXPECT_ERROR("a = 1\n\nb$ = 2\n", 3, "expected '='");
	EXPECT_ERROR("a b = 1\n", 1, "expected '='");
	EXPECT_ERROR("= 1\n", 1, "invalid character '=' in key");
	EXPECT_ERROR("[]\n", 1, "in key");
	EXPECT_ERROR("a. = 1\n", 1, "in key");
	/* invalid UTF-8 in strings and keys */
	EXPECT_ERROR("\ns = \"\xff\"\n", 2, "UTF-8");
	EXPECT_ERROR("'\xc3' = 1\n", 1, "UTF-8");
	/* errors keep counting lines through CRLF documents */
	EXPECT_ERROR("a = 1\r\nb = 2\r\nb = 3\r\n", 3, "defined twice");
	/* nesting is bounded */
	char deep[200];
	int n = snprintf(deep, sizeof(deep), "a = ");
	for (int i = 0; i < 40; i++)
		deep[n++] = '[';
	deep[n] = '\0';
	EXPECT_ERROR(deep, 1, "nested too deeply");
}

int main(void)
{
	test_valid();
	test_valid_small();
	test_errors();
	return check_summary();
}

/* libFuzzer target: the TOML subset parser on raw bytes. Besides memory
 * errors (ASan) and UB (UBSan), it checks the parser's contract: success
 * gives an object plus a lines map whose lines exist in the input; failure
 * gives BANGER_ECONFIG, no document, and "line N: ..." with N == errline,
 * a line of the input. */
#include "fuzz.h"
#include "core/toml.h"
#include "core/internal.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size heap copy, so ASan sees any read past the end */
	char *text = malloc(size ? size : 1);
	if (!text)
		abort();
	if (size)
		memcpy(text, data, size);
	long nlines = 1;
	for (size_t i = 0; i < size; i++)
		if (text[i] == '\n')
			nlines++;

	json_t *doc = NULL, *lines = NULL;
	int errline = -1;
	int rc = bng_toml_parse(text, size, &doc, &lines, &errline);
	if (rc == 0) {
		REQUIRE(json_is_object(doc));
		REQUIRE(json_is_object(lines));
		const char *key;
		json_t *line;
		json_object_foreach(lines, key, line) {
			REQUIRE(json_is_integer(line));
			REQUIRE(json_integer_value(line) >= 1 && json_integer_value(line) <= nlines);
		}
		/* the document is plain JSON: it serializes */
		char *dump = json_dumps(doc, JSON_COMPACT);
		REQUIRE(dump != NULL);
		free(dump);
	} else {
		REQUIRE(rc == BANGER_ECONFIG);
		REQUIRE(doc == NULL && lines == NULL);
		REQUIRE(errline >= 1 && errline <= nlines);
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "line %d: ", errline);
		REQUIRE(strncmp(banger_error_last(), prefix, strlen(prefix)) == 0);
		REQUIRE(strlen(banger_error_last()) > strlen(prefix));
	}
	json_decref(doc);
	json_decref(lines);
	free(text);
	return 0;
}

/* libFuzzer target: OCI image references (what a user or a catalog types,
 * and what a registry's index may name). A parsed reference has valid
 * parts; its canonical text (bng_oci_ref_string) parses back to exactly the
 * same parts and re-formats to the same text; its default image name is a
 * valid banger name. A rejected one gives EINVAL or EUNSUPPORTED, zeroed
 * parts and a message. */
#include "fuzz.h"
#include "core/internal.h"
#include "oci/oci.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *u = p;
	for (size_t i = 0; i < n; i++)
		if (u[i])
			return false;
	return true;
}

static bool hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a C string: the first NUL ends it, as it would on the command line */
	char *text = malloc(size + 1);
	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';

	bng_oci_ref r;
	memset(&r, 0x5a, sizeof(r));
	int rc = bng_oci_parse_ref(text, &r);
	if (rc) {
		REQUIRE(rc == BANGER_EINVAL || rc == BANGER_EUNSUPPORTED);
		REQUIRE(all_zero(&r, sizeof(r)));
		REQUIRE(*banger_error_last());
		free(text);
		return 0;
	}
	REQUIRE(*r.registry && *r.repository && (*r.tag || *r.digest));
	REQUIRE(strlen(r.registry) + 1 + strlen(r.repository) <= 255);
	REQUIRE(strlen(r.tag) <= 128);
	REQUIRE(!*r.digest || (!strncmp(r.digest, "sha256:", 7) && hex64(r.digest + 7)));
	for (const char *p = r.repository; *p; p++)
		REQUIRE((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("._-/", *p));

	/* canonical text: a fixed point of parse + format */
	char *canon = bng_oci_ref_string(&r);
	bng_oci_ref back;
	REQUIRE(bng_oci_parse_ref(canon, &back) == 0);
	REQUIRE(!strcmp(back.registry, r.registry));
	REQUIRE(!strcmp(back.repository, r.repository));
	REQUIRE(!strcmp(back.tag, r.tag));
	REQUIRE(!strcmp(back.digest, r.digest));
	char *again = bng_oci_ref_string(&back);
	REQUIRE(!strcmp(again, canon));

	char *name = bng_oci_ref_default_name(&r);
	REQUIRE(bng_check_name(name, "image") == 0);
	char *name2 = NULL;
	REQUIRE(bng_oci_default_name(text, &name2) == 0 && !strcmp(name, name2));

	free(name2);
	free(name);
	free(again);
	free(canon);
	free(text);
	bng_err_clear();
	return 0;
}

/* libFuzzer target: what a registry sends back for a manifest request (an
 * image manifest or an index, OCI or Docker v2), checked as a pull checks it
 * before downloading anything. Byte 0 picks the Content-Type, the rest is
 * the body. Invariants: a parsed body is a JSON object of one of the four
 * supported media types with schemaVersion 2; an index yields a linux/amd64
 * entry with a valid sha256 digest and a manifest (or no) media type; a
 * manifest yields a config of a config media type within its size limit and
 * at most 1000 layers, each with a valid digest and the compression its
 * media type names. Rejections are EPROTO, EUNSUPPORTED or ETOOBIG with a
 * message naming the image. */
#include "fuzz.h"
#include "core/internal.h"
#include "oci/oci_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF "fuzz.example/img:1"

static const char *const content_types[] = {
	NULL,
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v2+json; charset=utf-8",
	"application/vnd.docker.distribution.manifest.v1+prettyjws",
	"application/json",
	"",
};

static bool is_manifest_type(const char *t)
{
	return !strcmp(t, "application/vnd.oci.image.manifest.v1+json") ||
	       !strcmp(t, "application/vnd.docker.distribution.manifest.v2+json");
}

static bool is_index_type(const char *t)
{
	return !strcmp(t, "application/vnd.oci.image.index.v1+json") ||
	       !strcmp(t, "application/vnd.docker.distribution.manifest.list.v2+json");
}

static void check_error(int rc)
{
	REQUIRE(rc == BANGER_EPROTO || rc == BANGER_EUNSUPPORTED || rc == BANGER_ETOOBIG);
	REQUIRE(strstr(banger_error_last(), REF) != NULL);
}

static void check_desc(const oci_desc *d)
{
	REQUIRE(oci_digest_valid(d->digest));
	REQUIRE(d->size <= (uint64_t)INT64_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *ct = content_types[data[0] % BNG_ARRAY_LEN(content_types)];
	size_t len = size - 1;
	/* an exact-size heap copy, so ASan sees any read past the end */
	char *body = malloc(len ? len : 1);
	if (!body)
		abort();
	memcpy(body, data + 1, len);

	json_t *doc = (json_t *)1;
	oci_manifest_kind kind;
	const char *mt = "x";
	int rc = oci_manifest_parse(REF, body, len, ct, &doc, &kind, &mt);
	if (rc) {
		check_error(rc);
		REQUIRE(doc == NULL && mt == NULL);
		free(body);
		bng_err_clear();
		return 0;
	}
	REQUIRE(json_is_object(doc));
	REQUIRE(json_integer_value(json_object_get(doc, "schemaVersion")) == 2);
	REQUIRE(kind == OCI_KIND_INDEX ? is_index_type(mt) : kind == OCI_KIND_MANIFEST && is_manifest_type(mt));

	if (kind == OCI_KIND_INDEX) {
		oci_desc d;
		rc = oci_index_select(REF, doc, &d);
		if (rc) {
			check_error(rc);
		} else {
			check_desc(&d);
			REQUIRE(!d.media_type || is_manifest_type(d.media_type));
			/* the entry it picked is in the list and says linux/amd64 */
			bool found = false;
			size_t i;
			json_t *e;
			json_array_foreach(json_object_get(doc, "manifests"), i, e) {
				if (json_string_value(json_object_get(e, "digest")) != d.digest)
					continue;
				json_t *plat = json_object_get(e, "platform");
				found = json_is_string(json_object_get(plat, "os")) &&
					!strcmp(json_string_value(json_object_get(plat, "os")), "linux") &&
					!strcmp(json_string_value(json_object_get(plat, "architecture")), "amd64");
			}
			REQUIRE(found);
		}
	} else {
		oci_plan plan;
		rc = oci_manifest_plan(REF, doc, &plan);
		if (rc) {
			check_error(rc);
			REQUIRE(plan.layers == NULL && plan.compression == NULL && plan.n_layers == 0);
		} else {
			check_desc(&plan.config);
			REQUIRE(plan.config.size <= (32u << 20));
			REQUIRE(!strcmp(plan.config.media_type, "application/vnd.oci.image.config.v1+json") ||
				!strcmp(plan.config.media_type, "application/vnd.docker.container.image.v1+json"));
			REQUIRE(plan.n_layers == json_array_size(json_object_get(doc, "layers")));
			REQUIRE(plan.n_layers <= 1000);
			for (size_t i = 0; i < plan.n_layers; i++) {
				check_desc(&plan.layers[i]);
				const char *lt = plan.layers[i].media_type;
				REQUIRE(lt != NULL);
				bng_oci_compression want = strstr(lt, "gzip") ? BNG_OCI_TAR_GZIP
							   : strstr(lt, "zstd") ? BNG_OCI_TAR_ZSTD
										 : BNG_OCI_TAR;
				REQUIRE(plan.compression[i] == want);
			}
			oci_plan_free(&plan);
		}
	}
	json_decref(doc);
	free(body);
	bng_err_clear();
	return 0;
}

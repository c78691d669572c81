/* Image reference parsing (docker's grammar, distribution-spec names and
 * tags) and default image names. */
#include "../check.h"
#include "oci/oci_int.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define NAME60 "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"

static void ok(const char *s, const char *registry, const char *repo, const char *tag, const char *digest)
{
	bng_oci_ref r;
	int rc = bng_oci_parse_ref(s, &r);
	CHECK_EQ_INT(rc, 0);
	if (rc) {
		fprintf(stderr, "  ref: %s: %s\n", s, banger_error_last());
		return;
	}
	CHECK_EQ_STR(r.registry, registry);
	CHECK_EQ_STR(r.repository, repo);
	CHECK_EQ_STR(r.tag, tag);
	CHECK_EQ_STR(r.digest, digest);
}

static void bad(const char *s, int code, const char *word)
{
	bng_oci_ref r;
	int rc = bng_oci_parse_ref(s, &r);
	CHECK_EQ_INT(rc, code);
	if (rc != code)
		fprintf(stderr, "  ref: %s\n", s);
	CHECK_STR_CONTAINS(banger_error_last(), word);
	CHECK_EQ_STR(r.registry, ""); /* nothing half-parsed is left */
}

static void name(const char *s, const char *want)
{
	char *got = NULL;
	CHECK_OK(bng_oci_default_name(s, &got));
	CHECK_EQ_STR(got, want);
	if (got)
		CHECK_OK(bng_check_name(got, "image"));
	free(got);
}

/* [a-z0-9-], 1-63 characters, no '-' at either end. */
static void name_is_valid(const char *s)
{
	char *got = NULL;
	CHECK_OK(bng_oci_default_name(s, &got));
	if (!got)
		return;
	size_t n = strlen(got);
	CHECK(n >= 1 && n <= 63);
	CHECK(got[0] != '-' && got[n - 1] != '-');
	for (size_t i = 0; i < n; i++)
		CHECK((got[i] >= 'a' && got[i] <= 'z') || (got[i] >= '0' && got[i] <= '9') || got[i] == '-');
	CHECK_OK(bng_check_name(got, "image")); /* what image names must be */
	free(got);
}

int main(void)
{
	/* Docker Hub shorthands. */
	ok("debian:bookworm", "registry-1.docker.io", "library/debian", "bookworm", "");
	ok("debian", "registry-1.docker.io", "library/debian", "latest", "");
	ok("docker.io/debian:12", "registry-1.docker.io", "library/debian", "12", "");
	ok("index.docker.io/library/debian", "registry-1.docker.io", "library/debian", "latest", "");
	ok("someone/app:1", "registry-1.docker.io", "someone/app", "1", "");
	/* Other registries. */
	ok("ghcr.io/a/b:1", "ghcr.io", "a/b", "1", "");
	ok("localhost:5000/x:1", "localhost:5000", "x", "1", "");
	ok("localhost/x", "localhost", "x", "latest", "");
	ok("127.0.0.1:5000/x@sha256:" HEX64, "127.0.0.1:5000", "x", "", "sha256:" HEX64);
	ok("quay.io/a/b:v1@sha256:" HEX64, "quay.io", "a/b", "v1", "sha256:" HEX64);
	ok("[::1]:5000/x:y", "[::1]:5000", "x", "y", "");
	ok("[fe80::1]/x", "[fe80::1]", "x", "latest", "");
	ok("reg-1.example.com:443/team/sub/app:1.2.3-rc_1", "reg-1.example.com:443", "team/sub/app", "1.2.3-rc_1", "");
	ok("a__b/c-d--e/f.g:T_9", "registry-1.docker.io", "a__b/c-d--e/f.g", "T_9", "");
	ok("Example.COM/x", "Example.COM", "x", "latest", "");
	ok("x:_x", "registry-1.docker.io", "library/x", "_x", "");
	/* Like docker: without a '/', "host:port" reads as name:tag. */
	ok("localhost:5000", "registry-1.docker.io", "library/localhost", "5000", "");

	char tag128[160], tag129[160];
	memset(tag128, 'a', 128);
	tag128[128] = '\0';
	memset(tag129, 'a', 129);
	tag129[129] = '\0';
	char buf[512];
	snprintf(buf, sizeof(buf), "x:%s", tag128);
	ok(buf, "registry-1.docker.io", "library/x", tag128, "");

	bad("", BANGER_EINVAL, "empty image reference");
	bad("Debian", BANGER_EINVAL, "lowercase");
	bad("ghcr.io/A/b", BANGER_EINVAL, "lowercase");
	bad("debian:", BANGER_EINVAL, "tag");
	bad("debian:-x", BANGER_EINVAL, "tag");
	bad("debian:.x", BANGER_EINVAL, "tag");
	bad("debian:a/b", BANGER_EINVAL, "registry");
	snprintf(buf, sizeof(buf), "x:%s", tag129);
	bad(buf, BANGER_EINVAL, "tag");
	bad("a//b", BANGER_EINVAL, "repository path");
	bad("/a", BANGER_EINVAL, "repository path");
	bad("a/", BANGER_EINVAL, "repository path");
	bad("ghcr.io/", BANGER_EINVAL, "repository name is missing");
	bad("a_/b", BANGER_EINVAL, "repository path");
	bad("a___b", BANGER_EINVAL, "repository path");
	bad("a..b", BANGER_EINVAL, "repository path");
	bad("-a", BANGER_EINVAL, "repository path");
	bad("debian bookworm", BANGER_EINVAL, "whitespace");
	bad("debian\n", BANGER_EINVAL, "whitespace");
	bad("debian@sha256:abc", BANGER_EINVAL, "64 hex");
	bad("debian@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", BANGER_EINVAL,
	    "lowercase hex");
	bad("debian@", BANGER_EINVAL, "digest");
	bad("debian@latest", BANGER_EINVAL, "digest");
	bad("debian@sha256:" HEX64 "@sha256:" HEX64, BANGER_EINVAL, "64 hex");
	bad("debian@sha512:" HEX64 HEX64, BANGER_EUNSUPPORTED, "sha256 only");
	bad("ghcr.io:99999/x", BANGER_EINVAL, "registry");
	bad("ghcr.io:/x", BANGER_EINVAL, "registry");
	bad("-ghcr.io/x", BANGER_EINVAL, "registry");
	bad("ghcr..io/x", BANGER_EINVAL, "registry");
	bad("[::1/x", BANGER_EINVAL, "registry");
	bad("[zz::1]:5000/x", BANGER_EINVAL, "registry");
	char longname[300];
	memset(longname, 'a', 260);
	longname[260] = '\0';
	bad(longname, BANGER_EINVAL, "255");
	/* found by fuzz_oci_ref: a registry over 255 characters overran the
	 * registry field (and the struct) before any length check */
	char longhost[600];
	memset(longhost, 'e', 500);
	memcpy(longhost + 500, ".io/x:1", 8);
	bad(longhost, BANGER_EINVAL, "255");

	/* Canonical form. */
	bng_oci_ref r;
	CHECK_OK(bng_oci_parse_ref("debian", &r));
	char *s = bng_oci_ref_string(&r);
	CHECK_EQ_STR(s, "registry-1.docker.io/library/debian:latest");
	free(s);
	CHECK_OK(bng_oci_parse_ref("localhost:5000/x@sha256:" HEX64, &r));
	s = bng_oci_ref_string(&r);
	CHECK_EQ_STR(s, "localhost:5000/x@sha256:" HEX64);
	free(s);

	/* Default names. */
	name("debian:bookworm", "debian-bookworm");
	name("debian", "debian");
	name("debian:latest", "debian");
	name("localhost:5000/team/app:1.2", "app-1-2");
	name("ghcr.io/a/b:V1.0__RC", "b-v1-0-rc");
	name("127.0.0.1:5000/x@sha256:" HEX64, "x-0123456789ab");
	name("quay.io/a/b:v1@sha256:" HEX64, "b-v1");
	name("a__b/c.d--e:_x_", "c-d-e-x");
	char *nm = NULL;
	CHECK_EQ_INT(bng_oci_default_name("Bad", &nm), BANGER_EINVAL);
	CHECK(nm == NULL);

	/* Long names are cut to 63 without a trailing '-'. */
	char long_ref[300];
	snprintf(long_ref, sizeof(long_ref), "%s-b:tag", NAME60);
	name_is_valid(long_ref);
	name(long_ref, NAME60 "-b");
	snprintf(long_ref, sizeof(long_ref), "%sab:tag", NAME60);
	name(long_ref, NAME60 "ab");
	snprintf(long_ref, sizeof(long_ref), "x/%sab:%s", NAME60, tag128);
	name_is_valid(long_ref);
	name_is_valid("a:_");
	name_is_valid("ghcr.io/x/y:" "___");

	/* Which registries are spoken to over plain http. */
	const char *list = NULL;
	CHECK(oci_registry_insecure("localhost", list));
	CHECK(oci_registry_insecure("localhost:5000", list));
	CHECK(oci_registry_insecure("127.0.0.1:5000", list));
	CHECK(oci_registry_insecure("[::1]:5000", list));
	CHECK(oci_registry_insecure("[::1]", list));
	CHECK(!oci_registry_insecure("127.0.0.2:5000", list));
	CHECK(!oci_registry_insecure("localhost.example.com", list));
	CHECK(!oci_registry_insecure("registry-1.docker.io", list));
	list = " reg.lan:5000 , other.lan,[fe80::1]:80";
	CHECK(oci_registry_insecure("reg.lan:5000", list));
	CHECK(!oci_registry_insecure("reg.lan:5001", list));
	CHECK(!oci_registry_insecure("reg.lan", list));
	CHECK(oci_registry_insecure("other.lan", list));
	CHECK(oci_registry_insecure("other.lan:8443", list)); /* a bare host covers its ports */
	CHECK(oci_registry_insecure("[fe80::1]:80", list));
	CHECK(!oci_registry_insecure("ghcr.io", list));
	list = "";
	CHECK(!oci_registry_insecure("reg.lan:5000", list));

	/* Digest syntax used for cache file names. */
	CHECK(oci_digest_valid("sha256:" HEX64));
	CHECK(!oci_digest_valid("sha256:" HEX64 "0"));
	CHECK(!oci_digest_valid("sha256:../../../../etc/passwd"));
	CHECK(!oci_digest_valid("sha512:" HEX64));
	CHECK(!oci_digest_valid(NULL));

	return check_summary();
}

/* banger update's manifest side (lib/update/manifest.c): signatures over
 * the exact bytes, manifest validation, version order. */
#include "check.h"

#include "update/update.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

static char *pub_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_PUBKEY(b, k);
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *out = strndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

static size_t sign(EVP_PKEY *k, const char *msg, unsigned char *sig, size_t cap)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t len = cap;
	CHECK(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) == 1);
	CHECK(EVP_DigestSign(md, sig, &len, (const unsigned char *)msg, strlen(msg)) == 1);
	EVP_MD_CTX_free(md);
	return len;
}

static void test_verify(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256"), *p384 = EVP_EC_gen("P-384");
	char *pem = pub_pem(k), *other_pem = pub_pem(other), *p384_pem = pub_pem(p384);
	const char *msg = "{\"version\":\"1.0.0\"}\n";
	unsigned char sig[128];
	size_t n = sign(k, msg, sig, sizeof(sig));
	CHECK_EQ_INT(bng_update_verify(pem, msg, strlen(msg), sig, n), 0);
	/* one byte of the message, one of the signature, another key, a truncated signature */
	CHECK_EQ_INT(bng_update_verify(pem, "{\"version\":\"1.0.1\"}\n", strlen(msg), sig, n), BANGER_EPROTO);
	sig[n / 2] ^= 1;
	CHECK_EQ_INT(bng_update_verify(pem, msg, strlen(msg), sig, n), BANGER_EPROTO);
	sig[n / 2] ^= 1;
	CHECK_EQ_INT(bng_update_verify(other_pem, msg, strlen(msg), sig, n), BANGER_EPROTO);
	CHECK_EQ_INT(bng_update_verify(pem, msg, strlen(msg), sig, n - 1), BANGER_EPROTO);
	CHECK_EQ_INT(bng_update_verify(pem, msg, strlen(msg), sig, 0), BANGER_EPROTO);
	/* only P-256 keys */
	CHECK_EQ_INT(bng_update_verify(p384_pem, msg, strlen(msg), sig, n), BANGER_EINVAL);
	CHECK_EQ_INT(bng_update_verify("not a key", msg, strlen(msg), sig, n), BANGER_EINVAL);
	free(pem);
	free(other_pem);
	free(p384_pem);
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
	EVP_PKEY_free(p384);
}

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int parse_files(const char *files_json)
{
	char *text = NULL;
	if (asprintf(&text, "{\"version\":\"0.3.0\",\"date\":\"2030-01-01\",\"arch\":\"x86_64\",\"files\":%s}",
		     files_json) < 0)
		return -100;
	bng_update_manifest m;
	int rc = bng_update_manifest_parse(&m, text, strlen(text));
	bng_update_manifest_free(&m);
	free(text);
	return rc;
}

static void test_manifest(void)
{
	const char *good = "{\"version\":\"0.3.0\",\"date\":\"2030-01-01\",\"arch\":\"x86_64\",\"files\":["
			   "{\"path\":\"bin/bangerd\",\"sha256\":\"" SHA "\",\"size\":12,\"mode\":\"0755\"},"
			   "{\"path\":\"lib/x86_64-linux-gnu/libbanger.so.0\",\"sha256\":\"" SHA "\",\"size\":0,\"mode\":\"644\"}]}";
	bng_update_manifest m;
	CHECK_EQ_INT(bng_update_manifest_parse(&m, good, strlen(good)), 0);
	CHECK_EQ_INT(m.nfiles, 2);
	CHECK_EQ_STR(m.version, "0.3.0");
	CHECK_EQ_STR(m.files[0].path, "bin/bangerd");
	CHECK_EQ_INT(m.files[0].mode, 0755);
	CHECK_EQ_INT(m.files[1].mode, 0644);
	CHECK_EQ_INT(m.files[0].size, 12);
	bng_update_manifest_free(&m);

#define FILE1(path, sha, size, mode) "[{\"path\":\"" path "\",\"sha256\":\"" sha "\",\"size\":" size ",\"mode\":\"" mode "\"}]"
	CHECK_EQ_INT(parse_files(FILE1("bin/banger", SHA, "1", "0755")), 0);
	static const char *const bad[] = {
		FILE1("/bin/banger", SHA, "1", "0755"),      FILE1("../bin/banger", SHA, "1", "0755"),
		FILE1("bin/../../etc/x", SHA, "1", "0755"),  FILE1("bin//banger", SHA, "1", "0755"),
		FILE1("bin/./banger", SHA, "1", "0755"),     FILE1("bin/", SHA, "1", "0755"),
		FILE1("", SHA, "1", "0755"),                 FILE1("bin/ban ger", SHA, "1", "0755"),
		FILE1(".banger-update.json", SHA, "1", "0755"), FILE1("bin/bangerd.prev", SHA, "1", "0755"),
		FILE1("bin/banger", "ABC", "1", "0755"),     FILE1("bin/banger", SHA "0", "1", "0755"),
		FILE1("bin/banger", SHA, "-1", "0755"),      FILE1("bin/banger", SHA, "1099511627776", "0755"),
		FILE1("bin/banger", SHA, "1", "4755"),       FILE1("bin/banger", SHA, "1", "0055"),
		FILE1("bin/banger", SHA, "1", "rwx"),        FILE1("bin/banger", SHA, "\"1\"", "0755"),
		"[]", "{}", "[1]",
		"[{\"path\":\"bin/a\",\"sha256\":\"" SHA "\",\"size\":1,\"mode\":\"0755\"},"
		"{\"path\":\"bin/a\",\"sha256\":\"" SHA "\",\"size\":1,\"mode\":\"0755\"}]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse_files(bad[i]);
		if (rc != BANGER_EPROTO)
			fprintf(stderr, "accepted or wrong error (%d) for %s\n", rc, bad[i]);
		CHECK_EQ_INT(rc, BANGER_EPROTO);
	}
	static const char *const bad_top[] = {
		"", "[]", "{\"version\":\"../x\",\"date\":\"d\",\"arch\":\"x86_64\",\"files\":[]}",
		"{\"version\":\"0.3.0\",\"version\":\"0.4.0\",\"date\":\"d\",\"arch\":\"x86_64\",\"files\":[]}",
		"{\"version\":\"0.3.0\",\"arch\":\"x86_64\",\"files\":[{\"path\":\"a\",\"sha256\":\"" SHA "\",\"size\":1,\"mode\":\"0755\"}]}",
	};
	for (size_t i = 0; i < sizeof(bad_top) / sizeof(bad_top[0]); i++)
		CHECK_EQ_INT(bng_update_manifest_parse(&m, bad_top[i], strlen(bad_top[i])), BANGER_EPROTO);
}

static void test_versions(void)
{
	CHECK(bng_update_version_cmp("0.3.0", "0.2.0") > 0);
	CHECK(bng_update_version_cmp("0.10.0", "0.9.9") > 0);
	CHECK(bng_update_version_cmp("1.0", "1.0.0") < 0);
	CHECK(bng_update_version_cmp("1.0.0", "1.0.0") == 0);
	CHECK(bng_update_version_cmp("1.0.0-rc1", "1.0.0") < 0);
	CHECK(bng_update_version_cmp("1.0.0", "1.0.0-rc1") > 0);
	CHECK(bng_update_version_cmp("1.0.0-rc2", "1.0.0-rc1") > 0);
	CHECK(bng_update_version_cmp("0.2.0-stale", "0.2.0") < 0);
	CHECK_EQ_INT(bng_update_check_version("0.3.0"), 0);
	CHECK_EQ_INT(bng_update_check_version("1.0.0-rc.1+b2"), 0);
	static const char *const bad[] = {"", "v1.0", "../1", "1..0", "1/0", "1.0 ", "-1",
					  "12345678901234567890123456789012345678901234567890123456789012345"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ_INT(bng_update_check_version(bad[i]), BANGER_EINVAL);
}

int main(void)
{
	test_verify();
	test_manifest();
	test_versions();
	return check_summary();
}

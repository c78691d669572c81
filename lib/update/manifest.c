/* Release manifests: the signature over the exact bytes is checked before
 * any of them is parsed; then every field is validated. */
#include "update.h"

#include <ctype.h>
#include <jansson.h>
#include "../core/lazy_crypto.h"
#include <stdlib.h>
#include <string.h>

int bng_update_verify(const char *pem, const void *msg, size_t len, const void *sig, size_t sig_len)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *key = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (!key)
		return bng_err(BANGER_EINVAL, "the release key is not a PEM public key");
	char group[64] = "";
	size_t glen = 0;
	if (!EVP_PKEY_is_a(key, "EC") ||
	    !EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof(group), &glen) ||
	    strcmp(group, "prime256v1")) {
		EVP_PKEY_free(key);
		return bng_err(BANGER_EINVAL, "the release key is not an ECDSA P-256 key");
	}
	int rc = BANGER_EPROTO;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestVerify(md, sig, sig_len, msg, len) == 1)
		rc = 0;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	return rc ? bng_err(rc, "bad signature") : 0;
}

int bng_update_check_version(const char *v)
{
	size_t n = v ? strlen(v) : 0;
	if (n == 0 || n > 64 || !isdigit((unsigned char)v[0]) || strstr(v, ".."))
		return bng_err(BANGER_EINVAL, "'%s' is not a release version (like 0.3.0)", v ? v : "");
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && !strchr(".+-", v[i]))
			return bng_err(BANGER_EINVAL, "'%s' is not a release version (like 0.3.0)", v);
	return 0;
}

int bng_update_version_cmp(const char *a, const char *b)
{
	while (*a || *b) {
		if (*a == '-' || *b == '-' || *a == '+' || *b == '+' || !*a || !*b)
			break;
		if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
			char *ea, *eb;
			unsigned long long x = strtoull(a, &ea, 10), y = strtoull(b, &eb, 10);
			if (x != y)
				return x < y ? -1 : 1;
			a = ea, b = eb;
			continue;
		}
		if (*a != *b)
			return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
		a++, b++;
	}
	/* one ran out of numeric parts: "0.3" < "0.3.1" */
	bool a_end = !*a || *a == '-' || *a == '+', b_end = !*b || *b == '-' || *b == '+';
	if (a_end != b_end)
		return a_end ? -1 : 1;
	/* same release: a pre-release ("-rc1") comes before it */
	bool a_pre = *a == '-', b_pre = *b == '-';
	if (a_pre != b_pre)
		return a_pre ? -1 : 1;
	int c = strcmp(a, b);
	return c < 0 ? -1 : c > 0;
}

/* A path inside the prefix: components of [A-Za-z0-9._+-], none empty,
 * "." or "..", none starting with ".banger-update" (ours). */
static bool clean_path(const char *p)
{
	size_t n = strlen(p);
	if (n == 0 || n > 200 || p[0] == '/' || p[n - 1] == '/')
		return false;
	const char *c = p;
	while (*c) {
		size_t len = strcspn(c, "/");
		if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.') ||
		    !strncmp(c, ".banger-update", 14) || (len >= 5 && !strncmp(c + len - 5, ".prev", 5)))
			return false;
		for (size_t i = 0; i < len; i++)
			if (!isalnum((unsigned char)c[i]) && !strchr("._+-", c[i]))
				return false;
		c += len;
		if (*c == '/')
			c++;
	}
	return true;
}

static bool hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (int i = 0; i < 64; i++)
		if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return false;
	return true;
}

static int bad(bng_update_manifest *m, const char *fmt, const char *what)
{
	bng_update_manifest_free(m);
	return bng_err(BANGER_EPROTO, fmt, what);
}

int bng_update_manifest_parse(bng_update_manifest *m, const char *text, size_t len)
{
	memset(m, 0, sizeof(*m));
	json_error_t jerr;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(root)) {
		json_decref(root);
		return bng_err(BANGER_EPROTO, "manifest is not a JSON object (%s)", jerr.text);
	}
	int rc = 0;
	const char *version = json_string_value(json_object_get(root, "version"));
	const char *date = json_string_value(json_object_get(root, "date"));
	const char *arch = json_string_value(json_object_get(root, "arch"));
	json_t *files = json_object_get(root, "files");
	if (!version || bng_update_check_version(version)) {
		rc = bad(m, "manifest: %s", "\"version\" is missing or not a release version");
		goto out;
	}
	if (!date || strlen(date) > 64 || !arch || !*arch || strlen(arch) > 32) {
		rc = bad(m, "manifest: %s", "\"date\" and \"arch\" must be short strings");
		goto out;
	}
	if (!json_is_array(files) || json_array_size(files) == 0 || json_array_size(files) > BNG_UPDATE_MAX_FILES) {
		rc = bad(m, "manifest: %s", "\"files\" must be an array of 1 to 64 entries");
		goto out;
	}
	m->version = bng_strdup(version);
	m->date = bng_strdup(date);
	m->arch = bng_strdup(arch);
	m->files = bng_xcalloc(json_array_size(files), sizeof(*m->files));
	size_t i;
	json_t *f;
	json_array_foreach(files, i, f) {
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *sha = json_string_value(json_object_get(f, "sha256"));
		const char *mode = json_string_value(json_object_get(f, "mode"));
		json_t *size = json_object_get(f, "size");
		if (!path || !clean_path(path)) {
			rc = bad(m, "manifest: file path '%s' is not a clean relative path", path ? path : "(missing)");
			goto out;
		}
		for (size_t j = 0; j < m->nfiles; j++)
			if (!strcmp(m->files[j].path, path)) {
				rc = bad(m, "manifest: file '%s' is listed twice", path);
				goto out;
			}
		if (!sha || !hex64(sha)) {
			rc = bad(m, "manifest: file '%s' has no lowercase hex sha256", path);
			goto out;
		}
		if (!json_is_integer(size) || json_integer_value(size) < 0 ||
		    (uint64_t)json_integer_value(size) > BNG_UPDATE_MAX_FILE_SIZE) {
			rc = bad(m, "manifest: file '%s' has no size up to 1 GiB", path);
			goto out;
		}
		char *end = NULL;
		unsigned long bits = mode && *mode ? strtoul(mode, &end, 8) : 0;
		if (!mode || strlen(mode) > 4 || !end || *end || bits > 0777 || !(bits & 0400)) {
			rc = bad(m, "manifest: file '%s' needs a mode like \"0755\" (permission bits only)", path);
			goto out;
		}
		bng_update_file *uf = &m->files[m->nfiles++];
		uf->path = bng_strdup(path);
		memcpy(uf->sha256, sha, 65);
		uf->size = (uint64_t)json_integer_value(size);
		uf->mode = (unsigned)bits;
	}
out:
	json_decref(root);
	return rc;
}

void bng_update_manifest_free(bng_update_manifest *m)
{
	for (size_t i = 0; i < m->nfiles; i++)
		free(m->files[i].path);
	free(m->files);
	free(m->version);
	free(m->date);
	free(m->arch);
	memset(m, 0, sizeof(*m));
}

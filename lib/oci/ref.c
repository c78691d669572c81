/* Docker-style image references, validated like the distribution spec and
 * docker's reference grammar so that what we accept a registry accepts. */
#include "oci.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOCKER_HUB "registry-1.docker.io"
#define NAME_MAX_LEN 255 /* docker's limit for registry + '/' + repository */

static bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
static bool is_hex_lower(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

/* [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* over s[0..n). */
static bool valid_path_component(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0 || !is_lower_alnum(s[0]))
		return false;
	while (i < n) {
		while (i < n && is_lower_alnum(s[i]))
			i++;
		if (i == n)
			return true;
		size_t sep = i;
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (i < n && s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			return false;
		}
		if (i == n || !is_lower_alnum(s[i]) || i == sep)
			return false;
	}
	return true;
}

/* [A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9] */
static bool valid_domain_component(const char *s, size_t n)
{
	if (n == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

static bool valid_port(const char *s, size_t n)
{
	if (n == 0 || n > 5)
		return false;
	long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	return v >= 1 && v <= 65535;
}

/* host[:port] where host is dotted domain components or a bracketed IPv6
 * literal. */
static bool valid_domain(const char *s, size_t n)
{
	size_t host_end;
	if (n > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close || close == s + 1)
			return false;
		for (const char *p = s + 1; p < close; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				return false;
		host_end = (size_t)(close - s) + 1;
		if (host_end == n)
			return true;
		return s[host_end] == ':' && valid_port(s + host_end + 1, n - host_end - 1);
	}
	const char *colon = memchr(s, ':', n);
	host_end = colon ? (size_t)(colon - s) : n;
	if (colon && !valid_port(colon + 1, n - host_end - 1))
		return false;
	size_t start = 0;
	for (size_t i = 0; i <= host_end; i++) {
		if (i == host_end || s[i] == '.') {
			if (!valid_domain_component(s + start, i - start))
				return false;
			start = i + 1;
		}
	}
	return true;
}

/* [\w][\w.-]{0,127} */
static bool valid_tag(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 128 || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

static int bad(const char *s, const char *why)
{
	return bng_err(BANGER_EINVAL, "invalid image reference \"%s\": %s", s, why);
}

static int parse_digest(const char *s, const char *d, bng_oci_ref *out)
{
	const char *colon = strchr(d, ':');
	if (!colon || colon == d)
		return bad(s, "a digest looks like sha256:<64 hex digits>");
	if ((size_t)(colon - d) != 6 || strncmp(d, "sha256", 6) != 0) {
		for (const char *p = d; p < colon; p++)
			if (!is_lower_alnum(*p) && *p != '+' && *p != '.' && *p != '_' && *p != '-')
				return bad(s, "a digest looks like sha256:<64 hex digits>");
		return bng_err(BANGER_EUNSUPPORTED,
			       "image reference \"%s\" uses digest algorithm \"%.*s\": banger supports sha256 only", s,
			       (int)(colon - d), d);
	}
	const char *hex = colon + 1;
	size_t n = strlen(hex);
	if (n != 64)
		return bad(s, "a sha256 digest has exactly 64 hex digits");
	for (size_t i = 0; i < n; i++)
		if (!is_hex_lower(hex[i]))
			return bad(s, "a sha256 digest has 64 lowercase hex digits (0-9, a-f)");
	memcpy(out->digest, d, 7 + 64 + 1);
	return 0;
}

int bng_oci_parse_ref(const char *s, bng_oci_ref *out)
{
	memset(out, 0, sizeof(*out));
	if (!s || !*s)
		return bng_err(BANGER_EINVAL, "empty image reference: give one like debian:bookworm");
	size_t len = strlen(s);
	if (len > 1024)
		return bng_err(BANGER_EINVAL, "image reference is %zu characters long: the limit is 1024", len);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return bad(s, "it contains whitespace or a non-ASCII character");

	char *buf = bng_strdup(s);
	int rc = 0;
	char *at = strchr(buf, '@');
	if (at) {
		*at = '\0';
		rc = parse_digest(s, at + 1, out);
		if (rc)
			goto out;
	}

	/* The tag is after the last ':' that follows the last '/'. */
	char *slash = strrchr(buf, '/');
	char *colon = strrchr(slash ? slash : buf, ':');
	if (colon) {
		*colon = '\0';
		if (!valid_tag(colon + 1)) {
			rc = bad(s, "a tag has 1-128 characters from [A-Za-z0-9_.-] and does not start with '.' or '-'");
			goto out;
		}
		strcpy(out->tag, colon + 1);
	}

	/* The first component is a registry when it looks like a host. */
	char *name = buf;
	char *first_slash = strchr(buf, '/');
	const char *domain = NULL;
	size_t domain_len = 0;
	if (first_slash) {
		size_t n = (size_t)(first_slash - buf);
		bool hostlike = memchr(buf, '.', n) || memchr(buf, ':', n) || buf[0] == '[' ||
				(n == 9 && strncmp(buf, "localhost", 9) == 0);
		for (size_t i = 0; i < n && !hostlike; i++)
			hostlike = isupper((unsigned char)buf[i]);
		if (hostlike) {
			domain = buf;
			domain_len = n;
			name = first_slash + 1;
		}
	}
	/* before anything is copied into the fixed-size fields */
	if (domain_len + 1 + strlen(name) > NAME_MAX_LEN) {
		rc = bad(s, "the name is longer than 255 characters");
		goto out;
	}
	if (domain && !valid_domain(domain, domain_len)) {
		rc = bad(s, "the registry must be a host name or IP address with an optional :port");
		goto out;
	}
	if (!*name) {
		rc = bad(s, "the repository name is missing");
		goto out;
	}
	for (char *p = name; *p; p++) {
		if (isupper((unsigned char)*p)) {
			rc = bad(s, "repository names must be lowercase");
			goto out;
		}
	}
	for (char *p = name;;) {
		char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (!valid_path_component(p, n)) {
			rc = bad(s, "repository path components are [a-z0-9] separated by '.', '_', '__' or dashes, "
				    "and each starts and ends with a letter or digit");
			goto out;
		}
		if (!end)
			break;
		p = end + 1;
	}

	if (!domain || (domain_len == 9 && strncmp(domain, "docker.io", 9) == 0) ||
	    (domain_len == 15 && strncmp(domain, "index.docker.io", 15) == 0)) {
		strcpy(out->registry, DOCKER_HUB);
	} else {
		memcpy(out->registry, domain, domain_len);
		out->registry[domain_len] = '\0';
	}
	/* Official Docker Hub images live under library/. */
	bool hub = strcmp(out->registry, DOCKER_HUB) == 0;
	int n = snprintf(out->repository, sizeof(out->repository), "%s%s", hub && !strchr(name, '/') ? "library/" : "",
			 name);
	if (n < 0 || (size_t)n >= sizeof(out->repository) || strlen(out->registry) + 1 + (size_t)n > NAME_MAX_LEN) {
		rc = bad(s, "the name is longer than 255 characters");
		goto out;
	}
	if (!out->tag[0] && !out->digest[0])
		strcpy(out->tag, "latest");
out:
	free(buf);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

char *bng_oci_ref_string(const bng_oci_ref *r)
{
	return bng_asprintf("%s/%s%s%s%s%s", r->registry, r->repository, r->tag[0] ? ":" : "", r->tag,
			    r->digest[0] ? "@" : "", r->digest);
}

char *bng_oci_ref_default_name(const bng_oci_ref *r)
{
	const char *base = strrchr(r->repository, '/');
	base = base ? base + 1 : r->repository;
	char raw[512];
	if (r->tag[0] && strcmp(r->tag, "latest") != 0)
		snprintf(raw, sizeof(raw), "%s-%s", base, r->tag);
	else if (!r->tag[0] && r->digest[0])
		snprintf(raw, sizeof(raw), "%s-%.12s", base, r->digest + 7);
	else
		snprintf(raw, sizeof(raw), "%s", base);

	/* Lowercase, everything else becomes one '-', then trim to 63. */
	char out[64];
	size_t n = 0;
	for (const char *p = raw; *p && n < 63; p++) {
		char c = (char)tolower((unsigned char)*p);
		if (is_lower_alnum(c))
			out[n++] = c;
		else if (n > 0 && out[n - 1] != '-')
			out[n++] = '-';
	}
	while (n > 0 && out[n - 1] == '-')
		n--;
	out[n] = '\0';
	return bng_strdup(n ? out : "image");
}

int bng_oci_default_name(const char *ref, char **out)
{
	bng_oci_ref r;
	*out = NULL;
	int rc = bng_oci_parse_ref(ref, &r);
	if (rc)
		return rc;
	*out = bng_oci_ref_default_name(&r);
	return 0;
}

/* The HTTP side of the distribution API: one curl handle per pull (so
 * connections are reused), the anonymous bearer-token flow, cancellation
 * from the progress callback, and HTTP/transport errors worded for users. */
#include "oci_int.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ERROR_BODY_MAX (64 * 1024) /* enough for a registry's error JSON */
#define TOKEN_BODY_MAX (1 << 20)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

/* curl_global_init is not reentrant on every libcurl; once per process,
 * and never cleaned up since other code in the process may use curl. */
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static bool list_has(const char *list, const char *registry, const char *host)
{
	if (!list)
		return false;
	const char *p = list;
	while (*p) {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		const char *start = p;
		while (*p && *p != ',')
			p++;
		const char *end = p;
		while (end > start && isspace((unsigned char)end[-1]))
			end--;
		size_t n = (size_t)(end - start);
		if (n && ((strlen(registry) == n && strncmp(start, registry, n) == 0) ||
			  (strlen(host) == n && strncmp(start, host, n) == 0)))
			return true;
	}
	return false;
}

bool oci_registry_insecure(const char *registry, const char *insecure)
{
	char host[256];
	snprintf(host, sizeof(host), "%s", registry);
	char *cut = host[0] == '[' ? strchr(host, ']') : strchr(host, ':');
	if (cut)
		cut[host[0] == '[' ? 1 : 0] = '\0';
	if (strcmp(host, "localhost") == 0 || strcmp(host, "127.0.0.1") == 0 || strcmp(host, "[::1]") == 0)
		return true;
	return list_has(insecure, registry, host);
}

int oci_client_init(oci_client *c, const bng_oci_ref *ref, const char *ref_text, const char *insecure, bng_op *op)
{
	memset(c, 0, sizeof(*c));
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return bng_err(BANGER_EIO, "cannot initialise libcurl: %s", curl_easy_strerror(curl_init_rc));
	c->curl = curl_easy_init();
	if (!c->curl)
		return bng_err(BANGER_ENOMEM, "cannot create a libcurl handle");
	c->op = op;
	c->ref = ref;
	c->ref_text = ref_text;
	c->base = bng_asprintf("%s://%s/v2/%s", oci_registry_insecure(ref->registry, insecure) ? "http" : "https",
			       ref->registry, ref->repository);
	return 0;
}

void oci_client_free(oci_client *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->base);
	free(c->token);
	memset(c, 0, sizeof(*c));
}

void oci_resp_free(oci_resp *r)
{
	free(r->content_type);
	free(r->docker_digest);
	free(r->body);
	free(r->url);
	memset(r, 0, sizeof(*r));
}

/* ---- one transfer ---- */

typedef struct xfer {
	oci_client *c;
	oci_resp *r;
	char *www_auth;
	oci_sink_fn sink;
	void *ud;
	size_t max;
	int abort_rc; /* why a callback stopped the transfer */
} xfer;

static bool ok_status(long s) { return s >= 200 && s < 300; }

static char *header_value(const char *v, size_t n)
{
	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	char *s = bng_xmalloc(n + 1);
	memcpy(s, v, n);
	s[n] = '\0';
	return s;
}

/* Headers of every response in a redirect chain arrive here; each status
 * line starts over so that what remains describes the last response. */
static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
	xfer *x = ud;
	size_t len = size * nitems;
	if (len > 5 && strncasecmp(buf, "HTTP/", 5) == 0) {
		const char *sp = memchr(buf, ' ', len);
		x->r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		free(x->r->content_type);
		free(x->r->docker_digest);
		free(x->www_auth);
		free(x->r->body);
		x->r->content_type = x->r->docker_digest = x->www_auth = x->r->body = NULL;
		x->r->body_len = 0;
		return len;
	}
	const char *colon = memchr(buf, ':', len);
	if (!colon)
		return len;
	size_t nlen = (size_t)(colon - buf);
	char **slot = NULL;
	if (nlen == 12 && strncasecmp(buf, "Content-Type", 12) == 0)
		slot = &x->r->content_type;
	else if (nlen == 21 && strncasecmp(buf, "Docker-Content-Digest", 21) == 0)
		slot = &x->r->docker_digest;
	else if (nlen == 16 && strncasecmp(buf, "WWW-Authenticate", 16) == 0)
		slot = &x->www_auth;
	if (slot) {
		free(*slot);
		*slot = header_value(colon + 1, len - nlen - 1);
	}
	return len;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	xfer *x = ud;
	size_t len = size * nmemb;
	if (bng_op_cancelled(x->c->op)) {
		x->abort_rc = bng_err(BANGER_ECANCELED, "pull of %s cancelled", x->c->ref_text);
		return 0;
	}
	bool ok = ok_status(x->r->status);
	if (ok && x->sink) {
		int rc = x->sink(x->ud, data, len);
		if (rc) {
			x->abort_rc = rc;
			return 0;
		}
		return len;
	}
	size_t max = ok ? x->max : ERROR_BODY_MAX;
	if (x->r->body_len + len > max) {
		if (!ok) /* a long error page: keep its start */
			len = max - x->r->body_len;
		else {
			x->abort_rc = bng_err(BANGER_ETOOBIG, "%s sent a response over %zu bytes for %s",
					      x->c->ref->registry, max, x->c->ref_text);
			return 0;
		}
	}
	char *grown = realloc(x->r->body, x->r->body_len + len + 1);
	if (!grown)
		abort();
	x->r->body = grown;
	memcpy(x->r->body + x->r->body_len, data, len);
	x->r->body_len += len;
	x->r->body[x->r->body_len] = '\0';
	return size * nmemb;
}

/* libcurl calls this at least once a second, also while stalled, so a
 * cancel takes effect even when no bytes arrive. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	xfer *x = ud;
	if (bng_op_cancelled(x->c->op)) {
		x->abort_rc = bng_err(BANGER_ECANCELED, "pull of %s cancelled", x->c->ref_text);
		return 1;
	}
	return 0;
}

static int transport_error(oci_client *c, CURLcode cc, const char *url)
{
	const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc);
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return bng_err(BANGER_EIO, "cannot resolve the host of %s: %s (check the registry name and your network)",
			       url, why);
	case CURLE_COULDNT_CONNECT:
		return bng_err(BANGER_EIO, "cannot connect to %s: %s (is the registry running and reachable?)", url, why);
	case CURLE_OPERATION_TIMEDOUT:
		return bng_err(BANGER_ETIMEDOUT, "timed out talking to %s: %s (check your network, then retry)", url,
			       why);
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		return bng_err(BANGER_EIO,
			       "TLS failure talking to %s: %s (a registry that serves plain http belongs in "
			       "insecure_registries)",
			       url, why);
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return bng_err(BANGER_EPROTO, "bad redirect from %s: %s", url, why);
	default:
		return bng_err(BANGER_EIO, "cannot fetch %s: %s", url, why);
	}
}

static int perform(oci_client *c, const char *url, const char *accept, bool with_token, xfer *x)
{
	CURL *h = c->curl;
	struct curl_slist *hdrs = NULL, *tmp;
	char *line = NULL, *ua = NULL;
	int rc = 0;
	if (accept) {
		line = bng_asprintf("Accept: %s", accept);
		tmp = curl_slist_append(hdrs, line);
		free(line);
		if (!tmp) {
			rc = bng_err(BANGER_ENOMEM, "out of memory building a request");
			goto out;
		}
		hdrs = tmp;
	}
	if (with_token && c->token) {
		/* libcurl sends custom Authorization headers only to the first
		 * host:port of a redirect chain, so blob CDNs never see it. */
		line = bng_asprintf("Authorization: Bearer %s", c->token);
		tmp = curl_slist_append(hdrs, line);
		free(line);
		if (!tmp) {
			rc = bng_err(BANGER_ENOMEM, "out of memory building a request");
			goto out;
		}
		hdrs = tmp;
	}
	c->errbuf[0] = '\0';
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	/* Give up on a transfer that moves nothing for a minute. */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
	ua = bng_asprintf("banger/%s", banger_version_number());
	curl_easy_setopt(h, CURLOPT_USERAGENT, ua);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	CURLcode cc = curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	char *eff = NULL;
	if (curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff) {
		free(x->r->url);
		x->r->url = bng_strdup(eff);
	}
	if (x->abort_rc)
		rc = x->abort_rc;
	else if (cc != CURLE_OK)
		rc = transport_error(c, cc, x->r->url ? x->r->url : url);
out:
	curl_slist_free_all(hdrs);
	free(ua);
	return rc;
}

/* ---- bearer tokens ---- */

/* Reads one key="value" (or key=token) pair of a challenge; advances *pp. */
static bool next_param(const char **pp, char *key, size_t keylen, char **val)
{
	const char *p = *pp;
	while (*p == ' ' || *p == ',' || *p == '\t')
		p++;
	const char *k = p;
	while (*p && *p != '=' && *p != ',' && *p != ' ')
		p++;
	if (*p != '=' || p == k)
		return false;
	snprintf(key, keylen, "%.*s", (int)(p - k), k);
	p++;
	size_t cap = strlen(p) + 1, n = 0;
	char *v = bng_xmalloc(cap);
	if (*p == '"') {
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			v[n++] = *p;
		}
		if (*p == '"')
			p++;
	} else {
		while (*p && *p != ',' && *p != ' ')
			v[n++] = *p++;
	}
	v[n] = '\0';
	*val = v;
	*pp = p;
	return true;
}

static int auth_required(const oci_client *c, const char *extra)
{
	return bng_err(BANGER_EPERM,
		       "authentication required: banger pulls anonymously, and %s refused anonymous access to %s%s "
		       "(is the name right? is the repository private?)",
		       c->ref->registry, c->ref->repository, extra ? extra : "");
}

static int fetch_token(oci_client *c, const char *challenge)
{
	const char *p = challenge + 6; /* after "Bearer" */
	char key[32];
	char *val, *realm = NULL, *service = NULL, *scope = NULL;
	while (next_param(&p, key, sizeof(key), &val)) {
		char **slot = strcasecmp(key, "realm") == 0     ? &realm
			      : strcasecmp(key, "service") == 0 ? &service
			      : strcasecmp(key, "scope") == 0   ? &scope
								: NULL;
		if (slot) {
			free(*slot);
			*slot = val;
		} else {
			free(val);
		}
	}
	int rc = 0;
	char *url = NULL;
	oci_resp r = {0};
	json_t *doc = NULL;
	if (!realm || !(bng_str_has_prefix(realm, "https://") || bng_str_has_prefix(realm, "http://"))) {
		rc = bng_err(BANGER_EPROTO, "%s asked for a bearer token without a usable realm (\"%s\")",
			     c->ref->registry, realm ? realm : "");
		goto out;
	}
	char *def_scope = bng_asprintf("repository:%s:pull", c->ref->repository);
	char *esc_scope = curl_easy_escape(c->curl, scope ? scope : def_scope, 0);
	char *esc_service = service ? curl_easy_escape(c->curl, service, 0) : NULL;
	free(def_scope);
	if (!esc_scope || (service && !esc_service)) {
		curl_free(esc_scope);
		curl_free(esc_service);
		rc = bng_err(BANGER_ENOMEM, "out of memory building a token request");
		goto out;
	}
	url = bng_asprintf("%s%c%s%s%sscope=%s", realm, strchr(realm, '?') ? '&' : '?', esc_service ? "service=" : "",
			   esc_service ? esc_service : "", esc_service ? "&" : "", esc_scope);
	curl_free(esc_scope);
	curl_free(esc_service);

	xfer x = {.c = c, .r = &r, .max = TOKEN_BODY_MAX};
	rc = perform(c, url, "application/json", false, &x);
	free(x.www_auth);
	if (rc)
		goto out;
	if (r.status == 401 || r.status == 403) {
		rc = auth_required(c, " (its token service refused an anonymous token)");
		goto out;
	}
	if (!ok_status(r.status)) {
		rc = bng_err(BANGER_EIO, "token service %s answered HTTP %ld: try again later", realm, r.status);
		goto out;
	}
	doc = json_loadb(r.body ? r.body : "", r.body_len, 0, NULL);
	const char *tok = json_string_value(json_object_get(doc, "token"));
	if (!tok || !*tok)
		tok = json_string_value(json_object_get(doc, "access_token"));
	bool sane = tok && *tok;
	for (const char *t = tok; sane && *t; t++)
		sane = *t > ' ' && *t < 0x7f; /* it goes into a header line */
	if (!sane) {
		rc = bng_err(BANGER_EPROTO, "token service %s sent no usable token", realm);
		goto out;
	}
	free(c->token);
	c->token = bng_strdup(tok);
out:
	json_decref(doc);
	oci_resp_free(&r);
	free(url);
	free(realm);
	free(service);
	free(scope);
	return rc;
}

int oci_get(oci_client *c, const char *path, const char *accept, oci_sink_fn sink, void *ud, size_t max,
	    oci_resp *r)
{
	char *url = bng_asprintf("%s%s", c->base, path);
	int rc = 0;
	/* A second round only after fetching a (new) token: the first one had
	 * none or an expired one. */
	for (int round = 0; round < 2; round++) {
		oci_resp_free(r);
		xfer x = {.c = c, .r = r, .sink = sink, .ud = ud, .max = max};
		rc = perform(c, url, accept, true, &x);
		char *challenge = x.www_auth;
		if (!rc && r->status == 401 && round == 0 && challenge && strncasecmp(challenge, "Bearer", 6) == 0 &&
		    (challenge[6] == ' ' || challenge[6] == '\0')) {
			rc = fetch_token(c, challenge);
			free(challenge);
			if (rc)
				break;
			continue;
		}
		free(challenge);
		break;
	}
	free(url);
	return rc;
}

/* The first message of a registry's {"errors":[{"code","message"}]}. */
static char *registry_message(const oci_resp *r)
{
	if (!r->body || !r->body_len)
		return NULL;
	json_t *doc = json_loadb(r->body, r->body_len, 0, NULL);
	json_t *e = json_array_get(json_object_get(doc, "errors"), 0);
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *code = json_string_value(json_object_get(e, "code"));
	char *out = msg || code ? bng_asprintf(": %s%s%s", code ? code : "", code && msg ? ": " : "", msg ? msg : "")
				: NULL;
	json_decref(doc);
	return out;
}

int oci_http_error(const oci_client *c, const oci_resp *r, const char *what)
{
	const char *url = r->url ? r->url : c->base;
	char *detail = registry_message(r);
	const char *d = detail ? detail : "";
	int rc;
	if (r->status == 401)
		rc = auth_required(c, NULL);
	else if (r->status == 403)
		rc = bng_err(BANGER_EPERM, "%s denied access to %s (HTTP 403%s): banger pulls anonymously", c->ref->registry,
			     c->ref->repository, d);
	else if (r->status == 404 && !what)
		rc = bng_err(BANGER_ENOTFOUND, "%s not found in %s (check the name and tag)", c->ref_text, c->ref->registry);
	else if (r->status == 404)
		rc = bng_err(BANGER_ENOTFOUND, "%s of %s not found in %s", what, c->ref_text, c->ref->registry);
	else if (r->status == 429)
		rc = bng_err(BANGER_EIO, "%s is rate-limiting pulls (HTTP 429%s): wait a while and try again",
			     c->ref->registry, d);
	else if (r->status >= 500)
		rc = bng_err(BANGER_EIO, "%s answered HTTP %ld for %s%s: the registry failed, try again later",
			     c->ref->registry, r->status, url, d);
	else
		rc = bng_err(BANGER_EPROTO, "%s answered HTTP %ld for %s%s", c->ref->registry, r->status, url, d);
	free(detail);
	return rc;
}

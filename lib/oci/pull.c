/* bng_oci_pull: resolve a reference to a linux/amd64 image manifest, then
 * make sure its config and layers are in the cache, verified. */
#include "oci_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MANIFEST_MAX (4u << 20) /* the distribution spec's suggested limit */
#define CONFIG_MAX (32u << 20)
#define LAYERS_MAX 1000
#define PROGRESS_NS 100000000LL /* at most ~10 progress events/s per blob */

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_V1 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_V1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

static const char ACCEPT_MANIFEST[] = MT_OCI_MANIFEST ", " MT_DOCKER_MANIFEST;
static const char ACCEPT_ANY[] = MT_OCI_INDEX ", " MT_DOCKER_LIST ", " MT_OCI_MANIFEST ", " MT_DOCKER_MANIFEST;

static const struct {
	const char *media_type;
	bng_oci_compression compression;
} layer_types[] = {
	{"application/vnd.oci.image.layer.v1.tar", BNG_OCI_TAR},
	{"application/vnd.oci.image.layer.v1.tar+gzip", BNG_OCI_TAR_GZIP},
	{"application/vnd.oci.image.layer.v1.tar+zstd", BNG_OCI_TAR_ZSTD},
	{"application/vnd.docker.image.rootfs.diff.tar", BNG_OCI_TAR},
	{"application/vnd.docker.image.rootfs.diff.tar.gzip", BNG_OCI_TAR_GZIP},
	{"application/vnd.docker.image.rootfs.diff.tar.zstd", BNG_OCI_TAR_ZSTD},
};

typedef struct pull {
	const char *ref_text;
	const char *insecure; /* registries spoken to over plain http (config insecure_registries) */
	bng_oci_ref ref;
	bng_op *op;
	oci_cache cache;
	oci_client client;
	bool have_client;
} pull;

/* A fetched manifest or index. */
typedef struct manifest {
	char *body;
	size_t len;
	char digest[72];
	const char *media_type; /* static string */
	oci_manifest_kind kind;
	json_t *doc;
} manifest;

static void manifest_free(manifest *m)
{
	free(m->body);
	json_decref(m->doc);
	memset(m, 0, sizeof(*m));
}

const char *bng_oci_compression_name(bng_oci_compression c)
{
	switch (c) {
	case BNG_OCI_TAR_GZIP: return "tar+gzip";
	case BNG_OCI_TAR_ZSTD: return "tar+zstd";
	default: return "tar";
	}
}

static int client(pull *p, oci_client **out)
{
	if (!p->have_client) {
		int rc = oci_client_init(&p->client, &p->ref, p->ref_text, p->insecure, p->op);
		if (rc)
			return rc;
		p->have_client = true;
	}
	*out = &p->client;
	return 0;
}

static void emit_progress(pull *p, const char *digest, uint64_t done, uint64_t total, bool cached)
{
	json_t *ev = json_pack("{s:s,s:s,s:I,s:I}", "stage", "pull", "digest", digest, "done", (json_int_t)done, "total",
			       (json_int_t)total);
	if (ev && cached)
		json_object_set_new(ev, "cached", json_true());
	if (ev)
		bng_op_event(p->op, ev);
}

/* ---- descriptors ---- */

typedef oci_desc desc;

static int parse_desc(const char *ref_text, json_t *j, const char *what, desc *d)
{
	json_t *size = json_object_get(j, "size");
	d->media_type = json_string_value(json_object_get(j, "mediaType"));
	d->digest = json_string_value(json_object_get(j, "digest"));
	if (!json_is_object(j) || !d->digest || !json_is_integer(size) || json_integer_value(size) < 0)
		return bng_err(BANGER_EPROTO, "the manifest of %s has a malformed %s descriptor", ref_text, what);
	if (!oci_digest_valid(d->digest)) {
		if (!bng_str_has_prefix(d->digest, "sha256:") && strchr(d->digest, ':'))
			return bng_err(BANGER_EUNSUPPORTED, "the %s of %s uses digest %s: banger supports sha256 only", what,
				       ref_text, d->digest);
		return bng_err(BANGER_EPROTO, "the manifest of %s has an invalid %s digest \"%s\"", ref_text, what,
			       d->digest);
	}
	d->size = (uint64_t)json_integer_value(size);
	return 0;
}

/* ---- manifests ---- */

/* Content-Type without parameters, if it is one we know. */
static const char *known_type(const char *t)
{
	static const char *const known[] = {MT_OCI_INDEX,	MT_DOCKER_LIST, MT_OCI_MANIFEST,
					    MT_DOCKER_MANIFEST, MT_DOCKER_V1,	MT_DOCKER_V1_SIGNED};
	if (!t)
		return NULL;
	size_t n = strcspn(t, "; ");
	for (size_t i = 0; i < BNG_ARRAY_LEN(known); i++)
		if (strlen(known[i]) == n && strncmp(t, known[i], n) == 0)
			return known[i];
	return NULL;
}

static int classify(const char *ref_text, manifest *m, const char *content_type);

int oci_manifest_parse(const char *ref_text, const char *body, size_t len, const char *content_type, json_t **doc,
		       oci_manifest_kind *kind, const char **media_type)
{
	manifest m = {.body = (char *)body, .len = len};
	int rc = classify(ref_text, &m, content_type);
	*doc = rc ? NULL : m.doc;
	if (rc)
		json_decref(m.doc);
	*kind = m.kind;
	*media_type = rc ? NULL : m.media_type;
	return rc;
}

/* Parses body and decides what it is: the "mediaType" field, else the
 * Content-Type, else its shape (OCI lets both manifests omit the field). */
static int classify(const char *ref_text, manifest *m, const char *content_type)
{
	json_error_t jerr;
	m->doc = json_loadb(m->body, m->len, 0, &jerr);
	if (!json_is_object(m->doc))
		return bng_err(BANGER_EPROTO, "the manifest of %s is not a JSON object: %s", ref_text, jerr.text);
	const char *field = json_string_value(json_object_get(m->doc, "mediaType"));
	const char *mt = field ? field : known_type(content_type);
	json_int_t schema = json_integer_value(json_object_get(m->doc, "schemaVersion"));
	if (!mt && json_is_array(json_object_get(m->doc, "manifests")))
		mt = MT_OCI_INDEX;
	else if (!mt && json_is_object(json_object_get(m->doc, "config")))
		mt = MT_OCI_MANIFEST;
	if (schema == 1 || (mt && (strcmp(mt, MT_DOCKER_V1) == 0 || strcmp(mt, MT_DOCKER_V1_SIGNED) == 0)))
		return bng_err(BANGER_EUNSUPPORTED,
			       "%s is a Docker schema 1 image, which banger does not support: push it again with a "
			       "current docker, buildah or skopeo",
			       ref_text);
	if (!mt)
		return bng_err(BANGER_EPROTO, "the manifest of %s has no mediaType and is neither an image nor an index",
			       ref_text);
	if (strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0) {
		m->kind = OCI_KIND_INDEX;
		m->media_type = strcmp(mt, MT_OCI_INDEX) == 0 ? MT_OCI_INDEX : MT_DOCKER_LIST;
	} else if (strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0) {
		m->kind = OCI_KIND_MANIFEST;
		m->media_type = strcmp(mt, MT_OCI_MANIFEST) == 0 ? MT_OCI_MANIFEST : MT_DOCKER_MANIFEST;
	} else {
		return bng_err(BANGER_EUNSUPPORTED, "%s has manifest media type %s, which is not a container image",
			       ref_text, mt);
	}
	if (schema != 2)
		return bng_err(BANGER_EPROTO, "the manifest of %s has schemaVersion %lld, expected 2", ref_text,
			       (long long)schema);
	return 0;
}

/* Fetches the manifest named by reference (a tag or digest). With want set
 * (a digest), the cache is tried first and the bytes must hash to it. */
static int fetch_manifest(pull *p, const char *reference, const char *want, const char *accept, manifest *m)
{
	memset(m, 0, sizeof(*m));
	int rc;
	if (want && oci_cache_get(&p->cache, want, MANIFEST_MAX, p->op, &m->body, &m->len) == 0) {
		snprintf(m->digest, sizeof(m->digest), "%s", want);
		rc = classify(p->ref_text, m, NULL);
		if (rc)
			manifest_free(m);
		return rc;
	}
	if (bng_op_cancelled(p->op))
		return bng_err(BANGER_ECANCELED, "pull of %s cancelled", p->ref_text);
	oci_client *c;
	rc = client(p, &c);
	if (rc)
		return rc;
	char *path = bng_asprintf("/manifests/%s", reference);
	oci_resp r = {0};
	rc = oci_get(c, path, accept, NULL, NULL, MANIFEST_MAX, &r);
	free(path);
	if (!rc && (r.status < 200 || r.status >= 300))
		rc = oci_http_error(c, &r, NULL);
	if (rc)
		goto out;
	m->body = r.body ? r.body : bng_strdup("");
	m->len = r.body_len;
	r.body = NULL;
	bng_sha256_digest(m->body, m->len, m->digest);
	rc = classify(p->ref_text, m, r.content_type);
	if (rc)
		goto out;
	/* By tag we cannot know the digest beforehand, but a registry that
	 * states one must have sent the bytes that match it. */
	const char *expect = want ? want : oci_digest_valid(r.docker_digest) ? r.docker_digest : NULL;
	if (expect && strcmp(expect, m->digest) != 0) {
		rc = bng_err(BANGER_EPROTO, "digest mismatch for %s: got %s", expect, m->digest);
		goto out;
	}
	rc = oci_cache_put(&p->cache, m->digest, m->body, m->len, p->op);
out:
	oci_resp_free(&r);
	if (rc)
		manifest_free(m);
	return rc;
}

int oci_index_select(const char *ref_text, json_t *index, oci_desc *out)
{
	json_t *list = json_object_get(index, "manifests");
	if (!json_is_array(list) || json_array_size(list) == 0)
		return bng_err(BANGER_EPROTO, "the image index of %s lists no manifests", ref_text);
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e) {
		json_t *plat = json_object_get(e, "platform");
		const char *os = json_string_value(json_object_get(plat, "os"));
		const char *arch = json_string_value(json_object_get(plat, "architecture"));
		if (os && arch && strcmp(os, "linux") == 0 && strcmp(arch, "amd64") == 0) {
			int rc = parse_desc(ref_text, e, "linux/amd64 manifest", out);
			if (rc)
				return rc;
			if (out->media_type && strcmp(out->media_type, MT_OCI_MANIFEST) != 0 &&
			    strcmp(out->media_type, MT_DOCKER_MANIFEST) != 0)
				return bng_err(BANGER_EUNSUPPORTED, "the linux/amd64 entry of %s has media type %s, not an image manifest",
					       ref_text, out->media_type);
			return 0;
		}
	}
	/* Name what there is; attestation entries say unknown/unknown. */
	char *avail = bng_strdup("");
	json_array_foreach(list, i, e) {
		json_t *plat = json_object_get(e, "platform");
		const char *os = json_string_value(json_object_get(plat, "os"));
		const char *arch = json_string_value(json_object_get(plat, "architecture"));
		const char *variant = json_string_value(json_object_get(plat, "variant"));
		if (!os || !arch || strcmp(os, "unknown") == 0)
			continue;
		char *one = bng_asprintf("%s/%s%s%s", os, arch, variant ? "/" : "", variant ? variant : "");
		if (!strstr(avail, one)) {
			char *next = bng_asprintf("%s%s%s", avail, *avail ? ", " : "", one);
			free(avail);
			avail = next;
		}
		free(one);
	}
	int rc = bng_err(BANGER_EUNSUPPORTED, "%s has no linux/amd64 image; available platforms: %s", ref_text,
			 *avail ? avail : "none");
	free(avail);
	return rc;
}

/* ---- blobs ---- */

typedef struct blob_dl {
	pull *p;
	oci_writer *w;
	const char *digest;
	uint64_t size;
	int64_t last_ns;
} blob_dl;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int blob_sink(void *ud, const char *data, size_t len)
{
	blob_dl *b = ud;
	if (b->w->written + len > b->size)
		return bng_err(BANGER_EPROTO, "digest mismatch for %s: the registry sent more than the %llu bytes declared",
			       b->digest, (unsigned long long)b->size);
	int rc = oci_writer_write(b->w, data, len);
	if (rc)
		return rc;
	int64_t now = now_ns();
	if (b->w->written < b->size && now - b->last_ns >= PROGRESS_NS) {
		b->last_ns = now;
		emit_progress(b->p, b->digest, b->w->written, b->size, false);
	}
	return 0;
}

/* Makes sure the blob is cached and verified, downloading it if needed;
 * sets *path. */
static int ensure_blob(pull *p, const desc *d, char **path_out)
{
	*path_out = NULL;
	int lock;
	int rc = oci_cache_lock(&p->cache, d->digest, p->op, &lock);
	if (rc)
		return rc;
	char *path = oci_cache_path(&p->cache, d->digest);
	rc = oci_cache_verify(path, d->digest, (int64_t)d->size, p->op);
	if (rc == 0) {
		oci_cache_unlock(&p->cache, d->digest, lock);
		emit_progress(p, d->digest, d->size, d->size, true);
		*path_out = path;
		return 0;
	}
	if (rc == BANGER_EPROTO) {
		unlink(path); /* corrupt: fetch it again */
	} else if (rc != BANGER_ENOTFOUND) {
		oci_cache_unlock(&p->cache, d->digest, lock);
		free(path);
		return rc;
	}
	oci_client *c;
	oci_writer w;
	rc = client(p, &c);
	if (!rc)
		rc = oci_writer_open(&p->cache, d->digest, &w);
	if (rc) {
		oci_cache_unlock(&p->cache, d->digest, lock);
		free(path);
		return rc;
	}
	blob_dl b = {.p = p, .w = &w, .digest = d->digest, .size = d->size};
	char *rel = bng_asprintf("/blobs/%s", d->digest);
	oci_resp r = {0};
	rc = oci_get(c, rel, NULL, blob_sink, &b, 0, &r);
	free(rel);
	if (!rc && (r.status < 200 || r.status >= 300)) {
		char *what = bng_asprintf("blob %s", d->digest);
		rc = oci_http_error(c, &r, what);
		free(what);
	}
	oci_resp_free(&r);
	if (rc)
		oci_writer_abort(&w);
	else
		rc = oci_writer_commit(&w, d->digest, d->size);
	oci_cache_unlock(&p->cache, d->digest, lock);
	if (rc) {
		free(path);
		return rc;
	}
	emit_progress(p, d->digest, d->size, d->size, false);
	*path_out = path;
	return 0;
}

static int fill_blob(pull *p, const desc *d, bng_oci_blob *b)
{
	snprintf(b->digest, sizeof(b->digest), "%s", d->digest);
	b->media_type = bng_strdup(d->media_type ? d->media_type : "");
	b->size = d->size;
	return ensure_blob(p, d, &b->path);
}

static int layer_compression(const char *ref_text, const desc *d, size_t i, bng_oci_compression *out)
{
	for (size_t k = 0; k < BNG_ARRAY_LEN(layer_types); k++) {
		if (d->media_type && strcmp(d->media_type, layer_types[k].media_type) == 0) {
			*out = layer_types[k].compression;
			return 0;
		}
	}
	const char *mt = d->media_type ? d->media_type : "(none)";
	if (strstr(mt, "foreign") || strstr(mt, "nondistributable"))
		return bng_err(BANGER_EUNSUPPORTED,
			       "layer %zu of %s is a foreign (non-distributable) layer (%s): banger cannot pull it", i + 1,
			       ref_text, mt);
	return bng_err(BANGER_EUNSUPPORTED,
		       "layer %zu of %s has media type %s: banger supports tar, tar+gzip and tar+zstd layers", i + 1,
		       ref_text, mt);
}

/* Loads and checks the image config: it must be a linux/amd64 image. */
static int load_config(pull *p, bng_oci_image *img)
{
	char *data;
	size_t len;
	int rc = bng_read_file(img->config.path, &data, &len);
	if (rc)
		return rc;
	json_error_t jerr;
	img->config_json = json_loadb(data, len, 0, &jerr);
	free(data);
	if (!json_is_object(img->config_json))
		return bng_err(BANGER_EPROTO, "the image config of %s is not a JSON object: %s", p->ref_text, jerr.text);
	const char *os = json_string_value(json_object_get(img->config_json, "os"));
	const char *arch = json_string_value(json_object_get(img->config_json, "architecture"));
	if ((os && strcmp(os, "linux") != 0) || (arch && strcmp(arch, "amd64") != 0))
		return bng_err(BANGER_EUNSUPPORTED, "%s is a %s/%s image: banger runs linux/amd64 images", p->ref_text,
			       os ? os : "?", arch ? arch : "?");
	img->runtime = json_object_get(img->config_json, "config");
	if (!json_is_object(img->runtime)) {
		json_object_set_new(img->config_json, "config", json_object());
		img->runtime = json_object_get(img->config_json, "config");
	}
	return 0;
}

/* Checks everything a manifest declares, before anything is downloaded. */
int oci_manifest_plan(const char *ref_text, json_t *doc, oci_plan *out)
{
	memset(out, 0, sizeof(*out));
	desc *cfg = &out->config;
	int rc = parse_desc(ref_text, json_object_get(doc, "config"), "config", cfg);
	if (rc)
		return rc;
	if (!cfg->media_type ||
	    (strcmp(cfg->media_type, MT_OCI_CONFIG) != 0 && strcmp(cfg->media_type, MT_DOCKER_CONFIG) != 0))
		return bng_err(BANGER_EUNSUPPORTED, "%s is not a container image: its config has media type %s", ref_text,
			       cfg->media_type ? cfg->media_type : "(none)");
	if (cfg->size > CONFIG_MAX)
		return bng_err(BANGER_ETOOBIG, "the image config of %s has %llu bytes, over the %u-byte limit", ref_text,
			       (unsigned long long)cfg->size, CONFIG_MAX);
	json_t *layers = json_object_get(doc, "layers");
	if (!json_is_array(layers))
		return bng_err(BANGER_EPROTO, "the manifest of %s has no layers list", ref_text);
	size_t n = json_array_size(layers);
	if (n > LAYERS_MAX)
		return bng_err(BANGER_ETOOBIG, "%s has %zu layers, over banger's limit of %d", ref_text, n, LAYERS_MAX);
	out->layers = bng_xcalloc(n, sizeof(*out->layers));
	out->compression = bng_xcalloc(n, sizeof(*out->compression));
	out->n_layers = n;
	for (size_t i = 0; i < n && !rc; i++) {
		char what[32];
		snprintf(what, sizeof(what), "layer %zu", i + 1);
		rc = parse_desc(ref_text, json_array_get(layers, i), what, &out->layers[i]);
		if (!rc)
			rc = layer_compression(ref_text, &out->layers[i], i, &out->compression[i]);
	}
	if (rc)
		oci_plan_free(out);
	return rc;
}

void oci_plan_free(oci_plan *p)
{
	free(p->layers);
	free(p->compression);
	memset(p, 0, sizeof(*p));
}

static int pull_image(pull *p, bng_oci_image *img)
{
	bng_op_event(p->op, json_pack("{s:s,s:s}", "stage", "resolve", "ref", p->ref_text));
	manifest top = {0}, child = {0};
	const manifest *m = &top;
	bool by_digest = p->ref.digest[0] != '\0';
	int rc = fetch_manifest(p, by_digest ? p->ref.digest : p->ref.tag, by_digest ? p->ref.digest : NULL, ACCEPT_ANY,
				&top);
	if (rc)
		goto out;
	if (top.kind == OCI_KIND_INDEX) {
		desc d;
		rc = oci_index_select(p->ref_text, top.doc, &d);
		if (!rc)
			rc = fetch_manifest(p, d.digest, d.digest, ACCEPT_MANIFEST, &child);
		if (rc)
			goto out;
		if (child.len != d.size) {
			rc = bng_err(BANGER_EPROTO, "the linux/amd64 manifest of %s has %zu bytes, its index says %llu",
				     p->ref_text, child.len, (unsigned long long)d.size);
			goto out;
		}
		if (child.kind != OCI_KIND_MANIFEST) {
			rc = bng_err(BANGER_EUNSUPPORTED, "the linux/amd64 entry of %s is another index: banger does not "
							  "follow nested indexes",
				     p->ref_text);
			goto out;
		}
		m = &child;
	}
	snprintf(img->resolved_digest, sizeof(img->resolved_digest), "%s", top.digest);
	snprintf(img->manifest_digest, sizeof(img->manifest_digest), "%s", m->digest);

	oci_plan plan;
	rc = oci_manifest_plan(p->ref_text, m->doc, &plan);
	if (rc)
		goto out;
	desc cfg = plan.config, *ld = plan.layers;
	size_t n = plan.n_layers;
	img->layers = bng_xcalloc(n, sizeof(*img->layers));
	for (size_t i = 0; i < n; i++)
		img->layers[i].compression = plan.compression[i];
	rc = fill_blob(p, &cfg, &img->config);
	if (!rc)
		rc = load_config(p, img);
	for (size_t i = 0; i < n && !rc; i++) {
		img->n_layers = i + 1;
		rc = fill_blob(p, &ld[i], &img->layers[i]);
	}
	oci_plan_free(&plan);
	if (rc)
		goto out;
	char *name = bng_oci_ref_string(&p->ref);
	rc = oci_cache_tag(&p->cache, name, top.media_type, top.digest, top.len);
	free(name);
out:
	manifest_free(&top);
	manifest_free(&child);
	return rc;
}

int bng_oci_pull(const char *cache_dir, const char *ref, const char *insecure_registries, bng_op *op,
		 bng_oci_image *out)
{
	memset(out, 0, sizeof(*out));
	pull p = {.ref_text = ref, .insecure = insecure_registries, .op = op};
	int rc = bng_oci_parse_ref(ref, &p.ref);
	if (rc)
		return rc;
	rc = oci_cache_open(&p.cache, cache_dir);
	if (rc)
		return rc;
	out->ref = bng_strdup(ref);
	out->parsed = p.ref;
	rc = pull_image(&p, out);
	if (p.have_client)
		oci_client_free(&p.client);
	oci_cache_close(&p.cache);
	if (rc)
		bng_oci_image_free(out);
	return rc;
}

static void blob_free(bng_oci_blob *b)
{
	free(b->media_type);
	free(b->path);
}

void bng_oci_image_free(bng_oci_image *img)
{
	if (!img)
		return;
	free(img->ref);
	blob_free(&img->config);
	for (size_t i = 0; i < img->n_layers; i++)
		blob_free(&img->layers[i]);
	free(img->layers);
	json_decref(img->config_json);
	memset(img, 0, sizeof(*img));
}

static json_t *blob_json(const bng_oci_blob *b)
{
	return json_pack("{s:s,s:s,s:I,s:s}", "digest", b->digest, "media_type", b->media_type ? b->media_type : "",
			 "size", (json_int_t)b->size, "path", b->path ? b->path : "");
}

json_t *bng_oci_image_to_json(const bng_oci_image *img)
{
	json_t *layers = json_array();
	for (size_t i = 0; i < img->n_layers; i++) {
		json_t *l = blob_json(&img->layers[i]);
		json_object_set_new(l, "compression", json_string(bng_oci_compression_name(img->layers[i].compression)));
		json_array_append_new(layers, l);
	}
	return json_pack("{s:s,s:s,s:s,s:s*,s:s*,s:s,s:s,s:o,s:o,s:O?}", "ref", img->ref ? img->ref : "", "registry",
			 img->parsed.registry, "repository", img->parsed.repository, "tag",
			 img->parsed.tag[0] ? img->parsed.tag : NULL, "digest",
			 img->parsed.digest[0] ? img->parsed.digest : NULL, "manifest_digest", img->manifest_digest,
			 "resolved_digest", img->resolved_digest, "config", blob_json(&img->config), "layers", layers,
			 "image_config", img->config_json);
}

/* Typed images and kernels (include/banger/image.h, kernel.h) over the
 * dispatch: records (handle.h) of the rows image.* and kernel.* return. */
#include "handle.h"
#include "core/internal.h"

#include <banger/image.h>
#include <banger/kernel.h>
#include <stdlib.h>

struct banger_image {
	bng_record rec;
};

struct banger_kernel {
	bng_record rec;
};

/* What both option kinds hold: params for the method, and who hears its
 * progress. */
typedef struct {
	json_t *params;
	banger_progress_cb cb;
	void *ud;
} options;

struct banger_image_options {
	options o;
};

struct banger_kernel_options {
	options o;
};

static void *options_new(size_t size)
{
	options *o = bng_xcalloc(1, size); /* the first member of either kind */
	o->params = json_object();
	return o;
}

static void options_free(options *o)
{
	if (o) {
		json_decref(o->params);
		free(o);
	}
}

static int options_progress(options *o, banger_progress_cb cb, void *ud)
{
	if (!o)
		return bng_err(BANGER_EINVAL, "options are NULL");
	o->cb = cb;
	o->ud = ud;
	return 0;
}

#define P(x) ((x) ? (x)->o.params : NULL)
#define CB(x) ((x) ? (x)->o.cb : NULL)
#define UD(x) ((x) ? (x)->o.ud : NULL)

/* Runs method with opts' params plus extra (stolen) and its progress
 * callback; the result becomes a handle of size bytes. */
static int fetch(void **out, size_t size, banger_ctx *ctx, const char *method, json_t *extra, const json_t *opts,
		 banger_progress_cb cb, void *ud)
{
	json_t *params = opts ? json_deep_copy(opts) : json_object();
	if (!extra || json_object_update(params, extra) != 0) {
		json_decref(params);
		params = NULL;
	}
	json_decref(extra);
	int rc = bng_record_fetch(out, size, ctx, method, params, cb, ud);
	json_decref(params);
	return rc;
}

/* Runs a verb (image.rm, kernel.rm) on the record by id. */
static int remove_record(bng_record *r, const char *method)
{
	if (!r)
		return bng_err(BANGER_EINVAL, "%s: the handle is NULL", method);
	json_t *params = json_pack("{s:s}", "name", bng_record_str(r, "id"));
	int rc = bng_handle_run(r->ctx, method, params, NULL, NULL, NULL);
	json_decref(params);
	return rc;
}

/* ---- images ---- */

BANGER_API int banger_image_options_new(banger_image_options **out)
{
	if (!out)
		return bng_err(BANGER_EINVAL, "banger_image_options_new: out is NULL");
	*out = options_new(sizeof(**out));
	return 0;
}

BANGER_API void banger_image_options_free(banger_image_options *o) { options_free(o ? &o->o : NULL); }

BANGER_API int banger_image_options_set_name(banger_image_options *o, const char *v) { return bng_handle_set_str(P(o), "name", v); }
BANGER_API int banger_image_options_set_size(banger_image_options *o, const char *v) { return bng_handle_set_str(P(o), "size", v); }
BANGER_API int banger_image_options_set_kernel(banger_image_options *o, const char *v) { return bng_handle_set_str(P(o), "kernel", v); }
BANGER_API int banger_image_options_set_suite(banger_image_options *o, const char *v) { return bng_handle_set_str(P(o), "suite", v); }
BANGER_API int banger_image_options_set_mirror(banger_image_options *o, const char *v) { return bng_handle_set_str(P(o), "mirror", v); }
BANGER_API int banger_image_options_set_minimal(banger_image_options *o, int on) { return bng_handle_set_bool(P(o), "minimal", on); }
BANGER_API int banger_image_options_set_systemd(banger_image_options *o, int on) { return bng_handle_set_bool(P(o), "systemd", on); }

BANGER_API int banger_image_options_set_progress_cb(banger_image_options *o, banger_progress_cb cb, void *ud)
{
	return options_progress(o ? &o->o : NULL, cb, ud);
}

/* Build-only keys are not pull's or import's parameters. */
static json_t *without_build_keys(const banger_image_options *o)
{
	json_t *p = P(o) ? json_deep_copy(P(o)) : json_object();
	json_object_del(p, "suite");
	json_object_del(p, "mirror");
	json_object_del(p, "minimal");
	json_object_del(p, "systemd");
	return p;
}

BANGER_API int banger_image_pull(banger_image **out, banger_ctx *ctx, const char *ref, const banger_image_options *o)
{
	if (!out || !ctx || !ref)
		return bng_err(BANGER_EINVAL, "banger_image_pull: out, ctx and ref are required");
	json_t *base = without_build_keys(o);
	int rc = fetch((void **)out, sizeof(banger_image), ctx, "image.pull", json_pack("{s:s}", "ref", ref), base,
		       CB(o), UD(o));
	json_decref(base);
	return rc;
}

BANGER_API int banger_image_import(banger_image **out, banger_ctx *ctx, size_t ntars, const char *const *tars,
				   const banger_image_options *o)
{
	if (!out || !ctx || !ntars || !tars)
		return bng_err(BANGER_EINVAL, "banger_image_import: out, ctx and at least one tar are required");
	*out = NULL;
	json_t *extra = json_object();
	int rc = bng_handle_set_argv(extra, "tars", ntars, tars, "banger_image_import");
	json_t *base = without_build_keys(o);
	if (!rc)
		rc = fetch((void **)out, sizeof(banger_image), ctx, "image.import", json_incref(extra), base,
			   CB(o), UD(o));
	json_decref(base);
	json_decref(extra);
	return rc;
}

BANGER_API int banger_image_build(banger_image **out, banger_ctx *ctx, const banger_image_options *o)
{
	if (!out || !ctx)
		return bng_err(BANGER_EINVAL, "banger_image_build: out and ctx are required");
	json_t *base = P(o) ? json_deep_copy(P(o)) : json_object();
	json_object_del(base, "kernel"); /* not a build parameter */
	int rc = fetch((void **)out, sizeof(banger_image), ctx, "image.build", json_object(), base, CB(o), UD(o));
	json_decref(base);
	return rc;
}

BANGER_API int banger_image_lookup(banger_image **out, banger_ctx *ctx, const char *ref)
{
	if (!out || !ctx || !ref)
		return bng_err(BANGER_EINVAL, "banger_image_lookup: out, ctx and ref are required");
	return fetch((void **)out, sizeof(banger_image), ctx, "image.show", json_pack("{s:s}", "name", ref), NULL, NULL,
		     NULL);
}

BANGER_API int banger_image_list(banger_image ***out, size_t *count, banger_ctx *ctx)
{
	if (!out || !count || !ctx)
		return bng_err(BANGER_EINVAL, "banger_image_list: out, count and ctx are required");
	json_t *params = json_object();
	int rc = bng_record_list((void ***)out, count, sizeof(banger_image), ctx, "image.list", params, "images");
	json_decref(params);
	return rc;
}

BANGER_API void banger_image_list_free(banger_image **images, size_t count) { bng_record_list_free((void **)images, count); }

BANGER_API banger_image *banger_image_ref(banger_image *img)
{
	bng_record_ref(img ? &img->rec : NULL);
	return img;
}

BANGER_API void banger_image_unref(banger_image *img) { bng_record_unref(img ? &img->rec : NULL); }
BANGER_API const char *banger_image_name(const banger_image *img) { return bng_record_str(img ? &img->rec : NULL, "name"); }
BANGER_API const char *banger_image_id(const banger_image *img) { return bng_record_str(img ? &img->rec : NULL, "id"); }
BANGER_API const char *banger_image_source(const banger_image *img) { return bng_record_str(img ? &img->rec : NULL, "source"); }
BANGER_API const char *banger_image_json(const banger_image *img) { return bng_record_json(img ? &img->rec : NULL); }

BANGER_API int64_t banger_image_rootfs_size(const banger_image *img)
{
	return img ? (int64_t)json_integer_value(json_object_get(img->rec.row, "rootfs_size")) : 0;
}

BANGER_API int banger_image_delete(banger_image *img) { return remove_record(img ? &img->rec : NULL, "image.rm"); }

/* ---- kernels ---- */

BANGER_API int banger_kernel_options_new(banger_kernel_options **out)
{
	if (!out)
		return bng_err(BANGER_EINVAL, "banger_kernel_options_new: out is NULL");
	*out = options_new(sizeof(**out));
	return 0;
}

BANGER_API void banger_kernel_options_free(banger_kernel_options *o) { options_free(o ? &o->o : NULL); }

BANGER_API int banger_kernel_options_set_progress_cb(banger_kernel_options *o, banger_progress_cb cb, void *ud)
{
	return options_progress(o ? &o->o : NULL, cb, ud);
}

static int kernel_call(banger_kernel **out, banger_ctx *ctx, const char *method, json_t *params,
		       const banger_kernel_options *o, const char *what)
{
	if (!out || !ctx || !params) {
		json_decref(params);
		return bng_err(BANGER_EINVAL, "%s: out, ctx, a name and a path are required (UTF-8)", what);
	}
	return fetch((void **)out, sizeof(banger_kernel), ctx, method, params, P(o), CB(o), UD(o));
}

BANGER_API int banger_kernel_import_deb(banger_kernel **out, banger_ctx *ctx, const char *name, const char *deb,
					const banger_kernel_options *o)
{
	return kernel_call(out, ctx, "kernel.import", name && deb ? json_pack("{s:s,s:s}", "name", name, "deb", deb) : NULL,
			   o, "banger_kernel_import_deb");
}

BANGER_API int banger_kernel_import_dir(banger_kernel **out, banger_ctx *ctx, const char *name, const char *dir,
					const banger_kernel_options *o)
{
	return kernel_call(out, ctx, "kernel.import", name && dir ? json_pack("{s:s,s:s}", "name", name, "from", dir) : NULL,
			   o, "banger_kernel_import_dir");
}

BANGER_API int banger_kernel_pull(banger_kernel **out, banger_ctx *ctx, const char *name, const banger_kernel_options *o)
{
	return kernel_call(out, ctx, "kernel.pull", name ? json_pack("{s:s}", "name", name) : NULL, o, "banger_kernel_pull");
}

BANGER_API int banger_kernel_lookup(banger_kernel **out, banger_ctx *ctx, const char *ref)
{
	return kernel_call(out, ctx, "kernel.show", ref ? json_pack("{s:s}", "name", ref) : NULL, NULL,
			   "banger_kernel_lookup");
}

BANGER_API int banger_kernel_list(banger_kernel ***out, size_t *count, banger_ctx *ctx)
{
	if (!out || !count || !ctx)
		return bng_err(BANGER_EINVAL, "banger_kernel_list: out, count and ctx are required");
	json_t *params = json_object();
	int rc = bng_record_list((void ***)out, count, sizeof(banger_kernel), ctx, "kernel.list", params, "kernels");
	json_decref(params);
	return rc;
}

BANGER_API void banger_kernel_list_free(banger_kernel **kernels, size_t count) { bng_record_list_free((void **)kernels, count); }

BANGER_API banger_kernel *banger_kernel_ref(banger_kernel *k)
{
	bng_record_ref(k ? &k->rec : NULL);
	return k;
}

BANGER_API void banger_kernel_unref(banger_kernel *k) { bng_record_unref(k ? &k->rec : NULL); }
BANGER_API const char *banger_kernel_name(const banger_kernel *k) { return bng_record_str(k ? &k->rec : NULL, "name"); }
BANGER_API const char *banger_kernel_id(const banger_kernel *k) { return bng_record_str(k ? &k->rec : NULL, "id"); }
BANGER_API const char *banger_kernel_version(const banger_kernel *k) { return bng_record_str(k ? &k->rec : NULL, "version"); }
BANGER_API const char *banger_kernel_source(const banger_kernel *k) { return bng_record_str(k ? &k->rec : NULL, "source"); }
BANGER_API const char *banger_kernel_json(const banger_kernel *k) { return bng_record_json(k ? &k->rec : NULL); }
BANGER_API int banger_kernel_delete(banger_kernel *k) { return remove_record(k ? &k->rec : NULL, "kernel.rm"); }

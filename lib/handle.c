/* What the typed handles share (handle.h): running one method through a
 * context, refcounted records of the rows it returns, option setters and
 * typed progress events. */
#include "handle.h"
#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

int bng_handle_run(banger_ctx *ctx, const char *method, json_t *params, json_t **result, banger_event_cb cb, void *ud)
{
	char *text = json_dumps(params, JSON_COMPACT);
	banger_call *call;
	int rc = banger_call_new(&call, method, text);
	free(text);
	if (rc)
		return rc;
	if (cb)
		banger_call_set_event_cb(call, cb, ud);
	rc = banger_call_run(ctx, call);
	if (!rc && result)
		*result = json_loads(banger_call_result(call), 0, NULL);
	banger_call_unref(call);
	return rc;
}

/* ---- progress ---- */

struct banger_progress {
	json_t *event;
	const char *text;
};

typedef struct {
	banger_progress_cb cb;
	void *ud;
} progress_sink;

static void on_progress(const char *event_json, void *ud)
{
	progress_sink *sink = ud;
	banger_progress p = {.event = json_loads(event_json, 0, NULL), .text = event_json};
	if (json_is_object(p.event))
		sink->cb(&p, sink->ud);
	json_decref(p.event);
}

int bng_handle_run_progress(banger_ctx *ctx, const char *method, json_t *params, json_t **result,
			    banger_progress_cb cb, void *ud)
{
	progress_sink sink = {cb, ud};
	return bng_handle_run(ctx, method, params, result, cb ? on_progress : NULL, &sink);
}

BANGER_API const char *banger_progress_stage(const banger_progress *p)
{
	return p ? json_string_value(json_object_get(p->event, "stage")) : NULL;
}

static int64_t count(const banger_progress *p, const char *key)
{
	json_t *v = p ? json_object_get(p->event, key) : NULL;
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

BANGER_API int64_t banger_progress_done(const banger_progress *p) { return count(p, "done"); }
BANGER_API int64_t banger_progress_total(const banger_progress *p) { return count(p, "total"); }

BANGER_API double banger_progress_seconds(const banger_progress *p)
{
	json_t *v = p ? json_object_get(p->event, "seconds") : NULL;
	return json_is_number(v) ? json_number_value(v) : -1;
}

BANGER_API const char *banger_progress_message(const banger_progress *p)
{
	if (!p)
		return NULL;
	const char *m = json_string_value(json_object_get(p->event, "message"));
	return m ? m : json_string_value(json_object_get(p->event, "warning"));
}

BANGER_API const char *banger_progress_json(const banger_progress *p) { return p ? p->text : NULL; }

/* ---- option setters ---- */

int bng_handle_set_str(json_t *params, const char *key, const char *value)
{
	if (!params)
		return bng_err(BANGER_EINVAL, "options are NULL");
	if (!value)
		json_object_del(params, key);
	else if (json_object_set_new(params, key, json_string(value)) != 0)
		return bng_err(BANGER_EINVAL, "%s is not valid UTF-8", key);
	return 0;
}

int bng_handle_set_int(json_t *params, const char *key, int32_t value)
{
	if (!params)
		return bng_err(BANGER_EINVAL, "options are NULL");
	if (value <= 0)
		json_object_del(params, key);
	else
		json_object_set_new(params, key, json_integer(value));
	return 0;
}

int bng_handle_set_bool(json_t *params, const char *key, int value)
{
	if (!params)
		return bng_err(BANGER_EINVAL, "options are NULL");
	json_object_set_new(params, key, json_boolean(value));
	return 0;
}

int bng_handle_set_argv(json_t *params, const char *key, size_t argc, const char *const *argv, const char *what)
{
	if (!params || (argc && !argv))
		return bng_err(BANGER_EINVAL, "%s: options and argv are required", what);
	json_t *list = json_array();
	for (size_t i = 0; i < argc; i++)
		if (!argv[i] || json_array_append_new(list, json_string(argv[i])) != 0) {
			json_decref(list);
			return bng_err(BANGER_EINVAL, "%s: argv[%zu] is NULL or not UTF-8", what, i);
		}
	json_object_set_new(params, key, list);
	return 0;
}

/* ---- records ---- */

void *bng_record_new(size_t size, banger_ctx *ctx, json_t *row)
{
	bng_record *r = bng_xcalloc(1, size);
	atomic_init(&r->refs, 1);
	r->ctx = banger_ctx_ref(ctx);
	r->row = row;
	return r;
}

void bng_record_ref(bng_record *r)
{
	if (r)
		atomic_fetch_add(&r->refs, 1);
}

void bng_record_unref(bng_record *r)
{
	if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	banger_ctx_unref(r->ctx);
	json_decref(r->row);
	free(r->text);
	free(r);
}

void bng_record_set_row(bng_record *r, json_t *row)
{
	json_decref(r->row);
	r->row = row;
	free(r->text);
	r->text = NULL;
}

const char *bng_record_str(const bng_record *r, const char *key)
{
	return r ? json_string_value(json_object_get(r->row, key)) : NULL;
}

const char *bng_record_json(const bng_record *r)
{
	if (!r)
		return NULL;
	bng_record *mut = (bng_record *)r; /* a cache, not a change */
	if (!mut->text)
		mut->text = json_dumps(r->row, JSON_COMPACT);
	return mut->text;
}

int bng_record_fetch(void **out, size_t size, banger_ctx *ctx, const char *method, json_t *params,
		     banger_progress_cb cb, void *ud)
{
	*out = NULL;
	json_t *row = NULL;
	int rc = params ? bng_handle_run_progress(ctx, method, params, &row, cb, ud)
			: bng_err(BANGER_EINVAL, "%s: a parameter is not UTF-8", method);
	if (!rc)
		*out = bng_record_new(size, ctx, row);
	return rc;
}

int bng_record_list(void ***out, size_t *count, size_t size, banger_ctx *ctx, const char *method, json_t *params,
		    const char *key)
{
	*out = NULL;
	*count = 0;
	json_t *res = NULL;
	int rc = bng_handle_run(ctx, method, params, &res, NULL, NULL);
	if (rc)
		return rc;
	json_t *rows = json_object_get(res, key);
	*out = bng_xcalloc(json_array_size(rows) + 1, sizeof(void *));
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) (*out)[i] = bng_record_new(size, ctx, json_incref(row));
	*count = json_array_size(rows);
	json_decref(res);
	return 0;
}

void bng_record_list_free(void **handles, size_t count)
{
	for (size_t i = 0; handles && i < count; i++)
		bng_record_unref(handles[i]);
	free(handles);
}

/* Typed workspace handles (include/banger/workspace.h) over
 * vm.workspace.*: each call runs one method through the VM's context. */
#include "handle.h"
#include "core/internal.h"

#include <banger/workspace.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct banger_workspace {
	atomic_int refs;
	banger_vm *vm;
	json_t *doc;
	char *text;   /* banger_workspace_json */
	char *reason; /* banger_workspace_status */
};

struct banger_workspace_options {
	json_t *params;
	banger_progress_cb cb;
	void *ud;
};

BANGER_API int banger_workspace_options_new(banger_workspace_options **out)
{
	if (!out)
		return bng_err(BANGER_EINVAL, "banger_workspace_options_new: out is NULL");
	*out = bng_xcalloc(1, sizeof(**out));
	(*out)->params = json_object();
	return 0;
}

BANGER_API void banger_workspace_options_free(banger_workspace_options *o)
{
	if (o) {
		json_decref(o->params);
		free(o);
	}
}

static int set(banger_workspace_options *o, const char *key, json_t *value)
{
	if (!o) {
		json_decref(value);
		return bng_err(BANGER_EINVAL, "options are NULL");
	}
	if (!value)
		return bng_err(BANGER_EINVAL, "%s is NULL or not UTF-8", key);
	json_object_set_new(o->params, key, value);
	return 0;
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : NULL; }

BANGER_API int banger_workspace_options_set_path(banger_workspace_options *o, const char *path)
{
	return set(o, "path", str_or_null(path));
}

BANGER_API int banger_workspace_options_set_guest_path(banger_workspace_options *o, const char *path)
{
	return set(o, "guest_path", str_or_null(path));
}

BANGER_API int banger_workspace_options_set_mode(banger_workspace_options *o, const char *mode)
{
	return set(o, "mode", str_or_null(mode));
}

BANGER_API int banger_workspace_options_set_include_untracked(banger_workspace_options *o, int enabled)
{
	return set(o, "include_untracked", json_boolean(enabled));
}

BANGER_API int banger_workspace_options_set_force(banger_workspace_options *o, int enabled)
{
	return set(o, "force", json_boolean(enabled));
}

BANGER_API int banger_workspace_options_set_progress_cb(banger_workspace_options *o, banger_progress_cb cb,
							void *userdata)
{
	if (!o)
		return bng_err(BANGER_EINVAL, "options are NULL");
	o->cb = cb;
	o->ud = userdata;
	return 0;
}

static banger_workspace *wrap(banger_vm *vm, json_t *doc)
{
	banger_workspace *ws = bng_xcalloc(1, sizeof(*ws));
	atomic_init(&ws->refs, 1);
	ws->vm = banger_vm_ref(vm);
	ws->doc = doc;
	return ws;
}

static int lookup(banger_workspace **out, banger_vm *vm)
{
	json_t *doc = NULL;
	json_t *params = json_pack("{s:s}", "name", banger_vm_id(vm));
	int rc = bng_handle_run(bng_vm_handle_ctx(vm), "vm.workspace.show", params, &doc, NULL, NULL);
	json_decref(params);
	if (!rc)
		*out = wrap(vm, doc);
	return rc;
}

BANGER_API int banger_workspace_prepare(banger_workspace **out, banger_vm *vm, const banger_workspace_options *opts)
{
	if (!out || !vm || !opts)
		return bng_err(BANGER_EINVAL, "banger_workspace_prepare: out, vm and options are required");
	*out = NULL;
	if (!json_object_get(opts->params, "path"))
		return bng_err(BANGER_EINVAL, "banger_workspace_prepare: no repository (banger_workspace_options_set_path)");
	json_t *params = json_deep_copy(opts->params), *res = NULL;
	json_object_set_new(params, "name", json_string(banger_vm_id(vm)));
	int rc = bng_handle_run_progress(bng_vm_handle_ctx(vm), "vm.workspace.prepare", params, &res, opts->cb, opts->ud);
	json_decref(params);
	json_decref(res);
	return rc ? rc : lookup(out, vm);
}

BANGER_API int banger_workspace_lookup(banger_workspace **out, banger_vm *vm)
{
	if (!out || !vm)
		return bng_err(BANGER_EINVAL, "banger_workspace_lookup: out and vm are required");
	*out = NULL;
	return lookup(out, vm);
}

BANGER_API banger_workspace *banger_workspace_ref(banger_workspace *ws)
{
	if (ws)
		atomic_fetch_add(&ws->refs, 1);
	return ws;
}

BANGER_API void banger_workspace_unref(banger_workspace *ws)
{
	if (!ws || atomic_fetch_sub(&ws->refs, 1) != 1)
		return;
	banger_vm_unref(ws->vm);
	json_decref(ws->doc);
	free(ws->text);
	free(ws->reason);
	free(ws);
}

static const char *field(const banger_workspace *ws, const char *key)
{
	return ws ? json_string_value(json_object_get(ws->doc, key)) : NULL;
}

BANGER_API const char *banger_workspace_host_path(const banger_workspace *ws) { return field(ws, "host_path"); }
BANGER_API const char *banger_workspace_guest_path(const banger_workspace *ws) { return field(ws, "guest_path"); }
BANGER_API const char *banger_workspace_head_commit(const banger_workspace *ws) { return field(ws, "head_commit"); }
BANGER_API const char *banger_workspace_mode(const banger_workspace *ws) { return field(ws, "mode"); }

BANGER_API const char *banger_workspace_json(const banger_workspace *ws)
{
	if (!ws)
		return NULL;
	struct banger_workspace *mut = (struct banger_workspace *)ws; /* a cache, not a change */
	if (!mut->text)
		mut->text = json_dumps(ws->doc, JSON_COMPACT);
	return mut->text;
}

BANGER_API int banger_workspace_status(banger_workspace *ws, int *changed, const char **reason)
{
	if (!ws || !changed)
		return bng_err(BANGER_EINVAL, "banger_workspace_status: workspace and changed are required");
	json_t *params = json_pack("{s:s}", "name", banger_vm_id(ws->vm)), *res = NULL;
	int rc = bng_handle_run(bng_vm_handle_ctx(ws->vm), "vm.workspace.status", params, &res, NULL, NULL);
	json_decref(params);
	if (rc)
		return rc;
	*changed = json_is_true(json_object_get(res, "changed"));
	free(ws->reason);
	const char *why = json_string_value(json_object_get(res, "reason"));
	ws->reason = why ? bng_strdup(why) : NULL;
	if (reason)
		*reason = ws->reason;
	json_decref(res);
	return 0;
}

BANGER_API int banger_workspace_export(banger_workspace *ws, const char *base_commit, char **patch, size_t *len)
{
	if (!ws || !patch || !len)
		return bng_err(BANGER_EINVAL, "banger_workspace_export: workspace, patch and len are required");
	*patch = NULL;
	*len = 0;
	json_t *params = json_pack("{s:s}", "name", banger_vm_id(ws->vm)), *res = NULL;
	if (base_commit)
		json_object_set_new(params, "base_commit", json_string(base_commit));
	int rc = bng_handle_run(bng_vm_handle_ctx(ws->vm), "vm.workspace.export", params, &res, NULL, NULL);
	json_decref(params);
	if (rc)
		return rc;
	const char *b64 = json_string_value(json_object_get(res, "patch_b64"));
	if (b64) {
		rc = bng_base64_decode(b64, patch, len);
	} else {
		json_t *p = json_object_get(res, "patch");
		*len = json_string_length(p);
		*patch = bng_xmalloc(*len + 1);
		memcpy(*patch, json_string_value(p) ? json_string_value(p) : "", *len);
		(*patch)[*len] = '\0';
	}
	json_decref(res);
	return rc;
}

/* banger — a VM's workspace as a typed object (since 0.2): a host git
 * repository shipped into the guest, its status against the host tree,
 * and the guest's changes back as a patch.
 *
 *   banger_workspace_options *o;
 *   banger_workspace_options_new(&o);
 *   banger_workspace_options_set_path(o, "/home/me/src/app");
 *   banger_workspace *ws;
 *   if (banger_workspace_prepare(&ws, vm, o) != 0) fprintf(stderr, "%s\n", banger_error_last());
 *   ... work in the guest (banger_vm_exec with cwd banger_workspace_guest_path(ws)) ...
 *   char *patch; size_t len;
 *   banger_workspace_export(ws, NULL, &patch, &len);   // git apply it on the host
 *   banger_free(patch);
 *   banger_workspace_unref(ws);
 *
 * Each call runs one vm.workspace.* method through the VM's context. */
#ifndef BANGER_WORKSPACE_PUBLIC_H
#define BANGER_WORKSPACE_PUBLIC_H

#include "vm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct banger_workspace banger_workspace;
typedef struct banger_workspace_options banger_workspace_options;

BANGER_API int banger_workspace_options_new(banger_workspace_options **out);
BANGER_API void banger_workspace_options_free(banger_workspace_options *o);
/* The repository on the host: a path inside its working tree. Required. */
BANGER_API int banger_workspace_options_set_path(banger_workspace_options *o, const char *path);
/* Where it goes in the guest (default /root/repo). */
BANGER_API int banger_workspace_options_set_guest_path(banger_workspace_options *o, const char *path);
/* "shallow" (default) or "full_copy". */
BANGER_API int banger_workspace_options_set_mode(banger_workspace_options *o, const char *mode);
BANGER_API int banger_workspace_options_set_include_untracked(banger_workspace_options *o, int enabled);
/* Replace a guest checkout even with changes made there since shipping. */
BANGER_API int banger_workspace_options_set_force(banger_workspace_options *o, int enabled);
/* Progress of a prepare, as typed events (progress.h): stage "clone";
 * "overlay" (total: the files laid over the clone); "ship" (its "files"
 * and "bytes" in banger_progress_json); "copy" (done: bytes sent). */
BANGER_API int banger_workspace_options_set_progress_cb(banger_workspace_options *o, banger_progress_cb cb,
							void *userdata);

/* Ships the repository into vm (running). */
BANGER_API int banger_workspace_prepare(banger_workspace **out, banger_vm *vm, const banger_workspace_options *opts);
/* vm's workspace; BANGER_ENOTFOUND when it has none. */
BANGER_API int banger_workspace_lookup(banger_workspace **out, banger_vm *vm);
BANGER_API banger_workspace *banger_workspace_ref(banger_workspace *ws);
BANGER_API void banger_workspace_unref(banger_workspace *ws);

BANGER_API const char *banger_workspace_host_path(const banger_workspace *ws);
BANGER_API const char *banger_workspace_guest_path(const banger_workspace *ws);
BANGER_API const char *banger_workspace_head_commit(const banger_workspace *ws);
BANGER_API const char *banger_workspace_mode(const banger_workspace *ws);
/* Every field as JSON text. */
BANGER_API const char *banger_workspace_json(const banger_workspace *ws);

/* Whether the host tree moved on since shipping: *changed 1 or 0, *reason
 * (may be NULL; owned by ws, valid until its next call) says how. */
BANGER_API int banger_workspace_status(banger_workspace *ws, int *changed, const char **reason);
/* The guest's changes since base_commit (NULL: the shipped commit, so
 * commits made in the guest are in it) as a binary git patch: *patch
 * (free with banger_free) of *len bytes; the guest repository is not
 * touched. */
BANGER_API int banger_workspace_export(banger_workspace *ws, const char *base_commit, char **patch, size_t *len);

#ifdef __cplusplus
}
#endif
#endif

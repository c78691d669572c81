/* banger — guest kernels as typed objects (since 0.2).
 *
 *   banger_kernel *k;
 *   if (banger_kernel_import_deb(&k, ctx, "cloud", "/tmp/linux-image.deb", NULL) != 0)
 *           fprintf(stderr, "%s\n", banger_error_last());
 *   printf("%s %s\n", banger_kernel_name(k), banger_kernel_version(k));
 *   banger_kernel_unref(k);
 *
 * Each call runs one method ("kernel.import", ...) through the context, so
 * both transports work; calls block the calling thread. */
#ifndef BANGER_KERNEL_PUBLIC_H
#define BANGER_KERNEL_PUBLIC_H

#include "ctx.h"
#include "progress.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct banger_kernel banger_kernel;
typedef struct banger_kernel_options banger_kernel_options;

BANGER_API int banger_kernel_options_new(banger_kernel_options **out);
BANGER_API void banger_kernel_options_free(banger_kernel_options *o);
BANGER_API int banger_kernel_options_set_progress_cb(banger_kernel_options *o, banger_progress_cb cb, void *userdata);

/* Imports a Debian linux-image .deb (absolute path) as name; opts may be NULL. */
BANGER_API int banger_kernel_import_deb(banger_kernel **out, banger_ctx *ctx, const char *name, const char *deb,
					const banger_kernel_options *opts);
/* Imports a directory holding vmlinux (or vmlinuz) and optionally initrd.img and modules. */
BANGER_API int banger_kernel_import_dir(banger_kernel **out, banger_ctx *ctx, const char *name, const char *dir,
					const banger_kernel_options *opts);
/* A catalog's kernel bundle. */
BANGER_API int banger_kernel_pull(banger_kernel **out, banger_ctx *ctx, const char *name,
				  const banger_kernel_options *opts);
BANGER_API int banger_kernel_lookup(banger_kernel **out, banger_ctx *ctx, const char *ref);
BANGER_API int banger_kernel_list(banger_kernel ***out, size_t *count, banger_ctx *ctx);
BANGER_API void banger_kernel_list_free(banger_kernel **kernels, size_t count);
BANGER_API banger_kernel *banger_kernel_ref(banger_kernel *k);
BANGER_API void banger_kernel_unref(banger_kernel *k);

BANGER_API const char *banger_kernel_name(const banger_kernel *k);
BANGER_API const char *banger_kernel_id(const banger_kernel *k);
/* The kernel release, e.g. "6.1.0-28-cloud-amd64". */
BANGER_API const char *banger_kernel_version(const banger_kernel *k);
BANGER_API const char *banger_kernel_source(const banger_kernel *k);
BANGER_API const char *banger_kernel_json(const banger_kernel *k);

/* Removes the kernel; BANGER_EBUSY names the VMs and images that still use it. */
BANGER_API int banger_kernel_delete(banger_kernel *k);

#ifdef __cplusplus
}
#endif
#endif

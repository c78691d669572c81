/* banger — images as typed objects (since 0.2).
 *
 *   banger_image_options *o;
 *   banger_image_options_new(&o);
 *   banger_image_options_set_progress_cb(o, on_progress, NULL);
 *   banger_image *img;
 *   if (banger_image_pull(&img, ctx, "debian:bookworm", o) != 0)
 *           fprintf(stderr, "%s\n", banger_error_last());
 *   printf("%s %s\n", banger_image_name(img), banger_image_id(img));
 *   banger_image_unref(img);
 *   banger_image_options_free(o);
 *
 * Each call runs one method ("image.pull", "image.import", ...) through
 * the context, so both transports work; calls block the calling thread. */
#ifndef BANGER_IMAGE_PUBLIC_H
#define BANGER_IMAGE_PUBLIC_H

#include "ctx.h"
#include "progress.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct banger_image banger_image;
typedef struct banger_image_options banger_image_options;

BANGER_API int banger_image_options_new(banger_image_options **out);
BANGER_API void banger_image_options_free(banger_image_options *o);
/* Each setter copies its string; NULL goes back to the default. */
BANGER_API int banger_image_options_set_name(banger_image_options *o, const char *name);
/* The root filesystem's size: "4G", "512M" ... */
BANGER_API int banger_image_options_set_size(banger_image_options *o, const char *size);
/* The kernel VMs of this image boot by default. */
BANGER_API int banger_image_options_set_kernel(banger_image_options *o, const char *kernel);
BANGER_API int banger_image_options_set_progress_cb(banger_image_options *o, banger_progress_cb cb, void *userdata);
/* banger_image_build only: the Debian suite, a mirror URL, a minimal
 * package set, and whether systemd is in (default: yes). */
BANGER_API int banger_image_options_set_suite(banger_image_options *o, const char *suite);
BANGER_API int banger_image_options_set_mirror(banger_image_options *o, const char *mirror);
BANGER_API int banger_image_options_set_minimal(banger_image_options *o, int enabled);
BANGER_API int banger_image_options_set_systemd(banger_image_options *o, int enabled);

/* From a registry (an OCI reference) or a catalog name; opts may be NULL. */
BANGER_API int banger_image_pull(banger_image **out, banger_ctx *ctx, const char *ref, const banger_image_options *opts);
/* From ntars tar files (absolute paths, oldest layer first); the options
 * must name the image. */
BANGER_API int banger_image_import(banger_image **out, banger_ctx *ctx, size_t ntars, const char *const *tars,
				   const banger_image_options *opts);
/* With debootstrap from a Debian mirror; opts may be NULL. */
BANGER_API int banger_image_build(banger_image **out, banger_ctx *ctx, const banger_image_options *opts);
/* The image named (or with the id) ref; BANGER_ENOTFOUND if there is none. */
BANGER_API int banger_image_lookup(banger_image **out, banger_ctx *ctx, const char *ref);
/* Every image: *out is an array of *count handles, freed with banger_image_list_free. */
BANGER_API int banger_image_list(banger_image ***out, size_t *count, banger_ctx *ctx);
BANGER_API void banger_image_list_free(banger_image **images, size_t count);
BANGER_API banger_image *banger_image_ref(banger_image *img);
BANGER_API void banger_image_unref(banger_image *img);

/* ---- fields, as the call that returned the handle saw them; strings
 * live as long as the handle ---- */
BANGER_API const char *banger_image_name(const banger_image *img);
BANGER_API const char *banger_image_id(const banger_image *img);
/* Where it came from: "oci:debian:bookworm", "tar:...", "catalog:...". */
BANGER_API const char *banger_image_source(const banger_image *img);
/* The root filesystem's apparent size in bytes. */
BANGER_API int64_t banger_image_rootfs_size(const banger_image *img);
/* The whole record as JSON text (every field, including ones added later). */
BANGER_API const char *banger_image_json(const banger_image *img);

/* Removes the image; BANGER_EBUSY names the VMs that still use it. The
 * handle stays valid and is still unref'd by the caller. */
BANGER_API int banger_image_delete(banger_image *img);

#ifdef __cplusplus
}
#endif
#endif

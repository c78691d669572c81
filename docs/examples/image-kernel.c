/* Images and kernels from C: import tar layers as an image with each
 * progress stage printed, find it again, list what the store holds,
 * show the kernel it would boot, and remove the image.
 *
 *   cc image-kernel.c $(pkg-config --cflags --libs banger) -o image-kernel
 *   ./image-kernel local:/some/state NAME LAYER.tar...   (or unix:)
 */
#include <banger.h>
#include <inttypes.h>
#include <stdio.h>

static void on_progress(const banger_progress *p, void *userdata)
{
	(void)userdata;
	printf("progress %s", banger_progress_stage(p));
	if (banger_progress_total(p) >= 0)
		printf(" %" PRId64 "/%" PRId64, banger_progress_done(p), banger_progress_total(p));
	printf("\n");
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s URI NAME LAYER.tar...\n", argv[0]);
		return 2;
	}
	banger_ctx *ctx = NULL;
	banger_image_options *o = NULL;
	banger_image *img = NULL, *again = NULL, **all = NULL;
	banger_kernel **kernels = NULL;
	size_t n = 0, nk = 0;
	int status = 1;
	if (banger_ctx_open(&ctx, argv[1], NULL) != 0)
		goto out;
	banger_image_options_new(&o);
	banger_image_options_set_name(o, argv[2]);
	banger_image_options_set_progress_cb(o, on_progress, NULL);
	if (banger_image_import(&img, ctx, (size_t)(argc - 3), (const char *const *)argv + 3, o) != 0)
		goto out;
	printf("imported %s %s from %s, %" PRId64 " bytes\n", banger_image_name(img), banger_image_id(img),
	       banger_image_source(img), banger_image_rootfs_size(img));
	if (banger_image_lookup(&again, ctx, banger_image_id(img)) != 0)
		goto out;
	printf("found %s\n", banger_image_name(again));
	if (banger_image_list(&all, &n, ctx) != 0 || banger_kernel_list(&kernels, &nk, ctx) != 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		printf("image %s\n", banger_image_name(all[i]));
	for (size_t i = 0; i < nk; i++)
		printf("kernel %s %s\n", banger_kernel_name(kernels[i]), banger_kernel_version(kernels[i]));
	if (banger_image_delete(img) != 0)
		goto out;
	printf("removed %s\n", banger_image_name(img));
	status = 0;
out:
	if (status)
		fprintf(stderr, "error: %s (%s)\n", banger_error_last(), banger_strerror(banger_error_last_code()));
	banger_kernel_list_free(kernels, nk);
	banger_image_list_free(all, n);
	banger_image_unref(again);
	banger_image_unref(img);
	banger_image_options_free(o);
	banger_ctx_unref(ctx);
	return status;
}

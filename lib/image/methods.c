/* The image module's methods (image.*) and its start-up hook: a crash
 * between publishing an image directory and inserting its row leaves a
 * directory (or a staging one) that the next engine removes; a pull killed
 * half way leaves temp and lock files in the OCI cache, swept the same way. */
#include "image.h"
#include "../oci/oci.h"

static int image_reconcile(bng_engine *e)
{
	bng_oci_cache_sweep(e->paths.cache_dir); /* best effort: a pull killed half way */
	return bng_clean_leftovers(e, e->images_dir, "images");
}

static const bng_method image_methods[] = {
	{"image.import", "name:str,tars:arr,size:str?,kernel:str?,source:str?",
	 "build an image from tars applied in order (docker export, OCI layers); source labels the origin",
	 bng_m_image_import, "0.1"},
	{"image.register", "name:str,rootfs:str,kernel:str?", "record an existing rootfs.ext4 as an image",
	 bng_m_image_register, "0.1"},
	{"image.build", "name:str?,suite:str?,minimal:bool?,systemd:bool?,mirror:str?,size:str?",
	 "build the default Debian image from the package mirror (debootstrap), cached by content",
	 bng_m_image_build, "0.1"},
	{"image.pull", "ref:str,name:str?,size:str?,kernel:str?",
	 "a catalog image by name, or an OCI image (docker-style ref) from its registry", bng_m_image_pull, "0.1"},
	{"image.catalog", "", "the image catalog, with which entries are pulled", bng_m_image_catalog, "0.1"},
	{"image.list", "", "images with their rootfs sizes", bng_m_image_list, "0.1"},
	{"image.show", "name:str", "one image by name or id", bng_m_image_show, "0.1"},
	{"image.rm", "name:str", "remove an image and its files", bng_m_image_rm, "0.1"},
};

const bng_module bng_image_module = {.name = "image",
				  .methods = image_methods,
				  .nmethods = BNG_ARRAY_LEN(image_methods),
				  .reconcile = image_reconcile};

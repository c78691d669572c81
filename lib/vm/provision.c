/* The image and kernel a new VM runs on: the ones it names, else the
 * configured defaults, which a fresh host provisions on first use (the
 * catalog's when it lists them, else the default image built from the
 * Debian mirror and the distro's cloud kernel package fetched with apt). */
#include "vm_int.h"
#include "../catalog/catalog.h"
#include "../core/proc.h"
#include "../image/image.h"
#include "../kernel/store.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

/* The distro kernel package's real name: the cloud metapackage depends on
 * it (linux-image-cloud-amd64 -> linux-image-6.1.0-N-cloud-amd64). */
static void on_depends(const char *line, void *ud)
{
	char **pkg = ud;
	const char *d = strstr(line, "Depends: linux-image-");
	if (d && !*pkg)
		*pkg = bng_strdup(d + strlen("Depends: "));
}

/* The default kernel on a fresh host: from the kernel catalog when it has
 * it, else the distro's cloud kernel package fetched with apt. */
static int provision_kernel(bng_engine *e, const char *name, bng_op *op)
{
	json_t *catalog = NULL, *result = NULL;
	int rc = bng_catalog_load(e, "kernels", &catalog);
	bool listed = !rc && bng_catalog_find(catalog, "kernels", name);
	json_decref(catalog);
	bng_op_event(op, json_pack("{s:s,s:s,s:s}", "stage", "provision", "kernel", name, "from",
				   listed ? "catalog" : "distro package"));
	if (listed) {
		json_t *p = json_pack("{s:s}", "name", name);
		rc = bng_m_kernel_pull(e, p, &result, op);
		json_decref(p);
		json_decref(result);
		return rc;
	}
	char *debs = bng_asprintf("%s/debs", e->paths.cache_dir);
	char *pkg = NULL;
	rc = bng_mkdir_p(debs, 0700);
	const char *depends[] = {"apt-cache", "depends", "linux-image-cloud-amd64", NULL};
	if (!rc)
		rc = bng_run(depends, NULL, NULL, on_depends, &pkg, op);
	if (!rc && !pkg)
		rc = bng_err(BANGER_ENOTFOUND, "apt cannot resolve linux-image-cloud-amd64 to provision kernel '%s'",
			     name);
	char *script = NULL;
	if (!rc) {
		pkg[strcspn(pkg, " \t<>")] = '\0';
		script = bng_asprintf("cd '%s' && apt-get download '%s'", debs, pkg);
		const char *get[] = {"sh", "-c", script, NULL};
		rc = bng_run(get, NULL, NULL, NULL, NULL, op);
	}
	char *deb = NULL;
	if (!rc) {
		char *pattern = bng_asprintf("%s_", pkg);
		DIR *d = opendir(debs);
		struct dirent *de;
		while (d && (de = readdir(d)))
			if (!strncmp(de->d_name, pattern, strlen(pattern)) && strstr(de->d_name, ".deb"))
				deb = bng_asprintf("%s/%s", debs, de->d_name);
		if (d)
			closedir(d);
		free(pattern);
		if (!deb)
			rc = bng_err(BANGER_ENOTFOUND, "apt-get download %s left no .deb in %s", pkg, debs);
	}
	if (!rc) {
		json_t *p = json_pack("{s:s,s:s}", "name", name, "deb", deb);
		rc = bng_m_kernel_import(e, p, &result, op);
		json_decref(p);
		json_decref(result);
	}
	free(deb);
	free(script);
	free(pkg);
	free(debs);
	return rc;
}

/* The default image on a fresh host: the catalog's, else built from the
 * Debian mirror. */
static int provision_image(bng_engine *e, const char *name, bng_op *op)
{
	json_t *catalog = NULL, *result = NULL;
	int rc = bng_catalog_load(e, "images", &catalog);
	bool listed = !rc && bng_catalog_find(catalog, "images", name);
	json_decref(catalog);
	bng_op_event(op, json_pack("{s:s,s:s,s:s}", "stage", "provision", "image", name, "from",
				   listed ? "catalog" : "debian mirror"));
	json_t *p = listed ? json_pack("{s:s}", "ref", name) : json_pack("{s:s}", "name", name);
	rc = listed ? bng_m_image_pull(e, p, &result, op) : bng_m_image_build(e, p, &result, op);
	json_decref(p);
	json_decref(result);
	return rc;
}

int bng_vm_resolve_image_kernel(bng_engine *e, json_t *params, json_t **image, json_t **kernel, bng_op *op)
{
	const char *iname = json_string_value(json_object_get(params, "image"));
	const char *default_image = bng_config_str(&e->config, "default_image_name");
	if (!iname)
		iname = default_image;
	int rc = bng_image_get(e, iname, image);
	if (rc == BANGER_ENOTFOUND && !strcmp(iname, default_image)) {
		/* a fresh host: get the default once (concurrent callers wait for it) */
		rc = provision_image(e, iname, op);
		if (!rc || rc == BANGER_EEXIST)
			rc = bng_image_get(e, iname, image);
	}
	if (rc)
		return rc;
	const char *kname = json_string_value(json_object_get(params, "kernel"));
	if (!kname)
		kname = json_string_value(json_object_get(*image, "kernel"));
	const char *default_kernel = bng_config_str(&e->config, "default_kernel_name");
	if (!kname)
		kname = default_kernel;
	rc = bng_kernel_get(e, kname, kernel);
	if (rc == BANGER_ENOTFOUND && !strcmp(kname, default_kernel)) {
		rc = provision_kernel(e, kname, op);
		if (!rc || rc == BANGER_EEXIST)
			rc = bng_kernel_get(e, kname, kernel);
	}
	if (rc) {
		json_decref(*image);
		*image = NULL;
		return rc;
	}
	return 0;
}

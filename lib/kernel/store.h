/* The kernel store (store.c): kernel.* methods and lookups by name or id. */
#ifndef BANGER_KERNEL_STORE_H
#define BANGER_KERNEL_STORE_H

#include "../method/method.h"

/* The kernel's row as JSON, with manifest and file paths/sizes. */
int bng_kernel_get(bng_engine *e, const char *ref, json_t **kernel);

/* The kernel module (methods.c): the kernel.* methods and hooks, for lib/modules.c. */
extern const bng_module bng_kernel_module;

int bng_m_kernel_import(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_kernel_pull(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_kernel_list(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_kernel_catalog(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_kernel_show(bng_engine *e, json_t *params, json_t **result, bng_op *op);
int bng_m_kernel_rm(bng_engine *e, json_t *params, json_t **result, bng_op *op);

#endif

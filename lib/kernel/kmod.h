/* A modules tree (lib/modules/<ver>) as an index: module names, files and
 * dependencies, from modules.dep or from each module's .modinfo. */
#ifndef BANGER_KERNEL_KMOD_H
#define BANGER_KERNEL_KMOD_H

#include "kernel.h"

typedef struct {
	char *name; /* "virtio_ring": '-' folded to '_' as the kernel does */
	char *path; /* relative to the root, as on disk: "kernel/drivers/virtio/virtio_ring.ko" */
	char **deps; /* names of modules that must load first (depends=) */
	size_t ndeps;
	char **pre; /* names from "softdep=pre:", loaded first when present */
	size_t npre;
	int mark; /* scratch for graph walks */
} bng_kmod;

typedef struct {
	bng_kmod *mods; /* sorted by name */
	size_t n;
	char **builtin; /* names built into the kernel, sorted */
	size_t nbuiltin;
} bng_kmod_index;

/* Loads modules.dep (+ modules.softdep) when root has one, else scans the
 * tree for *.ko[.xz|.zst|.gz] and reads their .modinfo. A missing root or
 * an empty tree gives an empty index. */
int bng_kmod_index_load(bng_kmod_index *idx, const char *root);
/* The same, always from .modinfo (what depmod does). */
int bng_kmod_index_scan(bng_kmod_index *idx, const char *root);
void bng_kmod_index_free(bng_kmod_index *idx);

bng_kmod *bng_kmod_find(const bng_kmod_index *idx, const char *name);
bool bng_kmod_builtin(const bng_kmod_index *idx, const char *name);

/* Appends to *order (an array of index entries, *n of them) the wanted
 * modules that exist and are not built in, dependencies first, each once.
 * A wanted module absent from the tree is skipped; a dependency that is
 * missing, or a cycle, is an error. */
int bng_kmod_resolve(bng_kmod_index *idx, const char *const *wanted, size_t nwanted, bng_kmod ***order, size_t *n);

/* Reads a module file under root, unpacking .xz/.zst/.gz; *out is malloc'd. */
int bng_kmod_read(const char *root, const char *relpath, void **out, size_t *len);

/* Parses the NUL-separated key=value strings of an ELF64 module's
 * .modinfo section: fills m->deps, m->pre and, when modinfo has "name=",
 * replaces m->name. what names the module in errors. */
int bng_kmod_parse_modinfo(const void *elf, size_t len, const char *what, bng_kmod *m);

/* "kernel/fs/ext4/ext4.ko.xz" -> "ext4" (malloc'd); "crc32c-intel" -> "crc32c_intel". */
char *bng_kmod_name_from_path(const char *path);

#endif

#include "lazy_archive.h"
#include "lazy_crypto.h"
#include "lazy_curl.h"
#include "lazy_ext2fs.h"
#include "lazy_sqlite.h"
#include "lazy_ssh2.h"
#include "internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* Each library: its table, its names in the same order, and the soname
 * the build found (BNG_SONAME_*, from scripts/soname.py). */
#define BNG_LAZY_DEFINE(low, UP, debian_package)                                         \
	static struct bng_##low##_syms low##_syms;                                       \
	static const char *const low##_names[] = {BNG_##UP##_SYMBOLS(BNG_LAZY_NAME)};    \
	_Static_assert(sizeof(low##_syms) == sizeof(low##_names) / sizeof(char *) * sizeof(void *), \
		       "one pointer per name");                                          \
	bng_lazy_lib bng_lazy_##low = {                                                  \
		.soname = BNG_SONAME_##UP,                                               \
		.package = debian_package,                                               \
		.names = low##_names,                                                    \
		.table = (void **)&low##_syms,                                           \
		.count = BNG_ARRAY_LEN(low##_names),                                     \
	};

BNG_LAZY_DEFINE(curl, CURL, "libcurl4")
BNG_LAZY_DEFINE(archive, ARCHIVE, "libarchive13")
BNG_LAZY_DEFINE(ssh2, SSH2, "libssh2-1")
BNG_LAZY_DEFINE(sqlite, SQLITE, "libsqlite3-0")
BNG_LAZY_DEFINE(ext2fs, EXT2FS, "libext2fs2")
BNG_LAZY_DEFINE(crypto, CRYPTO, "libssl3")

static pthread_mutex_t loading = PTHREAD_MUTEX_INITIALIZER;

/* Never closed: the symbols stay in use until the process exits. */
static void load(bng_lazy_lib *lib)
{
	void *handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		snprintf(lib->why, sizeof(lib->why), "cannot load %s (%s): %s", lib->soname, lib->package, dlerror());
		atomic_store(&lib->state, -1);
		return;
	}
	for (size_t i = 0; i < lib->count; i++) {
		dlerror();
		/* dlsym searches the library and what it depends on
		 * (libext2fs brings libcom_err's error_message) */
		lib->table[i] = dlsym(handle, lib->names[i]);
		if (!lib->table[i]) {
			snprintf(lib->why, sizeof(lib->why), "%s (%s) has no %s: a different version than banger was built for",
				 lib->soname, lib->package, lib->names[i]);
			atomic_store(&lib->state, -1);
			return;
		}
	}
	atomic_store(&lib->state, 1);
}

int bng_lazy_load(bng_lazy_lib *lib)
{
	if (atomic_load(&lib->state) == 0) {
		pthread_mutex_lock(&loading);
		if (atomic_load(&lib->state) == 0)
			load(lib);
		pthread_mutex_unlock(&loading);
	}
	if (atomic_load(&lib->state) < 0)
		return bng_err(BANGER_EUNSUPPORTED, "%s", lib->why);
	return 0;
}

void *bng_lazy_table(bng_lazy_lib *lib)
{
	if (atomic_load_explicit(&lib->state, memory_order_acquire) != 1 && bng_lazy_load(lib) != 0) {
		fprintf(stderr, "libbanger: %s\n", lib->why);
		abort();
	}
	return lib->table;
}

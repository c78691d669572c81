/* Libraries only the engine needs (libcurl, libarchive, libssh2, SQLite,
 * libext2fs, libcrypto) are opened on first use instead of at program start, so a
 * client that only talks to bangerd (`banger vm ls`, a Python script on the
 * socket) never maps them, and an idle bangerd maps only SQLite.
 *
 * Each lazy_<lib>.h includes the library's real header, lists the symbols
 * banger uses (BNG_<LIB>_SYMBOLS), and redefines each name to read through
 * a table that lazy.c fills with dlsym: call sites keep the library's own
 * names and types. A symbol that is not in the list is a link error (the
 * library links none of these), so nothing slips past the table. */
#ifndef BANGER_CORE_LAZY_H
#define BANGER_CORE_LAZY_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct bng_lazy_lib {
	const char *soname;         /* "libcurl.so.4": found by the build (scripts/soname.py) */
	const char *package;        /* the Debian package that ships it, for the message */
	const char *const *names;   /* count symbol names, in table order */
	void **table;               /* count pointers: the symbols' addresses */
	size_t count;
	atomic_int state;           /* 0 not tried, 1 loaded, -1 failed */
	char why[256];              /* the failure, when state is -1 */
} bng_lazy_lib;

/* Opens lib once (thread-safe). 0, or BANGER_EUNSUPPORTED saying which
 * library could not be loaded and why. */
int bng_lazy_load(bng_lazy_lib *lib);
/* lib's table; loads it first. A library that cannot be loaded here is a
 * broken installation: the process aborts with the reason, as the dynamic
 * loader would have at start. Entry points call bng_lazy_load first to turn
 * that into an error instead. */
void *bng_lazy_table(bng_lazy_lib *lib);

/* For the lists: one table slot, one name. */
#define BNG_LAZY_SLOT(sym) __typeof__(sym) *sym;
#define BNG_LAZY_NAME(sym) #sym,

extern bng_lazy_lib bng_lazy_curl, bng_lazy_archive, bng_lazy_ssh2, bng_lazy_sqlite, bng_lazy_ext2fs, bng_lazy_crypto;

#endif

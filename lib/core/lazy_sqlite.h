/* SQLite, opened on first use (core/lazy.h). Include this instead of
 * the library's header; a symbol banger starts to use goes into the list. */
#ifndef BANGER_CORE_LAZY_SQLITE_H
#define BANGER_CORE_LAZY_SQLITE_H

#include <sqlite3.h>
#include "lazy.h"

#define BNG_SQLITE_SYMBOLS(X) \
	X(sqlite3_bind_text) \
	X(sqlite3_busy_timeout) \
	X(sqlite3_close) \
	X(sqlite3_column_count) \
	X(sqlite3_column_int) \
	X(sqlite3_column_int64) \
	X(sqlite3_column_name) \
	X(sqlite3_column_text) \
	X(sqlite3_column_type) \
	X(sqlite3_errmsg) \
	X(sqlite3_errstr) \
	X(sqlite3_exec) \
	X(sqlite3_extended_errcode) \
	X(sqlite3_finalize) \
	X(sqlite3_free) \
	X(sqlite3_mprintf) \
	X(sqlite3_open_v2) \
	X(sqlite3_prepare_v2) \
	X(sqlite3_step)

struct bng_sqlite_syms {
	BNG_SQLITE_SYMBOLS(BNG_LAZY_SLOT)
};

#define BNG_SQLITE(sym) (*((struct bng_sqlite_syms *)bng_lazy_table(&bng_lazy_sqlite))->sym)
#define sqlite3_bind_text BNG_SQLITE(sqlite3_bind_text)
#define sqlite3_busy_timeout BNG_SQLITE(sqlite3_busy_timeout)
#define sqlite3_close BNG_SQLITE(sqlite3_close)
#define sqlite3_column_count BNG_SQLITE(sqlite3_column_count)
#define sqlite3_column_int BNG_SQLITE(sqlite3_column_int)
#define sqlite3_column_int64 BNG_SQLITE(sqlite3_column_int64)
#define sqlite3_column_name BNG_SQLITE(sqlite3_column_name)
#define sqlite3_column_text BNG_SQLITE(sqlite3_column_text)
#define sqlite3_column_type BNG_SQLITE(sqlite3_column_type)
#define sqlite3_errmsg BNG_SQLITE(sqlite3_errmsg)
#define sqlite3_errstr BNG_SQLITE(sqlite3_errstr)
#define sqlite3_exec BNG_SQLITE(sqlite3_exec)
#define sqlite3_extended_errcode BNG_SQLITE(sqlite3_extended_errcode)
#define sqlite3_finalize BNG_SQLITE(sqlite3_finalize)
#define sqlite3_free BNG_SQLITE(sqlite3_free)
#define sqlite3_mprintf BNG_SQLITE(sqlite3_mprintf)
#define sqlite3_open_v2 BNG_SQLITE(sqlite3_open_v2)
#define sqlite3_prepare_v2 BNG_SQLITE(sqlite3_prepare_v2)
#define sqlite3_step BNG_SQLITE(sqlite3_step)

#endif

/* The state store: one SQLite database (WAL) with numbered migrations. */
#ifndef BANGER_STORE_H
#define BANGER_STORE_H

#include <jansson.h>
#include "../core/lazy_sqlite.h"

typedef struct {
	sqlite3 *db;
	int schema_version;
} bng_store;

/* Opens (creating) path and applies pending migrations, each in its own
 * transaction. Fails if the database was written by a newer banger. */
int bng_store_open(bng_store *st, const char *path);
void bng_store_close(bng_store *st);

/* Validates path without changing it: the applied migrations must be ones
 * this build knows, and pending ones must apply cleanly (tried inside a
 * transaction that is rolled back). Fills a report
 * {"path","exists","applied":[..],"pending":[..],"latest"}. */
int bng_store_check(const char *path, json_t **report);

/* The newest schema version this build knows. */
int bng_store_latest_version(void);

/* Runs sql with n text parameters (?1..?n; NULL binds SQL NULL) and returns
 * the rows as a JSON array of objects keyed by column name. */
int bng_store_query(bng_store *st, json_t **rows, const char *sql, int n, const char *const *params);
/* Like bng_store_query for statements without rows; a UNIQUE violation is
 * BANGER_EEXIST. */
int bng_store_run(bng_store *st, const char *sql, int n, const char *const *params);

/* The row of table whose name or id is ref; BANGER_ENOTFOUND "<what> '<ref>'
 * not found" when there is none. */
int bng_store_get(bng_store *st, const char *table, const char *columns, const char *ref, const char *what,
		  json_t **row);

/* Deletes row (with "id" and "name") from table unless a VM uses it
 * (vms.<vm_column> = its id): BANGER_EBUSY naming those VMs. The store's
 * triggers enforce the same for every other path. */
int bng_store_delete_unused(bng_store *st, const char *table, const char *vm_column, const char *what, json_t *row);

/* Runs one statement with no result rows. */
int bng_store_exec(bng_store *st, const char *sql);

#endif

/* The state store (lib/store/store.c): migrations on open, idempotent
 * reopen, the read-only check, and refusing a database from the future. */
#include "check.h"

#include "store/store.h"

#include <jansson.h>
#include <sqlite3.h>
#include <sys/stat.h>

/* SELECT count(*) ... on path, opened with sqlite3 directly; -1 on error. */
static int count_rows(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int n = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	if (n < 0)
		fprintf(stderr, "count_rows(%s, %s): %s\n", path, sql, db ? sqlite3_errmsg(db) : "no db");
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static void test_open(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/state.db", dir);
	int latest = bng_store_latest_version();
	CHECK(latest >= 1);

	bng_store st;
	CHECK_OK(bng_store_open(&st, path));
	CHECK(st.db != NULL);
	CHECK_EQ_INT(st.schema_version, latest);
	CHECK_OK(bng_store_exec(&st, "INSERT INTO meta (key, value) VALUES ('test', 'yes')"));
	CHECK_EQ_INT(bng_store_exec(&st, "SELECT * FROM no_such_table"), BANGER_ESTATE);
	CHECK_STR_CONTAINS(banger_error_last(), "no_such_table");
	bng_store_close(&st);
	CHECK(st.db == NULL);
	bng_store_close(&st); /* closing twice is harmless */

	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM schema_migrations"), latest);
	CHECK_EQ_INT(count_rows(path, "SELECT max(version) FROM schema_migrations"), latest);
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM meta WHERE key = 'created_at'"), 1);

	/* reopening applies nothing twice and keeps the data */
	CHECK_OK(bng_store_open(&st, path));
	CHECK_EQ_INT(st.schema_version, latest);
	bng_store_close(&st);
	CHECK_OK(bng_store_open(&st, path));
	bng_store_close(&st);
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM schema_migrations"), latest);
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM meta WHERE key = 'created_at'"), 1);
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM meta WHERE key = 'test'"), 1);

	/* WAL journal */
	sqlite3 *db;
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *q = NULL;
	CHECK_EQ_INT(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_step(q), SQLITE_ROW);
	CHECK_EQ_STR((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	sqlite3_close(db);

	/* a database in a directory that does not exist cannot be opened */
	char missing[4200];
	snprintf(missing, sizeof(missing), "%s/no/such/dir/state.db", dir);
	CHECK_EQ_INT(bng_store_open(&st, missing), BANGER_ESTATE);
	CHECK_STR_CONTAINS(banger_error_last(), "cannot open state database");
	CHECK(st.db == NULL);
}

static void test_check(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/check.db", dir);
	int latest = bng_store_latest_version();

	/* a fresh path: every migration is pending, and nothing is created */
	json_t *report = NULL;
	CHECK_OK(bng_store_check(path, &report));
	CHECK(json_is_object(report));
	CHECK_EQ_STR(json_string_value(json_object_get(report, "path")), path);
	CHECK(json_is_false(json_object_get(report, "exists")));
	CHECK_EQ_INT(json_array_size(json_object_get(report, "applied")), 0);
	json_t *pending = json_object_get(report, "pending");
	CHECK_EQ_INT(json_array_size(pending), latest);
	CHECK_EQ_INT(json_integer_value(json_object_get(json_array_get(pending, 0), "version")), 1);
	CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(pending, 0), "name")), "meta");
	CHECK_EQ_INT(json_integer_value(json_object_get(report, "latest")), latest);
	json_decref(report);
	CHECK(access(path, F_OK) != 0);

	/* after open: everything applied, nothing pending */
	bng_store st;
	CHECK_OK(bng_store_open(&st, path));
	bng_store_close(&st);
	report = NULL;
	CHECK_OK(bng_store_check(path, &report));
	CHECK(json_is_true(json_object_get(report, "exists")));
	json_t *applied = json_object_get(report, "applied");
	CHECK_EQ_INT(json_array_size(applied), latest);
	CHECK_EQ_INT(json_integer_value(json_array_get(applied, 0)), 1);
	CHECK_EQ_INT(json_array_size(json_object_get(report, "pending")), 0);
	json_decref(report);

	/* an existing database with no migrations yet (e.g. an empty file) */
	char empty[4200];
	snprintf(empty, sizeof(empty), "%s/empty.db", dir);
	check_write_file(empty, "", 0);
	report = NULL;
	CHECK_OK(bng_store_check(empty, &report));
	CHECK(json_is_true(json_object_get(report, "exists")));
	CHECK_EQ_INT(json_array_size(json_object_get(report, "applied")), 0);
	CHECK_EQ_INT(json_array_size(json_object_get(report, "pending")), latest);
	json_decref(report);
	/* check rolled its trial back */
	CHECK_EQ_INT(count_rows(empty, "SELECT count(*) FROM sqlite_master"), 0);
}

static void test_newer(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/newer.db", dir);
	bng_store st;
	CHECK_OK(bng_store_open(&st, path));
	bng_store_close(&st);

	sqlite3 *db = NULL;
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	char *err = NULL;
	CHECK_EQ_INT(sqlite3_exec(db,
				  "INSERT INTO schema_migrations (version, name, applied_at) "
				  "VALUES (999, 'from-the-future', '2099-01-01T00:00:00Z')",
				  NULL, NULL, &err),
		     SQLITE_OK);
	sqlite3_free(err);
	sqlite3_close(db);

	memset(&st, 0x55, sizeof(st));
	CHECK_EQ_INT(bng_store_open(&st, path), BANGER_ESTATE);
	CHECK(st.db == NULL);
	CHECK_STR_CONTAINS(banger_error_last(), "newer");
	CHECK_STR_CONTAINS(banger_error_last(), "999");
	CHECK_STR_CONTAINS(banger_error_last(), path);

	json_t *report = NULL;
	CHECK_EQ_INT(bng_store_check(path, &report), BANGER_ESTATE);
	CHECK(report == NULL);
	CHECK_STR_CONTAINS(banger_error_last(), "newer");

	/* refusing it changed nothing */
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM schema_migrations"), bng_store_latest_version() + 1);

	/* the public wrapper reports the same, for a state directory */
	char future[4200], future_db[4300];
	snprintf(future, sizeof(future), "%s/future-state", dir);
	snprintf(future_db, sizeof(future_db), "%s/state.db", future);
	mkdir(future, 0700);
	CHECK_EQ_INT(rename(path, future_db), 0);
	char *json = (char *)1;
	CHECK_EQ_INT(banger_check_migrations(future, &json), BANGER_ESTATE);
	CHECK_STR_CONTAINS(banger_error_last(), "newer");
	CHECK_STR_CONTAINS(banger_error_last(), future_db);
	json = NULL;
	snprintf(future_db, sizeof(future_db), "%s/fresh-state", dir);
	CHECK_OK(banger_check_migrations(future_db, &json));
	json_error_t jerr;
	json_t *rep = json_loads(json ? json : "{}", 0, &jerr);
	CHECK(json_is_false(json_object_get(rep, "exists")));
	CHECK_EQ_INT(json_array_size(json_object_get(rep, "pending")), bng_store_latest_version());
	json_decref(rep);
	banger_free(json);

	/* a history with a gap (unknown version below latest) is refused too */
	char gap[4200];
	snprintf(gap, sizeof(gap), "%s/gap.db", dir);
	CHECK_EQ_INT(sqlite3_open(gap, &db), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(db,
				  "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
				  " applied_at TEXT NOT NULL);"
				  "INSERT INTO schema_migrations VALUES (0, 'zero', 'x')",
				  NULL, NULL, NULL),
		     SQLITE_OK);
	sqlite3_close(db);
	CHECK_EQ_INT(bng_store_open(&st, gap), BANGER_ESTATE);
	CHECK_STR_CONTAINS(banger_error_last(), "unexpected migration history");
}

int main(void)
{
	char *dir = check_tmpdir("store");
	test_open(dir);
	test_check(dir);
	test_newer(dir);
	check_rm_rf(dir);
	free(dir);
	return check_summary();
}

/* SQLite store and migrations. Migrations are append-only: never edit one
 * that has shipped, add a new one instead. */
#include "store.h"
#include "../core/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
	int version;
	const char *name;
	const char *sql;
} migration;

static const migration migrations[] = {
	{1, "meta",
	 "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	 "INSERT INTO meta (key, value) VALUES ('created_at', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));"},
	{2, "images_kernels",
	 "CREATE TABLE kernels ("
	 " id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, version TEXT NOT NULL, source TEXT NOT NULL,"
	 " dir TEXT NOT NULL, manifest TEXT NOT NULL, created_at TEXT NOT NULL);"
	 "CREATE TABLE images ("
	 " id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, source TEXT NOT NULL, digest TEXT,"
	 " rootfs TEXT NOT NULL, managed INTEGER NOT NULL, kernel TEXT, config TEXT,"
	 " created_at TEXT NOT NULL);"},
	{3, "vms",
	 "CREATE TABLE vms ("
	 " id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, image_id TEXT NOT NULL, kernel_id TEXT NOT NULL,"
	 " vcpu INTEGER NOT NULL, memory_mib INTEGER NOT NULL, disk_size INTEGER NOT NULL,"
	 " state TEXT NOT NULL, driver TEXT NOT NULL, vmm TEXT, ip TEXT NOT NULL UNIQUE, mac TEXT NOT NULL,"
	 " tap TEXT NOT NULL, host_key TEXT, boot_id TEXT, error TEXT,"
	 " created_at TEXT NOT NULL, started_at TEXT);"},
	{4, "vms_nat", "ALTER TABLE vms ADD COLUMN nat INTEGER NOT NULL DEFAULT 0;"},
	/* A VM's disk is an overlay on its image and boots its kernel: neither
	 * may go while a VM row names it, and no VM may name one that is gone.
	 * The message after "in use:" is what bng_store_run reports. */
	{5, "vm_refs",
	 "CREATE TRIGGER images_in_use BEFORE DELETE ON images"
	 " WHEN EXISTS (SELECT 1 FROM vms WHERE image_id = OLD.id)"
	 " BEGIN SELECT RAISE(ABORT, 'in use: the image is used by a VM'); END;"
	 "CREATE TRIGGER kernels_in_use BEFORE DELETE ON kernels"
	 " WHEN EXISTS (SELECT 1 FROM vms WHERE kernel_id = OLD.id)"
	 " BEGIN SELECT RAISE(ABORT, 'in use: the kernel is used by a VM'); END;"
	 "CREATE TRIGGER vms_need_image BEFORE INSERT ON vms"
	 " WHEN NOT EXISTS (SELECT 1 FROM images WHERE id = NEW.image_id)"
	 "  OR NOT EXISTS (SELECT 1 FROM kernels WHERE id = NEW.kernel_id)"
	 " BEGIN SELECT RAISE(ABORT, 'in use: the VM''s image or kernel was removed'); END;"},
	/* A VM's workspace (vm.workspace.prepare): one per VM, gone with it. */
	{6, "workspaces",
	 "CREATE TABLE workspaces ("
	 " vm_id TEXT PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE, host_path TEXT NOT NULL,"
	 " guest_path TEXT NOT NULL, mode TEXT NOT NULL, head_commit TEXT NOT NULL,"
	 " files_digest TEXT NOT NULL, created_at TEXT NOT NULL);"},
	/* Why a VM last stopped when banger stopped it on its own
	 * (auto_stop_stale_after); cleared at the next boot. */
	{7, "vms_stop_reason", "ALTER TABLE vms ADD COLUMN stop_reason TEXT;"},
	/* The last view of each VM's sessions (vm.session.*: the guest owns
	 * them), what list/show report while the VM is not running. */
	{8, "sessions",
	 "CREATE TABLE sessions ("
	 " vm_id TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE, name TEXT NOT NULL, doc TEXT NOT NULL,"
	 " PRIMARY KEY (vm_id, name));"},
	/* What the host tree looked like when a workspace was shipped, and
	 * whether untracked files went too: vm.workspace.status compares. */
	{9, "workspace_tree_state",
	 "ALTER TABLE workspaces ADD COLUMN tree_state TEXT;"
	 "ALTER TABLE workspaces ADD COLUMN include_untracked INTEGER NOT NULL DEFAULT 0;"
	 "ALTER TABLE workspaces ADD COLUMN guest_tree TEXT;"},
	/* Who is a VM's PID 1 (vm create --init, resolved at create: "systemd"
	 * or "banger"), and whether its guest runs sshd: a VM whose image has
	 * none boots under banger's init without one. Older VMs had both. */
	{10, "vms_init",
	 "ALTER TABLE vms ADD COLUMN init TEXT NOT NULL DEFAULT 'systemd';"
	 "ALTER TABLE vms ADD COLUMN sshd INTEGER NOT NULL DEFAULT 1;"},
};

int bng_store_latest_version(void) { return migrations[BNG_ARRAY_LEN(migrations) - 1].version; }

static int db_err(sqlite3 *db, const char *what)
{
	return bng_err(BANGER_ESTATE, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
}

static int exec_sql(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int rc = bng_err(BANGER_ESTATE, "state database: %s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return rc;
	}
	return 0;
}

int bng_store_exec(bng_store *st, const char *sql) { return exec_sql(st->db, sql); }

static int prepare(bng_store *st, const char *sql, int n, const char *const *params, sqlite3_stmt **out)
{
	if (sqlite3_prepare_v2(st->db, sql, -1, out, NULL) != SQLITE_OK)
		return db_err(st->db, "state database");
	for (int i = 0; i < n; i++)
		sqlite3_bind_text(*out, i + 1, params[i], -1, SQLITE_TRANSIENT);
	return 0;
}

int bng_store_query(bng_store *st, json_t **rows, const char *sql, int n, const char *const *params)
{
	sqlite3_stmt *stmt;
	int rc = prepare(st, sql, n, params, &stmt);
	if (rc)
		return rc;
	json_t *out = json_array();
	int r;
	while ((r = sqlite3_step(stmt)) == SQLITE_ROW) {
		json_t *row = json_object();
		for (int c = 0; c < sqlite3_column_count(stmt); c++) {
			json_t *v;
			switch (sqlite3_column_type(stmt, c)) {
			case SQLITE_INTEGER: v = json_integer(sqlite3_column_int64(stmt, c)); break;
			case SQLITE_NULL: v = json_null(); break;
			default: v = json_string((const char *)sqlite3_column_text(stmt, c)); break;
			}
			json_object_set_new(row, sqlite3_column_name(stmt, c), v ? v : json_null());
		}
		json_array_append_new(out, row);
	}
	sqlite3_finalize(stmt);
	if (r != SQLITE_DONE) {
		json_decref(out);
		return db_err(st->db, "state database");
	}
	*rows = out;
	return 0;
}

int bng_store_run(bng_store *st, const char *sql, int n, const char *const *params)
{
	sqlite3_stmt *stmt;
	int rc = prepare(st, sql, n, params, &stmt);
	if (rc)
		return rc;
	int r = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (sqlite3_extended_errcode(st->db) == SQLITE_CONSTRAINT_TRIGGER)
		return bng_err(BANGER_EBUSY, "%s", sqlite3_errmsg(st->db));
	if (r == SQLITE_CONSTRAINT || sqlite3_extended_errcode(st->db) == SQLITE_CONSTRAINT_UNIQUE)
		return bng_err(BANGER_EEXIST, "already exists: %s", sqlite3_errmsg(st->db));
	return r == SQLITE_DONE ? 0 : db_err(st->db, "state database");
}

static const char migrations_table[] =
	"CREATE TABLE IF NOT EXISTS schema_migrations ("
	" version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)";

/* Reads applied versions into a JSON array (ascending). */
static int applied_versions(sqlite3 *db, json_t **out)
{
	sqlite3_stmt *st;
	*out = json_array();
	int exists = 0;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE name='schema_migrations'", -1, &st,
			       NULL) != SQLITE_OK)
		return db_err(db, "cannot read state database");
	if (sqlite3_step(st) == SQLITE_ROW)
		exists = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (!exists)
		return 0;
	if (sqlite3_prepare_v2(db, "SELECT version FROM schema_migrations ORDER BY version", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_err(db, "cannot read schema_migrations");
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(*out, json_integer(sqlite3_column_int(st, 0)));
	sqlite3_finalize(st);
	return 0;
}

/* Checks that applied versions are exactly the first N known migrations. */
static int verify_applied(const char *path, json_t *applied)
{
	size_t i;
	json_t *v;
	json_array_foreach(applied, i, v) {
		int ver = (int)json_integer_value(v);
		if (ver > bng_store_latest_version())
			return bng_err(BANGER_ESTATE,
				       "%s has schema version %d, newer than this banger knows (%d): upgrade banger "
				       "or use another state directory",
				       path, ver, bng_store_latest_version());
		if (i >= BNG_ARRAY_LEN(migrations) || migrations[i].version != ver)
			return bng_err(BANGER_ESTATE, "%s: unexpected migration history (version %d at position %zu)",
				       path, ver, i + 1);
	}
	return 0;
}

static int apply_one(sqlite3 *db, const migration *m)
{
	char *rec = sqlite3_mprintf("INSERT INTO schema_migrations (version, name, applied_at) VALUES "
				    "(%d, %Q, strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ', 'now'))",
				    m->version, m->name);
	int rc = exec_sql(db, m->sql);
	if (!rc)
		rc = exec_sql(db, rec);
	sqlite3_free(rec);
	if (rc)
		return bng_err(BANGER_ESTATE, "migration %d (%s) failed: %s", m->version, m->name,
			       banger_error_last());
	return 0;
}

static int open_db(const char *path, int flags, sqlite3 **out)
{
	sqlite3 *db = NULL;
	int r = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_FULLMUTEX, NULL);
	if (r != SQLITE_OK) {
		int rc = bng_err(BANGER_ESTATE, "cannot open state database %s: %s", path,
				 db ? sqlite3_errmsg(db) : sqlite3_errstr(r));
		sqlite3_close(db);
		return rc;
	}
	sqlite3_busy_timeout(db, 5000);
	*out = db;
	return 0;
}

int bng_store_open(bng_store *st, const char *path)
{
	memset(st, 0, sizeof(*st));
	sqlite3 *db;
	int rc = open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db);
	if (rc)
		return rc;
	json_t *applied = NULL;
	rc = exec_sql(db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL");
	if (!rc)
		rc = exec_sql(db, migrations_table);
	if (!rc)
		rc = applied_versions(db, &applied);
	if (!rc)
		rc = verify_applied(path, applied);
	/* each migration is its own transaction so a crash keeps a prefix */
	for (size_t i = applied ? json_array_size(applied) : 0; !rc && i < BNG_ARRAY_LEN(migrations); i++) {
		rc = exec_sql(db, "BEGIN IMMEDIATE");
		if (!rc)
			rc = apply_one(db, &migrations[i]);
		if (!rc)
			rc = exec_sql(db, "COMMIT");
		else
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	json_decref(applied);
	if (rc) {
		sqlite3_close(db);
		return rc;
	}
	st->db = db;
	st->schema_version = bng_store_latest_version();
	return 0;
}

void bng_store_close(bng_store *st)
{
	if (st->db)
		sqlite3_close(st->db);
	st->db = NULL;
}

int bng_store_check(const char *path, json_t **report)
{
	bool exists = access(path, F_OK) == 0;
	json_t *applied = NULL, *pending = json_array();
	sqlite3 *db = NULL;
	int rc = 0;
	if (exists) {
		rc = open_db(path, SQLITE_OPEN_READWRITE, &db);
	} else {
		/* a fresh install is fine: validate the migrations on a scratch db */
		rc = open_db(":memory:", SQLITE_OPEN_READWRITE, &db);
	}
	if (!rc)
		rc = applied_versions(db, &applied);
	if (!rc)
		rc = verify_applied(path, applied);
	if (!rc)
		rc = exec_sql(db, "BEGIN IMMEDIATE");
	if (!rc) {
		rc = exec_sql(db, migrations_table);
		for (size_t i = json_array_size(applied); !rc && i < BNG_ARRAY_LEN(migrations); i++) {
			rc = apply_one(db, &migrations[i]);
			json_array_append_new(pending, json_pack("{siss}", "version", migrations[i].version,
								 "name", migrations[i].name));
		}
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	sqlite3_close(db);
	if (!rc)
		*report = json_pack("{sssbsOsOsi}", "path", path, "exists", exists, "applied", applied, "pending",
				    pending, "latest", bng_store_latest_version());
	json_decref(applied);
	json_decref(pending);
	return rc;
}

int bng_store_get(bng_store *st, const char *table, const char *columns, const char *ref, const char *what,
		  json_t **row)
{
	json_t *rows;
	char *sql = bng_asprintf("SELECT %s FROM %s WHERE name = ?1 OR id = ?1", columns, table);
	int rc = bng_store_query(st, &rows, sql, 1, &ref);
	free(sql);
	if (rc)
		return rc;
	if (json_array_size(rows) == 0)
		rc = bng_err(BANGER_ENOTFOUND, "%s '%s' not found", what, ref ? ref : "");
	else
		*row = json_incref(json_array_get(rows, 0));
	json_decref(rows);
	return rc;
}

int bng_store_delete_unused(bng_store *st, const char *table, const char *vm_column, const char *what, json_t *row)
{
	const char *id = json_string_value(json_object_get(row, "id"));
	const char *name = json_string_value(json_object_get(row, "name"));
	json_t *users;
	char *sql = bng_asprintf("SELECT name FROM vms WHERE %s = ?1 ORDER BY name", vm_column);
	int rc = bng_store_query(st, &users, sql, 1, &id);
	free(sql);
	if (rc)
		return rc;
	size_t n = json_array_size(users);
	if (n) {
		char *names = bng_strdup("");
		size_t i;
		json_t *u;
		json_array_foreach(users, i, u) {
			char *more = bng_asprintf("%s%s%s", names, i ? ", " : "", json_string_value(json_object_get(u, "name")));
			free(names);
			names = more;
		}
		rc = bng_err(BANGER_EBUSY, "%s '%s' is in use by %zu VM%s (%s); delete %s first", what, name, n,
			     n == 1 ? "" : "s", names, n == 1 ? "it" : "them");
		free(names);
	}
	json_decref(users);
	if (rc)
		return rc;
	/* the trigger (migration 5) refuses a VM created since the check */
	sql = bng_asprintf("DELETE FROM %s WHERE id = ?1", table);
	rc = bng_store_run(st, sql, 1, &id);
	free(sql);
	if (rc == BANGER_EBUSY)
		rc = bng_err(BANGER_EBUSY, "%s '%s' is in use by a VM created just now", what, name);
	return rc;
}

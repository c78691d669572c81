/* A VM's row in the store and what derives from it: reading and saving the
 * row as a typed bng_vm_row, its JSON for the wire, its state and runtime
 * directories, and the stage events with timings that create and boot
 * report. Every other file of the vm module reaches the row through these
 * (vm_int.h); this file alone knows the columns by name. */
#include "vm_int.h"
#include "../store/store.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum column_type { T_STR, T_INT, T_U64, T_BOOL, T_JSON };

/* In the order of enum bng_vm_column: bit i is columns[i]. */
static const struct column {
	const char *name;
	enum column_type type;
	size_t off;
} columns[] = {
#define COL(name, type) {#name, type, offsetof(bng_vm_row, name)}
	COL(id, T_STR),		 COL(name, T_STR),	   COL(image_id, T_STR),   COL(kernel_id, T_STR),
	COL(vcpu, T_INT),	 COL(memory_mib, T_INT),   COL(disk_size, T_U64),  COL(state, T_STR),
	COL(driver, T_STR),	 COL(vmm, T_JSON),	   COL(ip, T_STR),	   COL(mac, T_STR),
	COL(tap, T_STR),	 COL(nat, T_BOOL),	   COL(host_key, T_STR),   COL(boot_id, T_STR),
	COL(error, T_STR),	 COL(stop_reason, T_STR),  COL(created_at, T_STR), COL(started_at, T_STR),
	COL(init, T_STR),	 COL(sshd, T_BOOL),
#undef COL
};
_Static_assert(BNG_ARRAY_LEN(columns) == BNG_VM_NCOLUMNS, "a column per enum bng_vm_column");

#define FIELD(vm, c, type) ((type *)((char *)(vm) + (c)->off))

void bng_vm_free(bng_vm_row *vm)
{
	if (!vm)
		return;
	for (size_t i = 0; i < BNG_ARRAY_LEN(columns); i++)
		if (columns[i].type == T_STR)
			free(*FIELD(vm, &columns[i], char *));
	json_decref(vm->vmm);
	free(vm);
}

/* The row as the store gave it (SQLite's types) into a new bng_vm_row. */
static bng_vm_row *from_store(json_t *row)
{
	bng_vm_row *vm = bng_xcalloc(1, sizeof(*vm));
	for (size_t i = 0; i < BNG_ARRAY_LEN(columns); i++) {
		const struct column *c = &columns[i];
		json_t *v = json_object_get(row, c->name);
		switch (c->type) {
		case T_STR: *FIELD(vm, c, char *) = json_is_string(v) ? bng_strdup(json_string_value(v)) : NULL; break;
		case T_INT: *FIELD(vm, c, int) = (int)json_integer_value(v); break;
		case T_U64: *FIELD(vm, c, uint64_t) = (uint64_t)json_integer_value(v); break;
		case T_BOOL: *FIELD(vm, c, bool) = json_integer_value(v) != 0; break;
		case T_JSON: *FIELD(vm, c, json_t *) = json_is_string(v) ? json_loads(json_string_value(v), 0, NULL) : NULL; break;
		}
	}
	/* columns NOT NULL in the schema read as "" rather than NULL */
	if (!vm->state)
		vm->state = bng_strdup("");
	if (!vm->tap)
		vm->tap = bng_strdup("");
	return vm;
}

/* "id, name, ..." in the table's order, made once: every vm.exec reads a row. */
static char column_list[512];

static void make_column_list(void)
{
	for (size_t i = 0; i < BNG_ARRAY_LEN(columns); i++)
		snprintf(column_list + strlen(column_list), sizeof(column_list) - strlen(column_list), "%s%s",
			 i ? ", " : "", columns[i].name);
}

static const char *all_columns(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, make_column_list);
	return column_list;
}

int bng_vm_get(bng_engine *e, const char *ref, bng_vm_row **vm)
{
	*vm = NULL;
	json_t *row = NULL;
	int rc = bng_store_get(&e->store, "vms", all_columns(), ref, "vm", &row);
	if (!rc)
		*vm = from_store(row);
	json_decref(row);
	return rc;
}

json_t *bng_vm_json(const bng_vm_row *vm)
{
	json_t *o = json_object();
	for (size_t i = 0; i < BNG_ARRAY_LEN(columns); i++) {
		const struct column *c = &columns[i];
		const void *p = (const char *)vm + c->off;
		json_t *v = NULL;
		switch (c->type) {
		case T_STR: v = *(char *const *)p ? json_string(*(char *const *)p) : json_null(); break;
		case T_INT: v = json_integer(*(const int *)p); break;
		case T_U64: v = json_integer((json_int_t) * (const uint64_t *)p); break;
		case T_BOOL: v = json_boolean(*(const bool *)p); break;
		case T_JSON: v = *(json_t *const *)p ? json_deep_copy(*(json_t *const *)p) : json_null(); break;
		}
		json_object_set_new(o, c->name, v);
	}
	return o;
}

void bng_vm_put(char **field, const char *value)
{
	char *copy = value ? bng_strdup(value) : NULL;
	free(*field);
	*field = copy;
}

/* Column c of vm as the SQL parameter text (NULL for NULL); *owned gets
 * what the caller frees. */
static const char *column_text(const bng_vm_row *vm, const struct column *c, char **owned)
{
	const void *p = (const char *)vm + c->off;
	*owned = NULL;
	switch (c->type) {
	case T_STR: return *(char *const *)p;
	case T_INT: return *owned = bng_asprintf("%d", *(const int *)p);
	case T_U64: return *owned = bng_asprintf("%llu", (unsigned long long)*(const uint64_t *)p);
	case T_BOOL: return *(const bool *)p ? "1" : "0";
	case T_JSON: return *(json_t *const *)p ? (*owned = json_dumps(*(json_t *const *)p, JSON_COMPACT)) : NULL;
	}
	return NULL;
}

/* Runs sql with the columns which names as ?1..?n, then id as ?n+1. */
static int run_columns(bng_engine *e, const bng_vm_row *vm, unsigned which, const char *sql, bool with_id)
{
	const char *params[BNG_VM_NCOLUMNS + 1];
	char *owned[BNG_VM_NCOLUMNS] = {0};
	int n = 0;
	for (size_t i = 0; i < BNG_ARRAY_LEN(columns); i++)
		if (which & (1u << i)) {
			params[n] = column_text(vm, &columns[i], &owned[n]);
			n++;
		}
	if (with_id)
		params[n] = vm->id;
	int rc = bng_store_run(&e->store, sql, n + with_id, params);
	for (int i = 0; i < n; i++)
		free(owned[i]);
	return rc;
}

int bng_vm_insert(bng_engine *e, const bng_vm_row *vm)
{
	char values[256] = "";
	for (size_t i = 0; i < BNG_ARRAY_LEN(columns); i++)
		snprintf(values + strlen(values), sizeof(values) - strlen(values), "%s?%zu", i ? ", " : "", i + 1);
	char *sql = bng_asprintf("INSERT INTO vms (%s) VALUES (%s)", all_columns(), values);
	int rc = run_columns(e, vm, (1u << BNG_VM_NCOLUMNS) - 1, sql, false);
	free(sql);
	return rc;
}

int bng_vm_save(bng_engine *e, const bng_vm_row *vm, unsigned which)
{
	char sql[1024] = "UPDATE vms SET ";
	int n = 0;
	for (size_t i = 0; i < BNG_ARRAY_LEN(columns); i++)
		if (which & (1u << i)) {
			snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), "%s%s = ?%d", n ? ", " : "", columns[i].name,
				 n + 1);
			n++;
		}
	snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), " WHERE id = ?%d", n + 1);
	return n ? run_columns(e, vm, which, sql, true) : 0;
}

int bng_vm_set(bng_engine *e, bng_vm_row *vm, enum bng_vm_column column, const char *value)
{
	unsigned bit = (unsigned)column;
	if (!bit || (bit & (bit - 1)) || columns[__builtin_ctz(bit)].type != T_STR)
		return bng_err(BANGER_EINVAL, "bng_vm_set: one string column, not 0x%x", bit);
	bng_vm_put(FIELD(vm, &columns[__builtin_ctz(bit)], char *), value);
	return bng_vm_save(e, vm, column);
}

char *bng_vm_dir(bng_engine *e, const bng_vm_row *vm) { return bng_asprintf("%s/vms/%s", e->paths.state_dir, vm->id); }

char *bng_vm_run_dir(bng_engine *e, const bng_vm_row *vm) { return bng_asprintf("%s/%s", e->paths.runtime_dir, vm->id); }

static double since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Reports a finished stage with how long it took. */
void bng_vm_stage(bng_op *op, const char *name, struct timespec *t0)
{
	bng_op_event(op, json_pack("{s:s,s:f}", "stage", name, "seconds", since(t0)));
	clock_gettime(CLOCK_MONOTONIC, t0);
}

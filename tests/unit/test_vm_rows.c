/* A VM's typed row (lib/vm/records.c) against a real SQLite store: insert,
 * read back by name and by id, save only the columns asked for, set one
 * column, and the row's JSON as the wire shows it. */
#include "check.h"

#include "engine/engine.h"
#include "modules.h"
#include "vm/vm_int.h"

#include <jansson.h>

static void add_image_and_kernel(bng_engine *e)
{
	CHECK_OK(bng_store_run(&e->store,
			       "INSERT INTO kernels (id, name, version, source, dir, manifest, created_at)"
			       " VALUES ('k1', 'kern', '6.1', 'test', '/nonexistent', '{}', '2026-12-08T00:00:00Z')",
			       0, NULL));
	CHECK_OK(bng_store_run(&e->store,
			       "INSERT INTO images (id, name, source, rootfs, managed, created_at)"
			       " VALUES ('i1', 'img', 'test', '/nonexistent', 0, '2026-12-08T00:00:00Z')",
			       0, NULL));
}

static bng_vm_row *new_row(void)
{
	bng_vm_row *vm = bng_xcalloc(1, sizeof(*vm));
	bng_vm_put(&vm->id, "0123456789ab");
	bng_vm_put(&vm->name, "dev");
	bng_vm_put(&vm->image_id, "i1");
	bng_vm_put(&vm->kernel_id, "k1");
	bng_vm_put(&vm->state, "creating");
	bng_vm_put(&vm->driver, "none");
	bng_vm_put(&vm->ip, "172.16.0.2");
	bng_vm_put(&vm->mac, "02:00:00:00:00:01");
	bng_vm_put(&vm->tap, "");
	bng_vm_put(&vm->created_at, "2026-12-08T00:00:00Z");
	bng_vm_put(&vm->init, "banger");
	vm->vcpu = 2;
	vm->memory_mib = 1024;
	vm->disk_size = 5ull << 30; /* above 32 bits */
	vm->sshd = true;
	return vm;
}

static void test_round_trip(bng_engine *e)
{
	bng_vm_row *vm = new_row(), *got = NULL;
	CHECK_OK(bng_vm_insert(e, vm));
	CHECK_OK(bng_vm_get(e, "dev", &got));
	if (got) {
		CHECK_EQ_STR(got->id, "0123456789ab");
		CHECK_EQ_STR(got->state, "creating");
		CHECK_EQ_STR(got->tap, "");
		CHECK_EQ_STR(got->init, "banger");
		CHECK(got->vcpu == 2 && got->memory_mib == 1024 && got->disk_size == 5ull << 30);
		CHECK(got->sshd && !got->nat);
		CHECK(got->vmm == NULL && got->host_key == NULL && got->stop_reason == NULL);
	}
	bng_vm_free(got);
	got = NULL;

	/* only the columns named are written: the name changed in memory stays */
	bng_vm_put(&vm->name, "renamed");
	bng_vm_put(&vm->state, "running");
	vm->vmm = json_pack("{s:i,s:{s:s,s:s}}", "pid", 4242, "agent", "kind", "unix", "path", "/run/x.sock");
	vm->nat = true;
	CHECK_OK(bng_vm_save(e, vm, BNG_VM_STATE | BNG_VM_VMM | BNG_VM_NAT));
	CHECK_OK(bng_vm_get(e, "0123456789ab", &got));
	if (got) {
		CHECK_EQ_STR(got->name, "dev");
		CHECK_EQ_STR(got->state, "running");
		CHECK(got->nat);
		CHECK(json_integer_value(json_object_get(got->vmm, "pid")) == 4242);
		json_t *wire = bng_vm_json(got);
		CHECK(json_is_true(json_object_get(wire, "nat")) && json_is_true(json_object_get(wire, "sshd")));
		CHECK(json_integer_value(json_object_get(wire, "disk_size")) == (json_int_t)(5ull << 30));
		CHECK(json_is_object(json_object_get(wire, "vmm")));
		CHECK(json_is_null(json_object_get(wire, "error")));
		CHECK_EQ_STR(bng_jstr(json_object_get(json_object_get(wire, "vmm"), "agent"), "path"), "/run/x.sock");
		CHECK(json_object_size(wire) == BNG_VM_NCOLUMNS);
		json_decref(wire);
	}
	bng_vm_free(got);
	got = NULL;

	/* one column, then cleared to NULL */
	CHECK_OK(bng_vm_set(e, vm, BNG_VM_STOP_REASON, "idle"));
	CHECK_EQ_STR(vm->stop_reason, "idle");
	CHECK_OK(bng_vm_get(e, "dev", &got));
	if (got)
		CHECK_EQ_STR(got->stop_reason, "idle");
	bng_vm_free(got);
	got = NULL;
	CHECK_OK(bng_vm_set(e, vm, BNG_VM_STOP_REASON, NULL));
	/* one string column only: an int, a bool or two columns are refused */
	CHECK_EQ_INT(bng_vm_set(e, vm, BNG_VM_VCPU, "4"), BANGER_EINVAL);
	CHECK_EQ_INT(bng_vm_set(e, vm, BNG_VM_NAT, "1"), BANGER_EINVAL);
	CHECK_EQ_INT(bng_vm_set(e, vm, BNG_VM_STATE | BNG_VM_ERROR, "x"), BANGER_EINVAL);
	CHECK(vm->vcpu == 2);
	CHECK_OK(bng_vm_get(e, "dev", &got));
	if (got)
		CHECK(got->stop_reason == NULL);
	bng_vm_free(got);

	/* a second row with the same name is refused by the store */
	bng_vm_row *twin = new_row();
	bng_vm_put(&twin->id, "ba9876543210");
	bng_vm_put(&twin->ip, "172.16.0.3");
	CHECK(bng_vm_insert(e, twin) != 0);
	bng_vm_free(twin);
	bng_vm_free(vm);

	got = (bng_vm_row *)&got; /* a failed get leaves NULL, never what was there */
	CHECK_EQ_INT(bng_vm_get(e, "nope", &got), BANGER_ENOTFOUND);
	CHECK(got == NULL);
}

int main(void)
{
	char *base = check_tmpdir("vm-rows");
	char *state = bng_asprintf("%s/state", base), *config = bng_asprintf("%s/config", base);
	char *cache = bng_asprintf("%s/cache", base), *runtime = bng_asprintf("%s/runtime", base);
	mkdir(config, 0755);
	setenv("BANGER_CONFIG_DIR", config, 1);
	setenv("BANGER_CACHE_DIR", cache, 1);
	setenv("BANGER_RUNTIME_DIR", runtime, 1);
	bng_engine *e = NULL;
	CHECK_OK(bng_engine_open(&e, state, NULL, bng_modules, bng_modules_count));
	if (e) {
		add_image_and_kernel(e);
		test_round_trip(e);
		bng_engine_close(e);
	}
	check_rm_rf(base);
	free(state);
	free(config);
	free(cache);
	free(runtime);
	free(base);
	return check_summary();
}

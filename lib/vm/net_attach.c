/* A VM on the host's network: the tap it takes from the warm pool at boot
 * and gives back at stop, and the engine's NAT chain, rewritten from the
 * rows whenever a VM with NAT gains or loses its tap. */
#include "vm_int.h"
#include "../net/net.h"
#include "tap_pool.h"

#include <pthread.h>

/* Gives a VM that is about to boot a tap of its own, warm from the pool
 * when it has one; the row records it until the VM stops. */
int bng_vm_net_setup(bng_engine *e, bng_vm_row *vm)
{
	char tap[16];
	bool warm = false;
	int rc = bng_tap_pool_take(e->tap_pool, tap, &warm);
	if (!rc) {
		rc = bng_vm_set(e, vm, BNG_VM_TAP, tap);
		if (rc)
			bng_net_link_delete_if_exists(tap);
	}
	if (!rc)
		bng_vm_dns_guest(e); /* the bridge exists now */
	return rc;
}

/* The "ip" column of a query's rows, as a JSON array. */
int bng_vm_query_ips(bng_engine *e, const char *sql, json_t **ips)
{
	json_t *rows = NULL, *row;
	int rc = bng_store_query(&e->store, &rows, sql, 0, NULL);
	size_t i;
	*ips = rc ? NULL : json_array();
	json_array_foreach(rows, i, row) json_array_append(*ips, json_object_get(row, "ip"));
	json_decref(rows);
	return rc;
}

/* Makes the engine's NAT chain masquerade exactly the VMs that have NAT
 * and a network right now (a tap). One sync at a time: each one writes the
 * whole chain from the rows it read. */
int bng_vm_nat_sync(bng_engine *e)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&lock);
	json_t *ips = NULL;
	int rc = bng_vm_query_ips(e, "SELECT ip FROM vms WHERE nat = 1 AND tap != '' ORDER BY ip", &ips);
	if (!rc)
		rc = bng_net_nat_sync(e->net_tag, bng_config_str(&e->config, "bridge_name"), ips);
	json_decref(ips);
	pthread_mutex_unlock(&lock);
	return rc;
}

/* Deletes the VM's tap; the row forgets it, so a stale name never reaches a
 * tap the pool has since handed to another VM. */
void bng_vm_net_teardown(bng_engine *e, bng_vm_row *vm)
{
	if (*vm->tap) {
		bng_net_link_delete_if_exists(vm->tap);
		bng_vm_set(e, vm, BNG_VM_TAP, "");
		if (vm->nat)
			bng_vm_nat_sync(e);
	}
}

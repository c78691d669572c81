/* The library's privileged net calls, one per run, for
 * tests/integration/test_root_helper.py: run as a non-root uid, each goes
 * through bangerd-root ($BANGER_ROOT_SOCKET). Prints "ok" or
 * "error NAME: message" and exits 0 or 1.
 *   root-helper-client bridge NAME IP PREFIX | tap-create NAME BRIDGE |
 *                      tap-delete NAME | tap-delete-if-exists NAME |
 *                      nat TAG BRIDGE [IP...] | forward | ping |
 *                      resolver-route BRIDGE IP | resolver-revert BRIDGE */
#include "net/net.h"
#include "net/root_helper.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	const char *v = argv[1];
	int rc;
	if (!strcmp(v, "bridge") && argc == 5) {
		rc = bng_net_bridge_ensure(argv[2], argv[3], atoi(argv[4]));
	} else if (!strcmp(v, "tap-create") && argc == 4) {
		rc = bng_net_tap_create(argv[2], argv[3], (uid_t)-1, (gid_t)-1);
	} else if (!strcmp(v, "tap-delete") && argc == 3) {
		rc = bng_net_link_delete(argv[2]);
	} else if (!strcmp(v, "tap-delete-if-exists") && argc == 3) {
		rc = bng_net_link_delete_if_exists(argv[2]);
	} else if (!strcmp(v, "nat") && argc >= 4) {
		json_t *ips = json_array();
		for (int i = 4; i < argc; i++)
			json_array_append_new(ips, json_string(argv[i]));
		rc = bng_net_nat_sync(argv[2], argv[3], ips);
		json_decref(ips);
	} else if (!strcmp(v, "ping") && argc == 2) {
		rc = bng_root_ping();
	} else if (!strcmp(v, "forward") && argc == 2) {
		rc = bng_net_ip_forward_enable();
	} else if (!strcmp(v, "resolver-route") && argc == 4) {
		rc = bng_net_resolver_route(argv[2], argv[3]);
	} else if (!strcmp(v, "resolver-revert") && argc == 3) {
		rc = bng_net_resolver_revert(argv[2]);
	} else {
		fprintf(stderr, "root-helper-client: bad arguments\n");
		return 2;
	}
	if (rc) {
		printf("error %s: %s\n", banger_strerror(rc), banger_error_last());
		return 1;
	}
	printf("ok\n");
	return 0;
}

/* The `vm.` zone of this engine's VMs: `<name>.vm` is the IP of a running
 * VM, read from the store at each query, so records follow create, start,
 * stop and delete with nothing to keep in step, and a new engine serves
 * them at once. Served on dns_listen (for the host) and, once the bridge
 * exists, on <bridge_ip>:53 for guests, whose resolv.conf then lists it
 * before default_dns (the zone answers REFUSED for other names, and a stub
 * resolver asks its next server). Where systemd-resolved runs, the bridge
 * gets `.vm` routed to that listener. */
#include "vm.h"

#include "../dns/dns.h"
#include "../net/net.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

struct bng_vm_dns {
	pthread_mutex_t lock;
	bng_dns_server *srv;
	char *error;       /* dns_listen could not be served */
	char *guest;       /* "<bridge_ip>:53" once guests are served */
	char *guest_error; /* why not (yet) */
	char *routing;     /* how .vm reaches us on this host */
	bool resolved;     /* the bridge has resolved's routing: revert at close */
};

static int lookup(const char *label, uint32_t *ip, void *ud)
{
	bng_engine *e = ud;
	json_t *rows = NULL;
	const char *args[] = {label};
	if (bng_store_query(&e->store, &rows,
			    "SELECT ip FROM vms WHERE name = ?1 AND state = 'running' AND ip != ''", 1, args) != 0)
		return -1;
	const char *text = json_string_value(json_object_get(json_array_get(rows, 0), "ip"));
	int found = text && inet_pton(AF_INET, text, ip) == 1;
	json_decref(rows);
	return found;
}

/* `.vm` through systemd-resolved: per-link DNS on the bridge (reverted
 * at close). Only where resolved runs; elsewhere doctor says how. As root
 * (or with CAP_NET_ADMIN) bangerd runs resolvectl itself; as its owner the
 * root helper does (lib/net: resolver.route, resolver.revert). */
static void route_resolved(bng_engine *e, bng_vm_dns *d)
{
	const char *bridge = bng_config_str(&e->config, "bridge_name");
	if (!bng_net_resolved_running())
		return;
	if (bng_net_resolver_route(bridge, bng_config_str(&e->config, "bridge_ip")) == 0) {
		d->resolved = true;
		d->routing = bng_asprintf("systemd-resolved: resolvectl domain %s ~vm", bridge);
	} else {
		d->routing = bng_asprintf("systemd-resolved runs but routing failed: %s", banger_error_last());
	}
}

void bng_vm_dns_guest(bng_engine *e)
{
	bng_vm_dns *d = e->dns;
	if (!d || !d->srv)
		return;
	pthread_mutex_lock(&d->lock);
	const char *bridge = bng_config_str(&e->config, "bridge_name");
	if (!d->guest && if_nametoindex(bridge) != 0) {
		const char *ip = bng_config_str(&e->config, "bridge_ip");
		if (bng_dns_server_listen(d->srv, ip, 53) == 0) {
			d->guest = bng_asprintf("%s:53", ip);
			free(d->guest_error);
			d->guest_error = NULL;
			route_resolved(e, d);
		} else {
			free(d->guest_error);
			d->guest_error = bng_strdup(banger_error_last());
		}
	}
	pthread_mutex_unlock(&d->lock);
}

bool bng_vm_dns_guest_served(bng_engine *e)
{
	if (!e->dns)
		return false;
	pthread_mutex_lock(&e->dns->lock);
	bool up = e->dns->guest != NULL;
	pthread_mutex_unlock(&e->dns->lock);
	return up;
}

void bng_vm_dns_open(bng_engine *e)
{
	const char *listen = bng_config_str(&e->config, "dns_listen");
	bng_vm_dns *d = bng_xcalloc(1, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	e->dns = d;
	char ip[16];
	unsigned port;
	if (!*listen || !strcmp(listen, "off"))
		return;
	if (bng_dns_parse_listen(listen, ip, &port) != 0) { /* config.c validated it already */
		d->error = bng_asprintf("dns_listen \"%s\" is not IPv4:port", listen);
		return;
	}
	if (bng_dns_server_new(&d->srv, lookup, e) != 0) {
		d->error = bng_strdup(banger_error_last());
		return;
	}
	if (bng_dns_server_listen(d->srv, ip, port) != 0)
		d->error = bng_strdup(banger_error_last());
	bng_vm_dns_guest(e); /* the bridge may outlive the last engine */
}

void bng_vm_dns_close(bng_engine *e)
{
	bng_vm_dns *d = e->dns;
	if (!d)
		return;
	bng_dns_server_free(d->srv);
	if (d->resolved)
		bng_net_resolver_revert(bng_config_str(&e->config, "bridge_name"));
	free(d->error);
	free(d->guest);
	free(d->guest_error);
	free(d->routing);
	pthread_mutex_destroy(&d->lock);
	free(d);
	e->dns = NULL;
}

static json_int_t records(bng_engine *e)
{
	json_t *rows = NULL;
	json_int_t n = -1;
	if (bng_store_query(&e->store, &rows, "SELECT count(*) AS n FROM vms WHERE state = 'running' AND ip != ''", 0,
			    NULL) == 0)
		n = json_integer_value(json_object_get(json_array_get(rows, 0), "n"));
	json_decref(rows);
	return n;
}

json_t *bng_vm_dns_status(bng_engine *e)
{
	bng_vm_dns *d = e->dns;
	json_t *st = d && d->srv ? bng_dns_server_status(d->srv) : json_pack("{s:[],s:i}", "listen", "queries", 0);
	json_object_set_new(st, "zone", json_string("vm."));
	json_object_set_new(st, "records", json_integer(records(e)));
	if (!d)
		return st;
	pthread_mutex_lock(&d->lock);
	json_object_set_new(st, "guest", d->guest ? json_string(d->guest) : json_null());
	if (d->error)
		json_object_set_new(st, "error", json_string(d->error));
	if (d->guest_error)
		json_object_set_new(st, "guest_error", json_string(d->guest_error));
	json_object_set_new(st, "routing", d->routing ? json_string(d->routing) : json_null());
	pthread_mutex_unlock(&d->lock);
	return st;
}

void bng_vm_dns_doctor(bng_engine *e, json_t *checks)
{
	const char *listen = bng_config_str(&e->config, "dns_listen");
	json_t *st = bng_vm_dns_status(e);
	const char *error = json_string_value(json_object_get(st, "error"));
	const char *guest_error = json_string_value(json_object_get(st, "guest_error"));
	const char *routing = json_string_value(json_object_get(st, "routing"));
	const char *status = "PASS";
	char *detail;
	if (!*listen || !strcmp(listen, "off")) {
		status = "WARN";
		detail = bng_strdup("dns_listen is off: <name>.vm does not resolve");
	} else if (!e->dns) {
		status = "WARN"; /* an in-process engine (no bangerd): nothing serves it */
		detail = bng_strdup("not served: bangerd serves the vm. zone, and this check ran without it");
	} else if (error) {
		status = "WARN"; /* VMs work; only their names do not resolve */
		detail = bng_asprintf("%s: set dns_listen to a free address", error);
	} else {
		char ip[16];
		unsigned port = 0;
		bng_dns_parse_listen(listen, ip, &port);
		const char *bridge = bng_config_str(&e->config, "bridge_name");
		char *guests = guest_error ? bng_asprintf("; guests: %s (they use default_dns only)", guest_error)
				 : json_is_string(json_object_get(st, "guest"))
				 ? bng_asprintf("; guests: %s", json_string_value(json_object_get(st, "guest")))
				 : bng_strdup("; guests: from the first VM boot (the bridge does not exist yet)");
		if (routing) {
			detail = bng_asprintf("zone vm. on %s, %lld records%s; %s", listen,
					      (long long)json_integer_value(json_object_get(st, "records")), guests, routing);
		} else {
			status = "WARN";
			detail = bng_asprintf("zone vm. on %s, %lld records%s; this host does not route .vm to it: "
					      "with systemd-resolved, `resolvectl dns %s %s; resolvectl domain %s ~vm` "
					      "(done at boot when it runs); with dnsmasq, server=/vm/%s#%u; or query it: "
					      "dig @%s -p %u box.vm",
					      listen, (long long)json_integer_value(json_object_get(st, "records")), guests,
					      bridge, bng_config_str(&e->config, "bridge_ip"), bridge, ip, port, ip, port);
		}
		free(guests);
	}
	json_array_append_new(checks, json_pack("{s:s,s:s,s:s}", "name", "dns", "status", status, "detail", detail));
	free(detail);
	json_decref(st);
}

/* vm.ports: the guest agent's listening sockets, as a developer wants them:
 * one row per service (a dual-stack bind listed once), an endpoint under the
 * VM's .vm name, and TCP services probed from the host, HTTPS first (a TLS
 * server often answers cleartext with an HTTP error page, so trying HTTP
 * first would mislabel it), then HTTP. Loopback-only listeners cannot be
 * reached from the host: they are kept, marked guest_only, never probed. */
#include "vm.h"
#include "../core/internal.h"

#include "../core/lazy_curl.h"
#include <stdlib.h>
#include <string.h>

#define PROBE_TIMEOUT_MS 1500L

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/* Whether an http(s) request to ip:port got any HTTP answer. */
static bool answers(const char *scheme, const char *ip, long port)
{
	CURL *c = curl_easy_init();
	if (!c)
		return false;
	char *url = bng_asprintf("%s://%s:%ld/", scheme, ip, port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, PROBE_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	/* guests serve self-signed certificates: this asks only "is it TLS?" */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	CURLcode res = curl_easy_perform(c);
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	free(url);
	return res == CURLE_OK || code > 0;
}

static bool is_wildcard(const char *a) { return !strcmp(a, "0.0.0.0") || !strcmp(a, "::"); }
static bool is_loopback(const char *a) { return !strncmp(a, "127.", 4) || !strcmp(a, "::1"); }

/* Builds the enriched rows from the agent's list (borrowed). */
static json_t *enrich(const bng_vm_row *vm, json_t *raw)
{
	const char *name = vm->name;
	const char *ip = vm->ip;
	json_t *rows = json_array();
	json_t *seen = json_object(); /* "tcp/22/sshd" for wildcard binds already listed */
	size_t i;
	json_t *p;
	json_array_foreach(raw, i, p) {
		const char *proto = json_string_value(json_object_get(p, "proto"));
		const char *addr = json_string_value(json_object_get(p, "address"));
		json_int_t port = json_integer_value(json_object_get(p, "port"));
		const char *process = json_string_value(json_object_get(p, "process"));
		if (!proto || !addr)
			continue;
		bool udp = !strncmp(proto, "udp", 3);
		const char *family = udp ? "udp" : "tcp";
		if (is_wildcard(addr)) {
			char *key = bng_asprintf("%s/%lld/%s", family, (long long)port, process ? process : "");
			bool dup = json_object_get(seen, key) != NULL;
			json_object_set_new(seen, key, json_true());
			free(key);
			if (dup)
				continue; /* 0.0.0.0 and :: of one service */
		}
		json_t *row = json_deep_copy(p);
		json_object_set_new(row, "proto", json_string(family));
		bool local = is_loopback(addr);
		json_object_set_new(row, "guest_only", json_boolean(local));
		const char *scheme = NULL;
		if (!udp && !local && ip) {
			if (answers("https", ip, (long)port))
				scheme = "https";
			else if (answers("http", ip, (long)port))
				scheme = "http";
		}
		char *endpoint;
		if (local)
			endpoint = bng_asprintf("%s:%lld", addr, (long long)port);
		else if (scheme)
			endpoint = bng_asprintf("%s://%s.vm:%lld", scheme, name, (long long)port);
		else
			endpoint = bng_asprintf("%s.vm:%lld", name, (long long)port);
		json_object_set_new(row, "service", json_string(scheme ? scheme : family));
		json_object_set_new(row, "endpoint", json_string(endpoint));
		free(endpoint);
		json_array_append_new(rows, row);
	}
	json_decref(seen);
	return rows;
}

int bng_m_vm_ports(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	bng_vm_row *vm;
	bng_agent_link *link;
	int rc = bng_vm_link(e, json_string_value(json_object_get(params, "name")), &vm, &link);
	if (rc)
		return rc;
	bng_agent_watch watch = bng_vm_watch(vm, op);
	json_t *reply = NULL;
	rc = bng_agent_link_call(link, "ports", 15000, &watch, &reply);
	if (!rc)
		*result = json_pack("{s:o}", "ports", enrich(vm, json_object_get(reply, "ports")));
	json_decref(reply);
	bng_agent_link_unref(link);
	bng_vm_free(vm);
	return rc;
}

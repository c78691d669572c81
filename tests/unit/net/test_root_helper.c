/* lib/net/root_helper.c's server side: the peer check, the tap name and tag
 * grammars, and bng_root_handle() refusing every hostile request before it
 * touches a device (unknown verbs, stray arguments, foreign names, another
 * bridge or CIDR, garbage, oversized lines). The real helper on a socket
 * is tests/integration/test_root_helper.py. */
#include "../check.h"

#include "net/root_helper.h"

/* Runs one request line as uid 65534; returns the response's error name
 * ("" when ok) in a static buffer and checks the log summary exists. */
static const char *handle(const bng_root_policy *p, const char *line)
{
	static char err[32];
	char *summary = NULL;
	json_t *r = bng_root_handle(p, 65534, line, strlen(line), &summary);
	CHECK(summary != NULL && *summary);
	CHECK(json_is_boolean(json_object_get(r, "ok")));
	snprintf(err, sizeof(err), "%s",
		 json_is_true(json_object_get(r, "ok")) ? "" : json_string_value(json_object_get(r, "error")));
	if (!json_is_true(json_object_get(r, "ok")))
		CHECK(json_string_value(json_object_get(r, "message")) != NULL);
	/* the log line never carries a newline or other control bytes */
	for (const char *s = summary; s && *s; s++)
		CHECK(*s >= 0x20 && *s < 0x7f);
	free(summary);
	json_decref(r);
	return err;
}

int main(void)
{
	/* names */
	CHECK_OK(bng_root_check_tap_name("bt1a2b-0"));
	CHECK_OK(bng_root_check_tap_name("bt1a2b-12345678"));
	CHECK_OK(bng_root_check_tap_name("bt0-7"));
	const char *bad[] = {"", "bt", "bt-1", "bt1a2b-", "bt1a2b-x", "bt1A2B-1", "bt1a2b3-1", "bt1a2b-123456789",
			     "eth0", "br-banger", "bt1a2b-1/x", "../bt1a2b-1", "bt1a2b-..", "bt1a2b-1 ", "bt1a2b--1",
			     "bt1a2b-1\n", "xbt1a2b-1", "bt1a2b-0123456789012345", NULL};
	for (int i = 0; bad[i]; i++)
		CHECK_EQ_INT(bng_root_check_tap_name(bad[i]), BANGER_EINVAL);
	CHECK_EQ_INT(bng_root_check_tap_name(NULL), BANGER_EINVAL);
	CHECK_OK(bng_root_check_tag("1a2b"));
	CHECK_EQ_INT(bng_root_check_tag("1a2b3"), BANGER_EINVAL);
	CHECK_EQ_INT(bng_root_check_tag(""), BANGER_EINVAL);
	CHECK_EQ_INT(bng_root_check_tag("../x"), BANGER_EINVAL);
	CHECK_EQ_INT(bng_root_check_tag(NULL), BANGER_EINVAL);

	/* policy */
	bng_root_policy p;
	CHECK_EQ_INT(bng_root_policy_init(&p, 65534, "br-banger", "10.9.0.1", "172.16.0.0/24"), BANGER_ECONFIG);
	CHECK_EQ_INT(bng_root_policy_init(&p, 65534, "br/x", "172.16.0.1", "172.16.0.0/24"), BANGER_EINVAL);
	CHECK_OK(bng_root_policy_init(&p, 65534, "br-banger", "172.16.0.1", "172.16.0.0/24"));
	CHECK(bng_root_peer_allowed(&p, 0));
	CHECK(bng_root_peer_allowed(&p, 65534));
	CHECK(!bng_root_peer_allowed(&p, 65533));
	CHECK(!bng_root_peer_allowed(&p, 1000));

	/* hostile requests: every one refused before any device is touched */
	CHECK_EQ_STR(handle(&p, "garbage"), "EPROTO");
	CHECK_EQ_STR(handle(&p, ""), "EPROTO");
	CHECK_EQ_STR(handle(&p, "[\"tap.create\"]"), "EPROTO");
	CHECK_EQ_STR(handle(&p, "{\"name\":\"bt1a2b-0\"}"), "EPROTO");
	CHECK_EQ_STR(handle(&p, "{\"verb\":7}"), "EPROTO");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"tap.create\",\"verb\":\"exec\"}"), "EPROTO"); /* duplicate keys */
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"exec\",\"argv\":[\"/bin/sh\"]}"), "ENOMETHOD");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"link.delete\",\"name\":\"eth0\"}"), "ENOMETHOD");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"bridge.delete\",\"name\":\"br-banger\"}"), "ENOMETHOD");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"x\\n2026 bangerd-root: forged\"}"), "ENOMETHOD");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"tap.create\",\"name\":\"../../etc\",\"bridge\":\"br-banger\"}"), "EINVAL");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"tap.create\",\"name\":\"bt1a2b-0/x\",\"bridge\":\"br-banger\"}"), "EINVAL");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"tap.create\",\"name\":\"eth0\",\"bridge\":\"br-banger\"}"), "EINVAL");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"tap.create\",\"name\":\"bt1a2b-0123456789\",\"bridge\":\"br-banger\"}"),
		     "EINVAL");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"tap.create\",\"name\":\"bt1a2b-0\",\"bridge\":\"docker0\"}"), "EPERM");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"tap.create\",\"name\":\"bt1a2b-0\"}"), "EPERM");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"tap.create\",\"name\":\"bt1a2b-0\",\"bridge\":\"br-banger\",\"owner\":0}"),
		     "EINVAL");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"tap.delete\",\"name\":\"eth0\"}"), "EINVAL");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"tap.delete\",\"name\":\"lo\",\"missing_ok\":true}"), "EINVAL");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"tap.delete\",\"name\":\"bt1a2b-0\",\"missing_ok\":\"yes\"}"), "EINVAL");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"bridge.ensure\",\"name\":\"eth0\",\"ip\":\"172.16.0.1\",\"prefix_len\":24}"),
		     "EPERM");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"bridge.ensure\",\"name\":\"br-banger\",\"ip\":\"10.0.0.1\",\"prefix_len\":24}"),
		     "EPERM");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"bridge.ensure\",\"name\":\"br-banger\",\"ip\":\"172.16.0.1\",\"prefix_len\":8}"),
		     "EPERM");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"nat.sync\",\"tag\":\"1a2b\",\"bridge\":\"br-banger\",\"ips\":[\"10.0.0.5\"]}"),
		     "EPERM");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"nat.sync\",\"tag\":\"1a2b\",\"bridge\":\"br-banger\",\"ips\":[\"x\"]}"),
		     "EINVAL");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"nat.sync\",\"tag\":\"../x\",\"bridge\":\"br-banger\",\"ips\":[]}"), "EINVAL");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"nat.sync\",\"tag\":\"1a2b\",\"bridge\":\"eth0\",\"ips\":[]}"), "EPERM");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"nat.sync\",\"tag\":\"1a2b\",\"bridge\":\"br-banger\",\"ips\":\"172.16.0.5\"}"),
		     "EINVAL");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"ip_forward.enable\",\"value\":0}"), "EINVAL");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"ping\"}"), "");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"ping\",\"cmd\":\"id\"}"), "EINVAL");
	/* the resolver verbs take no arguments at all: not even the right ones */
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"resolver.route\",\"bridge\":\"br-banger\"}"), "EINVAL");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"resolver.route\",\"ip\":\"172.16.0.1\"}"), "EINVAL");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"resolver.route\",\"argv\":[\"/bin/sh\",\"-c\",\"id\"]}"), "EINVAL");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"resolver.revert\",\"name\":\"eth0\"}"), "EINVAL");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"resolver.revert\",\"env\":{\"LD_PRELOAD\":\"/tmp/x.so\"}}"), "EINVAL");
	CHECK_EQ_STR(handle(&p, "{\"verb\":\"resolver.exec\"}"), "ENOMETHOD");

	/* oversized: refused by length, before parsing */
	size_t n = BNG_ROOT_MAX_REQUEST + 100;
	char *big = malloc(n + 1);
	memset(big, ' ', n);
	memcpy(big, "{\"verb\":\"ip_forward.enable\"}", 28);
	big[n] = '\0';
	CHECK_EQ_STR(handle(&p, big), "ETOOBIG");
	free(big);
	return check_summary();
}

/* The root helper's client and its policy (root_helper.h). */
#include "root_helper.h"
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- client ---- */

/* CAP_NET_ADMIN in the effective set (capget(2): no libcap). */
static bool has_net_admin(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) != 0)
		return false;
	return d[CAP_NET_ADMIN / 32].effective & (1u << (CAP_NET_ADMIN % 32));
}

bool bng_net_via_helper(void)
{
	return geteuid() != 0 && !has_net_admin();
}

const char *bng_root_socket_path(void)
{
	const char *p = getenv("BANGER_ROOT_SOCKET");
	return p && *p ? p : BNG_ROOT_SOCKET_DEFAULT;
}

/* The code whose name banger_strerror() gives, BANGER_EIO for an unknown name. */
static int code_of(const char *name)
{
	for (int c = -1; name && c >= -200; c--)
		if (!strcmp(banger_strerror(c), name))
			return c;
	return BANGER_EIO;
}

/* Sends one request (stolen) and reads its response. */
static int call(json_t *req)
{
	const char *path = bng_root_socket_path();
	char verb[32];
	const char *v = json_string_value(json_object_get(req, "verb"));
	snprintf(verb, sizeof(verb), "%s", v ? v : "");
	char *text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!text)
		return bng_err(BANGER_ENOMEM, "root helper: encoding a %s request", verb);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		free(text);
		return bng_err(BANGER_EINVAL, "root helper socket path is too long: %s", path);
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int rc = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = bng_err_errno(BANGER_EIO, errno, "root helper: socket");
		goto out;
	}
	struct timeval tv = {.tv_sec = 30};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		if (e == EACCES || e == EPERM)
			rc = bng_err_errno(BANGER_EPERM, e, "not root (uid %lu), and the root helper's socket %s refuses us",
					   (unsigned long)geteuid(), path);
		else
			rc = bng_err_errno(BANGER_EPERM, e,
					   "not root (uid %lu), so %s needs the root helper bangerd-root, which is not "
					   "listening on %s",
					   (unsigned long)geteuid(), verb, path);
		goto out;
	}
	size_t n = strlen(text);
	text[n] = '\n'; /* json_dumps's NUL becomes the line's end */
	for (size_t off = 0; off < n + 1;) {
		ssize_t w = send(fd, text + off, n + 1 - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EPIPE)
			break; /* it hung up on us (a refused uid): read why */
		if (w <= 0) {
			rc = bng_err_errno(BANGER_EIO, errno, "root helper %s: sending %s", path, verb);
			goto out;
		}
		off += (size_t)w;
	}
	char buf[BNG_ROOT_MAX_REQUEST + 1];
	size_t got = 0;
	while (got < sizeof(buf) - 1 && !memchr(buf, '\n', got)) {
		ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == ECONNRESET)
			r = 0;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			rc = bng_err(BANGER_ETIMEDOUT, "root helper %s: no answer to %s within 30 s", path, verb);
			goto out;
		}
		if (r <= 0) {
			rc = bng_err(BANGER_EIO, "root helper %s closed the connection without answering %s "
				     "(is this uid its configured owner?)", path, verb);
			goto out;
		}
		got += (size_t)r;
	}
	char *nl = memchr(buf, '\n', got);
	json_t *resp = nl ? json_loadb(buf, (size_t)(nl - buf), 0, NULL) : NULL;
	if (!json_is_object(resp)) {
		rc = bng_err(BANGER_EPROTO, "root helper %s: a malformed answer to %s", path, verb);
	} else if (!json_is_true(json_object_get(resp, "ok"))) {
		const char *msg = json_string_value(json_object_get(resp, "message"));
		rc = bng_err(code_of(json_string_value(json_object_get(resp, "error"))), "root helper: %s",
			     msg ? msg : "failed");
	}
	json_decref(resp);
out:
	if (fd >= 0)
		close(fd);
	free(text);
	return rc;
}

int bng_root_bridge_ensure(const char *name, const char *ip, int prefix_len)
{
	return call(json_pack("{s:s,s:s,s:s?,s:i}", "verb", "bridge.ensure", "name", name, "ip", ip,
			      "prefix_len", prefix_len));
}

int bng_root_tap_create(const char *name, const char *bridge)
{
	return call(json_pack("{s:s,s:s,s:s}", "verb", "tap.create", "name", name, "bridge", bridge));
}

int bng_root_tap_delete(const char *name, bool missing_ok)
{
	return call(json_pack("{s:s,s:s,s:b}", "verb", "tap.delete", "name", name, "missing_ok", missing_ok));
}

int bng_root_nat_sync(const char *tag, const char *bridge, json_t *ips)
{
	return call(json_pack("{s:s,s:s,s:s,s:O}", "verb", "nat.sync", "tag", tag, "bridge", bridge, "ips", ips));
}

int bng_root_ip_forward_enable(void)
{
	return call(json_pack("{s:s}", "verb", "ip_forward.enable"));
}

int bng_root_resolver_route(void)
{
	return call(json_pack("{s:s}", "verb", "resolver.route"));
}

int bng_root_resolver_revert(void)
{
	return call(json_pack("{s:s}", "verb", "resolver.revert"));
}

int bng_root_ping(void)
{
	return call(json_pack("{s:s}", "verb", "ping"));
}

/* ---- server policy ---- */

int bng_root_policy_init(bng_root_policy *p, uid_t owner, const char *bridge, const char *bridge_ip,
			 const char *cidr)
{
	memset(p, 0, sizeof(*p));
	p->owner = owner;
	int rc = bng_net_check_ifname(bridge);
	if (rc)
		return rc;
	snprintf(p->bridge, sizeof(p->bridge), "%s", bridge);
	if ((rc = bng_net_parse_cidr(cidr, &p->net, &p->prefix_len)))
		return rc;
	struct in_addr a;
	if (!bridge_ip || inet_pton(AF_INET, bridge_ip, &a) != 1)
		return bng_err(BANGER_ECONFIG, "bridge_ip is not an IPv4 address: %s", bridge_ip ? bridge_ip : "(none)");
	uint32_t mask = p->prefix_len ? 0xffffffffu << (32 - p->prefix_len) : 0;
	if ((ntohl(a.s_addr) & mask) != p->net)
		return bng_err(BANGER_ECONFIG, "bridge_ip %s is not inside cidr %s", bridge_ip, cidr);
	snprintf(p->bridge_ip, sizeof(p->bridge_ip), "%s", bridge_ip);
	return 0;
}

bool bng_root_peer_allowed(const bng_root_policy *p, uid_t uid)
{
	return uid == 0 || uid == p->owner;
}

static bool all_of(const char *s, size_t n, const char *set)
{
	return n > 0 && strspn(s, set) >= n;
}

int bng_root_check_tap_name(const char *name)
{
	if (!name)
		return bng_err(BANGER_EINVAL, "no tap name");
	size_t len = strnlen(name, BNG_NET_IFNAME_MAX + 1);
	if (len > BNG_NET_IFNAME_MAX)
		return bng_err(BANGER_EINVAL, "tap name over %d characters", BNG_NET_IFNAME_MAX);
	const char *dash = strchr(name, '-');
	if (strncmp(name, "bt", 2) || !dash || dash - name < 3 || dash - name > 6 ||
	    !all_of(name + 2, (size_t)(dash - name - 2), "0123456789abcdef") || strlen(dash + 1) > 8 ||
	    !all_of(dash + 1, strlen(dash + 1), "0123456789") || strlen(dash + 1) != strspn(dash + 1, "0123456789"))
		return bng_err(BANGER_EINVAL, "\"%s\" is not one of banger's tap names (bt<tag>-<number>)", name);
	return 0;
}

int bng_root_check_tag(const char *tag)
{
	size_t n = tag ? strnlen(tag, 5) : 0;
	if (n < 1 || n > 4 || strspn(tag, "0123456789abcdef") != n)
		return bng_err(BANGER_EINVAL, "NAT tag is not 1-4 lowercase hex digits");
	return 0;
}

/* Refuses any key of req not in keys (NULL-terminated). */
static int only_keys(json_t *req, const char *const *keys)
{
	const char *k;
	json_t *v;
	json_object_foreach(req, k, v) {
		bool ok = false;
		for (size_t i = 0; keys[i] && !ok; i++)
			ok = !strcmp(k, keys[i]);
		if (!ok)
			return bng_err(BANGER_EINVAL, "unexpected argument \"%.32s\"", k);
	}
	return 0;
}

static const char *str_arg(json_t *req, const char *key)
{
	return json_string_value(json_object_get(req, key));
}

static int check_bridge(const bng_root_policy *p, const char *bridge)
{
	if (!bridge || strcmp(bridge, p->bridge))
		return bng_err(BANGER_EPERM, "bridge must be the configured %s", p->bridge);
	return 0;
}

static int do_bridge_ensure(const bng_root_policy *p, json_t *req)
{
	static const char *const keys[] = {"verb", "name", "ip", "prefix_len", NULL};
	int rc = only_keys(req, keys);
	if (rc || (rc = check_bridge(p, str_arg(req, "name"))))
		return rc;
	const char *ip = str_arg(req, "ip");
	json_t *plen = json_object_get(req, "prefix_len");
	if (!ip || strcmp(ip, p->bridge_ip) || !json_is_integer(plen) || json_integer_value(plen) != p->prefix_len)
		return bng_err(BANGER_EPERM, "bridge address must be the configured %s/%d", p->bridge_ip,
			       p->prefix_len);
	return bng_net_bridge_ensure(p->bridge, p->bridge_ip, p->prefix_len);
}

static int do_tap_create(const bng_root_policy *p, uid_t peer, json_t *req)
{
	static const char *const keys[] = {"verb", "name", "bridge", NULL};
	const char *name = str_arg(req, "name");
	int rc = only_keys(req, keys);
	if (rc || (rc = bng_root_check_tap_name(name)) || (rc = check_bridge(p, str_arg(req, "bridge"))))
		return rc;
	return bng_net_tap_create(name, p->bridge, peer == 0 ? (uid_t)-1 : peer, (gid_t)-1);
}

static int do_tap_delete(uid_t peer, json_t *req)
{
	static const char *const keys[] = {"verb", "name", "missing_ok", NULL};
	const char *name = str_arg(req, "name");
	json_t *missing_ok = json_object_get(req, "missing_ok");
	int rc = only_keys(req, keys);
	if (rc || (rc = bng_root_check_tap_name(name)))
		return rc;
	if (missing_ok && !json_is_boolean(missing_ok))
		return bng_err(BANGER_EINVAL, "missing_ok is not a boolean");
	bool found = false, is_tap = false;
	int64_t owner = -1;
	if ((rc = bng_net_tap_info(name, &found, &is_tap, &owner)))
		return rc;
	if (!found)
		return json_is_true(missing_ok) ? 0 : bng_err(BANGER_ENOTFOUND, "there is no network device named %s", name);
	if (!is_tap)
		return bng_err(BANGER_EPERM, "%s is not a tap: banger did not make it", name);
	if (peer != 0 && owner != (int64_t)peer)
		return bng_err(BANGER_EPERM, "tap %s is not owned by uid %lu (owner %lld): banger did not make it for "
			       "this user", name, (unsigned long)peer, (long long)owner);
	/* checked, then deleted by name: only root could swap the device in
	 * between (the owner's requests are served one at a time) */
	return json_is_true(missing_ok) ? bng_net_link_delete_if_exists(name) : bng_net_link_delete(name);
}

static int do_nat_sync(const bng_root_policy *p, json_t *req)
{
	static const char *const keys[] = {"verb", "tag", "bridge", "ips", NULL};
	json_t *ips = json_object_get(req, "ips");
	int rc = only_keys(req, keys);
	if (rc || (rc = bng_root_check_tag(str_arg(req, "tag"))) || (rc = check_bridge(p, str_arg(req, "bridge"))))
		return rc;
	if (!json_is_array(ips) || json_array_size(ips) > BNG_ROOT_MAX_NAT_IPS)
		return bng_err(BANGER_EINVAL, "ips must be an array of at most %d addresses", BNG_ROOT_MAX_NAT_IPS);
	uint32_t mask = p->prefix_len ? 0xffffffffu << (32 - p->prefix_len) : 0;
	size_t i;
	json_t *v;
	json_array_foreach(ips, i, v) {
		struct in_addr a;
		if (!json_is_string(v) || inet_pton(AF_INET, json_string_value(v), &a) != 1)
			return bng_err(BANGER_EINVAL, "ips[%zu] is not an IPv4 address", i);
		if ((ntohl(a.s_addr) & mask) != p->net)
			return bng_err(BANGER_EPERM, "ips[%zu] %s is outside the configured cidr", i, json_string_value(v));
	}
	return bng_net_nat_sync(str_arg(req, "tag"), p->bridge, ips);
}

/* s with anything unprintable replaced, at most 64 characters: for the log. */
static void printable(char *out, size_t size, const char *s)
{
	size_t n = 0;
	for (; s && *s && n + 1 < size && n < 64; s++)
		out[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	out[n] = '\0';
}

json_t *bng_root_handle(const bng_root_policy *p, uid_t peer_uid, const char *line, size_t len, char **summary)
{
	int rc;
	char verb_p[72] = "", name_p[72] = "";
	json_t *req = NULL;
	if (len > BNG_ROOT_MAX_REQUEST) {
		rc = bng_err(BANGER_ETOOBIG, "request over %d bytes", BNG_ROOT_MAX_REQUEST);
		goto out;
	}
	json_error_t jerr;
	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(req)) {
		rc = bng_err(BANGER_EPROTO, "not a JSON object%s%s", req ? "" : ": ", req ? "" : jerr.text);
		goto out;
	}
	const char *verb = str_arg(req, "verb");
	printable(verb_p, sizeof(verb_p), verb);
	const char *name = str_arg(req, "name") ? str_arg(req, "name") : str_arg(req, "tag");
	printable(name_p, sizeof(name_p), name);
	if (!verb)
		rc = bng_err(BANGER_EPROTO, "no \"verb\"");
	else if (!strcmp(verb, "bridge.ensure"))
		rc = do_bridge_ensure(p, req);
	else if (!strcmp(verb, "tap.create"))
		rc = do_tap_create(p, peer_uid, req);
	else if (!strcmp(verb, "tap.delete"))
		rc = do_tap_delete(peer_uid, req);
	else if (!strcmp(verb, "nat.sync"))
		rc = do_nat_sync(p, req);
	else if (!strcmp(verb, "ping")) {
		static const char *const keys[] = {"verb", NULL};
		rc = only_keys(req, keys); /* nothing to do: "you are served" */
	} else if (!strcmp(verb, "ip_forward.enable")) {
		static const char *const keys[] = {"verb", NULL};
		rc = only_keys(req, keys);
		if (!rc)
			rc = bng_net_ip_forward_enable();
	} else if (!strcmp(verb, "resolver.route") || !strcmp(verb, "resolver.revert")) {
		/* no arguments: the configured bridge and bridge_ip, nothing else */
		static const char *const keys[] = {"verb", NULL};
		rc = only_keys(req, keys);
		if (!rc)
			rc = !strcmp(verb, "resolver.route") ? bng_net_resolver_route(p->bridge, p->bridge_ip)
							     : bng_net_resolver_revert(p->bridge);
	} else
		rc = bng_err(BANGER_ENOMETHOD, "unknown verb \"%s\": the helper does only bridge.ensure, tap.create, "
			     "tap.delete, nat.sync, ip_forward.enable, resolver.route, resolver.revert and ping", verb_p);
out:
	json_decref(req);
	json_t *resp;
	char msg[512];
	if (rc) {
		snprintf(msg, sizeof(msg), "%s", banger_error_last());
		resp = json_pack("{s:b,s:s,s:s}", "ok", 0, "error", banger_strerror(rc), "message", msg);
		char msg_p[72];
		printable(msg_p, sizeof(msg_p), msg);
		*summary = bng_asprintf("%s %s: refused or failed (%s): %s%s", verb_p[0] ? verb_p : "-",
					name_p[0] ? name_p : "-", banger_strerror(rc), msg_p, strlen(msg) > 64 ? "..." : "");
	} else {
		resp = json_pack("{s:b}", "ok", 1);
		*summary = bng_asprintf("%s %s: ok", verb_p, name_p[0] ? name_p : "-");
	}
	return resp;
}

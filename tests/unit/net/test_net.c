/* lib/net: the pure helpers (names, CIDRs, address allocation, MACs) and,
 * as root, real bridges and taps. The device tests run in a private network
 * namespace (plus a mount namespace with its own /sys, so /sys/class/net
 * shows that namespace): everything they create vanishes with the process
 * and nothing can touch the host's interfaces. */
#include "../check.h"

#include "net/net.h"
#include "vm/tap_pool.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <sched.h>
#include <dirent.h>
#include <sys/mount.h>
#include <sys/wait.h>

#define CHECK_ERR(expr, code, needle)                                                        \
	do {                                                                                 \
		int chk_r_ = (expr);                                                         \
		CHECK_EQ_INT(chk_r_, code);                                                  \
		CHECK_STR_CONTAINS(banger_error_last(), needle);                             \
	} while (0)

/* ---- pure helpers ---- */

static void test_ifname(void)
{
	CHECK_OK(bng_net_check_ifname("bt-0123456789a"));
	CHECK_OK(bng_net_check_ifname("abcdefghijklmno")); /* 15 */
	CHECK_ERR(bng_net_check_ifname("abcdefghijklmnop"), BANGER_EINVAL, "at most 15");
	CHECK_ERR(bng_net_check_ifname(""), BANGER_EINVAL, "empty");
	CHECK_ERR(bng_net_check_ifname(NULL), BANGER_EINVAL, "empty");
	CHECK_ERR(bng_net_check_ifname(".."), BANGER_EINVAL, "not a valid");
	CHECK_ERR(bng_net_check_ifname("a/b"), BANGER_EINVAL, "'/'");
	CHECK_ERR(bng_net_check_ifname("a b"), BANGER_EINVAL, "whitespace");
	CHECK_ERR(bng_net_check_ifname("eth0:1"), BANGER_EINVAL, "':'");
}

static void test_parse_cidr(void)
{
	uint32_t net = 1;
	int prefix = -1;
	CHECK_OK(bng_net_parse_cidr("172.30.0.0/24", &net, &prefix));
	CHECK_EQ_INT(net, 0xac1e0000u);
	CHECK_EQ_INT(prefix, 24);
	CHECK_OK(bng_net_parse_cidr("0.0.0.0/0", &net, &prefix));
	CHECK_EQ_INT(net, 0);
	CHECK_EQ_INT(prefix, 0);
	CHECK_OK(bng_net_parse_cidr("10.1.2.3/32", &net, &prefix));
	CHECK_EQ_INT(net, 0x0a010203u);
	CHECK_EQ_INT(prefix, 32);

	net = 7;
	prefix = 7;
	CHECK_ERR(bng_net_parse_cidr("10.0.0.1/24", &net, &prefix), BANGER_EINVAL, "did you mean 10.0.0.0/24");
	CHECK_ERR(bng_net_parse_cidr("10.0.0.0/33", &net, &prefix), BANGER_EINVAL, "prefix length");
	CHECK_ERR(bng_net_parse_cidr("10.0.0.0/", &net, &prefix), BANGER_EINVAL, "prefix length");
	CHECK_ERR(bng_net_parse_cidr("10.0.0.0/+8", &net, &prefix), BANGER_EINVAL, "prefix length");
	CHECK_ERR(bng_net_parse_cidr("10.0.0.0/8 ", &net, &prefix), BANGER_EINVAL, "prefix length");
	CHECK_ERR(bng_net_parse_cidr("10.0.0.0/0008", &net, &prefix), BANGER_EINVAL, "prefix length");
	CHECK_ERR(bng_net_parse_cidr("10.0.0.0", &net, &prefix), BANGER_EINVAL, "a.b.c.d/n");
	CHECK_ERR(bng_net_parse_cidr("/24", &net, &prefix), BANGER_EINVAL, "a.b.c.d/n");
	CHECK_ERR(bng_net_parse_cidr("10.0.0/24", &net, &prefix), BANGER_EINVAL, "not an IPv4 address");
	CHECK_ERR(bng_net_parse_cidr("256.0.0.0/8", &net, &prefix), BANGER_EINVAL, "not an IPv4 address");
	CHECK_ERR(bng_net_parse_cidr("fd00::/8", &net, &prefix), BANGER_EINVAL, "not an IPv4 address");
	CHECK_ERR(bng_net_parse_cidr("1234567890123456789/8", &net, &prefix), BANGER_EINVAL, "a.b.c.d/n");
	CHECK_ERR(bng_net_parse_cidr(NULL, &net, &prefix), BANGER_EINVAL, "missing");
	CHECK_EQ_INT(net, 7);
	CHECK_EQ_INT(prefix, 7);
}

/* used given as a JSON text, for brevity. */
static int alloc(const char *cidr, const char *gw, const char *used_json, char out[16])
{
	json_t *used = used_json ? json_loads(used_json, 0, NULL) : NULL;
	if (used_json && !used)
		abort();
	int rc = bng_net_alloc_ip(cidr, gw, used, out);
	json_decref(used);
	return rc;
}

static void test_alloc_ip(void)
{
	char ip[16];
	CHECK_OK(alloc("172.30.0.0/24", "172.30.0.1", "[]", ip));
	CHECK_EQ_STR(ip, "172.30.0.2");
	CHECK_OK(alloc("172.30.0.0/24", "172.30.0.1", NULL, ip));
	CHECK_EQ_STR(ip, "172.30.0.2");
	/* Lowest free, whatever the order, duplicates and strangers in used. */
	CHECK_OK(alloc("172.30.0.0/24", "172.30.0.1",
		       "[\"172.30.0.5\", \"172.30.0.2\", \"10.0.0.3\", \"172.30.0.2\", \"172.30.0.0\", \"172.30.0.4\"]",
		       ip));
	CHECK_EQ_STR(ip, "172.30.0.3");
	CHECK_OK(alloc("172.30.0.0/24", "172.30.0.1", "[\"172.30.0.2\", \"172.30.0.3\", \"172.30.0.4\"]", ip));
	CHECK_EQ_STR(ip, "172.30.0.5");
	/* The gateway need not be the first host; none at all is allowed. */
	CHECK_OK(alloc("172.30.0.0/24", "172.30.0.254", "[]", ip));
	CHECK_EQ_STR(ip, "172.30.0.1");
	CHECK_OK(alloc("172.30.0.0/24", NULL, "[\"172.30.0.1\"]", ip));
	CHECK_EQ_STR(ip, "172.30.0.2");
	/* Across an octet boundary. */
	CHECK_OK(alloc("10.0.0.0/16", "10.0.0.1", NULL, ip));
	CHECK_EQ_STR(ip, "10.0.0.2");

	/* /30: .0 network, .1 gateway, .2 the only guest, .3 broadcast. */
	CHECK_OK(alloc("10.9.0.0/30", "10.9.0.1", "[]", ip));
	CHECK_EQ_STR(ip, "10.9.0.2");
	CHECK_ERR(alloc("10.9.0.0/30", "10.9.0.1", "[\"10.9.0.2\"]", ip), BANGER_EBUSY,
		  "no free address in 10.9.0.0/30: delete some VMs or widen cidr");
	/* A full /29 never hands out the broadcast address. */
	CHECK_ERR(alloc("10.9.0.0/29", "10.9.0.6",
			"[\"10.9.0.1\", \"10.9.0.2\", \"10.9.0.3\", \"10.9.0.4\", \"10.9.0.5\"]", ip),
		  BANGER_EBUSY, "no free address");
	CHECK_OK(alloc("10.9.0.0/29", "10.9.0.6", "[\"10.9.0.1\", \"10.9.0.2\", \"10.9.0.4\", \"10.9.0.5\"]", ip));
	CHECK_EQ_STR(ip, "10.9.0.3");
	/* The top of the address space, where off-by-ones overflow. */
	CHECK_OK(alloc("255.255.255.252/30", NULL, "[\"255.255.255.253\"]", ip));
	CHECK_EQ_STR(ip, "255.255.255.254");
	CHECK_ERR(alloc("255.255.255.252/30", "255.255.255.253", "[\"255.255.255.254\"]", ip), BANGER_EBUSY,
		  "no free address");

	CHECK_ERR(alloc("10.9.0.0/31", NULL, NULL, ip), BANGER_EINVAL, "/30 or wider");
	CHECK_ERR(alloc("10.9.0.1/24", NULL, NULL, ip), BANGER_EINVAL, "host bits");
	CHECK_ERR(alloc("banana", NULL, NULL, ip), BANGER_EINVAL, "not an IPv4 CIDR");
	CHECK_ERR(alloc("10.9.0.0/24", "10.8.0.1", NULL, ip), BANGER_EINVAL, "outside 10.9.0.0/24");
	CHECK_ERR(alloc("10.9.0.0/24", "gw", NULL, ip), BANGER_EINVAL, "gateway");
	CHECK_ERR(alloc("10.9.0.0/24", NULL, "[\"10.9.0.2\", 5]", ip), BANGER_EINVAL, "#1");
	CHECK_ERR(alloc("10.9.0.0/24", NULL, "[\"10.9.0.999\"]", ip), BANGER_EINVAL, "10.9.0.999");
	CHECK_ERR(alloc("10.9.0.0/24", NULL, "{}", ip), BANGER_EINVAL, "JSON array");
}

static unsigned hex_octet(const char *s)
{
	return (unsigned)strtoul((char[]){s[0], s[1], 0}, NULL, 16);
}

static void test_mac(void)
{
	char a[18], b[18], c[18];
	bng_net_mac_from_id("0123456789ab", a);
	bng_net_mac_from_id("0123456789ab", b);
	bng_net_mac_from_id("0123456789ac", c);
	CHECK_EQ_STR(a, b);
	CHECK(strcmp(a, c) != 0);
	CHECK_EQ_INT(strlen(a), 17);
	for (int i = 0; i < 17; i++)
		CHECK(i % 3 == 2 ? a[i] == ':' : ((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f')));
	/* Across many ids: always locally administered unicast, never repeated. */
	char seen[200][18];
	for (int i = 0; i < 200; i++) {
		char id[16];
		snprintf(id, sizeof(id), "vm%d", i);
		bng_net_mac_from_id(id, seen[i]);
		unsigned first = hex_octet(seen[i]);
		CHECK(first & 0x02);    /* locally administered */
		CHECK(!(first & 0x01)); /* unicast */
		for (int j = 0; j < i; j++)
			CHECK(strcmp(seen[i], seen[j]) != 0);
	}
	bng_net_mac_from_id("", a);
	CHECK_EQ_INT(strlen(a), 17);
}

/* ---- devices, in the private namespace ---- */

static char *sys_read(const char *dev, const char *attr)
{
	char path[256], *out = NULL;
	snprintf(path, sizeof(path), "/sys/class/net/%s/%s", dev, attr);
	if (bng_read_file(path, &out, NULL) != 0)
		return NULL;
	out[strcspn(out, "\n")] = '\0';
	return out;
}

static bool sys_exists(const char *dev, const char *attr)
{
	char path[256];
	snprintf(path, sizeof(path), "/sys/class/net/%s%s%s", dev, attr ? "/" : "", attr ? attr : "");
	return access(path, F_OK) == 0;
}

static unsigned long sys_flags(const char *dev)
{
	char *s = sys_read(dev, "flags");
	unsigned long v = s ? strtoul(s, NULL, 16) : 0;
	free(s);
	return v;
}

static char *master_of(const char *dev)
{
	char path[256], target[256];
	snprintf(path, sizeof(path), "/sys/class/net/%s/master", dev);
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return NULL;
	target[n] = '\0';
	const char *slash = strrchr(target, '/');
	return strdup(slash ? slash + 1 : target);
}

/* How many times dev has ip/prefix, read through getifaddrs (netlink). */
static int addr_count(const char *dev, const char *ip, int prefix)
{
	struct ifaddrs *ifa_list;
	int n = 0;
	if (getifaddrs(&ifa_list) != 0)
		return -1;
	for (struct ifaddrs *ifa = ifa_list; ifa; ifa = ifa->ifa_next) {
		if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != AF_INET || strcmp(ifa->ifa_name, dev) != 0)
			continue;
		char buf[16];
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ifa->ifa_addr;
		const struct sockaddr_in *mask = (const struct sockaddr_in *)ifa->ifa_netmask;
		inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
		if (strcmp(buf, ip) == 0 && __builtin_popcount(mask->sin_addr.s_addr) == prefix)
			n++;
	}
	freeifaddrs(ifa_list);
	return n;
}

static bool json_has(json_t *arr, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		if (strcmp(json_string_value(v), s) == 0)
			return true;
	}
	return false;
}

static bool exists(const char *name)
{
	bool e = false;
	if (bng_net_link_exists(name, &e) != 0)
		abort();
	return e;
}

static void test_bridge(void)
{
	CHECK_OK(bng_net_bridge_ensure("bngtest0", "172.30.0.1", 24));
	CHECK(sys_exists("bngtest0", "bridge"));
	CHECK(sys_flags("bngtest0") & IFF_UP);
	CHECK_EQ_INT(addr_count("bngtest0", "172.30.0.1", 24), 1);
	CHECK(exists("bngtest0"));

	/* Again: nothing changes, nothing fails. */
	CHECK_OK(bng_net_bridge_ensure("bngtest0", "172.30.0.1", 24));
	CHECK_EQ_INT(addr_count("bngtest0", "172.30.0.1", 24), 1);

	/* Brought back up if someone took it down. */
	CHECK_OK(bng_net_link_set_up("bngtest0", false));
	CHECK(!(sys_flags("bngtest0") & IFF_UP));
	CHECK_OK(bng_net_bridge_ensure("bngtest0", "172.30.0.1", 24));
	CHECK(sys_flags("bngtest0") & IFF_UP);

	/* A different address: ours is added, the old one stays. */
	CHECK_OK(bng_net_bridge_ensure("bngtest0", "10.77.0.1", 16));
	CHECK_EQ_INT(addr_count("bngtest0", "10.77.0.1", 16), 1);
	CHECK_EQ_INT(addr_count("bngtest0", "172.30.0.1", 24), 1);

	/* No address at all. */
	CHECK_OK(bng_net_bridge_ensure("bngtest1", NULL, 0));
	CHECK(sys_exists("bngtest1", "bridge"));
	CHECK(sys_flags("bngtest1") & IFF_UP);
	CHECK_OK(bng_net_bridge_delete("bngtest1"));
	CHECK(!exists("bngtest1"));

	CHECK_ERR(bng_net_bridge_ensure("bngtest0-too-long", "172.30.0.1", 24), BANGER_EINVAL, "at most 15");
	CHECK_ERR(bng_net_bridge_ensure("bngtest2", "172.30.0.999", 24), BANGER_EINVAL, "172.30.0.999");
	CHECK_ERR(bng_net_bridge_ensure("bngtest2", "172.30.0.1", 33), BANGER_EINVAL, "prefix length");
	CHECK(!exists("bngtest2"));
	CHECK_ERR(bng_net_bridge_ensure("lo", "172.30.0.1", 24), BANGER_EEXIST, "not a bridge");
	CHECK_ERR(bng_net_bridge_delete("lo"), BANGER_EINVAL, "not a bridge");
	CHECK_ERR(bng_net_bridge_delete("bngnosuch"), BANGER_ENOTFOUND, "bngnosuch");
}

static void test_tap(void)
{
	CHECK_OK(bng_net_tap_create("bt-test1", "bngtest0", 1234, 5678));
	CHECK(exists("bt-test1"));
	char *s = master_of("bt-test1");
	CHECK_EQ_STR(s, "bngtest0");
	free(s);
	CHECK(sys_flags("bt-test1") & IFF_UP);
	s = sys_read("bt-test1", "owner");
	CHECK_EQ_STR(s, "1234");
	free(s);
	s = sys_read("bt-test1", "group");
	CHECK_EQ_STR(s, "5678");
	free(s);
	s = sys_read("bt-test1", "tun_flags");
	unsigned long tf = s ? strtoul(s, NULL, 16) : 0;
	free(s);
	CHECK_EQ_INT(tf & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
	CHECK(tf & IFF_PERSIST);
	CHECK(sys_exists("bngtest0", "brif/bt-test1"));

	/* Owner and group left unset. */
	CHECK_OK(bng_net_tap_create("bt-test2", "bngtest0", (uid_t)-1, (gid_t)-1));
	s = sys_read("bt-test2", "owner");
	CHECK_EQ_STR(s, "-1");
	free(s);

	/* Same name again: refused, the existing tap untouched. */
	CHECK_ERR(bng_net_tap_create("bt-test1", "bngtest0", 1, 1), BANGER_EEXIST, "already exists");
	s = sys_read("bt-test1", "owner");
	CHECK_EQ_STR(s, "1234");
	free(s);
	CHECK_ERR(bng_net_tap_create("lo", "bngtest0", 0, 0), BANGER_EEXIST, "already exists");

	/* Bad bridges cost nothing: no tap is left behind. */
	CHECK_ERR(bng_net_tap_create("bt-test3", "bngnosuch", 0, 0), BANGER_ENOTFOUND, "bridge bngnosuch does not exist");
	CHECK(!exists("bt-test3"));
	CHECK_ERR(bng_net_tap_create("bt-test3", "bt-test1", 0, 0), BANGER_EINVAL, "not a bridge");
	CHECK(!exists("bt-test3"));
	CHECK_ERR(bng_net_tap_create("bt-0123456789abc", "bngtest0", 0, 0), BANGER_EINVAL, "at most 15");
	CHECK_ERR(bng_net_tap_create("bt-test3", "bngtest0-too-long", 0, 0), BANGER_EINVAL, "at most 15");

	/* Up and down. */
	CHECK_OK(bng_net_link_set_up("bt-test2", false));
	CHECK(!(sys_flags("bt-test2") & IFF_UP));
	CHECK_OK(bng_net_link_set_up("bt-test2", true));
	CHECK(sys_flags("bt-test2") & IFF_UP);
	CHECK_ERR(bng_net_link_set_up("bt-nosuch", true), BANGER_ENOTFOUND, "bt-nosuch");

	/* Listing by prefix. */
	json_t *names = NULL;
	CHECK_OK(bng_net_link_list("bt-", &names));
	CHECK_EQ_INT(json_array_size(names), 2);
	CHECK(json_has(names, "bt-test1"));
	CHECK(json_has(names, "bt-test2"));
	json_decref(names);
	names = NULL;
	CHECK_OK(bng_net_link_list(NULL, &names));
	CHECK(json_has(names, "lo"));
	CHECK(json_has(names, "bngtest0"));
	CHECK(json_has(names, "bt-test1"));
	json_decref(names);
	names = NULL;
	CHECK_OK(bng_net_link_list("nothing-here", &names));
	CHECK_EQ_INT(json_array_size(names), 0);
	json_decref(names);

	/* Many taps: the dump spans several netlink reads. */
	for (int i = 0; i < 60; i++) {
		char name[16];
		snprintf(name, sizeof(name), "bt-many%d", i);
		CHECK_OK(bng_net_tap_create(name, "bngtest0", 0, 0));
	}
	names = NULL;
	CHECK_OK(bng_net_link_list("bt-many", &names));
	CHECK_EQ_INT(json_array_size(names), 60);
	CHECK(json_has(names, "bt-many0"));
	CHECK(json_has(names, "bt-many59"));
	for (size_t i = 0; i < json_array_size(names); i++)
		CHECK_OK(bng_net_link_delete(json_string_value(json_array_get(names, i))));
	json_decref(names);
	names = NULL;
	CHECK_OK(bng_net_link_list("bt-many", &names));
	CHECK_EQ_INT(json_array_size(names), 0);
	json_decref(names);

	/* Deletes. */
	CHECK_OK(bng_net_link_delete("bt-test1"));
	CHECK(!exists("bt-test1"));
	CHECK(!sys_exists("bngtest0", "brif/bt-test1"));
	CHECK_ERR(bng_net_link_delete("bt-test1"), BANGER_ENOTFOUND, "no network device named bt-test1");
	CHECK_OK(bng_net_link_delete_if_exists("bt-test1"));
	CHECK_ERR(bng_net_link_delete("bt-0123456789abc"), BANGER_EINVAL, "at most 15");
	/* The kernel refuses to delete lo; the message says what failed. */
	CHECK(bng_net_link_delete("lo") != 0);
	CHECK_STR_CONTAINS(banger_error_last(), "deleting network device lo");

	/* Deleting the bridge releases its remaining port. */
	CHECK_OK(bng_net_bridge_delete("bngtest0"));
	CHECK(!exists("bngtest0"));
	CHECK(exists("bt-test2"));
	s = master_of("bt-test2");
	CHECK(s == NULL);
	free(s);
	CHECK_OK(bng_net_link_delete("bt-test2"));
}

/* ---- concurrency ---- */

struct racer {
	pthread_barrier_t *barrier;
	int rc;
	char msg[256];
};

static void *race_bridge(void *arg)
{
	struct racer *r = arg;
	pthread_barrier_wait(r->barrier);
	r->rc = bng_net_bridge_ensure("bngrace0", "172.31.0.1", 24);
	snprintf(r->msg, sizeof(r->msg), "%s", banger_error_last());
	return NULL;
}

static void test_threads_race(void)
{
	for (int round = 0; round < 30; round++) {
		pthread_barrier_t barrier;
		pthread_barrier_init(&barrier, NULL, 2);
		struct racer r[2] = {{.barrier = &barrier}, {.barrier = &barrier}};
		pthread_t t[2];
		for (int i = 0; i < 2; i++)
			pthread_create(&t[i], NULL, race_bridge, &r[i]);
		for (int i = 0; i < 2; i++) {
			pthread_join(t[i], NULL);
			if (r[i].rc != 0)
				fprintf(stderr, "round %d thread %d: %s\n", round, i, r[i].msg);
			CHECK_EQ_INT(r[i].rc, 0);
		}
		pthread_barrier_destroy(&barrier);
		CHECK(sys_flags("bngrace0") & IFF_UP);
		CHECK_EQ_INT(addr_count("bngrace0", "172.31.0.1", 24), 1);
		CHECK_OK(bng_net_bridge_delete("bngrace0"));
	}
}

/* Two processes (same namespace) racing the same way. */
static void test_process_race(void)
{
	for (int round = 0; round < 10; round++) {
		int go[2];
		if (pipe(go) != 0)
			abort();
		pid_t pid = fork();
		if (pid == 0) {
			char c;
			close(go[1]);
			if (read(go[0], &c, 1) != 0)
				_exit(3);
			_exit(bng_net_bridge_ensure("bngrace1", "172.31.1.1", 24) == 0 ? 0 : 1);
		}
		close(go[0]);
		close(go[1]); /* EOF releases the child just before we start */
		int rc = bng_net_bridge_ensure("bngrace1", "172.31.1.1", 24);
		int status = 0;
		waitpid(pid, &status, 0);
		CHECK_OK(rc);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		CHECK_EQ_INT(addr_count("bngrace1", "172.31.1.1", 24), 1);
		CHECK_OK(bng_net_bridge_delete("bngrace1"));
	}
}

/* Neither root nor CAP_NET_ADMIN: the privileged calls go to the root
 * helper (root_helper.h), and with none listening each is EPERM, naming it; reading
 * needs no helper. The helper itself: tests/integration/test_root_helper.py. */
static void test_unprivileged(void)
{
	CHECK_OK(bng_net_bridge_ensure("bngperm0", "172.30.9.1", 24));
	pid_t pid = fork();
	if (pid == 0) {
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(10);
		setenv("BANGER_ROOT_SOCKET", "/nonexistent/banger-root.sock", 1);
		int bad = 0;
		if (bng_net_bridge_ensure("bngperm1", "172.30.8.1", 24) != BANGER_EPERM ||
		    !strstr(banger_error_last(), "bridge.ensure needs the root helper bangerd-root") ||
		    !strstr(banger_error_last(), "/nonexistent/banger-root.sock")) {
			fprintf(stderr, "bridge as nobody: %s\n", banger_error_last());
			bad |= 1;
		}
		if (bng_net_tap_create("bt-perm", "bngperm0", 65534, 65534) != BANGER_EPERM ||
		    !strstr(banger_error_last(), "bangerd-root")) {
			fprintf(stderr, "tap as nobody: %s\n", banger_error_last());
			bad |= 2;
		}
		if (bng_net_link_delete("bngperm0") != BANGER_EPERM) {
			fprintf(stderr, "delete as nobody: %s\n", banger_error_last());
			bad |= 4;
		}
		/* Reading is allowed to anyone. */
		bool e = false;
		if (bng_net_link_exists("bngperm0", &e) != 0 || !e)
			bad |= 8;
		_exit(bad);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status));
	CHECK_EQ_INT(WEXITSTATUS(status), 0);
	CHECK(!exists("bngperm1"));
	CHECK(!exists("bt-perm"));
	CHECK_OK(bng_net_bridge_delete("bngperm0"));
}

/* ---- the warm tap pool (lib/vm/tap_pool.c) ---- */

static json_t *pool_idle(bng_tap_pool *p, size_t want)
{
	json_t *s = NULL;
	for (int i = 0; i < 500; i++) { /* the refill thread is quick; 5 s is plenty */
		json_decref(s);
		s = bng_tap_pool_status(p);
		if (json_array_size(json_object_get(s, "idle")) == want)
			break;
		usleep(10000);
	}
	json_t *idle = json_incref(json_object_get(s, "idle"));
	json_decref(s);
	return idle;
}

static void test_tap_pool(void)
{
	bng_tap_pool *p = bng_tap_pool_new("a1b2", 2, "bngpool0", "10.9.0.1", 24);
	json_t *none = json_array();
	bng_tap_pool_adopt(p, none);
	json_t *s = bng_tap_pool_status(p);
	const char *prefix = json_string_value(json_object_get(s, "prefix"));
	CHECK(strlen(prefix) == 7 && !strncmp(prefix, "bt", 2) && prefix[6] == '-');
	json_t *ours = NULL;
	CHECK_OK(bng_net_link_list(prefix, &ours));
	CHECK_EQ_INT(json_array_size(ours), 0); /* nothing is made before the first take */
	json_decref(ours);
	CHECK(!exists("bngpool0"));

	char a[16], b[16], c[16];
	bool warm = true;
	CHECK_OK(bng_tap_pool_take(p, a, &warm));
	CHECK(!warm);
	CHECK(exists(a) && !strncmp(a, prefix, 7));
	char *m = master_of(a);
	CHECK(m && !strcmp(m, "bngpool0"));
	free(m);
	json_t *idle = pool_idle(p, 2); /* refilled behind the take */
	CHECK_EQ_INT(json_array_size(idle), 2);
	CHECK_OK(bng_tap_pool_take(p, b, &warm));
	CHECK(warm);
	CHECK(json_has(idle, b) && exists(b) && strcmp(a, b));
	json_decref(idle);
	idle = pool_idle(p, 2);
	CHECK_EQ_INT(json_array_size(idle), 2);
	CHECK(!json_has(idle, a) && !json_has(idle, b));
	bng_tap_pool_free(p);

	/* idle taps outlive the engine: the next one for this state dir adopts
	 * them, numbering past every name in use; another state dir's does not */
	json_t *in_use = json_pack("[s,s]", a, b);
	p = bng_tap_pool_new("a1b2", 2, "bngpool0", "10.9.0.1", 24);
	bng_tap_pool_adopt(p, in_use);
	json_t *adopted = pool_idle(p, 2);
	CHECK(json_equal(adopted, idle));
	bng_tap_pool *elsewhere = bng_tap_pool_new("c3d4", 2, "bngpool0", "10.9.0.1", 24);
	bng_tap_pool_adopt(elsewhere, none);
	json_t *theirs = pool_idle(elsewhere, 0);
	CHECK_EQ_INT(json_array_size(theirs), 0);
	json_decref(theirs);
	bng_tap_pool_free(elsewhere);
	CHECK_OK(bng_tap_pool_take(p, c, &warm));
	CHECK(warm && json_has(idle, c));
	json_decref(adopted);
	adopted = pool_idle(p, 2);
	json_t *made = json_array_get(adopted, 1); /* the refill's: numbered past all of a, b and the adopted */
	CHECK(made && !json_has(idle, json_string_value(made)) && strcmp(json_string_value(made), a) &&
	      strcmp(json_string_value(made), b));
	bng_tap_pool_free(p);

	/* a smaller pool deletes what it cannot keep; taps in use are never touched */
	json_array_append_new(in_use, json_string(c));
	p = bng_tap_pool_new("a1b2", 0, "bngpool0", "10.9.0.1", 24);
	bng_tap_pool_adopt(p, in_use);
	CHECK_OK(bng_net_link_list(prefix, &ours));
	CHECK_EQ_INT(json_array_size(ours), 3);
	CHECK(json_has(ours, a) && json_has(ours, b) && json_has(ours, c));
	json_decref(ours);
	bng_tap_pool_free(p);

	for (size_t i = 0; i < json_array_size(in_use); i++)
		CHECK_OK(bng_net_link_delete(json_string_value(json_array_get(in_use, i))));
	CHECK_OK(bng_net_bridge_delete("bngpool0"));
	json_decref(adopted);
	json_decref(idle);
	json_decref(in_use);
	json_decref(none);
	json_decref(s);
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}
/* ---- NAT (nat.c), read back with nft(8) as the independent reference ---- */

static char *nft_list(const char *what)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "nft list %s 2>/dev/null", what);
	FILE *f = popen(cmd, "r");
	char *out = bng_xcalloc(1, 8192);
	size_t n = f ? fread(out, 1, 8191, f) : 0;
	out[n] = '\0';
	if (!f || pclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static void test_nat(void)
{
	if (system("command -v nft >/dev/null") != 0) {
		fprintf(stderr, "NAT tests skipped: nft (package nftables) is not installed to read the rules back\n");
		return;
	}
	json_t *none = json_array();
	/* nothing to undo where there never was NAT: no table appears */
	CHECK_OK(bng_net_nat_sync("t1", "br-nat", none));
	char *out = nft_list("tables");
	CHECK(out && !strstr(out, "banger"));
	free(out);

	json_t *two = json_pack("[s,s]", "172.16.0.2", "172.16.0.9");
	CHECK_OK(bng_net_nat_sync("t1", "br-nat", two));
	CHECK_OK(bng_net_nat_sync("t1", "br-nat", two)); /* idempotent: rewritten, not doubled */
	out = nft_list("chain ip banger postrouting-t1");
	CHECK(out && strstr(out, "type nat hook postrouting priority srcnat"));
	CHECK(out && strstr(out, "ip saddr 172.16.0.2 oifname != \"br-nat\" masquerade"));
	CHECK(out && strstr(out, "ip saddr 172.16.0.9 oifname != \"br-nat\" masquerade"));
	CHECK_EQ_INT(count_of(out, "masquerade"), 2);
	free(out);
	char *fwd = NULL;
	CHECK_OK(bng_read_file("/proc/sys/net/ipv4/ip_forward", &fwd, NULL));
	CHECK(fwd && fwd[0] == '1');
	free(fwd);

	/* another engine's chain is its own */
	json_t *one = json_pack("[s]", "172.16.0.9");
	CHECK_OK(bng_net_nat_sync("t2", "br-nat", one));
	CHECK_OK(bng_net_nat_sync("t1", "br-nat", one));
	out = nft_list("chain ip banger postrouting-t1");
	CHECK(out && !strstr(out, "172.16.0.2") && strstr(out, "172.16.0.9"));
	free(out);
	CHECK_OK(bng_net_nat_sync("t1", "br-nat", none));
	out = nft_list("chain ip banger postrouting-t1");
	CHECK(out == NULL); /* gone */
	free(out);
	out = nft_list("chain ip banger postrouting-t2");
	CHECK(out && strstr(out, "172.16.0.9"));
	free(out);
	CHECK_OK(bng_net_nat_sync("t2", "br-nat", none));

	/* bad input changes nothing */
	json_t *bad = json_pack("[s,s]", "172.16.0.2", "not-an-ip");
	CHECK_EQ_INT(bng_net_nat_sync("t1", "br-nat", bad), BANGER_EINVAL);
	CHECK(strstr(banger_error_last(), "not-an-ip") != NULL);
	CHECK_EQ_INT(bng_net_nat_sync("t1", "bad/name", two), BANGER_EINVAL);
	out = nft_list("chain ip banger postrouting-t1");
	CHECK(out == NULL);
	free(out);
	json_decref(bad);
	json_decref(one);
	json_decref(two);
	json_decref(none);
}

/* Open descriptors: every call must close its netlink socket and tun fd. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* A private network namespace and a /sys that shows it. */
static int enter_private_netns(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "device tests skipped: they need root\n");
		return -1;
	}
	if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
		perror("device tests skipped: unshare(CLONE_NEWNET | CLONE_NEWNS)");
		return -1;
	}
	/* Keep our mounts out of the host's mount namespace. */
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("sysfs", "/sys", "sysfs", 0, NULL) != 0) {
		perror("device tests skipped: remounting /sys");
		return -1;
	}
	return 0;
}

int main(void)
{
	test_ifname();
	test_parse_cidr();
	test_alloc_ip();
	test_mac();

	if (enter_private_netns() != 0) {
		check_summary();
		return check_failed ? 1 : 77; /* 77: meson's "skipped" */
	}
	/* Nothing from a previous run can be here: the namespace is new. */
	json_t *names = NULL;
	CHECK_OK(bng_net_link_list(NULL, &names));
	CHECK_EQ_INT(json_array_size(names), 1);
	CHECK(json_has(names, "lo"));
	json_decref(names);

	int fds = count_fds();
	test_bridge();
	test_tap();
	test_threads_race();
	test_process_race();
	test_unprivileged();
	test_tap_pool();
	test_nat();
	CHECK_EQ_INT(count_fds(), fds);
	return check_summary();
}

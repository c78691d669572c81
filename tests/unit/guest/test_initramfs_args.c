/* The guest initramfs init's two splitters (guest/agent/initramfs.c): the
 * kernel command line, as the kernel groups it, and banger.init=, as sh
 * splits a plain command. Built by the host compiler. */
#include "../check.h"

#include "../../../guest/agent/initramfs.h"

static void expect_cmdline(const char *line, const char *const *want, size_t nwant)
{
	char buf[512], *argv[16];
	snprintf(buf, sizeof(buf), "%s", line);
	size_t n = initramfs_split_cmdline(buf, argv, 16);
	CHECK_EQ_INT((int)n, (int)nwant);
	for (size_t i = 0; i < n && i < nwant; i++)
		CHECK_EQ_STR(argv[i], want[i]);
}

static void expect_words(const char *spec, int nwant, const char *const *want)
{
	char buf[512], *argv[4];
	snprintf(buf, sizeof(buf), "%s", spec);
	int n = initramfs_split_words(buf, argv, 4);
	CHECK_EQ_INT(n, nwant);
	for (int i = 0; i < n && i < nwant; i++)
		CHECK_EQ_STR(argv[i], want[i]);
	if (n >= 0)
		CHECK(argv[n] == NULL);
}

int main(void)
{
	expect_cmdline("console=ttyS0 banger.init=\"/usr/local/libexec/banger-agent --init\" x\n",
		       (const char *const[]){"console=ttyS0", "banger.init=/usr/local/libexec/banger-agent --init", "x"}, 3);
	expect_cmdline("  a\tb=\"c  d\"e  \"f g\" \n", (const char *const[]){"a", "b=c  de", "f g"}, 3);
	expect_cmdline("", NULL, 0);
	expect_cmdline("\"\"", (const char *const[]){""}, 1);
	char many[64] = "a b c d e f g h i j k l m n o p q r s t", *argv[4];
	CHECK_EQ_INT((int)initramfs_split_cmdline(many, argv, 4), 4);
	CHECK_EQ_STR(argv[3], "d");

	expect_words("/usr/local/libexec/banger-agent --init", 2,
		     (const char *const[]){"/usr/local/libexec/banger-agent", "--init"});
	expect_words("/bin/sh -c 'echo a  b'", 3, (const char *const[]){"/bin/sh", "-c", "echo a  b"});
	expect_words(" \"x \\\"y\\\"\"z\\ w ", 1, (const char *const[]){"x \"y\"z w"});
	expect_words("/sbin/init", 1, (const char *const[]){"/sbin/init"});
	expect_words("'unterminated", -1, NULL);
	expect_words("\"unterminated", -1, NULL);
	expect_words("a b c d", -1, NULL); /* 4 words and the NULL do not fit in 4 */
	expect_words("", 0, NULL);
	return check_summary();
}

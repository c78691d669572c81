/* bzImage -> vmlinux (lib/kernel/bzimage.c): every payload codec, the
 * header checks, corrupt payloads, ELF passthrough; failures leave no
 * output behind. Also the module helpers and SHA-256 vectors. */
#include "kfixtures.h"

static char *dir;

static char *path_in(const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Runs the conversion on image and expects failure with code and a
 * message containing what; no output (or temp file) may be left. */
static void expect_fail(int line, const fx_buf *image, int code, const char *what)
{
	char *in = path_in("bad.bzImage"), *out = path_in("bad.vmlinux");
	fx_write(in, image);
	int rc = bng_vmlinux_from_bzimage(in, out);
	check_total++;
	if (rc != code || !strstr(banger_error_last(), what)) {
		check_failed++;
		fprintf(stderr, "%s:%d: check failed: got %d \"%s\", want %d mentioning \"%s\"\n", __FILE__, line, rc,
			banger_error_last(), code, what);
	}
	CHECK(!fx_exists(out));
	CHECK_EQ_INT(fx_count_matching(dir, "bad.vmlinux"), 0);
	unlink(in);
	free(in);
	free(out);
}

static void roundtrip(const char *codec, const fx_buf *elf)
{
	fx_buf payload = !strcmp(codec, "lz4-legacy") ? fx_lz4_legacy(elf->p, elf->len)
						       : fx_compress(codec, elf->p, elf->len);
	fx_buf img = fx_bzimage(&payload, (uint32_t)elf->len, strcmp(codec, "gzip") != 0, 0x20f);
	char *in = path_in("k.bzImage"), *out = path_in("k.vmlinux");
	fx_write(in, &img);
	int rc = bng_vmlinux_from_bzimage(in, out);
	if (rc)
		fprintf(stderr, "codec %s: %s\n", codec, banger_error_last());
	CHECK_OK(rc);
	check_total++;
	if (!fx_file_equals(out, elf->p, elf->len)) {
		check_failed++;
		fprintf(stderr, "%s:%d: check failed: %s payload did not round-trip\n", __FILE__, __LINE__, codec);
	}
	unlink(out);

	/* The same payload with a wrong recorded size is refused. */
	if (strcmp(codec, "gzip") != 0) {
		fx_buf bad = fx_bzimage(&payload, (uint32_t)elf->len + 1, true, 0x20f);
		expect_fail(__LINE__, &bad, BANGER_EINVAL, "records");
		free(bad.p);
	}
	/* And a payload cut in half is corrupt. */
	fx_buf half = payload;
	half.len = payload.len / 2;
	fx_buf cut = fx_bzimage(&half, (uint32_t)elf->len, strcmp(codec, "gzip") != 0, 0x20f);
	char *cin = path_in("cut.bzImage"), *cout = path_in("cut.vmlinux");
	fx_write(cin, &cut);
	check_total++;
	if (bng_vmlinux_from_bzimage(cin, cout) == 0) {
		check_failed++;
		fprintf(stderr, "%s:%d: check failed: truncated %s payload accepted\n", __FILE__, __LINE__, codec);
	}
	CHECK(!fx_exists(cout));
	CHECK_EQ_INT(fx_count_matching(dir, "cut.vmlinux"), 0);
	unlink(cin);
	free(cin);
	free(cout);
	free(cut.p);
	free(in);
	free(out);
	free(img.p);
	free(payload.p);
}

static void test_codecs(void)
{
	fx_buf elf = fx_elf(300000, false);
	static const char *const codecs[] = {"gzip", "xz", "zstd", "bzip2", "lzma", "lz4", "lz4-legacy"};
	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
		roundtrip(codecs[i], &elf);
	free(elf.p);
}

static void test_header_errors(void)
{
	fx_buf elf = fx_elf(1000, false);
	fx_buf payload = fx_compress("gzip", elf.p, elf.len);
	fx_buf good = fx_bzimage(&payload, (uint32_t)elf.len, false, 0x20f);

	fx_buf empty = {0};
	expect_fail(__LINE__, &empty, BANGER_EINVAL, "not an x86 bzImage");

	fx_buf trunc = good;
	trunc.len = 0x240; /* ends inside the header */
	expect_fail(__LINE__, &trunc, BANGER_EINVAL, "not an x86 bzImage");

	fx_buf junk = fx_elf(5000, false);
	memcpy(junk.p, "MZ\0\0", 4);
	expect_fail(__LINE__, &junk, BANGER_EINVAL, "not an x86 bzImage");
	free(junk.p);

	fx_buf bad_magic = fx_bzimage(&payload, (uint32_t)elf.len, false, 0x20f);
	memcpy(bad_magic.p + 0x202, "HdrX", 4);
	expect_fail(__LINE__, &bad_magic, BANGER_EINVAL, "HdrS");
	free(bad_magic.p);

	fx_buf old = fx_bzimage(&payload, (uint32_t)elf.len, false, 0x206);
	expect_fail(__LINE__, &old, BANGER_EUNSUPPORTED, "2.08");
	free(old.p);

	/* The payload runs past the end of the file. */
	fx_buf cut = good;
	cut.len = good.len - 100 - payload.len / 2;
	expect_fail(__LINE__, &cut, BANGER_EINVAL, "truncated or corrupt");

	fx_buf huge = fx_bzimage(&payload, (uint32_t)elf.len, false, 0x20f);
	fx_le(huge.p + 0x24c, 0xfffffff0u, 4);
	expect_fail(__LINE__, &huge, BANGER_EINVAL, "truncated or corrupt");
	fx_le(huge.p + 0x24c, payload.len, 4);
	fx_le(huge.p + 0x248, 0xfffffff0u, 4);
	expect_fail(__LINE__, &huge, BANGER_EINVAL, "truncated or corrupt");
	free(huge.p);

	/* LZO (magic 89 4c 5a 4f) is not supported. */
	fx_buf lzo = {0};
	fx_put(&lzo, "\x89LZO\0\r\n\x1a\nrest-of-an-lzo-stream", 31);
	fx_buf lzo_img = fx_bzimage(&lzo, 1000, true, 0x20f);
	expect_fail(__LINE__, &lzo_img, BANGER_EUNSUPPORTED, "unknown compression");
	free(lzo.p);
	free(lzo_img.p);

	/* Valid compression of something that is not an ELF kernel. */
	static const char text[] = "this is not an ELF file at all, just text that compresses";
	fx_buf notelf = fx_compress("xz", text, sizeof(text));
	fx_buf notelf_img = fx_bzimage(&notelf, sizeof(text), true, 0x20f);
	expect_fail(__LINE__, &notelf_img, BANGER_EINVAL, "not an ELF");
	free(notelf.p);
	free(notelf_img.p);

	/* Right magic, garbage after it. */
	fx_buf garbage = {0};
	fx_put(&garbage, "\xfd" "7zXZ\0", 6);
	for (int i = 0; i < 500; i++) {
		unsigned char c = (unsigned char)(i * 31);
		fx_put(&garbage, &c, 1);
	}
	fx_buf garbage_img = fx_bzimage(&garbage, 1000, true, 0x20f);
	expect_fail(__LINE__, &garbage_img, BANGER_EINVAL, "xz");
	free(garbage.p);
	free(garbage_img.p);

	/* A missing input says so. */
	char *missing = path_in("no-such-kernel"), *out = path_in("out");
	CHECK_EQ_INT(bng_vmlinux_from_bzimage(missing, out), BANGER_ENOTFOUND);
	CHECK_STR_CONTAINS(banger_error_last(), "no-such-kernel");
	free(missing);
	free(out);

	free(good.p);
	free(payload.p);
	free(elf.p);
}

static void test_elf_passthrough(void)
{
	fx_buf elf = fx_elf(4096, false);
	char *in = path_in("vmlinux.in"), *out = path_in("vmlinux.out");
	fx_write(in, &elf);
	CHECK_OK(bng_vmlinux_from_bzimage(in, out));
	CHECK(fx_file_equals(out, elf.p, elf.len));
	struct stat st;
	CHECK(stat(out, &st) == 0 && (st.st_mode & 0777) == 0644);
	unlink(in);
	unlink(out);
	free(in);
	free(out);
	free(elf.p);
}

static void test_helpers(void)
{
	CHECK_EQ_INT(bng_kernel_module_suffix("virtio.ko"), 0);
	CHECK_EQ_INT(bng_kernel_module_suffix("kernel/a/virtio.ko.xz"), 3);
	CHECK_EQ_INT(bng_kernel_module_suffix("virtio.ko.zst"), 4);
	CHECK_EQ_INT(bng_kernel_module_suffix("virtio.ko.gz"), 3);
	CHECK_EQ_INT(bng_kernel_module_suffix("modules.dep"), -1);
	CHECK_EQ_INT(bng_kernel_module_suffix(".ko"), -1);
	CHECK_EQ_INT(bng_kernel_module_suffix("virtio.kox"), -1);

	/* FIPS 180-4 examples, plus a length that needs a second padding block. */
	static const struct {
		const char *in, *hex;
	} v[] = {
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	};
	char *p = path_in("sha");
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		check_write_file(p, v[i].in, strlen(v[i].in));
		char hex[65];
		CHECK_OK(bng_kernel_sha256_file(p, hex));
		CHECK_EQ_STR(hex, v[i].hex);
	}
	/* A million 'a's, written in odd-sized pieces by the reader's buffer. */
	FILE *f = fopen(p, "wb");
	for (int i = 0; i < 1000000; i++)
		fputc('a', f);
	fclose(f);
	char hex[65];
	CHECK_OK(bng_kernel_sha256_file(p, hex));
	CHECK_EQ_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	unlink(p);
	free(p);

	void *out;
	size_t len;
	CHECK_EQ_INT(bng_kernel_unpack("plain text", 10, 1 << 20, "blob", &out, &len), BANGER_EINVAL);
	CHECK_STR_CONTAINS(banger_error_last(), "blob");
	fx_buf big = fx_elf(200000, false), z = fx_compress("zstd", big.p, big.len);
	CHECK_EQ_INT(bng_kernel_unpack(z.p, z.len, 1000, "bomb", &out, &len), BANGER_ETOOBIG);
	CHECK_OK(bng_kernel_unpack(z.p, z.len, 1 << 20, "ok", &out, &len));
	CHECK(len == big.len && !memcmp(out, big.p, len));
	free(out);
	free(big.p);
	free(z.p);
}

int main(void)
{
	dir = check_tmpdir("bzimage");
	test_codecs();
	test_header_errors();
	test_elf_passthrough();
	test_helpers();
	check_rm_rf(dir);
	free(dir);
	return check_summary();
}

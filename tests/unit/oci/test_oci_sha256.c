/* SHA-256 against FIPS 180-2 vectors and lengths around the padding
 * boundaries, one-shot and fed in awkward pieces. */
#include "../check.h"
#include "core/sha256.h"

static void hex_of(const void *data, size_t len, size_t step, char out[65])
{
	bng_sha256 c;
	uint8_t d[BNG_SHA256_LEN];
	bng_sha256_init(&c);
	const unsigned char *p = data;
	for (size_t off = 0; off < len; off += step)
		bng_sha256_update(&c, p + off, len - off < step ? len - off : step);
	bng_sha256_final(&c, d);
	bng_sha256_hex(d, out);
}

static void check_vector(const void *data, size_t len, const char *want)
{
	static const size_t steps[] = {1, 3, 63, 64, 65, 1000, (size_t)-1};
	char got[65];
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		hex_of(data, len, steps[i] == (size_t)-1 ? (len ? len : 1) : steps[i], got);
		CHECK_EQ_STR(got, want);
	}
}

int main(void)
{
	check_vector("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check_vector("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check_vector("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
		     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	check_vector("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
		     "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		     112, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");

	char *million = malloc(1000000);
	if (!million)
		abort();
	memset(million, 'a', 1000000);
	check_vector(million, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(million);

	/* Bytes i % 251, at lengths where the padding spills into a new block. */
	static const struct {
		size_t len;
		const char *hex;
	} edges[] = {
		{55, "463eb28e72f82e0a96c0a4cc53690c571281131f672aa229e0d45ae59b598b59"},
		{56, "da2ae4d6b36748f2a318f23e7ab1dfdf45acdc9d049bd80e59de82a60895f562"},
		{57, "2fe741af801cc238602ac0ec6a7b0c3a8a87c7fc7d7f02a3fe03d1c12eac4d8f"},
		{63, "29af2686fd53374a36b0846694cc342177e428d1647515f078784d69cdb9e488"},
		{64, "fdeab9acf3710362bd2658cdc9a29e8f9c757fcf9811603a8c447cd1d9151108"},
		{65, "4bfd2c8b6f1eec7a2afeb48b934ee4b2694182027e6d0fc075074f2fabb31781"},
		{119, "da18797ed7c3a777f0847f429724a2d8cd5138e6ed2895c3fa1a6d39d18f7ec6"},
		{120, "f52b23db1fbb6ded89ef42a23ce0c8922c45f25c50b568a93bf1c075420bbb7c"},
		{127, "92ca0fa6651ee2f97b884b7246a562fa71250fedefe5ebf270d31c546bfea976"},
		{128, "471fb943aa23c511f6f72f8d1652d9c880cfa392ad80503120547703e56a2be5"},
	};
	unsigned char buf[128];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i % 251);
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		check_vector(buf, edges[i].len, edges[i].hex);

	char digest[72];
	bng_sha256_digest("abc", 3, digest);
	CHECK_EQ_STR(digest, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	return check_summary();
}

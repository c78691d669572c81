/* RPC framing (lib/rpc/frame.c): 4-byte big-endian length + one JSON object. */
#include "check.h"

#include "rpc/frame.h"

#include <jansson.h>

static json_t *msg_from(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, 0, &jerr);
	if (!v) {
		fprintf(stderr, "bad test JSON %s: %s\n", text, jerr.text);
		abort();
	}
	return v;
}

/* A raw frame around body (n bytes); the header says declared bytes. */
static unsigned char *raw_frame(const char *body, size_t n, uint32_t declared, size_t *len)
{
	unsigned char *f = malloc(n + 4);
	f[0] = (unsigned char)(declared >> 24);
	f[1] = (unsigned char)(declared >> 16);
	f[2] = (unsigned char)(declared >> 8);
	f[3] = (unsigned char)declared;
	memcpy(f + 4, body, n);
	*len = n + 4;
	return f;
}

static void feed_raw(bng_frame_decoder *d, const char *body)
{
	size_t len;
	unsigned char *f = raw_frame(body, strlen(body), (uint32_t)strlen(body), &len);
	bng_frame_decoder_feed(d, f, len);
	free(f);
}

static void test_encode(void)
{
	json_t *m = msg_from("{\"id\":7,\"method\":\"engine.status\",\"params\":{\"s\":\"\\u00e9\\n\"}}");
	char *buf = NULL;
	size_t len = 0;
	CHECK_OK(bng_frame_encode(m, &buf, &len));
	CHECK(len > 4);
	uint32_t declared = (uint32_t)(unsigned char)buf[0] << 24 | (uint32_t)(unsigned char)buf[1] << 16 |
			    (uint32_t)(unsigned char)buf[2] << 8 | (unsigned char)buf[3];
	CHECK_EQ_INT(declared, len - 4);
	/* the body is compact JSON */
	CHECK(memchr(buf + 4, ' ', len - 4) == NULL);
	json_error_t jerr;
	json_t *back = json_loadb(buf + 4, len - 4, 0, &jerr);
	CHECK(json_equal(back, m));
	json_decref(back);

	/* decode what we encoded, in one piece */
	bng_frame_decoder d;
	bng_frame_decoder_init(&d, BNG_FRAME_MAX_DEFAULT);
	bng_frame_decoder_feed(&d, buf, len);
	json_t *got = NULL;
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), 1);
	CHECK(json_equal(got, m));
	json_decref(got);
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), 0);
	CHECK(got == NULL);
	CHECK_EQ_INT(d.len, 0);
	bng_frame_decoder_free(&d);

	/* a body over 64 KiB uses all four length bytes */
	json_t *big = json_object();
	char *s = malloc(300000);
	memset(s, 'x', 299999);
	s[299999] = '\0';
	json_object_set_new(big, "blob", json_string(s));
	free(s);
	char *bbuf = NULL;
	size_t blen = 0;
	CHECK_OK(bng_frame_encode(big, &bbuf, &blen));
	CHECK_EQ_INT(blen, 4 + strlen("{\"blob\":\"\"}") + 299999);
	CHECK_EQ_INT((unsigned char)bbuf[1], ((blen - 4) >> 16) & 0xff);
	bng_frame_decoder_init(&d, BNG_FRAME_MAX_DEFAULT);
	/* fed in uneven chunks */
	for (size_t off = 0; off < blen;) {
		size_t n = blen - off < 7777 ? blen - off : 7777;
		bng_frame_decoder_feed(&d, bbuf + off, n);
		off += n;
		int rc = bng_frame_decoder_next(&d, &got);
		CHECK_EQ_INT(rc, off == blen ? 1 : 0);
		if (rc == 1) {
			CHECK(json_equal(got, big));
			json_decref(got);
		}
	}
	bng_frame_decoder_free(&d);
	free(bbuf);
	json_decref(big);
	free(buf);
	json_decref(m);
}

static void test_byte_by_byte(void)
{
	json_t *m = msg_from("{\"id\":1,\"event\":{\"stage\":\"tick\",\"done\":2,\"total\":3}}");
	char *buf;
	size_t len;
	CHECK_OK(bng_frame_encode(m, &buf, &len));
	bng_frame_decoder d;
	bng_frame_decoder_init(&d, BNG_FRAME_MAX_DEFAULT);
	int decoded = 0;
	for (size_t i = 0; i < len; i++) {
		bng_frame_decoder_feed(&d, buf + i, 1);
		json_t *got = NULL;
		int rc = bng_frame_decoder_next(&d, &got);
		if (i + 1 < len) {
			CHECK_EQ_INT(rc, 0);
			CHECK(got == NULL);
		} else {
			CHECK_EQ_INT(rc, 1);
			CHECK(json_equal(got, m));
			decoded++;
		}
		json_decref(got);
	}
	CHECK_EQ_INT(decoded, 1);
	/* feeding nothing changes nothing */
	bng_frame_decoder_feed(&d, "", 0);
	json_t *got = NULL;
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), 0);
	bng_frame_decoder_free(&d);
	free(buf);
	json_decref(m);
}

static void test_two_frames(void)
{
	json_t *a = msg_from("{\"id\":1,\"result\":{\"ok\":true}}");
	json_t *b = msg_from("{\"id\":2,\"error\":{\"code\":-10,\"message\":\"no\"}}");
	char *ba, *bb;
	size_t la, lb;
	CHECK_OK(bng_frame_encode(a, &ba, &la));
	CHECK_OK(bng_frame_encode(b, &bb, &lb));
	/* both frames plus the first 3 bytes of a third copy of a */
	size_t total = la + lb + 3;
	char *both = malloc(total);
	memcpy(both, ba, la);
	memcpy(both + la, bb, lb);
	memcpy(both + la + lb, ba, 3);

	bng_frame_decoder d;
	bng_frame_decoder_init(&d, BNG_FRAME_MAX_DEFAULT);
	bng_frame_decoder_feed(&d, both, total);
	json_t *got = NULL;
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), 1);
	CHECK(json_equal(got, a));
	json_decref(got);
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), 1);
	CHECK(json_equal(got, b));
	json_decref(got);
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), 0);
	CHECK_EQ_INT(d.len, 3);
	bng_frame_decoder_feed(&d, ba + 3, la - 3);
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), 1);
	CHECK(json_equal(got, a));
	json_decref(got);
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), 0);
	bng_frame_decoder_free(&d);
	free(both);
	free(ba);
	free(bb);
	json_decref(a);
	json_decref(b);
}

static void test_malformed(void)
{
	bng_frame_decoder d;
	bng_frame_decoder_init(&d, BNG_FRAME_MAX_DEFAULT);
	json_t *got = NULL;

	/* bad JSON, then a good frame: the bad one is consumed, the stream goes on */
	feed_raw(&d, "{\"id\":1,");
	feed_raw(&d, "{\"id\":2}");
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), BANGER_EPROTO);
	CHECK(got == NULL);
	CHECK_EQ_INT(banger_error_last_code(), BANGER_EPROTO);
	CHECK_STR_CONTAINS(banger_error_last(), "malformed frame");
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), 1);
	CHECK_EQ_INT(json_integer_value(json_object_get(got, "id")), 2);
	json_decref(got);

	/* valid JSON that is not an object */
	feed_raw(&d, "[1,2]");
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), BANGER_EPROTO);
	CHECK(got == NULL);
	CHECK_STR_CONTAINS(banger_error_last(), "message must be a JSON object");
	static const char *scalars[] = {"42", "\"str\"", "null", "true"};
	for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
		feed_raw(&d, scalars[i]);
		got = NULL;
		CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), BANGER_EPROTO);
		CHECK(got == NULL);
		CHECK_STR_CONTAINS(banger_error_last(), "malformed frame");
	}
	/* trailing garbage, duplicate keys, two objects in one frame */
	feed_raw(&d, "{\"a\":1} x");
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), BANGER_EPROTO);
	feed_raw(&d, "{\"a\":1,\"a\":2}");
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), BANGER_EPROTO);
	feed_raw(&d, "{}{}");
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), BANGER_EPROTO);
	/* invalid UTF-8 inside a string */
	feed_raw(&d, "{\"a\":\"\xff\"}");
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), BANGER_EPROTO);

	/* a zero-length frame is malformed (no object), and consumed */
	static const unsigned char zero[4] = {0, 0, 0, 0};
	bng_frame_decoder_feed(&d, zero, sizeof(zero));
	feed_raw(&d, "{}");
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), BANGER_EPROTO);
	CHECK(got == NULL);
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), 1);
	CHECK(json_is_object(got) && json_object_size(got) == 0);
	json_decref(got);
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), 0);
	CHECK_EQ_INT(d.len, 0);
	CHECK(!d.broken);
	bng_frame_decoder_free(&d);
}

static void test_too_big(void)
{
	bng_frame_decoder d;
	bng_frame_decoder_init(&d, 16);
	json_t *got = NULL;

	/* exactly the limit is fine */
	feed_raw(&d, "{\"k\":\"0123456\"}");
	CHECK_EQ_INT(strlen("{\"k\":\"0123456\"}"), 15);
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), 1);
	json_decref(got);
	feed_raw(&d, "{\"k\":\"01234567\"}"); /* 16 */
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), 1);
	json_decref(got);

	/* one over: the header alone is enough to refuse it */
	static const unsigned char hdr[4] = {0, 0, 0, 17};
	bng_frame_decoder_feed(&d, hdr, sizeof(hdr));
	got = NULL;
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), BANGER_ETOOBIG);
	CHECK(got == NULL);
	CHECK(d.broken);
	CHECK_STR_CONTAINS(banger_error_last(), "17 bytes");
	CHECK_STR_CONTAINS(banger_error_last(), "16-byte limit");
	/* and the decoder stays broken: good frames after it are refused */
	feed_raw(&d, "{}");
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), BANGER_ETOOBIG);
	CHECK(got == NULL);
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), BANGER_ETOOBIG);
	CHECK_STR_CONTAINS(banger_error_last(), "oversized");
	bng_frame_decoder_free(&d);

	/* a huge declared length with the default limit */
	bng_frame_decoder_init(&d, BNG_FRAME_MAX_DEFAULT);
	static const unsigned char huge[6] = {0xff, 0xff, 0xff, 0xff, '{', '}'};
	bng_frame_decoder_feed(&d, huge, sizeof(huge));
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), BANGER_ETOOBIG);
	CHECK_STR_CONTAINS(banger_error_last(), "4294967295 bytes");
	CHECK(d.broken);
	bng_frame_decoder_free(&d);

	/* BNG_FRAME_MAX_DEFAULT + 1 is refused, the limit itself waits for the body */
	bng_frame_decoder_init(&d, BNG_FRAME_MAX_DEFAULT);
	uint32_t at = BNG_FRAME_MAX_DEFAULT;
	unsigned char lim[4] = {(unsigned char)(at >> 24), (unsigned char)(at >> 16), (unsigned char)(at >> 8),
				(unsigned char)at};
	bng_frame_decoder_feed(&d, lim, 4);
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), 0);
	CHECK(!d.broken);
	bng_frame_decoder_free(&d);
	bng_frame_decoder_init(&d, BNG_FRAME_MAX_DEFAULT);
	at++;
	unsigned char over[4] = {(unsigned char)(at >> 24), (unsigned char)(at >> 16), (unsigned char)(at >> 8),
				 (unsigned char)at};
	bng_frame_decoder_feed(&d, over, 4);
	CHECK_EQ_INT(bng_frame_decoder_next(&d, &got), BANGER_ETOOBIG);
	bng_frame_decoder_free(&d);
}

int main(void)
{
	test_encode();
	test_byte_by_byte();
	test_two_frames();
	test_malformed();
	test_too_big();
	return check_summary();
}

/* libFuzzer target: RPC frame decoding. Input layout: byte 0 picks the body
 * limit, byte 1 seeds the chunk sizes, the rest is the byte stream. The
 * stream is decoded twice, in one feed and in pseudo-random chunks, and the
 * two must agree message for message (decoding may not depend on how bytes
 * arrive). Every decoded message must survive bng_frame_encode and a second
 * decode unchanged (json_equal). */
#include "fuzz.h"
#include "core/internal.h"
#include "rpc/frame.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void round_trip(json_t *msg)
{
	char *buf = NULL;
	size_t len = 0;
	REQUIRE(bng_frame_encode(msg, &buf, &len) == 0);
	REQUIRE(len >= 4);
	uint32_t body = (uint32_t)(unsigned char)buf[0] << 24 | (uint32_t)(unsigned char)buf[1] << 16 |
			(uint32_t)(unsigned char)buf[2] << 8 | (unsigned char)buf[3];
	REQUIRE(body == len - 4);
	/* compact encoding can be longer than the input (1e2 -> 100.0), so the
	 * second decoder's limit is the frame itself */
	bng_frame_decoder d;
	bng_frame_decoder_init(&d, len - 4);
	bng_frame_decoder_feed(&d, buf, len);
	json_t *back = NULL;
	REQUIRE(bng_frame_decoder_next(&d, &back) == 1);
	REQUIRE(json_equal(msg, back));
	json_decref(back);
	REQUIRE(bng_frame_decoder_next(&d, &back) == 0);
	REQUIRE(back == NULL && d.len == 0);
	bng_frame_decoder_free(&d);
	free(buf);
}

/* Takes every available message; appends each outcome (the message, or the
 * error code) to log. Returns true once the decoder is broken. */
static bool drain(bng_frame_decoder *d, json_t *log)
{
	for (;;) {
		json_t *msg = (json_t *)1;
		int rc = bng_frame_decoder_next(d, &msg);
		if (rc == 1) {
			REQUIRE(json_is_object(msg));
			round_trip(msg);
			json_array_append_new(log, msg);
			continue;
		}
		REQUIRE(msg == NULL);
		if (rc == 0) {
			/* waiting means: no whole frame buffered */
			if (d->len >= 4) {
				uint32_t body = (uint32_t)d->buf[0] << 24 | (uint32_t)d->buf[1] << 16 |
						(uint32_t)d->buf[2] << 8 | d->buf[3];
				REQUIRE(body <= d->max && d->len - 4 < body);
			}
			return false;
		}
		json_array_append_new(log, json_integer(rc));
		if (rc == BANGER_EPROTO)
			continue;
		REQUIRE(rc == BANGER_ETOOBIG);
		REQUIRE(d->broken);
		/* broken stays broken, whatever arrives */
		bng_frame_decoder_feed(d, "\0\0\0\2{}", 6);
		REQUIRE(bng_frame_decoder_next(d, &msg) == BANGER_ETOOBIG && msg == NULL);
		return true;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t max = data[0] & 1 ? BNG_FRAME_MAX_DEFAULT : (size_t)data[0] * 4;
	uint32_t rng = 0x9E3779B9u ^ data[1];
	const uint8_t *stream = data + 2;
	size_t n = size - 2;

	/* one feed */
	json_t *whole = json_array();
	bng_frame_decoder d;
	bng_frame_decoder_init(&d, max);
	bng_frame_decoder_feed(&d, stream, n);
	drain(&d, whole);
	bng_frame_decoder_free(&d);

	/* random chunks, draining after each */
	json_t *chunked = json_array();
	bng_frame_decoder_init(&d, max);
	for (size_t off = 0; off < n;) {
		rng ^= rng << 13;
		rng ^= rng >> 17;
		rng ^= rng << 5;
		size_t chunk = 1 + (rng % 4 == 0 ? rng % 4096 : rng % 16);
		if (chunk > n - off)
			chunk = n - off;
		bng_frame_decoder_feed(&d, stream + off, chunk);
		off += chunk;
		if (drain(&d, chunked))
			break;
	}
	bng_frame_decoder_free(&d);

	REQUIRE(json_array_size(whole) == json_array_size(chunked));
	for (size_t i = 0; i < json_array_size(whole); i++)
		REQUIRE(json_equal(json_array_get(whole, i), json_array_get(chunked, i)));
	json_decref(whole);
	json_decref(chunked);
	return 0;
}

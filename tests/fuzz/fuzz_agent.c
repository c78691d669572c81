/* libFuzzer target: the host's decoder of the guest agent's frames (what
 * an untrusted guest sends). Byte 0 seeds the chunk sizes, the rest is the
 * stream. It is decoded in one feed and in pseudo-random chunks: both must
 * yield the same frames and the same verdict, every frame within the
 * bounds, and its JSON payloads (REPLY, STARTED, EXIT, ERROR) parsed as the
 * link parses them. */
#include "fuzz.h"
#include "core/internal.h"
#include "guest/frames.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	size_t count;
	uint64_t digest; /* of every frame's type, stream, length and bytes */
} seen;

static void on_frame(void *ud, const bng_agent_frame *f)
{
	seen *s = ud;
	REQUIRE(f->len <= BNG_FRAME_PAYLOAD_MAX);
	s->count++;
	uint64_t h = s->digest ^ ((uint64_t)f->type << 56 ^ (uint64_t)f->stream << 16 ^ f->len);
	for (size_t i = 0; i < f->len; i++)
		h = (h ^ (unsigned char)f->payload[i]) * 1099511628211ull;
	s->digest = h;
	if (f->type == 2 || f->type == 4 || f->type == 8 || f->type == 9) {
		json_t *msg = json_loadb(f->payload, f->len, 0, NULL);
		json_decref(msg);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned seed = data[0];
	const char *stream = (const char *)data + 1;
	size_t len = size - 1;

	bng_agent_frames a, b;
	seen sa = {0}, sb = {0};
	bng_agent_frames_init(&a);
	int ra = bng_agent_frames_feed(&a, stream, len, on_frame, &sa);
	bng_agent_frames_init(&b);
	int rb = 0;
	for (size_t off = 0; off < len && !rb;) {
		seed = seed * 1103515245u + 12345u;
		size_t n = 1 + (seed >> 16) % 97;
		if (n > len - off)
			n = len - off;
		rb = bng_agent_frames_feed(&b, stream + off, n, on_frame, &sb);
		off += n;
	}
	REQUIRE(ra == rb);
	REQUIRE(sa.count == sb.count && sa.digest == sb.digest);
	bng_agent_frames_free(&a);
	bng_agent_frames_free(&b);
	bng_err_clear();
	return 0;
}

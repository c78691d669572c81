/* The host's decoder of the agent's frames (lib/guest/frames.c): frames
 * split anywhere, empty payloads, and the ways a stream goes bad. */
#include "check.h"
#include "guest/frames.h"

#include <string.h>

typedef struct {
	int n;
	uint8_t type[8];
	uint32_t stream[8];
	char payload[8][32];
	size_t len[8];
} got;

static void on_frame(void *ud, const bng_agent_frame *f)
{
	got *g = ud;
	if (g->n < 8) {
		g->type[g->n] = f->type;
		g->stream[g->n] = f->stream;
		g->len[g->n] = f->len;
		memcpy(g->payload[g->n], f->payload, f->len < 31 ? f->len : 31);
		g->n++;
	}
}

static size_t frame(char *out, uint8_t type, uint32_t sid, const char *payload, uint32_t len)
{
	unsigned char h[12] = {BNG_FRAME_MAGIC, type, 0, 0, sid >> 24, sid >> 16, sid >> 8, sid,
			       len >> 24, len >> 16, len >> 8, len};
	memcpy(out, h, 12);
	memcpy(out + 12, payload, len);
	return 12 + len;
}

int main(void)
{
	char stream[256];
	size_t n = frame(stream, 6, 7, "hello", 5);
	n += frame(stream + n, 5, 7, "", 0); /* an empty payload, last in the stream */
	for (size_t step = 1; step <= n; step++) {
		bng_agent_frames r;
		bng_agent_frames_init(&r);
		got g = {0};
		for (size_t off = 0; off < n; off += step)
			CHECK_OK(bng_agent_frames_feed(&r, stream + off, off + step > n ? n - off : step, on_frame, &g));
		CHECK_EQ_INT(g.n, 2);
		CHECK_EQ_INT(g.type[0], 6);
		CHECK_EQ_INT((int)g.stream[0], 7);
		CHECK_EQ_INT((int)g.len[0], 5);
		CHECK(memcmp(g.payload[0], "hello", 5) == 0);
		CHECK_EQ_INT(g.type[1], 5);
		CHECK_EQ_INT((int)g.len[1], 0);
		bng_agent_frames_free(&r);
	}
	/* a byte that is no magic: a stream that cannot be resynchronised */
	bng_agent_frames r;
	bng_agent_frames_init(&r);
	got g = {0};
	CHECK_EQ_INT(bng_agent_frames_feed(&r, "x{\"id\":1}\n 012", 13, on_frame, &g), BANGER_EPROTO);
	CHECK_STR_CONTAINS(banger_error_last(), "magic 0x78");
	bng_agent_frames_free(&r);
	/* a line-mode hello where a frame was due: the agent restarted (killed in the guest) */
	bng_agent_frames_init(&r);
	CHECK_EQ_INT(bng_agent_frames_feed(&r, "{\"id\":null,\"e", 13, on_frame, &g), BANGER_EPROTO);
	CHECK_STR_CONTAINS(banger_error_last(), "the guest agent restarted");
	bng_agent_frames_free(&r);
	/* nor a length over the bound, whatever follows */
	bng_agent_frames_init(&r);
	unsigned char big[12] = {BNG_FRAME_MAGIC, 6, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1};
	CHECK_EQ_INT(bng_agent_frames_feed(&r, (const char *)big, 12, on_frame, &g), BANGER_EPROTO);
	CHECK_STR_CONTAINS(banger_error_last(), "65537 bytes");
	CHECK_EQ_INT(g.n, 0);
	bng_agent_frames_free(&r);
	return check_summary();
}

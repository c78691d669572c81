/* Incremental frame decoding: header, then payload, copied only when a
 * frame arrives in pieces. */
#include "frames.h"

#include <stdlib.h>
#include <string.h>

void bng_agent_frames_init(bng_agent_frames *r)
{
	memset(r, 0, sizeof(*r));
	r->payload = bng_xmalloc(BNG_FRAME_PAYLOAD_MAX);
}

void bng_agent_frames_free(bng_agent_frames *r)
{
	free(r->payload);
	r->payload = NULL;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int bng_agent_frames_feed(bng_agent_frames *r, const char *data, size_t len,
			  void (*cb)(void *ud, const bng_agent_frame *f), void *ud)
{
	for (;;) {
		if (!r->in_payload && !len)
			break;
		if (!r->in_payload) {
			size_t take = BNG_FRAME_HEADER - r->have < len ? BNG_FRAME_HEADER - r->have : len;
			memcpy(r->head + r->have, data, take);
			r->have += take;
			data += take;
			len -= take;
			if (r->have < BNG_FRAME_HEADER)
				break;
			r->need = be32(r->head + 8);
			/* a new agent (killed and restarted by its unit) starts in line
			 * mode, with its hello: say that, not "bad frame" */
			if (r->head[0] == '{')
				return bng_err(BANGER_EPROTO, "the guest agent restarted: what ran through it is lost");
			if (r->head[0] != BNG_FRAME_MAGIC || r->need > BNG_FRAME_PAYLOAD_MAX)
				return bng_err(BANGER_EPROTO, "bad frame from the guest agent (magic 0x%02x, %zu bytes)",
					       r->head[0], r->need);
			r->in_payload = true;
			r->have = 0;
		}
		const char *payload;
		if (r->have == 0 && len >= r->need) { /* all here: no copy */
			payload = data;
		} else {
			size_t take = r->need - r->have < len ? r->need - r->have : len;
			memcpy(r->payload + r->have, data, take);
			r->have += take;
			data += take;
			len -= take;
			if (r->have < r->need)
				break;
			payload = r->payload;
		}
		bng_agent_frame f = {r->head[1], be32(r->head + 4), payload, r->need};
		if (payload == data) {
			data += r->need;
			len -= r->need;
		}
		r->in_payload = false;
		r->have = 0;
		cb(ud, &f);
	}
	return 0;
}

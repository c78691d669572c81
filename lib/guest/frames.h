/* The guest agent's frames (docs/agent-protocol.md) as a byte stream is
 * cut into them: a bounded, incremental decoder with no I/O, so the bytes
 * an untrusted guest sends can be fuzzed on their own. */
#ifndef BANGER_GUEST_FRAMES_H
#define BANGER_GUEST_FRAMES_H

#include "../core/internal.h"

#include <stddef.h>
#include <stdint.h>

#define BNG_FRAME_MAGIC 0xB7
#define BNG_FRAME_HEADER 12
#define BNG_FRAME_PAYLOAD_MAX 65536u

typedef struct bng_agent_frame {
	uint8_t type;
	uint32_t stream;
	const char *payload; /* valid during the callback only */
	size_t len;
} bng_agent_frame;

typedef struct bng_agent_frames {
	unsigned char head[BNG_FRAME_HEADER];
	size_t have;   /* header bytes, then payload bytes, of the frame being read */
	char *payload; /* BNG_FRAME_PAYLOAD_MAX bytes */
	size_t need;   /* payload length once the header is complete */
	bool in_payload;
} bng_agent_frames;

void bng_agent_frames_init(bng_agent_frames *r);
void bng_agent_frames_free(bng_agent_frames *r);

/* Feeds len bytes; cb gets each complete frame, in order. EPROTO (naming
 * the byte) for a bad magic or a payload over BNG_FRAME_PAYLOAD_MAX: the
 * stream cannot be resynchronised and nothing more may be fed. */
int bng_agent_frames_feed(bng_agent_frames *r, const char *data, size_t len,
			  void (*cb)(void *ud, const bng_agent_frame *f), void *ud);

#endif

/* RPC framing: each message is a 4-byte big-endian length followed by that
 * many bytes of UTF-8 JSON holding one object. */
#ifndef BANGER_FRAME_H
#define BANGER_FRAME_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define BNG_FRAME_MAX_DEFAULT (4u * 1024 * 1024)

typedef struct {
	unsigned char *buf;
	size_t len, cap;
	size_t max; /* largest accepted body */
	int broken; /* set after an oversized header: the stream cannot resync */
} bng_frame_decoder;

void bng_frame_decoder_init(bng_frame_decoder *d, size_t max_body);
void bng_frame_decoder_free(bng_frame_decoder *d);
/* Appends received bytes. */
void bng_frame_decoder_feed(bng_frame_decoder *d, const void *data, size_t n);
/* Takes the next whole message. Returns 1 with *msg set, 0 if more bytes are
 * needed, BANGER_EPROTO for a frame that is not a JSON object (the frame is
 * consumed; the stream stays usable), BANGER_ETOOBIG for a frame over the
 * limit (the stream is unusable: close it). */
int bng_frame_decoder_next(bng_frame_decoder *d, json_t **msg);

/* Encodes msg as a frame (malloc'd). */
/* The same for a body that is already JSON text (trusted: not checked). */
int bng_frame_encode_text(const char *body, size_t n, char **out, size_t *len);
int bng_frame_encode(const json_t *msg, char **out, size_t *len);

#endif

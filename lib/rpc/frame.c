#include "frame.h"
#include "../core/internal.h"

#include <stdlib.h>
#include <string.h>

void bng_frame_decoder_init(bng_frame_decoder *d, size_t max_body)
{
	memset(d, 0, sizeof(*d));
	d->max = max_body;
}

void bng_frame_decoder_free(bng_frame_decoder *d)
{
	free(d->buf);
	memset(d, 0, sizeof(*d));
}

void bng_frame_decoder_feed(bng_frame_decoder *d, const void *data, size_t n)
{
	if (d->broken || n == 0)
		return;
	if (d->len + n > d->cap) {
		size_t cap = d->cap ? d->cap : 4096;
		while (cap < d->len + n)
			cap *= 2;
		d->buf = realloc(d->buf, cap);
		if (!d->buf)
			abort();
		d->cap = cap;
	}
	memcpy(d->buf + d->len, data, n);
	d->len += n;
}

int bng_frame_decoder_next(bng_frame_decoder *d, json_t **msg)
{
	*msg = NULL;
	if (d->broken)
		return bng_err(BANGER_ETOOBIG, "connection closed after an oversized frame");
	if (d->len < 4)
		return 0;
	uint32_t body = (uint32_t)d->buf[0] << 24 | (uint32_t)d->buf[1] << 16 | (uint32_t)d->buf[2] << 8 | d->buf[3];
	if (body > d->max) {
		d->broken = 1;
		return bng_err(BANGER_ETOOBIG, "frame of %u bytes exceeds the %zu-byte limit", body, d->max);
	}
	if (d->len - 4 < body)
		return 0;
	json_error_t jerr;
	json_t *v = json_loadb((const char *)d->buf + 4, body, JSON_REJECT_DUPLICATES, &jerr);
	memmove(d->buf, d->buf + 4 + body, d->len - 4 - body);
	d->len -= 4 + (size_t)body;
	if (!v)
		return bng_err(BANGER_EPROTO, "malformed frame: %s at byte %d", jerr.text, jerr.position);
	if (!json_is_object(v)) {
		json_decref(v);
		return bng_err(BANGER_EPROTO, "malformed frame: message must be a JSON object");
	}
	*msg = v;
	return 1;
}

int bng_frame_encode_text(const char *body, size_t n, char **out, size_t *len)
{
	if (n > UINT32_MAX)
		return bng_err(BANGER_ETOOBIG, "message too large");
	char *buf = bng_xmalloc(n + 4);
	buf[0] = (char)(n >> 24);
	buf[1] = (char)(n >> 16);
	buf[2] = (char)(n >> 8);
	buf[3] = (char)n;
	memcpy(buf + 4, body, n);
	*out = buf;
	*len = n + 4;
	return 0;
}

int bng_frame_encode(const json_t *msg, char **out, size_t *len)
{
	char *body = json_dumps(msg, JSON_COMPACT);
	if (!body)
		return bng_err(BANGER_EINTERNAL, "cannot encode message");
	int rc = bng_frame_encode_text(body, strlen(body), out, len);
	free(body);
	return rc;
}

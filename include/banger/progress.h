/* banger — progress of long calls as typed events (since 0.2).
 *
 * Creating a VM, pulling, importing or building an image and importing a
 * kernel report stages as they go; an options object's set_progress_cb
 * gets each one. The event is valid only during the callback, which runs
 * on the thread making the call. */
#ifndef BANGER_PROGRESS_PUBLIC_H
#define BANGER_PROGRESS_PUBLIC_H

#include "common.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct banger_progress banger_progress;
typedef void (*banger_progress_cb)(const banger_progress *p, void *userdata);

/* The stage: "pull", "layer", "boot", ... (docs/rpc.md lists each method's). */
BANGER_API const char *banger_progress_stage(const banger_progress *p);
/* Units done and expected (bytes, layers, ...); -1 when the event has none. */
BANGER_API int64_t banger_progress_done(const banger_progress *p);
BANGER_API int64_t banger_progress_total(const banger_progress *p);
/* Seconds the stage took, for stages that report it; -1 otherwise. */
BANGER_API double banger_progress_seconds(const banger_progress *p);
/* A line of text the event carries (a message or a warning), or NULL. */
BANGER_API const char *banger_progress_message(const banger_progress *p);
/* The whole event as JSON text (every field, including ones added later). */
BANGER_API const char *banger_progress_json(const banger_progress *p);

#ifdef __cplusplus
}
#endif
#endif

/* banger — updating an installed banger from signed releases (since 0.2).
 *
 * A release is a manifest (version, date, arch, and each file's path under
 * the install prefix, sha256, size and mode) and a detached ECDSA P-256
 * signature over its exact bytes, published under a release URL
 * (docs/releases.md). The signature is checked against the public key
 * compiled into the library before anything in the manifest is read.
 *
 * params_json (NULL = "{}"), every member optional:
 *   "url"     release URL (default: config key update_url)
 *   "to"      version to install (default: the newest, from <url>/latest)
 *   "prefix"  install prefix (default: the directory above the bin/ that
 *             holds the running program)
 *   "socket"  bangerd's socket (default: banger_default_socket)
 *   "check"   true: only compare this version with the release's
 *   "dry_run" true: download and verify into a temporary directory, say
 *             what would change, change nothing
 *
 * An update stages the files in <prefix>/.banger-update-<version>/,
 * verifies each one, swaps them in one by one under a journal
 * (<prefix>/.banger-update.json), restarts a running bangerd (VMs keep
 * running) and checks that it answers with the new version; on any failure
 * the previous files come back and the previous bangerd is started again.
 * An update interrupted (killed) half way is rolled back by the next one.
 *
 * progress (may be NULL) receives {"stage": ..., "message": ...} events,
 * one sentence each. On success *report_json (free with banger_free) says
 * what was found and done ("result": "up-to-date", "available",
 * "would-update" or "updated"); on failure banger_error_last() says what
 * went wrong and what was restored. */
#ifndef BANGER_UPDATE_PUBLIC_H
#define BANGER_UPDATE_PUBLIC_H

#include "ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

BANGER_API int banger_update(const char *params_json, banger_event_cb progress, void *userdata, char **report_json);

#ifdef __cplusplus
}
#endif
#endif

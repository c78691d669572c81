/* banger update: glue over banger_update() (include/banger/update.h). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void show(const char *event_json, void *ud)
{
	(void)ud;
	json_t *ev = json_loads(event_json, 0, NULL);
	const char *msg = json_string_value(json_object_get(ev, "message"));
	if (msg)
		fprintf(stderr, "%s\n", msg);
	json_decref(ev);
}

int cmd_update(const command *cmd, args *a)
{
	(void)cmd;
	json_t *p = json_pack("{s:b,s:b}", "check", flag_set(a, "--check"), "dry_run", flag_set(a, "--dry-run"));
	static const char *const strs[][2] = {{"--to", "to"}, {"--url", "url"}, {"--prefix", "prefix"}};
	for (size_t i = 0; i < 3; i++)
		if (flag_value(a, strs[i][0]))
			json_object_set_new(p, strs[i][1], json_string(flag_value(a, strs[i][0])));
	const char *uri = getenv("BANGER_URI");
	if (uri && !strncmp(uri, "unix:", 5) && uri[5])
		json_object_set_new(p, "socket", json_string(uri + 5));
	char *params = json_dumps(p, JSON_COMPACT), *report = NULL;
	json_decref(p);
	int rc = banger_update(params, a->json ? NULL : show, NULL, &report);
	free(params);
	if (rc) {
		if (rc == BANGER_EPERM)
			fail(1, "%s\nrun it as the owner of the install, e.g. sudo banger update", banger_error_last());
		return rc == BANGER_EPERM ? 1 : api_fail(rc);
	}
	json_t *r = json_loads(report, 0, NULL);
	banger_free(report);
	if (a->json)
		print_json(r);
	/* --check: 0 when this is the newest release, 1 when a newer one exists */
	int status = flag_set(a, "--check") && json_is_true(json_object_get(r, "update_available")) ? 1 : 0;
	json_decref(r);
	return status;
}

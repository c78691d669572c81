/* Built only with $(pkg-config --cflags --libs banger) against an installed
 * copy: opens an in-process engine and makes one call. */
#include <banger.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	banger_ctx *ctx;
	if (argc != 2 || banger_ctx_open(&ctx, argv[1], NULL) != 0) {
		fprintf(stderr, "open failed: %s\n", banger_error_last());
		return 1;
	}
	char *out = NULL;
	int rc = banger_ctx_call(ctx, "engine.status", NULL, &out);
	if (rc == 0 && strstr(out, banger_version_number()))
		printf("ok %s\n", banger_version());
	else
		fprintf(stderr, "call failed: %s\n", banger_error_last());
	banger_free(out);
	banger_ctx_unref(ctx);
	return rc == 0 ? 0 : 1;
}

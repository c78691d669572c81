/* Test driver for lib/ssh against a real sshd:
 *   ssh-tool keygen KEY
 *   ssh-tool quote ARG...
 *   ssh-tool exec HOST PORT USER KEY KNOWN_KEY|- STDIN|- ARG...   (prints the result JSON) */
#include "ssh/ssh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "keygen")) {
		char *pub = NULL;
		if (bng_ssh_ensure_key(argv[2], &pub)) {
			fprintf(stderr, "%s\n", banger_error_last());
			return 1;
		}
		printf("%s\n", pub);
		free(pub);
		return 0;
	}
	json_t *args = json_array();
	int first = !strcmp(argv[1], "quote") ? 2 : 8;
	for (int i = first; i < argc; i++)
		json_array_append_new(args, json_string(argv[i]));
	char *cmd = bng_ssh_quote_argv(args);
	json_decref(args);
	if (!strcmp(argv[1], "quote")) {
		printf("%s\n", cmd);
		free(cmd);
		return 0;
	}
	bng_ssh_target t = {.host = argv[2], .port = atoi(argv[3]), .user = argv[4], .key_path = argv[5],
			    .known_key = strcmp(argv[6], "-") ? argv[6] : NULL};
	char *host_key = NULL;
	int rc = bng_ssh_wait(&t, 10000, NULL, &host_key);
	json_t *res = NULL;
	if (!rc)
		rc = bng_ssh_exec(&t, cmd, strcmp(argv[7], "-") ? argv[7] : NULL, 1 << 20, 30000, NULL, &res);
	free(cmd);
	if (rc) {
		fprintf(stderr, "%s\n", banger_error_last());
		free(host_key);
		return 1;
	}
	json_object_set_new(res, "host_key", json_string(host_key));
	char *s = json_dumps(res, JSON_COMPACT);
	printf("%s\n", s);
	free(s);
	free(host_key);
	json_decref(res);
	return 0;
}

/* Shell completion scripts generated from the command table. Completion
 * never talks to bangerd (it must stay a zero-cost probe).
 */

#include "cli.h"

#include <string.h>

/* Prints the words that may follow the first depth words of path c. */
static void next_words(const command *c, size_t depth, char *out, size_t len)
{
	char buf[64];
	path_word(c->path, depth, buf, sizeof(buf));
	if (!strstr(out, buf)) {
		strncat(out, buf, len - strlen(out) - 1);
		strncat(out, " ", len - strlen(out) - 1);
	}
}

/* Calls emit(context, words) for every command-path prefix: "" -> top-level
 * words, "daemon" -> its subcommands, full paths -> their flags. */
static void walk_completions(void (*emit)(const char *ctx, const char *words, void *ud), void *ud)
{
	char seen[1024] = "", words[1024];
	for (size_t i = 0; i < ncommands; i++) {
		size_t n = path_words(commands[i].path);
		for (size_t d = 0; d <= n; d++) {
			char ctx[128] = "";
			for (size_t w = 0; w < d; w++) {
				char buf[64];
				if (w)
					strcat(ctx, " ");
				strcat(ctx, path_word(commands[i].path, w, buf, sizeof(buf)));
			}
			char key[132];
			snprintf(key, sizeof(key), "|%s|", ctx);
			if (strstr(seen, key))
				continue;
			strncat(seen, key, sizeof(seen) - strlen(seen) - 1);
			words[0] = '\0';
			if (d == n) {
				snprintf(words, sizeof(words), "%s --help", commands[i].flags);
				for (char *eq; (eq = strchr(words, '='));)
					memmove(eq, eq + 1, strlen(eq)); /* "--name=" completes as "--name" */
				if (!strcmp(commands[i].path, "completion"))
					strcat(words, " bash zsh fish");
			} else {
				for (size_t j = 0; j < ncommands; j++) {
					bool under = path_words(commands[j].path) > d;
					char a[64], b[64];
					for (size_t w = 0; under && w < d; w++)
						under = !strcmp(path_word(commands[j].path, w, a, sizeof(a)),
								path_word(commands[i].path, w, b, sizeof(b)));
					if (under)
						next_words(&commands[j], d, words, sizeof(words));
				}
			}
			emit(ctx, words, ud);
		}
	}
}

static void emit_bash(const char *ctx, const char *words, void *ud)
{
	(void)ud;
	printf("    \"%s\") opts=\"%s\" ;;\n", ctx, words);
}

static void emit_fish(const char *ctx, const char *words, void *ud)
{
	(void)ud;
	printf("complete -c banger -f -n '__banger_path_is \"%s\"' -a '%s'\n", ctx, words);
}

int cmd_completion(const command *cmd, args *a)
{
	(void)cmd;
	const char *shell = a->argc == 1 ? a->argv[0] : "";
	if (!strcmp(shell, "bash") || !strcmp(shell, "zsh")) {
		if (!strcmp(shell, "zsh"))
			printf("#compdef banger\nautoload -U +X bashcompinit && bashcompinit\n");
		printf("_banger() {\n  local cur=\"${COMP_WORDS[COMP_CWORD]}\" path=\"\" w opts=\"\"\n"
		       "  for w in \"${COMP_WORDS[@]:1:COMP_CWORD-1}\"; do case \"$w\" in -*) ;; *) path=\"${path:+$path }$w\" ;; esac; done\n"
		       "  case \"$path\" in\n");
		walk_completions(emit_bash, NULL);
		printf("  esac\n  COMPREPLY=( $(compgen -W \"$opts\" -- \"$cur\") )\n}\ncomplete -F _banger banger\n");
		return 0;
	}
	if (!strcmp(shell, "fish")) {
		printf("function __banger_path_is\n  set -l words (commandline -opc)\n  set -e words[1]\n"
		       "  set -l path (string match -v -- '-*' $words)\n  test \"$path\" = \"$argv[1]\"\nend\n");
		walk_completions(emit_fish, NULL);
		return 0;
	}
	return fail(EXIT_USAGE, "completion needs a shell: bash, zsh or fish (e.g. banger completion bash > "
				"/etc/bash_completion.d/banger)");
}

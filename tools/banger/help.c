/* Help text and command lookup, generated from the command table.
 */

#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* Number of words in a command path. */
size_t path_words(const char *path)
{
	size_t n = 1;
	for (const char *p = path; *p; p++)
		n += *p == ' ';
	return n;
}

/* Word i of path (into buf). */
const char *path_word(const char *path, size_t i, char *buf, size_t len)
{
	const char *p = path;
	for (; i > 0 && p; i--) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	size_t n = p ? strcspn(p, " ") : 0;
	if (n >= len)
		n = len - 1;
	memcpy(buf, p ? p : "", n);
	buf[n] = '\0';
	return buf;
}

static bool word_matches(const command *c, size_t i, const char *word)
{
	char buf[64];
	if (!strcmp(path_word(c->path, i, buf, sizeof(buf)), word))
		return true;
	if (i + 1 != path_words(c->path))
		return false;
	size_t n = strlen(word);
	for (const char *al = c->aliases; *al;) {
		size_t l = strcspn(al, " ");
		if (l == n && !strncmp(al, word, n))
			return true;
		al += l + (al[l] == ' ');
	}
	return false;
}

/* Prints the commands under prefix (the first depth words of argv). */
void print_help(char **prefix, size_t depth, FILE *f)
{
	fprintf(f, "banger %s: one-command development sandboxes on microVMs\n\nusage: banger", banger_version_number());
	for (size_t i = 0; i < depth; i++)
		fprintf(f, " %s", prefix[i]);
	fprintf(f, " <command> [flags]\n\ncommands:\n");
	for (size_t i = 0; i < ncommands; i++) {
		const command *c = &commands[i];
		bool match = path_words(c->path) > depth;
		for (size_t w = 0; match && w < depth; w++)
			match = word_matches(c, w, prefix[w]);
		if (match)
			fprintf(f, "  %-16s %s\n", c->path, c->summary);
	}
	fprintf(f, "\nRun 'banger <command> --help' for details. Set BANGER_URI=local:[dir] to work without bangerd.\n");
}

void print_command_help(const command *c, FILE *f)
{
	fprintf(f, "usage: banger %s%s%s%s\n\n%s\n", c->path, *c->usage ? " " : "", c->usage, *c->flags ? " [flags]" : "",
		c->summary);
	if (*c->aliases)
		fprintf(f, "\naliases: %s\n", c->aliases);
	fprintf(f, "\nflags:\n  -h, --help\n");
	for (const char *p = c->flags; *p;) {
		size_t len = strcspn(p, " ");
		bool value = p[len - 1] == '=';
		fprintf(f, "  %.*s%s\n", (int)(value ? len - 1 : len), p, value ? " VALUE" : "");
		p += len;
		while (*p == ' ')
			p++;
	}
}

/* True when word names a group of commands ("daemon"). */
static bool is_group(const char *word)
{
	for (size_t i = 0; i < ncommands; i++)
		if (path_words(commands[i].path) > 1 && word_matches(&commands[i], 0, word))
			return true;
	return false;
}

/* Finds the command named by the leading words of argv; prints why not. */
const command *resolve(int argc, char **argv, size_t *depth)
{
	const command *best = NULL;
	size_t best_depth = 0;
	for (size_t i = 0; i < ncommands; i++) {
		const command *c = &commands[i];
		size_t n = path_words(c->path), w = 0;
		while (w < n && (int)w < argc && word_matches(c, w, argv[w]))
			w++;
		if (w == n && n > best_depth) {
			best = c;
			best_depth = n;
		}
	}
	if (best) {
		*depth = best_depth;
		return best;
	}
	/* a group word alone ("banger daemon") shows the group's commands */
	if (is_group(argv[0])) {
		if (argc == 1 || argv[1][0] == '-') {
			print_help(argv, 1, argc > 1 ? stdout : stderr);
			if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
				exit(0);
			return NULL;
		}
		fail(0, "unknown command '%s %s'; run 'banger %s --help'", argv[0], argv[1], argv[0]);
		return NULL;
	}
	fail(0, "unknown command '%s'; run 'banger --help'", argv[0]);
	return NULL;
}

int cmd_help(const command *cmd, args *a)
{
	(void)cmd;
	if (a->argc == 0) {
		print_help(NULL, 0, stdout);
		return 0;
	}
	if (a->argc == 1 && is_group(a->argv[0])) {
		print_help(a->argv, 1, stdout);
		return 0;
	}
	size_t depth;
	const command *c = resolve(a->argc, a->argv, &depth);
	if (!c)
		return EXIT_USAGE;
	print_command_help(c, stdout);
	return 0;
}

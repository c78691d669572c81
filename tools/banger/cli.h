/* Shared pieces of the banger CLI: the command table and output helpers. */
#ifndef BANGER_CLI_H
#define BANGER_CLI_H

#include <banger.h>
#include <stdbool.h>
#include <stdio.h>

enum { EXIT_USAGE = 2, EXIT_DAEMON = 3, EXIT_INTERRUPTED = 130 };

typedef struct {
	bool json;
	int argc;
	char **argv; /* positional arguments */
} args;

typedef struct command {
	const char *path;    /* "daemon status" */
	const char *aliases; /* other names for the last word, space separated */
	const char *usage;   /* positional arguments */
	const char *flags;   /* accepted flags, space separated */
	const char *summary;
	int (*run)(const struct command *cmd, args *a);
} command;

extern const command commands[];
extern const size_t ncommands;

/* main.c */
int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* help.c */
size_t path_words(const char *path);
const char *path_word(const char *path, size_t i, char *buf, size_t len);
void print_help(char **prefix, size_t depth, FILE *f);
void print_command_help(const command *c, FILE *f);
const command *resolve(int argc, char **argv, size_t *depth);
int cmd_help(const command *cmd, args *a);

/* completion.c */
int cmd_completion(const command *cmd, args *a);

#endif

/* Shared pieces of the banger CLI: the command table and output helpers. */
#ifndef BANGER_CLI_H
#define BANGER_CLI_H

#include <banger.h>
#include <stdbool.h>
#include <stdio.h>

enum { EXIT_USAGE = 2, EXIT_DAEMON = 3, EXIT_INTERRUPTED = 130 };

#include <jansson.h>

#define MAX_FLAGS 16

typedef struct {
	bool json;
	int argc;
	char **argv; /* positional arguments */
	struct {
		const char *name; /* points into the command's flags string */
		size_t name_len;
		const char *value; /* "" for boolean flags */
	} flags[MAX_FLAGS];
	int nflags;
	int before_dashes; /* positional arguments before "--", or -1 when there was no "--" */
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

/* main.c: flags, output, calling the API */
const char *flag_value(const args *a, const char *name); /* NULL if absent */
bool flag_set(const args *a, const char *name);
int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int api_fail(int err);
/* msg with the CLI's advice for err added (malloc'd): the library says what is wrong, the CLI what to type. */
char *with_hint(int err, const char *msg);
bool use_color(FILE *f);
const char *paint(FILE *f, const char *status);
void print_table(const char *const *cells, size_t ncols, size_t nrows);
void print_json(json_t *v);
int open_ctx(banger_ctx **ctx);
/* A command's output event: base64 bytes for our stdout or stderr. */
void write_output(const char *stream, const char *b64);
int call(banger_ctx *ctx, const char *method, const char *params, json_t **out);
int call_default(const char *method, json_t **out);
/* Opens the default context and runs method with params (stolen). */
int call_with(const char *method, json_t *params, json_t **out);

/* cmd_update.c */
int cmd_update(const command *cmd, args *a);

/* cmd_system.c */
int cmd_system_install(const command *cmd, args *a);
int cmd_system_status(const command *cmd, args *a);
int cmd_system_restart(const command *cmd, args *a);
int cmd_system_uninstall(const command *cmd, args *a);

/* cmd_vm.c */
int cmd_vm_create(const command *cmd, args *a);
int cmd_vm_run(const command *cmd, args *a);
int cmd_vm_ssh(const command *cmd, args *a);
int cmd_vm_exec(const command *cmd, args *a);
int cmd_vm_cp(const command *cmd, args *a);
int cmd_vm_start(const command *cmd, args *a);
int cmd_vm_stop(const command *cmd, args *a);
int cmd_vm_restart(const command *cmd, args *a);
int cmd_vm_delete(const command *cmd, args *a);
int cmd_vm_kill(const command *cmd, args *a);
int cmd_vm_list(const command *cmd, args *a);
int cmd_vm_show(const command *cmd, args *a);
int cmd_vm_logs(const command *cmd, args *a);
int cmd_vm_generic(const command *cmd, args *a);
int cmd_vm_prune(const command *cmd, args *a);
int cmd_vm_set(const command *cmd, args *a);
int cmd_vm_workspace_prepare(const command *cmd, args *a);
int cmd_vm_workspace_export(const command *cmd, args *a);
int cmd_vm_workspace_show(const command *cmd, args *a);
/* vm.workspace.prepare of path into vm (NULL with dry: no VM needed),
 * reported on stderr (json: the result on stdout); *guest_out (may be
 * NULL) gets the guest path. Returns an exit status. */
int workspace_prepare(const char *vm, const char *path, const char *guest_path, const char *mode, bool untracked,
		      bool dry, bool force, bool json, char **guest_out);
/* Where a command in vm starts: its workspace (malloc'd), or NULL. */
char *workspace_cwd(const char *vm, bool auto_prepare, int *rc);
/* Runs method (vm.exec or one shaped like it: output events, stdin and
 * pty size as input) with params (stolen) and our stdin (interactive:
 * streamed; tty: a pty in the guest, our terminal raw); returns the
 * command's exit status; *json_out (may be NULL) gets the result. */
int exec_call(const char *method, json_t *params, bool interactive, bool tty, json_t **json_out, bool *ran);

/* cmd_session.c */
int cmd_vm_session_start(const command *cmd, args *a);
int cmd_vm_session_list(const command *cmd, args *a);
int cmd_vm_session_show(const command *cmd, args *a);
int cmd_vm_session_logs(const command *cmd, args *a);
int cmd_vm_session_attach(const command *cmd, args *a);
int cmd_vm_session_send(const command *cmd, args *a);
int cmd_vm_session_stop(const command *cmd, args *a);

/* cmd_ssh_config.c */
int cmd_ssh_config(const command *cmd, args *a);

/* cmd_kernel.c */
int cmd_kernel_import(const command *cmd, args *a);
int cmd_kernel_pull(const command *cmd, args *a);
int cmd_kernel_list(const command *cmd, args *a);
int cmd_kernel_show(const command *cmd, args *a);
int cmd_kernel_rm(const command *cmd, args *a);

/* cmd_image.c */
int cmd_image_import(const command *cmd, args *a);
int cmd_image_register(const command *cmd, args *a);
int cmd_image_list(const command *cmd, args *a);
int cmd_image_show(const command *cmd, args *a);
int cmd_image_rm(const command *cmd, args *a);
int cmd_image_build(const command *cmd, args *a);
int cmd_image_pull(const command *cmd, args *a);

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

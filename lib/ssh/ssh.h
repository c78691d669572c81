/* SSH to guests with libssh2: the managed ed25519 key, waiting for sshd,
 * running commands with separate stdout/stderr and the exit status, and
 * pinning each VM's host key (per VM, so a reused IP never trips over an
 * old key). */
#ifndef BANGER_SSH_H
#define BANGER_SSH_H

#include "../core/op.h"

/* Creates the ed25519 key pair at key_path (and .pub, 0600) if missing, by
 * running ssh-keygen; *pubkey (may be NULL) gets the public key line. */
int bng_ssh_ensure_key(const char *key_path, char **pubkey);

/* A fresh ed25519 host key for a VM, made on the host (under emulation the
 * guest spends tens of seconds generating its own) in scratch_dir, which is
 * left as it was: *private_key gets the OpenSSH private key file's text,
 * *public_key "ssh-ed25519 <base64>", the form VM rows pin. */
int bng_ssh_new_host_key(const char *scratch_dir, char **private_key, char **public_key);

/* Arguments quoted one by one for a POSIX shell, joined by spaces, so the
 * guest runs exactly argv ("sh -c 'exit 42'" stays three words). */
char *bng_ssh_quote_argv(json_t *argv);

typedef struct {
	const char *host;
	int port;
	const char *user;
	const char *key_path;   /* private key; public key at key_path.pub */
	const char *known_key;  /* pinned host key ("ssh-ed25519 AAAA…"), NULL to accept and report */
} bng_ssh_target;

/* How long bng_ssh_exec's connect, handshake and login may take (the CLI
 * gives OpenSSH the same: ConnectTimeout=90). */
#define BNG_SSH_CONNECT_TIMEOUT_MS 90000

/* Connects and authenticates, retrying until timeout_ms (cancellable).
 * *host_key (may be NULL) receives the server's key as "type base64". */
int bng_ssh_wait(const bng_ssh_target *t, int timeout_ms, bng_op *op, char **host_key);

/* Runs command (a shell command line) and collects its output (each capped
 * at max_output bytes; more is dropped and flagged). *result =
 * {"exit_code", "signal"?, "stdout", "stderr", "truncated"}. stdin_data may
 * be NULL. */
int bng_ssh_exec(const bng_ssh_target *t, const char *command, const char *stdin_data, size_t max_output,
		 int timeout_ms, bng_op *op, json_t **result);

#endif

#include "ssh.h"
#include "../core/proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include "../core/lazy_ssh2.h"
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static void init_libssh2(void) { libssh2_init(0); }

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int bng_ssh_ensure_key(const char *key_path, char **pubkey)
{
	char *pub_path = bng_asprintf("%s.pub", key_path);
	int rc = 0;
	if (access(key_path, R_OK) != 0 || access(pub_path, R_OK) != 0) {
		char *dir = bng_strdup(key_path);
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
		rc = slash ? bng_mkdir_p(dir, 0700) : 0;
		free(dir);
		unlink(key_path);
		unlink(pub_path);
		const char *argv[] = {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "banger", "-f", key_path, NULL};
		if (!rc)
			rc = bng_run(argv, NULL, NULL, NULL, NULL, NULL);
		if (rc)
			rc = bng_err(rc, "cannot create the SSH key %s (is openssh-client installed?): %s", key_path,
				     banger_error_last());
		if (!rc)
			chmod(key_path, 0600);
	}
	if (!rc && pubkey) {
		rc = bng_read_file(pub_path, pubkey, NULL);
		if (!rc)
			(*pubkey)[strcspn(*pubkey, "\n")] = '\0';
	}
	free(pub_path);
	return rc;
}

int bng_ssh_new_host_key(const char *scratch_dir, char **private_key, char **public_key)
{
	char *path = bng_asprintf("%s/ssh_host_ed25519_key", scratch_dir);
	char *pub_path = bng_asprintf("%s.pub", path);
	unlink(path);
	unlink(pub_path);
	const char *argv[] = {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", path, NULL};
	int rc = bng_run(argv, NULL, NULL, NULL, NULL, NULL);
	if (rc)
		rc = bng_err(rc, "cannot make an SSH host key (is openssh-client installed?): %s", banger_error_last());
	char *pub = NULL;
	if (!rc)
		rc = bng_read_file(path, private_key, NULL);
	if (!rc && (rc = bng_read_file(pub_path, &pub, NULL)) != 0) {
		free(*private_key);
		*private_key = NULL;
	}
	if (!rc) {
		/* "type base64 [comment]": the first two fields */
		char *sp = strchr(pub, ' ');
		pub[sp ? sp - pub + 1 + strcspn(sp + 1, " \n") : strcspn(pub, "\n")] = '\0';
		*public_key = pub;
	}
	unlink(path);
	unlink(pub_path);
	free(path);
	free(pub_path);
	return rc;
}

char *bng_ssh_quote_argv(json_t *argv)
{
	size_t cap = 16, len = 0, i;
	json_t *v;
	json_array_foreach(argv, i, v) cap += strlen(json_string_value(v) ? json_string_value(v) : "") * 4 + 3;
	char *out = bng_xmalloc(cap);
	json_array_foreach(argv, i, v) {
		const char *s = json_string_value(v) ? json_string_value(v) : "";
		if (i)
			out[len++] = ' ';
		out[len++] = '\'';
		for (; *s; s++) {
			if (*s == '\'') { /* close, escaped quote, reopen */
				memcpy(out + len, "'\\''", 4);
				len += 4;
			} else {
				out[len++] = *s;
			}
		}
		out[len++] = '\'';
	}
	out[len] = '\0';
	return out;
}

typedef struct {
	int fd;
	LIBSSH2_SESSION *s;
} conn;

static void conn_close(conn *c)
{
	if (c->s) {
		libssh2_session_disconnect(c->s, "bye");
		libssh2_session_free(c->s);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->s = NULL;
	c->fd = -1;
}

static int tcp_connect(const char *host, int port, int timeout_ms, int *fd_out)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return bng_err(BANGER_EINVAL, "invalid guest address %s", host);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return bng_err_errno(BANGER_EIO, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		return bng_err_errno(BANGER_ECONNECT, e, "cannot connect to %s:%d", host, port);
	}
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int err = 0;
	socklen_t len = sizeof(err);
	if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
		close(fd);
		return bng_err_errno(BANGER_ECONNECT, err ? err : ETIMEDOUT, "cannot connect to %s:%d", host, port);
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	*fd_out = fd;
	return 0;
}

static char *host_key_text(LIBSSH2_SESSION *s)
{
	size_t len;
	int type;
	const char *key = libssh2_session_hostkey(s, &len, &type);
	if (!key)
		return NULL;
	const char *name = type == LIBSSH2_HOSTKEY_TYPE_ED25519 ? "ssh-ed25519"
			 : type == LIBSSH2_HOSTKEY_TYPE_RSA ? "ssh-rsa"
			 : type == LIBSSH2_HOSTKEY_TYPE_ECDSA_256 ? "ecdsa-sha2-nistp256"
			 : type == LIBSSH2_HOSTKEY_TYPE_ECDSA_384 ? "ecdsa-sha2-nistp384"
			 : type == LIBSSH2_HOSTKEY_TYPE_ECDSA_521 ? "ecdsa-sha2-nistp521" : "unknown";
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = bng_xmalloc(strlen(name) + 2 + (len + 2) / 3 * 4 + 1);
	size_t o = (size_t)sprintf(out, "%s ", name);
	const unsigned char *k = (const unsigned char *)key;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)k[i] << 16 | (i + 1 < len ? (unsigned)k[i + 1] << 8 : 0) | (i + 2 < len ? k[i + 2] : 0);
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

/* One connect + handshake + host-key check + auth attempt. */
static int connect_once(const bng_ssh_target *t, int timeout_ms, conn *c, char **host_key)
{
	pthread_once(&init_once, init_libssh2);
	c->fd = -1;
	c->s = NULL;
	int rc = tcp_connect(t->host, t->port ? t->port : 22, timeout_ms, &c->fd);
	if (rc)
		return rc;
	c->s = libssh2_session_init();
	if (!c->s) {
		conn_close(c);
		return bng_err(BANGER_ENOMEM, "libssh2_session_init failed");
	}
	libssh2_session_set_timeout(c->s, timeout_ms);
	if (t->known_key) {
		/* ask for the pinned key's type: the guest may hold others too */
		char type[32];
		snprintf(type, sizeof(type), "%.*s", (int)strcspn(t->known_key, " "), t->known_key);
		libssh2_session_method_pref(c->s, LIBSSH2_METHOD_HOSTKEY,
					    !strcmp(type, "ssh-rsa") ? "rsa-sha2-512,rsa-sha2-256,ssh-rsa" : type);
	}
	if (libssh2_session_handshake(c->s, c->fd) != 0) {
		char *msg;
		libssh2_session_last_error(c->s, &msg, NULL, 0);
		rc = bng_err(BANGER_ECONNECT, "SSH handshake with %s failed: %s", t->host, msg);
		conn_close(c);
		return rc;
	}
	char *key = host_key_text(c->s);
	if (t->known_key && (!key || strcmp(key, t->known_key))) {
		rc = bng_err(BANGER_EPERM, "the SSH host key of %s changed (expected %.40s…, got %.40s…): refusing to "
					   "connect",
			     t->host, t->known_key, key ? key : "none");
		free(key);
		conn_close(c);
		return rc;
	}
	char *pub = bng_asprintf("%s.pub", t->key_path);
	const char *user = t->user ? t->user : "root";
	int a = libssh2_userauth_publickey_fromfile_ex(c->s, user, (unsigned)strlen(user), pub, t->key_path, NULL);
	free(pub);
	if (a != 0) {
		char *msg;
		libssh2_session_last_error(c->s, &msg, NULL, 0);
		rc = bng_err(BANGER_EPERM, "SSH login as %s@%s with %s failed: %s", user, t->host, t->key_path, msg);
		free(key);
		conn_close(c);
		return rc;
	}
	if (host_key)
		*host_key = key;
	else
		free(key);
	return 0;
}

int bng_ssh_wait(const bng_ssh_target *t, int timeout_ms, bng_op *op, char **host_key)
{
	int64_t deadline = now_ms() + timeout_ms;
	int rc;
	for (;;) {
		conn c;
		rc = connect_once(t, 5000, &c, host_key);
		if (!rc) {
			conn_close(&c);
			return 0;
		}
		if (rc == BANGER_EPERM && t->known_key)
			return rc; /* a wrong host key will not fix itself */
		if (now_ms() >= deadline)
			break;
		if (bng_op_sleep(op, 250))
			return BANGER_ECANCELED;
	}
	return bng_err(BANGER_ETIMEDOUT, "guest SSH did not come up within %ds (last error: %s)", timeout_ms / 1000,
		       banger_error_last());
}

static void append(char **buf, size_t *len, size_t max, const char *data, size_t n, bool *truncated)
{
	if (*len + n > max) {
		*truncated = true;
		n = *len < max ? max - *len : 0;
	}
	*buf = realloc(*buf, *len + n + 1);
	if (!*buf)
		abort();
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
}

int bng_ssh_exec(const bng_ssh_target *t, const char *command, const char *stdin_data, size_t max_output,
		 int timeout_ms, bng_op *op, json_t **result)
{
	conn c;
	/* a VM is ready when its sshd listens: on a busy, emulated guest the
	 * first handshake can take long, so it gets the CLI's ssh bound */
	int rc = connect_once(t, BNG_SSH_CONNECT_TIMEOUT_MS, &c, NULL);
	if (rc)
		return rc;
	LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(c.s);
	if (!ch || libssh2_channel_exec(ch, command) != 0) {
		char *msg;
		libssh2_session_last_error(c.s, &msg, NULL, 0);
		rc = bng_err(BANGER_EIO, "cannot start the command over SSH: %s", msg);
		if (ch)
			libssh2_channel_free(ch);
		conn_close(&c);
		return rc;
	}
	if (stdin_data)
		for (size_t off = 0, n = strlen(stdin_data); off < n;) {
			ssize_t w = libssh2_channel_write(ch, stdin_data + off, n - off);
			if (w < 0)
				break;
			off += (size_t)w;
		}
	libssh2_channel_send_eof(ch);
	/* non-blocking from here: drain stdout and stderr together so neither
	 * fills its window while we wait on the other */
	libssh2_session_set_blocking(c.s, 0);
	char *out = bng_strdup(""), *err = bng_strdup("");
	size_t out_len = 0, err_len = 0;
	bool truncated = false;
	int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
	char buf[16384];
	for (;;) {
		ssize_t n1 = libssh2_channel_read(ch, buf, sizeof(buf));
		if (n1 > 0)
			append(&out, &out_len, max_output, buf, (size_t)n1, &truncated);
		ssize_t n2 = libssh2_channel_read_stderr(ch, buf, sizeof(buf));
		if (n2 > 0)
			append(&err, &err_len, max_output, buf, (size_t)n2, &truncated);
		if (n1 > 0 || n2 > 0)
			continue;
		if (libssh2_channel_eof(ch))
			break;
		if ((n1 < 0 && n1 != LIBSSH2_ERROR_EAGAIN) || (n2 < 0 && n2 != LIBSSH2_ERROR_EAGAIN)) {
			rc = bng_err(BANGER_EIO, "lost the SSH connection to %s", t->host);
			break;
		}
		if (bng_op_cancelled(op)) {
			rc = bng_err(BANGER_ECANCELED, "command cancelled");
			break;
		}
		if (deadline && now_ms() > deadline) {
			rc = bng_err(BANGER_ETIMEDOUT, "command did not finish within %ds", timeout_ms / 1000);
			break;
		}
		struct pollfd p = {.fd = c.fd, .events = POLLIN};
		poll(&p, 1, 100);
	}
	libssh2_session_set_blocking(c.s, 1);
	if (!rc) {
		libssh2_channel_close(ch);
		libssh2_channel_wait_closed(ch);
		char *sig = NULL;
		libssh2_channel_get_exit_signal(ch, &sig, NULL, NULL, NULL, NULL, NULL);
		*result = json_pack("{s:i,s:s,s:s,s:b}", "exit_code", libssh2_channel_get_exit_status(ch), "stdout", out,
				    "stderr", err, "truncated", truncated);
		if (sig) {
			json_object_set_new(*result, "signal", json_string(sig));
			libssh2_free(c.s, sig);
		}
	}
	free(out);
	free(err);
	libssh2_channel_free(ch);
	conn_close(&c);
	return rc;
}

/* bangerd: a local engine served on a Unix socket. Glue only: the engine
 * and the server live in libbanger. */
#include <banger.h>

#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

static int min_level = BANGER_LOG_INFO;
static banger_server *server;
static uv_signal_t sig_term, sig_int;

static void log_line(int level, const char *msg, void *ud)
{
	(void)ud;
	static const char *const names[] = {"debug", "info", "warn", "error"};
	if (level < min_level)
		return;
	char ts[32];
	time_t now = time(NULL);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	fprintf(stderr, "%s bangerd[%d] %s: %s\n", ts, (int)getpid(), names[level & 3], msg);
}

static void on_signal(uv_signal_t *h, int signum)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "received %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	log_line(BANGER_LOG_INFO, msg, NULL);
	banger_server_shutdown(server);
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
	(void)h;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bangerd [--socket PATH] [--state DIR] [--log-level LEVEL] [--check-migrations]\n"
		   "\n"
		   "Serves the banger API on a Unix socket. Normally started by the banger CLI.\n"
		   "  --socket PATH        socket to serve (default: $BANGER_SOCKET or <runtime dir>/bangerd.sock)\n"
		   "  --state DIR          state directory (default: $BANGER_STATE_DIR or ~/.local/state/banger)\n"
		   "  --log-level LEVEL    debug|info|warn|error (default: log_level from config.toml)\n"
		   "  --check-migrations   validate the state database's migrations and exit\n"
		   "  --version            print the version stamp and exit\n");
}

/* Runs one method and prints an error prefixed with "bangerd: ". */
static char *call_or_die(banger_ctx *ctx, const char *method)
{
	char *out = NULL;
	if (banger_ctx_call(ctx, method, NULL, &out) != 0) {
		fprintf(stderr, "bangerd: %s\n", banger_error_last());
		return NULL;
	}
	return out;
}

static int level_from(const char *s)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++)
		if (s && !strcmp(s, names[i]))
			return i;
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'}, {"state", required_argument, NULL, 'd'},
		{"log-level", required_argument, NULL, 'l'}, {"check-migrations", no_argument, NULL, 'c'},
		{"version", no_argument, NULL, 'V'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	const char *socket_path = NULL, *state = NULL, *level = NULL;
	int check = 0, opt;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': socket_path = optarg; break;
		case 'd': state = optarg; break;
		case 'l': level = optarg; break;
		case 'c': check = 1; break;
		case 'V': printf("bangerd %s\n", banger_version()); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bangerd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (level && level_from(level) < 0) {
		fprintf(stderr, "bangerd: --log-level must be debug, info, warn or error\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);

	if (check) {
		char *report = NULL;
		if (banger_check_migrations(state, &report) != 0) {
			fprintf(stderr, "bangerd: %s\n", banger_error_last());
			return 1;
		}
		printf("%s\n", report);
		banger_free(report);
		return 0;
	}
	char uri[4096];
	snprintf(uri, sizeof(uri), "local:%s", state ? state : "");
	banger_ctx *ctx;
	banger_opts *opts = NULL;
	int rc = banger_opts_new(&opts);
	if (!rc)
		rc = banger_opts_set_services(opts, 1); /* the DNS zone, the idle watcher */
	if (!rc)
		rc = banger_ctx_open(&ctx, uri, opts);
	banger_opts_free(opts);
	if (rc != 0) {
		/* the library says what is wrong; what to do about it is ours to say */
		bool busy = rc == BANGER_EBUSY && strstr(banger_error_last(), "is in use by pid");
		fprintf(stderr, "bangerd: %s%s\n", banger_error_last(),
			busy ? "; stop it (banger daemon stop) or use another state directory" : "");
		return 1;
	}
	if (!level) {
		/* log_level comes from the resolved config */
		char *cfg = call_or_die(ctx, "config.show");
		json_t *doc = cfg ? json_loads(cfg, 0, NULL) : NULL;
		int l = level_from(json_string_value(json_object_get(
			json_object_get(json_object_get(doc, "values"), "log_level"), "value")));
		if (l >= 0)
			min_level = l;
		json_decref(doc);
		banger_free(cfg);
	} else {
		min_level = level_from(level);
	}

	uv_loop_t *loop = uv_default_loop();
	char *default_socket = NULL;
	if (!socket_path) {
		banger_default_socket(&default_socket);
		socket_path = default_socket;
	}
	if (banger_server_new(&server, ctx, loop, socket_path) != 0) {
		fprintf(stderr, "bangerd: %s\n", banger_error_last());
		banger_ctx_unref(ctx);
		banger_free(default_socket);
		return 1;
	}
	banger_server_set_log_cb(server, log_line, NULL);
	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_start(&sig_int, on_signal, SIGINT);
	char msg[4200];
	snprintf(msg, sizeof(msg), "bangerd %s serving %s", banger_version(), socket_path);
	log_line(BANGER_LOG_INFO, msg, NULL);

	uv_run(loop, UV_RUN_DEFAULT);

	banger_ctx_unref(ctx);
	uv_loop_close(loop);
	banger_free(default_socket);
	log_line(BANGER_LOG_INFO, "exited cleanly", NULL);
	return 0;
}

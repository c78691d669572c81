/* Sessions and a live process from C, in a running VM:
 *   1. a session with a pipe stdin (`cat`), fed with banger_session_send,
 *      its log read back, attached to (a line in, its echo out, detached),
 *      then stopped;
 *   2. a process on a pty: its size set, a line written to its stdin, a
 *      signal sent, its end waited for.
 *
 *   cc vm-session.c $(pkg-config --cflags --libs banger) -o vm-session
 *   ./vm-session unix: VM
 */
#include <banger.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void print_output(int stream, const char *data, size_t len, void *userdata)
{
	(void)stream;
	fprintf(stdout, "%s", (const char *)userdata);
	fwrite(data, 1, len, stdout);
	fflush(stdout);
}

static int fail(const char *what)
{
	fprintf(stderr, "%s: %s\n", what, banger_error_last());
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s URI VM\n", argv[0]);
		return 2;
	}
	banger_ctx *ctx;
	banger_vm *vm;
	if (banger_ctx_open(&ctx, argv[1], NULL) != 0 || banger_vm_lookup(&vm, ctx, argv[2]) != 0)
		return fail("open");

	/* 1. a session the guest keeps running */
	banger_session_options *so;
	banger_session_options_new(&so);
	const char *cat[] = {"cat"};
	banger_session_options_set_argv(so, 1, cat);
	banger_session_options_set_pipe_stdin(so, 1);
	banger_session_options_add_require(so, "cat");
	banger_session *s;
	int rc = banger_session_start(&s, vm, "c-cat", so);
	banger_session_options_free(so);
	if (rc != 0)
		return fail("session start");
	printf("session %s: %s\n", banger_session_name(s), banger_session_state(s));
	if (banger_session_send(s, "fed from C\n") != 0)
		return fail("session send");
	struct timespec moment = {1, 0}; /* for cat to echo it into the log */
	nanosleep(&moment, NULL);
	if (banger_session_logs(s, print_output, "log: ", 0, 1) != 0)
		return fail("session logs");
	banger_process *attached;
	if (banger_session_attach(&attached, s, 0, 0, print_output, "attach: ") != 0)
		return fail("session attach");
	banger_process_write(attached, "via attach\n", 11);
	nanosleep(&moment, NULL);
	banger_process_free(attached); /* detaches: cat keeps running */
	banger_session_refresh(s);
	printf("after detach: %s\n", banger_session_state(s));
	if (banger_session_stop(s) != 0)
		return fail("session stop");
	printf("stopped: %s by %s\n", banger_session_state(s), banger_session_signal(s));
	banger_session **all;
	size_t n;
	if (banger_session_list(&all, &n, vm) != 0)
		return fail("session list");
	printf("%zu session(s)\n", n);
	banger_session_list_free(all, n);
	banger_session_unref(s);

	/* 2. a process to talk to */
	banger_exec_options *eo;
	banger_exec_options_new(&eo);
	const char *sh[] = {"sh", "-c", "stty size; read line; echo read: $line; trap 'echo got TERM; exit 7' TERM; "
					 "while :; do sleep 0.1; done"};
	banger_exec_options_set_argv(eo, 3, sh);
	banger_exec_options_set_tty(eo, 33, 101);
	banger_exec_options_set_output_cb(eo, print_output, "pty: ");
	banger_process *p;
	rc = banger_vm_spawn(&p, vm, eo);
	banger_exec_options_free(eo);
	if (rc != 0)
		return fail("spawn");
	banger_process_write(p, "hello\n", 6);
	banger_process_resize(p, 40, 120);
	/* the TERM is caught once the trap is set: sent after the line was read */
	struct timespec wait = {1, 500000000};
	nanosleep(&wait, NULL);
	banger_process_signal(p, SIGTERM);
	banger_exec_result *res;
	if (banger_process_wait(p, &res) != 0)
		return fail("wait");
	printf("process exit status %d\n", (int)banger_exec_result_exit_code(res));
	banger_exec_result_free(res);
	banger_process_free(p);
	banger_vm_unref(vm);
	banger_ctx_unref(ctx);
	return 0;
}

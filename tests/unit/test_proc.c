/* lib/core/proc.c: bng_spawn_detached, how VMMs are started, and bng_run's
 * helpers dying with their parent. */
#include "check.h"

#include "core/proc.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

/* The file's text once the child wrote its last line ("done"). */
static char *wait_output(const char *path)
{
	for (int i = 0; i < 500; i++) {
		char *text = NULL;
		if (bng_read_file(path, &text, NULL) == 0 && strstr(text, "done\n"))
			return text;
		free(text);
		usleep(10000);
	}
	return NULL;
}

static void test_detached(const char *dir)
{
	char out[512], script[1024];
	snprintf(out, sizeof(out), "%s/out", dir);
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	/* a descriptor of ours without CLOEXEC, and a blocked signal: neither may reach the child */
	CHECK(dup2(fd, 77) == 77);
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, NULL);
	snprintf(script, sizeof(script),
		 "echo ppid=$PPID; echo pid=$$; echo cwd=$(pwd); [ -e /proc/$$/fd/77 ] && echo fd77=leaked || echo fd77=closed; "
		 "grep SigBlk /proc/self/status; read line || echo stdin=eof; echo session=$(cut -d' ' -f6 /proc/$$/stat); "
		 "echo done");
	char *argv[] = {"/bin/sh", "-c", script, NULL};
	pid_t pid = 0;
	CHECK_OK(bng_spawn_detached(argv, fd, fd, dir, &pid));
	sigprocmask(SIG_UNBLOCK, &term, NULL);
	close(77);
	close(fd);
	char *text = wait_output(out);
	CHECK(text != NULL);
	if (!text)
		return;
	char expect[600];
	snprintf(expect, sizeof(expect), "pid=%d\n", (int)pid);
	CHECK_STR_CONTAINS(text, expect); /* *pid is the program's own */
	snprintf(expect, sizeof(expect), "ppid=%d\n", (int)getpid());
	CHECK(strstr(text, expect) == NULL); /* nobody's child here */
	snprintf(expect, sizeof(expect), "cwd=%s\n", dir);
	CHECK_STR_CONTAINS(text, expect);
	CHECK_STR_CONTAINS(text, "fd77=closed");
	CHECK_STR_CONTAINS(text, "SigBlk:\t0000000000000000");
	CHECK_STR_CONTAINS(text, "stdin=eof");
	snprintf(expect, sizeof(expect), "session=%d\n", (int)getsid(0)); /* a session of its own, not ours */
	CHECK(strstr(text, expect) == NULL && strstr(text, "session="));
	free(text);
}

static void test_failures(const char *dir)
{
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	pid_t pid = 0;
	char *missing[] = {"/nonexistent/vmm", NULL};
	CHECK_EQ_INT(bng_spawn_detached(missing, fd, fd, dir, &pid), BANGER_ENOTFOUND);
	CHECK_STR_CONTAINS(banger_error_last(), "cannot start /nonexistent/vmm (exec)");
	char *sh[] = {"/bin/true", NULL};
	CHECK(bng_spawn_detached(sh, fd, fd, "/nonexistent/dir", &pid) != 0);
	CHECK_STR_CONTAINS(banger_error_last(), "cannot start /bin/true (chdir)");
	CHECK_EQ_INT(pid, 0);
	close(fd);
}

/* A helper bng_run started dies when its parent is killed with SIGKILL
 * (a daemon killed mid-operation must not leave git or tar writing). */
static void test_run_dies_with_parent(const char *dir)
{
	char pidfile[512], script[2048];
	snprintf(pidfile, sizeof(pidfile), "%s/helper.pid", dir);
	snprintf(script, sizeof(script), "echo $$ > %s.tmp && mv %s.tmp %s && exec sleep 60", pidfile, pidfile, pidfile);
	pid_t runner = fork();
	CHECK(runner >= 0);
	if (runner == 0) {
		const char *argv[] = {"sh", "-c", script, NULL};
		bng_run(argv, NULL, NULL, NULL, NULL, NULL);
		_exit(0);
	}
	char *text = NULL;
	for (int i = 0; i < 500 && bng_read_file(pidfile, &text, NULL) != 0; i++)
		usleep(10000);
	CHECK(text != NULL);
	pid_t helper = text ? (pid_t)atoi(text) : 0;
	free(text);
	CHECK(helper > 0 && kill(helper, 0) == 0);
	kill(runner, SIGKILL);
	waitpid(runner, NULL, 0);
	bool gone = false;
	for (int i = 0; i < 500 && !gone; i++) {
		gone = bng_proc_gone(helper, 0);
		if (!gone)
			usleep(10000);
	}
	CHECK(gone);
	if (!gone && helper > 0)
		kill(helper, SIGKILL);
}

int main(void)
{
	char dir[] = "/tmp/banger-proc-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	test_detached(dir);
	test_failures(dir);
	test_run_dies_with_parent(dir);
	check_rm_rf(dir);
	return check_summary();
}

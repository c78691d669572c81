"""The guest side of sessions (`banger-agent session ...`, guest/agent/session.c)
run on the host: the agent built for the host with the sanitizers, its
sessions in a directory of the test's (BANGER_AGENT_SESSIONS). Real
processes, a real pty, real signals; the VM tests drive the same verbs
through bangerd in a guest."""
import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import termios
import time

import pytest

from conftest import BUILD, child_env

AGENT = BUILD / "tests" / "unit" / "guest" / "banger-agent-host"


@pytest.fixture
def sess(tmp_path):
    env = child_env()
    env["BANGER_AGENT_SESSIONS"] = str(tmp_path / "sessions")

    def run(*args, input=None, check=None):
        p = subprocess.run([str(AGENT), "session", *args], capture_output=True, text=True, env=env,
                           input=input, timeout=60)
        if check is not None:
            assert p.returncode == check, (args, p.returncode, p.stdout, p.stderr)
        return p

    run.env = env
    run.dir = tmp_path / "sessions"
    yield run
    listed = run("list")
    for s in json.loads(listed.stdout or "[]"):
        if s["state"] == "running":
            run("kill", s["name"])


def show(sess, name):
    return json.loads(sess("show", name, check=0).stdout)


def wait_state(sess, name, state, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = show(sess, name)
        if s["state"] == state:
            return s
        time.sleep(0.05)
    raise AssertionError(f"{name} never reached {state}: {s}")


def test_start_logs_exit_status(sess):
    r = sess("start", "--name", "s1", "--env", "WHO=world", "--cwd", "/tmp", "--",
             "sh", "-c", "echo hello $WHO from $(pwd); echo oops >&2; exit 3", check=0)
    assert json.loads(r.stdout)["name"] == "s1"
    s = wait_state(sess, "s1", "exited")
    assert (s["exit_code"], s["cwd"], s["stdin_mode"], s["tty"]) == (3, "/tmp", "detached", False)
    assert s["argv"][0] == "sh" and s["ended_at"] >= s["started_at"]
    assert sess("logs", "s1", check=0).stdout == "hello world from /tmp\noops\n"
    assert sess("logs", "s1", "--stream", "stdout", check=0).stdout == "hello world from /tmp\n"
    assert sess("logs", "s1", "--stream", "stderr", check=0).stdout == "oops\n"
    assert sess("logs", "s1", "--tail", "1", check=0).stdout == "oops\n"
    assert sess("logs", "s1", "--tail", "0", check=0).stdout == ""
    # an ended session's name can be used again: its old files go
    sess("start", "--name", "s1", "--", "true", check=0)
    assert wait_state(sess, "s1", "exited")["exit_code"] == 0
    assert sess("logs", "s1", check=0).stdout == ""


def test_preflight_and_bad_requests(sess):
    r = sess("start", "--name", "x", "--require-command", "no-such-tool", "--", "true", check=2)
    assert "required command 'no-such-tool' is not on the guest's PATH" in r.stderr
    r = sess("start", "--name", "x", "--", "no-such-program", check=2)
    assert "command 'no-such-program' is not on the guest's PATH" in r.stderr
    r = sess("start", "--name", "x", "--cwd", "/no/such/dir", "--", "true", check=2)
    assert "working directory /no/such/dir does not exist" in r.stderr
    assert "invalid session name" in sess("start", "--name", "../x", "--", "true", check=2).stderr
    assert "--stdin-mode is detached or pipe" in sess("start", "--name", "x", "--stdin-mode", "tty", "--",
                                                      "true", check=2).stderr
    assert "needs a command" in sess("start", "--name", "x", check=2).stderr
    assert "no session 'x'" in sess("show", "x", check=3).stderr
    assert "no session 'x'" in sess("logs", "x", check=3).stderr
    # a failed preflight leaves nothing behind
    assert not (sess.dir / "x").exists()
    sess("start", "--name", "dup", "--", "sleep", "30", check=0)
    assert "already runs" in sess("start", "--name", "dup", "--", "true", check=4).stderr
    assert sess("list", check=0).stdout.count('"name":"dup"') == 1


def test_follow_streams_until_the_end(sess):
    sess("start", "--name", "f", "--", "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.4; done", check=0)
    t0 = time.monotonic()
    p = subprocess.Popen([str(AGENT), "session", "logs", "f", "--follow"], stdout=subprocess.PIPE,
                         env=sess.env, text=True)
    first = p.stdout.readline()
    early = time.monotonic() - t0
    rest = p.stdout.read()
    assert p.wait(timeout=10) == 0
    assert (first, rest) == ("line1\n", "line2\nline3\n")
    assert early < 0.8, early  # it came as written, not at the end


def test_pipe_session_send_is_atomic(sess):
    sess("start", "--name", "p", "--stdin-mode", "pipe", "--", "sh", "-c",
         "while IFS= read -r l; do echo \"got $l\"; done", check=0)
    # concurrent senders: each line whole, none interleaved
    lines = [f"{k}:" + str(k) * 3000 for k in range(8)]
    procs = [subprocess.Popen([str(AGENT), "session", "send", "p"], stdin=subprocess.PIPE, env=sess.env,
                              stdout=subprocess.PIPE) for _ in lines]
    for pr, line in zip(procs, lines):
        pr.stdin.write((line + "\n").encode())
        pr.stdin.close()
    for pr in procs:
        assert pr.wait(timeout=20) == 0
    end = time.monotonic() + 10
    while time.monotonic() < end:
        got = sess("logs", "p", check=0).stdout.splitlines()
        if len(got) == len(lines):
            break
        time.sleep(0.1)
    assert sorted(got) == sorted("got " + line for line in lines)
    sess("start", "--name", "d", "--", "sleep", "30", check=0)
    assert "takes no input" in sess("send", "d", input="x", check=6).stderr


def test_stop_and_kill(sess):
    sess("start", "--name", "t", "--", "sleep", "60", check=0)
    assert json.loads(sess("stop", "t", check=0).stdout) == {"stopped_by": "TERM"}
    assert wait_state(sess, "t", "exited")["signal"] == "TERM"
    sess("start", "--name", "stubborn", "--", "sh", "-c", "trap '' TERM; while :; do sleep 1; done", check=0)
    time.sleep(0.3)  # the trap is set
    assert json.loads(sess("stop", "stubborn", check=0).stdout) == {"stopped_by": "KILL"}
    assert wait_state(sess, "stubborn", "exited")["signal"] == "KILL"
    sess("start", "--name", "k", "--", "sleep", "60", check=0)
    assert json.loads(sess("kill", "k", "--signal", "SIGINT", check=0).stdout) == {"signal": "INT"}
    assert wait_state(sess, "k", "exited")["signal"] == "INT"
    assert "unknown signal" in sess("kill", "k", "--signal", "NOPE", check=2).stderr
    assert "has ended" in sess("stop", "k", check=6).stderr


def test_a_supervisor_killed_reads_as_ended(sess):
    sess("start", "--name", "orphan", "--", "sleep", "60", check=0)
    pid = int((sess.dir / "orphan" / "pid").read_text().split()[0])
    cmd = show(sess, "orphan")["pid"]
    os.kill(pid, 9)
    s = wait_state(sess, "orphan", "exited")
    assert "without an exit status" in s["error"]
    os.kill(cmd, 9)


def pump(fd, seconds, until=None):
    out = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
            if until and until in out:
                break
    return out


def test_tty_attach_is_exclusive_resizes_and_detaches(sess):
    sess("start", "--name", "sh", "--tty", "--", "sh", "-c",
         "while read cmd; do eval \"$cmd\"; done", check=0)
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(str(AGENT), [str(AGENT), "session", "attach", "sh", "--holder", "alice"], sess.env)
    assert b"attached to session sh" in pump(fd, 5, b"Ctrl-]]")
    # a second client is refused, naming the holder
    r = sess("attach", "sh", "--holder", "bob", check=5)
    assert "attached elsewhere (alice)" in r.stderr
    assert show(sess, "sh")["attached"] == "alice"
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    os.kill(pid, 28)  # SIGWINCH, as the terminal would
    time.sleep(0.3)
    os.write(fd, b"stty size\r")
    assert b"33 101" in pump(fd, 5, b"33 101")
    os.write(fd, b"\x1d")  # Ctrl-]
    assert b"detached from session sh" in pump(fd, 5, b"keeps running")
    assert os.waitpid(pid, 0)[1] == 0
    s = show(sess, "sh")
    assert s["state"] == "running" and "attached" not in s
    # attach again after a detach; the output that came meanwhile is in the log
    assert "33 101" in sess("logs", "sh", check=0).stdout
    sess("stop", "sh", check=0)
    assert "has ended" in sess("attach", "sh", check=6).stderr


def test_tail_of_a_live_log_is_exact(sess):
    # a session writing as fast as it can: --tail N is N lines of the log as it was
    sess("start", "--name", "busy", "--", "sh", "-c", "i=0; while :; do i=$((i+1)); echo line $i; done", check=0)
    time.sleep(0.5)
    for n in (1, 2, 5):
        lines = sess("logs", "busy", "--tail", str(n), check=0).stdout.splitlines()
        assert len(lines) == n, lines
        nums = [int(line.split()[1]) for line in lines]
        assert nums == list(range(nums[0], nums[0] + n)), nums
    sess("kill", "busy", check=0)

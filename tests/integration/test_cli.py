"""The banger CLI end to end: autostart, stale-daemon replacement, exit
codes, --json, help, completion, styling, config errors."""
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import banger
from conftest import BANGERD_STALE, Daemon, run_cli
from layers import make_tar


def daemon_pid(env):
    with banger.open(f"unix:{env['socket']}", autostart=False) as ctx:
        st = ctx.status()
    return st["pid"], st["stamp"]


def test_version_matches_library(env):
    p = run_cli("version", "--json")
    assert p.returncode == 0
    v = json.loads(p.stdout)
    assert banger.version() == f"{v['version']} ({v['commit']}, {v['build_date']})"
    bangerd = subprocess.run([os.environ["BANGERD"], "--version"], capture_output=True, text=True)
    assert bangerd.stdout.strip() == f"bangerd {banger.version()}"


def test_first_use_starts_the_daemon(env):
    assert run_cli("daemon", "status").returncode == 3  # status never starts it
    p = run_cli("config", "show", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["values"]["vmm"]["value"] == "auto"
    pid, stamp = daemon_pid(env)
    assert stamp == banger.version()
    st = json.loads(run_cli("daemon", "status", "--json").stdout)
    assert st["running"] is True and st["pid"] == pid and st["socket"] == str(env["socket"])
    assert (env["BANGER_STATE_DIR"] / "bangerd.log").exists()
    p = run_cli("daemon", "stop")
    assert p.returncode == 0 and f"stopped bangerd (pid {pid})" in p.stdout
    assert not env["socket"].exists()
    assert run_cli("daemon", "stop").stdout.startswith("bangerd is not running")


def test_stale_daemon_is_replaced(env):
    old = Daemon(env, exe=BANGERD_STALE)
    _, stamp = daemon_pid(env)
    assert "-stale" in stamp
    p = run_cli("config", "show")
    assert p.returncode == 0, p.stderr
    old.proc.wait(10)
    assert old.proc.returncode == 0  # stopped with SIGTERM, exited cleanly
    pid, stamp = daemon_pid(env)
    assert stamp == banger.version() and pid != old.proc.pid
    run_cli("daemon", "stop")


def service_cgroup():
    """A cgroup named like systemd's for bangerd.service, in the first
    hierarchy this host has mounted (cgroup v2, or v1's name=systemd)."""
    for root in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup"):
        if os.path.exists(f"{root}/cgroup.procs"):
            d = f"{root}/banger-test.slice/bangerd.service"
            os.makedirs(d, exist_ok=True)
            return d
    pytest.fail("no writable cgroup hierarchy to place a daemon in")


def test_supervised_daemon_is_kept(env):
    """A bangerd running as bangerd.service (its cgroup says so) is used as
    it is even when its version differs: a client that stopped it would
    leave the service down."""
    old = Daemon(env, exe=BANGERD_STALE)
    cg = service_cgroup()
    try:
        with open(f"{cg}/cgroup.procs", "w") as f:
            f.write(str(old.proc.pid))
        with banger.open(f"unix:{env['socket']}", autostart=False) as ctx:
            st = ctx.status()
        assert st["supervised"] is True and "-stale" in st["stamp"]
        p = run_cli("config", "show")
        assert p.returncode == 0, p.stderr
        assert old.proc.poll() is None and daemon_pid(env)[0] == old.proc.pid
    finally:
        old.stop()
        os.rmdir(cg)
        os.rmdir(os.path.dirname(cg))


@pytest.fixture
def service(env):
    """A stand-in for bangerd.service: a bangerd as a plain process, with a
    state of its own, on <BANGER_SYSTEM_ROOT>/run/banger/bangerd.sock."""
    root = Path(tempfile.mkdtemp(prefix="bgs-"))  # short: the socket's path must fit
    sock = root / "run" / "banger" / "bangerd.sock"
    sock.parent.mkdir(parents=True)
    d = Daemon({"socket": sock}, extra=("--state", str(root / "state")))
    yield SimpleNamespace(root=root, socket=sock, daemon=d, state=root / "state")
    d.stop()
    shutil.rmtree(root, ignore_errors=True)


def test_unix_uri_finds_the_service_that_runs_as_this_user(env, service, monkeypatch):
    """"unix:" with nothing on the caller's own socket and the service's
    socket owned by the caller: the service's bangerd, no private one."""
    monkeypatch.setenv("BANGER_SYSTEM_ROOT", str(service.root))
    # an explicit runtime directory (this suite's layout) is a layout of the
    # caller's own: never the service's
    with banger.open("unix:") as ctx:
        st = ctx.status()
    assert st["pid"] != service.daemon.proc.pid and st["state_dir"] == str(env["BANGER_STATE_DIR"])
    assert run_cli("daemon", "stop").returncode == 0
    # the default layout: the runtime directory under $XDG_RUNTIME_DIR
    monkeypatch.delenv("BANGER_RUNTIME_DIR")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(env["tmp"] / "xdg"))
    env["socket"] = env["tmp"] / "xdg" / "banger" / "bangerd.sock"
    env["socket"].parent.mkdir(parents=True)
    with banger.open("unix:") as ctx:
        st = ctx.status()
    assert (st["pid"], st["state_dir"]) == (service.daemon.proc.pid, str(service.state))
    p = run_cli("image", "ls", "--json")
    assert p.returncode == 0, p.stderr
    assert not env["socket"].exists()  # nothing autostarted
    # a daemon on the caller's own socket comes first
    own = Daemon(env)
    with banger.open("unix:") as ctx:
        assert ctx.status()["pid"] == own.proc.pid
    own.stop()
    # $BANGER_SOCKET is taken as it is: autostart there
    mine = env["tmp"] / "mine.sock"
    monkeypatch.setenv("BANGER_SOCKET", str(mine))
    with banger.open("unix:") as ctx:
        st = ctx.status()
    assert st["pid"] != service.daemon.proc.pid and st["state_dir"] == str(env["BANGER_STATE_DIR"])
    p = run_cli("daemon", "stop")
    assert p.returncode == 0 and f"pid {st['pid']}" in p.stdout, p.stdout + p.stderr
    monkeypatch.delenv("BANGER_SOCKET")
    # another uid's service is not this caller's: a private bangerd starts
    os.lchown(service.socket, 65534, 65534)
    with banger.open("unix:") as ctx:
        st = ctx.status()
    assert st["pid"] != service.daemon.proc.pid and env["socket"].exists()
    assert run_cli("daemon", "stop").returncode == 0
    os.lchown(service.socket, 0, 0)
    # the service's bangerd died and left its socket: that is systemd's to
    # restart, and autostart does not take the service's socket over
    service.daemon.proc.kill()
    service.daemon.proc.wait()
    assert service.socket.exists()
    with banger.open("unix:") as ctx:
        with pytest.raises(banger.DaemonUnreachable, match=str(service.socket)):
            ctx.status()
    assert not env["socket"].exists()
    assert service.socket.exists() and not (service.state / "bangerd.log").exists()


def test_daemon_socket_prints_path(env):
    p = run_cli("daemon", "socket")
    assert p.stdout.strip() == str(env["socket"])


def test_daemon_status_table(env, daemon):
    p = run_cli("daemon", "status")
    assert p.returncode == 0
    rows = dict(line.split(None, 1) for line in p.stdout.splitlines() if not line.startswith("state dir"))
    assert rows["state"] == "running"
    assert int(rows["pid"]) == daemon.proc.pid
    assert rows["socket"] == str(env["socket"])


def test_doctor_json_and_exit_code(env):
    p = run_cli("doctor", "--json")
    rep = json.loads(p.stdout)
    names = [c["name"] for c in rep["checks"]]
    assert names[0] == "daemon" and rep["checks"][0]["status"] == "PASS"
    assert "driver" in names
    failed = any(c["status"] == "FAIL" for c in rep["checks"])
    assert rep["ok"] is (not failed)
    assert p.returncode == (1 if failed else 0)
    run_cli("daemon", "stop")


def test_doctor_without_a_daemon_still_checks_the_host(env):
    p = run_cli("doctor", env_extra={"BANGERD": "/nonexistent/bangerd"})
    lines = p.stdout.splitlines()
    assert lines[0].startswith("FAIL") and "daemon" in lines[0]
    assert "/nonexistent/bangerd" in lines[0]
    assert any(line.split()[1] == "kvm" for line in lines[1:])
    assert p.returncode == 1


def test_local_uri_needs_no_daemon(env):
    p = run_cli("config", "show", "--json", env_extra={"BANGER_URI": f"local:{env['tmp']}/st"})
    assert p.returncode == 0
    assert not env["socket"].exists()


def test_the_cli_adds_the_advice_the_library_leaves_out(env, tmp_path):
    """The library's message says what is wrong (and a Python caller sees just
    that); the CLI adds what to type, and prints what it printed before."""
    local = {"BANGER_URI": f"local:{env['BANGER_STATE_DIR']}"}
    tar = make_tar(tmp_path / "t.tar", [{"name": "a", "data": b"a"}])
    assert run_cli("image", "import", "one", "--tar", str(tar), env_extra=local).returncode == 0
    cases = [
        (["image", "import", "one", "--tar", str(tar)], "image.import", {"name": "one", "tars": [str(tar)]},
         "image 'one' already exists", "; remove it first (banger image rm one) or pick another --name"),
        (["vm", "show", "nosuch"], "vm.show", {"name": "nosuch"},
         "vm 'nosuch' not found", "; run 'banger vm list --all'"),
        (["image", "show", "nosuch"], "image.show", {"name": "nosuch"},
         "image 'nosuch' not found", "; run 'banger image list'"),
        (["kernel", "show", "nosuch"], "kernel.show", {"name": "nosuch"},
         "kernel 'nosuch' not found", "; run 'banger kernel list'"),
        (["vm", "create", "--image", "nosuch", "--no-start"], "vm.create", {"image": "nosuch", "start": False},
         "image 'nosuch' not found",
         "; run 'banger image list' (build the default with 'banger image build' or pull one)"),
        (["vm", "create", "--image", "one", "--kernel", "nok", "--no-start"], "vm.create",
         {"image": "one", "kernel": "nok", "start": False}, "kernel 'nok' not found",
         "; run 'banger kernel list' (import one: banger kernel import nok --deb linux-image-*.deb)"),
    ]
    for argv, *_, said, advice in cases:
        p = run_cli(*argv, env_extra=local)
        assert (p.returncode, p.stderr) == (1, f"banger: {said}{advice}\n"), argv
    # only where the command makes it true: `image show` does not suggest building one
    p = run_cli("image", "show", "nosuch", env_extra=local)
    assert "build the default" not in p.stderr
    with banger.open(f"local:{env['BANGER_STATE_DIR']}") as ctx:
        for _, method, params, said, _ in cases:
            with pytest.raises(banger.Error) as ei:
                ctx.call(method, params)
            assert ei.value.message == said, method


def test_unknown_command_and_flag(env):
    p = run_cli("tui")  # removed in the reference implementation: must stay rejected
    assert p.returncode == 2
    assert p.stderr.startswith("banger: unknown command 'tui'")
    p = run_cli("daemon", "status", "--bogus")
    assert p.returncode == 2 and "unknown flag '--bogus'" in p.stderr
    p = run_cli("daemon", "explode")
    assert p.returncode == 2 and "unknown command 'daemon explode'" in p.stderr


@pytest.mark.parametrize("argv", [["--help"], ["daemon", "--help"], ["daemon", "status", "--help"],
                                  ["help", "doctor"], ["help", "daemon"], ["completion", "-h"]])
def test_help_everywhere(env, argv):
    p = run_cli(*argv)
    assert p.returncode == 0
    assert "usage: banger" in p.stdout


def test_malformed_config_names_file_and_line(env):
    env["BANGER_CONFIG_DIR"].mkdir(parents=True)
    cfg = env["BANGER_CONFIG_DIR"] / "config.toml"
    cfg.write_text('log_level = "info"\n[vm_defaults]\nvcpu = "two"\n')
    p = run_cli("config", "show", env_extra={"BANGER_URI": "local:"})
    assert p.returncode == 1
    assert p.stderr.strip() == f"banger: {cfg}:3: vm_defaults.vcpu: must be an integer"
    cfg.write_text('bridge_name = "br0"\nbogus_key = 1\n')
    p = run_cli("config", "show", "--json", env_extra={"BANGER_URI": "local:"})
    assert p.returncode == 0
    out = json.loads(p.stdout)
    assert out["values"]["bridge_name"] == {"value": "br0", "source": "config", "line": 1}
    assert out["warnings"] == [f"{cfg}:2: unknown key 'bogus_key' (ignored)"]


def test_daemon_refuses_to_start_on_bad_config(env):
    env["BANGER_CONFIG_DIR"].mkdir(parents=True)
    (env["BANGER_CONFIG_DIR"] / "config.toml").write_text("vmm = 'xen'\n")
    t0 = time.time()
    p = run_cli("config", "show")
    assert p.returncode == 3
    assert "bangerd exited during startup" in p.stderr
    assert "vmm: must be one of" in p.stderr  # the daemon's own reason, from its log
    assert time.time() - t0 < 5
    log = (env["BANGER_STATE_DIR"] / "bangerd.log").read_text()
    assert "config.toml:1: vmm: must be one of auto|firecracker|qemu" in log


def test_no_color_and_pipes_are_plain(env):
    p = run_cli("doctor", env_extra={"BANGER_URI": "local:"})
    assert "\033[" not in p.stdout  # stdout is a pipe here
    # a pseudo-terminal gets colour unless NO_COLOR is set
    script = shutil.which("script")
    if script is None:
        pytest.fail("util-linux 'script' is required for the TTY test")
    cmd = f"{os.path.dirname(os.environ['BANGERD'])}/../banger/banger doctor"
    tty = subprocess.run([script, "-qec", cmd, "/dev/null"], capture_output=True, text=True,
                         env={**os.environ, "BANGER_URI": "local:", "TERM": "xterm"})
    assert "\033[32mPASS" in tty.stdout
    plain = subprocess.run([script, "-qec", cmd, "/dev/null"], capture_output=True, text=True,
                           env={**os.environ, "BANGER_URI": "local:", "TERM": "xterm", "NO_COLOR": "1"})
    assert "\033[" not in plain.stdout and "PASS" in plain.stdout


def test_completion_scripts(env, tmp_path):
    bash = run_cli("completion", "bash").stdout
    assert '"daemon") opts="status stop socket ' in bash
    f = tmp_path / "c.bash"
    f.write_text(bash)
    assert subprocess.run(["bash", "-n", str(f)]).returncode == 0
    # drive the bash completion function for real
    probe = f'source {f}; COMP_WORDS=(banger daemon s); COMP_CWORD=2; _banger; echo "${{COMPREPLY[@]}}"'
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True).stdout.split()
    assert sorted(out) == ["socket", "status", "stop"]
    assert "#compdef banger" in run_cli("completion", "zsh").stdout
    fish = run_cli("completion", "fish").stdout
    assert "complete -c banger" in fish and "__banger_path_is" in fish
    assert run_cli("completion").returncode == 2
    assert not env["socket"].exists()  # completion never starts the daemon

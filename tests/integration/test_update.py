"""banger update against signed test releases served from 127.0.0.1.

The installed banger is a prefix in a temp dir holding copies of
tests/banger-update-test and tests/bangerd-update-test (the CLI and daemon
linked with tests/update/test_stamp.c, so the trusted key comes from
$BANGER_TEST_UPDATE_KEY: a key pair made here with openssl). A release's
binaries are small shell scripts that run the same programs under another
version ($BANGER_TEST_VERSION), or a bangerd that cannot start."""
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import banger
from conftest import BUILD, Daemon, child_env
from httpserver import Server

CLI = BUILD / "tests" / "banger-update-test"
DAEMON = BUILD / "tests" / "bangerd-update-test"
NEW = "0.99.0"


def openssl(*args, **kw):
    subprocess.run(["openssl", *args], check=True, capture_output=True, **kw)


def make_key(path):
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(path))
    pub = path.with_suffix(".pub.pem")
    openssl("ec", "-in", str(path), "-pubout", "-out", str(pub))
    return path, pub


def wrapper(exe, version):
    return f'#!/bin/sh\nBANGER_TEST_VERSION={version} exec {exe} "$@"\n'.encode()


def publish(root, version, files, key, latest=True, arch=None):
    """Writes <root>/<version>/{manifest.json,.sig,files} and <root>/latest."""
    d = root / version
    entries = []
    for path, data in files.items():
        (d / path).parent.mkdir(parents=True, exist_ok=True)
        (d / path).write_bytes(data)
        entries.append({"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                        "mode": "0755"})
    manifest = {"version": version, "date": "2030-01-01", "arch": arch or platform.machine(), "files": entries}
    (d / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    openssl("dgst", "-sha256", "-sign", str(key), "-out", str(d / "manifest.json.sig"), str(d / "manifest.json"))
    if latest:
        (root / "latest").write_text(version + "\n")
    return d


def snapshot(prefix):
    """Every path under prefix with its content hash (or '<dir>')."""
    out = {}
    for p in sorted(prefix.rglob("*")):
        rel = str(p.relative_to(prefix))
        out[rel] = "<dir>" if p.is_dir() and not p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def installed(tmp_path):
    """A key pair, a prefix holding the update-test builds and an empty
    release directory: (key, pub, prefix, releases)."""
    key, pub = make_key(tmp_path / "release.pem")
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    shutil.copy2(CLI, prefix / "bin" / "banger")
    shutil.copy2(DAEMON, prefix / "bin" / "bangerd")
    root = tmp_path / "releases"
    root.mkdir()
    return key, pub, prefix, root


@pytest.fixture
def rel(env, tmp_path):
    """An installed prefix, a key pair, a release server and a runner."""
    key, pub, prefix, root = installed(tmp_path)
    srv = Server(root)

    class R:
        pass

    r = R()
    r.key, r.pub, r.prefix, r.root, r.srv, r.env = key, pub, prefix, root, srv, env
    r.current = json.loads(subprocess.run([str(CLI), "version", "--json"], capture_output=True, text=True,
                                          env={**child_env(), "BANGER_TEST_VERSION": ""}).stdout)["version"]

    def run(*args, kill_at=None, exe=None, url=True, runner=(), timeout=120):
        e = child_env()
        e.pop("BANGER_TEST_VERSION", None)
        e["BANGER_TEST_UPDATE_KEY"] = str(pub)
        e.pop("BANGERD", None)
        if kill_at:
            e["BANGER_TEST_UPDATE_KILL_AT"] = kill_at
        cmd = [*runner, str(exe or prefix / "bin" / "banger"), *args]
        if url and args and args[0] == "update":
            cmd += ["--url", srv.url]
        return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout)

    def release(version=NEW, bangerd=None, **kw):
        files = {"bin/banger": wrapper(CLI, version), "bin/bangerd": bangerd or wrapper(DAEMON, version)}
        return publish(root, version, files, kw.pop("key", key), **kw)

    def status():
        p = run("daemon", "status", "--json", exe=CLI)
        return json.loads(p.stdout) if p.returncode == 0 else None

    r.run, r.release, r.status = run, release, status
    yield r
    run("daemon", "stop", exe=CLI)
    srv.close()


def start_daemon(r):
    d = Daemon(r.env, exe=r.prefix / "bin" / "bangerd")
    st = r.status()
    assert st["stamp"].startswith(r.current + " ")
    return d, st["pid"]


def test_check_reports_newer_release(rel):
    rel.release()
    p = rel.run("update", "--check")
    assert p.returncode == 1, p.stderr
    assert f"banger {rel.current} is installed; {NEW}" in p.stderr
    j = json.loads(rel.run("update", "--check", "--json").stdout)
    assert j["update_available"] is True and j["current"] == rel.current and j["latest"] == NEW
    assert j["result"] == "available"
    # the newest release is this one: 0
    rel.release(rel.current)
    p = rel.run("update", "--check")
    assert p.returncode == 0, p.stderr
    assert not json.loads(rel.run("update", "--check", "--json").stdout)["update_available"]


def test_update_swaps_binaries_and_restarts_daemon(rel):
    rel.release()
    d, pid = start_daemon(rel)
    p = rel.run("update")
    assert p.returncode == 0, p.stderr
    assert f"updating banger {rel.current} -> {NEW}" in p.stderr
    assert "running VMs keep running" in p.stderr
    assert (rel.prefix / "bin" / "bangerd").read_bytes() == wrapper(DAEMON, NEW)
    assert (rel.prefix / "bin" / "banger").read_bytes() == wrapper(CLI, NEW)
    st = rel.status()
    assert st["stamp"].startswith(NEW + " ") and st["pid"] != pid
    assert d.proc.wait(10) == 0  # the old daemon stopped cleanly
    # nothing of the update is left
    assert sorted(x.name for x in rel.prefix.iterdir()) == ["bin"]
    assert sorted(x.name for x in (rel.prefix / "bin").iterdir()) == ["banger", "bangerd"]
    # and the new CLI says so
    v = rel.run("version", "--json", exe=rel.prefix / "bin" / "banger")
    assert json.loads(v.stdout)["version"] == NEW
    # again: nothing to do
    p = rel.run("update", "--prefix", str(rel.prefix), exe=rel.prefix / "bin" / "banger")
    assert p.returncode == 0 and "nothing to do" in p.stderr, p.stderr


def test_update_without_daemon_checks_the_binary(rel):
    rel.release()
    p = rel.run("update", "--json")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["result"] == "updated" and j["target"] == NEW
    assert [f["action"] for f in j["files"]] == ["replace", "replace"]
    assert any("reports " + NEW in line for line in j["log"])
    assert rel.status() is None  # it started no daemon


def test_dry_run_changes_nothing(rel):
    rel.release()
    _, pid = start_daemon(rel)
    before = snapshot(rel.prefix)
    p = rel.run("update", "--dry-run")
    assert p.returncode == 0, p.stderr
    assert f"would replace {rel.prefix}/bin/bangerd" in p.stderr
    assert "would restart bangerd" in p.stderr
    assert snapshot(rel.prefix) == before
    assert rel.status()["pid"] == pid


def test_unknown_version_fails_before_any_change(rel):
    rel.release()
    _, pid = start_daemon(rel)
    before = snapshot(rel.prefix)
    p = rel.run("update", "--to", "9.9.9")
    assert p.returncode == 1
    assert f"there is no release 9.9.9 at {rel.srv.url}" in p.stderr
    assert snapshot(rel.prefix) == before
    assert rel.status()["pid"] == pid
    p = rel.run("update", "--to", "../etc")
    assert p.returncode == 1 and "is not a release version" in p.stderr


@pytest.mark.parametrize("how", ["manifest", "wrong-key", "file", "version", "arch"])
def test_bad_release_is_refused_and_nothing_changes(rel, how, tmp_path):
    _, pid = start_daemon(rel)
    if how == "wrong-key":
        other, _ = make_key(tmp_path / "other.pem")
        rel.release(key=other)
    elif how == "arch":
        rel.release(arch="riscv64")
    else:
        d = rel.release()
    if how == "manifest":  # one byte of the signed manifest changed
        m = (d / "manifest.json").read_text()
        (d / "manifest.json").write_text(m.replace('"mode": "0755"', '"mode": "0775"', 1))
    elif how == "file":  # a served file that is not what the manifest says
        (d / "bin" / "bangerd").write_bytes(wrapper(DAEMON, NEW).replace(b"exec", b"EXEC"))  # same size
    elif how == "version":  # a genuine manifest of another version served under this one
        other = rel.release("0.98.0", latest=False)
        for name in ("manifest.json", "manifest.json.sig"):
            shutil.copy(other / name, d / name)
    before = snapshot(rel.prefix)
    p = rel.run("update")
    assert p.returncode == 1, p.stderr
    expect = {
        "manifest": "is not signed by the release key",
        "wrong-key": "is not signed by the release key",
        "file": "sha256 mismatch",
        "version": f"is for release 0.98.0, not {NEW}",
        "arch": "is built for riscv64",
    }[how]
    assert expect in p.stderr
    assert snapshot(rel.prefix) == before
    assert rel.status()["pid"] == pid
    # --check verifies too
    assert rel.run("update", "--check").returncode == 1


def test_failed_health_check_rolls_back(rel):
    rel.release(bangerd=b"#!/bin/sh\necho 'bangerd: this build is broken' >&2\nexit 1\n")
    _, pid = start_daemon(rel)
    before = snapshot(rel.prefix)
    p = rel.run("update")
    assert p.returncode == 1
    assert "health check" in p.stderr and "this build is broken" in p.stderr
    assert "rolled back: restored bin/bangerd, bin/banger" in p.stderr
    assert snapshot(rel.prefix) == before
    st = rel.status()
    assert st["stamp"].startswith(rel.current + " ") and st["pid"] != pid
    assert f"bangerd {st['stamp']} runs again" in p.stderr


def test_stamp_mismatch_rolls_back(rel):
    """A bangerd that starts but answers as another version fails too."""
    rel.release(bangerd=wrapper(DAEMON, "0.98.0"))
    p = rel.run("update")
    assert p.returncode == 1
    assert "--version says" in p.stderr and "not " + NEW in p.stderr
    assert (rel.prefix / "bin" / "bangerd").read_bytes() == DAEMON.read_bytes()


def test_refuses_without_write_permission(rel):
    rel.release()
    # a prefix nobody can read but not write, outside the 0700 pytest tree
    base = Path(tempfile.mkdtemp(prefix="banger-update-perm-"))
    try:
        os.chmod(base, 0o755)
        prefix = base / "prefix"
        shutil.copytree(rel.prefix, prefix)
        os.chmod(rel.pub.parent, 0o755)
        os.chmod(rel.pub, 0o644)
        before = snapshot(prefix)
        p = rel.run("update", "--prefix", str(prefix), exe=prefix / "bin" / "banger",
                    runner=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"))
        assert p.returncode == 1, p.stderr
        assert f"no permission to change the banger installed in {prefix}" in p.stderr
        assert "sudo banger update" in p.stderr
        assert snapshot(prefix) == before
    finally:
        shutil.rmtree(base)


def test_killed_update_is_rolled_back_by_the_next(rel):
    """Runs the build's CLI on the prefix: the half-swapped bin/banger is not the one updating."""
    rel.release()
    _, pid = start_daemon(rel)
    run = rel.run

    def update(*args, **kw):
        return run("update", "--prefix", str(rel.prefix), *args, exe=CLI, **kw)
    old = {n: (rel.prefix / "bin" / n).read_bytes() for n in ("banger", "bangerd")}
    # killed right after bin/banger was swapped: a half-swapped install on disk
    p = update(kill_at="swap:bin/banger")
    assert p.returncode == -9
    assert (rel.prefix / "bin" / "banger").read_bytes() == wrapper(CLI, NEW)
    assert (rel.prefix / ".banger-update.json").exists()
    assert "interrupted update" in update("--check").stderr
    # the next run rolls it back first (killed again before its own swap)
    p = update(kill_at="journal")
    assert p.returncode == -9
    assert f"rolled back the update from {rel.current} to {NEW} that was interrupted: bin/banger" in p.stderr
    for n, data in old.items():
        assert (rel.prefix / "bin" / n).read_bytes() == data
    assert rel.status()["pid"] == pid  # the old daemon never stopped
    # killed after the daemon was stopped: the rollback starts the old one again
    p = update(kill_at="stopped")
    assert p.returncode == -9 and rel.status() is None
    p = update(kill_at="journal")
    assert "that was interrupted: bin/bangerd, bin/banger" in p.stderr
    st = rel.status()
    assert st["stamp"].startswith(rel.current + " ")
    # and a clean run finishes the update
    p = update()
    assert p.returncode == 0, p.stderr
    assert rel.status()["stamp"].startswith(NEW + " ")
    assert not list(rel.prefix.glob(".banger-update-*")) and not list(rel.prefix.glob("bin/*.prev"))


FAKE_SYSTEMCTL = """#!/usr/bin/python3
# systemctl for bangerd.service where systemd is not PID 1: `restart`
# stops what runs in the unit's cgroup and starts the installed bangerd
# there, detached, as systemd would; every call is logged.
import os, signal, subprocess, sys, time
cg, exe, sock, log = open(sys.argv[0] + ".conf").read().split()
with open(log, "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1:] != ["restart", "bangerd.service"]:
    sys.exit(0)
for pid in open(cg + "/cgroup.procs").read().split():
    os.kill(int(pid), signal.SIGTERM)
for _ in range(100):
    if not open(cg + "/cgroup.procs").read().split():
        break
    time.sleep(0.1)
def enter():
    with open(cg + "/cgroup.procs", "w") as f:
        f.write(str(os.getpid()))
subprocess.Popen([exe, "--socket", sock], start_new_session=True, preexec_fn=enter,
                 stdout=subprocess.DEVNULL, stderr=open(log + ".daemon", "a"))
"""


@pytest.fixture
def service(rel, tmp_path):
    """The installed daemon running as bangerd.service: in a cgroup of that
    name, restarted by a systemctl that really restarts it."""
    from test_cli import service_cgroup
    cg = service_cgroup()
    fake = tmp_path / "systemctl"
    fake.write_text(FAKE_SYSTEMCTL)
    fake.chmod(0o755)
    log = tmp_path / "systemctl.log"
    (tmp_path / "systemctl.conf").write_text(
        f"{cg} {rel.prefix / 'bin' / 'bangerd'} {rel.env['socket']} {log}\n")
    d, pid = start_daemon(rel)
    with open(f"{cg}/cgroup.procs", "w") as f:
        f.write(str(pid))
    assert rel.status()["pid"] == pid
    run = rel.run

    def run_with_systemctl(*args, **kw):
        os.environ["BANGER_SYSTEMCTL"] = str(fake)
        try:
            return run(*args, **kw)
        finally:
            del os.environ["BANGER_SYSTEMCTL"]
    rel.run = run_with_systemctl
    yield log, pid
    rel.run = run
    for p in open(f"{cg}/cgroup.procs").read().split():
        os.kill(int(p), 15)
    for _ in range(100):
        if not open(f"{cg}/cgroup.procs").read().split():
            break
        time.sleep(0.1)
    os.rmdir(cg)
    os.rmdir(os.path.dirname(cg))


def test_update_restarts_the_service_with_systemctl(rel, service):
    """A bangerd that runs as bangerd.service is restarted by systemd, not
    stopped and started by the update (which would leave the service down
    and a daemon outside it)."""
    log, pid = service
    rel.release()
    p = rel.run("update")
    assert p.returncode == 0, p.stderr
    assert "restarted bangerd.service with systemctl" in p.stderr
    assert log.read_text() == "restart bangerd.service\n"
    st = rel.status()
    assert st["stamp"].startswith(NEW + " ") and st["pid"] != pid
    with banger.open(f"unix:{rel.env['socket']}", autostart=False) as ctx:
        assert ctx.status()["supervised"] is True


def test_failed_service_update_rolls_back_through_systemctl(rel, service):
    log, pid = service
    rel.release(bangerd=wrapper(DAEMON, "0.98.0"))  # starts, but answers as another version
    p = rel.run("update")
    assert p.returncode == 1, p.stderr
    assert "not " + NEW in p.stderr and "rolled back" in p.stderr
    # the rollback's restart comes after reset-failed: systemd refuses one once the new
    # bangerd, failing, was restarted up to its start limit (test_vm.py, under systemd)
    assert log.read_text() == "restart bangerd.service\nreset-failed bangerd.service\nrestart bangerd.service\n"
    st = rel.status()
    assert st["stamp"].startswith(rel.current + " ") and st["pid"] != pid
    assert "bangerd.service runs bangerd" in p.stderr

"""scripts/install.sh against signed test releases served from 127.0.0.1,
installing into a prefix in a temp dir. The script under test is the
checked-in one with its embedded key swapped for a key made here."""
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import termios
from pathlib import Path

import pytest

from conftest import ROOT
from httpserver import Server
from test_update import make_key, publish, snapshot

SCRIPT = ROOT / "scripts" / "install.sh"
KEY_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----\n.*?-----END PUBLIC KEY-----", re.S)
FILES = {
    "bin/banger": b"#!/bin/sh\necho banger test\n",
    "bin/bangerd": b"#!/bin/sh\necho bangerd test\n",
    "libexec/banger/banger-agent": b"\x7fELF not really\n",
}


def test_embedded_key_is_the_compiled_in_key():
    """The installer and the library must trust the same key (docs/releases.md)."""
    script_key = KEY_BLOCK.search(SCRIPT.read_text()).group(0)
    assert script_key == (ROOT / "data" / "release-key.pub.pem").read_text().strip()


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck is not installed")
def test_posix_sh():
    subprocess.run(["shellcheck", "-s", "sh", str(SCRIPT)], check=True)


@pytest.fixture
def inst(tmp_path):
    key, pub = make_key(tmp_path / "release.pem")
    root = tmp_path / "releases"
    root.mkdir()
    srv = Server(root)
    # outside pytest's 0700 tree, so an unprivileged run can read the script
    base = Path(tempfile.mkdtemp(prefix="banger-install-"))
    os.chmod(base, 0o755)
    script = base / "install.sh"
    script.write_text(KEY_BLOCK.sub(lambda m: pub.read_text().strip(), SCRIPT.read_text()))
    os.chmod(script, 0o755)

    class I:
        pass

    i = I()
    i.key, i.root, i.srv, i.script, i.prefix, i.base = key, root, srv, script, base / "prefix", base

    def run(*args, env=None, runner=(), tty=None, timeout=60):
        e = {k: v for k, v in os.environ.items() if k != "BANGER_INSTALL_NONINTERACTIVE"}
        e.pop("LD_PRELOAD", None)
        e.update(env or {})
        cmd = [*runner, "sh", str(script), "--url", srv.url, "--prefix", str(i.prefix), *args]
        if tty is None:  # no controlling terminal: /dev/tty cannot be opened
            return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout,
                                  start_new_session=True, stdin=subprocess.DEVNULL)
        master, slave = os.openpty()

        def own_tty():
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e,
                             start_new_session=True, preexec_fn=own_tty, stdin=subprocess.DEVNULL)
        os.close(slave)
        os.write(master, tty.encode())
        out, err = p.communicate(timeout=timeout)
        os.close(master)
        p.stdout_text, p.stderr_text = out, err
        return subprocess.CompletedProcess(cmd, p.returncode, out, err)

    def release(version="0.99.0", files=FILES, **kw):
        return publish(root, version, files, kw.pop("key", key), **kw)

    i.run, i.release = run, release
    yield i
    srv.close()
    shutil.rmtree(base)


def installed(i):
    return {str(p.relative_to(i.prefix)): p.read_bytes() for p in i.prefix.rglob("*") if p.is_file()}


def test_yes_installs_and_says_what_it_changes(inst):
    inst.release()
    (inst.prefix / "bin").mkdir(parents=True)
    (inst.prefix / "bin" / "banger").write_text("old\n")
    p = inst.run("--yes")
    assert p.returncode == 0, p.stderr
    assert installed(inst) == FILES
    assert oct((inst.prefix / "bin" / "bangerd").stat().st_mode & 0o777) == "0o755"
    out = p.stdout
    assert "banger 0.99.0 is downloaded and verified" in out
    assert "you are root already: no sudo" in out
    assert f"{inst.prefix}/bin/banger  (replaces the file there now)" in out
    assert f"{inst.prefix}/bin/bangerd  (new)" in out
    assert f"create the directories: {inst.prefix}/libexec/banger {inst.prefix}/libexec" in out
    assert "It installs no service" in out
    # the plan comes before the change: everything is said before the last line
    assert out.rstrip().splitlines()[-1] == f"installed banger 0.99.0 into {inst.prefix}; try: banger doctor"
    assert not list(inst.prefix.rglob("*.banger-new"))


def test_noninteractive_env(inst):
    inst.release()
    p = inst.run(env={"BANGER_INSTALL_NONINTERACTIVE": "1"})
    assert p.returncode == 0, p.stderr
    assert installed(inst) == FILES


def test_asks_on_the_terminal(inst):
    inst.release()
    p = inst.run(tty="n\n")
    assert p.returncode == 1 and "nothing was installed" in p.stdout
    assert not inst.prefix.exists()
    p = inst.run(tty="y\n")
    assert p.returncode == 0, p.stderr
    assert installed(inst) == FILES


def test_no_terminal_and_no_yes_refuses(inst):
    inst.release()
    p = inst.run()
    assert p.returncode == 1
    assert "no terminal to ask on: rerun with --yes" in p.stderr
    assert not inst.prefix.exists()


def test_version_pin(inst):
    inst.release("0.98.0", files={"bin/banger": b"#!/bin/sh\necho old\n"}, latest=False)
    inst.release()
    p = inst.run("--yes", "--version", "0.98.0")
    assert p.returncode == 0, p.stderr
    assert installed(inst) == {"bin/banger": b"#!/bin/sh\necho old\n"}
    p = inst.run("--yes", "--version", "9.9.9")
    assert p.returncode == 1 and f"there is no release 9.9.9 at {inst.srv.url}" in p.stderr
    p = inst.run("--yes", "--version", "../../etc")
    assert p.returncode == 1 and "is not a release version" in p.stderr


@pytest.mark.parametrize("how", ["manifest", "wrong-key", "file", "path"])
def test_bad_release_installs_nothing(inst, how, tmp_path):
    if how == "wrong-key":
        other, _ = make_key(tmp_path / "other.pem")
        inst.release(key=other)
    elif how == "path":  # signed, but it would write outside the prefix
        inst.release(files={"bin/../../escape": b"x"})
    else:
        d = inst.release()
    if how == "manifest":
        m = (d / "manifest.json").read_text()
        (d / "manifest.json").write_text(m.replace('"0755"', '"0777"', 1))
    elif how == "file":
        (d / "bin" / "bangerd").write_bytes(FILES["bin/bangerd"].replace(b"test", b"evil"))
    p = inst.run("--yes")
    assert p.returncode == 1
    assert {"manifest": "not signed by the banger release key", "wrong-key": "not signed by the banger release key",
            "file": "bin/bangerd: sha256 mismatch", "path": "is not clean"}[how] in p.stderr
    assert not inst.prefix.exists()
    assert not (inst.base / "escape").exists()


def test_unprivileged(inst):
    """As a plain user: downloads and verifies, installs without sudo into a
    prefix it may write, and refuses a prefix it may not when sudo is absent."""
    inst.release()
    nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    env = {"TMPDIR": str(inst.base), "HOME": str(inst.base)}
    os.chmod(inst.base, 0o777)
    inst.prefix.mkdir(mode=0o777)
    os.chmod(inst.prefix, 0o777)
    p = inst.run("--yes", env=env, runner=nobody)
    assert p.returncode == 0, p.stderr
    assert f"as you ({inst.prefix} is writable by you: no sudo)" in p.stdout
    assert installed(inst) == FILES
    shutil.rmtree(inst.prefix)
    inst.prefix.mkdir(mode=0o755)
    p = inst.run("--yes", env=env, runner=nobody)
    if shutil.which("sudo"):
        pytest.skip("sudo is installed here: the no-sudo branch is not reachable")
    assert p.returncode == 1
    assert f"installing into {inst.prefix} needs root, and sudo is not installed" in p.stderr
    assert snapshot(inst.prefix) == {}

"""Fixtures for the integration suite: an isolated banger environment per
test, a real bangerd on a temporary socket, and contexts over both
transports (local engine and daemon)."""
import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("BANGER_BUILD_DIR", ROOT / "build")).resolve()
sys.path.insert(0, str(ROOT / "bindings" / "python"))
os.environ.setdefault("BANGER_LIBRARY", str(BUILD / "lib" / "libbanger.so.0"))

import banger  # noqa: E402

BANGER = BUILD / "tools" / "banger" / "banger"
BANGERD = BUILD / "tools" / "bangerd" / "bangerd"
BANGERD_STALE = BUILD / "tests" / "bangerd-stale"


# Under a sanitized build (tests/run preloads ASan into Python), the banger
# binaries themselves run with leak detection: a leak fails their exit code.
CHILD_ASAN = "detect_leaks=1:abort_on_error=0" if "asan" in os.environ.get("LD_PRELOAD", "") else None
# The preload has done its job once Python is running. Left in the
# environment it reaches every program the in-process engine spawns, and
# wget under a preloaded ASan hangs at exit (debootstrap stalled CI for
# 30 minutes on "Retrieving InRelease").
PYTHON_PRELOAD = os.environ.pop("LD_PRELOAD", None)  # for a Python child that loads the sanitized library


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Points every banger path at a fresh temp tree (also for children)."""
    dirs = {
        "BANGER_CONFIG_DIR": tmp_path / "config",
        "BANGER_STATE_DIR": tmp_path / "state",
        "BANGER_CACHE_DIR": tmp_path / "cache",
        "BANGER_RUNTIME_DIR": tmp_path / "run",
    }
    for k, v in dirs.items():
        monkeypatch.setenv(k, str(v))
    for k in ("BANGER_URI", "BANGER_SOCKET", "BANGER_CONFIG", "NO_COLOR"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("BANGERD", str(BANGERD))
    e = {k: Path(v) for k, v in dirs.items()}
    e["socket"] = dirs["BANGER_RUNTIME_DIR"] / "bangerd.sock"
    e["tmp"] = tmp_path
    return e


def wait_for_socket(path, proc=None, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"bangerd exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(path))
            s.close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {path}")


class Daemon:
    def __init__(self, env, exe=BANGERD, extra=()):
        self.socket = env["socket"]
        self.proc = subprocess.Popen([str(exe), "--socket", str(self.socket), *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=child_env())
        wait_for_socket(self.socket, self.proc)

    def stop(self, sig=15, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout)
        return self.proc.returncode


@pytest.fixture
def daemon(env):
    d = Daemon(env)
    yield d
    d.stop()


@pytest.fixture(params=["local", "daemon"])
def ctx(request, env):
    """A context over each transport: every API test runs twice."""
    if request.param == "local":
        c = banger.open(f"local:{env['BANGER_STATE_DIR']}")
        yield c
        c.close()
    else:
        d = Daemon(env)
        c = banger.open(f"unix:{d.socket}", autostart=False)
        yield c
        c.close()
        assert d.stop() == 0


class RawClient:
    """Speaks the framed protocol directly, for hostile-input tests."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(str(path))

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, obj):
        body = json.dumps(obj).encode()
        self.send_raw(struct.pack(">I", len(body)) + body)

    def recv(self):
        head = self._exactly(4)
        if head is None:
            return None
        (n,) = struct.unpack(">I", head)
        return json.loads(self._exactly(n))

    def _exactly(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def close(self):
        self.sock.close()


def child_env():
    e = dict(os.environ)
    if CHILD_ASAN:  # the banger binaries carry their own ASan runtime: check them for leaks
        e["ASAN_OPTIONS"] = CHILD_ASAN
    return e


def run_cli(*args, env_extra=None, input=None, timeout=60):
    e = child_env()
    if env_extra:
        e.update(env_extra)
    return subprocess.run([str(BANGER), *args], capture_output=True, text=True, env=e, input=input,
                          timeout=timeout)

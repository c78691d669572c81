"""bangerd as a server: hostile frames, disconnects, many clients, peer
credentials, shutdown, state-dir exclusivity, migrations check."""
import os
import signal
import socket
import stat
import struct
import subprocess
import threading
import time

import shutil
import tempfile
from pathlib import Path

import pytest

import banger
from conftest import BANGERD, Daemon, RawClient


def test_socket_is_private(daemon):
    mode = stat.S_IMODE(os.stat(daemon.socket).st_mode)
    assert mode == 0o600


def test_malformed_json_gets_error_and_connection_survives(daemon):
    c = RawClient(daemon.socket)
    c.send_raw(struct.pack(">I", 9) + b"{not json")
    err = c.recv()
    assert err["id"] is None and err["error"]["name"] == "EPROTO"
    assert "malformed frame" in err["error"]["message"]
    c.send({"id": 7, "method": "engine.status"})
    assert c.recv()["result"]["pid"] == daemon.proc.pid
    c.close()


@pytest.mark.parametrize("msg,name,word", [
    (b"[1,2,3]", "EPROTO", "JSON object"),
    (b'{"method":"engine.status"}', "EPROTO", "\"id\""),
    (b'{"id":1}', "EPROTO", "\"method\""),
    (b'{"id":1,"method":"engine.status","params":[]}', "EINVAL", "params"),
    (b'{"id":1,"method":"nope.nope"}', "ENOMETHOD", "nope.nope"),
    (b'{"id":1,"id":2,"method":"engine.status"}', "EPROTO", "duplicate"),
])
def test_bad_requests(daemon, msg, name, word):
    c = RawClient(daemon.socket)
    c.send_raw(struct.pack(">I", len(msg)) + msg)
    err = c.recv()
    assert err["error"]["name"] == name
    assert word in err["error"]["message"]
    c.close()


def test_oversized_frame_is_refused_and_closed(daemon):
    c = RawClient(daemon.socket)
    c.send_raw(struct.pack(">I", 64 * 1024 * 1024) + b"{")
    err = c.recv()
    assert err["error"]["name"] == "ETOOBIG"
    assert c.recv() is None  # the daemon closed this connection
    c.close()
    with banger.open(f"unix:{daemon.socket}", autostart=False) as ctx:
        assert ctx.status()["pid"] == daemon.proc.pid


def test_garbage_bytes_never_wedge_the_daemon(daemon):
    rng = __import__("random").Random(1234)
    for _ in range(20):
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(daemon.socket))
        s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
        s.close()
    with banger.open(f"unix:{daemon.socket}", autostart=False) as ctx:
        assert ctx.status()["pid"] == daemon.proc.pid


def test_client_disconnecting_mid_request(daemon):
    c = RawClient(daemon.socket)
    c.send({"id": 1, "method": "debug.ticks", "params": {"count": 100000, "interval_ms": 10}})
    assert c.recv()["event"]["done"] == 1
    c.close()
    # the daemon cancels the orphaned call and keeps serving
    with banger.open(f"unix:{daemon.socket}", autostart=False) as ctx:
        assert ctx.call("debug.ticks", {"count": 2, "interval_ms": 1}) == {"ticks": 2}
    assert daemon.stop() == 0  # nothing left running keeps it from exiting


def test_cancel_message_cancels_only_that_request(daemon):
    c = RawClient(daemon.socket)
    c.send({"id": "a", "method": "debug.ticks", "params": {"count": 100000, "interval_ms": 10}})
    c.send({"id": "b", "method": "debug.ticks", "params": {"count": 3, "interval_ms": 30}})
    c.send({"id": "a", "cancel": True})
    finals = {}
    while len(finals) < 2:
        m = c.recv()
        if "event" not in m:
            finals[m["id"]] = m
    assert finals["a"]["error"]["name"] == "ECANCELED"
    assert finals["b"]["result"] == {"ticks": 3}
    c.close()


def test_many_clients_at_once(daemon):
    errors = []

    def client(i):
        try:
            with banger.open(f"unix:{daemon.socket}", autostart=False) as ctx:
                assert ctx.call("debug.ticks", {"count": 2, "interval_ms": 50}) == {"ticks": 2}
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(64)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert time.time() - t0 < 20  # served concurrently, not one by one (64 x 100 ms)


@pytest.fixture
def world_dir():
    """A directory uid 65534 can reach (pytest's tmp_path is root-only)."""
    d = tempfile.mkdtemp(prefix="banger-test-")
    os.chmod(d, 0o755)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def test_other_uid_is_refused(env, world_dir, monkeypatch):
    monkeypatch.setenv("BANGER_RUNTIME_DIR", str(world_dir / "run"))
    env["socket"] = world_dir / "run" / "bangerd.sock"
    daemon = Daemon(env)
    os.chmod(daemon.socket, 0o666)  # let the connect through; the credential check must still refuse
    os.chmod(daemon.socket.parent, 0o755)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            c = RawClient(daemon.socket)
            m = c.recv()  # refused at accept, before any request
            os.write(w, (m["error"]["name"] + " " + m["error"]["message"]).encode())
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    out = os.read(r, 4096).decode()
    daemon.stop()
    assert out.startswith("EPERM permission denied")
    assert "uid 65534" in out


def test_sigterm_shuts_down_cleanly(env):
    d = Daemon(env)
    c = RawClient(d.socket)
    c.send({"id": 1, "method": "debug.ticks", "params": {"count": 100000, "interval_ms": 10}})
    assert "event" in c.recv()
    t0 = time.time()
    assert d.stop(signal.SIGTERM) == 0
    assert time.time() - t0 < 5
    assert not d.socket.exists()
    final = c.recv()
    while final is not None and "event" in final:  # ticks sent before the shutdown, still in the socket
        final = c.recv()
    assert final is None or final["error"]["name"] == "ECANCELED"
    assert "exited cleanly" in d.proc.stderr.read()


def test_second_engine_on_same_state_dir(daemon, env):
    with pytest.raises(banger.Busy) as ei:
        banger.open(f"local:{env['BANGER_STATE_DIR']}")
    assert f"in use by pid {daemon.proc.pid}" in ei.value.message and "banger daemon" not in ei.value.message
    p = subprocess.run([str(BANGERD), "--socket", str(env["tmp"] / "other.sock")], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 1
    assert "in use by pid" in p.stderr and "(banger daemon stop)" in p.stderr  # bangerd's advice, not the library's


def test_second_daemon_on_same_socket(daemon, env):
    p = subprocess.run([str(BANGERD), "--state", str(env["tmp"] / "state2")], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 1
    assert "already serving" in p.stderr


def test_stale_socket_file_is_replaced(env):
    env["BANGER_RUNTIME_DIR"].mkdir(parents=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(env["socket"]))
    s.close()  # a dead daemon's leftover: a socket nobody listens on
    d = Daemon(env)
    assert d.stop() == 0


def test_state_dir_not_writable(world_dir, monkeypatch):
    ro = world_dir / "ro"
    ro.mkdir(mode=0o755)
    monkeypatch.setenv("BANGER_CONFIG_DIR", str(world_dir / "nocfg"))
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                banger.open(f"local:{ro}/state")
            except banger.PermissionDenied as e:
                code = 0 if "not writable" in e.message or "cannot create" in e.message else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0


def test_check_migrations(env):
    p = subprocess.run([str(BANGERD), "--check-migrations"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    assert '"pending":[{"version":1' in p.stdout.replace(" ", "")
    # validating must not have served or created a socket
    assert not env["socket"].exists()


def test_check_migrations_refuses_newer_schema(env):
    import sqlite3
    with banger.open(f"local:{env['BANGER_STATE_DIR']}") as ctx:
        ctx.status()
    db = sqlite3.connect(env["BANGER_STATE_DIR"] / "state.db")
    db.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'now')")
    db.commit()
    db.close()
    p = subprocess.run([str(BANGERD), "--check-migrations"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 1
    assert "newer than this banger knows" in p.stderr


ENGINE_ONLY = ("libcurl", "libssh2", "libext2fs", "libarchive", "libsqlite3", "libcrypto")


def mapped_libraries(pid):
    return {Path(line.split()[-1]).name for line in open(f"/proc/{pid}/maps") if ".so" in line}


def test_clients_do_not_load_engine_libraries(daemon):
    """The libraries only the engine uses are opened on first use
    (lib/core/lazy.h): a CLI that talks to bangerd never maps them, and an
    idle bangerd maps SQLite alone; the engine loads the rest when a call
    needs them."""
    from conftest import BANGER, child_env
    e = child_env()
    e["BANGER_SOCKET"] = str(daemon.socket)
    e["LD_DEBUG"] = "files"  # the dynamic loader names every object it opens
    p = subprocess.run([str(BANGER), "vm", "ls"], capture_output=True, text=True, env=e, timeout=60)
    assert p.returncode == 0, p.stderr
    opened = {line.split("file=", 1)[1].split()[0] for line in p.stderr.splitlines() if "file=" in line}
    assert opened and any("libbanger" in f for f in opened), p.stderr[:2000]
    assert not [f for f in opened if f.startswith(ENGINE_ONLY)], opened
    idle = mapped_libraries(daemon.proc.pid)
    assert [f for f in idle if f.startswith(ENGINE_ONLY)] == [next(f for f in idle if f.startswith("libsqlite3"))]
    # an image listing needs nothing more; a pull (libcurl) loads libcurl
    with banger.open(f"unix:{daemon.socket}", autostart=False) as c:
        c.call("image.list", {})
        assert not any(f.startswith("libcurl") for f in mapped_libraries(daemon.proc.pid))
        with pytest.raises(banger.Error):  # nothing listens on port 1
            c.call("image.pull", {"ref": "127.0.0.1:1/nothing:1"})
        assert any(f.startswith("libcurl") for f in mapped_libraries(daemon.proc.pid))

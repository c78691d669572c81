"""The firecracker driver (lib/vmm/firecracker.c), driven through
tests/unit/firecracker/fc-tool against tests/integration/fake_firecracker.py,
which checks every request against Firecracker v1.16.1's API contract
(tests/data/firecracker-contract.json, derived from the swagger by
tests/firecracker/derive_contract.py) and logs it with its verdict.

Also: the contract's drift check against the swagger (needs ../shared, i.e.
the team's checkout), the fake's own validator, and an end-to-end boot with a
real firecracker (needs firecracker on PATH, a working /dev/kvm and
BANGER_TEST_KERNEL_DIR; BANGER_TEST_ROOTFS optional)."""
import fcntl
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import banger
from conftest import BANGERD, BUILD, ROOT, child_env, wait_for_socket
from layers import make_tar
from test_kernel import kernel_debs  # noqa: F401 (session fixture: the real .deb)

FC_TOOL = BUILD / "tests" / "unit" / "firecracker" / "fc-tool"
FAKE = ROOT / "tests" / "integration" / "fake_firecracker.py"
FAKE_JAILER = ROOT / "tests" / "firecracker" / "fake_jailer.py"
CONTRACT = ROOT / "tests" / "data" / "firecracker-contract.json"
DERIVE = ROOT / "tests" / "firecracker" / "derive_contract.py"
SWAGGER = ROOT.parent / "shared" / "reference" / "firecracker-api-v1.16.1.yaml"
BOOT_ARGS = "console=ttyS0 reboot=k panic=1"
CMDLINE = "banger.root=/dev/vda banger.overlay=/dev/vdb quiet"
START_SEQUENCE = ["PUT /logger", "PUT /metrics", "PUT /machine-config", "PUT /boot-source", "PUT /drives/vda",
                  "PUT /drives/vdb", "PUT /network-interfaces/eth0", "PUT /vsock", "PUT /actions"]

needs_tool = pytest.mark.skipif(not FC_TOOL.exists(), reason=f"{FC_TOOL} is not built")


def gone(pid, timeout=5.0):
    """True once pid has exited (a zombie counts: init reaps it, not us)."""
    deadline = time.time() + timeout
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except FileNotFoundError:
            return True
        if time.time() > deadline:
            return False
        time.sleep(0.02)


class VM:
    """One VM's files, config and fake log; runs fc-tool on them."""

    def __init__(self, base, name="vm1", run_dir=None):
        self.base = base
        self.run = Path(run_dir) if run_dir else base / "run"
        self.run.mkdir(mode=0o700, parents=True, exist_ok=True)
        kdir = base / "kernel"
        kdir.mkdir(exist_ok=True)
        (kdir / "vmlinux").write_bytes(b"\x7fELF\x02\x01\x01\x00" + b"\0" * 56)
        (kdir / "initrd.img").write_bytes(b"070701 fake initramfs")
        (base / "rootfs.ext4").write_bytes(b"\0" * 4096)
        (base / "overlay.ext4").write_bytes(b"\0" * 4096)
        self.log = base / f"fake-{name}.jsonl"
        self.console = base / "console.log"
        self.process = base / "process.log"
        self.config = {
            "id": name, "run_dir": str(self.run), "console_log": str(self.console),
            "process_log": str(self.process), "vcpus": 2, "mem_mib": 256, "kernel_dir": str(kdir),
            "cmdline": CMDLINE, "binary": str(FAKE), "tap": "tap-fc0", "mac": "06:00:ac:10:00:02",
            "disks": [{"path": str(base / "rootfs.ext4"), "read_only": True},
                      {"path": str(base / "overlay.ext4"), "read_only": False}],
        }
        self.env = {"FAKE_FC_LOG": str(self.log)}
        self.state_path = base / f"state-{name}.json"
        self.state = None

    def tool(self, *args, env=None, timeout=60):
        e = {**child_env(), **self.env, **(env or {})}
        return subprocess.run([str(FC_TOOL), *map(str, args)], capture_output=True, text=True, env=e,
                              timeout=timeout)

    def write_config(self, **overrides):
        path = self.base / "config.json"
        path.write_text(json.dumps({**self.config, **overrides}))
        return path

    def start(self, expect_ok=True, env=None, **overrides):
        r = self.tool("start", self.write_config(**overrides), env=env)
        if expect_ok:
            assert r.returncode == 0, r.stderr
            self.state = json.loads(r.stdout)
            self.state_path.write_text(r.stdout)
        return r

    def restore(self, snapdir, env=None, **overrides):
        r = self.tool("restore", self.write_config(**overrides), snapdir, env=env)
        assert r.returncode == 0, r.stderr
        self.state = json.loads(r.stdout)
        self.state_path.write_text(r.stdout)
        return r

    def call(self, *args, **kw):
        return self.tool(args[0], self.state_path, *args[1:], **kw)

    def alive(self):
        r = self.call("alive")
        assert r.returncode == 0, r.stderr
        return r.stdout.strip() == "true"

    def entries(self):
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def requests(self):
        return [e for e in self.entries() if "event" not in e]

    def events(self, name=None):
        return [e for e in self.entries() if "event" in e and name in (None, e["event"])]

    def calls(self, skip_get=True):
        """'METHOD path' of every request, GET polls left out."""
        return [f"{e['method']} {e['path']}" for e in self.requests() if not (skip_get and e["method"] == "GET")]

    def body(self, call):
        return [e["body"] for e in self.requests() if f"{e['method']} {e['path']}" == call][-1]

    def fake_pids(self):
        return sorted({e["pid"] for e in self.entries() if "pid" in e})

    def cleanup(self):
        for pid in self.fake_pids():
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


def assert_all_valid(vm):
    """Every request the driver sent met the contract, the way it was sent too."""
    entries = vm.requests()
    assert entries, "the fake saw no request"
    for e in entries:
        assert e["violations"] == [], f"{e['method']} {e['path']} broke the contract: {e['violations']}"
        assert "fake_bug" not in e, e
        h = e["headers"]
        assert "transfer-encoding" not in h, e
        assert "expect" not in h, f"{e['method']} {e['path']} sent Expect: {h['expect']}"
        if e["method"] in ("PUT", "PATCH"):
            assert int(h["content-length"]) == len(json.dumps(e["body"], separators=(",", ":")).encode()), e
            assert h.get("content-type") == "application/json"


@pytest.fixture
def vm(tmp_path):
    v = VM(tmp_path)
    yield v
    v.cleanup()


# ---- the contract ----

def test_contract_matches_swagger():
    """Drift check: the committed contract is what the swagger says."""
    if not SWAGGER.exists():
        reason = f"{SWAGGER} is absent (a clone without ../shared): cannot re-derive the contract"
        print(reason)
        pytest.skip(reason)
    probe = subprocess.run(["/usr/bin/python3", "-c", "import yaml"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("needs PyYAML for /usr/bin/python3 (apt-get install python3-yaml)")
    r = subprocess.run(["/usr/bin/python3", str(DERIVE), str(SWAGGER), "--stdout"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == CONTRACT.read_text(), \
        "tests/data/firecracker-contract.json is stale: run tests/firecracker/derive_contract.py"


def test_contract_covers_the_driver():
    paths = json.loads(CONTRACT.read_text())["paths"]
    used = {("GET", "/"), ("PUT", "/logger"), ("PUT", "/metrics"), ("PUT", "/machine-config"),
            ("PUT", "/boot-source"), ("PUT", "/drives/{drive_id}"), ("PUT", "/network-interfaces/{iface_id}"),
            ("PUT", "/vsock"), ("PUT", "/actions"), ("PATCH", "/vm"), ("PUT", "/snapshot/create"),
            ("PUT", "/snapshot/load")}
    for method, path in used:
        assert method in paths.get(path, {}), f"{method} {path} is not in the contract"
    actions = paths["/actions"]["PUT"]["body"]["schema"]["properties"]["action_type"]["enum"]
    assert {"InstanceStart", "SendCtrlAltDel"} <= set(actions)
    drive = paths["/drives/{drive_id}"]["PUT"]["body"]["schema"]
    assert drive["required"] == ["drive_id", "is_root_device"] and drive["additionalProperties"] is False
    # YAML 1.1 would have read the logger's "Off" as a boolean
    assert "Off" in paths["/logger"]["PUT"]["body"]["schema"]["properties"]["level"]["enum"]


AGENT = BUILD / "guest" / "agent" / "banger-agent"


class RawFake:
    """The fake on its own, spoken to over raw HTTP; its stdout (the serial
    console and, before PUT /logger, its log) lands in self.stdout."""

    def __init__(self, tmp_path, env=None):
        self.tmp = tmp_path
        self.sock_path = tmp_path / "raw.sock"
        self.log = tmp_path / "raw.jsonl"
        self.stdout = tmp_path / "raw.stdout"
        with open(self.stdout, "ab") as out:
            self.proc = subprocess.Popen(["/usr/bin/python3", str(FAKE), "--api-sock", str(self.sock_path), "--id",
                                          "raw"], env={**os.environ, "FAKE_FC_LOG": str(self.log), **(env or {})},
                                         stdout=out, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:  # bound is not yet listening: wait for a connect to work
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(self.sock_path))
                break
            except OSError:
                assert time.time() < deadline and self.proc.poll() is None, "the fake did not start"
                time.sleep(0.02)

    def send(self, raw):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(str(self.sock_path))
        s.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        while len(rest) < length:
            rest += s.recv(65536)
        s.close()
        return status, json.loads(rest) if length else None

    def put(self, path, body, method="PUT", extra=b""):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.send(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(data)}\r\n".encode()
                         + extra + b"\r\n" + data)

    def ok(self, path, body, method="PUT"):
        status, reply = self.put(path, body, method=method)
        assert status == 204, reply

    def boot(self, vsock=True, boot_args="console=ttyS0 reboot=k panic=1"):
        """A minimal running guest (ELF kernel, vsock at <tmp>/v.sock)."""
        kernel = self.tmp / "vmlinux"
        kernel.write_bytes(b"\x7fELF" + b"\0" * 60)
        self.ok("/boot-source", {"kernel_image_path": str(kernel), "boot_args": boot_args})
        if vsock:
            self.ok("/vsock", {"guest_cid": 3, "uds_path": str(self.tmp / "v.sock")})
        self.ok("/actions", {"action_type": "InstanceStart"})

    def vsock(self, port=1024):
        """A hybrid vsock connection to guest port: (socket, "OK ..." line), or
        (None, "") when Firecracker hangs up."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(str(self.tmp / "v.sock"))
        s.sendall(f"CONNECT {port}\n".encode())
        line = b""
        while not line.endswith(b"\n"):
            c = s.recv(1)
            if not c:
                s.close()
                return None, ""
            line += c
        return s, line.decode().strip()

    def events(self):
        return [e for e in map(json.loads, self.log.read_text().splitlines()) if "event" in e]

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def agent_call(s, op, id=1):
    s.sendall(json.dumps({"id": id, "op": op}).encode() + b"\n")
    line = b""
    while not line.endswith(b"\n"):
        c = s.recv(1)
        assert c, f"the agent hung up on {op}"
        line += c
    return json.loads(line)


def wait_exit(proc, timeout=5.0):
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


@pytest.mark.parametrize("method,path,body,why", [
    ("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256, "vcpus": 2}, "unknown field 'vcpus'"),
    ("PUT", "/machine-config", {"vcpu_count": 2}, "missing required field 'mem_size_mib'"),
    ("PUT", "/machine-config", {"vcpu_count": "2", "mem_size_mib": 256}, "expected integer"),
    ("PUT", "/machine-config", {"vcpu_count": 33, "mem_size_mib": 256}, "above the maximum"),
    ("PUT", "/machine-config", {"vcpu_count": True, "mem_size_mib": 256}, "expected integer"),
    ("PUT", "/actions", {"action_type": "Reboot"}, "is not one of"),
    ("PUT", "/drives/vda", {"drive_id": "vda", "path_on_host": "/x"}, "missing required field 'is_root_device'"),
    ("PUT", "/drives/vda", {"drive_id": "vda", "is_root_device": False, "cache_type": "Fast"}, "is not one of"),
    ("PUT", "/drives/vda", {"drive_id": "vda", "is_root_device": False,
                            "rate_limiter": {"bandwidth": {"size": 1}}}, "missing required field 'refill_time'"),
    ("PUT", "/vsock", {"guest_cid": 2, "uds_path": "/tmp/v"}, "below the minimum"),
    ("PUT", "/boot-source", {"kernel_image_path": "/k", "boot_args": "console=ttyS0 root=/dev/vda"}, "policy"),
    ("PATCH", "/vm", {"state": "Stopped"}, "is not one of"),
    ("POST", "/actions", {"action_type": "InstanceStart"}, "Invalid request method"),
    ("PUT", "/no-such-thing", {}, "Invalid request method"),
    ("PUT", "/logger", b"{not json", "not JSON"),
])
def test_fake_rejects_contract_violations(tmp_path, method, path, body, why):
    """The validator the other tests rely on catches what it should."""
    fake = RawFake(tmp_path)
    try:
        status, reply = fake.put(path, body, method=method)
        assert status == 400
        entry = [json.loads(line) for line in fake.log.read_text().splitlines()][-1]
        assert any(why in v for v in entry["violations"]), entry
        assert why in reply["fault_message"] or entry["violations"][0] == reply["fault_message"]
    finally:
        fake.stop()


def test_fake_rejects_bad_transport(tmp_path):
    fake = RawFake(tmp_path)
    try:
        body = b'{"action_type":"FlushMetrics"}'
        status, reply = fake.send(b"PUT /actions HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        assert status == 400 and "Transfer-Encoding" in reply["fault_message"]
        status, reply = fake.send(b"PUT /logger HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert status == 400
        status, reply = fake.put("/mmds", b'{"k":"' + b"x" * 51200 + b'"}')
        assert status == 400 and "51200" in reply["fault_message"]
        status, reply = fake.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert status == 200 and reply["state"] == "Not started" and reply["id"] == "raw"
        status, reply = fake.put("/vm", {"state": "Paused"}, method="PATCH")
        assert status == 400 and "before starting" in reply["fault_message"]
        status, reply = fake.put("/actions", {"action_type": "InstanceStart"})
        assert status == 400 and "kernel configuration" in reply["fault_message"]
    finally:
        fake.stop()


def test_fake_logs_to_stdout_until_put_logger(tmp_path):
    fake = RawFake(tmp_path)
    try:
        fake.ok("/machine-config", {"vcpu_count": 1, "mem_size_mib": 128})
        out = fake.stdout.read_text()
        assert "[raw:main] Running Firecracker v1.16.1" in out
        assert '[raw:fc_api] The API server received a Put request on "/machine-config"' in out
        log = tmp_path / "fc.log"
        log.write_text("")
        fake.ok("/logger", {"log_path": str(log), "level": "Info"})
        fake.ok("/logger", {"log_path": str(log), "level": "Warning"})  # again: Logger::update, before boot
        fake.ok("/logger", {"log_path": str(log), "level": "Info"})
        status, reply = fake.put("/drives/vda", {"drive_id": "vda", "is_root_device": False,
                                                 "path_on_host": "/no/such/file"})
        assert status == 400
        assert "/drives/vda" not in fake.stdout.read_text()  # the file has it now
        text = log.read_text()
        assert '"/drives/vda"' in text and "Received Error. Status code: 400" in text
        status, reply = fake.put("/logger", {"log_path": str(tmp_path / "missing.log")})
        assert status == 400 and "Failed to open target file" in reply["fault_message"]  # never created
        fake.boot(vsock=False)
        status, reply = fake.put("/logger", {"level": "Info"})
        assert status == 400 and "after starting" in reply["fault_message"]
    finally:
        fake.stop()


def test_fake_startup_error_goes_to_stdout(tmp_path):
    r = subprocess.run(["/usr/bin/python3", str(FAKE), "--api-sock", str(tmp_path / "a.sock"), "--id", "x1"],
                       env={**os.environ, "FAKE_FC_EXIT_AT_START": "Something specific broke"}, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1
    assert "[x1:main] Something specific broke" in r.stdout
    assert "Firecracker exiting with error. exit_code=1" in r.stdout
    assert r.stderr.startswith("Error: ") and "Something specific broke" not in r.stderr  # Debug form only


def test_fake_serialises_api_requests(tmp_path):
    """One API thread: GET / waits for a slow snapshot."""
    fake = RawFake(tmp_path, env={"FAKE_FC_SNAPSHOT_DELAY": "1.5"})
    try:
        fake.boot(vsock=False)
        fake.ok("/vm", {"state": "Paused"}, method="PATCH")
        snap = threading.Thread(target=fake.ok, args=("/snapshot/create", {
            "snapshot_path": str(tmp_path / "s"), "mem_file_path": str(tmp_path / "m")}))
        snap.start()
        time.sleep(0.3)
        t0 = time.time()
        status, reply = fake.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert status == 200 and time.time() - t0 > 0.8
        snap.join()
    finally:
        fake.stop()


@pytest.mark.skipif(not AGENT.exists(), reason=f"{AGENT} is not built")
def test_fake_serves_the_agent_over_hybrid_vsock(tmp_path):
    fake = RawFake(tmp_path, env={"FAKE_FC_AGENT": str(AGENT)})
    try:
        fake.boot()
        s, ok = fake.vsock(1024)
        assert ok.startswith("OK ") and int(ok[3:]) >= 1 << 30
        health = agent_call(s, "health")
        assert health["ok"] and health["boot_id"]
        assert agent_call(s, "sync", 2)["ok"]
        s.close()
        assert fake.vsock(5000) == (None, "")  # nothing listens there: Firecracker hangs up
        # poweroff: the guest halts, Firecracker does not exit (no ACPI power-off on x86)
        s, ok = fake.vsock()
        assert agent_call(s, "poweroff", 3) == {"id": 3, "ok": True}
        time.sleep(0.5)
        assert fake.proc.poll() is None
        assert fake.vsock() == (None, "")  # the halted guest's agent is gone
        fake.ok("/actions", {"action_type": "SendCtrlAltDel"})  # 204, and nothing happens
        assert wait_exit(fake.proc, 1) is None
        assert "reboot: Power down" in fake.stdout.read_text()
    finally:
        fake.stop()


@pytest.mark.skipif(not AGENT.exists(), reason=f"{AGENT} is not built")
def test_fake_exits_on_agent_reboot(tmp_path):
    fake = RawFake(tmp_path, env={"FAKE_FC_AGENT": str(AGENT)})
    try:
        fake.boot()
        s, _ = fake.vsock()
        assert agent_call(s, "reboot") == {"id": 1, "ok": True}
        assert wait_exit(fake.proc) == 0
        assert [e["reason"] for e in fake.events() if e["event"] == "exit"] == \
            ["guest reboot (i8042 reset, reboot=k)"]
    finally:
        fake.stop()


def test_fake_exits_on_ctrl_alt_del_and_panic(tmp_path):
    fake = RawFake(tmp_path)
    try:
        fake.boot(vsock=False)
        fake.ok("/actions", {"action_type": "SendCtrlAltDel"})
        assert wait_exit(fake.proc) == 0
    finally:
        fake.stop()
    (tmp_path / "2").mkdir()
    fake = RawFake(tmp_path / "2", env={"FAKE_FC_PANIC_AFTER": "0.2"})
    try:
        fake.boot(vsock=False)
        assert wait_exit(fake.proc) == 0
        assert "Kernel panic - not syncing" in fake.stdout.read_text()
        assert "guest panic" in [e for e in fake.events() if e["event"] == "exit"][-1]["reason"]
    finally:
        fake.stop()


# ---- the driver against the fake ----

@needs_tool
def test_start_sequence_follows_the_contract(vm):
    vm.start()
    st = vm.state
    assert st["driver"] == "firecracker" and st["pid"] > 1
    assert st["control_socket"] == str(vm.run / "api.sock")
    assert st["agent"] == {"kind": "vsock_uds", "path": str(vm.run / "vsock.sock"), "port": 1024, "cid": 3}
    assert os.path.realpath(f"/proc/{st['pid']}/exe") == st["exe"]
    assert_all_valid(vm)
    assert vm.calls() == START_SEQUENCE
    entries = vm.requests()
    assert entries[0]["method"] == "GET" and entries[0]["path"] == "/"  # the readiness probe
    assert all(e["status"] in (200, 204) for e in entries)
    assert vm.body("PUT /logger") == {"log_path": str(vm.run / "firecracker.log"), "level": "Info"}
    assert vm.body("PUT /metrics") == {"metrics_path": str(vm.run / "firecracker.metrics")}
    assert vm.body("PUT /machine-config") == {"vcpu_count": 2, "mem_size_mib": 256, "smt": False}
    kdir = Path(vm.config["kernel_dir"])
    assert vm.body("PUT /boot-source") == {"kernel_image_path": str(kdir / "vmlinux"),
                                           "initrd_path": str(kdir / "initrd.img"),
                                           "boot_args": f"{BOOT_ARGS} {CMDLINE}"}
    assert vm.body("PUT /drives/vda") == {"drive_id": "vda", "path_on_host": vm.config["disks"][0]["path"],
                                          "is_root_device": False, "is_read_only": True}
    # the writable disk is Writeback: with the default (Unsafe) a guest's fsync never reaches the host disk
    assert vm.body("PUT /drives/vdb") == {"drive_id": "vdb", "path_on_host": vm.config["disks"][1]["path"],
                                          "is_root_device": False, "is_read_only": False,
                                          "cache_type": "Writeback"}
    assert vm.body("PUT /network-interfaces/eth0") == {"iface_id": "eth0", "host_dev_name": "tap-fc0",
                                                       "guest_mac": "06:00:ac:10:00:02"}
    assert vm.body("PUT /vsock") == {"guest_cid": 3, "uds_path": str(vm.run / "vsock.sock")}
    assert vm.body("PUT /actions") == {"action_type": "InstanceStart"}
    assert (vm.run / "vsock.sock").is_socket()
    # stdout is the guest's serial console; stderr the VMM's own log
    console = vm.console.read_text()
    assert "fake guest: booted" in console
    assert f"Command line: {BOOT_ARGS} {CMDLINE} virtio_mmio.device=" in console
    # Firecracker's own log goes to stdout too until PUT /logger names a file
    assert "[vm1:main] Running Firecracker v1.16.1" in console
    assert '[vm1:fc_api] The API server received a Put request on "/logger"' in console
    assert "/machine-config" not in console  # logged to firecracker.log from then on
    assert '"/machine-config"' in (vm.run / "firecracker.log").read_text()
    # detached: another session than ours (no terminal signals), reparented
    with open(f"/proc/{st['pid']}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    assert int(fields[3]) != os.getsid(0) and int(fields[1]) != os.getpid()
    assert vm.alive()
    r = vm.call("kill")
    assert r.returncode == 0, r.stderr
    assert gone(st["pid"], 0)
    assert not vm.alive()
    assert not (vm.run / "api.sock").exists()


@needs_tool
def test_minimal_config(vm):
    """No network, no disks, no initrd: those requests are left out."""
    os.unlink(Path(vm.config["kernel_dir"]) / "initrd.img")
    vm.start(tap=None, mac=None, disks=[], cmdline=None)
    assert_all_valid(vm)
    assert vm.calls() == ["PUT /logger", "PUT /metrics", "PUT /machine-config", "PUT /boot-source", "PUT /vsock",
                          "PUT /actions"]
    assert vm.body("PUT /boot-source") == {"kernel_image_path": str(Path(vm.config["kernel_dir"]) / "vmlinux"),
                                           "boot_args": BOOT_ARGS}
    assert vm.call("kill").returncode == 0


@needs_tool
@pytest.mark.parametrize("where", ["PUT /logger", "PUT /machine-config", "PUT /boot-source", "PUT /drives/vda",
                                   "PUT /drives/vdb", "PUT /network-interfaces/eth0", "PUT /vsock", "PUT /actions"])
def test_fault_propagates_and_nothing_is_left(vm, where):
    r = vm.start(expect_ok=False, env={"FAKE_FC_FAULT": where})
    assert r.returncode == 1
    assert f"firecracker: {where}: fake fault injected on {where}" in r.stderr
    assert "EIO" in r.stderr
    assert_all_valid(vm)
    assert vm.calls()[-1] == where  # nothing sent after the failure
    (pid,) = vm.fake_pids()
    assert gone(pid, 0), "the failed VMM is still running"
    assert not (vm.run / "api.sock").exists() and not (vm.run / "vsock.sock").exists()


@needs_tool
def test_stale_sockets_are_replaced(vm):
    for name in ("api.sock", "vsock.sock"):  # bound, then abandoned: nobody listens
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(vm.run / name))
        s.close()
    vm.start()
    assert_all_valid(vm)
    assert vm.alive()
    assert vm.call("kill").returncode == 0


@needs_tool
def test_live_socket_is_not_stolen(vm):
    vm.start()
    first = dict(vm.state)
    r = vm.start(expect_ok=False)
    assert r.returncode == 1 and "EBUSY" in r.stderr and "already answers" in r.stderr
    vm.state_path.write_text(json.dumps(first))
    assert vm.alive()
    assert vm.call("kill").returncode == 0


@needs_tool
def test_too_long_socket_path_is_refused(vm, tmp_path):
    deep = tmp_path / ("d" * 100)
    deep.mkdir(mode=0o700)
    r = vm.start(expect_ok=False, run_dir=str(deep))
    assert r.returncode == 1
    assert "EINVAL" in r.stderr and "at most 107" in r.stderr and str(deep) in r.stderr
    assert not vm.log.exists(), "a VMM was started anyway"


@needs_tool
def test_vmm_dying_at_start_is_explained(vm):
    """Until PUT /logger Firecracker logs to stdout (the console log): the
    reason is there, stderr only has main.rs's Debug-formatted "Error: ..."."""
    r = vm.start(expect_ok=False, env={"FAKE_FC_EXIT_AT_START": "Error creating KVM object: No such device (os "
                                                                "error 19)"})
    assert r.returncode == 1
    assert "exited during startup: Error creating KVM object: No such device (os error 19)" in r.stderr
    assert str(vm.console) in r.stderr
    assert "RunWithApi" not in r.stderr and r.stderr.count("exited") == 1


@needs_tool
def test_start_is_cancellable(vm):
    t0 = time.time()
    r = vm.start(expect_ok=False, env={"FAKE_FC_START_DELAY": "20"}, cancel_after_ms=300)
    assert r.returncode == 1 and "ECANCELED" in r.stderr
    assert time.time() - t0 < 10
    assert not vm.log.exists()


@needs_tool
def test_pause_resume_snapshot_restore(vm, tmp_path):
    vm.start()
    pid = vm.state["pid"]
    assert vm.call("pause").returncode == 0
    assert vm.call("resume").returncode == 0
    snap = tmp_path / "snap"
    r = vm.call("snapshot", snap)
    assert r.returncode == 0, r.stderr
    assert_all_valid(vm)
    assert vm.calls()[len(START_SEQUENCE):] == ["PATCH /vm", "PATCH /vm", "PATCH /vm", "PUT /snapshot/create",
                                                "PATCH /vm"]
    states = [e["body"]["state"] for e in vm.requests() if e["method"] == "PATCH"]
    assert states == ["Paused", "Resumed", "Paused", "Resumed"]
    body = vm.body("PUT /snapshot/create")
    assert body == {"snapshot_type": "Full", "snapshot_path": str(snap / "vmstate.partial"),
                    "mem_file_path": str(snap / "memory.partial")}
    assert sorted(p.name for p in snap.iterdir()) == ["memory", "vmstate"]
    info = [e for e in vm.requests() if e["method"] == "GET"][-1]
    assert info["state"] == "Running"  # left running, as it was found

    # a paused VM stays paused
    assert vm.call("pause").returncode == 0
    assert vm.call("snapshot", snap).returncode == 0
    assert vm.calls()[-2:] == ["PATCH /vm", "PUT /snapshot/create"]
    assert vm.requests()[-1]["state"] == "Paused"
    assert vm.call("kill").returncode == 0
    assert gone(pid, 0)

    # restore in a fresh process: only logger and metrics before the load
    vm.log.unlink()
    vm.restore(snap)
    assert_all_valid(vm)
    assert vm.calls() == ["PUT /logger", "PUT /metrics", "PUT /snapshot/load"]
    assert vm.body("PUT /snapshot/load") == {
        "snapshot_path": str(snap / "vmstate"),
        "mem_backend": {"backend_type": "File", "backend_path": str(snap / "memory")},
        "resume_vm": True, "vsock_override": {"uds_path": str(vm.run / "vsock.sock")},
        "network_overrides": [{"iface_id": "eth0", "host_dev_name": "tap-fc0"}]}
    assert vm.state["pid"] != pid
    assert vm.alive()
    assert vm.requests()[-1]["state"] == "Running"
    assert vm.call("kill").returncode == 0


@needs_tool
def test_restore_failure_kills_the_new_process(vm, tmp_path):
    vm.start()
    snap = tmp_path / "snap"
    assert vm.call("snapshot", snap).returncode == 0
    assert vm.call("kill").returncode == 0
    vm.log.unlink()
    r = vm.tool("restore", vm.write_config(), snap, env={"FAKE_FC_FAULT": "PUT /snapshot/load"})
    assert r.returncode == 1 and "firecracker: PUT /snapshot/load: fake fault injected" in r.stderr
    (pid,) = vm.fake_pids()
    assert gone(pid, 0)


@needs_tool
def test_pause_reports_the_fault(vm):
    vm.start(env={"FAKE_FC_FAULT": "PATCH /vm"})
    r = vm.call("pause", env={})
    assert r.returncode == 1 and "firecracker: PATCH /vm: fake fault injected on PATCH /vm" in r.stderr
    assert vm.call("kill").returncode == 0


@needs_tool
def test_shutdown_sends_ctrl_alt_del(vm):
    vm.start()
    pid = vm.state["pid"]
    r = vm.call("shutdown", 5000)
    assert r.returncode == 0, r.stderr
    assert_all_valid(vm)
    assert vm.calls()[-1] == "PUT /actions"
    assert vm.requests()[-1]["body"] == {"action_type": "SendCtrlAltDel"}
    assert gone(pid, 0)
    assert "reboot: Restarting system" in vm.console.read_text()
    assert not vm.alive()
    assert not (vm.run / "api.sock").exists()
    # again, on a VM that is gone: nothing to do
    assert vm.call("shutdown", 100).returncode == 0


@needs_tool
def test_shutdown_times_out_when_the_guest_ignores_it(vm):
    vm.start(env={"FAKE_FC_IGNORE_CTRLALTDEL": "1"})
    t0 = time.time()
    r = vm.call("shutdown", 400)
    assert r.returncode == 1 and "ETIMEDOUT" in r.stderr and "kill" in r.stderr
    assert 0.3 < time.time() - t0 < 5
    assert vm.alive()
    assert vm.call("kill", 15).returncode == 0  # SIGTERM: Firecracker has no handler
    assert not vm.alive()


@needs_tool
def test_busy_api_is_not_a_dead_vm(vm, tmp_path):
    """Firecracker's one API thread is busy for the whole snapshot: GET /
    waits. Liveness comes from the process, and a second start still sees
    the socket taken."""
    vm.start(env={"FAKE_FC_SNAPSHOT_DELAY": "4"})
    snap = threading.Thread(target=vm.call, args=("snapshot", tmp_path / "snap"))
    snap.start()
    try:
        deadline = time.time() + 5  # until the fake is inside the snapshot
        while not vm.events("busy"):
            assert time.time() < deadline
            time.sleep(0.05)
        time.sleep(0.2)
        t0 = time.time()
        assert vm.alive()
        assert time.time() - t0 < 1.5
        first = dict(vm.state)
        r = vm.start(expect_ok=False)
        assert r.returncode == 1 and "EBUSY" in r.stderr and "already answers" in r.stderr
        vm.state_path.write_text(json.dumps(first))
        assert (vm.run / "api.sock").is_socket()
    finally:
        snap.join()
    assert vm.alive()
    assert vm.call("kill").returncode == 0


@needs_tool
def test_log_and_metrics_are_capped(vm):
    """Firecracker writes firecracker.log and .metrics (a line a minute) for
    as long as it runs, through a descriptor without O_APPEND. Past the cap
    the driver rotates them (.1) whenever it looks at the VM, and the file
    really starts again (O_APPEND set on Firecracker's descriptor), rather
    than growing past a hole."""
    cap = 64 * 1024
    vm.config["log_max"] = cap  # config firecracker_log_max
    vm.start(env={"FAKE_FC_METRICS_EVERY": "0.01"})
    metrics = vm.run / "firecracker.metrics"
    deadline = time.time() + 20
    while metrics.stat().st_size <= cap:
        assert time.time() < deadline, "the fake wrote no metrics"
        time.sleep(0.05)
    with open(f"/proc/{vm.state['pid']}/fdinfo/" + next(
            fd for fd in os.listdir(f"/proc/{vm.state['pid']}/fd")
            if os.path.realpath(f"/proc/{vm.state['pid']}/fd/{fd}") == str(metrics))) as f:
        flags = int(next(line for line in f if line.startswith("flags:")).split()[1], 8)
    assert flags & os.O_APPEND, "the driver did not set O_APPEND on Firecracker's descriptor"
    assert vm.alive()
    rotated = Path(str(metrics) + ".1")
    assert rotated.exists() and cap // 2 < rotated.stat().st_size <= cap
    lines = rotated.read_text().splitlines()
    assert all(line.startswith("{") and line.endswith("}") for line in lines)  # whole lines, the newest
    time.sleep(0.2)
    st = metrics.stat()
    assert 0 < st.st_size < cap, st.st_size  # started again at 0, not past a hole
    assert vm.alive()
    assert vm.call("kill").returncode == 0


@needs_tool
def test_log_rotation_follows_no_link_in_the_jail(jailed, tmp_path):
    """The jail's uid owns the jail root: a link it puts where the log was
    must not make the driver (root) copy or truncate another file."""
    vm = jailed
    vm.config["log_max"] = 10
    vm.start()
    victim = tmp_path / "victim"
    victim.write_text("x" * 100)
    log = Path(vm.state["jail_root"]) / "firecracker.log"
    log.unlink()
    log.symlink_to(victim)
    assert vm.alive()
    assert victim.read_text() == "x" * 100
    assert not (Path(vm.state["jail_root"]) / "firecracker.log.1").exists()
    assert vm.call("kill").returncode == 0
    assert victim.read_text() == "x" * 100


@needs_tool
def test_start_kills_an_unrecorded_jailed_vmm(jailed):
    """A jailed VMM nobody recorded (the daemon died before writing its
    state) names no host path on its command line. The next start of the VM
    must find it through its jail, not wipe the jail from under it."""
    vm = jailed
    vm.start()
    first = vm.state["pid"]
    with open(f"/proc/{first}/cmdline", "rb") as f:
        assert str(vm.run).encode() not in f.read()
    for name in ("api.sock", "vsock.sock"):  # as boot() wipes the runtime dir
        (vm.run / name).unlink(missing_ok=True)
    vm.start()
    assert gone(first, 5), "the unrecorded VMM still runs"
    assert vm.alive()
    assert vm.call("kill").returncode == 0


@needs_tool
def test_kill_and_alive(vm):
    vm.start()
    pid = vm.state["pid"]
    assert vm.alive()
    # a state naming another executable is not this VM (pid reuse)
    other = dict(vm.state, exe="/usr/bin/not-firecracker")
    vm.state_path.write_text(json.dumps(other))
    assert not vm.alive()
    assert vm.call("kill").returncode == 0  # refuses to signal it: "already gone"
    assert not gone(pid, 0)
    vm.state_path.write_text(json.dumps(vm.state))
    assert vm.call("kill").returncode == 0
    assert gone(pid, 0)
    assert not vm.alive()
    assert vm.call("kill").returncode == 0  # idempotent
    r = vm.call("pause")
    assert r.returncode == 1 and "not running" in r.stderr


@needs_tool
def test_vmm_survives_its_starter(vm):
    """fc-tool has exited (like a daemon restarting): the VMM runs on and is
    re-adopted from the state alone."""
    vm.start()
    with open(f"/proc/{vm.state['pid']}/stat") as f:
        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    assert ppid != os.getpid()
    assert vm.alive()
    assert vm.call("pause").returncode == 0
    assert vm.call("resume").returncode == 0
    assert vm.call("kill").returncode == 0


# ---- the jailer (a fake one: chroot layout, ownership, paths as the VMM sees them) ----

JAIL_ID = 65534


@pytest.fixture
def jailed(vm, tmp_path):
    """vm, with firecracker and jailer side by side (symlinks, like an install)."""
    if os.geteuid() != 0:
        pytest.skip("the jailer needs root")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "firecracker").symlink_to(FAKE)
    (bindir / "jailer").symlink_to(FAKE_JAILER)
    vm.config["binary"] = str(bindir / "firecracker")
    vm.jailer_log = tmp_path / "jailer.jsonl"
    vm.config["jailer"] = True  # config firecracker_jailer
    vm.env["FAKE_JAILER_LOG"] = str(vm.jailer_log)
    # a runtime dir of its own, short like /run/banger/<id>: the jail itself goes next to the overlay
    run = vm.run = Path(tempfile.mkdtemp(prefix="fcj-", dir="/tmp"))
    vm.config["run_dir"] = str(vm.run)
    yield vm
    shutil.rmtree(run, ignore_errors=True)


@needs_tool
def test_jailed_start_snapshot_restore(jailed, tmp_path):
    vm = jailed
    vm.start()
    # the jail is next to the writable disk (the VM's state dir, the images' filesystem), not in run_dir
    root = tmp_path / "jail" / FAKE.name / "vm1" / "root"
    assert vm.state["jail_root"] == str(root)
    assert vm.state["jail_dir"] == str(root.parent)
    # the host reaches the jail's sockets through short links in run_dir
    assert vm.state["control_socket"] == str(vm.run / "api.sock")
    assert vm.state["agent"]["path"] == str(vm.run / "vsock.sock")
    assert os.readlink(vm.run / "api.sock") == str(root / "api.sock") and (root / "api.sock").is_socket()
    assert os.readlink(vm.run / "vsock.sock") == str(root / "vsock.sock") and (root / "vsock.sock").is_socket()
    (jail,) = [json.loads(line) for line in vm.jailer_log.read_text().splitlines()]
    assert jail["pid"] == vm.state["pid"]  # the jailer execs firecracker in place
    assert jail["args"] == ["--id", "vm1", "--exec-file", str(FAKE), "--uid", str(JAIL_ID), "--gid", str(JAIL_ID),
                            "--chroot-base-dir", str(tmp_path / "jail"), "--", "--api-sock", "/api.sock"]
    assert_all_valid(vm)
    assert vm.calls() == START_SEQUENCE
    # Firecracker sees paths inside its chroot
    assert vm.body("PUT /logger")["log_path"] == "/firecracker.log"
    assert vm.body("PUT /metrics")["metrics_path"] == "/firecracker.metrics"
    boot = vm.body("PUT /boot-source")
    assert (boot["kernel_image_path"], boot["initrd_path"]) == ("/vmlinux", "/initrd.img")
    assert vm.body("PUT /drives/vda")["path_on_host"] == "/vda"
    assert vm.body("PUT /drives/vdb")["path_on_host"] == "/vdb"
    assert vm.body("PUT /vsock")["uds_path"] == "/vsock.sock"
    # hard links, not copies; the writable disk and the jail root belong to the jail's uid
    kdir = Path(vm.config["kernel_dir"])
    overlay = Path(vm.config["disks"][1]["path"])
    assert (root / "vmlinux").stat().st_ino == (kdir / "vmlinux").stat().st_ino
    assert (root / "vda").stat().st_ino == Path(vm.config["disks"][0]["path"]).stat().st_ino
    assert (root / "vdb").stat().st_ino == overlay.stat().st_ino and overlay.stat().st_uid == JAIL_ID
    assert Path(vm.config["disks"][0]["path"]).stat().st_uid == 0  # read-only base: untouched
    assert root.stat().st_uid == JAIL_ID and (root / "firecracker.log").stat().st_uid == JAIL_ID
    # the fake jailer made the device nodes, and runs the copy in the jail
    assert (root / "dev" / "kvm").is_char_device() and (root / "dev" / "kvm").stat().st_uid == JAIL_ID
    with open(f"/proc/{vm.state['pid']}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[1] == b"./" + FAKE.name.encode()
    assert vm.alive()

    snap = tmp_path / "snap"
    r = vm.call("snapshot", snap)
    assert r.returncode == 0, r.stderr
    assert vm.body("PUT /snapshot/create") == {"snapshot_type": "Full", "snapshot_path": "/vmstate.partial",
                                               "mem_file_path": "/memory.partial"}
    assert sorted(p.name for p in snap.iterdir()) == ["memory", "vmstate"]
    assert {(snap / n).stat().st_uid for n in ("memory", "vmstate")} == {0}  # taken back from the jail's uid
    assert vm.call("kill").returncode == 0
    # issue 14, item 2: the VM is gone, its disk is ours again and its jail is gone
    assert overlay.stat().st_uid == 0
    assert not root.parent.exists()
    assert not (vm.run / "api.sock").exists() and not os.path.islink(vm.run / "api.sock")

    vm.log.unlink()
    vm.restore(snap)
    assert_all_valid(vm)
    assert vm.body("PUT /snapshot/load") == {
        "snapshot_path": "/vmstate", "mem_backend": {"backend_type": "File", "backend_path": "/memory"},
        "resume_vm": True, "vsock_override": {"uds_path": "/vsock.sock"},
        "network_overrides": [{"iface_id": "eth0", "host_dev_name": "tap-fc0"}]}
    assert vm.alive()
    assert (snap / "memory").stat().st_uid == JAIL_ID and overlay.stat().st_uid == JAIL_ID  # handed over ...
    assert vm.call("kill").returncode == 0
    assert not vm.alive()
    assert {(snap / n).stat().st_uid for n in ("memory", "vmstate")} == {0} and overlay.stat().st_uid == 0  # ... back
    assert not root.parent.exists()


@needs_tool
def test_jail_ids_are_the_configured_ones(jailed, tmp_path):
    """The jailer drops to the configured ids (config firecracker_uid and
    firecracker_gid), which own the writable disk while the VMM runs."""
    vm = jailed
    vm.start(jail_uid=4242, jail_gid=4343)
    (jail,) = [json.loads(line) for line in vm.jailer_log.read_text().splitlines()]
    args = jail["args"]
    assert args[args.index("--uid") + 1] == "4242" and args[args.index("--gid") + 1] == "4343", args
    overlay = Path(vm.config["disks"][1]["path"])
    assert (overlay.stat().st_uid, overlay.stat().st_gid) == (4242, 4343)
    assert Path(vm.state["jail_root"]).stat().st_uid == 4242
    assert vm.call("kill").returncode == 0
    assert (overlay.stat().st_uid, overlay.stat().st_gid) == (0, 0)


@needs_tool
def test_jailed_with_runtime_dir_and_kernel_on_other_filesystems(jailed, tmp_path):
    """As root the runtime dir is /run/banger (a tmpfs) and the images live
    in the state dir: hard links from one to the other fail (EXDEV). The
    jail goes on the disks' filesystem; a read-only file from elsewhere (the
    kernel here) is copied in."""
    vm = jailed
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's tmp dir")
    other = Path(tempfile.mkdtemp(prefix="fcx-", dir=shm))
    try:
        run, kdir = other / "run", other / "kernel"
        run.mkdir(mode=0o700)
        shutil.copytree(vm.config["kernel_dir"], kdir)
        vm.run = run
        vm.start(run_dir=str(run), kernel_dir=str(kdir))
        root = Path(vm.state["jail_root"])
        assert root.stat().st_dev == tmp_path.stat().st_dev
        assert (root / "vmlinux").stat().st_ino != (kdir / "vmlinux").stat().st_ino  # a copy ...
        assert (root / "vmlinux").read_bytes() == (kdir / "vmlinux").read_bytes()  # ... of the same bytes
        assert (root / "vdb").stat().st_ino == Path(vm.config["disks"][1]["path"]).stat().st_ino
        assert vm.alive()
        assert vm.call("kill").returncode == 0
        assert not root.exists()
    finally:
        shutil.rmtree(other, ignore_errors=True)


@needs_tool
@pytest.mark.parametrize("flags", ["nodev", "noexec"])
def test_jail_on_nodev_or_noexec_filesystem_is_refused(jailed, tmp_path, flags):
    """The jailer makes /dev/kvm and /dev/net/tun in the jail and execs a copy
    of firecracker there: a nodev or noexec filesystem breaks them far from the
    cause. Start refuses it up front, naming the mount."""
    vm = jailed
    mnt = Path(tempfile.mkdtemp(prefix="fcn-", dir="/tmp"))  # short: the old layout put sockets in the jail
    files = {"rootfs.ext4", "overlay.ext4"}
    script = (f"mount -t tmpfs -o {flags} tmpfs {mnt} && cp -a {tmp_path / 'kernel'} {mnt}/ && "
              + " && ".join(f"cp {tmp_path / f} {mnt}/{f}" for f in files) + ' && exec "$@"')
    config = vm.write_config(kernel_dir=str(mnt / "kernel"), run_dir=str(mnt),
                             disks=[{"path": str(mnt / "rootfs.ext4"), "read_only": True},
                                    {"path": str(mnt / "overlay.ext4"), "read_only": False}])
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "fc-tool",
                        str(FC_TOOL), "start", str(config)], capture_output=True, text=True, timeout=60,
                       env={**child_env(), **vm.env})
    try:
        assert r.returncode == 1, r.stdout
        assert "EUNSUPPORTED" in r.stderr and f"mounted {flags}" in r.stderr and str(mnt) in r.stderr, r.stderr
        assert not vm.jailer_log.exists(), "the jailer ran anyway"
    finally:
        if r.returncode == 0:
            os.kill(json.loads(r.stdout)["pid"], 9)
        mnt.rmdir()  # the tmpfs was the namespace's; here it is an empty dir


def test_doctor_checks_the_jail_filesystem(tmp_path):
    """doctor: with firecracker_jailer = true the VMs' state dirs (where the
    jails go) must not be nodev or noexec."""
    if os.geteuid() != 0:
        pytest.skip("the jailer needs root")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "firecracker").symlink_to(FAKE)
    (bindir / "jailer").symlink_to(FAKE_JAILER)
    (tmp_path / "config").mkdir()
    config = tmp_path / "config" / "config.toml"
    config.write_text(f'firecracker_bin = "{bindir / "firecracker"}"\nfirecracker_jailer = true\n')
    mnt = Path(tempfile.mkdtemp(prefix="fcd-", dir="/tmp"))
    env = {**child_env(), "BANGER_CONFIG_DIR": str(tmp_path / "config"), "BANGER_STATE_DIR": str(mnt / "state"),
           "BANGER_CACHE_DIR": str(tmp_path / "cache"), "BANGER_RUNTIME_DIR": str(tmp_path / "run"),
           "BANGER_URI": f"local:{mnt / 'state'}"}
    banger_cli = BUILD / "tools" / "banger" / "banger"

    def jailer_check(flags):
        mount = f"mount -t tmpfs -o {flags} tmpfs {mnt} && " if flags else ""
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            mount + 'exec "$@"', "doctor", str(banger_cli), "doctor", "--json"],
                           capture_output=True, text=True, env=env, timeout=120)
        return next(c for c in json.loads(r.stdout)["checks"] if c["name"] == "jailer")

    try:
        ok = jailer_check(None)
        assert ok["status"] == "PASS" and str(bindir / "jailer") in ok["detail"], ok
        for flags in ("nodev", "noexec"):
            bad = jailer_check(flags)
            assert bad["status"] == "FAIL" and f"mounted {flags}" in bad["detail"] and str(mnt) in bad["detail"], bad
        config.write_text(f'firecracker_bin = "{bindir / "firecracker"}"\nfirecracker_jailer = false\n')
        off = jailer_check("nodev")
        assert off["status"] == "PASS" and "firecracker_jailer is off" in off["detail"], off  # nothing to check
    finally:
        shutil.rmtree(mnt, ignore_errors=True)


@needs_tool
def test_jailer_refuses_unreadable_base_image(jailed):
    os.chmod(jailed.config["disks"][0]["path"], 0o600)
    r = jailed.start(expect_ok=False)
    assert r.returncode == 1 and "EPERM" in r.stderr and "world-readable" in r.stderr
    (pid,) = {json.loads(line)["pid"] for line in jailed.jailer_log.read_text().splitlines()}
    assert gone(pid, 0)


@needs_tool
def test_jailer_asked_for_but_missing(vm):
    r = vm.start(expect_ok=False, jailer=True)
    assert r.returncode == 1 and "firecracker_jailer is on" in r.stderr, r.stderr
    if os.geteuid() == 0:
        assert "ENOTFOUND" in r.stderr and "no executable `jailer` next to" in r.stderr
    else:
        assert "EPERM" in r.stderr and "needs root" in r.stderr
    assert not vm.log.exists()


# ---- a real firecracker ----

def kvm_works():
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return f"/dev/kvm: {e.strerror}"
    try:
        version = fcntl.ioctl(fd, 0xAE00)  # KVM_GET_API_VERSION
        return None if version == 12 else f"/dev/kvm answers API version {version}"
    except OSError as e:
        return f"/dev/kvm: {e.strerror}"
    finally:
        os.close(fd)


def real_firecracker_skip():
    if shutil.which("firecracker") is None:
        return "no firecracker on PATH (install a v1.16 release binary to run it)"
    why = kvm_works()
    if why:
        return why
    kdir = os.environ.get("BANGER_TEST_KERNEL_DIR")
    if not kdir or not os.path.exists(os.path.join(kdir, "vmlinux")):
        return "set BANGER_TEST_KERNEL_DIR to a kernel dir with vmlinux (ELF) and initrd.img"
    return None


@needs_tool
def test_real_firecracker_boots(tmp_path):
    why = real_firecracker_skip()
    if why:
        print(why)
        pytest.skip(why)
    vm = VM(tmp_path)
    vm.config.update(binary=shutil.which("firecracker"), kernel_dir=os.environ["BANGER_TEST_KERNEL_DIR"],
                     tap=None, mac=None, disks=[], cmdline="")
    rootfs = os.environ.get("BANGER_TEST_ROOTFS")
    if rootfs:
        vm.config["disks"] = [{"path": rootfs, "read_only": True}]
    vm.env = {}
    try:
        vm.start()
        deadline = time.time() + 60
        while "Linux version" not in (vm.console.read_text() if vm.console.exists() else ""):
            assert time.time() < deadline, f"no kernel output on the console: {vm.process.read_text()[-2000:]}"
            assert vm.alive(), f"firecracker died: {vm.process.read_text()[-2000:]}"
            time.sleep(0.2)
        if vm.alive():  # a guest without a root disk may have panicked and rebooted (exit) by now
            assert vm.call("pause").returncode == 0
            assert vm.call("resume").returncode == 0
    finally:
        if vm.state:
            if vm.call("shutdown", 3000).returncode != 0:
                assert vm.call("kill").returncode == 0
            assert not vm.alive()


# ---- vm.c through this driver, end to end (bangerd in a private network namespace) ----

ENGINE_JAIL_IDS = (4242, 4343)  # the jailed engine's firecracker_uid and firecracker_gid
LISTEN_22 = ("import socket, time\n"
             "s = socket.socket(); s.bind(('0.0.0.0', 22)); s.listen(8)\n"
             "while True: time.sleep(3600)\n")


class FcEngine:
    """bangerd with vmm = "firecracker" and the fake as the binary, in its own
    network namespace (bridge and taps stay there). The fake serves the real
    guest agent over hybrid vsock, and something listens on port 22 in that
    namespace, where the agent (a host process here) looks for sshd. FAKE_FC_*
    knobs for the next VMM go in self.knobs (FAKE_FC_KNOBS)."""

    def __init__(self, base, kernel_deb, jailed=False):
        self.base = base
        self.run = Path(tempfile.mkdtemp(prefix="bfc-", dir="/tmp"))  # sockets need short paths
        self.bindir = base / "bin"
        self.bindir.mkdir()
        (self.bindir / "firecracker").symlink_to(FAKE)
        (self.bindir / "jailer").symlink_to(FAKE_JAILER)
        self.log = base / "fake.jsonl"
        self.knobs = base / "knobs.json"
        self.env = {
            "BANGER_CONFIG_DIR": str(base / "config"), "BANGER_STATE_DIR": str(base / "state"),
            "BANGER_CACHE_DIR": str(base / "cache"), "BANGER_RUNTIME_DIR": str(self.run),
            "FAKE_FC_LOG": str(self.log), "FAKE_FC_AGENT": str(AGENT), "FAKE_FC_KNOBS": str(self.knobs),
        }
        # jailed: ids of its own, so that the tests see config.toml reach the driver
        jail = f"firecracker_jailer = true\nfirecracker_uid = {ENGINE_JAIL_IDS[0]}\n" \
               f"firecracker_gid = {ENGINE_JAIL_IDS[1]}\n" if jailed else ""
        (base / "config").mkdir()
        (base / "config" / "config.toml").write_text(
            f'vmm = "firecracker"\nfirecracker_bin = "{self.bindir / "firecracker"}"\n{jail}'
            '[vm_defaults]\nvcpu = 1\nmemory_mib = 256\ndisk_size = "256M"\n')
        self.socket = self.run / "bangerd.sock"
        self.daemon = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "bangerd", str(BANGERD),
             "--socket", str(self.socket)], env={**child_env(), **self.env}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self.listener = None
        try:
            wait_for_socket(self.socket, self.daemon)
            self.listener = subprocess.Popen(["nsenter", f"--net=/proc/{self.daemon.pid}/ns/net",
                                              "/usr/bin/python3", "-c", LISTEN_22])
            self.ctx = banger.open(f"unix:{self.socket}", autostart=False)
            tar = make_tar(base / "img.tar", [{"name": "usr/sbin/sshd", "data": b"#!/bin/sh\n", "mode": 0o755}])
            self.ctx.call("image.import", {"name": "tiny", "tars": [str(tar)]})
            self.ctx.call("kernel.import", {"name": "k", "deb": str(kernel_deb)})
        except BaseException:
            self.close()
            raise

    def set_knobs(self, **knobs):
        self.knobs.write_text(json.dumps(knobs))

    def entries(self):
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def exits(self, pid):
        return [e for e in self.entries() if e.get("event") == "exit" and e["pid"] == pid]

    def close(self):
        if getattr(self, "ctx", None) is not None:
            try:
                for v in self.ctx.call("vm.list", {"all": True})["vms"]:
                    self.ctx.call("vm.delete", {"name": v["name"]})
            finally:
                self.ctx.close()
        if self.daemon.poll() is None:
            self.daemon.terminate()
            self.daemon.wait(30)
        if self.listener is not None:
            self.listener.kill()
            self.listener.wait()
        for pid in {e["pid"] for e in self.entries() if "pid" in e}:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.run, ignore_errors=True)


def fc_engine_skip():
    if os.geteuid() != 0:
        return "needs root (a network namespace for the bridge and taps)"
    if not AGENT.exists():
        return f"{AGENT} is not built"
    if not shutil.which("unshare") or not shutil.which("nsenter"):
        return "needs unshare and nsenter (util-linux)"
    return None


@pytest.fixture(scope="module")
def fc_engine(tmp_path_factory, kernel_debs):  # noqa: F811
    why = fc_engine_skip()
    if why:
        pytest.skip(why)
    eng = FcEngine(tmp_path_factory.mktemp("fcvm"), kernel_debs[0])
    yield eng
    eng.close()
    assert eng.daemon.returncode == 0, eng.daemon.stderr.read()


def vmm_pid(ctx, name):
    return ctx.call("vm.show", {"name": name})["vmm"]["pid"]


def test_vm_boots_and_serves_the_agent_through_firecracker(fc_engine):
    """vm.c's boot waits (agent health, sshd) and agent calls run through
    this driver and the fake's hybrid vsock."""
    eng = fc_engine
    eng.set_knobs()
    vm = eng.ctx.call("vm.create", {"name": "fc-boot", "image": "tiny", "kernel": "k"})
    assert vm["state"] == "running" and vm["driver"] == "firecracker"
    pid = vm["vmm"]["pid"]
    assert vm["vmm"]["agent"]["kind"] == "vsock_uds"
    ports = eng.ctx.call("vm.ports", {"name": "fc-boot"})["ports"]
    assert any(p["port"] == 22 for p in ports)
    stats = eng.ctx.call("vm.stats", {"name": "fc-boot"})
    assert stats["state"] == "running" and stats["guest_uptime_s"] >= 0
    # exec over the agent's frame mode, through the hybrid vsock (the fake's
    # "guest" is the agent on this host)
    r = eng.ctx.call("vm.exec", {"name": "fc-boot", "argv": ["sh", "-c", "echo hi; echo err >&2; exit 3"]})
    assert (r["exit_code"], r["stdout"], r["stderr"]) == (3, "hi\n", "err\n")
    assert any(e.get("event") == "vsock" and e["accepted"] and e["pid"] == pid for e in eng.entries())
    eng.ctx.call("vm.delete", {"name": "fc-boot"})
    assert gone(pid, 5)


def test_stop_reboots_the_guest_and_firecracker_exits(fc_engine):
    """Issue 14, item 1: x86 Firecracker has no ACPI power-off. A guest that
    powers off leaves the process running and ignores Ctrl-Alt-Del; only a
    reset (reboot=k) ends it. Stop must not wait 30 s and SIGKILL."""
    eng = fc_engine
    eng.set_knobs()
    eng.ctx.call("vm.create", {"name": "fc-stop", "image": "tiny", "kernel": "k"})
    pid = vmm_pid(eng.ctx, "fc-stop")
    t0 = time.time()
    vm = eng.ctx.call("vm.stop", {"name": "fc-stop"})
    took = time.time() - t0
    assert vm["state"] == "stopped"
    assert gone(pid, 5)
    assert [e["reason"] for e in eng.exits(pid)] == ["guest reboot (i8042 reset, reboot=k)"], \
        "firecracker did not exit by itself (killed?)"
    assert took < 10, f"stop took {took:.1f} s"
    ops = [e["op"] for e in eng.entries() if e.get("event") == "agent" and e["pid"] == pid]
    assert ops == ["reboot"]
    # and it boots again
    vm = eng.ctx.call("vm.start", {"name": "fc-stop"})
    assert vm["state"] == "running" and vm["vmm"]["pid"] != pid
    eng.ctx.call("vm.delete", {"name": "fc-stop"})


@pytest.fixture(scope="module")
def fc_jailed_engine(tmp_path_factory, kernel_debs):  # noqa: F811
    why = fc_engine_skip()
    if why:
        pytest.skip(why)
    eng = FcEngine(tmp_path_factory.mktemp("fcjail"), kernel_debs[0], jailed=True)
    yield eng
    eng.close()
    assert eng.daemon.returncode == 0, eng.daemon.stderr.read()


def test_jailed_vm_gets_its_disk_back_when_it_stops(fc_jailed_engine):
    """Issue 14, item 2, through vm.c: the jail is in the VM's own directory
    (the images' filesystem; the runtime dir holds only socket links), the
    overlay is the jail uid's while the VM runs and ours again once it
    stops, and the jail is gone."""
    eng = fc_jailed_engine
    eng.set_knobs()
    vm = eng.ctx.call("vm.create", {"name": "fc-jail", "image": "tiny", "kernel": "k"})
    vmdir = Path(eng.env["BANGER_STATE_DIR"]) / "vms" / vm["id"]
    overlay = vmdir / "overlay.ext4"
    jail = Path(vm["vmm"]["jail_dir"])
    assert jail.parent.parent == vmdir / "jail" and jail.is_dir()
    assert (overlay.stat().st_uid, overlay.stat().st_gid) == ENGINE_JAIL_IDS  # config firecracker_uid/gid
    eng.ctx.call("vm.stop", {"name": "fc-jail"})
    assert (overlay.stat().st_uid, overlay.stat().st_gid) == (0, 0)
    assert not jail.exists()
    vm = eng.ctx.call("vm.start", {"name": "fc-jail"})
    assert vm["state"] == "running" and overlay.stat().st_uid == ENGINE_JAIL_IDS[0]
    eng.ctx.call("vm.delete", {"name": "fc-jail"})
    assert not vmdir.exists()


def test_unrecorded_jailed_vmm_is_killed_when_the_vm_goes(fc_jailed_engine):
    """Issue 14, item 6: stray cleanup recognises a jailed Firecracker. The
    daemon died between spawning the VMM and recording it (the row has no
    VMM state and no driver): deleting the VM kills it all the same."""
    eng = fc_jailed_engine
    eng.set_knobs()
    vm = eng.ctx.call("vm.create", {"name": "fc-stray", "image": "tiny", "kernel": "k"})
    pid = vm["vmm"]["pid"]
    with sqlite3.connect(Path(eng.env["BANGER_STATE_DIR"]) / "state.db") as db:
        db.execute("UPDATE vms SET vmm = NULL, driver = 'none', state = 'error' WHERE name = 'fc-stray'")
    eng.ctx.call("vm.delete", {"name": "fc-stray"})
    assert gone(pid, 5), "the jailed VMM nobody recorded still runs"


def test_guest_that_panics_at_boot_fails_fast(fc_engine):
    """Issue 14, item 3: with panic=1 reboot=k the VMM exits when the guest
    panics; boot must see its process go and fail at once with the
    console's last lines, not wait 10 minutes for the agent."""
    eng = fc_engine
    eng.set_knobs(FAKE_FC_PANIC_AFTER="0.3", FAKE_FC_GUEST_BOOT_DELAY="3600")  # the agent never comes
    t0 = time.time()
    with pytest.raises(banger.HostIOError) as err:
        eng.ctx.call("vm.create", {"name": "fc-panic", "image": "tiny", "kernel": "k"})
    took = time.time() - t0
    assert "boot failed at stage agent: the VM stopped: its hypervisor process exited" in str(err.value)
    assert "Kernel panic - not syncing" in str(err.value)
    assert took < 20, took
    eng.ctx.call("vm.delete", {"name": "fc-panic"})


@needs_tool
def test_restore_sets_the_guest_clock(vm, tmp_path):
    """Issue 14, item 6: a restored guest's clock stopped at snapshot time;
    the driver sets it to the host's through the agent after the load."""
    vm.env["FAKE_FC_AGENT"] = str(AGENT)
    vm.start()
    snap = tmp_path / "snap"
    assert vm.call("snapshot", snap).returncode == 0
    assert vm.call("kill").returncode == 0
    vm.log.unlink()
    before = time.time() * 1000
    vm.restore(snap)
    sets = [e for e in vm.entries() if e.get("event") == "agent" and e.get("op") == "set_clock"]
    assert len(sets) == 1 and before - 1000 <= sets[0]["ms"] <= time.time() * 1000 + 1000, sets
    assert vm.state["clock_set"] is True
    assert vm.call("kill").returncode == 0
    # without an agent the restore still succeeds, and says the clock is not set
    del vm.env["FAKE_FC_AGENT"]
    vm.restore(snap)
    assert vm.state["clock_set"] is False
    assert vm.call("kill").returncode == 0

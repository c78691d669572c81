#!/usr/bin/python3
"""A fake `firecracker` for testing banger's driver without KVM.

Takes the real binary's arguments (--api-sock, --id, ...), serves HTTP/1.1 on
the API Unix socket, and checks EVERY request against the contract derived from
Firecracker's swagger (tests/data/firecracker-contract.json): known method and
path, Content-Length (no chunked bodies), body <= 51,200 bytes, JSON, required
fields, no unknown fields, types, enums, bounds. It answers like Firecracker:
204 on success, 400 {"fault_message": ...} otherwise, GET / with the instance
info, and keeps Firecracker's state rules (pre-boot only resources, InstanceStart
needs a boot source, PATCH /vm and snapshots only once running, snapshot load
only on a fresh process).

Where it matters it behaves as Firecracker v1.16.1 does:
- One API thread: every request, on any connection, waits for the one before
  it (a slow snapshot delays GET /).
- Its own log goes to stdout (the driver's console log) until PUT /logger
  names a file, then to that file: "<time> [<id>:<thread>] <message>", opened
  read-write, non-blocking, never created, never O_APPEND, kept open. PUT
  /logger may be sent again before boot. A start-up failure logs its reason
  (Display) to stdout and only "Error: <Debug>" to stderr, like main.rs.
- Metrics: PUT /metrics opens the file the same way; after boot a JSON line is
  written every FAKE_FC_METRICS_EVERY seconds (Firecracker: 60) and on
  FlushMetrics.
- The guest: after InstanceStart (or a resumed snapshot load) it "boots"; its
  agent listens on vsock port 1024 after FAKE_FC_GUEST_BOOT_DELAY seconds.
  Hybrid vsock: a host connection to uds_path sends "CONNECT <port>\\n" and
  gets "OK <hostport>\\n" when the guest listens, else a hang-up. Behind it
  runs the real guest agent (FAKE_FC_AGENT, `--stdio`, one per connection);
  its power ops are the guest's and never reach the host: "poweroff" halts
  the guest but Firecracker keeps running (x86 has no ACPI power-off), and
  "reboot" is an i8042 reset (reboot=k) that makes Firecracker exit.
  SendCtrlAltDel reboots a running guest the same way (FAKE_FC_IGNORE_CTRLALTDEL
  makes the guest ignore it); a halted guest ignores it.
- Jailed (FAKE_FC_ROOT, set by fake_jailer.py): paths resolve under the jail
  root (the cwd), sockets are bound relative to it (as short as Firecracker's
  "/api.sock" in its chroot), files are checked as the jail's uid/gid would
  see them, and /dev/kvm (InstanceStart) and /dev/net/tun (network
  interfaces) are opened from the jail's own device nodes: a nodev
  filesystem fails them.

Every exit is logged to FAKE_FC_LOG as {"event": "exit", "reason": ...}.

Environment:
  FAKE_FC_LOG=path            append one JSON line per request: method, path,
                              headers, body, status, violations (contract or
                              policy breaches), error (the fault_message sent);
                              and one per event (vsock connects, guest power
                              changes, exit)
  FAKE_FC_FAULT=[METHOD ]path reply 400 with a fault_message on that request
                              (comma-separated for several)
  FAKE_FC_EXIT_AT_START=msg   fail at start with that reason (stdout) and a
                              Debug-formatted line on stderr, exit 1
  FAKE_FC_START_DELAY=secs    sleep before binding the API socket
  FAKE_FC_IGNORE_CTRLALTDEL=1 answer SendCtrlAltDel but keep running
  FAKE_FC_SNAPSHOT_DELAY=secs PUT /snapshot/create takes that long
  FAKE_FC_PANIC_AFTER=secs    the guest panics that long after it starts;
                              with panic=1 reboot=k Firecracker exits a second
                              later
  FAKE_FC_GUEST_BOOT_DELAY=s  the guest agent listens that long after start
  FAKE_FC_AGENT=path          the guest agent binary (banger-agent); unset:
                              nothing listens on guest vsock ports
  FAKE_FC_METRICS_EVERY=secs  metrics period after boot (default 60)
  FAKE_FC_ROOT=dir            resolve absolute paths under dir (what the
                              jailer's chroot does; set by fake_jailer.py)
  FAKE_FC_UID/FAKE_FC_GID     check file permissions as this uid/gid would
                              (the jailer drops to them; set by fake_jailer.py)
  FAKE_FC_CONTRACT=path       another contract file (fake_jailer.py sets it:
                              the copy in the jail cannot find ours)
  FAKE_FC_KNOBS=path          a JSON object of more FAKE_FC_* settings, read
                              at start when the file exists (tests change
                              knobs without restarting the daemon that
                              spawns the fake)
"""
import itertools
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.realpath(__file__))
CONTRACT_PATH = os.environ.get("FAKE_FC_CONTRACT") or os.path.join(HERE, "..", "data", "firecracker-contract.json")
VERSION = "1.16.1"
MAX_BODY = 51200
MAX_HEAD = 16 * 1024
MAX_CMDLINE = 2048
PRE_BOOT_ONLY = "The requested operation is not supported after starting the microVM."
POST_BOOT_ONLY = "The requested operation is not supported before starting the microVM."
# Arguments the real binary takes: name -> takes a value.
ARGS = {
    "--api-sock": True, "--id": True, "--config-file": True, "--no-api": False, "--level": True,
    "--log-path": True, "--show-level": False, "--show-log-origin": False, "--module": True,
    "--metrics-path": True, "--boot-timer": False, "--seccomp-filter": True, "--no-seccomp": False,
    "--start-time-us": True, "--start-time-cpu-us": True, "--parent-cpu-time-us": True,
    "--http-api-max-payload-size": True, "--mmds-size-limit": True, "--metadata": True,
    "--snapshot-version": False, "--describe-snapshot": True, "--version": False,
}


LEVELS = {"Off": 0, "Error": 1, "Warning": 2, "Info": 3, "Debug": 4, "Trace": 5}
AGENT_PORT = 1024
GUEST_CID = 3
stdout_lock = threading.Lock()


def now_stamp():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) + f".{int((t % 1) * 1e9):09d}"


def write_stdout(text):
    with stdout_lock:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except OSError:
            pass


def fail_at_start(instance_id, display, debug, code=1):
    """main.rs on an error: the reason through the logger (stdout before PUT
    /logger), the Debug form on stderr, then the exit code."""
    write_stdout(f"{now_stamp()} [{instance_id}:main] {display}\n")
    sys.stderr.write(f"Error: {debug}\n")
    sys.stderr.flush()
    write_stdout(f"{now_stamp()} [{instance_id}:main] Firecracker exiting with error. exit_code={code}\n")
    sys.exit(code)


def die(msg):
    """Argument errors: what clap-style parsing reports."""
    fail_at_start("anonymous-instance", msg, f"ParseArguments({msg!r})", 153)


def parse_args(argv):
    opts = {"--api-sock": "/run/firecracker.socket", "--id": "anonymous-instance"}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a not in ARGS:
            die(f"Arguments parsing error: Found argument '{a}' which wasn't expected, or isn't valid in this context.")
        if ARGS[a]:
            if i + 1 >= len(argv):
                die(f"Arguments parsing error: The argument '{a}' requires a value but none was supplied")
            opts[a] = argv[i + 1]
            i += 2
        else:
            opts[a] = True
            i += 1
    return opts


# ---- contract checks ----

def type_ok(value, typ):
    if typ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if typ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if typ == "boolean":
        return isinstance(value, bool)
    if typ == "string":
        return isinstance(value, str)
    if typ == "array":
        return isinstance(value, list)
    if typ == "object":
        return isinstance(value, dict)
    return True


def check_schema(value, schema, where, out):
    """Appends one message per violation of schema by value."""
    typ = schema.get("type")
    if typ and not type_ok(value, typ):
        out.append(f"{where}: expected {typ}, got {type(value).__name__} {json.dumps(value)[:60]}")
        return
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {json.dumps(value)} is not one of {schema['enum']}")
    if "minimum" in schema and isinstance(value, (int, float)) and value < schema["minimum"]:
        out.append(f"{where}: {value} is below the minimum {schema['minimum']}")
    if "maximum" in schema and isinstance(value, (int, float)) and value > schema["maximum"]:
        out.append(f"{where}: {value} is above the maximum {schema['maximum']}")
    if typ == "object":
        props = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in value:
                out.append(f"{where}: missing required field '{name}'")
        extra = schema.get("additionalProperties", False)
        for name, v in value.items():
            if name in props:
                check_schema(v, props[name], f"{where}.{name}", out)
            elif extra is False:
                out.append(f"{where}: unknown field '{name}'")
            elif isinstance(extra, dict):
                check_schema(v, extra, f"{where}.{name}", out)
    if typ == "array":
        for i, v in enumerate(value):
            check_schema(v, schema.get("items") or {}, f"{where}[{i}]", out)


class Contract:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = json.load(f)
        self.routes = []
        for template, ops in self.doc["paths"].items():
            names = re.findall(r"\{(\w+)\}", template)
            rx = "^" + re.sub(r"\\\{\w+\\\}", "([^/]+)", re.escape(template)) + "$"
            self.routes.append((re.compile(rx), template, names, ops))

    def match(self, path):
        """(template, {param: value}, ops) or None."""
        for rx, template, names, ops in self.routes:
            m = rx.match(path)
            if m:
                return template, dict(zip(names, m.groups())), ops
        return None


# ---- the fake VMM ----

class ApiError(Exception):
    pass


def open_target(path):
    """How Firecracker opens its log and metrics files: read-write,
    non-blocking, never created, no O_APPEND; kept open."""
    return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)


class Fake:
    def __init__(self, opts, contract):
        self.id = opts["--id"]
        self.api_sock = opts["--api-sock"]
        self.contract = contract
        self.lock = threading.RLock()  # guest and device state: the API thread and vsock threads
        self.log_lock = threading.Lock()
        self.seq = 0
        self.log_path = os.environ.get("FAKE_FC_LOG")
        self.root = os.environ.get("FAKE_FC_ROOT", "")
        uid, gid = os.environ.get("FAKE_FC_UID"), os.environ.get("FAKE_FC_GID")
        self.creds = (int(uid), int(gid)) if uid is not None and gid is not None else None
        self.faults = set()
        for item in filter(None, (s.strip() for s in os.environ.get("FAKE_FC_FAULT", "").split(","))):
            self.faults.add(item if " " in item else "* " + item)
        self.agent = os.environ.get("FAKE_FC_AGENT") or None
        self.started = False
        self.paused = False
        self.configured = set()  # pre-boot resources set, by kind
        self.logger = self.metrics = None
        self.log_fd = self.metrics_fd = None
        self.log_level = LEVELS["Info"]
        self.boot = None
        self.machine = {"vcpu_count": 1, "mem_size_mib": 128, "smt": False, "track_dirty_pages": False}
        self.drives = {}  # in insertion order
        self.ifaces = {}
        self.vsock = None
        self.vsock_listener = None
        self.vsock_conns = set()
        self.hostports = itertools.count(1 << 30)
        self.guest = "none"  # none -> running -> halted (poweroff); a reset exits the process
        self.guest_since = 0.0
        self.exiting = False
        self.api_queue = queue.Queue()
        threading.Thread(target=self.api_thread, name="fc_api", daemon=True).start()

    # -- helpers --
    def host(self, path):
        return self.root + path if self.root and path.startswith("/") else path

    def sock_addr(self, path):
        """Where to bind a socket Firecracker names path: in its chroot the
        path is short ("/api.sock"); the fake runs in the jail root (cwd),
        so the same path, relative, is as short."""
        return "." + path if self.root and path.startswith("/") else path

    def log(self, entry):
        if not self.log_path:
            return
        with self.log_lock:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")

    def event(self, name, **fields):
        self.log({"event": name, "time": time.time(), "pid": os.getpid(), **fields})

    def fc_log(self, level, msg):
        """Firecracker's logger: stdout until PUT /logger, then its file."""
        if LEVELS[level] > self.log_level:
            return
        line = f"{now_stamp()} [{self.id}:{threading.current_thread().name}] {msg}\n"
        if self.log_fd is None:
            write_stdout(line)
            return
        try:
            os.write(self.log_fd, line.encode())
        except OSError:
            pass  # a full pipe or disk: Firecracker counts a missed log line

    def console(self, text):
        """The guest's serial console: Firecracker writes it to stdout."""
        write_stdout(text)

    def fmt_error(self, e):
        return f"{type(e).__name__}: {e.strerror or e} (os error {e.errno})" if isinstance(e, OSError) else str(e)

    def may(self, host_path, write):
        """Whether the jailed uid/gid could open host_path (we run as root)."""
        if self.creds is None:
            return True
        st = os.stat(host_path)
        uid, gid = self.creds
        bits = st.st_mode >> 6 if st.st_uid == uid else st.st_mode >> 3 if st.st_gid == gid else st.st_mode
        return bool(bits & (2 if write else 4))

    def check_create(self, path, what):
        """The jailed VMM creates path: its directory must be writable to it."""
        parent = os.path.dirname(self.host(path)) or "."
        if not self.may(parent, True):
            raise ApiError(f"{what}: Permission denied (os error 13) [{parent} is not writable by uid "
                           f"{self.creds[0]}]")

    def open_existing(self, path, what, write=False):
        try:
            fd = os.open(self.host(path), os.O_RDWR if write else os.O_RDONLY)
            os.close(fd)
            if not self.may(self.host(path), write):
                raise PermissionError(13, "Permission denied")
        except OSError as e:
            raise ApiError(f"{what}: {e.strerror} (os error {e.errno})")

    def open_device(self, path, what):
        """Jailed, Firecracker opens the device nodes the jailer made in its
        chroot; a nodev mount refuses them (EACCES). There is no real KVM
        here: a node for a driver this host lacks (ENXIO, ENODEV) is fine."""
        if not self.root:
            return
        try:
            fd = os.open(self.host(path), os.O_RDWR | os.O_CLOEXEC)
            os.close(fd)
            if not self.may(self.host(path), True):
                raise PermissionError(13, "Permission denied")
        except OSError as e:
            if e.errno not in (6, 19):  # ENXIO, ENODEV
                raise ApiError(f"{what}: {e.strerror} (os error {e.errno})")

    def pre_boot(self):
        if self.started:
            raise ApiError(PRE_BOOT_ONLY)

    def post_boot(self):
        if not self.started:
            raise ApiError(POST_BOOT_ONLY)

    def bind_vsock(self, uds_path):
        if self.vsock_listener is not None:
            self.vsock_listener.close()
            self.vsock_listener = None
        if len(self.sock_addr(uds_path).encode()) > 107:
            raise ApiError("Cannot create backend for vsock device: Error binding to the host-side Unix socket: "
                           "path too long")
        self.check_create(uds_path, "Cannot create backend for vsock device")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(self.sock_addr(uds_path))
        except OSError as e:
            s.close()
            raise ApiError("Cannot create backend for vsock device: Error binding to the host-side Unix socket: "
                           f"{e.strerror} (os error {e.errno})")
        s.listen(32)
        self.vsock_listener = s
        threading.Thread(target=self.vsock_accept, args=(s,), name="fc_vmm", daemon=True).start()

    def vm_state(self):
        if not self.started:
            return "Not started"
        return "Paused" if self.paused else "Running"

    def kernel_cmdline(self):
        """What the guest kernel would see: boot_args + Firecracker's own."""
        args = self.boot.get("boot_args", "reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0")
        root = [d for d in self.drives.values() if d.get("is_root_device")]
        if root:
            args += " root=/dev/vda " + ("ro" if root[0].get("is_read_only") else "rw")
        n = len(self.drives) + len(self.ifaces) + (1 if self.vsock else 0)
        for i in range(n):
            args += f" virtio_mmio.device=4K@0x{0xd0000000 + i * 0x1000:x}:{5 + i}"
        return args

    # -- the guest --
    def guest_boots(self, how):
        self.guest = "running"
        self.guest_since = time.time()
        self.event("guest", what=how)
        panic = float(os.environ.get("FAKE_FC_PANIC_AFTER") or 0)
        if panic:
            threading.Timer(panic, self.guest_panics).start()
        threading.Thread(target=self.metrics_loop, name="fc_vmm", daemon=True).start()

    def guest_panics(self):
        with self.lock:
            if self.guest != "running":
                return
            self.console("[   12.000000] Kernel panic - not syncing: fake guest panic (FAKE_FC_PANIC_AFTER)\n"
                         "[   12.000000] Rebooting in 1 seconds..\n")
            self.event("guest", what="panic")
        time.sleep(1)
        self.reset("guest panic, panic=1: the kernel rebooted (i8042 reset)")

    def guest_power(self, op):
        """The agent's power ops, done by the guest kernel."""
        with self.lock:
            if self.guest != "running":
                return
            if op == "poweroff":
                # no ACPI power-off on x86 Firecracker: the guest halts, the VMM runs on
                self.console("[   30.000000] reboot: Power down\n")
                self.guest = "halted"
                self.event("guest", what="poweroff: halted, Firecracker keeps running")
                self.drop_vsock_conns()
                return
        self.console("[   30.000000] reboot: Restarting system\n")
        self.reset("guest reboot (i8042 reset, reboot=k)")

    def reset(self, reason):
        """The guest reset the machine: with reboot=k Firecracker exits."""
        with self.lock:
            if self.guest != "running":
                return
            if "reboot=k" not in (self.boot or {}).get("boot_args", "reboot=k"):
                self.guest = "halted"
                self.event("guest", what="reset without reboot=k: the guest hangs, Firecracker runs on")
                return
            self.exiting = True
        self.shutdown(reason, 0)

    def shutdown(self, reason, code):
        self.fc_log("Info", "Vmm is stopping.")
        self.event("exit", reason=reason, code=code)
        self.drop_vsock_conns()
        with stdout_lock:
            sys.stdout.flush()
        os._exit(code)

    def drop_vsock_conns(self):
        with self.lock:
            conns, self.vsock_conns = list(self.vsock_conns), set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def agent_listening(self, port):
        delay = float(os.environ.get("FAKE_FC_GUEST_BOOT_DELAY") or 0)
        return (port == AGENT_PORT and self.agent is not None and self.guest == "running"
                and time.time() - self.guest_since >= delay)

    # -- hybrid vsock --
    def vsock_accept(self, listener):
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed: a new uds_path, or exiting
            threading.Thread(target=self.vsock_conn, args=(conn,), name="fc_vmm", daemon=True).start()

    def vsock_conn(self, conn):
        agent = None
        try:
            conn.settimeout(5)
            line = b""
            while not line.endswith(b"\n") and len(line) < 64:
                chunk = conn.recv(1)
                if not chunk:
                    return
                line += chunk
            m = re.fullmatch(rb"CONNECT (\d+)\n", line)
            with self.lock:
                ok = m is not None and self.agent_listening(int(m.group(1)))
                if ok:
                    hostport = next(self.hostports)
                    self.vsock_conns.add(conn)
            self.event("vsock", request=line.decode("latin-1").strip(), accepted=ok)
            if not ok:
                return  # Firecracker hangs up: nothing listens on that guest port
            agent = subprocess.Popen([self.agent, "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
            conn.sendall(f"OK {hostport}\n".encode())
            conn.settimeout(None)
            reader = conn.makefile("rb")
            for raw in iter(reader.readline, b""):
                if not raw.strip():
                    continue
                try:
                    req = json.loads(raw)
                except ValueError:
                    req = None
                op = req.get("op") if isinstance(req, dict) else None
                if op == "set_clock":
                    # the guest's clock: recorded, never this host's own
                    self.event("agent", op=op, ms=req.get("ms"))
                    conn.sendall(json.dumps({"id": req.get("id"), "ok": True}).encode() + b"\n")
                    continue
                if op in ("poweroff", "reboot"):
                    # the agent replies first, then syncs and calls reboot(2)
                    conn.sendall(json.dumps({"id": req.get("id"), "ok": True}).encode() + b"\n")
                    self.event("agent", op=op)
                    time.sleep(0.05)
                    self.guest_power(op)
                    return
                agent.stdin.write(raw if raw.endswith(b"\n") else raw + b"\n")
                agent.stdin.flush()
                reply = agent.stdout.readline()
                if not reply:
                    return
                conn.sendall(reply)
                if op == "frames" and b'"ok":true' in reply.replace(b" ", b""):
                    self.pump_frames(conn, reader, agent)  # bytes both ways from here on
                    return
        except OSError:
            pass
        finally:
            with self.lock:
                self.vsock_conns.discard(conn)
            conn.close()
            if agent is not None:
                try:
                    agent.stdin.close()
                except OSError:
                    pass
                try:
                    agent.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    agent.kill()
                    agent.wait()

    @staticmethod
    def pump_frames(conn, reader, agent):
        """Frame mode (docs/agent-protocol.md): the connection carries the
        agent's frames as they are, both ways, until either side closes."""
        def out():
            try:
                while True:
                    data = agent.stdout.read1(65536)
                    if not data:
                        break
                    conn.sendall(data)
            except OSError:
                pass
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        t = threading.Thread(target=out, daemon=True)
        t.start()
        try:
            while True:
                data = reader.read1(65536)  # what the line reader buffered comes first
                if not data:
                    break
                agent.stdin.write(data)
                agent.stdin.flush()
        except (OSError, ValueError):
            pass

    # -- metrics --
    def write_metrics(self):
        if self.metrics_fd is None:
            return
        line = json.dumps({"utc_timestamp_ms": int(time.time() * 1000), "api_server": {"process_startup_time_us": 0},
                           "block": {"read_count": 0, "write_count": 0, "flush_count": 0},
                           "vsock": {"conns_added": 0}, "padding": "x" * 1024}) + "\n"
        try:
            os.write(self.metrics_fd, line.encode())
        except OSError:
            pass

    def metrics_loop(self):
        every = float(os.environ.get("FAKE_FC_METRICS_EVERY") or 60)
        while True:
            time.sleep(every)
            self.write_metrics()

    # -- endpoints; each returns (status, body or None) or raises ApiError --
    def handle(self, method, template, params, body):
        key = f"{method} {template}"
        if key == "GET /":
            return 200, {"id": self.id, "state": self.vm_state(), "vmm_version": VERSION, "app_name": "Firecracker"}
        if key == "GET /version":
            return 200, {"firecracker_version": VERSION}
        if key == "GET /machine-config":
            return 200, self.machine
        if key == "GET /vm/config":
            cfg = {"machine-config": self.machine, "drives": list(self.drives.values()),
                   "network-interfaces": list(self.ifaces.values())}
            if self.boot:
                cfg["boot-source"] = self.boot
            if self.vsock:
                cfg["vsock"] = self.vsock
            return 200, cfg
        if key == "PUT /logger":
            # Logger::update: any number of times before boot
            self.pre_boot()
            fd = None
            if "log_path" in body:
                try:
                    fd = open_target(self.host(body["log_path"]))
                    if not self.may(self.host(body["log_path"]), True):
                        os.close(fd)
                        raise PermissionError(13, "Permission denied")
                except OSError as e:
                    raise ApiError(f"Logger error: Failed to open target file: {e.strerror} (os error {e.errno})")
            self.log_level = LEVELS[body.get("level", "Info")]
            if fd is not None:
                if self.log_fd is not None:
                    os.close(self.log_fd)
                self.log_fd = fd
                self.fc_log("Info", f"Running Firecracker v{VERSION} (fake)")
            self.logger = body
            return 204, None
        if key == "PUT /metrics":
            self.pre_boot()
            if self.metrics is not None:
                raise ApiError("Reinitialization of metrics not allowed.")
            try:
                fd = open_target(self.host(body["metrics_path"]))
                if not self.may(self.host(body["metrics_path"]), True):
                    os.close(fd)
                    raise PermissionError(13, "Permission denied")
            except OSError as e:
                raise ApiError(f"Metrics error: Failed to open target file: {e.strerror} (os error {e.errno})")
            self.metrics_fd = fd
            self.metrics = body
            return 204, None
        if key in ("PUT /machine-config", "PATCH /machine-config"):
            self.pre_boot()
            new = dict(self.machine if method == "PATCH" else
                       {"smt": False, "track_dirty_pages": False})
            new.update(body or {})
            if "vcpu_count" not in new or "mem_size_mib" not in new:
                raise ApiError("Missing mandatory fields: vcpu_count and mem_size_mib")
            if new.get("smt") and new["vcpu_count"] > 1 and new["vcpu_count"] % 2:
                raise ApiError("The vCPU number is invalid! The vCPU number can only be 1 or an even number "
                               "when SMT is enabled.")
            if new["mem_size_mib"] < 1:
                raise ApiError("The memory size (MiB) is invalid.")
            self.machine = new
            self.configured.add("machine-config")
            return 204, None
        if key == "PUT /boot-source":
            self.pre_boot()
            self.open_existing(body["kernel_image_path"], "The kernel file cannot be opened")
            if "initrd_path" in body:
                self.open_existing(body["initrd_path"], "The initrd file cannot be opened")
            if len(body.get("boot_args", "").encode()) >= MAX_CMDLINE:
                raise ApiError("The kernel command line is invalid: Command line too large")
            self.boot = body
            self.configured.add("boot-source")
            return 204, None
        if key == "PUT /drives/{drive_id}":
            self.pre_boot()
            if body["drive_id"] != params["drive_id"]:
                raise ApiError(f"The id from the path [{params['drive_id']}] does not match the id from the "
                               f"body [{body['drive_id']}]!")
            if "path_on_host" not in body and "socket" not in body:
                raise ApiError("Unable to create the block device: virtio-block needs path_on_host")
            if "path_on_host" in body:
                self.open_existing(body["path_on_host"], "Unable to create the block device: cannot open the "
                                   "backing file", write=not body.get("is_read_only", False))
            if body.get("is_root_device") and any(d.get("is_root_device") for k, d in self.drives.items()
                                                  if k != body["drive_id"]):
                raise ApiError("A root block device already exists!")
            self.drives[body["drive_id"]] = body
            self.configured.add("drives")
            return 204, None
        if key == "PUT /network-interfaces/{iface_id}":
            self.pre_boot()
            if body["iface_id"] != params["iface_id"]:
                raise ApiError(f"The id from the path [{params['iface_id']}] does not match the id from the "
                               f"body [{body['iface_id']}]!")
            mac = body.get("guest_mac")
            if mac is not None and not re.fullmatch(r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}", mac):
                raise ApiError(f"Invalid MAC address: {mac}")
            if not 0 < len(body["host_dev_name"]) < 16:
                raise ApiError("Could not create the network device: Open tap device failed: invalid name")
            self.open_device("/dev/net/tun", "Could not create the network device: Open tap device failed: "
                             "Error while creating ifreq structure")
            self.ifaces[body["iface_id"]] = body
            self.configured.add("network-interfaces")
            return 204, None
        if key == "PUT /vsock":
            self.pre_boot()
            self.bind_vsock(body["uds_path"])
            self.vsock = body
            self.configured.add("vsock")
            return 204, None
        if key == "PUT /actions":
            action = body["action_type"]
            if action == "InstanceStart":
                self.pre_boot()
                if self.boot is None:
                    raise ApiError("Cannot start microvm without kernel configuration.")
                self.open_device("/dev/kvm", "Cannot start microvm: Error creating KVM object")
                with open(self.host(self.boot["kernel_image_path"]), "rb") as f:
                    if f.read(4) != b"\x7fELF":
                        raise ApiError("Cannot load kernel due to invalid memory configuration or invalid kernel "
                                       "image: Kernel Loader: failed to load ELF kernel image")
                self.started = True
                self.console(f"[    0.000000] Linux version 6.1.0-fake (fake firecracker {VERSION})\n"
                             f"[    0.000000] Command line: {self.kernel_cmdline()}\n"
                             "fake guest: booted\n")
                with self.lock:
                    self.guest_boots("booted")
                return 204, None
            if action == "SendCtrlAltDel":
                self.post_boot()
                with self.lock:
                    running = self.guest == "running"
                if running and not os.environ.get("FAKE_FC_IGNORE_CTRLALTDEL"):
                    self.console("fake guest: Ctrl-Alt-Del, rebooting\n[    9.000000] reboot: Restarting system\n")
                    threading.Timer(0.2, self.reset, args=("Ctrl-Alt-Del: the guest rebooted (i8042 reset)",)).start()
                else:
                    self.event("guest", what="Ctrl-Alt-Del ignored" + ("" if running else f" (guest {self.guest})"))
                return 204, None
            if action == "FlushMetrics":
                if self.metrics is None:
                    raise ApiError("Metrics system not initialized")
                self.write_metrics()
                return 204, None
        if key == "PATCH /vm":
            self.post_boot()
            self.paused = body["state"] == "Paused"
            return 204, None
        if key == "PUT /snapshot/create":
            self.post_boot()
            if not self.paused:
                raise ApiError("Create snapshot error: Cannot save the microVM state while it is running; "
                               "pause it first.")
            if body.get("snapshot_type") == "Diff" and not self.machine.get("track_dirty_pages"):
                raise ApiError("Create snapshot error: Diff snapshots need track_dirty_pages.")
            state = {"fake_firecracker_snapshot": 1, "id": self.id, "machine": self.machine, "boot": self.boot,
                     "drives": list(self.drives.values()), "ifaces": list(self.ifaces.values()),
                     "vsock": self.vsock, "guest": self.guest}
            for key in ("snapshot_path", "mem_file_path"):
                self.check_create(body[key], "Create snapshot error")
            delay = float(os.environ.get("FAKE_FC_SNAPSHOT_DELAY") or 0)
            if delay:
                self.event("busy", what="snapshot/create", seconds=delay)
                time.sleep(delay)  # writing guest memory: the API thread answers nothing meanwhile
            try:
                with open(self.host(body["snapshot_path"]), "w", encoding="utf-8") as f:
                    json.dump(state, f)
                with open(self.host(body["mem_file_path"]), "wb") as f:
                    f.write(b"fake guest memory\n")
                if self.creds:  # the jailed VMM's files are its uid's
                    for k in ("snapshot_path", "mem_file_path"):
                        os.chown(self.host(body[k]), *self.creds)
            except OSError as e:
                raise ApiError(f"Create snapshot error: {e.strerror} (os error {e.errno})")
            return 204, None
        if key == "PUT /snapshot/load":
            self.pre_boot()
            if self.configured:
                raise ApiError("Loading a microVM snapshot not allowed after configuring boot-specific "
                               "resources.")
            if ("mem_file_path" in body) == ("mem_backend" in body):
                raise ApiError("Load snapshot error: exactly one of mem_file_path or mem_backend is needed")
            try:
                with open(self.host(body["snapshot_path"]), encoding="utf-8") as f:
                    snap = json.load(f)
                assert snap.get("fake_firecracker_snapshot") == 1
            except (OSError, ValueError, AssertionError) as e:
                raise ApiError(f"Load snapshot error: Failed to restore from snapshot: {self.fmt_error(e)}")
            mem = body.get("mem_backend") or {"backend_type": "File", "backend_path": body.get("mem_file_path")}
            if mem["backend_type"] != "File":
                raise ApiError("Load snapshot error: the fake serves only File memory backends")
            self.open_existing(mem["backend_path"], "Load snapshot error: Failed to open memory file")
            ifaces = {i["iface_id"]: dict(i) for i in snap["ifaces"]}
            for o in body.get("network_overrides") or []:
                if o["iface_id"] not in ifaces:
                    raise ApiError(f"Load snapshot error: Invalid network override: no interface {o['iface_id']}")
                ifaces[o["iface_id"]]["host_dev_name"] = o["host_dev_name"]
            for d in snap["drives"]:
                if "path_on_host" in d:
                    self.open_existing(d["path_on_host"], "Load snapshot error: cannot open a drive",
                                       write=not d.get("is_read_only", False))
            vsock = snap.get("vsock")
            if body.get("vsock_override"):
                if not vsock:
                    raise ApiError("Load snapshot error: vsock override without a vsock device")
                vsock = dict(vsock, uds_path=body["vsock_override"]["uds_path"])
            self.open_device("/dev/kvm", "Load snapshot error: Error creating KVM object")
            if vsock:
                self.bind_vsock(vsock["uds_path"])
            self.machine, self.boot, self.vsock, self.ifaces = snap["machine"], snap["boot"], vsock, ifaces
            self.drives = {d["drive_id"]: d for d in snap["drives"]}
            self.started = True
            self.paused = not body.get("resume_vm", False)
            self.console("fake guest: restored from snapshot\n")
            with self.lock:
                if snap.get("guest", "running") == "running":
                    self.guest_boots("restored")
                else:
                    self.guest = snap["guest"]
            return 204, None
        # Known to the contract, not modelled by the fake: accept like a
        # pre-boot configuration call.
        if method != "GET":
            return 204, None
        return 200, {}

    # -- HTTP --
    def api_thread(self):
        """Firecracker's one API thread: requests run one at a time, in the
        order they arrived, whichever connection they came on."""
        while True:
            job = self.api_queue.get()
            job["result"] = self.request(*job["args"])
            job["done"].set()

    def run_request(self, *args):
        job = {"args": args, "done": threading.Event()}
        self.api_queue.put(job)
        job["done"].wait()
        return job["result"]

    def request(self, method, target, version, headers, raw):
        """Runs one request; returns (status, body, keep_alive)."""
        violations = []
        entry = {"method": method, "path": target, "headers": headers, "body": None}
        body = None
        close = headers.get("connection", "").lower() == "close" or version != "HTTP/1.1"
        if raw is not None:
            try:
                body = json.loads(raw.decode("utf-8")) if raw else None
                entry["body"] = body
            except (UnicodeDecodeError, ValueError) as e:
                entry["body"] = raw.decode("utf-8", "replace")
                violations.append(f"body is not JSON: {e}")
        path = target
        if "?" in target:
            violations.append("query strings are not part of the API")
            path = target.split("?", 1)[0]
        self.fc_log("Info", f"The API server received a {method.capitalize()} request on \"{path}\""
                    + (f" with body {raw.decode('utf-8', 'replace')!r}." if raw else "."))
        route = self.contract.match(path)
        op = None
        if route is None or method not in route[2]:
            violations.append(f"Invalid request method and/or path: {method} {path}")
        else:
            template, params, ops = route
            op = ops[method]
            spec = op.get("body")
            if spec is None:
                if raw:
                    violations.append(f"{method} {template} takes no body")
            elif body is None and not violations:
                if spec["required"]:
                    violations.append(f"{method} {template} needs a JSON body")
            elif body is not None:
                check_schema(body, spec["schema"], "body", violations)
            if method in ("PUT", "PATCH") and "content-length" not in headers:
                violations.append("no Content-Length header")
            if template == "/boot-source" and isinstance(body, dict) and isinstance(body.get("boot_args"), str):
                for tok in body["boot_args"].split():
                    if tok.startswith(("root=", "virtio_mmio.device=")) or tok == "pci=off":
                        violations.append(f"policy: boot_args has '{tok}', which Firecracker adds itself")
        status, reply, error, injected = 400, None, None, False
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
        if violations:
            error = violations[0]
        elif f"{method} {path}" in self.faults or f"* {path}" in self.faults:
            error, injected = f"fake fault injected on {method} {path}", True
        else:
            try:
                status, reply = self.handle(method, route[0], route[1], body)
            except ApiError as e:
                error = str(e)
        if error is not None:
            status, reply = 400, {"fault_message": error}
            self.fc_log("Error", f"Received Error. Status code: 400 Bad Request. Message: {error}")
        entry.update(status=status, violations=violations, error=error, injected=injected,
                     state=self.vm_state(), time=time.time(), pid=os.getpid())
        if status == 200 and op is not None:  # our replies follow the contract too
            out = []
            schema = (op["responses"].get("200") or {}).get("schema")
            if schema:
                check_schema(reply, schema, "response", out)
            if out:
                entry["fake_bug"] = out
        self.log(entry)
        return status, reply, not close

    def serve_conn(self, conn):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    if len(buf) > MAX_HEAD:
                        return self.send(conn, 400, {"fault_message": "request headers too large"})
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                if len(parts) != 3:
                    return self.send(conn, 400, {"fault_message": f"malformed request line {lines[0]!r}"})
                method, target, version = parts
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                if "transfer-encoding" in headers:
                    self.log({"method": method, "path": target, "headers": headers, "status": 400,
                              "violations": ["chunked/Transfer-Encoding bodies are not supported"],
                              "error": "Transfer-Encoding is not supported", "time": time.time(),
                              "pid": os.getpid()})
                    return self.send(conn, 400, {"fault_message": "Transfer-Encoding is not supported"})
                raw = None
                if "content-length" in headers:
                    n = int(headers["content-length"])
                    if n > MAX_BODY:
                        msg = f"Request payload with size {n} is larger than the limit of {MAX_BODY} allowed by payload."
                        self.log({"method": method, "path": target, "headers": headers, "status": 400,
                                  "violations": [msg], "error": msg, "time": time.time(), "pid": os.getpid()})
                        return self.send(conn, 400, {"fault_message": msg})
                    while len(buf) < n:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buf += chunk
                    raw, buf = buf[:n], buf[n:]
                status, reply, keep = self.run_request(method, target, version, headers, raw)
                self.send(conn, status, reply)
                if not keep:
                    return
        except OSError:
            pass
        finally:
            conn.close()

    def send(self, conn, status, reply):
        reason = {200: "OK", 204: "No Content", 400: "Bad Request"}.get(status, "")
        if reply is None:
            conn.sendall(f"HTTP/1.1 {status} {reason}\r\nServer: Firecracker API\r\n\r\n".encode())
            return
        data = json.dumps(reply).encode()
        conn.sendall(f"HTTP/1.1 {status} {reason}\r\nServer: Firecracker API\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(data)}\r\n\r\n".encode() + data)


def main():
    knobs = os.environ.get("FAKE_FC_KNOBS")
    if knobs and os.path.exists(knobs):
        with open(knobs, encoding="utf-8") as f:
            os.environ.update({k: str(v) for k, v in json.load(f).items() if k.startswith("FAKE_FC_")})
    opts = parse_args(sys.argv[1:])
    if "--version" in opts:
        print(f"Firecracker v{VERSION} (fake)")
        return
    if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", opts["--id"]):
        fail_at_start("anonymous-instance", f"Invalid instance ID: {opts['--id']}",
                      f"InvalidInstanceId(InvalidChar({opts['--id']!r}))")
    instance = opts["--id"]
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    fake = Fake(opts, Contract(CONTRACT_PATH))
    threading.current_thread().name = "main"
    fake.fc_log("Info", f"Running Firecracker v{VERSION}")
    if os.environ.get("FAKE_FC_EXIT_AT_START"):
        fake.event("exit", reason="FAKE_FC_EXIT_AT_START", code=1)
        fail_at_start(instance, os.environ["FAKE_FC_EXIT_AT_START"], "RunWithApi(FakeStartupFailure { code: 1 })")
    delay = float(os.environ.get("FAKE_FC_START_DELAY") or 0)
    if delay:
        time.sleep(delay)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        addr = fake.sock_addr(opts["--api-sock"])
        if fake.creds and not fake.may(os.path.dirname(os.path.abspath(addr)), True):
            raise PermissionError(13, "Permission denied")
        sock.bind(addr)
    except OSError as e:
        fake.event("exit", reason="API socket bind failed", code=1)
        fail_at_start(instance, f"Failed to open the API socket at: {opts['--api-sock']}. Check that it is not "
                      f"already used: {e.strerror} (os error {e.errno})",
                      f"RunWithApi(FailedToBindAndRunHttpServer(ServerCreation(IOError(Os {{ code: {e.errno}, "
                      f"kind: Other }}))))")
    sock.listen(16)
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=fake.serve_conn, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()

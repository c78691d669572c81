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
only on a fresh process). SendCtrlAltDel makes it exit shortly after, like a
guest that honours it with reboot=k.

Environment:
  FAKE_FC_LOG=path            append one JSON line per request: method, path,
                              headers, body, status, violations (contract or
                              policy breaches), error (the fault_message sent)
  FAKE_FC_FAULT=[METHOD ]path reply 400 with a fault_message on that request
                              (comma-separated for several)
  FAKE_FC_EXIT_AT_START=msg   print msg on stderr and exit 1 before listening
  FAKE_FC_START_DELAY=secs    sleep before binding the API socket
  FAKE_FC_IGNORE_CTRLALTDEL=1 answer SendCtrlAltDel but keep running
  FAKE_FC_ROOT=dir            resolve absolute paths under dir (what the
                              jailer's chroot does; set by fake_jailer.py)
  FAKE_FC_UID/FAKE_FC_GID     check file permissions as this uid/gid would
                              (the jailer drops to them; set by fake_jailer.py)
  FAKE_FC_CONTRACT=path       another contract file
"""
import json
import os
import re
import signal
import socket
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


def die(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()
    sys.exit(1)


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


class Fake:
    def __init__(self, opts, contract):
        self.id = opts["--id"]
        self.api_sock = opts["--api-sock"]
        self.contract = contract
        self.lock = threading.Lock()
        self.log_lock = threading.Lock()
        self.seq = 0
        self.log_path = os.environ.get("FAKE_FC_LOG")
        self.root = os.environ.get("FAKE_FC_ROOT", "")
        uid, gid = os.environ.get("FAKE_FC_UID"), os.environ.get("FAKE_FC_GID")
        self.creds = (int(uid), int(gid)) if uid is not None and gid is not None else None
        self.faults = set()
        for item in filter(None, (s.strip() for s in os.environ.get("FAKE_FC_FAULT", "").split(","))):
            self.faults.add(item if " " in item else "* " + item)
        self.started = False
        self.paused = False
        self.configured = set()  # pre-boot resources set, by kind
        self.logger = self.metrics = None
        self.boot = None
        self.machine = {"vcpu_count": 1, "mem_size_mib": 128, "smt": False, "track_dirty_pages": False}
        self.drives = {}  # in insertion order
        self.ifaces = {}
        self.vsock = None
        self.vsock_listener = None
        self.exiting = False

    # -- helpers --
    def host(self, path):
        return self.root + path if self.root and path.startswith("/") else path

    def log(self, entry):
        if not self.log_path:
            return
        with self.log_lock:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")

    def console(self, text):
        """The guest's serial console: Firecracker writes it to stdout."""
        sys.stdout.write(text)
        sys.stdout.flush()

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
        if len(self.host(uds_path).encode()) > 107:
            raise ApiError("Cannot create backend for vsock device: Error binding to the host-side Unix socket: "
                           "path too long")
        self.check_create(uds_path, "Cannot create backend for vsock device")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(self.host(uds_path))
        except OSError as e:
            s.close()
            raise ApiError("Cannot create backend for vsock device: Error binding to the host-side Unix socket: "
                           f"{e.strerror} (os error {e.errno})")
        s.listen(8)
        self.vsock_listener = s

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
            self.pre_boot()
            if self.logger is not None:
                raise ApiError("Reinitialization of logger not allowed.")
            if "log_path" in body:
                self.open_existing(body["log_path"], "Logger error: Failed to open target file", write=True)
                with open(self.host(body["log_path"]), "a", encoding="utf-8") as f:
                    f.write(f"[{self.id}:main] Running Firecracker v{VERSION} (fake)\n")
            self.logger = body
            return 204, None
        if key == "PUT /metrics":
            self.pre_boot()
            if self.metrics is not None:
                raise ApiError("Reinitialization of metrics not allowed.")
            self.open_existing(body["metrics_path"], "Metrics error: Failed to open target file", write=True)
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
                with open(self.host(self.boot["kernel_image_path"]), "rb") as f:
                    if f.read(4) != b"\x7fELF":
                        raise ApiError("Cannot load kernel due to invalid memory configuration or invalid kernel "
                                       "image: Kernel Loader: failed to load ELF kernel image")
                self.started = True
                self.console(f"[    0.000000] Linux version 6.1.0-fake (fake firecracker {VERSION})\n"
                             f"[    0.000000] Command line: {self.kernel_cmdline()}\n"
                             "fake guest: booted\n")
                return 204, None
            if action == "SendCtrlAltDel":
                self.post_boot()
                if not os.environ.get("FAKE_FC_IGNORE_CTRLALTDEL"):
                    self.console("fake guest: Ctrl-Alt-Del, rebooting\n[    9.000000] reboot: Restarting system\n")
                    self.exiting = True
                    threading.Timer(0.2, lambda: os._exit(0)).start()
                return 204, None
            if action == "FlushMetrics":
                if self.metrics is None:
                    raise ApiError("Metrics system not initialized")
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
                     "vsock": self.vsock}
            for key in ("snapshot_path", "mem_file_path"):
                self.check_create(body[key], "Create snapshot error")
            try:
                with open(self.host(body["snapshot_path"]), "w", encoding="utf-8") as f:
                    json.dump(state, f)
                with open(self.host(body["mem_file_path"]), "wb") as f:
                    f.write(b"fake guest memory\n")
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
                    self.open_existing(d["path_on_host"], "Load snapshot error: cannot open a drive")
            vsock = snap.get("vsock")
            if body.get("vsock_override"):
                if not vsock:
                    raise ApiError("Load snapshot error: vsock override without a vsock device")
                vsock = dict(vsock, uds_path=body["vsock_override"]["uds_path"])
            if vsock:
                self.bind_vsock(vsock["uds_path"])
            self.machine, self.boot, self.vsock, self.ifaces = snap["machine"], snap["boot"], vsock, ifaces
            self.drives = {d["drive_id"]: d for d in snap["drives"]}
            self.started = True
            self.paused = not body.get("resume_vm", False)
            self.console("fake guest: restored from snapshot\n")
            return 204, None
        # Known to the contract, not modelled by the fake: accept like a
        # pre-boot configuration call.
        if method != "GET":
            return 204, None
        return 200, {}

    # -- HTTP --
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
                status, reply, keep = self.request(method, target, version, headers, raw)
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
    opts = parse_args(sys.argv[1:])
    if "--version" in opts:
        print(f"Firecracker v{VERSION} (fake)")
        return
    if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", opts["--id"]):
        die(f"Invalid instance ID: {opts['--id']}")
    if os.environ.get("FAKE_FC_EXIT_AT_START"):
        die(os.environ["FAKE_FC_EXIT_AT_START"])
    delay = float(os.environ.get("FAKE_FC_START_DELAY") or 0)
    if delay:
        time.sleep(delay)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    fake = Fake(opts, Contract(CONTRACT_PATH))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if fake.creds and not fake.may(os.path.dirname(fake.host(opts["--api-sock"])), True):
            raise PermissionError(13, "Permission denied")
        sock.bind(fake.host(opts["--api-sock"]))
    except OSError as e:
        die(f"Error: Failed to open the API socket at: {opts['--api-sock']}. Check that it is not already used: "
            f"{e.strerror} (os error {e.errno})")
    sock.listen(16)
    sys.stderr.write(f"fake firecracker v{VERSION}: {fake.id} listening on {opts['--api-sock']}\n")
    sys.stderr.flush()
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=fake.serve_conn, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()

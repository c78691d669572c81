"""The reliability campaign (issue 13, parts 3 and 4): one harness that the
CI runs small (tests/integration/test_campaign.py, test_vm_campaign.py: a
few trials) and bench/campaign.py runs large (trials per operation on the
command line).

- Kill trials: an operation is started through bangerd, bangerd gets
  SIGKILL at a random moment of it (uniform over the operation's measured
  duration), a new bangerd starts on the same state, and the invariants are
  checked (`violations`): nothing leaked (tap, VMM process, VM/image/kernel
  directory, staging directory, <state>/tmp entry, OCI temp blob or lock, nftables
  rule), every row matches reality (no row left `creating`/`starting`; a
  running VM has its VMM alive, its tap and an agent that answers; a
  stopped one holds no tap) and every VM that ran before the trial and was
  not its subject still runs with the same boot_id.
- Faults: full disk, a registry that cuts a blob, the VMM killed, a host
  reboot (every VMM killed and the runtime directory wiped), the guest
  agent killed.

Nothing here reaches beyond this machine: registries are local and VM work
runs in the caller's private network namespace."""
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import banger

RESULT_COLUMNS = ("operation", "trials", "killed", "completed", "violations")


def wait_for_socket(path, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bangerd exited with {proc.returncode}")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {path}")


class Harness:
    """A state directory served by a bangerd this harness starts and kills.
    child_env: the environment for banger's own binaries (the caller's,
    e.g. with ASan options); config: config.toml's text."""

    def __init__(self, root, build, child_env, config="", cache=None, runtime=None):
        self.root = Path(root)
        self.build = Path(build)
        self.state = self.root / "state"
        self.cache = Path(cache) if cache else self.root / "cache"
        self.run = Path(runtime) if runtime else Path(f"/tmp/bc-{os.getpid()}-{random.randrange(1 << 20):x}")
        self.socket = self.run / "bangerd.sock"
        self.env = {"BANGER_CONFIG_DIR": str(self.root / "config"), "BANGER_STATE_DIR": str(self.state),
                    "BANGER_CACHE_DIR": str(self.cache), "BANGER_RUNTIME_DIR": str(self.run),
                    "BANGER_URI": f"unix:{self.socket}", "BANGERD": str(self.bangerd)}
        self.child_env = dict(child_env)
        self.child_env.update(self.env)
        (self.root / "config").mkdir(parents=True, exist_ok=True)
        (self.root / "config" / "config.toml").write_text(config)
        self.proc = None
        self.log = None

    @property
    def bangerd(self):
        return self.build / "tools" / "bangerd" / "bangerd"

    @property
    def banger(self):
        return self.build / "tools" / "banger" / "banger"

    def start(self):
        self.log = open(self.root / "bangerd.log", "ab")
        self.proc = subprocess.Popen([str(self.bangerd), "--socket", str(self.socket)], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=self.child_env)
        wait_for_socket(self.socket, self.proc)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self):
        """SIGTERM; returns bangerd's exit status (ASan's leak check fails it)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)
        if self.log:
            self.log.close()
        return self.proc.returncode if self.proc else 0

    def ctx(self):
        return banger.open(f"unix:{self.socket}", autostart=False)

    def call(self, method, params=None):
        with self.ctx() as c:
            return c.call(method, params or {})

    def cli(self, *args, timeout=600):
        return subprocess.run([str(self.banger), *args], capture_output=True, text=True, env=self.child_env,
                              timeout=timeout)

    def rows(self, table):
        """A table as bangerd left it (read directly: vm.list would fix a row up)."""
        db = sqlite3.connect(f"file:{self.state / 'state.db'}?mode=ro", uri=True, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(f"SELECT * FROM {table}")]
        finally:
            db.close()

    def running(self):
        """{name: boot_id} of the VMs whose rows say running."""
        return {r["name"]: r["boot_id"] for r in self.rows("vms") if r["state"] == "running"}

    def tag(self):
        return self.call("engine.status")["tap_pool"]["prefix"][2:6]


# ---- what the host holds ----

def host_taps():
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ": bt" in line)


def vmm_processes(h):
    """{pid: vm id} of live VMM processes whose command line names this
    harness's runtime directory (zombies are not VMs)."""
    found = {}
    prefix = f"{h.run}/"
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            args = (d / "cmdline").read_bytes().split(b"\0")
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] == "Z" or not args or b"qemu-system" not in args[0]:
            continue
        for a in args:
            text = a.decode(errors="replace")
            i = text.find(prefix)
            if i >= 0:
                found[int(d.name)] = text[i + len(prefix):].split("/", 1)[0]
                break
    return found


def nat_rules(tag):
    """The guest addresses this engine's NAT chain masquerades; None without the chain."""
    p = subprocess.run(["nft", "list", "chain", "ip", "banger", f"postrouting-{tag}"], capture_output=True,
                       text=True)
    if p.returncode != 0:
        return None
    return sorted(line.split("ip saddr ")[1].split()[0] for line in p.stdout.splitlines() if "ip saddr " in line)


def violations(h, keep=None, network=True, agent_timeout_s=120):
    """Every way the state directory, the host and the rows disagree, as
    messages (empty: consistent). keep: {name: boot_id} that must still run
    with that boot. network: this harness boots VMs (taps, VMMs, NAT)."""
    bad = []
    vms = h.rows("vms")
    ids = {v["id"]: v for v in vms}
    status = h.call("engine.status")
    for v in vms:
        name, state = v["name"], v["state"]
        if state not in ("running", "stopped", "error"):
            bad.append(f"vm {name}: row left in state {state}")
        if not (h.state / "vms" / v["id"] / "overlay.ext4").is_file():
            bad.append(f"vm {name}: row without its overlay.ext4")
        if state != "running" and v["tap"]:
            bad.append(f"vm {name}: {state} but holds tap {v['tap']}")
    if network:
        procs = vmm_processes(h)
        for pid, vid in procs.items():
            v = ids.get(vid)
            if v is None or v["state"] not in ("running", "error"):
                bad.append(f"VMM pid {pid} of {'no VM' if v is None else 'vm ' + v['name'] + ' (' + v['state'] + ')'}"
                           " runs")
        for v in vms:
            if v["state"] != "running":
                continue
            vmm = json.loads(v["vmm"] or "{}")
            if vmm.get("pid") not in procs:
                bad.append(f"vm {v['name']}: running but its VMM (pid {vmm.get('pid')}) is not")
            if not v["tap"] or v["tap"] not in host_taps():
                bad.append(f"vm {v['name']}: running without its tap ({v['tap']!r})")
            try:
                r = h.call("vm.exec", {"name": v["name"], "argv": ["true"], "timeout_s": agent_timeout_s})
                if r["exit_code"] != 0:
                    bad.append(f"vm {v['name']}: `true` in the guest exited {r['exit_code']}")
            except banger.Error as e:
                bad.append(f"vm {v['name']}: running but its agent does not answer: {e}")
        pool = status["tap_pool"]
        held = set(pool["idle"]) | {v["tap"] for v in vms if v["tap"]}
        for _ in range(30):  # the refill thread may be making one right now
            leaked = [t for t in host_taps() if t.startswith(pool["prefix"]) and t not in held]
            if not leaked:
                break
            time.sleep(0.1)
            pool = h.call("engine.status")["tap_pool"]
            held = set(pool["idle"]) | {v["tap"] for v in h.rows("vms") if v["tap"]}
        bad += [f"tap {t} leaked" for t in leaked]
        want = sorted(v["ip"] for v in vms if v["nat"] and v["tap"])
        got = nat_rules(pool["prefix"][2:6])
        if (got or []) != want:
            bad.append(f"NAT rules masquerade {got}, the rows want {want}")
    run_dirs = [p.name for p in h.run.iterdir() if p.is_dir()] if h.run.is_dir() else []
    for name in run_dirs:
        v = ids.get(name)
        if v is None or v["state"] not in ("running", "error"):
            bad.append(f"runtime directory {h.run / name} leaked")
    vm_dirs = [p.name for p in (h.state / "vms").iterdir()] if (h.state / "vms").is_dir() else []
    bad += [f"VM directory vms/{d} has no row" for d in vm_dirs if d not in ids]
    for table, sub in (("images", "images"), ("kernels", "kernels")):
        known = {r["id"] for r in h.rows(table)}
        on_disk = [p.name for p in (h.state / sub).iterdir()] if (h.state / sub).is_dir() else []
        bad += [f"{sub}/{d} has no row" for d in on_disk if d not in known]
        for r in h.rows(table):
            path = r["rootfs"] if table == "images" else r["dir"]
            if (table == "kernels" or r["managed"]) and not Path(path).exists():
                bad.append(f"{table[:-1]} {r['name']}: row without its files ({path})")
    tmp = h.state / "tmp"
    bad += [f"scratch {tmp / n} leaked" for n in (os.listdir(tmp) if tmp.is_dir() else [])]
    blobs = h.cache / "oci" / "blobs" / "sha256"
    bad += [f"half-written blob or stale lock {blobs / n} left" for n in
            (os.listdir(blobs) if blobs.is_dir() else []) if ".tmp." in n or n.endswith(".lock")]
    rootfs_cache = h.cache / "rootfs"
    bad += [f"temp file {rootfs_cache / n} in the rootfs cache" for n in
            (os.listdir(rootfs_cache) if rootfs_cache.is_dir() else []) if not n.endswith(".tar")]
    running = {v["name"]: v for v in vms if v["state"] == "running"}
    for name, boot_id in (keep or {}).items():
        v = running.get(name)
        if v is None:
            bad.append(f"vm {name} ran before the trial and does not now")
        elif v["boot_id"] != boot_id:
            bad.append(f"vm {name} was rebooted (boot_id {boot_id} -> {v['boot_id']})")
    return bad


# ---- kill trials ----

class Op:
    """One operation under test. setup(h) makes its precondition (bangerd
    up), params(h) the call's params, reset(h) brings the state back for the
    next trial (bangerd up). subject: VM names it may change (their boot_id
    is not kept); est: its duration's first guess in seconds (replaced by
    measured ones)."""

    def __init__(self, name, method, params, setup=None, reset=None, subject=(), est=5.0, boots=False):
        self.name, self.method, self._params, self.boots = name, method, params, boots
        self._setup, self._reset, self.subject, self.est = setup, reset, set(subject), est
        self.durations = []

    def setup(self, h):
        if self._setup:
            self._setup(h)

    def params(self, h):
        return self._params(h) if callable(self._params) else dict(self._params)

    def reset(self, h):
        if self._reset:
            self._reset(h)

    def estimate(self):
        return max(self.durations) if self.durations else self.est


def kill_trial(h, op, rng, log=print, network=True):
    """One trial: returns (killed mid-operation?, violations)."""
    op.setup(h)
    keep = {n: b for n, b in h.running().items() if n not in op.subject}
    delay = rng.uniform(0.0, op.estimate())
    ctx = h.ctx()
    t0 = time.monotonic()
    call = ctx.start(op.method, op.params(h))
    try:
        call.result(timeout=delay)
        finished = True
    except TimeoutError:
        finished = False
    except banger.Error as e:
        raise AssertionError(f"{op.name} failed before any kill: {e}")
    if finished:  # it beat the kill: a measured duration for the next delays
        op.durations.append(time.monotonic() - t0)
    h.kill()
    if not finished:
        try:
            call.result(timeout=60)
        except banger.Error:
            pass  # the daemon died under it: what the trial is about
        except TimeoutError:
            raise AssertionError(f"{op.name}: the call did not end within 60 s of bangerd's death")
    ctx.close()
    h.start()
    bad = violations(h, keep, network=network)
    log(f"  {op.name}: " + (f"killed at {delay:.2f} s" if not finished else
                            f"done in {op.durations[-1]:.2f} s, before the kill due at {delay:.2f} s")
        + (f": {len(bad)} violation(s): {bad}" if bad else ""))
    op.reset(h)
    return (not finished), bad


def campaign(h, ops, trials, seed=None, log=print, network=True):
    """Runs `trials` kill trials of each op (a dict name -> n, or one n for
    all); returns rows (operation, trials, killed, completed, violations)
    and every violation message."""
    rng = random.Random(seed)
    rows, found = [], []
    for op in ops:
        n = trials.get(op.name, 0) if isinstance(trials, dict) else trials
        killed = count = 0
        msgs = []
        for _ in range(n):
            try:
                k, bad = kill_trial(h, op, rng, log, network)
            except banger.Error as e:  # the state after a trial is not usable: that is a finding too
                k, bad = True, [f"the next setup or reset failed: {e}"]
                log(f"  {op.name}: {bad[0]}")
            killed += k
            count += bool(bad)
            msgs += bad
        rows.append((op.name, n, killed, n - killed, count))
        found += [f"{op.name}: {m}" for m in msgs]
    return rows, found


def table(rows, columns=RESULT_COLUMNS):
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) for i, c in enumerate(columns)]
    line = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in rows])


# ---- the host-only operations ----

def gone(h, kind, name):
    """Removes image/kernel `name` if the trial left one."""
    try:
        h.call(f"{kind}.rm", {"name": name})
    except banger.NotFound:
        pass


def host_ops(h, tmp, registry_host, deb):
    """The host-only operations of the kill campaign."""
    tar = make_tar(tmp / "big.tar", [(f"f{i}", os.urandom(4 << 20), 0o644) for i in range(16)])

    def reset_pull(h):
        gone(h, "image", "pulled")
        subprocess.run(["rm", "-rf", str(h.cache / "oci")], check=True)  # the next pull downloads again

    return [
        Op("image import", "image.import", {"name": "imported", "tars": [str(tar)]},
           reset=lambda h: gone(h, "image", "imported"), est=2.0),
        Op("image pull", "image.pull", {"ref": f"{registry_host}/campaign/app:1", "name": "pulled"},
           reset=reset_pull, est=2.0),
        Op("kernel import", "kernel.import", {"name": "kimp", "deb": str(deb)},
           reset=lambda h: gone(h, "kernel", "kimp"), est=8.0),
    ]


def push_app(registry):
    """campaign/app:1 — two gzip layers of 6 MiB of incompressible data."""
    from registry import LAYER_TYPES, Layer, sha256_digest
    import gzip
    import io
    import tarfile
    layers = []
    for n in range(2):
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as t:
            data = os.urandom(6 << 20)
            info = tarfile.TarInfo(f"data{n}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
            info = tarfile.TarInfo("usr/sbin/sshd")
            info.size, info.mode = 10, 0o755
            t.addfile(info, io.BytesIO(b"#!/bin/sh\n"))
        body = raw.getvalue()
        layers.append(Layer(gzip.compress(body, compresslevel=1, mtime=0), LAYER_TYPES[("oci", "gzip")],
                            sha256_digest(body)))
    registry.push_image("campaign/app", "1", layers, fmt="oci")



# ---- the VM operations ----

def vm_state(h, name):
    return next((v["state"] for v in h.rows("vms") if v["name"] == name), None)


def ensure_vm(h, name, running, nat=False):
    """VM name exists, running or stopped as asked (an error row is redone)."""
    state = vm_state(h, name)
    if state == "error":
        h.call("vm.delete", {"name": name})
        state = None
    if state is None:
        h.call("vm.create", {"name": name, "start": running, "nat": nat})
    elif running and state != "running":
        h.call("vm.start", {"name": name})
    elif not running and state == "running":
        h.call("vm.stop", {"name": name})


def drop(h, kind, name):
    try:
        h.call(f"{kind}.delete" if kind == "vm" else f"{kind}.rm", {"name": name})
    except banger.NotFound:
        pass


def make_repo(path):
    """A small git repository for workspace.prepare."""
    path.mkdir(parents=True, exist_ok=True)
    for i in range(50):
        (path / f"f{i}.txt").write_text(f"file {i}\n" * 200)
    git = lambda *a: subprocess.run(["git", "-C", str(path), *a], check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=c", "-c", "user.email=c@example.org", "commit", "-qm", "campaign")
    return path


def vm_ops(h, work):
    """Sets up the VM campaign's world (image, kernel, the bystander VM
    `keep` with git in it) and returns its operations. `keep` is never a
    subject: it must run through every trial with the same boot_id. Start
    comes before stop, so a start that beat its kill saves stop a boot."""
    debs = sorted(Path("/var/cache/banger-test").glob("linux-image-6.1.0-*-cloud-amd64_*.deb"))
    assert debs, "no cloud kernel .deb in /var/cache/banger-test (test_kernel.py downloads it)"
    h.call("image.build", {"minimal": True, "name": "debian-bookworm"})
    h.call("kernel.import", {"name": "debian-cloud", "deb": str(debs[-1])})
    t0 = time.monotonic()
    h.call("vm.create", {"name": "keep"})
    boot = time.monotonic() - t0
    h.call("vm.cp", {"name": "keep", "direction": "in", "host_path": "/usr/bin/git", "guest_path": "/usr/local/bin/"})
    repo = make_repo(Path(work) / "repo")
    # the VMs that boot in trials have NAT: a kill must not leave (or lose) their masquerade rule
    h.call("vm.create", {"name": "subj", "start": False, "nat": True})
    sessions = iter(range(1 << 30))
    return [
        Op("vm start", "vm.start", {"name": "subj"}, setup=lambda h: ensure_vm(h, "subj", False, nat=True),
           subject={"subj"}, est=boot, boots=True),
        Op("vm stop", "vm.stop", {"name": "subj"}, setup=lambda h: ensure_vm(h, "subj", True, nat=True),
           subject={"subj"}, est=3.0, boots=True),
        Op("vm create", "vm.create", {"name": "fresh", "nat": True}, setup=lambda h: drop(h, "vm", "fresh"),
           reset=lambda h: drop(h, "vm", "fresh"), subject={"fresh"}, est=boot, boots=True),
        Op("vm delete", "vm.delete", {"name": "doomed"}, setup=lambda h: ensure_vm(h, "doomed", False),
           subject={"doomed"}, est=1.0),
        Op("image build", "image.build", {"minimal": True, "name": "rebuilt"},
           reset=lambda h: drop(h, "image", "rebuilt"), est=10.0),
        Op("workspace prepare", "vm.workspace.prepare", {"name": "keep", "path": str(repo), "force": True},
           est=5.0),
        Op("session start", "vm.session.start",
           lambda h: {"name": "keep", "session": f"s{next(sessions)}", "argv": ["sleep", "3600"]}, est=2.0),
    ]


def host_reboot(h):
    """What a host reboot does to banger: bangerd and every VMM die, taps,
    the bridge and the NAT table vanish, the runtime directory (a tmpfs) is
    empty; then bangerd starts again."""
    prefix = h.call("engine.status")["tap_pool"]["prefix"]
    h.kill()
    for pid in vmm_processes(h):
        os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 30
    while vmm_processes(h) and time.time() < deadline:
        time.sleep(0.1)
    for t in host_taps():
        if t.startswith(prefix):
            subprocess.run(["ip", "link", "del", t], check=True)
    subprocess.run(["ip", "link", "del", "br-banger"], capture_output=True)
    subprocess.run(["nft", "delete", "table", "ip", "banger"], capture_output=True)
    subprocess.run(["rm", "-rf", str(h.run)], check=True)
    h.start()


# ---- a registry that cuts the stream ----

class CuttingProxy:
    """An HTTP proxy in front of a registry that, while `cut` is set, sends
    a blob's headers and the first `keep` bytes of its body, then closes the
    connection (what a dropped link looks like to a client)."""

    def __init__(self, upstream, keep=4096):
        from registry import Proxy  # the tests' forwarding proxy

        outer = self

        class Cutter(Proxy):
            def forward(self, h):
                if outer.cut and h.command == "GET" and "/blobs/" in h.path:
                    import http.client
                    conn = http.client.HTTPConnection(self.upstream, timeout=60)
                    conn.request("GET", h.path)
                    resp = conn.getresponse()
                    body = resp.read()
                    conn.close()
                    if resp.status != 200 or len(body) <= outer.keep:
                        h.reply(resp.status, {}, body)
                        return
                    outer.cuts += 1
                    h.send_response(200)
                    h.send_header("Content-Length", str(len(body)))
                    h.send_header("Content-Type", "application/octet-stream")
                    h.end_headers()
                    h.wfile.write(body[:outer.keep])
                    h.wfile.flush()
                    h.close_connection = True
                    h.connection.shutdown(socket.SHUT_RDWR)
                    return
                super().forward(h)

        self.cut, self.keep, self.cuts = True, keep, 0
        self.server = Cutter(upstream)
        self.host = self.server.host

    def close(self):
        self.server.close()


# ---- full disk ----

def fill(path, leave):
    """Fills the filesystem of path until `leave` bytes are free; returns the filler."""
    filler = Path(path) / "filler"
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    with open(filler, "wb") as f:
        left = max(0, free - leave)
        chunk = b"\0" * (1 << 20)
        while left > 0:
            try:
                left -= f.write(chunk[:min(left, len(chunk))])
            except OSError:
                break
    return filler


# ---- faults: each returns a line for the report, raises AssertionError on a failure ----

def expect_error(h, method, params):
    try:
        h.call(method, params)
    except banger.Error as e:
        return e.message
    raise AssertionError(f"{method} succeeded where it had to fail")


def fault_full_disk(h, method, params, leave):
    """method with `leave` bytes free on the state's filesystem: a clear
    error, nothing left half-written; with the space back, it works."""
    filler = fill(h.state, leave)
    try:
        msg = expect_error(h, method, params)
        assert any(s in msg for s in ("disk is full", "No space", "database or disk is full")), msg
        bad = violations(h, network=False)
        assert bad == [], bad
    finally:
        filler.unlink()
    h.call(method, params)
    bad = violations(h, network=False)
    assert bad == [], bad
    return f"{method} on a full disk: {msg}; retried with space: ok"


def full_disk_faults(h, deb, tmp, registry_host=None):
    """Every writer on a full disk: image import, kernel import, vm create,
    and with a registry holding campaign/app:1 (push_app), image pull."""
    tar = tmp / "full-disk.tar"
    make_tar(tar, [("usr/sbin/sshd", b"#!/bin/sh\n", 0o755), ("payload", os.urandom(6 << 20), 0o644)])
    lines = [fault_full_disk(h, "image.import", {"name": "img", "tars": [str(tar)]}, 2 << 20),
             fault_full_disk(h, "kernel.import", {"name": "k", "deb": str(deb)}, 4 << 20),
             fault_full_disk(h, "vm.create", {"name": "cold", "image": "img", "kernel": "k", "start": False,
                                              "disk_size": "256M"}, 64 << 10)]
    if registry_host:  # 12 MiB of layers into a blob cache and an image on 4 MiB
        lines.append(fault_full_disk(h, "image.pull", {"ref": f"{registry_host}/campaign/app:1", "name": "full"},
                                     4 << 20))
    return lines


def make_tar(path, members):
    import io
    import tarfile
    with tarfile.open(path, "w") as t:
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            t.addfile(info, io.BytesIO(data))
    return path


def fault_cut_blob(h, registry_host, ref_path, name):
    """A pull through a proxy that cuts every blob after 4 KiB: a clear
    error, no image, nothing half in the cache (every cached blob hashes to
    its name); the same pull without the cut works."""
    proxy = CuttingProxy(registry_host)
    try:
        ref = f"{proxy.host}/{ref_path}"
        msg = expect_error(h, "image.pull", {"ref": ref, "name": name})
        assert proxy.cuts >= 1, "the proxy never cut a blob"
        assert "sha256:" in msg or "blob" in msg, msg
        assert all(i["name"] != name for i in h.call("image.list")["images"])
        bad = violations(h, network=False)
        assert bad == [], bad
        import hashlib
        blobs = h.cache / "oci" / "blobs" / "sha256"
        for p in (blobs.iterdir() if blobs.is_dir() else []):
            assert hashlib.sha256(p.read_bytes()).hexdigest() == p.name, f"{p} is not what its name says"
        proxy.cut = False
        h.call("image.pull", {"ref": ref, "name": name})
        bad = violations(h, network=False)
        assert bad == [], bad
        return f"registry cut a blob after {proxy.keep} bytes: {msg}; retried: ok"
    finally:
        proxy.close()


def fault_vmm_killed(h, name):
    """kill -9 of a running VM's VMM: the VM reads stopped, with the reason,
    and starts again."""
    ensure_vm(h, name, True)
    pid = h.call("vm.show", {"name": name})["vmm"]["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 30
    while pid in vmm_processes(h):
        assert time.time() < deadline, "the VMM outlived SIGKILL"
        time.sleep(0.1)
    shown = h.call("vm.show", {"name": name})
    assert shown["state"] == "stopped" and "VMM exited without banger stopping it" in (shown["stop_reason"] or ""), \
        shown
    assert "stopped by" in h.cli("vm", "show", name).stdout
    bad = violations(h)
    assert bad == [], bad
    t0 = time.monotonic()
    started = h.call("vm.start", {"name": name})
    assert started["state"] == "running" and started["stop_reason"] is None, started
    bad = violations(h)
    assert bad == [], bad
    return f"VMM killed: reads stopped ({shown['stop_reason']}); started again in {time.monotonic() - t0:.1f} s"


def fault_agent_killed(h, name):
    """kill -9 of the guest agent from inside: the next exec works once
    systemd has restarted it, in the same boot."""
    boot_id = h.running()[name]
    r = h.cli("vm", "exec", name, "--", "sh", "-c", "kill -9 $(pidof banger-agent)")
    assert r.returncode != 0 and "the guest agent restarted" in r.stderr, (r.returncode, r.stderr)
    t0 = time.monotonic()
    r2 = h.cli("vm", "exec", name, "--", "echo", "back")
    took = time.monotonic() - t0
    assert (r2.returncode, r2.stdout) == (0, "back\n"), r2.stderr
    assert h.running()[name] == boot_id, "the guest rebooted"
    bad = violations(h)
    assert bad == [], bad
    return (f"agent killed (that exec: exit {r.returncode}, {r.stderr.strip()[:80]!r}); next exec answered "
            f"in {took:.1f} s")


def fault_host_reboot(h):
    """Every VMM killed, the network and runtime directory gone, bangerd
    restarted: consistent, and every VM that ran starts again (in parallel)."""
    import threading
    names = sorted(h.running())
    assert names, "nothing runs: a reboot would prove nothing"
    host_reboot(h)
    assert h.running() == {}, h.running()
    bad = violations(h)
    assert bad == [], bad
    errors = []

    def start(n):
        try:
            h.call("vm.start", {"name": n})
        except banger.Error as e:
            errors.append(f"{n}: {e}")
    t0 = time.monotonic()
    threads = [threading.Thread(target=start, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(900)
    assert errors == [], errors
    assert sorted(h.running()) == names
    bad = violations(h)
    assert bad == [], bad
    return f"host reboot: {len(names)} VMs read stopped, all started again in {time.monotonic() - t0:.1f} s"

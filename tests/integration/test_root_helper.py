"""bangerd-root, the narrow root helper (docs/privileges.md), as a real
process: run as root inside a private network namespace on a temporary
socket, serving uid 65534. Clients in that namespace run as 65534 (or
65533, who is refused) through setpriv: raw JSON lines from Python, and the
library's own net calls (tests/unit/net/root-helper-client), which go
through the helper because they are not root. Needs root, unshare, nsenter
and setpriv; skipped otherwise."""
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import BUILD, CHILD_ASAN, wait_for_socket

HELPER = BUILD / "tools" / "bangerd-root" / "bangerd-root"
CLIENT = BUILD / "tests" / "unit" / "net" / "root-helper-client"
OWNER, OTHER = 65534, 65533
PY = "/usr/bin/python3"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(p) for p in ("unshare", "nsenter", "setpriv", "ip")),
    reason="needs root, unshare, nsenter, setpriv and ip")

# One JSON line to the socket, one answer back; run as another uid.
RAW_CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
try:
    s.sendall(sys.stdin.buffer.read())
    s.shutdown(socket.SHUT_WR)
except OSError:
    pass  # the helper hung up (an oversized request): read its answer

data = b""
while True:
    try:
        b = s.recv(65536)
    except ConnectionResetError:
        break
    if not b:
        break
    data += b
sys.stdout.write(data.decode())
"""


def uid_of(user):
    """ip prints a tap's owner by name when it has one."""
    return int(user) if str(user).isdigit() else pwd.getpwnam(user).pw_uid


class Helper:
    def __init__(self, proc, sock, log):
        self.proc, self.sock, self.log = proc, sock, log
        self.ns = ["nsenter", f"--net=/proc/{proc.pid}/ns/net"]

    def as_uid(self, uid, argv, env_extra=None, **kw):
        env = dict(os.environ, BANGER_ROOT_SOCKET=self.sock, ASAN_OPTIONS="detect_leaks=0", **(env_extra or {}))
        return subprocess.run(self.ns + ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"] + argv,
                              capture_output=True, text=True, timeout=30, env=env, **kw)

    def raw(self, payload, uid=OWNER):
        """Sends payload (str or bytes) as uid; the answers, parsed."""
        if isinstance(payload, str):
            payload = payload.encode()
        r = self.as_uid(uid, [PY, "-c", RAW_CLIENT, self.sock], input=payload.decode("latin-1"))
        assert r.returncode == 0, r.stderr
        return [json.loads(line) for line in r.stdout.splitlines() if line]

    def req(self, uid=OWNER, **req):
        answers = self.raw(json.dumps(req) + "\n", uid)
        assert len(answers) == 1, answers
        return answers[0]

    def client(self, *args, uid=OWNER):
        return self.as_uid(uid, [str(CLIENT)] + list(args))

    def root(self, *argv):
        return subprocess.run(self.ns + list(argv), capture_output=True, text=True, timeout=30)

    def link(self, name):
        r = self.root("ip", "-d", "-j", "link", "show", "dev", name)
        return json.loads(r.stdout)[0] if r.returncode == 0 else None

    def log_text(self):
        return self.log.read_text()


# A stand-in for resolvectl, for the helper's resolver verbs: logs its argv
# and the environment it was given, and fails when told to.
FAKE_RESOLVECTL = """#!/bin/sh
{ printf 'argv:'; for a in "$@"; do printf ' %s' "$a"; done; printf '\\n'
  printf 'env:'; tr '\\000' ' ' < /proc/$$/environ; printf '\\n'; } >> @DIR@/resolvectl.log
if [ -e @DIR@/fail ]; then echo "Failed to set DNS configuration: Access denied" >&2; exit 1; fi
"""


def start_helper(d, resolved):
    """bangerd-root in its own network and mount namespaces. There,
    /run/systemd is an empty tmpfs (systemd-resolved does not run, whatever
    the host runs); with resolved, it holds resolved's socket and
    /usr/bin/resolvectl (an overlay on /usr/bin) is FAKE_RESOLVECTL."""
    sock, log = os.path.join(d, "root.sock"), os.path.join(d, "helper.log")
    setup = "mount -t tmpfs tmpfs /run/systemd"
    if resolved:
        for sub in ("upper", "work"):
            os.mkdir(os.path.join(d, sub))
        fake = Path(d, "upper", "resolvectl")
        fake.write_text(FAKE_RESOLVECTL.replace("@DIR@", d))
        fake.chmod(0o755)
        setup += (f" && mkdir /run/systemd/resolve && : > /run/systemd/resolve/io.systemd.Resolve"
                  f" && mount -t overlay overlay -o lowerdir=/usr/bin,upperdir={d}/upper,workdir={d}/work /usr/bin")
    env = dict(os.environ)
    if CHILD_ASAN:
        env["ASAN_OPTIONS"] = CHILD_ASAN
    with open(log, "w") as logf:
        proc = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "--", "sh", "-c",
             setup + ' && ip link set lo up && exec "$@"', "helper", str(HELPER),
             "--owner", str(OWNER), "--socket", sock, "--config", os.path.join(d, "none.toml")],
            stderr=logf, env=env)
    return proc, sock, Path(log)


@contextlib.contextmanager
def running_helper(resolved=False):
    d = tempfile.mkdtemp(prefix="banger-root-helper-")
    os.chmod(d, 0o755)  # uid 65534 must reach the socket
    proc, sock, log = start_helper(d, resolved)
    try:
        wait_for_socket(sock, timeout=10)
        h = Helper(proc, sock, log)
        h.dir = Path(d)
        yield h
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=10)
        text = log.read_text()
        shutil.rmtree(d, ignore_errors=True)
    assert rc == 0, text
    assert "stopped" in text


@pytest.fixture
def helper():
    with running_helper() as h:
        yield h


@pytest.fixture
def resolved_helper():
    with running_helper(resolved=True) as h:
        yield h


def test_owner_creates_and_deletes_its_tap_through_the_library(helper):
    r = helper.client("bridge", "br-banger", "172.16.0.1", "24")
    assert r.stdout.strip() == "ok", r.stdout + r.stderr
    assert helper.link("br-banger")["linkinfo"]["info_kind"] == "bridge"
    r = helper.client("tap-create", "bt1a2b-0", "br-banger")
    assert r.stdout.strip() == "ok", r.stdout + r.stderr
    tap = helper.link("bt1a2b-0")
    assert tap["linkinfo"]["info_kind"] == "tun"
    assert tap["linkinfo"]["info_data"]["type"] == "tap"
    assert uid_of(tap["linkinfo"]["info_data"]["user"]) == OWNER  # TUNSETOWNER: the VMM may open it
    assert tap["master"] == "br-banger"
    # the same name again: already exists, nothing replaced
    r = helper.client("tap-create", "bt1a2b-0", "br-banger")
    assert r.returncode == 1 and r.stdout.startswith("error EEXIST")
    assert helper.client("tap-delete", "bt1a2b-0").stdout.strip() == "ok"
    assert helper.link("bt1a2b-0") is None
    assert helper.client("tap-delete-if-exists", "bt1a2b-0").stdout.strip() == "ok"
    r = helper.client("tap-delete", "bt1a2b-0")
    assert r.returncode == 1 and r.stdout.startswith("error ENOTFOUND")
    # NAT for addresses inside the cidr, then none; forwarding
    assert helper.client("nat", "1a2b", "br-banger", "172.16.0.5").stdout.strip() == "ok"
    nft = helper.root("nft", "list", "chain", "ip", "banger", "postrouting-1a2b") if shutil.which("nft") else None
    if nft is not None:
        assert "172.16.0.5" in nft.stdout
    assert helper.client("nat", "1a2b", "br-banger").stdout.strip() == "ok"
    assert helper.client("forward").stdout.strip() == "ok"
    log = helper.log_text()
    assert f"uid {OWNER} pid" in log and "tap.create bt1a2b-0: ok" in log and "tap.delete bt1a2b-0: ok" in log


def test_library_outside_the_policy_is_refused(helper):
    # the library's own calls, asking for what the helper does not allow
    r = helper.client("tap-create", "bt1a2b-1", "docker0")
    assert r.returncode == 1 and r.stdout.startswith("error EPERM") and "br-banger" in r.stdout
    r = helper.client("bridge", "br-banger", "10.1.0.1", "24")
    assert r.returncode == 1 and r.stdout.startswith("error EPERM")
    r = helper.client("tap-delete", "eth0")
    assert r.returncode == 1 and r.stdout.startswith("error EINVAL")
    r = helper.client("nat", "1a2b", "br-banger", "8.8.8.8")
    assert r.returncode == 1 and r.stdout.startswith("error EPERM") and "cidr" in r.stdout


def test_hostile_requests_are_refused_and_logged(helper):
    assert helper.req(verb="bridge.ensure", name="br-banger", ip="172.16.0.1", prefix_len=24)["ok"]
    cases = [
        ({"verb": "tap.create", "name": "bt1a2b-0/../x", "bridge": "br-banger"}, "EINVAL"),
        ({"verb": "tap.create", "name": "../../etc/passwd", "bridge": "br-banger"}, "EINVAL"),
        ({"verb": "tap.create", "name": "bt1a2b-123456789", "bridge": "br-banger"}, "EINVAL"),
        ({"verb": "tap.create", "name": "eth0", "bridge": "br-banger"}, "EINVAL"),
        ({"verb": "tap.create", "name": "vethfoo", "bridge": "br-banger"}, "EINVAL"),
        ({"verb": "tap.create", "name": "bt1a2b-2", "bridge": "br-banger", "owner": 0}, "EINVAL"),
        ({"verb": "tap.delete", "name": "lo"}, "EINVAL"),
        ({"verb": "bridge.ensure", "name": "br-banger", "ip": "10.0.0.1", "prefix_len": 8}, "EPERM"),
        ({"verb": "nat.sync", "tag": "1a2b", "bridge": "br-banger", "ips": ["0.0.0.0"]}, "EPERM"),
        ({"verb": "exec", "argv": ["/bin/sh", "-c", "id"]}, "ENOMETHOD"),
        ({"verb": "link.delete", "name": "lo"}, "ENOMETHOD"),
        ({"cmd": "tap.create"}, "EPROTO"),
    ]
    for req, code in cases:
        a = helper.req(**req)
        assert a == {"ok": False, "error": code, "message": a["message"]}, (req, a)
    # garbage, and an empty object
    assert helper.raw("hello\n")[0]["error"] == "EPROTO"
    assert helper.raw(b"\xff\xfe{]\n")[0]["error"] == "EPROTO"
    # huge input: one answer, then the connection closes
    answers = helper.raw('{"verb":"ip_forward.enable","pad":"' + "A" * 100000 + '"}\n')
    assert answers[-1]["error"] == "ETOOBIG" and len(answers) == 1
    # nothing was created along the way, and the helper is still serving
    assert helper.root("ip", "-o", "link", "show").stdout.count("bt1a2b") == 0
    assert helper.req(verb="ip_forward.enable")["ok"]
    log = helper.log_text()
    assert "refused or failed (ENOMETHOD): unknown verb \"exec\"" in log
    assert "over 4096 bytes" in log
    assert log.count("refused or failed") >= len(cases) + 2


def test_foreign_taps_are_not_ours_to_delete(helper):
    assert helper.req(verb="bridge.ensure", name="br-banger", ip="172.16.0.1", prefix_len=24)["ok"]
    # a tap of banger's naming that root made with no owner, one owned by
    # another uid, and a device of that name that is not a tap at all
    assert helper.root("ip", "tuntap", "add", "bt1a2b-7", "mode", "tap").returncode == 0
    assert helper.root("ip", "tuntap", "add", "bt1a2b-8", "mode", "tap", "user", str(OTHER)).returncode == 0
    assert helper.root("ip", "link", "add", "bt1a2b-9", "type", "bridge").returncode == 0
    for name in ("bt1a2b-7", "bt1a2b-8", "bt1a2b-9"):
        a = helper.req(verb="tap.delete", name=name)
        assert a["error"] == "EPERM", a
        assert helper.link(name) is not None
        # creating over it does not take it over either
        a = helper.req(verb="tap.create", name=name, bridge="br-banger")
        assert a["error"] == "EEXIST", a
    a = helper.req(verb="tap.delete", name="bt1a2b-8")
    assert f"not owned by uid {OWNER}" in a["message"]
    assert "not a tap" in helper.req(verb="tap.delete", name="bt1a2b-9")["message"]
    # a tap 65534 made is not 65533's to delete even were it allowed in:
    # 65533 is not served at all
    assert helper.req(verb="tap.create", name="bt1a2b-3", bridge="br-banger")["ok"]
    a = helper.req(uid=OTHER, verb="tap.delete", name="bt1a2b-3")
    assert a["error"] == "EPERM"
    assert helper.link("bt1a2b-3") is not None
    assert f"refused a connection from uid {OTHER}" in helper.log_text()
    # root may delete it (the helper's owner and root are served)
    assert helper.req(uid=0, verb="tap.delete", name="bt1a2b-3")["ok"]


def test_resolver_verbs_take_no_arguments_and_need_resolved(helper):
    """resolver.route and resolver.revert: no argument of any name is
    accepted, and where systemd-resolved does not run (this helper's
    namespace: no /run/systemd/resolve) they are EUNSUPPORTED."""
    for verb in ("resolver.route", "resolver.revert"):
        for extra in ({"bridge": "br-banger"}, {"name": "eth0"}, {"ip": "172.16.0.1"},
                      {"argv": ["/bin/sh", "-c", "id"]}, {"env": {"LD_PRELOAD": "/tmp/x.so"}}):
            a = helper.req(verb=verb, **extra)
            assert a["error"] == "EINVAL" and "unexpected argument" in a["message"], (verb, extra, a)
        a = helper.req(verb=verb)
        assert a["error"] == "EUNSUPPORTED", a
        assert "systemd-resolved does not run" in a["message"]
        # another uid is refused at connect, before its request is read
        assert helper.req(uid=OTHER, verb=verb)["error"] == "EPERM"
    # the library's call as the owner gets the same answer
    r = helper.client("resolver-route", "br-banger", "172.16.0.1")
    assert r.returncode == 1 and r.stdout.startswith("error EUNSUPPORTED"), r.stdout + r.stderr
    log = helper.log_text()
    assert "resolver.route -: refused or failed (EINVAL): unexpected argument" in log
    assert "resolver.revert -: refused or failed (EUNSUPPORTED)" in log
    assert f"refused a connection from uid {OTHER}" in log


def test_resolver_route_runs_exactly_resolvectl(resolved_helper):
    """Where resolved runs, the helper runs /usr/bin/resolvectl with its own
    bridge and bridge_ip, whatever the caller names, with an empty
    environment; a failure comes back with resolvectl's last line."""
    h = resolved_helper
    calls = h.dir / "resolvectl.log"
    # the library asks for another bridge and address: they are not even sent
    r = h.client("resolver-route", "br-other", "10.9.9.9")
    assert r.stdout.strip() == "ok", r.stdout + r.stderr
    assert calls.read_text().splitlines() == ["argv: dns br-banger 172.16.0.1", "env:",
                                              "argv: domain br-banger ~vm", "env:"]
    assert h.client("resolver-revert", "br-other").stdout.strip() == "ok"
    assert calls.read_text().splitlines()[4:] == ["argv: revert br-banger", "env:"]
    # refused requests run nothing
    calls.unlink()
    assert h.req(verb="resolver.route", bridge="eth0")["error"] == "EINVAL"
    assert h.req(uid=OTHER, verb="resolver.revert")["error"] == "EPERM"
    assert not calls.exists()
    (h.dir / "fail").write_text("")
    a = h.req(verb="resolver.route")
    assert a["error"] == "EIO", a
    assert "resolvectl dns br-banger failed (exit 1): Failed to set DNS configuration: Access denied" in a["message"]
    assert calls.read_text().count("argv:") == 1  # domain is not tried after dns failed
    log = h.log_text()
    assert log.count("resolver.route -: ok") == 1 and "resolver.revert -: ok" in log
    assert "resolver.route -: refused or failed (EIO)" in log


def test_library_without_the_helper_says_so(tmp_path):
    d = tempfile.mkdtemp(prefix="banger-root-helper-")
    os.chmod(d, 0o755)
    try:
        env = dict(os.environ, BANGER_ROOT_SOCKET=os.path.join(d, "none.sock"), ASAN_OPTIONS="detect_leaks=0")
        r = subprocess.run(["setpriv", f"--reuid={OWNER}", f"--regid={OWNER}", "--clear-groups", str(CLIENT),
                            "tap-create", "bt1a2b-0", "br-banger"], capture_output=True, text=True, env=env,
                           timeout=30)
    finally:
        shutil.rmtree(d)
    assert r.returncode == 1
    assert r.stdout.startswith("error EPERM"), r.stdout
    assert "bangerd-root" in r.stdout and "none.sock" in r.stdout


def test_helper_refuses_to_start_wrongly(tmp_path):
    r = subprocess.run([str(HELPER), "--socket", str(tmp_path / "s")], capture_output=True, text=True)
    assert r.returncode == 2  # no --owner
    r = subprocess.run([str(HELPER), "--owner", "0", "--socket", str(tmp_path / "s")], capture_output=True, text=True)
    assert r.returncode == 2 and "non-root uid" in r.stderr
    (tmp_path / "f").write_text("x")
    r = subprocess.run([str(HELPER), "--owner", "1000", "--socket", str(tmp_path / "f"), "--config",
                        str(tmp_path / "none.toml")], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "not a socket" in r.stderr
    assert (tmp_path / "f").read_text() == "x"
    r = subprocess.run(["setpriv", f"--reuid={OWNER}", f"--regid={OWNER}", "--clear-groups", str(HELPER),
                        "--owner", "1000"], capture_output=True, text=True, timeout=10,
                       env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    assert r.returncode == 1 and "must run as root" in r.stderr


def test_helper_unit_is_hardened_and_passes_systemd_analyze_verify(tmp_path):
    built = (BUILD / "data" / "bangerd-root@.service").read_text()
    keys = {}
    for line in built.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            keys.setdefault(k, []).append(v)
    for k, v in {"NoNewPrivileges": "yes", "CapabilityBoundingSet": "CAP_NET_ADMIN", "ProtectSystem": "strict",
                 "ProtectHome": "yes", "RestrictAddressFamilies": "AF_UNIX AF_NETLINK", "DevicePolicy": "closed",
                 "DeviceAllow": "/dev/net/tun rw", "KillMode": "process", "RuntimeDirectoryPreserve": "yes",
                 # its own: systemd hands a RuntimeDirectory to the unit's user, and
                 # /run/banger is the owner's bangerd.service's
                 "RuntimeDirectory": "banger-root"}.items():
        assert keys.get(k) == [v], k
    exec_start = keys["ExecStart"][0].split()
    assert exec_start[0].endswith("/bin/bangerd-root") and exec_start[1:3] == ["--owner", "%i"]
    assert exec_start[3:5] == ["--socket", "/run/banger-root/root.sock"]
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.fail("systemd-analyze is required (apt-get install systemd; scripts/install-deps does)")
    copy = tmp_path / "bangerd-root@1000.service"
    copy.write_text(built.replace(exec_start[0], os.path.realpath(HELPER)))
    p = subprocess.run([exe, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == "" and p.stdout == "", p.stdout + p.stderr
    copy.write_text(copy.read_text().replace("KillMode=process", "KillMode=processes"))
    p = subprocess.run([exe, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert p.stdout + p.stderr != ""  # the check can fail


def test_doctor_passes_privileges_through_the_helper(helper):
    """banger doctor as uid 65534: its privileges row passes when the helper
    serves that uid, and fails naming the helper for uid 65533."""
    from conftest import BANGER
    assert helper.client("ping").stdout.strip() == "ok"
    r = helper.client("ping", uid=OTHER)
    assert r.returncode == 1 and r.stdout.startswith("error EPERM") and "may not use the root helper" in r.stdout
    base = tempfile.mkdtemp(prefix="banger-root-doctor-")
    os.chmod(base, 0o755)
    try:
        rows = {}
        for uid in (OWNER, OTHER):
            home = os.path.join(base, str(uid))
            os.mkdir(home)
            os.chown(home, uid, uid)
            env = {k: os.path.join(home, k.lower()) for k in
                   ("BANGER_CONFIG_DIR", "BANGER_STATE_DIR", "BANGER_CACHE_DIR", "BANGER_RUNTIME_DIR")}
            env.update(HOME=home, BANGER_URI=f"local:{home}/state")
            r = helper.as_uid(uid, [str(BANGER), "doctor", "--json"], env_extra=env)
            rows[uid] = {c["name"]: c for c in json.loads(r.stdout)["checks"]}["privileges"]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert rows[OWNER]["status"] == "PASS", rows[OWNER]
    assert "through the root helper bangerd-root on " + helper.sock in rows[OWNER]["detail"]
    assert rows[OTHER]["status"] == "FAIL", rows[OTHER]
    assert rows[OTHER]["detail"].startswith("uid 65533 without CAP_NET_ADMIN: this engine cannot make")
    assert "may not use the root helper" in rows[OTHER]["detail"]

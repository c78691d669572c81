"""The privilege split with a real VM: bangerd as a plain process running
as uid 65534 (no capability but CAP_NET_BIND_SERVICE, as bangerd.service
under `system install --user` has), its config, state, cache and runtime
directories owned by 65534, and bangerd-root as root serving that uid on a
socket in a test directory. 65534's own `banger` reaches the daemon the way
a service's owner does (its socket stands in for /run/banger/bangerd.sock
under BANGER_SYSTEM_ROOT) and runs the whole lifecycle of one small VM
through it: kernel and image import, create, exec, stop, start, delete.
The QEMU process, the tap and every file in the state directory must be
65534's, and the helper's log must show the network steps it did.

Run inside the VM tests' private network namespace (tests/run). The
daemon also gets a private mount namespace with a 0666 /dev/net/tun bound
over the host's, as on Debian (some container hosts have it 0600)."""
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import banger
from conftest import BANGER, BANGERD, BUILD, CHILD_ASAN, wait_for_socket
from layers import make_tar

HELPER = BUILD / "tools" / "bangerd-root" / "bangerd-root"
DEBS = Path(os.environ.get("BANGER_TEST_CACHE", "/var/cache/banger-test"))
UID = 65534
BRIDGE, BRIDGE_IP, CIDR = "br-bgu", "172.30.7.1", "172.30.7.0/24"
CONFIG = f"""vmm = "qemu"
qemu_accel = "tcg"
bridge_name = "{BRIDGE}"
bridge_ip = "{BRIDGE_IP}"
cidr = "{CIDR}"
dns_listen = "127.0.0.1:42071"
[vm_defaults]
vcpu = 1
memory_mib = 512
disk_size = "256M"
"""


def as_owner():
    return ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]


def owned(path, mode=0o755):
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    os.chown(path, UID, UID)
    return path


def busybox_tar(path):
    bb = Path("/bin/busybox")
    applets = subprocess.run([str(bb), "--list"], capture_output=True, text=True, check=True).stdout.split()
    entries = [{"name": "bin/busybox", "data": bb.read_bytes(), "mode": 0o755}]
    entries += [{"name": f"bin/{a}", "type": "symlink", "target": "busybox"} for a in applets if a != "busybox"]
    entries += [{"name": "etc/passwd", "data": b"root:x:0:0:root:/root:/bin/sh\n"},
                {"name": "etc/group", "data": b"root:x:0:\n"}]
    make_tar(path, entries)
    path.chmod(0o644)
    return path


def proc_ids(pid):
    """(real, effective) uid and the effective capabilities of a process."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    uids = status["Uid"].split()
    return int(uids[0]), int(uids[1]), int(status["CapEff"].strip(), 16)


@pytest.fixture
def owner_env():
    if os.environ.get("BANGER_TEST_NETNS") != "1":
        pytest.fail("VM tests create bridges and taps: run them through tests/run (unshare --net)")
    debs = sorted(DEBS.glob("linux-image-6.1.0-*-cloud-amd64_*.deb"))
    assert debs, f"no cloud kernel .deb in {DEBS} (test_kernel.py downloads it)"
    base = Path(tempfile.mkdtemp(prefix="bgu-", dir="/tmp"))  # short: socket paths
    base.chmod(0o755)
    sysroot = base / "root"
    run = owned(sysroot / "run" / "banger")
    d = {
        "base": base, "sysroot": sysroot, "run": run, "socket": run / "bangerd.sock",
        "config": owned(base / "config"), "state": owned(base / "state", 0o700),
        "cache": owned(base / "cache", 0o700), "home": owned(base / "home"), "xdg": owned(base / "xdg", 0o700),
        "helper_dir": base / "helper", "deb": debs[-1],
    }
    (d["config"] / "config.toml").write_text(CONFIG)
    os.chown(d["config"] / "config.toml", UID, UID)
    d["helper_dir"].mkdir(mode=0o755)
    (d["helper_dir"] / "config.toml").write_text(CONFIG)
    d["root_socket"] = d["helper_dir"] / "root.sock"
    d["helper_log"] = d["helper_dir"] / "helper.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANGER")}
    if CHILD_ASAN:
        env["ASAN_OPTIONS"] = CHILD_ASAN
    # the root helper, as root, for uid 65534 only
    with open(d["helper_log"], "w") as logf:
        helper = subprocess.Popen([str(HELPER), "--owner", str(UID), "--socket", str(d["root_socket"]), "--config",
                                   str(d["helper_dir"] / "config.toml")], stderr=logf, env=env)
    daemon = None
    try:
        wait_for_socket(d["root_socket"], timeout=10)
        # bangerd as 65534: what the service's drop-in gives it (CAP_NET_BIND_SERVICE alone)
        d["owner_env"] = dict(env, HOME=str(d["home"]), BANGER_CONFIG_DIR=str(d["config"]),
                              BANGER_STATE_DIR=str(d["state"]), BANGER_CACHE_DIR=str(d["cache"]),
                              BANGER_ROOT_SOCKET=str(d["root_socket"]))
        tun = base / "tun"
        setup = (f'mknod -m 0666 {tun} c 10 200 && mount --bind {tun} /dev/net/tun && exec "$@"')
        with open(base / "bangerd.log", "w") as logf:
            daemon = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", setup, "bangerd", *as_owner(),
                 "--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service", str(BANGERD), "--socket",
                 str(d["socket"])],
                stdout=logf, stderr=subprocess.STDOUT, env=dict(d["owner_env"], BANGER_RUNTIME_DIR=str(run)))
        wait_for_socket(d["socket"], daemon, timeout=30)
        d["daemon"] = daemon
        yield d
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
        helper.send_signal(signal.SIGTERM)
        helper.wait(10)
        for line in (base / "bangerd.log").read_text().splitlines()[-20:] if (base / "bangerd.log").exists() else []:
            print("bangerd:", line)
        shutil.rmtree(base, ignore_errors=True)


def owner_cli(d, *args, timeout=300):
    """banger as uid 65534, as the service's owner runs it: no socket given,
    its own (under $XDG_RUNTIME_DIR) has no daemon, and the service's
    socket (under BANGER_SYSTEM_ROOT) is 65534's."""
    env = dict(d["owner_env"], XDG_RUNTIME_DIR=str(d["xdg"]), BANGER_SYSTEM_ROOT=str(d["sysroot"]))
    return subprocess.run([*as_owner(), str(BANGER), *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def qemu_pids(d):
    out = subprocess.run(["ps", "-eo", "pid=,stat=,args="], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines()
            if "qemu-system" in line and str(d["run"]) in line and not line.split()[1].startswith("Z")]


def link(name):
    """ip's view of a device in this network namespace (/sys/class/net is
    the host's: sysfs was mounted outside it), or None."""
    r = subprocess.run(["ip", "-d", "-j", "link", "show", "dev", name], capture_output=True, text=True)
    return json.loads(r.stdout)[0] if r.returncode == 0 else None


def tap_owner(name):
    user = link(name)["linkinfo"]["info_data"]["user"]  # ip prints a name where there is one
    return int(user) if str(user).isdigit() else pwd.getpwnam(user).pw_uid


def root_owned(path):
    bad = []
    for dirpath, dirs, files in os.walk(path):
        for name in [dirpath] + [os.path.join(dirpath, n) for n in dirs + files]:
            if os.lstat(name).st_uid == 0:
                bad.append(name)
    return bad


def test_vm_lifecycle_as_the_owner_with_the_root_helper(owner_env, tmp_path):
    d = owner_env
    uid, euid, caps = proc_ids(d["daemon"].pid)
    assert (uid, euid, caps) == (UID, UID, 1 << 10), "bangerd runs as 65534 with CAP_NET_BIND_SERVICE only"
    tar = busybox_tar(d["base"] / "busybox.tar")
    t0 = time.time()
    p = owner_cli(d, "kernel", "import", "k", "--deb", str(d["deb"]))
    assert p.returncode == 0, p.stderr
    p = owner_cli(d, "image", "import", "bb", "--tar", str(tar))
    assert p.returncode == 0, p.stderr
    print(f"\nkernel and image import as 65534: {time.time() - t0:.1f} s")
    t0 = time.time()
    p = owner_cli(d, "vm", "create", "--name", "u1", "--image", "bb", "--kernel", "k", "--json")
    assert p.returncode == 0, p.stderr
    vm = json.loads(p.stdout)
    print(f"vm create as 65534: {time.time() - t0:.1f} s")
    assert vm["state"] == "running"
    # nothing autostarted on the owner's own socket: the service's daemon did it all
    assert not (d["xdg"] / "banger" / "bangerd.sock").exists()
    # the VMM runs as the owner, on a tap the helper made for the owner
    pids = qemu_pids(d)
    assert len(pids) == 1, pids
    assert proc_ids(pids[0])[:2] == (UID, UID)
    tap = vm["tap"]
    assert tap_owner(tap) == UID and link(tap)["master"] == BRIDGE
    p = owner_cli(d, "vm", "exec", "u1", "--", "sh", "-c", "echo hello from $(hostname)")
    assert (p.returncode, p.stdout) == (0, "hello from u1\n"), p.stderr
    # CAP_NET_BIND_SERVICE: the guests' DNS listener on <bridge_ip>:53
    with banger.open(f"unix:{d['socket']}", autostart=False) as ctx:
        dns = ctx.status()["dns"]
    assert dns["guest"] == f"{BRIDGE_IP}:53", dns

    assert owner_cli(d, "vm", "stop", "u1").returncode == 0
    assert json.loads(owner_cli(d, "vm", "show", "u1", "--json").stdout)["state"] == "stopped"
    assert qemu_pids(d) == []
    p = owner_cli(d, "vm", "start", "u1")
    assert p.returncode == 0, p.stderr
    p = owner_cli(d, "vm", "exec", "u1", "--", "cat", "/proc/1/comm")
    assert p.returncode == 0 and p.stdout == "banger-agent\n", p.stdout + p.stderr
    assert [proc_ids(pid)[:2] for pid in qemu_pids(d)] == [(UID, UID)]
    assert root_owned(d["state"]) == [] and root_owned(d["run"]) == []
    p = owner_cli(d, "vm", "rm", "u1")
    assert p.returncode == 0, p.stderr
    assert link(tap) is None
    assert qemu_pids(d) == []
    assert root_owned(d["state"]) == [] and root_owned(d["cache"]) == []

    log = d["helper_log"].read_text()
    assert f"uid {UID} pid {d['daemon'].pid}: bridge.ensure {BRIDGE}: ok" in log, log
    assert f"tap.create {tap}: ok" in log and f"tap.delete {tap}: ok" in log, log
    assert ": nat.sync " in log and "refused" not in log, log

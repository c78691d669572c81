"""banger system install|status|restart|uninstall, and the unit itself.

The test hosts have no systemd as PID 1, so these tests run the commands
against a temporary root (BANGER_SYSTEM_ROOT, a DESTDIR for every path they
read or write) with a fake systemctl (BANGER_SYSTEMCTL) that logs its argv
and keeps the unit's state in a file. That checks what banger writes and
which systemctl verbs it runs in which order, not that systemd runs the
unit: that is for a systemd guest. `systemd-analyze verify` (no PID 1
needed) checks every unit file we ship and write."""
import grp
import json
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BANGER, BANGERD, BUILD, ROOT, child_env

UNIT = "etc/systemd/system/bangerd.service"
META = "var/lib/banger/install.json"
CONFIG = "etc/banger/config.toml"

FAKE_SYSTEMCTL = """#!/bin/sh
# a stand-in for systemctl: logs its argv, keeps the unit's state in a file
dir=$(dirname "$0")
echo "$*" >> "$dir/systemctl.log"
[ -n "${FAIL_VERB:-}" ] && [ "$1" = "$FAIL_VERB" ] && { echo "fake failure" >&2; exit 1; }
case "$1" in
  is-active) cat "$dir/state" 2>/dev/null || echo inactive
             [ "$(cat "$dir/state" 2>/dev/null)" = active ] || exit 3 ;;
  is-enabled) [ -e "$dir/enabled" ] && echo enabled || { echo disabled; exit 1; } ;;
  enable) touch "$dir/enabled"; [ "$2" = --now ] && echo active > "$dir/state" ;;
  disable) rm -f "$dir/enabled"; [ "$2" = --now ] && echo inactive > "$dir/state" ;;
  restart|start) echo active > "$dir/state" ;;
  stop) echo inactive > "$dir/state" ;;
esac
exit 0
"""


class Sys:
    def __init__(self, tmp):
        self.root = tmp / "root"
        self.root.mkdir()
        self.bin = tmp / "fake"
        self.bin.mkdir()
        self.systemctl = self.bin / "systemctl"
        self.systemctl.write_text(FAKE_SYSTEMCTL)
        self.systemctl.chmod(0o755)
        self.env = {"BANGER_SYSTEM_ROOT": str(self.root), "BANGER_SYSTEMCTL": str(self.systemctl),
                    "BANGERD": str(BANGERD)}

    def run(self, *args, env_extra=None, prefix=()):
        e = child_env()
        e.update(self.env)
        e.update(env_extra or {})
        return subprocess.run([*prefix, str(BANGER), "system", *args], capture_output=True, text=True, env=e,
                              timeout=60)

    def log(self):
        p = self.bin / "systemctl.log"
        return p.read_text().splitlines() if p.exists() else []

    def clear_log(self):
        (self.bin / "systemctl.log").unlink(missing_ok=True)

    def path(self, rel):
        return self.root / rel


@pytest.fixture
def sysroot(tmp_path, env):
    return Sys(tmp_path)


def test_install_status_restart_uninstall(sysroot):
    p = sysroot.run("install")
    assert p.returncode == 0, p.stderr
    unit = sysroot.path(UNIT).read_text()
    assert f"ExecStart={os.path.realpath(BANGERD)} --socket /run/banger/bangerd.sock\n" in unit
    assert "@BANGERD@" not in unit
    assert sysroot.path(CONFIG).exists()
    assert oct(sysroot.path("var/lib/banger").stat().st_mode & 0o777) == "0o700"
    assert sysroot.path("var/cache/banger").is_dir()
    meta = json.loads(sysroot.path(META).read_text())
    assert meta["version"] and meta["user"] == "root"
    assert meta["unit"] == "/etc/systemd/system/bangerd.service"
    assert meta["bangerd"] == os.path.realpath(BANGERD)
    assert meta["state_dir"] == "/var/lib/banger" and meta["config"] == "/etc/banger/config.toml"
    assert meta["socket"] == "/run/banger/bangerd.sock"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["installed_at"])
    assert sysroot.log() == ["daemon-reload", "enable --now bangerd.service", "is-active bangerd.service"]
    rows = dict(line.split(None, 1) for line in p.stdout.splitlines())
    assert rows["service"] == "bangerd.service, enabled (active)"
    assert rows["unit"].endswith("(written)") and rows["config"].endswith("(written)")

    p = sysroot.run("status", "--json")
    assert p.returncode == 0, p.stderr
    st = json.loads(p.stdout)
    assert st["installed"] is True and st["active"] == "active" and st["enabled"] == "enabled"
    assert st["installed_at"] == meta["installed_at"] and st["bangerd"] == meta["bangerd"]
    p = sysroot.run("status")
    rows = dict(line.split(None, 1) for line in p.stdout.splitlines())
    assert rows["service"] == "bangerd.service active, enabled"
    assert rows["state"] == "/var/lib/banger" and rows["version"] == meta["version"]

    sysroot.clear_log()
    p = sysroot.run("restart")
    assert p.returncode == 0, p.stderr
    assert "restarted bangerd.service (active)" in p.stdout
    assert sysroot.log() == ["restart bangerd.service", "is-active bangerd.service"]

    (sysroot.path("var/lib/banger") / "state.db").write_text("rows")
    sysroot.clear_log()
    p = sysroot.run("uninstall")
    assert p.returncode == 0, p.stderr
    assert sysroot.log() == ["disable --now bangerd.service", "daemon-reload"]
    assert not sysroot.path(UNIT).exists() and not sysroot.path(META).exists()
    # state and config stay unless --purge
    assert (sysroot.path("var/lib/banger") / "state.db").read_text() == "rows"
    assert sysroot.path(CONFIG).exists()
    assert "--purge removes them" in p.stdout

    p = sysroot.run("status")
    assert p.returncode == 1 and "not installed" in p.stdout
    assert json.loads(sysroot.run("status", "--json").stdout) == {"installed": False}
    p = sysroot.run("restart")
    assert p.returncode == 1 and "not installed" in p.stderr


def test_reinstall_is_idempotent_and_keeps_the_config(sysroot, tmp_path):
    sysroot.path("etc/banger").mkdir(parents=True)
    mine = 'log_level = "debug"\n'
    sysroot.path(CONFIG).write_text(mine)
    p = sysroot.run("install", "--json")
    assert p.returncode == 0, p.stderr
    first = json.loads(p.stdout)
    assert first["config_written"] is False and first["unit_written"] is True
    unit = sysroot.path(UNIT).read_text()

    sysroot.clear_log()
    p = sysroot.run("install", "--json")
    assert p.returncode == 0, p.stderr
    again = json.loads(p.stdout)
    assert again["unit_written"] is False and again["config_written"] is False
    assert again["installed_at"] == first["installed_at"]
    assert sysroot.path(UNIT).read_text() == unit
    assert sysroot.path(CONFIG).read_text() == mine
    # nothing changed: no restart of the running service
    assert sysroot.log() == ["daemon-reload", "enable --now bangerd.service", "is-active bangerd.service"]
    p = sysroot.run("install")
    assert "kept: never overwritten" in p.stdout and "(unchanged)" in p.stdout

    # another bangerd (a moved install): the unit is rewritten and the service restarted
    other = tmp_path / "bin" / "bangerd"
    other.parent.mkdir()
    shutil.copy(BANGERD, other)
    sysroot.clear_log()
    p = sysroot.run("install", env_extra={"BANGERD": str(other)})
    assert p.returncode == 0, p.stderr
    assert f"ExecStart={other} --socket" in sysroot.path(UNIT).read_text()
    assert "try-restart bangerd.service" in sysroot.log()
    assert sysroot.path(CONFIG).read_text() == mine


def test_uninstall_purge_says_what_it_removes_first(sysroot):
    assert sysroot.run("install").returncode == 0
    for rel in ("var/lib/banger/images/x/rootfs.ext4", "var/cache/banger/oci/blob", "run/banger/vm1/qmp.sock"):
        sysroot.path(rel).parent.mkdir(parents=True, exist_ok=True)
        sysroot.path(rel).write_text("x")
    os.symlink("/etc/passwd", sysroot.path("var/lib/banger/link"))  # removed, never followed
    p = sysroot.run("uninstall", "--purge")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    listed = out.index("--purge removes:")
    for rel in ("var/lib/banger", "var/cache/banger", "etc/banger", "run/banger"):
        assert f"  {sysroot.path(rel)} (" in out[listed:]
        assert not sysroot.path(rel).exists()
    assert out.rstrip().endswith("purged")
    assert Path("/etc/passwd").exists()
    assert not sysroot.path(UNIT).exists()
    # a second purge has nothing left to do and says so
    p = sysroot.run("uninstall", "--purge")
    assert p.returncode == 0 and "not installed as a service" in p.stdout


def setpriv(*args):
    exe = shutil.which("setpriv")
    if exe is None:
        pytest.fail("setpriv (util-linux) is required")
    return [exe, "--reuid=65534", "--regid=65534", "--clear-groups", *args]


@pytest.mark.parametrize("verb", [["install"], ["restart"], ["uninstall"], ["uninstall", "--purge"]])
def test_refused_without_root(sysroot, verb):
    p = sysroot.run(*verb, prefix=setpriv())
    assert p.returncode == 1
    assert p.stderr.startswith(f"banger: banger system {verb[0]} needs root")
    assert "sudo" in p.stderr
    assert list(sysroot.root.iterdir()) == [] and sysroot.log() == []


def test_status_as_a_user_says_it_cannot_read(sysroot):
    assert sysroot.run("install").returncode == 0
    p = sysroot.run("status", prefix=setpriv())
    assert p.returncode == 1
    assert "cannot read" in p.stderr and "Permission denied" in p.stderr and "sudo banger system status" in p.stderr


DROPIN = "etc/systemd/system/bangerd.service.d/owner.conf"
HELPER_UNIT = "etc/systemd/system/bangerd-root@.service"
HELPER = BUILD / "tools" / "bangerd-root" / "bangerd-root"
# a non-root user every Debian has (systemd-analyze warns about "nobody")
OWNER = "daemon"


def owner_ids():
    pw = pwd.getpwnam(OWNER)
    return pw.pw_uid, pw.pw_gid


def dropin_lines(user=OWNER):
    """The lines owner.conf must hold besides its comments."""
    pw = pwd.getpwnam(user)
    helper = f"bangerd-root@{pw.pw_uid}.service"
    try:
        group = grp.getgrgid(pw.pw_gid).gr_name
    except KeyError:
        group = str(pw.pw_gid)
    try:
        grp.getgrnam("kvm")
        kvm = ["SupplementaryGroups=kvm"]
    except KeyError:
        kvm = []
    return ["[Unit]", f"Requires={helper}", f"After={helper}", "[Service]", f"User={user}", f"Group={group}",
            *kvm, "AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE"]


def meson_helper_unit():
    """bangerd-root@.service as meson built it, ExecStart naming this build's helper."""
    built = (BUILD / "data" / "bangerd-root@.service").read_text()
    m = re.search(r"^ExecStart=(\S+) ", built, re.M)
    assert m and m.group(1).endswith("/bin/bangerd-root")
    return built.replace(m.group(1), os.path.realpath(HELPER))


def owners(root):
    """(path, uid, gid) of root and everything below it, links not followed."""
    out = []
    for dirpath, dirs, files in os.walk(root):
        for name in [dirpath] + [os.path.join(dirpath, n) for n in dirs + files]:
            st = os.lstat(name)
            out.append((name, st.st_uid, st.st_gid))
    return out


def test_install_as_a_user(sysroot):
    uid, gid = owner_ids()
    helper = f"bangerd-root@{uid}.service"
    # state and cache an earlier (root) install left, with a link that must not be followed
    for rel in ("var/lib/banger/images/x/rootfs.ext4", "var/cache/banger/oci/blob"):
        sysroot.path(rel).parent.mkdir(parents=True, exist_ok=True)
        sysroot.path(rel).write_text("x")
    os.symlink("/etc/passwd", sysroot.path("var/lib/banger/link"))
    p = sysroot.run("install", "--user", OWNER)
    assert p.returncode == 0, p.stderr
    text = sysroot.path(DROPIN).read_text()
    assert [x for x in text.splitlines() if x and not x.startswith("#")] == dropin_lines()
    assert sysroot.path(HELPER_UNIT).read_text() == meson_helper_unit()
    assert "ExecStart=" + os.path.realpath(HELPER) + " --owner %i --socket /run/banger-root/root.sock" in \
        sysroot.path(HELPER_UNIT).read_text()
    # the helper first: bangerd requires it
    assert sysroot.log() == ["daemon-reload", f"enable --now {helper}", "enable --now bangerd.service",
                             "is-active bangerd.service", f"is-active {helper}"]
    for rel in ("var/lib/banger", "var/cache/banger"):
        for path, u, g in owners(sysroot.path(rel)):
            if not path.endswith("install.json"):  # root's record of what it did
                assert (u, g) == (uid, gid), path
    assert os.stat("/etc/passwd").st_uid == 0
    meta = json.loads(sysroot.path(META).read_text())
    assert (meta["user"], meta["uid"], meta["helper_unit"]) == (OWNER, uid, helper)
    assert meta["bangerd_root"] == os.path.realpath(HELPER)
    assert meta["root_socket"] == "/run/banger-root/root.sock"
    rows = dict(line.split(None, 1) for line in p.stdout.splitlines())
    assert rows["user"] == f"{OWNER} (uid {uid})" and rows["helper"].startswith(f"{helper}, enabled (active)")

    st = json.loads(sysroot.run("status", "--json").stdout)
    assert (st["user"], st["uid"], st["helper_active"], st["helper_enabled"]) == (OWNER, uid, "active", "enabled")
    p = sysroot.run("status")
    assert p.returncode == 0, p.stderr
    rows = dict(line.split(None, 1) for line in p.stdout.splitlines())
    assert rows["user"] == f"{OWNER} (uid {uid})" and rows["helper"] == f"{helper} active, enabled"

    # again: nothing changed, nothing restarted
    sysroot.clear_log()
    p = sysroot.run("install", "--user", OWNER, "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["unit_written"] is False and out["uid"] == uid and out["helper_active"] == "active"
    assert not [x for x in sysroot.log() if "restart" in x or "disable" in x], sysroot.log()

    # back to root: the drop-in, the helper's unit and its instance go, the service restarts as root
    sysroot.clear_log()
    p = sysroot.run("install")
    assert p.returncode == 0, p.stderr
    assert not sysroot.path(DROPIN).exists() and not sysroot.path(DROPIN).parent.exists()
    assert not sysroot.path(HELPER_UNIT).exists()
    assert sysroot.log() == ["daemon-reload", f"disable --now {helper}", "enable --now bangerd.service",
                             "try-restart bangerd.service", "is-active bangerd.service"]
    for rel in ("var/lib/banger", "var/cache/banger"):
        assert {(u, g) for _, u, g in owners(sysroot.path(rel))} == {(0, 0)}
    meta = json.loads(sysroot.path(META).read_text())
    assert (meta["user"], meta["uid"]) == ("root", 0) and "helper_unit" not in meta
    assert "helper" not in dict(line.split(None, 1) for line in sysroot.run("status").stdout.splitlines())

    # uninstall removes everything install --user added
    assert sysroot.run("install", "--user", OWNER).returncode == 0
    sysroot.clear_log()
    p = sysroot.run("uninstall")
    assert p.returncode == 0, p.stderr
    assert sysroot.log() == ["disable --now bangerd.service", f"disable --now {helper}", "daemon-reload"]
    for rel in (UNIT, DROPIN, "etc/systemd/system/bangerd.service.d", HELPER_UNIT, META):
        assert not sysroot.path(rel).exists(), rel
    assert f"the root helper's {helper}" in p.stdout


def test_install_user_is_checked(sysroot):
    p = sysroot.run("install", "--user", "no-such-user-here")
    assert p.returncode == 2 and "no such user" in p.stderr
    assert list(sysroot.root.iterdir()) == [] and sysroot.log() == []
    # without a bangerd-root beside banger (or $BANGERD_ROOT) nothing is written either
    p = sysroot.run("install", "--user", OWNER, env_extra={"BANGERD_ROOT": "/nonexistent/bangerd-root"})
    assert p.returncode == 1 and "no bangerd-root" in p.stderr
    assert list(sysroot.root.iterdir()) == [] and sysroot.log() == []
    p = sysroot.run("install", "--user", "root")  # what the service runs as without --user
    assert p.returncode == 0, p.stderr
    assert not sysroot.path(DROPIN).exists() and not sysroot.path(HELPER_UNIT).exists()
    meta = json.loads(sysroot.path(META).read_text())
    assert (meta["user"], meta["uid"]) == ("root", 0)


def test_purge_after_a_user_install_removes_the_helpers_runtime_directory(sysroot):
    assert sysroot.run("install", "--user", OWNER).returncode == 0
    sysroot.path("run/banger-root").mkdir(parents=True)
    sysroot.path("run/banger-root/root.sock").write_text("")
    p = sysroot.run("uninstall", "--purge")
    assert p.returncode == 0, p.stderr
    assert f"  {sysroot.path('run/banger-root')} (the root helper's socket)" in p.stdout
    assert not sysroot.path("run/banger-root").exists() and not sysroot.path(HELPER_UNIT).exists()


def test_a_failing_systemctl_fails_the_command(sysroot):
    p = sysroot.run("install", env_extra={"FAIL_VERB": "enable"})
    assert p.returncode == 1
    assert "systemctl enable --now bangerd.service failed (exit 1)" in p.stderr
    assert "journalctl -u bangerd" in p.stderr
    # what was written is there for status and uninstall
    p = sysroot.run("status")
    assert p.returncode == 3 and "bangerd.service inactive, disabled" in p.stdout
    assert sysroot.run("uninstall").returncode == 0
    assert not sysroot.path(UNIT).exists()


def test_install_stops_an_on_demand_daemon_on_the_service_socket(sysroot):
    sock = sysroot.path("run/banger/bangerd.sock")
    sock.parent.mkdir(parents=True)
    d = subprocess.Popen([str(BANGERD), "--socket", str(sock)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=child_env())
    try:
        from conftest import wait_for_socket
        wait_for_socket(sock, d)
        p = sysroot.run("install")
        assert p.returncode == 0, p.stderr
        assert f"stopped the bangerd started on demand (pid {d.pid}" in p.stdout
        assert d.wait(15) == 0
    finally:
        if d.poll() is None:
            d.kill()
            d.wait()


def verify(unit):
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.fail("systemd-analyze is required (apt-get install systemd; scripts/install-deps does)")
    p = subprocess.run([exe, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # verify exits 0 over unknown keys and bad values: its warnings count too
    assert p.returncode == 0 and p.stderr == "" and p.stdout == "", p.stdout + p.stderr


def test_units_pass_systemd_analyze_verify(sysroot, tmp_path):
    # the unit system install writes
    assert sysroot.run("install").returncode == 0
    verify(sysroot.path(UNIT))
    # the unit meson installs: ExecStart names <prefix>/bin/bangerd, not
    # installed here, so point it at the build's before verifying
    built = (BUILD / "data" / "bangerd.service").read_text()
    m = re.search(r"^ExecStart=(\S+) ", built, re.M)
    assert m and m.group(1).endswith("/bin/bangerd")
    copy = tmp_path / "meson" / "bangerd.service"
    copy.parent.mkdir()
    copy.write_text(built.replace(m.group(1), os.path.realpath(BANGERD)))
    verify(copy)
    # and the check can fail
    copy.write_text(built.replace(m.group(1), os.path.realpath(BANGERD)).replace("KillMode=process",
                                                                                 "KillMode=processes"))
    with pytest.raises(AssertionError):
        verify(copy)


def test_units_of_a_user_install_pass_systemd_analyze_verify(sysroot, tmp_path):
    assert sysroot.run("install", "--user", OWNER).returncode == 0
    # bangerd.service with its drop-in (verify loads <dir>/bangerd.service.d/),
    # whose Requires= names an instance of the helper's template beside it
    verify(sysroot.path(UNIT))
    uid, _ = owner_ids()
    instance = tmp_path / f"bangerd-root@{uid}.service"
    instance.write_text(sysroot.path(HELPER_UNIT).read_text())
    verify(instance)
    # the drop-in is what verify read: a bad key in it fails
    dropin = sysroot.path(DROPIN)
    dropin.write_text(dropin.read_text() + "AmbientCapabilitys=CAP_NET_BIND_SERVICE\n")
    with pytest.raises(AssertionError):
        verify(sysroot.path(UNIT))


def test_unit_keeps_guests_through_a_restart_and_is_hardened(sysroot):
    text = (ROOT / "data" / "systemd" / "bangerd.service.in").read_text()
    keys = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            keys.setdefault(k, []).append(v)
    for k, v in {"KillMode": "process", "SendSIGKILL": "no", "Restart": "on-failure", "NoNewPrivileges": "yes",
                 "ProtectSystem": "full", "RuntimeDirectoryPreserve": "yes", "StateDirectory": "banger",
                 "RuntimeDirectory": "banger", "WantedBy": "multi-user.target"}.items():
        assert keys.get(k) == [v], k
    env = dict(e.split("=", 1) for e in keys["Environment"])
    assert env == {"BANGER_CONFIG": "/etc/banger/config.toml", "BANGER_CONFIG_DIR": "/var/lib/banger",
                   "BANGER_STATE_DIR": "/var/lib/banger", "BANGER_CACHE_DIR": "/var/cache/banger",
                   "BANGER_RUNTIME_DIR": "/run/banger", "BANGER_SOCKET": "/run/banger/bangerd.sock"}


def test_meson_installs_the_unit():
    installed = json.loads((BUILD / "meson-info" / "intro-installed.json").read_text())
    dest = [v for k, v in installed.items() if k.endswith("/data/bangerd.service")]
    assert len(dest) == 1 and dest[0].endswith("/lib/systemd/system/bangerd.service"), dest


# ---- doctor: the privilege model, the programs banger runs, the service ----

def doctor(sysroot, tmp, env_extra=None, prefix=()):
    e = {"BANGER_URI": f"local:{tmp}/doctor-state"}
    e.update(env_extra or {})
    p = subprocess.run([*prefix, str(BANGER), "doctor", "--json"], capture_output=True, text=True, timeout=120,
                       env={**child_env(), **sysroot.env, **e})
    rep = json.loads(p.stdout)
    return p.returncode, {c["name"]: c for c in rep["checks"]}, rep


def test_doctor_reports_the_service(sysroot, tmp_path):
    rc, checks, _ = doctor(sysroot, tmp_path)
    assert checks["service"]["status"] == "PASS"
    assert checks["service"]["detail"].startswith("not installed: bangerd starts on demand")
    assert sysroot.run("install").returncode == 0
    _, checks, _ = doctor(sysroot, tmp_path)
    meta = json.loads(sysroot.path(META).read_text())
    assert checks["service"]["status"] == "PASS"
    assert checks["service"]["detail"].startswith(
        f"bangerd.service active (banger {meta['version']}, installed {meta['installed_at']})")
    # this engine is not the service's: doctor says whose state it checked
    assert f"this engine's state is {tmp_path}/doctor-state, not the service's /var/lib/banger" \
        in checks["service"]["detail"]
    (sysroot.bin / "state").write_text("failed\n")
    _, checks, _ = doctor(sysroot, tmp_path)
    assert checks["service"]["status"] == "WARN"
    assert checks["service"]["detail"].startswith("bangerd.service is failed (journalctl -u bangerd says why)")
    # the library names the remedy, the CLI words it
    assert checks["service"]["remedy"] == "system-restart" and "banger system" not in checks["service"]["detail"]
    text = subprocess.run([str(BANGER), "doctor"], capture_output=True, text=True, timeout=120,
                          env={**child_env(), **sysroot.env, "BANGER_URI": f"local:{tmp_path}/doctor-state"}).stdout
    assert "bangerd.service is failed (journalctl -u bangerd says why); this engine's state is " in text
    (line,) = [x for x in text.splitlines() if x.startswith("WARN  service ")]
    assert line.endswith("; this engine's state is " + f"{tmp_path}/doctor-state, not the service's /var/lib/banger"
                         ": banger system restart (as root)"), line
    sysroot.path(UNIT).unlink()  # metadata without its unit
    _, checks, _ = doctor(sysroot, tmp_path)
    assert checks["service"]["status"] == "WARN" and "has no unit" in checks["service"]["detail"]
    assert checks["service"]["remedy"] == "system-install"


def test_doctor_names_each_missing_program_with_its_feature_and_package(sysroot, tmp_path):
    rc, checks, rep = doctor(sysroot, tmp_path)
    for exe in ("ssh-keygen", "ssh", "git", "debootstrap", "tar", "e2fsck", "apt-get"):
        assert checks[exe]["status"] == "PASS", checks[exe]
        assert checks[exe]["detail"].startswith(shutil.which(exe) + ": ")
    assert "nft" not in checks and "ip" not in checks  # netlink: never run
    # a PATH with only the tools the test itself needs
    bin_dir = tmp_path / "path"
    bin_dir.mkdir()
    for exe in ("tar", "sh"):
        os.symlink(shutil.which(exe), bin_dir / exe)
    rc, checks, rep = doctor(sysroot, tmp_path, env_extra={"PATH": str(bin_dir)})
    assert checks["tar"]["status"] == "PASS"
    assert checks["git"] == {"name": "git", "status": "WARN", "detail":
                             "git not found: workspaces (vm run PATH, vm workspace prepare) and the git identity "
                             "put in guests needs it; apt-get install git"}
    assert checks["debootstrap"]["status"] == "WARN" and "apt-get install debootstrap" in checks["debootstrap"]["detail"]
    assert checks["e2fsck"]["status"] == "WARN" and "apt-get install e2fsprogs" in checks["e2fsck"]["detail"]
    assert checks["ssh"]["status"] == "WARN" and "apt-get install openssh-client" in checks["ssh"]["detail"]
    # every VM needs ssh-keygen: a FAIL, and doctor exits 1
    assert checks["ssh-keygen"]["status"] == "FAIL"
    assert "vm create" in checks["ssh-keygen"]["detail"] and "openssh-client" in checks["ssh-keygen"]["detail"]
    assert rc == 1 and rep["ok"] is False


@pytest.fixture
def world_dir():
    import tempfile
    d = Path(tempfile.mkdtemp(prefix="banger-doctor-"))
    d.chmod(0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_doctor_checks_the_privileges_this_engine_has(sysroot, world_dir):
    as_user = {k: str(world_dir / k.lower()) for k in
               ("BANGER_CONFIG_DIR", "BANGER_STATE_DIR", "BANGER_CACHE_DIR", "BANGER_RUNTIME_DIR")}
    as_user["HOME"] = str(world_dir)
    rc, checks, _ = doctor(sysroot, world_dir)
    assert checks["privileges"] == {"name": "privileges", "status": "PASS",
                                    "detail": "running as root: enough for the bridge, taps and NAT rules"}
    assert checks["tun"]["status"] == "PASS"
    rc, checks, _ = doctor(sysroot, world_dir, env_extra=as_user, prefix=setpriv())
    assert checks["privileges"]["status"] == "FAIL"
    assert checks["privileges"]["detail"].startswith("uid 65534 without CAP_NET_ADMIN: this engine cannot make")
    assert checks["privileges"]["remedy"] == "root-helper"
    assert checks["tun"]["status"] == "FAIL" and "Permission denied" in checks["tun"]["detail"]
    assert rc == 1
    rc, checks, _ = doctor(sysroot, world_dir, env_extra=as_user,
                           prefix=setpriv("--inh-caps=+net_admin", "--ambient-caps=+net_admin"))
    assert checks["privileges"] == {"name": "privileges", "status": "PASS", "detail":
                                    "uid 65534 with CAP_NET_ADMIN: enough for the bridge, taps and NAT rules"}

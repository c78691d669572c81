"""VM rows and disks without booting (no network needed): create with
start=false, vm.set on a stopped VM, names and specs."""
import subprocess

import pytest

import banger
from conftest import run_cli
from layers import dump, make_tar
from test_kernel import kernel_debs  # noqa: F401 (session fixture: the real .deb)


@pytest.fixture
def offline(ctx, tmp_path, kernel_debs):  # noqa: F811
    tar = make_tar(tmp_path / "img.tar", [{"name": "usr/sbin/sshd", "data": b"#!/bin/sh\n", "mode": 0o755}])
    ctx.call("image.import", {"name": "tiny", "tars": [str(tar)]})
    ctx.call("kernel.import", {"name": "k", "deb": str(kernel_debs[0])})
    return ctx


def test_create_stopped_and_set(offline, env):
    ctx = offline
    vm = ctx.call("vm.create", {"name": "cold", "image": "tiny", "kernel": "k", "start": False, "disk_size": "256M"})
    assert vm["state"] == "stopped" and vm["ip"].startswith("172.16.0.")
    assert [v["name"] for v in ctx.call("vm.list")["vms"]] == []  # running only
    assert [v["name"] for v in ctx.call("vm.list", {"all": True})["vms"]] == ["cold"]
    vm = ctx.call("vm.set", {"name": "cold", "vcpu": 3, "memory_mib": 700, "disk_size": "512M"})
    assert (vm["vcpu"], vm["memory_mib"], vm["disk_size"]) == (3, 700, 512 << 20)
    overlay = env["BANGER_STATE_DIR"] / "vms" / vm["id"] / "overlay.ext4"
    info = subprocess.run(["dumpe2fs", "-h", str(overlay)], capture_output=True, text=True).stdout
    blocks = int(next(line.split(":")[1] for line in info.splitlines() if line.startswith("Block count")))
    assert blocks * 4096 == 512 << 20  # the filesystem grew with the file
    with pytest.raises(banger.InvalidArgument):
        ctx.call("vm.set", {"name": "cold", "disk_size": "128M"})  # disks only grow
    with pytest.raises(banger.InvalidArgument):
        ctx.call("vm.set", {"name": "cold", "vcpu": 0})
    with pytest.raises(banger.AlreadyExists):
        ctx.call("vm.create", {"name": "cold", "image": "tiny", "kernel": "k", "start": False})
    second = ctx.call("vm.create", {"image": "tiny", "kernel": "k", "start": False})
    assert second["ip"] != vm["ip"] and second["mac"] != vm["mac"]
    assert len(second["name"]) <= 63 and second["name"] == second["name"].lower()
    ctx.call("vm.delete", {"name": "cold"})
    ctx.call("vm.delete", {"name": second["name"]})
    assert ctx.call("vm.list", {"all": True})["vms"] == []


def test_image_without_sshd_needs_nat_then_gets_first_boot_install(offline, env, tmp_path):
    ctx = offline
    tar = make_tar(tmp_path / "bare.tar", [  # systemd's boot waits for sshd, which it lacks
        {"name": "etc/os-release", "data": b"ID=debian\n"}, {"name": "lib/systemd/systemd", "mode": 0o755},
        {"name": "sbin/init", "type": "symlink", "target": "/lib/systemd/systemd"}])
    ctx.call("image.import", {"name": "bare", "tars": [str(tar)]})
    with pytest.raises(banger.Unsupported) as err:
        ctx.call("vm.create", {"name": "nossh", "image": "bare", "kernel": "k", "start": False})
    assert "no SSH server" in str(err.value) and "without nat" in str(err.value)
    with pytest.raises(banger.NotFound):
        ctx.call("vm.show", {"name": "nossh"})  # nothing left of it
    vm = ctx.call("vm.create", {"name": "nossh", "image": "bare", "kernel": "k", "start": False, "nat": True})
    assert vm["nat"] is True and vm["tap"] == ""  # a tap only while it runs
    overlay = env["BANGER_STATE_DIR"] / "vms" / vm["id"] / "overlay.ext4"
    t = dump(str(overlay))
    assert t["/upper/usr/local/libexec/banger-first-boot"]["mode"] & 0o777 == 0o755
    assert "/upper/var/lib/banger/first-boot-pending" in t
    # its own host key, made on the host and pinned before the first boot
    assert vm["host_key"].startswith("ssh-ed25519 AAAA") and len(vm["host_key"].split()) == 2
    key = t["/upper/etc/ssh/ssh_host_ed25519_key"]
    assert key["mode"] & 0o777 == 0o600 and key["uid"] == 0 and key["size"] > 300
    assert t["/upper/etc/ssh/ssh_host_ed25519_key.pub"]["size"] == len(vm["host_key"]) + 1
    assert t["/upper/etc/systemd/system/e2scrub_reap.service"]["target"] == "/dev/null"
    assert not list((env["BANGER_STATE_DIR"] / "vms" / vm["id"]).glob("ssh_host*"))  # no copy left on the host
    assert t["/upper/etc/systemd/system/multi-user.target.wants/banger-first-boot.service"]["type"] == "symlink"
    # an image with sshd gets no installer, NAT or not
    tiny = ctx.call("vm.create", {"name": "withssh", "image": "tiny", "kernel": "k", "start": False, "nat": True})
    t = dump(str(env["BANGER_STATE_DIR"] / "vms" / tiny["id"] / "overlay.ext4"))
    assert "/upper/var/lib/banger/first-boot-pending" not in t
    assert tiny["host_key"] != vm["host_key"]  # per VM
    for name in ("nossh", "withssh"):
        ctx.call("vm.delete", {"name": name})
    assert vm["init"] == "systemd" and (tiny["init"], tiny["sshd"]) == ("banger", True)  # tiny: no /sbin/init


def test_init_is_picked_at_create(offline, env, tmp_path):
    """auto: systemd only where /sbin/init leads to it; banger's init needs
    neither an init nor sshd, and gets no first-boot installer."""
    ctx = offline
    tar = make_tar(tmp_path / "bb.tar", [{"name": "bin/busybox", "data": b"bb", "mode": 0o755},
                                         {"name": "sbin/init", "type": "symlink", "target": "../bin/busybox"}])
    ctx.call("image.import", {"name": "bb", "tars": [str(tar)]})
    vm = ctx.call("vm.create", {"name": "bb", "image": "bb", "kernel": "k", "start": False, "nat": True})
    assert (vm["init"], vm["sshd"], vm["state"]) == ("banger", False, "stopped")
    t = dump(str(env["BANGER_STATE_DIR"] / "vms" / vm["id"] / "overlay.ext4"))
    assert "/upper/var/lib/banger/first-boot-pending" not in t
    assert t["/upper/usr/local/libexec/banger-agent"]["mode"] & 0o111  # PID 1 under banger's init
    # busybox's init would not start the agent: systemd needs asking for, and an executable
    with pytest.raises(banger.Unsupported):  # no sshd for systemd's boot to wait for
        ctx.call("vm.create", {"name": "bb2", "image": "bb", "kernel": "k", "start": False, "init": "systemd"})
    with pytest.raises(banger.InvalidArgument):
        ctx.call("vm.create", {"name": "bb2", "image": "bb", "kernel": "k", "start": False, "init": "openrc"})
    assert ctx.call("vm.create", {"name": "bb2", "image": "tiny", "kernel": "k", "start": False,
                                  "init": "banger"})["init"] == "banger"
    for name in ("bb", "bb2"):
        ctx.call("vm.delete", {"name": name})
    assert [v["name"] for v in ctx.call("vm.list", {"all": True})["vms"]] == []


def test_image_and_kernel_in_use_are_not_removed(offline, env):
    ctx = offline
    ctx.call("vm.create", {"name": "user-b", "image": "tiny", "kernel": "k", "start": False})
    ctx.call("vm.create", {"name": "user-a", "image": "tiny", "kernel": "k", "start": False})
    image = ctx.call("image.show", {"name": "tiny"})
    with pytest.raises(banger.Busy) as err:
        ctx.call("image.rm", {"name": "tiny"})
    assert "image 'tiny' is in use by 2 VMs (user-a, user-b)" in str(err.value)
    with pytest.raises(banger.Busy) as err:
        ctx.call("kernel.rm", {"name": "k"})
    assert "kernel 'k' is in use by 2 VMs (user-a, user-b)" in str(err.value)
    # nothing was removed: the rows and the image's files are all there
    assert ctx.call("image.show", {"name": "tiny"})["rootfs"] == image["rootfs"]
    assert (env["BANGER_STATE_DIR"] / "images" / image["id"]).is_dir()
    ctx.call("kernel.show", {"name": "k"})
    ctx.call("vm.delete", {"name": "user-a"})
    with pytest.raises(banger.Busy) as err:
        ctx.call("image.rm", {"name": "tiny"})
    assert "1 VM (user-b); delete it first" in str(err.value)
    ctx.call("vm.delete", {"name": "user-b"})
    ctx.call("image.rm", {"name": "tiny"})
    ctx.call("kernel.rm", {"name": "k"})
    # the store enforces it for every path, not only image.rm: a row naming
    # a removed image cannot be inserted
    db = env["BANGER_STATE_DIR"] / "state.db"
    out = subprocess.run(["sqlite3", str(db), "INSERT INTO vms (id, name, image_id, kernel_id, vcpu, memory_mib,"
                          " disk_size, state, driver, ip, mac, tap, created_at) VALUES ('x', 'x', 'gone', 'gone', 1,"
                          " 128, 1, 'stopped', 'none', '1.2.3.4', 'm', '', 'now')"], capture_output=True, text=True)
    assert out.returncode != 0 and "image or kernel was removed" in out.stderr


def test_cli_image_rm_in_use(env, tmp_path, kernel_debs):  # noqa: F811
    local = {"BANGER_URI": f"local:{env['BANGER_STATE_DIR']}"}
    tar = make_tar(tmp_path / "img.tar", [{"name": "usr/sbin/sshd", "data": b"#!/bin/sh\n", "mode": 0o755}])
    for argv in (("image", "import", "tiny", "--tar", str(tar)), ("kernel", "import", "k", "--deb", str(kernel_debs[0])),
                 ("vm", "create", "--name", "holder", "--image", "tiny", "--kernel", "k", "--no-start")):
        r = run_cli(*argv, env_extra=local, timeout=300)
        assert r.returncode == 0, r.stderr
    r = run_cli("image", "rm", "tiny", env_extra=local)
    assert r.returncode == 1 and "in use by 1 VM (holder)" in r.stderr
    assert run_cli("vm", "rm", "holder", env_extra=local).returncode == 0
    assert run_cli("image", "rm", "tiny", env_extra=local).returncode == 0

"""VM rows and disks without booting (no network needed): create with
start=false, vm.set on a stopped VM, names and specs."""
import subprocess

import pytest

import banger
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
    tar = make_tar(tmp_path / "bare.tar", [{"name": "etc/os-release", "data": b"ID=debian\n"}])
    ctx.call("image.import", {"name": "bare", "tars": [str(tar)]})
    with pytest.raises(banger.Unsupported) as err:
        ctx.call("vm.create", {"name": "nossh", "image": "bare", "kernel": "k", "start": False})
    assert "no SSH server" in str(err.value) and "--nat" in str(err.value)
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

"""The default image built from Debian's mirror (debootstrap --variant=minbase,
the --minimal package set), once per run; the content cache makes the second
build a single ext4 pass over the cached tar, on the other transport."""
import time

import banger
from conftest import Daemon
from layers import dump, fsck


def test_build_minimal_debian_then_cached(env):
    events = []
    with banger.open(f"local:{env['BANGER_STATE_DIR']}") as ctx:
        img = ctx.call("image.build", {"minimal": True}, on_event=events.append)
        assert img["name"] == "debian-bookworm-minimal"
        assert img["source"] == "debootstrap:bookworm" and img["digest"].startswith("sha256:")
        assert any(e["stage"] == "debootstrap" for e in events)
        fsck(img["rootfs"])
        t = dump(img["rootfs"])
        # a bootable systemd + sshd tree, with per-VM identity stripped
        assert t["/sbin"]["target"] == "usr/sbin" and t["/usr/sbin/init"]["type"] == "symlink"
        assert "/usr/sbin/sshd" in t
        assert t["/etc/machine-id"]["size"] == 0
        assert not [p for p in t if p.startswith("/etc/ssh/ssh_host_")]
        assert "/etc/systemd/system/ssh.service.wants/banger-ssh-keygen.service" in t
        assert t["/usr/bin/passwd"]["mode"] & 0o4000  # setuid survived
        again = ctx.call("image.build", {"minimal": True})
        assert again["id"] == img["id"]  # same recipe: the same image, instantly
        ctx.call("image.rm", {"name": img["name"]})
    d = Daemon(env)
    try:
        with banger.open(f"unix:{d.socket}", autostart=False) as ctx:
            t0 = time.time()
            events = []
            rebuilt = ctx.call("image.build", {"minimal": True}, on_event=events.append)
            assert time.time() - t0 < 30
            assert not any(e["stage"] == "debootstrap" for e in events)  # from the content cache
            assert rebuilt["digest"] == img["digest"] and rebuilt["id"] != img["id"]
    finally:
        assert d.stop() == 0


def test_unreachable_mirror_names_debootstrap_and_leaves_nothing(env):
    mirror = "http://127.0.0.1:9/debian"  # discard port: nothing listens
    with banger.open(f"local:{env['BANGER_STATE_DIR']}") as ctx:
        try:
            ctx.call("image.build", {"name": "offline", "minimal": True, "mirror": mirror})
            raise AssertionError("image.build succeeded without a mirror")
        except banger.Error as e:
            assert f"debootstrap of bookworm from {mirror} failed: E: Failed getting release file" in str(e), str(e)
        assert not [i for i in ctx.call("image.list")["images"] if i["name"] == "offline"]

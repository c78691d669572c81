"""`image.pull` against a real registry (Debian's docker-registry): multi-layer
images with whiteouts, opaque directories, hardlinks across layers, setuid
files, arbitrary owners, devices, xattrs and absolute symlinks, pulled by
banger and checked property by property in the ext4 (libext2fs)."""
import gzip
import hashlib
import os

import pytest

import banger
from layers import dump, fnv, fsck, make_tar, unterminated
from registry import LAYER_TYPES, Layer, Proxy, registry, servers  # noqa: F401 (fixtures)

CAP = bytes.fromhex("0100000200200000000000000000000000000000")


def layer(tmp_path, name, entries, compression="gzip", fmt="oci", cut=None):
    raw = make_tar(tmp_path / f"{name}.tar", entries).read_bytes()
    raw = cut(raw) if cut else raw
    data = gzip.compress(raw, mtime=0) if compression == "gzip" else raw
    return Layer(data, LAYER_TYPES[(fmt, compression)], "sha256:" + hashlib.sha256(raw).hexdigest())


def test_pull_multi_layer_image(registry, ctx, tmp_path):  # noqa: F811
    l1 = layer(tmp_path, "l1", [
        {"name": "bin/tool", "data": b"tool v1", "mode": 0o4755, "xattrs": {"security.capability": CAP}},
        {"name": "etc/conf", "data": b"v1"},
        {"name": "etc/conf.d/a", "data": b"a"},
        {"name": "etc/conf.d/b", "data": b"b"},
        {"name": "home/u/file", "data": b"mine", "uid": 4242, "gid": 4343, "mode": 0o640},
        {"name": "dev/console", "type": "char", "major": 5, "minor": 1, "mode": 0o600},
        {"name": "lib/libfoo.so.1", "data": b"foo1"},
        {"name": ".dockerenv", "data": b""},
    ])
    l2 = layer(tmp_path, "l2", [
        {"name": "etc/.wh.conf"},
        {"name": "etc/conf.d/.wh..wh..opq"},
        {"name": "etc/conf.d/c", "data": b"c"},
        {"name": "bin/tool-link", "type": "hardlink", "target": "bin/tool"},  # target from the layer below
        {"name": "usr/share/zoneinfo/UTC", "data": b"TZif"},
        {"name": "etc/localtime", "type": "symlink", "target": "/usr/share/zoneinfo/UTC"},
    ], compression="none")
    l3 = layer(tmp_path, "l3", [
        {"name": "lib/libfoo.so.1", "data": b"foo2", "uid": 7},
    ])
    registry.push_image("team/app", "1.2", [l1, l2, l3], fmt="oci")
    events = []
    img = ctx.call("image.pull", {"ref": f"{registry.host}/team/app:1.2"}, on_event=events.append)
    assert img["name"] == "app-1-2"
    assert img["source"] == f"oci:{registry.host}/team/app:1.2" and img["digest"].startswith("sha256:")
    assert img["config"]["WorkingDir"] == "/srv"
    stages = {e["stage"] for e in events}
    assert {"resolve", "pull", "layer"} <= stages
    fsck(img["rootfs"])
    t = dump(img["rootfs"])
    assert t["/bin/tool"]["mode"] == 0o4755 and t["/bin/tool"]["xattrs"]["security.capability"] == CAP.hex()
    assert t["/bin/tool-link"]["ino"] == t["/bin/tool"]["ino"] and t["/bin/tool"]["nlink"] == 2
    assert "/etc/conf" not in t
    assert sorted(p for p in t if p.startswith("/etc/conf.d/")) == ["/etc/conf.d/c"]
    home = t["/home/u/file"]
    assert (home["uid"], home["gid"], home["mode"], home["hash"]) == (4242, 4343, 0o640, fnv(b"mine"))
    assert t["/dev/console"]["rdev"] == [5, 1]
    assert t["/etc/localtime"]["target"] == "/usr/share/zoneinfo/UTC"
    assert t["/lib/libfoo.so.1"]["hash"] == fnv(b"foo2") and t["/lib/libfoo.so.1"]["uid"] == 7
    assert "/.dockerenv" not in t
    # a second pull under another name reuses the cached blobs and gives the same tree
    again = ctx.call("image.pull", {"ref": f"{registry.host}/team/app:1.2", "name": "app-again"})
    assert dump(again["rootfs"]).keys() == t.keys()


def test_pull_errors_leave_nothing(registry, ctx, env):  # noqa: F811
    with pytest.raises(banger.Error) as ei:
        ctx.call("image.pull", {"ref": f"{registry.host}/nope/missing:1"})
    assert "not found" in ei.value.message
    with pytest.raises(banger.InvalidArgument):
        ctx.call("image.pull", {"ref": "library/debian:no spaces"})
    assert ctx.call("image.list")["images"] == []
    assert list((env["BANGER_STATE_DIR"] / "images").iterdir()) == []


def lock_files(env):
    return sorted(p.name for p in (env["BANGER_CACHE_DIR"] / "oci").rglob("*.lock"))


def test_pull_layer_ending_after_its_last_entry(registry, ctx, env, tmp_path):  # noqa: F811
    """A layer written by a tar writer that was never closed: no padding after the last entry's
    data, no two zero blocks. Go's archive/tar (docker, containerd) reads it, so banger does."""
    big = bytes(range(256)) * 7  # 1792 bytes: the last entry needs padding
    l1 = layer(tmp_path, "l1", [{"name": "etc/os-release", "data": b"ID=open\n"}])
    l2 = layer(tmp_path, "l2", [{"name": "usr/bin/tool", "data": big, "mode": 0o755}], cut=unterminated)
    registry.push_image("open/app", "1", [l1, l2], fmt="oci")
    img = ctx.call("image.pull", {"ref": f"{registry.host}/open/app:1"})
    fsck(img["rootfs"])
    t = dump(img["rootfs"])
    assert t["/usr/bin/tool"]["hash"] == fnv(big) and t["/usr/bin/tool"]["mode"] == 0o755
    assert t["/etc/os-release"]["hash"] == fnv(b"ID=open\n")
    assert lock_files(env) == []


@pytest.mark.parametrize("case", ["escape", "truncated"])
def test_layer_error_names_image_and_layer(registry, ctx, env, tmp_path, case):  # noqa: F811
    """A bad layer is named by its image, number and digest, as the user knows it; never by the
    blob's path in the cache. Nothing is left behind, lock files included."""
    good = layer(tmp_path, "good", [{"name": "etc/ok", "data": b"ok"}])
    if case == "escape":
        bad = layer(tmp_path, "bad", [{"name": "lib/evil", "type": "symlink", "target": "../../etc/shadow"}])
    else:
        bad = layer(tmp_path, "bad", [{"name": "data.bin", "data": os.urandom(5000)}],
                    cut=lambda raw: unterminated(raw)[:-1])
    registry.push_image("bad/app", "7", [good, bad, good], fmt="oci")
    ref = f"{registry.host}/bad/app:7"
    with pytest.raises(banger.Error) as ei:
        ctx.call("image.pull", {"ref": ref})
    msg = ei.value.message
    assert msg.startswith(f"layer 2 of 3 ({bad.digest[:19]}…) of {ref}: "), msg
    assert ("lib/evil" in msg and "escapes" in msg) if case == "escape" else "Truncated" in msg, msg
    assert str(env["BANGER_CACHE_DIR"]) not in msg and bad.digest[7:] not in msg
    assert ctx.call("image.list")["images"] == []
    assert list((env["BANGER_STATE_DIR"] / "images").iterdir()) == []
    assert lock_files(env) == []


def test_insecure_registries_config(registry, servers, env, tmp_path):  # noqa: F811
    """A registry that is not on loopback is spoken to over https unless
    config.toml's insecure_registries lists it (no environment knob)."""
    registry.push_image("team/plain", "1", [layer(tmp_path, "l1", [{"name": "etc/hostname", "data": b"plain\n"}])])
    front = servers(Proxy(registry.host, bind="127.0.0.2"))
    ref = f"{front.host}/team/plain:1"
    with banger.open(f"local:{env['BANGER_STATE_DIR']}") as c, pytest.raises(banger.Error) as e:
        c.call("image.pull", {"ref": ref, "name": "plain"})
    assert f"https://{front.host}/v2/" in str(e.value) and "insecure_registries" in str(e.value)
    env["BANGER_CONFIG_DIR"].mkdir(parents=True, exist_ok=True)
    (env["BANGER_CONFIG_DIR"] / "config.toml").write_text(f'insecure_registries = "example.com, {front.host}"\n')
    with banger.open(f"local:{env['BANGER_STATE_DIR']}") as c:
        img = c.call("image.pull", {"ref": ref, "name": "plain"})
    assert img["name"] == "plain" and img["source"] == f"oci:{ref}"

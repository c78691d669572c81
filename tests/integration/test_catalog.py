"""Image catalogs: .tar.zst bundles (rootfs.ext4 + manifest.json) served by a
real HTTP server, sha256-checked, extracted with hardening, published
atomically."""
import hashlib
import json
import os
import subprocess
import tarfile

import pytest

import banger
from httpserver import Server
from layers import EXT4_TOOL, dump, fnv, make_tar


def zstd_tar(path, members):
    """members: {name: bytes | path}; written as a tar, then zstd."""
    raw = path.with_suffix("")
    with tarfile.open(raw, "w") as tf:
        for name, data in members.items():
            if isinstance(data, (bytes, bytearray)):
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                import io
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.add(str(data), arcname=name)
    subprocess.run(["zstd", "-q", "-f", "--rm", str(raw), "-o", str(path)], check=True)
    return path


@pytest.fixture
def catalog(tmp_path, env):
    www = tmp_path / "www"
    www.mkdir()
    srv = Server(www)
    env["BANGER_CONFIG_DIR"].mkdir(parents=True, exist_ok=True)
    (env["BANGER_CONFIG_DIR"] / "config.toml").write_text(f'image_catalog = "{srv.url}/catalog.json"\n')

    def publish(entries):
        (www / "catalog.json").write_text(json.dumps({"version": 1, "images": entries}))

    def bundle(name, members):
        p = zstd_tar(www / f"{name}.tar.zst", members)
        data = p.read_bytes()
        return {"name": name, "description": f"test image {name}", "url": f"{srv.url}/{name}.tar.zst",
                "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

    yield www, publish, bundle
    srv.close()


@pytest.fixture
def rootfs(tmp_path):
    tar = make_tar(tmp_path / "root.tar", [{"name": "etc/os-release", "data": b"ID=banger-test\n"}])
    img = tmp_path / "rootfs.ext4"
    subprocess.run([str(EXT4_TOOL), "build", str(img), "auto", str(tar)], check=True, capture_output=True)
    return img


def test_pull_bundle_from_catalog(catalog, rootfs, ctx, env):
    _, publish, bundle = catalog
    entry = bundle("tiny", {"rootfs.ext4": rootfs, "manifest.json": b'{"name": "tiny"}'})
    publish([entry])
    listed = ctx.call("image.catalog")["images"]
    assert [(e["name"], e["pulled"]) for e in listed] == [("tiny", False)]
    events = []
    img = ctx.call("image.pull", {"ref": "tiny"}, on_event=events.append)
    assert img["name"] == "tiny" and img["source"] == "catalog:tiny"
    assert img["digest"] == "sha256:" + entry["sha256"]
    assert dump(img["rootfs"])["/etc/os-release"]["hash"] == fnv(b"ID=banger-test\n")
    assert any(e["stage"] == "download" or e["stage"] == "extract" for e in events)
    assert ctx.call("image.catalog")["images"][0]["pulled"] is True
    with pytest.raises(banger.AlreadyExists):
        ctx.call("image.pull", {"ref": "tiny"})


@pytest.mark.parametrize("case", ["sha256", "extra-entry", "traversal", "missing-rootfs", "not-ext4", "404"])
def test_bad_bundles_leave_nothing(catalog, rootfs, ctx, env, case):
    www, publish, bundle = catalog
    if case == "sha256":
        entry = bundle("b", {"rootfs.ext4": rootfs})
        entry["sha256"] = "0" * 64
    elif case == "extra-entry":
        entry = bundle("b", {"rootfs.ext4": rootfs, "etc/passwd": b"x"})
    elif case == "traversal":
        entry = bundle("b", {"rootfs.ext4": rootfs, "../escape": b"x"})
    elif case == "missing-rootfs":
        entry = bundle("b", {"manifest.json": b"{}"})
    elif case == "not-ext4":
        entry = bundle("b", {"rootfs.ext4": b"not a filesystem" * 100})
    else:
        entry = bundle("b", {"rootfs.ext4": rootfs})
        os.unlink(www / "b.tar.zst")
    publish([entry])
    with pytest.raises(banger.Error) as ei:
        ctx.call("image.pull", {"ref": "b"})
    want = {"sha256": "sha256 mismatch", "extra-entry": "not expected", "traversal": "path traversal",
            "missing-rootfs": "no usable rootfs.ext4", "not-ext4": "no usable rootfs.ext4", "404": "HTTP 404"}[case]
    assert want in ei.value.message
    assert ctx.call("image.list")["images"] == []
    images = env["BANGER_STATE_DIR"] / "images"
    assert os.listdir(images) == []
    assert [f for f in os.listdir(env["BANGER_STATE_DIR"] / "tmp") if f.startswith("bundle-")] == []


def test_unreadable_catalog(ctx, env, tmp_path):
    (env["BANGER_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)
    # the engine read its config at open; a bad catalog file is reported when used
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    if ctx.transport == "local":
        ctx.close()
    (env["BANGER_CONFIG_DIR"] / "config.toml").write_text(f'image_catalog = "{bad}"\n')
    with banger.open(f"local:{tmp_path / 'other-state'}") as c2:
        with pytest.raises(banger.ProtocolError) as ei:
            c2.call("image.catalog")
        assert "not valid" in ei.value.message

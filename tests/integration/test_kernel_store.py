"""The kernel store over both transports: import the real Debian cloud
kernel .deb, list/show/rm, and catalog bundles from a real HTTP server."""
import hashlib
import json
import os
import subprocess

import pytest

import banger
from httpserver import Server
from test_kernel import kernel_debs  # noqa: F401 (session fixture: the real .deb)


def test_import_list_show_rm(ctx, env, kernel_debs):  # noqa: F811
    deb = kernel_debs[0]
    events = []
    k = ctx.kernels.import_deb("cloud", deb, progress=events.append)
    assert k["name"] == "cloud" and k["source"] == f"deb:{deb}"
    assert k["version"].endswith("-cloud-amd64")
    for f in ("vmlinux", "vmlinuz", "initrd.img"):
        assert os.path.exists(k["files"][f]["path"])
    with open(k["files"]["vmlinux"]["path"], "rb") as f:
        assert f.read(4) == b"\x7fELF"
    assert all(isinstance(p, banger.Progress) for p in events)
    assert {"extract", "initramfs"} <= {p.stage for p in events}
    extract = [p for p in events if p.stage == "extract" and p.total is not None]
    assert extract and all(0 <= p.done <= p.total for p in extract) and extract[-1].done == extract[-1].total
    assert [x["name"] for x in ctx.call("kernel.list")["kernels"]] == ["cloud"]
    assert ctx.call("kernel.show", {"name": k["id"]})["dir"] == k["dir"]
    with pytest.raises(banger.AlreadyExists):
        ctx.call("kernel.import", {"name": "cloud", "deb": str(deb)})
    with pytest.raises(banger.InvalidArgument):
        ctx.call("kernel.import", {"name": "x", "deb": str(deb), "from": "/tmp"})
    ctx.call("kernel.rm", {"name": "cloud"})
    assert not os.path.exists(k["dir"])
    assert ctx.call("kernel.list")["kernels"] == []


def test_import_garbage_leaves_nothing(ctx, env, tmp_path):
    junk = tmp_path / "junk.deb"
    junk.write_bytes(b"!<arch>\nnot really a deb" * 10)
    with pytest.raises(banger.Error):
        ctx.call("kernel.import", {"name": "junk", "deb": str(junk)})
    assert ctx.call("kernel.list")["kernels"] == []
    assert os.listdir(env["BANGER_STATE_DIR"] / "kernels") == []


@pytest.fixture
def kernel_catalog(tmp_path, env):
    www = tmp_path / "www"
    (www / "k").mkdir(parents=True)
    for name, data in {"vmlinux": b"\x7fELF-not-really", "initrd.img": b"initrd",
                       "manifest.json": b'{"kernel_version": "6.1.0-test"}'}.items():
        (www / "k" / name).write_bytes(data)
    subprocess.run(["tar", "-C", str(www / "k"), "--zstd", "-cf", str(www / "k.tar.zst"), "."], check=True)
    data = (www / "k.tar.zst").read_bytes()
    srv = Server(www)
    (www / "catalog.json").write_text(json.dumps({"version": 1, "kernels": [
        {"name": "tiny", "kernel_version": "6.1.0-test", "description": "test", "url": f"{srv.url}/k.tar.zst",
         "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)},
        {"name": "broken", "url": f"{srv.url}/k.tar.zst", "sha256": "1" * 64, "size": len(data)}]}))
    env["BANGER_CONFIG_DIR"].mkdir(parents=True, exist_ok=True)
    (env["BANGER_CONFIG_DIR"] / "config.toml").write_text(f'kernel_catalog = "{srv.url}/catalog.json"\n')
    yield
    srv.close()


def test_kernel_pull_from_catalog(kernel_catalog, ctx, env):
    assert [(k["name"], k["pulled"]) for k in ctx.call("kernel.catalog")["kernels"]] == \
        [("tiny", False), ("broken", False)]
    k = ctx.call("kernel.pull", {"name": "tiny"})
    assert k["version"] == "6.1.0-test" and k["source"] == "catalog:tiny"
    assert ctx.call("kernel.catalog")["kernels"][0]["pulled"] is True
    with pytest.raises(banger.ProtocolError) as ei:
        ctx.call("kernel.pull", {"name": "broken"})
    assert "sha256 mismatch" in ei.value.message
    with pytest.raises(banger.NotFound):
        ctx.call("kernel.pull", {"name": "nope"})
    assert [x["name"] for x in ctx.call("kernel.list")["kernels"]] == ["tiny"]

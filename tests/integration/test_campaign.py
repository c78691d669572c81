"""The reliability campaign's host-only half (campaign.py; bench/campaign.py
runs it large): bangerd killed at random moments of image import, image
pull and kernel import, then full disks under every writer and a registry
that cuts a blob. Each trial checks every invariant (campaign.violations)."""
import os
import subprocess

import pytest

import banger
from campaign import CuttingProxy, Harness, Op, campaign, fill, table, violations
from conftest import BUILD, child_env
from layers import make_tar
from registry import LAYER_TYPES, Layer, registry, sha256_digest  # noqa: F401 (fixture)
from test_kernel import kernel_debs  # noqa: F401 (session fixture: the real .deb)

TRIALS = int(os.environ.get("BANGER_CAMPAIGN_TRIALS", "2"))


def gone(h, kind, name):
    """Removes image/kernel `name` if the trial left one."""
    try:
        h.call(f"{kind}.rm", {"name": name})
    except banger.NotFound:
        pass


def host_ops(h, tmp, registry_host, deb):  # noqa: F811
    """The host-only operations of the kill campaign."""
    tar = make_tar(tmp / "big.tar", [{"name": f"f{i}", "data": os.urandom(4 << 20)} for i in range(16)])

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


def push_app(registry):  # noqa: F811
    """campaign/app:1 — two gzip layers of 6 MiB of incompressible data."""
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


@pytest.fixture
def harness(env, tmp_path):
    h = Harness(tmp_path / "h", BUILD, child_env(), cache=tmp_path / "h" / "cache")
    h.start()
    yield h
    assert h.stop() == 0


def test_kill_at_random_points(harness, registry, kernel_debs, tmp_path, capsys):  # noqa: F811
    push_app(registry)
    ops = host_ops(harness, tmp_path, registry.host, kernel_debs[0])
    rows, found = campaign(harness, ops, TRIALS, network=False)
    with capsys.disabled():
        print("\n" + table(rows))
    assert sum(r[1] for r in rows) == TRIALS * len(ops)
    assert found == []
    # after every kill the state is still usable
    for op in ops:
        harness.call(op.method, op.params(harness))


def test_registry_cutting_a_blob(harness, registry, tmp_path):  # noqa: F811
    push_app(registry)
    proxy = CuttingProxy(registry.host)
    try:
        ref = f"{proxy.host}/campaign/app:1"
        with pytest.raises(banger.Error) as err:
            harness.call("image.pull", {"ref": ref, "name": "cut"})
        assert proxy.cuts >= 1
        msg = err.value.message
        assert "blob" in msg or "sha256:" in msg, msg
        print(f"\ncut mid-blob: {msg}")
        assert harness.call("image.list")["images"] == []
        assert violations(harness, network=False) == []
        blobs = harness.cache / "oci" / "blobs" / "sha256"
        layer_digests = {os.path.basename(p) for p in blobs.iterdir()} if blobs.is_dir() else set()
        for d in layer_digests:  # whatever the cache holds is whole: its name is its hash
            data = (blobs / d).read_bytes()
            assert sha256_digest(data) == "sha256:" + d
        proxy.cut = False
        img = harness.call("image.pull", {"ref": ref, "name": "cut"})
        assert img["name"] == "cut"
        assert violations(harness, network=False) == []
    finally:
        proxy.close()


@pytest.fixture
def small_disk(env, tmp_path):
    """A harness whose state directory is a small tmpfs (the cloud kernel takes 157 MiB)."""
    h = Harness(tmp_path / "h", BUILD, child_env())
    h.state.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=224m", "tmpfs", str(h.state)], check=True)
    try:
        h.start()
        yield h
        assert h.stop() == 0
    finally:
        subprocess.run(["umount", "-l", str(h.state)], check=True)


def full(h, method, params, leave):
    """Runs method with `leave` bytes free on the state's filesystem: it must
    fail saying the disk is full and leave nothing; freed, it succeeds."""
    filler = fill(h.state, leave)
    try:
        with pytest.raises(banger.Error) as err:
            h.call(method, params)
        msg = err.value.message
        assert any(s in msg for s in ("disk is full", "No space", "database or disk is full")), msg
        print(f"\n{method} on a full disk: {msg}")
        assert violations(h, network=False) == []
    finally:
        filler.unlink()
    r = h.call(method, params)
    assert violations(h, network=False) == []
    return r


def test_full_disk_under_every_writer(small_disk, kernel_debs, tmp_path):  # noqa: F811
    h = small_disk
    tar = make_tar(tmp_path / "img.tar", [{"name": "usr/sbin/sshd", "data": b"#!/bin/sh\n", "mode": 0o755},
                                          {"name": "payload", "data": os.urandom(6 << 20)}])
    full(h, "image.import", {"name": "img", "tars": [str(tar)]}, leave=2 << 20)
    full(h, "kernel.import", {"name": "k", "deb": str(kernel_debs[0])}, leave=4 << 20)
    full(h, "vm.create", {"name": "cold", "image": "img", "kernel": "k", "start": False, "disk_size": "256M"},
         leave=64 << 10)
    assert [v["name"] for v in h.call("vm.list", {"all": True})["vms"]] == ["cold"]

"""The reliability campaign's host-only half (campaign.py; bench/campaign.py
runs it large): bangerd killed at random moments of image import, image
pull and kernel import, then full disks under every writer and a registry
that cuts a blob. Each trial checks every invariant (campaign.violations)."""
import os
import subprocess

import pytest

import banger

from campaign import Harness, campaign, fault_cut_blob, full_disk_faults, host_ops, push_app, table
from conftest import BUILD, child_env
from registry import registry  # noqa: F401 (fixture)
from test_kernel import kernel_debs  # noqa: F401 (session fixture: the real .deb)

TRIALS = int(os.environ.get("BANGER_CAMPAIGN_TRIALS", "2"))


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


def test_registry_cutting_a_blob(harness, registry):  # noqa: F811
    push_app(registry)
    print("\n" + fault_cut_blob(harness, registry.host, "campaign/app:1", "cut"))


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


def test_full_disk_under_every_writer(small_disk, kernel_debs, registry, tmp_path):  # noqa: F811
    h = small_disk
    push_app(registry)
    for line in full_disk_faults(h, kernel_debs[0], tmp_path, registry.host):
        print("\n" + line)
    assert [v["name"] for v in h.call("vm.list", {"all": True})["vms"]] == ["cold"]


def test_engine_start_sweeps_what_killed_pulls_left(env):
    """The pull trials' regression, made deterministic: a blob's temp and
    lock file that no pull holds go at engine start; a pull that holds its
    lock (another process) keeps its own; whole blobs stay."""
    import fcntl
    blobs = env["BANGER_CACHE_DIR"] / "oci" / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    dead, held, whole = "a" * 64, "b" * 64, "c" * 64
    (blobs / f"{dead}.tmp.XYZ123").write_bytes(b"half")
    (blobs / f"{dead}.lock").write_bytes(b"")
    (blobs / f"{held}.tmp.ABC456").write_bytes(b"being written")
    (blobs / whole).write_bytes(b"whole")
    with open(blobs / f"{held}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with banger.open(f"local:{env['BANGER_STATE_DIR']}"):
            pass
        assert sorted(os.listdir(blobs)) == sorted([f"{held}.tmp.ABC456", f"{held}.lock", whole])


def test_engine_start_finishes_interrupted_vm_work(env, tmp_path, kernel_debs):  # noqa: F811
    """The VM trials' regressions without booting: rows a killed daemon left
    `starting` or `stopping` read stopped (the first saying why), a VM
    directory without a row and the runtime directory of a gone VM are
    removed."""
    import sqlite3
    from campaign import make_tar
    state = env["BANGER_STATE_DIR"]
    tar = make_tar(tmp_path / "img.tar", [("usr/sbin/sshd", b"#!/bin/sh\n", 0o755)])
    with banger.open(f"local:{state}") as ctx:
        ctx.call("image.import", {"name": "tiny", "tars": [str(tar)]})
        ctx.call("kernel.import", {"name": "k", "deb": str(kernel_debs[0])})
        for n in ("a", "b"):
            ctx.call("vm.create", {"name": n, "image": "tiny", "kernel": "k", "start": False, "disk_size": "256M"})
    with sqlite3.connect(state / "state.db") as db:
        db.execute("UPDATE vms SET state = 'starting' WHERE name = 'a'")
        db.execute("UPDATE vms SET state = 'stopping' WHERE name = 'b'")
    (state / "vms" / "0123456789ab").mkdir()  # a delete killed after its row went
    gone_run = env["BANGER_RUNTIME_DIR"] / "fedcba987654"
    gone_run.mkdir(parents=True)
    (env["BANGER_RUNTIME_DIR"] / "not-a-vm").mkdir()
    with banger.open(f"local:{state}") as ctx:
        a, b = ctx.call("vm.show", {"name": "a"}), ctx.call("vm.show", {"name": "b"})
    assert (a["state"], b["state"]) == ("stopped", "stopped")
    assert "bangerd stopped during its start" in a["stop_reason"]
    assert sorted(os.listdir(state / "vms")) == sorted([a["id"], b["id"]])
    assert not gone_run.exists() and (env["BANGER_RUNTIME_DIR"] / "not-a-vm").is_dir()

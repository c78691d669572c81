"""The reliability campaign's host-only half (campaign.py; bench/campaign.py
runs it large): bangerd killed at random moments of image import, image
pull and kernel import, then full disks under every writer and a registry
that cuts a blob. Each trial checks every invariant (campaign.violations)."""
import os
import subprocess

import pytest

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


def test_full_disk_under_every_writer(small_disk, kernel_debs, tmp_path):  # noqa: F811
    h = small_disk
    for line in full_disk_faults(h, kernel_debs[0], tmp_path):
        print("\n" + line)
    assert [v["name"] for v in h.call("vm.list", {"all": True})["vms"]] == ["cold"]

"""The reliability campaign's VM half (campaign.py; bench/campaign.py runs it
large): bangerd killed at random moments of vm create, start, stop and
delete, image build, workspace prepare and session start while another VM
keeps running (its boot_id must survive every trial); then the VMM killed,
the guest agent killed, and a host reboot (every VMM killed, taps, bridge,
NAT table and runtime directory gone). Real guests under QEMU, in the
private network namespace tests/run makes (`unshare --net`)."""
import os

import pytest

from campaign import Harness, campaign, fault_agent_killed, fault_host_reboot, fault_vmm_killed, table, vm_ops
from conftest import BUILD, child_env

CACHE = os.environ.get("BANGER_TEST_SHARED_CACHE")
BOOTS = int(os.environ.get("BANGER_CAMPAIGN_VM_TRIALS", "1"))  # trials of the operations that boot
CHEAP = int(os.environ.get("BANGER_CAMPAIGN_TRIALS", "2"))


@pytest.fixture(scope="module")
def vh(tmp_path_factory):
    if os.environ.get("BANGER_TEST_NETNS") != "1":
        pytest.fail("VM tests create bridges and taps: run them through tests/run (unshare --net)")
    if not CACHE:
        pytest.fail("BANGER_TEST_SHARED_CACHE is unset: tests/run builds the Debian image tar there first")
    root = tmp_path_factory.mktemp("campaign")
    h = Harness(root, BUILD, child_env(), cache=CACHE, runtime=f"/tmp/bgc-{os.getpid()}",
                config='vmm = "qemu"\nqemu_accel = "tcg"\n[vm_defaults]\nvcpu = 2\nmemory_mib = 768\n'
                       'disk_size = "1G"\n')
    h.start()
    ops = vm_ops(h, root)
    yield h, ops
    for vm in h.rows("vms"):
        h.cli("vm", "rm", vm["name"])
    assert h.stop() == 0


def test_kill_at_random_points_of_vm_work(vh, capsys):
    h, ops = vh
    trials = {op.name: (BOOTS if op.boots else CHEAP) for op in ops}
    rows, found = campaign(h, ops, trials)
    with capsys.disabled():
        print("\n" + table(rows))
    assert found == []
    assert h.running()["keep"]  # the bystander ran through every trial


def test_vmm_killed_reads_stopped_and_starts_again(vh):
    h, _ = vh
    print("\n" + fault_vmm_killed(h, "keep"))


def test_agent_killed_in_the_guest_comes_back(vh):
    h, _ = vh
    print("\n" + fault_agent_killed(h, "keep"))


def test_host_reboot(vh):
    h, _ = vh
    print("\n" + fault_host_reboot(h))

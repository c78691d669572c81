"""The soak, small (soak.py; bench/soak.py runs it large): create -> exec
-> rm cycles with bangerd's RSS, fds, threads, unreaped children, taps,
disk usage and every table's rows sampled after each (counts and rows must
not move once warmed up; rows not at all), then concurrent `vm run --rm`s
mixed with image pulls from a local registry: each ends with its own
status, nothing is left. Real guests under QEMU, in the private network
namespace tests/run makes (`unshare --net`)."""
import os
import shutil
from pathlib import Path

import pytest

from conftest import BUILD, child_env
from registry import registry  # noqa: F401 (fixture)
from soak import CONCURRENT_COLUMNS, Metric, Soak, concurrent, judge, push_pull_images, run_cycles, slope, table

CACHE = os.environ.get("BANGER_TEST_SHARED_CACHE")
CYCLES = int(os.environ.get("BANGER_SOAK_CYCLES", "8"))
CONCURRENT = int(os.environ.get("BANGER_SOAK_CONCURRENT", "4"))
PULLS = int(os.environ.get("BANGER_SOAK_PULLS", "2"))
# bangerd runs under ASan here. Its quarantine holds freed memory (up to
# 256 MiB) and recycles it, so RSS swings by megabytes with any churn:
# this bangerd gets none, and a looser bound than bench/soak.py's (a
# release build). ASan's exit-time leak check (bangerd's status, asserted
# below) catches blocks nothing points to; the slope, blocks kept.
RSS_LIMIT_KIB = float(os.environ.get("BANGER_SOAK_RSS_KIB", "256"))


def soak_env():
    e = child_env()
    if "ASAN_OPTIONS" in e:
        e["ASAN_OPTIONS"] += ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
    return e


@pytest.fixture(scope="module")
def soak(tmp_path_factory):
    if os.environ.get("BANGER_TEST_NETNS") != "1":
        pytest.fail("VM tests create bridges and taps: run them through tests/run (unshare --net)")
    if not CACHE:
        pytest.fail("BANGER_TEST_SHARED_CACHE is unset: tests/run builds the Debian image tar there first")
    debs = sorted(Path("/var/cache/banger-test").glob("linux-image-6.1.0-*-cloud-amd64_*.deb"))
    assert debs, "no cloud kernel .deb in /var/cache/banger-test (test_kernel.py downloads it)"
    s = Soak(tmp_path_factory.mktemp("soak"), BUILD, soak_env(), CACHE, debs[-1], f"/tmp/bgs-{os.getpid()}")
    s.start()
    yield s
    assert s.stop() == 0  # ASan's leak check runs at bangerd's exit
    shutil.rmtree(s.h.run, ignore_errors=True)


def test_create_exec_rm_cycles_leave_nothing_growing(soak, capsys):
    rows, columns, failures, timings = run_cycles(soak, CYCLES, RSS_LIMIT_KIB)
    with capsys.disabled():
        print(f"\n{CYCLES} cycles (create, exec, rm); judged over the last {CYCLES - CYCLES // 2}\n"
              + table(rows, columns))
        print("  ".join(f"{step} median {sorted(t)[len(t) // 2]:.1f} s" for step, t in timings.items()))
    assert failures == []


def test_concurrent_runs_and_pulls_each_end_with_their_own_status(soak, registry, capsys):  # noqa: F811
    refs = push_pull_images(registry, PULLS)
    rows, failures = concurrent(soak, CONCURRENT, refs, missing_ref=f"{registry.host}/soak/p0:missing",
                                bound_s=300)
    with capsys.disabled():
        print("\n" + table(rows, CONCURRENT_COLUMNS))
    assert failures == []


def test_verdicts_catch_growth():
    """What the soak calls a leak, on made-up samples (no VM)."""
    assert slope([10, 12, 14, 16]) == 2.0 and slope([5, 5, 5]) == 0.0
    assert judge(Metric("fds", "exact"), [24, 24, 24])[1]
    assert not judge(Metric("fds", "exact"), [24, 24, 25])[1]
    rss = Metric("rss_kib", "slope", 4)
    assert judge(rss, [22708, 22712, 22704, 22708])[1]
    assert not judge(rss, [22708 + 8 * i for i in range(10)])[1]
    disk = Metric("disk_kib", "range", 4)
    assert judge(disk, [100, 104, 100])[1] and not judge(disk, [100, 108])[1]
    assert not judge(Metric("wal_kib", "bound", 4457), [4000, 4460])[1]

#!/usr/bin/python3
"""bangerd idle RSS, client weight and round-trip latency, each beside a
baseline measured in the same run:

  * `banger vm ls` and `banger daemon status` (CLI process + socket round
    trip to bangerd) vs `banger version` (the same CLI, no socket) vs
    /bin/true;
  * the shared objects the CLI opens, and its relocations at start;
  * engine.status through the Python binding over the daemon socket vs the
    in-process local engine;
  * bangerd's RSS after start and idle, vs a `sleep` process.

Goals (issue 8): bangerd idle RSS <= 8 MiB, `banger vm ls` <= 10 ms median.

Usage: bench/daemon.py [BUILD_DIR] [BASELINE_BUILD_DIR]
(default: build; use release builds. With a second build dir, e.g. one of
an older commit, its numbers are printed beside the first's.)"""
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

root = Path(__file__).resolve().parents[1]
builds = [Path(a).resolve() for a in sys.argv[1:3]] or [root / "build"]
os.environ["BANGER_LIBRARY"] = str(builds[0] / "lib" / "libbanger.so.0")
sys.path.insert(0, str(root / "bindings" / "python"))
import banger  # noqa: E402

tmp = Path(tempfile.mkdtemp(prefix="banger-bench-"))
for k in ("CONFIG", "STATE", "CACHE", "RUNTIME"):
    os.environ[f"BANGER_{k}_DIR"] = str(tmp / k.lower())
sock = tmp / "runtime" / "bangerd.sock"
os.environ["BANGER_SOCKET"] = str(sock)


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def median_ms(fn, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def run(*argv):
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def loader_stats(cli):
    """Objects the dynamic loader opens for `banger version`, and its relocations."""
    e = dict(os.environ, LD_DEBUG="files,statistics")
    err = subprocess.run([cli, "version"], capture_output=True, text=True, env=e).stderr
    objects = sum(1 for line in err.splitlines() if "file=" in line and "generating link map" in line)
    relocs = next((int(line.split(":")[-1]) for line in err.splitlines() if "number of relocations:" in line), 0)
    return objects, relocs


def measure(build):
    cli = str(build / "tools" / "banger" / "banger")
    daemon = subprocess.Popen([str(build / "tools" / "bangerd" / "bangerd"), "--socket", str(sock)],
                              stderr=subprocess.DEVNULL)
    while not sock.exists():
        time.sleep(0.01)
    time.sleep(1.0)
    r = {"bangerd idle RSS (KiB)": rss_kib(daemon.pid)}
    r["banger vm ls (ms)"] = median_ms(lambda: run(cli, "vm", "ls"), 100)
    r["banger daemon status (ms)"] = median_ms(lambda: run(cli, "daemon", "status"), 100)
    r["banger version, no socket (ms)"] = median_ms(lambda: run(cli, "version"), 100)
    r["CLI objects opened"], r["CLI relocations at start"] = loader_stats(cli)
    if build == builds[0]:  # the binding loads one libbanger per process
        with banger.open(f"unix:{sock}", autostart=False) as remote:
            r["engine.status via bangerd (ms)"] = median_ms(remote.status, 1000)
        with banger.open(f"local:{tmp / 'local-state'}") as local:
            r["engine.status in-process (ms)"] = median_ms(local.status, 1000)
    r["bangerd RSS after the requests (KiB)"] = rss_kib(daemon.pid)
    daemon.terminate()
    daemon.wait()
    sock.unlink(missing_ok=True)
    return r


results = [measure(b) for b in builds]
sleeper = subprocess.Popen(["sleep", "30"])
time.sleep(0.2)
base = {"/bin/true (ms)": median_ms(lambda: run("/bin/true"), 100), "sleep process RSS (KiB)": rss_kib(sleeper.pid)}
sleeper.kill()

heads = ["/".join(b.parts[-2:])[-16:] for b in builds]
print(f"{'measure':40}" + "".join(f" {h:>16}" for h in heads))
for key in results[0]:
    vals = [r.get(key) for r in results]
    print(f"{key:40}" + "".join(f" {v:16.3f}" if isinstance(v, float) else f" {v if v is not None else '-':>16}"
                                for v in vals))
for key, v in base.items():
    print(f"{key + ' (baseline)':40} {v:16.3f}" if isinstance(v, float) else f"{key + ' (baseline)':40} {v:16}")
print(f"\ngoals: bangerd idle RSS <= 8192 KiB ({results[0]['bangerd idle RSS (KiB)']}), "
      f"banger vm ls <= 10 ms median ({results[0]['banger vm ls (ms)']:.2f})")
subprocess.run(["rm", "-rf", str(tmp)])

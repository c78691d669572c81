#!/usr/bin/python3
"""bangerd idle RSS and round-trip latency, each beside a baseline measured
in the same run:

  * `banger daemon status` (CLI process + socket round trip to bangerd)
    vs `banger version` (the same CLI process, no socket) vs /bin/true;
  * engine.status through the Python binding over the daemon socket vs the
    in-process local engine;
  * bangerd's RSS after start and idle, vs a `sleep` process.

Usage: bench/daemon.py [BUILD_DIR] (default: build; use a release build)."""
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

root = Path(__file__).resolve().parents[1]
build = Path(sys.argv[1] if len(sys.argv) > 1 else root / "build").resolve()
os.environ["BANGER_LIBRARY"] = str(build / "lib" / "libbanger.so.0")
sys.path.insert(0, str(root / "bindings" / "python"))
import banger  # noqa: E402

tmp = Path(tempfile.mkdtemp(prefix="banger-bench-"))
for k in ("CONFIG", "STATE", "CACHE", "RUNTIME"):
    os.environ[f"BANGER_{k}_DIR"] = str(tmp / k.lower())
sock = tmp / "runtime" / "bangerd.sock"
cli = str(build / "tools" / "banger" / "banger")


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
    return statistics.median(times), min(times), max(times)


def run(*argv):
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


daemon = subprocess.Popen([str(build / "tools" / "bangerd" / "bangerd"), "--socket", str(sock)],
                          stderr=subprocess.DEVNULL)
while not sock.exists():
    time.sleep(0.01)
time.sleep(1.0)
sleeper = subprocess.Popen(["sleep", "30"])
time.sleep(0.2)
rss_idle, rss_sleep = rss_kib(daemon.pid), rss_kib(sleeper.pid)

rows = [
    ("banger daemon status (CLI + RTT)", median_ms(lambda: run(cli, "daemon", "status"), 100)),
    ("banger version (CLI, no socket)", median_ms(lambda: run(cli, "version"), 100)),
    ("/bin/true (process spawn)", median_ms(lambda: run("/bin/true"), 100)),
]
with banger.open(f"unix:{sock}", autostart=False) as remote:
    rows.append(("engine.status via bangerd (binding)", median_ms(remote.status, 1000)))
with banger.open(f"local:{tmp / 'local-state'}") as local:
    rows.append(("engine.status in-process (binding)", median_ms(local.status, 1000)))
rss_after = rss_kib(daemon.pid)

print(f"{'measure':40} {'median ms':>10} {'min':>8} {'max':>8}")
for name, (med, lo, hi) in rows:
    print(f"{name:40} {med:10.3f} {lo:8.3f} {hi:8.3f}")
print(f"\n{'RSS':40} {'KiB':>10}")
print(f"{'bangerd idle (1 s after start)':40} {rss_idle:10}")
print(f"{'bangerd after 1,100 requests':40} {rss_after:10}")
print(f"{'sleep 30 (baseline process)':40} {rss_sleep:10}")

sleeper.kill()
daemon.terminate()
daemon.wait()
subprocess.run(["rm", "-rf", str(tmp)])

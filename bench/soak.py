#!/usr/bin/python3
"""The soak, large (issue 13 part 6; the CI runs the same harness,
tests/integration/soak.py, small: tests/integration/test_vm_soak.py):

  1. cycles of `banger vm create` -> `banger vm exec NAME -- sh -c ...` ->
     `banger vm rm` through one bangerd, sampling after each bangerd's RSS,
     open fds, threads and unreaped children, the engine's taps, the state
     directory's disk usage (and, apart, its SQLite WAL) and the rows of
     every table; printed per metric: before the first cycle, after the
     first and the last, the least-squares slope per cycle over the second
     half (the first is warm-up) and the verdict. The baseline beside it:
     the slope of the same samples of a second bangerd that does no work,
     taken at the same moments (what an idle daemon drifts by in the same
     wall time);
  2. N concurrent `banger vm run --rm --name cN -- sh -c 'echo cN; exit K'`
     (K its own per command) mixed with M `banger image pull`s from a local
     docker-registry and one pull of a missing tag: each must end within
     the bound with its own status and output, and nothing may be left
     (VM rows, VMM processes, taps beyond the warm pool, any campaign
     invariant).

Exits 1 on any failed verdict. Run as root in a private network namespace,
with a release build:

  unshare --net bench/soak.py BUILD_DIR [--cycles 200] [--concurrent 20]
      [--pulls 5] [--pull-mib 16] [--image minbase|debian] [--rss-kib 4]

Needs the Debian image tars in the content cache (BANGER_CACHE_DIR, default
/var/cache/banger-test/shared, as tests/run leaves it: `image build
--minimal` and `--minimal --no-systemd`), the cloud kernel .deb in
/var/cache/banger-test and docker-registry."""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

root = Path(__file__).resolve().parents[1]
ap = argparse.ArgumentParser()
ap.add_argument("build", nargs="?", default=str(root / "build"))
ap.add_argument("--cycles", type=int, default=200, help="create -> exec -> rm cycles")
ap.add_argument("--concurrent", type=int, default=20, help="concurrent vm run --rm")
ap.add_argument("--pulls", type=int, default=5, help="image pulls mixed among them (plus one of a missing tag)")
ap.add_argument("--pull-mib", type=int, default=16, help="size of each pulled image's layers")
ap.add_argument("--image", choices=("minbase", "debian"), default="minbase",
                help="the guest: minbase (no systemd, banger's init; quickest) or debian (systemd)")
ap.add_argument("--vcpu", type=int, default=1)
ap.add_argument("--memory", type=int, default=512, help="MiB per guest")
ap.add_argument("--rss-kib", type=float, default=4.0, help="RSS slope bound, KiB per cycle")
ap.add_argument("--bound", type=int, default=900, help="seconds every concurrent command must end within")
ap.add_argument("--only", choices=("cycles", "concurrent"), default=None)
args = ap.parse_args()
build = Path(args.build).resolve()
sys.path.insert(0, str(root / "bench"))
from harness import prepare  # noqa: E402

deb, shared, work, env = prepare(build, "soak")
import soak as s  # noqa: E402
from registry import Registry  # noqa: E402
log = lambda line: print(line, flush=True)  # noqa: E731
load = lambda: open("/proc/loadavg").read().split()[0]  # noqa: E731
print(f"{build}, work {work}, image {args.image}, {args.vcpu} vcpu, {args.memory} MiB, load {load()}")
failures = []
soak = idle = registry = None
try:
    soak = s.Soak(work / "soak", build, env, shared, deb, f"/tmp/bbs-{os.getpid()}", image=args.image,
                  vcpu=args.vcpu, memory_mib=args.memory).start()
    if args.only in (None, "cycles"):
        idle = s.Soak(work / "idle", build, env, shared, deb, f"/tmp/bbi-{os.getpid()}").start(populate=False)
        t0 = time.monotonic()
        rows, columns, bad, timings = s.run_cycles(soak, args.cycles, args.rss_kib, log, idle=idle)
        took = time.monotonic() - t0
        failures += bad
        print(f"\n{args.cycles} cycles (create, exec, rm) in {took:.0f} s, load {load()}; judged over the last "
              f"{args.cycles - args.cycles // 2}; idle slope: a bangerd doing nothing, sampled at the same moments")
        print(s.table(rows, columns))
        print("  ".join(f"{step} median {sorted(t)[len(t) // 2]:.1f} s (max {max(t):.1f})"
                        for step, t in timings.items()))
    if args.only in (None, "concurrent"):
        (work / "registry").mkdir()
        registry = Registry(work / "registry")
        refs = s.push_pull_images(registry, args.pulls, args.pull_mib)
        t0 = time.monotonic()
        rows, bad = s.concurrent(soak, args.concurrent, refs, missing_ref=f"{registry.host}/soak/p0:missing",
                                 bound_s=args.bound, log=log)
        failures += bad
        print(f"\n{args.concurrent} concurrent vm run --rm + {args.pulls} pulls + 1 missing, "
              f"{time.monotonic() - t0:.0f} s, load {load()}")
        print(s.table(rows, s.CONCURRENT_COLUMNS))
finally:
    for x in (soak, idle):
        if x is not None and x.h.proc is not None:
            x.stop()
    if registry:
        registry.stop()
    subprocess.run(["rm", "-rf", str(work)])
    for x in (soak, idle):
        if x is not None:
            subprocess.run(["rm", "-rf", str(x.h.run)])
for line in failures:
    print(f"FAILED: {line}")
sys.exit(1 if failures else 0)

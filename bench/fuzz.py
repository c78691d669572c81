#!/usr/bin/python3
"""Every libFuzzer target for N minutes (default 5), each side by side with
the CI baseline (tests/fuzz/run.sh's 20 s) in the same run: both start from
a fresh copy of the checked-in seeds (tests/fuzz/corpus/<name>/), with the
max_len run.sh gives the target. Prints one table: target, seconds,
executions, exec/s, coverage features, corpus size, findings (crash, leak,
timeout or OOM inputs, kept in BUILD/fuzz-bench-artifacts/).

Usage: bench/fuzz.py [--minutes N] [--baseline-seconds S] [--build DIR] [TARGET...]
       (DIR: a CC=clang -Dfuzz=true build, default build-fuzz)"""
import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

root = Path(__file__).resolve().parents[1]
ap = argparse.ArgumentParser()
ap.add_argument("--minutes", type=float, default=5)
ap.add_argument("--baseline-seconds", type=int, default=20)
ap.add_argument("--build", default=str(root / "build-fuzz"))
ap.add_argument("targets", nargs="*")
args = ap.parse_args()

# the target list and max_len come from run.sh, so the two cannot drift
run_sh = (root / "tests" / "fuzz" / "run.sh").read_text()
block = re.search(r'^targets="\n(.*?)^"', run_sh, re.S | re.M).group(1)
max_len = dict(line.split(":") for line in block.split())
targets = args.targets or list(max_len)
build = Path(args.build).resolve()
artifacts = build / "fuzz-bench-artifacts"
artifacts.mkdir(exist_ok=True)


def run(name, seconds, work):
    corpus = work / f"{name}-{seconds}"
    shutil.copytree(root / "tests" / "fuzz" / "corpus" / name, corpus)
    prefix = artifacts / f"{name}-{seconds}s-"
    p = subprocess.run([str(build / "tests" / "fuzz" / f"fuzz_{name}"), f"-max_total_time={seconds}",
                        f"-max_len={max_len[name]}", "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1",
                        f"-artifact_prefix={prefix}", str(corpus)], capture_output=True, text=True, errors="replace")
    log = p.stderr
    execs = int(m.group(1)) if (m := re.search(r"stat::number_of_executed_units: (\d+)", log)) else 0
    secs = seconds
    ft = re.findall(r" ft: (\d+)", log)
    found = len(list(artifacts.glob(f"{name}-{seconds}s-*")))
    if p.returncode and not found:
        found = 1  # a failure that left no input (e.g. an abort during start-up)
    return dict(secs=secs, execs=execs, rate=execs / max(secs, 1), ft=int(ft[-1]) if ft else 0,
                corpus=sum(1 for _ in corpus.iterdir()), found=found)


rows = []
with tempfile.TemporaryDirectory(prefix="banger-bench-fuzz-") as tmp:
    work = Path(tmp)
    long_secs = int(args.minutes * 60)
    for name in targets:
        if not (build / "tests" / "fuzz" / f"fuzz_{name}").exists():
            sys.exit(f"fuzz_{name} is not built in {build} (CC=clang meson setup {build} -Dfuzz=true)")
        for secs in (args.baseline_seconds, long_secs):
            print(f"== fuzz_{name} for {secs}s", file=sys.stderr, flush=True)
            rows.append((name, secs == args.baseline_seconds, run(name, secs, work)))

print(f"{'target':<14} {'run':<9} {'seconds':>7} {'executions':>11} {'exec/s':>8} {'features':>8} {'corpus':>6} {'findings':>8}")
for name, base, r in rows:
    print(f"{name:<14} {'CI' if base else 'bench':<9} {r['secs']:>7} {r['execs']:>11} {r['rate']:>8.0f} {r['ft']:>8} "
          f"{r['corpus']:>6} {r['found']:>8}")
b = [r for _, base, r in rows if base]
l = [r for _, base, r in rows if not base]
print(f"baseline (CI, {args.baseline_seconds}s each): {sum(r['execs'] for r in b)} executions, "
      f"{sum(r['ft'] for r in b)} features, {sum(r['found'] for r in b)} findings; "
      f"bench ({long_secs}s each): {sum(r['execs'] for r in l)} executions "
      f"({sum(r['execs'] for r in l) / max(1, sum(r['execs'] for r in b)):.1f}x), "
      f"{sum(r['ft'] for r in l)} features (+{sum(r['ft'] for r in l) - sum(r['ft'] for r in b)}), "
      f"{sum(r['found'] for r in l)} findings")
sys.exit(1 if any(r["found"] for _, _, r in rows) else 0)

#!/usr/bin/python3
"""The reliability campaign, large (issue 13 parts 3 and 4; the CI runs the
same harness, tests/integration/campaign.py, with a few trials):

  1. kill trials: bangerd gets SIGKILL at a random moment (uniform over the
     operation's measured duration) of image import, image pull and kernel
     import (host only), then of vm create, start, stop, delete, image
     build, workspace prepare and session start while a bystander VM runs;
     after each restart every invariant is checked (campaign.violations);
  2. faults: a full disk under image import, kernel import, vm create and
     image pull; a registry that cuts a blob; the VMM killed; the guest agent killed; a
     host reboot.

Prints a table (operation, trials, killed mid-way, completed before the
kill, trials with violations) and a line per fault; exits 1 on any
violation. Run as root in a private network namespace:

  unshare --net bench/campaign.py BUILD_DIR [--trials 50] [--vm-trials 50]
      [--seed N] [--only host|vm|faults]

Needs the Debian image tar in the content cache (BANGER_CACHE_DIR, default
/var/cache/banger-test/shared, e.g. after `banger image build --minimal`)
and the cloud kernel .deb in /var/cache/banger-test."""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

root = Path(__file__).resolve().parents[1]
ap = argparse.ArgumentParser()
ap.add_argument("build", nargs="?", default=str(root / "build"))
ap.add_argument("--trials", type=int, default=50, help="kill trials per host-only operation")
ap.add_argument("--vm-trials", type=int, default=50, help="kill trials per VM operation")
ap.add_argument("--boot-trials", type=int, default=None,
                help="kill trials for the operations that boot (create, start, stop); default --vm-trials")
ap.add_argument("--seed", type=int, default=None)
ap.add_argument("--only", choices=("host", "vm", "faults"), default=None)
args = ap.parse_args()
build = Path(args.build).resolve()
sys.path.insert(0, str(root / "bench"))
from harness import prepare  # noqa: E402

deb, shared, work, env = prepare(build, "campaign")
import campaign as c  # noqa: E402
from registry import Registry  # noqa: E402
seed = args.seed if args.seed is not None else int(time.time())
print(f"seed {seed}, {build}, work {work}")
rows, found, faults, failed = [], [], [], []
log = lambda line: print(line, flush=True)  # noqa: E731


def fault(fn, *a):
    try:
        line = fn(*a)
        faults.append(line)
        log(f"fault: {line}")
    except (AssertionError, KeyError, c.banger.Error) as e:  # a fault that fails must not end the run
        failed.append(f"{fn.__name__}: {e!r}")
        log(f"FAULT FAILED: {fn.__name__}: {e}")


(work / "registry").mkdir()
registry = None
try:
    registry = Registry(work / "registry")
    if args.only in (None, "host", "faults"):
        h = c.Harness(work / "host", build, env)
        h.start()
        try:
            c.push_app(registry)
            if args.only != "faults":
                r, f = c.campaign(h, c.host_ops(h, work, registry.host, deb), args.trials, seed, log, network=False)
                rows += r
                found += f
            if args.only != "host":
                fault(c.fault_cut_blob, h, registry.host, "campaign/app:1", "cut")
        finally:
            h.stop()
    if args.only in (None, "faults"):
        h = c.Harness(work / "disk", build, env)
        h.state.mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=224m", "tmpfs", str(h.state)], check=True)
        try:
            h.start()
            try:
                for line in c.full_disk_faults(h, deb, work, registry.host):
                    faults.append(line)
                    log(f"fault: {line}")
            except AssertionError as e:
                failed.append(f"full disk: {e}")
            h.stop()
        finally:
            subprocess.run(["umount", "-l", str(h.state)])
    if args.only in (None, "vm", "faults"):
        h = c.Harness(work / "vm", build, env, cache=shared, runtime=f"/tmp/bbc-{os.getpid()}",
                      config='vmm = "qemu"\nqemu_accel = "tcg"\n[vm_defaults]\nvcpu = 2\nmemory_mib = 768\n'
                             'disk_size = "1G"\n')
        h.start()
        try:
            ops = c.vm_ops(h, work)
            if args.only != "faults":
                boots = args.boot_trials if args.boot_trials is not None else args.vm_trials
                r, f = c.campaign(h, ops, {op.name: boots if op.boots else args.vm_trials for op in ops}, seed,
                                  log)
                rows += r
                found += f
            if args.only != "host":
                fault(c.fault_vmm_killed, h, "keep")
                fault(c.fault_agent_killed, h, "keep")
                fault(c.fault_host_reboot, h)
        finally:
            for vm in h.rows("vms"):
                h.cli("vm", "rm", vm["name"])
            h.stop()
finally:
    if registry:
        registry.stop()
    subprocess.run(["rm", "-rf", str(work)])

if rows:
    print("\n" + c.table(rows))
for line in found:
    print(f"violation: {line}")
print("\nfaults:")
for line in faults:
    print(f"  ok: {line}")
for line in failed:
    print(f"  FAILED: {line}")
sys.exit(1 if found or failed else 0)

#!/usr/bin/python3
"""Rootfs conversion, side by side in one run: the same multi-layer image
(a debootstrap tree split into gzip layers) turned into a bootable ext4

  * by banger (`banger image import --tar L1 --tar L2 --tar L3`, local
    engine: one streaming pass, no staging directory), and
  * by the reference pipeline (extract every layer into a directory as an
    unprivileged runner would, `mkfs.ext4 -d`, then a debugfs pass that
    restores ownership and modes),

then both images are dumped with libext2fs and compared entry by entry
(type, mode, owner, size, content hash, link target).

Usage: bench/ext4.py ROOTFS_DIR [BUILD_DIR]   (ROOTFS_DIR: e.g. a debootstrap tree)"""
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

root = Path(__file__).resolve().parents[1]
src = Path(sys.argv[1]).resolve()
build = Path(sys.argv[2] if len(sys.argv) > 2 else root / "build").resolve()
cli = build / "tools" / "banger" / "banger"
tool = build / "tests" / "unit" / "fs" / "ext4-tool"
work = Path(tempfile.mkdtemp(prefix="banger-bench-ext4-", dir="/var/tmp"))


def du(path):
    return int(subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True).stdout.split()[0]) * 1024


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ---- the input: three gzip layers (usr/share, the rest of usr, everything else)
layers = [work / "l1.tar.gz", work / "l2.tar.gz", work / "l3.tar.gz"]
def pick(rel):
    return 0 if rel.startswith("usr/share") else 1 if rel.startswith("usr") else 2
members = [[], [], []]
for d, dirs, files in os.walk(src):
    for n in dirs + files:
        rel = os.path.relpath(os.path.join(d, n), src)
        members[pick(rel)].append(rel)
for i, path in enumerate(layers):
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--no-recursion", "-C", str(src), "-czf", str(path),
                    "-T", "-"], input="\n".join(sorted(members[i])).encode(), check=True)
unpacked = du(src)
print(f"input: {src} ({unpacked / 1e6:.0f} MB unpacked, {sum(len(m) for m in members)} entries), "
      f"3 gzip layers {sum(p.stat().st_size for p in layers) / 1e6:.0f} MB")

# ---- banger
env = {**os.environ, "BANGER_URI": f"local:{work / 'state'}", "BANGER_CONFIG_DIR": str(work / "cfg")}
args = [str(cli), "image", "import", "bench", "--json"] + [a for p in layers for a in ("--tar", str(p))]
out = {}
def run_banger():
    p = subprocess.run(args, capture_output=True, text=True, env=env, check=True)
    out.update(json.loads(p.stdout))
t_banger = timed(run_banger)
banger_img = Path(out["rootfs"])
banger_disk = out["disk_usage"]

# ---- reference pipeline (the seeds: extract, mkfs.ext4 -d, debugfs ownership fix-up)
stage = work / "staging"
ref_img = work / "ref.ext4"
def run_reference():
    stage.mkdir()
    for p in layers:  # an unprivileged runner loses ownership: emulate with --no-same-owner
        subprocess.run(["tar", "--no-same-owner", "-xzf", str(p), "-C", str(stage)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(stage), "-E", "root_owner=0:0", str(ref_img),
                    str(out["rootfs_size"] // 1024) + "k"], check=True)
    cmds = []
    for p in layers:
        with tarfile.open(p) as tf:
            for m in tf:
                path = "/" + m.name.lstrip("./")
                if path == "/":
                    continue
                cmds += [f'sif "{path}" uid {m.uid}', f'sif "{path}" gid {m.gid}']
                if not m.issym():
                    mode = {tarfile.DIRTYPE: 0o40000, tarfile.SYMTYPE: 0o120000}.get(m.type, 0o100000) | m.mode
                    if m.type in (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE):
                        continue
                    cmds.append(f'sif "{path}" mode 0{mode:o}')
    (work / "fixup.cmds").write_text("\n".join(cmds) + "\n")
    subprocess.run(["debugfs", "-w", "-f", str(work / "fixup.cmds"), str(ref_img)], capture_output=True, check=True)
t_ref = timed(run_reference)
ref_peak = du(stage) + du(ref_img)

# ---- compare the trees
def tree(img):
    p = subprocess.run([str(tool), "dump", str(img)], capture_output=True, text=True, check=True)
    keep = ("type", "mode", "uid", "gid", "size", "hash", "target", "rdev")
    t = {}
    for o in map(json.loads, p.stdout.splitlines()):
        if o["path"] in ("/", "/lost+found"):
            continue
        t[o["path"]] = {k: o.get(k) for k in keep if not (k == "size" and o["type"] == "dir")}
    return t
a, b = tree(banger_img), tree(ref_img)
diffs = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]

print(f"\n{'pipeline':44} {'wall s':>8} {'peak extra disk MB':>19}")
print(f"{'banger image import (3 layers)':44} {t_banger:8.2f} {banger_disk / 1e6:19.0f}")
print(f"{'extract + mkfs.ext4 -d + debugfs fix-up':44} {t_ref:8.2f} {ref_peak / 1e6:19.0f}")
print(f"\nbanger / reference wall time: {t_banger / t_ref:.2f}x")
print(f"trees: {len(a)} entries vs {len(b)}; differences: {len(diffs)}")
for k in diffs[:10]:
    print("  ", k, a.get(k), b.get(k))
shutil.rmtree(work)
sys.exit(1 if diffs else 0)

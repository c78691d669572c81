#!/usr/bin/python3
"""vm workspace prepare and export, against what a person would do by hand,
side by side in one run (as root, in a private network namespace:
`unshare --net bench/workspace.py BUILD_DIR`):

  1. a synthetic repository made with git fast-import: BENCH_FILES files
     (default 20000) making BENCH_TREE_MB of working tree (default 300),
     BENCH_COMMITS commits (default 5000), the first ones carrying large
     blobs later deleted (BENCH_OLD_MB, default 200) — and this project's
     own repository;
  2. for each: `banger vm workspace prepare` vs the baseline `git clone
     --depth 10 file://… && banger vm cp <clone> VM:…` (the same tar stream
     over the agent), wall time and what went in (files, bytes) against
     the whole history's size;
  3. export with 100 files changed in the guest (goal <= 2 s under TCG).

Needs the Debian image tar in the content cache (BANGER_CACHE_DIR, e.g.
/var/cache/banger-test/shared after tests/run) and the cloud kernel .deb.
The minimal test image has no git: the host's /usr/bin/git goes in first
(vm cp), as the VM tests do."""
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchenv import cli, deb, root, setup  # noqa: E402

nfiles = int(os.environ.get("BENCH_FILES", "20000"))
tree_mb = int(os.environ.get("BENCH_TREE_MB", "300"))
ncommits = int(os.environ.get("BENCH_COMMITS", "5000"))
old_mb = int(os.environ.get("BENCH_OLD_MB", "200"))
import banger  # noqa: E402

work, run_dir, env = setup("workspace", 2, 2048, "8G", remove_vms=("wsbench",))


def synthetic(path):
    """A repository of nfiles files (tree_mb MB) and ncommits commits,
    the first 10 adding old_mb MB of blobs that a later commit deletes."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    size = max(1, tree_mb * 1_000_000 // nfiles)
    big = old_mb * 1_000_000 // 10
    t = 1_600_000_000
    p = subprocess.Popen(["git", "-C", str(path), "fast-import", "--quiet"], stdin=subprocess.PIPE)
    w = p.stdin.write

    def commit(n, body):
        # each commit's parent is the branch's last one in this stream
        w(f"commit refs/heads/main\ncommitter Bench <b@example.org> {t + n} +0000\ndata 8\ncommit{n % 10}\n".encode())
        body()

    def old_blobs():
        for k in range(10):
            w(f"M 100644 inline old/blob{k}.bin\ndata {big}\n".encode())
            w(os.urandom(big))
            w(b"\n")
    commit(0, old_blobs)

    def tree():
        w(b"D old\n")
        for i in range(nfiles):
            data = os.urandom(size // 2).hex()[:size].encode()
            w(f"M 100644 inline src/d{i % 200}/f{i}.txt\ndata {len(data)}\n".encode() + data + b"\n")
    commit(1, tree)
    for n in range(2, ncommits):
        def edit(n=n):
            data = f"change {n}\n".encode()
            w(f"M 100644 inline CHANGES/c{n % 50}.txt\ndata {len(data)}\n".encode() + data + b"\n")
        commit(n, edit)
    p.stdin.close()
    assert p.wait() == 0
    subprocess.run(["git", "-C", str(path), "checkout", "-q", "-f", "main"], check=True)


def du(path):
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True).stdout.split()[0])


def timed(argv):
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True)
    assert p.returncode == 0, (argv, p.stderr)
    return time.perf_counter() - t0, p


with banger.open(env["BANGER_URI"], autostart=True) as ctx:
    ctx.call("image.build", {"minimal": True, "name": "debian-bookworm"})
    ctx.call("kernel.import", {"name": "debian-cloud", "deb": str(deb)})
    ctx.call("vm.create", {"name": "wsbench"})
    ctx.call("vm.cp", {"name": "wsbench", "direction": "in", "host_path": "/usr/bin/git",
                       "guest_path": "/usr/local/bin/"})

t0 = time.perf_counter()
syn = work / "synthetic"
synthetic(syn)
print(f"synthetic repository: {nfiles} files, {du(syn) - du(syn / '.git')} B tree, {ncommits} commits, "
      f".git {du(syn / '.git')} B (made in {time.perf_counter() - t0:.0f} s)")

for label, repo in (("banger", root), ("synthetic", syn)):  # synthetic last: export reads it
    history = du(Path(repo) / ".git")
    tp, p = timed([cli, "vm", "workspace", "prepare", "wsbench", str(repo), "--guest-path", f"/root/{label}",
                   "--force", "--json"])
    import json
    r = json.loads(p.stdout)
    clone = Path(tempfile.mkdtemp(dir=work))
    t1 = time.perf_counter()
    subprocess.run(["git", "clone", "-q", "--depth", "10", f"file://{repo}", str(clone / label)], check=True)
    timed([cli, "vm", "cp", str(clone / label), f"wsbench:/root/base-{label}"])
    tb = time.perf_counter() - t1
    shipped = du(clone / label)  # what the baseline sent: the same depth-10 clone plus its checkout
    shutil.rmtree(clone)
    print(f"{label:10s} prepare {tp:7.2f} s   baseline (clone --depth 10 + vm cp) {tb:7.2f} s   "
          f"ratio {tp / tb:.2f} (goal <= 0.7)\n"
          f"{'':10s} sent {r['sent_bytes']} B (a work tree of {r['files']} files, {r['bytes']} B, {r['overlaid']} sent"
          f" as they are, the rest checked out from the depth-10 history); baseline {shipped} B;"
          f" whole history {history} B")

# export with 100 files changed in the guest
script = ("cd /root/synthetic && for f in $(ls src/d0 | head -n 100); do echo edit >> src/d0/$f; done; "
          "git status --porcelain | wc -l")
_, p = timed([cli, "vm", "exec", "wsbench", "--cwd", "/", "--", "sh", "-c", script])
assert p.stdout.strip() == str(min(100, len(os.listdir(syn / "src" / "d0")))), p.stdout
te, _ = timed([cli, "vm", "workspace", "export", "wsbench", "--output", str(work / "change.patch")])
print(f"export, {p.stdout.strip()} files changed: {te:.2f} s (goal <= 2 s)   patch {du(work / 'change.patch')} B")

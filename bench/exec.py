#!/usr/bin/python3
"""exec over the guest agent vs over SSH, side by side in one run (as root,
in a private network namespace: `unshare --net bench/exec.py BUILD_DIR`):

  1. `banger vm exec VM -- true` vs `banger vm ssh VM -- true` (OpenSSH with
     the VM's pinned key), interleaved, BENCH_ROUNDS each (default 10);
  2. stdout throughput: `vm exec -- head -c N /dev/zero` vs `ssh VM head -c N
     /dev/zero`, N = BENCH_BYTES (default 256 MiB), read by this process;
  3. guest memory: the agent's RSS idle and each idle session's supervisor
     (BENCH_SESSIONS of them, default 5), and `vm session start` latency.

Needs the Debian image tar in the content cache (BANGER_CACHE_DIR, e.g.
after `banger image build --minimal`) and the cloud kernel .deb in
/var/cache/banger-test."""
import os
import statistics
import subprocess
import time

from benchenv import build, cli, deb, setup  # noqa: E402,F401

rounds = max(1, int(os.environ.get("BENCH_ROUNDS", "10")))
nbytes = int(os.environ.get("BENCH_BYTES", str(256 << 20)))
import banger  # noqa: E402

work, run_dir, env = setup("exec", 2, 1024, "2G", remove_vms=("bench",))
with banger.open(env["BANGER_URI"], autostart=True) as ctx:
    ctx.call("image.build", {"minimal": True, "name": "debian-bookworm"})
    ctx.call("kernel.import", {"name": "debian-cloud", "deb": str(deb)})
    ctx.call("vm.create", {"name": "bench"})


def timed(argv):
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True)
    assert p.returncode == 0, p.stderr
    return time.perf_counter() - t0, len(p.stdout)


agent, ssh = [], []
timed([cli, "vm", "exec", "bench", "--", "true"])  # warm-up: the daemon's link, the guest's page cache
timed([cli, "vm", "ssh", "bench", "--", "true"])
for _ in range(rounds):
    agent.append(timed([cli, "vm", "exec", "bench", "--", "true"])[0])
    ssh.append(timed([cli, "vm", "ssh", "bench", "--", "true"])[0])
a, s = statistics.median(agent), statistics.median(ssh)
print(f"exec true (median of {rounds}):  agent {a * 1000:8.1f} ms   ssh {s * 1000:8.1f} ms   ratio {a / s:.3f}"
      "   (goal <= 50 ms and <= 0.05x)")

ta, na = timed([cli, "vm", "exec", "bench", "--", "head", "-c", str(nbytes), "/dev/zero"])
ts, ns = timed([cli, "vm", "ssh", "bench", "--", "head", "-c", str(nbytes), "/dev/zero"])
assert na == nbytes and ns == nbytes, (na, ns)
mb = nbytes / 1e6
print(f"stdout {mb:.0f} MB:            agent {mb / ta:8.1f} MB/s  ssh {mb / ts:8.1f} MB/s  ratio {ts / ta:.2f}x"
      "   (goal >= 1x)")

# guest memory: the agent idle, and what each idle session adds (its
# supervisor; the command's own memory is the user's)
RSS = ("for p in $(pidof banger-agent); do "
       "printf '%s ' \"$(tr '\\0' ' ' < /proc/$p/cmdline)\"; awk '/VmRSS/ {print $2}' /proc/$p/status; done")


def agent_rss():
    out = subprocess.run([cli, "vm", "exec", "bench", "--", "sh", "-c", RSS], capture_output=True, text=True).stdout
    main, sup = 0, []
    for line in out.splitlines():
        cmd, kib = line.rsplit(" ", 1)
        if " session " in f" {cmd} ":
            sup.append(int(kib))
        else:
            main = max(main, int(kib))
    return main, sup


nsess = int(os.environ.get("BENCH_SESSIONS", "5"))
idle, _ = agent_rss()
starts = []
for i in range(nsess):
    t0 = time.perf_counter()
    subprocess.run([cli, "vm", "session", "start", "bench", "--name", f"idle{i}", "--", "sleep", "100000"],
                   capture_output=True, check=True)
    starts.append(time.perf_counter() - t0)
_, sups = agent_rss()
print(f"guest memory:                agent idle {idle:6d} KiB (goal <= 2048)   per idle session "
      f"{statistics.mean(sups) if sups else 0:6.0f} KiB over {len(sups)} (goal <= 1024)")
print(f"session start (median of {nsess}): {statistics.median(starts) * 1000:8.1f} ms")
for i in range(nsess):
    subprocess.run([cli, "vm", "session", "kill", "bench", f"idle{i}"], capture_output=True)

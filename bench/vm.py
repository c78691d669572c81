#!/usr/bin/python3
"""VM benchmarks, each beside its baseline in the same run (run as root, in
a private network namespace: `unshare --net bench/vm.py BUILD_DIR`):

  1. `banger vm run --rm -- true` wall time vs a bare qemu launch of the
     same kernel, initramfs, rootfs, overlay disk and tap with an ssh poll
     loop (what banger does, minus banger), interleaved in pairs after a
     warm-up pair (BENCH_ROUNDS, default 5);
  2. create-to-hypervisor-exec: from the client's vm.create to the VMM's
     exec (resolve, network from the warm tap pool, disk, spawn) for a
     256 MiB and a 4 GiB image;
  3. N concurrent `vm run --rm -- true` vs N x one.

Needs the Debian image tar in the content cache (BANGER_CACHE_DIR, e.g.
after `banger image build --minimal`) and the cloud kernel .deb in
/var/cache/banger-test."""
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from benchenv import build, cli, deb, root, setup  # noqa: E402,F401

concurrent = int(os.environ.get("BENCH_CONCURRENT", "10"))
import banger  # noqa: E402

work, run_dir, env = setup("vm", 1, 512, "1G")

# everything goes through one bangerd, as users' concurrent CLIs do
with banger.open(env["BANGER_URI"], autostart=True) as ctx:
    img = ctx.call("image.build", {"minimal": True, "name": "debian-bookworm"})
    kernel = ctx.call("kernel.import", {"name": "debian-cloud", "deb": str(deb)})
    tar = work / "small.tar"  # a stand-in sshd: vm.create's check passes, the guest never answers
    (work / "usr" / "sbin").mkdir(parents=True)
    (work / "usr" / "sbin" / "sshd").write_text("#!/bin/sh\n")
    subprocess.run(["tar", "-cf", str(tar), "-C", str(work), "usr/sbin/sshd"], check=True)
    ctx.call("image.import", {"name": "img-256m", "tars": [str(tar)], "size": "256M"})
    ctx.call("image.import", {"name": "img-4g", "tars": [str(tar)], "size": "4G"})


def timed(argv):
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return time.perf_counter() - t0


only_concurrent = os.environ.get("BENCH_ONLY_CONCURRENT") == "1"

# ---- 1. vm run --rm -- true vs bare qemu + ssh poll ----


def bare_qemu():
    """The same guest without banger: hand-made overlay, tap, qemu, ssh poll."""
    d = Path(tempfile.mkdtemp(dir=work))
    with banger.open(env["BANGER_URI"]) as ctx:  # borrow banger's disk with the key and agent in it
        vm = ctx.call("vm.create", {"name": "donor", "start": False})
        overlay = Path(env["BANGER_STATE_DIR"]) / "vms" / vm["id"] / "overlay.ext4"
        subprocess.run(["cp", "--sparse=always", str(overlay), str(d / "overlay.ext4")], check=True)
        ctx.call("vm.delete", {"name": "donor"})
    subprocess.run(["ip", "link", "add", "br-bare", "type", "bridge"], capture_output=True)
    subprocess.run(["ip", "addr", "add", "172.31.0.1/24", "dev", "br-bare"], capture_output=True)
    subprocess.run(["ip", "link", "set", "br-bare", "up"], check=True)
    subprocess.run(["ip", "tuntap", "add", "tap-bare", "mode", "tap"], check=True)
    subprocess.run(["ip", "link", "set", "tap-bare", "master", "br-bare", "up"], check=True)
    kdir = kernel["dir"]
    khz = next((int(float(line.split(":")[1]) * 1000) for line in open("/proc/cpuinfo") if line.startswith("cpu MHz")), 0)
    t0 = time.perf_counter()
    q = subprocess.Popen(["qemu-system-x86_64", "-M", "microvm", "-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", "512",
                          "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
                          "-kernel", f"{kdir}/vmlinuz", "-initrd", f"{kdir}/initrd.img",
                          "-append", f"console=ttyS0 panic=-1 tsc_early_khz={khz} banger.root=/dev/vda "
                                     "banger.overlay=/dev/vdb banger.ip=172.31.0.2/24,172.31.0.1,1.1.1.1",
                          "-serial", f"file:{d}/console.log",
                          "-drive", f"id=r,file={img['rootfs']},format=raw,if=none,readonly=on",
                          "-device", "virtio-blk-device,drive=r",
                          "-drive", f"id=o,file={d}/overlay.ext4,format=raw,if=none",
                          "-device", "virtio-blk-device,drive=o",
                          "-netdev", "tap,id=n,ifname=tap-bare,script=no,downscript=no",
                          "-device", "virtio-net-device,netdev=n"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    key = Path(env["BANGER_CONFIG_DIR"]) / "ssh" / "id_ed25519"
    while subprocess.run(["ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                          "-o", "ConnectTimeout=2", "-o", "LogLevel=ERROR", "root@172.31.0.2", "true"],
                         capture_output=True).returncode != 0:
        time.sleep(0.25)
    elapsed = time.perf_counter() - t0
    q.kill()
    q.wait()
    subprocess.run(["ip", "link", "del", "tap-bare"])
    return elapsed


# Interleaved, after the setup's writes reached the disk: neither side pays
# for the other's page-cache writeback or warms the cache for the other.
# A first pair warms the caches and is not counted; then BENCH_ROUNDS pairs,
# each with the CPU time this (itself virtual) machine's host stole meanwhile:
# a sample with seconds of steal was slowed by something outside the bench.
subprocess.run(["sync"], check=True)


def steal_s():
    with open("/proc/stat") as f:
        return int(f.readline().split()[8]) / os.sysconf("SC_CLK_TCK")


def stolen(fn):
    s0 = steal_s()
    t = fn()
    return t, steal_s() - s0


t_banger, t_bare, steal = [], [], []
rounds = 1 if only_concurrent else max(1, int(os.environ.get("BENCH_ROUNDS", "5")))
for i in range(rounds + (0 if only_concurrent else 1)):
    b, sb = stolen(lambda: timed([cli, "vm", "run", "--rm", "--", "true"]))
    q, sq = stolen(bare_qemu) if not only_concurrent else (float("nan"), 0.0)
    if i or only_concurrent:
        t_banger.append(b)
        t_bare.append(q)
        steal.append(sb + sq)

# ---- 2. create-to-hypervisor-exec, per image size ----
# From the client's vm.create to the `vmm` event (the hypervisor process has
# exec'd), with a warm tap pool; then the call is cancelled (these images
# only pretend to have sshd) and the VM deleted.
pre = {}
for image in () if only_concurrent else ("img-256m", "img-4g"):
    samples, own = [], []
    for i in range(7):
        with banger.open(env["BANGER_URI"]) as ctx:
            events, seen = [], threading.Event()
            t0 = time.perf_counter()

            def on_event(e, events=events, seen=seen):
                e["at"] = time.perf_counter()
                events.append(e)
                if e["stage"] == "vmm":
                    seen.set()
            c = ctx.start("vm.create", {"name": f"pre-{i}", "image": image, "kernel": "debian-cloud"}, on_event)
            assert seen.wait(120), events
            c.cancel()
            try:
                c.result(600)
            except banger.Error:
                pass
            vmm = next(e for e in events if e["stage"] == "vmm")
            samples.append(vmm["at"] - t0)
            own.append(sum(e.get("seconds", 0) for e in events if e["stage"] in ("resolve", "network", "disk")))
            try:  # a cancel before the VMM was recorded already removed it
                ctx.call("vm.delete", {"name": f"pre-{i}"})
            except banger.NotFound:
                pass
    pre[image] = (samples, own)

# ---- 3. N concurrent runs ----
results = []
def one():
    p = subprocess.run([cli, "vm", "run", "--rm", "--", "true"], capture_output=True, text=True)
    results.append(p.returncode)
    if p.returncode:
        print("failed run:", p.stderr.strip()[-300:])
threads = [threading.Thread(target=one) for _ in range(concurrent)]
t0 = time.perf_counter()
for t in threads:
    t.start()
for t in threads:
    t.join()
t_conc = time.perf_counter() - t0

med = statistics.median
print(f"{'measure':52} {'median s':>9}")
samples = lambda ts: "  (" + " ".join(f"{t:.2f}" for t in ts) + ")"
print(f"{'banger vm run --rm -- true':52} {med(t_banger):9.2f}" + samples(t_banger))
print(f"{'bare qemu + ssh poll (same kernel/rootfs/tap)':52} {med(t_bare):9.2f}" + samples(t_bare))
print(f"{'ratio banger / bare':52} {med(t_banger) / med(t_bare):9.2f}"
      f"  (per pair: {' '.join(f'{b / q:.2f}' for b, q in zip(t_banger, t_bare))})")
print(f"{'  cpu steal during each pair (s)':52} {'':9}  ({' '.join(f'{x:.1f}' for x in steal)})")
for image, (s, own) in pre.items():
    print(f"{'create-to-hypervisor-exec, ' + image:52} {med(s) * 1000:8.1f}ms")
    print(f"{'  of which resolve + network + disk, ' + image:52} {med(own) * 1000:8.1f}ms")
print(f"{str(concurrent) + ' concurrent vm run --rm -- true (all ok: ' + str(results.count(0) == concurrent) + ')':52} "
      f"{t_conc:9.2f}")
print(f"{str(concurrent) + ' x one run':52} {concurrent * med(t_banger):9.2f}")

#!/usr/bin/python3
"""create -> first exec output, banger's own init vs systemd, side by side in
one run (as root, in a private network namespace: `unshare --net
bench/init.py BUILD_DIR`). Each round creates, per image, a VM through one
bangerd, runs `echo ready` over the agent and deletes it, interleaved so a
loaded host slows every image alike (BENCH_ROUNDS, default 3):

  - busybox: the host's static busybox alone (no init, no sshd), init auto
    -> banger;
  - minbase: `image build --minimal --no-systemd` (debootstrap minbase with
    openssh-server, no systemd), init auto -> banger, which starts its sshd
    (BENCH_MINBASE=0 skips it: the first build needs the Debian mirror);
  - systemd: the Debian image as today (`image build --minimal`), init auto
    -> systemd. The baseline.

Goal: the no-systemd images' median <= 3 s under TCG, <= 0.2x the systemd
image's. Needs the cloud kernel .deb in /var/cache/banger-test and the Debian
mirror or its content cache (BANGER_CACHE_DIR)."""
import os
import statistics
import subprocess
import time

from benchenv import build, cli, deb, setup  # noqa: E402,F401

rounds = max(1, int(os.environ.get("BENCH_ROUNDS", "3")))
import banger  # noqa: E402

work, run_dir, env = setup("init", 2, 1024, "1G", remove_vms=("bench-busybox", "bench-minbase", "bench-systemd"))

images = {"busybox": "busybox", "systemd": "debian-bookworm"}
with banger.open(env["BANGER_URI"], autostart=True) as ctx:
    ctx.call("kernel.import", {"name": "debian-cloud", "deb": str(deb)})
    ctx.call("image.build", {"minimal": True, "name": "debian-bookworm"})
    if os.environ.get("BENCH_MINBASE", "1") != "0":
        ctx.call("image.build", {"minimal": True, "systemd": False, "name": "minbase"})
        images["minbase"] = "minbase"
    tree = work / "busybox"
    (tree / "bin").mkdir(parents=True)
    subprocess.run(["cp", "/bin/busybox", str(tree / "bin")], check=True)
    for applet in subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True).stdout.split():
        if applet != "busybox":
            os.symlink("busybox", tree / "bin" / applet)
    subprocess.run(["tar", "-cf", str(work / "busybox.tar"), "-C", str(tree), "."], check=True)
    ctx.call("image.import", {"name": "busybox", "tars": [str(work / "busybox.tar")]})


def one(kind):
    """Seconds from vm.create to the first exec's output, and the stages."""
    name = f"bench-{kind}"
    with banger.open(env["BANGER_URI"]) as ctx:
        events = []
        t0 = time.perf_counter()
        vm = ctx.call("vm.create", {"name": name, "image": images[kind]}, on_event=events.append)
        r = ctx.call("vm.exec", {"name": name, "argv": ["echo", "ready"]})
        took = time.perf_counter() - t0
        assert r["stdout"] == "ready\n", r
        ctx.call("vm.delete", {"name": name})
    stages = {e["stage"]: e["seconds"] for e in events if "seconds" in e}
    return took, vm["init"], stages


times = {k: [] for k in images}
inits, last = {}, {}
for _ in range(rounds):
    for kind in images:
        took, inits[kind], last[kind] = one(kind)
        times[kind].append(took)

print(f"create -> first exec output, median of {rounds} (TCG, 2 vcpu, 1024 MiB)")
base = statistics.median(times["systemd"])
for kind in images:
    m = statistics.median(times[kind])
    samples = " ".join(f"{t:.1f}" for t in times[kind])
    stages = " ".join(f"{s}={v:.1f}" for s, v in last[kind].items())
    print(f"  {kind:8} init={inits[kind]:8} {m:6.2f} s  ratio {m / base:.2f}  ({samples})  last: {stages}")
print("  goal: no-systemd <= 3 s and <= 0.2x systemd")

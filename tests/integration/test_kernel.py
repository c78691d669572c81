"""lib/kernel end to end: import Debian's real cloud kernel package, then
boot it under QEMU (microvm, TCG) with the generated initramfs, into an ext4
root directly and under an overlay.

Needs qemu-system-x86, busybox-static and e2fsprogs, and apt access to
Debian's mirror the first time (the .debs are cached in $BANGER_TEST_CACHE,
default /var/cache/banger-test). Driven through tests/unit/kernel/kernel-tool.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUILD, child_env

KERNEL_TOOL = BUILD / "tests" / "unit" / "kernel" / "kernel-tool"
CACHE = Path(os.environ.get("BANGER_TEST_CACHE", "/var/cache/banger-test"))
BOOT_TIMEOUT = 120
QEMU = shutil.which("qemu-system-x86_64")
MKFS = shutil.which("mkfs.ext4") or "/sbin/mkfs.ext4"
DEBUGFS = shutil.which("debugfs") or "/sbin/debugfs"
BUSYBOX = "/bin/busybox"

pytestmark = [
    pytest.mark.skipif(not KERNEL_TOOL.exists(), reason=f"{KERNEL_TOOL} is not built"),
    pytest.mark.skipif(QEMU is None, reason="needs qemu-system-x86_64 (apt-get install qemu-system-x86)"),
    pytest.mark.skipif(not os.path.exists(MKFS), reason="needs mkfs.ext4 (apt-get install e2fsprogs)"),
]


def tool(*args, timeout=300):
    """kernel-tool, with leak checking when the build is sanitized."""
    return subprocess.run([str(KERNEL_TOOL), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**child_env(), "BANGER_BUSYBOX": BUSYBOX})


def cached_debs():
    return sorted(CACHE.glob("linux-image-6.1.0-*-cloud-amd64_*.deb"))


@pytest.fixture(scope="session")
def kernel_debs():
    """(image .deb, metapackage .deb), downloaded once with apt-get."""
    if not os.path.exists(BUSYBOX):  # kernel-tool itself refuses a dynamic one
        pytest.fail("needs a static /bin/busybox (apt-get install busybox-static)")
    CACHE.mkdir(parents=True, exist_ok=True)
    if not cached_debs() or not list(CACHE.glob("linux-image-cloud-amd64_*.deb")):
        deps = subprocess.run(["apt-cache", "depends", "linux-image-cloud-amd64"], capture_output=True,
                              text=True)
        image = re.findall(r"Depends:\s*(linux-image-6\.1\.0-\S+-cloud-amd64)", deps.stdout)
        if deps.returncode != 0 or not image:
            pytest.fail(f"cannot resolve linux-image-cloud-amd64 with apt-cache: {deps.stderr.strip()}")
        got = subprocess.run(["apt-get", "download", "linux-image-cloud-amd64", image[0]], cwd=CACHE,
                             capture_output=True, text=True, timeout=600)
        if got.returncode != 0:
            pytest.fail(f"apt-get download failed (no mirror?): {got.stderr.strip()[-300:]}")
    images = cached_debs()
    metas = sorted(CACHE.glob("linux-image-cloud-amd64_*.deb"))
    assert images and metas, f"no kernel packages in {CACHE}"
    return images[-1], metas[-1]


@pytest.fixture(scope="session")
def kernel(kernel_debs, tmp_path_factory):
    """The imported kernel directory and its manifest."""
    deb = kernel_debs[0]
    dest = tmp_path_factory.mktemp("kernel") / "k"
    started = time.monotonic()
    r = tool("import-deb", deb, dest)
    assert r.returncode == 0, r.stderr
    print(f"\nimport of {deb.name}: {time.monotonic() - started:.1f} s")
    return dest, json.loads(r.stdout)


@pytest.fixture(scope="session")
def base_rootfs(tmp_path_factory):
    """A small ext4 root: static busybox and its applets, the usual dirs."""
    top = tmp_path_factory.mktemp("rootfs")
    tree = top / "tree"
    for d in ("bin", "sbin", "dev", "proc", "sys", "run", "tmp", "etc"):
        (tree / d).mkdir(parents=True)
    shutil.copy(BUSYBOX, tree / "bin" / "busybox")
    for applet in ("sh", "cat", "echo", "ls", "mkdir", "mount", "poweroff", "sync", "ip", "grep"):
        (tree / "bin" / applet).symlink_to("busybox")
    (tree / "etc" / "hostname").write_text("banger-test\n")
    # the root filesystem comes from banger's own ext4 writer, fed a tar of the tree
    tar = top / "tree.tar"
    subprocess.run(["tar", "--numeric-owner", "-C", str(tree), "-cf", str(tar), "."], check=True)
    image = top / "root.ext4"
    subprocess.run([str(BUILD / "tests" / "unit" / "fs" / "ext4-tool"), "build", str(image), "auto", str(tar)],
                   check=True, capture_output=True)
    return image


def host_tsc_khz():
    """The host TSC rate (TCG's guest TSC runs at it). Telling the kernel
    skips its PIT calibration, which fails on a loaded host and then hangs
    the boot: microvm's ACPI setup delivers no PIT interrupt to calibrate
    the delay loop with."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    mhz = re.search(r"^cpu MHz\s*:\s*([0-9.]+)", info, re.M)
    if not mhz or "constant_tsc" not in info:
        return None
    return int(float(mhz.group(1)) * 1000)


def boot(kdir, append, disks, extra=()):
    """Boots kdir's vmlinuz + initrd.img; returns (rc, console, seconds)."""
    khz = host_tsc_khz()
    cmdline = "console=ttyS0 panic=-1 " + (f"tsc_early_khz={khz} " if khz else "") + append
    argv = [QEMU, "-M", "microvm", "-accel", "tcg", "-smp", "2", "-m", "1024", "-nographic", "-no-reboot",
            "-kernel", str(kdir / "vmlinuz"), "-initrd", str(kdir / "initrd.img"), "-append", cmdline]
    for i, disk in enumerate(disks):
        argv += ["-drive", f"id=d{i},file={disk},format=raw,if=none",
                 "-device", f"virtio-blk-device,drive=d{i}"]
    argv += list(extra)
    started = time.monotonic()
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=BOOT_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        tail = (e.stdout or b"").decode(errors="replace")[-3000:]
        pytest.fail(f"guest did not power off within {BOOT_TIMEOUT} s; console tail:\n{tail}")
    out = (r.stdout + r.stderr).decode(errors="replace").replace("\r", "")
    return r.returncode, out, time.monotonic() - started


def uptime_after(marker, console):
    """The guest's /proc/uptime printed right after marker."""
    m = re.search(re.escape(marker) + r"\n([0-9.]+) [0-9.]+", console)
    return float(m.group(1)) if m else None


def assert_markers(console):
    pos = -1
    for marker in ("banger-init: modules loaded", "banger-init: root mounted", "banger-init: switching root"):
        i = console.find(marker, pos + 1)
        assert i > pos, f"missing or out of order: {marker!r}\n{console[-4000:]}"
        pos = i
    assert "banger-init: FATAL" not in console, console[-4000:]
    assert "banger-init: warning" not in console, console[-4000:]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def test_import_deb(kernel, kernel_debs):
    kdir, manifest = kernel
    deb = kernel_debs[0]
    kver = re.match(r"linux-image-(.+)_[^_]+_amd64\.deb", deb.name).group(1)
    assert manifest["kernel_version"] == kver
    assert manifest["source"] == f"deb:{deb.name}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", manifest["created_at"])
    assert json.loads((kdir / "manifest.json").read_text()) == manifest
    for key, name in (("vmlinux", "vmlinux"), ("vmlinuz", "vmlinuz"), ("initrd", "initrd.img")):
        assert manifest["sha256"][key] == sha256(kdir / name)
    vmlinux = (kdir / "vmlinux").read_bytes()
    assert vmlinux[:4] == b"\x7fELF" and vmlinux[4] == 2  # ELF64
    assert (kdir / "vmlinuz").read_bytes()[0x202:0x206] == b"HdrS"

    # Modules: the ones the initramfs needs, each after its dependencies.
    mods = manifest["modules"]
    for needed in ("virtio_ring", "virtio", "virtio_mmio", "virtio_pci", "virtio_blk", "virtio_net",
                   "vsock", "vmw_vsock_virtio_transport", "virtio_console", "overlay"):
        assert needed in mods
    moddir = kdir / "modules" / kver
    deps = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        name = lambda p: Path(p).name.split(".ko")[0].replace("-", "_")  # noqa: E731
        deps[name(path)] = [name(p) for p in rest.split()]
    for i, m in enumerate(mods):
        for d in deps[m]:
            assert d in mods[:i], f"{m} loads before its dependency {d}"
    assert mods.index("virtio_ring") < mods.index("virtio")
    # The whole tree is kept for the guest, plain .ko.
    assert len(list(moddir.rglob("*.ko"))) > 500
    assert not list(moddir.rglob("*.ko.*"))

    # The initramfs: an uncompressed newc cpio (the guest boots sooner).
    head = (kdir / "initrd.img").read_bytes()[:6]
    assert head == b"070701"


def test_import_metapackage_refused(kernel_debs, tmp_path):
    r = tool("import-deb", kernel_debs[1], tmp_path / "meta")
    assert r.returncode == 1
    assert "metapackage" in r.stderr
    assert not (tmp_path / "meta").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_import_dir_roundtrip(kernel, tmp_path):
    """A kernel directory imports again as a directory source."""
    kdir, manifest = kernel
    r = tool("import-dir", kdir, tmp_path / "again")
    assert r.returncode == 0, r.stderr
    again = json.loads(r.stdout)
    assert again["kernel_version"] == manifest["kernel_version"]
    assert again["modules"] == manifest["modules"]
    assert again["sha256"]["vmlinux"] == manifest["sha256"]["vmlinux"]


def test_boot(kernel, base_rootfs, tmp_path):
    kdir, _ = kernel
    root = tmp_path / "root.ext4"
    shutil.copy(base_rootfs, root)
    init = ("/bin/sh -c 'echo BANGER-MARKER-OK; cat /proc/uptime; ip addr show eth0; "
            "cat /etc/resolv.conf; poweroff -f'")
    rc, console, wall = boot(kdir, f'banger.root=/dev/vda banger.ip=10.0.2.15/24,10.0.2.2,10.0.2.3 '
                             f'banger.init="{init}"', [root],
                             ["-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0"])
    assert_markers(console)
    assert "BANGER-MARKER-OK" in console, console[-4000:]
    assert "inet 10.0.2.15/24" in console
    assert "nameserver 10.0.2.3" in console
    assert "reboot: Power down" in console
    assert rc == 0
    print(f"\nboot: kernel start to marker {uptime_after('BANGER-MARKER-OK', console)} s (guest uptime), "
          f"{wall:.1f} s wall including QEMU start and power-off")


def test_overlay_boot(kernel, base_rootfs, tmp_path):
    kdir, _ = kernel
    base = tmp_path / "base.ext4"
    shutil.copy(base_rootfs, base)
    overlay = tmp_path / "overlay.ext4"
    subprocess.run([MKFS, "-q", "-F", str(overlay), "64M"], check=True, capture_output=True)
    before = sha256(base)
    init = ("/bin/sh -c 'echo guest-data > /written-by-guest; echo more >> /etc/hostname; "
            "mkdir /new-dir; sync; cat /proc/mounts; echo BANGER-MARKER-OK; cat /proc/uptime; poweroff -f'")
    rc, console, wall = boot(kdir, f'banger.root=/dev/vda banger.overlay=/dev/vdb banger.init="{init}"',
                             [base, overlay])
    assert_markers(console)
    assert "BANGER-MARKER-OK" in console, console[-4000:]
    assert re.search(r"^overlay / overlay rw", console, re.M), console[-3000:]
    assert re.search(r"^/dev/vda /run/banger/lower ext4 ro", console, re.M)
    assert re.search(r"^/dev/vdb /run/banger/rw ext4 rw", console, re.M)
    assert rc == 0
    # The base image is untouched; the writes are in the overlay disk's upper dir.
    assert sha256(base) == before
    cat = subprocess.run([DEBUGFS, "-R", "cat /upper/written-by-guest", str(overlay)], capture_output=True,
                         text=True)
    assert cat.stdout == "guest-data\n"
    cat = subprocess.run([DEBUGFS, "-R", "cat /upper/etc/hostname", str(overlay)], capture_output=True, text=True)
    assert cat.stdout == "banger-test\nmore\n"
    ls = subprocess.run([DEBUGFS, "-R", "ls /upper", str(overlay)], capture_output=True, text=True)
    assert "new-dir" in ls.stdout
    print(f"\noverlay boot: kernel start to marker {uptime_after('BANGER-MARKER-OK', console)} s, "
          f"{wall:.1f} s wall")


def test_missing_root_is_fatal(kernel, base_rootfs, tmp_path):
    """No root disk: a clear FATAL line, then the VM powers off (no hang)."""
    kdir, _ = kernel
    rc, console, _ = boot(kdir, "banger.root=/dev/vdz", [])
    assert "banger-init: modules loaded" in console
    assert "banger-init: FATAL: root device /dev/vdz did not appear within 10 s" in console, console[-3000:]
    assert "banger-init: switching root" not in console
    assert rc == 0

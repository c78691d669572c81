"""What every VM bench sets up first: the build's CLI and Python binding,
a scratch state and config (qemu under TCG, the given VM defaults), a
short runtime dir for sockets, one bangerd for everything, lo up in the
bench's network namespace, and cleanup at exit even on failure."""
import atexit
import os
import subprocess
import sys
import tempfile
from pathlib import Path

root = Path(__file__).resolve().parents[1]
build = Path(sys.argv[1] if len(sys.argv) > 1 else root / "build").resolve()
cli = str(build / "tools" / "banger" / "banger")
sys.path.insert(0, str(root / "bindings" / "python"))
os.environ["BANGER_LIBRARY"] = str(build / "lib" / "libbanger.so.0")
# the cloud kernel .deb the tests download
deb = sorted(Path("/var/cache/banger-test").glob("linux-image-6.1.0-*-cloud-amd64_*.deb"))[-1]


def setup(tag, vcpu, memory_mib, disk_size, remove_vms=()):
    """Returns (work dir, runtime dir, env) after setting them up."""
    work = Path(tempfile.mkdtemp(prefix=f"banger-bench-{tag}-", dir="/var/tmp"))
    run_dir = Path(f"/tmp/bb{tag[0]}-{os.getpid()}")
    env = {"BANGER_CONFIG_DIR": str(work / "config"), "BANGER_STATE_DIR": str(work / "state"),
           "BANGER_RUNTIME_DIR": str(run_dir), "BANGER_URI": f"unix:{run_dir}/bangerd.sock",
           "BANGERD": str(build / "tools" / "bangerd" / "bangerd")}
    os.environ.update(env)
    (work / "config").mkdir()
    (work / "config" / "config.toml").write_text(
        f'vmm = "qemu"\nqemu_accel = "tcg"\n[vm_defaults]\nvcpu = {vcpu}\nmemory_mib = {memory_mib}\n'
        f'disk_size = "{disk_size}"\n')
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

    @atexit.register
    def cleanup():
        """The VMs, the daemon and its files go with the bench, even when it fails."""
        for name in remove_vms:
            subprocess.run([cli, "vm", "rm", name], capture_output=True)
        subprocess.run([cli, "daemon", "stop"], capture_output=True)
        subprocess.run(["rm", "-rf", str(work), str(run_dir)])

    return work, run_dir, env

"""What the benches over tests/integration's harnesses (campaign.py,
soak.py) set up first: the build's Python binding and the harness modules
on the path, lo up in the bench's network namespace, the cloud kernel
.deb, the shared content cache, a scratch directory, and an environment
for children without a sanitizer's preload."""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

root = Path(__file__).resolve().parents[1]


def prepare(build, tag):
    """Returns (deb, shared cache, work dir, child env) for a bench named tag."""
    sys.path.insert(0, str(root / "bindings" / "python"))
    sys.path.insert(0, str(root / "tests" / "integration"))
    os.environ["BANGER_LIBRARY"] = str(build / "lib" / "libbanger.so.0")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    deb = sorted(Path("/var/cache/banger-test").glob("linux-image-6.1.0-*-cloud-amd64_*.deb"))[-1]
    shared = os.environ.get("BANGER_CACHE_DIR", "/var/cache/banger-test/shared")
    work = Path(tempfile.mkdtemp(prefix=f"banger-bench-{tag}-", dir="/var/tmp"))
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)  # a sanitized build's preload is for this Python only, never qemu or tar
    return deb, shared, work, env

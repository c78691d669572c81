"""Builds tar layers with exact ownership, modes, links, devices and xattrs,
and reads images back through ext4-tool (libext2fs only)."""
import io
import json
import subprocess
import tarfile

from conftest import BUILD

EXT4_TOOL = BUILD / "tests" / "unit" / "fs" / "ext4-tool"


def fnv(data):
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def make_tar(path, entries, compress=None):
    """entries: dicts with name, and type (file|dir|symlink|hardlink|char|block|fifo), data, target,
    mode, uid, gid, mtime, major, minor, xattrs {key: bytes}."""
    mode = {"gz": "w:gz", None: "w"}[compress]
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            kind = e.get("type", "file")
            ti.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                       "hardlink": tarfile.LNKTYPE, "char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE,
                       "fifo": tarfile.FIFOTYPE}[kind]
            ti.mode = e.get("mode", 0o755 if kind == "dir" else 0o644)
            ti.uid, ti.gid = e.get("uid", 0), e.get("gid", 0)
            ti.mtime = e.get("mtime", 1700000000)
            ti.linkname = e.get("target", "")
            ti.devmajor, ti.devminor = e.get("major", 0), e.get("minor", 0)
            if e.get("xattrs"):
                ti.pax_headers = {"SCHILY.xattr." + k: v.decode("latin-1") for k, v in e["xattrs"].items()}
            data = e.get("data", b"")
            if kind == "file":
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.addfile(ti)
    return path


def unterminated(raw, keep=0):
    """raw (an uncompressed tar) cut right after its last entry's data, as a writer that is never
    closed leaves it (Go's tar.Writer without Close): no padding, no two zero blocks. keep: bytes of
    the padding to keep."""
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        last = tf.getmembers()[-1]
    assert last.size % 512, "the last entry needs padding"
    return raw[:last.offset_data + last.size + keep]


def dump(image):
    out = subprocess.run([str(EXT4_TOOL), "dump", str(image)], capture_output=True, text=True, check=True)
    return {o["path"]: o for o in map(json.loads, out.stdout.splitlines())}


def fsck(image):
    p = subprocess.run(["e2fsck", "-fn", str(image)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr

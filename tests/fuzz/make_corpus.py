#!/usr/bin/env python3
"""Writes the seed corpora of the newer fuzz targets into corpus/<name>/.

The generated files are checked in; run this again after changing it
(python3 tests/fuzz/make_corpus.py) and commit what changes. Only the
standard library: hostile tars are built by hand where tarfile refuses.
"""
import bz2
import gzip
import io
import json
import lzma
import os
import struct
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
DIGEST = "sha256:" + "ab" * 32


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- tar helpers ----

def tar(members, fmt=tarfile.PAX_FORMAT, end=True):
    """members: (TarInfo, bytes or None). end=False drops the two zero blocks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for info, data in members:
            info.mtime = 1700000000
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    if not end:
        raw = raw.rstrip(b"\0")
        raw += b"\0" * (-len(raw) % 512)
    return raw


def reg(name, data=b"hello\n", **kw):
    i = tarfile.TarInfo(name)
    i.size = len(data)
    for k, v in kw.items():
        setattr(i, k, v)
    return (i, data)


def node(name, kind, **kw):
    i = tarfile.TarInfo(name)
    i.type = kind
    for k, v in kw.items():
        setattr(i, k, v)
    return (i, None)


def raw_header(name, size_field, typeflag=b"0", linkname=b""):
    """A ustar header with a size field written verbatim (12 bytes)."""
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = size_field
    h[136:148] = b"14533322000\0"
    h[156:157] = typeflag
    h[157:157 + len(linkname)] = linkname
    h[257:265] = b"ustar\x0000"
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def tars():
    t = "tar_ext4"
    write(t, "plain.tar", tar([node("etc", tarfile.DIRTYPE), reg("etc/hostname", b"box\n"),
                               reg("usr/bin/tool", b"\x7fELF" + b"\0" * 60, mode=0o755),
                               node("tmp", tarfile.DIRTYPE, mode=0o1777)]))
    write(t, "traversal.tar", tar([reg("../x"), reg("a/../../y")]))
    write(t, "absolute.tar", tar([reg("/etc/passwd", b"root::0:0::/:/bin/sh\n")]))
    write(t, "symlink-then-file.tar", tar([node("lnk", tarfile.SYMTYPE, linkname="/etc"),
                                           reg("lnk/passwd", b"evil\n")]))
    write(t, "symlink-escape.tar", tar([node("d", tarfile.DIRTYPE), node("d/up", tarfile.SYMTYPE, linkname="../../.."),
                                        reg("d/up/x", b"out\n")]))
    write(t, "hardlink-outside.tar", tar([reg("a", b"data"), node("b", tarfile.LNKTYPE, linkname="../../etc/shadow"),
                                          node("c", tarfile.LNKTYPE, linkname="a")]))
    write(t, "hardlink-missing.tar", tar([node("b", tarfile.LNKTYPE, linkname="nowhere")]))
    # 8 GiB in octal, then base-256 (GNU) near 2^63
    write(t, "huge-octal.tar", raw_header(b"big", b"77777777777\0") + b"x" * 512 + b"\0" * 1024)
    write(t, "huge-base256.tar", raw_header(b"big", b"\x80" + b"\0\0\0" + b"\x7f" + b"\xff" * 7) + b"\0" * 1024)
    write(t, "negative-size.tar", raw_header(b"neg", b"\xff" * 12) + b"\0" * 1024)
    pax = tarfile.TarInfo("p" * 300)
    pax.size = 3
    pax.pax_headers = {"SCHILY.xattr.user.test": "v", "SCHILY.xattr.security.capability": "\x01\0\0\x02",
                       "path": "pax/" + "q" * 200, "size": "3"}
    write(t, "pax.tar", tar([(pax, b"abc")]))
    write(t, "pax-size-lie.tar", tar([(tarfile.TarInfo("x"), b"")], fmt=tarfile.PAX_FORMAT)[:512]
          + tar([reg("y", b"z" * 10)])[:-1024].replace(b"0000012", b"7777777", 1) + b"\0" * 1024)
    write(t, "gnu-longname.tar", tar([reg("l/" + "n" * 150 + "/f", b"long\n"),
                                      node("s", tarfile.SYMTYPE, linkname="t" * 120)], fmt=tarfile.GNU_FORMAT))
    write(t, "no-end-blocks.tar", tar([reg("a", b"1"), reg("b", b"22")], end=False))
    write(t, "cut-in-data.tar", tar([reg("a", b"x" * 2000)])[:1024])
    write(t, "whiteouts.tar", tar([node("d", tarfile.DIRTYPE), reg("d/.wh..wh..opq", b""), reg(".wh.gone", b""),
                                   reg(".wh..", b""), reg("d/.wh.", b"")]))
    write(t, "devices.tar", tar([node("dev", tarfile.DIRTYPE), node("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3),
                                 node("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0),
                                 node("fifo", tarfile.FIFOTYPE), reg(".dockerenv", b"")]))
    write(t, "replace.tar", tar([reg("a/b", b"1"), reg("a", b"file now"), node("a", tarfile.DIRTYPE),
                                 reg("a/c", b"22"), reg("a/c", b"333")]))
    write(t, "dot-names.tar", tar([reg("./x", b"1"), reg(".//y", b"2"), reg("a//b", b"3"), reg("a/./c", b"4")]))
    write(t, "gzip.tar.gz", gzip.compress(tar([reg("z", b"gz")]), mtime=0))


# ---- .deb ----

def ar(members):
    out = b"!<arch>\n"
    for name, data in members:
        hdr = b"%-16s%-12d%-6d%-6d%-8s%-10d`\n" % (name, 1700000000, 0, 0, b"100644", len(data))
        out += hdr + data + (b"\n" if len(data) % 2 else b"")
    return out


ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 57


def debs():
    t = "deb"
    ctl = tar([reg("./control", b"Package: linux-image-6.1.0-fuzz\nVersion: 1\n")])
    def deb(data_members, name=b"data.tar", compress=None):
        data = tar(data_members)
        if compress == "xz":
            data = lzma.compress(data)
        return ar([(b"debian-binary", b"2.0\n"), (b"control.tar", ctl), (name, data)])
    kv = "6.1.0-fuzz"
    good = [node("./boot", tarfile.DIRTYPE), reg("./boot/vmlinuz-" + kv, ELF), reg("./boot/config-" + kv, b"CONFIG_X=y\n"),
            node("./lib/modules/%s/kernel" % kv, tarfile.DIRTYPE),
            reg("./lib/modules/%s/kernel/virtio.ko" % kv, ELF + b"\0.modinfo\0name=virtio\0"),
            reg("./lib/modules/%s/modules.dep" % kv, b"kernel/virtio.ko:\n"),
            node("./lib/modules/%s/build" % kv, tarfile.SYMTYPE, linkname="/usr/src/linux-headers")]
    write(t, "kernel.deb", deb(good))
    write(t, "kernel-xz.deb", deb(good, b"data.tar.xz", "xz"))
    write(t, "traversal.deb", deb([reg("./boot/../../etc/passwd", b"x")]))
    write(t, "absolute.deb", deb([reg("/boot/vmlinuz-" + kv, ELF)]))
    write(t, "symlink-escape.deb", deb([node("./lib/modules/%s/kernel" % kv, tarfile.SYMTYPE, linkname="../../../../etc"),
                                        reg("./boot/vmlinuz-" + kv, ELF)]))
    write(t, "hardlink-outside.deb", deb([reg("./boot/vmlinuz-" + kv, ELF),
                                          node("./lib/modules/%s/x.ko" % kv, tarfile.LNKTYPE, linkname="etc/shadow")]))
    write(t, "two-kernels.deb", deb([reg("./boot/vmlinuz-6.1", ELF), reg("./boot/vmlinuz-6.2", ELF)]))
    write(t, "bad-version.deb", deb([reg("./boot/vmlinuz-../x", ELF), reg("./boot/vmlinuz-a b", ELF)]))
    write(t, "no-data.deb", ar([(b"debian-binary", b"2.0\n"), (b"control.tar", ctl)]))
    write(t, "truncated.deb", deb(good)[:700])
    write(t, "not-ar.deb", b"!<arch>\nthis is not an ar member header at all\n")


# ---- bzImage ----

def bzimage(payload, version=0x20f, setup_sects=1, recorded=None):
    setup = bytearray((setup_sects + 1) * 512)
    setup[0x1f1] = setup_sects
    setup[0x1fe:0x200] = b"\x55\xaa"
    setup[0x202:0x206] = b"HdrS"
    setup[0x206:0x208] = struct.pack("<H", version)
    setup[0x248:0x24c] = struct.pack("<I", 0)
    setup[0x24c:0x250] = struct.pack("<I", len(payload))
    return bytes(setup) + payload


def bzimages():
    t = "bzimage"
    vmlinux = ELF + b"kernel text " * 20
    size = struct.pack("<I", len(vmlinux))
    write(t, "vmlinux.elf", vmlinux)
    write(t, "gzip.bzimage", bzimage(gzip.compress(vmlinux, mtime=0)))
    write(t, "xz.bzimage", bzimage(lzma.compress(vmlinux, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32) + size))
    write(t, "lzma.bzimage", bzimage(lzma.compress(vmlinux, format=lzma.FORMAT_ALONE) + size))
    write(t, "bzip2.bzimage", bzimage(bz2.compress(vmlinux) + size))
    write(t, "wrong-size.bzimage", bzimage(bz2.compress(vmlinux) + struct.pack("<I", 7)))
    write(t, "not-elf.bzimage", bzimage(gzip.compress(b"MZ not an elf at all", mtime=0)))
    write(t, "old-protocol.bzimage", bzimage(gzip.compress(vmlinux, mtime=0), version=0x202))
    write(t, "setup-zero.bzimage", bzimage(gzip.compress(vmlinux, mtime=0), setup_sects=0)[:3000])
    write(t, "lzo.bzimage", bzimage(b"\x89LZO\0\r\n\x1a\n" + b"\0" * 32))
    write(t, "truncated.bzimage", bzimage(gzip.compress(vmlinux, mtime=0))[:1100])
    write(t, "module.ko.xz", lzma.compress(ELF + b"\0.modinfo\0name=x\0", format=lzma.FORMAT_XZ))


# ---- OCI ----

def oci():
    for i, ref in enumerate(["debian", "debian:bookworm", "ghcr.io/a/b:1", "localhost:5000/x:1",
                             "127.0.0.1:5000/x@" + DIGEST, "[::1]:5000/ns/img:v1.2-rc_3", "docker.io/library/alpine",
                             "index.docker.io/user/app:latest@" + DIGEST, "Registry.Example.COM/a__b/c--d.e:TAG",
                             "x@sha512:" + "0" * 128, "a/b/c/d/e/f:1", "UPPER/case", "a:", "@", "host:99999/x"]):
        write("oci_ref", "ref%02d" % i, ref)
    d = lambda mt, size=1234, **kw: dict(mediaType=mt, digest=DIGEST, size=size, **kw)
    idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        d("application/vnd.oci.image.manifest.v1+json", platform={"os": "linux", "architecture": "arm64", "variant": "v8"}),
        d("application/vnd.oci.image.manifest.v1+json", platform={"os": "linux", "architecture": "amd64"}),
        d("application/vnd.oci.image.manifest.v1+json", platform={"os": "unknown", "architecture": "unknown"})]}
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": d("application/vnd.oci.image.config.v1+json"),
           "layers": [d("application/vnd.oci.image.layer.v1.tar+gzip"), d("application/vnd.oci.image.layer.v1.tar+zstd"),
                      d("application/vnd.oci.image.layer.v1.tar")]}
    dman = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": d("application/vnd.docker.container.image.v1+json"),
            "layers": [d("application/vnd.docker.image.rootfs.diff.tar.gzip")]}
    dlist = dict(idx, mediaType="application/vnd.docker.distribution.manifest.list.v2+json")
    seeds = {
        "oci-index": (0, idx), "oci-manifest": (0, man), "docker-manifest": (0, dman), "docker-list": (0, dlist),
        "index-by-content-type": (1, {k: v for k, v in idx.items() if k != "mediaType"}),
        "manifest-by-shape": (0, {k: v for k, v in man.items() if k != "mediaType"}),
        "schema1": (5, {"schemaVersion": 1, "name": "x", "fsLayers": []}),
        "no-amd64": (0, dict(idx, manifests=idx["manifests"][:1])),
        "bad-digest": (0, dict(man, layers=[dict(d("application/vnd.oci.image.layer.v1.tar"), digest="sha256:XYZ")])),
        "sha512": (0, dict(man, config=dict(d("application/vnd.oci.image.config.v1+json"), digest="sha512:00"))),
        "foreign-layer": (0, dict(man, layers=[d("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")])),
        "huge-config": (0, dict(man, config=d("application/vnd.oci.image.config.v1+json", size=1 << 40))),
        "negative-size": (0, dict(man, config=d("application/vnd.oci.image.config.v1+json", size=-1))),
        "too-many-layers": (0, dict(man, layers=[0] * 1001)),
        "nested-index": (0, dict(idx, manifests=[d("application/vnd.oci.image.index.v1+json",
                                                    platform={"os": "linux", "architecture": "amd64"})])),
        "wrong-schema": (2, dict(man, schemaVersion=3)),
    }
    for name, (ct, doc) in seeds.items():
        write("oci_manifest", name, bytes([ct]) + json.dumps(doc).encode())
    write("oci_manifest", "deep", b"\0" + b"[" * 5000)
    write("oci_manifest", "not-object", b"\x02[1,2,3]")


# ---- guest agent ----

def frame(kind, stream, payload):
    return struct.pack(">BBHII", 0xB7, kind, 0, stream, len(payload)) + payload


def agent():
    t = "agent_guest"
    write(t, "lines", b'{"id":1,"op":"poweroff"}\n{"id":2,"op":"nope\\u0000x"}\n\n  \t\r\n{"id":null}\n'
                      b'{"id":1e3,"op":"reboot"}\n{"op":"set_clock","ms":1700000000000,"id":-5}\n[1]\n{"id":"\\ud800"}\n')
    write(t, "escapes", b'{"op":"\\u00e9\\ud83d\\ude00\\udc00\xff\xfe","id":9223372036854775807,"x":[{"a":[]}]}\n')
    write(t, "deep", b'{"id":3,"x":' + b"[" * 40 + b"]" * 40 + b"}\n")
    enter = b'{"id":1,"op":"frames"}\n'
    execp = json.dumps({"argv": ["sh", "-c", "echo hi"], "env": ["A=1"], "cwd": "/", "user": "root",
                        "tty": True, "rows": 40, "cols": 100}).encode()
    write(t, "frames", enter + frame(1, 0, b'{"id":2,"op":"frames"}') + frame(1, 0, b'{"id":3,"op":"poweroff"}')
          + frame(3, 5, execp) + frame(5, 5, b"input") + frame(10, 5, b"\0\0\1\0") + frame(11, 5, b"\0\0\0\x0f")
          + frame(12, 5, b"\0\x18\0\x50") + frame(99, 7, b""))
    write(t, "exec-bad", enter + frame(3, 1, b'{"argv":[]}') + frame(3, 2, b'{"argv":["a\\u0000b"]}')
          + frame(3, 3, b'{"argv":["x"],"env":["=bad","NOEQ"]}') + frame(3, 4, b'{"argv":["x"],"rows":0,"cols":70000}')
          + frame(3, 0, b'{"argv":["x"]}') + frame(3, 6, b'{"argv":["x"]} trailing'))
    write(t, "back-to-lines", enter + frame(1, 0, b'{"op":"set_clock"}') + b'{"id":4,"op":"poweroff"}\n')
    write(t, "too-big", enter + struct.pack(">BBHII", 0xB7, 1, 0, 0, 70000) + b"{}\n")


if __name__ == "__main__":
    tars()
    debs()
    bzimages()
    oci()
    agent()

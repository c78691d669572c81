"""Images built by banger's own ext4 writer, over both transports: every
file property kept, OCI whiteouts, hostile tars rejected with nothing left
behind, atomic publishing."""
import gzip
import os
import signal
import subprocess
import tarfile
import time

import pytest

import banger
from conftest import BANGERD, Daemon, child_env, run_cli
from layers import EXT4_TOOL, dump, fnv, fsck, make_tar, unterminated

CAP = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_raw+ep, as ping has


def images_on_disk(env):
    d = env["BANGER_STATE_DIR"] / "images"
    return sorted(os.listdir(d)) if d.exists() else []


def test_every_property_survives(ctx, env, tmp_path):
    big = os.urandom(300_000)
    tar = make_tar(tmp_path / "rich.tar.gz", [
        {"name": "./", "type": "dir", "mode": 0o755},
        {"name": "etc", "type": "dir"},
        {"name": "etc/passwd", "data": b"root:x:0:0::/root:/bin/sh\n"},
        {"name": "usr/bin/ping", "data": b"\x7fELF-ping", "mode": 0o4755, "xattrs": {"security.capability": CAP}},
        {"name": "usr/bin/newgrp", "data": b"sg", "mode": 0o2755, "gid": 42},
        {"name": "home/alice/notes", "data": big, "uid": 123456, "gid": 654321, "mode": 0o600,
         "mtime": 1600000000, "xattrs": {"user.banger": b"yes"}},
        {"name": "tmp", "type": "dir", "mode": 0o1777},
        {"name": "etc/localtime", "type": "symlink", "target": "/usr/share/zoneinfo/UTC"},
        {"name": "usr/lib/libx.so", "type": "symlink", "target": "libx.so.1"},
        {"name": "usr/lib/libx.so.1", "data": b"lib"},
        {"name": "usr/bin/ping6", "type": "hardlink", "target": "usr/bin/ping"},
        {"name": "dev/null", "type": "char", "major": 1, "minor": 3, "mode": 0o666},
        {"name": "dev/sda", "type": "block", "major": 8, "minor": 0, "mode": 0o660, "gid": 6},
        {"name": "dev/nvme", "type": "block", "major": 259, "minor": 70000},
        {"name": "run/initctl", "type": "fifo", "mode": 0o600},
        {"name": "sparse", "data": b"\0" * 1_000_000 + b"end"},
        {"name": ".dockerenv", "data": b""},
        {"name": "run/.containerenv", "data": b""},
    ], compress="gz")
    img = ctx.call("image.import", {"name": "rich", "tars": [str(tar)]})
    assert img["name"] == "rich" and img["managed"] is True
    assert img["rootfs_size"] >= 64 << 20
    fsck(img["rootfs"])
    t = dump(img["rootfs"])
    assert t["/etc/passwd"]["hash"] == fnv(b"root:x:0:0::/root:/bin/sh\n")
    ping = t["/usr/bin/ping"]
    assert ping["mode"] == 0o4755 and ping["nlink"] == 2 and ping["xattrs"]["security.capability"] == CAP.hex()
    assert t["/usr/bin/ping6"]["ino"] == ping["ino"]
    assert t["/usr/bin/newgrp"]["mode"] == 0o2755 and t["/usr/bin/newgrp"]["gid"] == 42
    notes = t["/home/alice/notes"]
    assert (notes["uid"], notes["gid"], notes["mode"]) == (123456, 654321, 0o600)
    assert notes["hash"] == fnv(big) and notes["size"] == len(big) and notes["mtime"] == 1600000000
    assert notes["xattrs"]["user.banger"] == b"yes".hex()
    assert t["/tmp"]["mode"] == 0o1777
    assert t["/etc/localtime"]["target"] == "/usr/share/zoneinfo/UTC"
    assert t["/usr/lib/libx.so"]["target"] == "libx.so.1"
    assert t["/dev/null"]["type"] == "char" and t["/dev/null"]["rdev"] == [1, 3]
    assert t["/dev/sda"]["rdev"] == [8, 0] and t["/dev/sda"]["gid"] == 6
    assert t["/dev/nvme"]["rdev"] == [259, 70000]
    assert t["/run/initctl"]["type"] == "fifo"
    assert t["/sparse"]["hash"] == fnv(b"\0" * 1_000_000 + b"end")
    assert "/.dockerenv" not in t and "/run/.containerenv" not in t
    # implicit parents ("usr/bin" has no entry of its own) exist as root-owned 0755 dirs
    assert t["/usr/bin"]["type"] == "dir" and t["/usr/bin"]["mode"] == 0o755
    # listing and show agree with the import
    names = [i["name"] for i in ctx.call("image.list")["images"]]
    assert names == ["rich"]
    assert ctx.call("image.show", {"name": img["id"]})["rootfs"] == img["rootfs"]


def test_layers_whiteouts_and_opaque_dirs(ctx, tmp_path):
    l1 = make_tar(tmp_path / "l1.tar", [
        {"name": "a/keep", "data": b"1"},
        {"name": "a/gone", "data": b"1"},
        {"name": "b/old1", "data": b"1"},
        {"name": "b/sub/old2", "data": b"1"},
        {"name": "c", "type": "dir"},
        {"name": "c/x", "data": b"1"},
        {"name": "f", "data": b"file in l1"},
        {"name": "link-target", "data": b"target v1"},
        {"name": "hl", "type": "hardlink", "target": "link-target"},
    ])
    l2 = make_tar(tmp_path / "l2.tar", [
        {"name": "a/.wh.gone"},
        {"name": "b/.wh..wh..opq"},
        {"name": "b/new", "data": b"2"},
        {"name": "b/sub", "type": "dir"},  # re-declared: still only this layer's contents
        {"name": "b/sub/new2", "data": b"2"},
        {"name": ".wh.c"},
        {"name": "f", "type": "dir", "mode": 0o700},  # a file replaced by a directory
        {"name": "f/inside", "data": b"2"},
        {"name": "link-target", "data": b"target v2"},  # replacing one name of a hardlinked pair
    ])
    l3 = make_tar(tmp_path / "l3.tar", [
        {"name": "c", "type": "symlink", "target": "a"},  # a name whited out below comes back as a symlink
        {"name": "a/keep", "data": b"3", "uid": 7},
    ])
    img = ctx.call("image.import", {"name": "layered", "tars": [str(l1), str(l2), str(l3)]})
    fsck(img["rootfs"])
    t = dump(img["rootfs"])
    assert t["/a/keep"]["hash"] == fnv(b"3") and t["/a/keep"]["uid"] == 7
    assert "/a/gone" not in t
    assert sorted(p for p in t if p.startswith("/b/")) == ["/b/new", "/b/sub", "/b/sub/new2"]
    assert t["/c"]["type"] == "symlink" and "/c/x" not in t
    assert t["/f"]["type"] == "dir" and t["/f"]["mode"] == 0o700 and "/f/inside" in t
    assert t["/link-target"]["hash"] == fnv(b"target v2") and t["/link-target"]["nlink"] == 1
    assert t["/hl"]["hash"] == fnv(b"target v1") and t["/hl"]["nlink"] == 1
    assert not any(".wh." in p for p in t)


def test_symlinked_parent_inside_the_image_is_followed(ctx, tmp_path):
    tar = make_tar(tmp_path / "merged-usr.tar", [
        {"name": "usr/lib", "type": "dir"},
        {"name": "lib", "type": "symlink", "target": "usr/lib"},
        {"name": "lib/libc.so", "data": b"c"},
        {"name": "abs", "type": "symlink", "target": "/usr"},
        {"name": "abs/lib/libm.so", "data": b"m"},
    ])
    img = ctx.call("image.import", {"name": "merged", "tars": [str(tar)]})
    t = dump(img["rootfs"])
    assert t["/usr/lib/libc.so"]["hash"] == fnv(b"c")
    assert t["/usr/lib/libm.so"]["hash"] == fnv(b"m")
    assert t["/lib"]["type"] == "symlink"


def test_import_reports_typed_progress(ctx, tmp_path):
    one = make_tar(tmp_path / "one.tar", [{"name": "a", "data": b"a"}])
    two = make_tar(tmp_path / "two.tar", [{"name": "b", "data": b"b"}, {"name": "c", "type": "dir"}])
    events = []
    img = ctx.images.import_tars("staged", [one, two], progress=events.append)
    assert img["name"] == "staged"
    assert all(isinstance(p, banger.Progress) for p in events)
    stages = [p.stage for p in events]
    assert stages[0] == "scan" and stages[-1] == "publish"
    assert [(p.done, p.total) for p in events if p.stage == "layer"] == [(0, 2), (1, 2)]
    unpacked = [p.raw for p in events if p.stage == "unpack"]
    assert [(u["entries"], u["finished"]) for u in unpacked] == [(1, True), (2, True)]
    assert all(p.done is None and p.total is None for p in events if p.stage != "layer")


def resolve(image, path):
    out = subprocess.run([str(EXT4_TOOL), "resolve", str(image), path], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_init_is_resolved_through_symlinks(ctx, tmp_path):
    """What `--init auto` reads: where /sbin/init leads, and whether an
    executable is there (merged /usr, relative and absolute links)."""
    tar = make_tar(tmp_path / "inits.tar", [
        {"name": "usr/sbin", "type": "dir"},
        {"name": "usr/lib/systemd/systemd", "data": b"#!", "mode": 0o755},
        {"name": "sbin", "type": "symlink", "target": "usr/sbin"},
        {"name": "lib", "type": "symlink", "target": "usr/lib"},
        {"name": "usr/sbin/init", "type": "symlink", "target": "/lib/systemd/systemd"},
        {"name": "bin/busybox", "data": b"bb", "mode": 0o755},
        {"name": "bin/rel", "type": "symlink", "target": "../bin/busybox"},
        {"name": "bin/dangling", "type": "symlink", "target": "/nope/init"},
        {"name": "bin/loop", "type": "symlink", "target": "loop"},
        {"name": "bin/plain", "data": b"x", "mode": 0o644},
    ])
    rootfs = ctx.call("image.import", {"name": "inits", "tars": [str(tar)]})["rootfs"]
    assert resolve(rootfs, "sbin/init") == ["exec", "/lib/systemd/systemd"]
    assert resolve(rootfs, "bin/rel") == ["exec", "bin/../bin/busybox"]
    assert resolve(rootfs, "bin/dangling") == ["none", "/nope/init"]
    assert resolve(rootfs, "bin/loop")[0] == "none"
    assert resolve(rootfs, "bin/plain") == ["none", "bin/plain"]
    assert resolve(rootfs, "missing/init") == ["none", "missing/init"]

HOSTILE = {
    "dotdot": ([{"name": "../evil", "data": b"x"}], "path traversal"),
    "dotdot-middle": ([{"name": "a/../../evil", "data": b"x"}], "path traversal"),
    "absolute": ([{"name": "/etc/evil", "data": b"x"}], "absolute paths"),
    "empty-component": ([{"name": "a//b", "data": b"x"}], "empty path component"),
    "symlink-escape": ([{"name": "a/up", "type": "symlink", "target": "../../etc"}], "escapes the image root"),
    "parent-symlink-escape": ([{"name": "esc", "type": "symlink", "target": "../../.."},
                               {"name": "esc/etc/passwd", "data": b"x"}], "escapes the image root"),
    "hardlink-escape": ([{"name": "h", "type": "hardlink", "target": "../etc/shadow"}], "path traversal"),
    "hardlink-missing": ([{"name": "h", "type": "hardlink", "target": "nope"}], "target does not exist"),
    "whiteout-dotdot": ([{"name": "a/.wh..."}], "invalid whiteout"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tars_are_rejected_and_leave_nothing(ctx, env, tmp_path, case):
    entries, word = HOSTILE[case]
    tar = make_tar(tmp_path / "evil.tar", [{"name": "ok", "data": b"fine"}] + entries)
    with pytest.raises(banger.InvalidArgument) as ei:
        ctx.call("image.import", {"name": "evil", "tars": [str(tar)]})
    assert word in ei.value.message
    assert entries[-1]["name"].strip("/").split("/")[-1] in ei.value.message or "'" in ei.value.message
    assert ctx.call("image.list")["images"] == []
    assert images_on_disk(env) == []


def test_absurd_size_is_rejected(ctx, env, tmp_path):
    ti = tarfile.TarInfo("huge")
    ti.size = 1 << 50
    raw = ti.tobuf(tarfile.PAX_FORMAT) + b"\0" * 1024
    (tmp_path / "huge.tar").write_bytes(raw)
    with pytest.raises(banger.Error) as ei:
        ctx.call("image.import", {"name": "huge", "tars": [str(tmp_path / "huge.tar")]})
    assert "huge" in ei.value.message
    assert images_on_disk(env) == []


def test_truncated_tar(ctx, env, tmp_path):
    tar = make_tar(tmp_path / "t.tar", [{"name": "big", "data": os.urandom(200_000)}])
    data = tar.read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[:100_000])
    with pytest.raises(banger.Error) as ei:
        ctx.call("image.import", {"name": "cut", "tars": [str(tmp_path / "cut.tar")]})
    assert "truncated" in ei.value.message or "not a readable tar" in ei.value.message
    assert images_on_disk(env) == []


@pytest.mark.parametrize("keep,compress", [(0, None), (0, "gz"), (10, None), (10, "gz")])
def test_tar_ending_after_its_last_entry(ctx, env, tmp_path, keep, compress):
    """A layer that stops right after its last entry's data (no padding, no two zero blocks, as a
    writer that is never closed leaves it) is complete: Go's archive/tar accepts it, so do we."""
    last = os.urandom(1000)
    raw = make_tar(tmp_path / "t.tar", [{"name": "etc/conf", "data": b"conf"}, {"name": "bin/last", "data": last}])
    data = unterminated(raw.read_bytes(), keep)
    (tmp_path / "open.tar").write_bytes(gzip.compress(data) if compress else data)
    img = ctx.call("image.import", {"name": "open", "tars": [str(tmp_path / "open.tar")]})
    fsck(img["rootfs"])
    t = dump(img["rootfs"])
    assert t["/bin/last"]["hash"] == fnv(last) and t["/bin/last"]["size"] == 1000
    assert t["/etc/conf"]["hash"] == fnv(b"conf")


@pytest.mark.parametrize("cut", ["last-byte", "header-only", "partial-next-header"])
@pytest.mark.parametrize("compress", [None, "gz"])
def test_tar_cut_inside_an_entry_is_an_error(ctx, env, tmp_path, cut, compress):
    """What the tolerance above must not let through: an entry missing data, or a torn header."""
    raw = make_tar(tmp_path / "t.tar", [{"name": "a", "data": b"a"}, {"name": "last", "data": os.urandom(1000)}])
    whole = unterminated(raw.read_bytes())
    data = {"last-byte": whole[:-1], "header-only": whole[:-1000],
            "partial-next-header": unterminated(raw.read_bytes(), 24) + b"\0" * 100}[cut]
    (tmp_path / "cut.tar").write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(banger.Error) as ei:
        ctx.call("image.import", {"name": "cut", "tars": [str(tmp_path / "cut.tar")]})
    assert "not a readable tar stream" in ei.value.message and "Truncated" in ei.value.message
    assert images_on_disk(env) == []


def test_root_and_lost_found_as_mke2fs_makes_them(ctx, tmp_path):
    """/ 0755 and /lost+found 0700 (16 KiB, so e2fsck never allocates there), like mke2fs, when no
    layer says otherwise."""
    tar = make_tar(tmp_path / "s.tar", [{"name": "f", "data": b"x"}])
    t = dump(ctx.call("image.import", {"name": "plain", "tars": [str(tar)]})["rootfs"])
    ref = tmp_path / "mke2fs.ext4"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", str(ref), "64M"], check=True)
    want = dump(ref)
    for path in ("/", "/lost+found"):
        assert (t[path]["mode"], t[path]["uid"], t[path]["gid"]) == (want[path]["mode"], 0, 0), path
    assert t["/"]["mode"] == 0o755 and t["/lost+found"]["mode"] == 0o700
    assert t["/lost+found"]["size"] == want["/lost+found"]["size"] == 16384


def test_names_and_duplicates(ctx, tmp_path):
    tar = make_tar(tmp_path / "s.tar", [{"name": "f", "data": b"x"}])
    with pytest.raises(banger.InvalidArgument):
        ctx.call("image.import", {"name": "Not_Valid", "tars": [str(tar)]})
    ctx.call("image.import", {"name": "one", "tars": [str(tar)]})
    with pytest.raises(banger.AlreadyExists):
        ctx.call("image.import", {"name": "one", "tars": [str(tar)]})
    with pytest.raises(banger.NotFound):
        ctx.call("image.show", {"name": "two"})
    assert ctx.call("image.rm", {"name": "one"})["name"] == "one"
    assert ctx.call("image.list")["images"] == []


def test_explicit_size(ctx, tmp_path):
    tar = make_tar(tmp_path / "s.tar", [{"name": "f", "data": b"x"}])
    img = ctx.call("image.import", {"name": "sized", "tars": [str(tar)], "size": "200M"})
    assert img["rootfs_size"] == 200 << 20
    with pytest.raises(banger.InvalidArgument) as ei:
        ctx.call("image.import", {"name": "tiny", "tars": [str(tar)], "size": "1M"})
    assert "too small" in ei.value.message
    with pytest.raises(banger.InvalidArgument):
        ctx.call("image.import", {"name": "weird", "tars": [str(tar)], "size": "lots"})


def test_register_existing_rootfs(ctx, env, tmp_path):
    tar = make_tar(tmp_path / "s.tar", [{"name": "f", "data": b"x"}])
    built = ctx.call("image.import", {"name": "src", "tars": [str(tar)]})
    copy = tmp_path / "copy.ext4"
    subprocess.run(["cp", "--sparse=always", built["rootfs"], str(copy)], check=True)
    reg = ctx.call("image.register", {"name": "reg", "rootfs": str(copy)})
    assert reg["managed"] is False and reg["rootfs"] == str(copy) and reg["source"] == f"register:{copy}"
    ctx.call("image.rm", {"name": "reg"})
    assert copy.exists()  # registered files belong to the user
    (tmp_path / "junk").write_bytes(b"not ext4" * 1000)
    with pytest.raises(banger.Error) as ei:
        ctx.call("image.register", {"name": "junk", "rootfs": str(tmp_path / "junk")})
    assert "cannot register" in ei.value.message


def test_full_disk_during_import_leaves_nothing(env, tmp_path):
    state = env["BANGER_STATE_DIR"]
    state.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24M", "tmpfs", str(state)], check=True)
    try:
        tar = make_tar(tmp_path / "big.tar", [{"name": f"f{i}", "data": os.urandom(4 << 20)} for i in range(10)])
        with banger.open(f"local:{state}") as ctx:
            with pytest.raises(banger.Error) as ei:
                ctx.call("image.import", {"name": "big", "tars": [str(tar)]})
            assert "disk is full" in ei.value.message or "No space" in ei.value.message
            assert ctx.call("image.list")["images"] == []
        assert images_on_disk(env) == []
    finally:
        subprocess.run(["umount", str(state)], check=True)


def test_killed_daemon_mid_import_leaves_nothing(env, tmp_path):
    tar = make_tar(tmp_path / "big.tar", [{"name": f"f{i}", "data": os.urandom(8 << 20)} for i in range(24)])
    d = Daemon(env)
    c = banger.open(f"unix:{d.socket}", autostart=False)
    call = c.start("image.import", {"name": "big", "tars": [str(tar)]})
    staging = env["BANGER_STATE_DIR"] / "images"
    deadline = time.time() + 20
    while not any(n.startswith(".staging-") for n in images_on_disk(env)):
        assert time.time() < deadline, "import never started"
        time.sleep(0.005)
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(10)
    with pytest.raises(banger.Error):
        call.result(timeout=10)
    c.close()
    assert images_on_disk(env) != []  # the crash left its staging directory
    d2 = Daemon(env)  # a restart cleans it up
    with banger.open(f"unix:{d2.socket}", autostart=False) as c2:
        assert c2.call("image.list")["images"] == []
    assert images_on_disk(env) == []
    assert d2.stop() == 0
    assert staging.exists()


def test_cli_import_from_stdin_and_layers(env, tmp_path):
    tar = make_tar(tmp_path / "s.tar", [{"name": "hello", "data": b"hi"}])
    cli = str(BANGERD.parent.parent / "banger" / "banger")
    with open(tar, "rb") as f:
        p = subprocess.run([cli, "image", "import", "piped", "--tar", "-", "--json"], stdin=f, capture_output=True,
                           text=True, env={**os.environ, "BANGER_URI": f"local:{env['BANGER_STATE_DIR']}"})
    assert p.returncode == 0, p.stderr
    assert '"source": "tar:<stdin>"' in p.stdout
    l2 = make_tar(tmp_path / "l2.tar", [{"name": ".wh.hello"}, {"name": "bye", "data": b"x"}])
    p = run_cli("image", "import", "two", "--tar", str(tar), "--tar", str(l2),
                env_extra={"BANGER_URI": f"local:{env['BANGER_STATE_DIR']}"})
    assert p.returncode == 0, p.stderr
    rootfs = next(line.split()[1] for line in p.stdout.splitlines() if line.startswith("rootfs "))
    t = dump(rootfs)
    assert "/bye" in t and "/hello" not in t
    p = run_cli("image", "ls", env_extra={"BANGER_URI": f"local:{env['BANGER_STATE_DIR']}"})
    assert p.stdout.splitlines()[0].split() == ["NAME", "ID", "ROOTFS", "SIZE", "DISK", "SOURCE", "CREATED"]
    assert [line.split()[0] for line in p.stdout.splitlines()[1:]] == ["piped", "two"]
    p = run_cli("image", "import", "nothing", env_extra={"BANGER_URI": f"local:{env['BANGER_STATE_DIR']}"})
    assert p.returncode == 2 and "needs --tar" in p.stderr


def test_typed_c_api_example(env, tmp_path):
    """docs/examples/image-kernel.c, built against the public headers only:
    a typed import with its progress stages, lookup by id, the lists, and
    removal; a bad layer comes back as the library's error."""
    exe = BANGERD.parent.parent.parent / "tests" / "image-kernel"
    layer = tmp_path / "layer.tar"
    make_tar(layer, [{"name": "etc", "type": "dir"}, {"name": "etc/hostname", "data": b"typed\n"}])
    state = f"local:{env['BANGER_STATE_DIR']}"
    p = subprocess.run([str(exe), state, "typed", str(layer)], capture_output=True, text=True, timeout=120,
                       env=child_env())
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[:2] == ["progress scan", "progress layer 0/1"], p.stdout
    assert "progress publish" in lines
    imported = next(line for line in lines if line.startswith("imported typed "))
    assert f"from tar:{layer}" in imported and int(imported.split()[-2]) > 0
    assert "found typed" in lines and "image typed" in lines and lines[-1] == "removed typed"
    with banger.open(state) as c, pytest.raises(banger.NotFound):
        c.call("image.show", {"name": "typed"})
    p = subprocess.run([str(exe), state, "typed", str(tmp_path / "missing.tar")], capture_output=True, text=True,
                       timeout=60, env=child_env())
    assert p.returncode == 1 and "missing.tar" in p.stderr and "error:" in p.stderr, p.stderr

"""A disk a guest did not unmount cleanly: banger's ext4 writer replays its
journal before writing, or the guest's next mount would replay old blocks
over what banger wrote (a VM's agent binary came back corrupt after
`vm stop`/`vm start`: "Exec format error")."""
import re
import subprocess

from layers import EXT4_TOOL


def run(*argv, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)


def features(img):
    out = run("dumpe2fs", "-h", img).stdout
    return re.search(r"^Filesystem features:\s*(.*)$", out, re.M).group(1).split()


def test_write_after_unclean_shutdown_survives_the_replay(tmp_path):
    img = tmp_path / "overlay.ext4"
    assert run("mkfs.ext4", "-q", "-F", "-b", "4096", img, "64M").returncode == 0
    assert run(EXT4_TOOL, "put", img, "agent", "old agent").returncode == 0
    # What a guest leaves behind: a committed transaction holding the block
    # of the inode table with the agent's inode as it was, and the
    # needs_recovery flag (debugfs writes the journal as a kernel would).
    imap = run("debugfs", "-R", "imap /agent", img).stdout
    block = int(re.search(r"located at block (\d+)", imap).group(1))
    old = tmp_path / "old-block"
    with open(img, "rb") as f:
        f.seek(block * 4096)
        old.write_bytes(f.read(4096))
    r = run("debugfs", "-w", "-f", "-", img, input=f"jo\njw -b {block} {old}\njc\n")
    assert r.returncode == 0, r.stderr
    assert "needs_recovery" in features(img)

    assert run(EXT4_TOOL, "put", img, "agent", "the new agent, longer").returncode == 0
    assert "needs_recovery" not in features(img)  # replayed before the write
    # the guest's next mount, as e2fsck replays: nothing left to undo the write
    assert run("e2fsck", "-fy", img).returncode in (0, 1)
    assert run("debugfs", "-R", "cat /agent", img).stdout == "the new agent, longer"
    assert run("e2fsck", "-fn", img).returncode == 0


def test_replay_failure_is_named(tmp_path):
    img = tmp_path / "broken.ext4"
    assert run("mkfs.ext4", "-q", "-F", "-b", "4096", img, "64M").returncode == 0
    # needs_recovery set on a journal with a bad transaction checksum is
    # still replayable; a journal inode that is gone is not
    assert run("debugfs", "-w", "-R", "feature needs_recovery", img).returncode == 0
    assert run("debugfs", "-w", "-R", "set_super_value journal_inum 0", img).returncode == 0
    r = run(EXT4_TOOL, "put", img, "x", "y")
    assert r.returncode != 0
    assert "journal" in r.stderr

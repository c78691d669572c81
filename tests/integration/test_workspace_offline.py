"""vm.workspace.* without booting: refusals and dry runs need only a VM
row (vm.create start=false); the real round trip is in test_vm.py."""
import base64
import os
import subprocess

import pytest

import banger
from conftest import run_cli
from layers import make_tar
from test_vm_offline import offline  # noqa: F401 (fixture)
from test_kernel import kernel_debs  # noqa: F401
from workspace_repo import TRACKED, git, make_repo


@pytest.fixture
def cold(offline):  # noqa: F811
    offline.call("vm.create", {"name": "cold", "image": "tiny", "kernel": "k", "start": False, "disk_size": "256M"})
    return offline


def test_dry_run_lists_tracked_files_untracked_on_request(cold, tmp_path):
    repo = make_repo(tmp_path / "repo")
    r = cold.call("vm.workspace.prepare", {"name": "cold", "path": str(repo), "dry_run": True})
    assert sorted(r["file_list"]) == TRACKED
    assert r["files"] == len(TRACKED) and r["guest_path"] == "/root/repo" and r["dry_run"]
    assert r["head_commit"] == git(repo, "rev-parse", "HEAD").stdout.decode().strip()
    r = cold.call("vm.workspace.prepare", {"name": "cold", "path": str(repo / "dir"), "dry_run": True,
                                           "include_untracked": True, "guest_path": "/work/x"})
    assert sorted(r["file_list"]) == sorted(TRACKED + ["notes.txt"])  # debug.log stays ignored
    assert r["guest_path"] == "/work/x"
    # a name that is not UTF-8 comes back as base64, apart
    fd = os.open(os.path.join(os.fsencode(repo), b"bad\xff.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
    git(repo, "add", b"bad\xff.txt")
    git(repo, "commit", "-q", "-m", "odd name")
    r = cold.call("vm.workspace.prepare", {"name": "cold", "path": str(repo), "dry_run": True})
    assert [base64.b64decode(b) for b in r["file_list_b64"]] == [b"bad\xff.txt"]
    assert r["files"] == len(r["file_list"]) + 1 and "notes.txt" not in r["file_list"]
    with pytest.raises(banger.NotFound):  # nothing recorded by a dry run
        cold.call("vm.workspace.show", {"name": "cold"})


def test_refusals(cold, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(banger.InvalidArgument, match="not a git repository"):
        cold.call("vm.workspace.prepare", {"name": "cold", "path": str(plain), "dry_run": True})
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "bare.git")], check=True)
    with pytest.raises(banger.InvalidArgument, match="bare repository"):
        cold.call("vm.workspace.prepare", {"name": "cold", "path": str(tmp_path / "bare.git"), "dry_run": True})
    empty = tmp_path / "empty"
    git(tmp_path, "init", "-q", str(empty))
    with pytest.raises(banger.InvalidArgument, match="no commit"):
        cold.call("vm.workspace.prepare", {"name": "cold", "path": str(empty), "dry_run": True})
    repo = make_repo(tmp_path / "sub")
    (repo / ".gitmodules").write_text('[submodule "x"]\n\tpath = x\n\turl = ../x\n')
    with pytest.raises(banger.Error, match="full_copy"):
        cold.call("vm.workspace.prepare", {"name": "cold", "path": str(repo), "dry_run": True})
    with pytest.raises(banger.InvalidArgument, match="absolute"):
        cold.call("vm.workspace.prepare", {"name": "cold", "path": "relative"})
    # the guest path's last name tops the tar stream: plain names only, trailing slashes dropped
    for bad in ("/", "//", "relative", "/root/../etc", "/root/./repo", "/root//repo", "/root/..", "/root/."):
        with pytest.raises(banger.InvalidArgument, match="guest_path"):
            cold.call("vm.workspace.prepare", {"name": "cold", "path": str(repo), "guest_path": bad,
                                               "mode": "full_copy", "dry_run": True})
    r = cold.call("vm.workspace.prepare", {"name": "cold", "path": str(repo), "guest_path": "/work/x//",
                                           "mode": "full_copy", "dry_run": True})
    assert r["guest_path"] == "/work/x"
    with pytest.raises(banger.NotFound):
        cold.call("vm.workspace.prepare", {"name": "nope", "path": str(repo), "dry_run": True})
    # a real prepare on a stopped VM is refused before anything is written
    repo2 = make_repo(tmp_path / "repo2")
    with pytest.raises(banger.Error):
        cold.call("vm.workspace.prepare", {"name": "cold", "path": str(repo2)})
    with pytest.raises(banger.NotFound, match="no workspace"):
        cold.call("vm.workspace.export", {"name": "cold"})
    with pytest.raises(banger.NotFound, match="no workspace"):
        cold.call("vm.workspace.status", {"name": "cold"})


def test_cli_dry_run_and_refusal(env, tmp_path, kernel_debs):  # noqa: F811
    local = {"BANGER_URI": f"local:{env['BANGER_STATE_DIR']}"}
    tar = make_tar(tmp_path / "img.tar", [{"name": "usr/sbin/sshd", "data": b"#!/bin/sh\n", "mode": 0o755}])
    for argv in (("image", "import", "tiny", "--tar", str(tar)), ("kernel", "import", "k", "--deb", str(kernel_debs[0])),
                 ("vm", "create", "--name", "cold", "--image", "tiny", "--kernel", "k", "--no-start")):
        r = run_cli(*argv, env_extra=local, timeout=300)
        assert r.returncode == 0, r.stderr
    repo = make_repo(tmp_path / "repo")
    r = run_cli("vm", "workspace", "prepare", "cold", str(repo), "--dry-run", env_extra=local)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == TRACKED
    r = run_cli("vm", "workspace", "prepare", "cold", str(tmp_path), "--dry-run", env_extra=local)
    assert r.returncode != 0 and "not a git repository" in r.stderr
    r = run_cli("vm", "workspace", "show", "cold", env_extra=local)
    assert r.returncode != 0 and "no workspace" in r.stderr
    # vm exec asks for the workspace first: none is no error of its own
    r = run_cli("vm", "exec", "cold", "--", "true", env_extra=local)
    assert r.returncode == 1 and "workspace" not in r.stderr and "not running" in r.stderr, r.stderr

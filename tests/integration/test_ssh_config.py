"""`banger ssh-config`: the files the library keeps for stock OpenSSH
(<state>/ssh/config and known_hosts, following create and delete) and the
managed Include in ~/.ssh/config (installed idempotently at the top, the
user's bytes kept, removed exactly). Real guests: test_vm.py."""
import json
import os

from conftest import run_cli
from test_vm_offline import offline  # noqa: F401 (fixture: an image and a kernel, no boot)
from test_kernel import kernel_debs  # noqa: F401


USER_CONFIG = b"# mine\nHost work\n    HostName 10.0.0.1\n    User me\n\nHost *\n    ServerAliveInterval 30\n"


def home_env(tmp_path):
    """A home of the test's, and the in-process engine: the CLI would
    otherwise start a bangerd that outlives the test."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    return home, {"HOME": str(home), "BANGER_URI": f"local:{os.environ['BANGER_STATE_DIR']}"}


def test_files_follow_create_and_delete(offline, env):  # noqa: F811
    ctx = offline
    vm = ctx.call("vm.create", {"name": "box", "image": "tiny", "kernel": "k", "start": False})
    info = ctx.call("vm.ssh_config")
    assert info["config"] == str(env["BANGER_STATE_DIR"] / "ssh" / "config")
    known = open(info["known_hosts"]).read()
    assert known == f"box.vm,{vm['ip']} {vm['host_key']}\n"
    assert os.stat(info["known_hosts"]).st_mode & 0o777 == 0o600
    cfg = open(info["config"]).read()
    assert f"Host box.vm\n    HostName {vm['ip']}\n    HostKeyAlias box.vm\n" in cfg
    assert "Host *.vm\n" in cfg and "StrictHostKeyChecking yes" in cfg
    assert f'UserKnownHostsFile "{info["known_hosts"]}"' in cfg and f'IdentityFile "{info["key"]}"' in cfg
    assert cfg.index("Host box.vm") < cfg.index("Host *.vm")  # first value wins in ssh
    ctx.call("vm.delete", {"name": "box"})
    assert open(info["known_hosts"]).read() == ""
    assert "box.vm" not in open(info["config"]).read()


def test_install_keeps_user_content_and_is_idempotent(env, tmp_path):
    home, extra = home_env(tmp_path)
    cfg = home / ".ssh" / "config"
    cfg.write_bytes(USER_CONFIG)
    os.chmod(cfg, 0o644)
    r = run_cli("ssh-config", "--install", env_extra=extra)
    assert r.returncode == 0, r.stderr
    assert "installed" in r.stdout
    once = cfg.read_bytes()
    assert once.endswith(USER_CONFIG)
    include = once[: -len(USER_CONFIG)].decode()
    assert include.startswith("# >>> banger") and f'Include "{env["BANGER_STATE_DIR"]}/ssh/config"\n' in include
    assert os.stat(cfg).st_mode & 0o777 == 0o644  # the user's mode kept
    r = run_cli("ssh-config", "--install", "--json", env_extra=extra)
    assert json.loads(r.stdout)["status"] == "already installed"
    assert cfg.read_bytes() == once  # no second Include
    r = run_cli("ssh-config", "--uninstall", env_extra=extra)
    assert r.returncode == 0 and "uninstalled" in r.stdout
    assert cfg.read_bytes() == USER_CONFIG  # byte for byte
    r = run_cli("ssh-config", "--uninstall", "--json", env_extra=extra)
    assert json.loads(r.stdout)["status"] == "not installed"
    assert cfg.read_bytes() == USER_CONFIG
    assert sorted(os.listdir(home / ".ssh")) == ["config"]  # no temp files left


def test_install_without_a_config_and_through_a_symlink(env, tmp_path):
    home, extra = home_env(tmp_path)
    cfg = home / ".ssh" / "config"
    r = run_cli("ssh-config", "--install", env_extra=extra)
    assert r.returncode == 0, r.stderr
    assert cfg.read_text().startswith("# >>> banger")
    assert os.stat(cfg).st_mode & 0o777 == 0o600
    run_cli("ssh-config", "--uninstall", env_extra=extra)
    assert not cfg.exists()  # nothing of the user's was there
    # a dotfile manager's symlink stays a symlink; its target gets the block
    target = tmp_path / "dotfiles" / "ssh_config"
    target.parent.mkdir()
    target.write_bytes(USER_CONFIG)
    cfg.symlink_to(target)
    assert run_cli("ssh-config", "--install", env_extra=extra).returncode == 0
    assert cfg.is_symlink() and target.read_bytes().endswith(USER_CONFIG)
    assert b"Include" in target.read_bytes()
    assert run_cli("ssh-config", "--uninstall", env_extra=extra).returncode == 0
    assert cfg.is_symlink() and target.read_bytes() == USER_CONFIG


def test_a_changed_state_dir_updates_the_block_in_place(env, tmp_path):
    home, extra = home_env(tmp_path)
    cfg = home / ".ssh" / "config"
    cfg.write_bytes(USER_CONFIG)
    assert run_cli("ssh-config", "--install", env_extra=extra).returncode == 0
    other = dict(extra, BANGER_STATE_DIR=str(tmp_path / "other-state"), BANGER_URI=f"local:{tmp_path}/other-state")
    r = run_cli("ssh-config", "--install", env_extra=other)
    assert r.returncode == 0 and "updated" in r.stdout
    text = cfg.read_text()
    assert text.count("Include") == 1 and "other-state/ssh/config" in text
    assert cfg.read_bytes().endswith(USER_CONFIG)


def test_print_and_flags(env, tmp_path):
    _, extra = home_env(tmp_path)
    r = run_cli("ssh-config", env_extra=extra)
    assert r.returncode == 0 and "Host *.vm" in r.stdout and "--install" in r.stdout
    r = run_cli("ssh-config", "--install", "--uninstall", env_extra=extra)
    assert r.returncode == 2 and "exclude" in r.stderr

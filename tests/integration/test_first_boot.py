"""guest/first-boot/banger-first-boot, the SSH installer a VM without sshd
runs on first boot (vm create --nat): which package manager each distro
gets, and that the marker goes only after a successful install."""
import os
import subprocess

import pytest

from conftest import ROOT

SCRIPT = ROOT / "guest" / "first-boot" / "banger-first-boot"


def run(tmp_path, os_release, plan=True, path=None):
    rel = tmp_path / "os-release"
    rel.write_text(os_release)
    marker = tmp_path / "pending"
    marker.write_text("")
    env = {"PATH": path or os.environ["PATH"], "OS_RELEASE_FILE": str(rel), "BANGER_FIRST_BOOT_MARKER": str(marker)}
    if plan:
        env["RUN_PLAN"] = "1"
    p = subprocess.run(["sh", str(SCRIPT)], capture_output=True, text=True, env=env)
    return p, marker.exists()


@pytest.mark.parametrize("os_release,first", [
    ('ID=debian\n', "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install"),
    ('ID=ubuntu\nID_LIKE=debian\n', "apt-get update"),
    ('ID="pop"\nID_LIKE="ubuntu debian"\n', "apt-get update"),
    ('ID=fedora\n', "dnf install -y openssh-server"),
    ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "dnf install -y openssh-server"),
    ('ID=arch\n', "pacman -Sy --noconfirm openssh"),
    ('ID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\n', "zypper --non-interactive install openssh"),
])
def test_each_distro_gets_its_package_manager(tmp_path, os_release, first):
    p, pending = run(tmp_path, os_release)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith(first)
    assert lines[1:] == ["ssh-keygen -A",
                         "systemctl enable --now ssh.service 2>/dev/null || systemctl enable --now sshd.service"]
    assert pending  # a plan changes nothing


def test_unknown_distro_fails_clearly(tmp_path):
    p, pending = run(tmp_path, 'ID=plan9\nID_LIKE="bell-labs"\n')
    assert p.returncode == 1 and "no recipe to install an SSH server on 'plan9'" in p.stderr
    assert pending and p.stdout == ""


def fake_tools(tmp_path, apt_status):
    """apt-get, ssh-keygen and systemctl that log their arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "log"
    for tool, status in (("apt-get", apt_status), ("ssh-keygen", 0), ("systemctl", 0)):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\nexit {status}\n')
        (bin_dir / tool).chmod(0o755)
    return f"{bin_dir}:/usr/bin:/bin", log


def test_install_runs_then_clears_the_marker(tmp_path):
    path, log = fake_tools(tmp_path, 0)
    p, pending = run(tmp_path, "ID=debian\n", plan=False, path=path)
    assert p.returncode == 0, p.stderr
    assert log.read_text().splitlines() == [
        "apt-get update", "apt-get install -y --no-install-recommends openssh-server", "ssh-keygen -A",
        "systemctl enable --now ssh.service"]
    assert not pending


def test_failed_install_keeps_the_marker_for_the_next_boot(tmp_path):
    path, log = fake_tools(tmp_path, 100)
    p, pending = run(tmp_path, "ID=debian\n", plan=False, path=path)
    assert p.returncode != 0
    assert log.read_text().splitlines() == ["apt-get update"]
    assert pending

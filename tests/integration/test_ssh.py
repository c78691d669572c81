"""lib/ssh against a real sshd (openssh-server) on 127.0.0.1: the managed
ed25519 key, argument quoting that survives the remote shell, separate
stdout/stderr, exit codes and signals, host-key pinning."""
import json
import os
import socket
import subprocess
import time

import pytest

from conftest import BUILD

TOOL = BUILD / "tests" / "unit" / "ssh" / "ssh-tool"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    d = tmp_path_factory.mktemp("sshd")
    key = d / "client" / "id_ed25519"
    pub = subprocess.run([str(TOOL), "keygen", str(key)], capture_output=True, text=True, check=True).stdout
    assert pub.startswith("ssh-ed25519 ") and oct(os.stat(key).st_mode & 0o777) == "0o600"
    (d / "authorized_keys").write_text(pub)
    os.chmod(d / "authorized_keys", 0o600)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")], check=True)
    port = free_port()
    (d / "sshd_config").write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host_key
AuthorizedKeysFile {d}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile {d}/sshd.pid
""")
    os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.time() < deadline, "sshd did not start"
            time.sleep(0.05)
    host_pub = (d / "host_key.pub").read_text().split()
    yield {"port": port, "key": key, "host_key": f"{host_pub[0]} {host_pub[1]}"}
    proc.terminate()
    proc.wait(5)


def run(sshd, *argv, known="-", stdin="-"):
    p = subprocess.run([str(TOOL), "exec", "127.0.0.1", str(sshd["port"]), "root", str(sshd["key"]), known, stdin,
                        *argv], capture_output=True, text=True, timeout=60)
    return p


def test_exit_codes_survive_quoting(sshd):
    r = json.loads(run(sshd, "sh", "-c", "exit 42").stdout)
    assert r["exit_code"] == 42
    r = json.loads(run(sshd, "true").stdout)
    assert r["exit_code"] == 0 and r["stdout"] == "" and r["stderr"] == ""


def test_arguments_arrive_verbatim(sshd):
    weird = ["it's", "two words", "$HOME", "`id`", "a;b", "*", "", "\\n"]
    r = json.loads(run(sshd, "printf", "[%s]\\n", *weird).stdout)
    assert r["stdout"].splitlines() == [f"[{w}]" for w in weird]


def test_separate_streams_and_stdin(sshd):
    r = json.loads(run(sshd, "sh", "-c", "echo out; echo err >&2; cat", stdin="from-stdin").stdout)
    assert r["stdout"] == "out\nfrom-stdin" and r["stderr"] == "err\n"


def test_big_output_on_both_streams(sshd):
    r = json.loads(run(sshd, "sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' o; head -c 3000000 /dev/zero | "
                       "tr '\\0' e >&2").stdout)
    assert r["truncated"] is True  # capped at 1 MiB each by the tool
    assert len(r["stdout"]) == 1 << 20 and set(r["stderr"]) == {"e"}


def test_killed_by_signal(sshd):
    r = json.loads(run(sshd, "sh", "-c", "kill -TERM $$").stdout)
    assert r.get("signal") == "TERM"


def test_host_key_pinning(sshd):
    r = json.loads(run(sshd, "true", known=sshd["host_key"]).stdout)
    assert r["host_key"] == sshd["host_key"]
    p = run(sshd, "true", known="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBogusBogusBogusBogusBogusBogusBogusBogus")
    assert p.returncode == 1 and "host key" in p.stderr and "changed" in p.stderr


def test_quote_tool():
    p = subprocess.run([str(TOOL), "quote", "sh", "-c", "exit 42"], capture_output=True, text=True)
    assert p.stdout.strip() == "'sh' '-c' 'exit 42'"

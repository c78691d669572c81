"""The vm. zone served by bangerd, asked with real dig (dnsutils) and raw
sockets: SOA and NS at the apex, NXDOMAIN, REFUSED outside the zone, UDP
and TCP, and malformed queries (truncated, a compression-pointer loop, 64
KiB over TCP) after which the server still answers. Records of running VMs
are checked against real guests in test_vm.py."""
import json
import shutil
import socket
import struct
import subprocess

import pytest

from conftest import Daemon, run_cli

DIG = shutil.which("dig")
pytestmark = pytest.mark.skipif(DIG is None, reason="dig not installed (apt-get install dnsutils)")


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


@pytest.fixture
def dns(env):
    port = free_port()
    (env["BANGER_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)
    (env["BANGER_CONFIG_DIR"] / "config.toml").write_text(f'dns_listen = "127.0.0.1:{port}"\n')
    d = Daemon(env)
    yield port
    assert d.stop() == 0


def dig(port, *args):
    p = subprocess.run([DIG, "@127.0.0.1", "-p", str(port), "+time=3", "+tries=1", *args],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def header(out):
    """(status, flags) from dig's ->>HEADER<<- lines."""
    status = out.split("status: ", 1)[1].split(",", 1)[0]
    flags = out.split(";; flags: ", 1)[1].split(";", 1)[0].split()
    return status, flags


def section(out, name):
    """The records dig prints under ';; <NAME> SECTION:'."""
    if f";; {name} SECTION:" not in out:
        return []
    body = out.split(f";; {name} SECTION:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split() for line in body.splitlines() if line and not line.startswith(";")]


@pytest.mark.parametrize("tcp", [False, True])
def test_apex_soa_and_ns(dns, tcp):
    extra = ["+tcp"] if tcp else ["+notcp"]
    out = dig(dns, "vm.", "SOA", *extra)
    status, flags = header(out)
    assert status == "NOERROR" and "aa" in flags and "qr" in flags
    (soa,) = section(out, "ANSWER")
    assert soa[0] == "vm." and soa[3] == "SOA" and soa[4] == "vm." and soa[5] == "hostmaster.vm."
    out = dig(dns, "VM.", "NS", *extra)
    # names point back at the question, so they keep its case
    assert [r[3:] for r in section(out, "ANSWER")] == [["NS", "VM."]]


def test_missing_name_is_nxdomain_with_soa(dns):
    out = dig(dns, "nobox.vm", "A")
    status, flags = header(out)
    assert status == "NXDOMAIN" and "aa" in flags
    assert section(out, "ANSWER") == []
    assert [r[3] for r in section(out, "AUTHORITY")] == ["SOA"]
    # without EDNS too (dig sends OPT by default)
    assert header(dig(dns, "+noedns", "a.b.vm", "AAAA"))[0] == "NXDOMAIN"


def test_outside_the_zone_is_refused(dns):
    for name in ("example.com", "vm.example", "."):
        status, flags = header(dig(dns, name, "A"))
        assert status == "REFUSED" and "aa" not in flags


def test_status_and_doctor_show_the_zone(dns, env):
    st = json.loads(run_cli("daemon", "status", "--json").stdout)
    assert st["dns"]["listen"] == [f"127.0.0.1:{dns}"]
    assert st["dns"]["records"] == 0 and st["dns"]["zone"] == "vm."
    dig(dns, "vm.", "SOA")
    st = json.loads(run_cli("daemon", "status", "--json").stdout)
    assert st["dns"]["queries"] >= 1
    text = run_cli("daemon", "status").stdout
    assert f"zone vm. on 127.0.0.1:{dns}, 0 records" in text
    rep = json.loads(run_cli("doctor", "--json").stdout)
    (check,) = [c for c in rep["checks"] if c["name"] == "dns"]
    assert f"127.0.0.1:{dns}" in check["detail"]
    # no systemd-resolved here: doctor says how to route .vm
    assert check["status"] == "WARN" and f"server=/vm/127.0.0.1#{dns}" in check["detail"]


def query(qid, name, qtype=1):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", qtype, 1)


def udp(port, data):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(data, ("127.0.0.1", port))
        try:
            return s.recv(65535)
        except socket.timeout:
            return None


def tcp_exchange(port, messages):
    """Sends length-prefixed messages on one connection; returns the
    replies until the server closes or 3 s pass."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        for m in messages:
            s.sendall(struct.pack(">H", len(m)) + m)
        buf, replies = b"", []
        try:
            while len(replies) < len(messages):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while len(buf) >= 2 and len(buf) >= 2 + struct.unpack(">H", buf[:2])[0]:
                    n = struct.unpack(">H", buf[:2])[0]
                    replies.append(buf[2:2 + n])
                    buf = buf[2 + n:]
        except socket.timeout:
            pass
        return replies


def rcode(reply):
    return reply[3] & 0xF


def test_malformed_queries_get_formerr_and_the_server_lives(dns):
    q = query(0x4242, "box.vm")
    # truncated inside the name, and inside the type/class
    for cut in (14, len(q) - 2):
        r = udp(dns, q[:cut])
        assert r is not None and r[:2] == b"\x42\x42" and rcode(r) == 1
    # a compression pointer to itself
    loop = struct.pack(">HHHHHH", 7, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01"
    r = udp(dns, loop)
    assert r is not None and rcode(r) == 1
    # shorter than a header, and a response: no reply at all
    assert udp(dns, b"\x01\x02\x03") is None
    assert udp(dns, q[:2] + b"\x81\x00" + q[4:]) is None
    # an oversized datagram (64 000 bytes of junk after a query)
    r = udp(dns, q + b"\xff" * 64000)
    assert r is not None and rcode(r) == 1
    # 64 KiB over TCP, then a good query pipelined behind it
    big = q + b"\xc0" * (65535 - len(q))
    replies = tcp_exchange(dns, [big, query(9, "vm", 6)])
    assert [rcode(r) for r in replies] == [1, 0]
    # a TCP message cut short, the connection then closed by the client
    with socket.create_connection(("127.0.0.1", dns), timeout=3) as s:
        s.sendall(b"\x00\x40" + q[:10])
    # still answering
    status, _ = header(dig(dns, "vm.", "SOA"))
    assert status == "NOERROR"
    status, _ = header(dig(dns, "+tcp", "vm.", "SOA"))
    assert status == "NOERROR"


def test_busy_port_does_not_stop_the_daemon(env):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        env["BANGER_CONFIG_DIR"].mkdir(parents=True, exist_ok=True)
        (env["BANGER_CONFIG_DIR"] / "config.toml").write_text(f'dns_listen = "127.0.0.1:{port}"\n')
        d = Daemon(env)
        try:
            st = json.loads(run_cli("daemon", "status", "--json").stdout)
            assert st["dns"]["listen"] == [] and "in use" in st["dns"]["error"]
            assert "not served" in run_cli("daemon", "status").stdout
            rep = json.loads(run_cli("doctor", "--json").stdout)
            (check,) = [c for c in rep["checks"] if c["name"] == "dns"]
            assert check["status"] == "WARN" and f"127.0.0.1:{port}/udp" in check["detail"]
        finally:
            assert d.stop() == 0


def test_off(env):
    env["BANGER_CONFIG_DIR"].mkdir(parents=True, exist_ok=True)
    (env["BANGER_CONFIG_DIR"] / "config.toml").write_text('dns_listen = "off"\n')
    d = Daemon(env)
    try:
        st = json.loads(run_cli("daemon", "status", "--json").stdout)
        assert st["dns"]["listen"] == [] and "error" not in st["dns"]
        assert "off" in run_cli("daemon", "status").stdout
    finally:
        assert d.stop() == 0

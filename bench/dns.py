#!/usr/bin/python3
"""The vm. zone's query latency and rate over UDP, each beside a baseline
measured in the same run against the same bangerd:

  * NXDOMAIN for <name>.vm: a store read (SQLite, the vms table) per query,
    the path every A record takes;
  * REFUSED for a name outside the zone and SOA at the apex: no store read
    (the baselines: parsing, the loop thread and the socket round trip).

One client, one query in flight (latency), then 64 in flight (rate).
Usage: bench/dns.py [BUILD_DIR] (default: build; use a release build)."""
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

root = Path(__file__).resolve().parents[1]
build = Path(sys.argv[1] if len(sys.argv) > 1 else root / "build").resolve()
tmp = Path(tempfile.mkdtemp(prefix="banger-bench-dns-"))
for k in ("CONFIG", "STATE", "CACHE", "RUNTIME"):
    os.environ[f"BANGER_{k}_DIR"] = str(tmp / k.lower())
(tmp / "config").mkdir()
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
(tmp / "config" / "config.toml").write_text(f'dns_listen = "127.0.0.1:{port}"\n')
sock = tmp / "runtime" / "bangerd.sock"
d = subprocess.Popen([str(build / "tools" / "bangerd" / "bangerd"), "--socket", str(sock)],
                     stderr=subprocess.DEVNULL)
for _ in range(500):
    if sock.exists():
        break
    time.sleep(0.01)


def query(qid, name, qtype):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", qtype, 1)


def latency_us(name, qtype, n=3000):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", port))
    s.settimeout(2)
    times = []
    for i in range(n):
        q = query(i & 0xFFFF, name, qtype)
        t = time.perf_counter()
        s.send(q)
        s.recv(2048)
        times.append((time.perf_counter() - t) * 1e6)
    s.close()
    return statistics.median(times)


def rate_qps(name, qtype, n=20000, window=64):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", port))
    s.settimeout(2)
    sent = got = 0
    t = time.perf_counter()
    while got < n:
        while sent < n and sent - got < window:
            s.send(query(sent & 0xFFFF, name, qtype))
            sent += 1
        try:
            s.recv(2048)
        except socket.timeout:  # a dropped datagram: count it and go on
            pass
        got += 1
    dt = time.perf_counter() - t
    s.close()
    return n / dt


try:
    rows = [("NXDOMAIN nobox.vm (store read)", "nobox.vm", 1),
            ("REFUSED example.com (baseline)", "example.com", 1),
            ("SOA vm. (baseline)", "vm", 6)]
    latency_us(rows[0][1], 1, 200)  # warm up
    print(f"{'query':34} {'median latency':>15} {'rate, 64 in flight':>20}")
    for label, name, qtype in rows:
        print(f"{label:34} {latency_us(name, qtype):12.1f} us {rate_qps(name, qtype):15.0f} q/s")
finally:
    d.terminate()
    d.wait(10)

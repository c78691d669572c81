#!/usr/bin/env python3
"""Fails when the library's exported symbols and lib/libbanger.map disagree:
a public function (BANGER_API in include/) missing from every node, a
symbol in a node that the library does not export, or a symbol in a node
older than the release that first shipped it (tests/abi/released.txt
records, per released node, exactly what it held when it shipped)."""
import re
import subprocess
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[2]
lib = sys.argv[1]
text = re.sub(r"/\*.*?\*/", "", (root / "lib/libbanger.map").read_text(), flags=re.S)
nodes = {}
for name, body in re.findall(r"(BANGER_[0-9.]+)\s*\{(.*?)\}", text, re.S):
    glob = body.split("local:")[0].replace("global:", "")
    nodes[name] = {s.strip() for s in glob.split(";") if s.strip()}

released = {}
for line in (root / "tests/abi/released.txt").read_text().splitlines():
    if line.strip() and not line.startswith("#"):
        node, sym = line.split()
        released.setdefault(node, set()).add(sym)

out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True, check=True).stdout
exported = {}
for line in out.splitlines():
    m = re.match(r"\S+ [TtWw] (banger_\w+)@@?(BANGER_[0-9.]+)$", line.strip())
    if m:
        exported[m.group(1)] = m.group(2)
declared = set()
for h in (root / "include").rglob("*.h"):
    declared |= set(re.findall(r"BANGER_API[^;(]*?\b(banger_\w+)\s*\(", h.read_text()))

errors = []
for sym in sorted(declared - set(exported)):
    errors.append(f"{sym} is declared BANGER_API but not exported: add it to the newest node of lib/libbanger.map")
for node, syms in nodes.items():
    for sym in sorted(syms - set(exported)):
        errors.append(f"{sym} is listed in {node} but the library does not export it")
for node, syms in released.items():
    for sym in sorted(nodes.get(node, set()) - syms):
        errors.append(f"{sym} was added to {node}, which has shipped: put it in a new node")
    for sym in sorted(syms - nodes.get(node, set())):
        errors.append(f"{sym} was removed from {node}, which has shipped: that breaks the ABI")
for e in errors:
    print("abi:", e)
if not errors:
    print(f"abi ok: {len(exported)} symbols in {', '.join(sorted(nodes))}")
sys.exit(1 if errors else 0)

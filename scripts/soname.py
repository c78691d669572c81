#!/usr/bin/python3
"""Prints the SONAME of lib<NAME>.so in LIBDIR (the development symlink
pkg-config points at), for libraries libbanger opens on first use
(lib/core/lazy.h). Usage: soname.py LIBDIR NAME"""
import subprocess
import sys
from pathlib import Path

libdir, name = sys.argv[1], sys.argv[2]
path = Path(libdir) / f"lib{name}.so"
if path.exists():
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if "(SONAME)" in line:
            print(line.split("[", 1)[1].split("]", 1)[0])
            sys.exit(0)
sys.exit(f"soname.py: no SONAME for lib{name}.so in {libdir}")

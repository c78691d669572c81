#!/usr/bin/env python3
"""Fails on an #include in lib/ that points up the stack.

A module is a directory under lib/ (files directly in lib/, ctx.c and
modules.c, are the public API, "api"). A module includes its own files and
modules on lower levels only; modules on the same level do not include each
other unless SIDEWAYS allows it, with the reason. A new directory under lib/
fails until it is placed in LEVELS. docs/architecture.md shows the same
table.

Usage: layers.py [source root]   (default: the checkout holding this file)
"""
import os
import re
import sys

# Bottom to top.
LEVELS = [
    ["core"],     # errors, memory, op (progress + cancel), proc, paths, config, http, util
    ["store"],    # SQLite rows and migrations
    ["fs", "net", "dns", "oci", "ssh", "guest"],
    ["vmm"],      # driver vtable + qemu, firecracker
    ["method"],   # what method modules receive: bng_engine, bng_method, bng_module
    ["catalog"],  # image and kernel catalogs and bundles
    ["image", "kernel"],
    ["vm", "workspace", "session"],
    ["engine"],   # dispatch over the registered modules
    ["rpc", "api"],
    ["update"],   # banger update: swaps the installed files, restarts bangerd through the rpc client
]

# (from, to): why a module may include one on its own level.
SIDEWAYS = {
    ("api", "rpc"): "ctx.c runs unix: calls through the rpc client; the rpc "
                    "server uses the API only through the public <banger.h>",
}

LEVEL = {m: i for i, ms in enumerate(LEVELS) for m in ms}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def module_of(lib, path):
    """The module a path under lib/ belongs to, or None outside lib/."""
    rel = os.path.relpath(path, lib)
    if rel.startswith(".."):
        return None
    parts = rel.split(os.sep)
    return "api" if len(parts) == 1 else parts[0]


def resolve(lib, src, kind, name):
    """The path under lib/ an include names, or None (system/public header).
    Quoted names are tried next to the including file, then from lib/ (it
    is on the include path); a quoted name found nowhere is a generated
    file next to the source (stamp.h)."""
    here = os.path.normpath(os.path.join(os.path.dirname(src), name))
    from_lib = os.path.normpath(os.path.join(lib, name))
    if kind == '"' and os.path.exists(here):
        return here
    if os.path.exists(from_lib):
        return from_lib
    return here if kind == '"' else None


def check(root):
    lib = os.path.join(root, "lib")
    problems = []
    order = " < ".join("{" + ", ".join(ms) + "}" if len(ms) > 1 else ms[0] for ms in LEVELS)
    for dirpath, dirnames, filenames in os.walk(lib):
        dirnames.sort()
        for fn in sorted(filenames):
            if not fn.endswith((".c", ".h", ".in")):
                continue
            src = os.path.join(dirpath, fn)
            rel_src = os.path.relpath(src, root)
            mod = module_of(lib, src)
            if mod not in LEVEL:
                problems.append(f"{rel_src}:1: module '{mod}' is not in the layer table "
                                f"(tests/layers.py LEVELS): place it")
                continue
            with open(src, encoding="utf-8", errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    kind, name = m.groups()
                    target = resolve(lib, src, kind, name)
                    if target is None:
                        continue
                    to = module_of(lib, target)
                    shown = kind + name + (">" if kind == "<" else '"')
                    if to is None:
                        problems.append(f"{rel_src}:{lineno}: {mod} includes {shown}, outside lib/")
                    elif to == mod:
                        continue
                    elif to not in LEVEL:
                        problems.append(f"{rel_src}:{lineno}: {mod} includes {shown} of '{to}', "
                                        f"which is not in the layer table")
                    elif LEVEL[to] > LEVEL[mod]:
                        problems.append(f"{rel_src}:{lineno}: {mod} includes {shown}: {to} is above {mod}")
                    elif LEVEL[to] == LEVEL[mod] and (mod, to) not in SIDEWAYS:
                        problems.append(f"{rel_src}:{lineno}: {mod} includes {shown}: {to} is on the "
                                        f"same level as {mod} (move the shared piece down, or allow it "
                                        f"in SIDEWAYS with the reason)")
    if problems:
        print("includes that point up (or across) the layers; bottom to top:", order, file=sys.stderr)
        for p in problems:
            print(p, file=sys.stderr)
        return 1
    print("layers ok:", order)
    return 0


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.exit(check(root))

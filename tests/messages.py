#!/usr/bin/env python3
"""Fails on a string in lib/ that names a banger CLI command.

The library states problems; what to type is the CLI's business (the
hint table in tools/banger/main.c for errors, doctor's remedies for its
rows). A C string literal in lib/ (comments skipped) must not contain
"banger <command>" for one of the CLI's top-level commands. ALLOWED lists
the exceptions, with the reason.

Usage: messages.py [source root]   (default: the checkout holding this file)
"""
import os
import re
import sys

COMMANDS = ("vm", "image", "kernel", "system", "daemon", "config", "doctor", "update", "ssh-config", "version",
            "completion", "help")
NAMES_COMMAND = re.compile(r"\bbanger (%s)\b" % "|".join(re.escape(c) for c in COMMANDS))
# (file relative to lib/, text in the literal): why it may stay
ALLOWED = {}
TOKEN = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'', re.S)


def literals(text):
    """(line, literal) for each C string literal outside comments."""
    for m in TOKEN.finditer(text):
        tok = m.group(0)
        if tok.startswith('"'):
            yield text.count("\n", 0, m.start()) + 1, tok[1:-1]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    lib = os.path.join(root, "lib")
    bad = []
    for dirpath, _, files in os.walk(lib):
        for name in sorted(files):
            if not name.endswith((".c", ".h", ".c.in")):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, lib)
            with open(path, encoding="utf-8") as f:
                for line, lit in literals(f.read()):
                    m = NAMES_COMMAND.search(lit)
                    if m and not any(rel == a and t in lit for a, t in ALLOWED):
                        bad.append(f"lib/{rel}:{line}: names the CLI command '{m.group(0)}': \"{lit}\"")
    for b in bad:
        print(b)
    if bad:
        print(f"{len(bad)} library string(s) name CLI commands: state the problem, and put the command in "
              "tools/banger (cli_hints, doctor_remedies)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Fails on a goto in lib/ that leaves the one error-flow style.

A function that must leave early jumps forward to a single cleanup exit
labelled `out:` (docs/CONVENTIONS.md, Errors). This script reads each C
file under lib/ (comments and literals skipped) and reports, as file:line:
a label other than `out`, a goto to one, a goto to a label earlier in the
function (a retry is a loop), a computed goto, and a goto inside a macro.

Usage: errflow.py [source root]   (default: the checkout holding this file)
"""
import bisect
import os
import re
import sys

LABEL = "out"
# Comments (blanked) and string and character literals (each left as one token, 0); newlines kept
# for the line numbers.
SKIP = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'', re.S)
# A preprocessor directive, with its continuation lines.
DIRECTIVE = re.compile(r'^[ \t]*#(?:[^\n\\]|\\.)*', re.M | re.S)
TOKEN = re.compile(r'[A-Za-z_]\w*|::|\S')
# Words that end with ':' after ';', '{' or '}' without being labels (default:, an unnamed bit-field).
NOT_LABELS = {"default", "int", "unsigned", "signed", "char", "short", "long", "bool", "_Bool"}


def blank(m):
    return re.sub(r'[^\n]', ' ', m.group(0))


def literal(m):
    return blank(m) if m.group(0)[0] == "/" else "0" + blank(m)[1:]


def tokens(text):
    """(line, token) for each token of a C file outside directives, and the
    lines of the directives that hold a goto."""
    text = SKIP.sub(literal, text)
    starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
    macro_gotos = []

    def drop(m):
        if re.search(r"\bgoto\b", m.group(0)):
            macro_gotos.append(bisect.bisect_right(starts, m.start()))
        return blank(m)

    text = DIRECTIVE.sub(drop, text)
    return [(bisect.bisect_right(starts, m.start()), m.group(0)) for m in TOKEN.finditer(text)], macro_gotos


def check_file(path, rel):
    with open(path, encoding="utf-8", errors="replace") as f:
        toks, macro_gotos = tokens(f.read())
    problems = [f"{rel}:{line}: goto inside a macro (jump in the function itself)" for line in macro_gotos]
    depth = 0
    in_function = False
    labels = {}   # name -> (token index, line) in the current function
    gotos = []    # (token index, line, target) in the current function
    label_colons = set()

    def end_function():
        for i, line, target in gotos:
            if target in labels and labels[target][0] < i:
                problems.append(f"{rel}:{line}: goto {target} jumps back to line {labels[target][1]} "
                                f"(a retry is a loop)")

    for i, (line, tok) in enumerate(toks):
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        before = toks[i - 1][1] if i else None
        if tok == "{":
            if depth == 0:
                # A function body follows its parameter list (or an attribute's parentheses).
                in_function = before == ")"
                labels, gotos, label_colons = {}, [], set()
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth == 0 and in_function:
                end_function()
                in_function = False
        elif in_function and tok == "goto":
            if nxt and nxt[1] == "*":
                problems.append(f"{rel}:{line}: computed goto")
            elif nxt:
                gotos.append((i, line, nxt[1]))
                if nxt[1] != LABEL:
                    problems.append(f"{rel}:{line}: goto {nxt[1]} (the one exit is '{LABEL}:')")
        elif (in_function and nxt and nxt[1] == ":" and tok not in NOT_LABELS and re.match(r'[A-Za-z_]', tok)
              and (before in (";", "{", "}") or i - 1 in label_colons)):
            labels.setdefault(tok, (i, line))
            label_colons.add(i + 1)
            if tok != LABEL:
                problems.append(f"{rel}:{line}: label '{tok}:' (the one exit is '{LABEL}:')")
    return sorted(problems, key=lambda p: int(p.split(":")[1]))


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    lib = os.path.join(root, "lib")
    problems = []
    files = 0
    for dirpath, dirnames, filenames in os.walk(lib):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.endswith((".c", ".c.in")):
                continue
            path = os.path.join(dirpath, name)
            files += 1
            problems += check_file(path, os.path.relpath(path, root))
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} goto(s) or label(s) leave the error flow: return 0 or a negative BANGER_E* in "
              f"'int rc'; leave early with 'goto {LABEL};' forward to the one cleanup exit '{LABEL}:' "
              "(docs/CONVENTIONS.md)")
        return 1
    print(f"errflow ok: {files} files, every goto jumps forward to '{LABEL}:'")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Everything about banger's error codes comes from lib/core/errors.tsv.

  gen-errors.py header TSV OUT   the public <banger/errors.h> (enum banger_error_code)
  gen-errors.py names TSV OUT    lib's banger_strerror() table (a C fragment)
  gen-errors.py check [ROOT]     fails when a checked-in copy disagrees with the table:
                                 the Python classes in bindings/python/banger/__init__.py,
                                 the table in docs/rpc.md, or a shipped code
                                 (tests/abi/released-errors.txt)
  gen-errors.py update [ROOT]    rewrites those checked-in copies from the table

meson runs `header` and `names` at configure time and `check` as a test. The
Python copy is checked in, not generated at build time, so the package imports
straight from the source tree. Python 3 standard library only.
"""
import difflib
import keyword
import re
import sys
from pathlib import Path

TSV = "lib/core/errors.tsv"
RELEASED = "tests/abi/released-errors.txt"
PYTHON = "bindings/python/banger/__init__.py"
DOCS = "docs/rpc.md"
ORIGIN = f"generated from {TSV} by scripts/gen-errors.py"

# Where each checked-in copy lives inside its file: (begin marker, end marker).
MARKERS = {
    PYTHON: (f"# BEGIN errors: {ORIGIN} update; edit the table, not this",
             "# END errors"),
    DOCS: (f"<!-- BEGIN errors: {ORIGIN} update; edit the table, not this -->",
           "<!-- END errors -->"),
}


class TableError(Exception):
    pass


def read_table(path):
    """Rows (value, name, python or None, meaning), checked: values 0, -1, -2 …
    in order with no gap (banger_strerror indexes by -code), unique names
    and classes, text that is safe inside a C comment and a Markdown cell."""
    rows = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        where = f"{path}:{lineno}"
        fields = line.split("\t")
        if len(fields) != 4:
            raise TableError(f"{where}: want 4 tab-separated fields (value, name, python, meaning), got {len(fields)}")
        value, name, python, meaning = (f.strip() for f in fields)
        if not re.fullmatch(r"0|-[1-9][0-9]*", value):
            raise TableError(f"{where}: value {value!r} is not 0 or a negative integer")
        value = int(value)
        if value != -len(rows):
            raise TableError(f"{where}: value {value} out of order: the next code is {-len(rows)} "
                             "(append-only, no gaps)")
        if not re.fullmatch(r"OK|E[A-Z0-9]+", name):
            raise TableError(f"{where}: name {name!r} is not OK or E[A-Z0-9]+")
        if python == "-":
            python = None
        elif not python.isidentifier() or keyword.iskeyword(python) or not python[0].isupper():
            raise TableError(f"{where}: Python class {python!r} is not a capitalised identifier")
        if not meaning or "*/" in meaning or "|" in meaning or "\\" in meaning or '"' in meaning:
            raise TableError(f"{where}: meaning must be non-empty, without */ | \\ or \"")
        if value == 0 and (name != "OK" or python):
            raise TableError(f"{where}: code 0 is OK, with no Python class")
        if value != 0 and not python:
            raise TableError(f"{where}: an error code needs a Python class")
        rows.append((value, name, python, meaning))
    if not rows:
        raise TableError(f"{path}: no codes")
    for col, what in ((1, "name"), (2, "Python class")):
        seen = [r[col] for r in rows if r[col]]
        dups = sorted({x for x in seen if seen.count(x) > 1})
        if dups:
            raise TableError(f"{path}: duplicate {what}: {', '.join(dups)}")
    return rows


def c_header(rows):
    width = max(len(f"BANGER_{name} = {value},") for value, name, _, _ in rows)
    lines = [
        f"/* banger — error codes. Generated from {TSV} by scripts/gen-errors.py:",
        " * edit the table, not this file. <banger/common.h> includes it. */",
        "#ifndef BANGER_ERRORS_H",
        "#define BANGER_ERRORS_H",
        "",
        "/* Error codes. Append-only: a value never changes meaning once released. */",
        "enum banger_error_code {",
    ]
    for value, name, _, meaning in rows:
        lines.append(f"\t{f'BANGER_{name} = {value},':<{width}} /* {meaning} */")
    lines += ["};", "", "#endif", ""]
    return "\n".join(lines)


def c_names(rows):
    lines = [f"/* Generated from {TSV} by scripts/gen-errors.py. */",
             "/* banger_strerror()'s names, indexed by -code. */",
             "static const char *const bng_error_names[] = {"]
    lines += [f'\t"{name}",' for _, name, _, _ in rows]
    lines += ["};", ""]
    return "\n".join(lines)


def python_block(rows):
    lines = ["# One subclass of Error per code; _raise picks it by code."]
    for value, name, python, meaning in rows[1:]:
        lines.append(f'class {python}(Error): """{name} ({value}): {meaning}."""')
    lines.append("")
    lines.append("_BY_CODE = {")
    lines += [f"    {value}: {python}," for value, _, python, _ in rows[1:]]
    lines.append("}")
    return lines


def docs_block(rows):
    lines = ["| code | name | Python class | meaning |", "|---|---|---|---|"]
    lines += [f"| {value} | `{name}` | `banger.{python}` | {meaning} |" for value, name, python, meaning in rows[1:]]
    return lines


def splice(text, rel, block):
    """text with the lines between rel's markers replaced by block."""
    begin, end = MARKERS[rel]
    lines = text.split("\n")
    try:
        b = lines.index(begin)
        e = lines.index(end, b + 1)
    except ValueError:
        raise TableError(f"{rel}: the markers are missing; the generated part sits between\n  {begin}\n  {end}")
    return "\n".join(lines[:b + 1] + block + lines[e:])


def check_released(root, rows):
    problems = []
    have = {value: (name, python) for value, name, python, _ in rows}
    path = root / RELEASED
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        value, name, python = line.split()
        python = None if python == "-" else python
        got = have.get(int(value))
        if got is None:
            problems.append(f"{RELEASED}:{lineno}: code {value} {name} has shipped but is gone from {TSV}")
        elif got != (name, python):
            problems.append(f"{RELEASED}:{lineno}: code {value} shipped as {name} ({python or '-'}); {TSV} "
                            f"now says {got[0]} ({got[1] or '-'}): shipped codes never change")
    return problems


def copies(root, rows):
    """{relative path: (current text, text as the table wants it)}."""
    out = {}
    for rel, block in ((PYTHON, python_block(rows)), (DOCS, docs_block(rows))):
        text = (root / rel).read_text(encoding="utf-8")
        out[rel] = (text, splice(text, rel, block))
    return out


def main(argv):
    if len(argv) == 4 and argv[1] in ("header", "names"):
        text = (c_header if argv[1] == "header" else c_names)(read_table(argv[2]))
        out = Path(argv[3])
        # Unchanged output keeps its mtime: meson reruns this at every
        # reconfigure, and a touched errors.h would rebuild everything.
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            out.write_text(text, encoding="utf-8")
        return 0
    if len(argv) in (2, 3) and argv[1] in ("check", "update"):
        root = Path(argv[2] if len(argv) == 3 else Path(__file__).resolve().parents[1])
        rows = read_table(root / TSV)
        if argv[1] == "update":
            for rel, (old, new) in copies(root, rows).items():
                if old != new:
                    (root / rel).write_text(new, encoding="utf-8")
                    print(f"errors: rewrote {rel}")
            return 0
        problems = check_released(root, rows)
        for rel, (old, new) in copies(root, rows).items():
            if old != new:
                diff = difflib.unified_diff(old.splitlines(), new.splitlines(), rel, f"{rel} (from {TSV})",
                                            lineterm="", n=1)
                problems.append(f"{rel} disagrees with {TSV}; `scripts/gen-errors.py update` rewrites it:\n"
                                + "\n".join(diff))
        for p in problems:
            print("errors:", p)
        if not problems:
            print(f"errors ok: {len(rows) - 1} codes, {PYTHON} and {DOCS} match {TSV}")
        return 1 if problems else 0
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except TableError as e:
        print("errors:", e, file=sys.stderr)
        sys.exit(1)

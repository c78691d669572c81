#!/bin/sh
# The ABI gate: libabigail's abidiff between the shipped ABI
# (tests/abi/libbanger.abi) and the library just built. It fails on a removed
# or changed function or variable, or a changed type that one reaches (a
# parameter's type, a public struct); added functions pass, as the version
# script's new node (lib/libbanger.map) allows. The types are those of the
# public headers; the layout of opaque types (struct banger_ctx …) is private.
#
# Usage: tests/abi/abidiff.sh SOURCE_DIR BUILD_DIR LIBRARY           (check)
#        tests/abi/abidiff.sh --update SOURCE_DIR BUILD_DIR LIBRARY  (new baseline)
#
# The baseline holds the functions of the shipped nodes only, those that
# tests/abi/released.txt lists: functions of the node still in development
# (BANGER_0.2 today) count as added and may change until they ship. When a
# release ships, append its node's lines to released.txt, then, with that tree
# built (`meson setup build && ninja -C build`; it needs debug info, which the
# default buildtype has), run from the source root
#   tests/abi/abidiff.sh --update . build build/lib/libbanger.so.0
# and commit tests/abi/libbanger.abi with the release.
#
# abidiff comes from Debian's abigail-tools (scripts/install-deps). Without it
# this test fails; BANGER_ABI_ALLOW_SKIP=1 turns that into a skip (meson's 77),
# for a machine that cannot install it. The CI never sets it.
set -eu
update=0
if [ "${1:-}" = --update ]; then update=1; shift; fi
[ $# = 3 ] || { echo "usage: $0 [--update] SOURCE_DIR BUILD_DIR LIBRARY" >&2; exit 2; }
src=$1 build=$2 lib=$3
baseline=$src/tests/abi/libbanger.abi

for tool in abidw abidiff; do
  if ! command -v $tool >/dev/null 2>&1; then
    echo "abi: $tool not found: install Debian's abigail-tools (scripts/install-deps does)"
    if [ "${BANGER_ABI_ALLOW_SKIP:-0}" = 1 ]; then
      echo "abi: skipped (BANGER_ABI_ALLOW_SKIP=1)"; exit 77
    fi
    exit 1
  fi
done
if ! readelf -S "$lib" | grep -q '\.debug_info'; then
  # Without DWARF, abidw sees symbols only and every type check would pass
  # unseen: say so rather than pass.
  echo "abi: $lib has no debug info, so its types cannot be compared: build with -g" \
       "(the default buildtype, debugoptimized, has it)"
  exit 77
fi

# Public types: those declared under include/ (and the generated banger/*.h).
# Locations, paths and DT_NEEDED are left out so the dump changes only when the
# ABI does (a sanitized build needs libasan; the baseline must not care).
dump() {
  out=$1; shift
  abidw --no-corpus-path --no-show-locs --no-comp-dir-path --no-elf-needed \
    --type-id-style hash --drop-private-types --exported-interfaces-only \
    --headers-dir "$src/include" --headers-dir "$build/include" "$@" --out-file "$out" "$lib"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ $update = 1 ]; then
  # Drop every function whose symbol no shipped node holds.
  shipped=$(awk '!/^#/ && NF { print $2 }' "$src/tests/abi/released.txt" | sort -u | paste -sd'|')
  [ -n "$shipped" ] || { echo "abi: tests/abi/released.txt lists no symbol"; exit 1; }
  printf '[suppress_function]\n  symbol_name_not_regexp = ^(%s)$\n  drop = yes\n' "$shipped" >"$tmp/unshipped.suppr"
  dump "$baseline" --suppressions "$tmp/unshipped.suppr"
  echo "abi: wrote $baseline from $lib ($(grep -c '<function-decl' "$baseline") shipped functions)"
  exit 0
fi
dump "$tmp/current.abi"

# abidiff's status is a bit mask: 1 error, 2 usage, 4 a change, 8 an
# incompatible change. --no-added-syms leaves out added functions and
# variables, so any change left is one a program built against the baseline
# could notice.
set +e
abidiff --no-added-syms "$baseline" "$tmp/current.abi" >"$tmp/report" 2>&1
rc=$?
set -e
if [ $rc = 0 ]; then
  abidiff --added-fns --added-vars "$baseline" "$tmp/current.abi" >"$tmp/added" 2>&1 || true
  added=$(grep -c '^  \[A\]' "$tmp/added" || true)
  echo "abi ok: no change against tests/abi/libbanger.abi ($added functions or variables added)"
  exit 0
fi
cat "$tmp/report"
if [ $((rc & 3)) != 0 ]; then
  echo "abi: abidiff failed (status $rc)"
else
  echo "abi: the ABI changed against tests/abi/libbanger.abi (abidiff status $rc): a program built" \
       "against the shipped library may break. Undo the change, or add a new function instead" \
       "(docs/architecture.md, \"ABI\"); the baseline changes only when a release ships."
fi
exit 1

#!/bin/sh
# Runs every libFuzzer target for SECONDS each, on a scratch copy of its
# seed corpus (tests/fuzz/corpus/<name>/), and fails if any target finds a
# crash, leak, timeout or broken invariant. Crash inputs are kept in
# BUILDDIR/fuzz-artifacts/. Usage: tests/fuzz/run.sh BUILDDIR SECONDS
set -eu
if [ $# -ne 2 ]; then
	echo "usage: $0 BUILDDIR SECONDS" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
secs=$2
src=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts"

# name:max_len, one a line (branches add targets without touching others)
targets="
toml:4096
frame:16384
agent:140000
oci_ref:2048
oci_manifest:65536
bzimage:65536
agent_guest:140000
tar_ext4:65536
deb:65536
dns:65536
"

# Seed regression: every tar seed applied must also pass e2fsck -fn (too
# slow for the fuzzing loop, where libext2fs's own reading checks it).
fsck_exe=$build/tests/fuzz/fuzz_tar_ext4
if [ -x "$fsck_exe" ] && command -v e2fsck >/dev/null 2>&1; then
	echo "== fuzz_tar_ext4 seeds through e2fsck -fn"
	if ! BANGER_FUZZ_FSCK=1 "$fsck_exe" "$src/corpus/tar_ext4/"* >"$work/fsck.log" 2>&1; then
		tail -n 40 "$work/fsck.log"
		echo "fuzz_tar_ext4: a seed's image fails e2fsck -fn" >&2
		exit 1
	fi
fi

failed=""
for target in $targets; do
	name=${target%%:*}
	max_len=${target#*:}
	exe=$build/tests/fuzz/fuzz_$name
	if [ ! -x "$exe" ]; then
		echo "fuzz_$name: not built in $build (meson setup with CC=clang -Dfuzz=true)" >&2
		exit 2
	fi
	mkdir -p "$work/$name"
	cp "$src/corpus/$name/"* "$work/$name/"
	echo "== fuzz_$name for ${secs}s"
	if "$exe" -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$artifacts/$name-" "$work/$name" >"$work/$name.log" 2>&1; then
		grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$name.log" || true
	else
		tail -n 60 "$work/$name.log"
		echo "fuzz_$name FAILED; reproduce with: $exe $artifacts/$name-<crash-file>" >&2
		failed="$failed fuzz_$name"
	fi
done
if [ -n "$failed" ]; then
	echo "failed:$failed" >&2
	exit 1
fi
echo "all fuzz targets ran ${secs}s without findings"

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

failed=""
for target in toml:4096 frame:16384 agent:140000 dns:65536; do
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

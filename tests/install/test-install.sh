#!/bin/sh
# Installs the build into a scratch DESTDIR and builds tiny.c against it with
# nothing but pkg-config, then runs it. Args: builddir tiny.c b_sanitize
set -eu
build=$1 src=$2 sanitize=${3:-none}
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >/dev/null
pc=$(find "$dest" -name banger.pc | head -1)
[ -n "$pc" ] || { echo "banger.pc not installed"; exit 1; }
test -f "$(dirname "$pc")/../../include/banger.h" || test -n "$(find "$dest" -name banger.h)"
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$dest
extra=""
[ "$sanitize" = none ] || extra="-fsanitize=$sanitize"
cc -Wall -Wextra -Werror $extra -o "$dest/tiny" "$src" $(pkg-config --cflags --libs banger)
libdir=$(dirname "$(find "$dest" -name 'libbanger.so.0' | head -1)")
soname=$(objdump -p "$libdir/libbanger.so.0" | awk '/SONAME/ {print $2}')
[ "$soname" = libbanger.so.0 ] || { echo "unexpected soname '$soname'"; exit 1; }
# only banger_* symbols are exported
bad=$(nm -D --defined-only "$libdir/libbanger.so.0" | awk '$2 ~ /[TDB]/ && $3 !~ /^banger_/ {print $3}' | head -5)
[ -z "$bad" ] || { echo "unexpected exported symbols: $bad"; exit 1; }
BANGER_CONFIG_DIR=$dest/cfg LD_LIBRARY_PATH=$libdir "$dest/tiny" "local:$dest/state"

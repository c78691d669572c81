#!/bin/sh
# Every public header compiles alone, as C99 with -pedantic -Werror and as
# C++ (an embedder may include any one of them first, from either language).
# Usage: tests/headers.sh SOURCE_DIR BUILD_DIR
set -eu
src=$1 build=$2
inc="-I$src/include -I$build/include"
fail=0
for h in "$src/include/banger.h" "$src"/include/banger/*.h "$build"/include/banger/*.h; do
  [ -f "$h" ] || continue
  name=${h##*/include/}
  if ! printf '#include <%s>\nint banger_header_test;\n' "$name" | cc -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only $inc -x c - ; then
    echo "headers: $name does not compile alone as C99"; fail=1
  fi
  if ! printf '#include <%s>\nint banger_header_test;\n' "$name" | c++ -std=c++11 -pedantic -Wall -Wextra -Werror -fsyntax-only $inc -x c++ - ; then
    echo "headers: $name does not compile alone as C++"; fail=1
  fi
done
[ $fail = 0 ] && echo "headers ok"
exit $fail

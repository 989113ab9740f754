#!/usr/bin/env bash
# Usage: check-header.sh HEADER STATIC_LIB "LDLIBS"
# Checks that the public header compiles on its own as C99 and as C++17 (pedantic, every warning an
# error), and that header/use_header.c, compiled as C and as C++, links against the static library
# and runs: a C++ program can call the library only when the header has extern "C" guards.
set -euo pipefail
header=${1:?usage: check-header.sh HEADER STATIC_LIB LDLIBS}
lib=${2:?usage: check-header.sh HEADER STATIC_LIB LDLIBS}
ldlibs=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
CC=${CC:-cc}
CXX=${CXX:-c++}
c_flags=(-std=c99 -Wall -Wextra -Werror -pedantic)
cxx_flags=(-std=c++17 -Wall -Wextra -Werror -pedantic)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "check-header: $header alone as C99"
"$CC" "${c_flags[@]}" -fsyntax-only -x c "$header"
echo "check-header: $header alone as C++17"
"$CXX" "${cxx_flags[@]}" -fsyntax-only -x c++ "$header"

inc=$(dirname "$header")
# shellcheck disable=SC2086 # ldlibs is a list of linker flags
"$CC" "${c_flags[@]}" -I"$inc" -o "$tmp/use_c" -x c "$here/header/use_header.c" -x none "$lib" $ldlibs
# shellcheck disable=SC2086
"$CXX" "${cxx_flags[@]}" -I"$inc" -o "$tmp/use_cxx" -x c++ "$here/header/use_header.c" -x none "$lib" $ldlibs
for prog in use_c use_cxx; do
  out=$("$tmp/$prog")
  echo "check-header: $prog: $out"
done

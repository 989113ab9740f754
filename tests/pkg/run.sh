#!/usr/bin/env bash
# Usage: tests/pkg/run.sh MODEL   (`make test-pkg` runs it after check-symbols and check-header-compile)
# MODEL is the default SmolLM2-135M-Instruct.Q4_1.gguf: its greedy continuation of "The capital of
# France is" must contain "Paris".
#
# Tests chord as an installed C library, the way a user meets it:
#  1. `make install PREFIX=<temp>`: file layout, symlinks, SONAME, exported symbols, chord.pc; the
#     shared library stripped with its debug information in lib/.debug (gdb finds it through the
#     debug link), the static library without debug information; the installed sizes printed.
#  2. The consumers tests/pkg/c (C99) and tests/pkg/cxx (C++17), each built out of tree through
#     pkg-config and through CMake find_package, linked to libchord.so and to libchord.a (8 builds),
#     then run on MODEL. Shared builds must load the installed libchord.so.<ABI> (pkg-config builds
#     with LD_LIBRARY_PATH=<prefix>/lib, CMake builds through their rpath), static builds must not
#     need it. All 8 must print the same lines.
#  3. find_package with an incompatible version fails; the symbol check rejects a leaking library.
#  4. `make install DESTDIR=<stage> PREFIX=/opt/chord` stages files that name /opt/chord, and
#     `make uninstall` with the same arguments removes them all.
set -euo pipefail
model=${1:?usage: tests/pkg/run.sh MODEL}
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tests/pkg
CC=${CC:-cc}
CXX=${CXX:-c++}
MAKE=${MAKE:-make}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/chord-pkg.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
abi=$(sed -n 's/^#define CHORD_ABI_VERSION \([0-9][0-9]*\)$/\1/p' "$root/include/chord.h")
version=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml")
[ -n "$abi" ] && [ -n "$version" ] || { echo "test-pkg: cannot read the ABI or the version" >&2; exit 1; }
[ -f "$model" ] || { echo "test-pkg: no model at $model" >&2; exit 1; }

fail() { echo "test-pkg: FAIL: $*" >&2; exit 1; }
step() { echo "== test-pkg: $*"; }
# Runs a command quietly, showing its output only when it fails.
quiet() {
  local log=$tmp/quiet.log
  "$@" >"$log" 2>&1 || { cat "$log" >&2; fail "$*"; }
}
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

step "symbol check rejects a library that leaks a symbol"
printf 'int chord_abi_version(void) { return 1; }\n' >"$tmp/decoy.c"
printf 'int leaked_helper(void) { return 2; }\n' >"$tmp/leak.c"
"$CC" -shared -fPIC -o "$tmp/libclean.so" "$tmp/decoy.c"
"$CC" -shared -fPIC -o "$tmp/libleak.so" "$tmp/decoy.c" "$tmp/leak.c"
quiet "$here/check-symbols.sh" "$tmp/libclean.so"
if "$here/check-symbols.sh" "$tmp/libleak.so" >/dev/null 2>&1; then fail "check-symbols accepted leaked_helper"; fi

prefix=$tmp/prefix
lib=$prefix/lib
real=libchord.so.$abi.$version
step "make install PREFIX=$prefix"
quiet "$MAKE" -C "$root" --no-print-directory install PREFIX="$prefix"
cmp "$root/include/chord.h" "$prefix/include/chord.h" || fail "installed chord.h differs"
[ -f "$lib/libchord.a" ] || fail "no libchord.a"
[ -f "$lib/$real" ] && [ ! -L "$lib/$real" ] || fail "no $real"
[ "$(readlink "$lib/libchord.so.$abi")" = "$real" ] || fail "libchord.so.$abi does not point to $real"
[ "$(readlink "$lib/libchord.so")" = "libchord.so.$abi" ] || fail "libchord.so does not point to libchord.so.$abi"
soname=$(readelf -d "$lib/$real" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libchord.so.$abi" ] || fail "SONAME is '$soname', want libchord.so.$abi"
"$here/check-symbols.sh" "$lib/$real"
! readelf -S "$lib/$real" | grep -q '\.debug_info' || fail "$real keeps its debug information"
readelf -S "$lib/.debug/$real.debug" | grep -q '\.debug_info' || fail "no debug information in .debug/$real.debug"
[ "$(readelf -p .gnu_debuglink "$lib/$real" | sed -n 's/^ *\[ *0\] *//p')" = "$real.debug" ] || fail "no debug link to $real.debug"
! readelf -S "$lib/libchord.a" 2>/dev/null | grep -q '\.debug_info' || fail "libchord.a keeps its debug information"
if command -v gdb >/dev/null; then
  gdb -batch -ex "info line chord_abi_version" "$lib/$real" 2>&1 | grep -q 'Line [0-9]* of "src/ffi/' \
    || fail "gdb does not find the debug information of $real"
fi
echo "installed sizes: $(du -b "$lib/$real" | cut -f1) bytes $real, $(du -b "$lib/libchord.a" | cut -f1) bytes libchord.a, $(du -b "$lib/.debug/$real.debug" | cut -f1) bytes .debug/$real.debug"
for f in pkgconfig/chord.pc cmake/chord/chordConfig.cmake cmake/chord/chordConfigVersion.cmake; do
  [ -f "$lib/$f" ] || fail "no $lib/$f"
done

step "pkg-config"
export PKG_CONFIG_PATH=$lib/pkgconfig
pkg-config --validate chord || fail "chord.pc does not validate"
[ "$(pkg-config --modversion chord)" = "$version" ] || fail "pkg-config version $(pkg-config --modversion chord)"
[ "$(pkg-config --variable=abi_version chord)" = "$abi" ] || fail "pkg-config abi_version"
[ "$(pkg-config --variable=libdir chord)" = "$lib" ] || fail "pkg-config libdir"
static_libs=" $(pkg-config --static --libs chord) "
for l in -lchord -lpthread -ldl -lm; do
  case "$static_libs" in *" $l "*) ;; *) fail "pkg-config --static --libs lacks $l:$static_libs" ;; esac
done
echo "pkg-config --static --libs chord:$static_libs"

step "find_package(chord) refuses an incompatible version"
if cmake -S "$here/c" -B "$tmp/build/too-new" -DCMAKE_PREFIX_PATH="$prefix" \
     -DCHORD_WANT_VERSION="$((${version%%.*} + 1)).0" >"$tmp/too-new.log" 2>&1; then
  fail "find_package(chord $((${version%%.*} + 1)).0) accepted chord $version"
fi
grep -q 'that is compatible' "$tmp/too-new.log" || { cat "$tmp/too-new.log" >&2; fail "CMake failed otherwise"; }

# build_pc LANG LINK / build_cmake LANG LINK: build tests/pkg/LANG (c or cxx), LINK shared or
# static, into $tmp/bin/<via>-LANG-LINK.
build_pc() {
  local lang=$1 link=$2 out=$tmp/bin/pkgconfig-$1-$2 libs
  if [ "$link" = shared ]; then
    libs=$(pkg-config --libs chord)
  else
    # -l:libchord.a: the archive, although libchord.so sits next to it.
    libs=$(pkg-config --static --libs chord | sed 's/-lchord\b/-l:libchord.a/')
  fi
  # shellcheck disable=SC2046,SC2086 # pkg-config output is a list of flags
  if [ "$lang" = c ]; then
    quiet "$CC" -std=c99 -Wall -Wextra -Werror -pedantic $(pkg-config --cflags chord) -o "$out" "$here/c/main.c" $libs
  else
    quiet "$CXX" -std=c++17 -Wall -Wextra -Werror -pedantic $(pkg-config --cflags chord) -o "$out" "$here/cxx/main.cpp" $libs
  fi
}
build_cmake() {
  local lang=$1 link=$2 dir=$tmp/build/cmake-$1-$2 static=OFF
  [ "$link" = static ] && static=ON
  quiet cmake -S "$here/$lang" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
    -DCHORD_WANT_VERSION="$version" -DCHORD_CONSUMER_STATIC="$static"
  grep -qx "chord_DIR:PATH=$lib/cmake/chord" "$dir/CMakeCache.txt" || fail "CMake found chord elsewhere"
  quiet cmake --build "$dir"
  cp "$dir/consumer" "$tmp/bin/cmake-$lang-$link"
}

mkdir -p "$tmp/bin"
first=""
for via in pkgconfig cmake; do
  for lang in c cxx; do
    for link in shared static; do
      name=$via-$lang-$link
      step "$name: build"
      if [ "$via" = pkgconfig ]; then build_pc "$lang" "$link"; else build_cmake "$lang" "$link"; fi
      bin=$tmp/bin/$name
      # pkg-config gives no rpath: those shared builds find the library through LD_LIBRARY_PATH.
      env=(env -u LD_LIBRARY_PATH)
      [ "$via-$link" = pkgconfig-shared ] && env=(env LD_LIBRARY_PATH="$lib")
      if [ "$link" = shared ]; then
        needed "$bin" | grep -qx "libchord.so.$abi" || fail "$name does not need libchord.so.$abi: $(needed "$bin")"
        loaded=$("${env[@]}" ldd "$bin" | sed -n "s/^[[:space:]]*libchord\.so\.$abi => \([^ ]*\).*/\1/p")
        [ "$loaded" = "$lib/libchord.so.$abi" ] || fail "$name loads libchord from '$loaded', not $lib"
      else
        ! needed "$bin" | grep -q '^libchord' || fail "$name (static) needs a shared libchord"
      fi
      step "$name: run"
      "${env[@]}" "$bin" "$model" >"$tmp/$name.out" || fail "$name exited $?"
      cat "$tmp/$name.out"
      if [ -z "$first" ]; then
        first=$name
        sed -n 1p "$tmp/$name.out" | grep -qx "chord $version abi $abi" || fail "$name: wrong version line"
        sed -n 2p "$tmp/$name.out" | grep -qE '^prompt( [0-9]+){2,}$' || fail "$name: no prompt tokens"
        sed -n 3p "$tmp/$name.out" | grep -qE '^greedy( [0-9]+){4}$' || fail "$name: not 4 greedy tokens"
        sed -n 4p "$tmp/$name.out" | grep -qE '^text ".+"$' || fail "$name: no text"
        # SmolLM2 knows this one; a broken build (wrong weights, wrong kernels) does not.
        grep -q '^text ".*Paris' "$tmp/$name.out" || fail "$name: the greedy continuation lacks Paris"
      else
        diff -u "$tmp/$first.out" "$tmp/$name.out" || fail "$name prints other lines than $first"
      fi
    done
  done
done

stage=$tmp/stage
step "make install DESTDIR=$stage PREFIX=/opt/chord, then make uninstall"
quiet "$MAKE" -C "$root" --no-print-directory install DESTDIR="$stage" PREFIX=/opt/chord
[ -f "$stage/opt/chord/lib/$real" ] && [ -L "$stage/opt/chord/lib/libchord.so" ] || fail "DESTDIR layout"
grep -qx 'prefix=/opt/chord' "$stage/opt/chord/lib/pkgconfig/chord.pc" || fail "staged chord.pc names another prefix"
grep -q '"/opt/chord/lib"' "$stage/opt/chord/lib/cmake/chord/chordConfig.cmake" || fail "staged CMake config names another libdir"
! grep -rqF "$stage" "$stage/opt/chord/lib/pkgconfig" "$stage/opt/chord/lib/cmake" || fail "staged files name DESTDIR"
quiet "$MAKE" -C "$root" --no-print-directory uninstall DESTDIR="$stage" PREFIX=/opt/chord
left=$(find "$stage" ! -type d)
[ -z "$left" ] || fail "make uninstall left: $left"

echo "test-pkg: OK (chord $version, ABI $abi; 8 consumer builds agree)"

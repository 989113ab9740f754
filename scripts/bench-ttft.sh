#!/usr/bin/env bash
# Time to first token beside llama.cpp: builds scripts/ttft.c against chord (build/, `make` first)
# and against llama.cpp's libllama, runs each R times alternately in fresh processes (one warm-up run
# each first, so the page cache is warm for both), and prints the median seconds from the start of
# the model load to the first generated token of a 16-token prompt, and chord / llama.cpp.
# Usage: bench-ttft.sh [-t THREADS] [-r REPS] [MODEL...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/env.sh"
threads=2 reps=5
while getopts "t:r:" o; do
  case $o in t) threads=$OPTARG ;; r) reps=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- "$CHORD_DEFAULT_MODEL"
root="$here/.."
[ -f "$root/target/release/libchord.a" ] || { echo "build chord first (make)" >&2; exit 1; }
[ -f "$LLAMA_CPP_NATIVE_BIN/libllama.so" ] || "$here/build-llamacpp.sh"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc=${CC:-cc}
$cc -O2 -std=c99 -Wall -Wextra -Werror -I"$root/include" -o "$out/ttft-chord" "$here/ttft.c" \
  "$root/target/release/libchord.a" -lpthread -ldl -lm
$cc -O2 -std=c99 -Wall -Wextra -DTTFT_LLAMA -I"$LLAMA_CPP_DIR/include" -I"$LLAMA_CPP_DIR/ggml/include" \
  -o "$out/ttft-llama" "$here/ttft.c" -L"$LLAMA_CPP_NATIVE_BIN" -lllama -Wl,-rpath,"$LLAMA_CPP_NATIVE_BIN"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $threads threads, 16-token prompt, median of $reps runs each"
printf '%-40s %12s %12s %7s %s\n' model "llama s" "chord s" ratio "first token (llama, chord)"
for m in "$@"; do
  "$out/ttft-llama" "$m" "$threads" >/dev/null
  "$out/ttft-chord" "$m" "$threads" >/dev/null
  : >"$out/l"; : >"$out/c"
  for _ in $(seq "$reps"); do
    "$out/ttft-llama" "$m" "$threads" >>"$out/l"
    "$out/ttft-chord" "$m" "$threads" >>"$out/c"
  done
  python3 - "$m" "$out/l" "$out/c" <<'PY'
import os, statistics, sys
name = os.path.basename(sys.argv[1])
rows = [[line.split() for line in open(p)] for p in sys.argv[2:4]]
(lt, ct) = (statistics.median(float(r[0]) for r in rs) for rs in rows)
(ltok, ctok) = (rs[0][1] for rs in rows)
print(f"{name:40s} {lt:12.4f} {ct:12.4f} {ct / lt:7.2f} {ltok}, {ctok}")
PY
done

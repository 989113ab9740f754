#!/usr/bin/env bash
# Measures chord beside llama.cpp on the same files, same thread count, alternating runs:
# llama-bench (pp, tg) and `chord bench --json`, medians of R runs each, and prints the ratios.
# With -d DEPTH both measure after DEPTH tokens already in the context (llama-bench's -d).
# Usage: bench-vs-llamacpp.sh [-t THREADS] [-p N_PROMPT] [-n N_GEN] [-d DEPTH] [-r REPS] [MODEL...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/env.sh"
threads=2 pp=128 tg=32 reps=3 depth=0
while getopts "t:p:n:d:r:" o; do
  case $o in t) threads=$OPTARG ;; p) pp=$OPTARG ;; n) tg=$OPTARG ;; d) depth=$OPTARG ;; r) reps=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- "$CHORD_DEFAULT_MODEL"
chord="${CHORD_BIN:-$here/../build/bin/chord}"
[ -x "$chord" ] || { echo "build chord first (make)" >&2; exit 1; }
[ -x "$LLAMA_CPP_NATIVE_BIN/llama-bench" ] || "$here/build-llamacpp.sh"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $threads threads, pp$pp tg$tg depth $depth, median of $reps runs each"
echo "llama.cpp: the native build for this CPU ($(basename "$LLAMA_CPP_NATIVE_BUILD"))"
printf '%-40s %10s %10s %7s %10s %10s %7s\n' model "llama pp" "chord pp" ratio "llama tg" "chord tg" ratio
for m in "$@"; do
  lj=$(LD_LIBRARY_PATH="$LLAMA_CPP_NATIVE_BIN" "$LLAMA_CPP_NATIVE_BIN/llama-bench" -m "$m" -t "$threads" -p "$pp" -n "$tg" -d "$depth" -r "$reps" -o json 2>/dev/null)
  cj=$("$chord" bench -m "$m" --threads "$threads" -p "$pp" -n "$tg" -d "$depth" -r "$reps" --json)
  python3 - "$m" "$lj" "$cj" <<'PY'
import json, os, statistics, sys
name, lj, cj = os.path.basename(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
# llama-bench reports a mean; its per-run samples give the median, as chord bench reports.
lpp = next(statistics.median(r["samples_ts"]) for r in lj if r["n_prompt"] > 0 and r["n_gen"] == 0)
ltg = next(statistics.median(r["samples_ts"]) for r in lj if r["n_gen"] > 0 and r["n_prompt"] == 0)
cpp, ctg = cj["prefill_tok_s"], cj["decode_tok_s"]
print(f"{name:40s} {lpp:10.1f} {cpp:10.1f} {cpp / lpp:7.2f} {ltg:10.1f} {ctg:10.1f} {ctg / ltg:7.2f}")
PY
done

#!/usr/bin/env bash
# Runs chord's fuzz targets (fuzz/fuzz_targets, cargo-fuzz + libFuzzer, AddressSanitizer) for
# SECONDS each, from the committed corpus fuzz/corpus/TARGET plus what earlier runs found
# (build/fuzz/corpus/TARGET, where new inputs go). Crashes, leaks, timeouts (20 s per input) and
# inputs that need more than 2 GiB are failures; libFuzzer writes the input to
# build/fuzz/artifacts/TARGET/. Prints each target's executions and coverage, and exits 1 when
# any target failed.
#
# Usage: scripts/fuzz.sh SECONDS [TARGET ...]     (default: every target)
# With FUZZ_CI=1 (make test) each target starts from seed 1 and stops after at most the number of
# executions it makes here in 60 s, so that CI repeats (a prefix of) a run that passed before it
# landed instead of meeting new findings at random: those are for `make fuzz`.
# Needs the nightly toolchain and cargo-fuzz (installed from crates.io when missing), and the
# test models of scripts/fetch-test-data.sh (vocabularies and the tiny random model).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
secs=${1:?usage: scripts/fuzz.sh SECONDS [TARGET ...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf tokenizer chat_template state grammar json_schema)

cargo +nightly --version >/dev/null 2>&1 || {
  echo "fuzz: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
  exit 1
}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz --version 0.13.2
# A target dir of its own: the sanitizer flags must not overwrite the normal build's artifacts.
tdir=${CHORD_FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/fuzz}
s=$(date +%s)
mkdir -p build/fuzz
cargo +nightly fuzz build -O --debug-assertions --target-dir "$tdir" >build/fuzz/build.log 2>&1 || {
  tail -40 build/fuzz/build.log >&2
  echo "fuzz: the build failed (build/fuzz/build.log)" >&2
  exit 1
}
echo "== fuzz build: $(( $(date +%s) - s )) s"

for m in "$CHORD_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf" "$CHORD_GEMMA3_MODEL" "$CHORD_MODELS/tiny-random.Q4_1.gguf"; do
  [ -f "$m" ] || { echo "fuzz: missing $m (run scripts/fetch-test-data.sh)" >&2; exit 1; }
done
export CHORD_FUZZ_BPE="$CHORD_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"
export CHORD_FUZZ_SPM="$CHORD_GEMMA3_MODEL"
export CHORD_FUZZ_MODEL="$CHORD_MODELS/tiny-random.Q4_1.gguf"

failed=()
for t in "${targets[@]}"; do
  work=build/fuzz/corpus/$t
  art=build/fuzz/artifacts/$t
  mkdir -p "$work" "$art"
  max_len=8192
  [ "$t" = gguf ] && max_len=65536
  opts=(-max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=2048
        -max_len=$max_len -artifact_prefix="$art/" -print_final_stats=1)
  [ -f "fuzz/dicts/$t.dict" ] && opts+=(-dict="fuzz/dicts/$t.dict")
  if [ "${FUZZ_CI:-0}" = 1 ]; then
    case $t in
      gguf) runs=8000 ;; tokenizer) runs=50000 ;; chat_template) runs=85000 ;;
      state) runs=24000 ;; grammar) runs=27000 ;; *) runs=400000 ;;
    esac
    opts+=(-seed=1 -runs=$runs)
  fi
  log=build/fuzz/$t.log
  rc=0
  "$tdir/x86_64-unknown-linux-gnu/release/$t" "${opts[@]}" "$work" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  runs=$(grep -o "stat::number_of_executed_units: *[0-9]*" "$log" | grep -o "[0-9]*$" || echo 0)
  last=$(grep -o "#[0-9]*[^#]*cov: [0-9]* ft: [0-9]* corp: [0-9]*" "$log" | tail -1 || true)
  echo "== fuzz $t: ${secs} s, ${runs:-0} executions, ${last#* } (exit $rc)"
  if [ $rc -ne 0 ]; then
    failed+=("$t")
    grep -A30 "ERROR\|panicked\|SUMMARY" "$log" | head -60 >&2
    ls -1 "$art" >&2
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: failed: ${failed[*]} (logs in build/fuzz/)" >&2; exit 1; }

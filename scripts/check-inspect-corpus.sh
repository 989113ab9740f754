#!/usr/bin/env bash
# Runs `chord inspect` on every file of the malformed-GGUF corpus (see tests/gguf_malformed.rs) and
# checks that each fails cleanly (exit 1, no signal) with its expected status named on stderr.
# Usage: check-inspect-corpus.sh CHORD_BIN CORPUS_DIR
set -uo pipefail
chord="$1" dir="$2"
pass=0 fail=0
while IFS=$'\t' read -r file code; do
  err=$("$chord" inspect -m "$dir/$file" 2>&1 >/dev/null)
  rc=$?
  if [ "$rc" -eq 1 ] && [[ "$err" == *"($code)"* ]] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL inspect $file: exit $rc, want $code, stderr: $err"
  fi
done <"$dir/expected.tsv"
echo "chord inspect on the malformed-GGUF corpus: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

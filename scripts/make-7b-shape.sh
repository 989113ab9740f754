#!/usr/bin/env bash
# Makes the Llama-2-7B-shape random model of issue 16 (models bigger than the machine):
# $CHORD_MODELS/llama2-7b-shape-random.Q4_K_M.gguf, about 3.9 GB, from an F16 file of 13.5 GB that
# is deleted afterwards (so it needs ~18 GB free while it runs). Not part of `make test`: the test
# suite's models are made by fetch-test-data.sh; this one is for scripts/bench-small-machine.py.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/env.sh"
out="$CHORD_MODELS/llama2-7b-shape-random.Q4_K_M.gguf"
[ -s "$out" ] && { echo "$out"; exit 0; }
f16="$CHORD_MODELS/llama2-7b-shape-random.F16.gguf"
need=$((19 * 1024 * 1024))
free=$(df -Pk "$CHORD_MODELS" | awk 'NR == 2 {print $4}')
[ "$free" -ge "$need" ] || { echo "chord: need 19 GB free in $CHORD_MODELS for the F16 file, have $((free / 1024 / 1024)) GB" >&2; exit 1; }
if [ ! -s "$f16" ]; then
  echo "chord: writing the Llama-2-7B-shape random model (F16, 13.5 GB)..." >&2
  "$CHORD_VENV/bin/python" "$here/make-random-model.py" llama2-7b "$LLAMA_CPP_DIR/models/ggml-vocab-llama-spm.gguf" "$f16.part"
  mv "$f16.part" "$f16"
fi
echo "chord: quantizing it to Q4_K_M..." >&2
"$LLAMA_CPP_PINNED_BIN/llama-quantize" "$f16" "$out.part" Q4_K_M >"$CHORD_CACHE/quantize-llama2-7b-Q4_K_M.log" 2>&1 \
  || { echo "chord: llama-quantize failed, see $CHORD_CACHE/quantize-llama2-7b-Q4_K_M.log" >&2; exit 1; }
mv "$out.part" "$out"
rm -f "$f16"
echo "$out"

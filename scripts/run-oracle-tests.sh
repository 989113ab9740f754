#!/usr/bin/env bash
# Checks chord against llama.cpp (the oracle) on SmolLM2-135M in every tensor format: per-position
# distributions over 1,024 tokens of real English text, and greedy continuations of 10 prompts.
# Usage: run-oracle-tests.sh CHORD_BIN [MODEL...]   (default: the Q4_1 file and its 10 requantized variants)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/env.sh"
chord="$1"; shift
if [ $# -eq 0 ]; then
  set -- "$CHORD_MODELS"/SmolLM2-135M-Instruct.{Q4_1,F16,BF16,Q8_0,Q4_0,Q5_0,Q5_1,Q3_K_M,Q4_K_M,Q5_K_M,Q6_K}.gguf
fi
LLAMA_CPP_LIB_PATH="$LLAMA_CPP_BIN" exec "$CHORD_VENV/bin/python" "$here/compare-llamacpp.py" \
  --chord "$chord" --text "$here/../tests/data/text/gpl-3.0-excerpt.txt" "$@"

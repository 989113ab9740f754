#!/usr/bin/env bash
# Checks chord against llama.cpp (the oracle) on SmolLM2-135M in every tensor format, on the real
# Gemma 3 270M file, and on the random-weight models of the other architectures
# (scripts/make-random-model.py: Llama 3 with its BPE vocabulary and llama3 RoPE frequency factors;
# qwen2 with biases, NEOX RoPE and a tied head; qwen3 with per-head
# q/k norms and wide heads; gemma, gemma2 and gemma3 with GeGLU, scaled embeddings, post-norms,
# sliding windows and soft caps; phi3 with fused QKV and gate+up matrices) in F16, Q8_0, Q4_K_M and
# Q6_K (scripts/compare-llamacpp.py says how):
#  1. strict, against the pinned AVX2 build, with chord on its AVX2 path: logits of 1,024 tokens of
#     real English text bit for bit, and greedy continuations of 10 prompts equal;
#  1b. log-probabilities (`chord generate --logprobs 5`) against llama-cpp-python's `logprobs` on
#     the pinned build, within 1e-4, on SmolLM2 and the 152K-token qwen2 vocabulary
#     (scripts/compare-logprobs.py);
#  1c. embeddings (`chord embed`) against llama-cpp-python's `embed` on the pinned build, 20 texts
#     pooled as the mean, CLS and last token, within 1e-4 (scripts/compare-embeddings.py);
#  2. reference, against this machine's native llama.cpp build, with chord on its own path: both
#     held against the exact float64 forward pass (scripts/reference_forward.py), figures printed
#     (every SmolLM2 file, the real Gemma 3 file and the qwen2, qwen3 and phi3 Q4_K_M files; the
#     other random models are bit-identical in part 1 and CI time is kept for that);
#  3. the same with chord on its portable path (CHORD_ISA=scalar, what CPUs without AVX2 run), on
#     one file (it is slower).
# Usage: run-oracle-tests.sh CHORD_BIN [MODEL...]   (default: the files above; given files get all three)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/env.sh"
chord="$1"; shift
if [ $# -eq 0 ]; then
  smol=("$CHORD_MODELS"/SmolLM2-135M-Instruct.{Q4_1,F16,BF16,Q8_0,Q4_0,Q5_0,Q5_1,Q3_K_M,Q4_K_M,Q5_K_M,Q6_K}.gguf)
  set -- "${smol[@]}" "$CHORD_GEMMA3_MODEL" \
    "$CHORD_MODELS"/{llama3,qwen2,qwen3,gemma,gemma2,gemma3,phi3}-shape-random.{F16,Q8_0,Q4_K_M,Q6_K}.gguf
  reference_models=("${smol[@]}" "$CHORD_GEMMA3_MODEL" \
    "$CHORD_MODELS"/{qwen2,qwen3,phi3}-shape-random.Q4_K_M.gguf)
  scalar_models=("$CHORD_MODELS/SmolLM2-135M-Instruct.Q4_K_M.gguf")
else
  reference_models=("$@")
  scalar_models=("$1")
fi
text="$here/../tests/data/text/gpl-3.0-excerpt.txt"
status=0
echo "== strict: bit identity with the pinned llama.cpp oracle ($(basename "$LLAMA_CPP_PINNED_BUILD")), chord CHORD_ISA=avx2"
CHORD_ISA=avx2 LLAMA_CPP_LIB_PATH="$LLAMA_CPP_PINNED_BIN" "$CHORD_VENV/bin/python" "$here/compare-llamacpp.py" \
  --mode strict --chord "$chord" --text "$text" "$@" || status=1
echo "== log-probabilities: chord generate --logprobs against llama.cpp's (pinned oracle), within 1e-4"
CHORD_ISA=avx2 LLAMA_CPP_LIB_PATH="$LLAMA_CPP_PINNED_BIN" "$CHORD_VENV/bin/python" "$here/compare-logprobs.py" \
  --chord "$chord" "$CHORD_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf" "$CHORD_MODELS/qwen2-shape-random.Q4_K_M.gguf" || status=1
echo "== embeddings: chord embed against llama.cpp's (pinned oracle), 20 texts, mean/CLS/last pooling, within 1e-4"
CHORD_ISA=avx2 LLAMA_CPP_LIB_PATH="$LLAMA_CPP_PINNED_BIN" "$CHORD_VENV/bin/python" "$here/compare-embeddings.py" \
  --chord "$chord" "$CHORD_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf" || status=1
echo "== reference: chord ($("$chord" inspect -m "$1" | sed -n "s/^compute: //p")) and the native llama.cpp build ($(basename "$LLAMA_CPP_NATIVE_BUILD")) against the exact float64 forward pass"
LLAMA_CPP_LIB_PATH="$LLAMA_CPP_NATIVE_BIN" "$CHORD_VENV/bin/python" "$here/compare-llamacpp.py" \
  --mode reference --chord "$chord" --text "$text" "${reference_models[@]}" || status=1
echo "== reference, chord on its portable path: CHORD_ISA=scalar"
CHORD_ISA=scalar LLAMA_CPP_LIB_PATH="$LLAMA_CPP_NATIVE_BIN" "$CHORD_VENV/bin/python" "$here/compare-llamacpp.py" \
  --mode reference --chord "$chord" --text "$text" "${scalar_models[@]}" || status=1
exit $status

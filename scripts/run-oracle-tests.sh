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
# What runs (CI keeps to 60 minutes from an empty cache, so by default it runs a cover, not the product):
#   default (CI): strict on every SmolLM2 file (1,024 tokens, greedy 4 prompts x 32 tokens), the real
#     Gemma 3 file (1,024 tokens: its window is 512) and eight random models that give each family one
#     or two formats and each format (F16, Q8_0, Q4_K_M, Q6_K) one to three families (512 tokens;
#     their windows are 256 and 128); reference on four files of 512 tokens; scalar on 256 tokens.
#     About 15 minutes on 2 cores.
#   CHORD_ORACLE=all: every file above in every format, 1,024 tokens, greedy 10 prompts x 64 tokens,
#     reference on 15 files at 1,024 tokens (about 70 minutes on 2 cores: run it after changing a
#     kernel or a family).
# Usage: run-oracle-tests.sh CHORD_BIN [MODEL...]   (given files get all three, at the full sizes)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/env.sh"
chord="$1"; shift
smol=("$CHORD_MODELS"/SmolLM2-135M-Instruct.{Q4_1,F16,BF16,Q8_0,Q4_0,Q5_0,Q5_1,Q3_K_M,Q4_K_M,Q5_K_M,Q6_K}.gguf)
full=(--greedy-prompts 10 --greedy-tokens 64 --tokens 1024)
if [ $# -gt 0 ]; then
  strict_sets=("$*")
  strict_sizes=("${full[*]}")
  reference_models=("$@")
  scalar_models=("$1")
  reference_size=(--tokens 1024)
  scalar_size=(--tokens 1024)
elif [ "${CHORD_ORACLE:-ci}" = all ]; then
  strict_sizes=("${full[*]}")
  strict_sets=("${smol[*]} $CHORD_GEMMA3_MODEL $(echo "$CHORD_MODELS"/{llama3,qwen2,qwen3,gemma,gemma2,gemma3,phi3}-shape-random.{F16,Q8_0,Q4_K_M,Q6_K}.gguf)")
  reference_models=("${smol[@]}" "$CHORD_GEMMA3_MODEL" "$CHORD_MODELS"/{qwen2,qwen3,phi3}-shape-random.Q4_K_M.gguf)
  scalar_models=("$CHORD_MODELS/SmolLM2-135M-Instruct.Q4_K_M.gguf")
  reference_size=(--tokens 1024)
  scalar_size=(--tokens 1024)
else
  r="$CHORD_MODELS"
  strict_sets=("${smol[*]} $CHORD_GEMMA3_MODEL"
    "$r/llama3-shape-random.Q4_K_M.gguf $r/qwen2-shape-random.Q8_0.gguf $r/qwen3-shape-random.Q6_K.gguf $r/gemma-shape-random.Q4_K_M.gguf $r/gemma2-shape-random.Q8_0.gguf $r/gemma3-shape-random.F16.gguf $r/gemma3-shape-random.Q6_K.gguf $r/phi3-shape-random.Q4_K_M.gguf")
  strict_sizes=("--greedy-prompts 4 --greedy-tokens 32 --tokens 1024" "--greedy-prompts 4 --greedy-tokens 32 --tokens 512")
  reference_models=("$r"/SmolLM2-135M-Instruct.{Q4_1,BF16,Q4_K_M}.gguf "$CHORD_GEMMA3_MODEL")
  scalar_models=("$r/SmolLM2-135M-Instruct.Q4_K_M.gguf")
  reference_size=(--tokens 512)
  scalar_size=(--tokens 256)
fi
text="$here/../tests/data/text/gpl-3.0-excerpt.txt"
status=0
t0=$SECONDS
took() { echo "== ($((SECONDS - t0)) s)"; t0=$SECONDS; }
echo "== strict: bit identity with the pinned llama.cpp oracle ($(basename "$LLAMA_CPP_PINNED_BUILD")), chord CHORD_ISA=avx2"
for i in "${!strict_sets[@]}"; do
  # shellcheck disable=SC2046,SC2086 # word lists
  CHORD_ISA=avx2 LLAMA_CPP_LIB_PATH="$LLAMA_CPP_PINNED_BIN" "$CHORD_VENV/bin/python" "$here/compare-llamacpp.py" \
    --mode strict --chord "$chord" --text "$text" ${strict_sizes[$i]} ${strict_sets[$i]} || status=1
done
took
echo "== log-probabilities: chord generate --logprobs against llama.cpp's (pinned oracle), within 1e-4"
CHORD_ISA=avx2 LLAMA_CPP_LIB_PATH="$LLAMA_CPP_PINNED_BIN" "$CHORD_VENV/bin/python" "$here/compare-logprobs.py" \
  --chord "$chord" "$CHORD_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf" "$CHORD_MODELS/qwen2-shape-random.Q4_K_M.gguf" || status=1
took
echo "== embeddings: chord embed against llama.cpp's (pinned oracle), 20 texts, mean/CLS/last pooling, within 1e-4"
CHORD_ISA=avx2 LLAMA_CPP_LIB_PATH="$LLAMA_CPP_PINNED_BIN" "$CHORD_VENV/bin/python" "$here/compare-embeddings.py" \
  --chord "$chord" "$CHORD_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf" || status=1
took
echo "== reference: chord ($("$chord" inspect -m "${reference_models[0]}" | sed -n "s/^compute: //p")) and the native llama.cpp build ($(basename "$LLAMA_CPP_NATIVE_BUILD")) against the exact float64 forward pass"
LLAMA_CPP_LIB_PATH="$LLAMA_CPP_NATIVE_BIN" "$CHORD_VENV/bin/python" "$here/compare-llamacpp.py" \
  --mode reference --chord "$chord" --text "$text" "${reference_size[@]}" "${reference_models[@]}" || status=1
took
echo "== reference, chord on its portable path: CHORD_ISA=scalar"
CHORD_ISA=scalar LLAMA_CPP_LIB_PATH="$LLAMA_CPP_NATIVE_BIN" "$CHORD_VENV/bin/python" "$here/compare-llamacpp.py" \
  --mode reference --chord "$chord" --text "$text" "${scalar_size[@]}" "${scalar_models[@]}" || status=1
took
exit $status

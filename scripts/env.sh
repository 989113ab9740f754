# Shared paths for chord's scripts. Source it: `. scripts/env.sh`.
# Everything fetched or built for tests lives outside the clone, under CHORD_CACHE, so that CI can
# reuse it between runs; every script recreates it when it is missing.
export CHORD_CACHE="${CHORD_CACHE:-$HOME/.cache/chord}"
export CHORD_MODELS="$CHORD_CACHE/models"
export CHORD_VENV="$CHORD_CACHE/venv"
# llama.cpp as shipped inside the llama-cpp-python sdist on PyPI (see shared/reference/llama-cpp.md).
export LLAMA_CPP_PY_VERSION="${LLAMA_CPP_PY_VERSION:-0.3.36}"
export LLAMA_CPP_DIR="$CHORD_CACHE/llama.cpp-$LLAMA_CPP_PY_VERSION"
export LLAMA_CPP_BIN="$LLAMA_CPP_DIR/build/bin"
export CHORD_DEFAULT_MODEL="$CHORD_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"

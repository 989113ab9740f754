#!/usr/bin/env bash
# Builds llama.cpp, chord's correctness oracle and speed peer, from the source that the PyPI sdist of
# llama-cpp-python ships under vendor/llama.cpp (see shared/reference/llama-cpp.md), and a Python
# virtual environment with gguf-py, numpy and llama-cpp-python's ctypes bindings pointed at that build.
# Idempotent: finishes at once when everything is there.
# Built with explicit ISA flags, never GGML_NATIVE: this machine's CPU advertises AMX it does not allow.
set -euo pipefail
. "$(dirname "$0")/env.sh"
mkdir -p "$CHORD_CACHE"

if [ ! -x "$LLAMA_CPP_BIN/llama-bench" ] || [ ! -e "$LLAMA_CPP_BIN/libllama.so" ]; then
  command -v cmake >/dev/null || { echo "chord: cmake is required (apt-get install cmake)" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "chord: fetching llama-cpp-python $LLAMA_CPP_PY_VERSION sdist (llama.cpp source)..." >&2
  python3 -m pip download --quiet --no-deps --no-binary :all: --dest "$tmp" "llama-cpp-python==$LLAMA_CPP_PY_VERSION"
  tar -xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$tmp"
  if [ ! -f "$LLAMA_CPP_DIR/CMakeLists.txt" ]; then
    rm -rf "$LLAMA_CPP_DIR"
    mv "$tmp"/llama_cpp_python-*/vendor/llama.cpp "$LLAMA_CPP_DIR"
  fi
  echo "chord: building llama.cpp (about 8 minutes on 2 cores)..." >&2
  # shellcheck disable=SC2086 # the ISA flags are a word list
  cmake -S "$LLAMA_CPP_DIR" -B "$LLAMA_CPP_BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=OFF -DGGML_NATIVE=OFF $LLAMA_CPP_CMAKE_ISA \
    >"$CHORD_CACHE/llama-cmake.log"
  cmake --build "$LLAMA_CPP_BUILD" -j"$(nproc)" \
    --target llama llama-bench llama-quantize llama-tokenize >>"$CHORD_CACHE/llama-cmake.log"
fi

if [ ! -x "$CHORD_VENV/bin/python" ] || ! "$CHORD_VENV/bin/python" -c 'import gguf, numpy, llama_cpp' 2>/dev/null; then
  echo "chord: creating the Python environment for the oracle scripts..." >&2
  python3 -m venv "$CHORD_VENV"
  "$CHORD_VENV/bin/pip" install --quiet gguf==0.19.0 numpy
  # LLAMA_BUILD=OFF: install only the Python bindings; they load the library built above.
  CMAKE_ARGS="-DLLAMA_BUILD=OFF" "$CHORD_VENV/bin/pip" install --quiet "llama-cpp-python==$LLAMA_CPP_PY_VERSION"
fi
echo "chord: llama.cpp ready in $LLAMA_CPP_BIN" >&2

#!/usr/bin/env bash
# Builds llama.cpp, chord's correctness oracle and speed peer, from the source that the PyPI sdist of
# llama-cpp-python ships under vendor/llama.cpp (see shared/reference/llama-cpp.md), and a Python
# virtual environment with gguf-py, numpy and llama-cpp-python's ctypes bindings pointed at that build.
# Two builds (scripts/env.sh says why): the pinned AVX2 oracle and this CPU's native build.
# Idempotent: finishes at once when everything is there.
set -euo pipefail
. "$(dirname "$0")/env.sh"
mkdir -p "$CHORD_CACHE"

# The pinned build runs on x86-64-v3 CPUs only: say so instead of dying with SIGILL later. env.sh
# builds the native flags from this CPU's features starting with the pinned ones, in their order.
case "$LLAMA_CPP_NATIVE_ISA" in "$LLAMA_CPP_PINNED_ISA"*) ;; *)
  echo "chord: this CPU lacks AVX2, FMA, F16C or BMI2: the pinned llama.cpp oracle (x86-64-v3) cannot run here" >&2
  exit 1 ;;
esac

fetch_source() {
  [ -f "$LLAMA_CPP_DIR/CMakeLists.txt" ] && return 0
  command -v cmake >/dev/null || { echo "chord: cmake is required (apt-get install cmake)" >&2; exit 1; }
  local tmp
  tmp=$(mktemp -d)
  echo "chord: fetching llama-cpp-python $LLAMA_CPP_PY_VERSION sdist (llama.cpp source)..." >&2
  python3 -m pip download --quiet --no-deps --no-binary :all: --dest "$tmp" "llama-cpp-python==$LLAMA_CPP_PY_VERSION"
  tar -xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$tmp"
  rm -rf "$LLAMA_CPP_DIR"
  mv "$tmp"/llama_cpp_python-*/vendor/llama.cpp "$LLAMA_CPP_DIR"
  rm -rf "$tmp"
}

# build DIR "ISA FLAGS" ROLE TARGET...: configures and builds TARGETs in DIR unless they are there.
build() {
  local dir=$1 isa=$2 role=$3 t missing=0
  shift 3
  for t in "$@"; do
    case $t in llama) [ -e "$dir/bin/libllama.so" ] || missing=1 ;; *) [ -x "$dir/bin/$t" ] || missing=1 ;; esac
  done
  [ $missing -eq 0 ] && return 0
  fetch_source
  echo "chord: building llama.cpp, $role ($(basename "$dir"); about 8 minutes on 2 cores)..." >&2
  local log="$CHORD_CACHE/llama-cmake-$(basename "$dir").log"
  # shellcheck disable=SC2086 # the ISA flags are a word list
  cmake -S "$LLAMA_CPP_DIR" -B "$dir" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=OFF -DGGML_NATIVE=OFF $isa >"$log" 2>&1 \
    || { echo "chord: configuring llama.cpp failed, see $log" >&2; exit 1; }
  cmake --build "$dir" -j"$(nproc)" --target "$@" >>"$log" 2>&1 \
    || { echo "chord: building llama.cpp failed, see $log" >&2; exit 1; }
}

# The pinned oracle: the library (Python bindings, ggml for tests/quant_llamacpp.rs) and the tools
# that make and check the test data. The native build: the library and the benchmark (on an AVX2-only
# CPU, the same folder, which then gets llama-bench too).
build "$LLAMA_CPP_PINNED_BUILD" "$LLAMA_CPP_PINNED_ISA" "the pinned oracle (AVX2)" llama llama-quantize llama-tokenize
build "$LLAMA_CPP_NATIVE_BUILD" "$LLAMA_CPP_NATIVE_ISA" "the native build (this CPU's features)" llama llama-bench

if [ ! -x "$CHORD_VENV/bin/python" ] || ! LLAMA_CPP_LIB_PATH="$LLAMA_CPP_PINNED_BIN" "$CHORD_VENV/bin/python" -c 'import gguf, numpy, llama_cpp' 2>/dev/null; then
  echo "chord: creating the Python environment for the oracle scripts..." >&2
  python3 -m venv "$CHORD_VENV"
  "$CHORD_VENV/bin/pip" install --quiet gguf==0.19.0 numpy
  # LLAMA_BUILD=OFF: install only the Python bindings; they load the library built above.
  CMAKE_ARGS="-DLLAMA_BUILD=OFF" "$CHORD_VENV/bin/pip" install --quiet "llama-cpp-python==$LLAMA_CPP_PY_VERSION"
fi
echo "chord: llama.cpp ready: pinned oracle in $LLAMA_CPP_PINNED_BIN, native build in $LLAMA_CPP_NATIVE_BIN" >&2

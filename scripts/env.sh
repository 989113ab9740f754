# Shared paths for chord's scripts. Source it: `. scripts/env.sh`.
# Everything fetched or built for tests lives outside the clone, under CHORD_CACHE, so that CI can
# reuse it between runs; every script recreates it when it is missing.
export CHORD_CACHE="${CHORD_CACHE:-$HOME/.cache/chord}"
export CHORD_MODELS="$CHORD_CACHE/models"
export CHORD_VENV="$CHORD_CACHE/venv"
# llama.cpp as shipped inside the llama-cpp-python sdist on PyPI (see shared/reference/llama-cpp.md).
export LLAMA_CPP_PY_VERSION="${LLAMA_CPP_PY_VERSION:-0.3.36}"
export LLAMA_CPP_DIR="$CHORD_CACHE/llama.cpp-$LLAMA_CPP_PY_VERSION"
# llama.cpp is built for this machine's CPU features (read from /proc/cpuinfo, never GGML_NATIVE: the
# virtual CPUs here may advertise AMX they do not allow), in a build folder named after those features,
# so that a cache carried to a machine with another CPU is rebuilt instead of dying with SIGILL.
LLAMA_CPP_CMAKE_ISA=""
_flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
for _pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx512f:AVX512 avx512vbmi:AVX512_VBMI \
             avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16 avx_vnni:AVX_VNNI; do
  case "$_flags" in *" ${_pair%%:*} "*) LLAMA_CPP_CMAKE_ISA="$LLAMA_CPP_CMAKE_ISA -DGGML_${_pair#*:}=ON" ;; esac
done
export LLAMA_CPP_CMAKE_ISA
_isa_key=$(printf '%s' "$LLAMA_CPP_CMAKE_ISA" | sed 's/ -DGGML_//g; s/=ON/-/g; s/-$//' | tr 'A-Z' 'a-z')
export LLAMA_CPP_BUILD="$LLAMA_CPP_DIR/build-${_isa_key:-generic}"
export LLAMA_CPP_BIN="$LLAMA_CPP_BUILD/bin"
unset _flags _pair _isa_key
export CHORD_DEFAULT_MODEL="$CHORD_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"

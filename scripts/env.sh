# Shared paths for chord's scripts. Source it: `. scripts/env.sh`.
# Everything fetched or built for tests lives outside the clone, under CHORD_CACHE, so that CI can
# reuse it between runs; every script recreates it when it is missing.
export CHORD_CACHE="${CHORD_CACHE:-$HOME/.cache/chord}"
export CHORD_MODELS="$CHORD_CACHE/models"
export CHORD_VENV="$CHORD_CACHE/venv"
# llama.cpp as shipped inside the llama-cpp-python sdist on PyPI (see shared/reference/llama-cpp.md).
export LLAMA_CPP_PY_VERSION="${LLAMA_CPP_PY_VERSION:-0.3.36}"
export LLAMA_CPP_DIR="$CHORD_CACHE/llama.cpp-$LLAMA_CPP_PY_VERSION"
# llama.cpp is built twice from that source, each with explicit ISA flags (never GGML_NATIVE: the
# virtual CPUs here may advertise AMX they do not allow) in a build folder named after its flags, so
# that a cache carried to a machine with another CPU is rebuilt instead of dying with SIGILL:
# * the pinned oracle (LLAMA_CPP_PINNED_*): x86-64-v3 (AVX, AVX2, FMA, F16C, BMI2, no AVX-512),
#   the same build on every machine. llama.cpp's float summation orders depend on the ISA it is built
#   for; chord's AVX2 kernels reproduce this build's bit for bit. Tests that demand bit identity,
#   and the quantization of the test models, use it.
# * the native build (LLAMA_CPP_NATIVE_*): this CPU's own features as /proc/cpuinfo lists them
#   (AVX-512, VNNI, BF16...). The speed peer of the benchmarks, and the llama.cpp that the tolerance
#   checks (scripts/compare-llamacpp.py --reference) hold chord against.
# On a CPU whose features are exactly the pinned set (AVX2-only x86-64-v3), both are one folder.
_isa_key() { printf '%s' "$1" | sed 's/ -DGGML_//g; s/=ON/-/g; s/-$//' | tr 'A-Z' 'a-z'; }
_flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
LLAMA_CPP_NATIVE_ISA=""
for _pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx512f:AVX512 avx512vbmi:AVX512_VBMI \
             avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16 avx_vnni:AVX_VNNI; do
  case "$_flags" in *" ${_pair%%:*} "*) LLAMA_CPP_NATIVE_ISA="$LLAMA_CPP_NATIVE_ISA -DGGML_${_pair#*:}=ON" ;; esac
done
_k=$(_isa_key "$LLAMA_CPP_NATIVE_ISA")
export LLAMA_CPP_NATIVE_ISA
export LLAMA_CPP_NATIVE_BUILD="$LLAMA_CPP_DIR/build-${_k:-generic}"
export LLAMA_CPP_NATIVE_BIN="$LLAMA_CPP_NATIVE_BUILD/bin"
# The pinned flags, whatever this CPU has (the build script refuses a CPU that cannot run them); on
# an x86-64-v3 CPU without AVX-512 the native flags above are these, in this order.
export LLAMA_CPP_PINNED_ISA=" -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
export LLAMA_CPP_PINNED_BUILD="$LLAMA_CPP_DIR/build-$(_isa_key "$LLAMA_CPP_PINNED_ISA")"
export LLAMA_CPP_PINNED_BIN="$LLAMA_CPP_PINNED_BUILD/bin"
unset _flags _pair _k
unset -f _isa_key
export CHORD_DEFAULT_MODEL="$CHORD_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"
# A real file of a second family (scripts/fetch-gemma3.sh).
export CHORD_GEMMA3_MODEL="$CHORD_MODELS/gemma-3-270m-Q4_K_M.gguf"

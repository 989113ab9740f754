#!/usr/bin/env bash
# The GPU checks, for a machine with a GPU, from release binaries built elsewhere.
#
#   scripts/device-check.sh build   (here, any machine) builds the binaries with --features
#                                   wgpu,cuda, stripped and packed into build/device/bundle.tar.gz
#                                   with the LLaMA vocabulary (carry build/device: under 64 MiB)
#   scripts/device-check.sh run     (on the GPU machine, from the repository root) runs them:
#     1. the TinyLlama- and Llama-2-7B-shaped Q4_K_M random models are written there
#        (examples/random_gguf.rs: the machine reaches no network and takes 64 MiB of files);
#     2. tests/gpu_kernels.rs and tests/gpu_ops.rs on CUDA (first: a failure there explains the
#        rest);
#     3. the transformer on CUDA against the CPU on the TinyLlama shape (examples/gpu_bench.rs
#        `model`: KL divergence, top-1 agreement, prefill and decode tok/s, GB/s of weights per
#        token), and the prompt products' speed with 1 to 16 tokens to a cube and with each
#        register tile of the tiled kernels (`prefill`: which kernel and tile prompts should take
#        there);
#     4. `chord bench --backend cuda` on each shape (the C program: what a user runs), with its
#        kernel launches and transfers per token, and the Llama-2-7B shape paged into 2 GiB of
#        device memory (its streamed layers uploaded for each token);
#     5. the TinyLlama shape on wgpu (Vulkan).
#   Output goes to stdout and, where OUT is set, to $OUT/device-check.log.
#
# CUDA needs the driver, libnvrtc and the CUDA headers at run time (CUDA_PATH or /usr/local/cuda);
# wgpu needs a Vulkan loader (libvulkan1) and the GPU's ICD. Each step has a time limit so that the
# whole run fits a lent device's minutes (well under 8 minutes on an H200).
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=build/device

case "${1:-}" in
build)
  set -e
  rm -rf "$DIR" && mkdir -p "$DIR/bin"
  . scripts/env.sh
  # cudarc's build takes the CUDA version from `nvcc --version`, and without nvcc the newest it
  # knows (13.4); name the device's (its driver's) version instead: 13.0 on the lent H200s.
  export CUDARC_CUDA_VERSION=${CUDARC_CUDA_VERSION:-13000}
  tdir=${CARGO_TARGET_DIR:-target}
  exes=$(cargo test --release --features wgpu,cuda --test gpu_kernels --test gpu_ops --no-run 2>&1 |
    tee /dev/stderr | sed -n 's/.*Executable .*(\(.*gpu_[a-z]*-[0-9a-f]*\)).*/\1/p')
  cargo build --release --features wgpu,cuda --lib --example gpu_bench --example random_gguf
  cc -O2 -Iinclude -o "$DIR/bin/chord" examples_c/chord.c "$tdir/release/libchord.a" -lpthread -ldl -lm
  for exe in $exes; do cp "$exe" "$DIR/bin/$(basename "$exe" | sed 's/-[0-9a-f]*$//')"; done
  cp "$tdir/release/examples/gpu_bench" "$tdir/release/examples/random_gguf" "$DIR/bin/"
  strip "$DIR"/bin/*
  cp "$LLAMA_CPP_DIR/models/ggml-vocab-llama-spm.gguf" "$DIR/bin/vocab-llama-spm.gguf"
  tar -C "$DIR" -czf "$DIR/bundle.tar.gz" bin
  rm -rf "$DIR/bin"
  ls -la "$DIR"
  ;;
run)
  log=${OUT:-/tmp}/device-check.log
  exec > >(tee "$log") 2>&1
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
  status=0
  step() { # NAME SECONDS COMMAND...
    local name=$1 secs=$2 s=$(date +%s)
    shift 2
    echo "== $name"
    timeout "$secs" "$@" || { echo "!! $name failed (status $?)"; status=1; }
    echo "== $name: $(( $(date +%s) - s )) s"
  }
  tar -C "$DIR" -xzf "$DIR/bundle.tar.gz"
  bin=$DIR/bin
  models=${TMPDIR:-/tmp}/chord-device
  mkdir -p "$models"
  for shape in tinyllama llama2-7b; do
    step "write $shape" 60 "$bin/random_gguf" "$bin/vocab-llama-spm.gguf" "$models/$shape.gguf" "$shape"
  done
  step "kernels on CUDA" 60 "$bin/gpu_kernels" --test-threads 1 --nocapture cuda_
  step "layer operations on CUDA" 60 "$bin/gpu_ops" --test-threads 1 --nocapture cuda_
  step "model tinyllama on CUDA" 120 "$bin/gpu_bench" model cuda "$models/tinyllama.gguf"
  step "prefill tilings on CUDA" 60 "$bin/gpu_bench" prefill cuda 512
  for shape in tinyllama llama2-7b; do
    step "chord bench $shape on CUDA" 90 "$bin/chord" bench -m "$models/$shape.gguf" --backend cuda -p 128 -n 64 -r 2
  done
  step "chord bench llama2-7b paged in 2 GiB on CUDA" 120 "$bin/chord" bench -m "$models/llama2-7b.gguf" --backend cuda --budget 2G -p 32 -n 8 -r 1 --stats
  step "model tinyllama on wgpu" 90 "$bin/gpu_bench" model wgpu "$models/tinyllama.gguf"
  exit $status
  ;;
*)
  echo "usage: $0 build|run" >&2
  exit 2
  ;;
esac

#!/usr/bin/env bash
# The GPU checks, for a machine with a GPU, from release binaries built elsewhere.
#
#   scripts/device-check.sh build   (here, any machine) builds the binaries with --features
#                                   wgpu,cuda into build/device (stripped; carry that folder)
#   scripts/device-check.sh run     (on the GPU machine, from the repository root) runs them:
#     1. tests/gpu_kernels.rs on CUDA and on wgpu (Vulkan): every kernel against the dequantized
#        reference, with both reductions (planes and shared memory) where the device has planes;
#     2. examples/gpu_bench.rs on each runtime: the cost of a launch, GB/s of each product on
#        TinyLlama- and Llama-2-7B-shaped matrices, and the products of a whole decoded token.
#   Output goes to stdout and, where OUT is set, to $OUT/device-check.log.
#
# CUDA needs the driver, libnvrtc and the CUDA headers at run time (CUDA_PATH or /usr/local/cuda);
# wgpu needs a Vulkan loader (libvulkan1) and the GPU's ICD. Each step has a time limit so that the
# whole run fits a lent device's minutes (well under 8 minutes on an H200).
# Models on the GPU (chord bench --backend cuda|wgpu on SmolLM2, TinyLlama and 7B shapes) join
# this script when the transformer runs there (issue "chord on the GPU").
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=build/device

case "${1:-}" in
build)
  set -e
  mkdir -p "$DIR"
  # cudarc's build takes the CUDA version from `nvcc --version`, and without nvcc the newest it
  # knows (13.4); name the device's (its driver's) version instead: 13.0 on the lent H200s.
  export CUDARC_CUDA_VERSION=${CUDARC_CUDA_VERSION:-13000}
  exe=$(cargo test --release --features wgpu,cuda --test gpu_kernels --no-run 2>&1 |
    tee /dev/stderr | sed -n 's/.*Executable .*(\(.*gpu_kernels-[0-9a-f]*\)).*/\1/p' | tail -1)
  cargo build --release --features wgpu,cuda --example gpu_bench
  cp "$exe" "$DIR/gpu_kernels"
  cp "${CARGO_TARGET_DIR:-target}/release/examples/gpu_bench" "$DIR/gpu_bench"
  strip "$DIR/gpu_kernels" "$DIR/gpu_bench"
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
  step "kernels on CUDA" 90 "$DIR/gpu_kernels" --test-threads 1 --nocapture cuda_
  step "kernels on wgpu" 90 "$DIR/gpu_kernels" --test-threads 1 --nocapture wgpu_
  step "bench on CUDA" 150 "$DIR/gpu_bench" cuda
  step "bench on wgpu" 150 "$DIR/gpu_bench" wgpu
  exit $status
  ;;
*)
  echo "usage: $0 build|run" >&2
  exit 2
  ;;
esac

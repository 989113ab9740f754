#!/usr/bin/env python3
"""Times WGSL compute kernels on Mesa's lavapipe, outside chord: the measuring tool behind the
design of the prompt products on the GPU (issue 14), where a Rust rebuild per variant takes
minutes and this takes seconds.

    python3 -m venv /tmp/wv && /tmp/wv/bin/pip install wgpu numpy
    /tmp/wv/bin/python scripts/lavapipe-probe.py gemm [--tokens 128] [--tiles 4x8,8x8,8x16]
    /tmp/wv/bin/python scripts/lavapipe-probe.py wgsl KERNEL.wgsl --tokens 128 --grid 256,128

`gemm` generates a register-tiled Q4_K product (each invocation computes ROWS x TOKENS outputs,
loading each weight word once for all its tokens and each 4 activations, as one vec4, once for
all its rows), checks it against numpy in float64 and prints GMAC/s per tile. `wgsl` times a
kernel that CubeCL wrote (run chord with CUBECL_DEBUG_LOG=FILE CUBECL_DEBUG_OPTION=debug and cut
one kernel's source out of FILE): a Q4_K product over the same random blocks, bound as chord
binds it (w, x, y, then `info` with rows, cols and tokens).

Why (measured on a Zen 4 with two cores, lavapipe of Mesa 22.3.6 with LLVM 15): llvmpipe runs
8 invocations per 256-bit vector, and every storage-buffer load whose offset is not a constant
(or push constant) becomes a loop over those 8 lanes with a bounds check per lane
(gallivm/lp_bld_nir_soa.c, emit_load_mem); the arithmetic is vectorized. In chord's Q4_K
matrix-vector kernel (2048 x 2048, one token) removing the activation loads cut 5.3 ms to 4.0,
removing the weight loads to 3.2, removing both to 1.5: loads are 70% of the time. So what
counts there is loads per multiply-add. The matrix-vector kernels reuse a weight load for one
token (1.0 GMAC/s over a 128-token prompt, `wgsl` on chord's kernel); the tiled kernel here reuses
it for 8-16 tokens and each activation for 8 rows: 5.1-5.4 GMAC/s, the same results to 3e-7
relative. An f32 product tiled the same way reached 5.4 GMAC/s at 16 x 16, so decoding the
blocks is not what limits it. Loading the activations as scalars instead of vec4 lost a third
(3.4 GMAC/s).
"""
import argparse
import sys
import time

import numpy as np
import wgpu

Q4K_WORDS = 36  # a Q4_K block: 144 bytes


def gemm_q4k_wgsl(tr, tt):
    """A Q4_K product y[t, r] = sum_k w[r, k] x[t, k] (GGUF blocks as 36 words, x as vec4s):
    workgroups of 8 x 8 invocations, each `tr` rows x `tt` tokens."""
    out = ["""@group(0) @binding(0) var<storage, read_write> w: array<u32>;
@group(0) @binding(1) var<storage, read_write> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
struct info_st { s: array<u32, 4>, m: array<u32, 6>, }
@group(0) @binding(3) var<storage, read> info: info_st;
fn nib_lo(v: u32) -> vec4<f32> { return vec4<f32>(vec4<u32>(v, v >> 8u, v >> 16u, v >> 24u) & vec4<u32>(15u)); }
fn nib_hi(v: u32) -> vec4<f32> { return vec4<f32>((vec4<u32>(v, v >> 8u, v >> 16u, v >> 24u) >> vec4<u32>(4u)) & vec4<u32>(15u)); }
// (scale, minimum) of sub-block s from the 12 scale bytes s0..s2 (llama.cpp's get_scale_min_k4)
fn scale_min(s0: u32, s1: u32, s2: u32, s: u32) -> vec2<f32> {
  let sh = 8u * (s % 4u);
  var sc = (s0 >> sh) & 63u;
  var mn = (s1 >> sh) & 63u;
  if (s >= 4u) {
    sc = ((s2 >> sh) & 15u) | (((s0 >> sh) >> 6u) & 3u) << 4u;
    mn = (((s2 >> sh) >> 4u) & 15u) | (((s1 >> sh) >> 6u) & 3u) << 4u;
  }
  return vec2<f32>(f32(sc), f32(mn));
}
@compute @workgroup_size(8, 8, 1)
fn gemm(@builtin(global_invocation_id) g: vec3<u32>) {
let rows = info.s[0]; let cols = info.s[1]; let m = info.s[2]; let nb = cols / 256u;"""]
    R, T = range(tr), range(tt)
    out.append(f"let r0 = g.x * {tr}u; let t0 = g.y * {tt}u;")
    out += [f"var a{i}_{j} = 0.0;" for i in R for j in T]
    out += [f"let wr{i} = min(r0 + {i}u, rows - 1u) * nb * 36u;" for i in R]
    out += [f"let xr{j} = min(t0 + {j}u, m - 1u) * (cols / 4u);" for j in T]
    out.append("for (var b = 0u; b < nb; b++) {")
    for i in R:
        out.append(f"let base{i} = wr{i} + b * 36u; let dd{i} = unpack2x16float(w[base{i}]);"
                   f" let s0_{i} = w[base{i} + 1u]; let s1_{i} = w[base{i} + 2u]; let s2_{i} = w[base{i} + 3u];")
    out.append("for (var jj = 0u; jj < 4u; jj++) {")  # sub-blocks 2 jj (low nibbles), 2 jj + 1 (high)
    for i in R:
        out.append(f"let ml{i} = scale_min(s0_{i}, s1_{i}, s2_{i}, 2u * jj);"
                   f" let mh{i} = scale_min(s0_{i}, s1_{i}, s2_{i}, 2u * jj + 1u);")
        out += [f"var sl{i}_{j} = 0.0; var sh{i}_{j} = 0.0;" for j in T]
    out += [f"var xsl{j} = 0.0; var xsh{j} = 0.0;" for j in T]
    out.append("for (var k = 0u; k < 8u; k++) {")
    for j in T:
        out.append(f"let xl{j} = x[xr{j} + b * 64u + jj * 16u + k]; let xh{j} = x[xr{j} + b * 64u + jj * 16u + 8u + k];"
                   f" xsl{j} += dot(xl{j}, vec4<f32>(1.0)); xsh{j} += dot(xh{j}, vec4<f32>(1.0));")
    for i in R:
        out.append(f"let q{i} = w[base{i} + 4u + jj * 8u + k]; let vl{i} = nib_lo(q{i}); let vh{i} = nib_hi(q{i});")
        out += [f"sl{i}_{j} += dot(vl{i}, xl{j}); sh{i}_{j} += dot(vh{i}, xh{j});" for j in T]
    out.append("}")
    out += [f"a{i}_{j} += dd{i}.x * (ml{i}.x * sl{i}_{j} + mh{i}.x * sh{i}_{j})"
            f" - dd{i}.y * (ml{i}.y * xsl{j} + mh{i}.y * xsh{j});" for i in R for j in T]
    out.append("}\n}")
    out += [f"if (r0 + {i}u < rows && t0 + {j}u < m) {{ y[(t0 + {j}u) * rows + r0 + {i}u] = a{i}_{j}; }}"
            for i in R for j in T]
    out.append("}")
    return "\n".join(out)


def random_q4k(rows, cols, rng):
    """Random Q4_K blocks with finite f16 scales (the top exponent bit of each half cleared)."""
    return rng.integers(0, 2**32, rows * (cols // 256) * Q4K_WORDS, dtype=np.uint32) & np.uint32(0xBBFFBBFF)


def dequantize_q4k(words, rows, cols):
    """The float64 values of Q4_K blocks (GGUF's block_q4_K), rows x cols."""
    nb = cols // 256
    blk = words.reshape(rows, nb, Q4K_WORDS)
    dd = np.frombuffer(blk[:, :, 0].copy().tobytes(), np.float16).astype(np.float64).reshape(rows, nb, 2)
    sc = blk[:, :, 1:4].copy().view(np.uint8).reshape(rows, nb, 12).astype(np.int64)
    qs = blk[:, :, 4:].copy().view(np.uint8).reshape(rows, nb, 128).astype(np.int64)
    out = np.zeros((rows, nb, 256))
    for s in range(8):
        if s < 4:
            scale, mn = sc[:, :, s] & 63, sc[:, :, s + 4] & 63
        else:
            scale = (sc[:, :, s + 4] & 15) | ((sc[:, :, s - 4] >> 6) << 4)
            mn = (sc[:, :, s + 4] >> 4) | ((sc[:, :, s] >> 6) << 4)
        q = qs[:, :, 32 * (s // 2):32 * (s // 2) + 32]
        q = q & 15 if s % 2 == 0 else q >> 4
        out[:, :, 32 * s:32 * s + 32] = dd[:, :, :1] * scale[:, :, None] * q - dd[:, :, 1:] * mn[:, :, None]
    return out.reshape(rows, cols)


class Probe:
    """A lavapipe device with the four buffers chord's products bind."""

    def __init__(self, words, x, rows, cols, m):
        adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
        if "llvmpipe" not in adapter.info["device"]:
            sys.exit(f"not lavapipe: {adapter.info['device']} (set VK_DRIVER_FILES to lvp_icd)")
        self.dev = adapter.request_device_sync()
        usage = wgpu.BufferUsage.STORAGE
        info = np.array([rows, cols, m, 0] + [0] * 6, np.uint32)
        self.bufs = [self.dev.create_buffer_with_data(data=d, usage=usage | wgpu.BufferUsage.COPY_SRC)
                     for d in (words, x, np.zeros(m * rows, np.float32), info)]
        entries = [{"binding": i, "visibility": wgpu.ShaderStage.COMPUTE,
                    "buffer": {"type": "read-only-storage" if i == 3 else "storage"}} for i in range(4)]
        self.layout = self.dev.create_bind_group_layout(entries=entries)

    def time(self, source, grid, reps):
        """(seconds of the fastest of `reps` runs, y) for `source` dispatched over `grid`."""
        entry = source.split("@compute")[1].split("fn ")[1].split("(")[0]
        pipe = self.dev.create_compute_pipeline(
            layout=self.dev.create_pipeline_layout(bind_group_layouts=[self.layout]),
            compute={"module": self.dev.create_shader_module(code=source), "entry_point": entry})
        group = self.dev.create_bind_group(layout=self.layout, entries=[
            {"binding": i, "resource": {"buffer": b, "offset": 0, "size": b.size}} for i, b in enumerate(self.bufs)])
        def run():
            enc = self.dev.create_command_encoder()
            p = enc.begin_compute_pass()
            p.set_pipeline(pipe)
            p.set_bind_group(0, group)
            p.dispatch_workgroups(grid[0], grid[1], 1)
            p.end()
            self.dev.queue.submit([enc.finish()])
            return np.frombuffer(self.dev.queue.read_buffer(self.bufs[2]), np.float32)

        y = run()  # compiles
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            y = run()
            best = min(best, time.perf_counter() - t)
        return best, y


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["gemm", "wgsl"])
    ap.add_argument("source", nargs="?", help="wgsl: the kernel's WGSL file")
    ap.add_argument("--rows", type=int, default=2048)
    ap.add_argument("--cols", type=int, default=2048)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--tiles", default="4x8,8x8,8x16", help="gemm: ROWSxTOKENS per invocation")
    ap.add_argument("--grid", help="wgsl: workgroups X,Y (chord's matvec: rows / 8, tokens)")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    words = random_q4k(a.rows, a.cols, rng)
    x = rng.standard_normal(a.tokens * a.cols).astype(np.float32)
    want = x.reshape(a.tokens, a.cols).astype(np.float64) @ dequantize_q4k(words, a.rows, a.cols).T
    probe = Probe(words, x, a.rows, a.cols, a.tokens)
    if a.mode == "wgsl":
        kernels = [(a.source, open(a.source).read(), tuple(int(v) for v in a.grid.split(",")))]
    else:
        kernels = []
        for tile in a.tiles.split(","):
            tr, tt = (int(v) for v in tile.split("x"))
            grid = (-(-a.rows // (8 * tr)), -(-a.tokens // (8 * tt)))
            kernels.append((f"Q4_K {tr} rows x {tt} tokens", gemm_q4k_wgsl(tr, tt), grid))
    for name, source, grid in kernels:
        secs, y = probe.time(source, grid, a.reps)
        err = np.max(np.abs(y.reshape(a.tokens, a.rows) - want)) / np.max(np.abs(want))
        print(f"{name}: {secs * 1e3:.1f} ms, {a.rows * a.cols * a.tokens / secs / 1e9:.2f} GMAC/s, "
              f"largest error {err:.1e} of the largest output")


if __name__ == "__main__":
    main()

//! The CubeCL kernels of a layer's other operations: RMS norm (with the residual add before it),
//! the gated activation, RoPE, the f16 KV cache's write and the causal attention over it. One
//! source for every CubeCL runtime, like the products of [`super::kernels`].
//!
//! Reductions over a cube go through shared memory (`cube_reduce`), which every device has
//! (Mesa's lavapipe has no plane operations). The KV cache holds f16 values two to a 32-bit word
//! (WGSL has no 16-bit loads): `[n_head_kv][n_ctx][head_dim / 2]` words, the low half first.

use super::kernels::f16_bits;
use cubecl::prelude::*;

/// Units per cube of the reducing kernels (norms, attention); `cube_reduce` starts at half of it.
pub const CUBE: u32 = 256;

/// The sum (`max == false`) or maximum of `v` over the cube's `CUBE` units, in every unit.
#[cube]
fn cube_reduce(v: f32, sm: &mut SharedMemory<f32>, #[comptime] max: bool) -> f32 {
    let i = UNIT_POS as usize;
    sm[i] = v;
    sync_cube();
    // A literal, not `CUBE / 2`: a constant expression would be a compile-time value, which
    // the loop cannot change.
    let mut s = 128u32;
    while s > 0 {
        if UNIT_POS < s {
            let a = sm[i];
            let b = sm[i + s as usize];
            if comptime!(max) {
                sm[i] = f32::max(a, b);
            } else {
                sm[i] = a + b;
            }
        }
        sync_cube();
        s /= 2;
    }
    let r = sm[0];
    sync_cube();
    r
}

/// `v` rounded to the nearest f16 (ties to even), as its bit pattern: normals, subnormals,
/// infinities for what exceeds the f16 range, NaN kept NaN. Encoded by hand because WGSL cannot
/// store 16-bit values.
#[cube]
fn f16_round(v: f32) -> u32 {
    let b = u32::reinterpret(v);
    let sign = (b >> 16) & 0x8000;
    let abs = b & 0x7fff_ffff;
    let mut h = 0u32;
    if abs > 0x7f80_0000 {
        h = 0x7e00;
    } else if abs >= 0x4780_0000 {
        // 65536 and above (infinity included): beyond f16's largest finite value after rounding.
        h = 0x7c00;
    } else if abs >= 0x3880_0000 {
        // A normal f16: rebias the exponent, round the 13 dropped bits to even (a carry into the
        // exponent is the correct result, infinity included).
        h = (abs - 0x3800_0000 + 0x0fff + ((abs >> 13) & 1)) >> 13;
    } else if abs >= 0x3300_0000 {
        // A subnormal f16: the value times 2^24, rounded to even.
        let mant = (abs & 0x007f_ffff) | 0x0080_0000;
        let shift = 126 - (abs >> 23);
        h = mant >> shift;
        let rem = mant & ((1u32 << shift) - 1);
        let halfway = 1u32 << (shift - 1);
        if rem > halfway || (rem == halfway && (h & 1) == 1) {
            h += 1;
        }
    }
    sign | h
}

/// The RMS norm of row `CUBE_POS` of `s` (`d` values from `at`, `s` read by `value`) times
/// `w`, into `y`: `(s / sqrt(mean(s^2) + eps)) * w`, the order of llama.cpp's `ggml_rms_norm`
/// and `ggml_mul`.
#[cube]
fn norm_row(s: &Array<f32>, w: &Array<f32>, y: &mut Array<f32>, d: u32, eps: f32) {
    let at = CUBE_POS * d as usize;
    let mut sm = SharedMemory::<f32>::new(CUBE as usize);
    let mut ss = 0.0f32;
    let mut i = UNIT_POS;
    while i < d {
        let v = s[at + i as usize];
        ss += v * v;
        i += CUBE;
    }
    let total = cube_reduce(ss, &mut sm, false);
    let inv = 1.0f32 / f32::sqrt(total / f32::cast_from(d) + eps);
    let mut i = UNIT_POS;
    while i < d {
        let k = at + i as usize;
        y[k] = (s[k] * inv) * w[i as usize];
        i += CUBE;
    }
}

/// `y = rms_norm(x) * w`, one cube of `CUBE` units per row of `d` values.
#[cube(launch_unchecked)]
pub fn rms_norm(x: &Array<f32>, w: &Array<f32>, y: &mut Array<f32>, d: u32, eps: f32) {
    norm_row(x, w, y, d, eps);
}

/// `s = x + r` (the residual add), then `y = rms_norm(s) * w`, one cube per row of `d` values.
#[cube(launch_unchecked)]
pub fn add_rms_norm(
    x: &Array<f32>,
    r: &Array<f32>,
    w: &Array<f32>,
    s: &mut Array<f32>,
    y: &mut Array<f32>,
    d: u32,
    eps: f32,
) {
    let at = CUBE_POS * d as usize;
    let mut i = UNIT_POS;
    while i < d {
        let k = at + i as usize;
        s[k] = x[k] + r[k];
        i += CUBE;
    }
    // Each unit reads back only the values it wrote.
    norm_row(s, w, y, d, eps);
}

/// `y = act(g) * u` over `n` values: SiLU (`gelu == false`, ggml's `x / (1 + exp(-x))`) or GELU
/// in its tanh form.
#[cube(launch_unchecked)]
pub fn glu(g: &Array<f32>, u: &Array<f32>, y: &mut Array<f32>, n: u32, #[comptime] gelu: bool) {
    let i = ABSOLUTE_POS;
    if i < n as usize {
        let x = g[i];
        let mut a = x / (1.0f32 + f32::exp(-x));
        if comptime!(gelu) {
            let t = f32::tanh(0.797_884_6f32 * x * (1.0f32 + 0.044_715f32 * x * x));
            a = 0.5f32 * x * (1.0f32 + t);
        }
        y[i] = a * u[i];
    }
}

/// RoPE of `x [t, heads, dim]` into `y`: unit `(row, j)` (`ABSOLUTE_POS_X` over `dim / 2`, the
/// row `t * heads + head` in `ABSOLUTE_POS_Y`) rotates pair `j < rope_dim / 2` by the angle whose
/// cosine and sine are `cs[t][j]` and `sn[t][j]` (the pair is values `2j, 2j+1`, or `j, j +
/// rope_dim / 2` with `neox`), and copies two of the values past `rope_dim` otherwise.
#[cube(launch_unchecked)]
pub fn rope(
    x: &Array<f32>,
    cs: &Array<f32>,
    sn: &Array<f32>,
    y: &mut Array<f32>,
    rows: u32,
    heads: u32,
    dim: u32,
    rope_dim: u32,
    #[comptime] neox: bool,
) {
    let j = ABSOLUTE_POS_X;
    let row = ABSOLUTE_POS_Y;
    if j < dim / 2 && row < rows {
        let half = rope_dim / 2;
        let base = (row * dim) as usize;
        if j < half {
            let mut i0 = 2 * j;
            let mut i1 = 2 * j + 1;
            if comptime!(neox) {
                i0 = j;
                i1 = j + half;
            }
            let a = ((row / heads) * half + j) as usize;
            let c = cs[a];
            let s = sn[a];
            let x0 = x[base + i0 as usize];
            let x1 = x[base + i1 as usize];
            y[base + i0 as usize] = x0 * c - x1 * s;
            y[base + i1 as usize] = x0 * s + x1 * c;
        } else {
            let i = (rope_dim + 2 * (j - half)) as usize;
            y[base + i] = x[base + i];
            y[base + i + 1] = x[base + i + 1];
        }
    }
}

/// Writes keys `k` and values `v` (`[t, n_head_kv, head_dim]` f32) into the f16 caches `kc`, `vc`
/// at positions `pos..pos + t`: unit `ABSOLUTE_POS` writes one word (two values) of each.
#[cube(launch_unchecked)]
pub fn kv_store(
    k: &Array<f32>,
    v: &Array<f32>,
    kc: &mut Array<u32>,
    vc: &mut Array<u32>,
    t: u32,
    n_head_kv: u32,
    n_ctx: u32,
    head_dim: u32,
    pos: u32,
) {
    let words = head_dim / 2;
    let i = ABSOLUTE_POS as u32;
    if i < t * n_head_kv * words {
        let w = i % words;
        let h = (i / words) % n_head_kv;
        let p = i / (words * n_head_kv);
        let src = (i * 2) as usize;
        let dst = ((h * n_ctx + pos + p) * words + w) as usize;
        kc[dst] = f16_round(k[src]) | (f16_round(k[src + 1]) << 16);
        vc[dst] = f16_round(v[src]) | (f16_round(v[src + 1]) << 16);
    }
}

/// Causal attention of query `CUBE_POS_X` (at position `pos0 + CUBE_POS_X`) of head
/// `CUBE_POS_Y`, `q [t, n_head, head_dim]`, over the f16 caches `kc`, `vc`: the keys from the
/// window's first (`window` 0: no window) to its own position, scores capped (`capped`:
/// `tanh(s / cap) * cap`) then scaled by `scale`, softmax, weighted sum of values, into `out [t,
/// n_head * head_dim]`.
///
/// The keys go in chunks of `CUBE`, one to a unit, with a running maximum and sum (the softmax
/// "online"); for the values, `CUBE / head_dim` groups of `head_dim` units (one unit per value of
/// the head) each take every group-th key of the chunk, and the groups' sums are added at the end.
#[cube(launch_unchecked)]
pub fn attention(
    q: &Array<f32>,
    kc: &Array<u32>,
    vc: &Array<u32>,
    out: &mut Array<f32>,
    n_head: u32,
    n_head_kv: u32,
    n_ctx: u32,
    pos0: u32,
    window: u32,
    scale: f32,
    cap: f32,
    #[comptime] head_dim: u32,
    #[comptime] capped: bool,
) {
    let qi = CUBE_POS_X;
    let h = CUBE_POS_Y;
    let tid = UNIT_POS;
    let words = head_dim / 2;
    let groups = CUBE / head_dim;
    let p = pos0 + qi;
    let mut lo = 0u32;
    if window > 0 && p + 1 > window {
        lo = p + 1 - window;
    }
    let mut qs = SharedMemory::<f32>::new(head_dim as usize);
    let mut probs = SharedMemory::<f32>::new(CUBE as usize);
    let mut sm = SharedMemory::<f32>::new(CUBE as usize);
    let qbase = ((qi * n_head + h) * head_dim) as usize;
    if tid < head_dim {
        qs[tid as usize] = q[qbase + tid as usize];
    }
    sync_cube();
    let kv_head = h / (n_head / n_head_kv);
    let cache = (kv_head * n_ctx * words) as usize;
    let dd = tid % head_dim;
    let g = tid / head_dim;
    // -inf from its bits: WGSL has no infinite literals.
    let neg_inf = f32::reinterpret(0xff80_0000u32);
    let mut m = neg_inf;
    let mut l = 0.0f32;
    let mut acc = 0.0f32;
    let mut c0 = lo;
    while c0 <= p {
        let j = c0 + tid;
        let mut s = neg_inf;
        if j <= p {
            let kb = cache + (j * words) as usize;
            let mut dot = 0.0f32;
            for wi in 0..words {
                let kw = kc[kb + wi as usize];
                let e = (2 * wi) as usize;
                dot += qs[e] * f16_bits(kw & 65535) + qs[e + 1] * f16_bits(kw >> 16);
            }
            if comptime!(capped) {
                dot = f32::tanh(dot / cap) * cap;
            }
            s = dot * scale;
        }
        let chunk_max = cube_reduce(s, &mut sm, true);
        let m_new = f32::max(m, chunk_max);
        let mut e = 0.0f32;
        if j <= p {
            e = f32::exp(s - m_new);
        }
        probs[tid as usize] = e;
        let chunk_sum = cube_reduce(e, &mut sm, false);
        let alpha = f32::exp(m - m_new);
        l = l * alpha + chunk_sum;
        acc *= alpha;
        if g < groups {
            let n = u32::min(CUBE, p + 1 - c0);
            let mut jj = g;
            while jj < n {
                let vw = vc[cache + ((c0 + jj) * words + dd / 2) as usize];
                acc += probs[jj as usize] * f16_bits((vw >> (16 * (dd % 2))) & 65535);
                jj += groups;
            }
        }
        m = m_new;
        sync_cube();
        c0 += CUBE;
    }
    sm[tid as usize] = acc;
    sync_cube();
    if tid < head_dim {
        let mut total = 0.0f32;
        for gi in 0..groups {
            total += sm[(gi * head_dim + tid) as usize];
        }
        out[qbase + tid as usize] = total / l;
    }
}

/// `y[i] = x[i]` for `i < n`: a copy of a cache, for a forked session.
#[cube(launch_unchecked)]
pub fn copy_words(x: &Array<u32>, y: &mut Array<u32>, n: u32) {
    let i = ABSOLUTE_POS;
    if i < n as usize {
        y[i] = x[i];
    }
}

//! Portable versions of the attention building blocks, lane for lane the same arithmetic as the
//! AVX2 kernels (and as llama.cpp's AVX2 build): every 8-lane vector operation is written out per
//! lane with the same fused multiply-adds, so this path gives bit-identical results.

use super::RopeMode;
use half::f16;

/// `ggml_vec_dot_f16` as built for AVX2: four accumulators of 8 lanes over blocks of 32 (element
/// `i` goes to accumulator `(i / 8) % 4`, lane `i % 8`, fused multiply-add), reduced as
/// `(a0 + a2) + (a1 + a3)`, then `lo + hi` and two horizontal adds; leftovers in f64.
pub fn dot_vec(x: &[f16], y: &[f16]) -> f32 {
    let n = x.len().min(y.len());
    let np = n & !31;
    let mut acc = [[0f32; 8]; 4];
    for i in (0..np).step_by(32) {
        for (j, a) in acc.iter_mut().enumerate() {
            for (l, s) in a.iter_mut().enumerate() {
                let e = i + j * 8 + l;
                *s = x[e].to_f32().mul_add(y[e].to_f32(), *s);
            }
        }
    }
    let mut sumf = reduce_vec(&acc) as f64;
    for i in np..n {
        sumf += (x[i].to_f32() * y[i].to_f32()) as f64;
    }
    sumf as f32
}

/// The reduction of `GGML_F32x8_REDUCE` over four accumulators.
pub fn reduce_vec(acc: &[[f32; 8]; 4]) -> f32 {
    let mut s = [0f32; 8];
    for (l, o) in s.iter_mut().enumerate() {
        *o = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    }
    let t: [f32; 4] = std::array::from_fn(|l| s[l] + s[l + 4]);
    (t[0] + t[1]) + (t[2] + t[3])
}

/// llamafile's `tinyBLAS` dot product for f16 (AVX2, `KN = 8`): one accumulator of 8 lanes
/// (element `i` to lane `i % 8`, fused multiply-add), reduced by `hsum`. `x.len()` must be a
/// multiple of 8 (the caller pads with zeros).
pub fn dot_gemm(x: &[f16], y: &[f16]) -> f32 {
    debug_assert_eq!(x.len() % 8, 0);
    let mut acc = [0f32; 8];
    for (cx, cy) in x.chunks_exact(8).zip(y.chunks_exact(8)) {
        for l in 0..8 {
            acc[l] = cx[l].to_f32().mul_add(cy[l].to_f32(), acc[l]);
        }
    }
    hsum(&acc)
}

/// Four [`dot_gemm`]s of rows against one `y`, each row given as consecutive runs (each a
/// multiple of 8 long, together as long as `y`) whose products go on the row's one accumulator.
pub fn dot_gemm4_runs<'a>(runs: impl Iterator<Item = [&'a [f16]; 4]>, y: &[f16]) -> [f32; 4] {
    let mut acc = [[0f32; 8]; 4];
    let mut at = 0;
    for xs in runs {
        let k = xs[0].len();
        debug_assert_eq!(k % 8, 0);
        for (a, x) in acc.iter_mut().zip(xs) {
            for (cx, cy) in x.chunks_exact(8).zip(y[at..at + k].chunks_exact(8)) {
                for l in 0..8 {
                    a[l] = cx[l].to_f32().mul_add(cy[l].to_f32(), a[l]);
                }
            }
        }
        at += k;
    }
    acc.map(|a| hsum(&a))
}

/// [`dot_vec`] of a row given as consecutive runs, each a multiple of 8 long (together as long as
/// `y`, a multiple of 32): element `i` of the row goes to accumulator `i / 8 % 4` whatever run
/// holds it, so the sum is that of the whole row.
pub fn dot_vec_runs<'a>(runs: impl Iterator<Item = &'a [f16]>, y: &[f16]) -> f32 {
    let mut acc = [[0f32; 8]; 4];
    let mut at = 0;
    for x in runs {
        debug_assert_eq!(x.len() % 8, 0);
        for (i, cx) in x.chunks_exact(8).enumerate() {
            let e = at + i * 8;
            let a = &mut acc[e / 8 % 4];
            for l in 0..8 {
                a[l] = cx[l].to_f32().mul_add(y[e + l].to_f32(), a[l]);
            }
        }
        at += x.len();
    }
    reduce_vec(&acc)
}

/// [`dot_gemm`] on values already widened to f32.
pub fn dot8(x: &[f32], y: &[f32]) -> f32 {
    debug_assert_eq!(x.len() % 8, 0);
    let mut acc = [0f32; 8];
    for (cx, cy) in x.chunks_exact(8).zip(y.chunks_exact(8)) {
        fma8(&mut acc, cx, cy);
    }
    hsum(&acc)
}

/// `acc[l] = x[l] * y[l] + acc[l]` (fused) for the 8 lanes.
fn fma8(acc: &mut [f32; 8], x: &[f32], y: &[f32]) {
    for l in 0..8 {
        acc[l] = x[l].mul_add(y[l], acc[l]);
    }
}

/// See [`super::scores`].
pub fn scores(ks: &[f32], qs: &[f32], d: usize, out: &mut [f32], stride: usize) {
    for (r, q) in qs.chunks_exact(d).enumerate() {
        for (j, k) in ks.chunks_exact(d).enumerate() {
            out[r * stride + j] = dot8(k, q);
        }
    }
}

/// See [`super::pv`].
pub fn pv(vf: &[f32], np: usize, ps: &[&[f32]], steps: &[usize], acc: &mut [[f32; 8]]) {
    let d = vf.len() / np;
    for (r, (p, &st)) in ps.iter().zip(steps).enumerate() {
        for (c, a) in acc[r * d..(r + 1) * d].iter_mut().enumerate() {
            let v = &vf[c * np..(c + 1) * np];
            for s in 0..st {
                fma8(a, &v[8 * s..8 * s + 8], &p[8 * s..8 * s + 8]);
            }
        }
    }
}

/// Horizontal sum of 8 lanes in llama.cpp's order: `lo + hi`, then `(t0 + t2) + (t1 + t3)`.
pub fn hsum(v: &[f32; 8]) -> f32 {
    let t: [f32; 4] = std::array::from_fn(|l| v[l + 4] + v[l]);
    (t[0] + t[2]) + (t[1] + t[3])
}

/// An f32 from the hexadecimal float `0x1.<m>p<e>` (`m` the 24 fraction bits as 6 hex digits).
const fn hexf(m: u32, e: i32) -> f32 {
    f32::from_bits((((e + 127) as u32) << 23) | ((m >> 1) & 0x7f_ffff))
}

/// `0x1.8p23`, the rounding constant of `ggml_v_expf`.
const R: f32 = hexf(0x80_0000, 23);
const LOG2E: f32 = hexf(0x71_5476, 0);
const LN2_HI: f32 = hexf(0x62_e400, -1);
const LN2_LO: f32 = hexf(0x7f_7d1c, -20);
const C5: f32 = hexf(0x0e_4020, -7);
const C4: f32 = hexf(0x57_3e2e, -5);
const C3: f32 = hexf(0x55_5e66, -3);
const C2: f32 = hexf(0xff_fdb6, -2);
const C1: f32 = hexf(0xff_ffec, -1);

/// The constants of `ggml_v_expf`, for the AVX2 version.
pub const EXPF_CONSTS: [f32; 9] = [R, LOG2E, LN2_HI, LN2_LO, C5, C4, C3, C2, C1];

/// One lane of llama.cpp's vectorised `ggml_v_expf` (AVX2 + FMA).
pub fn expf(x: f32) -> f32 {
    let z = x.mul_add(LOG2E, R);
    let n = z - R;
    let b = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x));
    let e = z.to_bits() << 23;
    let k = f32::from_bits(e.wrapping_add(1f32.to_bits()));
    let c = n.abs() > 126.0;
    let u = b * b;
    let j = C5
        .mul_add(b, C4)
        .mul_add(u, C3.mul_add(b, C2))
        .mul_add(u, C1 * b);
    if !c {
        return k.mul_add(j, k);
    }
    let g: u32 = if n <= 0.0 { 0x8200_0000 } else { 0 };
    let s1 = f32::from_bits(g.wrapping_add(0x7f00_0000));
    let s2 = f32::from_bits(e.wrapping_sub(g));
    if n.abs() > 192.0 {
        s1 * s1
    } else {
        s2.mul_add(j, s2) * s1
    }
}

/// `ggml_vec_soft_max_f32` for AVX2: `y = expf(x - max)` in blocks of 8, each block's sum
/// (`hsum`) added to an f64 total, which it returns. `x.len()` must be a multiple of 8.
pub fn softmax_exp(x: &[f32], y: &mut [f32], max: f32) -> f64 {
    let mut sum = 0f64;
    for (cx, cy) in x.chunks_exact(8).zip(y.chunks_exact_mut(8)) {
        let mut v = [0f32; 8];
        for l in 0..8 {
            v[l] = expf(cx[l] - max);
            cy[l] = v[l];
        }
        sum += hsum(&v) as f64;
    }
    sum
}

/// `ggml_vec_swiglu_f32` for AVX2: `y = silu(x) * g` with `silu(x) = x / (1 + expf(0 - x))`,
/// `ggml_v_expf` in blocks of 8 and libm's `expf` for the last `n % 8` values.
pub fn swiglu(x: &[f32], g: &[f32], y: &mut [f32]) {
    let n = y.len();
    let n8 = n & !7;
    for i in 0..n8 {
        y[i] = x[i] / (1.0 + expf(0.0 - x[i])) * g[i];
    }
    for i in n8..n {
        y[i] = x[i] / (1.0 + (-x[i]).exp()) * g[i];
    }
}

/// ggml's GELU (tanh approximation, `ggml_gelu_f32`) as GCC compiles it for x86-64 with FMA
/// (`-ffp-contract=fast` fuses `1 + a*x*x` into one multiply-add): the values its f16 table holds.
pub fn gelu(x: f32) -> f32 {
    const GELU_COEF_A: f32 = 0.044715;
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (GELU_COEF_A * x).mul_add(x, 1.0)).tanh())
}

/// `gelu` of every f16 value, rounded to f16: ggml's `ggml_table_gelu_f16`, built once.
fn gelu_table() -> &'static [f16] {
    static TABLE: std::sync::OnceLock<Vec<f16>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|i| f16::from_f32(gelu(f16::from_bits(i).to_f32())))
            .collect()
    })
}

/// `y = gelu(x) * g` as llama.cpp's `ggml_vec_geglu_f32` computes it (`GGML_GELU_FP16`): 0 at or
/// below -10, `x * g` at or above 10, else the table's value at `x` rounded to f16, times `g`.
pub fn geglu(x: &[f32], g: &[f32], y: &mut [f32]) {
    let table = gelu_table();
    for ((y, &x), &g) in y.iter_mut().zip(x).zip(g) {
        *y = if x <= -10.0 {
            0.0
        } else if x >= 10.0 {
            x * g
        } else {
            table[f16::from_f32(x).to_bits() as usize].to_f32() * g
        };
    }
}

/// llama.cpp's `rotate_pairs` as GCC compiles it for x86-64 with FMA (`-ffp-contract=fast`), on
/// one row of heads of `dim` values, the first `rope_dim` of each rotated: pair p is values
/// `(2p, 2p + 1)` ([`RopeMode::Normal`]) or `(p, p + rope_dim / 2)` ([`RopeMode::Neox`]), rotated
/// as `fma(x0, cos, -(x1 * sin))` and `fma(x0, sin, x1 * cos)`. Always inlined, so that the AVX2
/// path's copy compiles `mul_add` to one instruction rather than a call to `fmaf`.
#[inline(always)]
pub fn rope_row(
    row: &mut [f32],
    dim: usize,
    rope_dim: usize,
    mode: RopeMode,
    cos: &[f32],
    sin: &[f32],
) {
    let half = rope_dim / 2;
    let rotate = |x0: f32, x1: f32, p: usize| {
        (
            x0.mul_add(cos[p], -(x1 * sin[p])),
            x0.mul_add(sin[p], x1 * cos[p]),
        )
    };
    for head in row.chunks_exact_mut(dim) {
        match mode {
            RopeMode::Normal => {
                for (p, pair) in head[..rope_dim].chunks_exact_mut(2).enumerate() {
                    (pair[0], pair[1]) = rotate(pair[0], pair[1], p);
                }
            }
            RopeMode::Neox => {
                let (lo, hi) = head[..rope_dim].split_at_mut(half);
                for (p, (a, b)) in lo.iter_mut().zip(hi).enumerate() {
                    (*a, *b) = rotate(*a, *b, p);
                }
            }
        }
    }
}

//! AVX2 products in the floating-point orders of llama.cpp's other x86 CPU paths, for bit-identical
//! results where llama.cpp does not use `ggml_vec_dot_*`:
//!
//! * the repacked layouts (`ggml/src/ggml-cpu/arch/x86/repack.cpp`): Q4_0 weights with a multiple
//!   of 8 rows run `ggml_gemv/gemm_q4_0_8x8_q8_0`, Q4_K weights `ggml_gemv/gemm_q4_K_8x8_q8_K`;
//! * the tiled K-quant product (`ggml/src/ggml-cpu/tiled/`), which takes batches of 8 or more
//!   activation rows for the K-quants that are not repacked;
//! * llamafile's tinyBLAS (`ggml/src/ggml-cpu/llamafile/sgemm.cpp`), which takes batches of 2 or
//!   more activation rows of F16 and BF16 weights.
//!
//! Every integer sum in these kernels is exact, so only the float steps need to follow llama.cpp:
//! which integer partial sums are converted, and the order of the multiply-adds. The data layout
//! (interleaved blocks) does not change any value and is not reproduced.

use super::*;
use crate::quant::act::{Q8KRow, Q8Row};
use crate::quant::blocks::{self, QK, QK_K};
use half::{bf16, f16};

/// The eight 32-bit lanes of a signed-byte product of a Q4_0 block (signed bytes `qx`, with
/// `ax = |qx|`) with 32 Q8 values; their sum is the block's exact integer dot product.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn lanes_i8(ax: __m256i, qx: __m256i, qy: __m256i) -> __m256i {
    let sy = _mm256_sign_epi8(qy, qx);
    _mm256_madd_epi16(_mm256_set1_epi16(1), _mm256_maddubs_epi16(ax, sy))
}

/// The sums of the lanes of each of eight vectors, in order: `out[t] = sum of v[t]` (exact).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_i32_8x8(v: &[__m256i; 8]) -> __m256i {
    let h01 = _mm256_hadd_epi32(v[0], v[1]);
    let h23 = _mm256_hadd_epi32(v[2], v[3]);
    let h45 = _mm256_hadd_epi32(v[4], v[5]);
    let h67 = _mm256_hadd_epi32(v[6], v[7]);
    let h0123 = _mm256_hadd_epi32(h01, h23);
    let h4567 = _mm256_hadd_epi32(h45, h67);
    _mm256_add_epi32(
        _mm256_permute2x128_si256(h0123, h4567, 0x20),
        _mm256_permute2x128_si256(h0123, h4567, 0x31),
    )
}

/// A Q4_0 block as 32 signed bytes and its scale.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn decode_q4_0(b: &[u8]) -> (__m256i, f32) {
    use blocks::q4_0::*;
    let q = _mm256_sub_epi8(bytes_from_nibbles_32(b, QS), _mm256_set1_epi8(8));
    (q, f16_at(b, D))
}

/// Runs `acc = fma(isum_t, d_w,t · d_a,t, acc)` over eight blocks in order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn fma_chain_8(mut acc: f32, isums: __m256i, dw: __m256, da: &[f32]) -> f32 {
    let mut s = [0.0f32; 8];
    let mut d = [0.0f32; 8];
    // SAFETY: `s`, `d` hold 8 floats each and `da` at least 8 (sliced by the callers).
    unsafe {
        _mm256_storeu_ps(s.as_mut_ptr(), _mm256_cvtepi32_ps(isums));
        _mm256_storeu_ps(
            d.as_mut_ptr(),
            _mm256_mul_ps(dw, _mm256_loadu_ps(da[..8].as_ptr())),
        );
    }
    for t in 0..8 {
        acc = s[t].mul_add(d[t], acc);
    }
    acc
}

/// Q4_0 weights times rows of Q8_0 activations as `ggml_gemv/gemm_q4_0_8x8_q8_0` compute them:
/// per block, the exact integer sum times `d_w * d_a`, fused into one running sum per row.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_0_r8<const R: usize>(w: &[u8], a: [Q8Row; R]) -> [f32; R] {
    let mut acc = [0.0f32; R];
    let nb = w.len() / 18;
    let mut i = 0;
    // Eight blocks at a time: their integer sums land in one vector, then the chain runs in order.
    while i + 8 <= nb {
        let dec: [(__m256i, f32); 8] = std::array::from_fn(|t| decode_q4_0(&w[(i + t) * 18..]));
        let ax: [__m256i; 8] = std::array::from_fn(|t| _mm256_sign_epi8(dec[t].0, dec[t].0));
        let dw = _mm256_setr_ps(
            dec[0].1, dec[1].1, dec[2].1, dec[3].1, dec[4].1, dec[5].1, dec[6].1, dec[7].1,
        );
        for r in 0..R {
            let v: [__m256i; 8] = std::array::from_fn(|t| {
                lanes_i8(ax[t], dec[t].0, load32_i8(a[r].qs, (i + t) * QK))
            });
            acc[r] = fma_chain_8(acc[r], hsum_i32_8x8(&v), dw, &a[r].d[i..i + 8]);
        }
        i += 8;
    }
    for i in i..nb {
        let (qx, dx) = decode_q4_0(&w[i * 18..]);
        let ax = _mm256_sign_epi8(qx, qx);
        for r in 0..R {
            let s = hsum_i32_8(lanes_i8(ax, qx, load32_i8(a[r].qs, i * QK)));
            acc[r] = (s as f32).mul_add(dx * a[r].d[i], acc[r]);
        }
    }
    acc
}

/// Q4_0 weights times Q8_0 activations in the order of `ggml_gemv_q4_0_8x8_q8_0`.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_q4_0_r8(w: &[u8], a: Q8Row) -> f32 {
    q4_0_r8::<1>(w, [a])[0]
}

/// [`dot_q4_0_r8`] for four activation rows (`ggml_gemm_q4_0_8x8_q8_0`, the same arithmetic).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_q4_0_r8_x4(w: &[u8], a: [Q8Row; 4]) -> [f32; 4] {
    q4_0_r8::<4>(w, a)
}

/// A Q4_K or Q5_K super-block unpacked: the values of each 32-value sub-block as bytes, and the
/// 6-bit scales and mins.
pub(super) struct K4Block {
    q: [__m256i; 8],
    sc: [u8; 8],
    /// The 8 mins as i16.
    mn: __m128i,
}

/// Unpacks a Q4_K (`qh` = `None`) or Q5_K (`qh` = the high-bit offset) super-block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn k4_decode(b: &[u8], scales: usize, qs: usize, qh: Option<usize>) -> K4Block {
    let m4 = _mm256_set1_epi8(0xF);
    let (sc, mn) = blocks::scales_mins_k4(&b[scales..scales + 12]);
    let hbits = qh.map(|o| load32(b, o));
    let mut q = [_mm256_setzero_si256(); 8];
    for j in 0..QK_K / 64 {
        let q4bits = load32(b, qs + 32 * j);
        let mut q4l = _mm256_and_si256(q4bits, m4);
        let mut q4h = _mm256_and_si256(_mm256_srli_epi16(q4bits, 4), m4);
        if let Some(hb) = hbits {
            let hl = _mm256_and_si256(hb, _mm256_set1_epi8(1 << (2 * j)));
            let hh = _mm256_and_si256(hb, _mm256_set1_epi8(2 << (2 * j)));
            let hl = _mm256_slli_epi16(_mm256_srl_epi16(hl, _mm_cvtsi32_si128(2 * j as i32)), 4);
            let hh =
                _mm256_slli_epi16(_mm256_srl_epi16(hh, _mm_cvtsi32_si128(2 * j as i32 + 1)), 4);
            q4l = _mm256_or_si256(q4l, hl);
            q4h = _mm256_or_si256(q4h, hh);
        }
        q[2 * j] = q4l;
        q[2 * j + 1] = q4h;
    }
    let mut m16 = [0i16; 8];
    for (d, &m) in m16.iter_mut().zip(&mn) {
        *d = m as i16;
    }
    // SAFETY: `m16` holds 8 i16 (16 bytes); the load is unaligned.
    let mn = unsafe { _mm_loadu_si128(m16.as_ptr() as *const __m128i) };
    K4Block { q, sc, mn }
}

/// The integer parts of an unpacked Q4_K/Q5_K super-block times Q8_K super-block `ib`, per pair of
/// 32-value sub-blocks `j`: `sums[j]` as eight lanes adding up to `sc[2j]·dot(2j) +
/// sc[2j+1]·dot(2j+1)`, and `mins[j] = m[2j]·Σq8(2j) + m[2j+1]·Σq8(2j+1)`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn k4_row(blk: &K4Block, a: &Q8KRow, ib: usize) -> ([__m256i; 4], __m128i) {
    let bs = &a.bsums[ib * 16..ib * 16 + 16];
    // SAFETY: `bs` holds exactly 16 i16 (32 bytes); the load is unaligned.
    let q8sums = unsafe { _mm256_loadu_si256(bs.as_ptr() as *const __m256i) };
    let q8s = _mm_hadd_epi16(
        _mm256_castsi256_si128(q8sums),
        _mm256_extracti128_si256(q8sums, 1),
    );
    let mins = _mm_madd_epi16(blk.mn, q8s);
    let mut sums = [_mm256_setzero_si256(); 4];
    for (j, sum) in sums.iter_mut().enumerate() {
        let q8l = load32_i8(a.qs, ib * QK_K + 64 * j);
        let q8h = load32_i8(a.qs, ib * QK_K + 64 * j + 32);
        let p16l = _mm256_madd_epi16(
            _mm256_set1_epi16(blk.sc[2 * j] as i16),
            _mm256_maddubs_epi16(blk.q[2 * j], q8l),
        );
        let p16h = _mm256_madd_epi16(
            _mm256_set1_epi16(blk.sc[2 * j + 1] as i16),
            _mm256_maddubs_epi16(blk.q[2 * j + 1], q8h),
        );
        *sum = _mm256_add_epi32(p16l, p16h);
    }
    (sums, mins)
}

/// Sum of the four i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_i32_4(v: __m128i) -> i32 {
    let s = _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
    _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01)))
}

/// The whole-super-block integer sums `(Σ sums, Σ mins)` of [`k4_row`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k4_totals(blk: &K4Block, a: &Q8KRow, ib: usize) -> (i32, i32) {
    let (v, m) = k4_row(blk, a, ib);
    let s = _mm256_add_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3]));
    (hsum_i32_8(s), hsum_i32_4(m))
}

/// Q4_K weights times Q8_K activations as `ggml_gemv_q4_K_8x8_q8_K` computes them: per
/// super-block, the scaled integer sum times `d_w * d_a` and the min sum times `dmin_w * d_a`, each
/// fused into its own running sum; the result is their difference.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_q4_k_r8(w: &[u8], a: Q8KRow) -> f32 {
    use blocks::q4_k::*;
    let (mut acc, mut acc_m) = (0.0f32, 0.0f32);
    for (ib, b) in w.chunks_exact(144).enumerate() {
        let (s, m) = k4_totals(&k4_decode(b, SCALES, QS, None), &a, ib);
        acc = (s as f32).mul_add(f16_at(b, D) * a.d[ib], acc);
        acc_m = (m as f32).mul_add(f16_at(b, DMIN) * a.d[ib], acc_m);
    }
    acc - acc_m
}

/// Q4_K weights times four Q8_K activation rows as `ggml_gemm_q4_K_8x8_q8_K` computes them: like
/// [`dot_q4_k_r8`], but the multiply-adds run per 64 values instead of per super-block.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_q4_k_r8_x4(w: &[u8], a: [Q8KRow; 4]) -> [f32; 4] {
    use blocks::q4_k::*;
    let mut acc = [0.0f32; 4];
    let mut acc_m = [0.0f32; 4];
    for (ib, b) in w.chunks_exact(144).enumerate() {
        let (d, dmin) = (f16_at(b, D), f16_at(b, DMIN));
        let blk = k4_decode(b, SCALES, QS, None);
        // Two rows' four 64-value sums per transposed horizontal sum.
        for r in (0..4).step_by(2) {
            let (v0, m0) = k4_row(&blk, &a[r], ib);
            let (v1, m1) = k4_row(&blk, &a[r + 1], ib);
            let mut sums = [0i32; 8];
            let v = [v0[0], v0[1], v0[2], v0[3], v1[0], v1[1], v1[2], v1[3]];
            // SAFETY: `sums` holds 8 i32; the store is unaligned.
            unsafe { _mm256_storeu_si256(sums.as_mut_ptr() as *mut __m256i, hsum_i32_8x8(&v)) };
            let mut m = [[0i32; 4]; 2];
            // SAFETY: each row of `m` holds 4 i32; the stores are unaligned.
            unsafe {
                _mm_storeu_si128(m[0].as_mut_ptr() as *mut __m128i, m0);
                _mm_storeu_si128(m[1].as_mut_ptr() as *mut __m128i, m1);
            }
            for (q, mins) in [(0usize, m[0]), (1, m[1])] {
                let (ds, dm) = (d * a[r + q].d[ib], dmin * a[r + q].d[ib]);
                for j in 0..4 {
                    acc[r + q] = (sums[4 * q + j] as f32).mul_add(ds, acc[r + q]);
                    acc_m[r + q] = (mins[j] as f32).mul_add(dm, acc_m[r + q]);
                }
            }
        }
    }
    std::array::from_fn(|r| acc[r] - acc_m[r])
}

/// One super-block step of the tiled K-quant product: `(d_w · s1 − dmin_w · s2) · d_a + acc`, with
/// the multiply and the two fused multiply-adds of `tiled_run_microtile_avx2`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn tiled_step(acc: f32, d: f32, s1: i32, dmin: f32, s2: Option<i32>, da: f32) -> f32 {
    let mut res = d * s1 as f32;
    if let Some(s2) = s2 {
        res = (-dmin).mul_add(s2 as f32, res);
    }
    res.mul_add(da, acc)
}

/// Q4_K weights times Q8_K activations in the tiled product's order (batches of 8 or more rows of
/// a Q4_K weight that is not repacked).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_q4_k_tiled(w: &[u8], a: Q8KRow) -> f32 {
    use blocks::q4_k::*;
    let mut acc = 0.0f32;
    for (ib, b) in w.chunks_exact(144).enumerate() {
        let (s1, s2) = k4_totals(&k4_decode(b, SCALES, QS, None), &a, ib);
        acc = tiled_step(acc, f16_at(b, D), s1, f16_at(b, DMIN), Some(s2), a.d[ib]);
    }
    acc
}

/// Q5_K weights times Q8_K activations in the tiled product's order (batches of 8 or more rows).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_q5_k_tiled(w: &[u8], a: Q8KRow) -> f32 {
    use blocks::q5_k::*;
    let mut acc = 0.0f32;
    for (ib, b) in w.chunks_exact(176).enumerate() {
        let (s1, s2) = k4_totals(&k4_decode(b, SCALES, QS, Some(QH)), &a, ib);
        acc = tiled_step(acc, f16_at(b, D), s1, f16_at(b, DMIN), Some(s2), a.d[ib]);
    }
    acc
}

/// The exact integer sum of a Q6_K super-block times Q8_K super-block `ib`:
/// `sum over 16-value groups g of sc[g] · sum((q - 32) · q8)`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q6_k_isum(b: &[u8], a: &Q8KRow, ib: usize) -> i32 {
    hsum_i32_8(super::dot::q6_k_lanes(b, a, ib))
}

/// Q6_K weights times Q8_K activations in the tiled product's order (batches of 8 or more rows).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_q6_k_tiled(w: &[u8], a: Q8KRow) -> f32 {
    use blocks::q6_k::*;
    let mut acc = 0.0f32;
    for (ib, b) in w.chunks_exact(210).enumerate() {
        let s1 = q6_k_isum(b, &a, ib);
        acc = tiled_step(acc, f16_at(b, D), s1, 0.0, None, a.d[ib]);
    }
    acc
}

/// [`dot_q6_k_tiled`] on four activation rows (the weight rows past the last multiple of eight in
/// [`super::rows8::q6_k_x8m`]'s products).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_q6_k_tiled_x4(w: &[u8], a: [Q8KRow; 4]) -> [f32; 4] {
    a.map(|a| dot_q6_k_tiled(w, a))
}

/// F16 weights times f16 activations as tinyBLAS computes them on AVX2: one 8-lane accumulator of
/// fused multiply-adds over the row, then a horizontal sum. The row length is a multiple of 8.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_f16_tinyblas(w: &[u8], a: &[f16]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (wb, ab) in w.chunks_exact(16).zip(a.chunks_exact(8)) {
        // SAFETY: `wb` and `ab` each hold 16 bytes (8 f16); both loads are unaligned.
        let (x, y) = unsafe {
            (
                _mm256_cvtph_ps(_mm_loadu_si128(wb.as_ptr() as *const __m128i)),
                _mm256_cvtph_ps(_mm_loadu_si128(ab.as_ptr() as *const __m128i)),
            )
        };
        acc = _mm256_fmadd_ps(x, y, acc);
    }
    hsum_f32_8(acc)
}

/// 8 bf16 at `p` to 8 f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_bf16(b: &[u8]) -> __m256 {
    // SAFETY: callers pass exactly 16 bytes (8 bf16); the load is unaligned.
    let v = unsafe { _mm_loadu_si128(b.as_ptr() as *const __m128i) };
    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16))
}

/// BF16 weights times bf16 activations as tinyBLAS computes them on AVX2 (see
/// [`dot_f16_tinyblas`]).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_bf16_tinyblas(w: &[u8], a: &[bf16]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (wb, ab) in w.chunks_exact(16).zip(a.chunks_exact(8)) {
        // SAFETY: `ab` is 8 bf16, 16 plain bytes.
        let ab = unsafe { std::slice::from_raw_parts(ab.as_ptr() as *const u8, 16) };
        acc = _mm256_fmadd_ps(load_bf16(wb), load_bf16(ab), acc);
    }
    hsum_f32_8(acc)
}

/// Q2_K weights times Q8_K activations in the tiled product's order (batches of 8 or more rows).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_q2_k_tiled(w: &[u8], a: Q8KRow) -> f32 {
    use blocks::q2_k::*;
    let mut acc = 0.0f32;
    for (ib, b) in w.chunks_exact(84).enumerate() {
        let (sumi, prod) = super::dot::q2_k_lanes(b, &a, ib);
        let (s1, s2) = (hsum_i32_8(sumi), hsum_i32_8(prod));
        acc = tiled_step(acc, f16_at(b, D), s1, f16_at(b, DMIN), Some(s2), a.d[ib]);
    }
    acc
}

/// Q3_K weights times Q8_K activations in the tiled product's order (batches of 8 or more rows).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_q3_k_tiled(w: &[u8], a: Q8KRow) -> f32 {
    use blocks::q3_k::*;
    let mut acc = 0.0f32;
    for (ib, b) in w.chunks_exact(110).enumerate() {
        let s1 = hsum_i32_8(super::dot::q3_k_lanes(b, &a, ib));
        acc = tiled_step(acc, f16_at(b, D), s1, 0.0, None, a.d[ib]);
    }
    acc
}

//! The repacked Q4_0 and Q4_K products eight weight rows at a time, with one row per float lane,
//! as `ggml_gemv/gemm_q4_0_8x8_q8_0` and `ggml_gemv/gemm_q4_K_8x8_q8_K` compute them
//! (`ggml/src/ggml-cpu/arch/x86/repack.cpp`).
//!
//! Each lane does exactly the float steps of the one-row kernels in [`super::orders`] (same
//! values, same order of fused multiply-adds), so the results are bit-identical to them; running
//! eight rows in the lanes of one accumulator replaces a chain of scalar multiply-adds per row,
//! whose latency bounded the one-row kernels. The weights stay in GGUF layout: `w` holds eight
//! consecutive rows of `rb` bytes.

use super::orders::{k4_decode, k4_row, K4Block};
use super::*;
use crate::quant::act::{Q8KRow, Q8Row};
use crate::quant::blocks::{self, QK};

/// Eight f16 (as bits) to eight f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn f16x8(bits: [u16; 8]) -> __m256 {
    // SAFETY: `bits` is 8 u16 (16 bytes); the load is unaligned.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(bits.as_ptr() as *const __m128i) })
}

/// The eight f16 at `off` of each row's block at `block`, as f32 (lane t: row t).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scales8(rows: &[&[u8]; 8], block: usize, off: usize) -> __m256 {
    f16x8(std::array::from_fn(|t| {
        let b = &rows[t][block + off..block + off + 2];
        u16::from_le_bytes([b[0], b[1]])
    }))
}

/// The sums of the lanes of each of eight vectors: lane t of the result is the sum of `v[t]`.
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

/// Transposes eight rows of four i32 into four vectors of eight: lane t of `out[j]` is `m[t][j]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn transpose_8x4(m: &[__m128i; 8]) -> [__m256i; 4] {
    let t4 = |a: __m128i, b: __m128i, c: __m128i, d: __m128i| {
        let (t0, t1) = (_mm_unpacklo_epi32(a, b), _mm_unpacklo_epi32(c, d));
        let (t2, t3) = (_mm_unpackhi_epi32(a, b), _mm_unpackhi_epi32(c, d));
        [
            _mm_unpacklo_epi64(t0, t1),
            _mm_unpackhi_epi64(t0, t1),
            _mm_unpacklo_epi64(t2, t3),
            _mm_unpackhi_epi64(t2, t3),
        ]
    };
    let lo = t4(m[0], m[1], m[2], m[3]);
    let hi = t4(m[4], m[5], m[6], m[7]);
    std::array::from_fn(|j| _mm256_set_m128i(hi[j], lo[j]))
}

/// Splits `w` into its eight rows of `rb` bytes.
#[inline]
fn split8(w: &[u8], rb: usize) -> [&[u8]; 8] {
    std::array::from_fn(|t| &w[t * rb..(t + 1) * rb])
}

/// Asks for the `len` bytes at `at` of the eight rows that follow these in memory (the next group
/// of the caller's rows, usually) to be brought into cache: called once per block with `at`
/// advancing by `len`, it fetches the next group while this one computes. Reading eight rows
/// side by side defeats the hardware prefetchers, which follow one stream per page.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn prefetch_next(w: &[u8], rb: usize, at: usize, len: usize) {
    let p = w.as_ptr().wrapping_add(8 * rb + at);
    let mut o = 0;
    while o < len {
        // A prefetch is a hint: it never faults, whatever the address.
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(o) as *const i8);
        o += 64;
    }
}

/// Eight Q4_0 blocks (one per row, at byte `off` of each) as signed bytes `qx` and their absolute
/// values `ax`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_0_decode8(rows: &[&[u8]; 8], off: usize) -> ([__m256i; 8], [__m256i; 8]) {
    use blocks::q4_0::*;
    let m8 = _mm256_set1_epi8(8);
    let qx: [__m256i; 8] =
        std::array::from_fn(|t| _mm256_sub_epi8(bytes_from_nibbles_32(rows[t], off + QS), m8));
    let ax = std::array::from_fn(|t| _mm256_sign_epi8(qx[t], qx[t]));
    (qx, ax)
}

/// The exact integer dot products of eight decoded Q4_0 blocks with 32 Q8 values `qy`, lane t
/// for row t.
///
/// The byte products are summed as i16 by a tree of horizontal adds, without widening to i32
/// until the end: that halves the multiplies (`vpmaddwd` runs on the same port as `vpmaddubsw` on
/// several x86 cores). No sum overflows: a block's products add up to at most 32 · 8 · 127 =
/// 32512 in magnitude (|q| ≤ 8, |y| ≤ 127).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_0_isums(qx: &[__m256i; 8], ax: &[__m256i; 8], qy: __m256i) -> __m256i {
    let p: [__m256i; 8] =
        std::array::from_fn(|t| _mm256_maddubs_epi16(ax[t], _mm256_sign_epi8(qy, qx[t])));
    let h01 = _mm256_hadd_epi16(p[0], p[1]);
    let h23 = _mm256_hadd_epi16(p[2], p[3]);
    let h45 = _mm256_hadd_epi16(p[4], p[5]);
    let h67 = _mm256_hadd_epi16(p[6], p[7]);
    // Each 128-bit half: the eight rows' sums over that half of the block, in row order.
    let h = _mm256_hadd_epi16(_mm256_hadd_epi16(h01, h23), _mm256_hadd_epi16(h45, h67));
    let s = _mm_add_epi16(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    _mm256_cvtepi16_epi32(s)
}

/// The accumulators' lanes as arrays.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn store<const R: usize>(acc: [__m256; R]) -> [[f32; 8]; R] {
    let mut out = [[0.0f32; 8]; R];
    for (o, v) in out.iter_mut().zip(acc) {
        // SAFETY: `o` holds 8 floats; the store is unaligned.
        unsafe { _mm256_storeu_ps(o.as_mut_ptr(), v) };
    }
    out
}

/// Eight Q4_0 rows (`rb` bytes each, consecutive in `w`) times one Q8_0 row as
/// `ggml_gemv_q4_0_8x8_q8_0` computes them, bit-identical to [`super::orders::dot_q4_0_r8`] on
/// each row: per block, the exact integer sum, then `acc = fma(isum, d_w · d_a, acc)`.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q4_0_x8(w: &[u8], rb: usize, a: Q8Row) -> [f32; 8] {
    use blocks::q4_0::*;
    let rows = split8(w, rb);
    let mut acc = _mm256_setzero_ps();
    for i in 0..rb / 18 {
        let off = i * 18;
        prefetch_next(w, rb, off * 8, 144);
        let (qx, ax) = q4_0_decode8(&rows, off);
        let isum = q4_0_isums(&qx, &ax, load32_i8(a.qs, i * QK));
        let d = _mm256_mul_ps(scales8(&rows, off, D), _mm256_set1_ps(a.d[i]));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc);
    }
    store([acc])[0]
}

/// Stores `v` to `out[at..at + 8]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn store8(out: &mut [f32], at: usize, v: __m256) {
    let s = &mut out[at..at + 8];
    // SAFETY: `s` holds exactly 8 floats; the store is unaligned.
    unsafe { _mm256_storeu_ps(s.as_mut_ptr(), v) }
}

/// Eight Q4_0 rows times every activation row of `a` as `ggml_gemm_q4_0_8x8_q8_0` computes them
/// (the arithmetic of [`q4_0_x8`]), into `out[i * stride + t]` for activation row i and weight
/// row t. Each block of the eight rows is decoded once for all activation rows, whose accumulators
/// live in `out`.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q4_0_x8m(w: &[u8], rb: usize, a: &[Q8Row], out: &mut [f32], stride: usize) {
    use blocks::q4_0::*;
    let rows = split8(w, rb);
    let nb = rb / 18;
    let da = scales_by_block(a.iter().map(|r| r.d), nb);
    let mut acc = vec![_mm256_setzero_ps(); a.len()];
    for b in 0..nb {
        let off = b * 18;
        let (qx, ax) = q4_0_decode8(&rows, off);
        let dw = scales8(&rows, off, D);
        let da = &da[b * a.len()..(b + 1) * a.len()];
        for ((ar, acc), &da) in a.iter().zip(acc.iter_mut()).zip(da) {
            let isum = q4_0_isums(&qx, &ax, load32_i8(ar.qs, b * QK));
            let d = _mm256_mul_ps(dw, _mm256_set1_ps(da));
            *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, *acc);
        }
    }
    for (i, acc) in acc.into_iter().enumerate() {
        store8(out, i * stride, acc);
    }
}

/// The activation rows' block scales transposed: element `b * m + i` is row i's scale of block b
/// (m rows). Read in that order, one block of every row, they stay in few cache lines; in the rows'
/// own arrays each row's scale would be a line of its own.
fn scales_by_block<'a>(rows: impl ExactSizeIterator<Item = &'a [f32]>, nb: usize) -> Vec<f32> {
    let m = rows.len();
    let mut out = vec![0.0f32; nb * m];
    for (i, d) in rows.enumerate() {
        for (b, &v) in d[..nb].iter().enumerate() {
            out[b * m + i] = v;
        }
    }
    out
}

/// Eight Q4_K rows times one Q8_K row as `ggml_gemv_q4_K_8x8_q8_K` computes them, bit-identical
/// to [`super::orders::dot_q4_k_r8`] on each row: per super-block, the scaled sum times
/// `d_w · d_a` and the min sum times `dmin_w · d_a`, each into its own accumulator.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q4_k_x8(w: &[u8], rb: usize, a: Q8KRow) -> [f32; 8] {
    use blocks::q4_k::*;
    let rows = split8(w, rb);
    let (mut acc, mut acc_m) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for ib in 0..rb / 144 {
        let block = ib * 144;
        prefetch_next(w, rb, block * 8, 8 * 144);
        let mut v = [_mm256_setzero_si256(); 8];
        let mut m = [_mm_setzero_si128(); 8];
        for t in 0..8 {
            let blk = k4_decode(&rows[t][block..block + 144], SCALES, QS, None);
            let (s, mn) = k4_row(&blk, &a, ib);
            v[t] = _mm256_add_epi32(_mm256_add_epi32(s[0], s[1]), _mm256_add_epi32(s[2], s[3]));
            m[t] = mn;
        }
        let mj = transpose_8x4(&m);
        let mins = _mm256_add_epi32(
            _mm256_add_epi32(mj[0], mj[1]),
            _mm256_add_epi32(mj[2], mj[3]),
        );
        let da = _mm256_set1_ps(a.d[ib]);
        let ds = _mm256_mul_ps(scales8(&rows, block, D), da);
        let dm = _mm256_mul_ps(scales8(&rows, block, DMIN), da);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hsum_i32_8x8(&v)), ds, acc);
        acc_m = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), dm, acc_m);
    }
    store([_mm256_sub_ps(acc, acc_m)])[0]
}

/// Eight Q4_K rows times every activation row of `a` as `ggml_gemm_q4_K_8x8_q8_K` computes them,
/// bit-identical to [`super::orders::dot_q4_k_r8_x4`] on each pair of rows: like [`q4_k_x8`], but
/// the multiply-adds run per 64 values. Writes `out[i * stride + t]` for activation row i and
/// weight row t. Each super-block of the eight rows is unpacked once for all activation rows.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q4_k_x8m(w: &[u8], rb: usize, a: &[Q8KRow], out: &mut [f32], stride: usize) {
    use blocks::q4_k::*;
    let rows = split8(w, rb);
    let nb = rb / 144;
    let das = scales_by_block(a.iter().map(|r| r.d), nb);
    let mut accs = vec![[_mm256_setzero_ps(); 2]; a.len()];
    let mut v = [[_mm256_setzero_si256(); 8]; 4];
    let mut mn = [_mm_setzero_si128(); 8];
    for ib in 0..rb / 144 {
        let block = ib * 144;
        let blks: [K4Block; 8] =
            std::array::from_fn(|t| k4_decode(&rows[t][block..block + 144], SCALES, QS, None));
        let (d, dmin) = (scales8(&rows, block, D), scales8(&rows, block, DMIN));
        let das = &das[ib * a.len()..(ib + 1) * a.len()];
        for ((ar, acc), &da) in a.iter().zip(accs.iter_mut()).zip(das) {
            for (t, blk) in blks.iter().enumerate() {
                let (s, m) = k4_row(blk, ar, ib);
                for j in 0..4 {
                    v[j][t] = s[j];
                }
                mn[t] = m;
            }
            let mj = transpose_8x4(&mn);
            let da = _mm256_set1_ps(da);
            let (ds, dm) = (_mm256_mul_ps(d, da), _mm256_mul_ps(dmin, da));
            for j in 0..4 {
                acc[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hsum_i32_8x8(&v[j])), ds, acc[0]);
                acc[1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mj[j]), dm, acc[1]);
            }
        }
    }
    for (i, [acc, acc_m]) in accs.into_iter().enumerate() {
        store8(out, i * stride, _mm256_sub_ps(acc, acc_m));
    }
}

#[cfg(test)]
mod tests {
    use super::super::orders as o;
    use super::*;
    use crate::quant::act::{quantize_q8, quantize_q8_k};
    use crate::quant::isa::Isa;
    use crate::quant::tests::{random_weights, Rng};
    use crate::quant::GgmlType;

    /// Every lane equals the one-row kernel on that row, bit for bit: gemv against the one-row
    /// gemv order, all-rows gemm against the four-row gemm order.
    #[test]
    fn eight_rows_equal_one_row_kernels() {
        if !Isa::best().has_avx2() {
            return;
        }
        let mut rng = Rng(0x0008_0808);
        const M: usize = 8;
        for k in [256usize, 2048, 5632] {
            let x: Vec<f32> = (0..M * k).map(|_| rng.f32() * 4.0).collect();
            let q = quantize_q8(Isa::scalar(), &x, k, false);
            let a: Vec<Q8Row> = (0..M).map(|r| q.row(r, k)).collect();
            let w = random_weights(&mut rng, GgmlType::Q4_0, 8, k);
            let rb = w.len() / 8;
            let mut all = vec![0.0f32; M * 8];
            // SAFETY: AVX2, FMA and F16C were detected above.
            let one = unsafe { q4_0_x8(&w, rb, a[0]) };
            // SAFETY: as above.
            unsafe { q4_0_x8m(&w, rb, &a, &mut all, 8) };
            for t in 0..8 {
                let row = &w[t * rb..(t + 1) * rb];
                // SAFETY: as above.
                let want = unsafe { o::dot_q4_0_r8(row, a[0]) };
                assert_eq!(one[t].to_bits(), want.to_bits(), "Q4_0 gemv k={k} row {t}");
                for g in (0..M).step_by(4) {
                    let four = [a[g], a[g + 1], a[g + 2], a[g + 3]];
                    // SAFETY: as above.
                    let want = unsafe { o::dot_q4_0_r8_x4(row, four) };
                    for r in 0..4 {
                        let got = all[(g + r) * 8 + t];
                        assert_eq!(got.to_bits(), want[r].to_bits(), "Q4_0 gemm k={k}");
                    }
                }
            }
            let qk = quantize_q8_k(&x, k);
            let a: Vec<Q8KRow> = (0..M).map(|r| qk.row(r, k)).collect();
            let w = random_weights(&mut rng, GgmlType::Q4_K, 8, k);
            let rb = w.len() / 8;
            // SAFETY: as above.
            let one = unsafe { q4_k_x8(&w, rb, a[0]) };
            // SAFETY: as above.
            unsafe { q4_k_x8m(&w, rb, &a, &mut all, 8) };
            for t in 0..8 {
                let row = &w[t * rb..(t + 1) * rb];
                // SAFETY: as above.
                let want = unsafe { o::dot_q4_k_r8(row, a[0]) };
                assert_eq!(one[t].to_bits(), want.to_bits(), "Q4_K gemv k={k} row {t}");
                for g in (0..M).step_by(4) {
                    let four = [a[g], a[g + 1], a[g + 2], a[g + 3]];
                    // SAFETY: as above.
                    let want = unsafe { o::dot_q4_k_r8_x4(row, four) };
                    for r in 0..4 {
                        let got = all[(g + r) * 8 + t];
                        assert_eq!(got.to_bits(), want[r].to_bits(), "Q4_K gemm k={k}");
                    }
                }
            }
        }
    }
}

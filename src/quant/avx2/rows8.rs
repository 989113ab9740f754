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

/// Eight Q4_0 rows times `R` Q8_0 rows: per block, the exact integer sums of the eight rows in one
/// vector, then `acc = fma(isum, d_w · d_a, acc)`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_0<const R: usize>(w: &[u8], rb: usize, a: [Q8Row; R]) -> [[f32; 8]; R] {
    use blocks::q4_0::*;
    let rows = split8(w, rb);
    let mut acc = [_mm256_setzero_ps(); R];
    let m8 = _mm256_set1_epi8(8);
    let ones = _mm256_set1_epi16(1);
    for i in 0..rb / 18 {
        let off = i * 18;
        if R == 1 {
            // Products of several activation rows reuse the weights from cache.
            prefetch_next(w, rb, off * 8, 144);
        }
        let qx: [__m256i; 8] =
            std::array::from_fn(|t| _mm256_sub_epi8(bytes_from_nibbles_32(rows[t], off + QS), m8));
        let ax: [__m256i; 8] = std::array::from_fn(|t| _mm256_sign_epi8(qx[t], qx[t]));
        let dw = scales8(&rows, off, D);
        for r in 0..R {
            let qy = load32_i8(a[r].qs, i * QK);
            let v: [__m256i; 8] = std::array::from_fn(|t| {
                let sy = _mm256_sign_epi8(qy, qx[t]);
                _mm256_madd_epi16(ones, _mm256_maddubs_epi16(ax[t], sy))
            });
            let d = _mm256_mul_ps(dw, _mm256_set1_ps(a[r].d[i]));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hsum_i32_8x8(&v)), d, acc[r]);
        }
    }
    store(acc)
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

/// Eight Q4_0 rows (`rb` bytes each, consecutive in `w`) times one Q8_0 row, bit-identical to
/// [`super::orders::dot_q4_0_r8`] on each row.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q4_0_x8(w: &[u8], rb: usize, a: Q8Row) -> [f32; 8] {
    q4_0::<1>(w, rb, [a])[0]
}

/// [`q4_0_x8`] for four activation rows (`ggml_gemm_q4_0_8x8_q8_0`).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q4_0_x8x4(w: &[u8], rb: usize, a: [Q8Row; 4]) -> [[f32; 8]; 4] {
    q4_0::<4>(w, rb, a)
}

/// The integer parts of row `t`'s unpacked super-block `blk` times Q8_K super-block `ib` of `a`,
/// written to lane t: `v[j][t]` its scaled sums per 64 values `j`, `m[t]` its four min sums.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_k_row_into(
    blk: &K4Block,
    a: &Q8KRow,
    ib: usize,
    t: usize,
    v: &mut [[__m256i; 8]; 4],
    m: &mut [__m128i; 8],
) {
    let (s, mn) = k4_row(blk, a, ib);
    for j in 0..4 {
        v[j][t] = s[j];
    }
    m[t] = mn;
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

/// Eight Q4_K rows times four Q8_K rows as `ggml_gemm_q4_K_8x8_q8_K` computes them, bit-identical
/// to [`super::orders::dot_q4_k_r8_x4`]: like [`q4_k_x8`], but the multiply-adds run per 64 values.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q4_k_x8x4(w: &[u8], rb: usize, a: [Q8KRow; 4]) -> [[f32; 8]; 4] {
    use blocks::q4_k::*;
    let rows = split8(w, rb);
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut acc_m = [_mm256_setzero_ps(); 4];
    // Every super-block overwrites all of these (zeroing them per super-block cost a memset).
    let mut v = [[[_mm256_setzero_si256(); 8]; 4]; 4];
    let mut mn = [[_mm_setzero_si128(); 8]; 4];
    for ib in 0..rb / 144 {
        let block = ib * 144;
        for (t, row) in rows.iter().enumerate() {
            let blk = k4_decode(&row[block..block + 144], SCALES, QS, None);
            for r in 0..4 {
                q4_k_row_into(&blk, &a[r], ib, t, &mut v[r], &mut mn[r]);
            }
        }
        let (d, dmin) = (scales8(&rows, block, D), scales8(&rows, block, DMIN));
        for r in 0..4 {
            let s = [
                hsum_i32_8x8(&v[r][0]),
                hsum_i32_8x8(&v[r][1]),
                hsum_i32_8x8(&v[r][2]),
                hsum_i32_8x8(&v[r][3]),
            ];
            let m = transpose_8x4(&mn[r]);
            let da = _mm256_set1_ps(a[r].d[ib]);
            let (ds, dm) = (_mm256_mul_ps(d, da), _mm256_mul_ps(dmin, da));
            for j in 0..4 {
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[j]), ds, acc[r]);
                acc_m[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m[j]), dm, acc_m[r]);
            }
        }
    }
    store(std::array::from_fn(|r| _mm256_sub_ps(acc[r], acc_m[r])))
}

#[cfg(test)]
mod tests {
    use super::super::orders as o;
    use super::*;
    use crate::quant::act::{quantize_q8, quantize_q8_k};
    use crate::quant::isa::Isa;
    use crate::quant::tests::{random_weights, Rng};
    use crate::quant::GgmlType;

    /// Every lane equals the one-row kernel on that row, bit for bit.
    #[test]
    fn eight_rows_equal_one_row_kernels() {
        if !Isa::best().has_avx2() {
            return;
        }
        let mut rng = Rng(0x0008_0808);
        for k in [256usize, 2048, 5632] {
            let x: Vec<f32> = (0..4 * k).map(|_| rng.f32() * 4.0).collect();
            let q = quantize_q8(Isa::scalar(), &x, false);
            let a: [Q8Row; 4] = std::array::from_fn(|r| q.row(r, k));
            let w = random_weights(&mut rng, GgmlType::Q4_0, 8, k);
            let rb = w.len() / 8;
            // SAFETY: AVX2, FMA and F16C were detected above.
            let (one, four) = unsafe { (q4_0_x8(&w, rb, a[0]), q4_0_x8x4(&w, rb, a)) };
            for t in 0..8 {
                let row = &w[t * rb..(t + 1) * rb];
                // SAFETY: as above.
                let (want1, want4) =
                    unsafe { (o::dot_q4_0_r8(row, a[0]), o::dot_q4_0_r8_x4(row, a)) };
                assert_eq!(one[t].to_bits(), want1.to_bits(), "Q4_0 gemv k={k} row {t}");
                for r in 0..4 {
                    assert_eq!(four[r][t].to_bits(), want4[r].to_bits(), "Q4_0 gemm k={k}");
                }
            }
            let qk = quantize_q8_k(&x);
            let a: [Q8KRow; 4] = std::array::from_fn(|r| qk.row(r, k));
            let w = random_weights(&mut rng, GgmlType::Q4_K, 8, k);
            let rb = w.len() / 8;
            // SAFETY: as above.
            let (one, four) = unsafe { (q4_k_x8(&w, rb, a[0]), q4_k_x8x4(&w, rb, a)) };
            for t in 0..8 {
                let row = &w[t * rb..(t + 1) * rb];
                // SAFETY: as above.
                let (want1, want4) =
                    unsafe { (o::dot_q4_k_r8(row, a[0]), o::dot_q4_k_r8_x4(row, a)) };
                assert_eq!(one[t].to_bits(), want1.to_bits(), "Q4_K gemv k={k} row {t}");
                for r in 0..4 {
                    assert_eq!(four[r][t].to_bits(), want4[r].to_bits(), "Q4_K gemm k={k}");
                }
            }
        }
    }
}

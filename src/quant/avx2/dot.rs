//! AVX2 dot products of one weight row with one activation row, one function per format, each the
//! counterpart of the scalar function of the same name in `quant::dot`.

use super::rows8;
use super::*;
use crate::quant::act::{Q8Eight, Q8KRow, Q8Row};
use crate::quant::blocks::{self, u32_at, QK, QK_K};
use half::{bf16, f16};

/// Generates, for one 32-value block format, the one-row kernel `$one(w, a) -> f32`, the
/// eight-weight-row kernel `$rows8` and, when named, the eight-activation-row kernel
/// `$eight(w, a) -> [f32; 8]` (weights decoded once per block, each activation row with its own
/// accumulator in the same order, so all give identical results), compiled for the target features `$feat` with
/// `$us8(ax, sy)` as the product of unsigned by signed bytes summed in groups of four to eight
/// floats (the AVX-512 module instantiates it again with VNNI's).
/// `$decode(block) -> (qx, d, m)` unpacks a block to 32 bytes, its scale and its min (0 if none);
/// `$signed` says whether `qx` is signed (products through `_mm256_sign_epi8`) or unsigned.
macro_rules! q8_family {
    ($feat:literal, $us8:ident, $one:ident, $rows8:ident, $bytes:expr, $decode:ident, $signed:expr, $min:expr, $doc:expr $(, eight: $eight:ident)?) => {
        #[doc = $doc]
        #[target_feature(enable = $feat)]
        pub fn $one(w: &[u8], a: Q8Row) -> f32 {
            let mut acc = _mm256_setzero_ps();
            let mut summs = 0.0f32;
            let blocks = w.chunks_exact($bytes).zip(a.qs.chunks_exact(QK)).zip(a.d);
            for (i, ((b, qy), &dy)) in blocks.enumerate() {
                prefetch_ahead(b, PREFETCH_AHEAD);
                let (qx, dx, mx) = $decode(b);
                if $min {
                    summs += mx * a.s[i];
                }
                let qy = load32_i8(qy, 0);
                let p = if $signed {
                    $us8(_mm256_sign_epi8(qx, qx), _mm256_sign_epi8(qy, qx))
                } else {
                    $us8(qx, qy)
                };
                acc = _mm256_fmadd_ps(_mm256_set1_ps(dx * dy), p, acc);
            }
            hsum_f32_8(acc) + summs
        }

        $(
        #[doc = concat!($doc, " Eight activation rows at once ([`Q8Eight`]).")]
        #[target_feature(enable = $feat)]
        pub fn $eight(w: &[u8], a: &Q8Eight) -> [f32; 8] {
            let nb = w.len() / $bytes;
            let (k, stride) = (nb * QK, a.stride);
            assert!(
                a.qs.len() >= 7 * stride + k
                    && a.d.len() >= 8 * nb
                    && (!$min || a.s.len() >= 8 * nb),
                "eight activation rows of {k}"
            );
            let mut acc = [_mm256_setzero_ps(); 8];
            let mut summs = _mm256_setzero_ps();
            for (i, b) in w.chunks_exact($bytes).enumerate() {
                let (qx, dx, mx) = $decode(b);
                let ax = if $signed {
                    _mm256_sign_epi8(qx, qx)
                } else {
                    qx
                };
                let dxv = _mm256_set1_ps(dx);
                // SAFETY: the eight scales of block i (and sums) lie inside `a.d` (and `a.s`), as
                // asserted above; the loads are unaligned.
                let dy = unsafe { _mm256_loadu_ps(a.d.as_ptr().add(8 * i)) };
                if $min {
                    // SAFETY: as above.
                    let s = unsafe { _mm256_loadu_ps(a.s.as_ptr().add(8 * i)) };
                    summs = _mm256_add_ps(summs, _mm256_mul_ps(_mm256_set1_ps(mx), s));
                }
                // `dx · dy` of the eight rows in one product (the rounding of the scalar one),
                // then each row's value broadcast from memory.
                let dd = f32x8_array(_mm256_mul_ps(dxv, dy));
                let mut qp = a.qs[i * QK..].as_ptr();
                for r in 0..8 {
                    // SAFETY: row r < 8: its block i lies inside `a.qs`, as asserted above; the
                    // load is unaligned.
                    let qy = unsafe { _mm256_loadu_si256(qp as *const __m256i) };
                    qp = qp.wrapping_add(stride);
                    let sy = if $signed {
                        _mm256_sign_epi8(qy, qx)
                    } else {
                        qy
                    };
                    let p = $us8(ax, sy);
                    acc[r] = _mm256_fmadd_ps(broadcast_mem(&dd[r]), p, acc[r]);
                }
            }
            let mut sm = [0.0f32; 8];
            // SAFETY: `sm` holds 8 floats; the store is unaligned.
            unsafe { _mm256_storeu_ps(sm.as_mut_ptr(), summs) };
            std::array::from_fn(|r| hsum_f32_8(acc[r]) + sm[r])
        }
        )?

        #[doc = concat!($doc, " Eight weight rows (`rb` bytes each, consecutive in `w`) at once,")]
        #[doc = "each in its own accumulator with the float steps of the one-row kernel: eight"]
        #[doc = "independent multiply-add chains instead of one (whose latency bounded decode)."]
        #[target_feature(enable = $feat)]
        pub fn $rows8(w: &[u8], rb: usize, a: Q8Row) -> [f32; 8] {
            let nb = rb / $bytes;
            let rows = rows8::Rows8::new(w, rb);
            assert!(
                a.qs.len() >= nb * QK && a.d.len() >= nb && (!$min || a.s.len() >= nb),
                "an activation row of {nb} blocks"
            );
            let mut acc = [_mm256_setzero_ps(); 8];
            let mut summs = _mm256_setzero_ps();
            for i in 0..nb {
                let off = i * $bytes;
                rows8::prefetch_next(w, rb, off * 8, 8 * $bytes);
                let qy = load32_i8(a.qs, i * QK);
                // Every format of the family keeps its f16 scale first and its min (if any) next.
                let blk = rows.block::<$bytes>(off);
                let (dw, m) = rows8::f16_pairs_of(&blk, 0);
                let d = _mm256_mul_ps(dw, _mm256_set1_ps(a.d[i]));
                if $min {
                    summs = _mm256_add_ps(summs, _mm256_mul_ps(m, _mm256_set1_ps(a.s[i])));
                }
                let dd = f32x8_array(d);
                for r in 0..8 {
                    let (qx, _, _) = $decode(blk[r]);
                    let p = if $signed {
                        $us8(_mm256_sign_epi8(qx, qx), _mm256_sign_epi8(qy, qx))
                    } else {
                        $us8(qx, qy)
                    };
                    acc[r] = _mm256_fmadd_ps(broadcast_mem(&dd[r]), p, acc[r]);
                }
            }
            let mut sm = [0.0f32; 8];
            // SAFETY: `sm` holds 8 floats; the store is unaligned.
            unsafe { _mm256_storeu_ps(sm.as_mut_ptr(), summs) };
            std::array::from_fn(|r| hsum_f32_8(acc[r]) + sm[r])
        }
    };
}
pub(in crate::quant) use q8_family;

/// A Q4_0 block: values 0..16 minus 8.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn decode_q4_0(b: &[u8]) -> (__m256i, f32, f32) {
    use blocks::q4_0::*;
    let q = _mm256_sub_epi8(bytes_from_nibbles_32(b, QS), _mm256_set1_epi8(8));
    (q, f16_at(b, D), 0.0)
}

/// A Q4_1 block: values 0..16, scale and min.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn decode_q4_1(b: &[u8]) -> (__m256i, f32, f32) {
    use blocks::q4_1::*;
    (bytes_from_nibbles_32(b, QS), f16_at(b, D), f16_at(b, M))
}

/// A Q5_0 block: values 0..32 minus 16.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn decode_q5_0(b: &[u8]) -> (__m256i, f32, f32) {
    use blocks::q5_0::*;
    let hi = _mm256_andnot_si256(
        bytes_from_bits_32(u32_at(b, QH)),
        _mm256_set1_epi8(0xF0u8 as i8),
    );
    (
        _mm256_or_si256(bytes_from_nibbles_32(b, QS), hi),
        f16_at(b, D),
        0.0,
    )
}

/// A Q5_1 block: values 0..32, scale and min.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn decode_q5_1(b: &[u8]) -> (__m256i, f32, f32) {
    use blocks::q5_1::*;
    let hi = _mm256_and_si256(bytes_from_bits_32(u32_at(b, QH)), _mm256_set1_epi8(0x10));
    let q = _mm256_or_si256(bytes_from_nibbles_32(b, QS), hi);
    (q, f16_at(b, D), f16_at(b, M))
}

/// A Q8_0 block: signed values.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn decode_q8_0(b: &[u8]) -> (__m256i, f32, f32) {
    use blocks::q8_0::*;
    (load32(b, QS), f16_at(b, D), 0.0)
}

q8_family!(
    "avx2,fma,f16c",
    mul_sum_us8_pairs_float,
    dot_q4_0,
    dot_q4_0_rows8,
    18,
    decode_q4_0,
    true,
    false,
    "Q4_0 weights times Q8_0 activations.",
    eight: dot_q4_0_x8
);
q8_family!(
    "avx2,fma,f16c",
    mul_sum_us8_pairs_float,
    dot_q4_1,
    dot_q4_1_rows8,
    20,
    decode_q4_1,
    false,
    true,
    "Q4_1 weights times Q8_1 activations.",
    eight: dot_q4_1_x8
);
q8_family!(
    "avx2,fma,f16c",
    mul_sum_us8_pairs_float,
    dot_q5_0,
    dot_q5_0_rows8,
    22,
    decode_q5_0,
    true,
    false,
    "Q5_0 weights times Q8_0 activations.",
    eight: dot_q5_0_x8
);
q8_family!(
    "avx2,fma,f16c",
    mul_sum_us8_pairs_float,
    dot_q5_1,
    dot_q5_1_rows8,
    24,
    decode_q5_1,
    false,
    true,
    "Q5_1 weights times Q8_1 activations.",
    eight: dot_q5_1_x8
);
q8_family!(
    "avx2,fma,f16c",
    mul_sum_us8_pairs_float,
    dot_q8_0,
    dot_q8_0_rows8,
    34,
    decode_q8_0,
    true,
    false,
    "Q8_0 weights times Q8_0 activations.",
    eight: dot_q8_0_x8
);

/// Loads the 16 Q8_K group sums of super-block `ib`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_bsums(a: &Q8KRow, ib: usize) -> __m256i {
    let s = &a.bsums[ib * 16..ib * 16 + 16];
    // SAFETY: `s` holds exactly 16 i16 (32 bytes); the load is unaligned.
    unsafe { _mm256_loadu_si256(s.as_ptr() as *const __m256i) }
}

/// A shuffle that broadcasts 16-bit lane `i` of each 128-bit half.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn sel(i: usize) -> __m256i {
    _mm256_set1_epi16(((2 * i) | ((2 * i + 1) << 8)) as i16)
}

/// Shifts each 16-bit lane right by a run-time count (`_mm256_srl_epi16` with the count in a
/// register).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn srl_epi16_by(v: __m256i, count: usize) -> __m256i {
    _mm256_srl_epi16(v, _mm_cvtsi32_si128(count as i32))
}

/// Q4_K weights times Q8_K activations.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_q4_k(w: &[u8], a: Q8KRow) -> f32 {
    use blocks::q4_k::*;
    let m4 = _mm256_set1_epi8(0xF);
    let mut acc = _mm256_setzero_ps();
    let mut acc_m = _mm_setzero_ps();
    for (ib, b) in w.chunks_exact(144).enumerate() {
        let d = a.d[ib] * f16_at(b, D);
        let dmin = -a.d[ib] * f16_at(b, DMIN);
        let (sc, mn) = blocks::scales_mins_k4(&b[SCALES..SCALES + 12]);
        let mut packed = [0u8; 16];
        packed[..8].copy_from_slice(&sc);
        packed[8..].copy_from_slice(&mn);
        let mins_scales = _mm256_cvtepu8_epi16(load16(&packed, 0));

        let q8sums = load_bsums(&a, ib);
        let q8s = _mm_hadd_epi16(
            _mm256_extracti128_si256(q8sums, 0),
            _mm256_extracti128_si256(q8sums, 1),
        );
        let prod = _mm_madd_epi16(_mm256_extracti128_si256(mins_scales, 1), q8s);
        acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m);

        let sc128 = _mm256_extracti128_si256(mins_scales, 0);
        let scales = _mm256_set_m128i(sc128, sc128);
        let mut sumi = _mm256_setzero_si256();
        for j in 0..QK_K / 64 {
            let scale_l = _mm256_shuffle_epi8(scales, sel(2 * j));
            let scale_h = _mm256_shuffle_epi8(scales, sel(2 * j + 1));
            let q4bits = load32(b, QS + 32 * j);
            let q4l = _mm256_and_si256(q4bits, m4);
            let q4h = _mm256_and_si256(_mm256_srli_epi16(q4bits, 4), m4);
            let q8l = load32_i8(a.qs, ib * QK_K + 64 * j);
            let q8h = load32_i8(a.qs, ib * QK_K + 64 * j + 32);
            let p16l = _mm256_madd_epi16(scale_l, _mm256_maddubs_epi16(q4l, q8l));
            let p16h = _mm256_madd_epi16(scale_h, _mm256_maddubs_epi16(q4h, q8h));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p16l, p16h));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    acc_m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
    acc_m = _mm_add_ss(acc_m, _mm_movehdup_ps(acc_m));
    hsum_f32_8(acc) + _mm_cvtss_f32(acc_m)
}

/// Q5_K weights times Q8_K activations (`ggml_vec_dot_q5_K_q8_K`: the min term is summed as a
/// scalar, one fused multiply-add per super-block).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_q5_k(w: &[u8], a: Q8KRow) -> f32 {
    use blocks::q5_k::*;
    let m4 = _mm256_set1_epi8(0xF);
    let mut acc = _mm256_setzero_ps();
    let mut summs = 0.0f32;
    for (ib, b) in w.chunks_exact(176).enumerate() {
        let d = a.d[ib] * f16_at(b, D);
        let dmin = -a.d[ib] * f16_at(b, DMIN);
        let (sc, mn) = blocks::scales_mins_k4(&b[SCALES..SCALES + 12]);
        let mut packed = [0u8; 16];
        packed[..8].copy_from_slice(&sc);
        packed[8..].copy_from_slice(&mn);
        let mins_scales = _mm256_cvtepu8_epi16(load16(&packed, 0));

        let q8sums = load_bsums(&a, ib);
        let q8s = _mm_hadd_epi16(
            _mm256_extracti128_si256(q8sums, 0),
            _mm256_extracti128_si256(q8sums, 1),
        );
        let prod = _mm_madd_epi16(_mm256_extracti128_si256(mins_scales, 1), q8s);
        let z = _mm_setzero_si128();
        let isum = _mm_cvtsi128_si32(_mm_hadd_epi32(_mm_hadd_epi32(prod, z), z));
        summs = dmin.mul_add(isum as f32, summs);

        let sc128 = _mm256_extracti128_si256(mins_scales, 0);
        let scales = _mm256_set_m128i(sc128, sc128);
        let hbits = load32(b, QH);
        let mut sumi = _mm256_setzero_si256();
        for j in 0..QK_K / 64 {
            let scale_l = _mm256_shuffle_epi8(scales, sel(2 * j));
            let scale_h = _mm256_shuffle_epi8(scales, sel(2 * j + 1));
            let q4bits = load32(b, QS + 32 * j);
            // Fifth bits: bit 2j of each qh byte for the low half, bit 2j + 1 for the high half.
            let hl = _mm256_and_si256(hbits, _mm256_set1_epi8(1 << (2 * j)));
            let hh = _mm256_and_si256(hbits, _mm256_set1_epi8(2 << (2 * j)));
            let hl = _mm256_slli_epi16(srl_epi16_by(hl, 2 * j), 4);
            let hh = _mm256_slli_epi16(srl_epi16_by(hh, 2 * j + 1), 4);
            let q4l = _mm256_or_si256(_mm256_and_si256(q4bits, m4), hl);
            let q4h = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4bits, 4), m4), hh);
            let q8l = load32_i8(a.qs, ib * QK_K + 64 * j);
            let q8h = load32_i8(a.qs, ib * QK_K + 64 * j + 32);
            let p16l = _mm256_madd_epi16(scale_l, _mm256_maddubs_epi16(q4l, q8l));
            let p16h = _mm256_madd_epi16(scale_h, _mm256_maddubs_epi16(q4h, q8h));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p16l, p16h));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_f32_8(acc) + summs
}

/// The eight i32 lanes of a Q6_K super-block times Q8_K super-block `ib` (`ggml_vec_dot_q6_K_q8_K`
/// before its float step): their sum is `sum over 16-value groups g of sc[g] · sum((q - 32) · q8)`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q6_k_lanes(b: &[u8], a: &Q8KRow, ib: usize) -> __m256i {
    q6_k_lanes_n(b, &[*a], ib)[0]
}

/// [`q6_k_lanes`] for `R` activation rows at once: the weights are decoded once for all of them,
/// and each row's lanes are those [`q6_k_lanes`] gives it.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q6_k_lanes_n<const R: usize>(b: &[u8], a: &[Q8KRow; R], ib: usize) -> [__m256i; R] {
    use blocks::q6_k::*;
    let m3 = _mm256_set1_epi8(3);
    let m15 = _mm256_set1_epi8(15);
    let scales = load16(b, SCALES);
    let scales16 = _mm256_cvtepi8_epi16(scales);
    let mut sumi = [_mm256_setzero_si256(); R];
    for j in 0..QK_K / 128 {
        let q4bits1 = load32(b, QL + 64 * j);
        let q4bits2 = load32(b, QL + 64 * j + 32);
        let q4bits_h = load32(b, QH + 32 * j);
        let q4h0 = _mm256_slli_epi16(_mm256_and_si256(q4bits_h, m3), 4);
        let q4h1 = _mm256_slli_epi16(_mm256_and_si256(q4bits_h, _mm256_set1_epi8(12)), 2);
        let q4h2 = _mm256_and_si256(q4bits_h, _mm256_set1_epi8(48));
        let q4h3 = _mm256_srli_epi16(_mm256_and_si256(q4bits_h, _mm256_set1_epi8(-64)), 2);
        let q0 = _mm256_or_si256(_mm256_and_si256(q4bits1, m15), q4h0);
        let q1 = _mm256_or_si256(_mm256_and_si256(q4bits2, m15), q4h1);
        let q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4bits1, 4), m15), q4h2);
        let q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4bits2, 4), m15), q4h3);
        let base = ib * QK_K + 128 * j;
        for (k, q) in [q0, q1, q2, q3].into_iter().enumerate() {
            let g = 8 * j + 2 * k;
            let sel = _mm_set_epi64x(
                0x0101_0101_0101_0101 * (g as i64 + 1),
                0x0101_0101_0101_0101 * g as i64,
            );
            let sc = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, sel));
            for (s, a) in sumi.iter_mut().zip(a) {
                let p16 = _mm256_maddubs_epi16(q, load32_i8(a.qs, base + 32 * k));
                *s = _mm256_add_epi32(*s, _mm256_madd_epi16(sc, p16));
            }
        }
    }
    std::array::from_fn(|r| {
        let q8sclsub = _mm256_slli_epi32(_mm256_madd_epi16(load_bsums(&a[r], ib), scales16), 5);
        _mm256_sub_epi32(sumi[r], q8sclsub)
    })
}

/// One Q6_K weight row times four Q8_K activation rows, each bit-identical to [`dot_q6_k`]: the
/// weights are read and decoded once for the four (the product of a few sessions decoding
/// together takes this path).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_q6_k_x4(w: &[u8], a: [Q8KRow; 4]) -> [f32; 4] {
    use blocks::q6_k::*;
    let mut acc = [_mm256_setzero_ps(); 4];
    for (ib, b) in w.chunks_exact(210).enumerate() {
        for line in (0..210).step_by(64) {
            prefetch_ahead(b, PREFETCH_AHEAD + line);
        }
        let dw = f16_at(b, D);
        let sumi = q6_k_lanes_n(b, &a, ib);
        for r in 0..4 {
            let d = a[r].d[ib] * dw;
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
        }
    }
    acc.map(|v| hsum_f32_8(v))
}

/// Q6_K weights times Q8_K activations.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_q6_k(w: &[u8], a: Q8KRow) -> f32 {
    use blocks::q6_k::*;
    let mut acc = _mm256_setzero_ps();
    for (ib, b) in w.chunks_exact(210).enumerate() {
        for line in (0..210).step_by(64) {
            prefetch_ahead(b, PREFETCH_AHEAD + line);
        }
        let d = a.d[ib] * f16_at(b, D);
        let sumi = q6_k_lanes(b, &a, ib);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_f32_8(acc)
}

/// F32 weights (little-endian bytes) times f32 activations.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_f32(w: &[u8], a: &[f32]) -> f32 {
    let n = a.len().min(w.len() / 4);
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (r, acc) in acc.iter_mut().enumerate() {
            let o = i + 8 * r;
            let wb = &w[4 * o..4 * o + 32];
            let ab = &a[o..o + 8];
            // SAFETY: `wb` holds 32 bytes (8 f32) and `ab` 8 f32; both loads are unaligned.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_ps(wb.as_ptr() as *const f32),
                    _mm256_loadu_ps(ab.as_ptr()),
                )
            };
            *acc = _mm256_fmadd_ps(x, y, *acc);
        }
        i += 32;
    }
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
    let mut sum = hsum_f32_8(s) as f64;
    for j in i..n {
        let b = &w[4 * j..4 * j + 4];
        sum += (f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * a[j]) as f64;
    }
    sum as f32
}

/// F16 weights times f16 activations (`ggml_vec_dot_f16`).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_f16(w: &[u8], a: &[f16]) -> f32 {
    let n = a.len().min(w.len() / 2);
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (r, acc) in acc.iter_mut().enumerate() {
            let o = i + 8 * r;
            let wb = &w[2 * o..2 * o + 16];
            let ab = &a[o..o + 8];
            // SAFETY: `wb` and `ab` each hold 16 bytes (8 f16); both loads are unaligned.
            let (x, y) = unsafe {
                (
                    _mm256_cvtph_ps(_mm_loadu_si128(wb.as_ptr() as *const __m128i)),
                    _mm256_cvtph_ps(_mm_loadu_si128(ab.as_ptr() as *const __m128i)),
                )
            };
            *acc = _mm256_fmadd_ps(x, y, *acc);
        }
        i += 32;
    }
    // GGML_F32x8_REDUCE: (0 + 2) + (1 + 3), halves added, then two horizontal adds.
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
    let t0 = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    let t1 = _mm_hadd_ps(t0, t0);
    let mut sum = _mm_cvtss_f32(_mm_hadd_ps(t1, t1)) as f64;
    for j in i..n {
        let wv = f16_to_f32(u16::from_le_bytes([w[2 * j], w[2 * j + 1]]));
        sum += (wv * a[j].to_f32()) as f64;
    }
    sum as f32
}

/// 8 bf16 to 8 f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn widen_bf16(v: __m128i) -> __m256 {
    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16))
}

/// BF16 weights times bf16 activations.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_bf16(w: &[u8], a: &[bf16]) -> f32 {
    let n = a.len().min(w.len() / 2);
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (r, acc) in acc.iter_mut().enumerate() {
            let o = i + 8 * r;
            let wb = &w[2 * o..2 * o + 16];
            let ab = &a[o..o + 8];
            // SAFETY: `wb` and `ab` each hold 16 bytes (8 bf16); both loads are unaligned.
            let (x, y) = unsafe {
                (
                    _mm_loadu_si128(wb.as_ptr() as *const __m128i),
                    _mm_loadu_si128(ab.as_ptr() as *const __m128i),
                )
            };
            let prod = _mm256_mul_ps(widen_bf16(x), widen_bf16(y));
            *acc = _mm256_add_ps(prod, *acc);
        }
        i += 32;
    }
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
    let mut sum = hsum_f32_8(s) as f64;
    for j in i..n {
        let wv = f32::from_bits((u16::from_le_bytes([w[2 * j], w[2 * j + 1]]) as u32) << 16);
        sum += (wv * a[j].to_f32()) as f64;
    }
    sum as f32
}

/// The 16-bit scale pattern for four 32-value chunks of a 128-value half (`get_scale_shuffle_q3k`):
/// chunk `k` takes scale `2k` in its low 128 bits and `2k + 1` in its high 128 bits.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scale_shuffle_q3k(scales: __m256i, k: usize) -> __m256i {
    let lo = ((4 * k) | ((4 * k + 1) << 8)) as i16;
    let hi = ((4 * k + 2) | ((4 * k + 3) << 8)) as i16;
    let pattern = _mm256_set_m128i(_mm_set1_epi16(hi), _mm_set1_epi16(lo));
    _mm256_shuffle_epi8(scales, pattern)
}

/// The two 128-value halves' 16-bit scales, each duplicated in both 128-bit lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn halves_i16(scales8: __m128i) -> [__m256i; 2] {
    let all = _mm256_cvtepi8_epi16(scales8);
    let (l, h) = (
        _mm256_extracti128_si256(all, 0),
        _mm256_extracti128_si256(all, 1),
    );
    [_mm256_set_m128i(l, l), _mm256_set_m128i(h, h)]
}

/// The integer lanes of a Q2_K super-block times Q8_K super-block `ib`, as
/// `ggml_vec_dot_q2_K_q8_K` (AVX2) forms them: the scaled sums (8 lanes) and the min sums (8 lanes,
/// `m[2i]·bsum[2i] + m[2i+1]·bsum[2i+1]`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q2_k_lanes(b: &[u8], a: &Q8KRow, ib: usize) -> (__m256i, __m256i) {
    use blocks::q2_k::*;
    let m3 = _mm256_set1_epi8(3);
    let m4 = _mm_set1_epi8(0xF);
    let mins_and_scales = load16(b, SCALES);
    let scales8 = _mm_and_si128(mins_and_scales, m4);
    let mins8 = _mm_and_si128(_mm_srli_epi16(mins_and_scales, 4), m4);
    let prod = _mm256_madd_epi16(_mm256_cvtepi8_epi16(mins8), load_bsums(a, ib));
    let scales = halves_i16(scales8);
    let mut sumi = _mm256_setzero_si256();
    for (j, sc) in scales.iter().enumerate() {
        let q2bits = load32(b, QS + 32 * j);
        let mut p = [_mm256_setzero_si256(); 4];
        for (k, p) in p.iter_mut().enumerate() {
            let q2 = _mm256_and_si256(srl_epi16_by(q2bits, 2 * k), m3);
            let q8 = load32_i8(a.qs, ib * QK_K + 128 * j + 32 * k);
            *p = _mm256_madd_epi16(scale_shuffle_q3k(*sc, k), _mm256_maddubs_epi16(q2, q8));
        }
        let s = _mm256_add_epi32(_mm256_add_epi32(p[0], p[1]), _mm256_add_epi32(p[2], p[3]));
        sumi = _mm256_add_epi32(sumi, s);
    }
    (sumi, prod)
}

/// Q2_K weights times Q8_K activations (`ggml_vec_dot_q2_K_q8_K`, AVX2).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_q2_k(w: &[u8], a: Q8KRow) -> f32 {
    use blocks::q2_k::*;
    let mut acc = _mm256_setzero_ps();
    for (ib, b) in w.chunks_exact(84).enumerate() {
        let d = a.d[ib] * f16_at(b, D);
        let dmin = -a.d[ib] * f16_at(b, DMIN);
        let (sumi, prod) = q2_k_lanes(b, &a, ib);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(prod), acc);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_f32_8(acc)
}

/// The integer lanes of a Q3_K super-block times Q8_K super-block `ib`, as
/// `ggml_vec_dot_q3_K_q8_K` (AVX2) forms them (they add up to the exact scaled sum).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q3_k_lanes(b: &[u8], a: &Q8KRow, ib: usize) -> __m256i {
    use blocks::q3_k::*;
    let m3 = _mm256_set1_epi8(3);
    let mone = _mm256_set1_epi8(1);
    let sc = blocks::scales_q3_k(&b[SCALES..SCALES + 12]);
    // SAFETY: `sc` holds 16 i8 (16 bytes); the load is unaligned.
    let scales8 = unsafe { _mm_loadu_si128(sc.as_ptr() as *const __m128i) };
    let scales = halves_i16(scales8);
    let hbits = load32(b, HMASK);
    let mut sumi = _mm256_setzero_si256();
    let mut bit = 0;
    for (j, sc) in scales.iter().enumerate() {
        let q3bits = load32(b, QS + 32 * j);
        let mut p = [_mm256_setzero_si256(); 4];
        for (k, p) in p.iter_mut().enumerate() {
            let q3l = _mm256_and_si256(srl_epi16_by(q3bits, 2 * k), m3);
            let sel = _mm256_sll_epi16(mone, _mm_cvtsi32_si128(bit as i32));
            let q3h = _mm256_slli_epi16(srl_epi16_by(_mm256_andnot_si256(hbits, sel), bit), 2);
            bit += 1;
            let q8 = load32_i8(a.qs, ib * QK_K + 128 * j + 32 * k);
            let p16 =
                _mm256_sub_epi16(_mm256_maddubs_epi16(q3l, q8), _mm256_maddubs_epi16(q3h, q8));
            *p = _mm256_madd_epi16(scale_shuffle_q3k(*sc, k), p16);
        }
        let s = _mm256_add_epi32(_mm256_add_epi32(p[0], p[1]), _mm256_add_epi32(p[2], p[3]));
        sumi = _mm256_add_epi32(sumi, s);
    }
    sumi
}

/// Q3_K weights times Q8_K activations (`ggml_vec_dot_q3_K_q8_K`, AVX2).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_q3_k(w: &[u8], a: Q8KRow) -> f32 {
    use blocks::q3_k::*;
    let mut acc = _mm256_setzero_ps();
    for (ib, b) in w.chunks_exact(110).enumerate() {
        let d = a.d[ib] * f16_at(b, D);
        let sumi = q3_k_lanes(b, &a, ib);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_f32_8(acc)
}

//! VNNI dot products of Q8_0/Q8_1-activation formats: [`super::avx2::dot`]'s kernels (the same
//! macro, the same float steps) with the byte products summed by `vpdpbusd`.

use super::mul_sum_us8_pairs_float;
use crate::quant::act::{Q8Eight, Q8Row};
use crate::quant::avx2::dot::{
    decode_q4_0, decode_q4_1, decode_q5_0, decode_q5_1, decode_q8_0, q8_family,
};
use crate::quant::avx2::*;
use crate::quant::blocks::QK;
use std::arch::x86_64::*;

q8_family!(
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    mul_sum_us8_pairs_float,
    dot_q4_0,
    dot_q4_0_rows8,
    18,
    decode_q4_0,
    true,
    false,
    "Q4_0 weights times Q8_0 activations (VNNI)."
);
q8_family!(
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    mul_sum_us8_pairs_float,
    dot_q4_1,
    dot_q4_1_rows8,
    20,
    decode_q4_1,
    false,
    true,
    "Q4_1 weights times Q8_1 activations (VNNI)."
);
q8_family!(
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    mul_sum_us8_pairs_float,
    dot_q5_0,
    dot_q5_0_rows8,
    22,
    decode_q5_0,
    true,
    false,
    "Q5_0 weights times Q8_0 activations (VNNI)."
);
q8_family!(
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    mul_sum_us8_pairs_float,
    dot_q5_1,
    dot_q5_1_rows8,
    24,
    decode_q5_1,
    false,
    true,
    "Q5_1 weights times Q8_1 activations (VNNI)."
);
q8_family!(
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    mul_sum_us8_pairs_float,
    dot_q8_0,
    dot_q8_0_rows8,
    34,
    decode_q8_0,
    true,
    false,
    "Q8_0 weights times Q8_0 activations (VNNI)."
);

/// One weight row of a Q8_0/Q8_1-activation format times eight activation rows, two rows to a
/// 512-bit vector ([`Q8Eight::pairs`]): the float steps of [`super::super::avx2::dot`]'s
/// `dot_*_x8` kernels lane for lane (each row's eight lanes of `cvt(isum) · (d_w · d_a)` fused into
/// its accumulator block by block, then summed in `hsum_float_8`'s order, plus the mins' sum), so
/// the results are the same bits. `decode(block) -> (qx, d, m)` as the AVX2 decoders; `SIGNED`:
/// `qx` is signed, and goes into `vpdpbusd` offset by 128 with the activations' precomputed
/// correction ([`Q8Eight::corr`]) as the starting sum, where AVX2 moves its sign to the
/// activations; `MIN`: the format has mins (Q8_1 activations with sums).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn x8<const BYTES: usize, const SIGNED: bool, const MIN: bool>(
    w: &[u8],
    a: &Q8Eight,
    decode: impl Fn(&[u8]) -> (__m256i, f32, f32),
) -> [f32; 8] {
    let nb = w.len() / BYTES;
    assert!(
        a.pairs.len() >= nb * 8 * QK
            && (!SIGNED || a.corr.len() >= nb * 2 * QK)
            && a.d.len() >= 8 * nb
            && (!MIN || a.s.len() >= 8 * nb),
        "eight paired activation rows of {nb} blocks"
    );
    // Lanes 0-7 take row 2q's scale, lanes 8-15 row 2q + 1's.
    let pick: [__m512i; 4] = std::array::from_fn(|q| {
        let (lo, hi) = (2 * q as i32, 2 * q as i32 + 1);
        _mm512_setr_epi32(
            lo, lo, lo, lo, lo, lo, lo, lo, hi, hi, hi, hi, hi, hi, hi, hi,
        )
    });
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut summs = _mm256_setzero_ps();
    for (i, b) in w.chunks_exact(BYTES).enumerate() {
        let (qx, dx, mx) = decode(b);
        let qx = _mm512_broadcast_i64x4(qx);
        let ux = if SIGNED {
            _mm512_xor_si512(qx, _mm512_set1_epi8(-128))
        } else {
            qx
        };
        // SAFETY: the eight scales of block i (and sums) lie inside `a.d` (and `a.s`), and its
        // pairs and corrections inside `a.pairs` and `a.corr`, as asserted above; the loads are
        // unaligned.
        let dy = unsafe { _mm256_loadu_ps(a.d.as_ptr().add(8 * i)) };
        if MIN {
            // SAFETY: as above.
            let s = unsafe { _mm256_loadu_ps(a.s.as_ptr().add(8 * i)) };
            summs = _mm256_add_ps(summs, _mm256_mul_ps(_mm256_set1_ps(mx), s));
        }
        let dd = _mm512_castps256_ps512(_mm256_mul_ps(_mm256_set1_ps(dx), dy));
        for (q, acc) in acc.iter_mut().enumerate() {
            let at = (i * 4 + q) * 64;
            // SAFETY: as above.
            let y = unsafe { _mm512_loadu_si512(a.pairs.as_ptr().add(at).cast()) };
            let start = if SIGNED {
                // SAFETY: as above.
                unsafe { _mm512_loadu_si512(a.corr.as_ptr().add(at / 4).cast()) }
            } else {
                _mm512_setzero_si512()
            };
            let p = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(start, ux, y));
            *acc = _mm512_fmadd_ps(_mm512_permutexvar_ps(pick[q], dd), p, *acc);
        }
    }
    let sm = f32x8_array(summs);
    let half = |v: __m512, h: usize| {
        let v = _mm512_castps_pd(v);
        _mm256_castpd_ps(if h == 0 {
            _mm512_castpd512_pd256(v)
        } else {
            _mm512_extractf64x4_pd::<1>(v)
        })
    };
    std::array::from_fn(|r| hsum_f32_8(half(acc[r / 2], r % 2)) + sm[r])
}

/// Generates the eight-activation-row kernels of the Q8_0/Q8_1-activation formats on [`x8`].
macro_rules! eight {
    ($($name:ident: $decode:ident, $bytes:expr, $signed:expr, $min:expr, $doc:expr;)*) => {$(
        #[doc = $doc]
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        pub fn $name(w: &[u8], a: &Q8Eight) -> [f32; 8] {
            x8::<$bytes, $signed, $min>(w, a, |b| $decode(b))
        }
    )*};
}

eight! {
    dot_q4_0_x8: decode_q4_0, 18, true, false, "Q4_0 weights times eight Q8_0 activation rows.";
    dot_q4_1_x8: decode_q4_1, 20, false, true, "Q4_1 weights times eight Q8_1 activation rows.";
    dot_q5_0_x8: decode_q5_0, 22, true, false, "Q5_0 weights times eight Q8_0 activation rows.";
    dot_q5_1_x8: decode_q5_1, 24, false, true, "Q5_1 weights times eight Q8_1 activation rows.";
    dot_q8_0_x8: decode_q8_0, 34, true, false, "Q8_0 weights times eight Q8_0 activation rows.";
}

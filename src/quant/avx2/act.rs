//! AVX2 activation quantizer: llama.cpp's x86 `quantize_row_q8_0` / `quantize_row_q8_1`.

use super::super::act::{blocks_mut, Q8Rows};
use super::hsum_i32_8;
use crate::quant::blocks::QK;
use half::f16;
use std::arch::x86_64::*;

/// Quantizes `x` (rows of `k` values) into `out` (sized by the caller), filling `out.isum`, and
/// `out.s` when it is not empty.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn quantize_q8(x: &[f32], k: usize, out: &mut Q8Rows) {
    let with_sums = !out.s.is_empty();
    let sign = _mm256_set1_ps(-0.0);
    let perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (ib, (xb, qb)) in blocks_mut(x, out.qs, k, out.stride, QK).enumerate() {
        // SAFETY: `xb` holds exactly 32 floats; the four unaligned loads read 8 each.
        let v = unsafe {
            [
                _mm256_loadu_ps(xb.as_ptr()),
                _mm256_loadu_ps(xb.as_ptr().add(8)),
                _mm256_loadu_ps(xb.as_ptr().add(16)),
                _mm256_loadu_ps(xb.as_ptr().add(24)),
            ]
        };
        let mut max = _mm256_andnot_ps(sign, v[0]);
        max = _mm256_max_ps(max, _mm256_andnot_ps(sign, v[1]));
        max = _mm256_max_ps(max, _mm256_andnot_ps(sign, v[2]));
        max = _mm256_max_ps(max, _mm256_andnot_ps(sign, v[3]));
        let mut m4 = _mm_max_ps(_mm256_extractf128_ps(max, 1), _mm256_castps256_ps128(max));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        let amax = _mm_cvtss_f32(m4);

        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mul = _mm256_set1_ps(id);
        const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        let i0 = _mm256_cvtps_epi32(_mm256_round_ps::<NEAREST>(_mm256_mul_ps(v[0], mul)));
        let i1 = _mm256_cvtps_epi32(_mm256_round_ps::<NEAREST>(_mm256_mul_ps(v[1], mul)));
        let i2 = _mm256_cvtps_epi32(_mm256_round_ps::<NEAREST>(_mm256_mul_ps(v[2], mul)));
        let i3 = _mm256_cvtps_epi32(_mm256_round_ps::<NEAREST>(_mm256_mul_ps(v[3], mul)));
        out.d[ib] = f16::from_f32(d).to_f32();
        let sum = hsum_i32_8(_mm256_add_epi32(
            _mm256_add_epi32(i0, i1),
            _mm256_add_epi32(i2, i3),
        ));
        out.isum[ib] = sum;
        if with_sums {
            out.s[ib] = f16::from_f32(d * sum as f32).to_f32();
        }
        let p01 = _mm256_packs_epi32(i0, i1);
        let p23 = _mm256_packs_epi32(i2, i3);
        let q = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), perm);
        // SAFETY: `qb` holds exactly 32 writable bytes; the store is unaligned.
        unsafe { _mm256_storeu_si256(qb.as_mut_ptr() as *mut __m256i, q) };
    }
}

//! AVX-512 kernels for x86_64: AVX-512 F, BW, VL and VNNI on top of the AVX2 path's AVX2, FMA and
//! F16C. Every function here is `#[target_feature]` and `unsafe` to call through a pointer: callers
//! hold an [`Isa`](super::isa::Isa) whose `has_avx512` is true, which only run-time detection makes.
//!
//! What changes is how the exact integer sums of the 8-bit products are formed: `vpdpbusd` adds
//! four unsigned-by-signed byte products to each i32 lane in one instruction, where the AVX2
//! kernels take `vpmaddubsw` (pairs into i16) and `vpmaddwd` or `vpaddw` (into i32). The float
//! steps, and the AVX2 code that unpacks the weights, are shared with [`super::avx2`] unchanged.
//! The AVX2 i16 pair sums never saturate on the operands these kernels see (weights of magnitude
//! at most 128 times activations of at most 127), so every integer is the same and the results are
//! the AVX2 path's bit for bit, and so llama.cpp's pinned AVX2 build's (`src/quant/tests.rs`
//! checks every format and product shape against the AVX2 path).
//!
//! * `dot`: the Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 products one weight row at a time (one or eight
//!   activation rows) and eight weight rows at a time (decode), as [`super::avx2::dot`]'s.
//! * `rows8`: the batch products with one weight row per i32 lane (repacked Q4_0 and Q4_K, tiled
//!   Q6_K), as [`super::avx2::rows8`]'s.

pub mod dot;
pub mod rows8;

use std::arch::x86_64::*;

/// Unsigned bytes `ax` times signed bytes `sy`, summed in groups of four into eight i32 lanes and
/// converted to float: [`super::avx2::mul_sum_us8_pairs_float`] in one `vpdpbusd`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub fn mul_sum_us8_pairs_float(ax: __m256i, sy: __m256i) -> __m256 {
    _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sy))
}

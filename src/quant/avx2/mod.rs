//! AVX2 (+FMA, F16C) kernels for x86_64. Every function here is `#[target_feature]` and `unsafe`:
//! callers hold an [`Isa`](super::isa::Isa) that enabled AVX2 after run-time detection. The
//! arithmetic follows llama.cpp's x86 kernels: `dot` its `ggml_vec_dot_*` (`ggml-cpu/arch/x86/
//! quants.c`, `ggml-cpu/vec.cpp`), `orders` its repacked, tiled and tinyBLAS products, `rows8`
//! the repacked ones eight weight rows at a time.

pub mod act;
pub mod dot;
pub mod orders;
pub mod rows8;

use std::arch::x86_64::*;

/// Horizontal sum of 8 floats in llama.cpp's order (`hsum_float_8`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn hsum_f32_8(x: __m256) -> f32 {
    let mut r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    _mm_cvtss_f32(r)
}

/// Horizontal sum of 8 i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn hsum_i32_8(a: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
    _mm_cvtsi128_si32(s)
}

/// Converts one f16 (as bits) to f32 with F16C.
///
/// Written as `vmovd` + `vcvtph2ps` in assembly: from the intrinsics LLVM emits `vpinsrw` into
/// whatever vector register is free, often a loop accumulator, which chains every conversion (and
/// the whole block loop) behind the previous block's multiply-add. `vmovd` clears the register.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn f16_to_f32(bits: u16) -> f32 {
    let out: __m128;
    // SAFETY: F16C is enabled for this function (the caller detected it); the instructions only
    // read `bits` and write `out`, touching no memory and no flags.
    unsafe {
        std::arch::asm!(
            "vmovd {x}, {v:e}",
            "vcvtph2ps {x}, {x}",
            v = in(reg) bits as u32,
            x = out(xmm_reg) out,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    _mm_cvtss_f32(out)
}

/// Reads the f16 at `b[off..off + 2]` as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn f16_at(b: &[u8], off: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[off], b[off + 1]]))
}

/// The eight lanes of `v`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn f32x8_array(v: __m256) -> [f32; 8] {
    let mut out = [0.0f32; 8];
    // SAFETY: `out` holds 8 floats; the store is unaligned.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
    out
}

/// `*x` in all eight lanes, as a `vbroadcastss` from memory: a load, where LLVM rewrites
/// `_mm256_broadcast_ss` of a value it has in a register into shuffles, which compete with the
/// products for the vector ALUs (the eight-activation-row products broadcast one scale per
/// product).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn broadcast_mem(x: &f32) -> __m256 {
    let out: __m256;
    // SAFETY: `x` is a valid reference to 4 readable bytes; the instruction only reads them.
    unsafe {
        std::arch::asm!(
            "vbroadcastss {y}, dword ptr [{p}]",
            p = in(reg) x as *const f32,
            y = out(ymm_reg) out,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    out
}

/// How far ahead of the block being read the one-row kernels ask for weight bytes. In decode the
/// weights stream from memory; the hardware prefetchers alone left the kernels stalled on loads.
pub const PREFETCH_AHEAD: usize = 1024;

/// Asks for the cache line `dist` bytes past `b`'s start to be brought into L1. The address may be
/// past the slice (the next row, or beyond the tensor): a prefetch never faults.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn prefetch_ahead(b: &[u8], dist: usize) {
    _mm_prefetch::<_MM_HINT_T0>(b.as_ptr().wrapping_add(dist) as *const i8);
}

/// Loads 32 bytes from `b[off..off + 32]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn load32(b: &[u8], off: usize) -> __m256i {
    let s = &b[off..off + 32];
    // SAFETY: `s` holds exactly 32 readable bytes; the load is unaligned.
    unsafe { _mm256_loadu_si256(s.as_ptr() as *const __m256i) }
}

/// Loads 32 signed bytes from `q[off..off + 32]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn load32_i8(q: &[i8], off: usize) -> __m256i {
    let s = &q[off..off + 32];
    // SAFETY: `s` holds exactly 32 readable bytes; the load is unaligned.
    unsafe { _mm256_loadu_si256(s.as_ptr() as *const __m256i) }
}

/// Loads 16 bytes from `b[off..off + 16]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn load16(b: &[u8], off: usize) -> __m128i {
    let s = &b[off..off + 16];
    // SAFETY: `s` holds exactly 16 readable bytes; the load is unaligned.
    unsafe { _mm_loadu_si128(s.as_ptr() as *const __m128i) }
}

/// 16 bytes of nibbles to 32 bytes in 0..16: low nibbles first, then high nibbles.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn bytes_from_nibbles_32(b: &[u8], off: usize) -> __m256i {
    let tmp = load16(b, off);
    let bytes = _mm256_set_m128i(_mm_srli_epi16(tmp, 4), tmp);
    _mm256_and_si256(bytes, _mm256_set1_epi8(0xF))
}

/// 32 bits to 32 bytes of 0x00 (bit clear) or 0xFF (bit set).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn bytes_from_bits_32(bits: u32) -> __m256i {
    let shuf = _mm256_set_epi64x(
        0x0303_0303_0303_0303,
        0x0202_0202_0202_0202,
        0x0101_0101_0101_0101,
        0,
    );
    let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(bits as i32), shuf);
    let bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe));
    _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1))
}

/// Unsigned bytes times signed bytes, summed in groups of 4 to 8 floats.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn mul_sum_us8_pairs_float(ax: __m256i, sy: __m256i) -> __m256 {
    let dot = _mm256_maddubs_epi16(ax, sy);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), dot))
}

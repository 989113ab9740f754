//! Block layouts of the GGML formats: sizes, byte offsets, and the small readers (f16 fields,
//! packed 6-bit K-quant scales) that both dequantization and the dot-product kernels share.
//!
//! Blocks are read from raw little-endian bytes at fixed offsets, never through references to
//! `#[repr(C)]` structs, so a tensor's data needs no alignment.

use half::f16;

/// Values in a block of the 32-value formats (Q4_0 ... Q8_1).
pub const QK: usize = 32;
/// Values in a K-quant super-block.
pub const QK_K: usize = 256;

/// Byte offsets inside a Q4_0 block: `d: f16, qs: [u8; 16]`.
pub mod q4_0 {
    /// Scale.
    pub const D: usize = 0;
    /// 32 nibbles: value `j` in the low nibble of byte `j`, value `j + 16` in its high nibble.
    pub const QS: usize = 2;
}

/// Byte offsets inside a Q4_1 block: `d: f16, m: f16, qs: [u8; 16]`.
pub mod q4_1 {
    /// Scale.
    pub const D: usize = 0;
    /// Offset (minimum).
    pub const M: usize = 2;
    /// Nibbles, as in Q4_0.
    pub const QS: usize = 4;
}

/// Byte offsets inside a Q5_0 block: `d: f16, qh: [u8; 4], qs: [u8; 16]`.
pub mod q5_0 {
    /// Scale.
    pub const D: usize = 0;
    /// Fifth bits: bit `j` of the little-endian u32 belongs to value `j`.
    pub const QH: usize = 2;
    /// Low nibbles, as in Q4_0.
    pub const QS: usize = 6;
}

/// Byte offsets inside a Q5_1 block: `d: f16, m: f16, qh: [u8; 4], qs: [u8; 16]`.
pub mod q5_1 {
    /// Scale.
    pub const D: usize = 0;
    /// Offset (minimum).
    pub const M: usize = 2;
    /// Fifth bits, as in Q5_0.
    pub const QH: usize = 4;
    /// Low nibbles, as in Q4_0.
    pub const QS: usize = 8;
}

/// Byte offsets inside a Q8_0 block: `d: f16, qs: [i8; 32]`.
pub mod q8_0 {
    /// Scale.
    pub const D: usize = 0;
    /// Signed values.
    pub const QS: usize = 2;
}

/// Byte offsets inside a Q2_K super-block: `scales: [u8; 16], qs: [u8; 64], d: f16, dmin: f16`.
pub mod q2_k {
    /// 16 bytes: low nibble scale, high nibble min of each 16-value group.
    pub const SCALES: usize = 0;
    /// 2-bit values.
    pub const QS: usize = 16;
    /// Super-block scale.
    pub const D: usize = 80;
    /// Super-block scale of the mins.
    pub const DMIN: usize = 82;
}

/// Byte offsets inside a Q3_K super-block: `hmask: [u8; 32], qs: [u8; 64], scales: [u8; 12], d: f16`.
pub mod q3_k {
    /// High bits (set means no -4 offset).
    pub const HMASK: usize = 0;
    /// Low 2 bits.
    pub const QS: usize = 32;
    /// 16 packed 6-bit scales.
    pub const SCALES: usize = 96;
    /// Super-block scale.
    pub const D: usize = 108;
}

/// Byte offsets inside a Q4_K super-block: `d: f16, dmin: f16, scales: [u8; 12], qs: [u8; 128]`.
pub mod q4_k {
    /// Super-block scale.
    pub const D: usize = 0;
    /// Super-block scale of the mins.
    pub const DMIN: usize = 2;
    /// 8 packed 6-bit scales and 8 mins.
    pub const SCALES: usize = 4;
    /// 4-bit values.
    pub const QS: usize = 16;
}

/// Byte offsets inside a Q5_K super-block: `d, dmin: f16, scales: [u8; 12], qh: [u8; 32], qs: [u8; 128]`.
pub mod q5_k {
    /// Super-block scale.
    pub const D: usize = 0;
    /// Super-block scale of the mins.
    pub const DMIN: usize = 2;
    /// 8 packed 6-bit scales and 8 mins.
    pub const SCALES: usize = 4;
    /// Fifth bits.
    pub const QH: usize = 16;
    /// Low 4 bits.
    pub const QS: usize = 48;
}

/// Byte offsets inside a Q6_K super-block: `ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16`.
pub mod q6_k {
    /// Low 4 bits.
    pub const QL: usize = 0;
    /// High 2 bits.
    pub const QH: usize = 128;
    /// Signed 8-bit scales of the 16-value groups.
    pub const SCALES: usize = 192;
    /// Super-block scale.
    pub const D: usize = 208;
}

/// Reads the little-endian f16 at `off` as f32.
#[inline(always)]
pub fn f16_at(b: &[u8], off: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[off], b[off + 1]])).to_f32()
}

/// Reads the little-endian u32 at `off`.
#[inline(always)]
pub fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Scale and min of group `j` (0..8) from the 12 packed bytes of Q4_K/Q5_K
/// (llama.cpp's `get_scale_min_k4`).
#[inline(always)]
pub fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// The 8 scales and 8 mins of a Q4_K/Q5_K super-block, unpacked.
#[inline(always)]
pub fn scales_mins_k4(q: &[u8]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..8 {
        (sc[j], mn[j]) = scale_min_k4(j, q);
    }
    (sc, mn)
}

/// The 16 signed scales (already minus 32) of a Q3_K super-block from its 12 packed bytes.
#[inline(always)]
pub fn scales_q3_k(q: &[u8]) -> [i8; 16] {
    let a0 = u32_at(q, 0);
    let a1 = u32_at(q, 4);
    let tmp = u32_at(q, 8);
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let aux = [
        (a0 & KMASK2) | ((tmp & KMASK1) << 4),
        (a1 & KMASK2) | (((tmp >> 2) & KMASK1) << 4),
        ((a0 >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4),
        ((a1 >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4),
    ];
    let mut out = [0i8; 16];
    for (i, w) in aux.iter().enumerate() {
        for (b, byte) in w.to_le_bytes().iter().enumerate() {
            out[4 * i + b] = (*byte as i8).wrapping_sub(32);
        }
    }
    out
}

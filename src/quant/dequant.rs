//! Reference dequantization: every format to f32, bit-exact with llama.cpp's `dequantize_row_*`
//! and gguf-py's `gguf.quants.dequantize` (same operations in the same order, no fused multiply-add).

use super::blocks::{self, f16_at, u32_at, QK, QK_K};
use super::GgmlType;
use crate::bail;
use crate::error::Result;
use half::f16;

/// Dequantizes `src`, holding exactly `dst.len()` values of type `ty`, into `dst`.
///
/// Fails with `InvalidArgument` when `dst.len()` is not a whole number of blocks or when `src` does
/// not hold exactly that many values.
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<()> {
    let Some(bytes) = ty.row_bytes(dst.len()) else {
        bail!(
            InvalidArgument,
            "{} values are not a whole number of {} blocks of {}",
            dst.len(),
            ty.name(),
            ty.block_size()
        );
    };
    if src.len() != bytes {
        bail!(
            InvalidArgument,
            "{} data of {} bytes does not hold {} values ({} bytes expected)",
            ty.name(),
            src.len(),
            dst.len(),
            bytes
        );
    }
    dequantize_row(ty, src, dst);
    Ok(())
}

/// Dequantizes one row (for example an embedding lookup): `dst.len()` values from `src_row`.
///
/// # Panics
/// When `dst.len()` is not a whole number of blocks or `src_row` is shorter than those blocks;
/// [`dequantize`] is the checked form.
pub fn dequantize_row(ty: GgmlType, src_row: &[u8], dst: &mut [f32]) {
    let bs = ty.block_size();
    let ts = ty.type_size();
    assert!(
        dst.len().is_multiple_of(bs) && src_row.len() >= dst.len() / bs * ts,
        "dequantize_row: {} values do not fit {} bytes of {}",
        dst.len(),
        src_row.len(),
        ty.name()
    );
    let f: fn(&[u8], &mut [f32]) = match ty {
        GgmlType::F32 => |b, y| y[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        GgmlType::F16 => |b, y| y[0] = f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32(),
        GgmlType::BF16 => {
            |b, y| y[0] = f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)
        }
        GgmlType::Q4_0 => block_q4_0,
        GgmlType::Q4_1 => block_q4_1,
        GgmlType::Q5_0 => block_q5_0,
        GgmlType::Q5_1 => block_q5_1,
        GgmlType::Q8_0 => block_q8_0,
        GgmlType::Q2_K => block_q2_k,
        GgmlType::Q3_K => block_q3_k,
        GgmlType::Q4_K => block_q4_k,
        GgmlType::Q5_K => block_q5_k,
        GgmlType::Q6_K => block_q6_k,
    };
    for (b, y) in src_row.chunks_exact(ts).zip(dst.chunks_exact_mut(bs)) {
        f(b, y);
    }
}

fn block_q4_0(b: &[u8], y: &mut [f32]) {
    use blocks::q4_0::*;
    let d = f16_at(b, D);
    for j in 0..QK / 2 {
        let q = b[QS + j];
        y[j] = ((q & 0xF) as i32 - 8) as f32 * d;
        y[j + QK / 2] = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

fn block_q4_1(b: &[u8], y: &mut [f32]) {
    use blocks::q4_1::*;
    let d = f16_at(b, D);
    let m = f16_at(b, M);
    for j in 0..QK / 2 {
        let q = b[QS + j];
        y[j] = (q & 0xF) as f32 * d + m;
        y[j + QK / 2] = (q >> 4) as f32 * d + m;
    }
}

fn block_q5_0(b: &[u8], y: &mut [f32]) {
    use blocks::q5_0::*;
    let d = f16_at(b, D);
    let qh = u32_at(b, QH);
    for j in 0..QK / 2 {
        let q = b[QS + j] as u32;
        let x0 = ((q & 0xF) | (((qh >> j) << 4) & 0x10)) as i32 - 16;
        let x1 = ((q >> 4) | ((qh >> (j + 12)) & 0x10)) as i32 - 16;
        y[j] = x0 as f32 * d;
        y[j + QK / 2] = x1 as f32 * d;
    }
}

fn block_q5_1(b: &[u8], y: &mut [f32]) {
    use blocks::q5_1::*;
    let d = f16_at(b, D);
    let m = f16_at(b, M);
    let qh = u32_at(b, QH);
    for j in 0..QK / 2 {
        let q = b[QS + j] as u32;
        let x0 = (q & 0xF) | (((qh >> j) << 4) & 0x10);
        let x1 = (q >> 4) | ((qh >> (j + 12)) & 0x10);
        y[j] = x0 as f32 * d + m;
        y[j + QK / 2] = x1 as f32 * d + m;
    }
}

fn block_q8_0(b: &[u8], y: &mut [f32]) {
    use blocks::q8_0::*;
    let d = f16_at(b, D);
    for j in 0..QK {
        y[j] = (b[QS + j] as i8) as f32 * d;
    }
}

fn block_q2_k(b: &[u8], y: &mut [f32]) {
    use blocks::q2_k::*;
    let d = f16_at(b, D);
    let min = f16_at(b, DMIN);
    let mut is = 0;
    let mut out = 0;
    for n in 0..QK_K / 128 {
        let q = &b[QS + 32 * n..QS + 32 * n + 32];
        for shift in [0, 2, 4, 6] {
            for half in 0..2 {
                let sc = b[SCALES + is];
                is += 1;
                let dl = d * (sc & 0xF) as f32;
                let ml = min * (sc >> 4) as f32;
                for l in 0..16 {
                    y[out] = dl * ((q[l + 16 * half] >> shift) & 3) as f32 - ml;
                    out += 1;
                }
            }
        }
    }
}

fn block_q3_k(b: &[u8], y: &mut [f32]) {
    use blocks::q3_k::*;
    let d_all = f16_at(b, D);
    let scales = blocks::scales_q3_k(&b[SCALES..SCALES + 12]);
    let hm = &b[HMASK..HMASK + 32];
    let mut m = 1u8;
    let mut is = 0;
    let mut out = 0;
    for n in 0..QK_K / 128 {
        let q = &b[QS + 32 * n..QS + 32 * n + 32];
        for shift in [0, 2, 4, 6] {
            for half in 0..2 {
                let dl = d_all * scales[is] as f32;
                is += 1;
                for l in 16 * half..16 * half + 16 {
                    let v = ((q[l] >> shift) & 3) as i32 - if hm[l] & m != 0 { 0 } else { 4 };
                    y[out] = dl * v as f32;
                    out += 1;
                }
            }
            m <<= 1;
        }
    }
}

fn block_q4_k(b: &[u8], y: &mut [f32]) {
    use blocks::q4_k::*;
    let d = f16_at(b, D);
    let min = f16_at(b, DMIN);
    let (sc, mn) = blocks::scales_mins_k4(&b[SCALES..SCALES + 12]);
    for j in 0..QK_K / 64 {
        let q = &b[QS + 32 * j..QS + 32 * j + 32];
        let d1 = d * sc[2 * j] as f32;
        let m1 = min * mn[2 * j] as f32;
        let d2 = d * sc[2 * j + 1] as f32;
        let m2 = min * mn[2 * j + 1] as f32;
        let o = &mut y[64 * j..64 * j + 64];
        for l in 0..32 {
            o[l] = d1 * (q[l] & 0xF) as f32 - m1;
            o[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

fn block_q5_k(b: &[u8], y: &mut [f32]) {
    use blocks::q5_k::*;
    let d = f16_at(b, D);
    let min = f16_at(b, DMIN);
    let (sc, mn) = blocks::scales_mins_k4(&b[SCALES..SCALES + 12]);
    let qh = &b[QH..QH + 32];
    for j in 0..QK_K / 64 {
        let ql = &b[QS + 32 * j..QS + 32 * j + 32];
        let (u1, u2) = (1u8 << (2 * j), 2u8 << (2 * j));
        let d1 = d * sc[2 * j] as f32;
        let m1 = min * mn[2 * j] as f32;
        let d2 = d * sc[2 * j + 1] as f32;
        let m2 = min * mn[2 * j + 1] as f32;
        let o = &mut y[64 * j..64 * j + 64];
        for l in 0..32 {
            let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
            o[l] = d1 * ((ql[l] & 0xF) + h1) as f32 - m1;
            o[l + 32] = d2 * ((ql[l] >> 4) + h2) as f32 - m2;
        }
    }
}

fn block_q6_k(b: &[u8], y: &mut [f32]) {
    use blocks::q6_k::*;
    let d = f16_at(b, D);
    for n in 0..QK_K / 128 {
        let ql = &b[QL + 64 * n..QL + 64 * n + 64];
        let qh = &b[QH + 32 * n..QH + 32 * n + 32];
        let sc = &b[SCALES + 8 * n..SCALES + 8 * n + 8];
        let o = &mut y[128 * n..128 * n + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            o[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            o[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            o[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            o[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

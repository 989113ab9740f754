//! Portable (scalar) dot products of one weight row, read straight from its blocks, with one
//! activation row in the matching `vec_dot_type`. These follow llama.cpp's `ggml_vec_dot_*_generic`:
//! exact integer sums per block, then one f32 multiply-add per block. They are the reference the
//! AVX2 kernels are tested against and the path every non-x86 CPU takes.

use super::act::{Q8KRow, Q8Row};
use super::blocks::{self, f16_at, u32_at, QK, QK_K};
use half::{bf16, f16};

/// Q4_0 weights times Q8_0 activations.
pub fn dot_q4_0(w: &[u8], a: Q8Row) -> f32 {
    use blocks::q4_0::*;
    let mut sumf = 0.0f32;
    for (ib, b) in w.chunks_exact(18).enumerate() {
        let y = &a.qs[ib * QK..ib * QK + QK];
        let mut sumi = 0i32;
        for j in 0..QK / 2 {
            let q = b[QS + j];
            sumi += ((q & 0xF) as i32 - 8) * y[j] as i32;
            sumi += ((q >> 4) as i32 - 8) * y[j + QK / 2] as i32;
        }
        sumf += sumi as f32 * f16_at(b, D) * a.d[ib];
    }
    sumf
}

/// Q4_1 weights times Q8_1 activations.
pub fn dot_q4_1(w: &[u8], a: Q8Row) -> f32 {
    use blocks::q4_1::*;
    let mut sumf = 0.0f32;
    for (ib, b) in w.chunks_exact(20).enumerate() {
        let y = &a.qs[ib * QK..ib * QK + QK];
        let mut sumi = 0i32;
        for j in 0..QK / 2 {
            let q = b[QS + j];
            sumi += (q & 0xF) as i32 * y[j] as i32;
            sumi += (q >> 4) as i32 * y[j + QK / 2] as i32;
        }
        sumf += (f16_at(b, D) * a.d[ib]) * sumi as f32 + f16_at(b, M) * a.s[ib];
    }
    sumf
}

/// Q5_0 weights times Q8_0 activations.
pub fn dot_q5_0(w: &[u8], a: Q8Row) -> f32 {
    use blocks::q5_0::*;
    let mut sumf = 0.0f32;
    for (ib, b) in w.chunks_exact(22).enumerate() {
        let y = &a.qs[ib * QK..ib * QK + QK];
        let qh = u32_at(b, QH);
        let mut sumi = 0i32;
        for j in 0..QK / 2 {
            let q = b[QS + j] as u32;
            let x0 = ((q & 0xF) | (((qh >> j) << 4) & 0x10)) as i32 - 16;
            let x1 = ((q >> 4) | ((qh >> (j + 12)) & 0x10)) as i32 - 16;
            sumi += x0 * y[j] as i32 + x1 * y[j + QK / 2] as i32;
        }
        sumf += (f16_at(b, D) * a.d[ib]) * sumi as f32;
    }
    sumf
}

/// Q5_1 weights times Q8_1 activations.
pub fn dot_q5_1(w: &[u8], a: Q8Row) -> f32 {
    use blocks::q5_1::*;
    let mut sumf = 0.0f32;
    for (ib, b) in w.chunks_exact(24).enumerate() {
        let y = &a.qs[ib * QK..ib * QK + QK];
        let qh = u32_at(b, QH);
        let mut sumi = 0i32;
        for j in 0..QK / 2 {
            let q = b[QS + j] as u32;
            let x0 = ((q & 0xF) | (((qh >> j) << 4) & 0x10)) as i32;
            let x1 = ((q >> 4) | ((qh >> (j + 12)) & 0x10)) as i32;
            sumi += x0 * y[j] as i32 + x1 * y[j + QK / 2] as i32;
        }
        sumf += (f16_at(b, D) * a.d[ib]) * sumi as f32 + f16_at(b, M) * a.s[ib];
    }
    sumf
}

/// Q8_0 weights times Q8_0 activations.
pub fn dot_q8_0(w: &[u8], a: Q8Row) -> f32 {
    use blocks::q8_0::*;
    let mut sumf = 0.0f32;
    for (ib, b) in w.chunks_exact(34).enumerate() {
        let y = &a.qs[ib * QK..ib * QK + QK];
        let sumi: i32 = b[QS..QS + QK]
            .iter()
            .zip(y)
            .map(|(&x, &y)| (x as i8) as i32 * y as i32)
            .sum();
        sumf += sumi as f32 * (f16_at(b, D) * a.d[ib]);
    }
    sumf
}

/// Sum of the Q8_K group sums weighted by one min per pair of groups (Q4_K/Q5_K) or per group.
fn min_sum(bsums: &[i16], mins: &[u8], groups_per_min: usize) -> i32 {
    bsums
        .iter()
        .enumerate()
        .map(|(j, &s)| s as i32 * mins[j / groups_per_min] as i32)
        .sum()
}

/// Q2_K weights times Q8_K activations.
pub fn dot_q2_k(w: &[u8], a: Q8KRow) -> f32 {
    use blocks::q2_k::*;
    let mut sumf = 0.0f32;
    for (ib, b) in w.chunks_exact(84).enumerate() {
        let q8 = &a.qs[ib * QK_K..ib * QK_K + QK_K];
        let sc = &b[SCALES..SCALES + 16];
        let mins: [u8; 16] = std::array::from_fn(|j| sc[j] >> 4);
        let summs = min_sum(&a.bsums[ib * 16..ib * 16 + 16], &mins, 1);
        let mut isum = 0i32;
        for g in 0..16 {
            // Group g: 16 values, from q bytes (g / 8) * 32 + (g % 2) * 16, shift 2 * ((g / 2) % 4).
            let qoff = QS + (g / 8) * 32 + (g % 2) * 16;
            let shift = 2 * ((g / 2) % 4);
            let isuml: i32 = (0..16)
                .map(|l| q8[16 * g + l] as i32 * ((b[qoff + l] >> shift) & 3) as i32)
                .sum();
            isum += (sc[g] & 0xF) as i32 * isuml;
        }
        let dall = a.d[ib] * f16_at(b, D);
        let dmin = a.d[ib] * f16_at(b, DMIN);
        sumf += dall * isum as f32 - dmin * summs as f32;
    }
    sumf
}

/// Q3_K weights times Q8_K activations.
pub fn dot_q3_k(w: &[u8], a: Q8KRow) -> f32 {
    use blocks::q3_k::*;
    let mut sumf = 0.0f32;
    for (ib, b) in w.chunks_exact(110).enumerate() {
        let q8 = &a.qs[ib * QK_K..ib * QK_K + QK_K];
        let scales = blocks::scales_q3_k(&b[SCALES..SCALES + 12]);
        let hm = &b[HMASK..HMASK + 32];
        let mut isum = 0i32;
        for g in 0..16 {
            // Group g: bytes (g / 8) * 32 + (g % 2) * 16, shift and high-bit index (g / 2) % 4 + 4 * (g / 8).
            let qoff = QS + (g / 8) * 32 + (g % 2) * 16;
            let shift = 2 * ((g / 2) % 4);
            let m = 1u8 << ((g / 2) % 4 + 4 * (g / 8));
            let hoff = (g % 2) * 16;
            let isuml: i32 = (0..16)
                .map(|l| {
                    let v = ((b[qoff + l] >> shift) & 3) as i32
                        - if hm[hoff + l] & m != 0 { 0 } else { 4 };
                    q8[16 * g + l] as i32 * v
                })
                .sum();
            isum += scales[g] as i32 * isuml;
        }
        sumf += (f16_at(b, D) * a.d[ib]) * isum as f32;
    }
    sumf
}

/// The integer parts of a Q4_K (`qh` = `None`) or Q5_K (`qh` = the high-bit offset) super-block
/// `b` times the 256 Q8_K values `q8` with group sums `bsums`, per pair of 32-value sub-blocks `j`:
/// `sums[j] = sc[2j]·dot(2j) + sc[2j+1]·dot(2j+1)` and `mins[j] = m[2j]·Σq8(2j) + m[2j+1]·Σq8(2j+1)`.
pub fn k4_parts(
    b: &[u8],
    scales: usize,
    qs: usize,
    qh: Option<usize>,
    q8: &[i8],
    bsums: &[i16],
) -> ([i32; 4], [i32; 4]) {
    let (sc, mn) = blocks::scales_mins_k4(&b[scales..scales + 12]);
    let mut sums = [0i32; 4];
    let mut mins = [0i32; 4];
    for j in 0..QK_K / 64 {
        let q = &b[qs + 32 * j..qs + 32 * j + 32];
        let (u1, u2) = (1u8 << (2 * j), 2u8 << (2 * j));
        let (mut lo, mut hi) = (0i32, 0i32);
        for l in 0..32 {
            let (h1, h2) = match qh {
                Some(o) => (
                    if b[o + l] & u1 != 0 { 16 } else { 0 },
                    if b[o + l] & u2 != 0 { 16 } else { 0 },
                ),
                None => (0, 0),
            };
            lo += ((q[l] & 0xF) as i32 + h1) * q8[64 * j + l] as i32;
            hi += ((q[l] >> 4) as i32 + h2) * q8[64 * j + 32 + l] as i32;
        }
        sums[j] = sc[2 * j] as i32 * lo + sc[2 * j + 1] as i32 * hi;
        let s0 = bsums[4 * j] as i32 + bsums[4 * j + 1] as i32;
        let s1 = bsums[4 * j + 2] as i32 + bsums[4 * j + 3] as i32;
        mins[j] = mn[2 * j] as i32 * s0 + mn[2 * j + 1] as i32 * s1;
    }
    (sums, mins)
}

/// Q4_K weights times Q8_K activations.
pub fn dot_q4_k(w: &[u8], a: Q8KRow) -> f32 {
    use blocks::q4_k::*;
    let mut sumf = 0.0f32;
    for (ib, b) in w.chunks_exact(144).enumerate() {
        let q8 = &a.qs[ib * QK_K..ib * QK_K + QK_K];
        let bsums = &a.bsums[ib * 16..ib * 16 + 16];
        let (sums, mins) = k4_parts(b, SCALES, QS, None, q8, bsums);
        let (isum, summs) = (sums.iter().sum::<i32>(), mins.iter().sum::<i32>());
        let d = f16_at(b, D) * a.d[ib];
        let dmin = f16_at(b, DMIN) * a.d[ib];
        sumf += d * isum as f32 - dmin * summs as f32;
    }
    sumf
}

/// Q5_K weights times Q8_K activations.
pub fn dot_q5_k(w: &[u8], a: Q8KRow) -> f32 {
    use blocks::q5_k::*;
    let mut sumf = 0.0f32;
    for (ib, b) in w.chunks_exact(176).enumerate() {
        let q8 = &a.qs[ib * QK_K..ib * QK_K + QK_K];
        let bsums = &a.bsums[ib * 16..ib * 16 + 16];
        let (sums, mins) = k4_parts(b, SCALES, QS, Some(QH), q8, bsums);
        let (isum, summs) = (sums.iter().sum::<i32>(), mins.iter().sum::<i32>());
        let d = f16_at(b, D) * a.d[ib];
        let dmin = f16_at(b, DMIN) * a.d[ib];
        sumf += d * isum as f32 - dmin * summs as f32;
    }
    sumf
}

/// The integer sum of a Q6_K super-block `b` times the 256 Q8_K values `q8`:
/// `sum over 16-value groups g of sc[g] · sum((q - 32) · q8)`.
pub fn q6_k_isum(b: &[u8], q8: &[i8]) -> i32 {
    use blocks::q6_k::*;
    let mut isum = 0i32;
    for n in 0..QK_K / 128 {
        let ql = &b[QL + 64 * n..QL + 64 * n + 64];
        let qh = &b[QH + 32 * n..QH + 32 * n + 32];
        let sc = &b[SCALES + 8 * n..SCALES + 8 * n + 8];
        let y = &q8[128 * n..128 * n + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            isum += (sc[is] as i8) as i32 * q1 * y[l] as i32;
            isum += (sc[is + 2] as i8) as i32 * q2 * y[l + 32] as i32;
            isum += (sc[is + 4] as i8) as i32 * q3 * y[l + 64] as i32;
            isum += (sc[is + 6] as i8) as i32 * q4 * y[l + 96] as i32;
        }
    }
    isum
}

/// Q6_K weights times Q8_K activations.
pub fn dot_q6_k(w: &[u8], a: Q8KRow) -> f32 {
    use blocks::q6_k::*;
    let mut sumf = 0.0f32;
    for (ib, b) in w.chunks_exact(210).enumerate() {
        let isum = q6_k_isum(b, &a.qs[ib * QK_K..ib * QK_K + QK_K]);
        sumf += (f16_at(b, D) * a.d[ib]) * isum as f32;
    }
    sumf
}

/// F32 weights (little-endian bytes) times f32 activations; accumulates in f64 like
/// `ggml_vec_dot_f32`'s scalar path.
pub fn dot_f32(w: &[u8], a: &[f32]) -> f32 {
    let mut sum = 0.0f64;
    for (b, &x) in w.chunks_exact(4).zip(a) {
        sum += (f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * x) as f64;
    }
    sum as f32
}

/// F16 weights times f16 activations; f32 products summed in f64 (`ggml_vec_dot_f16` scalar).
pub fn dot_f16(w: &[u8], a: &[f16]) -> f32 {
    let mut sum = 0.0f64;
    for (b, x) in w.chunks_exact(2).zip(a) {
        let wv = f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
        sum += (wv * x.to_f32()) as f64;
    }
    sum as f32
}

/// BF16 weights times bf16 activations; f32 products summed in f64 (`ggml_vec_dot_bf16` scalar).
pub fn dot_bf16(w: &[u8], a: &[bf16]) -> f32 {
    let mut sum = 0.0f64;
    for (b, x) in w.chunks_exact(2).zip(a) {
        let wv = f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16);
        sum += (wv * x.to_f32()) as f64;
    }
    sum as f32
}

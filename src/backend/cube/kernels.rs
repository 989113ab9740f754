//! The CubeCL kernels of the quantized matrix-vector product: one source compiled for every
//! CubeCL runtime (WGSL or SPIR-V on wgpu, C++ through NVRTC on CUDA).
//!
//! Each kernel gives `rows_per_plane` rows of the weight matrix to a plane of 32 units
//! (`UNIT_POS_X`, the "lanes"), `planes_per_cube` planes to a cube (`UNIT_POS_Y`), and
//! `tokens_per_cube` tokens to a cube (`CUBE_POS_Y` counts groups of them: one token when
//! decoding, several for a prompt). In every step each lane loads, for each of the cube's tokens,
//! 16 or 32 activations once and, for each of its rows, 16 contiguous bytes of quantized values,
//! decodes them against the activations and accumulates in f32 (reusing activations across rows,
//! and the weights just loaded across tokens, from the cache). A token's sums are the same
//! operations in the same order whatever the tiling, so its results are the same bits. The lanes'
//! sums are reduced with a plane (subgroup) sum where the device has 32-wide planes, else in
//! shared memory (Mesa's lavapipe has no plane operations). The layouts read here are those of
//! [`super::upload`].

use cubecl::prelude::*;

/// An f16 bit pattern (low 16 bits of `h`) as f32, exactly: normals, subnormals, zero,
/// infinities and NaN, either sign. Decoded by hand because WGSL cannot load 16-bit values from a
/// word array.
#[cube]
pub(super) fn f16_bits(h: u32) -> f32 {
    let e = (h >> 10) & 31;
    let m = h & 1023;
    let mut v = f32::reinterpret(((e + 112) << 23) | (m << 13));
    if e == 0 {
        v = f32::cast_from(m) * 5.960_464_5e-8;
    }
    if e == 31 {
        v = f32::reinterpret(0x7f80_0000u32 | (m << 13));
    }
    if (h >> 15) & 1 == 1 {
        v = -v;
    }
    v
}

/// The 6-bit scale (`min == false`) or minimum of sub-block `s` (0..8) of a Q4_K block whose 12
/// scale bytes are the words `s0, s1, s2` (llama.cpp's `get_scale_min_k4`).
#[cube]
pub(super) fn k4_scale_min(s0: u32, s1: u32, s2: u32, s: u32, #[comptime] min: bool) -> u32 {
    let sh = 8 * (s % 4);
    let lo = if comptime!(min) { s1 } else { s0 };
    let mut v = (lo >> sh) & 63;
    if s >= 4 {
        let top = if comptime!(min) {
            (s2 >> sh) >> 4
        } else {
            s2 >> sh
        };
        v = (top & 15) | (((lo >> sh) >> 6) & 3) << 4;
    }
    v
}

/// The f16 scale of block `blk` from the scales stored two to a word from word `d_base` on.
#[cube]
pub(super) fn packed_f16(w: &Array<u32>, d_base: usize, blk: usize) -> f32 {
    f16_bits((w[d_base + blk / 2] >> (16 * (blk % 2) as u32)) & 65535)
}

/// A byte (0..256) read as i8, as f32.
#[cube]
pub(super) fn i8_f32(b: u32) -> f32 {
    f32::cast_from(b) - f32::cast_from((b >> 7) * 256)
}

/// The first of the rows that this unit's plane computes.
#[cube]
fn first_row(#[comptime] planes_per_cube: u32, #[comptime] rows_per_plane: u32) -> u32 {
    (CUBE_POS_X * planes_per_cube + UNIT_POS_Y) * rows_per_plane
}

/// The first value of the activations of token `tt` (0..`tokens_per_cube`) of this cube's tokens
/// (`CUBE_POS_Y * tokens_per_cube..`), of `m` tokens of `cols` values. A token past the last one
/// reads the last one's values (its sums are computed and not stored).
#[cube]
fn x_row(tt: u32, m: u32, cols: u32, #[comptime] tokens_per_cube: u32) -> usize {
    let t = u32::min(CUBE_POS_Y * tokens_per_cube + tt, m - 1);
    t as usize * cols as usize
}

/// The index of the accumulator of row `r` (of the plane's) and token `tt` (of the cube's).
#[cube]
fn acc_at(r: u32, tt: u32, #[comptime] tokens_per_cube: u32) -> usize {
    (r * tokens_per_cube + tt) as usize
}

/// A fresh accumulator for each of the plane's rows and the cube's tokens.
#[cube]
pub(super) fn zeros(#[comptime] n: u32) -> Array<f32> {
    let mut acc = Array::<f32>::new(n as usize);
    #[unroll]
    for i in 0..n {
        acc[i as usize] = 0.0;
    }
    acc
}

/// `v[i] += v[i + s]` for `i < s`: one level of a halving tree.
#[cube]
fn halve(v: &mut Array<f32>, #[comptime] s: u32) {
    #[unroll]
    for i in 0..s {
        v[i as usize] = v[i as usize] + v[(i + s) as usize];
    }
}

/// Writes the sums over the plane's 32 lanes of the accumulators `acc` (row `r`, token `tt` at
/// [`acc_at`]) to `y[t, row0 + r]`, for the rows below `rows` and tokens below `m`.
///
/// Where the device has 32-wide planes the sums are plane sums. Else every lane puts its
/// accumulators in shared memory, and after one barrier lane `o` adds output `o`'s 32 values in
/// the order of a halving tree (16 + 16, 8 + 8, ...): the order, and so the bits, of a tree in
/// shared memory with a barrier per level, in one barrier per product instead of seven per row
/// (lavapipe runs a barrier by switching between its coroutines).
#[cube]
fn store_rows(
    acc: &Array<f32>,
    y: &mut Array<f32>,
    m: u32,
    row0: u32,
    rows: u32,
    #[comptime] planes_per_cube: u32,
    #[comptime] rows_per_plane: u32,
    #[comptime] tokens_per_cube: u32,
    #[comptime] plane: bool,
) {
    let outs = comptime!(rows_per_plane * tokens_per_cube);
    let lane = UNIT_POS_X;
    let t0 = CUBE_POS_Y * tokens_per_cube;
    if comptime!(plane) {
        #[unroll]
        for o in 0..outs {
            let total = plane_sum(acc[o as usize]);
            let row = row0 + o / tokens_per_cube;
            let t = t0 + o % tokens_per_cube;
            if lane == 0 && row < rows && t < m {
                y[t as usize * rows as usize + row as usize] = total;
            }
        }
    } else {
        let mut sm = SharedMemory::<f32>::new((planes_per_cube * outs * 32u32) as usize);
        let base = (UNIT_POS_Y * outs * 32u32) as usize;
        #[unroll]
        for o in 0..outs {
            sm[base + (o * 32u32 + lane) as usize] = acc[o as usize];
        }
        sync_cube();
        let mut v = Array::<f32>::new(32usize);
        let mut o = lane;
        while o < outs {
            let from = base + (o * 32u32) as usize;
            #[unroll]
            for i in 0..32usize {
                v[i] = sm[from + i];
            }
            halve(&mut v, 16u32);
            halve(&mut v, 8u32);
            halve(&mut v, 4u32);
            halve(&mut v, 2u32);
            halve(&mut v, 1u32);
            let row = row0 + o / tokens_per_cube;
            let t = t0 + o % tokens_per_cube;
            if row < rows && t < m {
                y[t as usize * rows as usize + row as usize] = v[0];
            }
            o += 32u32;
        }
    }
}

/// `y[t, row] = sum_k w[row, k] * x[t, k]` over the `m` tokens `t` for Q4_K `w` (GGUF's 144-byte blocks, as they are),
/// or with `five` Q5_K (GGUF's 176-byte blocks: the same with 32 bytes of fifth bits `qh` before
/// the nibbles).
///
/// A plane of 32 lanes computes `rows_per_plane` rows and `planes_per_cube` planes make a cube
/// (`UNIT_POS_Y`); `CUBE_POS_Y` is the group of tokens. Each step covers 4 blocks, 8 lanes to a block: lane
/// part `p = l % 8` reads the 16 bytes `16 p..+16` of the block's nibbles (pair `j = p / 2`, half
/// `p % 2`: low nibbles in sub-block `2 j`, high in `2 j + 1`; their fifth bits are bits `2 j` and
/// `2 j + 1` of `qh` bytes `16 (p % 2)..+16`), and the 32 activations they meet are loaded once
/// for all the plane's rows.
#[cube(launch_unchecked)]
pub fn q45_k_matvec(
    w: &Array<u32>,
    x: &Array<f32>,
    y: &mut Array<f32>,
    rows: u32,
    cols: u32,
    m: u32,
    #[comptime] planes_per_cube: u32,
    #[comptime] rows_per_plane: u32,
    #[comptime] tokens_per_cube: u32,
    #[comptime] plane: bool,
    #[comptime] five: bool,
) {
    let block_words = if comptime!(five) { 44usize } else { 36usize };
    let lane = UNIT_POS_X;
    let row0 = first_row(planes_per_cube, rows_per_plane);
    let nb = (cols / 256) as usize;
    let p = lane % 8;
    let j = p / 2;
    let xo = (64 * j + 16 * (p % 2)) as usize;
    let qo = if comptime!(five) {
        (12 + 4 * p) as usize
    } else {
        (4 + 4 * p) as usize
    };
    let ho = (4 + 4 * (p % 2)) as usize;
    let mut acc = zeros(comptime!(rows_per_plane * tokens_per_cube));
    let mut xl = Array::<f32>::new(16usize);
    let mut xh = Array::<f32>::new(16usize);
    let mut b = (lane / 8) as usize;
    while b < nb {
        #[unroll]
        for tt in 0..tokens_per_cube {
            let xrow = x_row(tt, m, cols, tokens_per_cube);
            let xb = xrow + b * 256 + xo;
            let mut sxl = 0.0f32;
            let mut sxh = 0.0f32;
            #[unroll]
            for i in 0..16usize {
                xl[i] = x[xb + i];
                xh[i] = x[xb + 32 + i];
                sxl += xl[i];
                sxh += xh[i];
            }
            #[unroll]
            for r in 0..rows_per_plane {
                let row = row0 + r;
                if row < rows {
                    let base = (row as usize * nb + b) * block_words;
                    let hdr = w[base];
                    let s0 = w[base + 1];
                    let s1 = w[base + 2];
                    let s2 = w[base + 3];
                    let mut dl = 0.0f32;
                    let mut dh = 0.0f32;
                    #[unroll]
                    for k in 0..4usize {
                        let q = w[base + qo + k];
                        let mut qh = 0u32;
                        if comptime!(five) {
                            qh = w[base + ho + k] >> (2 * j);
                        }
                        #[unroll]
                        for i in 0..4usize {
                            let sh = (8 * i) as u32;
                            let mut lo = (q >> sh) & 15;
                            let mut hi = (q >> (sh + 4)) & 15;
                            if comptime!(five) {
                                lo |= ((qh >> sh) & 1) << 4;
                                hi |= ((qh >> (sh + 1)) & 1) << 4;
                            }
                            dl += f32::cast_from(lo) * xl[4 * k + i];
                            dh += f32::cast_from(hi) * xh[4 * k + i];
                        }
                    }
                    let d = f16_bits(hdr & 65535);
                    let dmin = f16_bits(hdr >> 16);
                    let sl = 2 * j;
                    acc[acc_at(r, tt, tokens_per_cube)] +=
                        d * f32::cast_from(k4_scale_min(s0, s1, s2, sl, false)) * dl
                            - dmin * f32::cast_from(k4_scale_min(s0, s1, s2, sl, true)) * sxl
                            + d * f32::cast_from(k4_scale_min(s0, s1, s2, sl + 1, false)) * dh
                            - dmin * f32::cast_from(k4_scale_min(s0, s1, s2, sl + 1, true)) * sxh;
                }
            }
        }
        b += 4;
    }
    store_rows(
        &acc,
        y,
        m,
        row0,
        rows,
        planes_per_cube,
        rows_per_plane,
        tokens_per_cube,
        plane,
    );
}

/// The same for Q6_K repacked as 52 words per block (`ql`, `qh`, `scales`) followed by the
/// blocks' f16 scales `d`, two to a word.
///
/// 8 lanes to a block: lane part `p = l % 8` reads `ql` bytes `16 p..+16`: half `n = p / 4` of the
/// block, in it the low (`h = 0`) or high (`h = 1`) 32 bytes (`h = (p % 4) / 2`), at `lq = 16 (p %
/// 2)`; their nibbles are values `128 n + lq + 32 h + i` and `+ 64`, 2 high bits each from `qh`
/// bytes `32 n + lq..+16`, 16 values to a scale.
#[cube(launch_unchecked)]
pub fn q6_k_matvec(
    w: &Array<u32>,
    x: &Array<f32>,
    y: &mut Array<f32>,
    rows: u32,
    cols: u32,
    m: u32,
    #[comptime] planes_per_cube: u32,
    #[comptime] rows_per_plane: u32,
    #[comptime] tokens_per_cube: u32,
    #[comptime] plane: bool,
) {
    let lane = UNIT_POS_X;
    let row0 = first_row(planes_per_cube, rows_per_plane);
    let nb = (cols / 256) as usize;
    let p = lane % 8;
    let n = p / 4;
    let h = (p % 4) / 2;
    let lq = 16 * (p % 2);
    let xo = (128 * n + lq + 32 * h) as usize;
    let sc_lo = 8 * n + p % 2 + 2 * h;
    let sc_hi = sc_lo + 4;
    let mut acc = zeros(comptime!(rows_per_plane * tokens_per_cube));
    let mut xl = Array::<f32>::new(16usize);
    let mut xh = Array::<f32>::new(16usize);
    let d_base = rows as usize * nb * 52;
    let mut b = (lane / 8) as usize;
    while b < nb {
        #[unroll]
        for tt in 0..tokens_per_cube {
            let xrow = x_row(tt, m, cols, tokens_per_cube);
            let xb = xrow + b * 256 + xo;
            #[unroll]
            for i in 0..16usize {
                xl[i] = x[xb + i];
                xh[i] = x[xb + 64 + i];
            }
            #[unroll]
            for r in 0..rows_per_plane {
                let row = row0 + r;
                if row < rows {
                    let blk = row as usize * nb + b;
                    let base = blk * 52;
                    let d = packed_f16(w, d_base, blk);
                    let s_lo =
                        i8_f32((w[base + 48 + (sc_lo / 4) as usize] >> (8 * (sc_lo % 4))) & 255);
                    let s_hi =
                        i8_f32((w[base + 48 + (sc_hi / 4) as usize] >> (8 * (sc_hi % 4))) & 255);
                    let mut sum_lo = 0.0f32;
                    let mut sum_hi = 0.0f32;
                    #[unroll]
                    for k in 0..4usize {
                        let ql = w[base + (4 * p) as usize + k];
                        let qh = w[base + 32 + (8 * n + lq / 4) as usize + k];
                        #[unroll]
                        for i in 0..4usize {
                            let sh = (8 * i) as u32;
                            let hb = qh >> sh;
                            let q_lo = ((ql >> sh) & 15) | (((hb >> (2 * h)) & 3) << 4);
                            let q_hi = ((ql >> (sh + 4)) & 15) | (((hb >> (4 + 2 * h)) & 3) << 4);
                            sum_lo += (f32::cast_from(q_lo) - 32.0) * xl[4 * k + i];
                            sum_hi += (f32::cast_from(q_hi) - 32.0) * xh[4 * k + i];
                        }
                    }
                    acc[acc_at(r, tt, tokens_per_cube)] += d * (s_lo * sum_lo + s_hi * sum_hi);
                }
            }
        }
        b += 4;
    }
    store_rows(
        &acc,
        y,
        m,
        row0,
        rows,
        planes_per_cube,
        rows_per_plane,
        tokens_per_cube,
        plane,
    );
}

/// The same for Q8_0 repacked as 8 words of values per block followed by the blocks' f16 scales
/// `d`, two to a word. Each step covers 16 blocks, 2 lanes to a block: lane `l` reads words `4 (l
/// % 2)..+4` of block `l / 2`.
#[cube(launch_unchecked)]
pub fn q8_0_matvec(
    w: &Array<u32>,
    x: &Array<f32>,
    y: &mut Array<f32>,
    rows: u32,
    cols: u32,
    m: u32,
    #[comptime] planes_per_cube: u32,
    #[comptime] rows_per_plane: u32,
    #[comptime] tokens_per_cube: u32,
    #[comptime] plane: bool,
) {
    let lane = UNIT_POS_X;
    let row0 = first_row(planes_per_cube, rows_per_plane);
    let nb = (cols / 32) as usize;
    let half = (lane % 2) as usize;
    let mut acc = zeros(comptime!(rows_per_plane * tokens_per_cube));
    let mut xs = Array::<f32>::new(16usize);
    let d_base = rows as usize * nb * 8;
    let mut b = (lane / 2) as usize;
    while b < nb {
        #[unroll]
        for tt in 0..tokens_per_cube {
            let xrow = x_row(tt, m, cols, tokens_per_cube);
            let xb = xrow + b * 32 + 16 * half;
            #[unroll]
            for i in 0..16usize {
                xs[i] = x[xb + i];
            }
            #[unroll]
            for r in 0..rows_per_plane {
                let row = row0 + r;
                if row < rows {
                    let blk = row as usize * nb + b;
                    let d = packed_f16(w, d_base, blk);
                    let mut s = 0.0f32;
                    #[unroll]
                    for k in 0..4usize {
                        let q = w[blk * 8 + 4 * half + k];
                        #[unroll]
                        for i in 0..4usize {
                            s += i8_f32((q >> (8 * i) as u32) & 255) * xs[4 * k + i];
                        }
                    }
                    acc[acc_at(r, tt, tokens_per_cube)] += d * s;
                }
            }
        }
        b += 16;
    }
    store_rows(
        &acc,
        y,
        m,
        row0,
        rows,
        planes_per_cube,
        rows_per_plane,
        tokens_per_cube,
        plane,
    );
}

/// The same for the 32-value formats with a scale and 4- or 5-bit values (Q4_0, Q4_1, Q5_0,
/// Q5_1), repacked as 4 words of nibbles per block (byte `j`: value `j` low, `j + 16` high), one
/// more word of fifth bits with `high` (bit `j`: value `j`), then every block's f16 scale `d`, two
/// to a word, and with `min` every block's f16 minimum `m` likewise. A value is `d * q + m` with
/// `min`, else `d * (q - offset)` (8 for 4 bits, 16 for 5). Each step covers 16 blocks, 2 lanes to
/// a block: lane `l` takes the low (`l % 2 == 0`) or high nibbles of block `l / 2`.
#[cube(launch_unchecked)]
pub fn legacy_matvec(
    w: &Array<u32>,
    x: &Array<f32>,
    y: &mut Array<f32>,
    rows: u32,
    cols: u32,
    m: u32,
    #[comptime] planes_per_cube: u32,
    #[comptime] rows_per_plane: u32,
    #[comptime] tokens_per_cube: u32,
    #[comptime] plane: bool,
    #[comptime] high: bool,
    #[comptime] min: bool,
) {
    let lane = UNIT_POS_X;
    let row0 = first_row(planes_per_cube, rows_per_plane);
    let nb = (cols / 32) as usize;
    let half = lane % 2;
    let vw = if comptime!(high) { 5usize } else { 4usize };
    let offset = if comptime!(high) { 16.0f32 } else { 8.0f32 };
    let mut acc = zeros(comptime!(rows_per_plane * tokens_per_cube));
    let mut xs = Array::<f32>::new(16usize);
    let d_base = rows as usize * nb * vw;
    let m_base = d_base + (rows as usize * nb).div_ceil(2);
    let mut b = (lane / 2) as usize;
    while b < nb {
        #[unroll]
        for tt in 0..tokens_per_cube {
            let xrow = x_row(tt, m, cols, tokens_per_cube);
            let xb = xrow + b * 32 + 16 * half as usize;
            let mut sx = 0.0f32;
            #[unroll]
            for i in 0..16usize {
                xs[i] = x[xb + i];
                sx += xs[i];
            }
            #[unroll]
            for r in 0..rows_per_plane {
                let row = row0 + r;
                if row < rows {
                    let blk = row as usize * nb + b;
                    let d = packed_f16(w, d_base, blk);
                    let mut qh = 0u32;
                    if comptime!(high) {
                        qh = w[blk * vw + 4] >> (16 * half);
                    }
                    let mut s = 0.0f32;
                    #[unroll]
                    for k in 0..4usize {
                        let q = w[blk * vw + k] >> (4 * half);
                        #[unroll]
                        for i in 0..4usize {
                            let mut v = (q >> (8 * i) as u32) & 15;
                            if comptime!(high) {
                                v |= ((qh >> (4 * k + i) as u32) & 1) << 4;
                            }
                            s += f32::cast_from(v) * xs[4 * k + i];
                        }
                    }
                    if comptime!(min) {
                        acc[acc_at(r, tt, tokens_per_cube)] +=
                            d * s + packed_f16(w, m_base, blk) * sx;
                    } else {
                        acc[acc_at(r, tt, tokens_per_cube)] += d * (s - offset * sx);
                    }
                }
            }
        }
        b += 16;
    }
    store_rows(
        &acc,
        y,
        m,
        row0,
        rows,
        planes_per_cube,
        rows_per_plane,
        tokens_per_cube,
        plane,
    );
}

/// The same for Q2_K (GGUF's 84-byte blocks as they are: 16 scale bytes, 64 bytes of 2-bit values,
/// `d` and `dmin`) or with `three` Q3_K (repacked as 27 words per block: 32 bytes `hmask`, 64
/// bytes of 2-bit values, 12 scale bytes; then every block's f16 `d`, two to a word).
///
/// Both store value `128 n + 32 j + l` (`n` 0..2, `j` 0..4, `l` 0..32) in bits `2 j` of byte
/// `32 n + l` of the 2-bit values, with scale `8 n + 2 j + l / 16`; Q3_K's third bit is bit
/// `4 n + j` of `hmask` byte `l` (value - 4 where it is clear). 8 lanes to a block: lane part `p =
/// l % 8` reads the 16 bytes at `32 n + 16 (p % 2)` for `n = p / 4` and decodes them twice, for
/// `j = 2 ((p % 4) / 2)` and `j + 1`.
#[cube(launch_unchecked)]
pub fn q23_k_matvec(
    w: &Array<u32>,
    x: &Array<f32>,
    y: &mut Array<f32>,
    rows: u32,
    cols: u32,
    m: u32,
    #[comptime] planes_per_cube: u32,
    #[comptime] rows_per_plane: u32,
    #[comptime] tokens_per_cube: u32,
    #[comptime] plane: bool,
    #[comptime] three: bool,
) {
    let block_words = if comptime!(three) { 27usize } else { 21usize };
    let q_words = if comptime!(three) { 8usize } else { 4usize };
    let lane = UNIT_POS_X;
    let row0 = first_row(planes_per_cube, rows_per_plane);
    let nb = (cols / 256) as usize;
    let p = lane % 8;
    let n = p / 4;
    let j0 = 2 * ((p % 4) / 2);
    let lq = 16 * (p % 2);
    let xo = (128 * n + 32 * j0 + lq) as usize;
    let qo = q_words + (8 * n + lq / 4) as usize;
    let sc0 = 8 * n + 2 * j0 + p % 2;
    let mut acc = zeros(comptime!(rows_per_plane * tokens_per_cube));
    let mut xl = Array::<f32>::new(16usize);
    let mut xh = Array::<f32>::new(16usize);
    let d_base = rows as usize * nb * 27;
    let mut b = (lane / 8) as usize;
    while b < nb {
        #[unroll]
        for tt in 0..tokens_per_cube {
            let xrow = x_row(tt, m, cols, tokens_per_cube);
            let xb = xrow + b * 256 + xo;
            let mut sxl = 0.0f32;
            let mut sxh = 0.0f32;
            #[unroll]
            for i in 0..16usize {
                xl[i] = x[xb + i];
                xh[i] = x[xb + 32 + i];
                sxl += xl[i];
                sxh += xh[i];
            }
            #[unroll]
            for r in 0..rows_per_plane {
                let row = row0 + r;
                if row < rows {
                    let blk = row as usize * nb + b;
                    let base = blk * block_words;
                    let mut dl = 0.0f32;
                    let mut dh = 0.0f32;
                    #[unroll]
                    for k in 0..4usize {
                        let q = w[base + qo + k] >> (2 * j0);
                        let mut hm = 0u32;
                        if comptime!(three) {
                            hm = w[base + (lq / 4) as usize + k] >> (4 * n + j0);
                        }
                        #[unroll]
                        for i in 0..4usize {
                            let sh = (8 * i) as u32;
                            let lo = f32::cast_from((q >> sh) & 3);
                            let hi = f32::cast_from((q >> (sh + 2)) & 3);
                            if comptime!(three) {
                                // The value is q - 4 where the hmask bit is clear.
                                let ml = f32::cast_from(1 - ((hm >> sh) & 1)) * 4.0;
                                let mh = f32::cast_from(1 - ((hm >> (sh + 1)) & 1)) * 4.0;
                                dl += (lo - ml) * xl[4 * k + i];
                                dh += (hi - mh) * xh[4 * k + i];
                            } else {
                                dl += lo * xl[4 * k + i];
                                dh += hi * xh[4 * k + i];
                            }
                        }
                    }
                    if comptime!(three) {
                        let d = packed_f16(w, d_base, blk);
                        acc[acc_at(r, tt, tokens_per_cube)] += d
                            * (k3_scale(w, base + 24, sc0) * dl
                                + k3_scale(w, base + 24, sc0 + 2) * dh);
                    } else {
                        let hdr = w[base + 20];
                        let d = f16_bits(hdr & 65535);
                        let dmin = f16_bits(hdr >> 16);
                        let s_lo = (w[base + (sc0 / 4) as usize] >> (8 * (sc0 % 4))) & 255;
                        let s_hi =
                            (w[base + ((sc0 + 2) / 4) as usize] >> (8 * ((sc0 + 2) % 4))) & 255;
                        acc[acc_at(r, tt, tokens_per_cube)] += d
                            * (f32::cast_from(s_lo & 15) * dl + f32::cast_from(s_hi & 15) * dh)
                            - dmin
                                * (f32::cast_from(s_lo >> 4) * sxl
                                    + f32::cast_from(s_hi >> 4) * sxh);
                    }
                }
            }
        }
        b += 4;
    }
    store_rows(
        &acc,
        y,
        m,
        row0,
        rows,
        planes_per_cube,
        rows_per_plane,
        tokens_per_cube,
        plane,
    );
}

/// Scale `s` (0..16) of a Q3_K block whose 12 scale bytes are the words from `at`, less 32
/// (llama.cpp's unpacking of `scales`: 4 low bits from the first 8 bytes, 2 high bits from the
/// last 4).
#[cube]
fn k3_scale(w: &Array<u32>, at: usize, s: u32) -> f32 {
    let g = s / 4;
    let i = s % 4;
    let low = (w[at + (g % 2) as usize] >> (8 * i + 4 * (g / 2))) & 15;
    let high = (w[at + 2] >> (8 * i + 2 * g)) & 3;
    f32::cast_from(low | (high << 4)) - 32.0
}

/// The same for unquantized matrices: F32 (one value to a word) or, with `half`, F16 or (with
/// `brain`) BF16, two values to a word (the row-major GGUF bytes as they are). `cols` is a
/// multiple of 8. Each step covers 256 values of a row, 8 consecutive ones to a lane.
#[cube(launch_unchecked)]
pub fn float_matvec(
    w: &Array<u32>,
    x: &Array<f32>,
    y: &mut Array<f32>,
    rows: u32,
    cols: u32,
    m: u32,
    #[comptime] planes_per_cube: u32,
    #[comptime] rows_per_plane: u32,
    #[comptime] tokens_per_cube: u32,
    #[comptime] plane: bool,
    #[comptime] half: bool,
    #[comptime] brain: bool,
) {
    let lane = UNIT_POS_X;
    let row0 = first_row(planes_per_cube, rows_per_plane);
    let mut acc = zeros(comptime!(rows_per_plane * tokens_per_cube));
    let mut xs = Array::<f32>::new(8usize);
    let mut c = (lane * 8) as usize;
    while c < cols as usize {
        #[unroll]
        for tt in 0..tokens_per_cube {
            let xrow = x_row(tt, m, cols, tokens_per_cube);
            #[unroll]
            for i in 0..8usize {
                xs[i] = x[xrow + c + i];
            }
            #[unroll]
            for r in 0..rows_per_plane {
                let row = row0 + r;
                if row < rows {
                    let at = row as usize * cols as usize + c;
                    let mut s = 0.0f32;
                    if comptime!(half) {
                        #[unroll]
                        for k in 0..4usize {
                            let v = w[at / 2 + k];
                            let lo = if comptime!(brain) {
                                f32::reinterpret(v << 16)
                            } else {
                                f16_bits(v & 65535)
                            };
                            let hi = if comptime!(brain) {
                                f32::reinterpret(v & 0xffff_0000u32)
                            } else {
                                f16_bits(v >> 16)
                            };
                            s += lo * xs[2 * k] + hi * xs[2 * k + 1];
                        }
                    } else {
                        #[unroll]
                        for i in 0..8usize {
                            s += f32::reinterpret(w[at + i]) * xs[i];
                        }
                    }
                    acc[acc_at(r, tt, tokens_per_cube)] += s;
                }
            }
        }
        c += 256;
    }
    store_rows(
        &acc,
        y,
        m,
        row0,
        rows,
        planes_per_cube,
        rows_per_plane,
        tokens_per_cube,
        plane,
    );
}

/// An empty kernel: what one launch costs, measured by the device benchmark.
#[cube(launch)]
pub fn nop(y: &mut Array<f32>) {
    if ABSOLUTE_POS == 0 {
        y[0] = y[0] + 1.0;
    }
}

//! The products of a prompt (many tokens at once) as register-tiled kernels: each unit computes
//! `tile_rows` rows for `tile_tokens` tokens, so that every weight word it loads serves all its
//! tokens and every four activations it loads (one vector) serve all its rows.
//!
//! Why a kernel of its own: the matrix-vector kernels ([`super::kernels`]) reuse a weight load for
//! the tokens of a cube only, and on Mesa's lavapipe (CI's device) a load is what costs: llvmpipe
//! runs 8 units to a 256-bit vector and loads from a storage buffer one unit at a time, with a
//! bounds check each, while it computes all 8 at once. There chord's Q4_K matrix-vector kernel
//! computed a 128-token product of 2048 x 2048 at 1.0 G multiply-adds/s, and a tiled kernel of 8
//! rows x 8 tokens at 5.2 (`scripts/lavapipe-probe.py`, which holds the measurements). On a GPU
//! the same kernel keeps its tile in registers and reads weights through its caches; how it
//! compares there with the matrix-vector kernels is for `scripts/device-check.sh` to measure.
//!
//! A unit's sums are the same operations in the same order whatever the tile, so every tile gives
//! the same bits; they are other sums than the matrix-vector kernels' (held to the same
//! tolerance). The layouts read are those of [`super::repack`].

use super::kernels::{f16_bits, i8_f32, k4_scale_min, packed_f16, zeros};
use cubecl::prelude::*;

/// Units per cube along the rows (x) and along the tokens (y).
pub const CUBE_UNITS: u32 = 8;

/// For each of the `n` rows (or tokens) of this unit's tile from `first`, its index clamped below
/// `count` times `stride`: where its values start. Units past the last row (token) compute a copy
/// of it and store nothing.
#[cube]
fn tile_bases(first: u32, count: u32, stride: u32, #[comptime] n: u32) -> Array<u32> {
    let mut a = Array::<u32>::new(n as usize);
    #[unroll]
    for i in 0..n {
        a[i as usize] = u32::min(first + i, count - 1) * stride;
    }
    a
}

/// Writes the tile's sums `acc` (row `i`, token `j` at `i * tile_tokens + j`) to `y[t, r]`, for
/// rows below `rows` and tokens below `m`.
#[cube]
fn store_tile(
    acc: &Array<f32>,
    y: &mut Array<f32>,
    rows: u32,
    m: u32,
    r0: u32,
    t0: u32,
    #[comptime] tile_rows: u32,
    #[comptime] tile_tokens: u32,
) {
    #[unroll]
    for i in 0..tile_rows {
        #[unroll]
        for j in 0..tile_tokens {
            let r = r0 + i;
            let t = t0 + j;
            if r < rows && t < m {
                y[(t * rows + r) as usize] = acc[(i * tile_tokens + j) as usize];
            }
        }
    }
}

/// `y[t, r] = sum_k w[r, k] x[t, k]` for Q4_K `w` (GGUF's 144-byte blocks as 36 words), or with
/// `five` Q5_K (176-byte blocks: 32 bytes of fifth bits `qh` before the nibbles); `x` as vectors
/// of 4 values (`N` = 4).
///
/// Per block and per pair `jj` of sub-blocks (the low nibbles of 32 bytes are sub-block `2 jj`,
/// the high ones `2 jj + 1`), each of the 8 steps `k` loads, for each token, the 4 activations of
/// either sub-block that word `k` of the pair's nibbles meets, and for each row that word: 8
/// values, each multiplied with every token's activation. Per sub-block a unit sums `q * x` and
/// `x`, then adds `d * scale * sum(q x) - dmin * min * sum(x)`.
#[cube(launch_unchecked)]
pub fn q45_k_tiled<N: Size>(
    w: &Array<u32>,
    x: &Array<Vector<f32, N>>,
    y: &mut Array<f32>,
    rows: u32,
    cols: u32,
    m: u32,
    #[comptime] tile_rows: u32,
    #[comptime] tile_tokens: u32,
    #[comptime] five: bool,
) {
    let block_words = if comptime!(five) { 44u32 } else { 36u32 };
    let qs_word = if comptime!(five) { 12u32 } else { 4u32 };
    let nb = cols / 256;
    let r0 = ABSOLUTE_POS_X * tile_rows;
    let t0 = ABSOLUTE_POS_Y * tile_tokens;
    let mut acc = zeros(comptime!(tile_rows * tile_tokens));
    // Per row: its first word; per block: d, dmin and the scale words.
    let row_base = tile_bases(r0, rows, nb * block_words, tile_rows);
    let x_base = tile_bases(t0, m, cols / 4, tile_tokens);
    let mut d = Array::<f32>::new(tile_rows as usize);
    let mut dmin = Array::<f32>::new(tile_rows as usize);
    let mut sc = Array::<u32>::new(comptime!(3 * tile_rows) as usize);
    // Per pair of sub-blocks: each row's scales and minimums, the sums of q * x per row and token,
    // and of x per token; the step's activations.
    let mut scale = Array::<f32>::new(comptime!(4 * tile_rows) as usize);
    let mut sq = Array::<f32>::new(comptime!(2 * tile_rows * tile_tokens) as usize);
    let mut sx = Array::<f32>::new(comptime!(2 * tile_tokens) as usize);
    let mut xl = Array::<f32>::new(comptime!(4 * tile_tokens) as usize);
    let mut xh = Array::<f32>::new(comptime!(4 * tile_tokens) as usize);
    let mut b = 0u32;
    while b < nb {
        #[unroll]
        for i in 0..tile_rows {
            let base = row_base[i as usize] + b * block_words;
            let hdr = w[base as usize];
            d[i as usize] = f16_bits(hdr & 65535);
            dmin[i as usize] = f16_bits(hdr >> 16);
            #[unroll]
            for s in 0..3u32 {
                sc[(3 * i + s) as usize] = w[(base + 1 + s) as usize];
            }
        }
        for jj in 0..4u32 {
            #[unroll]
            for i in 0..tile_rows {
                let s0 = sc[(3 * i) as usize];
                let s1 = sc[(3 * i + 1) as usize];
                let s2 = sc[(3 * i + 2) as usize];
                scale[(4 * i) as usize] = f32::cast_from(k4_scale_min(s0, s1, s2, 2 * jj, false));
                scale[(4 * i + 1) as usize] =
                    f32::cast_from(k4_scale_min(s0, s1, s2, 2 * jj, true));
                scale[(4 * i + 2) as usize] =
                    f32::cast_from(k4_scale_min(s0, s1, s2, 2 * jj + 1, false));
                scale[(4 * i + 3) as usize] =
                    f32::cast_from(k4_scale_min(s0, s1, s2, 2 * jj + 1, true));
                #[unroll]
                for j in 0..comptime!(2 * tile_tokens) {
                    sq[(i * 2 * tile_tokens + j) as usize] = 0.0;
                }
            }
            #[unroll]
            for j in 0..comptime!(2 * tile_tokens) {
                sx[j as usize] = 0.0;
            }
            for k in 0..8u32 {
                #[unroll]
                for j in 0..tile_tokens {
                    let at = x_base[j as usize] + b * 64 + jj * 16 + k;
                    let lo = x[at as usize];
                    let hi = x[(at + 8) as usize];
                    #[unroll]
                    for c in 0..4u32 {
                        xl[(4 * j + c) as usize] = lo[c as usize];
                        xh[(4 * j + c) as usize] = hi[c as usize];
                        sx[(2 * j) as usize] += lo[c as usize];
                        sx[(2 * j + 1) as usize] += hi[c as usize];
                    }
                }
                #[unroll]
                for i in 0..tile_rows {
                    let base = row_base[i as usize] + b * block_words;
                    let q = w[(base + qs_word + jj * 8 + k) as usize];
                    let mut qh = 0u32;
                    if comptime!(five) {
                        qh = w[(base + 4 + k) as usize] >> (2 * jj);
                    }
                    #[unroll]
                    for c in 0..4u32 {
                        let mut lo = (q >> (8 * c)) & 15;
                        let mut hi = (q >> (8 * c + 4)) & 15;
                        if comptime!(five) {
                            lo |= ((qh >> (8 * c)) & 1) << 4;
                            hi |= ((qh >> (8 * c + 1)) & 1) << 4;
                        }
                        let lo = f32::cast_from(lo);
                        let hi = f32::cast_from(hi);
                        #[unroll]
                        for j in 0..tile_tokens {
                            let at = (i * 2 * tile_tokens + 2 * j) as usize;
                            sq[at] += lo * xl[(4 * j + c) as usize];
                            sq[at + 1] += hi * xh[(4 * j + c) as usize];
                        }
                    }
                }
            }
            #[unroll]
            for i in 0..tile_rows {
                #[unroll]
                for j in 0..tile_tokens {
                    let at = (i * 2 * tile_tokens + 2 * j) as usize;
                    acc[(i * tile_tokens + j) as usize] += d[i as usize]
                        * (scale[(4 * i) as usize] * sq[at]
                            + scale[(4 * i + 2) as usize] * sq[at + 1])
                        - dmin[i as usize]
                            * (scale[(4 * i + 1) as usize] * sx[(2 * j) as usize]
                                + scale[(4 * i + 3) as usize] * sx[(2 * j + 1) as usize]);
                }
            }
        }
        b += 1;
    }
    store_tile(&acc, y, rows, m, r0, t0, tile_rows, tile_tokens);
}

/// Value `c` (0..4) of group `g` (0..4) of a Q6_K step (see [`q6_k_tiled`]) from its `ql` words
/// (`g` 0 and 2 read `ql_lo`, 1 and 3 `ql_hi`; 0 and 1 the low nibbles) and `qh` word.
#[cube]
fn q6_at(ql_lo: u32, ql_hi: u32, qh: u32, c: u32, #[comptime] g: u32) -> f32 {
    let ql = if comptime!(g.is_multiple_of(2)) {
        ql_lo
    } else {
        ql_hi
    };
    let shift = if comptime!(g < 2) { 8 * c } else { 8 * c + 4 };
    let q = ((ql >> shift) & 15) | (((qh >> (8 * c + 2 * g)) & 3) << 4);
    f32::cast_from(q) - 32.0
}

/// The tiled product for Q6_K repacked as 52 words per block (`ql`, `qh`, `scales`) followed by
/// the blocks' f16 scales `d`, two to a word.
///
/// A block's half `n` holds values `128 n + 32 g + l` (`g` 0..4, `l` 0..32): low (`g` 0, 1) or
/// high (`g` 2, 3) nibble of `ql` byte `64 n + 32 (g % 2) + l`, 2 more bits at `2 g` of `qh` byte
/// `32 n + l`, minus 32; scale `8 n + 2 g + l / 16`. Each step `k` (0..8) takes `l = 4 k..+4` for
/// the four `g`: per token 4 vectors, per row 3 words; a unit sums `q * x` per `g` over 16 values
/// and adds `d * scale * sum`.
#[cube(launch_unchecked)]
pub fn q6_k_tiled<N: Size>(
    w: &Array<u32>,
    x: &Array<Vector<f32, N>>,
    y: &mut Array<f32>,
    rows: u32,
    cols: u32,
    m: u32,
    #[comptime] tile_rows: u32,
    #[comptime] tile_tokens: u32,
) {
    let nb = cols / 256;
    let d_base = rows * nb * 52;
    let r0 = ABSOLUTE_POS_X * tile_rows;
    let t0 = ABSOLUTE_POS_Y * tile_tokens;
    let mut acc = zeros(comptime!(tile_rows * tile_tokens));
    let row_blk = tile_bases(r0, rows, nb, tile_rows);
    let x_base = tile_bases(t0, m, cols / 4, tile_tokens);
    let mut d = Array::<f32>::new(tile_rows as usize);
    let mut sc = Array::<u32>::new(comptime!(4 * tile_rows) as usize);
    let mut sq = Array::<f32>::new(comptime!(4 * tile_rows * tile_tokens) as usize);
    let mut xs = Array::<f32>::new(comptime!(16 * tile_tokens) as usize);
    let mut b = 0u32;
    while b < nb {
        #[unroll]
        for i in 0..tile_rows {
            let blk = row_blk[i as usize] + b;
            d[i as usize] = packed_f16(w, d_base as usize, blk as usize);
            #[unroll]
            for s in 0..4u32 {
                sc[(4 * i + s) as usize] = w[(blk * 52 + 48 + s) as usize];
            }
        }
        for n in 0..2u32 {
            for half in 0..2u32 {
                #[unroll]
                for a in 0..comptime!(4 * tile_rows * tile_tokens) {
                    sq[a as usize] = 0.0;
                }
                for k4 in 0..4u32 {
                    let k = 4 * half + k4;
                    #[unroll]
                    for j in 0..tile_tokens {
                        #[unroll]
                        for g in 0..4u32 {
                            let v = x[(x_base[j as usize] + b * 64 + 32 * n + 8 * g + k) as usize];
                            #[unroll]
                            for c in 0..4u32 {
                                xs[(16 * j + 4 * g + c) as usize] = v[c as usize];
                            }
                        }
                    }
                    #[unroll]
                    for i in 0..tile_rows {
                        let base = (row_blk[i as usize] + b) * 52;
                        let ql_lo = w[(base + 16 * n + k) as usize];
                        let ql_hi = w[(base + 16 * n + 8 + k) as usize];
                        let qh = w[(base + 32 + 8 * n + k) as usize];
                        #[unroll]
                        for c in 0..4u32 {
                            #[unroll]
                            for g in 0..4u32 {
                                let v = q6_at(ql_lo, ql_hi, qh, c, g);
                                #[unroll]
                                for j in 0..tile_tokens {
                                    sq[((i * tile_tokens + j) * 4 + g) as usize] +=
                                        v * xs[(16 * j + 4 * g + c) as usize];
                                }
                            }
                        }
                    }
                }
                #[unroll]
                for i in 0..tile_rows {
                    #[unroll]
                    for j in 0..tile_tokens {
                        let mut s = 0.0f32;
                        #[unroll]
                        for g in 0..4u32 {
                            // scale 8 n + 2 g + half: byte (2 g + half) % 4 of word 2 n + g / 2
                            let word = sc[(4 * i + 2 * n + g / 2) as usize];
                            s += i8_f32((word >> (8 * ((2 * g + half) % 4))) & 255)
                                * sq[((i * tile_tokens + j) * 4 + g) as usize];
                        }
                        acc[(i * tile_tokens + j) as usize] += d[i as usize] * s;
                    }
                }
            }
        }
        b += 1;
    }
    store_tile(&acc, y, rows, m, r0, t0, tile_rows, tile_tokens);
}

/// The tiled product for Q8_0 repacked as 8 words of values per block followed by the blocks'
/// f16 scales `d`, two to a word. Each step `k` (0..8) of a block takes values `4 k..+4`: per
/// token a vector, per row a word; a unit sums `q * x` over the block and adds `d * sum`.
#[cube(launch_unchecked)]
pub fn q8_0_tiled<N: Size>(
    w: &Array<u32>,
    x: &Array<Vector<f32, N>>,
    y: &mut Array<f32>,
    rows: u32,
    cols: u32,
    m: u32,
    #[comptime] tile_rows: u32,
    #[comptime] tile_tokens: u32,
) {
    let nb = cols / 32;
    let d_base = rows * nb * 8;
    let r0 = ABSOLUTE_POS_X * tile_rows;
    let t0 = ABSOLUTE_POS_Y * tile_tokens;
    let mut acc = zeros(comptime!(tile_rows * tile_tokens));
    let row_blk = tile_bases(r0, rows, nb, tile_rows);
    let x_base = tile_bases(t0, m, cols / 4, tile_tokens);
    let mut sq = Array::<f32>::new(comptime!(tile_rows * tile_tokens) as usize);
    let mut xs = Array::<f32>::new(comptime!(4 * tile_tokens) as usize);
    let mut b = 0u32;
    while b < nb {
        #[unroll]
        for a in 0..comptime!(tile_rows * tile_tokens) {
            sq[a as usize] = 0.0;
        }
        for k in 0..8u32 {
            #[unroll]
            for j in 0..tile_tokens {
                let v = x[(x_base[j as usize] + b * 8 + k) as usize];
                #[unroll]
                for c in 0..4u32 {
                    xs[(4 * j + c) as usize] = v[c as usize];
                }
            }
            #[unroll]
            for i in 0..tile_rows {
                let q = w[((row_blk[i as usize] + b) * 8 + k) as usize];
                #[unroll]
                for c in 0..4u32 {
                    let v = i8_f32((q >> (8 * c)) & 255);
                    #[unroll]
                    for j in 0..tile_tokens {
                        sq[(i * tile_tokens + j) as usize] += v * xs[(4 * j + c) as usize];
                    }
                }
            }
        }
        #[unroll]
        for i in 0..tile_rows {
            let dv = packed_f16(w, d_base as usize, (row_blk[i as usize] + b) as usize);
            #[unroll]
            for j in 0..tile_tokens {
                acc[(i * tile_tokens + j) as usize] += dv * sq[(i * tile_tokens + j) as usize];
            }
        }
        b += 1;
    }
    store_tile(&acc, y, rows, m, r0, t0, tile_rows, tile_tokens);
}

/// The tiled product for the 32-value formats with a scale and 4- or 5-bit values (Q4_0, Q4_1,
/// Q5_0, Q5_1) in the layout of [`super::kernels::legacy_matvec`]: 4 words of nibbles per block
/// (byte `l`: value `l` low, `l + 16` high) and with `high` a word of fifth bits (bit `l`: value
/// `l`); then the f16 scales `d`, two to a word, and with `min` the f16 minimums likewise. Each
/// step `k` (0..4) takes nibble word `k`: per token the vectors of values `4 k..+4` and `16 + 4
/// k..+4`, per row the word; a unit sums `q * x` and `x` over the block and adds `d * sum(q x) +
/// m * sum(x)` with `min`, else `d * (sum(q x) - offset * sum(x))`.
#[cube(launch_unchecked)]
pub fn legacy_tiled<N: Size>(
    w: &Array<u32>,
    x: &Array<Vector<f32, N>>,
    y: &mut Array<f32>,
    rows: u32,
    cols: u32,
    m: u32,
    #[comptime] tile_rows: u32,
    #[comptime] tile_tokens: u32,
    #[comptime] high: bool,
    #[comptime] min: bool,
) {
    let vw = if comptime!(high) { 5u32 } else { 4u32 };
    let offset = if comptime!(high) { 16.0f32 } else { 8.0f32 };
    let nb = cols / 32;
    let d_base = rows * nb * vw;
    let m_base = d_base + (rows * nb).div_ceil(2);
    let r0 = ABSOLUTE_POS_X * tile_rows;
    let t0 = ABSOLUTE_POS_Y * tile_tokens;
    let mut acc = zeros(comptime!(tile_rows * tile_tokens));
    let row_blk = tile_bases(r0, rows, nb, tile_rows);
    let x_base = tile_bases(t0, m, cols / 4, tile_tokens);
    let mut qh = Array::<u32>::new(tile_rows as usize);
    let mut sq = Array::<f32>::new(comptime!(tile_rows * tile_tokens) as usize);
    let mut sx = Array::<f32>::new(tile_tokens as usize);
    let mut xs = Array::<f32>::new(comptime!(8 * tile_tokens) as usize);
    let mut b = 0u32;
    while b < nb {
        #[unroll]
        for a in 0..comptime!(tile_rows * tile_tokens) {
            sq[a as usize] = 0.0;
        }
        #[unroll]
        for j in 0..tile_tokens {
            sx[j as usize] = 0.0;
        }
        if comptime!(high) {
            #[unroll]
            for i in 0..tile_rows {
                qh[i as usize] = w[((row_blk[i as usize] + b) * vw + 4) as usize];
            }
        }
        for k in 0..4u32 {
            #[unroll]
            for j in 0..tile_tokens {
                let lo = x[(x_base[j as usize] + b * 8 + k) as usize];
                let hi = x[(x_base[j as usize] + b * 8 + 4 + k) as usize];
                #[unroll]
                for c in 0..4u32 {
                    xs[(8 * j + c) as usize] = lo[c as usize];
                    xs[(8 * j + 4 + c) as usize] = hi[c as usize];
                    sx[j as usize] += lo[c as usize] + hi[c as usize];
                }
            }
            #[unroll]
            for i in 0..tile_rows {
                let q = w[((row_blk[i as usize] + b) * vw + k) as usize];
                #[unroll]
                for c in 0..4u32 {
                    let mut lo = (q >> (8 * c)) & 15;
                    let mut hi = (q >> (8 * c + 4)) & 15;
                    if comptime!(high) {
                        let h = qh[i as usize];
                        lo |= ((h >> (4 * k + c)) & 1) << 4;
                        hi |= ((h >> (16 + 4 * k + c)) & 1) << 4;
                    }
                    let lo = f32::cast_from(lo);
                    let hi = f32::cast_from(hi);
                    #[unroll]
                    for j in 0..tile_tokens {
                        sq[(i * tile_tokens + j) as usize] +=
                            lo * xs[(8 * j + c) as usize] + hi * xs[(8 * j + 4 + c) as usize];
                    }
                }
            }
        }
        #[unroll]
        for i in 0..tile_rows {
            let blk = row_blk[i as usize] + b;
            let dv = packed_f16(w, d_base as usize, blk as usize);
            #[unroll]
            for j in 0..tile_tokens {
                let at = (i * tile_tokens + j) as usize;
                if comptime!(min) {
                    acc[at] +=
                        dv * sq[at] + packed_f16(w, m_base as usize, blk as usize) * sx[j as usize];
                } else {
                    acc[at] += dv * (sq[at] - offset * sx[j as usize]);
                }
            }
        }
        b += 1;
    }
    store_tile(&acc, y, rows, m, r0, t0, tile_rows, tile_tokens);
}

/// The tiled product for float rows (F32, or with `half` F16 or with `brain` BF16, two values to
/// a word), row-major as in GGUF. Each step takes 4 values: per token a vector, per row 4 words
/// (F32) or 2.
#[cube(launch_unchecked)]
pub fn float_tiled<N: Size>(
    w: &Array<u32>,
    x: &Array<Vector<f32, N>>,
    y: &mut Array<f32>,
    rows: u32,
    cols: u32,
    m: u32,
    #[comptime] tile_rows: u32,
    #[comptime] tile_tokens: u32,
    #[comptime] half: bool,
    #[comptime] brain: bool,
) {
    let r0 = ABSOLUTE_POS_X * tile_rows;
    let t0 = ABSOLUTE_POS_Y * tile_tokens;
    let mut acc = zeros(comptime!(tile_rows * tile_tokens));
    let row_words = if comptime!(half) { cols / 2 } else { cols };
    let row_base = tile_bases(r0, rows, row_words, tile_rows);
    let x_base = tile_bases(t0, m, cols / 4, tile_tokens);
    let mut xs = Array::<f32>::new(comptime!(4 * tile_tokens) as usize);
    let mut wv = Array::<f32>::new(4usize);
    let mut k = 0u32;
    while k < cols / 4 {
        #[unroll]
        for j in 0..tile_tokens {
            let v = x[(x_base[j as usize] + k) as usize];
            #[unroll]
            for c in 0..4u32 {
                xs[(4 * j + c) as usize] = v[c as usize];
            }
        }
        #[unroll]
        for i in 0..tile_rows {
            if comptime!(half) {
                #[unroll]
                for p in 0..2u32 {
                    let v = w[(row_base[i as usize] + 2 * k + p) as usize];
                    if comptime!(brain) {
                        wv[(2 * p) as usize] = f32::reinterpret(v << 16);
                        wv[(2 * p + 1) as usize] = f32::reinterpret(v & 0xffff_0000u32);
                    } else {
                        wv[(2 * p) as usize] = f16_bits(v & 65535);
                        wv[(2 * p + 1) as usize] = f16_bits(v >> 16);
                    }
                }
            } else {
                #[unroll]
                for c in 0..4u32 {
                    wv[c as usize] =
                        f32::reinterpret(w[(row_base[i as usize] + 4 * k + c) as usize]);
                }
            }
            #[unroll]
            for j in 0..tile_tokens {
                let mut s = 0.0f32;
                #[unroll]
                for c in 0..4u32 {
                    s += wv[c as usize] * xs[(4 * j + c) as usize];
                }
                acc[(i * tile_tokens + j) as usize] += s;
            }
        }
        k += 1;
    }
    store_tile(&acc, y, rows, m, r0, t0, tile_rows, tile_tokens);
}

/// The 6-bit scale `s` (0..16) of a Q3_K block from its 12 scale bytes as the words `s0, s1, s2`
/// (llama.cpp's packing: low 4 bits in bytes 0..8, high 2 bits in bytes 8..12), minus 32. From
/// words a unit keeps per block, where `kernels::k3_scale` loads the two it needs per call.
#[cube]
fn k3_scale(s0: u32, s1: u32, s2: u32, s: u32) -> f32 {
    let g = s / 4;
    let i = s % 4;
    let lo_word = if (g & 1) == 0 { s0 } else { s1 };
    let low = (lo_word >> (8 * i + 4 * (g / 2))) & 15;
    let high = (s2 >> (8 * i + 2 * g)) & 3;
    f32::cast_from(low | (high << 4)) - 32.0
}

/// The tiled product for Q2_K (GGUF's 84-byte blocks as 21 words: 16 scale bytes, 64 bytes of
/// 2-bit values, `d` and `dmin`) or with `three` Q3_K (repacked as 27 words: 32 bytes `hmask`, 64
/// bytes of 2-bit values, 12 scale bytes; then every block's f16 `d`, two to a word), in the
/// layouts of [`super::kernels::q23_k_matvec`].
///
/// A block's half `n` holds values `128 n + 32 g + l` (`g` 0..4, `l` 0..32) in bits `2 g` of byte
/// `32 n + l` of the 2-bit values, scale `8 n + 2 g + l / 16`; Q3_K's third bit is bit `4 n + g`
/// of `hmask` byte `l` (the value is 4 less where it is clear). As in [`q6_k_tiled`], each step
/// `k` (0..8) takes `l = 4 k..+4` for the four `g`: per token 4 vectors, per row 1 or 2 words.
#[cube(launch_unchecked)]
pub fn q23_k_tiled<N: Size>(
    w: &Array<u32>,
    x: &Array<Vector<f32, N>>,
    y: &mut Array<f32>,
    rows: u32,
    cols: u32,
    m: u32,
    #[comptime] tile_rows: u32,
    #[comptime] tile_tokens: u32,
    #[comptime] three: bool,
) {
    let block_words = if comptime!(three) { 27u32 } else { 21u32 };
    let qs_word = if comptime!(three) { 8u32 } else { 4u32 };
    let sc_word = if comptime!(three) { 24u32 } else { 0u32 };
    let sc_words = if comptime!(three) { 3u32 } else { 4u32 };
    let nb = cols / 256;
    let d_base = rows * nb * 27;
    let r0 = ABSOLUTE_POS_X * tile_rows;
    let t0 = ABSOLUTE_POS_Y * tile_tokens;
    let mut acc = zeros(comptime!(tile_rows * tile_tokens));
    let row_blk = tile_bases(r0, rows, nb, tile_rows);
    let x_base = tile_bases(t0, m, cols / 4, tile_tokens);
    let mut d = Array::<f32>::new(tile_rows as usize);
    let mut dmin = Array::<f32>::new(tile_rows as usize);
    let mut sc = Array::<u32>::new(comptime!(4 * tile_rows) as usize);
    let mut sq = Array::<f32>::new(comptime!(4 * tile_rows * tile_tokens) as usize);
    let mut sx = Array::<f32>::new(comptime!(4 * tile_tokens) as usize);
    let mut xs = Array::<f32>::new(comptime!(16 * tile_tokens) as usize);
    let mut b = 0u32;
    while b < nb {
        #[unroll]
        for i in 0..tile_rows {
            let blk = row_blk[i as usize] + b;
            let base = blk * block_words;
            if comptime!(three) {
                d[i as usize] = packed_f16(w, d_base as usize, blk as usize);
            } else {
                let hdr = w[(base + 20) as usize];
                d[i as usize] = f16_bits(hdr & 65535);
                dmin[i as usize] = f16_bits(hdr >> 16);
            }
            #[unroll]
            for s in 0..sc_words {
                sc[(4 * i + s) as usize] = w[(base + sc_word + s) as usize];
            }
        }
        for n in 0..2u32 {
            for half in 0..2u32 {
                #[unroll]
                for a in 0..comptime!(4 * tile_rows * tile_tokens) {
                    sq[a as usize] = 0.0;
                }
                #[unroll]
                for a in 0..comptime!(4 * tile_tokens) {
                    sx[a as usize] = 0.0;
                }
                for k4 in 0..4u32 {
                    let k = 4 * half + k4;
                    #[unroll]
                    for j in 0..tile_tokens {
                        #[unroll]
                        for g in 0..4u32 {
                            let v = x[(x_base[j as usize] + b * 64 + 32 * n + 8 * g + k) as usize];
                            #[unroll]
                            for c in 0..4u32 {
                                xs[(16 * j + 4 * g + c) as usize] = v[c as usize];
                                sx[(4 * j + g) as usize] += v[c as usize];
                            }
                        }
                    }
                    #[unroll]
                    for i in 0..tile_rows {
                        let base = (row_blk[i as usize] + b) * block_words;
                        let q = w[(base + qs_word + 8 * n + k) as usize];
                        let mut hm = 0u32;
                        if comptime!(three) {
                            hm = w[(base + k) as usize] >> (4 * n);
                        }
                        #[unroll]
                        for c in 0..4u32 {
                            #[unroll]
                            for g in 0..4u32 {
                                let mut v = f32::cast_from((q >> (8 * c + 2 * g)) & 3);
                                if comptime!(three) {
                                    v -= f32::cast_from(1 - ((hm >> (8 * c + g)) & 1)) * 4.0;
                                }
                                #[unroll]
                                for j in 0..tile_tokens {
                                    sq[((i * tile_tokens + j) * 4 + g) as usize] +=
                                        v * xs[(16 * j + 4 * g + c) as usize];
                                }
                            }
                        }
                    }
                }
                #[unroll]
                for i in 0..tile_rows {
                    #[unroll]
                    for j in 0..tile_tokens {
                        let mut s = 0.0f32;
                        let mut mins = 0.0f32;
                        #[unroll]
                        for g in 0..4u32 {
                            let at = ((i * tile_tokens + j) * 4 + g) as usize;
                            let idx = 8 * n + 2 * g + half;
                            if comptime!(three) {
                                let s0 = sc[(4 * i) as usize];
                                let s1 = sc[(4 * i + 1) as usize];
                                let s2 = sc[(4 * i + 2) as usize];
                                s += k3_scale(s0, s1, s2, idx) * sq[at];
                            } else {
                                // scale byte idx: low 4 bits the scale, high 4 the minimum
                                let byte = (sc[(4 * i + 2 * n + g / 2) as usize]
                                    >> (8 * ((2 * g + half) % 4)))
                                    & 255;
                                s += f32::cast_from(byte & 15) * sq[at];
                                mins += f32::cast_from(byte >> 4) * sx[(4 * j + g) as usize];
                            }
                        }
                        let at = (i * tile_tokens + j) as usize;
                        if comptime!(three) {
                            acc[at] += d[i as usize] * s;
                        } else {
                            acc[at] += d[i as usize] * s - dmin[i as usize] * mins;
                        }
                    }
                }
            }
        }
        b += 1;
    }
    store_tile(&acc, y, rows, m, r0, t0, tile_rows, tile_tokens);
}

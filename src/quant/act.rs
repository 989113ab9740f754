//! Activation formats for the quantized products: f32 activation rows converted once per call to
//! the `vec_dot_type` that llama.cpp pairs with each weight format (Q8_0, Q8_1, Q8_K, F16, BF16).
//!
//! Q8_0 and Q8_1 follow llama.cpp's x86 `quantize_row_q8_0/q8_1` (scale `127 / amax`, rounding
//! half to even), which is what llama.cpp runs on the machines chord is compared on; the scalar
//! and AVX2 versions here are bit-identical. Q8_K follows `quantize_row_q8_K_ref`.

use super::blocks::{QK, QK_K};
use super::isa::Isa;
use super::GgmlType;
use half::{bf16, f16};

/// Bytes of padding after each row of quantized activation values. With rows of a power-of-two
/// length, the same block of many rows falls into the same few L1 sets, and a product that walks
/// one block of every row (the eight-row gemm) misses L1 on each; 64 bytes spread the rows.
pub const ROW_PAD: usize = 64;

/// Rows of activations in 8-bit blocks of 32 (Q8_0, or Q8_1 when `s` is filled).
#[derive(Debug, Clone, Default)]
pub struct Q8Act {
    /// The quantized values, `k` per row, rows `stride` apart.
    pub qs: Vec<i8>,
    /// Distance between rows in `qs` (`k + ROW_PAD`).
    pub stride: usize,
    /// The per-block scales (f16 values widened to f32).
    pub d: Vec<f32>,
    /// Q8_1 only: per-block `d * sum(qs)` (f16 values widened to f32); empty for Q8_0.
    pub s: Vec<f32>,
    /// Per-block `sum(qs)`, exact (the eight-row Q4_0 product subtracts `8 · sum` once per block
    /// instead of centring every weight).
    pub isum: Vec<i32>,
    /// `d` of each whole group of eight rows transposed for [`Q8Act::eight`]: group g's scale of
    /// block b for its row t at `(g * nb + b) * 8 + t`.
    pub d8: Vec<f32>,
    /// `s` transposed as `d8` (Q8_1; empty for Q8_0).
    pub s8: Vec<f32>,
    /// AVX-512 only (else empty): the values of each whole group of eight rows with rows `2q` and
    /// `2q + 1` side by side, block by block, for the kernels that take two rows to a 512-bit
    /// vector: group g's block b of rows `2q`, `2q + 1` at `((g * nb + b) * 4 + q) * 64`.
    pub pairs: Vec<i8>,
    /// AVX-512 only (else empty), laid out as `pairs` in i32 lanes (a quarter of the index):
    /// `-128` times the sum of each four values, which turns a product with weights offset by 128
    /// (unsigned, for `vpdpbusd`) back into the product with the signed weights.
    pub corr: Vec<i32>,
}

/// Rows of activations in Q8_K super-blocks of 256.
#[derive(Debug, Clone, Default)]
pub struct Q8KAct {
    /// The quantized values, `k` per row, rows `stride` apart.
    pub qs: Vec<i8>,
    /// Distance between rows in `qs` (`k + ROW_PAD`).
    pub stride: usize,
    /// The per-super-block scales.
    pub d: Vec<f32>,
    /// Sums of each group of 16 values.
    pub bsums: Vec<i16>,
}

/// A borrowed row of [`Q8Act`].
#[derive(Debug, Clone, Copy)]
pub struct Q8Row<'a> {
    /// Values.
    pub qs: &'a [i8],
    /// Block scales.
    pub d: &'a [f32],
    /// Block sums times scale (Q8_1 only).
    pub s: &'a [f32],
    /// Exact block sums.
    pub isum: &'a [i32],
}

/// Eight consecutive rows of a [`Q8Act`] for the eight-row kernels: the values in place, the
/// scales (and Q8_1 sums) transposed so that one block's eight scales are contiguous.
#[derive(Debug, Clone)]
pub struct Q8Eight<'a> {
    /// The first row's values; the other rows follow `stride` apart.
    pub qs: &'a [i8],
    /// Distance between rows in `qs`.
    pub stride: usize,
    /// `d[8 * b + r]`: row r's scale of block b.
    pub d: &'a [f32],
    /// `s[8 * b + r]`: row r's `d * sum` of block b (Q8_1; empty for Q8_0).
    pub s: &'a [f32],
    /// The rows' values in pairs ([`Q8Act::pairs`]) from block 0 (AVX-512 only, else empty).
    pub pairs: &'a [i8],
    /// Their offset corrections ([`Q8Act::corr`]) (AVX-512 only, else empty).
    pub corr: &'a [i32],
}

/// A borrowed row of [`Q8KAct`].
#[derive(Debug, Clone, Copy)]
pub struct Q8KRow<'a> {
    /// Values.
    pub qs: &'a [i8],
    /// Super-block scales.
    pub d: &'a [f32],
    /// Group sums.
    pub bsums: &'a [i16],
}

/// Consecutive rows of a [`Q8Act`] for one quantizer call to fill (see [`Q8Act::parts`]).
#[derive(Debug)]
pub struct Q8Rows<'a> {
    /// The rows' values, `stride` apart.
    pub qs: &'a mut [i8],
    /// Distance between rows in `qs`.
    pub stride: usize,
    /// The rows' block scales.
    pub d: &'a mut [f32],
    /// The rows' `d * sum` (Q8_1; empty for Q8_0).
    pub s: &'a mut [f32],
    /// The rows' exact block sums.
    pub isum: &'a mut [i32],
}

/// Consecutive rows of a [`Q8KAct`] for one quantizer call to fill.
#[derive(Debug)]
struct Q8KRows<'a> {
    qs: &'a mut [i8],
    stride: usize,
    d: &'a mut [f32],
    bsums: &'a mut [i16],
}

impl Q8Act {
    /// The rows split into parts of `per` rows (the last may be shorter) of `nb` blocks each.
    pub fn parts(&mut self, per: usize, nb: usize) -> Vec<Q8Rows<'_>> {
        let stride = self.stride;
        // Q8_0 has no sums: every part gets an empty slice.
        let s = (self.s.chunks_mut(per * nb)).chain(std::iter::repeat_with(|| &mut [][..]));
        self.qs
            .chunks_mut(per * stride)
            .zip(self.d.chunks_mut(per * nb))
            .zip(s)
            .zip(self.isum.chunks_mut(per * nb))
            .map(|(((qs, d), s), isum)| Q8Rows {
                qs,
                stride,
                d,
                s,
                isum,
            })
            .collect()
    }

    /// Row `i` of rows of `k` values.
    pub fn row(&self, i: usize, k: usize) -> Q8Row<'_> {
        let nb = k / QK;
        Q8Row {
            qs: &self.qs[i * self.stride..i * self.stride + k],
            d: &self.d[i * nb..(i + 1) * nb],
            s: if self.s.is_empty() {
                &[]
            } else {
                &self.s[i * nb..(i + 1) * nb]
            },
            isum: &self.isum[i * nb..(i + 1) * nb],
        }
    }
}

impl Q8Act {
    /// Rows `i0..i0 + 8` of rows of `k` values, for the eight-row kernels.
    ///
    /// # Panics
    /// When `i0` is not a multiple of 8 or the rows run past the last whole group of eight.
    pub fn eight(&self, i0: usize, k: usize) -> Q8Eight<'_> {
        assert!(
            i0.is_multiple_of(8),
            "groups of eight rows start at a multiple of 8"
        );
        let nb = k / QK;
        let group = (i0 * nb)..((i0 + 8) * nb);
        let paired = (i0 * nb * QK).min(self.pairs.len());
        Q8Eight {
            pairs: &self.pairs[paired..],
            corr: &self.corr[(paired / 4).min(self.corr.len())..],
            qs: &self.qs[i0 * self.stride..],
            stride: self.stride,
            d: &self.d8[group.clone()],
            s: if self.s8.is_empty() {
                &[]
            } else {
                &self.s8[group]
            },
        }
    }

    /// Fills `d8` and `s8` from `d` and `s` (rows of `nb` blocks).
    fn transpose_eights(&mut self, nb: usize) {
        let by_eights = |v: &[f32]| -> Vec<f32> {
            let mut out = vec![0.0f32; v.len() / (8 * nb) * 8 * nb];
            for (og, vg) in out.chunks_exact_mut(8 * nb).zip(v.chunks_exact(8 * nb)) {
                for (t, row) in vg.chunks_exact(nb).enumerate() {
                    for (b, &x) in row.iter().enumerate() {
                        og[b * 8 + t] = x;
                    }
                }
            }
            out
        };
        self.d8 = by_eights(&self.d);
        self.s8 = by_eights(&self.s);
    }

    /// Fills `pairs` and `corr` for the whole groups of eight rows (rows of `nb` blocks), for the
    /// AVX-512 eight-activation-row kernels (the product calls it when it runs them).
    pub fn pair_eights(&mut self, nb: usize) {
        let groups = self.qs.len() / self.stride / 8;
        self.pairs = vec![0; groups * 8 * nb * QK];
        self.corr = vec![0; groups * 8 * nb * QK / 4];
        for g in 0..groups {
            for b in 0..nb {
                for r in 0..8 {
                    let src = (8 * g + r) * self.stride + b * QK;
                    let dst = ((g * nb + b) * 4 + r / 2) * 64 + (r % 2) * QK;
                    let y = &self.qs[src..src + QK];
                    self.pairs[dst..dst + QK].copy_from_slice(y);
                    for (c, four) in self.corr[dst / 4..dst / 4 + 8].iter_mut().zip(y.chunks(4)) {
                        *c = -128 * four.iter().map(|&v| v as i32).sum::<i32>();
                    }
                }
            }
        }
    }
}

impl Q8KAct {
    /// Row `i` of rows of `k` values.
    pub fn row(&self, i: usize, k: usize) -> Q8KRow<'_> {
        let nb = k / QK_K;
        Q8KRow {
            qs: &self.qs[i * self.stride..i * self.stride + k],
            d: &self.d[i * nb..(i + 1) * nb],
            bsums: &self.bsums[i * nb * 16..(i + 1) * nb * 16],
        }
    }
}

/// Activations converted for one weight format.
#[derive(Debug)]
pub enum Act<'a> {
    /// F32 weights take the activations as they are.
    F32(&'a [f32]),
    /// F16 weights: activations rounded to f16.
    F16(Vec<f16>),
    /// BF16 weights: activations rounded to bf16.
    BF16(Vec<bf16>),
    /// Q4_0, Q5_0, Q8_0 weights.
    Q8_0(Q8Act),
    /// Q4_1, Q5_1 weights.
    Q8_1(Q8Act),
    /// K-quant weights.
    Q8K(Q8KAct),
}

impl<'a> Act<'a> {
    /// Converts `x` (whole rows of `k` values, a multiple of the block size) for products with
    /// `ty` weights.
    pub fn quantize(isa: Isa, ty: GgmlType, x: &'a [f32], k: usize) -> Self {
        match ty {
            GgmlType::F32 => Act::F32(x),
            GgmlType::F16 => Act::F16(x.iter().map(|&v| f16::from_f32(v)).collect()),
            GgmlType::BF16 => Act::BF16(x.iter().map(|&v| bf16::from_f32(v)).collect()),
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => {
                Act::Q8_0(quantize_q8(isa, x, k, false))
            }
            GgmlType::Q4_1 | GgmlType::Q5_1 => Act::Q8_1(quantize_q8(isa, x, k, true)),
            GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => {
                Act::Q8K(quantize_q8_k(x, k))
            }
        }
    }
}

/// Runs `quantize(x rows, part)` for each part of `parts` on the current team
/// ([`crate::team::for_parts`]), the rows of `x` (of `k` values) split `per` to a part as the
/// parts are.
fn run_parts<P: Send>(
    x: &[f32],
    k: usize,
    per: usize,
    parts: &mut [P],
    quantize: impl Fn(&[f32], &mut P) + Sync,
) {
    crate::team::for_parts(parts, &|i, part| {
        quantize(&x[i * per * k..((i + 1) * per * k).min(x.len())], part)
    });
}

/// The blocks of `bs` values of `x` (rows of `k`) beside their places in `qs` (rows `stride`
/// apart), in order.
pub(super) fn blocks_mut<'a>(
    x: &'a [f32],
    qs: &'a mut [i8],
    k: usize,
    stride: usize,
    bs: usize,
) -> impl Iterator<Item = (&'a [f32], &'a mut [i8])> {
    x.chunks_exact(k)
        .zip(qs.chunks_exact_mut(stride))
        .flat_map(move |(xr, qr)| xr.chunks_exact(bs).zip(qr[..k].chunks_exact_mut(bs)))
}

/// Quantizes `x` (rows of `k` values, `k` a multiple of 32) to Q8_0 blocks, or Q8_1 blocks when
/// `with_sums`.
pub fn quantize_q8(isa: Isa, x: &[f32], k: usize, with_sums: bool) -> Q8Act {
    assert!(
        k.is_multiple_of(QK) && k > 0 && x.len().is_multiple_of(k),
        "Q8 activations need whole rows of whole blocks of 32"
    );
    let nb = x.len() / QK;
    let stride = k + ROW_PAD;
    let mut out = Q8Act {
        qs: vec![0; x.len() / k * stride],
        stride,
        d: vec![0.0; nb],
        s: if with_sums { vec![0.0; nb] } else { Vec::new() },
        isum: vec![0; nb],
        ..Default::default()
    };
    let per = crate::team::rows_per_part(x.len() / k, k);
    run_parts(x, k, per, &mut out.parts(per, k / QK), |x, part| match () {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `has_avx2` is true only after run-time detection of AVX2, FMA and F16C.
        () if isa.has_avx2() => unsafe { super::avx2::act::quantize_q8(x, k, part) },
        () => quantize_q8_scalar(x, k, part),
    });
    out.transpose_eights(k / QK);
    out
}

/// The portable Q8_0/Q8_1 quantizer of rows of `k` values (fills `out.s` when it is not empty, and
/// `out.isum`).
pub fn quantize_q8_scalar(x: &[f32], k: usize, out: &mut Q8Rows) {
    let with_sums = !out.s.is_empty();
    for (ib, (xb, qb)) in blocks_mut(x, out.qs, k, out.stride, QK).enumerate() {
        let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in qb.iter_mut().zip(xb) {
            *q = (v * id).round_ties_even() as i8;
            sum += *q as i32;
        }
        out.d[ib] = f16::from_f32(d).to_f32();
        out.isum[ib] = sum;
        if with_sums {
            out.s[ib] = f16::from_f32(d * sum as f32).to_f32();
        }
    }
}

/// `x` rounded to the nearest integer, ties to even, for |x| < 2^22: ggml's `nearest_int` (a
/// float-addition trick that is much cheaper than `rintf` without SSE4.1).
#[inline]
fn nearest_int(x: f32) -> i32 {
    let v = x + 12582912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// Quantizes `x` (rows of `k` values, `k` a multiple of 256) to Q8_K super-blocks
/// (`quantize_row_q8_K_ref`).
pub fn quantize_q8_k(x: &[f32], k: usize) -> Q8KAct {
    assert!(
        k.is_multiple_of(QK_K) && k > 0 && x.len().is_multiple_of(k),
        "Q8_K activations need whole rows of whole blocks of 256"
    );
    let nb = x.len() / QK_K;
    let stride = k + ROW_PAD;
    let mut out = Q8KAct {
        qs: vec![0; x.len() / k * stride],
        stride,
        d: vec![0.0; nb],
        bsums: vec![0; nb * 16],
    };
    let (per, nbr) = (crate::team::rows_per_part(x.len() / k, k), k / QK_K);
    let mut parts: Vec<Q8KRows> = out
        .qs
        .chunks_mut(per * stride)
        .zip(out.d.chunks_mut(per * nbr))
        .zip(out.bsums.chunks_mut(per * nbr * 16))
        .map(|((qs, d), bsums)| Q8KRows {
            qs,
            stride,
            d,
            bsums,
        })
        .collect();
    run_parts(x, k, per, &mut parts, |x, part| {
        quantize_q8_k_rows(x, k, part)
    });
    out
}

/// [`quantize_q8_k`] of the rows of `x` into `out`.
fn quantize_q8_k_rows(x: &[f32], k: usize, out: &mut Q8KRows) {
    for (ib, (xb, qb)) in blocks_mut(x, out.qs, k, out.stride, QK_K).enumerate() {
        let mut max = 0.0f32;
        let mut amax = 0.0f32;
        for &v in xb {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            continue;
        }
        let iscale = -127.0 / max;
        for (q, &v) in qb.iter_mut().zip(xb) {
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        for (j, g) in qb.chunks_exact(16).enumerate() {
            out.bsums[ib * 16 + j] = g.iter().map(|&q| q as i16).sum();
        }
        out.d[ib] = 1.0 / iscale;
    }
}

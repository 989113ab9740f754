//! Kernel tests: every AVX2 kernel against its scalar reference, the scalar kernels against an f64
//! product of the dequantized operands, and the threaded product against single rows.

use super::act::{quantize_q8, quantize_q8_k, Act, Q8Act};
use super::blocks::{QK, QK_K};
use super::dequant::dequantize_row;
use super::isa::Isa;
use super::kernel::Kernel;
use super::out::Out;
use super::{matmul_with, GgmlType};
use half::{bf16, f16};

/// A small deterministic generator (xorshift64*).
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [-1, 1).
    pub(super) fn f32(&mut self) -> f32 {
        (self.u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u64() as u8).collect()
    }
    pub(super) fn floats(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.f32() * scale).collect()
    }
}

/// Offsets of the f16 scale fields of each block format.
fn f16_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::Q6_K => &[208],
        _ => &[],
    }
}

/// `n` random rows of `k` values of `ty` with finite, model-like scales.
pub(super) fn random_weights(rng: &mut Rng, ty: GgmlType, n: usize, k: usize) -> Vec<u8> {
    match ty {
        GgmlType::F32 => rng
            .floats(n * k, 1.0)
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        GgmlType::F16 => rng
            .floats(n * k, 1.0)
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_le_bytes())
            .collect(),
        GgmlType::BF16 => rng
            .floats(n * k, 1.0)
            .iter()
            .flat_map(|v| bf16::from_f32(*v).to_le_bytes())
            .collect(),
        _ => {
            let mut w = rng.bytes(n * ty.row_bytes(k).unwrap());
            for blk in w.chunks_exact_mut(ty.type_size()) {
                for &off in f16_fields(ty) {
                    let v = f16::from_f32(rng.f32() * 0.05);
                    blk[off..off + 2].copy_from_slice(&v.to_le_bytes());
                }
            }
            w
        }
    }
}

/// The activations as the kernels see them, widened back to f32.
fn act_values(act: &Act, len: usize) -> Vec<f32> {
    match act {
        Act::F32(a) => a.to_vec(),
        Act::F16(a) => a.iter().map(|v| v.to_f32()).collect(),
        Act::BF16(a) => a.iter().map(|v| v.to_f32()).collect(),
        Act::Q8_0(a) | Act::Q8_1(a) => (0..len).map(|t| a.qs[t] as f32 * a.d[t / QK]).collect(),
        Act::Q8K(a) => (0..len).map(|t| a.qs[t] as f32 * a.d[t / QK_K]).collect(),
    }
}

/// Sizes (row lengths) to test for a format.
fn sizes(ty: GgmlType) -> Vec<usize> {
    let b = ty.block_size().max(32);
    [1, 2, 3, 5, 9, 18].iter().map(|m| m * b).collect()
}

/// Runs one dot product through a kernel.
fn dot_one(kern: Kernel, w: &[u8], act: &Act, k: usize) -> f32 {
    let mut out = [0.0f32];
    kern.tile(w, w.len(), 0..1, act, k, Out::init(&mut out, 1, 1, 1));
    out[0]
}

#[test]
fn scalar_kernels_match_dequantized_product() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for ty in GgmlType::ALL {
        for k in sizes(ty) {
            let x = rng.floats(k, 2.0);
            let w = random_weights(&mut rng, ty, 1, k);
            let act = Act::quantize(Isa::scalar(), ty, &x, k);
            let got = dot_one(Kernel::select(Isa::scalar(), ty), &w, &act, k);
            let mut wf = vec![0.0; k];
            dequantize_row(ty, &w, &mut wf);
            let a = act_values(&act, k);
            let exact: f64 = wf.iter().zip(&a).map(|(w, a)| *w as f64 * *a as f64).sum();
            let mag: f64 = wf
                .iter()
                .zip(&a)
                .map(|(w, a)| (*w as f64 * *a as f64).abs())
                .sum();
            // Q8_1 carries its block sums as f16, so allow that rounding.
            let tol = 1e-3 * mag + 1e-6;
            assert!(
                (got as f64 - exact).abs() <= tol,
                "{} k={k}: scalar {got} vs dequantized {exact} (tolerance {tol})",
                ty.name()
            );
        }
    }
}

#[test]
fn avx2_kernels_match_scalar() {
    let Some(avx2) = Isa::avx2() else {
        eprintln!("no AVX2 on this CPU: only the scalar path exists here");
        return;
    };
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    for ty in GgmlType::ALL {
        for k in sizes(ty) {
            for _ in 0..4 {
                let x = rng.floats(k, 3.0);
                let w = random_weights(&mut rng, ty, 1, k);
                let act = Act::quantize(Isa::scalar(), ty, &x, k);
                let s = dot_one(Kernel::select(Isa::scalar(), ty), &w, &act, k);
                let v = dot_one(Kernel::select(avx2, ty), &w, &act, k);
                let mut wf = vec![0.0; k];
                dequantize_row(ty, &w, &mut wf);
                let a = act_values(&act, k);
                let mag: f64 = wf
                    .iter()
                    .zip(&a)
                    .map(|(w, a)| (*w as f64 * *a as f64).abs())
                    .sum();
                // The integer block sums are exact in both; only the f32 accumulation order differs.
                let tol = 2e-6 * mag + 1e-7;
                assert!(
                    ((s - v) as f64).abs() <= tol,
                    "{} k={k}: scalar {s} vs avx2 {v} (tolerance {tol})",
                    ty.name()
                );
            }
        }
    }
}

#[test]
fn q8_quantizers_avx2_bit_exact() {
    let Some(avx2) = Isa::avx2() else {
        eprintln!("no AVX2 on this CPU: only the scalar path exists here");
        return;
    };
    let mut rng = Rng(42);
    for blocks in [1usize, 2, 3, 18, 64] {
        for scale in [1e-3f32, 1.0, 100.0] {
            let mut x = rng.floats(blocks * QK, scale);
            // A zero block, a block of ties (x * 127 / amax = n + 0.5) and a tiny block.
            x[..QK].fill(0.0);
            if blocks > 1 {
                for (t, v) in x[QK..2 * QK].iter_mut().enumerate() {
                    *v = if t == 0 {
                        127.0
                    } else {
                        (t as f32 % 20.0) + 0.5
                    };
                }
            }
            for with_sums in [false, true] {
                let a = quantize_q8(avx2, &x, x.len(), with_sums);
                let mut s = Q8Act {
                    qs: vec![0; a.qs.len()],
                    stride: a.stride,
                    d: vec![0.0; blocks],
                    s: if with_sums {
                        vec![0.0; blocks]
                    } else {
                        Vec::new()
                    },
                    isum: vec![0; blocks],
                    ..Default::default()
                };
                super::act::quantize_q8_scalar(&x, x.len(), &mut s.parts(1, blocks)[0]);
                assert_eq!(a.qs, s.qs, "qs, {blocks} blocks, sums {with_sums}");
                assert_eq!(a.d, s.d, "d, {blocks} blocks");
                assert_eq!(a.isum, s.isum, "isum, {blocks} blocks");
                assert_eq!(a.s, s.s, "s, {blocks} blocks");
            }
        }
    }
}

#[test]
fn q8_quantizers_round_trip() {
    let mut rng = Rng(7);
    let x = rng.floats(4 * QK_K, 5.0);
    let a = quantize_q8(Isa::scalar(), &x, x.len(), true);
    for (t, v) in x.iter().enumerate() {
        let d = a.d[t / QK];
        // Half a step, plus the f16 rounding of the scale (127 steps of 2^-11 relative).
        assert!((a.qs[t] as f32 * d - v).abs() <= d * 0.57 + 1e-6);
    }
    for (b, s) in a.s.iter().enumerate() {
        let sum: i32 = a.qs[b * QK..(b + 1) * QK].iter().map(|&q| q as i32).sum();
        assert!((s - a.d[b] * sum as f32).abs() <= 1e-2 * s.abs().max(a.d[b]));
    }
    let k = quantize_q8_k(&x, x.len());
    for (t, v) in x.iter().enumerate() {
        let d = k.d[t / QK_K];
        assert!((k.qs[t] as f32 * d - v).abs() <= d.abs() * 0.51);
    }
    for (g, s) in k.bsums.iter().enumerate() {
        let sum: i32 = k.qs[g * 16..(g + 1) * 16].iter().map(|&q| q as i32).sum();
        assert_eq!(*s as i32, sum);
    }
    let zero = quantize_q8_k(&[0.0; QK_K], QK_K);
    assert!(zero.qs.iter().all(|&q| q == 0) && zero.d[0] == 0.0);
}

/// Quantizing many rows at once (split into parts over two threads) gives each row exactly what
/// quantizing it alone gives.
#[test]
fn q8_quantizers_split_rows_like_single_rows() {
    let pool = two_threads();
    let mut rng = Rng(0x51);
    let (rows, k) = (41usize, 2048usize);
    let x = rng.floats(rows * k, 3.0);
    pool.install(|| {
        for isa in [Isa::scalar(), Isa::detected()] {
            for sums in [false, true] {
                let all = quantize_q8(isa, &x, k, sums);
                for r in 0..rows {
                    let one = quantize_q8(isa, &x[r * k..(r + 1) * k], k, sums);
                    let (a, o) = (all.row(r, k), one.row(0, k));
                    assert_eq!(
                        (a.qs, a.d, a.s, a.isum),
                        (o.qs, o.d, o.s, o.isum),
                        "row {r}"
                    );
                }
            }
        }
        let all = quantize_q8_k(&x, k);
        for r in 0..rows {
            let one = quantize_q8_k(&x[r * k..(r + 1) * k], k);
            let (a, o) = (all.row(r, k), one.row(0, k));
            assert_eq!((a.qs, a.d, a.bsums), (o.qs, o.d, o.bsums), "Q8_K row {r}");
        }
    });
}

/// Whether a batch row of a product with `n` weight rows may differ in its last bits from the
/// same row alone: on AVX2, K-quant batches follow llama.cpp's gemm (groups of four rows) and
/// tiled (eight rows or more) orders, repacked Q4_0 (`n` a multiple of 8) its gemm, and F16/BF16
/// (`n` a multiple of 4) tinyBLAS.
fn batch_order_differs(ty: GgmlType, n: usize) -> bool {
    Isa::detected().has_avx2()
        && match ty {
            GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => {
                true
            }
            GgmlType::Q4_0 => n.is_multiple_of(8),
            GgmlType::F16 | GgmlType::BF16 => n.is_multiple_of(4),
            _ => false,
        }
}

/// A rayon pool of two threads (no team is current in tests: products fall back to it).
fn two_threads() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap()
}

#[test]
fn matmul_rows_match_single_rows_and_scalar() {
    let pool = two_threads();
    let mut rng = Rng(99);
    pool.install(|| {
        for ty in GgmlType::ALL {
            let k = 2 * ty.block_size().max(256);
            // Outputs start as NaN: an element the product does not write fails the comparisons
            // (tasks write their blocks in place, into memory that need not be initialized).
            for (n, m) in [(1usize, 1usize), (37, 1), (70, 3), (130, 9), (264, 17)] {
                let w = random_weights(&mut rng, ty, n, k);
                let x = rng.floats(m * k, 1.0);
                let mut y = vec![f32::NAN; m * n];
                matmul_with(Isa::detected(), ty, &w, n, k, &x, m, &mut y).unwrap();
                let mut ys = vec![f32::NAN; m * n];
                matmul_with(Isa::scalar(), ty, &w, n, k, &x, m, &mut ys).unwrap();
                let mut wf = vec![0.0; n * k];
                dequantize_row(ty, &w, &mut wf);
                // The size of the terms of output (i, j): the bound for differences of order.
                let mag = |i: usize, j: usize| -> f32 {
                    (0..k).map(|t| (x[i * k + t] * wf[j * k + t]).abs()).sum()
                };
                for i in 0..m {
                    let mut row = vec![f32::NAN; n];
                    matmul_with(
                        Isa::detected(),
                        ty,
                        &w,
                        n,
                        k,
                        &x[i * k..(i + 1) * k],
                        1,
                        &mut row,
                    )
                    .unwrap();
                    if batch_order_differs(ty, n) {
                        for j in 0..n {
                            let (a, b) = (y[i * n + j], row[j]);
                            assert!(
                                (a - b).abs() <= 1e-5 * mag(i, j) + 1e-6,
                                "{} row {i} of {m}, column {j}: {a} vs {b}",
                                ty.name()
                            );
                        }
                    } else {
                        assert_eq!(
                            &y[i * n..(i + 1) * n],
                            &row[..],
                            "{} row {i} of {m}",
                            ty.name()
                        );
                    }
                }
                for i in 0..m {
                    for j in 0..n {
                        let (a, b) = (y[i * n + j], ys[i * n + j]);
                        assert!(
                            (a - b).abs() <= 1e-5 * mag(i, j) + 1e-6,
                            "{} ({i},{j}): {a} vs {b}",
                            ty.name()
                        );
                    }
                }
            }
        }
    });
}

#[test]
fn matmul_rejects_bad_shapes() {
    let w = vec![0u8; 2 * 20];
    let x = vec![0.0; 32];
    let mut y = vec![0.0; 2];
    let (isa, q) = (Isa::detected(), GgmlType::Q4_1);
    assert!(matmul_with(isa, q, &w, 2, 32, &x, 1, &mut y).is_ok());
    assert!(matmul_with(isa, q, &w, 3, 32, &x, 1, &mut y).is_err());
    assert!(matmul_with(isa, q, &w, 2, 33, &x, 1, &mut y).is_err());
    assert!(matmul_with(isa, q, &w, 2, 32, &x[..31], 1, &mut y).is_err());
    assert!(matmul_with(isa, q, &w, 2, 32, &x, 1, &mut y[..1]).is_err());
    assert!(super::dequantize(GgmlType::Q4_1, &w[..39], &mut [0.0; 64]).is_err());
    assert!(super::dequantize(GgmlType::Q4_1, &w, &mut [0.0; 63]).is_err());
}

/// The AVX-512 path gives the AVX2 path's results bit for bit (its kernels keep the AVX2 float
/// steps and only form the exact integer sums with VNNI), for every format and the product shapes
/// that take each kernel: decode (one activation row), fewer than four, four and eight activation
/// rows and more with tails; weight rows in groups of sixteen, eight and none, with tails; rows of
/// one block and of many. Prints that it did not run where the CPU lacks AVX-512 VNNI.
#[test]
fn avx512_products_equal_avx2_bit_for_bit() {
    let (Some(avx512), Some(avx2)) = (Isa::avx512(), Isa::avx2()) else {
        println!(
            "not run: this CPU lacks AVX-512 F/BW/VL/VNNI (it runs {})",
            Isa::detected().name()
        );
        return;
    };
    let pool = two_threads();
    let mut rng = Rng(0x0512);
    pool.install(|| {
        for ty in GgmlType::ALL {
            for blocks in [1usize, 3, 9] {
                let k = blocks * ty.block_size();
                for (n, m) in [
                    (8usize, 1usize),
                    (37, 1),
                    (64, 1),
                    (16, 3),
                    (24, 4),
                    (40, 9),
                    (48, 12),
                    (136, 17),
                    (264, 33),
                ] {
                    let w = random_weights(&mut rng, ty, n, k);
                    let x = rng.floats(m * k, 2.0);
                    let (mut a, mut b) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
                    matmul_with(avx512, ty, &w, n, k, &x, m, &mut a).unwrap();
                    matmul_with(avx2, ty, &w, n, k, &x, m, &mut b).unwrap();
                    for (j, (p, q)) in a.iter().zip(&b).enumerate() {
                        assert_eq!(
                            p.to_bits(),
                            q.to_bits(),
                            "{} k={k} n={n} m={m}: output {j}: {p} vs {q}",
                            ty.name()
                        );
                    }
                }
            }
        }
    });
}

/// Packed Q4_K weights unpack to the GGUF bytes they came from, row by row, and give every path
/// with kernels for them ([`super::preferred_layout`]) the products of the GGUF layout bit for
/// bit, for decode (one activation row), fewer than four, four and more with tails, weight rows
/// in groups of sixteen and eight. A path without kernels for the layout refuses it.
#[test]
fn packed_products_equal_gguf_layout_bit_for_bit() {
    use super::pack::{pack, pack_in_place, unpack_row, Layout};
    use super::{matmul::product, preferred_layout};
    let pool = two_threads();
    let mut rng = Rng(0x9ac4);
    let ty = GgmlType::Q4_K;
    pool.install(|| {
        for blocks in [1usize, 3, 8] {
            let k = blocks * QK_K;
            let rb = ty.row_bytes(k).unwrap();
            for (n, m) in [
                (8usize, 1usize),
                (24, 1),
                (16, 2),
                (40, 4),
                (48, 5),
                (136, 9),
                (264, 33),
            ] {
                let w = random_weights(&mut rng, ty, n, k);
                let mut p = vec![0u8; w.len()];
                assert!(pack(ty, Layout::Q4KRows8, &w, n, k, &mut p));
                assert_ne!(p, w);
                let mut q = w.clone();
                assert!(pack_in_place(ty, Layout::Q4KRows8, &mut q, n, k));
                assert_eq!(q, p, "packed in place, {n} rows");
                let mut row = vec![0u8; rb];
                for r in 0..n {
                    unpack_row(ty, Layout::Q4KRows8, &p, k, r, &mut row);
                    assert_eq!(row, w[r * rb..(r + 1) * rb], "row {r} of {n}, k={k}");
                }
                let x = rng.floats(m * k, 2.0);
                for isa in [Isa::avx2(), Isa::avx512()].into_iter().flatten() {
                    assert_eq!(preferred_layout(isa, ty, n), Layout::Q4KRows8);
                    let mut a = vec![f32::NAN; m * n];
                    let mut b = vec![f32::NAN; m * n];
                    matmul_with(isa, ty, &w, n, k, &x, m, &mut a).unwrap();
                    // SAFETY (both): f32 and MaybeUninit<f32> have one layout; `product` writes
                    // only initialized values.
                    let out = unsafe { &mut *(b.as_mut_slice() as *mut [f32] as *mut _) };
                    product(isa, ty, Layout::Q4KRows8, &p, n, k, &x, m, out).unwrap();
                    for (j, (u, v)) in a.iter().zip(&b).enumerate() {
                        assert_eq!(
                            u.to_bits(),
                            v.to_bits(),
                            "{} k={k} n={n} m={m}: output {j}: {u} vs {v}",
                            isa.name()
                        );
                    }
                }
                let mut y = vec![0.0f32; m * n];
                // SAFETY: as above.
                let out = unsafe { &mut *(y.as_mut_slice() as *mut [f32] as *mut _) };
                let e = product(Isa::scalar(), ty, Layout::Q4KRows8, &p, n, k, &x, m, out);
                assert!(e.unwrap_err().to_string().contains("no product"));
            }
        }
        assert_eq!(preferred_layout(Isa::scalar(), ty, 64), Layout::Gguf);
        let w = random_weights(&mut rng, ty, 12, QK_K);
        let mut p = vec![0u8; w.len()];
        assert!(!pack(ty, Layout::Q4KRows8, &w, 12, QK_K, &mut p), "12 rows");
        assert!(!pack(
            GgmlType::Q4_0,
            Layout::Q4KRows8,
            &w,
            8,
            144 * 8 / 18 * 32 / 8,
            &mut p
        ));
    });
}

/// Q6_K products of fewer than eight activation rows (a few sessions decoding together) read
/// each weight row once for four of them, and give every row what it gets alone, bit for bit.
#[test]
fn q6_k_few_rows_equal_rows_alone() {
    let pool = two_threads();
    let mut rng = Rng(0x6b);
    let ty = GgmlType::Q6_K;
    pool.install(|| {
        for isa in [Isa::scalar(), Isa::detected()] {
            for (n, m, blocks) in [(24usize, 4usize, 1usize), (40, 5, 3), (16, 7, 8), (8, 2, 2)] {
                let k = blocks * QK_K;
                let w = random_weights(&mut rng, ty, n, k);
                let x = rng.floats(m * k, 2.0);
                let mut y = vec![f32::NAN; m * n];
                matmul_with(isa, ty, &w, n, k, &x, m, &mut y).unwrap();
                for i in 0..m {
                    let mut row = vec![f32::NAN; n];
                    matmul_with(isa, ty, &w, n, k, &x[i * k..(i + 1) * k], 1, &mut row).unwrap();
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&y[i * n..(i + 1) * n]),
                        bits(&row),
                        "{} m={m} row {i}",
                        isa.name()
                    );
                }
            }
        }
    });
}

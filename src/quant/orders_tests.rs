//! The AVX2 kernels in llama.cpp's repacked, tiled and tinyBLAS orders (`avx2::orders`) against
//! scalar models of the same arithmetic, bit for bit, on random blocks; and the products that use
//! them against the portable kernels within rounding.

use super::act::{quantize_q8, quantize_q8_k, Q8KRow, Q8Row};
use super::blocks::{f16_at, QK, QK_K};
use super::dot::{k4_parts, q6_k_isum};
use super::isa::Isa;
use super::tests::{random_weights, Rng};
use super::{matmul_with, GgmlType};
use half::{bf16, f16};

/// Scalar model of `ggml_gemv/gemm_q4_0_8x8_q8_0`: per block, `fma(isum, d_w·d_a, acc)`.
fn model_q4_0(w: &[u8], a: Q8Row) -> f32 {
    let mut acc = 0.0f32;
    for (i, b) in w.chunks_exact(18).enumerate() {
        let isum: i32 = (0..QK)
            .map(|t| {
                let nib = if t < 16 {
                    b[2 + t] & 0xF
                } else {
                    b[2 + t - 16] >> 4
                };
                (nib as i32 - 8) * a.qs[i * QK + t] as i32
            })
            .sum();
        acc = (isum as f32).mul_add(f16_at(b, 0) * a.d[i], acc);
    }
    acc
}

/// The Q4_K or Q5_K integer parts of super-block `ib`.
fn parts(ty: GgmlType, b: &[u8], a: &Q8KRow, ib: usize) -> ([i32; 4], [i32; 4]) {
    let q8 = &a.qs[ib * QK_K..(ib + 1) * QK_K];
    let bs = &a.bsums[ib * 16..ib * 16 + 16];
    match ty {
        GgmlType::Q4_K => k4_parts(b, 4, 16, None, q8, bs),
        _ => k4_parts(b, 4, 48, Some(16), q8, bs),
    }
}

/// Scalar model of the repacked Q4_K products: fused multiply-adds per super-block (gemv) or per
/// 64 values (gemm), scale and min sums apart, subtracted at the end.
fn model_q4_k_r8(w: &[u8], a: Q8KRow, gemm: bool) -> f32 {
    let (mut acc, mut acc_m) = (0.0f32, 0.0f32);
    for (ib, b) in w.chunks_exact(144).enumerate() {
        let (sums, mins) = parts(GgmlType::Q4_K, b, &a, ib);
        let (ds, dm) = (f16_at(b, 0) * a.d[ib], f16_at(b, 2) * a.d[ib]);
        if gemm {
            for j in 0..4 {
                acc = (sums[j] as f32).mul_add(ds, acc);
                acc_m = (mins[j] as f32).mul_add(dm, acc_m);
            }
        } else {
            acc = (sums.iter().sum::<i32>() as f32).mul_add(ds, acc);
            acc_m = (mins.iter().sum::<i32>() as f32).mul_add(dm, acc_m);
        }
    }
    acc - acc_m
}

/// Scalar model of the tiled K-quant product: per super-block `fma(d_w·s1 − dmin_w·s2, d_a, acc)`.
fn model_tiled(ty: GgmlType, w: &[u8], a: Q8KRow) -> f32 {
    let mut acc = 0.0f32;
    for (ib, b) in w.chunks_exact(ty.type_size()).enumerate() {
        let res = if ty == GgmlType::Q6_K {
            f16_at(b, 208) * q6_k_isum(b, &a.qs[ib * QK_K..(ib + 1) * QK_K]) as f32
        } else {
            let (sums, mins) = parts(ty, b, &a, ib);
            let r = f16_at(b, 0) * sums.iter().sum::<i32>() as f32;
            (-f16_at(b, 2)).mul_add(mins.iter().sum::<i32>() as f32, r)
        };
        acc = res.mul_add(a.d[ib], acc);
    }
    acc
}

/// Scalar model of tinyBLAS on AVX2: eight lanes of fused multiply-adds, then `hsum`.
fn model_tinyblas(w: &[f32], a: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    for (t, (x, y)) in w.iter().zip(a).enumerate() {
        lanes[t % 8] = x.mul_add(*y, lanes[t % 8]);
    }
    let h: [f32; 4] = std::array::from_fn(|i| lanes[i + 4] + lanes[i]);
    (h[0] + h[2]) + (h[1] + h[3])
}

#[test]
#[cfg(target_arch = "x86_64")]
fn avx2_orders_match_scalar_models() {
    use super::avx2::orders as o;
    if Isa::avx2().is_none() {
        eprintln!("no AVX2 on this CPU: the x86 orders are not used here");
        return;
    }
    let mut rng = Rng(0x005e_ed0f_0de5);
    for k in [256usize, 576 / 32 * 32, 1536] {
        for _ in 0..8 {
            let x: Vec<f32> = (0..4 * k).map(|_| rng.f32() * 4.0).collect();
            let w = random_weights(&mut rng, GgmlType::Q4_0, 1, k);
            let q = quantize_q8(Isa::scalar(), &x, k, false);
            let rows: [Q8Row; 4] = std::array::from_fn(|r| q.row(r, k));
            // SAFETY: AVX2, FMA and F16C were detected above.
            let (one, four) = unsafe { (o::dot_q4_0_r8(&w, rows[0]), o::dot_q4_0_r8_x4(&w, rows)) };
            assert_eq!(
                one.to_bits(),
                model_q4_0(&w, rows[0]).to_bits(),
                "Q4_0 k={k}"
            );
            for r in 0..4 {
                assert_eq!(
                    four[r].to_bits(),
                    model_q4_0(&w, rows[r]).to_bits(),
                    "Q4_0 x4 k={k}"
                );
            }
            if k % QK_K != 0 {
                continue;
            }
            let qk = quantize_q8_k(&x, k);
            let rows: [Q8KRow; 4] = std::array::from_fn(|r| qk.row(r, k));
            let w4 = random_weights(&mut rng, GgmlType::Q4_K, 1, k);
            // SAFETY: as above.
            let (one, four) =
                unsafe { (o::dot_q4_k_r8(&w4, rows[0]), o::dot_q4_k_r8_x4(&w4, rows)) };
            assert_eq!(
                one.to_bits(),
                model_q4_k_r8(&w4, rows[0], false).to_bits(),
                "Q4_K gemv"
            );
            for r in 0..4 {
                let want = model_q4_k_r8(&w4, rows[r], true);
                assert_eq!(four[r].to_bits(), want.to_bits(), "Q4_K gemm k={k}");
            }
            for (ty, f) in [
                (
                    GgmlType::Q4_K,
                    o::dot_q4_k_tiled as unsafe fn(&[u8], Q8KRow) -> f32,
                ),
                (GgmlType::Q5_K, o::dot_q5_k_tiled),
                (GgmlType::Q6_K, o::dot_q6_k_tiled),
            ] {
                let w = random_weights(&mut rng, ty, 1, k);
                // SAFETY: as above.
                let got = unsafe { f(&w, rows[1]) };
                let want = model_tiled(ty, &w, rows[1]);
                assert_eq!(got.to_bits(), want.to_bits(), "{} tiled k={k}", ty.name());
            }
        }
    }
    for k in [8usize, 64, 576] {
        let wf = rng.floats(k, 1.0);
        let af = rng.floats(k, 3.0);
        let (wh, ah): (Vec<f16>, Vec<f16>) = (
            wf.iter().map(|&v| f16::from_f32(v)).collect(),
            af.iter().map(|&v| f16::from_f32(v)).collect(),
        );
        let wb: Vec<u8> = wh.iter().flat_map(|v| v.to_le_bytes()).collect();
        let want = model_tinyblas(
            &wh.iter().map(|v| v.to_f32()).collect::<Vec<_>>(),
            &ah.iter().map(|v| v.to_f32()).collect::<Vec<_>>(),
        );
        // SAFETY: as above.
        let got = unsafe { o::dot_f16_tinyblas(&wb, &ah) };
        assert_eq!(got.to_bits(), want.to_bits(), "F16 tinyBLAS k={k}");
        let (wh, ah): (Vec<bf16>, Vec<bf16>) = (
            wf.iter().map(|&v| bf16::from_f32(v)).collect(),
            af.iter().map(|&v| bf16::from_f32(v)).collect(),
        );
        let wb: Vec<u8> = wh.iter().flat_map(|v| v.to_le_bytes()).collect();
        let want = model_tinyblas(
            &wh.iter().map(|v| v.to_f32()).collect::<Vec<_>>(),
            &ah.iter().map(|v| v.to_f32()).collect::<Vec<_>>(),
        );
        // SAFETY: as above.
        let got = unsafe { o::dot_bf16_tinyblas(&wb, &ah) };
        assert_eq!(got.to_bits(), want.to_bits(), "BF16 tinyBLAS k={k}");
    }
}

/// Products that take the x86 orders (repacked: rows a multiple of 8; tiled: 8+ activation rows;
/// tinyBLAS: 2+ rows) agree with the portable kernels within f32 rounding.
#[test]
fn ordered_products_match_portable_within_rounding() {
    let mut rng = Rng(4242);
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::F16,
        GgmlType::BF16,
    ] {
        let k = 512;
        for (n, m) in [(64usize, 1usize), (64, 5), (136, 9), (36, 8)] {
            let w = random_weights(&mut rng, ty, n, k);
            let x = rng.floats(m * k, 1.0);
            let (mut y, mut ys) = (vec![0.0; m * n], vec![0.0; m * n]);
            matmul_with(Isa::detected(), ty, &w, n, k, &x, m, &mut y).unwrap();
            matmul_with(Isa::scalar(), ty, &w, n, k, &x, m, &mut ys).unwrap();
            for (i, (a, b)) in y.iter().zip(&ys).enumerate() {
                // The integer sums are exact; only the float steps' order differs.
                assert!(
                    (a - b).abs() <= 2e-5 * a.abs().max(b.abs()) + 1e-4,
                    "{} n={n} m={m} [{i}]: {a} vs {b}",
                    ty.name()
                );
            }
        }
    }
}

//! Quick timings of the quantized products (ignored by default). Run with
//! `cargo test --release --test quant_bench -- --ignored --nocapture --test-threads=1`.

use chord::quant::{matmul, matmul_with, GgmlType, Isa};
use std::time::Instant;

fn random_weights(ty: GgmlType, n: usize, k: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    let mut w: Vec<u8> = (0..n * ty.row_bytes(k).unwrap())
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect();
    // Finite f16/f32 values everywhere: rewrite every 2-byte field of the float formats and the
    // scale fields of the block formats with small numbers.
    let small = half::f16::from_f32(0.01).to_le_bytes();
    match ty {
        GgmlType::F32 => w
            .chunks_exact_mut(4)
            .for_each(|c| c.copy_from_slice(&0.01f32.to_le_bytes())),
        GgmlType::F16 => w
            .chunks_exact_mut(2)
            .for_each(|c| c.copy_from_slice(&small)),
        GgmlType::BF16 => w.chunks_exact_mut(2).for_each(|c| c[1] &= 0x3f),
        _ => {
            let fields: &[usize] = match ty {
                GgmlType::Q2_K => &[80, 82],
                GgmlType::Q3_K => &[108],
                GgmlType::Q6_K => &[208],
                GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
                _ => &[0, 2],
            };
            for b in w.chunks_exact_mut(ty.type_size()) {
                for &o in fields {
                    b[o..o + 2].copy_from_slice(&small);
                }
            }
        }
    }
    w
}

/// Minimum and median time of one `matmul` in microseconds.
fn time(isa: Isa, ty: GgmlType, n: usize, k: usize, m: usize) -> (f64, f64) {
    let w = random_weights(ty, n, k, 7);
    let x: Vec<f32> = (0..m * k)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.02)
        .collect();
    let mut y = vec![0.0; m * n];
    let iters = ((2e8 / (n * k * m) as f64) as usize).clamp(5, 2000);
    for _ in 0..3 {
        matmul_with(isa, ty, &w, n, k, &x, m, &mut y).unwrap();
    }
    // Each call timed alone; the machine is shared, so report the minimum (least disturbed) and
    // the median.
    let mut t: Vec<f64> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            matmul_with(isa, ty, &w, n, k, &x, m, &mut y).unwrap();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[0], t[t.len() / 2])
}

#[test]
#[ignore]
fn bench_matmul() {
    let threads = std::env::var("CHORD_BENCH_THREADS").map_or(2, |v| v.parse().unwrap());
    let only = std::env::var("CHORD_BENCH_ONLY").ok();
    println!("{threads} threads");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let best = Isa::selected().expect("CHORD_ISA");
        let cases: &[(GgmlType, usize, usize, usize)] = &[
            (GgmlType::Q4_1, 1536, 576, 1),
            (GgmlType::Q4_1, 576, 1536, 1),
            (GgmlType::Q8_0, 49152, 576, 1),
            (GgmlType::Q8_0, 1536, 576, 1),
            (GgmlType::Q4_0, 1536, 576, 1),
            (GgmlType::Q5_0, 1536, 576, 1),
            (GgmlType::Q5_1, 1536, 576, 1),
            (GgmlType::Q4_K, 576, 1536, 1),
            (GgmlType::Q6_K, 576, 1536, 1),
            (GgmlType::Q5_K, 576, 1536, 1),
            (GgmlType::Q3_K, 576, 1536, 1),
            (GgmlType::Q2_K, 576, 1536, 1),
            (GgmlType::F16, 1536, 576, 1),
            (GgmlType::BF16, 1536, 576, 1),
            (GgmlType::F32, 1536, 576, 1),
            (GgmlType::Q4_1, 1536, 576, 128),
            (GgmlType::Q8_0, 1536, 576, 128),
            (GgmlType::Q4_K, 576, 1536, 128),
            (GgmlType::Q4_0, 1536, 576, 128),
            (GgmlType::Q5_K, 576, 1536, 128),
            (GgmlType::Q6_K, 576, 1536, 128),
            (GgmlType::F16, 1536, 576, 128),
            (GgmlType::BF16, 1536, 576, 128),
        ];
        for &(ty, n, k, m) in cases {
            if only.as_deref().is_some_and(|o| o != ty.name()) {
                continue;
            }
            let (fast, fast_med) = time(best, ty, n, k, m);
            let (scalar, _) = time(Isa::scalar(), ty, n, k, m);
            println!(
                "{:5} n={n:6} k={k:5} m={m:4}: {} min {fast:9.1} us ({:6.2} GMAC/s) median {fast_med:9.1} us; scalar min {scalar:9.1} us",
                ty.name(),
                best.name(),
                (n * k * m) as f64 / fast / 1e3
            );
        }
    });
    // Keep the plain entry point exercised.
    let mut y = vec![0.0; 1];
    matmul(GgmlType::F32, &[0; 128], 1, 32, &[0.0; 32], 1, &mut y).unwrap();
}

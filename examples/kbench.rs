//! Kernel benchmark: the quantized product `quant::matmul_uninit` alone, on weights shaped like a
//! TinyLlama FFN matrix, in the layout a loaded model has them (Q4_K packed on x86:
//! `quant::preferred_layout`; `CHORD_ISA` chooses the path) (`n` rows of 2048), cycling through enough matrices to fill `MB` MiB so that
//! decode-shaped runs stream from memory as a model does (use a few MiB to measure from cache).
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo run --release --example kbench -- [TYPE] [M] [MB] [N] [K]
//!   TYPE q4_0 | q4_1 | q5_0 | q5_1 | q8_0 | q4_k | q5_k | q6_k (default q4_k)
//!   M    activation rows (default 1: decode; 128: a prefill)
//!   MB   MiB of weights cycled through (default 512)
//!   N    weight rows per matrix (default 5632)
//!   K    values per weight row (default 2048; 5632 for the FFN's down projection)
//! ```
//!
//! Prints the best of several passes as weight bytes per second (what bounds decode) and, for M >
//! 1, as (weight block x activation row) products per second. Weights are random bytes with sane
//! f16 scales; results are not checked here (the unit tests do that).

use chord::quant::{matmul_uninit, pack, preferred_layout, GgmlType, Isa, Layout};
use std::mem::MaybeUninit;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: usize| -> usize {
        args.get(i).map_or(default, |s| {
            s.parse()
                .unwrap_or_else(|_| panic!("argument {}: not a number: {s}", i + 1))
        })
    };
    let ty = match args.first().map_or("q4_k", |s| s.as_str()) {
        "q4_0" => GgmlType::Q4_0,
        "q4_1" => GgmlType::Q4_1,
        "q5_0" => GgmlType::Q5_0,
        "q5_1" => GgmlType::Q5_1,
        "q8_0" => GgmlType::Q8_0,
        "q4_k" => GgmlType::Q4_K,
        "q5_k" => GgmlType::Q5_K,
        "q6_k" => GgmlType::Q6_K,
        t => panic!("unknown type {t}"),
    };
    let (m, mb, n, k) = (arg(1, 1), arg(2, 512), arg(3, 5632), arg(4, 2048));
    let rb = ty
        .row_bytes(k)
        .unwrap_or_else(|| panic!("K = {k} is not a whole number of {} blocks", ty.name()));
    let mats = ((mb << 20) / (n * rb)).max(1);
    let mut w: Vec<Vec<u8>> = (0..mats).map(|i| random_bytes(n * rb, i as u64)).collect();
    let block = ty.row_bytes(ty.block_size()).expect("one block");
    // Every f16 field that could hold a scale or a min gets ~0.005, so no value is NaN or
    // subnormal: Q4_1/Q5_1/Q4_K/Q5_K keep two at the start of a block, Q6_K one at the end.
    let scale = 0x1f21u16.to_be_bytes();
    for mat in &mut w {
        for b in mat.chunks_exact_mut(block) {
            b[..2].copy_from_slice(&scale);
            if matches!(
                ty,
                GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K
            ) {
                b[2..4].copy_from_slice(&scale);
            }
            if ty == GgmlType::Q6_K {
                b[block - 2..].copy_from_slice(&scale);
            }
        }
    }
    let layout = preferred_layout(Isa::selected().expect("a valid CHORD_ISA"), ty, n);
    if layout != Layout::Gguf {
        for mat in &mut w {
            let mut packed = vec![0u8; mat.len()];
            assert!(pack(ty, layout, mat, n, k, &mut packed));
            *mat = packed;
        }
    }
    let x: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let mut y = vec![MaybeUninit::<f32>::uninit(); m * n];
    let mut best = f64::MAX;
    for _ in 0..(7 * 512 / mb.max(1)).max(7) {
        let t = Instant::now();
        for mat in &w {
            matmul_uninit(ty, layout, mat, n, k, &x, m, &mut y).expect("shapes match");
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    let bytes = (mats * n * rb) as f64;
    let pairs = (mats * n * (k / ty.block_size()) * m) as f64;
    println!(
        "{} ({layout:?}) m={m}: {:.2} GB/s of weights, {:.3} G block products/s ({:.2} ms per pass over {} MiB)",
        ty.name(),
        bytes / best / 1e9,
        pairs / best / 1e9,
        best * 1e3,
        (bytes as usize) >> 20,
    );
}

/// `len` pseudo-random bytes (xorshift64), different for each `seed`.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut s = 0x1234_5678_9abc_def0 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

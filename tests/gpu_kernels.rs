//! chord's CubeCL kernels against the dequantized reference: the quantized matrix-vector product
//! of every format with a kernel, on every runtime this build has (wgpu: Mesa's lavapipe in CI, a
//! real GPU where there is one; CUDA where built with `--features cuda`), with each reduction
//! path the device offers (shared memory always; planes where they are 32 wide) and several
//! tilings of rows and tokens, which must all give the same bits; and the register-tiled
//! kernels of a prompt's products, likewise over several tiles.
//!
//! A build with a GPU feature needs its device: without one these tests fail, they do not skip.
//! Run: `cargo test --release --features wgpu --test gpu_kernels`.
#![cfg(any(feature = "wgpu", feature = "cuda"))]

#[path = "common/blocks.rs"]
mod blocks;

use chord::backend::cube::{
    self, plane_reduction, qmatmul_tiled_into, qmatvec_into, PromptTile, Tiling,
};
use chord::quant::{dequantize, GgmlType};
use cubecl::prelude::*;

/// Shapes (rows, cols): a partial last cube of rows, several blocks per row, two tokens.
const SHAPES: &[(usize, usize)] = &[(13, 512), (64, 2048), (7, 256)];

fn check<R: Runtime>(client: &ComputeClient<R>, name: &str) {
    let mut paths = vec![false];
    if plane_reduction(client) {
        paths.push(true);
    }
    eprintln!("{name}: reductions {paths:?} (true: planes)");
    for ty in [
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
    ] {
        for (si, &(rows, cols)) in SHAPES.iter().enumerate() {
            // Eleven tokens: a partial last group of tokens for every tiling below but one.
            let m = 11;
            let bytes = blocks::random_matrix(ty, rows, cols, 7 + si as u64);
            let x: Vec<f32> = (0..m * cols)
                .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.5)
                .collect();
            let mut wf = vec![0f32; rows * cols];
            dequantize(ty, &bytes, &mut wf).unwrap();
            let w = cube::upload(client, ty, &bytes, rows, cols).unwrap();
            assert!(
                w.device_bytes() <= bytes.len() + 4,
                "{ty:?}: layout larger than GGUF's"
            );
            let xh = client.create_from_slice(f32::as_bytes(&x));
            // The default tiling and eight tokens to a cube with each reduction, and other
            // tilings (odd ones too).
            let eight_tokens = Tiling {
                tokens_per_cube: 8,
                ..Tiling::default()
            };
            let tilings = [
                (Tiling::default(), false),
                (Tiling::default(), true),
                (eight_tokens, false),
                (eight_tokens, true),
            ]
            .into_iter()
            .chain([(1, 1, 1), (3, 5, 3), (2, 2, 16)].map(
                |(planes_per_cube, rows_per_plane, tokens_per_cube)| {
                    let t = Tiling {
                        planes_per_cube,
                        rows_per_plane,
                        tokens_per_cube,
                    };
                    (t, false)
                },
            ))
            .filter(|&(_, plane)| paths.contains(&plane));
            // What the first tiling of each reduction computed: a token's sums are the same
            // operations in the same order under every tiling, so every other one must give the
            // same bits.
            let mut first: [Option<Vec<u32>>; 2] = [None, None];
            for (tiling, plane) in tilings {
                let yh = client.empty(m * rows * 4);
                qmatvec_into(client, &w, &xh, m, &yh, plane, tiling).unwrap();
                let y = f32::from_bytes(&client.read_one(yh).unwrap()).to_vec();
                let bits: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
                match &first[plane as usize] {
                    None => first[plane as usize] = Some(bits),
                    Some(f) => assert!(
                        *f == bits,
                        "{name} {ty:?} {rows}x{cols} plane={plane} {tiling:?}: other bits than \
                         the first tiling of this reduction"
                    ),
                }
                near_reference(&y, &wf, &x, rows, cols, m, || {
                    format!("{name} {ty:?} {rows}x{cols} plane={plane} {tiling:?}")
                });
            }
            // The tiled kernel: the default tile, one output per unit, odd tiles and the most rows;
            // a unit's sums are the same in every tile, so all must give the same bits.
            let mut first: Option<Vec<u32>> = None;
            for (rows_per_unit, tokens) in [(8, 8), (1, 1), (3, 5), (16, 2)] {
                let tile = PromptTile {
                    rows: rows_per_unit,
                    tokens,
                };
                let yh = client.empty(m * rows * 4);
                qmatmul_tiled_into(client, &w, &xh, m, &yh, tile).unwrap();
                let y = f32::from_bytes(&client.read_one(yh).unwrap()).to_vec();
                let bits: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
                match &first {
                    None => first = Some(bits),
                    Some(f) => assert!(
                        *f == bits,
                        "{name} {ty:?} {rows}x{cols} {tile:?}: other bits than the first tile"
                    ),
                }
                near_reference(&y, &wf, &x, rows, cols, m, || {
                    format!("{name} {ty:?} {rows}x{cols} {tile:?}")
                });
            }
        }
    }
}

/// Asserts that `y` (`m` tokens of `rows` values) is `x w^T` within f32 rounding: each output
/// within 1e-5 of the sum of its products' magnitudes of the exact sum.
fn near_reference(
    y: &[f32],
    wf: &[f32],
    x: &[f32],
    rows: usize,
    cols: usize,
    m: usize,
    what: impl Fn() -> String,
) {
    for t in 0..m {
        for r in 0..rows {
            let (mut exact, mut mag) = (0f64, 0f64);
            for k in 0..cols {
                let p = wf[r * cols + k] as f64 * x[t * cols + k] as f64;
                exact += p;
                mag += p.abs();
            }
            let got = y[t * rows + r] as f64;
            assert!(
                (got - exact).abs() <= 1e-5 * mag + 1e-9,
                "{} token {t} row {r}: {got} vs {exact} (sum of |products| {mag})",
                what()
            );
        }
    }
}

/// A matrix larger than the device's largest buffer is refused with `Unsupported` (CubeCL would
/// panic on its device thread and leave the kernels reading garbage), checked where that size
/// can be allocated in a test (lavapipe: 128 MiB).
fn refuses_a_matrix_larger_than_a_buffer<R: Runtime>(client: &ComputeClient<R>) {
    let max = client.properties().memory.max_page_size as usize;
    assert!(!cube::fits(client, max));
    assert!(cube::fits(client, 1 << 20));
    if max <= 1 << 30 {
        let big = vec![0u8; max];
        let e = cube::upload(client, GgmlType::Q8_0, &big, 1, 32)
            .err()
            .unwrap();
        assert_eq!(e.code(), chord::ErrorCode::Unsupported, "{e}");
    }
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_qmatvec_matches_the_dequantized_reference() {
    use cubecl::wgpu::{WgpuDevice, WgpuRuntime};
    let client = WgpuRuntime::client(&WgpuDevice::DefaultDevice);
    check(&client, "wgpu");
    refuses_a_matrix_larger_than_a_buffer(&client);
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_qmatvec_matches_the_dequantized_reference() {
    use cubecl::cuda::{CudaDevice, CudaRuntime};
    let client = CudaRuntime::client(&CudaDevice::default());
    check(&client, "cuda");
    refuses_a_matrix_larger_than_a_buffer(&client);
}

#[test]
fn repack_rejects_unsupported_rows_and_wrong_sizes() {
    let q4k = blocks::random_matrix(GgmlType::Q4_K, 2, 256, 1);
    // Every format has a kernel; float rows of other than a multiple of 8 values multiply through the host.
    let e = cube::repack(GgmlType::F16, &[0; 12], 1, 6).unwrap_err();
    assert_eq!(e.code(), chord::ErrorCode::Unsupported, "{e}");
    let e = cube::repack(GgmlType::Q4_K, &q4k[..200], 2, 256).unwrap_err();
    assert_eq!(e.code(), chord::ErrorCode::InvalidArgument, "{e}");
    let e = cube::repack(GgmlType::Q4_K, &q4k, 2, 200).unwrap_err();
    assert_eq!(e.code(), chord::ErrorCode::InvalidArgument, "{e}");
}

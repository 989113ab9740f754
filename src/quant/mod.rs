//! GGML tensor formats: block layouts, reference dequantization, and the products of quantized
//! weights with f32 activations that the forward pass uses.

mod types;

pub use types::GgmlType;

// TEMPORARY naive kernels for the engine bring-up; replaced by the quant branch's kernels.
/// Dequantizes one row.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) {
    use half::f16;
    let h = |b: &[u8]| f16::from_le_bytes([b[0], b[1]]).to_f32();
    match ty {
        GgmlType::F32 => {
            for (d, c) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        GgmlType::Q8_0 => {
            for (blk, out) in src.chunks_exact(34).zip(dst.chunks_exact_mut(32)) {
                let d = h(blk);
                for j in 0..32 {
                    out[j] = blk[2 + j] as i8 as f32 * d;
                }
            }
        }
        GgmlType::Q4_1 => {
            for (blk, out) in src.chunks_exact(20).zip(dst.chunks_exact_mut(32)) {
                let d = h(blk);
                let m = h(&blk[2..]);
                for j in 0..16 {
                    out[j] = (blk[4 + j] & 0xf) as f32 * d + m;
                    out[j + 16] = (blk[4 + j] >> 4) as f32 * d + m;
                }
            }
        }
        _ => unimplemented!("bring-up shim"),
    }
}

/// y[i*n+j] = sum_t x[i*k+t] * W[j][t].
pub fn matmul(
    ty: GgmlType,
    w: &[u8],
    n: usize,
    k: usize,
    x: &[f32],
    m: usize,
    y: &mut [f32],
) -> crate::Result<()> {
    use rayon::prelude::*;
    let rb = ty.row_bytes(k).unwrap();
    let cols: Vec<Vec<f32>> = (0..n)
        .into_par_iter()
        .map(|j| {
            let mut row = vec![0f32; k];
            dequantize_row(ty, &w[j * rb..(j + 1) * rb], &mut row);
            (0..m)
                .map(|i| {
                    x[i * k..(i + 1) * k]
                        .iter()
                        .zip(&row)
                        .map(|(a, b)| a * b)
                        .sum()
                })
                .collect()
        })
        .collect();
    for (j, c) in cols.iter().enumerate() {
        for i in 0..m {
            y[i * n + j] = c[i];
        }
    }
    Ok(())
}

//! The public quantized product `y = x · Wᵀ`: checks shapes, converts the activations once, and
//! splits the weight rows over the current team ([`crate::team`]).

use super::act::Act;
use super::isa::Isa;
use super::kernel::Kernel;
use super::GgmlType;
use crate::bail;
use crate::error::Result;

/// Computes `y[i*n + j] = sum_t x[i*k + t] * W[j][t]` for `m` activation rows `x` (`m*k` f32) and
/// the `n` weight rows of `k` values in `w` (GGUF layout, format `ty`), on the fastest kernels this
/// CPU has. Runs on the current team ([`crate::team::for_each`]).
///
/// Activations are converted once to llama.cpp's `vec_dot_type` for `ty` (Q8_0, Q8_1, Q8_K, F16,
/// BF16 or f32). Fails with `InvalidArgument` when a length does not match the shapes.
pub fn matmul(
    ty: GgmlType,
    w: &[u8],
    n: usize,
    k: usize,
    x: &[f32],
    m: usize,
    y: &mut [f32],
) -> Result<()> {
    matmul_with(Isa::best(), ty, w, n, k, x, m, y)
}

/// [`matmul`] on an explicit kernel path (tests and benchmarks compare [`Isa::scalar`] with the
/// detected one).
#[allow(clippy::too_many_arguments)]
pub fn matmul_with(
    isa: Isa,
    ty: GgmlType,
    w: &[u8],
    n: usize,
    k: usize,
    x: &[f32],
    m: usize,
    y: &mut [f32],
) -> Result<()> {
    let Some(rb) = ty.row_bytes(k) else {
        bail!(
            InvalidArgument,
            "matmul: row length {k} is not a multiple of the {} block size {}",
            ty.name(),
            ty.block_size()
        );
    };
    if n.checked_mul(rb) != Some(w.len()) {
        bail!(
            InvalidArgument,
            "matmul: {} weights of {} bytes are not {n} rows of {k}",
            ty.name(),
            w.len()
        );
    }
    if m.checked_mul(k) != Some(x.len()) {
        bail!(
            InvalidArgument,
            "matmul: {} activations are not {m} rows of {k}",
            x.len()
        );
    }
    if m.checked_mul(n) != Some(y.len()) {
        bail!(
            InvalidArgument,
            "matmul: output of {} values is not {m} x {n}",
            y.len()
        );
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        y.fill(0.0);
        return Ok(());
    }
    let act = Act::quantize(isa, ty, x, k);
    let kern = Kernel::for_product(isa, ty, n, k, m);
    if m == 1 {
        // Decode: a few hundred of these per token, on the spinning team when there is one.
        let chunk = n
            .div_ceil(crate::team::threads().max(1) * 4)
            .next_multiple_of(8);
        let mut parts: Vec<&mut [f32]> = y.chunks_mut(chunk).collect();
        crate::team::for_parts(&mut parts, &|c, yc| {
            let j0 = c * chunk;
            kern.tile(w, rb, j0..j0 + yc.len(), &act, 1, k, yc, 0);
        });
        return Ok(());
    }
    let threads = crate::team::threads().max(1);
    // Prefill: each task takes a block of weight rows (kept in cache) against every activation row;
    // a multiple of 8 rows, for the kernels that take eight at a time.
    let rows = n.div_ceil(threads * 4).next_multiple_of(8).clamp(8, 64);
    let mut tiles: Vec<(usize, Vec<f32>)> = vec![(0, Vec::new()); n.div_ceil(rows)];
    crate::team::for_parts(&mut tiles, &|t, tile| {
        let r = t * rows..((t + 1) * rows).min(n);
        let mut buf = vec![0.0f32; m * r.len()];
        let len = r.len();
        kern.tile(w, rb, r.clone(), &act, m, k, &mut buf, len);
        *tile = (r.start, buf);
    });
    for (j0, buf) in tiles {
        let len = buf.len() / m;
        for (i, src) in buf.chunks_exact(len).enumerate() {
            y[i * n + j0..i * n + j0 + len].copy_from_slice(src);
        }
    }
    Ok(())
}

//! The public quantized product `y = x · Wᵀ`: checks shapes, converts the activations once, and
//! splits the weight rows over the current team ([`crate::team`]).

use super::act::Act;
use super::isa::Isa;
use super::kernel::Kernel;
use super::out::Columns;
use super::pack::Layout;
use super::GgmlType;
use crate::bail;
use crate::error::Result;
use std::mem::MaybeUninit;

/// Computes `y[i*n + j] = sum_t x[i*k + t] * W[j][t]` for `m` activation rows `x` (`m*k` f32) and
/// the `n` weight rows of `k` values in `w` (GGUF layout, format `ty`), on the kernel path of
/// [`Isa::selected`] (the fastest this CPU has, or `CHORD_ISA`). Runs on the current team
/// ([`crate::team::for_each`]).
///
/// Activations are converted once to llama.cpp's `vec_dot_type` for `ty` (Q8_0, Q8_1, Q8_K, F16,
/// BF16 or f32). Fails with `InvalidArgument` when a length does not match the shapes, and with
/// the reason when `CHORD_ISA` names a path that cannot run here.
pub fn matmul(
    ty: GgmlType,
    w: &[u8],
    n: usize,
    k: usize,
    x: &[f32],
    m: usize,
    y: &mut [f32],
) -> Result<()> {
    matmul_with(Isa::selected()?, ty, w, n, k, x, m, y)
}

/// [`matmul`] with the weights in `layout` (made by [`crate::quant::pack()`] for the path this
/// process runs), into memory that need not be initialized: on `Ok` every element of `y` is
/// written (so an output buffer need not be zeroed first); on `Err` none is.
#[allow(clippy::too_many_arguments)]
pub fn matmul_uninit(
    ty: GgmlType,
    layout: Layout,
    w: &[u8],
    n: usize,
    k: usize,
    x: &[f32],
    m: usize,
    y: &mut [MaybeUninit<f32>],
) -> Result<()> {
    product(Isa::selected()?, ty, layout, w, n, k, x, m, y)
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
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and `product` only writes initialized
    // values, so `y` stays initialized.
    let y = unsafe { &mut *(y as *mut [f32] as *mut [MaybeUninit<f32>]) };
    product(isa, ty, Layout::Gguf, w, n, k, x, m, y)
}

/// The product behind [`matmul_with`] and [`matmul_uninit`], with the weights in `layout`.
#[allow(clippy::too_many_arguments)]
pub(super) fn product(
    isa: Isa,
    ty: GgmlType,
    layout: Layout,
    w: &[u8],
    n: usize,
    k: usize,
    x: &[f32],
    m: usize,
    y: &mut [MaybeUninit<f32>],
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
        y.fill(MaybeUninit::new(0.0));
        return Ok(());
    }
    let Some(kern) = Kernel::for_product(isa, ty, layout, n, k, m) else {
        bail!(
            InvalidArgument,
            "matmul: {n} rows of {} in layout {layout:?} have no product on the {} path",
            ty.name(),
            isa.name()
        );
    };
    let mut act = Act::quantize(isa, ty, x, k);
    // The AVX-512 eight-activation-row kernels read the rows in pairs: laid out once here, and
    // only for them (not for decode, nor the repacked products that take the rows as they are).
    if let (Kernel::Q8(_, Some(_), _), Act::Q8_0(a) | Act::Q8_1(a)) = (&kern, &mut act) {
        if isa.has_avx512() && m >= 8 {
            a.pair_eights(k / super::blocks::QK);
        }
    }
    let threads = crate::team::threads().max(1);
    // Decode (a few hundred products per token, on the spinning team when there is one): about
    // four parts per thread. Prefill: each task takes a block of weight rows (kept in cache)
    // against every activation row, and the last `threads` blocks' worth of rows go in quarter
    // blocks, so that the threads run out of work close together (a whole block of the
    // TinyLlama-shape down projection takes about 1.4 ms here). All a multiple of 8 rows, for the
    // kernels that take eight at a time, and of 16 in prefill, for the AVX-512 ones that take
    // sixteen.
    let (cols, small) = if m == 1 {
        let c = n.div_ceil(threads * 4).next_multiple_of(8);
        (c, c)
    } else {
        let c = n.div_ceil(threads * 4).next_multiple_of(16).clamp(16, 64);
        (c, (c / 4).next_multiple_of(16))
    };
    let big = n.saturating_sub(threads * cols) / cols;
    let tail = big * cols;
    let tile = |t: usize| {
        let (start, len) = if t < big {
            (t * cols, cols)
        } else {
            (tail + (t - big) * small, small)
        };
        start..(start + len).min(n)
    };
    let out = Columns::new(y, m, n);
    crate::team::for_each(big + (n - tail).div_ceil(small), &|t| {
        let r = tile(t);
        // SAFETY: the tiles do not overlap: `big` blocks of `cols` columns, then blocks of
        // `small` from there to `n`; task t alone takes tile t.
        let block = unsafe { out.block(r.clone()) };
        kern.tile(w, rb, r, &act, k, block);
    });
    Ok(())
}

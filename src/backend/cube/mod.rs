//! chord's own GPU kernels on CubeCL runtimes (wgpu, CUDA): weight matrices uploaded to the
//! device in the layout the kernels read ([`DeviceWeight`], [`upload`]) and the quantized
//! matrix-vector product over them ([`qmatvec`]), with register-tiled kernels for the products of
//! a prompt ([`PromptTile`]); a layer's other operations and the f16 KV
//! cache in device memory ([`layer`]).
//!
//! Formats and their device layouts (all 4-byte words, since WGSL has no byte loads, and no
//! larger than the GGUF bytes):
//! * Q4_K, Q5_K, Q2_K: GGUF's 144-, 176- and 84-byte blocks as they are (already word-aligned).
//! * Q3_K: each 110-byte block's `hmask`, values and scales (27 words), then every block's f16
//!   `d`, two to a word.
//! * Q6_K: each 210-byte block's `ql`, `qh` and `scales` (52 words), then every block's f16 `d`,
//!   two to a word.
//! * Q8_0: each 34-byte block's 32 values (8 words), then the f16 scales, two to a word.
//! * Q4_0, Q4_1, Q5_0, Q5_1: each block's 16 bytes of nibbles (4 words) and, for the 5-bit ones,
//!   its fifth bits (1 word); then the f16 scales, two to a word, and for Q4_1/Q5_1 the f16
//!   minimums likewise.
//! * F32, F16, BF16: the row-major values as they are (one or two to a word), for rows of a
//!   multiple of 8 values.
//!
//! Other formats (and float rows of other lengths) fail with `Unsupported`. The kernels compute in
//! f32 from f32 activations (no 8-bit activations): GPU results are held to a tolerance, not to
//! llama.cpp's bits.

mod kernels;
pub mod layer;
mod layer_kernels;
mod tiled;

use crate::bail;
use crate::error::{Error, ErrorCode, Result};
use crate::quant::blocks::u32_at;
use crate::quant::GgmlType;
use cubecl::prelude::*;
use cubecl::server::Handle;

/// How the product's rows and tokens are spread over the device: `planes_per_cube` planes of 32
/// lanes make a cube, each plane computes `rows_per_plane` rows, sharing the activations it loads,
/// for `tokens_per_cube` tokens, sharing the weights it loads. Each triple is a kernel variant of
/// its own, compiled on first use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    /// Planes per cube (1..=32).
    pub planes_per_cube: u32,
    /// Rows per plane (1..=8).
    pub rows_per_plane: u32,
    /// Tokens per cube (1..=16).
    pub tokens_per_cube: u32,
}

impl Default for Tiling {
    /// 2 planes (64 units) of 4 rows each: the best overall of `examples/gpu_bench.rs`'s sweep
    /// of decode products on an H200 (CUDA and Vulkan), 3% behind the best on a 2048 x 2048
    /// matrix, 7% behind on a Q4_K 11008 x 4096 one, and the best on a Q6_K 4096 x 11008 one.
    /// One token to a cube, for the few tokens of a batch decode or a short prompt too (prompts of
    /// [`PROMPT_TOKENS`] or more take the tiled kernels): on lavapipe (`gpu_bench prefill wgpu`,
    /// 64 tokens) more tokens to a cube made the quantized products slower (Q4_K 2048 x 2048: 1.5
    /// GMAC/s with one, 1.1 with 8); no GPU has measured it yet (scripts/device-check.sh runs the
    /// sweep on CUDA).
    fn default() -> Self {
        Tiling {
            planes_per_cube: 2,
            rows_per_plane: 4,
            tokens_per_cube: 1,
        }
    }
}

/// A weight matrix in device memory, in its format's device layout.
pub struct DeviceWeight {
    handle: Handle,
    words: usize,
    /// Storage format.
    pub ty: GgmlType,
    /// Output features.
    pub rows: usize,
    /// Input features.
    pub cols: usize,
}

impl DeviceWeight {
    /// Bytes the matrix takes on the device.
    pub fn device_bytes(&self) -> usize {
        self.words * 4
    }
}

/// The error for rows without a kernel ([`supported`]).
fn unsupported(ty: GgmlType, cols: usize) -> Error {
    Error::new(
        ErrorCode::Unsupported,
        format!(
            "no GPU kernel for {} rows of {cols} values (float rows need a multiple of 8)",
            ty.name()
        ),
    )
}

/// Whether [`qmatvec`] has a kernel for rows of `cols` values of `ty`.
pub fn supported(ty: GgmlType, cols: usize) -> bool {
    match ty {
        GgmlType::Q2_K
        | GgmlType::Q3_K
        | GgmlType::Q4_K
        | GgmlType::Q5_K
        | GgmlType::Q6_K
        | GgmlType::Q8_0
        | GgmlType::Q4_0
        | GgmlType::Q4_1
        | GgmlType::Q5_0
        | GgmlType::Q5_1 => true,
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => cols.is_multiple_of(8),
    }
}

/// The device layout of `rows` rows of `cols` values of `ty` in GGUF's encoding (`bytes`), as
/// words.
pub fn repack(ty: GgmlType, bytes: &[u8], rows: usize, cols: usize) -> Result<Vec<u32>> {
    if !supported(ty, cols) {
        return Err(unsupported(ty, cols));
    }
    if ty.row_bytes(cols).and_then(|r| r.checked_mul(rows)) != Some(bytes.len()) {
        bail!(
            InvalidArgument,
            "{} bytes do not hold {rows} x {cols} {} values",
            bytes.len(),
            ty.name()
        );
    }
    let ts = ty.type_size();
    let word = |b: &[u8]| u32_at(b, 0);
    let blocks = bytes.chunks_exact(ts);
    let mut out = Vec::with_capacity(bytes.len().div_ceil(4) + 1);
    // The f16 scales at byte `at` of each block, two to a word, after the values.
    let scales = |out: &mut Vec<u32>, at: usize| {
        let mut pairs = bytes
            .chunks_exact(ts)
            .map(|b| u16::from_le_bytes([b[at], b[at + 1]]));
        while let Some(lo) = pairs.next() {
            out.push(lo as u32 | (pairs.next().unwrap_or(0) as u32) << 16);
        }
    };
    match ty {
        GgmlType::Q2_K
        | GgmlType::Q4_K
        | GgmlType::Q5_K
        | GgmlType::F32
        | GgmlType::F16
        | GgmlType::BF16 => out.extend(bytes.chunks_exact(4).map(word)),
        GgmlType::Q3_K => {
            use crate::quant::blocks::q3_k::D;
            for b in blocks {
                out.extend(b[..D].chunks_exact(4).map(word));
            }
            scales(&mut out, D);
        }
        GgmlType::Q6_K => {
            use crate::quant::blocks::q6_k::{D, QL};
            for b in blocks {
                out.extend(b[QL..D].chunks_exact(4).map(word));
            }
            scales(&mut out, D);
        }
        GgmlType::Q8_0 => {
            use crate::quant::blocks::q8_0::{D, QS};
            for b in blocks {
                out.extend(b[QS..].chunks_exact(4).map(word));
            }
            scales(&mut out, D);
        }
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 => {
            use crate::quant::blocks::{q4_0, q4_1, q5_0, q5_1};
            // (offset of the nibbles, of the fifth bits, of the minimum)
            let (qs, qh, m) = match ty {
                GgmlType::Q4_0 => (q4_0::QS, None, None),
                GgmlType::Q4_1 => (q4_1::QS, None, Some(q4_1::M)),
                GgmlType::Q5_0 => (q5_0::QS, Some(q5_0::QH), None),
                _ => (q5_1::QS, Some(q5_1::QH), Some(q5_1::M)),
            };
            for b in blocks {
                out.extend(b[qs..qs + 16].chunks_exact(4).map(word));
                out.extend(qh.map(|at| u32_at(b, at)));
            }
            scales(&mut out, q4_0::D);
            if let Some(at) = m {
                scales(&mut out, at);
            }
        }
    }
    Ok(out)
}

/// Whether a matrix of `bytes` GGUF bytes fits one buffer of `client`'s device (its device layout
/// is at most 4 bytes larger). A larger allocation does not fail where it is asked: CubeCL panics on
/// its device thread and the kernels then read garbage (lavapipe's buffers end at 128 MiB, which
/// the output matrix of a large vocabulary passes).
pub fn fits<R: Runtime>(client: &ComputeClient<R>, bytes: usize) -> bool {
    (bytes as u64).saturating_add(4) <= client.properties().memory.max_page_size
}

/// Uploads a GGUF-encoded matrix to the device of `client`; `Unsupported` where it does not fit
/// one buffer there ([`fits`]).
pub fn upload<R: Runtime>(
    client: &ComputeClient<R>,
    ty: GgmlType,
    bytes: &[u8],
    rows: usize,
    cols: usize,
) -> Result<DeviceWeight> {
    if !fits(client, bytes.len()) {
        bail!(
            Unsupported,
            "a {rows} x {cols} {} matrix ({} bytes) is larger than the device's largest buffer \
             ({} bytes)",
            ty.name(),
            bytes.len(),
            client.properties().memory.max_page_size
        );
    }
    let words = repack(ty, bytes, rows, cols)?;
    Ok(DeviceWeight {
        handle: client.create_from_slice(u32::as_bytes(&words)),
        words: words.len(),
        ty,
        rows,
        cols,
    })
}

/// Whether the kernels may reduce with plane operations on `client`'s device: it has them and its
/// planes are exactly 32 units wide (one row's lanes).
pub fn plane_reduction<R: Runtime>(client: &ComputeClient<R>) -> bool {
    let hw = &client.properties().hardware;
    client
        .features()
        .plane
        .contains(cubecl::ir::features::Plane::Ops)
        && hw.plane_size_min == 32
        && hw.plane_size_max == 32
}

/// The register tile of a prompt's product ([`tiled`]): each unit computes `rows` rows for
/// `tokens` tokens, in cubes of 8 x 8 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptTile {
    /// Rows per unit (1..=16).
    pub rows: u32,
    /// Tokens per unit (1..=16).
    pub tokens: u32,
}

impl Default for PromptTile {
    /// 8 rows x 8 tokens: on lavapipe (two Zen 4 cores, `gpu_bench prefill wgpu 64`) 7.9 G
    /// multiply-adds/s on Q4_K 2048 x 2048 (4 x 8: 5.7, 8 x 16: 4.8, 16 x 8: 10.7) and 5.7 on Q6_K
    /// 2048 x 5632 (16 x 8: 4.9); the same order in Q5_0, Q8_0 and F16. No GPU has measured the
    /// tiles yet (`scripts/device-check.sh` runs the sweep on CUDA).
    fn default() -> Self {
        PromptTile { rows: 8, tokens: 8 }
    }
}

/// Prompts of at least this many tokens take the tiled kernels; shorter ones, and single tokens,
/// the matrix-vector kernels.
pub const PROMPT_TOKENS: usize = 8;

/// `y [m, rows] = x [m, cols] w^T` on the device: `x` holds `m * cols` f32 values; returns the
/// handle of `y` (`m * rows` f32 values). A prompt of [`PROMPT_TOKENS`] or more takes the tiled
/// kernel of `w`'s format ([`qmatmul_tiled_into`]).
pub fn qmatvec<R: Runtime>(
    client: &ComputeClient<R>,
    w: &DeviceWeight,
    x: &Handle,
    m: usize,
) -> Result<Handle> {
    let y = client.empty(m * w.rows * 4);
    if m >= PROMPT_TOKENS {
        qmatmul_tiled_into(client, w, x, m, &y, PromptTile::default())?;
    } else {
        qmatvec_into(
            client,
            w,
            x,
            m,
            &y,
            plane_reduction(client),
            Tiling::default(),
        )?;
    }
    Ok(y)
}

/// [`qmatvec`] into a given `y` with the tiled kernel of `w`'s format (every format with a
/// matrix-vector kernel has one) and the tile chosen by the caller.
pub fn qmatmul_tiled_into<R: Runtime>(
    client: &ComputeClient<R>,
    w: &DeviceWeight,
    x: &Handle,
    m: usize,
    y: &Handle,
    tile: PromptTile,
) -> Result<()> {
    if !(1..=16).contains(&tile.rows) || !(1..=16).contains(&tile.tokens) || m == 0 {
        bail!(
            InvalidArgument,
            "no tiled kernel for {tile:?} over {m} tokens"
        );
    }
    if !supported(w.ty, w.cols) {
        return Err(unsupported(w.ty, w.cols));
    }
    let units = tiled::CUBE_UNITS;
    let count = CubeCount::Static(
        (w.rows as u32).div_ceil(units * tile.rows),
        (m as u32).div_ceil(units * tile.tokens),
        1,
    );
    let dim = CubeDim::new_2d(units, units);
    // SAFETY: the lengths are those of the buffers: `w.words` words, `m * cols / 4` vectors of 4
    // f32 values (every supported row is a multiple of 8 values long) and `m * rows` f32 values.
    // The kernels clamp rows below `rows` and tokens below `m`, loop over the blocks of a row, and
    // store only rows below `rows` and tokens below `m`.
    let (wa, xa, ya) = unsafe {
        (
            ArrayArg::from_raw_parts(w.handle.clone(), w.words),
            ArrayArg::from_raw_parts(x.clone(), m * w.cols / 4),
            ArrayArg::from_raw_parts(y.clone(), m * w.rows),
        )
    };
    // Every tiled kernel takes the same arguments (x as vectors of 4 values), then its format's
    // compile-time flags.
    // SAFETY: as above, for each format's layout (`repack`).
    macro_rules! launch {
        ($kernel:ident $(, $flag:expr)*) => {
            unsafe {
                tiled::$kernel::launch_unchecked::<R>(
                    client,
                    count,
                    dim,
                    4,
                    wa,
                    xa,
                    ya,
                    w.rows as u32,
                    w.cols as u32,
                    m as u32,
                    tile.rows,
                    tile.tokens,
                    $($flag),*
                )
            }
        };
    }
    let ty = w.ty;
    match ty {
        GgmlType::Q4_K | GgmlType::Q5_K => launch!(q45_k_tiled, ty == GgmlType::Q5_K),
        GgmlType::Q2_K | GgmlType::Q3_K => launch!(q23_k_tiled, ty == GgmlType::Q3_K),
        GgmlType::Q6_K => launch!(q6_k_tiled),
        GgmlType::Q8_0 => launch!(q8_0_tiled),
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 => launch!(
            legacy_tiled,
            matches!(ty, GgmlType::Q5_0 | GgmlType::Q5_1),
            matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1)
        ),
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {
            launch!(float_tiled, ty != GgmlType::F32, ty == GgmlType::BF16)
        }
    }
    crate::backend::count_launch();
    Ok(())
}

/// [`qmatvec`] into a given `y`, with the reduction (`plane` only where [`plane_reduction`] says
/// so) and the tiling chosen by the caller.
pub fn qmatvec_into<R: Runtime>(
    client: &ComputeClient<R>,
    w: &DeviceWeight,
    x: &Handle,
    m: usize,
    y: &Handle,
    plane: bool,
    tiling: Tiling,
) -> Result<()> {
    let Tiling {
        planes_per_cube,
        rows_per_plane,
        tokens_per_cube,
    } = tiling;
    if !(1..=32).contains(&planes_per_cube)
        || !(1..=8).contains(&rows_per_plane)
        || !(1..=16).contains(&tokens_per_cube)
        || m == 0
    {
        bail!(
            InvalidArgument,
            "no kernel variant for {tiling:?} over {m} tokens"
        );
    }
    if !supported(w.ty, w.cols) {
        return Err(unsupported(w.ty, w.cols));
    }
    let cubes = (w.rows as u32).div_ceil(planes_per_cube * rows_per_plane);
    let count = CubeCount::Static(cubes, (m as u32).div_ceil(tokens_per_cube), 1);
    let dim = CubeDim::new_2d(32, planes_per_cube);
    // SAFETY: the lengths are those of the buffers: `w.words` words, `m * cols` and `m * rows`
    // f32 values, which the kernels index within (rows < `rows`, tokens < `m`).
    let (wa, xa, ya) = unsafe {
        (
            ArrayArg::from_raw_parts(w.handle.clone(), w.words),
            ArrayArg::from_raw_parts(x.clone(), m * w.cols),
            ArrayArg::from_raw_parts(y.clone(), m * w.rows),
        )
    };
    // Every kernel takes the same arguments, then its format's compile-time flags. They are
    // compiled without bounds checks (CubeCL's checked mode clamps and tests every index, which
    // made most of a product's instructions on lavapipe).
    // SAFETY: every index a kernel computes is within the lengths above: rows below `rows`
    // (guarded), blocks below `cols / block` (its loop), tokens clamped below `m`, and the scale
    // words past the blocks within the layout of `repack`.
    macro_rules! launch {
        ($kernel:ident $(, $flag:expr)*) => {
            unsafe {
                kernels::$kernel::launch_unchecked::<R>(
                    client,
                    count,
                    dim,
                    wa,
                    xa,
                    ya,
                    w.rows as u32,
                    w.cols as u32,
                    m as u32,
                    planes_per_cube,
                    rows_per_plane,
                    tokens_per_cube,
                    plane,
                    $($flag),*
                )
            }
        };
    }
    let ty = w.ty;
    match ty {
        GgmlType::Q4_K | GgmlType::Q5_K => launch!(q45_k_matvec, ty == GgmlType::Q5_K),
        GgmlType::Q2_K | GgmlType::Q3_K => launch!(q23_k_matvec, ty == GgmlType::Q3_K),
        GgmlType::Q6_K => launch!(q6_k_matvec),
        GgmlType::Q8_0 => launch!(q8_0_matvec),
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 => launch!(
            legacy_matvec,
            matches!(ty, GgmlType::Q5_0 | GgmlType::Q5_1),
            matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1)
        ),
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {
            launch!(float_matvec, ty != GgmlType::F32, ty == GgmlType::BF16)
        }
    }
    crate::backend::count_launch();
    Ok(())
}

/// Launches the empty kernel once on `y` (at least one f32): the cost of a launch alone.
pub fn launch_nop<R: Runtime>(client: &ComputeClient<R>, y: &Handle) {
    // SAFETY: the kernel touches element 0 only, and `y` holds at least one f32.
    let ya = unsafe { ArrayArg::from_raw_parts(y.clone(), 1) };
    kernels::nop::launch::<R>(client, CubeCount::Static(1, 1, 1), CubeDim::new_1d(32), ya);
}

//! Launches of [`super::layer_kernels`]: a layer's norms, activation, RoPE, and the f16 KV cache
//! ([`DeviceKv`]) with its write and attention, on buffers of f32 values in device memory. Each
//! function checks nothing the caller's shapes do not already guarantee; each counts its launch
//! ([`crate::backend::traffic`]). The kernels are compiled without CubeCL's bounds checks (which
//! clamp and test every index): each launch's SAFETY comment says why its indices stay within
//! the buffers.

use super::layer_kernels as k;
use crate::attn::{RopeMode, Scores};
use crate::backend::count_launch;
use cubecl::prelude::*;
use cubecl::server::Handle;

/// Units per cube of the element-wise kernels.
const ELEMENTWISE: u32 = 256;

/// An array argument over `len` values of `h`.
///
/// # Safety
/// `h` holds at least `len` values of the kernel's element type.
unsafe fn arg<R: Runtime>(h: &Handle, len: usize) -> ArrayArg<R> {
    // SAFETY: as the caller promises.
    unsafe { ArrayArg::from_raw_parts(h.clone(), len) }
}

/// A cube count covering `n` units in cubes of `per_cube`, in a 2-D grid where one dimension
/// would exceed the 65535 cubes some devices allow.
fn cubes_for(n: usize, per_cube: u32) -> CubeCount {
    let cubes = (n as u32).div_ceil(per_cube).max(1);
    if cubes <= 65535 {
        CubeCount::Static(cubes, 1, 1)
    } else {
        CubeCount::Static(65535, cubes.div_ceil(65535), 1)
    }
}

/// `rms_norm(x) * w` of the `rows` rows of `d` values of `x`.
pub fn rms_norm<R: Runtime>(
    client: &ComputeClient<R>,
    x: &Handle,
    w: &Handle,
    rows: usize,
    d: usize,
    eps: f32,
) -> Handle {
    let y = client.empty(rows * d * 4);
    count_launch();
    // SAFETY: `x` and `y` hold `rows * d` values and `w` holds `d` (the caller's shapes); the
    // kernel reads and writes row `CUBE_POS < rows` only.
    unsafe {
        k::rms_norm::launch_unchecked::<R>(
            client,
            CubeCount::Static(rows as u32, 1, 1),
            CubeDim::new_1d(k::CUBE),
            arg(x, rows * d),
            arg(w, d),
            arg(&y, rows * d),
            d as u32,
            eps,
        );
    }
    y
}

/// `s = x + r` and `rms_norm(s) * w` over `rows` rows of `d` values: `(s, normed)`.
pub fn add_rms_norm<R: Runtime>(
    client: &ComputeClient<R>,
    x: &Handle,
    r: &Handle,
    w: &Handle,
    rows: usize,
    d: usize,
    eps: f32,
) -> (Handle, Handle) {
    let n = rows * d;
    let (s, y) = (client.empty(n * 4), client.empty(n * 4));
    count_launch();
    // SAFETY: as in `rms_norm`, with `r` and `s` of `rows * d` values too.
    unsafe {
        k::add_rms_norm::launch_unchecked::<R>(
            client,
            CubeCount::Static(rows as u32, 1, 1),
            CubeDim::new_1d(k::CUBE),
            arg(x, n),
            arg(r, n),
            arg(w, d),
            arg(&s, n),
            arg(&y, n),
            d as u32,
            eps,
        );
    }
    (s, y)
}

/// `act(g) * u` over `n` values (SiLU, or GELU in its tanh form).
pub fn glu<R: Runtime>(
    client: &ComputeClient<R>,
    g: &Handle,
    u: &Handle,
    n: usize,
    gelu: bool,
) -> Handle {
    let y = client.empty(n * 4);
    count_launch();
    // SAFETY: `g`, `u` and `y` hold `n` values; the kernel guards `ABSOLUTE_POS < n`.
    unsafe {
        k::glu::launch_unchecked::<R>(
            client,
            cubes_for(n, ELEMENTWISE),
            CubeDim::new_1d(ELEMENTWISE),
            arg(g, n),
            arg(u, n),
            arg(&y, n),
            n as u32,
            gelu,
        );
    }
    y
}

/// RoPE of `x [t, heads, dim]` by the angles of `cs`, `sn` (`[t, rope_dim / 2]` cosines and
/// sines); `dim` and `rope_dim` even.
#[allow(clippy::too_many_arguments)]
pub fn rope<R: Runtime>(
    client: &ComputeClient<R>,
    x: &Handle,
    cs: &Handle,
    sn: &Handle,
    [t, heads, dim]: [usize; 3],
    rope_dim: usize,
    mode: RopeMode,
) -> Handle {
    let n = t * heads * dim;
    let y = client.empty(n * 4);
    let rows = (t * heads) as u32;
    let per_row = (dim / 2) as u32;
    let dim_x = per_row.min(64);
    count_launch();
    // SAFETY: `x`, `y` hold `t * heads * dim` values, `cs`, `sn` `t * rope_dim / 2`; the kernel
    // guards its row (`< t * heads`) and pair (`< dim / 2`).
    unsafe {
        k::rope::launch_unchecked::<R>(
            client,
            CubeCount::Static(per_row.div_ceil(dim_x), rows.div_ceil(4), 1),
            CubeDim::new_2d(dim_x, 4),
            arg(x, n),
            arg(cs, t * rope_dim / 2),
            arg(sn, t * rope_dim / 2),
            arg(&y, n),
            rows,
            heads as u32,
            dim as u32,
            rope_dim as u32,
            mode == RopeMode::Neox,
        );
    }
    y
}

/// One layer's KV cache in device memory: keys and values as f16, two to a word,
/// `[n_head_kv][n_ctx][head_dim / 2]` words each.
#[derive(Clone)]
pub struct DeviceKv {
    /// Keys.
    pub k: Handle,
    /// Values.
    pub v: Handle,
    /// Key/value heads.
    pub n_head_kv: usize,
    /// Positions.
    pub n_ctx: usize,
    /// Values per head (even).
    pub head_dim: usize,
}

impl DeviceKv {
    /// Words of each of the keys and values.
    pub fn words(&self) -> usize {
        self.n_head_kv * self.n_ctx * self.head_dim / 2
    }

    /// A copy of the cache in new device memory.
    pub fn copy<R: Runtime>(&self, client: &ComputeClient<R>) -> DeviceKv {
        let n = self.words();
        let copy = |h: &Handle| {
            let y = client.empty(n * 4);
            count_launch();
            // SAFETY: both buffers hold `n` words; the kernel guards `ABSOLUTE_POS < n`.
            unsafe {
                k::copy_words::launch_unchecked::<R>(
                    client,
                    cubes_for(n, ELEMENTWISE),
                    CubeDim::new_1d(ELEMENTWISE),
                    arg(h, n),
                    arg(&y, n),
                    n as u32,
                );
            }
            y
        };
        DeviceKv {
            k: copy(&self.k),
            v: copy(&self.v),
            ..self.clone()
        }
    }

    /// Writes keys and values `[t, n_head_kv, head_dim]` (f32) at positions `pos..pos + t`
    /// (within `n_ctx`).
    pub fn store<R: Runtime>(
        &self,
        client: &ComputeClient<R>,
        kx: &Handle,
        vx: &Handle,
        t: usize,
        pos: usize,
    ) {
        let n = t * self.n_head_kv * self.head_dim;
        count_launch();
        // SAFETY: `kx`, `vx` hold `n` values and the caches `words()` words; the kernel guards
        // its word index (`< n / 2`) and writes positions `pos..pos + t <= n_ctx`.
        unsafe {
            k::kv_store::launch_unchecked::<R>(
                client,
                cubes_for(n / 2, ELEMENTWISE),
                CubeDim::new_1d(ELEMENTWISE),
                arg(kx, n),
                arg(vx, n),
                arg(&self.k, self.words()),
                arg(&self.v, self.words()),
                t as u32,
                self.n_head_kv as u32,
                self.n_ctx as u32,
                self.head_dim as u32,
                pos as u32,
            );
        }
    }

    /// Causal attention of `q [t, n_head, head_dim]` (positions `pos0..pos0 + t`, stored) over
    /// the cache, as `scores` says: `[t, n_head * head_dim]` values.
    pub fn attention<R: Runtime>(
        &self,
        client: &ComputeClient<R>,
        q: &Handle,
        t: usize,
        n_head: usize,
        pos0: usize,
        scores: &Scores,
    ) -> Handle {
        let n = t * n_head * self.head_dim;
        let out = client.empty(n * 4);
        count_launch();
        // SAFETY: `q` and `out` hold `n` values, the caches `words()` words; the kernel reads
        // positions up to `pos0 + t - 1 < n_ctx` of head `h / (n_head / n_head_kv)`.
        unsafe {
            k::attention::launch_unchecked::<R>(
                client,
                CubeCount::Static(t as u32, n_head as u32, 1),
                CubeDim::new_1d(k::CUBE),
                arg(q, n),
                arg(&self.k, self.words()),
                arg(&self.v, self.words()),
                arg(&out, n),
                n_head as u32,
                self.n_head_kv as u32,
                self.n_ctx as u32,
                pos0 as u32,
                scores.window.unwrap_or(0) as u32,
                scores.scale,
                scores.softcap.unwrap_or(1.0),
                self.head_dim as u32,
                scores.softcap.is_some(),
            );
        }
        out
    }
}

/// Whether the cache kernels take heads of `head_dim` values: even, and at most a cube's units.
pub fn kv_fits(head_dim: usize) -> bool {
    head_dim.is_multiple_of(2) && (2..=k::CUBE as usize).contains(&head_dim)
}

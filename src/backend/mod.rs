//! Burn backends and the operations chord adds to them.
//!
//! The engine is generic over [`ChordBackend`]: a Burn `Backend` plus the operations that Burn
//! does not have in the form chord needs: a product with a GGUF-encoded weight matrix (`qmatmul`),
//! and a KV cache ([`KvCache`]) with its in-place write (`kv_store`) and the causal attention over
//! it (`kv_attention`), of a chosen precision ([`KvType`]), read and written whole for saved
//! session states (`kv_export`, `kv_import`, in the backend-neutral [`KvRows`] layout), forked
//! (`kv_fork`) and measured (`kv_bytes`). A cache is Burn tensors (f32, on Burn ops: the
//! `generic_kv_*` functions, any backend), chord's f16 cache in shared blocks on host memory
//! ([`KvBlocks`], whose attention computes what llama.cpp's CPU backend computes: see
//! [`crate::attn`]), which the CPU backend (burn-flex) uses for f16, or a backend's own cache in
//! device memory ([`DeviceCache`]: the GPU backends' f16 cache); the trait's default operations
//! handle all three.
//!
//! The GPU backends count their kernel launches and host-device transfers per thread
//! ([`traffic`]), which the forward pass adds to its model's counters.

use crate::attn::{Glu, KvBlocks, RopeMode, Scores};
use crate::error::Result;
use crate::model::QWeight;
use crate::quant::Isa;
use burn_tensor::activation::silu;
use burn_tensor::backend::Backend;
use burn_tensor::module::attention;
use burn_tensor::ops::AttentionModuleOptions;
use burn_tensor::{Bool, DType, Tensor, TensorData};
use std::cell::Cell;

#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub mod cube;
mod flex;
#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod gpu;
#[cfg(feature = "cuda")]
pub use gpu::cuda_unavailable;

/// The default CPU backend.
pub type Cpu = burn_flex::Flex;

/// The wgpu backend (Vulkan, Metal, DX12; lavapipe on machines without a GPU), without Burn's
/// fusion: chord's own operations are implemented for `CubeBackend` (see `gpu.rs`).
#[cfg(feature = "wgpu")]
pub type Wgpu = burn_cubecl::CubeBackend<burn_wgpu::WgpuRuntime, f32, i32, u32>;

/// The CUDA backend (NVIDIA GPUs; kernels compiled at run time by NVRTC), without Burn's fusion.
#[cfg(feature = "cuda")]
pub type Cuda = burn_cubecl::CubeBackend<cubecl::cuda::CudaRuntime, f32, i32, u8>;

/// A Burn backend that can run chord's transformer.
pub trait ChordBackend: Backend {
    /// A weight matrix held in the backend's own memory, in the layout its kernels read
    /// ([`ChordBackend::upload`]); `()` where the kernels read the matrix's host bytes (the CPU).
    type Matrix: Send + Sync + 'static;

    /// A copy of `w` in the memory of `device` for [`ChordBackend::qmatmul`], or `None` where
    /// the backend reads `w`'s host bytes (the CPU) or has no kernel for its format.
    fn upload(w: &QWeight, device: &Self::Device) -> Result<Option<Self::Matrix>>;

    /// `x [m, k]` times the transpose of `w` (`rows x k`, GGUF blocks): `[m, rows]`, from the
    /// device copy `on_device` where [`ChordBackend::upload`] made one.
    fn qmatmul(
        x: Tensor<Self, 2>,
        w: &QWeight,
        on_device: Option<&Self::Matrix>,
    ) -> Result<Tensor<Self, 2>>;

    /// `x / sqrt(mean(x^2) + eps) * weight` over the last dimension of `x [t, d]`.
    ///
    /// The default uses Burn ops (an f32 mean); backends override it to round as llama.cpp does.
    fn rms_norm(x: Tensor<Self, 2>, weight: &Tensor<Self, 1>, eps: f32) -> Tensor<Self, 2> {
        let inv = x
            .clone()
            .powi_scalar(2)
            .mean_dim(1)
            .add_scalar(eps)
            .sqrt()
            .recip();
        x * inv * weight.clone().unsqueeze_dim::<2>(0)
    }

    /// `x + r` (the residual add) and its [`ChordBackend::rms_norm`]: `(sum, normed)`.
    ///
    /// The default adds with Burn and calls `rms_norm`; backends override it to do both in one
    /// pass.
    fn add_rms_norm(
        x: Tensor<Self, 2>,
        r: Tensor<Self, 2>,
        weight: &Tensor<Self, 1>,
        eps: f32,
    ) -> (Tensor<Self, 2>, Tensor<Self, 2>) {
        let s = x + r;
        let y = Self::rms_norm(s.clone(), weight, eps);
        (s, y)
    }

    /// A tensor of `shape` holding `values` (row-major) on `device`: the forward pass's way to
    /// hand host values to the backend (counted by the GPU backends, see [`traffic`]).
    fn tensor_from_host<const D: usize>(
        values: Vec<f32>,
        shape: [usize; D],
        device: &Self::Device,
    ) -> Tensor<Self, D> {
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    /// The f32 values of `x` in host memory (counted by the GPU backends, see [`traffic`]).
    fn tensor_to_host<const D: usize>(x: Tensor<Self, D>) -> Result<Vec<f32>> {
        f32_values(x)
    }

    /// The feed-forward's gated activation `act(gate) * up`.
    ///
    /// The default uses Burn ops (GELU in its tanh form); backends override it to round as
    /// llama.cpp does.
    fn glu(gate: Tensor<Self, 2>, up: Tensor<Self, 2>, kind: Glu) -> Tensor<Self, 2> {
        match kind {
            Glu::Silu => silu(gate) * up,
            Glu::Gelu => {
                let inner = gate
                    .clone()
                    .powi_scalar(2)
                    .mul_scalar(0.044715)
                    .add_scalar(1.0);
                let t = (gate.clone() * inner).mul_scalar(0.797_884_6).tanh();
                gate.mul_scalar(0.5) * t.add_scalar(1.0) * up
            }
        }
    }

    /// Rotates pairs of the first `rope_dim` values of each head of `x [t, heads, dim]` (adjacent
    /// values, or the two halves: `mode`) by the angles whose cosines and sines `cos`/`sin` hold
    /// (`[t, 1, rope_dim / 2]`): `(x0 cos - x1 sin, x0 sin + x1 cos)`.
    ///
    /// The default uses Burn ops (rounding each product); backends override it to round as
    /// llama.cpp does.
    fn rope(
        x: Tensor<Self, 3>,
        cos: &Tensor<Self, 3>,
        sin: &Tensor<Self, 3>,
        rope_dim: usize,
        mode: RopeMode,
    ) -> Tensor<Self, 3> {
        let [t, heads, dim] = x.dims();
        let (rot, pass) = if rope_dim < dim {
            (
                x.clone().narrow(2, 0, rope_dim),
                Some(x.narrow(2, rope_dim, dim - rope_dim)),
            )
        } else {
            (x, None)
        };
        let half = rope_dim / 2;
        let (x0, x1) = match mode {
            RopeMode::Normal => {
                let pairs = rot.reshape([t, heads, half, 2]);
                (
                    pairs.clone().narrow(3, 0, 1).squeeze_dim::<3>(3),
                    pairs.narrow(3, 1, 1).squeeze_dim::<3>(3),
                )
            }
            RopeMode::Neox => (rot.clone().narrow(2, 0, half), rot.narrow(2, half, half)),
        };
        let y0 = x0.clone() * cos.clone() - x1.clone() * sin.clone();
        let y1 = x0 * sin.clone() + x1 * cos.clone();
        let rotated = match mode {
            RopeMode::Normal => Tensor::stack::<4>(vec![y0, y1], 3).reshape([t, heads, rope_dim]),
            RopeMode::Neox => Tensor::cat(vec![y0, y1], 2),
        };
        match pass {
            Some(p) => Tensor::cat(vec![rotated, p], 2),
            None => rotated,
        }
    }

    /// An empty cache for `n_head_kv` heads of `head_dim` values at `n_ctx` positions, of
    /// precision `kv` where the backend has it.
    ///
    /// The default keeps f32 tensors whatever `kv` asks ([`generic_kv_cache`]).
    fn kv_cache(
        n_head_kv: usize,
        n_ctx: usize,
        head_dim: usize,
        kv: KvType,
        device: &Self::Device,
    ) -> KvCache<Self> {
        let _ = kv;
        generic_kv_cache(n_head_kv, n_ctx, head_dim, device)
    }

    /// Writes keys and values `[t, n_head_kv, head_dim]` into `cache` at positions `pos..pos + t`.
    fn kv_store(cache: &mut KvCache<Self>, pos: usize, k: Tensor<Self, 3>, v: Tensor<Self, 3>) {
        match cache {
            KvCache::Tensors { k: kc, v: vc } => generic_kv_store(kc, vc, pos, k, v),
            KvCache::Blocks(b) => b.store(pos, &host(k), &host(v)),
            KvCache::Device(c) => c.store(pos, k, v),
        }
    }

    /// Causal dot-product attention of `q [t, n_head, head_dim]` (positions `pos0..pos0 + t`,
    /// already stored in `cache`) over the cached positions up to each query's own (within the
    /// window `scores` may set), scores capped and scaled as `scores` says; query head `h` reads
    /// key/value head `h / (n_head / n_head_kv)`. Returns `[t, n_head * head_dim]`.
    fn kv_attention(
        q: Tensor<Self, 3>,
        cache: &KvCache<Self>,
        pos0: usize,
        scores: &Scores,
    ) -> Tensor<Self, 2> {
        match cache {
            KvCache::Tensors { k, v } => generic_kv_attention(q, k, v, pos0, scores),
            KvCache::Blocks(b) => {
                let [t, n_head, head_dim] = q.dims();
                let device = q.device();
                let dims = b.dims(n_head);
                let out = crate::attn::attention(Isa::active(), &dims, &host(q), b, pos0, scores);
                Tensor::from_data(TensorData::new(out, [t, n_head * head_dim]), &device)
            }
            KvCache::Device(c) => c.attention(q, pos0, scores),
        }
    }

    /// The precision the cache actually holds.
    fn kv_type(cache: &KvCache<Self>) -> KvType {
        match cache {
            KvCache::Tensors { k, .. } if k.dtype() == DType::F16 => KvType::F16,
            KvCache::Tensors { .. } => KvType::F32,
            KvCache::Blocks(_) | KvCache::Device(_) => KvType::F16,
        }
    }

    /// Copies the keys and values of positions `0..n` out of `cache` ([`KvRows`]).
    fn kv_export(cache: &KvCache<Self>, n: usize) -> Result<KvRows> {
        match cache {
            KvCache::Tensors { k, v } => generic_kv_export(k, v, n),
            KvCache::Blocks(b) => {
                let (k, v) = b.export(n);
                Ok(KvRows { k, v })
            }
            KvCache::Device(c) => c.export(n),
        }
    }

    /// Writes `rows` (as [`ChordBackend::kv_export`] made them, `n` positions) into `cache` at
    /// positions `0..n`.
    fn kv_import(cache: &mut KvCache<Self>, n: usize, rows: &KvRows) -> Result<()> {
        match cache {
            KvCache::Tensors { k, v } => generic_kv_import(k, v, n, rows),
            KvCache::Blocks(b) => match b.import(n, &rows.k, &rows.v) {
                true => Ok(()),
                false => crate::bail!(Internal, "KV rows do not fit the cache"),
            },
            KvCache::Device(c) => c.import(n, rows),
        }
    }

    /// A cache holding `cache`'s positions `0..n`, for a forked session: the f16 block cache
    /// shares them with `cache` until either writes ([`KvBlocks::fork`]); tensors are cloned
    /// (Burn shares their storage until the first write, which then copies the whole tensor).
    fn kv_fork(cache: &KvCache<Self>, n: usize) -> KvCache<Self> {
        match cache {
            KvCache::Tensors { k, v } => KvCache::Tensors {
                k: k.clone(),
                v: v.clone(),
            },
            KvCache::Blocks(b) => KvCache::Blocks(b.fork(n)),
            KvCache::Device(c) => KvCache::Device(c.fork(n)),
        }
    }

    /// Forgets the positions from `n` on; the block cache frees its blocks wholly past `n`.
    fn kv_truncate(cache: &mut KvCache<Self>, n: usize) {
        if let KvCache::Blocks(b) = cache {
            b.truncate(n);
        }
    }

    /// Bytes of memory the cache holds, blocks shared with forks counted as their share
    /// ([`KvBlocks::bytes_held`]), tensors whole.
    fn kv_bytes(cache: &KvCache<Self>) -> f64 {
        match cache {
            KvCache::Tensors { k, v } => {
                let n = |t: &Tensor<Self, 4>| t.shape().num_elements() * t.dtype().size();
                (n(k) + n(v)) as f64
            }
            KvCache::Blocks(b) => b.bytes_held(),
            KvCache::Device(c) => c.bytes(),
        }
    }
}

/// [`ChordBackend::qmatmul`] through the host: `x` read back, the CPU kernels over `w`'s bytes,
/// the product uploaded (for backends without a device copy of `w`), counted as a download and
/// an upload ([`traffic`]).
pub fn host_qmatmul<B: Backend>(x: Tensor<B, 2>, w: &QWeight) -> Result<Tensor<B, 2>> {
    let [m, k] = x.dims();
    let device = x.device();
    count_download(m * k * 4);
    count_upload(m * w.rows * 4);
    let xs = f32_values(x)?;
    let mut y = Vec::with_capacity(m * w.rows);
    let y_out = &mut y.spare_capacity_mut()[..m * w.rows];
    crate::quant::matmul_uninit(w.ty, w.layout, w.bytes(), w.rows, k, &xs, m, y_out)?;
    // SAFETY: `matmul_uninit` returned `Ok`, so it wrote all `m * rows` elements.
    unsafe { y.set_len(m * w.rows) };
    Ok(Tensor::from_data(TensorData::new(y, [m, w.rows]), &device))
}

/// The f32 values of the f32 tensor `x`, in host memory (not counted: see
/// [`ChordBackend::tensor_to_host`]).
pub(crate) fn f32_values<B: Backend, const D: usize>(x: Tensor<B, D>) -> Result<Vec<f32>> {
    x.into_data()
        .into_vec::<f32>()
        .map_err(|e| crate::Error::new(crate::ErrorCode::Internal, format!("{e:?}")))
}

/// The f32 values of `x`, in host memory.
fn host<B: Backend, const D: usize>(x: Tensor<B, D>) -> Vec<f32> {
    x.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .unwrap_or_default()
}

/// Precision of the KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvType {
    /// Half precision, as llama.cpp's default cache (what makes chord's logits equal llama.cpp's).
    #[default]
    F16,
    /// Single precision: twice the memory, no rounding of keys and values.
    F32,
}

impl KvType {
    /// Bytes per cached value.
    pub fn size(self) -> usize {
        match self {
            KvType::F16 => 2,
            KvType::F32 => 4,
        }
    }
}

/// One layer's cached keys and values of positions `0..n`, backend-neutral: `k` and `v` each hold
/// `[n_head_kv][n][head_dim]` values of the cache's precision as little-endian bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KvRows {
    /// Keys.
    pub k: Vec<u8>,
    /// Values.
    pub v: Vec<u8>,
}

impl KvRows {
    /// The rows of the first `n` of the `all` positions these rows hold, of `n_head_kv` heads.
    pub fn prefix(&self, all: usize, n: usize, n_head_kv: usize) -> KvRows {
        let cut = |bytes: &[u8]| -> Vec<u8> {
            if all == 0 || n_head_kv == 0 {
                return Vec::new();
            }
            let per_position = bytes.len() / (n_head_kv * all);
            bytes
                .chunks_exact(all * per_position)
                .flat_map(|head| &head[..n * per_position])
                .copied()
                .collect()
        };
        KvRows {
            k: cut(&self.k),
            v: cut(&self.v),
        }
    }
}

/// An f32 cache of `[1, n_head_kv, n_ctx, head_dim]` tensors for keys and values, on Burn ops.
pub fn generic_kv_cache<B: Backend>(
    n_head_kv: usize,
    n_ctx: usize,
    head_dim: usize,
    device: &B::Device,
) -> KvCache<B> {
    let shape = [1, n_head_kv, n_ctx, head_dim];
    KvCache::Tensors {
        k: Tensor::zeros(shape, device),
        v: Tensor::zeros(shape, device),
    }
}

/// [`ChordBackend::kv_store`] for a [`generic_kv_cache`], on Burn ops.
pub fn generic_kv_store<B: Backend>(
    kc: &mut Tensor<B, 4>,
    vc: &mut Tensor<B, 4>,
    pos: usize,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
) {
    let [t, h, d] = k.dims();
    let put = |c: &mut Tensor<B, 4>, x: Tensor<B, 3>| {
        let old = std::mem::replace(c, Tensor::empty([0, 0, 0, 0], &x.device()));
        let x = x.swap_dims(0, 1).unsqueeze_dim::<4>(0);
        *c = old.slice_assign([0..1, 0..h, pos..pos + t, 0..d], x);
    };
    put(kc, k);
    put(vc, v);
}

/// [`ChordBackend::kv_attention`] over a [`generic_kv_cache`], on Burn's attention op.
pub fn generic_kv_attention<B: Backend>(
    q: Tensor<B, 3>,
    kc: &Tensor<B, 4>,
    vc: &Tensor<B, 4>,
    pos0: usize,
    scores: &Scores,
) -> Tensor<B, 2> {
    let [t, n_head, dim] = q.dims();
    let n_head_kv = kc.dims()[1];
    let group = n_head / n_head_kv;
    let s = pos0 + t;
    let device = q.device();
    let keys = kc.clone().narrow(2, 0, s);
    let values = vc.clone().narrow(2, 0, s);
    // A sliding window needs an explicit mask (`true`: not seen), causal included.
    let mask = scores.window.map(|_| {
        let seen = (0..t).flat_map(|i| {
            let (lo, p) = (scores.first_key(pos0 + i), pos0 + i);
            (0..s).map(move |j| j < lo || j > p)
        });
        let mask = TensorData::new(seen.collect::<Vec<bool>>(), [1, 1, t, s]);
        Tensor::<B, 4, Bool>::from_data(mask, &device)
    });
    let masked = mask.is_some();
    let opts = |is_causal| AttentionModuleOptions {
        scale: Some(scores.scale as f64),
        softcap: scores.softcap.map(|c| c as f64),
        is_causal: is_causal && !masked,
    };
    if t == 1 {
        // One query per head: the query heads that share a key/value head become the rows of
        // one attention call, so the cache is used as it is, without repeating it per head.
        let q = q.reshape([1, n_head_kv, group, dim]);
        let mask = mask.map(|m| m.expand([1, n_head_kv, group, s]));
        let out = attention(q, keys, values, mask, None, opts(false));
        return out.reshape([1, n_head * dim]);
    }
    let repeat = |kv: Tensor<B, 4>| {
        kv.reshape([1, n_head_kv, 1, s, dim])
            .expand([1, n_head_kv, group, s, dim])
            .reshape([1, n_head, s, dim])
    };
    let q = q.swap_dims(0, 1).unsqueeze_dim::<4>(0);
    let mask = mask.map(|m| m.expand([1, n_head, t, s]));
    let out = attention(q, repeat(keys), repeat(values), mask, None, opts(true));
    out.squeeze_dim::<3>(0)
        .swap_dims(0, 1)
        .reshape([t, n_head * dim])
}

/// [`ChordBackend::kv_export`] for a [`generic_kv_cache`] (any dtype, `[1, h, n_ctx, d]` layout).
pub fn generic_kv_export<B: Backend>(
    kc: &Tensor<B, 4>,
    vc: &Tensor<B, 4>,
    n: usize,
) -> Result<KvRows> {
    let read = |c: &Tensor<B, 4>| -> Result<Vec<u8>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let data = c.clone().narrow(2, 0, n).into_data();
        Ok(data.as_bytes().to_vec())
    };
    Ok(KvRows {
        k: read(kc)?,
        v: read(vc)?,
    })
}

/// [`ChordBackend::kv_import`] for a [`generic_kv_cache`].
pub fn generic_kv_import<B: Backend>(
    kc: &mut Tensor<B, 4>,
    vc: &mut Tensor<B, 4>,
    n: usize,
    rows: &KvRows,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let put = |c: &mut Tensor<B, 4>, bytes: &[u8]| -> Result<()> {
        let [_, h, _, d] = c.dims();
        let dtype = c.dtype();
        if bytes.len() != h * n * d * dtype.size() {
            crate::bail!(
                Internal,
                "KV rows of {} bytes do not fit the cache",
                bytes.len()
            );
        }
        let data = TensorData::from_bytes_vec(bytes.to_vec(), [1, h, n, d], dtype);
        let device = c.device();
        let x = Tensor::<B, 4>::from_data(data, &device);
        let old = std::mem::replace(c, Tensor::empty([0, 0, 0, 0], &device));
        *c = old.slice_assign([0..1, 0..h, 0..n, 0..d], x);
        Ok(())
    };
    put(kc, &rows.k)?;
    put(vc, &rows.v)
}

/// One layer's key/value cache, in the form the backend's `kv_cache` chose.
pub enum KvCache<B: Backend> {
    /// Tensors `[1, n_head_kv, n_ctx, head_dim]` of keys and values (f32), on Burn ops: any
    /// backend.
    Tensors {
        /// Keys.
        k: Tensor<B, 4>,
        /// Values.
        v: Tensor<B, 4>,
    },
    /// chord's f16 cache in host memory, computing llama.cpp's attention, its blocks shared
    /// between forked sessions ([`KvBlocks`]): the CPU backend's.
    Blocks(KvBlocks),
    /// A backend's own cache in device memory (the GPU backends' f16 cache).
    Device(Box<dyn DeviceCache<B>>),
}

/// A KV cache that a backend keeps in its own memory, with its own kernels: the operations of
/// [`ChordBackend`]'s `kv_*` methods on it.
pub trait DeviceCache<B: Backend>: Send + Sync {
    /// Writes keys and values `[t, n_head_kv, head_dim]` at positions `pos..pos + t`.
    fn store(&mut self, pos: usize, k: Tensor<B, 3>, v: Tensor<B, 3>);
    /// [`ChordBackend::kv_attention`] over this cache.
    fn attention(&self, q: Tensor<B, 3>, pos0: usize, scores: &Scores) -> Tensor<B, 2>;
    /// Positions `0..n` as [`KvRows`].
    fn export(&self, n: usize) -> Result<KvRows>;
    /// Writes `rows` at positions `0..n`.
    fn import(&mut self, n: usize, rows: &KvRows) -> Result<()>;
    /// A copy holding positions `0..n`, for a forked session.
    fn fork(&self, n: usize) -> Box<dyn DeviceCache<B>>;
    /// Bytes of device memory the cache holds.
    fn bytes(&self) -> f64;
}

/// Kernel launches and host-device transfers that a GPU backend made on one thread: what the
/// forward pass reports per token ([`traffic`]). The CPU backend counts nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Kernels launched (chord's own: the Burn ops some architectures still use are not counted).
    pub launches: u64,
    /// Copies from host to device memory.
    pub uploads: u64,
    /// Bytes of those.
    pub upload_bytes: u64,
    /// Copies from device to host memory.
    pub downloads: u64,
    /// Bytes of those.
    pub download_bytes: u64,
}

impl Traffic {
    /// `self` and `other` counted together.
    pub fn plus(self, other: Traffic) -> Traffic {
        Traffic {
            launches: self.launches + other.launches,
            uploads: self.uploads + other.uploads,
            upload_bytes: self.upload_bytes + other.upload_bytes,
            downloads: self.downloads + other.downloads,
            download_bytes: self.download_bytes + other.download_bytes,
        }
    }

    /// What was counted between `before` and `self`.
    pub fn since(self, before: Traffic) -> Traffic {
        Traffic {
            launches: self.launches - before.launches,
            uploads: self.uploads - before.uploads,
            upload_bytes: self.upload_bytes - before.upload_bytes,
            downloads: self.downloads - before.downloads,
            download_bytes: self.download_bytes - before.download_bytes,
        }
    }
}

thread_local! {
    static TRAFFIC: Cell<Traffic> = const {
        Cell::new(Traffic {
            launches: 0,
            uploads: 0,
            upload_bytes: 0,
            downloads: 0,
            download_bytes: 0,
        })
    };
}

/// The launches and transfers counted on this thread so far.
pub fn traffic() -> Traffic {
    TRAFFIC.with(Cell::get)
}

/// Changes this thread's counters.
#[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(dead_code))]
fn count(f: impl FnOnce(&mut Traffic)) {
    TRAFFIC.with(|c| {
        let mut t = c.get();
        f(&mut t);
        c.set(t);
    });
}

/// Counts one kernel launch.
#[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(dead_code))]
pub(crate) fn count_launch() {
    count(|t| t.launches += 1);
}

/// Counts one upload of `bytes`.
#[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(dead_code))]
pub(crate) fn count_upload(bytes: usize) {
    count(|t| {
        t.uploads += 1;
        t.upload_bytes += bytes as u64;
    });
}

/// Counts one download of `bytes`.
#[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(dead_code))]
pub(crate) fn count_download(bytes: usize) {
    count(|t| {
        t.downloads += 1;
        t.download_bytes += bytes as u64;
    });
}

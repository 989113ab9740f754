//! Burn backends and the operations chord adds to them.
//!
//! The engine is generic over [`ChordBackend`]: a Burn `Backend` plus the operations that Burn
//! does not have in the form chord needs: a product with a GGUF-encoded weight matrix (`qmatmul`),
//! and a KV cache ([`KvCache`]) with its in-place write (`kv_store`) and the causal attention over
//! it (`kv_attention`). Every backend gets a portable default (Burn ops, or host memory); the CPU
//! backend (burn-flex) runs them on its own storage without copies, its attention computing what
//! llama.cpp's CPU backend computes (see [`crate::attn`]).

use crate::error::Result;
use crate::model::QWeight;
use burn_tensor::activation::silu;
use burn_tensor::backend::Backend;
use burn_tensor::module::attention;
use burn_tensor::ops::AttentionModuleOptions;
use burn_tensor::{Tensor, TensorData};

mod flex;

/// The default CPU backend.
pub type Cpu = burn_flex::Flex;

/// The wgpu backend (Vulkan, Metal, DX12; llvmpipe on machines without a GPU).
#[cfg(feature = "wgpu")]
pub type Wgpu = burn_wgpu::Wgpu;

/// A Burn backend that can run chord's transformer.
pub trait ChordBackend: Backend {
    /// `x [m, k]` times the transpose of `w` (`rows x k`, GGUF blocks): `[m, rows]`.
    ///
    /// The default reads `x` back to the host and runs the CPU kernels; backends override it.
    fn qmatmul(x: Tensor<Self, 2>, w: &QWeight) -> Result<Tensor<Self, 2>> {
        let [m, k] = x.dims();
        let device = x.device();
        let xs = x
            .into_data()
            .into_vec::<f32>()
            .map_err(|e| crate::Error::new(crate::ErrorCode::Internal, format!("{e:?}")))?;
        let mut y = vec![0f32; m * w.rows];
        crate::quant::matmul(w.ty, w.bytes(), w.rows, k, &xs, m, &mut y)?;
        Ok(Tensor::from_data(TensorData::new(y, [m, w.rows]), &device))
    }

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

    /// The feed-forward's gated activation `silu(gate) * up`.
    fn swiglu(gate: Tensor<Self, 2>, up: Tensor<Self, 2>) -> Tensor<Self, 2> {
        silu(gate) * up
    }

    /// Rotates adjacent pairs (GGML's "normal" RoPE) of the first `rope_dim` values of each head
    /// of `x [t, heads, dim]` by the angles whose cosines and sines `cos`/`sin` hold
    /// (`[t, 1, rope_dim / 2]`): `(x0 cos - x1 sin, x0 sin + x1 cos)`.
    ///
    /// The default uses Burn ops (rounding each product); backends override it to round as
    /// llama.cpp does.
    fn rope(
        x: Tensor<Self, 3>,
        cos: &Tensor<Self, 3>,
        sin: &Tensor<Self, 3>,
        rope_dim: usize,
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
        let pairs = rot.reshape([t, heads, rope_dim / 2, 2]);
        let x0 = pairs.clone().narrow(3, 0, 1).squeeze_dim::<3>(3);
        let x1 = pairs.narrow(3, 1, 1).squeeze_dim::<3>(3);
        let y0 = x0.clone() * cos.clone() - x1.clone() * sin.clone();
        let y1 = x0 * sin.clone() + x1 * cos.clone();
        let rotated = Tensor::stack::<4>(vec![y0, y1], 3).reshape([t, heads, rope_dim]);
        match pass {
            Some(p) => Tensor::cat(vec![rotated, p], 2),
            None => rotated,
        }
    }

    /// A zeroed cache for `n_head_kv` heads of `head_dim` values at `n_ctx` positions.
    ///
    /// The default keeps f32 `[1, n_head_kv, n_ctx, head_dim]` tensors for both keys and values.
    fn kv_cache(
        n_head_kv: usize,
        n_ctx: usize,
        head_dim: usize,
        device: &Self::Device,
    ) -> KvCache<Self> {
        let shape = [1, n_head_kv, n_ctx, head_dim];
        KvCache {
            k: Tensor::zeros(shape, device),
            v: Tensor::zeros(shape, device),
        }
    }

    /// Writes keys and values `[t, n_head_kv, head_dim]` into `cache` at positions `pos..pos + t`.
    fn kv_store(cache: &mut KvCache<Self>, pos: usize, k: Tensor<Self, 3>, v: Tensor<Self, 3>) {
        let [t, h, d] = k.dims();
        let put = |c: &mut Tensor<Self, 4>, x: Tensor<Self, 3>| {
            let old = std::mem::replace(c, Tensor::empty([0, 0, 0, 0], &x.device()));
            let x = x.swap_dims(0, 1).unsqueeze_dim::<4>(0);
            *c = old.slice_assign([0..1, 0..h, pos..pos + t, 0..d], x);
        };
        put(&mut cache.k, k);
        put(&mut cache.v, v);
    }

    /// Causal scaled dot-product attention of `q [t, n_head, head_dim]` (positions
    /// `pos0..pos0 + t`, already stored in `cache`) over the cached positions up to each query's
    /// own; query head `h` reads key/value head `h / (n_head / n_head_kv)`. Returns
    /// `[t, n_head * head_dim]`.
    fn kv_attention(
        q: Tensor<Self, 3>,
        cache: &KvCache<Self>,
        pos0: usize,
        scale: f32,
    ) -> Tensor<Self, 2> {
        let [t, n_head, dim] = q.dims();
        let n_head_kv = cache.k.dims()[1];
        let group = n_head / n_head_kv;
        let s = pos0 + t;
        let keys = cache.k.clone().narrow(2, 0, s);
        let values = cache.v.clone().narrow(2, 0, s);
        let opts = |is_causal| AttentionModuleOptions {
            scale: Some(scale as f64),
            softcap: None,
            is_causal,
        };
        if t == 1 {
            // One query per head: the query heads that share a key/value head become the rows of
            // one attention call, so the cache is used as it is, without repeating it per head.
            let q = q.reshape([1, n_head_kv, group, dim]);
            let out = attention(q, keys, values, None, None, opts(false));
            return out.reshape([1, n_head * dim]);
        }
        let repeat = |kv: Tensor<Self, 4>| {
            kv.reshape([1, n_head_kv, 1, s, dim])
                .expand([1, n_head_kv, group, s, dim])
                .reshape([1, n_head, s, dim])
        };
        let q = q.swap_dims(0, 1).unsqueeze_dim::<4>(0);
        let out = attention(q, repeat(keys), repeat(values), None, None, opts(true));
        out.squeeze_dim::<3>(0)
            .swap_dims(0, 1)
            .reshape([t, n_head * dim])
    }
}

/// One layer's key/value cache: two tensors whose dtype and layout the backend chooses (its
/// `kv_cache` documents them). Only that backend's `kv_store` and `kv_attention` read or write them.
pub struct KvCache<B: Backend> {
    /// Keys.
    pub k: Tensor<B, 4>,
    /// Values.
    pub v: Tensor<B, 4>,
}

#[cfg(feature = "wgpu")]
impl ChordBackend for Wgpu {}

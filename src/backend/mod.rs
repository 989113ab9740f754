//! Burn backends and the operations chord adds to them.
//!
//! The engine is generic over [`ChordBackend`]: a Burn `Backend` plus the two operations that Burn
//! does not have in the form chord needs, a product with a GGUF-encoded weight matrix (`qmatmul`)
//! and an in-place KV-cache write. Every backend gets a portable default (through host memory);
//! the CPU backend (burn-flex) runs both on its own storage without copies.

use crate::error::Result;
use crate::model::QWeight;
use burn_tensor::backend::Backend;
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

    /// Writes `value [1, heads, t, dim]` into `cache [1, heads, n_ctx, dim]` at positions
    /// `pos..pos + t` and returns the cache.
    fn kv_write(cache: Tensor<Self, 4>, pos: usize, value: Tensor<Self, 4>) -> Tensor<Self, 4> {
        let [_, h, t, d] = value.dims();
        cache.slice_assign([0..1, 0..h, pos..pos + t, 0..d], value)
    }
}

#[cfg(feature = "wgpu")]
impl ChordBackend for Wgpu {}

//! [`ChordBackend`] for burn-flex: quantized products and llama.cpp's arithmetic for norms,
//! activations and RoPE ([`crate::attn`]) on the tensors' own storage, and the f16 block KV cache.

use super::{ChordBackend, Cpu, KvCache, KvType};
use crate::attn::{self, Glu, RopeMode};
use crate::error::Result;
use crate::model::QWeight;
use crate::quant::Isa;
use burn_flex::FlexTensor;
use burn_tensor::{Tensor, TensorData, TensorPrimitive};

fn flex(t: TensorPrimitive<Cpu>) -> FlexTensor {
    match t {
        TensorPrimitive::Float(t) => t,
        TensorPrimitive::QFloat(_) => unreachable!("chord never creates Burn-quantized tensors"),
    }
}

impl ChordBackend for Cpu {
    /// The CPU kernels read the mapped (or packed) host bytes: nothing is uploaded.
    type Matrix = ();

    fn upload(_: &QWeight, _: &Self::Device) -> Result<Option<()>> {
        Ok(None)
    }

    fn qmatmul(x: Tensor<Self, 2>, w: &QWeight, _: Option<&()>) -> Result<Tensor<Self, 2>> {
        let [m, k] = x.dims();
        let x = flex(x.into_primitive()).to_contiguous();
        let xs = x.storage::<f32>();
        let xs = &xs[x.layout().start_offset()..][..m * k];
        // Not zeroed first: the product writes every element.
        let mut y = Vec::with_capacity(m * w.rows);
        let y_out = y.spare_capacity_mut();
        crate::quant::matmul_uninit(w.ty, w.layout, w.bytes(), w.rows, k, xs, m, y_out)?;
        // SAFETY: `matmul_uninit` returned `Ok`, so it wrote all `m * rows` elements.
        unsafe { y.set_len(m * w.rows) };
        let out = FlexTensor::from_data(TensorData::new(y, [m, w.rows]));
        Ok(Tensor::from_primitive(TensorPrimitive::Float(out)))
    }

    /// llama.cpp's `rms_norm` followed by its `mul` with the weight: the squares (rounded to f32)
    /// summed in order in f64, `mean = (float)(sum / d)`, `scale = 1.0f / sqrtf(mean + eps)`,
    /// then `x * scale * w`.
    fn rms_norm(x: Tensor<Self, 2>, weight: &Tensor<Self, 1>, eps: f32) -> Tensor<Self, 2> {
        let [t, d] = x.dims();
        let x = contiguous(x);
        let w = contiguous(weight.clone());
        let w = f32s(&w);
        let mut y = f32s(&x).to_vec();
        crate::team::for_rows(&mut y, d, &|_, rows| {
            for row in rows.chunks_exact_mut(d) {
                let sum: f64 = row.iter().map(|v| (v * v) as f64).sum();
                let mean = (sum / d as f64) as f32;
                let scale = 1.0 / (mean + eps).sqrt();
                for (v, w) in row.iter_mut().zip(w) {
                    *v = *v * scale * w;
                }
            }
        });
        let out = FlexTensor::from_data(TensorData::new(y, [t, d]));
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    /// llama.cpp's `ggml_vec_swiglu_f32` and `ggml_vec_geglu_f32` ([`attn::glu`]).
    fn glu(gate: Tensor<Self, 2>, up: Tensor<Self, 2>, kind: Glu) -> Tensor<Self, 2> {
        let [t, d] = gate.dims();
        let (gate, up) = (contiguous(gate), contiguous(up));
        let mut y = vec![0f32; t * d];
        let (gate, up) = (f32s(&gate), f32s(&up));
        let isa = Isa::active();
        crate::team::for_rows(&mut y, d, &|r0, rows| {
            let at = r0 * d..r0 * d + rows.len();
            attn::glu(isa, kind, &gate[at.clone()], &up[at], rows);
        });
        let out = FlexTensor::from_data(TensorData::new(y, [t, d]));
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    /// llama.cpp's `rotate_pairs` ([`attn::rope_row`]).
    fn rope(
        x: Tensor<Self, 3>,
        cos: &Tensor<Self, 3>,
        sin: &Tensor<Self, 3>,
        rope_dim: usize,
        mode: RopeMode,
    ) -> Tensor<Self, 3> {
        let [t, heads, dim] = x.dims();
        let half = rope_dim / 2;
        let x = contiguous(x);
        let (cos, sin) = (contiguous(cos.clone()), contiguous(sin.clone()));
        let (cos, sin) = (f32s(&cos), f32s(&sin));
        let mut y = f32s(&x).to_vec();
        let isa = Isa::active();
        crate::team::for_rows(&mut y, heads * dim, &|r0, rows| {
            for (i, row) in (r0..).zip(rows.chunks_exact_mut(heads * dim)) {
                let (c, s) = (&cos[i * half..][..half], &sin[i * half..][..half]);
                attn::rope_row(isa, row, dim, rope_dim, mode, c, s);
            }
        });
        let out = FlexTensor::from_data(TensorData::new(y, [t, heads, dim]));
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    /// The f16 block cache ([`crate::attn::KvBlocks`], llama.cpp's layout in blocks of
    /// positions), whose attention computes llama.cpp's; an f32 cache (`kv` [`KvType::F32`]) is
    /// the generic one ([`super::generic_kv_cache`]), run on Burn ops.
    fn kv_cache(
        n_head_kv: usize,
        n_ctx: usize,
        head_dim: usize,
        kv: KvType,
        device: &Self::Device,
    ) -> KvCache<Self> {
        match kv {
            KvType::F32 => super::generic_kv_cache(n_head_kv, n_ctx, head_dim, device),
            KvType::F16 => KvCache::Blocks(attn::KvBlocks::new(n_head_kv, head_dim, n_ctx)),
        }
    }
}

/// The tensor's storage in contiguous row-major order.
fn contiguous<const D: usize>(x: Tensor<Cpu, D>) -> FlexTensor {
    flex(x.into_primitive()).to_contiguous()
}

/// The f32 values of a contiguous tensor.
fn f32s(x: &FlexTensor) -> &[f32] {
    let n = x.layout().shape().num_elements();
    &x.storage::<f32>()[x.layout().start_offset()..][..n]
}

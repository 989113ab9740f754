//! [`ChordBackend`] for burn-flex: quantized products, the f16 KV cache and llama.cpp's attention
//! arithmetic ([`crate::attn`]), all on the tensors' own storage.

use super::{ChordBackend, Cpu, KvCache};
use crate::attn::{self, AttnDims};
use crate::error::Result;
use crate::model::QWeight;
use crate::quant::Isa;
use burn_flex::FlexTensor;
use burn_tensor::{DType, Shape, Tensor, TensorData, TensorPrimitive};
use half::f16;

fn flex(t: TensorPrimitive<Cpu>) -> FlexTensor {
    match t {
        TensorPrimitive::Float(t) => t,
        TensorPrimitive::QFloat(_) => unreachable!("chord never creates Burn-quantized tensors"),
    }
}

impl ChordBackend for Cpu {
    fn qmatmul(x: Tensor<Self, 2>, w: &QWeight) -> Result<Tensor<Self, 2>> {
        let [m, k] = x.dims();
        let x = flex(x.into_primitive()).to_contiguous();
        let xs = x.storage::<f32>();
        let xs = &xs[x.layout().start_offset()..][..m * k];
        let mut y = vec![0f32; m * w.rows];
        crate::quant::matmul(w.ty, w.bytes(), w.rows, k, xs, m, &mut y)?;
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
        for row in y.chunks_exact_mut(d) {
            let sum: f64 = row.iter().map(|v| (v * v) as f64).sum();
            let mean = (sum / d as f64) as f32;
            let scale = 1.0 / (mean + eps).sqrt();
            for (v, w) in row.iter_mut().zip(w) {
                *v = *v * scale * w;
            }
        }
        let out = FlexTensor::from_data(TensorData::new(y, [t, d]));
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    /// llama.cpp's `ggml_vec_swiglu_f32` ([`attn::swiglu`]).
    fn swiglu(gate: Tensor<Self, 2>, up: Tensor<Self, 2>) -> Tensor<Self, 2> {
        let [t, d] = gate.dims();
        let (gate, up) = (contiguous(gate), contiguous(up));
        let mut y = vec![0f32; t * d];
        attn::swiglu(Isa::best(), f32s(&gate), f32s(&up), &mut y);
        let out = FlexTensor::from_data(TensorData::new(y, [t, d]));
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    /// llama.cpp's `rotate_pairs` as GCC compiles it for x86-64 with FMA (`-ffp-contract=fast`):
    /// `fma(x0, cos, -(x1 * sin))` and `fma(x0, sin, x1 * cos)`.
    fn rope(
        x: Tensor<Self, 3>,
        cos: &Tensor<Self, 3>,
        sin: &Tensor<Self, 3>,
        rope_dim: usize,
    ) -> Tensor<Self, 3> {
        let [t, heads, dim] = x.dims();
        let half = rope_dim / 2;
        let x = contiguous(x);
        let (cos, sin) = (contiguous(cos.clone()), contiguous(sin.clone()));
        let (cos, sin) = (f32s(&cos), f32s(&sin));
        let mut y = f32s(&x).to_vec();
        for (i, row) in y.chunks_exact_mut(heads * dim).enumerate() {
            let (c, s) = (&cos[i * half..][..half], &sin[i * half..][..half]);
            for head in row.chunks_exact_mut(dim) {
                for (p, pair) in head[..rope_dim].chunks_exact_mut(2).enumerate() {
                    let (x0, x1) = (pair[0], pair[1]);
                    pair[0] = x0.mul_add(c[p], -(x1 * s[p]));
                    pair[1] = x0.mul_add(s[p], x1 * c[p]);
                }
            }
        }
        let out = FlexTensor::from_data(TensorData::new(y, [t, heads, dim]));
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    /// f16 tensors, as llama.cpp's default cache: keys `[1, n_head_kv, n_ctx, head_dim]`, values
    /// transposed `[1, n_head_kv, head_dim, v_stride]` ([`AttnDims::v_stride`]).
    fn kv_cache(
        n_head_kv: usize,
        n_ctx: usize,
        head_dim: usize,
        _device: &Self::Device,
    ) -> KvCache<Self> {
        let dims = dims(1, n_head_kv, head_dim, n_ctx);
        let mk = |shape: [usize; 4]| {
            Tensor::from_primitive(TensorPrimitive::Float(FlexTensor::zeros(
                Shape::from(shape),
                DType::F16,
            )))
        };
        KvCache {
            k: mk([1, n_head_kv, n_ctx, head_dim]),
            v: mk([1, n_head_kv, head_dim, dims.v_stride()]),
        }
    }

    fn kv_store(cache: &mut KvCache<Self>, pos: usize, k: Tensor<Self, 3>, v: Tensor<Self, 3>) {
        let [_, n_head_kv, n_ctx, head_dim] = cache.k.dims();
        let dims = dims(1, n_head_kv, head_dim, n_ctx);
        let take = |c: &mut Tensor<Self, 4>| {
            let empty = Tensor::from_primitive(TensorPrimitive::Float(FlexTensor::zeros(
                Shape::from([0, 0, 0, 0]),
                DType::F16,
            )));
            flex(std::mem::replace(c, empty).into_primitive())
        };
        let (mut kc, mut vc) = (take(&mut cache.k), take(&mut cache.v));
        let (k, v) = (contiguous(k), contiguous(v));
        // The session owns its cache exclusively, so this writes in place; a shared cache would be
        // copied first (copy-on-write), which is still correct.
        attn::store_kv(
            &dims,
            kc.storage_mut::<f16>(),
            vc.storage_mut::<f16>(),
            pos,
            f32s(&k),
            f32s(&v),
        );
        cache.k = Tensor::from_primitive(TensorPrimitive::Float(kc));
        cache.v = Tensor::from_primitive(TensorPrimitive::Float(vc));
    }

    fn kv_attention(
        q: Tensor<Self, 3>,
        cache: &KvCache<Self>,
        pos0: usize,
        scale: f32,
    ) -> Tensor<Self, 2> {
        let [t, n_head, head_dim] = q.dims();
        let [_, n_head_kv, n_ctx, _] = cache.k.dims();
        let dims = dims(n_head, n_head_kv, head_dim, n_ctx);
        let q = contiguous(q);
        let kc = flex(cache.k.clone().into_primitive());
        let vc = flex(cache.v.clone().into_primitive());
        let out = attn::attention(
            Isa::best(),
            &dims,
            f32s(&q),
            kc.storage::<f16>(),
            vc.storage::<f16>(),
            pos0,
            scale,
        );
        let out = FlexTensor::from_data(TensorData::new(out, [t, n_head * head_dim]));
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }
}

fn dims(n_head: usize, n_head_kv: usize, head_dim: usize, n_ctx: usize) -> AttnDims {
    AttnDims {
        n_head,
        n_head_kv,
        head_dim,
        n_ctx,
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

//! [`ChordBackend`] for burn-flex: quantized products, the f16 KV cache and llama.cpp's attention
//! arithmetic ([`crate::attn`]), all on the tensors' own storage.

use super::{ChordBackend, Cpu, KvCache, KvRows, KvType};
use crate::attn::{self, AttnDims, Glu, RopeMode, Scores};
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
        // Not zeroed first: the product writes every element.
        let mut y = Vec::with_capacity(m * w.rows);
        crate::quant::matmul_uninit(w.ty, w.bytes(), w.rows, k, xs, m, y.spare_capacity_mut())?;
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

    /// f16 tensors, as llama.cpp's default cache: keys `[1, n_head_kv, n_ctx, head_dim]`, values
    /// transposed `[1, n_head_kv, head_dim, v_stride]` ([`AttnDims::v_stride`]).
    /// An f32 cache (`kv` [`KvType::F32`]) is the generic one ([`super::generic_kv_cache`]), run
    /// on Burn ops.
    fn kv_cache(
        n_head_kv: usize,
        n_ctx: usize,
        head_dim: usize,
        kv: KvType,
        device: &Self::Device,
    ) -> KvCache<Self> {
        if kv == KvType::F32 {
            return super::generic_kv_cache(n_head_kv, n_ctx, head_dim, device);
        }
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
        if Self::kv_type(cache) == KvType::F32 {
            return super::generic_kv_store(cache, pos, k, v);
        }
        let [_, n_head_kv, n_ctx, head_dim] = cache.k.dims();
        let dims = dims(1, n_head_kv, head_dim, n_ctx);
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
        scores: &Scores,
    ) -> Tensor<Self, 2> {
        if Self::kv_type(cache) == KvType::F32 {
            return super::generic_kv_attention(q, cache, pos0, scores);
        }
        let [t, n_head, head_dim] = q.dims();
        let [_, n_head_kv, n_ctx, _] = cache.k.dims();
        let dims = dims(n_head, n_head_kv, head_dim, n_ctx);
        let q = contiguous(q);
        let kc = flex(cache.k.clone().into_primitive());
        let vc = flex(cache.v.clone().into_primitive());
        let out = attn::attention(
            Isa::active(),
            &dims,
            f32s(&q),
            kc.storage::<f16>(),
            vc.storage::<f16>(),
            pos0,
            scores,
        );
        let out = FlexTensor::from_data(TensorData::new(out, [t, n_head * head_dim]));
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    /// The f16 cache's values are read back from their transposed layout.
    fn kv_export(cache: &KvCache<Self>, n: usize) -> Result<KvRows> {
        if Self::kv_type(cache) == KvType::F32 {
            return super::generic_kv_export(cache, n);
        }
        let [_, h, n_ctx, d] = cache.k.dims();
        let vs = dims(1, h, d, n_ctx).v_stride();
        let kc = flex(cache.k.clone().into_primitive());
        let vc = flex(cache.v.clone().into_primitive());
        let (ks, vsto) = (kc.storage::<f16>(), vc.storage::<f16>());
        let mut k = Vec::with_capacity(h * n * d * 2);
        let mut v = Vec::with_capacity(h * n * d * 2);
        for hh in 0..h {
            for x in &ks[hh * n_ctx * d..][..n * d] {
                k.extend_from_slice(&x.to_bits().to_le_bytes());
            }
            for p in 0..n {
                for c in 0..d {
                    let x = vsto[(hh * d + c) * vs + p];
                    v.extend_from_slice(&x.to_bits().to_le_bytes());
                }
            }
        }
        Ok(KvRows { k, v })
    }

    fn kv_import(cache: &mut KvCache<Self>, n: usize, rows: &KvRows) -> Result<()> {
        if Self::kv_type(cache) == KvType::F32 {
            return super::generic_kv_import(cache, n, rows);
        }
        let [_, h, n_ctx, d] = cache.k.dims();
        let vs = dims(1, h, d, n_ctx).v_stride();
        if n > n_ctx || rows.k.len() != h * n * d * 2 || rows.v.len() != rows.k.len() {
            crate::bail!(Internal, "KV rows do not fit the cache");
        }
        let half =
            |b: &[u8], i: usize| f16::from_bits(u16::from_le_bytes([b[2 * i], b[2 * i + 1]]));
        let (mut kc, mut vc) = (take(&mut cache.k), take(&mut cache.v));
        {
            let ks = kc.storage_mut::<f16>();
            let vsto = vc.storage_mut::<f16>();
            for hh in 0..h {
                for i in 0..n * d {
                    ks[hh * n_ctx * d + i] = half(&rows.k, hh * n * d + i);
                }
                for p in 0..n {
                    for c in 0..d {
                        vsto[(hh * d + c) * vs + p] = half(&rows.v, (hh * n + p) * d + c);
                    }
                }
            }
        }
        cache.k = Tensor::from_primitive(TensorPrimitive::Float(kc));
        cache.v = Tensor::from_primitive(TensorPrimitive::Float(vc));
        Ok(())
    }
}

/// Moves the f16 storage out of a cache tensor (leaving an empty one), to write it in place.
fn take(c: &mut Tensor<Cpu, 4>) -> FlexTensor {
    let empty = Tensor::from_primitive(TensorPrimitive::Float(FlexTensor::zeros(
        Shape::from([0, 0, 0, 0]),
        DType::F16,
    )));
    flex(std::mem::replace(c, empty).into_primitive())
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

//! [`ChordBackend`] for burn-flex: quantized products and cache writes on the tensors' own storage.

use super::{ChordBackend, Cpu};
use crate::error::Result;
use crate::model::QWeight;
use burn_flex::FlexTensor;
use burn_tensor::{Tensor, TensorData, TensorPrimitive};

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

    fn kv_write(cache: Tensor<Self, 4>, pos: usize, value: Tensor<Self, 4>) -> Tensor<Self, 4> {
        let [_, heads, n_ctx, dim] = cache.dims();
        let [_, _, t, _] = value.dims();
        let mut c = flex(cache.into_primitive());
        let v = flex(value.into_primitive()).to_contiguous();
        let src = &v.storage::<f32>()[v.layout().start_offset()..][..heads * t * dim];
        // The session owns its cache exclusively, so this writes in place; a shared cache would be
        // copied first (copy-on-write), which is still correct.
        let dst = c.storage_mut::<f32>();
        for h in 0..heads {
            let d0 = (h * n_ctx + pos) * dim;
            for (o, i) in dst[d0..d0 + t * dim]
                .iter_mut()
                .zip(&src[h * t * dim..(h + 1) * t * dim])
            {
                *o = half::f16::from_f32(*i).to_f32();
            }
        }
        Tensor::from_primitive(TensorPrimitive::Float(c))
    }
}

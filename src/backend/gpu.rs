//! [`ChordBackend`] for Burn's CubeCL backends (wgpu, CUDA) without fusion: weight matrices
//! uploaded once in the layouts of chord's kernels and multiplied on the device ([`super::cube`]);
//! formats without a kernel yet go through the host ([`super::host_qmatmul`]). Norms, RoPE,
//! activations and attention are the trait's Burn-op defaults for now.

use super::{cube, host_qmatmul, ChordBackend};
use crate::error::Result;
use crate::model::QWeight;
use crate::quant::Layout;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime};
use burn_tensor::{DType, Shape, Tensor, TensorPrimitive};

impl<R: CubeRuntime, BT: BoolElement> ChordBackend for CubeBackend<R, f32, i32, BT> {
    type Matrix = cube::DeviceWeight;

    fn upload(w: &QWeight, device: &R::Device) -> Result<Option<cube::DeviceWeight>> {
        if !cube::supported(w.ty) || w.layout != Layout::Gguf {
            return Ok(None);
        }
        let client = R::client(device);
        cube::upload(&client, w.ty, w.bytes(), w.rows, w.cols).map(Some)
    }

    fn qmatmul(
        x: Tensor<Self, 2>,
        w: &QWeight,
        on_device: Option<&cube::DeviceWeight>,
    ) -> Result<Tensor<Self, 2>> {
        let Some(dw) = on_device else {
            return host_qmatmul(x, w);
        };
        let [m, k] = x.dims();
        if k != dw.cols {
            crate::bail!(
                Internal,
                "a product of {k}-value rows with a matrix of {}-value rows",
                dw.cols
            );
        }
        let x: CubeTensor<R> = into_contiguous(x.into_primitive().tensor());
        let y = cube::qmatvec(&x.client, dw, &x.handle, m)?;
        let y = CubeTensor::new_contiguous(
            x.client.clone(),
            x.device.clone(),
            Shape::new([m, dw.rows]),
            y,
            DType::F32,
        );
        Ok(Tensor::from_primitive(TensorPrimitive::Float(y)))
    }
}

/// Why the CUDA backend cannot run here, or `None` when it can: the driver library, NVRTC, the
/// CUDA headers (NVRTC compiles chord's kernels at run time) and a device must all be there.
/// Asked before anything touches CUDA, because cubecl-cuda panics where a piece is missing.
#[cfg(feature = "cuda")]
pub fn cuda_unavailable() -> Option<String> {
    // SAFETY: loading the libraries runs their initialisers, as any use of CUDA would.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Some("the CUDA driver library (libcuda) is not installed".into());
    }
    // SAFETY: as above.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Some("the CUDA run-time compiler (libnvrtc) is not installed".into());
    }
    if cubecl::cuda::install::cuda_path().is_none() {
        return Some(
            "the CUDA headers are not found (set CUDA_PATH, or install them in /usr/local/cuda)"
                .into(),
        );
    }
    match cudarc::driver::result::init().and_then(|()| cudarc::driver::result::device::get_count())
    {
        Ok(n) if n > 0 => None,
        Ok(_) => Some("the CUDA driver sees no device".into()),
        Err(e) => Some(format!("the CUDA driver does not start: {e:?}")),
    }
}

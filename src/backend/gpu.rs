//! [`ChordBackend`] for Burn's CubeCL backends (wgpu, CUDA) without fusion: weight matrices
//! uploaded once in the layouts of chord's kernels and multiplied on the device ([`super::cube`]);
//! formats without a kernel yet go through the host ([`super::host_qmatmul`]). RMS norms (with the
//! residual add), the gated activation, RoPE and the f16 KV cache with its attention are chord's
//! kernels ([`cube::layer`]); what an architecture adds beyond those (biases, query scaling) stays
//! on Burn ops. Launches and transfers are counted ([`super::traffic`]).

use super::{cube, host_qmatmul, ChordBackend, DeviceCache, KvCache, KvRows, KvType};
use crate::attn::{Glu, RopeMode, Scores};
use crate::error::Result;
use crate::model::QWeight;
use crate::quant::Layout;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime};
use burn_tensor::{DType, Shape, Tensor, TensorData, TensorPrimitive};
use cube::layer::{self, DeviceKv};
use cubecl::server::Handle;

/// The backend of this module, for a runtime and bool type.
type Cube<R, BT> = CubeBackend<R, f32, i32, BT>;

/// `x`'s f32 values, contiguous, on its device.
fn prim<R: CubeRuntime, BT: BoolElement, const D: usize>(
    x: Tensor<Cube<R, BT>, D>,
) -> CubeTensor<R> {
    into_contiguous(x.into_primitive().tensor())
}

/// A tensor of `shape` over the f32 values of `handle`, on `like`'s device.
fn wrap<R: CubeRuntime, BT: BoolElement, const D: usize>(
    like: &CubeTensor<R>,
    shape: [usize; D],
    handle: Handle,
) -> Tensor<Cube<R, BT>, D> {
    let t = CubeTensor::new_contiguous(
        like.client.clone(),
        like.device.clone(),
        Shape::new(shape),
        handle,
        DType::F32,
    );
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

impl<R: CubeRuntime, BT: BoolElement> ChordBackend for Cube<R, BT> {
    type Matrix = cube::DeviceWeight;

    fn upload(w: &QWeight, device: &R::Device) -> Result<Option<cube::DeviceWeight>> {
        let client = R::client(device);
        // Formats without a kernel, and matrices larger than one device buffer (until the
        // kernels take a matrix in parts), multiply through the host.
        if !cube::supported(w.ty, w.cols)
            || w.layout != Layout::Gguf
            || !cube::fits(&client, w.bytes().len())
        {
            return Ok(None);
        }
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
        Ok(wrap(&x, [m, dw.rows], y))
    }

    fn rms_norm(x: Tensor<Self, 2>, weight: &Tensor<Self, 1>, eps: f32) -> Tensor<Self, 2> {
        let [rows, d] = x.dims();
        let (x, w) = (prim(x), prim(weight.clone()));
        let y = layer::rms_norm(&x.client, &x.handle, &w.handle, rows, d, eps);
        wrap(&x, [rows, d], y)
    }

    fn add_rms_norm(
        x: Tensor<Self, 2>,
        r: Tensor<Self, 2>,
        weight: &Tensor<Self, 1>,
        eps: f32,
    ) -> (Tensor<Self, 2>, Tensor<Self, 2>) {
        let [rows, d] = x.dims();
        let (x, r, w) = (prim(x), prim(r), prim(weight.clone()));
        let (s, y) = layer::add_rms_norm(&x.client, &x.handle, &r.handle, &w.handle, rows, d, eps);
        (wrap(&x, [rows, d], s), wrap(&x, [rows, d], y))
    }

    fn tensor_from_host<const D: usize>(
        values: Vec<f32>,
        shape: [usize; D],
        device: &R::Device,
    ) -> Tensor<Self, D> {
        super::count_upload(values.len() * 4);
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    fn tensor_to_host<const D: usize>(x: Tensor<Self, D>) -> Result<Vec<f32>> {
        super::count_download(x.shape().num_elements() * 4);
        super::f32_values(x)
    }

    fn glu(gate: Tensor<Self, 2>, up: Tensor<Self, 2>, kind: Glu) -> Tensor<Self, 2> {
        let [rows, n] = gate.dims();
        let (g, u) = (prim(gate), prim(up));
        let y = layer::glu(&g.client, &g.handle, &u.handle, rows * n, kind == Glu::Gelu);
        wrap(&g, [rows, n], y)
    }

    fn rope(
        x: Tensor<Self, 3>,
        cos: &Tensor<Self, 3>,
        sin: &Tensor<Self, 3>,
        rope_dim: usize,
        mode: RopeMode,
    ) -> Tensor<Self, 3> {
        let dims = x.dims();
        let (x, c, s) = (prim(x), prim(cos.clone()), prim(sin.clone()));
        let y = layer::rope(
            &x.client, &x.handle, &c.handle, &s.handle, dims, rope_dim, mode,
        );
        wrap(&x, dims, y)
    }

    fn kv_cache(
        n_head_kv: usize,
        n_ctx: usize,
        head_dim: usize,
        kv: KvType,
        device: &R::Device,
    ) -> KvCache<Self> {
        if kv != KvType::F16 || !layer::kv_fits(head_dim) {
            return super::generic_kv_cache(n_head_kv, n_ctx, head_dim, device);
        }
        let client = R::client(device);
        let words = n_head_kv * n_ctx * head_dim / 2;
        let zeros = vec![0u8; words * 4];
        let kv = DeviceKv {
            k: client.create_from_slice(&zeros),
            v: client.create_from_slice(&zeros),
            n_head_kv,
            n_ctx,
            head_dim,
        };
        KvCache::Device(Box::new(CubeKv::<R, BT> {
            kv,
            device: device.clone(),
            _bool: std::marker::PhantomData,
        }))
    }
}

/// The f16 KV cache of one layer in device memory ([`DeviceKv`]), written and read by chord's
/// kernels.
struct CubeKv<R: CubeRuntime, BT> {
    kv: DeviceKv,
    device: R::Device,
    _bool: std::marker::PhantomData<fn() -> BT>,
}

impl<R: CubeRuntime, BT: BoolElement> CubeKv<R, BT> {
    /// The whole buffer `h` (keys or values), read to the host.
    fn read_all(&self, h: &Handle) -> Result<Vec<u8>> {
        let all = R::client(&self.device)
            .read_one(h.clone())
            .map_err(|e| crate::Error::new(crate::ErrorCode::Internal, format!("{e:?}")))?;
        super::count_download(all.len());
        Ok(all.to_vec())
    }

    /// The cache's words of positions `0..n` of every head, in [`KvRows`]' order, from `h`.
    fn rows_of(&self, h: &Handle, n: usize) -> Result<Vec<u8>> {
        let all = self.read_all(h)?;
        let per_head = self.kv.n_ctx * self.kv.head_dim * 2;
        let used = n * self.kv.head_dim * 2;
        Ok(all
            .chunks_exact(per_head)
            .flat_map(|c| &c[..used])
            .copied()
            .collect())
    }

    /// A new buffer holding `h`'s bytes with positions `0..n` replaced by `rows` ([`KvRows`]
    /// order).
    fn rebuilt(&self, h: &Handle, n: usize, rows: &[u8]) -> Result<Handle> {
        let mut all = self.read_all(h)?;
        let per_head = self.kv.n_ctx * self.kv.head_dim * 2;
        let used = n * self.kv.head_dim * 2;
        for (head, r) in all
            .chunks_exact_mut(per_head)
            .zip(rows.chunks_exact(used.max(1)))
        {
            head[..used].copy_from_slice(r);
        }
        super::count_upload(all.len());
        Ok(R::client(&self.device).create_from_slice(&all))
    }
}

impl<R: CubeRuntime, BT: BoolElement> DeviceCache<Cube<R, BT>> for CubeKv<R, BT> {
    fn store(&mut self, pos: usize, k: Tensor<Cube<R, BT>, 3>, v: Tensor<Cube<R, BT>, 3>) {
        let t = k.dims()[0];
        let (k, v) = (prim(k), prim(v));
        self.kv.store(&k.client, &k.handle, &v.handle, t, pos);
    }

    fn attention(
        &self,
        q: Tensor<Cube<R, BT>, 3>,
        pos0: usize,
        scores: &Scores,
    ) -> Tensor<Cube<R, BT>, 2> {
        let [t, n_head, head_dim] = q.dims();
        let q = prim(q);
        let out = self
            .kv
            .attention(&q.client, &q.handle, t, n_head, pos0, scores);
        wrap(&q, [t, n_head * head_dim], out)
    }

    fn export(&self, n: usize) -> Result<KvRows> {
        Ok(KvRows {
            k: self.rows_of(&self.kv.k, n)?,
            v: self.rows_of(&self.kv.v, n)?,
        })
    }

    fn import(&mut self, n: usize, rows: &KvRows) -> Result<()> {
        let want = self.kv.n_head_kv * n * self.kv.head_dim * 2;
        if n > self.kv.n_ctx || rows.k.len() != want || rows.v.len() != want {
            crate::bail!(Internal, "KV rows do not fit the cache");
        }
        self.kv.k = self.rebuilt(&self.kv.k, n, &rows.k)?;
        self.kv.v = self.rebuilt(&self.kv.v, n, &rows.v)?;
        Ok(())
    }

    fn fork(&self, _n: usize) -> Box<dyn DeviceCache<Cube<R, BT>>> {
        // Positions past `n` are written again before any query reads them: the whole copy is
        // as good as a cut one.
        Box::new(CubeKv::<R, BT> {
            kv: self.kv.copy(&R::client(&self.device)),
            device: self.device.clone(),
            _bool: std::marker::PhantomData,
        })
    }

    fn bytes(&self) -> f64 {
        (2 * self.kv.words() * 4) as f64
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

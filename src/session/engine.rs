//! The backend-erased transformer state a session drives.

use crate::backend::{ChordBackend, Cpu, KvRows, KvType};
use crate::error::Result;
use crate::model::{BackendKind, ModelCore, Transformer, WantLogits};
use std::any::Any;
use std::sync::Arc;

/// A transformer with its KV cache on some backend.
pub trait Engine: Any + Send {
    /// Runs `tokens` at the next positions; see [`Transformer::eval`].
    fn eval(
        &mut self,
        tokens: &[u32],
        want: WantLogits,
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<f32>>;
    /// Keeps only the first `n` positions.
    fn truncate(&mut self, n: usize);
    /// The precision of the KV cache.
    fn kv_type(&self) -> KvType;
    /// The cached keys and values of every position, one [`KvRows`] per layer.
    fn kv_export(&self) -> Result<Vec<KvRows>>;
    /// Replaces the cache with `rows` for positions `0..n`.
    fn kv_import(&mut self, n: usize, rows: &[KvRows]) -> Result<()>;
    /// A copy holding the same positions, sharing the KV cache's memory where it can.
    fn fork(&self) -> Box<dyn Engine>;
    /// Takes `other`'s first `n` positions as its own (its context emptied first) when `other` is
    /// an engine of this one's type and cache precision holding at least `n`: as a fork of it
    /// ([`Engine::fork`], sharing memory) when the two have one context length, else copied.
    /// `Ok(false)` (and nothing changed) when `other` is not such an engine.
    fn fork_from(&mut self, other: &dyn Any, n: usize) -> Result<bool>;
    /// Bytes of memory the KV cache holds, memory shared with forks counted as this one's share.
    fn kv_bytes(&self) -> f64;
    /// The engine as `Any`, for batches over engines of one backend ([`eval_batch`]).
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<B: ChordBackend> Engine for Transformer<B>
where
    Transformer<B>: Send + 'static,
{
    fn eval(
        &mut self,
        tokens: &[u32],
        want: WantLogits,
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<f32>> {
        Transformer::eval(self, tokens, want, cancel)
    }
    fn truncate(&mut self, n: usize) {
        Transformer::truncate(self, n)
    }
    fn kv_type(&self) -> KvType {
        Transformer::kv_type(self)
    }
    fn kv_export(&self) -> Result<Vec<KvRows>> {
        Transformer::kv_export(self)
    }
    fn kv_import(&mut self, n: usize, rows: &[KvRows]) -> Result<()> {
        Transformer::kv_import(self, n, rows)
    }
    fn fork(&self) -> Box<dyn Engine> {
        Box::new(Transformer::fork(self, self.n_past()))
    }
    fn fork_from(&mut self, other: &dyn Any, n: usize) -> Result<bool> {
        let Some(o) = other.downcast_ref::<Transformer<B>>() else {
            return Ok(false);
        };
        if o.kv_type() != self.kv_type() || n > o.n_past() || n > self.n_ctx() {
            return Ok(false);
        }
        if o.n_ctx() == self.n_ctx() {
            *self = o.fork(n);
        } else {
            let rows = o.kv_export()?;
            let n_head_kv = o.core().cfg.n_head_kv;
            let rows: Vec<KvRows> = rows
                .iter()
                .map(|r| r.prefix(o.n_past(), n, n_head_kv))
                .collect();
            Transformer::kv_import(self, n, &rows)?;
        }
        Ok(true)
    }
    fn kv_bytes(&self) -> f64 {
        Transformer::kv_bytes(self)
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Every engine of `engines` as a `Transformer<B>`, when all are.
fn all_of<'a, B: ChordBackend>(
    engines: &'a mut [&mut (dyn Engine + 'static)],
) -> Option<Vec<&'a mut Transformer<B>>> {
    if !engines
        .iter_mut()
        .all(|e| e.as_any_mut().is::<Transformer<B>>())
    {
        return None;
    }
    engines
        .iter_mut()
        .map(|e| e.as_any_mut().downcast_mut::<Transformer<B>>())
        .collect()
}

/// Runs `tokens[i]` on `engines[i]` for every engine in one pass ([`Transformer::eval_batch`]);
/// `Unsupported` when the engines are not all of one backend.
pub fn eval_batch(
    engines: &mut [&mut (dyn Engine + 'static)],
    tokens: &[&[u32]],
    want: WantLogits,
    cancel: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<f32>> {
    if let Some(mut ts) = all_of::<Cpu>(engines) {
        return Transformer::eval_batch(&mut ts, tokens, want, cancel);
    }
    #[cfg(feature = "wgpu")]
    if let Some(mut ts) = all_of::<crate::backend::Wgpu>(engines) {
        return Transformer::eval_batch(&mut ts, tokens, want, cancel);
    }
    #[cfg(feature = "cuda")]
    if let Some(mut ts) = all_of::<crate::backend::Cuda>(engines) {
        return Transformer::eval_batch(&mut ts, tokens, want, cancel);
    }
    crate::bail!(
        Unsupported,
        "sessions on different backends cannot be decoded in one batch"
    )
}

/// Creates the engine for `backend` with a context of `n_ctx` positions and a KV cache of
/// precision `kv`.
pub fn create(
    core: Arc<ModelCore>,
    n_ctx: usize,
    kv: KvType,
    backend: BackendKind,
) -> Result<Box<dyn Engine>> {
    match backend {
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => Ok(Box::new(Transformer::<crate::backend::Wgpu>::with_kv_type(
            core,
            n_ctx,
            kv,
            Default::default(),
        )?)),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => Ok(Box::new(Transformer::<crate::backend::Cuda>::with_kv_type(
            core,
            n_ctx,
            kv,
            Default::default(),
        )?)),
        _ => Ok(Box::new(Transformer::<Cpu>::with_kv_type(
            core,
            n_ctx,
            kv,
            Default::default(),
        )?)),
    }
}

//! The backend-erased transformer state a session drives.

use crate::backend::{ChordBackend, Cpu};
use crate::error::Result;
use crate::model::{BackendKind, ModelCore, Transformer, WantLogits};
use std::sync::Arc;

/// A transformer with its KV cache on some backend.
pub trait Engine: Send {
    /// Runs `tokens` at the next positions; see [`Transformer::eval`].
    fn eval(
        &mut self,
        tokens: &[u32],
        want: WantLogits,
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<f32>>;
    /// Keeps only the first `n` positions.
    fn truncate(&mut self, n: usize);
}

impl<B: ChordBackend> Engine for Transformer<B>
where
    Transformer<B>: Send,
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
}

/// Creates the engine for `backend` with a context of `n_ctx` positions.
pub fn create(core: Arc<ModelCore>, n_ctx: usize, backend: BackendKind) -> Result<Box<dyn Engine>> {
    match backend {
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => Ok(Box::new(Transformer::<crate::backend::Wgpu>::new(
            core,
            n_ctx,
            Default::default(),
        ))),
        _ => Ok(Box::new(Transformer::<Cpu>::new(
            core,
            n_ctx,
            Default::default(),
        ))),
    }
}

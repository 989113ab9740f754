//! Options for loading a model: backend choice, worker threads, memory budget, mmap, progress.

use crate::error::Result;
use std::sync::Arc;

/// Which compute backend runs the transformer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// The best backend built in: the CPU today.
    #[default]
    Auto,
    /// burn-flex on the CPU.
    Cpu,
    /// burn-wgpu (needs the `wgpu` feature).
    Wgpu,
    /// burn-cuda (needs the `cuda` feature, and CUDA's driver, NVRTC and headers at run time).
    Cuda,
}

impl BackendKind {
    /// Lower-case name ("auto", "cpu", "wgpu", "cuda").
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::Cpu => "cpu",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        }
    }

    /// The backend that `self` runs on in this build, or `Unsupported` when it is not built in.
    pub fn resolve(self) -> Result<BackendKind> {
        match self {
            BackendKind::Auto | BackendKind::Cpu => Ok(BackendKind::Cpu),
            BackendKind::Wgpu if cfg!(feature = "wgpu") => Ok(BackendKind::Wgpu),
            BackendKind::Wgpu => crate::bail!(
                Unsupported,
                "this build of chord has no wgpu backend (build with the 'wgpu' feature)"
            ),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => match crate::backend::cuda_unavailable() {
                None => Ok(BackendKind::Cuda),
                Some(why) => crate::bail!(Unsupported, "the cuda backend cannot run: {why}"),
            },
            #[cfg(not(feature = "cuda"))]
            BackendKind::Cuda => crate::bail!(
                Unsupported,
                "this build of chord has no cuda backend (build with the 'cuda' feature)"
            ),
        }
    }
}

/// Most worker threads a model may ask for.
pub const MAX_THREADS: usize = 1024;

/// A load-progress callback: gets the fraction done in [0, 1] and returns `false` to cancel.
#[derive(Clone)]
pub struct Progress(pub Arc<dyn Fn(f32) -> bool + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress(..)")
    }
}

/// Options for [`Model::load`].
#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// Worker threads for the quantized products; 0 picks the number of cores; at most
    /// [`MAX_THREADS`].
    pub n_threads: usize,
    /// Compute backend.
    pub backend: BackendKind,
    /// Load only the vocabulary (tokenize and detokenize), even when the file has weights.
    pub vocab_only: bool,
    /// Memory budget in bytes for weights; 0 lets chord choose from available memory. A file
    /// larger than the budget is paged (see [`crate::pager`]).
    pub memory_budget: u64,
    /// Map the file (true, the default) or read it into memory that chord owns (false). Under
    /// paging, true lets streamed layers be mapped where the system allows (Linux) and the file
    /// fits in available memory (a SIGBUS guard turns a file truncated under the map into an I/O
    /// error, see [`crate::pager`]); a file larger than available memory has them read past the
    /// page cache where the system allows; otherwise they are read into buffers.
    pub use_mmap: bool,
    /// How a paged model holds its streamed layers; `None` (the default) chooses as `use_mmap`
    /// says. A [`Loader`] the system refuses falls back to buffers ([`crate::pager::Pager::loader`]).
    ///
    /// [`Loader`]: crate::pager::Loader
    pub stream_loader: Option<crate::pager::Loader>,
    /// Pack the matrices that the CPU kernels read faster in a layout of their own (true, the
    /// default; see [`crate::quant::pack`]) into memory that chord owns, giving back the file
    /// pages they came from; false keeps every matrix in the mapped file (shared with other
    /// processes mapping it, reclaimable under memory pressure) at some speed. Same results.
    /// Under paging, the pinned layers are packed in the pager's buffers ([`Weights::page`]).
    ///
    /// [`Weights::page`]: crate::model::Weights::page
    pub pack_weights: bool,
    /// Called on the loading thread as the load advances; returning `false` cancels it.
    pub progress: Option<Progress>,
    /// Bytes the prompt cache may hold ([`super::PromptCache`]); 0 (the default) disables it.
    pub prompt_cache_bytes: u64,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            n_threads: 0,
            backend: BackendKind::Auto,
            vocab_only: false,
            memory_budget: 0,
            use_mmap: true,
            stream_loader: None,
            pack_weights: true,
            progress: None,
            prompt_cache_bytes: 0,
        }
    }
}

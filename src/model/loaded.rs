//! A loaded model: the mapped file, its configuration and weights, its tokenizer, and the worker
//! threads that its sessions compute on. Immutable after load and shared by sessions.

use super::{Config, ModelCore, Weights};
use crate::error::{Error, ErrorCode, Result};
use crate::gguf::GgufFile;
use crate::tokenizer::Tokenizer;
use std::path::Path;
use std::sync::Arc;

/// Which compute backend runs the transformer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// The best available: the CPU today.
    #[default]
    Auto,
    /// burn-flex on the CPU.
    Cpu,
    /// burn-wgpu (needs the `wgpu` feature).
    Wgpu,
}

/// Options for [`Model::load`].
#[derive(Debug, Clone, Default)]
pub struct ModelOptions {
    /// Worker threads for the quantized products; 0 picks the number of cores.
    pub n_threads: usize,
    /// Compute backend.
    pub backend: BackendKind,
    /// Load only the vocabulary (tokenize and detokenize), even when the file has weights.
    pub vocab_only: bool,
}

/// A loaded model. Share it between sessions and threads with `Arc`.
pub struct Model {
    file: GgufFile,
    core: Option<Arc<ModelCore>>,
    tokenizer: Tokenizer,
    pool: Arc<rayon::ThreadPool>,
    backend: BackendKind,
}

impl Model {
    /// Maps, validates and prepares the model at `path`. A file without tensors (a vocabulary-only
    /// GGUF) loads as a model that can tokenize but not run.
    pub fn load(path: impl AsRef<Path>, opts: &ModelOptions) -> Result<Model> {
        let file = GgufFile::open(path)?;
        let tokenizer = Tokenizer::from_gguf(&file)?;
        let core = if opts.vocab_only || file.tensors().is_empty() {
            None
        } else {
            let cfg = Config::from_gguf(&file)?;
            let weights = Weights::from_gguf(&file, &cfg)?;
            if tokenizer.n_vocab() != cfg.n_vocab {
                crate::bail!(
                    BadModel,
                    "the vocabulary has {} tokens but the embedding matrix has {} rows",
                    tokenizer.n_vocab(),
                    cfg.n_vocab
                );
            }
            Some(Arc::new(ModelCore { cfg, weights }))
        };
        let backend = match opts.backend {
            BackendKind::Auto | BackendKind::Cpu => BackendKind::Cpu,
            BackendKind::Wgpu if cfg!(feature = "wgpu") => BackendKind::Wgpu,
            BackendKind::Wgpu => crate::bail!(
                Unsupported,
                "this build of chord has no wgpu backend (feature 'wgpu')"
            ),
        };
        let threads = if opts.n_threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            opts.n_threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("chord-worker-{i}"))
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorCode::Internal,
                    format!("cannot start worker threads: {e}"),
                )
            })?;
        Ok(Model {
            file,
            core,
            tokenizer,
            pool: Arc::new(pool),
            backend,
        })
    }

    /// The GGUF file (metadata and tensor index).
    pub fn gguf(&self) -> &GgufFile {
        &self.file
    }

    /// Hyperparameters, or `None` for a vocabulary-only model.
    pub fn config(&self) -> Option<&Config> {
        self.core.as_ref().map(|c| &c.cfg)
    }

    /// Weights and configuration, or a clear error for a vocabulary-only model.
    pub fn core(&self) -> Result<&Arc<ModelCore>> {
        self.core.as_ref().ok_or_else(|| {
            Error::new(
                ErrorCode::Unsupported,
                "this model was loaded without weights (vocabulary only)",
            )
        })
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The worker threads.
    pub fn pool(&self) -> &Arc<rayon::ThreadPool> {
        &self.pool
    }

    /// Number of worker threads.
    pub fn n_threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// The backend sessions run on.
    pub fn backend(&self) -> BackendKind {
        self.backend
    }

    /// The Jinja chat template stored under `tokenizer.chat_template`, if the file has one (as a
    /// string).
    pub fn chat_template(&self) -> Option<&str> {
        self.file.opt_str("tokenizer.chat_template").ok().flatten()
    }
}

impl Model {
    /// A human-readable description: architecture, hyperparameters, tokenizer, and every tensor's
    /// format and size (what `chord inspect` prints).
    pub fn describe(&self) -> String {
        use std::fmt::Write;
        let f = &self.file;
        let mut s = String::new();
        let arch = f
            .opt_str("general.architecture")
            .ok()
            .flatten()
            .unwrap_or("?");
        let name = f.opt_str("general.name").ok().flatten().unwrap_or("");
        let _ = writeln!(
            s,
            "file: GGUF v{}, {} bytes, {} tensors, {} metadata keys",
            f.version(),
            f.file_size(),
            f.tensors().len(),
            f.metadata().len()
        );
        let _ = writeln!(
            s,
            "architecture: {arch}{}",
            if name.is_empty() {
                String::new()
            } else {
                format!(" ({name})")
            }
        );
        if let Some(c) = self.config() {
            let _ = writeln!(
                s,
                "hyperparameters: n_vocab={} n_embd={} n_layer={} n_head={} n_head_kv={} head_dim={} n_ff={} n_ctx_train={} rope_base={} rope_dim={} rms_eps={:e}",
                c.n_vocab, c.n_embd, c.n_layer, c.n_head, c.n_head_kv, c.head_dim, c.n_ff, c.n_ctx_train, c.rope_base, c.rope_dim, c.rms_eps
            );
        } else {
            let _ = writeln!(s, "hyperparameters: none (vocabulary-only model)");
        }
        let t = &self.tokenizer;
        let _ = writeln!(
            s,
            "tokenizer: {} tokens, bos={:?} eos={:?} add_bos={}",
            t.n_vocab(),
            t.bos(),
            t.eos(),
            t.add_bos()
        );
        let mut by_type: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
        for ti in f.tensors() {
            let e = by_type.entry(ti.ty.name()).or_default();
            e.0 += 1;
            e.1 += ti.size;
        }
        let total: usize = f.tensors().iter().map(|t| t.size).sum();
        let _ = writeln!(s, "tensor data: {total} bytes");
        for (ty, (n, bytes)) in by_type {
            let _ = writeln!(s, "  {ty}: {n} tensors, {bytes} bytes");
        }
        for ti in f.tensors() {
            let _ = writeln!(
                s,
                "tensor {} {} {:?} {} bytes",
                ti.name,
                ti.ty.name(),
                ti.dims,
                ti.size
            );
        }
        s
    }
}

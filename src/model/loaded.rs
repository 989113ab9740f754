//! A loaded model: the file's bytes (mapped or read), its configuration and weights, its
//! tokenizer, and the worker threads that its sessions compute on. Immutable after load and shared
//! by sessions. Loading reports progress, may be cancelled, and logs what it loaded.

use super::options::{BackendKind, ModelOptions, Progress, MAX_THREADS};
use super::{Config, ModelCore, PromptCache, Weights};
use crate::error::{Error, ErrorCode, Result};
use crate::gguf::GgufFile;
use crate::pager::{Loader, PagerStats};
use crate::tokenizer::Tokenizer;
use std::path::Path;
use std::sync::Arc;

/// Reports load progress and turns a `false` from the callback into a `Cancelled` error.
struct Reporter<'a>(Option<&'a Progress>);

impl Reporter<'_> {
    fn at(&self, fraction: f32) -> Result<()> {
        match self.0 {
            Some(p) if !(p.0)(fraction.clamp(0.0, 1.0)) => {
                crate::log!(Info, "model load cancelled by the progress callback");
                crate::bail!(
                    Cancelled,
                    "the model load was cancelled by the progress callback"
                )
            }
            _ => Ok(()),
        }
    }
}

/// Share of the progress range spent reading the file when it is not mapped.
const READ_SHARE: f32 = 0.8;

/// A loaded model. Share it between sessions and threads with `Arc`.
pub struct Model {
    file: GgufFile,
    core: Option<Arc<ModelCore>>,
    tokenizer: Tokenizer,
    pool: Arc<rayon::ThreadPool>,
    team: crate::team::Team,
    backend: BackendKind,
    memory_budget: u64,
    prompt_cache: Option<PromptCache>,
    packed_bytes: u64,
}

impl Model {
    /// Maps (or reads), validates and prepares the model at `path`. A file without tensors (a
    /// vocabulary-only GGUF) loads as a model that can tokenize but not run. The progress callback
    /// in `opts` is called on this thread; when it cancels, the load returns `Cancelled` and
    /// everything it had made is freed.
    pub fn load(path: impl AsRef<Path>, opts: &ModelOptions) -> Result<Model> {
        let path = path.as_ref();
        Self::load_logged(path, opts).inspect_err(|e| {
            if e.code() != ErrorCode::Cancelled {
                crate::log!(Error, "cannot load '{}': {e}", path.display());
            }
        })
    }

    fn load_logged(path: &Path, opts: &ModelOptions) -> Result<Model> {
        if opts.n_threads > MAX_THREADS {
            crate::bail!(
                InvalidArgument,
                "{} worker threads asked for; at most {MAX_THREADS}",
                opts.n_threads
            );
        }
        let backend = opts.backend.resolve()?;
        crate::quant::Isa::selected()?; // a CHORD_ISA that cannot run here fails the load
        let report = Reporter(opts.progress.as_ref());
        crate::log!(
            Info,
            "loading '{}' ({})",
            path.display(),
            if opts.use_mmap {
                "mapped"
            } else {
                "read into memory"
            }
        );
        report.at(0.0)?;
        let paging = paging_budget(path, opts.memory_budget)?;
        if paging.is_some() && !opts.use_mmap {
            crate::log!(
                Info,
                "paged weights are read into buffers by the pager: the file is mapped for its metadata only"
            );
        }
        let (file, base) = if opts.use_mmap || paging.is_some() {
            let file = GgufFile::open(path)?;
            if paging.is_some() {
                read_only_what_is_touched(&file);
            }
            (file, 0.0)
        } else {
            let f = GgufFile::read(path, |done, total| {
                crate::log!(Debug, "read {done} of {total} bytes");
                report.at(READ_SHARE * done as f32 / total.max(1) as f32)
            })?;
            (f, READ_SHARE)
        };
        let step = |x: f32| base + (1.0 - base) * x;
        log_file(&file);
        report.at(step(0.1))?;
        let tokenizer = Tokenizer::from_gguf(&file)?;
        report.at(step(0.3))?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = if opts.n_threads == 0 {
            cores
        } else {
            opts.n_threads
        };
        let mut packed_bytes = 0;
        let core = if opts.vocab_only || file.tensors().is_empty() {
            crate::log!(Info, "vocabulary only: no weights loaded");
            None
        } else {
            let cfg = Config::from_gguf(&file)?;
            report.at(step(0.4))?;
            let mut weights = Weights::from_gguf(&file, &cfg)?;
            if tokenizer.n_vocab() != cfg.n_vocab {
                crate::bail!(
                    BadModel,
                    "the vocabulary has {} tokens but the embedding matrix has {} rows",
                    tokenizer.n_vocab(),
                    cfg.n_vocab
                );
            }
            crate::log!(
                Info,
                "hyperparameters: n_layer={} n_embd={} n_head={} n_head_kv={} n_ff={} n_vocab={} n_ctx_train={}",
                cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.n_head_kv, cfg.n_ff, cfg.n_vocab, cfg.n_ctx_train
            );
            for (i, l) in weights.layers.iter().enumerate() {
                crate::log!(Debug, "layer {i}: {} bytes of weights", l.size());
            }
            if let Some(budget) = paging {
                release_mapped_pages(&file);
                forget_vector_pages(path, &file);
                let loader = opts
                    .stream_loader
                    .unwrap_or_else(|| stream_loader(path, opts.use_mmap));
                let on_host = backend == BackendKind::Cpu;
                let pack = (on_host && opts.pack_weights).then(crate::quant::Isa::active);
                let packed = page_weights(
                    path,
                    &mut weights,
                    budget,
                    loader,
                    on_host,
                    pack,
                    &mut |x| report.at(step(0.4 + 0.4 * x)).is_ok(),
                )?;
                packed_bytes = packed as u64;
            } else if backend == BackendKind::Cpu && opts.pack_weights {
                let packed = weights.pack(crate::quant::Isa::active(), threads, &|offset, len| {
                    release_range(&file, offset, len)
                });
                packed_bytes = packed as u64;
            }
            if packed_bytes > 0 {
                crate::log!(
                    Info,
                    "{packed_bytes} bytes of {}weights packed for the {} kernels",
                    if paging.is_some() { "pinned " } else { "" },
                    crate::quant::Isa::active().name()
                );
            }
            Some(Arc::new(ModelCore::new(cfg, weights)))
        };
        report.at(step(0.8))?;
        if threads > cores {
            crate::log!(
                Warn,
                "{threads} worker threads on {cores} cores: threads will compete for cores"
            );
        }
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
        crate::log!(
            Info,
            "backend {} (asked for {}), {}, {threads} worker threads",
            backend.name(),
            opts.backend.name(),
            crate::quant::Isa::summary()
        );
        let team = crate::team::Team::new(threads).map_err(|e| {
            Error::new(
                ErrorCode::Internal,
                format!("cannot start worker threads: {e}"),
            )
        })?;
        // A mapped pager's prefetch runs on the team's helpers between jobs, where the CPU computes
        // (Pager::prefetch_by_team).
        if team.threads() > 1 && backend == BackendKind::Cpu {
            if let Some(step) = core.as_ref().and_then(|c| c.weights.prefetch_by_team()) {
                team.set_idle_work(step);
            }
        }
        let model = Model {
            file,
            core,
            tokenizer,
            pool: Arc::new(pool),
            team,
            backend,
            memory_budget: opts.memory_budget,
            prompt_cache: (opts.prompt_cache_bytes > 0)
                .then(|| PromptCache::new(opts.prompt_cache_bytes.min(usize::MAX as u64) as usize)),
            packed_bytes,
        };
        report.at(1.0)?;
        Ok(model)
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

    /// Runs `f` on the model's worker threads: inside its rayon pool, with its spinning team
    /// (decoding's small products) current.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(|| crate::team::with(&self.team, f))
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

/// Load facts: options recorded at load and sizes.
impl Model {
    /// The memory budget in bytes given at load (0: none, chord chose from available memory).
    pub fn memory_budget(&self) -> u64 {
        self.memory_budget
    }

    /// The prompt cache, when the options enabled one.
    pub fn prompt_cache(&self) -> Option<&PromptCache> {
        self.prompt_cache.as_ref()
    }

    /// The pager's counters when the model runs paged (its weights did not fit the budget).
    pub fn pager_stats(&self) -> Option<PagerStats> {
        self.core.as_ref().and_then(|c| c.weights.pager_stats())
    }

    /// The GPU kernel launches and host-device transfers of the model's forward passes so far
    /// (zero on the CPU).
    pub fn traffic(&self) -> crate::backend::Traffic {
        self.core
            .as_ref()
            .map_or_else(Default::default, |c| c.traffic())
    }

    /// Whether the weights are a map of the file (else an owned copy read at load).
    pub fn uses_mmap(&self) -> bool {
        self.file.is_mapped()
    }

    /// Bytes of weights packed at load for the CPU kernels ([`ModelOptions::pack_weights`]),
    /// held in memory of chord's own instead of the mapped file; 0 when none were.
    pub fn packed_bytes(&self) -> u64 {
        self.packed_bytes
    }

    /// Number of values in the file's tensors.
    pub fn n_params(&self) -> u64 {
        self.file.tensors().iter().map(|t| t.n_elements()).sum()
    }

    /// Bytes of tensor data in the file.
    pub fn weight_bytes(&self) -> u64 {
        self.file.tensors().iter().map(|t| t.size as u64).sum()
    }
}

/// Streaming slots the pager uses: one unit computing while the next one loads.
const PAGER_SLOTS: usize = 2;

/// The weight budget to page under, or `None` when the model is used from the file image as is.
/// An explicit budget pages when the file is larger than it. With none (0), chord pages only when
/// the file does not fit in 90% of the memory the system reports available, under 75% of it.
fn paging_budget(path: &Path, budget: u64) -> Result<Option<u64>> {
    let file_len = std::fs::metadata(path)
        .map_err(|e| {
            Error::new(
                ErrorCode::Io,
                format!("cannot open '{}': {e}", path.display()),
            )
        })?
        .len();
    if budget != 0 {
        if file_len <= budget {
            crate::log!(
                Info,
                "memory budget {budget} bytes: the whole file ({file_len} bytes) fits, no paging"
            );
            return Ok(None);
        }
        crate::log!(
            Info,
            "memory budget {budget} bytes < file {file_len} bytes: layers are paged"
        );
        return Ok(Some(budget));
    }
    match super::host_memory::available() {
        Some(avail) if file_len > avail / 10 * 9 => {
            let b = avail / 4 * 3;
            crate::log!(
                Warn,
                "no memory budget given and the file ({file_len} bytes) does not fit in available memory ({avail} bytes: MemAvailable, or the room under the cgroup memory limit when less): paging layers under {b} bytes"
            );
            Ok(Some(b))
        }
        Some(avail) => {
            crate::log!(
                Info,
                "no memory budget given; the file fits in available memory ({avail} bytes): no paging"
            );
            Ok(None)
        }
        None => {
            crate::log!(
                Info,
                "no memory budget given and available memory unknown: no paging"
            );
            Ok(None)
        }
    }
}

/// Unmaps the pages of the file mapping that loading touched (the metadata, which parsing walks),
/// so that a paged model's resident memory is its budget: with large page-cache folios (2 MiB on
/// ext4/xfs with recent kernels) a touch maps the whole folio around it. The norm vectors are not
/// read through the map for that reason ([`GgufFile::read_tensor`]). The mapping stays valid: a
/// later access (metadata lookups) faults the page in again from the file.
fn release_mapped_pages(file: &GgufFile) {
    #[cfg(unix)]
    {
        // SAFETY: the map is a shared read-only file mapping; MADV_DONTNEED only drops this
        // process's page-table entries, and later reads fault in the same bytes from the file.
        let r = unsafe {
            file.map()
                .unchecked_advise(memmap2::UncheckedAdvice::DontNeed)
        };
        if let Err(e) = r {
            crate::log!(Debug, "madvise(DONTNEED) on the model map: {e}");
        }
    }
    #[cfg(not(unix))]
    let _ = file;
}

/// Turns off read-ahead on the model map of a paged model, whose weights the pager reads: what
/// the map may still serve is a few pages here and there, and each fault with read-ahead on reads
/// the device's whole read-ahead window around it (8 MiB on the virtual disks here: when the norm
/// vectors were read through the map, SmolLM2's 61 read its whole file at load, into the page
/// cache, in small folios that the pager's 2 MiB maps then cannot map whole). The metadata has
/// been read by then (parsing it walks all of it).
fn read_only_what_is_touched(file: &GgufFile) {
    #[cfg(unix)]
    if let Err(e) = file.map().advise(memmap2::Advice::Random) {
        crate::log!(Debug, "madvise(RANDOM) on the model map: {e}");
    }
    #[cfg(not(unix))]
    let _ = file;
}

/// Drops from the page cache the pages of the model's vectors (norms, biases), which a model reads
/// at load ([`GgufFile::read_tensor`]), a page or two in the middle of each layer: read in 4 KiB
/// folios (without read-ahead), they would keep the 2 MiB blocks around them from entering the
/// page cache in 2 MiB folios when the pager's maps read those layers, and a mapped slot then maps
/// such a block in 512 entries instead of one. Pages cached in larger folios (a warm file) are
/// left alone: `POSIX_FADV_DONTNEED` drops no folio it does not cover whole.
fn forget_vector_pages(path: &Path, file: &GgufFile) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        let Ok(f) = std::fs::File::open(path) else {
            return;
        };
        for t in file.tensors().iter().filter(|t| t.dims.len() == 1) {
            // The whole pages around it (the kernel drops only pages the range covers whole).
            let start = t.offset / 4096 * 4096;
            let len = (t.offset + t.size).next_multiple_of(4096) - start;
            // SAFETY: a hint on an open descriptor; it changes no memory of this process.
            let r = unsafe {
                libc::posix_fadvise(
                    f.as_raw_fd(),
                    start as libc::off_t,
                    len as libc::off_t,
                    libc::POSIX_FADV_DONTNEED,
                )
            };
            if r != 0 {
                crate::log!(Debug, "posix_fadvise(DONTNEED) on '{}': error {r}", t.name);
                return;
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (path, file);
}

/// Gives back the memory of bytes `offset..offset + len` of the file image, which nothing reads
/// any more (a matrix packed into memory of its own): the whole pages inside the range. A mapped
/// file's pages would be read again from the file; an image read into memory would read zeros.
fn release_range(file: &GgufFile, offset: usize, len: usize) {
    #[cfg(unix)]
    {
        const PAGE: usize = 4096;
        let (start, end) = (offset.next_multiple_of(PAGE), (offset + len) / PAGE * PAGE);
        if end <= start {
            return;
        }
        // SAFETY: the range lies inside the map (a tensor's bytes, checked at load) and holds
        // only bytes of the packed matrix, which no one reads again: for a private anonymous
        // image they become zeros, for a file mapping they would be faulted in again from the
        // file.
        let r = unsafe {
            file.map().unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                start,
                end - start,
            )
        };
        if let Err(e) = r {
            crate::log!(
                Debug,
                "madvise(DONTNEED) on {len} bytes of the model image: {e}"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (file, offset, len);
}

/// How the pager holds streamed layers: mapped when `use_mmap` and the file fits in available
/// memory, so that its pages can stay in the page cache and mapping them costs page-table work
/// instead of a copy (TinyLlama shape Q4_K_M at 40%, warm, Zen 4, 2 threads: 18.5 tok/s mapped,
/// 14.3 read); read past the page cache ([`Loader::Direct`]) when the file does not fit, so every
/// streamed byte comes from storage on every token: exactly the units' bytes, with no read-ahead
/// into pinned neighbours, no copy and no page cache charged to the memory cgroup; read through
/// the page cache when the file fits and `use_mmap` is off.
fn stream_loader(path: &Path, use_mmap: bool) -> Loader {
    let file_len = std::fs::metadata(path).map_or(u64::MAX, |m| m.len());
    let avail = super::host_memory::available();
    let loader = match avail {
        Some(avail) if file_len > avail => Loader::Direct,
        Some(_) if use_mmap => Loader::Map,
        _ => Loader::Read,
    };
    crate::log!(
        Info,
        "pager: file {file_len} bytes, available memory {}, use_mmap {use_mmap}: streamed layers {loader:?}",
        avail.map_or("unknown".to_string(), |a| format!("{a} bytes"))
    );
    loader
}

/// Plans `weights` under `budget` bytes (less the f32 norm vectors, always resident) and starts
/// the pager. Pinned units are read here when they stay in host memory (`on_host`); a GPU
/// model's budget is its device's memory, which keeps the pinned units (uploaded by the first
/// session on the device), and host memory holds the streaming slots only. With `pack`, pinned
/// units are packed for that ISA's kernels ([`Weights::page`]); returns the bytes packed.
fn page_weights(
    path: &Path,
    weights: &mut Weights,
    budget: u64,
    loader: Loader,
    on_host: bool,
    pack: Option<crate::quant::Isa>,
    progress: &mut dyn FnMut(f32) -> bool,
) -> Result<usize> {
    let units = weights.paging_units();
    let sizes: Vec<usize> = units.iter().map(|u| u.loaded_bytes()).collect();
    let slot_sizes: Vec<usize> = units.iter().map(|u| u.slot_bytes(loader)).collect();
    let norms: usize = 4
        * (weights.output_norm.len()
            + weights
                .layers
                .iter()
                .map(|l| l.attn_norm.len() + l.ffn_norm.len())
                .sum::<usize>());
    let budget = usize::try_from(budget).unwrap_or(usize::MAX);
    let room = budget.saturating_sub(norms);
    // A budget too small for a mapped slot of whole 2 MiB blocks maps units exactly instead.
    let pins = match loader {
        Loader::Map => crate::pager::Pins::Together,
        Loader::Read | Loader::Direct => crate::pager::Pins::Spread,
    };
    let mut plan = crate::pager::plan(&sizes, &slot_sizes, room, PAGER_SLOTS, pins)
        .or_else(|_| crate::pager::plan(&sizes, &sizes, room, PAGER_SLOTS, pins))?;
    plan.hold_pinned = on_host;
    if plan.n_slots < PAGER_SLOTS {
        crate::log!(
            Warn,
            "the memory budget ({budget} bytes) holds one streaming slot only: no prefetch, every streamed layer is read while the computation waits (at least {} bytes allow prefetching)",
            PAGER_SLOTS * plan.slot_bytes + norms
        );
    }
    crate::log!(
        Info,
        "pager: {} of {} units pinned{}, {} slots of {} bytes, {} bytes resident",
        plan.n_pinned(),
        sizes.len(),
        if on_host { "" } else { " (on the device)" },
        plan.n_slots,
        plan.slot_bytes,
        plan.resident_bytes(&sizes) + norms
    );
    let file = std::fs::File::open(path).map_err(|e| {
        Error::new(
            ErrorCode::Io,
            format!("cannot open '{}': {e}", path.display()),
        )
    })?;
    weights.page(file, plan, loader, pack, progress)
}

/// Logs what the file holds: version, size, architecture, tensor formats.
fn log_file(f: &GgufFile) {
    if !crate::log::enabled(crate::log::Level::Info) {
        return;
    }
    crate::log!(
        Info,
        "GGUF v{}, {} bytes, {} tensors, {} metadata keys",
        f.version(),
        f.file_size(),
        f.tensors().len(),
        f.metadata().len()
    );
    let arch = f.opt_str("general.architecture").ok().flatten();
    let name = f.opt_str("general.name").ok().flatten();
    crate::log!(
        Info,
        "architecture {}{}",
        arch.unwrap_or("(none)"),
        name.map(|n| format!(" ({n})")).unwrap_or_default()
    );
    for (ty, (n, bytes)) in tensor_formats(f) {
        crate::log!(Info, "tensors {ty}: {n}, {bytes} bytes");
    }
}

/// Tensor count and bytes per storage format, by format name.
fn tensor_formats(f: &GgufFile) -> std::collections::BTreeMap<&'static str, (usize, usize)> {
    let mut by_type: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for ti in f.tensors() {
        let e = by_type.entry(ti.ty.name()).or_default();
        e.0 += 1;
        e.1 += ti.size;
    }
    by_type
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
            let biases = self
                .core
                .as_ref()
                .is_some_and(|m| m.weights.layers.iter().any(|l| l.bias.is_some()));
            let _ = writeln!(s, "layers: {}", c.arch.describe(biases));
            let factors = self
                .core
                .as_ref()
                .is_some_and(|m| m.weights.rope_freqs.is_some());
            let _ = writeln!(
                s,
                "attention: {}{}",
                c.describe_attention(),
                if factors {
                    ", RoPE frequency factors (rope_freqs)"
                } else {
                    ""
                }
            );
        } else {
            let _ = writeln!(s, "hyperparameters: none (vocabulary-only model)");
        }
        let _ = writeln!(
            s,
            "compute: backend {}, {}",
            self.backend.name(),
            crate::quant::Isa::summary()
        );
        let t = &self.tokenizer;
        let _ = writeln!(
            s,
            "tokenizer: {} tokens, bos={:?} eos={:?} add_bos={}",
            t.n_vocab(),
            t.bos(),
            t.eos(),
            t.add_bos()
        );
        let _ = writeln!(
            s,
            "loaded: backend={} threads={} mmap={} memory_budget={}",
            self.backend.name(),
            self.n_threads(),
            self.uses_mmap(),
            match self.memory_budget {
                0 => "none".to_string(),
                b => format!("{b} bytes"),
            }
        );
        let _ = writeln!(
            s,
            "tensor data: {} bytes, {} parameters",
            self.weight_bytes(),
            self.n_params()
        );
        for (ty, (n, bytes)) in tensor_formats(f) {
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

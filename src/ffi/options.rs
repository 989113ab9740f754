//! Option objects: opaque, created with defaults, changed with setters (no structs cross the ABI).

use super::args::{flag, obj, obj_mut, text};
use super::{
    boundary, chord_error, chord_grammar, chord_status, chord_token, chord_token_callback,
};
use crate::bail;
use crate::model::{BackendKind, ModelOptions, Progress, MAX_THREADS};
use crate::session::{GenerateParams, KvType, SamplerParams, SessionOptions};
use std::ffi::{c_char, c_void};
use std::sync::Arc;

/// Options for `chord_model_load`. Owned by the caller; free with `chord_model_options_free`.
/// Not thread-safe: do not change one object from two threads at once.
pub struct chord_model_options(pub(crate) ModelOptions);

/// Options for `chord_session_new`. Owned by the caller; free with `chord_session_options_free`.
pub struct chord_session_options(pub(crate) SessionOptions);

/// Generation settings (length, stop strings, sampling) for `chord_session_generate`. Owned by the
/// caller; free with `chord_generate_params_free`.
pub struct chord_generate_params {
    pub(crate) gen: GenerateParams,
    pub(crate) sampler: SamplerParams,
    /// Called with each token by `chord_session_generate` (not by background generation).
    pub(crate) on_token: chord_token_callback,
    pub(crate) on_token_data: *mut c_void,
}

/// Backend choice: the best available (the CPU in this version).
pub const CHORD_BACKEND_AUTO: u32 = 0;
/// Backend choice: the CPU (burn-flex).
pub const CHORD_BACKEND_CPU: u32 = 1;
/// Backend choice: wgpu (only in builds with the `wgpu` feature).
pub const CHORD_BACKEND_WGPU: u32 = 2;
/// Backend choice: CUDA (only in builds with the `cuda` feature, on a machine with an NVIDIA GPU,
/// its driver, libnvrtc and the CUDA headers; else `chord_model_load` reports
/// `CHORD_E_UNSUPPORTED` and names what is missing).
pub const CHORD_BACKEND_CUDA: u32 = 3;

/// Moves a new options object into `*out`.
unsafe fn create<T>(out: *mut *mut T, value: T, err: *mut *mut chord_error) -> chord_status {
    boundary(err, || {
        let out = unsafe { obj_mut(out, "out")? };
        *out = Box::into_raw(Box::new(value));
        Ok(())
    })
}

/// Frees an options object made by `create`; NULL is ignored.
unsafe fn destroy<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: made by `create` and freed once, by contract.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// Applies `f` to the options object behind `p`.
unsafe fn set<T>(
    p: *mut T,
    err: *mut *mut chord_error,
    f: impl FnOnce(&mut T) -> crate::Result<()>,
) -> chord_status {
    boundary(err, || f(unsafe { obj_mut(p, "opts")? }))
}

/// Creates model options into `*out`.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (out is NULL). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_options_new(
    out: *mut *mut chord_model_options,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe { create(out, chord_model_options(ModelOptions::default()), err) }
}

/// Frees model options. NULL is allowed and ignored.
#[no_mangle]
pub unsafe extern "C" fn chord_model_options_free(opts: *mut chord_model_options) {
    unsafe { destroy(opts) }
}

/// Creates session options into `*out`.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (out is NULL). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_session_options_new(
    out: *mut *mut chord_session_options,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe { create(out, chord_session_options(SessionOptions::default()), err) }
}

/// Frees session options. NULL is allowed and ignored.
#[no_mangle]
pub unsafe extern "C" fn chord_session_options_free(opts: *mut chord_session_options) {
    unsafe { destroy(opts) }
}

/// Creates generation parameters (128 tokens, llama.cpp's default sampling: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, seed 0) into `*out`.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (out is NULL). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_new(
    out: *mut *mut chord_generate_params,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        create(
            out,
            chord_generate_params {
                gen: GenerateParams::default(),
                sampler: SamplerParams::default(),
                on_token: None,
                on_token_data: std::ptr::null_mut(),
            },
            err,
        )
    }
}

/// Frees generation parameters. NULL is allowed and ignored.
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_free(opts: *mut chord_generate_params) {
    unsafe { destroy(opts) }
}

/// Worker threads for the model's sessions, 0 to 1024; 0 (the default) uses one per core. More
/// threads than cores is allowed (and logged as a warning at load).
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or value above 1024).
#[no_mangle]
pub unsafe extern "C" fn chord_model_options_set_threads(
    opts: *mut chord_model_options,
    n: u32,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            if n as usize > MAX_THREADS {
                bail!(
                    InvalidArgument,
                    "threads must be 0 to {MAX_THREADS}, got {n}"
                );
            }
            o.0.n_threads = n as usize;
            Ok(())
        })
    }
}

/// Compute backend: `CHORD_BACKEND_AUTO` (default: the best one built in, the CPU today), `_CPU`,
/// `_WGPU` or `_CUDA`. A backend this build lacks (wgpu without the `wgpu` feature, CUDA without
/// the `cuda` feature) or that cannot run here (CUDA without its driver, libnvrtc, headers or a
/// device) is reported by `chord_model_load` as `CHORD_E_UNSUPPORTED`, naming the reason.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or value out of range).
#[no_mangle]
pub unsafe extern "C" fn chord_model_options_set_backend(
    opts: *mut chord_model_options,
    backend: u32,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            o.0.backend = match backend {
                CHORD_BACKEND_AUTO => BackendKind::Auto,
                CHORD_BACKEND_CPU => BackendKind::Cpu,
                CHORD_BACKEND_WGPU => BackendKind::Wgpu,
                CHORD_BACKEND_CUDA => BackendKind::Cuda,
                b => bail!(InvalidArgument, "unknown backend {b}"),
            };
            Ok(())
        })
    }
}

/// 1: load only the vocabulary (tokenize/detokenize; sessions fail with `CHORD_E_UNSUPPORTED`). Default 0.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or value out of range).
#[no_mangle]
pub unsafe extern "C" fn chord_model_options_set_vocab_only(
    opts: *mut chord_model_options,
    vocab_only: u32,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            o.0.vocab_only = flag(vocab_only, "vocab_only")?;
            Ok(())
        })
    }
}

/// Memory budget in bytes for the model's weights; 0 (the default) lets chord choose: it pages only
/// when the file does not fit in 90% of the memory the system reports available.
///
/// When the file is larger than the budget, chord keeps as many layers resident as fit and streams
/// the others from the file through two slot buffers, with a background prefetch thread; the
/// output equals the fully resident run bit for bit. Weight bytes held (resident layers, slots,
/// norms) stay within the budget; the KV cache (`chord_session_options_*`) and per-call scratch
/// are not part of it. A budget that cannot hold the largest layer fails the load with
/// `CHORD_E_INVALID_ARGUMENT`. How the slots hold streamed layers: see
/// `chord_model_options_set_use_mmap`. Counters: `CHORD_INFO_PAGER_*`.
///
/// With a GPU backend the budget is device memory: the resident layers are kept there (uploaded
/// when the first session is created), streamed layers are uploaded for each use (counted in
/// `CHORD_INFO_DEVICE_UPLOAD_BYTES`), and host memory holds the two slots only. With no budget
/// given the choice is made on host memory as above (chord cannot yet read a GPU's free memory).
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object).
#[no_mangle]
pub unsafe extern "C" fn chord_model_options_set_memory_budget(
    opts: *mut chord_model_options,
    bytes: u64,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            o.0.memory_budget = bytes;
            Ok(())
        })
    }
}

/// Enables the model's prompt cache, holding at most `bytes` (0, the default, disables it): a
/// prompt of 32 tokens or more appended (`chord_session_append_text` or `_tokens` without
/// `all_logits`) to an empty session is stored with its keys and values, and a later such append
/// whose tokens start like a stored prompt takes the common prefix from it instead of computing it
/// (the last two tokens are always computed). On the CPU's f16 cache the prefix's memory is shared,
/// not copied (as by `chord_session_fork`): the stored prompt, the session that stored it and
/// every session that took it hold one copy, so twenty sessions sharing a long system prompt start
/// at once and hold it once. Stored prompts are evicted least recently used first (the memory
/// stays while sessions hold it); the cache's bytes are outside the memory budget. The logits
/// equal those of a full prefill except in the last bits where the two place batch boundaries
/// differently (as in llama.cpp's prompt cache).
/// Counters: `CHORD_INFO_PROMPT_CACHE_*`.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object).
#[no_mangle]
pub unsafe extern "C" fn chord_model_options_set_prompt_cache(
    opts: *mut chord_model_options,
    bytes: u64,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            o.0.prompt_cache_bytes = bytes;
            Ok(())
        })
    }
}

/// 1 (the default): on x86 CPUs with AVX2, pack the Q4_K matrices at load into a layout of eight
/// rows interleaved, in memory that chord owns (the same size; the file pages they came from are
/// given back): decode is faster, and several sessions decoding together much faster. 0: keep
/// every matrix in the file image, as with `use_mmap` shared with other processes that map the
/// file and reclaimable by the system under memory pressure. Both give the same results, bit for
/// bit. A model that is paged (see `chord_model_options_set_memory_budget`) packs the layers it
/// keeps resident, in the buffers they are read into (no second copy); streamed layers stay as
/// the file has them.
/// `CHORD_INFO_PACKED_BYTES` tells how many bytes were packed.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or value not 0 or 1).
#[no_mangle]
pub unsafe extern "C" fn chord_model_options_set_pack_weights(
    opts: *mut chord_model_options,
    pack_weights: u32,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            o.0.pack_weights = flag(pack_weights, "pack_weights")?;
            Ok(())
        })
    }
}

/// 1 (the default): map the file; its pages are read on first use and shared with the page cache.
/// 0: read the whole file into memory that chord owns at load (slower to load, uses private
/// memory, but later changes to the file cannot affect the model). Both give the same results.
///
/// A model that is paged (see `chord_model_options_set_memory_budget`) never reads the whole file:
/// with 1, on Linux, when the file fits in available memory (so that it can stay in the page
/// cache), each streamed layer is mapped while it is in use and chord installs a SIGBUS handler
/// (chained to the one before it) so that a file truncated under the map fails the call with
/// `CHORD_E_IO` instead of killing the program; otherwise, and with 0, streamed layers are read
/// into buffers and no handler is installed. Both give the same results.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or value not 0 or 1).
#[no_mangle]
pub unsafe extern "C" fn chord_model_options_set_use_mmap(
    opts: *mut chord_model_options,
    use_mmap: u32,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            o.0.use_mmap = flag(use_mmap, "use_mmap")?;
            Ok(())
        })
    }
}

/// Receives load progress: `progress` is the fraction done, from 0 to 1, never decreasing; the
/// first call passes 0 and the last call of a successful load passes exactly 1. Return 1 (any
/// nonzero value) to continue, 0 to cancel the load (`chord_model_load` then returns
/// `CHORD_E_CANCELLED` and frees everything it made; a 0 from the final call also cancels). Called
/// on the thread that calls `chord_model_load`, between load steps (every 16 MiB read when the
/// file is not mapped).
pub type chord_progress_fn =
    Option<unsafe extern "C" fn(progress: f32, user_data: *mut c_void) -> u32>;

/// The C callback and its `user_data`, called only on the thread running `chord_model_load`.
struct CProgress {
    cb: unsafe extern "C" fn(f32, *mut c_void) -> u32,
    user_data: *mut c_void,
}

impl CProgress {
    fn call(&self, progress: f32) -> bool {
        // SAFETY: the host guarantees that `cb` and `user_data` are valid while the load runs.
        unsafe { (self.cb)(progress, self.user_data) != 0 }
    }
}

// SAFETY: chord calls the callback only on the thread that called `chord_model_load` with these
// options, as documented; chord never dereferences `user_data`.
unsafe impl Send for CProgress {}
// SAFETY: as above; the pointer is only passed back to the host's callback.
unsafe impl Sync for CProgress {}

/// Sets (or with `cb` NULL, removes) the load-progress callback. `user_data` is passed to every
/// call; chord does not own it (it must stay valid while a `chord_model_load` with these options
/// runs). A load with these options calls `cb` on the loading thread: see `chord_progress_fn`;
/// loads on several threads with the same options each call it on their own thread.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object).
#[no_mangle]
pub unsafe extern "C" fn chord_model_options_set_progress_callback(
    opts: *mut chord_model_options,
    cb: chord_progress_fn,
    user_data: *mut c_void,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            o.0.progress = cb.map(|cb| {
                let c = CProgress { cb, user_data };
                Progress(Arc::new(move |p| c.call(p)))
            });
            Ok(())
        })
    }
}

/// Context length in tokens; 0 (the default) uses the model's training context, at most 4096.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or value out of range).
#[no_mangle]
pub unsafe extern "C" fn chord_session_options_set_n_ctx(
    opts: *mut chord_session_options,
    n_ctx: u32,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            o.0.n_ctx = n_ctx as usize;
            Ok(())
        })
    }
}

/// Most prompt tokens per forward batch; 0 (the default) means 512.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or value out of range).
#[no_mangle]
pub unsafe extern "C" fn chord_session_options_set_n_batch(
    opts: *mut chord_session_options,
    n_batch: u32,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            o.0.n_batch = n_batch as usize;
            Ok(())
        })
    }
}

/// KV cache precision: 16-bit floats (the default; what llama.cpp uses, and what makes chord's
/// logits equal llama.cpp's).
pub const CHORD_KV_F16: u32 = 0;
/// KV cache precision: 32-bit floats (twice the memory; keys and values are not rounded).
pub const CHORD_KV_F32: u32 = 1;

/// Precision of the session's KV cache: `CHORD_KV_F16` (default) or `CHORD_KV_F32`. A saved state
/// loads only into a session of the same precision.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or unknown value).
#[no_mangle]
pub unsafe extern "C" fn chord_session_options_set_kv_type(
    opts: *mut chord_session_options,
    kv_type: u32,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            o.0.kv_type = match kv_type {
                CHORD_KV_F16 => KvType::F16,
                CHORD_KV_F32 => KvType::F32,
                k => bail!(InvalidArgument, "unknown KV cache type {k}"),
            };
            Ok(())
        })
    }
}

/// Most tokens to generate (default 128).
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or value out of range).
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_set_max_tokens(
    opts: *mut chord_generate_params,
    n: u32,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            o.gen.max_tokens = n as usize;
            Ok(())
        })
    }
}

/// Sampling temperature; 0 or below is greedy (always the most likely token). Default 0.8.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or value out of range).
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_set_temperature(
    opts: *mut chord_generate_params,
    t: f32,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            if !t.is_finite() {
                bail!(InvalidArgument, "temperature must be finite");
            }
            o.sampler.temperature = t;
            Ok(())
        })
    }
}

/// Keep the k most likely tokens; 0 keeps all. Default 40.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or value out of range).
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_set_top_k(
    opts: *mut chord_generate_params,
    k: u32,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            o.sampler.top_k = k as usize;
            Ok(())
        })
    }
}

/// Nucleus sampling threshold in [0, 1]; 1 keeps all. Default 0.95.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or value out of range).
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_set_top_p(
    opts: *mut chord_generate_params,
    p: f32,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            if !(0.0..=1.0).contains(&p) {
                bail!(InvalidArgument, "top_p must be in [0, 1], got {p}");
            }
            o.sampler.top_p = p;
            Ok(())
        })
    }
}

/// Drop tokens less likely than min_p times the most likely; in [0, 1], 0 keeps all. Default 0.05.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or value out of range).
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_set_min_p(
    opts: *mut chord_generate_params,
    p: f32,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            if !(0.0..=1.0).contains(&p) {
                bail!(InvalidArgument, "min_p must be in [0, 1], got {p}");
            }
            o.sampler.min_p = p;
            Ok(())
        })
    }
}

/// Repetition penalty over the last `penalty_last_n` tokens; 1 (the default) is off.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or value out of range).
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_set_repeat_penalty(
    opts: *mut chord_generate_params,
    p: f32,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            if !(p.is_finite() && p > 0.0) {
                bail!(InvalidArgument, "repeat_penalty must be positive, got {p}");
            }
            o.sampler.repeat_penalty = p;
            Ok(())
        })
    }
}

/// Frequency penalty (subtracted per occurrence); 0 (the default) is off.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or value out of range).
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_set_frequency_penalty(
    opts: *mut chord_generate_params,
    p: f32,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            if !p.is_finite() {
                bail!(InvalidArgument, "frequency_penalty must be finite");
            }
            o.sampler.frequency_penalty = p;
            Ok(())
        })
    }
}

/// Presence penalty (subtracted once per token seen); 0 (the default) is off.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or value out of range).
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_set_presence_penalty(
    opts: *mut chord_generate_params,
    p: f32,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            if !p.is_finite() {
                bail!(InvalidArgument, "presence_penalty must be finite");
            }
            o.sampler.presence_penalty = p;
            Ok(())
        })
    }
}

/// How many recent tokens the penalties consider (default 64); 0 disables them.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or value out of range).
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_set_penalty_last_n(
    opts: *mut chord_generate_params,
    n: u32,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            o.sampler.penalty_last_n = n as usize;
            Ok(())
        })
    }
}

/// Seed of the sampler's random generator (default 0). The same seed, prompt and settings give the same tokens.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or value out of range).
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_set_seed(
    opts: *mut chord_generate_params,
    seed: u64,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe {
        set(opts, err, |o| {
            o.sampler.seed = seed;
            Ok(())
        })
    }
}

/// Adds a stop string (UTF-8, `len` bytes): generation stops when the text contains it, and the
/// stop string itself is not delivered. The string is copied.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_INVALID_UTF8`.
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_add_stop(
    opts: *mut chord_generate_params,
    stop: *const c_char,
    len: usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let o = unsafe { obj_mut(opts, "opts")? };
        let s = unsafe { text(stop, len, "stop")? };
        if s.is_empty() {
            bail!(InvalidArgument, "a stop string must not be empty");
        }
        o.gen.stop.push(s.to_string());
        Ok(())
    })
}

/// Whether generated text includes the text of control tokens such as `<|im_end|>` (1) or not (0,
/// the default).
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_set_render_special(
    opts: *mut chord_generate_params,
    render: u32,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let o = unsafe { obj_mut(opts, "opts")? };
        o.gen.render_special = flag(render, "render")?;
        Ok(())
    })
}

/// Constrains sampling to `grammar` (NULL removes the constraint): only tokens that continue it
/// are sampled, and end-of-generation tokens only where it is complete, so a generation that
/// completes the grammar ends with `CHORD_STOP_EOG`. Each generation starts at the grammar's
/// start. The parameters keep their own reference to the grammar.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL `opts`).
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_set_grammar(
    opts: *mut chord_generate_params,
    grammar: *const chord_grammar,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let o = unsafe { obj_mut(opts, "opts")? };
        o.sampler.grammar = match grammar.is_null() {
            true => None,
            false => Some(unsafe { obj(grammar, "grammar")? }.0.clone()),
        };
        Ok(())
    })
}

/// Adds `bias` to the logit of `token` before any other sampling step (`-INFINITY` bans the
/// token; a token given twice gets both biases). A token outside the model's vocabulary makes
/// generation fail with `CHORD_E_INVALID_TOKEN`.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL `opts`, or a NaN or `+INFINITY` bias).
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_add_logit_bias(
    opts: *mut chord_generate_params,
    token: chord_token,
    bias: f32,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let o = unsafe { obj_mut(opts, "opts")? };
        if bias.is_nan() || bias == f32::INFINITY {
            bail!(
                InvalidArgument,
                "a logit bias must be a number or -INFINITY, got {bias}"
            );
        }
        o.sampler.logit_bias.push((token, bias));
        Ok(())
    })
}

/// Removes every logit bias.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL `opts`).
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_clear_logit_bias(
    opts: *mut chord_generate_params,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        unsafe { obj_mut(opts, "opts")? }.sampler.logit_bias.clear();
        Ok(())
    })
}

/// Most alternatives `chord_generate_params_set_logprobs` may ask for.
pub const CHORD_MAX_LOGPROBS: u32 = 100;

/// With `n` > 0, each generated token comes with its log-probability and the `n` most likely
/// tokens' (log-softmax of the model's logits, before bias, penalties, grammar and temperature):
/// through the token callback (`chord_generate_params_set_token_callback`) and, in background
/// generation, through `chord_session_poll_logprobs`. 0 (the default) computes none.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL `opts`, or `n` above
/// `CHORD_MAX_LOGPROBS`).
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_set_logprobs(
    opts: *mut chord_generate_params,
    n: u32,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let o = unsafe { obj_mut(opts, "opts")? };
        if n > CHORD_MAX_LOGPROBS {
            bail!(
                InvalidArgument,
                "at most {CHORD_MAX_LOGPROBS} log-probabilities, got {n}"
            );
        }
        o.gen.logprobs = n as usize;
        Ok(())
    })
}

/// Sets a callback that `chord_session_generate` calls with every generated token (also those
/// whose text is held back), after the text callback for that token; NULL removes it. `user_data`
/// is passed back as is. Background generation does not call it: poll the tokens instead.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL `opts`).
#[no_mangle]
pub unsafe extern "C" fn chord_generate_params_set_token_callback(
    opts: *mut chord_generate_params,
    callback: chord_token_callback,
    user_data: *mut c_void,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let o = unsafe { obj_mut(opts, "opts")? };
        o.on_token = callback;
        o.on_token_data = user_data;
        Ok(())
    })
}

//! Model handles: load, reference counting, and queries (facts, metadata by key).

use super::args::{copy_str, obj, obj_mut, text};
use super::{boundary, chord_error, chord_model_options, chord_status, guard};
use super::{CHORD_BACKEND_CPU, CHORD_BACKEND_CUDA, CHORD_BACKEND_WGPU};
use crate::gguf::query::{to_bool, to_f64, to_i64, to_str, to_u64};
use crate::gguf::{MetaType, Value};
use crate::model::{BackendKind, Model, ModelOptions};
use std::borrow::Cow;
use std::ffi::c_char;
use std::sync::Arc;

/// A loaded model. Immutable and thread-safe: any number of threads may use one model at once.
/// Reference counted: `chord_model_retain` adds a reference, `chord_model_free` drops one; the
/// model is freed with its last reference (sessions hold their own).
pub struct chord_model(pub(crate) Arc<Model>);

/// Loads the GGUF model at `path` (UTF-8, `path_len` bytes, no NUL needed) into `*out`.
/// `opts` may be NULL for defaults; it is only read during the call (free it any time after).
/// By default the file stays mapped until the model is freed; with
/// `chord_model_options_set_use_mmap(opts, 0)` it is read into owned memory instead. The options'
/// progress callback, if any, runs on this thread and may cancel the load. The load is logged
/// through the log callback (`chord_set_log_callback`) when one is installed. The CPU kernels take
/// the fastest instruction-set path the CPU has, unless the environment variable `CHORD_ISA`
/// (read once per process) names one: `scalar`, `avx2` or `auto`.
///
/// Statuses: `CHORD_OK`; `CHORD_E_INVALID_ARGUMENT` (NULL path or out, an unknown `CHORD_ISA`),
/// `CHORD_E_INVALID_UTF8`, `CHORD_E_IO` (cannot open, map or read), `CHORD_E_GGUF_*` (malformed
/// file), `CHORD_E_UNKNOWN_ARCHITECTURE`, `CHORD_E_BAD_MODEL` (missing or inconsistent metadata or
/// tensors), `CHORD_E_UNSUPPORTED` (e.g. a backend not built in, a `CHORD_ISA` path this CPU
/// lacks), `CHORD_E_CANCELLED` (the
/// progress callback returned 0; nothing is leaked). On error `*out` is untouched. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_load(
    path: *const c_char,
    path_len: usize,
    opts: *const chord_model_options,
    out: *mut *mut chord_model,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let path = unsafe { text(path, path_len, "path")? };
        let out = unsafe { obj_mut(out, "out")? };
        let opts = match unsafe { opts.as_ref() } {
            Some(o) => o.0.clone(),
            None => ModelOptions::default(),
        };
        let model = Model::load(path, &opts)?;
        *out = Box::into_raw(Box::new(chord_model(Arc::new(model))));
        Ok(())
    })
}

/// Adds a reference to `model` and returns it (NULL for NULL). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_retain(model: *const chord_model) -> *mut chord_model {
    guard(std::ptr::null_mut(), || match unsafe { model.as_ref() } {
        Some(m) => Box::into_raw(Box::new(chord_model(m.0.clone()))),
        None => std::ptr::null_mut(),
    })
}

/// Drops one reference to a model. NULL is allowed and ignored. Each pointer returned by
/// `chord_model_load` or `chord_model_retain` is freed exactly once. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_free(model: *mut chord_model) {
    if !model.is_null() {
        // SAFETY: created by chord_model_load/retain, freed once by contract.
        guard((), || drop(unsafe { Box::from_raw(model) }));
    }
}

/// `chord_model_info` key: tokens in the vocabulary. (Token ids below are `UINT64_MAX` when the
/// model has no such token; hyperparameters are 0 for a vocabulary-only model.)
pub const CHORD_INFO_N_VOCAB: u32 = 0;
/// `chord_model_info` key: context length the model was trained with (0 for a vocabulary-only model).
pub const CHORD_INFO_N_CTX_TRAIN: u32 = 1;
/// `chord_model_info` key: hidden size.
pub const CHORD_INFO_N_EMBD: u32 = 2;
/// `chord_model_info` key: transformer layers.
pub const CHORD_INFO_N_LAYER: u32 = 3;
/// `chord_model_info` key: query heads.
pub const CHORD_INFO_N_HEAD: u32 = 4;
/// `chord_model_info` key: key/value heads.
pub const CHORD_INFO_N_HEAD_KV: u32 = 5;
/// `chord_model_info` key: bytes of tensor data in the file.
pub const CHORD_INFO_WEIGHT_BYTES: u32 = 6;
/// `chord_model_info` key: beginning-of-sequence token id (`UINT64_MAX` when the model has none).
pub const CHORD_INFO_TOKEN_BOS: u32 = 7;
/// `chord_model_info` key: end-of-sequence token id (`UINT64_MAX` when the model has none).
pub const CHORD_INFO_TOKEN_EOS: u32 = 8;
/// `chord_model_info` key: 1 when the model adds BOS to prompts, else 0.
pub const CHORD_INFO_ADD_BOS: u32 = 9;
/// `chord_model_info` key: worker threads the model's sessions use.
pub const CHORD_INFO_N_THREADS: u32 = 10;
/// `chord_model_info` key: inner size of the feed-forward network.
pub const CHORD_INFO_N_FF: u32 = 11;
/// `chord_model_info` key: number of values (parameters) in the file's tensors.
pub const CHORD_INFO_N_PARAMS: u32 = 12;
/// `chord_model_info` key: end-of-turn token id (`UINT64_MAX` when the model has none).
pub const CHORD_INFO_TOKEN_EOT: u32 = 13;
/// `chord_model_info` key: padding token id (`UINT64_MAX` when the model has none).
pub const CHORD_INFO_TOKEN_PAD: u32 = 14;
/// `chord_model_info` key: 1 when the model adds EOS to prompts, else 0.
pub const CHORD_INFO_ADD_EOS: u32 = 15;
/// `chord_model_info` key: the memory budget given at load, in bytes (0: none given).
pub const CHORD_INFO_MEMORY_BUDGET: u32 = 16;
/// `chord_model_info` key: 1 when the file is mapped, 0 when it was read into memory.
pub const CHORD_INFO_USE_MMAP: u32 = 17;
/// `chord_model_info` key: the backend sessions run on (`CHORD_BACKEND_CPU`, `_WGPU` or
/// `_CUDA`; never `_AUTO`).
pub const CHORD_INFO_BACKEND: u32 = 18;
/// `chord_model_info` key: unknown-token id (`UINT64_MAX` when the model has none).
pub const CHORD_INFO_TOKEN_UNK: u32 = 19;
/// `chord_model_info` key: separator token id (`UINT64_MAX` when the model has none).
pub const CHORD_INFO_TOKEN_SEP: u32 = 20;
/// `chord_model_info` key: 1 when the model runs paged (its file is larger than the budget), else 0.
/// The `CHORD_INFO_PAGER_*` counters below are 0 for a model that is not paged; they are cumulative
/// over every session of the model and may be read at any time from any thread.
pub const CHORD_INFO_PAGED: u32 = 21;
/// `chord_model_info` key: layers (and output head) resident for the model's lifetime (in device
/// memory on a GPU backend).
pub const CHORD_INFO_PAGER_UNITS_PINNED: u32 = 22;
/// `chord_model_info` key: layers (and output head) streamed through the slots.
pub const CHORD_INFO_PAGER_UNITS_STREAMED: u32 = 23;
/// `chord_model_info` key: bytes of weights held in host memory: pinned layers (on the CPU
/// backend; a GPU's device keeps them) plus slot buffers.
pub const CHORD_INFO_PAGER_BYTES_RESIDENT: u32 = 24;
/// `chord_model_info` key: loads the computing thread had to do itself (stalls).
pub const CHORD_INFO_PAGER_SYNC_LOADS: u32 = 25;
/// `chord_model_info` key: layer uses served by the prefetch thread's work.
pub const CHORD_INFO_PAGER_PREFETCH_HITS: u32 = 26;
/// `chord_model_info` key: slot reuses that evicted a loaded layer.
pub const CHORD_INFO_PAGER_EVICTIONS: u32 = 27;
/// `chord_model_info` key: bytes of weights read from the file (pinned layers included: once, or
/// on a GPU backend once per device they are uploaded to).
pub const CHORD_INFO_PAGER_BYTES_READ: u32 = 28;
/// `chord_model_info` key: nanoseconds computing threads waited for weight bytes.
pub const CHORD_INFO_PAGER_STALL_NS: u32 = 29;
/// `chord_model_info` key: bytes of the layers resident for the model's lifetime in host memory
/// (the rest of `CHORD_INFO_PAGER_BYTES_RESIDENT` is streaming slots; 0 on a GPU backend).
pub const CHORD_INFO_PAGER_BYTES_PINNED: u32 = 30;
/// `chord_model_info` key: the prompt cache's budget in bytes (0: no prompt cache;
/// `chord_model_options_set_prompt_cache`).
pub const CHORD_INFO_PROMPT_CACHE_BUDGET: u32 = 31;
/// `chord_model_info` key: bytes of keys and values the prompt cache's stored prompts hold now
/// (shared with the sessions that stored or took them).
pub const CHORD_INFO_PROMPT_CACHE_BYTES: u32 = 32;
/// `chord_model_info` key: prompt positions taken from the prompt cache instead of computed, over
/// the model's life.
pub const CHORD_INFO_PROMPT_CACHE_TOKENS_REUSED: u32 = 33;
/// `chord_model_info` key: bytes of KV cache one position takes in a session with the default f16
/// cache (keys and values of every layer; twice that for `CHORD_KV_F32`).
pub const CHORD_INFO_KV_BYTES_PER_TOKEN: u32 = 34;
/// `chord_model_info` key: bytes of weights packed at load for the CPU kernels, held in memory of
/// chord's own instead of the file image (`chord_model_options_set_pack_weights`); 0 when none.
pub const CHORD_INFO_PACKED_BYTES: u32 = 35;
/// `chord_model_info` key: kernels launched on the GPU by the model's forward passes, all sessions
/// together (chord's own kernels; the few Burn operations some architectures add are not counted).
/// The `CHORD_INFO_DEVICE_*` counters are 0 on the CPU backend.
pub const CHORD_INFO_DEVICE_LAUNCHES: u32 = 36;
/// `chord_model_info` key: copies from host to GPU memory by the forward passes (token
/// embeddings, RoPE angles, the streamed layers of a paged model, products without a GPU kernel).
pub const CHORD_INFO_DEVICE_UPLOADS: u32 = 37;
/// `chord_model_info` key: bytes of those copies.
pub const CHORD_INFO_DEVICE_UPLOAD_BYTES: u32 = 38;
/// `chord_model_info` key: copies from GPU to host memory by the forward passes (logits, products
/// without a GPU kernel).
pub const CHORD_INFO_DEVICE_DOWNLOADS: u32 = 39;
/// `chord_model_info` key: bytes of those copies.
pub const CHORD_INFO_DEVICE_DOWNLOAD_BYTES: u32 = 40;

/// The `CHORD_BACKEND_*` number of a resolved backend.
fn backend_id(b: BackendKind) -> u32 {
    match b {
        BackendKind::Wgpu => CHORD_BACKEND_WGPU,
        BackendKind::Cuda => CHORD_BACKEND_CUDA,
        BackendKind::Auto | BackendKind::Cpu => CHORD_BACKEND_CPU,
    }
}

/// Reads one integer fact about `model` (`key` is a `CHORD_INFO_*` value) into `*out`.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL or unknown key). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_info(
    model: *const chord_model,
    key: u32,
    out: *mut u64,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let m = &unsafe { obj(model, "model")? }.0;
        let out = unsafe { obj_mut(out, "out")? };
        let cfg = m.config();
        let dim = |f: fn(&crate::model::Config) -> usize| cfg.map_or(0, |c| f(c) as u64);
        let tok = m.tokenizer();
        let id = |t: Option<u32>| t.map_or(u64::MAX, u64::from);
        let pager = m.pager_stats();
        let pg = |f: fn(&crate::pager::PagerStats) -> u64| pager.as_ref().map_or(0, f);
        *out = match key {
            CHORD_INFO_N_VOCAB => tok.n_vocab() as u64,
            CHORD_INFO_N_CTX_TRAIN => dim(|c| c.n_ctx_train),
            CHORD_INFO_N_EMBD => dim(|c| c.n_embd),
            CHORD_INFO_N_LAYER => dim(|c| c.n_layer),
            CHORD_INFO_N_HEAD => dim(|c| c.n_head),
            CHORD_INFO_N_HEAD_KV => dim(|c| c.n_head_kv),
            CHORD_INFO_WEIGHT_BYTES => m.weight_bytes(),
            CHORD_INFO_TOKEN_BOS => id(tok.bos()),
            CHORD_INFO_TOKEN_EOS => id(tok.eos()),
            CHORD_INFO_ADD_BOS => tok.add_bos() as u64,
            CHORD_INFO_N_THREADS => m.n_threads() as u64,
            CHORD_INFO_N_FF => dim(|c| c.n_ff),
            CHORD_INFO_N_PARAMS => m.n_params(),
            CHORD_INFO_TOKEN_EOT => id(tok.eot()),
            CHORD_INFO_TOKEN_PAD => id(tok.pad()),
            CHORD_INFO_ADD_EOS => tok.add_eos() as u64,
            CHORD_INFO_MEMORY_BUDGET => m.memory_budget(),
            CHORD_INFO_USE_MMAP => m.uses_mmap() as u64,
            CHORD_INFO_BACKEND => backend_id(m.backend()) as u64,
            CHORD_INFO_TOKEN_UNK => id(tok.unk()),
            CHORD_INFO_TOKEN_SEP => id(tok.sep()),
            CHORD_INFO_PAGED => pager.is_some() as u64,
            CHORD_INFO_PAGER_UNITS_PINNED => pg(|p| p.units_pinned as u64),
            CHORD_INFO_PAGER_UNITS_STREAMED => pg(|p| p.units_streamed as u64),
            CHORD_INFO_PAGER_BYTES_RESIDENT => pg(|p| p.bytes_resident),
            CHORD_INFO_PAGER_SYNC_LOADS => pg(|p| p.sync_loads),
            CHORD_INFO_PAGER_PREFETCH_HITS => pg(|p| p.prefetch_hits),
            CHORD_INFO_PAGER_EVICTIONS => pg(|p| p.evictions),
            CHORD_INFO_PAGER_BYTES_READ => pg(|p| p.bytes_read),
            CHORD_INFO_PAGER_STALL_NS => pg(|p| p.stall_ns),
            CHORD_INFO_PAGER_BYTES_PINNED => pg(|p| p.bytes_pinned),
            CHORD_INFO_PROMPT_CACHE_BUDGET => m.prompt_cache().map_or(0, |c| c.budget() as u64),
            CHORD_INFO_PROMPT_CACHE_BYTES => m.prompt_cache().map_or(0, |c| c.bytes() as u64),
            CHORD_INFO_PROMPT_CACHE_TOKENS_REUSED => {
                m.prompt_cache().map_or(0, |c| c.tokens_reused())
            }
            CHORD_INFO_KV_BYTES_PER_TOKEN => {
                dim(|c| c.kv_bytes_per_token(crate::backend::KvType::F16))
            }
            CHORD_INFO_PACKED_BYTES => m.packed_bytes(),
            CHORD_INFO_DEVICE_LAUNCHES => m.traffic().launches,
            CHORD_INFO_DEVICE_UPLOADS => m.traffic().uploads,
            CHORD_INFO_DEVICE_UPLOAD_BYTES => m.traffic().upload_bytes,
            CHORD_INFO_DEVICE_DOWNLOADS => m.traffic().downloads,
            CHORD_INFO_DEVICE_DOWNLOAD_BYTES => m.traffic().download_bytes,
            k => crate::bail!(InvalidArgument, "unknown model info key {k}"),
        };
        Ok(())
    })
}

/// Copies the model's architecture name (`general.architecture`, e.g. "llama") into
/// `(buf, cap)` with a terminating NUL; `*out_len` receives its length without the NUL.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_BUFFER_TOO_SMALL` (then `*out_len` is
/// the length needed, without the NUL), `CHORD_E_BAD_MODEL` (the file names none). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_architecture(
    model: *const chord_model,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let m = &unsafe { obj(model, "model")? }.0;
        let arch = m.gguf().get_str("general.architecture")?;
        unsafe { copy_str(arch.as_bytes(), buf, cap, out_len) }
    })
}

/// Copies a human-readable description of the model (architecture, hyperparameters, tokenizer,
/// every tensor's format, shape and size; one fact per line) into `(buf, cap)` with a terminating
/// NUL; `*out_len` receives its length without the NUL.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_BUFFER_TOO_SMALL` (then `*out_len`
/// is the length needed, without the NUL). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_describe(
    model: *const chord_model,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let m = &unsafe { obj(model, "model")? }.0;
        unsafe { copy_str(m.describe().as_bytes(), buf, cap, out_len) }
    })
}

/// GGUF metadata value type (`chord_model_meta_type`): unsigned 8-bit integer. The numbers are
/// the GGUF format's own.
pub const CHORD_META_U8: u32 = 0;
/// GGUF metadata value type: signed 8-bit integer.
pub const CHORD_META_I8: u32 = 1;
/// GGUF metadata value type: unsigned 16-bit integer.
pub const CHORD_META_U16: u32 = 2;
/// GGUF metadata value type: signed 16-bit integer.
pub const CHORD_META_I16: u32 = 3;
/// GGUF metadata value type: unsigned 32-bit integer.
pub const CHORD_META_U32: u32 = 4;
/// GGUF metadata value type: signed 32-bit integer.
pub const CHORD_META_I32: u32 = 5;
/// GGUF metadata value type: 32-bit float.
pub const CHORD_META_F32: u32 = 6;
/// GGUF metadata value type: boolean.
pub const CHORD_META_BOOL: u32 = 7;
/// GGUF metadata value type: UTF-8 string.
pub const CHORD_META_STRING: u32 = 8;
/// GGUF metadata value type: array of values of one type.
pub const CHORD_META_ARRAY: u32 = 9;
/// GGUF metadata value type: unsigned 64-bit integer.
pub const CHORD_META_U64: u32 = 10;
/// GGUF metadata value type: signed 64-bit integer.
pub const CHORD_META_I64: u32 = 11;
/// GGUF metadata value type: 64-bit float.
pub const CHORD_META_F64: u32 = 12;

/// The model and the metadata key of a `chord_model_meta_*` call.
unsafe fn model_and_key<'a>(
    model: *const chord_model,
    key: *const c_char,
    key_len: usize,
) -> crate::Result<(&'a Model, &'a str)> {
    let m = &unsafe { obj(model, "model")? }.0;
    let k = unsafe { text(key, key_len, "key")? };
    Ok((m, k))
}

/// A scalar value (`index` None) or an array element, by key.
fn lookup<'a>(
    m: &'a Model,
    key: &str,
    index: Option<usize>,
) -> crate::Result<(Cow<'a, Value>, String)> {
    match index {
        None => Ok((
            Cow::Borrowed(m.gguf().meta(key)?),
            format!("metadata key '{key}'"),
        )),
        Some(i) => Ok((
            Cow::Owned(m.gguf().meta_element(key, i)?),
            format!("element {i} of metadata key '{key}'"),
        )),
    }
}

/// Number of metadata keys in the model's file into `*out`.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL model or out). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_meta_count(
    model: *const chord_model,
    out: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let m = &unsafe { obj(model, "model")? }.0;
        *unsafe { obj_mut(out, "out")? } = m.gguf().metadata().len();
        Ok(())
    })
}

/// Copies the key of metadata entry `index` (0 to count - 1, in file order) into `(buf, cap)` with
/// a terminating NUL; `*out_len` receives its length without the NUL.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL model, NULL buf with enough cap, or
/// `index` not below `chord_model_meta_count`), `CHORD_E_BUFFER_TOO_SMALL` (then `*out_len` is the
/// length needed, without the NUL). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_meta_key_by_index(
    model: *const chord_model,
    index: usize,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let m = &unsafe { obj(model, "model")? }.0;
        let (k, _) = m.gguf().meta_entry(index)?;
        unsafe { copy_str(k.as_bytes(), buf, cap, out_len) }
    })
}

/// The type (`CHORD_META_*`) of metadata value `key` (UTF-8, `key_len` bytes, no NUL needed) into
/// `*out`.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL pointer), `CHORD_E_INVALID_UTF8`,
/// `CHORD_E_NOT_FOUND` (no such key). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_meta_type(
    model: *const chord_model,
    key: *const c_char,
    key_len: usize,
    out: *mut u32,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let (m, k) = unsafe { model_and_key(model, key, key_len)? };
        let out = unsafe { obj_mut(out, "out")? };
        *out = MetaType::of(m.gguf().meta(k)?) as u32;
        Ok(())
    })
}

/// Reads metadata value `key` as an unsigned integer into `*out`: any integer type (8 to 64 bits,
/// signed or not) whose value is not negative.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL pointer), `CHORD_E_INVALID_UTF8`,
/// `CHORD_E_NOT_FOUND` (no such key), `CHORD_E_TYPE_MISMATCH` (not an integer, or negative).
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_meta_u64(
    model: *const chord_model,
    key: *const c_char,
    key_len: usize,
    out: *mut u64,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let (m, k) = unsafe { model_and_key(model, key, key_len)? };
        let out = unsafe { obj_mut(out, "out")? };
        let (v, what) = lookup(m, k, None)?;
        *out = to_u64(&v, &what)?;
        Ok(())
    })
}

/// Reads metadata value `key` as a signed integer into `*out`: any integer type whose value fits
/// in an `int64_t`.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL pointer), `CHORD_E_INVALID_UTF8`,
/// `CHORD_E_NOT_FOUND` (no such key), `CHORD_E_TYPE_MISMATCH` (not an integer, or a `u64` above
/// `INT64_MAX`). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_meta_i64(
    model: *const chord_model,
    key: *const c_char,
    key_len: usize,
    out: *mut i64,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let (m, k) = unsafe { model_and_key(model, key, key_len)? };
        let out = unsafe { obj_mut(out, "out")? };
        let (v, what) = lookup(m, k, None)?;
        *out = to_i64(&v, &what)?;
        Ok(())
    })
}

/// Reads metadata value `key` as a float into `*out`: an `f32` (converted exactly) or an `f64`.
/// Integers are not converted.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL pointer), `CHORD_E_INVALID_UTF8`,
/// `CHORD_E_NOT_FOUND` (no such key), `CHORD_E_TYPE_MISMATCH` (not a float). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_meta_f64(
    model: *const chord_model,
    key: *const c_char,
    key_len: usize,
    out: *mut f64,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let (m, k) = unsafe { model_and_key(model, key, key_len)? };
        let out = unsafe { obj_mut(out, "out")? };
        let (v, what) = lookup(m, k, None)?;
        *out = to_f64(&v, &what)?;
        Ok(())
    })
}

/// Reads the bool metadata value `key` into `*out` as 0 or 1.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL pointer), `CHORD_E_INVALID_UTF8`,
/// `CHORD_E_NOT_FOUND` (no such key), `CHORD_E_TYPE_MISMATCH` (not a bool). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_meta_bool(
    model: *const chord_model,
    key: *const c_char,
    key_len: usize,
    out: *mut u32,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let (m, k) = unsafe { model_and_key(model, key, key_len)? };
        let out = unsafe { obj_mut(out, "out")? };
        let (v, what) = lookup(m, k, None)?;
        *out = to_bool(&v, &what)? as u32;
        Ok(())
    })
}

/// Copies the string metadata value `key` (UTF-8) into `(buf, cap)` with a terminating NUL;
/// `*out_len` receives its length without the NUL. (A string may itself contain NUL bytes; use
/// `*out_len`.)
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL pointer), `CHORD_E_INVALID_UTF8`,
/// `CHORD_E_NOT_FOUND` (no such key), `CHORD_E_TYPE_MISMATCH` (not a string),
/// `CHORD_E_BUFFER_TOO_SMALL` (then `*out_len` is the length needed, without the NUL).
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_meta_string(
    model: *const chord_model,
    key: *const c_char,
    key_len: usize,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let (m, k) = unsafe { model_and_key(model, key, key_len)? };
        let (v, what) = lookup(m, k, None)?;
        let s = to_str(&v, &what)?;
        unsafe { copy_str(s.as_bytes(), buf, cap, out_len) }
    })
}

/// The number of elements of the array metadata value `key` into `*out_len`, and their type
/// (`CHORD_META_*`, known also for an empty array) into `*out_type` (may be NULL).
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL model, key or out_len),
/// `CHORD_E_INVALID_UTF8`, `CHORD_E_NOT_FOUND` (no such key), `CHORD_E_TYPE_MISMATCH` (not an
/// array). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_meta_array_len(
    model: *const chord_model,
    key: *const c_char,
    key_len: usize,
    out_len: *mut usize,
    out_type: *mut u32,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let (m, k) = unsafe { model_and_key(model, key, key_len)? };
        let out_len = unsafe { obj_mut(out_len, "out_len")? };
        let n = m.gguf().meta_array(k)?.len();
        let ty = m.gguf().meta_array_type(k)? as u32;
        *out_len = n;
        unsafe { super::args::put(out_type, ty) };
        Ok(())
    })
}

/// Reads element `index` of the array metadata value `key` as an unsigned integer into `*out`
/// (same widening as `chord_model_meta_u64`).
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL pointer, or `index` not below the
/// array's length), `CHORD_E_INVALID_UTF8`, `CHORD_E_NOT_FOUND` (no such key),
/// `CHORD_E_TYPE_MISMATCH` (not an array, or the element is not a non-negative integer).
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_meta_array_u64(
    model: *const chord_model,
    key: *const c_char,
    key_len: usize,
    index: usize,
    out: *mut u64,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let (m, k) = unsafe { model_and_key(model, key, key_len)? };
        let out = unsafe { obj_mut(out, "out")? };
        let (v, what) = lookup(m, k, Some(index))?;
        *out = to_u64(&v, &what)?;
        Ok(())
    })
}

/// Reads element `index` of the array metadata value `key` as a signed integer into `*out`
/// (same widening as `chord_model_meta_i64`).
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL pointer, or `index` not below the
/// array's length), `CHORD_E_INVALID_UTF8`, `CHORD_E_NOT_FOUND` (no such key),
/// `CHORD_E_TYPE_MISMATCH` (not an array, or the element is not an integer that fits).
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_meta_array_i64(
    model: *const chord_model,
    key: *const c_char,
    key_len: usize,
    index: usize,
    out: *mut i64,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let (m, k) = unsafe { model_and_key(model, key, key_len)? };
        let out = unsafe { obj_mut(out, "out")? };
        let (v, what) = lookup(m, k, Some(index))?;
        *out = to_i64(&v, &what)?;
        Ok(())
    })
}

/// Reads element `index` of the array metadata value `key` as a float into `*out` (an `f32` or
/// `f64` element).
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL pointer, or `index` not below the
/// array's length), `CHORD_E_INVALID_UTF8`, `CHORD_E_NOT_FOUND` (no such key),
/// `CHORD_E_TYPE_MISMATCH` (not an array, or the element is not a float). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_meta_array_f64(
    model: *const chord_model,
    key: *const c_char,
    key_len: usize,
    index: usize,
    out: *mut f64,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let (m, k) = unsafe { model_and_key(model, key, key_len)? };
        let out = unsafe { obj_mut(out, "out")? };
        let (v, what) = lookup(m, k, Some(index))?;
        *out = to_f64(&v, &what)?;
        Ok(())
    })
}

/// Reads element `index` of the bool array metadata value `key` into `*out` as 0 or 1.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL pointer, or `index` not below the
/// array's length), `CHORD_E_INVALID_UTF8`, `CHORD_E_NOT_FOUND` (no such key),
/// `CHORD_E_TYPE_MISMATCH` (not an array, or the element is not a bool). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_meta_array_bool(
    model: *const chord_model,
    key: *const c_char,
    key_len: usize,
    index: usize,
    out: *mut u32,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let (m, k) = unsafe { model_and_key(model, key, key_len)? };
        let out = unsafe { obj_mut(out, "out")? };
        let (v, what) = lookup(m, k, Some(index))?;
        *out = to_bool(&v, &what)? as u32;
        Ok(())
    })
}

/// Copies element `index` of the string array metadata value `key` (e.g. one entry of
/// `tokenizer.ggml.tokens`) into `(buf, cap)` with a terminating NUL; `*out_len` receives its
/// length without the NUL.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL pointer, or `index` not below the
/// array's length), `CHORD_E_INVALID_UTF8`, `CHORD_E_NOT_FOUND` (no such key),
/// `CHORD_E_TYPE_MISMATCH` (not an array, or the element is not a string),
/// `CHORD_E_BUFFER_TOO_SMALL` (then `*out_len` is the length needed, without the NUL).
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_meta_array_string(
    model: *const chord_model,
    key: *const c_char,
    key_len: usize,
    index: usize,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let (m, k) = unsafe { model_and_key(model, key, key_len)? };
        let (v, what) = lookup(m, k, Some(index))?;
        let s = to_str(&v, &what)?;
        unsafe { copy_str(s.as_bytes(), buf, cap, out_len) }
    })
}

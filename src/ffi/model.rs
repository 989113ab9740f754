//! Model handles: load, reference counting, and queries.

use super::args::{copy_str, obj, obj_mut, text};
use super::{boundary, chord_error, chord_model_options, chord_status, guard};
use crate::model::{Model, ModelOptions};
use std::ffi::c_char;
use std::sync::Arc;

/// A loaded model. Immutable and thread-safe: any number of threads may use one model at once.
/// Reference counted: `chord_model_retain` adds a reference, `chord_model_free` drops one; the
/// model is freed with its last reference (sessions hold their own).
pub struct chord_model(pub(crate) Arc<Model>);

/// Loads the GGUF model at `path` (UTF-8, `path_len` bytes, no NUL needed) into `*out`.
/// `opts` may be NULL for defaults. The file stays mapped until the model is freed.
///
/// Statuses: `CHORD_OK`; `CHORD_E_INVALID_ARGUMENT` (NULL path or out), `CHORD_E_INVALID_UTF8`,
/// `CHORD_E_IO` (cannot open or map), `CHORD_E_GGUF_*` (malformed file), `CHORD_E_UNKNOWN_ARCHITECTURE`,
/// `CHORD_E_BAD_MODEL` (missing or inconsistent metadata or tensors), `CHORD_E_UNSUPPORTED`.
/// On error `*out` is untouched. Thread-safe.
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

/// `chord_model_info` key: tokens in the vocabulary.
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
        *out = match key {
            CHORD_INFO_N_VOCAB => tok.n_vocab() as u64,
            CHORD_INFO_N_CTX_TRAIN => dim(|c| c.n_ctx_train),
            CHORD_INFO_N_EMBD => dim(|c| c.n_embd),
            CHORD_INFO_N_LAYER => dim(|c| c.n_layer),
            CHORD_INFO_N_HEAD => dim(|c| c.n_head),
            CHORD_INFO_N_HEAD_KV => dim(|c| c.n_head_kv),
            CHORD_INFO_WEIGHT_BYTES => m.gguf().tensors().iter().map(|t| t.size as u64).sum(),
            CHORD_INFO_TOKEN_BOS => id(tok.bos()),
            CHORD_INFO_TOKEN_EOS => id(tok.eos()),
            CHORD_INFO_ADD_BOS => tok.add_bos() as u64,
            CHORD_INFO_N_THREADS => m.n_threads() as u64,
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

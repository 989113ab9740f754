//! Option objects: opaque, created with defaults, changed with setters (no structs cross the ABI).

use super::args::{flag, obj_mut, text};
use super::{boundary, chord_error, chord_status};
use crate::bail;
use crate::model::{BackendKind, ModelOptions};
use crate::session::{GenerateParams, SamplerParams, SessionOptions};
use std::ffi::c_char;

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
}

/// Backend choice: the best available (the CPU in this version).
pub const CHORD_BACKEND_AUTO: u32 = 0;
/// Backend choice: the CPU (burn-flex).
pub const CHORD_BACKEND_CPU: u32 = 1;
/// Backend choice: wgpu (only in builds with the `wgpu` feature).
pub const CHORD_BACKEND_WGPU: u32 = 2;

macro_rules! new_free {
    ($ty:ident, $new:ident, $free:ident, $init:expr, $what:literal) => {
        #[doc = concat!("Creates ", $what, " with default values into `*out`.")]
        ///
        /// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (out is NULL). Thread-safe.
        #[no_mangle]
        pub unsafe extern "C" fn $new(
            out: *mut *mut $ty,
            err: *mut *mut chord_error,
        ) -> chord_status {
            boundary(err, || {
                let out = unsafe { obj_mut(out, "out")? };
                *out = Box::into_raw(Box::new($init));
                Ok(())
            })
        }

        #[doc = concat!("Frees ", $what, ". NULL is allowed and ignored.")]
        #[no_mangle]
        pub unsafe extern "C" fn $free(p: *mut $ty) {
            if !p.is_null() {
                // SAFETY: created by the matching _new and freed once, by contract.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    };
}

new_free!(
    chord_model_options,
    chord_model_options_new,
    chord_model_options_free,
    chord_model_options(ModelOptions::default()),
    "model options"
);
new_free!(
    chord_session_options,
    chord_session_options_new,
    chord_session_options_free,
    chord_session_options(SessionOptions::default()),
    "session options"
);
new_free!(
    chord_generate_params,
    chord_generate_params_new,
    chord_generate_params_free,
    chord_generate_params { gen: GenerateParams::default(), sampler: SamplerParams::default() },
    "generation parameters (128 tokens, llama.cpp's default sampling: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, seed 0)"
);

macro_rules! setter {
    ($ty:ident, $fn:ident, $arg:ident : $argty:ty, |$o:ident| $body:block, $doc:literal) => {
        #[doc = $doc]
        ///
        /// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL object or value out of range).
        #[no_mangle]
        pub unsafe extern "C" fn $fn(opts: *mut $ty, $arg: $argty, err: *mut *mut chord_error) -> chord_status {
            boundary(err, || {
                let $o = unsafe { obj_mut(opts, "opts")? };
                $body
                Ok(())
            })
        }
    };
}

setter!(chord_model_options, chord_model_options_set_threads, n: u32, |o| { o.0.n_threads = n as usize; },
    "Worker threads for the model's sessions; 0 (the default) uses one per core.");
setter!(chord_model_options, chord_model_options_set_backend, backend: u32, |o| {
    o.0.backend = match backend {
        CHORD_BACKEND_AUTO => BackendKind::Auto,
        CHORD_BACKEND_CPU => BackendKind::Cpu,
        CHORD_BACKEND_WGPU => BackendKind::Wgpu,
        b => bail!(InvalidArgument, "unknown backend {b}"),
    };
}, "Compute backend: `CHORD_BACKEND_AUTO` (default), `_CPU` or `_WGPU`. A backend this build lacks is reported by `chord_model_load` as `CHORD_E_UNSUPPORTED`.");
setter!(chord_model_options, chord_model_options_set_vocab_only, vocab_only: u32, |o| { o.0.vocab_only = flag(vocab_only, "vocab_only")?; },
    "1: load only the vocabulary (tokenize/detokenize; sessions fail with `CHORD_E_UNSUPPORTED`). Default 0.");

setter!(chord_session_options, chord_session_options_set_n_ctx, n_ctx: u32, |o| { o.0.n_ctx = n_ctx as usize; },
    "Context length in tokens; 0 (the default) uses the model's training context, at most 4096.");
setter!(chord_session_options, chord_session_options_set_n_batch, n_batch: u32, |o| { o.0.n_batch = n_batch as usize; },
    "Most prompt tokens per forward batch; 0 (the default) means 512.");

setter!(chord_generate_params, chord_generate_params_set_max_tokens, n: u32, |o| { o.gen.max_tokens = n as usize; },
    "Most tokens to generate (default 128).");
setter!(chord_generate_params, chord_generate_params_set_temperature, t: f32, |o| {
    if !t.is_finite() { bail!(InvalidArgument, "temperature must be finite"); }
    o.sampler.temperature = t;
}, "Sampling temperature; 0 or below is greedy (always the most likely token). Default 0.8.");
setter!(chord_generate_params, chord_generate_params_set_top_k, k: u32, |o| { o.sampler.top_k = k as usize; },
    "Keep the k most likely tokens; 0 keeps all. Default 40.");
setter!(chord_generate_params, chord_generate_params_set_top_p, p: f32, |o| {
    if !(0.0..=1.0).contains(&p) { bail!(InvalidArgument, "top_p must be in [0, 1], got {p}"); }
    o.sampler.top_p = p;
}, "Nucleus sampling threshold in [0, 1]; 1 keeps all. Default 0.95.");
setter!(chord_generate_params, chord_generate_params_set_min_p, p: f32, |o| {
    if !(0.0..=1.0).contains(&p) { bail!(InvalidArgument, "min_p must be in [0, 1], got {p}"); }
    o.sampler.min_p = p;
}, "Drop tokens less likely than min_p times the most likely; in [0, 1], 0 keeps all. Default 0.05.");
setter!(chord_generate_params, chord_generate_params_set_repeat_penalty, p: f32, |o| {
    if !(p.is_finite() && p > 0.0) { bail!(InvalidArgument, "repeat_penalty must be positive, got {p}"); }
    o.sampler.repeat_penalty = p;
}, "Repetition penalty over the last `penalty_last_n` tokens; 1 (the default) is off.");
setter!(chord_generate_params, chord_generate_params_set_frequency_penalty, p: f32, |o| {
    if !p.is_finite() { bail!(InvalidArgument, "frequency_penalty must be finite"); }
    o.sampler.frequency_penalty = p;
}, "Frequency penalty (subtracted per occurrence); 0 (the default) is off.");
setter!(chord_generate_params, chord_generate_params_set_presence_penalty, p: f32, |o| {
    if !p.is_finite() { bail!(InvalidArgument, "presence_penalty must be finite"); }
    o.sampler.presence_penalty = p;
}, "Presence penalty (subtracted once per token seen); 0 (the default) is off.");
setter!(chord_generate_params, chord_generate_params_set_penalty_last_n, n: u32, |o| { o.sampler.penalty_last_n = n as usize; },
    "How many recent tokens the penalties consider (default 64); 0 disables them.");
setter!(chord_generate_params, chord_generate_params_set_seed, seed: u64, |o| { o.sampler.seed = seed; },
    "Seed of the sampler's random generator (default 0). The same seed, prompt and settings give the same tokens.");

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

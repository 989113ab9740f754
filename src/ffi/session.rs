//! Session handles: prompt input, logits, generation with a streaming callback, cancellation.

use super::args::{copy_out, flag, obj, obj_mut, put, slice, text};
use super::{
    boundary, chord_error, chord_generate_params, chord_model, chord_session_options, chord_status,
    chord_token,
};
use crate::bail;
use crate::error::Result;
use crate::session::{GenerateParams, Sampler, SamplerParams, Session, SessionOptions, StopReason};
use parking_lot::Mutex;
use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A session: a context (KV cache) over a model. One thread at a time may use it (a second gets
/// `CHORD_E_BUSY`); it may move between threads. `chord_session_cancel` may be called from any
/// thread at any time. Free with `chord_session_free`.
pub struct chord_session {
    inner: Mutex<Session>,
    /// Counts finished calls; changes only while the session is held, so a running call sees one
    /// value throughout.
    epoch: AtomicU64,
    /// The epoch of the call that `chord_session_cancel` last aimed at (`u64::MAX`: none).
    cancel_epoch: AtomicU64,
    poisoned: AtomicBool,
}

impl chord_session {
    /// Runs `f` with the session locked; `Busy` if another thread holds it. A panic inside poisons
    /// the session, and every later call reports `Internal`.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Session, &(dyn Fn() -> bool + Sync)) -> Result<T>,
    ) -> Result<T> {
        let Some(mut s) = self.inner.try_lock() else {
            bail!(Busy, "the session is in use by another thread");
        };
        if self.poisoned.load(Ordering::Acquire) {
            bail!(Internal, "the session is unusable after an internal error");
        }
        // A cancel aims at the call holding the session: it records that call's epoch. This call
        // is cancelled when the recorded epoch is its own, even if the cancel came between its
        // taking the session and its first check; a cancel aimed at an earlier call is ignored.
        let epoch = self.epoch.load(Ordering::Acquire);
        let cancel = || self.cancel_epoch.load(Ordering::Acquire) == epoch;
        let poison = PoisonOnUnwind(&self.poisoned);
        let r = f(&mut s, &cancel);
        std::mem::forget(poison);
        self.epoch.store(epoch.wrapping_add(1), Ordering::Release);
        r
    }
}

struct PoisonOnUnwind<'a>(&'a AtomicBool);
impl Drop for PoisonOnUnwind<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Creates a session over `model` into `*out`; `opts` may be NULL for defaults. The session holds
/// its own reference to the model.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_UNSUPPORTED` (vocabulary-only
/// model). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_session_new(
    model: *const chord_model,
    opts: *const chord_session_options,
    out: *mut *mut chord_session,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let m = unsafe { obj(model, "model")? }.0.clone();
        let out = unsafe { obj_mut(out, "out")? };
        let opts = unsafe { opts.as_ref() }.map_or_else(SessionOptions::default, |o| o.0.clone());
        let s = Session::new(m, &opts)?;
        *out = Box::into_raw(Box::new(chord_session {
            inner: Mutex::new(s),
            epoch: AtomicU64::new(0),
            cancel_epoch: AtomicU64::new(u64::MAX),
            poisoned: AtomicBool::new(false),
        }));
        Ok(())
    })
}

/// Frees a session. NULL is allowed and ignored. The caller must make sure no other thread is
/// using it (cancel and wait for the call to return first).
#[no_mangle]
pub unsafe extern "C" fn chord_session_free(session: *mut chord_session) {
    if !session.is_null() {
        // SAFETY: created by chord_session_new and freed once, by contract.
        super::guard((), || drop(unsafe { Box::from_raw(session) }));
    }
}

/// Asks the call running in `session` (append or generate) to stop at the next layer or token;
/// it then returns `CHORD_E_CANCELLED` and the session stays usable, with the context as it was
/// before that call (append) or with the tokens generated so far (generate). Idempotent; does
/// nothing when no call is running (a call that has not yet taken the session is not affected).
/// Thread-safe: call it from any thread.
#[no_mangle]
pub unsafe extern "C" fn chord_session_cancel(session: *const chord_session) {
    if let Some(s) = unsafe { session.as_ref() } {
        let epoch = s.epoch.load(Ordering::Acquire);
        if s.inner.is_locked() {
            s.cancel_epoch.store(epoch, Ordering::Release);
        }
    }
}

/// Number of tokens in the session's context into `*out`.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_BUSY`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_n_tokens(
    session: *const chord_session,
    out: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        let out = unsafe { obj_mut(out, "out")? };
        *out = s.with(|s, _| Ok(s.tokens().len()))?;
        Ok(())
    })
}

/// Context capacity of the session in tokens into `*out`.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_BUSY`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_n_ctx(
    session: *const chord_session,
    out: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        let out = unsafe { obj_mut(out, "out")? };
        *out = s.with(|s, _| Ok(s.n_ctx()))?;
        Ok(())
    })
}

/// Empties the session's context.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_BUSY`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_reset(
    session: *const chord_session,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        s.with(|s, _| {
            s.reset();
            Ok(())
        })
    })
}

/// Flag for `chord_session_append_text`: add BOS/EOS as the model's file asks (only when the
/// context is empty).
pub const CHORD_APPEND_ADD_SPECIAL: u32 = 1;
/// Flag for `chord_session_append_text`: recognise special-token text such as `<|im_start|>`.
pub const CHORD_APPEND_PARSE_SPECIAL: u32 = 2;

/// Tokenizes `text` (UTF-8, `len` bytes) and evaluates it after the context (prompt processing).
/// `flags` is a combination of `CHORD_APPEND_*`. `*out_n_tokens` (may be NULL) receives the
/// number of tokens added. On error nothing is added.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_INVALID_UTF8`, `CHORD_E_CONTEXT_FULL`,
/// `CHORD_E_CANCELLED`, `CHORD_E_BUSY`, `CHORD_E_INTERNAL`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_append_text(
    session: *const chord_session,
    text_ptr: *const c_char,
    len: usize,
    flags: u32,
    out_n_tokens: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        let t = unsafe { text(text_ptr, len, "text")? };
        if flags & !(CHORD_APPEND_ADD_SPECIAL | CHORD_APPEND_PARSE_SPECIAL) != 0 {
            bail!(InvalidArgument, "unknown append flags {flags:#x}");
        }
        let add = flags & CHORD_APPEND_ADD_SPECIAL != 0;
        let parse = flags & CHORD_APPEND_PARSE_SPECIAL != 0;
        let n = s.with(|s, cancel| s.append_text(t, add, parse, cancel))?;
        unsafe { put(out_n_tokens, n) };
        Ok(())
    })
}

/// Evaluates `n` tokens after the context. With `all_logits` 1 the logits of every one of them are
/// kept (see `chord_session_logits`), else only those of the last. On error nothing is added.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_INVALID_TOKEN`, `CHORD_E_CONTEXT_FULL`,
/// `CHORD_E_CANCELLED`, `CHORD_E_BUSY`, `CHORD_E_INTERNAL`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_append_tokens(
    session: *const chord_session,
    tokens: *const chord_token,
    n: usize,
    all_logits: u32,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        let ids = unsafe { slice(tokens, n, "tokens")? };
        let all = flag(all_logits, "all_logits")?;
        s.with(|s, cancel| s.append_tokens(ids, all, cancel))
    })
}

/// Copies the logits of the last evaluated position(s) into `(buf, cap)` floats, row-major
/// `[rows x n_vocab]` (one row unless the last append asked for all); `*out_len` receives the
/// number of floats (also when the buffer is too small). Empty before anything was evaluated.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_BUFFER_TOO_SMALL`, `CHORD_E_BUSY`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_logits(
    session: *const chord_session,
    buf: *mut f32,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        s.with(|s, _| unsafe { copy_out(s.logits(), buf, cap, out_len) })
    })
}

/// Receives generated text: `len` bytes of whole UTF-8 characters at `text` (not NUL-terminated,
/// borrowed for the call only). Runs on the thread that called `chord_session_generate`. Return 1
/// to continue, 0 to stop.
pub type chord_text_callback =
    Option<unsafe extern "C" fn(text: *const c_char, len: usize, user_data: *mut c_void) -> u32>;

/// Generation ended at an end-of-generation token.
pub const CHORD_STOP_EOG: u32 = 0;
/// Generation ended after the most tokens allowed.
pub const CHORD_STOP_MAX_TOKENS: u32 = 1;
/// Generation ended at a stop string.
pub const CHORD_STOP_STRING: u32 = 2;
/// The callback returned 0.
pub const CHORD_STOP_CALLBACK: u32 = 3;
/// The context is full.
pub const CHORD_STOP_CONTEXT_FULL: u32 = 4;

/// Generates text after the context, calling `callback` (may be NULL) with each piece. `params`
/// may be NULL for defaults. `*out_stop_reason` (may be NULL) receives a `CHORD_STOP_*` value.
/// The generated tokens stay in the context, so a later call continues the text. The context must
/// not be empty.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (also: empty context), `CHORD_E_CANCELLED`
/// (the tokens generated so far stay), `CHORD_E_BUSY`, `CHORD_E_INTERNAL`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_generate(
    session: *const chord_session,
    params: *const chord_generate_params,
    callback: chord_text_callback,
    user_data: *mut c_void,
    out_stop_reason: *mut u32,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        let (gen, sp) = match unsafe { params.as_ref() } {
            Some(p) => (p.gen.clone(), p.sampler.clone()),
            None => (GenerateParams::default(), SamplerParams::default()),
        };
        let mut sampler = Sampler::new(sp);
        let mut on_text = |t: &str| match callback {
            // SAFETY: the host promised a valid function; text is valid for the call.
            Some(cb) => unsafe { cb(t.as_ptr() as *const c_char, t.len(), user_data) != 0 },
            None => true,
        };
        let reason = s.with(|s, cancel| s.generate(&gen, &mut sampler, &mut on_text, cancel))?;
        let code = match reason {
            StopReason::EndOfGeneration => CHORD_STOP_EOG,
            StopReason::MaxTokens => CHORD_STOP_MAX_TOKENS,
            StopReason::StopString => CHORD_STOP_STRING,
            StopReason::Callback => CHORD_STOP_CALLBACK,
            StopReason::ContextFull => CHORD_STOP_CONTEXT_FULL,
        };
        unsafe { put(out_stop_reason, code) };
        Ok(())
    })
}

/// Counters of the session's last append or generate call (each pointer may be NULL): prompt
/// tokens and microseconds, generated tokens and microseconds.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_BUSY`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_stats(
    session: *const chord_session,
    prefill_tokens: *mut u64,
    prefill_us: *mut u64,
    decode_tokens: *mut u64,
    decode_us: *mut u64,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        let st = s.with(|s, _| Ok(s.stats()))?;
        unsafe {
            put(prefill_tokens, st.prefill_tokens as u64);
            put(prefill_us, st.prefill_time.as_micros() as u64);
            put(decode_tokens, st.decode_tokens as u64);
            put(decode_us, st.decode_time.as_micros() as u64);
        }
        Ok(())
    })
}

//! Session handles: prompt input, logits, generation with a streaming callback, cancellation.

use super::args::{copy_out, flag, obj, obj_mut, put, slice, text};
use super::{
    boundary, chord_error, chord_generate_params, chord_model, chord_session_options, chord_status,
    chord_token,
};
use crate::bail;
use crate::model::Pooling;
use crate::session::{
    state, Event, GenerateParams, Output, Sampler, SamplerParams, Session, SessionHandle,
    SessionOptions, Stats, StopReason,
};
use std::ffi::{c_char, c_void};
use std::time::Duration;

/// A session: a context (KV cache) over a model. One thread at a time may use it (a second gets
/// `CHORD_E_BUSY`); it may move between threads. `chord_session_cancel` may be called from any
/// thread at any time. Free with `chord_session_free`.
pub struct chord_session(pub(crate) SessionHandle);

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
        *out = Box::into_raw(Box::new(chord_session(SessionHandle::new(s))));
        Ok(())
    })
}

/// Creates into `*out` a new session holding `session`'s context: its tokens, their KV cache and
/// its logits (so `chord_session_generate` can start at once), without computing anything; same
/// context length and batch size, counters at zero. The two are independent afterwards: either
/// may append, generate, truncate, save or load state, or be freed first. On the CPU's f16 cache
/// (the default) the fork shares the memory of the positions it starts with instead of copying it:
/// N forks of a P-token prompt hold about P positions of KV plus each one's own tokens (each holds
/// only the blocks of 16 positions it writes itself; see `chord_session_kv_bytes`). Forks of
/// forks share alike.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_BUSY` (another call or a background
/// generation holds `session`). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_session_fork(
    session: *const chord_session,
    out: *mut *mut chord_session,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        let out = unsafe { obj_mut(out, "out")? };
        let fork = s.0.with(|s, _| Ok(s.fork()))?;
        *out = Box::into_raw(Box::new(chord_session(SessionHandle::new(fork))));
        Ok(())
    })
}

/// Bytes of memory the session's KV cache holds now into `*out`. Memory shared with forks
/// (`chord_session_fork`) counts as this session's share: a block held by k sessions counts 1/k
/// in each, so the figures of sessions that share memory add up to what they hold together. The
/// CPU's f16 cache grows in blocks of 16 positions as the context does (and shrinks when it is
/// truncated); an f32 cache, and a GPU's, holds its whole context from the start.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_BUSY`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_kv_bytes(
    session: *const chord_session,
    out: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    unsafe { count(session, out, err, |s| s.kv_bytes().round() as usize) }
}

/// Frees a session. NULL is allowed and ignored. A background generation
/// (`chord_session_generate_start`) still running is cancelled and its worker thread joined first.
/// The caller must make sure no other thread is inside a call on this session (cancel and wait for
/// that call to return first).
#[no_mangle]
pub unsafe extern "C" fn chord_session_free(session: *mut chord_session) {
    if !session.is_null() {
        // SAFETY: created by chord_session_new and freed once, by contract.
        super::guard((), || drop(unsafe { Box::from_raw(session) }));
    }
}

/// Asks the call running in `session` (append, generate, or a background generation started with
/// `chord_session_generate_start`) to stop at the next layer boundary of its forward pass or
/// before its next token; it then returns (or, in the background, ends with an error event)
/// `CHORD_E_CANCELLED` and the session stays usable: a cancelled append adds nothing (the whole
/// call is rolled back), a cancelled generation keeps the tokens generated before the cancel.
/// Idempotent; does nothing when no call is running (a call that has not yet taken the session is
/// not affected). Thread-safe: call it from any thread.
#[no_mangle]
pub unsafe extern "C" fn chord_session_cancel(session: *const chord_session) {
    if let Some(s) = unsafe { session.as_ref() } {
        super::guard((), || s.0.cancel());
    }
}

/// `*out = f(session)` for the session getters: `CHORD_E_INVALID_ARGUMENT` for a NULL pointer,
/// `CHORD_E_BUSY` while another call holds the session.
///
/// # Safety
/// As for the getters: `session` and `out` NULL or valid, `err` as every call's.
unsafe fn count(
    session: *const chord_session,
    out: *mut usize,
    err: *mut *mut chord_error,
    f: impl FnOnce(&Session) -> usize,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        let out = unsafe { obj_mut(out, "out")? };
        *out = s.0.with(|s, _| Ok(f(s)))?;
        Ok(())
    })
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
    unsafe { count(session, out, err, |s| s.tokens().len()) }
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
    unsafe { count(session, out, err, |s| s.n_ctx()) }
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
        s.0.with(|s, _| {
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
        let n = s.0.with(|s, cancel| s.append_text(t, add, parse, cancel))?;
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
        s.0.with(|s, cancel| s.append_tokens(ids, all, cancel))
    })
}

/// Appends `tokens[i]` to `sessions[i]` for each of the `n` sessions (all over one model, each
/// given once) in one forward pass: for each session the same as `chord_session_append_tokens`
/// with that one token, but the weights are read once for the whole batch, so that decoding many
/// sessions at once costs little more than one. Afterwards each session's logits
/// (`chord_session_logits`) are those of its token: the host samples each session's next token
/// (`chord_sampler_sample`, `chord_sampler_accept`) and calls this again, for as long as it likes;
/// sessions may join and leave the batch between calls. The logits equal those of decoding each
/// session alone bit for bit for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q5_K and Q6_K weights; the batched
/// F16, BF16, Q3_K and Q4_K products round differently in the last bits (as llama.cpp's do).
///
/// Every session is checked first (token id, context space, one model, not busy): on such an
/// error no session changes. A cancel (`chord_session_cancel`, from another thread) of one session
/// leaves that session out of the step, unchanged as by a cancelled `chord_session_append_tokens`
/// (its context as before, no logits: append or decode again before generating), while the others
/// decode their token; the call then returns `CHORD_E_CANCELLED` with a message naming the
/// cancelled sessions' indices (the others' results stand). When every session of the batch is
/// cancelled the pass stops at its next layer and each is left as a cancelled one is.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL pointers, sessions of different models),
/// `CHORD_E_INVALID_TOKEN`, `CHORD_E_CONTEXT_FULL` (a session is full; its message says which
/// token), `CHORD_E_BUSY` (a session is in use, runs a background generation, or is given twice),
/// `CHORD_E_CANCELLED` (as above), `CHORD_E_INTERNAL`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_decode_batch(
    sessions: *const *const chord_session,
    tokens: *const chord_token,
    n: usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let ptrs = unsafe { slice(sessions, n, "sessions")? };
        let ids = unsafe { slice(tokens, n, "tokens")? };
        let handles = ptrs
            .iter()
            .map(|&p| unsafe { obj(p, "sessions[i]") }.map(|s| &s.0))
            .collect::<crate::Result<Vec<&SessionHandle>>>()?;
        SessionHandle::with_all(&handles, |ss, cancel| {
            Session::decode_batch(ss, ids, cancel)
        })
    })
}

/// Flag for `chord_session_embed`: scale the embedding to unit Euclidean length.
pub const CHORD_EMBED_NORMALIZE: u32 = 4;
/// Pooling for `chord_session_embed`: the one the model's file names (`{arch}.pooling_type`:
/// mean, CLS or last), else the mean.
pub const CHORD_POOLING_DEFAULT: u32 = 0;
/// Pooling for `chord_session_embed`: the mean of every token's hidden state.
pub const CHORD_POOLING_MEAN: u32 = 1;
/// Pooling for `chord_session_embed`: the first token's hidden state.
pub const CHORD_POOLING_CLS: u32 = 2;
/// Pooling for `chord_session_embed`: the last token's hidden state.
pub const CHORD_POOLING_LAST: u32 = 3;

/// Computes the embedding of `text` (UTF-8, `len` bytes) into `(buf, cap)`: the final hidden
/// states of its tokens (after the output norm) pooled as `pooling` (`CHORD_POOLING_*`) says, the
/// same values as llama.cpp's embeddings with that pooling. `*out_len` receives the embedding's
/// size (the model's `n_embd`); when `cap` is smaller the call returns
/// `CHORD_E_BUFFER_TOO_SMALL` without running the model. `flags` combines
/// `CHORD_APPEND_ADD_SPECIAL`, `CHORD_APPEND_PARSE_SPECIAL` (tokenization, as for
/// `chord_session_append_text`) and `CHORD_EMBED_NORMALIZE`.
///
/// The session is the scratch space: its context is emptied first and afterwards holds the text's
/// tokens without logits (append before generating). A text longer than the context or without
/// tokens is refused before anything changes; after a cancel or another error the context is
/// empty. Size the context (`chord_session_options_set_n_ctx`) for the longest text.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_INVALID_UTF8`,
/// `CHORD_E_BUFFER_TOO_SMALL`, `CHORD_E_CONTEXT_FULL`, `CHORD_E_UNSUPPORTED` (the file's pooling is
/// rank), `CHORD_E_BAD_MODEL` (an unknown pooling in the file), `CHORD_E_CANCELLED`,
/// `CHORD_E_BUSY`, `CHORD_E_INTERNAL`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_embed(
    session: *const chord_session,
    text_ptr: *const c_char,
    len: usize,
    flags: u32,
    pooling: u32,
    buf: *mut f32,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        let t = unsafe { text(text_ptr, len, "text")? };
        let known = CHORD_APPEND_ADD_SPECIAL | CHORD_APPEND_PARSE_SPECIAL | CHORD_EMBED_NORMALIZE;
        if flags & !known != 0 {
            bail!(InvalidArgument, "unknown embed flags {flags:#x}");
        }
        let pooling = match pooling {
            CHORD_POOLING_DEFAULT => None,
            CHORD_POOLING_MEAN => Some(Pooling::Mean),
            CHORD_POOLING_CLS => Some(Pooling::Cls),
            CHORD_POOLING_LAST => Some(Pooling::Last),
            p => bail!(InvalidArgument, "unknown pooling {p}"),
        };
        s.0.with(|s, cancel| {
            let n_embd = s.model().core()?.cfg.n_embd;
            unsafe { put(out_len, n_embd) };
            if cap < n_embd {
                bail!(
                    BufferTooSmall,
                    "the buffer holds {cap} values but the embedding has {n_embd}"
                );
            }
            let v = s.embed(
                t,
                flags & CHORD_APPEND_ADD_SPECIAL != 0,
                flags & CHORD_APPEND_PARSE_SPECIAL != 0,
                pooling,
                flags & CHORD_EMBED_NORMALIZE != 0,
                cancel,
            )?;
            unsafe { copy_out(&v, buf, cap, out_len) }
        })
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
        s.0.with(|s, _| unsafe { copy_out(s.logits(), buf, cap, out_len) })
    })
}

/// Receives generated text: `len` bytes of whole UTF-8 characters at `text` (not NUL-terminated,
/// borrowed for the call only). Runs on the thread that called `chord_session_generate`. Return 1
/// to continue, 0 to stop.
pub type chord_text_callback =
    Option<unsafe extern "C" fn(text: *const c_char, len: usize, user_data: *mut c_void) -> u32>;

/// One generated token, as `chord_token_callback` receives it; every pointer is borrowed for the
/// call only. Later versions may add fields at the end: read only those that `struct_size` covers.
#[repr(C)]
pub struct chord_token_info {
    /// `sizeof(chord_token_info)` as this chord built it.
    pub struct_size: u32,
    /// The token id.
    pub token: chord_token,
    /// The text this token completed (whole UTF-8 characters, not NUL-terminated; may be empty,
    /// as for the text callback).
    pub text: *const c_char,
    /// Length of `text` in bytes.
    pub text_len: usize,
    /// The token's log-probability; NaN unless `chord_generate_params_set_logprobs` asked for them.
    pub logprob: f32,
    /// How many alternatives follow (0 unless log-probabilities were asked for).
    pub n_top: u32,
    /// The most likely tokens, most likely first (`n_top` of them).
    pub top_tokens: *const chord_token,
    /// Their log-probabilities (`n_top` of them).
    pub top_logprobs: *const f32,
}

/// Receives each generated token of `chord_session_generate` (see
/// `chord_generate_params_set_token_callback`), on the calling thread. Return 1 to continue, 0 to
/// stop (`CHORD_STOP_CALLBACK`).
pub type chord_token_callback =
    Option<unsafe extern "C" fn(info: *const chord_token_info, user_data: *mut c_void) -> u32>;

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
/// not be empty, and after `chord_session_truncate` at least one token must have been appended.
///
/// Sampling: each call seeds a new random generator from `params`' seed (the generator does not
/// continue across calls), so the same context and parameters give the same tokens; sessions
/// never share sampler state, so concurrent sessions may use different parameters.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (also: no logits, i.e. an empty or just
/// truncated context), `CHORD_E_CANCELLED` (the tokens generated so far stay), `CHORD_E_BUSY`,
/// `CHORD_E_INTERNAL`.
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
        let p = unsafe { params.as_ref() };
        let (gen, mut sampler) = generation(p);
        let (on_token, token_data) = p.map_or((None, std::ptr::null_mut()), |p| {
            (p.on_token, p.on_token_data)
        });
        let mut on_out = |o: Output<'_>| {
            let (t, token) = match o {
                Output::Token { id, text, logprobs } => (text, Some((id, logprobs))),
                Output::Tail(t) => (t, None),
            };
            let go = match callback {
                _ if t.is_empty() => true,
                // SAFETY: the host promised a valid function; text is valid for the call.
                Some(cb) => unsafe { cb(t.as_ptr() as *const c_char, t.len(), user_data) != 0 },
                None => true,
            };
            match (go, on_token, token) {
                (true, Some(cb), Some((id, lp))) => {
                    let (ids, lps): (Vec<u32>, Vec<f32>) = lp
                        .map(|l| l.top.iter().copied().unzip())
                        .unwrap_or_default();
                    let info = chord_token_info {
                        struct_size: std::mem::size_of::<chord_token_info>() as u32,
                        token: id,
                        text: t.as_ptr() as *const c_char,
                        text_len: t.len(),
                        logprob: lp.map_or(f32::NAN, |l| l.chosen),
                        n_top: ids.len() as u32,
                        top_tokens: ids.as_ptr(),
                        top_logprobs: lps.as_ptr(),
                    };
                    // SAFETY: the host promised a valid function; info lives for the call.
                    unsafe { cb(&info, token_data) != 0 }
                }
                _ => go,
            }
        };
        let reason =
            s.0.with(|s, cancel| s.generate(&gen, &mut sampler, &mut on_out, cancel))?;
        unsafe { put(out_stop_reason, stop_code(reason)) };
        Ok(())
    })
}

/// The generation settings of `params` (the defaults for NULL) and a new sampler for them.
fn generation(params: Option<&chord_generate_params>) -> (GenerateParams, Sampler) {
    match params {
        Some(p) => (p.gen.clone(), Sampler::new(p.sampler.clone())),
        None => (
            GenerateParams::default(),
            Sampler::new(SamplerParams::default()),
        ),
    }
}

/// Writes the counters of `st` (each pointer may be NULL).
unsafe fn put_stats(st: Stats, pt: *mut u64, pus: *mut u64, dt: *mut u64, dus: *mut u64) {
    unsafe {
        put(pt, st.prefill_tokens as u64);
        put(pus, st.prefill_time.as_micros() as u64);
        put(dt, st.decode_tokens as u64);
        put(dus, st.decode_time.as_micros() as u64);
    }
}

/// Counters of the session's last append or generate call, foreground or background (each pointer
/// may be NULL): prompt tokens and microseconds (an append), generated tokens and microseconds (a
/// generate). A failed call counts the tokens it generated before failing; a failed append counts
/// no prompt tokens.
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
        let st = s.0.with(|s, _| Ok(s.stats()))?;
        unsafe { put_stats(st, prefill_tokens, prefill_us, decode_tokens, decode_us) };
        Ok(())
    })
}

/// The counters of `chord_session_stats` summed over every call since the session was created
/// (reset, truncate and state load do not clear them).
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_BUSY`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_stats_total(
    session: *const chord_session,
    prefill_tokens: *mut u64,
    prefill_us: *mut u64,
    decode_tokens: *mut u64,
    decode_us: *mut u64,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        let st = s.0.with(|s, _| Ok(s.total_stats()))?;
        unsafe { put_stats(st, prefill_tokens, prefill_us, decode_tokens, decode_us) };
        Ok(())
    })
}

fn stop_code(reason: StopReason) -> u32 {
    match reason {
        StopReason::EndOfGeneration => CHORD_STOP_EOG,
        StopReason::MaxTokens => CHORD_STOP_MAX_TOKENS,
        StopReason::StopString => CHORD_STOP_STRING,
        StopReason::Callback => CHORD_STOP_CALLBACK,
        StopReason::ContextFull => CHORD_STOP_CONTEXT_FULL,
    }
}

/// Copies the token ids of the session's context into `(buf, cap)`; `*out_len` receives their
/// number (also when the buffer is too small).
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_BUFFER_TOO_SMALL` (nothing written),
/// `CHORD_E_BUSY`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_tokens(
    session: *const chord_session,
    buf: *mut chord_token,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        s.0.with(|s, _| unsafe { copy_out(s.tokens(), buf, cap, out_len) })
    })
}

/// Rolls the context back to its first `n_tokens` tokens: the KV cache forgets the later
/// positions, so appending other tokens continues from there (appending the same tokens again
/// gives the same logits). When `n_tokens` is less than the current count the logits are dropped:
/// append at least one token before `chord_session_logits` or generating. `n_tokens` equal to the
/// count changes nothing; 0 empties the context like `chord_session_reset`.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL session, or `n_tokens` greater than the
/// number of tokens in the context; nothing changes), `CHORD_E_BUSY`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_truncate(
    session: *const chord_session,
    n_tokens: usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        s.0.with(|s, _| s.truncate(n_tokens))
    })
}

/// Size in bytes of the session's state as `chord_session_state_save` would write it now, into
/// `*out`.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_BUSY`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_state_size(
    session: *const chord_session,
    out: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        let out = unsafe { obj_mut(out, "out")? };
        *out = s.0.with(|s, _| state::save(s))?.len();
        Ok(())
    })
}

/// Saves the session's state into `(buf, cap)` bytes; `*out_len` receives its size (also when the
/// buffer is too small). The state holds a format version, the chord ABI version, a fingerprint
/// of the model file, the KV precision, the context's tokens, the last logits and the KV cache of
/// the evaluated positions (not the sampler: each generate call seeds its own). Load it with
/// `chord_session_state_load` into a session over the same model (any context size large enough),
/// which then continues exactly as this one would.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_BUFFER_TOO_SMALL` (nothing written),
/// `CHORD_E_BUSY`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_state_save(
    session: *const chord_session,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        let bytes = s.0.with(|s, _| state::save(s))?;
        unsafe { copy_out(&bytes, buf, cap, out_len) }
    })
}

/// Replaces the session's context with a state saved by `chord_session_state_save` (`len` bytes at
/// `buf`, copied). The whole state is checked first; on any error the session is unchanged.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL session, or NULL `buf` with `len` > 0),
/// `CHORD_E_BAD_STATE` (not a chord state, another format version or ABI version, another model,
/// another KV precision, truncated or corrupt data, more tokens than this session's context),
/// `CHORD_E_BUSY`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_state_load(
    session: *const chord_session,
    buf: *const u8,
    len: usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        let bytes = unsafe { slice(buf, len, "buf")? };
        s.0.with(|s, _| state::load(s, bytes))
    })
}

/// Saves the session's state (as `chord_session_state_save`) to the file at `path` (UTF-8,
/// `path_len` bytes), replacing it.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_INVALID_UTF8`, `CHORD_E_IO`,
/// `CHORD_E_BUSY`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_state_save_file(
    session: *const chord_session,
    path: *const c_char,
    path_len: usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        let path = unsafe { text(path, path_len, "path")? };
        s.0.with(|s, _| state::save_file(s, path))
    })
}

/// Loads a state saved by `chord_session_state_save_file` (or written from the bytes of
/// `chord_session_state_save`) from the file at `path`; as `chord_session_state_load`, the session
/// is unchanged on any error.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_INVALID_UTF8`, `CHORD_E_IO` (cannot
/// read the file), `CHORD_E_BAD_STATE` (as `chord_session_state_load`, also a file larger than
/// any state this session could hold), `CHORD_E_BUSY`.
#[no_mangle]
pub unsafe extern "C" fn chord_session_state_load_file(
    session: *const chord_session,
    path: *const c_char,
    path_len: usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        let path = unsafe { text(path, path_len, "path")? };
        s.0.with(|s, _| state::load_file(s, path))
    })
}

/// Starts generating on an internal worker thread and returns at once; `chord_session_poll`
/// delivers the tokens and the end on the polling thread (no callback crosses threads). `params`
/// may be NULL for defaults; it is copied, so it may be freed at once. The text and tokens equal
/// those of `chord_session_generate` with the same context and parameters. Until `chord_session_poll`
/// has delivered the `CHORD_EVENT_DONE` or `CHORD_EVENT_ERROR` event, every other call on the
/// session (append, generate, a second start, queries, state, truncate) returns `CHORD_E_BUSY`;
/// `chord_session_cancel` stops the generation (the end event is then `CHORD_EVENT_ERROR` with
/// `CHORD_E_CANCELLED`), and `chord_session_free` cancels it and joins the worker.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL session, or no logits: an empty or just
/// truncated context), `CHORD_E_BUSY` (another call or generation holds the session, or the
/// previous background generation's end has not been polled), `CHORD_E_INTERNAL` (the worker
/// thread cannot start).
#[no_mangle]
pub unsafe extern "C" fn chord_session_generate_start(
    session: *const chord_session,
    params: *const chord_generate_params,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        let (gen, sampler) = generation(unsafe { params.as_ref() });
        s.0.start(gen, sampler)
    })
}

/// `chord_session_poll` event: nothing within the timeout, or no background generation running.
pub const CHORD_EVENT_NONE: u32 = 0;
/// `chord_session_poll` event: a token was generated; `*out_token` is its id and the buffer holds
/// the whole UTF-8 text it completed (may be empty when the token ends inside a character or could
/// begin a stop string; that text comes with a later event).
pub const CHORD_EVENT_TOKEN: u32 = 1;
/// `chord_session_poll` event: generation ended; `*out_detail` is a `CHORD_STOP_*` value and the
/// buffer holds text held back until the end (usually empty). The session is usable again.
pub const CHORD_EVENT_DONE: u32 = 2;
/// `chord_session_poll` event: generation failed; `*out_detail` is its status (e.g.
/// `CHORD_E_CANCELLED`) and the buffer holds the error message. The tokens generated before stay
/// in the context; the session is usable again.
pub const CHORD_EVENT_ERROR: u32 = 3;

/// Waits up to `timeout_ms` milliseconds (0: do not wait) for the next event of the background
/// generation started by `chord_session_generate_start`, on the calling thread. `*out_event`
/// receives a `CHORD_EVENT_*` value; `*out_token` (may be NULL) the token id of a
/// `CHORD_EVENT_TOKEN` (else unchanged); `*out_detail` (may be NULL) the stop reason or status of
/// a `CHORD_EVENT_DONE` / `CHORD_EVENT_ERROR` (else unchanged); `(buf, cap)` the event's text,
/// not NUL-terminated, with `*out_len` its length in bytes (0 for `CHORD_EVENT_NONE`). When no
/// generation runs and no event is left, returns at once with `CHORD_EVENT_NONE`. The
/// concatenated texts of the events equal the text `chord_session_generate` passes its callback.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL session or `out_event`),
/// `CHORD_E_BUFFER_TOO_SMALL` (`*out_event` and `*out_len` are set, the event stays queued and
/// the next poll delivers it again), `CHORD_E_BUSY` (another thread is polling this session).
#[no_mangle]
pub unsafe extern "C" fn chord_session_poll(
    session: *const chord_session,
    timeout_ms: u32,
    out_event: *mut u32,
    out_token: *mut chord_token,
    out_detail: *mut u32,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        let out_event = unsafe { obj_mut(out_event, "out_event")? };
        let timeout = Duration::from_millis(timeout_ms as u64);
        s.0.poll(timeout, |ev| {
            let (kind, text) = match ev {
                None => (CHORD_EVENT_NONE, ""),
                Some(Event::Token { id, text, .. }) => {
                    unsafe { put(out_token, *id) };
                    (CHORD_EVENT_TOKEN, text.as_str())
                }
                Some(Event::Done { reason, text }) => {
                    unsafe { put(out_detail, stop_code(*reason)) };
                    (CHORD_EVENT_DONE, text.as_str())
                }
                Some(Event::Error(e)) => {
                    unsafe { put(out_detail, e.code() as u32) };
                    (CHORD_EVENT_ERROR, e.message())
                }
            };
            *out_event = kind;
            unsafe { copy_out(text.as_bytes(), buf as *mut u8, cap, out_len) }
        })
    })
}

/// The log-probabilities of the token that `chord_session_poll` delivered last (when the
/// generation was started with `chord_generate_params_set_logprobs`): the token's into
/// `*out_logprob` (may be NULL), and up to `cap` alternatives, most likely first, into
/// `top_tokens` and `top_logprobs` (both NULL when `cap` is 0); `*out_n` (may be NULL) receives
/// how many there are. Call it from the polling thread after a `CHORD_EVENT_TOKEN`.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL session, or no token with
/// log-probabilities delivered since the generation started), `CHORD_E_BUFFER_TOO_SMALL`
/// (`*out_n` is set, nothing else written), `CHORD_E_BUSY` (another thread is polling).
#[no_mangle]
pub unsafe extern "C" fn chord_session_poll_logprobs(
    session: *const chord_session,
    out_logprob: *mut f32,
    top_tokens: *mut chord_token,
    top_logprobs: *mut f32,
    cap: usize,
    out_n: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { obj(session, "session")? };
        let Some(lp) = s.0.last_logprobs()? else {
            bail!(
                InvalidArgument,
                "no token with log-probabilities was polled: start the generation with chord_generate_params_set_logprobs"
            );
        };
        let (ids, lps): (Vec<u32>, Vec<f32>) = lp.top.iter().copied().unzip();
        unsafe { copy_out(&ids, top_tokens, cap, out_n)? };
        unsafe { copy_out(&lps, top_logprobs, cap, out_n)? };
        unsafe { put(out_logprob, lp.chosen) };
        Ok(())
    })
}

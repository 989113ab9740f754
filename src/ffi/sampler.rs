//! Samplers the host owns: the sampling chain of generation parameters (bias, grammar,
//! penalties, top-k, top-p, min-p, temperature, seed) applied to a session's logits in the host's
//! own loop. `chord_session_generate` samples with the same object.

use super::args::{obj, obj_mut, put};
use super::{
    boundary, chord_error, chord_generate_params, chord_model, chord_session, chord_status,
    chord_token,
};
use crate::bail;
use crate::model::Model;
use crate::session::{Sampler, SamplerParams};
use std::sync::Arc;

/// A sampler: the sampling settings of a `chord_generate_params`, its random generator and its
/// grammar position. Not thread-safe: use it from one thread at a time. Free with
/// `chord_sampler_free`.
pub struct chord_sampler {
    sampler: Sampler,
    model: Arc<Model>,
}

/// Creates a sampler for sessions over `model` with the sampling settings of `params` (NULL:
/// the defaults; its length, stop strings and callbacks do not apply) into `*out`, seeded from
/// its seed and at the start of its grammar. `chord_sampler_sample` then
/// `chord_sampler_accept` and `chord_session_append_tokens` with the token, step by step, give
/// the tokens of `chord_session_generate` with the same parameters.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_sampler_new(
    model: *const chord_model,
    params: *const chord_generate_params,
    out: *mut *mut chord_sampler,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let model = unsafe { obj(model, "model")? }.0.clone();
        let out = unsafe { obj_mut(out, "out")? };
        let sp =
            unsafe { params.as_ref() }.map_or_else(SamplerParams::default, |p| p.sampler.clone());
        *out = Box::into_raw(Box::new(chord_sampler {
            sampler: Sampler::new(sp),
            model,
        }));
        Ok(())
    })
}

/// Frees a sampler. NULL is allowed and ignored.
#[no_mangle]
pub unsafe extern "C" fn chord_sampler_free(sampler: *mut chord_sampler) {
    if !sampler.is_null() {
        // SAFETY: created by chord_sampler_new and freed once, by contract.
        super::guard((), || drop(unsafe { Box::from_raw(sampler) }));
    }
}

/// Samples the next token from the last logits of `session` (with its tokens as the penalties'
/// history) into `*out`. It does not advance the grammar: call `chord_sampler_accept` with the
/// token the host keeps. The token may be an end-of-generation token (`chord_token_is_eog`).
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL argument, no logits, or a session over
/// a model of another vocabulary), `CHORD_E_INVALID_TOKEN` (a logit bias outside the
/// vocabulary), `CHORD_E_GRAMMAR` (no token continues the grammar), `CHORD_E_BUSY` (the session
/// is in use).
#[no_mangle]
pub unsafe extern "C" fn chord_sampler_sample(
    sampler: *mut chord_sampler,
    session: *const chord_session,
    out: *mut chord_token,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let sp = unsafe { obj_mut(sampler, "sampler")? };
        let s = unsafe { obj(session, "session")? };
        let out = unsafe { obj_mut(out, "out")? };
        let vocab = sp.model.tokenizer();
        let n_vocab = vocab.n_vocab();
        *out = s.0.with(|s, _| {
            if s.model().tokenizer().n_vocab() != n_vocab {
                bail!(
                    InvalidArgument,
                    "the session's model has another vocabulary than the sampler's"
                );
            }
            let logits = s.logits();
            if logits.len() < n_vocab {
                bail!(
                    InvalidArgument,
                    "there are no logits to sample from: append a prompt first"
                );
            }
            sp.sampler
                .sample(&logits[logits.len() - n_vocab..], s.tokens(), vocab)
        })?;
        Ok(())
    })
}

/// Records that the host keeps `token`: advances the grammar past it.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_INVALID_TOKEN` (outside the
/// vocabulary), `CHORD_E_GRAMMAR` (the grammar does not allow the token here; nothing changes).
#[no_mangle]
pub unsafe extern "C" fn chord_sampler_accept(
    sampler: *mut chord_sampler,
    token: chord_token,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let sp = unsafe { obj_mut(sampler, "sampler")? };
        let vocab = sp.model.tokenizer();
        if token as usize >= vocab.n_vocab() {
            bail!(
                InvalidToken,
                "token id {token} is outside the vocabulary ({} tokens)",
                vocab.n_vocab()
            );
        }
        sp.sampler.accept(token, vocab)
    })
}

/// Puts the sampler back as `chord_sampler_new` made it: the generator reseeded, the grammar at
/// its start.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn chord_sampler_reset(
    sampler: *mut chord_sampler,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        unsafe { obj_mut(sampler, "sampler")? }.sampler.reset();
        Ok(())
    })
}

/// Whether the sampler's grammar is complete, so that only an end-of-generation token can follow,
/// into `*out` (0 or 1; always 0 without a grammar).
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn chord_sampler_grammar_done(
    sampler: *const chord_sampler,
    out: *mut u32,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let sp = unsafe { obj(sampler, "sampler")? };
        unsafe { put(out, sp.sampler.grammar_done() as u32) };
        Ok(())
    })
}

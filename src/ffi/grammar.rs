//! Grammar objects: GBNF text compiled once, then given to any number of generation parameters
//! and samplers.

use super::args::{obj, obj_mut, text};
use super::{boundary, chord_error, chord_model, chord_status};
use crate::grammar::Grammar;
use std::ffi::c_char;
use std::sync::Arc;

/// A compiled grammar. Immutable and thread-safe; generation parameters and samplers that use it
/// hold their own reference, so it may be freed as soon as they are set up.
pub struct chord_grammar(pub(crate) Arc<Grammar>);

/// Compiles a GBNF grammar (UTF-8, `len` bytes; llama.cpp's syntax: rules, alternatives, groups,
/// `* + ? {m,n}`, character classes and negation, escapes, comments, `<[id]>` and `!<[id]>`
/// tokens) into `*out`, starting at the rule `root` (`root_len` bytes; NULL means `root`).
/// `model` may be NULL; with a model, `<text>` token references are resolved in its vocabulary.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_INVALID_UTF8`, `CHORD_E_GRAMMAR` (a
/// syntax error, an undefined rule, a missing root rule, left recursion; the message gives the
/// line and column). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_grammar_new(
    model: *const chord_model,
    grammar: *const c_char,
    len: usize,
    root: *const c_char,
    root_len: usize,
    out: *mut *mut chord_grammar,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let out = unsafe { obj_mut(out, "out")? };
        let g = unsafe { text(grammar, len, "grammar")? };
        let root = match root.is_null() {
            true => "root",
            false => unsafe { text(root, root_len, "root")? },
        };
        let vocab = match model.is_null() {
            true => None,
            false => Some(unsafe { obj(model, "model")? }.0.clone()),
        };
        let g = Grammar::for_vocab(g, root, vocab.as_ref().map(|m| m.tokenizer()))?;
        *out = Box::into_raw(Box::new(chord_grammar(Arc::new(g))));
        Ok(())
    })
}

/// Frees a grammar (parameters and samplers that use it keep their own reference). NULL is
/// allowed and ignored.
#[no_mangle]
pub unsafe extern "C" fn chord_grammar_free(grammar: *mut chord_grammar) {
    if !grammar.is_null() {
        // SAFETY: created by chord_grammar_new and freed once, by contract.
        super::guard((), || drop(unsafe { Box::from_raw(grammar) }));
    }
}

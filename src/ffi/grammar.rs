//! Grammar objects: GBNF text compiled once, then given to any number of generation parameters
//! and samplers.

use super::args::{copy_out, obj, obj_mut, text};
use super::{boundary, chord_error, chord_model, chord_status};
use crate::bail;
use crate::grammar::{json_schema_to_gbnf, Grammar};
use std::ffi::c_char;
use std::sync::Arc;

/// A compiled grammar. Immutable and thread-safe; generation parameters and samplers that use it
/// hold their own reference, so it may be freed as soon as they are set up.
pub struct chord_grammar(pub(crate) Arc<Grammar>);

/// Compiles a GBNF grammar (UTF-8, `len` bytes; llama.cpp's syntax: rules, alternatives, groups,
/// `* + ? {m,n}`, character classes and negation, escapes, comments, `<[id]>` and `!<[id]>`
/// tokens) into `*out`, starting at the rule `root` (`root_len` bytes; NULL means `root`).
/// `model` may be NULL; with a model, `<text>` token references are resolved in its vocabulary,
/// and the work the first generation under the grammar would do on the vocabulary (a trie of its
/// tokens, tens of milliseconds for 150,000 tokens, made once per model) is done now.
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

/// Flag for the JSON Schema functions: convert as llama.cpp does, ignoring the keywords the
/// grammar cannot express and accepting any string for a pattern it cannot convert (a looser
/// grammar than the schema; each such place is logged as a warning). Without it (strict, the
/// default) such a schema is `CHORD_E_GRAMMAR` naming the feature.
pub const CHORD_SCHEMA_LENIENT: u32 = 1;

/// The JSON Schema text of a call: NULL with length 0 is `{}`, any JSON value.
unsafe fn schema_text<'a>(schema: *const c_char, len: usize, flags: u32) -> crate::Result<&'a str> {
    if flags & !CHORD_SCHEMA_LENIENT != 0 {
        bail!(InvalidArgument, "unknown JSON Schema flags {flags:#x}");
    }
    if schema.is_null() && len == 0 {
        return Ok("{}");
    }
    unsafe { text(schema, len, "schema") }
}

/// Compiles the grammar of a JSON Schema (UTF-8 JSON text, `len` bytes; NULL and 0 for any JSON
/// value) into `*out`, converted as llama.cpp's `json_schema_to_grammar` converts it: types,
/// `properties`, `required`, `additionalProperties`, `enum`, `const`, `anyOf`/`oneOf`, `allOf`,
/// `$ref` within the document, array `items`/`prefixItems`/`minItems`/`maxItems`, string
/// `pattern`, `format` (date, time, date-time, uuid), `minLength`/`maxLength`, integer bounds.
/// Generated JSON may have spaces and newlines between its tokens (llama.cpp's `space` rule).
/// `flags` is 0 or `CHORD_SCHEMA_LENIENT`. `model` may be NULL; with a model, the work the first
/// generation under the grammar would do on its vocabulary is done now (as `chord_grammar_new`).
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_INVALID_UTF8`, `CHORD_E_GRAMMAR` (not
/// JSON: the line and column; a schema error: its JSON path; in strict mode, a feature the grammar
/// cannot express). Thread-safe. In lenient mode each place converted looser than the schema is
/// logged as a warning.
#[no_mangle]
pub unsafe extern "C" fn chord_grammar_from_json_schema(
    model: *const chord_model,
    schema: *const c_char,
    len: usize,
    flags: u32,
    out: *mut *mut chord_grammar,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let out = unsafe { obj_mut(out, "out")? };
        let s = unsafe { schema_text(schema, len, flags)? };
        let vocab = match model.is_null() {
            true => None,
            false => Some(unsafe { obj(model, "model")? }.0.clone()),
        };
        let strict = flags & CHORD_SCHEMA_LENIENT == 0;
        let g = Grammar::from_json_schema(s, strict, vocab.as_ref().map(|m| m.tokenizer()))?;
        *out = Box::into_raw(Box::new(chord_grammar(Arc::new(g))));
        Ok(())
    })
}

/// The GBNF text that `chord_grammar_from_json_schema` compiles for the same arguments, into
/// `(buf, cap)` bytes (not NUL-terminated); `*out_len` receives its length (also when the buffer
/// is too small).
///
/// Statuses: as `chord_grammar_from_json_schema`, and `CHORD_E_BUFFER_TOO_SMALL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_json_schema_to_gbnf(
    schema: *const c_char,
    len: usize,
    flags: u32,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let s = unsafe { schema_text(schema, len, flags)? };
        let gbnf = json_schema_to_gbnf(s, flags & CHORD_SCHEMA_LENIENT == 0)?;
        unsafe { copy_out(gbnf.as_bytes(), buf as *mut u8, cap, out_len) }
    })
}

//! Tokenization and detokenization into caller buffers.

use super::args::{copy_out, flag, obj, slice, text};
use super::{boundary, chord_error, chord_model, chord_status, guard};
use crate::bail;
use std::ffi::c_char;

/// Token id type.
pub type chord_token = u32;

/// Tokenizes `text` (UTF-8, `len` bytes) into `(tokens, cap)`; `*out_len` receives the number of
/// tokens (also when the buffer is too small). `add_special` (0/1) adds BOS/EOS as the model's
/// file asks; `parse_special` (0/1) turns special-token text such as `<|im_start|>` into its token.
/// Call with `cap` 0 to learn the size.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_INVALID_UTF8`,
/// `CHORD_E_BUFFER_TOO_SMALL` (nothing written; `*out_len` is the count needed). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_tokenize(
    model: *const chord_model,
    text_ptr: *const c_char,
    len: usize,
    add_special: u32,
    parse_special: u32,
    tokens: *mut chord_token,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let m = &unsafe { obj(model, "model")? }.0;
        let s = unsafe { text(text_ptr, len, "text")? };
        let ids = m.tokenizer().encode(
            s,
            flag(add_special, "add_special")?,
            flag(parse_special, "parse_special")?,
        )?;
        unsafe { copy_out(&ids, tokens, cap, out_len) }
    })
}

/// Turns `n` tokens back into text, written to `(buf, cap)` without a NUL; `*out_len` receives
/// the number of bytes (also when the buffer is too small). `remove_special` (0/1) drops BOS/EOS;
/// `unparse_special` (0/1) writes the text of control tokens instead of nothing. The bytes are
/// those llama.cpp's `llama_detokenize` produces; they may be invalid UTF-8 when the tokens cut a
/// character.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_INVALID_TOKEN`,
/// `CHORD_E_BUFFER_TOO_SMALL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_detokenize(
    model: *const chord_model,
    tokens: *const chord_token,
    n: usize,
    remove_special: u32,
    unparse_special: u32,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let m = &unsafe { obj(model, "model")? }.0;
        let ids = unsafe { slice(tokens, n, "tokens")? };
        check_ids(m.tokenizer().n_vocab(), ids)?;
        let bytes = m.tokenizer().decode(
            ids,
            flag(remove_special, "remove_special")?,
            flag(unparse_special, "unparse_special")?,
        );
        unsafe { copy_out(&bytes, buf as *mut u8, cap, out_len) }
    })
}

/// Writes the bytes of one token to `(buf, cap)` without a NUL (`special` 0/1: render control
/// tokens' text); `*out_len` receives the byte count.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT`, `CHORD_E_INVALID_TOKEN`,
/// `CHORD_E_BUFFER_TOO_SMALL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_token_to_piece(
    model: *const chord_model,
    token: chord_token,
    special: u32,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let m = &unsafe { obj(model, "model")? }.0;
        check_ids(m.tokenizer().n_vocab(), &[token])?;
        let piece = m
            .tokenizer()
            .token_to_piece(token, flag(special, "special")?);
        unsafe { copy_out(&piece, buf as *mut u8, cap, out_len) }
    })
}

/// 1 when `token` ends generation for this model (EOS, EOT, `<|im_end|>`...), else 0 (also for
/// NULL or out-of-range arguments). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_token_is_eog(model: *const chord_model, token: chord_token) -> u32 {
    guard(0, || match unsafe { model.as_ref() } {
        Some(m) => (token as usize) < m.0.tokenizer().n_vocab() && m.0.tokenizer().is_eog(token),
        None => false,
    } as u32)
}

fn check_ids(n_vocab: usize, ids: &[u32]) -> crate::Result<()> {
    if let Some(bad) = ids.iter().find(|&&t| t as usize >= n_vocab) {
        bail!(
            InvalidToken,
            "token id {bad} is outside the vocabulary ({n_vocab} tokens)"
        );
    }
    Ok(())
}

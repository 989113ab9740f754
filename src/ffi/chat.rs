//! Chat templates: render a conversation with the model's template or the caller's, and read the
//! model's template.

use super::args::{copy_str, flag, obj, text};
use super::{boundary, chord_error, chord_model, chord_status};
use crate::bail;
use crate::chat::{ChatMessage, ChatOptions, ChatTemplate};
use crate::error::Result;
use std::ffi::c_char;
use std::mem::size_of;

/// One message of a conversation, as input to `chord_chat_apply`. The strings are borrowed for
/// the call only and need no NUL. Set `struct_size` to `sizeof(chord_chat_message)`: later
/// versions may add fields at the end, and chord reads only the fields that the host's size
/// covers.
#[repr(C)]
pub struct chord_chat_message {
    /// `sizeof(chord_chat_message)` as the host compiled it; the same in every element.
    pub struct_size: u32,
    /// The role (`system`, `user`, `assistant`, ...), UTF-8, `role_len` bytes.
    pub role: *const c_char,
    /// Length of `role` in bytes.
    pub role_len: usize,
    /// The content, UTF-8, `content_len` bytes.
    pub content: *const c_char,
    /// Length of `content` in bytes.
    pub content_len: usize,
}

/// Renders a conversation with a chat template into `(buf, cap)` with a terminating NUL;
/// `*out_len` receives the prompt's length without the NUL (also when the buffer is too small:
/// call with `cap` 0 to learn the size, then again with `*out_len + 1`).
///
/// * `model`: gives the template when `template_src` is NULL, and the text of its BOS and EOS
///   tokens as `bos_token`/`eos_token`. May be NULL when `template_src` is given: then
///   `bos_token` and `eos_token` are empty.
/// * `template_src`, `template_len`: a Jinja template (UTF-8, no NUL needed), or NULL to use the
///   model's embedded template (GGUF key `tokenizer.chat_template`).
/// * `messages`, `n_messages`: an array of `n_messages` messages (NULL allowed when 0), each with
///   `struct_size` set to `sizeof(chord_chat_message)`. Borrowed for the call.
/// * `add_generation_prompt` (0/1): end with the opening of an assistant turn.
///
/// Templates see `messages`, `add_generation_prompt`, `bos_token`, `eos_token`, and are rendered
/// like Python Jinja2 in Hugging Face transformers (see README). A template that never shows a
/// system message gets a leading system message merged into the next one, as llama.cpp does.
///
/// Statuses: `CHORD_OK`; `CHORD_E_INVALID_ARGUMENT` (both `model` and `template_src` NULL, NULL
/// `messages` with `n_messages` > 0, a NULL string with a non-zero length, a bad `struct_size`,
/// `add_generation_prompt` not 0/1, NULL `buf` with `cap` > 0... ); `CHORD_E_INVALID_UTF8` (the
/// template, a role or a content); `CHORD_E_NOT_FOUND` (`template_src` NULL and the model has
/// no template); `CHORD_E_TEMPLATE` (the template does not parse, raises an exception, runs too long or fails
/// while rendering; the message names the problem and line); `CHORD_E_BUFFER_TOO_SMALL` (nothing
/// written; `*out_len` is the length needed without the NUL). Thread-safe; the model may be used
/// by other threads at the same time.
#[no_mangle]
pub unsafe extern "C" fn chord_chat_apply(
    model: *const chord_model,
    template_src: *const c_char,
    template_len: usize,
    messages: *const chord_chat_message,
    n_messages: usize,
    add_generation_prompt: u32,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let model = unsafe { model.as_ref() }.map(|m| &*m.0);
        let agp = flag(add_generation_prompt, "add_generation_prompt")?;
        let msgs = unsafe { read_messages(messages, n_messages)? };
        let template = if template_src.is_null() {
            match model {
                Some(m) => ChatTemplate::from_model(m)?,
                None => bail!(
                    InvalidArgument,
                    "model and template_src are both NULL: give a template or a model that has one"
                ),
            }
        } else {
            ChatTemplate::new(unsafe { text(template_src, template_len, "template_src")? })?
        };
        let opts = match model {
            Some(m) => ChatOptions::for_model(m, agp),
            None => ChatOptions {
                add_generation_prompt: agp,
                ..ChatOptions::default()
            },
        };
        let prompt = template.apply(&msgs, &opts)?;
        unsafe { copy_str(prompt.as_bytes(), buf, cap, out_len) }
    })
}

/// Copies the model's embedded chat template (GGUF key `tokenizer.chat_template`) into
/// `(buf, cap)` with a terminating NUL; `*out_len` receives its length without the NUL.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (NULL model, NULL `buf` with `cap` > 0),
/// `CHORD_E_NOT_FOUND` (the model has no template), `CHORD_E_BUFFER_TOO_SMALL` (nothing written;
/// `*out_len` is the length needed without the NUL). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn chord_model_chat_template(
    model: *const chord_model,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let m = &unsafe { obj(model, "model")? }.0;
        match m.chat_template() {
            Some(src) => unsafe { copy_str(src.as_bytes(), buf, cap, out_len) },
            None => bail!(
                NotFound,
                "the model has no chat template (GGUF key tokenizer.chat_template)"
            ),
        }
    })
}

/// Reads the host's message array. The element stride is the first element's `struct_size`, so
/// hosts compiled against an older, shorter `chord_chat_message` keep working.
unsafe fn read_messages(p: *const chord_chat_message, n: usize) -> Result<Vec<ChatMessage>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        bail!(InvalidArgument, "messages is NULL but n_messages is {n}");
    }
    let base = p as *const u8;
    // SAFETY: the host passes n elements; every element starts with its struct_size.
    let stride = unsafe { std::ptr::read_unaligned(base as *const u32) } as usize;
    if stride < size_of::<chord_chat_message>() {
        bail!(
            InvalidArgument,
            "messages[0].struct_size is {stride}, less than sizeof(chord_chat_message) = {}",
            size_of::<chord_chat_message>()
        );
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let Some(offset) = i.checked_mul(stride) else {
            bail!(InvalidArgument, "messages is larger than the address space");
        };
        // SAFETY: element i lies at i * stride inside the host's array.
        let m = unsafe { std::ptr::read_unaligned(base.add(offset) as *const chord_chat_message) };
        if m.struct_size as usize != stride {
            bail!(
                InvalidArgument,
                "messages[{i}].struct_size is {} but messages[0].struct_size is {stride}",
                m.struct_size
            );
        }
        let role = unsafe { text(m.role, m.role_len, &format!("messages[{i}].role"))? };
        let content = unsafe { text(m.content, m.content_len, &format!("messages[{i}].content"))? };
        out.push(ChatMessage::new(role, content));
    }
    Ok(out)
}

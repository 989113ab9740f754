//! The C ABI. This module converts and checks arguments, calls the Rust API and maps errors; it
//! holds no logic of its own. Every exported function runs inside [`boundary`], so no panic
//! crosses into the host. Names, statuses and ownership rules follow shared/design/c-api.md.
#![allow(non_camel_case_types, clippy::missing_safety_doc)]

mod args;
mod chat;
mod error;
mod grammar;
mod log;
mod model;
mod options;
mod sampler;
mod session;
mod tokens;

pub use chat::*;
pub use error::*;
pub use grammar::*;
pub use log::*;
pub use model::*;
pub use options::*;
pub use sampler::*;
pub use session::*;
pub use tokens::*;

use crate::error::{Error, ErrorCode};

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Status code returned by every fallible function: `CHORD_OK` (0) or a `CHORD_E_*` code.
pub type chord_status = u32;

/// Success.
pub const CHORD_OK: chord_status = 0;
/// An argument is invalid: a NULL pointer, an out-of-range value, an unknown enum value.
pub const CHORD_E_INVALID_ARGUMENT: chord_status = 1;
/// A caller buffer is too small; `*out_len` holds the size needed.
pub const CHORD_E_BUFFER_TOO_SMALL: chord_status = 2;
/// A string is not valid UTF-8.
pub const CHORD_E_INVALID_UTF8: chord_status = 3;
/// The operating system reported an I/O error.
pub const CHORD_E_IO: chord_status = 4;
/// The file is not a GGUF file (wrong magic).
pub const CHORD_E_GGUF_BAD_MAGIC: chord_status = 5;
/// The GGUF version is not supported (chord reads 2 and 3).
pub const CHORD_E_GGUF_UNSUPPORTED_VERSION: chord_status = 6;
/// The GGUF file ends inside its header, metadata or tensor index.
pub const CHORD_E_GGUF_TRUNCATED: chord_status = 7;
/// A tensor's data lies outside the file or is misaligned.
pub const CHORD_E_GGUF_OUT_OF_BOUNDS: chord_status = 8;
/// A count, length or dimension in the GGUF file is impossible.
pub const CHORD_E_GGUF_LIMIT: chord_status = 9;
/// A tensor or metadata type in the GGUF file is unknown or unsupported.
pub const CHORD_E_GGUF_UNKNOWN_TYPE: chord_status = 10;
/// Two metadata keys or tensors in the GGUF file have the same name.
pub const CHORD_E_GGUF_DUPLICATE: chord_status = 11;
/// The model's architecture is not supported.
pub const CHORD_E_UNKNOWN_ARCHITECTURE: chord_status = 12;
/// The model's metadata or tensors are inconsistent (missing key, wrong type or shape).
pub const CHORD_E_BAD_MODEL: chord_status = 13;
/// Valid but not supported by this build or model.
pub const CHORD_E_UNSUPPORTED: chord_status = 14;
/// The session's context is full; nothing was added.
pub const CHORD_E_CONTEXT_FULL: chord_status = 15;
/// Another thread is using the session.
pub const CHORD_E_BUSY: chord_status = 16;
/// The host cancelled the operation (`chord_session_cancel`).
pub const CHORD_E_CANCELLED: chord_status = 17;
/// A token id is outside the vocabulary.
pub const CHORD_E_INVALID_TOKEN: chord_status = 18;
/// A bug in chord (a caught panic); the session that reported it is unusable.
pub const CHORD_E_INTERNAL: chord_status = 19;
/// A chat template does not parse, fails while rendering, or uses an unsupported construct.
pub const CHORD_E_TEMPLATE: chord_status = 20;
/// A saved session state is malformed, from another state version, or from another model.
pub const CHORD_E_BAD_STATE: chord_status = 21;
/// A metadata key or other named item does not exist.
pub const CHORD_E_NOT_FOUND: chord_status = 22;
/// A value exists but has another type than the one asked for.
pub const CHORD_E_TYPE_MISMATCH: chord_status = 23;
/// A grammar or JSON Schema does not parse or cannot be used (the message gives the line and
/// column), or generation under a grammar reached a point where no token continues it.
pub const CHORD_E_GRAMMAR: chord_status = 24;

/// Runs `f`, turning its error or a panic into a status and an optional error object in `*err`.
pub(crate) fn boundary(
    err: *mut *mut chord_error,
    f: impl FnOnce() -> crate::Result<()>,
) -> chord_status {
    let result = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::new(
                ErrorCode::Internal,
                format!("internal error: {what}"),
            ))
        }
    };
    match result {
        Ok(()) => CHORD_OK,
        Err(e) => {
            let code = e.code() as u32;
            error::store(err, e);
            code
        }
    }
}

/// Runs an infallible query inside a panic boundary, returning `fallback` on a panic.
pub(crate) fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_constants_match_error_codes() {
        let consts = [
            CHORD_E_INVALID_ARGUMENT,
            CHORD_E_BUFFER_TOO_SMALL,
            CHORD_E_INVALID_UTF8,
            CHORD_E_IO,
            CHORD_E_GGUF_BAD_MAGIC,
            CHORD_E_GGUF_UNSUPPORTED_VERSION,
            CHORD_E_GGUF_TRUNCATED,
            CHORD_E_GGUF_OUT_OF_BOUNDS,
            CHORD_E_GGUF_LIMIT,
            CHORD_E_GGUF_UNKNOWN_TYPE,
            CHORD_E_GGUF_DUPLICATE,
            CHORD_E_UNKNOWN_ARCHITECTURE,
            CHORD_E_BAD_MODEL,
            CHORD_E_UNSUPPORTED,
            CHORD_E_CONTEXT_FULL,
            CHORD_E_BUSY,
            CHORD_E_CANCELLED,
            CHORD_E_INVALID_TOKEN,
            CHORD_E_INTERNAL,
            CHORD_E_TEMPLATE,
            CHORD_E_BAD_STATE,
            CHORD_E_NOT_FOUND,
            CHORD_E_TYPE_MISMATCH,
            CHORD_E_GRAMMAR,
        ];
        assert_eq!(consts.len(), ErrorCode::ALL.len());
        for (c, code) in consts.iter().zip(ErrorCode::ALL) {
            assert_eq!(*c, code as u32, "{}", code.name());
        }
    }
}

//! Error objects and version queries.

use super::chord_status;
use crate::error::{Error, ErrorCode};
use std::ffi::{c_char, CString};

/// An error: a status code and a message. Owned by the caller; free with `chord_error_free`.
pub struct chord_error {
    code: chord_status,
    message: CString,
}

/// Stores `e` into `*err` when `err` is not NULL (replacing nothing: `*err` should be NULL).
pub(crate) fn store(err: *mut *mut chord_error, e: Error) {
    if err.is_null() {
        return;
    }
    let message = CString::new(e.message().replace('\0', " ")).unwrap_or_default();
    let obj = Box::new(chord_error {
        code: e.code() as u32,
        message,
    });
    // SAFETY: err is non-NULL and points to a caller-owned pointer slot.
    unsafe { *err = Box::into_raw(obj) };
}

/// The ABI version of this header. Incremented on every incompatible change.
pub const CHORD_ABI_VERSION: u32 = 1;

/// The ABI version of the loaded library; compare with `CHORD_ABI_VERSION`.
/// Thread-safe; never fails.
#[no_mangle]
pub extern "C" fn chord_abi_version() -> u32 {
    CHORD_ABI_VERSION
}

/// The library version as a static NUL-terminated string ("0.1.0"); never free it.
/// Thread-safe; never fails.
#[no_mangle]
pub extern "C" fn chord_version_string() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// The symbolic name of a status ("OK", "BUFFER_TOO_SMALL", ...) as a static string; "UNKNOWN" for
/// numbers that are not statuses. Thread-safe; never fails.
#[no_mangle]
pub extern "C" fn chord_status_name(status: chord_status) -> *const c_char {
    match (status, ErrorCode::from_u32(status)) {
        (0, _) => c"OK".as_ptr(),
        (_, Some(code)) => code.c_name().as_ptr(),
        (_, None) => c"UNKNOWN".as_ptr(),
    }
}

/// The status code of an error; `CHORD_E_INVALID_ARGUMENT` when `err` is NULL.
/// Thread-safe for distinct or unmodified errors.
#[no_mangle]
pub unsafe extern "C" fn chord_error_code(err: *const chord_error) -> chord_status {
    unsafe { err.as_ref() }.map_or(ErrorCode::InvalidArgument as u32, |e| e.code)
}

/// The error's message, NUL-terminated UTF-8, borrowed until `chord_error_free(err)`.
/// Returns "" when `err` is NULL.
#[no_mangle]
pub unsafe extern "C" fn chord_error_message(err: *const chord_error) -> *const c_char {
    match unsafe { err.as_ref() } {
        Some(e) => e.message.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// Frees an error object. NULL is allowed and ignored.
#[no_mangle]
pub unsafe extern "C" fn chord_error_free(err: *mut chord_error) {
    if !err.is_null() {
        // SAFETY: err came from Box::into_raw in `store` and is freed once, by contract.
        drop(unsafe { Box::from_raw(err) });
    }
}

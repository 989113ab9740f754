//! The log callback: installs the host's function as the process-wide log sink (see `crate::log`).

use super::{boundary, chord_error, chord_status};
use crate::bail;
use crate::log::{self, Level};
use std::ffi::{c_char, c_void, CString};

/// Log level: an operation failed.
pub const CHORD_LOG_ERROR: u32 = 0;
/// Log level: something works, but probably not as the host intends.
pub const CHORD_LOG_WARN: u32 = 1;
/// Log level: what chord loaded and how it runs (a few lines per model load).
pub const CHORD_LOG_INFO: u32 = 2;
/// Log level: details for debugging chord.
pub const CHORD_LOG_DEBUG: u32 = 3;

/// Receives one log message: `level` is a `CHORD_LOG_*` value, `message` is `len` bytes of UTF-8
/// followed by a NUL, borrowed for the call only (no trailing newline). May be called from any
/// chord thread, from several at once: it must be thread-safe. It must not call
/// `chord_set_log_callback` (that returns `CHORD_E_BUSY`); messages chord would log while the
/// callback runs on that thread are dropped.
pub type chord_log_fn = Option<
    unsafe extern "C" fn(level: u32, message: *const c_char, len: usize, user_data: *mut c_void),
>;

/// Releases a `user_data` pointer that chord was given (e.g. frees a C# `GCHandle`).
pub type chord_free_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// The host's callback with its `user_data`; dropping it calls `user_data_free`.
struct CSink {
    cb: unsafe extern "C" fn(u32, *const c_char, usize, *mut c_void),
    user_data: *mut c_void,
    user_data_free: chord_free_fn,
}

impl CSink {
    fn call(&self, level: Level, msg: &str) {
        let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
        // SAFETY: the host guarantees that `cb` and `user_data` stay valid until `user_data_free`.
        unsafe { (self.cb)(level as u32, c.as_ptr(), c.as_bytes().len(), self.user_data) };
    }
}

impl Drop for CSink {
    fn drop(&mut self) {
        if let Some(free) = self.user_data_free {
            // SAFETY: called once, when the sink is replaced; the host's contract.
            unsafe { free(self.user_data) };
        }
    }
}

// SAFETY: the documented contract makes the callback and `user_data` usable from any thread;
// chord never dereferences `user_data`.
unsafe impl Send for CSink {}
// SAFETY: as above.
unsafe impl Sync for CSink {}

/// Installs the process-wide log callback, replacing the previous one; with `cb` NULL, logging is
/// switched off (the default: chord never prints to stdout or stderr itself).
///
/// Ownership: on success chord holds `user_data` and calls `user_data_free(user_data)` (when not
/// NULL) exactly once, on the thread that replaces this callback by a later
/// `chord_set_log_callback` call (e.g. `chord_set_log_callback(NULL, NULL, NULL, NULL)` before
/// unloading the library). A callback still installed at process exit is not released. With `cb`
/// NULL, `user_data` and `user_data_free` are ignored; on an error nothing is taken.
///
/// Threads: callable from any thread. When it returns, no thread is still inside the previous
/// callback and it is never called again. The callback itself may run on any chord thread (the
/// loading thread, a generating thread, later the prefetch thread); see `chord_log_fn`.
///
/// Statuses: `CHORD_OK`; `CHORD_E_BUSY` (called from inside the log callback).
#[no_mangle]
pub unsafe extern "C" fn chord_set_log_callback(
    cb: chord_log_fn,
    user_data: *mut c_void,
    user_data_free: chord_free_fn,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        let sink: Option<log::Sink> = cb.map(|cb| {
            let s = CSink {
                cb,
                user_data,
                user_data_free,
            };
            Box::new(move |level: Level, msg: &str| s.call(level, msg)) as log::Sink
        });
        log::set_sink(sink)
    })
}

/// Sets the least severe level delivered to the log callback: `CHORD_LOG_ERROR`, `_WARN`,
/// `_INFO` (the default) or `_DEBUG`; messages of that level and more severe ones are delivered.
/// Process-wide; callable from any thread.
///
/// Statuses: `CHORD_OK`, `CHORD_E_INVALID_ARGUMENT` (unknown level).
#[no_mangle]
pub unsafe extern "C" fn chord_set_log_level(
    level: u32,
    err: *mut *mut chord_error,
) -> chord_status {
    boundary(err, || {
        match Level::from_u32(level) {
            Some(l) => log::set_max_level(l),
            None => bail!(InvalidArgument, "unknown log level {level} (0 to 3)"),
        }
        Ok(())
    })
}

//! Argument checks and conversions shared by the exported functions.

use crate::bail;
use crate::error::Result;

/// `*const T` to `&T`, or an `InvalidArgument` error naming the parameter.
pub(crate) unsafe fn obj<'a, T>(p: *const T, name: &str) -> Result<&'a T> {
    match unsafe { p.as_ref() } {
        Some(r) => Ok(r),
        None => bail!(InvalidArgument, "{name} is NULL"),
    }
}

/// `*mut T` to `&mut T`, or an `InvalidArgument` error naming the parameter.
pub(crate) unsafe fn obj_mut<'a, T>(p: *mut T, name: &str) -> Result<&'a mut T> {
    match unsafe { p.as_mut() } {
        Some(r) => Ok(r),
        None => bail!(InvalidArgument, "{name} is NULL"),
    }
}

/// A `(ptr, len)` slice; NULL is allowed only when `len` is 0.
pub(crate) unsafe fn slice<'a, T>(p: *const T, len: usize, name: &str) -> Result<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        bail!(InvalidArgument, "{name} is NULL but its length is {len}");
    }
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A `(ptr, len)` UTF-8 string.
pub(crate) unsafe fn text<'a>(
    p: *const std::ffi::c_char,
    len: usize,
    name: &str,
) -> Result<&'a str> {
    let bytes = unsafe { slice(p as *const u8, len, name)? };
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => bail!(
            InvalidUtf8,
            "{name} is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        ),
    }
}

/// A 0/1 flag passed as `uint32_t`.
pub(crate) fn flag(v: u32, name: &str) -> Result<bool> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => bail!(InvalidArgument, "{name} must be 0 or 1, got {v}"),
    }
}

/// Writes `*out = v` when `out` is not NULL.
pub(crate) unsafe fn put<T>(out: *mut T, v: T) {
    if let Some(o) = unsafe { out.as_mut() } {
        *o = v;
    }
}

/// Copies `data` into the caller's `(buf, cap)`, setting `*out_len` to `data.len()` in every case;
/// `BufferTooSmall` when it does not fit (nothing is written then).
pub(crate) unsafe fn copy_out<T: Copy>(
    data: &[T],
    buf: *mut T,
    cap: usize,
    out_len: *mut usize,
) -> Result<()> {
    unsafe { put(out_len, data.len()) };
    if data.len() > cap {
        bail!(
            BufferTooSmall,
            "the buffer holds {cap} items but {} are needed",
            data.len()
        );
    }
    if !data.is_empty() {
        if buf.is_null() {
            bail!(InvalidArgument, "buf is NULL");
        }
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len()) };
    }
    Ok(())
}

/// Copies a string into `(buf, cap)` with a terminating NUL; `*out_len` is the length without the
/// NUL. `BufferTooSmall` when `cap < len + 1`.
pub(crate) unsafe fn copy_str(
    s: &[u8],
    buf: *mut std::ffi::c_char,
    cap: usize,
    out_len: *mut usize,
) -> Result<()> {
    unsafe { put(out_len, s.len()) };
    if s.len() + 1 > cap {
        bail!(
            BufferTooSmall,
            "the buffer holds {cap} bytes but {} are needed with the NUL",
            s.len() + 1
        );
    }
    if buf.is_null() {
        bail!(InvalidArgument, "buf is NULL");
    }
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf as *mut u8, s.len());
        *buf.add(s.len()) = 0;
    }
    Ok(())
}

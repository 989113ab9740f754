//! Owned, zeroed byte buffers for weights that chord holds itself (a paged model's pinned layers
//! and slots), backed by 2 MiB pages where the system gives them.
//!
//! Why: the kernels stream every weight byte once per token, and with 4 KiB pages each 4 KiB costs
//! a TLB miss (a two-level page walk in a virtual machine). SmolLM2 Q4_1 decoding on one Zen 4
//! thread: 159 tok/s from the file's page cache in 2 MiB folios mapped whole, 138 tok/s from the
//! same bytes in 4 KiB anonymous pages (`--no-mmap`), and 138 with its layers pinned in heap
//! buffers under a budget. Linux backs an anonymous map with 2 MiB pages (transparent huge pages)
//! where the map is advised `MADV_HUGEPAGE` (THP "madvise", the default here; "always" needs no
//! advice) and covers whole 2 MiB-aligned blocks. Heap blocks are neither, and `memmap2` cannot
//! place a map at an alignment, hence this type. Only whole blocks inside the buffer get 2 MiB
//! pages, so its resident memory is its length rounded up to 4 KiB: a budget counts it exactly.
//!
//! Elsewhere (or where the map is refused) the buffer is a heap block aligned to 4 KiB, which is
//! also what `O_DIRECT` reads need.

use std::alloc::Layout;
use std::ptr::NonNull;

/// Alignment of every buffer: a page, as `O_DIRECT` needs.
pub const PAGE: usize = 4096;

/// A block of one transparent huge page (x86-64; arm64 with 4 KiB pages).
#[cfg(any(target_os = "linux", target_os = "android"))]
const BLOCK: usize = 2 << 20;

/// A zeroed, page-aligned byte buffer of fixed length (see the module documentation).
pub struct HugeBuf {
    ptr: NonNull<u8>,
    len: usize,
    /// `Some(bytes mapped)` for a map of its own, `None` for a heap block.
    mapped: Option<usize>,
}

// SAFETY: the buffer is owned memory like a Vec<u8>'s, reached through &/&mut self only.
unsafe impl Send for HugeBuf {}
// SAFETY: as above.
unsafe impl Sync for HugeBuf {}

impl HugeBuf {
    /// A buffer of `len` zero bytes. Aborts like `vec![0; len]` when memory cannot be had.
    pub fn zeroed(len: usize) -> HugeBuf {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some((ptr, mapped)) = map(len) {
            return HugeBuf {
                ptr,
                len,
                mapped: Some(mapped),
            };
        }
        let layout = heap_layout(len);
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        HugeBuf {
            ptr,
            len,
            mapped: None,
        }
    }
}

fn heap_layout(len: usize) -> Layout {
    Layout::from_size_align(len.max(PAGE), PAGE).expect("a buffer's size fits a layout")
}

/// Maps `len` bytes (rounded up to a page) at a 2 MiB-aligned address when they hold a whole
/// block, advised `MADV_HUGEPAGE`: a map of one extra block, less what lies outside the aligned
/// span. `None` when the system refuses the map.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn map(len: usize) -> Option<(NonNull<u8>, usize)> {
    let span = len.max(1).next_multiple_of(PAGE);
    let pad = if span >= BLOCK { BLOCK } else { 0 };
    // SAFETY: a fresh private anonymous map; nothing else refers to the range.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            span + pad,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    let base = base as usize;
    let start = if pad > 0 {
        base.next_multiple_of(BLOCK)
    } else {
        base
    };
    // SAFETY: both ranges lie inside the map made above and outside [start, start + span), which
    // is all that is kept; page-aligned (mmap returns pages, `span` and `pad` are pages).
    unsafe {
        if start > base {
            libc::munmap(base as *mut libc::c_void, start - base);
        }
        let (end, tail) = (base + span + pad, start + span);
        if end > tail {
            libc::munmap(tail as *mut libc::c_void, end - tail);
        }
        // A hint: without it (THP "madvise", or a kernel without THP) the pages are 4 KiB.
        libc::madvise(start as *mut libc::c_void, span, libc::MADV_HUGEPAGE);
    }
    NonNull::new(start as *mut u8).map(|p| (p, span))
}

impl std::ops::Deref for HugeBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` initialised (zeroed) bytes owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for HugeBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, borrowed mutably through &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for HugeBuf {
    fn drop(&mut self) {
        match self.mapped {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            // SAFETY: the span mapped by `map`, unmapped once.
            Some(span) => unsafe {
                libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, span);
            },
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            Some(_) => unreachable!("maps are made on Linux only"),
            // SAFETY: allocated in `zeroed` with this layout.
            None => unsafe { std::alloc::dealloc(self.ptr.as_ptr(), heap_layout(self.len)) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_zeroed_aligned_and_writable() {
        for len in [0, 1, 4095, 4096, 3 << 20, (5 << 20) + 17] {
            let mut b = HugeBuf::zeroed(len);
            assert_eq!(b.len(), len);
            assert_eq!(b.as_ptr() as usize % PAGE, 0, "{len}");
            assert!(b.iter().all(|&x| x == 0));
            b.iter_mut().enumerate().for_each(|(i, x)| *x = i as u8);
            assert!(b.iter().enumerate().all(|(i, &x)| x == i as u8));
            #[cfg(target_os = "linux")]
            if len >= 2 << 20 {
                assert_eq!(b.as_ptr() as usize % (2 << 20), 0, "{len}");
            }
        }
    }
}

//! The global allocator of chord's Rust code (cargo feature `recycle-alloc`, on by default): the
//! system allocator, plus a small cache of freed large blocks that the next allocation of the same
//! size and alignment takes back. It holds at most [`CAP`] bytes, and [`release`] empties it.
//!
//! Why: the forward pass allocates and frees its activations op by op, tens of MB per layer in a
//! 128-token prefill, in blocks of the same few sizes layer after layer. glibc hands blocks that
//! large back to the kernel (munmap, or trimming the arena's top) and the next allocation faults
//! every page in again, zeroed: about 50K page faults per TinyLlama-shape prefill here, 3% of its
//! time (a prefill with glibc's trimming turned off through `GLIBC_TUNABLES` was 3% faster).
//! mimalloc removed the faults as well, but kept 23-36 MiB more peak RSS in the paged-model
//! tests, an amount that depends on its internal state; chord has to be able to state what it
//! holds against a memory budget, so the cache here is bounded and written by hand. Setting
//! glibc's thresholds with `mallopt` would change the allocator of the whole host program.
//!
//! A Rust program that links chord and sets its own `#[global_allocator]` turns the feature off
//! (`default-features = false`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Blocks smaller than this go straight to the system allocator (glibc's default mmap threshold:
/// smaller blocks are reused inside its arenas without faults).
const MIN: usize = 128 << 10;

/// The most bytes the cache holds.
pub const CAP: usize = 32 << 20;

/// The most blocks the cache holds.
const SLOTS: usize = 32;

/// chord's global allocator (see the module documentation).
pub struct Recycling;

/// A freed block kept for reuse.
#[derive(Clone, Copy)]
struct Slot {
    ptr: *mut u8,
    size: usize,
    align: usize,
    /// When it was freed (a counter): the oldest block goes first when the cache is full.
    age: u64,
}

const EMPTY: Slot = Slot {
    ptr: std::ptr::null_mut(),
    size: 0,
    align: 0,
    age: 0,
};

/// The cached blocks behind a spin lock: an allocator cannot use a lock that may allocate, and
/// the critical sections are a scan of [`SLOTS`] entries.
struct Cache {
    locked: AtomicBool,
    inner: UnsafeCell<Inner>,
}

struct Inner {
    slots: [Slot; SLOTS],
    held: usize,
    clock: u64,
}

// SAFETY: `inner` is only touched while `locked` is held (`Cache::with`).
unsafe impl Sync for Cache {}

static CACHE: Cache = Cache {
    locked: AtomicBool::new(false),
    inner: UnsafeCell::new(Inner {
        slots: [EMPTY; SLOTS],
        held: 0,
        clock: 0,
    }),
};

impl Cache {
    /// Runs `f` on the cache under its lock.
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        // SAFETY: the lock is held, so this is the only reference to `inner`.
        let r = f(unsafe { &mut *self.inner.get() });
        self.locked.store(false, Ordering::Release);
        r
    }
}

impl Inner {
    /// Takes a cached block of exactly `layout`'s size and alignment.
    fn take(&mut self, layout: Layout) -> Option<*mut u8> {
        let s = self
            .slots
            .iter_mut()
            .find(|s| !s.ptr.is_null() && s.size == layout.size() && s.align == layout.align())?;
        self.held -= s.size;
        Some(std::mem::replace(s, EMPTY).ptr)
    }

    /// Keeps `ptr` (a system block of `layout`), making room by moving the oldest blocks into
    /// `evicted`. Returns false when the block is larger than the whole cache.
    fn put(&mut self, ptr: *mut u8, layout: Layout, evicted: &mut [Slot; SLOTS]) -> bool {
        if layout.size() > CAP {
            return false;
        }
        let mut n = 0;
        while self.held + layout.size() > CAP || self.slots.iter().all(|s| !s.ptr.is_null()) {
            let oldest = self
                .slots
                .iter_mut()
                .filter(|s| !s.ptr.is_null())
                .min_by_key(|s| s.age)
                .expect("a full cache has blocks");
            self.held -= oldest.size;
            evicted[n] = std::mem::replace(oldest, EMPTY);
            n += 1;
        }
        self.clock += 1;
        let free = self
            .slots
            .iter_mut()
            .find(|s| s.ptr.is_null())
            .expect("room was made above");
        *free = Slot {
            ptr,
            size: layout.size(),
            align: layout.align(),
            age: self.clock,
        };
        self.held += layout.size();
        true
    }
}

/// Frees the blocks in `slots` (those not empty) to the system allocator.
fn free_all(slots: &[Slot]) {
    for s in slots.iter().filter(|s| !s.ptr.is_null()) {
        // SAFETY: a cached block was allocated by `System` with exactly this size and alignment,
        // and the cache no longer holds it.
        unsafe { System.dealloc(s.ptr, Layout::from_size_align_unchecked(s.size, s.align)) };
    }
}

/// Hands every cached block back to the system allocator (when the last session ends, so that a
/// program that is done with chord gets its memory back).
pub fn release() {
    let slots = CACHE.with(|c| {
        c.held = 0;
        std::mem::replace(&mut c.slots, [EMPTY; SLOTS])
    });
    free_all(&slots);
}

/// Held by every session: the cache is emptied ([`release`]) when the last one is dropped.
pub struct InUse(());

static IN_USE: AtomicUsize = AtomicUsize::new(0);

impl InUse {
    /// Counts one more user of the cache.
    #[allow(clippy::new_without_default)]
    pub fn new() -> InUse {
        IN_USE.fetch_add(1, Ordering::Relaxed);
        InUse(())
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        if IN_USE.fetch_sub(1, Ordering::AcqRel) == 1 {
            release();
        }
    }
}

// SAFETY: every block comes from `System` with the layout asked for (a cached block is reused only
// for exactly its own size and alignment) and goes back to `System` with that layout, so the
// `System` contract carries over.
unsafe impl GlobalAlloc for Recycling {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= MIN {
            if let Some(p) = CACHE.with(|c| c.take(layout)) {
                return p;
            }
        }
        // SAFETY: the caller's contract for `alloc` (a non-zero size).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= MIN {
            if let Some(p) = CACHE.with(|c| c.take(layout)) {
                // SAFETY: `p` is a block of `layout.size()` writable bytes.
                unsafe { std::ptr::write_bytes(p, 0, layout.size()) };
                return p;
            }
        }
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= MIN {
            let mut evicted = [EMPTY; SLOTS];
            if CACHE.with(|c| c.put(ptr, layout, &mut evicted)) {
                free_all(&evicted);
                return;
            }
        }
        // SAFETY: `ptr` was allocated by `System` with `layout` (see the impl's comment).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` is a `System` block of `layout` (see the impl's comment); the caller's
        // contract covers `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes the cache holds now.
    fn held() -> usize {
        CACHE.with(|c| c.held)
    }

    /// Tests run in parallel and all allocate through the cache: only properties that hold
    /// whatever the other threads do are checked.
    #[test]
    fn a_freed_block_comes_back_and_the_cache_stays_bounded() {
        let layout = Layout::from_size_align(MIN + 4096 * 7 + 64, 64).unwrap();
        // SAFETY: `Recycling` is a `GlobalAlloc`; the layout is not zero-sized.
        unsafe {
            let a = Recycling.alloc(layout);
            assert!(!a.is_null());
            a.write_bytes(0xAB, layout.size());
            Recycling.dealloc(a, layout);
            // This size is used by no other test: the block is still cached unless 32 others
            // pushed it out in between.
            let b = Recycling.alloc_zeroed(layout);
            assert!(std::slice::from_raw_parts(b, layout.size())
                .iter()
                .all(|&x| x == 0));
            Recycling.dealloc(b, layout);
        }
        let big = Layout::from_size_align(CAP / 3, 8).unwrap();
        for _ in 0..8 {
            // SAFETY: as above.
            unsafe { Recycling.dealloc(Recycling.alloc(big), big) };
            assert!(held() <= CAP);
        }
        let huge = Layout::from_size_align(CAP + 1, 8).unwrap();
        // SAFETY: as above.
        unsafe { Recycling.dealloc(Recycling.alloc(huge), huge) };
        assert!(held() <= CAP);
    }
}

//! The process-wide SIGBUS guard over the pager's mapped units (Linux).
//!
//! A read through a file mapping whose page lies beyond the end of the file (the file was truncated
//! after it was mapped) raises SIGBUS, which kills the host program by default. The pager maps its
//! streamed units, so it installs one handler for the process that owns a small table of watched
//! address ranges: a fault inside a watched range maps anonymous zero pages over that whole range
//! (the access is retried and reads zeros), marks the range poisoned and returns; the pager turns
//! the poison into an I/O error of the call that read the unit. A fault anywhere else goes to the
//! handler that was installed before (or to the default action, which ends the process as it
//! would have without chord).
//!
//! Written by hand: signal-hook-registry (the well-kept registry) calls every registered action and
//! then the previous handler unless that is the default, so it cannot decide per faulting address
//! and would turn a foreign SIGBUS into an endless fault loop. The handler only does atomic loads,
//! atomic stores and one `mmap` (a plain system call on Linux; not on POSIX's list of
//! async-signal-safe functions, but it takes no lock in glibc or musl).
//!
//! Limits: a host that installs its own SIGBUS handler after chord's, without chaining to it,
//! takes these faults itself. The table holds [`ENTRIES`] ranges for the whole process; a pager
//! that cannot reserve entries for its slots reads its units instead of mapping them.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Watched ranges in the process: a slot of a paged model takes one.
const ENTRIES: usize = 64;

struct Entry {
    /// Start address of the watched range; 0 when none.
    start: AtomicUsize,
    len: AtomicUsize,
    /// Set by the handler when a read faulted inside the range.
    poisoned: AtomicBool,
    /// Reserved by a [`Watch`].
    taken: AtomicBool,
}

impl Entry {
    const fn free() -> Entry {
        Entry {
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
            taken: AtomicBool::new(false),
        }
    }
}

static TABLE: [Entry; ENTRIES] = [const { Entry::free() }; ENTRIES];

/// The disposition of SIGBUS before chord's handler; `None` when installing failed.
static PREVIOUS: OnceLock<Option<libc::sigaction>> = OnceLock::new();

/// One reserved entry of the table: watches at most one address range at a time.
pub(super) struct Watch(usize);

impl Watch {
    /// Installs the handler (once per process) and reserves an entry; `None` when the handler
    /// cannot be installed or the table is full.
    pub fn reserve() -> Option<Watch> {
        PREVIOUS.get_or_init(install).as_ref()?;
        let i = TABLE.iter().position(|e| {
            e.taken
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })?;
        Some(Watch(i))
    }

    /// Watches `len` bytes from `start` (page-aligned; mapped by the caller), clearing the poison.
    pub fn watch(&self, start: *const u8, len: usize) {
        let e = &TABLE[self.0];
        e.start.store(0, Ordering::Release);
        e.poisoned.store(false, Ordering::Release);
        e.len.store(len, Ordering::Release);
        e.start.store(start as usize, Ordering::Release);
    }

    /// Stops watching (before the range is unmapped).
    pub fn unwatch(&self) {
        TABLE[self.0].start.store(0, Ordering::Release);
    }

    /// Whether a read inside the watched range faulted since [`Watch::watch`].
    pub fn poisoned(&self) -> bool {
        TABLE[self.0].poisoned.load(Ordering::Acquire)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.unwatch();
        TABLE[self.0].taken.store(false, Ordering::Release);
    }
}

/// Installs [`on_sigbus`], returning the disposition it replaces.
fn install() -> Option<libc::sigaction> {
    // SAFETY: sigaction with valid pointers; the handler has the SA_SIGINFO signature.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
            return None;
        }
        let mut new: libc::sigaction = std::mem::zeroed();
        new.sa_sigaction = on_sigbus as *const () as usize;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut new.sa_mask);
        if libc::sigaction(libc::SIGBUS, &new, std::ptr::null_mut()) != 0 {
            return None;
        }
        Some(old)
    }
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo for a SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    for e in &TABLE {
        let start = e.start.load(Ordering::Acquire);
        let len = e.len.load(Ordering::Acquire);
        if start == 0 || addr < start || addr - start >= len {
            continue;
        }
        // SAFETY: the range is a mapping the pager owns and keeps while it is watched; zero pages
        // replace it in place (MAP_FIXED) and the pager unmaps the whole range later.
        let p = unsafe {
            libc::mmap(
                start as *mut c_void,
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            e.poisoned.store(true, Ordering::Release);
            return;
        }
    }
    // Not ours: what would have happened without chord.
    match PREVIOUS.get().copied().flatten() {
        Some(prev) if prev.sa_sigaction != libc::SIG_DFL && prev.sa_sigaction != libc::SIG_IGN => {
            // SAFETY: the previous handler of this signal, called as its flags say it expects.
            unsafe {
                if prev.sa_flags & libc::SA_SIGINFO != 0 {
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
                        std::mem::transmute(prev.sa_sigaction);
                    f(sig, info, ctx)
                } else {
                    let f: extern "C" fn(libc::c_int) = std::mem::transmute(prev.sa_sigaction);
                    f(sig)
                }
            }
        }
        prev => {
            // Put the default (or ignore) back and return: the access faults again and the kernel
            // applies it, as if chord had never installed a handler.
            // SAFETY: sigaction with valid pointers.
            unsafe {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = prev.map_or(libc::SIG_DFL, |p| p.sa_sigaction);
                libc::sigemptyset(&mut dfl.sa_mask);
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
    }
}

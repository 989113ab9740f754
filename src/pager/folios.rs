//! Which 2 MiB blocks of the model file the page cache holds in 2 MiB folios, and bringing the
//! others back in them, once (Linux 6.7+).
//!
//! A mapped slot loads a block the page cache holds in one 2 MiB folio with one page-table entry,
//! and one held in small folios with 512 ([`super::map`]): SmolLM2 at 15% of its weights, its
//! file cached by a front-to-back `read()` (55% of it in 2 MiB folios), decodes at 0.55 of the
//! resident rate, against 0.79 cached through a map. What fills the cache decides (a copy, a
//! checksum, another program), and the kernel here cannot collapse file folios afterwards
//! (`MADV_COLLAPSE` needs `CONFIG_READ_ONLY_THP_FOR_FS`). So after a slot populates its map, the
//! blocks of it not yet checked are asked about (`PAGEMAP_SCAN` on `/proc/self/pagemap`: which
//! ranges are mapped by one PMD entry); a block in small folios is dropped from the page cache
//! (`POSIX_FADV_DONTNEED`, which skips folios another process maps or that are dirty) and read
//! again through the slot's map, advised `MADV_HUGEPAGE`, so it returns in a 2 MiB folio. Each
//! block is checked once per pager: the cost is one read of the blocks that needed it, at the
//! first token, and none after. Where the first re-read block still comes back in small folios
//! (a file system without large folios, THP off, fragmented memory), repairs stop.
//!
//! Hand-written: no crate wraps `PAGEMAP_SCAN` (libc has no binding for it yet).

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use super::map::BLOCK;

/// `struct pm_scan_arg` of `<linux/fs.h>`.
#[repr(C)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// `struct page_region` of `<linux/fs.h>`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// `PAGE_IS_HUGE`: mapped by a PMD entry (or hugetlb).
const PAGE_IS_HUGE: u64 = 1 << 6;
/// `PAGEMAP_SCAN`: `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: u64 =
    (3 << 30) | ((std::mem::size_of::<PmScanArg>() as u64) << 16) | ((b'f' as u64) << 8) | 16;

/// Whether re-reading a block brings it back in a 2 MiB folio: not tried yet, yes, no.
const UNKNOWN: u8 = 0;
const WORKS: u8 = 1;
const FAILS: u8 = 2;

/// What the mapped slots of one pager know of the file's folios. See the module documentation.
pub(super) struct Folios {
    /// `/proc/self/pagemap`, where it opens and answers `PAGEMAP_SCAN`.
    pagemap: Option<File>,
    file: File,
    /// Whole 2 MiB blocks of the file (a partial last block is never mapped by one entry).
    checked: Vec<AtomicBool>,
    repair: AtomicU8,
}

impl Folios {
    /// The state of `file` (a descriptor of the pager's own, `len` bytes): nothing checked yet.
    pub fn new(file: File, len: u64) -> Folios {
        Folios {
            pagemap: File::open("/proc/self/pagemap").ok(),
            file,
            checked: (0..len / BLOCK).map(|_| AtomicBool::new(false)).collect(),
            repair: AtomicU8::new(UNKNOWN),
        }
    }

    /// File blocks (by index) that `[lo, hi)` touches, whole in the file and in the map of file
    /// offsets `[at, end)`, that no load has checked yet; marks them checked.
    fn unchecked(&self, at: u64, end: u64, lo: u64, hi: u64) -> Vec<u64> {
        let first = at.div_ceil(BLOCK).max(lo / BLOCK);
        let last = (end / BLOCK).min(hi.div_ceil(BLOCK));
        (first..last)
            .filter(|&b| {
                self.checked
                    .get(b as usize)
                    .is_some_and(|c| !c.swap(true, Ordering::Relaxed))
            })
            .collect()
    }

    /// Of `blocks` (file block indices, ascending), those the map at `base` (file offset `at`)
    /// does not map by one PMD entry each; `None` when the kernel cannot tell.
    pub fn small(&self, base: *const u8, at: u64, blocks: &[u64]) -> Option<Vec<u64>> {
        let pagemap = self.pagemap.as_ref()?;
        let (&b0, &b1) = (blocks.first()?, blocks.last()?);
        let addr = |b: u64| base as u64 + (b * BLOCK - at);
        let mut regions = vec![PageRegion::default(); blocks.len()];
        let mut arg = PmScanArg {
            size: std::mem::size_of::<PmScanArg>() as u64,
            flags: 0,
            start: addr(b0),
            end: addr(b1) + BLOCK,
            walk_end: 0,
            vec: regions.as_mut_ptr() as u64,
            vec_len: regions.len() as u64,
            max_pages: 0,
            category_inverted: 0,
            category_mask: PAGE_IS_HUGE,
            category_anyof_mask: 0,
            return_mask: PAGE_IS_HUGE,
        };
        // SAFETY: the argument and the region vector outlive the call, which writes at most
        // `vec_len` regions; the scanned range is this slot's own map.
        let n = unsafe { libc::ioctl(pagemap.as_raw_fd(), PAGEMAP_SCAN as _, &mut arg) };
        if n < 0 {
            return None;
        }
        let huge = &regions[..n as usize];
        Some(
            blocks
                .iter()
                .copied()
                .filter(|&b| {
                    !huge
                        .iter()
                        .any(|r| r.start <= addr(b) && addr(b) + BLOCK <= r.end)
                })
                .collect(),
        )
    }

    /// After a populate of the file bytes `[lo, hi)` through the map at `base` of file offsets
    /// `[at, end)`: checks the blocks not checked yet and brings those in small folios back in
    /// 2 MiB ones (`populate(from, to)` populates file offsets `[from, to)` of the map again).
    /// Best effort: every failure leaves the map as populated.
    pub fn check(
        &self,
        base: *const u8,
        (at, end): (u64, u64),
        (lo, hi): (u64, u64),
        populate: &dyn Fn(u64, u64) -> bool,
    ) {
        let blocks = self.unchecked(at, end, lo, hi);
        if blocks.is_empty() || self.repair.load(Ordering::Relaxed) == FAILS {
            return;
        }
        let Some(small) = self.small(base, at, &blocks) else {
            return;
        };
        for &b in &small {
            if self.repair.load(Ordering::Relaxed) == FAILS {
                return;
            }
            let ptr = base.wrapping_add((b * BLOCK - at) as usize);
            // SAFETY: the block lies inside this slot's map, which nothing reads while it loads;
            // dropping its entries only makes the next access fault the file's bytes in again.
            let zapped =
                unsafe { libc::madvise(ptr as *mut _, BLOCK as usize, libc::MADV_DONTNEED) == 0 };
            // SAFETY: a hint on an open descriptor; it changes no memory of this process.
            let dropped = zapped
                && unsafe {
                    libc::posix_fadvise(
                        self.file.as_raw_fd(),
                        (b * BLOCK) as libc::off_t,
                        BLOCK as libc::off_t,
                        libc::POSIX_FADV_DONTNEED,
                    ) == 0
                };
            let (from, to) = ((b * BLOCK).max(lo), ((b + 1) * BLOCK).min(hi));
            if !populate(from, to) || !dropped {
                return;
            }
            if self.repair.load(Ordering::Relaxed) == UNKNOWN {
                let now = self.small(base, at, &[b]).unwrap_or_default();
                let verdict = if now.is_empty() { WORKS } else { FAILS };
                self.repair.store(verdict, Ordering::Relaxed);
            }
        }
    }
}

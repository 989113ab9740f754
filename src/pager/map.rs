//! A slot that holds its streamed unit as a map of the unit's span of the model file instead of a
//! copy (Linux). Loading it asks the kernel to read the span ahead (`MADV_WILLNEED`: many reads in
//! flight) and to map every page of its tensors (`MADV_POPULATE_READ`), so the computing threads
//! never fault and no byte is copied: with the file in the page cache, loading costs page-table
//! work instead of a copy that competes with the kernels for memory bandwidth. The map is watched
//! by [`super::sigbus`], so a file truncated under it poisons the unit instead of killing the
//! program.

use super::sigbus::Watch;
use super::UnitLayout;
use crate::error::{Error, ErrorCode, Result};
use memmap2::{Advice, Mmap, MmapOptions};
use std::fs::File;

/// A slot's map; empty until [`MapSlot::load`].
pub(super) struct MapSlot {
    watch: Watch,
    /// The map of the loaded unit's span and the file offset of the span's start.
    map: Option<(Mmap, u64)>,
}

impl MapSlot {
    /// A slot with its SIGBUS watch entry; `None` when the guard cannot be had (see
    /// [`Watch::reserve`]).
    pub fn reserve() -> Option<MapSlot> {
        Watch::reserve().map(|watch| MapSlot { watch, map: None })
    }

    /// Maps `unit` (dropping the previous map) and has its pages read and mapped.
    pub fn load(&mut self, file: &File, unit: &UnitLayout) -> Result<()> {
        self.clear();
        let lo = unit.parts.iter().map(|p| p.0).min().unwrap_or(0);
        let hi = unit
            .parts
            .iter()
            .map(|p| p.0 + p.1 as u64)
            .max()
            .unwrap_or(0);
        if hi <= lo {
            return Ok(());
        }
        let io = |what: &str, e: std::io::Error| {
            Error::new(ErrorCode::Io, format!("{what} weights at offset {lo}: {e}"))
        };
        let file_len = file.metadata().map_err(|e| io("checking", e))?.len();
        if file_len < hi {
            return Err(super::shorter_than_loaded((hi - lo) as usize, lo));
        }
        // SAFETY: the map is only read, while watched: a truncation under it is a poisoned unit,
        // not undefined behaviour (see super::sigbus).
        let map = unsafe {
            MmapOptions::new()
                .offset(lo)
                .len((hi - lo) as usize)
                .map(file)
        }
        .map_err(|e| io("mapping", e))?;
        // memmap2 maps from the page boundary below `lo`: watch all of it.
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let pad = (lo % page as u64) as usize;
        self.watch.watch(
            map.as_ptr().wrapping_sub(pad),
            (map.len() + pad).next_multiple_of(page),
        );
        // Read-ahead of the whole span, many requests in flight; hints, their failure is harmless.
        // Sequential: a page that was evicted before it was mapped (a tight memory cgroup) is read
        // again with what follows it, not around it; without it the 7B shape in a 2 GiB cgroup
        // read 102 GB from storage in a run where reading into buffers read 86 GB (0.51 against
        // 0.66 tok/s); with it both read 86 GB (0.67 and 0.69 tok/s).
        let _ = map.advise(Advice::Sequential);
        let _ = map.advise(Advice::WillNeed);
        for &(off, len) in &unit.parts {
            match map.advise_range(Advice::PopulateRead, (off - lo) as usize, len) {
                Ok(()) => {}
                // Kernels before 5.14 lack it: the kernels' first reads fault the pages in.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
                // What a read would have met as SIGBUS: the file shrank since the check.
                Err(e) if e.raw_os_error() == Some(libc::EFAULT) => {
                    self.watch.unwatch();
                    return Err(super::shorter_than_loaded(len, off));
                }
                Err(e) => {
                    self.watch.unwatch();
                    return Err(io("reading", e));
                }
            }
        }
        self.map = Some((map, lo));
        Ok(())
    }

    /// The `len` bytes at file offset `off` (inside the loaded unit).
    pub fn part(&self, off: u64, len: usize) -> &[u8] {
        let Some((map, lo)) = &self.map else {
            return &[]; // a unit of empty parts
        };
        let at = (off - lo) as usize;
        &map[at..at + len]
    }

    /// Whether a read of the loaded unit faulted (its bytes were zeros, not the file's).
    pub fn poisoned(&self) -> bool {
        self.map.is_some() && self.watch.poisoned()
    }

    /// Unmaps the unit.
    pub fn clear(&mut self) {
        self.watch.unwatch();
        self.map = None;
    }
}

impl Drop for MapSlot {
    fn drop(&mut self) {
        // Stop watching before the range is unmapped and may be reused by another mapping.
        self.clear();
    }
}

//! A slot that holds its streamed unit as a map of the unit's span of the file instead of a copy
//! (Linux). Loading it asks the kernel to map every page of its tensors (`MADV_POPULATE_READ`), so
//! the computing threads never fault and no byte is copied: with the file in the page cache,
//! loading costs page-table work instead of a copy that competes with the kernels for memory
//! bandwidth.
//!
//! That work is per page-table entry, and the kernel maps a 2 MiB folio of the page cache with one
//! (PMD) entry only where the map covers its whole 2 MiB block at a 2 MiB-aligned address: a 3 MB
//! span of SmolLM2's file took 0.28 ms to map in 4 KiB pages (0.39 us each; at 15% of its weights
//! SmolLM2 streams 43 units of 2.2 MB per token, and two Zen 4 cores compute a token in about
//! 5 ms) and 0.013 ms in 2 MiB folios mapped whole. So a unit of at least 2 MiB is mapped widened
//! to the whole 2 MiB blocks around it when its slot has room for them ([`whole_blocks_len`]; the
//! plan counts them), and the map asks for 2 MiB folios (`MADV_HUGEPAGE`), so that what storage
//! reads through it enters the page cache in them. Only the unit's own bytes are populated. Blocks
//! the page cache holds in small folios are brought back in 2 MiB ones the first time a slot maps
//! them ([`super::folios`]).
//!
//! The map is watched by [`super::sigbus`], so a file truncated under it poisons the unit instead
//! of killing the program.

use super::folios::Folios;
use super::sigbus::Watch;
use super::UnitLayout;
use crate::error::{Error, ErrorCode, Result};
use memmap2::{Advice, Mmap, MmapOptions};
use std::fs::File;
use std::sync::Arc;

/// A block of the page cache's largest folios and of one PMD entry (x86-64, and arm64 with 4 KiB
/// pages).
pub(super) const BLOCK: u64 = 2 << 20;

/// The span a slot maps for `unit` when it has room for whole blocks: the unit widened to the
/// 2 MiB blocks around it, or `None` for a unit under 2 MiB, of which no block can lie inside a
/// map of its own bytes either.
fn whole_blocks(unit: &UnitLayout) -> Option<(u64, u64)> {
    let (lo, hi) = unit.bounds();
    (hi - lo >= BLOCK).then(|| (lo / BLOCK * BLOCK, hi.next_multiple_of(BLOCK)))
}

/// Bytes a slot maps for `unit` widened to whole 2 MiB blocks (0 for a unit under 2 MiB, which is
/// never widened): what the unit costs a mapped slot against the budget, at most its span plus
/// 4 MiB.
pub(super) fn whole_blocks_len(unit: &UnitLayout) -> usize {
    whole_blocks(unit).map_or(0, |(lo, hi)| (hi - lo) as usize)
}

/// `n` mapped slots of `room` bytes over `file`, or `None` when the system refuses them (no SIGBUS
/// watch entry or descriptor to be had).
pub(super) fn slots(n: usize, room: usize, file: &File) -> Option<Vec<MapSlot>> {
    let len = file.metadata().ok()?.len();
    let folios = Arc::new(Folios::new(file.try_clone().ok()?, len));
    (0..n)
        .map(|_| MapSlot::reserve(room, folios.clone()))
        .collect()
}

/// A slot's map; empty until [`MapSlot::load`].
pub(super) struct MapSlot {
    watch: Watch,
    /// Bytes the slot may map (what the plan counted for it): units are widened to whole blocks
    /// only when those fit.
    room: usize,
    /// What the pager's slots know of the file's folios, shared by them.
    folios: Arc<Folios>,
    /// The map of the loaded unit's span and the file offset of the span's start.
    map: Option<(Mmap, u64)>,
}

impl MapSlot {
    /// A slot of `room` bytes with its SIGBUS watch entry; `None` when the guard cannot be had
    /// (see [`Watch::reserve`]).
    fn reserve(room: usize, folios: Arc<Folios>) -> Option<MapSlot> {
        Watch::reserve().map(|watch| MapSlot {
            watch,
            room,
            folios,
            map: None,
        })
    }

    /// Maps `unit` (dropping the previous map) and has its pages read and mapped.
    pub fn load(&mut self, file: &File, unit: &UnitLayout) -> Result<()> {
        self.clear();
        let (lo, hi) = unit.bounds();
        if hi <= lo {
            return Ok(());
        }
        let io = |what: &str, e: std::io::Error| {
            Error::new(ErrorCode::Io, format!("{what} weights at offset {lo}: {e}"))
        };
        // The populate below fails on pages past the end of the file, but not on bytes past it in
        // its last page, which read zeros.
        let file_len = file.metadata().map_err(|e| io("checking", e))?.len();
        if file_len < hi {
            return Err(super::shorter_than_loaded((hi - lo) as usize, lo));
        }
        // The span mapped: whole blocks where the slot has room for them. Past the end of the
        // file is never read (only the unit's pages are populated). Linux places a map of whole
        // blocks of a file on a 2 MiB-aligned address (thp_get_unmapped_area: ext4, xfs, tmpfs).
        let (at, end) = whole_blocks(unit)
            .filter(|&(a, b)| (b - a) as usize <= self.room)
            .unwrap_or((lo, hi));
        // SAFETY: the map is only read, while watched: a truncation under it is a poisoned unit,
        // not undefined behaviour (see super::sigbus).
        let map = unsafe {
            MmapOptions::new()
                .offset(at)
                .len((end - at) as usize)
                .map(file)
        }
        .map_err(|e| io("mapping", e))?;
        // A hint: 2 MiB folios for what storage reads through this map.
        let _ = map.advise(Advice::HugePage);
        // memmap2 maps from the page boundary below `at`: watch all of it.
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let pad = (at % page as u64) as usize;
        self.watch.watch(
            map.as_ptr().wrapping_sub(pad),
            (map.len() + pad).next_multiple_of(page),
        );
        // One populate over the unit's bytes (the gaps between its parts are alignment padding):
        // each system call costs microseconds, and a SmolLM2 layer has nine parts (a whole unit's
        // load with a computing thread on the other core, Zen 4: 23 us populated part by part,
        // 18 us at once). No read-ahead hints (`MADV_WILLNEED`, `MADV_SEQUENTIAL`): with the file
        // cached the former walks the page cache page by page for nothing (17% of a SmolLM2 run's
        // samples at 15%), and cold neither beats the populate's own read-ahead of 2 MiB folios
        // (TinyLlama shape at 40%, load to last token, three runs each: 1.67-1.94 s with
        // `MADV_WILLNEED`, 1.63-1.81 without). A file that does not fit in memory is read past the
        // page cache instead.
        let first = (lo - at) as usize;
        match map.advise_range(Advice::PopulateRead, first, (hi - lo) as usize) {
            Ok(()) => {}
            // Kernels before 5.14 lack it: the kernels' first reads fault the pages in.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            // What a read would have met as SIGBUS: the file shrank since the check.
            Err(e) if e.raw_os_error() == Some(libc::EFAULT) => {
                self.watch.unwatch();
                return Err(super::shorter_than_loaded((hi - lo) as usize, lo));
            }
            Err(e) => {
                self.watch.unwatch();
                return Err(io("reading", e));
            }
        }
        let populate = |from: u64, to: u64| {
            map.advise_range(
                Advice::PopulateRead,
                (from - at) as usize,
                (to - from) as usize,
            )
            .is_ok()
        };
        self.folios
            .check(map.as_ptr(), (at, end), (lo, hi), &populate);
        self.map = Some((map, at));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    use std::os::unix::io::AsRawFd;

    const MIB: usize = 1 << 20;

    /// `bytes` written to a fresh temp file (on its disk, not only in the page cache), opened for
    /// reading and already unlinked.
    fn file_of(tag: &str, bytes: &[u8]) -> File {
        let path = std::env::temp_dir().join(format!("chord-map-{tag}-{}", std::process::id()));
        let mut w = File::create(&path).unwrap();
        w.write_all(bytes).unwrap();
        w.sync_all().unwrap();
        let file = File::open(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        file
    }

    #[test]
    fn a_unit_of_whole_blocks_maps_them_when_its_slot_has_room() {
        let bytes: Vec<u8> = (0..7 * MIB).map(|i| (i % 253) as u8).collect();
        let file = file_of("blocks", &bytes);
        // 2.5 MiB from just below the 3 MiB mark: the blocks around it are 2..6 MiB.
        let parts = vec![(3 * MIB as u64 - 100, MIB), (4 * MIB as u64, 3 * MIB / 2)];
        let unit = UnitLayout { parts };
        assert_eq!(whole_blocks_len(&unit), 4 * MIB);
        for (room, mapped) in [(4 * MIB, 4 * MIB), (4 * MIB - 1, 5 * MIB / 2 + 100)] {
            let mut slot = slots(1, room, &file)
                .expect("a SIGBUS watch entry")
                .remove(0);
            slot.load(&file, &unit).unwrap();
            assert_eq!(slot.map.as_ref().unwrap().0.len(), mapped, "room {room}");
            for &(off, len) in &unit.parts {
                let at = off as usize;
                assert!(slot.part(off, len) == &bytes[at..at + len], "room {room}");
            }
            assert!(!slot.poisoned());
        }
        // A unit under 2 MiB is never widened.
        let small = UnitLayout {
            parts: vec![(MIB as u64, MIB)],
        };
        assert_eq!(whole_blocks_len(&small), 0);
    }

    /// Blocks the page cache holds in 4 KiB folios come back in 2 MiB ones after a mapped slot
    /// loads them once (what a copy or a checksum may leave: [`super::super::folios`]).
    #[test]
    fn blocks_cached_in_small_folios_come_back_in_2_mib_ones() {
        let bytes: Vec<u8> = (0..8 * MIB).map(|i| (i % 251) as u8).collect();
        let file = file_of("folios", &bytes);
        // Out of the page cache (written back above), then in again page by page, without
        // read-ahead: 4 KiB folios.
        let fd = file.as_raw_fd();
        // SAFETY: hints on an open descriptor.
        unsafe {
            assert_eq!(libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED), 0);
            assert_eq!(libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_RANDOM), 0);
        }
        let mut page = [0u8; 4096];
        for off in (0..8 * MIB).step_by(4096) {
            file.read_exact_at(&mut page, off as u64).unwrap();
        }
        let folios = Folios::new(file.try_clone().unwrap(), bytes.len() as u64);
        let blocks = [0, 1, 2];
        {
            // SAFETY: a read-only map of a file this test owns.
            let m = unsafe { MmapOptions::new().len(8 * MIB).map(&file) }.unwrap();
            m.advise(Advice::PopulateRead).unwrap();
            let small = folios.small(m.as_ptr(), 0, &blocks);
            assert_eq!(small.as_deref(), Some(&blocks[..]), "cached page by page");
        }
        // 5 MiB from 1 MiB: blocks 0..3 (0..6 MiB) mapped whole.
        let unit = UnitLayout {
            parts: vec![(MIB as u64, 5 * MIB)],
        };
        let mut slot = slots(1, 6 * MIB, &file).unwrap().remove(0);
        slot.load(&file, &unit).unwrap();
        assert!(slot.part(MIB as u64, 5 * MIB) == &bytes[MIB..6 * MIB]);
        let (map, at) = slot.map.as_ref().unwrap();
        assert_eq!(
            slot.folios.small(map.as_ptr(), *at, &blocks).as_deref(),
            Some(&[][..]),
            "after one load every block is mapped by one entry (this needs transparent huge \
             pages for madvise or always, and a file system with large folios: ext4 or xfs on \
             Linux 6.7+)"
        );
    }
}

//! A slot that holds its streamed unit in an owned buffer filled by reads that bypass the page
//! cache (`O_DIRECT`, Linux): for a file that cannot stay cached, so every streamed byte comes from
//! storage on every token.
//!
//! Against buffered `pread` (the [`super::Loader::Read`] slot) it reads exactly the unit's bytes
//! (to the 4 KiB blocks around them), where the kernel's read-ahead ran past each streamed unit
//! into the next one in the file, often pinned, and read 8% more (the Llama-2-7B shape in a 2 GiB
//! cgroup); a unit is read as a few large requests at once, which the block layer splits into
//! many in flight; the device writes into the buffer, so no thread copies from the page cache; and
//! the page cache (charged to the process's memory cgroup) holds nothing of the streamed units.

use super::UnitLayout;
use crate::error::{Error, ErrorCode, Result};
use crate::huge::HugeBuf;
use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::sync::Arc;

/// Alignment of offsets, lengths and buffer addresses for `O_DIRECT`: the logical block size of
/// the device, which is 512 or 4096 bytes on the devices chord meets; 4096 serves both.
const ALIGN: usize = 4096;

/// Parts closer than this in the file are read as one request, the gap with them.
const MERGE_GAP: u64 = 64 * 1024;

/// Reads of one unit in flight at once (the calling thread and scoped threads, each a contiguous
/// piece of at least [`MIN_READ`] bytes). One request of a whole unit leaves the device idle while
/// its last pieces complete: the TinyLlama shape at 40% in a 383 MiB cgroup decoded 2.9-3.2 tok/s
/// (5.4 once) with one read per unit and 3.1-5.7 (median 4.8) with four, alternating runs on this
/// disk (which switches between about 1.3 and 2.3 GB/s by itself); the 7B shape's 120 MB units
/// showed no difference.
const READS: usize = 4;

/// The smallest piece a unit's read is split into.
const MIN_READ: usize = 4 << 20;

/// A second open of `file` that reads past the page cache, or `None` where the file system does
/// not allow it (its error is then the caller's cue to read through the cache).
pub(super) fn open(file: &File) -> Option<File> {
    // A new open file description of the same file, by its descriptor: the path it was opened by
    // may have changed since.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .ok()
}

/// The aligned file ranges `(offset, len)` that cover `unit`'s parts, in file order, and where
/// each part starts in a buffer that holds those ranges back to back.
fn runs(unit: &UnitLayout) -> (Vec<(u64, usize)>, Vec<usize>) {
    let mut order: Vec<usize> = (0..unit.parts.len()).collect();
    order.sort_by_key(|&i| unit.parts[i].0);
    let align = ALIGN as u64;
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut run_of = vec![0; unit.parts.len()];
    for i in order {
        let (off, len) = unit.parts[i];
        let (lo, hi) = (
            off / align * align,
            (off + len as u64).next_multiple_of(align),
        );
        match runs.last_mut() {
            Some(r) if lo <= r.1 + MERGE_GAP => r.1 = r.1.max(hi),
            _ => runs.push((lo, hi)),
        }
        run_of[i] = runs.len() - 1;
    }
    let mut at = Vec::with_capacity(runs.len());
    let mut pos = 0usize;
    for &(lo, hi) in &runs {
        at.push(pos);
        pos += (hi - lo) as usize;
    }
    let starts = (0..unit.parts.len())
        .map(|i| at[run_of[i]] + (unit.parts[i].0 - runs[run_of[i]].0) as usize)
        .collect();
    let runs = runs
        .into_iter()
        .map(|(lo, hi)| (lo, (hi - lo) as usize))
        .collect();
    (runs, starts)
}

/// Bytes of the buffer a slot needs to hold `unit`.
pub(super) fn buffer_len(unit: &UnitLayout) -> usize {
    runs(unit).0.iter().map(|r| r.1).sum()
}

/// Reads `buf.len()` bytes at `lo` (both block-aligned) from `file`, of which at least the first
/// `need` must exist (the file may end inside the last block).
fn read_span(file: &File, buf: &mut [u8], lo: u64, need: usize) -> Result<()> {
    let len = buf.len();
    let mut done = 0;
    while done < len {
        match file.read_at(&mut buf[done..], lo + done as u64) {
            Ok(0) => break,
            // A count off the block size ends the span: the file ended there.
            Ok(k) if k % ALIGN != 0 => {
                done += k;
                break;
            }
            Ok(k) => done += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::new(
                    ErrorCode::Io,
                    format!("reading {len} bytes of weights at offset {lo}: {e}"),
                ))
            }
        }
    }
    if done < need {
        return Err(super::shorter_than_loaded(need - done, lo + done as u64));
    }
    Ok(())
}

/// A slot's buffer, the file opened by [`open`] that fills it, and where the loaded unit's parts
/// sit in the buffer.
pub(super) struct DirectSlot {
    file: Arc<File>,
    /// Page-aligned, as `O_DIRECT` needs.
    buf: HugeBuf,
    starts: Vec<usize>,
}

impl DirectSlot {
    /// A slot of `len` bytes (the largest [`buffer_len`] of the units it will hold) reading `file`
    /// (opened by [`open`]), zeroed now so that resident memory reaches its steady state at load.
    pub fn new(file: Arc<File>, len: usize) -> DirectSlot {
        DirectSlot {
            file,
            buf: HugeBuf::zeroed(len),
            starts: Vec::new(),
        }
    }

    /// Reads `unit` into the buffer.
    pub fn load(&mut self, unit: &UnitLayout) -> Result<()> {
        self.starts.clear();
        let file = &*self.file;
        let (runs, starts) = runs(unit);
        let mut rest = &mut self.buf[..];
        for (lo, len) in runs {
            let (buf, tail) = rest.split_at_mut(len);
            rest = tail;
            // The part of the run the unit needs: the file may end inside the last block.
            let need = unit
                .parts
                .iter()
                .filter(|p| p.0 >= lo && p.0 < lo + len as u64)
                .map(|p| (p.0 + p.1 as u64 - lo) as usize)
                .max()
                .unwrap_or(0);
            let reads = (len / MIN_READ).clamp(1, READS);
            let chunk = len.div_ceil(reads).next_multiple_of(ALIGN);
            // The pieces in a queue that this thread and up to READS - 1 others take from (a
            // thread the system will not start leaves its share to the others).
            let mut pieces: Vec<_> = buf
                .chunks_mut(chunk)
                .enumerate()
                .map(|(i, c)| {
                    let at = i * chunk;
                    (c, lo + at as u64, need.saturating_sub(at).min(chunk))
                })
                .collect();
            pieces.reverse();
            let helpers = pieces.len() - 1;
            let queue = parking_lot::Mutex::new(pieces);
            let work = || -> Result<()> {
                while let Some((c, off, need)) = queue.lock().pop() {
                    read_span(file, c, off, need)?;
                }
                Ok(())
            };
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..helpers)
                    .filter_map(|_| {
                        std::thread::Builder::new()
                            .name("chord-read".into())
                            .spawn_scoped(s, work)
                            .ok()
                    })
                    .collect();
                let mut r = work();
                for h in handles {
                    let done = h.join().unwrap_or_else(|_| {
                        Err(Error::new(
                            ErrorCode::Io,
                            "a weight-reading thread panicked",
                        ))
                    });
                    r = r.and(done);
                }
                r
            })?;
        }
        self.starts = starts;
        Ok(())
    }

    /// The `len` bytes of part `i` of the loaded unit.
    pub fn part(&self, i: usize, len: usize) -> &[u8] {
        let at = self.starts[i];
        &self.buf[at..at + len]
    }

    /// Bytes of the buffer.
    pub fn len(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_near_parts_and_place_parts_in_the_buffer() {
        let unit = UnitLayout {
            parts: vec![(5000, 100), (100, 50), (200_000, 10), (5200, 4000)],
        };
        let (runs, starts) = runs(&unit);
        // 100..150 and 5000..9200 merge (gap under 64 KiB): blocks 0..12288; 200000 stands alone.
        assert_eq!(runs, vec![(0, 12288), (196_608, 4096)]);
        assert_eq!(starts, vec![5000, 100, 12288 + 200_000 - 196_608, 5200]);
        assert_eq!(buffer_len(&unit), 12288 + 4096);
    }

    /// A unit large enough to be read in several pieces at once comes back whole; cut inside its
    /// last piece, its read is the "shorter" I/O error, not a hang or a panic.
    #[test]
    fn a_unit_read_in_pieces_is_whole_and_a_cut_one_fails() {
        use std::io::Write;
        let path = std::env::temp_dir().join(format!("chord-direct-{}", std::process::id()));
        let len = 3 * MIN_READ + 12345;
        let byte = |i: usize| (i * 7 % 251) as u8;
        let mut f = File::create(&path).unwrap();
        f.write_all(&[0xEE; 1000]).unwrap();
        f.write_all(&(0..len).map(byte).collect::<Vec<_>>())
            .unwrap();
        drop(f);
        let unit = UnitLayout {
            parts: vec![(1000, len)],
        };
        let file = open(&File::open(&path).unwrap()).expect("O_DIRECT on the temp directory");
        let mut slot = DirectSlot::new(Arc::new(file), buffer_len(&unit));
        slot.load(&unit).unwrap();
        let got = slot.part(0, len);
        let ok = got.iter().enumerate().all(|(i, &b)| b == byte(i));
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1000 + len as u64 - 5000)
            .unwrap();
        let e = slot.load(&unit).unwrap_err();
        let _ = std::fs::remove_file(&path);
        assert!(ok, "the bytes read in pieces differ from the file's");
        assert_eq!(e.code(), ErrorCode::Io);
        assert!(e.message().contains("shorter"), "{e}");
    }
}

//! Spans: the streamed units a slot loads, holds and evicts together.
//!
//! Every load of a slot has a fixed cost besides its bytes: system calls, a wake-up of the prefetch
//! thread, and for a mapped slot the unmap of the previous unit, whose TLB shootdown interrupts the
//! other computing core (Zen 4 VM, SmolLM2 at 15% of its weights: 37 us per load on the prefetch
//! thread, half of it in `munmap`, most of that waiting on the other core's acknowledgement). The
//! plan sizes every slot for the largest streamed unit (for a mapped slot, the whole 2 MiB blocks
//! around it), so a slot often has room for two or more of the smaller units that follow one
//! another in the access order and in the file; those form one span and cost one load.

use super::{Loader, UnitLayout};
use std::ops::Range;

/// Consecutive streamed units loaded as one.
#[derive(Debug, Clone)]
pub(super) struct Span {
    /// The units, in access order.
    pub units: Range<usize>,
    /// Their parts, in order: what a slot loads.
    pub layout: UnitLayout,
    /// Start of each part inside a read slot's buffer, and that buffer's length.
    pub starts: Vec<usize>,
    pub buffer_len: usize,
}

/// What `layout` costs a slot of `loader` with `room` bytes, when it may share one: for a mapped
/// slot only a layout it maps in whole 2 MiB blocks (a wider span mapped exactly would lose the
/// one-entry mappings that make a mapped load cheap).
fn cost(layout: &UnitLayout, loader: Loader, room: usize) -> Option<usize> {
    match loader {
        Loader::Map => Some(super::map::whole_blocks_len(layout)).filter(|&w| w > 0 && w <= room),
        Loader::Read => Some(layout.starts().1),
        Loader::Direct => Some(super::direct::buffer_len(layout)),
    }
}

/// Groups the units not `pinned` into spans for slots of `room` bytes held by `loader`: a span
/// grows by the next unit while that unit is also streamed, lies after it in the file, and the
/// whole still fits the room ([`cost`]). A unit that shares with none is a span of its own.
pub(super) fn spans(
    units: &[UnitLayout],
    pinned: &[bool],
    loader: Loader,
    room: usize,
) -> Vec<Span> {
    let mut spans: Vec<(Range<usize>, UnitLayout)> = Vec::new();
    for u in (0..units.len()).filter(|&u| !pinned[u]) {
        if let Some((range, layout)) = spans.last_mut() {
            let after = units[u].bounds().0 >= layout.bounds().1;
            if range.end == u && after {
                let mut joined = layout.clone();
                joined.parts.extend_from_slice(&units[u].parts);
                if cost(&joined, loader, room).is_some_and(|c| c <= room) {
                    range.end = u + 1;
                    *layout = joined;
                    continue;
                }
            }
        }
        spans.push((u..u + 1, units[u].clone()));
    }
    spans
        .into_iter()
        .map(|(units, layout)| {
            let (starts, buffer_len) = layout.starts();
            Span {
                units,
                layout,
                starts,
                buffer_len,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(off: u64, len: usize) -> UnitLayout {
        UnitLayout {
            parts: vec![(off, len), (off + len as u64 + 64, len)],
        }
    }

    #[test]
    fn small_units_share_the_room_of_the_largest() {
        // Read slots sized for the 5,000-byte unit take two of the 2,000-byte ones each.
        let units = [
            unit(0, 1000),
            unit(4096, 1000),
            unit(8192, 1000),
            unit(12288, 2500),
            unit(20480, 1000),
        ];
        let room = units[3].starts().1;
        let spans = spans(&units, &[false; 5], Loader::Read, room);
        let ranges: Vec<_> = spans.iter().map(|s| s.units.clone()).collect();
        assert_eq!(ranges, [0..2, 2..3, 3..4, 4..5]);
        assert!(spans.iter().all(|s| s.buffer_len <= room));
        assert_eq!(spans[0].layout.parts.len(), 4);
    }

    #[test]
    fn pinned_units_and_file_order_break_spans() {
        let units = [
            unit(0, 100),
            unit(4096, 100),
            unit(8192, 100),
            unit(12288, 100),
        ];
        // Unit 1 pinned: 0 and 2 are not consecutive.
        let s = spans(&units, &[false, true, false, false], Loader::Read, 1 << 20);
        let ranges: Vec<_> = s.iter().map(|s| s.units.clone()).collect();
        assert_eq!(ranges, [0..1, 2..4]);
        // A unit that lies before its predecessor in the file starts a span.
        let back = [unit(8192, 100), unit(0, 100)];
        assert_eq!(spans(&back, &[false; 2], Loader::Read, 1 << 20).len(), 2);
    }

    #[test]
    fn mapped_slots_join_only_units_they_map_in_whole_blocks() {
        const MIB: u64 = 1 << 20;
        // Two 1.1 MiB units inside the blocks 0..4 MiB of a 6 MiB room: one span; units under
        // 2 MiB alone are never widened, but together they are.
        let units = [unit(MIB / 2, 550_000), unit(MIB * 2, 550_000)];
        let s = spans(&units, &[false; 2], Loader::Map, 6 * MIB as usize);
        assert_eq!(s.len(), 1);
        // A room of 2 MiB has no space for the 4 MiB of blocks: two spans.
        assert_eq!(
            spans(&units, &[false; 2], Loader::Map, 2 * MIB as usize).len(),
            2
        );
    }
}

//! The layer pager: owns where every unit of weight bytes (a transformer layer, the output head)
//! lives when the model runs under a memory budget.
//!
//! Units chosen by [`plan`] are read once into one owned buffer and stay resident ("pinned"; for a
//! GPU model its device keeps them instead and the pager reads each once for the upload); the
//! others are streamed through a few slots, consecutive ones that fit a slot together as one span
//! ([`span`]: one load instead of several). How a slot holds its unit is the [`Loader`]'s choice:
//! on Linux a map of the unit's span of the file, widened to whole 2 MiB blocks where the plan
//! counted them, populated by the kernel ([`map`]), or an owned buffer filled by reads past the
//! page cache ([`direct`], for a file that cannot stay cached); elsewhere, or where those are
//! refused, an owned buffer filled with positioned reads (`pread`). Owned buffers (pinned units
//! too) are [`HugeBuf`]s, on 2 MiB pages where the system gives them. Either way the process's
//! resident memory is the pinned buffers plus at most the slots' bytes (a slot's map is dropped
//! before it takes another unit; what a unit costs a slot is [`UnitLayout::slot_bytes`]), so the
//! budget holds in VmRSS/VmHWM, not only in chord's own accounting.
//!
//! A background thread prefetches (for mapped slots on the CPU, the model's worker team instead,
//! between jobs: [`Pager::prefetch_by_team`]): whenever a change of the slot table gives it work
//! (it is woken for nothing else: on two cores that both compute, every wake-up takes one from a
//! computing thread), it loads the next span in the cyclic access order into a free slot,
//! evicting only what Belady's rule allows (the span whose next use is furthest, never one in use
//! or with units still to come, and never one prefetched and not yet used). The forward pass only
//! ever sees a [`UnitGuard`] over a fully loaded unit, so its output is bit-identical to the fully
//! resident run.
//!
//! Concurrency: one parking_lot mutex guards the slot table; each slot's bytes sit behind their own
//! parking_lot `RwLock`, written only by the thread that loads it while no guard reads it. Errors of
//! the prefetch thread (I/O, a file truncated after load) are stored on the slot; the `acquire` that
//! wants the unit reads it again itself and returns the error of that read. A mapped unit whose file
//! shrank under it reads zeros instead of raising SIGBUS ([`sigbus`]); dropping its guard counts a
//! fault ([`Pager::faults`]), by which the forward pass fails the call, and empties the slot.
//! Dropping the [`Pager`] stops and joins the thread.

#[cfg(any(target_os = "linux", target_os = "android"))]
mod direct;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod folios;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod map;
mod plan;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod sigbus;
mod span;

/// Mapped slots exist on Linux only: elsewhere there are none to reserve and units are read.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod map {
    use super::UnitLayout;
    use crate::error::Result;
    use std::fs::File;

    /// A mapped slot (none on this system).
    pub(super) enum MapSlot {}

    pub(super) fn whole_blocks_len(_: &UnitLayout) -> usize {
        0
    }

    pub(super) fn slots(_: usize, _: usize, _: &File) -> Option<Vec<MapSlot>> {
        None
    }

    impl MapSlot {
        pub fn load(&mut self, _: &File, _: &UnitLayout) -> Result<()> {
            match *self {}
        }
        pub fn part(&self, _: u64, _: usize) -> &[u8] {
            match *self {}
        }
        pub fn poisoned(&self) -> bool {
            match *self {}
        }
    }
}

/// Reads past the page cache exist on Linux only: elsewhere units are read through it.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod direct {
    use super::UnitLayout;
    use crate::error::Result;
    use std::fs::File;

    /// A slot read past the page cache (none on this system).
    pub(super) enum DirectSlot {}

    pub(super) fn open(_: &File) -> Option<File> {
        None
    }

    pub(super) fn buffer_len(_: &UnitLayout) -> usize {
        0
    }

    impl DirectSlot {
        pub fn new(_: std::sync::Arc<File>, _: usize) -> DirectSlot {
            unreachable!("no direct slots on this system: open gives no file")
        }
        pub fn load(&mut self, _: &UnitLayout) -> Result<()> {
            match *self {}
        }
        pub fn part(&self, _: usize, _: usize) -> &[u8] {
            match *self {}
        }
        pub fn len(&self) -> usize {
            match *self {}
        }
    }
}

use direct::DirectSlot;
use map::MapSlot;
use span::Span;

pub use plan::{plan, Pins, Plan};

use crate::error::{Error, ErrorCode, Result};
use crate::huge::HugeBuf;
use parking_lot::{ArcRwLockReadGuard, Condvar, Mutex, MutexGuard, RawRwLock, RwLock};
use std::fs::File;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// Alignment of each tensor inside a loaded unit's buffer.
const PART_ALIGN: usize = 64;

/// One unit's bytes: the file ranges `(offset, len)` of its tensors, in order.
#[derive(Debug, Clone, Default)]
pub struct UnitLayout {
    /// `(file offset, byte length)` of each part.
    pub parts: Vec<(u64, usize)>,
}

impl UnitLayout {
    /// What the unit costs against the budget pinned, or in a slot that reads it (a buffer or a
    /// direct slot) or maps it exactly: the larger of the buffer it is read into (parts aligned to
    /// 64 bytes) and a direct slot's buffer (the 4 KiB blocks around its parts, [`direct`]).
    pub fn loaded_bytes(&self) -> usize {
        self.starts().1.max(direct::buffer_len(self))
    }

    /// What the unit costs in a slot of `loader`: [`UnitLayout::loaded_bytes`], or for a mapped
    /// slot the whole 2 MiB blocks around a unit of 2 MiB or more, which it maps when the plan
    /// gives it room for them ([`map`]).
    pub fn slot_bytes(&self, loader: Loader) -> usize {
        match loader {
            Loader::Map => self.loaded_bytes().max(map::whole_blocks_len(self)),
            Loader::Read | Loader::Direct => self.loaded_bytes(),
        }
    }

    /// First and last byte (exclusive) of the unit in the file.
    fn bounds(&self) -> (u64, u64) {
        let lo = self.parts.iter().map(|p| p.0).min().unwrap_or(0);
        let hi = self.parts.iter().map(|p| p.0 + p.1 as u64).max();
        (lo, hi.unwrap_or(lo))
    }

    /// Start of each part inside the loaded buffer, and the buffer's total length.
    fn starts(&self) -> (Vec<usize>, usize) {
        let mut at = 0;
        let starts = self
            .parts
            .iter()
            .map(|&(_, len)| {
                let s = at;
                at = (at + len).next_multiple_of(PART_ALIGN);
                s
            })
            .collect();
        (starts, at)
    }
}

/// Counters of the pager's work, for the host's display and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PagerStats {
    /// Units resident for the model's lifetime.
    pub units_pinned: usize,
    /// Units streamed through slots.
    pub units_streamed: usize,
    /// Bytes held: pinned units (where the pager holds them, see [`Plan::hold_pinned`]) plus slot
    /// buffers.
    pub bytes_resident: u64,
    /// Bytes of the pinned units' buffers the pager holds (`bytes_resident` less the slots).
    pub bytes_pinned: u64,
    /// Loads done by the computing thread because the unit was not ready (stalls).
    pub sync_loads: u64,
    /// Acquisitions served by a unit the prefetch thread had loaded.
    pub prefetch_hits: u64,
    /// Slots reassigned from one loaded unit to another.
    pub evictions: u64,
    /// Bytes read from the file, pinned units included.
    pub bytes_read: u64,
    /// Nanoseconds the computing threads waited for unit bytes.
    pub stall_ns: u64,
    /// How many times each unit was read from the file.
    pub reads_per_unit: Vec<u64>,
    /// Guards dropped over a mapped unit that faulted (its file shrank under it, so it read
    /// zeros): the forward pass fails a call during which this grew.
    pub faults: u64,
    /// How streamed units are held (`None` when every unit is pinned).
    pub loader: Option<Loader>,
}

/// How a slot holds its streamed unit (the model options `use_mmap` and `stream_loader` choose,
/// [`crate::model::ModelOptions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loader {
    /// An owned buffer filled with `pread`.
    Read,
    /// A populated map of the unit's span of the file (Linux; elsewhere slots are read).
    Map,
    /// An owned buffer filled by reads past the page cache, for a file that cannot stay cached
    /// (Linux `O_DIRECT`; where the system or file system refuses it, slots are read).
    Direct,
}

/// A slot's memory.
enum SlotMem {
    Buf(HugeBuf),
    Map(MapSlot),
    Direct(DirectSlot),
}

impl SlotMem {
    /// Whether the unit in the slot read zeros for bytes its file no longer has.
    fn poisoned(&self) -> bool {
        match self {
            SlotMem::Buf(_) | SlotMem::Direct(_) => false,
            SlotMem::Map(m) => m.poisoned(),
        }
    }
}

#[derive(Debug, Clone)]
enum Status {
    Empty,
    Loading,
    Ready,
    Failed(Error),
}

#[derive(Debug, Clone)]
struct Slot {
    /// The span it holds.
    span: Option<usize>,
    status: Status,
    users: usize,
    /// Loaded by the prefetch thread and not used since.
    prefetched: bool,
}

struct State {
    slots: Vec<Slot>,
    /// span -> slot holding it (loading, ready or failed).
    slot_of: Vec<Option<usize>>,
    /// The streamed unit most recently acquired: the position in the cyclic order.
    cursor: Option<usize>,
    shutdown: bool,
    /// The model's worker team prefetches ([`Pager::prefetch_by_team`]): the thread has stopped.
    by_team: bool,
    stats: PagerStats,
}

struct Shared {
    file: File,
    units: Vec<UnitLayout>,
    /// Start of each part of each unit inside a pinned unit's buffer.
    starts: Vec<Vec<usize>>,
    /// The streamed units, grouped as slots load them: the slot table below works on spans.
    spans: Vec<Span>,
    /// Per unit: its span and the index of its first part in the span's layout (`None` pinned).
    span_of: Vec<Option<(usize, usize)>>,
    /// The end of the streamed units' last byte in the file.
    file_end: u64,
    plan: Plan,
    /// Where each pinned unit the pager holds starts in `arena`.
    pinned: Vec<Option<usize>>,
    /// The pinned units, one after another in one buffer, nearly all of it on 2 MiB pages, where a
    /// buffer each left each unit's tail past its last 2 MiB boundary on 4 KiB pages, and the TLB
    /// misses cost (SmolLM2 Q4_1 with 37 of 44 units pinned, one thread, Zen 4 VM: 147 tok/s with
    /// a buffer each, 159 in one, as resident).
    arena: HugeBuf,
    slot_mem: Vec<Arc<RwLock<SlotMem>>>,
    loader: Loader,
    state: Mutex<State>,
    /// Wakes callers of [`Pager::acquire`] waiting for a load or a free slot.
    cv: Condvar,
    /// Wakes the prefetch thread, only when it has a unit to load ([`Shared::nudge`]): on two
    /// cores that both compute, every wake-up takes one from a computing thread.
    wake: Condvar,
}

/// The pager of one model. See the module documentation.
pub struct Pager {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Read access to one loaded unit; the unit cannot be evicted while the guard lives.
pub struct UnitGuard {
    bytes: Option<Bytes>,
    unit: usize,
    shared: Arc<Shared>,
    slot: Option<usize>,
}

enum Bytes {
    /// A pinned unit's start in the arena.
    Pinned(usize),
    /// A pinned unit read for this guard (the pager does not hold it).
    Read(HugeBuf),
    Slot(ArcRwLockReadGuard<RawRwLock, SlotMem>),
}

impl UnitGuard {
    /// The bytes of part `i` of the unit (a tensor, in the order of its [`UnitLayout`]).
    pub fn part(&self, i: usize) -> &[u8] {
        let sh = &self.shared;
        let (off, len) = sh.units[self.unit].parts[i];
        match self.bytes.as_ref().expect("present until drop") {
            Bytes::Pinned(at) => {
                let start = at + sh.starts[self.unit][i];
                &sh.arena[start..start + len]
            }
            Bytes::Read(b) => {
                let start = sh.starts[self.unit][i];
                &b[start..start + len]
            }
            Bytes::Slot(g) => {
                // The unit's parts sit in its span's layout from `first` on.
                let (span, first) = sh.span_of[self.unit].expect("a streamed unit");
                match &**g {
                    SlotMem::Buf(b) => {
                        let start = sh.spans[span].starts[first + i];
                        &b[start..start + len]
                    }
                    SlotMem::Map(m) => m.part(off, len),
                    SlotMem::Direct(d) => d.part(first + i, len),
                }
            }
        }
    }

    /// Number of parts.
    pub fn n_parts(&self) -> usize {
        self.shared.units[self.unit].parts.len()
    }
}

impl Drop for UnitGuard {
    fn drop(&mut self) {
        // Release the bytes before the slot counts as free, so a loader never waits on us.
        let poisoned = matches!(&self.bytes, Some(Bytes::Slot(g)) if g.poisoned());
        drop(self.bytes.take());
        if let Some(s) = self.slot {
            let mut st = self.shared.state.lock();
            st.slots[s].users -= 1;
            if poisoned {
                st.stats.faults += 1;
                // The last reader empties the slot: the next acquire maps the unit again and
                // reports what the file has become.
                let span = self.shared.span_of[self.unit].map(|(g, _)| g);
                if st.slots[s].users == 0 && st.slots[s].span == span {
                    st.slot_of[span.expect("a slot holds a span")] = None;
                    st.slots[s] = empty_slot();
                }
            }
            self.shared.nudge(&st);
            drop(st);
            self.shared.cv.notify_all();
        }
    }
}

impl Pager {
    /// Reads the pinned units of `plan` from `file`, where it holds them (calling `progress` with the fraction done;
    /// returning false cancels with `Cancelled`), allocates the slots and starts the prefetch thread.
    /// Slots are held as `loader` says where the system allows ([`Pager::loader`] tells), else
    /// read. `prepare(unit, part, bytes)` may rewrite each part of a pinned unit once, in place,
    /// after it is read (the owner packs them for its kernels); streamed units stay as the file has
    /// them.
    pub fn new(
        file: File,
        units: Vec<UnitLayout>,
        plan: Plan,
        loader: Loader,
        prepare: &dyn Fn(usize, usize, &mut [u8]),
        progress: &mut dyn FnMut(f32) -> bool,
    ) -> Result<Pager> {
        let n = units.len();
        let mut starts = Vec::with_capacity(n);
        let mut sizes = Vec::with_capacity(n);
        for u in &units {
            let (s, len) = u.starts();
            starts.push(s);
            sizes.push(len);
        }
        let mut stats = PagerStats {
            units_pinned: plan.n_pinned(),
            units_streamed: n - plan.n_pinned(),
            reads_per_unit: vec![0; n],
            ..Default::default()
        };
        let pinned_total: usize = (0..n)
            .filter(|&u| plan.pinned[u] && plan.hold_pinned)
            .map(|u| sizes[u])
            .sum();
        let mut pinned = vec![None; n];
        let mut arena = HugeBuf::zeroed(pinned_total);
        let mut done = 0usize;
        for u in 0..n {
            if !plan.pinned[u] || !plan.hold_pinned {
                continue;
            }
            let buf = &mut arena[done..done + sizes[u]];
            read_unit(&file, &units[u], &starts[u], buf)?;
            for (i, (&start, &(_, len))) in starts[u].iter().zip(&units[u].parts).enumerate() {
                prepare(u, i, &mut buf[start..start + len]);
            }
            stats.reads_per_unit[u] += 1;
            stats.bytes_read += units[u].parts.iter().map(|p| p.1 as u64).sum::<u64>();
            pinned[u] = Some(done);
            done += sizes[u];
            if !progress(done as f32 / pinned_total.max(1) as f32) {
                crate::bail!(Cancelled, "model load cancelled by the progress callback");
            }
        }
        let n_slots = if n == stats.units_pinned {
            0
        } else {
            plan.n_slots
        };
        // Mapped slots when every slot gets a SIGBUS watch entry, direct ones when the file opens
        // past the page cache, else buffers; buffers are touched now so that resident memory
        // reaches its steady state at load.
        let maps: Option<Vec<MapSlot>> = match loader {
            Loader::Map => map::slots(n_slots, plan.slot_bytes, &file),
            Loader::Read | Loader::Direct => None,
        };
        let direct = match loader {
            Loader::Direct => direct::open(&file).map(Arc::new),
            _ => None,
        };
        let loader = match (maps.is_some(), direct.is_some()) {
            (true, _) => Loader::Map,
            (false, true) => Loader::Direct,
            (false, false) => Loader::Read,
        };
        // The streamed units as slots of the loader will hold them, in the room the plan gave each
        // slot, and the largest buffer a span needs (a read or direct slot's).
        let spans = span::spans(&units, &plan.pinned, loader, plan.slot_bytes);
        let mut span_of = vec![None; n];
        for (g, sp) in spans.iter().enumerate() {
            let mut first = 0;
            for u in sp.units.clone() {
                span_of[u] = Some((g, first));
                first += units[u].parts.len();
            }
        }
        let buf_len = |f: fn(&Span) -> usize| spans.iter().map(f).max().unwrap_or(0);
        let slot_mem: Vec<SlotMem> = match (maps, direct) {
            (Some(m), _) => m.into_iter().map(SlotMem::Map).collect(),
            (None, Some(direct)) => {
                let len = buf_len(|sp| direct::buffer_len(&sp.layout));
                (0..n_slots)
                    .map(|_| SlotMem::Direct(DirectSlot::new(direct.clone(), len)))
                    .collect()
            }
            (None, None) => {
                let len = buf_len(|sp| sp.buffer_len);
                (0..n_slots)
                    .map(|_| {
                        let mut buf = HugeBuf::zeroed(len);
                        buf.fill(0);
                        SlotMem::Buf(buf)
                    })
                    .collect()
            }
        };
        let slot_total: usize = slot_mem
            .iter()
            .map(|m| match m {
                SlotMem::Direct(d) => d.len(),
                // The most a map takes: widened to whole blocks only within the plan's slot bytes.
                SlotMem::Map(_) => plan.slot_bytes.max(buf_len(|sp| sp.buffer_len)),
                SlotMem::Buf(b) => b.len(),
            })
            .sum();
        let n_spans = spans.len();
        let file_end = spans
            .iter()
            .map(|sp| sp.layout.bounds().1)
            .max()
            .unwrap_or(0);
        let slot_mem = slot_mem
            .into_iter()
            .map(|m| Arc::new(RwLock::new(m)))
            .collect();
        stats.bytes_resident = (pinned_total + slot_total) as u64;
        stats.loader = (n_slots > 0).then_some(loader);
        stats.bytes_pinned = pinned_total as u64;
        let shared = Arc::new(Shared {
            file,
            units,
            starts,
            spans,
            span_of,
            file_end,
            plan,
            pinned,
            arena,
            slot_mem,
            loader,
            state: Mutex::new(State {
                slots: vec![
                    Slot {
                        span: None,
                        status: Status::Empty,
                        users: 0,
                        prefetched: false,
                    };
                    n_slots
                ],
                slot_of: vec![None; n_spans],
                cursor: None,
                shutdown: false,
                by_team: false,
                stats,
            }),
            cv: Condvar::new(),
            wake: Condvar::new(),
        });
        let thread = if n_slots > 1 {
            let s = shared.clone();
            let handle = std::thread::Builder::new()
                .name("chord-prefetch".into())
                .spawn(move || s.prefetch_loop())
                .map_err(|e| {
                    Error::new(ErrorCode::Io, format!("starting the prefetch thread: {e}"))
                })?;
            Some(handle)
        } else {
            None
        };
        Ok(Pager { shared, thread })
    }

    /// The plan this pager follows.
    pub fn plan(&self) -> &Plan {
        &self.shared.plan
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> PagerStats {
        self.shared.state.lock().stats.clone()
    }

    /// How streamed units are held.
    pub fn loader(&self) -> Loader {
        self.shared.loader
    }

    /// Hands prefetching to the model's worker team when slots are maps: returns one prefetch
    /// step (loads the next span if Belady's rule allows; false when there was nothing to do or
    /// the slot table was busy) for its helpers to run between jobs, and stops the pager's own
    /// thread. A mapped load is kernel work (about 35 us for a SmolLM2 span on Zen 4), and a
    /// thread of its own takes a computing thread's core in the middle of a task, which the other
    /// then waits for; a helper between jobs holds no task, and the next job's tasks go to the
    /// others meanwhile. `None` for other loaders, whose loads wait on storage, and without slots.
    pub fn prefetch_by_team(&self) -> Option<Arc<dyn Fn() -> bool + Send + Sync>> {
        let sh = &self.shared;
        if sh.loader != Loader::Map || self.thread.is_none() {
            return None;
        }
        sh.state.lock().by_team = true;
        sh.wake.notify_all();
        let sh = sh.clone();
        Some(Arc::new(move || sh.prefetch_step()))
    }

    /// [`PagerStats::faults`], without copying the other counters; counts one more when the file
    /// is now shorter than the mapped units' bytes: a file cut inside the last page of a mapped
    /// unit reads zeros past its new end without a fault for [`sigbus`] to catch (the forward pass
    /// asks before and after each call, so a call fails while the file is short).
    pub fn faults(&self) -> u64 {
        let sh = &self.shared;
        let short =
            sh.loader == Loader::Map && sh.file.metadata().map_or(true, |m| m.len() < sh.file_end);
        let mut st = sh.state.lock();
        st.stats.faults += short as u64;
        st.stats.faults
    }

    /// Reads `buf.len()` bytes at `offset` of the file directly (for rows of a matrix that is not
    /// worth keeping resident, such as the token embeddings).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        read_exact_at(&self.shared.file, buf, offset)
    }

    /// The bytes of unit `u`, loaded and protected until the guard drops. Waits for a prefetch in
    /// flight, or loads on this thread when the unit is not coming (a stall).
    /// A unit pinned but not held here ([`Plan::hold_pinned`] false) is read on this thread into
    /// a buffer of its own, which the guard frees.
    pub fn acquire(&self, u: usize) -> Result<UnitGuard> {
        let sh = &self.shared;
        if sh.plan.pinned[u] {
            let bytes = match sh.pinned[u] {
                Some(at) => Bytes::Pinned(at),
                None => Bytes::Read(sh.read_pinned(u)?),
            };
            return Ok(UnitGuard {
                bytes: Some(bytes),
                unit: u,
                shared: sh.clone(),
                slot: None,
            });
        }
        let (g, _) = sh.span_of[u].expect("a unit not pinned is in a span");
        let mut st = sh.state.lock();
        let mut stalled: Option<Instant> = None;
        let slot = loop {
            if let Some(s) = st.slot_of[g] {
                match &st.slots[s].status {
                    Status::Ready => {
                        let sl = &mut st.slots[s];
                        sl.users += 1;
                        if std::mem::take(&mut sl.prefetched) {
                            st.stats.prefetch_hits += 1;
                        }
                        break s;
                    }
                    Status::Loading => {
                        stalled.get_or_insert_with(Instant::now);
                        sh.cv.wait(&mut st);
                        continue;
                    }
                    Status::Failed(e) => {
                        // A prefetch's error is only a hint (the file may be whole again): read
                        // again on this thread, and fail with what that read says.
                        let e = (!st.slots[s].prefetched).then(|| e.clone());
                        st.slots[s] = empty_slot();
                        st.slot_of[g] = None;
                        match e {
                            Some(e) => {
                                sh.nudge(&st);
                                return Err(e);
                            }
                            None => continue,
                        }
                    }
                    Status::Empty => unreachable!("an empty slot is mapped to no unit"),
                }
            }
            stalled.get_or_insert_with(Instant::now);
            match sh.victim(&st, g, true) {
                Some(s) => {
                    st.stats.sync_loads += 1;
                    sh.load_into(&mut st, s, g, false);
                }
                None => sh.cv.wait(&mut st),
            }
        };
        if let Some(t) = stalled {
            st.stats.stall_ns += t.elapsed().as_nanos() as u64;
        }
        st.cursor = Some(u);
        sh.nudge(&st);
        drop(st);
        Ok(UnitGuard {
            bytes: Some(Bytes::Slot(sh.slot_mem[slot].read_arc())),
            unit: u,
            shared: sh.clone(),
            slot: Some(slot),
        })
    }
}

impl Drop for Pager {
    fn drop(&mut self) {
        self.shared.state.lock().shutdown = true;
        self.shared.cv.notify_all();
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn empty_slot() -> Slot {
    Slot {
        span: None,
        status: Status::Empty,
        users: 0,
        prefetched: false,
    }
}

impl Shared {
    /// Reads pinned unit `u`, which this pager does not hold, into a buffer of its own (counted).
    fn read_pinned(&self, u: usize) -> Result<HugeBuf> {
        let mut buf = HugeBuf::zeroed(self.units[u].starts().1);
        read_unit(&self.file, &self.units[u], &self.starts[u], &mut buf)?;
        let mut st = self.state.lock();
        st.stats.reads_per_unit[u] += 1;
        st.stats.bytes_read += self.units[u].parts.iter().map(|p| p.1 as u64).sum::<u64>();
        Ok(buf)
    }

    /// The span of the cursor, and whether the cursor is its last unit (the span is done with
    /// until the next token).
    fn cursor_span(&self, st: &State) -> (usize, bool) {
        match st.cursor.and_then(|u| self.span_of[u].map(|(g, _)| (u, g))) {
            Some((u, g)) => (g, u + 1 == self.spans[g].units.end),
            None => (self.spans.len() - 1, true),
        }
    }

    /// Position of span `g` after the cursor in the cyclic order: 1 for the next span, `n` for
    /// the cursor's own span once its last unit is acquired (used again only after every other
    /// span), 0 while units of it are still to come.
    fn distance(&self, st: &State, g: usize) -> usize {
        let n = self.spans.len();
        let (c, done) = self.cursor_span(st);
        if g == c && !done {
            return 0;
        }
        (g + n - c - 1) % n + 1
    }

    /// A slot that may take span `g`: free (no users, not loading); for a demand load any free
    /// slot, preferring empty ones, then the one used furthest in the future; for a prefetch only
    /// a slot whose span is needed after `g` and was not prefetched for later use.
    fn victim(&self, st: &State, g: usize, demand: bool) -> Option<usize> {
        let need = self.distance(st, g);
        let mut best: Option<(usize, usize)> = None;
        for (s, sl) in st.slots.iter().enumerate() {
            if sl.users > 0 || matches!(sl.status, Status::Loading) {
                continue;
            }
            let score = match sl.span {
                None => usize::MAX,
                Some(v) => {
                    let d = self.distance(st, v);
                    if !demand && (sl.prefetched || d <= need) {
                        continue;
                    }
                    // A demand load takes a prefetched slot only when nothing else is free.
                    if sl.prefetched {
                        d / 2
                    } else {
                        d
                    }
                }
            };
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((s, score));
            }
        }
        best.map(|(s, _)| s)
    }

    /// Assigns slot `s` to span `g` and reads it with the state unlocked; leaves the slot Ready or
    /// Failed and wakes every waiter.
    fn load_into(&self, st: &mut MutexGuard<'_, State>, s: usize, g: usize, prefetched: bool) {
        if let Some(old) = st.slots[s].span {
            st.slot_of[old] = None;
            if matches!(st.slots[s].status, Status::Ready) {
                st.stats.evictions += 1;
            }
        }
        st.slots[s] = Slot {
            span: Some(g),
            status: Status::Loading,
            users: 0,
            prefetched,
        };
        st.slot_of[g] = Some(s);
        let span = &self.spans[g];
        let result = MutexGuard::unlocked(st, || match &mut *self.slot_mem[s].write() {
            SlotMem::Buf(buf) => read_unit(&self.file, &span.layout, &span.starts, buf),
            SlotMem::Map(m) => m.load(&self.file, &span.layout),
            SlotMem::Direct(d) => d.load(&span.layout),
        });
        st.slots[s].status = match result {
            Ok(()) => {
                for u in span.units.clone() {
                    st.stats.reads_per_unit[u] += 1;
                }
                st.stats.bytes_read += span.layout.parts.iter().map(|p| p.1 as u64).sum::<u64>();
                Status::Ready
            }
            Err(e) => Status::Failed(e),
        };
        self.cv.notify_all();
        self.nudge(st);
    }

    /// The span the prefetch thread loads next and the slot it takes: the first span after the
    /// cursor that no slot holds, if Belady's rule gives it a slot.
    fn prefetch_target(&self, st: &State) -> Option<(usize, usize)> {
        let n = self.spans.len();
        let (c, _) = self.cursor_span(st);
        let next = (1..n)
            .map(|k| (c + k) % n)
            .find(|&g| st.slot_of[g].is_none())?;
        self.victim(st, next, false).map(|s| (s, next))
    }

    /// Wakes the prefetch thread if it has work (called after every change of the slot table).
    fn nudge(&self, st: &State) {
        if self.prefetch_target(st).is_some() {
            self.wake.notify_one();
        }
    }

    /// One prefetch from a thread with other work: loads the next span if there is one to load
    /// and the slot table is free now.
    fn prefetch_step(&self) -> bool {
        let Some(mut st) = self.state.try_lock() else {
            return false;
        };
        match self.prefetch_target(&st) {
            Some((s, g)) if !st.shutdown => {
                self.load_into(&mut st, s, g, true);
                true
            }
            _ => false,
        }
    }

    /// The prefetch thread: loads the next span after the cursor whenever Belady's rule
    /// gives it a slot; sleeps otherwise.
    fn prefetch_loop(&self) {
        let mut st = self.state.lock();
        while !st.shutdown && !st.by_team {
            match self.prefetch_target(&st) {
                Some((s, v)) => self.load_into(&mut st, s, v, true),
                None => self.wake.wait(&mut st),
            }
        }
    }
}

/// Reads every part of `unit` into `buf` at `starts`.
fn read_unit(file: &File, unit: &UnitLayout, starts: &[usize], buf: &mut [u8]) -> Result<()> {
    for (&(off, len), &at) in unit.parts.iter().zip(starts) {
        read_exact_at(file, &mut buf[at..at + len], off)?;
    }
    Ok(())
}

/// Positioned read of exactly `buf.len()` bytes; a short file is an I/O error naming the offset.
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> Result<()> {
    #[cfg(unix)]
    let r = std::os::unix::fs::FileExt::read_exact_at(file, buf, offset);
    #[cfg(windows)]
    let r = {
        let mut done = 0;
        let mut r = Ok(());
        while done < buf.len() {
            match std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buf[done..],
                offset + done as u64,
            ) {
                Ok(0) => {
                    r = Err(std::io::ErrorKind::UnexpectedEof.into());
                    break;
                }
                Ok(k) => done += k,
                Err(e) => {
                    r = Err(e);
                    break;
                }
            }
        }
        r
    };
    r.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            return shorter_than_loaded(buf.len(), offset);
        }
        Error::new(
            ErrorCode::Io,
            format!(
                "reading {} bytes of weights at offset {offset}: {e}",
                buf.len()
            ),
        )
    })
}

/// The error of weights the file no longer has.
fn shorter_than_loaded(len: usize, offset: u64) -> Error {
    Error::new(
        ErrorCode::Io,
        format!(
            "reading {len} bytes of weights at offset {offset}: the model file is shorter than \
             when it was loaded (truncated?)"
        ),
    )
}

#[cfg(test)]
mod tests;

//! The worker team of a model: threads that stay awake between the many small parallel loops of
//! decoding (a few hundred per token, each tens of microseconds long) instead of sleeping.
//!
//! rayon's idle workers go to sleep on a condition variable soon after a loop, and waking one
//! costs a system call and a trip through the scheduler, a few hundred times per token. llama.cpp's
//! thread pool keeps its threads polling between operations for the same reason; rayon has no
//! setting for it and no crate offers a scoped poll-then-park team, hence this module. A team's
//! helpers poll for [`SPIN`] after their last job, then park until the next. They poll with
//! `yield_now`, not a `pause` spin: in the VMs measured here a `pause` loop made decoding slower
//! than rayon (SmolLM2 Q4_1 tg64 about 95 tok/s against rayon's 105, while polling with yields gave
//! about 108), consistent with the hypervisor descheduling `pause`-spinning vCPUs.
//!
//! One job runs at a time: a second thread that calls [`Team::run`] while the team is busy (two
//! sessions decoding at once) runs its job alone on its own thread. A panic in a task is caught on
//! the thread that ran it and raised again on the caller's once every helper has left the job.

use parking_lot::{Condvar, Mutex};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a helper polls for the next job before it parks.
pub const SPIN: Duration = Duration::from_millis(2);

/// One parallel loop: tasks `0..n` of `f`.
struct Job<'a> {
    n: usize,
    f: &'a (dyn Fn(usize) + Sync),
    panicked: AtomicBool,
}

impl Job<'_> {
    /// Takes tasks until none is left; records a panic instead of unwinding.
    fn work(&self, next: &AtomicUsize) {
        loop {
            let i = next.fetch_add(1, Relaxed);
            if i >= self.n {
                return;
            }
            if catch_unwind(AssertUnwindSafe(|| (self.f)(i))).is_err() {
                self.panicked.store(true, Relaxed);
            }
        }
    }
}

/// State shared by the caller and the helpers.
struct Shared {
    /// Bumped for every job (and to stop).
    generation: AtomicU64,
    /// The current job, valid from the bump of `generation` until `active` is back to zero.
    job: AtomicPtr<Job<'static>>,
    /// The next task to take.
    next: AtomicUsize,
    /// Helpers inside a job (entered, not yet left).
    active: AtomicUsize,
    /// The generation of the last job its caller has finished: a helper that enters a job after
    /// that leaves it without reading it.
    closed: AtomicU64,
    /// Work a polling helper does between jobs ([`Team::set_idle_work`]).
    idle: Mutex<Option<IdleWork>>,
    has_idle: AtomicBool,
    /// Helpers parked (or about to park) on `wake`.
    parked: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    stop: AtomicBool,
    /// Held by the thread whose job is running.
    busy: Mutex<()>,
}

/// Work for a helper between jobs: returns whether it did some.
pub type IdleWork = Arc<dyn Fn() -> bool + Send + Sync>;

/// A team of `threads - 1` helper threads; the caller of [`Team::run`] is the last member.
pub struct Team {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
}

impl Team {
    /// Starts a team of `threads` (the caller plus `threads - 1` helpers named `chord-team-N`).
    pub fn new(threads: usize) -> std::io::Result<Team> {
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            next: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            closed: AtomicU64::new(0),
            idle: Mutex::new(None),
            has_idle: AtomicBool::new(false),
            parked: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            busy: Mutex::new(()),
        });
        let mut team = Team {
            shared,
            helpers: Vec::new(),
        };
        for i in 1..threads.max(1) {
            let s = Arc::clone(&team.shared);
            let h = std::thread::Builder::new()
                .name(format!("chord-team-{i}"))
                .spawn(move || helper(&s))?;
            team.helpers.push(h);
        }
        Ok(team)
    }

    /// Number of threads that run a job: the helpers and the caller.
    pub fn threads(&self) -> usize {
        self.helpers.len() + 1
    }

    /// Gives the helpers `work` to do while they poll between jobs (a paged model's prefetch):
    /// a helper busy with it joins the next job late, and the caller takes that job's tasks
    /// meanwhile instead of waiting, where a thread of its own would take a computing thread's
    /// core in the middle of a task. Returns false, doing nothing, for a team without helpers.
    pub fn set_idle_work(&self, work: IdleWork) -> bool {
        if self.helpers.is_empty() {
            return false;
        }
        *self.shared.idle.lock() = Some(work);
        self.shared.has_idle.store(true, SeqCst);
        true
    }

    /// Runs `f(0)..f(n)` on the team, the calling thread included, and returns when all are done.
    /// When another thread's job is running, runs them all on this thread. A panic in `f` is
    /// raised again here.
    pub fn run(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        let s = &*self.shared;
        let Some(_busy) = s
            .busy
            .try_lock()
            .filter(|_| !self.helpers.is_empty() && n > 1)
        else {
            (0..n).for_each(f);
            return;
        };
        let job = Job {
            n,
            f,
            panicked: AtomicBool::new(false),
        };
        s.next.store(0, Relaxed);
        // The pointer outlives its use: a helper reads it only inside the job (`active`), while
        // the job is not closed, and this function does not return before the job is closed and
        // no helper is inside.
        s.job
            .store(&job as *const Job as *mut Job<'static>, Relaxed);
        let g = s.generation.fetch_add(1, SeqCst) + 1;
        if s.parked.load(SeqCst) > 0 {
            let _g = s.lock.lock();
            s.wake.notify_all();
        }
        job.work(&s.next);
        // Helpers that have not entered (busy elsewhere, or slow to see the job) are not waited
        // for: the tasks are all taken.
        s.closed.store(g, SeqCst);
        while s.active.load(SeqCst) != 0 {
            std::thread::yield_now();
        }
        s.job.store(std::ptr::null_mut(), Relaxed);
        if job.panicked.load(Relaxed) {
            panic!("a task of a parallel loop panicked");
        }
    }
}

/// A helper's life: wait for a new generation (polling, then parked), work on its job, repeat.
fn helper(s: &Shared) {
    // Generation 0 is the team's start: a job may be published before this thread first runs.
    let mut seen = 0;
    let mut idle: Option<IdleWork> = None;
    loop {
        let mut start = Instant::now();
        let mut spins = 0u32;
        while s.generation.load(SeqCst) == seen {
            if s.stop.load(Relaxed) {
                return;
            }
            if s.has_idle.load(Relaxed) {
                let work = idle.get_or_insert_with(|| s.idle.lock().clone().expect("set"));
                if work() {
                    start = Instant::now();
                    continue;
                }
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(64) || start.elapsed() < SPIN {
                std::thread::yield_now();
                continue;
            }
            s.parked.fetch_add(1, SeqCst);
            let mut g = s.lock.lock();
            while s.generation.load(SeqCst) == seen && !s.stop.load(SeqCst) {
                s.wake.wait(&mut g);
            }
            drop(g);
            s.parked.fetch_sub(1, SeqCst);
        }
        if s.stop.load(SeqCst) {
            return;
        }
        let g = s.generation.load(SeqCst);
        seen = g;
        // Enter, then check that the job is still the one seen and open: a caller that closed it
        // before this entry may have returned (SeqCst orders the entry against its check of
        // `active` after closing).
        s.active.fetch_add(1, SeqCst);
        if s.generation.load(SeqCst) == g && s.closed.load(SeqCst) < g {
            // SAFETY: job g is published, not closed, and this helper is inside it: `Team::run`
            // does not return (and the job stays alive) until `active` is zero after closing.
            let job = unsafe { &*s.job.load(Acquire) };
            job.work(&s.next);
        }
        s.active.fetch_sub(1, SeqCst);
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        let s = &*self.shared;
        s.stop.store(true, SeqCst);
        s.generation.fetch_add(1, SeqCst);
        {
            let _g = s.lock.lock();
            s.wake.notify_all();
        }
        for h in self.helpers.drain(..) {
            let _ = h.join();
        }
    }
}

thread_local! {
    /// The team of the model whose work this thread is doing (see [`with`]).
    static CURRENT: Cell<*const Team> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` with `team` as this thread's current team: [`for_each`] inside uses it.
pub fn with<R>(team: &Team, f: impl FnOnce() -> R) -> R {
    struct Reset(*const Team);
    impl Drop for Reset {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(CURRENT.with(|c| c.replace(team)));
    f()
}

/// Runs `f(0)..f(n)` on this thread's current team, or on the current rayon pool when there is
/// none.
pub fn for_each(n: usize, f: &(dyn Fn(usize) + Sync)) {
    let team = CURRENT.with(|c| c.get());
    if team.is_null() {
        use rayon::prelude::*;
        (0..n).into_par_iter().for_each(f);
    } else {
        // SAFETY: `with` keeps the team borrowed for as long as it is current on this thread.
        unsafe { &*team }.run(n, f);
    }
}

/// Runs `f(i, &mut parts[i])` for every part on the current team ([`for_each`]); a single part on
/// this thread.
pub fn for_parts<P: Send>(parts: &mut [P], f: &(dyn Fn(usize, &mut P) + Sync)) {
    if let [one] = parts {
        return f(0, one);
    }
    // Each index is taken once; the locks only let the closure borrow its part mutably.
    let parts: Vec<parking_lot::Mutex<&mut P>> =
        parts.iter_mut().map(parking_lot::Mutex::new).collect();
    for_each(parts.len(), &|i| f(i, &mut parts[i].lock()));
}

/// Rows of `row_len` values per part when rows are split over the team: about 16K values, so that
/// a part costs much more than handing it to a thread; all `rows` in one part below two parts'
/// worth (a decode step's rows), where handing work out would cost more than it saves.
pub fn rows_per_part(rows: usize, row_len: usize) -> usize {
    const PART: usize = 16 * 1024;
    if rows * row_len < 2 * PART {
        rows.max(1)
    } else {
        (PART / row_len.max(1)).max(1)
    }
}

/// Runs `f(first_row, rows)` over `data` cut into runs of whole rows of `row_len` values
/// ([`rows_per_part`]) with [`for_parts`].
pub fn for_rows<T: Send>(data: &mut [T], row_len: usize, f: &(dyn Fn(usize, &mut [T]) + Sync)) {
    let per = rows_per_part(data.len() / row_len.max(1), row_len);
    let mut parts: Vec<&mut [T]> = data.chunks_mut(per * row_len.max(1)).collect();
    for_parts(&mut parts, &|i, rows| f(i * per, rows));
}

/// Number of threads [`for_each`] runs on.
pub fn threads() -> usize {
    let team = CURRENT.with(|c| c.get());
    if team.is_null() {
        rayon::current_num_threads()
    } else {
        // SAFETY: as in `for_each`.
        unsafe { &*team }.threads()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// Every task runs exactly once, on many jobs in a row, also after the helpers parked.
    /// Jobs finish with every task done while helpers are away in idle work, which some jobs
    /// find them in (their caller then takes the tasks itself).
    #[test]
    fn jobs_run_while_helpers_do_idle_work() {
        let team = Team::new(3).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        assert!(team.set_idle_work(Arc::new(move || {
            if c.fetch_add(1, Relaxed).is_multiple_of(3) {
                std::thread::sleep(Duration::from_micros(100));
                return true;
            }
            false
        })));
        for round in 0..3000 {
            if round % 100 == 0 {
                // A pause between jobs, for the helpers to poll in and take idle work.
                std::thread::sleep(Duration::from_micros(300));
            }
            let sum = AtomicUsize::new(0);
            team.run(16, &|i| {
                sum.fetch_add(i + 1, Relaxed);
            });
            assert_eq!(sum.load(Relaxed), 136, "round {round}");
        }
        assert!(calls.load(Relaxed) > 0);
        // A team without helpers has nobody to give it to.
        assert!(!Team::new(1).unwrap().set_idle_work(Arc::new(|| false)));
    }

    #[test]
    fn runs_every_task_once() {
        let team = Team::new(3).unwrap();
        for round in 0..2000 {
            let n = round % 37;
            let hits: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
            team.run(n, &|i| {
                hits[i].fetch_add(1, Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Relaxed) == 1), "round {round}");
            if round == 1000 {
                std::thread::sleep(SPIN * 3);
            }
        }
    }

    /// A panicking task reaches the caller, and the team still works afterwards.
    #[test]
    fn a_panic_reaches_the_caller() {
        let team = Team::new(2).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| {
            team.run(8, &|i| {
                if i == 5 {
                    panic!("task 5");
                }
            })
        }));
        assert!(r.is_err());
        let sum = AtomicUsize::new(0);
        team.run(10, &|i| {
            sum.fetch_add(i, Relaxed);
        });
        assert_eq!(sum.load(Relaxed), 45);
    }

    /// Two threads sharing a team: each job completes (one of them alone when the team is busy).
    #[test]
    fn concurrent_callers() {
        let team = Team::new(2).unwrap();
        std::thread::scope(|sc| {
            for _ in 0..2 {
                sc.spawn(|| {
                    for _ in 0..500 {
                        let sum = AtomicUsize::new(0);
                        team.run(16, &|i| {
                            sum.fetch_add(i, Relaxed);
                        });
                        assert_eq!(sum.load(Relaxed), 120);
                    }
                });
            }
        });
    }
}

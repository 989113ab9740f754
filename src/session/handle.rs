//! A session shared between threads: one call at a time (another gets `Busy`), cancellation aimed
//! at the running call, poisoning after a panic, and background generation on a worker thread
//! whose events the host polls on its own thread.
//!
//! Background generation moves the [`Session`] to the worker; it comes back with the final event
//! (done or error), and is put back when [`SessionHandle::poll`] delivers that event. Until then
//! every other call gets `Busy`. Dropping the handle cancels a running generation and joins the
//! worker.

use super::{GenerateParams, Logprobs, Output, Sampler, Session, StopReason};
use crate::bail;
use crate::error::{Error, ErrorCode, Result};
use parking_lot::Mutex;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// An event of a background generation, in order: tokens, then one `Done` or `Error`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A generated token and the whole UTF-8 text it completed (may be empty: see
    /// [`Output::Token`]).
    Token {
        /// The token id.
        id: u32,
        /// Text completed by this token.
        text: String,
        /// The step's log-probabilities, when asked for.
        logprobs: Option<Logprobs>,
    },
    /// Generation ended; `text` is the text held back until the end (usually empty).
    Done {
        /// Why it ended.
        reason: StopReason,
        /// Remaining text.
        text: String,
    },
    /// Generation failed or was cancelled; the tokens generated before stay in the context.
    Error(Error),
}

impl Event {
    /// Whether this event ends the generation.
    pub fn is_final(&self) -> bool {
        !matches!(self, Event::Token { .. })
    }
}

/// What the worker sends: an event, and with the final one the session back.
struct Msg {
    event: Event,
    back: Option<(Box<Session>, bool)>,
}

#[derive(Default)]
struct PollState {
    rx: Option<Receiver<Msg>>,
    /// The log-probabilities of the token event delivered last.
    last_logprobs: Option<Logprobs>,
    pending: Option<Msg>,
    worker: Option<JoinHandle<()>>,
}

/// A [`Session`] usable from several threads, one call at a time.
pub struct SessionHandle {
    /// `None` while a background generation owns the session.
    slot: Mutex<Option<Box<Session>>>,
    /// Counts finished calls; changes only while the session is held, so a running call sees one
    /// value throughout.
    epoch: AtomicU64,
    /// The epoch of the call that [`SessionHandle::cancel`] last aimed at (`u64::MAX`: none).
    cancel_epoch: Arc<AtomicU64>,
    /// A background generation owns the session.
    detached: AtomicBool,
    poisoned: AtomicBool,
    poll: Mutex<PollState>,
}

impl SessionHandle {
    /// Wraps a session.
    pub fn new(s: Session) -> Self {
        SessionHandle {
            slot: Mutex::new(Some(Box::new(s))),
            epoch: AtomicU64::new(0),
            cancel_epoch: Arc::new(AtomicU64::new(u64::MAX)),
            detached: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            poll: Mutex::new(PollState::default()),
        }
    }

    /// Runs `f` with the session; `Busy` if another call holds it or a background generation
    /// runs. A panic inside poisons the session, and every later call reports `Internal`.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Session, &(dyn Fn() -> bool + Sync)) -> Result<T>,
    ) -> Result<T> {
        let Some(mut slot) = self.slot.try_lock() else {
            bail!(Busy, "the session is in use by another thread");
        };
        let Some(s) = slot.as_mut() else {
            bail!(
                Busy,
                "a background generation is running: poll until its end event first"
            );
        };
        if self.poisoned.load(Ordering::Acquire) {
            bail!(Internal, "the session is unusable after an internal error");
        }
        // A cancel aims at the call holding the session: it records that call's epoch. This call
        // is cancelled when the recorded epoch is its own, even if the cancel came between its
        // taking the session and its first check; a cancel aimed at an earlier call is ignored.
        let epoch = self.epoch.load(Ordering::Acquire);
        let cancel = || self.cancel_epoch.load(Ordering::Acquire) == epoch;
        let poison = PoisonOnUnwind(&self.poisoned);
        let r = f(s, &cancel);
        std::mem::forget(poison);
        self.epoch.store(epoch.wrapping_add(1), Ordering::Release);
        r
    }

    /// Runs `f` with the sessions of all `handles` held at once (a batch); `Busy` if any is held by
    /// another call, runs a background generation, or appears twice. `f`'s second argument tells
    /// whether the session at an index was cancelled during the call. A panic inside poisons
    /// every one.
    pub fn with_all<T>(
        handles: &[&SessionHandle],
        f: impl FnOnce(&mut [&mut Session], &(dyn Fn(usize) -> bool + Sync)) -> Result<T>,
    ) -> Result<T> {
        let mut guards = Vec::with_capacity(handles.len());
        for h in handles {
            let Some(slot) = h.slot.try_lock() else {
                bail!(
                    Busy,
                    "a session of the batch is in use by another thread (or given twice)"
                );
            };
            if slot.is_none() {
                bail!(
                    Busy,
                    "a session of the batch runs a background generation: poll until its end event first"
                );
            }
            if h.poisoned.load(Ordering::Acquire) {
                bail!(
                    Internal,
                    "a session of the batch is unusable after an internal error"
                );
            }
            guards.push(slot);
        }
        let epochs: Vec<u64> = handles
            .iter()
            .map(|h| h.epoch.load(Ordering::Acquire))
            .collect();
        let cancel = |i: usize| handles[i].cancel_epoch.load(Ordering::Acquire) == epochs[i];
        let poison: Vec<PoisonOnUnwind<'_>> = handles
            .iter()
            .map(|h| PoisonOnUnwind(&h.poisoned))
            .collect();
        let mut sessions: Vec<&mut Session> = guards
            .iter_mut()
            .map(|g| g.as_mut().expect("checked above").as_mut())
            .collect();
        let r = f(&mut sessions, &cancel);
        poison.into_iter().for_each(std::mem::forget);
        for (h, e) in handles.iter().zip(epochs) {
            h.epoch.store(e.wrapping_add(1), Ordering::Release);
        }
        r
    }

    /// Asks the running call (or background generation) to stop at its next layer or token.
    /// Idempotent; does nothing when nothing runs. Any thread.
    pub fn cancel(&self) {
        let epoch = self.epoch.load(Ordering::Acquire);
        if self.slot.is_locked() || self.detached.load(Ordering::Acquire) {
            self.cancel_epoch.store(epoch, Ordering::Release);
        }
    }

    /// Starts generating on a worker thread and returns at once; [`SessionHandle::poll`] delivers
    /// the events, sampled by `sampler` as in a foreground generate.
    /// `InvalidArgument` when there are no logits to generate from; `Busy` when another call or
    /// generation holds the session, or the previous background generation's end has not been
    /// polled yet.
    pub fn start(&self, gen: GenerateParams, sampler: Sampler) -> Result<()> {
        let Some(mut poll) = self.poll.try_lock() else {
            bail!(Busy, "another thread is polling this session");
        };
        if poll.rx.is_some() {
            bail!(
                Busy,
                "a background generation is running: poll until its end event first"
            );
        }
        let Some(mut slot) = self.slot.try_lock() else {
            bail!(Busy, "the session is in use by another thread");
        };
        if self.poisoned.load(Ordering::Acquire) {
            bail!(Internal, "the session is unusable after an internal error");
        }
        let Some(session) = slot.take() else {
            bail!(Busy, "a background generation is running");
        };
        if session.logits().is_empty() {
            *slot = Some(session);
            bail!(
                InvalidArgument,
                "there are no logits to generate from: append a prompt (after a truncate, at least one token) first"
            );
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let cancel_epoch = self.cancel_epoch.clone();
        let (tx, rx) = channel::<Msg>();
        // The worker takes the session from here, so that a failed spawn can give it back.
        let handoff = Arc::new(Mutex::new(Some(session)));
        let theirs = handoff.clone();
        let spawned = std::thread::Builder::new()
            .name("chord-generate".into())
            .spawn(move || {
                let s = theirs.lock().take();
                if let Some(s) = s {
                    let cancel = || cancel_epoch.load(Ordering::Acquire) == epoch;
                    run(s, gen, sampler, &tx, cancel);
                }
            });
        match spawned {
            Ok(worker) => {
                poll.rx = Some(rx);
                poll.worker = Some(worker);
                poll.last_logprobs = None;
                // Set while the session is still locked, so a cancel from now on aims at `epoch`.
                self.detached.store(true, Ordering::Release);
                Ok(())
            }
            Err(e) => {
                *slot = handoff.lock().take();
                bail!(Internal, "cannot start the generation thread: {e}")
            }
        }
    }

    /// Waits up to `timeout` for the next event of a background generation and hands it to
    /// `deliver` (`None`: no event within the timeout, or no generation running and no event
    /// left). When `deliver` fails (e.g. the host's buffer is too small) the event stays and the
    /// next poll delivers it again. Delivering the final event gives the session back. `Busy` when
    /// another thread is polling.
    pub fn poll<T>(
        &self,
        timeout: Duration,
        deliver: impl FnOnce(Option<&Event>) -> Result<T>,
    ) -> Result<T> {
        let Some(mut st) = self.poll.try_lock() else {
            bail!(Busy, "another thread is polling this session");
        };
        if st.pending.is_none() {
            let Some(rx) = st.rx.as_ref() else {
                return deliver(None);
            };
            let msg = match rx.recv_timeout(timeout) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => return deliver(None),
                Err(RecvTimeoutError::Disconnected) => Msg {
                    event: Event::Error(Error::new(
                        ErrorCode::Internal,
                        "the generation thread ended without a result",
                    )),
                    back: None,
                },
            };
            st.pending = Some(msg);
        }
        let msg = st.pending.as_ref().expect("set above");
        let out = deliver(Some(&msg.event))?;
        let msg = st.pending.take().expect("set above");
        if let Event::Token { logprobs, .. } = &msg.event {
            st.last_logprobs = logprobs.clone();
        }
        if msg.event.is_final() {
            st.rx = None;
            if let Some(w) = st.worker.take() {
                let _ = w.join();
            }
            self.finish(msg.back);
        }
        Ok(out)
    }

    /// The log-probabilities of the token that [`SessionHandle::poll`] delivered last (`None`
    /// when it had none, or none was delivered since the generation started). `Busy` when another
    /// thread is polling.
    pub fn last_logprobs(&self) -> Result<Option<Logprobs>> {
        let Some(st) = self.poll.try_lock() else {
            bail!(Busy, "another thread is polling this session");
        };
        Ok(st.last_logprobs.clone())
    }

    /// Ends a background generation: the session comes back (or, if it was lost, the handle is
    /// poisoned) and the call's epoch ends.
    fn finish(&self, back: Option<(Box<Session>, bool)>) {
        let mut slot = self.slot.lock();
        match back {
            Some((s, poisoned)) => {
                *slot = Some(s);
                if poisoned {
                    self.poisoned.store(true, Ordering::Release);
                }
            }
            None => self.poisoned.store(true, Ordering::Release),
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        self.epoch.store(epoch.wrapping_add(1), Ordering::Release);
        self.detached.store(false, Ordering::Release);
    }
}

/// The worker: generates, sending each token as an event, then the final event with the session.
fn run(
    mut s: Box<Session>,
    gen: GenerateParams,
    mut sampler: Sampler,
    tx: &Sender<Msg>,
    cancel: impl Fn() -> bool + Sync,
) {
    let mut tail = String::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut on_out = |o: Output<'_>| match o {
            Output::Token { id, text, logprobs } => tx
                .send(Msg {
                    event: Event::Token {
                        id,
                        text: text.to_string(),
                        logprobs: logprobs.cloned(),
                    },
                    back: None,
                })
                .is_ok(),
            Output::Tail(t) => {
                tail.push_str(t);
                true
            }
        };
        s.generate(&gen, &mut sampler, &mut on_out, &cancel)
    }));
    let (event, poisoned) = match result {
        Ok(Ok(reason)) => (Event::Done { reason, text: tail }, false),
        Ok(Err(e)) => (Event::Error(e), false),
        Err(_) => (
            Event::Error(Error::new(
                ErrorCode::Internal,
                "internal error during generation",
            )),
            true,
        ),
    };
    let _ = tx.send(Msg {
        event,
        back: Some((s, poisoned)),
    });
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        self.cancel();
        let st = self.poll.get_mut();
        st.rx = None;
        if let Some(w) = st.worker.take() {
            let _ = w.join();
        }
    }
}

struct PoisonOnUnwind<'a>(&'a AtomicBool);
impl Drop for PoisonOnUnwind<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

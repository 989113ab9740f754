//! The library's log: one process-wide sink that the host installs (the C API's
//! `chord_set_log_callback`), a level filter, and the macros the rest of chord logs through.
//!
//! Without a sink nothing is formatted and nothing is printed: chord never writes to stdout or
//! stderr itself. Rules:
//! * The sink may be called from any chord thread (the loading thread, a generating thread, later
//!   the pager's prefetch thread), possibly from several at once; it must be thread-safe.
//! * Replacing the sink waits until no thread is inside the old one; then the old sink is dropped
//!   on the replacing thread (for the C API, that is when the host's `user_data_free` runs), so it
//!   is never called again once the replacement returns.
//! * Messages logged from inside the sink (a sink that calls back into chord) are dropped, and a
//!   sink may not replace itself (`Busy`): both would otherwise deadlock.

use crate::bail;
use crate::error::Result;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::RwLock;

/// Severity of a message; a lower number is more severe.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// An operation failed.
    Error = 0,
    /// Something works but probably not as the host intends.
    Warn = 1,
    /// What chord loaded and how it will run (a few lines per model).
    Info = 2,
    /// Details for debugging chord.
    Debug = 3,
}

impl Level {
    /// The level numbered `n`, if any.
    pub fn from_u32(n: u32) -> Option<Level> {
        [Level::Error, Level::Warn, Level::Info, Level::Debug]
            .into_iter()
            .find(|l| *l as u32 == n)
    }
}

/// Where messages go. Dropping it releases whatever it holds (the C API calls `user_data_free`).
pub type Sink = Box<dyn Fn(Level, &str) + Send + Sync>;

static SINK: RwLock<Option<Sink>> = RwLock::new(None);
static HAVE_SINK: AtomicBool = AtomicBool::new(false);
static MAX_LEVEL: AtomicU32 = AtomicU32::new(Level::Info as u32);

thread_local! {
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

/// Installs `sink` (or removes the current one with `None`). Returns once no thread is inside the
/// previous sink; the previous sink is dropped on this thread before returning. `Busy` when called
/// from inside a sink.
pub fn set_sink(sink: Option<Sink>) -> Result<()> {
    if IN_SINK.with(|c| c.get()) {
        bail!(
            Busy,
            "the log callback cannot be changed from inside itself"
        );
    }
    let old = {
        let mut slot = SINK.write().unwrap_or_else(|e| e.into_inner());
        HAVE_SINK.store(sink.is_some(), Ordering::Release);
        std::mem::replace(&mut *slot, sink)
    };
    drop(old);
    Ok(())
}

/// Delivers messages of `level` and more severe ones; the default is [`Level::Info`].
pub fn set_max_level(level: Level) {
    MAX_LEVEL.store(level as u32, Ordering::Relaxed);
}

/// The least severe level delivered.
pub fn max_level() -> Level {
    Level::from_u32(MAX_LEVEL.load(Ordering::Relaxed)).unwrap_or(Level::Info)
}

/// Whether a message of `level` would reach a sink (use it to skip formatting).
pub fn enabled(level: Level) -> bool {
    HAVE_SINK.load(Ordering::Acquire)
        && level as u32 <= MAX_LEVEL.load(Ordering::Relaxed)
        && !IN_SINK.with(|c| c.get())
}

/// Sends `msg` to the sink when `level` is enabled.
pub fn emit(level: Level, msg: &str) {
    if !enabled(level) {
        return;
    }
    let slot = SINK.read().unwrap_or_else(|e| e.into_inner());
    if let Some(sink) = slot.as_ref() {
        IN_SINK.with(|c| c.set(true));
        // Reset the flag even if a (Rust) sink panics.
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                IN_SINK.with(|c| c.set(false));
            }
        }
        let _reset = Reset;
        sink(level, msg);
    }
}

/// Logs a formatted message at a [`Level`]: `log!(Info, "loaded {n} tensors")`. The arguments are
/// formatted only when the level is enabled.
#[macro_export]
macro_rules! log {
    ($level:ident, $($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::$level) {
            $crate::log::emit($crate::log::Level::$level, &format!($($arg)*));
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Mutex};

    /// One test owns the global sink so that parallel tests do not race on it.
    #[test]
    fn sink_receives_filtered_messages_and_is_dropped_once() {
        struct Guard(Arc<AtomicUsize>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let got = Arc::new(Mutex::new(Vec::<(Level, String)>::new()));
        let (g, sink_got) = (Guard(drops.clone()), got.clone());
        set_sink(Some(Box::new(move |level, msg| {
            let _keep = &g;
            // Logging and replacing the sink from inside it neither deadlock nor deliver.
            crate::log!(Error, "nested");
            assert!(set_sink(None).is_err());
            sink_got.lock().unwrap().push((level, msg.to_string()));
        })))
        .unwrap();
        set_max_level(Level::Warn);
        crate::log!(Warn, "w{}", 1);
        crate::log!(Info, "hidden");
        set_max_level(Level::Debug);
        crate::log!(Debug, "d");
        std::thread::spawn(|| crate::log!(Error, "from another thread"))
            .join()
            .unwrap();
        set_max_level(Level::Info);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        set_sink(None).unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        crate::log!(Error, "after removal");
        set_sink(None).unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        // Other tests in this binary may log while the sink is installed: look only for ours.
        let got = got.lock().unwrap();
        let ours: Vec<_> = got
            .iter()
            .filter(|(_, m)| {
                [
                    "w1",
                    "hidden",
                    "d",
                    "from another thread",
                    "nested",
                    "after removal",
                ]
                .contains(&m.as_str())
            })
            .cloned()
            .collect();
        assert_eq!(
            ours,
            vec![
                (Level::Warn, "w1".to_string()),
                (Level::Debug, "d".to_string()),
                (Level::Error, "from another thread".to_string()),
            ]
        );
    }

    #[test]
    fn levels_number_by_severity() {
        assert_eq!(Level::from_u32(0), Some(Level::Error));
        assert_eq!(Level::from_u32(3), Some(Level::Debug));
        assert_eq!(Level::from_u32(4), None);
        assert!(Level::Error < Level::Debug);
    }
}

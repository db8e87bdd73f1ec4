//! The epoch ticker: a thread that advances the engine's epoch while wasm code runs.
//!
//! Epoch interruption is how a long call gives control back: every tick, a running module
//! reaches its epoch deadline, and the store's deadline callback either stops it (time limit)
//! or yields to the serve loop so other requests are served. wasm code runs on the serve
//! loop's own thread, so something else must tick: this thread. It sleeps (parked, no wakeups)
//! whenever no module is running, so an idle guest costs nothing.
//!
//! The thread is started in `init`, before the guest's final lockdown, and needs only
//! `clock_nanosleep` and `futex` afterwards.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::{self, Thread},
    time::Duration,
};
use wasmtime::Engine;

/// How often a running module is interrupted: the granularity of time limits and the longest
/// a busy module keeps the serve loop from other requests.
pub(crate) const TICK: Duration = Duration::from_millis(2);

#[derive(Debug, Default)]
struct Flags {
    /// A module is running: tick.
    active: AtomicBool,
    /// The runtime is gone: exit.
    stop: AtomicBool,
}

/// Handle to the ticker thread; stops it when dropped.
#[derive(Debug)]
pub(crate) struct Ticker {
    thread: Thread,
    flags: Arc<Flags>,
}

impl Ticker {
    /// Starts the thread.
    pub(crate) fn start(engine: Engine) -> std::io::Result<Self> {
        let flags = Arc::new(Flags::default());
        let theirs = flags.clone();
        let handle = thread::Builder::new()
            .name("confine-epoch".to_owned())
            .stack_size(64 * 1024)
            .spawn(move || loop {
                if theirs.stop.load(Ordering::Acquire) {
                    return;
                }
                if theirs.active.load(Ordering::Acquire) {
                    thread::sleep(TICK);
                    engine.increment_epoch();
                } else {
                    // A spurious or early wakeup just re-checks the flags.
                    thread::park();
                }
            })?;
        Ok(Ticker {
            thread: handle.thread().clone(),
            flags,
        })
    }

    /// Marks a module as running until the guard is dropped.
    pub(crate) fn active(&self) -> Active<'_> {
        self.flags.active.store(true, Ordering::Release);
        // Cheap when the thread is not parked (no syscall).
        self.thread.unpark();
        Active(self)
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.flags.stop.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// While alive, the ticker ticks.
#[derive(Debug)]
pub(crate) struct Active<'a>(&'a Ticker);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.flags.active.store(false, Ordering::Release);
    }
}

//! Engine-independent helpers for JavaScript runtimes: the timer clock, the thread's CPU
//! clock, stack-trace location parsing, and console formatting of property names and strings.
//! No engine, no I/O.

use crate::error::Location;
use std::{
    cell::Cell,
    fmt::Write as _,
    time::{Duration, Instant},
};

/// CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`). A guest serves on one
/// thread, so this is the CPU its scripts used. Zero if the clock cannot be read, which makes
/// CPU limits never fire rather than fire at random.
#[cfg(not(unix))]
pub fn thread_cpu_time() -> Duration {
    // WASI has no thread CPU clock worth trusting; code compiled for it (the wasm runtime's
    // JavaScript plugin) is held to CPU limits by its host instead.
    Duration::ZERO
}

/// CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`). A guest serves on one
/// thread, so this is the CPU its scripts used. Zero if the clock cannot be read, which makes
/// CPU limits never fire rather than fire at random.
#[cfg(unix)]
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Time and ordering shared by every container of one runtime: a clock that never runs
/// backwards and a sequence for timers.
#[derive(Debug)]
pub struct Clock {
    /// The latest `now` `run_pending` was given. Timers armed while it runs count from here, so
    /// a test driving time forward by hand sees consistent deadlines.
    floor: Cell<Instant>,
    /// Creation order of timers, to fire equal deadlines first-armed-first and to keep timers
    /// armed during a `run_pending` round for the next round.
    seq: Cell<u64>,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock starting now, with no timers armed.
    pub fn new() -> Self {
        Clock {
            floor: Cell::new(Instant::now()),
            seq: Cell::new(0),
        }
    }

    /// The current time: the real clock, but never before the last `run_pending` time.
    pub fn now(&self) -> Instant {
        Instant::now().max(self.floor.get())
    }

    /// The latest time `run_pending` was given.
    pub fn floor(&self) -> Instant {
        self.floor.get()
    }

    /// Moves the floor forward to `now` (never backwards).
    pub fn advance(&self, now: Instant) {
        if now > self.floor.get() {
            self.floor.set(now);
        }
    }

    /// Takes the next sequence number.
    pub fn next_seq(&self) -> u64 {
        let s = self.seq.get();
        self.seq.set(s.wrapping_add(1));
        s
    }

    /// The sequence number the next timer will get.
    pub fn peek_seq(&self) -> u64 {
        self.seq.get()
    }
}

/// The location of the first frame of a JS stack trace (QuickJS and Boa write the same
/// format).
///
/// Frames read `    at name (file:line:col)`, `    at file:line:col` (syntax errors) or
/// `    at name (native)`; native frames are skipped. File names may contain `:`, so the
/// numbers are taken from the right.
pub fn first_location(stack: &str) -> Option<Location> {
    stack.lines().find_map(|line| {
        let frame = line.trim().strip_prefix("at ")?;
        let place = match (frame.rfind('('), frame.ends_with(')')) {
            (Some(open), true) => &frame[open + 1..frame.len() - 1],
            _ => frame,
        };
        parse_place(place)
    })
}

fn parse_place(place: &str) -> Option<Location> {
    let (rest, last) = place.rsplit_once(':')?;
    let last: u32 = last.parse().ok()?;
    match rest.rsplit_once(':') {
        Some((file, line)) if line.parse::<u32>().is_ok() => Some(Location {
            file: file.to_owned(),
            line: line.parse().ok()?,
            column: Some(last),
        }),
        _ => Some(Location {
            file: rest.to_owned(),
            line: last,
            column: None,
        }),
    }
    .filter(|l| !l.file.is_empty())
}

/// `true` if `s` can be written as a bare property name (`a.b`, `{ b: 1 }`).
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

/// Appends `s` single-quoted, escaping what would make it ambiguous.
pub fn quote(out: &mut String, s: &str) {
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
}

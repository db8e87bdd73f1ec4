//! Engine-independent helpers for JavaScript runtimes: the timer clock and a container's
//! timer table, the thread's CPU clock, stack-trace location parsing, and console formatting of property names and strings.
//! No engine, no I/O.

use crate::error::Location;
use std::{
    cell::Cell,
    collections::HashMap,
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

/// The longest delay a timer takes; longer ones are cut to this (about 24.8 days), as in
/// browsers and node.
const MAX_DELAY_MS: f64 = i32::MAX as f64;

/// One armed timer: when it is due, and what it calls (`F`: the engine's handles to the
/// callback and its arguments).
#[derive(Debug)]
struct Timer<F> {
    deadline: Instant,
    /// Arming order (see [`Clock::next_seq`]).
    seq: u64,
    interval: Option<Duration>,
    call: F,
}

/// A container's `setTimeout` / `setInterval` timers by id. Nothing fires on its own: the
/// runtime's `run_pending` asks for the earliest due timer ([`Timers::next_due`]) and fires
/// them one at a time, running promise jobs in between, as browsers and node do.
#[derive(Debug)]
pub struct Timers<F> {
    last_id: u32,
    map: HashMap<u32, Timer<F>>,
}

impl<F> Default for Timers<F> {
    fn default() -> Self {
        Timers {
            last_id: 0,
            map: HashMap::new(),
        }
    }
}

impl<F: Clone> Timers<F> {
    /// Arms a timer that calls `call` after `delay_ms` (the script's delay argument if it
    /// was a number), once or every `delay_ms` when `repeat`; its id for the script. A missing
    /// or NaN delay is 0, and an interval waits at least 1 ms so `setInterval(f, 0)` cannot
    /// keep the guest busy without pause.
    pub fn arm(&mut self, clock: &Clock, delay_ms: Option<f64>, repeat: bool, call: F) -> u32 {
        let ms = delay_ms.filter(|ms| !ms.is_nan()).unwrap_or(0.0);
        let ms = ms.clamp(0.0, MAX_DELAY_MS);
        let delay = Duration::from_secs_f64(if repeat { ms.max(1.0) } else { ms } / 1000.0);
        let timer = Timer {
            deadline: clock.now() + delay,
            seq: clock.next_seq(),
            interval: repeat.then_some(delay),
            call,
        };
        // Ids are numbers script code keeps; skip 0 (falsy) and any id still in use.
        let mut id = self.last_id;
        loop {
            id = id.wrapping_add(1);
            if id != 0 && !self.map.contains_key(&id) {
                break;
            }
        }
        self.last_id = id;
        self.map.insert(id, timer);
        id
    }

    /// Disarms the timer whose id the script passed to `clearTimeout` / `clearInterval`
    /// (anything that is not such an id is ignored, as in browsers); what it would have
    /// called, for the caller to drop outside its borrows.
    pub fn disarm(&mut self, id: Option<f64>) -> Option<F> {
        let id = id.filter(|id| *id >= 1.0 && *id <= f64::from(u32::MAX) && id.fract() == 0.0)?;
        self.map.remove(&(id as u32)).map(|t| t.call)
    }

    /// `true` if no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The earliest deadline, due or not.
    pub fn earliest(&self) -> Option<Instant> {
        self.map.values().map(|t| t.deadline).min()
    }

    /// The first timer due at `now` among those armed before sequence number `before`, as
    /// `(deadline, seq, id)`.
    pub fn next_due(&self, now: Instant, before: u64) -> Option<(Instant, u64, u32)> {
        self.map
            .iter()
            .filter(|(_, t)| t.deadline <= now && t.seq < before)
            .map(|(&id, t)| (t.deadline, t.seq, id))
            .min()
    }

    /// Takes what timer `id` must call: a timeout is removed, an interval re-armed from now.
    pub fn take_for_firing(&mut self, id: u32, clock: &Clock) -> Option<F> {
        let timer = self.map.get_mut(&id)?;
        match timer.interval {
            Some(every) => {
                timer.deadline = clock.now() + every;
                timer.seq = clock.next_seq();
                Some(timer.call.clone())
            }
            None => self.map.remove(&id).map(|t| t.call),
        }
    }

    /// Removes every timer, handing what they would call to the caller to drop.
    pub fn clear(&mut self) -> Vec<F> {
        self.map.drain().map(|(_, t)| t.call).collect()
    }
}

/// Opens the CommonJS wrapper; see [`commonjs_wrap`].
const CJS_OPEN: &str = "(function (exports, module) {";

/// `code` as the body of a CommonJS wrapper function, `(function (exports, module) {`, the
/// code, then `\n})`. The wrapper opens on the source's first line so line numbers in errors
/// and stacks stay right; columns on line 1 shift by the wrapper's length, which
/// [`commonjs_location`] corrects. A `#!` line, legal only at the very start of a source,
/// becomes a comment.
pub fn commonjs_wrap(code: &str) -> String {
    let hashbang = if code.starts_with("#!") { "//" } else { "" };
    format!("{CJS_OPEN}{hashbang}{code}\n}})")
}

/// Corrects a location in a [`commonjs_wrap`]ped source to the source's own column.
pub fn commonjs_location(loc: &mut Location) {
    if loc.line == 1 {
        let shift = u32::try_from(CJS_OPEN.len()).unwrap_or(0);
        loc.column = loc.column.map(|c| c.saturating_sub(shift).max(1));
    }
}

/// Whether a source that compiles neither as CommonJS nor as a module was meant as a module
/// (to report the module compiler's error rather than the CommonJS one): a line starting
/// with an `import` or `export` declaration.
pub fn looks_like_module(code: &str) -> bool {
    code.lines().any(|line| {
        let line = line.trim_start();
        ["import", "export"].iter().any(|kw| {
            line.strip_prefix(kw).is_some_and(|rest| {
                rest.starts_with(|c: char| {
                    c.is_whitespace() || c == '{' || c == '*' || c == '"' || c == '\''
                })
            })
        })
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// QuickJS and Boa write the same frames.
    #[test]
    fn locations_from_stack_frames() {
        let first = |stack| first_location(stack).map(|l| (l.file, l.line, l.column));
        let at = |file: &str, line, column| Some((file.to_owned(), line, column));
        assert_eq!(
            first("    at f (app.js:3:11)\n    at <eval> (app.js:5:1)\n"),
            at("app.js", 3, Some(11))
        );
        assert_eq!(
            first("    at c:\\dir\\a.js:7:2\n"),
            at("c:\\dir\\a.js", 7, Some(2))
        );
        assert_eq!(
            first("    at g (native)\n    at h (x.js:9)\n"),
            at("x.js", 9, None)
        );
        assert!(first("no frames here").is_none());
    }

    #[test]
    fn module_hint() {
        assert!(looks_like_module("import x from 'y'\nx("));
        assert!(looks_like_module("  export const a = ;"));
        assert!(looks_like_module("import{a}from'b'"));
        assert!(!looks_like_module("import('x').then(f)"));
        assert!(!looks_like_module("exports.a = 1; important()"));
    }

    #[test]
    fn commonjs_wrapper_keeps_lines_and_columns() {
        let wrapped = commonjs_wrap("let x = ;\nx");
        assert_eq!(wrapped.lines().count(), 3);
        let column = u32::try_from(wrapped.find("let").unwrap_or_default() + 1).unwrap_or(0);
        let mut loc = Location {
            file: "a.js".into(),
            line: 1,
            column: Some(column),
        };
        commonjs_location(&mut loc);
        assert_eq!(loc.column, Some(1));
        assert!(commonjs_wrap("#!/usr/bin/env node\nx").contains("{//#!"));
    }
}

//! `setTimeout`, `setInterval`, `clearTimeout` and `clearInterval`.
//!
//! Timers are data in the container's [`Shared`] state; nothing fires on its own. The runtime's
//! `run_pending` asks each container for its earliest due timer and fires them one at a time,
//! running promise jobs in between (as browsers and node do). `queueMicrotask` is QuickJS's own.

use crate::state::{Clock, Shared};
use rquickjs::{
    function::{Opt, Rest},
    Ctx, Exception, Function, Object, Persistent, Value,
};
use std::{
    collections::HashMap,
    rc::Rc,
    time::{Duration, Instant},
};

/// The longest delay a timer takes; longer ones are cut to this (about 24.8 days).
const MAX_DELAY_MS: f64 = i32::MAX as f64;

/// One armed timer.
pub(crate) struct Timer {
    pub(crate) deadline: Instant,
    /// Arming order (see [`Clock::next_seq`]).
    pub(crate) seq: u64,
    pub(crate) interval: Option<Duration>,
    pub(crate) callback: Persistent<Function<'static>>,
    pub(crate) args: Vec<Persistent<Value<'static>>>,
}

/// A container's timers by id.
#[derive(Default)]
pub(crate) struct Timers {
    last_id: u32,
    map: HashMap<u32, Timer>,
}

/// What to call when a timer fires.
pub(crate) type Firing = (
    Persistent<Function<'static>>,
    Vec<Persistent<Value<'static>>>,
);

impl Timers {
    fn add(&mut self, timer: Timer) -> u32 {
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

    fn remove(&mut self, id: u32) -> Option<Timer> {
        self.map.remove(&id)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The earliest deadline, due or not.
    pub(crate) fn earliest(&self) -> Option<Instant> {
        self.map.values().map(|t| t.deadline).min()
    }

    /// The first timer due at `now` among those armed before sequence number `before`, as
    /// `(deadline, seq, id)`.
    pub(crate) fn next_due(&self, now: Instant, before: u64) -> Option<(Instant, u64, u32)> {
        self.map
            .iter()
            .filter(|(_, t)| t.deadline <= now && t.seq < before)
            .map(|(&id, t)| (t.deadline, t.seq, id))
            .min()
    }

    /// Takes what timer `id` must call: a timeout is removed, an interval re-armed from now.
    pub(crate) fn take_for_firing(&mut self, id: u32, clock: &Clock) -> Option<Firing> {
        let timer = self.map.get_mut(&id)?;
        match timer.interval {
            Some(every) => {
                timer.deadline = clock.now() + every;
                timer.seq = clock.next_seq();
                Some((timer.callback.clone(), timer.args.clone()))
            }
            None => self.map.remove(&id).map(|t| (t.callback, t.args)),
        }
    }

    /// Removes every timer, handing them to the caller to drop.
    pub(crate) fn clear(&mut self) -> Vec<Timer> {
        self.map.drain().map(|(_, t)| t).collect()
    }
}

/// Installs the timer functions on the global object.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, shared: &Rc<Shared>) -> rquickjs::Result<()> {
    let globals = ctx.globals();
    set_fn(
        &globals,
        "setTimeout",
        arm_fn(ctx, shared, false, "setTimeout")?,
    )?;
    set_fn(
        &globals,
        "setInterval",
        arm_fn(ctx, shared, true, "setInterval")?,
    )?;
    set_fn(&globals, "clearTimeout", clear_fn(ctx, shared)?)?;
    set_fn(&globals, "clearInterval", clear_fn(ctx, shared)?)?;
    Ok(())
}

fn set_fn<'js>(globals: &Object<'js>, name: &str, f: Function<'js>) -> rquickjs::Result<()> {
    globals.set(name, f.with_name(name)?)
}

fn arm_fn<'js>(
    ctx: &Ctx<'js>,
    shared: &Rc<Shared>,
    repeat: bool,
    name: &'static str,
) -> rquickjs::Result<Function<'js>> {
    let shared = shared.clone();
    Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>,
              callback: Opt<Value<'js>>,
              delay: Opt<Value<'js>>,
              args: Rest<Value<'js>>|
              -> rquickjs::Result<u32> {
            let Some(callback) = callback.0.and_then(|c| c.into_function()) else {
                return Err(Exception::throw_type(
                    &ctx,
                    &format!("{name}: the callback must be a function"),
                ));
            };
            let ms = delay_ms(delay.0.as_ref(), repeat);
            let timer = Timer {
                deadline: shared.clock.now() + Duration::from_secs_f64(ms / 1000.0),
                seq: shared.clock.next_seq(),
                interval: repeat.then(|| Duration::from_secs_f64(ms / 1000.0)),
                callback: Persistent::save(&ctx, callback),
                args: args
                    .0
                    .into_iter()
                    .map(|a| Persistent::save(&ctx, a))
                    .collect(),
            };
            Ok(shared.timers.borrow_mut().add(timer))
        },
    )
}

/// The delay in milliseconds: a missing or non-numeric delay is 0; intervals wait at least
/// 1 ms so `setInterval(f, 0)` cannot keep the guest busy without pause.
fn delay_ms(delay: Option<&Value<'_>>, repeat: bool) -> f64 {
    let ms = delay.and_then(|d| d.as_number()).unwrap_or(0.0);
    let ms = if ms.is_nan() {
        0.0
    } else {
        ms.clamp(0.0, MAX_DELAY_MS)
    };
    if repeat {
        ms.max(1.0)
    } else {
        ms
    }
}

fn clear_fn<'js>(ctx: &Ctx<'js>, shared: &Rc<Shared>) -> rquickjs::Result<Function<'js>> {
    let shared = shared.clone();
    Function::new(ctx.clone(), move |id: Opt<Value<'js>>| {
        let id = id.0.and_then(|v| v.as_number()).unwrap_or(0.0);
        if id >= 1.0 && id <= f64::from(u32::MAX) && id.fract() == 0.0 {
            let removed = shared.timers.borrow_mut().remove(id as u32);
            drop(removed);
        }
    })
}

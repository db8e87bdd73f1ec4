//! `setTimeout`, `setInterval`, `clearTimeout`, `clearInterval` and `queueMicrotask`.
//!
//! Timers are data in the container's [`Shared`] state; nothing fires on its own. The runtime's
//! `run_pending` asks each container for its earliest due timer and fires them one at a time,
//! running promise jobs in between (as browsers and node do). boa has no timers of its own
//! (they live in `boa_runtime`, which also brings `console` and `fetch` we do not want), and
//! no `queueMicrotask`, so that is defined here too: it queues a job on the container's
//! executor.

use crate::{
    errors, install_fn,
    state::{Clock, Shared, Untraced},
};
use boa_engine::{
    job::PromiseJob, object::builtins::JsFunction, Context, JsNativeError, JsResult, JsValue,
    NativeFunction,
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
    pub(crate) callback: JsFunction,
    pub(crate) args: Vec<JsValue>,
}

/// A container's timers by id.
#[derive(Default)]
pub(crate) struct Timers {
    last_id: u32,
    map: HashMap<u32, Timer>,
}

/// What to call when a timer fires.
pub(crate) type Firing = (JsFunction, Vec<JsValue>);

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

/// Installs the timer functions and `queueMicrotask` on the global object.
pub(crate) fn install(ctx: &mut Context, shared: &Rc<Shared>) -> JsResult<()> {
    let arm = |repeat: bool, name: &'static str| {
        NativeFunction::from_copy_closure_with_captures(
            move |_, args, captures: &Untraced<Rc<Shared>>, ctx| {
                arm(&captures.0, args, repeat, name, ctx)
            },
            Untraced(shared.clone()),
        )
    };
    install_fn(ctx, "setTimeout", 1, arm(false, "setTimeout"))?;
    install_fn(ctx, "setInterval", 1, arm(true, "setInterval"))?;
    let clear = || {
        NativeFunction::from_copy_closure_with_captures(
            |_, args, captures: &Untraced<Rc<Shared>>, _| {
                clear(&captures.0, args.first());
                Ok(JsValue::undefined())
            },
            Untraced(shared.clone()),
        )
    };
    install_fn(ctx, "clearTimeout", 1, clear())?;
    install_fn(ctx, "clearInterval", 1, clear())?;
    let microtask = NativeFunction::from_copy_closure_with_captures(
        |_, args, captures: &Untraced<Rc<Shared>>, ctx| {
            queue_microtask(&captures.0, args.first(), ctx)
        },
        Untraced(shared.clone()),
    );
    install_fn(ctx, "queueMicrotask", 1, microtask)
}

fn arm(
    shared: &Shared,
    args: &[JsValue],
    repeat: bool,
    name: &str,
    _ctx: &mut Context,
) -> JsResult<JsValue> {
    let Some(callback) = args.first().and_then(JsValue::as_function) else {
        return Err(JsNativeError::typ()
            .with_message(format!("{name}: the callback must be a function"))
            .into());
    };
    let ms = delay_ms(args.get(1), repeat);
    let timer = Timer {
        deadline: shared.clock.now() + Duration::from_secs_f64(ms / 1000.0),
        seq: shared.clock.next_seq(),
        interval: repeat.then(|| Duration::from_secs_f64(ms / 1000.0)),
        callback,
        args: args.iter().skip(2).cloned().collect(),
    };
    Ok(JsValue::from(shared.timers.borrow_mut().add(timer)))
}

/// The delay in milliseconds: a missing or non-numeric delay is 0; intervals wait at least
/// 1 ms so `setInterval(f, 0)` cannot keep the guest busy without pause.
fn delay_ms(delay: Option<&JsValue>, repeat: bool) -> f64 {
    let ms = delay.and_then(JsValue::as_number).unwrap_or(0.0);
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

fn clear(shared: &Shared, id: Option<&JsValue>) {
    let id = id.and_then(JsValue::as_number).unwrap_or(0.0);
    if id >= 1.0 && id <= f64::from(u32::MAX) && id.fract() == 0.0 {
        let removed = shared.timers.borrow_mut().remove(id as u32);
        drop(removed);
    }
}

/// Queues `callback` as a job. What it throws is reported as uncaught, as in node.
fn queue_microtask(
    shared: &Rc<Shared>,
    callback: Option<&JsValue>,
    ctx: &mut Context,
) -> JsResult<JsValue> {
    let Some(callback) = callback.and_then(JsValue::as_function) else {
        return Err(JsNativeError::typ()
            .with_message("queueMicrotask: the callback must be a function")
            .into());
    };
    let shared = shared.clone();
    let realm = ctx.realm().clone();
    ctx.enqueue_job(
        PromiseJob::with_realm(
            move |ctx| {
                if let Err(e) = callback.call(&JsValue::undefined(), &[], ctx) {
                    let error = errors::caught(ctx, e);
                    shared.link.uncaught(shared.cid, error);
                }
                Ok(JsValue::undefined())
            },
            realm,
        )
        .into(),
    );
    Ok(JsValue::undefined())
}

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
    state::{Shared, Untraced},
};
use boa_engine::{
    job::PromiseJob, object::builtins::JsFunction, Context, JsNativeError, JsResult, JsValue,
    NativeFunction,
};
use confine_runtime_abstract::support;
use std::rc::Rc;

/// What to call when a timer fires: the callback and its extra arguments.
pub(crate) type Firing = (JsFunction, Vec<JsValue>);

/// A container's timers by id.
pub(crate) type Timers = support::Timers<Firing>;

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
    let delay = args.get(1).and_then(JsValue::as_number);
    let firing = (callback, args.iter().skip(2).cloned().collect());
    let id = shared
        .timers
        .borrow_mut()
        .arm(&shared.clock, delay, repeat, firing);
    Ok(JsValue::from(id))
}

fn clear(shared: &Shared, id: Option<&JsValue>) {
    let removed = shared
        .timers
        .borrow_mut()
        .disarm(id.and_then(JsValue::as_number));
    drop(removed);
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

//! `setTimeout`, `setInterval`, `clearTimeout` and `clearInterval`.
//!
//! Timers are data in the container's [`Shared`] state; nothing fires on its own. The runtime's
//! `run_pending` asks each container for its earliest due timer and fires them one at a time,
//! running promise jobs in between (as browsers and node do). `queueMicrotask` is QuickJS's own.

use crate::state::Shared;
use confine_runtime_abstract::support;
use rquickjs::{
    function::{Opt, Rest},
    Ctx, Exception, Function, Object, Persistent, Value,
};
use std::rc::Rc;

/// What to call when a timer fires: the callback and its extra arguments.
pub(crate) type Firing = (
    Persistent<Function<'static>>,
    Vec<Persistent<Value<'static>>>,
);

/// A container's timers by id.
pub(crate) type Timers = support::Timers<Firing>;

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
            let delay = delay.0.and_then(|d| d.as_number());
            let args = args.0.into_iter().map(|a| Persistent::save(&ctx, a));
            let firing = (Persistent::save(&ctx, callback), args.collect());
            let id = shared
                .timers
                .borrow_mut()
                .arm(&shared.clock, delay, repeat, firing);
            Ok(id)
        },
    )
}

fn clear_fn<'js>(ctx: &Ctx<'js>, shared: &Rc<Shared>) -> rquickjs::Result<Function<'js>> {
    let shared = shared.clone();
    Function::new(ctx.clone(), move |id: Opt<Value<'js>>| {
        let removed = shared
            .timers
            .borrow_mut()
            .disarm(id.0.and_then(|v| v.as_number()));
        drop(removed);
    })
}

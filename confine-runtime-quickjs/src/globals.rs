//! Host globals: values copied in, and async functions that call the host.

use crate::{
    convert, errors,
    state::{HostCall, Shared},
};
use confine_runtime_abstract::{
    protocol::{GlobalDef, GlobalKind},
    ErrorData, Value,
};
use rquickjs::{function::Rest, Ctx, Function, Object, Persistent, Promise, Value as JsValue};
use std::rc::Rc;

/// Defines `def` in the container, creating plain objects for missing path segments
/// (`robot.sayHello` creates `robot`).
///
/// # Errors
/// An empty path, a segment that holds a non-object, a value that does not convert, or a
/// setter that throws.
pub(crate) fn define<'js>(
    ctx: &Ctx<'js>,
    shared: &Rc<Shared>,
    def: &GlobalDef,
) -> Result<(), ErrorData> {
    let Some((last, parents)) = def.path.split_last() else {
        return Err(ErrorData::invalid("a global needs a non-empty path"));
    };
    let mut target = ctx.globals();
    for (i, segment) in parents.iter().enumerate() {
        let current: JsValue = target
            .get(segment.as_str())
            .map_err(|e| errors::caught(ctx, e))?;
        target = if current.is_undefined() || current.is_null() {
            let created = Object::new(ctx.clone()).map_err(|e| errors::caught(ctx, e))?;
            target
                .set(segment.as_str(), created.clone())
                .map_err(|e| errors::caught(ctx, e))?;
            created
        } else if let Some(obj) = current.into_object() {
            obj
        } else {
            return Err(ErrorData::invalid(format!(
                "cannot define global {}: {} is not an object",
                def.path.join("."),
                parents[..=i].join(".")
            )));
        };
    }
    let value = match &def.kind {
        GlobalKind::Function => host_function(ctx, shared, def.path.clone())
            .map_err(|e| errors::caught(ctx, e))?
            .into_value(),
        GlobalKind::Value(v) => convert::to_js(ctx, v)?,
    };
    target
        .set(last.as_str(), value)
        .map_err(|e| errors::caught(ctx, e))
}

/// A JS function that forwards its arguments to the host global at `path` and returns a
/// promise the host's answer settles (see [`settle`]).
fn host_function<'js>(
    ctx: &Ctx<'js>,
    shared: &Rc<Shared>,
    path: Vec<String>,
) -> rquickjs::Result<Function<'js>> {
    let name = path.last().cloned().unwrap_or_default();
    let shared = shared.clone();
    Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, args: Rest<JsValue<'js>>| -> rquickjs::Result<Promise<'js>> {
            let mut values = Vec::with_capacity(args.0.len());
            for arg in &args.0 {
                values.push(convert::to_value(&ctx, arg).map_err(|e| errors::throw(&ctx, &e))?);
            }
            let (promise, resolve, reject) = ctx.promise()?;
            let id = shared.link.call_host(shared.cid, path.clone(), values);
            let call = HostCall {
                resolve: Persistent::save(&ctx, resolve),
                reject: Persistent::save(&ctx, reject),
            };
            shared.host_calls.borrow_mut().insert(id, call);
            Ok(promise)
        },
    )?
    .with_name(name)
}

/// Settles the promise of a host call with the host's answer. The reactions run later, as
/// promise jobs.
pub(crate) fn settle<'js>(
    ctx: &Ctx<'js>,
    shared: &Shared,
    call: HostCall,
    result: Result<Value, ErrorData>,
) {
    let (Ok(resolve), Ok(reject)) = (call.resolve.restore(ctx), call.reject.restore(ctx)) else {
        return;
    };
    let outcome = match result.and_then(|v| convert::to_js(ctx, &v)) {
        Ok(v) => resolve.call::<_, JsValue>((v,)),
        Err(e) => errors::to_js_error(ctx, &e).and_then(|e| reject.call::<_, JsValue>((e,))),
    };
    // Settling only queues jobs, so this fails only when the engine is out of memory.
    if let Err(e) = outcome {
        let error = errors::caught(ctx, e);
        shared.link.uncaught(shared.cid, error);
    }
}

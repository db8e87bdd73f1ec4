//! Host globals: values copied in, and async functions that call the host.

use crate::{
    convert, errors,
    state::{HostCall, Shared, Untraced},
};
use boa_engine::{
    object::{
        builtins::{JsFunction, JsPromise},
        FunctionObjectBuilder,
    },
    Context, JsObject, JsString, JsValue, NativeFunction,
};
use confine_runtime_abstract::{
    protocol::{GlobalDef, GlobalKind},
    ErrorData, Value,
};
use std::rc::Rc;

/// Defines `def` in the container, creating plain objects for missing path segments
/// (`robot.sayHello` creates `robot`).
///
/// # Errors
/// An empty path, a segment that holds a non-object, a value that does not convert, or a
/// setter that throws.
pub(crate) fn define(
    ctx: &mut Context,
    shared: &Rc<Shared>,
    def: &GlobalDef,
) -> Result<(), ErrorData> {
    let Some((last, parents)) = def.path.split_last() else {
        return Err(ErrorData::invalid("a global needs a non-empty path"));
    };
    let mut target = ctx.global_object();
    for (i, segment) in parents.iter().enumerate() {
        let key = JsString::from(segment.as_str());
        let current = target
            .get(key.clone(), ctx)
            .map_err(|e| errors::caught(ctx, e))?;
        target = if current.is_null_or_undefined() {
            let created = JsObject::with_object_proto(ctx.intrinsics());
            target
                .set(key, created.clone(), true, ctx)
                .map_err(|e| errors::caught(ctx, e))?;
            created
        } else if let Some(obj) = current.as_object() {
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
        GlobalKind::Function => host_function(ctx, shared, def.path.clone()).into(),
        GlobalKind::Value(v) => convert::to_js(ctx, v)?,
    };
    target
        .set(JsString::from(last.as_str()), value, true, ctx)
        .map(|_| ())
        .map_err(|e| errors::caught(ctx, e))
}

/// A JS function that forwards its arguments to the host global at `path` and returns a
/// promise the host's answer settles (see [`settle`]).
fn host_function(ctx: &mut Context, shared: &Rc<Shared>, path: Vec<String>) -> JsFunction {
    let name = path.last().cloned().unwrap_or_default();
    let f = NativeFunction::from_copy_closure_with_captures(
        |_, args, captures: &Untraced<(Rc<Shared>, Vec<String>)>, ctx| {
            let (shared, path) = &captures.0;
            let mut values = Vec::with_capacity(args.len());
            for arg in args {
                values.push(convert::to_value(ctx, arg).map_err(|e| errors::throw(ctx, &e))?);
            }
            let (promise, resolvers) = JsPromise::new_pending(ctx);
            let id = shared.link.call_host(shared.cid, path.clone(), values);
            let call = HostCall {
                resolve: resolvers.resolve,
                reject: resolvers.reject,
            };
            shared.host_calls.borrow_mut().insert(id, call);
            Ok(promise.into())
        },
        Untraced((shared.clone(), path)),
    );
    FunctionObjectBuilder::new(ctx.realm(), f)
        .name(JsString::from(name.as_str()))
        .length(0)
        .build()
}

/// Settles the promise of a host call with the host's answer. The reactions run later, as
/// promise jobs.
pub(crate) fn settle(
    ctx: &mut Context,
    shared: &Shared,
    call: HostCall,
    result: Result<Value, ErrorData>,
) {
    let outcome = match result.and_then(|v| convert::to_js(ctx, &v)) {
        Ok(v) => call.resolve.call(&JsValue::undefined(), &[v], ctx),
        Err(e) => {
            let error = errors::to_js_error(ctx, &e);
            call.reject.call(&JsValue::undefined(), &[error], ctx)
        }
    };
    // Settling only queues jobs, so this fails only on an engine failure.
    if let Err(e) = outcome {
        let error = errors::caught(ctx, e);
        shared.link.uncaught(shared.cid, error);
    }
}

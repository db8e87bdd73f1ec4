//! Turning JS exceptions into [`ErrorData`], and [`ErrorData`] back into JS errors.

use crate::{console, convert::string_prop};
use confine_runtime_abstract::{ContainerId, ErrorData, ErrorKind};
use rquickjs::{Ctx, Exception, Object, Value as JsValue};

/// The answer for a container id that is unknown (worded like the serve loop's).
pub(crate) fn no_such_container(cid: ContainerId) -> ErrorData {
    ErrorData::new(
        ErrorKind::NoSuchContainer,
        "ReferenceError",
        format!("no container with id {cid}"),
    )
}

/// The answer for calls still pending on a container when it is killed.
pub(crate) fn killed(cid: ContainerId) -> ErrorData {
    ErrorData::new(
        ErrorKind::NoSuchContainer,
        "ReferenceError",
        format!("container {cid} was killed"),
    )
}

/// An rquickjs error as data: a JS exception (taken off the context, so it cannot surface
/// later in unrelated code) becomes [`ErrorKind::Thrown`]; anything else is an engine failure.
pub(crate) fn caught<'js>(ctx: &Ctx<'js>, e: rquickjs::Error) -> ErrorData {
    match e {
        rquickjs::Error::Exception => from_exception(ctx, &ctx.catch(), ErrorKind::Thrown),
        other => ErrorData::internal(format!("QuickJS: {other}")),
    }
}

/// Describes a thrown value.
///
/// An `Error` (or any object with a string `message`) gives its `name`, `message` and
/// `stack`, and a location from the first stack frame. Anything else thrown (`throw 42`) is
/// named after its type (`number`, `string`, `object`, ...), with the value as the message.
pub(crate) fn from_exception<'js>(
    ctx: &Ctx<'js>,
    value: &JsValue<'js>,
    kind: ErrorKind,
) -> ErrorData {
    if let Some(obj) = value.as_object() {
        let message = string_prop(ctx, obj, "message");
        if value.is_error() || message.is_some() {
            return from_error_object(ctx, obj, message, kind);
        }
    }
    ErrorData::new(kind, type_name(value), console::display(ctx, value))
}

fn from_error_object<'js>(
    ctx: &Ctx<'js>,
    obj: &Object<'js>,
    message: Option<String>,
    kind: ErrorKind,
) -> ErrorData {
    let name = string_prop(ctx, obj, "name")
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "Error".to_owned());
    let stack = string_prop(ctx, obj, "stack").filter(|s| !s.trim().is_empty());
    let location = stack.as_deref().and_then(first_location);
    ErrorData {
        kind,
        name,
        message: message.unwrap_or_default(),
        stack,
        location,
    }
}

fn type_name(value: &JsValue<'_>) -> String {
    use rquickjs::Type;
    match value.type_of() {
        Type::Uninitialized | Type::Undefined => "undefined",
        Type::Null => "null",
        Type::Bool => "boolean",
        Type::Int | Type::Float => "number",
        Type::BigInt => "bigint",
        Type::String => "string",
        Type::Symbol => "symbol",
        Type::Function | Type::Constructor => "function",
        _ => "object",
    }
    .to_owned()
}

pub(crate) use confine_runtime_abstract::support::first_location;

/// A JS `Error` carrying an [`ErrorData`]'s name and message (to reject a host call with).
pub(crate) fn to_js_error<'js>(ctx: &Ctx<'js>, e: &ErrorData) -> rquickjs::Result<JsValue<'js>> {
    let error = Exception::from_message(ctx.clone(), &e.message)?;
    if !e.name.is_empty() && e.name != "Error" {
        error.set("name", e.name.as_str())?;
    }
    Ok(error.into_value())
}

/// Throws `e` as a JS error from inside a Rust function called by script code.
pub(crate) fn throw<'js>(ctx: &Ctx<'js>, e: &ErrorData) -> rquickjs::Error {
    match to_js_error(ctx, e) {
        Ok(v) => ctx.throw(v),
        Err(err) => err,
    }
}

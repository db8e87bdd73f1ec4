//! Turning boa errors into [`ErrorData`], and [`ErrorData`] back into JS errors.

use crate::{console, convert::string_prop};
use boa_engine::{
    builtins::error::Error as ErrorObject,
    error::{EngineError, RuntimeLimitError},
    js_string, Context, JsError, JsNativeError, JsObject, JsValue,
};
use confine_runtime_abstract::{ContainerId, ErrorData, ErrorKind, LimitKind, Location};

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

/// A boa error as data.
///
/// A JS exception becomes [`ErrorKind::Thrown`]. boa's *engine* errors cannot be caught by
/// script code and never become JS values: a runtime limit (recursion depth, VM stack size)
/// is [`ErrorKind::Limit`], and an engine panic turned into an error is
/// [`ErrorKind::Internal`].
pub(crate) fn caught(ctx: &mut Context, e: JsError) -> ErrorData {
    if let Some(engine) = e.as_engine() {
        return engine_error(engine);
    }
    match e.into_opaque(ctx) {
        Ok(value) => from_exception(ctx, &value, ErrorKind::Thrown),
        // `into_opaque` fails only for engine errors, handled above.
        Err(e) => ErrorData::internal(format!("boa: {e}")),
    }
}

fn engine_error(e: &EngineError) -> ErrorData {
    match e {
        EngineError::RuntimeLimit(limit) => {
            let uncatchable = "boa stops the script; this cannot be caught by script code";
            match limit {
                RuntimeLimitError::Recursion => ErrorData::limit(
                    LimitKind::Stack,
                    format!("maximum call depth exceeded ({uncatchable})"),
                ),
                RuntimeLimitError::StackSize => ErrorData::limit(
                    LimitKind::Stack,
                    format!("maximum stack size exceeded ({uncatchable})"),
                ),
                RuntimeLimitError::LoopIteration => ErrorData::new(
                    ErrorKind::Limit,
                    "RangeError",
                    format!("maximum loop iterations exceeded ({uncatchable})"),
                ),
            }
        }
        other => ErrorData::internal(format!("boa: {other}")),
    }
}

/// Describes a thrown value.
///
/// An `Error` (or any object with a string `message`) gives its `name`, `message` and
/// `stack`, and a location from the first stack frame. Anything else thrown (`throw 42`) is
/// named after its type (`number`, `string`, `object`, ...), with the value as the message.
pub(crate) fn from_exception(ctx: &mut Context, value: &JsValue, kind: ErrorKind) -> ErrorData {
    if let Some(obj) = value.as_object() {
        let message = string_prop(ctx, &obj, "message");
        if obj.is::<ErrorObject>() || message.is_some() {
            return from_error_object(ctx, &obj, message, kind);
        }
    }
    ErrorData::new(kind, type_name(value), console::display(ctx, value))
}

fn from_error_object(
    ctx: &mut Context,
    obj: &JsObject,
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

fn type_name(value: &JsValue) -> String {
    match value.type_of() {
        // `typeof` says "function" for callables and "object" for null; both fine as names.
        "object" if value.is_null() => "null",
        other => other,
    }
    .to_owned()
}

pub(crate) use confine_runtime_abstract::support::first_location;

/// Splits boa's parser message `"<what> at line L, col C"` into the message and a location
/// in `file`. Messages without a position are returned whole.
pub(crate) fn split_syntax_position(message: &str, file: &str) -> (String, Option<Location>) {
    let parsed = message.rsplit_once(" at line ").and_then(|(what, pos)| {
        let (line, col) = pos.split_once(", col ")?;
        let line: u32 = line.trim().parse().ok()?;
        let col: u32 = col.trim().parse().ok()?;
        Some((what.to_owned(), line, col))
    });
    match parsed {
        Some((what, line, column)) => (
            what,
            Some(Location {
                file: file.to_owned(),
                line,
                column: Some(column),
            }),
        ),
        None => (message.to_owned(), None),
    }
}

/// A JS `Error` carrying an [`ErrorData`]'s name and message (to reject a host call with).
pub(crate) fn to_js_error(ctx: &mut Context, e: &ErrorData) -> JsValue {
    let error = JsNativeError::error()
        .with_message(e.message.clone())
        .into_opaque(ctx);
    if !e.name.is_empty() && e.name != "Error" {
        // Defining an own property on a fresh error object cannot fail or run script code.
        let _ = error.create_data_property_or_throw(
            js_string!("name"),
            js_string!(e.name.as_str()),
            ctx,
        );
    }
    error.into()
}

/// A JS error to throw from a Rust function called by script code.
pub(crate) fn throw(ctx: &mut Context, e: &ErrorData) -> JsError {
    JsError::from_opaque(to_js_error(ctx, e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn syntax_positions() {
        let (m, l) = split_syntax_position(
            "expected token ';', got 'x' in lexical declaration at line 2, col 9",
            "a.js",
        );
        assert_eq!(m, "expected token ';', got 'x' in lexical declaration");
        let l = l.unwrap();
        assert_eq!((l.file.as_str(), l.line, l.column), ("a.js", 2, Some(9)));
        let (m, l) = split_syntax_position("abrupt end", "a.js");
        assert_eq!(m, "abrupt end");
        assert!(l.is_none());
    }
}

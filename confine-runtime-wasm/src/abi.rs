//! The confine ABI, version 1: how [`Value`]s cross into and out of a module's linear memory.
//!
//! Values travel as UTF-8 JSON (see the crate docs for the whole contract). JSON because
//! every language that compiles to WebAssembly has a parser for it; the price is the lossy
//! mapping of `serde_json::Value::from(Value)` (`undefined` → `null`, bytes → arrays of
//! numbers), which the crate docs state.
//!
//! Everything here parses bytes a module wrote, so nothing may panic: malformed input is an
//! [`ErrorData`].

use confine_runtime_abstract::{ErrorData, ErrorKind, Value};
use serde_json::{json, Map as JsonMap, Value as Json};

/// Prefix of the exports that follow the ABI: host export `add` is module export
/// `confine:add`.
pub(crate) const EXPORT_PREFIX: &str = "confine:";
/// The module's allocator: `(len: i32) -> i32`, returns a pointer to `len` writable bytes.
pub(crate) const ALLOC: &str = "confine_alloc";
/// Optional: `(ptr: i32, len: i32)`, frees a result buffer the module returned.
pub(crate) const FREE: &str = "confine_free";
/// The import module holding the host functions.
pub(crate) const IMPORT_MODULE: &str = "confine";

/// A call's arguments as the JSON array a module receives.
pub(crate) fn encode_args(args: Vec<Value>) -> Vec<u8> {
    let array = Json::Array(args.into_iter().map(Json::from).collect());
    serde_json::to_vec(&array).unwrap_or_else(|_| b"[]".to_vec())
}

/// A host call's outcome as the envelope a module receives: `{"ok": v}` or
/// `{"error": {"name", "message", "kind"}}`.
pub(crate) fn encode_outcome(result: Result<Value, ErrorData>) -> Vec<u8> {
    let envelope = match result {
        Ok(v) => json!({ "ok": Json::from(v) }),
        Err(e) => json!({ "error": {
            "name": e.name,
            "message": e.message,
            "kind": e.kind.as_str(),
        }}),
    };
    // Serialising a `serde_json::Value` to memory only fails for non-string map keys, which
    // it cannot hold; the fallback is still a well-formed envelope.
    serde_json::to_vec(&envelope).unwrap_or_else(|_| {
        br#"{"error":{"name":"Error","message":"unencodable result"}}"#.to_vec()
    })
}

/// The host-call arguments a module sent: a JSON array.
pub(crate) fn decode_args(bytes: &[u8]) -> Result<Vec<Value>, ErrorData> {
    match serde_json::from_slice::<Json>(bytes) {
        Ok(Json::Array(items)) => Ok(items.into_iter().map(Value::from).collect()),
        Ok(other) => Err(conversion(format!(
            "host call arguments must be a JSON array, not {}",
            json_type(&other)
        ))),
        Err(e) => Err(conversion(format!(
            "host call arguments are not valid JSON: {e}"
        ))),
    }
}

/// What an ABI export returned: the envelope `{"ok": v}` or `{"error": {...}}`.
pub(crate) fn decode_outcome(export: &str, bytes: &[u8]) -> Result<Value, ErrorData> {
    let malformed = |why: String| {
        conversion(format!(
            "export `{export}` returned a malformed result ({why}); expected {{\"ok\": value}} \
             or {{\"error\": {{\"name\", \"message\"}}}}"
        ))
    };
    let json: Json = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    let Json::Object(mut map) = json else {
        return Err(malformed(format!("a JSON {}", json_type(&json))));
    };
    if let Some(v) = map.remove("ok") {
        return Ok(Value::from(v));
    }
    match map.remove("error") {
        Some(Json::Object(e)) => Err(thrown(&e)),
        Some(Json::String(message)) => Err(ErrorData::new(ErrorKind::Thrown, "Error", message)),
        _ => Err(malformed("neither `ok` nor `error`".to_owned())),
    }
}

/// An error a module reported through the envelope: script-level, like a JS `throw`.
fn thrown(e: &JsonMap<String, Json>) -> ErrorData {
    let text = |key: &str| e.get(key).and_then(Json::as_str).map(str::to_owned);
    let mut data = ErrorData::new(
        ErrorKind::Thrown,
        text("name").unwrap_or_else(|| "Error".to_owned()),
        text("message").unwrap_or_default(),
    );
    data.stack = text("stack");
    data
}

fn conversion(message: String) -> ErrorData {
    ErrorData::new(ErrorKind::Conversion, "TypeError", message)
}

fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn outcome_round_trip() {
        let v = Value::from_iter([("a".to_owned(), Value::from(1))]);
        let bytes = encode_outcome(Ok(v.clone()));
        assert_eq!(decode_outcome("f", &bytes), Ok(v));
        let bytes = encode_outcome(Err(ErrorData::new(ErrorKind::HostFunction, "E", "m")));
        let e = decode_outcome("f", &bytes).unwrap_err();
        assert_eq!(
            (e.kind, e.name.as_str(), e.message.as_str()),
            (ErrorKind::Thrown, "E", "m")
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"{",
            b"[1]",
            b"{}",
            b"\xff\xfe",
            b"{\"error\": 3}",
        ] {
            assert_eq!(
                decode_outcome("f", bytes).unwrap_err().kind,
                ErrorKind::Conversion
            );
        }
        assert!(decode_args(b"{\"a\":1}").is_err());
        assert!(decode_args(&[b'['; 100_000]).is_err());
        assert_eq!(decode_args(b"[1,\"x\",null]").map(|a| a.len()), Ok(3));
    }
}

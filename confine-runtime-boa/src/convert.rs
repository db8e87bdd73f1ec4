//! Conversions between JS values and confine [`Value`]s.
//!
//! JS → [`Value`] follows `JSON.stringify` where the two differ from a plain copy, so a result
//! looks the same whichever way a script author thinks about it (and the same as on QuickJS):
//!
//! * `undefined` stays [`Value::Undefined`] (a `Value` can hold it; JSON would drop it);
//! * numbers are [`Value::Number`], BigInts [`Value::BigInt`] (outside `i128`: an error);
//! * `Uint8Array` and `ArrayBuffer` are [`Value::Bytes`] (other typed arrays: plain objects);
//! * an object with a `toJSON` method is replaced by its result (so a `Date` becomes its ISO
//!   string);
//! * objects keep their own enumerable string-keyed properties in order; properties holding
//!   functions or symbols are skipped; functions and symbols elsewhere become `undefined`;
//! * cycles and nesting deeper than [`MAX_DEPTH`] are a [`ErrorKind::Conversion`] error, as is
//!   a value with more than [`MAX_NODES`] parts — never a stack overflow or a hang.
//!
//! [`Value`] → JS builds fresh plain objects, arrays, `Uint8Array`s, BigInts and strings.

use crate::errors;
use boa_engine::{
    builtins::object::OrdinaryObject,
    builtins::typed_array::TypedArrayKind,
    js_string,
    object::builtins::{JsArray, JsArrayBuffer, JsTypedArray, JsUint8Array},
    Context, JsBigInt, JsObject, JsString, JsValue, JsVariant,
};
use confine_runtime_abstract::{value::MAX_DEPTH, ErrorData, ErrorKind, Map, Value};

/// How many values (scalars, arrays, objects) one conversion may produce.
pub(crate) const MAX_NODES: usize = 1 << 22;

/// A [`ErrorKind::Conversion`] error named `TypeError`.
pub(crate) fn conversion_error(message: impl Into<String>) -> ErrorData {
    ErrorData::new(ErrorKind::Conversion, "TypeError", message)
}

/// Converts a JS value to a confine [`Value`]. Script code may run (getters, `toJSON`); an
/// exception it throws is returned as a [`ErrorKind::Thrown`] error.
pub(crate) fn to_value(ctx: &mut Context, v: &JsValue) -> Result<Value, ErrorData> {
    ToValue {
        path: Vec::new(),
        nodes: 0,
    }
    .convert(ctx, v, 0)
}

struct ToValue {
    /// The objects being converted, outermost first: meeting one again is a cycle.
    path: Vec<JsObject>,
    nodes: usize,
}

impl ToValue {
    fn convert(
        &mut self,
        ctx: &mut Context,
        v: &JsValue,
        depth: usize,
    ) -> Result<Value, ErrorData> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(conversion_error(format!(
                "value too large: more than {MAX_NODES} parts"
            )));
        }
        Ok(match v.variant() {
            JsVariant::Undefined => Value::Undefined,
            JsVariant::Null => Value::Null,
            JsVariant::Boolean(b) => Value::Bool(b),
            JsVariant::Integer32(i) => Value::Number(f64::from(i)),
            JsVariant::Float64(f) => Value::Number(f),
            JsVariant::BigInt(b) => Value::BigInt(bigint_to_i128(&b)?),
            JsVariant::String(s) => Value::String(s.to_std_string_lossy()),
            JsVariant::Symbol(_) => Value::Undefined,
            JsVariant::Object(obj) if obj.is_callable() => Value::Undefined,
            JsVariant::Object(obj) => return self.object(ctx, obj, depth),
        })
    }

    fn object(
        &mut self,
        ctx: &mut Context,
        obj: JsObject,
        depth: usize,
    ) -> Result<Value, ErrorData> {
        if let Some(bytes) = bytes_of(ctx, &obj) {
            return Ok(Value::Bytes(bytes));
        }
        if depth >= MAX_DEPTH || self.path.iter().any(|o| JsObject::equals(o, &obj)) {
            return Err(conversion_error("cyclic or too deeply nested value"));
        }
        self.path.push(obj.clone());
        let result = self.object_inner(ctx, &obj, depth);
        self.path.pop();
        result
    }

    fn object_inner(
        &mut self,
        ctx: &mut Context,
        obj: &JsObject,
        depth: usize,
    ) -> Result<Value, ErrorData> {
        let to_json = obj
            .get(js_string!("toJSON"), ctx)
            .map_err(|e| errors::caught(ctx, e))?;
        if let Some(f) = to_json.as_callable() {
            let replaced = f
                .call(&obj.clone().into(), &[js_string!().into()], ctx)
                .map_err(|e| errors::caught(ctx, e))?;
            return self.convert(ctx, &replaced, depth + 1);
        }
        if obj.is_array() {
            let len = obj
                .get(js_string!("length"), ctx)
                .map_err(|e| errors::caught(ctx, e))?;
            let len = len.as_number().unwrap_or(0.0);
            if len > MAX_NODES as f64 {
                return Err(conversion_error(format!(
                    "value too large: an array of {len} elements"
                )));
            }
            let len = len as u32;
            let mut items = Vec::with_capacity(len as usize);
            for i in 0..len {
                let item = obj.get(i, ctx).map_err(|e| errors::caught(ctx, e))?;
                items.push(self.convert(ctx, &item, depth + 1)?);
            }
            return Ok(Value::Array(items));
        }
        let mut map = Map::new();
        for key in own_keys(ctx, obj)? {
            let item = obj
                .get(key.clone(), ctx)
                .map_err(|e| errors::caught(ctx, e))?;
            if item.is_callable() || item.is_symbol() {
                continue;
            }
            let item = self.convert(ctx, &item, depth + 1)?;
            map.insert(key.to_std_string_lossy(), item);
        }
        Ok(Value::Object(map))
    }
}

/// The object's own enumerable string keys, in property order (`Object.keys`, called
/// directly so a script that replaced `Object.keys` changes nothing).
pub(crate) fn own_keys(ctx: &mut Context, obj: &JsObject) -> Result<Vec<JsString>, ErrorData> {
    let keys = OrdinaryObject::keys(&JsValue::undefined(), &[obj.clone().into()], ctx)
        .map_err(|e| errors::caught(ctx, e))?;
    let Some(keys) = keys.as_object() else {
        return Ok(Vec::new());
    };
    let len = JsArray::from_object(keys.clone())
        .and_then(|a| a.length(ctx))
        .map_err(|e| errors::caught(ctx, e))?;
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    for i in 0..len {
        // A fresh array of strings: reading it runs no script code.
        let key = keys.get(i, ctx).map_err(|e| errors::caught(ctx, e))?;
        if let Some(key) = key.as_string() {
            out.push(key);
        }
    }
    Ok(out)
}

/// A copy of the bytes of an `ArrayBuffer` or `Uint8Array`; `None` for anything else.
///
/// A detached buffer (or a view out of its buffer's bounds) reads as empty. The bytes are
/// copied before any script can run again, so a script cannot change them under us.
pub(crate) fn bytes_of(ctx: &mut Context, obj: &JsObject) -> Option<Vec<u8>> {
    if let Ok(buffer) = JsArrayBuffer::from_object(obj.clone()) {
        return Some(buffer.to_vec().unwrap_or_default());
    }
    let array = JsTypedArray::from_object(obj.clone()).ok()?;
    if array.kind() != Some(TypedArrayKind::Uint8) {
        return None;
    }
    // These call the built-in getters on the array itself, not properties a script could
    // have replaced; they fail only for a detached or out-of-bounds view.
    let (Ok(offset), Ok(len), Ok(buffer)) = (
        array.byte_offset(ctx),
        array.byte_length(ctx),
        array.buffer(ctx),
    ) else {
        return Some(Vec::new());
    };
    let from_buffer = buffer
        .as_object()
        .and_then(|b| JsArrayBuffer::from_object(b).ok())
        .map(|b| {
            b.data()
                .and_then(|data| {
                    data.get(offset..offset.checked_add(len)?)
                        .map(<[u8]>::to_vec)
                })
                .unwrap_or_default()
        });
    match from_buffer {
        Some(bytes) => Some(bytes),
        // A view on a SharedArrayBuffer: read it element by element.
        None => {
            let mut out = Vec::with_capacity(len);
            for i in 0..len {
                let byte = u32::try_from(i)
                    .ok()
                    .and_then(|i| array.at(i64::from(i), ctx).ok())
                    .and_then(|v| v.as_number())
                    .unwrap_or(0.0);
                out.push(byte as u8);
            }
            Some(out)
        }
    }
}

fn bigint_to_i128(b: &JsBigInt) -> Result<i128, ErrorData> {
    // `to_i128` saturates to `i128::MAX`; check through the decimal text instead.
    let text = b.to_string();
    text.parse::<i128>().map_err(|_| {
        conversion_error(format!(
            "BigInt {text}n is outside the range confine carries (128-bit signed)"
        ))
    })
}

/// Converts a confine [`Value`] to a fresh JS value.
pub(crate) fn to_js(ctx: &mut Context, v: &Value) -> Result<JsValue, ErrorData> {
    to_js_at(ctx, v, 0)
}

fn to_js_at(ctx: &mut Context, v: &Value, depth: usize) -> Result<JsValue, ErrorData> {
    Ok(match v {
        Value::Undefined => JsValue::undefined(),
        Value::Null => JsValue::null(),
        Value::Bool(b) => JsValue::from(*b),
        Value::Number(n) => JsValue::from(*n),
        Value::BigInt(i) => JsValue::from(JsBigInt::from(*i)),
        Value::String(s) => JsValue::from(JsString::from(s.as_str())),
        Value::Bytes(b) => JsUint8Array::from_iter(b.iter().copied(), ctx)
            .map_err(|e| errors::caught(ctx, e))?
            .into(),
        Value::Array(items) => {
            check_depth(depth)?;
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                values.push(to_js_at(ctx, item, depth + 1)?);
            }
            JsArray::from_iter(values, ctx).into()
        }
        Value::Object(map) => {
            check_depth(depth)?;
            let obj = JsObject::with_object_proto(ctx.intrinsics());
            for (key, item) in map {
                let item = to_js_at(ctx, item, depth + 1)?;
                // Defining (not assigning) keeps a key like `__proto__` an ordinary property
                // instead of calling the prototype setter.
                obj.create_data_property_or_throw(JsString::from(key.as_str()), item, ctx)
                    .map_err(|e| errors::caught(ctx, e))?;
            }
            obj.into()
        }
    })
}

fn check_depth(depth: usize) -> Result<(), ErrorData> {
    if depth >= MAX_DEPTH {
        Err(conversion_error(format!(
            "value nests deeper than {MAX_DEPTH} levels"
        )))
    } else {
        Ok(())
    }
}

/// A string property of an object, for reading error names and messages: `None` when missing,
/// not a string, or when reading it throws (the exception is discarded).
pub(crate) fn string_prop(ctx: &mut Context, obj: &JsObject, key: &str) -> Option<String> {
    obj.get(JsString::from(key), ctx)
        .ok()
        .and_then(|v| v.as_string())
        .map(|s| s.to_std_string_lossy())
}

//! Conversions between JS values and confine [`Value`]s.
//!
//! JS → [`Value`] follows `JSON.stringify` where the two differ from a plain copy, so a result
//! looks the same whichever way a script author thinks about it:
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

use crate::{errors, ffi};
use confine_runtime_abstract::{value::MAX_DEPTH, ErrorData, ErrorKind, Map, Value};
use rquickjs::{
    atom::PredefinedAtom, function::This, object::Property, Array, Atom, Coerced, Ctx, FromJs,
    Object, Type, TypedArray, Value as JsValue,
};

/// How many values (scalars, arrays, objects) one conversion may produce.
pub(crate) const MAX_NODES: usize = 1 << 22;

/// A [`ErrorKind::Conversion`] error named `TypeError`.
pub(crate) fn conversion_error(message: impl Into<String>) -> ErrorData {
    ErrorData::new(ErrorKind::Conversion, "TypeError", message)
}

/// Converts a JS value to a confine [`Value`]. Script code may run (getters, `toJSON`); an
/// exception it throws is returned as a [`ErrorKind::Thrown`] error.
pub(crate) fn to_value<'js>(ctx: &Ctx<'js>, v: &JsValue<'js>) -> Result<Value, ErrorData> {
    ToValue {
        ctx,
        path: Vec::new(),
        nodes: 0,
    }
    .convert(v, 0)
}

struct ToValue<'a, 'js> {
    ctx: &'a Ctx<'js>,
    /// The objects being converted, outermost first: meeting one again is a cycle.
    path: Vec<Object<'js>>,
    nodes: usize,
}

impl<'js> ToValue<'_, 'js> {
    fn convert(&mut self, v: &JsValue<'js>, depth: usize) -> Result<Value, ErrorData> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(conversion_error(format!(
                "value too large: more than {MAX_NODES} parts"
            )));
        }
        Ok(match v.type_of() {
            Type::Uninitialized | Type::Undefined => Value::Undefined,
            Type::Null => Value::Null,
            Type::Bool => Value::Bool(v.as_bool().unwrap_or(false)),
            Type::Int | Type::Float => Value::Number(v.as_number().unwrap_or(f64::NAN)),
            Type::BigInt => Value::BigInt(bigint_to_i128(self.ctx, v)?),
            Type::String => Value::String(ffi::string_lossy(v).unwrap_or_default()),
            Type::Symbol | Type::Function | Type::Constructor | Type::Module | Type::Unknown => {
                Value::Undefined
            }
            Type::Array | Type::Object | Type::Exception | Type::Promise | Type::Proxy => {
                return self.object(v, depth)
            }
        })
    }

    fn object(&mut self, v: &JsValue<'js>, depth: usize) -> Result<Value, ErrorData> {
        if let Some(bytes) = ffi::bytes_of(v) {
            return Ok(Value::Bytes(bytes));
        }
        let Some(obj) = v.as_object() else {
            return Ok(Value::Undefined);
        };
        if depth >= MAX_DEPTH || self.path.contains(obj) {
            return Err(conversion_error("cyclic or too deeply nested value"));
        }
        self.path.push(obj.clone());
        let result = self.object_inner(obj, v, depth);
        self.path.pop();
        result
    }

    fn object_inner(
        &mut self,
        obj: &Object<'js>,
        v: &JsValue<'js>,
        depth: usize,
    ) -> Result<Value, ErrorData> {
        let ctx = self.ctx;
        let to_json: JsValue = obj
            .get(PredefinedAtom::ToJSON)
            .map_err(|e| errors::caught(ctx, e))?;
        if let Some(f) = to_json.as_function() {
            let replaced: JsValue = f
                .call((This(obj.clone()), ""))
                .map_err(|e| errors::caught(ctx, e))?;
            return self.convert(&replaced, depth + 1);
        }
        if v.is_array() {
            let len: JsValue = obj
                .get(PredefinedAtom::Length)
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
                let item: JsValue = obj.get(i).map_err(|e| errors::caught(ctx, e))?;
                items.push(self.convert(&item, depth + 1)?);
            }
            return Ok(Value::Array(items));
        }
        let mut map = Map::new();
        for key in obj.keys::<Atom>() {
            let key = key.map_err(|e| errors::caught(ctx, e))?;
            let item: JsValue = obj.get(key.clone()).map_err(|e| errors::caught(ctx, e))?;
            if item.is_function() || item.is_symbol() {
                continue;
            }
            let key = key
                .to_js_string()
                .ok()
                .and_then(|s| ffi::string_lossy(s.as_value()))
                .unwrap_or_default();
            let item = self.convert(&item, depth + 1)?;
            map.insert(key, item);
        }
        Ok(Value::Object(map))
    }
}

fn bigint_to_i128<'js>(ctx: &Ctx<'js>, v: &JsValue<'js>) -> Result<i128, ErrorData> {
    // Converting a BigInt primitive to a string runs no script code.
    let text = Coerced::<String>::from_js(ctx, v.clone()).map_err(|e| errors::caught(ctx, e))?;
    text.0.parse::<i128>().map_err(|_| {
        conversion_error(format!(
            "BigInt {}n is outside the range confine carries (128-bit signed)",
            text.0
        ))
    })
}

/// Converts a confine [`Value`] to a fresh JS value.
pub(crate) fn to_js<'js>(ctx: &Ctx<'js>, v: &Value) -> Result<JsValue<'js>, ErrorData> {
    to_js_at(ctx, v, 0).map_err(|e| match e {
        ToJsError::Data(d) => d,
        ToJsError::Engine(e) => errors::caught(ctx, e),
    })
}

enum ToJsError {
    Data(ErrorData),
    Engine(rquickjs::Error),
}

impl From<rquickjs::Error> for ToJsError {
    fn from(e: rquickjs::Error) -> Self {
        ToJsError::Engine(e)
    }
}

fn to_js_at<'js>(ctx: &Ctx<'js>, v: &Value, depth: usize) -> Result<JsValue<'js>, ToJsError> {
    Ok(match v {
        Value::Undefined => JsValue::new_undefined(ctx.clone()),
        Value::Null => JsValue::new_null(ctx.clone()),
        Value::Bool(b) => JsValue::new_bool(ctx.clone(), *b),
        Value::Number(n) => number(ctx, *n),
        Value::BigInt(i) => match i64::try_from(*i) {
            Ok(small) => JsValue::new_big_int(ctx.clone(), small)?,
            // A BigInt literal builds the value without calling anything a script could have
            // replaced (unlike the global `BigInt`).
            Err(_) => ctx.eval::<JsValue, _>(format!("{i}n"))?,
        },
        Value::String(s) => rquickjs::String::from_str(ctx.clone(), s)?.into_value(),
        Value::Bytes(b) => TypedArray::<u8>::new_copy(ctx.clone(), b)?.into_value(),
        Value::Array(items) => {
            check_depth(depth)?;
            let array = Array::new(ctx.clone())?;
            for (i, item) in items.iter().enumerate() {
                array.set(i, to_js_at(ctx, item, depth + 1)?)?;
            }
            array.into_value()
        }
        Value::Object(map) => {
            check_depth(depth)?;
            let obj = Object::new(ctx.clone())?;
            for (key, item) in map {
                // Defining (not assigning) keeps a key like `__proto__` an ordinary property
                // instead of calling the prototype setter.
                let item = to_js_at(ctx, item, depth + 1)?;
                obj.prop(
                    key.as_str(),
                    Property::from(item).writable().enumerable().configurable(),
                )?;
            }
            obj.into_value()
        }
    })
}

fn check_depth(depth: usize) -> Result<(), ToJsError> {
    if depth >= MAX_DEPTH {
        Err(ToJsError::Data(conversion_error(format!(
            "value nests deeper than {MAX_DEPTH} levels"
        ))))
    } else {
        Ok(())
    }
}

/// A JS number, keeping `-0` (rquickjs's `new_number` would store it as the integer 0).
fn number<'js>(ctx: &Ctx<'js>, n: f64) -> JsValue<'js> {
    if n == 0.0 && n.is_sign_negative() {
        JsValue::new_float(ctx.clone(), n)
    } else {
        JsValue::new_number(ctx.clone(), n)
    }
}

/// A string property of an object, for reading error names and messages: `None` when missing,
/// not a string, or when reading it throws (the exception is discarded).
pub(crate) fn string_prop<'js>(ctx: &Ctx<'js>, obj: &Object<'js>, key: &str) -> Option<String> {
    match obj.get::<_, JsValue>(key) {
        Ok(v) => ffi::string_lossy(&v),
        Err(_) => {
            let _ = ctx.catch();
            None
        }
    }
}

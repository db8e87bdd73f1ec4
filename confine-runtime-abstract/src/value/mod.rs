//! [`Value`]: the data that crosses between host and guest.
//!
//! bincode cannot carry `serde_json::Value` (it needs a self-describing format), so confine has
//! its own value type, close to what a JS engine can produce: `undefined`, `null`, booleans,
//! numbers, big integers, strings, bytes, arrays and objects (insertion-ordered).
//!
//! Conversions:
//! * any `serde` type: [`to_value`] and [`from_value`];
//! * `serde_json::Value`: `From` in both directions (bytes become arrays of numbers,
//!   `undefined` becomes `null`);
//! * Rust primitives: `From<bool>`, `From<f64>`, `From<&str>`, ... .
//!
//! Nesting is bounded by [`MAX_DEPTH`] when a value is decoded from the wire, so a hostile peer
//! cannot overflow the stack with a deeply nested frame.

mod convert;
mod de;
mod ser;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::cell::Cell;

pub use de::from_value;
pub use ser::to_value;

/// How deep arrays and objects may nest in a decoded [`Value`].
pub const MAX_DEPTH: usize = 128;

/// An insertion-ordered map of property names to values, like a JS object's own properties.
pub type Map = IndexMap<String, Value>;

/// A value that crosses the host/guest boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub enum Value {
    /// JS `undefined` (also what a function without `return` gives).
    #[default]
    Undefined,
    /// JS `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A JS number (IEEE 754 double).
    Number(f64),
    /// A JS `BigInt` in `i128` range, or a Rust integer that a double cannot hold exactly.
    BigInt(i128),
    /// A string.
    String(String),
    /// Binary data (a JS `Uint8Array` or `ArrayBuffer`).
    Bytes(#[serde(with = "bytes_repr")] Vec<u8>),
    /// An array.
    Array(#[serde(deserialize_with = "depth::array")] Vec<Value>),
    /// A plain object.
    Object(#[serde(deserialize_with = "depth::object")] Map),
}

impl Value {
    /// A short name of this value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Undefined => "undefined",
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::BigInt(_) => "bigint",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is a number (or a big integer a double holds exactly).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Number(n) => Some(n),
            Value::BigInt(i) if (i as f64) as i128 == i => Some(i as f64),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The object's properties, if this is an object.
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// `true` for `undefined` and `null`.
    pub fn is_nullish(&self) -> bool {
        matches!(self, Value::Undefined | Value::Null)
    }

    /// Property `key` of an object; `None` for anything else.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object().and_then(|m| m.get(key))
    }
}

/// Bytes go over the wire as one length-prefixed blob, not a sequence of numbers.
mod bytes_repr {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Decoding depth guard: nested arrays and objects count against [`MAX_DEPTH`].
mod depth {
    use super::{Map, Value, DEPTH, MAX_DEPTH};
    use serde::{de::Error, Deserialize, Deserializer};

    struct Guard;

    impl Guard {
        fn enter<E: Error>() -> Result<Guard, E> {
            DEPTH.with(|d| {
                if d.get() >= MAX_DEPTH {
                    Err(E::custom(format_args!(
                        "value nests deeper than {MAX_DEPTH} levels"
                    )))
                } else {
                    d.set(d.get() + 1);
                    Ok(Guard)
                }
            })
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        }
    }

    pub fn array<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Value>, D::Error> {
        let _g = Guard::enter()?;
        Vec::<Value>::deserialize(d)
    }

    pub fn object<'de, D: Deserializer<'de>>(d: D) -> Result<Map, D::Error> {
        let _g = Guard::enter()?;
        Map::deserialize(d)
    }
}

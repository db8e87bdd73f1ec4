//! [`Value`]: the data that crosses between host and guest.
//!
//! bincode cannot carry `serde_json::Value` (it needs a self-describing format), so confine has
//! its own value type, close to what a JS engine can produce: `undefined`, `null`, booleans,
//! numbers, big integers, strings, bytes, arrays and objects (insertion-ordered).
//!
//! Conversions:
//! * any `serde` type: [`to_value`] and [`from_value`], which
//!   fail with a [`ValueError`];
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
use std::{cell::Cell, fmt};

pub use de::{from_value, ValueDeserializer};
pub use ser::to_value;

/// How deep arrays and objects may nest in a decoded [`Value`].
pub const MAX_DEPTH: usize = 128;

/// An insertion-ordered map of property names to values, like a JS object's own properties.
pub type Map = IndexMap<String, Value>;

/// The name [`Value`]'s derived serde impls pass for the enum. [`to_value`] and [`from_value`]
/// recognise it and map a `Value` to itself instead of to its externally tagged form. Formats
/// that do not write enum names (bincode, JSON) are unaffected by it.
const VALUE_ENUM: &str = "$confine::Value";

/// A value that crosses the host/guest boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename = "$confine::Value")]
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
            // `i128::MAX as f64` rounds up to 2^127, which saturates back to `i128::MAX`.
            Value::BigInt(i) if i != i128::MAX && (i as f64) as i128 == i => Some(i as f64),
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

/// Why a value could not be converted by [`to_value`] or [`from_value`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// Arrays and objects nest deeper than [`MAX_DEPTH`] (or serde wrappers such as `Option`
    /// and newtypes recurse far deeper than that).
    #[error("value nests deeper than {limit} levels")]
    TooDeep {
        /// The limit that was hit.
        limit: usize,
    },
    /// A map key serialized to something that cannot be an object property name.
    #[error("map key must be a string, not {found}")]
    KeyMustBeAString {
        /// What the key was.
        found: &'static str,
    },
    /// A map key was a NaN or infinite float.
    #[error("map key must be a finite number")]
    NonFiniteKey,
    /// A `u128` above `i128::MAX`, which no [`Value`] can hold.
    #[error("integer {0} is too large for a bigint")]
    IntegerOutOfRange(u128),
    /// The value has the wrong type for what was asked of it.
    #[error("invalid type: {unexpected}, expected {expected}")]
    InvalidType {
        /// What was found.
        unexpected: String,
        /// What was expected.
        expected: String,
    },
    /// The value has the right type but an unacceptable value.
    #[error("invalid value: {unexpected}, expected {expected}")]
    InvalidValue {
        /// What was found.
        unexpected: String,
        /// What was expected.
        expected: String,
    },
    /// An array (or tuple) has the wrong number of elements.
    #[error("invalid length {len}, expected {expected}")]
    InvalidLength {
        /// The number of elements found.
        len: usize,
        /// What was expected.
        expected: String,
    },
    /// An enum variant name that the type does not have.
    #[error("unknown variant `{variant}`, expected {}", OneOf(expected))]
    UnknownVariant {
        /// The name found.
        variant: String,
        /// The names the type accepts.
        expected: &'static [&'static str],
    },
    /// A property the struct does not have (with `#[serde(deny_unknown_fields)]`).
    #[error("unknown field `{field}`, expected {}", OneOf(expected))]
    UnknownField {
        /// The name found.
        field: String,
        /// The names the type accepts.
        expected: &'static [&'static str],
    },
    /// A property the struct requires is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A property appears twice.
    #[error("duplicate field `{0}`")]
    DuplicateField(&'static str),
    /// Any other message from a `Serialize` or `Deserialize` impl.
    #[error("{0}")]
    Custom(String),
}

/// Formats a list of names the way serde does: "one of `a`, `b`".
struct OneOf(&'static [&'static str]);

impl fmt::Display for OneOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [] => f.write_str("nothing (there are none)"),
            [one] => write!(f, "`{one}`"),
            [first, rest @ ..] => {
                write!(f, "one of `{first}`")?;
                rest.iter().try_for_each(|n| write!(f, ", `{n}`"))
            }
        }
    }
}

impl serde::ser::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError::Custom(msg.to_string())
    }
}

impl serde::de::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError::Custom(msg.to_string())
    }

    fn invalid_type(unexp: serde::de::Unexpected<'_>, exp: &dyn serde::de::Expected) -> Self {
        ValueError::InvalidType {
            unexpected: unexp.to_string(),
            expected: exp.to_string(),
        }
    }

    fn invalid_value(unexp: serde::de::Unexpected<'_>, exp: &dyn serde::de::Expected) -> Self {
        ValueError::InvalidValue {
            unexpected: unexp.to_string(),
            expected: exp.to_string(),
        }
    }

    fn invalid_length(len: usize, exp: &dyn serde::de::Expected) -> Self {
        ValueError::InvalidLength {
            len,
            expected: exp.to_string(),
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        ValueError::UnknownVariant {
            variant: variant.to_owned(),
            expected,
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        ValueError::UnknownField {
            field: field.to_owned(),
            expected,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        ValueError::MissingField(field)
    }

    fn duplicate_field(field: &'static str) -> Self {
        ValueError::DuplicateField(field)
    }
}

impl From<ValueError> for crate::ErrorData {
    /// A [`crate::ErrorKind::Conversion`] error named `TypeError`.
    fn from(e: ValueError) -> Self {
        crate::ErrorData::new(crate::ErrorKind::Conversion, "TypeError", e.to_string())
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

//! Conversions between [`Value`] and Rust / `serde_json` values, and `Display`.
//!
//! Integers follow one rule everywhere (here and in [`crate::to_value`]): a [`Value::Number`]
//! when `|v| <= 2^53` (where a double is exact and JS integer arithmetic is safe), a
//! [`Value::BigInt`] otherwise. There is deliberately no `From<Vec<u8>>`: use [`Value::bytes`]
//! for binary data, or collect numbers into an array.

use super::{Map, Value, ValueError, MAX_DEPTH};
use std::fmt;

/// `2^53`: the largest magnitude for which every integer is a double.
const MAX_EXACT: u128 = 1 << 53;

impl Value {
    /// Binary data: a [`Value::Bytes`].
    pub fn bytes(b: impl Into<Vec<u8>>) -> Value {
        Value::Bytes(b.into())
    }
}

impl From<i128> for Value {
    /// A [`Value::Number`] when `|n| <= 2^53`, else a [`Value::BigInt`].
    fn from(n: i128) -> Self {
        if n.unsigned_abs() <= MAX_EXACT {
            Value::Number(n as f64)
        } else {
            Value::BigInt(n)
        }
    }
}

macro_rules! from_int {
    ($($t:ty)*) => {
        $(
            impl From<$t> for Value {
                /// A [`Value::Number`] when `|n| <= 2^53`, else a [`Value::BigInt`].
                fn from(n: $t) -> Self {
                    Value::from(n as i128)
                }
            }
        )*
    };
}

// All of these fit `i128` losslessly (`usize`/`isize` are at most 64 bits on supported targets).
from_int!(i8 i16 i32 i64 isize u8 u16 u32 u64 usize);

impl TryFrom<u128> for Value {
    type Error = ValueError;

    /// As the other integers; fails above `i128::MAX`.
    fn try_from(n: u128) -> Result<Self, ValueError> {
        i128::try_from(n)
            .map(Value::from)
            .map_err(|_| ValueError::IntegerOutOfRange(n))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<f32> for Value {
    fn from(n: f32) -> Self {
        Value::Number(n.into())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Self {
        Value::Array(a)
    }
}

impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Object(m)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` is `null`.
    fn from(o: Option<T>) -> Self {
        o.map_or(Value::Null, Into::into)
    }
}

impl From<()> for Value {
    /// `()` is `undefined`, like a JS function that returns nothing.
    fn from((): ()) -> Self {
        Value::Undefined
    }
}

impl FromIterator<Value> for Value {
    /// An array.
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Self {
        Value::Array(iter.into_iter().collect())
    }
}

impl FromIterator<(String, Value)> for Value {
    /// An object; a repeated key keeps its first position and its last value.
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Value::Object(iter.into_iter().collect())
    }
}

impl From<serde_json::Value> for Value {
    /// Integers as [`Value::from`] an integer does; other numbers are [`Value::Number`].
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    Value::from(u)
                } else if let Some(i) = n.as_i64() {
                    Value::from(i)
                } else {
                    Value::Number(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                Value::Object(o.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

impl From<Value> for serde_json::Value {
    /// Lossy where JSON has no equivalent: `undefined` becomes `null`, bytes an array of
    /// numbers, NaN and the infinities `null`, a big integer outside `i64`/`u64` a string.
    /// A number that is an integer with `|n| <= 2^53` (and not `-0`) becomes a JSON integer.
    fn from(v: Value) -> Self {
        match v {
            Value::Undefined | Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(b),
            Value::Number(n) => {
                let exact = n.fract() == 0.0
                    && n.abs() <= MAX_EXACT as f64
                    && !(n == 0.0 && n.is_sign_negative());
                if exact {
                    // Integral and within 2^53, so the cast is exact.
                    serde_json::Value::Number((n as i64).into())
                } else {
                    serde_json::Number::from_f64(n)
                        .map(serde_json::Value::Number)
                        .unwrap_or(serde_json::Value::Null)
                }
            }
            Value::BigInt(i) => i64::try_from(i)
                .map(|i| serde_json::Value::Number(i.into()))
                .or_else(|_| u64::try_from(i).map(|u| serde_json::Value::Number(u.into())))
                .unwrap_or_else(|_| serde_json::Value::String(i.to_string())),
            Value::String(s) => serde_json::Value::String(s),
            Value::Bytes(b) => serde_json::Value::Array(b.into_iter().map(Into::into).collect()),
            Value::Array(a) => serde_json::Value::Array(a.into_iter().map(Into::into).collect()),
            Value::Object(o) => {
                serde_json::Value::Object(o.into_iter().map(|(k, v)| (k, v.into())).collect())
            }
        }
    }
}

impl fmt::Display for Value {
    /// JSON-like and compact: `{"a":[1,"x",null]}`. Beyond JSON: `undefined`, `NaN`,
    /// `Infinity`, big integers as `12n`, bytes as `<N bytes>`. Arrays and objects nested
    /// deeper than [`MAX_DEPTH`] print as `[…]` and `{…}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        display(self, f, 0)
    }
}

fn display(v: &Value, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
    match v {
        Value::Undefined => f.write_str("undefined"),
        Value::Null => f.write_str("null"),
        Value::Bool(b) => write!(f, "{b}"),
        Value::Number(n) if n.is_nan() => f.write_str("NaN"),
        Value::Number(n) if n.is_infinite() => {
            f.write_str(if *n > 0.0 { "Infinity" } else { "-Infinity" })
        }
        Value::Number(n) => write!(f, "{n}"),
        Value::BigInt(i) => write!(f, "{i}n"),
        Value::String(s) => quoted(s, f),
        Value::Bytes(b) => write!(f, "<{} bytes>", b.len()),
        Value::Array(_) if depth >= MAX_DEPTH => f.write_str("[…]"),
        Value::Object(_) if depth >= MAX_DEPTH => f.write_str("{…}"),
        Value::Array(a) => {
            f.write_str("[")?;
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                display(item, f, depth + 1)?;
            }
            f.write_str("]")
        }
        Value::Object(m) => {
            f.write_str("{")?;
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                quoted(k, f)?;
                f.write_str(":")?;
                display(item, f, depth + 1)?;
            }
            f.write_str("}")
        }
    }
}

/// `s` as a JSON string literal.
fn quoted(s: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    use fmt::Write;
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if u32::from(c) < 0x20 => write!(f, "\\u{:04x}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_the_2_pow_53_rule() {
        const P53: i64 = 1 << 53;
        assert_eq!(Value::from(P53), Value::Number(P53 as f64));
        assert_eq!(Value::from(-P53), Value::Number(-P53 as f64));
        assert_eq!(Value::from(P53 + 1), Value::BigInt(i128::from(P53) + 1));
        assert_eq!(Value::from(-P53 - 1), Value::BigInt(-i128::from(P53) - 1));
        assert_eq!(Value::from(u64::MAX), Value::BigInt(u64::MAX.into()));
        assert_eq!(Value::from(i64::MIN), Value::BigInt(i64::MIN.into()));
        assert_eq!(Value::from(7u8), Value::Number(7.0));
        assert_eq!(Value::try_from(5u128), Ok(Value::Number(5.0)));
        assert_eq!(
            Value::try_from(u128::MAX),
            Err(ValueError::IntegerOutOfRange(u128::MAX))
        );
    }

    #[test]
    fn display_is_json_like() {
        let v: Value = [
            ("s".to_owned(), Value::from("a\"b\\\n\u{1}")),
            ("n".to_owned(), Value::from(1.5)),
            ("i".to_owned(), Value::from(3)),
            ("big".to_owned(), Value::BigInt(1 << 60)),
            ("u".to_owned(), Value::Undefined),
            ("z".to_owned(), Value::Null),
            ("b".to_owned(), Value::bytes([1, 2, 3])),
            (
                "a".to_owned(),
                [
                    Value::from(true),
                    Value::from(f64::NAN),
                    Value::from(f64::NEG_INFINITY),
                ]
                .into_iter()
                .collect(),
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            v.to_string(),
            r#"{"s":"a\"b\\\n\u0001","n":1.5,"i":3,"big":1152921504606846976n,"u":undefined,"z":null,"b":<3 bytes>,"a":[true,NaN,-Infinity]}"#
        );
    }

    #[test]
    fn display_stops_at_max_depth() {
        let mut v = Value::Null;
        for _ in 0..MAX_DEPTH + 5 {
            v = Value::Array(vec![v]);
        }
        let s = v.to_string();
        assert_eq!(s.matches('[').count(), MAX_DEPTH + 1);
        assert!(s.contains("[…]"));
    }
}

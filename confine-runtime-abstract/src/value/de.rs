//! A [`Value`] into any `Deserialize` type: `serde::Deserializer`s over a [`Value`], by value
//! ([`ValueDeserializer`]) and by reference ([`ValueRefDeserializer`]).
//!
//! The format is self-describing (`deserialize_any` works, so untagged and internally tagged
//! enums and `#[serde(flatten)]` do too):
//!
//! * `undefined` and `null` are unit and `None`;
//! * a number visits as `u64`/`i64` when it is integral and within `2^53` (or, when the type
//!   asks for an integer, anywhere in range: so `5.0` becomes an `i32` or a `u8`), as `f64`
//!   otherwise; a big integer as `u64`/`i64` when in range, as
//!   `i128` otherwise;
//! * bytes visit as bytes, or as a sequence of `u8` when a sequence is asked for (`Vec<u8>`);
//! * arrays are sequences, objects are maps (or structs); object keys parse as numbers or
//!   booleans when the key type asks for one;
//! * an enum is a string (unit variant) or an object with one property, the variant's name.

use super::{ser::MAX_RECURSION, Map, Value, ValueError, MAX_DEPTH, VALUE_ENUM};
use serde::de::{
    value::CowStrDeserializer, value::SeqDeserializer, value::StrDeserializer, DeserializeOwned,
    DeserializeSeed, Deserializer, EnumAccess, Error as _, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};
use serde::Deserialize;
use std::borrow::Cow;

/// Converts a [`Value`] into any deserializable type.
///
/// # Errors
/// When the value does not have the shape `T` expects ([`ValueError::InvalidType`],
/// [`ValueError::MissingField`], ...), or nests deeper than [`MAX_DEPTH`]
/// ([`ValueError::TooDeep`]).
pub fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, ValueError> {
    T::deserialize(ValueDeserializer::new(v))
}

/// How deep the value being deserialized sits: `depth` counts enclosing arrays and objects,
/// `level` every nested `deserialize` call (wrappers such as `Option` included).
#[derive(Debug, Clone, Copy)]
struct Nesting {
    depth: usize,
    level: usize,
}

impl Nesting {
    const TOP: Nesting = Nesting { depth: 0, level: 0 };

    /// For a value wrapped without a new array or object (`Some`, newtypes).
    fn wrapped(self) -> Result<Self, ValueError> {
        let level = self.level + 1;
        if level > MAX_RECURSION {
            return Err(ValueError::TooDeep { limit: MAX_DEPTH });
        }
        Ok(Nesting { level, ..self })
    }

    /// For the contents of a new array or object.
    fn nested(self) -> Result<Self, ValueError> {
        let depth = self.depth + 1;
        let level = self.level + 1;
        if depth > MAX_DEPTH || level > MAX_RECURSION {
            return Err(ValueError::TooDeep { limit: MAX_DEPTH });
        }
        Ok(Nesting { depth, level })
    }
}

fn unexpected(v: &Value) -> Unexpected<'_> {
    match v {
        Value::Undefined => Unexpected::Other("undefined"),
        Value::Null => Unexpected::Other("null"),
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => Unexpected::Float(*n),
        Value::BigInt(_) => Unexpected::Other("bigint"),
        Value::String(s) => Unexpected::Str(s),
        Value::Bytes(b) => Unexpected::Bytes(b),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

/// The name of `v`'s variant in [`Value`]'s derived serde impls.
fn variant_name(v: &Value) -> &'static str {
    match v {
        Value::Undefined => "Undefined",
        Value::Null => "Null",
        Value::Bool(_) => "Bool",
        Value::Number(_) => "Number",
        Value::BigInt(_) => "BigInt",
        Value::String(_) => "String",
        Value::Bytes(_) => "Bytes",
        Value::Array(_) => "Array",
        Value::Object(_) => "Object",
    }
}

const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// `2^53`: up to here every integer is a double, and JS integer arithmetic is exact.
const MAX_SAFE: f64 = 9_007_199_254_740_992.0;

/// Visits a number as an integer when it is integral and `|n| <= 2^53` (as
/// `serde_json::Value::from` would make it a JSON integer). With `integer_hint` (the type
/// asked for an integer) any integral number in `u64`/`i64` range does, and `-0` is `0`.
fn visit_number<'de, V: Visitor<'de>>(
    n: f64,
    visitor: V,
    integer_hint: bool,
) -> Result<V::Value, ValueError> {
    // NaN and the infinities have a NaN fractional part.
    if n.fract() == 0.0 {
        let negative_zero = n == 0.0 && n.is_sign_negative();
        let (unsigned, signed) = if integer_hint {
            (
                (0.0..TWO_POW_64).contains(&n),
                (-TWO_POW_63..0.0).contains(&n),
            )
        } else {
            (
                (0.0..=MAX_SAFE).contains(&n) && !negative_zero,
                (-MAX_SAFE..0.0).contains(&n),
            )
        };
        if unsigned {
            return visitor.visit_u64(n as u64);
        }
        if signed {
            return visitor.visit_i64(n as i64);
        }
    }
    visitor.visit_f64(n)
}

fn visit_bigint<'de, V: Visitor<'de>>(i: i128, visitor: V) -> Result<V::Value, ValueError> {
    if let Ok(u) = u64::try_from(i) {
        visitor.visit_u64(u)
    } else if let Ok(s) = i64::try_from(i) {
        visitor.visit_i64(s)
    } else {
        visitor.visit_i128(i)
    }
}

/// Bytes as a sequence of `u8` (for `Vec<u8>`, `[u8; N]`, ...).
fn visit_byte_seq<'de, I, V>(bytes: I, visitor: V) -> Result<V::Value, ValueError>
where
    I: Iterator<Item = u8>,
    V: Visitor<'de>,
{
    let mut seq = SeqDeserializer::new(bytes);
    let out = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(out)
}

fn not_an_enum(v: &Value) -> ValueError {
    ValueError::invalid_type(
        unexpected(v),
        &"a string or an object with one property (an enum)",
    )
}

fn not_one_property() -> ValueError {
    ValueError::invalid_value(
        Unexpected::Map,
        &"an object with exactly one property (an enum)",
    )
}

macro_rules! integer_hints {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
                self.deserialize_integer(visitor)
            }
        )*
    };
}

// --------------------------------------------------------------------------------------------
// By value
// --------------------------------------------------------------------------------------------

/// A `serde::Deserializer` that consumes a [`Value`]; what [`from_value`] uses and what
/// [`IntoDeserializer::into_deserializer`] gives for a [`Value`].
#[derive(Debug)]
pub struct ValueDeserializer {
    value: Value,
    nesting: Nesting,
}

impl ValueDeserializer {
    /// A deserializer for `value`.
    pub fn new(value: Value) -> Self {
        Self::at(value, Nesting::TOP)
    }

    fn at(value: Value, nesting: Nesting) -> Self {
        ValueDeserializer { value, nesting }
    }

    fn deserialize_integer<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.value {
            Value::Number(n) => visit_number(n, visitor, true),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_float<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.value {
            Value::Number(n) => visitor.visit_f64(n),
            // What JS `Number(big)` does: round to the nearest double.
            Value::BigInt(i) => visitor.visit_f64(i as f64),
            _ => self.deserialize_any(visitor),
        }
    }
}

impl IntoDeserializer<'_, ValueError> for Value {
    type Deserializer = ValueDeserializer;

    fn into_deserializer(self) -> ValueDeserializer {
        ValueDeserializer::new(self)
    }
}

fn visit_array<'de, V: Visitor<'de>>(
    items: Vec<Value>,
    nesting: Nesting,
    visitor: V,
) -> Result<V::Value, ValueError> {
    let nesting = nesting.nested()?;
    let len = items.len();
    let mut seq = SeqDe {
        iter: items.into_iter(),
        nesting,
    };
    let out = visitor.visit_seq(&mut seq)?;
    if seq.iter.len() == 0 {
        Ok(out)
    } else {
        Err(ValueError::invalid_length(len, &"fewer elements in array"))
    }
}

fn visit_object<'de, V: Visitor<'de>>(
    map: Map,
    nesting: Nesting,
    visitor: V,
) -> Result<V::Value, ValueError> {
    let nesting = nesting.nested()?;
    let len = map.len();
    let mut access = MapDe {
        iter: map.into_iter(),
        value: None,
        nesting,
    };
    let out = visitor.visit_map(&mut access)?;
    if access.iter.len() == 0 {
        Ok(out)
    } else {
        Err(ValueError::invalid_length(len, &"fewer elements in map"))
    }
}

impl<'de> Deserializer<'de> for ValueDeserializer {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.value {
            Value::Undefined | Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => visit_number(n, visitor, false),
            Value::BigInt(i) => visit_bigint(i, visitor),
            Value::String(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::Array(a) => visit_array(a, self.nesting, visitor),
            Value::Object(m) => visit_object(m, self.nesting, visitor),
        }
    }

    integer_hints! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_float(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_float(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        if self.value.is_nullish() {
            visitor.visit_none()
        } else {
            let nesting = self.nesting.wrapped()?;
            visitor.visit_some(ValueDeserializer::at(self.value, nesting))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        if self.value.is_nullish() {
            visitor.visit_unit()
        } else {
            Err(ValueError::invalid_type(unexpected(&self.value), &visitor))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        let nesting = self.nesting.wrapped()?;
        visitor.visit_newtype_struct(ValueDeserializer::at(self.value, nesting))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.value {
            Value::Bytes(b) => visit_byte_seq(b.into_iter(), visitor),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        if name == VALUE_ENUM {
            return visitor.visit_enum(SelfEnum(self));
        }
        match self.value {
            Value::String(variant) => visitor.visit_enum(EnumDe {
                variant,
                payload: None,
                nesting: self.nesting,
            }),
            Value::Object(m) => {
                let nesting = self.nesting.nested()?;
                let mut entries = m.into_iter();
                match (entries.next(), entries.next()) {
                    (Some((variant, payload)), None) => visitor.visit_enum(EnumDe {
                        variant,
                        payload: Some(payload),
                        nesting,
                    }),
                    _ => Err(not_one_property()),
                }
            }
            other => Err(not_an_enum(&other)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        drop(self);
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool char str string bytes byte_buf map struct identifier
    }
}

struct SeqDe {
    iter: std::vec::IntoIter<Value>,
    nesting: Nesting,
}

impl<'de> SeqAccess<'de> for SeqDe {
    type Error = ValueError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ValueError> {
        match self.iter.next() {
            Some(v) => seed
                .deserialize(ValueDeserializer::at(v, self.nesting))
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct MapDe {
    iter: indexmap::map::IntoIter<String, Value>,
    value: Option<Value>,
    nesting: Nesting,
}

impl<'de> MapAccess<'de> for MapDe {
    type Error = ValueError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ValueError> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(KeyDe(Cow::Owned(k))).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        match self.value.take() {
            Some(v) => seed.deserialize(ValueDeserializer::at(v, self.nesting)),
            None => Err(ValueError::custom("map value requested before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// An enum as a string (`payload: None`) or a one-property object.
struct EnumDe {
    variant: String,
    payload: Option<Value>,
    nesting: Nesting,
}

impl<'de> EnumAccess<'de> for EnumDe {
    type Error = ValueError;
    type Variant = VariantDe;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, VariantDe), ValueError> {
        let variant = seed.deserialize(KeyDe(Cow::Owned(self.variant)))?;
        Ok((
            variant,
            VariantDe {
                payload: self.payload,
                nesting: self.nesting,
            },
        ))
    }
}

struct VariantDe {
    payload: Option<Value>,
    nesting: Nesting,
}

impl<'de> VariantAccess<'de> for VariantDe {
    type Error = ValueError;

    fn unit_variant(self) -> Result<(), ValueError> {
        match self.payload {
            None => Ok(()),
            Some(v) => <()>::deserialize(ValueDeserializer::at(v, self.nesting)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        match self.payload {
            Some(v) => seed.deserialize(ValueDeserializer::at(v, self.nesting)),
            None => Err(ValueError::invalid_type(
                Unexpected::UnitVariant,
                &"newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.payload {
            Some(Value::Array(a)) => visit_array(a, self.nesting, visitor),
            Some(other) => Err(ValueError::invalid_type(
                unexpected(&other),
                &"tuple variant",
            )),
            None => Err(ValueError::invalid_type(
                Unexpected::UnitVariant,
                &"tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.payload {
            Some(Value::Object(m)) => visit_object(m, self.nesting, visitor),
            Some(Value::Array(a)) => visit_array(a, self.nesting, visitor),
            Some(other) => Err(ValueError::invalid_type(
                unexpected(&other),
                &"struct variant",
            )),
            None => Err(ValueError::invalid_type(
                Unexpected::UnitVariant,
                &"struct variant",
            )),
        }
    }
}

/// A [`Value`] deserializing as a [`Value`]: its own variant, its own payload.
struct SelfEnum(ValueDeserializer);

impl<'de> EnumAccess<'de> for SelfEnum {
    type Error = ValueError;
    type Variant = SelfVariant;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, SelfVariant), ValueError> {
        let name = variant_name(&self.0.value);
        let variant = seed.deserialize(StrDeserializer::<ValueError>::new(name))?;
        Ok((variant, SelfVariant(self.0)))
    }
}

struct SelfVariant(ValueDeserializer);

impl<'de> VariantAccess<'de> for SelfVariant {
    type Error = ValueError;

    fn unit_variant(self) -> Result<(), ValueError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        let nesting = self.0.nesting.wrapped()?;
        seed.deserialize(ValueDeserializer::at(self.0.value, nesting))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, ValueError> {
        Err(ValueError::custom("a Value has no tuple variants"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ValueError> {
        Err(ValueError::custom("a Value has no struct variants"))
    }
}

// --------------------------------------------------------------------------------------------
// Object keys
// --------------------------------------------------------------------------------------------

/// An object key, or an enum variant's name. Parses as a number or a boolean when the key type
/// asks for one, so maps with integer keys survive [`crate::to_value`] (which stringifies them).
struct KeyDe<'de>(Cow<'de, str>);

impl<'de> KeyDe<'de> {
    fn visit_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
            Cow::Owned(s) => visitor.visit_string(s),
        }
    }

    fn deserialize_integer<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        let s: &str = &self.0;
        if let Ok(n) = s.parse::<u64>() {
            visitor.visit_u64(n)
        } else if let Ok(n) = s.parse::<i64>() {
            visitor.visit_i64(n)
        } else if let Ok(n) = s.parse::<i128>() {
            visitor.visit_i128(n)
        } else if let Ok(n) = s.parse::<u128>() {
            visitor.visit_u128(n)
        } else {
            self.visit_str(visitor)
        }
    }

    fn deserialize_float<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0.parse::<f64>() {
            Ok(n) => visitor.visit_f64(n),
            Err(_) => self.visit_str(visitor),
        }
    }
}

impl<'de> Deserializer<'de> for KeyDe<'de> {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.visit_str(visitor)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match &*self.0 {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            _ => self.visit_str(visitor),
        }
    }

    integer_hints! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_float(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_float(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        CowStrDeserializer::<ValueError>::new(self.0).deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers_visit_as_integers_when_integral() {
        assert_eq!(from_value::<u8>(Value::Number(5.0)), Ok(5));
        assert_eq!(from_value::<i32>(Value::Number(-5.0)), Ok(-5));
        assert_eq!(from_value::<i32>(Value::Number(-0.0)), Ok(0));
        assert!(matches!(
            from_value::<i32>(Value::Number(1.5)),
            Err(ValueError::InvalidType { .. })
        ));
        assert!(matches!(
            from_value::<u8>(Value::Number(256.0)),
            Err(ValueError::InvalidValue { .. })
        ));
        // `-0` stays a float when nothing asks for an integer.
        let z: f64 = from_value(Value::Number(-0.0)).unwrap();
        assert!(z == 0.0 && z.is_sign_negative());
        let j: serde_json::Value = from_value(Value::Number(-0.0)).unwrap();
        assert!(j.as_f64().is_some_and(|f| f.is_sign_negative()));
        // Integral numbers become JSON integers.
        let j: serde_json::Value = from_value(Value::Number(7.0)).unwrap();
        assert_eq!(j.as_u64(), Some(7));
    }

    #[test]
    fn nesting_counts_levels() {
        let top = Nesting::TOP;
        let mut n = top;
        for _ in 0..MAX_DEPTH {
            n = n.nested().unwrap();
        }
        assert_eq!(n.depth, MAX_DEPTH);
        assert_eq!(
            n.nested().unwrap_err(),
            ValueError::TooDeep { limit: MAX_DEPTH }
        );
        let mut w = top;
        for _ in 0..MAX_RECURSION {
            w = w.wrapped().unwrap();
        }
        assert!(w.wrapped().is_err());
    }

    #[test]
    fn keys_parse_when_asked() {
        let k = |s: &str| KeyDe(Cow::Owned(s.to_owned()));
        assert_eq!(i64::deserialize(k("-12")), Ok(-12));
        assert_eq!(
            u128::deserialize(k("340282366920938463463374607431768211455")),
            Ok(u128::MAX)
        );
        assert_eq!(bool::deserialize(k("true")), Ok(true));
        assert_eq!(f64::deserialize(k("1.5")), Ok(1.5));
        assert!(matches!(
            u32::deserialize(k("abc")),
            Err(ValueError::InvalidType { .. })
        ));
        assert!(matches!(
            u8::deserialize(k("-1")),
            Err(ValueError::InvalidValue { .. })
        ));
    }
}

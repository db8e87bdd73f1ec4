//! Any `Serialize` type into a [`Value`]: a `serde::Serializer` whose output is a [`Value`].
//!
//! The mapping follows `serde_json` where JSON and [`Value`] agree:
//!
//! | serde                                 | [`Value`]                                         |
//! |---------------------------------------|---------------------------------------------------|
//! | `bool`                                | `Bool`                                            |
//! | integers                              | `Number` if `\|v\| <= 2^53`, else `BigInt`         |
//! | `f32`, `f64`                          | `Number`                                          |
//! | `char`, `str`                         | `String`                                          |
//! | bytes                                 | `Bytes`                                           |
//! | unit, `None`, unit struct             | `Null`                                            |
//! | `Some(x)`, newtype struct             | `x`                                               |
//! | seq, tuple, tuple struct              | `Array`                                           |
//! | map, struct                           | `Object` (keys must be strings, numbers, ...)     |
//! | unit variant                          | `String(name)`                                    |
//! | newtype / tuple / struct variant      | `Object` with the single key `name`               |
//!
//! A [`Value`] itself maps to itself (not to its externally tagged derived form).

use super::{Map, Value, ValueError, MAX_DEPTH, VALUE_ENUM};
use serde::ser::{self, Impossible, Serialize};

/// How deep serde may recurse in total, counting wrappers (`Some`, newtypes) that do not add an
/// array or object level. Keeps a pathological `Serialize` impl from overflowing the stack.
pub(super) const MAX_RECURSION: usize = 4 * MAX_DEPTH;

/// Preallocate no more than this many elements on a `Serialize` impl's say-so.
const MAX_PREALLOC: usize = 4096;

/// Converts any serializable value into a [`Value`].
///
/// # Errors
/// * [`ValueError::TooDeep`] if arrays and objects nest deeper than [`MAX_DEPTH`];
/// * [`ValueError::KeyMustBeAString`] (or [`ValueError::NonFiniteKey`]) for a map key that
///   cannot be a property name;
/// * [`ValueError::IntegerOutOfRange`] for a `u128` above `i128::MAX`;
/// * [`ValueError::Custom`] when the type's `Serialize` impl fails.
pub fn to_value<T: Serialize + ?Sized>(v: &T) -> Result<Value, ValueError> {
    v.serialize(ValueSerializer { depth: 0, level: 0 })
}

fn too_deep() -> ValueError {
    ValueError::TooDeep { limit: MAX_DEPTH }
}

/// The serializer. `depth` counts enclosing arrays and objects of the value being serialized,
/// `level` counts every nested `serialize` call.
#[derive(Clone, Copy)]
struct ValueSerializer {
    depth: usize,
    level: usize,
}

impl ValueSerializer {
    /// The serializer for a value wrapped without a new array or object (`Some`, newtypes).
    fn wrapped(self) -> Result<Self, ValueError> {
        let level = self.level + 1;
        if level > MAX_RECURSION {
            return Err(too_deep());
        }
        Ok(ValueSerializer { level, ..self })
    }

    /// The serializer for the contents of `levels` new nested arrays or objects.
    fn nested(self, levels: usize) -> Result<Self, ValueError> {
        let depth = self.depth + levels;
        let level = self.level + 1;
        if depth > MAX_DEPTH || level > MAX_RECURSION {
            return Err(too_deep());
        }
        Ok(ValueSerializer { depth, level })
    }
}

fn tagged(variant: &str, value: Value) -> Value {
    let mut m = Map::with_capacity(1);
    m.insert(variant.to_owned(), value);
    Value::Object(m)
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = ValueError;

    type SerializeSeq = SerializeArray;
    type SerializeTuple = SerializeArray;
    type SerializeTupleStruct = SerializeArray;
    type SerializeTupleVariant = SerializeArray;
    type SerializeMap = SerializeObject;
    type SerializeStruct = SerializeObject;
    type SerializeStructVariant = SerializeObject;

    fn serialize_bool(self, v: bool) -> Result<Value, ValueError> {
        Ok(Value::Bool(v))
    }

    fn serialize_i8(self, v: i8) -> Result<Value, ValueError> {
        Ok(v.into())
    }

    fn serialize_i16(self, v: i16) -> Result<Value, ValueError> {
        Ok(v.into())
    }

    fn serialize_i32(self, v: i32) -> Result<Value, ValueError> {
        Ok(v.into())
    }

    fn serialize_i64(self, v: i64) -> Result<Value, ValueError> {
        Ok(v.into())
    }

    fn serialize_i128(self, v: i128) -> Result<Value, ValueError> {
        Ok(v.into())
    }

    fn serialize_u8(self, v: u8) -> Result<Value, ValueError> {
        Ok(v.into())
    }

    fn serialize_u16(self, v: u16) -> Result<Value, ValueError> {
        Ok(v.into())
    }

    fn serialize_u32(self, v: u32) -> Result<Value, ValueError> {
        Ok(v.into())
    }

    fn serialize_u64(self, v: u64) -> Result<Value, ValueError> {
        Ok(v.into())
    }

    fn serialize_u128(self, v: u128) -> Result<Value, ValueError> {
        Value::try_from(v)
    }

    fn serialize_f32(self, v: f32) -> Result<Value, ValueError> {
        Ok(Value::Number(v.into()))
    }

    fn serialize_f64(self, v: f64) -> Result<Value, ValueError> {
        Ok(Value::Number(v))
    }

    fn serialize_char(self, v: char) -> Result<Value, ValueError> {
        Ok(Value::String(v.to_string()))
    }

    fn serialize_str(self, v: &str) -> Result<Value, ValueError> {
        Ok(Value::String(v.to_owned()))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Value, ValueError> {
        Ok(Value::Bytes(v.to_vec()))
    }

    fn serialize_none(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, ValueError> {
        value.serialize(self.wrapped()?)
    }

    fn serialize_unit(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, ValueError> {
        if name == VALUE_ENUM {
            return Ok(match variant {
                "Undefined" => Value::Undefined,
                _ => Value::Null,
            });
        }
        Ok(Value::String(variant.to_owned()))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        value.serialize(self.wrapped()?)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        if name == VALUE_ENUM {
            // A `Value` inside the data: it is its own payload. Only a `BigInt` payload
            // (an `i128`) could come out as a `Number`, so put it back.
            let v = value.serialize(self.wrapped()?)?;
            return Ok(match (variant, v) {
                // `Number` only for |i| <= 2^53, so the cast is exact.
                ("BigInt", Value::Number(n)) => Value::BigInt(n as i128),
                (_, v) => v,
            });
        }
        Ok(tagged(variant, value.serialize(self.nested(1)?)?))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SerializeArray, ValueError> {
        Ok(SerializeArray::new(self.nested(1)?, len.unwrap_or(0), None))
    }

    fn serialize_tuple(self, len: usize) -> Result<SerializeArray, ValueError> {
        Ok(SerializeArray::new(self.nested(1)?, len, None))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SerializeArray, ValueError> {
        Ok(SerializeArray::new(self.nested(1)?, len, None))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SerializeArray, ValueError> {
        Ok(SerializeArray::new(self.nested(2)?, len, Some(variant)))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<SerializeObject, ValueError> {
        Ok(SerializeObject::new(
            self.nested(1)?,
            len.unwrap_or(0),
            None,
        ))
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SerializeObject, ValueError> {
        Ok(SerializeObject::new(self.nested(1)?, len, None))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SerializeObject, ValueError> {
        Ok(SerializeObject::new(self.nested(2)?, len, Some(variant)))
    }
}

/// Collects a sequence, tuple or tuple variant.
struct SerializeArray {
    items: Vec<Value>,
    child: ValueSerializer,
    variant: Option<&'static str>,
}

impl SerializeArray {
    fn new(child: ValueSerializer, len: usize, variant: Option<&'static str>) -> Self {
        SerializeArray {
            items: Vec::with_capacity(len.min(MAX_PREALLOC)),
            child,
            variant,
        }
    }

    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.items.push(value.serialize(self.child)?);
        Ok(())
    }

    fn finish(self) -> Value {
        let array = Value::Array(self.items);
        match self.variant {
            Some(variant) => tagged(variant, array),
            None => array,
        }
    }
}

impl ser::SerializeSeq for SerializeArray {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for SerializeArray {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for SerializeArray {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleVariant for SerializeArray {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

/// Collects a map, struct or struct variant.
struct SerializeObject {
    map: Map,
    child: ValueSerializer,
    variant: Option<&'static str>,
    key: Option<String>,
}

impl SerializeObject {
    fn new(child: ValueSerializer, len: usize, variant: Option<&'static str>) -> Self {
        SerializeObject {
            map: Map::with_capacity(len.min(MAX_PREALLOC)),
            child,
            variant,
            key: None,
        }
    }

    fn finish(self) -> Value {
        let object = Value::Object(self.map);
        match self.variant {
            Some(variant) => tagged(variant, object),
            None => object,
        }
    }
}

impl ser::SerializeMap for SerializeObject {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ValueError> {
        self.key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        let key = self.key.take().ok_or_else(|| {
            ValueError::Custom("serialize_value called before serialize_key".to_owned())
        })?;
        self.map.insert(key, value.serialize(self.child)?);
        Ok(())
    }

    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), ValueError> {
        let key = key.serialize(KeySerializer)?;
        self.map.insert(key, value.serialize(self.child)?);
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for SerializeObject {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.map
            .insert(key.to_owned(), value.serialize(self.child)?);
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for SerializeObject {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.map
            .insert(key.to_owned(), value.serialize(self.child)?);
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

/// Map keys: strings as they are; numbers, booleans and chars as their text (like
/// `serde_json`, except that floats print the shortest way, `1` rather than `1.0`); unit
/// variants as their name; anything else is an error.
struct KeySerializer;

fn not_a_key(found: &'static str) -> ValueError {
    ValueError::KeyMustBeAString { found }
}

impl ser::Serializer for KeySerializer {
    type Ok = String;
    type Error = ValueError;

    type SerializeSeq = Impossible<String, ValueError>;
    type SerializeTuple = Impossible<String, ValueError>;
    type SerializeTupleStruct = Impossible<String, ValueError>;
    type SerializeTupleVariant = Impossible<String, ValueError>;
    type SerializeMap = Impossible<String, ValueError>;
    type SerializeStruct = Impossible<String, ValueError>;
    type SerializeStructVariant = Impossible<String, ValueError>;

    fn serialize_bool(self, v: bool) -> Result<String, ValueError> {
        Ok(v.to_string())
    }

    fn serialize_i8(self, v: i8) -> Result<String, ValueError> {
        Ok(v.to_string())
    }

    fn serialize_i16(self, v: i16) -> Result<String, ValueError> {
        Ok(v.to_string())
    }

    fn serialize_i32(self, v: i32) -> Result<String, ValueError> {
        Ok(v.to_string())
    }

    fn serialize_i64(self, v: i64) -> Result<String, ValueError> {
        Ok(v.to_string())
    }

    fn serialize_i128(self, v: i128) -> Result<String, ValueError> {
        Ok(v.to_string())
    }

    fn serialize_u8(self, v: u8) -> Result<String, ValueError> {
        Ok(v.to_string())
    }

    fn serialize_u16(self, v: u16) -> Result<String, ValueError> {
        Ok(v.to_string())
    }

    fn serialize_u32(self, v: u32) -> Result<String, ValueError> {
        Ok(v.to_string())
    }

    fn serialize_u64(self, v: u64) -> Result<String, ValueError> {
        Ok(v.to_string())
    }

    fn serialize_u128(self, v: u128) -> Result<String, ValueError> {
        Ok(v.to_string())
    }

    fn serialize_f32(self, v: f32) -> Result<String, ValueError> {
        self.serialize_f64(v.into())
    }

    fn serialize_f64(self, v: f64) -> Result<String, ValueError> {
        if v.is_finite() {
            Ok(v.to_string())
        } else {
            Err(ValueError::NonFiniteKey)
        }
    }

    fn serialize_char(self, v: char) -> Result<String, ValueError> {
        Ok(v.to_string())
    }

    fn serialize_str(self, v: &str) -> Result<String, ValueError> {
        Ok(v.to_owned())
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<String, ValueError> {
        Err(not_a_key("bytes"))
    }

    fn serialize_none(self) -> Result<String, ValueError> {
        Err(not_a_key("None"))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, ValueError> {
        Err(not_a_key("an Option"))
    }

    fn serialize_unit(self) -> Result<String, ValueError> {
        Err(not_a_key("unit"))
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, ValueError> {
        Err(not_a_key("a unit struct"))
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, ValueError> {
        if name == VALUE_ENUM {
            return Err(not_a_key(if variant == "Null" {
                "null"
            } else {
                "undefined"
            }));
        }
        Ok(variant.to_owned())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, ValueError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<String, ValueError> {
        match (name, variant) {
            (VALUE_ENUM, "String" | "Number" | "BigInt" | "Bool") => value.serialize(self),
            (VALUE_ENUM, "Bytes") => Err(not_a_key("bytes")),
            (VALUE_ENUM, "Array") => Err(not_a_key("an array")),
            (VALUE_ENUM, _) => Err(not_a_key("an object")),
            _ => Err(not_a_key("a newtype variant")),
        }
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, ValueError> {
        Err(not_a_key("a sequence"))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, ValueError> {
        Err(not_a_key("a tuple"))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, ValueError> {
        Err(not_a_key("a tuple struct"))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, ValueError> {
        Err(not_a_key("a tuple variant"))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, ValueError> {
        Err(not_a_key("a map"))
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, ValueError> {
        Err(not_a_key("a struct"))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, ValueError> {
        Err(not_a_key("a struct variant"))
    }
}

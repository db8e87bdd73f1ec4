//! `to_value` / `from_value`, the `From` conversions and `Display`.
#![allow(clippy::unwrap_used)]

use confine_runtime_abstract::{
    from_value, to_value,
    value::{ValueDeserializer, MAX_DEPTH},
    ErrorData, ErrorKind, Map, Value, ValueError,
};
use serde::{de::IntoDeserializer, Deserialize, Deserializer, Serialize, Serializer};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

/// xorshift64*: small, deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn obj<const N: usize>(entries: [(&str, Value); N]) -> Value {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

fn arr<const N: usize>(items: [Value; N]) -> Value {
    items.into_iter().collect()
}

/// `to_value`, then `from_value` back; returns the intermediate value.
fn round_trip<T>(x: &T) -> Value
where
    T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
{
    let v = to_value(x).unwrap();
    assert_eq!(&from_value::<T>(v.clone()).unwrap(), x, "by value, via {v}");
    v
}

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Unit;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Meters(f64);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Pair(i32, String);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Circle(f64),
    Rect(u32, u32),
    Poly { sides: u8, name: String },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Everything {
    b: bool,
    i8: i8,
    u16: u16,
    i32: i32,
    u32: u32,
    f32: f32,
    f64: f64,
    c: char,
    s: String,
    unit: (),
    unit_struct: Unit,
    newtype: Meters,
    tuple_struct: Pair,
    tuple: (u8, String, bool),
    some: Option<u32>,
    none: Option<u32>,
    nested_option: Option<Option<i8>>,
    list: Vec<Shape>,
    map: BTreeMap<String, Vec<i32>>,
    value: Value,
}

fn everything() -> Everything {
    Everything {
        b: true,
        i8: -8,
        u16: 65535,
        i32: -123_456,
        u32: 4_000_000_000,
        f32: 1.5,
        f64: -0.25,
        c: 'é',
        s: "hello \"world\"".into(),
        unit: (),
        unit_struct: Unit,
        newtype: Meters(3.5),
        tuple_struct: Pair(-1, "one".into()),
        tuple: (7, "seven".into(), false),
        some: Some(5),
        none: None,
        nested_option: Some(Some(3)),
        list: vec![
            Shape::Empty,
            Shape::Circle(2.0),
            Shape::Rect(3, 4),
            Shape::Poly {
                sides: 6,
                name: "hex".into(),
            },
        ],
        map: [("a".to_owned(), vec![1, 2]), ("b".to_owned(), vec![])]
            .into_iter()
            .collect(),
        value: obj([("x", Value::Undefined), ("y", Value::bytes([1, 2]))]),
    }
}

/// Binary data the way `serde_bytes` does it, written out by hand.
#[derive(Debug, PartialEq)]
struct Blob(Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Blob, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

// ---------------------------------------------------------------------------------------------
// to_value: the mapping
// ---------------------------------------------------------------------------------------------

#[test]
fn struct_maps_to_the_documented_shape() {
    let v = round_trip(&everything());
    let expected = obj([
        ("b", Value::Bool(true)),
        ("i8", Value::Number(-8.0)),
        ("u16", Value::Number(65535.0)),
        ("i32", Value::Number(-123_456.0)),
        ("u32", Value::Number(4e9)),
        ("f32", Value::Number(1.5)),
        ("f64", Value::Number(-0.25)),
        ("c", Value::from("é")),
        ("s", Value::from("hello \"world\"")),
        ("unit", Value::Null),
        ("unit_struct", Value::Null),
        ("newtype", Value::Number(3.5)),
        ("tuple_struct", arr([Value::from(-1), Value::from("one")])),
        (
            "tuple",
            arr([Value::from(7), Value::from("seven"), Value::from(false)]),
        ),
        ("some", Value::Number(5.0)),
        ("none", Value::Null),
        ("nested_option", Value::Number(3.0)),
        (
            "list",
            arr([
                Value::from("Empty"),
                obj([("Circle", Value::Number(2.0))]),
                obj([("Rect", arr([Value::from(3), Value::from(4)]))]),
                obj([(
                    "Poly",
                    obj([("sides", Value::from(6)), ("name", Value::from("hex"))]),
                )]),
            ]),
        ),
        (
            "map",
            obj([("a", arr([Value::from(1), Value::from(2)])), ("b", arr([]))]),
        ),
        (
            "value",
            obj([("x", Value::Undefined), ("y", Value::bytes([1, 2]))]),
        ),
    ]);
    assert_eq!(v, expected);
    // Field order is kept.
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys[..3], ["b", "i8", "u16"]);
}

#[test]
fn nested_option_collapses_like_json() {
    // `Some(None)` and `None` both become null, and null reads back as the outer `None`.
    assert_eq!(to_value(&Some(None::<i8>)).unwrap(), Value::Null);
    assert_eq!(from_value::<Option<Option<i8>>>(Value::Null).unwrap(), None);
    assert_eq!(
        from_value::<Option<Option<i8>>>(Value::Number(3.0)).unwrap(),
        Some(Some(3))
    );
    assert_eq!(from_value::<Option<u8>>(Value::Undefined).unwrap(), None);
}

#[test]
fn every_enum_variant_kind_round_trips() {
    assert_eq!(round_trip(&Shape::Empty), Value::from("Empty"));
    assert_eq!(
        round_trip(&Shape::Circle(1.25)),
        obj([("Circle", Value::Number(1.25))])
    );
    assert_eq!(
        round_trip(&Shape::Rect(1, 2)),
        obj([("Rect", arr([Value::from(1), Value::from(2)]))])
    );
    assert_eq!(
        round_trip(&Shape::Poly {
            sides: 3,
            name: "tri".into()
        }),
        obj([(
            "Poly",
            obj([("sides", Value::from(3)), ("name", Value::from("tri"))])
        )])
    );
    // A unit variant may also come as `{name: null}`.
    assert_eq!(
        from_value::<Shape>(obj([("Empty", Value::Null)])).unwrap(),
        Shape::Empty
    );
}

#[test]
fn enum_errors_are_typed() {
    match from_value::<Shape>(Value::from("Hexagon")) {
        Err(ValueError::UnknownVariant { variant, expected }) => {
            assert_eq!(variant, "Hexagon");
            assert_eq!(expected, ["Empty", "Circle", "Rect", "Poly"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        from_value::<Shape>(obj([("Circle", Value::Null), ("Rect", Value::Null)])),
        Err(ValueError::InvalidValue { .. })
    ));
    assert!(matches!(
        from_value::<Shape>(obj([])),
        Err(ValueError::InvalidValue { .. })
    ));
    assert!(matches!(
        from_value::<Shape>(Value::Number(1.0)),
        Err(ValueError::InvalidType { .. })
    ));
    // A newtype variant named without a payload.
    assert!(matches!(
        from_value::<Shape>(Value::from("Circle")),
        Err(ValueError::InvalidType { .. })
    ));
    // A tuple variant with the wrong payload.
    assert!(matches!(
        from_value::<Shape>(obj([("Rect", Value::from(3))])),
        Err(ValueError::InvalidType { .. })
    ));
    assert!(matches!(
        from_value::<Shape>(obj([("Rect", arr([Value::from(3)]))])),
        Err(ValueError::InvalidLength { len: 1, .. })
    ));
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Tagged {
    A { x: i32 },
    B { y: String, z: Option<bool> },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Untagged {
    Int(i64),
    Text(String),
    List(Vec<Untagged>),
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Flat {
    id: u32,
    #[serde(flatten)]
    rest: HashMap<String, i64>,
}

#[test]
fn self_describing_enums_and_flatten_work() {
    assert_eq!(
        round_trip(&Tagged::A { x: -3 }),
        obj([("type", Value::from("a")), ("x", Value::from(-3))])
    );
    round_trip(&Tagged::B {
        y: "q".into(),
        z: Some(true),
    });
    round_trip(&Untagged::List(vec![
        Untagged::Int(1),
        Untagged::Text("t".into()),
        Untagged::List(vec![]),
    ]));
    // An untagged integer from a JS number.
    assert_eq!(
        from_value::<Untagged>(Value::Number(42.0)).unwrap(),
        Untagged::Int(42)
    );
    round_trip(&Flat {
        id: 1,
        rest: [("a".to_owned(), 2), ("b".to_owned(), -3)]
            .into_iter()
            .collect(),
    });
}

#[test]
fn maps_round_trip_and_keys_are_stringified() {
    let nested: BTreeMap<String, BTreeMap<String, Option<f64>>> = [
        (
            "outer".to_owned(),
            [("x".to_owned(), Some(1.5)), ("y".to_owned(), None)]
                .into_iter()
                .collect(),
        ),
        ("empty".to_owned(), BTreeMap::new()),
    ]
    .into_iter()
    .collect();
    round_trip(&nested);

    let hm: HashMap<String, Vec<Shape>> = [
        ("k1".to_owned(), vec![Shape::Empty]),
        ("k2".to_owned(), vec![Shape::Rect(1, 1), Shape::Circle(0.5)]),
    ]
    .into_iter()
    .collect();
    round_trip(&hm);

    // Numbers, booleans, chars, unit variants and newtypes as keys: stringified and parsed
    // back.
    let by_int: BTreeMap<i64, u8> = [(-5, 1), (0, 2), (i64::MAX, 3)].into_iter().collect();
    let v = round_trip(&by_int);
    assert_eq!(v.get("-5"), Some(&Value::from(1)));
    assert_eq!(v.get("9223372036854775807"), Some(&Value::from(3)));
    let v = round_trip(
        &[(true, 1), (false, 0)]
            .into_iter()
            .collect::<BTreeMap<bool, u8>>(),
    );
    assert_eq!(v.get("true"), Some(&Value::from(1)));
    round_trip(&[('x', 1u8)].into_iter().collect::<BTreeMap<char, u8>>());
    round_trip(
        &[(u128::MAX, 1u8)]
            .into_iter()
            .collect::<BTreeMap<u128, u8>>(),
    );
    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
    enum Color {
        Red,
        Blue,
    }
    let v = round_trip(
        &[(Color::Red, 1u8), (Color::Blue, 2)]
            .into_iter()
            .collect::<BTreeMap<Color, u8>>(),
    );
    assert_eq!(v.get("Blue"), Some(&Value::from(2)));
    #[derive(Serialize)]
    struct FloatKeys(#[serde(serialize_with = "float_keys")] ());
    fn float_keys<S: Serializer>(_: &(), s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry(&1.5f64, &1)?;
        m.serialize_entry(&2.0f32, &2)?;
        m.end()
    }
    assert_eq!(
        to_value(&FloatKeys(())).unwrap(),
        obj([("1.5", Value::from(1)), ("2", Value::from(2))])
    );
}

#[test]
fn bad_map_keys_are_errors() {
    let tuple_keys: BTreeMap<(i32, i32), u8> = [((1, 2), 3)].into_iter().collect();
    assert_eq!(
        to_value(&tuple_keys),
        Err(ValueError::KeyMustBeAString { found: "a tuple" })
    );
    let opt_keys: BTreeMap<Option<u8>, u8> = [(None, 3)].into_iter().collect();
    assert!(matches!(
        to_value(&opt_keys),
        Err(ValueError::KeyMustBeAString { .. })
    ));
    let shape_keys: Vec<(Shape, u8)> = vec![(Shape::Circle(1.0), 1)];
    struct AsMap<'a>(&'a [(Shape, u8)]);
    impl Serialize for AsMap<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
        }
    }
    assert_eq!(
        to_value(&AsMap(&shape_keys)),
        Err(ValueError::KeyMustBeAString {
            found: "a newtype variant"
        })
    );
    struct NanKey;
    impl Serialize for NanKey {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map([(f64::NAN, 1)])
        }
    }
    assert_eq!(to_value(&NanKey), Err(ValueError::NonFiniteKey));
}

#[test]
fn tuples_round_trip() {
    round_trip(&(1u8, -2i64, "three".to_owned(), 4.5f64, ('5', true)));
    round_trip(&[[1u16, 2], [3, 4]]);
    round_trip(&());
    assert!(matches!(
        from_value::<(u8, u8)>(arr([Value::from(1)])),
        Err(ValueError::InvalidLength { len: 1, .. })
    ));
    // Too many elements is an error too, not silently dropped.
    assert!(matches!(
        from_value::<(u8, u8)>(arr([Value::from(1), Value::from(2), Value::from(3)])),
        Err(ValueError::InvalidLength { len: 3, .. })
    ));
}

#[test]
fn integer_extremes() {
    const P53: i64 = 1 << 53;
    assert_eq!(round_trip(&P53), Value::Number(P53 as f64));
    assert_eq!(round_trip(&-P53), Value::Number(-P53 as f64));
    assert_eq!(round_trip(&(P53 + 1)), Value::BigInt((P53 + 1).into()));
    assert_eq!(round_trip(&(-P53 - 1)), Value::BigInt((-P53 - 1).into()));
    assert_eq!(round_trip(&i64::MAX), Value::BigInt(i64::MAX.into()));
    assert_eq!(round_trip(&i64::MIN), Value::BigInt(i64::MIN.into()));
    assert_eq!(round_trip(&u64::MAX), Value::BigInt(u64::MAX.into()));
    assert_eq!(round_trip(&u64::MIN), Value::Number(0.0));
    assert_eq!(round_trip(&i128::MAX), Value::BigInt(i128::MAX));
    assert_eq!(round_trip(&i128::MIN), Value::BigInt(i128::MIN));
    assert_eq!(round_trip(&(i128::MAX as u128)), Value::BigInt(i128::MAX));
    assert_eq!(
        to_value(&u128::MAX),
        Err(ValueError::IntegerOutOfRange(u128::MAX))
    );
    // Out of range for the target type: an error, not a wrap-around.
    assert!(matches!(
        from_value::<i64>(Value::BigInt(u64::MAX.into())),
        Err(ValueError::InvalidValue { .. })
    ));
    assert!(matches!(
        from_value::<u64>(Value::BigInt(-1)),
        Err(ValueError::InvalidValue { .. })
    ));
    assert!(matches!(
        from_value::<u8>(Value::Number(-1.0)),
        Err(ValueError::InvalidValue { .. })
    ));
    assert!(matches!(
        from_value::<u64>(Value::BigInt(i128::MAX)),
        Err(ValueError::InvalidType { .. }) // serde's u64 does not take an i128 at all
    ));
    assert_eq!(
        from_value::<i128>(Value::BigInt(i128::MIN)).unwrap(),
        i128::MIN
    );
    // JS numbers into integer types.
    assert_eq!(from_value::<u8>(Value::Number(255.0)).unwrap(), 255);
    assert_eq!(from_value::<i32>(Value::Number(-7.0)).unwrap(), -7);
    assert_eq!(
        from_value::<u64>(Value::Number(1e19)).unwrap(),
        10_000_000_000_000_000_000
    );
    assert_eq!(
        from_value::<i64>(Value::Number(-(2f64.powi(63)))).unwrap(),
        i64::MIN
    );
    assert!(from_value::<u64>(Value::Number(2f64.powi(64))).is_err());
    assert!(from_value::<i32>(Value::Number(0.5)).is_err());
    assert!(from_value::<i32>(Value::Number(f64::NAN)).is_err());
    // Big integers and numbers into floats.
    assert_eq!(
        from_value::<f64>(Value::BigInt(1 << 60)).unwrap(),
        2f64.powi(60)
    );
    assert_eq!(from_value::<f32>(Value::Number(0.5)).unwrap(), 0.5);
    assert_eq!(from_value::<f64>(Value::Number(3.0)).unwrap(), 3.0);
    assert_eq!(from_value::<i128>(Value::Number(3.0)).unwrap(), 3);
}

#[test]
fn floats_keep_nan_infinity_and_negative_zero() {
    let v = to_value(&f64::NAN).unwrap();
    assert!(matches!(v, Value::Number(n) if n.is_nan()));
    assert!(from_value::<f64>(v.clone()).unwrap().is_nan());
    assert!(from_value::<f32>(v.clone()).unwrap().is_nan());
    let back: Vec<f64> =
        from_value(to_value(&[f64::INFINITY, f64::NEG_INFINITY, -0.0]).unwrap()).unwrap();
    assert_eq!(back[0], f64::INFINITY);
    assert_eq!(back[1], f64::NEG_INFINITY);
    assert!(back[2] == 0.0 && back[2].is_sign_negative());
    let opt: Option<f64> = from_value(Value::Number(f64::NAN)).unwrap();
    assert!(opt.is_some_and(f64::is_nan));
    // JSON has no NaN: null.
    assert_eq!(
        serde_json::Value::from(Value::Number(f64::NAN)),
        serde_json::Value::Null
    );
}

#[test]
fn bytes() {
    // A byte newtype serializes as bytes.
    let blob = Blob(vec![0, 1, 2, 255]);
    assert_eq!(round_trip(&blob), Value::bytes([0, 1, 2, 255]));
    // A plain `Vec<u8>` is a sequence of numbers on the way in...
    assert_eq!(
        to_value(&vec![1u8, 2]).unwrap(),
        arr([Value::from(1), Value::from(2)])
    );
    // ...but reads from bytes as well as from an array of numbers.
    assert_eq!(from_value::<Vec<u8>>(Value::bytes([9, 8])).unwrap(), [9, 8]);
    assert_eq!(from_value::<Vec<u8>>(Value::bytes([9, 8])).unwrap(), [9, 8]);
    assert_eq!(from_value::<[u8; 2]>(Value::bytes([9, 8])).unwrap(), [9, 8]);
    assert!(matches!(
        from_value::<[u8; 3]>(Value::bytes([9, 8])),
        Err(ValueError::InvalidLength { len: 2, .. })
    ));
    assert!(from_value::<[u8; 1]>(Value::bytes([9, 8])).is_err());
    assert!(
        from_value::<Blob>(arr([Value::from(1), Value::from(2)])).is_err(),
        "a byte visitor without visit_seq rejects arrays"
    );
    assert!(from_value::<String>(Value::from("own")).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Value inside data
// ---------------------------------------------------------------------------------------------

fn every_kind() -> Value {
    obj([
        ("u", Value::Undefined),
        ("n", Value::Null),
        ("b", Value::Bool(false)),
        ("x", Value::Number(-1.5)),
        ("i", Value::Number(3.0)),
        ("small", Value::BigInt(5)),
        ("big", Value::BigInt(-(1 << 100))),
        ("s", Value::from("str")),
        ("bytes", Value::bytes([1, 2, 3])),
        ("a", arr([Value::Null, arr([]), obj([])])),
    ])
}

#[test]
fn a_value_converts_to_itself() {
    let v = every_kind();
    assert_eq!(to_value(&v).unwrap(), v);
    assert_eq!(from_value::<Value>(v.clone()).unwrap(), v);
    // A small BigInt stays a BigInt, though `to_value(&5i128)` is a number.
    assert_eq!(to_value(&Value::BigInt(5)).unwrap(), Value::BigInt(5));
    assert_eq!(
        from_value::<Value>(Value::BigInt(5)).unwrap(),
        Value::BigInt(5)
    );
    assert_eq!(to_value(&5i128).unwrap(), Value::Number(5.0));

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Call {
        export: String,
        args: Vec<Value>,
        options: Option<Value>,
    }
    let call = Call {
        export: "f".into(),
        args: vec![every_kind(), Value::Undefined],
        options: Some(Value::Bool(true)),
    };
    let v = round_trip(&call);
    assert_eq!(v.get("args").unwrap().as_array().unwrap()[0], every_kind());
    assert_eq!(v.get("options"), Some(&Value::Bool(true)));
    // The bincode wire format of Value is unchanged: still externally tagged by index.
    let wire = confine_runtime_abstract::codec::encode(&Value::Bool(true), 100).unwrap();
    assert_eq!(wire, [2, 0, 0, 0, 2, 1]);
}

#[test]
fn typed_deserialize_errors() {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct S {
        a: u8,
        b: String,
    }
    assert_eq!(
        from_value::<S>(obj([("a", Value::from(1))])).unwrap_err(),
        ValueError::MissingField("b")
    );
    match from_value::<S>(obj([
        ("a", Value::from(1)),
        ("b", Value::from("x")),
        ("c", Value::Null),
    ])) {
        Err(ValueError::UnknownField { field, expected }) => {
            assert_eq!(field, "c");
            assert_eq!(expected, ["a", "b"]);
        }
        other => panic!("{other:?}"),
    }
    let e = from_value::<S>(obj([("a", Value::from("one")), ("b", Value::from("x"))])).unwrap_err();
    assert_eq!(
        e,
        ValueError::InvalidType {
            unexpected: "string \"one\"".into(),
            expected: "u8".into()
        }
    );
    assert_eq!(e.to_string(), "invalid type: string \"one\", expected u8");
    let e = from_value::<String>(Value::Undefined).unwrap_err();
    assert!(matches!(e, ValueError::InvalidType { .. }), "{e}");
    let e = from_value::<()>(Value::Bool(true)).unwrap_err();
    assert_eq!(e.to_string(), "invalid type: boolean `true`, expected unit");
    // Struct from an array, like serde_json.
    #[derive(Debug, PartialEq, Deserialize)]
    struct P {
        x: i32,
        y: i32,
    }
    assert_eq!(
        from_value::<P>(arr([Value::from(1), Value::from(2)])).unwrap(),
        P { x: 1, y: 2 }
    );
    // Into ErrorData for runtimes.
    let data: ErrorData = ValueError::MissingField("b").into();
    assert_eq!(data.kind, ErrorKind::Conversion);
    assert_eq!(data.message, "missing field `b`");
}

#[test]
fn custom_serialize_errors_pass_through() {
    struct Fails;
    impl Serialize for Fails {
        fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("nope"))
        }
    }
    assert_eq!(
        to_value(&vec![Fails]),
        Err(ValueError::Custom("nope".into()))
    );
}

#[test]
fn into_deserializer() {
    let d: ValueDeserializer = Value::from(3).into_deserializer();
    assert_eq!(u16::deserialize(d).unwrap(), 3);
}

// ---------------------------------------------------------------------------------------------
// Depth
// ---------------------------------------------------------------------------------------------

fn nested_arrays(depth: usize) -> Value {
    let mut v = Value::Null;
    for _ in 0..depth {
        v = Value::Array(vec![v]);
    }
    v
}

#[test]
fn to_value_bounds_depth() {
    // Exactly MAX_DEPTH nested arrays is fine, one more is not.
    let ok = nested_arrays(MAX_DEPTH);
    assert_eq!(to_value(&ok).unwrap(), ok);
    assert_eq!(
        to_value(&nested_arrays(MAX_DEPTH + 1)),
        Err(ValueError::TooDeep { limit: MAX_DEPTH })
    );

    // A recursive type, as deep as it likes: an error, not a stack overflow.
    #[derive(Serialize)]
    struct Node {
        next: Option<Box<Node>>,
    }
    let build = |n: usize| {
        let mut node = Node { next: None };
        for _ in 0..n {
            node = Node {
                next: Some(Box::new(node)),
            };
        }
        node
    };
    assert!(to_value(&build(MAX_DEPTH - 1)).is_ok());
    assert_eq!(
        to_value(&build(MAX_DEPTH)),
        Err(ValueError::TooDeep { limit: MAX_DEPTH })
    );

    // Wrappers that add no array or object level still count against a recursion bound.
    #[derive(Serialize)]
    struct Wrap(Option<Box<Wrap>>);
    let mut w = Wrap(None);
    for _ in 0..100_000 {
        w = Wrap(Some(Box::new(w)));
    }
    assert_eq!(to_value(&w), Err(ValueError::TooDeep { limit: MAX_DEPTH }));
    // Iterative drop so the test itself cannot overflow.
    let mut cur = w.0.take();
    while let Some(mut b) = cur {
        cur = b.0.take();
    }

    // Enum variants count their object level.
    #[derive(Serialize)]
    enum List {
        Cons(Box<List>),
        Nil,
    }
    let mut l = List::Nil;
    for _ in 0..MAX_DEPTH {
        l = List::Cons(Box::new(l));
    }
    assert_eq!(
        to_value(&l).unwrap().to_string().matches('{').count(),
        MAX_DEPTH
    );
    let l = List::Cons(Box::new(l));
    assert!(matches!(to_value(&l), Err(ValueError::TooDeep { .. })));
}

#[test]
fn from_value_bounds_depth() {
    let ok = nested_arrays(MAX_DEPTH);
    assert_eq!(from_value::<Value>(ok.clone()).unwrap(), ok);
    let j: serde_json::Value = from_value(ok.clone()).unwrap();
    assert!(j.is_array());

    let deep = nested_arrays(1000);
    assert_eq!(
        from_value::<serde_json::Value>(deep.clone()),
        Err(ValueError::TooDeep { limit: MAX_DEPTH })
    );
    // Ignored without looking inside.
    assert!(from_value::<serde::de::IgnoredAny>(deep.clone()).is_ok());
    assert!(from_value::<Value>(deep).is_err());

    // A type that recurses through wrappers without consuming anything.
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Loop(Option<Box<Loop>>);
    assert!(matches!(
        from_value::<Loop>(Value::Bool(true)),
        Err(ValueError::TooDeep { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// serde_json
// ---------------------------------------------------------------------------------------------

#[test]
fn json_to_value() {
    let j = json!({
        "null": null,
        "t": true,
        "int": 42,
        "neg": -7,
        "float": 1.5,
        "p53": 9_007_199_254_740_992_u64,
        "p53plus": 9_007_199_254_740_993_u64,
        "u64max": u64::MAX,
        "i64min": i64::MIN,
        "s": "x",
        "a": [1, [2, {}]],
        "o": {"k": "v"},
    });
    let v = Value::from(j.clone());
    assert_eq!(
        v,
        obj([
            ("null", Value::Null),
            ("t", Value::Bool(true)),
            ("int", Value::Number(42.0)),
            ("neg", Value::Number(-7.0)),
            ("float", Value::Number(1.5)),
            ("p53", Value::Number(9_007_199_254_740_992.0)),
            ("p53plus", Value::BigInt(9_007_199_254_740_993)),
            ("u64max", Value::BigInt(u64::MAX.into())),
            ("i64min", Value::BigInt(i64::MIN.into())),
            ("s", Value::from("x")),
            ("a", arr([Value::from(1), arr([Value::from(2), obj([])])])),
            ("o", obj([("k", Value::from("v"))])),
        ])
    );
    // And back: identical JSON.
    assert_eq!(serde_json::Value::from(v.clone()), j);
    // from_value agrees with From.
    assert_eq!(from_value::<serde_json::Value>(v.clone()).unwrap(), j);
    // to_value agrees with From.
    assert_eq!(to_value(&j).unwrap(), v);
}

#[test]
fn value_to_json_is_lossy_where_json_has_no_equivalent() {
    let v = obj([
        ("u", Value::Undefined),
        ("nan", Value::Number(f64::NAN)),
        ("inf", Value::Number(f64::INFINITY)),
        ("one", Value::Number(1.0)),
        ("half", Value::Number(0.5)),
        ("negzero", Value::Number(-0.0)),
        ("big_i64", Value::BigInt(i64::MIN.into())),
        ("big_u64", Value::BigInt(u64::MAX.into())),
        ("huge", Value::BigInt(i128::MAX)),
        ("bytes", Value::bytes([1, 255])),
    ]);
    let j = serde_json::Value::from(v);
    assert_eq!(
        j,
        json!({
            "u": null,
            "nan": null,
            "inf": null,
            "one": 1,
            "half": 0.5,
            "negzero": -0.0,
            "big_i64": i64::MIN,
            "big_u64": u64::MAX,
            "huge": i128::MAX.to_string(),
            "bytes": [1, 255],
        })
    );
    assert_eq!(
        j["one"].as_u64(),
        Some(1),
        "integral numbers are JSON integers"
    );
    assert!(j["negzero"].as_f64().unwrap().is_sign_negative());
}

// ---------------------------------------------------------------------------------------------
// From, FromIterator, accessors, Display
// ---------------------------------------------------------------------------------------------

#[test]
fn from_impls() {
    assert_eq!(Value::from(true), Value::Bool(true));
    assert_eq!(Value::from(1.5f32), Value::Number(1.5));
    assert_eq!(Value::from(2.5f64), Value::Number(2.5));
    assert_eq!(Value::from(-3i8), Value::Number(-3.0));
    assert_eq!(Value::from(3u16), Value::Number(3.0));
    assert_eq!(Value::from(usize::MAX), Value::BigInt(usize::MAX as i128));
    assert_eq!(Value::from(isize::MIN), Value::BigInt(isize::MIN as i128));
    assert_eq!(Value::from(1i128 << 53), Value::Number(2f64.powi(53)));
    assert_eq!(Value::from((1i128 << 53) + 1), Value::BigInt((1 << 53) + 1));
    assert_eq!(Value::from("s"), Value::String("s".into()));
    assert_eq!(Value::from(String::from("s")), Value::String("s".into()));
    assert_eq!(Value::from(Some(1u8)), Value::Number(1.0));
    assert_eq!(Value::from(None::<u8>), Value::Null);
    assert_eq!(Value::from(Some(Value::Undefined)), Value::Undefined);
    assert_eq!(Value::from(()), Value::Undefined);
    assert_eq!(Value::from(vec![Value::Null]), arr([Value::Null]));
    assert_eq!(Value::from(Map::new()), obj([]));
    assert_eq!(Value::bytes(vec![1u8]), Value::Bytes(vec![1]));
    assert_eq!(Value::bytes(&b"ab"[..]), Value::Bytes(b"ab".to_vec()));
    let a: Value = (0..3).map(Value::from).collect();
    assert_eq!(a, arr([Value::from(0), Value::from(1), Value::from(2)]));
    let o: Value = [("b", 1), ("a", 2), ("b", 3)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::from(v)))
        .collect();
    let keys: Vec<_> = o.as_object().unwrap().iter().collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], (&"b".to_owned(), &Value::from(3)));
}

#[test]
fn as_f64_is_exact_for_big_integers() {
    assert_eq!(Value::BigInt(1 << 60).as_f64(), Some(2f64.powi(60)));
    assert_eq!(Value::BigInt((1 << 60) + 1).as_f64(), None);
    assert_eq!(Value::BigInt(i128::MIN).as_f64(), Some(-(2f64.powi(127))));
    // `i128::MAX as f64` is 2^127, which is not i128::MAX.
    assert_eq!(Value::BigInt(i128::MAX).as_f64(), None);
}

#[test]
fn display() {
    let v = obj([
        (
            "a",
            arr([Value::from(1), Value::from(1.5), Value::from("q\"")]),
        ),
        ("u", Value::Undefined),
        ("b", Value::bytes([0; 4])),
        ("n", Value::BigInt(-3)),
        ("inf", Value::Number(f64::INFINITY)),
    ]);
    assert_eq!(
        v.to_string(),
        r#"{"a":[1,1.5,"q\""],"u":undefined,"b":<4 bytes>,"n":-3n,"inf":Infinity}"#
    );
    assert_eq!(Value::Null.to_string(), "null");
    assert_eq!(Value::from("é\t").to_string(), "\"é\\t\"");
}

// ---------------------------------------------------------------------------------------------
// Random values
// ---------------------------------------------------------------------------------------------

fn random_value(rng: &mut Rng, depth: usize, json_safe: bool) -> Value {
    let kinds = if depth == 0 { 7 } else { 9 };
    match rng.below(kinds) {
        0 if !json_safe => Value::Undefined,
        0 | 1 => Value::Null,
        2 => Value::Bool(rng.below(2) == 1),
        3 => match rng.below(4) {
            0 => Value::Number(rng.below(1 << 20) as f64 - 500_000.0),
            // Any double but NaN (which is not equal to itself).
            1 if !json_safe => Value::Number(
                Some(f64::from_bits(rng.next()))
                    .filter(|n| !n.is_nan())
                    .unwrap_or(0.5),
            ),
            // Integral, mostly beyond 2^53.
            1 => Value::Number(rng.next() as f64),
            2 if !json_safe => Value::Number(-0.0),
            _ => Value::Number(rng.below(1000) as f64 / 8.0),
        },
        4 => {
            let i = ((rng.next() as i128) << rng.below(64)).wrapping_mul(if rng.below(2) == 0 {
                1
            } else {
                -1
            });
            if json_safe {
                json_bigint(i)
            } else {
                Value::BigInt(i)
            }
        }
        5 => {
            let len = rng.below(12) as usize;
            Value::String(
                (0..len)
                    .map(|_| char::from_u32(rng.below(0x3000) as u32).unwrap_or('?'))
                    .collect(),
            )
        }
        6 if !json_safe => Value::Bytes((0..rng.below(20)).map(|_| rng.next() as u8).collect()),
        6 => Value::from(rng.next() as u32),
        7 => (0..rng.below(5))
            .map(|_| random_value(rng, depth - 1, json_safe))
            .collect(),
        _ => (0..rng.below(5))
            .map(|i| {
                (
                    format!("k{i}{}", rng.below(3)),
                    random_value(rng, depth - 1, json_safe),
                )
            })
            .collect(),
    }
}

/// A value JSON gives back unchanged: a BigInt in `i64` range outside ±2^53, or a number.
fn json_bigint(i: i128) -> Value {
    let i = i.clamp(i64::MIN.into(), i64::MAX.into());
    if i.unsigned_abs() > 1 << 53 {
        Value::BigInt(i)
    } else {
        Value::from(i)
    }
}

#[test]
fn random_values_convert_to_themselves() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2000 {
        let v = random_value(&mut rng, 6, false);
        assert_eq!(to_value(&v).unwrap(), v);
        assert_eq!(from_value::<Value>(v.clone()).unwrap(), v);
        // And through the wire.
        let frame = confine_runtime_abstract::codec::encode(&v, u32::MAX).unwrap();
        let back: Value = confine_runtime_abstract::codec::decode_body(&frame[4..]).unwrap();
        assert_eq!(back, v);
    }
}

#[test]
fn random_json_safe_values_survive_json() {
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let v = random_value(&mut rng, 6, true);
        let j = serde_json::Value::from(v.clone());
        assert_eq!(Value::from(j.clone()), v, "{j}");
        assert_eq!(from_value::<serde_json::Value>(v.clone()).unwrap(), j);
        assert_eq!(to_value(&j).unwrap(), v);
    }
}

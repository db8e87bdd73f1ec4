//! The frame codec: every message round trips, `FrameBuffer` reassembles any split, and hostile
//! input gives errors (never panics, never overflows the stack, never allocates on a lie).
#![allow(clippy::unwrap_used)]

use confine_runtime_abstract::{
    codec::{
        decode_body, encode, encode_into, CodecError, FrameBuffer, DEFAULT_MAX_FRAME, HEADER_LEN,
    },
    protocol::{
        ContainerInfo, GlobalDef, GlobalKind, GuestLimits, GuestMessage, GuestRequest, HostMessage,
        HostRequest, Lockdown, LogLevel, Reply, Source,
    },
    value::MAX_DEPTH,
    ErrorData, ErrorKind, Location, Value, PROTOCOL_VERSION,
};
use std::time::{Duration, Instant};

/// xorshift64*: small, deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

// ---------------------------------------------------------------------------------------------
// Sample messages: every variant
// ---------------------------------------------------------------------------------------------

fn sample_value() -> Value {
    [
        ("u".to_owned(), Value::Undefined),
        ("n".to_owned(), Value::Null),
        ("b".to_owned(), Value::Bool(true)),
        ("x".to_owned(), Value::Number(-1.25)),
        ("inf".to_owned(), Value::Number(f64::INFINITY)),
        ("big".to_owned(), Value::BigInt(i128::MIN)),
        ("s".to_owned(), Value::from("héllo")),
        ("bytes".to_owned(), Value::bytes(vec![0, 255, 7])),
        (
            "a".to_owned(),
            [Value::Null, Value::from(1), Value::Array(vec![])]
                .into_iter()
                .collect(),
        ),
    ]
    .into_iter()
    .collect()
}

fn error_data() -> ErrorData {
    ErrorData {
        kind: ErrorKind::Thrown,
        name: "TypeError".into(),
        message: "x is not a function".into(),
        stack: Some("at f (main.js:3:7)".into()),
        location: Some(Location {
            file: "main.js".into(),
            line: 3,
            column: Some(7),
        }),
    }
}

fn host_messages() -> Vec<HostMessage> {
    let requests = vec![
        HostRequest::Exec {
            cid: None,
            source: Source::text("export const f = () => 1;", "main.js"),
            options: sample_value(),
            timeout_ms: None,
            cpu_ms: None,
        },
        HostRequest::Exec {
            cid: Some(u32::MAX),
            source: Source::binary(b"\0asm\x01\0\0\0".to_vec(), "m.wasm"),
            options: sample_value(),
            timeout_ms: Some(u64::MAX),
            cpu_ms: Some(0),
        },
        HostRequest::Config {
            cid: 1,
            options: Value::Null,
        },
        HostRequest::Call {
            cid: u32::MAX,
            export: "f".into(),
            args: vec![sample_value(), Value::Undefined],
            timeout_ms: Some(250),
            cpu_ms: Some(100),
        },
        HostRequest::List,
        HostRequest::Kill { cid: 2 },
        HostRequest::DefineGlobals {
            globals: vec![
                GlobalDef {
                    path: vec!["robot".into(), "sayHello".into()],
                    kind: GlobalKind::Function,
                },
                GlobalDef {
                    path: vec!["config".into()],
                    kind: GlobalKind::Value(sample_value()),
                },
            ],
        },
        HostRequest::WaitIdle {
            cid: 3,
            timeout_ms: None,
        },
    ];
    let mut out = vec![
        HostMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            max_frame: DEFAULT_MAX_FRAME,
            lockdown: None,
            limits: GuestLimits::default(),
        },
        HostMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            max_frame: DEFAULT_MAX_FRAME,
            lockdown: Some(Lockdown {
                seccomp_filter: (0..=255u8).cycle().take(8 * 300).collect(),
            }),
            limits: GuestLimits {
                memory_bytes: Some(u64::MAX),
                stack_bytes: Some(256 << 10),
                output_bytes: Some(0),
                host_calls: Some(7),
                containers: Some(u32::MAX),
            },
        },
    ];
    out.extend(
        requests
            .into_iter()
            .enumerate()
            .map(|(i, request)| HostMessage::Request {
                id: i as u64 * 1_000_003,
                request,
            }),
    );
    out.push(HostMessage::Response {
        id: u64::MAX,
        result: Ok(sample_value()),
    });
    out.push(HostMessage::Response {
        id: 0,
        result: Err(ErrorData::new(ErrorKind::HostFunction, "Error", "nope")),
    });
    out
}

fn guest_messages() -> Vec<GuestMessage> {
    let mut out = vec![GuestMessage::Ready {
        protocol_version: PROTOCOL_VERSION,
        runtime: "quickjs".into(),
        version: "0.14.0".into(),
    }];
    let replies = [
        Ok(Reply::Unit),
        Ok(Reply::Value(sample_value())),
        Ok(Reply::Container(7)),
        Ok(Reply::Containers(vec![
            ContainerInfo {
                cid: 1,
                name: "a.js".into(),
                options: Value::Null,
            },
            ContainerInfo {
                cid: 2,
                name: "b.js".into(),
                options: sample_value(),
            },
        ])),
        Ok(Reply::Containers(vec![])),
        Err(error_data()),
    ];
    out.extend(
        replies
            .into_iter()
            .enumerate()
            .map(|(i, result)| GuestMessage::Response {
                id: i as u64,
                result,
            }),
    );
    out.push(GuestMessage::Request {
        id: 99,
        request: GuestRequest::HostCall {
            cid: 1,
            path: vec!["robot".into(), "sayHello".into()],
            args: vec![Value::from("Ada"), sample_value()],
        },
    });
    for (i, level) in [
        LogLevel::Debug,
        LogLevel::Log,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ]
    .into_iter()
    .enumerate()
    {
        out.push(GuestMessage::Log {
            cid: i as u32,
            level,
            message: format!("line {i}\nwith a newline"),
        });
    }
    out.push(GuestMessage::Uncaught {
        cid: 4,
        error: error_data(),
    });
    out
}

/// Exhaustive names, so a new variant that the samples miss fails to compile or fails
/// `samples_cover_every_variant`.
fn host_variant(m: &HostMessage) -> &'static str {
    match m {
        HostMessage::Hello { .. } => "Hello",
        HostMessage::Request { request, .. } => match request {
            HostRequest::Exec { .. } => "Exec",
            HostRequest::Config { .. } => "Config",
            HostRequest::Call { .. } => "Call",
            HostRequest::List => "List",
            HostRequest::Kill { .. } => "Kill",
            HostRequest::DefineGlobals { .. } => "DefineGlobals",
            HostRequest::WaitIdle { .. } => "WaitIdle",
        },
        HostMessage::Response { result: Ok(_), .. } => "Response/Ok",
        HostMessage::Response { result: Err(_), .. } => "Response/Err",
    }
}

fn guest_variant(m: &GuestMessage) -> &'static str {
    match m {
        GuestMessage::Ready { .. } => "Ready",
        GuestMessage::Response { result, .. } => match result {
            Ok(Reply::Unit) => "Unit",
            Ok(Reply::Value(_)) => "Value",
            Ok(Reply::Container(_)) => "Container",
            Ok(Reply::Containers(_)) => "Containers",
            Err(_) => "Response/Err",
        },
        GuestMessage::Request {
            request: GuestRequest::HostCall { .. },
            ..
        } => "HostCall",
        GuestMessage::Log { level, .. } => level.as_str(),
        GuestMessage::Uncaught { .. } => "Uncaught",
    }
}

#[test]
fn samples_cover_every_variant() {
    let mut host: Vec<_> = host_messages().iter().map(host_variant).collect();
    host.sort_unstable();
    host.dedup();
    assert_eq!(host.len(), 10, "{host:?}");
    let mut guest: Vec<_> = guest_messages().iter().map(guest_variant).collect();
    guest.sort_unstable();
    guest.dedup();
    assert_eq!(guest.len(), 13, "{guest:?}");
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

fn frames<M: serde::Serialize>(msgs: &[M]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        let before = out.len();
        encode_into(m, DEFAULT_MAX_FRAME, &mut out).unwrap();
        let len = u32::from_le_bytes(out[before..before + 4].try_into().unwrap()) as usize;
        assert_eq!(out.len() - before, HEADER_LEN + len, "header matches body");
    }
    out
}

/// Feeds `stream` to a `FrameBuffer` in chunks chosen by `chunk` and decodes every frame.
fn reassemble<M: serde::de::DeserializeOwned>(
    stream: &[u8],
    mut chunk: impl FnMut(usize) -> usize,
) -> Vec<M> {
    let mut fb = FrameBuffer::new(DEFAULT_MAX_FRAME);
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        let buf = fb.buf_mut();
        assert!(buf.len() >= 4096, "always at least 4 KiB of room");
        let n = chunk(buf.len()).clamp(1, buf.len()).min(stream.len() - pos);
        buf[..n].copy_from_slice(&stream[pos..pos + n]);
        fb.filled(n);
        pos += n;
        while let Some(body) = fb.next_frame().unwrap() {
            out.push(decode_body(body).unwrap());
        }
    }
    assert!(!fb.has_partial(), "nothing left over");
    out
}

fn check_round_trips<M>(msgs: Vec<M>)
where
    M: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    // One frame at a time.
    for m in &msgs {
        let frame = encode(m, DEFAULT_MAX_FRAME).unwrap();
        let back: M = decode_body(&frame[HEADER_LEN..]).unwrap();
        assert_eq!(&back, m);
    }
    // All frames back to back, split every possible way.
    let stream = frames(&msgs);
    assert_eq!(
        reassemble::<M>(&stream, |_| usize::MAX),
        msgs,
        "whole reads"
    );
    assert_eq!(reassemble::<M>(&stream, |_| 1), msgs, "one byte at a time");
    for seed in 1..50 {
        let mut rng = Rng(seed);
        let got = reassemble::<M>(&stream, |room| match rng.below(4) {
            0 => 1 + rng.below(8),
            1 => 1 + rng.below(100),
            2 => 1 + rng.below(room),
            _ => room,
        });
        assert_eq!(got, msgs, "random chunks, seed {seed}");
    }
}

#[test]
fn host_messages_round_trip() {
    check_round_trips(host_messages());
}

#[test]
fn guest_messages_round_trip() {
    check_round_trips(guest_messages());
}

#[test]
fn nan_survives_the_wire() {
    let frame = encode(&Value::Number(f64::NAN), 100).unwrap();
    let back: Value = decode_body(&frame[HEADER_LEN..]).unwrap();
    assert!(matches!(back, Value::Number(n) if n.is_nan()));
}

#[test]
fn frames_larger_than_the_buffer_reassemble_and_the_buffer_shrinks_after() {
    let big = HostMessage::Response {
        id: 1,
        result: Ok(Value::bytes(vec![0xab; 3 << 20])),
    };
    let small = HostMessage::Request {
        id: 2,
        request: HostRequest::List,
    };
    let stream = frames(&[small.clone(), big.clone(), small.clone()]);
    let mut rng = Rng(7);
    let got = reassemble::<HostMessage>(&stream, |room| 1 + rng.below(room.min(300_000)));
    assert_eq!(got, [small.clone(), big, small]);

    // Once the big frame is consumed the buffer lets go of its memory.
    let mut fb = FrameBuffer::new(DEFAULT_MAX_FRAME);
    let big_frame = encode(&Value::bytes(vec![1; 2 << 20]), DEFAULT_MAX_FRAME).unwrap();
    let mut pos = 0;
    while pos < big_frame.len() {
        let buf = fb.buf_mut();
        let n = buf.len().min(big_frame.len() - pos);
        buf[..n].copy_from_slice(&big_frame[pos..pos + n]);
        fb.filled(n);
        pos += n;
    }
    assert!(fb.next_frame().unwrap().is_some());
    assert!(fb.buf_mut().len() <= 64 * 1024);
}

#[test]
fn partial_frames_wait() {
    let frame = encode(
        &GuestMessage::Log {
            cid: 1,
            level: LogLevel::Info,
            message: "hi".into(),
        },
        1024,
    )
    .unwrap();
    let mut fb = FrameBuffer::new(1024);
    for (i, &byte) in frame.iter().enumerate() {
        assert!(fb.next_frame().unwrap().is_none());
        assert_eq!(fb.has_partial(), i > 0);
        fb.buf_mut()[0] = byte;
        fb.filled(1);
    }
    let body = fb.next_frame().unwrap().unwrap().to_vec();
    assert_eq!(body, frame[HEADER_LEN..]);
    assert!(!fb.has_partial());
    assert!(fb.next_frame().unwrap().is_none());
}

#[test]
fn empty_frame_is_a_frame_but_not_a_message() {
    let mut fb = FrameBuffer::new(16);
    fb.buf_mut()[..4].copy_from_slice(&0u32.to_le_bytes());
    fb.filled(4);
    assert_eq!(fb.next_frame().unwrap(), Some(&[][..]));
    assert!(matches!(
        decode_body::<HostMessage>(&[]),
        Err(CodecError::Malformed(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

#[test]
fn oversized_header_is_rejected_before_the_body() {
    let mut fb = FrameBuffer::new(1000);
    let room = fb.buf_mut().len();
    fb.buf_mut()[..4].copy_from_slice(&1001u32.to_le_bytes());
    fb.filled(4);
    match fb.next_frame() {
        Err(CodecError::TooLarge { len, max }) => assert_eq!((len, max), (1001, 1000)),
        other => panic!("{other:?}"),
    }
    // The buffer did not grow for it.
    assert!(fb.buf_mut().len() <= room);

    let mut fb = FrameBuffer::new(DEFAULT_MAX_FRAME);
    fb.buf_mut()[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    fb.filled(4);
    assert!(matches!(
        fb.next_frame(),
        Err(CodecError::TooLarge { len, max: DEFAULT_MAX_FRAME }) if len == u64::from(u32::MAX)
    ));
    assert!(fb.buf_mut().len() < 1 << 20, "no allocation for the lie");

    // Exactly the limit is fine.
    let mut fb = FrameBuffer::new(1000);
    fb.buf_mut()[..4].copy_from_slice(&1000u32.to_le_bytes());
    fb.filled(4);
    assert!(fb.next_frame().unwrap().is_none());
}

#[test]
fn encode_respects_the_limit() {
    let msg = Value::from("x".repeat(100));
    let frame = encode(&msg, 1024).unwrap();
    let body_len = frame.len() - HEADER_LEN;
    assert!(encode(&msg, body_len as u32).is_ok());
    let mut out = vec![1, 2, 3];
    match encode_into(&msg, body_len as u32 - 1, &mut out) {
        Err(CodecError::TooLarge { len, max }) => {
            assert_eq!(len, body_len as u64);
            assert_eq!(max, body_len as u32 - 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(out, [1, 2, 3], "nothing appended on error");
}

#[test]
fn truncated_and_extended_bodies_are_errors() {
    for m in host_messages() {
        let frame = encode(&m, DEFAULT_MAX_FRAME).unwrap();
        let body = &frame[HEADER_LEN..];
        for cut in 0..body.len() {
            assert!(
                matches!(
                    decode_body::<HostMessage>(&body[..cut]),
                    Err(CodecError::Malformed(_))
                ),
                "{m:?} cut at {cut}"
            );
        }
        let mut longer = body.to_vec();
        longer.extend_from_slice(&[0, 0, 0]);
        assert!(matches!(
            decode_body::<HostMessage>(&longer),
            Err(CodecError::TrailingBytes { extra: 3 })
        ));
    }
    for m in guest_messages() {
        let frame = encode(&m, DEFAULT_MAX_FRAME).unwrap();
        let body = &frame[HEADER_LEN..];
        for cut in 0..body.len() {
            assert!(decode_body::<GuestMessage>(&body[..cut]).is_err());
        }
        let mut longer = body.to_vec();
        longer.push(1);
        assert!(matches!(
            decode_body::<GuestMessage>(&longer),
            Err(CodecError::TrailingBytes { extra: 1 })
        ));
    }
}

#[test]
fn random_and_mutated_bodies_never_panic() {
    let valid: Vec<Vec<u8>> = host_messages()
        .iter()
        .map(|m| encode(m, DEFAULT_MAX_FRAME).unwrap()[HEADER_LEN..].to_vec())
        .chain(
            guest_messages()
                .iter()
                .map(|m| encode(m, DEFAULT_MAX_FRAME).unwrap()[HEADER_LEN..].to_vec()),
        )
        .collect();
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let (mut ok, mut err) = (0, 0);
    for i in 0..20_000 {
        let body: Vec<u8> = if i % 2 == 0 {
            let len = rng.below(300);
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            let mut b = valid[rng.below(valid.len())].clone();
            match rng.below(4) {
                0 => {
                    for _ in 0..1 + rng.below(4) {
                        if !b.is_empty() {
                            let at = rng.below(b.len());
                            b[at] ^= 1 << rng.below(8);
                        }
                    }
                }
                1 => {
                    let at = rng.below(b.len() + 1);
                    b[..]
                        .iter_mut()
                        .skip(at)
                        .for_each(|x| *x = rng.next() as u8);
                }
                2 => b.truncate(rng.below(b.len() + 1)),
                _ => b.extend((0..1 + rng.below(20)).map(|_| rng.next() as u8)),
            }
            b
        };
        for r in [
            decode_body::<GuestMessage>(&body).map(drop),
            decode_body::<HostMessage>(&body).map(drop),
            decode_body::<Value>(&body).map(drop),
        ] {
            match r {
                Ok(()) => ok += 1,
                Err(_) => err += 1,
            }
        }
    }
    // Both outcomes happen: the input is neither all garbage nor all valid.
    assert!(ok > 100 && err > 10_000, "ok {ok}, err {err}");
}

// ---------------------------------------------------------------------------------------------
// Hostile nesting and lengths
// ---------------------------------------------------------------------------------------------

const ARRAY: u8 = 7;
const OBJECT: u8 = 8;
const NULL: u8 = 1;

/// `depth` arrays of one element around a null, as bincode bytes.
fn nested_array_bytes(depth: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(depth * 2 + 1);
    for _ in 0..depth {
        b.extend_from_slice(&[ARRAY, 1]);
    }
    b.push(NULL);
    b
}

/// `depth` objects `{"k": ...}` around a null.
fn nested_object_bytes(depth: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for _ in 0..depth {
        b.extend_from_slice(&[OBJECT, 1, 1, b'k']);
    }
    b.push(NULL);
    b
}

fn depth_of(v: &Value) -> usize {
    let mut d = 0;
    let mut cur = v;
    loop {
        cur = match cur {
            Value::Array(a) => &a[0],
            Value::Object(m) => &m["k"],
            _ => return d,
        };
        d += 1;
    }
}

#[test]
fn the_enum_tags_are_what_the_hand_encoding_assumes() {
    let v: Value = [Value::Null].into_iter().collect();
    assert_eq!(encode(&v, 100).unwrap()[HEADER_LEN..], [ARRAY, 1, NULL]);
    let o: Value = [("k".to_owned(), Value::Null)].into_iter().collect();
    assert_eq!(
        encode(&o, 100).unwrap()[HEADER_LEN..],
        [OBJECT, 1, 1, b'k', NULL]
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for bytes in [nested_array_bytes(100_000), nested_object_bytes(100_000)] {
        assert!(matches!(
            decode_body::<Value>(&bytes),
            Err(CodecError::Malformed(_))
        ));
        // Inside a message too: Response { id: 5, result: Ok(value) }.
        let mut msg = vec![2, 5, 0];
        msg.extend_from_slice(&bytes);
        assert!(decode_body::<HostMessage>(&msg).is_err());
        // GuestMessage::Response { id: 5, result: Ok(Reply::Value(value)) }.
        let mut msg = vec![1, 5, 0, 1];
        msg.extend_from_slice(&bytes);
        assert!(decode_body::<GuestMessage>(&msg).is_err());
    }
    // The limit itself: MAX_DEPTH levels decode, one more does not.
    for make in [nested_array_bytes, nested_object_bytes] {
        for depth in [0, 1, MAX_DEPTH - 1, MAX_DEPTH] {
            let v: Value = decode_body(&make(depth)).unwrap();
            assert_eq!(depth_of(&v), depth);
        }
        assert!(decode_body::<Value>(&make(MAX_DEPTH + 1)).is_err());
    }
    // The depth counter is reset after an error: the limit still holds exactly.
    assert!(decode_body::<Value>(&nested_array_bytes(MAX_DEPTH + 1)).is_err());
    let v: Value = decode_body(&nested_array_bytes(MAX_DEPTH)).unwrap();
    assert_eq!(depth_of(&v), MAX_DEPTH);
    // Side by side is not nesting: two arrays of MAX_DEPTH in one array of two.
    let mut two = vec![ARRAY, 2];
    two.extend(nested_array_bytes(MAX_DEPTH - 1));
    two.extend(nested_array_bytes(MAX_DEPTH - 1));
    assert!(decode_body::<Value>(&two).is_ok());
    // The Value nested MAX_DEPTH - 1 deep inside a message.
    let mut msg = vec![2, 5, 0];
    msg.extend(nested_array_bytes(MAX_DEPTH - 1));
    match decode_body::<HostMessage>(&msg).unwrap() {
        HostMessage::Response {
            id: 5,
            result: Ok(v),
        } => assert_eq!(depth_of(&v), MAX_DEPTH - 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn huge_length_claims_fail_fast() {
    // varint: 253 then a little-endian u64.
    let claim = |tag: u8, len: u64| {
        let mut b = vec![tag, 253];
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(b"abc");
        b
    };
    for (tag, name) in [
        (5, "string"),
        (6, "bytes"),
        (ARRAY, "array"),
        (OBJECT, "object"),
    ] {
        for len in [1 << 40, u64::MAX, (DEFAULT_MAX_FRAME as u64) - 1] {
            let start = Instant::now();
            let r = decode_body::<Value>(&claim(tag, len));
            assert!(r.is_err(), "{name} of {len}");
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{name} of {len} took {:?}",
                start.elapsed()
            );
        }
    }
    // In a message: a Log whose message claims 2^40 bytes.
    let mut log = vec![3, 1, 1, 253];
    log.extend_from_slice(&(1u64 << 40).to_le_bytes());
    log.extend_from_slice(b"hello");
    assert!(matches!(
        decode_body::<GuestMessage>(&log),
        Err(CodecError::Malformed(_))
    ));
}

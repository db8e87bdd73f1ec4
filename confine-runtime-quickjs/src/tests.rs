//! Drives [`QuickJs`] directly through its [`Link`], as the serve loop would.
#![allow(clippy::unwrap_used)]

use super::*;
use confine_runtime_abstract::{
    protocol::{GlobalKind, GuestMessage, GuestRequest, LogLevel, Reply},
    ErrorKind, Map, RequestId,
};
use std::time::Duration;

struct Harness {
    rt: QuickJs,
    link: Link,
    /// Everything the runtime sent, oldest first.
    seen: Vec<GuestMessage>,
    next_request: RequestId,
    globals: Vec<GlobalDef>,
}

impl Harness {
    fn new() -> Self {
        let link = Link::new();
        let mut rt = QuickJs::default();
        rt.init(link.clone()).unwrap();
        Harness {
            rt,
            link,
            seen: Vec::new(),
            next_request: 1000,
            globals: Vec::new(),
        }
    }

    fn exec(&mut self, cid: ContainerId, code: &str) -> Result<(), ErrorData> {
        let source = Source::text(code, "test.js");
        let globals = self.globals.clone();
        self.rt.exec_container(cid, &source, &Value::Null, &globals)
    }

    fn exec_ok(&mut self, cid: ContainerId, code: &str) {
        if let Err(e) = self.exec(cid, code) {
            panic!("exec failed: {e:?}");
        }
    }

    /// Starts a call; the answer is looked up with [`Harness::response`].
    fn start(&mut self, cid: ContainerId, export: &str, args: Vec<Value>) -> RequestId {
        self.next_request += 1;
        let id = self.next_request;
        self.rt.call(cid, export, args, ReplyTo(id));
        id
    }

    fn pump(&mut self) -> Option<Instant> {
        let next = self.rt.run_pending(Instant::now());
        self.collect();
        next
    }

    fn collect(&mut self) {
        let new = self.link.take_outgoing();
        self.seen.extend(new);
    }

    fn response(&mut self, id: RequestId) -> Option<Result<Reply, ErrorData>> {
        self.collect();
        self.seen.iter().find_map(|m| match m {
            GuestMessage::Response { id: rid, result } if *rid == id => Some(result.clone()),
            _ => None,
        })
    }

    /// Calls an export, runs what is pending, and returns the answer.
    fn call(
        &mut self,
        cid: ContainerId,
        export: &str,
        args: Vec<Value>,
    ) -> Result<Value, ErrorData> {
        let id = self.start(cid, export, args);
        self.pump();
        match self.response(id) {
            Some(Ok(Reply::Value(v))) => Ok(v),
            Some(Ok(other)) => panic!("unexpected reply {other:?}"),
            Some(Err(e)) => Err(e),
            None => panic!("no answer to call of {export}"),
        }
    }

    fn call_ok(&mut self, cid: ContainerId, export: &str, args: Vec<Value>) -> Value {
        match self.call(cid, export, args) {
            Ok(v) => v,
            Err(e) => panic!("call of {export} failed: {e:?}"),
        }
    }

    fn host_calls(&mut self) -> Vec<(RequestId, ContainerId, Vec<String>, Vec<Value>)> {
        self.collect();
        self.seen
            .iter()
            .filter_map(|m| match m {
                GuestMessage::Request {
                    id,
                    request: GuestRequest::HostCall { cid, path, args },
                } => Some((*id, *cid, path.clone(), args.clone())),
                _ => None,
            })
            .collect()
    }

    fn logs(&mut self) -> Vec<(ContainerId, LogLevel, String)> {
        self.collect();
        self.seen
            .iter()
            .filter_map(|m| match m {
                GuestMessage::Log {
                    cid,
                    level,
                    message,
                } => Some((*cid, *level, message.clone())),
                _ => None,
            })
            .collect()
    }

    fn uncaught(&mut self) -> Vec<(ContainerId, ErrorData)> {
        self.collect();
        self.seen
            .iter()
            .filter_map(|m| match m {
                GuestMessage::Uncaught { cid, error } => Some((*cid, error.clone())),
                _ => None,
            })
            .collect()
    }
}

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn n(v: f64) -> Value {
    Value::Number(v)
}

fn obj(pairs: &[(&str, Value)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<Map>(),
    )
}

fn function_global(path: &[&str]) -> GlobalDef {
    GlobalDef {
        path: path.iter().map(|p| (*p).to_owned()).collect(),
        kind: GlobalKind::Function,
    }
}

fn value_global(path: &[&str], v: Value) -> GlobalDef {
    GlobalDef {
        path: path.iter().map(|p| (*p).to_owned()).collect(),
        kind: GlobalKind::Value(v),
    }
}

// ---------------------------------------------------------------------------------------
// Sources and exports

#[test]
fn info_names_engine_and_version() {
    let info = QuickJs::default().info();
    assert_eq!(info.name, "quickjs");
    assert!(
        info.version.starts_with("rquickjs 0.14 (quickjs-ng 0."),
        "{}",
        info.version
    );
}

#[test]
fn a_prepared_engine_runs_the_next_container_only() {
    let mut h = Harness::new();
    h.rt.prepare_engine().unwrap();
    // A mark left in the prepared context shows which container ran on it.
    h.rt.prepared_context()
        .unwrap()
        .with(|ctx| ctx.globals().set("mark", 7))
        .unwrap();
    let code = "module.exports.mark = () => typeof mark === 'undefined' ? null : mark";
    h.exec_ok(1, code);
    assert!(h.rt.prepared_context().is_none());
    h.exec_ok(2, code);
    assert_eq!(h.call_ok(1, "mark", vec![]), n(7.0));
    assert_eq!(h.call_ok(2, "mark", vec![]), Value::Null);
}

#[test]
fn a_prepared_engine_is_not_used_under_a_memory_budget() {
    let mut h = Harness::new();
    h.rt.set_limits(&GuestLimits {
        memory_bytes: Some(64 << 20),
        ..GuestLimits::default()
    })
    .unwrap();
    h.rt.prepare_engine().unwrap();
    h.rt.prepared_context()
        .unwrap()
        .with(|ctx| ctx.globals().set("mark", 7))
        .unwrap();
    // Its allocator is not the budget's, so the container makes its own runtime.
    h.exec_ok(
        1,
        "module.exports.mark = () => typeof mark === 'undefined' ? null : mark",
    );
    assert_eq!(h.call_ok(1, "mark", vec![]), Value::Null);
}

#[test]
fn commonjs_exports_sync_and_async() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "exports.add = (a, b) => a + b;\n\
         exports.later = async (x) => { await null; return x * 2; };\n\
         module.exports.self = function () { return this === module.exports; };",
    );
    assert_eq!(h.call_ok(1, "add", vec![n(1.0), n(2.0)]), n(3.0));
    assert_eq!(h.call_ok(1, "later", vec![n(21.0)]), n(42.0));
    assert_eq!(h.call_ok(1, "self", vec![]), Value::Bool(true));
}

#[test]
fn commonjs_hashbang_and_strictness() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "#!/usr/bin/env node\nexports.sloppy = () => (function () { return this; })() === globalThis;",
    );
    // Sloppy by default, as in node: `this` of a plain call is the global object.
    assert_eq!(h.call_ok(1, "sloppy", vec![]), Value::Bool(true));
    h.exec_ok(
        2,
        "'use strict';\nexports.strict = function () { return (function () { return this; })() === undefined; };",
    );
    assert_eq!(h.call_ok(2, "strict", vec![]), Value::Bool(true));
}

#[test]
fn commonjs_module_exports_replaced() {
    let mut h = Harness::new();
    h.exec_ok(1, "module.exports = { hi() { return 'hi'; } };");
    assert_eq!(h.call_ok(1, "hi", vec![]), s("hi"));
    h.exec_ok(2, "module.exports = function (x) { return x + 1; };");
    assert_eq!(h.call_ok(2, "default", vec![n(1.0)]), n(2.0));
}

#[test]
fn commonjs_exports_read_at_call_time() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "setTimeout(() => { module.exports = { late: () => 'late' }; }, 0);",
    );
    assert_eq!(
        h.call(1, "late", vec![]).unwrap_err().kind,
        ErrorKind::NoSuchExport
    );
    h.rt.run_pending(Instant::now() + Duration::from_millis(5));
    assert_eq!(h.call_ok(1, "late", vec![]), s("late"));
}

#[test]
fn esm_exports_sync_and_async() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "export function add(a, b) { return a + b; }\n\
         export async function later(x) { await null; return x * 2; }\n\
         export const notFn = 5;",
    );
    assert_eq!(h.call_ok(1, "add", vec![n(2.0), n(3.0)]), n(5.0));
    assert_eq!(h.call_ok(1, "later", vec![n(4.0)]), n(8.0));
    let e = h.call(1, "notFn", vec![]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoSuchExport);
    assert!(e.message.contains("notFn"), "{}", e.message);
}

#[test]
fn esm_top_level_await() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "const v = await Promise.resolve(5);\nexport function get() { return v; }",
    );
    assert_eq!(h.call_ok(1, "get", vec![]), n(5.0));
}

#[test]
fn esm_top_level_await_on_host_call() {
    let mut h = Harness::new();
    h.globals.push(function_global(&["config", "load"]));
    h.exec_ok(
        1,
        "const cfg = await config.load('app');\nexport const get = () => cfg.answer;",
    );
    assert!(!h.rt.is_idle(1));
    let calls = h.host_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].2, vec!["config".to_owned(), "load".to_owned()]);
    assert_eq!(calls[0].3, vec![s("app")]);
    h.rt.host_call_settled(calls[0].0, Ok(obj(&[("answer", n(42.0))])));
    h.pump();
    assert_eq!(h.call_ok(1, "get", vec![]), n(42.0));
}

#[test]
fn esm_top_level_throw_is_exec_error() {
    let mut h = Harness::new();
    let e = h
        .exec(1, "export const a = 1;\nthrow new RangeError('nope');")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Thrown);
    assert_eq!(e.name, "RangeError");
    assert_eq!(e.message, "nope");
    // The failed container is gone, and its rejection is not reported a second time.
    assert!(h.rt.is_idle(1));
    h.pump();
    assert!(h.uncaught().is_empty());
    let e = h.call(1, "a", vec![]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoSuchContainer);
}

#[test]
fn commonjs_top_level_throw_is_exec_error() {
    let mut h = Harness::new();
    let e = h.exec(1, "exports.a = 1;\nnull.x;").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Thrown);
    assert_eq!(e.name, "TypeError");
    assert_eq!(e.location.as_ref().map(|l| l.line), Some(2));
}

// ---------------------------------------------------------------------------------------
// Values

#[test]
fn values_round_trip() {
    let mut h = Harness::new();
    h.exec_ok(1, "exports.id = (...args) => args;");
    let args = vec![
        Value::Undefined,
        Value::Null,
        Value::Bool(true),
        n(1.5),
        n(-7.0),
        Value::BigInt(-12),
        Value::BigInt(i128::MAX),
        s("héllo ✓"),
        Value::Bytes(vec![0, 1, 255]),
        Value::Array(vec![n(1.0), Value::Array(vec![s("deep")])]),
        obj(&[
            ("b", n(2.0)),
            ("a", obj(&[("nested", Value::Bytes(vec![]))])),
            ("__proto__", s("just a key")),
        ]),
    ];
    assert_eq!(h.call_ok(1, "id", args.clone()), Value::Array(args));
}

#[test]
fn js_values_convert_like_json() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "exports.make = () => ({\n\
           u8: new Uint8Array([1, 2, 3]).subarray(1),\n\
           buf: new Uint8Array([9, 8]).buffer,\n\
           big: 2n ** 100n,\n\
           small: -5n,\n\
           f: function () {},\n\
           sym: Symbol('s'),\n\
           date: new Date(0),\n\
           custom: { toJSON() { return 'custom'; } },\n\
           list: [1, , undefined, () => 1],\n\
           int: 3, float: 0.25, nan: NaN,\n\
         });",
    );
    let v = h.call_ok(1, "make", vec![]);
    let expected = obj(&[
        ("u8", Value::Bytes(vec![2, 3])),
        ("buf", Value::Bytes(vec![9, 8])),
        ("big", Value::BigInt(1i128 << 100)),
        ("small", Value::BigInt(-5)),
        ("date", s("1970-01-01T00:00:00.000Z")),
        ("custom", s("custom")),
        (
            "list",
            Value::Array(vec![
                n(1.0),
                Value::Undefined,
                Value::Undefined,
                Value::Undefined,
            ]),
        ),
        ("int", n(3.0)),
        ("float", n(0.25)),
        ("nan", Value::Number(f64::NAN)),
    ]);
    // NaN != NaN: compare the rest, then NaN on its own.
    let (Value::Object(mut got), Value::Object(mut want)) = (v, expected) else {
        panic!("not objects");
    };
    assert!(got.shift_remove("nan").unwrap().as_f64().unwrap().is_nan());
    want.shift_remove("nan");
    assert_eq!(got, want);
}

#[test]
fn bigint_outside_i128_is_conversion_error() {
    let mut h = Harness::new();
    h.exec_ok(1, "exports.huge = () => 2n ** 200n;");
    let e = h.call(1, "huge", vec![]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conversion);
}

#[test]
fn cyclic_and_deep_results_are_conversion_errors() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "exports.cyc = () => { const o = { a: [] }; o.a.push(o); return o; };\n\
         exports.deep = () => { let o = {}; for (let i = 0; i < 10000; i++) o = { o }; return o; };\n\
         exports.shared = () => { const x = { v: 1 }; return [x, x]; };\n\
         exports.ok = () => 'still fine';",
    );
    let e = h.call(1, "cyc", vec![]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conversion);
    assert_eq!(e.message, "cyclic or too deeply nested value");
    let e = h.call(1, "deep", vec![]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conversion);
    // The same object twice is not a cycle.
    let x = obj(&[("v", n(1.0))]);
    assert_eq!(
        h.call_ok(1, "shared", vec![]),
        Value::Array(vec![x.clone(), x])
    );
    assert_eq!(h.call_ok(1, "ok", vec![]), s("still fine"));
}

#[test]
fn too_deep_arguments_are_rejected() {
    let mut h = Harness::new();
    h.exec_ok(1, "exports.id = (x) => x;");
    let mut v = Value::Null;
    for _ in 0..200 {
        v = Value::Array(vec![v]);
    }
    let e = h.call(1, "id", vec![v]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conversion);
}

// ---------------------------------------------------------------------------------------
// Errors

#[test]
fn throw_gives_name_message_and_stack() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "function inner() {\n  throw new TypeError('bad thing');\n}\nexports.boom = () => inner();",
    );
    let e = h.call(1, "boom", vec![]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Thrown);
    assert_eq!(e.name, "TypeError");
    assert_eq!(e.message, "bad thing");
    let stack = e.stack.unwrap();
    assert!(
        stack.contains("inner") && stack.contains("test.js:2"),
        "{stack}"
    );
    let loc = e.location.unwrap();
    assert_eq!((loc.file.as_str(), loc.line), ("test.js", 2));
}

#[test]
fn async_rejection_and_non_error_throws() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "exports.rej = async () => { await null; throw new Error('later'); };\n\
         exports.num = () => { throw 42; };\n\
         exports.str = async () => { throw 'oops'; };\n\
         exports.like = () => { throw { name: 'Custom', message: 'shaped like an error' }; };",
    );
    let e = h.call(1, "rej", vec![]).unwrap_err();
    assert_eq!(
        (e.kind, e.name.as_str(), e.message.as_str()),
        (ErrorKind::Thrown, "Error", "later")
    );
    let e = h.call(1, "num", vec![]).unwrap_err();
    assert_eq!((e.name.as_str(), e.message.as_str()), ("number", "42"));
    let e = h.call(1, "str", vec![]).unwrap_err();
    assert_eq!((e.name.as_str(), e.message.as_str()), ("string", "oops"));
    let e = h.call(1, "like", vec![]).unwrap_err();
    assert_eq!(
        (e.name.as_str(), e.message.as_str()),
        ("Custom", "shaped like an error")
    );
    // Rejections answered to a call are handled, not uncaught.
    assert!(h.uncaught().is_empty());
}

#[test]
fn syntax_errors_have_locations() {
    let mut h = Harness::new();
    let e = h.exec(1, "exports.a = 1;\nlet x = ;\n").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert_eq!(e.name, "SyntaxError");
    assert!(!e.message.is_empty());
    let loc = e.location.unwrap();
    assert_eq!((loc.file.as_str(), loc.line), ("test.js", 2));

    // Line 1 columns are not shifted by the CommonJS wrapper.
    let e = h.exec(2, "let y = ;").unwrap_err();
    let loc = e.location.unwrap();
    assert_eq!(loc.line, 1);
    assert!(loc.column.unwrap() <= 10, "{loc:?}");

    // A module's syntax error is reported by the module compiler.
    let e = h
        .exec(3, "import x from 'y';\nexport const = 1;\n")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert_eq!(e.location.unwrap().line, 2);
    assert!(h.rt.containers.is_empty());
}

#[test]
fn missing_export_and_unknown_container() {
    let mut h = Harness::new();
    h.exec_ok(1, "exports.value = 3;");
    let e = h.call(1, "nope", vec![]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoSuchExport);
    assert!(e.message.contains("'nope'"), "{}", e.message);
    let e = h.call(1, "value", vec![]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoSuchExport);
    assert!(e.message.contains("'value'"), "{}", e.message);
    let e = h.call(7, "value", vec![]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoSuchContainer);
    assert!(e.message.contains('7'), "{}", e.message);
    assert_eq!(
        h.rt.config_container(7, &Value::Null).unwrap_err().kind,
        ErrorKind::NoSuchContainer
    );
    assert!(h.rt.config_container(1, &Value::Null).is_ok());
    assert_eq!(
        h.exec(1, "exports.x = 1").unwrap_err().kind,
        ErrorKind::InvalidRequest
    );
}

#[test]
fn exec_before_init_fails() {
    let mut rt = QuickJs::default();
    let source = Source::text("1", "a.js");
    let e = rt
        .exec_container(1, &source, &Value::Null, &[])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Internal);
}

// ---------------------------------------------------------------------------------------
// Host globals

#[test]
fn host_function_round_trip() {
    let mut h = Harness::new();
    h.rt.define_globals(&[function_global(&["robot", "sayHello"])])
        .unwrap();
    h.globals.push(function_global(&["robot", "sayHello"]));
    h.exec_ok(
        1,
        "exports.greet = async (name) => 'got ' + await robot.sayHello(name, { n: 1 });\n\
         exports.fail = async () => { try { await robot.sayHello(); } catch (e) { return e.name + ': ' + e.message + ' ' + (e instanceof Error); } };",
    );
    let id = h.start(1, "greet", vec![s("bob")]);
    h.pump();
    assert!(h.response(id).is_none());
    assert!(!h.rt.is_idle(1));
    let calls = h.host_calls();
    assert_eq!(calls.len(), 1);
    let (call_id, cid, path, args) = calls[0].clone();
    assert_eq!(cid, 1);
    assert_eq!(path, vec!["robot".to_owned(), "sayHello".to_owned()]);
    assert_eq!(args, vec![s("bob"), obj(&[("n", n(1.0))])]);
    h.rt.host_call_settled(call_id, Ok(s("hello bob")));
    h.pump();
    assert_eq!(h.response(id), Some(Ok(Reply::Value(s("got hello bob")))));
    assert!(h.rt.is_idle(1));

    let id = h.start(1, "fail", vec![]);
    h.pump();
    let call_id = h.host_calls().last().unwrap().0;
    h.rt.host_call_settled(
        call_id,
        Err(ErrorData::new(
            ErrorKind::HostFunction,
            "RangeError",
            "host says no",
        )),
    );
    h.pump();
    assert_eq!(
        h.response(id),
        Some(Ok(Reply::Value(s("RangeError: host says no true"))))
    );
    // An answer nobody waits for is ignored.
    h.rt.host_call_settled(99_999, Ok(Value::Null));
    h.pump();
}

#[test]
fn host_function_argument_that_does_not_convert_throws() {
    let mut h = Harness::new();
    h.globals.push(function_global(&["send"]));
    h.exec_ok(
        1,
        "exports.go = () => { const o = {}; o.o = o; try { send(o); } catch (e) { return e.message; } };",
    );
    assert_eq!(
        h.call_ok(1, "go", vec![]),
        s("cyclic or too deeply nested value")
    );
    assert!(h.host_calls().is_empty());
}

#[test]
fn nested_and_value_globals() {
    let mut h = Harness::new();
    h.globals.push(value_global(&["a", "b", "c"], n(42.0)));
    h.globals.push(function_global(&["a", "b", "f"]));
    h.globals.push(value_global(
        &["config"],
        obj(&[("debug", Value::Bool(true))]),
    ));
    h.exec_ok(
        1,
        "exports.check = () => [a.b.c, typeof a.b.f, a.b.f.name, config.debug];",
    );
    assert_eq!(
        h.call_ok(1, "check", vec![]),
        Value::Array(vec![n(42.0), s("function"), s("f"), Value::Bool(true)])
    );
    // define_globals reaches live containers.
    h.rt.define_globals(&[value_global(&["a", "later"], s("yes"))])
        .unwrap();
    h.exec_ok(2, "exports.check = () => typeof a;");
    h.exec_ok(3, "exports.later = () => a.later;");
    assert_eq!(h.call_ok(3, "later", vec![]), Value::Undefined);
    assert_eq!(
        h.call_ok(1, "check", vec![]).as_array().unwrap()[0],
        n(42.0)
    );
    h.exec_ok(4, "exports.later = () => a.later;");
    h.rt.define_globals(&[value_global(&["a", "later"], s("yes"))])
        .unwrap();
    assert_eq!(h.call_ok(4, "later", vec![]), s("yes"));
}

#[test]
fn global_through_non_object_fails() {
    let mut h = Harness::new();
    h.exec_ok(1, "globalThis.n = 5;");
    let e =
        h.rt.define_globals(&[value_global(&["n", "x"], n(1.0))])
            .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    assert!(e.message.contains("n is not an object"), "{}", e.message);
    let e =
        h.rt.define_globals(&[value_global(&[], n(1.0))])
            .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
}

// ---------------------------------------------------------------------------------------
// Console

#[test]
fn console_levels_and_formatting() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "console.log('a', 1, 1.5, -0, 1e21, 10n, undefined, null, true);\n\
         console.info({ x: [1, 'two'], 'a-b': {} });\n\
         console.debug([]);\n\
         console.warn(new RangeError('r'), function named() {}, Symbol('s'));\n\
         const o = { name: 'o' }; o.self = o;\n\
         console.error(o, new Uint8Array([1, 2]), new Map());\n\
         console.log({ get bad() { throw new Error('x'); } });",
    );
    let logs: Vec<(LogLevel, String)> = h.logs().into_iter().map(|(_, l, m)| (l, m)).collect();
    assert_eq!(
        logs,
        vec![
            (
                LogLevel::Log,
                "a 1 1.5 0 1e+21 10n undefined null true".to_owned()
            ),
            (LogLevel::Info, "{ x: [ 1, 'two' ], 'a-b': {} }".to_owned()),
            (LogLevel::Debug, "[]".to_owned()),
            (
                LogLevel::Warn,
                "RangeError: r [Function: named] Symbol(s)".to_owned()
            ),
            (
                LogLevel::Error,
                "{ name: 'o', self: [Circular] } Uint8Array(2) [ 1, 2 ] Map {}".to_owned()
            ),
            (LogLevel::Log, "{ bad: <error> }".to_owned()),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Timers and jobs

#[test]
fn timers_fire_in_order_with_jobs_between() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "const log = [];\n\
         exports.log = () => log;\n\
         setTimeout(() => log.push('t50'), 50);\n\
         setTimeout(() => { log.push('t10'); Promise.resolve().then(() => log.push('micro-after-t10')); }, 10);\n\
         const cancelled = setTimeout(() => log.push('never'), 5);\n\
         clearTimeout(cancelled);\n\
         let ticks = 0;\n\
         const iv = setInterval(() => { log.push('iv' + ++ticks); if (ticks === 3) clearInterval(iv); }, 20);\n\
         setTimeout((a, b) => log.push('args ' + (a + b)), 30, 1, 2);\n\
         queueMicrotask(() => log.push('micro'));\n\
         log.push('sync');",
    );
    let base = Instant::now();
    let log = |h: &mut Harness| -> Vec<String> {
        let v = h.call_ok(1, "log", vec![]);
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect()
    };
    // `call` itself runs pending work with the real clock: only jobs can run this early.
    assert!(h.rt.run_pending(base).is_some());
    assert_eq!(log(&mut h), ["sync", "micro"]);
    h.rt.run_pending(base + Duration::from_millis(15));
    assert_eq!(log(&mut h), ["sync", "micro", "t10", "micro-after-t10"]);
    let next = h.rt.run_pending(base + Duration::from_millis(100)).unwrap();
    assert_eq!(
        log(&mut h),
        [
            "sync",
            "micro",
            "t10",
            "micro-after-t10",
            "iv1",
            "args 3",
            "t50"
        ]
    );
    // The interval re-armed from the round's time.
    assert!(next >= base + Duration::from_millis(120));
    h.rt.run_pending(base + Duration::from_millis(130));
    h.rt.run_pending(base + Duration::from_millis(160));
    h.rt.run_pending(base + Duration::from_millis(190));
    assert_eq!(log(&mut h)[7..], ["iv2", "iv3"]);
    assert_eq!(h.rt.run_pending(base + Duration::from_millis(200)), None);
    assert!(h.rt.is_idle(1));
}

#[test]
fn self_rearming_timer_waits_for_next_round() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "let n = 0;\nexports.n = () => n;\nfunction again() { n++; setTimeout(again, 0); }\nsetTimeout(again, 0);",
    );
    let t = Instant::now() + Duration::from_millis(1);
    let next = h.rt.run_pending(t).unwrap();
    assert!(next <= t);
    h.rt.run_pending(t);
    // One firing per round (the call answers before running anything pending).
    assert_eq!(h.call_ok(1, "n", vec![]), n(2.0));
}

#[test]
fn uncaught_errors_are_reported() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "setTimeout(() => { throw new SyntaxError('in timer'); }, 0);\n\
         Promise.reject(new Error('nobody listens'));\n\
         const p = Promise.reject(new Error('handled later')); p.catch(() => {});\n\
         Promise.reject(7);",
    );
    h.rt.run_pending(Instant::now() + Duration::from_millis(1));
    let uncaught = h.uncaught();
    let described: Vec<(ContainerId, &str, &str)> = uncaught
        .iter()
        .map(|(cid, e)| (*cid, e.name.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        described,
        vec![
            (1, "Error", "nobody listens"),
            (1, "number", "7"),
            (1, "SyntaxError", "in timer"),
        ]
    );
    assert!(uncaught.iter().all(|(_, e)| e.kind == ErrorKind::Thrown));
    // Reported once.
    h.pump();
    assert_eq!(h.uncaught().len(), 3);
}

#[test]
fn idle_transitions() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "exports.wait = () => new Promise((r) => setTimeout(() => r('done'), 10));",
    );
    assert!(h.rt.is_idle(1));
    assert!(h.rt.is_idle(42));
    let id = h.start(1, "wait", vec![]);
    assert!(!h.rt.is_idle(1));
    h.pump();
    assert!(!h.rt.is_idle(1));
    h.rt.run_pending(Instant::now() + Duration::from_millis(20));
    assert_eq!(h.response(id), Some(Ok(Reply::Value(s("done")))));
    assert!(h.rt.is_idle(1));
    h.exec_ok(2, "Promise.resolve().then(() => {});");
    assert!(!h.rt.is_idle(2));
    h.pump();
    assert!(h.rt.is_idle(2));
}

// ---------------------------------------------------------------------------------------
// Isolation and confinement

#[test]
fn containers_are_isolated() {
    let mut h = Harness::new();
    h.globals.push(value_global(&["robot", "name"], s("r2")));
    h.exec_ok(
        1,
        "Object.prototype.x = 1; Array.prototype.push = null; globalThis.leak = 2; robot.extra = 3;",
    );
    h.exec_ok(
        2,
        "exports.check = () => { const a = []; a.push(1); return [({}).x, typeof leak, robot.extra, robot.name, a.length]; };",
    );
    assert_eq!(
        h.call_ok(2, "check", vec![]),
        Value::Array(vec![
            Value::Undefined,
            s("undefined"),
            Value::Undefined,
            s("r2"),
            n(1.0)
        ])
    );
}

#[test]
fn nothing_of_the_host_is_reachable() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "exports.req = () => require('fs');\n\
         exports.types = () => [typeof require, typeof process, typeof std, typeof os, typeof module.require];\n\
         exports.imp = () => import('../x.js');",
    );
    let e = h.call(1, "req", vec![]).unwrap_err();
    assert_eq!(e.name, "ReferenceError");
    assert!(e.message.contains("require"), "{}", e.message);
    assert_eq!(
        h.call_ok(1, "types", vec![]),
        Value::Array(vec![s("undefined"); 5])
    );
    let e = h.call(1, "imp", vec![]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Thrown);
    assert_eq!(
        e.message,
        "import of '../x.js' is not allowed: containers cannot load modules"
    );
}

#[test]
fn static_import_is_refused() {
    let mut h = Harness::new();
    let e = h
        .exec(1, "import x from '/etc/passwd';\nexport const y = x;")
        .unwrap_err();
    assert_eq!(e.name, "Error");
    assert_eq!(
        e.message,
        "import of '/etc/passwd' is not allowed: containers cannot load modules"
    );
    assert!(h.rt.containers.is_empty());
}

#[test]
fn dynamic_import_in_module_is_refused() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "let msg;\ntry { await import('/etc/passwd'); } catch (e) { msg = e.message; }\nexport const get = () => msg;",
    );
    assert_eq!(
        h.call_ok(1, "get", vec![]),
        s("import of '/etc/passwd' is not allowed: containers cannot load modules")
    );
}

#[test]
fn deep_recursion_is_a_catchable_range_error() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "exports.deep = () => { function f(n) { return f(n + 1) + 1; } return f(0); };\n\
         exports.caught = () => { function f() { return f(); } try { f(); } catch (e) { return e.name; } };\n\
         exports.ok = () => 1;",
    );
    let e = h.call(1, "deep", vec![]).unwrap_err();
    assert_eq!((e.kind, e.name.as_str()), (ErrorKind::Thrown, "RangeError"));
    assert_eq!(h.call_ok(1, "caught", vec![]), s("RangeError"));
    assert_eq!(h.call_ok(1, "ok", vec![]), n(1.0));
}

// ---------------------------------------------------------------------------------------
// Kill and teardown

#[test]
fn kill_answers_pending_calls() {
    let mut h = Harness::new();
    h.globals.push(function_global(&["host"]));
    h.exec_ok(
        1,
        "exports.forever = () => new Promise(() => {});\n\
         exports.viaHost = () => host(1);\n\
         setInterval(() => {}, 1000);\n\
         Promise.reject(new Error('pending report'));",
    );
    let a = h.start(1, "forever", vec![]);
    let b = h.start(1, "viaHost", vec![]);
    assert!(h.response(a).is_none() && h.response(b).is_none());
    let host_call = h.host_calls()[0].0;
    h.rt.kill_container(1);
    for id in [a, b] {
        let e = h.response(id).unwrap().unwrap_err();
        assert_eq!(e.kind, ErrorKind::NoSuchContainer);
        assert_eq!(e.message, "container 1 was killed");
    }
    // Late answers and calls find nothing.
    h.rt.host_call_settled(host_call, Ok(Value::Null));
    assert_eq!(h.rt.run_pending(Instant::now()), None);
    assert_eq!(
        h.call(1, "forever", vec![]).unwrap_err().kind,
        ErrorKind::NoSuchContainer
    );
    assert!(h.uncaught().is_empty());
}

#[test]
fn dropping_the_runtime_with_live_state_is_clean() {
    let mut h = Harness::new();
    h.globals.push(function_global(&["host"]));
    for cid in 1..=3 {
        h.exec_ok(
            cid,
            "const keep = { big: new Uint8Array(1024) }; keep.self = keep;\n\
             exports.forever = () => new Promise(() => {});\n\
             host(keep.big);\n\
             setTimeout((k) => k, 5000, keep);\n\
             Promise.reject(keep);",
        );
        h.start(cid, "forever", vec![]);
    }
    // Dropping must release every handle before each QuickJS runtime is freed; QuickJS
    // would abort the test process otherwise.
    drop(h);
}

#[test]
fn host_function_defined_after_start() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "module.exports.check = async () => typeof late === 'function' ? await late(1) : 'missing';",
    );
    assert_eq!(h.call_ok(1, "check", vec![]), s("missing"));
    h.rt.define_globals(&[function_global(&["late"])]).unwrap();
    let id = h.start(1, "check", vec![]);
    h.pump();
    let calls = h.host_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].3, vec![n(1.0)]);
    h.rt.host_call_settled(calls[0].0, Ok(s("late 1")));
    h.pump();
    assert_eq!(h.response(id), Some(Ok(Reply::Value(s("late 1")))));

    // A later container's host call is found past the earlier containers.
    h.globals.push(function_global(&["late"]));
    h.exec_ok(2, "module.exports.check = async () => await late(2);");
    let id = h.start(2, "check", vec![]);
    h.pump();
    let (call, cid, _, _) = h.host_calls()[1].clone();
    assert_eq!(cid, 2);
    h.rt.host_call_settled(call, Ok(s("late 2")));
    h.pump();
    assert_eq!(h.response(id), Some(Ok(Reply::Value(s("late 2")))));
}

#[test]
fn microtask_flood_is_interrupted_at_the_deadline() {
    let mut h = Harness::new();
    h.exec_ok(
        1,
        "exports.flood = () => { const f = () => Promise.resolve().then(f); f(); return new Promise(() => {}); };\n\
         exports.spin = async () => { while (true) { await null; } };\n\
         exports.ok = () => 1;",
    );
    for export in ["flood", "spin"] {
        h.rt.set_deadline(
            1,
            Some(Deadline {
                at: Instant::now() + Duration::from_millis(50),
                limit: Duration::from_millis(50),
            }),
        );
        let t = Instant::now();
        let _id = h.start(1, export, vec![]);
        h.pump();
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{export}: {:?}",
            t.elapsed()
        );
        let uncaught = h.uncaught();
        assert!(
            uncaught
                .iter()
                .any(|(_, e)| e.is_timeout() && e.message.contains("dropped")),
            "{export}: {uncaught:?}"
        );
        h.rt.set_deadline(1, None);
        assert_eq!(h.call_ok(1, "ok", vec![]), n(1.0));
    }
}

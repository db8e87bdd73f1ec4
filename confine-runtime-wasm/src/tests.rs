//! Unit tests: the runtime driven directly through a [`Link`], with modules written in WAT.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use super::*;
use confine_runtime_abstract::{
    protocol::{GuestMessage, GuestRequest, LogLevel, Reply},
    LimitKind,
};
use std::time::{Duration, Instant};

/// A bump allocator, the ABI's `confine_alloc`, and `confine:` exports written by hand.
const ABI: &str = r#"
(module
  (import "confine" "call_host" (func $call_host (param i32 i32 i32 i32) (result i32)))
  (import "confine" "result" (func $result (param i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 1024))
  (data (i32.const 0) "robot.whoami")
  (data (i32.const 16) "[1,\"two\"]")
  (data (i32.const 32) "{\"ok\":")
  (data (i32.const 48) "{\"error\":{\"name\":\"MyError\",\"message\":\"nope\"}}")
  (func $alloc (export "confine_alloc") (param $len i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get $len)))
    (local.get $p))
  (func $pack (param $p i32) (param $n i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32))
            (i64.extend_i32_u (local.get $n))))
  ;; {"ok": <the arguments array>}
  (func (export "confine:echo") (param $p i32) (param $n i32) (result i64)
    (local $out i32)
    (local.set $out (call $alloc (i32.add (local.get $n) (i32.const 7))))
    (memory.copy (local.get $out) (i32.const 32) (i32.const 6))
    (memory.copy (i32.add (local.get $out) (i32.const 6)) (local.get $p) (local.get $n))
    (i32.store8 (i32.add (local.get $out) (i32.add (local.get $n) (i32.const 6))) (i32.const 125))
    (call $pack (local.get $out) (i32.add (local.get $n) (i32.const 7))))
  ;; calls robot.whoami(1, "two") and returns the host's envelope as its own
  (func (export "confine:whoami") (param i32 i32) (result i64)
    (local $len i32) (local $out i32)
    (local.set $len (call $call_host (i32.const 0) (i32.const 12) (i32.const 16) (i32.const 9)))
    (local.set $out (call $alloc (local.get $len)))
    (call $result (local.get $out))
    (call $pack (local.get $out) (local.get $len)))
  (func (export "confine:fail") (param i32 i32) (result i64)
    (call $pack (i32.const 48) (i32.const 45)))
  (func (export "confine:garbage") (param i32 i32) (result i64)
    (call $pack (i32.const 16) (i32.const 9)))
  (func (export "confine:wild") (param i32 i32) (result i64)
    (i64.const -1))
  (func (export "add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1)))
  (func (export "pair") (param f64) (result f64 i64)
    (local.get 0) (i64.const 9007199254740993))
  (func (export "spin") (loop $l (br $l)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "boom") unreachable)
  (func $r (export "recurse") (call $r))
)
"#;

const STDIO: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "hello\nworld\npartial")
  (data (i32.const 200) "oops\n")
  (func $write (param $fd i32) (param $p i32) (param $n i32) (result i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $n))
    (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
  (func (export "_initialize")
    (drop (call $write (i32.const 1) (i32.const 100) (i32.const 6))))
  (func (export "print") (result i32 i32 i32 i32)
    (call $write (i32.const 1) (i32.const 106) (i32.const 13))
    (call $write (i32.const 2) (i32.const 200) (i32.const 5))
    (call $write (i32.const 5) (i32.const 200) (i32.const 5))
    (call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                     (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0))
    (drop (call $prestat (i32.const 3) (i32.const 0))))
)
"#;

struct Rig {
    rt: Wasm,
    link: Link,
    next: u64,
    seen: Vec<GuestMessage>,
}

impl Rig {
    fn new() -> Self {
        let link = Link::new();
        let mut rt = Wasm::default();
        rt.init(link.clone()).expect("init");
        Rig {
            rt,
            link,
            next: 0,
            seen: Vec::new(),
        }
    }

    fn exec_with(&mut self, wat: &str, options: Value) -> Result<ContainerId, ErrorData> {
        let bytes = wat::parse_str(wat).expect("valid WAT");
        self.next += 1;
        let cid = self.next as ContainerId;
        self.rt
            .exec_container(cid, &Source::binary(bytes, "test.wasm"), &options, &[])?;
        Ok(cid)
    }

    fn exec(&mut self, wat: &str) -> ContainerId {
        self.exec_with(wat, Value::Null).expect("exec")
    }

    fn call(&mut self, cid: ContainerId, export: &str, args: Vec<Value>) -> ReplyTo {
        self.next += 1;
        let to = ReplyTo(self.next);
        self.rt.call(cid, export, args, to);
        to
    }

    /// Runs until `to` is answered (10 s at most).
    fn answer(&mut self, to: ReplyTo) -> Result<Reply, ErrorData> {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            self.rt.run_pending(Instant::now());
            self.seen.extend(self.link.take_outgoing());
            let found = self
                .seen
                .iter()
                .position(|m| matches!(m, GuestMessage::Response { id, .. } if *id == to.0));
            if let Some(i) = found {
                let GuestMessage::Response { result, .. } = self.seen.remove(i) else {
                    unreachable!()
                };
                return result;
            }
            assert!(Instant::now() < end, "no answer; seen {:?}", self.seen);
        }
    }

    fn value(&mut self, cid: ContainerId, export: &str, args: Vec<Value>) -> Value {
        let to = self.call(cid, export, args);
        match self.answer(to) {
            Ok(Reply::Value(v)) => v,
            other => panic!("{export}: {other:?}"),
        }
    }

    fn error(&mut self, cid: ContainerId, export: &str, args: Vec<Value>) -> ErrorData {
        let to = self.call(cid, export, args);
        match self.answer(to) {
            Err(e) => e,
            other => panic!("{export}: expected an error, got {other:?}"),
        }
    }

    /// Host calls the guest made, with their ids.
    fn host_calls(&mut self) -> Vec<(HostCallId, Vec<String>, Vec<Value>)> {
        self.seen.extend(self.link.take_outgoing());
        let mut calls = Vec::new();
        self.seen.retain(|m| match m {
            GuestMessage::Request {
                id,
                request: GuestRequest::HostCall { path, args, .. },
            } => {
                calls.push((*id, path.clone(), args.clone()));
                false
            }
            _ => true,
        });
        calls
    }
}

#[test]
fn info_names_the_runtime() {
    assert_eq!(Wasm::default().info().name, "wasm");
}

#[test]
fn plain_exports_take_and_return_numbers() {
    let mut rig = Rig::new();
    let cid = rig.exec(ABI);
    assert_eq!(
        rig.value(cid, "add", vec![2.into(), 40.into()]),
        Value::from(42)
    );
    assert_eq!(
        rig.value(cid, "pair", vec![1.5.into()]),
        Value::Array(vec![1.5.into(), Value::BigInt(9007199254740993)])
    );
    let e = rig.error(cid, "add", vec![1.5.into(), 1.into()]);
    assert_eq!(e.kind, ErrorKind::InvalidRequest, "{e:?}");
    let e = rig.error(cid, "add", vec![1.into()]);
    assert_eq!(e.kind, ErrorKind::InvalidRequest, "{e:?}");
    let e = rig.error(cid, "nope", vec![]);
    assert_eq!(e.kind, ErrorKind::NoSuchExport, "{e:?}");
}

#[test]
fn abi_exports_exchange_json() {
    let mut rig = Rig::new();
    let cid = rig.exec(ABI);
    let args = vec![
        Value::from("x"),
        Value::from_iter([("k".to_owned(), Value::from(true))]),
        Value::Null,
    ];
    assert_eq!(rig.value(cid, "echo", args.clone()), Value::Array(args));
    let e = rig.error(cid, "fail", vec![]);
    assert_eq!(
        (e.kind, e.name.as_str(), e.message.as_str()),
        (ErrorKind::Thrown, "MyError", "nope")
    );
    assert_eq!(
        rig.error(cid, "garbage", vec![]).kind,
        ErrorKind::Conversion
    );
    assert_eq!(rig.error(cid, "wild", vec![]).kind, ErrorKind::Conversion);
    // The container is still fine.
    assert_eq!(
        rig.value(cid, "add", vec![1.into(), 1.into()]),
        Value::from(2)
    );
}

#[test]
fn host_calls_suspend_the_module_until_the_host_answers() {
    let mut rig = Rig::new();
    let cid = rig.exec(ABI);
    let first = rig.call(cid, "whoami", vec![]);
    // Queued behind the first: one instance runs one call at a time.
    let second = rig.call(cid, "add", vec![1.into(), 2.into()]);
    rig.rt.run_pending(Instant::now());
    let calls = rig.host_calls();
    assert_eq!(calls.len(), 1);
    let (id, path, args) = calls[0].clone();
    assert_eq!(path, ["robot", "whoami"]);
    assert_eq!(args, vec![Value::from(1), Value::from("two")]);
    assert!(!rig.rt.is_idle(cid));
    // Nothing moves until the answer comes.
    rig.rt.run_pending(Instant::now());
    assert!(rig.link.take_outgoing().is_empty());
    rig.rt.host_call_settled(id, Ok(Value::from("Bender")));
    assert_eq!(rig.answer(first), Ok(Reply::Value("Bender".into())));
    assert_eq!(rig.answer(second), Ok(Reply::Value(3.into())));
    assert!(rig.rt.is_idle(cid));

    // A host error reaches the module as an error envelope, which this module passes on.
    let third = rig.call(cid, "whoami", vec![]);
    rig.rt.run_pending(Instant::now());
    let (id, ..) = rig.host_calls()[0].clone();
    rig.rt.host_call_settled(
        id,
        Err(ErrorData::new(ErrorKind::HostFunction, "Error", "denied")),
    );
    let e = rig.answer(third).unwrap_err();
    assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Thrown, "denied"));
    // An answer nobody waits for is dropped.
    rig.rt.host_call_settled(9999, Ok(Value::Null));
}

#[test]
fn killing_a_container_answers_its_pending_calls() {
    let mut rig = Rig::new();
    let cid = rig.exec(ABI);
    let first = rig.call(cid, "whoami", vec![]);
    let second = rig.call(cid, "add", vec![1.into(), 2.into()]);
    rig.rt.run_pending(Instant::now());
    let (id, ..) = rig.host_calls()[0].clone();
    rig.rt.kill_container(cid);
    assert_eq!(
        rig.answer(first).unwrap_err().kind,
        ErrorKind::NoSuchContainer
    );
    assert_eq!(
        rig.answer(second).unwrap_err().kind,
        ErrorKind::NoSuchContainer
    );
    rig.rt.host_call_settled(id, Ok(Value::Null));
    assert!(rig.rt.is_idle(cid));
    assert_eq!(
        rig.error(cid, "add", vec![]).kind,
        ErrorKind::NoSuchContainer
    );
}

#[test]
fn stdout_and_stderr_become_console_lines() {
    let mut rig = Rig::new();
    let cid = rig.exec(STDIO);
    assert_eq!(
        rig.value(cid, "print", vec![]),
        // fd_write to 1 and 2 succeed, to fd 5 is EBADF (8), path_open is ENOSYS (52)
        Value::Array(vec![0.into(), 0.into(), 8.into(), 52.into()])
    );
    let logs: Vec<(LogLevel, String)> = rig
        .seen
        .iter()
        .filter_map(|m| match m {
            GuestMessage::Log {
                cid: c,
                level,
                message,
            } if *c == cid => Some((*level, message.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        logs,
        vec![
            (LogLevel::Log, "hello".to_owned()),
            (LogLevel::Log, "world".to_owned()),
            (LogLevel::Error, "oops".to_owned()),
            (LogLevel::Log, "partial".to_owned()),
        ]
    );
}

#[test]
fn time_limit_stops_a_loop_and_the_container_lives_on() {
    let mut rig = Rig::new();
    let options = Value::from_iter([("timeLimitMs".to_owned(), Value::from(50))]);
    let cid = rig.exec_with(ABI, options).expect("exec");
    let start = Instant::now();
    let e = rig.error(cid, "spin", vec![]);
    assert_eq!(
        (e.kind, e.name.as_str()),
        (ErrorKind::Limit, "TimeoutError")
    );
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(
        rig.value(cid, "add", vec![1.into(), 1.into()]),
        Value::from(2)
    );
}

#[test]
fn a_busy_container_does_not_block_others() {
    let mut rig = Rig::new();
    let options = Value::from_iter([("timeLimitMs".to_owned(), Value::from(300))]);
    let busy = rig.exec_with(ABI, options).expect("exec");
    let other = rig.exec(ABI);
    let spin = rig.call(busy, "spin", vec![]);
    let add = rig.call(other, "add", vec![2.into(), 2.into()]);
    // `add` answers while `spin` is still running.
    assert_eq!(rig.answer(add), Ok(Reply::Value(4.into())));
    assert!(!rig.rt.is_idle(busy));
    assert_eq!(rig.answer(spin).unwrap_err().kind, ErrorKind::Limit);
}

#[test]
fn memory_limit_is_a_limit_error() {
    let mut rig = Rig::new();
    let options = Value::from_iter([("memoryLimitBytes".to_owned(), Value::from(4 << 16))]);
    let cid = rig.exec_with(ABI, options).expect("exec");
    assert_eq!(rig.value(cid, "grow", vec![2.into()]), Value::from(1));
    let e = rig.error(cid, "grow", vec![8.into()]);
    assert_eq!(
        (e.kind, e.name.as_str()),
        (ErrorKind::Limit, "RangeError"),
        "{e:?}"
    );
    // A module whose initial memory is already over the limit does not start.
    let options = Value::from_iter([("memoryLimitBytes".to_owned(), Value::from(1024))]);
    let e = rig.exec_with(ABI, options).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Limit, "{e:?}");
}

#[test]
fn traps_and_stack_overflow_are_typed() {
    let mut rig = Rig::new();
    let cid = rig.exec(ABI);
    let e = rig.error(cid, "boom", vec![]);
    assert_eq!(
        (e.kind, e.name.as_str()),
        (ErrorKind::Thrown, "RuntimeError")
    );
    assert!(e.stack.is_some(), "{e:?}");
    let e = rig.error(cid, "recurse", vec![]);
    assert_eq!(e.kind, ErrorKind::Limit, "{e:?}");
    assert_eq!(
        rig.value(cid, "add", vec![1.into(), 1.into()]),
        Value::from(2)
    );
}

#[test]
fn bad_sources_fail_exec_with_typed_errors() {
    let mut rig = Rig::new();
    let e = rig
        .rt
        .exec_container(
            90,
            &Source::binary(b"\0asm\x01\0\0\0\x99".to_vec(), "x"),
            &Value::Null,
            &[],
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Syntax);
    // Text is JavaScript for the plugin; without the plugin, an error that says how to
    // build it.
    let e = rig
        .rt
        .exec_container(91, &Source::text("const = ;", "a.js"), &Value::Null, &[])
        .unwrap_err();
    if cfg!(confine_js_plugin) {
        assert_eq!(
            (e.kind, e.name.as_str()),
            (ErrorKind::Syntax, "SyntaxError")
        );
    } else {
        assert_eq!(e.kind, ErrorKind::Unsupported);
        assert!(e.message.contains("cargo xtask wasm-plugin"), "{e:?}");
    }
    let e = rig
        .exec_with(r#"(module (import "env" "f" (func)))"#, Value::Null)
        .unwrap_err();
    assert_eq!(
        (e.kind, e.name.as_str()),
        (ErrorKind::Unsupported, "LinkError")
    );
    let e = rig
        .exec_with(
            r#"(module (func (export "_start") unreachable))"#,
            Value::Null,
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Thrown);
    let e = rig
        .exec_with(
            ABI,
            Value::from_iter([("timeLimitMs".to_owned(), Value::from("soon"))]),
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
}

#[test]
fn commands_run_start_and_exit_zero_is_success() {
    let mut rig = Rig::new();
    let exit = |code: i32| {
        format!(
            r#"(module
                (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                (func (export "_start") (call $exit (i32.const {code})))
                (func (export "one") (result i32) (i32.const 1)))"#
        )
    };
    let cid = rig.exec(&exit(0));
    assert_eq!(rig.value(cid, "one", vec![]), Value::from(1));
    let e = rig.exec_with(&exit(3), Value::Null).unwrap_err();
    assert_eq!(e.name, "ExitError");
    assert!(e.message.contains('3'), "{e:?}");
}

#[test]
fn a_module_is_compiled_once_per_guest() {
    let mut rig = Rig::new();
    let a = rig.exec(ABI);
    let b = rig.exec(ABI);
    rig.exec(STDIO);
    assert_eq!(rig.rt.compiled.0.len(), 2);
    // Separate instances all the same.
    assert_eq!(rig.value(a, "grow", vec![1.into()]), Value::from(1));
    assert_eq!(rig.value(b, "grow", vec![0.into()]), Value::from(1));
}

/// Polls `f` to completion on this thread (the tasks here never wait for anything).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// fib(27) in the QuickJS plugin with no interruption, with epoch checks and with fuel
/// metering (the choice the issue asks to measure). Needs `cargo xtask wasm-plugin`.
#[test]
#[ignore = "benchmark; run explicitly (after `cargo xtask wasm-plugin`)"]
fn bench_interruption_fuel_vs_epoch() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/wasm-js/wasm32-wasip1/release/confine_js_plugin.wasm"
    );
    let plugin = std::fs::read(path).expect("build the plugin: cargo xtask wasm-plugin");
    let request = confine_runtime_abstract::codec::encode(
        &js_abi::Request {
            deadline: None,
            cpu: None,
            command: js_abi::Command::Exec {
                cid: 1,
                source: Source::text(
                    "function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) }\n\
                     if (fib(27) !== 196418) throw new Error('wrong');",
                    "fib.js",
                ),
                options: Value::Null,
                globals: Vec::new(),
                limits: Default::default(),
            },
        },
        js_abi::MAX_BYTES,
    )
    .unwrap();
    for mode in ["none", "epoch", "fuel", "none", "epoch", "fuel"] {
        let mut config = wasmtime::Config::new();
        config.memory_init_cow(false);
        config.epoch_interruption(mode == "epoch");
        config.consume_fuel(mode == "fuel");
        let engine = Engine::new(&config).unwrap();
        let mut linker = Linker::new(&engine);
        wasi::add(&mut linker).unwrap();
        host::add_confine(&mut linker).unwrap();
        let module = Module::new(&engine, &plugin).unwrap();
        wasi::stub_missing(&mut linker, &module).unwrap();
        let pre = linker.instantiate_pre(&module).unwrap();
        let mut times = Vec::new();
        for _ in 0..5 {
            let mut store = wasmtime::Store::new(
                &engine,
                Host::new(
                    Default::default(),
                    Default::default(),
                    1 << 30,
                    100_000,
                    1 << 20,
                ),
            );
            if mode == "epoch" {
                // Checked at every loop head and call, never reached: the check's cost only.
                store.set_epoch_deadline(1);
            }
            if mode == "fuel" {
                store.set_fuel(u64::MAX).unwrap();
            }
            // Instantiation and engine setup are in the figure too; both are small next to
            // fib(27).
            let start = Instant::now();
            let done = block_on(js::create(&mut store, &pre, &request)).unwrap();
            times.push(start.elapsed());
            assert_eq!(done.answer.result, Ok(()));
        }
        times.sort();
        println!(
            "fib(27) in QuickJS-in-wasm, {mode:>5}: median {:?} (min {:?})",
            times[2], times[0]
        );
    }
}

impl Rig {
    #[cfg_attr(not(confine_js_plugin), allow(dead_code))] // only the plugin's tests
    fn exec_js(&mut self, code: &str) -> Result<ContainerId, ErrorData> {
        self.exec_js_with(code, Value::Null)
    }

    #[cfg_attr(not(confine_js_plugin), allow(dead_code))] // only the plugin's tests
    fn exec_js_with(&mut self, code: &str, options: Value) -> Result<ContainerId, ErrorData> {
        self.next += 1;
        let cid = self.next as ContainerId;
        self.rt
            .exec_container(cid, &Source::text(code, "test.js"), &options, &[])?;
        Ok(cid)
    }
}

#[cfg(confine_js_plugin)]
#[test]
fn js_container_exports_and_values() {
    let mut rig = Rig::new();
    let t = Instant::now();
    let cid = rig
        .exec_js("module.exports.add = (a, b) => a + b; module.exports.id = (x) => x;")
        .expect("exec");
    eprintln!("first container {:?}", t.elapsed());
    let t = Instant::now();
    let cid2 = rig.exec_js("export const f = () => 7;").expect("exec");
    eprintln!("second container {:?}", t.elapsed());
    assert_eq!(
        rig.value(cid, "add", vec![2.into(), 40.into()]),
        Value::from(42)
    );
    assert_eq!(rig.value(cid2, "f", vec![]), Value::from(7));
    for v in [
        Value::Undefined,
        Value::BigInt(1 << 70),
        Value::Bytes(vec![0, 1, 255]),
        Value::from("héllo"),
    ] {
        assert_eq!(rig.value(cid, "id", vec![v.clone()]), v);
    }
    let e = rig.error(cid, "nope", vec![]);
    assert_eq!(e.kind, ErrorKind::NoSuchExport, "{e:?}");
}

#[cfg(confine_js_plugin)]
#[test]
fn js_deep_recursion_is_a_catchable_range_error() {
    let mut rig = Rig::new();
    let cid = rig
        .exec_js(
            "let depth = 0; const down = (n) => { depth = n; return down(n + 1) + 1 };\n\
             module.exports.caught = () => { try { down(0) } catch (e) { return [e instanceof RangeError, e.message, depth] } };\n\
             const viaMap = (n) => [n].map((m) => viaMap(m + 1))[0];\n\
             const viaCall = (n) => viaCall.call(null, n + 1);\n\
             const viaGetter = { get x() { return this.x } };\n\
             const viaJson = (n) => JSON.parse('1', () => viaJson(n + 1));\n\
             module.exports.others = () => [viaMap, viaCall, () => viaGetter.x, viaJson].map((f) => { try { f(0) } catch (e) { return e instanceof RangeError } });\n\
             module.exports.ok = () => 'still here';",
        )
        .expect("exec");
    assert_eq!(
        rig.value(cid, "others", vec![]),
        Value::Array(vec![Value::Bool(true); 4])
    );
    let v = rig.value(cid, "caught", vec![]);
    eprintln!("{v:?}");
    let Value::Array(items) = &v else {
        panic!("{v:?}")
    };
    assert_eq!(items.first(), Some(&Value::Bool(true)), "{v:?}");
    assert_eq!(rig.value(cid, "ok", vec![]), Value::from("still here"));
}

#[cfg(confine_js_plugin)]
#[test]
fn js_memory_limit_is_a_catchable_error() {
    let mut rig = Rig::new();
    let options = Value::from_iter([("memoryLimitBytes".to_owned(), Value::from(32 << 20))]);
    let cid = rig
        .exec_js_with(
            "module.exports.hog = () => { const keep = []; try { for (;;) keep.push(new Array(1e5).fill(keep.length)) } catch (e) { return [String(e), keep.length] } };\n\
             module.exports.ok = () => 'still here';",
            options,
        )
        .expect("exec");
    let v = rig.value(cid, "hog", vec![]);
    eprintln!("{v:?}");
    let Value::Array(items) = &v else {
        panic!("{v:?}")
    };
    let text = items.first().and_then(Value::as_str).unwrap_or_default();
    assert!(text.contains("out of memory"), "{v:?}");
    assert_eq!(rig.value(cid, "ok", vec![]), Value::from("still here"));
    // The same again: the memory was given back to QuickJS's allocator.
    let again = rig.value(cid, "hog", vec![]);
    assert!(format!("{again:?}").contains("out of memory"), "{again:?}");
    // A request too large for the container's memory is refused before it reaches QuickJS,
    // which is none the worse for it.
    let big = Value::from("x".repeat(48 << 20));
    let e = rig.error(cid, "ok", vec![big]);
    assert_eq!(
        (e.kind, e.name.as_str()),
        (ErrorKind::Limit, "RangeError"),
        "{e:?}"
    );
    assert_eq!(rig.value(cid, "ok", vec![]), Value::from("still here"));
}

/// Time from `exec_container` to a container ready to call, for a small JavaScript source
/// (the plugin compiled once before). Prints the median; run with `--release --ignored`.
#[cfg(confine_js_plugin)]
#[test]
#[ignore = "benchmark; run explicitly with --release"]
fn bench_js_container_ready() {
    let mut rig = Rig::new();
    rig.exec_js("module.exports.f = () => 1").expect("warm-up");
    let mut times = Vec::new();
    let all = Instant::now();
    for _ in 0..200 {
        let start = Instant::now();
        let cid = rig.exec_js("module.exports.f = () => 1").expect("exec");
        times.push(start.elapsed());
        rig.rt.kill_container(cid);
        // The serve loop's turns: the reply's, then a quiet one where the runtime prepares
        // the next container's instance.
        rig.rt.run_pending(Instant::now());
        rig.rt.run_pending(Instant::now());
    }
    println!(
        "create and kill a JS container: mean {:?}",
        all.elapsed() / 200
    );
    times.sort();
    println!(
        "new JS container ready: p50 {:?}, p90 {:?}, min {:?}",
        times[times.len() / 2],
        times[times.len() * 9 / 10],
        times[0]
    );
    // And one call into a live container (runtime side only, no socket).
    let cid = rig
        .exec_js("module.exports.add = (a, b) => a + b")
        .expect("exec");
    let mut times = Vec::new();
    for i in 0..1000 {
        let start = Instant::now();
        let v = rig.value(cid, "add", vec![Value::from(i), Value::from(1)]);
        times.push(start.elapsed());
        assert_eq!(v, Value::from(i + 1));
    }
    times.sort();
    println!(
        "call of a JS export: p50 {:?}, p90 {:?}",
        times[times.len() / 2],
        times[times.len() * 9 / 10]
    );
}

/// Where a new JS container's time goes: store, instantiation of the snapshot, start code
/// (none: it ran before the snapshot), and the exec dispatch (console and timers, the
/// source; the QuickJS runtime and context are in the snapshot). Prints medians;
/// run with `--release --ignored`.
#[cfg(confine_js_plugin)]
#[test]
#[ignore = "benchmark; run explicitly with --release"]
fn bench_js_container_breakdown() {
    // CONFINE_BENCH_COW=1: with copy-on-write memory images (memfd; refused in the sandbox),
    // to see what copying the snapshot's data costs.
    let mut config = config();
    config.memory_init_cow(std::env::var_os("CONFINE_BENCH_COW").is_some());
    let engine = Engine::new(&config).unwrap();
    let mut linker = crate::linker(&engine).unwrap();
    let snapshot = snapshot::take(&engine, &linker, JS_PLUGIN.unwrap()).unwrap();
    let module = Module::new(&engine, snapshot).unwrap();
    wasi::stub_missing(&mut linker, &module).unwrap();
    let pre = linker.instantiate_pre(&module).unwrap();
    let request = confine_runtime_abstract::codec::encode(
        &js_abi::Request {
            deadline: None,
            cpu: None,
            command: js_abi::Command::Exec {
                cid: 1,
                source: Source::text("module.exports.f = () => 1", "a.js"),
                options: Value::Null,
                globals: Vec::new(),
                limits: Default::default(),
            },
        },
        js_abi::MAX_BYTES,
    )
    .unwrap();
    let mut t = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..100 {
        let s0 = Instant::now();
        let mut store = container::new_store(
            &engine,
            Default::default(),
            &Default::default(),
            &options::Limits::default(),
        );
        store.set_epoch_deadline(1000);
        let s1 = Instant::now();
        let instance = block_on(pre.instantiate_async(&mut store)).unwrap();
        let s2 = Instant::now();
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            block_on(init.call_async(&mut store, ())).unwrap();
        }
        let s3 = Instant::now();
        let funcs = block_on(js::Funcs::of(&mut store, instance)).unwrap();
        let a = block_on(js::dispatch(&mut store, &funcs, &request)).unwrap();
        assert_eq!(a.result, Ok(()));
        let s4 = Instant::now();
        t[0].push(s1 - s0);
        t[1].push(s2 - s1);
        t[2].push(s3 - s2);
        t[3].push(s4 - s3);
    }
    for (name, mut v) in ["store", "instantiate", "_initialize", "exec"]
        .into_iter()
        .zip(t)
    {
        v.sort();
        println!("new JS container, {name}: median {:?}", v[50]);
    }
}

/// A stand-in for the JS plugin, in WAT: its first dispatch (the exec) answers `Ok`, every
/// later one writes a panic message to stderr and traps, as the plugin does when it panics.
fn trapping_plugin() -> Vec<u8> {
    let answer = confine_runtime_abstract::codec::encode(
        &js_abi::Answer {
            result: Ok(()),
            abandoned: false,
            messages: Vec::new(),
            next_nanos: None,
            idle: true,
        },
        js_abi::MAX_BYTES,
    )
    .unwrap();
    let data: String = answer.iter().map(|b| format!("\\{b:02x}")).collect();
    let wat = format!(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write"
            (func $fd_write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (global $calls (mut i32) (i32.const 0))
          (data (i32.const 16) "{data}")
          (data (i32.const 512) "panicked at 'boom'\n")
          (func (export "confine_alloc") (param i32) (result i32) (i32.const 1024))
          (func (export "confine_free") (param i32 i32))
          (func (export "confine_js_version") (result i32) (i32.const {version}))
          (func (export "confine_js_dispatch") (param i32 i32) (result i64)
            (if (i32.gt_u (global.get $calls) (i32.const 0))
              (then
                (i32.store (i32.const 600) (i32.const 512))
                (i32.store (i32.const 604) (i32.const 19))
                (drop (call $fd_write (i32.const 2) (i32.const 600) (i32.const 1) (i32.const 608)))
                unreachable))
            (global.set $calls (i32.const 1))
            (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const {len}))))"#,
        version = js_abi::VERSION,
        len = answer.len(),
    );
    wat::parse_str(wat).unwrap()
}

#[test]
fn a_trap_in_the_js_plugin_ends_that_container_with_typed_errors() {
    let rig = Rig::new();
    let engines = rig.rt.engines.as_ref().unwrap();
    let module = Module::new(&engines.engine, trapping_plugin()).unwrap();
    let pre = engines.linker.instantiate_pre(&module).unwrap();
    let mut container = JsContainer::new(
        &engines.engine,
        js::Start::Fresh(pre),
        7,
        rig.link.clone(),
        &Default::default(),
        options::Limits::default(),
        &Source::text("", "t.js"),
        &Value::Null,
        &[],
        (None, None),
    );
    while container.runnable() {
        container.step(&engines.ticker);
    }
    assert_eq!(container.exec_result(), Some(&Ok(())));
    container.call("f", vec![], ReplyTo(1));
    container.call("g", vec![], ReplyTo(2));
    while container.runnable() {
        container.step(&engines.ticker);
    }
    // The call that trapped gets the trap; the one queued behind it, and any later one, the
    // container's end.
    container.call("h", vec![], ReplyTo(3));
    let replies: Vec<(u64, ErrorData)> = rig
        .link
        .take_outgoing()
        .into_iter()
        .filter_map(|m| match m {
            GuestMessage::Response { id, result: Err(e) } => Some((id, e)),
            _ => None,
        })
        .collect();
    assert_eq!(replies.len(), 3, "{replies:?}");
    assert_eq!(replies[0].0, 1);
    assert_eq!(replies[0].1.name, "RuntimeError", "{replies:?}");
    assert!(
        replies[0].1.message.contains("panicked at 'boom'"),
        "{replies:?}"
    );
    for (_, e) in &replies[1..] {
        assert!(e.message.contains("runs no more code"), "{e:?}");
    }
    assert!(container.is_idle());
}

#[cfg(confine_js_plugin)]
#[test]
fn js_containers_start_on_an_instance_made_ahead() {
    let mut rig = Rig::new();
    let a = rig
        .exec_js("globalThis.x = 1; module.exports.x = () => x;")
        .expect("exec");
    assert!(rig.rt.js_spare.is_none());
    // Not in the turn that answers the exec (its reply is not out yet), in the next one.
    assert!(rig.rt.run_pending(Instant::now()).is_some());
    assert!(rig.rt.js_spare.is_none());
    rig.rt.run_pending(Instant::now());
    assert!(rig.rt.js_spare.is_some(), "a spare after a quiet turn");
    let b = rig
        .exec_js("module.exports.x = () => typeof x;")
        .expect("exec");
    assert!(rig.rt.js_spare.is_none(), "the spare was used");
    assert_eq!(rig.value(a, "x", vec![]), Value::from(1));
    assert_eq!(rig.value(b, "x", vec![]), Value::from("undefined"));
    // A memory limit below the plugin's initial memory: the spare does not fit (and stays
    // for the next container); instantiating under the limit fails with a typed error.
    rig.rt.run_pending(Instant::now());
    rig.rt.run_pending(Instant::now());
    let tiny = Value::from_iter([("memoryLimitBytes".to_owned(), Value::from(64 << 10))]);
    let e = rig
        .exec_js_with("module.exports.f = () => 1", tiny)
        .unwrap_err();
    assert_eq!(
        (e.kind, e.name.as_str()),
        (ErrorKind::Limit, "RangeError"),
        "{e:?}"
    );
    assert!(rig.rt.js_spare.is_some());
}

#[cfg(confine_js_plugin)]
#[test]
fn js_request_deadline_stops_script_code_and_the_container_carries_on() {
    let mut rig = Rig::new();
    let cid = rig
        .exec_js("module.exports.spin = () => { for (;;) {} };\nmodule.exports.ok = () => 'ok';")
        .expect("exec");
    let limit = Duration::from_millis(50);
    rig.rt.set_deadline(
        cid,
        Some(Deadline {
            at: Instant::now() + limit,
            limit,
        }),
    );
    let start = Instant::now();
    let e = rig.error(cid, "spin", vec![]);
    assert_eq!(e.kind, ErrorKind::Limit, "{e:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    rig.rt.set_deadline(cid, None);
    assert_eq!(rig.value(cid, "ok", vec![]), Value::from("ok"));
}

#[cfg(confine_js_plugin)]
#[test]
fn js_a_time_limit_of_centuries_is_no_limit() {
    let mut rig = Rig::new();
    let options = Value::from_iter([("timeLimitMs".to_owned(), Value::from(9.0e15))]);
    let cid = rig
        .exec_js_with("module.exports.f = () => 1", options)
        .expect("exec");
    assert_eq!(rig.value(cid, "f", vec![]), Value::from(1));
}

/// `Math.random` of containers started from the same snapshot (the first instantiated for
/// it, the others on instances made ahead): without the per-container reseed, every one
/// would draw the same numbers.
#[cfg(confine_js_plugin)]
#[test]
fn js_containers_do_not_share_random_state() {
    let mut rig = Rig::new();
    let code = "module.exports.draw = () => [Math.random(), Math.random(), Math.random()]";
    let mut draws = Vec::new();
    for _ in 0..4 {
        let cid = rig.exec_js(code).expect("exec");
        draws.push(rig.value(cid, "draw", vec![]));
        // Quiet turns: the next container starts on a spare instance.
        rig.rt.run_pending(Instant::now());
        rig.rt.run_pending(Instant::now());
    }
    assert!(rig.rt.js_spare.is_some());
    for (i, a) in draws.iter().enumerate() {
        for b in &draws[i + 1..] {
            assert_ne!(a, b, "two containers drew the same numbers: {draws:?}");
        }
    }
}

/// A stand-in plugin for the snapshot: its `confine_js_init` stores the realtime clock at
/// 0 and asks for randomness `random` times, 16 bytes each (the standard library's hash
/// keys are one such request).
fn snapshot_probe(random: usize) -> Vec<u8> {
    let random = "(drop (call $random (i32.const 16) (i32.const 16)))".repeat(random);
    wat::parse_str(format!(
        r#"(module
          (import "wasi_snapshot_preview1" "clock_time_get"
            (func $clock (param i32 i64 i32) (result i32)))
          (import "wasi_snapshot_preview1" "random_get"
            (func $random (param i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "confine_js_init")
            (drop (call $clock (i32.const 0) (i64.const 0) (i32.const 0)))
            {random}))"#
    ))
    .unwrap()
}

#[test]
fn snapshots_freeze_no_time_and_no_randomness() {
    let rig = Rig::new();
    let engines = rig.rt.engines.as_ref().unwrap();
    let clock_at_0 = |wasm: &[u8]| {
        let module = Module::new(&engines.engine, wasm).unwrap();
        let mut store = container::new_store(
            &engines.engine,
            Default::default(),
            &Default::default(),
            &options::Limits::default(),
        );
        store.set_epoch_deadline(1);
        let instance = block_on(engines.linker.instantiate_async(&mut store, &module)).unwrap();
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, js_abi::INIT) {
            block_on(init.call_async(&mut store, ())).unwrap();
        }
        let memory = instance.get_memory(&mut store, "memory").unwrap();
        u64::from_le_bytes(memory.data(&store)[..8].try_into().unwrap())
    };
    // Positive control: run as is, the init function reads the real time.
    let plain = snapshot_probe(1);
    assert!(clock_at_0(&plain) > 1_000_000_000, "the realtime clock");
    // Snapshotted, it read zero (and the snapshot no longer exports it).
    let snapshot = snapshot::take(&engines.engine, &engines.linker, &plain).unwrap();
    assert_eq!(clock_at_0(&snapshot), 0);
    // More randomness than the standard library's keys fails the snapshot.
    let e = snapshot::take(&engines.engine, &engines.linker, &snapshot_probe(2)).unwrap_err();
    assert!(e.message.contains("randomness"), "{e:?}");
}

/// The guest's memory limit is one budget for all its instances: a container that would fit
/// on its own is refused room another one holds, with QuickJS's catchable out-of-memory
/// error inside and the memory limit's error outside, and both carry on.
#[cfg(confine_js_plugin)]
#[test]
fn js_containers_share_the_guests_memory_limit() {
    const LIMIT: u64 = 48 << 20;
    let mut rig = Rig::new();
    rig.rt
        .set_limits(&GuestLimits {
            memory_bytes: Some(LIMIT),
            ..GuestLimits::default()
        })
        .unwrap();
    let code = "let keep = [];\n\
        module.exports.hold = (mb) => { for (let i = 0; i < mb; i++) keep.push(new Uint8Array(1 << 20).fill(1)); return keep.length };\n\
        module.exports.free = () => { keep = []; return 0 };\n\
        module.exports.caught = (mb) => { try { return module.exports.hold(mb) } catch (e) { keep = []; return String(e) } };\n\
        module.exports.ok = () => 'ok';";
    let a = rig.exec_js(code).expect("exec a");
    let b = rig.exec_js(code).expect("exec b");
    // A holds 30 MiB; B's 20 more do not fit in the guest's 48.
    assert_eq!(rig.value(a, "hold", vec![30.into()]), Value::from(30));
    assert!(rig.rt.budget.used() > 30 << 20, "{}", rig.rt.budget.used());
    let caught = rig.value(b, "caught", vec![20.into()]);
    assert!(
        format!("{caught:?}").contains("out of memory"),
        "{caught:?}"
    );
    let e = rig.error(b, "hold", vec![20.into()]);
    assert_eq!(e.limit_kind(), Some(LimitKind::Memory), "{e:?}");
    assert!(e.message.contains(&LIMIT.to_string()), "{e:?}");
    assert_eq!(rig.value(b, "ok", vec![]), Value::from("ok"));
    assert_eq!(rig.value(a, "ok", vec![]), Value::from("ok"));
    // Once A is gone (linear memory never shrinks, so freeing inside it would not do), the
    // same request fits: it was the guest's limit, not B's own.
    rig.rt.kill_container(a);
    assert_eq!(rig.value(b, "free", vec![]), Value::from(0));
    assert_eq!(rig.value(b, "hold", vec![20.into()]), Value::from(20));
}

/// A CPU-time deadline stops spinning script code with the CPU-time limit's error, and the
/// container carries on.
#[cfg(confine_js_plugin)]
#[test]
fn js_cpu_deadline_stops_script_code_and_the_container_carries_on() {
    let mut rig = Rig::new();
    let cid = rig
        .exec_js("module.exports.spin = () => { for (;;) {} };\nmodule.exports.ok = () => 'ok';")
        .expect("exec");
    let limit = Duration::from_millis(50);
    rig.rt.set_cpu_deadline(
        cid,
        Some(CpuDeadline {
            at: confine_runtime_abstract::support::thread_cpu_time() + limit,
            limit,
        }),
    );
    let e = rig.error(cid, "spin", vec![]);
    assert_eq!(e.limit_kind(), Some(LimitKind::CpuTime), "{e:?}");
    assert!(e.message.contains("50 ms"), "{e:?}");
    rig.rt.set_cpu_deadline(cid, None);
    assert_eq!(rig.value(cid, "ok", vec![]), Value::from("ok"));
}

/// Deeply nested JSON is QuickJS's catchable `RangeError` (its stack check on the shadow
/// stack), not wasm's stack exhausted under it, which would end the container.
#[cfg(confine_js_plugin)]
#[test]
fn js_deeply_nested_json_is_a_catchable_range_error() {
    let mut rig = Rig::new();
    let cid = rig
        .exec_js(
            "module.exports.nested = (n) => { try { JSON.parse('['.repeat(n) + ']'.repeat(n)); return 'parsed'; } catch (e) { return e.name; } };\n\
             module.exports.ok = () => 'ok';",
        )
        .expect("exec");
    assert_eq!(
        rig.value(cid, "nested", vec![Value::from(1000)]),
        Value::from("parsed")
    );
    assert_eq!(
        rig.value(cid, "nested", vec![Value::from(1_000_000)]),
        Value::from("RangeError")
    );
    assert_eq!(rig.value(cid, "ok", vec![]), Value::from("ok"));
}

/// A CPU-time deadline stops a module's spinning call with the CPU-time limit's error at an
/// epoch tick; the instance answers the next call.
#[test]
fn module_cpu_deadline_stops_a_spinning_call() {
    let mut rig = Rig::new();
    let cid = rig.exec(
        r#"(module
          (func (export "spin") (loop (br 0)))
          (func (export "one") (result i32) (i32.const 1)))"#,
    );
    let limit = Duration::from_millis(50);
    rig.rt.set_cpu_deadline(
        cid,
        Some(CpuDeadline {
            at: confine_runtime_abstract::support::thread_cpu_time() + limit,
            limit,
        }),
    );
    let e = rig.error(cid, "spin", vec![]);
    assert_eq!(e.limit_kind(), Some(LimitKind::CpuTime), "{e:?}");
    rig.rt.set_cpu_deadline(cid, None);
    assert_eq!(rig.value(cid, "one", vec![]), Value::from(1));
}

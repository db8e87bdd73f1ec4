//! Drives [`QuickJs`] directly through its [`Link`], as the serve loop would: every case of
//! `confine_runtime_testkit`, then what is QuickJS's own.
#![allow(clippy::unwrap_used)]

use super::*;
use confine_runtime_abstract::ErrorKind;
use confine_runtime_testkit::{n, s, Harness};
use std::time::Duration;

confine_runtime_testkit::runtime_cases!(QuickJs::default);

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
    let mut h = Harness::new(QuickJs::default());
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
    let mut h = Harness::new(QuickJs::default());
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
fn deep_recursion_is_a_catchable_range_error() {
    let mut h = Harness::new(QuickJs::default());
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

#[test]
fn microtask_flood_is_interrupted_at_the_deadline() {
    let mut h = Harness::new(QuickJs::default());
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

//! Drives [`Boa`] directly through its [`Link`], as the serve loop would: every case of
//! `confine_runtime_testkit`, then what is Boa's own.
#![allow(clippy::unwrap_used)]

use super::*;
use confine_runtime_abstract::{ErrorKind, LimitKind};
use confine_runtime_testkit::{n, s, Harness};

confine_runtime_testkit::runtime_cases!(Boa::default);

#[test]
fn info_names_engine_and_version() {
    let info = Boa::default().info();
    assert_eq!(info.name, "boa");
    assert!(
        info.version.starts_with("boa_engine 0."),
        "{}",
        info.version
    );
}

/// boa's recursion limit is an engine error that script code cannot catch (by boa's design):
/// the call fails with a limit error, `catch` never runs, and the container stays usable.
#[test]
fn deep_recursion_is_an_uncatchable_limit() {
    let mut h = Harness::new(Boa::default());
    h.exec_ok(
        1,
        "let caughtIt = false;\n\
         exports.deep = () => { function f(n) { return f(n + 1) + 1; } return f(0); };\n\
         exports.caught = () => { function f() { return f(); } try { f(); } catch (e) { caughtIt = true; return e.name; } };\n\
         exports.getter = () => { const o = { get x() { return this.x; } }; return o.x; };\n\
         exports.later = async () => { await null; function f() { return f(); } return f(); };\n\
         exports.wasCaught = () => caughtIt;\n\
         exports.ok = () => 1;",
    );
    for export in ["deep", "caught", "getter"] {
        let e = h.call(1, export, vec![]).unwrap_err();
        assert_eq!(
            (e.kind, e.limit_kind()),
            (ErrorKind::Limit, Some(LimitKind::Stack)),
            "{export}: {e:?}"
        );
        assert!(e.message.contains("call depth"), "{}", e.message);
    }
    assert_eq!(h.call_ok(1, "wasCaught", vec![]), Value::Bool(false));
    assert_eq!(h.call_ok(1, "ok", vec![]), n(1.0));
    // After an `await` the limit is swallowed by boa itself: the resumed async function stops,
    // but boa ignores the resumption's outcome (`vm/opcode/await/mod.rs` drops it), so its
    // promise never settles and nothing is reported. The call stays pending (until the host's
    // time limit or a kill); the container stays usable.
    let id = h.start(1, "later", vec![]);
    h.pump();
    assert!(h.uncaught().is_empty());
    assert!(h.response(id).is_none());
    assert_eq!(h.call_ok(1, "ok", vec![]), n(1.0));
    h.rt.kill_container(1);
    assert_eq!(
        h.response(id).unwrap().unwrap_err().kind,
        ErrorKind::NoSuchContainer
    );
}

/// Recursion through native code (a getter called by a built-in, `toJSON`, a sort comparator,
/// a proxy trap) uses the native stack once per level; the recursion limit must stop it well
/// before a test thread's 2 MiB stack overflows (which would abort the process).
#[test]
fn native_reentry_stays_inside_the_stack() {
    let mut h = Harness::new(Boa::default());
    h.exec_ok(
        1,
        "exports.viaJson = () => { const o = { toJSON() { return JSON.stringify(o); } }; return JSON.stringify(o); };\n\
         exports.viaSort = () => { const a = [2, 1]; const f = () => a.sort(f); return a.sort(f); };\n\
         exports.viaMap = () => { const f = () => [1].map(f); return f(); };\n\
         exports.viaProxy = () => { const p = new Proxy({}, { get(t, k, r) { return r[k]; } }); return p.x; };\n\
         exports.viaToString = () => { const o = { toString() { return String(o2); } }; const o2 = { toString() { return `${o}`; } }; return String(o); };\n\
         exports.ok = () => 'ok';",
    );
    // A limit error unwinding through native callbacks (the sort comparator, the proxy trap)
    // leaves some of boa's VM stack slots behind (see `MAX_VM_STACK`); repeated hits must not
    // break the container.
    for round in 0..10 {
        for export in ["viaJson", "viaSort", "viaMap", "viaProxy"] {
            let e = h.call(1, export, vec![]).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Limit, "{export} (round {round}): {e:?}");
            assert!(
                e.message.contains("call depth"),
                "{export} (round {round}): {e:?}"
            );
        }
    }
    // boa cuts a cycle through `toString` short itself (an empty string, as for cyclic
    // `Array.prototype.join`).
    assert_eq!(h.call_ok(1, "viaToString", vec![]), s(""));
    assert_eq!(h.call_ok(1, "ok", vec![]), s("ok"));
}

#[test]
fn local_time_is_utc_and_engine_jobs_do_not_linger() {
    let mut h = Harness::new(Boa::default());
    h.exec_ok(
        1,
        "const wr = new WeakRef({ a: 1 });\n\
         new FinalizationRegistry(() => {}).register({}, 'held');\n\
         exports.tz = () => [new Date(0).getTimezoneOffset(), new Date(0).getHours()];\n\
         exports.weak = () => typeof wr.deref();",
    );
    assert_eq!(
        h.call_ok(1, "tz", vec![]),
        Value::Array(vec![n(0.0), n(0.0)])
    );
    assert_eq!(h.call_ok(1, "weak", vec![]), s("object"));
    // The FinalizationRegistry's cleanup job (which waits for the collector) is not kept.
    h.pump();
    assert!(h.rt.is_idle(1));
}

#[test]
fn queue_microtask_errors_are_uncaught() {
    let mut h = Harness::new(Boa::default());
    h.exec_ok(
        1,
        "const log = [];\n\
         queueMicrotask(() => { log.push('a'); throw new TypeError('in microtask'); });\n\
         queueMicrotask(() => log.push('b'));\n\
         exports.log = () => log;\n\
         exports.bad = () => queueMicrotask(42);",
    );
    h.pump();
    assert_eq!(
        h.call_ok(1, "log", vec![]),
        Value::Array(vec![s("a"), s("b")])
    );
    let uncaught = h.uncaught();
    assert_eq!(uncaught.len(), 1);
    assert_eq!(
        (uncaught[0].1.name.as_str(), uncaught[0].1.message.as_str()),
        ("TypeError", "in microtask")
    );
    let e = h.call(1, "bad", vec![]).unwrap_err();
    assert_eq!((e.kind, e.name.as_str()), (ErrorKind::Thrown, "TypeError"));
}

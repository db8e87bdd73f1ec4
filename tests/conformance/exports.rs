//! Exports: module formats, async results, values, timers, console.

use crate::{Console, Target};
use confine::{ContainerSource, LogLevel, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub(crate) async fn commonjs_exports(t: &Target) {
    let sb = t.start().await;
    let cid = sb
        .exec_container(ContainerSource::code(
            "module.exports.addOne = (n) => n + 1;\nexports.twice = (s) => s + s;",
        ))
        .await
        .unwrap();
    assert_eq!(sb.call::<i64>(cid, "addOne", (5,)).await.unwrap(), 6);
    assert_eq!(
        sb.call::<String>(cid, "twice", ("ab",)).await.unwrap(),
        "abab"
    );
}

pub(crate) async fn exports_object_shorthand(t: &Target) {
    let sb = t.start().await;
    let cid = sb
        .exec_container(ContainerSource::code(
            "function mul(a, b) { return a * b }\nmodule.exports = { mul };",
        ))
        .await
        .unwrap();
    assert_eq!(sb.call::<f64>(cid, "mul", (6, 7)).await.unwrap(), 42.0);
}

pub(crate) async fn es_module_exports(t: &Target) {
    let sb = t.start().await;
    let cid = sb
        .exec_container(ContainerSource::code(
            "export function hello(name) { return `hello ${name}` }\nexport const answer = () => 42;",
        ))
        .await
        .unwrap();
    assert_eq!(
        sb.call::<String>(cid, "hello", ("esm",)).await.unwrap(),
        "hello esm"
    );
    assert_eq!(sb.call::<u32>(cid, "answer", ()).await.unwrap(), 42);
}

pub(crate) async fn async_exports(t: &Target) {
    let sb = t.start().await;
    let cid = sb
        .exec_container(ContainerSource::code(
            r#"
            const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
            module.exports.slow = async (x) => { await sleep(20); return x * 2 };
            module.exports.rejects = async () => { await sleep(1); throw new RangeError("nope") };
            "#,
        ))
        .await
        .unwrap();
    assert_eq!(sb.call::<i32>(cid, "slow", (21,)).await.unwrap(), 42);
    let err = sb.call::<Value>(cid, "rejects", ()).await.unwrap_err();
    let data = err.script_error().expect("a script error");
    assert_eq!(data.name, "RangeError");
    assert_eq!(data.message, "nope");
}

pub(crate) async fn values_round_trip(t: &Target) {
    let sb = t.start().await;
    let cid = sb
        .exec_container(ContainerSource::code("module.exports.id = (x) => x;"))
        .await
        .unwrap();
    let mut obj = confine::Map::new();
    obj.insert("b".into(), Value::Number(1.5));
    obj.insert(
        "a".into(),
        Value::Array(vec![Value::Null, Value::Bool(true)]),
    );
    let cases = vec![
        Value::Null,
        Value::Bool(false),
        Value::Number(-0.25),
        Value::Number(9007199254740991.0),
        Value::BigInt(1 << 70),
        Value::String("héllo \u{1F600}".into()),
        Value::Bytes(vec![0, 1, 2, 255]),
        Value::Array(vec![Value::Number(1.0), Value::String("x".into())]),
        Value::Object(obj),
    ];
    for v in cases {
        let back = sb.call_value(cid, "id", vec![v.clone()]).await.unwrap();
        assert_eq!(back, v, "round trip of {v:?}");
    }
    // `undefined` has no JSON form but does cross the boundary.
    let back = sb
        .call_value(cid, "id", vec![Value::Undefined])
        .await
        .unwrap();
    assert_eq!(back, Value::Undefined);
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Order {
    id: u32,
    items: Vec<String>,
    notes: Option<String>,
    totals: BTreeMap<String, f64>,
}

pub(crate) async fn typed_call_arguments_and_results(t: &Target) {
    let sb = t.start().await;
    let cid = sb
        .exec_container(ContainerSource::code(
            "module.exports.bump = (o, by) => ({ ...o, id: o.id + by, items: [...o.items, 'more'] });",
        ))
        .await
        .unwrap();
    let order = Order {
        id: 1,
        items: vec!["a".into()],
        notes: None,
        totals: [("eur".to_string(), 2.5)].into(),
    };
    let out: Order = sb.call(cid, "bump", (&order, 10)).await.unwrap();
    assert_eq!(
        out,
        Order {
            id: 11,
            items: vec!["a".into(), "more".into()],
            notes: None,
            totals: order.totals.clone(),
        }
    );
}

pub(crate) async fn timers_run_in_order(t: &Target) {
    let console = Console::default();
    let sb = console.attach(t.builder()).build().await.unwrap();
    let cid = sb
        .exec_container(ContainerSource::code(
            r#"
            const log = [];
            setTimeout(() => log.push("t30"), 30);
            setTimeout(() => log.push("t10"), 10);
            const cancelled = setTimeout(() => log.push("never"), 5);
            clearTimeout(cancelled);
            let n = 0;
            const iv = setInterval(() => { log.push("iv" + (++n)); if (n === 3) clearInterval(iv); }, 2);
            queueMicrotask(() => log.push("micro"));
            Promise.resolve().then(() => log.push("then"));
            log.push("sync");
            module.exports.log = () => log;
            "#,
        ))
        .await
        .unwrap();
    sb.wait_idle(cid).await.unwrap();
    let log: Vec<String> = sb.call(cid, "log", ()).await.unwrap();
    assert_eq!(&log[..3], ["sync", "micro", "then"]);
    let pos = |s: &str| {
        log.iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("{s} missing from {log:?}"))
    };
    assert!(pos("t10") < pos("t30"), "{log:?}");
    assert!(
        pos("iv1") < pos("iv2") && pos("iv2") < pos("iv3"),
        "{log:?}"
    );
    assert!(!log.contains(&"never".to_string()));
    assert!(!log.contains(&"iv4".to_string()));
}

pub(crate) async fn console_levels_forwarded(t: &Target) {
    let console = Console::default();
    let sb = console.attach(t.builder()).build().await.unwrap();
    let cid = sb
        .exec_container(ContainerSource::code(
            r#"
            console.log("log", 1, true, null, undefined, [1, "a"], { k: "v" });
            console.info("info");
            console.debug("debug");
            console.warn("warn");
            console.error("error", new TypeError("bad"));
            const cyclic = {}; cyclic.self = cyclic; console.log(cyclic);
            "#,
        ))
        .await
        .unwrap();
    sb.wait_idle(cid).await.unwrap();
    let lines = console.lines();
    let levels: Vec<LogLevel> = lines.iter().map(|(l, _)| *l).collect();
    assert_eq!(
        levels,
        [
            LogLevel::Log,
            LogLevel::Info,
            LogLevel::Debug,
            LogLevel::Warn,
            LogLevel::Error,
            LogLevel::Log
        ]
    );
    let first = &lines[0].1;
    assert!(first.starts_with("log 1 true null undefined"), "{first}");
    assert!(
        first.contains('a') && first.contains('k') && first.contains('v'),
        "{first}"
    );
    assert!(
        lines[4].1.contains("TypeError") && lines[4].1.contains("bad"),
        "{}",
        lines[4].1
    );
}

pub(crate) async fn top_level_async_module(t: &Target) {
    let sb = t.start().await;
    let cid = sb
        .exec_container(ContainerSource::code(
            "const v = await Promise.resolve(41);\nexport const get = () => v + 1;",
        ))
        .await
        .unwrap();
    assert_eq!(sb.call::<i32>(cid, "get", ()).await.unwrap(), 42);
}

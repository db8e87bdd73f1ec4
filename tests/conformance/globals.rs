//! Host globals: async functions, namespaces, values, and traffic in both directions.

use crate::Target;
use confine::{ContainerSource, Globals, HostError, Value};
use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};
use std::time::Duration;

pub(crate) async fn host_function_async(t: &Target) {
    let sb = t
        .builder()
        .function("whoami", |(): ()| async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok::<_, HostError>("Bob")
        })
        .function("add", |(a, b): (f64, f64)| async move {
            Ok::<_, HostError>(a + b)
        })
        .build()
        .await
        .unwrap();
    let cid = sb
        .exec_container(ContainerSource::code(
            r#"
            module.exports.greet = async () => {
                const p = whoami();
                if (!(p instanceof Promise)) throw new Error("host functions return promises");
                return `Hello, ${await p}! ${await add(40, 2)}`;
            };
            "#,
        ))
        .await
        .unwrap();
    assert_eq!(
        sb.call::<String>(cid, "greet", ()).await.unwrap(),
        "Hello, Bob! 42"
    );
}

pub(crate) async fn host_function_nested_namespace_and_values(t: &Target) {
    let globals = Globals::new()
        .function("robot.sayHello", |name: String| async move {
            Ok::<_, HostError>(format!("beep {name}"))
        })
        .function("robot.arm.lift", |(kg,): (u32,)| async move {
            Ok::<_, HostError>(kg * 2)
        })
        .value("robot.name", "Robbie")
        .value(
            "config",
            serde_json::json!({ "limits": { "speed": 3 }, "tags": ["a", "b"] }),
        );
    let sb = t.builder().globals(globals).build().await.unwrap();
    let cid = sb
        .exec_container(ContainerSource::code(
            r#"
            module.exports.run = async () => [
                await robot.sayHello(robot.name),
                await robot.arm.lift(21),
                config.limits.speed,
                config.tags.join(","),
                typeof robot.sayHello,
            ];
            "#,
        ))
        .await
        .unwrap();
    let out: (String, u32, u32, String, String) = sb.call(cid, "run", ()).await.unwrap();
    assert_eq!(
        out,
        ("beep Robbie".into(), 42, 3, "a,b".into(), "function".into())
    );
}

pub(crate) async fn globals_defined_after_start(t: &Target) {
    let sb = t.start().await;
    let early = sb
        .exec_container(ContainerSource::code(
            "module.exports.check = async () => typeof late === 'function' ? await late(1) : 'missing';",
        ))
        .await
        .unwrap();
    assert_eq!(
        sb.call::<String>(early, "check", ()).await.unwrap(),
        "missing"
    );
    sb.define_function("late", |(n,): (i32,)| async move {
        Ok::<_, HostError>(format!("late {n}"))
    })
    .await
    .unwrap();
    sb.define_globals(Globals::new().value("flag", true))
        .await
        .unwrap();
    // Both the live container and a new one see them.
    assert_eq!(
        sb.call::<String>(early, "check", ()).await.unwrap(),
        "late 1"
    );
    let later = sb
        .exec_container(ContainerSource::code(
            "module.exports.check = async () => [await late(2), flag];",
        ))
        .await
        .unwrap();
    assert_eq!(
        sb.call::<(String, bool)>(later, "check", ()).await.unwrap(),
        ("late 2".into(), true)
    );
}

pub(crate) async fn host_function_error_rejects(t: &Target) {
    let sb = t
        .builder()
        .function("fail", |(): ()| async {
            Err::<(), HostError>("disk on fire".into())
        })
        .function("typed", |(n,): (u8,)| async move { Ok::<_, HostError>(n) })
        .build()
        .await
        .unwrap();
    let cid = sb
        .exec_container(ContainerSource::code(
            r#"
            module.exports.a = async () => { try { await fail(); return "no"; } catch (e) { return e.message; } };
            module.exports.b = async () => { try { await typed("x"); return "no"; } catch (e) { return e.name; } };
            module.exports.c = async () => await fail();
            "#,
        ))
        .await
        .unwrap();
    assert!(sb
        .call::<String>(cid, "a", ())
        .await
        .unwrap()
        .contains("disk on fire"));
    assert_eq!(sb.call::<String>(cid, "b", ()).await.unwrap(), "TypeError");
    let err = sb.call::<Value>(cid, "c", ()).await.unwrap_err();
    assert!(err.to_string().contains("disk on fire"), "{err}");
}

/// An export waits on a host function while the host, in that host function, calls a second
/// export of the same container: requests in flight in both directions at once.
pub(crate) async fn export_awaits_host_while_host_calls_other_export(t: &Target) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let gate = Arc::new(tokio::sync::Mutex::new(Some(rx)));
    let sb = t
        .builder()
        .function("waitForHost", move |(): ()| {
            let gate = Arc::clone(&gate);
            async move {
                if let Some(rx) = gate.lock().await.take() {
                    let _ = rx.await;
                }
                Ok::<_, HostError>("released")
            }
        })
        .build()
        .await
        .unwrap();
    let sb = Arc::new(sb);
    let cid = sb
        .exec_container(ContainerSource::code(
            r#"
            let pings = 0;
            module.exports.outer = async () => (await waitForHost()) + " after " + pings + " pings";
            module.exports.ping = () => ++pings;
            "#,
        ))
        .await
        .unwrap();
    let outer = {
        let sb = Arc::clone(&sb);
        tokio::spawn(async move { sb.call::<String>(cid, "outer", ()).await })
    };
    for i in 1..=3 {
        assert_eq!(sb.call::<i32>(cid, "ping", ()).await.unwrap(), i);
    }
    tx.send(()).unwrap();
    assert_eq!(outer.await.unwrap().unwrap(), "released after 3 pings");
}

pub(crate) async fn hundreds_of_calls_in_flight(t: &Target) {
    let host_calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&host_calls);
    let sb = t
        .builder()
        .function("echo", move |(n,): (u32,)| {
            counter.fetch_add(1, Ordering::Relaxed);
            async move {
                tokio::time::sleep(Duration::from_millis((n % 7) as u64)).await;
                Ok::<_, HostError>(n)
            }
        })
        .build()
        .await
        .unwrap();
    let sb = Arc::new(sb);
    let cid = sb
        .exec_container(ContainerSource::code(
            "module.exports.f = async (n) => (await echo(n)) * 2; module.exports.g = (n) => n + 1;",
        ))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for n in 0..500u32 {
        let sb = Arc::clone(&sb);
        tasks.push(tokio::spawn(async move {
            if n % 2 == 0 {
                sb.call::<u32>(cid, "f", (n,)).await.map(|v| (n, v, n * 2))
            } else {
                sb.call::<u32>(cid, "g", (n,)).await.map(|v| (n, v, n + 1))
            }
        }));
    }
    for task in tasks {
        let (n, got, want) = task.await.unwrap().unwrap();
        assert_eq!(got, want, "call {n}");
    }
    assert_eq!(host_calls.load(Ordering::Relaxed), 250);
}

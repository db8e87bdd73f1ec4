//! Script errors become typed errors with the script's own name, message, stack and line.

use crate::Target;
use confine::{ContainerSource, Error, ErrorKind, Event, Limit, Value};
use std::time::Duration;

pub(crate) async fn syntax_error_has_line(t: &Target) {
    let sb = t.start().await;
    let err = sb
        .exec_container(ContainerSource::code("const a = 1;\nconst b = ;\n").name("bad.js"))
        .await
        .unwrap_err();
    let Error::Script(data) = &err else {
        panic!("expected a script error, got {err:?}")
    };
    assert_eq!(data.kind, ErrorKind::Syntax);
    assert_eq!(data.name, "SyntaxError");
    let loc = data.location.as_ref().expect("a location");
    assert_eq!(loc.line, 2, "{data:?}");
    assert!(loc.file.contains("bad.js"), "{loc:?}");
    // The sandbox is still usable.
    let cid = sb
        .exec_container(ContainerSource::code("module.exports.ok = () => 1"))
        .await
        .unwrap();
    assert_eq!(sb.call::<i32>(cid, "ok", ()).await.unwrap(), 1);
}

pub(crate) async fn throw_has_name_message_stack(t: &Target) {
    let sb = t.start().await;
    let cid = sb
        .exec_container(
            ContainerSource::code(
                "function inner() { throw new TypeError('bad input: ' + 42) }\nmodule.exports.outer = () => inner();",
            )
            .name("thrower.js"),
        )
        .await
        .unwrap();
    let err = sb.call::<Value>(cid, "outer", ()).await.unwrap_err();
    let data = err
        .script_error()
        .unwrap_or_else(|| panic!("expected a script error: {err:?}"));
    assert_eq!(data.kind, ErrorKind::Thrown);
    assert_eq!(data.name, "TypeError");
    assert_eq!(data.message, "bad input: 42");
    let stack = data.stack.as_deref().unwrap_or_default();
    assert!(
        stack.contains("inner") && stack.contains("thrower.js"),
        "stack: {stack}"
    );
}

pub(crate) async fn missing_export_is_named(t: &Target) {
    let sb = t.start().await;
    let cid = sb
        .exec_container(ContainerSource::code(
            "module.exports.real = () => 1; module.exports.notfn = 5;",
        ))
        .await
        .unwrap();
    for name in ["nope", "notfn"] {
        match sb.call::<Value>(cid, name, ()).await {
            Err(Error::NoSuchExport { cid: c, export }) => {
                assert_eq!(c, cid);
                assert_eq!(export, name);
            }
            other => panic!("expected NoSuchExport for {name}, got {other:?}"),
        }
    }
}

pub(crate) async fn killed_container_is_named(t: &Target) {
    let sb = t.start().await;
    let cid = sb
        .exec_container(ContainerSource::code("module.exports.f = () => 1"))
        .await
        .unwrap();
    sb.kill_container(cid).await.unwrap();
    match sb.call::<Value>(cid, "f", ()).await {
        Err(Error::NoSuchContainer { cid: c, .. }) => assert_eq!(c, cid),
        other => panic!("expected NoSuchContainer, got {other:?}"),
    }
    assert!(matches!(
        sb.kill_container(cid).await,
        Err(Error::NoSuchContainer { .. })
    ));
}

pub(crate) async fn unknown_container_is_named(t: &Target) {
    let sb = t.start().await;
    for cid in [0, 7, u32::MAX] {
        match sb.call::<Value>(cid, "f", ()).await {
            Err(Error::NoSuchContainer { cid: c, message }) => {
                assert_eq!(c, cid);
                assert!(message.contains(&cid.to_string()), "{message}");
            }
            other => panic!("expected NoSuchContainer, got {other:?}"),
        }
    }
}

pub(crate) async fn non_error_throw(t: &Target) {
    let sb = t.start().await;
    let cid = sb
        .exec_container(ContainerSource::code(
            "module.exports.n = () => { throw 42 }; module.exports.o = () => { throw { code: 7 } };",
        ))
        .await
        .unwrap();
    let err = sb.call::<Value>(cid, "n", ()).await.unwrap_err();
    assert!(
        err.script_error().is_some_and(|d| d.message.contains("42")),
        "{err:?}"
    );
    let err = sb.call::<Value>(cid, "o", ()).await.unwrap_err();
    assert!(err.script_error().is_some(), "{err:?}");
}

pub(crate) async fn uncaught_in_timer_is_an_event(t: &Target) {
    let sb = t.start().await;
    let mut events = sb.events();
    let cid = sb
        .exec_container(ContainerSource::code(
            "setTimeout(() => { throw new Error('late boom') }, 1);\nPromise.reject(new TypeError('nobody listens'));\nmodule.exports.alive = () => 'yes';",
        ))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while seen.len() < 2 {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(Event::Uncaught { cid: c, error })) => {
                assert_eq!(c, cid);
                seen.push(error.message);
            }
            Ok(Some(_)) => {}
            other => panic!("expected two uncaught events, got {seen:?} then {other:?}"),
        }
    }
    assert!(seen.iter().any(|m| m.contains("late boom")), "{seen:?}");
    assert!(
        seen.iter().any(|m| m.contains("nobody listens")),
        "{seen:?}"
    );
    assert_eq!(sb.call::<String>(cid, "alive", ()).await.unwrap(), "yes");
}

pub(crate) async fn deep_recursion_is_catchable(t: &Target) {
    let sb = t.start().await;
    let cid = sb
        .exec_container(ContainerSource::code(
            r#"
            const down = (n) => down(n + 1) + 1;
            module.exports.caught = () => { try { down(0) } catch (e) { return e instanceof RangeError || e.name } };
            module.exports.ok = () => "still here";
            "#,
        ))
        .await
        .unwrap();
    let caught = sb.call::<Value>(cid, "caught", ()).await;
    if t.runtime == "boa" {
        // Documented difference: boa's recursion limit is an engine error that script code
        // cannot catch, by boa's design (`EngineError::RuntimeLimit`; its VM frames live on
        // the heap, so there is no native stack overflow to turn into a `RangeError`). The
        // `catch` never runs; the call fails with a typed limit error instead of crashing the
        // guest, and the container stays usable (checked below).
        match caught {
            Err(Error::LimitExceeded {
                limit: Limit::Stack,
                message,
            }) => assert!(message.contains("call depth"), "{message}"),
            other => panic!("expected an engine limit error from boa, got {other:?}"),
        }
    } else {
        assert_eq!(caught.unwrap(), Value::Bool(true));
    }
    assert_eq!(
        sb.call::<String>(cid, "ok", ()).await.unwrap(),
        "still here"
    );
}

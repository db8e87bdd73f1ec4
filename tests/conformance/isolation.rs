//! Containers are isolated from each other, and nothing of the host is reachable.

use crate::Target;
use confine::{ContainerSource, Error, ErrorKind, HostError, Value};

pub(crate) async fn prototypes_are_per_container(t: &Target) {
    let sb = t.start().await;
    let polluter = sb
        .exec_container(ContainerSource::code(
            "Object.prototype.polluted = 'yes'; Array.prototype.push = () => 'hijacked';\nmodule.exports.see = () => [({}).polluted, [].push(1)];",
        ))
        .await
        .unwrap();
    let victim = sb
        .exec_container(ContainerSource::code(
            "module.exports.see = () => [({}).polluted === undefined ? 'clean' : 'dirty', [].push(1)];",
        ))
        .await
        .unwrap();
    assert_eq!(
        sb.call::<(String, String)>(polluter, "see", ())
            .await
            .unwrap(),
        ("yes".into(), "hijacked".into())
    );
    assert_eq!(
        sb.call::<(String, u32)>(victim, "see", ()).await.unwrap(),
        ("clean".into(), 1)
    );
}

pub(crate) async fn globals_and_module_state_are_per_container(t: &Target) {
    let sb = t.start().await;
    let src = "globalThis.counter = (globalThis.counter || 0); let state = 0;\nmodule.exports.bump = () => [++globalThis.counter, ++state];";
    let a = sb.exec_container(ContainerSource::code(src)).await.unwrap();
    let b = sb.exec_container(ContainerSource::code(src)).await.unwrap();
    assert_eq!(sb.call::<(u32, u32)>(a, "bump", ()).await.unwrap(), (1, 1));
    assert_eq!(sb.call::<(u32, u32)>(a, "bump", ()).await.unwrap(), (2, 2));
    assert_eq!(sb.call::<(u32, u32)>(b, "bump", ()).await.unwrap(), (1, 1));
}

pub(crate) async fn no_host_objects(t: &Target) {
    let sb = t.start().await;
    let cid = sb
        .exec_container(ContainerSource::code(
            r#"
            module.exports.probe = () => ({
                require: typeof require,
                process: typeof process,
                std: typeof std,
                os: typeof os,
                Deno: typeof Deno,
                Bun: typeof Bun,
                scriptArgs: typeof scriptArgs,
                globalThisKeys: Object.getOwnPropertyNames(globalThis).filter((k) => /^(std|os|require|process|print|scriptArgs|load|read|write|system|exec)$/.test(k)),
                fromFunction: typeof Function('return this')().process,
            });
            "#,
        ))
        .await
        .unwrap();
    let v = sb.call_value(cid, "probe", vec![]).await.unwrap();
    for key in [
        "require",
        "process",
        "std",
        "os",
        "Deno",
        "Bun",
        "scriptArgs",
        "fromFunction",
    ] {
        assert_eq!(
            v.get(key),
            Some(&Value::String("undefined".into())),
            "{key} in {v:?}"
        );
    }
    assert_eq!(
        v.get("globalThisKeys"),
        Some(&Value::Array(vec![])),
        "{v:?}"
    );
}

pub(crate) async fn imports_of_host_files_fail(t: &Target) {
    let sb = t.start().await;
    // A static import fails when the container is created, and reads nothing.
    for spec in ["/etc/passwd", "../x.js", "std", "os", "node:fs"] {
        let code = format!("import x from '{spec}';\nexport const f = () => x;");
        let err = sb
            .exec_container(ContainerSource::code(code))
            .await
            .unwrap_err();
        let Error::Script(data) = &err else {
            panic!("import {spec}: expected a script error, got {err:?}")
        };
        assert!(
            matches!(data.kind, ErrorKind::Thrown | ErrorKind::Syntax),
            "{data:?}"
        );
        assert!(
            data.message.contains(spec) || data.message.contains("not allowed"),
            "import {spec}: {data:?}"
        );
        assert!(
            !data.message.contains("root:"),
            "leaked file contents: {data:?}"
        );
    }
    // A dynamic import rejects.
    let cid = sb
        .exec_container(ContainerSource::code(
            "module.exports.tryImport = async (p) => { try { await import(p); return 'loaded'; } catch (e) { return String(e.message) } };",
        ))
        .await
        .unwrap();
    for spec in ["/etc/passwd", "../x.js", "./sibling.js"] {
        let msg: String = sb.call(cid, "tryImport", (spec,)).await.unwrap();
        assert_ne!(msg, "loaded");
        assert!(!msg.contains("root:"), "leaked file contents: {msg}");
        assert!(
            msg.contains("not allowed") || msg.contains(spec),
            "import({spec}): {msg}"
        );
    }
}

/// Escape attempts through what the host hands a script: a host function, the promise it
/// returns, the error it rejects with, and a host value. Every constructor chain ends at the
/// container's own `Function`, so `return this` gives the container's global, which has
/// nothing of the host; and polluting a host function's prototype chain in one container is
/// invisible in another.
pub(crate) async fn constructor_chains_stay_in_the_container(t: &Target) {
    let sb = t
        .builder()
        .function("whoami", |(): ()| async { Ok::<_, HostError>("host") })
        .function("fail", |(): ()| async {
            Err::<(), HostError>("nope".into())
        })
        .value("config", serde_json::json!({ "a": [1, 2] }))
        .build()
        .await
        .unwrap();
    let probe = r#"
        const viaFn = whoami.constructor('return this')();
        const viaProto = Object.getPrototypeOf(whoami).constructor('return this')();
        const promise = whoami();
        const viaPromise = promise.constructor.constructor('return this')();
        const viaValue = config.constructor.constructor('return this')();
        const viaArray = config.a.constructor.constructor('return this')();
        module.exports.probe = async () => {
            let viaError = null;
            try { await fail(); } catch (e) { viaError = e.constructor.constructor('return this')(); }
            const all = [viaFn, viaProto, viaPromise, viaValue, viaArray, viaError];
            return {
                same: all.map((g) => g === globalThis),
                reach: all.map((g) => [typeof g.process, typeof g.require, typeof g.std, typeof g.os].join()),
                answer: await promise,
            };
        };
        module.exports.pollute = () => {
            Object.getPrototypeOf(whoami).polluted = 'yes';
            whoami.constructor.prototype.alsoPolluted = 'yes';
            Object.prototype.everywhere = 'yes';
        };
        module.exports.seen = () => [typeof whoami.polluted, typeof whoami.alsoPolluted, typeof ({}).everywhere];
    "#;
    let a = sb
        .exec_container(ContainerSource::code(probe))
        .await
        .unwrap();
    let b = sb
        .exec_container(ContainerSource::code(probe))
        .await
        .unwrap();
    let v = sb.call_value(a, "probe", vec![]).await.unwrap();
    assert_eq!(
        v.get("same"),
        Some(&Value::Array(vec![Value::Bool(true); 6])),
        "{v:?}"
    );
    let nothing = Value::String("undefined,undefined,undefined,undefined".into());
    assert_eq!(
        v.get("reach"),
        Some(&Value::Array(vec![nothing; 6])),
        "{v:?}"
    );
    assert_eq!(v.get("answer"), Some(&Value::String("host".into())));
    sb.call::<()>(a, "pollute", ()).await.unwrap();
    let seen_a: Vec<String> = sb.call(a, "seen", ()).await.unwrap();
    assert_eq!(seen_a, ["string", "string", "string"]);
    let seen_b: Vec<String> = sb.call(b, "seen", ()).await.unwrap();
    assert_eq!(seen_b, ["undefined", "undefined", "undefined"]);
}

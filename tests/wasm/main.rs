//! The `wasm` runtime end to end: a WASI module written in Rust (the ABI example in
//! `confine-runtime-wasm/examples/rust-guest`), built for `wasm32-wasip1` here, run in a real
//! guest process through the host library.
//!
//! The sandboxed mode is not run yet: the Linux policy forbids what wasmtime's JIT needs
//! (see the `wasm` runtime's report). These tests use `no_sandbox(true)`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use confine::{ContainerSource, Error, HostError, LogLevel, Sandbox, Value};
use confine_tests::Console;
use std::{path::PathBuf, process::Command, sync::OnceLock};

/// The workspace root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Builds the example guest (a no-op when up to date) and returns its path.
fn rust_guest() -> &'static PathBuf {
    static GUEST: OnceLock<PathBuf> = OnceLock::new();
    GUEST.get_or_init(|| {
        let root = root();
        let target_dir = root.join("target/wasm-guest");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--quiet", "--release", "--target", "wasm32-wasip1"])
            .arg("--manifest-path")
            .arg(root.join("confine-runtime-wasm/examples/rust-guest/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .status()
            .expect("cannot run cargo");
        assert!(
            status.success(),
            "building the example wasm guest failed; it needs the wasm32-wasip1 target \
             (`rustup target add wasm32-wasip1`, which `cargo xtask test` does)"
        );
        target_dir.join("wasm32-wasip1/release/confine_rust_guest.wasm")
    })
}

async fn sandbox(console: &Console) -> Sandbox {
    console
        .attach(
            Sandbox::builder()
                .runtime("wasm")
                .no_sandbox(true)
                .pipe_stderr(true),
        )
        .function("robot.whoami", |(name,): (String,)| async move {
            Ok::<_, HostError>(format!("Robbie (asked by {name})"))
        })
        .build()
        .await
        .expect("wasm sandbox starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_guest_exports_host_calls_and_console() {
    let console = Console::default();
    let sb = sandbox(&console).await;
    let source = ContainerSource::file(rust_guest()).await.unwrap();
    assert!(
        source.binary().is_some(),
        "the \\0asm magic makes a wasm source"
    );
    let cid = sb.exec_container(source).await.unwrap();

    let greeting: String = sb.call(cid, "greet", ("Ada",)).await.unwrap();
    assert_eq!(greeting, "hello Ada, I am Robbie (asked by Ada)");
    let lines = console.lines();
    assert!(
        lines.contains(&(LogLevel::Log, "greeting Ada".to_owned())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&(LogLevel::Error, "about to call the host".to_owned())),
        "{lines:?}"
    );

    let total: f64 = sb.call(cid, "sum", (vec![1.0, 2.0, 3.5],)).await.unwrap();
    assert_eq!(total, 6.5);
    let fib: i64 = sb.call(cid, "fib", (20,)).await.unwrap();
    assert_eq!(fib, 6765);

    match sb.call::<Value>(cid, "fail", ()).await.unwrap_err() {
        Error::Script(e) => {
            assert_eq!(
                (e.name.as_str(), e.message.as_str()),
                ("GuestError", "this export always fails")
            )
        }
        other => panic!("expected a script error, got {other:?}"),
    }
    match sb.call::<Value>(cid, "explode", ()).await.unwrap_err() {
        Error::Script(e) => assert_eq!(e.name, "RuntimeError", "{e:?}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(
        console.text().iter().any(|l| l.contains("kaboom")),
        "the panic message reaches the console: {:?}",
        console.text()
    );
    assert!(matches!(
        sb.call::<Value>(cid, "nope", ()).await.unwrap_err(),
        Error::NoSuchExport { .. }
    ));
    // Many calls in flight, each waiting for the host: they queue on the one instance.
    let sb = std::sync::Arc::new(sb);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let sb = std::sync::Arc::clone(&sb);
            tokio::spawn(
                async move { (i, sb.call::<String>(cid, "greet", (format!("n{i}"),)).await) },
            )
        })
        .collect();
    for t in tasks {
        let (i, r) = t.await.unwrap();
        assert_eq!(
            r.unwrap(),
            format!("hello n{i}, I am Robbie (asked by n{i})")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_limit_from_options() {
    let console = Console::default();
    let sb = sandbox(&console).await;
    let bytes = std::fs::read(rust_guest()).unwrap();
    let source = ContainerSource::wasm(bytes)
        .options(serde_json::json!({ "timeLimitMs": 100 }))
        .unwrap();
    let cid = sb.exec_container(source).await.unwrap();
    let start = std::time::Instant::now();
    match sb.call::<i64>(cid, "fib", (50,)).await.unwrap_err() {
        Error::LimitExceeded { .. } => {}
        other => panic!("expected a limit error, got {other:?}"),
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(3));
    // Still usable.
    assert_eq!(sb.call::<i64>(cid, "fib", (10,)).await.unwrap(), 55);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_runtimes_refuse_wasm_and_wasm_runs_both() {
    let bytes = std::fs::read(rust_guest()).unwrap();
    let js = Sandbox::builder().no_sandbox(true).build().await.unwrap();
    assert!(js
        .exec_container(ContainerSource::wasm(bytes.clone()))
        .await
        .is_err());
    let console = Console::default();
    let wasm = sandbox(&console).await;
    let module = wasm
        .exec_container(ContainerSource::wasm(bytes))
        .await
        .unwrap();
    let script = wasm
        .exec_container(ContainerSource::code("module.exports.f = () => 1"))
        .await
        .unwrap();
    assert_eq!(wasm.call::<i64>(module, "fib", (10,)).await.unwrap(), 55);
    assert_eq!(wasm.call::<i64>(script, "f", ()).await.unwrap(), 1);
}

/// JavaScript source in the `wasm` runtime runs in QuickJS compiled to WebAssembly (the JS
/// plugin that `cargo xtask wasm-plugin` builds and the runtime embeds); the conformance
/// suite checks the JavaScript semantics, this what is particular to the wasm runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_runs_in_quickjs_in_wasm() {
    let console = Console::default();
    let sb = sandbox(&console).await;
    assert!(sb.runtime_version().contains("wasmtime"));
    let a = sb
        .exec_container(
            ContainerSource::code(
                r#"
                globalThis.n = 41;
                module.exports.probe = () => [1 + 2, typeof WebAssembly, typeof require, n];
                module.exports.who = async () => await robot.whoami("js");
                module.exports.spin = () => { for (;;) {} };
                "#,
            )
            .options(serde_json::json!({ "timeLimitMs": 100 }))
            .unwrap(),
        )
        .await
        .unwrap();
    let b = sb
        .exec_container(ContainerSource::code("module.exports.n = () => typeof n;"))
        .await
        .unwrap();
    let v: serde_json::Value = sb.call(a, "probe", ()).await.unwrap();
    assert_eq!(v, serde_json::json!([3, "undefined", "undefined", 41]));
    // Instances are isolated.
    assert_eq!(sb.call::<String>(b, "n", ()).await.unwrap(), "undefined");
    assert_eq!(
        sb.call::<String>(a, "who", ()).await.unwrap(),
        "Robbie (asked by js)"
    );
    // The container's own time limit stops script code through QuickJS's interrupt
    // handler, which leaves the container usable.
    let start = std::time::Instant::now();
    match sb.call::<Value>(a, "spin", ()).await.unwrap_err() {
        Error::LimitExceeded { .. } => {}
        other => panic!("expected a limit error, got {other:?}"),
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(3));
    let v: serde_json::Value = sb.call(a, "probe", ()).await.unwrap();
    assert_eq!(v[3], 41);
}

/// A new JavaScript container's time to ready through the host (request, guest, reply), for
/// the `wasm` runtime and, for comparison, the native `quickjs` runtime. Prints medians; run
/// with `cargo test --release -p confine-tests --test wasm -- --ignored --nocapture` after
/// building the release guests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly with --release"]
async fn bench_js_container_ready_through_the_host() {
    for runtime in ["wasm", "quickjs"] {
        let sb = Sandbox::builder()
            .runtime(runtime)
            .no_sandbox(true)
            .build()
            .await
            .unwrap();
        // Warm-up: the wasm runtime compiles (or loads) the plugin on its first container.
        let first = sb
            .exec_container(ContainerSource::code("module.exports.f = () => 1"))
            .await
            .unwrap();
        sb.kill_container(first).await.unwrap();
        let mut times = Vec::new();
        for _ in 0..200 {
            let start = std::time::Instant::now();
            let cid = sb
                .exec_container(ContainerSource::code("module.exports.f = () => 1"))
                .await
                .unwrap();
            times.push(start.elapsed());
            sb.kill_container(cid).await.unwrap();
        }
        times.sort();
        println!(
            "{runtime}: new JS container ready through the host: p50 {:?}, p90 {:?}",
            times[times.len() / 2],
            times[times.len() * 9 / 10]
        );
    }
}

//! Leaks: spawn/teardown cycles and many calls leave no fds, threads or child processes in the
//! host. A test binary of its own, with one test: the counts are the whole process's, so no
//! other test may run beside it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use confine::{ContainerSource, Error, Registry, Sandbox};
use confine_tests::ProcessCounts;
use std::time::Duration;

/// The well-behaved fault guest (`src/bin/fault_guest.rs`), with the sandbox on or off.
async fn start_with(sandboxed: bool) -> Result<Sandbox, Error> {
    let mut registry = Registry::new();
    registry.register("fault", env!("CARGO_BIN_EXE_fault-guest"));
    Sandbox::builder()
        .runtime("fault")
        .registry(registry)
        .no_sandbox(!sandboxed)
        .ready_timeout(Duration::from_millis(1500))
        .build()
        .await
}

/// Spawn/teardown cycles (drop and explicit teardown, sandboxed and not) and many calls leave
/// no fds, threads or child processes behind. The long run (10,000 cycles, 1,000,000 calls) is
/// `confine-bench --soak`.
#[test]
fn spawn_teardown_cycles_and_calls_leak_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Warm up: the first sandbox starts tokio's blocking pool and other lazy state.
        for sandboxed in [false, true] {
            let sb = start_with(sandboxed).await.unwrap();
            sb.teardown().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    let before = ProcessCounts::now();
    runtime.block_on(async {
        for i in 0..100 {
            let sb = start_with(i % 2 == 0).await.unwrap();
            let cid = sb
                .exec_container(ContainerSource::code("ok"))
                .await
                .unwrap();
            for j in 0..50 {
                let v: i64 = sb.call(cid, "f", (j,)).await.unwrap();
                assert_eq!(v, j);
            }
            if i % 3 == 0 {
                drop(sb);
            } else {
                assert_eq!(sb.teardown().await.unwrap().code, Some(0));
            }
        }
        // Dropped sandboxes are reaped by their child tasks shortly after.
        for _ in 0..100 {
            if ProcessCounts::now().children <= before.children {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let after = ProcessCounts::now();
    assert!(after.fds <= before.fds, "fds: {before:?} -> {after:?}");
    assert!(
        after.threads <= before.threads + 2,
        "threads: {before:?} -> {after:?}"
    );
    assert!(
        after.children <= before.children,
        "children: {before:?} -> {after:?}"
    );
}

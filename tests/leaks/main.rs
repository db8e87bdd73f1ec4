//! Leaks: spawn/teardown cycles and many calls leave no fds, threads or child processes in the
//! host. A test binary of its own, with one test: the counts are the whole process's, so no
//! other test may run beside it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use confine::{ContainerSource, Error, Registry, Sandbox};
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

/// What the test process holds: open fds, threads, and child processes (zombies included).
fn process_counts() -> (usize, usize, usize) {
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let threads = std::fs::read_dir("/proc/self/task").unwrap().count();
    let me = std::process::id().to_string();
    let children = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().nth(1))
                == Some(me.as_str())
        })
        .count();
    (fds, threads, children)
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
    let before = process_counts();
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
            if process_counts().2 <= before.2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let after = process_counts();
    assert!(after.0 <= before.0, "fds: {before:?} -> {after:?}");
    assert!(after.1 <= before.1 + 2, "threads: {before:?} -> {after:?}");
    assert!(after.2 <= before.2, "children: {before:?} -> {after:?}");
}

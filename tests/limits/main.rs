#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Limits against hostile scripts, for every JS runtime (`wasm`: JavaScript in its QuickJS
//! plugin), with the OS sandbox on and off.
//!
//! Here, wall-time limits: the call fails with `LimitExceeded(WallTime)` promptly; where the
//! soft path applies the same container answers afterwards; where only the hard path does (a
//! tight loop in Boa) the guest is gone; and another sandbox stays responsive meanwhile. The
//! other limits (CPU, memory, output, host calls, containers, calls in flight) and the rest
//! of the hostile-script list are in `hostile.rs`.

mod hostile;
use hostile::*;

use confine::{ContainerSource, Error, Limit, Sandbox};
use confine_tests::{wait_gone, Target};
use std::time::{Duration, Instant};

macro_rules! suite_for {
    ($module:ident, $runtime:literal, $sandboxed:literal, [$($test:ident),* $(,)?]) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let target = crate::Target { runtime: $runtime, sandboxed: $sandboxed };
                    crate::$test(&target).await;
                }
            )*
        }
    };
}

macro_rules! suite {
    ($tests:tt) => {
        suite_for!(quickjs_sandboxed, "quickjs", true, $tests);
        suite_for!(quickjs_no_sandbox, "quickjs", false, $tests);
        suite_for!(boa_sandboxed, "boa", true, $tests);
        suite_for!(boa_no_sandbox, "boa", false, $tests);
        suite_for!(wasm_sandboxed, "wasm", true, $tests);
        suite_for!(wasm_no_sandbox, "wasm", false, $tests);
    };
}

suite!([
    spinning_export_times_out,
    spinning_top_level_times_out,
    stuck_promise_times_out_and_container_stays_usable,
    rearming_timers_time_out_wait_idle,
    per_call_timeout_overrides_the_default,
    other_sandbox_stays_responsive,
    cpu_time_stops_a_spin,
    cpu_time_does_not_count_waiting,
    cpu_percent_cap_kills_a_busy_guest,
    memory_bombs_hit_the_memory_limit,
    console_flood_hits_the_output_limit,
    host_call_storm_hits_the_host_call_limit,
    container_and_in_flight_limits,
    catastrophic_regex_hits_the_time_limit,
    nested_json_parse_is_refused,
    oversize_return_hits_the_frame_limit,
    microtask_flood_and_async_spin_hit_the_time_limit,
]);

const LIMIT: Duration = Duration::from_millis(200);

/// Whether the engine can stop a tight loop itself (the soft path): QuickJS, natively or
/// compiled to wasm (the `wasm` runtime's JavaScript containers).
fn interrupts(target: &Target) -> bool {
    matches!(target.runtime, "quickjs" | "wasm")
}

/// A sandbox with a 200 ms call limit. Where the guest is expected to answer by itself, the
/// grace is long, so a pass proves the soft path answered (not the host's kill).
async fn start(target: &Target, soft: bool) -> Sandbox {
    let grace = if soft {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(100)
    };
    let b = target.builder().call_timeout(Some(LIMIT)).kill_grace(grace);
    match b.build().await {
        Ok(s) => s,
        Err(e) => panic!("cannot start {target:?}: {e}"),
    }
}

fn assert_wall_time<T: std::fmt::Debug>(r: confine::Result<T>) {
    match r {
        Err(Error::LimitExceeded {
            limit: Limit::WallTime,
            message,
        }) => assert!(message.contains("200 ms"), "{message}"),
        other => panic!("expected a wall-time limit error, got {other:?}"),
    }
}

const EXPORTS: &str = "module.exports = {
    spin() { while (true) {} },
    stuck() { return new Promise(() => {}); },
    async spinLater() { await null; while (true) {} },
    ok(x) { return x + 1; },
};";

async fn spinning_export_times_out(target: &Target) {
    let soft = interrupts(target);
    let sandbox = start(target, soft).await;
    let pid = sandbox.pid();
    let cid = sandbox
        .exec_container(ContainerSource::code(EXPORTS))
        .await
        .unwrap();
    let t = Instant::now();
    assert_wall_time(sandbox.call::<()>(cid, "spin", ()).await);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    if soft {
        // The container survived the interrupt and answers the next call.
        assert_eq!(sandbox.call::<i64>(cid, "ok", (1,)).await.unwrap(), 2);
        // An async export spinning after its first await is stopped too.
        assert_wall_time(sandbox.call::<()>(cid, "spinLater", ()).await);
        assert_eq!(sandbox.call::<i64>(cid, "ok", (2,)).await.unwrap(), 3);
        sandbox.teardown().await.unwrap();
    } else {
        // Hard path: the guest was killed, and later calls say so.
        assert!(wait_gone(pid, 2000).await, "guest {pid} still alive");
        let after = sandbox.call::<i64>(cid, "ok", (1,)).await;
        assert!(
            matches!(after, Err(Error::GuestExited(_))),
            "expected GuestExited, got {after:?}"
        );
    }
}

async fn spinning_top_level_times_out(target: &Target) {
    let soft = interrupts(target);
    let sandbox = start(target, soft).await;
    let t = Instant::now();
    assert_wall_time(
        sandbox
            .exec_container(ContainerSource::code("while (true) {}"))
            .await,
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    if soft {
        let cid = sandbox
            .exec_container(ContainerSource::code(EXPORTS))
            .await
            .unwrap();
        assert_eq!(sandbox.call::<i64>(cid, "ok", (1,)).await.unwrap(), 2);
    } else {
        assert!(wait_gone(sandbox.pid(), 2000).await);
    }
}

async fn stuck_promise_times_out_and_container_stays_usable(target: &Target) {
    // The serve loop answers a promise still pending at its deadline, for every runtime.
    let sandbox = start(target, true).await;
    let cid = sandbox
        .exec_container(ContainerSource::code(EXPORTS))
        .await
        .unwrap();
    let t = Instant::now();
    assert_wall_time(sandbox.call::<()>(cid, "stuck", ()).await);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(sandbox.call::<i64>(cid, "ok", (41,)).await.unwrap(), 42);
    // The abandoned call no longer keeps the container busy.
    sandbox
        .wait_idle_with_timeout(cid, Some(Duration::from_secs(2)))
        .await
        .unwrap();
    sandbox.teardown().await.unwrap();
}

async fn rearming_timers_time_out_wait_idle(target: &Target) {
    let sandbox = start(target, true).await;
    let cid = sandbox
        .exec_container(ContainerSource::code(
            "let n = 0; function f() { n++; setTimeout(f, 1); } f();
             module.exports.count = () => n;",
        ))
        .await
        .unwrap();
    let t = Instant::now();
    assert_wall_time(sandbox.wait_idle_with_timeout(cid, Some(LIMIT)).await);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // The container is still live and its timers still run.
    let n: i64 = sandbox.call(cid, "count", ()).await.unwrap();
    assert!(n > 0, "{n}");
    sandbox.teardown().await.unwrap();
}

async fn per_call_timeout_overrides_the_default(target: &Target) {
    // No default limit: a slow-but-finite export completes; a per-call limit stops a stuck one.
    let sandbox = target
        .builder()
        .kill_grace(Duration::from_secs(3))
        .build()
        .await
        .unwrap();
    let cid = sandbox
        .exec_container(ContainerSource::code(
            "module.exports = {
                 slow() { return new Promise((r) => setTimeout(() => r('done'), 300)); },
                 stuck() { return new Promise(() => {}); },
             };",
        ))
        .await
        .unwrap();
    let done: String = sandbox.call(cid, "slow", ()).await.unwrap();
    assert_eq!(done, "done");
    assert_wall_time(
        sandbox
            .call_with_timeout::<()>(cid, "stuck", (), Some(LIMIT))
            .await,
    );
    let slow = sandbox
        .call_with_timeout::<String>(cid, "slow", (), Some(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(slow, "done");
    sandbox.teardown().await.unwrap();
}

async fn other_sandbox_stays_responsive(target: &Target) {
    let spinning = start(target, interrupts(target)).await;
    let calm = target.start().await;
    let spin_cid = spinning
        .exec_container(ContainerSource::code(EXPORTS))
        .await
        .unwrap();
    let calm_cid = calm
        .exec_container(ContainerSource::code(EXPORTS))
        .await
        .unwrap();
    let spin = tokio::spawn(async move {
        let r = spinning.call::<()>(spin_cid, "spin", ()).await;
        (spinning, r)
    });
    // While the other guest spins, this one keeps answering quickly.
    for i in 0..20 {
        let t = Instant::now();
        let v: i64 = calm.call(calm_cid, "ok", (i,)).await.unwrap();
        assert_eq!(v, i + 1);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_spinning, r) = spin.await.unwrap();
    assert_wall_time(r);
    calm.teardown().await.unwrap();
}

/// A CPU-percent cap out of range is refused before anything starts (0 % would kill every
/// guest at once; a window shorter than the sampling can measure would judge noise).
#[tokio::test]
async fn out_of_range_cpu_percent_is_invalid_argument() {
    for (percent, window_ms) in [(0, 1000), (101, 1000), (50, 10)] {
        let mut limits = confine::Limits::default();
        limits.cpu_percent = Some(confine::CpuPercent {
            percent,
            window: Duration::from_millis(window_ms),
        });
        let started = Sandbox::builder()
            .runtime("quickjs")
            .limits(limits)
            .build()
            .await;
        match started {
            Err(Error::InvalidArgument(msg)) => assert!(msg.contains("CPU-percent"), "{msg}"),
            other => panic!("{percent} % over {window_ms} ms: {:?}", other.map(|_| ())),
        }
    }
    // The control: the same cap in range starts.
    let mut limits = confine::Limits::default();
    limits.cpu_percent = Some(confine::CpuPercent::new(100));
    let sb = Sandbox::builder()
        .runtime("quickjs")
        .limits(limits)
        .build()
        .await
        .unwrap();
    sb.teardown().await.unwrap();
}

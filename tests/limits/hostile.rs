//! Scripts written to break a limit, one per limit: each is stopped by the right limit with
//! the right error, a witness sandbox keeps answering meanwhile, and where the soft path
//! applies the same container answers a normal call afterwards.

use crate::Target;
use confine::{CallLimits, ContainerSource, CpuPercent, Error, HostError, Limit, Limits, Sandbox};
use confine_tests::wait_gone;
use std::{
    future::Future,
    time::{Duration, Instant},
};

/// Whether the engine stops running code itself (QuickJS's interrupt handler, natively or in
/// the `wasm` runtime's plugin).
fn interrupts(target: &Target) -> bool {
    matches!(target.runtime, "quickjs" | "wasm")
}

async fn start(target: &Target, limits: Limits, grace: Duration) -> Sandbox {
    let b = target.builder().limits(limits).kill_grace(grace);
    match b.build().await {
        Ok(s) => s,
        Err(e) => panic!("cannot start {target:?}: {e}"),
    }
}

async fn exec(sb: &Sandbox, code: &str) -> u32 {
    match sb.exec_container(ContainerSource::code(code)).await {
        Ok(cid) => cid,
        Err(e) => panic!("exec failed: {e}"),
    }
}

/// Runs `hostile` while a second sandbox answers a call every 20 ms; every answer must come
/// within a second, so one guest's abuse never stalls the host.
async fn with_witness<T>(target: &Target, hostile: impl Future<Output = T>) -> T {
    let witness = target.start().await;
    let cid = exec(&witness, "module.exports.ok = (x) => x + 1;").await;
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let pinger = tokio::spawn(async move {
        let mut answered = 0u32;
        loop {
            let t = Instant::now();
            let v: i64 = witness.call(cid, "ok", (1,)).await.expect("witness call");
            assert_eq!(v, 2);
            assert!(
                t.elapsed() < Duration::from_secs(1),
                "witness took {:?}",
                t.elapsed()
            );
            answered += 1;
            tokio::select! {
                _ = &mut stop_rx => break,
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        witness.teardown().await.expect("witness teardown");
        answered
    });
    let out = hostile.await;
    let _ = stop_tx.send(());
    let answered = pinger.await.expect("witness task");
    assert!(answered > 0);
    out
}

fn expect_limit<T: std::fmt::Debug>(r: confine::Result<T>, want: Limit) -> String {
    match r {
        Err(Error::LimitExceeded { limit, message }) if limit == want => message,
        other => panic!("expected LimitExceeded({want:?}), got {other:?}"),
    }
}

const SPIN: &str = "module.exports = {
    spin() { while (true) {} },
    ok(x) { return x + 1; },
    wait(ms) { return new Promise((r) => setTimeout(() => r('waited'), ms)); },
};";

pub(crate) async fn cpu_time_stops_a_spin(target: &Target) {
    let soft = interrupts(target);
    let grace = if soft {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(100)
    };
    let mut limits = Limits::default();
    limits.cpu_time = Some(Duration::from_millis(200));
    let sb = start(target, limits, grace).await;
    let cid = exec(&sb, SPIN).await;
    let t = Instant::now();
    let msg = with_witness(target, async {
        expect_limit(sb.call::<()>(cid, "spin", ()).await, Limit::CpuTime)
    })
    .await;
    assert!(msg.contains("200 ms"), "{msg}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    if soft {
        assert_eq!(sb.call::<i64>(cid, "ok", (1,)).await.unwrap(), 2);
    } else {
        assert!(wait_gone(sb.pid(), 2000).await);
    }
}

pub(crate) async fn cpu_time_does_not_count_waiting(target: &Target) {
    // 100 ms of CPU, 400 ms of waiting on a timer and on a host function: CPU time is not
    // wall time, so both calls complete.
    let mut limits = Limits::default();
    limits.cpu_time = Some(Duration::from_millis(100));
    let sb = target
        .builder()
        .limits(limits)
        .function("sleepy", |(ms,): (u64,)| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, HostError>("slept")
        })
        .build()
        .await
        .unwrap();
    let cid = exec(
        &sb,
        &format!("{SPIN}\nmodule.exports.host = (ms) => sleepy(ms);"),
    )
    .await;
    assert_eq!(
        sb.call::<String>(cid, "wait", (400,)).await.unwrap(),
        "waited"
    );
    assert_eq!(
        sb.call::<String>(cid, "host", (400,)).await.unwrap(),
        "slept"
    );
    // A per-call override lifts the limit for one call and keeps it for the rest.
    let spun = sb
        .call_with::<()>(
            cid,
            "spin",
            (),
            CallLimits::none().cpu_time(Some(Duration::from_millis(50))),
        )
        .await;
    expect_limit(spun, Limit::CpuTime);
}

pub(crate) async fn cpu_percent_cap_kills_a_busy_guest(target: &Target) {
    let cap = CpuPercent {
        percent: 25,
        window: Duration::from_millis(500),
    };
    let mut limits = Limits::default();
    limits.cpu_percent = Some(cap);
    let sb = start(target, limits, Duration::from_millis(100)).await;
    let cid = exec(&sb, SPIN).await;
    // Idle for more than a window: well under the cap, nothing happens.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(sb.call::<i64>(cid, "ok", (1,)).await.unwrap(), 2);
    let t = Instant::now();
    let msg = with_witness(target, async {
        expect_limit(sb.call::<()>(cid, "spin", ()).await, Limit::CpuPercent)
    })
    .await;
    assert!(msg.contains("cap 25 %"), "{msg}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(wait_gone(sb.pid(), 2000).await);
    // Later requests say why the guest is gone.
    expect_limit(sb.call::<i64>(cid, "ok", (1,)).await, Limit::CpuPercent);
}

const BOMBS: &str = "module.exports = {
    arrays() { const a = []; while (true) a.push(new Array(100000).fill(1.5)); },
    strings() { const keep = []; let n = 1 << 16; while (true) { keep.push('x'.repeat(n)); n *= 2; } },
    buffers() { const a = []; while (true) a.push(new ArrayBuffer(1 << 20)); },
    maps() { const m = new Map(); let i = 0; while (true) m.set(i, { i: i++ }); },
    caught() { try { this.arrays(); } catch (e) { return String(e); } },
    ok(x) { return x + 1; },
};";

pub(crate) async fn memory_bombs_hit_the_memory_limit(target: &Target) {
    const LIMIT: u64 = 32 << 20;
    let mut limits = Limits::default();
    limits.memory = Some(LIMIT);
    if interrupts(target) {
        // QuickJS: the engine refuses the allocation; the script can catch it, an uncaught
        // one is the memory limit, and the container stays usable after every bomb.
        let sb = start(target, limits, Duration::from_millis(100)).await;
        let cid = exec(&sb, BOMBS).await;
        let caught: String = sb.call(cid, "caught", ()).await.unwrap();
        assert!(caught.contains("out of memory"), "{caught}");
        for bomb in ["arrays", "strings", "buffers", "maps"] {
            let r = with_witness(target, sb.call::<()>(cid, bomb, ())).await;
            let msg = expect_limit(r, Limit::Memory);
            assert!(msg.contains(&LIMIT.to_string()), "{bomb}: {msg}");
            assert_eq!(
                sb.call::<i64>(cid, "ok", (1,)).await.unwrap(),
                2,
                "after {bomb}"
            );
        }
        sb.teardown().await.unwrap();
    } else {
        // Boa has no memory limit of its own: the process cap stops the guest, which exits
        // with the out-of-memory status, and every pending request gets the memory limit.
        for bomb in ["arrays", "strings", "buffers", "maps"] {
            let sb = start(target, limits, Duration::from_millis(100)).await;
            let cid = exec(&sb, BOMBS).await;
            let r = with_witness(target, sb.call::<()>(cid, bomb, ())).await;
            let msg = expect_limit(r, Limit::Memory);
            assert!(msg.contains("process cap"), "{bomb}: {msg}");
            assert_eq!(
                sb.closed().await.code,
                Some(confine_runtime_abstract::protocol::EXIT_OUT_OF_MEMORY)
            );
        }
    }
}

pub(crate) async fn console_flood_hits_the_output_limit(target: &Target) {
    const LIMIT: u64 = 64 * 1024;
    let console = confine_tests::Console::default();
    let mut limits = Limits::default();
    limits.output = Some(LIMIT);
    let sb = console
        .attach(
            target
                .builder()
                .limits(limits)
                .call_timeout(Some(Duration::from_secs(1))),
        )
        .build()
        .await
        .unwrap();
    let cid = exec(
        &sb,
        "module.exports = {
            flood() { for (let i = 0; ; i++) console.log('line', i, 'x'.repeat(100)); },
            swallow() { for (let i = 0; ; i++) { try { console.log('line', i, 'x'.repeat(100)); } catch (e) {} } },
            some() { console.log('fine'); return 1; },
        };",
    )
    .await;
    let r = with_witness(target, sb.call::<()>(cid, "flood", ())).await;
    expect_limit(r, Limit::Output);
    let bytes: usize = console.text().iter().map(String::len).sum();
    assert!(
        bytes as u64 <= LIMIT + 4096,
        "{bytes} bytes of console output got through"
    );
    assert!(console
        .text()
        .iter()
        .any(|l| l.contains("console output limit")));
    // A new call has a fresh budget, and the container is fine.
    assert_eq!(sb.call::<i64>(cid, "some", ()).await.unwrap(), 1);
    assert_eq!(console.text().last().map(String::as_str), Some("fine"));
    // A script that swallows the budget's errors: QuickJS interrupts it; Boa cannot, so the
    // wall-time limit ends it (the host kills the guest after the grace). Either way no more
    // than the budget reaches the host.
    let r = with_witness(target, sb.call::<()>(cid, "swallow", ())).await;
    if interrupts(target) {
        expect_limit(r, Limit::Output);
    } else {
        expect_limit(r, Limit::WallTime);
    }
    let bytes: usize = console.text().iter().map(String::len).sum();
    assert!(
        bytes as u64 <= 2 * (LIMIT + 4096),
        "{bytes} bytes of console output got through"
    );
}

pub(crate) async fn host_call_storm_hits_the_host_call_limit(target: &Target) {
    let mut limits = Limits::default();
    limits.host_calls = Some(100);
    let sb = target
        .builder()
        .limits(limits)
        .function("ping", |(): ()| async { Ok::<_, HostError>(1) })
        .build()
        .await
        .unwrap();
    let cid = exec(
        &sb,
        "module.exports = {
            async storm() { let n = 0; while (true) { n += await ping(); } },
            async burst() { return (await Promise.all(Array.from({ length: 1000 }, () => ping()))).length; },
            async few() { let n = 0; for (let i = 0; i < 50; i++) n += await ping(); return n; },
            async caught() { try { await this.burst(); } catch (e) { return e.name; } },
        };",
    )
    .await;
    let r = with_witness(target, sb.call::<()>(cid, "storm", ())).await;
    let msg = expect_limit(r, Limit::HostCalls);
    assert!(msg.contains("100"), "{msg}");
    expect_limit(sb.call::<i64>(cid, "burst", ()).await, Limit::HostCalls);
    // Within the budget, a call completes; the budget is per call.
    assert_eq!(sb.call::<i64>(cid, "few", ()).await.unwrap(), 50);
    assert_eq!(sb.call::<i64>(cid, "few", ()).await.unwrap(), 50);
}

pub(crate) async fn container_and_in_flight_limits(target: &Target) {
    let mut limits = Limits::default();
    limits.containers = Some(2);
    limits.in_flight = Some(4);
    let sb = start(target, limits, Duration::from_millis(100)).await;
    let a = exec(&sb, SPIN).await;
    let _b = exec(&sb, SPIN).await;
    let third = sb.exec_container(ContainerSource::code(SPIN)).await;
    expect_limit(third, Limit::Containers);
    sb.kill_container(a).await.unwrap();
    let c = exec(&sb, SPIN).await;
    // Four waits in flight fill the budget; the fifth is refused on the host at once.
    let wait = || sb.call::<String>(c, "wait", (300,));
    let (w1, w2, w3, w4, fifth) = tokio::join!(wait(), wait(), wait(), wait(), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        sb.call::<i64>(c, "ok", (1,)).await
    });
    expect_limit(fifth, Limit::InFlight);
    for r in [w1, w2, w3, w4] {
        assert_eq!(r.unwrap(), "waited");
    }
    assert_eq!(sb.call::<i64>(c, "ok", (1,)).await.unwrap(), 2);
}

pub(crate) async fn catastrophic_regex_hits_the_time_limit(target: &Target) {
    let soft = interrupts(target);
    let grace = if soft {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(100)
    };
    let sb = target
        .builder()
        .call_timeout(Some(Duration::from_millis(300)))
        .kill_grace(grace)
        .build()
        .await
        .unwrap();
    let cid = exec(
        &sb,
        "module.exports = {
            redos() { return /^(a+)+$/.test('a'.repeat(40) + 'b'); },
            ok(x) { return x + 1; },
        };",
    )
    .await;
    let r = with_witness(target, sb.call::<bool>(cid, "redos", ())).await;
    expect_limit(r, Limit::WallTime);
    if soft {
        assert_eq!(sb.call::<i64>(cid, "ok", (1,)).await.unwrap(), 2);
    } else {
        assert!(wait_gone(sb.pid(), 2000).await);
    }
}

pub(crate) async fn nested_json_parse_is_refused(target: &Target) {
    let sb = target.start().await;
    let cid = exec(
        &sb,
        "module.exports = {
            nested(n) { try { JSON.parse('['.repeat(n) + ']'.repeat(n)); return 'parsed'; } catch (e) { return e.name; } },
            ok(x) { return x + 1; },
        };",
    )
    .await;
    // Shallow enough to parse everywhere (boa's JSON parser refuses 128 levels).
    assert_eq!(
        sb.call::<String>(cid, "nested", (100,)).await.unwrap(),
        "parsed"
    );
    // A million deep: a catchable error in every runtime, never a crash.
    let name = with_witness(target, sb.call::<String>(cid, "nested", (1_000_000,))).await;
    assert!(
        matches!(
            name.as_deref(),
            Ok("RangeError") | Ok("SyntaxError") | Ok("InternalError")
        ),
        "{name:?}"
    );
    assert_eq!(sb.call::<i64>(cid, "ok", (1,)).await.unwrap(), 2);
}

pub(crate) async fn oversize_return_hits_the_frame_limit(target: &Target) {
    let sb = target.builder().max_frame(1 << 20).build().await.unwrap();
    let cid = exec(
        &sb,
        "module.exports = { big() { return 'x'.repeat(4 << 20); }, ok(x) { return x + 1; } };",
    )
    .await;
    expect_limit(sb.call::<String>(cid, "big", ()).await, Limit::FrameSize);
    assert_eq!(sb.call::<i64>(cid, "ok", (1,)).await.unwrap(), 2);
}

pub(crate) async fn microtask_flood_and_async_spin_hit_the_time_limit(target: &Target) {
    // Every runtime checks its limits between promise jobs and drops the queue past one,
    // so floods of jobs end on the soft path in Boa too (a tight loop is another matter).
    let sb = target
        .builder()
        .call_timeout(Some(Duration::from_millis(300)))
        .kill_grace(Duration::from_secs(3))
        .build()
        .await
        .unwrap();
    let cid = exec(
        &sb,
        "module.exports = {
            flood() { const f = () => Promise.resolve().then(f); f(); return new Promise(() => {}); },
            async awaitSpin() { while (true) { await null; } },
            ok(x) { return x + 1; },
        };",
    )
    .await;
    for export in ["flood", "awaitSpin"] {
        let t = Instant::now();
        let r = with_witness(target, sb.call::<()>(cid, export, ())).await;
        expect_limit(r, Limit::WallTime);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{export}: {:?}",
            t.elapsed()
        );
        assert_eq!(
            sb.call::<i64>(cid, "ok", (1,)).await.unwrap(),
            2,
            "after {export}"
        );
    }
    sb.teardown().await.unwrap();
}

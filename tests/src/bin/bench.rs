//! confine's benchmark harness: `cargo xtask bench [--quick] [--runtime NAME]`.
//!
//! Prints one table of medians and p99 per measurement. Absolute figures depend on the
//! machine and its load; compare ratios from one run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use confine::{ContainerSource, HostError, Sandbox, Value};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

struct Args {
    quick: bool,
    runtime: String,
}

fn parse_args() -> Args {
    let mut args = Args {
        quick: false,
        runtime: confine::DEFAULT_RUNTIME.into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--runtime" => args.runtime = it.next().expect("--runtime NAME"),
            other => panic!("unknown argument {other}; use --quick, --runtime NAME"),
        }
    }
    args
}

fn stats(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

fn row(name: &str, samples: Vec<Duration>) {
    let n = samples.len();
    let (p50, p99) = stats(samples);
    println!("| {name} | {} | {} | {n} |", fmt(p50), fmt(p99));
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.1} µs")
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

async fn start(runtime: &str, sandboxed: bool) -> Sandbox {
    Sandbox::builder()
        .runtime(runtime)
        .no_sandbox(!sandboxed)
        .function("noop", |(): ()| async { Ok::<_, HostError>(()) })
        .build()
        .await
        .expect("start sandbox")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = parse_args();
    let scale = if args.quick { 10 } else { 1 };
    let rt = args.runtime.as_str();
    println!(
        "runtime `{rt}`, {} mode\n",
        if args.quick { "quick" } else { "full" }
    );
    println!("| measurement | p50 | p99 | n |\n|---|---|---|---|");

    // Cold start: spawn to Ready, sandbox on and off, interleaved so drift hits both alike.
    let mut on = Vec::new();
    let mut off = Vec::new();
    for _ in 0..(200 / scale) {
        for (sandboxed, out) in [(true, &mut on), (false, &mut off)] {
            let t = Instant::now();
            let sb = start(rt, sandboxed).await;
            out.push(t.elapsed());
            sb.teardown().await.unwrap();
        }
    }
    let (on50, _) = stats(on.clone());
    let (off50, _) = stats(off.clone());
    row("cold start, sandboxed (spawn → ready)", on);
    row("cold start, no_sandbox", off);

    let sb = Arc::new(start(rt, true).await);
    let idle_rss = rss_kib(sb.pid());

    // exec_container of a small module (killed right after, outside the timing).
    let src = "module.exports.add = (a, b) => a + b; module.exports.loop = async (n) => { for (let i = 0; i < n; i++) await noop(); return n };";
    let mut samples = Vec::new();
    for _ in 0..(2000 / scale) {
        let t = Instant::now();
        let cid = sb.exec_container(ContainerSource::code(src)).await.unwrap();
        samples.push(t.elapsed());
        sb.kill_container(cid).await.unwrap();
    }
    row("exec_container (small CommonJS module)", samples);

    let cid = sb.exec_container(ContainerSource::code(src)).await.unwrap();

    // Call round trip, one in flight.
    let mut samples = Vec::new();
    for i in 0..(20000 / scale) {
        let t = Instant::now();
        let v: f64 = sb.call(cid, "add", (i, 1)).await.unwrap();
        samples.push(t.elapsed());
        assert_eq!(v, (i + 1) as f64);
    }
    row("call round trip, 1 in flight", samples);

    // Guest → host global round trip, timed from the host over many sequential awaits.
    let n = 20000 / scale;
    let mut samples = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let _: u32 = sb.call(cid, "loop", (n / 20,)).await.unwrap();
        samples.push(t.elapsed() / (n / 20) as u32);
    }
    row("global round trip (guest → host → guest)", samples);

    // Throughput with 64 calls in flight.
    let total = 200_000 / scale;
    let t = Instant::now();
    let mut workers = Vec::new();
    for w in 0..64 {
        let sb = Arc::clone(&sb);
        workers.push(tokio::spawn(async move {
            for i in (w..total).step_by(64) {
                let v: Value = sb.call(cid, "add", (i, 1)).await.unwrap();
                assert_eq!(v, Value::Number((i + 1) as f64));
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "| throughput, 64 in flight | {:.0} calls/s | | {total} |",
        total as f64 / secs
    );

    // Memory: idle guest, and per extra container.
    let before = rss_kib(sb.pid());
    let extra = 200;
    for _ in 0..extra {
        sb.exec_container(ContainerSource::code(src)).await.unwrap();
    }
    let after = rss_kib(sb.pid());
    println!("| idle guest RSS | {idle_rss} KiB | | 1 |");
    println!(
        "| RSS per extra container | {} KiB | | {extra} |",
        (after.saturating_sub(before)) / extra as u64
    );
    println!(
        "\nsandbox overhead on cold start: {} p50 ({:.2}x no_sandbox)",
        fmt(on50.saturating_sub(off50)),
        on50.as_secs_f64() / off50.as_secs_f64()
    );
    let sb = Arc::try_unwrap(sb).expect("no other owners");
    sb.teardown().await.unwrap();
}

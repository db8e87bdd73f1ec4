//! confine's benchmark harness: `cargo xtask bench [--quick] [--runtime NAME]... [--soak]`.
//!
//! Runs every measurement for each runtime (default: quickjs, boa and wasm, whose containers
//! here are JavaScript in its QuickJS plugin) in one process, one runtime after the other, and
//! prints one table with a p50 and a p99 column per runtime.
//! Absolute figures depend on the machine and its load; compare ratios from one run.
//!
//! `--soak` runs the long leak check instead: 10,000 spawn/teardown cycles and 1,000,000
//! calls, printing the host's open fds, threads, child processes and RSS before and after.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use confine::{
    CallLimits, ContainerId, ContainerSource, Error, Event, HostError, Limit, Limits,
    RestartPolicy, Sandbox,
};
use confine_tests::ProcessCounts;
use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

struct Args {
    quick: bool,
    soak: bool,
    runtimes: Vec<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        quick: false,
        soak: false,
        runtimes: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--soak" => args.soak = true,
            "--runtime" => args.runtimes.push(it.next().expect("--runtime NAME")),
            other => panic!("unknown argument {other}; use --quick, --runtime NAME, --soak"),
        }
    }
    if args.runtimes.is_empty() {
        args.runtimes = vec!["quickjs".into(), "boa".into(), "wasm".into()];
    }
    args
}

fn stats(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.1} µs")
    }
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One table: rows in the order first measured, one (p50, p99) cell pair per runtime.
#[derive(Default)]
struct Table {
    order: Vec<String>,
    cells: BTreeMap<(String, String), (String, String)>,
}

impl Table {
    fn put(&mut self, rt: &str, name: &str, p50: String, p99: String) {
        if !self.order.iter().any(|n| n == name) {
            self.order.push(name.to_owned());
        }
        self.cells
            .insert((name.to_owned(), rt.to_owned()), (p50, p99));
    }

    fn samples(&mut self, rt: &str, name: &str, samples: Vec<Duration>) {
        let n = samples.len();
        let (p50, p99) = stats(samples);
        eprintln!("{rt}: {name}: p50 {} p99 {} (n = {n})", fmt(p50), fmt(p99));
        self.put(rt, name, fmt(p50), fmt(p99));
    }

    fn value(&mut self, rt: &str, name: &str, value: String) {
        eprintln!("{rt}: {name}: {value}");
        self.put(rt, name, value, String::new());
    }

    fn print(&self, runtimes: &[String]) {
        let mut head = "| measurement |".to_owned();
        let mut rule = "|---|".to_owned();
        for rt in runtimes {
            head += &format!(" {rt} p50 | {rt} p99 |");
            rule += "---|---|";
        }
        println!("{head}\n{rule}");
        for name in &self.order {
            let mut line = format!("| {name} |");
            for rt in runtimes {
                let (a, b) = self
                    .cells
                    .get(&(name.clone(), rt.clone()))
                    .cloned()
                    .unwrap_or_default();
                line += &format!(" {a} | {b} |");
            }
            println!("{line}");
        }
    }
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

const SRC: &str = "module.exports.add = (a, b) => a + b;
module.exports.loop = async (n) => { for (let i = 0; i < n; i++) await noop(); return n };
const fib = (n) => n < 2 ? n : fib(n - 1) + fib(n - 2);
module.exports.fib = fib;
module.exports.spin = () => { while (true) {} };
module.exports.bomb = () => { const a = []; while (true) a.push(new Array(100000).fill(1.5)); };";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = parse_args();
    let scale = if args.quick { 10 } else { 1 };
    if args.soak {
        for rt in &args.runtimes {
            soak(rt, scale).await;
        }
        return;
    }
    println!(
        "runtimes {:?}, {} mode\n",
        args.runtimes,
        if args.quick { "quick" } else { "full" }
    );
    let mut table = Table::default();
    let mut notes = Vec::new();
    for rt in &args.runtimes {
        let overhead = bench_runtime(rt, scale, &mut table).await;
        notes.push(overhead);
    }
    table.print(&args.runtimes);
    println!();
    for n in notes {
        println!("{n}");
    }
}

/// Every measurement for runtime `rt`; returns a line about the sandbox's cold-start cost.
async fn bench_runtime(rt: &str, scale: usize, table: &mut Table) -> String {
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
    table.samples(rt, "cold start, sandboxed (spawn → ready)", on);
    table.samples(rt, "cold start, no_sandbox", off);

    let sb = Arc::new(start(rt, true).await);
    let idle_rss = status_kib(sb.pid(), "VmRSS:");

    // exec_container of a small module (killed right after, outside the timing).
    let mut samples = Vec::new();
    for _ in 0..(2000 / scale) {
        let t = Instant::now();
        let cid = sb.exec_container(ContainerSource::code(SRC)).await.unwrap();
        samples.push(t.elapsed());
        sb.kill_container(cid).await.unwrap();
    }
    table.samples(
        rt,
        "new container ready to call (exec_container, small CommonJS module)",
        samples,
    );

    let cid = sb.exec_container(ContainerSource::code(SRC)).await.unwrap();

    // Call round trip, one in flight.
    let mut samples = Vec::new();
    for i in 0..(20000 / scale) {
        let t = Instant::now();
        let v: f64 = sb.call(cid, "add", (i, 1)).await.unwrap();
        samples.push(t.elapsed());
        assert_eq!(v, (i + 1) as f64);
    }
    table.samples(rt, "call round trip, 1 in flight", samples);

    // The same with a wall-time and a CPU-time limit on each call (both far away).
    let armed = CallLimits::none()
        .timeout(Some(Duration::from_secs(60)))
        .cpu_time(Some(Duration::from_secs(60)));
    let mut samples = Vec::new();
    for i in 0..(20000 / scale) {
        let t = Instant::now();
        let v: f64 = sb.call_with(cid, "add", (i, 1), armed).await.unwrap();
        samples.push(t.elapsed());
        assert_eq!(v, (i + 1) as f64);
    }
    table.samples(rt, "call round trip, wall + CPU limits armed", samples);

    // Guest → host global round trip, timed from the host over many sequential awaits.
    let n = 20000 / scale;
    let mut samples = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let _: u32 = sb.call(cid, "loop", (n / 20,)).await.unwrap();
        samples.push(t.elapsed() / (n / 20) as u32);
    }
    table.samples(rt, "global round trip (guest → host → guest)", samples);

    // Throughput with 64 calls in flight.
    let total = 200_000 / scale;
    let secs = add_calls(&sb, cid, total).await;
    table.value(
        rt,
        "throughput, 64 in flight",
        format!("{:.0} calls/s", total as f64 / secs),
    );

    // Engine speed, and what the limits' machinery costs on CPU-bound code: the same
    // fib(27) with no limits and with a wall-time and a CPU-time limit (both far away),
    // interleaved.
    let (mut plain, mut limited) = (Vec::new(), Vec::new());
    let far = CallLimits::none()
        .timeout(Some(Duration::from_secs(60)))
        .cpu_time(Some(Duration::from_secs(60)));
    for _ in 0..(30 / scale).max(3) {
        let t = Instant::now();
        let v: f64 = sb.call(cid, "fib", (27,)).await.unwrap();
        plain.push(t.elapsed());
        assert_eq!(v, 196_418.0);
        let t = Instant::now();
        let v: f64 = sb.call_with(cid, "fib", (27,), far).await.unwrap();
        limited.push(t.elapsed());
        assert_eq!(v, 196_418.0);
    }
    let (p, _) = stats(plain.clone());
    let (l, _) = stats(limited.clone());
    table.samples(rt, "fib(27), no limits", plain);
    table.samples(rt, "fib(27), wall + CPU limits armed", limited);
    table.value(
        rt,
        "limits' overhead on fib(27) (p50 ratio)",
        format!(
            "{:+.1} %",
            (l.as_secs_f64() / p.as_secs_f64() - 1.0) * 100.0
        ),
    );

    // Memory: idle guest, and per extra container.
    let before = status_kib(sb.pid(), "VmRSS:");
    let extra = 200;
    for _ in 0..extra {
        sb.exec_container(ContainerSource::code(SRC)).await.unwrap();
    }
    let after = status_kib(sb.pid(), "VmRSS:");
    table.value(rt, "idle guest RSS", format!("{idle_rss} KiB"));
    table.value(
        rt,
        "RSS per extra container",
        format!("{} KiB", after.saturating_sub(before) / extra as u64),
    );
    let sb = Arc::try_unwrap(sb).expect("no other owners");
    sb.teardown().await.unwrap();

    interrupt_latency(rt, scale, table).await;
    restart_latency(rt, scale, table).await;
    memory_bomb_peak(rt, table).await;

    format!(
        "{rt}: sandbox overhead on cold start: {} p50 ({:.2}x no_sandbox)",
        fmt(on50.saturating_sub(off50)),
        on50.as_secs_f64() / off50.as_secs_f64()
    )
}

/// How long after a 50 ms wall-time limit a spinning call's error arrives: the soft path
/// where the engine interrupts (the container is reused), else the hard path (the kill after
/// a 100 ms grace; a new guest each time).
async fn interrupt_latency(rt: &str, scale: usize, table: &mut Table) {
    const LIMIT: Duration = Duration::from_millis(50);
    let mut samples = Vec::new();
    let mut path = "soft";
    let mut sb = None;
    for _ in 0..(40 / scale).max(4) {
        let s = match sb.take() {
            Some(s) => s,
            None => Sandbox::builder()
                .runtime(rt)
                .kill_grace(Duration::from_millis(100))
                .build()
                .await
                .unwrap(),
        };
        let cid = s.exec_container(ContainerSource::code(SRC)).await.unwrap();
        let t = Instant::now();
        let r = s
            .call_with::<()>(cid, "spin", (), CallLimits::none().timeout(Some(LIMIT)))
            .await;
        let late = t.elapsed().saturating_sub(LIMIT);
        assert!(matches!(
            r,
            Err(Error::LimitExceeded {
                limit: Limit::WallTime,
                ..
            })
        ));
        samples.push(late);
        if s.is_active() && s.call::<f64>(cid, "add", (1, 1)).await.is_ok() {
            sb = Some(s);
        } else {
            path = "hard, after the 100 ms grace";
        }
    }
    eprintln!("{rt}: interrupt path: {path}");
    table.samples(rt, "interrupt latency past a 50 ms limit", samples);
    table.value(rt, "interrupt path", path.to_owned());
}

/// How long a sandbox with a restart policy takes from its guest's death (SIGKILL from
/// outside) until a call into its re-created container answers: a new guest started,
/// verified, its globals defined and one container re-created.
async fn restart_latency(rt: &str, scale: usize, table: &mut Table) {
    let sb = Sandbox::builder()
        .runtime(rt)
        .function("noop", |(): ()| async { Ok::<_, HostError>(()) })
        .restart(RestartPolicy::on_exit(u32::MAX, Duration::from_secs(1)))
        .build()
        .await
        .unwrap();
    let cid = sb.exec_container(ContainerSource::code(SRC)).await.unwrap();
    let mut events = sb.events();
    let mut samples = Vec::new();
    for _ in 0..(40 / scale).max(4) {
        let t = Instant::now();
        sb.kill();
        // Until the death is seen, a call would go to the dead guest and fail.
        while !matches!(events.recv().await, Some(Event::GuestExited(_))) {}
        let v: f64 = sb.call(cid, "add", (1, 1)).await.unwrap();
        assert_eq!(v, 2.0);
        samples.push(t.elapsed());
    }
    table.samples(
        rt,
        "restart: guest killed → re-created container answers",
        samples,
    );
    sb.teardown().await.unwrap();
}

/// Peak RSS of the guest while an array bomb runs into a 64 MiB memory limit, sampled every
/// millisecond from `/proc` (the guest may die at the process cap, so its own high-water mark
/// cannot be read afterwards).
async fn memory_bomb_peak(rt: &str, table: &mut Table) {
    const LIMIT: u64 = 64 << 20;
    let mut limits = Limits::default();
    limits.memory = Some(LIMIT);
    let sb = Sandbox::builder()
        .runtime(rt)
        .limits(limits)
        .build()
        .await
        .unwrap();
    let pid = sb.pid();
    let cid = sb.exec_container(ContainerSource::code(SRC)).await.unwrap();
    // What the memory accounting costs: calls with 64 in flight under the limit.
    let sb = Arc::new(sb);
    let total = 100_000;
    let secs = add_calls(&sb, cid, total).await;
    table.value(
        rt,
        "throughput, 64 in flight, 64 MiB memory limit",
        format!("{:.0} calls/s", total as f64 / secs),
    );
    let sb = Arc::try_unwrap(sb).expect("no other owners");
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sampler = tokio::spawn(async move {
        let mut peak = 0;
        loop {
            peak = peak.max(status_kib(pid, "VmRSS:"));
            tokio::select! {
                _ = &mut stop_rx => return peak,
                () = tokio::time::sleep(Duration::from_millis(1)) => {}
            }
        }
    });
    let r = sb.call::<()>(cid, "bomb", ()).await;
    let _ = stop_tx.send(());
    let peak = sampler.await.unwrap();
    // Any other outcome is reported in the table rather than ending the whole run.
    let outcome = match &r {
        Err(Error::LimitExceeded {
            limit: Limit::Memory,
            ..
        }) => String::new(),
        other => format!("; NOT a memory limit error: {other:?}"),
    };
    table.value(
        rt,
        "memory bomb vs 64 MiB limit: peak guest RSS",
        format!(
            "{} MiB ({:.2}x the limit; process cap {} MiB){outcome}",
            peak / 1024,
            (peak * 1024) as f64 / LIMIT as f64,
            Limits::process_memory_cap(LIMIT) >> 20
        ),
    );
}

/// Makes `total` calls of `add(i, 1)` with 64 in flight, checking each answer; the seconds
/// they took.
async fn add_calls(sb: &Arc<Sandbox>, cid: ContainerId, total: usize) -> f64 {
    let t = Instant::now();
    let mut workers = Vec::new();
    for w in 0..64 {
        let sb = Arc::clone(sb);
        workers.push(tokio::spawn(async move {
            for i in (w..total).step_by(64) {
                let v: f64 = sb.call(cid, "add", (i, 1)).await.unwrap();
                assert_eq!(v, (i + 1) as f64);
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    t.elapsed().as_secs_f64()
}

/// The host's counts and its RSS in KiB.
fn host_counts() -> (ProcessCounts, u64) {
    (
        ProcessCounts::now(),
        status_kib(std::process::id(), "VmRSS:"),
    )
}

/// The long leak check: spawn/teardown cycles, then calls on one guest, with the host's
/// resource counts before, in between and after.
async fn soak(rt: &str, scale: usize) {
    let cycles = 10_000 / scale;
    let calls = 1_000_000 / scale;
    // Warm-up: lazy state (tokio's blocking pool, the allocator's arenas) is not a leak.
    for _ in 0..50 {
        start(rt, true).await.teardown().await.unwrap();
    }
    let before = host_counts();
    let t = Instant::now();
    for i in 0..cycles {
        let sb = start(rt, i % 2 == 0).await;
        if i % 3 == 0 {
            drop(sb);
        } else {
            sb.teardown().await.unwrap();
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_cycles = host_counts();
    let cycle_secs = t.elapsed().as_secs_f64();
    let sb = Arc::new(start(rt, true).await);
    let cid = sb.exec_container(ContainerSource::code(SRC)).await.unwrap();
    let call_secs = add_calls(&sb, cid, calls).await;
    let guest_rss = status_kib(sb.pid(), "VmRSS:");
    Arc::try_unwrap(sb).unwrap().teardown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = host_counts();
    println!("{rt}: soak (fds, threads, children, host RSS KiB)");
    println!("  before:                      {before:?}");
    println!("  after {cycles} spawn/teardown cycles ({cycle_secs:.1} s): {after_cycles:?}");
    println!(
        "  after {calls} calls ({call_secs:.1} s; guest RSS at the end {guest_rss} KiB): {after:?}"
    );
}

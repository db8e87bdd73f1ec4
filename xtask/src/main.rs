//! `cargo xtask`: the project's own commands.
//!
//! * `cargo xtask test`: everything CI checks: formatting, clippy, the guest executables, and
//!   the whole test suite (which runs every runtime in both sandbox modes).
//! * `cargo xtask bench`: the benchmark harness, release build; prints medians and p99.
//! * `cargo xtask lint`: formatting and clippy only.
//!
//! Everything shares the workspace's one target directory, and the test build uses the same
//! features as the plain build, so no crate is compiled twice.

use std::{
    env,
    process::{Command, ExitCode},
    time::Instant,
};

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r.to_vec()),
        None => ("help", Vec::new()),
    };
    let result = match cmd {
        "test" => test(&rest),
        "bench" => bench(&rest),
        "lint" => lint(),
        "help" | "--help" | "-h" => {
            println!("{HELP}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

const HELP: &str = "\
usage: cargo xtask <command> [args]

commands:
  test [ARGS]   fmt check, clippy, build the guest executables, run the whole test suite
                (ARGS go to `cargo test`, e.g. `cargo xtask test conformance`)
  bench [ARGS]  release build, then the benchmark harness (ARGS go to it, e.g. `--quick`)
  lint          fmt check and clippy only";

fn cargo() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(step: &str, mut cmd: Command) -> Result<(), String> {
    let start = Instant::now();
    eprintln!("xtask: {step}");
    let status = cmd
        .status()
        .map_err(|e| format!("{step}: cannot start: {e}"))?;
    eprintln!("xtask: {step}: {:.1}s", start.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

fn lint() -> Result<(), String> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run("cargo fmt --check", fmt)?;
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run("cargo clippy", clippy)
}

fn test(args: &[String]) -> Result<(), String> {
    lint()?;
    // The tests find guests beside their own executables (target/debug), so the guest
    // binaries must exist before the tests run.
    let mut build = cargo();
    build.args(["build", "--workspace", "--bins"]);
    run("build guest executables", build)?;
    let mut test = cargo();
    test.args(["test", "--workspace"]);
    test.args(args);
    run("cargo test", test)
}

fn bench(args: &[String]) -> Result<(), String> {
    let mut build = cargo();
    build.args(["build", "--release", "--workspace", "--bins"]);
    run("release build", build)?;
    let mut bench = cargo();
    bench.args([
        "run",
        "--release",
        "--quiet",
        "-p",
        "confine-tests",
        "--bin",
        "confine-bench",
        "--",
    ]);
    bench.args(args);
    run("benchmarks", bench)
}

//! `cargo xtask`: the project's own commands.
//!
//! * `cargo xtask test`: everything CI checks: formatting, clippy, the macOS cross-check, the
//!   guest executables, the whole test suite (which runs every runtime in both sandbox modes),
//!   and the sandboxed conformance suite once more in the seccomp audit mode, where any
//!   refused syscall fails the run with its number.
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
        "seccomp-audit" => seccomp_audit(),
        "macos-check" => macos_check(),
        "wasm-plugin" => wasm_plugin(),
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
  test [ARGS]   fmt check, clippy, macOS cross-check, build the guest executables, run the
                whole test suite (ARGS go to `cargo test`, e.g. `cargo xtask test
                conformance`), then the sandboxed conformance suite in the seccomp audit
                mode (any denial fails)
  bench [ARGS]  release build, then the benchmark harness (ARGS go to it, e.g. `--quick`)
  lint          fmt check and clippy only
  macos-check   the macOS cross-check alone (clippy for aarch64-apple-darwin)
  seccomp-audit only the sandboxed conformance suite in the seccomp audit mode (guest
                executables must be built: `cargo build --workspace --bins`)
  wasm-plugin   build the wasm runtime's JS plugin (installs clang-16, llvm-16, wasi-libc
                with apt-get when run as root)";

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
    // First, so the wasm runtime (and its guest executable) embeds it, and clippy checks the
    // same build the tests use.
    wasm_plugin()?;
    lint()?;
    macos_check()?;
    // The tests find guests beside their own executables (target/debug), so the guest
    // binaries must exist before the tests run.
    let mut build = cargo();
    build.args(["build", "--workspace", "--bins"]);
    run("build guest executables", build)?;
    wasm_guest()?;
    let mut test = cargo();
    // Every test binary runs even after one fails, so a run shows all its failures at once.
    test.args(["test", "--workspace", "--no-fail-fast"]);
    test.args(args);
    run_tests(test)?;
    seccomp_audit()
}

/// Runs the sandboxed half of the conformance suite again in the seccomp audit mode
/// (`CONFINE_SECCOMP_AUDIT`): every refusal a runtime meets traps instead of returning an
/// errno, the guest reports the syscall number and exits, and the host appends the report to
/// a log. Any line in the log fails the run, so a libc or engine update that starts calling
/// a refused syscall is caught here, with its number, instead of by users.
fn seccomp_audit() -> Result<(), String> {
    let log = env::temp_dir().join(format!("confine-seccomp-audit-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let mut cmd = cargo();
    cmd.args([
        "test",
        "-p",
        "confine-tests",
        "--test",
        "conformance",
        "--",
        "_sandboxed::",
    ])
    .env("CONFINE_SECCOMP_AUDIT", &log);
    let result = run("conformance suite, sandboxed, seccomp audit mode", cmd);
    let denials = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    if !denials.trim().is_empty() {
        // One line per distinct denial ("[confine quickjs 123] confine-guest: seccomp audit:
        // syscall N refused ..."), counted over guests.
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        for line in denials.lines() {
            let what = line.split_once("] ").map_or(line, |(_, rest)| rest);
            *counts.entry(what).or_default() += 1;
        }
        let list: Vec<String> = counts
            .iter()
            .map(|(what, n)| format!("  {what} ({n} guests)"))
            .collect();
        return Err(format!(
            "seccomp audit: the guests met syscalls the policy refuses (decide each in \
             confine/src/platform/linux/policy.rs):\n{}",
            list.join("\n")
        ));
    }
    result
}

/// Runs `cargo test`, echoing its output, and ends with one line totalling every test binary
/// (`summary: N passed, N failed, N ignored`): cargo's own last line belongs to whichever
/// binary ran last, often a doc-test run with nothing in it.
fn run_tests(mut cmd: Command) -> Result<(), String> {
    use std::io::{BufRead, BufReader};
    let start = Instant::now();
    eprintln!("xtask: cargo test");
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cargo test: cannot start: {e}"))?;
    let mut totals = [0u64; 3];
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                for (i, word) in ["passed", "failed", "ignored"].iter().enumerate() {
                    totals[i] += count_before(rest, word);
                }
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("cargo test: cannot wait: {e}"))?;
    eprintln!("xtask: cargo test: {:.1}s", start.elapsed().as_secs_f64());
    println!(
        "summary: {} passed, {} failed, {} skipped",
        totals[0], totals[1], totals[2]
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo test failed ({status})"))
    }
}

/// The number just before ` {word}` in a `test result:` line (`ok. 5 passed; 0 failed; ...`).
fn count_before(line: &str, word: &str) -> u64 {
    line.split(';')
        .find_map(|part| {
            let mut it = part.split_whitespace().rev();
            (it.next() == Some(word)).then(|| it.next()?.parse().ok())?
        })
        .unwrap_or(0)
}

/// The macOS target `confine` must keep building for.
const MACOS_TARGET: &str = "aarch64-apple-darwin";

/// Whether rustup lists `target` as installed; `Err` when rustup cannot be asked.
fn target_installed(target: &str) -> Result<bool, String> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    if !out.status.success() {
        return Err(format!("`rustup target list` failed ({})", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == target))
}

/// Type-checks and lints, for macOS, what builds without a C cross toolchain: the `confine`
/// host library and CLI without default features (the default `quickjs` feature compiles
/// QuickJS's C sources, which needs a macOS SDK) and the guest serve loop. Nothing links, so
/// only the Rust standard library for the target is needed; rustup installs it if missing.
/// When it cannot be installed (no rustup, no network), the step says it was skipped and why.
fn macos_check() -> Result<(), String> {
    let step = "macOS check (clippy for aarch64-apple-darwin)";
    match target_installed(MACOS_TARGET) {
        Ok(true) => {}
        Ok(false) => {
            let mut add = Command::new("rustup");
            add.args(["target", "add", MACOS_TARGET]);
            if let Err(e) = run("rustup target add aarch64-apple-darwin", add) {
                eprintln!(
                    "xtask: {step}: skipped: the {MACOS_TARGET} standard library cannot be \
                     installed here ({e})"
                );
                return Ok(());
            }
        }
        Err(e) => {
            eprintln!(
                "xtask: {step}: skipped: {e}, so the {MACOS_TARGET} target cannot be installed"
            );
            return Ok(());
        }
    }
    let mut check = cargo();
    check.args([
        "clippy",
        "--target",
        MACOS_TARGET,
        "-p",
        "confine",
        "-p",
        "confine-guest",
        "--no-default-features",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run(step, check).map_err(|e| {
        format!(
            "{e}\nconfine must keep building for macOS: gate Linux-only code with \
             #[cfg(target_os = \"linux\")] and give macOS its own path (see \
             confine/src/platform/mod.rs); reproduce with `cargo clippy --target {MACOS_TARGET} \
             -p confine -p confine-guest --no-default-features --all-targets`"
        )
    })
}

/// The wasm target the `wasm` runtime's example guest (and later the JS plugin) is built for.
const WASM_TARGET: &str = "wasm32-wasip1";

/// Installs the wasm target if needed and builds the example Rust guest module the `wasm`
/// suite runs (into `target/wasm-guest`, outside the workspace's own build).
fn wasm_guest() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == WASM_TARGET)
        })
        .unwrap_or(false);
    if !installed {
        let mut add = Command::new("rustup");
        add.args(["target", "add", WASM_TARGET]);
        run("rustup target add wasm32-wasip1", add).map_err(|e| {
            format!(
                "{e}\nthe `wasm` runtime's tests need the {WASM_TARGET} target: install it with \
                 `rustup target add {WASM_TARGET}` (or, without rustup, a Rust toolchain that has \
                 the {WASM_TARGET} standard library)"
            )
        })?;
    }
    let root = env!("CARGO_MANIFEST_DIR").trim_end_matches("/xtask");
    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "--target",
        WASM_TARGET,
        "--manifest-path",
    ]);
    build.arg(format!(
        "{root}/confine-runtime-wasm/examples/rust-guest/Cargo.toml"
    ));
    build.arg("--target-dir");
    build.arg(format!("{root}/target/wasm-guest"));
    run("build the example wasm guest", build)
}

/// Debian packages the JS plugin's offline build needs: clang for QuickJS's C code,
/// llvm-ar for its archive, and wasi-libc for the C library and headers.
const PLUGIN_PACKAGES: &[&str] = &["clang-16", "llvm-16", "wasi-libc"];

/// `true` when the C toolchain for the JS plugin is installed.
fn plugin_toolchain_present() -> bool {
    let on_path = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    on_path("clang-16")
        && on_path("llvm-ar-16")
        && std::path::Path::new("/usr/include/wasm32-wasi/stdio.h").exists()
}

/// Builds the JS plugin (QuickJS for wasm32-wasip1) into `target/wasm-js`, offline: Debian's
/// clang-16 and wasi-libc instead of the wasi-sdk download rquickjs-sys would otherwise do.
/// Installs the packages with apt-get when running as root; otherwise says what to install.
fn wasm_plugin() -> Result<(), String> {
    if !plugin_toolchain_present() {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let install = format!(
            "apt-get install -y --no-install-recommends {}",
            PLUGIN_PACKAGES.join(" ")
        );
        if !root {
            return Err(format!(
                "the wasm runtime's JS plugin needs clang-16, llvm-ar-16 and wasi-libc; \
                 install them (Debian/Ubuntu: `sudo {install}`) and run again"
            ));
        }
        let mut apt = Command::new("apt-get");
        apt.args(["install", "-y", "--no-install-recommends"]);
        apt.args(PLUGIN_PACKAGES);
        apt.env("DEBIAN_FRONTEND", "noninteractive");
        run(&install, apt)
            .map_err(|e| format!("{e}\n(`apt-get update` first if the package lists are stale)"))?;
    }
    let root = env!("CARGO_MANIFEST_DIR").trim_end_matches("/xtask");
    let quickjs = patched_quickjs_sys(root)?;
    let mut build = cargo();
    build.args([
        "build",
        "--offline",
        "--release",
        "--target",
        WASM_TARGET,
        "--manifest-path",
    ]);
    build.arg(format!("{root}/confine-runtime-wasm/js-plugin/Cargo.toml"));
    build.arg("--target-dir");
    build.arg(format!("{root}/target/wasm-js"));
    build.arg("--config");
    build.arg(format!(
        "patch.crates-io.rquickjs-sys.path={:?}",
        quickjs.display().to_string()
    ));
    build
        // rquickjs-sys downloads wasi-sdk for wasm targets unless told not to.
        .env("RQUICKJS_SYS_NO_WASI_SDK", "1")
        .env("CC_wasm32_wasip1", "clang-16")
        .env("AR_wasm32_wasip1", "llvm-ar-16")
        // clang-16 does not know the `wasip1` triple; `wasm32-wasi` finds Debian's
        // /usr/include/wasm32-wasi and /usr/lib/wasm32-wasi (the last --target wins).
        .env("CFLAGS_wasm32_wasip1", "--target=wasm32-wasi");
    run("build the JS plugin (QuickJS for wasm32-wasip1)", build)
}

/// The rquickjs-sys release the plugin builds on (the native runtime's).
const QUICKJS_SYS: &str = "rquickjs-sys-0.14.0";

/// QuickJS's stack check is compiled out for WASI (`update_stack_limit` sets no limit), so
/// deep recursion in the plugin would exhaust wasm's stack and trap, instead of throwing the
/// catchable `RangeError` the native runtime throws. The check works on wasm32 as is (the
/// frame address is the shadow stack pointer), so the plugin builds on a copy of rquickjs-sys
/// with that one condition turned off.
const STACK_PATCH: (&str, &str) = (
    "static void update_stack_limit(JSRuntime *rt)\n{\n#if defined(__wasi__)\n",
    "static void update_stack_limit(JSRuntime *rt)\n{\n#if 0 /* confine: check the stack on WASI too */\n",
);

/// The wasm runtime starts every JS container from a snapshot of the plugin's memory taken
/// after its QuickJS context was made, so every container would inherit that context's
/// `Math.random` state and its `Map`/`Set` hash seed (QuickJS seeds both from the time when
/// it makes a context). This adds a function the plugin calls with fresh randomness before a
/// container runs on the snapshot's context; both fields are private to quickjs.c.
const RESEED_PATCH: (&str, &str) = (
    "JSContext *JS_NewContext(JSRuntime *rt)\n{",
    "/* confine: reseed a context copied from a snapshot (see xtask's RESEED_PATCH). Only \
     sound before the context holds a Map or Set record, which hash_seed placed. */\n\
     void JS_ConfineReseed(JSContext *ctx, uint64_t seed)\n{\n    \
     ctx->random_state = seed ? seed : 1;\n    \
     ctx->hash_seed = xorshift64star(&ctx->random_state);\n}\n\n\
     JSContext *JS_NewContext(JSRuntime *rt)\n{",
);

/// Copies rquickjs-sys from cargo's registry cache to `target/wasm-js/` and applies
/// [`STACK_PATCH`] and [`RESEED_PATCH`] (once; a marker file records which), returning the
/// copy's directory.
fn patched_quickjs_sys(root: &str) -> Result<std::path::PathBuf, String> {
    use std::path::{Path, PathBuf};
    let dest = Path::new(root).join("target/wasm-js").join(QUICKJS_SYS);
    let marker = dest.join(".confine-patched");
    let patches = [STACK_PATCH, RESEED_PATCH];
    let record: String = patches.iter().map(|p| p.1).collect();
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == record) {
        return Ok(dest);
    }
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let find = || -> Option<PathBuf> {
        std::fs::read_dir(cargo_home.join("registry/src"))
            .ok()?
            .filter_map(Result::ok)
            .map(|index| index.path().join(QUICKJS_SYS))
            .find(|p| p.join("quickjs/quickjs.c").is_file())
    };
    let source = match find() {
        Some(s) => s,
        None => {
            // The workspace depends on the same release (the native runtime).
            let mut fetch = cargo();
            fetch.arg("fetch");
            run("cargo fetch (for the rquickjs-sys sources)", fetch)?;
            find().ok_or_else(|| format!("{QUICKJS_SYS} is not in cargo's registry cache"))?
        }
    };
    let _ = std::fs::remove_dir_all(&dest);
    copy_dir(&source, &dest).map_err(|e| format!("copying {}: {e}", source.display()))?;
    let file = dest.join("quickjs/quickjs.c");
    let mut text =
        std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    for (from, to) in patches {
        if !text.contains(from) {
            return Err(format!(
                "{}: the code a patch expects is not there: {from:?}",
                file.display()
            ));
        }
        text = text.replacen(from, to, 1);
    }
    std::fs::write(&file, text)
        .and_then(|()| std::fs::write(&marker, record))
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(dest)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn bench(args: &[String]) -> Result<(), String> {
    // The `wasm` runtime's JavaScript containers run in the plugin, embedded at build time.
    wasm_plugin()?;
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

#[cfg(test)]
mod tests {
    use super::count_before;

    #[test]
    fn counts_come_from_cargo_result_lines() {
        let line =
            "ok. 68 passed; 2 failed; 3 ignored; 0 measured; 0 filtered out; finished in 0.40s";
        assert_eq!(count_before(line, "passed"), 68);
        assert_eq!(count_before(line, "failed"), 2);
        assert_eq!(count_before(line, "ignored"), 3);
        assert_eq!(count_before("FAILED. 1 passed; 4 failed;", "failed"), 4);
        assert_eq!(count_before("garbage", "passed"), 0);
    }
}

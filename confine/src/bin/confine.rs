//! The `confine` command: run a script in a sandbox from the shell.
//!
//! This executable is also its own guest: started as `confine --confine-guest NAME` (by
//! itself, through the registry) it serves runtime `NAME` on fd 3. That is why an installed
//! `confine` needs no separate guest binaries.

use clap::{Parser, Subcommand};
use confine::{
    report::{self, HostReport},
    ContainerSource, Error, Event, LogLevel, Sandbox, Value,
};
use std::{
    io::Write,
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

/// Exit codes, as documented in `--help`.
mod exit {
    pub const OK: u8 = 0;
    pub const SCRIPT: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const LIMIT: u8 = 3;
    pub const SANDBOX: u8 = 4;
    pub const CRASH: u8 = 5;
}

const AFTER_HELP: &str = "\
Output:
  console.log, console.info and console.debug print to stdout; console.warn and
  console.error print to stderr. With --call, the export's result is printed as JSON on
  the last line of stdout (undefined prints as null).

Exit codes:
  0  success (`doctor`: a full sandbox is possible on this host)
  1  the script threw, a promise rejection went unhandled, or the export failed
     (message and stack on stderr)
  2  usage error, or the input file cannot be read
  3  a limit was exceeded
  4  the sandbox could not be set up (see `confine doctor`, --no-sandbox,
     CONFINE_LOG=debug); `doctor`: a full sandbox is not possible on this host
  5  the guest process crashed or broke the protocol

Environment:
  CONFINE_LOG  tracing filter for confine's own diagnostics (e.g. `debug`); the guest
               never sees the host's environment.";

/// Run untrusted JavaScript in an OS-sandboxed guest process.
#[derive(Parser, Debug)]
#[command(name = "confine", version, about, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Clone)]
struct Common {
    /// The runtime to run the script in.
    #[arg(long, default_value = confine::DEFAULT_RUNTIME, value_name = "NAME")]
    runtime: String,
    /// Turn the OS sandbox off (the engine and the process boundary still separate the
    /// script from this process).
    #[arg(long)]
    no_sandbox: bool,
    /// Accept a sandbox missing an optional layer (Landlock) on this kernel.
    #[arg(long)]
    allow_degraded: bool,
    /// Print the guest's command line and isolation report before running.
    #[arg(long)]
    log_spawn: bool,
    /// Trace the guest's system calls with strace (to stderr).
    #[arg(long)]
    strace: bool,
    /// Wall-time limit in milliseconds for the top-level code, for the --call export, and
    /// for running timers and promises until nothing is left (each). Exit code 3 past it.
    #[arg(long, value_name = "MS")]
    timeout: Option<u64>,
    /// CPU-time limit in milliseconds, counted like --timeout but in CPU time (a script
    /// waiting on a timer uses none). Exit code 3 past it.
    #[arg(long, value_name = "MS")]
    cpu_time: Option<u64>,
    /// Kill the guest if it uses more than PCT % of a core averaged over a second. Exit code 3.
    #[arg(long, value_name = "PCT", value_parser = clap::value_parser!(u32).range(1..=100))]
    cpu_percent: Option<u32>,
    /// Memory limit in MiB: scripts get an out-of-memory error past it (QuickJS), and the
    /// guest process is capped a little above it. Exit code 3.
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1 << 40))]
    memory: Option<u64>,
    /// Console output limit in bytes (for the top-level code, and for each --call). Exit
    /// code 3 past it.
    #[arg(long, value_name = "BYTES")]
    max_output: Option<u64>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run FILE like `node FILE`: top-level code, then timers and promises until nothing is
    /// left; or, with --call, call one of its exports and print the result as JSON.
    Run {
        /// The script (CommonJS or an ES module).
        file: PathBuf,
        /// Call this export after the top-level code ran.
        #[arg(long, value_name = "EXPORT")]
        call: Option<String>,
        /// The export's arguments, as a JSON array.
        #[arg(long, value_name = "JSON_ARRAY", requires = "call")]
        args: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Run CODE given on the command line, like `node -e CODE`.
    Eval {
        /// The code.
        code: String,
        #[command(flatten)]
        common: Common,
    },
    /// Check whether this host can sandbox guests: print the kernel's sandboxing features,
    /// the isolation policy for a runtime, and the result of starting one sandboxed guest.
    /// Exits 0 if a fully enforced sandbox is possible, 4 otherwise.
    Doctor {
        /// The runtime to check.
        #[arg(long, default_value = confine::DEFAULT_RUNTIME, value_name = "NAME")]
        runtime: String,
    },
}

fn main() -> ExitCode {
    confine::guest::run_if_requested();
    init_tracing();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("confine: cannot start the async runtime: {e}");
            return ExitCode::from(exit::SANDBOX);
        }
    };
    ExitCode::from(rt.block_on(run(cli)))
}

fn init_tracing() {
    if let Ok(filter) = std::env::var("CONFINE_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
}

async fn run(cli: Cli) -> u8 {
    let (source, call, args, common) = match cli.command {
        Command::Doctor { runtime } => return doctor(runtime).await,
        Command::Run {
            file,
            call,
            args,
            common,
        } => match ContainerSource::file(&file).await {
            Ok(src) => (src, call, args, common),
            Err(e) => {
                eprintln!("confine: {e}");
                return exit::USAGE;
            }
        },
        Command::Eval { code, common } => (
            ContainerSource::code(code).name("[eval]"),
            None,
            None,
            common,
        ),
    };
    let args: Vec<Value> = match args
        .as_deref()
        .map(serde_json::from_str::<serde_json::Value>)
    {
        None => Vec::new(),
        Some(Ok(serde_json::Value::Array(a))) => a.into_iter().map(Value::from).collect(),
        Some(Ok(_)) => {
            eprintln!("confine: --args must be a JSON array, e.g. --args '[1, \"two\"]'");
            return exit::USAGE;
        }
        Some(Err(e)) => {
            eprintln!("confine: --args is not valid JSON: {e}");
            return exit::USAGE;
        }
    };

    let timeout = common.timeout.map(Duration::from_millis);
    let sandbox = Sandbox::builder()
        .runtime(common.runtime)
        .call_timeout(timeout)
        .cpu_time(common.cpu_time.map(Duration::from_millis))
        .cpu_percent(common.cpu_percent.map(confine::CpuPercent::new))
        .memory_limit(common.memory.map(|mib| mib << 20))
        .output_limit(common.max_output)
        .no_sandbox(common.no_sandbox)
        .allow_degraded(common.allow_degraded)
        .log_spawn(common.log_spawn)
        .strace(common.strace)
        .pipe_stderr(true)
        .on_console(print_console)
        .build()
        .await;
    let sandbox = match sandbox {
        Ok(s) => s,
        Err(e) => return report(&e),
    };
    let mut events = sandbox.events();
    let code = match execute(&sandbox, source, call, args, timeout, &mut events).await {
        Ok(()) => exit::OK,
        Err(code) => code,
    };
    // Uncaught errors that arrived while the last request was answered still count.
    let code = drain_uncaught(&mut events, code);
    let _ = std::io::stdout().flush();
    let _ = sandbox.teardown().await;
    code
}

async fn execute(
    sandbox: &Sandbox,
    source: ContainerSource,
    call: Option<String>,
    args: Vec<Value>,
    timeout: Option<Duration>,
    events: &mut confine::Events,
) -> Result<(), u8> {
    let cid = sandbox
        .exec_container(source)
        .await
        .map_err(|e| report(&e))?;
    if let Some(export) = call {
        let result = sandbox
            .call_value(cid, &export, args)
            .await
            .map_err(|e| report(&e))?;
        let json = serde_json::Value::from(result);
        println!("{json}");
        return Ok(());
    }
    // Like node: run until nothing is left, but stop at the first uncaught error.
    let idle = sandbox.wait_idle_with_timeout(cid, timeout);
    tokio::pin!(idle);
    loop {
        tokio::select! {
            done = &mut idle => return done.map_err(|e| report(&e)),
            event = events.recv() => match event {
                Some(Event::Uncaught { error, .. }) => {
                    print_uncaught(&error);
                    return Err(uncaught_code(&error));
                }
                Some(_) => {}
                None => return Err(exit::CRASH),
            },
        }
    }
}

fn drain_uncaught(events: &mut confine::Events, code: u8) -> u8 {
    let mut code = code;
    while let Some(event) = events.try_recv() {
        if let Event::Uncaught { error, .. } = event {
            if code == exit::OK {
                print_uncaught(&error);
                code = uncaught_code(&error);
            }
        }
    }
    code
}

/// The exit code for an uncaught error: a script stopped at a limit (a timer callback
/// interrupted at the deadline) is a limit, not a script failure.
fn uncaught_code(error: &confine::ErrorData) -> u8 {
    if error.kind == confine::ErrorKind::Limit {
        exit::LIMIT
    } else {
        exit::SCRIPT
    }
}

fn print_console(_cid: confine::ContainerId, level: LogLevel, message: &str) {
    if level.is_stderr() {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{message}");
    } else {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{message}");
    }
}

fn print_uncaught(error: &confine::ErrorData) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "Uncaught {}: {}", error.name, error.message);
    if let Some(stack) = error.stack.as_deref().filter(|s| !s.trim().is_empty()) {
        let _ = writeln!(err, "{}", stack.trim_end());
    }
}

/// What the host checks from outside before a sandboxed guest gets any request
/// (`platform::verify_guest`), as `confine doctor` says it.
#[cfg(target_os = "macos")]
const VERIFIED: &str =
    "the host verified from outside (sandbox_check) that a Seatbelt profile is in force.";
#[cfg(not(target_os = "macos"))]
const VERIFIED: &str = "the host verified from outside that it runs with no_new_privs, both \
     seccomp filters (stage 1 and its own stage 2), only fds 0-3 and an empty environment.";

/// `confine doctor`: the host's sandboxing features, the policy `runtime` would get, and a
/// live check (one sandboxed guest started, verified by the host, torn down). Exits 0 only if
/// that guest was fully enforced.
async fn doctor(runtime: String) -> u8 {
    let host = HostReport::probe();
    println!("{host}");

    // The policy as prepared before a guest starts. Degraded layers are allowed here so the
    // report can show what would be missing; the live check below is strict.
    let preview = Sandbox::builder()
        .runtime(runtime.clone())
        .allow_degraded(true);
    match report::preview(preview.options()) {
        Ok(r) => println!("policy for runtime `{runtime}` (prepared, no guest started yet):\n{r}"),
        Err(e) => println!("policy for runtime `{runtime}`: cannot be prepared: {e}\n"),
    }

    let started = Instant::now();
    let verdict = match Sandbox::builder().runtime(runtime.clone()).build().await {
        Ok(sandbox) => {
            let ready = started.elapsed();
            let isolation = sandbox.isolation().clone();
            let _ = sandbox.teardown().await;
            println!(
                "live check: started a sandboxed `{runtime}` guest in {:.1} ms; {VERIFIED}",
                ready.as_secs_f64() * 1e3
            );
            if isolation.fully_enforced() {
                Ok(format!(
                    "all {} protections enforced",
                    isolation.protections.len()
                ))
            } else {
                let gaps: Vec<String> =
                    isolation.gaps().map(|g| g.protection.to_string()).collect();
                Err(format!("degraded: {}", gaps.join(", ")))
            }
        }
        Err(e) => {
            println!("live check: a sandboxed `{runtime}` guest could not start: {e}");
            Err(e.to_string())
        }
    };
    match verdict {
        Ok(what) => {
            println!("\nresult: a full sandbox is possible on this host ({what}).");
            exit::OK
        }
        Err(why) => {
            println!("\nresult: a full sandbox is NOT possible on this host ({why}).");
            exit::SANDBOX
        }
    }
}

/// Prints an error the way a user wants to read it and picks the exit code.
fn report(e: &Error) -> u8 {
    match e {
        Error::Script(data) => {
            if let Some(loc) = &data.location {
                eprintln!("{}:{}", loc.file, loc.line);
            }
            print_uncaught(data);
            exit::SCRIPT
        }
        Error::NoSuchExport { .. } | Error::NoSuchContainer { .. } | Error::Value(_) => {
            eprintln!("confine: {e}");
            exit::SCRIPT
        }
        Error::LimitExceeded { .. } => {
            eprintln!("confine: {e}");
            exit::LIMIT
        }
        Error::RuntimeNotFound { .. }
        | Error::Sandbox(_)
        | Error::SpawnStep { .. }
        | Error::Spawn { .. } => {
            eprintln!("confine: {e}");
            exit::SANDBOX
        }
        Error::ReadSource { .. } | Error::InvalidArgument(_) => {
            eprintln!("confine: {e}");
            exit::USAGE
        }
        _ => {
            eprintln!("confine: {e}");
            exit::CRASH
        }
    }
}

//! Starting a guest process: resolve the runtime, prepare the platform sandbox, fork with the
//! socket on fd 3, and report a failing post-fork step with its name.
//!
//! The post-fork work itself lives in [`crate::platform`]; this module only arranges the
//! `Command`, carries a step failure back over a close-on-exec pipe, and wires the guest's
//! stdout and stderr.

use crate::{
    conn::GuestSandbox,
    error::{Error, Result},
    options::{Output, SandboxOptions},
    platform::{self, ChildFailure, PolicyRequest},
    registry::GuestCommand,
};
use std::{
    collections::{HashMap, HashSet},
    io::{self, Read},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::net::UnixStream as StdUnixStream,
    },
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, LazyLock, Mutex},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    net::UnixStream,
    process::{Child, Command},
    sync::watch,
};

/// Captured guest output is kept up to this many bytes per stream.
const CAPTURE_LIMIT: usize = 1 << 20;

/// The environment variable that turns on the seccomp audit mode for every guest this
/// process starts (CI only; see `platform/linux/mod.rs`). When its value is an absolute path,
/// each denial a guest reports on stderr is also appended to that file, so a test run can
/// fail on denials that no test assertion noticed.
pub(crate) const SECCOMP_AUDIT_ENV: &str = "CONFINE_SECCOMP_AUDIT";

/// How a guest's audit report line starts (`confine_guest::lockdown::AUDIT_MARKER`; the
/// host does not depend on the guest crate).
const AUDIT_MARKER: &[u8] = b"confine-guest: seccomp audit:";

/// The file [`SECCOMP_AUDIT_ENV`] names, if it names one.
fn audit_log() -> Option<&'static std::path::Path> {
    static LOG: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        std::env::var_os(SECCOMP_AUDIT_ENV)
            .map(std::path::PathBuf::from)
            .filter(|p| p.is_absolute())
    })
    .as_deref()
}

/// Appends one reported denial to the audit log. Best effort: a failure is printed, since
/// the guest's own stderr line (and its exit status) still show the denial.
fn record_denial(prefix: &str, line: &[u8]) {
    use std::io::Write;
    let Some(path) = audit_log() else { return };
    let text = String::from_utf8_lossy(line);
    let entry = format!("{prefix} {}\n", text.trim_end_matches('\n'));
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(entry.as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "confine: cannot append to the seccomp audit log {}: {e}",
            path.display()
        );
    }
}

/// A started guest, not yet spoken to.
pub(crate) struct Launched {
    pub child: Child,
    pub pid: u32,
    pub socket: UnixStream,
    /// The lockdown to send, what to verify after `Ready`, and the report (for
    /// [`crate::conn::connect`]).
    pub sandbox: GuestSandbox,
    pub command: GuestCommand,
    pub stdout: Arc<Mutex<Vec<u8>>>,
    pub stderr: Arc<Mutex<Vec<u8>>>,
    /// How many of the guest's output pipes are still being read: 0 once both hit EOF.
    pub output_open: watch::Receiver<usize>,
}

fn pipe_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    #[cfg(target_os = "linux")]
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    // No pipe2 on macOS: a process forked by another thread before the fcntl below keeps
    // these fds until it execs (a guest child marks fds >= 4 close-on-exec; an embedder's
    // own child may not), which can only delay the EOF a failed spawn waits for.
    // SAFETY: fds is a valid array of two ints.
    #[cfg(not(target_os = "linux"))]
    let r = unsafe { libc::pipe(fds.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe succeeded, so both fds are open and owned by nobody else.
    let pair = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    #[cfg(not(target_os = "linux"))]
    for fd in [&pair.0, &pair.1] {
        // SAFETY: fcntl on an fd we own.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(pair)
}

/// What a cached plan was made for. The guest file's identity is part of it, so a rebuilt guest
/// gets a new plan.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PlanKey {
    program: PathBuf,
    no_sandbox: bool,
    allow_degraded: bool,
    profile: crate::registry::Profile,
    /// The guest executable's identity.
    file: FileId,
    /// See [`platform::thread_context`].
    thread: u32,
}

/// How long a cached plan is reused. Its Landlock rules name the files that existed when it
/// was made (the guest's libraries, by inode); a system update that replaces one is picked up
/// within this time instead of failing every later spawn.
const PLAN_TTL: Duration = Duration::from_secs(60);

/// Plans reused across spawns: making one (probing the kernel, compiling stage 1, reading the
/// guest's ELF headers and libraries, building the Landlock ruleset) costs about 0.12 ms, a
/// quarter of the sandbox's whole cost on a cold start.
static PLANS: LazyLock<Mutex<HashMap<PlanKey, CachedPlan>>> = LazyLock::new(Mutex::default);

/// A plan and when it was made.
type CachedPlan = (Instant, Arc<platform::Plan>);

/// The plan for `req`, reused when the same guest file was planned for recently.
fn plan_for(req: &PolicyRequest<'_>) -> Result<Arc<platform::Plan>> {
    let key = match (file_id(req.guest), platform::thread_context()) {
        (Some(file), Some(thread)) => Some(PlanKey {
            program: req.guest.to_owned(),
            no_sandbox: req.no_sandbox,
            allow_degraded: req.allow_degraded,
            profile: req.profile,
            file,
            thread,
        }),
        // Unreadable: `prepare` says why.
        _ => None,
    };
    if let Some(key) = &key {
        if let Ok(plans) = PLANS.lock() {
            if let Some((made, plan)) = plans.get(key) {
                if made.elapsed() < PLAN_TTL {
                    return Ok(Arc::clone(plan));
                }
            }
        }
    }
    let plan = Arc::new(platform::prepare(req)?);
    if let (Some(key), Ok(mut plans)) = (key, PLANS.lock()) {
        // A bound for hosts that run very many distinct guest files.
        if plans.len() >= 64 {
            plans.retain(|_, (made, _)| made.elapsed() < PLAN_TTL);
            if plans.len() >= 64 {
                plans.clear();
            }
        }
        plans.insert(key, (Instant::now(), Arc::clone(&plan)));
    }
    Ok(plan)
}

/// Guest files whose `--prepare` has run in this process (see [`prepare_offline`]).
static PREPARED: LazyLock<Mutex<HashSet<(PathBuf, FileId)>>> = LazyLock::new(Mutex::default);

/// A file's device, inode, size and modification time (seconds, nanoseconds): a rebuilt
/// guest gets a new one.
type FileId = (u64, u64, u64, i64, i64);

/// The [`FileId`] of the file at `path`, if it can be read.
fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

/// How long a guest's `--prepare` may take (a JIT runtime compiling its code ahead).
const PREPARE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a [`Profile::Wasm`](crate::registry::Profile::Wasm) guest executable once with
/// `--prepare`, outside any sandbox, before its first start in this process: a JIT runtime
/// fills the code cache its sandboxed guests may read but never write
/// (`AbstractRuntime::prepare_offline`; the `wasm` runtime snapshots and compiles its JS
/// plugin). The guest reads nothing untrusted then. For `no_sandbox` guests too, which could
/// write the cache themselves, but only while their first container waits (seconds, past
/// any call timeout). Best effort: a failure is logged and the guest does the work itself,
/// if it can.
pub(crate) async fn prepare_offline(opts: &SandboxOptions, command: &GuestCommand) {
    if command.profile != crate::registry::Profile::Wasm {
        return;
    }
    let Some(file) = file_id(&command.program) else {
        return;
    };
    let key = (command.program.clone(), file);
    if PREPARED.lock().map_or(true, |p| p.contains(&key)) {
        return;
    }
    let mut cmd = Command::new(&command.program);
    cmd.args(&command.args)
        .arg("--prepare")
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let outcome = tokio::time::timeout(PREPARE_TIMEOUT, cmd.output()).await;
    match outcome {
        Ok(Ok(out)) if out.status.success() => {}
        Ok(Ok(out)) => tracing::warn!(
            runtime = %opts.runtime,
            status = %out.status,
            stderr = %String::from_utf8_lossy(&out.stderr).trim_end(),
            "guest --prepare failed"
        ),
        Ok(Err(e)) => {
            tracing::warn!(runtime = %opts.runtime, error = %e, "cannot run guest --prepare")
        }
        Err(_) => tracing::warn!(runtime = %opts.runtime, "guest --prepare timed out"),
    }
    if let Ok(mut prepared) = PREPARED.lock() {
        prepared.insert(key);
    }
}

/// Spawns `command` (the guest [`Registry::resolve`](crate::Registry::resolve) found for
/// `opts.runtime`) under its platform sandbox.
pub(crate) fn launch(opts: &SandboxOptions, command: GuestCommand) -> Result<Launched> {
    let plan = plan_for(&PolicyRequest {
        guest: &command.program,
        no_sandbox: opts.no_sandbox,
        allow_degraded: opts.allow_degraded,
        profile: command.profile,
    })?;
    let report = plan.report();

    let spawn_err = |what| move |source| Error::Spawn { what, source };
    let (host_end, guest_end) = StdUnixStream::pair().map_err(spawn_err("socketpair"))?;
    let (err_read, err_write) = pipe_cloexec().map_err(spawn_err("pipe"))?;

    // On macOS, `/usr/bin/sandbox-exec` with the plan's profile, which executes the guest.
    let (program, args) = platform::launch_command(&plan, &command.program, &command.args);
    let mut cmd = Command::new(&program);
    cmd.args(&args)
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let guest_fd = guest_end.as_raw_fd();
    let err_fd = err_write.as_raw_fd();
    // SAFETY: getpid has no preconditions.
    let parent_pid = unsafe { libc::getpid() };
    let child_plan = Arc::clone(&plan);
    // SAFETY: the closure runs between fork and exec. It calls only `apply_in_child`, which
    // is async-signal-safe by contract, and `write` on an fd we own; it allocates nothing
    // (the io::Error is built from a raw errno, which does not allocate).
    unsafe {
        cmd.pre_exec(
            move || match child_plan.apply_in_child(guest_fd, parent_pid) {
                Ok(()) => Ok(()),
                Err(failure) => {
                    let bytes = failure.to_bytes();
                    libc::write(err_fd, bytes.as_ptr().cast(), bytes.len());
                    Err(io::Error::from_raw_os_error(failure.errno))
                }
            },
        );
    }
    if opts.log_spawn {
        eprintln!(
            "confine: spawning {} {:?} (env cleared, cwd /, fd 3 = socket)\n{report}",
            program.display(),
            args
        );
    }
    let spawned = cmd.spawn();
    // The child has its own copies now (or is gone); ours must close so reads see EOF.
    drop(guest_end);
    drop(err_write);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let mut buf = [0u8; 8];
            let mut file = std::fs::File::from(err_read);
            return Err(match file.read_exact(&mut buf) {
                Ok(()) => match ChildFailure::from_bytes(buf) {
                    Some(f) => Error::SpawnStep {
                        step: f.step,
                        source: io::Error::from_raw_os_error(f.errno),
                    },
                    None => Error::Spawn {
                        what: "exec",
                        source: e,
                    },
                },
                Err(_) => Error::Spawn {
                    what: "exec",
                    source: e,
                },
            });
        }
    };
    let pid = child.id().unwrap_or_default();
    host_end
        .set_nonblocking(true)
        .map_err(spawn_err("socket setup"))?;
    let socket = UnixStream::from_std(host_end).map_err(spawn_err("socket setup"))?;

    let prefix = format!("[confine {} {pid}]", opts.runtime);
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let (open_tx, output_open) =
        watch::channel(usize::from(out.is_some()) + usize::from(err.is_some()));
    let open_tx = Arc::new(open_tx);
    if let Some(out) = out {
        let sink = Arc::clone(&stdout);
        let open = Pumping(Arc::clone(&open_tx));
        tokio::spawn(pump(out, opts.stdout, false, prefix.clone(), sink, open));
    }
    if let Some(err) = err {
        let sink = Arc::clone(&stderr);
        tokio::spawn(pump(err, opts.stderr, true, prefix, sink, Pumping(open_tx)));
    }
    if opts.strace {
        attach_strace(pid);
    }
    Ok(Launched {
        child,
        pid,
        socket,
        sandbox: GuestSandbox {
            pid,
            lockdown: plan.lockdown(),
            expect: plan.expectations(),
            report,
        },
        command,
        stdout,
        stderr,
        output_open,
    })
}

/// Held by a pipe reader while it runs: counts it out of [`Launched::output_open`] when it
/// ends, however it ends.
struct Pumping(Arc<watch::Sender<usize>>);

impl Drop for Pumping {
    fn drop(&mut self) {
        self.0.send_modify(|open| *open = open.saturating_sub(1));
    }
}

/// Reads a guest stream to its end, echoing, capturing or dropping it. Reading even when
/// discarding keeps a chatty guest from blocking on a full pipe.
async fn pump<R: AsyncRead + Unpin>(
    stream: R,
    mode: Output,
    is_stderr: bool,
    prefix: String,
    sink: Arc<Mutex<Vec<u8>>>,
    _open: Pumping,
) {
    let mut lines = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if is_stderr && line.starts_with(AUDIT_MARKER) {
            record_denial(&prefix, &line);
        }
        match mode {
            Output::Discard => {}
            Output::Echo => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches('\n');
                if is_stderr {
                    eprintln!("{prefix} {text}");
                } else {
                    println!("{prefix} {text}");
                }
            }
            Output::Capture => {
                if let Ok(mut buf) = sink.lock() {
                    let room = CAPTURE_LIMIT.saturating_sub(buf.len());
                    buf.extend_from_slice(&line[..line.len().min(room)]);
                }
            }
        }
    }
}

/// Attaches `strace -f` to the guest, printing to the host's stderr. The guest is already
/// sandboxed, so tracing it from outside keeps the sandbox intact.
fn attach_strace(pid: u32) {
    match std::process::Command::new("strace")
        .args(["-f", "-qq", "-p", &pid.to_string()])
        .stdin(Stdio::null())
        .spawn()
    {
        Ok(child) => {
            // Give strace a moment to attach before the host sends the first request; it
            // reaps itself when the guest exits.
            std::thread::sleep(std::time::Duration::from_millis(50));
            std::thread::spawn(move || {
                let mut child = child;
                let _ = child.wait();
            });
        }
        Err(e) => eprintln!("confine: cannot start strace ({e}); is it installed?"),
    }
}

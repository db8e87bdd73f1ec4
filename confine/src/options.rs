//! [`SandboxOptions`]: plain data describing one sandbox, checked when it starts.

use crate::{globals::Globals, limits::Limits, registry::Registry, restart::RestartPolicy};
use confine_runtime_abstract::{codec::DEFAULT_MAX_FRAME, protocol::LogLevel, ContainerId};
use std::{fmt, sync::Arc, time::Duration};

/// What to do with the guest process's own stdout or stderr.
///
/// Script `console` output does not go here: it travels as messages on the socket (see
/// [`SandboxOptions::on_console`]). These streams only carry what the guest executable itself
/// prints, such as a crash message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Output {
    /// Read and drop it. The default.
    #[default]
    Discard,
    /// Echo each line to the host's own stream, prefixed with `[confine <runtime> <pid>]`
    /// (the seed's `pipeStdout` / `pipeStderr`).
    Echo,
    /// Keep it (up to 1 MiB, the rest dropped) for [`crate::Sandbox::captured_stdout`] /
    /// [`crate::Sandbox::captured_stderr`].
    Capture,
}

/// Receives script console output: container id, level, formatted message.
pub type ConsoleHandler = Arc<dyn Fn(ContainerId, LogLevel, &str) + Send + Sync>;

/// Everything that describes a sandbox before it starts.
///
/// Plain data with public fields and documented defaults, like wasmtime's `Config`; nothing is
/// checked until [`crate::Sandbox::start`]. Most code uses [`crate::Sandbox::builder`], which
/// fills one of these.
#[derive(Clone)]
#[non_exhaustive]
pub struct SandboxOptions {
    /// The runtime's name (`quickjs`, or a name added to the registry). Default: `quickjs`.
    pub runtime: String,
    /// Where runtime names are looked up. Default: [`Registry::default`].
    pub registry: Registry,
    /// Host functions and values the scripts see. Default: none.
    pub globals: Globals,
    /// Run the guest under `strace -f` (attached to the guest right after spawn, so the
    /// sandbox stays on), its output on the host's stderr. Needs `strace` on `PATH`.
    /// Default: `false`.
    pub strace: bool,
    /// Print the guest's command line, policy and isolation report to stderr when spawning.
    /// Default: `false`.
    pub log_spawn: bool,
    /// Turn the OS sandbox off: the guest runs with the host's privileges, separated only by
    /// the engine and the process boundary. The isolation report says so. Default: `false`.
    pub no_sandbox: bool,
    /// Accept a sandbox in which an optional layer (Landlock) is missing on this kernel,
    /// instead of failing the launch. The seccomp filter is never optional. Default: `false`.
    pub allow_degraded: bool,
    /// The guest process's stdout. Default: [`Output::Discard`].
    pub stdout: Output,
    /// The guest process's stderr. Default: [`Output::Discard`].
    pub stderr: Output,
    /// Script console output. Default: a `tracing` event at the matching level, target
    /// `confine::console`.
    pub on_console: Option<ConsoleHandler>,
    /// The largest message either side may send, in bytes; larger results fail with
    /// [`crate::Error::LimitExceeded`]. Default and maximum: 64 MiB.
    pub max_frame: u32,
    /// How long the guest may take from spawn to `Ready` (the seed's `timeout`); past it the
    /// guest is killed and the start fails with [`crate::Error::StartupTimeout`]. A guest
    /// starts in 2–3 ms, so the default leaves room for a loaded machine. Default: 500 ms.
    pub ready_timeout: Duration,
    /// Wall-time limit for each call and for each container's top-level run
    /// ([`crate::Sandbox::exec_container`]), counted until the export returns or its promise
    /// settles; `None` for none. Past it the call fails with [`crate::Error::LimitExceeded`]
    /// ([`crate::Limit::WallTime`]). Where the engine can interrupt script code (QuickJS) the
    /// guest stops it and the container stays usable; otherwise (a tight loop in Boa) the
    /// host kills the guest after [`SandboxOptions::kill_grace`]. Override per call with
    /// [`crate::Sandbox::call_with_timeout`]. Default: `None`.
    pub call_timeout: Option<Duration>,
    /// How long past a wall-time limit the host waits for the guest's own answer before it
    /// kills the guest (the call then fails with [`crate::Error::LimitExceeded`], other pending
    /// calls with [`crate::Error::GuestExited`]). Default: 100 ms.
    pub kill_grace: Duration,
    /// How long [`crate::Sandbox::teardown`] waits for the guest to exit after closing the
    /// connection, before it kills it. Default: 1 s.
    pub teardown_grace: Duration,
    /// Resource budgets: CPU, memory, stack, output, host calls, containers, calls in
    /// flight. Default: none.
    pub limits: Limits,
    /// What happens when the guest dies: end the sandbox, or start a new guest with the
    /// globals and containers re-created ([`crate::restart`]). Default:
    /// [`RestartPolicy::Never`].
    pub restart: RestartPolicy,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            runtime: crate::DEFAULT_RUNTIME.to_owned(),
            registry: Registry::default(),
            globals: Globals::new(),
            strace: false,
            log_spawn: false,
            no_sandbox: false,
            allow_degraded: false,
            stdout: Output::Discard,
            stderr: Output::Discard,
            on_console: None,
            max_frame: DEFAULT_MAX_FRAME,
            ready_timeout: Duration::from_millis(500),
            call_timeout: None,
            kill_grace: Duration::from_millis(100),
            teardown_grace: Duration::from_secs(1),
            limits: Limits::default(),
            restart: RestartPolicy::Never,
        }
    }
}

impl fmt::Debug for SandboxOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxOptions")
            .field("runtime", &self.runtime)
            .field("registry", &self.registry)
            .field("globals", &self.globals)
            .field("strace", &self.strace)
            .field("log_spawn", &self.log_spawn)
            .field("no_sandbox", &self.no_sandbox)
            .field("allow_degraded", &self.allow_degraded)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .field("on_console", &self.on_console.as_ref().map(|_| "<fn>"))
            .field("max_frame", &self.max_frame)
            .field("ready_timeout", &self.ready_timeout)
            .field("call_timeout", &self.call_timeout)
            .field("kill_grace", &self.kill_grace)
            .field("teardown_grace", &self.teardown_grace)
            .field("limits", &self.limits)
            .field("restart", &self.restart)
            .finish()
    }
}

//! [`Sandbox`]: one guest process and the containers inside it.

use crate::{
    conn::{self, ConnConfig, HardLimits, Shared},
    container::ContainerSource,
    error::{Error, ExitInfo, ProtocolError, Result},
    events::{Event, Events},
    globals::{FunctionTable, Globals, HostError},
    launcher,
    limits::{self, CallLimits, CpuPercent, Limits},
    options::{Output, SandboxOptions},
    registry::Registry,
    report::IsolationReport,
};
use confine_runtime_abstract::{
    from_value,
    protocol::{ContainerInfo, HostRequest, LogLevel, Reply},
    to_value, ContainerId, Value,
};
use serde::{de::DeserializeOwned, Serialize};
use std::{
    future::Future,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};
use tracing::Instrument;

/// A running guest process, sandboxed, that hosts containers.
///
/// Created with [`Sandbox::builder`] (or [`Sandbox::start`]). All methods take `&self` and may
/// run concurrently: share a `Sandbox` behind an `Arc` to have many calls in flight.
///
/// # Drop
/// Dropping a `Sandbox` without [`Sandbox::teardown`] kills the guest (SIGKILL) and reaps it
/// in the background; no process is left behind.
#[derive(Debug)]
pub struct Sandbox {
    shared: Arc<Shared>,
    runtime: String,
    version: String,
    program: PathBuf,
    pid: u32,
    report: IsolationReport,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    teardown_grace: Duration,
    call_timeout: Option<Duration>,
    cpu_time: Option<Duration>,
    kill_grace: Duration,
}

/// A wall-time limit as the protocol carries it: whole milliseconds, rounded up so a limit
/// never shrinks.
fn timeout_ms(limit: Option<Duration>) -> Option<u64> {
    limit.map(|d| u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX))
}

impl Sandbox {
    /// A builder with default [`SandboxOptions`].
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// Starts a sandbox: finds the runtime's guest, prepares the platform sandbox, spawns the
    /// guest, waits for it to be ready (it has installed its own stage-2 filter by then),
    /// verifies its isolation from outside, and defines the globals.
    ///
    /// # Errors
    /// [`Error::RuntimeNotFound`], [`Error::Sandbox`] (a layer missing in strict mode, or the
    /// guest failing the host's isolation check: `SandboxError::VerificationFailed`),
    /// [`Error::SpawnStep`] / [`Error::Spawn`] (the launch failed), [`Error::StartupTimeout`],
    /// [`Error::Protocol`] or [`Error::GuestExited`] (the guest failed during startup),
    /// [`Error::InvalidArgument`] (a `max_frame` or [`CpuPercent`] out of range).
    pub async fn start(options: SandboxOptions) -> Result<Sandbox> {
        let max = confine_runtime_abstract::codec::DEFAULT_MAX_FRAME;
        if !(1024..=max).contains(&options.max_frame) {
            return Err(Error::InvalidArgument(format!(
                "max_frame must be between 1024 and {max} bytes, got {}",
                options.max_frame
            )));
        }
        if let Some(cap) = options.limits.cpu_percent {
            if !(1..=100).contains(&cap.percent) || cap.window < CpuPercent::MIN_WINDOW {
                return Err(Error::InvalidArgument(format!(
                    "a CPU-percent cap must be 1 to 100 % over at least {} ms, got {} % over {} ms",
                    CpuPercent::MIN_WINDOW.as_millis(),
                    cap.percent,
                    cap.window.as_millis()
                )));
            }
        }
        let span =
            tracing::info_span!("sandbox", runtime = %options.runtime, pid = tracing::field::Empty);
        async move {
            launcher::prepare_offline(&options).await?;
            let mut launched = launcher::launch(&options)?;
            tracing::Span::current().record("pid", launched.pid);
            // The cap is set from outside before `Hello`, so before the guest reads anything
            // untrusted; it holds whatever the engine's own accounting misses.
            let memory_cap = options.limits.memory.map(Limits::process_memory_cap);
            if let Some(cap) = memory_cap {
                if let Err(source) = limits::cap_process_memory(launched.pid, cap) {
                    let _ = launched.child.start_kill();
                    return Err(Error::Spawn {
                        what: "capping the guest's memory (prlimit RLIMIT_DATA)",
                        source,
                    });
                }
            }
            let functions: FunctionTable = options.globals.functions().collect();
            let (shared, hello) = conn::connect(
                launched.socket,
                launched.child,
                ConnConfig {
                    max_frame: options.max_frame,
                    limits: options.limits.guest(),
                    in_flight: options.limits.in_flight,
                    cpu_percent: options.limits.cpu_percent,
                    memory_cap,
                    ready_timeout: options.ready_timeout,
                    functions,
                    on_console: options.on_console.clone(),
                    runtime: options.runtime.clone(),
                    sandbox: launched.sandbox,
                },
            )
            .await?;
            tracing::debug!(version = %hello.version, "guest ready");
            let sandbox = Sandbox {
                shared,
                runtime: hello.runtime,
                version: hello.version,
                program: launched.command.program,
                pid: launched.pid,
                report: hello.report,
                stdout: launched.stdout,
                stderr: launched.stderr,
                teardown_grace: options.teardown_grace,
                call_timeout: options.call_timeout,
                cpu_time: options.limits.cpu_time,
                kill_grace: options.kill_grace,
            };
            if !options.globals.is_empty() {
                sandbox.send_globals(&options.globals).await?;
            }
            Ok(sandbox)
        }
        .instrument(span)
        .await
    }

    /// Creates a container from `source`, runs its top-level code, and returns its id.
    ///
    /// # Errors
    /// [`Error::Script`] for a syntax error (with the line) or top-level code that threw;
    /// [`Error::GuestExited`] / [`Error::Protocol`] if the guest is gone.
    /// The top-level run is bounded by [`SandboxOptions::call_timeout`]
    /// ([`Error::LimitExceeded`]).
    pub async fn exec_container(&self, source: ContainerSource) -> Result<ContainerId> {
        let name = source.source.name.clone();
        let limits = self.hard_limits(self.default_call_limits());
        let reply = self
            .shared
            .request_limited(
                HostRequest::Exec {
                    source: source.source,
                    options: source.options,
                    timeout_ms: timeout_ms(limits.wall),
                    cpu_ms: timeout_ms(limits.cpu),
                },
                limits,
            )
            .await?;
        match reply.map_err(|e| Error::from_guest(0, None, e))? {
            Reply::Container(cid) => {
                tracing::debug!(cid, name = %name, "container created");
                Ok(cid)
            }
            _ => Err(self.unexpected("Exec")),
        }
    }

    /// Replaces container `cid`'s runtime options.
    ///
    /// # Errors
    /// [`Error::NoSuchContainer`], or options the runtime rejects ([`Error::Runtime`]).
    pub async fn config_container(&self, cid: ContainerId, options: impl Serialize) -> Result<()> {
        let options = to_value(&options)?;
        let reply = self
            .shared
            .request(HostRequest::Config { cid, options })
            .await?;
        match reply.map_err(|e| Error::from_guest(cid, None, e))? {
            Reply::Unit => Ok(()),
            _ => Err(self.unexpected("Config")),
        }
    }

    /// Calls export `export` of container `cid` and converts its result to `R`.
    ///
    /// `args` is a tuple of arguments: `(5,)`, `("a", 2)`, or `()` for none (a lone non-array
    /// value is passed as one argument; to pass one array, wrap it: `(vec,)`). An export that
    /// returns a promise is awaited in the guest.
    ///
    /// # Errors
    /// [`Error::Script`] if the export threw (with name, message and stack);
    /// [`Error::NoSuchExport`]; [`Error::NoSuchContainer`]; [`Error::Value`] if the result does
    /// not fit `R`; [`Error::GuestExited`] if the guest died meanwhile;
    /// [`Error::LimitExceeded`] past [`SandboxOptions::call_timeout`].
    pub async fn call<R: DeserializeOwned>(
        &self,
        cid: ContainerId,
        export: &str,
        args: impl Serialize,
    ) -> Result<R> {
        self.call_with(cid, export, args, self.default_call_limits())
            .await
    }

    /// [`Sandbox::call`] with its own wall-time limit instead of
    /// [`SandboxOptions::call_timeout`] (`None`: no limit); the CPU-time limit stays the
    /// sandbox's.
    ///
    /// # Errors
    /// As [`Sandbox::call`].
    pub async fn call_with_timeout<R: DeserializeOwned>(
        &self,
        cid: ContainerId,
        export: &str,
        args: impl Serialize,
        timeout: Option<Duration>,
    ) -> Result<R> {
        let limits = self.default_call_limits().timeout(timeout);
        self.call_with(cid, export, args, limits).await
    }

    /// [`Sandbox::call`] with its own limits instead of the sandbox's
    /// ([`SandboxOptions::call_timeout`], [`crate::Limits::cpu_time`]).
    ///
    /// # Errors
    /// As [`Sandbox::call`].
    pub async fn call_with<R: DeserializeOwned>(
        &self,
        cid: ContainerId,
        export: &str,
        args: impl Serialize,
        limits: CallLimits,
    ) -> Result<R> {
        let args = match to_value(&args)? {
            Value::Array(a) => a,
            Value::Null | Value::Undefined => Vec::new(),
            v => vec![v],
        };
        let value = self.call_value_with(cid, export, args, limits).await?;
        Ok(from_value(value)?)
    }

    /// Calls an export with raw [`Value`] arguments (the seed's `handleAPICall`).
    ///
    /// # Errors
    /// As [`Sandbox::call`].
    pub async fn call_value(
        &self,
        cid: ContainerId,
        export: &str,
        args: Vec<Value>,
    ) -> Result<Value> {
        self.call_value_with(cid, export, args, self.default_call_limits())
            .await
    }

    /// [`Sandbox::call_value`] with its own wall-time limit (`None`: no limit).
    ///
    /// # Errors
    /// As [`Sandbox::call`].
    pub async fn call_value_with_timeout(
        &self,
        cid: ContainerId,
        export: &str,
        args: Vec<Value>,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        let limits = self.default_call_limits().timeout(timeout);
        self.call_value_with(cid, export, args, limits).await
    }

    /// [`Sandbox::call_value`] with its own limits.
    ///
    /// # Errors
    /// As [`Sandbox::call`].
    pub async fn call_value_with(
        &self,
        cid: ContainerId,
        export: &str,
        args: Vec<Value>,
        limits: CallLimits,
    ) -> Result<Value> {
        let limits = self.hard_limits(limits);
        let reply = self
            .shared
            .request_limited(
                HostRequest::Call {
                    cid,
                    export: export.to_owned(),
                    args,
                    timeout_ms: timeout_ms(limits.wall),
                    cpu_ms: timeout_ms(limits.cpu),
                },
                limits,
            )
            .await?;
        match reply.map_err(|e| Error::from_guest(cid, Some(export), e))? {
            Reply::Value(v) => Ok(v),
            _ => Err(self.unexpected("Call")),
        }
    }

    /// The live containers.
    ///
    /// # Errors
    /// [`Error::GuestExited`] / [`Error::Protocol`] if the guest is gone.
    pub async fn list_containers(&self) -> Result<Vec<ContainerInfo>> {
        match self
            .shared
            .request(HostRequest::List)
            .await?
            .map_err(|e| Error::from_guest(0, None, e))?
        {
            Reply::Containers(list) => Ok(list),
            _ => Err(self.unexpected("List")),
        }
    }

    /// Destroys container `cid`. Calls still pending on it fail with
    /// [`Error::NoSuchContainer`].
    ///
    /// # Errors
    /// [`Error::NoSuchContainer`] if it does not exist.
    pub async fn kill_container(&self, cid: ContainerId) -> Result<()> {
        match self
            .shared
            .request(HostRequest::Kill { cid })
            .await?
            .map_err(|e| Error::from_guest(cid, None, e))?
        {
            Reply::Unit => {
                let _ = self.shared.events.send(Event::ContainerClosed { cid });
                Ok(())
            }
            _ => Err(self.unexpected("Kill")),
        }
    }

    /// Waits until container `cid` has nothing left to do: no timers, no queued jobs, no
    /// host calls in flight. This is how `confine run` knows a script finished.
    ///
    /// # Errors
    /// [`Error::NoSuchContainer`], or the guest being gone.
    pub async fn wait_idle(&self, cid: ContainerId) -> Result<()> {
        self.wait_idle_with_timeout(cid, None).await
    }

    /// [`Sandbox::wait_idle`], giving up after `timeout` with [`Error::LimitExceeded`]
    /// ([`crate::Limit::WallTime`]); the container keeps running. Script code that does not
    /// yield (a tight loop in a timer) is stopped as for a call: by the engine where it can,
    /// else by killing the guest after [`SandboxOptions::kill_grace`].
    ///
    /// # Errors
    /// As [`Sandbox::wait_idle`], and [`Error::LimitExceeded`].
    pub async fn wait_idle_with_timeout(
        &self,
        cid: ContainerId,
        timeout: Option<Duration>,
    ) -> Result<()> {
        match self
            .shared
            .request_limited(
                HostRequest::WaitIdle {
                    cid,
                    timeout_ms: timeout_ms(timeout),
                },
                self.hard_limits(CallLimits::none().timeout(timeout)),
            )
            .await?
            .map_err(|e| Error::from_guest(cid, None, e))?
        {
            Reply::Unit => Ok(()),
            _ => Err(self.unexpected("WaitIdle")),
        }
    }

    /// Adds host globals to every live container and every later one.
    ///
    /// # Errors
    /// A path the runtime cannot define ([`Error::Runtime`]), or the guest being gone.
    pub async fn define_globals(&self, globals: Globals) -> Result<()> {
        self.send_globals(&globals).await
    }

    /// Adds one async host function; see [`Globals::function`].
    ///
    /// # Errors
    /// As [`Sandbox::define_globals`].
    pub async fn define_function<A, R, E, F, Fut>(&self, path: &str, f: F) -> Result<()>
    where
        A: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        E: Into<HostError> + Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.send_globals(&Globals::new().function(path, f)).await
    }

    async fn send_globals(&self, globals: &Globals) -> Result<()> {
        // Host side first, so a script calling the new function at once finds it.
        if let Ok(mut table) = self.shared.functions.write() {
            table.extend(globals.functions());
        }
        match self
            .shared
            .request(HostRequest::DefineGlobals {
                globals: globals.defs(),
            })
            .await?
            .map_err(|e| Error::from_guest(0, None, e))?
        {
            Reply::Unit => Ok(()),
            _ => Err(self.unexpected("DefineGlobals")),
        }
    }

    /// Closes the connection, waits for the guest to exit (killing it after
    /// [`SandboxOptions::teardown_grace`]) and returns how it ended. Pending calls fail with
    /// [`Error::TornDown`].
    ///
    /// # Errors
    /// Never fails today; the `Result` leaves room for platforms where reaping can.
    pub async fn teardown(self) -> Result<ExitInfo> {
        self.shared.begin_teardown();
        let info = match self.shared.wait_exit(self.teardown_grace).await {
            Some(info) => info,
            None => {
                self.shared.kill_guest();
                self.shared
                    .wait_exit(Duration::from_secs(5))
                    .await
                    .unwrap_or_default()
            }
        };
        tracing::debug!(runtime = %self.runtime, pid = self.pid, %info, "sandbox torn down");
        Ok(info)
    }

    /// How the guest ended, once it has (the seed's `guestExitCode` / `guestExitSignal`).
    pub fn exit_info(&self) -> Option<ExitInfo> {
        *self.shared.exit.borrow()
    }

    /// `true` while the guest is running and the connection is open.
    pub fn is_active(&self) -> bool {
        self.exit_info().is_none() && !self.shared.is_closed()
    }

    /// Resolves when the guest process has exited, with how it ended. Independent of the
    /// `Sandbox`'s lifetime.
    pub fn closed(&self) -> impl Future<Output = ExitInfo> + Send + 'static {
        let mut rx = self.shared.exit.subscribe();
        async move {
            match rx.wait_for(Option::is_some).await {
                Ok(v) => v.unwrap_or_default(),
                Err(_) => ExitInfo::default(),
            }
        }
    }

    /// A receiver of this sandbox's [`Event`]s from now on.
    pub fn events(&self) -> Events {
        Events::new(self.shared.events.subscribe())
    }

    /// The guest executable that serves this sandbox's runtime.
    pub fn runtime_path(&self) -> &Path {
        &self.program
    }

    /// The runtime's name, as the guest reported it.
    pub fn runtime(&self) -> &str {
        &self.runtime
    }

    /// The runtime's version, as the guest reported it.
    pub fn runtime_version(&self) -> &str {
        &self.version
    }

    /// The guest's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// What the platform sandbox enforces for this guest.
    pub fn isolation(&self) -> &IsolationReport {
        &self.report
    }

    /// The guest's stdout so far, with [`Output::Capture`].
    pub fn captured_stdout(&self) -> Vec<u8> {
        self.stdout.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// The guest's stderr so far, with [`Output::Capture`].
    pub fn captured_stderr(&self) -> Vec<u8> {
        self.stderr.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Kills the guest now (SIGKILL). Pending calls fail with [`Error::GuestExited`].
    pub fn kill(&self) {
        self.shared.kill_guest();
    }

    /// The sandbox's limits for a call or a top-level run.
    fn default_call_limits(&self) -> CallLimits {
        CallLimits::none()
            .timeout(self.call_timeout)
            .cpu_time(self.cpu_time)
    }

    fn hard_limits(&self, limits: CallLimits) -> HardLimits {
        HardLimits {
            wall: limits.timeout,
            cpu: limits.cpu_time,
            grace: self.kill_grace,
        }
    }

    fn unexpected(&self, request: &'static str) -> Error {
        // A reply of the wrong shape is the guest lying; it is not trusted further.
        self.shared.kill_guest();
        Error::Protocol(Arc::new(ProtocolError::UnexpectedReply { request }))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.exit_info().is_none() {
            self.shared.begin_teardown();
            self.shared.kill_guest();
        }
    }
}

/// Builds a [`Sandbox`]: each method sets one [`SandboxOptions`] field.
///
/// ```no_run
/// # async fn f() -> confine::Result<()> {
/// use confine::{ContainerSource, HostError, Sandbox};
///
/// let sandbox = Sandbox::builder()
///     .function("whoami", |(): ()| async { Ok::<_, HostError>("Bob") })
///     .build()
///     .await?;
/// let cid = sandbox
///     .exec_container(ContainerSource::code(
///         "module.exports.greet = async () => 'hello ' + await whoami()",
///     ))
///     .await?;
/// let greeting: String = sandbox.call(cid, "greet", ()).await?;
/// assert_eq!(greeting, "hello Bob");
/// sandbox.teardown().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct SandboxBuilder {
    options: SandboxOptions,
}

impl SandboxBuilder {
    /// From existing options.
    pub fn from_options(options: SandboxOptions) -> Self {
        SandboxBuilder { options }
    }

    /// See [`SandboxOptions::runtime`].
    pub fn runtime(mut self, name: impl Into<String>) -> Self {
        self.options.runtime = name.into();
        self
    }

    /// See [`SandboxOptions::registry`].
    pub fn registry(mut self, registry: Registry) -> Self {
        self.options.registry = registry;
        self
    }

    /// Adds globals; see [`SandboxOptions::globals`].
    pub fn globals(mut self, globals: Globals) -> Self {
        self.options.globals = std::mem::take(&mut self.options.globals).extend(globals);
        self
    }

    /// Adds one async host function; see [`Globals::function`].
    pub fn function<A, R, E, F, Fut>(mut self, path: &str, f: F) -> Self
    where
        A: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        E: Into<HostError> + Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.options.globals = std::mem::take(&mut self.options.globals).function(path, f);
        self
    }

    /// Adds one plain value; see [`Globals::value`].
    pub fn value(mut self, path: &str, value: impl Serialize) -> Self {
        self.options.globals = std::mem::take(&mut self.options.globals).value(path, value);
        self
    }

    /// See [`SandboxOptions::strace`].
    pub fn strace(mut self, on: bool) -> Self {
        self.options.strace = on;
        self
    }

    /// See [`SandboxOptions::log_spawn`].
    pub fn log_spawn(mut self, on: bool) -> Self {
        self.options.log_spawn = on;
        self
    }

    /// See [`SandboxOptions::no_sandbox`].
    pub fn no_sandbox(mut self, on: bool) -> Self {
        self.options.no_sandbox = on;
        self
    }

    /// See [`SandboxOptions::allow_degraded`].
    pub fn allow_degraded(mut self, on: bool) -> Self {
        self.options.allow_degraded = on;
        self
    }

    /// Echo the guest's stdout with a prefix (`true`) or discard it (`false`): the seed's
    /// `pipeStdout`. See [`SandboxOptions::stdout`] for capturing.
    pub fn pipe_stdout(mut self, on: bool) -> Self {
        self.options.stdout = if on { Output::Echo } else { Output::Discard };
        self
    }

    /// Echo the guest's stderr with a prefix (`true`) or discard it (`false`): the seed's
    /// `pipeStderr`.
    pub fn pipe_stderr(mut self, on: bool) -> Self {
        self.options.stderr = if on { Output::Echo } else { Output::Discard };
        self
    }

    /// See [`SandboxOptions::stdout`].
    pub fn stdout(mut self, mode: Output) -> Self {
        self.options.stdout = mode;
        self
    }

    /// See [`SandboxOptions::stderr`].
    pub fn stderr(mut self, mode: Output) -> Self {
        self.options.stderr = mode;
        self
    }

    /// See [`SandboxOptions::on_console`].
    pub fn on_console(
        mut self,
        f: impl Fn(ContainerId, LogLevel, &str) + Send + Sync + 'static,
    ) -> Self {
        self.options.on_console = Some(Arc::new(f));
        self
    }

    /// See [`SandboxOptions::max_frame`].
    pub fn max_frame(mut self, bytes: u32) -> Self {
        self.options.max_frame = bytes;
        self
    }

    /// See [`SandboxOptions::ready_timeout`].
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.options.ready_timeout = timeout;
        self
    }

    /// See [`SandboxOptions::call_timeout`].
    pub fn call_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.options.call_timeout = timeout;
        self
    }

    /// See [`SandboxOptions::kill_grace`].
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.options.kill_grace = grace;
        self
    }

    /// Replaces every resource budget; see [`SandboxOptions::limits`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.options.limits = limits;
        self
    }

    /// See [`Limits::cpu_time`].
    pub fn cpu_time(mut self, limit: Option<Duration>) -> Self {
        self.options.limits.cpu_time = limit;
        self
    }

    /// See [`Limits::cpu_percent`].
    pub fn cpu_percent(mut self, cap: Option<CpuPercent>) -> Self {
        self.options.limits.cpu_percent = cap;
        self
    }

    /// See [`Limits::memory`] (bytes).
    pub fn memory_limit(mut self, bytes: Option<u64>) -> Self {
        self.options.limits.memory = bytes;
        self
    }

    /// See [`Limits::stack`] (bytes).
    pub fn stack_limit(mut self, bytes: Option<u32>) -> Self {
        self.options.limits.stack = bytes;
        self
    }

    /// See [`Limits::output`] (bytes per call).
    pub fn output_limit(mut self, bytes: Option<u64>) -> Self {
        self.options.limits.output = bytes;
        self
    }

    /// See [`Limits::host_calls`] (per call).
    pub fn host_call_limit(mut self, calls: Option<u32>) -> Self {
        self.options.limits.host_calls = calls;
        self
    }

    /// See [`Limits::containers`].
    pub fn container_limit(mut self, containers: Option<u32>) -> Self {
        self.options.limits.containers = containers;
        self
    }

    /// See [`Limits::in_flight`].
    pub fn in_flight_limit(mut self, requests: Option<u32>) -> Self {
        self.options.limits.in_flight = requests;
        self
    }

    /// The options so far.
    pub fn options(&self) -> &SandboxOptions {
        &self.options
    }

    /// Starts the sandbox; see [`Sandbox::start`].
    ///
    /// # Errors
    /// As [`Sandbox::start`].
    pub async fn build(self) -> Result<Sandbox> {
        Sandbox::start(self.options).await
    }
}

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
    restart::{self, RestartPolicy, Restarts},
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
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};
use tokio::sync::{broadcast, watch};
use tracing::Instrument;

/// A running guest process, sandboxed, that hosts containers.
///
/// Created with [`Sandbox::builder`] (or [`Sandbox::start`]). All methods take `&self` and may
/// run concurrently: share a `Sandbox` behind an `Arc` to have many calls in flight.
///
/// # Drop
/// Dropping a `Sandbox` without [`Sandbox::teardown`] kills the guest (SIGKILL) and reaps it
/// in the background; no process is left behind.
///
/// # Restarts
/// With a [`RestartPolicy`] ([`SandboxBuilder::restart`]) a sandbox outlives its guest: a new
/// one is started with the globals and containers re-created (see [`crate::restart`]).
#[derive(Debug)]
pub struct Sandbox {
    inner: Arc<Inner>,
    runtime: String,
    version: String,
    program: PathBuf,
    report: IsolationReport,
    teardown_grace: Duration,
    call_timeout: Option<Duration>,
    cpu_time: Option<Duration>,
    kill_grace: Duration,
}

/// What a sandbox shares with its restart supervisor.
#[derive(Debug)]
pub(crate) struct Inner {
    /// The guest serving now; a restart replaces it.
    pub(crate) guest: RwLock<Arc<Guest>>,
    /// Lifecycle events, across restarts.
    pub(crate) events: broadcast::Sender<Event>,
    /// `None` without a restart policy.
    pub(crate) restarts: Option<Restarts>,
}

impl Inner {
    pub(crate) fn current(&self) -> Arc<Guest> {
        match self.guest.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

/// One guest process and its connection.
#[derive(Debug)]
pub(crate) struct Guest {
    pub(crate) shared: Arc<Shared>,
    pub(crate) pid: u32,
    /// Counts the sandbox's guests from 0; a restart's guest is the next one.
    pub(crate) generation: u64,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// The guest's output pipes still being read (see [`Guest::drained`]).
    output_open: watch::Receiver<usize>,
}

/// How long after its exit a guest's output pipes may stay open: a process it started (only
/// possible without the sandbox) can hold them forever.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

impl Guest {
    /// Waits until everything the guest wrote to stdout and stderr has been read (so
    /// captured output is complete), at most [`DRAIN_TIMEOUT`].
    pub(crate) async fn drained(&self) {
        let mut open = self.output_open.clone();
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, open.wait_for(|n| *n == 0)).await;
    }
}

/// What starting a guest learned besides the guest.
pub(crate) struct Started {
    runtime: String,
    version: String,
    program: PathBuf,
    report: IsolationReport,
}

/// Starts a guest for `options`: finds it, prepares the platform sandbox, spawns it, caps
/// its memory, and waits for it to be ready and verified; then defines `globals` in it.
pub(crate) async fn spawn_guest(
    options: &SandboxOptions,
    globals: &Globals,
    events: broadcast::Sender<Event>,
    generation: u64,
) -> Result<(Guest, Started)> {
    let command = options.registry.resolve(&options.runtime)?;
    launcher::prepare_offline(options, &command).await;
    let mut launched = launcher::launch(options, command)?;
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
    let functions: FunctionTable = globals.functions().collect();
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
            events,
        },
    )
    .await?;
    tracing::debug!(version = %hello.version, "guest ready");
    let guest = Guest {
        shared,
        pid: launched.pid,
        generation,
        stdout: launched.stdout,
        stderr: launched.stderr,
        output_open: launched.output_open,
    };
    if !globals.is_empty() {
        if let Err(e) = define_globals(&guest.shared, globals).await {
            guest.shared.begin_teardown();
            guest.shared.kill_guest();
            return Err(e);
        }
    }
    let started = Started {
        runtime: hello.runtime,
        version: hello.version,
        program: launched.command.program,
        report: hello.report,
    };
    Ok((guest, started))
}

/// Defines `globals` in the guest behind `shared` (the host's table first, so a script
/// calling a new function at once finds it).
pub(crate) async fn define_globals(shared: &Shared, globals: &Globals) -> Result<()> {
    if let Ok(mut table) = shared.functions.write() {
        table.extend(globals.functions());
    }
    match shared
        .request(HostRequest::DefineGlobals {
            globals: globals.defs(),
        })
        .await?
        .map_err(|e| Error::from_guest(0, None, e))?
    {
        Reply::Unit => Ok(()),
        _ => Err(unexpected(shared, "DefineGlobals")),
    }
}

/// A reply of the wrong shape is the guest lying; it is not trusted further.
fn unexpected(shared: &Shared, request: &'static str) -> Error {
    shared.kill_guest();
    Error::Protocol(Arc::new(ProtocolError::UnexpectedReply { request }))
}

/// A wall-time limit as the protocol carries it: whole milliseconds, rounded up so a limit
/// never shrinks.
pub(crate) fn timeout_ms(limit: Option<Duration>) -> Option<u64> {
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
    /// [`Error::InvalidArgument`] (a `max_frame` or [`CpuPercent`] out of range, a
    /// [`RestartPolicy`] with a zero window).
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
        if let RestartPolicy::OnExit { window, .. } = options.restart {
            if window.is_zero() {
                return Err(Error::InvalidArgument(
                    "a restart policy's window must not be zero (it would allow endless restarts)"
                        .to_owned(),
                ));
            }
        }
        let span =
            tracing::info_span!("sandbox", runtime = %options.runtime, pid = tracing::field::Empty);
        let (events, _) = broadcast::channel(1024);
        let (guest, started) = spawn_guest(&options, &options.globals, events.clone(), 0)
            .instrument(span)
            .await?;
        let inner = Arc::new(Inner {
            guest: RwLock::new(Arc::new(guest)),
            events,
            restarts: Restarts::new(&options),
        });
        if inner.restarts.is_some() {
            tokio::spawn(restart::supervise(Arc::clone(&inner)));
        }
        Ok(Sandbox {
            inner,
            runtime: started.runtime,
            version: started.version,
            program: started.program,
            report: started.report,
            teardown_grace: options.teardown_grace,
            call_timeout: options.call_timeout,
            cpu_time: options.limits.cpu_time,
            kill_grace: options.kill_grace,
        })
    }

    /// The connection to send a request on: the guest serving now or, if it died and a
    /// restart follows, the next one (this waits for it).
    async fn conn(&self) -> Arc<Guest> {
        let guest = self.inner.current();
        match &self.inner.restarts {
            Some(restarts) if guest.shared.is_closed() => {
                restarts.wait_past(guest.generation).await;
                self.inner.current()
            }
            _ => guest,
        }
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
        let guest = self.conn().await;
        // Kept only to re-create the container after a restart.
        let kept = self.inner.restarts.as_ref().map(|_| source.clone());
        let requested = self.inner.restarts.as_ref().map(Restarts::new_cid);
        let reply = guest
            .shared
            .request_limited(
                HostRequest::Exec {
                    cid: requested,
                    source: source.source,
                    options: source.options,
                    timeout_ms: timeout_ms(limits.wall),
                    cpu_ms: timeout_ms(limits.cpu),
                },
                limits,
            )
            .await?;
        match reply.map_err(|e| Error::from_guest(0, None, e))? {
            Reply::Container(cid) if requested.is_none_or(|r| r == cid) => {
                tracing::debug!(cid, name = %name, "container created");
                if let (Some(restarts), Some(source)) = (&self.inner.restarts, kept) {
                    restarts.created(guest.generation, cid, source);
                }
                Ok(cid)
            }
            _ => Err(unexpected(&guest.shared, "Exec")),
        }
    }

    /// Replaces container `cid`'s runtime options.
    ///
    /// # Errors
    /// [`Error::NoSuchContainer`], or options the runtime rejects ([`Error::Runtime`]).
    pub async fn config_container(&self, cid: ContainerId, options: impl Serialize) -> Result<()> {
        let options = to_value(&options)?;
        let guest = self.conn().await;
        let kept = self.inner.restarts.as_ref().map(|_| options.clone());
        let reply = guest
            .shared
            .request(HostRequest::Config { cid, options })
            .await?;
        match reply.map_err(|e| Error::from_guest(cid, None, e))? {
            Reply::Unit => {
                if let (Some(restarts), Some(options)) = (&self.inner.restarts, kept) {
                    restarts.configured(guest.generation, cid, options);
                }
                Ok(())
            }
            _ => Err(unexpected(&guest.shared, "Config")),
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
        let guest = self.conn().await;
        let reply = guest
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
            _ => Err(unexpected(&guest.shared, "Call")),
        }
    }

    /// The live containers.
    ///
    /// # Errors
    /// [`Error::GuestExited`] / [`Error::Protocol`] if the guest is gone.
    pub async fn list_containers(&self) -> Result<Vec<ContainerInfo>> {
        let guest = self.conn().await;
        match guest
            .shared
            .request(HostRequest::List)
            .await?
            .map_err(|e| Error::from_guest(0, None, e))?
        {
            Reply::Containers(list) => Ok(list),
            _ => Err(unexpected(&guest.shared, "List")),
        }
    }

    /// Destroys container `cid`. Calls still pending on it fail with
    /// [`Error::NoSuchContainer`].
    ///
    /// # Errors
    /// [`Error::NoSuchContainer`] if it does not exist.
    pub async fn kill_container(&self, cid: ContainerId) -> Result<()> {
        let guest = self.conn().await;
        match guest
            .shared
            .request(HostRequest::Kill { cid })
            .await?
            .map_err(|e| Error::from_guest(cid, None, e))?
        {
            Reply::Unit => {
                if let Some(restarts) = &self.inner.restarts {
                    restarts.killed(guest.generation, cid);
                }
                let _ = self.inner.events.send(Event::ContainerClosed { cid });
                Ok(())
            }
            _ => Err(unexpected(&guest.shared, "Kill")),
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
        let guest = self.conn().await;
        match guest
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
            _ => Err(unexpected(&guest.shared, "WaitIdle")),
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
        let guest = self.conn().await;
        define_globals(&guest.shared, globals).await?;
        if let Some(restarts) = &self.inner.restarts {
            restarts.defined(guest.generation, globals);
        }
        Ok(())
    }

    /// Closes the connection, waits for the guest to exit (killing it after
    /// [`SandboxOptions::teardown_grace`]) and returns how it ended, once its stdout and
    /// stderr have been read to the end. Pending calls fail with [`Error::TornDown`].
    ///
    /// # Errors
    /// Never fails today; the `Result` leaves room for platforms where reaping can.
    pub async fn teardown(self) -> Result<ExitInfo> {
        if let Some(restarts) = &self.inner.restarts {
            restarts.end();
        }
        let guest = self.inner.current();
        guest.shared.begin_teardown();
        let info = match guest.shared.wait_exit(self.teardown_grace).await {
            Some(info) => info,
            None => {
                guest.shared.kill_guest();
                guest
                    .shared
                    .wait_exit(Duration::from_secs(5))
                    .await
                    .unwrap_or_default()
            }
        };
        guest.drained().await;
        tracing::debug!(runtime = %self.runtime, pid = guest.pid, %info, "sandbox torn down");
        Ok(info)
    }

    /// How the guest ended, once it has (the seed's `guestExitCode` / `guestExitSignal`).
    /// With a restart policy: the guest serving now (or the last one).
    pub fn exit_info(&self) -> Option<ExitInfo> {
        *self.inner.current().shared.exit.borrow()
    }

    /// `true` while the guest is running and the connection is open.
    pub fn is_active(&self) -> bool {
        let guest = self.inner.current();
        let exited = guest.shared.exit.borrow().is_some();
        !exited && !guest.shared.is_closed()
    }

    /// Resolves when the sandbox has ended, with how its last guest exited: when the guest
    /// exited, or with a restart policy, when a guest exited and no restart followed. By then
    /// its stdout and stderr have been read to the end ([`Sandbox::captured_stderr`] is
    /// complete). Independent of the `Sandbox`'s lifetime.
    pub fn closed(&self) -> impl Future<Output = ExitInfo> + Send + 'static {
        let inner = Arc::clone(&self.inner);
        async move { restart::final_exit(&inner).await }
    }

    /// A receiver of this sandbox's [`Event`]s from now on.
    pub fn events(&self) -> Events {
        Events::new(self.inner.events.subscribe())
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

    /// The guest's process id (after a restart, the new guest's).
    pub fn pid(&self) -> u32 {
        self.inner.current().pid
    }

    /// What the platform sandbox enforces for this guest (a restarted guest is started and
    /// checked the same way).
    pub fn isolation(&self) -> &IsolationReport {
        &self.report
    }

    /// The guest's stdout so far, with [`Output::Capture`] (after a restart, the new
    /// guest's).
    pub fn captured_stdout(&self) -> Vec<u8> {
        let guest = self.inner.current();
        let out = guest.stdout.lock().map(|b| b.clone());
        out.unwrap_or_default()
    }

    /// The guest's stderr so far, with [`Output::Capture`] (after a restart, the new
    /// guest's).
    pub fn captured_stderr(&self) -> Vec<u8> {
        let guest = self.inner.current();
        let err = guest.stderr.lock().map(|b| b.clone());
        err.unwrap_or_default()
    }

    /// Kills the guest now (SIGKILL). Pending calls fail with [`Error::GuestExited`]. With a
    /// restart policy this counts as a death: a new guest follows while the policy allows.
    pub fn kill(&self) {
        self.inner.current().shared.kill_guest();
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
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // First, so the supervisor does not restart the guest this kills (and kills one it
        // is starting now).
        if let Some(restarts) = &self.inner.restarts {
            restarts.end();
        }
        let guest = self.inner.current();
        if guest.shared.exit.borrow().is_none() {
            guest.shared.begin_teardown();
            guest.shared.kill_guest();
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

    /// See [`SandboxOptions::restart`].
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.options.restart = policy;
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

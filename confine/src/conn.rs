//! The host end of one guest connection: request ids, the pending table, and the tasks that
//! read and write frames.
//!
//! ```text
//! Sandbox::call ─encode─▶ Writer ─(direct write, or queued for the writer task)─▶ socket ─▶ guest
//!        ▲                                                           │
//!        └── oneshot ◀── pending[id] ◀── reader task ◀── frames ◀────┘
//!                                          ├ HostCall → host fn task → writer
//!                                          ├ Log → console handler
//!                                          └ Uncaught → events
//! ```
//!
//! The reader is the only place that learns the guest is gone (EOF, a bad frame, an unknown
//! id). It then marks the connection closed, kills the guest if it broke the protocol, waits
//! for its exit status, and fails every pending request with it, so no caller waits forever.
//!
//! The handshake ([`connect`]) sends `Hello` with the stage-2 lockdown, waits for `Ready`, and
//! for a sandboxed guest then verifies from outside that the lockdown is in place
//! ([`crate::platform::verify_guest`]) before the reader and writer tasks start: no request,
//! and so no source, can reach a guest that failed the check; it is killed instead.

use crate::writer::Writer;
use crate::{
    error::{Error, ExitInfo, Limit, ProtocolError, Result},
    events::Event,
    globals::FunctionTable,
    limits::{self, CpuPercent},
    options::ConsoleHandler,
    platform::{self, Expectations, Rejection},
    report::IsolationReport,
};
use confine_runtime_abstract::{
    codec::{self, FrameBuffer},
    protocol::{
        GuestMessage, GuestRequest, HostMessage, HostRequest, Lockdown, LogLevel, Reply,
        EXIT_OUT_OF_MEMORY,
    },
    ContainerId, ErrorData, ErrorKind, GuestLimits, RequestId, Value, PROTOCOL_VERSION,
};
use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, RwLock,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::unix::OwnedReadHalf,
    net::UnixStream,
    sync::{broadcast, oneshot, watch, Notify},
};

/// Why the connection closed, as every pending request learns it.
#[derive(Debug, Clone)]
pub(crate) enum Closed {
    /// The guest process ended.
    Exited(ExitInfo),
    /// The guest broke the protocol and was killed.
    Protocol(Arc<ProtocolError>),
    /// The host tore the sandbox down.
    TornDown,
    /// The guest went over a process-wide limit (memory cap, CPU percent) and is gone.
    Limit(Limit, String),
}

impl Closed {
    pub(crate) fn to_error(&self) -> Error {
        match self {
            Closed::Exited(info) => Error::GuestExited(*info),
            Closed::Protocol(e) => Error::Protocol(Arc::clone(e)),
            Closed::TornDown => Error::TornDown,
            Closed::Limit(limit, message) => Error::LimitExceeded {
                limit: *limit,
                message: message.clone(),
            },
        }
    }
}

enum Outcome {
    Reply(Result<Reply, ErrorData>),
    Closed(Closed),
}

impl Outcome {
    fn into_result(self) -> Result<Result<Reply, ErrorData>> {
        match self {
            Outcome::Reply(r) => Ok(r),
            Outcome::Closed(c) => Err(c.to_error()),
        }
    }
}

pub(crate) struct Shared {
    writer: Arc<Writer>,
    pending: Mutex<HashMap<RequestId, oneshot::Sender<Outcome>>>,
    next_id: AtomicU64,
    closed: RwLock<Option<Closed>>,
    pub(crate) max_frame: u32,
    pub(crate) functions: RwLock<FunctionTable>,
    on_console: Option<ConsoleHandler>,
    runtime: String,
    pub(crate) events: broadcast::Sender<Event>,
    /// Set once the guest's exit status is known.
    pub(crate) exit: watch::Sender<Option<ExitInfo>>,
    /// Wakes the child task to kill the guest.
    pub(crate) kill: Notify,
    /// The guest's pid, to read its CPU time.
    pid: u32,
    /// [`crate::Limits::in_flight`].
    in_flight: Option<u32>,
    /// The guest's process memory cap, for the error when it hits it.
    memory_cap: Option<u64>,
    /// Set when the host killed the guest for a process-wide limit: what every pending
    /// request fails with.
    limit_kill: Mutex<Option<(Limit, String)>>,
}

/// The hard limits on one request (the guest enforces the same ones softly).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HardLimits {
    /// Wall time the guest was told.
    pub wall: Option<Duration>,
    /// CPU time the guest was told.
    pub cpu: Option<Duration>,
    /// How long past either the guest may take to stop by itself.
    pub grace: Duration,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("runtime", &self.runtime)
            .field("closed", &self.closed.read().ok().map(|c| c.is_some()))
            .finish_non_exhaustive()
    }
}

/// What the handshake learned.
pub(crate) struct Hello {
    pub runtime: String,
    pub version: String,
    /// The launcher's report, with stage 2 marked verified when the host checked it.
    pub report: IsolationReport,
}

/// The sandbox's part of the handshake, from the launcher.
#[derive(Debug)]
pub(crate) struct GuestSandbox {
    /// The guest's pid (our unreaped child).
    pub pid: u32,
    /// Sent in `Hello`; the guest installs it before `Ready`.
    pub lockdown: Option<Lockdown>,
    /// Checked from outside after `Ready`; `None` with `no_sandbox`.
    pub expect: Option<Expectations>,
    /// What the plan enforces, before verification.
    pub report: IsolationReport,
}

pub(crate) struct ConnConfig {
    pub max_frame: u32,
    pub limits: GuestLimits,
    pub in_flight: Option<u32>,
    pub cpu_percent: Option<CpuPercent>,
    pub memory_cap: Option<u64>,
    pub ready_timeout: Duration,
    pub functions: FunctionTable,
    pub on_console: Option<ConsoleHandler>,
    pub runtime: String,
    pub sandbox: GuestSandbox,
    /// The sandbox's event channel (it outlives one guest when the sandbox restarts).
    pub events: broadcast::Sender<Event>,
}

/// Sends `Hello` (with the lockdown), waits for `Ready`, verifies a sandboxed guest from
/// outside, and starts the reader, writer and child tasks.
pub(crate) async fn connect(
    socket: UnixStream,
    child: tokio::process::Child,
    cfg: ConnConfig,
) -> Result<(Arc<Shared>, Hello)> {
    let (mut read, mut write) = socket.into_split();
    let (exit_tx, _) = watch::channel(None);
    let shared = Arc::new(Shared {
        writer: Writer::new(),
        pending: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        closed: RwLock::new(None),
        max_frame: cfg.max_frame,
        functions: RwLock::new(cfg.functions),
        on_console: cfg.on_console,
        runtime: cfg.runtime,
        events: cfg.events,
        exit: exit_tx,
        kill: Notify::new(),
        pid: cfg.sandbox.pid,
        in_flight: cfg.in_flight,
        memory_cap: cfg.memory_cap,
        limit_kill: Mutex::new(None),
    });
    // The child task owns the process: it records the exit status and kills on request.
    tokio::spawn(watch_child(child, Arc::clone(&shared)));

    let mut frames = FrameBuffer::new(cfg.max_frame);
    let GuestSandbox {
        pid,
        lockdown,
        expect,
        report,
    } = cfg.sandbox;
    let handshake = async {
        let hello = codec::encode(
            &HostMessage::Hello {
                protocol_version: PROTOCOL_VERSION,
                max_frame: cfg.max_frame,
                lockdown,
                limits: cfg.limits,
            },
            cfg.max_frame,
        )
        .map_err(ProtocolError::from)?;
        write.write_all(&hello).await.map_err(ProtocolError::Io)?;
        loop {
            if let Some(body) = frames.next_frame().map_err(ProtocolError::from)? {
                let msg: GuestMessage = codec::decode_body(body).map_err(ProtocolError::from)?;
                return match msg {
                    GuestMessage::Ready {
                        protocol_version,
                        runtime,
                        version,
                    } if protocol_version == PROTOCOL_VERSION => Ok((runtime, version)),
                    GuestMessage::Ready {
                        protocol_version, ..
                    } => Err(ProtocolError::Version {
                        guest: protocol_version,
                        host: PROTOCOL_VERSION,
                    }),
                    _ => Err(ProtocolError::Unexpected("a message before Ready")),
                };
            }
            let n = read
                .read(frames.buf_mut())
                .await
                .map_err(ProtocolError::Io)?;
            if n == 0 {
                return Err(if frames.has_partial() {
                    ProtocolError::Truncated
                } else {
                    ProtocolError::ClosedBeforeReady
                });
            }
            frames.filled(n);
        }
    };
    let (runtime, version) = match tokio::time::timeout(cfg.ready_timeout, handshake).await {
        Ok(Ok(ready)) => ready,
        Ok(Err(e)) => {
            // A guest that hung up during startup usually died: report how it died, not the
            // closed socket it left behind. Anything else it sent is a protocol violation.
            let hung_up = matches!(
                e,
                ProtocolError::ClosedBeforeReady | ProtocolError::Truncated | ProtocolError::Io(_)
            );
            if hung_up {
                if let Some(info) = shared.wait_exit(Duration::from_secs(2)).await {
                    return Err(Error::GuestExited(info));
                }
            }
            shared.kill_guest();
            return Err(Error::Protocol(Arc::new(e)));
        }
        Err(_) => {
            shared.kill_guest();
            return Err(Error::StartupTimeout(cfg.ready_timeout));
        }
    };
    let report = match expect {
        None => report,
        Some(expect) => {
            verify(&shared, pid, &expect).await?;
            report.with_stage2_verified()
        }
    };
    shared.writer.attach(write);
    tokio::spawn(reader_task(read, frames, Arc::clone(&shared)));
    if let Some(cap) = cfg.cpu_percent {
        tokio::spawn(watch_cpu_percent(Arc::clone(&shared), cap));
    }
    Ok((
        shared,
        Hello {
            runtime,
            version,
            report,
        },
    ))
}

/// The host's outside check of a guest that said `Ready` (see [`platform::verify_guest`]).
/// A guest that fails it is killed before it sees any request.
///
/// # Errors
/// [`Error::Sandbox`] naming the failed check, or [`Error::GuestExited`] if the guest died
/// before or during the check.
async fn verify(shared: &Shared, pid: u32, expect: &Expectations) -> Result<()> {
    let outcome = platform::verify_guest(pid, expect);
    // A check that passed must describe our guest: it was alive (unreaped) when its /proc
    // directory was opened, so if it has been reaped since, fail as if it had died first.
    let outcome = match outcome {
        Ok(()) if shared.exit.borrow().is_some() => Err(Rejection::Exited),
        other => other,
    };
    match outcome {
        Ok(()) => Ok(()),
        Err(rejection) => {
            shared.kill_guest();
            let exit = shared.wait_exit(Duration::from_secs(2)).await;
            Err(match rejection {
                Rejection::Exited => Error::GuestExited(exit.unwrap_or_default()),
                Rejection::Failed(e) => {
                    tracing::warn!(pid, error = %e, "guest failed verification; killed it");
                    Error::Sandbox(e)
                }
            })
        }
    }
}

async fn watch_child(mut child: tokio::process::Child, shared: Arc<Shared>) {
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            () = shared.kill.notified() => {
                let _ = child.start_kill();
            }
        }
    };
    let info = match status {
        Ok(s) => ExitInfo::from_status(s),
        Err(_) => ExitInfo::default(),
    };
    shared.exit.send_replace(Some(info));
}

/// Kills the guest when its CPU use, averaged over the cap's window, goes above the cap.
/// Samples ten times per window and judges only once a whole window is covered, so a short
/// burst (startup, one heavy call) within an otherwise idle window passes.
async fn watch_cpu_percent(shared: Arc<Shared>, cap: CpuPercent) {
    let window = cap.window.max(CpuPercent::MIN_WINDOW);
    let mut tick = tokio::time::interval(window / 10);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut exit = shared.exit.subscribe();
    let mut samples: VecDeque<(Instant, Duration)> = VecDeque::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = exit.wait_for(Option::is_some) => return,
        }
        let Some(cpu) = limits::process_cpu_time(shared.pid) else {
            return;
        };
        let now = Instant::now();
        samples.push_back((now, cpu));
        while samples
            .get(1)
            .is_some_and(|&(t, _)| now.duration_since(t) >= window)
        {
            samples.pop_front();
        }
        let Some(&(t0, cpu0)) = samples.front() else {
            continue;
        };
        let span = now.duration_since(t0);
        if span < window {
            continue;
        }
        let used = cpu.saturating_sub(cpu0);
        let percent = used.as_secs_f64() * 100.0 / span.as_secs_f64();
        if percent > f64::from(cap.percent) {
            let message = format!(
                "the guest used {percent:.0} % CPU over {} ms (cap {} %) and was killed",
                span.as_millis(),
                cap.percent
            );
            tracing::warn!(runtime = %shared.runtime, pid = shared.pid, "{message}");
            if let Ok(mut reason) = shared.limit_kill.lock() {
                reason.get_or_insert((Limit::CpuPercent, message));
            }
            shared.kill_guest();
            return;
        }
    }
}

async fn reader_task(mut read: OwnedReadHalf, mut frames: FrameBuffer, shared: Arc<Shared>) {
    let reason = loop {
        match next_messages(&mut frames, &shared) {
            Ok(()) => {}
            Err(e) => break Err(e),
        }
        match read.read(frames.buf_mut()).await {
            Ok(0) if frames.has_partial() => break Err(ProtocolError::Truncated),
            Ok(0) => break Ok(()),
            Ok(n) => frames.filled(n),
            Err(e) => break Err(ProtocolError::Io(e)),
        }
    };
    let closed = match reason {
        Ok(()) => {
            // EOF: the guest exited or closed its socket. If it lingers, it is of no use.
            let info = match shared.wait_exit(Duration::from_millis(500)).await {
                Some(info) => info,
                None => {
                    shared.kill_guest();
                    shared
                        .wait_exit(Duration::from_secs(5))
                        .await
                        .unwrap_or_default()
                }
            };
            shared.closed_for(info)
        }
        Err(e) => {
            let killed_for = shared.limit_kill.lock().ok().and_then(|r| r.clone());
            if let Some((limit, message)) = killed_for {
                // Killed mid-frame for a limit: the torn frame is ours, not a lie.
                Closed::Limit(limit, message)
            } else {
                tracing::warn!(runtime = %shared.runtime, error = %e, "guest broke the protocol; killing it");
                shared.kill_guest();
                Closed::Protocol(Arc::new(e))
            }
        }
    };
    shared.close(closed);
    let info = shared
        .wait_exit(Duration::from_secs(5))
        .await
        .unwrap_or_default();
    let _ = shared.events.send(Event::GuestExited(info));
}

fn next_messages(frames: &mut FrameBuffer, shared: &Arc<Shared>) -> Result<(), ProtocolError> {
    while let Some(body) = frames.next_frame()? {
        let msg: GuestMessage = codec::decode_body(body)?;
        shared.dispatch(msg)?;
    }
    Ok(())
}

impl Shared {
    fn dispatch(self: &Arc<Self>, msg: GuestMessage) -> Result<(), ProtocolError> {
        match msg {
            GuestMessage::Response { id, result } => {
                let waiter = self.pending.lock().ok().and_then(|mut p| p.remove(&id));
                match waiter {
                    // The caller may have given up (dropped its future); that's fine.
                    Some(tx) => {
                        let _ = tx.send(Outcome::Reply(result));
                    }
                    None => return Err(ProtocolError::UnknownResponse(id)),
                }
            }
            GuestMessage::Request { id, request } => match request {
                GuestRequest::HostCall { cid, path, args } => self.host_call(id, cid, path, args),
            },
            GuestMessage::Log {
                cid,
                level,
                message,
            } => self.console(cid, level, &message),
            GuestMessage::Uncaught { cid, error } => {
                tracing::debug!(runtime = %self.runtime, cid, error = %error, "uncaught error in guest");
                let _ = self.events.send(Event::Uncaught { cid, error });
            }
            GuestMessage::Ready { .. } => return Err(ProtocolError::Unexpected("a second Ready")),
        }
        Ok(())
    }

    fn console(&self, cid: ContainerId, level: LogLevel, message: &str) {
        if let Some(handler) = &self.on_console {
            handler(cid, level, message);
            return;
        }
        let rt = &self.runtime;
        match level {
            LogLevel::Debug => {
                tracing::debug!(target: "confine::console", runtime = %rt, cid, "{message}")
            }
            LogLevel::Log | LogLevel::Info => {
                tracing::info!(target: "confine::console", runtime = %rt, cid, "{message}")
            }
            LogLevel::Warn => {
                tracing::warn!(target: "confine::console", runtime = %rt, cid, "{message}")
            }
            LogLevel::Error => {
                tracing::error!(target: "confine::console", runtime = %rt, cid, "{message}")
            }
        }
    }

    fn host_call(
        self: &Arc<Self>,
        id: RequestId,
        cid: ContainerId,
        path: Vec<String>,
        args: Vec<Value>,
    ) {
        let function = self
            .functions
            .read()
            .ok()
            .and_then(|t| t.get(&path).cloned());
        let shared = Arc::clone(self);
        let Some(function) = function else {
            // A script can only name functions it was given, so this is a lying guest, or a
            // race with a global being replaced. Either way the script gets an error.
            let err = ErrorData::new(
                ErrorKind::HostFunction,
                "ReferenceError",
                format!("no host function `{}`", path.join(".")),
            );
            shared.respond(id, Err(err));
            return;
        };
        tokio::spawn(async move {
            let result = match CatchUnwind(AssertUnwindSafe(function(args))).await {
                Ok(r) => r,
                Err(()) => Err(ErrorData::new(
                    ErrorKind::HostFunction,
                    "Error",
                    format!("host function `{}` panicked", path.join(".")),
                )),
            };
            tracing::trace!(cid, function = %path.join("."), ok = result.is_ok(), "host call done");
            shared.respond(id, result);
        });
    }

    fn respond(&self, id: RequestId, result: Result<Value, ErrorData>) {
        let msg = HostMessage::Response { id, result };
        let frame = match codec::encode(&msg, self.max_frame) {
            Ok(f) => f,
            Err(e) => {
                let err = ErrorData::new(ErrorKind::FrameSize, "RangeError", e.to_string());
                match codec::encode(
                    &HostMessage::Response {
                        id,
                        result: Err(err),
                    },
                    self.max_frame,
                ) {
                    Ok(f) => f,
                    Err(_) => return,
                }
            }
        };
        let _ = self.writer.send(&frame);
    }

    /// Sends a request and waits for its answer (or for the connection to close).
    pub(crate) async fn request(&self, request: HostRequest) -> Result<Result<Reply, ErrorData>> {
        self.request_limited(request, HardLimits::default()).await
    }

    /// [`Shared::request`] with hard limits: `limits.wall` and `limits.cpu` are the ones the
    /// guest was told to enforce; if no answer arrives within the wall limit plus the grace,
    /// or the guest process has used the CPU limit plus the grace, the guest is taken to be
    /// stuck where it cannot stop itself, and is killed.
    ///
    /// # Errors
    /// As [`Shared::request`]; [`Error::LimitExceeded`] with [`Limit::WallTime`] or
    /// [`Limit::CpuTime`] when the guest was killed for this request, or with
    /// [`Limit::InFlight`] when too many requests are in flight already.
    pub(crate) async fn request_limited(
        &self,
        request: HostRequest,
        limits: HardLimits,
    ) -> Result<Result<Reply, ErrorData>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame =
            codec::encode(&HostMessage::Request { id, request }, self.max_frame).map_err(|e| {
                Error::LimitExceeded {
                    limit: Limit::FrameSize,
                    message: e.to_string(),
                }
            })?;
        let (tx, mut rx) = oneshot::channel();
        let alone = {
            // Checked under the pending lock, so `close` cannot miss this request.
            let mut pending = self.pending.lock().map_err(|_| Error::TornDown)?;
            if let Some(closed) = self.closed.read().ok().and_then(|c| c.clone()) {
                return Err(closed.to_error());
            }
            if let Some(max) = self.in_flight {
                if pending.len() >= max as usize {
                    return Err(Error::LimitExceeded {
                        limit: Limit::InFlight,
                        message: format!("{max} requests are already in flight"),
                    });
                }
            }
            pending.insert(id, tx);
            pending.len() == 1
        };
        let guard = PendingGuard { shared: self, id };
        // Read before sending, so the guest's CPU for this request is all counted.
        let cpu_start = limits.cpu.and_then(|_| limits::process_cpu_time(self.pid));
        // A lone request goes out at once; with others in flight, frames queue so the writer
        // task sends a burst in one write (latency for one call, throughput for many).
        let sent = if alone {
            self.writer.send(&frame)
        } else {
            self.writer.enqueue(&frame)
        };
        if sent.is_err() {
            // The guest is gone, but the reader may not have said why yet. The request is
            // registered, and `close` answers every registered request with the reason, so
            // wait for that (bounded, in case the reader never sees the hang-up).
            std::mem::forget(guard);
            return match tokio::time::timeout(Duration::from_secs(5), rx).await {
                Ok(Ok(outcome)) => outcome.into_result(),
                _ => Err(self.closed_error()),
            };
        }
        let started = tokio::time::Instant::now();
        let wall_end = limits
            .wall
            .map(|l| started + l.saturating_add(limits.grace));
        let cpu_budget = limits.cpu.map(|l| l.saturating_add(limits.grace));
        // The CPU is checked when the guest could first have used the whole budget, then
        // again after however much of it is left.
        let mut cpu_check = cpu_budget.map(|b| started + b);
        loop {
            let wake = match (wall_end, cpu_check) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let outcome = match wake {
                None => (&mut rx).await,
                Some(at) => match tokio::time::timeout_at(at, &mut rx).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        let now = tokio::time::Instant::now();
                        let killed = if wall_end.is_some_and(|end| now >= end) {
                            Some(self.hard_limit_error(Limit::WallTime, limits))
                        } else {
                            let used = limits::process_cpu_time(self.pid)
                                .zip(cpu_start)
                                .map(|(now_cpu, start)| now_cpu.saturating_sub(start));
                            match (used, cpu_budget) {
                                (Some(used), Some(budget)) if used < budget => {
                                    cpu_check = Some(now + (budget - used));
                                    None
                                }
                                // Over budget, or the process is gone (its exit answers us).
                                (Some(_), Some(_)) => {
                                    Some(self.hard_limit_error(Limit::CpuTime, limits))
                                }
                                _ => {
                                    cpu_check = None;
                                    None
                                }
                            }
                        };
                        match killed {
                            Some(error) => {
                                // Our entry stays registered so an answer the dying guest still
                                // sends is taken as a response to a caller that left, not as a
                                // lie about an unknown id; the reader drains it with the others
                                // once the socket closes.
                                std::mem::forget(guard);
                                self.kill_guest();
                                return Err(error);
                            }
                            None => continue,
                        }
                    }
                },
            };
            std::mem::forget(guard);
            return match outcome {
                Ok(outcome) => outcome.into_result(),
                Err(_) => Err(self.closed_error()),
            };
        }
    }

    /// The error for a request whose guest is about to be killed for `limit`.
    fn hard_limit_error(&self, limit: Limit, limits: HardLimits) -> Error {
        let (what, value) = match limit {
            Limit::CpuTime => ("CPU-time", limits.cpu),
            _ => ("wall-time", limits.wall),
        };
        let ms = value.unwrap_or_default().as_millis();
        tracing::warn!(runtime = %self.runtime, ?limits, "guest did not stop at its {what} limit; killing it");
        Error::LimitExceeded {
            limit,
            message: format!(
                "{what} limit of {ms} ms exceeded; the guest did not stop within the {} ms \
                 grace and was killed",
                limits.grace.as_millis()
            ),
        }
    }

    /// Why the connection closed, for a guest that exited with `info`: a process-wide limit
    /// the host killed it for or it hit itself, or its exit.
    fn closed_for(&self, info: ExitInfo) -> Closed {
        if self.is_torn_down() {
            return Closed::TornDown;
        }
        if let Some((limit, message)) = self.limit_kill.lock().ok().and_then(|r| r.clone()) {
            return Closed::Limit(limit, message);
        }
        if info.code == Some(EXIT_OUT_OF_MEMORY) {
            let cap = self
                .memory_cap
                .map_or_else(String::new, |c| format!(" of {} MiB", c >> 20));
            return Closed::Limit(
                Limit::Memory,
                format!("the guest ran out of memory at its process cap{cap} and exited"),
            );
        }
        Closed::Exited(info)
    }

    fn closed_error(&self) -> Error {
        self.closed
            .read()
            .ok()
            .and_then(|c| c.as_ref().map(Closed::to_error))
            .unwrap_or(Error::TornDown)
    }

    fn close(&self, closed: Closed) {
        let drained: Vec<_> = match self.pending.lock() {
            Ok(mut p) => {
                if let Ok(mut c) = self.closed.write() {
                    c.get_or_insert(closed.clone());
                }
                p.drain().map(|(_, tx)| tx).collect()
            }
            Err(_) => Vec::new(),
        };
        for tx in drained {
            let _ = tx.send(Outcome::Closed(closed.clone()));
        }
        self.writer.close();
    }

    fn is_torn_down(&self) -> bool {
        self.closed
            .read()
            .ok()
            .is_some_and(|c| matches!(*c, Some(Closed::TornDown)))
    }

    /// Stops accepting requests and closes the connection; the guest sees EOF and exits.
    pub(crate) fn begin_teardown(&self) {
        if let Ok(mut c) = self.closed.write() {
            c.get_or_insert(Closed::TornDown);
        }
        self.writer.close();
    }

    pub(crate) fn kill_guest(&self) {
        self.kill.notify_one();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.read().ok().is_some_and(|c| c.is_some())
    }

    /// The exit status, once the guest has exited.
    pub(crate) async fn wait_exit_forever(&self) -> ExitInfo {
        let mut rx = self.exit.subscribe();
        let exit = rx.wait_for(Option::is_some).await.map(|v| *v);
        exit.ok().flatten().unwrap_or_default()
    }

    /// The exit status, waiting at most `timeout` for it.
    pub(crate) async fn wait_exit(&self, timeout: Duration) -> Option<ExitInfo> {
        let mut rx = self.exit.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            rx.wait_for(Option::is_some).await.map(|v| *v)
        })
        .await;
        match waited {
            Ok(Ok(v)) => v,
            _ => *self.exit.borrow(),
        }
    }
}

/// Removes a pending entry if the caller's future is dropped before the answer arrives, so
/// abandoned requests do not accumulate.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: RequestId,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut p) = self.shared.pending.lock() {
            p.remove(&self.id);
        }
    }
}

/// Turns a panic inside a host function into an error the script sees, instead of a promise
/// that never settles.
struct CatchUnwind<F>(AssertUnwindSafe<F>);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut inner.0).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

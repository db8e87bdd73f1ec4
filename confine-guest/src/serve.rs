//! The serve loop: frames in, runtime calls, frames out.

use crate::{
    lockdown::{self, LockdownError},
    socket, EXIT_INIT, EXIT_IO, EXIT_LOCKDOWN, EXIT_PROTOCOL,
};
use confine_runtime_abstract::{
    codec::{self, CodecError, FrameBuffer, DEFAULT_MAX_FRAME},
    protocol::{
        ContainerId, ContainerInfo, GlobalDef, GuestMessage, HostMessage, HostRequest, Reply,
        Source,
    },
    support::thread_cpu_time,
    AbstractRuntime, CpuDeadline, Deadline, ErrorData, ErrorKind, GuestLimits, LimitKind, Link,
    ReplyTo, RequestId, Value, PROTOCOL_VERSION,
};
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io,
    os::fd::RawFd,
    time::{Duration, Instant},
};
use thiserror::Error;

/// Why a guest stopped serving.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Reading from or writing to the host failed.
    #[error("connection to the host failed: {0}")]
    Io(#[from] io::Error),
    /// The host sent a frame that is not a valid message, or too large a frame.
    #[error("host sent a bad frame: {0}")]
    Codec(#[from] CodecError),
    /// The host spoke another protocol version, or broke the conversation's order.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// The host closed the connection in the middle of a frame.
    #[error("host closed the connection in the middle of a frame")]
    Truncated,
    /// The runtime could not start.
    #[error("runtime failed to start: {0}")]
    Init(ErrorData),
    /// The host's lockdown (the stage-2 seccomp filter) could not be installed; the guest
    /// did not answer `Ready`.
    #[error("cannot lock the guest down: {0}")]
    Lockdown(#[from] LockdownError),
}

impl ServeError {
    /// The process exit status this error maps to.
    pub fn exit_code(&self) -> i32 {
        match self {
            ServeError::Io(_) => EXIT_IO,
            ServeError::Init(_) => EXIT_INIT,
            ServeError::Lockdown(_) => EXIT_LOCKDOWN,
            ServeError::Codec(_) | ServeError::Protocol(_) | ServeError::Truncated => EXIT_PROTOCOL,
        }
    }
}

struct Container {
    name: String,
    options: Value,
}

/// The time limits of one open request.
#[derive(Clone, Copy)]
struct Timed {
    cid: ContainerId,
    wall: Option<Deadline>,
    cpu: Option<CpuDeadline>,
}

impl Timed {
    /// The error for a request whose limit has passed, judged at `now` and CPU time `cpu`.
    fn expired(&self, now: Instant, cpu: Duration) -> Option<ErrorData> {
        if let Some(d) = self.wall.filter(|d| d.at <= now) {
            return Some(ErrorData::timeout(d.limit));
        }
        self.cpu
            .filter(|d| d.at <= cpu)
            .map(|d| ErrorData::cpu_time(d.limit))
    }
}

struct Guest<R> {
    runtime: R,
    link: Link,
    fd: RawFd,
    max_frame: u32,
    containers: BTreeMap<ContainerId, Container>,
    next_cid: ContainerId,
    globals: Vec<GlobalDef>,
    /// `WaitIdle` requests not answered yet.
    idle_waiters: Vec<(ContainerId, ReplyTo)>,
    /// Calls and `WaitIdle`s with a wall-time or CPU-time limit, not answered yet.
    deadlines: HashMap<RequestId, Timed>,
    /// Calls not answered yet, by container: the requests a tripped budget fails (tracked
    /// only with an output or host-call budget).
    open_calls: HashMap<RequestId, ContainerId>,
    /// Containers over a budget, while [`Guest::flush`] fails their calls.
    trips: HashMap<ContainerId, ErrorData>,
    limits: GuestLimits,
    /// Requests the loop answered itself at their deadline; the runtime's late answer to
    /// one of them is dropped (the host would take it for a response to an unknown id).
    abandoned: HashSet<RequestId>,
    /// Messages taken from the link, reused across turns.
    outgoing: Vec<GuestMessage>,
    /// Encoded frames, reused across turns.
    wire: Vec<u8>,
}

/// Serves `runtime` on the connected socket `fd` until the host closes it.
///
/// # Errors
/// See [`ServeError`]. A clean hang-up by the host is `Ok(())`.
pub fn serve_fd<R: AbstractRuntime>(mut runtime: R, fd: RawFd) -> Result<(), ServeError> {
    let link = Link::new();
    runtime.init(link.clone()).map_err(ServeError::Init)?;
    let mut frames = FrameBuffer::new(DEFAULT_MAX_FRAME);

    // The only message allowed before Ready is the host's Hello.
    let hello = loop {
        if let Some(body) = frames.next_frame()? {
            break codec::decode_body::<HostMessage>(body)?;
        }
        if !fill(fd, &mut frames)? {
            return Ok(());
        }
    };
    let HostMessage::Hello {
        protocol_version,
        max_frame,
        lockdown,
        limits,
    } = hello
    else {
        return Err(ServeError::Protocol("first message was not Hello"));
    };
    if protocol_version != PROTOCOL_VERSION {
        return Err(ServeError::Protocol("host speaks another protocol version"));
    }
    link.set_limits(limits);
    runtime.set_limits(&limits).map_err(ServeError::Init)?;
    // Stage 2, before Ready: the engine is initialised, no source has been read, and the host
    // sends none until it has seen this filter in place. Failing here exits without Ready.
    if let Some(lockdown) = &lockdown {
        lockdown::install(lockdown)?;
    }
    let max_frame = max_frame.clamp(1024, DEFAULT_MAX_FRAME);
    frames.set_max_frame(max_frame);
    let info = runtime.info();
    let mut guest = Guest {
        runtime,
        link,
        fd,
        max_frame,
        containers: BTreeMap::new(),
        next_cid: 1,
        globals: Vec::new(),
        idle_waiters: Vec::new(),
        deadlines: HashMap::new(),
        open_calls: HashMap::new(),
        trips: HashMap::new(),
        limits,
        abandoned: HashSet::new(),
        outgoing: Vec::new(),
        wire: Vec::new(),
    };
    guest.link.send(GuestMessage::Ready {
        protocol_version: PROTOCOL_VERSION,
        runtime: info.name,
        version: info.version,
    });
    guest.run(&mut frames)
}

/// Reads once into `frames`. `Ok(false)` on a clean EOF between frames.
fn fill(fd: RawFd, frames: &mut FrameBuffer) -> Result<bool, ServeError> {
    let n = socket::read(fd, frames.buf_mut())?;
    if n == 0 {
        return if frames.has_partial() {
            Err(ServeError::Truncated)
        } else {
            Ok(false)
        };
    }
    frames.filled(n);
    Ok(true)
}

impl<R: AbstractRuntime> Guest<R> {
    fn run(&mut self, frames: &mut FrameBuffer) -> Result<(), ServeError> {
        loop {
            // Frames may already be buffered (pipelined behind Hello, or several per read).
            while let Some(body) = frames.next_frame()? {
                let msg = codec::decode_body::<HostMessage>(body)?;
                self.handle(msg)?;
            }
            let now = Instant::now();
            let next = self.runtime.run_pending(now);
            self.answer_idle_waiters();
            if self.flush()? {
                // A host call was refused as too large; its promise needs another turn.
                continue;
            }
            if self.expire(Instant::now())? {
                // Answering at a deadline may have failed a host call back to the runtime.
                continue;
            }
            // Wake for the earliest timer or deadline, whichever comes first. (CPU deadlines
            // need no wake-up: no CPU is used while the loop sleeps.)
            let next_deadline = self
                .deadlines
                .values()
                .filter_map(|t| t.wall.map(|d| d.at))
                .min();
            let next = match (next, next_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let now = Instant::now();
            let timeout = next.map(|t| t.saturating_duration_since(now));
            if !socket::wait_readable(self.fd, timeout)? {
                continue;
            }
            if !fill(self.fd, frames)? {
                return Ok(());
            }
        }
    }

    fn handle(&mut self, msg: HostMessage) -> Result<(), ServeError> {
        match msg {
            HostMessage::Hello { .. } => return Err(ServeError::Protocol("second Hello")),
            HostMessage::Response { id, result } => self.runtime.host_call_settled(id, result),
            HostMessage::Request { id, request } => self.request(ReplyTo(id), request),
        }
        Ok(())
    }

    fn request(&mut self, to: ReplyTo, request: HostRequest) {
        match request {
            HostRequest::Exec {
                cid,
                source,
                options,
                timeout_ms,
                cpu_ms,
            } => {
                let (wall, cpu) = (deadline(timeout_ms), cpu_deadline(cpu_ms));
                let result = self.exec(cid, source, options, wall, cpu);
                self.link.reply(to, result);
            }
            HostRequest::Config { cid, options } => {
                let result = self.known(cid).and_then(|()| {
                    self.runtime.config_container(cid, &options)?;
                    if let Some(c) = self.containers.get_mut(&cid) {
                        c.options = options;
                    }
                    Ok(Reply::Unit)
                });
                self.link.reply(to, result);
            }
            HostRequest::Call {
                cid,
                export,
                args,
                timeout_ms,
                cpu_ms,
            } => match self.known(cid) {
                Ok(()) => {
                    // Only budgets trip a container, so without them nothing is tracked.
                    if self.limits.output_bytes.is_some() || self.limits.host_calls.is_some() {
                        self.link.reset_usage(cid);
                        self.open_calls.insert(to.0, cid);
                    }
                    self.track(to, cid, deadline(timeout_ms), cpu_deadline(cpu_ms));
                    self.runtime.call(cid, &export, args, to);
                }
                Err(e) => self.link.reply(to, Err(e)),
            },
            HostRequest::List => {
                let list = self
                    .containers
                    .iter()
                    .map(|(&cid, c)| ContainerInfo {
                        cid,
                        name: c.name.clone(),
                        options: c.options.clone(),
                    })
                    .collect();
                self.link.reply(to, Ok(Reply::Containers(list)));
            }
            HostRequest::Kill { cid } => {
                let result = self.known(cid).map(|()| {
                    self.runtime.kill_container(cid);
                    self.containers.remove(&cid);
                    self.link.forget(cid);
                    Reply::Unit
                });
                self.link.reply(to, result);
            }
            HostRequest::DefineGlobals { globals } => {
                let result = self.runtime.define_globals(&globals).map(|()| {
                    self.globals.extend(globals);
                    Reply::Unit
                });
                self.link.reply(to, result);
            }
            HostRequest::WaitIdle { cid, timeout_ms } => match self.known(cid) {
                Ok(()) => {
                    self.track(to, cid, deadline(timeout_ms), None);
                    self.idle_waiters.push((cid, to));
                }
                Err(e) => self.link.reply(to, Err(e)),
            },
        }
    }

    fn exec(
        &mut self,
        requested: Option<ContainerId>,
        source: Source,
        options: Value,
        deadline: Option<Deadline>,
        cpu: Option<CpuDeadline>,
    ) -> Result<Reply, ErrorData> {
        if let Some(max) = self.limits.containers {
            if self.containers.len() >= max as usize {
                return Err(ErrorData::limit(
                    LimitKind::Containers,
                    format!("the guest already has {max} live containers"),
                ));
            }
        }
        let cid = match requested {
            Some(cid) if cid == 0 || self.containers.contains_key(&cid) => {
                return Err(ErrorData::new(
                    ErrorKind::InvalidRequest,
                    "Error",
                    format!("container id {cid} is in use or invalid"),
                ));
            }
            Some(cid) => cid,
            None => self.next_cid,
        };
        // Ids only grow: a requested id is never handed out again, even if its exec fails.
        self.next_cid = cid
            .checked_add(1)
            .ok_or_else(|| ErrorData::internal("container ids exhausted"))?
            .max(self.next_cid);
        // The top-level run is synchronous, so its deadlines only last for this call.
        if deadline.is_some() {
            self.runtime.set_deadline(cid, deadline);
        }
        if cpu.is_some() {
            self.runtime.set_cpu_deadline(cid, cpu);
        }
        let result = self
            .runtime
            .exec_container(cid, &source, &options, &self.globals);
        if deadline.is_some() {
            self.runtime.set_deadline(cid, None);
        }
        if cpu.is_some() {
            self.runtime.set_cpu_deadline(cid, None);
        }
        if let Err(e) = result {
            self.link.forget(cid);
            return Err(e);
        }
        // Top-level code that went over a budget fails the exec; the host never learns the
        // container's id, so the guest must not keep it.
        let over = self.link.over_limit(cid, deadline, cpu);
        if let Some(e) = over {
            self.runtime.kill_container(cid);
            self.link.forget(cid);
            return Err(e);
        }
        self.containers.insert(
            cid,
            Container {
                name: source.name,
                options,
            },
        );
        Ok(Reply::Container(cid))
    }

    /// Remembers request `to`'s deadlines, if it has any, and tells the runtime.
    fn track(
        &mut self,
        to: ReplyTo,
        cid: ContainerId,
        wall: Option<Deadline>,
        cpu: Option<CpuDeadline>,
    ) {
        if wall.is_some() || cpu.is_some() {
            self.deadlines.insert(to.0, Timed { cid, wall, cpu });
            self.refresh_deadline(cid);
        }
    }

    /// Gives the runtime container `cid`'s earliest deadlines among its open requests.
    fn refresh_deadline(&mut self, cid: ContainerId) {
        let of_cid = || self.deadlines.values().filter(|t| t.cid == cid);
        let wall = of_cid().filter_map(|t| t.wall).min_by_key(|d| d.at);
        let cpu = of_cid().filter_map(|t| t.cpu).min_by_key(|d| d.at);
        self.runtime.set_deadline(cid, wall);
        self.runtime.set_cpu_deadline(cid, cpu);
    }

    /// Answers every request whose wall-time or CPU-time limit has passed with the limit's
    /// error. Returns what the flush that sends them returned.
    fn expire(&mut self, now: Instant) -> Result<bool, ServeError> {
        if self.deadlines.is_empty() {
            return Ok(false);
        }
        // One system call per turn, and only while a CPU limit is open.
        let cpu_now = if self.deadlines.values().any(|t| t.cpu.is_some()) {
            thread_cpu_time()
        } else {
            Duration::ZERO
        };
        let expired: Vec<(RequestId, ContainerId, ErrorData)> = self
            .deadlines
            .iter()
            .filter_map(|(&id, t)| t.expired(now, cpu_now).map(|e| (id, t.cid, e)))
            .collect();
        if expired.is_empty() {
            return Ok(false);
        }
        let mut abandoned = Vec::new();
        let mut cids = Vec::new();
        for (id, cid, error) in expired {
            self.deadlines.remove(&id);
            self.open_calls.remove(&id);
            let to = ReplyTo(id);
            let waiting_idle = self.idle_waiters.iter().any(|&(_, w)| w == to);
            if waiting_idle {
                self.idle_waiters.retain(|&(_, w)| w != to);
            } else if !self.runtime.abandon_reply(cid, to) {
                abandoned.push(id);
            }
            self.link.reply(to, Err(error));
            cids.push(cid);
        }
        cids.sort_unstable();
        cids.dedup();
        for cid in cids {
            self.refresh_deadline(cid);
        }
        // Our own answers go out before the ids are marked, so they are not dropped.
        let settled = self.flush()?;
        self.abandoned.extend(abandoned);
        Ok(settled)
    }

    fn known(&self, cid: ContainerId) -> Result<(), ErrorData> {
        if self.containers.contains_key(&cid) {
            Ok(())
        } else {
            Err(ErrorData::new(
                ErrorKind::NoSuchContainer,
                "ReferenceError",
                format!("no container with id {cid}"),
            ))
        }
    }

    fn answer_idle_waiters(&mut self) {
        if self.idle_waiters.is_empty() {
            return;
        }
        let (containers, runtime, link) = (&self.containers, &self.runtime, &self.link);
        self.idle_waiters.retain(|&(cid, to)| {
            if !containers.contains_key(&cid) {
                link.reply(
                    to,
                    Err(ErrorData::new(
                        ErrorKind::NoSuchContainer,
                        "ReferenceError",
                        format!("container {cid} was killed"),
                    )),
                );
                false
            } else if runtime.is_idle(cid) {
                link.reply(to, Ok(Reply::Unit));
                false
            } else {
                true
            }
        });
    }

    /// Settles what went over a per-call budget ([`Link::log`], [`Link::call_host`]):
    /// refused host calls are failed back to the runtime, and tripped containers are noted
    /// in `self.trips` so that [`Guest::flush`] fails their open calls.
    fn settle_budgets(&mut self) {
        // Failing a host call runs script code, which may go over again; each round refuses
        // only calls made after the budget ran out, which stop once the script stops.
        for _ in 0..64 {
            let refused = self.link.take_refused();
            if refused.is_empty() {
                break;
            }
            for (id, error) in refused {
                self.runtime.host_call_settled(id, Err(error));
            }
        }
        for (cid, error) in self.link.take_tripped() {
            self.trips.entry(cid).or_insert(error);
        }
    }

    /// Encodes everything the runtime queued and writes it in one go. Returns `true` if a
    /// host call was too large to send and was failed back to the runtime instead.
    fn flush(&mut self) -> Result<bool, ServeError> {
        self.settle_budgets();
        self.link.drain_into(&mut self.outgoing);
        if self.outgoing.is_empty() && self.trips.is_empty() {
            return Ok(false);
        }
        self.wire.clear();
        let mut settled = false;
        let mut answered = Vec::new();
        let mut outgoing = std::mem::take(&mut self.outgoing);
        for mut msg in outgoing.drain(..) {
            if let GuestMessage::Response { id, result } = &mut msg {
                if self.abandoned.remove(id) {
                    // Already answered at its deadline.
                    continue;
                }
                if let Some(t) = self.deadlines.remove(id) {
                    answered.push(t.cid);
                }
                if let Some(cid) = self.open_calls.remove(id) {
                    // A call of a container over its budget fails with that limit, even if
                    // the script carried on to a result (an engine that cannot interrupt).
                    if let Some(error) = self.trips.get(&cid) {
                        *result = Err(error.clone());
                    }
                }
            }
            match codec::encode_into(&msg, self.max_frame, &mut self.wire) {
                Ok(()) => {}
                Err(CodecError::TooLarge { len, max }) => {
                    if let GuestMessage::Request { id, .. } = msg {
                        self.runtime.host_call_settled(id, Err(too_large(len, max)));
                        settled = true;
                    } else if let Some(replacement) = oversize_replacement(msg, len, max) {
                        codec::encode_into(&replacement, self.max_frame, &mut self.wire)?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.outgoing = outgoing;
        // Calls of tripped containers still open (awaiting a promise) fail now.
        if !self.trips.is_empty() {
            let trips = std::mem::take(&mut self.trips);
            let open: Vec<(RequestId, ContainerId)> = self
                .open_calls
                .iter()
                .filter(|(_, cid)| trips.contains_key(cid))
                .map(|(&id, &cid)| (id, cid))
                .collect();
            for (id, cid) in open {
                self.open_calls.remove(&id);
                if self.deadlines.remove(&id).is_some() {
                    answered.push(cid);
                }
                if !self.runtime.abandon_reply(cid, ReplyTo(id)) {
                    self.abandoned.insert(id);
                }
                let result = Err(trips[&cid].clone());
                let msg = GuestMessage::Response { id, result };
                codec::encode_into(&msg, self.max_frame, &mut self.wire)?;
            }
        }
        for cid in answered {
            self.refresh_deadline(cid);
        }
        if self.wire.is_empty() {
            return Ok(settled);
        }
        socket::write_all(self.fd, &self.wire)?;
        // Do not keep a huge buffer around after one big message.
        if self.wire.capacity() > 1 << 20 {
            self.wire = Vec::new();
        }
        Ok(settled)
    }
}

/// The deadline for a request read now with wall-time limit `timeout_ms`.
fn deadline(timeout_ms: Option<u64>) -> Option<Deadline> {
    timeout_ms.map(|ms| {
        let limit = Duration::from_millis(ms);
        Deadline {
            // A limit too far out to represent is no limit in practice; cap it at a year.
            at: Instant::now()
                .checked_add(limit)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 86_400)),
            limit,
        }
    })
}

/// The CPU deadline for a request read now with CPU-time limit `cpu_ms`.
fn cpu_deadline(cpu_ms: Option<u64>) -> Option<CpuDeadline> {
    cpu_ms.map(|ms| {
        let limit = Duration::from_millis(ms);
        CpuDeadline {
            at: thread_cpu_time().saturating_add(limit),
            limit,
        }
    })
}

fn too_large(len: u64, max: u32) -> ErrorData {
    ErrorData::new(
        ErrorKind::FrameSize,
        "RangeError",
        format!("message of {len} bytes exceeds the {max}-byte frame limit"),
    )
}

/// What to send instead of a message that does not fit in a frame: the request it answers
/// fails with a limit error, so nobody waits forever.
fn oversize_replacement(msg: GuestMessage, len: u64, max: u32) -> Option<GuestMessage> {
    let error = || too_large(len, max);
    match msg {
        GuestMessage::Response { id, .. } => Some(GuestMessage::Response {
            id,
            result: Err(error()),
        }),
        GuestMessage::Log {
            cid,
            level,
            message,
        } => {
            // Keep the head of the message; a char boundary below max/2 always fits.
            let mut cut = (max as usize / 2).min(message.len());
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            Some(GuestMessage::Log {
                cid,
                level,
                message: format!("{}… [truncated: {len} bytes]", &message[..cut]),
            })
        }
        GuestMessage::Uncaught { cid, error: e } => Some(GuestMessage::Uncaught {
            cid,
            error: ErrorData::new(e.kind, e.name, "error too large to send"),
        }),
        // Requests are failed back to the runtime by the caller; Ready is tiny.
        GuestMessage::Request { .. } | GuestMessage::Ready { .. } => None,
    }
}

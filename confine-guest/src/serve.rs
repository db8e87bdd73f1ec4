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
    AbstractRuntime, Deadline, ErrorData, ErrorKind, Link, ReplyTo, RequestId, Value,
    PROTOCOL_VERSION,
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
    /// Calls and `WaitIdle`s with a wall-time limit, not answered yet.
    deadlines: HashMap<RequestId, (ContainerId, Deadline)>,
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
    } = hello
    else {
        return Err(ServeError::Protocol("first message was not Hello"));
    };
    if protocol_version != PROTOCOL_VERSION {
        return Err(ServeError::Protocol("host speaks another protocol version"));
    }
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
            // Wake for the earliest timer or deadline, whichever comes first.
            let next_deadline = self.deadlines.values().map(|(_, d)| d.at).min();
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
                source,
                options,
                timeout_ms,
            } => {
                let result = self.exec(source, options, deadline(timeout_ms));
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
            } => match self.known(cid) {
                Ok(()) => {
                    self.track(to, cid, deadline(timeout_ms));
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
                    self.track(to, cid, deadline(timeout_ms));
                    self.idle_waiters.push((cid, to));
                }
                Err(e) => self.link.reply(to, Err(e)),
            },
        }
    }

    fn exec(
        &mut self,
        source: Source,
        options: Value,
        deadline: Option<Deadline>,
    ) -> Result<Reply, ErrorData> {
        let cid = self.next_cid;
        self.next_cid = self
            .next_cid
            .checked_add(1)
            .ok_or_else(|| ErrorData::internal("container ids exhausted"))?;
        // The top-level run is synchronous, so its deadline only lasts for this call.
        if deadline.is_some() {
            self.runtime.set_deadline(cid, deadline);
        }
        let result = self
            .runtime
            .exec_container(cid, &source, &options, &self.globals);
        if deadline.is_some() {
            self.runtime.set_deadline(cid, None);
        }
        result?;
        self.containers.insert(
            cid,
            Container {
                name: source.name,
                options,
            },
        );
        Ok(Reply::Container(cid))
    }

    /// Remembers request `to`'s deadline, if it has one, and tells the runtime.
    fn track(&mut self, to: ReplyTo, cid: ContainerId, deadline: Option<Deadline>) {
        if let Some(d) = deadline {
            self.deadlines.insert(to.0, (cid, d));
            self.refresh_deadline(cid);
        }
    }

    /// Gives the runtime container `cid`'s earliest deadline among its open requests.
    fn refresh_deadline(&mut self, cid: ContainerId) {
        let earliest = self
            .deadlines
            .values()
            .filter(|(c, _)| *c == cid)
            .map(|(_, d)| *d)
            .min_by_key(|d| d.at);
        self.runtime.set_deadline(cid, earliest);
    }

    /// Answers every request whose deadline has passed with a timeout error. Returns what
    /// the flush that sends them returned.
    fn expire(&mut self, now: Instant) -> Result<bool, ServeError> {
        let expired: Vec<(RequestId, ContainerId, Deadline)> = self
            .deadlines
            .iter()
            .filter(|(_, (_, d))| d.at <= now)
            .map(|(&id, &(cid, d))| (id, cid, d))
            .collect();
        if expired.is_empty() {
            return Ok(false);
        }
        let mut abandoned = Vec::new();
        let mut cids = Vec::new();
        for (id, cid, d) in expired {
            self.deadlines.remove(&id);
            let to = ReplyTo(id);
            let waiting_idle = self.idle_waiters.iter().any(|&(_, w)| w == to);
            if waiting_idle {
                self.idle_waiters.retain(|&(_, w)| w != to);
            } else if !self.runtime.abandon_reply(cid, to) {
                abandoned.push(id);
            }
            self.link.reply(to, Err(ErrorData::timeout(d.limit)));
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

    /// Encodes everything the runtime queued and writes it in one go. Returns `true` if a
    /// host call was too large to send and was failed back to the runtime instead.
    fn flush(&mut self) -> Result<bool, ServeError> {
        self.link.drain_into(&mut self.outgoing);
        if self.outgoing.is_empty() {
            return Ok(false);
        }
        self.wire.clear();
        let mut settled = false;
        let mut answered = Vec::new();
        let mut outgoing = std::mem::take(&mut self.outgoing);
        for msg in outgoing.drain(..) {
            if let GuestMessage::Response { id, .. } = &msg {
                if self.abandoned.remove(id) {
                    // Already answered at its deadline.
                    continue;
                }
                if let Some((cid, _)) = self.deadlines.remove(id) {
                    answered.push(cid);
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
        for cid in answered {
            self.refresh_deadline(cid);
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

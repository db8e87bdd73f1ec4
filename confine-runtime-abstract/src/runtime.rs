//! The [`AbstractRuntime`] trait every engine implements, and the [`Link`] it talks back through.
//!
//! A runtime lives in a guest process and is driven by `confine-guest`'s serve loop, on one
//! thread. The loop owns the socket; the runtime never does I/O. It answers requests and sends
//! host calls, console output and uncaught errors by pushing messages into its [`Link`], which
//! the loop flushes to the host. That keeps runtimes testable without a host: drive one
//! directly and read [`Link::take_outgoing`].
//!
//! Lifecycle of a request the runtime can't answer at once (an async export):
//! 1. the loop calls [`AbstractRuntime::call`] with a [`ReplyTo`] token;
//! 2. the runtime starts the call and keeps the token with the pending promise;
//! 3. later, inside [`AbstractRuntime::run_pending`], the promise settles and the runtime
//!    calls [`Link::reply`] with the token.
//!
//! Host globals work the other way round: script code calls one, the runtime calls
//! [`Link::call_host`] and keeps the returned [`HostCallId`]; when the host answers, the loop
//! calls [`AbstractRuntime::host_call_settled`].

use crate::{
    error::{ErrorData, LimitKind},
    protocol::{
        ContainerId, GlobalDef, GuestLimits, GuestMessage, GuestRequest, LogLevel, Reply,
        RequestId, Source,
    },
    value::Value,
};
use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    fmt,
    rc::Rc,
    time::{Duration, Instant},
};

/// A runtime's name and version, sent to the host in `Ready`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeInfo {
    /// The name the host selects it by (`quickjs`, `boa`, `wasm`, or a third party's).
    pub name: String,
    /// The engine's version, for reports.
    pub version: String,
}

/// Where an answer to a host request goes. Hand it to [`Link::reply`] exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplyTo(pub RequestId);

/// A wall-time limit in force for a container: the earliest deadline among its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// When script code must stop.
    pub at: Instant,
    /// The limit the deadline came from, for the error message.
    pub limit: Duration,
}

/// A CPU-time limit in force for a container: the earliest among its requests, on the guest
/// thread's CPU clock ([`crate::support::thread_cpu_time`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuDeadline {
    /// The thread CPU time at which script code must stop.
    pub at: Duration,
    /// The limit the deadline came from, for the error message.
    pub limit: Duration,
}

impl CpuDeadline {
    /// `true` once the thread has used up the budget. Costs a `clock_gettime` system call
    /// (thread CPU clocks are not in the vDSO), so runtimes call it from their periodic
    /// interrupt check, not per operation.
    pub fn passed(&self) -> bool {
        crate::support::thread_cpu_time() >= self.at
    }
}

/// Identifies a host call the runtime made, to match the host's answer.
pub type HostCallId = RequestId;

/// The directory beside a guest executable where a JIT runtime keeps the code it compiled
/// ahead ([`AbstractRuntime::prepare_offline`]). The host's sandbox lets a guest under the
/// `Wasm` profile read it, never write it: a guest that could write there could plant code
/// for the next one to load.
pub const JIT_CACHE_DIR: &str = "confine-wasm-cache";

/// An engine that runs containers inside a guest process.
///
/// All methods are called from the serve loop's single thread. None may block: long-running
/// work belongs to script code, which a runtime bounds with its own limits. Errors are data
/// ([`ErrorData`]); a runtime must not panic on anything a script or the host sends.
pub trait AbstractRuntime {
    /// Name and version.
    fn info(&self) -> RuntimeInfo;

    /// Called once before any request, with the link to the host. The engine is set up here
    /// (before the guest's final lockdown), so this is where allocation-heavy setup goes.
    ///
    /// # Errors
    /// An engine that cannot start; the guest exits.
    fn init(&mut self, link: Link) -> Result<(), ErrorData>;

    /// Work done once per installation, outside any sandbox and before the first sandboxed
    /// guest starts: filling a cache the sandboxed guest may only read (a JIT runtime's
    /// compiled code, say). The host runs the guest executable with `--prepare` for this
    /// (see `confine_guest::serve`); it reads nothing untrusted. The default does nothing.
    ///
    /// # Errors
    /// What failed; the host logs it and starts the guest anyway (which then does the work
    /// itself, if it can).
    fn prepare_offline(&mut self) -> Result<(), ErrorData> {
        Ok(())
    }

    /// The host's budgets, once, after [`AbstractRuntime::init`] and before any request. The
    /// serve loop and [`Link`] enforce the output, host-call and container budgets for every
    /// runtime; a runtime applies what only the engine can: [`GuestLimits::memory_bytes`]
    /// and [`GuestLimits::stack_bytes`]. The default applies neither, leaving memory to the
    /// host's process-level cap.
    ///
    /// # Errors
    /// Limits the engine cannot work with (a stack too small to start, say); the guest exits.
    fn set_limits(&mut self, limits: &GuestLimits) -> Result<(), ErrorData> {
        let _ = limits;
        Ok(())
    }

    /// Creates container `cid` from `source`, with the host globals defined so far, and runs
    /// its top-level code.
    ///
    /// # Errors
    /// A syntax error ([`crate::ErrorKind::Syntax`]), or top-level code that threw.
    fn exec_container(
        &mut self,
        cid: ContainerId,
        source: &Source,
        options: &Value,
        globals: &[GlobalDef],
    ) -> Result<(), ErrorData>;

    /// Applies new options to a live container. The default accepts any options and ignores
    /// them.
    ///
    /// # Errors
    /// Options the runtime rejects.
    fn config_container(&mut self, cid: ContainerId, options: &Value) -> Result<(), ErrorData> {
        let _ = (cid, options);
        Ok(())
    }

    /// Calls export `export` of container `cid`. The answer goes to `reply` through
    /// [`Link::reply`], now or once a returned promise settles.
    fn call(&mut self, cid: ContainerId, export: &str, args: Vec<Value>, reply: ReplyTo);

    /// Destroys a container. Calls still pending on it must be answered (with
    /// [`crate::ErrorKind::NoSuchContainer`]) before this returns.
    fn kill_container(&mut self, cid: ContainerId);

    /// Adds host globals to every live container (later containers get them through
    /// [`AbstractRuntime::exec_container`]).
    ///
    /// # Errors
    /// A global the runtime cannot define (a path through a non-object, say).
    fn define_globals(&mut self, globals: &[GlobalDef]) -> Result<(), ErrorData>;

    /// The host answered host call `id`.
    fn host_call_settled(&mut self, id: HostCallId, result: Result<Value, ErrorData>);

    /// Runs what is ready: queued jobs (promise reactions) and due timers. Returns the next
    /// time something will be ready on its own (the earliest timer), or `None`.
    fn run_pending(&mut self, now: Instant) -> Option<Instant>;

    /// Sets (or clears, with `None`) the wall-time deadline for script code of container
    /// `cid`, which may not exist yet (the serve loop sets it before
    /// [`AbstractRuntime::exec_container`]). A runtime that can interrupt running script code
    /// stops it once `deadline.at` has passed, and answers the request it was running for with
    /// [`ErrorData::timeout`]; the container must stay usable. The serve loop itself answers
    /// requests whose promise is still pending at the deadline, so the default, which ignores
    /// deadlines, only leaves tight loops to the host's hard limit (killing the guest).
    fn set_deadline(&mut self, cid: ContainerId, deadline: Option<Deadline>) {
        let _ = (cid, deadline);
    }

    /// Sets (or clears) the CPU-time deadline for script code of container `cid`, like
    /// [`AbstractRuntime::set_deadline`]: a runtime that can interrupt script code checks
    /// [`CpuDeadline::passed`] from its interrupt hook and answers the request with
    /// [`ErrorData::cpu_time`]. The default ignores it; the serve loop still answers requests
    /// at the deadline between turns, and the host's hard limit holds for tight loops.
    fn set_cpu_deadline(&mut self, cid: ContainerId, deadline: Option<CpuDeadline>) {
        let _ = (cid, deadline);
    }

    /// The serve loop answered `reply` (a call on container `cid`) itself, because its
    /// deadline passed while its promise was pending. The runtime should forget it and return
    /// `true`; the default returns `false`, and the serve loop then drops the runtime's late
    /// answer itself.
    fn abandon_reply(&mut self, cid: ContainerId, reply: ReplyTo) -> bool {
        let _ = (cid, reply);
        false
    }

    /// `true` when container `cid` has nothing left to do: no timers, no queued jobs and no
    /// host calls awaiting an answer. Unknown containers are idle.
    fn is_idle(&self, cid: ContainerId) -> bool;
}

#[derive(Default)]
struct LinkInner {
    outgoing: RefCell<Vec<GuestMessage>>,
    next_call: Cell<HostCallId>,
    limits: Cell<GuestLimits>,
    /// What each container used of its per-call budgets.
    usage: RefCell<HashMap<ContainerId, Usage>>,
    /// Containers that went over a budget, with the error, until the serve loop takes them.
    tripped: RefCell<Vec<(ContainerId, ErrorData)>>,
    /// Host calls refused for going over the budget, to be failed back to the runtime.
    refused: RefCell<Vec<(HostCallId, ErrorData)>>,
}

/// What one container used of its per-call budgets since its last request.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    output: u64,
    host_calls: u32,
    /// Over a budget: later output is dropped and later host calls refused.
    over: bool,
}

/// A runtime's way to the host: a queue of outgoing messages the serve loop flushes.
///
/// Cheap to clone (an `Rc`); script callbacks keep clones. Not `Send`: a guest is one thread.
#[derive(Clone, Default)]
pub struct Link(Rc<LinkInner>);

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("queued", &self.0.outgoing.borrow().len())
            .finish()
    }
}

impl Link {
    /// A link with nothing queued.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a message.
    pub fn send(&self, msg: GuestMessage) {
        self.0.outgoing.borrow_mut().push(msg);
    }

    /// Answers the host request `to`.
    pub fn reply(&self, to: ReplyTo, result: Result<Reply, ErrorData>) {
        self.send(GuestMessage::Response { id: to.0, result });
    }

    /// Asks the host to run the global function at `path`; the answer arrives through
    /// [`AbstractRuntime::host_call_settled`] with the returned id.
    ///
    /// A call past the container's [`GuestLimits::host_calls`] budget is not sent: it is
    /// answered (through `host_call_settled`, on the serve loop's next turn) with a
    /// [`LimitKind::HostCalls`] error, and the container is [tripped](Link::tripped).
    pub fn call_host(&self, cid: ContainerId, path: Vec<String>, args: Vec<Value>) -> HostCallId {
        let id = self.0.next_call.get().wrapping_add(1);
        self.0.next_call.set(id);
        if let Some(max) = self.0.limits.get().host_calls {
            let over = self.charge(cid, |u| {
                u.host_calls = u.host_calls.saturating_add(1);
                u.host_calls > max
            });
            if over {
                let error = ErrorData::limit(
                    LimitKind::HostCalls,
                    format!("more than {max} host-function calls in one call"),
                );
                self.trip(cid, error.clone());
                self.0.refused.borrow_mut().push((id, error));
                return id;
            }
        }
        self.send(GuestMessage::Request {
            id,
            request: GuestRequest::HostCall { cid, path, args },
        });
        id
    }

    /// Forwards console output. Output past the container's [`GuestLimits::output_bytes`]
    /// budget is dropped (after one line saying so) and the container is
    /// [tripped](Link::tripped).
    pub fn log(&self, cid: ContainerId, level: LogLevel, message: String) {
        if let Some(max) = self.0.limits.get().output_bytes {
            let len = message.len() as u64;
            let mut first = false;
            let over = self.charge(cid, |u| {
                if u.over {
                    return true;
                }
                u.output = u.output.saturating_add(len);
                first = u.output > max;
                first
            });
            if over {
                if first {
                    self.send(GuestMessage::Log {
                        cid,
                        level: LogLevel::Error,
                        message: format!(
                            "[confine: console output limit of {max} bytes per call reached; \
                             further output dropped]"
                        ),
                    });
                    self.trip(
                        cid,
                        ErrorData::limit(
                            LimitKind::Output,
                            format!("more than {max} bytes of console output in one call"),
                        ),
                    );
                }
                return;
            }
        }
        self.send(GuestMessage::Log {
            cid,
            level,
            message,
        });
    }

    /// Sets the budgets [`Link::log`] and [`Link::call_host`] enforce (the serve loop does,
    /// after `Hello`).
    pub fn set_limits(&self, limits: GuestLimits) {
        self.0.limits.set(limits);
    }

    /// The budgets in force.
    pub fn limits(&self) -> GuestLimits {
        self.0.limits.get()
    }

    /// Starts a new call's budgets for container `cid` (the serve loop does, for each request
    /// into it).
    pub fn reset_usage(&self, cid: ContainerId) {
        self.0.usage.borrow_mut().remove(&cid);
    }

    /// Forgets container `cid` (killed).
    pub fn forget(&self, cid: ContainerId) {
        self.0.usage.borrow_mut().remove(&cid);
        self.0.tripped.borrow_mut().retain(|(c, _)| *c != cid);
    }

    /// The error container `cid` went over a budget with, while the serve loop has not yet
    /// failed its requests (cheap when no container is tripped).
    pub fn tripped(&self, cid: ContainerId) -> Option<ErrorData> {
        self.0
            .tripped
            .borrow()
            .iter()
            .find(|(c, _)| *c == cid)
            .map(|(_, e)| e.clone())
    }

    /// The error of the first limit container `cid` is past: its wall-time deadline, its
    /// CPU-time deadline, or a budget it went over ([`Link::tripped`]). A runtime asks from
    /// its interrupt hook and between promise jobs, to stop script code that keeps going.
    pub fn over_limit(
        &self,
        cid: ContainerId,
        wall: Option<Deadline>,
        cpu: Option<CpuDeadline>,
    ) -> Option<ErrorData> {
        if let Some(d) = wall.filter(|d| Instant::now() >= d.at) {
            return Some(ErrorData::timeout(d.limit));
        }
        if let Some(d) = cpu.filter(CpuDeadline::passed) {
            return Some(ErrorData::cpu_time(d.limit));
        }
        self.tripped(cid)
    }

    /// Takes the tripped containers (the serve loop, to fail their requests).
    pub fn take_tripped(&self) -> Vec<(ContainerId, ErrorData)> {
        std::mem::take(&mut *self.0.tripped.borrow_mut())
    }

    /// Takes the host calls refused for their budget (the serve loop, to fail them back).
    pub fn take_refused(&self) -> Vec<(HostCallId, ErrorData)> {
        std::mem::take(&mut *self.0.refused.borrow_mut())
    }

    fn charge(&self, cid: ContainerId, f: impl FnOnce(&mut Usage) -> bool) -> bool {
        let mut usage = self.0.usage.borrow_mut();
        let u = usage.entry(cid).or_default();
        let over = f(u);
        u.over |= over;
        over
    }

    fn trip(&self, cid: ContainerId, error: ErrorData) {
        let mut tripped = self.0.tripped.borrow_mut();
        if !tripped.iter().any(|(c, _)| *c == cid) {
            tripped.push((cid, error));
        }
    }

    /// Reports an error no request was waiting for.
    pub fn uncaught(&self, cid: ContainerId, error: ErrorData) {
        self.send(GuestMessage::Uncaught { cid, error });
    }

    /// Takes every queued message, oldest first.
    pub fn take_outgoing(&self) -> Vec<GuestMessage> {
        std::mem::take(&mut *self.0.outgoing.borrow_mut())
    }

    /// Moves every queued message onto the end of `into` (reusing its allocation).
    pub fn drain_into(&self, into: &mut Vec<GuestMessage>) {
        into.append(&mut self.0.outgoing.borrow_mut());
    }

    /// How many messages are queued.
    pub fn queued(&self) -> usize {
        self.0.outgoing.borrow().len()
    }
}

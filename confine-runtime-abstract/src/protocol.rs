//! The messages host and guest exchange, one per frame (see [`crate::codec`]).
//!
//! The conversation:
//!
//! 1. The host sends [`HostMessage::Hello`] with its protocol version, frame limit and, for a
//!    sandboxed guest, the [`Lockdown`] the guest must apply to itself.
//! 2. The guest applies the lockdown, then answers [`GuestMessage::Ready`] with its runtime's
//!    name and version, or exits. (A sandboxing host then checks from outside that the
//!    lockdown is in place before it sends any request.)
//! 3. From then on both sides send requests with ids they pick, and answer the other side's
//!    requests by id, in any order. Many requests are in flight at once in both directions:
//!    the host calls exports ([`HostRequest`]); scripts call host globals ([`GuestRequest`]).
//!
//! Container id `0` is the sandbox itself; real containers are numbered from `1`.

use crate::{error::ErrorData, value::Value};
use serde::{Deserialize, Serialize};

/// The version of this protocol. The guest refuses a host that speaks another one.
///
/// 2: `Hello` carries the [`Lockdown`].
/// 3: `Exec`, `Call` and `WaitIdle` carry a wall-time limit (`timeout_ms`).
/// 4: `Hello` carries the [`GuestLimits`]; `Exec` and `Call` a CPU-time limit (`cpu_ms`).
/// 5: `Exec` may name the new container's id (`cid`), to re-create containers after a restart.
pub const PROTOCOL_VERSION: u32 = 5;

/// The exit status of a guest whose process ran out of memory: an allocation failed against
/// the host's process-level cap. The host reports it as the memory limit, not as a crash.
pub const EXIT_OUT_OF_MEMORY: i32 = 73;

/// Identifies one request among those in flight in one direction.
pub type RequestId = u64;

/// Identifies one container inside a guest; `0` is never a container.
pub type ContainerId = u32;

/// Host → guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HostMessage {
    /// The first message on a new connection.
    Hello {
        /// The host's [`PROTOCOL_VERSION`].
        protocol_version: u32,
        /// The largest frame either side may send, in bytes.
        max_frame: u32,
        /// What the guest must do to itself before it answers `Ready`; `None` when the host
        /// runs it without a sandbox.
        lockdown: Option<Lockdown>,
        /// The budgets the guest enforces on its scripts.
        limits: GuestLimits,
    },
    /// A request the guest must answer with [`GuestMessage::Response`] and the same id.
    Request {
        /// Chosen by the host, unique among the host's requests in flight.
        id: RequestId,
        /// What to do.
        request: HostRequest,
    },
    /// The answer to a [`GuestMessage::Request`].
    Response {
        /// The id of the guest's request.
        id: RequestId,
        /// The host function's result.
        result: Result<Value, ErrorData>,
    },
}

/// The guest's second-stage self-restriction, prepared by the host.
///
/// The guest installs it after its engine is initialised and before it answers `Ready`, so no
/// untrusted byte is read without it. A guest that cannot install it exactly as given must
/// exit instead of answering `Ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lockdown {
    /// A classic-BPF seccomp program for `seccomp(SECCOMP_SET_MODE_FILTER)`: the bytes of a
    /// `struct sock_filter` array, 8 bytes per instruction: `code` (u16), `jt` (u8), `jf` (u8),
    /// `k` (u32), integers little-endian. At most `BPF_MAXINSNS` (4096) instructions.
    pub seccomp_filter: Vec<u8>,
}

/// Budgets a guest enforces on its scripts, sent in [`HostMessage::Hello`]. `None` is no
/// limit. A script that goes over one is stopped where the engine can stop it, and the
/// request it ran for fails with an [`crate::ErrorKind::Limit`] error naming the limit
/// ([`crate::LimitKind`]).
///
/// "Per call" counts from when the guest reads a request into a container (`Exec` or `Call`)
/// until the next such request into the same container: output or host calls made by timers
/// and promise jobs in between count against the call that started them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestLimits {
    /// Bytes the engine may allocate for script data, across all containers of the guest.
    /// Past it, allocation fails with a catchable out-of-memory error where the engine can
    /// do that (QuickJS); the host's process-level cap backs it everywhere.
    pub memory_bytes: Option<u64>,
    /// Native stack the engine may use for script recursion, in bytes.
    pub stack_bytes: Option<u32>,
    /// Console output bytes per call; output past it is dropped and the call fails.
    pub output_bytes: Option<u64>,
    /// Host-function calls per call; the call past it is refused and the call fails.
    pub host_calls: Option<u32>,
    /// Live containers per guest; an `Exec` past it fails.
    pub containers: Option<u32>,
}

/// What the host asks of a guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HostRequest {
    /// Create a container from source and run its top-level code. Answered with
    /// [`Reply::Container`].
    Exec {
        /// The id the new container must have, when the host re-creates a container after
        /// a restart; `None` lets the guest choose. The guest refuses an id that is in use,
        /// and never hands out an id it was asked for (so a container that failed to come
        /// back cannot have its id taken by a later one).
        cid: Option<ContainerId>,
        /// The container's code.
        source: Source,
        /// Runtime-specific options, kept with the container and shown by [`HostRequest::List`].
        options: Value,
        /// Wall-time limit for the top-level run, in milliseconds from when the guest reads
        /// the request; `None` for no limit. Past it the guest answers a
        /// [`crate::ErrorKind::Limit`] error named [`crate::TIMEOUT_ERROR_NAME`].
        timeout_ms: Option<u64>,
        /// CPU-time limit for the top-level run, in milliseconds of the guest thread's CPU
        /// time from when it reads the request; `None` for no limit. Past it the guest
        /// answers a [`crate::LimitKind::CpuTime`] error.
        cpu_ms: Option<u64>,
    },
    /// Change a container's runtime options. Answered with [`Reply::Unit`].
    Config {
        /// The container.
        cid: ContainerId,
        /// The new options.
        options: Value,
    },
    /// Call an export of a container. Answered with [`Reply::Value`] once the export returned
    /// (or, for a promise, once it settled).
    Call {
        /// The container.
        cid: ContainerId,
        /// The export's name.
        export: String,
        /// Its arguments.
        args: Vec<Value>,
        /// Wall-time limit, in milliseconds from when the guest reads the request, until the
        /// export returns or its promise settles; `None` for no limit. As in
        /// [`HostRequest::Exec`].
        timeout_ms: Option<u64>,
        /// CPU-time limit, in milliseconds, until the export returns or its promise settles;
        /// `None` for no limit. As in [`HostRequest::Exec`]: the guest's CPU time while the
        /// call is open counts, including time spent on other containers meanwhile.
        cpu_ms: Option<u64>,
    },
    /// List the live containers. Answered with [`Reply::Containers`].
    List,
    /// Destroy a container; its pending calls fail. Answered with [`Reply::Unit`].
    Kill {
        /// The container.
        cid: ContainerId,
    },
    /// Add host globals to every live container and every later one. Answered with
    /// [`Reply::Unit`].
    DefineGlobals {
        /// The globals to add.
        globals: Vec<GlobalDef>,
    },
    /// Answered with [`Reply::Unit`] once the container has nothing left to do: no timers,
    /// no queued jobs, no host calls awaiting an answer (like node exiting after a script).
    WaitIdle {
        /// The container.
        cid: ContainerId,
        /// Wall-time limit for the wait, in milliseconds; `None` for no limit. As in
        /// [`HostRequest::Exec`].
        timeout_ms: Option<u64>,
    },
}

/// A container's source code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The code (empty for a binary source).
    pub code: String,
    /// A name for stack traces and error locations (a file name, usually).
    pub name: String,
    /// A binary module (a WebAssembly module, for the `wasm` runtime) instead of text. A
    /// runtime that only runs text refuses a source that has one with
    /// [`crate::ErrorKind::Unsupported`], rather than running the empty `code`.
    pub binary: Option<Vec<u8>>,
}

impl Source {
    /// Source text named `name`.
    pub fn text(code: impl Into<String>, name: impl Into<String>) -> Self {
        Source {
            code: code.into(),
            name: name.into(),
            binary: None,
        }
    }

    /// A binary module named `name`.
    pub fn binary(bytes: impl Into<Vec<u8>>, name: impl Into<String>) -> Self {
        Source {
            code: String::new(),
            name: name.into(),
            binary: Some(bytes.into()),
        }
    }
}

/// The successful answer to a [`HostRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// Nothing to return.
    Unit,
    /// A call's result.
    Value(Value),
    /// The id of a new container.
    Container(ContainerId),
    /// The live containers.
    Containers(Vec<ContainerInfo>),
}

/// One live container, as [`HostRequest::List`] reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerInfo {
    /// Its id.
    pub cid: ContainerId,
    /// The name its source was given.
    pub name: String,
    /// Its current options.
    pub options: Value,
}

/// A host global as the guest sees it: a path and what lives there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalDef {
    /// The property path from the global object, e.g. `["robot", "sayHello"]`.
    pub path: Vec<String>,
    /// What the path holds.
    pub kind: GlobalKind,
}

/// What a [`GlobalDef`] holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GlobalKind {
    /// An async function: calling it sends [`GuestRequest::HostCall`] and returns a promise.
    Function,
    /// A plain value, copied into each container.
    Value(Value),
}

/// Guest → host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GuestMessage {
    /// The answer to [`HostMessage::Hello`]: the guest is initialised and locked down.
    Ready {
        /// The guest's [`PROTOCOL_VERSION`].
        protocol_version: u32,
        /// The runtime's name (`quickjs`, ...).
        runtime: String,
        /// The runtime's version, for reports.
        version: String,
    },
    /// The answer to a [`HostMessage::Request`].
    Response {
        /// The host's request id.
        id: RequestId,
        /// The outcome.
        result: Result<Reply, ErrorData>,
    },
    /// A request the host must answer with [`HostMessage::Response`].
    Request {
        /// Chosen by the guest, unique among the guest's requests in flight.
        id: RequestId,
        /// What to do.
        request: GuestRequest,
    },
    /// Console output from a container.
    Log {
        /// The container that logged (`0` for the guest itself).
        cid: ContainerId,
        /// `console.log` and friends.
        level: LogLevel,
        /// The formatted message.
        message: String,
    },
    /// An error no request was waiting for: an exception in a timer callback, or a promise
    /// rejection nobody handled.
    Uncaught {
        /// The container it happened in.
        cid: ContainerId,
        /// The error.
        error: ErrorData,
    },
}

/// What a guest asks of the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GuestRequest {
    /// Call the host global function at `path` on behalf of container `cid`.
    HostCall {
        /// The calling container.
        cid: ContainerId,
        /// The function's path, as in [`GlobalDef::path`].
        path: Vec<String>,
        /// Its arguments.
        args: Vec<Value>,
    },
}

/// The console method a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LogLevel {
    /// `console.debug`
    Debug,
    /// `console.log`
    Log,
    /// `console.info`
    Info,
    /// `console.warn`
    Warn,
    /// `console.error`
    Error,
}

impl LogLevel {
    /// `true` for levels a CLI prints to stderr (`warn`, `error`).
    pub fn is_stderr(self) -> bool {
        matches!(self, LogLevel::Warn | LogLevel::Error)
    }

    /// The console method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Log => "log",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

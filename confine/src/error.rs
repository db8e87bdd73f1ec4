//! confine's error type.

use crate::platform::{SandboxError, SpawnStep};
use confine_runtime_abstract::{codec::CodecError, ContainerId, ErrorData, ErrorKind, LimitKind};
use std::{fmt, io, path::PathBuf};
use thiserror::Error;

/// A specialised `Result` for confine operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong between a [`crate::Sandbox`] and its guest.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// No guest executable was found for a runtime name.
    #[error(
        "no guest executable for runtime `{name}`; looked in: {}. {hint}",
        searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    RuntimeNotFound {
        /// The runtime name asked for.
        name: String,
        /// Every place that was tried, in order.
        searched: Vec<PathBuf>,
        /// How to make it available.
        hint: String,
    },
    /// The platform sandbox could not be prepared (a missing layer in strict mode, a policy
    /// that does not compile).
    #[error("cannot set up the sandbox: {0}")]
    Sandbox(#[from] SandboxError),
    /// A step between fork and exec failed in the child.
    #[error("guest launch failed at step `{step}`: {source}")]
    SpawnStep {
        /// The step that failed.
        step: SpawnStep,
        /// The errno it failed with.
        #[source]
        source: io::Error,
    },
    /// Starting the guest process failed for an OS reason (fork, socketpair, exec).
    #[error("cannot start the guest process ({what}): {source}")]
    Spawn {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The guest did not become ready within the startup deadline.
    #[error("guest did not become ready within {0:?}")]
    StartupTimeout(std::time::Duration),
    /// The guest broke the protocol (garbage frames, unknown ids, wrong version). The guest
    /// has been terminated.
    #[error("guest broke the protocol: {0}")]
    Protocol(#[source] std::sync::Arc<ProtocolError>),
    /// The guest process ended (or was killed) while the request was pending, or before it
    /// was made.
    #[error("guest process exited ({0})")]
    GuestExited(ExitInfo),
    /// Script code threw, or failed to parse. Carries the script's error name, message and
    /// stack.
    #[error("{}", ScriptErrorDisplay(.0))]
    Script(Box<ErrorData>),
    /// The container has no export by that name (or it is not a function).
    #[error("container {cid} has no export `{export}`")]
    NoSuchExport {
        /// The container.
        cid: ContainerId,
        /// The export's name.
        export: String,
    },
    /// The container id is unknown: never created, or killed.
    #[error("no container {cid}: {message}")]
    NoSuchContainer {
        /// The container id.
        cid: ContainerId,
        /// The guest's explanation.
        message: String,
    },
    /// A limit was hit.
    #[error("limit exceeded ({limit}): {message}")]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// What happened.
        message: String,
    },
    /// The guest runtime refused or failed a request in a way not covered above.
    #[error("guest runtime error: {0}")]
    Runtime(Box<ErrorData>),
    /// A value could not be converted to or from the type asked for.
    #[error("value conversion failed: {0}")]
    Value(#[from] confine_runtime_abstract::ValueError),
    /// Reading a source file failed.
    #[error("cannot read {path}: {source}")]
    ReadSource {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The sandbox was torn down; no more requests are accepted.
    #[error("sandbox was torn down")]
    TornDown,
    /// An argument from the caller was not acceptable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Which limit an [`Error::LimitExceeded`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// The maximum frame size (a message too large to send or receive).
    FrameSize,
    /// An engine limit with no variant of its own (Boa's loop-iteration limit).
    Engine,
    /// A wall-time limit ([`crate::SandboxOptions::call_timeout`] or a per-request one):
    /// the guest stopped the script itself, or, if it did not answer within
    /// [`crate::SandboxOptions::kill_grace`] after the limit, the host killed it.
    WallTime,
    /// A CPU-time limit ([`crate::Limits::cpu_time`] or a per-call one).
    CpuTime,
    /// The average CPU-usage cap ([`crate::Limits::cpu_percent`]); the guest was killed.
    CpuPercent,
    /// The memory limit ([`crate::Limits::memory`]): the engine refused an allocation, or
    /// the guest process hit its cap and exited.
    Memory,
    /// The script's stack (recursion depth) where the engine cannot make it a catchable
    /// error (Boa).
    Stack,
    /// Console output per call ([`crate::Limits::output`]).
    Output,
    /// Host-function calls per call ([`crate::Limits::host_calls`]).
    HostCalls,
    /// Live containers per guest ([`crate::Limits::containers`]).
    Containers,
    /// Requests in flight ([`crate::Limits::in_flight`]).
    InFlight,
}

impl From<LimitKind> for Limit {
    fn from(kind: LimitKind) -> Self {
        match kind {
            LimitKind::WallTime => Limit::WallTime,
            LimitKind::CpuTime => Limit::CpuTime,
            LimitKind::Memory => Limit::Memory,
            LimitKind::Stack => Limit::Stack,
            LimitKind::Output => Limit::Output,
            LimitKind::HostCalls => Limit::HostCalls,
            LimitKind::Containers => Limit::Containers,
            // A kind added later than this host knows of.
            _ => Limit::Engine,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::FrameSize => "frame size",
            Limit::Engine => "engine",
            Limit::WallTime => "wall time",
            Limit::CpuTime => "CPU time",
            Limit::CpuPercent => "CPU percent",
            Limit::Memory => "memory",
            Limit::Stack => "stack",
            Limit::Output => "console output",
            Limit::HostCalls => "host calls",
            Limit::Containers => "containers",
            Limit::InFlight => "calls in flight",
        })
    }
}

struct ScriptErrorDisplay<'a>(&'a ErrorData);

impl fmt::Display for ScriptErrorDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.0, f)
    }
}

/// The guest broke the protocol.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame could not be decoded, or was over the limit.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The guest answered a request id the host never sent (or already had an answer for).
    #[error("response for unknown request id {0}")]
    UnknownResponse(u64),
    /// The guest's reply did not fit the request (a list where a value was due, ...).
    #[error("unexpected reply to {request}")]
    UnexpectedReply {
        /// The request kind.
        request: &'static str,
    },
    /// The guest speaks another protocol version.
    #[error("guest speaks protocol version {guest}, host speaks {host}")]
    Version {
        /// The guest's.
        guest: u32,
        /// Ours.
        host: u32,
    },
    /// A message arrived out of order (a second `Ready`, or something before `Ready`).
    #[error("unexpected message: {0}")]
    Unexpected(&'static str),
    /// The guest closed the connection before saying `Ready` (and did not exit).
    #[error("connection closed before Ready")]
    ClosedBeforeReady,
    /// The guest closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// Reading from the guest failed.
    #[error("reading from the guest failed: {0}")]
    Io(#[from] io::Error),
    /// The guest called a host function that was never defined.
    #[error("guest called undefined host function `{0}`")]
    UnknownGlobal(String),
}

/// How a guest process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExitInfo {
    /// The exit code, if it exited.
    pub code: Option<i32>,
    /// The signal, if one killed it.
    pub signal: Option<i32>,
}

impl ExitInfo {
    pub(crate) fn from_status(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        ExitInfo {
            code: status.code(),
            signal: status.signal(),
        }
    }

    /// `true` if the guest exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit code {c}"),
            (None, Some(s)) => write!(f, "killed by signal {s} ({})", signal_name(s)),
            (None, None) => f.write_str("status unknown"),
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGSYS => "SIGSYS",
        libc::SIGTERM => "SIGTERM",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => "signal",
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(std::sync::Arc::new(e))
    }
}

impl Error {
    /// Maps an error the guest reported for container `cid` to the matching variant.
    pub(crate) fn from_guest(cid: ContainerId, export: Option<&str>, e: ErrorData) -> Self {
        match e.kind {
            ErrorKind::Syntax | ErrorKind::Thrown | ErrorKind::HostFunction => {
                Error::Script(Box::new(e))
            }
            ErrorKind::NoSuchExport => Error::NoSuchExport {
                cid,
                export: export.unwrap_or_default().to_owned(),
            },
            ErrorKind::NoSuchContainer => Error::NoSuchContainer {
                cid,
                message: e.message,
            },
            ErrorKind::Limit => Error::LimitExceeded {
                limit: e.limit_kind().map_or(Limit::Engine, Limit::from),
                message: e.message,
            },
            ErrorKind::FrameSize => Error::LimitExceeded {
                limit: Limit::FrameSize,
                message: e.message,
            },
            _ => Error::Runtime(Box::new(e)),
        }
    }

    /// The script's error (name, message, stack), for [`Error::Script`].
    pub fn script_error(&self) -> Option<&ErrorData> {
        match self {
            Error::Script(e) => Some(e),
            _ => None,
        }
    }
}

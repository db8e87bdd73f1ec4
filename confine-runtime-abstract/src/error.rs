//! Errors that cross the host/guest boundary as data.
//!
//! A guest never sends a Rust error to the host: it sends an [`ErrorData`], which the host turns
//! into its own typed error. The [`ErrorKind`] says *what* went wrong so the host can map it to a
//! variant without parsing messages.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of failure an [`ErrorData`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The source could not be parsed (a JS `SyntaxError` at load time).
    Syntax,
    /// Script code threw (or a promise rejected) while running.
    Thrown,
    /// The requested export does not exist on the container, or is not callable.
    NoSuchExport,
    /// The container id is unknown or the container was killed.
    NoSuchContainer,
    /// The request was well formed but its arguments were not acceptable.
    InvalidRequest,
    /// A host function failed; the message is the host's.
    HostFunction,
    /// A value could not be converted between the engine and [`crate::Value`].
    Conversion,
    /// The runtime does not support this operation.
    Unsupported,
    /// A limit inside the guest was hit (stack, memory, time).
    Limit,
    /// A message was larger than the frame limit agreed at the handshake.
    FrameSize,
    /// Anything else: a bug or an engine failure.
    Internal,
}

impl ErrorKind {
    /// A short lowercase label, stable across versions, for logs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "syntax error",
            ErrorKind::Thrown => "uncaught exception",
            ErrorKind::NoSuchExport => "no such export",
            ErrorKind::NoSuchContainer => "no such container",
            ErrorKind::InvalidRequest => "invalid request",
            ErrorKind::HostFunction => "host function failed",
            ErrorKind::Conversion => "value conversion failed",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Limit => "limit exceeded",
            ErrorKind::FrameSize => "frame too large",
            ErrorKind::Internal => "internal error",
        }
    }
}

/// The [`ErrorData::name`] of an [`ErrorKind::Limit`] error that reports a wall-time limit
/// (the host maps it to its own wall-time limit error).
pub const TIMEOUT_ERROR_NAME: &str = "TimeoutError";

/// Which limit an [`ErrorKind::Limit`] error reports, told apart by the error's name so the
/// wire format stays the same for every limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitKind {
    /// Wall time of a call or a top-level run.
    WallTime,
    /// CPU time of a call or a top-level run.
    CpuTime,
    /// The guest's memory budget.
    Memory,
    /// The script's stack (recursion depth).
    Stack,
    /// Console output bytes per call.
    Output,
    /// Host-function calls per call.
    HostCalls,
    /// Live containers per guest.
    Containers,
}

impl LimitKind {
    /// Every limit kind.
    pub const ALL: [LimitKind; 7] = [
        LimitKind::WallTime,
        LimitKind::CpuTime,
        LimitKind::Memory,
        LimitKind::Stack,
        LimitKind::Output,
        LimitKind::HostCalls,
        LimitKind::Containers,
    ];

    /// The [`ErrorData::name`] of an error reporting this limit. A script that catches a
    /// limit error (a refused host call, say) sees this name.
    pub fn error_name(self) -> &'static str {
        match self {
            LimitKind::WallTime => TIMEOUT_ERROR_NAME,
            LimitKind::CpuTime => "CpuTimeLimitError",
            LimitKind::Memory => "MemoryLimitError",
            LimitKind::Stack => "StackLimitError",
            LimitKind::Output => "OutputLimitError",
            LimitKind::HostCalls => "HostCallLimitError",
            LimitKind::Containers => "ContainerLimitError",
        }
    }
}

/// Where in a source an error happened (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// The file or source name the engine reported.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, when the engine reports one.
    pub column: Option<u32>,
}

/// An error as it crosses the wire: a kind plus the script's own name, message and stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorData {
    /// What kind of failure this is.
    pub kind: ErrorKind,
    /// The error's name as the script sees it (`TypeError`, `SyntaxError`, ...), or a short tag.
    pub name: String,
    /// The human-readable message.
    pub message: String,
    /// The script stack trace, when there is one.
    pub stack: Option<String>,
    /// Where the error happened, when the engine says.
    pub location: Option<Location>,
}

impl ErrorData {
    /// An error of `kind` with a name and message and nothing else.
    pub fn new(kind: ErrorKind, name: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorData {
            kind,
            name: name.into(),
            message: message.into(),
            stack: None,
            location: None,
        }
    }

    /// Shorthand for an [`ErrorKind::Internal`] error named `Error`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "Error", message)
    }

    /// A wall-time limit of `limit` passed: [`ErrorKind::Limit`], named
    /// [`TIMEOUT_ERROR_NAME`].
    pub fn timeout(limit: std::time::Duration) -> Self {
        Self::new(
            ErrorKind::Limit,
            TIMEOUT_ERROR_NAME,
            format!("wall-time limit of {} ms exceeded", limit.as_millis()),
        )
    }

    /// `true` for an error made by [`ErrorData::timeout`].
    pub fn is_timeout(&self) -> bool {
        self.limit_kind() == Some(LimitKind::WallTime)
    }

    /// Limit `kind` was hit: [`ErrorKind::Limit`], named [`LimitKind::error_name`].
    pub fn limit(kind: LimitKind, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Limit, kind.error_name(), message)
    }

    /// A CPU-time limit of `limit` was used up: [`ErrorData::limit`] with
    /// [`LimitKind::CpuTime`].
    pub fn cpu_time(limit: std::time::Duration) -> Self {
        Self::limit(
            LimitKind::CpuTime,
            format!("CPU-time limit of {} ms exceeded", limit.as_millis()),
        )
    }

    /// Which limit this error reports, for an [`ErrorKind::Limit`] error with one of the
    /// [`LimitKind::error_name`]s.
    pub fn limit_kind(&self) -> Option<LimitKind> {
        if self.kind != ErrorKind::Limit {
            return None;
        }
        LimitKind::ALL
            .into_iter()
            .find(|k| k.error_name() == self.name)
    }

    /// Shorthand for an [`ErrorKind::InvalidRequest`] error named `TypeError`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, "TypeError", message)
    }
}

impl fmt::Display for ErrorData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.message)?;
        if let Some(loc) = &self.location {
            write!(f, " (at {}:{}", loc.file, loc.line)?;
            if let Some(c) = loc.column {
                write!(f, ":{c}")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

impl std::error::Error for ErrorData {}

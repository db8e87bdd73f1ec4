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
        self.kind == ErrorKind::Limit && self.name == TIMEOUT_ERROR_NAME
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

//! What a confine host and every confine guest share.
//!
//! * [`AbstractRuntime`]: the trait an engine implements to become a confine runtime;
//! * [`Value`]: the data that crosses the boundary, with serde and `serde_json` conversions;
//! * [`protocol`]: the messages, and [`codec`]: how they are framed on the socket;
//! * [`ErrorData`]: errors as data.
//!
//! This crate has no async runtime and no engine. A third-party runtime depends on it and on
//! `confine-guest`, and its guest executable is one line:
//!
//! ```ignore
//! fn main() { confine_guest::serve(MyRuntime::default()) }
//! ```
#![deny(missing_docs)]

pub mod codec;
pub mod error;
pub mod protocol;
pub mod runtime;
pub mod support;
pub mod value;

pub use error::{ErrorData, ErrorKind, LimitKind, Location, TIMEOUT_ERROR_NAME};
pub use protocol::{ContainerId, GuestLimits, RequestId, PROTOCOL_VERSION};
pub use runtime::{
    AbstractRuntime, CpuDeadline, Deadline, HostCallId, Link, ReplyTo, RuntimeInfo, JIT_CACHE_DIR,
};
pub use value::{from_value, to_value, Map, Value, ValueError};

//! Run untrusted JavaScript (and, later, WebAssembly) in OS-sandboxed guest processes.
//!
//! ```no_run
//! use confine::{ContainerSource, HostError, Sandbox};
//!
//! # async fn f() -> confine::Result<()> {
//! // One guest process, locked down by the OS before it reads a byte of the script.
//! let sandbox = Sandbox::builder()
//!     .function("whoami", |(): ()| async { Ok::<_, HostError>("Bob") })
//!     .value("robot.name", "Robbie")
//!     .build()
//!     .await?;
//!
//! // A container is an isolated realm inside the guest.
//! let cid = sandbox
//!     .exec_container(ContainerSource::code(
//!         "module.exports.hello = async (n) => `hi ${await whoami()}, I am ${robot.name} #${n}`",
//!     ))
//!     .await?;
//! let s: String = sandbox.call(cid, "hello", (7,)).await?;
//! assert_eq!(s, "hi Bob, I am Robbie #7");
//! sandbox.teardown().await?;
//! # Ok(()) }
//! ```
//!
//! # Core concepts
//!
//! * [`Sandbox`]: one guest process. Starting one resolves the runtime name through the
//!   [`Registry`], prepares the platform sandbox (Landlock + seccomp + rlimits on Linux),
//!   spawns the guest with a socket on fd 3, and waits for it to say `Ready`. Costs a process
//!   spawn (a few milliseconds); lives until [`Sandbox::teardown`] or drop.
//! * *Containers*: isolated realms inside a guest, made by [`Sandbox::exec_container`] from a
//!   [`ContainerSource`]. Cheap (a fresh engine context, well under a millisecond). Their
//!   globals, prototypes and module state are separate.
//! * [`Globals`]: host functions (async Rust closures) and values that scripts see as
//!   globals, possibly namespaced (`robot.sayHello()`), defined at start or later.
//! * [`SandboxOptions`]: plain data describing a sandbox, with documented defaults; the
//!   [`SandboxBuilder`] fills it.
//! * [`IsolationReport`]: what the platform sandbox enforces for a guest, per protection.
//! * [`Value`]: what crosses the boundary; any `serde` type converts to and from it.
//!
//! Many requests can be in flight at once in both directions: the host may have hundreds of
//! calls pending on one guest, and an export may await a host function while the host calls
//! another export.
//!
//! # Errors
//!
//! Every failure is an [`Error`] variant: a script's exception ([`Error::Script`], with name,
//! message and stack), a missing export or container, a guest that died
//! ([`Error::GuestExited`], with exit code or signal) or broke the protocol
//! ([`Error::Protocol`]; it is killed), a sandbox that could not be set up. A misbehaving
//! guest never panics or hangs the host.
//!
//! # Features
//!
//! * `quickjs` (default): the QuickJS runtime, embedded so the executable can serve as its
//!   own guest (see [`guest`]).
//!
//! # Caveats
//!
//! * Dropping a [`Sandbox`] kills its guest with SIGKILL; [`Sandbox::teardown`] lets it exit
//!   cleanly and reports the status.
//! * Guests are found by runtime name (see [`registry`]); a program that embeds confine
//!   either ships the `confine-guest-<name>` executables beside itself or calls
//!   [`guest::run_if_requested`] first thing in `main`.
#![deny(missing_docs)]
#![warn(unreachable_pub)]

mod conn;
mod container;
mod error;
mod events;
mod globals;
pub mod guest;
mod launcher;
pub mod limits;
mod options;
mod platform;
pub mod registry;
pub mod report;
pub mod restart;
mod sandbox;
mod writer;

pub use confine_runtime_abstract::{
    from_value,
    protocol::{ContainerInfo, LogLevel},
    to_value, ContainerId, ErrorData, ErrorKind, Map, Value, ValueError,
};
pub use container::ContainerSource;
pub use error::{Error, ExitInfo, Limit, ProtocolError, Result};
pub use events::{Event, Events};
pub use globals::{Globals, HostError};
pub use limits::{CallLimits, CpuPercent, Limits};
pub use options::{ConsoleHandler, Output, SandboxOptions};
#[cfg(target_os = "linux")]
pub use platform::FilterError;
pub use platform::{SandboxError, SpawnStep};
pub use registry::Registry;
pub use report::{IsolationReport, Protection, ProtectionStatus};
pub use restart::RestartPolicy;
pub use sandbox::{Sandbox, SandboxBuilder};

/// The runtime used when none is named.
pub const DEFAULT_RUNTIME: &str = "quickjs";

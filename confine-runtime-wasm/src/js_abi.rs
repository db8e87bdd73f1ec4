//! The private ABI between the `wasm` runtime and its JavaScript plugin (`js-plugin/`).
//!
//! This one file is compiled into both: into the runtime as a module, and into the plugin
//! (built for `wasm32-wasip1`) through `#[path]`. Both sides therefore agree on the types by
//! construction; [`VERSION`] guards against a plugin built from another revision.
//!
//! The plugin runs confine's own QuickJS runtime (`confine-runtime-quickjs`) for exactly one
//! container, and exports:
//!
//! * `confine_alloc(len: i32) -> i32`: a buffer of `len` bytes the runtime fills;
//! * `confine_free(ptr: i32, len: i32)`: frees a buffer the plugin returned;
//! * `confine_js_version() -> i32`: [`VERSION`];
//! * `confine_js_init()`: makes the QuickJS runtime and context of the container to come;
//!   the runtime calls it once and snapshots the instance (`snapshot.rs`), and the snapshot
//!   no longer exports it;
//! * `confine_js_dispatch(ptr: i32, len: i32) -> i64`: takes a [`Request`] (one protocol
//!   frame: bincode, in a buffer from `confine_alloc`, which the plugin owns from then on),
//!   sets the request's deadline, runs its command **and then the container's pending work**
//!   (promise jobs, due timers), and returns `(ptr << 32) | len` of an [`Answer`] frame the
//!   runtime copies and frees.
//!
//! Nothing in a dispatch waits: a host function called by script code becomes a
//! [`GuestMessage::Request`] in the answer, and the host's result comes back later as
//! [`Command::Settle`], exactly as the native runtime's `Link` and `host_call_settled` work.
//! Times cross as durations from "now", because the two sides have different clocks.

use confine_runtime_abstract::{
    protocol::{GlobalDef, GuestMessage, Source},
    ContainerId, ErrorData, GuestLimits, HostCallId, RequestId, Value,
};
use serde::{Deserialize, Serialize};

/// The version of this ABI; the plugin reports it through `confine_js_version`.
pub const VERSION: i32 = 2;

/// Export names.
pub const DISPATCH: &str = "confine_js_dispatch";
/// See the module docs.
pub const VERSION_EXPORT: &str = "confine_js_version";
/// See the module docs.
pub const INIT: &str = "confine_js_init";

/// A wall-time limit, as the time left and the limit it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remaining {
    /// Nanoseconds from now until the deadline (0 if already passed).
    pub nanos: u64,
    /// The limit, in nanoseconds, for the error message.
    pub limit_nanos: u64,
}

/// One dispatch: the deadlines in force for script code (the earliest of the container's
/// requests, or its own time limit; the CPU time left) and what to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// When script code must stop; `None` for no limit.
    pub deadline: Option<Remaining>,
    /// CPU time script code may still use, measured by the runtime on the guest thread's CPU
    /// clock when it sends the request. The plugin holds script code to it as wall time for
    /// this dispatch (nothing in a dispatch waits, so the two only drift apart when the
    /// guest is descheduled) and reports it as the CPU-time limit; `None` for no limit.
    pub cpu: Option<Remaining>,
    /// What to do.
    pub command: Command,
}

/// What the runtime asks of the plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Creates the container and runs its top-level code.
    Exec {
        /// The container's id (used in the messages the plugin sends).
        cid: ContainerId,
        /// The JavaScript source.
        source: Source,
        /// The container's options.
        options: Value,
        /// The host globals defined so far.
        globals: Vec<GlobalDef>,
        /// The guest's limits: the plugin's `Link` enforces the per-call budgets (console
        /// output, host calls) inside the dispatch, where script code can be stopped, with
        /// each `Exec` and `Call` starting a new call's budgets as in the serve loop.
        limits: GuestLimits,
    },
    /// Calls an export; the answer is a [`GuestMessage::Response`] with id `reply`, in this
    /// answer or a later one.
    Call {
        /// The export's name.
        export: String,
        /// Its arguments.
        args: Vec<Value>,
        /// The host's request id.
        reply: RequestId,
    },
    /// Defines more host globals.
    DefineGlobals(Vec<GlobalDef>),
    /// The host answered host call `id` (the id the plugin chose).
    Settle {
        /// The plugin's host call id.
        id: HostCallId,
        /// The answer.
        result: Result<Value, ErrorData>,
    },
    /// Forgets a pending call the runtime answered itself.
    Abandon(RequestId),
    /// Only runs pending work (due timers, jobs).
    RunPending,
}

/// What the plugin answers to every [`Command`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The command's own outcome: an exec's error; `Ok` for the others, whose errors travel
    /// as messages.
    pub result: Result<(), ErrorData>,
    /// For [`Command::Abandon`]: whether the plugin knew the call.
    pub abandoned: bool,
    /// Messages for the host, in order: responses, host calls (with the plugin's ids), logs,
    /// uncaught errors.
    pub messages: Vec<GuestMessage>,
    /// Nanoseconds from now until the container has work again on its own (a timer), if it
    /// has any.
    pub next_nanos: Option<u64>,
    /// No timers, no jobs, no host calls outstanding.
    pub idle: bool,
}

/// Largest encoded command or answer (the protocol's frame limit is the real bound; this only
/// keeps a broken plugin from making the runtime allocate without end).
pub const MAX_BYTES: u32 = 256 << 20;

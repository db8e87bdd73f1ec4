//! The guest side of confine.
//!
//! A guest executable is a process the confine host starts for one sandbox. It inherits a
//! connected socket on fd 3, initialises its engine, installs the stage-2 seccomp filter the
//! host sends in `Hello` ([`lockdown`]), answers with `Ready`, and then serves requests until
//! the host hangs up. [`serve`] is that whole `main`:
//!
//! ```ignore
//! fn main() {
//!     confine_guest::serve(MyRuntime::default())
//! }
//! ```
//!
//! The loop ([`serve_fd`]) is single-threaded: it `poll`s the socket with a timeout set by the
//! runtime's next timer, decodes frames, drives the [`AbstractRuntime`], and flushes what the
//! runtime queued on its [`confine_runtime_abstract::Link`] before it sleeps again. Outgoing
//! messages are batched into one `write` per loop turn, which is what makes many calls in
//! flight cheap.
#![deny(missing_docs)]

mod alloc;
pub mod lockdown;
mod serve;
mod socket;

pub use alloc::GuestAllocator;
pub use confine_runtime_abstract::protocol::EXIT_OUT_OF_MEMORY;
pub use serve::{serve_fd, ServeError};

use confine_runtime_abstract::AbstractRuntime;
use std::os::fd::RawFd;

/// The fd a guest finds its host connection on.
pub const IPC_FD: RawFd = 3;

/// Exit status when the host broke the protocol (garbage frames, wrong version).
pub const EXIT_PROTOCOL: i32 = 70;
/// Exit status when fd 3 is not a socket (the executable was started by hand).
pub const EXIT_USAGE: i32 = 64;
/// Exit status when the engine could not start.
pub const EXIT_INIT: i32 = 71;
/// Exit status when writing to or reading from the host failed.
pub const EXIT_IO: i32 = 74;
/// Exit status when the host's lockdown (the stage-2 seccomp filter sent in `Hello`) was
/// malformed or the kernel refused it. The guest exits before answering `Ready`, so it never
/// runs unrestricted code.
pub const EXIT_LOCKDOWN: i32 = 72;

/// Runs `runtime` as a guest on the inherited socket (fd 3) and exits the process.
///
/// Exits with 0 when the host closes the connection, or with one of the `EXIT_*` codes.
/// Started by hand (fd 3 is not a socket), it prints what it is and exits with
/// [`EXIT_USAGE`]. With `--version` it prints the runtime's name and version; with
/// `--prepare` it runs [`AbstractRuntime::prepare_offline`] (the host does, once per guest
/// executable, before its first sandboxed start) and exits with 0 or [`EXIT_INIT`].
pub fn serve<R: AbstractRuntime>(mut runtime: R) -> ! {
    let info = runtime.info();
    if std::env::args().any(|a| a == "--version") {
        println!("confine guest for {} ({})", info.name, info.version);
        std::process::exit(0);
    }
    if std::env::args().any(|a| a == "--prepare") {
        match runtime.prepare_offline() {
            Ok(()) => std::process::exit(0),
            Err(e) => {
                eprintln!("confine guest ({}): prepare: {e}", info.name);
                std::process::exit(EXIT_INIT);
            }
        }
    }
    if !socket::is_socket(IPC_FD) {
        eprintln!(
            "this is the confine guest executable for the `{}` runtime; the confine host starts it \
             with a socket on fd 3. Run scripts with `confine run FILE` instead.",
            info.name
        );
        std::process::exit(EXIT_USAGE);
    }
    let code = match serve_fd(runtime, IPC_FD) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("confine guest ({}): {e}", info.name);
            e.exit_code()
        }
    };
    std::process::exit(code)
}

//! Guest mode: letting the host's own executable serve as a guest.
//!
//! A program that embeds runtimes (crate features) can be its own guest executable: call
//! [`run_if_requested`] first thing in `main`. When the process was started as
//! `EXE --confine-guest NAME`, it serves runtime `NAME` on fd 3 and exits; otherwise it
//! returns at once and tells the [`crate::Registry`] that self-exec is available.
//!
//! ```no_run
//! // First thing in `main`:
//! confine::guest::run_if_requested();
//! // ... then the application, which creates sandboxes ...
//! ```

use std::sync::atomic::{AtomicBool, Ordering};

static SELF_EXEC_READY: AtomicBool = AtomicBool::new(false);

/// Runtime names compiled into this build (crate features).
pub(crate) const EMBEDDED: &[&str] = &[
    #[cfg(feature = "quickjs")]
    "quickjs",
    #[cfg(feature = "wasm")]
    "wasm",
    #[cfg(feature = "boa")]
    "boa",
];

pub(crate) fn self_exec_ready() -> bool {
    SELF_EXEC_READY.load(Ordering::Relaxed)
}

/// Serves as a guest if this process was started as one, otherwise returns.
///
/// Must run before anything else in `main` (no threads, no async runtime yet): in guest mode
/// the process is about to be locked down and must hold nothing but the engine.
pub fn run_if_requested() {
    let mut args = std::env::args_os().skip(1);
    if args
        .next()
        .is_some_and(|a| a == crate::registry::GUEST_FLAG)
    {
        let name = args.next().map(|n| n.to_string_lossy().into_owned());
        serve(name.as_deref().unwrap_or(""));
    }
    SELF_EXEC_READY.store(true, Ordering::Relaxed);
}

fn serve(name: &str) -> ! {
    match name {
        #[cfg(feature = "quickjs")]
        "quickjs" => confine_guest::serve(confine_runtime_quickjs::QuickJs::default()),
        #[cfg(feature = "wasm")]
        "wasm" => confine_guest::serve(confine_runtime_wasm::Wasm::default()),
        #[cfg(feature = "boa")]
        "boa" => confine_guest::serve(confine_runtime_boa::Boa::default()),
        _ => {
            eprintln!(
                "confine: runtime `{name}` is not embedded in this executable (embedded: {:?})",
                EMBEDDED
            );
            std::process::exit(64)
        }
    }
}

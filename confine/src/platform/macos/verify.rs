//! The host's check of a started guest from outside: is it running under a Seatbelt profile?
//!
//! `sandbox_check(pid, NULL, SANDBOX_FILTER_NONE)` (libsystem_sandbox, part of libSystem; not
//! in the public SDK headers, but a stable export that Apple's own tools, LLVM's sanitizers and
//! sandbox research tools call) answers non-zero for a sandboxed process. The launcher
//! executes the guest through `sandbox-exec`, so a guest that reaches `Ready` unsandboxed
//! means something replaced that path; it is killed before it receives any source, like a
//! Linux guest without its seccomp filters.

use std::{ffi::c_char, io};

use libc::{c_int, pid_t};

use crate::{
    platform::{Expectations, Rejection, SandboxError},
    report::VerifyCheck,
};

/// `enum sandbox_filter_type`'s first value: no filter argument follows.
const SANDBOX_FILTER_NONE: c_int = 0;

extern "C" {
    /// Whether `operation` would be denied to `pid`; with a null operation, whether `pid` is
    /// sandboxed at all. Variadic: the filter argument, if `type_` names one, follows.
    fn sandbox_check(pid: pid_t, operation: *const c_char, type_: c_int, ...) -> c_int;
}

/// Checks that `pid` runs sandboxed (when `expect` asks for it).
///
/// # Errors
/// [`Rejection::Exited`] if the process is gone; [`Rejection::Failed`] with
/// [`SandboxError::VerificationFailed`] if it is not sandboxed, or with
/// [`SandboxError::Probe`] if the question could not be asked.
pub(crate) fn verify_guest(pid: u32, expect: &Expectations) -> Result<(), Rejection> {
    if !expect.seatbelt {
        return Ok(());
    }
    let pid = pid_t::try_from(pid).map_err(|_| Rejection::Exited)?;
    // SAFETY: a null operation with SANDBOX_FILTER_NONE takes no further arguments.
    let r = unsafe { sandbox_check(pid, std::ptr::null(), SANDBOX_FILTER_NONE) };
    match r {
        r if r > 0 => Ok(()),
        0 => Err(Rejection::Failed(SandboxError::VerificationFailed {
            check: VerifyCheck::Seatbelt,
            expected: "a Seatbelt profile in force".to_owned(),
            found: "no sandbox".to_owned(),
        })),
        _ => {
            let source = io::Error::last_os_error();
            if source.raw_os_error() == Some(libc::ESRCH) {
                return Err(Rejection::Exited);
            }
            Err(Rejection::Failed(SandboxError::Probe {
                what: "whether the guest is sandboxed (sandbox_check)",
                source,
            }))
        }
    }
}

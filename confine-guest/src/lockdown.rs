//! Stage 2: the guest restricts itself with the seccomp filter the host sent in `Hello`.
//!
//! The host compiles the program (its policy is data in the host's `platform/linux/policy.rs`)
//! and the guest installs it exactly as given, after its engine is initialised and before it
//! answers `Ready`, so no untrusted byte is read without it. The filter stacks on the host's
//! stage-1 filter; the kernel applies the most restrictive result of the two. The host then
//! checks `/proc/<pid>/status` for the second filter before it sends any request, so a guest
//! that skipped this step is refused, not trusted.
//!
//! Nothing here interprets the program: the guest only checks that the bytes form a program
//! the kernel could take (a whole number of 8-byte instructions, 1 to `BPF_MAXINSNS` of them)
//! and reports the kernel's refusal otherwise. Any failure ends the guest (see
//! [`crate::EXIT_LOCKDOWN`]) without a `Ready`.

use confine_runtime_abstract::protocol::Lockdown;
use std::io;
use thiserror::Error;

/// `BPF_MAXINSNS` from `<linux/bpf_common.h>`: the kernel refuses longer programs.
pub const MAX_INSTRUCTIONS: usize = 4096;

/// Bytes per `struct sock_filter`.
#[cfg(target_os = "linux")]
const INSN_LEN: usize = 8;

/// Installing the host's lockdown failed; the guest must not serve.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LockdownError {
    /// The program is not a whole number of 8-byte instructions.
    #[error("the seccomp program is {len} bytes, not a multiple of 8")]
    Misaligned {
        /// Its length in bytes.
        len: usize,
    },
    /// The program is empty or longer than the kernel accepts.
    #[error("the seccomp program has {count} instructions; the kernel takes 1 to {max}")]
    BadLength {
        /// Instructions sent.
        count: usize,
        /// [`MAX_INSTRUCTIONS`].
        max: usize,
    },
    /// The kernel refused the program (`seccomp(SECCOMP_SET_MODE_FILTER)` failed).
    #[error("the kernel refused the seccomp filter: {0}")]
    Install(#[source] io::Error),
    /// Another thread of the guest could not take the filter (`SECCOMP_FILTER_FLAG_TSYNC`
    /// names it); the process would be only partly locked down.
    #[error("thread {tid} could not be synchronised to the seccomp filter")]
    ThreadSync {
        /// The thread that failed.
        tid: libc::c_long,
    },
    /// This platform has no seccomp; a host that sends a lockdown expects one.
    #[error("seccomp is not available on this platform")]
    Unsupported,
}

/// Decodes the host's program into instructions, checking only its shape.
///
/// # Errors
/// [`LockdownError::Misaligned`] or [`LockdownError::BadLength`].
#[cfg(target_os = "linux")]
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<libc::sock_filter>, LockdownError> {
    if bytes.len() % INSN_LEN != 0 {
        return Err(LockdownError::Misaligned { len: bytes.len() });
    }
    let count = bytes.len() / INSN_LEN;
    if count == 0 || count > MAX_INSTRUCTIONS {
        return Err(LockdownError::BadLength {
            count,
            max: MAX_INSTRUCTIONS,
        });
    }
    Ok(bytes
        .chunks_exact(INSN_LEN)
        .map(|c| libc::sock_filter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

/// Installs `lockdown` on the calling process (every thread, through
/// `SECCOMP_FILTER_FLAG_TSYNC`, in case a runtime started threads during its init).
///
/// Needs `no_new_privs`, which the host's launcher set before `execve` (it survives exec).
///
/// # Errors
/// See [`LockdownError`]; the process is unchanged unless the kernel accepted the filter.
#[cfg(target_os = "linux")]
pub fn install(lockdown: &Lockdown) -> Result<(), LockdownError> {
    let mut insns = decode(&lockdown.seccomp_filter)?;
    let prog = libc::sock_fprog {
        // decode() caps the count at 4096, which fits in u16.
        len: u16::try_from(insns.len()).map_err(|_| LockdownError::BadLength {
            count: insns.len(),
            max: MAX_INSTRUCTIONS,
        })?,
        filter: insns.as_mut_ptr(),
    };
    // SAFETY: `prog` points at `insns.len()` initialised instructions that outlive the call;
    // the kernel copies the program before returning.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &prog as *const libc::sock_fprog,
        )
    };
    match r {
        0 => Ok(()),
        r if r < 0 => Err(LockdownError::Install(io::Error::last_os_error())),
        // With TSYNC, a positive result is the id of a thread that could not be synchronised.
        tid => Err(LockdownError::ThreadSync { tid }),
    }
}

/// No seccomp here: a host that asks for a lockdown gets a refusal, never a silent skip.
///
/// # Errors
/// Always [`LockdownError::Unsupported`].
#[cfg(not(target_os = "linux"))]
pub fn install(_lockdown: &Lockdown) -> Result<(), LockdownError> {
    Err(LockdownError::Unsupported)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn decodes_little_endian_instructions() {
        let bytes = [
            0x20, 0x00, 1, 2, 4, 0, 0, 0, 0x06, 0x00, 0, 0, 0, 0, 0xff, 0x7f,
        ];
        let insns = decode(&bytes).expect("two instructions");
        assert_eq!(insns.len(), 2);
        assert_eq!(
            (insns[0].code, insns[0].jt, insns[0].jf, insns[0].k),
            (0x20, 1, 2, 4)
        );
        assert_eq!((insns[1].code, insns[1].k), (0x06, 0x7fff_0000));
    }

    #[test]
    fn refuses_bad_shapes_before_the_kernel_sees_them() {
        assert!(matches!(
            decode(&[0; 12]),
            Err(LockdownError::Misaligned { len: 12 })
        ));
        assert!(matches!(
            decode(&[]),
            Err(LockdownError::BadLength { count: 0, .. })
        ));
        assert!(matches!(
            decode(&vec![0; 8 * (MAX_INSTRUCTIONS + 1)]),
            Err(LockdownError::BadLength { count: 4097, .. })
        ));
        assert_eq!(
            decode(&vec![0; 8 * MAX_INSTRUCTIONS]).map(|v| v.len()).ok(),
            Some(MAX_INSTRUCTIONS)
        );
    }

    #[test]
    fn install_refuses_bad_shapes_without_touching_the_process() {
        let bad = Lockdown {
            seccomp_filter: vec![1, 2, 3],
        };
        assert!(matches!(
            install(&bad),
            Err(LockdownError::Misaligned { .. })
        ));
    }
}

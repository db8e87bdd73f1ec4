//! Stage 2: the guest restricts itself with the seccomp filter the host sent in `Hello`.
//!
//! The host compiles the program (its policy is data in the host's `platform/linux/policy.rs`)
//! and the guest installs it exactly as given, after its engine is initialised and before it
//! answers `Ready`, so no untrusted byte is read without it. The filter stacks on the host's
//! stage-1 filter; the kernel applies the most restrictive result of the two. The host then
//! checks `/proc/<pid>/status` for the second filter before it sends any request, so a guest
//! that skipped this step is refused, not trusted.
//!
//! Before the filter goes in, [`install`] sets a `SIGSYS` handler for the host's audit mode
//! (CI): there, refusals trap (`SECCOMP_RET_TRAP`) instead of returning an errno, and the
//! handler prints the syscall number to stderr (a line starting with [`AUDIT_MARKER`]) and
//! exits with [`EXIT_SECCOMP_AUDIT`]. Normal filters never trap (their kills end the process
//! without running handlers), so the handler costs nothing outside CI.
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

/// Exit status after a syscall refused in the host's seccomp audit mode (the SIGSYS handler's
/// exit; see the module doc).
pub const EXIT_SECCOMP_AUDIT: i32 = 75;

/// How the audit mode's report line on stderr starts; the host's launcher looks for it.
pub const AUDIT_MARKER: &str = "confine-guest: seccomp audit:";

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
    /// The audit mode's `SIGSYS` handler could not be set (`sigaction` failed).
    #[error("cannot set the SIGSYS handler: {0}")]
    Handler(#[source] io::Error),
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

/// `SYS_SECCOMP`: the `si_code` of a `SIGSYS` raised by a `SECCOMP_RET_TRAP` filter.
#[cfg(target_os = "linux")]
const SYS_SECCOMP: libc::c_int = 1;

/// Appends `n` in decimal to `buf` at `*at` (no allocation: runs in a signal handler).
#[cfg(target_os = "linux")]
fn put_decimal(buf: &mut [u8], at: &mut usize, n: i64) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    let negative = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        digits[len] = b'0' + (v % 10) as u8;
        len += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if negative {
        put_bytes(buf, at, b"-");
    }
    for i in (0..len).rev() {
        put_bytes(buf, at, &digits[i..=i]);
    }
}

#[cfg(target_os = "linux")]
fn put_bytes(buf: &mut [u8], at: &mut usize, bytes: &[u8]) {
    for &b in bytes {
        if let Some(slot) = buf.get_mut(*at) {
            *slot = b;
            *at += 1;
        }
    }
}

/// The audit mode's SIGSYS handler: one line on stderr, then `_exit`. Only
/// async-signal-safe calls (`write`, `_exit`), both in every stage-2 allow-list.
#[cfg(target_os = "linux")]
extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    if info.is_null() {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(EXIT_SECCOMP_AUDIT) };
    }
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers. For SIGSYS the union
    // at offset 16 is `{ void *call_addr; int syscall; unsigned arch; }` (x86_64 and every
    // 64-bit Linux ABI), so the syscall number is the int at offset 24; si_errno carries the
    // filter's SECCOMP_RET_DATA (the errno the normal mode would return).
    let (code, data, nr) = unsafe {
        (
            (*info).si_code,
            (*info).si_errno,
            info.cast::<u8>()
                .add(24)
                .cast::<libc::c_int>()
                .read_unaligned(),
        )
    };
    let mut line = [0u8; 160];
    let mut at = 0;
    put_bytes(&mut line, &mut at, AUDIT_MARKER.as_bytes());
    if code == SYS_SECCOMP {
        put_bytes(&mut line, &mut at, b" syscall ");
        put_decimal(&mut line, &mut at, i64::from(nr));
        put_bytes(&mut line, &mut at, b" refused (errno ");
        put_decimal(&mut line, &mut at, i64::from(data));
        put_bytes(&mut line, &mut at, b" outside audit mode)\n");
    } else {
        put_bytes(&mut line, &mut at, b" SIGSYS not from seccomp\n");
    }
    // SAFETY: write from a stack buffer and _exit are async-signal-safe.
    unsafe {
        libc::write(2, line.as_ptr().cast(), at);
        libc::_exit(EXIT_SECCOMP_AUDIT);
    }
}

/// Sets [`on_sigsys`] as the `SIGSYS` handler.
#[cfg(target_os = "linux")]
fn set_audit_handler() -> io::Result<()> {
    // SAFETY: a zeroed sigaction is valid; we set the handler and flags we need, and
    // sigemptyset initialises the mask we own.
    let r = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigsys as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut())
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Installs `lockdown` on the calling process (every thread, through
/// `SECCOMP_FILTER_FLAG_TSYNC`, in case a runtime started threads during its init), after
/// setting the audit mode's `SIGSYS` handler (see the module doc).
///
/// Needs `no_new_privs`, which the host's launcher set before `execve` (it survives exec).
///
/// # Errors
/// See [`LockdownError`]; the process is unchanged unless the kernel accepted the filter
/// (apart from the `SIGSYS` handler, which nothing but a trapping filter invokes).
#[cfg(target_os = "linux")]
pub fn install(lockdown: &Lockdown) -> Result<(), LockdownError> {
    let mut insns = decode(&lockdown.seccomp_filter)?;
    set_audit_handler().map_err(LockdownError::Handler)?;
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
    fn decimal_formatting_for_the_handler() {
        let mut buf = [0u8; 32];
        let mut at = 0;
        put_decimal(&mut buf, &mut at, 0);
        put_bytes(&mut buf, &mut at, b" ");
        put_decimal(&mut buf, &mut at, 1_073_741_863);
        put_bytes(&mut buf, &mut at, b" ");
        put_decimal(&mut buf, &mut at, -38);
        assert_eq!(&buf[..at], b"0 1073741863 -38");
        // Never writes past the buffer.
        let mut small = [0u8; 3];
        let mut at = 0;
        put_decimal(&mut small, &mut at, 123_456);
        assert_eq!((&small, at), (b"123", 3));
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

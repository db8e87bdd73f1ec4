//! The post-fork half of the sandbox: what runs in the child between `fork` and `execve`.
//!
//! # The async-signal-safe rule
//!
//! The host is multi-threaded (tokio). After `fork` only the calling thread exists in the
//! child, and any lock another thread held at the time (the allocator's, stdio's, the
//! environment's) stays locked forever. So everything in this module:
//!
//! * makes **raw syscalls only** (`libc::syscall`, or libc wrappers that are single syscalls
//!   such as `prctl`, `dup2`, `fcntl`, `setsid`, `getppid`, `getpid`, `close`);
//! * **never allocates** (no `Vec`, `String`, `Box`, `format!`, no `std::io::Error` built
//!   from anything but a raw errno), never takes a lock, never touches `std::io`, the
//!   environment or thread-locals other than `errno`;
//! * reads the [`Plan`](super::Plan) (built in the parent) only through shared references;
//!   the one thing it must change (the pid in the seccomp program) is copied to the stack.
//!
//! A failure returns a [`ChildFailure`] (step + errno, plain data) for the caller to write
//! to its error pipe; nothing here panics.
//!
//! # File descriptors
//!
//! fds >= 4 are marked close-on-exec (`close_range(4, ~0, CLOSE_RANGE_CLOEXEC)`), not closed:
//! std's own exec-error pipe and the launcher's step-failure pipe live there and must keep
//! working until `execve`, which then closes them all. After `execve` the guest has exactly
//! fds 0, 1, 2 and 3.

use super::{bpf::MAX_FILTER_LEN, Plan};
use crate::platform::{ChildFailure, SpawnStep};
use libc::{c_int, c_long, sock_filter};
use std::os::fd::{AsRawFd, RawFd};

/// The fd the guest finds its IPC socket on.
pub(crate) const IPC_FD: RawFd = 3;
/// fds at and above this are closed on exec.
const FIRST_CLOSED_FD: c_int = 4;

fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot; reading it is a plain load.
    unsafe { *libc::__errno_location() }
}

fn fail(step: SpawnStep) -> ChildFailure {
    ChildFailure {
        step,
        errno: errno(),
    }
}

fn check(r: c_long, step: SpawnStep) -> Result<c_long, ChildFailure> {
    if r < 0 {
        Err(fail(step))
    } else {
        Ok(r)
    }
}

/// Applies `plan` to the calling (child) process. See the module doc for the rules.
///
/// # Safety
/// Must run in a freshly forked child that is about to `execve` (for example inside
/// `std::process::Command::pre_exec`), after stdio is set up. It rearranges the process's
/// fds and restricts it for good.
pub(crate) unsafe fn apply(
    plan: &Plan,
    ipc_fd: RawFd,
    parent_pid: i32,
) -> Result<(), ChildFailure> {
    // 1. Die with the parent. A backstop only: PDEATHSIG fires when the *thread* that forked
    // exits, so the launcher must fork from a long-lived thread; the real lifetime tie is the
    // guest exiting on EOF of fd 3 and the host killing through a pidfd.
    // SAFETY: prctl with integer arguments.
    check(
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) }.into(),
        SpawnStep::ParentDeathSignal,
    )?;
    // The parent may have died before PDEATHSIG was armed; then we were reparented.
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } != parent_pid {
        return Err(ChildFailure {
            step: SpawnStep::ParentExited,
            errno: libc::ESRCH,
        });
    }

    // 2. New session: no controlling terminal, so TIOCSTI-style injection has no target.
    // SAFETY: setsid has no preconditions.
    check(unsafe { libc::setsid() }.into(), SpawnStep::SetSid)?;

    // 3. fd 3 = IPC socket, without close-on-exec.
    if ipc_fd < IPC_FD {
        return Err(ChildFailure {
            step: SpawnStep::FdLayout,
            errno: libc::EBADF,
        });
    }
    let ruleset = plan.ruleset.as_ref().map(AsRawFd::as_raw_fd);
    // `prepare` keeps the ruleset fd at >= 10, so the dup2 below cannot clobber it.
    debug_assert!(ruleset.is_none_or(|fd| fd > IPC_FD));
    if ipc_fd == IPC_FD {
        // SAFETY: fcntl on an fd number; failure is reported.
        check(
            unsafe { libc::fcntl(IPC_FD, libc::F_SETFD, 0) }.into(),
            SpawnStep::FdLayout,
        )?;
    } else {
        // dup2 clears FD_CLOEXEC on the new fd.
        // SAFETY: dup2 on fd numbers; failure is reported.
        check(
            unsafe { libc::dup2(ipc_fd, IPC_FD) }.into(),
            SpawnStep::FdLayout,
        )?;
    }

    // 4. Everything else closes at exec.
    // SAFETY: raw close_range with integer arguments.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            FIRST_CLOSED_FD as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        // Linux < 5.11: mark them one by one up to the current fd limit.
        let mut lim = libc::rlimit64 {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: prlimit64 reads our own limit into a stack struct.
        check(
            unsafe {
                libc::syscall(
                    libc::SYS_prlimit64,
                    0,
                    libc::RLIMIT_NOFILE,
                    std::ptr::null::<libc::rlimit64>(),
                    &mut lim as *mut libc::rlimit64,
                )
            },
            SpawnStep::CloseFds,
        )?;
        let end = c_int::try_from(lim.rlim_cur.min(1 << 20)).unwrap_or(1 << 20);
        for fd in FIRST_CLOSED_FD..end {
            // EBADF for fds that are not open is expected.
            // SAFETY: fcntl on an fd number.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }

    if plan.no_sandbox {
        return Ok(());
    }

    // 5. Resource limits.
    for limit in &plan.rlimits {
        let new = libc::rlimit64 {
            rlim_cur: limit.soft,
            rlim_max: limit.hard,
        };
        // SAFETY: prlimit64 on ourselves with a valid new limit and no old-limit pointer.
        check(
            unsafe {
                libc::syscall(
                    libc::SYS_prlimit64,
                    0,
                    limit.resource,
                    &new as *const libc::rlimit64,
                    std::ptr::null_mut::<libc::rlimit64>(),
                )
            },
            SpawnStep::Rlimit,
        )?;
    }

    // 6. Memory-deny-write-execute: no mapping may become executable later. Inherited
    // across execve; the loader maps text segments executable from the start, so it works.
    if plan.mdwe {
        // SAFETY: prctl with integer arguments.
        check(
            unsafe {
                libc::prctl(
                    libc::PR_SET_MDWE,
                    libc::PR_MDWE_REFUSE_EXEC_GAIN as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                )
            }
            .into(),
            SpawnStep::Mdwe,
        )?;
    }

    // 7. No privilege gain through exec (setuid, file caps); also required for Landlock and
    // seccomp without CAP_SYS_ADMIN.
    // SAFETY: prctl with integer arguments.
    check(
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }.into(),
        SpawnStep::NoNewPrivs,
    )?;

    // 8. Landlock.
    if let Some(fd) = ruleset {
        // SAFETY: fd is the plan's open ruleset fd (inherited across fork).
        check(
            unsafe { libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32) },
            SpawnStep::Landlock,
        )?;
        // It is close-on-exec already; close it now so nothing after this sees it.
        // SAFETY: closing the child's copy of an fd it no longer needs.
        unsafe { libc::close(fd) };
    }

    // 9. Stage-1 seccomp, last: everything above needs syscalls it refuses.
    if let Some(filter) = &plan.filter {
        let len = filter.insns.len();
        if len > MAX_FILTER_LEN {
            return Err(ChildFailure {
                step: SpawnStep::Seccomp,
                errno: libc::E2BIG,
            });
        }
        let mut buf = [sock_filter {
            code: 0,
            jt: 0,
            jf: 0,
            k: 0,
        }; MAX_FILTER_LEN];
        buf[..len].copy_from_slice(&filter.insns);
        // SAFETY: getpid has no preconditions; the pid survives execve.
        let pid = unsafe { libc::getpid() } as u32;
        for &slot in &filter.pid_slots {
            if let Some(insn) = buf.get_mut(slot) {
                insn.k = pid;
            }
        }
        let prog = libc::sock_fprog {
            // len <= MAX_FILTER_LEN (512) fits in u16.
            len: len as u16,
            filter: buf.as_mut_ptr(),
        };
        // SAFETY: prog points at `len` valid instructions on our stack, alive for the call.
        check(
            unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0u32,
                    &prog as *const libc::sock_fprog,
                )
            },
            SpawnStep::Seccomp,
        )?;
    }
    Ok(())
}

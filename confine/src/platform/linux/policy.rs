//! The Linux sandbox policy as data: the stage-1 seccomp table (one row per syscall with the
//! reason it is there), the fallback verdicts, the resource limits and the Landlock rights.
//!
//! The BPF builder ([`super::bpf`]), the isolation report and the tests all read these
//! tables, so a change here is the whole change: there is no second list to keep in sync.
//!
//! Stage 1 is installed by the host between `fork` and `execve` and stays for the guest's
//! whole life. It must let the dynamic loader map the guest's libraries (so `openat`,
//! `newfstatat`, `execve` and `mmap(PROT_EXEC)` are allowed, with Landlock deciding which
//! files) and the guest run its serve loop.
//!
//! Stage 2 ([`STAGE2_X86_64`], [`stage2_verdict`]) is compiled here too, by the host, and sent
//! to the guest in `Hello`; the guest installs it on top of stage 1 after its engine is
//! initialised and before it answers `Ready`, and the host verifies from outside that it did.
//! The kernel runs both filters on every syscall and applies the most restrictive result, so
//! stage 2 only needs to be stricter where it wants to be: a syscall stage 1 checks by argument
//! (`futex` ops, `getrandom` flags, `tgkill`'s pid, `sendto`'s address) stays checked when
//! stage 2 simply allows it. Every stage-1 allowance has a stage-2 row (a test enforces it),
//! so each one was reconsidered for the locked-down guest; the allow-list was derived by
//! tracing the QuickJS guest (`strace -f`) through the conformance suite, plus the paths a
//! Rust guest takes rarely (abort, a stack-overflow fault, a timer sleep, large reallocs).
//!
//! Verdicts, from the recipe (`research/linux-sandbox-recipe.md` §6.4, §4.2):
//! * known syscalls that are not listed get `EPERM` ([`DEFAULT_KNOWN`]);
//! * syscall numbers the table does not know (newer than [`NEWEST_KNOWN_SYSCALL`], or in
//!   the unassigned hole 337..=423) get `ENOSYS`, so a future libc falls back to an older
//!   call instead of failing (the `fchmodat2`/`clone3` lesson);
//! * probes libc expects to fail get the errno libc handles (`clone3` → `ENOSYS`, `statx` →
//!   `ENOSYS`, `ioctl` → `ENOTTY`);
//! * calls no JS/WASM guest ever needs and that are the usual kernel attack surface
//!   (`ptrace`, `bpf`, `io_uring_*`, mount API, `unshare`, ...) kill the process, so an
//!   attempt is visible to the host as `SIGSYS`;
//! * a foreign architecture (i386 `int 0x80`) and the x32 ABI (`nr >= 0x40000000`) kill the
//!   process before the table is consulted.

use libc::{c_long, EACCES, ENOSYS, ENOTTY, EPERM};

/// What the filter does with one syscall number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Always allowed; the kernel caches this per number, so it costs nothing at run time.
    Allow,
    /// Allowed when every check passes, else `SECCOMP_RET_ERRNO | otherwise`.
    AllowIf {
        /// All must hold.
        checks: &'static [Check],
        /// The errno returned when a check fails.
        otherwise: i32,
    },
    /// Fails with this errno without entering the kernel's implementation.
    Errno(i32),
    /// `SECCOMP_RET_KILL_PROCESS`: the whole guest dies with `SIGSYS`.
    Kill,
}

/// A value an argument is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operand {
    /// A constant.
    Const(u32),
    /// The guest's own pid. Unknown when the filter is built; the child writes it into the
    /// program (see [`super::bpf::Filter::pid_slots`]) right before installing it.
    SelfPid,
}

/// One argument test. Argument words are compared the way the kernel reads them (recipe
/// §4.3, CVE-2019-10063): `int`-typed arguments on their low 32 bits only, pointers on all 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// `(low32(args[arg]) & mask)` equals one of `values`.
    LowIn {
        /// Argument index, 0..=5.
        arg: u8,
        /// Bits that matter; `u32::MAX` compares the whole low word.
        mask: u32,
        /// Accepted values (after masking).
        values: &'static [Operand],
    },
    /// `(low32(args[arg]) & mask) != value`.
    LowMaskedNot {
        /// Argument index, 0..=5.
        arg: u8,
        /// Bits that matter.
        mask: u32,
        /// The forbidden combination.
        value: u32,
    },
    /// The whole 64-bit argument is zero (a NULL pointer).
    Null {
        /// Argument index, 0..=5.
        arg: u8,
    },
}

/// One row of a syscall table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyscallRule {
    /// The x86_64 syscall number.
    pub nr: u32,
    /// Its name, for reports and test output.
    pub name: &'static str,
    /// What the filter does.
    pub verdict: Verdict,
    /// Why: who needs it, or why it is refused the way it is.
    pub why: &'static str,
}

/// The verdict for known syscalls the table does not list.
pub(crate) const DEFAULT_KNOWN: Verdict = Verdict::Errno(EPERM);
/// The verdict for numbers the table does not know (newer kernels, unassigned holes).
pub(crate) const UNKNOWN_NUMBER: Verdict = Verdict::Errno(ENOSYS);
/// The newest x86_64 syscall this table was written against (`file_setattr`, Linux 6.17;
/// 6.18 added none). Anything above gets [`UNKNOWN_NUMBER`].
pub(crate) const NEWEST_KNOWN_SYSCALL: u32 = 469;
/// Syscall numbers never assigned on x86_64: after `uprobe` (336) the table jumps to
/// `pidfd_send_signal` (424); 337..=423 are reserved for 32-bit time64 calls elsewhere.
pub(crate) const UNASSIGNED: std::ops::RangeInclusive<u32> = 337..=423;

/// Syscalls the kernel runs without consulting any seccomp filter, so no verdict here can
/// touch them. Found by the kernel sweep (`tests/sweep.rs`): the table used to count them as
/// unassigned. Both only work when called from the kernel's uprobe trampoline page, which
/// exists only in a process someone attached uprobes to (perf/bpf, which the guest cannot
/// use); from anywhere else `uretprobe` raises `SIGILL` and `uprobe` returns `ENXIO`, in or
/// out of a sandbox.
#[cfg_attr(
    not(test),
    allow(
        dead_code,
        reason = "no filter can act on these; the tables and the sweep read it"
    )
)]
pub(crate) static SECCOMP_PASSTHROUGH: &[(u32, &str)] = &[
    (
        335,
        "uretprobe (Linux 6.11): the uretprobe trampoline's return path",
    ),
    (336, "uprobe (Linux 6.16): the uprobe trampoline"),
];

/// `clone` flags glibc's `pthread_create` passes (`CLONE_VM | CLONE_FS | CLONE_FILES |
/// CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |
/// CLONE_CHILD_CLEARTID`): a thread of this process, nothing else. `fork` (`SIGCHLD`),
/// `vfork` and any namespace flag fail with `EPERM`. The kernel reads only the low 32 bits
/// of `clone`'s flags, so comparing the low word is exact.
pub(crate) const PTHREAD_CLONE_FLAGS: u32 = 0x003d_0f00;

const PROT_WRITE_EXEC: u32 = (libc::PROT_WRITE | libc::PROT_EXEC) as u32;
const PROT_EXEC: u32 = libc::PROT_EXEC as u32;
/// Write-intent bits of `open` flags: `O_WRONLY | O_RDWR` (the access mode), `O_CREAT`,
/// `O_TRUNC`. `O_TMPFILE` needs a write access mode, so it is covered too.
const OPEN_WRITE_BITS: u32 = (libc::O_ACCMODE | libc::O_CREAT | libc::O_TRUNC) as u32;
/// `FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME`: modifiers, masked off before the op test.
const FUTEX_OP_MASK: u32 = !(libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME) as u32;
/// `GRND_NONBLOCK | GRND_INSECURE`: the only `getrandom` flags std and glibc use.
const GETRANDOM_FLAGS: u32 = libc::GRND_NONBLOCK | libc::GRND_INSECURE;
/// `SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_LOG`: what stage 2 may pass.
/// Not `NEW_LISTENER` (would hand a notifier fd to a supervisor we do not run) and not
/// `SPEC_ALLOW` (would turn off speculation mitigations).
const SECCOMP_STAGE2_FLAGS: u32 =
    (libc::SECCOMP_FILTER_FLAG_TSYNC | libc::SECCOMP_FILTER_FLAG_LOG) as u32;
/// `ARCH_SET_FS` / `ARCH_GET_FS` from `<asm/prctl.h>` (not in the libc crate).
const ARCH_SET_FS: u32 = 0x1002;
const ARCH_GET_FS: u32 = 0x1003;
/// `PR_SET_VMA` (glibc ≥ 2.40 names its anonymous mappings); not in every libc crate.
const PR_SET_VMA: u32 = 0x5356_4d41;

const fn c(v: u32) -> Operand {
    Operand::Const(v)
}

#[allow(clippy::cast_sign_loss)] // syscall numbers are small and positive on x86_64
const fn nr(n: c_long) -> u32 {
    n as u32
}

macro_rules! rule {
    ($sys:ident, $verdict:expr, $why:expr) => {
        SyscallRule {
            nr: nr(libc::$sys),
            name: {
                let full = stringify!($sys);
                // "SYS_read" -> "read"
                let (_, name) = full.as_bytes().split_at(4);
                match std::str::from_utf8(name) {
                    Ok(name) => name,
                    Err(_) => full,
                }
            },
            verdict: $verdict,
            why: $why,
        }
    };
}

const ALLOW: Verdict = Verdict::Allow;
const KILL: Verdict = Verdict::Kill;

/// Stage 1, x86_64. Ordered by topic; the builder sorts by number.
pub(crate) static STAGE1_X86_64: &[SyscallRule] = &[
    // ---- I/O on the fds the guest has (0 = /dev/null, 1-2 = pipes, 3 = IPC socket) ----
    rule!(SYS_read, ALLOW, "IPC and loader reads; only fds 0-3 exist after exec"),
    rule!(SYS_write, ALLOW, "IPC frames, stdout/stderr pipes"),
    rule!(SYS_readv, ALLOW, "vectored IPC reads"),
    rule!(SYS_writev, ALLOW, "vectored IPC writes"),
    rule!(SYS_pread64, ALLOW, "the loader reads ELF notes of a library it opened"),
    rule!(SYS_recvfrom, ALLOW, "std's UnixStream::read on fd 3"),
    rule!(SYS_recvmsg, ALLOW, "IPC reads"),
    rule!(SYS_sendmsg, ALLOW, "IPC writes on the connected socket"),
    rule!(
        SYS_sendto,
        Verdict::AllowIf { checks: &[Check::Null { arg: 4 }], otherwise: EPERM },
        "std's UnixStream::write; dest_addr must be NULL so no datagram reaches another socket"
    ),
    rule!(SYS_close, ALLOW, "loader closes library fds"),
    rule!(SYS_lseek, ALLOW, "fd-only; harmless"),
    rule!(
        SYS_fcntl,
        Verdict::AllowIf {
            checks: &[Check::LowIn {
                arg: 1,
                mask: u32::MAX,
                values: &[
                    c(libc::F_GETFD as u32),
                    c(libc::F_SETFD as u32),
                    c(libc::F_GETFL as u32),
                    c(libc::F_SETFL as u32),
                ],
            }],
            otherwise: EPERM,
        },
        "fd flags (close-on-exec, O_NONBLOCK); not F_SETOWN/F_SETSIG (SIGIO to other \
         processes), not F_DUPFD, locks or leases"
    ),
    rule!(SYS_poll, ALLOW, "std polls fds 0-2 at startup; the guest waits on fd 3"),
    rule!(SYS_ppoll, ALLOW, "poll with a timespec"),
    rule!(SYS_fstat, ALLOW, "fd-only metadata"),
    rule!(
        SYS_newfstatat,
        ALLOW,
        "glibc >= 2.33 fstat() is newfstatat(fd, \"\", AT_EMPTY_PATH); the loader needs it. \
         Leaks path metadata in stage 1; stage 2 must drop it"
    ),
    rule!(SYS_statx, Verdict::Errno(ENOSYS), "std falls back to fstat on ENOSYS; path metadata"),
    rule!(
        SYS_ioctl,
        Verdict::Errno(ENOTTY),
        "isatty() sees 'not a tty'; kills TIOCSTI/TIOCLINUX and device ioctls incl. high-bit variants"
    ),
    // ---- files and exec: allowed in stage 1 only; Landlock decides which files ----
    rule!(
        SYS_open,
        Verdict::AllowIf {
            checks: &[Check::LowIn { arg: 1, mask: OPEN_WRITE_BITS, values: &[c(0)] }],
            otherwise: EACCES,
        },
        "read-only opens for the loader; Landlock limits them to the guest's libraries"
    ),
    rule!(
        SYS_openat,
        Verdict::AllowIf {
            checks: &[Check::LowIn { arg: 2, mask: OPEN_WRITE_BITS, values: &[c(0)] }],
            otherwise: EACCES,
        },
        "read-only opens for the loader; Landlock limits them to the guest's libraries"
    ),
    rule!(SYS_openat2, Verdict::Errno(ENOSYS), "nobody in the guest uses it; ENOSYS makes callers fall back to openat"),
    rule!(SYS_execve, ALLOW, "the host's execve of the guest happens under this filter; Landlock allows only the guest and its loader"),
    rule!(SYS_execveat, KILL, "fd-based exec is never needed"),
    // ---- memory ----
    rule!(SYS_brk, ALLOW, "malloc"),
    rule!(
        SYS_mmap,
        Verdict::AllowIf {
            checks: &[Check::LowMaskedNot { arg: 2, mask: PROT_WRITE_EXEC, value: PROT_WRITE_EXEC }],
            otherwise: EACCES,
        },
        "allocation and library mapping; W^X: PROT_EXEC (the loader's text segments) never with PROT_WRITE"
    ),
    rule!(
        SYS_mprotect,
        Verdict::AllowIf {
            checks: &[Check::LowMaskedNot { arg: 2, mask: PROT_WRITE_EXEC, value: PROT_WRITE_EXEC }],
            otherwise: EACCES,
        },
        "RELRO and guard pages; W^X as for mmap (MDWE also refuses RW->RX)"
    ),
    rule!(SYS_munmap, ALLOW, "free"),
    rule!(SYS_mremap, ALLOW, "realloc of large blocks; keeps the mapping's protection"),
    rule!(
        SYS_madvise,
        Verdict::AllowIf {
            checks: &[Check::LowIn {
                arg: 2,
                mask: u32::MAX,
                values: &[
                    c(libc::MADV_NORMAL as u32),
                    c(libc::MADV_RANDOM as u32),
                    c(libc::MADV_SEQUENTIAL as u32),
                    c(libc::MADV_WILLNEED as u32),
                    c(libc::MADV_DONTNEED as u32),
                    c(libc::MADV_FREE as u32),
                    c(libc::MADV_HUGEPAGE as u32),
                    c(libc::MADV_NOHUGEPAGE as u32),
                    c(libc::MADV_DONTDUMP as u32),
                    c(libc::MADV_DODUMP as u32),
                ],
            }],
            otherwise: EPERM,
        },
        "allocators return memory; no MADV_HWPOISON/MERGEABLE-style advice"
    ),
    // ---- threads and the libc runtime ----
    rule!(
        SYS_clone,
        Verdict::AllowIf {
            checks: &[Check::LowIn { arg: 0, mask: u32::MAX, values: &[c(PTHREAD_CLONE_FLAGS)] }],
            otherwise: EPERM,
        },
        "pthread_create only; fork, vfork and namespace flags get EPERM"
    ),
    rule!(SYS_clone3, Verdict::Errno(ENOSYS), "glibc >= 2.34 tries clone3 first and falls back to clone on ENOSYS only"),
    rule!(
        SYS_futex,
        Verdict::AllowIf {
            checks: &[Check::LowIn {
                arg: 1,
                mask: FUTEX_OP_MASK,
                values: &[
                    c(libc::FUTEX_WAIT as u32),
                    c(libc::FUTEX_WAKE as u32),
                    c(libc::FUTEX_REQUEUE as u32),
                    c(libc::FUTEX_CMP_REQUEUE as u32),
                    c(libc::FUTEX_WAKE_OP as u32),
                    c(libc::FUTEX_WAIT_BITSET as u32),
                    c(libc::FUTEX_WAKE_BITSET as u32),
                ],
            }],
            otherwise: EPERM,
        },
        "locks and Once; no priority-inheritance ops (historic kernel bugs)"
    ),
    rule!(SYS_set_tid_address, ALLOW, "libc thread startup"),
    rule!(SYS_set_robust_list, ALLOW, "libc thread startup"),
    rule!(SYS_rseq, ALLOW, "glibc >= 2.35 registers rseq at startup"),
    rule!(
        SYS_arch_prctl,
        Verdict::AllowIf {
            checks: &[Check::LowIn {
                arg: 0,
                mask: u32::MAX,
                values: &[c(ARCH_SET_FS), c(ARCH_GET_FS)],
            }],
            otherwise: EPERM,
        },
        "TLS setup; CET/AMX/other queries fail gracefully"
    ),
    rule!(SYS_sched_yield, ALLOW, "spin loops"),
    rule!(
        SYS_sched_getaffinity,
        Verdict::AllowIf {
            checks: &[Check::LowIn { arg: 0, mask: u32::MAX, values: &[c(0), Operand::SelfPid] }],
            otherwise: EPERM,
        },
        "available_parallelism(); pthread_getattr_np passes the own tid; not other processes"
    ),
    rule!(
        SYS_prlimit64,
        Verdict::AllowIf {
            checks: &[
                Check::LowIn { arg: 0, mask: u32::MAX, values: &[c(0)] },
                Check::Null { arg: 2 },
            ],
            otherwise: EPERM,
        },
        "read-only getrlimit of self (std reads RLIMIT_STACK); raising limits is refused"
    ),
    rule!(SYS_getpid, ALLOW, "raise(), std::process::id"),
    rule!(SYS_gettid, ALLOW, "std's thread info, raise()"),
    rule!(SYS_exit, ALLOW, "thread exit"),
    rule!(SYS_exit_group, ALLOW, "process exit"),
    rule!(SYS_restart_syscall, ALLOW, "the kernel restarts an interrupted sleep through it"),
    // ---- signals: to itself only ----
    rule!(SYS_rt_sigaction, ALLOW, "std ignores SIGPIPE, installs SIGSEGV/SIGBUS stack-overflow handlers"),
    rule!(SYS_rt_sigprocmask, ALLOW, "libc masks signals around critical sections"),
    rule!(SYS_rt_sigreturn, ALLOW, "return from a signal handler"),
    rule!(SYS_sigaltstack, ALLOW, "std's stack-overflow guard runs its handler on an alternate stack"),
    rule!(
        SYS_kill,
        Verdict::AllowIf {
            checks: &[Check::LowIn { arg: 0, mask: u32::MAX, values: &[Operand::SelfPid] }],
            otherwise: EPERM,
        },
        "signals to itself only; never the host or its process group"
    ),
    rule!(
        SYS_tgkill,
        Verdict::AllowIf {
            checks: &[Check::LowIn { arg: 0, mask: u32::MAX, values: &[Operand::SelfPid] }],
            otherwise: EPERM,
        },
        "raise()/abort() send to their own thread group only"
    ),
    // ---- time and randomness ----
    rule!(SYS_clock_gettime, ALLOW, "Instant/SystemTime when the vDSO falls back"),
    rule!(SYS_clock_getres, ALLOW, "timer resolution"),
    rule!(SYS_clock_nanosleep, ALLOW, "thread::sleep"),
    rule!(SYS_nanosleep, ALLOW, "older sleep path"),
    rule!(SYS_gettimeofday, ALLOW, "vDSO fallback"),
    rule!(
        SYS_getrandom,
        Verdict::AllowIf {
            checks: &[Check::LowIn { arg: 2, mask: !GETRANDOM_FLAGS, values: &[c(0)] }],
            otherwise: EPERM,
        },
        "HashMap seeds, Math.random; flags limited to GRND_NONBLOCK|GRND_INSECURE"
    ),
    // ---- self-lockdown (stage 2 is installed by the guest under this filter) ----
    rule!(
        SYS_prctl,
        Verdict::AllowIf {
            checks: &[Check::LowIn {
                arg: 0,
                mask: u32::MAX,
                values: &[
                    c(libc::PR_SET_NAME as u32),
                    c(libc::PR_GET_NAME as u32),
                    c(libc::PR_GET_DUMPABLE as u32),
                    c(libc::PR_SET_DUMPABLE as u32),
                    c(libc::PR_SET_NO_NEW_PRIVS as u32),
                    c(libc::PR_GET_NO_NEW_PRIVS as u32),
                    c(libc::PR_GET_SECCOMP as u32),
                    c(libc::PR_SET_SECCOMP as u32),
                    c(libc::PR_SET_MDWE as u32),
                    c(libc::PR_GET_MDWE as u32),
                    c(PR_SET_VMA),
                ],
            }],
            otherwise: EPERM,
        },
        "thread names, dumpable, and the self-restricting options stage 2 uses; not PR_SET_MM etc."
    ),
    rule!(
        SYS_seccomp,
        Verdict::AllowIf {
            checks: &[
                Check::LowIn {
                    arg: 0,
                    mask: u32::MAX,
                    values: &[
                        c(libc::SECCOMP_SET_MODE_FILTER),
                        c(libc::SECCOMP_GET_ACTION_AVAIL),
                    ],
                },
                Check::LowIn { arg: 1, mask: !SECCOMP_STAGE2_FLAGS, values: &[c(0)] },
            ],
            otherwise: EPERM,
        },
        "stage 2 stacks its filter; no user-notification listener, no SPEC_ALLOW"
    ),
    // ---- refused with a chosen errno ----
    rule!(SYS_socket, Verdict::Errno(EACCES), "no network: the only socket is the inherited fd 3"),
    rule!(SYS_socketpair, Verdict::Errno(EACCES), "no new sockets"),
    // ---- never legitimate for a JS/WASM guest: kill, so attempts are visible (SIGSYS) ----
    rule!(SYS_ptrace, KILL, "debugging other processes"),
    rule!(SYS_process_vm_readv, KILL, "reads another process's memory"),
    rule!(SYS_process_vm_writev, KILL, "writes another process's memory"),
    rule!(SYS_bpf, KILL, "kernel attack surface"),
    rule!(SYS_userfaultfd, KILL, "exploit primitive (stalls kernel copies)"),
    rule!(SYS_perf_event_open, KILL, "kernel attack surface, side channels"),
    rule!(SYS_io_uring_setup, KILL, "performs file/socket ops without the filtered syscalls"),
    rule!(SYS_io_uring_enter, KILL, "see io_uring_setup"),
    rule!(SYS_io_uring_register, KILL, "see io_uring_setup"),
    rule!(SYS_add_key, KILL, "kernel keyrings"),
    rule!(SYS_request_key, KILL, "kernel keyrings"),
    rule!(SYS_keyctl, KILL, "kernel keyrings"),
    rule!(SYS_kexec_load, KILL, "system administration"),
    rule!(SYS_kexec_file_load, KILL, "system administration"),
    rule!(SYS_init_module, KILL, "kernel modules"),
    rule!(SYS_finit_module, KILL, "kernel modules"),
    rule!(SYS_delete_module, KILL, "kernel modules"),
    rule!(SYS_mount, KILL, "mounts"),
    rule!(SYS_umount2, KILL, "mounts"),
    rule!(SYS_pivot_root, KILL, "mounts"),
    rule!(SYS_chroot, KILL, "mounts"),
    rule!(SYS_open_tree, KILL, "new mount API"),
    rule!(SYS_move_mount, KILL, "new mount API"),
    rule!(SYS_fsopen, KILL, "new mount API"),
    rule!(SYS_fsconfig, KILL, "new mount API"),
    rule!(SYS_fsmount, KILL, "new mount API"),
    rule!(SYS_fspick, KILL, "new mount API"),
    rule!(SYS_mount_setattr, KILL, "new mount API"),
    rule!(SYS_unshare, KILL, "namespaces"),
    rule!(SYS_setns, KILL, "namespaces"),
    rule!(SYS_open_by_handle_at, KILL, "bypasses path checks (shocker)"),
    rule!(SYS_name_to_handle_at, KILL, "see open_by_handle_at"),
    rule!(SYS_personality, KILL, "changes the ABI (READ_IMPLIES_EXEC)"),
    rule!(SYS_memfd_create, KILL, "anonymous executable files"),
    rule!(SYS_kcmp, KILL, "inspects other processes"),
    rule!(SYS_pidfd_open, KILL, "handles to other processes"),
    rule!(SYS_pidfd_getfd, KILL, "steals another process's fds"),
    rule!(SYS_process_madvise, KILL, "acts on other processes"),
    rule!(SYS_swapon, KILL, "system administration"),
    rule!(SYS_swapoff, KILL, "system administration"),
    rule!(SYS_reboot, KILL, "system administration"),
    rule!(SYS_acct, KILL, "system administration"),
    rule!(SYS_quotactl, KILL, "system administration"),
    rule!(SYS_syslog, KILL, "kernel log"),
    rule!(SYS_iopl, KILL, "port I/O"),
    rule!(SYS_ioperm, KILL, "port I/O"),
    rule!(SYS_modify_ldt, KILL, "segment tricks, historic kernel bugs"),
];

/// Stage 2, x86_64: what the locked-down guest may still do. Ordered by topic.
///
/// Syscalls not listed get [`stage2_verdict`]'s fallback: the stage-1 errno where stage 1
/// refuses gracefully (`ioctl` → `ENOTTY`, `statx`/`clone3`/`openat2` → `ENOSYS`, `socket`
/// → `EACCES`), `ENOSYS` for unknown numbers, `EPERM` for everything else. Stage-1 kills stay
/// kills whatever stage 2 says (kill outranks errno).
pub(crate) static STAGE2_X86_64: &[SyscallRule] = &[
    // ---- the serve loop: fd 3, stdout/stderr ----
    rule!(SYS_read, ALLOW, "IPC frames from fd 3, the serve loop's only input (traced)"),
    rule!(SYS_write, ALLOW, "IPC frames on fd 3, the guest's own messages on stdout/stderr (traced)"),
    rule!(SYS_recvfrom, ALLOW, "std's UnixStream::read, for guests that wrap fd 3 in std's socket type"),
    rule!(SYS_sendto, ALLOW, "std's UnixStream::write; stage 1 still requires dest_addr == NULL"),
    rule!(SYS_poll, ALLOW, "the serve loop waits on fd 3 with the next timer as its timeout (traced)"),
    rule!(SYS_close, ALLOW, "dropping the socket at exit; only fds 0-3 exist, closing them gains nothing"),
    rule!(SYS_fstat, ALLOW, "fd-only metadata (musl's fstat, is-fd-3-a-socket checks); takes no path"),
    rule!(SYS_readv, Verdict::Errno(EPERM), "the serve loop does single-buffer I/O (traced)"),
    rule!(SYS_writev, Verdict::Errno(EPERM), "the serve loop does single-buffer I/O (traced)"),
    rule!(SYS_pread64, Verdict::Errno(EPERM), "the loader's, at startup only"),
    rule!(SYS_recvmsg, Verdict::Errno(EPERM), "not used after init; no ancillary data"),
    rule!(SYS_sendmsg, Verdict::Errno(EPERM), "not used after init; no descriptor passing (SCM_RIGHTS)"),
    rule!(SYS_ppoll, Verdict::Errno(EPERM), "glibc's and musl's poll() use poll on x86_64"),
    rule!(SYS_lseek, Verdict::Errno(EPERM), "no files after init"),
    rule!(SYS_fcntl, Verdict::Errno(EPERM), "fd flags are final before lockdown (traced: unused after Hello)"),
    // ---- files and exec: gone ----
    rule!(SYS_open, Verdict::Errno(EACCES), "no file is opened after init; EACCES reads as 'permission denied' to libc"),
    rule!(SYS_openat, Verdict::Errno(EACCES), "no file is opened after init; EACCES reads as 'permission denied' to libc"),
    rule!(
        SYS_newfstatat,
        Verdict::Errno(ENOSYS),
        "takes a path: AT_EMPTY_PATH only permits an empty path, it does not make the kernel ignore \
         a non-empty one, and BPF cannot read the path, so no flag test makes it fd-only. glibc's \
         fstat() (newfstatat(fd, \"\", AT_EMPTY_PATH)) then fails with ENOSYS; the fstat syscall stays"
    ),
    rule!(SYS_execve, KILL, "nothing execs after lockdown; an attempt is an attack, visible as SIGSYS"),
    rule!(SYS_execveat, KILL, "as execve (stage 1 kills it too)"),
    // ---- memory ----
    rule!(SYS_brk, ALLOW, "malloc's main arena grows and shrinks with brk (traced)"),
    rule!(
        SYS_mmap,
        Verdict::AllowIf {
            checks: &[Check::LowMaskedNot { arg: 2, mask: PROT_EXEC, value: PROT_EXEC }],
            otherwise: EACCES,
        },
        "large allocations; never PROT_EXEC after init: the engines interpret, their code is mapped"
    ),
    rule!(SYS_munmap, ALLOW, "free of large blocks; std unmaps the signal stack at exit (traced)"),
    rule!(SYS_mremap, ALLOW, "realloc of large blocks; cannot change a mapping's protection"),
    rule!(SYS_madvise, ALLOW, "allocators return memory; stage 1 still limits the advice"),
    rule!(
        SYS_mprotect,
        Verdict::Errno(EACCES),
        "protections are final after init: no re-opening RELRO, no exec gain (unused after Hello)"
    ),
    // ---- threads and the libc runtime ----
    rule!(SYS_futex, ALLOW, "std's Once and locks (traced: FUTEX_WAKE_PRIVATE); stage 1 still refuses PI ops"),
    rule!(SYS_clone, Verdict::Errno(EPERM), "no new threads or processes: the locked-down guest is single-threaded; thread::spawn returns an error"),
    rule!(SYS_set_tid_address, Verdict::Errno(EPERM), "thread startup; no threads after lockdown"),
    rule!(
        SYS_set_robust_list,
        ALLOW,
        "a thread created before lockdown (wasm's epoch ticker) can first run after it, and \
         glibc's start_thread registers its robust list then; only the own thread's pointer"
    ),
    rule!(
        SYS_rseq,
        ALLOW,
        "as set_robust_list: glibc's start_thread registers rseq and aborts the process \
         (\"Fatal glibc error: rseq registration failed\") if that fails; found by tracing the \
         wasm guest under the audit mode. Registers an area of the own thread only"
    ),
    rule!(SYS_arch_prctl, Verdict::Errno(EPERM), "TLS is set up at startup"),
    rule!(SYS_sched_yield, Verdict::Errno(EPERM), "one thread: nobody to yield to"),
    rule!(SYS_sched_getaffinity, Verdict::Errno(EPERM), "available_parallelism(); callers fall back to 1 on an error"),
    rule!(SYS_prlimit64, Verdict::Errno(EPERM), "std reads RLIMIT_STACK at startup only"),
    rule!(SYS_getpid, ALLOW, "abort()/raise() address the signal to the own process"),
    rule!(SYS_gettid, ALLOW, "abort()/raise() address the signal to the own thread"),
    rule!(SYS_exit, ALLOW, "a thread ending; harmless"),
    rule!(SYS_exit_group, ALLOW, "process exit (traced)"),
    rule!(SYS_restart_syscall, ALLOW, "the kernel resumes an interrupted poll or sleep through it"),
    // ---- signals: to itself only ----
    rule!(SYS_rt_sigaction, ALLOW, "std's SIGSEGV handler resets itself to SIG_DFL on a fault that is not a stack overflow; refused, the fault would loop"),
    rule!(SYS_rt_sigprocmask, ALLOW, "abort() and raise() block signals around the kill"),
    rule!(SYS_rt_sigreturn, ALLOW, "return from a signal handler"),
    rule!(SYS_sigaltstack, ALLOW, "std disables the alternate signal stack at exit (traced)"),
    rule!(SYS_tgkill, ALLOW, "abort()/raise(); stage 1 still limits it to the own pid"),
    rule!(SYS_kill, Verdict::Errno(EPERM), "raise() and abort() use tgkill"),
    // ---- time and randomness ----
    rule!(SYS_clock_gettime, ALLOW, "Instant and Date.now when the vDSO falls back to the syscall (some VM clock sources)"),
    rule!(SYS_clock_getres, ALLOW, "timer resolution (vDSO fallback)"),
    rule!(SYS_gettimeofday, ALLOW, "vDSO fallback"),
    rule!(SYS_clock_nanosleep, ALLOW, "thread::sleep"),
    rule!(SYS_nanosleep, ALLOW, "older sleep path"),
    rule!(SYS_getrandom, ALLOW, "HashMap seeds, Math.random per container (traced: GRND_INSECURE); stage 1 still limits flags"),
    // ---- self-lockdown: finished ----
    rule!(
        SYS_prctl,
        Verdict::AllowIf {
            checks: &[Check::LowIn {
                arg: 0,
                mask: u32::MAX,
                values: &[c(libc::PR_SET_NAME as u32), c(libc::PR_GET_NAME as u32)],
            }],
            otherwise: EPERM,
        },
        "thread names only: std names a thread from inside it, so one created before lockdown \
         can do it after (wasm's epoch ticker). Everything else (PR_SET_MM, PR_SET_SECCOMP, \
         PR_SET_DUMPABLE, ...) is EPERM; glibc treats PR_SET_VMA naming as best effort"
    ),
    rule!(SYS_seccomp, Verdict::Errno(EPERM), "the filter set is final: no more filters, no listener"),
];

/// Stage 2 under [`Profile::Wasm`](crate::registry::Profile::Wasm): the rows that replace
/// [`STAGE2_X86_64`]'s. A JIT engine (wasmtime) writes code and then makes it read-execute,
/// grows linear memory by `mprotect`ing reserved `PROT_NONE` pages read-write, and maps
/// executable code after lockdown, so memory protections stay changeable, but never to
/// write and execute at once (stage 1's W^X check says the same). MDWE is off for this
/// profile: it would refuse the RW→RX step. Everything else (files, sockets, processes,
/// signals to others, threads after lockdown) is as strict as for interpreters; an engine
/// thread (epoch ticker) must be started before lockdown.
pub(crate) static STAGE2_WASM_X86_64: &[SyscallRule] = &[
    rule!(
        SYS_mmap,
        Verdict::AllowIf {
            checks: &[Check::LowMaskedNot {
                arg: 2,
                mask: PROT_WRITE_EXEC,
                value: PROT_WRITE_EXEC
            }],
            otherwise: EACCES,
        },
        "code memory and linear-memory reservations; never writable and executable at once"
    ),
    rule!(
        SYS_mprotect,
        Verdict::AllowIf {
            checks: &[Check::LowMaskedNot {
                arg: 2,
                mask: PROT_WRITE_EXEC,
                value: PROT_WRITE_EXEC
            }],
            otherwise: EACCES,
        },
        "publishing JIT code (RW->RX) and growing linear memory (NONE->RW); never W+X"
    ),
];

/// Denials a healthy guest hits on purpose, which the audit mode (CI's check that no
/// runtime depends on a refused syscall) leaves as errnos instead of trapping: libc and std
/// probe them and carry on.
pub(crate) static AUDIT_EXPECTED: &[(u32, &str)] = &[
    (
        nr(libc::SYS_ioctl),
        "isatty() (std's stdio, engines' console) sees ENOTTY and treats the stream as a pipe",
    ),
    (
        nr(libc::SYS_sched_getaffinity),
        "std's thread start calls pthread_getattr_np, which asks sched_getaffinity about the \
         thread's own tid: refused for every thread but the main one (stage 1 compares with the \
         pid), glibc reports an error and std goes on without the stack bounds (traced: wasm's \
         epoch ticker, which can start running after lockdown)",
    ),
];

/// `true` for numbers in [`AUDIT_EXPECTED`].
pub(crate) fn audit_keeps(nr: u32) -> bool {
    AUDIT_EXPECTED.iter().any(|(n, _)| *n == nr)
}

/// A resource limit applied in the child: `(resource, soft, hard)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rlimit {
    /// `RLIMIT_*`.
    pub resource: libc::__rlimit_resource_t,
    /// Name for the report.
    pub name: &'static str,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit. The guest cannot raise it: `prlimit64` with a new limit and `setrlimit`
    /// are refused by seccomp (this matters when the host runs as root, where
    /// `CAP_SYS_RESOURCE` would otherwise allow it).
    pub hard: u64,
    /// Why.
    pub why: &'static str,
}

/// The guest's file-descriptor limit. fds 0-3 are open after exec; the loader opens one
/// library at a time; a little room for `eventfd`/`epoll` if a runtime wants them.
pub(crate) const GUEST_NOFILE: u64 = 16;

/// Limits applied to every sandboxed guest.
///
/// `RLIMIT_NPROC` is deliberately absent: it counts every task of the *real uid*
/// system-wide (a low value breaks a desktop user with many processes) and is not enforced
/// at all for root, which is what CI runs as. Thread counts are bounded instead by seccomp
/// (only `pthread_create`-shaped `clone`) today and by a pids cgroup or stage 2 later.
/// `RLIMIT_AS` and `RLIMIT_CPU` depend on the runtime and the caller's limits; add them with
/// [`super::Plan::with_rlimit`].
pub(crate) static RLIMITS: &[Rlimit] = &[
    Rlimit {
        resource: libc::RLIMIT_CORE,
        name: "core",
        soft: 0,
        hard: 0,
        why: "no core dumps of guest memory",
    },
    Rlimit {
        resource: libc::RLIMIT_FSIZE,
        name: "fsize",
        soft: 0,
        hard: 0,
        why: "no file writes (stdout/stderr must be pipes: SIGXFSZ on regular files)",
    },
    Rlimit {
        resource: libc::RLIMIT_NOFILE,
        name: "nofile",
        soft: GUEST_NOFILE,
        hard: GUEST_NOFILE,
        why: "fds 0-3 plus the loader's one-at-a-time library opens",
    },
    Rlimit {
        resource: libc::RLIMIT_MEMLOCK,
        name: "memlock",
        soft: 0,
        hard: 0,
        why: "no pinned memory",
    },
    Rlimit {
        resource: libc::RLIMIT_MSGQUEUE,
        name: "msgqueue",
        soft: 0,
        hard: 0,
        why: "no POSIX message queues",
    },
    Rlimit {
        resource: libc::RLIMIT_LOCKS,
        name: "locks",
        soft: 0,
        hard: 0,
        why: "no file locks",
    },
];

/// Landlock access rights and ABI levels, from `<linux/landlock.h>`.
pub(crate) mod landlock {
    /// The newest Landlock ABI this policy was written and tested against. A newer kernel is
    /// asked for this ABI's rights only, so the policy is the same on every kernel that has
    /// it (rust-landlock's rule: request a named ABI, never "whatever the kernel has").
    pub(crate) const TESTED_ABI: u32 = 7;

    /// Execute a file.
    pub(crate) const FS_EXECUTE: u64 = 1 << 0;
    /// Open a file for writing.
    pub(crate) const FS_WRITE_FILE: u64 = 1 << 1;
    /// Open a file for reading.
    pub(crate) const FS_READ_FILE: u64 = 1 << 2;
    /// All filesystem rights of ABI 1 (execute .. make_sym).
    pub(crate) const FS_ABI1: u64 = (1 << 13) - 1;
    /// ABI 2: link or rename across directories.
    pub(crate) const FS_REFER: u64 = 1 << 13;
    /// ABI 3: truncate.
    pub(crate) const FS_TRUNCATE: u64 = 1 << 14;
    /// ABI 5: ioctl on device files.
    pub(crate) const FS_IOCTL_DEV: u64 = 1 << 15;
    /// ABI 4: bind a TCP port.
    pub(crate) const NET_BIND_TCP: u64 = 1 << 0;
    /// ABI 4: connect to a TCP port.
    pub(crate) const NET_CONNECT_TCP: u64 = 1 << 1;
    /// ABI 6: connect to abstract unix sockets outside the domain.
    pub(crate) const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
    /// ABI 6: send signals outside the domain.
    pub(crate) const SCOPE_SIGNAL: u64 = 1 << 1;

    /// Filesystem rights handled (so denied unless granted) at `abi`.
    pub(crate) const fn handled_fs(abi: u32) -> u64 {
        let mut rights = FS_ABI1;
        if abi >= 2 {
            rights |= FS_REFER;
        }
        if abi >= 3 {
            rights |= FS_TRUNCATE;
        }
        if abi >= 5 {
            rights |= FS_IOCTL_DEV;
        }
        rights
    }

    /// Network rights handled at `abi` (none granted: no TCP bind or connect).
    pub(crate) const fn handled_net(abi: u32) -> u64 {
        if abi >= 4 {
            NET_BIND_TCP | NET_CONNECT_TCP
        } else {
            0
        }
    }

    /// IPC scopes at `abi`: no abstract unix sockets or signals outside the guest.
    pub(crate) const fn scoped(abi: u32) -> u64 {
        if abi >= 6 {
            SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        } else {
            0
        }
    }

    /// Rights granted on the guest executable and its ELF interpreter: the kernel opens both
    /// for `execve` (needs EXECUTE and READ_FILE).
    pub(crate) const GRANT_EXEC: u64 = FS_EXECUTE | FS_READ_FILE;
    /// Rights granted on each shared library: the loader opens and mmaps it; mapping
    /// `PROT_EXEC` is not a Landlock right, so READ_FILE is enough.
    pub(crate) const GRANT_LIBRARY: u64 = FS_READ_FILE;
    /// Rights a rule on a regular file may carry (others are directory rights: EINVAL).
    pub(crate) const FILE_RIGHTS: u64 =
        FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV;
}

/// The verdict the stage-1 filter gives `nr` (an x86_64 number below the x32 bit), straight
/// from the tables: what the BPF must implement and what the tests expect.
pub(crate) fn stage1_verdict(nr: u32) -> Verdict {
    if let Some(rule) = STAGE1_X86_64.iter().find(|r| r.nr == nr) {
        return rule.verdict;
    }
    if nr > NEWEST_KNOWN_SYSCALL || UNASSIGNED.contains(&nr) {
        UNKNOWN_NUMBER
    } else {
        DEFAULT_KNOWN
    }
}

/// The verdict of the stage-2 filter alone for `nr`: its table row, else the stage-1 errno
/// for syscalls stage 1 refuses gracefully (so a libc probe keeps seeing `ENOSYS`/`ENOTTY`/
/// `EACCES`: with two errno results the kernel returns the newer filter's), else `ENOSYS` for
/// unknown numbers and `EPERM` for known ones. Stage-1 kills need no row here: the kernel
/// applies the most restrictive result of the two filters.
pub(crate) fn stage2_verdict(nr: u32) -> Verdict {
    if let Some(rule) = STAGE2_X86_64.iter().find(|r| r.nr == nr) {
        return rule.verdict;
    }
    match stage1_verdict(nr) {
        Verdict::Errno(e) => Verdict::Errno(e),
        // Killed by stage 1 anyway; EPERM here merges with the neighbouring ranges, which keeps
        // the program short.
        Verdict::Kill => DEFAULT_KNOWN,
        Verdict::Allow | Verdict::AllowIf { .. } => DEFAULT_KNOWN,
    }
}

/// [`stage2_verdict`] under [`Profile::Wasm`](crate::registry::Profile::Wasm): its
/// [`STAGE2_WASM_X86_64`] rows first.
pub(crate) fn stage2_wasm_verdict(nr: u32) -> Verdict {
    match STAGE2_WASM_X86_64.iter().find(|r| r.nr == nr) {
        Some(rule) => rule.verdict,
        None => stage2_verdict(nr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasm_profile_changes_only_memory_protection() {
        for nr in 0..=NEWEST_KNOWN_SYSCALL + 8 {
            let (js, wasm) = (stage2_verdict(nr), stage2_wasm_verdict(nr));
            if nr == nr_of(libc::SYS_mmap) || nr == nr_of(libc::SYS_mprotect) {
                assert_ne!(js, wasm, "{nr}");
                // The same W^X rule as stage 1, so stage 2 takes nothing stage 1 refuses.
                assert_eq!(wasm, stage1_verdict(nr), "{nr}");
            } else {
                assert_eq!(js, wasm, "{nr}");
            }
        }
        for rule in STAGE2_WASM_X86_64 {
            assert!(!rule.why.is_empty());
            assert!(
                STAGE2_X86_64.iter().any(|r| r.nr == rule.nr),
                "{}",
                rule.name
            );
        }
    }

    #[test]
    fn no_rule_for_numbers_the_kernel_never_filters() {
        for (n, why) in SECCOMP_PASSTHROUGH {
            assert!(!why.is_empty());
            assert!(!UNASSIGNED.contains(n), "{n}");
            let listed = STAGE1_X86_64
                .iter()
                .chain(STAGE2_X86_64)
                .any(|r| r.nr == *n);
            assert!(!listed, "a rule for {n} would never apply");
        }
    }

    #[test]
    fn audit_keeps_only_listed_numbers() {
        assert!(audit_keeps(nr_of(libc::SYS_ioctl)));
        assert!(!audit_keeps(nr_of(libc::SYS_openat)));
        assert!(!audit_keeps(NEWEST_KNOWN_SYSCALL + 1));
        for (n, why) in AUDIT_EXPECTED {
            assert!(!why.is_empty());
            // Only errno verdicts can be kept: a kill stays a kill.
            assert!(matches!(stage2_verdict(*n), Verdict::Errno(_)), "{n}");
        }
    }

    fn nr_of(n: c_long) -> u32 {
        nr(n)
    }

    #[test]
    fn table_has_no_duplicates_and_known_numbers() {
        let mut seen = std::collections::BTreeSet::new();
        for rule in STAGE1_X86_64 {
            assert!(seen.insert(rule.nr), "{} listed twice", rule.name);
            assert!(
                rule.nr <= NEWEST_KNOWN_SYSCALL,
                "{} is newer than the table",
                rule.name
            );
            assert!(
                !UNASSIGNED.contains(&rule.nr),
                "{} in the unassigned hole",
                rule.name
            );
            assert!(!rule.why.is_empty(), "{} has no reason", rule.name);
            assert!(!rule.name.starts_with("SYS_"), "{}", rule.name);
        }
    }

    #[test]
    fn stage2_table_is_well_formed_and_reconsiders_every_stage1_allowance() {
        let mut seen = std::collections::BTreeSet::new();
        for rule in STAGE2_X86_64 {
            assert!(seen.insert(rule.nr), "{} listed twice", rule.name);
            assert!(rule.nr <= NEWEST_KNOWN_SYSCALL, "{}", rule.name);
            assert!(!rule.why.is_empty(), "{} has no reason", rule.name);
            // A stage-2 allowance of something stage 1 refuses would be dead and misleading.
            if matches!(rule.verdict, Verdict::Allow | Verdict::AllowIf { .. }) {
                assert!(
                    matches!(
                        stage1_verdict(rule.nr),
                        Verdict::Allow | Verdict::AllowIf { .. }
                    ),
                    "stage 2 allows {}, which stage 1 refuses",
                    rule.name
                );
            }
        }
        // Every syscall stage 1 lets through was decided again for the locked-down guest.
        for rule in STAGE1_X86_64 {
            if matches!(rule.verdict, Verdict::Allow | Verdict::AllowIf { .. }) {
                assert!(
                    seen.contains(&rule.nr),
                    "stage 1 allows {}; stage 2 must say whether the running guest still may",
                    rule.name
                );
            }
        }
    }

    #[test]
    fn stage2_keeps_stage1_probe_errnos() {
        for sys in [
            libc::SYS_ioctl,
            libc::SYS_statx,
            libc::SYS_clone3,
            libc::SYS_socket,
        ] {
            assert_eq!(stage2_verdict(nr(sys)), stage1_verdict(nr(sys)));
        }
        assert_eq!(stage2_verdict(nr(libc::SYS_getppid)), Verdict::Errno(EPERM));
        assert_eq!(stage2_verdict(400), Verdict::Errno(ENOSYS));
        assert_eq!(
            stage2_verdict(NEWEST_KNOWN_SYSCALL + 1),
            Verdict::Errno(ENOSYS)
        );
        assert_eq!(stage2_verdict(nr(libc::SYS_execve)), Verdict::Kill);
    }

    #[test]
    fn sample_verdicts() {
        assert_eq!(stage1_verdict(nr(libc::SYS_read)), Verdict::Allow);
        assert_eq!(stage1_verdict(nr(libc::SYS_clone3)), Verdict::Errno(ENOSYS));
        assert_eq!(stage1_verdict(nr(libc::SYS_fork)), Verdict::Errno(EPERM));
        assert_eq!(stage1_verdict(400), Verdict::Errno(ENOSYS));
        assert_eq!(
            stage1_verdict(NEWEST_KNOWN_SYSCALL + 1),
            Verdict::Errno(ENOSYS)
        );
        assert_eq!(stage1_verdict(nr(libc::SYS_bpf)), Verdict::Kill);
    }
}

//! The exhaustive sweep: every x86_64 syscall number (and, for stage 1, every x32 alias) is
//! made on the real kernel, in a child under the real installed filters, and its result is
//! compared with what the policy tables say ([`bpf::oracle`]), so the test cannot drift from
//! the policy: a table change changes the expectation, a filter or kernel that disagrees
//! fails the test naming the number.
//!
//! Arguments are harmless: `-1` for the first argument (a bad fd, an invalid address, an
//! invalid clock, `kill`'s "every process" with signal 0) and zero for the rest (a zero
//! length, a NULL pointer, signal 0). So a call the filter lets through gets a refusal from
//! the kernel itself (`EBADF`, `EFAULT`, `EINVAL`, ...) or does nothing (`poll` of no fds,
//! `getrandom` of no bytes, `sched_yield`), and [`kernel_answer`] says which, number by
//! number. A refused call never reaches the kernel, so its arguments do not matter; a call
//! that could still do harm if a filter bug let it through (`reboot`, `kill`) does nothing
//! with these arguments either (`reboot` needs magic numbers; signal 0 is only a check).
//!
//! Configurations: stage 1 alone (the loader's window), stage 1 + stage 2 for each profile
//! (the locked-down guest), and stage 1 + the audited stage 2 (CI's audit mode, where
//! refusals trap). Kills and traps end the child, so each such number gets its own child;
//! everything else runs in one child per configuration.

use super::*;
use bpf::{oracle, stacked, RET_ALLOW, RET_KILL, RET_TRAP};
use policy::NEWEST_KNOWN_SYSCALL;

/// Stands in for the guest's pid in the oracle: no harmless argument equals it, and neither
/// does the real child's pid (so `SelfPid` checks fail in both).
const NOT_A_PID: u32 = 0xffff_fffe;

/// How far past the table the sweep goes (numbers a future kernel may assign).
const BEYOND: u32 = 32;

/// The exit status `exit`/`exit_group` are called with.
const EXIT_CODE: u64 = 7;

#[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
fn nr(n: libc::c_long) -> u32 {
    n as u32
}

fn harmless_args(n: u32) -> [u64; 6] {
    let mut a = [u64::MAX, 0, 0, 0, 0, 0];
    if n == nr(libc::SYS_poll) {
        // No fds (NULL), no wait.
        a[0] = 0;
    }
    if n == nr(libc::SYS_ppoll) {
        // A NULL timeout would wait forever; an invalid one is EFAULT.
        a[2] = u64::MAX;
    }
    if n == nr(libc::SYS_exit) || n == nr(libc::SYS_exit_group) {
        a[0] = EXIT_CODE;
    }
    a
}

/// What the kernel does with [`harmless_args`] for a call the filters let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// Refuses with this errno.
    Errno(i32),
    /// Succeeds (a pid, the current break, 0 bytes, ...).
    NonNegative,
    /// Ends the process with [`EXIT_CODE`].
    Exits,
    /// Not made: the reason.
    Skip(&'static str),
}

/// The kernel's answer for every number some configuration allows. A number missing here
/// that a configuration allows fails the sweep: whoever widens the policy decides what the
/// harmless call does.
fn kernel_answer(n: u32) -> Option<Kernel> {
    use libc::*;
    use Kernel::*;
    let table: &[(c_long, Kernel)] = &[
        (SYS_read, Errno(EBADF)),
        (SYS_write, Errno(EBADF)),
        (SYS_readv, Errno(EBADF)),
        (SYS_writev, Errno(EBADF)),
        (SYS_pread64, Errno(EBADF)),
        (SYS_recvfrom, Errno(EBADF)),
        (SYS_recvmsg, Errno(EBADF)),
        (SYS_sendmsg, Errno(EBADF)),
        (SYS_sendto, Errno(EBADF)),
        (SYS_close, Errno(EBADF)),
        (SYS_lseek, Errno(EBADF)),
        (SYS_fstat, Errno(EBADF)),
        (SYS_poll, NonNegative),
        (SYS_ppoll, Errno(EFAULT)),
        (SYS_newfstatat, Errno(EFAULT)),
        (SYS_open, Errno(EFAULT)),
        (SYS_openat, Errno(EFAULT)),
        (SYS_execve, Errno(EFAULT)),
        (SYS_brk, NonNegative),
        (SYS_mmap, Errno(EINVAL)),
        (SYS_mprotect, Errno(EINVAL)),
        (SYS_munmap, Errno(EINVAL)),
        (SYS_mremap, Errno(EINVAL)),
        (SYS_madvise, Errno(EINVAL)),
        (SYS_futex, Errno(EINVAL)),
        // Points clear_child_tid at an invalid address; the kernel's write at exit fails
        // silently.
        (SYS_set_tid_address, NonNegative),
        (SYS_set_robust_list, Errno(EINVAL)),
        (SYS_rseq, Errno(EINVAL)),
        (SYS_sched_yield, NonNegative),
        (SYS_getpid, NonNegative),
        (SYS_gettid, NonNegative),
        (SYS_exit, Exits),
        (SYS_exit_group, Exits),
        (SYS_restart_syscall, Errno(EINTR)),
        (SYS_rt_sigaction, Errno(EINVAL)),
        (SYS_rt_sigprocmask, Errno(EINVAL)),
        (
            SYS_rt_sigreturn,
            Skip(
                "without a signal frame it loads registers from the stack and crashes; its \
                 verdict is checked by the BPF interpreter tests",
            ),
        ),
        (SYS_sigaltstack, Errno(EFAULT)),
        (SYS_clock_gettime, Errno(EINVAL)),
        (SYS_clock_getres, Errno(EINVAL)),
        (SYS_clock_nanosleep, Errno(EFAULT)),
        (SYS_nanosleep, Errno(EFAULT)),
        (SYS_gettimeofday, Errno(EFAULT)),
        (SYS_getrandom, Errno(EFAULT)),
    ];
    table.iter().find(|(s, _)| nr(*s) == n).map(|(_, k)| *k)
}

/// One filter set the sweep runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Config {
    /// Stage 1 only.
    Stage1,
    /// Stage 1 + stage 2 for a profile, plain or audited.
    Stage2 { profile: Profile, audit: bool },
}

impl Config {
    fn profile(self) -> Profile {
        match self {
            Config::Stage1 => Profile::Js,
            Config::Stage2 { profile, .. } => profile,
        }
    }

    /// The seccomp result the tables give `n` with `args`.
    fn expected(self, n: u32, args: [u64; 6]) -> u32 {
        let one = oracle(
            policy::stage1_verdict,
            bpf::Denials::Errno,
            n,
            args,
            NOT_A_PID,
        );
        match self {
            Config::Stage1 => one,
            Config::Stage2 { profile, audit } => stacked(
                one,
                oracle(
                    stage2_table(profile, audit),
                    denials(audit),
                    n,
                    args,
                    NOT_A_PID,
                ),
            ),
        }
    }

    fn stage2(self) -> Option<Stage2Prog> {
        match self {
            Config::Stage1 => None,
            Config::Stage2 { profile, audit } => Some(Stage2Prog::of(profile, audit)),
        }
    }
}

/// What a number must do in the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Return exactly this (`-errno`).
    Ret(i64),
    /// Return something `>= 0`.
    NonNegative,
    /// End the child with this signal.
    Signal(i32),
    /// End the child with this exit status.
    Exit(i32),
}

fn raw(n: u32, a: [u64; 6]) -> i64 {
    // SAFETY: harmless arguments (module doc); nothing here allocates.
    sys(unsafe { libc::syscall(libc::c_long::from(n), a[0], a[1], a[2], a[3], a[4], a[5]) })
}

/// What `n` does without any filter, if the kernel has it (`None` for `ENOSYS`).
fn native(n: u32) -> Option<Want> {
    let o = fork_run(None, &|| emit(raw(n, harmless_args(n))));
    match (o.killed_by(), o.values.first()) {
        (Some(sig), _) => Some(Want::Signal(sig)),
        (None, Some(&r)) if r == -i64::from(libc::ENOSYS) => None,
        (None, Some(&r)) => Some(Want::Ret(r)),
        (None, None) => panic!("{n}: no result natively; status {:#x}", o.status),
    }
}

fn sweep(config: Config) {
    let exe = this_exe();
    let plan = strict_plan_for(&exe, config.profile());
    let stage2 = config.stage2();
    let install = || {
        if let Some(s) = &stage2 {
            if s.install() != 0 {
                // SAFETY: leaving the child.
                unsafe { libc::_exit(3) };
            }
        }
    };

    let mut batch: Vec<(u32, [u64; 6], Want)> = Vec::new();
    let mut alone: Vec<(u32, [u64; 6], Want)> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut numbers: Vec<u32> = (0..=NEWEST_KNOWN_SYSCALL + BEYOND).collect();
    if config == Config::Stage1 {
        // Every x32 alias: killed before the table is consulted.
        numbers.extend((0..=NEWEST_KNOWN_SYSCALL + BEYOND).map(|n| n | bpf::X32_SYSCALL_BIT));
    } else {
        numbers.extend([0, 1, 39, 60, 231].map(|n| n | bpf::X32_SYSCALL_BIT));
    }
    // Numbers the kernel never shows to a filter: whatever it does natively, it does under
    // every configuration (on kernels without them, the table's verdict applies).
    let passthrough: Vec<(u32, Want)> = policy::SECCOMP_PASSTHROUGH
        .iter()
        .filter_map(|&(n, _)| native(n).map(|w| (n, w)))
        .collect();
    for n in numbers {
        let args = harmless_args(n);
        if let Some(&(_, w)) = passthrough.iter().find(|(p, _)| *p == n) {
            match w {
                Want::Ret(_) => batch.push((n, args, w)),
                _ => alone.push((n, args, w)),
            }
            continue;
        }
        let want = if n & bpf::X32_SYSCALL_BIT != 0 {
            // The oracle covers table numbers; the prologue kills every x32 number.
            RET_KILL
        } else {
            config.expected(n, args)
        };
        let action = want & libc::SECCOMP_RET_ACTION_FULL;
        let entry = if want == RET_ALLOW {
            match kernel_answer(n) {
                Some(Kernel::Errno(e)) => (n, args, Want::Ret(-i64::from(e)), false),
                Some(Kernel::NonNegative) => (n, args, Want::NonNegative, false),
                Some(Kernel::Exits) => (n, args, Want::Exit(EXIT_CODE as i32), true),
                Some(Kernel::Skip(_)) => continue,
                None => {
                    problems.push(format!(
                        "{n}: allowed, but the sweep has no harmless call for it"
                    ));
                    continue;
                }
            }
        } else if action == libc::SECCOMP_RET_ERRNO {
            let errno = want & libc::SECCOMP_RET_DATA;
            (n, args, Want::Ret(-i64::from(errno)), false)
        } else if want == RET_KILL || action == RET_TRAP {
            (n, args, Want::Signal(libc::SIGSYS), true)
        } else {
            problems.push(format!("{n}: unexpected seccomp result {want:#x}"));
            continue;
        };
        let (n, args, w, own_child) = entry;
        if own_child {
            alone.push((n, args, w));
        } else {
            batch.push((n, args, w));
        }
    }

    let o = fork_run(Some(&plan), &|| {
        install();
        for (n, a, _) in &batch {
            emit(raw(*n, *a));
        }
    });
    assert_eq!(o.failure, None, "{config:?}: {}", o.output);
    assert!(
        o.exited_ok(),
        "{config:?}: batch child status {:#x} at number {:?}, {} of {} results; {}",
        o.status,
        batch.get(o.values.len()).map(|b| b.0),
        o.values.len(),
        batch.len(),
        o.output
    );
    assert_eq!(o.values.len(), batch.len(), "{config:?}");
    for ((n, _, want), got) in batch.iter().zip(&o.values) {
        let ok = match *want {
            Want::Ret(r) => *got == r,
            Want::NonNegative => *got >= 0,
            Want::Signal(_) | Want::Exit(_) => false,
        };
        if !ok {
            problems.push(format!("{n}: want {want:?}, got {got}"));
        }
    }

    for (n, a, want) in &alone {
        let o = fork_run(Some(&plan), &|| {
            install();
            emit(raw(*n, *a));
        });
        let got = match (o.killed_by(), libc::WIFEXITED(o.status)) {
            (Some(sig), _) => Want::Signal(sig),
            (None, true) => Want::Exit(libc::WEXITSTATUS(o.status)),
            _ => Want::Ret(i64::MIN),
        };
        if got != *want {
            problems.push(format!(
                "{n:#x}: want {want:?}, got {got:?} (results {:?})",
                o.values
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{config:?}: {} numbers disagree with the policy:\n{}",
        problems.len(),
        problems.join("\n")
    );
    eprintln!(
        "{config:?}: {} numbers in one child, {} alone",
        batch.len(),
        alone.len()
    );
}

#[test]
fn sweep_stage1() {
    sweep(Config::Stage1);
}

/// Every i386 number through `int 0x80` (the 32-bit entry point, which x86_64 processes can
/// use): the architecture check kills each before any table is consulted, under stage 1 and
/// under both stages. Arguments are `-1` in every register (i386 `kill(-1, -1)` and the like
/// never run: the call is killed at entry; `reboot` would need magic numbers anyway).
#[test]
fn sweep_i386_entry_point() {
    let exe = this_exe();
    let plan = strict_plan(&exe);
    let stage2 = Stage2Prog::new();
    let mut problems = Vec::new();
    for with_stage2 in [false, true] {
        for n in 0..=NEWEST_KNOWN_SYSCALL {
            let o = fork_run(Some(&plan), &|| {
                if with_stage2 && stage2.install() != 0 {
                    // SAFETY: leaving the child.
                    unsafe { libc::_exit(3) };
                }
                let r: i64;
                // SAFETY: the call is killed at entry (that is the test); a filter bug would
                // run an i386 syscall with invalid arguments.
                unsafe {
                    // rbx is reserved by LLVM: swap the first argument in and out around the
                    // call.
                    std::arch::asm!(
                        "xchg rbx, {b}",
                        "int 0x80",
                        "xchg rbx, {b}",
                        b = inout(reg) -1i64 => _,
                        inlateout("rax") i64::from(n) => r,
                        in("rcx") -1i64,
                        in("rdx") -1i64,
                        in("rsi") -1i64,
                        in("rdi") -1i64,
                        options(nostack)
                    );
                }
                emit(r);
            });
            if o.killed_by() != Some(libc::SIGSYS) {
                problems.push(format!(
                    "i386 {n} (stage 2: {with_stage2}): status {:#x}, results {:?}",
                    o.status, o.values
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn sweep_stage2_js() {
    sweep(Config::Stage2 {
        profile: Profile::Js,
        audit: false,
    });
}

#[test]
fn sweep_stage2_wasm() {
    sweep(Config::Stage2 {
        profile: Profile::Wasm,
        audit: false,
    });
}

#[test]
fn sweep_stage2_js_audited() {
    sweep(Config::Stage2 {
        profile: Profile::Js,
        audit: true,
    });
}

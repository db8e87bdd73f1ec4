//! Tests that fork, apply a plan in the child, and probe the result with raw syscalls.
//!
//! Forking inside the multi-threaded test harness is sound here for the same reason it is in
//! the launcher: between `fork` and `_exit`/`execve` the child runs only raw syscalls (no
//! allocation, no locks, no `std::io`); every buffer and C string it touches is prepared in
//! the parent before the fork. Results travel back as 8-byte messages on a SEQPACKET
//! socketpair that the child sees as fd 3, exactly where the guest finds its IPC socket.
//!
//! Each probe has a positive control: the same call in a child without the plan, which must
//! succeed (or fail differently), so a denial is the policy's doing and not the test's.

use super::*;
use crate::platform::{PolicyRequest, SpawnStep};
use crate::registry::Profile;
use std::{ffi::CString, os::unix::ffi::OsStrExt, path::PathBuf, time::Instant};

mod sweep;

fn errno() -> i64 {
    // SAFETY: reads this thread's errno.
    i64::from(unsafe { *libc::__errno_location() })
}

/// A syscall result as `r` or `-errno`.
fn sys(r: libc::c_long) -> i64 {
    if r < 0 {
        -errno()
    } else {
        r
    }
}

/// Sends one probe result to the parent (raw write on fd 3).
fn emit(v: i64) {
    let b = v.to_le_bytes();
    // SAFETY: b is valid for 8 bytes; fd 3 is the test socket.
    unsafe { libc::write(3, b.as_ptr().cast(), b.len()) };
}

struct Outcome {
    /// Raw wait status.
    status: i32,
    /// Probe results in order.
    values: Vec<i64>,
    /// A step failure the child reported instead of running the body.
    failure: Option<ChildFailure>,
    /// The child's stdout+stderr.
    output: String,
}

impl Outcome {
    fn exited_ok(&self) -> bool {
        libc::WIFEXITED(self.status) && libc::WEXITSTATUS(self.status) == 0
    }
    fn killed_by(&self) -> Option<i32> {
        libc::WIFSIGNALED(self.status).then(|| libc::WTERMSIG(self.status))
    }
}

const FAILURE_MARK: i64 = 0x0bad_0bad_0bad_0bad;

/// Forks; in the child: stdin = /dev/null, stdout/stderr = a pipe, then the plan (or, with
/// `None`, only the socket on fd 3), then `body`, then `_exit(0)`.
fn fork_run(plan: Option<&Plan>, body: &dyn Fn()) -> Outcome {
    let mut sv = [0; 2];
    let mut out = [0; 2];
    // SAFETY: plain fd-creating syscalls into arrays we own.
    unsafe {
        assert_eq!(
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                sv.as_mut_ptr()
            ),
            0
        );
        assert_eq!(libc::pipe2(out.as_mut_ptr(), libc::O_CLOEXEC), 0);
    }
    // SAFETY: literal path.
    let devnull = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    assert!(devnull >= 0);
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the child below only makes raw syscalls and leaves through _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: raw syscalls in the child, see the module doc.
        unsafe {
            libc::dup2(devnull, 0);
            libc::dup2(out[1], 1);
            libc::dup2(out[1], 2);
            match plan {
                Some(plan) => {
                    if let Err(f) = plan.apply_in_child(sv[1], parent) {
                        let b = f.to_bytes();
                        let mark = FAILURE_MARK.to_le_bytes();
                        libc::write(sv[1], mark.as_ptr().cast(), 8);
                        libc::write(sv[1], b.as_ptr().cast(), 8);
                        libc::_exit(111);
                    }
                }
                None => {
                    libc::dup2(sv[1], 3);
                }
            }
            body();
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copies of the child's ends.
    unsafe {
        libc::close(sv[1]);
        libc::close(out[1]);
        libc::close(devnull);
    }
    let mut values = Vec::new();
    let mut failure = None;
    let mut expect_failure = false;
    loop {
        let mut pfd = libc::pollfd {
            fd: sv[0],
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 20_000) };
        assert!(r > 0, "child {pid} timed out");
        let mut buf = [0u8; 8];
        // SAFETY: buf is 8 bytes.
        let n = unsafe { libc::read(sv[0], buf.as_mut_ptr().cast(), 8) };
        if n <= 0 {
            break;
        }
        if n != 8 {
            // Not a probe result (the control's sendto probe really sends a byte).
            continue;
        }
        if expect_failure {
            failure = ChildFailure::from_bytes(buf);
            expect_failure = false;
            continue;
        }
        let v = i64::from_le_bytes(buf);
        if v == FAILURE_MARK {
            expect_failure = true;
        } else {
            values.push(v);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let mut output = Vec::new();
    loop {
        let mut buf = [0u8; 4096];
        // SAFETY: buf is valid.
        let n = unsafe { libc::read(out[0], buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        output.extend_from_slice(&buf[..n as usize]);
    }
    // SAFETY: our fds.
    unsafe {
        libc::close(sv[0]);
        libc::close(out[0]);
    }
    Outcome {
        status,
        values,
        failure,
        output: String::from_utf8_lossy(&output).into_owned(),
    }
}

fn this_exe() -> PathBuf {
    std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .expect("current_exe")
}

fn strict_plan(guest: &std::path::Path) -> Plan {
    strict_plan_for(guest, Profile::Js)
}

fn strict_plan_for(guest: &std::path::Path, profile: Profile) -> Plan {
    prepare(&PolicyRequest {
        guest,
        no_sandbox: false,
        allow_degraded: false,
        profile,
    })
    .expect("prepare (this machine has seccomp and Landlock)")
}

#[test]
fn report_for_this_machine() {
    let plan = strict_plan(&this_exe());
    let r = plan.report();
    assert!(r.sandboxed);
    assert!(r.kernel.seccomp);
    assert!(matches!(
        r.kernel.landlock,
        LandlockSupport::Available { .. }
    ));
    assert!(r
        .status(Protection::FileRead)
        .is_some_and(|s| s.is_enforced()));
    assert!(r.status(Protection::Exec).is_some_and(|s| s.is_enforced()));
    // The documented stage-1 gap: newfstatat.
    assert!(!r
        .status(Protection::FileMetadata)
        .is_some_and(|s| s.is_enforced()));
    assert!(!r.fully_enforced());
    assert!(r.clone().with_stage2_verified().fully_enforced(), "{r}");
    assert!(r
        .file_grants
        .iter()
        .any(|g| g.execute && g.path == this_exe()));
    let text = r.to_string();
    assert!(text.contains("file reads"), "{text}");
    eprintln!("{text}");
}

#[test]
fn no_sandbox_report_is_disabled() {
    let plan = prepare(&PolicyRequest {
        guest: std::path::Path::new("relative/is/fine/when/disabled"),
        no_sandbox: true,
        allow_degraded: false,
        profile: Profile::Js,
    })
    .expect("prepare");
    let r = plan.report();
    assert!(!r.sandboxed && !r.fully_enforced());
    assert!(r
        .protections
        .iter()
        .all(|p| p.status == ProtectionStatus::Disabled));
}

#[test]
fn relative_guest_is_rejected() {
    let e = prepare(&PolicyRequest {
        guest: std::path::Path::new("guest"),
        no_sandbox: false,
        allow_degraded: true,
        profile: Profile::Js,
    })
    .expect_err("relative");
    assert!(
        matches!(e, SandboxError::GuestPathNotAbsolute { .. }),
        "{e}"
    );
}

/// Probe indices, shared by the body and the assertions.
mod p {
    pub(super) const OPEN_PASSWD: usize = 0;
    pub(super) const SOCKET_INET: usize = 1;
    pub(super) const CLONE3: usize = 2;
    pub(super) const IOCTL_FIONREAD: usize = 3;
    pub(super) const IOCTL_TIOCSTI_HIGH: usize = 4;
    pub(super) const ALLOC_TOUCH: usize = 5;
    pub(super) const MMAP_RWX: usize = 6;
    pub(super) const MPROTECT_RW_TO_RX: usize = 7;
    pub(super) const KILL_PARENT: usize = 8;
    pub(super) const KILL_SELF: usize = 9;
    pub(super) const RAISE_LIMIT: usize = 10;
    pub(super) const GETRANDOM: usize = 11;
    pub(super) const STATX: usize = 12;
    pub(super) const STAT_SHADOW: usize = 13;
    pub(super) const OPEN_CREATE: usize = 14;
    pub(super) const SENDTO_ADDR: usize = 15;
    pub(super) const GETPPID: usize = 16;
    pub(super) const FUTEX_LOCK_PI: usize = 17;
    pub(super) const AFFINITY_SELF: usize = 18;
    pub(super) const AFFINITY_INIT: usize = 19;
    pub(super) const NR_NEWER: usize = 20;
    pub(super) const NR_HOLE: usize = 21;
    pub(super) const ACCESS: usize = 22;
    pub(super) const PROC_SELF_MEM: usize = 23;
    pub(super) const OPEN_OWN_EXE: usize = 24;
    pub(super) const SOCKETPAIR: usize = 25;
    pub(super) const WRITE_FD3: usize = 26;
    pub(super) const COUNT: usize = 27;
}

/// The probe body. `exe` is this test binary (granted read+exec by the plan).
fn probes(exe: &CString) {
    // SAFETY: raw syscalls with valid or deliberately harmless arguments; nothing allocates.
    unsafe {
        let mut r = [0i64; p::COUNT];
        let fd = libc::open(c"/etc/passwd".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        r[p::OPEN_PASSWD] = sys(fd.into());
        r[p::SOCKET_INET] = sys(libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0).into());
        r[p::CLONE3] = sys(libc::syscall(
            libc::SYS_clone3,
            std::ptr::null::<u8>(),
            0usize,
        ));
        let mut n: libc::c_int = 0;
        r[p::IOCTL_FIONREAD] = sys(libc::ioctl(3, libc::FIONREAD, &mut n).into());
        let c = 0u8;
        r[p::IOCTL_TIOCSTI_HIGH] = sys(libc::syscall(
            libc::SYS_ioctl,
            0,
            (0x123u64 << 32) | libc::TIOCSTI,
            &c,
        ));
        let len = 4 << 20;
        let m = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        r[p::ALLOC_TOUCH] = if m == libc::MAP_FAILED {
            -errno()
        } else {
            std::ptr::write_bytes(m.cast::<u8>(), 0x5a, len);
            let ok = *m.cast::<u8>().add(len - 1) == 0x5a;
            r[p::MPROTECT_RW_TO_RX] =
                sys(libc::mprotect(m, 4096, libc::PROT_READ | libc::PROT_EXEC).into());
            libc::munmap(m, len);
            i64::from(ok)
        };
        let x = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        r[p::MMAP_RWX] = if x == libc::MAP_FAILED { -errno() } else { 0 };
        // pid 1 is always another process.
        r[p::KILL_PARENT] = sys(libc::kill(1, 0).into());
        r[p::KILL_SELF] = sys(libc::kill(libc::getpid(), 0).into());
        let mut buf = [0u8; 16];
        r[p::GETRANDOM] = sys(libc::syscall(
            libc::SYS_getrandom,
            buf.as_mut_ptr(),
            16usize,
            0u32,
        ));
        let mut stx = [0u8; 256];
        r[p::STATX] = sys(libc::syscall(
            libc::SYS_statx,
            libc::AT_FDCWD,
            c"/etc/shadow".as_ptr(),
            0,
            0x7ffu32,
            stx.as_mut_ptr(),
        ));
        let mut st: libc::stat = std::mem::zeroed();
        r[p::STAT_SHADOW] = sys(libc::syscall(
            libc::SYS_newfstatat,
            libc::AT_FDCWD,
            c"/etc/shadow".as_ptr(),
            &mut st,
            0,
        ));
        r[p::OPEN_CREATE] = sys(libc::open(
            c"/nonexistent-confine-dir/probe".as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC,
            0o600,
        )
        .into());
        let addr = libc::sockaddr_un {
            sun_family: libc::AF_UNIX as libc::sa_family_t,
            sun_path: [0; 108],
        };
        r[p::SENDTO_ADDR] = sys(libc::sendto(
            3,
            c"x".as_ptr().cast(),
            1,
            0,
            (&addr as *const libc::sockaddr_un).cast(),
            std::mem::size_of::<libc::sa_family_t>() as libc::socklen_t + 1,
        ) as libc::c_long);
        r[p::GETPPID] = sys(libc::syscall(libc::SYS_getppid));
        r[p::FUTEX_LOCK_PI] = sys(libc::syscall(
            libc::SYS_futex,
            std::ptr::null::<u32>(),
            libc::FUTEX_LOCK_PI,
            0,
            0,
        ));
        let mut set = [0u8; 128];
        r[p::AFFINITY_SELF] = sys(libc::syscall(
            libc::SYS_sched_getaffinity,
            libc::getpid(),
            set.len(),
            set.as_mut_ptr(),
        ));
        r[p::AFFINITY_INIT] = sys(libc::syscall(
            libc::SYS_sched_getaffinity,
            1,
            set.len(),
            set.as_mut_ptr(),
        ));
        r[p::NR_NEWER] = sys(libc::syscall(libc::c_long::from(
            policy::NEWEST_KNOWN_SYSCALL + 30,
        )));
        r[p::NR_HOLE] = sys(libc::syscall(400));
        r[p::ACCESS] = sys(libc::access(c"/etc/passwd".as_ptr(), libc::R_OK).into());
        r[p::PROC_SELF_MEM] =
            sys(libc::open(c"/proc/self/mem".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC).into());
        r[p::OPEN_OWN_EXE] = sys(libc::open(exe.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC).into());
        let mut pair = [0; 2];
        r[p::SOCKETPAIR] =
            sys(libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, pair.as_mut_ptr()).into());
        // Even lowering is refused under the plan: no prlimit64 with a new limit at all.
        let inf = libc::rlimit64 {
            rlim_cur: 8,
            rlim_max: 8,
        };
        r[p::RAISE_LIMIT] = sys(libc::syscall(
            libc::SYS_prlimit64,
            0,
            libc::RLIMIT_NOFILE,
            &inf,
            std::ptr::null_mut::<libc::rlimit64>(),
        ));
        r[p::WRITE_FD3] = 1;
        for v in r {
            emit(v);
        }
    }
}

fn neg(e: i32) -> i64 {
    -i64::from(e)
}

#[test]
fn sandboxed_child_gets_exact_errnos() {
    let exe = this_exe();
    let exe_c = CString::new(exe.as_os_str().as_bytes()).expect("path");
    let plan = strict_plan(&exe);

    let control = fork_run(None, &|| probes(&exe_c));
    assert!(
        control.exited_ok(),
        "control: {:#x} {}",
        control.status,
        control.output
    );
    let c = &control.values;
    assert_eq!(c.len(), p::COUNT, "control values {c:?}");
    assert!(c[p::OPEN_PASSWD] >= 0, "control open {c:?}");
    assert!(c[p::SOCKET_INET] >= 0);
    assert_eq!(c[p::CLONE3], neg(libc::EINVAL));
    assert_eq!(c[p::IOCTL_FIONREAD], 0);
    assert_eq!(c[p::ALLOC_TOUCH], 1);
    assert_eq!(c[p::MMAP_RWX], 0);
    assert_eq!(c[p::MPROTECT_RW_TO_RX], 0);
    assert_eq!(c[p::KILL_SELF], 0);
    assert_eq!(c[p::RAISE_LIMIT], 0, "lowering works without the plan");
    assert_eq!(c[p::GETRANDOM], 16);
    assert_eq!(c[p::STATX], 0);
    assert!(c[p::GETPPID] > 0);
    assert_eq!(c[p::FUTEX_LOCK_PI], neg(libc::EFAULT));
    assert!(c[p::AFFINITY_INIT] > 0);
    assert_eq!(c[p::NR_NEWER], neg(libc::ENOSYS));
    assert_eq!(c[p::NR_HOLE], neg(libc::ENOSYS));
    assert_eq!(c[p::ACCESS], 0);
    assert!(c[p::PROC_SELF_MEM] >= 0, "control /proc/self/mem {c:?}");
    assert!(c[p::OPEN_OWN_EXE] >= 0);
    assert_eq!(c[p::OPEN_CREATE], neg(libc::ENOENT));
    assert_eq!(c[p::SOCKETPAIR], 0);

    let boxed = fork_run(Some(&plan), &|| probes(&exe_c));
    assert_eq!(boxed.failure, None, "{}", boxed.output);
    assert!(
        boxed.exited_ok(),
        "sandboxed: {:#x} {}",
        boxed.status,
        boxed.output
    );
    let s = &boxed.values;
    assert_eq!(s.len(), p::COUNT, "values {s:?}");
    assert_eq!(s[p::OPEN_PASSWD], neg(libc::EACCES), "Landlock");
    assert_eq!(s[p::SOCKET_INET], neg(libc::EACCES), "seccomp socket");
    assert_eq!(s[p::SOCKETPAIR], neg(libc::EACCES));
    assert_eq!(s[p::CLONE3], neg(libc::ENOSYS));
    assert_eq!(s[p::IOCTL_FIONREAD], neg(libc::ENOTTY));
    assert_eq!(s[p::IOCTL_TIOCSTI_HIGH], neg(libc::ENOTTY));
    assert_eq!(s[p::ALLOC_TOUCH], 1, "allocation works");
    assert_eq!(s[p::MMAP_RWX], neg(libc::EACCES), "W^X (seccomp)");
    assert_eq!(
        s[p::MPROTECT_RW_TO_RX],
        neg(libc::EACCES),
        "exec gain (MDWE)"
    );
    assert_eq!(s[p::KILL_PARENT], neg(libc::EPERM));
    assert_eq!(s[p::KILL_SELF], 0);
    assert_eq!(s[p::RAISE_LIMIT], neg(libc::EPERM));
    assert_eq!(s[p::GETRANDOM], 16);
    assert_eq!(s[p::STATX], neg(libc::ENOSYS));
    assert_eq!(s[p::STAT_SHADOW], 0, "documented stage-1 gap: newfstatat");
    assert_eq!(s[p::OPEN_CREATE], neg(libc::EACCES));
    assert_eq!(s[p::SENDTO_ADDR], neg(libc::EPERM));
    assert_eq!(s[p::GETPPID], neg(libc::EPERM));
    assert_eq!(s[p::FUTEX_LOCK_PI], neg(libc::EPERM));
    assert!(s[p::AFFINITY_SELF] > 0);
    assert_eq!(s[p::AFFINITY_INIT], neg(libc::EPERM));
    assert_eq!(s[p::NR_NEWER], neg(libc::ENOSYS));
    assert_eq!(s[p::NR_HOLE], neg(libc::ENOSYS));
    assert_eq!(s[p::ACCESS], neg(libc::EPERM));
    assert_eq!(s[p::PROC_SELF_MEM], neg(libc::EACCES));
    assert!(s[p::OPEN_OWN_EXE] >= 0, "the guest can read itself");
    assert_eq!(s[p::WRITE_FD3], 1);
}

/// The stage-2 program as the guest installs it: built in the parent (the child must not
/// allocate), installed in the child with a raw `seccomp` call after stage 1.
struct Stage2Prog {
    insns: Vec<libc::sock_filter>,
}

impl Stage2Prog {
    /// The interpreter profile's program, exactly as the host sends it in `Hello`.
    fn new() -> Self {
        Self::of(Profile::Js, false)
    }

    /// The program the host sends for `profile` (audited or not), decoded from its bytes.
    fn of(profile: Profile, audit: bool) -> Self {
        let bytes = stage2_program(profile, audit).expect("stage 2 builds");
        let insns = bytes
            .chunks_exact(8)
            .map(|c| libc::sock_filter {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Stage2Prog { insns }
    }

    /// `seccomp(SET_MODE_FILTER, TSYNC, prog)` as `r` or `-errno`, like the guest's install.
    fn install(&self) -> i64 {
        let prog = libc::sock_fprog {
            len: self.insns.len() as u16,
            // The kernel only reads the program.
            filter: self.insns.as_ptr().cast_mut(),
        };
        // SAFETY: prog points at the instructions, alive for the call.
        sys(unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_TSYNC,
                &prog as *const libc::sock_fprog,
            )
        })
    }
}

/// Stage-2 probe indices.
mod p2 {
    pub(super) const INSTALL: usize = 0;
    pub(super) const OPEN_PASSWD: usize = 1;
    pub(super) const OPEN_OWN_EXE: usize = 2;
    pub(super) const FSTATAT_EMPTY_PATH: usize = 3;
    pub(super) const FSTAT_FD3: usize = 4;
    pub(super) const STAT_SHADOW: usize = 5;
    pub(super) const FORK: usize = 6;
    pub(super) const PRCTL_SET_NAME: usize = 7;
    pub(super) const SECCOMP_AGAIN: usize = 8;
    pub(super) const MMAP_RX: usize = 9;
    pub(super) const MMAP_RW_TOUCH: usize = 10;
    pub(super) const MPROTECT: usize = 11;
    pub(super) const IOCTL: usize = 12;
    pub(super) const SOCKET: usize = 13;
    pub(super) const CLONE3: usize = 14;
    pub(super) const GETRANDOM: usize = 15;
    pub(super) const PRLIMIT_READ: usize = 16;
    pub(super) const KILL_SELF: usize = 17;
    pub(super) const TGKILL_SELF: usize = 18;
    pub(super) const CLOCK_GETTIME: usize = 19;
    pub(super) const SLEEP: usize = 20;
    pub(super) const AFFINITY: usize = 21;
    pub(super) const NR_NEWER: usize = 22;
    pub(super) const ACCESS: usize = 23;
    pub(super) const FCNTL: usize = 24;
    pub(super) const CLONE_THREAD: usize = 25;
    pub(super) const WRITE_FD3: usize = 26;
    pub(super) const PRCTL_DUMPABLE: usize = 27;
    pub(super) const RSEQ_AGAIN: usize = 28;
    pub(super) const COUNT: usize = 29;
}

fn stage2_probes(stage2: &Stage2Prog, exe: &CString) {
    let mut r = [0i64; p2::COUNT];
    r[p2::INSTALL] = stage2.install();
    // SAFETY: raw syscalls with valid or deliberately harmless arguments; nothing allocates.
    unsafe {
        r[p2::OPEN_PASSWD] =
            sys(libc::open(c"/etc/passwd".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC).into());
        r[p2::OPEN_OWN_EXE] =
            sys(libc::open(exe.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC).into());
        let mut st: libc::stat = std::mem::zeroed();
        r[p2::FSTATAT_EMPTY_PATH] = sys(libc::syscall(
            libc::SYS_newfstatat,
            3,
            c"".as_ptr(),
            &mut st,
            libc::AT_EMPTY_PATH,
        ));
        r[p2::FSTAT_FD3] = sys(libc::syscall(libc::SYS_fstat, 3, &mut st));
        r[p2::STAT_SHADOW] = sys(libc::syscall(
            libc::SYS_newfstatat,
            libc::AT_FDCWD,
            c"/etc/shadow".as_ptr(),
            &mut st,
            libc::AT_EMPTY_PATH,
        ));
        r[p2::FORK] = sys(libc::syscall(libc::SYS_fork));
        r[p2::PRCTL_SET_NAME] = sys(libc::prctl(libc::PR_SET_NAME, c"x".as_ptr(), 0, 0, 0).into());
        r[p2::PRCTL_DUMPABLE] = sys(libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0).into());
        // Reaches the kernel (a thread starting after lockdown registers its area); glibc
        // registered this thread's already, so a second registration is refused by the kernel.
        let area = [0u64; 4];
        r[p2::RSEQ_AGAIN] = sys(libc::syscall(libc::SYS_rseq, area.as_ptr(), 32u32, 0, 0));
        let again = libc::sock_fprog {
            len: stage2.insns.len() as u16,
            filter: stage2.insns.as_ptr().cast_mut(),
        };
        r[p2::SECCOMP_AGAIN] = sys(libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &again as *const libc::sock_fprog,
        ));
        let anon = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        let x = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_EXEC,
            anon,
            -1,
            0,
        );
        r[p2::MMAP_RX] = if x == libc::MAP_FAILED { -errno() } else { 0 };
        let len = 8 << 20;
        let m = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            anon,
            -1,
            0,
        );
        r[p2::MMAP_RW_TOUCH] = if m == libc::MAP_FAILED {
            -errno()
        } else {
            std::ptr::write_bytes(m.cast::<u8>(), 0x5a, len);
            r[p2::MPROTECT] = sys(libc::mprotect(m, 4096, libc::PROT_READ).into());
            let ok = *m.cast::<u8>().add(len - 1) == 0x5a && libc::munmap(m, len) == 0;
            i64::from(ok)
        };
        let mut n: libc::c_int = 0;
        r[p2::IOCTL] = sys(libc::ioctl(3, libc::FIONREAD, &mut n).into());
        r[p2::SOCKET] = sys(libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0).into());
        r[p2::CLONE3] = sys(libc::syscall(
            libc::SYS_clone3,
            std::ptr::null::<u8>(),
            0usize,
        ));
        let mut buf = [0u8; 16];
        r[p2::GETRANDOM] = sys(libc::syscall(
            libc::SYS_getrandom,
            buf.as_mut_ptr(),
            16usize,
            0u32,
        ));
        let mut lim = libc::rlimit64 {
            rlim_cur: 0,
            rlim_max: 0,
        };
        r[p2::PRLIMIT_READ] = sys(libc::syscall(
            libc::SYS_prlimit64,
            0,
            libc::RLIMIT_NOFILE,
            std::ptr::null::<libc::rlimit64>(),
            &mut lim,
        ));
        let pid = libc::syscall(libc::SYS_getpid);
        r[p2::KILL_SELF] = sys(libc::syscall(libc::SYS_kill, pid, 0));
        r[p2::TGKILL_SELF] = sys(libc::syscall(
            libc::SYS_tgkill,
            pid,
            libc::syscall(libc::SYS_gettid),
            0,
        ));
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        r[p2::CLOCK_GETTIME] = sys(libc::syscall(
            libc::SYS_clock_gettime,
            libc::CLOCK_MONOTONIC,
            &mut ts,
        ));
        let nap = libc::timespec {
            tv_sec: 0,
            tv_nsec: 1000,
        };
        r[p2::SLEEP] = sys(libc::syscall(
            libc::SYS_clock_nanosleep,
            libc::CLOCK_MONOTONIC,
            0,
            &nap,
            std::ptr::null_mut::<libc::timespec>(),
        ));
        let mut set = [0u8; 128];
        r[p2::AFFINITY] = sys(libc::syscall(
            libc::SYS_sched_getaffinity,
            0,
            set.len(),
            set.as_mut_ptr(),
        ));
        r[p2::NR_NEWER] = sys(libc::syscall(libc::c_long::from(
            policy::NEWEST_KNOWN_SYSCALL + 30,
        )));
        r[p2::ACCESS] = sys(libc::access(c"/etc/passwd".as_ptr(), libc::R_OK).into());
        r[p2::FCNTL] = sys(libc::fcntl(3, libc::F_GETFD).into());
        // The flags pthread_create uses; refused before the kernel looks at the (null) stack.
        r[p2::CLONE_THREAD] = sys(libc::syscall(
            libc::SYS_clone,
            libc::c_ulong::from(policy::PTHREAD_CLONE_FLAGS),
            0,
            0,
            0,
            0,
        ));
        r[p2::WRITE_FD3] = 1;
    }
    for v in r {
        emit(v);
    }
}

/// Stage 2 on top of stage 1, on the real kernel: what the locked-down guest can and cannot
/// do, errno by errno. (Stage 1 alone is `sandboxed_child_gets_exact_errnos`; those calls are
/// its positive controls.)
#[test]
fn stage2_on_stage1_gets_exact_errnos() {
    let exe = this_exe();
    let exe_c = CString::new(exe.as_os_str().as_bytes()).expect("path");
    let plan = strict_plan(&exe);
    let stage2 = Stage2Prog::new();
    let o = fork_run(Some(&plan), &|| stage2_probes(&stage2, &exe_c));
    assert_eq!(o.failure, None, "{}", o.output);
    assert!(o.exited_ok(), "status {:#x} {}", o.status, o.output);
    let v = &o.values;
    assert_eq!(v.len(), p2::COUNT, "values {v:?}");
    let e = neg;
    assert_eq!(v[p2::INSTALL], 0, "stage 2 installs under stage 1");
    assert_eq!(v[p2::OPEN_PASSWD], e(libc::EACCES));
    assert_eq!(
        v[p2::OPEN_OWN_EXE],
        e(libc::EACCES),
        "even files Landlock grants"
    );
    assert_eq!(v[p2::FSTATAT_EMPTY_PATH], e(libc::ENOSYS));
    assert_eq!(v[p2::FSTAT_FD3], 0, "fd-only fstat stays");
    assert_eq!(
        v[p2::STAT_SHADOW],
        e(libc::ENOSYS),
        "AT_EMPTY_PATH is no pass"
    );
    assert_eq!(v[p2::FORK], e(libc::EPERM));
    assert_eq!(
        v[p2::PRCTL_SET_NAME],
        0,
        "thread names stay (std names threads from inside)"
    );
    assert_eq!(v[p2::PRCTL_DUMPABLE], e(libc::EPERM));
    assert!(
        v[p2::RSEQ_AGAIN] == e(libc::EBUSY) || v[p2::RSEQ_AGAIN] == e(libc::EINVAL),
        "rseq reaches the kernel: {}",
        v[p2::RSEQ_AGAIN]
    );
    assert_eq!(v[p2::SECCOMP_AGAIN], e(libc::EPERM));
    assert_eq!(
        v[p2::MMAP_RX],
        e(libc::EACCES),
        "no executable memory at all"
    );
    assert_eq!(v[p2::MMAP_RW_TOUCH], 1, "allocation works");
    assert_eq!(v[p2::MPROTECT], e(libc::EACCES));
    assert_eq!(
        v[p2::IOCTL],
        e(libc::ENOTTY),
        "stage 1's errno survives stacking"
    );
    assert_eq!(v[p2::SOCKET], e(libc::EACCES));
    assert_eq!(v[p2::CLONE3], e(libc::ENOSYS));
    assert_eq!(v[p2::GETRANDOM], 16);
    assert_eq!(v[p2::PRLIMIT_READ], e(libc::EPERM));
    assert_eq!(v[p2::KILL_SELF], e(libc::EPERM));
    assert_eq!(v[p2::TGKILL_SELF], 0, "raise()/abort() still work");
    assert_eq!(v[p2::CLOCK_GETTIME], 0);
    assert_eq!(v[p2::SLEEP], 0);
    assert_eq!(v[p2::AFFINITY], e(libc::EPERM));
    assert_eq!(v[p2::NR_NEWER], e(libc::ENOSYS));
    assert_eq!(v[p2::ACCESS], e(libc::EPERM));
    assert_eq!(v[p2::FCNTL], e(libc::EPERM));
    assert_eq!(v[p2::CLONE_THREAD], e(libc::EPERM), "no new threads");
    assert_eq!(v[p2::WRITE_FD3], 1);
}

/// After stage 2, exec is a kill (stage 1 let the guest's own executable through Landlock).
#[test]
fn stage2_kills_exec() {
    let exe = this_exe();
    let exe_c = CString::new(exe.as_os_str().as_bytes()).expect("path");
    let plan = strict_plan(&exe);
    let stage2 = Stage2Prog::new();
    let argv = [exe_c.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    let o = fork_run(Some(&plan), &|| {
        if stage2.install() != 0 {
            // SAFETY: leaving the child.
            unsafe { libc::_exit(3) };
        }
        // SAFETY: execve with NUL-terminated arrays built before the fork.
        unsafe { libc::execve(exe_c.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        emit(-errno());
    });
    assert_eq!(
        o.killed_by(),
        Some(libc::SIGSYS),
        "status {:#x} {:?}",
        o.status,
        o.values
    );
}

/// What the fd layout and session look like in the child: fds >= 4 still open without
/// close-on-exec, fd 3's flags, whether the child leads its session, no_new_privs, the
/// hard RLIMIT_FSIZE.
fn layout_probe() {
    // SAFETY: raw syscalls only.
    unsafe {
        let mut inheritable = 0i64;
        for fd in 4..256 {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                inheritable += 1;
            }
        }
        emit(inheritable);
        emit(i64::from(libc::fcntl(3, libc::F_GETFD)));
        emit(sys(libc::syscall(libc::SYS_getsid, 0)));
        emit(i64::from(libc::getpid()));
        emit(i64::from(libc::prctl(
            libc::PR_GET_NO_NEW_PRIVS,
            0,
            0,
            0,
            0,
        )));
        let mut lim = libc::rlimit64 {
            rlim_cur: 9,
            rlim_max: 9,
        };
        libc::syscall(
            libc::SYS_prlimit64,
            0,
            libc::RLIMIT_FSIZE,
            std::ptr::null::<libc::rlimit64>(),
            &mut lim,
        );
        emit(lim.rlim_max as i64);
    }
}

#[test]
fn fds_and_session_after_apply() {
    // Leave an inheritable fd >= 4 around (as a careless host might) to see it handled.
    // SAFETY: dup of stderr; closed below.
    let leak = unsafe { libc::fcntl(2, libc::F_DUPFD, 10) };
    assert!(leak >= 10);

    let plain = prepare(&PolicyRequest {
        guest: &this_exe(),
        no_sandbox: true,
        allow_degraded: false,
        profile: Profile::Js,
    })
    .expect("prepare");
    let o = fork_run(Some(&plain), &layout_probe);
    assert!(o.exited_ok(), "{:#x} {}", o.status, o.output);
    let v = &o.values;
    assert_eq!(v[0], 0, "fds >= 4 are close-on-exec");
    assert_eq!(v[1], 0, "fd 3 survives exec");
    assert_eq!(v[2], v[3], "the child leads its own session");
    assert_eq!(v[4], 0, "no_sandbox leaves no_new_privs alone");

    let plan = strict_plan(&this_exe());
    let o = fork_run(Some(&plan), &layout_probe);
    assert!(o.exited_ok(), "{:#x} {}", o.status, o.output);
    let v = &o.values;
    assert_eq!(v[0], 0, "fds >= 4 are close-on-exec");
    assert_eq!(v[1], 0, "fd 3 survives exec");
    assert_eq!(v[2], neg(libc::EPERM), "getsid is not in the allow-list");
    assert_eq!(v[4], 1, "no_new_privs");
    assert_eq!(v[5], 0, "RLIMIT_FSIZE hard limit");
    // SAFETY: our dup.
    unsafe { libc::close(leak) };
}

#[test]
fn kill_verdicts() {
    let plan = strict_plan(&this_exe());
    let cases: [(&str, &dyn Fn()); 5] = [
        // SAFETY (all): a single raw syscall with harmless arguments.
        ("x32 getpid", &|| unsafe {
            libc::syscall(0x4000_0000 | libc::SYS_getpid);
        }),
        ("bpf", &|| unsafe {
            libc::syscall(libc::SYS_bpf, 0, 0, 0);
        }),
        ("unshare(CLONE_NEWUSER)", &|| unsafe {
            libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER);
        }),
        ("ptrace(ATTACH, 1)", &|| unsafe {
            libc::syscall(libc::SYS_ptrace, libc::PTRACE_ATTACH, 1, 0, 0);
        }),
        ("i386 int 0x80 getpid", &|| unsafe {
            // i386 getpid is 20; the arch check kills before the table is consulted.
            std::arch::asm!("int 0x80", inlateout("eax") 20u32 => _, options(nostack));
        }),
    ];
    for (name, body) in cases {
        let o = fork_run(Some(&plan), body);
        assert_eq!(
            o.killed_by(),
            Some(libc::SIGSYS),
            "{name}: status {:#x}",
            o.status
        );
    }
    // Control: the same bpf call without the plan returns normally.
    // SAFETY: harmless raw syscall.
    let o = fork_run(None, &|| unsafe {
        emit(sys(libc::syscall(libc::SYS_bpf, 0, 0, 0)));
    });
    assert!(o.exited_ok());
}

#[test]
fn fork_and_namespaced_clone_get_eperm() {
    let plan = strict_plan(&this_exe());
    // SAFETY: raw syscalls; a child that does get created exits at once.
    let body = || unsafe {
        for flags in [
            libc::SIGCHLD,
            libc::CLONE_NEWUSER | libc::SIGCHLD,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
        ] {
            let r = libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0);
            if r == 0 {
                libc::_exit(0);
            }
            if r > 0 {
                let mut st = 0;
                libc::waitpid(r as i32, &mut st, 0);
            }
            emit(sys(r));
        }
        emit(sys(libc::syscall(libc::SYS_fork)));
    };
    let o = fork_run(Some(&plan), &body);
    assert!(o.exited_ok(), "{}", o.output);
    let e = neg(libc::EPERM);
    assert_eq!(o.values, vec![e, e, e, e]);
}

#[test]
fn no_sandbox_only_arranges_fds() {
    let plan = prepare(&PolicyRequest {
        guest: &this_exe(),
        no_sandbox: true,
        allow_degraded: false,
        profile: Profile::Js,
    })
    .expect("prepare");
    // SAFETY: raw syscalls.
    let o = fork_run(Some(&plan), &|| unsafe {
        emit(sys(libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0).into()));
        emit(i64::from(libc::prctl(
            libc::PR_GET_NO_NEW_PRIVS,
            0,
            0,
            0,
            0,
        )));
    });
    assert!(o.exited_ok(), "{}", o.output);
    assert!(o.values[0] >= 0);
    assert_eq!(o.values[1], 0);
}

#[test]
fn parent_check_reports_its_step() {
    let plan = strict_plan(&this_exe());
    // Pretend the parent is someone else: the child must refuse and name the step.
    let mut sv = [0; 2];
    // SAFETY: socketpair into our array; the child only makes raw syscalls.
    unsafe {
        assert_eq!(
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                sv.as_mut_ptr()
            ),
            0
        );
        let pid = libc::fork();
        if pid == 0 {
            let code = match plan.apply_in_child(sv[1], 1) {
                Ok(()) => 0,
                Err(f) if f.step == SpawnStep::ParentExited && f.errno == libc::ESRCH => 42,
                Err(_) => 1,
            };
            libc::_exit(code);
        }
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
        libc::close(sv[0]);
        libc::close(sv[1]);
        assert!(
            libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 42,
            "{st:#x}"
        );
    }
}

/// Runs `path` with `argv` and `envp` in a sandboxed child (or plain, with `None`); returns
/// the outcome. The child's fd 3 carries whatever the program writes there.
fn exec_run(plan: Option<&Plan>, path: &CString, argv: &[&CString], envp: &[&CString]) -> Outcome {
    let mut av: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    av.push(std::ptr::null());
    let mut ev: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    ev.push(std::ptr::null());
    // SAFETY: execve with NUL-terminated arrays built before the fork; on failure we report
    // the errno and exit.
    fork_run(plan, &|| unsafe {
        libc::execve(path.as_ptr(), av.as_ptr(), ev.as_ptr());
        emit(-errno());
        libc::_exit(127);
    })
}

#[test]
fn exec_of_dynamic_c_program_works_and_others_are_denied() {
    let true_bin = PathBuf::from("/usr/bin/true")
        .canonicalize()
        .expect("/usr/bin/true");
    let plan = strict_plan(&true_bin);
    let path = CString::new(true_bin.as_os_str().as_bytes()).expect("path");
    let o = exec_run(Some(&plan), &path, &[&path], &[]);
    assert!(
        o.exited_ok(),
        "true under the plan: {:#x} {:?} {}",
        o.status,
        o.values,
        o.output
    );

    // Anything else is refused by Landlock.
    let sh = CString::new("/bin/sh").expect("sh");
    let o = exec_run(Some(&plan), &sh, &[&sh], &[]);
    assert_eq!(o.values, vec![neg(libc::EACCES)], "{}", o.output);
    // Control: /bin/sh runs without the plan (stdin is /dev/null, so it exits 0).
    let o = exec_run(None, &sh, &[&sh], &[]);
    assert!(o.exited_ok(), "{:#x} {}", o.status, o.output);
}

/// Guest mode for [`exec_of_this_rust_binary_as_guest`]: when the env var is set, this test
/// runs as the sandboxed guest (under libtest, single-threaded) and behaves like one:
/// reads a frame from fd 3, allocates, hashes, sleeps, spawns a thread, answers.
#[test]
fn guest_mode_entry() {
    if std::env::var_os("CONFINE_PLATFORM_TEST_GUEST").is_none() {
        return;
    }
    use std::{
        collections::HashMap,
        io::{Read, Write},
        os::{fd::FromRawFd, unix::net::UnixStream},
    };
    // SAFETY: fd 3 is the socket the test harness placed there, owned by nobody else here.
    let mut s = unsafe { UnixStream::from_raw_fd(3) };
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).expect("read fd 3");
    let mut v = vec![1u8; 32 << 20];
    v[12345] = 7;
    let mut m = HashMap::new();
    m.insert("len", v.len());
    std::thread::sleep(std::time::Duration::from_millis(1));
    let t = std::thread::spawn(|| 40 + 2).join().expect("thread");
    let passwd = std::fs::read("/etc/passwd").is_err();
    let caught = std::panic::catch_unwind(|| panic!("unwinding works")).is_err();
    let reply = format!(
        "ok {} {} {t} passwd-denied={passwd} unwind={caught}",
        &String::from_utf8_lossy(&buf[..n]),
        m["len"] >> 20
    );
    s.write_all(reply.as_bytes()).expect("write fd 3");
    std::process::exit(0);
}

#[test]
fn exec_of_this_rust_binary_as_guest() {
    let exe = this_exe();
    let plan = strict_plan(&exe);
    let path = CString::new(exe.as_os_str().as_bytes()).expect("path");
    let args: Vec<CString> = [
        "guest",
        "--exact",
        "platform::linux::tests::guest_mode_entry",
        "--test-threads=1",
        "--nocapture",
        "-q",
    ]
    .iter()
    .map(|a| CString::new(*a).expect("arg"))
    .collect();
    let env = CString::new("CONFINE_PLATFORM_TEST_GUEST=1").expect("env");
    let mut av: Vec<&CString> = vec![&path];
    av.extend(args.iter().skip(1));

    // The host end sends a greeting before exec; the guest reads it from fd 3.
    let o = exec_with_greeting(&plan, &path, &av, &[&env], b"hi");
    let text = String::from_utf8_lossy(&o.1);
    assert!(
        text.starts_with("ok hi 32 42 passwd-denied=true unwind=true"),
        "guest said {text:?}; status {:#x}; output:\n{}",
        o.0,
        o.2
    );
}

/// Like [`exec_run`], but with a STREAM socketpair whose host end first sends `greeting`
/// and then collects everything the guest writes. Returns (status, bytes, output).
fn exec_with_greeting(
    plan: &Plan,
    path: &CString,
    argv: &[&CString],
    envp: &[&CString],
    greeting: &[u8],
) -> (i32, Vec<u8>, String) {
    let mut av: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    av.push(std::ptr::null());
    let mut ev: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    ev.push(std::ptr::null());
    let mut sv = [0; 2];
    let mut out = [0; 2];
    // SAFETY: fd-creating syscalls into our arrays; the child only makes raw syscalls.
    unsafe {
        assert_eq!(
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                sv.as_mut_ptr()
            ),
            0
        );
        assert_eq!(libc::pipe2(out.as_mut_ptr(), libc::O_CLOEXEC), 0);
        let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        let parent = libc::getpid();
        assert_eq!(
            libc::write(sv[0], greeting.as_ptr().cast(), greeting.len()),
            greeting.len() as isize
        );
        let pid = libc::fork();
        if pid == 0 {
            libc::dup2(devnull, 0);
            libc::dup2(out[1], 1);
            libc::dup2(out[1], 2);
            if plan.apply_in_child(sv[1], parent).is_err() {
                libc::_exit(111);
            }
            libc::execve(path.as_ptr(), av.as_ptr(), ev.as_ptr());
            libc::_exit(127);
        }
        libc::close(sv[1]);
        libc::close(out[1]);
        libc::close(devnull);
        let mut reply = Vec::new();
        loop {
            let mut pfd = libc::pollfd {
                fd: sv[0],
                events: libc::POLLIN,
                revents: 0,
            };
            assert!(libc::poll(&mut pfd, 1, 30_000) > 0, "guest timed out");
            let mut buf = [0u8; 256];
            let n = libc::read(sv[0], buf.as_mut_ptr().cast(), buf.len());
            if n <= 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n as usize]);
        }
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
        let mut output = Vec::new();
        loop {
            let mut buf = [0u8; 4096];
            let n = libc::read(out[0], buf.as_mut_ptr().cast(), buf.len());
            if n <= 0 {
                break;
            }
            output.extend_from_slice(&buf[..n as usize]);
        }
        libc::close(sv[0]);
        libc::close(out[0]);
        (st, reply, String::from_utf8_lossy(&output).into_owned())
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn p95(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() * 95 / 100]
}

/// Spawn-cost measurement (run with `--ignored --nocapture`): `prepare`, fork + apply +
/// `_exit` against fork + `_exit`, and fork + exec of `/usr/bin/true` with and without the
/// plan.
#[test]
#[ignore = "benchmark; run explicitly"]
fn bench_spawn_costs() {
    let true_bin = PathBuf::from("/usr/bin/true").canonicalize().expect("true");
    let mut prep = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let plan = strict_plan(&true_bin);
        prep.push(t.elapsed().as_secs_f64() * 1e3);
        drop(plan);
    }
    let plan = strict_plan(&true_bin);
    let path = CString::new(true_bin.as_os_str().as_bytes()).expect("path");
    let rounds = 400;
    let mut bare_fork = Vec::new();
    let mut plan_fork = Vec::new();
    let mut bare_exec = Vec::new();
    let mut plan_exec = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let _ = fork_run(None, &|| {});
        bare_fork.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let _ = fork_run(Some(&plan), &|| {});
        plan_fork.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let o = exec_run(None, &path, &[&path], &[]);
        bare_exec.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(o.exited_ok());
        let t = Instant::now();
        let o = exec_run(Some(&plan), &path, &[&path], &[]);
        plan_exec.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(o.exited_ok());
    }
    eprintln!(
        "prepare(/usr/bin/true): median {:.3} ms p95 {:.3} ms",
        median(prep.clone()),
        p95(prep)
    );
    for (name, v) in [
        ("fork+_exit (no plan)", bare_fork),
        ("fork+apply+_exit", plan_fork),
        ("fork+exec true (no plan)", bare_exec),
        ("fork+apply+exec true", plan_exec),
    ] {
        eprintln!(
            "{name:<28} median {:.3} ms  p95 {:.3} ms  (n={rounds})",
            median(v.clone()),
            p95(v)
        );
    }
}

/// Per-step cost of `apply_in_child`, timed inside the child with the monotonic clock (run
/// with `--ignored --nocapture`). Variants drop one layer each.
#[test]
#[ignore = "benchmark; run explicitly"]
fn bench_apply_steps() {
    fn now_ns() -> i64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime into a stack struct (vDSO; allowed by the filter anyway).
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    }
    let true_bin = PathBuf::from("/usr/bin/true").canonicalize().expect("true");
    fn synthetic(p: &mut Plan, pad: usize) {
        // ld arch; jeq x86_64 ? allow : kill; then `pad` unreachable instructions.
        let mut insns = vec![
            libc::sock_filter {
                code: 0x20,
                jt: 0,
                jf: 0,
                k: 4,
            },
            libc::sock_filter {
                code: 0x15,
                jt: 0,
                jf: 1,
                k: bpf::AUDIT_ARCH_X86_64,
            },
            libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: bpf::RET_ALLOW,
            },
            libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: bpf::RET_KILL,
            },
        ];
        insns.extend((0..pad).map(|_| libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: bpf::RET_KILL,
        }));
        p.filter = Some(bpf::Filter {
            insns,
            pid_slots: Vec::new(),
        });
    }
    type Tweak = fn(&mut Plan);
    let variants: [(&str, Tweak); 9] = [
        ("full plan", |_| {}),
        ("synthetic 4-insn allow-all filter", |p| synthetic(p, 0)),
        ("synthetic 4 + 350 unreachable", |p| synthetic(p, 350)),
        ("only seccomp (+nnp, fds)", |p| {
            p.ruleset = None;
            p.mdwe = false;
            p.rlimits.clear();
        }),
        ("without seccomp", |p| p.filter = None),
        ("without landlock", |p| p.ruleset = None),
        ("without mdwe", |p| p.mdwe = false),
        ("without rlimits", |p| p.rlimits.clear()),
        ("no_sandbox (pdeathsig, setsid, fds)", |p| {
            p.no_sandbox = true
        }),
    ];
    for (name, tweak) in variants {
        let mut plan = strict_plan(&true_bin);
        tweak(&mut plan);
        let mut samples = Vec::new();
        for _ in 0..300 {
            let mut sv = [0; 2];
            // SAFETY: socketpair into our array; the child makes raw syscalls only.
            unsafe {
                libc::socketpair(
                    libc::AF_UNIX,
                    libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                    0,
                    sv.as_mut_ptr(),
                );
                let parent = libc::getpid();
                let pid = libc::fork();
                if pid == 0 {
                    let t0 = now_ns();
                    let ok = plan.apply_in_child(sv[1], parent).is_ok();
                    let dt = now_ns() - t0;
                    let v = if ok { dt } else { -1 };
                    let b = v.to_le_bytes();
                    libc::write(3, b.as_ptr().cast(), 8);
                    libc::_exit(0);
                }
                libc::close(sv[1]);
                let mut b = [0u8; 8];
                libc::read(sv[0], b.as_mut_ptr().cast(), 8);
                let mut st = 0;
                libc::waitpid(pid, &mut st, 0);
                libc::close(sv[0]);
                let v = i64::from_le_bytes(b);
                assert!(v >= 0, "{name}: apply failed");
                samples.push(v as f64 / 1e3);
            }
        }
        eprintln!(
            "apply_in_child {name:<38} median {:>7.1} us  p95 {:>7.1} us",
            median(samples.clone()),
            p95(samples)
        );
    }
}

/// Stage-2 costs (run with `--ignored --nocapture`, ideally `--release`): compiling the
/// program (once per process), installing it in a child already under stage 1 (once per
/// guest), and the host's `/proc` verification of a live guest (once per guest).
#[test]
#[ignore = "benchmark; run explicitly"]
fn bench_stage2_costs() {
    let mut build = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let f = bpf::build(policy::NEWEST_KNOWN_SYSCALL, policy::stage2_verdict).expect("build");
        let _ = f.to_bytes().expect("bytes");
        build.push(t.elapsed().as_secs_f64() * 1e6);
    }
    eprintln!("stage-2 compile: median {:.1} us", median(build));

    let exe = this_exe();
    let plan = strict_plan(&exe);
    let stage2 = Stage2Prog::new();
    let mut install = Vec::new();
    for _ in 0..200 {
        let o = fork_run(Some(&plan), &|| {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let now = |ts: &mut libc::timespec| {
                // SAFETY: clock_gettime into a stack struct.
                unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, ts) };
                ts.tv_sec * 1_000_000_000 + ts.tv_nsec
            };
            let t0 = now(&mut ts);
            let r = stage2.install();
            let t1 = now(&mut ts);
            emit(if r == 0 { t1 - t0 } else { -1 });
        });
        let v = o.values.first().copied().unwrap_or(-1);
        assert!(v >= 0, "install failed: {}", o.output);
        install.push(v as f64 / 1e3);
    }
    eprintln!(
        "stage-2 install in the child: median {:.1} us, p95 {:.1} us ({} insns)",
        median(install.clone()),
        p95(install),
        stage2.insns.len()
    );

    // A live guest: a child with both filters that waits on fd 3.
    let mut sv = [0; 2];
    // SAFETY: socketpair into our array; the child only makes raw syscalls.
    let pid = unsafe {
        assert_eq!(
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                sv.as_mut_ptr()
            ),
            0
        );
        let parent = libc::getpid();
        let pid = libc::fork();
        if pid == 0 {
            let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
            libc::dup2(devnull, 0);
            if plan.apply_in_child(sv[1], parent).is_err() || stage2.install() != 0 {
                libc::_exit(1);
            }
            // Only fds 0-3 after exec; here, close what the fork inherited instead (close is
            // in both allow-lists; close_range is not).
            for fd in 4..1024 {
                libc::close(fd);
            }
            let mut b = [0u8; 1];
            libc::read(3, b.as_mut_ptr().cast(), 1);
            libc::_exit(0);
        }
        pid
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    let expect = Expectations {
        seccomp_filters: verify::own_filter_count().expect("own count") + 2,
    };
    let mut checks = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        let r = verify::verify(pid as u32, &expect);
        checks.push(t.elapsed().as_secs_f64() * 1e6);
        // The forked child still has the test's environment, so only that check fails.
        assert!(
            matches!(
                r,
                Err(verify::Rejection::Failed(
                    SandboxError::VerificationFailed {
                        check: crate::report::VerifyCheck::Environment,
                        ..
                    }
                ))
            ),
            "{r:?}"
        );
    }
    eprintln!(
        "host verification (/proc status, fd, environ): median {:.1} us, p95 {:.1} us",
        median(checks.clone()),
        p95(checks)
    );
    // SAFETY: closing our end ends the child; then reap it.
    unsafe {
        libc::close(sv[0]);
        libc::close(sv[1]);
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
    }
}

/// The wasm profile on the real kernel: no MDWE, and after stage 2 a page can go RW→RX (a
/// JIT publishing code) but never be writable and executable at once; the interpreter
/// profile refuses both.
#[test]
fn wasm_profile_allows_rw_to_rx_never_w_plus_x() {
    let exe = this_exe();
    let js = strict_plan_for(&exe, Profile::Js);
    let wasm = strict_plan_for(&exe, Profile::Wasm);
    assert_eq!(js.mdwe, kernel_facts().mdwe);
    assert!(!wasm.mdwe, "MDWE would refuse the RW->RX step");
    let body = |stage2: &Stage2Prog| {
        emit(stage2.install());
        // SAFETY: anonymous pages we own; raw syscalls only.
        unsafe {
            let rw = libc::PROT_READ | libc::PROT_WRITE;
            let m = libc::mmap(
                std::ptr::null_mut(),
                4096,
                rw,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            emit(if m == libc::MAP_FAILED { -errno() } else { 0 });
            m.cast::<u8>().write(0xc3);
            emit(sys(libc::mprotect(
                m,
                4096,
                libc::PROT_READ | libc::PROT_EXEC,
            )
            .into()));
            emit(sys(libc::mprotect(m, 4096, rw | libc::PROT_EXEC).into()));
            let x = libc::mmap(
                std::ptr::null_mut(),
                4096,
                rw | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            emit(if x == libc::MAP_FAILED { -errno() } else { 0 });
        }
    };
    let e = neg(libc::EACCES);
    // Built here: the child must not allocate.
    let (wasm2, js2) = (
        Stage2Prog::of(Profile::Wasm, false),
        Stage2Prog::of(Profile::Js, false),
    );
    let o = fork_run(Some(&wasm), &|| body(&wasm2));
    assert!(o.exited_ok(), "{:#x} {}", o.status, o.output);
    assert_eq!(
        o.values,
        vec![0, 0, 0, e, e],
        "wasm: install, mmap RW, RW->RX, RWX, mmap RWX"
    );
    let o = fork_run(Some(&js), &|| body(&js2));
    assert!(o.exited_ok(), "{:#x} {}", o.status, o.output);
    assert_eq!(o.values, vec![0, 0, e, e, e], "js");
}

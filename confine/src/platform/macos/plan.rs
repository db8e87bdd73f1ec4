//! The macOS launch path: [`prepare`] in the parent, [`Plan::apply_in_child`] between `fork`
//! and the `execve` of `sandbox-exec`, and [`Plan::launch_command`] for what gets executed.

use std::{
    ffi::{CStr, OsString},
    io,
    os::fd::RawFd,
    path::{Path, PathBuf},
};

use libc::c_int;

use super::{isolation_report, profile, MISSING};
use crate::{
    platform::{ChildFailure, Expectations, PolicyRequest, SandboxError, SpawnStep},
    report::{IsolationReport, KernelFacts, LandlockSupport, ResourceLimit},
};

/// The fd the guest finds its IPC socket on.
const IPC_FD: RawFd = 3;
/// fds at and above this are closed on exec.
const FIRST_CLOSED_FD: c_int = 4;

/// One resource limit (soft = hard).
#[derive(Debug, Clone, Copy)]
struct Rlimit {
    resource: c_int,
    name: &'static str,
    value: u64,
    #[allow(dead_code, reason = "documentation that stays next to the value")]
    why: &'static str,
}

/// The limits macOS has of the Linux set (no `msgqueue` or `locks` resource here). They are
/// set before `sandbox-exec` runs, so they bind it too: it opens and writes no file.
const RLIMITS: &[Rlimit] = &[
    Rlimit {
        resource: libc::RLIMIT_CORE,
        name: "core",
        value: 0,
        why: "no core dumps of guest memory",
    },
    Rlimit {
        resource: libc::RLIMIT_FSIZE,
        name: "fsize",
        value: 0,
        why: "no file writes, behind the profile's (stdout/stderr are pipes)",
    },
    Rlimit {
        resource: libc::RLIMIT_NOFILE,
        name: "nofile",
        value: 16,
        why: "fds 0-3 plus what dyld opens one at a time",
    },
    Rlimit {
        resource: libc::RLIMIT_MEMLOCK,
        name: "memlock",
        value: 0,
        why: "no pinned memory",
    },
];

/// Everything the child needs, built once in the parent.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Only the session and fd steps run, and the guest is executed directly.
    no_sandbox: bool,
    /// The guest executable: canonical when sandboxed (the profile names this path).
    guest: PathBuf,
    /// The SBPL text for `sandbox-exec -p` (`None` with `no_sandbox`).
    profile: Option<OsString>,
    report: IsolationReport,
}

fn errno() -> i32 {
    // `last_os_error` reads errno into a plain integer representation: no allocation.
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn check(r: c_int, step: SpawnStep) -> Result<c_int, ChildFailure> {
    if r < 0 {
        Err(ChildFailure {
            step,
            errno: errno(),
        })
    } else {
        Ok(r)
    }
}

impl Plan {
    /// Runs in the forked child (`Command::pre_exec`), after std has set up fds 0-2.
    ///
    /// In order: a `getppid()` check against `parent_pid`; `setsid`; `ipc_fd` onto fd 3 (not
    /// close-on-exec); every fd >= 4 marked close-on-exec; rlimits. With `no_sandbox`, only
    /// the first four. macOS has no parent-death signal: the guest exits on EOF of fd 3.
    ///
    /// # Errors
    /// The failing step and its errno.
    ///
    /// # Safety
    /// Call only in a freshly forked child about to `execve`: it makes single libc calls that
    /// are async-signal-safe (no allocation, locks or `std::io` buffers), but it rearranges
    /// fds and restricts the process irreversibly.
    pub(crate) unsafe fn apply_in_child(
        &self,
        ipc_fd: RawFd,
        parent_pid: i32,
    ) -> Result<(), ChildFailure> {
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } != parent_pid {
            return Err(ChildFailure {
                step: SpawnStep::ParentExited,
                errno: libc::ESRCH,
            });
        }
        // New session: no controlling terminal for TIOCSTI-style injection.
        // SAFETY: setsid has no preconditions.
        check(unsafe { libc::setsid() }, SpawnStep::SetSid)?;

        if ipc_fd < IPC_FD {
            return Err(ChildFailure {
                step: SpawnStep::FdLayout,
                errno: libc::EBADF,
            });
        }
        if ipc_fd == IPC_FD {
            // SAFETY: fcntl on an fd number; failure is reported.
            check(
                unsafe { libc::fcntl(IPC_FD, libc::F_SETFD, 0) },
                SpawnStep::FdLayout,
            )?;
        } else {
            // dup2 clears FD_CLOEXEC on the new fd.
            // SAFETY: dup2 on fd numbers; failure is reported.
            check(unsafe { libc::dup2(ipc_fd, IPC_FD) }, SpawnStep::FdLayout)?;
        }

        // macOS has no close_range: mark fds one by one up to the descriptor table size
        // (the NOFILE soft limit, capped by the kernel). Marked, not closed: std's exec-error
        // pipe and the launcher's step-failure pipe must work until execve closes them.
        // SAFETY: getdtablesize has no preconditions.
        let end = unsafe { libc::getdtablesize() };
        for fd in FIRST_CLOSED_FD..end {
            // EBADF for fds that are not open is expected.
            // SAFETY: fcntl on an fd number.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }

        if self.no_sandbox {
            return Ok(());
        }
        for limit in RLIMITS {
            let new = libc::rlimit {
                rlim_cur: limit.value,
                rlim_max: limit.value,
            };
            // SAFETY: setrlimit reads the struct on our stack.
            check(
                unsafe { libc::setrlimit(limit.resource, &new) },
                SpawnStep::Rlimit,
            )?;
        }
        Ok(())
    }

    /// The program the launcher executes and its arguments: the guest itself with
    /// `no_sandbox`, otherwise `/usr/bin/sandbox-exec -p PROFILE -- GUEST ARGS...` (`--`
    /// so a guest path starting with `-` cannot be read as an option).
    #[must_use]
    pub(crate) fn launch_command(
        &self,
        program: &Path,
        args: &[OsString],
    ) -> (PathBuf, Vec<OsString>) {
        match &self.profile {
            None => (program.to_owned(), args.to_vec()),
            Some(profile) => {
                let mut argv = Vec::with_capacity(args.len() + 4);
                argv.push(OsString::from("-p"));
                argv.push(profile.clone());
                argv.push(OsString::from("--"));
                argv.push(self.guest.clone().into_os_string());
                argv.extend(args.iter().cloned());
                (PathBuf::from(profile::SANDBOX_EXEC), argv)
            }
        }
    }

    /// What this plan enforces.
    #[must_use]
    pub(crate) fn report(&self) -> IsolationReport {
        self.report.clone()
    }

    /// No stage 2 on macOS: Seatbelt is applied once, by `sandbox-exec`.
    #[must_use]
    pub(crate) fn lockdown(&self) -> Option<confine_runtime_abstract::protocol::Lockdown> {
        None
    }

    /// What the host checks after `Ready`: that the guest runs sandboxed (`None` with
    /// `no_sandbox`).
    #[must_use]
    pub(crate) fn expectations(&self) -> Option<Expectations> {
        (!self.no_sandbox).then_some(Expectations { seatbelt: true })
    }
}

fn kernel_release() -> String {
    // SAFETY: uname fills the zeroed struct we own.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return String::new();
        }
        CStr::from_ptr(u.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// What this host offers: the Darwin release; none of the Linux layers.
pub(crate) fn kernel_facts() -> KernelFacts {
    KernelFacts {
        release: kernel_release(),
        landlock: LandlockSupport::NotProbed,
        seccomp: false,
        mdwe: false,
    }
}

/// Builds the plan for one guest executable.
///
/// # Errors
/// [`SandboxError::GuestPathNotAbsolute`]; [`SandboxError::PlatformDegraded`] unless
/// `allow_degraded` (see the module docs); [`SandboxError::SandboxExecUnavailable`] when
/// `/usr/bin/sandbox-exec` is not there; [`SandboxError::ReadExecutable`] when the guest
/// cannot be canonicalised; [`SandboxError::UnrepresentablePath`] when its path cannot be
/// written into a profile.
pub(crate) fn prepare(req: &PolicyRequest<'_>) -> Result<Plan, SandboxError> {
    let kernel = kernel_facts();
    if req.no_sandbox {
        return Ok(Plan {
            no_sandbox: true,
            guest: req.guest.to_owned(),
            profile: None,
            report: IsolationReport::disabled("macos", kernel),
        });
    }
    if !req.guest.is_absolute() {
        return Err(SandboxError::GuestPathNotAbsolute {
            path: req.guest.to_owned(),
        });
    }
    if !req.allow_degraded {
        return Err(SandboxError::PlatformDegraded {
            platform: "macos",
            missing: MISSING,
        });
    }
    let unavailable = |source| SandboxError::SandboxExecUnavailable {
        path: PathBuf::from(profile::SANDBOX_EXEC),
        source,
    };
    let meta = std::fs::metadata(profile::SANDBOX_EXEC).map_err(unavailable)?;
    if !meta.is_file() {
        return Err(unavailable(io::Error::other("not a regular file")));
    }
    // Seatbelt compares the kernel's path of the file: symlinks resolved, /tmp and /var as
    // /private/tmp and /private/var (canonicalize resolves those symlinks; private_alias is
    // the same mapping as a pure function, a no-op on an already canonical path).
    let guest = req
        .guest
        .canonicalize()
        .map_err(|source| SandboxError::ReadExecutable {
            path: req.guest.to_owned(),
            source,
        })?;
    let guest = profile::private_alias(&guest);
    let generated = profile::generate(&guest)?;
    let limits = RLIMITS
        .iter()
        .map(|l| ResourceLimit {
            name: l.name,
            soft: l.value,
            hard: l.value,
        })
        .collect();
    Ok(Plan {
        no_sandbox: false,
        guest,
        profile: Some(OsString::from(generated.text)),
        report: isolation_report(kernel, generated.grants, limits),
    })
}

/// Escape tests against the real Seatbelt, with system programs as guests: each shows the
/// operation working unsandboxed, then failing under the generated profile with EPERM
/// ("Operation not permitted"). macOS only; CI (Linux) type-checks them for
/// aarch64-apple-darwin but cannot run them.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{verify_guest, Rejection};
    use std::process::{Command, Output};

    /// Runs `guest ARGS` directly, or under `sandbox-exec` with the profile for `guest`.
    fn run(guest: &str, args: &[&str], sandboxed: bool) -> Output {
        let mut cmd = if sandboxed {
            let p = profile::generate(Path::new(guest)).expect("profile");
            let mut c = Command::new(profile::SANDBOX_EXEC);
            c.arg("-p").arg(p.text).arg("--").arg(guest);
            c
        } else {
            Command::new(guest)
        };
        cmd.args(args).env_clear().current_dir("/");
        cmd.output().expect("spawn")
    }

    fn denied(out: &Output) -> bool {
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("Operation not permitted")
    }

    #[test]
    fn the_profile_compiles_and_lets_dyld_start_a_guest() {
        // cat reads a file under /usr/lib (granted): the guest loads and runs to exit 0.
        let out = run("/bin/cat", &["/usr/lib/dyld"], true);
        assert!(out.status.success(), "{out:?}");
        assert!(!out.stdout.is_empty());
    }

    #[test]
    fn reading_another_file_is_denied() {
        let out = run("/bin/cat", &["/private/etc/hosts"], false);
        assert!(out.status.success(), "positive control: {out:?}");
        let out = run("/bin/cat", &["/private/etc/hosts"], true);
        assert!(denied(&out), "{out:?}");
        // The /etc alias resolves to the same file and is denied the same way.
        let out = run("/bin/cat", &["/etc/hosts"], true);
        assert!(denied(&out), "{out:?}");
    }

    #[test]
    fn writing_a_file_is_denied() {
        let dir = std::env::temp_dir().canonicalize().expect("temp dir");
        let target = dir.join(format!("confine-seatbelt-{}", std::process::id()));
        let target = target.to_str().expect("utf-8 temp path");
        let out = run("/usr/bin/touch", &[target], false);
        assert!(out.status.success(), "positive control: {out:?}");
        std::fs::remove_file(target).expect("remove");
        let out = run("/usr/bin/touch", &[target], true);
        assert!(denied(&out), "{out:?}");
        assert!(!Path::new(target).exists());
    }

    #[test]
    fn executing_another_program_is_denied() {
        // `exec` replaces bash without a fork, so only process-exec is in the way.
        let args = ["-c", "exec /bin/echo escaped"];
        let out = run("/bin/bash", &args, false);
        assert_eq!(out.stdout, b"escaped\n", "positive control: {out:?}");
        let out = run("/bin/bash", &args, true);
        assert!(denied(&out), "{out:?}");
        assert!(out.stdout.is_empty());
    }

    #[test]
    fn connecting_to_loopback_is_denied() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port().to_string();
        let out = run("/usr/bin/nc", &["-z", "-w", "2", "127.0.0.1", &port], false);
        assert!(out.status.success(), "positive control: {out:?}");
        let out = run("/usr/bin/nc", &["-z", "-w", "2", "127.0.0.1", &port], true);
        assert!(!out.status.success(), "{out:?}");
    }

    #[test]
    fn prepare_requires_degraded_mode_and_wraps_the_guest() {
        let req = |allow_degraded| PolicyRequest {
            guest: Path::new("/bin/cat"),
            no_sandbox: false,
            allow_degraded,
            profile: crate::registry::Profile::Js,
        };
        assert!(matches!(
            prepare(&req(false)),
            Err(SandboxError::PlatformDegraded {
                platform: "macos",
                ..
            })
        ));
        let plan = prepare(&req(true)).expect("plan");
        let (program, args) = plan.launch_command(Path::new("/bin/cat"), &[OsString::from("x")]);
        assert_eq!(program, Path::new("/usr/bin/sandbox-exec"));
        assert_eq!(args[0], "-p");
        assert_eq!(args[2], "--");
        assert_eq!(args[3], "/bin/cat");
        assert_eq!(args[4], "x");
        assert_eq!(plan.report().gaps().count(), 2);

        assert_eq!(plan.expectations(), Some(Expectations { seatbelt: true }));

        let plain = prepare(&PolicyRequest {
            no_sandbox: true,
            ..req(false)
        })
        .expect("no_sandbox plan");
        let (program, args) = plain.launch_command(Path::new("/bin/cat"), &[]);
        assert_eq!(program, Path::new("/bin/cat"));
        assert!(args.is_empty());
        assert!(!plain.report().sandboxed);
        assert_eq!(plain.expectations(), None);
    }

    /// Starts `/bin/cat` (sandboxed or not) and waits until it echoes a line, so it has
    /// certainly been executed (and, sandboxed, is past sandbox_init). It runs until its
    /// stdin (returned with it) is dropped.
    fn running_cat(sandboxed: bool) -> (std::process::Child, std::process::ChildStdin) {
        use std::io::{BufRead, BufReader, Write};
        use std::process::Stdio;
        let mut cmd = if sandboxed {
            let p = profile::generate(Path::new("/bin/cat")).expect("profile");
            let mut c = Command::new(profile::SANDBOX_EXEC);
            c.arg("-p").arg(p.text).arg("--").arg("/bin/cat");
            c
        } else {
            Command::new("/bin/cat")
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn cat");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"ping\n").expect("write");
        stdin.flush().expect("flush");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line, "ping\n");
        (child, stdin)
    }

    #[test]
    fn the_host_sees_from_outside_whether_a_guest_is_sandboxed() {
        let expect = Expectations { seatbelt: true };
        let (mut plain, plain_stdin) = running_cat(false);
        match verify_guest(plain.id(), &expect) {
            Err(Rejection::Failed(SandboxError::VerificationFailed { check, .. })) => {
                assert_eq!(check, crate::report::VerifyCheck::Seatbelt)
            }
            other => panic!("an unsandboxed process passed: {other:?}"),
        }
        let (mut sandboxed, sandboxed_stdin) = running_cat(true);
        assert!(matches!(verify_guest(sandboxed.id(), &expect), Ok(())));
        drop((plain_stdin, sandboxed_stdin));
        plain.wait().expect("wait");
        sandboxed.wait().expect("wait");
    }
}

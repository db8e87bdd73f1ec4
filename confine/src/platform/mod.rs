//! The platform sandbox: the OS-level wall around a guest process.
//!
//! The launcher calls [`prepare`] once per guest executable (in the parent; it may allocate,
//! probe the kernel and read files) to get a [`Plan`], which it keeps for a minute keyed by the
//! guest file's identity and [`thread_context`], then for every spawn calls
//! [`Plan::apply_in_child`] from `pre_exec`, between `fork` and `execve`, where only
//! async-signal-safe raw syscalls run. [`Plan::report`] says what the plan enforces.
//!
//! On Linux a plan is: parent-death signal, `setsid`, fd layout, rlimits, MDWE,
//! `no_new_privs`, Landlock, and the stage-1 seccomp filter (see `linux/policy.rs` for the
//! tables and `research/linux-sandbox-recipe.md` for the reasoning). It also carries the
//! stage-2 filter the guest installs itself ([`Plan::lockdown`], sent in `Hello`) and what the
//! host checks from outside once the guest says `Ready` ([`Plan::expectations`],
//! [`verify_guest`]).
//!
//! On macOS a plan is `setsid`, fd layout and rlimits in the child, then the launcher executes
//! `/usr/bin/sandbox-exec` with a generated Seatbelt profile, which executes the guest
//! ([`launch_command`]; see `macos/mod.rs` for the model and its limits). Other platforms only
//! support `no_sandbox` for now.

use std::{
    ffi::OsString,
    fmt, io,
    path::{Path, PathBuf},
};

#[cfg(target_os = "linux")]
mod linux;
/// The source type of `SandboxError::BuildFilter`, re-exported by the crate root.
#[cfg(target_os = "linux")]
pub use linux::FilterError;
#[cfg(target_os = "linux")]
#[allow(
    unused_imports,
    reason = "Plan is part of the platform API; the launcher only infers it today"
)]
pub(crate) use linux::{prepare, Plan};

#[cfg(target_os = "linux")]
pub(crate) use linux::{kernel_facts, verify_guest, Rejection};

/// What in the spawning thread a plan depends on: the number of seccomp filters it already
/// runs under (the guest inherits them, and the host's check counts them). `None` if it cannot
/// be read, in which case plans are not reused.
#[cfg(target_os = "linux")]
pub(crate) fn thread_context() -> Option<u32> {
    linux::verify::own_filter_count().ok()
}

/// Plans depend on nothing of the spawning thread here.
#[cfg(not(target_os = "linux"))]
pub(crate) fn thread_context() -> Option<u32> {
    Some(0)
}

/// Optional kernel features confine reports but does not use yet.
#[cfg(target_os = "linux")]
pub(crate) use linux::probe::{cgroup_v2, user_namespaces};

/// The macOS backend. Compiled on every platform: its profile generator and report are pure,
/// so their unit tests run in CI on Linux; only the launch path is macOS-only.
mod macos;
#[cfg(target_os = "macos")]
pub(crate) use macos::{kernel_facts, prepare, verify_guest, Plan};

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub(crate) use not_linux::verify_guest;
#[cfg(not(target_os = "linux"))]
pub(crate) use not_linux::{cgroup_v2, user_namespaces, Rejection};

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub(crate) use unsupported::{kernel_facts, prepare, Plan};

/// The program the launcher executes for `plan` and its arguments: on macOS
/// `/usr/bin/sandbox-exec` wrapping the guest (unless `no_sandbox`), elsewhere the guest
/// itself.
#[must_use]
pub(crate) fn launch_command(
    plan: &Plan,
    program: &Path,
    args: &[OsString],
) -> (PathBuf, Vec<OsString>) {
    #[cfg(target_os = "macos")]
    return plan.launch_command(program, args);
    #[cfg(not(target_os = "macos"))]
    {
        let _ = plan;
        (program.to_owned(), args.to_vec())
    }
}

use crate::report::{LandlockSupport, VerifyCheck};

/// What the launcher asks the platform layer for.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "macos")),
    allow(dead_code, reason = "platforms without a backend read only no_sandbox")
)]
pub(crate) struct PolicyRequest<'a> {
    /// Absolute, canonical path of the guest executable.
    pub guest: &'a std::path::Path,
    /// Skip every layer; the report says "disabled".
    pub no_sandbox: bool,
    /// A missing optional layer (Landlock) degrades instead of failing. A missing seccomp is
    /// always fatal unless `no_sandbox`.
    pub allow_degraded: bool,
    /// What the guest's engine needs from memory (the runtime's registry entry says).
    #[cfg_attr(
        not(target_os = "linux"),
        allow(dead_code, reason = "Linux-only for now")
    )]
    pub profile: crate::registry::Profile,
}

/// What the host requires of a started guest, checked from outside after `Ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expectations {
    /// `Seccomp_filters` in `/proc/<pid>/status`: the host's own filters (inherited), stage 1
    /// and stage 2.
    #[cfg(target_os = "linux")]
    pub seccomp_filters: u32,
    /// macOS: the guest runs under a Seatbelt profile (`sandbox_check`).
    #[cfg(target_os = "macos")]
    pub seatbelt: bool,
}

/// A step of the post-fork sequence, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[non_exhaustive]
pub enum SpawnStep {
    /// `prctl(PR_SET_PDEATHSIG, SIGKILL)`.
    ParentDeathSignal = 1,
    /// The host exited before the child armed its parent-death signal.
    ParentExited = 2,
    /// `setsid()`.
    SetSid = 3,
    /// Putting the IPC socket on fd 3.
    FdLayout = 4,
    /// Marking every other fd close-on-exec.
    CloseFds = 5,
    /// `setrlimit` of one of the guest's resource limits.
    Rlimit = 6,
    /// `prctl(PR_SET_MDWE)`.
    Mdwe = 7,
    /// `prctl(PR_SET_NO_NEW_PRIVS)`.
    NoNewPrivs = 8,
    /// `landlock_restrict_self`.
    Landlock = 9,
    /// Installing the stage-1 seccomp filter.
    Seccomp = 10,
}

impl SpawnStep {
    const ALL: [SpawnStep; 10] = [
        SpawnStep::ParentDeathSignal,
        SpawnStep::ParentExited,
        SpawnStep::SetSid,
        SpawnStep::FdLayout,
        SpawnStep::CloseFds,
        SpawnStep::Rlimit,
        SpawnStep::Mdwe,
        SpawnStep::NoNewPrivs,
        SpawnStep::Landlock,
        SpawnStep::Seccomp,
    ];
}

impl fmt::Display for SpawnStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpawnStep::ParentDeathSignal => {
                "tying the guest's life to the host (parent-death signal)"
            }
            SpawnStep::ParentExited => "checking that the host is still alive",
            SpawnStep::SetSid => "detaching the guest from the terminal (setsid)",
            SpawnStep::FdLayout => "placing the IPC socket on fd 3",
            SpawnStep::CloseFds => "closing inherited file descriptors",
            SpawnStep::Rlimit => "setting resource limits",
            SpawnStep::Mdwe => "forbidding writable-executable memory (MDWE)",
            SpawnStep::NoNewPrivs => "forbidding privilege gain (no_new_privs)",
            SpawnStep::Landlock => "applying the Landlock file and network rules",
            SpawnStep::Seccomp => "installing the seccomp syscall filter",
        })
    }
}

/// A post-fork step failed: which one, and the errno. Plain data, so the child can write it
/// to a pipe without allocating and the parent can read it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct ChildFailure {
    /// The step that failed.
    pub(crate) step: SpawnStep,
    /// Its errno.
    pub(crate) errno: i32,
}

impl ChildFailure {
    /// Encodes as `step` (u32 LE) then `errno` (i32 LE).
    #[must_use]
    pub(crate) fn to_bytes(self) -> [u8; 8] {
        let mut out = [0; 8];
        out[..4].copy_from_slice(&(self.step as u32).to_le_bytes());
        out[4..].copy_from_slice(&self.errno.to_le_bytes());
        out
    }

    /// Decodes [`ChildFailure::to_bytes`]; `None` for an unknown step.
    #[must_use]
    pub(crate) fn from_bytes(bytes: [u8; 8]) -> Option<Self> {
        let mut step = [0; 4];
        step.copy_from_slice(&bytes[..4]);
        let mut errno = [0; 4];
        errno.copy_from_slice(&bytes[4..]);
        let step = u32::from_le_bytes(step);
        let step = SpawnStep::ALL.into_iter().find(|s| *s as u32 == step)?;
        Some(ChildFailure {
            step,
            errno: i32::from_le_bytes(errno),
        })
    }
}

impl fmt::Display for ChildFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed: {}",
            self.step,
            io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl std::error::Error for ChildFailure {}

/// Building a sandbox policy failed, before any process was started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The guest path must be absolute (it is resolved once, then granted by inode).
    #[error("the guest executable path {path:?} is not absolute")]
    GuestPathNotAbsolute {
        /// The path given.
        path: PathBuf,
    },
    /// The guest executable or one of its libraries could not be read.
    #[error("cannot read {path:?} (the guest executable or a library it loads)")]
    ReadExecutable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The guest executable or a library is not an ELF file the policy builder understands.
    #[error("{path:?} is not a loadable x86_64 ELF file: {problem}")]
    InvalidElf {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: &'static str,
    },
    /// A shared library the guest needs is in none of the directories the loader searches
    /// without `/etc/ld.so.cache` (which the sandbox does not grant).
    #[error("library {name:?} needed by {needed_by:?} is not in a standard library directory or the object's RUNPATH")]
    LibraryNotFound {
        /// The `DT_NEEDED` name.
        name: String,
        /// The object that needs it.
        needed_by: PathBuf,
    },
    /// The kernel has no seccomp filters; there is no safe fallback.
    #[error("seccomp filters are unavailable, so the guest cannot be sandboxed")]
    SeccompUnavailable {
        /// The probe's error.
        #[source]
        source: io::Error,
    },
    /// Landlock is unavailable and degraded mode was not allowed.
    #[error("Landlock is unavailable ({support}); allow degraded mode to run without it")]
    LandlockUnsupported {
        /// What the probe found.
        support: LandlockSupport,
    },
    /// The kernel refused to create the Landlock ruleset.
    #[error("creating the Landlock ruleset failed")]
    LandlockRuleset {
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// Adding the rule for one path failed.
    #[error("adding the Landlock rule for {path:?} failed")]
    LandlockRule {
        /// The path.
        path: PathBuf,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// The seccomp program could not be built from the policy tables (a bug in the tables).
    #[cfg(target_os = "linux")]
    #[error("building the seccomp filter failed")]
    BuildFilter {
        /// What went wrong.
        #[from]
        source: FilterError,
    },
    /// A kernel probe failed unexpectedly.
    #[error("probing {what} failed")]
    Probe {
        /// What was probed.
        what: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The guest said `Ready`, but the host's check from outside found it not locked down as
    /// required (for example a guest that skipped its stage-2 filter). The guest was killed
    /// before it received any source.
    #[error(
        "the guest failed the host's isolation check ({check}): expected {expected}, found {found}"
    )]
    VerificationFailed {
        /// What was checked.
        check: VerifyCheck,
        /// What the host required.
        expected: String,
        /// What it found.
        found: String,
    },
    /// The guest's state under `/proc` could not be read, so it could not be verified (and
    /// was killed).
    #[error("cannot read {path:?} to verify the guest's isolation")]
    VerificationUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// This platform has no sandbox implementation yet; only `no_sandbox` works.
    #[error("sandboxing is not implemented on this platform; only no_sandbox is available")]
    Unsupported,
    /// The platform's sandbox lacks a layer by design (macOS: no system-call filter, no W^X
    /// enforcement) and degraded mode was not allowed.
    #[error("the {platform} sandbox cannot enforce {missing}; allow degraded mode to run with it")]
    PlatformDegraded {
        /// `macos`, ...
        platform: &'static str,
        /// What is missing.
        missing: &'static str,
    },
    /// macOS: `/usr/bin/sandbox-exec`, which applies the Seatbelt profile, cannot be used.
    /// The guest is never started unsandboxed instead.
    #[error("{path:?} (which applies the macOS sandbox profile) cannot be used")]
    SandboxExecUnavailable {
        /// `/usr/bin/sandbox-exec`.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// macOS: a path cannot be written into a sandbox profile faithfully (a rule for an
    /// approximated path would grant the wrong file or none).
    #[error("the path {path:?} cannot be written into a macOS sandbox profile: {problem}")]
    UnrepresentablePath {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// What every platform but Linux lacks: user namespaces and cgroups to report; and, except
/// on macOS, a way to verify a started guest from outside (plans there have no expectations).
#[cfg(not(target_os = "linux"))]
mod not_linux {
    use super::SandboxError;
    use crate::report::{CgroupV2, UserNamespaces};

    /// Not probed on this platform.
    pub(crate) fn user_namespaces() -> UserNamespaces {
        UserNamespaces::NotProbed {
            reason: "not Linux".to_owned(),
        }
    }

    /// Not probed on this platform.
    pub(crate) fn cgroup_v2() -> CgroupV2 {
        CgroupV2::NotMounted
    }

    /// Why a guest was not accepted.
    #[derive(Debug)]
    pub(crate) enum Rejection {
        /// The guest is no longer running.
        #[allow(dead_code, reason = "same shape as the Linux type")]
        Exited,
        /// It could not be verified.
        Failed(SandboxError),
    }

    /// Never called: plans here have no expectations.
    #[cfg(not(target_os = "macos"))]
    pub(crate) fn verify_guest(_pid: u32, _expect: &super::Expectations) -> Result<(), Rejection> {
        Err(Rejection::Failed(SandboxError::Unsupported))
    }
}

/// Other platforms: only `no_sandbox` until their backend exists.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
mod unsupported {
    use super::{ChildFailure, PolicyRequest, SandboxError};
    use crate::report::{IsolationReport, KernelFacts, LandlockSupport};

    /// Nothing probed here.
    pub(crate) fn kernel_facts() -> KernelFacts {
        KernelFacts {
            release: String::new(),
            landlock: LandlockSupport::NotProbed,
            seccomp: false,
            mdwe: false,
        }
    }

    /// A plan that does nothing (only `no_sandbox` gets one).
    #[derive(Debug)]
    pub(crate) struct Plan {
        report: IsolationReport,
    }

    /// Only `no_sandbox` is supported here.
    pub(crate) fn prepare(req: &PolicyRequest<'_>) -> Result<Plan, SandboxError> {
        if !req.no_sandbox {
            return Err(SandboxError::Unsupported);
        }
        Ok(Plan {
            report: IsolationReport::disabled(std::env::consts::OS, kernel_facts()),
        })
    }

    impl Plan {
        /// Nothing to apply.
        ///
        /// # Safety
        /// Same contract as the Linux version.
        pub(crate) unsafe fn apply_in_child(
            &self,
            _ipc_fd: std::os::fd::RawFd,
            _parent_pid: i32,
        ) -> Result<(), ChildFailure> {
            Ok(())
        }

        /// Everything disabled.
        #[must_use]
        pub(crate) fn report(&self) -> IsolationReport {
            self.report.clone()
        }

        /// No stage 2 without a sandbox.
        #[must_use]
        pub(crate) fn lockdown(&self) -> Option<confine_runtime_abstract::protocol::Lockdown> {
            None
        }

        /// Nothing to verify without a sandbox.
        #[must_use]
        pub(crate) fn expectations(&self) -> Option<super::Expectations> {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_failure_roundtrips() {
        for step in SpawnStep::ALL {
            let f = ChildFailure {
                step,
                errno: libc::EPERM,
            };
            assert_eq!(ChildFailure::from_bytes(f.to_bytes()), Some(f));
            assert!(!step.to_string().is_empty());
        }
        assert_eq!(ChildFailure::from_bytes([0; 8]), None);
        assert_eq!(ChildFailure::from_bytes([99, 0, 0, 0, 1, 0, 0, 0]), None);
    }

    #[test]
    fn error_shape() {
        // Catches accidental changes to the error's public shape.
        let e = SandboxError::LandlockRule {
            path: "/x".into(),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        };
        assert!(std::error::Error::source(&e).is_some());
        assert!(e.to_string().contains("/x"));
    }
}

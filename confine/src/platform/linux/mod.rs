//! The Linux sandbox: stage 1, what the host applies between `fork` and `execve`; stage 2,
//! the filter the guest installs on itself; and the host's check that it did.
//!
//! [`prepare`] probes the kernel (seccomp, Landlock ABI, MDWE), resolves the files the
//! guest's dynamic loader needs ([`elf`]), creates the Landlock ruleset fd ([`landlock`]),
//! compiles both seccomp programs from the tables in [`policy`] ([`bpf`]) and writes the
//! [`IsolationReport`]. [`Plan::apply_in_child`] ([`child`]) then does only raw syscalls.
//! The stage-2 program travels to the guest in `Hello` ([`Plan::lockdown`]); after `Ready`,
//! [`verify_guest`] ([`verify`]) checks `/proc/<pid>` for both filters, the fd set and the
//! empty environment before the host sends any source.
//!
//! Layers and what each is for:
//!
//! | layer | stops |
//! |---|---|
//! | seccomp stage 1 | sockets, new processes, namespaces, W+X memory, ioctls, signals to others, the kernel attack surface; file writes (read-only `open` flags) |
//! | Landlock | which files can be opened and executed: the guest, its interpreter, its libraries; TCP (ABI >= 4); signals and abstract sockets outside the guest (ABI >= 6) |
//! | rlimits | core dumps, file writes (`fsize` 0), fd count, locked memory |
//! | MDWE | memory becoming executable after it was writable (Linux >= 6.3; `Js` profile only) |
//! | no_new_privs | setuid/file-capability gain on exec |
//! | setsid, fd layout | controlling terminal; inherited fds (only 0-3 survive exec) |
//!
//! Stage 1 must allow what the loader needs (`openat`, `newfstatat`, `execve`,
//! `mmap(PROT_EXEC)`), so file metadata (`stat` of any path) stays visible until the guest
//! installs its stage-2 filter; the report says so until the host has verified stage 2.
//! Stage 2 is the same program for every guest of a [`Profile`] (it compares with no pid), so
//! it is compiled once per process and profile ([`stage2_program`]). The profile (from the
//! runtime's registry entry) decides MDWE and stage 2's memory rules: interpreters (`Js`)
//! never get executable memory after lockdown; JIT engines (`Wasm`) may turn written pages
//! read-execute, never writable and executable at once. In the audit mode ([`AUDIT_ENV`],
//! CI) stage 2 traps instead of returning errnos, so the guest reports any refusal it meets.

pub(crate) mod bpf;
pub(crate) mod child;
pub(crate) mod elf;
pub(crate) mod landlock;
pub(crate) mod policy;
pub(crate) mod probe;
pub(crate) mod verify;

#[allow(unreachable_pub, reason = "re-exported by platform/mod.rs")]
pub use bpf::FilterError;
pub(crate) use verify::{verify as verify_guest, Rejection};

use std::{
    ffi::CStr,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    sync::OnceLock,
};

use confine_runtime_abstract::protocol::Lockdown;

use crate::{
    platform::{ChildFailure, Expectations, PolicyRequest, SandboxError},
    registry::Profile,
    report::{
        FileGrant, IsolationReport, KernelFacts, LandlockSupport, Layer, Protection,
        ProtectionStatus, ResourceLimit, Stage2,
    },
};
use policy::Rlimit;

/// Everything the child needs, built once in the parent and shared (`Arc`) across spawns.
pub(crate) struct Plan {
    /// Only the fd layout and session steps run.
    pub(super) no_sandbox: bool,
    /// The Landlock ruleset (close-on-exec, fd >= 10), `None` if Landlock is not used.
    pub(super) ruleset: Option<OwnedFd>,
    /// The stage-1 seccomp program.
    pub(super) filter: Option<bpf::Filter>,
    /// Set `PR_SET_MDWE` in the child.
    pub(super) mdwe: bool,
    /// Resource limits to set.
    pub(super) rlimits: Vec<Rlimit>,
    /// The stage-2 program as sent in `Hello` (`None` with `no_sandbox`).
    stage2: Option<&'static [u8]>,
    /// What the host checks after `Ready` (`None` with `no_sandbox`).
    expect: Option<Expectations>,
    report: IsolationReport,
    /// Holds fd 3 in the parent if it was free, so no per-spawn pipe (std's exec-error pipe,
    /// the launcher's step-failure pipe) can land on 3, where the child puts the IPC socket.
    _fd3_reservation: Option<OwnedFd>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("no_sandbox", &self.no_sandbox)
            .field("ruleset", &self.ruleset)
            .field(
                "seccomp_instructions",
                &self.filter.as_ref().map(|f| f.insns.len()),
            )
            .field("mdwe", &self.mdwe)
            .field("rlimits", &self.rlimits)
            .field("stage2_instructions", &self.stage2.map(|p| p.len() / 8))
            .field("expect", &self.expect)
            .finish_non_exhaustive()
    }
}

impl Plan {
    /// Runs in the forked child (`Command::pre_exec`), after std has set up fds 0-2.
    ///
    /// In order: parent-death signal (SIGKILL) and a `getppid()` check against
    /// `parent_pid`; `setsid`; `ipc_fd` onto fd 3 (not close-on-exec); every fd >= 4 marked
    /// close-on-exec (so the launcher's error pipe still works; exec closes them); rlimits;
    /// MDWE; `no_new_privs`; Landlock; stage-1 seccomp. With `no_sandbox`, only the first
    /// four.
    ///
    /// # Errors
    /// The failing step and its errno.
    ///
    /// # Safety
    /// Call only in a freshly forked child about to `execve`: it uses async-signal-safe raw
    /// syscalls only (no allocation, locks or `std::io`), but it rearranges fds and restricts
    /// the process irreversibly. The fork must come from a thread that outlives the guest, or
    /// the parent-death signal kills it when that thread exits.
    pub(crate) unsafe fn apply_in_child(
        &self,
        ipc_fd: RawFd,
        parent_pid: i32,
    ) -> Result<(), ChildFailure> {
        // SAFETY: forwarded contract.
        unsafe { child::apply(self, ipc_fd, parent_pid) }
    }

    /// What this plan enforces. Stage 2 shows as not verified: the host upgrades its copy
    /// with [`IsolationReport::with_stage2_verified`] once [`verify_guest`] passed.
    #[must_use]
    pub(crate) fn report(&self) -> IsolationReport {
        self.report.clone()
    }

    /// The stage-2 lockdown to send in `Hello`; `None` with `no_sandbox`.
    #[must_use]
    pub(crate) fn lockdown(&self) -> Option<Lockdown> {
        self.stage2.map(|program| Lockdown {
            seccomp_filter: program.to_vec(),
        })
    }

    /// What [`verify_guest`] must find once the guest says `Ready`; `None` with
    /// `no_sandbox`.
    #[must_use]
    pub(crate) fn expectations(&self) -> Option<Expectations> {
        self.expect
    }

    /// Adds a resource limit (for example `RLIMIT_CPU` as a backstop to the host's
    /// deadlines, or `RLIMIT_AS` for an interpreter profile; not for wasmtime, whose guard
    /// regions are huge reservations). Replaces an earlier limit on the same resource.
    #[allow(dead_code, reason = "for the limits module (RLIMIT_CPU backstop)")]
    pub(crate) fn with_rlimit(
        mut self,
        resource: libc::__rlimit_resource_t,
        name: &'static str,
        soft: u64,
        hard: u64,
    ) -> Self {
        if self.no_sandbox {
            return self;
        }
        self.rlimits.retain(|l| l.resource != resource);
        self.rlimits.push(Rlimit {
            resource,
            name,
            soft,
            hard,
            why: "set by the caller",
        });
        self.report.resource_limits = report_limits(&self.rlimits);
        self
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

/// `Ok` if seccomp filters with `KILL_PROCESS` are available.
fn probe_seccomp() -> io::Result<()> {
    let action: u32 = libc::SECCOMP_RET_KILL_PROCESS;
    // SAFETY: GET_ACTION_AVAIL reads one u32 we own.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0u32,
            &action as *const u32,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What the kernel offers, as [`prepare`] probes it.
pub(crate) fn kernel_facts() -> KernelFacts {
    KernelFacts {
        release: kernel_release(),
        landlock: landlock::probe(),
        seccomp: probe_seccomp().is_ok(),
        mdwe: probe_mdwe(),
    }
}

fn probe_mdwe() -> bool {
    // SAFETY: prctl with integer arguments; EINVAL before Linux 6.3.
    unsafe { libc::prctl(libc::PR_GET_MDWE, 0, 0, 0, 0) >= 0 }
}

/// Moves an fd to >= `min` (close-on-exec), so the child's `dup2(ipc, 3)` cannot hit it.
fn move_fd_up(fd: OwnedFd, min: RawFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() >= min {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on an open fd returns a new fd we own.
    let raw = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd from fcntl.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn reserve_fd3() -> Option<OwnedFd> {
    // SAFETY: F_GETFD on a number only queries it.
    if unsafe { libc::fcntl(child::IPC_FD, libc::F_GETFD) } >= 0 {
        return None; // in use: held by something long-lived of the host's
    }
    // SAFETY: open with a literal path; the result is owned below.
    let raw = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if raw < 0 {
        return None;
    }
    // SAFETY: fresh fd.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    if raw == child::IPC_FD {
        return Some(fd);
    }
    // SAFETY: duplicate onto the lowest free fd >= 3; keep it only if that is 3.
    let dup = unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, child::IPC_FD) };
    if dup < 0 {
        return None;
    }
    // SAFETY: fresh fd.
    let dup = unsafe { OwnedFd::from_raw_fd(dup) };
    (dup.as_raw_fd() == child::IPC_FD).then_some(dup)
}

/// The environment variable that turns on the seccomp audit mode (for CI, off by default):
/// every refusal a healthy guest should never meet traps (`SECCOMP_RET_TRAP`) instead of
/// returning its errno, and the guest's SIGSYS handler (`confine_guest::lockdown`) prints
/// the syscall number to stderr and exits with `EXIT_SECCOMP_AUDIT` (75). Only
/// [`policy::AUDIT_EXPECTED`] keeps its errno, and kills stay kills, so the mode is never
/// weaker than the normal one. A value that is an absolute path also names a file the host
/// appends each reported denial to (see the launcher), which `cargo xtask test` checks.
pub(crate) const AUDIT_ENV: &str = crate::launcher::SECCOMP_AUDIT_ENV;

/// Whether [`AUDIT_ENV`] is set (read once per process).
pub(crate) fn audit_mode() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os(AUDIT_ENV).is_some_and(|v| !v.is_empty()))
}

/// Stage 2 in audit mode: as `base`, but where `base` allows a syscall that stage 1 checks
/// by argument, stage 1's check is repeated, so a refusal by stage 1 traps too (stage 1
/// itself keeps its errnos: it also runs the loader, which probes on purpose). Checks against
/// the guest's own pid cannot travel in `Hello` and stay with stage 1 alone.
fn audited(base: fn(u32) -> policy::Verdict, nr: u32) -> policy::Verdict {
    use policy::{Check, Operand, Verdict};
    let one = policy::stage1_verdict(nr);
    match (base(nr), one) {
        (Verdict::Allow, Verdict::AllowIf { checks, .. })
            if !checks.iter().any(
                |c| matches!(c, Check::LowIn { values, .. } if values.contains(&Operand::SelfPid)),
            ) =>
        {
            one
        }
        (v, _) => v,
    }
}

fn stage2_js_audit(nr: u32) -> policy::Verdict {
    audited(policy::stage2_verdict, nr)
}

fn stage2_wasm_audit(nr: u32) -> policy::Verdict {
    audited(policy::stage2_wasm_verdict, nr)
}

/// The stage-2 table for `profile`, plain or audited.
pub(crate) fn stage2_table(profile: Profile, audit: bool) -> fn(u32) -> policy::Verdict {
    match (profile, audit) {
        (Profile::Wasm, false) => policy::stage2_wasm_verdict,
        (Profile::Wasm, true) => stage2_wasm_audit,
        (_, false) => policy::stage2_verdict,
        (_, true) => stage2_js_audit,
    }
}

/// How refusals return: errnos, or the audit mode's traps.
pub(crate) fn denials(audit: bool) -> bpf::Denials {
    if audit {
        bpf::Denials::AuditTrap {
            keep: policy::audit_keeps,
        }
    } else {
        bpf::Denials::Errno
    }
}

/// The stage-2 program for `profile`, compiled once per process and mode: it is the same for
/// every guest of that profile.
///
/// # Errors
/// A [`FilterError`] if the tables do not compile (a bug the unit tests catch).
pub(crate) fn stage2_program(profile: Profile, audit: bool) -> Result<&'static [u8], FilterError> {
    type Slot = OnceLock<Result<Vec<u8>, FilterError>>;
    static PROGRAMS: [Slot; 4] = [const { OnceLock::new() }; 4];
    let index = usize::from(profile == Profile::Wasm) * 2 + usize::from(audit);
    match PROGRAMS[index].get_or_init(|| {
        bpf::build_denying(
            policy::NEWEST_KNOWN_SYSCALL,
            stage2_table(profile, audit),
            denials(audit),
        )?
        .to_bytes()
    }) {
        Ok(program) => Ok(program),
        Err(e) => Err(e.clone()),
    }
}

/// Builds the plan for one guest executable. Probes the kernel every call (cheap: a few
/// syscalls); callers cache the plan per executable.
///
/// # Errors
/// [`SandboxError::SeccompUnavailable`] (always fatal unless `no_sandbox`),
/// [`SandboxError::LandlockUnsupported`] (unless `allow_degraded`), errors reading the
/// guest's ELF headers or libraries, and kernel refusals of the ruleset.
pub(crate) fn prepare(req: &PolicyRequest<'_>) -> Result<Plan, SandboxError> {
    let seccomp = probe_seccomp();
    let kernel = KernelFacts {
        release: kernel_release(),
        landlock: landlock::probe(),
        seccomp: seccomp.is_ok(),
        mdwe: probe_mdwe(),
    };
    if req.no_sandbox {
        return Ok(Plan {
            no_sandbox: true,
            ruleset: None,
            filter: None,
            mdwe: false,
            rlimits: Vec::new(),
            stage2: None,
            expect: None,
            report: IsolationReport::disabled("linux", kernel),
            _fd3_reservation: reserve_fd3(),
        });
    }
    if !req.guest.is_absolute() {
        return Err(SandboxError::GuestPathNotAbsolute {
            path: req.guest.to_owned(),
        });
    }
    seccomp.map_err(|source| SandboxError::SeccompUnavailable { source })?;
    let filter = bpf::build(policy::NEWEST_KNOWN_SYSCALL, policy::stage1_verdict)?;
    let stage2 = stage2_program(req.profile, audit_mode())?;
    // The guest inherits the filters of the thread that forks it, which is this one: the
    // launcher prepares and spawns in one synchronous call.
    let inherited = verify::own_filter_count().map_err(|source| SandboxError::Probe {
        what: "this process's own seccomp filters (/proc/thread-self/status)",
        source,
    })?;

    let (ruleset, grants) = match kernel.landlock {
        LandlockSupport::Available { used_abi, .. } => {
            let guest =
                req.guest
                    .canonicalize()
                    .map_err(|source| SandboxError::ReadExecutable {
                        path: req.guest.to_owned(),
                        source,
                    })?;
            let load = elf::load_set(&guest)?;
            let mut grants = landlock::grants_for(&guest, &load);
            if req.profile == Profile::Wasm {
                grants.extend(jit_cache_grant(&guest));
            }
            let fd = landlock::build_ruleset(used_abi, &grants)?;
            let fd =
                move_fd_up(fd, 10).map_err(|source| SandboxError::LandlockRuleset { source })?;
            (Some((fd, used_abi)), grants)
        }
        support if !req.allow_degraded => {
            return Err(SandboxError::LandlockUnsupported { support })
        }
        _ => (None, Vec::new()),
    };
    // A JIT publishes code by turning written pages executable, which MDWE refuses; the
    // seccomp W^X rules still hold for that profile. Any other profile keeps MDWE.
    let mdwe = kernel.mdwe && req.profile != Profile::Wasm;
    let rlimits = policy::RLIMITS.to_vec();
    let report = IsolationReport {
        platform: "linux",
        sandboxed: true,
        protections: Vec::new(),
        kernel,
        seccomp_instructions: filter.insns.len(),
        stage2_instructions: stage2.len() / 8,
        stage2: Stage2::NotVerified,
        file_grants: grants
            .iter()
            .map(|g| FileGrant {
                path: g.path.clone(),
                execute: g.access & policy::landlock::FS_EXECUTE != 0,
            })
            .collect(),
        resource_limits: report_limits(&rlimits),
    };
    let report = resolve_protections(report, ruleset.as_ref().map(|r| r.1), mdwe);
    Ok(Plan {
        no_sandbox: false,
        ruleset: ruleset.map(|r| r.0),
        filter: Some(filter),
        mdwe,
        rlimits,
        stage2: Some(stage2),
        expect: Some(Expectations {
            seccomp_filters: inherited + 2,
        }),
        report,
        _fd3_reservation: reserve_fd3(),
    })
}

/// Read access to [`JIT_CACHE_DIR`](confine_runtime_abstract::JIT_CACHE_DIR) for a
/// [`Profile::Wasm`] guest, if the directory exists. Read only: a guest that could write
/// there could plant code for the next guest to load.
fn jit_cache_grant(guest: &std::path::Path) -> Option<landlock::Grant> {
    let dir = guest
        .parent()?
        .join(confine_runtime_abstract::JIT_CACHE_DIR)
        .canonicalize()
        .ok()?;
    let is_dir = dir.is_dir();
    is_dir.then_some(landlock::Grant {
        path: dir,
        access: policy::landlock::FS_READ_FILE,
    })
}

fn report_limits(rlimits: &[Rlimit]) -> Vec<ResourceLimit> {
    rlimits
        .iter()
        .map(|l| ResourceLimit {
            name: l.name,
            soft: l.soft,
            hard: l.hard,
        })
        .collect()
}

/// Decides each protection's status from the layers in force. `landlock` is the ABI in use.
fn resolve_protections(
    mut report: IsolationReport,
    landlock: Option<u32>,
    mdwe: bool,
) -> IsolationReport {
    use Layer::*;
    let enforced = |layers: Vec<Layer>| ProtectionStatus::Enforced { layers };
    let with = |mut layers: Vec<Layer>, extra: Layer, on: bool| {
        if on {
            layers.push(extra);
        }
        layers
    };
    let ll = |min: u32| landlock.is_some_and(|abi| abi >= min);
    let no_landlock = |what: &str| ProtectionStatus::Degraded {
        layers: Vec::new(),
        reason: format!("Landlock unavailable: {what} until a stage-2 filter is verified"),
    };

    let rows = [
        (
            Protection::FileRead,
            if ll(1) {
                enforced(vec![Landlock])
            } else {
                no_landlock("any file the uid can read can be opened read-only")
            },
        ),
        (
            Protection::FileWrite,
            enforced(with(vec![Seccomp], Landlock, ll(1))),
        ),
        (
            Protection::FileMetadata,
            ProtectionStatus::Degraded {
                layers: Vec::new(),
                reason: "stage 1 allows newfstatat (the loader's fstat), so stat() of any path \
                         works until a stage-2 filter is verified"
                    .to_owned(),
            },
        ),
        (
            Protection::Exec,
            if ll(1) {
                enforced(vec![Landlock])
            } else {
                no_landlock("execve of any program is possible")
            },
        ),
        (
            Protection::Network,
            enforced(with(vec![Seccomp], Landlock, ll(4))),
        ),
        (Protection::Processes, enforced(vec![Seccomp])),
        (
            Protection::SignalsAndPtrace,
            enforced(with(vec![Seccomp], Landlock, ll(6))),
        ),
        (
            Protection::Devices,
            enforced(with(vec![Seccomp, Session], Landlock, ll(5))),
        ),
        (
            Protection::WritableExecutableMemory,
            enforced(with(vec![Seccomp], Mdwe, mdwe)),
        ),
        (
            Protection::PrivilegeGain,
            enforced(with(vec![NoNewPrivs], Landlock, ll(1))),
        ),
        (Protection::InheritedFds, enforced(vec![FdLayout])),
        (Protection::KernelAttackSurface, enforced(vec![Seccomp])),
        (Protection::ResourceLimits, enforced(vec![Rlimit])),
    ];
    for (protection, status) in rows {
        report.set(protection, status);
    }
    report
}

#[cfg(test)]
mod tests;

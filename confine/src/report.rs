//! What a sandbox actually enforces, protection by protection.
//!
//! An [`IsolationReport`] is built by the platform layer when it prepares a guest's policy,
//! before anything runs, and says for each [`Protection`] whether it is enforced (and by
//! which [`Layer`]s), degraded (and why), or disabled (`no_sandbox`). It also records the
//! kernel facts the decision rested on. `Display` renders it as the table `confine doctor`
//! prints; `Serialize` gives the machine form.
//!
//! "Enforced" means at least one layer stops the thing outright. Layers listed beyond the
//! first are defence in depth: if Landlock is missing, a protection that seccomp alone
//! enforces stays enforced, with one layer fewer in its list. "Degraded" means no layer
//! fully stops it in this configuration; the reason says what gets through.

use serde::Serialize;
use std::fmt;

/// One thing the sandbox keeps the guest from doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Protection {
    /// Opening files other than the guest executable and the libraries it loads.
    FileRead,
    /// Writing, creating, truncating, renaming or deleting files.
    FileWrite,
    /// Learning whether paths exist and their metadata (`stat`).
    FileMetadata,
    /// Executing any program other than the guest itself.
    Exec,
    /// Opening network connections or sockets of any kind.
    Network,
    /// Creating processes or namespaces (threads of the guest are allowed).
    Processes,
    /// Signalling or tracing other processes.
    SignalsAndPtrace,
    /// Device and terminal `ioctl`s (TIOCSTI and friends).
    Devices,
    /// Memory that is writable and executable at once (the engines are interpreters).
    WritableExecutableMemory,
    /// Gaining privileges through setuid/setgid or file capabilities on exec.
    PrivilegeGain,
    /// Inheriting file descriptors other than stdio and the IPC socket.
    InheritedFds,
    /// Kernel interfaces outside the allow-list (io_uring, bpf, mount, keyrings, ...).
    KernelAttackSurface,
    /// Core dumps, file sizes, open files, locked memory.
    ResourceLimits,
}

impl Protection {
    /// Every protection, in report order.
    pub const ALL: &'static [Protection] = &[
        Protection::FileRead,
        Protection::FileWrite,
        Protection::FileMetadata,
        Protection::Exec,
        Protection::Network,
        Protection::Processes,
        Protection::SignalsAndPtrace,
        Protection::Devices,
        Protection::WritableExecutableMemory,
        Protection::PrivilegeGain,
        Protection::InheritedFds,
        Protection::KernelAttackSurface,
        Protection::ResourceLimits,
    ];

    /// A short name for tables.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Protection::FileRead => "file reads",
            Protection::FileWrite => "file writes",
            Protection::FileMetadata => "file metadata",
            Protection::Exec => "program execution",
            Protection::Network => "network",
            Protection::Processes => "new processes",
            Protection::SignalsAndPtrace => "signals & ptrace",
            Protection::Devices => "devices & tty",
            Protection::WritableExecutableMemory => "W^X memory",
            Protection::PrivilegeGain => "privilege gain",
            Protection::InheritedFds => "inherited fds",
            Protection::KernelAttackSurface => "syscall surface",
            Protection::ResourceLimits => "resource limits",
        }
    }
}

impl fmt::Display for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// An OS mechanism that enforces part of the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Layer {
    /// The seccomp-BPF syscall allow-list.
    Seccomp,
    /// Landlock filesystem rules, network rights and IPC scopes.
    Landlock,
    /// `setrlimit` resource limits.
    Rlimit,
    /// `PR_SET_NO_NEW_PRIVS`.
    NoNewPrivs,
    /// `PR_SET_MDWE` (memory-deny-write-execute).
    Mdwe,
    /// The post-fork fd layout (0-3 only, everything else closed on exec).
    FdLayout,
    /// `setsid`: no controlling terminal.
    Session,
    /// macOS Seatbelt: the sandbox profile `sandbox-exec` applies before the guest runs.
    Seatbelt,
}

impl Layer {
    /// A short name.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Layer::Seccomp => "seccomp",
            Layer::Landlock => "landlock",
            Layer::Rlimit => "rlimit",
            Layer::NoNewPrivs => "no_new_privs",
            Layer::Mdwe => "mdwe",
            Layer::FdLayout => "fd layout",
            Layer::Session => "setsid",
            Layer::Seatbelt => "seatbelt",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// How well one protection holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProtectionStatus {
    /// Enforced by these layers (strongest first; never empty).
    Enforced {
        /// The layers.
        layers: Vec<Layer>,
    },
    /// Partly enforced or not at all in this configuration.
    Degraded {
        /// Layers that still help, possibly none.
        layers: Vec<Layer>,
        /// What gets through and why.
        reason: String,
    },
    /// The caller turned the sandbox off (`no_sandbox`).
    Disabled,
}

impl ProtectionStatus {
    /// Whether the protection is fully enforced.
    #[must_use]
    pub fn is_enforced(&self) -> bool {
        matches!(self, ProtectionStatus::Enforced { .. })
    }
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProtectionReport {
    /// The protection.
    pub protection: Protection,
    /// Its status.
    #[serde(flatten)]
    pub status: ProtectionStatus,
}

/// Whether the running kernel offers Landlock, as probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LandlockSupport {
    /// Available; `used_abi` is the ABI the policy asks for (the kernel's, capped at the
    /// newest ABI confine was tested with).
    Available {
        /// The kernel's ABI.
        abi: u32,
        /// The ABI the policy uses.
        used_abi: u32,
    },
    /// The kernel was built without Landlock (`ENOSYS`).
    NotBuilt,
    /// Built in but not enabled at boot (`EOPNOTSUPP`: not in `lsm=`).
    DisabledAtBoot,
    /// The probe failed otherwise, typically an outer seccomp profile (older container
    /// runtimes) returning `EPERM`.
    Blocked {
        /// The errno of the probe.
        errno: i32,
    },
    /// Not probed (not Linux).
    NotProbed,
}

impl fmt::Display for LandlockSupport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LandlockSupport::Available { abi, used_abi } if abi == used_abi => {
                write!(f, "ABI {abi}")
            }
            LandlockSupport::Available { abi, used_abi } => {
                write!(f, "ABI {abi} (policy uses {used_abi})")
            }
            LandlockSupport::NotBuilt => f.write_str("not built into this kernel"),
            LandlockSupport::DisabledAtBoot => f.write_str("disabled at boot (not in lsm=)"),
            LandlockSupport::Blocked { errno } => write!(
                f,
                "blocked ({}; an outer seccomp profile?)",
                std::io::Error::from_raw_os_error(*errno)
            ),
            LandlockSupport::NotProbed => f.write_str("not probed"),
        }
    }
}

/// Facts about the host the policy was built on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KernelFacts {
    /// `uname -r`.
    pub release: String,
    /// Landlock availability.
    pub landlock: LandlockSupport,
    /// Whether seccomp filters (with `KILL_PROCESS`) are available.
    pub seccomp: bool,
    /// Whether `PR_SET_MDWE` is available (Linux >= 6.3).
    pub mdwe: bool,
}

impl fmt::Display for KernelFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  kernel           {}",
            if self.release.is_empty() {
                "unknown"
            } else {
                &self.release
            }
        )?;
        writeln!(
            f,
            "  seccomp filters  {}",
            if self.seccomp {
                "available (required: the syscall allow-list, stages 1 and 2)"
            } else {
                "NOT AVAILABLE (required; no guest can be sandboxed)"
            }
        )?;
        writeln!(
            f,
            "  Landlock         {}",
            match self.landlock {
                LandlockSupport::Available { .. } => format!(
                    "{} (file, exec, TCP and signal rules; a guest runs degraded without it)",
                    self.landlock
                ),
                _ => format!(
                    "{} (without it only --allow-degraded starts a guest)",
                    self.landlock
                ),
            }
        )?;
        writeln!(
            f,
            "  MDWE             {}",
            if self.mdwe {
                "available (no memory turns executable after being writable)"
            } else {
                "not available (Linux < 6.3; seccomp still refuses writable+executable memory)"
            }
        )
    }
}

/// Whether this process can create user namespaces (an optional layer confine does not use
/// yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum UserNamespaces {
    /// A user namespace can be created and grants capabilities inside (a mount namespace
    /// could be made in it).
    Available,
    /// One can be created but grants nothing (Ubuntu's AppArmor restriction and similar).
    Restricted {
        /// What the probe saw.
        reason: String,
    },
    /// They cannot be created at all (sysctl, container seccomp profile, ...).
    Disabled {
        /// What the probe saw.
        reason: String,
    },
    /// The probe did not run.
    NotProbed {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for UserNamespaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserNamespaces::Available => f.write_str("available"),
            UserNamespaces::Restricted { reason } => write!(f, "restricted: {reason}"),
            UserNamespaces::Disabled { reason } => write!(f, "unavailable: {reason}"),
            UserNamespaces::NotProbed { reason } => write!(f, "not probed: {reason}"),
        }
    }
}

/// The unified (v2) cgroup hierarchy, an optional layer for memory and process-count caps
/// that confine does not use yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CgroupV2 {
    /// Mounted at `/sys/fs/cgroup`.
    Mounted {
        /// Controllers the root offers (`memory`, `pids`, ...).
        controllers: Vec<String>,
        /// This process's cgroup.
        cgroup: String,
        /// Whether this process may create cgroups under its own (a delegated subtree).
        writable: bool,
    },
    /// Not mounted (cgroup v1 only, or no cgroup filesystem).
    NotMounted,
}

impl fmt::Display for CgroupV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CgroupV2::Mounted {
                controllers,
                cgroup,
                writable,
            } => write!(
                f,
                "mounted (controllers: {}); this process's cgroup {cgroup} is {}",
                if controllers.is_empty() {
                    "none".to_owned()
                } else {
                    controllers.join(" ")
                },
                if *writable {
                    "writable (delegated)"
                } else {
                    "not writable (not delegated)"
                }
            ),
            CgroupV2::NotMounted => f.write_str("not mounted"),
        }
    }
}

/// What this host offers a sandbox: what `confine doctor` prints first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HostReport {
    /// `linux`, `macos`, ...
    pub platform: &'static str,
    /// Kernel release, seccomp, Landlock, MDWE: the layers confine uses.
    pub kernel: KernelFacts,
    /// User namespaces (optional; not used yet).
    pub user_namespaces: UserNamespaces,
    /// cgroup v2 (optional; not used yet).
    pub cgroup_v2: CgroupV2,
}

impl HostReport {
    /// Probes this host. Cheap except for the user-namespace probe, which forks a short-lived
    /// child (a millisecond or so).
    #[must_use]
    pub fn probe() -> Self {
        HostReport {
            platform: std::env::consts::OS,
            kernel: crate::platform::kernel_facts(),
            user_namespaces: crate::platform::user_namespaces(),
            cgroup_v2: crate::platform::cgroup_v2(),
        }
    }

    /// Whether the layers a full sandbox needs (seccomp and Landlock) are there. A started
    /// guest is the real test (the host verifies it from outside); see
    /// [`IsolationReport::fully_enforced`].
    #[must_use]
    pub fn full_sandbox_possible(&self) -> bool {
        self.kernel.seccomp && matches!(self.kernel.landlock, LandlockSupport::Available { .. })
    }
}

impl fmt::Display for HostReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "host ({})", self.platform)?;
        write!(f, "{}", self.kernel)?;
        writeln!(
            f,
            "  user namespaces  {} (optional; not used by confine yet)",
            self.user_namespaces
        )?;
        writeln!(
            f,
            "  cgroup v2        {} (optional; not used by confine yet)",
            self.cgroup_v2
        )
    }
}

/// The report [`crate::Sandbox::start`] would begin from for `options`, without starting a
/// guest: the runtime's executable is resolved and the platform policy prepared (kernel
/// probes, ELF and library scan, Landlock ruleset, both seccomp programs). Stage 2 shows as
/// not verified, since only a running guest can be checked; a started sandbox's
/// [`crate::Sandbox::isolation`] says whether it was.
///
/// # Errors
/// [`crate::Error::RuntimeNotFound`], or [`crate::Error::Sandbox`] when the policy cannot be
/// prepared (for example Landlock missing without `allow_degraded`).
pub fn preview(options: &crate::SandboxOptions) -> crate::Result<IsolationReport> {
    let command = options.registry.resolve(&options.runtime)?;
    let plan = crate::platform::prepare(&crate::platform::PolicyRequest {
        guest: &command.program,
        no_sandbox: options.no_sandbox,
        allow_degraded: options.allow_degraded,
        profile: command.profile,
    })?;
    Ok(plan.report())
}

/// A file the guest may open, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FileGrant {
    /// Canonical path.
    pub path: std::path::PathBuf,
    /// Whether it may also be executed (the guest and its ELF interpreter).
    pub execute: bool,
}

/// A resource limit the guest runs under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ResourceLimit {
    /// `core`, `fsize`, `nofile`, ...
    pub name: &'static str,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// Whether the guest's own second-stage filter is in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Stage2 {
    /// Only the host's stage-1 filter is known to be installed.
    NotVerified,
    /// The host verified from outside that the guest installed stage 2.
    Verified,
}

/// One of the host's checks of a started guest (see [`crate::SandboxError::VerificationFailed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VerifyCheck {
    /// `NoNewPrivs: 1` in `/proc/<pid>/status`.
    NoNewPrivs,
    /// `Seccomp: 2` (filter mode) in `/proc/<pid>/status`.
    SeccompMode,
    /// `Seccomp_filters` in `/proc/<pid>/status` counts stage 1 and stage 2; one short means
    /// the guest did not install its stage-2 filter.
    SeccompFilters,
    /// `/proc/<pid>/fd` holds exactly fds 0, 1, 2 and 3.
    OpenFds,
    /// `/proc/<pid>/environ` is empty.
    Environment,
    /// macOS: the guest runs under a Seatbelt profile (`sandbox_check`).
    Seatbelt,
}

impl fmt::Display for VerifyCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VerifyCheck::NoNewPrivs => "no_new_privs",
            VerifyCheck::SeccompMode => "seccomp mode",
            VerifyCheck::SeccompFilters => "seccomp filter count (stage 2 installed)",
            VerifyCheck::OpenFds => "open file descriptors",
            VerifyCheck::Environment => "environment",
            VerifyCheck::Seatbelt => "Seatbelt sandbox in force",
        })
    }
}

/// What a sandboxed guest is prevented from doing, and by what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct IsolationReport {
    /// `linux`, `macos`, ...
    pub platform: &'static str,
    /// `false` when the caller asked for `no_sandbox`.
    pub sandboxed: bool,
    /// One row per [`Protection`], in [`Protection::ALL`] order.
    pub protections: Vec<ProtectionReport>,
    /// What the kernel offers.
    pub kernel: KernelFacts,
    /// Instructions in the stage-1 seccomp program (0 when none is installed).
    pub seccomp_instructions: usize,
    /// Instructions in the stage-2 program the guest installs on itself (0 when none).
    pub stage2_instructions: usize,
    /// Whether stage 2 is verified.
    pub stage2: Stage2,
    /// Files the guest may open (Landlock rules); empty when Landlock is not used.
    pub file_grants: Vec<FileGrant>,
    /// Resource limits.
    pub resource_limits: Vec<ResourceLimit>,
}

impl IsolationReport {
    /// True when the sandbox is on and every protection is enforced.
    #[must_use]
    pub fn fully_enforced(&self) -> bool {
        self.sandboxed && self.protections.iter().all(|p| p.status.is_enforced())
    }

    /// The status of one protection.
    #[must_use]
    pub fn status(&self, protection: Protection) -> Option<&ProtectionStatus> {
        self.protections
            .iter()
            .find(|p| p.protection == protection)
            .map(|p| &p.status)
    }

    /// Protections that are not enforced, with their status.
    pub fn gaps(&self) -> impl Iterator<Item = &ProtectionReport> {
        self.protections.iter().filter(|p| !p.status.is_enforced())
    }

    /// A report for `no_sandbox`: every protection disabled.
    pub(crate) fn disabled(platform: &'static str, kernel: KernelFacts) -> Self {
        IsolationReport {
            platform,
            sandboxed: false,
            protections: Protection::ALL
                .iter()
                .map(|&protection| ProtectionReport {
                    protection,
                    status: ProtectionStatus::Disabled,
                })
                .collect(),
            kernel,
            seccomp_instructions: 0,
            stage2_instructions: 0,
            stage2: Stage2::NotVerified,
            file_grants: Vec::new(),
            resource_limits: Vec::new(),
        }
    }

    /// Sets one protection's status.
    pub(crate) fn set(&mut self, protection: Protection, status: ProtectionStatus) {
        match self
            .protections
            .iter_mut()
            .find(|p| p.protection == protection)
        {
            Some(row) => row.status = status,
            None => self
                .protections
                .push(ProtectionReport { protection, status }),
        }
    }

    /// Records that the host verified the guest's stage-2 filter (`Seccomp_filters` = 2 in
    /// `/proc/<pid>/status`), which removes path-taking syscalls and `execve`: file reads,
    /// metadata and exec become enforced by seccomp even where Landlock is missing.
    pub(crate) fn with_stage2_verified(mut self) -> Self {
        // Without seccomp (macOS) there is no stage 2: the host's check there confirms the
        // sandbox the report already describes and upgrades nothing.
        if !self.sandboxed || !self.kernel.seccomp {
            return self;
        }
        self.stage2 = Stage2::Verified;
        for row in &mut self.protections {
            if !matches!(
                row.protection,
                Protection::FileRead | Protection::FileMetadata | Protection::Exec
            ) {
                continue;
            }
            row.status = match std::mem::replace(&mut row.status, ProtectionStatus::Disabled) {
                ProtectionStatus::Enforced { mut layers }
                | ProtectionStatus::Degraded { mut layers, .. } => {
                    if !layers.contains(&Layer::Seccomp) {
                        layers.insert(0, Layer::Seccomp);
                    }
                    ProtectionStatus::Enforced { layers }
                }
                ProtectionStatus::Disabled => ProtectionStatus::Disabled,
            };
        }
        self
    }
}

fn join_layers(layers: &[Layer]) -> String {
    if layers.is_empty() {
        return "-".to_owned();
    }
    layers
        .iter()
        .map(|l| l.label())
        .collect::<Vec<_>>()
        .join(" + ")
}

impl fmt::Display for IsolationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gaps = self.gaps().count();
        if !self.sandboxed {
            writeln!(
                f,
                "confine isolation ({}): SANDBOX DISABLED (no_sandbox): the guest runs with the host's rights",
                self.platform
            )?;
        } else if gaps == 0 {
            writeln!(f, "confine isolation ({}): fully enforced", self.platform)?;
        } else {
            writeln!(
                f,
                "confine isolation ({}): {gaps} protection{} degraded",
                self.platform,
                if gaps == 1 { "" } else { "s" }
            )?;
        }
        let k = &self.kernel;
        writeln!(
            f,
            "  kernel {} | seccomp: {} | landlock: {} | mdwe: {}",
            if k.release.is_empty() {
                "?"
            } else {
                &k.release
            },
            if k.seccomp { "yes" } else { "NO" },
            k.landlock,
            if k.mdwe { "yes" } else { "no" },
        )?;
        // A platform without seccomp (macOS) has no programs to count.
        if self.sandboxed && (self.seccomp_instructions > 0 || self.stage2_instructions > 0) {
            writeln!(
                f,
                "  seccomp stage 1: {} BPF instructions (host) | stage 2: {} (guest), {}",
                self.seccomp_instructions,
                self.stage2_instructions,
                match self.stage2 {
                    Stage2::NotVerified => "not verified yet",
                    Stage2::Verified => "verified by the host",
                }
            )?;
        }
        writeln!(
            f,
            "  {:<20} {:<9} enforced by / what gets through",
            "protection", "status"
        )?;
        for row in &self.protections {
            match &row.status {
                ProtectionStatus::Enforced { layers } => writeln!(
                    f,
                    "  {:<20} {:<9} {}",
                    row.protection.label(),
                    "enforced",
                    join_layers(layers)
                )?,
                ProtectionStatus::Degraded { layers, reason } => writeln!(
                    f,
                    "  {:<20} {:<9} {} ({reason})",
                    row.protection.label(),
                    "DEGRADED",
                    join_layers(layers)
                )?,
                ProtectionStatus::Disabled => {
                    writeln!(f, "  {:<20} {:<9} -", row.protection.label(), "disabled")?
                }
            }
        }
        if !self.file_grants.is_empty() {
            writeln!(f, "  files the guest may open:")?;
            for g in &self.file_grants {
                writeln!(
                    f,
                    "    {} ({})",
                    g.path.display(),
                    if g.execute { "read, execute" } else { "read" }
                )?;
            }
        }
        if !self.resource_limits.is_empty() {
            let limits: Vec<String> = self
                .resource_limits
                .iter()
                .map(|l| {
                    if l.soft == l.hard {
                        format!("{} {}", l.name, l.soft)
                    } else {
                        format!("{} {}/{}", l.name, l.soft, l.hard)
                    }
                })
                .collect();
            writeln!(f, "  limits: {}", limits.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> KernelFacts {
        KernelFacts {
            release: "6.18.0".into(),
            landlock: LandlockSupport::Available {
                abi: 7,
                used_abi: 7,
            },
            seccomp: true,
            mdwe: true,
        }
    }

    #[test]
    fn disabled_is_never_fully_enforced() {
        let r = IsolationReport::disabled("linux", facts());
        assert!(!r.fully_enforced());
        assert_eq!(r.protections.len(), Protection::ALL.len());
        assert!(r.to_string().contains("SANDBOX DISABLED"));
        assert_eq!(r.clone().with_stage2_verified(), r);
    }

    #[test]
    fn stage2_upgrades_file_rows() {
        let mut r = IsolationReport::disabled("linux", facts());
        r.sandboxed = true;
        for &p in Protection::ALL {
            r.set(
                p,
                ProtectionStatus::Enforced {
                    layers: vec![Layer::Seccomp],
                },
            );
        }
        r.set(
            Protection::FileMetadata,
            ProtectionStatus::Degraded {
                layers: vec![],
                reason: "stage 1 allows newfstatat".into(),
            },
        );
        assert!(!r.fully_enforced());
        let text = r.to_string();
        assert!(text.contains("DEGRADED"), "{text}");
        assert!(text.contains("newfstatat"), "{text}");
        let r = r.with_stage2_verified();
        assert!(r.fully_enforced(), "{r}");
        let json = serde_json::to_string(&r).expect("serialize");
        assert!(
            json.contains("\"protection\":\"file_metadata\",\"status\":\"enforced\""),
            "{json}"
        );
    }
}

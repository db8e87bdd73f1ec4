//! The macOS sandbox: a Seatbelt profile applied by `/usr/bin/sandbox-exec`, plus the same
//! post-fork steps as Linux where macOS has them.
//!
//! # The model
//!
//! The launcher does not exec the guest directly. It execs `/usr/bin/sandbox-exec -p PROFILE
//! -- GUEST ARGS...` by absolute path; `sandbox-exec` applies the profile to itself
//! (`sandbox_init`) and then `execve`s the guest, which inherits the sandbox for good. Before
//! that exec, in the forked child, [`Plan::apply_in_child`] starts a new session, puts the IPC
//! socket on fd 3, marks every other fd close-on-exec and sets rlimits (no core dumps, no
//! file writes, few fds, no locked memory): the Linux steps that exist on macOS.
//!
//! The profile ([`profile`], pure text, unit-tested on every platform) is `(deny default)`
//! plus: exec of the guest only; read and code-mapping of the guest and of what dyld needs
//! (`/usr/lib`, the shared-cache locations); the root directory node; the metadata of the
//! directories above those paths; a short sysctl allow-list; signals and process information
//! for the guest itself. No network, no file writes, no `fork`, no Mach service lookups, no
//! IPC, no I/O Kit. Paths are canonicalised on the host (`/tmp` is `/private/tmp` to the
//! kernel, and literal rules compare the kernel's path) and written as escaped string
//! literals; a path that cannot be written faithfully (control characters, not UTF-8) is
//! refused, never approximated.
//!
//! # Limits (what the report calls degraded)
//!
//! * **No syscall filter.** The profile checks operations (files, network, processes, IPC,
//!   sysctl, ...), not system calls: every BSD syscall and Mach trap stays reachable, so the
//!   kernel attack surface is the whole kernel, where Linux has seccomp. Seatbelt has
//!   `syscall-unix`/`syscall-mach` rules since macOS 10.15 (Chromium uses them behind a
//!   flag), but an allow-list that still lets dyld, libSystem and the engines run can only
//!   be derived and tested on a Mac; this profile does not use them yet.
//! * **No W^X enforcement.** Nothing like Linux's MDWE: a guest may map memory writable and
//!   then executable (Apple's code-signing checks apply only to hardened-runtime binaries).
//! * **No stage 2.** Seatbelt is applied once, before the guest runs, and the guest does not
//!   tighten it later. The host's check from outside after `Ready` (`verify.rs`) asks the
//!   kernel only whether the guest is sandboxed at all (`sandbox_check`), not which profile.
//! * **No parent-death signal.** A guest outlives a host killed with SIGKILL until it reads
//!   EOF on fd 3 (the serve loop then exits); a live host kills its guests itself.
//! * **Native guests only.** The profile grants what dyld needs for a guest built for the
//!   Mac's own architecture; an x86_64 guest under Rosetta would also need the translation
//!   cache (`/private/var/db/oah`) and is not supported.
//! * **Deprecated mechanism.** `sandbox-exec` and `sandbox_init` are deprecated without a
//!   replacement for command-line processes; they still work on current releases (macOS 26).
//!   If `/usr/bin/sandbox-exec` is missing, [`prepare`] fails instead of running the guest
//!   unsandboxed.
//!
//! Because of the first two, the macOS sandbox is degraded: [`prepare`] fails unless
//! the caller allowed degraded mode, like a Linux kernel without Landlock.
//!
//! # Untested here
//!
//! Only the profile text and the report are tested in this repository's CI (Linux); the
//! launch path is type-checked for `aarch64-apple-darwin` (`cargo xtask test`). Whether dyld
//! on a given macOS release needs a path the profile does not grant can only be seen on a Mac:
//! the guest then dies before `Ready` (usually SIGABRT from dyld), which the host reports as
//! an exit before the handshake. `log show --predicate 'sender == "Sandbox"'` names the
//! denied operation.

#[cfg_attr(
    not(target_os = "macos"),
    allow(dead_code, reason = "used by the macOS plan; tested everywhere")
)]
pub(crate) mod profile;

#[cfg(target_os = "macos")]
mod plan;
#[cfg(target_os = "macos")]
mod verify;
#[cfg(target_os = "macos")]
pub(crate) use plan::{kernel_facts, prepare, Plan};
#[cfg(target_os = "macos")]
pub(crate) use verify::verify_guest;

use crate::report::{
    FileGrant, IsolationReport, KernelFacts, Layer, Protection, ProtectionStatus, ResourceLimit,
    Stage2,
};

/// What [`crate::SandboxError::PlatformDegraded`] says is missing on macOS.
#[cfg_attr(
    not(target_os = "macos"),
    allow(dead_code, reason = "used by the macOS plan; tested everywhere")
)]
pub(crate) const MISSING: &str = "a system-call filter (the profile has no seccomp \
                                  equivalent) and W^X memory enforcement (no MDWE equivalent)";

/// The isolation report for a sandboxed macOS guest: which protections Seatbelt, the rlimits
/// and the post-fork steps enforce, and which have no macOS mechanism.
#[cfg_attr(
    not(target_os = "macos"),
    allow(dead_code, reason = "used by the macOS plan; tested everywhere")
)]
pub(crate) fn isolation_report(
    kernel: KernelFacts,
    file_grants: Vec<FileGrant>,
    resource_limits: Vec<ResourceLimit>,
) -> IsolationReport {
    use Layer::{FdLayout, Rlimit, Seatbelt, Session};
    let enforced = |layers: Vec<Layer>| ProtectionStatus::Enforced { layers };
    let mut report = IsolationReport {
        platform: "macos",
        sandboxed: true,
        protections: Vec::new(),
        kernel,
        seccomp_instructions: 0,
        stage2_instructions: 0,
        stage2: Stage2::NotVerified,
        file_grants,
        resource_limits,
    };
    let rows = [
        // Only the guest, dyld's trees and "/" itself are readable.
        (Protection::FileRead, enforced(vec![Seatbelt])),
        // No file-write* rule at all; fsize 0 as a second line.
        (Protection::FileWrite, enforced(vec![Seatbelt, Rlimit])),
        // Metadata of other paths is denied; the granted paths' ancestors show their stat.
        (Protection::FileMetadata, enforced(vec![Seatbelt])),
        // process-exec of the guest's own path only.
        (Protection::Exec, enforced(vec![Seatbelt])),
        // No network* rule: sockets can be made but not bound, connected or sent from.
        (Protection::Network, enforced(vec![Seatbelt])),
        // process-fork is denied (fork, vfork, posix_spawn).
        (Protection::Processes, enforced(vec![Seatbelt])),
        // signal and process-info only for (target self); task ports are never granted.
        (Protection::SignalsAndPtrace, enforced(vec![Seatbelt])),
        // No file-ioctl rule, no I/O Kit, and no controlling terminal.
        (Protection::Devices, enforced(vec![Seatbelt, Session])),
        (
            Protection::WritableExecutableMemory,
            ProtectionStatus::Degraded {
                layers: Vec::new(),
                reason: "macOS has no MDWE equivalent: memory can be made writable, then \
                         executable"
                    .to_owned(),
            },
        ),
        // No other program can be executed, so no setuid program either.
        (Protection::PrivilegeGain, enforced(vec![Seatbelt])),
        (Protection::InheritedFds, enforced(vec![FdLayout])),
        (
            Protection::KernelAttackSurface,
            ProtectionStatus::Degraded {
                layers: vec![Seatbelt],
                reason: "no seccomp equivalent in the profile: every BSD syscall and Mach trap \
                         stays reachable; Seatbelt checks only the operations it names"
                    .to_owned(),
            },
        ),
        (Protection::ResourceLimits, enforced(vec![Rlimit])),
    ];
    for (protection, status) in rows {
        report.set(protection, status);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::LandlockSupport;

    fn report() -> IsolationReport {
        isolation_report(
            KernelFacts {
                release: "25.0.0".into(),
                landlock: LandlockSupport::NotProbed,
                seccomp: false,
                mdwe: false,
            },
            profile::generate(std::path::Path::new("/opt/confine/confine-guest-quickjs"))
                .expect("profile")
                .grants,
            vec![ResourceLimit {
                name: "core",
                soft: 0,
                hard: 0,
            }],
        )
    }

    #[test]
    fn every_protection_has_a_row_and_exactly_two_are_degraded() {
        let r = report();
        assert!(r.sandboxed);
        assert_eq!(r.platform, "macos");
        let order: Vec<Protection> = r.protections.iter().map(|p| p.protection).collect();
        assert_eq!(order, Protection::ALL);
        let gaps: Vec<Protection> = r.gaps().map(|g| g.protection).collect();
        assert_eq!(
            gaps,
            [
                Protection::WritableExecutableMemory,
                Protection::KernelAttackSurface
            ]
        );
        assert!(!r.fully_enforced());
        // No stage 2 without seccomp: the host's check after Ready upgrades nothing.
        assert_eq!(r.clone().with_stage2_verified(), r);
        for p in [
            Protection::FileRead,
            Protection::FileWrite,
            Protection::FileMetadata,
            Protection::Exec,
            Protection::Network,
            Protection::Processes,
            Protection::SignalsAndPtrace,
        ] {
            match r.status(p) {
                Some(ProtectionStatus::Enforced { layers }) => {
                    assert_eq!(layers[0], Layer::Seatbelt, "{p}")
                }
                other => panic!("{p}: {other:?}"),
            }
        }
    }

    #[test]
    fn display_names_seatbelt_and_the_gaps_without_seccomp_lines() {
        let text = report().to_string();
        assert!(
            text.contains("confine isolation (macos): 2 protections degraded"),
            "{text}"
        );
        assert!(text.contains("seatbelt"), "{text}");
        assert!(text.contains("no seccomp equivalent"), "{text}");
        assert!(text.contains("no MDWE equivalent"), "{text}");
        assert!(!text.contains("BPF instructions"), "{text}");
        assert!(
            text.contains("/opt/confine/confine-guest-quickjs (read, execute)"),
            "{text}"
        );
        assert!(text.contains("/usr/lib (read)"), "{text}");
        let json = serde_json::to_string(&report()).expect("serialize");
        assert!(
            json.contains(r#"{"protection":"network","status":"enforced","layers":["seatbelt"]}"#),
            "{json}"
        );
    }
}

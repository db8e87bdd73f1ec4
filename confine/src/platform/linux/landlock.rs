//! Landlock through raw syscalls: probe the ABI, build a ruleset fd in the parent.
//!
//! Only `landlock_restrict_self(fd, 0)` runs in the child ([`super::child`]); the ruleset is
//! created once per [`super::Plan`] and its fd reused for every spawn (the kernel allows any
//! number of `restrict_self` calls on one ruleset). We call the syscalls directly rather
//! than through the `landlock` crate so the child path is a single allocation-free syscall
//! and the handled rights are exactly [`policy::landlock`]'s table for the chosen ABI.

use std::{
    ffi::CString,
    io,
    os::{
        fd::{FromRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::{Path, PathBuf},
};

use super::policy::landlock as rights;
use crate::{platform::SandboxError, report::LandlockSupport};

const CREATE_RULESET_VERSION: libc::c_uint = 1 << 0;
const RULE_PATH_BENEATH: libc::c_int = 1;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// Asks the kernel which Landlock ABI it has.
pub(crate) fn probe() -> LandlockSupport {
    // SAFETY: with a NULL attribute, size 0 and the VERSION flag the call only returns the ABI.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    if abi >= 1 {
        let abi = u32::try_from(abi).unwrap_or(u32::MAX);
        return LandlockSupport::Available {
            abi,
            used_abi: abi.min(rights::TESTED_ABI),
        };
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::ENOSYS) => LandlockSupport::NotBuilt,
        Some(libc::EOPNOTSUPP) => LandlockSupport::DisabledAtBoot,
        errno => LandlockSupport::Blocked {
            errno: errno.unwrap_or(0),
        },
    }
}

/// One file the guest may use, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    /// Canonical path.
    pub path: PathBuf,
    /// Landlock `LANDLOCK_ACCESS_FS_*` bits.
    pub access: u64,
}

/// Creates a ruleset for `abi` that handles every right the ABI knows, grants `grants` and
/// nothing else, and scopes signals and abstract unix sockets (ABI >= 6).
///
/// # Errors
/// [`SandboxError::LandlockRuleset`] if the kernel refuses the ruleset,
/// [`SandboxError::LandlockRule`] naming the path whose rule failed.
pub(crate) fn build_ruleset(abi: u32, grants: &[Grant]) -> Result<OwnedFd, SandboxError> {
    let handled_fs = rights::handled_fs(abi);
    let attr = RulesetAttr {
        handled_access_fs: handled_fs,
        handled_access_net: rights::handled_net(abi),
        scoped: rights::scoped(abi),
    };
    // Older kernels read only the fields they know; the rest must be zero, and is.
    // SAFETY: attr is a valid ruleset attribute of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        )
    };
    if fd < 0 {
        return Err(SandboxError::LandlockRuleset {
            source: io::Error::last_os_error(),
        });
    }
    let fd = i32::try_from(fd).map_err(|_| SandboxError::LandlockRuleset {
        source: io::Error::from_raw_os_error(libc::EBADF),
    })?;
    // SAFETY: the kernel returned a new fd (O_CLOEXEC) that nobody else owns.
    let ruleset = unsafe { OwnedFd::from_raw_fd(fd) };

    for grant in grants {
        let rule_err = |source| SandboxError::LandlockRule {
            path: grant.path.clone(),
            source,
        };
        let c_path = CString::new(grant.path.as_os_str().as_bytes())
            .map_err(|_| rule_err(io::Error::from_raw_os_error(libc::EINVAL)))?;
        // SAFETY: c_path is NUL-terminated; O_PATH opens without reading.
        let raw = unsafe { libc::open(c_path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if raw < 0 {
            return Err(rule_err(io::Error::last_os_error()));
        }
        // SAFETY: open returned a new fd we own.
        let parent = unsafe { OwnedFd::from_raw_fd(raw) };
        let rule = PathBeneathAttr {
            // A rule on a file may only carry file rights, and only handled ones.
            allowed_access: grant.access & rights::FILE_RIGHTS & handled_fs,
            parent_fd: std::os::fd::AsRawFd::as_raw_fd(&parent),
        };
        // SAFETY: both fds are open; rule is a valid path-beneath attribute.
        let r = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                std::os::fd::AsRawFd::as_raw_fd(&ruleset),
                RULE_PATH_BENEATH,
                &rule as *const PathBeneathAttr,
                0u32,
            )
        };
        if r != 0 {
            return Err(rule_err(io::Error::last_os_error()));
        }
    }
    Ok(ruleset)
}

/// Grants for a guest: EXECUTE|READ_FILE on the executable and its interpreter, READ_FILE on
/// each library. `guest` must be canonical.
pub(crate) fn grants_for(guest: &Path, load: &super::elf::LoadSet) -> Vec<Grant> {
    let mut out = vec![Grant {
        path: guest.to_owned(),
        access: rights::GRANT_EXEC,
    }];
    if let Some(interp) = &load.interpreter {
        out.push(Grant {
            path: interp.clone(),
            access: rights::GRANT_EXEC,
        });
    }
    out.extend(load.libraries.iter().map(|l| Grant {
        path: l.clone(),
        access: rights::GRANT_LIBRARY,
    }));
    out
}

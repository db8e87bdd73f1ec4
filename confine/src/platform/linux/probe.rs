//! Probes of optional kernel features that confine does not use yet but reports (`confine
//! doctor`): user namespaces and cgroup v2. Neither is ever required (recipe §4.6: user
//! namespaces are switched off or restricted on many distributions and inside containers).

use std::{ffi::CString, fs, io, os::unix::ffi::OsStrExt, path::Path};

use crate::report::{CgroupV2, UserNamespaces};

/// Where the unified (v2) cgroup hierarchy is mounted on every systemd distribution.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Whether this process may create user namespaces, tried in a throwaway child: first
/// `unshare(CLONE_NEWUSER)`, then, inside it, `unshare(CLONE_NEWNS)`, which needs the
/// capabilities a new user namespace normally grants. Ubuntu's
/// `apparmor_restrict_unprivileged_userns` lets the first succeed and fails the second.
pub(crate) fn user_namespaces() -> UserNamespaces {
    if fs::read_to_string("/proc/sys/user/max_user_namespaces").is_ok_and(|v| v.trim() == "0") {
        return UserNamespaces::Disabled {
            reason: "user.max_user_namespaces is 0".to_owned(),
        };
    }
    match try_in_child() {
        Ok(None) => UserNamespaces::Available,
        Ok(Some((1, errno))) => UserNamespaces::Disabled {
            reason: format!(
                "unshare(CLONE_NEWUSER) failed: {}",
                io::Error::from_raw_os_error(errno)
            ),
        },
        Ok(Some((_, errno))) => UserNamespaces::Restricted {
            reason: format!(
                "a user namespace can be created but grants no capabilities (mount namespace: \
                 {}); an LSM policy such as AppArmor's apparmor_restrict_unprivileged_userns",
                io::Error::from_raw_os_error(errno)
            ),
        },
        Err(e) => UserNamespaces::NotProbed {
            reason: format!("the probe could not run: {e}"),
        },
    }
}

/// Forks a child that tries the two `unshare`s. `Ok(None)` if both worked, else the step
/// (1 or 2) and errno that failed.
fn try_in_child() -> io::Result<Option<(u32, i32)>> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 into our array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (read_end, write_end) = (fds[0], fds[1]);
    // SAFETY: the child makes raw syscalls only (unshare, write, _exit) and allocates
    // nothing, so forking from a multi-threaded host is sound.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let report = |step: u32| {
            // SAFETY: reads this thread's errno, writes 8 bytes from the stack, exits.
            unsafe {
                let errno = *libc::__errno_location();
                let mut msg = [0u8; 8];
                msg[..4].copy_from_slice(&step.to_le_bytes());
                msg[4..].copy_from_slice(&errno.to_le_bytes());
                libc::write(write_end, msg.as_ptr().cast(), msg.len());
                libc::_exit(1);
            }
        };
        // SAFETY: unshare with flag arguments, in the single-threaded child.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
            report(1);
        }
        // SAFETY: as above.
        if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
            report(2);
        }
        // SAFETY: leaving the child without running the parent's atexit handlers.
        unsafe { libc::_exit(0) };
    }
    let fork_error = (pid < 0).then(io::Error::last_os_error);
    // SAFETY: our copy of the write end; the child has its own.
    unsafe { libc::close(write_end) };
    if let Some(e) = fork_error {
        // SAFETY: our read end.
        unsafe { libc::close(read_end) };
        return Err(e);
    }
    let mut msg = [0u8; 8];
    // SAFETY: reads at most 8 bytes into our buffer; EOF (0) when the child succeeded.
    let n = unsafe { libc::read(read_end, msg.as_mut_ptr().cast(), msg.len()) };
    // SAFETY: our read end; waiting for our own child.
    unsafe {
        libc::close(read_end);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
    }
    if n == 8 {
        let step = u32::from_le_bytes([msg[0], msg[1], msg[2], msg[3]]);
        let errno = i32::from_le_bytes([msg[4], msg[5], msg[6], msg[7]]);
        Ok(Some((step, errno)))
    } else {
        Ok(None)
    }
}

/// Whether the unified cgroup hierarchy is mounted, which controllers it offers, and whether
/// this process could create a child cgroup for a guest (its own cgroup is writable: a
/// delegated subtree, as systemd gives user sessions and services with `Delegate=yes`).
pub(crate) fn cgroup_v2() -> CgroupV2 {
    let root = Path::new(CGROUP_ROOT);
    let Ok(controllers) = fs::read_to_string(root.join("cgroup.controllers")) else {
        return CgroupV2::NotMounted;
    };
    let own = fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        })
        .unwrap_or_else(|| "/".to_owned());
    let dir = root.join(own.trim_start_matches('/'));
    CgroupV2::Mounted {
        controllers: controllers.split_whitespace().map(str::to_owned).collect(),
        writable: writable(&dir),
        cgroup: own,
    }
}

fn writable(dir: &Path) -> bool {
    let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access with a NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_give_an_answer() {
        // The answers depend on the machine; the probes must not fail or hang.
        let userns = user_namespaces();
        assert!(!userns.to_string().is_empty());
        let cg = cgroup_v2();
        assert!(!cg.to_string().is_empty());
    }
}

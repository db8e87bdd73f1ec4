//! Host-side verification: after `Ready` and before any source is sent, the host checks from
//! outside (`/proc/<pid>`) that the guest is really locked down, rather than trusting the
//! guest's word (recipe §6.6).
//!
//! | check | file | want |
//! |---|---|---|
//! | no privilege gain | `status`: `NoNewPrivs` | `1` |
//! | seccomp filter mode | `status`: `Seccomp` | `2` |
//! | stage 1 + stage 2 | `status`: `Seccomp_filters` | the host's own count + 2 |
//! | nothing inherited | `fd/` | exactly 0, 1, 2, 3 |
//! | no environment | `environ` | empty |
//!
//! Every file is read through one handle on `/proc/<pid>`, opened first: a handle pins that
//! process, so if the guest died and its pid were reused meanwhile, the reads fail instead of
//! describing a stranger. The caller also checks the guest has not exited after verifying.
//!
//! Reading another process's `fd/` and `environ` needs ptrace-read access: same uid and a
//! dumpable process, which a guest exec'd with `no_new_privs` from a readable binary is.

use std::{
    fs::{self, File},
    io,
    os::fd::AsRawFd,
    path::PathBuf,
};

use crate::{
    platform::{Expectations, SandboxError},
    report::VerifyCheck,
};

/// Why a guest was not accepted.
#[derive(Debug)]
pub(crate) enum Rejection {
    /// The guest is already dead (a zombie, or gone): report how it ended instead.
    Exited,
    /// It is alive but not locked down as required, or its state could not be read.
    Failed(SandboxError),
}

impl From<SandboxError> for Rejection {
    fn from(e: SandboxError) -> Self {
        Rejection::Failed(e)
    }
}

/// The fds a guest may hold: stdin (`/dev/null`), the stdout and stderr pipes, the socket.
const GUEST_FDS: [u32; 4] = [0, 1, 2, 3];

/// Checks guest `pid` against `expect`; see the module doc.
///
/// # Errors
/// [`Rejection::Exited`] if the guest is no longer running, else the first failed check as
/// [`SandboxError::VerificationFailed`] or [`SandboxError::VerificationUnreadable`].
pub(crate) fn verify(pid: u32, expect: &Expectations) -> Result<(), Rejection> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let unreadable = |path: PathBuf| {
        move |source: io::Error| {
            if source.raw_os_error() == Some(libc::ESRCH)
                || source.kind() == io::ErrorKind::NotFound
            {
                // The process (or its task) is gone.
                Rejection::Exited
            } else {
                Rejection::Failed(SandboxError::VerificationUnreadable { path, source })
            }
        }
    };
    let dir = File::open(&proc_dir).map_err(unreadable(proc_dir.clone()))?;
    // Paths through our own fd to the directory resolve inside that process's directory,
    // whatever happens to the pid number.
    let pinned = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));

    let status =
        fs::read_to_string(pinned.join("status")).map_err(unreadable(proc_dir.join("status")))?;
    if let Some(state) = field(&status, "State") {
        // `Z (zombie)` / `X (dead)`: exited, not reaped yet.
        if state.starts_with('Z') || state.starts_with('X') {
            return Err(Rejection::Exited);
        }
    }
    expect_field(&status, "NoNewPrivs", VerifyCheck::NoNewPrivs, "1")?;
    expect_field(&status, "Seccomp", VerifyCheck::SeccompMode, "2")?;
    expect_field(
        &status,
        "Seccomp_filters",
        VerifyCheck::SeccompFilters,
        &expect.seccomp_filters.to_string(),
    )?;

    let mut fds = Vec::new();
    for entry in fs::read_dir(pinned.join("fd")).map_err(unreadable(proc_dir.join("fd")))? {
        let entry = entry.map_err(unreadable(proc_dir.join("fd")))?;
        // Entries are decimal fd numbers; anything else is a mismatch, shown as found.
        let name = entry.file_name().to_string_lossy().into_owned();
        fds.push(name.parse::<u32>().map_err(|_| {
            failed(
                VerifyCheck::OpenFds,
                &GUEST_FDS,
                format!("an entry named {name:?}"),
            )
        })?);
    }
    fds.sort_unstable();
    if fds != GUEST_FDS {
        return Err(failed(VerifyCheck::OpenFds, &GUEST_FDS, format!("{fds:?}")));
    }

    let environ = fs::read(pinned.join("environ")).map_err(unreadable(proc_dir.join("environ")))?;
    if !environ.is_empty() {
        // Names only: values might be secrets, and this message may end up in logs.
        let names: Vec<String> = environ
            .split(|&b| b == 0)
            .filter(|v| !v.is_empty())
            .map(|v| {
                let name = v.split(|&b| b == b'=').next().unwrap_or_default();
                String::from_utf8_lossy(name).into_owned()
            })
            .collect();
        return Err(Rejection::Failed(SandboxError::VerificationFailed {
            check: VerifyCheck::Environment,
            expected: "an empty environment".to_owned(),
            found: format!("variables {names:?}"),
        }));
    }
    Ok(())
}

fn failed(check: VerifyCheck, want: &[u32], found: String) -> Rejection {
    Rejection::Failed(SandboxError::VerificationFailed {
        check,
        expected: format!("{want:?}"),
        found,
    })
}

/// The value of `Name:\tvalue` in a `/proc/<pid>/status` text.
pub(crate) fn field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

fn expect_field(
    status: &str,
    name: &'static str,
    check: VerifyCheck,
    want: &str,
) -> Result<(), Rejection> {
    match field(status, name) {
        Some(v) if v == want => Ok(()),
        found => Err(Rejection::Failed(SandboxError::VerificationFailed {
            check,
            expected: format!("{name}: {want}"),
            found: match found {
                Some(v) => format!("{name}: {v}"),
                None => format!("no {name} line (Linux < 5.9 does not report it)"),
            },
        })),
    }
}

/// How many seccomp filters the calling thread has (0 without any): the guest inherits them
/// from the thread that forks it, so a host inside a container's seccomp profile expects its
/// guests to have that many plus stage 1 and stage 2.
pub(crate) fn own_filter_count() -> io::Result<u32> {
    let status = fs::read_to_string("/proc/thread-self/status")?;
    match field(&status, "Seccomp_filters") {
        Some(v) => v
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Seccomp_filters line")),
        // Linux < 5.9: no count. Mode 0 means none; otherwise the count is unknown.
        None if field(&status, "Seccomp") == Some("0") => Ok(0),
        None => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the kernel does not report Seccomp_filters",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_fields() {
        let status = "Name:\tx\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t2\n";
        assert_eq!(field(status, "Seccomp"), Some("2"));
        assert_eq!(field(status, "Seccomp_filters"), Some("2"));
        assert_eq!(field(status, "NoNewPrivs"), Some("1"));
        assert_eq!(field(status, "Missing"), None);
        assert!(expect_field(status, "Seccomp", VerifyCheck::SeccompMode, "2").is_ok());
        match expect_field(status, "Seccomp_filters", VerifyCheck::SeccompFilters, "3") {
            Err(Rejection::Failed(SandboxError::VerificationFailed {
                check,
                expected,
                found,
            })) => {
                assert_eq!(check, VerifyCheck::SeccompFilters);
                assert_eq!(expected, "Seccomp_filters: 3");
                assert_eq!(found, "Seccomp_filters: 2");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_test_process_itself_fails_verification() {
        // This process has no seccomp filter, more fds and an environment: refused at the
        // first check, naming it.
        let pid = std::process::id();
        match verify(pid, &Expectations { seccomp_filters: 2 }) {
            Err(Rejection::Failed(SandboxError::VerificationFailed { check, .. })) => {
                assert!(
                    matches!(check, VerifyCheck::NoNewPrivs | VerifyCheck::SeccompMode),
                    "{check:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        // 0 here; more inside a container's seccomp profile.
        assert!(own_filter_count().is_ok());
    }

    #[test]
    fn a_missing_process_counts_as_exited() {
        // pid_max is at most 2^22; this pid cannot exist.
        assert!(matches!(
            verify(u32::MAX - 1, &Expectations { seccomp_filters: 2 }),
            Err(Rejection::Exited)
        ));
    }
}

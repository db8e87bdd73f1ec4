//! The Seatbelt profile for one guest executable, as SBPL text.
//!
//! Pure string building: no file system access and no `cfg`, so the profile is unit-tested on
//! every platform (CI runs on Linux). The caller passes the guest's path already canonicalised
//! on the host ([`super`] does that on macOS); [`private_alias`] is applied once more here so
//! the text always names the paths the kernel compares against.
//!
//! Every rule below has a reason in [`SYSTEM_TREES`], [`SYSCTLS`] or the comments in
//! [`generate`], and the reason is written into the profile as an SBPL comment, so
//! `log_spawn` output explains itself.

use std::path::{Component, Path, PathBuf};

use crate::{platform::SandboxError, report::FileGrant};

/// The one program the launcher runs on macOS; the guest becomes its child image via `execve`.
/// Absolute, so neither `PATH` (which the launcher clears anyway) nor the current directory
/// can substitute another program.
pub(crate) const SANDBOX_EXEC: &str = "/usr/bin/sandbox-exec";

/// Directory trees dyld needs, readable and mappable as code (`file-read*`,
/// `file-map-executable`), with why. Nothing else outside the guest executable is readable.
///
/// No framework is listed: a Rust guest links `libSystem` and `libiconv` only (the `libc`
/// crate's link attributes for Apple targets), QuickJS's C code links `libSystem`, and both
/// live under `/usr/lib`. A guest linking `/System/Library/Frameworks/...` would fail to start.
pub(crate) const SYSTEM_TREES: &[(&str, &str)] = &[
    (
        "/usr/lib",
        "dyld itself (the kernel maps /usr/lib/dyld at exec), libSystem and the /usr/lib/system \
         libraries it re-exports, libiconv: everything a Rust or C guest links. Since macOS 11 \
         most of them exist only inside the shared cache, but dyld still resolves their install \
         names here",
    ),
    (
        "/System/Volumes/Preboot/Cryptexes/OS",
        "the dyld shared cache on macOS 13 and later (the OS cryptex); Apple's dyld-support.sb \
         grants the same",
    ),
    (
        "/System/Cryptexes/OS",
        "the path dyld uses for that cryptex",
    ),
    (
        "/System/Library/dyld",
        "the dyld shared cache on macOS 11 and 12",
    ),
    (
        "/private/var/db/dyld",
        "the dyld shared cache on macOS 10.15 and earlier (x86_64)",
    ),
];

/// Readable sysctls, with why. Everything else (`kern.hostname`, `kern.proc.*` with other
/// processes' arguments and environment, `kern.boottime`, ...) is denied.
pub(crate) const SYSCTLS: &[(SysctlMatch, &str)] = &[
    (
        SysctlMatch::Name("hw.ncpu"),
        "CPU count: sysconf(_SC_NPROCESSORS_CONF), std::thread::available_parallelism",
    ),
    (
        SysctlMatch::Name("hw.activecpu"),
        "online CPU count: sysconf(_SC_NPROCESSORS_ONLN)",
    ),
    (
        SysctlMatch::Name("hw.pagesize"),
        "page size, for allocators that ask instead of using the commpage",
    ),
    (
        SysctlMatch::Name("hw.cputype"),
        "CPU identification by feature probes (std_detect, Cranelift's host ISA)",
    ),
    (
        SysctlMatch::Name("hw.cpufamily"),
        "CPU identification by feature probes",
    ),
    (
        SysctlMatch::Prefix("hw.optional."),
        "CPU feature flags (hw.optional.arm.FEAT_*, hw.optional.neon, avx...): read-only \
         booleans that feature detection needs, or it assumes a baseline CPU",
    ),
    (
        SysctlMatch::Name("sysctl.proc_translated"),
        "whether this process runs under Rosetta, checked by the same probes",
    ),
    (
        SysctlMatch::Name("kern.osvariant_status"),
        "libSystem's os_variant checks (allowed by Chromium's and Codex's base profiles for \
         every process)",
    ),
];

/// How a sysctl rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SysctlMatch {
    /// `(sysctl-name "...")`: exactly this name.
    Name(&'static str),
    /// `(sysctl-name-prefix "...")`: every name under this prefix.
    Prefix(&'static str),
}

/// The generated profile and what it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Profile {
    /// The SBPL text, for `sandbox-exec -p`.
    pub text: String,
    /// The paths it lets the guest read, for the isolation report: the guest (with
    /// `execute`), the root directory node, and the [`SYSTEM_TREES`].
    pub grants: Vec<FileGrant>,
}

/// Rewrites the macOS compatibility aliases `/tmp`, `/var` and `/etc` (symlinks into
/// `/private`) to the paths the kernel reports, which are what Seatbelt compares against: a
/// rule for `/tmp/x` never matches, because the file's path is `/private/tmp/x`.
///
/// Only the first component is rewritten, and only when it is exactly one of the three
/// (`/tmpfoo` and `/private/tmp` are left alone). Real canonicalisation on the host already
/// resolves these symlinks; this keeps the profile right for a path that was not
/// canonicalised, and it is what the tests can check on a host without those symlinks.
#[must_use]
pub(crate) fn private_alias(path: &Path) -> PathBuf {
    let mut components = path.components();
    if components.next() != Some(Component::RootDir) {
        return path.to_owned();
    }
    match components.clone().next() {
        Some(Component::Normal(first)) if ["tmp", "var", "etc"].iter().any(|a| first == *a) => {
            Path::new("/private").join(components.as_path())
        }
        _ => path.to_owned(),
    }
}

/// Writes `s` as an SBPL string literal: `"` and `\` are escaped with a backslash, which is
/// all the profile reader interprets inside a string. [`checked_path`] has already refused
/// control characters, the only other bytes that could change how the literal reads.
#[must_use]
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The path as text a profile can hold, or why not: it must be absolute, normalised (no `.`,
/// `..` or trailing slash: a literal rule compares strings, so such a path would silently
/// match nothing), valid UTF-8, and free of control characters (a newline or NUL in a guest
/// path is refused outright rather than escaped).
pub(crate) fn checked_path(path: &Path) -> Result<&str, SandboxError> {
    let refuse = |problem| SandboxError::UnrepresentablePath {
        path: path.to_owned(),
        problem,
    };
    let text = path
        .to_str()
        .ok_or_else(|| refuse("it is not valid UTF-8"))?;
    if !path.is_absolute() {
        return Err(refuse("it is not absolute"));
    }
    if text.chars().any(char::is_control) {
        return Err(refuse("it contains a control character"));
    }
    if path
        .components()
        .any(|c| matches!(c, Component::CurDir | Component::ParentDir))
        || text.contains("//")
        || text.contains("/./")
        || text.ends_with("/.")
        || (text.len() > 1 && text.ends_with('/'))
    {
        return Err(refuse(
            "it is not normalised (`.`, `..`, `//` or a trailing `/`)",
        ));
    }
    Ok(text)
}

/// Every proper ancestor of `path`, root first (`/a/b/c` → `/`, `/a`, `/a/b`).
fn ancestors(path: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = path.ancestors().skip(1).map(Path::to_owned).collect();
    out.reverse();
    out
}

/// Builds the profile for `guest` (an absolute, canonical path; see [`private_alias`]).
///
/// # Errors
/// [`SandboxError::UnrepresentablePath`] when the guest path cannot be written into a
/// profile (see [`checked_path`]).
pub(crate) fn generate(guest: &Path) -> Result<Profile, SandboxError> {
    let guest = private_alias(guest);
    let guest_text = checked_path(&guest)?;
    let guest_q = quote(guest_text);
    let mut p = String::with_capacity(4096);
    let mut line = |text: &str| {
        p.push_str(text);
        p.push('\n');
    };

    line("(version 1)");
    line("; confine: Seatbelt profile for one guest process. Generated; each rule says why.");
    line("; Everything not allowed below is denied: files, network, process creation, Mach");
    line("; services, IPC, I/O Kit, sysctls, signals to other processes.");
    line("(deny default)");
    line("; Operations that (deny default) leaves open (noted by Chromium's and Firefox's");
    line("; profiles): other processes' information, NVRAM, I/O Kit properties, and mapping");
    line("; files as code. Allowed again below only where named.");
    line("(deny process-info* nvram* iokit-get-properties file-map-executable)");

    line("; The guest executable is the only program that may be executed: sandbox-exec execs");
    line("; it after applying this profile; no other exec, fork or posix_spawn is allowed.");
    line(&format!("(allow process-exec (literal {guest_q}))"));
    line("; It is readable and mappable as code, so the kernel and dyld can load it.");
    line(&format!(
        "(allow file-read* file-map-executable (literal {guest_q}))"
    ));

    line("; What dyld needs to load the guest's libraries; nothing else is readable.");
    for (tree, why) in SYSTEM_TREES {
        line(&format!("; {tree}: {why}."));
        line(&format!(
            "(allow file-read* file-map-executable (subpath {}))",
            quote(tree)
        ));
    }
    line("; The root directory node itself (literal, not its tree): dyld on macOS 26 reads it");
    line("; while resolving absolute paths and aborts every program before main without it.");
    line("(allow file-read* (literal \"/\"))");

    // Path resolution (realpath, dyld's checks of the executable's own path) may stat each
    // directory above a granted path; granting the metadata of exactly those directories, as
    // literals, shows nothing but names the guest already knows from its own path.
    let mut dirs: Vec<PathBuf> = Vec::new();
    for granted in
        std::iter::once(guest.as_path()).chain(SYSTEM_TREES.iter().map(|t| Path::new(t.0)))
    {
        for dir in ancestors(granted) {
            if dir != Path::new("/") && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    // An allow form without filters would allow the operation everywhere, so a form is only
    // written with at least one filter (here and for the sysctls, which are never empty).
    if !dirs.is_empty() {
        line("; The directories above the granted paths: their metadata only (stat during path");
        line("; resolution), not their contents.");
        line("(allow file-read-metadata");
        for dir in &dirs {
            // Ancestors of a checked path are checked paths too.
            line(&format!("  (literal {})", quote(&dir.to_string_lossy())));
        }
        line(")");
    }

    line("; Readable sysctls; all others (host name, other processes' arguments) are denied.");
    line("(allow sysctl-read");
    for (m, why) in SYSCTLS {
        match m {
            SysctlMatch::Name(n) => line(&format!("  (sysctl-name {}) ; {why}", quote(n))),
            SysctlMatch::Prefix(n) => line(&format!("  (sysctl-name-prefix {}) ; {why}", quote(n))),
        }
    }
    line(")");

    line("; Signals to itself only: abort() and raise() deliver SIGABRT to the guest itself.");
    line("(allow signal (target self))");
    line("; Its own process information only: pthread_setname_np (setcontrol) and libproc");
    line("; queries of its own pid; every other pid stays denied.");
    line("(allow process-info-pidinfo process-info-setcontrol (target self))");
    line("; No network, no file writes, no Mach service lookups, no IPC: nothing allows them.");

    let mut grants = vec![FileGrant {
        path: guest.clone(),
        execute: true,
    }];
    grants.extend(SYSTEM_TREES.iter().map(|(tree, _)| FileGrant {
        path: PathBuf::from(tree),
        execute: false,
    }));
    grants.push(FileGrant {
        path: PathBuf::from("/"),
        execute: false,
    });
    Ok(Profile { text: p, grants })
}

#[cfg(test)]
mod tests;

//! The runtime registry: which guest executable serves a runtime name.
//!
//! A runtime *is* its guest executable. For a name `N`, [`Registry::resolve`] tries, in order:
//!
//! 1. a path registered with [`Registry::register`] (third-party runtimes, or an override);
//! 2. `confine-guest-N` in the directory of the current executable, and in that directory's
//!    parent when it is called `deps` (so `cargo test` binaries find `target/debug/…`): the
//!    small dedicated guest built from the `confine-runtime-N` crate, the fastest to start;
//! 3. the current executable itself, started as `EXE --confine-guest N`, when it embeds
//!    runtime `N` (crate feature) **and** has called [`crate::guest::run_if_requested`] at
//!    the top of `main` (the `confine` CLI does). This is why `cargo run` and
//!    `cargo install` of the CLI need no extra step.
//!
//! If none applies, the error lists every place tried and how to build the guest.
//!
//! Each entry also says which sandbox [`Profile`] its guest needs: what the engine does with
//! memory decides the Linux policy's memory rules. Built-in runtimes carry theirs in
//! [`BUILTIN_PROFILES`]; a registered path takes its name's built-in profile, or the one
//! given to [`Registry::register_with_profile`]. The host never special-cases a runtime
//! name elsewhere.

use crate::error::{Error, Result};
use std::{
    collections::BTreeMap,
    ffi::OsString,
    path::{Path, PathBuf},
    sync::Arc,
};

/// The argument that starts a confine executable in guest mode.
pub(crate) const GUEST_FLAG: &str = "--confine-guest";

/// The sandbox profile a runtime's guest runs under: what its engine needs from memory.
///
/// On Linux the profile decides MDWE and the stage-2 memory rules (see `docs/SECURITY.md`);
/// everything else (files, sockets, processes, signals) is the same for every profile.
/// Other platforms ignore it for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Profile {
    /// Interpreters (QuickJS, Boa): no memory becomes executable once the engine is up.
    /// MDWE is on, and after lockdown every `PROT_EXEC` mapping and every `mprotect` is
    /// refused with `EACCES`. The default.
    #[default]
    Js,
    /// JIT engines (wasmtime): generated code is written, then made read-execute (RW→RX), so
    /// MDWE is off and `mmap`/`mprotect` stay allowed after lockdown, but never with write
    /// and execute together (`EACCES`). Signal handlers for traps work as in every profile.
    /// The guest may also read (never write) `confine-wasm-cache/` beside its executable,
    /// which the host fills first by running the executable once, unsandboxed, with
    /// `--prepare` (`AbstractRuntime::prepare_offline`; `confine_guest::serve` handles it).
    Wasm,
}

/// The profile each built-in runtime's guest needs.
pub const BUILTIN_PROFILES: &[(&str, Profile)] = &[
    ("quickjs", Profile::Js),
    ("boa", Profile::Js),
    ("wasm", Profile::Wasm),
];

/// The built-in profile for runtime `name`; [`Profile::Js`] (the strictest) for names that
/// are not built in.
pub fn builtin_profile(name: &str) -> Profile {
    BUILTIN_PROFILES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(Profile::Js, |(_, p)| *p)
}

/// How to start a runtime's guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestCommand {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// The sandbox profile it runs under.
    pub profile: Profile,
}

/// Maps runtime names to guest executables. Cheap to clone; shared by many sandboxes.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    registered: Arc<BTreeMap<String, (PathBuf, Profile)>>,
}

impl Registry {
    /// A registry with the built-in search rules only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves runtime `name` with the guest executable at `path` (looked up before any
    /// built-in rule), under the name's built-in [`Profile`] ([`Profile::Js`] for a name
    /// that is not built in). The path is checked when a sandbox starts.
    pub fn register(&mut self, name: impl Into<String>, path: impl Into<PathBuf>) -> &mut Self {
        let name = name.into();
        let profile = builtin_profile(&name);
        self.register_with_profile(name, path, profile)
    }

    /// Like [`Registry::register`], with the sandbox profile the guest needs (a third-party
    /// JIT runtime asks for [`Profile::Wasm`]).
    pub fn register_with_profile(
        &mut self,
        name: impl Into<String>,
        path: impl Into<PathBuf>,
        profile: Profile,
    ) -> &mut Self {
        Arc::make_mut(&mut self.registered).insert(name.into(), (path.into(), profile));
        self
    }

    /// The runtime names built into this build of confine (crate features).
    pub fn builtin_names() -> &'static [&'static str] {
        crate::guest::EMBEDDED
    }

    /// Finds the guest for runtime `name`.
    ///
    /// # Errors
    /// [`Error::RuntimeNotFound`], naming every place tried and how to build the guest.
    pub fn resolve(&self, name: &str) -> Result<GuestCommand> {
        let mut searched = Vec::new();
        if let Some((path, profile)) = self.registered.get(name) {
            if is_executable(path) {
                return Ok(GuestCommand {
                    program: canonical(path),
                    args: Vec::new(),
                    profile: *profile,
                });
            }
            searched.push(path.clone());
        }
        let profile = builtin_profile(name);
        let exe = std::env::current_exe().ok();
        let file = format!("confine-guest-{name}");
        if let Some(dir) = exe.as_deref().and_then(Path::parent) {
            let mut dirs = vec![dir.to_path_buf()];
            if dir.file_name().is_some_and(|n| n == "deps") {
                dirs.extend(dir.parent().map(Path::to_path_buf));
            }
            for d in dirs {
                let candidate = d.join(&file);
                if is_executable(&candidate) {
                    return Ok(GuestCommand {
                        program: canonical(&candidate),
                        args: Vec::new(),
                        profile,
                    });
                }
                searched.push(candidate);
            }
        }
        if let Some(exe) = &exe {
            if crate::guest::self_exec_ready() && crate::guest::EMBEDDED.contains(&name) {
                return Ok(GuestCommand {
                    program: canonical(exe),
                    args: vec![GUEST_FLAG.into(), name.into()],
                    profile,
                });
            }
            searched.push(PathBuf::from(format!(
                "{} {GUEST_FLAG} {name} (not embedded, or run_if_requested not called)",
                exe.display()
            )));
        }
        Err(Error::RuntimeNotFound {
            name: name.to_owned(),
            searched,
            hint: format!(
                "Build it with `cargo build -p confine-runtime-{name}` (it lands beside your \
                 executable in target/), use the `confine` CLI (which embeds the built-in \
                 runtimes), call `confine::guest::run_if_requested()` first thing in your \
                 main() with the `{name}` feature on, or register a path with \
                 `Registry::register`."
            ),
        })
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_come_from_the_entry() {
        assert_eq!(builtin_profile("quickjs"), Profile::Js);
        assert_eq!(builtin_profile("boa"), Profile::Js);
        assert_eq!(builtin_profile("wasm"), Profile::Wasm);
        assert_eq!(builtin_profile("third-party"), Profile::Js);
        let exe = std::env::current_exe().expect("current_exe");
        let mut r = Registry::new();
        r.register("mine", &exe)
            .register("wasm", &exe)
            .register_with_profile("jit", &exe, Profile::Wasm);
        assert_eq!(r.resolve("mine").expect("mine").profile, Profile::Js);
        assert_eq!(r.resolve("wasm").expect("wasm").profile, Profile::Wasm);
        assert_eq!(r.resolve("jit").expect("jit").profile, Profile::Wasm);
    }
}

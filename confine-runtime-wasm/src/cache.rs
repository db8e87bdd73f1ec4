//! The JS plugin compiled once per machine: its precompiled code is cached on disk.
//!
//! What is compiled is the plugin's snapshot (`snapshot.rs`). Taking it and compiling it
//! takes Cranelift a few seconds; loading precompiled code takes about 2 ms. The cache is the
//! directory `confine-wasm-cache` beside the guest executable (as trustworthy as the
//! executable itself; created `0700`), one file per `<snapshot format>-<wasmtime
//! version>-<engine configuration hash>-<plugin hash>`. The file is read in
//! [`crate::Wasm`]'s `init`, before the guest's lockdown (a sandboxed guest can read nothing
//! later), and written after the first compilation when the guest may write there (a
//! sandboxed guest cannot; an unsandboxed one, or an earlier run, fills the cache). Any
//! failure to read or write only means compiling.

use confine_runtime_abstract::{ErrorData, JIT_CACHE_DIR as DIR};
use std::{
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
};
use wasmtime::{Engine, Module};

/// A cache entry for one plugin under one engine configuration.
#[derive(Debug)]
pub(crate) struct Cached {
    path: Option<PathBuf>,
    /// The file's contents, read in `init`.
    bytes: Option<Vec<u8>>,
}

impl Cached {
    /// Finds and reads the entry for the plugin whose hash is `plugin_hash` (call before
    /// lockdown).
    pub(crate) fn load(engine: &Engine, plugin_hash: &str) -> Self {
        let path = own_executable()
            .and_then(|exe| exe.parent().map(|d| d.join(DIR)))
            .map(|dir| dir.join(file_name(engine, plugin_hash)));
        let bytes = path.as_deref().and_then(|p| std::fs::read(p).ok());
        Cached { path, bytes }
    }

    /// The module: from the cached code if it is there and compatible, else compiled from
    /// what `wasm` makes (and then cached, if possible).
    pub(crate) fn module(
        &mut self,
        engine: &Engine,
        wasm: impl FnOnce() -> Result<Vec<u8>, ErrorData>,
    ) -> Result<Module, ErrorData> {
        if let Some(bytes) = self.bytes.take() {
            // SAFETY: the bytes are a file this runtime wrote with `Module::serialize` into a
            // directory beside the guest executable, created private to its owner: trusted
            // like the executable. wasmtime checks the header (version, configuration, CPU
            // features) and refuses code built differently; then we compile instead.
            if let Ok(module) = unsafe { Module::deserialize(engine, &bytes) } {
                return Ok(module);
            }
        }
        let module = Module::new(engine, wasm()?).map_err(|e| {
            ErrorData::internal(format!("compiling the JS plugin's snapshot: {e:#}"))
        })?;
        if let (Some(path), Ok(bytes)) = (&self.path, module.serialize()) {
            // Best effort: a read-only directory or a sandboxed guest leaves no cache.
            let _ = store(path, &bytes);
        }
        Ok(module)
    }
}

/// This executable's path. A sandboxed guest may not read `/proc/self/exe`
/// (`current_exe`), but the host starts it by its absolute, canonical path, which is then
/// `argv[0]`.
fn own_executable() -> Option<PathBuf> {
    std::env::current_exe().ok().or_else(|| {
        std::env::args_os()
            .next()
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    })
}

/// What the runtime does to the plugin before compiling it (`snapshot.rs`); a change there
/// changes this, so that older files are not taken for the new kind.
const FORMAT: &str = "js-snapshot-1";

/// `js-snapshot-<n>-<wasmtime version>-<configuration hash>-<plugin hash>.cwasm`.
fn file_name(engine: &Engine, plugin_hash: &str) -> String {
    // SipHash with fixed keys: the same in every process, which is all a cache key needs
    // (the contents are not adversarial: the plugin is built into this executable).
    let mut config = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut config);
    format!(
        "{FORMAT}-{}-{:016x}-{plugin_hash}.cwasm",
        crate::WASMTIME_VERSION,
        config.finish(),
    )
}

/// Writes `bytes` to `path` atomically (a temporary file renamed), creating the directory
/// private to its owner. Older entries stay: guests from other builds may share the
/// directory (the workspace's `target/debug`), and removing theirs would only make them
/// compile again.
fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("no cache directory"))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn garbage_is_recompiled_and_the_cache_then_loads() {
        let engine = Engine::new(&crate::config()).unwrap();
        let wasm = wat::parse_str("(module (func (export \"f\")))").unwrap();
        let dir = std::env::temp_dir().join(format!("confine-cache-test-{}", std::process::id()));
        let path = dir.join(file_name(&engine, "0"));
        let mut cached = Cached {
            path: Some(path.clone()),
            bytes: Some(b"not a module".to_vec()),
        };
        let module = cached.module(&engine, || Ok(wasm.clone())).unwrap();
        assert!(module.get_export("f").is_some());
        let written = std::fs::read(&path).unwrap();
        let mut again = Cached {
            path: None,
            bytes: Some(written),
        };
        // Garbage for the source: only the cached code can give a module with `f`.
        let module = again.module(&engine, || Ok(b"garbage".to_vec())).unwrap();
        assert!(module.get_export("f").is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

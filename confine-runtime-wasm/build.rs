//! Embeds the JS plugin (`js-plugin/`, built by `cargo xtask wasm-plugin`) when it exists.
//!
//! The plugin is another target's build (`wasm32-wasip1`, its own lock file), so this crate
//! cannot build it; it looks for the result at `$CONFINE_JS_PLUGIN` or, by default, at
//! `<workspace>/target/wasm-js/wasm32-wasip1/release/confine_js_plugin.wasm`. Found, it sets
//! `cfg(confine_js_plugin)` and `CONFINE_JS_PLUGIN_PATH` for `include_bytes!`; not found, the
//! runtime still builds and a JavaScript container fails with an error that says to run
//! `cargo xtask wasm-plugin`.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(confine_js_plugin)");
    println!("cargo::rerun-if-env-changed=CONFINE_JS_PLUGIN");
    let path = match std::env::var_os("CONFINE_JS_PLUGIN") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/wasm-js/wasm32-wasip1/release/confine_js_plugin.wasm"),
    };
    if path.is_file() {
        println!("cargo::rerun-if-changed={}", path.display());
        println!("cargo::rustc-cfg=confine_js_plugin");
        println!("cargo::rustc-env=CONFINE_JS_PLUGIN_PATH={}", path.display());
        // The plugin's hash, for the runtime's cache of compiled code (computed here so the
        // guest does not hash a megabyte at every start). Any stable hash will do.
        let bytes = std::fs::read(&path).expect("the plugin was found a moment ago");
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&bytes, &mut hasher);
        println!(
            "cargo::rustc-env=CONFINE_JS_PLUGIN_HASH={:016x}",
            std::hash::Hasher::finish(&hasher)
        );
    } else {
        // Watching a missing file would rerun this script, and rebuild the crate, on every
        // build. The plugin's own build directory is watched instead (created here if need
        // be: an empty directory under the target directory), so the plugin appearing in it
        // is noticed.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm-js");
        if std::env::var_os("CONFINE_JS_PLUGIN").is_none() && std::fs::create_dir_all(&dir).is_ok()
        {
            println!("cargo::rerun-if-changed={}", dir.display());
        } else {
            // A missing file named by `CONFINE_JS_PLUGIN`: changing the variable reruns this.
            println!("cargo::rerun-if-changed=build.rs");
        }
    }
}

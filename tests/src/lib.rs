//! Helpers shared by confine's cross-crate test suites and benchmarks.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use confine::{LogLevel, Sandbox, SandboxBuilder};
use std::sync::{Arc, Mutex};

/// One cell of the test matrix: a runtime name and a sandbox mode.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub runtime: &'static str,
    pub sandboxed: bool,
}

impl Target {
    /// A builder for this target. Sandboxed targets demand full enforcement (no degraded
    /// layers), so a test passing here proves the sandbox did not get in the way.
    pub fn builder(&self) -> SandboxBuilder {
        Sandbox::builder()
            .runtime(self.runtime)
            .no_sandbox(!self.sandboxed)
            .pipe_stderr(true)
    }

    pub async fn start(&self) -> Sandbox {
        match self.builder().build().await {
            Ok(s) => s,
            Err(e) => panic!("cannot start {self:?}: {e}"),
        }
    }
}

/// Console output collected from a sandbox.
#[derive(Debug, Clone, Default)]
pub struct Console(Arc<Mutex<Vec<(LogLevel, String)>>>);

impl Console {
    pub fn attach(&self, b: SandboxBuilder) -> SandboxBuilder {
        let lines = Arc::clone(&self.0);
        b.on_console(move |_, level, msg| {
            lines
                .lock()
                .expect("console lock")
                .push((level, msg.to_owned()))
        })
    }

    pub fn lines(&self) -> Vec<(LogLevel, String)> {
        self.0.lock().expect("console lock").clone()
    }

    pub fn text(&self) -> Vec<String> {
        self.lines().into_iter().map(|(_, m)| m).collect()
    }
}

/// `true` if process `pid` exists (and is not a zombie we already reaped).
pub fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state is the field after the parenthesised command name.
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

/// Waits up to `ms` for `pid` to disappear.
pub async fn wait_gone(pid: u32, ms: u64) -> bool {
    for _ in 0..ms / 10 {
        if !process_alive(pid) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    !process_alive(pid)
}

/// What this process holds: open fds, threads, and child processes (zombies included).
/// The counts are the whole process's, so a test comparing them must run alone in its binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessCounts {
    pub fds: usize,
    pub threads: usize,
    pub children: usize,
}

impl ProcessCounts {
    pub fn now() -> Self {
        let count = |dir: &str| std::fs::read_dir(dir).map_or(0, |d| d.count());
        let me = std::process::id().to_string();
        // A child's stat line has its parent's pid as the second field after the name.
        let children = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter(|stat| {
                stat.rsplit(')')
                    .next()
                    .and_then(|rest| rest.split_whitespace().nth(1))
                    == Some(me.as_str())
            })
            .count();
        Self {
            fds: count("/proc/self/fd"),
            threads: count("/proc/self/task"),
            children,
        }
    }
}

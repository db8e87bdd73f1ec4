//! Restarting a sandbox whose guest died: the [`RestartPolicy`], what a sandbox records to
//! re-create itself, and the supervisor task that does it.
//!
//! A guest can die under a sandbox that is still wanted: the host killed it for a limit (a
//! tight loop past its grace, the process memory cap, the CPU-percent cap), the engine
//! crashed, or something outside killed it. With a policy other than
//! [`RestartPolicy::Never`], the sandbox keeps a *recipe*: every global it defined and every
//! live container's source with its latest options. A supervisor task waits for the guest to
//! exit and, unless the sandbox is being torn down and while the policy's budget allows,
//! starts a new guest the way [`crate::Sandbox::start`] did (the same sandbox, checks and
//! limits), defines the globals, and re-creates each container under its old id, so the
//! [`ContainerId`]s the application holds stay valid. Requests made meanwhile wait for it;
//! requests that were pending when the guest died fail with the error of its death.
//! [`Event::Restarted`] says it happened.
//!
//! Re-creating a container runs its top-level code again, with the sandbox's limits: state
//! the script built afterwards (variables, timers) starts over. A container whose top-level
//! code fails this time is reported in the event and dropped. The host picks container ids in
//! such a sandbox, so no id is ever handed out twice, across guests too.
//!
//! ```no_run
//! # async fn f() -> confine::Result<()> {
//! use confine::{ContainerSource, Event, RestartPolicy, Sandbox};
//! use std::time::Duration;
//!
//! let sandbox = Sandbox::builder()
//!     .restart(RestartPolicy::on_exit(3, Duration::from_secs(60)))
//!     .build()
//!     .await?;
//! let cid = sandbox
//!     .exec_container(ContainerSource::code("module.exports.f = () => 1"))
//!     .await?;
//! let mut events = sandbox.events();
//! sandbox.kill(); // or a crash, or the host killing it for a limit
//! while let Some(event) = events.recv().await {
//!     if let Event::Restarted { containers, .. } = event {
//!         assert_eq!(containers, [cid]);
//!         break;
//!     }
//! }
//! let one: i32 = sandbox.call(cid, "f", ()).await?;
//! # Ok(())
//! # }
//! ```

use crate::{
    conn::{HardLimits, Shared},
    container::ContainerSource,
    error::{Error, ExitInfo, ProtocolError, Result},
    events::Event,
    globals::Globals,
    options::SandboxOptions,
    sandbox::{self, Guest, Inner},
};
use confine_runtime_abstract::{
    protocol::{HostRequest, Reply},
    ContainerId, ErrorData, Value,
};
use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};
use tokio::sync::watch;
use tracing::Instrument;

/// What a sandbox does when its guest process dies (see the [module docs](self)).
///
/// Only [`crate::Sandbox::teardown`] and dropping the sandbox end it for good; every other
/// death counts, including [`crate::Sandbox::kill`] (a way to reset a stuck guest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RestartPolicy {
    /// The sandbox ends with its guest. The default.
    #[default]
    Never,
    /// Start a new guest, at most `max` times within any `window`; past that the sandbox
    /// ends with its guest. A start that fails counts too, so a guest that cannot start (or
    /// a container whose top-level code kills the guest every time) does not loop.
    OnExit {
        /// Restarts allowed within `window`.
        max: u32,
        /// The window the restarts are counted in.
        window: Duration,
    },
}

impl RestartPolicy {
    /// [`RestartPolicy::OnExit`]: at most `max` restarts within any `window`.
    pub fn on_exit(max: u32, window: Duration) -> Self {
        RestartPolicy::OnExit { max, window }
    }
}

/// Where a sandbox with a restart policy is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Serving with the guest of this generation.
    Live(u64),
    /// The guest died; a new one is being started.
    Restarting,
    /// No restart will follow: the sandbox ends with its last guest.
    Over,
}

/// What a restart re-creates.
#[derive(Debug, Clone, Default)]
struct Recipe {
    /// The guest generation this recipe describes; changes made through an older guest
    /// (one that died after answering) are not recorded.
    generation: u64,
    globals: Globals,
    containers: BTreeMap<ContainerId, ContainerSource>,
}

/// A sandbox's restart state, shared by the sandbox and its supervisor task.
#[derive(Debug)]
pub(crate) struct Restarts {
    max: u32,
    window: Duration,
    /// What a new guest is started with.
    options: SandboxOptions,
    recipe: Mutex<Recipe>,
    pub(crate) phase: watch::Sender<Phase>,
    /// Set by teardown and drop: no restart from then on.
    ending: AtomicBool,
    /// The next container id: with a restart policy the host picks ids, so that no guest
    /// hands out the id of a container an earlier guest had.
    next_cid: AtomicU32,
}

impl Restarts {
    /// The restart state for a sandbox started with `options`, or `None` without a policy.
    pub(crate) fn new(options: &SandboxOptions) -> Option<Self> {
        let RestartPolicy::OnExit { max, window } = options.restart else {
            return None;
        };
        Some(Restarts {
            max,
            window,
            options: options.clone(),
            recipe: Mutex::new(Recipe {
                generation: 0,
                globals: options.globals.clone(),
                containers: BTreeMap::new(),
            }),
            phase: watch::Sender::new(Phase::Live(0)),
            ending: AtomicBool::new(false),
            next_cid: AtomicU32::new(1),
        })
    }

    /// An id for a new container, never used before in this sandbox.
    pub(crate) fn new_cid(&self) -> ContainerId {
        self.next_cid.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn end(&self) {
        self.ending.store(true, Ordering::SeqCst);
    }

    fn ending(&self) -> bool {
        self.ending.load(Ordering::SeqCst)
    }

    /// Waits until the guest after generation `seen` serves, or until no restart will come.
    pub(crate) async fn wait_past(&self, seen: u64) {
        let mut rx = self.phase.subscribe();
        let _ = rx
            .wait_for(|p| match *p {
                Phase::Live(g) => g > seen,
                Phase::Restarting => false,
                Phase::Over => true,
            })
            .await;
    }

    /// Waits until no restart will come.
    pub(crate) async fn wait_over(&self) {
        let mut rx = self.phase.subscribe();
        let _ = rx.wait_for(|p| *p == Phase::Over).await;
    }

    /// Records a container created through the guest of `generation`.
    pub(crate) fn created(&self, generation: u64, cid: ContainerId, source: ContainerSource) {
        self.edit(generation, |r| {
            r.containers.insert(cid, source);
        });
    }

    /// Records new options for a container.
    pub(crate) fn configured(&self, generation: u64, cid: ContainerId, options: Value) {
        self.edit(generation, |r| {
            if let Some(source) = r.containers.get_mut(&cid) {
                source.options = options;
            }
        });
    }

    /// Forgets a killed container.
    pub(crate) fn killed(&self, generation: u64, cid: ContainerId) {
        self.edit(generation, |r| {
            r.containers.remove(&cid);
        });
    }

    /// Records globals defined through the guest of `generation`.
    pub(crate) fn defined(&self, generation: u64, globals: &Globals) {
        self.edit(generation, |r| {
            r.globals = std::mem::take(&mut r.globals).extend(globals.clone());
        });
    }

    fn edit(&self, generation: u64, f: impl FnOnce(&mut Recipe)) {
        if let Ok(mut recipe) = self.recipe.lock() {
            if recipe.generation == generation {
                f(&mut recipe);
            }
        }
    }

    /// The recipe for the guest of `generation`, which from now on is the one recorded to.
    fn take_for(&self, generation: u64) -> Recipe {
        match self.recipe.lock() {
            Ok(mut recipe) => {
                recipe.generation = generation;
                recipe.clone()
            }
            Err(_) => Recipe::default(),
        }
    }

    fn forget(&self, lost: &[(ContainerId, ErrorData)]) {
        if let Ok(mut recipe) = self.recipe.lock() {
            for (cid, _) in lost {
                recipe.containers.remove(cid);
            }
        }
    }
}

/// Watches the sandbox's guest and restarts it as its policy says. Runs until the sandbox
/// ends: torn down, dropped, out of restarts.
pub(crate) async fn supervise(inner: Arc<Inner>) {
    let Some(restarts) = inner.restarts.as_ref() else {
        return;
    };
    let mut recent: VecDeque<Instant> = VecDeque::new();
    loop {
        let guest = inner.current();
        let exit = guest.shared.wait_exit_forever().await;
        if restarts.ending() {
            break;
        }
        let now = Instant::now();
        while recent
            .front()
            .is_some_and(|&t| now.duration_since(t) >= restarts.window)
        {
            recent.pop_front();
        }
        if recent.len() >= restarts.max as usize {
            tracing::warn!(
                runtime = %restarts.options.runtime,
                restarts = recent.len(),
                window_ms = restarts.window.as_millis(),
                "guest died again; out of restarts"
            );
            break;
        }
        recent.push_back(now);
        restarts.phase.send_replace(Phase::Restarting);
        let generation = guest.generation + 1;
        let span = tracing::info_span!("restart", runtime = %restarts.options.runtime, generation);
        match relaunch(&inner, restarts, generation)
            .instrument(span)
            .await
        {
            Ok((new, (containers, lost))) => {
                let pid = new.pid;
                let shared = Arc::clone(&new.shared);
                if let Ok(mut current) = inner.guest.write() {
                    *current = Arc::new(new);
                }
                // Torn down or dropped while starting: that call saw the old guest.
                if restarts.ending() {
                    shared.begin_teardown();
                    shared.kill_guest();
                    break;
                }
                tracing::info!(pid, %exit, lost = lost.len(), "guest restarted");
                restarts.phase.send_replace(Phase::Live(generation));
                let _ = inner.events.send(Event::Restarted {
                    exit,
                    pid,
                    containers,
                    lost,
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "restart failed");
                let _ = inner
                    .events
                    .send(Event::RestartFailed { error: Arc::new(e) });
            }
        }
    }
    restarts.phase.send_replace(Phase::Over);
}

/// Re-created containers and the ones that failed.
type Recreated = (Vec<ContainerId>, Vec<(ContainerId, ErrorData)>);

/// Starts the guest of `generation` and re-creates the recipe in it. Any failure but a
/// container's own error fails the attempt, and the new guest is killed.
async fn relaunch(
    inner: &Inner,
    restarts: &Restarts,
    generation: u64,
) -> Result<(Guest, Recreated)> {
    let recipe = restarts.take_for(generation);
    let guest = sandbox::spawn_guest(
        &restarts.options,
        &recipe.globals,
        inner.events.clone(),
        generation,
    )
    .await?
    .0;
    match recreate(&guest.shared, &restarts.options, &recipe).await {
        Ok((containers, lost)) => {
            restarts.forget(&lost);
            Ok((guest, (containers, lost)))
        }
        Err(e) => {
            guest.shared.begin_teardown();
            guest.shared.kill_guest();
            Err(e)
        }
    }
}

/// Re-creates the recipe's containers in a new guest (`spawn_guest` defined its globals).
async fn recreate(shared: &Shared, options: &SandboxOptions, recipe: &Recipe) -> Result<Recreated> {
    let limits = HardLimits {
        wall: options.call_timeout,
        cpu: options.limits.cpu_time,
        grace: options.kill_grace,
    };
    let (mut containers, mut lost) = (Vec::new(), Vec::new());
    for (&cid, source) in &recipe.containers {
        let request = HostRequest::Exec {
            cid: Some(cid),
            source: source.source.clone(),
            options: source.options.clone(),
            timeout_ms: sandbox::timeout_ms(limits.wall),
            cpu_ms: sandbox::timeout_ms(limits.cpu),
        };
        match shared.request_limited(request, limits).await? {
            Ok(Reply::Container(got)) if got == cid => containers.push(cid),
            Ok(_) => {
                return Err(Error::Protocol(Arc::new(ProtocolError::UnexpectedReply {
                    request: "Exec",
                })))
            }
            Err(e) => lost.push((cid, e)),
        }
    }
    Ok((containers, lost))
}

/// How the guest of a sandbox that ended for good exited, for [`crate::Sandbox::closed`].
pub(crate) async fn final_exit(inner: &Inner) -> ExitInfo {
    if let Some(restarts) = &inner.restarts {
        restarts.wait_over().await;
    }
    let guest = inner.current();
    let exit = guest.shared.wait_exit_forever().await;
    guest.drained().await;
    exit
}

//! confine's QuickJS runtime: [`QuickJs`] runs containers on [rquickjs] (quickjs-ng).
//!
//! Each container gets its own QuickJS runtime and context, so containers share no globals,
//! prototypes, heap or job queue. What a container can reach is what ECMAScript defines plus:
//!
//! * `console.log/info/debug/warn/error`, forwarded to the host as log messages;
//! * `setTimeout`, `setInterval`, `clearTimeout`, `clearInterval` (and QuickJS's own
//!   `queueMicrotask`), fired by [`AbstractRuntime::run_pending`];
//! * the host globals the host defined: values, and async functions that call the host.
//!
//! Nothing of the host is reachable: there is no `require`, no `process`, and every `import`
//! (static or dynamic) is refused with an error saying so.
//!
//! Sources run as CommonJS (exports are `module.exports`) or, when they use `import` or
//! `export`, as ES modules (exports are the module namespace); see `source.rs` for how the
//! two are told apart.
//!
//! The guest executable is `src/main.rs`: `confine_guest::serve(QuickJs::default())`.
#![deny(missing_docs)]

mod console;
mod container;
mod convert;
mod errors;
mod ffi;
mod globals;
mod loader;
mod memory;
mod source;
mod state;
mod timers;

use confine_runtime_abstract::{
    protocol::{GlobalDef, Source},
    AbstractRuntime, ContainerId, CpuDeadline, Deadline, ErrorData, GuestLimits, HostCallId, Link,
    ReplyTo, RuntimeInfo, Value,
};
use container::{Container, Engine};
use memory::MemoryBudget;
use state::Clock;
use std::{collections::BTreeMap, fmt, rc::Rc, time::Instant};

/// The rquickjs release this crate is built on (the engine's own version is read at run time).
const RQUICKJS_VERSION: &str = "0.14";

/// The QuickJS runtime: an [`AbstractRuntime`] whose containers are QuickJS contexts, each on
/// its own QuickJS runtime.
pub struct QuickJs {
    link: Option<Link>,
    clock: Rc<Clock>,
    containers: BTreeMap<ContainerId, Container>,
    /// The memory budget all containers allocate from.
    budget: Rc<MemoryBudget>,
    /// Deadlines set for a container that `exec_container` is about to create.
    upcoming: Option<(ContainerId, Deadline)>,
    upcoming_cpu: Option<(ContainerId, CpuDeadline)>,
    /// A runtime and context made ahead for the next container.
    prepared: Option<Engine>,
}

impl Default for QuickJs {
    fn default() -> Self {
        QuickJs {
            link: None,
            clock: Rc::new(Clock::new()),
            containers: BTreeMap::new(),
            budget: Rc::new(MemoryBudget::default()),
            upcoming: None,
            upcoming_cpu: None,
            prepared: None,
        }
    }
}

impl fmt::Debug for QuickJs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuickJs")
            .field("initialised", &self.link.is_some())
            .field("containers", &self.containers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl QuickJs {
    /// A runtime with no containers; call [`AbstractRuntime::init`] before anything else.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the QuickJS runtime and context of the next container now, so that creating it
    /// later costs only its own work. The `wasm` runtime's JS plugin calls this before its
    /// memory is snapshotted, so that every container's instance starts with them made.
    ///
    /// The next container created without a memory budget ([`GuestLimits::memory_bytes`])
    /// runs on them; one under a budget makes its own (its runtime must allocate from the
    /// budget from the start).
    ///
    /// # Errors
    /// QuickJS could not allocate the runtime or the context.
    pub fn prepare_engine(&mut self) -> Result<(), ErrorData> {
        self.prepared = Some(Engine::new()?);
        Ok(())
    }

    /// The context [`QuickJs::prepare_engine`] made, until a container takes it: for an
    /// embedder that must adjust engine state the container should not inherit (the JS
    /// plugin reseeds `Math.random` in a context copied from a snapshot).
    pub fn prepared_context(&self) -> Option<&rquickjs::Context> {
        self.prepared.as_ref().map(|e| &e.context)
    }
}

impl AbstractRuntime for QuickJs {
    fn info(&self) -> RuntimeInfo {
        RuntimeInfo {
            name: "quickjs".to_owned(),
            version: format!(
                "rquickjs {RQUICKJS_VERSION} (quickjs-ng {})",
                ffi::engine_version()
            ),
        }
    }

    fn init(&mut self, link: Link) -> Result<(), ErrorData> {
        self.link = Some(link);
        Ok(())
    }

    fn set_limits(&mut self, limits: &GuestLimits) -> Result<(), ErrorData> {
        // The stack limit is read from the link per container; memory is one budget.
        self.budget.set_limit(limits.memory_bytes);
        Ok(())
    }

    fn exec_container(
        &mut self,
        cid: ContainerId,
        source: &Source,
        _options: &Value,
        globals: &[GlobalDef],
    ) -> Result<(), ErrorData> {
        let Some(link) = self.link.clone() else {
            return Err(ErrorData::internal("the runtime was not initialised"));
        };
        if self.containers.contains_key(&cid) {
            return Err(ErrorData::invalid(format!(
                "container {cid} already exists"
            )));
        }
        if source.binary.is_some() {
            return Err(ErrorData::new(
                confine_runtime_abstract::ErrorKind::Unsupported,
                "TypeError",
                format!(
                    "`{}` is a binary module; the quickjs runtime runs JavaScript source text \
                     (use the `wasm` runtime for WebAssembly)",
                    source.name
                ),
            ));
        }
        let deadline = self
            .upcoming
            .take()
            .filter(|&(c, _)| c == cid)
            .map(|(_, d)| d);
        let cpu = self
            .upcoming_cpu
            .take()
            .filter(|&(c, _)| c == cid)
            .map(|(_, d)| d);
        let container = Container::exec(
            cid,
            link,
            self.clock.clone(),
            &self.budget,
            source,
            globals,
            (deadline, cpu),
            self.prepared.take(),
        )?;
        self.containers.insert(cid, container);
        Ok(())
    }

    fn config_container(&mut self, cid: ContainerId, _options: &Value) -> Result<(), ErrorData> {
        if self.containers.contains_key(&cid) {
            Ok(())
        } else {
            Err(errors::no_such_container(cid))
        }
    }

    fn call(&mut self, cid: ContainerId, export: &str, args: Vec<Value>, reply: ReplyTo) {
        match self.containers.get(&cid) {
            Some(container) => container.call(export, &args, reply),
            None => {
                if let Some(link) = &self.link {
                    link.reply(reply, Err(errors::no_such_container(cid)));
                }
            }
        }
    }

    fn kill_container(&mut self, cid: ContainerId) {
        if let Some(container) = self.containers.remove(&cid) {
            container.fail_pending_calls();
            drop(container);
        }
    }

    fn define_globals(&mut self, globals: &[GlobalDef]) -> Result<(), ErrorData> {
        let mut first_error = None;
        for container in self.containers.values() {
            if let Err(e) = container.define_globals(globals) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn host_call_settled(&mut self, id: HostCallId, result: Result<Value, ErrorData>) {
        // Answers for killed containers find no taker and are dropped.
        for container in self.containers.values() {
            if let Some(call) = container.take_host_call(id) {
                container.settle_host_call(call, result);
                return;
            }
        }
    }

    fn run_pending(&mut self, now: Instant) -> Option<Instant> {
        // Time never runs backwards, even if a caller's `now` does.
        self.clock.advance(now);
        let now = self.clock.floor();
        // Timers armed during this round wait for the next one, so a callback that re-arms
        // itself with no delay cannot keep this loop from returning.
        let armed_before = self.clock.peek_seq();
        loop {
            for container in self.containers.values() {
                container.run_jobs();
                // As in node: a rejection still unhandled once the jobs have run is reported.
                container.report_rejections();
            }
            let due = self
                .containers
                .iter()
                .filter_map(|(&cid, c)| {
                    c.next_due(now, armed_before)
                        .map(|(deadline, seq, id)| (deadline, seq, cid, id))
                })
                .min();
            let Some((_, _, cid, id)) = due else {
                break;
            };
            if let Some(container) = self.containers.get(&cid) {
                container.fire_timer(id);
            }
        }
        if self.containers.values().any(Container::has_jobs) {
            // Reporting ran script code (error getters) that queued more work.
            return Some(now);
        }
        self.containers
            .values()
            .filter_map(Container::next_deadline)
            .min()
    }

    fn set_deadline(&mut self, cid: ContainerId, deadline: Option<Deadline>) {
        match self.containers.get(&cid) {
            Some(container) => container.set_deadline(deadline),
            None => self.upcoming = deadline.map(|d| (cid, d)),
        }
    }

    fn set_cpu_deadline(&mut self, cid: ContainerId, deadline: Option<CpuDeadline>) {
        match self.containers.get(&cid) {
            Some(container) => container.set_cpu_deadline(deadline),
            None => self.upcoming_cpu = deadline.map(|d| (cid, d)),
        }
    }

    fn abandon_reply(&mut self, cid: ContainerId, reply: ReplyTo) -> bool {
        self.containers
            .get(&cid)
            .is_some_and(|c| c.abandon_reply(reply))
    }

    fn is_idle(&self, cid: ContainerId) -> bool {
        self.containers.get(&cid).is_none_or(Container::is_idle)
    }
}

#[cfg(test)]
mod tests;

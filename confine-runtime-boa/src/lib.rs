//! confine's Boa runtime: [`Boa`] runs containers on [boa_engine], a JavaScript engine
//! written in Rust.
//!
//! Each container gets its own boa context (realm, job queue, module loader, limits), so
//! containers share no globals, prototypes or jobs. What a container can reach is what
//! ECMAScript defines plus:
//!
//! * `console.log/info/debug/warn/error`, forwarded to the host as log messages;
//! * `setTimeout`, `setInterval`, `clearTimeout`, `clearInterval` and `queueMicrotask`,
//!   fired by [`AbstractRuntime::run_pending`];
//! * the host globals the host defined: values, and async functions that call the host.
//!
//! Nothing of the host is reachable: there is no `require`, no `process`, and every `import`
//! (static or dynamic) is refused with an error saying so.
//!
//! Sources run as CommonJS (exports are `module.exports`) or, when they use `import` or
//! `export`, as ES modules (exports are the module namespace); see `source.rs`.
//!
//! The behaviour is the QuickJS runtime's (`confine-runtime-quickjs`), module for module.
//! Where boa differs:
//!
//! * Deep recursion hits boa's recursion limit (1024 nested calls, `container.rs`), which by
//!   boa's design is an *uncatchable* engine error: `try`/`catch` does not see it, the call
//!   fails with [`confine_runtime_abstract::ErrorKind::Limit`], and the container stays
//!   usable. On QuickJS it is a catchable `RangeError`. Two boa 0.22 defects around it:
//!   after an `await`, boa drops the error (the async function's promise never settles, so
//!   such a call waits for the host's time limit or a kill), and unwinding through a native
//!   callback leaks VM stack slots (bounded by a larger VM stack, see `container.rs`).
//! * Some of boa's own recursion is not counted by that limit: its parser (source, `eval`,
//!   `Function`) and a few built-ins on deeply nested arrays (`join`/`String`,
//!   `JSON.stringify`, `flat(Infinity)`) can overflow the guest's native stack with input
//!   nested tens of thousands deep. The guest process then aborts (the host sees it exit with
//!   `SIGABRT`), where QuickJS throws a `RangeError`. The process boundary contains it.
//! * `Date` uses UTC as the local time zone, in and out of the sandbox.
//! * `FinalizationRegistry` callbacks never run, and `Atomics.waitAsync` promises never settle
//!   (see `jobs.rs`). `Intl` and `Temporal` are not built in (crate features left off).
//!
//! The guest executable is `src/main.rs`: `confine_guest::serve(Boa::default())`.
#![deny(missing_docs)]

mod console;
mod container;
mod convert;
mod errors;
mod globals;
mod hooks;
mod jobs;
mod loader;
mod source;
mod state;
mod timers;

use boa_engine::{
    object::FunctionObjectBuilder, Context, JsResult, JsString, JsValue, NativeFunction,
};
use confine_runtime_abstract::{
    protocol::{GlobalDef, Source},
    AbstractRuntime, ContainerId, CpuDeadline, Deadline, ErrorData, ErrorKind, HostCallId, Link,
    ReplyTo, RuntimeInfo, Value,
};
use container::Container;
use state::Clock;
use std::{collections::BTreeMap, fmt, rc::Rc, time::Instant};

/// The boa_engine release this crate is built on.
const BOA_VERSION: &str = "0.22";

/// The Boa runtime: an [`AbstractRuntime`] whose containers are boa contexts.
pub struct Boa {
    link: Option<Link>,
    clock: Rc<Clock>,
    containers: BTreeMap<ContainerId, Container>,
}

impl Default for Boa {
    fn default() -> Self {
        Boa {
            link: None,
            clock: Rc::new(Clock::new()),
            containers: BTreeMap::new(),
        }
    }
}

impl fmt::Debug for Boa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Boa")
            .field("initialised", &self.link.is_some())
            .field("containers", &self.containers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Boa {
    /// A runtime with no containers; call [`AbstractRuntime::init`] before anything else.
    pub fn new() -> Self {
        Self::default()
    }
}

impl AbstractRuntime for Boa {
    fn info(&self) -> RuntimeInfo {
        RuntimeInfo {
            name: "boa".to_owned(),
            version: format!("boa_engine {BOA_VERSION}"),
        }
    }

    fn init(&mut self, link: Link) -> Result<(), ErrorData> {
        self.link = Some(link);
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
                ErrorKind::Unsupported,
                "TypeError",
                format!(
                    "`{}` is a binary module; the boa runtime runs JavaScript source text \
                     (use the `wasm` runtime for WebAssembly)",
                    source.name
                ),
            ));
        }
        let container = Container::exec(cid, link, self.clock.clone(), source, globals)?;
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
        match self.containers.get_mut(&cid) {
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
        for container in self.containers.values_mut() {
            if let Err(e) = container.define_globals(globals) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn host_call_settled(&mut self, id: HostCallId, result: Result<Value, ErrorData>) {
        // Answers for killed containers find no taker and are dropped.
        for container in self.containers.values_mut() {
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
            for container in self.containers.values_mut() {
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
            if let Some(container) = self.containers.get_mut(&cid) {
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

    // Boa has no interrupt callback, so a tight loop runs until the host kills the guest (the
    // hard path); deadlines only end floods of promise jobs. Promises still pending at a
    // deadline are answered by the serve loop, which `abandon_reply` lets forget them.
    fn set_deadline(&mut self, cid: ContainerId, deadline: Option<Deadline>) {
        if let Some(container) = self.containers.get_mut(&cid) {
            container.set_deadline(deadline);
        }
    }

    fn set_cpu_deadline(&mut self, cid: ContainerId, deadline: Option<CpuDeadline>) {
        if let Some(container) = self.containers.get_mut(&cid) {
            container.set_cpu_deadline(deadline);
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

/// Defines global `name` as a function, the way an assignment in script code would.
fn install_fn(ctx: &mut Context, name: &str, length: usize, f: NativeFunction) -> JsResult<()> {
    let f = FunctionObjectBuilder::new(ctx.realm(), f)
        .name(JsString::from(name))
        .length(length)
        .build();
    install_value(ctx, name, f.into())
}

/// Defines global `name` as `value`, the way an assignment in script code would.
fn install_value(ctx: &mut Context, name: &str, value: JsValue) -> JsResult<()> {
    let global = ctx.global_object();
    global.set(JsString::from(name), value, true, ctx)?;
    Ok(())
}

#[cfg(test)]
mod tests;

//! One container: its own boa context (with its own realm, job queue, module loader and
//! limits), and what is pending on it.
//!
//! A context per container (rather than a realm per container in one context) keeps each
//! container's job queue, rejection tracking and limits separate, which is what `is_idle`,
//! uncaught-error reporting and kill need; it costs about 0.25 ms. All contexts of a guest
//! share boa's thread-local garbage collector, which is fine: the guest is one thread.

use crate::{
    console, convert, errors, globals,
    hooks::Hooks,
    jobs::Jobs,
    loader::DenyImports,
    source::{self, Compiled, Exports},
    state::{Clock, HostCall, Shared, Untraced},
    timers,
};
use boa_engine::{
    builtins::promise::PromiseState,
    context::ContextBuilder,
    object::{builtins::JsPromise, FunctionObjectBuilder},
    Context, JsString, JsValue, NativeFunction,
};
use confine_runtime_abstract::{
    protocol::{GlobalDef, Reply, Source},
    ContainerId, CpuDeadline, Deadline, ErrorData, ErrorKind, HostCallId, Link, ReplyTo, Value,
};
use std::{rc::Rc, time::Instant};

/// How deep script calls may nest (JS frames plus re-entries from native code, such as a
/// getter called by a built-in). boa's frames live on the heap, but every re-entry from
/// native code also uses the native stack; this bound keeps that well inside the guest's
/// 8 MiB main thread (and a test thread's 2 MiB) while allowing ordinary recursive code.
/// Exceeding it is boa's uncatchable runtime-limit error: the script stops, the call fails
/// with [`ErrorKind::Limit`], and the container stays usable.
pub(crate) const MAX_RECURSION: usize = 1024;

/// How many values boa's VM stack may hold (boa's default is 10 Ki). Ordinary deep recursion
/// needs more than that before [`MAX_RECURSION`] is reached, and boa 0.22 does not give back
/// all slots when an uncatchable limit error unwinds through a native callback (a sort
/// comparator, a proxy trap): `JsObject::call` returns early without truncating the stack.
/// The leak is a few thousand slots per such hit; this bound (8 MiB of values) keeps a
/// container usable through hundreds of them.
pub(crate) const MAX_VM_STACK: usize = 1 << 20;

/// A live container.
pub(crate) struct Container {
    exports: Option<Exports>,
    shared: Rc<Shared>,
    jobs: Rc<Jobs>,
    /// The time limits of the requests open on the container. Boa cannot interrupt script
    /// code, so they only end floods of promise jobs ([`Container::run_jobs`]).
    deadline: Option<Deadline>,
    cpu: Option<CpuDeadline>,
    context: Context,
}

impl Drop for Container {
    fn drop(&mut self) {
        // Release every handle the Rust side holds so the collector can free the context's
        // objects (see `state.rs`).
        self.jobs.clear();
        self.shared.clear();
        self.exports = None;
    }
}

impl Container {
    /// Creates container `cid`, defines `globals` in it, and runs `source`.
    ///
    /// # Errors
    /// Engine setup failures, globals that cannot be defined, and the source's syntax or
    /// top-level errors; the container is dropped then.
    pub(crate) fn exec(
        cid: ContainerId,
        link: Link,
        clock: Rc<Clock>,
        source: &Source,
        globals: &[GlobalDef],
    ) -> Result<Container, ErrorData> {
        let shared = Rc::new(Shared::new(cid, link, clock));
        let jobs = Rc::new(Jobs::default());
        let mut context = ContextBuilder::new()
            .job_executor(jobs.clone())
            .module_loader(Rc::new(DenyImports))
            .host_hooks(Rc::new(Hooks {
                shared: shared.clone(),
            }))
            .build()
            .map_err(|e| ErrorData::internal(format!("boa: cannot create a context: {e}")))?;
        let limits = context.runtime_limits_mut();
        limits.set_recursion_limit(MAX_RECURSION);
        limits.set_stack_size_limit(MAX_VM_STACK);
        let mut container = Container {
            exports: None,
            shared,
            jobs,
            deadline: None,
            cpu: None,
            context,
        };
        let shared = container.shared.clone();
        let ctx = &mut container.context;
        console::install(ctx, &shared.link, cid).map_err(|e| errors::caught(ctx, e))?;
        timers::install(ctx, &shared).map_err(|e| errors::caught(ctx, e))?;
        for def in globals {
            globals::define(ctx, &shared, def)?;
        }
        let loaded = match source::compile(ctx, source)? {
            Compiled::CommonJs(wrapper) => source::run_common_js(ctx, &wrapper)?,
            Compiled::Module(module) => {
                let load = module.load(ctx);
                // Loading runs as jobs (each import is an async job the loader refuses).
                container.run_jobs();
                let ctx = &mut container.context;
                let loaded = source::run_module(ctx, &module, &load);
                loaded?
            }
        };
        container.exports = Some(loaded.exports);
        if let Some(evaluation) = loaded.evaluation {
            container.finish_module(&evaluation)?;
        }
        Ok(container)
    }

    /// Drives a module's top-level `await`s as far as promise jobs take them. A rejected
    /// evaluation is the exec's error; one still pending (waiting on a timer or a host call)
    /// leaves the container live, its namespace usable once the awaited code has run.
    fn finish_module(&mut self, evaluation: &JsPromise) -> Result<(), ErrorData> {
        self.run_jobs();
        let PromiseState::Rejected(reason) = evaluation.state() else {
            return Ok(());
        };
        let promise = evaluation.clone().into();
        self.shared.forget_rejection(&promise);
        Err(errors::from_exception(
            &mut self.context,
            &reason,
            ErrorKind::Thrown,
        ))
    }

    /// Defines more globals.
    pub(crate) fn define_globals(&mut self, globals: &[GlobalDef]) -> Result<(), ErrorData> {
        let shared = self.shared.clone();
        globals
            .iter()
            .try_for_each(|def| globals::define(&mut self.context, &shared, def))
    }

    /// Calls export `export`; the answer goes to `reply` now or when its promise settles.
    pub(crate) fn call(&mut self, export: &str, args: &[Value], reply: ReplyTo) {
        let result = self.start_call(export, args, reply);
        match result {
            Ok(Some(value)) => self.shared.link.reply(reply, Ok(Reply::Value(value))),
            Ok(None) => {}
            Err(e) => self.shared.link.reply(reply, Err(e)),
        }
    }

    /// Calls the export. `Ok(None)` when it returned a promise (now awaited by callbacks).
    fn start_call(
        &mut self,
        export: &str,
        args: &[Value],
        reply: ReplyTo,
    ) -> Result<Option<Value>, ErrorData> {
        let Some(exports) = &self.exports else {
            return Err(self.no_export(export));
        };
        let ctx = &mut self.context;
        let this = exports.object(ctx)?;
        let func = match this.as_object() {
            // A CommonJS module that exports one function calls it `default`.
            Some(obj) if export == "default" && obj.is_callable() => this.clone(),
            Some(obj) => obj
                .get(JsString::from(export), ctx)
                .map_err(|e| errors::caught(ctx, e))?,
            None => return Err(self.no_export(export)),
        };
        if func.is_undefined() {
            return Err(self.no_export(export));
        }
        let Some(func) = func.as_callable() else {
            return Err(ErrorData::new(
                ErrorKind::NoSuchExport,
                "TypeError",
                format!(
                    "export '{export}' of container {} is not a function",
                    self.shared.cid
                ),
            ));
        };
        let mut call_args = Vec::with_capacity(args.len());
        for arg in args {
            call_args.push(convert::to_js(ctx, arg)?);
        }
        let result = func
            .call(&this, &call_args, ctx)
            .map_err(|e| errors::caught(ctx, e))?;
        if let Some(promise) = result.as_promise() {
            await_promise(ctx, &self.shared, &promise, reply)?;
            return Ok(None);
        }
        convert::to_value(ctx, &result).map(Some)
    }

    fn no_export(&self, export: &str) -> ErrorData {
        ErrorData::new(
            ErrorKind::NoSuchExport,
            "ReferenceError",
            format!(
                "container {} has no export named '{export}'",
                self.shared.cid
            ),
        )
    }

    /// Runs every queued job. A job fails only with what a promise cannot hold (boa's
    /// uncatchable engine errors); that is reported as uncaught.
    /// Runs queued promise jobs, and drops them all once a limit of the container has
    /// passed (a job flood such as `const f = () => Promise.resolve().then(f)` never ends
    /// by itself); what was dropped is reported as uncaught.
    pub(crate) fn run_jobs(&mut self) {
        let shared = self.shared.clone();
        let (deadline, cpu) = (self.deadline, self.cpu);
        let mut over = None;
        let dropped = self.jobs.run_checked(
            &mut self.context,
            |ctx, e| {
                let error = errors::caught(ctx, e);
                shared.link.uncaught(shared.cid, error);
            },
            || {
                over = shared.link.over_limit(shared.cid, deadline, cpu);
                over.is_some()
            },
        );
        if let Some(error) = over {
            let message = format!(
                "{}; {dropped} queued promise jobs were dropped",
                error.message
            );
            shared
                .link
                .uncaught(shared.cid, ErrorData { message, ..error });
        }
    }

    /// Sets the wall-time deadline job floods are held to.
    pub(crate) fn set_deadline(&mut self, deadline: Option<Deadline>) {
        self.deadline = deadline;
    }

    /// Sets the CPU-time deadline job floods are held to.
    pub(crate) fn set_cpu_deadline(&mut self, deadline: Option<CpuDeadline>) {
        self.cpu = deadline;
    }

    /// The first timer due at `now` among those armed before `before`.
    pub(crate) fn next_due(&self, now: Instant, before: u64) -> Option<(Instant, u64, u32)> {
        self.shared.timers.borrow().next_due(now, before)
    }

    /// The earliest timer deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.shared.timers.borrow().earliest()
    }

    /// Fires timer `id`; what it throws is reported as uncaught.
    pub(crate) fn fire_timer(&mut self, id: u32) {
        let firing = self
            .shared
            .timers
            .borrow_mut()
            .take_for_firing(id, &self.shared.clock);
        let Some((callback, args)) = firing else {
            return;
        };
        let ctx = &mut self.context;
        if let Err(e) = callback.call(&JsValue::undefined(), &args, ctx) {
            let error = errors::caught(ctx, e);
            self.shared.link.uncaught(self.shared.cid, error);
        }
    }

    /// Reports promise rejections nobody handled by now.
    pub(crate) fn report_rejections(&mut self) {
        if self.shared.rejections.borrow().is_empty() {
            return;
        }
        let rejections = std::mem::take(&mut *self.shared.rejections.borrow_mut());
        for r in rejections {
            let mut error = errors::from_exception(&mut self.context, &r.reason, ErrorKind::Thrown);
            if error.message.is_empty() {
                error.message = "unhandled promise rejection".to_owned();
            }
            self.shared.link.uncaught(self.shared.cid, error);
        }
    }

    /// Takes host call `id` off this container's list, if it is this container's.
    pub(crate) fn take_host_call(&self, id: HostCallId) -> Option<HostCall> {
        let call = self.shared.host_calls.borrow_mut().remove(&id);
        call
    }

    /// Settles a host call taken with [`Container::take_host_call`].
    pub(crate) fn settle_host_call(&mut self, call: HostCall, result: Result<Value, ErrorData>) {
        globals::settle(&mut self.context, &self.shared, call, result);
    }

    /// Whether the container has nothing left to do.
    /// Forgets the pending call `reply` (answered at its deadline by the serve loop).
    pub(crate) fn abandon_reply(&self, reply: ReplyTo) -> bool {
        let removed = self.shared.replies.borrow_mut().remove(&reply.0);
        removed
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.shared.timers.borrow().is_empty()
            && self.shared.host_calls.borrow().is_empty()
            && self.shared.replies.borrow().is_empty()
            && !self.jobs.is_pending()
    }

    /// Whether jobs are queued.
    pub(crate) fn has_jobs(&self) -> bool {
        self.jobs.is_pending()
    }

    /// Answers every call still waiting on a promise with "container was killed".
    pub(crate) fn fail_pending_calls(&self) {
        let pending = std::mem::take(&mut *self.shared.replies.borrow_mut());
        for id in pending {
            self.shared
                .link
                .reply(ReplyTo(id), Err(errors::killed(self.shared.cid)));
        }
    }
}

/// Answers `reply` when `promise` settles, through callbacks that hold no JS values.
fn await_promise(
    ctx: &mut Context,
    shared: &Rc<Shared>,
    promise: &JsPromise,
    reply: ReplyTo,
) -> Result<(), ErrorData> {
    shared.replies.borrow_mut().insert(reply.0);
    let on_ok = NativeFunction::from_copy_closure_with_captures(
        |_, args, captures: &Untraced<(Rc<Shared>, ReplyTo)>, ctx| {
            let (shared, reply) = &captures.0;
            if take_reply(shared, *reply) {
                let value = args.first().cloned().unwrap_or_default();
                let result = convert::to_value(ctx, &value).map(Reply::Value);
                shared.link.reply(*reply, result);
            }
            Ok(JsValue::undefined())
        },
        Untraced((shared.clone(), reply)),
    );
    let on_err = NativeFunction::from_copy_closure_with_captures(
        |_, args, captures: &Untraced<(Rc<Shared>, ReplyTo)>, ctx| {
            let (shared, reply) = &captures.0;
            if take_reply(shared, *reply) {
                let reason = args.first().cloned().unwrap_or_default();
                let error = errors::from_exception(ctx, &reason, ErrorKind::Thrown);
                shared.link.reply(*reply, Err(error));
            }
            Ok(JsValue::undefined())
        },
        Untraced((shared.clone(), reply)),
    );
    let on_ok = FunctionObjectBuilder::new(ctx.realm(), on_ok).build();
    let on_err = FunctionObjectBuilder::new(ctx.realm(), on_err).build();
    promise
        .then(Some(on_ok), Some(on_err), ctx)
        .map(drop)
        .map_err(|e| {
            shared.replies.borrow_mut().remove(&reply.0);
            errors::caught(ctx, e)
        })
}

/// Claims the right to answer `reply` (a script could call a captured callback twice).
fn take_reply(shared: &Shared, reply: ReplyTo) -> bool {
    let taken = shared.replies.borrow_mut().remove(&reply.0);
    taken
}

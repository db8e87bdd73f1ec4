//! One container: its own QuickJS runtime and context, and what is pending on it.
//!
//! A runtime per container (not a context per container on a shared runtime) keeps each
//! container's heap, job queue, stack limit and, later, memory limit separate; creating one
//! costs about 0.1 ms.

use crate::{
    console, convert, errors, ffi, globals,
    loader::DenyImports,
    memory::{BudgetAllocator, MemoryBudget},
    source::{self, Exports},
    state::{Clock, HostCall, Shared},
    timers,
};
use confine_runtime_abstract::{
    protocol::{GlobalDef, Reply, Source},
    ContainerId, CpuDeadline, Deadline, ErrorData, ErrorKind, HostCallId, LimitKind, Link, ReplyTo,
    Value,
};
use rquickjs::{
    function::{Args, Opt, This},
    promise::PromiseState,
    Context, Ctx, Function, Persistent, Promise, Runtime, Value as JsValue,
};
use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    time::Instant,
};

/// The default JS stack budget. The guest's main thread has 8 MiB; QuickJS needs native stack
/// beyond its budget to build the `RangeError` (and Rust frames sit below it), so the budget
/// stays well inside.
pub(crate) const DEFAULT_STACK: usize = 512 * 1024;

/// The range a host's stack limit is clamped to: below it QuickJS cannot build its own
/// contexts; above it the `RangeError` would no longer fit in the 8 MiB main-thread stack.
pub(crate) const STACK_RANGE: std::ops::RangeInclusive<usize> = (64 * 1024)..=(4 * 1024 * 1024);

/// How many promise jobs run between checks of the container's limits. QuickJS polls its
/// interrupt handler once per 10 000 function calls, wherever that lands; a flood of tiny
/// jobs (`const f = () => Promise.resolve().then(f)`) survives such interrupts, because most
/// of them land where the next job is already queued.
const JOBS_PER_CHECK: u32 = 256;

/// What QuickJS's interrupt handler checks: the container's deadlines and budgets.
pub(crate) struct Watch {
    cid: ContainerId,
    link: Link,
    deadline: Cell<Option<Deadline>>,
    cpu: Cell<Option<CpuDeadline>>,
    /// Set by the handler when it stopped script code: the error to report.
    fired: RefCell<Option<ErrorData>>,
}

impl Watch {
    /// The handler: QuickJS calls it every ~10 000 operations (about every 0.2 ms of busy
    /// script), so a clock read each time is cheap next to the work in between.
    fn should_interrupt(&self) -> bool {
        match self.over_limit() {
            Some(e) => {
                *self.fired.borrow_mut() = Some(e);
                true
            }
            None => false,
        }
    }

    /// The error of the first limit the container is past, if any.
    fn over_limit(&self) -> Option<ErrorData> {
        self.link
            .over_limit(self.cid, self.deadline.get(), self.cpu.get())
    }

    /// `e`, or the limit's error if the handler stopped the code that failed with it, or
    /// the memory limit's if `e` is QuickJS's out-of-memory error for a refused allocation.
    fn error(&self, e: ErrorData, budget: &MemoryBudget) -> ErrorData {
        if let Some(fired) = self.fired.borrow_mut().take() {
            return fired;
        }
        // QuickJS throws `InternalError: out of memory`, or `null` when even that error
        // cannot be allocated.
        let oom = (e.name == "InternalError" && e.message == "out of memory")
            || (e.kind == ErrorKind::Thrown && e.name == "null");
        match budget.limit() {
            Some(limit) if oom && budget.take_refused() => ErrorData::limit(
                LimitKind::Memory,
                format!("memory limit of {limit} bytes exceeded (out of memory)"),
            ),
            _ => e,
        }
    }
}

/// A QuickJS runtime and its context, made before the container that runs on them (see
/// [`crate::QuickJs::prepare_engine`]). Field order is drop order: the context first.
pub(crate) struct Engine {
    pub(crate) context: Context,
    runtime: Runtime,
}

impl Engine {
    /// A runtime on QuickJS's own allocator (no memory budget) and a context with every
    /// intrinsic: all a container needs that does not depend on the container.
    pub(crate) fn new() -> Result<Engine, ErrorData> {
        let engine = |e: rquickjs::Error| ErrorData::internal(format!("QuickJS: {e}"));
        let runtime = Runtime::new().map_err(engine)?;
        let context = Context::full(&runtime).map_err(engine)?;
        Ok(Engine { context, runtime })
    }
}

/// A live container.
///
/// Field order is drop order after [`Drop::drop`] has released every JS handle: the exports
/// handle, then the context, then the runtime (QuickJS aborts if a handle outlives it).
pub(crate) struct Container {
    exports: Option<Exports>,
    shared: Rc<Shared>,
    watch: Rc<Watch>,
    budget: Rc<MemoryBudget>,
    /// The stack budget in force.
    stack: usize,
    context: Context,
    runtime: Runtime,
}

impl Drop for Container {
    fn drop(&mut self) {
        self.shared.clear();
        self.exports = None;
    }
}

impl Container {
    /// Creates container `cid`, defines `globals` in it, and runs `source`; on `prepared`,
    /// if given and usable (it is not under a memory budget, whose allocator a runtime gets
    /// when it is made).
    ///
    /// # Errors
    /// Engine setup failures, globals that cannot be defined, and the source's syntax or
    /// top-level errors; the container is dropped then.
    #[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
    pub(crate) fn exec(
        cid: ContainerId,
        link: Link,
        clock: Rc<Clock>,
        budget: &Rc<MemoryBudget>,
        source: &Source,
        globals: &[GlobalDef],
        (deadline, cpu): (Option<Deadline>, Option<CpuDeadline>),
        prepared: Option<Engine>,
    ) -> Result<Container, ErrorData> {
        let engine = |e: rquickjs::Error| ErrorData::internal(format!("QuickJS: {e}"));
        if !budget.has_room_for_container() {
            return Err(ErrorData::limit(
                LimitKind::Memory,
                format!(
                    "memory limit of {} bytes leaves no room for a new container ({} in use)",
                    budget.limit().unwrap_or(0),
                    budget.used()
                ),
            ));
        }
        budget.take_refused();
        let (runtime, context) = match prepared.filter(|_| budget.limit().is_none()) {
            Some(Engine { context, runtime }) => (runtime, Some(context)),
            // Without a limit, QuickJS's own allocator (no accounting of ours on the hot
            // path).
            None if budget.limit().is_none() => (Runtime::new().map_err(engine)?, None),
            None => (
                Runtime::new_with_alloc(BudgetAllocator(budget.clone())).map_err(engine)?,
                None,
            ),
        };
        let stack = link.limits().stack_bytes.map_or(DEFAULT_STACK, |b| {
            (b as usize).clamp(*STACK_RANGE.start(), *STACK_RANGE.end())
        });
        runtime.set_max_stack_size(stack);
        let watch = Rc::new(Watch {
            cid,
            link: link.clone(),
            deadline: Cell::new(deadline),
            cpu: Cell::new(cpu),
            fired: RefCell::new(None),
        });
        let handler = watch.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || handler.should_interrupt())));
        runtime.set_loader(DenyImports, DenyImports);
        let shared = Rc::new(Shared::new(cid, link, clock));
        let tracker = shared.clone();
        runtime.set_host_promise_rejection_tracker(Some(Box::new(
            move |ctx, promise, reason, handled| {
                tracker.track_rejection(&ctx, promise, reason, handled)
            },
        )));
        // The handler, loader and tracker above are the runtime's: a context made before
        // them is governed by them all the same.
        let context = match context {
            Some(context) => context,
            None => Context::full(&runtime).map_err(engine)?,
        };
        let mut container = Container {
            exports: None,
            shared,
            watch,
            budget: budget.clone(),
            stack,
            context,
            runtime,
        };
        let loaded = container.with(|ctx, shared| {
            console::install(&ctx, shared).map_err(|e| errors::caught(&ctx, e))?;
            timers::install(&ctx, shared).map_err(|e| errors::caught(&ctx, e))?;
            for def in globals {
                globals::define(&ctx, shared, def)?;
            }
            source::load(&ctx, source)
        });
        let loaded = loaded.map_err(|e| container.error(e))?;
        container.exports = Some(loaded.exports);
        if let Some(evaluation) = loaded.evaluation {
            container
                .finish_module(evaluation)
                .map_err(|e| container.error(e))?;
        }
        Ok(container)
    }

    /// `e` as the limit error it stands for, if a limit stopped the code (see
    /// [`Watch::error`]).
    fn error(&self, e: ErrorData) -> ErrorData {
        self.watch.error(e, &self.budget)
    }

    /// Sets the deadline the interrupt handler enforces.
    pub(crate) fn set_deadline(&self, deadline: Option<Deadline>) {
        self.watch.deadline.set(deadline);
    }

    /// Sets the CPU-time deadline the interrupt handler enforces.
    pub(crate) fn set_cpu_deadline(&self, deadline: Option<CpuDeadline>) {
        self.watch.cpu.set(deadline);
    }

    /// Forgets the pending call `reply` (answered at its deadline by the serve loop).
    pub(crate) fn abandon_reply(&self, reply: ReplyTo) -> bool {
        let removed = self.shared.replies.borrow_mut().remove(&reply.0);
        removed
    }

    /// Enters the engine with this container's context.
    fn with<R>(&self, f: impl FnOnce(Ctx<'_>, &Rc<Shared>) -> R) -> R {
        ffi::update_stack_top(&self.context);
        self.context.with(|ctx| f(ctx, &self.shared))
    }

    /// Drives a module's top-level `await`s as far as promise jobs take them. A rejected
    /// evaluation is the exec's error; one still pending (waiting on a timer or a host call)
    /// leaves the container live, its namespace usable once the awaited code has run.
    fn finish_module(&self, evaluation: Persistent<Promise<'static>>) -> Result<(), ErrorData> {
        self.run_jobs();
        self.with(|ctx, shared| {
            let Ok(promise) = evaluation.restore(&ctx) else {
                return Ok(());
            };
            if promise.state() != PromiseState::Rejected {
                return Ok(());
            }
            shared.forget_rejection(&ctx, promise.clone().into_value());
            Err(match promise.result::<JsValue>() {
                Some(Err(e)) => errors::caught(&ctx, e),
                _ => ErrorData::internal("module evaluation rejected without a reason"),
            })
        })
    }

    /// Defines more globals.
    pub(crate) fn define_globals(&self, globals: &[GlobalDef]) -> Result<(), ErrorData> {
        self.with(|ctx, shared| {
            globals
                .iter()
                .try_for_each(|def| globals::define(&ctx, shared, def))
        })
    }

    /// Calls export `export`; the answer goes to `reply` now or when its promise settles.
    pub(crate) fn call(&self, export: &str, args: &[Value], reply: ReplyTo) {
        let Some(exports) = &self.exports else {
            return self.shared.link.reply(reply, Err(self.no_export(export)));
        };
        self.watch.fired.borrow_mut().take();
        self.budget.take_refused();
        self.with(|ctx, shared| {
            let result = self.start_call(&ctx, shared, exports, export, args, reply);
            match result {
                Ok(Some(value)) => shared.link.reply(reply, Ok(Reply::Value(value))),
                Ok(None) => {}
                Err(e) => shared.link.reply(reply, Err(self.error(e))),
            }
        });
    }

    /// Calls the export. `Ok(None)` when it returned a promise (now awaited by callbacks).
    fn start_call<'js>(
        &self,
        ctx: &Ctx<'js>,
        shared: &Rc<Shared>,
        exports: &Exports,
        export: &str,
        args: &[Value],
        reply: ReplyTo,
    ) -> Result<Option<Value>, ErrorData> {
        let this = exports.object(ctx)?;
        let func = match this.as_object() {
            // A CommonJS module that exports one function calls it `default`.
            _ if export == "default" && this.is_function() => this.clone(),
            Some(obj) => obj.get(export).map_err(|e| errors::caught(ctx, e))?,
            None => return Err(self.no_export(export)),
        };
        if func.is_undefined() {
            return Err(self.no_export(export));
        }
        let Some(func) = func.into_function() else {
            return Err(ErrorData::new(
                ErrorKind::NoSuchExport,
                "TypeError",
                format!(
                    "export '{export}' of container {} is not a function",
                    shared.cid
                ),
            ));
        };
        let mut call_args = Args::new(ctx.clone(), args.len());
        call_args.this(this).map_err(|e| errors::caught(ctx, e))?;
        for arg in args {
            call_args
                .push_arg(convert::to_js(ctx, arg)?)
                .map_err(|e| errors::caught(ctx, e))?;
        }
        let result: JsValue = func
            .call_arg(call_args)
            .map_err(|e| errors::caught(ctx, e))?;
        if let Some(promise) = result.clone().into_promise() {
            await_promise(ctx, shared, &promise, reply)?;
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

    /// Runs every queued promise job; past a limit, drops them instead (see
    /// [`Container::drop_jobs`]).
    pub(crate) fn run_jobs(&self) {
        let mut until_check = JOBS_PER_CHECK;
        loop {
            until_check -= 1;
            if until_check == 0 {
                until_check = JOBS_PER_CHECK;
                if let Some(error) = self.watch.over_limit() {
                    return self.drop_jobs(error);
                }
            }
            ffi::update_stack_top(&self.context);
            match self.runtime.execute_pending_job() {
                Ok(true) => {}
                Ok(false) => return,
                Err(job) => {
                    // A job throws only for what a promise cannot hold (an uncatchable error).
                    let error = job.0.with(|ctx| {
                        let e = ctx.catch();
                        errors::from_exception(&ctx, &e, ErrorKind::Thrown)
                    });
                    let error = self.error(error);
                    self.shared.link.uncaught(self.shared.cid, error);
                }
            }
        }
    }

    /// Ends a flood of promise jobs that went past a limit: every queued job is run with a
    /// one-byte stack budget, so each call into script code fails at its entry with a
    /// `RangeError` and nothing queues further work beyond rejecting the promise chains that
    /// were waiting (which is finite). The container stays usable; the dropped work is
    /// reported as uncaught.
    fn drop_jobs(&self, error: ErrorData) {
        // The calls waiting on this container's promises fail with the limit; the rejections
        // the dropping causes must not answer them first.
        let waiting = std::mem::take(&mut *self.shared.replies.borrow_mut());
        for id in waiting {
            self.shared.link.reply(ReplyTo(id), Err(error.clone()));
        }
        self.runtime.set_max_stack_size(1);
        let mut dropped: u64 = 0;
        // Bounded in case a job can still queue another without entering script code.
        while dropped < 10_000_000 {
            ffi::update_stack_top(&self.context);
            match self.runtime.execute_pending_job() {
                Ok(true) => dropped += 1,
                Ok(false) => break,
                Err(job) => {
                    job.0.with(|ctx| drop(ctx.catch()));
                    dropped += 1;
                }
            }
        }
        self.runtime.set_max_stack_size(self.stack);
        // The rejections made while dropping are this report, not script errors.
        self.shared.rejections.borrow_mut().clear();
        let message = format!(
            "{}; {dropped} queued promise jobs were dropped",
            error.message
        );
        self.shared
            .link
            .uncaught(self.shared.cid, ErrorData { message, ..error });
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
    pub(crate) fn fire_timer(&self, id: u32) {
        let firing = self
            .shared
            .timers
            .borrow_mut()
            .take_for_firing(id, &self.shared.clock);
        let Some((callback, args)) = firing else {
            return;
        };
        self.with(|ctx, shared| {
            let Ok(callback) = callback.restore(&ctx) else {
                return;
            };
            let mut call_args = Args::new(ctx.clone(), args.len());
            let pushed = args.into_iter().try_for_each(|a| match a.restore(&ctx) {
                Ok(v) => call_args.push_arg(v),
                Err(e) => Err(e),
            });
            let outcome = pushed.and_then(|()| callback.call_arg::<JsValue>(call_args));
            if let Err(e) = outcome {
                let error = self.error(errors::caught(&ctx, e));
                shared.link.uncaught(shared.cid, error);
            }
        });
    }

    /// Reports promise rejections nobody handled by now.
    pub(crate) fn report_rejections(&self) {
        if self.shared.rejections.borrow().is_empty() {
            return;
        }
        self.with(|ctx, shared| {
            let rejections = std::mem::take(&mut *shared.rejections.borrow_mut());
            for r in rejections {
                let Ok(reason) = r.reason.restore(&ctx) else {
                    continue;
                };
                let mut error = errors::from_exception(&ctx, &reason, ErrorKind::Thrown);
                if error.message.is_empty() {
                    error.message = "unhandled promise rejection".to_owned();
                }
                shared.link.uncaught(shared.cid, error);
            }
        });
    }

    /// Takes host call `id` off this container's list, if it is this container's.
    pub(crate) fn take_host_call(&self, id: HostCallId) -> Option<HostCall> {
        let call = self.shared.host_calls.borrow_mut().remove(&id);
        call
    }

    /// Settles a host call taken with [`Container::take_host_call`].
    pub(crate) fn settle_host_call(&self, call: HostCall, result: Result<Value, ErrorData>) {
        self.with(|ctx, shared| globals::settle(&ctx, shared, call, result));
    }

    /// Whether the container has nothing left to do.
    pub(crate) fn is_idle(&self) -> bool {
        self.shared.timers.borrow().is_empty()
            && self.shared.host_calls.borrow().is_empty()
            && self.shared.replies.borrow().is_empty()
            && !self.runtime.is_job_pending()
    }

    /// Whether promise jobs are queued.
    pub(crate) fn has_jobs(&self) -> bool {
        self.runtime.is_job_pending()
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

/// Answers `reply` when `promise` settles, through `then` callbacks that hold no JS values
/// (so nothing is left for the garbage collector to miss).
fn await_promise<'js>(
    ctx: &Ctx<'js>,
    shared: &Rc<Shared>,
    promise: &Promise<'js>,
    reply: ReplyTo,
) -> Result<(), ErrorData> {
    shared.replies.borrow_mut().insert(reply.0);
    let on_ok = {
        let shared = shared.clone();
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, value: Opt<JsValue<'js>>| {
                if take_reply(&shared, reply) {
                    let value = value
                        .0
                        .unwrap_or_else(|| JsValue::new_undefined(ctx.clone()));
                    let result = convert::to_value(&ctx, &value).map(Reply::Value);
                    shared.link.reply(reply, result);
                }
            },
        )
    };
    let on_err = {
        let shared = shared.clone();
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, reason: Opt<JsValue<'js>>| {
                if take_reply(&shared, reply) {
                    let reason = reason
                        .0
                        .unwrap_or_else(|| JsValue::new_undefined(ctx.clone()));
                    let error = errors::from_exception(&ctx, &reason, ErrorKind::Thrown);
                    shared.link.reply(reply, Err(error));
                }
            },
        )
    };
    let attached = on_ok.and_then(|ok| {
        on_err.and_then(|err| {
            promise
                .then()?
                .call::<_, JsValue>((This(promise.clone()), ok, err))
        })
    });
    attached.map(|_| ()).map_err(|e| {
        shared.replies.borrow_mut().remove(&reply.0);
        errors::caught(ctx, e)
    })
}

/// Claims the right to answer `reply` (a script could call a captured callback twice).
fn take_reply(shared: &Shared, reply: ReplyTo) -> bool {
    let taken = shared.replies.borrow_mut().remove(&reply.0);
    taken
}

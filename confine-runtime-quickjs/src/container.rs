//! One container: its own QuickJS runtime and context, and what is pending on it.
//!
//! A runtime per container (not a context per container on a shared runtime) keeps each
//! container's heap, job queue, stack limit and, later, memory limit separate; creating one
//! costs about 0.1 ms.

use crate::{
    console, convert, errors, ffi, globals,
    loader::DenyImports,
    source::{self, Exports},
    state::{Clock, HostCall, Shared},
    timers,
};
use confine_runtime_abstract::{
    protocol::{GlobalDef, Reply, Source},
    ContainerId, Deadline, ErrorData, ErrorKind, HostCallId, Link, ReplyTo, Value,
};
use rquickjs::{
    function::{Args, Opt, This},
    promise::PromiseState,
    Context, Ctx, Function, Persistent, Promise, Runtime, Value as JsValue,
};
use std::{
    cell::Cell,
    rc::Rc,
    time::{Duration, Instant},
};

/// The JS stack budget. The guest's main thread has 8 MiB; QuickJS needs native stack beyond
/// its budget to build the `RangeError` (and Rust frames sit below it), so the budget stays
/// well inside.
pub(crate) const MAX_STACK: usize = 512 * 1024;

/// The wall-time deadline QuickJS's interrupt handler checks, shared with the handler.
#[derive(Default)]
pub(crate) struct Watch {
    deadline: Cell<Option<Deadline>>,
    /// Set by the handler when it stopped script code: the limit that was passed.
    fired: Cell<Option<Duration>>,
}

impl Watch {
    /// The handler: QuickJS calls it every few thousand operations, so reading the clock
    /// each time is cheap next to the work in between (a vDSO call, no syscall).
    fn should_interrupt(&self) -> bool {
        match self.deadline.get() {
            Some(d) if Instant::now() >= d.at => {
                self.fired.set(Some(d.limit));
                true
            }
            _ => false,
        }
    }

    /// `e`, or the timeout error if the handler stopped the code that failed with it.
    fn error(&self, e: ErrorData) -> ErrorData {
        match self.fired.take() {
            Some(limit) => ErrorData::timeout(limit),
            None => e,
        }
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
        deadline: Option<Deadline>,
    ) -> Result<Container, ErrorData> {
        let engine = |e: rquickjs::Error| ErrorData::internal(format!("QuickJS: {e}"));
        let runtime = Runtime::new().map_err(engine)?;
        runtime.set_max_stack_size(MAX_STACK);
        let watch = Rc::new(Watch::default());
        watch.deadline.set(deadline);
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
        let context = Context::full(&runtime).map_err(engine)?;
        let mut container = Container {
            exports: None,
            shared,
            watch,
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
        let loaded = loaded.map_err(|e| container.watch.error(e))?;
        container.exports = Some(loaded.exports);
        if let Some(evaluation) = loaded.evaluation {
            container
                .finish_module(evaluation)
                .map_err(|e| container.watch.error(e))?;
        }
        Ok(container)
    }

    /// Sets the deadline the interrupt handler enforces.
    pub(crate) fn set_deadline(&self, deadline: Option<Deadline>) {
        self.watch.deadline.set(deadline);
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
        self.watch.fired.set(None);
        self.with(|ctx, shared| {
            let result = self.start_call(&ctx, shared, exports, export, args, reply);
            match result {
                Ok(Some(value)) => shared.link.reply(reply, Ok(Reply::Value(value))),
                Ok(None) => {}
                Err(e) => shared.link.reply(reply, Err(self.watch.error(e))),
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

    /// Runs every queued promise job.
    pub(crate) fn run_jobs(&self) {
        loop {
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
                    let error = self.watch.error(error);
                    self.shared.link.uncaught(self.shared.cid, error);
                }
            }
        }
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
                let error = self.watch.error(errors::caught(&ctx, e));
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

//! The job queue of one container's context.
//!
//! boa hands every job (promise reactions, module loading steps, `queueMicrotask`) to the
//! context's [`JobExecutor`]. boa's own `SimpleJobExecutor` runs everything to completion and
//! stops at the first error; a container instead needs to run what is queued now, report a
//! failing job and go on, and say whether anything is left (for `is_idle`). So the queue is
//! ours, and [`Jobs::run`] is called from `run_pending`.
//!
//! What boa queues, and what becomes of it here:
//!
//! * promise jobs and generic jobs: run in order;
//! * async jobs (module loading, dynamic `import()`): started and polled once. With the
//!   import-refusing loader they finish on that first poll. A future that is still pending
//!   borrows the context and cannot be kept across turns, so it is dropped;
//! * `FinalizationRegistry` cleanup jobs (async jobs that wait for the collector) and the
//!   timeout jobs of `Atomics.waitAsync`: dropped. Cleanup callbacks are allowed never to run,
//!   and a single-threaded guest has nobody to `Atomics.notify` it.

use boa_engine::{
    job::{GenericJob, Job, JobExecutor, NativeAsyncJob, PromiseJob},
    Context, JsError, JsResult,
};
use std::{
    cell::RefCell,
    collections::VecDeque,
    future::Future,
    pin::pin,
    rc::Rc,
    task::{Context as TaskContext, Poll, Waker},
};

/// How many jobs run between checks of the container's limits.
const JOBS_PER_CHECK: u32 = 256;

/// One queued job.
enum Queued {
    Promise(PromiseJob),
    Generic(GenericJob),
    Async(NativeAsyncJob),
}

/// A container's job queue (FIFO).
#[derive(Default)]
pub(crate) struct Jobs {
    queue: RefCell<VecDeque<Queued>>,
}

impl Jobs {
    /// Whether jobs are queued.
    pub(crate) fn is_pending(&self) -> bool {
        !self.queue.borrow().is_empty()
    }

    /// Runs queued jobs, including those they queue, until none is left; `on_error` gets
    /// what a job fails with (a promise job fails only with an uncatchable engine error).
    pub(crate) fn run(&self, ctx: &mut Context, on_error: impl FnMut(&mut Context, JsError)) {
        self.run_checked(ctx, on_error, || false);
    }

    /// [`Jobs::run`], asking `stop` every [`JOBS_PER_CHECK`] jobs whether to go on: once it
    /// says stop, every queued job is dropped (a flood of promise jobs past a time limit),
    /// and the number dropped is returned.
    pub(crate) fn run_checked(
        &self,
        ctx: &mut Context,
        mut on_error: impl FnMut(&mut Context, JsError),
        mut stop: impl FnMut() -> bool,
    ) -> usize {
        let mut until_check = JOBS_PER_CHECK;
        loop {
            until_check -= 1;
            if until_check == 0 {
                until_check = JOBS_PER_CHECK;
                if stop() {
                    let dropped = std::mem::take(&mut *self.queue.borrow_mut());
                    let n = dropped.len();
                    drop(dropped);
                    ctx.clear_kept_objects();
                    return n;
                }
            }
            // The borrow ends before the job runs: a job queues more jobs.
            let next = self.queue.borrow_mut().pop_front();
            let Some(job) = next else {
                break;
            };
            let result = match job {
                Queued::Promise(job) => job.call(ctx).map(drop),
                Queued::Generic(job) => job.call(ctx).map(drop),
                Queued::Async(job) => poll_once(job, ctx),
            };
            if let Err(e) = result {
                on_error(ctx, e);
            }
        }
        // `WeakRef` targets are kept alive until the current job queue has drained.
        ctx.clear_kept_objects();
        0
    }

    /// Drops every queued job (the container is going away).
    pub(crate) fn clear(&self) {
        let jobs = std::mem::take(&mut *self.queue.borrow_mut());
        drop(jobs);
    }
}

/// Starts an async job and polls it once (see the module docs).
fn poll_once(job: NativeAsyncJob, ctx: &mut Context) -> JsResult<()> {
    let cell = RefCell::new(ctx);
    let future = pin!(job.call(&cell));
    let mut task = TaskContext::from_waker(Waker::noop());
    match future.poll(&mut task) {
        Poll::Ready(result) => result.map(drop),
        Poll::Pending => Ok(()),
    }
}

impl JobExecutor for Jobs {
    fn enqueue_job(self: Rc<Self>, job: Job, _context: &mut Context) {
        let queued = match job {
            Job::PromiseJob(job) => Queued::Promise(job),
            Job::GenericJob(job) => Queued::Generic(job),
            Job::AsyncJob(job) => Queued::Async(job),
            // See the module docs for why these are dropped.
            _ => return,
        };
        self.queue.borrow_mut().push_back(queued);
    }

    /// Runs everything queued; the first error is returned after the queue has drained.
    fn run_jobs(self: Rc<Self>, context: &mut Context) -> JsResult<()> {
        let mut first = None;
        self.run(context, |_, e| {
            first.get_or_insert(e);
        });
        first.map_or(Ok(()), Err)
    }
}

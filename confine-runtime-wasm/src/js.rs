//! JavaScript containers: one instance of the JS plugin (QuickJS compiled to `wasm32-wasip1`,
//! `js-plugin/`) per container, driven through the private ABI in `js_abi.rs`.
//!
//! The plugin runs confine's native QuickJS runtime code for its one container, so what
//! script code sees is the `quickjs` runtime's behaviour; this side only moves messages:
//!
//! * every request for the container (exec, call, host answer, define globals, "run what is
//!   due") becomes one [`Command`], dispatched into the instance as a *task* (a future owning
//!   the store, polled like the module containers' tasks in `container.rs`). Nothing in a
//!   dispatch waits for the host, so a task only stays pending when an epoch tick made a long
//!   computation yield to the serve loop; commands that arrive meanwhile queue, in order;
//! * the plugin's answer carries the messages its `Link` queued. Responses pass through (the
//!   request ids are the host's); a host call gets an id from this runtime's `Link`, mapped
//!   back to the plugin's id when the host answers; logs and uncaught errors are forwarded;
//! * the answer also says when the container next has work of its own (a timer), which
//!   `run_pending` turns into a [`Command::RunPending`] then.
//!
//! A trap inside the plugin (wasm stack exhausted, the epoch backstop of a time limit, an
//! allocation failure in Rust code) unwinds QuickJS without running its cleanup, so the
//! instance is not trusted again: the request that trapped gets the trap as its error; every
//! other open call, and every later request, an error that says the container's engine
//! stopped. A request that cannot even be placed in the instance's memory (over its memory
//! limit) is refused with a `RangeError` instead, and the container carries on.
//!
//! A new container normally starts on a [`Spare`]: an instance the runtime made ahead of
//! time, so that creating the container costs only the plugin's work for it.

use crate::{
    errors,
    host::{lock, Budget, Host, Io},
    js_abi::{self, Answer, Command, Remaining, Request},
    options::Limits,
    ticker::Ticker,
};
use confine_runtime_abstract::{
    codec,
    protocol::{GlobalDef, GuestMessage, GuestRequest, LogLevel, Source},
    support::thread_cpu_time,
    ContainerId, CpuDeadline, Deadline, ErrorData, ErrorKind, HostCallId, LimitKind, Link, ReplyTo,
    RequestId, Value,
};
use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};
use wasmtime::{Engine, Instance, InstancePre, Memory, Store, TypedFunc};

/// How much later than a container's own time limit the epoch backstop stops the instance:
/// QuickJS's interrupt handler normally stops script code first, with an uncatchable but
/// clean `TimeoutError` that leaves the container usable; the backstop only catches code
/// stuck where QuickJS does not check (a long native builtin).
const BACKSTOP_GRACE: Duration = Duration::from_millis(250);

/// The plugin's exports a dispatch uses.
#[derive(Clone)]
pub(crate) struct Funcs {
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    free: TypedFunc<(i32, i32), ()>,
    dispatch: TypedFunc<(i32, i32), i64>,
}

impl Funcs {
    /// Finds the exports and checks the plugin speaks this ABI version.
    pub(crate) async fn of(store: &mut Store<Host>, instance: Instance) -> Result<Self, ErrorData> {
        let missing = |what: &str| {
            ErrorData::internal(format!(
                "the JS plugin lacks {what}; rebuild it with `cargo xtask wasm-plugin`"
            ))
        };
        let version = instance
            .get_typed_func::<(), i32>(&mut *store, js_abi::VERSION_EXPORT)
            .map_err(|_| missing("`confine_js_version`"))?
            .call_async(&mut *store, ())
            .await
            .map_err(errors::from_trap)?;
        if version != js_abi::VERSION {
            return Err(ErrorData::internal(format!(
                "the JS plugin speaks ABI version {version}, this runtime {}; rebuild it with \
                 `cargo xtask wasm-plugin`",
                js_abi::VERSION
            )));
        }
        Ok(Funcs {
            memory: instance
                .get_memory(&mut *store, "memory")
                .ok_or_else(|| missing("a memory export"))?,
            alloc: instance
                .get_typed_func(&mut *store, crate::abi::ALLOC)
                .map_err(|_| missing("`confine_alloc`"))?,
            free: instance
                .get_typed_func(&mut *store, crate::abi::FREE)
                .map_err(|_| missing("`confine_free`"))?,
            dispatch: instance
                .get_typed_func(&mut *store, js_abi::DISPATCH)
                .map_err(|_| missing("`confine_js_dispatch`"))?,
        })
    }
}

/// How a new container gets its plugin instance.
pub(crate) enum Start {
    /// Instantiated for it.
    Fresh(InstancePre<Host>),
    /// Instantiated ahead of time.
    Spare(Box<Spare>),
}

/// A plugin instance made ahead of time, while the serve loop had nothing to do, so that a
/// new container only pays for its own code: instantiation (memory mapping, data segments,
/// the plugin's start code) is about a fifth of a new container's time.
pub(crate) struct Spare {
    store: Store<Host>,
    io: Arc<Mutex<Io>>,
    funcs: Funcs,
}

impl Spare {
    /// Instantiates the plugin and runs its start code, under the default limits.
    pub(crate) fn new(
        engine: &Engine,
        pre: &InstancePre<Host>,
        budget: &Arc<Budget>,
        ticker: &Ticker,
    ) -> Result<Self, ErrorData> {
        let io = Arc::new(Mutex::new(Io::default()));
        let limits = Limits::default();
        let mut store = crate::container::new_store(engine, io.clone(), budget, &limits);
        store.data_mut().soft_memory = true;
        crate::container::arm(&mut store, &limits);
        let funcs = {
            let mut work = std::pin::pin!(instantiate(&mut store, pre));
            loop {
                let _ticking = ticker.active();
                // Only epoch ticks make this pending (nothing here waits for the host).
                if let Poll::Ready(r) = work.as_mut().poll(&mut Context::from_waker(Waker::noop()))
                {
                    break r;
                }
            }
        };
        let funcs = funcs.map_err(|f| match f {
            Failure::Refused(e) | Failure::Trapped(e) => e,
        })?;
        // No heap is made resident ahead any more (`confine_js_prefault`, before the
        // snapshot): the snapshot's heap has room for a small container, and measured
        // (release) ready p50 stayed at 62-64 µs without it while a create-and-kill cycle
        // took 383 µs instead of 669 µs.
        Ok(Spare { store, io, funcs })
    }

    /// `true` if the instance's memory is within `limits` (instantiating under them would
    /// have failed otherwise).
    pub(crate) fn fits(&self, limits: &Limits) -> bool {
        self.funcs.memory.data_size(&self.store) <= limits.memory
    }
}

/// What a finished task produced.
pub(crate) struct Done {
    /// Set by the first task (instantiation + exec).
    funcs: Option<Funcs>,
    pub(crate) answer: Answer,
}

/// Why a dispatch produced no answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Nothing ran in the plugin (the request could not be encoded, or not placed in its
    /// memory, which is at its limit): the instance is intact.
    Refused(ErrorData),
    /// The plugin trapped or broke the ABI: its state is not trusted again.
    Trapped(ErrorData),
}

impl From<ErrorData> for Failure {
    fn from(e: ErrorData) -> Self {
        Failure::Trapped(e)
    }
}

type Task = Pin<Box<dyn Future<Output = (Store<Host>, Result<Done, Failure>)>>>;

/// The task in flight and what it was for.
struct Running {
    task: Task,
    /// The task creates the container (its outcome is the exec's).
    exec: bool,
    /// The call this task started, if it is a call: a trap is that call's error.
    reply: Option<RequestId>,
    /// The task defines globals (a refused request is that definition's error).
    define: bool,
}

/// A live JavaScript container.
pub(crate) struct JsContainer {
    cid: ContainerId,
    link: Link,
    limits: Limits,
    io: Arc<Mutex<Io>>,
    /// The store, when no task holds it.
    store: Option<Store<Host>>,
    funcs: Option<Funcs>,
    running: Option<Running>,
    queue: VecDeque<Command>,
    /// Calls handed to the plugin and not answered yet.
    owed: BTreeSet<RequestId>,
    /// Host calls in flight: this runtime's id → the plugin's.
    host_calls: HashMap<HostCallId, HostCallId>,
    /// The serve loop's deadline for the container's script code.
    deadline: Option<Deadline>,
    /// The serve loop's CPU-time deadline (the guest thread's CPU clock).
    cpu: Option<CpuDeadline>,
    /// When the plugin next has work of its own.
    next: Option<Instant>,
    /// The plugin said it has nothing pending.
    plugin_idle: bool,
    /// How creating the container went, once the first task finished.
    exec_result: Option<Result<(), ErrorData>>,
    /// The first error of the last `DefineGlobals` command.
    define_error: Option<ErrorData>,
    /// Why the instance cannot be used any more.
    broken: Option<ErrorData>,
}

impl JsContainer {
    /// Creates the store and starts the first task: instantiate the plugin, run its start
    /// code, and create the container from `source` (not polled yet).
    #[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
    pub(crate) fn new(
        engine: &Engine,
        start: Start,
        cid: ContainerId,
        link: Link,
        budget: &Arc<Budget>,
        limits: Limits,
        source: &Source,
        options: &Value,
        globals: &[GlobalDef],
        (deadline, cpu): (Option<Deadline>, Option<CpuDeadline>),
    ) -> Self {
        let (io, mut store, ready) = match start {
            Start::Fresh(pre) => {
                let io = Arc::new(Mutex::new(Io::default()));
                let store = crate::container::new_store(engine, io.clone(), budget, &limits);
                (io, store, Err(pre))
            }
            Start::Spare(spare) => {
                let mut store = spare.store;
                // The container's clock (timers, `performance.now()`) counts from its
                // creation, not from the spare's. Nothing in the plugin has read it yet: the
                // snapshot's clock read zero.
                store.data_mut().started = Instant::now();
                (spare.io, store, Ok(spare.funcs))
            }
        };
        // QuickJS sees a failed `memory.grow` as a failed `malloc` and throws a JS error;
        // stopping the instance instead would lose the container.
        store.data_mut().soft_memory = true;
        let mut container = JsContainer {
            cid,
            link,
            limits,
            io,
            store: None,
            funcs: None,
            running: None,
            queue: VecDeque::new(),
            owed: BTreeSet::new(),
            host_calls: HashMap::new(),
            deadline,
            cpu,
            next: None,
            plugin_idle: true,
            exec_result: None,
            define_error: None,
            broken: None,
        };
        let request = container.encode(Command::Exec {
            cid,
            source: source.clone(),
            options: options.clone(),
            globals: globals.to_vec(),
            limits: container.link.limits(),
        });
        arm(&mut store, &container.limits, container.cpu);
        let task: Task = Box::pin(async move {
            let result = match (request, ready) {
                (Ok(request), Err(pre)) => create(&mut store, &pre, &request).await,
                (Ok(request), Ok(funcs)) => {
                    dispatch(&mut store, &funcs, &request)
                        .await
                        .map(|answer| Done {
                            funcs: Some(funcs),
                            answer,
                        })
                }
                (Err(e), _) => Err(Failure::Refused(e)),
            };
            (store, result)
        });
        container.running = Some(Running {
            task,
            exec: true,
            reply: None,
            define: false,
        });
        container
    }

    /// How creating the container went; `None` while the first task runs.
    pub(crate) fn exec_result(&self) -> Option<&Result<(), ErrorData>> {
        self.exec_result.as_ref()
    }

    /// New limits, for the next dispatch.
    pub(crate) fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The serve loop's deadline, applied from the next dispatch on.
    pub(crate) fn set_deadline(&mut self, deadline: Option<Deadline>) {
        self.deadline = deadline;
    }

    /// The serve loop's CPU-time deadline, applied from the next dispatch on.
    pub(crate) fn set_cpu_deadline(&mut self, deadline: Option<CpuDeadline>) {
        self.cpu = deadline;
    }

    /// Queues a call.
    pub(crate) fn call(&mut self, export: &str, args: Vec<Value>, reply: ReplyTo) {
        if let Some(e) = &self.broken {
            self.link.reply(reply, Err(e.clone()));
            return;
        }
        self.owed.insert(reply.0);
        self.queue.push_back(Command::Call {
            export: export.to_owned(),
            args,
            reply: reply.0,
        });
        self.start_next();
    }

    /// Queues more globals and runs until they are defined (or the time limit stops the
    /// work queued before them); returns the first definition error.
    pub(crate) fn define_globals(
        &mut self,
        globals: &[GlobalDef],
        ticker: &Ticker,
    ) -> Result<(), ErrorData> {
        if self.broken.is_some() {
            return Ok(());
        }
        self.define_error = None;
        self.queue
            .push_back(Command::DefineGlobals(globals.to_vec()));
        self.start_next();
        while self.runnable() {
            self.step(ticker);
        }
        self.define_error.take().map_or(Ok(()), Err)
    }

    /// `true` if host call `id` (this runtime's id) is this container's.
    pub(crate) fn waits_for(&self, id: HostCallId) -> bool {
        self.host_calls.contains_key(&id)
    }

    /// The host answered host call `id` (this runtime's id).
    pub(crate) fn settle(&mut self, id: HostCallId, result: Result<Value, ErrorData>) {
        let Some(inner) = self.host_calls.remove(&id) else {
            return;
        };
        if self.broken.is_none() {
            self.queue.push_back(Command::Settle { id: inner, result });
            self.start_next();
        }
    }

    /// Forgets call `reply`, which the serve loop answered at its deadline.
    pub(crate) fn abandon(&mut self, reply: ReplyTo) -> bool {
        if !self.owed.remove(&reply.0) {
            return false;
        }
        let queued = self
            .queue
            .iter()
            .position(|c| matches!(c, Command::Call { reply: r, .. } if *r == reply.0));
        match queued {
            Some(i) => {
                self.queue.remove(i);
            }
            None if self.broken.is_none() => {
                self.queue.push_back(Command::Abandon(reply.0));
                self.start_next();
            }
            None => {}
        }
        true
    }

    /// A task is running: polling it makes progress.
    pub(crate) fn runnable(&self) -> bool {
        self.running.is_some()
    }

    /// Starts the work that is due by `now` (a timer), if nothing else is in flight.
    pub(crate) fn due(&mut self, now: Instant) {
        if self.broken.is_none()
            && self.running.is_none()
            && self.queue.is_empty()
            && self.next.is_some_and(|t| t <= now)
        {
            self.next = None;
            self.queue.push_back(Command::RunPending);
            self.start_next();
        }
    }

    /// When the container next has work of its own.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.next.filter(|_| self.broken.is_none())
    }

    /// Nothing running or queued, and nothing pending inside the plugin.
    pub(crate) fn is_idle(&self) -> bool {
        self.broken.is_some()
            || (self.running.is_none()
                && self.queue.is_empty()
                && self.host_calls.is_empty()
                && self.plugin_idle)
    }

    /// Answers every open call; the instance is dropped with the container.
    pub(crate) fn kill(&mut self) {
        self.running = None;
        self.queue.clear();
        for id in std::mem::take(&mut self.owed) {
            self.link
                .reply(ReplyTo(id), Err(errors::no_such_container(self.cid)));
        }
    }

    /// Polls the running task once, handles what it produced, and starts the next command.
    pub(crate) fn step(&mut self, ticker: &Ticker) {
        let Some(running) = self.running.as_mut() else {
            return;
        };
        let poll = {
            let _ticking = ticker.active();
            running
                .task
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
        };
        let Poll::Ready((store, result)) = poll else {
            self.forward_output(false);
            return;
        };
        let Some(running) = self.running.take() else {
            return;
        };
        let mut store = store;
        let refused = store.data_mut().take_refused();
        self.store = Some(store);
        // What the plugin said last before a trap: a Rust panic's message (the plugin aborts
        // on panic), which the trap itself (`unreachable`) does not carry.
        let said = match &result {
            Err(Failure::Trapped(_)) => last_words(&lock(&self.io).stderr),
            _ => None,
        };
        self.forward_output(true);
        match result {
            Ok(done) => {
                if done.funcs.is_some() {
                    self.funcs = done.funcs;
                }
                self.take_answer(running.exec, done.answer, refused);
            }
            Err(Failure::Trapped(mut e)) => {
                if let Some(said) = said {
                    e.message = format!("{} (the plugin wrote: {said})", e.message);
                }
                // Rust code in the plugin aborts where QuickJS would throw.
                if let Some(limit) = refused {
                    e = memory_limit(limit, &e.message);
                }
                self.trapped(&running, e)
            }
            Err(Failure::Refused(e)) => self.refused(&running, e),
        }
        self.start_next();
    }

    /// `refused`: the memory limit that refused a growth while the plugin ran, if one did:
    /// QuickJS's out-of-memory errors from then are that limit's.
    fn take_answer(&mut self, exec: bool, answer: Answer, refused: Option<usize>) {
        let now = Instant::now();
        self.next = answer
            .next_nanos
            .map(|n| now + Duration::from_nanos(n.min(u64::MAX >> 2)));
        self.plugin_idle = answer.idle;
        let as_limit = |e: ErrorData| match refused {
            Some(limit) if is_out_of_memory(&e) => memory_limit(limit, "out of memory"),
            _ => e,
        };
        for message in answer.messages {
            let message = match message {
                GuestMessage::Response { id, result: Err(e) } => GuestMessage::Response {
                    id,
                    result: Err(as_limit(e)),
                },
                GuestMessage::Uncaught { cid, error } => GuestMessage::Uncaught {
                    cid,
                    error: as_limit(error),
                },
                other => other,
            };
            self.forward(message);
        }
        let result = answer.result.map_err(as_limit);
        match result {
            Err(e) if exec => self.exec_result = Some(Err(e)),
            Err(e) => {
                self.define_error.get_or_insert(e);
            }
            Ok(()) if exec => self.exec_result = Some(Ok(())),
            Ok(()) => {}
        }
    }

    fn forward(&mut self, message: GuestMessage) {
        match message {
            GuestMessage::Response { id, result } => {
                // An id no longer owed was abandoned (answered at its deadline) or killed.
                if self.owed.remove(&id) {
                    self.link.send(GuestMessage::Response { id, result });
                }
            }
            GuestMessage::Request {
                id,
                request: GuestRequest::HostCall { path, args, .. },
            } => {
                let ours = self.link.call_host(self.cid, path, args);
                self.host_calls.insert(ours, id);
            }
            GuestMessage::Log { level, message, .. } => self.link.log(self.cid, level, message),
            GuestMessage::Uncaught { error, .. } => self.link.uncaught(self.cid, error),
            // Only the serve loop says `Ready`.
            GuestMessage::Ready { .. } => {}
        }
    }

    /// The request could not be handed to the plugin: `e` answers what it was for.
    fn refused(&mut self, running: &Running, e: ErrorData) {
        if running.exec {
            self.exec_result = Some(Err(e));
        } else if let Some(reply) = running.reply.filter(|r| self.owed.remove(r)) {
            self.link.reply(ReplyTo(reply), Err(e));
        } else if running.define {
            self.define_error.get_or_insert(e);
        } else {
            self.link.uncaught(self.cid, e);
        }
    }

    /// The instance trapped: `e` answers what the task was for; the container is broken.
    fn trapped(&mut self, running: &Running, e: ErrorData) {
        if running.exec {
            self.exec_result = Some(Err(e));
            return;
        }
        let mut broken = ErrorData::new(
            e.kind,
            e.name.clone(),
            format!(
                "the JavaScript engine of container {} stopped ({}) and runs no more code",
                self.cid, e.message
            ),
        );
        broken.stack = e.stack.clone();
        match running.reply.filter(|r| self.owed.remove(r)) {
            Some(reply) => self.link.reply(ReplyTo(reply), Err(e)),
            None => self.link.uncaught(self.cid, e),
        }
        for id in std::mem::take(&mut self.owed) {
            self.link.reply(ReplyTo(id), Err(broken.clone()));
        }
        self.queue.clear();
        self.host_calls.clear();
        self.next = None;
        self.broken = Some(broken);
    }

    /// Starts the next queued command if nothing runs.
    fn start_next(&mut self) {
        if self.running.is_some() {
            return;
        }
        let Some(funcs) = self.funcs.clone() else {
            return;
        };
        let Some(command) = self.queue.pop_front() else {
            return;
        };
        let Some(mut store) = self.store.take() else {
            return;
        };
        let reply = match &command {
            Command::Call { reply, .. } => Some(*reply),
            _ => None,
        };
        let define = matches!(command, Command::DefineGlobals(_));
        let request = self.encode(command);
        arm(&mut store, &self.limits, self.cpu);
        let task: Task = Box::pin(async move {
            let result = match request {
                Ok(request) => dispatch(&mut store, &funcs, &request)
                    .await
                    .map(|answer| Done {
                        funcs: None,
                        answer,
                    }),
                Err(e) => Err(Failure::Refused(e)),
            };
            (store, result)
        });
        self.running = Some(Running {
            task,
            exec: false,
            reply,
            define,
        });
    }

    /// The request frame for `command`, with the deadline in force now: the serve loop's,
    /// or the container's own time limit if that is earlier.
    fn encode(&self, command: Command) -> Result<Vec<u8>, ErrorData> {
        let now = Instant::now();
        let own = self.limits.time.map(|limit| Deadline {
            at: now + limit,
            limit,
        });
        let deadline = match (self.deadline, own) {
            (Some(a), Some(b)) => Some(if a.at <= b.at { a } else { b }),
            (a, b) => a.or(b),
        };
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let deadline = deadline.map(|d| Remaining {
            nanos: nanos(d.at.saturating_duration_since(now)),
            limit_nanos: nanos(d.limit),
        });
        let cpu = self.cpu.map(|d| Remaining {
            nanos: nanos(d.at.saturating_sub(thread_cpu_time())),
            limit_nanos: nanos(d.limit),
        });
        codec::encode(
            &Request {
                deadline,
                cpu,
                command,
            },
            js_abi::MAX_BYTES,
        )
        .map_err(|e| ErrorData::new(ErrorKind::Limit, "RangeError", e.to_string()))
    }

    /// Forwards what the plugin wrote to stdout/stderr (QuickJS itself does not; a Rust
    /// panic message in the plugin does).
    fn forward_output(&mut self, all: bool) {
        let (out, err) = {
            let mut io = lock(&self.io);
            (
                crate::container::take_lines(&mut io.stdout, all),
                crate::container::take_lines(&mut io.stderr, all),
            )
        };
        for line in out {
            self.link.log(self.cid, LogLevel::Log, line);
        }
        for line in err {
            self.link.log(self.cid, LogLevel::Error, line);
        }
    }
}

/// QuickJS's error for a failed allocation: `InternalError: out of memory`, or `null` when
/// even that error could not be allocated.
fn is_out_of_memory(e: &ErrorData) -> bool {
    (e.name == "InternalError" && e.message == "out of memory")
        || (e.kind == ErrorKind::Thrown && e.name == "null")
}

/// The memory limit's error, as the `quickjs` runtime reports it.
fn memory_limit(limit: usize, what: &str) -> ErrorData {
    ErrorData::limit(
        LimitKind::Memory,
        format!("memory limit of {limit} bytes exceeded ({what})"),
    )
}

/// The last line or so of `stderr` (at most 500 bytes), if there is any.
fn last_words(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let start = text.len().saturating_sub(500);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    Some(text[start..].replace('\n', " / "))
}

/// Applies the limits for the next dispatch: the epoch backstops (time limit, CPU-time
/// deadline), memory and output.
fn arm(store: &mut Store<Host>, limits: &Limits, cpu: Option<CpuDeadline>) {
    crate::container::arm(store, limits);
    let host = store.data_mut();
    host.deadline = limits.time.map(|t| Instant::now() + t + BACKSTOP_GRACE);
    host.cpu_deadline = cpu.map(|d| CpuDeadline {
        at: d.at.saturating_add(BACKSTOP_GRACE),
        limit: d.limit,
    });
}

/// Instantiates the plugin, runs its start code, and dispatches the exec request.
pub(crate) async fn create(
    store: &mut Store<Host>,
    pre: &InstancePre<Host>,
    request: &[u8],
) -> Result<Done, Failure> {
    let funcs = instantiate(store, pre).await?;
    let answer = dispatch(store, &funcs, request).await?;
    Ok(Done {
        funcs: Some(funcs),
        answer,
    })
}

/// Instantiates the plugin and runs its start code.
async fn instantiate(store: &mut Store<Host>, pre: &InstancePre<Host>) -> Result<Funcs, Failure> {
    let instance = pre
        .instantiate_async(&mut *store)
        .await
        .map_err(errors::from_trap)?;
    if let Ok(init) = instance.get_typed_func::<(), ()>(&mut *store, "_initialize") {
        init.call_async(&mut *store, ())
            .await
            .map_err(errors::from_trap)?;
    }
    Ok(Funcs::of(store, instance).await?)
}

/// One crossing: the request in, the answer out.
pub(crate) async fn dispatch(
    store: &mut Store<Host>,
    funcs: &Funcs,
    request: &[u8],
) -> Result<Answer, Failure> {
    let plugin = |why: String| ErrorData::internal(format!("JS plugin: {why}"));
    let len = i32::try_from(request.len()).map_err(|_| {
        Failure::Refused(ErrorData::new(
            ErrorKind::Limit,
            "RangeError",
            "a request over 2 GiB for a JS container",
        ))
    })?;
    let ptr = funcs
        .alloc
        .call_async(&mut *store, len)
        .await
        .map_err(errors::from_trap)?;
    if ptr == 0 {
        return Err(Failure::Refused(ErrorData::new(
            ErrorKind::Limit,
            "RangeError",
            format!("the JS container has no room for a request of {len} bytes (memory limit)"),
        )));
    }
    funcs
        .memory
        .write(&mut *store, ptr as u32 as usize, request)
        .map_err(|_| plugin("allocator returned a pointer outside memory".into()))?;
    let packed = funcs
        .dispatch
        .call_async(&mut *store, (ptr, len))
        .await
        .map_err(errors::from_trap)? as u64;
    // (ptr << 32) | len, both unsigned 32-bit.
    let (out_ptr, out_len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
    let frame = funcs
        .memory
        .data(&*store)
        .get(out_ptr..out_ptr.saturating_add(out_len))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| plugin("answer outside memory".into()))?;
    funcs
        .free
        .call_async(&mut *store, (out_ptr as i32, out_len as i32))
        .await
        .map_err(errors::from_trap)?;
    let body = frame
        .get(codec::HEADER_LEN..)
        .ok_or_else(|| plugin("empty answer".into()))?;
    Ok(codec::decode_body(body).map_err(|e| plugin(format!("answer: {e}")))?)
}

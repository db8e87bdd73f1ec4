//! One container: a module instance in its own store, and the calls queued on it.
//!
//! Every piece of wasm code (instantiation and start, each export call) runs as a *task*: a
//! future that owns the store while it runs and hands it back when done. The runtime polls
//! tasks with a no-op waker from the serve loop's thread. A task returns `Pending` for exactly
//! two reasons:
//!
//! * the module called `confine.call_host` and waits for the host (`Io::waiting` is set): the
//!   task sleeps until `host_call_settled` fills in the answer;
//! * an epoch tick interrupted a long computation and the deadline callback yielded: the task
//!   is runnable again at once, after the serve loop has had a turn.
//!
//! That is how a host call is synchronous from the module's point of view (wasmtime runs the
//! module on a fiber and suspends it in the import) while the serve loop keeps serving other
//! containers and requests. One instance runs one task at a time (wasm code is not
//! re-entrant), so calls to a busy container wait in its queue, in order.

use crate::{
    abi,
    errors::{self, no_such_container},
    host::{lock, Budget, Host, Io},
    options::Limits,
    ticker::Ticker,
};
use confine_runtime_abstract::{
    protocol::{LogLevel, Reply},
    ContainerId, CpuDeadline, ErrorData, ErrorKind, HostCallId, Link, ReplyTo, Value,
};
use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, Waker},
    time::Instant,
};
use wasmtime::{Engine, Func, Instance, InstancePre, Store, UpdateDeadline, Val, ValType};

/// What a finished task produced.
enum Outcome {
    /// Instantiation (and `_initialize` / `_start`) finished.
    Started(Result<Instance, ErrorData>),
    /// An export call returned.
    Returned(Result<Value, ErrorData>),
}

type Task = Pin<Box<dyn Future<Output = (Store<Host>, Outcome)>>>;

struct Running {
    task: Task,
    /// Where the result goes; `None` for the start task.
    reply: Option<ReplyTo>,
}

struct Queued {
    export: String,
    args: Vec<Value>,
    reply: ReplyTo,
}

/// A live container.
pub(crate) struct Container {
    cid: ContainerId,
    link: Link,
    io: Arc<Mutex<Io>>,
    limits: Limits,
    /// The serve loop's CPU-time deadline (the guest thread's CPU clock), checked at every
    /// epoch tick while a task runs.
    cpu: Option<CpuDeadline>,
    /// The store, when no task holds it.
    store: Option<Store<Host>>,
    instance: Option<Instance>,
    /// Why the module could not start; later calls fail with it.
    failed: Option<ErrorData>,
    running: Option<Running>,
    queue: VecDeque<Queued>,
    /// `exec_container` has returned: a start failure from now on is reported as uncaught.
    detached: bool,
}

impl Container {
    /// Creates the store and starts the start task (not polled yet).
    pub(crate) fn new(
        engine: &Engine,
        pre: InstancePre<Host>,
        cid: ContainerId,
        link: Link,
        budget: &Arc<Budget>,
        limits: Limits,
        cpu: Option<CpuDeadline>,
    ) -> Self {
        let io = Arc::new(Mutex::new(Io::default()));
        let mut store = new_store(engine, io.clone(), budget, &limits);
        arm(&mut store, &limits);
        store.data_mut().cpu_deadline = cpu;
        let task: Task = Box::pin(async move {
            let result = start(&mut store, &pre).await;
            (store, Outcome::Started(result))
        });
        Container {
            cid,
            link,
            io,
            limits,
            cpu,
            store: None,
            instance: None,
            failed: None,
            running: Some(Running { task, reply: None }),
            queue: VecDeque::new(),
            detached: false,
        }
    }

    /// Marks the container as handed to the serve loop (see [`Container::detached`]).
    pub(crate) fn detach(&mut self) {
        self.detached = true;
    }

    /// The start failure, if the module failed to start.
    pub(crate) fn start_error(&self) -> Option<&ErrorData> {
        self.failed.as_ref()
    }

    /// New limits, for the next task.
    pub(crate) fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The serve loop's CPU-time deadline, for the next task.
    pub(crate) fn set_cpu_deadline(&mut self, deadline: Option<CpuDeadline>) {
        self.cpu = deadline;
    }

    /// Queues a call (it starts when the container is free).
    pub(crate) fn call(&mut self, export: &str, args: Vec<Value>, reply: ReplyTo) {
        self.queue.push_back(Queued {
            export: export.to_owned(),
            args,
            reply,
        });
        self.start_next();
    }

    /// A task is running and not waiting for the host: polling it makes progress.
    pub(crate) fn runnable(&self) -> bool {
        self.running.is_some() && lock(&self.io).waiting.is_none()
    }

    /// Nothing running, nothing queued.
    pub(crate) fn is_idle(&self) -> bool {
        self.running.is_none() && self.queue.is_empty()
    }

    /// `true` if this container's running task waits for host call `id`.
    pub(crate) fn waits_for(&self, id: HostCallId) -> bool {
        lock(&self.io).waiting == Some(id)
    }

    /// Gives the waiting task the host's answer; it runs on at the next step.
    pub(crate) fn settle(&self, result: Result<Value, ErrorData>) {
        let mut io = lock(&self.io);
        io.waiting = None;
        io.answer = Some(result);
    }

    /// Polls the running task once (until it finishes, waits for the host, or yields on a
    /// tick), forwards what it produced, and starts the next queued call when it finished.
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
        self.forward(false);
        let Poll::Ready((store, outcome)) = poll else {
            return;
        };
        let reply = self.running.take().and_then(|r| r.reply);
        self.store = Some(store);
        self.forward(true);
        match outcome {
            Outcome::Started(Ok(instance)) => self.instance = Some(instance),
            Outcome::Started(Err(e)) => {
                if self.detached {
                    self.link.uncaught(self.cid, e.clone());
                }
                self.failed = Some(e);
            }
            Outcome::Returned(result) => {
                if let Some(to) = reply {
                    self.link.reply(to, result.map(Reply::Value));
                }
            }
        }
        self.start_next();
    }

    /// Fails everything pending; the store is dropped with the container.
    pub(crate) fn kill(&mut self) {
        if let Some(Running {
            reply: Some(to), ..
        }) = self.running.take()
        {
            self.link.reply(to, Err(no_such_container(self.cid)));
        }
        for q in self.queue.drain(..) {
            self.link.reply(q.reply, Err(no_such_container(self.cid)));
        }
    }

    /// Sends a host call the module made, and console output: complete lines, or everything
    /// when `all` (a task finished).
    fn forward(&mut self, all: bool) {
        let (request, out, err) = {
            let mut io = lock(&self.io);
            let request = io.request.take();
            (
                request,
                take_lines(&mut io.stdout, all),
                take_lines(&mut io.stderr, all),
            )
        };
        for line in out {
            self.link.log(self.cid, LogLevel::Log, line);
        }
        for line in err {
            self.link.log(self.cid, LogLevel::Error, line);
        }
        if let Some((path, args)) = request {
            let id = self.link.call_host(self.cid, path, args);
            lock(&self.io).waiting = Some(id);
        }
    }

    /// Starts queued calls until one is running (calls that fail at once are answered).
    fn start_next(&mut self) {
        while self.running.is_none() {
            let Some(q) = self.queue.pop_front() else {
                return;
            };
            if let Some(e) = &self.failed {
                let mut e = e.clone();
                e.message = format!("the module failed to start: {}", e.message);
                self.link.reply(q.reply, Err(e));
                continue;
            }
            let (Some(mut store), Some(instance)) = (self.store.take(), self.instance) else {
                self.link.reply(
                    q.reply,
                    Err(ErrorData::internal("container has no instance")),
                );
                continue;
            };
            match prepare(&mut store, instance, &q.export, q.args) {
                Ok(call) => {
                    arm(&mut store, &self.limits);
                    store.data_mut().cpu_deadline = self.cpu;
                    let task: Task = Box::pin(async move {
                        let result = call.run(&mut store, instance).await;
                        (store, Outcome::Returned(result))
                    });
                    self.running = Some(Running {
                        task,
                        reply: Some(q.reply),
                    });
                }
                Err(e) => {
                    self.store = Some(store);
                    self.link.reply(q.reply, Err(e));
                }
            }
        }
    }
}

/// A container's store: its [`Host`] data, the memory limiter, and the epoch callback that
/// stops a task at its deadline or yields to the serve loop.
pub(crate) fn new_store(
    engine: &Engine,
    io: Arc<Mutex<Io>>,
    budget: &Arc<Budget>,
    limits: &Limits,
) -> Store<Host> {
    let mut store = Store::new(
        engine,
        Host::new(
            io,
            budget.clone(),
            limits.memory,
            limits.table,
            limits.output,
        ),
    );
    store.limiter(|host| host);
    store.epoch_deadline_callback(|ctx| {
        if ctx.data().deadline.is_some_and(|d| Instant::now() >= d) {
            Err(wasmtime::Error::new(crate::host::Stop::TimeLimit))
        } else if let Some(cpu) = ctx.data().cpu_deadline.filter(CpuDeadline::passed) {
            Err(wasmtime::Error::new(crate::host::Stop::CpuTimeLimit(
                cpu.limit,
            )))
        } else {
            // Give the serve loop a turn, then carry on for another tick.
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store
}

/// Applies the limits for the next task: deadline, memory, output.
pub(crate) fn arm(store: &mut Store<Host>, limits: &Limits) {
    let host = store.data_mut();
    host.deadline = limits.time.map(|t| Instant::now() + t);
    host.max_memory = limits.memory;
    host.max_table = limits.table;
    host.max_output = limits.output;
    // Interrupt at the next tick: every tick is a chance to yield or stop.
    store.set_epoch_deadline(1);
}

/// Splits complete lines off `buf` (all of it when `all`), lossily decoded.
pub(crate) fn take_lines(buf: &mut Vec<u8>, all: bool) -> Vec<String> {
    let end = if all {
        buf.len()
    } else {
        match buf.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => return Vec::new(),
        }
    };
    if end == 0 {
        return Vec::new();
    }
    let taken: Vec<u8> = buf.drain(..end).collect();
    let text = String::from_utf8_lossy(&taken);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    text.split('\n').map(str::to_owned).collect()
}

/// Instantiates, then runs the module's own start code: `_initialize` (a reactor) or
/// `_start` (a command, whose `proc_exit(0)` is a normal end).
async fn start(store: &mut Store<Host>, pre: &InstancePre<Host>) -> Result<Instance, ErrorData> {
    let instance = pre
        .instantiate_async(&mut *store)
        .await
        .map_err(errors::from_trap)?;
    for name in ["_initialize", "_start"] {
        if let Ok(f) = instance.get_typed_func::<(), ()>(&mut *store, name) {
            match f.call_async(&mut *store, ()).await {
                Ok(()) => {}
                Err(e) if errors::is_exit_zero(&e) => {}
                Err(e) => return Err(errors::from_trap(e)),
            }
            break;
        }
    }
    Ok(instance)
}

/// A call ready to run.
enum Call {
    /// An ABI export (`confine:NAME`): JSON in, JSON envelope out.
    Abi {
        export: String,
        func: wasmtime::TypedFunc<(i32, i32), i64>,
        args: Vec<u8>,
    },
    /// A plain export with numeric parameters and results.
    Plain {
        func: Func,
        params: Vec<Val>,
        results: usize,
    },
}

/// Finds the export and converts the arguments.
fn prepare(
    store: &mut Store<Host>,
    instance: Instance,
    export: &str,
    args: Vec<Value>,
) -> Result<Call, ErrorData> {
    let abi_name = format!("{}{export}", abi::EXPORT_PREFIX);
    if let Some(func) = instance.get_func(&mut *store, &abi_name) {
        let func = func.typed::<(i32, i32), i64>(&*store).map_err(|_| {
            errors::abi(format!(
                "export `{abi_name}` must have type (i32, i32) -> i64"
            ))
        })?;
        return Ok(Call::Abi {
            export: export.to_owned(),
            func,
            args: abi::encode_args(args),
        });
    }
    let Some(func) = instance.get_func(&mut *store, export) else {
        return Err(ErrorData::new(
            ErrorKind::NoSuchExport,
            "TypeError",
            format!("the module has no function export `{export}` (nor `{abi_name}`)"),
        ));
    };
    let ty = func.ty(&*store);
    let mut params = Vec::with_capacity(ty.params().len());
    let mut args = args.into_iter();
    for (i, p) in ty.params().enumerate() {
        let arg = args.next().unwrap_or(Value::Undefined);
        params.push(to_val(&p, &arg).ok_or_else(|| {
            ErrorData::invalid(format!(
                "argument {i} of `{export}` must be a {p} (got {})",
                arg.type_name()
            ))
        })?);
    }
    if let Some(r) = ty.results().find(|r| !is_numeric(r)) {
        return Err(ErrorData::new(
            ErrorKind::Unsupported,
            "TypeError",
            format!("export `{export}` returns a {r}; plain exports may only use numbers"),
        ));
    }
    let results = ty.results().len();
    Ok(Call::Plain {
        func,
        params,
        results,
    })
}

impl Call {
    async fn run(self, store: &mut Store<Host>, instance: Instance) -> Result<Value, ErrorData> {
        match self {
            Call::Plain {
                func,
                params,
                results,
            } => {
                let mut out = vec![Val::I32(0); results];
                func.call_async(&mut *store, &params, &mut out)
                    .await
                    .map_err(errors::from_trap)?;
                let mut values: Vec<Value> = out.iter().map(from_val).collect();
                Ok(match values.len() {
                    0 => Value::Undefined,
                    1 => values.pop().unwrap_or(Value::Undefined),
                    _ => Value::Array(values),
                })
            }
            Call::Abi { export, func, args } => {
                abi_call(store, instance, &export, func, &args).await
            }
        }
    }
}

pub(crate) async fn abi_call(
    store: &mut Store<Host>,
    instance: Instance,
    export: &str,
    func: wasmtime::TypedFunc<(i32, i32), i64>,
    args: &[u8],
) -> Result<Value, ErrorData> {
    let memory = instance
        .get_memory(&mut *store, "memory")
        .ok_or_else(|| errors::abi("the module exports no `memory`".to_owned()))?;
    let alloc = instance
        .get_typed_func::<i32, i32>(&mut *store, abi::ALLOC)
        .map_err(|_| {
            errors::abi(format!(
                "the module exports `{}{export}` but no `{}: (i32) -> i32`",
                abi::EXPORT_PREFIX,
                abi::ALLOC
            ))
        })?;
    let len = i32::try_from(args.len()).map_err(|_| ErrorData::invalid("arguments over 2 GiB"))?;
    let ptr = alloc
        .call_async(&mut *store, len)
        .await
        .map_err(errors::from_trap)?;
    memory
        .write(&mut *store, ptr as u32 as usize, args)
        .map_err(|_| {
            errors::abi(format!(
                "`{}` returned a pointer outside memory",
                abi::ALLOC
            ))
        })?;
    let packed = func
        .call_async(&mut *store, (ptr, len))
        .await
        .map_err(errors::from_trap)? as u64;
    // (ptr << 32) | len, both unsigned 32-bit.
    let (out_ptr, out_len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
    let out = memory
        .data(&*store)
        .get(out_ptr..out_ptr.saturating_add(out_len))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| {
            errors::abi(format!(
                "export `{export}` returned a result outside memory"
            ))
        })?;
    if let Ok(free) = instance.get_typed_func::<(i32, i32), ()>(&mut *store, abi::FREE) {
        free.call_async(&mut *store, (out_ptr as i32, out_len as i32))
            .await
            .map_err(errors::from_trap)?;
    }
    abi::decode_outcome(export, &out)
}

fn is_numeric(t: &ValType) -> bool {
    matches!(t, ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64)
}

/// A [`Value`] as a wasm parameter of type `t`: integers must be exact and in range.
fn to_val(t: &ValType, v: &Value) -> Option<Val> {
    let int = |v: &Value| -> Option<i128> {
        match v {
            Value::Number(n) if n.fract() == 0.0 && n.is_finite() => Some(*n as i128),
            Value::BigInt(i) => Some(*i),
            Value::Bool(b) => Some(i128::from(*b)),
            _ => None,
        }
    };
    match t {
        // i32 accepts the signed and the unsigned range (the bits are what the module sees).
        ValType::I32 => int(v)
            .filter(|i| (i128::from(i32::MIN)..=i128::from(u32::MAX)).contains(i))
            .map(|i| Val::I32(i as u32 as i32)),
        ValType::I64 => int(v)
            .filter(|i| (i128::from(i64::MIN)..=i128::from(u64::MAX)).contains(i))
            .map(|i| Val::I64(i as u64 as i64)),
        ValType::F32 => v.as_f64().map(|n| Val::F32((n as f32).to_bits())),
        ValType::F64 => v.as_f64().map(|n| Val::F64(n.to_bits())),
        _ => None,
    }
}

fn from_val(v: &Val) -> Value {
    match v {
        Val::I32(i) => Value::from(*i),
        Val::I64(i) => Value::from(*i),
        Val::F32(bits) => Value::Number(f32::from_bits(*bits).into()),
        Val::F64(bits) => Value::Number(f64::from_bits(*bits)),
        // `prepare` refuses exports with other result types.
        _ => Value::Undefined,
    }
}

//! confine's WebAssembly runtime: [`Wasm`] runs WASI (preview 1) modules as containers, on
//! [wasmtime] with Cranelift, and JavaScript containers in QuickJS compiled to WebAssembly.
//!
//! # JavaScript containers
//!
//! A container whose source is text is JavaScript. It runs in an instance of the *JS plugin*
//! (`js-plugin/`): confine's own QuickJS runtime (`confine-runtime-quickjs`, the same rquickjs
//! and QuickJS release as the `quickjs` runtime) compiled to `wasm32-wasip1`, one instance per
//! container. Script code therefore sees exactly the `quickjs` runtime's behaviour (CommonJS
//! and ES modules, async exports, host globals as promises, timers, console, refused imports,
//! typed errors), with WebAssembly's memory isolation around the engine. `js.rs` describes
//! how requests reach the plugin (a private ABI, `js_abi.rs`).
//!
//! The plugin is built by `cargo xtask wasm-plugin` (offline, Debian's clang-16 and
//! wasi-libc) into `target/wasm-js/`, and embedded into this crate at build time when it
//! exists (`build.rs`; `CONFINE_JS_PLUGIN` names another file). A guest built without it
//! runs WASI modules only and answers a JavaScript source with an
//! [`ErrorKind::Unsupported`] error that says to run `cargo xtask wasm-plugin`. What runs
//! is not the plugin as built but a snapshot of it taken once its QuickJS runtime and context
//! are made (`snapshot.rs`; each container still gets its own `Math.random` state and hash
//! seed). The snapshot is taken and compiled on the first JavaScript container, or loaded
//! from the cache of compiled code (`cache.rs`; the host fills it with `--prepare`), once
//! per guest; from then on, `run_pending` keeps one instance made ahead (when it has nothing
//! else to run) for the next container.
//!
//! Options `timeLimitMs` and `memoryLimitBytes` (below) apply to JavaScript containers too:
//! the time limit reaches QuickJS's interrupt handler (a `TimeoutError` that leaves the
//! container usable, like the serve loop's request deadlines), and linear memory growth
//! past the limit fails the allocation inside QuickJS, which throws a JS error. A trap inside
//! the plugin (a stack overflow QuickJS did not catch, the epoch backstop) stops that
//! container for good; its calls fail with the trap's error.
//!
//! The host's limits hold for JavaScript containers as in the `quickjs` runtime: the
//! guest's memory limit ([`GuestLimits::memory_bytes`]) is one budget for the linear memory
//! of all the guest's instances (a refused growth is QuickJS's catchable out-of-memory
//! error, an uncaught one the memory limit's error); the CPU time left, and the per-call
//! output and host-call budgets, reach the plugin with each dispatch, where script code
//! past them is stopped (`js_abi.rs`).
//!
//! # WebAssembly containers
//!
//! A container's source is a module in the binary format
//! ([`confine_runtime_abstract::protocol::Source::binary`]; the host's
//! `ContainerSource::wasm` / `ContainerSource::file`). Each container is one instance in its own
//! store: containers share no memory, tables or globals. Creating one compiles the module,
//! links it, instantiates it and runs its own start code: `_initialize` for a reactor, or
//! `_start` for a command (where `proc_exit(0)` is a normal end). A module that fails to
//! compile is an [`ErrorKind::Syntax`] error.
//!
//! What a module can reach is WASI preview 1 with nothing granted: no preopened directories,
//! no environment, no arguments, an empty stdin, no sockets (every other preview-1 function
//! returns `ENOSYS`); clocks and randomness work. Whatever it writes to **stdout** arrives on
//! the host as console output at level `log`, **stderr** at level `error`, one message per
//! line. Plus the `confine` import module below. Nothing else: a module importing anything
//! else fails to link.
//!
//! # The confine ABI, version 1
//!
//! Values cross as **UTF-8 JSON** in the module's linear memory, so any language can take
//! part. The mapping is `serde_json`'s for [`Value`]: `undefined` becomes `null`, bytes an
//! array of numbers, integers beyond ±2^53 a string.
//!
//! **Exports.** The host's call of export `NAME` with arguments `args` runs, in order of
//! preference:
//!
//! 1. `confine:NAME : (ptr: i32, len: i32) -> i64`, an *ABI export*. The runtime calls the
//!    module's allocator `confine_alloc : (len: i32) -> i32` for `len` bytes, writes the
//!    arguments there as a JSON array, and calls the export, which owns that buffer from then
//!    on. The export returns `(ptr << 32) | len` of a result buffer holding the envelope
//!    `{"ok": VALUE}` or `{"error": {"name": "...", "message": "...", "stack": "..."}}` (the
//!    latter is an [`ErrorKind::Thrown`] error on the host, like a JS `throw`). If the module
//!    exports `confine_free : (ptr: i32, len: i32)`, the runtime calls it with the result
//!    buffer once it has copied it.
//! 2. `NAME`, a *plain export* whose parameters and results are all numbers
//!    (`i32`/`i64`/`f32`/`f64`): the arguments are converted (integers must be exact and in
//!    range, missing ones are an error), and the result is `undefined`, the number, or an
//!    array for several results.
//!
//! **Host functions** are imports of module `confine`:
//!
//! * `call_host(path_ptr, path_len, args_ptr, args_len: i32) -> i32` calls the host global at
//!   the UTF-8, dot-separated path (`"robot.sayHello"`) with a JSON array of arguments, **waits
//!   for the host's answer**, and returns the byte length of the answer's envelope
//!   (`{"ok": VALUE}` or `{"error": {"name", "message", "kind"}}`);
//! * `result(ptr: i32)` copies that envelope to `ptr`, which must have room for it. It can be
//!   fetched once.
//!
//! The wait is synchronous for the module and costs the guest nothing: every container task
//! runs on a wasmtime fiber, `call_host` suspends the fiber, and the serve loop carries on
//! (other containers, other requests) until the host's answer arrives and resumes it. One
//! instance runs one call at a time (wasm code is not re-entrant): calls to a busy container
//! queue, in order. So an export that calls the host cannot be re-entered by the host's
//! function calling the same container's exports back; that call waits behind it. Host
//! *value* globals are not visible to modules.
//!
//! # Limits
//!
//! Set per container through its options (see `options.rs`: `timeLimitMs`,
//! `memoryLimitBytes`, `tableLimit`, `outputLimitBytes`). Time is enforced by epoch
//! interruption: a ticker thread advances the epoch every [`TICK_MS`] ms while wasm code runs
//! (it parks otherwise); at each tick a running module either stops with a `TimeoutError`
//! ([`ErrorKind::Limit`]) or yields so the serve loop stays responsive. Memory is a
//! `ResourceLimiter` that stops the call with a `RangeError` ([`ErrorKind::Limit`]) rather
//! than let the module's allocator abort anonymously. Wasm stack exhaustion is a
//! [`ErrorKind::Limit`] error too. After a trap the instance stays usable, like wasmtime's;
//! whether its own state still makes sense is the module's business.
//!
//! Why epochs and not fuel: both cost the same on CPU-bound code (fib(27) in the JS plugin,
//! release, 2026-11-22: 46.7 ms with neither, 54.6 ms with epoch checks, 54.8 ms with fuel;
//! `cargo test --release -p confine-runtime-wasm bench_interruption_fuel_vs_epoch -- --ignored
//! --nocapture`), and an epoch deadline is time, which is what the host's limits are, while
//! fuel counts instructions and would need refilling and converting per store.
//!
//! # Instantiation
//!
//! Every container's instance comes from an `InstancePre` (imports resolved once); JS
//! containers start on an instance made ahead from the plugin's snapshot. The pooling
//! allocator is not used: measured with the snapshot, it made instantiation 85 µs instead of
//! 255 µs (work done ahead of the container anyway), but its fiber-stack and table pools are
//! read-write mappings that count against the `RLIMIT_DATA` cap the host sets (16 stacks of
//! 9 MiB are 144 MiB before any script runs, more than the cap of a small memory limit).
//! Copy-on-write memory images need `memfd_create`, which the sandbox refuses, and moved the
//! page faults into the container's first run (exec 155 µs instead of 61 µs).
//!
//! The guest executable is `src/main.rs`: `confine_guest::serve(Wasm::default())`.
#![deny(missing_docs)]

mod abi;
mod cache;
mod container;
mod errors;
mod host;
mod js;
mod js_abi;
mod options;
mod snapshot;
mod ticker;
mod wasi;

use confine_runtime_abstract::{
    protocol::{GlobalDef, Source},
    AbstractRuntime, ContainerId, CpuDeadline, Deadline, ErrorData, ErrorKind, GuestLimits,
    HostCallId, Link, ReplyTo, RuntimeInfo, Value,
};
use container::Container;
use host::Host;
use js::{JsContainer, Spare, Start};
use options::Limits;
use std::{
    collections::BTreeMap,
    fmt,
    time::{Duration, Instant},
};
use ticker::Ticker;
use wasmtime::{Config, Engine, InstancePre, Linker, Module};

/// The wasmtime release this crate is built on.
const WASMTIME_VERSION: &str = "48.0.8";

/// The epoch tick in milliseconds: the granularity of time limits.
pub const TICK_MS: u64 = ticker::TICK.as_millis() as u64;

/// How long `run_pending` keeps running tasks of one container before it gives the serve loop
/// a turn.
const SLICE: Duration = Duration::from_millis(10);

/// The engine, its linker and the ticker: everything `init` sets up.
struct Engines {
    engine: Engine,
    linker: Linker<Host>,
    ticker: Ticker,
}

/// The WebAssembly runtime: an [`AbstractRuntime`] whose containers are WASI module instances.
#[derive(Default)]
pub struct Wasm {
    link: Option<Link>,
    engines: Option<Engines>,
    containers: BTreeMap<ContainerId, Container>,
    /// JavaScript containers (plugin instances).
    js: BTreeMap<ContainerId, JsContainer>,
    compiled: Compiled,
    /// The JS plugin, compiled and linked once per guest.
    js_pre: Option<InstancePre<Host>>,
    /// The plugin's precompiled code from the disk cache, read in `init`.
    js_cached: Option<cache::Cached>,
    /// A plugin instance made ahead of time for the next JS container.
    js_spare: Option<Box<Spare>>,
    /// Making a spare failed once; not tried again.
    js_spare_failed: bool,
    /// The spare is made in the serve loop's next turn (see `run_pending`).
    spare_due: bool,
    /// Deadlines set for a container that `exec_container` is about to create.
    upcoming: Option<(ContainerId, Deadline)>,
    upcoming_cpu: Option<(ContainerId, CpuDeadline)>,
    /// The guest-wide memory limit and what all instances hold.
    budget: std::sync::Arc<host::Budget>,
}

/// The JS plugin built into this guest, if it was built (see `build.rs`).
#[cfg(confine_js_plugin)]
const JS_PLUGIN: Option<&[u8]> = Some(include_bytes!(env!("CONFINE_JS_PLUGIN_PATH")));
#[cfg(not(confine_js_plugin))]
const JS_PLUGIN: Option<&[u8]> = None;
/// Its hash (`build.rs`), the cache key of its compiled code.
#[cfg(confine_js_plugin)]
const JS_PLUGIN_HASH: &str = env!("CONFINE_JS_PLUGIN_HASH");
#[cfg(not(confine_js_plugin))]
const JS_PLUGIN_HASH: &str = "";

/// Compiles and links the JS plugin on first use.
fn js_pre<'a>(
    slot: &'a mut Option<InstancePre<Host>>,
    cached: &mut Option<cache::Cached>,
    engines: &Engines,
) -> Result<&'a InstancePre<Host>, ErrorData> {
    if let Some(pre) = slot {
        return Ok(pre);
    }
    let Some(bytes) = JS_PLUGIN else {
        return Err(ErrorData::new(
            ErrorKind::Unsupported,
            "TypeError",
            "the wasm runtime runs JavaScript in its QuickJS plugin, which was not built into \
             this guest: run `cargo xtask wasm-plugin`, then rebuild",
        ));
    };
    let module = cached
        .get_or_insert_with(|| cache::Cached::load(&engines.engine, JS_PLUGIN_HASH))
        .module(&engines.engine, || {
            snapshot::take(&engines.engine, &engines.linker, bytes)
        })?;
    let mut linker = engines.linker.clone();
    let pre = wasi::stub_missing(&mut linker, &module)
        .and_then(|()| linker.instantiate_pre(&module))
        .map_err(|e| ErrorData::internal(format!("linking the JS plugin: {e:#}")))?;
    Ok(slot.insert(pre))
}

/// How many compiled modules a guest keeps for reuse.
const COMPILED_KEPT: usize = 8;

/// Modules compiled in this guest, newest last: compiling is the slow part of creating a
/// container (about a second for the 0.9 MB JS plugin), and a sandbox typically creates many
/// containers from the same module.
#[derive(Default)]
struct Compiled(Vec<(Vec<u8>, Module)>);

impl Compiled {
    fn get_or_compile(
        &mut self,
        engine: &Engine,
        bytes: &[u8],
        name: &str,
    ) -> Result<Module, ErrorData> {
        // Compared byte for byte (no hash to collide); cheap next to compiling.
        if let Some(i) = self.0.iter().position(|(b, _)| b.as_slice() == bytes) {
            let entry = self.0.remove(i);
            let module = entry.1.clone();
            self.0.push(entry);
            return Ok(module);
        }
        // Validation first, so an invalid module (the script's fault) is told apart from the
        // engine failing to compile a valid one (ours, or the sandbox's: code memory).
        Module::validate(engine, bytes).map_err(|e| {
            ErrorData::new(ErrorKind::Syntax, "CompileError", format!("{name}: {e:#}"))
        })?;
        let module = Module::new(engine, bytes).map_err(|e| {
            ErrorData::internal(format!(
                "{name}: the engine could not compile a valid module: {e:#}"
            ))
        })?;
        if self.0.len() >= COMPILED_KEPT {
            self.0.remove(0);
        }
        self.0.push((bytes.to_vec(), module.clone()));
        Ok(module)
    }
}

impl fmt::Debug for Wasm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wasm")
            .field("initialised", &self.engines.is_some())
            .field("containers", &self.containers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Wasm {
    /// A runtime with no containers; call [`AbstractRuntime::init`] before anything else.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The engine configuration. Precompiled modules would have to match it exactly.
fn config() -> Config {
    let mut config = Config::new();
    // Time limits and yielding (see the crate docs).
    config.epoch_interruption(true);
    // Enough frames to place a trap, without paying for deep backtraces on every trap.
    config.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(32));
    // Copy-on-write memory images need `memfd_create`, which the Linux sandbox kills (an
    // anonymous file is a way to executable memory). Data segments are copied instead: slower
    // instantiation for modules with large data, until images come from precompiled files.
    config.memory_init_cow(false);
    // Native stack for wasm code. QuickJS in the JS plugin checks its own (shadow) stack
    // budget, 512 KiB, to throw a catchable `RangeError` on deep recursion; each JS call also
    // takes native stack for the interpreter's wasm frame, several times what it takes of the
    // shadow stack, so the native limit must be well above the budget for QuickJS's check to
    // come first. JSON.parse of deeply nested arrays takes the most native stack per byte of
    // shadow stack seen so far: 4 MiB ran out before QuickJS's check at about 30,000 levels,
    // 8 MiB does not (a test nests a million). The fiber a task runs on needs room for the
    // host's frames on top; it is address space, touched only as deep as code goes.
    config.max_wasm_stack(WASM_STACK);
    config.async_stack_size(WASM_STACK + (1 << 20));
    config
}

/// The linker every module gets: WASI preview 1 (ours) and the `confine` import module.
fn linker(engine: &Engine) -> Result<Linker<Host>, ErrorData> {
    let mut linker = Linker::new(engine);
    wasi::add(&mut linker)
        .and_then(|()| host::add_confine(&mut linker))
        .map_err(|e| ErrorData::internal(format!("linker: {e:#}")))?;
    Ok(linker)
}

/// Native stack wasm code may use (see `config`).
const WASM_STACK: usize = 8 << 20;

impl AbstractRuntime for Wasm {
    fn info(&self) -> RuntimeInfo {
        RuntimeInfo {
            name: "wasm".to_owned(),
            version: format!("wasmtime {WASMTIME_VERSION}"),
        }
    }

    /// Snapshots and compiles the JS plugin and writes it to the on-disk cache, which a
    /// sandboxed guest can read but never write (see `cache.rs`).
    fn prepare_offline(&mut self) -> Result<(), ErrorData> {
        let Some(bytes) = JS_PLUGIN else {
            return Ok(());
        };
        let engine = Engine::new(&config())
            .map_err(|e| ErrorData::internal(format!("wasmtime engine: {e:#}")))?;
        let linker = linker(&engine)?;
        cache::Cached::load(&engine, JS_PLUGIN_HASH)
            .module(&engine, || snapshot::take(&engine, &linker, bytes))
            .map(drop)
    }

    /// The memory limit is one budget for the linear memory of all the guest's instances
    /// (module and JavaScript containers, and the instance made ahead); see `host.rs`.
    fn set_limits(&mut self, limits: &GuestLimits) -> Result<(), ErrorData> {
        self.budget.set_limit(limits.memory_bytes);
        Ok(())
    }

    fn init(&mut self, link: Link) -> Result<(), ErrorData> {
        let engine = Engine::new(&config())
            .map_err(|e| ErrorData::internal(format!("wasmtime engine: {e:#}")))?;
        let linker = linker(&engine)?;
        // Started now, before the guest's final lockdown, which may forbid new threads.
        let ticker = Ticker::start(engine.clone())
            .map_err(|e| ErrorData::internal(format!("epoch ticker thread: {e}")))?;
        // Read now: a sandboxed guest can read no file after its lockdown.
        self.js_cached = JS_PLUGIN.map(|_| cache::Cached::load(&engine, JS_PLUGIN_HASH));
        self.engines = Some(Engines {
            engine,
            linker,
            ticker,
        });
        self.link = Some(link);
        Ok(())
    }

    fn exec_container(
        &mut self,
        cid: ContainerId,
        source: &Source,
        options: &Value,
        globals: &[GlobalDef],
    ) -> Result<(), ErrorData> {
        let (Some(link), Some(engines)) = (self.link.clone(), self.engines.as_ref()) else {
            return Err(ErrorData::internal("the runtime was not initialised"));
        };
        if self.containers.contains_key(&cid) || self.js.contains_key(&cid) {
            return Err(ErrorData::invalid(format!(
                "container {cid} already exists"
            )));
        }
        let Some(bytes) = &source.binary else {
            let limits = Limits::from_options(options)?;
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
            let start = match self.js_spare.take() {
                Some(spare) if spare.fits(&limits) => Start::Spare(spare),
                kept => {
                    // Too large for this container's memory limit: kept for the next one.
                    self.js_spare = kept;
                    Start::Fresh(js_pre(&mut self.js_pre, &mut self.js_cached, engines)?.clone())
                }
            };
            let mut container = JsContainer::new(
                &engines.engine,
                start,
                cid,
                link,
                &self.budget,
                limits,
                source,
                options,
                globals,
                (deadline, cpu),
            );
            while container.runnable() {
                container.step(&engines.ticker);
            }
            return match container.exec_result() {
                Some(Ok(())) => {
                    self.js.insert(cid, container);
                    Ok(())
                }
                Some(Err(e)) => Err(e.clone()),
                None => Err(ErrorData::internal("the JS container did not start")),
            };
        };
        let limits = Limits::from_options(options)?;
        let module = self
            .compiled
            .get_or_compile(&engines.engine, bytes, &source.name)?;
        let link_error = |e: wasmtime::Error| {
            ErrorData::new(
                ErrorKind::Unsupported,
                "LinkError",
                format!("{}: {e:#}", source.name),
            )
        };
        let pre = if module.imports().any(|i| i.module() == wasi::NAMESPACE) {
            // Stubs for the preview-1 functions we do not provide, on a copy of the linker.
            let mut linker = engines.linker.clone();
            wasi::stub_missing(&mut linker, &module).map_err(link_error)?;
            linker.instantiate_pre(&module)
        } else {
            engines.linker.instantiate_pre(&module)
        }
        .map_err(link_error)?;
        let cpu = self
            .upcoming_cpu
            .take()
            .filter(|&(c, _)| c == cid)
            .map(|(_, d)| d);
        let mut container =
            Container::new(&engines.engine, pre, cid, link, &self.budget, limits, cpu);
        // Run the start code now, so its failure is this request's error; if it waits for the
        // host, it finishes in the background (like a script's top-level `await`).
        while container.runnable() {
            container.step(&engines.ticker);
        }
        if let Some(e) = container.start_error() {
            return Err(e.clone());
        }
        container.detach();
        self.containers.insert(cid, container);
        Ok(())
    }

    fn config_container(&mut self, cid: ContainerId, options: &Value) -> Result<(), ErrorData> {
        if let Some(container) = self.js.get_mut(&cid) {
            container.set_limits(Limits::from_options(options)?);
            return Ok(());
        }
        let container = self
            .containers
            .get_mut(&cid)
            .ok_or_else(|| errors::no_such_container(cid))?;
        container.set_limits(Limits::from_options(options)?);
        Ok(())
    }

    fn call(&mut self, cid: ContainerId, export: &str, args: Vec<Value>, reply: ReplyTo) {
        if let Some(container) = self.js.get_mut(&cid) {
            return container.call(export, args, reply);
        }
        match self.containers.get_mut(&cid) {
            Some(container) => container.call(export, args, reply),
            None => {
                if let Some(link) = &self.link {
                    link.reply(reply, Err(errors::no_such_container(cid)));
                }
            }
        }
    }

    fn kill_container(&mut self, cid: ContainerId) {
        if let Some(mut container) = self.js.remove(&cid) {
            container.kill();
        }
        if let Some(mut container) = self.containers.remove(&cid) {
            container.kill();
        }
    }

    fn define_globals(&mut self, globals: &[GlobalDef]) -> Result<(), ErrorData> {
        // Modules reach host functions by path through `confine.call_host`; the host checks
        // the path. There is nothing to install in their instances, only in JS containers.
        let Some(engines) = self.engines.as_ref() else {
            return Ok(());
        };
        let mut first_error = None;
        for container in self.js.values_mut() {
            if let Err(e) = container.define_globals(globals, &engines.ticker) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn host_call_settled(&mut self, id: HostCallId, result: Result<Value, ErrorData>) {
        // An answer for a killed container finds no taker and is dropped.
        if let Some(container) = self.js.values_mut().find(|c| c.waits_for(id)) {
            container.settle(id, result);
            return;
        }
        if let Some(container) = self.containers.values().find(|c| c.waits_for(id)) {
            container.settle(result);
        }
    }

    fn run_pending(&mut self, now: Instant) -> Option<Instant> {
        let engines = self.engines.as_ref()?;
        let mut busy = false;
        for container in self.containers.values_mut() {
            let start = Instant::now();
            while container.runnable() {
                container.step(&engines.ticker);
                if start.elapsed() >= SLICE {
                    break;
                }
            }
            busy |= container.runnable();
        }
        let mut next: Option<Instant> = None;
        for container in self.js.values_mut() {
            container.due(now);
            let start = Instant::now();
            while container.runnable() {
                container.step(&engines.ticker);
                if start.elapsed() >= SLICE {
                    break;
                }
            }
            busy |= container.runnable();
            next = match (next, container.next()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        // A container that yielded on a tick wants to go on right after the loop's turn.
        if busy {
            return Some(Instant::now());
        }
        // Once JavaScript is in use, prepare the next container's instance. Not in this turn:
        // the serve loop sends this turn's replies (the new container's, say) only when this
        // returns; in the next one, asked for at once, which comes after they are out.
        if let (None, false, Some(pre)) = (&self.js_spare, self.js_spare_failed, &self.js_pre) {
            if !std::mem::replace(&mut self.spare_due, true) {
                return Some(Instant::now());
            }
            self.spare_due = false;
            match Spare::new(&engines.engine, pre, &self.budget, &engines.ticker) {
                Ok(spare) => self.js_spare = Some(Box::new(spare)),
                Err(_) => self.js_spare_failed = true,
            }
        }
        next
    }

    fn set_deadline(&mut self, cid: ContainerId, deadline: Option<Deadline>) {
        match self.js.get_mut(&cid) {
            Some(container) => container.set_deadline(deadline),
            // Module containers run under their own `timeLimitMs` only.
            None if self.containers.contains_key(&cid) => {}
            // A container `exec_container` is about to create.
            None => self.upcoming = deadline.map(|d| (cid, d)),
        }
    }

    /// JavaScript containers: their script code is held to it (see `js_abi.rs`), with the
    /// epoch as a backstop. Module containers: checked at every epoch tick, a call past it
    /// stops with the CPU-time limit's error (the instance stays usable, as after any trap).
    fn set_cpu_deadline(&mut self, cid: ContainerId, deadline: Option<CpuDeadline>) {
        if let Some(container) = self.js.get_mut(&cid) {
            return container.set_cpu_deadline(deadline);
        }
        match self.containers.get_mut(&cid) {
            Some(container) => container.set_cpu_deadline(deadline),
            None => self.upcoming_cpu = deadline.map(|d| (cid, d)),
        }
    }

    fn abandon_reply(&mut self, cid: ContainerId, reply: ReplyTo) -> bool {
        self.js.get_mut(&cid).is_some_and(|c| c.abandon(reply))
    }

    fn is_idle(&self, cid: ContainerId) -> bool {
        match self.js.get(&cid) {
            Some(container) => container.is_idle(),
            None => self.containers.get(&cid).is_none_or(Container::is_idle),
        }
    }
}

#[cfg(test)]
mod tests;

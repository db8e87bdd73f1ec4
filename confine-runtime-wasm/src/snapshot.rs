//! The JS plugin pre-initialised: a Wizer snapshot taken after its `confine_js_init` made the
//! QuickJS runtime and context, so that a container's instance starts with them made.
//!
//! Making a QuickJS runtime and a context with every intrinsic is most of what creating a
//! JavaScript container costs inside the plugin (about 0.3 ms of 0.3 ms, measured). Instead,
//! the plugin is instantiated once, its `confine_js_init` runs, and its memory and globals
//! are written out as the data segments and initial values of a new module (Wizer, from
//! `wasmtime-wizer`, without its own wasmtime: the instance state is read here). That module
//! is what the runtime compiles, caches (`cache.rs`) and instantiates for every container.
//!
//! What such a snapshot freezes is shared by every instance made from it, so the
//! initialisation runs with nothing that differs between runs or must differ between
//! containers: its clocks read zero (performance's time origin and the timer clock start at
//! zero, the instance's own clock then counts from its creation), and asking for randomness
//! traps, which fails the snapshot (a seed taken now would be every container's). The seeds
//! QuickJS takes at context creation, from the clock, for `Math.random` and for the hashing
//! of `Map` and `Set` keys, are renewed per container by the plugin (`reseed`, before the
//! container's code runs).
//!
//! One exception: Rust's standard library takes its per-thread hash map keys (16 bytes, once)
//! when rquickjs makes its runtime, and nothing can renew them later, so they are real
//! randomness but the same in every container of a snapshot (every container on the machine
//! until the cache is rebuilt). They only key the plugin's Rust maps, by values script code
//! does not choose (type ids, timer and host-call ids), unlike QuickJS's own seed, which keys
//! `Map`s of script data. Any other randomness still fails the snapshot.

use crate::{container, errors, host::Host, js_abi, options::Limits, wasi};
use confine_runtime_abstract::ErrorData;
use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
};
use wasmtime::{Engine, Instance, Linker, Module, Store, Val};
use wasmtime_wizer::{InstanceState, SnapshotVal, ValType, Wizer};

/// Runs the plugin's initialisation and returns the snapshot, a module in the binary format.
pub(crate) fn take(
    engine: &Engine,
    linker: &Linker<Host>,
    plugin: &[u8],
) -> Result<Vec<u8>, ErrorData> {
    let failed = |what: &str, e: wasmtime::Error| {
        ErrorData::internal(format!("snapshotting the JS plugin: {what}: {e:#}"))
    };
    let mut wizer = Wizer::new();
    wizer.init_func(js_abi::INIT);
    let (cx, instrumented) = wizer
        .instrument(plugin)
        .map_err(|e| failed("instrumenting", e))?;
    let module = Module::new(engine, &instrumented).map_err(|e| failed("compiling", e))?;
    if module.get_export(js_abi::INIT).is_none() {
        return Err(ErrorData::internal(format!(
            "the JS plugin lacks `{}`; rebuild it with `cargo xtask wasm-plugin`",
            js_abi::INIT
        )));
    }
    let mut linker = linker.clone();
    wasi::stub_missing(&mut linker, &module).map_err(|e| failed("linking", e))?;
    let mut store = container::new_store(
        engine,
        Default::default(),
        &Default::default(),
        &Limits::default(),
    );
    store.data_mut().snapshotting = true;
    // No ticker runs for this store's calls, so the epoch never reaches this deadline.
    store.set_epoch_deadline(1);
    let instance = block_on(linker.instantiate_async(&mut store, &module))
        .map_err(|e| failed("instantiating", e))?;
    // A WASI reactor's own start code first (the snapshot no longer exports it: it ran).
    let reactor = instance.get_export(&mut store, "_initialize").is_some();
    for name in ["_initialize", js_abi::INIT] {
        if name == "_initialize" && !reactor {
            continue;
        }
        let init = instance
            .get_typed_func::<(), ()>(&mut store, name)
            .map_err(|e| failed(name, e))?;
        block_on(init.call_async(&mut store, ())).map_err(|e| {
            let mut data = errors::from_trap(e);
            let said = String::from_utf8_lossy(&crate::host::lock(&store.data().io).stderr)
                .trim()
                .to_owned();
            data.message = format!("snapshotting the JS plugin: `{name}`: {}", data.message);
            if !said.is_empty() {
                data.message = format!("{} (the plugin wrote: {said})", data.message);
            }
            data
        })?;
    }
    let mut state = State {
        store: &mut store,
        instance,
        missing: None,
    };
    let snapshot = block_on(wizer.snapshot(&cx, &mut state)).map_err(|e| failed("writing", e))?;
    match state.missing {
        Some(name) => Err(ErrorData::internal(format!(
            "snapshotting the JS plugin: the instrumented module does not export `{name}`"
        ))),
        None => Ok(snapshot),
    }
}

/// Polls `work` to completion. Nothing the initialisation does waits (no ticker runs, and a
/// host call would be a plugin bug), so a pending poll is an error rather than a hang.
fn block_on<T>(work: impl Future<Output = wasmtime::Result<T>>) -> wasmtime::Result<T> {
    match pin!(work).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r,
        Poll::Pending => Err(wasmtime::Error::msg(
            "the JS plugin waited for the host while it was being initialised",
        )),
    }
}

/// The initialised instance, as Wizer reads it.
struct State<'a> {
    store: &'a mut Store<Host>,
    instance: Instance,
    /// An export Wizer asked for that is not there (Wizer's instrumentation exports every
    /// global and memory, so this is not expected): the snapshot is not used then.
    missing: Option<String>,
}

impl InstanceState for State<'_> {
    fn global_get(
        &mut self,
        name: &str,
        _type_hint: ValType,
    ) -> impl Future<Output = SnapshotVal> + Send {
        let value = match self.instance.get_global(&mut *self.store, name) {
            Some(global) => match global.get(&mut *self.store) {
                Val::I32(x) => Some(SnapshotVal::I32(x)),
                Val::I64(x) => Some(SnapshotVal::I64(x)),
                Val::F32(x) => Some(SnapshotVal::F32(x)),
                Val::F64(x) => Some(SnapshotVal::F64(x)),
                Val::V128(x) => Some(SnapshotVal::V128(x.as_u128())),
                // Wizer refuses modules with mutable reference-typed globals.
                _ => None,
            },
            None => None,
        };
        let value = value.unwrap_or_else(|| {
            self.missing.get_or_insert_with(|| name.to_owned());
            SnapshotVal::I32(0)
        });
        std::future::ready(value)
    }

    fn memory_contents(
        &mut self,
        name: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) -> impl Future<Output = ()> + Send {
        match self.instance.get_memory(&mut *self.store, name) {
            Some(memory) => contents(memory.data(&*self.store)),
            None => {
                self.missing.get_or_insert_with(|| name.to_owned());
                contents(&[]);
            }
        }
        std::future::ready(())
    }
}

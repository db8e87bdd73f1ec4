//! confine's JavaScript plugin: QuickJS inside a WASI module, one JavaScript container per
//! instance.
//!
//! The plugin does not reimplement the JavaScript side of confine: it runs the native
//! runtime's own code (`confine-runtime-quickjs`, the same rquickjs and QuickJS release)
//! compiled to `wasm32-wasip1`, so modules, exports, async exports, host globals as promises,
//! timers, console, import refusal and errors behave exactly as in the `quickjs` runtime. The
//! `wasm` runtime drives it through the small private ABI in `src/js_abi.rs` of
//! `confine-runtime-wasm` (one dispatch export, bincode in and out); see that file.
//!
//! State lives in a thread-local: a wasm instance is one thread, and the runtime never calls
//! an instance re-entrantly.
//!
//! The runtime does not instantiate this module as built: it first runs [`confine_js_init`]
//! once and snapshots the instance (Wizer), and starts every container from that snapshot,
//! whose QuickJS runtime and context are already made. What the snapshot freezes and must
//! not be shared is renewed per container: QuickJS's `Math.random` state and `Map` hash seed
//! ([`reseed`]); the init code takes no other randomness than Rust's hash map keys (the
//! runtime makes sure: see its `snapshot.rs`), and its clocks read zero.

#[path = "../../src/js_abi.rs"]
#[allow(dead_code)] // the runtime's half of the ABI uses a few items this half does not
mod js_abi;

use confine_runtime_abstract::{codec, AbstractRuntime, ErrorData, Link, ReplyTo};
use confine_runtime_quickjs::QuickJs;
use js_abi::{Answer, Command, Remaining, Request};
use std::{
    alloc::{alloc, Layout},
    cell::{Cell, RefCell},
    time::{Duration, Instant},
};

/// The one container of this instance.
struct Plugin {
    runtime: QuickJs,
    link: Link,
    /// The container's id, once `Exec` ran.
    cid: Option<u32>,
}

impl Plugin {
    /// The plugin's state, on the runtime [`confine_js_init`] prepared if it ran.
    fn new() -> Self {
        let link = Link::new();
        let mut runtime = PREPARED.take().unwrap_or_default();
        // `init` only stores the link; it cannot fail for QuickJs.
        let _ = runtime.init(link.clone());
        Plugin {
            runtime,
            link,
            cid: None,
        }
    }
}

extern "C" {
    /// Added to QuickJS by `cargo xtask wasm-plugin` (its `RESEED_PATCH`): sets the context's
    /// `Math.random` state and `Map`/`Set` hash seed.
    fn JS_ConfineReseed(ctx: *mut rquickjs::qjs::JSContext, seed: u64);
    /// wasi-libc's: WASI `random_get`, at most 256 bytes.
    fn getentropy(buf: *mut u8, len: usize) -> i32;
}

/// Gives the context the container is about to run on its own `Math.random` state and hash
/// seed, from fresh randomness: a context made before the snapshot was taken has the same
/// ones in every instance. Aborts (a trap the runtime reports) if there is no randomness.
fn reseed(context: &rquickjs::Context) {
    let mut seed = [0u8; 8];
    // SAFETY: `seed` is 8 writable bytes.
    if unsafe { getentropy(seed.as_mut_ptr(), seed.len()) } != 0 {
        eprintln!("confine JS plugin: no randomness to seed Math.random with");
        std::process::abort();
    }
    // SAFETY: the context is alive (borrowed) and no script code runs; the function only
    // sets two integers in it. It has no `Map` or `Set` yet: no script code has run in it.
    unsafe { JS_ConfineReseed(context.as_raw().as_ptr(), u64::from_le_bytes(seed)) }
}

/// The snapshot's initialisation (see the crate docs): makes the QuickJS runtime and context
/// of the container to come; the [`Plugin`] itself comes with the first dispatch. Aborts
/// (fails the snapshot) if QuickJS cannot make them.
#[no_mangle]
pub extern "C" fn confine_js_init() {
    let mut runtime = QuickJs::new();
    if let Err(e) = runtime.prepare_engine() {
        eprintln!("confine JS plugin: {}", e.message);
        std::process::abort();
    }
    PREPARED.set(Some(runtime));
}

thread_local! {
    static PLUGIN: RefCell<Option<Plugin>> = const { RefCell::new(None) };
    /// The runtime [`confine_js_init`] made, until the first dispatch makes the [`Plugin`].
    static PREPARED: Cell<Option<QuickJs>> = const { Cell::new(None) };
}

/// The runtime's allocator for command buffers.
#[no_mangle]
pub extern "C" fn confine_alloc(len: usize) -> *mut u8 {
    if len == 0 {
        return std::ptr::NonNull::dangling().as_ptr();
    }
    match Layout::array::<u8>(len) {
        // SAFETY: the layout has a non-zero size.
        Ok(layout) => unsafe { alloc(layout) },
        Err(_) => std::ptr::null_mut(),
    }
}

/// Frees an answer buffer the runtime has copied.
///
/// # Safety
/// `ptr`/`len` must be a buffer [`confine_js_dispatch`] returned, freed once.
#[no_mangle]
pub unsafe extern "C" fn confine_free(ptr: *mut u8, len: usize) {
    if len == 0 {
        return;
    }
    // SAFETY: a `Box<[u8]>` of `len` bytes leaked by `confine_js_dispatch`.
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
}

/// Allocates `len` bytes, writes them, and frees them: the pages are in memory from then on
/// and the allocator keeps them (wasm memory never shrinks), so the container's first
/// allocations find memory ready instead of growing it page by page. Called on an instance
/// made ahead of time, while the runtime has nothing else to do.
#[no_mangle]
pub extern "C" fn confine_js_prefault(len: usize) {
    let block = vec![1u8; len];
    std::hint::black_box(&block);
}

/// The ABI version this plugin speaks.
#[no_mangle]
pub extern "C" fn confine_js_version() -> i32 {
    js_abi::VERSION
}

/// Runs one command (see the ABI docs).
///
/// # Safety
/// `ptr`/`len` must come from [`confine_alloc`]`(len)`; the plugin owns the buffer from now on.
#[no_mangle]
pub unsafe extern "C" fn confine_js_dispatch(ptr: *mut u8, len: usize) -> u64 {
    let bytes: Box<[u8]> = if len == 0 {
        Box::new([])
    } else {
        // SAFETY: allocated by `confine_alloc(len)`, owned by this call from now on.
        unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) }
    };
    let answer = match decode(&bytes) {
        Ok(request) => PLUGIN.with(|p| run(&mut p.borrow_mut(), request)),
        Err(e) => Answer {
            result: Err(e),
            abandoned: false,
            messages: Vec::new(),
            next_nanos: None,
            idle: true,
        },
    };
    drop(bytes);
    let out = codec::encode(&answer, js_abi::MAX_BYTES)
        .or_else(|e| {
            // Too large or unencodable: say so instead of losing the answer's outcome.
            codec::encode(
                &Answer {
                    result: Err(ErrorData::internal(format!("plugin answer: {e}"))),
                    abandoned: false,
                    messages: Vec::new(),
                    next_nanos: None,
                    idle: answer.idle,
                },
                js_abi::MAX_BYTES,
            )
        })
        .unwrap_or_default()
        .into_boxed_slice();
    let len = out.len() as u64;
    let ptr = Box::into_raw(out) as *mut u8 as usize as u64;
    (ptr << 32) | len
}

fn decode(frame: &[u8]) -> Result<Request, ErrorData> {
    frame
        .get(codec::HEADER_LEN..)
        .ok_or_else(|| ErrorData::internal("plugin command: short frame"))
        .and_then(|body| {
            codec::decode_body(body)
                .map_err(|e| ErrorData::internal(format!("plugin command: {e}")))
        })
}

/// The deadline `r` describes, on this instance's clock; none if it is beyond the clock's
/// range (a limit of centuries).
fn deadline(r: Option<Remaining>) -> Option<confine_runtime_abstract::Deadline> {
    let r = r?;
    Some(confine_runtime_abstract::Deadline {
        at: Instant::now().checked_add(Duration::from_nanos(r.nanos))?,
        limit: Duration::from_nanos(r.limit_nanos),
    })
}

fn run(
    slot: &mut Option<Plugin>,
    Request {
        deadline: d,
        command,
    }: Request,
) -> Answer {
    let plugin = slot.get_or_insert_with(Plugin::new);
    let mut result = Ok(());
    let mut abandoned = false;
    let cid = match &command {
        Command::Exec { cid, .. } => Some(*cid),
        _ => plugin.cid,
    };
    if let Some(cid) = cid {
        // Before `exec_container` too: QuickJs keeps a deadline for a container about to be
        // created.
        plugin.runtime.set_deadline(cid, deadline(d));
    }
    match command {
        Command::Exec {
            cid,
            source,
            options,
            globals,
        } => {
            if plugin.cid.is_some() {
                result = Err(ErrorData::invalid(
                    "this plugin instance already holds a container",
                ));
            } else {
                if let Some(context) = plugin.runtime.prepared_context() {
                    reseed(context);
                }
                result = plugin
                    .runtime
                    .exec_container(cid, &source, &options, &globals);
                if result.is_ok() {
                    plugin.cid = Some(cid);
                }
            }
        }
        Command::Call {
            export,
            args,
            reply,
        } => match plugin.cid {
            Some(cid) => plugin.runtime.call(cid, &export, args, ReplyTo(reply)),
            None => plugin.link.reply(
                ReplyTo(reply),
                Err(ErrorData::internal("the container was not created")),
            ),
        },
        Command::DefineGlobals(globals) => result = plugin.runtime.define_globals(&globals),
        Command::Settle { id, result: r } => plugin.runtime.host_call_settled(id, r),
        Command::Abandon(reply) => {
            if let Some(cid) = plugin.cid {
                abandoned = plugin.runtime.abandon_reply(cid, ReplyTo(reply));
            }
        }
        Command::RunPending => {}
    }
    let now = Instant::now();
    let next = plugin.runtime.run_pending(now);
    let idle = plugin.cid.is_none_or(|cid| plugin.runtime.is_idle(cid));
    Answer {
        result,
        abandoned,
        messages: plugin.link.take_outgoing(),
        next_nanos: next.map(|t| {
            u64::try_from(t.saturating_duration_since(now).as_nanos()).unwrap_or(u64::MAX)
        }),
        idle,
    }
}

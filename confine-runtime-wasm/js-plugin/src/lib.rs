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

use confine_runtime_abstract::{
    codec, protocol::GuestMessage, AbstractRuntime, ErrorData, LimitKind, Link, ReplyTo,
};
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

/// The deadline script code is held to in this dispatch: the wall-time one, or the CPU
/// time left as wall time if that comes first (see `Request::cpu`), with the CPU-time limit
/// then.
fn deadlines(
    wall: Option<Remaining>,
    cpu: Option<Remaining>,
) -> (Option<confine_runtime_abstract::Deadline>, Option<Duration>) {
    match (deadline(wall), deadline(cpu)) {
        (Some(w), Some(c)) if c.at < w.at => (Some(c), Some(c.limit)),
        (None, Some(c)) => (Some(c), Some(c.limit)),
        (w, _) => (w, None),
    }
}

/// `e`, as the CPU-time limit's error if it is the deadline's and the deadline was the CPU
/// time's.
fn as_cpu_limit(e: ErrorData, cpu: Option<Duration>) -> ErrorData {
    match cpu {
        Some(limit) if e.limit_kind() == Some(LimitKind::WallTime) => ErrorData::cpu_time(limit),
        _ => e,
    }
}

fn run(
    slot: &mut Option<Plugin>,
    Request {
        deadline: d,
        cpu,
        command,
    }: Request,
) -> Answer {
    let (d, cpu_limit) = deadlines(d, cpu);
    let plugin = slot.get_or_insert_with(Plugin::new);
    let mut result = Ok(());
    let mut abandoned = false;
    let cid = match &command {
        Command::Exec { cid, limits, .. } => {
            plugin.link.set_limits(*limits);
            Some(*cid)
        }
        _ => plugin.cid,
    };
    // A new call's budgets, as the serve loop starts them (only tracked when there are any).
    let limits = plugin.link.limits();
    if let (Some(cid), Command::Exec { .. } | Command::Call { .. }) = (cid, &command) {
        if limits.output_bytes.is_some() || limits.host_calls.is_some() {
            plugin.link.reset_usage(cid);
        }
    }
    if let Some(cid) = cid {
        // Before `exec_container` too: QuickJs keeps a deadline for a container about to be
        // created.
        plugin.runtime.set_deadline(cid, d);
    }
    match command {
        Command::Exec {
            cid,
            source,
            options,
            globals,
            limits: _,
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
    let mut now = Instant::now();
    let mut next = plugin.runtime.run_pending(now);
    // Host calls the plugin's `Link` refused for the host-call budget fail back into the
    // script, and what that runs may ask again (as in the serve loop: a bounded number of
    // rounds; the container is tripped meanwhile, so its script code is being stopped).
    for _ in 0..64 {
        let refused = plugin.link.take_refused();
        if refused.is_empty() {
            break;
        }
        for (id, error) in refused {
            plugin.runtime.host_call_settled(id, Err(error));
        }
        now = Instant::now();
        next = plugin.runtime.run_pending(now);
    }
    // A budget the container went over fails its calls answered now, as the serve loop
    // fails a tripped container's open calls (whatever the script made of the refusals); a
    // later call starts with a clean slate.
    let tripped = plugin
        .link
        .take_tripped()
        .into_iter()
        .find(|(c, _)| Some(*c) == plugin.cid.or(cid))
        .map(|(_, e)| e);
    let idle = plugin.cid.is_none_or(|cid| plugin.runtime.is_idle(cid));
    let messages = plugin
        .link
        .take_outgoing()
        .into_iter()
        .map(|m| match (m, &tripped) {
            (GuestMessage::Response { id, .. }, Some(e)) => GuestMessage::Response {
                id,
                result: Err(e.clone()),
            },
            (GuestMessage::Response { id, result: Err(e) }, None) => GuestMessage::Response {
                id,
                result: Err(as_cpu_limit(e, cpu_limit)),
            },
            (GuestMessage::Uncaught { cid, error }, _) => GuestMessage::Uncaught {
                cid,
                error: as_cpu_limit(error, cpu_limit),
            },
            (other, _) => other,
        })
        .collect();
    Answer {
        result: result.map_err(|e| as_cpu_limit(e, cpu_limit)),
        abandoned,
        messages,
        next_nanos: next.map(|t| {
            u64::try_from(t.saturating_duration_since(now).as_nanos()).unwrap_or(u64::MAX)
        }),
        idle,
    }
}

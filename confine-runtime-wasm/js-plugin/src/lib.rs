//! confine's JavaScript plugin: QuickJS inside a WASI module, driven through the confine ABI
//! v1 (see `confine-runtime-wasm`'s crate docs). One instance holds one QuickJS runtime and
//! context, created on first use.
//!
//! Exports (ABI exports take and return JSON, see [`abi`]):
//! * `confine:eval(source)`: evaluates a script and returns its completion value (converted
//!   through `JSON.stringify`); a throw is an error envelope with the JS error's name,
//!   message and stack.

use rquickjs::{Context, Ctx, Runtime, Value as JsValue};
use serde_json::{json, Value};
use std::cell::RefCell;

pub mod abi {
    //! The confine ABI v1 glue (the same as the Rust example guest's).

    use serde_json::{json, Value};
    use std::alloc::{alloc, Layout};

    /// The runtime's allocator for argument buffers (`Box<[u8]>` allocations).
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

    /// Frees a result buffer the runtime has copied.
    ///
    /// # Safety
    /// `ptr`/`len` must be a buffer [`export`] returned.
    #[no_mangle]
    pub unsafe extern "C" fn confine_free(ptr: *mut u8, len: usize) {
        // SAFETY: a `Box<[u8]>` of `len` bytes leaked by `export`.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
    }

    /// The body of an ABI export: decodes the arguments, runs `f`, encodes the envelope.
    ///
    /// # Safety
    /// `ptr`/`len` must be the export's own parameters.
    pub unsafe fn export(ptr: *mut u8, len: usize, f: impl FnOnce(Vec<Value>) -> Value) -> u64 {
        // SAFETY: allocated by `confine_alloc(len)`, owned by this export from now on.
        let bytes = unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) };
        let envelope = match serde_json::from_slice::<Vec<Value>>(&bytes) {
            Ok(args) => f(args),
            Err(e) => json!({ "error": { "name": "TypeError", "message": e.to_string() } }),
        };
        let out = serde_json::to_vec(&envelope)
            .unwrap_or_default()
            .into_boxed_slice();
        let len = out.len() as u64;
        let ptr = Box::into_raw(out) as *mut u8 as usize as u64;
        (ptr << 32) | len
    }
}

thread_local! {
    static ENGINE: RefCell<Option<(Runtime, Context)>> = const { RefCell::new(None) };
}

/// Runs `f` in the instance's context, creating runtime and context on first use.
fn with_ctx(f: impl for<'js> FnOnce(Ctx<'js>) -> Value) -> Value {
    ENGINE.with(|engine| {
        let mut engine = engine.borrow_mut();
        if engine.is_none() {
            let made = Runtime::new().and_then(|rt| Context::full(&rt).map(|ctx| (rt, ctx)));
            match made {
                Ok(pair) => *engine = Some(pair),
                Err(e) => {
                    return json!({ "error": { "name": "InternalError", "message": e.to_string() } })
                }
            }
        }
        match engine.as_ref() {
            Some((_, ctx)) => ctx.with(f),
            None => json!({ "error": { "name": "InternalError", "message": "no engine" } }),
        }
    })
}

/// The envelope for a JS exception.
fn thrown(ctx: &Ctx<'_>) -> Value {
    let e = ctx.catch();
    let get = |key: &str| -> Option<String> {
        e.as_object()
            .and_then(|o| o.get::<_, Option<String>>(key).ok().flatten())
    };
    let message = get("message").unwrap_or_else(|| {
        e.as_string()
            .and_then(|s| s.to_string().ok())
            .unwrap_or_else(|| "exception".to_owned())
    });
    json!({ "error": {
        "name": get("name").unwrap_or_else(|| "Error".to_owned()),
        "message": message,
        "stack": get("stack"),
    }})
}

/// A JS value as JSON (`undefined` and functions become `null`); `Err` is an error envelope.
fn to_json<'js>(ctx: &Ctx<'js>, v: JsValue<'js>) -> Result<Value, Value> {
    match ctx.json_stringify(v) {
        Ok(Some(s)) => Ok(s
            .to_string()
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null)),
        Ok(None) => Ok(Value::Null),
        Err(_) => Err(thrown(ctx)),
    }
}

/// `eval(source)`.
///
/// # Safety
/// Called by the runtime with the ABI's parameters only.
#[export_name = "confine:eval"]
pub unsafe extern "C" fn eval(ptr: *mut u8, len: usize) -> u64 {
    // SAFETY: the runtime's parameters, passed on.
    unsafe {
        abi::export(ptr, len, |args| {
            let Some(source) = args.first().and_then(Value::as_str).map(str::to_owned) else {
                return json!({ "error": { "name": "TypeError", "message": "eval(source: string)" } });
            };
            with_ctx(|ctx| match ctx.eval::<JsValue, _>(source) {
                Ok(v) => match to_json(&ctx, v) {
                    Ok(json) => json!({ "ok": json }),
                    Err(envelope) => envelope,
                },
                Err(_) => thrown(&ctx),
            })
        })
    }
}

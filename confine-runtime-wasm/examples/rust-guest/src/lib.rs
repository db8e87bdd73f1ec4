//! An example confine guest module in Rust: the confine ABI v1 (documented in
//! `confine-runtime-wasm`'s crate docs) on one side, ordinary Rust on the other.
//!
//! The [`abi`] module is the glue a guest library would provide: the allocator the runtime
//! calls, reading arguments, writing the result envelope, calling the host. The exports below
//! are what a module author writes.

use serde_json::{json, Value};

pub mod abi {
    //! The confine ABI v1, for Rust modules.

    use serde_json::{json, Value};
    use std::alloc::{alloc, Layout};

    #[link(wasm_import_module = "confine")]
    extern "C" {
        /// Calls the host global at the dotted `path` with a JSON array of arguments; returns
        /// the length of the answer's envelope.
        #[link_name = "call_host"]
        fn confine_call_host(
            path: *const u8,
            path_len: usize,
            args: *const u8,
            args_len: usize,
        ) -> usize;
        /// Copies the last host call's envelope to `dst`.
        #[link_name = "result"]
        fn confine_result(dst: *mut u8);
    }

    /// The runtime's allocator for argument buffers. They are `Box<[u8]>` allocations, which
    /// [`take`] and `confine_free` give back.
    #[no_mangle]
    pub extern "C" fn confine_alloc(len: usize) -> *mut u8 {
        if len == 0 {
            // A zero-length `Box<[u8]>` owns no allocation and has this dangling pointer.
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
    /// `ptr`/`len` must be a buffer [`finish`] returned.
    #[no_mangle]
    pub unsafe extern "C" fn confine_free(ptr: *mut u8, len: usize) {
        // SAFETY: per the contract, a `Box<[u8]>` of `len` bytes leaked by `finish`.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
    }

    /// Takes ownership of an argument buffer the runtime filled.
    ///
    /// # Safety
    /// `ptr`/`len` must come from the runtime's call of an ABI export.
    unsafe fn take(ptr: *mut u8, len: usize) -> Box<[u8]> {
        // SAFETY: the runtime allocated it with `confine_alloc(len)`: same layout as a
        // `Box<[u8]>` of `len` bytes.
        unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) }
    }

    /// Leaks `bytes` and packs its address and length as the export's return value.
    fn finish(bytes: Vec<u8>) -> u64 {
        let bytes = bytes.into_boxed_slice();
        let len = bytes.len() as u64;
        let ptr = Box::into_raw(bytes) as *mut u8 as usize as u64;
        (ptr << 32) | len
    }

    /// The body of an ABI export: decodes the arguments, runs `f`, encodes its outcome.
    ///
    /// # Safety
    /// `ptr`/`len` must be the export's own parameters.
    pub unsafe fn export(
        ptr: *mut u8,
        len: usize,
        f: impl FnOnce(Vec<Value>) -> Result<Value, String>,
    ) -> u64 {
        // SAFETY: forwarded from the caller.
        let bytes = unsafe { take(ptr, len) };
        let outcome = match serde_json::from_slice::<Vec<Value>>(&bytes) {
            Ok(args) => f(args),
            Err(e) => Err(format!("bad arguments: {e}")),
        };
        let envelope = match outcome {
            Ok(v) => json!({ "ok": v }),
            Err(message) => json!({ "error": { "name": "GuestError", "message": message } }),
        };
        finish(serde_json::to_vec(&envelope).unwrap_or_default())
    }

    /// Calls a host function and waits for its answer.
    pub fn call_host(path: &str, args: &[Value]) -> Result<Value, String> {
        let args = serde_json::to_vec(args).map_err(|e| e.to_string())?;
        // SAFETY: both buffers are valid for reads for the duration of the call.
        let len =
            unsafe { confine_call_host(path.as_ptr(), path.len(), args.as_ptr(), args.len()) };
        let mut answer = vec![0u8; len];
        // SAFETY: `answer` has room for the `len` bytes the runtime copies.
        unsafe { confine_result(answer.as_mut_ptr()) };
        let mut envelope: Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
        if let Some(v) = envelope.get_mut("ok") {
            return Ok(v.take());
        }
        Err(envelope["error"]["message"]
            .as_str()
            .unwrap_or("host error")
            .to_owned())
    }
}

/// `greet(name)`: asks the host who it is and greets `name`; logs to stdout and stderr.
///
/// # Safety
/// Called by the runtime with the ABI's parameters only.
#[export_name = "confine:greet"]
pub unsafe extern "C" fn greet(ptr: *mut u8, len: usize) -> u64 {
    // SAFETY: the runtime's parameters, passed on.
    unsafe {
        abi::export(ptr, len, |args| {
            let name = args
                .first()
                .and_then(Value::as_str)
                .unwrap_or("stranger")
                .to_owned();
            println!("greeting {name}");
            eprintln!("about to call the host");
            let me = abi::call_host("robot.whoami", &[json!(name)])?;
            Ok(json!(format!(
                "hello {name}, I am {}",
                me.as_str().unwrap_or("?")
            )))
        })
    }
}

/// `sum(numbers)`: adds an array of numbers.
///
/// # Safety
/// Called by the runtime with the ABI's parameters only.
#[export_name = "confine:sum"]
pub unsafe extern "C" fn sum(ptr: *mut u8, len: usize) -> u64 {
    // SAFETY: the runtime's parameters, passed on.
    unsafe {
        abi::export(ptr, len, |args| {
            let items = args
                .first()
                .and_then(Value::as_array)
                .ok_or("expected an array")?;
            let total = items
                .iter()
                .map(|v| v.as_f64().ok_or("not a number"))
                .sum::<Result<f64, _>>()?;
            Ok(json!(total))
        })
    }
}

/// `fail()`: an error, as a JS `throw` would be.
///
/// # Safety
/// Called by the runtime with the ABI's parameters only.
#[export_name = "confine:fail"]
pub unsafe extern "C" fn fail(ptr: *mut u8, len: usize) -> u64 {
    // SAFETY: the runtime's parameters, passed on.
    unsafe { abi::export(ptr, len, |_| Err("this export always fails".to_owned())) }
}

/// `explode()`: a Rust panic, which aborts the module (a trap); its message is on stderr.
///
/// # Safety
/// Called by the runtime with the ABI's parameters only.
#[export_name = "confine:explode"]
pub unsafe extern "C" fn explode(ptr: *mut u8, len: usize) -> u64 {
    // SAFETY: the runtime's parameters, passed on.
    unsafe { abi::export(ptr, len, |_| panic!("kaboom")) }
}

/// A plain export: numbers in, numbers out, no ABI needed.
#[no_mangle]
pub extern "C" fn fib(n: i32) -> i64 {
    if n < 2 {
        i64::from(n)
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

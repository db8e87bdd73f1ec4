//! The few QuickJS calls rquickjs does not wrap the way this crate needs them.
//!
//! Every `unsafe` block of the crate lives here, so the rest can be read without them. Each
//! helper takes rquickjs handles (which keep their context and runtime alive) and only reads.

use rquickjs::{qjs, Context, Value};
use std::{ffi::CStr, slice};

/// The bundled QuickJS version (`0.16.2` for rquickjs 0.14), read from the engine itself so
/// the report cannot drift from what was compiled in.
pub(crate) fn engine_version() -> String {
    // SAFETY: `JS_GetVersion` returns a pointer to a static NUL-terminated string.
    let ptr = unsafe { qjs::JS_GetVersion() };
    if ptr.is_null() {
        return "unknown".to_owned();
    }
    // SAFETY: checked non-null above; the string is static.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// Re-anchors the engine's stack limit at the caller's stack depth.
///
/// QuickJS measures its stack budget from where the runtime was created; without the
/// `parallel` feature rquickjs never moves that anchor. Calling this before entering the
/// engine keeps the budget meaningful wherever the serve loop happens to call from.
pub(crate) fn update_stack_top(context: &Context) {
    // SAFETY: the context keeps its runtime alive and the guest is single-threaded; the call
    // only records the current stack pointer in the runtime.
    unsafe { qjs::JS_UpdateStackTop(context.get_runtime_ptr()) }
}

/// The contents of a JS string, with lone surrogates replaced by U+FFFD.
///
/// rquickjs's own conversion fails on lone surrogates (QuickJS encodes them as WTF-8), and a
/// script can produce those at will; a replacement character is better than an error.
pub(crate) fn string_lossy(v: &Value<'_>) -> Option<String> {
    if !v.is_string() {
        return None;
    }
    let ctx = v.ctx().as_raw().as_ptr();
    let mut len: usize = 0;
    // SAFETY: `v` is a live string of `ctx`; converting a string runs no script code. The
    // returned buffer is freed below.
    let ptr = unsafe { qjs::JS_ToCStringLen(ctx, &mut len, v.as_raw()) };
    if ptr.is_null() {
        // Out of memory: drop the pending exception rather than leave it for unrelated code.
        let _ = v.ctx().catch();
        return None;
    }
    // SAFETY: QuickJS returned `len` readable bytes at `ptr`.
    let bytes = unsafe { slice::from_raw_parts(ptr.cast::<u8>(), len) };
    let s = String::from_utf8_lossy(bytes).into_owned();
    // SAFETY: `ptr` came from `JS_ToCStringLen` on this context and is freed once.
    unsafe { qjs::JS_FreeCString(ctx, ptr) };
    Some(s)
}

/// A copy of the bytes of an `ArrayBuffer` or `Uint8Array`; `None` for anything else.
///
/// A detached buffer (or a view out of its buffer's bounds) reads as empty. The bytes are
/// copied before any script can run again, so a script cannot change them under us.
pub(crate) fn bytes_of(v: &Value<'_>) -> Option<Vec<u8>> {
    let raw = v.as_raw();
    // SAFETY: both checks only read the value's class id.
    let is_buffer = unsafe { qjs::JS_IsArrayBuffer(raw) };
    let is_u8 = !is_buffer
        && unsafe { qjs::JS_GetTypedArrayType(raw) }
            == qjs::JSTypedArrayEnum_JS_TYPED_ARRAY_UINT8 as std::ffi::c_int;
    if !is_buffer && !is_u8 {
        return None;
    }
    let ctx = v.ctx().as_raw().as_ptr();
    let mut len: qjs::size_t = 0;
    // SAFETY: the class was checked above; both calls return a pointer into the buffer's
    // storage (or null with an exception pending) and write its length.
    let ptr = unsafe {
        if is_buffer {
            qjs::JS_GetArrayBuffer(ctx, &mut len, raw)
        } else {
            qjs::JS_GetUint8Array(ctx, &mut len, raw)
        }
    };
    if ptr.is_null() {
        let _ = v.ctx().catch();
        return Some(Vec::new());
    }
    let len = usize::try_from(len).ok()?;
    // SAFETY: QuickJS reported `len` readable bytes at `ptr`; they are copied at once.
    Some(unsafe { slice::from_raw_parts(ptr, len) }.to_vec())
}

/// `true` for any typed array (`Uint8Array`, `Float64Array`, ...).
pub(crate) fn is_typed_array(v: &Value<'_>) -> bool {
    // SAFETY: only reads the value's class id.
    unsafe { qjs::JS_GetTypedArrayType(v.as_raw()) >= 0 }
}

/// `true` for a `Date` object.
pub(crate) fn is_date(v: &Value<'_>) -> bool {
    // SAFETY: only reads the value's class id.
    unsafe { qjs::JS_IsDate(v.as_raw()) }
}

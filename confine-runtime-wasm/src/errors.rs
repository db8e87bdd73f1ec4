//! Turning wasmtime errors and our own stops into [`ErrorData`].

use crate::host::Stop;
use confine_runtime_abstract::{ContainerId, ErrorData, ErrorKind, LimitKind};
use wasmtime::{Trap, WasmBacktrace};

pub(crate) fn no_such_container(cid: ContainerId) -> ErrorData {
    ErrorData::new(
        ErrorKind::NoSuchContainer,
        "ReferenceError",
        format!("no container with id {cid}"),
    )
}

/// A module that broke the ABI (a missing export, a bad pointer).
pub(crate) fn abi(message: String) -> ErrorData {
    ErrorData::new(ErrorKind::Conversion, "TypeError", message)
}

/// `true` for `proc_exit(0)`, the normal end of a command's `_start`.
pub(crate) fn is_exit_zero(e: &wasmtime::Error) -> bool {
    e.downcast_ref::<Stop>() == Some(&Stop::Exit(0))
}

/// The error of a call into wasm: a trap (named `RuntimeError`, as in JS's WebAssembly API,
/// with the wasm backtrace as its stack), a limit, or an exit.
pub(crate) fn from_trap(e: wasmtime::Error) -> ErrorData {
    let stack = e.downcast_ref::<WasmBacktrace>().map(|b| b.to_string());
    let mut data = if let Some(stop) = e.downcast_ref::<Stop>() {
        let (kind, name) = match stop {
            Stop::Exit(_) => (ErrorKind::Thrown, "ExitError"),
            Stop::TimeLimit => (ErrorKind::Limit, "TimeoutError"),
            Stop::MemoryLimit { .. } | Stop::TableLimit { .. } => (ErrorKind::Limit, "RangeError"),
            Stop::Abi(_) => (ErrorKind::Conversion, "TypeError"),
            Stop::CpuTimeLimit(limit) => {
                let mut data = ErrorData::cpu_time(*limit);
                data.stack = stack;
                return data;
            }
            Stop::GuestMemoryLimit { .. } => {
                let mut data = ErrorData::limit(LimitKind::Memory, stop.to_string());
                data.stack = stack;
                return data;
            }
        };
        ErrorData::new(kind, name, stop.to_string())
    } else if let Some(trap) = e.downcast_ref::<Trap>() {
        match trap {
            Trap::StackOverflow => {
                ErrorData::new(ErrorKind::Limit, "RangeError", "wasm call stack exhausted")
            }
            Trap::Interrupt | Trap::OutOfFuel => {
                ErrorData::new(ErrorKind::Limit, "TimeoutError", trap.to_string())
            }
            _ => ErrorData::new(ErrorKind::Thrown, "RuntimeError", trap.to_string()),
        }
    } else {
        // Link errors at instantiation, a failed host function: the chain says what.
        ErrorData::new(ErrorKind::Thrown, "RuntimeError", format!("{e:#}"))
    };
    data.stack = stack;
    data
}

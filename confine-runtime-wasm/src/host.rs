//! A container's store data ([`Host`]), the state it shares with the runtime outside the store
//! ([`Io`]), why a module stopped ([`Stop`]), and the `confine` import module.
//!
//! The store is moved into the future that runs a call, so the runtime cannot reach it while
//! a call is suspended; [`Io`] is the one piece both sides hold (behind an `Arc<Mutex>`,
//! because wasmtime requires `Send` store data; it is never contended: a guest is one thread).

use crate::abi;
use confine_runtime_abstract::{ErrorData, HostCallId, Value};
use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    task::{Context, Poll},
    time::Instant,
};
use thiserror::Error;
use wasmtime::{Caller, Extern, Linker, Memory, ResourceLimiter};

/// Why wasmtime stopped a module on our behalf. Raised as the error of a host function or a
/// limiter, and recognised again (by downcasting) when the call's error comes back.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The module called `proc_exit`.
    #[error("the module exited with status {0}")]
    Exit(i32),
    /// The call ran past its time limit.
    #[error("the call ran longer than its time limit")]
    TimeLimit,
    /// The call used up its CPU-time limit (the guest thread's CPU clock).
    #[error("CPU-time limit of {} ms exceeded", .0.as_millis())]
    CpuTimeLimit(std::time::Duration),
    /// Linear memory would have grown past the container's limit.
    #[error("linear memory would grow to {desired} bytes, over the limit of {limit} bytes")]
    MemoryLimit {
        /// Bytes asked for.
        desired: usize,
        /// The limit.
        limit: usize,
    },
    /// A table would have grown past the limit.
    #[error("a table would grow to {desired} elements, over the limit of {limit}")]
    TableLimit {
        /// Elements asked for.
        desired: usize,
        /// The limit.
        limit: usize,
    },
    /// Linear memory would have grown past the guest's memory limit
    /// ([`confine_runtime_abstract::GuestLimits::memory_bytes`]), shared by all its
    /// instances.
    #[error(
        "the guest's instances would hold {desired} bytes of linear memory, over the guest's \
         memory limit of {limit} bytes"
    )]
    GuestMemoryLimit {
        /// Bytes all instances would hold.
        desired: usize,
        /// The limit.
        limit: usize,
    },
    /// A module broke the ABI in a way it cannot be told about (a pointer outside memory).
    #[error("{0}")]
    Abi(String),
}

/// What the module and the runtime exchange while a call runs.
#[derive(Debug, Default)]
pub(crate) struct Io {
    /// Bytes written to fd 1 and not yet forwarded.
    pub(crate) stdout: Vec<u8>,
    /// Bytes written to fd 2 and not yet forwarded.
    pub(crate) stderr: Vec<u8>,
    /// A host call the module made that the runtime has not sent yet: path and arguments.
    pub(crate) request: Option<(Vec<String>, Vec<Value>)>,
    /// The id of the host call the module is waiting for.
    pub(crate) waiting: Option<HostCallId>,
    /// The host's answer, once it came.
    pub(crate) answer: Option<Result<Value, ErrorData>>,
}

/// Locks `io`. A poisoned lock only means a panic elsewhere on this one thread, after which
/// the data is still plain bytes and options, so it is used as is.
pub(crate) fn lock(io: &Mutex<Io>) -> MutexGuard<'_, Io> {
    io.lock().unwrap_or_else(|p| p.into_inner())
}

/// The linear memory of all the guest's instances, against the guest's memory limit. Shared
/// by every store (atomics only because store data must be `Send`: a guest is one thread).
#[derive(Debug)]
pub(crate) struct Budget {
    /// The limit in bytes; `usize::MAX` for none.
    limit: AtomicUsize,
    /// Bytes the live instances hold.
    used: AtomicUsize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            limit: AtomicUsize::new(usize::MAX),
            used: AtomicUsize::new(0),
        }
    }
}

impl Budget {
    /// Sets the limit (`None`: none).
    pub(crate) fn set_limit(&self, limit: Option<u64>) {
        let limit = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// The limit, if there is one.
    pub(crate) fn limit(&self) -> Option<usize> {
        Some(self.limit.load(Ordering::Relaxed)).filter(|&l| l != usize::MAX)
    }

    /// Bytes the live instances hold.
    #[cfg_attr(not(test), allow(dead_code))] // read by tests
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `bytes` if they fit; otherwise the total they would make.
    fn charge(&self, bytes: usize) -> Result<(), usize> {
        let used = self.used.load(Ordering::Relaxed);
        let total = used.saturating_add(bytes);
        if total > self.limit.load(Ordering::Relaxed) {
            return Err(total);
        }
        self.used.store(total, Ordering::Relaxed);
        Ok(())
    }

    fn release(&self, bytes: usize) {
        let used = self.used.load(Ordering::Relaxed);
        self.used
            .store(used.saturating_sub(bytes), Ordering::Relaxed);
    }
}

/// A container's store data.
#[derive(Debug)]
pub(crate) struct Host {
    pub(crate) io: Arc<Mutex<Io>>,
    /// When the running call must stop (checked on every epoch tick).
    pub(crate) deadline: Option<Instant>,
    /// When, on the guest thread's CPU clock, the running call must stop (checked on every
    /// epoch tick).
    pub(crate) cpu_deadline: Option<confine_runtime_abstract::CpuDeadline>,
    /// Linear memory limit in bytes.
    pub(crate) max_memory: usize,
    /// Growing past the limit fails the `memory.grow` (the module's allocator sees an
    /// ordinary out-of-memory) instead of stopping the call: for the JS plugin, whose QuickJS
    /// turns a failed allocation into a JS error.
    pub(crate) soft_memory: bool,
    /// Table limit in elements.
    pub(crate) max_table: usize,
    /// The encoded answer of the last host call, until `confine.result` copies it.
    pub(crate) result: Vec<u8>,
    /// The zero of the module's monotonic clock.
    pub(crate) started: Instant,
    /// The instance is being initialised to be snapshotted (`snapshot.rs`): its clocks read
    /// zero and asking for randomness traps (but for [`Host::std_keys_taken`]), so that
    /// nothing time- or chance-dependent is frozen into the snapshot and shared by every
    /// container started from it.
    pub(crate) snapshotting: bool,
    /// While snapshotting: Rust's standard library took its per-thread hash map keys (16
    /// bytes, once; see `snapshot.rs`).
    pub(crate) std_keys_taken: bool,
    /// Most output kept unforwarded per stream before more is dropped.
    pub(crate) max_output: usize,
    /// The guest-wide memory budget this store's memory counts against.
    pub(crate) budget: Arc<Budget>,
    /// Bytes of linear memory charged to [`Host::budget`], given back when the store goes.
    pub(crate) charged: usize,
    /// The last growth charged, given back if the growth then fails.
    pending: usize,
    /// The limit, in bytes, that refused a growth (soft memory) since [`Host::take_refused`].
    refused: Option<usize>,
}

impl Host {
    /// Store data with these limits and nothing else going on.
    pub(crate) fn new(
        io: Arc<Mutex<Io>>,
        budget: Arc<Budget>,
        max_memory: usize,
        max_table: usize,
        max_output: usize,
    ) -> Self {
        Host {
            io,
            deadline: None,
            cpu_deadline: None,
            max_memory,
            soft_memory: false,
            max_table,
            result: Vec::new(),
            started: Instant::now(),
            snapshotting: false,
            std_keys_taken: false,
            max_output,
            budget,
            charged: 0,
            pending: 0,
            refused: None,
        }
    }

    /// The limit that refused a growth (soft memory) since the last call, if one did.
    pub(crate) fn take_refused(&mut self) -> Option<usize> {
        self.refused.take()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.budget.release(self.charged);
    }
}

impl ResourceLimiter for Host {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let extra = desired.saturating_sub(current);
        let over = if desired > self.max_memory {
            Some(Stop::MemoryLimit {
                desired,
                limit: self.max_memory,
            })
        } else {
            self.budget
                .charge(extra)
                .err()
                .map(|total| Stop::GuestMemoryLimit {
                    desired: total,
                    limit: self.budget.limit().unwrap_or(usize::MAX),
                })
        };
        if let Some(stop) = over {
            // `current == 0` is instantiation itself, where no allocator could report it.
            if self.soft_memory && current > 0 {
                self.refused = Some(match stop {
                    Stop::GuestMemoryLimit { limit, .. } | Stop::MemoryLimit { limit, .. } => limit,
                    _ => self.max_memory,
                });
                return Ok(false);
            }
            // An error (not `Ok(false)`) so the call stops with a typed limit error instead
            // of the module's allocator aborting with an anonymous trap.
            return Err(wasmtime::Error::new(stop));
        }
        self.charged += extra;
        self.pending = extra;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // Charged, then refused by the system (the process's memory cap): not held.
        self.budget.release(self.pending);
        self.charged = self
            .charged
            .saturating_sub(std::mem::take(&mut self.pending));
        // The system's cap stands in for the guest's limit (the host sets it above that).
        self.refused = Some(self.budget.limit().unwrap_or(self.max_memory));
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_table {
            return Err(wasmtime::Error::new(Stop::TableLimit {
                desired,
                limit: self.max_table,
            }));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }
}

/// The module's exported `memory`.
pub(crate) fn memory(caller: &mut Caller<'_, Host>) -> Option<Memory> {
    caller.get_export("memory").and_then(Extern::into_memory)
}

/// Copies `len` bytes at `ptr` out of the module's memory; `None` if out of bounds.
pub(crate) fn read(caller: &mut Caller<'_, Host>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let mem = memory(caller)?;
    // Pointers and lengths are unsigned in the wasm32 ABI; `as u32` reinterprets the bits.
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    let data = mem.data(&*caller);
    data.get(start..start.checked_add(len)?).map(<[u8]>::to_vec)
}

/// Writes `bytes` at `ptr` in the module's memory; `None` if out of bounds.
pub(crate) fn write(caller: &mut Caller<'_, Host>, ptr: i32, bytes: &[u8]) -> Option<()> {
    let mem = memory(caller)?;
    mem.write(&mut *caller, ptr as u32 as usize, bytes).ok()
}

/// Waits until the runtime has put the host's answer into [`Io::answer`]. Polled with a
/// no-op waker by the runtime, which knows when to poll again (see `container.rs`).
struct Answer(Arc<Mutex<Io>>);

impl Future for Answer {
    type Output = Result<Value, ErrorData>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        match lock(&self.0).answer.take() {
            Some(answer) => Poll::Ready(answer),
            None => Poll::Pending,
        }
    }
}

/// Adds the `confine` import module:
///
/// * `call_host(path_ptr, path_len, args_ptr, args_len) -> i32`: calls the host global at the
///   dotted path with a JSON array of arguments, waits for the answer, and returns the byte
///   length of the answer's envelope;
/// * `result(ptr)`: copies that envelope to `ptr` (which must have room for it).
pub(crate) fn add_confine(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap_async(
        abi::IMPORT_MODULE,
        "call_host",
        |mut caller: Caller<'_, Host>,
         (path_ptr, path_len, args_ptr, args_len): (i32, i32, i32, i32)| {
            Box::new(async move {
                let (Some(path), Some(args)) = (
                    read(&mut caller, path_ptr, path_len),
                    read(&mut caller, args_ptr, args_len),
                ) else {
                    return Err(wasmtime::Error::new(Stop::Abi(
                        "confine.call_host: path or arguments outside linear memory".to_owned(),
                    )));
                };
                let request = match String::from_utf8(path) {
                    Ok(path) => abi::decode_args(&args)
                        .map(|args| (path.split('.').map(str::to_owned).collect(), args)),
                    Err(_) => Err(ErrorData::new(
                        confine_runtime_abstract::ErrorKind::Conversion,
                        "TypeError",
                        "confine.call_host: the path is not UTF-8",
                    )),
                };
                let answer = match request {
                    Ok(request) => {
                        let io = caller.data().io.clone();
                        {
                            let mut io = lock(&io);
                            io.answer = None;
                            io.request = Some(request);
                        }
                        Answer(io).await
                    }
                    Err(e) => Err(e),
                };
                let bytes = abi::encode_outcome(answer);
                let len = i32::try_from(bytes.len()).map_err(|_| {
                    wasmtime::Error::new(Stop::Abi("host call result over 2 GiB".to_owned()))
                })?;
                caller.data_mut().result = bytes;
                Ok(len)
            })
        },
    )?;
    linker.func_wrap(
        abi::IMPORT_MODULE,
        "result",
        |mut caller: Caller<'_, Host>, ptr: i32| -> wasmtime::Result<()> {
            let bytes = std::mem::take(&mut caller.data_mut().result);
            write(&mut caller, ptr, &bytes).ok_or_else(|| {
                wasmtime::Error::new(Stop::Abi(
                    "confine.result: destination outside linear memory".to_owned(),
                ))
            })
        },
    )?;
    Ok(())
}

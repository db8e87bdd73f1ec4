//! The part of WASI preview 1 a container gets: stdout/stderr (forwarded to the host as console
//! output), an empty stdin, no arguments, no environment, clocks, randomness, `proc_exit`.
//!
//! Written here rather than taken from `wasmtime-wasi` on purpose: a container has no files,
//! no preopened directories, no sockets and no environment, so what remains is a dozen small
//! functions, whereas `wasmtime-wasi`'s preview-1 layer pulls in the component model, an async
//! runtime with its own threads, and `cap-std`, for capabilities we would then have to keep
//! switched off. Every other preview-1 function a module imports is linked to a stub that
//! returns `ENOSYS` (see [`stub_missing`]), so a module built against full WASI still
//! instantiates and sees "not supported" where it reaches for files or sockets.

use crate::host::{lock, read, write, Host, Stop};
use std::time::{SystemTime, UNIX_EPOCH};
use wasmtime::{Linker, Module, Val, ValType};

/// The preview-1 import module.
pub(crate) const NAMESPACE: &str = "wasi_snapshot_preview1";

/// The functions [`add`] defines; everything else in [`NAMESPACE`] is a stub.
const PROVIDED: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "random_get",
    "fd_write",
    "fd_read",
    "fd_close",
    "fd_fdstat_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_seek",
    "proc_exit",
    "sched_yield",
];

// The preview-1 errno values used here.
const ESUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const EIO: i32 = 29;
const ENOSYS: i32 = 52;
const ESPIPE: i32 = 70;

/// `filetype::character_device`.
const CHARACTER_DEVICE: u8 = 2;
/// `rights::fd_read` and `rights::fd_write`.
const RIGHT_READ: u64 = 1 << 1;
const RIGHT_WRITE: u64 = 1 << 6;

/// Largest number of iovecs one `fd_write`/`fd_read` may pass (POSIX's `IOV_MAX`).
const MAX_IOVS: u32 = 1024;

/// A result that is an errno: `Err(e)` is returned to the module as `e`.
type Errno = Result<(), i32>;

fn errno(r: Errno) -> i32 {
    match r {
        Ok(()) => ESUCCESS,
        Err(e) => e,
    }
}

fn put(caller: &mut wasmtime::Caller<'_, Host>, ptr: i32, bytes: &[u8]) -> Errno {
    write(caller, ptr, bytes).ok_or(EFAULT)
}

/// Adds the provided functions to `linker`.
pub(crate) fn add(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    // No arguments and no environment: both lists are empty.
    for (list, sizes) in [
        ("args_get", "args_sizes_get"),
        ("environ_get", "environ_sizes_get"),
    ] {
        linker.func_wrap(
            NAMESPACE,
            list,
            |_: wasmtime::Caller<'_, Host>, _: i32, _: i32| ESUCCESS,
        )?;
        linker.func_wrap(
            NAMESPACE,
            sizes,
            |mut caller: wasmtime::Caller<'_, Host>, count: i32, size: i32| {
                errno(
                    put(&mut caller, count, &0u32.to_le_bytes())
                        .and_then(|()| put(&mut caller, size, &0u32.to_le_bytes())),
                )
            },
        )?;
    }
    linker.func_wrap(
        NAMESPACE,
        "clock_res_get",
        |mut caller: wasmtime::Caller<'_, Host>, id: i32, res: i32| {
            if !(0..=3).contains(&id) {
                return EINVAL;
            }
            errno(put(&mut caller, res, &1_000u64.to_le_bytes()))
        },
    )?;
    linker.func_wrap(
        NAMESPACE,
        "clock_time_get",
        |mut caller: wasmtime::Caller<'_, Host>, id: i32, _precision: i64, out: i32| {
            let nanos = match id {
                _ if caller.data().snapshotting && (0..=3).contains(&id) => 0,
                // realtime
                0 => SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
                // monotonic; the CPU-time clocks are approximated by it (a module cannot
                // tell CPU time from wall time without a second thread anyway)
                1..=3 => caller.data().started.elapsed().as_nanos(),
                _ => return EINVAL,
            };
            let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
            errno(put(&mut caller, out, &nanos.to_le_bytes()))
        },
    )?;
    linker.func_wrap(
        NAMESPACE,
        "random_get",
        |mut caller: wasmtime::Caller<'_, Host>, buf: i32, len: i32| -> wasmtime::Result<i32> {
            let host = caller.data_mut();
            if host.snapshotting {
                // Rust's hash map keys, once (see `snapshot.rs`); anything else would be
                // shared by every container started from the snapshot.
                if len != 16 || std::mem::replace(&mut host.std_keys_taken, true) {
                    return Err(wasmtime::Error::msg(
                        "the JS plugin asked for randomness while it was being snapshotted: \
                         every container started from the snapshot would share it",
                    ));
                }
            }
            let mut left = len as u32 as usize;
            let mut at = buf as u32;
            let mut chunk = [0u8; 256];
            while left > 0 {
                let n = left.min(chunk.len());
                if !fill_random(&mut chunk[..n]) {
                    return Ok(EIO);
                }
                if let Err(e) = put(&mut caller, at as i32, &chunk[..n]) {
                    return Ok(e);
                }
                left -= n;
                at = at.wrapping_add(n as u32);
            }
            Ok(ESUCCESS)
        },
    )?;
    linker.func_wrap(
        NAMESPACE,
        "fd_write",
        |mut caller: wasmtime::Caller<'_, Host>, fd: i32, iovs: i32, count: i32, out: i32| {
            errno(fd_write(&mut caller, fd, iovs, count, out))
        },
    )?;
    linker.func_wrap(
        NAMESPACE,
        "fd_read",
        |mut caller: wasmtime::Caller<'_, Host>, fd: i32, _iovs: i32, _count: i32, out: i32| {
            if fd != 0 {
                return EBADF;
            }
            // stdin is empty: every read is end-of-file.
            errno(put(&mut caller, out, &0u32.to_le_bytes()))
        },
    )?;
    linker.func_wrap(
        NAMESPACE,
        "fd_close",
        |_: wasmtime::Caller<'_, Host>, fd: i32| {
            if (0..=2).contains(&fd) {
                ESUCCESS
            } else {
                EBADF
            }
        },
    )?;
    linker.func_wrap(
        NAMESPACE,
        "fd_fdstat_get",
        |mut caller: wasmtime::Caller<'_, Host>, fd: i32, out: i32| {
            let rights = match fd {
                0 => RIGHT_READ,
                1 | 2 => RIGHT_WRITE,
                _ => return EBADF,
            };
            // struct fdstat { u8 filetype; u16 flags @2; u64 rights_base @8; u64 inheriting @16 }
            let mut stat = [0u8; 24];
            stat[0] = CHARACTER_DEVICE;
            stat[8..16].copy_from_slice(&rights.to_le_bytes());
            errno(put(&mut caller, out, &stat))
        },
    )?;
    // No preopened directories: EBADF from fd_prestat_get is how a module learns the list is
    // empty (wasi-libc stops scanning at the first EBADF).
    linker.func_wrap(
        NAMESPACE,
        "fd_prestat_get",
        |_: wasmtime::Caller<'_, Host>, _: i32, _: i32| EBADF,
    )?;
    linker.func_wrap(
        NAMESPACE,
        "fd_prestat_dir_name",
        |_: wasmtime::Caller<'_, Host>, _: i32, _: i32, _: i32| EBADF,
    )?;
    linker.func_wrap(
        NAMESPACE,
        "fd_seek",
        |_: wasmtime::Caller<'_, Host>, fd: i32, _: i64, _: i32, _: i32| {
            if (0..=2).contains(&fd) {
                ESPIPE
            } else {
                EBADF
            }
        },
    )?;
    linker.func_wrap(
        NAMESPACE,
        "proc_exit",
        |_: wasmtime::Caller<'_, Host>, code: i32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(Stop::Exit(code)))
        },
    )?;
    linker.func_wrap(NAMESPACE, "sched_yield", |_: wasmtime::Caller<'_, Host>| {
        ESUCCESS
    })?;
    Ok(())
}

fn fd_write(
    caller: &mut wasmtime::Caller<'_, Host>,
    fd: i32,
    iovs: i32,
    count: i32,
    out: i32,
) -> Errno {
    if fd != 1 && fd != 2 {
        return Err(EBADF);
    }
    let count = count as u32;
    if count > MAX_IOVS {
        return Err(EINVAL);
    }
    // struct ciovec { u32 buf; u32 buf_len; }
    let table = read(caller, iovs, (count * 8) as i32).ok_or(EFAULT)?;
    let mut data = Vec::new();
    for iov in table.chunks_exact(8) {
        let word = |i: usize| u32::from_le_bytes([iov[i], iov[i + 1], iov[i + 2], iov[i + 3]]);
        let bytes = read(caller, word(0) as i32, word(4) as i32).ok_or(EFAULT)?;
        data.extend_from_slice(&bytes);
    }
    let written = u32::try_from(data.len()).map_err(|_| EINVAL)?;
    let max = caller.data().max_output;
    {
        let io = caller.data().io.clone();
        let mut io = lock(&io);
        let stream = if fd == 1 {
            &mut io.stdout
        } else {
            &mut io.stderr
        };
        // Output beyond the cap (between two flushes) is dropped, as a full pipe would; the
        // module still sees it written so it does not spin retrying.
        let room = max.saturating_sub(stream.len());
        stream.extend_from_slice(&data[..data.len().min(room)]);
    }
    put(caller, out, &written.to_le_bytes())
}

/// Fills `buf` from the kernel's CSPRNG.
fn fill_random(buf: &mut [u8]) -> bool {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `buf`, which is valid
        // for writes for the duration of the call.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return false;
        }
        done += n as usize;
    }
    true
}

/// Links every preview-1 function `module` imports that [`add`] does not provide to a stub:
/// `ENOSYS` for functions returning an errno, a trap for anything else.
pub(crate) fn stub_missing(linker: &mut Linker<Host>, module: &Module) -> wasmtime::Result<()> {
    for import in module.imports() {
        if import.module() != NAMESPACE || PROVIDED.contains(&import.name()) {
            continue;
        }
        let Some(ty) = import.ty().func().cloned() else {
            continue;
        };
        let name = import.name().to_owned();
        let returns_errno =
            ty.results().len() == 1 && matches!(ty.results().next(), Some(ValType::I32));
        linker.func_new(NAMESPACE, import.name(), ty, move |_, _, results| {
            if returns_errno {
                if let Some(slot) = results.first_mut() {
                    *slot = Val::I32(ENOSYS);
                }
                Ok(())
            } else {
                Err(wasmtime::Error::new(Stop::Abi(format!(
                    "{NAMESPACE}.{name} is not available in a confine container"
                ))))
            }
        })?;
    }
    Ok(())
}

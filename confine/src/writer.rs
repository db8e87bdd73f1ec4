//! The write side of a guest connection.
//!
//! A lone request's frame is written straight from the caller's task with a non-blocking
//! write when nothing is queued ahead of it: one `write` and no task switch, which is what a
//! single call's latency is made of. When other requests are in flight, the socket is full, or
//! frames are already queued, the frame joins the queue and the writer task drains it, several
//! frames per `write`, in order: that is what throughput with many calls in flight is made of. Frames never interleave: the direct write happens under the same lock
//! that guards the queue, and only when the queue is empty and the task idle.

use std::{
    io,
    os::fd::AsRawFd,
    sync::{Arc, Mutex, OnceLock},
};
use tokio::{net::unix::OwnedWriteHalf, sync::Notify};

/// The connection is closed for writing.
#[derive(Debug)]
pub(crate) struct WriteClosed;

#[derive(Default)]
struct State {
    /// Bytes waiting for the writer task, in order.
    queue: Vec<u8>,
    /// The writer task owns the socket until it finds the queue empty.
    busy: bool,
    /// No more frames are accepted; the task shuts the socket down once drained.
    closing: bool,
}

/// Shared by the connection's callers and its writer task.
pub(crate) struct Writer {
    half: OnceLock<OwnedWriteHalf>,
    state: Mutex<State>,
    wake: Notify,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("attached", &self.half.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// A writer with no socket yet: frames queue until [`Writer::attach`].
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Writer {
            half: OnceLock::new(),
            state: Mutex::new(State::default()),
            wake: Notify::new(),
        })
    }

    /// Gives the writer its socket and starts the task that drains the queue.
    pub(crate) fn attach(self: &Arc<Self>, half: OwnedWriteHalf) {
        if self.half.set(half).is_ok() {
            tokio::spawn(drain(Arc::clone(self)));
        }
    }

    /// Sends one encoded frame, writing it at once if nothing is queued ahead of it.
    pub(crate) fn send(&self, frame: &[u8]) -> Result<(), WriteClosed> {
        self.push(frame, true)
    }

    /// Queues one encoded frame for the writer task, which writes everything queued in one
    /// go: the cheaper path when many frames are being sent at once.
    pub(crate) fn enqueue(&self, frame: &[u8]) -> Result<(), WriteClosed> {
        self.push(frame, false)
    }

    fn push(&self, frame: &[u8], direct: bool) -> Result<(), WriteClosed> {
        let mut st = self.state.lock().map_err(|_| WriteClosed)?;
        if st.closing {
            return Err(WriteClosed);
        }
        let mut rest = frame;
        if direct && !st.busy && st.queue.is_empty() {
            if let Some(half) = self.half.get() {
                match half.try_write(frame) {
                    Ok(n) if n == frame.len() => return Ok(()),
                    Ok(n) => rest = &frame[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // The reader sees the same failure as EOF and reports it.
                    Err(_) => {
                        st.closing = true;
                        return Err(WriteClosed);
                    }
                }
            }
        }
        st.queue.extend_from_slice(rest);
        self.kick(&mut st);
        Ok(())
    }

    /// Accepts no more frames; the socket is shut down for writing (the guest reads EOF) once
    /// what is queued has been written.
    pub(crate) fn close(&self) {
        if let Ok(mut st) = self.state.lock() {
            if !st.closing {
                st.closing = true;
                self.kick(&mut st);
            }
        }
    }

    fn kick(&self, st: &mut State) {
        if !st.busy {
            st.busy = true;
            self.wake.notify_one();
        }
    }
}

async fn drain(writer: Arc<Writer>) {
    let Some(half) = writer.half.get() else {
        return;
    };
    let mut batch = Vec::new();
    loop {
        writer.wake.notified().await;
        loop {
            let closing = match writer.state.lock() {
                Ok(mut st) => {
                    std::mem::swap(&mut batch, &mut st.queue);
                    if batch.is_empty() {
                        st.busy = false;
                    }
                    st.closing
                }
                Err(_) => return,
            };
            if batch.is_empty() {
                if closing {
                    // SAFETY: shutdown on an fd the write half keeps open; no memory involved.
                    unsafe { libc::shutdown(half.as_ref().as_raw_fd(), libc::SHUT_WR) };
                    return;
                }
                break;
            }
            if write_all(half, &batch).await.is_err() {
                if let Ok(mut st) = writer.state.lock() {
                    st.closing = true;
                }
                return;
            }
            batch.clear();
            if batch.capacity() > 1 << 20 {
                batch = Vec::new();
            }
        }
    }
}

async fn write_all(half: &OwnedWriteHalf, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        half.writable().await?;
        match half.try_write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

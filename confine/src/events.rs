//! Lifecycle events of a sandbox: errors nobody awaited, containers closing, the guest exiting.

use crate::error::ExitInfo;
use confine_runtime_abstract::{ContainerId, ErrorData};
use tokio::sync::broadcast;

/// Something that happened in a sandbox outside any request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// Script code threw where no request was waiting: in a timer callback, or a promise
    /// rejection nobody handled.
    Uncaught {
        /// The container.
        cid: ContainerId,
        /// The script's error.
        error: ErrorData,
    },
    /// A container was killed.
    ContainerClosed {
        /// The container.
        cid: ContainerId,
    },
    /// The guest process ended; nothing more will happen in this sandbox.
    GuestExited(ExitInfo),
    /// This receiver fell behind and missed this many events.
    Lagged(u64),
}

/// Receives a sandbox's [`Event`]s from the moment it was created.
///
/// Each receiver sees every event (up to 1024 buffered; past that, [`Event::Lagged`]).
#[derive(Debug)]
pub struct Events {
    rx: broadcast::Receiver<Event>,
}

impl Events {
    pub(crate) fn new(rx: broadcast::Receiver<Event>) -> Self {
        Events { rx }
    }

    /// The next event, or `None` once the sandbox is gone and every event was read.
    pub async fn recv(&mut self) -> Option<Event> {
        match self.rx.recv().await {
            Ok(e) => Some(e),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Event::Lagged(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next event if one is ready now.
    pub fn try_recv(&mut self) -> Option<Event> {
        match self.rx.try_recv() {
            Ok(e) => Some(e),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Event::Lagged(n)),
            Err(_) => None,
        }
    }
}

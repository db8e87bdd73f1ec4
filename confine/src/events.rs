//! Lifecycle events of a sandbox: errors nobody awaited, containers closing, the guest exiting
//! and being restarted.

use crate::error::{Error, ExitInfo};
use confine_runtime_abstract::{ContainerId, ErrorData};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Something that happened in a sandbox outside any request.
#[derive(Debug, Clone)]
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
    /// The guest process ended. Nothing more will happen in this sandbox, unless its
    /// [`crate::RestartPolicy`] starts a new guest ([`Event::Restarted`] then).
    GuestExited(ExitInfo),
    /// A new guest serves the sandbox after the last one died ([`crate::restart`]).
    Restarted {
        /// How the guest before it ended.
        exit: ExitInfo,
        /// The new guest's process id.
        pid: u32,
        /// The containers re-created from their sources, under their old ids.
        containers: Vec<ContainerId>,
        /// The containers whose top-level code failed this time, with its error; they are
        /// gone, and their ids are never handed out again.
        lost: Vec<(ContainerId, ErrorData)>,
    },
    /// Starting a new guest failed; the policy decides whether another attempt follows.
    RestartFailed {
        /// Why it failed.
        error: Arc<Error>,
    },
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

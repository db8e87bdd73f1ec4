//! State a container shares with the Rust functions it exposes to script code.
//!
//! Script-facing functions (`setTimeout`, host globals, promise callbacks) are Rust closures
//! owned by JS function objects, so they cannot borrow the container: they hold an
//! `Rc<Shared>` instead (wrapped in [`Untraced`]). Two rules keep that sound:
//!
//! * no `RefCell` borrow of this state is held while script code runs (script code may call
//!   back into the same closures);
//! * every JS handle stored here is dropped by [`Shared::clear`] when the container goes:
//!   boa's collector treats handles held outside its heap as roots, so a JS function owning a
//!   closure owning this state owning a handle would otherwise keep the container's objects
//!   alive for the life of the process.

use crate::timers::Timers;
use boa_engine::{
    gc::{Finalize, Trace},
    object::builtins::JsFunction,
    JsObject, JsValue,
};
use confine_runtime_abstract::{ContainerId, HostCallId, Link, RequestId};
use std::{
    cell::RefCell,
    collections::{BTreeSet, HashMap},
    rc::Rc,
};

pub(crate) use confine_runtime_abstract::support::Clock;

/// A host call awaiting the host's answer: how to settle the promise script code holds.
pub(crate) struct HostCall {
    pub(crate) resolve: JsFunction,
    pub(crate) reject: JsFunction,
}

/// A promise rejected with no handler attached (yet).
pub(crate) struct Rejection {
    pub(crate) promise: JsObject,
    pub(crate) reason: JsValue,
}

/// Per-container state reachable from script-facing closures.
pub(crate) struct Shared {
    pub(crate) cid: ContainerId,
    pub(crate) link: Link,
    pub(crate) clock: Rc<Clock>,
    pub(crate) timers: RefCell<Timers>,
    pub(crate) host_calls: RefCell<HashMap<HostCallId, HostCall>>,
    /// Export calls whose returned promise has not settled; answered on kill.
    pub(crate) replies: RefCell<BTreeSet<RequestId>>,
    pub(crate) rejections: RefCell<Vec<Rejection>>,
}

impl Shared {
    pub(crate) fn new(cid: ContainerId, link: Link, clock: Rc<Clock>) -> Self {
        Shared {
            cid,
            link,
            clock,
            timers: RefCell::default(),
            host_calls: RefCell::default(),
            replies: RefCell::default(),
            rejections: RefCell::default(),
        }
    }

    /// Records a rejection without a handler (boa's `HostPromiseRejectionTracker`, operation
    /// "reject").
    pub(crate) fn track_rejection(&self, promise: JsObject, reason: JsValue) {
        self.rejections
            .borrow_mut()
            .push(Rejection { promise, reason });
    }

    /// Forgets a rejection: a handler was attached after all (operation "handle"), or the
    /// caller reports the rejection itself (a module whose evaluation failed).
    pub(crate) fn forget_rejection(&self, promise: &JsObject) {
        let dropped: Vec<Rejection> = {
            let mut list = self.rejections.borrow_mut();
            let (gone, kept) = std::mem::take(&mut *list)
                .into_iter()
                .partition(|r| JsObject::equals(&r.promise, promise));
            *list = kept;
            gone
        };
        drop(dropped);
    }

    /// Drops every JS handle held here. Handles are moved out first and dropped after the
    /// borrows end, since dropping one may drop closures that hold this state.
    pub(crate) fn clear(&self) {
        let timers = self.timers.borrow_mut().clear();
        let calls = std::mem::take(&mut *self.host_calls.borrow_mut());
        let rejections = std::mem::take(&mut *self.rejections.borrow_mut());
        self.replies.borrow_mut().clear();
        drop((timers, calls, rejections));
    }
}

/// Rust data a native function closes over, hidden from boa's garbage collector.
///
/// boa asks closures' captures to be [`Trace`] so it can see JS handles inside them. What this
/// crate captures is Rust state (`Rc<Shared>`, a path, a request id) whose JS handles are
/// deliberately *roots*: boa_gc counts references, and a handle its tracer does not reach is
/// treated as live. They are released by [`Shared::clear`] when the container goes, so nothing
/// leaks past a container's life.
pub(crate) struct Untraced<T: 'static>(pub(crate) T);

impl<T: 'static> Finalize for Untraced<T> {}

// SAFETY: `trace` reports no edges. That is sound in boa_gc's reference-counting design: a
// `Gc` reached from here but not traced keeps a reference count the tracer cannot account for,
// so the collector treats its target as a root and never frees it while this value lives. The
// worst outcome is a delayed release, which `Shared::clear` bounds.
unsafe impl<T: 'static> Trace for Untraced<T> {
    boa_engine::gc::empty_trace!();
}

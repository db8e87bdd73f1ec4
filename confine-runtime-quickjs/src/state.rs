//! State a container shares with the Rust functions it exposes to script code.
//!
//! Script-facing functions (`setTimeout`, host globals, promise callbacks) are Rust closures
//! owned by JS function objects, so they cannot borrow the container: they hold an
//! `Rc<Shared>` instead. Two rules keep that sound:
//!
//! * no `RefCell` borrow of this state is held while script code runs (script code may call
//!   back into the same closures);
//! * every JS handle stored here is dropped by [`Shared::clear`] before the container's
//!   runtime is freed: QuickJS aborts the process if an object is still referenced then, and
//!   a JS function owning a closure owning a handle is a cycle its garbage collector cannot
//!   see.

use crate::timers::Timers;
use confine_runtime_abstract::{ContainerId, HostCallId, Link, RequestId};
use rquickjs::{Ctx, Function, Persistent, Value};
use std::{
    cell::RefCell,
    collections::{BTreeSet, HashMap},
    rc::Rc,
};

pub(crate) use confine_runtime_abstract::support::Clock;

/// A host call awaiting the host's answer: how to settle the promise script code holds.
pub(crate) struct HostCall {
    pub(crate) resolve: Persistent<Function<'static>>,
    pub(crate) reject: Persistent<Function<'static>>,
}

/// A promise rejected with no handler attached (yet).
pub(crate) struct Rejection {
    pub(crate) promise: Persistent<Value<'static>>,
    pub(crate) reason: Persistent<Value<'static>>,
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

    /// The runtime's promise rejection tracker: QuickJS reports a rejection without a handler
    /// (`handled == false`), and again if a handler is attached later (`handled == true`).
    pub(crate) fn track_rejection<'js>(
        &self,
        ctx: &Ctx<'js>,
        promise: Value<'js>,
        reason: Value<'js>,
        handled: bool,
    ) {
        let promise = Persistent::save(ctx, promise);
        if handled {
            self.drop_rejections_of(&promise);
        } else {
            let reason = Persistent::save(ctx, reason);
            self.rejections
                .borrow_mut()
                .push(Rejection { promise, reason });
        }
    }

    /// Forgets a rejection the caller reports itself (a module whose evaluation failed).
    pub(crate) fn forget_rejection<'js>(&self, ctx: &Ctx<'js>, promise: Value<'js>) {
        self.drop_rejections_of(&Persistent::save(ctx, promise));
    }

    /// Removes the rejections of `promise`, dropping their handles after the borrow ends.
    fn drop_rejections_of(&self, promise: &Persistent<Value<'static>>) {
        let dropped: Vec<Rejection> = {
            let mut list = self.rejections.borrow_mut();
            let (gone, kept) = std::mem::take(&mut *list)
                .into_iter()
                .partition(|r| r.promise == *promise);
            *list = kept;
            gone
        };
        drop(dropped);
    }

    /// Drops every JS handle held here. Handles are moved out first and dropped after the
    /// borrows end, since freeing an object may drop closures that hold this state.
    pub(crate) fn clear(&self) {
        let timers = self.timers.borrow_mut().clear();
        let calls = std::mem::take(&mut *self.host_calls.borrow_mut());
        let rejections = std::mem::take(&mut *self.rejections.borrow_mut());
        self.replies.borrow_mut().clear();
        drop((timers, calls, rejections));
    }
}

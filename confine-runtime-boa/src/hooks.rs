//! The host hooks of a container's context: promise rejection tracking, and a time zone that
//! does not depend on the machine.

use crate::state::Shared;
use boa_engine::builtins::promise::PromiseState;
use boa_engine::{
    builtins::promise::{OperationType, Promise},
    context::HostHooks,
    object::builtins::JsPromise,
    Context, JsObject,
};
use std::rc::Rc;

/// Hooks that report to one container's [`Shared`] state.
pub(crate) struct Hooks {
    pub(crate) shared: Rc<Shared>,
}

impl HostHooks for Hooks {
    /// boa calls this when a promise is rejected with no handler ("reject"), and again if a
    /// handler is attached later ("handle"); rejections still unhandled once the jobs have
    /// run are reported as uncaught, as in node.
    fn promise_rejection_tracker(
        &self,
        promise: &JsObject<Promise>,
        operation: OperationType,
        _context: &mut Context,
    ) {
        let promise = promise.clone().upcast();
        match operation {
            OperationType::Reject => {
                let reason = match JsPromise::from_object(promise.clone()).map(|p| p.state()) {
                    Ok(PromiseState::Rejected(reason)) => reason,
                    _ => return,
                };
                self.shared.track_rejection(promise, reason);
            }
            OperationType::Handle => self.shared.forget_rejection(&promise),
        }
    }

    /// UTC. boa's default asks the `time` crate for the machine's zone, which reads
    /// `/etc/localtime` (closed in the sandbox) and would make `Date` differ between
    /// sandboxed and unsandboxed runs; a guest has no environment either (`TZ`).
    fn local_timezone_offset_seconds(&self, _unix_time_seconds: i64) -> i32 {
        0
    }
}

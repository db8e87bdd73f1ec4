//! Tests every JavaScript runtime must pass, run against the runtime directly (no guest
//! process, no host), the way `confine_guest::serve` drives it: a [`Harness`] owns the
//! runtime and its [`Link`] and records what the runtime sends.
//!
//! A runtime crate runs the whole set with one line in its unit tests,
//! `confine_runtime_testkit::runtime_cases!(MyRuntime::default);`, and keeps beside it the
//! tests of what is its own (its engine's name, how its recursion limit behaves). The
//! conformance suite in `tests/` checks the same behaviour end to end through real guests;
//! these cases pin it down at the trait, where failures are easy to read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use confine_runtime_abstract::{
    protocol::{GlobalDef, GlobalKind, GuestMessage, GuestRequest, LogLevel, Reply, Source},
    AbstractRuntime, ContainerId, ErrorData, ErrorKind, Link, Map, ReplyTo, RequestId, Value,
};
use std::time::{Duration, Instant};

pub mod cases;

/// Defines one `#[test]` per case in [`cases`], each running it on runtimes made by `$new`
/// (a `fn() -> R`, such as `QuickJs::default`).
#[macro_export]
macro_rules! runtime_cases {
    ($new:expr) => {
        $crate::runtime_cases!(@each $new; commonjs_exports_sync_and_async, commonjs_hashbang_and_strictness, commonjs_module_exports_replaced, commonjs_exports_read_at_call_time, esm_exports_sync_and_async, esm_top_level_await, esm_top_level_await_on_host_call, esm_top_level_throw_is_exec_error, commonjs_top_level_throw_is_exec_error, values_round_trip, js_values_convert_like_json, bigint_outside_i128_is_conversion_error, cyclic_and_deep_results_are_conversion_errors, too_deep_arguments_are_rejected, throw_gives_name_message_and_stack, async_rejection_and_non_error_throws, syntax_errors_have_locations, missing_export_and_unknown_container, exec_before_init_fails, binary_source_is_unsupported, host_function_round_trip, host_function_argument_that_does_not_convert_throws, nested_and_value_globals, global_through_non_object_fails, console_levels_and_formatting, timers_fire_in_order_with_jobs_between, self_rearming_timer_waits_for_next_round, uncaught_errors_are_reported, idle_transitions, containers_are_isolated, nothing_of_the_host_is_reachable, static_import_is_refused, dynamic_import_in_module_is_refused, kill_answers_pending_calls, dropping_the_runtime_with_live_state_is_clean, host_function_defined_after_start);
    };
    (@each $new:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::cases::$case($new);
            }
        )*
    };
}

/// A runtime driven through its [`Link`] the way the serve loop drives it, with everything it
/// sent kept for the test to look at.
#[derive(Debug)]
pub struct Harness<R> {
    /// The runtime under test.
    pub rt: R,
    /// Its link (the serve loop's end).
    pub link: Link,
    /// Everything the runtime sent, oldest first.
    pub seen: Vec<GuestMessage>,
    next_request: RequestId,
    /// The globals later containers get (what the serve loop would pass to `exec_container`).
    pub globals: Vec<GlobalDef>,
}

impl<R: AbstractRuntime> Harness<R> {
    /// Initialises `rt` with a new link.
    ///
    /// # Panics
    /// If `init` fails.
    pub fn new(mut rt: R) -> Self {
        let link = Link::new();
        rt.init(link.clone()).unwrap();
        Harness {
            rt,
            link,
            seen: Vec::new(),
            next_request: 1000,
            globals: Vec::new(),
        }
    }

    /// Creates container `cid` from `code` (named `test.js`) with [`Harness::globals`].
    pub fn exec(&mut self, cid: ContainerId, code: &str) -> Result<(), ErrorData> {
        let source = Source::text(code, "test.js");
        let globals = self.globals.clone();
        self.rt.exec_container(cid, &source, &Value::Null, &globals)
    }

    /// [`Harness::exec`], panicking on an error.
    pub fn exec_ok(&mut self, cid: ContainerId, code: &str) {
        if let Err(e) = self.exec(cid, code) {
            panic!("exec failed: {e:?}");
        }
    }

    /// Starts a call; the answer is looked up with [`Harness::response`].
    pub fn start(&mut self, cid: ContainerId, export: &str, args: Vec<Value>) -> RequestId {
        self.next_request += 1;
        let id = self.next_request;
        self.rt.call(cid, export, args, ReplyTo(id));
        id
    }

    /// Runs what is pending now; when the runtime next has work.
    pub fn pump(&mut self) -> Option<Instant> {
        let next = self.rt.run_pending(Instant::now());
        self.collect();
        next
    }

    /// Moves what the runtime sent into [`Harness::seen`].
    pub fn collect(&mut self) {
        let new = self.link.take_outgoing();
        self.seen.extend(new);
    }

    /// The answer to request `id`, if it came.
    pub fn response(&mut self, id: RequestId) -> Option<Result<Reply, ErrorData>> {
        self.collect();
        self.seen.iter().find_map(|m| match m {
            GuestMessage::Response { id: rid, result } if *rid == id => Some(result.clone()),
            _ => None,
        })
    }

    /// Calls an export, runs what is pending, and returns the answer.
    pub fn call(
        &mut self,
        cid: ContainerId,
        export: &str,
        args: Vec<Value>,
    ) -> Result<Value, ErrorData> {
        let id = self.start(cid, export, args);
        self.pump();
        match self.response(id) {
            Some(Ok(Reply::Value(v))) => Ok(v),
            Some(Ok(other)) => panic!("unexpected reply {other:?}"),
            Some(Err(e)) => Err(e),
            None => panic!("no answer to call of {export}"),
        }
    }

    /// [`Harness::call`], panicking on an error.
    pub fn call_ok(&mut self, cid: ContainerId, export: &str, args: Vec<Value>) -> Value {
        match self.call(cid, export, args) {
            Ok(v) => v,
            Err(e) => panic!("call of {export} failed: {e:?}"),
        }
    }

    /// Every host call the runtime made: id, container, path, arguments.
    pub fn host_calls(&mut self) -> Vec<(RequestId, ContainerId, Vec<String>, Vec<Value>)> {
        self.collect();
        self.seen
            .iter()
            .filter_map(|m| match m {
                GuestMessage::Request {
                    id,
                    request: GuestRequest::HostCall { cid, path, args },
                } => Some((*id, *cid, path.clone(), args.clone())),
                _ => None,
            })
            .collect()
    }

    /// Every console line: container, level, text.
    pub fn logs(&mut self) -> Vec<(ContainerId, LogLevel, String)> {
        self.collect();
        self.seen
            .iter()
            .filter_map(|m| match m {
                GuestMessage::Log {
                    cid,
                    level,
                    message,
                } => Some((*cid, *level, message.clone())),
                _ => None,
            })
            .collect()
    }

    /// Every uncaught error: container, error.
    pub fn uncaught(&mut self) -> Vec<(ContainerId, ErrorData)> {
        self.collect();
        self.seen
            .iter()
            .filter_map(|m| match m {
                GuestMessage::Uncaught { cid, error } => Some((*cid, error.clone())),
                _ => None,
            })
            .collect()
    }

    /// Asserts that container `cid` does not exist (a call to it fails so).
    pub fn assert_no_container(&mut self, cid: ContainerId) {
        let e = self.call(cid, "anything", vec![]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NoSuchContainer, "container {cid}: {e:?}");
    }
}

/// A string value.
pub fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

/// A number value.
pub fn n(v: f64) -> Value {
    Value::Number(v)
}

/// An object value.
pub fn obj(pairs: &[(&str, Value)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<Map>(),
    )
}

/// A host-function global at `path`.
pub fn function_global(path: &[&str]) -> GlobalDef {
    GlobalDef {
        path: path.iter().map(|p| (*p).to_owned()).collect(),
        kind: GlobalKind::Function,
    }
}

/// A value global at `path`.
pub fn value_global(path: &[&str], v: Value) -> GlobalDef {
    GlobalDef {
        path: path.iter().map(|p| (*p).to_owned()).collect(),
        kind: GlobalKind::Value(v),
    }
}

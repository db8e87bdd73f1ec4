#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The conformance suite: one set of tests, run for every runtime in the workspace, with the
//! OS sandbox on and off. Adding a runtime is one line in [`suite!`].
//!
//! Each test is an `async fn(&Target)` in a topic module; the macros below turn the list into
//! `#[tokio::test]` functions named `<runtime>_<mode>::<test>`.

mod errors;
mod exports;
mod globals;
mod isolation;
mod lifecycle;

pub(crate) use confine_tests::{Console, Target};

macro_rules! suite_for {
    ($module:ident, $runtime:literal, $sandboxed:literal, [$($module_name:ident :: $test:ident),* $(,)?]) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let target = crate::Target { runtime: $runtime, sandboxed: $sandboxed };
                    crate::$module_name::$test(&target).await;
                }
            )*
        }
    };
}

macro_rules! suite {
    ($tests:tt) => {
        suite_for!(quickjs_sandboxed, "quickjs", true, $tests);
        suite_for!(quickjs_no_sandbox, "quickjs", false, $tests);
        suite_for!(boa_sandboxed, "boa", true, $tests);
        suite_for!(boa_no_sandbox, "boa", false, $tests);
        // JavaScript in the `wasm` runtime: QuickJS compiled to wasm32-wasip1 (the JS plugin,
        // `cargo xtask wasm-plugin`), sandboxed under the `wasm` profile and not.
        suite_for!(wasm_sandboxed, "wasm", true, $tests);
        suite_for!(wasm_no_sandbox, "wasm", false, $tests);
    };
}

suite!([
    exports::commonjs_exports,
    exports::exports_object_shorthand,
    exports::es_module_exports,
    exports::async_exports,
    exports::values_round_trip,
    exports::typed_call_arguments_and_results,
    exports::timers_run_in_order,
    exports::console_levels_forwarded,
    exports::top_level_async_module,
    globals::host_function_async,
    globals::host_function_nested_namespace_and_values,
    globals::globals_defined_after_start,
    globals::host_function_error_rejects,
    globals::export_awaits_host_while_host_calls_other_export,
    globals::hundreds_of_calls_in_flight,
    errors::syntax_error_has_line,
    errors::throw_has_name_message_stack,
    errors::missing_export_is_named,
    errors::killed_container_is_named,
    errors::unknown_container_is_named,
    errors::non_error_throw,
    errors::uncaught_in_timer_is_an_event,
    errors::deep_recursion_is_catchable,
    isolation::prototypes_are_per_container,
    isolation::globals_and_module_state_are_per_container,
    isolation::no_host_objects,
    isolation::imports_of_host_files_fail,
    isolation::constructor_chains_stay_in_the_container,
    lifecycle::list_config_kill,
    lifecycle::wait_idle_waits_for_timers,
    lifecycle::teardown_reports_clean_exit,
    lifecycle::drop_leaves_no_process,
    lifecycle::guest_sigkill_fails_pending_calls,
    lifecycle::guest_exit_fails_pending_calls,
    lifecycle::state_accessors,
]);

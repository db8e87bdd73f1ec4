//! Protocol faults: a guest that lies, sends garbage, or dies is a typed error on the host,
//! never a panic, hang, or leak; the guest is terminated and other sandboxes keep working.
//!
//! The lying guest is `src/bin/fault_guest.rs`, registered under the runtime name `fault`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use confine::{
    report::VerifyCheck, ContainerSource, Error, ProtocolError, Registry, Sandbox, SandboxBuilder,
    SandboxError, Value,
};
use confine_runtime_abstract::codec::CodecError;
use confine_tests::wait_gone;

mod restart;
use std::{path::PathBuf, sync::LazyLock, time::Duration};

const FAULT_GUEST: &str = env!("CARGO_BIN_EXE_fault-guest");

/// Startup faults, selected by the guest executable's file name (`fault-guest-<mode>`).
const STARTUP_MODES: &[&str] = &[
    "ok",
    "no-ready",
    "wrong-version",
    "garbage-first",
    "exit-early",
    "ignore-lockdown",
];

/// One copy of the fault guest per startup mode, all made before any test spawns a guest.
/// Copying while another thread forks would let that child inherit the copy's write fd until
/// its exec, and an exec of the copy meanwhile fails with `ETXTBSY`; every spawning test
/// reaches this first, so no fork runs while a copy is open for writing.
static GUESTS: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("confine-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for mode in STARTUP_MODES {
        std::fs::copy(FAULT_GUEST, dir.join(format!("fault-guest-{mode}"))).unwrap();
    }
    dir
});

/// The copy of the fault guest whose file name selects startup fault `mode`.
fn guest_named(mode: &str) -> PathBuf {
    assert!(STARTUP_MODES.contains(&mode), "unknown startup mode {mode}");
    GUESTS.join(format!("fault-guest-{mode}"))
}

async fn start(mode: &str) -> Result<Sandbox, Error> {
    start_with(mode, false).await
}

/// A builder for the fault guest in `mode`, with the OS sandbox on or off.
fn fault_builder(mode: &str, sandboxed: bool) -> SandboxBuilder {
    let mut registry = Registry::new();
    registry.register("fault", guest_named(mode));
    Sandbox::builder()
        .runtime("fault")
        .registry(registry)
        .no_sandbox(!sandboxed)
        .ready_timeout(Duration::from_millis(1500))
}

/// Starts the fault guest in `mode`, with the OS sandbox on or off.
async fn start_with(mode: &str, sandboxed: bool) -> Result<Sandbox, Error> {
    fault_builder(mode, sandboxed).build().await
}

/// Starts a well-behaved fault guest, sends `Exec` with `mode` as the source, and returns the
/// error together with the guest's pid.
async fn exec_fault(mode: &str) -> (Error, u32) {
    let sb = start("ok").await.unwrap();
    let pid = sb.pid();
    let err = tokio::time::timeout(
        Duration::from_secs(5),
        sb.exec_container(ContainerSource::code(mode)),
    )
    .await
    .unwrap_or_else(|_| panic!("{mode}: the host hung"))
    .expect_err(mode);
    // The guest is gone afterwards: killed for lying, or dead by its own hand.
    assert!(
        wait_gone(pid, 3000).await,
        "{mode}: guest {pid} still alive"
    );
    assert!(!sb.is_active(), "{mode}");
    (err, pid)
}

fn protocol(err: &Error) -> &ProtocolError {
    match err {
        Error::Protocol(p) => p,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn well_behaved_fault_guest_works() {
    let sb = start("ok").await.unwrap();
    let cid = sb
        .exec_container(ContainerSource::code("ok"))
        .await
        .unwrap();
    assert_eq!(
        sb.call::<String>(cid, "f", ("echo",)).await.unwrap(),
        "echo"
    );
    assert_eq!(sb.teardown().await.unwrap().code, Some(0));
}

#[tokio::test]
async fn garbage_frame_is_protocol_error() {
    let (err, _) = exec_fault("garbage").await;
    assert!(matches!(protocol(&err), ProtocolError::Codec(_)), "{err:?}");
}

#[tokio::test]
async fn oversized_frame_is_rejected_before_allocation() {
    let (err, _) = exec_fault("huge-frame").await;
    match protocol(&err) {
        ProtocolError::Codec(CodecError::TooLarge { len, .. }) => assert_eq!(*len, u32::MAX as u64),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn truncated_frame_is_protocol_error() {
    let (err, _) = exec_fault("truncate").await;
    assert!(
        matches!(protocol(&err), ProtocolError::Truncated),
        "{err:?}"
    );
}

#[tokio::test]
async fn malformed_body_is_protocol_error() {
    let (err, _) = exec_fault("malformed-body").await;
    assert!(
        matches!(
            protocol(&err),
            ProtocolError::Codec(CodecError::Malformed(_))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn trailing_bytes_are_protocol_error() {
    let (err, _) = exec_fault("trailing").await;
    assert!(
        matches!(
            protocol(&err),
            ProtocolError::Codec(CodecError::TrailingBytes { extra: 3 })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn response_with_unknown_id_is_protocol_error() {
    let (err, _) = exec_fault("unknown-id").await;
    assert!(
        matches!(protocol(&err), ProtocolError::UnknownResponse(_)),
        "{err:?}"
    );
}

/// With a restart policy the host picks container ids; a guest that answers with another id
/// (the fault guest always says 1) is lying, and is killed for it.
#[tokio::test]
async fn container_id_other_than_requested_is_protocol_error() {
    let sb = fault_builder("ok", false)
        .restart(confine::RestartPolicy::on_exit(1, Duration::from_secs(60)))
        .build()
        .await
        .unwrap();
    // The control: the first id the host asks for is 1, which the guest happens to answer.
    let first = sb.exec_container(ContainerSource::code("ok")).await;
    assert_eq!(first.unwrap(), 1);
    let pid = sb.pid();
    let err = sb
        .exec_container(ContainerSource::code("ok"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            protocol(&err),
            ProtocolError::UnexpectedReply { request: "Exec" }
        ),
        "{err:?}"
    );
    assert!(wait_gone(pid, 3000).await);
}

/// `closed()` resolves only once the guest's stderr was read to its end, so everything written
/// to it is captured, even by a process that outlived the guest (for up to a second).
#[tokio::test]
async fn closed_waits_for_the_guest_output() {
    let sb = fault_builder("ok", false)
        .stderr(confine::Output::Capture)
        .build()
        .await
        .unwrap();
    let closed = sb.closed();
    let exec = sb.exec_container(ContainerSource::code("stderr-after-exit"));
    assert!(matches!(exec.await, Err(Error::GuestExited(i)) if i.code == Some(4)));
    assert_eq!(closed.await.code, Some(4));
    assert_eq!(sb.captured_stderr(), b"late line\n");
}

#[tokio::test]
async fn reply_of_wrong_shape_is_protocol_error() {
    let (err, _) = exec_fault("wrong-reply").await;
    assert!(
        matches!(
            protocol(&err),
            ProtocolError::UnexpectedReply { request: "Exec" }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn second_ready_is_protocol_error() {
    let (err, _) = exec_fault("second-ready").await;
    assert!(
        matches!(protocol(&err), ProtocolError::Unexpected(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn guest_exit_mid_request_carries_exit_code() {
    let (err, _) = exec_fault("exit-3").await;
    match err {
        Error::GuestExited(info) => assert_eq!(info.code, Some(3), "{info:?}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn guest_sigkill_mid_request_carries_signal() {
    let (err, _) = exec_fault("sigkill-self").await;
    match err {
        Error::GuestExited(info) => assert_eq!(info.signal, Some(libc::SIGKILL), "{info:?}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn guest_that_never_says_ready_times_out() {
    let started = std::time::Instant::now();
    let err = start("no-ready").await.unwrap_err();
    assert!(matches!(err, Error::StartupTimeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn wrong_protocol_version_is_refused() {
    let err = start("wrong-version").await.unwrap_err();
    assert!(
        matches!(protocol(&err), ProtocolError::Version { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn garbage_before_ready_is_refused() {
    let err = start("garbage-first").await.unwrap_err();
    assert!(matches!(protocol(&err), ProtocolError::Codec(_)), "{err:?}");
}

#[tokio::test]
async fn guest_exiting_before_ready_carries_exit_code() {
    let err = start("exit-early").await.unwrap_err();
    match err {
        Error::GuestExited(info) => assert_eq!(info.code, Some(9), "{info:?}"),
        other => panic!("{other:?}"),
    }
}

/// Sandboxed, the raw guest installs the stage-2 filter from `Hello` and still works: the
/// host verified it from outside, so every protection is enforced.
#[tokio::test]
async fn sandboxed_fault_guest_installs_stage2_and_is_verified() {
    let sb = start_with("ok", true).await.unwrap();
    assert!(sb.isolation().fully_enforced(), "{}", sb.isolation());
    assert_eq!(sb.isolation().stage2, confine::report::Stage2::Verified);
    let cid = sb
        .exec_container(ContainerSource::code("ok"))
        .await
        .unwrap();
    assert_eq!(
        sb.call::<String>(cid, "f", ("echo",)).await.unwrap(),
        "echo"
    );
    assert_eq!(sb.teardown().await.unwrap().code, Some(0));
}

/// A guest that skips its stage-2 filter but says `Ready` anyway is caught by the host's
/// outside check (one seccomp filter, not two), refused with a typed error naming the
/// check, and killed before it receives any request.
#[tokio::test]
async fn guest_that_skips_stage2_is_rejected_and_killed() {
    let path = guest_named("ignore-lockdown").canonicalize().unwrap();
    let err = start_with("ignore-lockdown", true).await.unwrap_err();
    match &err {
        Error::Sandbox(SandboxError::VerificationFailed {
            check,
            expected,
            found,
        }) => {
            assert_eq!(*check, VerifyCheck::SeccompFilters, "{err}");
            assert!(expected.ends_with(": 2"), "{expected}");
            assert!(found.ends_with(": 1"), "{found}");
        }
        other => panic!("expected a verification failure, got {other:?}"),
    }
    assert!(err.to_string().contains("seccomp filter count"), "{err}");
    // No guest process of that executable survives.
    assert!(
        wait_gone_by_exe(&path, 3000).await,
        "the unverified guest still runs"
    );
    // The same guest without the sandbox is accepted: nothing is verified there.
    let sb = start_with("ignore-lockdown", false).await.unwrap();
    assert!(!sb.isolation().sandboxed);
    sb.teardown().await.unwrap();
}

/// Waits up to `ms` until no process runs the executable at `path`.
async fn wait_gone_by_exe(path: &std::path::Path, ms: u64) -> bool {
    let running = || {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                let exe = std::fs::read_link(e.path().join("exe")).ok();
                exe.as_deref() == Some(path)
                    && confine_tests::process_alive(
                        e.file_name().to_string_lossy().parse().unwrap_or(0),
                    )
            })
    };
    for _ in 0..ms / 10 {
        if !running() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    !running()
}

/// One sandbox's guest misbehaving does not disturb another's.
#[tokio::test]
async fn other_sandboxes_keep_working() {
    let healthy = start("ok").await.unwrap();
    let cid = healthy
        .exec_container(ContainerSource::code("ok"))
        .await
        .unwrap();
    let (_err, _) = exec_fault("garbage").await;
    assert_eq!(
        healthy.call::<Value>(cid, "f", (1,)).await.unwrap(),
        Value::Number(1.0)
    );
}

#[tokio::test]
async fn runtime_not_found_names_places_and_fix() {
    let err = Sandbox::builder()
        .runtime("no-such-runtime")
        .build()
        .await
        .unwrap_err();
    match &err {
        Error::RuntimeNotFound {
            name,
            searched,
            hint,
        } => {
            assert_eq!(name, "no-such-runtime");
            assert!(
                searched.iter().any(|p| p
                    .to_string_lossy()
                    .contains("confine-guest-no-such-runtime")),
                "{searched:?}"
            );
            assert!(hint.contains("cargo build"), "{hint}");
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("looked in"), "{msg}");
}

/// A guest that floods console frames and never answers: the flood does not stall the host,
/// another sandbox keeps answering meanwhile, and the pending request fails at its wall-time
/// limit with a typed error (the host kills the guest after the grace).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_flood_from_a_lying_guest_is_bounded_by_the_call_limit() {
    let mut registry = Registry::new();
    registry.register("fault", guest_named("ok"));
    let lines = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = lines.clone();
    let flooding = Sandbox::builder()
        .runtime("fault")
        .registry(registry)
        .no_sandbox(true)
        .call_timeout(Some(Duration::from_millis(300)))
        .on_console(move |_, _, _| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .build()
        .await
        .unwrap();
    let calm = start("ok").await.unwrap();
    let calm_cid = calm
        .exec_container(ContainerSource::code("ok"))
        .await
        .unwrap();
    let t = std::time::Instant::now();
    let flood = tokio::spawn(async move {
        let r = flooding
            .exec_container(ContainerSource::code("log-flood"))
            .await;
        (flooding, r)
    });
    for i in 0..20 {
        let t = std::time::Instant::now();
        let v: i64 = calm.call(calm_cid, "f", (i,)).await.unwrap();
        assert_eq!(v, i);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (flooding, r) = flood.await.unwrap();
    assert!(
        matches!(
            r,
            Err(Error::LimitExceeded {
                limit: confine::Limit::WallTime,
                ..
            })
        ),
        "{r:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(lines.load(std::sync::atomic::Ordering::Relaxed) > 100);
    assert!(wait_gone(flooding.pid(), 2000).await);
}

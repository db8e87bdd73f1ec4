//! Protocol faults: a guest that lies, sends garbage, or dies is a typed error on the host,
//! never a panic, hang, or leak; the guest is terminated and other sandboxes keep working.
//!
//! The lying guest is `src/bin/fault_guest.rs`, registered under the runtime name `fault`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use confine::{ContainerSource, Error, ProtocolError, Registry, Sandbox, Value};
use confine_runtime_abstract::codec::CodecError;
use confine_tests::wait_gone;
use std::{path::PathBuf, time::Duration};

const FAULT_GUEST: &str = env!("CARGO_BIN_EXE_fault-guest");

/// A copy of the fault guest whose file name selects a startup fault.
fn guest_named(mode: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("confine-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("fault-guest-{mode}"));
    if !path.exists() {
        // Copy to a temporary name first so a parallel test never execs a half-written file.
        let tmp = dir.join(format!(
            ".fault-guest-{mode}.{:?}",
            std::thread::current().id()
        ));
        std::fs::copy(FAULT_GUEST, &tmp).unwrap();
        let _ = std::fs::rename(&tmp, &path);
    }
    path
}

async fn start(mode: &str) -> Result<Sandbox, Error> {
    let mut registry = Registry::new();
    registry.register("fault", guest_named(mode));
    Sandbox::builder()
        .runtime("fault")
        .registry(registry)
        .no_sandbox(true)
        .ready_timeout(Duration::from_millis(1500))
        .build()
        .await
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

//! Listing, configuring and killing containers; teardown, drop, and guest death.

use crate::Target;
use confine::{ContainerSource, Error, Value};
use confine_tests::{process_alive, wait_gone};
use std::sync::Arc;
use std::time::Duration;

pub(crate) async fn list_config_kill(t: &Target) {
    let sb = t.start().await;
    assert!(sb.list_containers().await.unwrap().is_empty());
    let a = sb
        .exec_container(
            ContainerSource::code("module.exports.f = () => 1")
                .name("a.js")
                .options(serde_json::json!({"x": 1}))
                .unwrap(),
        )
        .await
        .unwrap();
    let b = sb
        .exec_container(ContainerSource::code("exports.g = () => 2").name("b.js"))
        .await
        .unwrap();
    assert_ne!(a, b);
    let list = sb.list_containers().await.unwrap();
    let names: Vec<(u32, String)> = list.iter().map(|c| (c.cid, c.name.clone())).collect();
    assert_eq!(names, [(a, "a.js".to_string()), (b, "b.js".to_string())]);
    assert_eq!(
        serde_json::Value::from(list[0].options.clone()),
        serde_json::json!({"x": 1})
    );
    sb.config_container(b, serde_json::json!({"y": true}))
        .await
        .unwrap();
    let list = sb.list_containers().await.unwrap();
    assert_eq!(
        serde_json::Value::from(list[1].options.clone()),
        serde_json::json!({"y": true})
    );
    assert!(matches!(
        sb.config_container(99, ()).await,
        Err(Error::NoSuchContainer { cid: 99, .. })
    ));
    sb.kill_container(a).await.unwrap();
    let list = sb.list_containers().await.unwrap();
    assert_eq!(list.iter().map(|c| c.cid).collect::<Vec<_>>(), [b]);
}

pub(crate) async fn wait_idle_waits_for_timers(t: &Target) {
    let sb = t.start().await;
    let cid = sb
        .exec_container(ContainerSource::code(
            "let done = false; setTimeout(() => { done = true }, 50);\nmodule.exports.done = () => done;",
        ))
        .await
        .unwrap();
    assert!(!sb.call::<bool>(cid, "done", ()).await.unwrap());
    sb.wait_idle(cid).await.unwrap();
    assert!(sb.call::<bool>(cid, "done", ()).await.unwrap());
}

pub(crate) async fn teardown_reports_clean_exit(t: &Target) {
    let sb = t.start().await;
    let pid = sb.pid();
    assert!(process_alive(pid));
    let info = sb.teardown().await.unwrap();
    assert_eq!(info.code, Some(0), "{info:?}");
    assert!(wait_gone(pid, 2000).await);
}

pub(crate) async fn drop_leaves_no_process(t: &Target) {
    let sb = t.start().await;
    let pid = sb.pid();
    let cid = sb
        .exec_container(ContainerSource::code(
            "module.exports.f = () => new Promise(() => {})",
        ))
        .await
        .unwrap();
    let sb = Arc::new(sb);
    let pending = {
        let sb = Arc::clone(&sb);
        tokio::spawn(async move { sb.call::<Value>(cid, "f", ()).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    pending.abort();
    drop(sb);
    assert!(
        wait_gone(pid, 3000).await,
        "guest {pid} still alive after drop"
    );
}

pub(crate) async fn guest_sigkill_fails_pending_calls(t: &Target) {
    let sb = Arc::new(t.start().await);
    let cid = sb
        .exec_container(ContainerSource::code(
            "module.exports.hang = () => new Promise(() => {})",
        ))
        .await
        .unwrap();
    let mut calls = Vec::new();
    for _ in 0..10 {
        let sb = Arc::clone(&sb);
        calls.push(tokio::spawn(async move {
            sb.call::<Value>(cid, "hang", ()).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // SAFETY: kill has no memory-safety preconditions; the pid is our live child.
    unsafe { libc::kill(sb.pid() as i32, libc::SIGKILL) };
    for call in calls {
        let result = tokio::time::timeout(Duration::from_secs(5), call)
            .await
            .expect("call must fail promptly")
            .unwrap();
        match result {
            Err(Error::GuestExited(info)) => {
                assert_eq!(info.signal, Some(libc::SIGKILL), "{info:?}")
            }
            other => panic!("expected GuestExited, got {other:?}"),
        }
    }
    let info = tokio::time::timeout(Duration::from_secs(5), sb.closed())
        .await
        .unwrap();
    assert_eq!(info.signal, Some(libc::SIGKILL));
    assert!(!sb.is_active());
    // Later requests fail the same way, at once.
    assert!(matches!(
        sb.list_containers().await,
        Err(Error::GuestExited(_))
    ));
}

pub(crate) async fn guest_exit_fails_pending_calls(t: &Target) {
    let sb = Arc::new(t.start().await);
    let cid = sb
        .exec_container(ContainerSource::code(
            "module.exports.hang = () => new Promise(() => {})",
        ))
        .await
        .unwrap();
    let pending = {
        let sb = Arc::clone(&sb);
        tokio::spawn(async move { sb.call::<Value>(cid, "hang", ()).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    sb.kill();
    let result = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("prompt")
        .unwrap();
    assert!(matches!(result, Err(Error::GuestExited(_))), "{result:?}");
}

pub(crate) async fn state_accessors(t: &Target) {
    let sb = t.start().await;
    assert!(sb.is_active());
    assert_eq!(sb.exit_info(), None);
    assert_eq!(sb.runtime(), t.runtime);
    assert!(!sb.runtime_version().is_empty());
    assert!(sb.runtime_path().is_absolute());
    assert!(sb.runtime_path().exists());
    let closed = sb.closed();
    let report = sb.isolation().to_string();
    assert!(!report.is_empty());
    // Sandboxed, the host verified stage 2 from outside before returning the sandbox, so every
    // protection is enforced (this machine has Landlock and seccomp); without the sandbox,
    // none is. The escape suite checks each protection by trying it.
    use confine::{report::Stage2, ProtectionStatus};
    let isolation = sb.isolation();
    assert_eq!(isolation.fully_enforced(), t.sandboxed, "{report}");
    assert_eq!(isolation.sandboxed, t.sandboxed, "{report}");
    if t.sandboxed {
        assert_eq!(isolation.stage2, Stage2::Verified, "{report}");
        assert!(isolation.stage2_instructions > 0, "{report}");
    } else {
        assert!(isolation
            .protections
            .iter()
            .all(|p| p.status == ProtectionStatus::Disabled));
    }
    let info = sb.teardown().await.unwrap();
    assert_eq!(closed.await, info);
}

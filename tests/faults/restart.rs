//! The restart policy: a sandbox whose guest died gets a new guest with its globals and
//! containers re-created under their old ids, and an event saying so. Each test first shows
//! what happens without the policy (the sandbox stays dead), then with it.

use confine::{
    ContainerSource, Error, Event, Events, ExitInfo, Globals, HostError, Limit, RestartPolicy,
    Sandbox, SandboxBuilder, Value,
};
use confine_tests::{wait_gone, Target};
use std::time::Duration;

const TARGETS: [Target; 4] = [
    Target {
        runtime: "quickjs",
        sandboxed: true,
    },
    Target {
        runtime: "quickjs",
        sandboxed: false,
    },
    Target {
        runtime: "boa",
        sandboxed: true,
    },
    Target {
        runtime: "wasm",
        sandboxed: true,
    },
];

/// Uses a host value and a host function defined at start, and one defined later.
const APP: &str = "
    const base = settings.base;
    let calls = 0;
    module.exports = {
        add: (x) => base + x,
        twice: async (x) => await double(x),
        late: async (x) => await later(x),
        count: () => ++calls,
    };";

fn builder(target: &Target, policy: RestartPolicy) -> SandboxBuilder {
    target
        .builder()
        .restart(policy)
        .globals(Globals::new().value("settings.base", 40).function(
            "double",
            |x: f64| async move { Ok::<_, HostError>(x * 2.0) },
        ))
}

/// The next event that is not console noise, within five seconds.
async fn next_event(events: &mut Events) -> Event {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an event within 5 s")
            .expect("the sandbox is alive");
        if !matches!(event, Event::Uncaught { .. }) {
            return event;
        }
    }
}

/// Kills the guest from outside (as the OOM killer or an operator would), then returns the
/// `Restarted` event's fields after the `GuestExited` one.
async fn kill_and_await_restart(
    sb: &Sandbox,
    events: &mut Events,
) -> (u32, Vec<u32>, Vec<(u32, confine::ErrorData)>) {
    let old = sb.pid();
    // SAFETY: plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(old as i32, libc::SIGKILL) }, 0);
    match next_event(events).await {
        Event::GuestExited(info) => assert_eq!(info.signal, Some(libc::SIGKILL), "{info}"),
        other => panic!("expected GuestExited, got {other:?}"),
    }
    match next_event(events).await {
        Event::Restarted {
            exit,
            pid,
            containers,
            lost,
        } => {
            assert_eq!(exit.signal, Some(libc::SIGKILL));
            assert_ne!(pid, old);
            assert_eq!(sb.pid(), pid);
            assert!(wait_gone(old, 2000).await);
            (pid, containers, lost)
        }
        other => panic!("expected Restarted, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_policy_a_killed_guest_stays_dead() {
    for target in TARGETS {
        let sb = builder(&target, RestartPolicy::Never)
            .build()
            .await
            .unwrap();
        let cid = sb.exec_container(ContainerSource::code(APP)).await.unwrap();
        assert_eq!(sb.call::<f64>(cid, "add", (2,)).await.unwrap(), 42.0);
        let mut events = sb.events();
        // SAFETY: plain kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(sb.pid() as i32, libc::SIGKILL) }, 0);
        let info = tokio::time::timeout(Duration::from_secs(5), sb.closed())
            .await
            .unwrap();
        assert_eq!(info.signal, Some(libc::SIGKILL));
        assert!(matches!(
            next_event(&mut events).await,
            Event::GuestExited(_)
        ));
        match sb.call::<f64>(cid, "add", (2,)).await {
            Err(Error::GuestExited(i)) => assert_eq!(i.signal, Some(libc::SIGKILL)),
            other => panic!("{target:?}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_guest_comes_back_with_its_globals_and_containers() {
    for target in TARGETS {
        let policy = RestartPolicy::on_exit(3, Duration::from_secs(60));
        let sb = builder(&target, policy).build().await.unwrap();
        sb.define_function("later", |x: f64| async move { Ok::<_, HostError>(x + 0.5) })
            .await
            .unwrap();
        let app = sb.exec_container(ContainerSource::code(APP)).await.unwrap();
        let gone = sb
            .exec_container(ContainerSource::code("module.exports.f = () => 1"))
            .await
            .unwrap();
        sb.kill_container(gone).await.unwrap();
        assert_eq!(sb.call::<u32>(app, "count", ()).await.unwrap(), 1);
        assert_eq!(sb.call::<u32>(app, "count", ()).await.unwrap(), 2);

        let mut events = sb.events();
        let (_, containers, lost) = kill_and_await_restart(&sb, &mut events).await;
        assert_eq!(containers, vec![app], "{target:?}");
        assert!(lost.is_empty(), "{lost:?}");
        // The same id reaches the re-created container, with the start's globals and the
        // later one; its top-level code ran again, so its own state starts over.
        assert_eq!(sb.call::<f64>(app, "add", (2,)).await.unwrap(), 42.0);
        assert_eq!(sb.call::<f64>(app, "twice", (4,)).await.unwrap(), 8.0);
        assert_eq!(sb.call::<f64>(app, "late", (1,)).await.unwrap(), 1.5);
        assert_eq!(sb.call::<u32>(app, "count", ()).await.unwrap(), 1);
        // The killed container stays killed, and its id is not handed out again.
        assert!(matches!(
            sb.call::<Value>(gone, "f", ()).await,
            Err(Error::NoSuchContainer { cid, .. }) if cid == gone
        ));
        let new = sb
            .exec_container(ContainerSource::code("module.exports.f = () => 2"))
            .await
            .unwrap();
        assert!(new > gone && new > app, "{new} after {app}, {gone}");
        let listed: Vec<u32> = sb
            .list_containers()
            .await
            .unwrap()
            .iter()
            .map(|c| c.cid)
            .collect();
        assert_eq!(listed, vec![app, new]);

        // A request made while the new guest starts waits for it.
        // SAFETY: plain kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(sb.pid() as i32, libc::SIGKILL) }, 0);
        assert!(matches!(
            next_event(&mut events).await,
            Event::GuestExited(_)
        ));
        assert_eq!(sb.call::<f64>(new, "f", ()).await.unwrap(), 2.0);
        assert!(matches!(
            next_event(&mut events).await,
            Event::Restarted { .. }
        ));
        let pid = sb.pid();
        assert_eq!(sb.teardown().await.unwrap().code, Some(0));
        assert!(wait_gone(pid, 2000).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_killed_for_a_limit_comes_back() {
    // Boa cannot interrupt a tight loop: the host kills the guest past the grace.
    let target = Target {
        runtime: "boa",
        sandboxed: true,
    };
    let policy = RestartPolicy::on_exit(1, Duration::from_secs(60));
    let sb = builder(&target, policy)
        .call_timeout(Some(Duration::from_millis(100)))
        .build()
        .await
        .unwrap();
    let src = format!("{APP}; module.exports.spin = () => {{ while (true) {{}} }};");
    let cid = sb.exec_container(ContainerSource::code(src)).await.unwrap();
    let mut events = sb.events();
    match sb.call::<()>(cid, "spin", ()).await {
        Err(Error::LimitExceeded {
            limit: Limit::WallTime,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        next_event(&mut events).await,
        Event::GuestExited(_)
    ));
    assert!(matches!(
        next_event(&mut events).await,
        Event::Restarted { .. }
    ));
    assert_eq!(sb.call::<f64>(cid, "add", (1,)).await.unwrap(), 41.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_are_bounded_by_the_policy() {
    let target = TARGETS[0];
    let policy = RestartPolicy::on_exit(2, Duration::from_secs(60));
    let sb = builder(&target, policy).build().await.unwrap();
    let cid = sb.exec_container(ContainerSource::code(APP)).await.unwrap();
    let mut events = sb.events();
    for _ in 0..2 {
        kill_and_await_restart(&sb, &mut events).await;
        assert_eq!(sb.call::<f64>(cid, "add", (0,)).await.unwrap(), 40.0);
    }
    // The third death within the window ends the sandbox.
    let pid = sb.pid();
    sb.kill();
    let info = tokio::time::timeout(Duration::from_secs(5), sb.closed())
        .await
        .unwrap();
    assert_eq!(info.signal, Some(libc::SIGKILL));
    assert!(matches!(
        next_event(&mut events).await,
        Event::GuestExited(_)
    ));
    assert!(matches!(
        sb.call::<f64>(cid, "add", (0,)).await,
        Err(Error::GuestExited(_))
    ));
    assert_eq!(sb.pid(), pid);
    assert!(events.try_recv().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_that_fails_to_come_back_is_reported_lost() {
    let target = TARGETS[0];
    let policy = RestartPolicy::on_exit(3, Duration::from_secs(60));
    let sb = builder(&target, policy)
        .value("mode", "ok")
        .build()
        .await
        .unwrap();
    let fragile = sb
        .exec_container(ContainerSource::code(
            "if (mode !== 'ok') throw new TypeError('mode is ' + mode); module.exports.f = () => 1",
        ))
        .await
        .unwrap();
    let sturdy = sb
        .exec_container(ContainerSource::code("module.exports.f = () => 2"))
        .await
        .unwrap();
    // Redefined for later containers; the live one already read it.
    sb.define_globals(Globals::new().value("mode", "broken"))
        .await
        .unwrap();
    assert_eq!(sb.call::<u32>(fragile, "f", ()).await.unwrap(), 1);
    let mut events = sb.events();
    let (_, containers, lost) = kill_and_await_restart(&sb, &mut events).await;
    assert_eq!(containers, vec![sturdy]);
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].0, fragile);
    assert_eq!(lost[0].1.name, "TypeError");
    assert!(
        lost[0].1.message.contains("mode is broken"),
        "{:?}",
        lost[0]
    );
    assert!(matches!(
        sb.call::<u32>(fragile, "f", ()).await,
        Err(Error::NoSuchContainer { .. })
    ));
    assert_eq!(sb.call::<u32>(sturdy, "f", ()).await.unwrap(), 2);
    // Lost for good: the next restart does not try it again.
    let (_, containers, lost) = kill_and_await_restart(&sb, &mut events).await;
    assert_eq!(containers, vec![sturdy]);
    assert!(lost.is_empty());
}

/// Ends a sandbox with `end` (teardown or drop) and checks that its guest exited as
/// `expected` says and that nothing was restarted: no event after `GuestExited`, and the
/// event channel closes.
async fn ends_for_good(
    sb: Sandbox,
    end: impl FnOnce(Sandbox),
    expected: impl Fn(ExitInfo) -> bool,
) {
    let (pid, closed, mut events) = (sb.pid(), sb.closed(), sb.events());
    end(sb);
    let info = tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .unwrap();
    assert!(expected(info), "{info}");
    assert!(wait_gone(pid, 2000).await);
    assert!(matches!(
        next_event(&mut events).await,
        Event::GuestExited(_)
    ));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events.recv())
            .await
            .is_ok_and(|e| e.is_none())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_and_drop_end_a_restarting_sandbox() {
    let target = TARGETS[0];
    let policy = RestartPolicy::on_exit(5, Duration::from_secs(60));
    // Teardown: the guest exits cleanly.
    let sb = builder(&target, policy).build().await.unwrap();
    let teardown = |sb: Sandbox| {
        tokio::spawn(async move { sb.teardown().await.unwrap() });
    };
    ends_for_good(sb, teardown, |i| i.code == Some(0)).await;
    // Drop: the guest is killed, unless it saw its socket close and exited first.
    let sb = builder(&target, policy).build().await.unwrap();
    let ended = |i: ExitInfo| i.signal == Some(libc::SIGKILL) || i.code == Some(0);
    ends_for_good(sb, drop, ended).await;
}

#[tokio::test]
async fn a_restart_window_of_zero_is_invalid() {
    let target = TARGETS[1];
    let endless = builder(&target, RestartPolicy::on_exit(1, Duration::ZERO))
        .build()
        .await;
    assert!(
        matches!(endless, Err(Error::InvalidArgument(ref m)) if m.contains("window")),
        "{:?}",
        endless.map(|_| ())
    );
    let bounded = builder(&target, RestartPolicy::on_exit(1, Duration::from_millis(1)))
        .build()
        .await
        .unwrap();
    bounded.teardown().await.unwrap();
}

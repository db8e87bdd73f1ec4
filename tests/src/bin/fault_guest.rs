//! A guest that breaks the protocol on purpose, for the `faults` suite.
//!
//! The misbehaviour is picked by the executable's file name suffix for startup faults
//! (`fault-guest-<mode>`, the test copies the binary), and by the source text of an `Exec`
//! request for faults after `Ready`. Only `confine-runtime-abstract` is used: this guest
//! writes raw frames, as a compromised guest could.
//!
//! Run sandboxed, it installs the stage-2 filter from `Hello` with a raw `seccomp` call, as
//! a well-behaved guest must, except in the `ignore-lockdown` mode, which skips it and says
//! `Ready` anyway: the host's outside check must refuse that guest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use confine_runtime_abstract::{
    codec::{self, FrameBuffer, DEFAULT_MAX_FRAME},
    protocol::{ContainerInfo, GuestMessage, HostMessage, HostRequest, Lockdown, LogLevel, Reply},
    Value, PROTOCOL_VERSION,
};
use std::{
    io::{Read, Write},
    os::{fd::FromRawFd, unix::net::UnixStream},
};

fn send(sock: &mut UnixStream, msg: &GuestMessage) {
    sock.write_all(&codec::encode(msg, DEFAULT_MAX_FRAME).unwrap())
        .unwrap();
}

fn next(sock: &mut UnixStream, frames: &mut FrameBuffer) -> Option<HostMessage> {
    loop {
        if let Some(body) = frames.next_frame().unwrap() {
            return Some(codec::decode_body(body).unwrap());
        }
        let n = sock.read(frames.buf_mut()).unwrap();
        if n == 0 {
            return None;
        }
        frames.filled(n);
    }
}

fn ready(version: u32) -> GuestMessage {
    GuestMessage::Ready {
        protocol_version: version,
        runtime: "fault".into(),
        version: "0".into(),
    }
}

/// Installs the host's stage-2 filter, like `confine_guest::lockdown::install`, minus the
/// checks: a malformed program is the test's bug, so it panics.
fn install_lockdown(lockdown: &Lockdown) {
    let mut insns: Vec<libc::sock_filter> = lockdown
        .seccomp_filter
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let prog = libc::sock_fprog {
        len: u16::try_from(insns.len()).unwrap(),
        filter: insns.as_mut_ptr(),
    };
    // SAFETY: prog points at insns, alive for the call; the kernel copies the program.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    assert_eq!(r, 0, "seccomp: {}", std::io::Error::last_os_error());
}

fn main() {
    // SAFETY: fd 3 is the socket the host gave us; nothing else owns it.
    let mut sock = unsafe { UnixStream::from_raw_fd(3) };
    let mut frames = FrameBuffer::new(DEFAULT_MAX_FRAME);
    let exe = std::env::args().next().unwrap_or_default();
    let startup = exe
        .rsplit("fault-guest-")
        .next()
        .filter(|_| exe.contains("fault-guest-"))
        .unwrap_or("");
    let lockdown = match next(&mut sock, &mut frames) {
        Some(HostMessage::Hello { lockdown, .. }) => lockdown,
        _ => None,
    };
    if let Some(lockdown) = &lockdown {
        if startup != "ignore-lockdown" {
            install_lockdown(lockdown);
        }
    }
    match startup {
        "no-ready" => {
            std::thread::sleep(std::time::Duration::from_secs(30));
            return;
        }
        "wrong-version" => send(&mut sock, &ready(PROTOCOL_VERSION + 100)),
        "garbage-first" => sock
            .write_all(b"\x05\x00\x00\x00\xff\xff\xff\xff\xff")
            .unwrap(),
        "exit-early" => std::process::exit(9),
        _ => send(&mut sock, &ready(PROTOCOL_VERSION)),
    }
    while let Some(msg) = next(&mut sock, &mut frames) {
        let HostMessage::Request { id, request } = msg else {
            continue;
        };
        let mode = match &request {
            HostRequest::Exec { source, .. } => source.code.clone(),
            _ => String::new(),
        };
        match mode.as_str() {
            "garbage" => sock.write_all(&[0x13; 64]).unwrap(),
            "huge-frame" => {
                sock.write_all(&u32::MAX.to_le_bytes()).unwrap();
                std::thread::sleep(std::time::Duration::from_secs(30));
            }
            "truncate" => {
                sock.write_all(&100u32.to_le_bytes()).unwrap();
                sock.write_all(&[0; 10]).unwrap();
                return;
            }
            "malformed-body" => {
                let body = [0xEEu8; 24];
                sock.write_all(&(body.len() as u32).to_le_bytes()).unwrap();
                sock.write_all(&body).unwrap();
            }
            "trailing" => {
                let mut frame = codec::encode(
                    &GuestMessage::Response {
                        id,
                        result: Ok(Reply::Container(1)),
                    },
                    DEFAULT_MAX_FRAME,
                )
                .unwrap();
                frame.extend_from_slice(&[0, 0, 0]);
                let len = (frame.len() - 4) as u32;
                frame[..4].copy_from_slice(&len.to_le_bytes());
                sock.write_all(&frame).unwrap();
            }
            "unknown-id" => send(
                &mut sock,
                &GuestMessage::Response {
                    id: id + 424_242,
                    result: Ok(Reply::Container(1)),
                },
            ),
            "wrong-reply" => send(
                &mut sock,
                &GuestMessage::Response {
                    id,
                    result: Ok(Reply::Containers(vec![ContainerInfo {
                        cid: 1,
                        name: "x".into(),
                        options: Value::Null,
                    }])),
                },
            ),
            "exit-3" => std::process::exit(3),
            "stderr-after-exit" => {
                // A child that outlives the guest and writes to the inherited stderr later
                // (possible only without the sandbox): the host's pipe reader is still busy
                // after the guest's exit status arrives.
                // SAFETY: this process is single-threaded; the child only sleeps, writes and
                // exits.
                if unsafe { libc::fork() } == 0 {
                    // Not the socket: the host sees the guest hang up at its exit.
                    // SAFETY: closing this process's copy of fd 3, never used here again.
                    unsafe { libc::close(3) };
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    let _ = std::io::stderr().write_all(b"late line\n");
                    // SAFETY: leaving the forked child without running the parent's exit hooks.
                    unsafe { libc::_exit(0) };
                }
                std::process::exit(4);
            }
            "sigkill-self" => {
                // SAFETY: signalling ourselves.
                unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            }
            "second-ready" => send(&mut sock, &ready(PROTOCOL_VERSION)),
            "log-flood" => loop {
                // Never answers; floods console output until the host kills it.
                let log = GuestMessage::Log {
                    cid: 1,
                    level: LogLevel::Log,
                    message: "flood ".repeat(200),
                };
                let frame = codec::encode(&log, DEFAULT_MAX_FRAME).unwrap();
                if sock.write_all(&frame).is_err() {
                    return;
                }
            },
            _ => {
                // Well-behaved: a container, and calls that echo their first argument.
                let reply = match request {
                    HostRequest::Exec { .. } => Reply::Container(1),
                    HostRequest::Call { mut args, .. } => Reply::Value(if args.is_empty() {
                        Value::Undefined
                    } else {
                        args.swap_remove(0)
                    }),
                    HostRequest::List => Reply::Containers(vec![]),
                    _ => Reply::Unit,
                };
                send(
                    &mut sock,
                    &GuestMessage::Response {
                        id,
                        result: Ok(reply),
                    },
                );
            }
        }
    }
}

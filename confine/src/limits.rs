//! [`Limits`]: the resource budgets of a sandbox, and the host's side of enforcing them.
//!
//! Every limit has up to two paths:
//!
//! * a **soft** path inside the guest: the engine stops the script (QuickJS's interrupt
//!   handler, a refused allocation, a refused host call) and the request fails with
//!   [`crate::Error::LimitExceeded`]; the container stays usable;
//! * a **hard** path on the host, for what the engine cannot stop (a tight loop in Boa, an
//!   engine whose own accounting is wrong): the host kills the guest. The request fails with
//!   [`crate::Error::LimitExceeded`] too, and other pending requests with the same error
//!   (memory, CPU percent) or [`crate::Error::GuestExited`] (wall and CPU time).
//!
//! | limit | soft path | hard path |
//! |---|---|---|
//! | wall time ([`crate::SandboxOptions::call_timeout`]) | QuickJS interrupt; pending promises answered at the deadline | kill after limit + grace |
//! | CPU time ([`Limits::cpu_time`]) | QuickJS interrupt on the thread's CPU clock | kill once the guest process's CPU clock shows limit + grace used |
//! | CPU percent ([`Limits::cpu_percent`]) | none | kill when the average over the window is above the cap |
//! | memory ([`Limits::memory`]) | QuickJS: catchable out-of-memory error | `RLIMIT_DATA` on the guest process |
//! | stack ([`Limits::stack`]) | QuickJS: catchable `RangeError`; Boa: its recursion limit | the process's stack rlimit |
//! | output ([`Limits::output`]) | further output dropped, script interrupted (QuickJS) or `console` throws (Boa) | none needed |
//! | host calls ([`Limits::host_calls`]) | call refused, script interrupted | none needed |
//! | containers ([`Limits::containers`]) | `exec_container` refused | none needed |
//! | calls in flight ([`Limits::in_flight`]) | refused on the host before sending | none needed |

use confine_runtime_abstract::GuestLimits;
use std::time::Duration;

/// An average CPU-usage cap (the crypti seed's `limitCpu`): the guest may use at most
/// `percent` % of one core, averaged over `window`. Past it the host kills the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuPercent {
    /// Percent of one core, 1 to 100 (a guest runs scripts on one thread).
    pub percent: u32,
    /// The averaging window, at least [`CpuPercent::MIN_WINDOW`]. Sampled ten times per
    /// window.
    pub window: Duration,
}

impl CpuPercent {
    /// The shortest window: sampling a process's CPU clock more often than every 10 ms
    /// measures the scheduler's tick more than the guest.
    pub const MIN_WINDOW: Duration = Duration::from_millis(100);

    /// `percent` % of one core averaged over one second, as the seed measured it.
    pub fn new(percent: u32) -> Self {
        CpuPercent {
            percent,
            window: Duration::from_secs(1),
        }
    }
}

/// Resource budgets for one sandbox. Plain data; `None` is no limit, and every field defaults
/// to `None`. The wall-time limit lives in [`crate::SandboxOptions::call_timeout`].
///
/// See the [module docs](self) for how each one is enforced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// CPU time per call and per top-level run (true CPU time, not wall time: a script
    /// waiting on a host function uses none). Counted on the guest's thread from when the
    /// guest reads the request until it answers; work for other calls on the same guest in
    /// the meantime counts too. Override per call with [`crate::CallLimits`].
    pub cpu_time: Option<Duration>,
    /// An average CPU-usage cap for the whole guest.
    pub cpu_percent: Option<CpuPercent>,
    /// Memory for the guest, in bytes. The engine's limit (QuickJS) is this budget across
    /// all containers; the process-level cap is [`Limits::process_memory_cap`] of it.
    pub memory: Option<u64>,
    /// Stack for script recursion, in bytes (QuickJS; clamped to 64 KiB–4 MiB). Default:
    /// 512 KiB. Boa's recursion limit is fixed.
    pub stack: Option<u32>,
    /// Console output bytes per call (see [`GuestLimits`] for what "per call" counts).
    pub output: Option<u64>,
    /// Host-function calls per call.
    pub host_calls: Option<u32>,
    /// Live containers per guest.
    pub containers: Option<u32>,
    /// Requests in flight on the sandbox at once; more fail at once on the host.
    pub in_flight: Option<u32>,
}

/// What a guest process needs beyond its engine budget: its own data and heap (an idle guest
/// has under 1 MiB of `VmData`, QuickJS and Boa alike), the serve loop's frame buffers, and
/// copies of a large argument or result while it is converted. The process cap adds it to the
/// memory limit.
pub const PROCESS_MEMORY_BASE: u64 = 16 << 20;

impl Limits {
    /// The budgets the guest enforces itself, sent in `Hello`.
    pub(crate) fn guest(&self) -> GuestLimits {
        GuestLimits {
            memory_bytes: self.memory,
            stack_bytes: self.stack,
            output_bytes: self.output,
            host_calls: self.host_calls,
            containers: self.containers,
        }
    }

    /// The process-level memory cap for a memory limit of `memory` bytes: the limit plus
    /// 10 % (allocator overhead the engine does not count) plus [`PROCESS_MEMORY_BASE`].
    pub fn process_memory_cap(memory: u64) -> u64 {
        memory
            .saturating_add(memory / 10)
            .saturating_add(PROCESS_MEMORY_BASE)
    }
}

/// Limits on one call, overriding the sandbox's defaults ([`crate::Sandbox::call_with`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallLimits {
    /// Wall-time limit (`None`: none).
    pub timeout: Option<Duration>,
    /// CPU-time limit (`None`: none).
    pub cpu_time: Option<Duration>,
}

impl CallLimits {
    /// No limits.
    pub fn none() -> Self {
        Self::default()
    }

    /// With wall-time limit `timeout`.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// With CPU-time limit `cpu_time`.
    pub fn cpu_time(mut self, cpu_time: Option<Duration>) -> Self {
        self.cpu_time = cpu_time;
        self
    }
}

/// CPU time process `pid` has used (all its threads, user plus system), read from the
/// process's CPU-time clock (`clock_getcpuclockid`): one system call with nanosecond
/// resolution, where `/proc/<pid>/stat` would cost a file read and give 10 ms ticks. `None` if
/// it cannot be read (the process is gone).
#[cfg(target_os = "linux")]
pub(crate) fn process_cpu_time(pid: u32) -> Option<Duration> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: writes one clockid_t we own.
    if unsafe { libc::clock_getcpuclockid(pid, &mut clock) } != 0 {
        return None;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec we own.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(ts.tv_sec).ok()?,
        u32::try_from(ts.tv_nsec).ok()?,
    ))
}

/// CPU time of another process is not read on this platform: hard CPU limits do not apply.
#[cfg(not(target_os = "linux"))]
pub(crate) fn process_cpu_time(_pid: u32) -> Option<Duration> {
    None
}

/// Caps process `pid`'s data segment (heap and private writable mappings) at `bytes`, from
/// outside: allocations past it fail in the guest. Only lowers a limit.
#[cfg(target_os = "linux")]
pub(crate) fn cap_process_memory(pid: u32, bytes: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    let pid = libc::pid_t::try_from(pid).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: `limit` is a valid rlimit; the old-limit pointer may be null.
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_DATA, &limit, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Without `prlimit`, the process cap is not applied on this platform.
#[cfg(not(target_os = "linux"))]
pub(crate) fn cap_process_memory(_pid: u32, _bytes: u64) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_cpu_time_of_a_child_and_it_grows() {
        // Another process's clock, as the host reads its guests'.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let first = process_cpu_time(pid).unwrap();
        // However loaded the machine, a spinning child gets 50 ms of CPU within 20 s.
        let start = std::time::Instant::now();
        let mut second = first;
        while second < first + Duration::from_millis(50)
            && start.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(20));
            second = process_cpu_time(pid).unwrap();
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            second >= first + Duration::from_millis(50),
            "{first:?} -> {second:?}"
        );
        assert!(process_cpu_time(pid).is_none(), "reaped: no clock");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_own_cpu_time_and_it_grows() {
        let pid = std::process::id();
        let before = process_cpu_time(pid).unwrap();
        // Spin until this thread has used 30 ms of CPU (however long that takes on a loaded
        // machine): the process clock must have grown at least as much.
        let own = confine_runtime_abstract::support::thread_cpu_time;
        let (start, thread_start) = (std::time::Instant::now(), own());
        let mut x = 0u64;
        while own() < thread_start + Duration::from_millis(30)
            && start.elapsed() < Duration::from_secs(20)
        {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = process_cpu_time(pid).unwrap();
        assert!(
            after >= before + Duration::from_millis(30),
            "{before:?} -> {after:?}"
        );
        assert!(process_cpu_time(u32::MAX).is_none());
    }

    #[test]
    fn process_cap_is_limit_plus_ten_percent_plus_base() {
        assert_eq!(
            Limits::process_memory_cap(100 << 20),
            (110 << 20) + PROCESS_MEMORY_BASE
        );
        assert_eq!(Limits::process_memory_cap(u64::MAX), u64::MAX);
    }
}

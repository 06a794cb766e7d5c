//! `reaper --sleep DURATION`: the `sleep` that distroless and `FROM scratch` images lack, for a
//! Kubernetes preStop hook. Not an init: no subreaper, no signalfd, no output; it waits for
//! the duration or for TERM, INT or QUIT, whichever comes first, and exits 0 either way.

use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

/// Returns the exit code, 0. The stop signals are blocked since `main` (as every signal is),
/// so one sent at any moment stays pending until sigtimedwait takes it.
pub fn sleep(duration: Duration) -> i32 {
    let deadline = Instant::now().checked_add(duration);
    let mut stops = SigSet::empty();
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGQUIT] {
        stops.add(sig);
    }
    loop {
        let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            return 0;
        }
        let timeout = libc::timespec {
            // time_t is 32 bits in the libc crate's 32-bit musl bindings (musl's time32 ABI):
            // cap at i32::MAX seconds, 68 years, on every target.
            tv_sec: left.as_secs().min(i32::MAX as u64) as _,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        };
        // SAFETY: sigtimedwait(2) reads a valid signal set and timespec; no siginfo is wanted.
        let got = unsafe { libc::sigtimedwait(stops.as_ref(), std::ptr::null_mut(), &timeout) };
        // A stop signal ends it. Otherwise EAGAIN (time is up: checked above, as the kernel may
        // round) or EINTR (stopped and continued): wait for what is left.
        if got > 0 {
            return 0;
        }
    }
}

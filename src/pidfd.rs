//! Process file descriptors: a handle on one process that a reused pid can never redirect.
//! `pidfd_open` (Linux 5.3) and `pidfd_send_signal` (5.1) as raw syscalls. Where a pidfd
//! cannot be had, callers fall back to signalling by pid after checking /proc (see `send`).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nix::errno::Errno;

/// Set once the kernel said ENOSYS: from then on no pidfd syscall is tried again.
static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// The errnos already warned about (bit N: errno N; bit 0: any above 63, and other notes):
/// each reason is said once, not per process or per batch.
static WARNED: AtomicU64 = AtomicU64::new(0);

/// What `Pidfd::open` got.
#[derive(Debug)]
pub enum Open {
    Fd(Pidfd),
    /// No such process: it has been reaped.
    Gone,
    /// The process may well exist, but no pidfd could be had: ENOSYS (a kernel before 5.3),
    /// EPERM (a seccomp profile older than pidfd_open answers that, not ENOSYS), EMFILE or
    /// ENFILE (no descriptor left), ENOMEM. Never a sign that the process is gone.
    Without(Errno),
}

/// An open pidfd. The kernel always sets close-on-exec on it (pidfd_open(2)), so the command
/// never inherits one; dropping it closes it.
#[derive(Debug)]
pub struct Pidfd {
    fd: OwnedFd,
    pid: i32,
}

impl Pidfd {
    /// A pidfd for `pid` (a zombie is fine: it is still there until reaped). Any failure but
    /// ESRCH is `Open::Without`, logged once per errno at warning level (ENOSYS once at debug
    /// level, and never tried again).
    pub fn open(pid: i32) -> Open {
        if UNSUPPORTED.load(Ordering::Relaxed) {
            return Open::Without(Errno::ENOSYS);
        }
        // SAFETY: pidfd_open(2) takes two integers and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
        if fd >= 0 {
            // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
            return Open::Fd(Pidfd { fd: unsafe { OwnedFd::from_raw_fd(fd as i32) }, pid });
        }
        match Errno::last() {
            Errno::ESRCH => Open::Gone,
            Errno::ENOSYS => {
                unsupported("pidfd_open");
                Open::Without(Errno::ENOSYS)
            }
            e => {
                fallback("pidfd_open", e);
                Open::Without(e)
            }
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `sig` to the process (`sig` 0 only checks that it has not been reaped).
    /// ESRCH once it has been reaped, whoever holds its pid number now.
    pub fn signal(&self, sig: i32) -> Result<(), Errno> {
        self.send(sig, 0)
    }

    /// Sends `sig` to the process group whose id is this process's pid (Linux 6.9,
    /// PIDFD_SIGNAL_PROCESS_GROUP). The pidfd holds the kernel's `struct pid`, so this reaches
    /// the members of *that* group even after its leader was reaped, never a later group that
    /// reuses the number; ESRCH once no member is left, EINVAL on older kernels.
    pub fn signal_group(&self, sig: i32) -> Result<(), Errno> {
        self.send(sig, libc::PIDFD_SIGNAL_PROCESS_GROUP)
    }

    /// Whether the process has exited (the pidfd polls readable then), asked without any
    /// signal syscall: the check that makes a pid safe to use when pidfd_send_signal is denied.
    pub fn exited(&self) -> bool {
        let mut fd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: poll(2) on one valid pollfd, without waiting.
        let rc = unsafe { libc::poll(&mut fd, 1, 0) };
        rc > 0 && fd.revents != 0
    }

    fn send(&self, sig: i32, flags: libc::c_uint) -> Result<(), Errno> {
        // SAFETY: pidfd_send_signal(2) with our own open descriptor and a null siginfo (the
        // kernel fills in SI_USER, as kill(2) does).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                flags,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = Errno::last();
        if e == Errno::ENOSYS {
            // pidfd_open without pidfd_send_signal does not exist upstream, but a seccomp
            // profile can make it so: signal by pid from now on.
            unsupported("pidfd_send_signal");
        }
        Err(e)
    }
}

/// Whether pidfds are still believed to work (no ENOSYS seen yet).
pub fn supported() -> bool {
    !UNSUPPORTED.load(Ordering::Relaxed)
}

/// Says once per errno, at warning level, that `call` failed and pids are used instead.
pub fn fallback(call: &str, e: Errno) {
    let bit = 1u64 << (e as u32).clamp(1, 63);
    if WARNED.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
        log::warn!("{call}: {}; signalling by pid, checked in /proc just before", crate::error::os(e));
    }
}

/// Says `text` once at warning level (the first of these notes only: they are all one
/// environment's trouble, and a shutdown pass may meet it for every process).
pub fn fallback_note(text: &str) {
    if WARNED.fetch_or(1, Ordering::Relaxed) & 1 == 0 {
        log::warn!("{text}");
    }
}

fn unsupported(call: &str) {
    if !UNSUPPORTED.swap(true, Ordering::Relaxed) {
        log::debug!(
            "{call}: not supported by this kernel (ENOSYS); signalling by pid, which a reused pid can misdirect"
        );
    }
}

/// Readable (POLLIN) once the process has exited: the driver polls the followed daemon's.
impl AsFd for Pidfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pidfd outlives the process: once reaped, it reaches nobody (whoever gets the pid).
    #[test]
    fn a_pidfd_reaches_its_process_until_it_is_reaped() {
        let mut child = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        let Open::Fd(fd) = Pidfd::open(child.id() as i32) else { panic!("pidfds on the test kernel") };
        assert_eq!(fd.signal(0), Ok(()));
        assert!(!fd.exited());
        assert_eq!(fd.signal(libc::SIGKILL), Ok(()));
        child.wait().unwrap();
        assert!(fd.exited());
        assert_eq!(fd.signal(0), Err(Errno::ESRCH));
        assert!(matches!(Pidfd::open(i32::MAX), Open::Gone));
    }
}

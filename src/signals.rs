//! Signal names and numbers, reaper's signal mask, and the signalfd the supervisor reads.
//!
//! Signal numbers stay plain `i32` everywhere: nix's `Signal` enum cannot hold real-time
//! signals, and systemd images stop with SIGRTMIN+3.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// Real-time signals in the kernel's numbering, which is what Docker (`STOPSIGNAL SIGRTMIN+3`),
/// Go and glibc programs use. musl's `SIGRTMIN()` is 35, so we never ask the C library.
pub const RTMIN: i32 = 34;
pub const RTMAX: i32 = 64;

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Synchronous faults stay unblocked: blocking them would turn a real fault into a hang.
const FAULTS: [i32; 7] =
    [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGABRT, libc::SIGTRAP, libc::SIGSYS];

/// TERM, INT and QUIT ask the workload to stop: they start `--kill-after` and end `--pause`.
pub fn is_stop(sig: i32) -> bool {
    matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)
}

/// A signal number that can be sent: 1–31 or RTMIN–RTMAX (32 and 33 belong to the C library).
pub fn is_valid(sig: i32) -> bool {
    (1..32).contains(&sig) || (RTMIN..=RTMAX).contains(&sig)
}

/// Parses `TERM`, `SIGTERM`, `sigterm`, `15`, `RTMIN+3`, `SIGRTMAX-2`.
pub fn parse(text: &str) -> Result<i32, String> {
    let bad = || format!("invalid signal '{text}'");
    let upper = text.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let sig = if let Ok(n) = name.parse::<i32>() {
        n
    } else if let Some(&(_, n)) = NAMES.iter().find(|(s, _)| *s == name) {
        n
    } else if let Some(rest) = name.strip_prefix("RTMIN") {
        RTMIN + offset(rest, '+').ok_or_else(bad)?
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        RTMAX - offset(rest, '-').ok_or_else(bad)?
    } else {
        return Err(bad());
    };
    if is_valid(sig) {
        Ok(sig)
    } else {
        Err(format!("invalid signal '{text}': not a signal number (1-31, 34-64)"))
    }
}

/// The `+3` of `RTMIN+3`; empty means 0. Bounded so the sum cannot overflow.
fn offset(rest: &str, sign: char) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    let digits = rest.strip_prefix(sign)?;
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `SIGTERM`, `SIGRTMIN+3`, or the bare number for anything else.
pub fn name(sig: i32) -> String {
    match NAMES.iter().find(|&&(_, n)| n == sig) {
        Some((s, _)) => format!("SIG{s}"),
        None if (RTMIN..=RTMAX).contains(&sig) => format!("SIGRTMIN+{}", sig - RTMIN),
        None => format!("signal {sig}"),
    }
}

/// A kernel signal set: bit n-1 stands for signal n. We use the raw syscalls because the C
/// libraries refuse to put their reserved signals (32–34) into a `sigset_t`.
pub type KernelMask = u64;

fn bit(sig: i32) -> KernelMask {
    1 << (sig - 1)
}

fn sigprocmask(how: libc::c_int, set: Option<&KernelMask>) -> io::Result<KernelMask> {
    let mut old: KernelMask = 0;
    let set_ptr = set.map_or(std::ptr::null(), |s| s as *const KernelMask);
    // SAFETY: raw rt_sigprocmask with an 8-byte kernel sigset; both pointers are valid or null.
    // Async-signal-safe, so the forked child may call it too.
    let rc = unsafe { libc::syscall(libc::SYS_rt_sigprocmask, how, set_ptr, &mut old as *mut KernelMask, 8) };
    if rc == 0 { Ok(old) } else { Err(io::Error::last_os_error()) }
}

/// The dispositions reaper changes for itself, and gives back to the command.
/// - SIGTTIN/SIGTTOU ignored: writing a log line to a terminal it no longer owns must not stop
///   PID 1. They stay out of the blocked set, because a blocked signal is queued (and would be
///   forwarded) even when ignored.
/// - SIGCHLD default: inherited as ignored, the kernel would reap our children by itself and
///   send no SIGCHLD, and reaper would never learn that the command exited.
const OWN_DISPOSITIONS: [(Signal, SigHandler); 3] = [
    (Signal::SIGTTIN, SigHandler::SigIgn),
    (Signal::SIGTTOU, SigHandler::SigIgn),
    (Signal::SIGCHLD, SigHandler::SigDfl),
];

/// What reaper inherited and changed, so the command can be given back exactly that.
#[derive(Clone, Copy)]
pub struct Inherited {
    mask: KernelMask,
    handlers: [SigHandler; 3],
}

/// First thing in main: blocks every signal but the synchronous faults (and TTIN/TTOU, see
/// `OWN_DISPOSITIONS`), so that none is lost or acted on before the signalfd exists, and
/// returns the mask we inherited.
pub fn block_all() -> io::Result<KernelMask> {
    sigprocmask(libc::SIG_BLOCK, Some(&blocked_set()))
}

fn blocked_set() -> KernelMask {
    FAULTS.iter().chain(&[libc::SIGTTIN, libc::SIGTTOU]).fold(KernelMask::MAX, |m, &s| m & !bit(s))
}

/// Installs `OWN_DISPOSITIONS` and remembers what they replaced.
pub fn set_own_dispositions(mask: KernelMask) -> io::Result<Inherited> {
    let mut handlers = [SigHandler::SigDfl; 3];
    for (old, (sig, handler)) in handlers.iter_mut().zip(OWN_DISPOSITIONS) {
        let action = SigAction::new(handler, SaFlags::empty(), SigSet::empty());
        // SAFETY: SIG_IGN and SIG_DFL run no handler code.
        *old = unsafe { sigaction(sig, &action) }?.handler();
    }
    Ok(Inherited { mask, handlers })
}

impl Inherited {
    /// Puts back the inherited mask and dispositions. Runs in the forked child between fork
    /// and exec: only async-signal-safe calls (sigaction, rt_sigprocmask).
    pub fn restore(&self) {
        for ((sig, _), handler) in OWN_DISPOSITIONS.iter().zip(self.handlers) {
            let action = SigAction::new(handler, SaFlags::empty(), SigSet::empty());
            // SAFETY: the handler is SIG_DFL or SIG_IGN (exec resets anything else).
            let _ = unsafe { sigaction(*sig, &action) };
        }
        let _ = sigprocmask(libc::SIG_SETMASK, Some(&self.mask));
    }
}

/// The non-blocking signalfd that delivers every blocked signal to the supervisor loop.
pub struct SignalFd {
    fd: OwnedFd,
    me: u32,
    buf: [libc::signalfd_siginfo; 16],
    len: usize,
    pos: usize,
}

impl SignalFd {
    pub fn new() -> io::Result<Self> {
        let mask = blocked_set();
        let flags = libc::SFD_CLOEXEC | libc::SFD_NONBLOCK;
        // SAFETY: raw signalfd4 creating a new descriptor (-1) from an 8-byte kernel sigset.
        let fd = unsafe { libc::syscall(libc::SYS_signalfd4, -1, &mask as *const KernelMask, 8, flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just gave us this descriptor and nobody else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // SAFETY: signalfd_siginfo is plain old data; all-zero is a valid value.
        let buf = unsafe { std::mem::zeroed() };
        Ok(SignalFd { fd, me: std::process::id(), buf, len: 0, pos: 0 })
    }

    /// The next pending signal number, `None` once the queue is empty. Reads in batches so a
    /// signal storm costs one syscall per 16 signals.
    pub fn next_signal(&mut self) -> io::Result<Option<i32>> {
        loop {
            let Some(info) = self.next_info()? else { return Ok(None) };
            // A write to a closed stderr pipe or past RLIMIT_FSIZE makes the kernel send
            // SIGPIPE/SIGXFSZ to reaper itself (SI_USER, our pid). That is reaper's own trouble,
            // not the command's: forwarding it would kill the command.
            if info.ssi_code == libc::SI_USER && info.ssi_pid == self.me {
                continue;
            }
            return Ok(Some(info.ssi_signo as i32));
        }
    }

    fn next_info(&mut self) -> io::Result<Option<libc::signalfd_siginfo>> {
        if self.pos == self.len {
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: reading into our own buffer of exactly that many bytes.
            let n = unsafe {
                libc::read(self.fd.as_raw_fd(), self.buf.as_mut_ptr().cast(), size * self.buf.len())
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                return match err.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
                    _ => Err(err),
                };
            }
            self.len = n as usize / size;
            self.pos = 0;
            if self.len == 0 {
                return Ok(None);
            }
        }
        self.pos += 1;
        Ok(Some(self.buf[self.pos - 1]))
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_numbers_and_realtime() {
        assert_eq!(parse("TERM"), Ok(15));
        assert_eq!(parse("SIGTERM"), Ok(15));
        assert_eq!(parse("sigterm"), Ok(15));
        assert_eq!(parse("15"), Ok(15));
        assert_eq!(parse("RTMIN"), Ok(34));
        assert_eq!(parse("RTMIN+3"), Ok(37));
        assert_eq!(parse("SIGRTMIN+3"), Ok(37));
        assert_eq!(parse("RTMAX"), Ok(64));
        assert_eq!(parse("RTMAX-2"), Ok(62));
        assert_eq!(parse("64"), Ok(64));
        assert_eq!(parse("WINCH"), Ok(libc::SIGWINCH));
    }

    #[test]
    fn rejects_bad_signals() {
        for bad in [
            "",
            "0",
            "32",
            "33",
            "65",
            "-1",
            "FOO",
            "RTMIN+31",
            "RTMIN-1",
            "RTMAX+1",
            "RTMIN+",
            "RTMIN+99999999999",
            "99999999999",
            "SIG",
            "RTMAX-31",
        ] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn names_round_trip() {
        for sig in (1..32).chain(RTMIN..=RTMAX) {
            assert_eq!(parse(&name(sig)), Ok(sig), "{}", name(sig));
        }
    }
}

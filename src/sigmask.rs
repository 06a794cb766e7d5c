//! reaper's own signal mask and dispositions, and handing the inherited ones back to the command.

use std::io;

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

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

/// First thing in main: blocks every signal but TTIN/TTOU (see `OWN_DISPOSITIONS`), so that
/// none is lost or acted on before the signalfd exists, and returns the mask we inherited.
///
/// The synchronous faults (SEGV, BUS, ILL, FPE, ABRT, TRAP, SYS) are blocked too: one sent
/// with kill(2) by another process would otherwise kill a non-PID-1 reaper and leave the
/// command unsupervised; blocked, it arrives in the signalfd and is forwarded. A genuine
/// fault of reaper's own is still fatal: the kernel (force_sig_fault) unblocks the signal and
/// resets its handler before delivering it.
pub fn block_all() -> io::Result<KernelMask> {
    sigprocmask(libc::SIG_BLOCK, Some(&blocked_set()))
}

/// Everything reaper blocks and reads from the signalfd.
pub fn blocked_set() -> KernelMask {
    KernelMask::MAX & !bit(libc::SIGTTIN) & !bit(libc::SIGTTOU)
}

/// Puts back the inherited mask, for `--probe`, which is no init and reads no signalfd: TERM,
/// INT and QUIT then end it as they end any command, not only when its --timeout is up. PIPE
/// stays blocked: a reader gone makes the line's write fail, the exit code stays the verdict.
pub fn unblock_inherited(mask: KernelMask) -> io::Result<()> {
    sigprocmask(libc::SIG_SETMASK, Some(&(mask | bit(libc::SIGPIPE)))).map(drop)
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
    /// An empty mask and default dispositions: what commands started by unit tests get.
    #[cfg(test)]
    pub(crate) fn defaults() -> Inherited {
        Inherited { mask: 0, handlers: [SigHandler::SigDfl; 3] }
    }

    /// Puts back the inherited mask and dispositions. Runs in the child between clone (or
    /// fork) and exec: only async-signal-safe calls (sigaction, rt_sigprocmask), no lock (the
    /// C libraries lock only for SIGABRT's disposition). The child has its own copy of the
    /// dispositions (spawn.rs clones without CLONE_SIGHAND): reaper's stay as they are.
    pub fn restore(&self) {
        for ((sig, _), handler) in OWN_DISPOSITIONS.iter().zip(self.handlers) {
            let action = SigAction::new(handler, SaFlags::empty(), SigSet::empty());
            // SAFETY: the handler is SIG_DFL or SIG_IGN (exec resets anything else).
            let _ = unsafe { sigaction(*sig, &action) };
        }
        let _ = sigprocmask(libc::SIG_SETMASK, Some(&self.mask));
    }
}

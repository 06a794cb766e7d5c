//! Reaping exited children with `waitpid`/`waitid`.

use std::io;

use nix::errno::Errno;

use crate::state::Ended;

/// What a raw `waitpid` status says.
fn ended(status: libc::c_int) -> Ended {
    if libc::WIFSIGNALED(status) {
        Ended::Signaled(libc::WTERMSIG(status))
    } else {
        Ended::Exited(libc::WEXITSTATUS(status))
    }
}

/// One result of `waitpid(-1, WNOHANG)`.
pub enum Reaped {
    /// A child was reaped; `name` is its /proc comm when asked for (read before reaping).
    Child { pid: i32, ended: Ended, name: Option<String> },
    /// Children exist but none has exited.
    NoneExited,
    /// No children at all (ECHILD).
    NoChildren,
}

/// What `peek` saw: the first exited child, still waitable, or why there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek {
    /// `killed`: by SIGKILL (the OOM report names those).
    Exited {
        pid: i32,
        killed: bool,
    },
    NoneExited,
    NoChildren,
}

/// The first exited child, left a zombie (`waitid(WNOWAIT)`), so that its /proc entry and
/// pidfd can still be had.
pub fn peek() -> io::Result<Peek> {
    peek_at(libc::P_ALL, 0)
}

fn peek_at(which: libc::idtype_t, id: libc::id_t) -> io::Result<Peek> {
    // SAFETY: siginfo_t is plain old data; waitid fills it in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: raw waitid with a valid pointer; WNOWAIT leaves the child waitable.
    let rc = unsafe { libc::waitid(which, id, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) };
    if rc < 0 {
        return Ok(match classify(Errno::last())? {
            Reaped::NoChildren => Peek::NoChildren,
            _ => Peek::NoneExited,
        });
    }
    // SAFETY: si_pid and si_status are valid after a successful waitid (pid 0: none exited).
    Ok(match unsafe { (info.si_pid(), info.si_status()) } {
        (0, _) => Peek::NoneExited,
        (pid, status) => {
            Peek::Exited { pid, killed: info.si_code == libc::CLD_KILLED && status == libc::SIGKILL }
        }
    })
}

/// Which reaped children are named (from /proc/PID/comm, read while they are zombies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    None,
    /// Those SIGKILL ended: the OOM report names them.
    Killed,
    All,
}

/// Reaps one exited child, if any. When `names` may want its name, first peeks at it so its
/// /proc entry can still be read, unless `peeked` is that look already: a zombie that
/// [`peek`] saw (waitid's WNOWAIT left it; only reaper reaps its children), which the batch
/// of a wake-up starts with (no second waitid for it on the way to reaper's exit).
pub fn reap_one(names: Names, peeked: Option<Peek>) -> io::Result<Reaped> {
    let mut name = None;
    let mut target = -1;
    if names != Names::None {
        let (pid, killed) = match peeked {
            Some(Peek::Exited { pid, killed }) => (pid, killed),
            _ => match peek()? {
                Peek::Exited { pid, killed } => (pid, killed),
                Peek::NoneExited => return Ok(Reaped::NoneExited),
                Peek::NoChildren => return Ok(Reaped::NoChildren),
            },
        };
        if names == Names::All || killed {
            name = crate::procfs::name(pid);
        }
        target = pid;
    }
    let mut status: libc::c_int = 0;
    // SAFETY: raw waitpid with a valid status pointer.
    let pid = unsafe { libc::waitpid(target, &mut status, libc::WNOHANG) };
    match pid {
        0 => Ok(Reaped::NoneExited),
        p if p > 0 => Ok(Reaped::Child { pid: p, ended: ended(status), name }),
        _ => classify(Errno::last()),
    }
}

fn classify(errno: Errno) -> io::Result<Reaped> {
    match errno {
        Errno::ECHILD => Ok(Reaped::NoChildren),
        Errno::EINTR => Ok(Reaped::NoneExited),
        e => Err(e.into()),
    }
}

/// Whether child `pid` has exited and waits to be reaped (it stays a zombie: WNOWAIT).
pub fn has_exited(pid: i32) -> bool {
    matches!(peek_at(libc::P_PID, pid as libc::id_t), Ok(Peek::Exited { pid: p, .. }) if p == pid)
}

//! Every signal reaper sends, with one fallback policy: through a pidfd where one can be had
//! (a reused pid can never redirect it), else by pid, right after /proc showed that the pid
//! is still the process meant. A failure to get a pidfd is never read as "process gone".
//!
//! Which syscall, and why:
//! - reaper's direct children (the command, orphans listed during the drain) are signalled by
//!   pid: an exited child stays a zombie, its pid taken, until reaper reaps it.
//! - leftovers deeper in the tree can exit and be reaped by their own parents at any moment:
//!   each gets a pidfd right after the /proc walk, is confirmed to be ours *after* that (its
//!   parent is reaper or another process of the walk), and is signalled through the pidfd.
//!   Without a pidfd for it (ENOSYS, seccomp's EPERM, no descriptor left) the same check runs
//!   and kill(2) follows at once: only a reuse between those two syscalls could get through.
//! - the process followed by `--follow-pidfile` is held from its adoption: as a pidfd, or as
//!   pid and start time, checked in /proc before each signal (see `Held`).
//! - a process group only while a member is known to be alive (see `Sender::group`).

use std::io;
use std::os::fd::BorrowedFd;

use nix::errno::Errno;

use crate::pidfd::{Open, Pidfd};
use crate::procfs;
use crate::signals;
use crate::state::{Id, Target};

/// Leftover pidfds open at once, well under the usual 1024-descriptor soft limit: a larger
/// tree is signalled in batches, each confirmed after its own pidfds were opened. A batch
/// also ends early when descriptors run out (a low `ulimit -n`): it is signalled, its pidfds
/// closed, and the next batch gets them.
const PIDFD_BATCH: usize = 256;

/// A process reaper will signal later, held as firmly as the environment allows.
#[derive(Debug)]
pub enum Held {
    /// Reaches this process until it is reaped, nobody after; polls readable once it exits.
    Fd(Pidfd),
    /// No pidfd could be had: the process as /proc named it when it was taken. Pid and start
    /// time name one process for good (a reused pid starts later), so /proc showing both, not
    /// exited, right before a kill is the check.
    Pid(Id),
}

impl Held {
    /// `None` if `pid` is gone.
    pub fn take(pid: i32) -> Option<Held> {
        match Pidfd::open(pid) {
            Open::Fd(fd) => Some(Held::Fd(fd)),
            Open::Gone => None,
            Open::Without(_) => procfs::stat(pid).map(|s| Held::Pid(Id { pid, start: s.start })),
        }
    }

    pub fn pid(&self) -> i32 {
        match self {
            Held::Fd(fd) => fd.pid(),
            Held::Pid(id) => id.pid,
        }
    }

    /// The descriptor that polls readable when the process exits; `None` without a pidfd:
    /// then only `exited` can tell, and the driver has to ask it now and then.
    pub fn pollable(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Held::Fd(fd) => Some(std::os::fd::AsFd::as_fd(fd)),
            Held::Pid(_) => None,
        }
    }

    /// Whether the process has exited: its pidfd says so, or /proc no longer shows it alive
    /// with the same start time (gone, a zombie, or another process under the number).
    pub fn exited(&self) -> bool {
        match self {
            Held::Fd(fd) => fd.exited(),
            Held::Pid(id) => !procfs::alive(*id),
        }
    }

    fn signal(&self, sig: i32) {
        match self {
            Held::Fd(fd) => send_via(fd, sig),
            Held::Pid(id) if procfs::alive(*id) => kill(id.pid, sig),
            Held::Pid(id) => log::debug!("{} to {}: already gone", signals::name(sig), id.pid),
        }
    }
}

/// The processes reaper holds on to for signalling, and the rules for reaching them.
pub struct Sender {
    me: i32,
    /// The command's pid until it is reaped. It leads its own process group (spawn's
    /// setpgid), and as our unreaped child it keeps that group id taken.
    pub command: Option<i32>,
    /// The process followed by `--follow-pidfile`, from its adoption.
    pub followed: Option<Held>,
    /// The command's pidfd, opened when it has exited, just before it is reaped, and kept
    /// only for the shutdown that signals its group: once reaped, its group id would be free
    /// for reuse as soon as the last member is gone, and only this pidfd can tell.
    pub leader: Option<Pidfd>,
}

impl Sender {
    pub fn new(command: Option<i32>) -> Sender {
        Sender { me: nix::unistd::getpid().as_raw(), command, followed: None, leader: None }
    }

    /// `Effect::Send`: the machine names no other pid than reaper's own (pinned) children,
    /// the followed process and the command's group.
    pub fn send(&self, to: Target, sig: i32) {
        match to {
            Target::Pid(pid) => match (&self.followed, &self.leader) {
                (Some(held), _) if held.pid() == pid => held.signal(sig),
                (_, Some(fd)) if fd.pid() == pid => send_via(fd, sig),
                _ => kill(pid, sig),
            },
            Target::Group(pgid) => self.group(pgid, sig),
        }
    }

    /// Every process reaper is responsible for: as PID 1 the whole namespace; otherwise only
    /// its own descendants, found afresh in /proc (never a process outside its tree). Those in
    /// `skip` (processes, or every member of a group) got `sig` already and are left out, which
    /// as PID 1 means walking the tree too instead of kill(-1). With `record`, returns who has
    /// it now, as /proc showed them.
    pub fn leftovers(&self, sig: i32, groups: &[i32], record: bool, skip: &[Target]) -> Vec<Id> {
        if self.me == 1 && skip.is_empty() {
            // kill(-1) reaches every process in the namespace, also those outside our tree
            // (`docker exec`), and nothing beyond it. The list taken just before it records
            // who got the signal.
            let found = match record {
                true => {
                    procfs::descendants(self.me).unwrap_or_default().into_iter().map(procfs::id).collect()
                }
                false => Vec::new(),
            };
            kill(-1, sig);
            return found;
        }
        match self.descendants(sig, skip) {
            Ok(ids) => ids,
            Err(e) => {
                // Said once per shutdown: only its first leftover signal records.
                let level = if record { log::Level::Warn } else { log::Level::Debug };
                log::log!(
                    level,
                    "cannot list descendants in /proc ({}); signalling only the commands' process groups",
                    crate::error::os(e)
                );
                // A group that had it already is left out; a command that had it alone cannot
                // be, its group's other members need it.
                for &g in groups.iter().filter(|&&g| !skip.contains(&Target::Group(g))) {
                    self.group(g, sig);
                }
                Vec::new()
            }
        }
    }

    /// Signals each descendant found in /proc (but those in `skip`, which have it already)
    /// through a pidfd opened after the walk and confirmed after opening; returns those that
    /// were still ours.
    fn descendants(&self, sig: i32, skip: &[Target]) -> io::Result<Vec<Id>> {
        let mut tree = procfs::descendants(self.me)?;
        let mut rest = tree.clone();
        tree.push(self.me);
        // BinaryHeap's heapsort: sort_unstable costs 2 KB of binary per type.
        let tree = std::collections::BinaryHeap::from(tree).into_sorted_vec();
        let mut ours = Vec::new();
        while !rest.is_empty() {
            // Opened before any of them is signalled: from here on each pidfd is the process
            // the walk saw, or (if that one exited meanwhile) a dead one that no reused pid
            // can bring back.
            let mut batch = Vec::new();
            for &pid in rest.iter().take(PIDFD_BATCH) {
                match Pidfd::open(pid) {
                    // Out of descriptors: signal these and close them first. The last pidfd
                    // goes back to free one descriptor for the /proc reads below (its pid is
                    // the next batch's first); alone, its process is signalled by pid.
                    Open::Without(e @ (Errno::EMFILE | Errno::ENFILE)) if !batch.is_empty() => {
                        if let (Some((last, _)), true) = (batch.pop(), batch.is_empty()) {
                            batch.push((last, Open::Without(e)));
                        }
                        break;
                    }
                    open => batch.push((pid, open)),
                }
            }
            // The batch may have taken the last descriptor without hitting the limit: the
            // /proc reads below need one.
            if batch.len() > 1 && !descriptor_left() {
                batch.pop();
            }
            rest.drain(..batch.len());
            for (pid, open) in batch {
                // Read after opening: while the pidfd's process lives, /proc/PID is that
                // process; its parent must be reaper or in the walk. A pid reused between the
                // walk and the open (an outsider, or reparented out of the tree) fails this.
                let stat = match procfs::read_stat(pid) {
                    Ok(stat) => stat.filter(|s| tree.binary_search(&s.ppid).is_ok()),
                    // /proc cannot tell (it just listed it): the walk's word stands, rather than
                    // a leftover left without its signal.
                    Err(e) => {
                        crate::pidfd::fallback_note(&format!(
                            "reading /proc/{pid}/stat: {}; signalling as the walk found it",
                            crate::error::os(e)
                        ));
                        Some(procfs::Stat { state: b'?', ppid: self.me, pgrp: 0, start: 0 })
                    }
                };
                let Some(stat) = stat.filter(|_| !matches!(open, Open::Gone)) else {
                    log::debug!("pid {pid}: gone or no longer reaper's descendant, not signalled");
                    continue;
                };
                let had = skip.contains(&Target::Pid(pid)) || skip.contains(&Target::Group(stat.pgrp));
                match open {
                    _ if had => {}
                    Open::Fd(fd) => send_via(&fd, sig),
                    // The check just above was the last look: kill at once.
                    _ => kill(pid, sig),
                }
                ours.push(Id { pid, start: stat.start });
            }
        }
        Ok(ours)
    }

    /// Signals process group `pgid`, but only while a member is known to be alive: a group id
    /// stays taken while any member exists (zombies too), and once the last one is reaped the
    /// number may become a stranger's pid and group. Known alive means one of:
    /// 1. the command, not yet reaped, leads it (an unreaped child pins its pid and group);
    /// 2. we hold its leader's pidfd: the kernel signals that very group through it (Linux
    ///    6.9, PIDFD_SIGNAL_PROCESS_GROUP), members left after the leader was reaped included;
    /// 3. a descendant seen in /proc with that group, whose pidfd, opened after the look, says
    ///    it is still alive: then kill(-pgid) follows at once (the group would have to empty,
    ///    and its number be handed out again, between two syscalls). Without a pidfd for it,
    ///    /proc's word is all there is.
    ///
    /// Without /proc and without (6.9) pidfds reaper cannot tell, and sends as it always did.
    fn group(&self, pgid: i32, sig: i32) {
        if self.command == Some(pgid) {
            return kill(-pgid, sig);
        }
        let held = [self.followed.as_ref().and_then(|h| match h {
            Held::Fd(fd) => Some(fd),
            Held::Pid(_) => None,
        })];
        if let Some(fd) = held.into_iter().chain([self.leader.as_ref()]).flatten().find(|fd| fd.pid() == pgid)
        {
            match fd.signal_group(sig) {
                Ok(()) => return log::debug!("sent {} to group {pgid} (pidfd)", signals::name(sig)),
                Err(Errno::ESRCH) => {
                    return log::debug!("{} to group {pgid}: no member left", signals::name(sig));
                }
                // EINVAL: a kernel before 6.9 (EPERM: a seccomp profile); look for a member.
                Err(_) => {}
            }
        }
        match self.live_member(pgid) {
            // A process may join any group of its session (setpgid checks nothing else): a
            // followed daemon in its caller's group, with `-g`, must not take the caller down.
            Ok(true) => match self.members_if_shared(pgid) {
                Some(members) => {
                    log::warn!(
                        "group {pgid} holds processes outside reaper's tree: {} goes to reaper's members of it, one by one",
                        signals::name(sig)
                    );
                    for held in members.into_iter().filter_map(Held::take) {
                        held.signal(sig);
                    }
                }
                None => kill(-pgid, sig),
            },
            Ok(false) => {
                log::debug!("{} to group {pgid}: no live member known, not sent", signals::name(sig))
            }
            Err(e) => {
                log::debug!(
                    "group {pgid}: cannot look for members ({}); sending anyway",
                    crate::error::os(e)
                );
                kill(-pgid, sig)
            }
        }
    }

    /// Reaper's descendants in group `pgid`, if the group also holds a process outside
    /// reaper's tree (a look at all of /proc); `None` if it does not, or /proc cannot tell.
    fn members_if_shared(&self, pgid: i32) -> Option<Vec<i32>> {
        let ours = procfs::descendants(self.me).ok()?;
        let in_group = |pid: i32| procfs::stat(pid).is_some_and(|s| s.pgrp == pgid);
        let outsider = std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .any(|pid| pid != self.me && !ours.contains(&pid) && in_group(pid));
        outsider.then(|| ours.into_iter().filter(|&pid| in_group(pid)).collect())
    }

    /// Whether a descendant of reaper is in process group `pgid` and alive (rule 3 above).
    fn live_member(&self, pgid: i32) -> io::Result<bool> {
        for pid in procfs::descendants(self.me)? {
            if procfs::stat(pid).is_none_or(|s| s.pgrp != pgid) {
                continue;
            }
            match Pidfd::open(pid) {
                Open::Without(_) => return Ok(true),
                Open::Fd(fd) => {
                    // Still in the group after the open, and not reaped: it is the one we saw.
                    let still = procfs::stat(pid).is_some_and(|s| s.pgrp == pgid);
                    if still && fd.signal(0).is_ok() {
                        return Ok(true);
                    }
                }
                Open::Gone => {}
            }
        }
        Ok(false)
    }
}

/// Whether one more descriptor can be opened (F_DUPFD_CLOEXEC of stdin, closed at once).
fn descriptor_left() -> bool {
    // SAFETY: fcntl(2) duplicating fd 0 (always open: lib::fill_stdio); the copy is closed.
    let fd = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: closing the descriptor just made.
    unsafe { libc::close(fd) };
    true
}

/// pidfd_send_signal(2): reaches the process the pidfd holds, or nobody once it is reaped.
/// Denied (ENOSYS or EPERM from a seccomp profile that allows pidfd_open but not this), the
/// pid is used while the pidfd says the process has not exited: until it has, the number is
/// still its own.
fn send_via(fd: &Pidfd, sig: i32) {
    let pid = fd.pid();
    match fd.signal(sig) {
        Ok(()) => log::debug!("sent {} to {pid} (pidfd)", signals::name(sig)),
        Err(Errno::ESRCH) => log::debug!("{} to {pid}: already gone", signals::name(sig)),
        Err(e) if !fd.exited() => {
            if e != Errno::ENOSYS {
                crate::pidfd::fallback("pidfd_send_signal", e);
            }
            kill(pid, sig)
        }
        Err(_) => log::debug!("{} to {pid}: already gone", signals::name(sig)),
    }
}

/// kill(2) with a raw signal number (nix's `Signal` cannot hold real-time signals). A target
/// that is already gone is normal while things shut down.
pub fn kill(target: i32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(target, sig) } == 0 {
        log::debug!("sent {} to {target}", signals::name(sig));
        return;
    }
    match Errno::last() {
        Errno::ESRCH => log::debug!("{} to {target}: already gone", signals::name(sig)),
        e => log::warn!("sending {} to {target}: {}", signals::name(sig), crate::error::os(e)),
    }
}

//! The driver around the lifecycle machine (`state`): it sleeps in poll(2) on the signalfd
//! until the machine's next deadline, turns what woke it into events, and carries out the
//! machine's effects with pidfds (kill(2) where a pid cannot be reused), /proc and the
//! pidfile. It holds no lifecycle state itself, only resources: the pidfds below.
//!
//! Which signal syscall, and why:
//! - reaper's direct children (the command, orphans listed during the drain) are signalled by
//!   pid: an exited child stays a zombie, its pid taken, until this loop reaps it.
//! - leftovers deeper in the tree can exit and be reaped by their own parents at any moment:
//!   each gets a pidfd right after the /proc walk, is confirmed to be ours *after* that (its
//!   parent is reaper or another process of the walk), and is signalled through the pidfd.
//! - the process followed by `--follow-pidfile` is held as a pidfd from its adoption.
//! - a process group only while a member is known to be alive (see `send_group`).

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::options::Options;
use crate::pidfd::Pidfd;
use crate::procfs;
use crate::reap::{self, Peek, Reaped};
use crate::sigfd::SignalFd;
use crate::sigmask::Inherited;
use crate::signals;
use crate::spawn;
use crate::state::{Config, Effect, Event, Id, Machine, Member, OnSuccess, Proc, State, Target};

const SIGNAL_BATCH: usize = 64;

/// Leftover pidfds open at once, well under the usual 1024-descriptor soft limit: a larger
/// tree is signalled in batches, each confirmed after its own pidfds were opened.
const PIDFD_BATCH: usize = 256;

pub struct Supervisor {
    machine: Machine,
    signals: SignalFd,
    /// For restarting `--respawn` helpers: their argv and the signal state to hand them.
    respawn: Vec<Vec<std::ffi::OsString>>,
    inherited: Inherited,
    dir: Option<std::ffi::CString>,
    me: i32,
    /// The command's pid until it is reaped. It leads its own process group (spawn's
    /// setpgid), and as our unreaped child it keeps that group id taken.
    command: Option<i32>,
    /// Resource cache, keyed by pid (the machine deals in pids): pidfds of the process
    /// followed by `--follow-pidfile` (opened at its adoption) and of the command (opened
    /// when it has exited, just before it is reaped, kept only for the shutdown that signals
    /// its group), so that a `Send` to one of these pids, or to the group it leads, reaches
    /// that process or group and never a later holder of the number. Both `None` while
    /// reaper just waits for its command: no descriptor is held while idle.
    followed: Option<Pidfd>,
    leader: Option<Pidfd>,
    follow_pidfile: Option<PathBuf>,
    warn_on_reap: bool,
    remap_exit: Vec<u8>,
}

impl Supervisor {
    /// `main` is the started command's pid, or `None` in pause mode; `others` the commands
    /// started beside it; `dir` the directory they run in.
    pub fn new(
        opts: &Options,
        signals: SignalFd,
        inherited: Inherited,
        dir: Option<std::ffi::CString>,
        main: Option<i32>,
        others: Vec<Member>,
    ) -> Self {
        let on_success = if opts.wait_all {
            OnSuccess::WaitAll
        } else if opts.follow_pidfile.is_some() {
            OnSuccess::FollowPidfile
        } else {
            OnSuccess::Done
        };
        let cfg = Config {
            kill_after: opts.kill_after,
            drain: opts.drain,
            drain_signal: opts.drain_signal,
            rewrite: opts.rewrite.clone(),
            process_group: opts.process_group,
            on_success,
            warn_on_reap: opts.warn_on_reap,
            main_name: spawn::name(&opts.command),
            respawn_names: opts.respawn.iter().map(|c| spawn::name(c)).collect(),
            stop_delay: opts.stop_delay,
            debug_logs: log::log_enabled!(target: "reaper::state", log::Level::Debug),
        };
        Supervisor {
            machine: Machine::new(cfg, main.map(|pid| Proc { pid, pgid: pid }), others),
            signals,
            respawn: opts.respawn.clone(),
            inherited,
            dir,
            me: nix::unistd::getpid().as_raw(),
            command: main,
            followed: None,
            leader: None,
            follow_pidfile: opts.follow_pidfile.clone(),
            warn_on_reap: opts.warn_on_reap,
            remap_exit: opts.remap_exit.clone(),
        }
    }

    /// Runs until the workload is gone; returns reaper's exit code.
    pub fn run(mut self) -> i32 {
        loop {
            if let Some(code) = self.machine.exit_code() {
                let code = if self.remap_exit.contains(&(code as u8)) { 0 } else { code };
                log::info!("exiting with status {code}");
                return code;
            }
            // The followed daemon's pidfd turns readable when it exits, also when it is not
            // our child and its own parent reaps it (no SIGCHLD reaches us then).
            let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            fds.extend(self.followed.as_ref().map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN)));
            if let Err(e) = poll(&mut fds, timeout(self.machine.next_deadline())) {
                if e != Errno::EINTR {
                    log::error!("poll: {}", io::Error::from(e));
                }
            }
            let followed_exited = fds.get(1).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
            drop(fds);
            // The reap batch runs after every wake-up, not only after a SIGCHLD: a storm of
            // thread-directed signals can keep SIGCHLD out of the batch read, a followed
            // daemon's pidfd can turn readable before its SIGCHLD is queued, and a timer's
            // transition may await the batch's outcome.
            self.read_signals();
            self.feed(Event::Timer);
            self.reap();
            // Reaped by us in that batch, it has its status already; otherwise it is gone
            // without one.
            if let Some(pid) = followed_exited.then(|| self.followed.take()).flatten().map(|fd| fd.pid()) {
                self.feed(Event::FollowedGone { pid });
                self.reap();
            }
        }
    }

    /// At most `SIGNAL_BATCH` per wake-up: under a signal storm the signalfd never empties,
    /// and the reap and the deadlines must still get their turn.
    fn read_signals(&mut self) {
        for _ in 0..SIGNAL_BATCH {
            match self.signals.next_signal() {
                // Children are reaped after every wake-up anyway.
                Ok(Some(libc::SIGCHLD)) => {}
                Ok(Some(sig)) => self.feed(Event::Signal(sig)),
                Ok(None) => return,
                Err(e) => {
                    log::error!("reading signals: {e}");
                    return;
                }
            }
        }
    }

    /// Reaps every exited child (SIGCHLDs merge, so one may stand for many), then says whether
    /// any is left. Repeated while that changes the state: a state entered during the batch
    /// (the drain starting, a pidfile given up) must see the batch's outcome too.
    fn reap(&mut self) {
        // One waitid(WNOWAIT) first: after a wake-up for a forwarded signal, nothing has
        // exited and that is the whole batch (no waitpid).
        let first = match reap::peek() {
            Ok(first) => first,
            Err(e) => {
                log::error!("waitid: {e}");
                return;
            }
        };
        // The command's pidfd, taken while it is a zombie: once reaped, its group id would be
        // free for reuse as soon as the last member is gone, and only this pidfd can tell.
        if let (Some(cmd), Peek::Exited(pid)) = (self.command, first) {
            if pid == cmd || reap::has_exited(cmd) {
                self.leader = Pidfd::open(cmd).ok().flatten();
            }
        }
        loop {
            let before = std::mem::discriminant(self.machine.state());
            let children_left = match first {
                Peek::NoneExited => true,
                Peek::NoChildren => false,
                Peek::Exited(_) => loop {
                    match reap::reap_one(self.warn_on_reap) {
                        Ok(Reaped::Child { pid, ended, name }) => {
                            if self.command == Some(pid) {
                                self.command = None;
                            }
                            self.feed(Event::Reaped { pid, ended, name })
                        }
                        Ok(Reaped::NoneExited) => break true,
                        Ok(Reaped::NoChildren) => break false,
                        Err(e) => {
                            log::error!("waitpid: {e}");
                            return;
                        }
                    }
                },
            };
            self.feed(Event::BatchDone { children_left });
            // Only a shutdown signals the command's group after its exit; a followed daemon
            // or the orphans of --wait-all have groups of their own.
            if !matches!(
                self.machine.state(),
                State::Gone { .. } | State::Draining { .. } | State::Killing { .. }
            ) {
                self.leader = None;
            }
            if std::mem::discriminant(self.machine.state()) == before {
                return;
            }
        }
    }

    /// Hands one event to the machine and carries out its effects; the replies some effects
    /// produce are fed back in order (a queue, not recursion).
    fn feed(&mut self, event: Event) {
        let mut queue = VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            for effect in self.machine.handle(event, Instant::now()) {
                queue.extend(self.perform(effect));
            }
        }
    }

    fn perform(&mut self, effect: Effect) -> Option<Event> {
        match effect {
            Effect::Send { to: Target::Pid(pid), sig } => match self.held(pid) {
                Some(fd) => send_via(fd, sig),
                // The machine names no other pid than reaper's own (pinned) children.
                None => send(pid, sig),
            },
            Effect::Send { to: Target::Group(pgid), sig } => self.send_group(pgid, sig),
            Effect::SignalLeftovers { sig, groups, record, skip } => {
                let signalled = self.signal_leftovers(sig, &groups, record, &skip);
                return record.then_some(Event::Signalled(signalled));
            }
            Effect::ListChildren => match procfs::children(self.me) {
                Ok(pids) => return Some(Event::Children(pids.into_iter().map(procfs::id).collect())),
                Err(e) => log::debug!("listing children: {e}"),
            },
            Effect::ReadPidfile => return Some(Event::Pidfile(self.read_pidfile())),
            Effect::Spawn { index, delay } => {
                let command = self.respawn.get(index).map_or(&[][..], |c| c.as_slice());
                let result = spawn::spawn(command, &self.inherited, false, self.dir.as_deref())
                    .map(|pid| Proc { pid, pgid: pid })
                    .map_err(|e| e.message());
                return Some(Event::Spawned { index, delay, result });
            }
            Effect::Log(level, text) => log::log!(level, "{text}"),
        }
        None
    }

    /// Every process reaper is responsible for: as PID 1 the whole namespace; otherwise only
    /// its own descendants, found afresh in /proc (never a process outside its tree). Those in
    /// `skip` got `sig` already and are left out, which as PID 1 means walking the tree too
    /// instead of kill(-1). With `record`, returns who has it now, as /proc showed them.
    fn signal_leftovers(&mut self, sig: i32, groups: &[i32], record: bool, skip: &[i32]) -> Vec<Id> {
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
            send(-1, sig);
            return found;
        }
        match self.signal_descendants(sig, skip) {
            Ok(ids) => ids,
            Err(e) => {
                // Said once per shutdown: only its first leftover signal records.
                let level = if record { log::Level::Warn } else { log::Level::Debug };
                log::log!(
                    level,
                    "cannot list descendants in /proc ({e}); signalling only the commands' process groups"
                );
                for &g in groups {
                    self.send_group(g, sig);
                }
                Vec::new()
            }
        }
    }

    /// Signals each descendant found in /proc (but those in `skip`, which have it already)
    /// through a pidfd opened after the walk and confirmed after opening; returns those that
    /// were still ours.
    fn signal_descendants(&mut self, sig: i32, skip: &[i32]) -> io::Result<Vec<Id>> {
        let mut tree = procfs::descendants(self.me)?;
        let walk = tree.clone();
        tree.push(self.me);
        // BinaryHeap's heapsort: sort_unstable costs 2 KB of binary per type.
        let tree = std::collections::BinaryHeap::from(tree).into_sorted_vec();
        let mut ours = Vec::new();
        for batch in walk.chunks(PIDFD_BATCH) {
            // Opened before any of them is signalled: from here on each pidfd is the process
            // the walk saw, or (if that one exited meanwhile) a dead one that no reused pid
            // can bring back.
            let fds: Vec<_> = batch.iter().map(|&pid| (pid, Pidfd::open(pid))).collect();
            for (pid, fd) in fds {
                // Read after opening: while the pidfd's process lives, /proc/PID is that
                // process; its parent must be reaper or in the walk. A pid reused between the
                // walk and the open (an outsider, or reparented out of the tree) fails this.
                let stat = procfs::stat(pid).filter(|s| tree.binary_search(&s.ppid).is_ok());
                let (Some(stat), Ok(fd)) = (stat, fd) else {
                    log::debug!("pid {pid}: gone or no longer reaper's descendant, not signalled");
                    continue;
                };
                match fd {
                    _ if skip.contains(&pid) => {}
                    Some(fd) => send_via(&fd, sig),
                    None => send(pid, sig),
                }
                ours.push(Id { pid, start: stat.start });
            }
        }
        Ok(ours)
    }

    /// The pidfd the driver holds for `pid`, if any.
    fn held(&self, pid: i32) -> Option<&Pidfd> {
        [&self.followed, &self.leader].into_iter().flatten().find(|fd| fd.pid() == pid)
    }

    /// Signals process group `pgid`, but only while a member is known to be alive: a group id
    /// stays taken while any member exists (zombies too), and once the last one is reaped the
    /// number may become a stranger's pid and group. Known alive means one of:
    /// 1. the command, not yet reaped, leads it (an unreaped child pins its pid and group);
    /// 2. we hold its leader's pidfd: the kernel signals that very group through it (Linux
    ///    6.9, PIDFD_SIGNAL_PROCESS_GROUP), members left after the leader was reaped included;
    /// 3. a descendant seen in /proc with that group, whose pidfd, opened after the look, says
    ///    it is still alive: then kill(-pgid) follows at once (the group would have to empty,
    ///    and its number be handed out again, between two syscalls).
    ///
    /// Without /proc and without (6.9) pidfds reaper cannot tell, and sends as it always did.
    fn send_group(&mut self, pgid: i32, sig: i32) {
        if self.command == Some(pgid) {
            return send(-pgid, sig);
        }
        if let Some(fd) = self.held(pgid) {
            match fd.signal_group(sig) {
                Ok(()) => return log::debug!("sent {} to group {pgid} (pidfd)", signals::name(sig)),
                Err(Errno::ESRCH) => {
                    return log::debug!("{} to group {pgid}: no member left", signals::name(sig));
                }
                // EINVAL: a kernel before 6.9; look for a member instead.
                Err(_) => {}
            }
        }
        match self.live_member(pgid) {
            Ok(true) => send(-pgid, sig),
            Ok(false) => {
                log::debug!("{} to group {pgid}: no live member known, not sent", signals::name(sig))
            }
            Err(e) => {
                log::debug!("group {pgid}: cannot look for members ({e}); sending anyway");
                send(-pgid, sig)
            }
        }
    }

    /// Whether a descendant of reaper is in process group `pgid` and alive (rule 3 above).
    fn live_member(&self, pgid: i32) -> io::Result<bool> {
        for pid in procfs::descendants(self.me)? {
            if procfs::stat(pid).is_none_or(|s| s.pgrp != pgid) {
                continue;
            }
            match Pidfd::open(pid) {
                // No pidfds: what /proc showed is all there is to know.
                Ok(None) => return Ok(true),
                Ok(Some(fd)) => {
                    // Still in the group after the open, and not reaped: it is the one we saw.
                    let still = procfs::stat(pid).is_some_and(|s| s.pgrp == pgid);
                    if still && fd.signal(0).is_ok() {
                        return Ok(true);
                    }
                }
                Err(_) => {}
            }
        }
        Ok(false)
    }

    /// `--follow-pidfile`: the pid in the file, if it names a live descendant; held as a
    /// pidfd from here on.
    fn read_pidfile(&mut self) -> Result<Proc, (Option<i32>, String)> {
        let Some(path) = &self.follow_pidfile else {
            return Err((None, "no --follow-pidfile".into()));
        };
        let what = |why: String| format!("{}: {why}", path.display());
        let pid = read_pid(path).map_err(|why| (None, what(why)))?;
        let not_ours = || (Some(pid), what(format!("pid {pid} is not a live descendant of reaper")));
        // Opened before the walk: if the walk then finds `pid` and the pidfd's process is
        // still alive after it, the pidfd holds that descendant, not a later holder of the pid.
        let fd = Pidfd::open(pid).map_err(|_| not_ours())?;
        let ours = procfs::descendants(self.me)
            .map_err(|e| (Some(pid), what(format!("cannot list descendants: {e}"))))?;
        if !ours.contains(&pid) || fd.as_ref().is_some_and(|fd| fd.signal(0).is_err()) {
            return Err(not_ours());
        }
        self.followed = fd;
        let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid))).map_or(pid, |g| g.as_raw());
        log::info!("following pid {pid} from {}", path.display());
        Ok(Proc { pid, pgid })
    }
}

fn read_pid(path: &Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    match text.trim().parse::<i32>() {
        Ok(pid) if pid > 1 => Ok(pid),
        _ => Err(format!("no pid in '{}'", text.trim())),
    }
}

/// No timeout at all unless a deadline is pending: an idle reaper never wakes up.
fn timeout(deadline: Option<Instant>) -> PollTimeout {
    let Some(deadline) = deadline else {
        return PollTimeout::NONE;
    };
    // Round up so we never wake a millisecond early and spin.
    let ms = deadline.saturating_duration_since(Instant::now()).as_micros().div_ceil(1000);
    PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
}

/// pidfd_send_signal(2): reaches the process the pidfd holds, or nobody once it is reaped.
fn send_via(fd: &Pidfd, sig: i32) {
    let pid = fd.pid();
    match fd.signal(sig) {
        Ok(()) => log::debug!("sent {} to {pid} (pidfd)", signals::name(sig)),
        Err(Errno::ESRCH) => log::debug!("{} to {pid}: already gone", signals::name(sig)),
        // Only seccomp can take pidfd_send_signal away after pidfd_open worked.
        Err(Errno::ENOSYS) => send(pid, sig),
        Err(e) => log::warn!("sending {} to {pid}: {}", signals::name(sig), e.desc()),
    }
}

/// kill(2) with a raw signal number (nix's `Signal` cannot hold real-time signals). A target
/// that is already gone is normal while things shut down.
fn send(target: i32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(target, sig) } == 0 {
        log::debug!("sent {} to {target}", signals::name(sig));
        return;
    }
    match Errno::last() {
        Errno::ESRCH => log::debug!("{} to {target}: already gone", signals::name(sig)),
        e => log::warn!("sending {} to {target}: {}", signals::name(sig), e.desc()),
    }
}

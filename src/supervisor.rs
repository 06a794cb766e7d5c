//! The driver around the lifecycle machine (`state`): it sleeps in poll(2) on the signalfd
//! until the machine's next deadline, turns what woke it into events, and carries out the
//! machine's effects with kill(2), /proc and the pidfile. It holds no lifecycle state itself.

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::options::Options;
use crate::procfs;
use crate::reap::{self, Reaped};
use crate::sigfd::SignalFd;
use crate::sigmask::Inherited;
use crate::signals;
use crate::spawn;
use crate::state::{Config, Effect, Event, Id, Machine, Member, OnSuccess, Proc, Target};

const SIGNAL_BATCH: usize = 64;

pub struct Supervisor {
    machine: Machine,
    signals: SignalFd,
    /// For restarting `--respawn` helpers: their argv and the signal state to hand them.
    respawn: Vec<Vec<std::ffi::OsString>>,
    inherited: Inherited,
    dir: Option<std::ffi::CString>,
    me: i32,
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
        };
        Supervisor {
            machine: Machine::new(cfg, main.map(|pid| Proc { pid, pgid: pid }), others),
            signals,
            respawn: opts.respawn.clone(),
            inherited,
            dir,
            me: nix::unistd::getpid().as_raw(),
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
            let fds = &mut [PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            if let Err(e) = poll(fds, timeout(self.machine.next_deadline())) {
                if e != Errno::EINTR {
                    log::error!("poll: {e}");
                }
            }
            self.read_signals();
            self.feed(Event::Timer);
            self.reap();
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
        loop {
            let before = std::mem::discriminant(self.machine.state());
            let children_left = loop {
                match reap::reap_one(self.warn_on_reap) {
                    Ok(Reaped::Child { pid, ended, name }) => self.feed(Event::Reaped { pid, ended, name }),
                    Ok(Reaped::NoneExited) => break true,
                    Ok(Reaped::NoChildren) => break false,
                    Err(e) => {
                        log::error!("waitpid: {e}");
                        return;
                    }
                }
            };
            self.feed(Event::BatchDone { children_left });
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
            Effect::Send { to: Target::Pid(pid), sig } => send(pid, sig),
            Effect::Send { to: Target::Group(pgid), sig } => send(-pgid, sig),
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
        let ids =
            |pids: Vec<i32>| if record { pids.into_iter().map(procfs::id).collect() } else { Vec::new() };
        if self.me == 1 && skip.is_empty() {
            // kill(-1) reaches every process in the namespace, also those outside our tree
            // (`docker exec`). The list taken just before it records who got the signal.
            let found =
                if record { procfs::descendants(self.me).map(ids).unwrap_or_default() } else { Vec::new() };
            send(-1, sig);
            return found;
        }
        match procfs::descendants(self.me) {
            Ok(pids) => {
                pids.iter().filter(|p| !skip.contains(p)).for_each(|&pid| send(pid, sig));
                ids(pids)
            }
            Err(e) => {
                // Said once per shutdown: only its first leftover signal records.
                let level = if record { log::Level::Warn } else { log::Level::Debug };
                log::log!(
                    level,
                    "cannot list descendants in /proc ({e}); signalling only the commands' process groups"
                );
                groups.iter().for_each(|g| send(-g, sig));
                Vec::new()
            }
        }
    }

    /// `--follow-pidfile`: the pid in the file, if it names a live descendant.
    fn read_pidfile(&self) -> Result<Proc, (Option<i32>, String)> {
        let Some(path) = &self.follow_pidfile else {
            return Err((None, "no --follow-pidfile".into()));
        };
        let what = |why: String| format!("{}: {why}", path.display());
        let pid = read_pid(path).map_err(|why| (None, what(why)))?;
        let ours = procfs::descendants(self.me)
            .map_err(|e| (Some(pid), what(format!("cannot list descendants: {e}"))))?;
        if !ours.contains(&pid) {
            return Err((Some(pid), what(format!("pid {pid} is not a live descendant of reaper"))));
        }
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

//! The supervisor loop: one state machine (running → stopping → draining → exit) that reads
//! signals from the signalfd, forwards them, reaps every child and enforces the deadlines.
//! Foreground, daemon and pause modes all run this same loop.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::options::Options;
use crate::reap::{self, Ended, Reaped};
use crate::signals::{self, SignalFd};

/// Whom forwarded signals are meant for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Main {
    /// No main process: `--pause`, or the main process is gone.
    None,
    /// The command (or the daemon named by `--follow-pidfile`) and its process group.
    Process { pid: i32, pgid: i32 },
    /// `--wait-all`: the command exited 0; the descendants it left are the workload.
    Orphans,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// Forwarding signals, reaping.
    Running,
    /// A stop signal arrived under `--kill-after`: at `kill_at` everything is SIGKILLed.
    Stopping { kill_at: Option<Instant> },
    /// `--follow-pidfile`: the launcher exited 0; waiting for the daemon's pid to show up.
    AwaitingPidfile { until: Option<Instant> },
    /// The main process is gone; leftovers got the drain signal and are SIGKILLed at `until`
    /// (`killed` once that happened). We exit as soon as no child is left.
    Draining { until: Option<Instant>, killed: bool },
}

/// How often `--follow-pidfile` looks for the pidfile. Only while waiting for it.
const PIDFILE_POLL: Duration = Duration::from_millis(20);

pub struct Supervisor<'a> {
    opts: &'a Options,
    signals: SignalFd,
    me: i32,
    main: Main,
    /// The command's process group, kept after it exits: the drain falls back to it without /proc.
    group: Option<i32>,
    phase: Phase,
    /// The main process's exit code (128+N for signal N), before `--remap-exit`.
    status: Option<i32>,
    stop_requested: bool,
    /// The main process is gone and nothing else keeps us: drain once this reap pass ends.
    drain_due: bool,
    /// Pids that got the drain signal, sorted: processes orphaned to us later get it too.
    drained: Vec<i32>,
    no_children: bool,
    exit: Option<i32>,
    warned_no_proc: bool,
}

impl<'a> Supervisor<'a> {
    /// `main` is the started command's pid, or `None` in pause mode.
    pub fn new(opts: &'a Options, signals: SignalFd, main: Option<i32>) -> Self {
        Supervisor {
            opts,
            signals,
            me: nix::unistd::getpid().as_raw(),
            main: main.map_or(Main::None, |pid| Main::Process { pid, pgid: pid }),
            group: main,
            phase: Phase::Running,
            status: None,
            stop_requested: false,
            drain_due: false,
            drained: Vec::new(),
            no_children: main.is_none(),
            exit: None,
            warned_no_proc: false,
        }
    }

    /// Runs until the workload is gone; returns reaper's exit code.
    pub fn run(mut self) -> i32 {
        loop {
            if let Some(code) = self.exit {
                let code = if self.opts.remap_exit.contains(&(code as u8)) { 0 } else { code };
                log::info!("exiting with status {code}");
                return code;
            }
            let fds = &mut [PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            match poll(fds, self.timeout()) {
                Ok(0) | Err(Errno::EINTR) => {}
                Ok(_) => self.read_signals(),
                Err(e) => log::error!("poll: {e}"),
            }
            self.check_deadline();
        }
    }

    /// No timeout at all unless a deadline is pending: an idle reaper never wakes up.
    fn timeout(&self) -> PollTimeout {
        let deadline = match self.phase {
            Phase::Stopping { kill_at } => kill_at,
            Phase::Draining { until, killed: false } => until,
            Phase::AwaitingPidfile { until } => {
                let tick = Instant::now() + PIDFILE_POLL;
                Some(until.map_or(tick, |u| u.min(tick)))
            }
            _ => None,
        };
        let Some(deadline) = deadline else {
            return PollTimeout::NONE;
        };
        // Round up so we never wake a millisecond early and spin.
        let ms = deadline.saturating_duration_since(Instant::now()).as_micros().div_ceil(1000);
        PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
    }

    fn read_signals(&mut self) {
        loop {
            match self.signals.next_signal() {
                Ok(Some(sig)) => self.on_signal(sig),
                Ok(None) => return,
                Err(e) => {
                    log::error!("reading signals: {e}");
                    return;
                }
            }
            if self.exit.is_some() {
                return;
            }
        }
    }

    fn on_signal(&mut self, sig: i32) {
        if sig == libc::SIGCHLD {
            self.reap_all();
            return;
        }
        log::debug!("received {}", signals::name(sig));
        if self.opts.pause {
            if signals::is_stop(sig) {
                log::info!("{} in pause mode: exiting", signals::name(sig));
                self.exit = Some(0);
            }
            return;
        }
        let to = self.opts.rewrite.iter().find(|(from, _)| *from == sig).map_or(sig, |&(_, to)| to);
        if to == 0 {
            log::debug!("dropping {} (--rewrite)", signals::name(sig));
        } else {
            self.forward(to);
        }
        // The received signal decides, rewritten or not: a stop is a stop.
        if signals::is_stop(sig) {
            self.stop_requested = true;
            if let (Phase::Running, Some(after)) = (self.phase, self.opts.kill_after) {
                log::info!("stop requested: SIGKILL in {after:?} if the command still runs");
                self.phase = Phase::Stopping { kill_at: deadline(after) };
            }
        }
    }

    fn forward(&mut self, sig: i32) {
        match (self.main, self.phase) {
            (Main::Process { pid, pgid }, Phase::Running | Phase::Stopping { .. }) => {
                send(if self.opts.process_group { -pgid } else { pid }, sig);
            }
            _ => {
                self.signal_leftovers(sig);
            }
        }
    }

    /// Every process reaper is responsible for: as PID 1 the whole namespace; otherwise only
    /// its own descendants, found afresh in /proc (never a process outside its tree).
    /// Returns the pids signalled one by one (none as PID 1 or without /proc).
    fn signal_leftovers(&mut self, sig: i32) -> Vec<i32> {
        if self.me == 1 {
            send(-1, sig);
            return Vec::new();
        }
        match reap::descendants(self.me) {
            Ok(pids) => {
                pids.iter().for_each(|&p| send(p, sig));
                return pids;
            }
            Err(e) => {
                if !self.warned_no_proc {
                    self.warned_no_proc = true;
                    log::warn!(
                        "cannot list descendants in /proc ({e}); signalling only the command's process group"
                    );
                }
                if let Some(g) = self.group {
                    send(-g, sig);
                }
            }
        }
        Vec::new()
    }

    /// A process orphaned to reaper during the drain (its parent got the drain signal and
    /// exited) may have been forked after our scan: it gets the drain signal now, once.
    fn drain_orphans(&mut self) {
        let Ok(children) = reap::children(self.me) else { return };
        for pid in children {
            if let Err(at) = self.drained.binary_search(&pid) {
                log::debug!("pid {pid} was orphaned during the drain");
                send(pid, self.opts.drain_signal);
                self.drained.insert(at, pid);
            }
        }
    }

    /// Reaps until no exited child is left: several SIGCHLDs merge into one, so the main
    /// process's exit may hide behind any of them.
    fn reap_all(&mut self) {
        loop {
            match reap::reap_one(self.opts.warn_on_reap) {
                Ok(Reaped::Child { pid, ended, name }) => {
                    if let Ok(at) = self.drained.binary_search(&pid) {
                        self.drained.remove(at); // its pid may be reused
                    }
                    match self.main {
                        Main::Process { pid: p, .. } if p == pid => self.main_exited(ended),
                        _ if self.opts.warn_on_reap => {
                            log::warn!("reaped pid {pid} ({}): {ended}", name.as_deref().unwrap_or("?"))
                        }
                        _ => log::debug!("reaped pid {pid}: {ended}"),
                    }
                }
                Ok(Reaped::NoneExited) => {
                    self.no_children = false;
                    break;
                }
                Ok(Reaped::NoChildren) => {
                    self.no_children = true;
                    break;
                }
                Err(e) => {
                    log::error!("waitpid: {e}");
                    break;
                }
            }
        }
        if std::mem::take(&mut self.drain_due) {
            if self.no_children {
                // Nothing left to drain: skip the /proc walk and exit now.
                self.exit = Some(self.status.unwrap_or(0));
                return;
            }
            self.start_drain();
        }
        match self.phase {
            Phase::Draining { .. } if self.no_children => self.exit = Some(self.status.unwrap_or(0)),
            Phase::Draining { killed: false, .. } => self.drain_orphans(),
            // Something forked between our scan and the SIGKILL: keep killing until none is left.
            Phase::Draining { killed: true, .. } => {
                self.signal_leftovers(libc::SIGKILL);
            }
            Phase::Running | Phase::Stopping { .. } if self.main == Main::Orphans && self.no_children => {
                self.exit = Some(self.status.unwrap_or(0));
            }
            Phase::AwaitingPidfile { .. } if self.no_children => self.follow_pidfile(true),
            _ => {}
        }
    }

    fn main_exited(&mut self, ended: Ended) {
        log::info!("command {ended}");
        self.main = Main::None;
        if let Phase::Draining { .. } = self.phase {
            return; // --kill-after already fixed the status
        }
        let code = ended.code();
        self.status = Some(code);
        if code == 0 && !self.stop_requested {
            if self.opts.wait_all {
                log::info!("--wait-all: staying until the command's descendants are gone");
                self.main = Main::Orphans;
                return;
            }
            if self.opts.follow_pidfile.is_some() {
                self.phase = Phase::AwaitingPidfile { until: deadline(self.opts.drain) };
                self.follow_pidfile(false);
                return;
            }
        }
        self.drain_due = true;
    }

    fn start_drain(&mut self) {
        let drain = self.opts.drain;
        if drain.is_zero() {
            self.signal_leftovers(libc::SIGKILL);
            self.phase = Phase::Draining { until: None, killed: true };
        } else {
            log::debug!(
                "draining leftovers: {} now, SIGKILL in {drain:?}",
                signals::name(self.opts.drain_signal)
            );
            self.drained = self.signal_leftovers(self.opts.drain_signal);
            if self.me == 1 {
                // kill(-1) reached everyone; remember our children as signalled.
                self.drained = reap::children(self.me).unwrap_or_default();
            }
            self.drained.sort_unstable();
            self.phase = Phase::Draining { until: deadline(drain), killed: false };
        }
    }

    fn check_deadline(&mut self) {
        let due = |t: Option<Instant>| t.is_some_and(|t| Instant::now() >= t);
        match self.phase {
            Phase::Stopping { kill_at } if due(kill_at) => {
                log::warn!(
                    "command still running {:?} after the stop signal: SIGKILL",
                    self.opts.kill_after.unwrap_or_default()
                );
                if let Some(g) = self.group {
                    send(-g, libc::SIGKILL);
                }
                self.signal_leftovers(libc::SIGKILL);
                self.status = Some(128 + libc::SIGKILL);
                self.phase = Phase::Draining { until: None, killed: true };
                self.reap_all();
            }
            Phase::Draining { until, killed: false } if due(until) => {
                log::warn!("leftovers still running after --drain {:?}: SIGKILL", self.opts.drain);
                self.phase = Phase::Draining { until: None, killed: true };
                self.signal_leftovers(libc::SIGKILL);
                self.reap_all();
            }
            Phase::AwaitingPidfile { until } => self.follow_pidfile(due(until)),
            _ => {}
        }
    }

    /// `--follow-pidfile`: adopt the pid in the file once it names a live descendant; when
    /// `give_up`, a missing or bogus pidfile is an error (status 1) and we drain.
    fn follow_pidfile(&mut self, give_up: bool) {
        let Some(path) = &self.opts.follow_pidfile else {
            return;
        };
        match read_pidfile(path).and_then(|pid| self.check_descendant(pid)) {
            Ok(pid) => {
                let pgid =
                    nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid))).map_or(pid, |g| g.as_raw());
                log::info!("following pid {pid} from {}", path.display());
                self.main = Main::Process { pid, pgid };
                self.group = Some(pgid);
                self.phase = Phase::Running;
                self.reap_all(); // it may already be a zombie
            }
            Err(why) if give_up => {
                log::error!("--follow-pidfile {}: {why}", path.display());
                self.status = Some(1);
                self.drain_due = true;
                self.reap_all();
            }
            Err(_) => {}
        }
    }

    fn check_descendant(&self, pid: i32) -> Result<i32, String> {
        let ours = reap::descendants(self.me).map_err(|e| format!("cannot list descendants: {e}"))?;
        if ours.contains(&pid) {
            Ok(pid)
        } else {
            Err(format!("pid {pid} is not a live descendant of reaper"))
        }
    }
}

fn read_pidfile(path: &Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    match text.trim().parse::<i32>() {
        Ok(pid) if pid > 1 => Ok(pid),
        _ => Err(format!("no pid in '{}'", text.trim())),
    }
}

/// `now + d`, or `None` (never) if that overflows the clock.
fn deadline(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
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

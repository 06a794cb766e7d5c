//! The driver around the lifecycle machine (`state`): it sleeps in poll(2) on the signalfd
//! until the machine's next deadline, turns what woke it into events, and carries out the
//! machine's effects: signals (through `send`), reaps, /proc and the pidfile. It holds no
//! lifecycle state itself, only resources: the processes `send` holds on to.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::PollFlags;

use crate::command::{Command, Role};
use crate::options::Options;
use crate::pidfd::{Open, Pidfd};
use crate::privs::Privs;
use crate::procfs;
use crate::readiness::{Readiness, Source};
use crate::reap::{self, Peek, Reaped};
use crate::send::{Held, Sender};
use crate::sigfd::{SignalFd, Waited};
use crate::sigmask::Inherited;
use crate::state::{Config, Effect, Event, Machine, OnSuccess, Proc};

const SIGNAL_BATCH: usize = 64;
/// How long reaper waits for signals alone before it tries a failed poll again.
const POLL_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

pub struct Supervisor {
    /// Never dropped: the supervisor lives until reaper exits (`run` returns the exit code),
    /// and freeing the machine there emptied a group of musl's allocator, whose munmap(2)
    /// (a TLB flush) sat between the command's exit and reaper's; exit_group frees it anyway.
    machine: std::mem::ManuallyDrop<Machine>,
    signals: SignalFd,
    /// Every command, by index: for starting the deferred ones (`--after`) and restarting
    /// `--respawn` helpers; with the signal state to hand them.
    commands: Vec<Command>,
    inherited: Inherited,
    dir: Option<std::ffi::CString>,
    /// The user and privileges restarted helpers get, resolved once before the first start.
    privs: Privs,
    /// Signals, and the processes held for them. Nothing is held while reaper just waits for
    /// its command: no descriptor while idle.
    send: Sender,
    follow_pidfile: Option<PathBuf>,
    /// How messages name the pidfile's setting (`--follow-pidfile ` or `REAPER_FOLLOW_PIDFILE=`).
    follow_pidfile_source: &'static str,
    /// What the last successful read of the followed pidfile found.
    pidfile_seen: Option<String>,
    warn_on_reap: bool,
    /// Tells OOM kills from other SIGKILLs; `None` without a readable memory cgroup.
    oom: Option<crate::cgroup::Oom>,
    /// Why reaper ends, for the termination log.
    ending: crate::termlog::Ending,
    /// reaper's sd_notify socket, the readiness pipes, the upward NOTIFY_SOCKET.
    readiness: Readiness,
    /// `--prefix-output`: the commands' pipes and the lines waiting for reaper's stdio.
    logs: Option<crate::logs::Logs>,
    /// `feed`'s event queue (the replies of effects, fed back in order) and effects buffer,
    /// empty between calls: kept for their capacity.
    replies: VecDeque<Event>,
    effects: Vec<Effect>,
    /// Signals handled since the last reap batch (see `run`).
    signals_since_reap: usize,
    /// Why the last poll failed, while it keeps failing (said once).
    poll_failed: Option<Errno>,
    /// The last reap batch failed (waitid/waitpid refused): the exit it was run for sends no
    /// second SIGCHLD, so the batch is tried again at the next wake-up, one second away at most.
    reap_failed: bool,
    /// The poll set and the readiness sources in it, rebuilt each wake-up in place.
    pollfds: Vec<libc::pollfd>,
    sources: Vec<Source>,
}

impl Supervisor {
    /// `started`: the pids of the commands started already, by index into `opts.commands`;
    /// `dir` the directory they run in; `readiness` the readiness I/O they were started with
    /// (opened before the first one started: a command may send READY=1 at once).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        opts: &Options,
        signals: SignalFd,
        inherited: Inherited,
        dir: Option<std::ffi::CString>,
        privs: Privs,
        readiness: Readiness,
        started: Vec<(usize, i32)>,
    ) -> Self {
        let commands = opts.commands.clone();
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
            commands: commands.iter().map(|c| c.settings.clone()).collect(),
            stop_delay: opts.stop_delay,
            remap_exit: opts.remap_exit.clone(),
            debug_logs: log::log_enabled!(target: "reaper::state", log::Level::Debug),
        };
        // A main command that waits for its prerequisites is named already (pid 0 until it
        // starts): the termination log must not read as pause mode.
        let main_name =
            commands.iter().find(|c| c.settings.role == Role::Main).map(|c| (0, c.settings.name.clone()));
        let mut ending = crate::termlog::Ending::new(main_name, Vec::new());
        let is_main = |i: usize| commands.get(i).is_some_and(|c| c.settings.role == Role::Main);
        for (command, &(_, pid)) in started.iter().filter_map(|s| Some((commands.get(s.0)?, s))) {
            ending.started(pid, &command.settings);
        }
        let main = started.iter().find(|&&(i, _)| is_main(i)).map(|&(_, pid)| pid);
        let started = started.into_iter().map(|(i, pid)| (i, Proc { pid, pgid: pid })).collect();
        Supervisor {
            machine: std::mem::ManuallyDrop::new(Machine::new(cfg, started)),
            signals,
            commands,
            inherited,
            dir,
            privs,
            send: Sender::new(main),
            follow_pidfile: opts.follow_pidfile.clone(),
            follow_pidfile_source: opts.follow_pidfile_source,
            pidfile_seen: None,
            warn_on_reap: opts.warn_on_reap,
            oom: crate::cgroup::Oom::start(),
            ending,
            readiness,
            logs: None,
            replies: VecDeque::new(),
            // The capacity its first push would take, taken now while the command starts: the
            // first effects often come with the command's exit, and then musl's allocator
            // mapped a page for them on the way to reaper's own exit.
            effects: Vec::with_capacity(4),
            signals_since_reap: 0,
            poll_failed: None,
            reap_failed: false,
            pollfds: Vec::new(),
            sources: Vec::new(),
        }
    }

    /// `--prefix-output`: the pipes of the commands already started. (In place: the
    /// supervisor is 4 KB, each move of it a copy.)
    pub fn set_logs(&mut self, logs: Option<crate::logs::Logs>) {
        self.logs = logs;
    }

    /// Runs until the workload is gone; returns reaper's exit code. (By reference: the caller
    /// need not drop it, see `lib.rs`.)
    pub fn run(&mut self) -> i32 {
        // Before the first sleep: the commands that need only those started already start,
        // and the readiness clocks begin.
        self.feed(Event::Timer);
        // One batch before the first sleep: the loop reaps only on news (a SIGCHLD among
        // them), and a child that exited before reaper's exec (an entrypoint that started
        // something, then exec'd reaper) sent its SIGCHLD to the old image, where SIG_DFL
        // discarded it. Its zombie would wait for some other child's exit; under --pause,
        // for ever. One waitid(WNOWAIT) when there is none.
        self.reap();
        loop {
            if let Some(code) = self.machine.exit_code() {
                return self.exit(code);
            }
            if let Some(logs) = &mut self.logs {
                logs.before_sleep();
            }
            let mut deadline =
                match (self.machine.next_deadline(), self.logs.as_ref().and_then(|l| l.deadline())) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            if self.reap_failed {
                let retry = Instant::now() + POLL_RETRY;
                deadline = Some(deadline.map_or(retry, |at| at.min(retry)));
            }
            // Nothing to watch but the signals (the common case): one rt_sigtimedwait, and no
            // poll set to build or look through (the round trip of a forwarded signal is then
            // the kill and this wait).
            // (What poll answered, when it was poll.)
            let polled = match self.signals_alone() && self.wait_for_signals(deadline) {
                true => None,
                false => Some(self.sleep_in_poll(deadline)),
            };
            let followed_exited = self.send.followed.as_ref().is_some_and(Held::exited);
            let transitions = self.machine.transitions();
            // Signals first; then readiness, before the deadlines (a READY=1 that came in time
            // beats its timeout) and before the reap (a sender that exited is still in /proc
            // as a zombie, for the walk to its command).
            let children_news = self.read_signals();
            if let Some((readable, _)) = &polled {
                self.read_readiness(readable);
            }
            // Only a due deadline makes a timer event: the machine settles after every event,
            // so a Timer with nothing due would change nothing (one deadline falling due in
            // between goes on the next wake-up, which the wait's timeout brings at once).
            let due = self.machine.next_deadline().is_some_and(|at| Instant::now() >= at);
            if due {
                self.feed(Event::Timer);
            }
            // The reap batch runs when something may have exited or may await its outcome:
            // a SIGCHLD (every exit of a child, an adopted orphan's too, sends one; several
            // merge into one, and the batch reaps them all); a batch of signals cut short or
            // a run of signals without a reap (a storm of thread-directed signals, dequeued
            // before the process-wide SIGCHLD, must not keep it waiting); the followed daemon's
            // pidfd (readable before its SIGCHLD is queued, or with none at all); a deadline or
            // a state change (a drain started, a pidfile given up: they await the batch's
            // outcome). A forwarded signal and nothing else costs no waitid.
            let reap = children_news
                || self.reap_failed
                || followed_exited
                || due
                || self.machine.transitions() != transitions
                || self.signals_since_reap >= SIGNAL_BATCH;
            if reap {
                self.signals_since_reap = 0;
                self.reap();
            }
            // Reaped by us in that batch, it has its status already; otherwise it is gone
            // without one.
            if let Some(pid) = followed_exited.then(|| self.send.followed.take()).flatten().map(|h| h.pid()) {
                self.feed(Event::FollowedGone { pid });
                self.reap();
            }
            if let Some((_, logs_ready)) = &polled {
                self.logs_pump(logs_ready);
            }
        }
    }

    /// Whether the signalfd is all there is to watch: no followed daemon's pidfd, no readiness
    /// source, no log pipe. Asked without building the poll set (see `sleep_in_poll`).
    fn signals_alone(&self) -> bool {
        self.logs.is_none()
            && self.send.followed.as_ref().and_then(Held::pollable).is_none()
            && self.readiness.polls_nothing()
    }

    /// Sleeps in rt_sigtimedwait until a signal or `deadline`; false if it cannot be used here
    /// (refused, or signals read already wait in the buffer): then poll is the way.
    #[inline(always)] // a call to make another: the rt_sigtimedwait path's own
    fn wait_for_signals(&mut self, deadline: Option<Instant>) -> bool {
        let timeout = deadline.map(|at| at.saturating_duration_since(Instant::now()));
        self.signals.wait(timeout) != Waited::Unavailable
    }

    /// Sleeps in poll(2) on the signalfd and every other descriptor watched, until one has news
    /// or `deadline` (in rt_sigtimedwait when the signalfd turns out to be the only one);
    /// returns the readiness sources that are readable, and the log descriptors poll answered
    /// for.
    #[inline(never)] // out of the loop's own code, which the rt_sigtimedwait path runs through
    fn sleep_in_poll(&mut self, deadline: Option<Instant>) -> (Vec<Source>, Vec<(RawFd, PollFlags)>) {
        // The poll set is built anew each wake-up in a vector kept for its capacity: as raw
        // `pollfd`s (a `PollFd` borrows its descriptor, so a kept vector of them could not
        // outlive this call's borrows). Every descriptor stays open until poll returns:
        // nothing runs in between.
        let mut fds = std::mem::take(&mut self.pollfds);
        let mut sources = std::mem::take(&mut self.sources);
        fds.clear();
        sources.clear();
        let watch = |fd: RawFd, events: PollFlags| libc::pollfd { fd, events: events.bits(), revents: 0 };
        fds.push(watch(self.signals.as_fd().as_raw_fd(), PollFlags::POLLIN));
        // The followed daemon's pidfd turns readable when it exits, also when it is not
        // our child and its own parent reaps it (no SIGCHLD reaches us then).
        let followed = self.send.followed.as_ref();
        fds.extend(followed.and_then(Held::pollable).map(|fd| watch(fd.as_raw_fd(), PollFlags::POLLIN)));
        // Readiness: reaper's socket and the pipes not yet done (each leaves the set once
        // its command is ready or closed it, so none can wake an idle reaper).
        let first = fds.len();
        for (source, fd) in self.readiness.poll_fds() {
            sources.push(source);
            fds.push(watch(fd.as_raw_fd(), PollFlags::POLLIN));
        }
        // Log pipes and stdio last: what they say is looked at after the signals and reaps.
        let logs_from = fds.len();
        if let Some(logs) = &self.logs {
            fds.extend(logs.interest().iter().map(|f| watch(f.as_fd().as_raw_fd(), f.events())));
        }
        // The log pipes may have nothing to say for now: then the signals are all there is.
        let waited = fds.len() == 1 && self.wait_for_signals(deadline);
        if !waited {
            // Signals read already but not handled (a batch cut short) are not news for poll.
            let ms = if self.signals.buffered() { 0 } else { timeout(deadline) };
            // SAFETY: `fds` is `fds.len()` initialized pollfd structs, valid for the call.
            let polled = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
            match polled {
                0.. => self.poll_failed = None,
                _ if Errno::last() == Errno::EINTR => {}
                _ => self.poll_failing(Errno::last(), deadline),
            }
        }
        let readable: Vec<Source> = (sources.iter().zip(&fds[first..logs_from]))
            .filter(|(_, fd)| fd.revents != 0)
            .map(|(s, _)| *s)
            .collect();
        let logs_ready: Vec<(RawFd, PollFlags)> = (fds[logs_from..].iter())
            .filter(|f| f.revents != 0)
            .map(|f| (f.fd, PollFlags::from_bits_truncate(f.revents)))
            .collect();
        self.pollfds = fds;
        self.sources = sources;
        (readable, logs_ready)
    }

    /// The workload is gone: the last log lines, the termination log; returns `code`.
    #[cold]
    fn exit(&mut self, code: i32) -> i32 {
        self.logs_finish();
        log::info!("exiting with status {code}");
        if self.machine.kill_after_fired() {
            self.ending.kill_after();
        }
        if let Some(why) = self.machine.failure() {
            self.ending.failed(why);
        }
        let ending = &self.ending;
        crate::termlog::write(|| ending.line(code));
        code
    }

    /// poll(2) failed (EINVAL once someone lowers reaper's open-file limit below the size of its
    /// poll set, ENOMEM): retrying at once would spin. Signals alone are waited for, up to a
    /// second (or the next deadline), then poll is tried again; said once per cause. Signals,
    /// reaps and deadlines go on; the other descriptors wait for poll to work again.
    #[cold]
    fn poll_failing(&mut self, e: Errno, deadline: Option<Instant>) {
        if self.poll_failed != Some(e) {
            log::error!(
                "poll: {}; waiting for signals alone, and trying again every second",
                crate::error::os(e)
            );
            self.poll_failed = Some(e);
        }
        if self.signals.buffered() {
            return; // handled right after this, without a wait
        }
        let mut wait = POLL_RETRY;
        if let Some(at) = deadline {
            wait = wait.min(at.saturating_duration_since(Instant::now()));
        }
        if self.signals.wait(Some(wait)) == Waited::Unavailable {
            // Neither wait works: a short sleep keeps it from spinning (signals stay queued).
            std::thread::sleep(wait.min(std::time::Duration::from_millis(100)));
        }
    }

    /// `--prefix-output`, after the signals and the reaps of a wake-up: the log pipes' share
    /// (bounded reads, writes only where poll said they fit).
    fn logs_pump(&mut self, ready: &[(RawFd, PollFlags)]) {
        if let Some(logs) = &mut self.logs {
            logs.pump(ready, Instant::now());
        }
    }

    /// `--prefix-output`: command `pid` was reaped; what it wrote, its unfinished last line
    /// too, goes out before the machine logs its exit.
    fn logs_reaped(&mut self, pid: i32) {
        if let Some(logs) = &mut self.logs {
            logs.reaped(pid);
        }
    }

    /// `--prefix-output`: reaper exits; the last lines go out (within a grace) before its own.
    fn logs_finish(&mut self) {
        if let Some(logs) = &mut self.logs {
            logs.finish();
        }
    }

    /// At most `SIGNAL_BATCH` per wake-up: under a signal storm the signalfd never empties,
    /// and the reap and the deadlines must still get their turn. Returns whether a SIGCHLD was
    /// among them, or the batch was cut short or failed (then one may be waiting still).
    fn read_signals(&mut self) -> bool {
        let mut sigchld = false;
        for _ in 0..SIGNAL_BATCH {
            match self.signals.next_signal() {
                // Children are reaped after the batch, once for all of them.
                Ok(Some(libc::SIGCHLD)) => sigchld = true,
                Ok(Some(sig)) => {
                    self.signals_since_reap += 1;
                    self.ending.signal(sig);
                    self.feed(Event::Signal(sig))
                }
                Ok(None) => return sigchld,
                Err(e) => {
                    log::error!("reading signals: {}", crate::error::os(e));
                    return true;
                }
            }
        }
        true
    }

    /// Reads what woke us on the readiness sources; each command that became ready is an
    /// event for the machine.
    fn read_readiness(&mut self, readable: &[Source]) {
        if readable.is_empty() {
            return;
        }
        let mut ready = Vec::new();
        for &source in readable {
            self.readiness.read(source, &mut ready);
        }
        for index in ready {
            self.readiness_ready(index);
        }
    }

    /// Command `index` reported that it is ready.
    fn readiness_ready(&mut self, index: usize) {
        // The machine says "is ready" once; a restarted helper says it again, which is news
        // only for debugging.
        log::debug!("{} said it is ready", self.readiness.name(index));
        self.feed(Event::Ready { index });
    }

    /// `Effect::NotifyUp(msg)`: `READY=1` or `STOPPING=1` to the socket reaper was given
    /// (nothing without one).
    fn notify_up(&mut self, msg: &'static str) {
        self.readiness.notify_up(msg);
    }

    /// Reaps every exited child (SIGCHLDs merge, so one may stand for many), then says whether
    /// any is left. Repeated while that changes the state: a state entered during the batch
    /// (the drain starting, a pidfile given up) must see the batch's outcome too.
    #[inline(never)] // out of the loop's own code: a forwarded signal does not reap
    fn reap(&mut self) {
        // One waitid(WNOWAIT) first: after a wake-up for a forwarded signal, nothing has
        // exited and that is the whole batch (no waitpid).
        // Said once while it keeps failing (retried every second).
        let failing = std::mem::take(&mut self.reap_failed);
        let first = match reap::peek() {
            Ok(first) => first,
            Err(e) => {
                if !failing {
                    log::error!("waitid: {}; trying again every second", crate::error::os(e));
                }
                self.reap_failed = true;
                return;
            }
        };
        // The command's pidfd, taken while it is a zombie: once reaped, its group id would be
        // free for reuse as soon as the last member is gone, and only this pidfd can tell.
        if let (Some(cmd), Peek::Exited { pid, .. }) = (self.send.command, first) {
            if pid == cmd || reap::has_exited(cmd) {
                self.send.leader = match Pidfd::open(cmd) {
                    Open::Fd(fd) => Some(fd),
                    _ => None,
                };
            }
        }
        // The first reap_one needs no look of its own: `first` is that look.
        let mut peeked = Some(first);
        loop {
            let before = self.machine.transitions();
            let children_left = match first {
                Peek::NoneExited => true,
                Peek::NoChildren => false,
                Peek::Exited { .. } => loop {
                    let names = match (self.warn_on_reap, &self.oom) {
                        (true, _) => reap::Names::All,
                        (false, Some(oom)) if oom.wants_names() => reap::Names::Killed,
                        (false, _) => reap::Names::None,
                    };
                    match reap::reap_one(names, peeked.take()) {
                        Ok(Reaped::Child { pid, ended, name }) => {
                            if let Some(oom) = &mut self.oom {
                                oom.reaped(pid, ended, name.as_deref());
                            }
                            self.ending.reaped(pid, ended);
                            // What it said just before its exit (a one-shot that said it is
                            // ready) counts, after its exit (no start beside a shutdown).
                            let mut ready = Vec::new();
                            self.readiness.reaped(pid, &mut ready);
                            self.logs_reaped(pid);
                            if self.send.command == Some(pid) {
                                self.send.command = None;
                            }
                            self.feed(Event::Reaped { pid, ended, name });
                            for index in ready {
                                self.readiness_ready(index);
                            }
                        }
                        Ok(Reaped::NoneExited) => break true,
                        Ok(Reaped::NoChildren) => break false,
                        Err(e) => {
                            if !failing {
                                log::error!("waitpid: {}; trying again every second", crate::error::os(e));
                            }
                            self.reap_failed = true;
                            return;
                        }
                    }
                },
            };
            if let Some(blame) = self.oom.as_mut().and_then(crate::cgroup::Oom::batch_done) {
                self.ending.oom(&blame);
            }
            self.feed(Event::BatchDone { children_left });
            // Only a shutdown signals the command's group after its exit; a followed daemon
            // or the orphans of --wait-all have groups of their own.
            if !self.machine.workload_ended() {
                self.send.leader = None;
            }
            // Once reaper is exiting, another batch could change nothing (the exit is final)
            // and only put a waitid(2) before it.
            if self.machine.transitions() == before || self.machine.exit_code().is_some() {
                return;
            }
        }
    }

    /// Hands one event to the machine and carries out its effects; the replies some effects
    /// produce are fed back in order (a queue, not recursion).
    /// The queue and the effects buffer are kept across calls (taken out while in use), so a
    /// wake-up allocates nothing for them once they have grown to what the workload needs.
    fn feed(&mut self, event: Event) {
        let mut effects = std::mem::take(&mut self.effects);
        // The queue is empty here: the event goes to the machine without passing through it.
        let mut event = event;
        loop {
            self.machine.handle_into(event, Instant::now, &mut effects);
            for effect in effects.drain(..) {
                self.perform(effect);
            }
            match self.replies.pop_front() {
                Some(reply) => event = reply,
                None => break,
            }
        }
        // Kept for its capacity (feed is never re-entered: perform only queues replies).
        self.effects = effects;
    }

    /// Carries out one effect; its replies go to `self.replies`.
    #[inline(never)] // out of feed's own code: most effects are rare, a signal's is one call
    fn perform(&mut self, effect: Effect) {
        match effect {
            Effect::Send { to, sig } => self.send.send(to, sig),
            Effect::SignalLeftovers { sig, groups, record, skip } => {
                let signalled = self.send.leftovers(sig, &groups, record, &skip);
                self.replies.extend(record.then_some(Event::Signalled(signalled)));
            }
            Effect::ListChildren => match procfs::children(std::process::id() as i32) {
                Ok(pids) => {
                    self.replies.push_back(Event::Children(pids.into_iter().map(procfs::id).collect()))
                }
                Err(e) => log::debug!("listing children: {}", crate::error::os(e)),
            },
            Effect::ReadPidfile => {
                let found = self.read_pidfile();
                self.replies.push_back(Event::Pidfile(found));
                // Without a pidfd, nothing announces its exit if its own parent reaps it.
                if self.send.followed.as_ref().is_some_and(|h| h.pollable().is_none()) {
                    self.replies.push_back(Event::Unwatched);
                }
            }
            Effect::Start { index, delay } => {
                let result = self.start(index).map(|pid| Proc { pid, pgid: pid });
                self.replies.push_back(Event::Started { index, delay, result });
            }
            Effect::NotifyUp(msg) => self.notify_up(msg),
            Effect::Log(level, text) => log::log!(level, "{text}"),
        }
    }

    /// Starts command `index` (a deferred one, or a helper again): its pid, or the exit code
    /// and message that say why it could not start.
    fn start(&mut self, index: usize) -> Result<i32, (i32, String)> {
        let Some(command) = self.commands.get(index) else {
            return Err((1, format!("no command {index}")));
        };
        // The main command keeps what is the main's (the terminal, socket activation), even
        // started late, after its prerequisites.
        let (inherited, dir) = (&self.inherited, self.dir.as_deref());
        let pid =
            start_one(&mut self.readiness, self.logs.as_mut(), index, command, inherited, dir, &self.privs)
                .map_err(|e| (e.exit_code(), e.message()))?;
        if command.settings.role == Role::Main {
            self.send.command = Some(pid);
        }
        self.ending.started(pid, &command.settings);
        Ok(pid)
    }

    /// `--follow-pidfile`: the pid in the file, if it names a live descendant; held as a
    /// pidfd from here on.
    fn read_pidfile(&mut self) -> Result<Proc, (Option<i32>, String)> {
        let Some(path) = &self.follow_pidfile else {
            return Err((None, "no --follow-pidfile".into()));
        };
        let source = self.follow_pidfile_source;
        let what = |why: String| format!("{source}{}: {why}", path.display());
        // Each look's finding is kept: if the file then vanishes before reaper gives up, the
        // error says what it held (a daemon that wrote it and failed, a cleanup, …).
        let pid = match read_pid(path) {
            Ok(found) => {
                self.pidfile_seen = Some(match &found {
                    Ok(pid) => format!("pid {pid}"),
                    Err(why) => why.clone(),
                });
                found
            }
            Err(e) => Err(match &self.pidfile_seen {
                Some(seen) => format!("{e} (it was there before, with {seen})"),
                None => e,
            }),
        };
        let pid = pid.map_err(|why| (None, what(why)))?;
        let not_ours = || (Some(pid), what(format!("pid {pid} is not a live descendant of reaper")));
        // Taken before the walk: if the walk then finds `pid` and the held process is still
        // alive after it, the hold is that descendant, not a later holder of the pid.
        let held = Held::take(pid).ok_or_else(not_ours)?;
        let me = std::process::id() as i32;
        let ours = procfs::descendants(me)
            .map_err(|e| (Some(pid), what(format!("cannot list descendants: {}", crate::error::os(e)))))?;
        if !ours.contains(&pid) || held.exited() {
            return Err(not_ours());
        }
        self.send.followed = Some(held);
        let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid))).map_or(pid, |g| g.as_raw());
        log::info!("following pid {pid} from {}", path.display());
        Ok(Proc { pid, pgid })
    }
}

/// The first 4 KB of the pidfile at most: someone else's file, read on every look, opened
/// by the rules of `safe_open` (never blocking: a FIFO in its place would stop the whole loop
/// in open(2); a regular file only; no link another user planted).
fn read_pid(path: &Path) -> Result<Result<i32, String>, String> {
    let file = crate::safe_open::open(path, crate::safe_open::Purpose::Followed)?;
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, 4096), &mut text).map_err(crate::error::os)?;
    Ok(crate::pidfile::parse_pid(&String::from_utf8_lossy(&text)))
}

/// Starts command `index` (the main one keeps what is the main's: the terminal, socket
/// activation) with its readiness descriptor and `NOTIFY_SOCKET` (`readiness`) and, with
/// `--prefix-output`, output pipes whose read ends `logs` takes.
pub fn start_one(
    readiness: &mut Readiness,
    logs: Option<&mut crate::logs::Logs>,
    index: usize,
    command: &Command,
    inherited: &Inherited,
    dir: Option<&std::ffi::CStr>,
    privs: &Privs,
) -> Result<i32, crate::error::Error> {
    let main = command.settings.role == Role::Main;
    let (pid, output) = readiness.spawn(index, &command.argv, inherited, main, dir, privs, logs.is_some())?;
    if let (Some(logs), Some(output)) = (logs, output) {
        logs.add(pid, &command.settings.name, output);
    }
    Ok(pid)
}

/// poll(2)'s timeout in milliseconds: none at all (-1) unless a deadline is pending, so an idle
/// reaper never wakes up.
fn timeout(deadline: Option<Instant>) -> i32 {
    let Some(deadline) = deadline else {
        return -1;
    };
    // Round up so we never wake a millisecond early and spin.
    let ms = deadline.saturating_duration_since(Instant::now()).as_micros().div_ceil(1000);
    ms.min(i32::MAX as u128) as i32
}

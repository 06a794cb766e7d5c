//! reaper's lifecycle as one pure state machine: events in, effects out, no system calls.
//! The driver (`supervisor`) turns signals, reaps and the clock into [`Event`]s and carries
//! out the [`Effect`]s; every mode (foreground, daemon, pause) runs this same machine.
//!
//! ```text
//!   Pausing ──stop signal──────────────────────────────────────────────────────► Exit(0)
//!           ──TERM with --stop-delay──► Pausing (PauseExit armed) ──deadline, or another stop──► Exit(0)
//!
//!   Running{main, stop} ──main exits 0, no stop, --wait-all──► Orphans{stop}
//!      ▲   │            ──main exits 0, no stop, --follow-pidfile──► AwaitingPidfile{stop}
//!      │   │            ──main exits otherwise, or an --also command exits──► Gone{status}
//!      │   └─ no child left (a followed daemon reaped by its own parent) ─► Exit(1)
//!      └──────────── pidfile names a live descendant ◄───────────────────────────┘
//!   AwaitingPidfile ──gave up (--drain deadline) or followed pid already reaped──► Draining
//!   Orphans ──no child left──► Exit(0)
//!   Gone ──end of the reap batch: no child left──► Exit(status)
//!        ──children left──► Draining (drain signal to every leftover, once)
//!                        ──(--drain 0)──► Killing
//!   Draining ──no child left──► Exit(status)
//!            ──--drain or --kill-after deadline──► Killing
//!   Running / Orphans / AwaitingPidfile ──--kill-after deadline──► Killing (SIGKILL all)
//!   Killing ──no child left──► Exit(status)  (the main's real status if it is reaped now)
//!           ──KILL_WAIT after the SIGKILL, children still there──► Exit(status)
//! ```
//!
//! Every deadline lives in one table ([`Deadlines`]) keyed by what it is for ([`Deadline`]);
//! each state keeps the ones it owns (`owns`) and the others are disarmed as it is entered.
//! A stop signal (TERM, INT, QUIT) moves the stop on (`Stop`: not asked, held, dropped,
//! sent); the first one forwarded or dropped arms `--kill-after` ([`Deadline::KillAfter`]),
//! which stays armed through the later states until it fires or the kill begins. The shutdown
//! begins (no helper restarted, an --also exit no longer ends the workload) with the first
//! stop signal that goes out to the commands: one that `-r` drops arms `--kill-after` only.
//! Once a stop came from outside (held by `--stop-delay` too, not dropped), the main
//! command's status is reaper's, whatever exits first (`main` in the states that follow).
//!
//! Commands are named by their index in `Config::commands` (the main one's settings first).
//! Start order: a command with prerequisites (`--after`) starts ([`Effect::Start`]) once each
//! is ready: said so ([`Event::Ready`]) if it has `--ready`, else started. The readiness clock
//! ([`Deadline::Ready`]) starts with the command; expiring, it ends the workload with 1. No
//! command starts once a stop was asked. Stop order is the reverse: when the shutdown begins,
//! a command that running commands depend on is held back (`HeldBack`: no stop signal, its
//! group left out of the drain) until they are reaped, or until the SIGKILL. Each command's
//! `--stop-signal` replaces the forwarded stop signal, and the drain signal when the shutdown
//! begins because a command ended. A `--respawn` helper's exits count against its restart
//! budget; more than it allows end the workload as an essential command's exit would. Upward,
//! [`Effect::NotifyUp`] says `READY=1` once every command is ready and `STOPPING=1` when the
//! shutdown begins.
//!
//! `--stop-delay`: the first TERM is held instead (`Stop::Held` until
//! [`Deadline::StopDelay`]), the command untouched.
//! At that deadline, or at an earlier TERM, INT or QUIT (forwarded at once; the held TERM is
//! then dropped, the one stop signal the command gets), the stop is forwarded and only then
//! arms `--kill-after`. Other signals pass at once; the command exiting meanwhile drains at once.

use std::time::{Duration, Instant};

use log::Level;

use crate::command::{self, Role};
use crate::signals;

/// How often `--follow-pidfile` looks for the pidfile, only while waiting for it.
pub const PIDFILE_POLL: Duration = Duration::from_millis(20);

/// How often a followed process held without a pidfd is looked for in /proc: no event
/// announces its exit when its own parent reaps it. Only in that fallback; with a pidfd the
/// loop sleeps until something happens.
pub const FOLLOWED_CHECK: Duration = Duration::from_millis(500);

/// How many exits `AwaitingPidfile` remembers, the latest ones (a daemon that wrote its pid
/// and exited before a look is found among them): a bound on what orphans can make it hold.
pub const REAPED_KEPT: usize = 256;

/// How long `Killing` waits for the last children after its SIGKILL before reaper exits
/// anyway. SIGKILL ends a process within milliseconds (a large one's teardown within a second
/// or two): whatever is still there by then is out of reaper's reach.
pub const KILL_WAIT: Duration = Duration::from_secs(5);

/// A duration in log lines, to the millisecond as users write them: `100ms`, `1s`, `1.5s`.
/// (Duration's Debug formatter costs 1 KB of binary.)
pub struct Human(pub Duration);

impl std::fmt::Display for Human {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        // Not as_millis(): its u128 costs a 128-bit formatter. Seconds and milliseconds apart:
        // seconds * 1000 overflows (saturates) for --kill-after 18446744073709551615.
        let (secs, ms) = (self.0.as_secs(), self.0.subsec_millis());
        let (mut frac, mut digits) = (ms, 3);
        if secs == 0 && ms == 0 && !self.0.is_zero() {
            // Not "0ms" for 500us.
            return match self.0.subsec_micros() {
                0 => write!(f, "{}ns", self.0.subsec_nanos()),
                us => write!(f, "{us}µs"),
            };
        }
        if secs == 0 {
            return write!(f, "{ms}ms");
        }
        if frac == 0 {
            return write!(f, "{secs}s");
        }
        while frac % 10 == 0 {
            (frac, digits) = (frac / 10, digits - 1);
        }
        write!(f, "{secs}.{frac:0digits$}s")
    }
}

/// What the machine needs of the options.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub kill_after: Option<Duration>,
    pub drain: Duration,
    pub drain_signal: i32,
    pub rewrite: Vec<(i32, i32)>,
    pub process_group: bool,
    pub on_success: OnSuccess,
    pub warn_on_reap: bool,
    /// Each command's settings, by index (the main command's first; none with `--pause`):
    /// names for log lines, roles, stop signals, readiness and prerequisites.
    pub commands: Vec<command::Settings>,
    pub stop_delay: Duration,
    /// `--remap-exit`: these statuses of the workload make reaper exit 0.
    pub remap_exit: Vec<u8>,
    /// Debug lines wanted: they are formatted only then, as some come once per forwarded
    /// signal or reaped orphan.
    pub debug_logs: bool,
}

/// The first restart delay of a `--respawn` helper, doubled after each quick exit up to
/// `RESPAWN_MAX`, and back to the first once a run lasted `RESPAWN_RESET`.
pub const RESPAWN_FIRST: Duration = Duration::from_millis(100);
pub const RESPAWN_MAX: Duration = Duration::from_secs(30);
pub const RESPAWN_RESET: Duration = Duration::from_secs(10);

/// What the command exiting 0 (before any stop signal) means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnSuccess {
    /// The workload is done: drain and exit 0.
    #[default]
    Done,
    /// `--wait-all`: its descendants are the workload now.
    WaitAll,
    /// `--follow-pidfile`: the daemon it started, named in the pidfile, is the workload now.
    FollowPidfile,
}

/// How a process ended. The signal stays a raw number: nix's `WaitStatus` cannot represent a
/// death by a real-time signal and would lose the child's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
}

impl Ended {
    /// The shell's convention: the exit code, or 128+N for death by signal N.
    pub fn code(self) -> i32 {
        match self {
            Ended::Exited(c) => c,
            Ended::Signaled(s) => (128 + s) & 0xff,
        }
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Ended::Exited(c) => write!(f, "exited with status {c}"),
            Ended::Signaled(s) => write!(f, "killed by {}", signals::name(s)),
        }
    }
}

/// A supervised process and its process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub pgid: i32,
}

/// A command running beside the main one (`--also`, `--respawn`): its settings are
/// `Config::commands[index]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub index: usize,
    pub proc: Proc,
    /// When this run began (`None`: before the loop) and the back-off that led to it: its
    /// next restart's back-off depends on both.
    pub started: Option<Instant>,
    pub delay: Duration,
}

/// A process as /proc showed it: pid and start time, so that a reused pid is a new process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Id {
    pub pid: i32,
    pub start: u64,
}

/// What a deadline is for: the key of the machine's one table of deadlines ([`Deadlines`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// `--kill-after`: SIGKILL to everything, counted from the first stop signal that went out
    /// (or that `-r` dropped).
    KillAfter,
    /// `--stop-delay`: the held TERM goes out.
    StopDelay,
    /// `--stop-delay` in pause mode: reaper exits.
    PauseExit,
    /// `--drain`: SIGKILL to the leftovers.
    Drain,
    /// `--follow-pidfile`: the next look at the pidfile.
    PidfilePoll,
    /// `--follow-pidfile`: no live daemon named by then (the `--drain` deadline), give up.
    PidfileGiveUp,
    /// [`KILL_WAIT`] after the SIGKILL: exit, whatever is left.
    KillWait,
    /// A followed daemon that no pidfd watches is looked for again ([`FOLLOWED_CHECK`]).
    FollowedCheck,
    /// `--respawn` helper `i` starts again.
    Respawn(usize),
    /// Command `i` has not said it is ready within its `--ready-timeout`.
    Ready(usize),
}

/// The fixed timers' slots; `Respawn(i)` and `Ready(i)` have slots of their own, one per
/// command.
const FIXED_TIMERS: usize = 8;

/// Every armed deadline, keyed by what it is for (quinn-proto's `TimerTable`): arming or
/// disarming one is one call, and the machine sleeps until the earliest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deadlines {
    fixed: [Option<Instant>; FIXED_TIMERS],
    respawn: Vec<Option<Instant>>,
    ready: Vec<Option<Instant>>,
    /// The earliest of the slots above, kept up to date by every change to them: the driver
    /// asks for it on every wake-up, and the machine after every event.
    earliest: Option<Instant>,
}

impl Deadlines {
    /// Arms `timer` for `at`, or disarms it with `None` (a deadline past what `Instant` can
    /// hold never comes).
    pub fn set(&mut self, timer: Deadline, at: Option<Instant>) {
        let (slots, i) = match timer {
            Deadline::Respawn(i) => (&mut self.respawn, i),
            Deadline::Ready(i) => (&mut self.ready, i),
            fixed => {
                if let Some(i) = FIXED.iter().position(|&t| t == fixed) {
                    self.fixed[i] = at;
                }
                self.update();
                return;
            }
        };
        if slots.len() <= i {
            slots.resize(i + 1, None);
        }
        slots[i] = at;
        self.update();
    }

    pub fn stop(&mut self, timer: Deadline) {
        self.set(timer, None);
    }

    pub fn get(&self, timer: Deadline) -> Option<Instant> {
        match timer {
            Deadline::Respawn(i) => self.respawn.get(i).copied().flatten(),
            Deadline::Ready(i) => self.ready.get(i).copied().flatten(),
            fixed => FIXED.iter().position(|&t| t == fixed).and_then(|i| self.fixed[i]),
        }
    }

    /// Whether `timer` is armed and due at `now`.
    pub fn expired(&self, timer: Deadline, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| now >= at)
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Instant> {
        self.earliest
    }

    /// Recomputes `earliest` after a change to the slots.
    fn update(&mut self) {
        let earliest = |acc: Option<Instant>, slots: &[Option<Instant>]| {
            slots.iter().fold(acc, |acc, &at| match (acc, at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            })
        };
        self.earliest = earliest(earliest(earliest(None, &self.fixed), &self.respawn), &self.ready);
    }

    /// Disarms every timer for which `keep` is false (`Respawn(0)` stands for every helper's,
    /// `Ready(0)` for every command's).
    fn retain(&mut self, keep: impl Fn(Deadline) -> bool) {
        // Nothing armed, nothing to disarm (the common case: a forwarded signal, a reap).
        if self.earliest.is_none() {
            return;
        }
        for (slot, timer) in self.fixed.iter_mut().zip(FIXED) {
            if !keep(timer) {
                *slot = None;
            }
        }
        if !keep(Deadline::Respawn(0)) {
            self.respawn.clear();
        }
        if !keep(Deadline::Ready(0)) {
            self.ready.clear();
        }
        self.update();
    }

    /// The `--respawn` helpers whose restart is due at `now`, in index order, disarmed.
    fn take_due_respawns(&mut self, now: Instant) -> Vec<usize> {
        let due = take_due(&mut self.respawn, now);
        self.update();
        due
    }

    /// The commands whose readiness timeout is over at `now`, in index order, disarmed.
    fn take_due_ready(&mut self, now: Instant) -> Vec<usize> {
        let due = take_due(&mut self.ready, now);
        self.update();
        due
    }
}

fn take_due(slots: &mut [Option<Instant>], now: Instant) -> Vec<usize> {
    let mut due = Vec::new();
    for (i, at) in slots.iter_mut().enumerate() {
        if at.is_some_and(|at| now >= at) {
            *at = None;
            due.push(i);
        }
    }
    due
}

/// The fixed timers, in slot order.
const FIXED: [Deadline; FIXED_TIMERS] = [
    Deadline::KillAfter,
    Deadline::StopDelay,
    Deadline::PauseExit,
    Deadline::Drain,
    Deadline::PidfilePoll,
    Deadline::PidfileGiveUp,
    Deadline::KillWait,
    Deadline::FollowedCheck,
];

/// Where the stop stands, in the states that supervise a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stop {
    /// No stop signal received.
    NotAsked,
    /// `--stop-delay` holds the first TERM until [`Deadline::StopDelay`]; the commands are
    /// untouched, but the stop came from outside: the main command's status is reaper's.
    Held,
    /// Every stop signal so far was dropped by `-r`: `--kill-after` is armed all the same,
    /// but no shutdown has begun.
    Dropped,
    /// A stop signal went out: the shutdown has begun (no helper restarted, an `--also` exit
    /// no longer ends the workload). `reached`: the commands (each one's group with `-g`) that
    /// got the drain signal as a stop signal, or their own `--stop-signal`, so that the drain
    /// does not send it to them again.
    Sent { reached: Vec<Target> },
}

/// Each state's deadlines live in [`Deadlines`], keyed by [`Deadline`]; [`owns`] says which
/// timers each state keeps.
#[derive(Debug, Clone, PartialEq)]
enum State {
    /// `--pause`: nothing to supervise; reap until a stop signal (or, after a TERM with
    /// `--stop-delay`, until [`Deadline::PauseExit`]).
    Pausing,
    /// Signals go to `main` and the `others`. `on_success` says what the main's exit 0 means
    /// (a followed daemon's exit always ends the workload). Helpers waiting for their back-off
    /// to pass have a [`Deadline::Respawn`] armed, commands not ready yet a
    /// [`Deadline::Ready`]. `main` is `None` while it waits for its prerequisites (`--after`).
    Running {
        main: Option<Proc>,
        others: Vec<Member>,
        on_success: OnSuccess,
        stop: Stop,
    },
    /// `--wait-all`: the command exited 0; signals go to every descendant until none is left.
    Orphans {
        stop: Stop,
    },
    /// `--follow-pidfile`: the command exited 0; the pidfile is read at each
    /// [`Deadline::PidfilePoll`], until [`Deadline::PidfileGiveUp`]. `reaped`: children reaped
    /// meanwhile (pid, status), in case the daemon was one of them.
    AwaitingPidfile {
        stop: Stop,
        reaped: Vec<(i32, i32)>,
    },
    /// The workload ended with `status`; at the end of this reap batch we either exit (no
    /// child left: no /proc walk at all) or start the drain.
    /// `skip`: commands still running (or, with `-g`, the groups) that got the drain signal
    /// already (forwarded for the stop), so the drain does not send it to them a second time.
    /// `main`, here and below: the command, still running when the workload ended, whose own
    /// status is reaper's (a stop from outside came first, or `--kill-after` fired): if it is
    /// reaped, its status replaces `status`.
    Gone {
        status: i32,
        groups: Vec<i32>,
        skip: Vec<Target>,
        main: Option<i32>,
    },
    /// Leftovers got the drain signal; `signalled` are those that did (sorted), so that a
    /// process orphaned to reaper later gets it exactly once. SIGKILL at [`Deadline::Drain`] or
    /// [`Deadline::KillAfter`].
    Draining {
        status: i32,
        groups: Vec<i32>,
        signalled: Vec<Id>,
        main: Option<i32>,
    },
    /// Everything got SIGKILL; exit once no child is left, or at [`Deadline::KillWait`]
    /// whatever is left: a process that SIGKILL cannot end or reaper cannot reach (not listed
    /// in /proc, the kill denied) must not keep reaper from exiting.
    Killing {
        status: i32,
        groups: Vec<i32>,
        main: Option<i32>,
    },
    Exit(i32),
}

/// Whether `state` keeps `timer` armed: every other is disarmed when the machine enters it.
fn owns(state: &State, timer: Deadline) -> bool {
    use State::*;
    match timer {
        Deadline::KillAfter => matches!(
            state,
            Running { .. } | Orphans { .. } | AwaitingPidfile { .. } | Gone { .. } | Draining { .. }
        ),
        Deadline::StopDelay => matches!(state, Running { .. } | Orphans { .. } | AwaitingPidfile { .. }),
        Deadline::PauseExit => matches!(state, Pausing),
        Deadline::Drain => matches!(state, Draining { .. }),
        Deadline::PidfilePoll | Deadline::PidfileGiveUp => matches!(state, AwaitingPidfile { .. }),
        Deadline::KillWait => matches!(state, Killing { .. }),
        Deadline::FollowedCheck | Deadline::Respawn(_) | Deadline::Ready(_) => {
            matches!(state, Running { .. })
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A signal from the signalfd (never SIGCHLD: that becomes a reap batch).
    Signal(i32),
    /// A child reaped; `name` is its comm, read before reaping (only with `--warn-on-reap`).
    Reaped { pid: i32, ended: Ended, name: Option<String> },
    /// End of a reap batch: `children_left` is false once waitpid says ECHILD.
    BatchDone { children_left: bool },
    /// Woken up: deadlines at or before `now` are due.
    Timer,
    /// Reply to `SignalLeftovers { record: true, skip: Vec::new() }`: who got the drain signal.
    Signalled(Vec<Id>),
    /// Reply to `ListChildren`.
    Children(Vec<Id>),
    /// Reply to `ReadPidfile`: the live descendant it names, or why not (with the pid the
    /// file named, if any).
    Pidfile(Result<Proc, (Option<i32>, String)>),
    /// The followed daemon's pidfd says it exited, and this reap batch did not reap it.
    FollowedGone { pid: i32 },
    /// After `Pidfile(Ok(…))`: no pidfd watches the followed daemon, so the driver looks for
    /// it after each wake-up, and wants one at least every [`FOLLOWED_CHECK`].
    Unwatched,
    /// Reply to `Start`: the started command, or why it could not be started (the exit code
    /// that says so, 126, 127 or 1, and the message).
    Started { index: usize, delay: Duration, result: Result<Proc, (i32, String)> },
    /// Command `index` said it is ready (its `--ready` notification). Repeats are ignored.
    Ready { index: usize },
}

/// Whom `Send` signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Pid(i32),
    Group(i32),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send {
        to: Target,
        sig: i32,
    },
    /// Every leftover: the whole namespace as PID 1 (`kill(-1)`), else each descendant found
    /// in /proc, or the commands' process groups `groups` when /proc cannot list them. `record` marks the
    /// shutdown's first leftover signal: reply with `Event::Signalled` (and warn if /proc
    /// cannot list them).
    SignalLeftovers {
        sig: i32,
        groups: Vec<i32>,
        record: bool,
        /// Those that already got `sig` (a process, or every member of a group): left out (and
        /// reported as signalled).
        skip: Vec<Target>,
    },
    /// Start command `index`: a deferred one whose prerequisites are ready (`delay` 0), or a
    /// `--respawn` helper again after a back-off of `delay`; reply with `Event::Started`,
    /// echoing `delay`.
    Start {
        index: usize,
        delay: Duration,
    },
    /// Tell whoever started reaper (its `NOTIFY_SOCKET`, if it has one): `READY=1` once the
    /// workload is up, `STOPPING=1` when the shutdown begins. Each is said once.
    NotifyUp(&'static str),
    /// Reply with `Event::Children`: reaper's direct children now.
    ListChildren,
    /// Reply with `Event::Pidfile`.
    ReadPidfile,
    Log(Level, String),
}

/// Where a command stands in the start-up (`--after`, `--ready`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Some prerequisite is not ready yet.
    Waiting,
    /// `Effect::Start` went out: `Event::Started` will say how it went.
    Starting,
    /// Started; its `--ready` notification has not come yet.
    Up,
    /// Its notification came, or it has none and started: its dependents may start.
    Ready,
    /// Could not start (an `--optional` command nothing waits for): never ready, and the
    /// workload is up without it.
    Never,
}

/// What reaper said upward (`Effect::NotifyUp`), in the order it can say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Told {
    Nothing,
    /// `READY=1`: every command started, each with `--ready` ready (pause mode: at once).
    Ready,
    /// `STOPPING=1`: the shutdown began.
    Stopping,
}

/// A prerequisite the shutdown holds back (stop order): it gets `sig` once every command in
/// `dependents` (pids) is reaped, or SIGKILL with everything at the drain or kill deadline.
#[derive(Debug, Clone, PartialEq)]
struct HeldBack {
    index: usize,
    proc: Proc,
    sig: i32,
    dependents: Vec<i32>,
}

#[cfg_attr(test, derive(Clone))]
pub struct Machine {
    cfg: Config,
    state: State,
    deadlines: Deadlines,
    /// Each `--respawn` helper's last back-off, for its next restart's.
    backoff: Vec<Duration>,
    /// Each command's start-up, by index.
    phase: Vec<Phase>,
    /// Each `--respawn` helper's latest exits, for its restart budget: the ones within its
    /// window, at most `exits + 1` of them.
    exits: Vec<Vec<Instant>>,
    /// Prerequisites the shutdown holds back until their dependents are gone.
    held: Vec<HeldBack>,
    /// The groups of the commands that got a stop signal of their own (see [`own_stop`]):
    /// spared from the drain signal while their leader runs, not after.
    spared: Vec<i32>,
    /// What was said upward last: it only moves on, so each message goes once, and `READY=1`
    /// never after `STOPPING=1`.
    told: Told,
    /// How many times the machine entered another state.
    transitions: u64,
    /// `--kill-after` fired: the termination log says so.
    killed_after: bool,
    /// Why the workload failed, when no command's own exit says it (a helper's restart
    /// budget spent, a readiness timeout): the termination log says so.
    failure: Option<String>,
    out: Vec<Effect>,
}

impl Machine {
    /// `started`: the commands the driver started before the loop (by index into
    /// `cfg.commands`), those without prerequisites; none in pause mode. The others start as
    /// their prerequisites become ready. The driver hands the machine one `Event::Timer`
    /// before it first sleeps: the readiness clocks of the commands started already begin
    /// then, and the commands that need nothing but those start.
    pub fn new(cfg: Config, started: Vec<(usize, Proc)>) -> Machine {
        let mut phase = vec![Phase::Waiting; cfg.commands.len()];
        let (mut main, mut others) = (None, Vec::new());
        for (index, proc) in started {
            if let (Some(p), Some(settings)) = (phase.get_mut(index), cfg.commands.get(index)) {
                *p = if settings.ready.is_some() { Phase::Up } else { Phase::Ready };
            }
            match is_main(&cfg, index) {
                true => main = Some(proc),
                false => others.push(Member { index, proc, started: None, delay: Duration::ZERO }),
            }
        }
        let state = match (main, others.is_empty()) {
            (None, true) => State::Pausing,
            _ => State::Running { main, others, on_success: cfg.on_success, stop: Stop::NotAsked },
        };
        Machine {
            cfg,
            state,
            deadlines: Deadlines::default(),
            backoff: Vec::new(),
            phase,
            exits: Vec::new(),
            held: Vec::new(),
            spared: Vec::new(),
            told: Told::Nothing,
            transitions: 0,
            killed_after: false,
            failure: None,
            out: Vec::new(),
        }
    }

    /// Reaper's exit code once the machine is done, after `--remap-exit`.
    pub fn exit_code(&self) -> Option<i32> {
        match self.state {
            State::Exit(code) if self.cfg.remap_exit.contains(&(code as u8)) => Some(0),
            State::Exit(code) => Some(code),
            _ => None,
        }
    }

    /// The workload ended and its leftovers are being drained or killed (reaper has not
    /// decided to exit yet).
    pub fn workload_ended(&self) -> bool {
        matches!(self.state, State::Gone { .. } | State::Draining { .. } | State::Killing { .. })
    }

    /// Whether `--kill-after` fired (SIGKILL to everything): part of why reaper ended.
    pub fn kill_after_fired(&self) -> bool {
        self.killed_after
    }

    /// Why the workload failed when no command's own exit says it: a `--respawn` helper
    /// spent its restart budget, a command never became ready, or one could not start.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// How many times the machine entered another state: the driver compares it around a reap
    /// batch, as a state entered during the batch must see the batch's outcome too.
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    /// The earliest armed deadline: the driver sleeps until then, or for ever if `None`.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.next()
    }

    /// When `timer` is due, if it is armed.
    pub fn deadline(&self, timer: Deadline) -> Option<Instant> {
        self.deadlines.get(timer)
    }

    /// One transition. Returns the effects to carry out, in order.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Effect> {
        let mut effects = Vec::new();
        self.handle_into(event, || now, &mut effects);
        effects
    }

    /// One transition; its effects, in order, are appended to `effects`. The driver hands the
    /// same buffer in every time, emptied: after the first few events nothing is allocated
    /// for them (the machine's own buffer and the caller's swap when the caller's is empty).
    /// `now` tells when the event came, asked only if the event needs it (the driver reads the
    /// clock then: a signal passed on never does).
    pub fn handle_into(&mut self, event: Event, now: impl FnOnce() -> Instant, effects: &mut Vec<Effect>) {
        // The most common event changes no state and is handled in place. Nor does it change
        // what `settle` looks at (the state, the phases, the clocks), which ran after the event
        // before (the first is the driver's Timer): nothing to settle.
        match event {
            Event::Signal(sig) if !signals::is_stop(sig) => self.pass_on(sig),
            event => {
                let now = now();
                self.transition(event, now);
                self.settle(now);
            }
        }
        if effects.is_empty() {
            std::mem::swap(&mut self.out, effects);
        } else {
            effects.append(&mut self.out);
        }
    }

    /// Every event but a signal `pass_on` takes: the state is taken out, replaced by what the
    /// event makes of it, and the timers it does not own are disarmed.
    fn transition(&mut self, event: Event, now: Instant) {
        let state = std::mem::replace(&mut self.state, State::Exit(0));
        let before = std::mem::discriminant(&state);
        let state = match event {
            Event::Signal(sig) => self.on_signal(state, sig, now),
            Event::Reaped { pid, ended, name } => self.on_reaped(state, pid, ended, name, now),
            Event::BatchDone { children_left } => self.on_batch_done(state, children_left, now),
            Event::Timer => self.on_timer(state, now),
            Event::Signalled(ids) => match state {
                State::Draining { status, groups, main, .. } => {
                    // BinaryHeap's heapsort: sort_unstable costs 2 KB of binary per type.
                    let signalled = std::collections::BinaryHeap::from(ids).into_sorted_vec();
                    State::Draining { status, groups, signalled, main }
                }
                other => other,
            },
            Event::Children(ids) => self.on_children(state, ids),
            Event::Pidfile(found) => self.on_pidfile(state, found, now),
            Event::FollowedGone { pid } => match state {
                State::Running { main: Some(main), stop, .. } if main.pid == pid => {
                    self.log(
                        Level::Error,
                        format!("followed pid {pid} exited and was reaped by another process: its exit status is unknown"),
                    );
                    with_group(self.shut_down(1, None, &[], stop, None), main.pgid)
                }
                other => other,
            },
            Event::Started { index, delay, result } => self.on_started(state, index, delay, result, now),
            Event::Ready { index } => {
                if self.phase.get(index) == Some(&Phase::Up) {
                    self.phase[index] = Phase::Ready;
                    self.deadlines.stop(Deadline::Ready(index));
                    self.log(Level::Info, format!("{} is ready", self.name(index)));
                }
                state
            }
            Event::Unwatched => {
                if let State::Running { .. } = state {
                    self.deadlines.set(Deadline::FollowedCheck, now.checked_add(FOLLOWED_CHECK));
                }
                state
            }
        };
        if std::mem::discriminant(&state) != before {
            self.transitions += 1;
        }
        self.deadlines.retain(|timer| owns(&state, timer));
        self.state = state;
    }

    /// After every event, whatever it was: the commands whose prerequisites are all ready now
    /// start (unless a stop was asked: then nothing starts any more), a command's readiness
    /// clock starts with it, and what changed is said upward.
    fn settle(&mut self, now: Instant) {
        if let State::Running { stop: Stop::NotAsked | Stop::Dropped, .. } = self.state {
            self.start_what_can_start(now);
        }
        self.tell_upward();
    }

    /// Starts each waiting command whose prerequisites are all ready; arms the readiness
    /// clock of each started command that has `--ready` and no clock yet.
    fn start_what_can_start(&mut self, now: Instant) {
        for index in 0..self.phase.len() {
            let Some(settings) = self.cfg.commands.get(index) else { continue };
            match self.phase[index] {
                Phase::Waiting
                    if settings.after.iter().all(|&p| self.phase.get(p) == Some(&Phase::Ready)) =>
                {
                    let after: Vec<&str> = settings.after.iter().map(|&p| self.name(p)).collect();
                    self.log(
                        Level::Info,
                        format!("starting {}: {} ready", self.name(index), after.join(", ")),
                    );
                    self.phase[index] = Phase::Starting;
                    self.out.push(Effect::Start { index, delay: Duration::ZERO });
                }
                // Started before the loop (no clock then), or just now.
                Phase::Up if self.deadlines.get(Deadline::Ready(index)).is_none() => {
                    self.deadlines.set(Deadline::Ready(index), now.checked_add(settings.ready_timeout));
                }
                _ => {}
            }
        }
    }

    /// `READY=1` once the workload is up, `STOPPING=1` once its shutdown began: each once.
    fn tell_upward(&mut self) {
        let now_told = match &self.state {
            State::Pausing => Told::Ready,
            // Only a stop that went out is the shutdown: with a TERM that --stop-delay holds,
            // the commands run on.
            State::Running { stop: Stop::Sent { .. }, .. } => Told::Stopping,
            // An --optional command that could not start keeps nobody waiting.
            State::Running { .. } if self.phase.iter().all(|&p| matches!(p, Phase::Ready | Phase::Never)) => {
                Told::Ready
            }
            State::Running { .. } => Told::Nothing,
            State::Orphans { stop } | State::AwaitingPidfile { stop, .. } => match stop {
                Stop::Sent { .. } => Told::Stopping,
                _ => Told::Nothing,
            },
            State::Gone { .. } | State::Draining { .. } | State::Killing { .. } | State::Exit(_) => {
                Told::Stopping
            }
        };
        if now_told > self.told {
            self.told = now_told;
            self.out.push(Effect::NotifyUp(match now_told {
                Told::Stopping => "STOPPING=1",
                _ => "READY=1",
            }));
        }
    }

    /// Command `index`'s name for log lines.
    fn name(&self, index: usize) -> &str {
        self.cfg.commands.get(index).map_or("command", |s| s.name.as_str())
    }

    fn role(&self, index: usize) -> Role {
        self.cfg.commands.get(index).map_or(Role::Main, |s| s.role.clone())
    }

    /// The main command's index (the followed daemon stands for it).
    fn main_index(&self) -> usize {
        self.cfg.commands.iter().position(|s| s.role == Role::Main).unwrap_or(0)
    }

    /// Whom a signal for `proc` goes to: the process, or its group with -g.
    fn target(&self, proc: Proc) -> Target {
        target(&self.cfg, proc)
    }

    /// The commands running, by index: the main one first.
    fn running(&self, main: Option<Proc>, others: &[Member]) -> Vec<(usize, Proc)> {
        let main = main.map(|p| (self.main_index(), p));
        main.into_iter().chain(others.iter().map(|m| (m.index, m.proc))).collect()
    }

    /// The pids of the running commands that depend on command `index` (`--after`).
    fn dependents(&self, index: usize, running: &[(usize, Proc)]) -> Vec<i32> {
        let depends = |i: usize| self.cfg.commands.get(i).is_some_and(|s| s.after.contains(&index));
        running.iter().filter(|&&(i, _)| depends(i)).map(|(_, p)| p.pid).collect()
    }

    /// "name (pid N), …" for the commands running.
    fn list(&self, running: &[(usize, Proc)]) -> String {
        let each: Vec<String> =
            running.iter().map(|&(i, p)| format!("{} (pid {})", self.name(i), p.pid)).collect();
        each.join(", ")
    }

    fn log(&mut self, level: Level, text: String) {
        self.out.push(Effect::Log(level, text));
    }

    fn debug(&mut self, text: impl FnOnce() -> String) {
        if self.cfg.debug_logs {
            self.out.push(Effect::Log(Level::Debug, text()));
        }
    }

    /// A signal that is not a stop goes out again (rewritten), to the commands while they
    /// run, else to the leftovers; in pause mode nowhere. Nothing else changes.
    fn pass_on(&mut self, sig: i32) {
        self.debug(|| format!("received {}", signals::name(sig)));
        if let State::Pausing = self.state {
            return;
        }
        match self.rewritten(sig) {
            0 => self.debug(|| format!("dropping {} (--rewrite)", signals::name(sig))),
            to => forward(&self.cfg, &self.state, to, &mut self.out),
        }
    }

    /// A stop signal (the others go to `pass_on`).
    fn on_signal(&mut self, state: State, sig: i32, now: Instant) -> State {
        self.debug(|| format!("received {}", signals::name(sig)));
        let delay = self.cfg.stop_delay;
        if let State::Pausing = state {
            if sig == libc::SIGTERM && self.deadlines.get(Deadline::PauseExit).is_none() && !delay.is_zero() {
                // At the default level: a `docker stop` that takes the delay explains itself.
                self.log(Level::Warn, format!("TERM received: exiting in {} (--stop-delay)", Human(delay)));
                self.deadlines.set(Deadline::PauseExit, now.checked_add(delay));
                return state;
            }
            if signals::is_stop(sig) {
                self.log(Level::Info, format!("{} in pause mode: exiting", signals::name(sig)));
                return State::Exit(0);
            }
            return state;
        }
        let stop = stop_of(&state).cloned();
        let held = stop == Some(Stop::Held);
        if sig == libc::SIGTERM && stop == Some(Stop::NotAsked) && !delay.is_zero() {
            self.log(Level::Warn, format!("TERM received: forwarding in {} (--stop-delay)", Human(delay)));
            self.deadlines.set(Deadline::StopDelay, now.checked_add(delay));
            return with_stop(state, Stop::Held);
        }
        // A stop signal that -r drops would end the delay with nothing sent: the TERM stays held.
        if held && self.rewritten(sig) == 0 {
            return state;
        }
        let reached = self.send_rewritten(&state, sig);
        let Some(stop) = stop else { return state };
        if held {
            let dropped = if sig == libc::SIGTERM { "" } else { "; the held TERM is dropped" };
            self.log(
                Level::Info,
                format!("{} ends --stop-delay: forwarded now{dropped}", signals::name(sig)),
            );
            self.deadlines.stop(Deadline::StopDelay);
        }
        let stop = self.forwarded(now, stop, self.rewritten(sig), reached);
        with_stop(state, stop)
    }

    #[inline(always)] // one comparison per rewrite rule: less than the call
    fn rewritten(&self, sig: i32) -> i32 {
        // A plain loop: `find` with a closure stays a call of its own at opt-level z.
        for &(from, to) in &self.cfg.rewrite {
            if from == sig {
                return to;
            }
        }
        sig
    }

    /// Forwards the stop signal `sig` (the others are passed on), or what `-r` makes of it.
    /// Returns whom it reached as the drain signal when it went out to the commands.
    fn send_rewritten(&mut self, state: &State, sig: i32) -> Vec<Target> {
        let to = self.rewritten(sig);
        match state {
            _ if to == 0 => {
                self.debug(|| format!("dropping {} (--rewrite)", signals::name(sig)));
                Vec::new()
            }
            // The received signal decides, rewritten or not: a stop is a stop.
            State::Running { main, others, .. } => {
                let running = self.running(*main, others);
                self.stop_commands(&running, to)
            }
            _ => {
                forward(&self.cfg, state, to, &mut self.out);
                Vec::new()
            }
        }
    }

    /// A stop going out as `sig`: each command gets its own `--stop-signal` instead if it has
    /// one; one that other running commands depend on is held back until they are gone (stop
    /// order: a server never loses its database first). Returns whom the drain leaves out: those
    /// the drain signal reached, and those that got their own stop signal (nginx's graceful
    /// QUIT must not be cut short by a TERM).
    fn stop_commands(&mut self, running: &[(usize, Proc)], sig: i32) -> Vec<Target> {
        let mut reached = Vec::new();
        for &(index, proc) in running {
            if self.held.iter().any(|h| h.proc.pid == proc.pid) {
                continue;
            }
            let own = self.cfg.commands.get(index).and_then(|s| s.stop_signal);
            let sig = own.unwrap_or(sig);
            let dependents = self.dependents(index, running);
            if !dependents.is_empty() {
                let name = self.name(index).to_owned();
                self.debug(|| format!("{name} waits for its dependents to stop"));
                self.held.push(HeldBack { index, proc, sig, dependents });
                continue;
            }
            let to = self.target(proc);
            self.out.push(Effect::Send { to, sig });
            if own.is_some() {
                reached.push(self.own_stop(proc));
            } else if sig == self.cfg.drain_signal {
                reached.push(to);
            }
        }
        reached
    }

    /// Where the stop stands once a stop signal went out at `now` as `sent` (0 if `-r`
    /// dropped it), reaching `reached` as the drain signal. `--kill-after` counts from the
    /// first (a held TERM is not one yet); the first one not dropped begins the shutdown.
    fn forwarded(&mut self, now: Instant, stop: Stop, sent: i32, reached: Vec<Target>) -> Stop {
        if matches!(stop, Stop::NotAsked | Stop::Held) {
            if let Some(after) = self.cfg.kill_after {
                self.log(
                    Level::Info,
                    format!("stop requested: SIGKILL in {} if the command still runs", Human(after)),
                );
                self.deadlines.set(Deadline::KillAfter, now.checked_add(after));
            }
        }
        let mut stop = match stop {
            Stop::Sent { .. } => stop,
            _ if sent == 0 => Stop::Dropped,
            _ => {
                // The shutdown has begun: no helper is restarted, no command waits to be ready.
                self.deadlines.retain(|timer| !matches!(timer, Deadline::Respawn(_) | Deadline::Ready(_)));
                Stop::Sent { reached: Vec::new() }
            }
        };
        // Kept across stops: a command that exits later leaves its group's members behind
        // (with -g), which had the signal too.
        if let Stop::Sent { reached: had } = &mut stop {
            for to in reached {
                if !had.contains(&to) {
                    had.push(to);
                }
            }
        }
        stop
    }

    fn on_reaped(
        &mut self,
        state: State,
        pid: i32,
        ended: Ended,
        name: Option<String>,
        now: Instant,
    ) -> State {
        let member = match &state {
            State::Running { others, .. } => others.iter().position(|m| m.proc.pid == pid),
            _ => None,
        };
        let is_main = match &state {
            State::Running { main, .. } => main.is_some_and(|m| m.pid == pid),
            State::Gone { main, .. } | State::Draining { main, .. } | State::Killing { main, .. } => {
                *main == Some(pid)
            }
            _ => false,
        };
        if is_main {
            self.log(Level::Info, format!("command {ended}"));
        } else if member.is_some() {
            // Logged below, with what follows from it.
        } else if self.cfg.warn_on_reap {
            self.log(Level::Warn, format!("reaped pid {pid} ({}): {ended}", name.as_deref().unwrap_or("?")));
        } else {
            self.debug(|| format!("reaped pid {pid}: {ended}"));
        }
        let state = self.release(state, pid);
        let state = self.unspare(state, pid);
        match state {
            State::Running { main: Some(main), others, on_success, stop } if main.pid == pid => {
                self.workload_exited(main, others, on_success, stop, ended.code(), now)
            }
            State::Running { main, mut others, on_success, stop } => match member {
                Some(at) => {
                    let gone = others.remove(at);
                    self.member_exited(main, others, on_success, stop, gone, ended, now)
                }
                None => State::Running { main, others, on_success, stop },
            },
            State::Gone { main: Some(p), groups, skip, .. } if p == pid => {
                State::Gone { status: ended.code(), groups, skip, main: None }
            }
            State::Killing { main: Some(p), groups, .. } if p == pid => {
                State::Killing { status: ended.code(), groups, main: None }
            }
            State::AwaitingPidfile { stop, mut reaped } => {
                // Bounded: orphans keep coming while reaper waits. The daemon that wrote the
                // file and exited before a look is among the latest.
                if reaped.len() >= REAPED_KEPT {
                    reaped.remove(0);
                }
                reaped.push((pid, ended.code()));
                State::AwaitingPidfile { stop, reaped }
            }
            State::Draining { status, groups, mut signalled, main } => {
                // Its pid may be reused by a process that has not had the signal.
                signalled.retain(|id| id.pid != pid);
                let (status, main) = if main == Some(pid) { (ended.code(), None) } else { (status, main) };
                State::Draining { status, groups, signalled, main }
            }
            other => other,
        }
    }

    /// A command beside the main one (`gone`, removed from `others`) exited while the
    /// commands run: what that means depends on its role and on whether the shutdown began.
    #[allow(clippy::too_many_arguments)]
    fn member_exited(
        &mut self,
        main: Option<Proc>,
        others: Vec<Member>,
        on_success: OnSuccess,
        stop: Stop,
        gone: Member,
        ended: Ended,
        now: Instant,
    ) -> State {
        let pid = gone.proc.pid;
        let what = format!("{} (pid {pid}) {ended}", self.name(gone.index));
        let began = matches!(stop, Stop::Sent { .. });
        // Some((log line, status, level)) when this exit ends the workload.
        let ends = match self.role(gone.index) {
            // Stopping already: the main command's status decides.
            _ if began => {
                self.log(Level::Info, what);
                None
            }
            Role::Respawn { done, .. } if matches!(ended, Ended::Exited(c) if done.contains(&(c as u8))) => {
                self.log(Level::Info, format!("{what}: done"));
                None
            }
            Role::Respawn { budget, .. } => match self.spend(gone.index, budget, now) {
                // Failed: its status, or 1 if that was 0.
                Some(spent) => Some((format!("{what}: {spent}"), ended.code().max(1), Level::Error)),
                None => {
                    let ran = gone.started.map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
                    let delay = next_delay(gone.delay, ran);
                    self.log(Level::Info, format!("{what}: restarting it in {}", Human(delay)));
                    self.restart_in(gone.index, delay, now);
                    None
                }
            },
            Role::Also { essential: false } => {
                self.log(Level::Info, what);
                None
            }
            Role::Also { essential: true } | Role::Main => Some((what, ended.code(), Level::Info)),
        };
        // The workload ends with this command's status (a spent helper's, or 1 if that
        // was 0). A TERM held by --stop-delay is a stop from outside: the drain starts
        // now, as if the command itself had exited, but its status is reaper's.
        if let Some((what, status, level)) = ends {
            let running = self.running(main, &others);
            let held = stop == Stop::Held;
            let decides = match (held, main) {
                (true, Some(_)) => {
                    format!(" during --stop-delay; {}'s status decides", self.name(self.main_index()))
                }
                _ => String::new(),
            };
            self.log(level, format!("{what}: stopping {}{decides}", self.list(&running)));
            let decides = main.filter(|_| held).map(|m| m.pid);
            return self.shut_down(status, main, &others, stop, decides);
        }
        // Stopping, and the main command never started: the last one to go ends it.
        if began && main.is_none() && others.is_empty() {
            return with_group(self.shut_down(ended.code(), None, &[], stop, None), gone.proc.pgid);
        }
        State::Running { main, others, on_success, stop }
    }

    /// Counts helper `index`'s exit at `now` against its restart budget; says how it was
    /// spent if this exit is one too many (and notes it as the workload's failure).
    fn spend(&mut self, index: usize, budget: Option<command::Budget>, now: Instant) -> Option<String> {
        let budget = budget?;
        if self.exits.len() <= index {
            self.exits.resize(index + 1, Vec::new());
        }
        let exits = &mut self.exits[index];
        exits.retain(|&at| now.saturating_duration_since(at) < budget.within);
        exits.push(now);
        // Bounded: `exits + 1` of them are enough to know.
        if exits.len() > budget.exits as usize + 1 {
            exits.remove(0);
        }
        if exits.len() <= budget.exits as usize {
            return None;
        }
        let (count, within) = (exits.len(), Human(budget.within));
        let spent = format!("{count} exits within {within} (--restarts {}/{within})", budget.exits);
        self.failure = Some(format!("{} failed: {spent}", self.name(index)));
        Some(spent)
    }

    /// A command reaped (`pid`): the prerequisites held back for it that have no dependent
    /// left get their stop signal now. While the commands run it goes where a stop goes (the
    /// process, or its group with -g); in the drain to the whole group, which the drain
    /// signal left out. Either way the drain does not send it the drain signal again.
    fn release(&mut self, mut state: State, pid: i32) -> State {
        self.held.retain(|h| h.proc.pid != pid);
        for h in &mut self.held {
            h.dependents.retain(|&p| p != pid);
        }
        let (free, held): (Vec<HeldBack>, Vec<HeldBack>) =
            std::mem::take(&mut self.held).into_iter().partition(|h| h.dependents.is_empty());
        self.held = held;
        for h in free {
            let running = matches!(state, State::Running { .. });
            let to = if running { self.target(h.proc) } else { Target::Group(h.proc.pgid) };
            self.log(
                Level::Info,
                format!(
                    "{} (pid {}): its dependents are gone, sending {}",
                    self.name(h.index),
                    h.proc.pid,
                    signals::name(h.sig)
                ),
            );
            self.out.push(Effect::Send { to, sig: h.sig });
            match &mut state {
                State::Running { stop: Stop::Sent { reached }, .. } => reached.push(self.own_stop(h.proc)),
                State::Gone { skip, .. } => skip.push(self.own_stop(h.proc)),
                _ => {}
            }
        }
        state
    }

    /// What the drain leaves out for a command that got a stop signal of its own (its
    /// `--stop-signal`, or its stop held back until its dependents were gone): its whole group,
    /// as it stops its own children (nginx's workers, a database's backends, a trap's `date`),
    /// and a drain signal to them would cut that short. Once it is reaped, what its group
    /// still holds is a leftover like any other ([`Machine::unspare`]).
    fn own_stop(&mut self, proc: Proc) -> Target {
        self.spared.push(proc.pgid);
        Target::Group(proc.pgid)
    }

    /// A command whose group the drain spared is reaped (`pid`, its group's leader): the drain
    /// signal reaches what is left in its group, now or when the drain begins.
    fn unspare(&mut self, mut state: State, pid: i32) -> State {
        let Some(at) = self.spared.iter().position(|&g| g == pid) else { return state };
        self.spared.remove(at);
        let group = Target::Group(pid);
        match &mut state {
            State::Running { stop: Stop::Sent { reached }, .. } => reached.retain(|t| *t != group),
            State::Gone { skip, .. } => skip.retain(|t| *t != group),
            State::Draining { .. } => self.out.push(Effect::Send { to: group, sig: self.cfg.drain_signal }),
            _ => {}
        }
        state
    }

    /// Arms `--respawn` helper `index`'s restart after a back-off of `delay`.
    fn restart_in(&mut self, index: usize, delay: Duration, now: Instant) {
        self.deadlines.set(Deadline::Respawn(index), now.checked_add(delay));
        if self.backoff.len() <= index {
            self.backoff.resize(index + 1, Duration::ZERO);
        }
        self.backoff[index] = delay;
    }

    /// The workload ends with `status` while `main` (if it still runs) and `others` run:
    /// the shutdown begins. If no stop signal went out yet, each command with a
    /// `--stop-signal` gets it now, in place of the drain signal; a command that other running
    /// commands depend on is held back until they are gone, its group left out of the drain
    /// (stop order). `decides`: the command whose own status will be reaper's, if it is reaped.
    fn shut_down(
        &mut self,
        status: i32,
        main: Option<Proc>,
        others: &[Member],
        stop: Stop,
        decides: Option<i32>,
    ) -> State {
        let running = self.running(main, others);
        let groups = running.iter().map(|(_, p)| p.pgid).collect();
        let began = matches!(stop, Stop::Sent { .. });
        let mut skip = had_drain_signal(stop, others);
        // Nothing starts or restarts any more.
        self.deadlines.retain(|timer| !matches!(timer, Deadline::Respawn(_) | Deadline::Ready(_)));
        if !began {
            for &(index, proc) in &running {
                let own = self.cfg.commands.get(index).and_then(|s| s.stop_signal);
                let dependents = self.dependents(index, &running);
                if !dependents.is_empty() {
                    let sig = own.unwrap_or(self.cfg.drain_signal);
                    self.held.push(HeldBack { index, proc, sig, dependents });
                } else if let Some(sig) = own {
                    self.out.push(Effect::Send { to: self.target(proc), sig });
                    skip.push(self.own_stop(proc));
                }
            }
        }
        State::Gone { status, groups, skip, main: decides }
    }

    fn workload_exited(
        &mut self,
        main: Proc,
        others: Vec<Member>,
        on_success: OnSuccess,
        stop: Stop,
        code: i32,
        now: Instant,
    ) -> State {
        match (code, &stop, on_success) {
            (0, Stop::NotAsked, OnSuccess::WaitAll) => {
                self.log(Level::Info, "--wait-all: staying until the command's descendants are gone".into());
                State::Orphans { stop }
            }
            (0, Stop::NotAsked, OnSuccess::FollowPidfile) => {
                self.out.push(Effect::ReadPidfile);
                self.deadlines.set(Deadline::PidfilePoll, Some(now));
                self.deadlines.set(Deadline::PidfileGiveUp, now.checked_add(self.cfg.drain));
                State::AwaitingPidfile { stop, reaped: Vec::new() }
            }
            _ => {
                if !others.is_empty() {
                    let running = self.running(None, &others);
                    self.log(
                        Level::Info,
                        format!("{} exited: stopping {}", self.name(self.main_index()), self.list(&running)),
                    );
                }
                // The main command's group: its leftovers are the workload's too.
                with_group(self.shut_down(code, None, &others, stop, None), main.pgid)
            }
        }
    }

    fn on_batch_done(&mut self, state: State, children_left: bool, now: Instant) -> State {
        match state {
            // Stopped before the main command started, no command running (a helper waiting
            // to restart, which it never will now): the workload is over.
            State::Running { main: None, ref others, stop: Stop::Sent { .. }, .. } if others.is_empty() => {
                let State::Running { stop, .. } = state else { return state };
                let gone = self.shut_down(0, None, &[], stop, None);
                self.on_batch_done(gone, children_left, now)
            }
            State::Gone { status, groups, skip, main } if children_left => {
                self.start_drain(status, groups, skip, main, now)
            }
            State::Draining { .. } if children_left => {
                self.out.push(Effect::ListChildren);
                state
            }
            // Something forked between our scan and the SIGKILL: keep killing until none is left.
            State::Killing { ref groups, .. } if children_left => {
                self.out.push(Effect::SignalLeftovers {
                    sig: libc::SIGKILL,
                    groups: groups.clone(),
                    record: false,
                    skip: Vec::new(),
                });
                state
            }
            _ if children_left => state,
            // Waiting for a prerequisite to become ready, nothing running: its timeout decides.
            State::Pausing | State::Running { main: None, .. } => state,
            State::Running { main: Some(main), .. } => {
                // Only a followed daemon can vanish like this: its own parent reaped it.
                self.log(
                    Level::Error,
                    format!(
                        "followed pid {} is gone and was reaped by another process: its exit status is unknown",
                        main.pid
                    ),
                );
                State::Exit(1)
            }
            State::Orphans { .. } => State::Exit(0),
            // Nothing alive can be followed any more: one last look decides (the daemon may have
            // written its pid and exited, and been reaped by us, before we read the file).
            State::AwaitingPidfile { .. } => {
                self.out.push(Effect::ReadPidfile);
                self.deadlines.set(Deadline::PidfilePoll, Some(now));
                self.deadlines.set(Deadline::PidfileGiveUp, Some(now));
                state
            }
            State::Gone { status, .. } | State::Draining { status, .. } | State::Killing { status, .. } => {
                State::Exit(status)
            }
            State::Exit(code) => State::Exit(code),
        }
    }

    fn start_drain(
        &mut self,
        status: i32,
        groups: Vec<i32>,
        skip: Vec<Target>,
        main: Option<i32>,
        now: Instant,
    ) -> State {
        let drain = self.cfg.drain;
        if drain.is_zero() {
            self.out.push(Effect::SignalLeftovers {
                sig: libc::SIGKILL,
                groups: groups.clone(),
                record: true,
                skip: Vec::new(),
            });
            return self.killing(status, groups, main, now);
        }
        let sig = self.cfg.drain_signal;
        // A prerequisite held back waits for its dependents with its whole group.
        let mut skip = skip;
        skip.extend(self.held.iter().map(|h| Target::Group(h.proc.pgid)));
        self.debug(|| format!("draining leftovers: {} now, SIGKILL in {}", signals::name(sig), Human(drain)));
        self.out.push(Effect::SignalLeftovers { sig, groups: groups.clone(), record: true, skip });
        self.deadlines.set(Deadline::Drain, now.checked_add(drain));
        State::Draining { status, groups, signalled: Vec::new(), main }
    }

    /// Everything got SIGKILL at `now`: `KILL_WAIT` for the last children.
    fn killing(&mut self, status: i32, groups: Vec<i32>, main: Option<i32>, now: Instant) -> State {
        // Nothing is held back from a SIGKILL.
        self.held.clear();
        self.deadlines.set(Deadline::KillWait, now.checked_add(KILL_WAIT));
        State::Killing { status, groups, main }
    }

    fn on_children(&mut self, state: State, children: Vec<Id>) -> State {
        let State::Draining { status, groups, mut signalled, main } = state else {
            return state;
        };
        for child in children {
            if let Err(at) = signalled.binary_search(&child) {
                self.debug(|| format!("pid {} was orphaned during the drain", child.pid));
                self.out.push(Effect::Send { to: Target::Pid(child.pid), sig: self.cfg.drain_signal });
                signalled.insert(at, child);
            }
        }
        State::Draining { status, groups, signalled, main }
    }

    fn on_timer(&mut self, state: State, now: Instant) -> State {
        let deadlines = &self.deadlines;
        let due = |timer| deadlines.expired(timer, now);
        let (kill_due, drain_due, look_due, wait_due, exit_due) = (
            due(Deadline::KillAfter),
            due(Deadline::Drain),
            due(Deadline::PidfilePoll) || due(Deadline::PidfileGiveUp),
            due(Deadline::KillWait),
            due(Deadline::PauseExit),
        );
        if stop_of(&state) == Some(&Stop::Held) && due(Deadline::StopDelay) {
            self.log(Level::Info, "--stop-delay is over: forwarding TERM".into());
            self.deadlines.stop(Deadline::StopDelay);
            let reached = self.send_rewritten(&state, libc::SIGTERM);
            let stop = self.forwarded(now, Stop::Held, self.rewritten(libc::SIGTERM), reached);
            return with_stop(state, stop);
        }
        match state {
            State::Pausing if exit_due => {
                self.log(Level::Info, "--stop-delay is over: exiting".into());
                State::Exit(0)
            }
            State::Running { main, others, .. } if kill_due => {
                self.fire_kill_after();
                let groups: Vec<i32> = self.running(main, &others).iter().map(|(_, p)| p.pgid).collect();
                for &g in &groups {
                    self.out.push(Effect::Send { to: Target::Group(g), sig: libc::SIGKILL });
                }
                self.out.push(Effect::SignalLeftovers {
                    sig: libc::SIGKILL,
                    groups: groups.clone(),
                    record: true,
                    skip: Vec::new(),
                });
                self.killing(128 + libc::SIGKILL, groups, main.map(|m| m.pid), now)
            }
            State::Running { main, others, on_success, stop } => {
                if self.deadlines.expired(Deadline::FollowedCheck, now) {
                    self.deadlines.set(Deadline::FollowedCheck, now.checked_add(FOLLOWED_CHECK));
                }
                if let Some(&index) = self.deadlines.take_due_ready(now).first() {
                    let within = self.cfg.commands.get(index).map_or(Duration::ZERO, |s| s.ready_timeout);
                    let why = format!("{} never became ready within {}", self.name(index), Human(within));
                    self.log(Level::Error, why.clone());
                    self.failure = Some(why);
                    let decides = main.filter(|_| stop == Stop::Held).map(|m| m.pid);
                    return self.shut_down(1, main, &others, stop, decides);
                }
                for index in self.deadlines.take_due_respawns(now) {
                    let delay = self.backoff.get(index).copied().unwrap_or_default();
                    self.out.push(Effect::Start { index, delay });
                }
                State::Running { main, others, on_success, stop }
            }
            State::Orphans { .. } | State::AwaitingPidfile { .. } if kill_due => {
                self.fire_kill_after();
                self.out.push(Effect::SignalLeftovers {
                    sig: libc::SIGKILL,
                    groups: Vec::new(),
                    record: true,
                    skip: Vec::new(),
                });
                self.killing(128 + libc::SIGKILL, Vec::new(), None, now)
            }
            // The give-up deadline is one last look too: a pidfile found then is followed.
            State::AwaitingPidfile { .. } if look_due => {
                self.out.push(Effect::ReadPidfile);
                state
            }
            State::Draining { status, groups, main, .. } if kill_due || drain_due => {
                if kill_due {
                    self.fire_kill_after();
                } else {
                    let drain = self.cfg.drain;
                    self.log(
                        Level::Warn,
                        format!("leftovers still running after --drain {}: SIGKILL", Human(drain)),
                    );
                }
                let effect = Effect::SignalLeftovers {
                    sig: libc::SIGKILL,
                    groups: groups.clone(),
                    record: false,
                    skip: Vec::new(),
                };
                self.out.push(effect);
                self.killing(status, groups, main, now)
            }
            State::Killing { status, .. } if wait_due => {
                self.log(
                    Level::Error,
                    format!(
                        "children still there {} after SIGKILL (/proc could not list them, or the kill was denied): exiting without them",
                        Human(KILL_WAIT)
                    ),
                );
                State::Exit(status)
            }
            other => other,
        }
    }

    fn fire_kill_after(&mut self) {
        self.killed_after = true;
        let after = self.cfg.kill_after.unwrap_or_default();
        self.log(
            Level::Warn,
            format!("still running {} after the stop signal (--kill-after): SIGKILL", Human(after)),
        );
    }

    fn on_pidfile(
        &mut self,
        state: State,
        found: Result<Proc, (Option<i32>, String)>,
        now: Instant,
    ) -> State {
        let State::AwaitingPidfile { stop, reaped } = state else { return state };
        match found {
            Ok(main) => {
                State::Running { main: Some(main), others: Vec::new(), on_success: OnSuccess::Done, stop }
            }
            // The daemon wrote its pid and exited before we looked: we reaped it already.
            Err((Some(pid), _)) if reaped.iter().any(|&(p, _)| p == pid) => {
                let code = reaped.iter().find(|&&(p, _)| p == pid).map_or(1, |&(_, c)| c);
                self.log(Level::Info, format!("followed pid {pid} had already exited with status {code}"));
                State::Gone { status: code, groups: Vec::new(), skip: Vec::new(), main: None }
            }
            Err((_, why)) if self.deadlines.expired(Deadline::PidfileGiveUp, now) => {
                // `why` names the setting and its file: `--follow-pidfile d.pid: …`.
                self.log(Level::Error, why);
                self.start_drain(1, Vec::new(), Vec::new(), None, now)
            }
            Err(_) => {
                self.deadlines.set(Deadline::PidfilePoll, now.checked_add(PIDFILE_POLL));
                State::AwaitingPidfile { stop, reaped }
            }
        }
    }

    /// Command `index` started, or could not. `delay`: the back-off that led to this start,
    /// kept for the next exit's.
    fn on_started(
        &mut self,
        state: State,
        index: usize,
        delay: Duration,
        result: Result<Proc, (i32, String)>,
        now: Instant,
    ) -> State {
        // Shutdown began meanwhile: a started command is one more leftover to drain.
        let State::Running { mut main, mut others, on_success, stop } = state else { return state };
        let first = self.phase.get(index) == Some(&Phase::Starting);
        let role = self.role(index);
        match result {
            Ok(proc) => {
                if first {
                    let ready = self.cfg.commands.get(index).is_some_and(|s| s.ready.is_some());
                    self.phase[index] = if ready { Phase::Up } else { Phase::Ready };
                }
                match role {
                    Role::Main => main = Some(proc),
                    _ => others.push(Member { index, proc, started: Some(now), delay }),
                }
            }
            Err((_, why)) if matches!(role, Role::Respawn { .. }) => {
                let delay = next_delay(delay, Duration::ZERO);
                let name = self.name(index);
                self.log(Level::Error, format!("cannot restart {name}: {why}; next try in {}", Human(delay)));
                self.restart_in(index, delay, now);
            }
            // A command the workload needs (essential, or others wait for it) ends it with the
            // code that says why it could not start.
            Err((code, why)) => {
                let waited_for = self.cfg.commands.iter().any(|s| s.after.contains(&index));
                self.log(Level::Error, format!("cannot start {}: {why}", self.name(index)));
                if let (Role::Also { essential: false }, false, Some(phase)) =
                    (&role, waited_for, self.phase.get_mut(index))
                {
                    *phase = Phase::Never;
                } else {
                    self.failure = Some(format!("{} could not start: {why}", self.name(index)));
                    // No stop was asked (nothing starts after one): this code is reaper's.
                    return self.shut_down(code, main, &others, stop, None);
                }
            }
        }
        State::Running { main, others, on_success, stop }
    }
}

/// Whom a signal for `proc` goes to: the process, or its group with -g.
fn target(cfg: &Config, proc: Proc) -> Target {
    if cfg.process_group { Target::Group(proc.pgid) } else { Target::Pid(proc.pid) }
}

/// `sig` to every command (each one's group with -g) while they run, else to the leftovers.
/// Apart from the machine's methods, to be called with its state borrowed where it lies.
#[inline(always)] // into pass_on, the path of every forwarded signal
fn forward(cfg: &Config, state: &State, sig: i32, out: &mut Vec<Effect>) {
    match state {
        State::Running { main, others, .. } => {
            // The main command first, as `running` lists them (without collecting them).
            if let Some(proc) = main {
                out.push(Effect::Send { to: target(cfg, *proc), sig });
            }
            for member in others {
                out.push(Effect::Send { to: target(cfg, member.proc), sig });
            }
        }
        State::Gone { groups, .. } | State::Draining { groups, .. } => {
            out.push(Effect::SignalLeftovers { sig, groups: groups.clone(), record: false, skip: Vec::new() })
        }
        _ => out.push(Effect::SignalLeftovers { sig, groups: Vec::new(), record: false, skip: Vec::new() }),
    }
}

/// The delay before restarting a helper that ran for `ran` after a delay of `last`.
fn next_delay(last: Duration, ran: Duration) -> Duration {
    if last.is_zero() || ran >= RESPAWN_RESET { RESPAWN_FIRST } else { (last * 2).min(RESPAWN_MAX) }
}

/// Who must not get the drain signal again, having had it as the stop signal: the commands
/// still running, `others` (not a reaped command's pid: it may be reused already), or with -g
/// every member of the groups it went to, an exited command's included.
fn had_drain_signal(stop: Stop, others: &[Member]) -> Vec<Target> {
    let running = |t: &Target| match t {
        Target::Pid(pid) => others.iter().any(|m| m.proc.pid == *pid),
        Target::Group(_) => true,
    };
    match stop {
        Stop::Sent { reached } => reached.into_iter().filter(running).collect(),
        _ => Vec::new(),
    }
}

/// Where the stop stands in the states that supervise a workload.
fn stop_of(state: &State) -> Option<&Stop> {
    match state {
        State::Running { stop, .. } | State::Orphans { stop } | State::AwaitingPidfile { stop, .. } => {
            Some(stop)
        }
        _ => None,
    }
}

/// `state` (`Gone`) with the group of the command that ended first among its groups: that
/// command's leftovers are the workload's too.
fn with_group(mut state: State, pgid: i32) -> State {
    if let State::Gone { groups, .. } = &mut state {
        groups.insert(0, pgid);
    }
    state
}

/// Whether command `index` is the main one (`cfg.commands` can be empty in tests: index 0).
fn is_main(cfg: &Config, index: usize) -> bool {
    cfg.commands.get(index).map_or(index == 0, |s| s.role == Role::Main)
}

fn with_stop(mut state: State, new: Stop) -> State {
    if let State::Running { stop, .. } | State::Orphans { stop } | State::AwaitingPidfile { stop, .. } =
        &mut state
    {
        *stop = new;
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_log_lines_read_as_users_write_them() {
        let human = |ms| Human(Duration::from_millis(ms)).to_string();
        assert_eq!(human(0), "0ms");
        assert_eq!(human(100), "100ms");
        assert_eq!(human(999), "999ms");
        assert_eq!(human(1000), "1s");
        assert_eq!(human(1500), "1.5s");
        assert_eq!(human(1050), "1.05s");
        assert_eq!(human(1001), "1.001s");
        assert_eq!(human(90_000), "90s");
        assert_eq!(Human(Duration::from_secs(u64::MAX)).to_string(), "18446744073709551615s");
        assert_eq!(Human(Duration::new(u64::MAX, 5_000_000)).to_string(), "18446744073709551615.005s");
        assert_eq!(Human(Duration::from_micros(500)).to_string(), "500µs");
        assert_eq!(Human(Duration::from_nanos(7)).to_string(), "7ns");
        assert_eq!(
            Human(Duration::from_micros(1_999_999)).to_string(),
            "1.999s",
            "truncated to the millisecond"
        );
    }
    use Effect::*;
    use Event::*;

    const TERM: i32 = libc::SIGTERM;
    const KILL: i32 = libc::SIGKILL;
    const MAIN: Proc = Proc { pid: 10, pgid: 10 };

    fn cfg() -> Config {
        Config {
            drain: Duration::from_secs(3),
            drain_signal: TERM,
            debug_logs: true,
            commands: vec![command::Settings::new("cmd".into(), Role::Main)],
            ..Config::default()
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// The effects on processes: without the log lines and what is said upward.
    fn acts(effects: Vec<Effect>) -> Vec<Effect> {
        effects.into_iter().filter(|e| !matches!(e, Log(..) | NotifyUp(_))).collect()
    }

    fn exited(code: i32) -> Event {
        Reaped { pid: MAIN.pid, ended: Ended::Exited(code), name: None }
    }

    fn other_reaped(pid: i32) -> Event {
        Reaped { pid, ended: Ended::Exited(0), name: None }
    }

    fn id(pid: i32) -> Id {
        Id { pid, start: pid as u64 * 100 }
    }

    fn leftovers(sig: i32, groups: Vec<i32>, record: bool) -> Effect {
        SignalLeftovers { sig, groups, record, skip: vec![] }
    }

    struct T {
        m: Machine,
        now: Instant,
    }

    impl T {
        fn new(cfg: Config) -> T {
            T::started(cfg, vec![(0, MAIN)])
        }
        fn pause(cfg: Config) -> T {
            T::started(Config { commands: Vec::new(), ..cfg }, Vec::new())
        }
        /// As the driver does: the machine, and its first wake-up before the first sleep.
        fn started(cfg: Config, started: Vec<(usize, Proc)>) -> T {
            let mut t = T { m: Machine::new(cfg, started), now: Instant::now() };
            t.m.handle(Timer, t.now);
            t
        }
        fn at(&mut self, after: Duration, e: Event) -> Vec<Effect> {
            let now = self.now + after;
            acts(self.m.handle(e, now))
        }
        fn go(&mut self, e: Event) -> Vec<Effect> {
            self.at(Duration::ZERO, e)
        }
        /// The end of the reap batch, tried on copies of the machine: the effects with children
        /// left (the drain starting, the SIGKILL repeated, …) and reaper's exit code with none.
        fn batch_end(&self) -> (Vec<Effect>, Option<i32>) {
            let mut left = self.m.clone();
            let effects = acts(left.handle(BatchDone { children_left: true }, self.now));
            let mut none = self.m.clone();
            none.handle(BatchDone { children_left: false }, self.now);
            (effects, none.exit_code())
        }
    }

    #[test]
    fn pause_exits_0_on_each_stop_signal_and_ignores_the_rest() {
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT] {
            let mut t = T::pause(cfg());
            assert_eq!(t.go(Signal(libc::SIGHUP)), vec![]);
            assert_eq!(t.go(BatchDone { children_left: false }), vec![]);
            assert_eq!(t.m.exit_code(), None);
            assert_eq!(t.m.next_deadline(), None);
            assert_eq!(t.go(Signal(sig)), vec![]);
            assert_eq!(t.m.exit_code(), Some(0));
        }
    }

    #[test]
    fn forwards_to_the_command_its_group_or_rewritten() {
        let mut t = T::new(cfg());
        assert_eq!(t.go(Signal(libc::SIGUSR1)), vec![Send { to: Target::Pid(10), sig: libc::SIGUSR1 }]);
        let mut t = T::new(Config { process_group: true, ..cfg() });
        assert_eq!(t.go(Signal(libc::SIGHUP)), vec![Send { to: Target::Group(10), sig: libc::SIGHUP }]);
        let rewrite = vec![(TERM, libc::SIGQUIT), (libc::SIGWINCH, 0)];
        let mut t = T::new(Config { rewrite, kill_after: Some(secs(1)), ..cfg() });
        assert_eq!(t.go(Signal(libc::SIGWINCH)), vec![]);
        assert_eq!(t.m.deadline(Deadline::KillAfter), None, "not a stop");
        assert_eq!(t.go(Signal(TERM)), vec![Send { to: Target::Pid(10), sig: libc::SIGQUIT }]);
        // A rewritten stop signal is still a stop.
        assert_eq!(t.m.deadline(Deadline::KillAfter), Some(t.now + secs(1)));
    }

    #[test]
    fn a_stop_arms_kill_after_once() {
        let mut t = T::new(Config { kill_after: Some(secs(5)), ..cfg() });
        assert_eq!(t.go(Signal(libc::SIGUSR1)).len(), 1);
        assert_eq!(t.m.next_deadline(), None, "no timer before a stop");
        t.go(Signal(TERM));
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(5)));
        t.at(secs(2), Signal(libc::SIGINT));
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(5)), "a second stop does not move it");
        assert_eq!(t.at(secs(4), Timer), vec![]);
        assert_eq!(
            t.at(secs(5), Timer),
            vec![Send { to: Target::Group(10), sig: KILL }, leftovers(KILL, vec![10], true)]
        );
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(5) + KILL_WAIT));
        assert_eq!(t.m.deadline(Deadline::KillWait), Some(t.now + secs(5) + KILL_WAIT));
        assert_eq!(t.batch_end(), (vec![leftovers(KILL, vec![10], false)], Some(137)));
        t.go(Reaped { pid: 10, ended: Ended::Signaled(KILL), name: None });
        t.go(BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(137));
    }

    #[test]
    fn without_kill_after_a_stop_arms_nothing() {
        let mut t = T::new(cfg());
        assert_eq!(t.go(Signal(TERM)), vec![TO_MAIN(TERM)]);
        assert_eq!(t.m.next_deadline(), None);
        t.go(exited(143));
        assert_eq!(t.m.next_deadline(), None);
        assert_eq!(t.batch_end(), (vec![leftovers(TERM, vec![10], true)], Some(143)));
    }

    #[test]
    fn exit_with_nothing_left_skips_the_drain() {
        let mut t = T::new(cfg());
        assert_eq!(t.go(exited(3)), vec![]);
        assert_eq!(t.m.next_deadline(), None);
        assert_eq!(t.batch_end(), (vec![leftovers(TERM, vec![10], true)], Some(3)));
        assert_eq!(t.go(BatchDone { children_left: false }), vec![]);
        assert_eq!(t.m.exit_code(), Some(3));
    }

    #[test]
    fn exit_with_leftovers_drains_then_kills_at_the_deadline() {
        let mut t = T::new(cfg());
        t.go(exited(0));
        assert_eq!(t.go(BatchDone { children_left: true }), vec![leftovers(TERM, vec![10], true)]);
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(3)));
        t.go(Signalled(vec![id(30), id(20)]));
        assert_eq!(t.at(secs(2), Timer), vec![]);
        assert_eq!(t.at(secs(3), Timer), vec![leftovers(KILL, vec![10], false)]);
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(3) + KILL_WAIT));
        assert_eq!(t.m.deadline(Deadline::Drain), None, "fired");
        // Forked between the scan and the SIGKILL: killed again on every batch until none is left.
        assert_eq!(t.go(BatchDone { children_left: true }), vec![leftovers(KILL, vec![10], false)]);
        t.go(BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(0));
    }

    #[test]
    fn drain_zero_kills_at_once() {
        let mut t = T::new(Config { drain: Duration::ZERO, ..cfg() });
        t.go(exited(2));
        assert_eq!(t.go(BatchDone { children_left: true }), vec![leftovers(KILL, vec![10], true)]);
        assert_eq!(t.m.next_deadline(), Some(t.now + KILL_WAIT));
        assert_eq!(t.batch_end(), (vec![leftovers(KILL, vec![10], false)], Some(2)));
    }

    #[test]
    fn signals_during_the_drain_go_to_the_leftovers() {
        let mut t = T::new(cfg());
        t.go(exited(0));
        t.go(BatchDone { children_left: true });
        assert_eq!(t.go(Signal(libc::SIGUSR1)), vec![leftovers(libc::SIGUSR1, vec![10], false)]);
    }

    /// Bug 3: a process orphaned during the drain gets the drain signal once, whether it
    /// was signalled in the first pass (as a grandchild) or arrives later.
    #[test]
    fn each_leftover_gets_the_drain_signal_exactly_once() {
        let mut t = T::new(cfg());
        t.go(exited(0));
        t.go(BatchDone { children_left: true });
        t.go(Signalled(vec![id(20), id(21)]));
        // 21 was a grandchild: orphaned to reaper now, it was signalled already.
        assert_eq!(t.go(Children(vec![id(20), id(21)])), vec![]);
        // 22 was forked after the scan: it gets the signal when it arrives, once.
        assert_eq!(t.go(Children(vec![id(21), id(22)])), vec![Send { to: Target::Pid(22), sig: TERM }]);
        assert_eq!(t.go(Children(vec![id(21), id(22)])), vec![]);
        // A reaped pid may be reused by a new process: that one is signalled.
        t.go(other_reaped(20));
        assert_eq!(
            t.go(Children(vec![Id { pid: 20, start: 9999 }])),
            vec![Send { to: Target::Pid(20), sig: TERM }]
        );
        // The same pid with another start time is another process.
        assert_eq!(
            t.go(Children(vec![Id { pid: 21, start: 1 }])),
            vec![Send { to: Target::Pid(21), sig: TERM }]
        );
        assert_eq!(t.go(BatchDone { children_left: true }), vec![ListChildren]);
    }

    /// Bug 4: the command's group travels with every leftover signal, so the driver can fall
    /// back to it when /proc cannot list descendants.
    #[test]
    fn the_group_reaches_every_leftover_signal() {
        let mut t = T::new(Config { kill_after: Some(secs(1)), ..cfg() });
        t.go(Signal(TERM));
        t.go(exited(1));
        assert_eq!(t.go(BatchDone { children_left: true }), vec![leftovers(TERM, vec![10], true)]);
        assert_eq!(t.go(Signal(libc::SIGHUP)), vec![leftovers(libc::SIGHUP, vec![10], false)]);
        assert_eq!(t.at(secs(1), Timer), vec![leftovers(KILL, vec![10], false)]);
    }

    /// Bug 2 (second half): the kill-after deadline survives the command's exit and caps
    /// the drain.
    #[test]
    fn kill_after_caps_the_drain() {
        let mut t = T::new(Config { kill_after: Some(secs(1)), drain: secs(5), ..cfg() });
        t.go(Signal(TERM));
        t.go(exited(0));
        t.go(BatchDone { children_left: true });
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(1)));
        assert_eq!(t.at(secs(1), Timer), vec![leftovers(KILL, vec![10], false)]);
        t.go(BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(0), "the command's own status, not 137");
    }

    /// Bug 6: the kill-after deadline and the command's exit in the same wake-up: its real
    /// status wins.
    #[test]
    fn real_status_wins_over_a_simultaneous_kill_after() {
        let mut t = T::new(Config { kill_after: Some(secs(1)), ..cfg() });
        t.go(Signal(TERM));
        t.at(secs(1), Timer);
        t.go(exited(0));
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(1) + KILL_WAIT));
        assert_eq!(t.batch_end(), (vec![leftovers(KILL, vec![10], false)], Some(0)));
        t.go(BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(0));
    }

    #[test]
    fn wait_all_follows_the_orphans() {
        let mut t = T::new(Config { on_success: OnSuccess::WaitAll, kill_after: Some(secs(2)), ..cfg() });
        t.go(exited(0));
        assert_eq!(t.m.next_deadline(), None);
        assert_eq!(t.go(BatchDone { children_left: true }), vec![]);
        assert_eq!(t.m.exit_code(), None, "staying while descendants are there");
        assert_eq!(t.go(Signal(TERM)), vec![leftovers(TERM, vec![], false)]);
        assert_eq!(t.at(secs(2), Timer), vec![leftovers(KILL, vec![], true)]);
        t.go(BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(137));

        let mut t = T::new(Config { on_success: OnSuccess::WaitAll, ..cfg() });
        t.go(exited(0));
        t.go(BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(0));
    }

    #[test]
    fn wait_all_or_follow_only_after_a_clean_exit_without_stop() {
        for on_success in [OnSuccess::WaitAll, OnSuccess::FollowPidfile] {
            let mut t = T::new(Config { on_success, ..cfg() });
            assert_eq!(t.go(exited(1)), vec![], "{on_success:?}");
            assert_eq!(t.batch_end(), (vec![leftovers(TERM, vec![10], true)], Some(1)), "{on_success:?}");
            let mut t = T::new(Config { on_success, ..cfg() });
            t.go(Signal(TERM));
            assert_eq!(t.go(exited(0)), vec![], "{on_success:?}");
            assert_eq!(t.batch_end(), (vec![leftovers(TERM, vec![10], true)], Some(0)), "{on_success:?}");
        }
    }

    fn follow() -> T {
        let mut t = T::new(Config { on_success: OnSuccess::FollowPidfile, ..cfg() });
        assert_eq!(t.go(exited(0)), vec![ReadPidfile]);
        t
    }

    const DAEMON: Proc = Proc { pid: 40, pgid: 39 };

    #[test]
    fn follow_pidfile_polls_then_follows_the_daemon() {
        let mut t = follow();
        assert_eq!(t.go(Pidfile(Err((None, "missing".into())))), vec![]);
        assert_eq!(t.m.next_deadline(), Some(t.now + PIDFILE_POLL));
        assert_eq!(t.at(PIDFILE_POLL, Timer), vec![ReadPidfile]);
        t.go(Pidfile(Ok(DAEMON)));
        assert_eq!(t.m.next_deadline(), None, "no more looks");
        assert_eq!(t.go(Signal(TERM)), vec![Send { to: Target::Pid(40), sig: TERM }]);
        // The followed daemon's exit 0 ends the workload; nothing is followed twice.
        assert_eq!(t.go(Reaped { pid: 40, ended: Ended::Exited(0), name: None }), vec![]);
        assert_eq!(t.batch_end(), (vec![leftovers(TERM, vec![39], true)], Some(0)));
    }

    #[test]
    fn follow_pidfile_gives_up_at_the_drain_deadline() {
        let mut t = follow();
        assert_eq!(t.m.deadline(Deadline::PidfileGiveUp), Some(t.now + secs(3)));
        assert_eq!(t.at(secs(2), Pidfile(Err((None, "missing".into())))), vec![]);
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(2) + PIDFILE_POLL));
        assert_eq!(
            t.at(secs(3), Pidfile(Err((Some(99), "not ours".into())))),
            vec![leftovers(TERM, vec![], true)]
        );
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(6)), "the drain's");
        t.go(BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(1));
    }

    /// Orphans reaped during the wait are remembered up to a bound; the latest exits, the
    /// daemon's among them, are the ones kept.
    #[test]
    fn exits_remembered_while_awaiting_the_pidfile_are_bounded() {
        let mut t = follow();
        for pid in 100..100 + REAPED_KEPT as i32 {
            t.go(Reaped { pid, ended: Ended::Exited(pid % 7), name: None });
        }
        t.go(Reaped { pid: 40, ended: Ended::Exited(5), name: None });
        // The file names `pid`, which is not running: its remembered status, if any, is reaper's.
        let named = |t: &T, pid| {
            let mut m = t.m.clone();
            m.handle(Pidfile(Err((Some(pid), "not ours".into()))), t.now);
            m.handle(BatchDone { children_left: false }, t.now);
            m.exit_code()
        };
        assert_eq!(named(&t, 100), None, "the oldest went");
        assert_eq!(named(&t, 101), Some(101 % 7));
        assert_eq!(named(&t, 40), Some(5));
    }

    /// Bug 1: the followed pid is a grandchild, reaped by its own parent; once no child is
    /// left reaper exits instead of sleeping for ever.
    #[test]
    fn followed_grandchild_reaped_elsewhere_ends_reaper() {
        let mut t = follow();
        t.go(Pidfile(Ok(DAEMON)));
        t.go(other_reaped(38)); // its parent, our child
        assert_eq!(t.go(BatchDone { children_left: false }), vec![]);
        assert_eq!(t.m.exit_code(), Some(1));
    }

    /// Bug 2: a stop while waiting for the pidfile keeps --kill-after armed for the daemon.
    #[test]
    fn kill_after_armed_while_awaiting_the_pidfile_survives_adoption() {
        let mut t = T::new(Config {
            on_success: OnSuccess::FollowPidfile,
            kill_after: Some(secs(1)),
            drain: secs(5),
            ..cfg()
        });
        t.go(exited(0));
        assert_eq!(t.go(Signal(TERM)), vec![leftovers(TERM, vec![], false)]);
        t.go(Pidfile(Ok(DAEMON)));
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(1)));
        assert_eq!(
            t.at(secs(1), Timer),
            vec![Send { to: Target::Group(39), sig: KILL }, leftovers(KILL, vec![39], true)]
        );
        t.go(Reaped { pid: 40, ended: Ended::Signaled(KILL), name: None });
        t.go(BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(137));
    }

    #[test]
    fn kill_after_fires_while_still_awaiting_the_pidfile() {
        let mut t =
            T::new(Config { on_success: OnSuccess::FollowPidfile, kill_after: Some(secs(1)), ..cfg() });
        t.go(exited(0));
        t.go(Signal(TERM));
        assert_eq!(t.at(secs(1), Timer), vec![leftovers(KILL, vec![], true)]);
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(1) + KILL_WAIT));
        assert_eq!(t.batch_end(), (vec![leftovers(KILL, vec![], false)], Some(137)));
    }

    #[test]
    fn a_daemon_that_exited_before_we_looked_gives_its_status() {
        let mut t = follow();
        t.go(Reaped { pid: 40, ended: Ended::Exited(4), name: None });
        // Nothing left: one last look at the pidfile decides.
        assert_eq!(t.go(BatchDone { children_left: false }), vec![ReadPidfile]);
        t.go(Pidfile(Err((Some(40), "not a live descendant".into()))));
        assert_eq!(t.m.next_deadline(), None);
        assert_eq!(t.batch_end(), (vec![leftovers(TERM, vec![], true)], Some(4)));
        t.go(BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(4));
    }

    #[test]
    fn nothing_left_and_no_daemon_named_is_an_error() {
        let mut t = follow();
        t.go(BatchDone { children_left: false });
        assert_eq!(t.go(Pidfile(Err((None, "missing".into())))), vec![leftovers(TERM, vec![], true)]);
        t.go(BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(1));
    }

    #[test]
    fn replies_out_of_place_change_nothing() {
        let mut t = T::new(cfg());
        for e in [Signalled(vec![id(1)]), Children(vec![id(1)]), Pidfile(Ok(DAEMON)), Timer, other_reaped(77)]
        {
            assert_eq!(t.go(e), vec![]);
            assert_eq!(t.m.next_deadline(), None);
            assert_eq!(t.m.transitions(), 0);
        }
        // Still running the command, not the daemon of the stray reply.
        assert_eq!(t.go(Signal(libc::SIGHUP)), vec![TO_MAIN(libc::SIGHUP)]);
        assert!(!t.m.workload_ended());
        assert_eq!(t.batch_end().0, vec![]);
    }

    #[test]
    fn warn_on_reap_names_the_process() {
        let mut t = T::new(Config { warn_on_reap: true, ..cfg() });
        let logs = t.m.handle(Reaped { pid: 5, ended: Ended::Exited(0), name: Some("sh".into()) }, t.now);
        assert_eq!(logs, vec![Log(Level::Warn, "reaped pid 5 (sh): exited with status 0".into())]);
        let mut t = T::new(cfg());
        let logs = t.m.handle(Reaped { pid: 5, ended: Ended::Exited(0), name: None }, t.now);
        assert_eq!(logs, vec![Log(Level::Debug, "reaped pid 5: exited with status 0".into())]);
    }

    const PHP: Proc = Proc { pid: 11, pgid: 11 };
    const LOGS: Proc = Proc { pid: 12, pgid: 12 };

    fn several(cfg: Config) -> T {
        let respawn = Role::Respawn { budget: Some(command::DEFAULT_BUDGET), done: Vec::new() };
        let commands = vec![
            command::Settings::new("nginx".into(), Role::Main),
            command::Settings::new("php-fpm".into(), Role::Also { essential: true }),
            command::Settings::new("logs".into(), respawn),
        ];
        T::started(Config { commands, ..cfg }, vec![(0, MAIN), (1, PHP), (2, LOGS)])
    }

    #[test]
    fn every_command_gets_every_forwarded_signal() {
        let mut t = several(cfg());
        let to = |p: Proc| Send { to: Target::Pid(p.pid), sig: libc::SIGHUP };
        assert_eq!(t.go(Signal(libc::SIGHUP)), vec![to(MAIN), to(PHP), to(LOGS)]);
        let mut t = several(Config { process_group: true, ..cfg() });
        let to = |p: Proc| Send { to: Target::Group(p.pgid), sig: libc::SIGHUP };
        assert_eq!(t.go(Signal(libc::SIGHUP)), vec![to(MAIN), to(PHP), to(LOGS)]);
    }

    #[test]
    fn an_also_command_exiting_first_decides_the_status() {
        let mut t = several(cfg());
        let effects = t.m.handle(Reaped { pid: 11, ended: Ended::Exited(5), name: None }, t.now);
        let logs: Vec<Effect> = effects.into_iter().filter(|e| !matches!(e, NotifyUp(_))).collect();
        assert_eq!(
            logs,
            vec![Log(
                Level::Info,
                "php-fpm (pid 11) exited with status 5: stopping nginx (pid 10), logs (pid 12)".into()
            )]
        );
        assert_eq!(t.m.next_deadline(), None);
        assert_eq!(t.batch_end().1, Some(5));
        assert_eq!(t.go(BatchDone { children_left: true }), vec![leftovers(TERM, vec![10, 12], true)]);
        t.go(exited(0));
        t.go(BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(5));
    }

    #[test]
    fn after_a_stop_the_main_commands_status_decides() {
        let mut t = several(cfg());
        t.go(Signal(TERM));
        t.go(Reaped { pid: 11, ended: Ended::Exited(5), name: None });
        assert!(!t.m.workload_ended(), "the workload goes on");
        assert_eq!(t.batch_end().0, vec![]);
        // Without it now.
        assert_eq!(
            t.go(Signal(libc::SIGHUP)),
            vec![TO_MAIN(libc::SIGHUP), Send { to: Target::Pid(12), sig: libc::SIGHUP }]
        );
        t.go(exited(143));
        assert_eq!(t.batch_end().1, Some(143));
        // The helper got the forwarded TERM: the drain leaves it out.
        assert_eq!(
            t.go(BatchDone { children_left: true }),
            vec![SignalLeftovers {
                sig: TERM,
                groups: vec![10, 12],
                record: true,
                skip: vec![Target::Pid(12)]
            }]
        );
    }

    #[test]
    fn the_main_command_exiting_stops_the_others() {
        let mut t = several(cfg());
        t.go(exited(0));
        assert_eq!(t.batch_end(), (vec![leftovers(TERM, vec![10, 11, 12], true)], Some(0)));
    }

    #[test]
    fn kill_after_kills_every_commands_group() {
        let mut t = several(Config { kill_after: Some(secs(1)), ..cfg() });
        t.go(Signal(TERM));
        let kill = |g| Send { to: Target::Group(g), sig: KILL };
        assert_eq!(
            t.at(secs(1), Timer),
            vec![kill(10), kill(11), kill(12), leftovers(KILL, vec![10, 11, 12], true)]
        );
    }

    fn helper_exits(t: &mut T, after: Duration, pid: i32) -> Vec<Effect> {
        t.at(after, Reaped { pid, ended: Ended::Exited(1), name: None })
    }

    #[test]
    fn a_respawn_helper_is_restarted_with_a_doubling_back_off() {
        let mut t = several(cfg());
        assert_eq!(helper_exits(&mut t, secs(1), 12), vec![]);
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(1) + RESPAWN_FIRST));
        assert_eq!(t.at(secs(1), Timer), vec![], "not before the back-off");
        let spawn = Start { index: 2, delay: RESPAWN_FIRST };
        assert_eq!(t.at(secs(1) + RESPAWN_FIRST, Timer), vec![spawn.clone()]);
        assert_eq!(t.m.next_deadline(), None, "no timer while it runs");
        let again = Proc { pid: 13, pgid: 13 };
        t.at(secs(2), Started { index: 2, delay: RESPAWN_FIRST, result: Ok(again) });
        // A quick exit doubles the delay...
        helper_exits(&mut t, secs(3), 13);
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(3) + RESPAWN_FIRST * 2));
        // ...a failed start too...
        let first_retry = secs(3) + RESPAWN_FIRST * 2;
        assert_eq!(t.at(first_retry, Timer), vec![Start { index: 2, delay: RESPAWN_FIRST * 2 }]);
        t.at(
            first_retry,
            Started { index: 2, delay: RESPAWN_FIRST * 2, result: Err((127, "no such file".into())) },
        );
        let second_retry = first_retry + RESPAWN_FIRST * 4;
        assert_eq!(t.m.next_deadline(), Some(t.now + second_retry));
        assert_eq!(t.at(second_retry, Timer), vec![Start { index: 2, delay: RESPAWN_FIRST * 4 }]);
        t.at(
            second_retry,
            Started { index: 2, delay: RESPAWN_FIRST * 4, result: Ok(Proc { pid: 14, pgid: 14 }) },
        );
        // ...and a run of 10 s resets it.
        helper_exits(&mut t, second_retry + RESPAWN_RESET, 14);
        assert_eq!(t.m.next_deadline(), Some(t.now + second_retry + RESPAWN_RESET + RESPAWN_FIRST));
        assert_eq!(t.m.exit_code(), None, "a helper's exits never end reaper");
    }

    #[test]
    fn a_failed_restart_backs_off_to_at_most_30s() {
        assert_eq!(next_delay(Duration::ZERO, Duration::ZERO), RESPAWN_FIRST);
        assert_eq!(next_delay(RESPAWN_FIRST, secs(9)), RESPAWN_FIRST * 2);
        assert_eq!(next_delay(secs(20), Duration::ZERO), RESPAWN_MAX);
        assert_eq!(next_delay(secs(20), RESPAWN_RESET), RESPAWN_FIRST);
    }

    #[test]
    fn no_restart_once_shutdown_has_begun() {
        let mut t = several(cfg());
        helper_exits(&mut t, secs(1), 12);
        t.at(secs(1), Signal(TERM));
        assert_eq!(t.m.next_deadline(), None, "the pending restart is dropped");
        let mut t = several(cfg());
        t.go(Signal(TERM));
        helper_exits(&mut t, secs(1), 12);
        assert_eq!(t.m.next_deadline(), None);
        assert_eq!(t.at(secs(9), Timer), vec![], "never restarted");
        // The helper is gone from the commands signals go to.
        assert_eq!(
            t.go(Signal(libc::SIGHUP)),
            vec![TO_MAIN(libc::SIGHUP), Send { to: Target::Pid(11), sig: libc::SIGHUP }]
        );
    }

    // --- --stop-delay ---------------------------------------------------------------------

    const INT: i32 = libc::SIGINT;
    const USR1: i32 = libc::SIGUSR1;
    const TO_MAIN: fn(i32) -> Effect = |sig| Send { to: Target::Pid(10), sig };

    fn delayed(cfg: Config) -> T {
        T::new(Config { stop_delay: secs(5), ..cfg })
    }

    fn infos(effects: Vec<Effect>) -> Vec<String> {
        effects.into_iter().filter_map(|e| if let Log(Level::Info, s) = e { Some(s) } else { None }).collect()
    }

    #[test]
    fn stop_delay_holds_the_first_term_then_forwards_it_and_arms_kill_after() {
        let mut t = delayed(Config { kill_after: Some(secs(10)), ..cfg() });
        assert_eq!(t.m.next_deadline(), None, "no timer before a stop");
        let logs = t.m.handle(Signal(TERM), t.now);
        let held = Log(Level::Warn, "TERM received: forwarding in 5s (--stop-delay)".into());
        assert_eq!(logs.iter().filter(|e| !matches!(e, Log(Level::Debug, _))).collect::<Vec<_>>(), [&held]);
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(5)));
        assert_eq!(t.at(secs(4), Timer), vec![]);
        assert_eq!(t.at(secs(5), Timer), vec![TO_MAIN(TERM)]);
        // --kill-after counts from the forward, not from the TERM's receipt.
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(15)));
        assert_eq!(t.at(secs(14), Timer), vec![]);
        assert_eq!(t.at(secs(15), Timer)[0], Send { to: Target::Group(10), sig: KILL });
    }

    #[test]
    fn the_held_term_is_rewritten_when_it_goes_out() {
        let mut t = delayed(Config { rewrite: vec![(TERM, libc::SIGQUIT)], ..cfg() });
        assert_eq!(t.go(Signal(TERM)), vec![]);
        assert_eq!(t.at(secs(5), Timer), vec![TO_MAIN(libc::SIGQUIT)]);
        assert_eq!(t.m.next_deadline(), None);
    }

    #[test]
    fn other_signals_pass_at_once_during_the_delay() {
        let mut t = delayed(cfg());
        t.go(Signal(TERM));
        for sig in [USR1, libc::SIGHUP, 34 + 3] {
            assert_eq!(t.at(secs(1), Signal(sig)), vec![TO_MAIN(sig)]);
        }
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(5)), "the delay goes on");
        assert_eq!(t.at(secs(5), Timer), vec![TO_MAIN(TERM)]);
    }

    #[test]
    fn a_second_term_ends_the_delay_and_is_forwarded_at_once() {
        let mut t = delayed(Config { kill_after: Some(secs(10)), ..cfg() });
        t.go(Signal(TERM));
        assert_eq!(t.at(secs(2), Signal(TERM)), vec![TO_MAIN(TERM)]);
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(12)), "kill-after from the forward");
        assert_eq!(t.at(secs(5), Timer), vec![], "nothing left to release");
    }

    /// INT and QUIT are never delayed and end the delay; the held TERM is dropped: the command
    /// gets one stop signal, not a second one that may cut its graceful shutdown short.
    #[test]
    fn int_or_quit_end_the_delay_and_the_held_term_is_dropped() {
        for sig in [INT, libc::SIGQUIT] {
            let mut t = delayed(Config { kill_after: Some(secs(10)), ..cfg() });
            t.go(Signal(TERM));
            let effects = t.m.handle(Signal(sig), t.now + secs(1));
            assert_eq!(acts(effects.clone()), vec![TO_MAIN(sig)]);
            assert!(infos(effects).iter().any(|l| l.ends_with("the held TERM is dropped")));
            assert_eq!(t.m.next_deadline(), Some(t.now + secs(11)));
            assert_eq!(t.at(secs(5), Timer), vec![]);
            assert_eq!(t.at(secs(6), Signal(INT)), vec![TO_MAIN(INT)], "later signals pass as before");
            assert_eq!(t.m.next_deadline(), Some(t.now + secs(11)));
        }
    }

    #[test]
    fn a_stop_signal_that_rewrite_drops_does_not_end_the_delay() {
        let mut t = delayed(Config { rewrite: vec![(INT, 0)], ..cfg() });
        t.go(Signal(TERM));
        assert_eq!(t.at(secs(1), Signal(INT)), vec![]);
        assert_eq!(t.at(secs(5), Timer), vec![TO_MAIN(TERM)]);
    }

    #[test]
    fn the_command_exiting_during_the_delay_drains_at_once() {
        let mut t = delayed(Config { kill_after: Some(secs(10)), ..cfg() });
        t.go(Signal(TERM));
        t.at(secs(1), exited(3));
        assert_eq!(t.m.next_deadline(), None, "no held TERM, no --kill-after");
        assert_eq!(t.batch_end().1, Some(3));
        assert_eq!(t.at(secs(1), BatchDone { children_left: true }), vec![leftovers(TERM, vec![10], true)]);
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(4)), "--drain's deadline, no held TERM");
        t.go(BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(3));
    }

    #[test]
    fn with_wait_all_the_held_term_goes_to_the_descendants() {
        let mut t = delayed(Config { on_success: OnSuccess::WaitAll, ..cfg() });
        t.go(exited(0));
        assert_eq!(t.go(Signal(TERM)), vec![]);
        assert_eq!(t.at(secs(5), Timer), vec![leftovers(TERM, vec![], false)]);
    }

    #[test]
    fn pause_mode_exits_at_the_end_of_the_delay() {
        let mut t = T::pause(Config { stop_delay: secs(5), ..cfg() });
        assert_eq!(t.m.next_deadline(), None);
        let logs = t.m.handle(Signal(TERM), t.now);
        let held = Log(Level::Warn, "TERM received: exiting in 5s (--stop-delay)".into());
        assert_eq!(logs.iter().filter(|e| !matches!(e, Log(Level::Debug, _))).collect::<Vec<_>>(), [&held]);
        assert_eq!(t.at(secs(1), Signal(USR1)), vec![]);
        assert_eq!(t.at(secs(4), Timer), vec![]);
        assert_eq!(t.m.exit_code(), None);
        t.at(secs(5), Timer);
        assert_eq!(t.m.exit_code(), Some(0));
        // Another stop signal during the delay exits at once.
        for sig in [TERM, INT, libc::SIGQUIT] {
            let mut t = T::pause(Config { stop_delay: secs(5), ..cfg() });
            t.go(Signal(TERM));
            t.at(secs(1), Signal(sig));
            assert_eq!(t.m.exit_code(), Some(0), "{sig}");
        }
    }

    /// A stop signal that `-r` drops forwards nothing: no shutdown has begun, so helpers are
    /// still restarted and an --also exit still ends the workload with its status.
    #[test]
    fn a_dropped_stop_signal_begins_no_shutdown() {
        let mut t = several(Config { rewrite: vec![(TERM, 0)], kill_after: Some(secs(9)), ..cfg() });
        t.go(Signal(TERM));
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(9)), "--kill-after is armed all the same");
        helper_exits(&mut t, secs(1), 12);
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(1) + RESPAWN_FIRST), "restarted");
        t.at(secs(2), Reaped { pid: 11, ended: Ended::Exited(5), name: None });
        assert_eq!(t.batch_end(), (vec![leftovers(TERM, vec![10], true)], Some(5)));
        // The --also command's status stands, whatever the command's.
        t.at(secs(2), exited(0));
        t.at(secs(2), BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(5));
    }

    /// Review: the followed daemon reaped by an intermediate that lives on. Its pidfd says it
    /// is gone: the workload ended, status unknown (1), the intermediate is drained.
    #[test]
    fn a_followed_daemon_gone_elsewhere_ends_the_workload() {
        let mut t = follow();
        t.go(Pidfile(Ok(DAEMON)));
        assert_eq!(t.go(FollowedGone { pid: 99 }), vec![], "not the followed one");
        assert_eq!(t.m.transitions(), 2, "still following, as after the pidfile was read");
        t.go(FollowedGone { pid: 40 });
        assert_eq!(t.m.next_deadline(), None);
        assert_eq!(t.batch_end().1, Some(1));
        assert_eq!(t.go(BatchDone { children_left: true }), vec![leftovers(TERM, vec![39], true)]);
    }

    #[test]
    fn the_deadline_table_arms_disarms_and_gives_the_earliest() {
        let now = Instant::now();
        let mut d = Deadlines::default();
        assert_eq!(d.next(), None);
        d.set(Deadline::Drain, Some(now + secs(3)));
        d.set(Deadline::KillAfter, Some(now + secs(5)));
        d.set(Deadline::Respawn(2), Some(now + secs(1)));
        assert_eq!(d.get(Deadline::Drain), Some(now + secs(3)));
        assert_eq!(d.get(Deadline::KillAfter), Some(now + secs(5)));
        assert_eq!(d.get(Deadline::Respawn(2)), Some(now + secs(1)));
        assert_eq!((d.get(Deadline::Respawn(0)), d.get(Deadline::Respawn(9))), (None, None));
        assert_eq!(d.next(), Some(now + secs(1)));
        // Each key its own slot.
        for other in [
            Deadline::StopDelay,
            Deadline::PauseExit,
            Deadline::PidfilePoll,
            Deadline::PidfileGiveUp,
            Deadline::KillWait,
            Deadline::FollowedCheck,
        ] {
            assert_eq!(d.get(other), None, "{other:?}");
            let mut e = d.clone();
            e.set(other, Some(now));
            assert_eq!(e.get(other), Some(now), "{other:?}");
            assert_eq!(e.next(), Some(now));
            assert_eq!(
                (e.get(Deadline::Drain), e.get(Deadline::KillAfter)),
                (Some(now + secs(3)), Some(now + secs(5)))
            );
        }
        assert!(!d.expired(Deadline::Drain, now + secs(2)));
        assert!(d.expired(Deadline::Drain, now + secs(3)));
        assert!(!d.expired(Deadline::StopDelay, now + secs(99)), "not armed: never due");
        assert_eq!(d.take_due_respawns(now), Vec::<usize>::new());
        assert_eq!(d.take_due_respawns(now + secs(1)), vec![2]);
        assert_eq!(d.get(Deadline::Respawn(2)), None, "taken");
        assert_eq!(d.next(), Some(now + secs(3)));
        d.stop(Deadline::Drain);
        assert_eq!(d.next(), Some(now + secs(5)));
        d.set(Deadline::Respawn(0), Some(now));
        d.set(Deadline::Respawn(1), Some(now + secs(1)));
        d.retain(|t| t != Deadline::KillAfter);
        assert_eq!(d.get(Deadline::KillAfter), None);
        assert_eq!(d.next(), Some(now), "the helpers' kept");
        d.retain(|t| !matches!(t, Deadline::Respawn(_)));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn remap_exit_makes_the_listed_statuses_0() {
        for (code, want) in [(143, 0), (3, 3), (0, 0)] {
            let mut t = T::new(Config { remap_exit: vec![143], ..cfg() });
            t.go(exited(code));
            t.go(BatchDone { children_left: false });
            assert_eq!(t.m.exit_code(), Some(want), "{code}");
        }
    }

    #[test]
    fn the_workload_has_ended_from_the_exit_to_the_last_leftover() {
        let mut t = T::new(Config { drain: secs(1), ..cfg() });
        assert!(!t.m.workload_ended());
        t.go(Signal(TERM));
        assert!(!t.m.workload_ended(), "stopping, not ended");
        t.go(exited(0));
        assert!(t.m.workload_ended(), "gone");
        t.go(BatchDone { children_left: true });
        assert!(t.m.workload_ended(), "draining");
        t.at(secs(1), Timer);
        assert!(t.m.workload_ended(), "killing");
        t.go(BatchDone { children_left: false });
        assert!(!t.m.workload_ended(), "exiting");
        assert_eq!(t.m.exit_code(), Some(0));
        assert_eq!(t.m.transitions(), 4, "gone, draining, killing, exit");
    }

    /// Once a stop signal went out, one that `-r` drops later does not take the shutdown back.
    #[test]
    fn a_dropped_stop_signal_after_a_forwarded_one_changes_nothing() {
        let mut t = several(Config { rewrite: vec![(INT, 0)], ..cfg() });
        t.go(Signal(TERM));
        assert_eq!(t.go(Signal(INT)), vec![]);
        helper_exits(&mut t, secs(1), 12);
        assert_eq!(t.m.next_deadline(), None, "not restarted");
        t.at(secs(2), Reaped { pid: 11, ended: Ended::Exited(5), name: None });
        t.at(secs(3), exited(0));
        assert_eq!(t.batch_end().1, Some(0), "the --also exit did not decide");
    }

    /// A followed daemon that no pidfd watches: the machine wants a wake-up every
    /// FOLLOWED_CHECK while it follows, and none once the workload ended.
    #[test]
    fn an_unwatched_followed_daemon_is_looked_for_periodically() {
        let mut t = follow();
        assert_eq!(t.go(Unwatched), vec![], "not following yet");
        t.go(Pidfile(Ok(DAEMON)));
        assert_eq!(t.m.next_deadline(), None);
        t.go(Unwatched);
        assert_eq!(t.m.next_deadline(), Some(t.now + FOLLOWED_CHECK));
        assert_eq!(t.at(FOLLOWED_CHECK / 2, Timer), vec![]);
        assert_eq!(t.m.next_deadline(), Some(t.now + FOLLOWED_CHECK), "not due yet");
        assert_eq!(t.at(FOLLOWED_CHECK, Timer), vec![]);
        assert_eq!(t.m.next_deadline(), Some(t.now + FOLLOWED_CHECK * 2));
        t.go(FollowedGone { pid: 40 });
        assert_eq!(t.m.next_deadline(), None);
    }

    // --- rows that pin down what the mutation run found untested -------------------------

    fn logs_at(t: &mut T, after: Duration, e: Event, level: Level) -> Vec<String> {
        let effects = t.m.handle(e, t.now + after);
        effects
            .into_iter()
            .filter_map(|e| if let Log(l, s) = e { (l == level).then_some(s) } else { None })
            .collect()
    }

    /// The termination log asks the machine, not its log text, whether `--kill-after` fired.
    #[test]
    fn kill_after_fired_is_known_to_the_machine() {
        let mut t = T::new(Config { kill_after: Some(secs(1)), ..cfg() });
        t.go(Signal(TERM));
        t.at(secs(1) - Duration::from_millis(1), Timer);
        assert!(!t.m.kill_after_fired());
        t.at(secs(1), Timer);
        assert!(t.m.kill_after_fired());
        // While draining leftovers too; the drain's own SIGKILL is not --kill-after's.
        let mut t = T::new(Config { kill_after: Some(secs(1)), ..cfg() });
        t.go(Signal(TERM));
        t.go(exited(0));
        t.go(BatchDone { children_left: true });
        t.at(secs(1), Timer);
        assert!(t.m.kill_after_fired());
        let mut t = T::new(Config { drain: Duration::ZERO, ..cfg() });
        t.go(exited(2));
        t.go(BatchDone { children_left: true });
        t.at(secs(1), Timer);
        assert!(!t.m.kill_after_fired());
        // With --wait-all's orphans.
        let mut t = T::new(Config { on_success: OnSuccess::WaitAll, kill_after: Some(secs(1)), ..cfg() });
        t.go(exited(0));
        t.go(BatchDone { children_left: true });
        t.go(Signal(TERM));
        t.at(secs(1), Timer);
        assert!(t.m.kill_after_fired());
    }

    #[test]
    fn log_lines_name_what_happened() {
        let mut t = T::new(cfg());
        assert_eq!(logs_at(&mut t, Duration::ZERO, exited(3), Level::Info), ["command exited with status 3"]);
        let mut t = several(cfg());
        assert_eq!(
            logs_at(&mut t, Duration::ZERO, exited(0), Level::Info),
            ["command exited with status 0", "nginx exited: stopping php-fpm (pid 11), logs (pid 12)"]
        );
        let mut t = T::new(Config { kill_after: Some(secs(1)), ..cfg() });
        t.go(Signal(TERM));
        assert_eq!(
            logs_at(&mut t, secs(1), Timer, Level::Warn),
            ["still running 1s after the stop signal (--kill-after): SIGKILL"]
        );
        // The main command, reaped after the SIGKILL, is named as the command.
        assert_eq!(
            logs_at(
                &mut t,
                secs(1),
                Reaped { pid: 10, ended: Ended::Signaled(KILL), name: None },
                Level::Info
            ),
            ["command killed by SIGKILL"]
        );
    }

    #[test]
    fn only_the_main_commands_reap_replaces_the_kill_status() {
        let mut t = T::new(Config { kill_after: Some(secs(1)), ..cfg() });
        t.go(Signal(TERM));
        t.at(secs(1), Timer);
        t.go(other_reaped(77));
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(1) + KILL_WAIT));
        assert_eq!(t.batch_end(), (vec![leftovers(KILL, vec![10], false)], Some(137)));
        t.go(exited(0));
        assert_eq!(t.batch_end().1, Some(0), "the command's own status");
    }

    #[test]
    fn reaping_one_leftover_keeps_the_others_signalled() {
        let mut t = T::new(cfg());
        t.go(exited(0));
        t.go(BatchDone { children_left: true });
        t.go(Signalled(vec![id(20), id(21)]));
        t.go(other_reaped(20));
        assert_eq!(t.go(Children(vec![id(21)])), vec![]);
    }

    #[test]
    fn the_drain_skips_no_one_when_the_stop_was_another_signal() {
        let mut t = several(Config { rewrite: vec![(TERM, libc::SIGQUIT)], ..cfg() });
        t.go(Signal(TERM));
        t.go(exited(131));
        assert_eq!(t.batch_end(), (vec![leftovers(TERM, vec![10, 11, 12], true)], Some(131)));
    }

    #[test]
    fn the_pidfile_is_read_only_when_its_poll_is_due() {
        let mut t = follow();
        t.go(Pidfile(Err((None, "missing".into()))));
        assert_eq!(t.at(PIDFILE_POLL / 2, Timer), vec![]);
        assert_eq!(t.at(PIDFILE_POLL, Timer), vec![ReadPidfile]);
    }

    #[test]
    fn a_late_timer_starts_a_helper_once() {
        let mut t = several(cfg());
        helper_exits(&mut t, secs(1), 12);
        let late = secs(1) + RESPAWN_FIRST + Duration::from_millis(50);
        assert_eq!(t.at(late, Timer), vec![Start { index: 2, delay: RESPAWN_FIRST }]);
        assert_eq!(t.m.next_deadline(), None);
        assert_eq!(t.at(late, Timer), vec![]);
    }

    // --- issue 19, section 6: trust under hostile conditions ----------------------------------

    /// A TERM that --stop-delay holds is a stop from outside: an --also command exiting during
    /// the delay starts the drain at once, and COMMAND's status is reaper's, whichever way the
    /// command ends (the drain signal, the drain's SIGKILL, --drain 0).
    #[test]
    fn an_also_command_exiting_during_the_stop_delay_leaves_the_status_to_the_command() {
        let also_exits = |t: &mut T| t.at(secs(1), Reaped { pid: 11, ended: Ended::Exited(3), name: None });
        // It ends on the drain signal.
        let mut t = several(Config { stop_delay: secs(5), ..cfg() });
        t.go(Signal(TERM));
        let logs =
            infos(t.m.handle(Reaped { pid: 11, ended: Ended::Exited(3), name: None }, t.now + secs(1)));
        assert_eq!(
            logs,
            [
                "php-fpm (pid 11) exited with status 3: stopping nginx (pid 10), logs (pid 12) during --stop-delay; nginx's status decides"
            ]
        );
        assert_eq!(
            t.at(secs(1), BatchDone { children_left: true }),
            vec![leftovers(TERM, vec![10, 12], true)]
        );
        t.at(secs(2), exited(0));
        t.at(secs(2), BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(0));
        // It outlives the drain: SIGKILL, its own status.
        let mut t = several(Config { stop_delay: secs(5), ..cfg() });
        t.go(Signal(TERM));
        also_exits(&mut t);
        t.at(secs(1), BatchDone { children_left: true });
        assert_eq!(t.at(secs(4), Timer), vec![leftovers(KILL, vec![10, 12], false)]);
        t.at(secs(4), Reaped { pid: 10, ended: Ended::Signaled(KILL), name: None });
        t.at(secs(4), BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(137));
        // --drain 0: killed at once.
        let mut t = several(Config { stop_delay: secs(5), drain: Duration::ZERO, ..cfg() });
        t.go(Signal(TERM));
        also_exits(&mut t);
        t.at(secs(1), BatchDone { children_left: true });
        t.at(secs(1), Reaped { pid: 10, ended: Ended::Signaled(KILL), name: None });
        t.at(secs(1), BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(137));
        // The held TERM is not sent after that.
        assert_eq!(t.at(secs(5), Timer), vec![]);
        // Both in one reap batch, with a leftover: the command's status, not the leftover's.
        let mut t = several(Config { stop_delay: secs(5), ..cfg() });
        t.go(Signal(TERM));
        also_exits(&mut t);
        t.at(secs(1), other_reaped(77));
        t.at(secs(1), Reaped { pid: 10, ended: Ended::Exited(6), name: None });
        t.at(secs(1), Reaped { pid: 78, ended: Ended::Exited(9), name: None });
        t.at(secs(1), BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(6));
    }

    /// A stop signal that went out (no --stop-delay): an --also exit changes nothing, the
    /// command's status is reaper's; an --also exit before any stop is reaper's status.
    #[test]
    fn the_command_decides_after_any_stop_and_the_first_exit_without_one() {
        for stop in [TERM, INT, libc::SIGQUIT] {
            let mut t = several(cfg());
            t.go(Signal(stop));
            t.go(Reaped { pid: 11, ended: Ended::Exited(3), name: None });
            t.go(BatchDone { children_left: true });
            assert_eq!(t.m.exit_code(), None);
            t.go(exited(0));
            t.go(BatchDone { children_left: false });
            assert_eq!(t.m.exit_code(), Some(0), "{stop}");
        }
        let mut t = several(cfg());
        t.go(Reaped { pid: 11, ended: Ended::Exited(3), name: None });
        t.go(Signal(TERM));
        t.go(BatchDone { children_left: true });
        t.go(exited(0));
        t.go(BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(3), "the stop came after the --also exit");
    }

    /// After `-r TERM:0`, a stop signal that is forwarded (INT) begins the shutdown: helpers
    /// are no longer restarted, an --also exit no longer decides the status; --kill-after
    /// still counts from the dropped TERM.
    #[test]
    fn a_forwarded_stop_signal_after_a_dropped_one_begins_the_shutdown() {
        let mut t = several(Config { rewrite: vec![(TERM, 0)], kill_after: Some(secs(9)), ..cfg() });
        assert_eq!(t.go(Signal(TERM)), vec![]);
        let to = |p: Proc| Send { to: Target::Pid(p.pid), sig: INT };
        assert_eq!(t.at(secs(1), Signal(INT)), vec![to(MAIN), to(PHP), to(LOGS)]);
        helper_exits(&mut t, secs(2), 12);
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(9)), "no restart; kill-after unmoved");
        t.at(secs(3), Reaped { pid: 11, ended: Ended::Exited(5), name: None });
        t.at(secs(3), BatchDone { children_left: true });
        assert_eq!(t.m.exit_code(), None, "the --also exit did not end the workload");
        t.at(secs(4), exited(0));
        t.at(secs(4), BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(0));
        // A helper waiting for its restart when the INT comes is not restarted either.
        let mut t = several(Config { rewrite: vec![(TERM, 0)], ..cfg() });
        t.go(Signal(TERM));
        helper_exits(&mut t, secs(1), 12);
        t.at(secs(1), Signal(INT));
        assert_eq!(t.m.next_deadline(), None);
    }

    /// Never hang: when children are still there a while after the SIGKILL (/proc could not
    /// list them and the group fallback missed them, or the kill was denied), reaper exits
    /// with the status it has.
    #[test]
    fn killing_gives_up_after_a_bounded_wait() {
        // From the drain deadline.
        let mut t = T::new(cfg());
        t.go(exited(4));
        t.go(BatchDone { children_left: true });
        t.at(secs(3), Timer);
        let give_up = secs(3) + KILL_WAIT;
        assert_eq!(t.m.next_deadline(), Some(t.now + give_up));
        assert_eq!(t.at(secs(4), BatchDone { children_left: true }), vec![leftovers(KILL, vec![10], false)]);
        assert_eq!(t.at(give_up - Duration::from_millis(1), Timer), vec![]);
        assert_eq!(t.m.exit_code(), None);
        let logs = logs_at(&mut t, give_up, Timer, Level::Error);
        assert_eq!(
            logs,
            [
                "children still there 5s after SIGKILL (/proc could not list them, or the kill was denied): exiting without them"
            ]
        );
        assert_eq!(t.m.exit_code(), Some(4));
        // From --kill-after, the command never reaped: 137.
        let mut t = T::new(Config { kill_after: Some(secs(1)), ..cfg() });
        t.go(Signal(TERM));
        t.at(secs(1), Timer);
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(1) + KILL_WAIT));
        t.at(secs(1) + KILL_WAIT, Timer);
        assert_eq!(t.m.exit_code(), Some(137));
        // From --drain 0.
        let mut t = T::new(Config { drain: Duration::ZERO, ..cfg() });
        t.go(exited(2));
        t.go(BatchDone { children_left: true });
        assert_eq!(t.m.next_deadline(), Some(t.now + KILL_WAIT));
        t.at(KILL_WAIT, Timer);
        assert_eq!(t.m.exit_code(), Some(2));
        // From --kill-after while awaiting the pidfile.
        let mut t =
            T::new(Config { on_success: OnSuccess::FollowPidfile, kill_after: Some(secs(1)), ..cfg() });
        t.go(exited(0));
        t.go(Signal(TERM));
        t.at(secs(1), Timer);
        t.at(secs(1) + KILL_WAIT, Timer);
        assert_eq!(t.m.exit_code(), Some(137));
    }

    /// -g: a stop signal goes to each command's group. When it is the drain signal, the drain
    /// leaves out every member of those groups (an exited --also command's too): each gets it
    /// once. Without -g, the commands still running are left out, whichever stop signal
    /// brought it.
    #[test]
    fn the_drain_leaves_out_the_groups_that_had_the_drain_signal_as_the_stop() {
        let drained = |skip: Vec<Target>, groups: Vec<i32>| {
            vec![SignalLeftovers { sig: TERM, groups, record: true, skip }]
        };
        let g = Target::Group;
        let pg = Config { process_group: true, ..cfg() };
        let mut t = T::new(pg.clone());
        assert_eq!(t.go(Signal(TERM)), vec![Send { to: g(10), sig: TERM }]);
        t.go(exited(0));
        assert_eq!(t.go(BatchDone { children_left: true }), drained(vec![g(10)], vec![10]));
        // Several commands; the --also one exits first.
        let mut t = several(pg.clone());
        t.go(Signal(TERM));
        t.go(Reaped { pid: 11, ended: Ended::Exited(0), name: None });
        t.go(exited(0));
        assert_eq!(t.go(BatchDone { children_left: true }), drained(vec![g(10), g(11), g(12)], vec![10, 12]));
        // INT first, then the TERM: the TERM is what counts.
        let mut t = T::new(pg.clone());
        t.go(Signal(INT));
        t.go(Signal(TERM));
        t.go(exited(0));
        assert_eq!(t.go(BatchDone { children_left: true }), drained(vec![g(10)], vec![10]));
        // INT alone: nobody had the drain signal.
        let mut t = T::new(pg.clone());
        t.go(Signal(INT));
        t.go(exited(0));
        assert_eq!(t.go(BatchDone { children_left: true }), drained(vec![], vec![10]));
        // The TERM --stop-delay held, released.
        let mut t = T::new(Config { stop_delay: secs(5), ..pg.clone() });
        t.go(Signal(TERM));
        assert_eq!(t.at(secs(5), Timer), vec![Send { to: g(10), sig: TERM }]);
        t.at(secs(6), exited(0));
        assert_eq!(t.at(secs(6), BatchDone { children_left: true }), drained(vec![g(10)], vec![10]));
        // A followed daemon reaped elsewhere: its group had it.
        let mut t = T::new(Config { on_success: OnSuccess::FollowPidfile, ..pg });
        t.go(exited(0));
        t.go(Pidfile(Ok(DAEMON)));
        assert_eq!(t.go(Signal(TERM)), vec![Send { to: g(39), sig: TERM }]);
        t.go(FollowedGone { pid: 40 });
        assert_eq!(t.go(BatchDone { children_left: true }), drained(vec![g(39)], vec![39]));
        // Without -g: INT, then TERM; the commands still running are left out.
        let mut t = several(cfg());
        t.go(Signal(INT));
        t.go(Signal(TERM));
        t.go(exited(0));
        assert_eq!(
            t.go(BatchDone { children_left: true }),
            drained(vec![Target::Pid(11), Target::Pid(12)], vec![10, 11, 12])
        );
    }

    // --- issue 20: restart budgets, exits that mean something, stop signals, start and stop order

    const DB: Proc = Proc { pid: 20, pgid: 20 };
    const QUIT: i32 = libc::SIGQUIT;

    fn respawn(budget: Option<command::Budget>, done: Vec<u8>) -> Role {
        Role::Respawn { budget, done }
    }

    /// nginx (main, 10), php-fpm (also, 11) and logs (respawn, 12) with settings changed by `f`.
    fn several_with(f: impl FnOnce(&mut Vec<command::Settings>)) -> T {
        let mut commands = vec![
            command::Settings::new("nginx".into(), Role::Main),
            command::Settings::new("php-fpm".into(), Role::Also { essential: true }),
            command::Settings::new("logs".into(), respawn(Some(command::DEFAULT_BUDGET), Vec::new())),
        ];
        f(&mut commands);
        T::started(Config { commands, ..cfg() }, vec![(0, MAIN), (1, PHP), (2, LOGS)])
    }

    fn helper_ends(t: &mut T, at: Duration, pid: i32, code: i32) -> Vec<Effect> {
        t.m.handle(Reaped { pid, ended: Ended::Exited(code), name: None }, t.now + at)
    }

    fn restarted(t: &mut T, at: Duration, pid: i32) {
        let delay = t.m.deadline(Deadline::Respawn(2)).map(|d| d - t.now).unwrap();
        assert!(at >= delay, "restart due at {delay:?}");
        let effects = t.at(at, Timer);
        assert!(matches!(effects[..], [Start { index: 2, .. }]), "{effects:?}");
        let Start { delay, .. } = effects[0] else { unreachable!() };
        t.at(at, Started { index: 2, delay, result: Ok(Proc { pid, pgid: pid }) });
    }

    #[test]
    fn a_spent_restart_budget_ends_the_workload_with_the_helpers_status() {
        for (code, status) in [(3, 3), (0, 1)] {
            let budget = command::Budget { exits: 2, within: secs(10) };
            let mut t = several_with(|c| c[2].role = respawn(Some(budget), Vec::new()));
            assert_eq!(acts(helper_ends(&mut t, secs(1), 12, code)), vec![]);
            restarted(&mut t, secs(2), 13);
            assert_eq!(acts(helper_ends(&mut t, secs(3), 13, code)), vec![]);
            assert!(t.m.deadline(Deadline::Respawn(2)).is_some(), "two exits within 10s: restarted");
            restarted(&mut t, secs(4), 14);
            assert_eq!(t.m.failure(), None);
            let effects = helper_ends(&mut t, secs(5), 14, code);
            let line = format!(
                "logs (pid 14) exited with status {code}: 3 exits within 10s (--restarts 2/10s): stopping nginx (pid 10), php-fpm (pid 11)"
            );
            assert!(effects.contains(&Log(Level::Error, line)), "{effects:?}");
            assert!(effects.contains(&NotifyUp("STOPPING=1")));
            assert_eq!(t.m.next_deadline(), None, "never restarted");
            assert_eq!(t.batch_end(), (vec![leftovers(TERM, vec![10, 11], true)], Some(status)), "{code}");
            assert_eq!(t.m.failure(), Some("logs failed: 3 exits within 10s (--restarts 2/10s)"));
        }
    }

    #[test]
    fn exits_outside_the_window_do_not_count_and_unlimited_never_ends() {
        let budget = command::Budget { exits: 1, within: secs(10) };
        let mut t = several_with(|c| c[2].role = respawn(Some(budget), Vec::new()));
        helper_ends(&mut t, secs(1), 12, 1);
        restarted(&mut t, secs(2), 13);
        helper_ends(&mut t, secs(11), 13, 1);
        assert_eq!(t.m.exit_code(), None);
        assert!(!t.m.workload_ended(), "the first exit left the window: 10s ago is not within 10s");
        restarted(&mut t, secs(12), 14);
        helper_ends(&mut t, secs(20) + Duration::from_millis(999), 14, 1);
        assert!(t.m.workload_ended(), "two exits within 10s");
        // --restarts unlimited.
        let mut t = several_with(|c| c[2].role = respawn(None, Vec::new()));
        let mut pid = 12;
        for i in 1..50 {
            helper_ends(&mut t, secs(i), pid, 1);
            pid += 1;
            restarted(&mut t, secs(i) + RESPAWN_MAX, pid);
        }
        assert!(!t.m.workload_ended());
    }

    #[test]
    fn a_done_status_ends_the_helper_for_good_and_nothing_else() {
        let mut t = several_with(|c| c[2].role = respawn(Some(command::DEFAULT_BUDGET), vec![0, 4]));
        let effects = helper_ends(&mut t, secs(1), 12, 4);
        assert_eq!(infos(effects.clone()), ["logs (pid 12) exited with status 4: done"]);
        assert_eq!(acts(effects), vec![]);
        assert_eq!(t.m.next_deadline(), None, "not restarted");
        assert!(!t.m.workload_ended());
        assert_eq!(t.go(Signal(libc::SIGHUP)).len(), 2, "nginx and php-fpm only");
        // Another status is restarted as before.
        let mut t = several_with(|c| c[2].role = respawn(Some(command::DEFAULT_BUDGET), vec![0]));
        helper_ends(&mut t, secs(1), 12, 1);
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(1) + RESPAWN_FIRST));
    }

    #[test]
    fn an_optional_also_command_exiting_is_only_logged() {
        let mut t = several_with(|c| c[1].role = Role::Also { essential: false });
        let effects = helper_ends(&mut t, secs(1), 11, 5);
        assert_eq!(infos(effects.clone()), ["php-fpm (pid 11) exited with status 5"]);
        assert_eq!(acts(effects), vec![]);
        assert_eq!(t.go(BatchDone { children_left: true }), vec![]);
        assert_eq!(t.m.exit_code(), None);
        assert!(!t.m.workload_ended());
        t.go(exited(0));
        t.go(BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(0), "the main command's status");
    }

    /// `--stop-signal QUIT` on nginx: a forwarded stop reaches it as QUIT, the others as
    /// forwarded; the drain then leaves out those that had the drain signal.
    #[test]
    fn a_commands_own_stop_signal_replaces_the_forwarded_one() {
        let mut t = several_with(|c| c[0].stop_signal = Some(QUIT));
        let to = |p: Proc, sig| Send { to: Target::Pid(p.pid), sig };
        assert_eq!(t.go(Signal(TERM)), vec![to(MAIN, QUIT), to(PHP, TERM), to(LOGS, TERM)]);
        assert_eq!(t.go(Signal(libc::SIGHUP)).len(), 3, "other signals as before");
        // nginx is gone: what its group still holds is a leftover like any other.
        t.go(exited(131));
        assert_eq!(
            t.batch_end().0,
            vec![SignalLeftovers {
                sig: TERM,
                groups: vec![10, 11, 12],
                record: true,
                skip: vec![Target::Pid(11), Target::Pid(12)]
            }]
        );
        // php-fpm's own QUIT is its stop: the drain leaves it out too, its group with it.
        let mut t = several_with(|c| c[1].stop_signal = Some(QUIT));
        assert_eq!(t.go(Signal(TERM)), vec![to(MAIN, TERM), to(PHP, QUIT), to(LOGS, TERM)]);
        t.go(exited(143));
        let skip = vec![Target::Group(11), Target::Pid(12)];
        assert_eq!(
            t.batch_end().0,
            vec![SignalLeftovers { sig: TERM, groups: vec![10, 11, 12], record: true, skip }]
        );
    }

    /// The shutdown begins because php-fpm ended: nginx gets its own stop signal (QUIT) at
    /// once, and not the drain signal after it.
    #[test]
    fn a_command_ending_sends_the_others_their_stop_signal_once() {
        let mut t = several_with(|c| c[0].stop_signal = Some(QUIT));
        assert_eq!(acts(helper_ends(&mut t, secs(1), 11, 0)), vec![Send { to: Target::Pid(10), sig: QUIT }]);
        assert_eq!(
            t.batch_end().0,
            vec![SignalLeftovers {
                sig: TERM,
                groups: vec![10, 12],
                record: true,
                skip: vec![Target::Group(10)]
            }]
        );
        // nginx's workers were spared for its graceful stop; once nginx is gone, what its
        // group still holds gets the drain signal (a leftover like any other).
        t.go(BatchDone { children_left: true });
        let reaped = t.at(secs(2), Reaped { pid: 10, ended: Ended::Exited(0), name: None });
        assert_eq!(reaped, vec![Send { to: Target::Group(10), sig: TERM }]);
        // With -g, its group.
        let mut t = T::started(
            Config {
                process_group: true,
                commands: vec![
                    command::Settings {
                        stop_signal: Some(QUIT),
                        ..command::Settings::new("nginx".into(), Role::Main)
                    },
                    command::Settings::new("php-fpm".into(), Role::Also { essential: true }),
                ],
                ..cfg()
            },
            vec![(0, MAIN), (1, PHP)],
        );
        assert_eq!(
            acts(helper_ends(&mut t, secs(1), 11, 0)),
            vec![Send { to: Target::Group(10), sig: QUIT }]
        );
        assert_eq!(
            t.batch_end().0,
            vec![SignalLeftovers {
                sig: TERM,
                groups: vec![10],
                record: true,
                skip: vec![Target::Group(10)]
            }]
        );
    }

    /// web (main, index 0) after db (--also, index 1), db with `ready`.
    fn web_after_db(ready: Option<command::Ready>) -> T {
        let commands = vec![
            command::Settings { after: vec![1], ..command::Settings::new("web".into(), Role::Main) },
            command::Settings {
                ready,
                ..command::Settings::new("db".into(), Role::Also { essential: true })
            },
        ];
        T::started(Config { commands, ..cfg() }, vec![(1, DB)])
    }

    #[test]
    fn a_command_starts_once_its_prerequisite_is_ready() {
        let mut t = web_after_db(Some(command::Ready::Fd(3)));
        assert_eq!(t.m.next_deadline(), Some(t.now + command::DEFAULT_READY_TIMEOUT), "db's readiness clock");
        assert_eq!(t.at(secs(1), Timer), vec![], "db not ready: web waits");
        assert_eq!(
            t.at(secs(1), Signal(libc::SIGHUP)),
            vec![Send { to: Target::Pid(20), sig: libc::SIGHUP }]
        );
        let effects = t.m.handle(Ready { index: 1 }, t.now + secs(2));
        assert_eq!(infos(effects.clone()), ["db is ready", "starting web: db ready"]);
        assert_eq!(acts(effects), vec![Start { index: 0, delay: Duration::ZERO }]);
        assert_eq!(t.m.next_deadline(), None, "ready: no clock");
        assert_eq!(t.at(secs(2), Ready { index: 1 }), vec![], "said twice: nothing more");
        t.at(secs(2), Started { index: 0, delay: Duration::ZERO, result: Ok(MAIN) });
        assert_eq!(t.at(secs(3), Signal(libc::SIGHUP)).len(), 2, "web runs too");
        t.at(secs(4), exited(3));
        assert_eq!(t.batch_end(), (vec![leftovers(TERM, vec![10, 20], true)], Some(3)), "web is the main");
        // Without `ready`, db is ready once started: web starts at the first wake-up.
        let mut t =
            T { m: Machine::new(web_after_db(None).m.cfg.clone(), vec![(1, DB)]), now: Instant::now() };
        assert_eq!(t.go(Timer), vec![Start { index: 0, delay: Duration::ZERO }]);
    }

    #[test]
    fn a_readiness_timeout_ends_the_workload_with_1() {
        let mut t = web_after_db(Some(command::Ready::Notify));
        let timeout = command::DEFAULT_READY_TIMEOUT;
        assert_eq!(t.at(timeout - Duration::from_millis(1), Timer), vec![]);
        let effects = t.m.handle(Timer, t.now + timeout);
        let errors: Vec<_> = effects.iter().filter(|e| matches!(e, Log(Level::Error, _))).collect();
        assert_eq!(errors, [&Log(Level::Error, "db never became ready within 90s".into())]);
        assert!(!effects.iter().any(|e| matches!(e, Start { .. })), "web never starts");
        assert_eq!(t.batch_end(), (vec![leftovers(TERM, vec![20], true)], Some(1)));
        assert_eq!(t.m.failure(), Some("db never became ready within 90s"));
        assert_eq!(t.at(timeout, Ready { index: 1 }), vec![], "too late");
    }

    #[test]
    fn a_stop_while_waiting_stops_what_runs_and_starts_nothing() {
        let mut t = web_after_db(Some(command::Ready::Fd(3)));
        assert_eq!(t.at(secs(1), Signal(TERM)), vec![Send { to: Target::Pid(20), sig: TERM }]);
        assert_eq!(t.m.next_deadline(), None, "no readiness clock any more");
        assert_eq!(t.at(secs(2), Ready { index: 1 }), vec![], "web never starts");
        t.at(secs(3), Reaped { pid: 20, ended: Ended::Exited(0), name: None });
        assert_eq!(t.batch_end(), (vec![leftovers(TERM, vec![20], true)], Some(0)), "the last to go decides");
        assert!(t.m.workload_ended());
    }

    /// The earliest deadline follows cancels and replacements: a readiness timeout that is
    /// cancelled (READY=1) stops being the next wake-up, a later one takes its place, a stop
    /// cancels the rest and arms --kill-after, and the cancelled ones never fire.
    #[test]
    fn the_next_deadline_follows_cancelled_and_replaced_deadlines() {
        let mut t = several_with(|c| {
            for (i, within) in [(1, secs(5)), (2, secs(2))] {
                c[i].ready = Some(command::Ready::Fd(3));
                c[i].ready_timeout = within;
            }
        });
        t.m.cfg.kill_after = Some(secs(10));
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(2)), "logs' readiness timeout");
        t.at(secs(1), Ready { index: 2 });
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(5)), "php-fpm's, once logs is ready");
        // logs exits: its restart (sooner) is the next wake-up, then php-fpm's timeout again
        // (logs was ready once: no timeout for its restart).
        helper_ends(&mut t, secs(2), 12, 1);
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(2) + RESPAWN_FIRST));
        restarted(&mut t, secs(2) + RESPAWN_FIRST, 13);
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(5)));
        // A stop: the readiness timeouts go, --kill-after comes.
        assert_eq!(t.at(secs(4), Signal(TERM)).len(), 3);
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(14)));
        assert_eq!(t.at(secs(6), Timer), vec![], "php-fpm's cancelled timeout does not fire");
        assert_eq!(t.m.failure(), None);
        assert_eq!(t.m.next_deadline(), Some(t.now + secs(14)));
    }

    /// web after logs (a --respawn helper waiting to restart): a TERM then leaves nothing to
    /// wait for.
    #[test]
    fn a_stop_with_nothing_running_yet_ends_the_workload() {
        let commands = vec![
            command::Settings { after: vec![1], ..command::Settings::new("web".into(), Role::Main) },
            command::Settings {
                ready: Some(command::Ready::Fd(3)),
                ..command::Settings::new("logs".into(), respawn(None, Vec::new()))
            },
        ];
        let mut t = T::started(Config { commands, ..cfg() }, vec![(1, LOGS)]);
        helper_ends(&mut t, secs(1), 12, 1);
        t.at(secs(1), BatchDone { children_left: true });
        assert_eq!(t.m.exit_code(), None, "waiting for logs to restart");
        assert_eq!(t.at(secs(1), Signal(TERM)), vec![]);
        assert_eq!(t.batch_end(), (vec![leftovers(TERM, vec![], true)], Some(0)));
    }

    #[test]
    fn a_deferred_command_that_cannot_start_ends_the_workload_with_its_code() {
        let mut t = web_after_db(None);
        t.go(Started { index: 0, delay: Duration::ZERO, result: Err((127, "No such file".into())) });
        assert_eq!(t.batch_end(), (vec![leftovers(TERM, vec![20], true)], Some(127)));
        assert_eq!(t.m.failure(), Some("web could not start: No such file"));
    }

    /// An --optional command started late that cannot start: logged, nothing stops, and the
    /// workload counts as up without it.
    #[test]
    fn an_optional_command_that_cannot_start_keeps_nobody_waiting() {
        let commands = vec![
            command::Settings::new("web".into(), Role::Main),
            command::Settings {
                after: vec![0],
                ..command::Settings::new("stats".into(), Role::Also { essential: false })
            },
        ];
        let mut m = Machine::new(Config { commands, ..cfg() }, vec![(0, MAIN)]);
        let now = Instant::now();
        assert_eq!(acts(m.handle(Timer, now)), vec![Start { index: 1, delay: Duration::ZERO }]);
        let effects = m.handle(
            Started { index: 1, delay: Duration::ZERO, result: Err((127, "No such file".into())) },
            now,
        );
        assert!(
            effects.contains(&Log(Level::Error, "cannot start stats: No such file".into())),
            "{effects:?}"
        );
        assert_eq!(
            effects.iter().filter(|e| !matches!(e, Log(..))).collect::<Vec<_>>(),
            [&NotifyUp("READY=1")]
        );
        assert!(!m.workload_ended());
    }

    /// web (main) after db (--also): both running.
    fn both_running(cfg: Config) -> T {
        let commands = vec![
            command::Settings { after: vec![1], ..command::Settings::new("web".into(), Role::Main) },
            command::Settings::new("db".into(), Role::Also { essential: true }),
            command::Settings::new("php-fpm".into(), Role::Also { essential: true }),
        ];
        let mut t = T::started(Config { commands, ..cfg }, vec![(1, DB), (2, PHP)]);
        t.go(Started { index: 0, delay: Duration::ZERO, result: Ok(MAIN) });
        t
    }

    #[test]
    fn a_stop_reaches_a_prerequisite_once_its_dependents_are_gone() {
        let mut t = both_running(cfg());
        let to = |p: Proc| Send { to: Target::Pid(p.pid), sig: TERM };
        assert_eq!(t.go(Signal(TERM)), vec![to(MAIN), to(PHP)], "db waits for web");
        assert_eq!(t.at(secs(1), Signal(TERM)), vec![to(MAIN), to(PHP)], "still waiting");
        assert_eq!(t.at(secs(2), Reaped { pid: 11, ended: Ended::Exited(0), name: None }), vec![]);
        assert_eq!(t.at(secs(2), exited(0)), vec![to(DB)]);
        assert_eq!(
            t.batch_end(),
            (
                vec![SignalLeftovers {
                    sig: TERM,
                    groups: vec![10, 20],
                    record: true,
                    skip: vec![Target::Group(20)]
                }],
                Some(0)
            )
        );
    }

    /// A held prerequisite gets its own --stop-signal when released, and not the drain signal
    /// after it; with -g, to its group.
    #[test]
    fn a_held_prerequisite_gets_its_own_stop_signal() {
        let mut t = both_running(cfg());
        t.m.cfg.commands[1].stop_signal = Some(QUIT);
        t.go(Signal(TERM));
        assert_eq!(t.at(secs(1), exited(0)), vec![Send { to: Target::Pid(20), sig: QUIT }]);
        let skip = vec![Target::Pid(11), Target::Group(20)];
        assert_eq!(
            t.batch_end().0,
            vec![SignalLeftovers { sig: TERM, groups: vec![10, 20, 11], record: true, skip }],
            "php-fpm had the drain signal, db its own"
        );
        let mut t = both_running(Config { process_group: true, ..cfg() });
        assert_eq!(
            t.go(Signal(TERM)),
            vec![Send { to: Target::Group(10), sig: TERM }, Send { to: Target::Group(11), sig: TERM }]
        );
        assert_eq!(t.at(secs(1), exited(0)), vec![Send { to: Target::Group(20), sig: TERM }]);
        let skip = vec![Target::Group(10), Target::Group(11), Target::Group(20)];
        assert_eq!(
            t.batch_end().0,
            vec![SignalLeftovers { sig: TERM, groups: vec![10, 20, 11], record: true, skip }]
        );
    }

    /// php-fpm and web end in the same reap batch: db, released before the drain starts, is
    /// left out of it.
    #[test]
    fn a_prerequisite_released_before_the_drain_is_left_out_of_it() {
        let mut t = both_running(cfg());
        t.go(Reaped { pid: 11, ended: Ended::Exited(4), name: None });
        assert_eq!(t.go(exited(0)), vec![Send { to: Target::Group(20), sig: TERM }]);
        let drain =
            SignalLeftovers { sig: TERM, groups: vec![10, 20], record: true, skip: vec![Target::Group(20)] };
        assert_eq!(t.go(BatchDone { children_left: true }), vec![drain]);
    }

    /// Without settings (a machine built by hand), command 0 is the main one.
    #[test]
    fn without_settings_command_0_is_the_main_one() {
        let mut m = Machine::new(Config { commands: Vec::new(), ..cfg() }, vec![(0, MAIN)]);
        let now = Instant::now();
        assert_eq!(acts(m.handle(Signal(libc::SIGHUP), now)), vec![TO_MAIN(libc::SIGHUP)]);
        m.handle(exited(3), now);
        m.handle(BatchDone { children_left: false }, now);
        assert_eq!(m.exit_code(), Some(3));
    }

    /// The shutdown begins because php-fpm ended: web gets the drain signal, db's group is left
    /// out of it until web is reaped; at the drain deadline everything is killed.
    #[test]
    fn in_the_drain_a_prerequisite_waits_for_its_dependents() {
        let mut t = both_running(cfg());
        t.go(Reaped { pid: 11, ended: Ended::Exited(4), name: None });
        let drain =
            SignalLeftovers { sig: TERM, groups: vec![10, 20], record: true, skip: vec![Target::Group(20)] };
        assert_eq!(t.go(BatchDone { children_left: true }), vec![drain]);
        t.go(Signalled(vec![id(10), id(20)]));
        assert_eq!(t.at(secs(1), exited(143)), vec![Send { to: Target::Group(20), sig: TERM }]);
        assert_eq!(t.at(secs(1), BatchDone { children_left: true }), vec![ListChildren]);
        t.at(secs(2), Reaped { pid: 20, ended: Ended::Exited(0), name: None });
        t.at(secs(2), BatchDone { children_left: false });
        assert_eq!(t.m.exit_code(), Some(4));
        // db's own --stop-signal when released; web never reaped: SIGKILL at the deadline.
        let mut t = both_running(cfg());
        t.m.cfg.commands[1].stop_signal = Some(libc::SIGINT);
        t.go(Reaped { pid: 11, ended: Ended::Exited(4), name: None });
        t.go(BatchDone { children_left: true });
        assert_eq!(t.at(secs(3), Timer), vec![leftovers(KILL, vec![10, 20], false)]);
        assert_eq!(t.at(secs(3), exited(137)), vec![], "nothing held back from the SIGKILL");
    }

    #[test]
    fn ready_and_stopping_are_said_upward_once() {
        let up = |effects: Vec<Effect>| -> Vec<&'static str> {
            effects.into_iter().filter_map(|e| if let NotifyUp(m) = e { Some(m) } else { None }).collect()
        };
        // Pause mode: ready at once.
        let mut m = Machine::new(Config { commands: Vec::new(), ..cfg() }, Vec::new());
        assert_eq!(up(m.handle(Timer, Instant::now())), ["READY=1"]);
        assert_eq!(up(m.handle(Timer, Instant::now())), Vec::<&str>::new());
        assert_eq!(up(m.handle(Signal(TERM), Instant::now())), ["STOPPING=1"]);
        // Every command started, and the one with `ready` ready.
        let now = Instant::now();
        let mut m = Machine::new(web_after_db(Some(command::Ready::Fd(3))).m.cfg.clone(), vec![(1, DB)]);
        assert_eq!(up(m.handle(Timer, now)), Vec::<&str>::new());
        assert_eq!(up(m.handle(Ready { index: 1 }, now)), Vec::<&str>::new(), "web not started yet");
        assert_eq!(
            up(m.handle(Started { index: 0, delay: Duration::ZERO, result: Ok(MAIN) }, now)),
            ["READY=1"]
        );
        assert_eq!(up(m.handle(Signal(libc::SIGHUP), now)), Vec::<&str>::new());
        assert_eq!(up(m.handle(Signal(TERM), now)), ["STOPPING=1"]);
        assert_eq!(up(m.handle(Signal(TERM), now)), Vec::<&str>::new());
        assert_eq!(up(m.handle(exited(0), now)), Vec::<&str>::new());
        // A command's exit begins the shutdown too; a TERM held by --stop-delay does not.
        let mut t = delayed(cfg());
        assert_eq!(up(t.m.handle(Signal(TERM), t.now)), Vec::<&str>::new());
        assert_eq!(up(t.m.handle(exited(0), t.now)), ["STOPPING=1"]);
        // --wait-all: the command's clean exit is no shutdown, a stop while its orphans run is.
        let mut t = T::new(Config { on_success: OnSuccess::WaitAll, ..cfg() });
        assert_eq!(up(t.m.handle(exited(0), t.now)), Vec::<&str>::new());
        assert_eq!(up(t.m.handle(BatchDone { children_left: true }, t.now)), Vec::<&str>::new());
        assert_eq!(up(t.m.handle(Signal(libc::SIGHUP), t.now)), Vec::<&str>::new());
        assert_eq!(up(t.m.handle(Signal(TERM), t.now)), ["STOPPING=1"]);
    }
}

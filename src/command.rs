//! What reaper runs: each command, with the settings that are its own (name, role, stop
//! signal, readiness, prerequisites, restart budget). Plain data: `options` fills it, the
//! state machine and the driver read it.

use std::ffi::OsString;
use std::time::Duration;

/// One command and its settings. In `Options::commands` the main command comes first (there
/// is none with `--pause`), then every `--also` and `--respawn` in the order given; an index
/// into that list is how the machine and the driver name a command.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub argv: Vec<OsString>,
    pub settings: Settings,
}

/// A command's own settings: `--name`, `--stop-signal`, `--ready`, `--ready-timeout`,
/// `--after` (the main command's as reaper's own flags, the others' as leading `--...` words
/// of their CMDLINE), `--restarts`, `--done`, `--optional`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// For log lines and log prefixes: `--name`, else argv[0]'s basename; unique among the
    /// commands (a second `sh` becomes `sh-2`).
    pub name: String,
    pub role: Role,
    /// The signal a stop sends this command in place of the one forwarded (after `-r`), and
    /// the one it gets when the shutdown begins without a stop signal (another command ended).
    /// `None`: as today (the forwarded signal; the drain signal).
    pub stop_signal: Option<i32>,
    /// How the command says it is ready; `None`: ready once it runs (exec succeeded).
    pub ready: Option<Ready>,
    /// How long it may take to become ready (only with `ready`).
    pub ready_timeout: Duration,
    /// Indices (into the command list) of the commands that must be ready before this one
    /// starts, and that stop only after this one is gone.
    pub after: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// COMMAND: its exit ends the workload and its status is reaper's.
    Main,
    /// `--also`: an `essential` one's exit (before any stop) ends the workload with its
    /// status; a non-essential one (`--optional`) runs once, and its exit is only logged.
    Also { essential: bool },
    /// `--respawn`: restarted whenever it exits with a status not in `done`; more than
    /// `budget.exits` exits within `budget.within` fail it (shutdown, its status).
    /// `budget: None` is `--restarts unlimited`.
    Respawn { budget: Option<Budget>, done: Vec<u8> },
}

/// `--restarts N/DURATION`: more than `exits` exits within `within` and the helper has failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub exits: u32,
    pub within: Duration,
}

/// systemd's default start limit (StartLimitBurst=5 within StartLimitIntervalSec=10s): a
/// crash-looping helper stops the container within seconds, where the orchestrator's restart
/// policy can see it, while one that fails now and then runs on.
pub const DEFAULT_BUDGET: Budget = Budget { exits: 5, within: Duration::from_secs(10) };

/// systemd's DefaultTimeoutStartSec.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(90);

/// `--ready`: how a command says it is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// sd_notify: a `READY=1` datagram on `NOTIFY_SOCKET` (reaper's own socket) from the
    /// command or one of its descendants.
    Notify,
    /// s6: a newline written to descriptor N (N ≥ 3), which the command gets as a pipe.
    Fd(i32),
}

impl Settings {
    /// The settings a command has when nothing is said about it.
    pub fn new(name: String, role: Role) -> Settings {
        Settings {
            name,
            role,
            stop_signal: None,
            ready: None,
            ready_timeout: DEFAULT_READY_TIMEOUT,
            after: Vec::new(),
        }
    }
}

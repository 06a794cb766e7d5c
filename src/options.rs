//! The command line and its environment equivalents, parsed into `Options` (flags win over
//! `REAPER_*`, which win over tini's `TINI_*`).

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

use log::LevelFilter;

use crate::command::Command;
use crate::error::Error;
use crate::probe::{self, Check};
use crate::settings::{self, Entry, Given, Kind};
use crate::signals;

pub const HELP: &str = "\
reaper - a tiny init for containers: forwards signals, reaps zombies, drains leftovers

Usage: reaper [OPTIONS] [--also CMDLINE]... [--respawn CMDLINE]... [--] COMMAND [ARG...]
       reaper --pause [OPTIONS]
       reaper --ps [--max-zombies N]
       reaper --probe CHECK... [--timeout DURATION] [--max-zombies N]
       reaper --sleep DURATION

Options end at the first non-option; COMMAND is looked up on PATH.
Example: reaper --kill-after 10s -- nginx -g 'daemon off;'

Process:
  -s, --subreaper          register as child subreaper (the default when not PID 1) [REAPER_SUBREAPER]
      --no-subreaper       do not register as child subreaper
  -g, --process-group      forward signals to the command's process group [REAPER_PROCESS_GROUP]
  -p, --pdeathsig SIGNAL   signal reaper receives (and forwards) when its parent dies [REAPER_PDEATHSIG]
  -e, --remap-exit CODE    exit 0 instead of CODE (0-255, repeatable) [REAPER_REMAP_EXIT=a,b]
  -w, --warn-on-reap       warn for every reaped process that is not the command [REAPER_WARN_ON_REAP]
  -r, --rewrite FROM:TO    forward signal FROM as TO; TO 0 or - drops it (repeatable) [REAPER_REWRITE=a:b,c:d]

Several processes:
      --also CMDLINE       start another command beside COMMAND (repeatable); its exit, like
                           COMMAND's, shuts everything down. CMDLINE is split like a shell
                           would ('...', \"...\", \\), without expansion.
      --respawn CMDLINE    a helper restarted whenever it exits (back-off 100ms doubling to 30s,
                           reset after 10s of running); too many exits fail it (--restarts)
      --prefix-output      each command's stdout and stderr lines leave prefixed 'NAME | '
                           (docs/logs.md) [REAPER_PREFIX_OUTPUT]
  With several commands reaper exits with the status of the first of COMMAND and the --also
  commands to exit, or with COMMAND's when a stop signal from outside came first (not one
  that -r drops).
  Each command's own settings: COMMAND's are options of reaper, another's the first words of
  its CMDLINE up to the first that does not start with -- (a lone -- ends them, dropped):
    reaper --also '--name db --ready notify postgres' --after db -- nginx
      --name NAME          for log lines: A-Z a-z 0-9 . _ -, at most 32 (default: argv[0]'s
                           basename; a second one gets -2) [REAPER_NAME]
      --stop-signal SIG    sent to it in place of a forwarded stop signal, and when the
                           shutdown begins without one [REAPER_STOP_SIGNAL]
      --ready notify|fd:N  ready when it sends READY=1 to NOTIFY_SOCKET (sd_notify) or writes
                           a newline to descriptor N (s6); else once started [REAPER_READY]
      --ready-timeout DURATION  with --ready: not ready by then (default 90s) ends all, exit 1
                           [REAPER_READY_TIMEOUT]
      --after NAME[,NAME]  start once those are ready; they stop after it [REAPER_AFTER]
      --restarts N/DURATION|unlimited  --respawn only: more than N exits within DURATION fail
                           it: shutdown, with its status (default 5/10s)
      --done CODE[,CODE]   --respawn only: these exit statuses end it for good, no shutdown
      --optional           --also only: its exit is logged and ends nothing

User:
      --user USER[:GROUP]  run every command as USER (name or uid; /etc/passwd, /etc/group) with its
                           group and groups, or GROUP alone; a non-root USER gets no capabilities.
                           reaper stays root [REAPER_USER]
      --no-new-privs       the commands cannot gain privileges (set-uid, file capabilities) [REAPER_NO_NEW_PRIVS]

Shutdown:
      --drain DURATION     when the command exits, give leftovers this long after the drain
                           signal before SIGKILL (default 3s; 0 kills at once) [REAPER_DRAIN]
      --drain-signal SIG   signal sent to leftovers when the drain starts (default TERM) [REAPER_DRAIN_SIGNAL]
  -t, --kill-after DURATION  once a TERM/INT/QUIT is forwarded, SIGKILL everything if the command
                           still runs this long later; exit 137 [REAPER_KILL_AFTER]
      --stop-delay DURATION  hold the first TERM back this long (the command keeps serving while
                           load balancers deregister it), then forward it; default 0 [REAPER_STOP_DELAY]
  -P, --pause              no command: only reap, exit 0 on TERM/INT/QUIT [REAPER_PAUSE]
      --sleep DURATION     not an init: sleep, exit 0 (at once on TERM/INT/QUIT); a preStop hook
                           for images without a shell

Daemons:
  -d, --daemon             detach (fork, setsid, fork) and supervise COMMAND in the background
      --pidfile FILE       write reaper's pid to FILE, locked while it runs, removed at exit
      --chdir DIR          daemon working directory (default /)
      --umask MODE         daemon umask, octal (default 022)
      --stdout FILE        append the daemon's stdout to FILE (default /dev/null)
      --stderr FILE        append the daemon's stderr to FILE (default /dev/null)
      --wait-all           if the command exits 0, stay until all its descendants are gone [REAPER_WAIT_ALL]
      --follow-pidfile FILE  if the command exits 0, supervise the pid it wrote to FILE [REAPER_FOLLOW_PIDFILE]

Diagnosis:
      --ps                 list this PID namespace's processes as a tree: whose each zombie is,
                           and whether PID 1 reaps orphans; runs no command
      --max-zombies N      with --ps or --probe: exit 1 when more than N zombies exist
      --probe CHECK        a health check, no init (repeatable): tcp:HOST:PORT, http://HOST[:PORT]/PATH,
                           unix:PATH, file:PATH, fresh:DURATION:PATH (modified within DURATION);
                           HOST an IP, localhost or in /etc/hosts (no DNS). Prints one line;
                           exit 0 when all pass, else 1
      --timeout DURATION   with --probe: for all checks together (default 2s)
  A SIGKILL death that the memory cgroup counts as an OOM kill is logged as one. At exit, why
  reaper ended goes to /dev/termination-log if it exists [REAPER_TERMINATION_LOG; empty: off]

Logging:
  -v, --verbose            more logging (repeatable) [REAPER_LOG=FILTER overrides -v and -q]
  -q, --quiet              less logging (repeatable) [REAPER_LOG]
  -h, --help               print this help
  -V, --version            print the version (reaper X.Y.Z - git.COMMIT)

Environment: the REAPER_* variables in [ ] above (a flag wins over its variable; REAPER_REMAP_EXIT
and REAPER_REWRITE take comma-separated lists), then tini's: TINI_SUBREAPER and
TINI_KILL_PROCESS_GROUP (any value switches them on), TINI_VERBOSITY (0-4).

Durations: 500ms, 3s, 1m, or a bare number of seconds; at most 365d.
Signals: TERM, SIGTERM, 15, RTMIN+3.
Exit status: the command's, or 128+N if signal N killed it; 127 command not found,
126 not executable or the --user switch failed, 2 usage error, 1 reaper failed before the command ran.
";

/// `--version`: the format dockerd parses (`X - git.COMMIT`) for `docker info`'s init version;
/// build.rs embeds the commit.
pub const VERSION: &str =
    concat!("reaper ", env!("CARGO_PKG_VERSION"), " - git.", env!("REAPER_GIT_COMMIT"), "\n");

/// Daemon-mode settings (only with `--daemon`).
#[derive(Debug, Clone, PartialEq)]
pub struct Daemon {
    pub chdir: PathBuf,
    pub umask: u32,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// What runs, each command with its own settings: the main one first (none with
    /// `--pause`), then every `--also` and `--respawn` in the order given.
    pub commands: Vec<Command>,
    pub subreaper: bool,
    pub process_group: bool,
    pub pdeathsig: Option<i32>,
    pub remap_exit: Vec<u8>,
    pub warn_on_reap: bool,
    pub rewrite: Vec<(i32, i32)>,
    pub drain: Duration,
    pub drain_signal: i32,
    pub kill_after: Option<Duration>,
    pub stop_delay: Duration,
    pub pause: bool,
    pub daemon: Option<Daemon>,
    pub pidfile: Option<PathBuf>,
    pub wait_all: bool,
    pub follow_pidfile: Option<PathBuf>,
    /// Who set `follow_pidfile`, as its messages name it: `--follow-pidfile ` or
    /// `REAPER_FOLLOW_PIDFILE=` (under `docker run --init` the variable is the only way).
    pub follow_pidfile_source: &'static str,
    /// `--prefix-output`: each command's output through a pipe, its lines prefixed with its name.
    pub prefix_output: bool,
    /// `--user`/`REAPER_USER`: who every command runs as, and which of the two said so.
    pub user: Option<(crate::user::Spec, &'static str)>,
    /// `--no-new-privs`: PR_SET_NO_NEW_PRIVS for every command.
    pub no_new_privs: bool,
    pub log_level: LevelFilter,
    /// `REAPER_LOG`, env_logger filter syntax; overrides `log_level`.
    pub log_filter: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            commands: Vec::new(),
            subreaper: true,
            process_group: false,
            pdeathsig: None,
            remap_exit: Vec::new(),
            warn_on_reap: false,
            rewrite: Vec::new(),
            drain: Duration::from_secs(3),
            drain_signal: libc::SIGTERM,
            kill_after: None,
            stop_delay: Duration::ZERO,
            pause: false,
            daemon: None,
            pidfile: None,
            wait_all: false,
            follow_pidfile: None,
            follow_pidfile_source: "--follow-pidfile ",
            prefix_output: false,
            user: None,
            no_new_privs: false,
            log_level: LevelFilter::Warn,
            log_filter: None,
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum Parsed {
    Run(Box<Options>),
    /// `--sleep DURATION`: no init, only a sleep (see `sleep`).
    Sleep(Duration),
    Help,
    Version,
    /// `--ps`: list the processes; no command runs.
    Ps {
        max_zombies: Option<u64>,
    },
    /// `--probe CHECK...`: health checks (see `prober`), each with the text it was given.
    Probe {
        checks: Vec<(String, Check)>,
        timeout: Duration,
        max_zombies: Option<u64>,
    },
}

fn usage(msg: &str) -> Error {
    Error::Usage(msg.to_owned())
}

/// The one shape of a refused value's message: `FLAG: why` or `VARIABLE: why`.
fn named(who: &str, why: &str) -> Error {
    Error::Usage(format!("{who}: {why}"))
}

/// lexopt's messages, with values quoted as in reaper's others ('x', lossily): lexopt quotes
/// with Debug, whose escaping and Unicode tables cost 2 KB of binary.
fn bad_args(e: lexopt::Error) -> Error {
    use lexopt::Error::*;
    let lossy = |v: OsString| v.to_string_lossy().into_owned();
    Error::Usage(match e {
        MissingValue { option: None } => "missing argument".to_owned(),
        MissingValue { option: Some(option) } => format!("missing argument for option '{option}'"),
        UnexpectedOption(option) => format!("invalid option '{option}'"),
        UnexpectedArgument(value) => format!("unexpected argument '{}'", lossy(value)),
        UnexpectedValue { option, value } => {
            format!("unexpected argument for option '{option}': '{}'", lossy(value))
        }
        NonUnicodeValue(value) => format!("argument is invalid unicode: '{}'", lossy(value)),
        ParsingFailed { value, error } => format!("cannot parse argument '{value}': {error}"),
        Custom(error) => error.to_string(),
    })
}

/// Where an option's value goes: `State::set` has one arm for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum To {
    TiniSubreaper,
    TiniProcessGroup,
    TiniVerbosity,
    Subreaper,
    NoSubreaper,
    ProcessGroup,
    Pdeathsig,
    RemapExit,
    WarnOnReap,
    Rewrite,
    Drain,
    DrainSignal,
    KillAfter,
    StopDelay,
    Pause,
    Sleep,
    Daemon,
    Pidfile,
    Chdir,
    Umask,
    Stdout,
    Stderr,
    WaitAll,
    FollowPidfile,
    Also,
    Respawn,
    Name,
    StopSignal,
    Ready,
    ReadyTimeout,
    After,
    /// `--restarts`, `--done`, `--optional`: another kind of command's settings.
    NotMain,
    PrefixOutput,
    User,
    NoNewPrivs,
    Log,
    Verbose,
    Quiet,
    Help,
    Version,
    Ps,
    MaxZombies,
    Probe,
    Timeout,
}

// `State::flagged` has one bit for each `To`.
const _: () = assert!((To::Timeout as u32) < u64::BITS);

/// What an option takes, as a flag and as a variable.
#[derive(Clone, Copy, PartialEq)]
enum Takes {
    /// Nothing: a switch. Its variable is a boolean (1/true/yes/on, 0/false/no/off).
    Nothing,
    /// A value, its variable's the same.
    Value,
    /// A value; an empty variable is unset (an image may pass an empty build argument through).
    ValueOrUnset,
    /// A FILE or DIR, not empty; the flag's kept as given (paths need not be UTF-8).
    Path,
    /// One item per flag (the text names it in the message); its variable a comma-separated
    /// list.
    Item(&'static str),
    /// Its variable's mere presence switches it on, whatever the value (tini's).
    Presence,
}

/// One option: its flags, its variable, what it takes, where it goes.
struct Opt {
    /// `--long`, dashes included (it names the flag in messages); "" for a variable alone.
    long: &'static str,
    /// `-s`'s letter; `NO_SHORT` for none.
    short: char,
    /// `REAPER_*` or `TINI_*`; "" for a flag alone.
    var: &'static str,
    takes: Takes,
    to: To,
}

/// No argument is ever this letter: C strings end at it.
const NO_SHORT: char = '\0';

const fn opt(long: &'static str, short: char, var: &'static str, takes: Takes, to: To) -> Opt {
    Opt { long, short, var, takes, to }
}

/// Every option. The environment is applied first, in this order (tini's variables before
/// reaper's, which win over them; the first bad one is the error), then the flags in the
/// order given (a flag wins over its variable).
#[rustfmt::skip]
const OPTIONS: &[Opt] = {
    use Takes::*;
    &[
        opt("", NO_SHORT, "TINI_SUBREAPER", Presence, To::TiniSubreaper),
        opt("", NO_SHORT, "TINI_KILL_PROCESS_GROUP", Presence, To::TiniProcessGroup),
        opt("", NO_SHORT, "TINI_VERBOSITY", Value, To::TiniVerbosity),
        opt("--subreaper", 's', "REAPER_SUBREAPER", Nothing, To::Subreaper),
        opt("--process-group", 'g', "REAPER_PROCESS_GROUP", Nothing, To::ProcessGroup),
        opt("--pdeathsig", 'p', "REAPER_PDEATHSIG", Value, To::Pdeathsig),
        opt("--remap-exit", 'e', "REAPER_REMAP_EXIT", Item("CODE"), To::RemapExit),
        opt("--warn-on-reap", 'w', "REAPER_WARN_ON_REAP", Nothing, To::WarnOnReap),
        opt("--rewrite", 'r', "REAPER_REWRITE", Item("FROM:TO"), To::Rewrite),
        opt("--drain", NO_SHORT, "REAPER_DRAIN", Value, To::Drain),
        opt("--drain-signal", NO_SHORT, "REAPER_DRAIN_SIGNAL", Value, To::DrainSignal),
        opt("--kill-after", 't', "REAPER_KILL_AFTER", Value, To::KillAfter),
        opt("--stop-delay", NO_SHORT, "REAPER_STOP_DELAY", Value, To::StopDelay),
        opt("--pause", 'P', "REAPER_PAUSE", Nothing, To::Pause),
        opt("--wait-all", NO_SHORT, "REAPER_WAIT_ALL", Nothing, To::WaitAll),
        opt("--follow-pidfile", NO_SHORT, "REAPER_FOLLOW_PIDFILE", Path, To::FollowPidfile),
        opt("--user", NO_SHORT, "REAPER_USER", ValueOrUnset, To::User),
        opt("--no-new-privs", NO_SHORT, "REAPER_NO_NEW_PRIVS", Nothing, To::NoNewPrivs),
        opt("--prefix-output", NO_SHORT, "REAPER_PREFIX_OUTPUT", Nothing, To::PrefixOutput),
        opt("", NO_SHORT, "REAPER_LOG", ValueOrUnset, To::Log),
        // The main command's own settings (another command's lead its CMDLINE).
        opt("--name", NO_SHORT, "REAPER_NAME", ValueOrUnset, To::Name),
        opt("--stop-signal", NO_SHORT, "REAPER_STOP_SIGNAL", ValueOrUnset, To::StopSignal),
        opt("--ready", NO_SHORT, "REAPER_READY", ValueOrUnset, To::Ready),
        opt("--ready-timeout", NO_SHORT, "REAPER_READY_TIMEOUT", ValueOrUnset, To::ReadyTimeout),
        opt("--after", NO_SHORT, "REAPER_AFTER", ValueOrUnset, To::After),
        opt("--restarts", NO_SHORT, "", Nothing, To::NotMain),
        opt("--done", NO_SHORT, "", Nothing, To::NotMain),
        opt("--optional", NO_SHORT, "", Nothing, To::NotMain),
        // Flags alone: tests/env_options.rs says why they have no variable.
        opt("--no-subreaper", NO_SHORT, "", Nothing, To::NoSubreaper),
        opt("--sleep", NO_SHORT, "", Value, To::Sleep),
        opt("--daemon", 'd', "", Nothing, To::Daemon),
        opt("--pidfile", NO_SHORT, "", Path, To::Pidfile),
        opt("--chdir", NO_SHORT, "", Path, To::Chdir),
        opt("--umask", NO_SHORT, "", Value, To::Umask),
        opt("--stdout", NO_SHORT, "", Path, To::Stdout),
        opt("--stderr", NO_SHORT, "", Path, To::Stderr),
        opt("--also", NO_SHORT, "", Value, To::Also),
        opt("--respawn", NO_SHORT, "", Value, To::Respawn),
        opt("--verbose", 'v', "", Nothing, To::Verbose),
        opt("--quiet", 'q', "", Nothing, To::Quiet),
        opt("--help", 'h', "", Nothing, To::Help),
        opt("--version", 'V', "", Nothing, To::Version),
        opt("--ps", NO_SHORT, "", Nothing, To::Ps),
        opt("--max-zombies", NO_SHORT, "", Value, To::MaxZombies),
        opt("--probe", NO_SHORT, "", Value, To::Probe),
        opt("--timeout", NO_SHORT, "", Value, To::Timeout),
    ]
};

/// An option's value as `State::set` gets it.
enum Value {
    /// A switch: on for its flag, its variable's boolean.
    On(bool),
    Text(String),
    Path(PathBuf),
}

impl Value {
    fn on(&self) -> bool {
        matches!(self, Value::On(true))
    }

    fn text(&self) -> &str {
        match self {
            Value::Text(t) => t,
            _ => "",
        }
    }

    fn path(self) -> PathBuf {
        match self {
            Value::Path(p) => p,
            _ => PathBuf::new(),
        }
    }
}

/// Why `State::set` refused a value: the reason, which the caller names after the flag or
/// variable (`--drain: ...`), or a message that says it all itself.
enum Refused {
    Why(String),
    Whole(String),
}

impl From<String> for Refused {
    fn from(why: String) -> Refused {
        Refused::Why(why)
    }
}

impl Refused {
    fn named(self, who: &str) -> Error {
        match self {
            Refused::Why(why) => named(who, &why),
            Refused::Whole(message) => Error::Usage(message),
        }
    }
}

/// What the variables and the flags said, before the rules that combine them.
#[derive(Default)]
struct State {
    o: Options,
    /// The main command's settings: the variables', then the flags' over them.
    main: Given,
    /// The first of them given as a flag.
    main_flag: Option<&'static str>,
    /// --also and --respawn, in the order given.
    others: Vec<Entry>,
    verbosity: i32,
    daemon: bool,
    chdir: Option<PathBuf>,
    umask: Option<u32>,
    stdout: Option<PathBuf>,
    stderr: Option<PathBuf>,
    /// The items of -e and -r: when there are any, they replace their variable's list.
    remap_flags: Vec<u8>,
    rewrite_flags: Vec<(i32, i32)>,
    ps: bool,
    max_zombies: Option<u64>,
    checks: Vec<(String, Check)>,
    timeout: Option<Duration>,
    sleep: Option<Duration>,
    /// The options a flag set, one bit per `To`: the messages name them by their flag, the
    /// others by their variable.
    flagged: u64,
    /// reaper's and tini's variables in the environment.
    vars: Vec<(To, OsString)>,
}

impl State {
    /// `opt`'s value, given by its flag or else its variable.
    fn set(&mut self, opt: &Opt, by_flag: bool, v: Value) -> Result<(), Refused> {
        if by_flag {
            self.flagged |= 1 << opt.to as u32;
        }
        let o = &mut self.o;
        match opt.to {
            To::TiniSubreaper | To::Subreaper => o.subreaper = v.on(),
            To::NoSubreaper => o.subreaper = false,
            To::TiniProcessGroup | To::ProcessGroup => o.process_group = v.on(),
            // tini: 0 fatal only, 1 warnings (the default), 2 info, 3 debug, 4 trace.
            To::TiniVerbosity => o.log_level = level(tini_verbosity(v.text())?.clamp(0, 4) + 1),
            To::Pdeathsig => o.pdeathsig = Some(signals::parse(v.text())?),
            To::RemapExit if by_flag => self.remap_flags.push(exit_code(v.text())?),
            To::RemapExit => o.remap_exit = list(v.text(), exit_code)?,
            To::WarnOnReap => o.warn_on_reap = v.on(),
            To::Rewrite if by_flag => self.rewrite_flags.push(rewrite(v.text())?),
            To::Rewrite => o.rewrite = list(v.text(), rewrite)?,
            To::Drain => o.drain = parse_duration(v.text())?,
            To::DrainSignal => o.drain_signal = signals::parse(v.text())?,
            To::KillAfter => o.kill_after = Some(parse_duration(v.text())?),
            To::StopDelay => o.stop_delay = parse_duration(v.text())?,
            To::Pause => o.pause = v.on(),
            To::Sleep => self.sleep = Some(parse_duration(v.text())?),
            To::Daemon => self.daemon = true,
            To::Pidfile => o.pidfile = Some(v.path()),
            To::Chdir => self.chdir = Some(v.path()),
            To::Umask => self.umask = Some(mode(v.text())?),
            To::Stdout => self.stdout = Some(v.path()),
            To::Stderr => self.stderr = Some(v.path()),
            To::WaitAll => o.wait_all = v.on(),
            To::FollowPidfile => {
                o.follow_pidfile = Some(v.path());
                o.follow_pidfile_source =
                    if by_flag { "--follow-pidfile " } else { "REAPER_FOLLOW_PIDFILE=" };
            }
            To::Also => self.others.push(cmdline(opt.long, Kind::Also, v.text())?),
            To::Respawn => self.others.push(cmdline(opt.long, Kind::Respawn, v.text())?),
            To::Name | To::StopSignal | To::Ready | To::ReadyTimeout | To::After => {
                if by_flag {
                    self.main_flag.get_or_insert(opt.long);
                }
                settings::set_value(&mut self.main, key(opt), v.text())?
            }
            // The error says whose settings they are.
            To::NotMain => {
                let wrong = settings::set(&mut Given::default(), Kind::Main, key(opt), None);
                return Err(Refused::Whole(wrong.err().unwrap_or_default()));
            }
            To::PrefixOutput => o.prefix_output = v.on(),
            To::User => {
                let spec = crate::user::parse_spec(v.text())?;
                o.user = Some((spec, if by_flag { "--user" } else { "REAPER_USER" }));
            }
            To::NoNewPrivs => o.no_new_privs = v.on(),
            To::Log => o.log_filter = Some(v.text().to_owned()),
            To::Verbose => self.verbosity += 1,
            To::Quiet => self.verbosity -= 1,
            // `parse` answers these at once.
            To::Help | To::Version => {}
            To::Ps => self.ps = true,
            To::MaxZombies => self.max_zombies = Some(zombie_count(v.text())?),
            To::Probe => {
                let spec = v.text();
                let check = probe::parse(spec, parse_duration)
                    .map_err(|why| Refused::Whole(format!("--probe '{spec}': {why}")))?;
                self.checks.push((spec.to_owned(), check));
            }
            To::Timeout => self.timeout = Some(parse_duration(v.text())?),
        }
        Ok(())
    }

    /// The variables, in `OPTIONS`' order; the first bad one is the error.
    fn apply_vars(&mut self) -> Result<(), Error> {
        for opt in OPTIONS {
            let Some(raw) = self.var(opt.to) else { continue };
            if let Some(v) = var_value(opt, raw).map_err(|why| named(opt.var, &why))? {
                self.set(opt, false, v).map_err(|r| r.named(opt.var))?;
            }
        }
        Ok(())
    }

    fn var(&self, to: To) -> Option<&OsStr> {
        self.vars.iter().find(|(t, _)| *t == to).map(|(_, v)| v.as_os_str())
    }

    fn by_flag(&self, to: To) -> bool {
        self.flagged & 1 << to as u32 != 0
    }

    /// Who set an option, as messages name it: its flag, or its variable as the environment
    /// spelt it (`REAPER_PAUSE=1`).
    fn source(&self, to: To) -> String {
        let Some(opt) = OPTIONS.iter().find(|o| o.to == to) else { return String::new() };
        match self.var(to) {
            Some(v) if !self.by_flag(to) => format!("{}={}", opt.var, v.to_string_lossy()),
            _ => opt.long.to_owned(),
        }
    }

    /// The first of the main command's variables that is set (not empty).
    fn main_var(&self) -> &'static str {
        let set = |o: &&Opt| {
            matches!(o.to, To::Name | To::StopSignal | To::Ready | To::ReadyTimeout | To::After)
                && self.var(o.to).is_some_and(|v| !v.is_empty())
        };
        OPTIONS.iter().find(set).map_or("REAPER_NAME", |o| o.var)
    }
}

/// A setting's key as `settings` knows it: its flag without the dashes.
fn key(opt: &Opt) -> &'static str {
    opt.long.trim_start_matches('-')
}

/// reaper's and tini's variables in `env` (name, value pairs), each with its first value, as
/// getenv(3) finds it.
fn ours<'a>(env: impl IntoIterator<Item = (&'a OsStr, &'a OsStr)>) -> Vec<(To, OsString)> {
    let mut vars: Vec<(To, OsString)> = Vec::new();
    for (name, value) in env {
        let name = name.as_encoded_bytes();
        if !name.starts_with(b"REAPER_") && !name.starts_with(b"TINI_") {
            continue;
        }
        if let Some(opt) = OPTIONS.iter().find(|o| o.var.as_bytes() == name) {
            if !vars.iter().any(|(t, _)| *t == opt.to) {
                vars.push((opt.to, value.to_owned()));
            }
        }
    }
    vars
}

/// A variable's value for `State::set`; `None`: unset.
fn var_value(opt: &Opt, raw: &OsStr) -> Result<Option<Value>, String> {
    if opt.takes == Takes::Presence {
        return Ok(Some(Value::On(true)));
    }
    let v = raw.to_str().ok_or("value is not valid UTF-8")?;
    Ok(Some(match opt.takes {
        Takes::ValueOrUnset if v.is_empty() => return Ok(None),
        Takes::Nothing => Value::On(boolean(v)?),
        Takes::Path if v.is_empty() => return Err("empty path".into()),
        Takes::Path => Value::Path(v.into()),
        _ => Value::Text(v.to_owned()),
    }))
}

/// A flag's value for `State::set`.
fn flag_value(p: &mut lexopt::Parser, opt: &Opt, short: bool) -> Result<Value, Error> {
    if matches!(opt.takes, Takes::Nothing | Takes::Presence) {
        return Ok(Value::On(true));
    }
    let v = match p.value() {
        // `--` is the end of the options, never a value: `reaper -t -- true` lacks -t's
        // DURATION (lexopt would hand `--` over as one).
        Ok(v) if v == "--" => {
            return Err(Error::Usage(format!("missing argument for option '{}'", spelt(opt, short))));
        }
        v => v.map_err(bad_args)?,
    };
    if opt.takes == Takes::Path {
        return if v.is_empty() { Err(named(opt.long, "empty path")) } else { Ok(Value::Path(v.into())) };
    }
    let v = v
        .into_string()
        .map_err(|v| named(opt.long, &format!("invalid value '{}': not UTF-8", v.to_string_lossy())))?;
    match opt.takes {
        // A list given to the flag: it is told to repeat itself, with the line it meant.
        Takes::Item(what) if v.contains(',') => {
            let spelt = spelt(opt, short);
            let mut repeated = String::new();
            for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                let sep = if repeated.is_empty() { "" } else { " " };
                repeated += &format!("{sep}{spelt} {item}");
            }
            let why = format!(
                "one {what} per flag: repeat it ({repeated}); {} takes a comma-separated list",
                opt.var
            );
            Err(named(opt.long, &why))
        }
        _ => Ok(Value::Text(v)),
    }
}

/// How the user spelt a flag (`-t`, `--kill-after`).
fn spelt(opt: &Opt, short: bool) -> String {
    if short { format!("-{}", opt.short) } else { opt.long.to_owned() }
}

/// `args` excludes argv[0]; `env` is the environment's name, value pairs
/// (`environ::entries()`), read once.
pub fn parse<'a>(
    args: impl IntoIterator<Item = OsString>,
    env: impl IntoIterator<Item = (&'a OsStr, &'a OsStr)>,
) -> Result<Parsed, Error> {
    parse_all(lexopt::Parser::from_args(args), ours(env))
}

fn parse_all(mut p: lexopt::Parser, vars: Vec<(To, OsString)>) -> Result<Parsed, Error> {
    let mut s = State { vars, ..State::default() };
    // The environment configures the init. Read first, as the flags override it, but its
    // errors count only once a run is certain: --help, --version, --ps and --sleep use none of
    // it, and must work whatever an image's REAPER_*/TINI_* hold (dockerd runs `docker-init
    // --version` with no environment; `docker exec` passes the container's).
    let env_error = s.apply_vars().err();
    let mut command: Vec<OsString> = Vec::new();
    // An option --ps does not take (environment variables do not count: a container's
    // `docker exec /reaper --ps` inherits the image's REAPER_*).
    let mut not_for_ps = false;
    // The same for --probe: any option but --probe, --timeout and --max-zombies.
    let mut not_for_probe = false;

    use lexopt::prelude::*;
    while let Some(arg) = p.next().map_err(bad_args)? {
        let (opt, short) = match arg {
            Short(c) => (OPTIONS.iter().find(|o| o.short == c && c != NO_SHORT), true),
            Long(l) => (OPTIONS.iter().find(|o| o.long.strip_prefix("--") == Some(l)), false),
            Value(cmd) => {
                command.push(cmd);
                command.extend(p.raw_args().map_err(bad_args)?);
                break;
            }
        };
        let Some(opt) = opt else { return Err(bad_args(arg.unexpected())) };
        not_for_ps |= !matches!(opt.to, To::Ps | To::MaxZombies);
        not_for_probe |= !matches!(opt.to, To::Probe | To::Timeout | To::MaxZombies);
        match opt.to {
            To::Help => return Ok(Parsed::Help),
            To::Version => return Ok(Parsed::Version),
            _ => {}
        }
        let v = flag_value(&mut p, opt, short)?;
        s.set(opt, true, v).map_err(|r| r.named(opt.long))?;
    }

    if s.ps {
        return if !command.is_empty() {
            Err(usage("--ps takes no COMMAND"))
        } else if not_for_ps {
            Err(usage("--ps takes no other option than --max-zombies"))
        } else {
            Ok(Parsed::Ps { max_zombies: s.max_zombies })
        };
    }
    if !s.checks.is_empty() {
        return if !command.is_empty() {
            Err(usage("--probe takes no COMMAND"))
        } else if not_for_probe {
            Err(usage("--probe takes no other option than --timeout and --max-zombies"))
        } else if s.timeout == Some(Duration::ZERO) {
            Err(usage("--timeout: must be more than 0"))
        } else {
            let timeout = s.timeout.unwrap_or(probe::DEFAULT_TIMEOUT);
            Ok(Parsed::Probe { checks: s.checks, timeout, max_zombies: s.max_zombies })
        };
    } else if s.max_zombies.is_some() {
        return Err(usage("--max-zombies needs --ps or --probe"));
    } else if s.timeout.is_some() {
        return Err(usage("--timeout needs --probe"));
    }
    if let Some(d) = s.sleep {
        if !command.is_empty() {
            return Err(usage("--sleep takes no COMMAND"));
        }
        if let Some(f) = s.main_flag {
            return Err(Error::Usage(format!("{f} is a command's setting: --sleep runs no command")));
        }
        // --pause as a flag: REAPER_PAUSE is a setting of the init, not of --sleep.
        if s.by_flag(To::Pause) || s.daemon {
            return Err(usage("--sleep cannot be combined with --pause or --daemon"));
        }
        return Ok(Parsed::Sleep(d));
    }
    if let Some(e) = env_error {
        return Err(e);
    }
    if !s.remap_flags.is_empty() {
        s.o.remap_exit = std::mem::take(&mut s.remap_flags);
    }
    if !s.rewrite_flags.is_empty() {
        s.o.rewrite = std::mem::take(&mut s.rewrite_flags);
    }
    if s.verbosity != 0 {
        s.o.log_level = level(level_index(LevelFilter::Warn) + s.verbosity);
    }
    let daemon = if s.daemon {
        if s.o.pdeathsig.is_some() {
            // The daemon's parent exits by design: the signal would fire at once.
            return Err(Error::Usage(format!("{} cannot be used with --daemon", s.source(To::Pdeathsig))));
        }
        Some(Daemon {
            chdir: s.chdir.take().unwrap_or_else(|| PathBuf::from("/")),
            umask: s.umask.unwrap_or(0o022),
            stdout: s.stdout.take(),
            stderr: s.stderr.take(),
        })
    } else if s.chdir.is_some() || s.umask.is_some() || s.stdout.is_some() || s.stderr.is_some() {
        return Err(usage("--chdir, --umask, --stdout and --stderr need --daemon"));
    } else {
        None
    };
    let o = &s.o;
    // --wait-all or --follow-pidfile, whichever is set (the first when both are).
    let on_success_src = || s.source(if o.wait_all { To::WaitAll } else { To::FollowPidfile });
    if o.pause && (o.user.is_some() || o.no_new_privs) {
        return Err(usage("--user and --no-new-privs apply to commands: they cannot be used with --pause"));
    }
    if o.pause && s.main != Given::default() {
        let setting = s.main_flag.unwrap_or_else(|| s.main_var());
        let pause = s.source(To::Pause);
        return Err(Error::Usage(format!(
            "{setting} is a command's setting: it cannot be used with {pause}"
        )));
    }
    if s.main.ready_timeout.is_some() && s.main.ready.is_none() {
        let ready_timeout =
            if s.by_flag(To::ReadyTimeout) { "--ready-timeout" } else { "REAPER_READY_TIMEOUT" };
        return Err(Error::Usage(format!("{ready_timeout} needs --ready (or REAPER_READY)")));
    }
    if o.pause {
        if !command.is_empty() {
            return Err(Error::Usage(format!("{} takes no COMMAND", s.source(To::Pause))));
        }
        if s.daemon || o.wait_all || o.follow_pidfile.is_some() {
            let other = if s.daemon { "--daemon".to_owned() } else { on_success_src() };
            return Err(Error::Usage(format!("{} cannot be combined with {other}", s.source(To::Pause))));
        }
    } else if command.is_empty() {
        return Err(usage("missing COMMAND"));
    }
    if o.wait_all && o.follow_pidfile.is_some() {
        let (wait_all, follow) = (s.source(To::WaitAll), s.source(To::FollowPidfile));
        return Err(Error::Usage(format!("{wait_all} and {follow} exclude each other")));
    }
    if !s.others.is_empty() {
        if o.pause {
            let pause = s.source(To::Pause);
            return Err(Error::Usage(format!(
                "--also and --respawn need a COMMAND: they cannot be used with {pause}"
            )));
        }
        if o.wait_all || o.follow_pidfile.is_some() {
            // Both redefine when the workload ends around one command's exit 0.
            let with = on_success_src();
            return Err(Error::Usage(format!("--also and --respawn cannot be combined with {with}")));
        }
    }
    // The main command's settings: a flag wins over its variable (it was set after it).
    let name_source = if s.by_flag(To::Name) { "--name" } else { "REAPER_NAME" };
    let after_source = if s.by_flag(To::After) { "--after" } else { "REAPER_AFTER" };
    let mut o = s.o;
    let main = (!o.pause).then(|| Entry {
        argv: command,
        kind: Kind::Main,
        given: s.main,
        name_source: name_source.to_owned(),
        after_source: after_source.to_owned(),
    });
    o.daemon = daemon;
    o.commands = settings::resolve(main.into_iter().chain(s.others).collect()).map_err(Error::Usage)?;
    Ok(Parsed::Run(Box::new(o)))
}

fn boolean(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("invalid boolean '{v}' (use 1/true/yes/on or 0/false/no/off)")),
    }
}

/// tini reads TINI_VERBOSITY with atoi(3): empty is 0 there, so here too. Other text is an
/// error rather than atoi's silent 0 (a typo would otherwise hide every warning).
fn tini_verbosity(v: &str) -> Result<i32, String> {
    match v.trim() {
        "" => Ok(0),
        n => n.parse().map_err(|_| format!("invalid verbosity '{v}' (a number, 0-4)")),
    }
}

fn exit_code(v: &str) -> Result<u8, String> {
    v.trim().parse::<u8>().map_err(|_| format!("invalid exit code '{v}' (0-255)"))
}

fn zombie_count(v: &str) -> Result<u64, String> {
    crate::ps::number(v.trim()).ok_or_else(|| format!("invalid zombie count '{v}' (0 or more)"))
}

fn mode(v: &str) -> Result<u32, String> {
    match u32::from_str_radix(v.trim(), 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!("invalid umask '{v}' (octal, 000-777)")),
    }
}

/// The longest DURATION any option takes: 365 days. Every duration becomes a deadline,
/// `Instant::now() + d` (state.rs, sleep.rs), where an overflow would read as "never": a held
/// TERM never forwarded, --kill-after never armed. std's Instant holds i64 seconds of
/// CLOCK_MONOTONIC (time since boot) on every target, 32-bit musl included (its clock_gettime
/// fills a 32-bit time_t, but std widens it), so `now + 365d` fits for any uptime; it would
/// even fit a 32-bit count of seconds until 67 years of uptime. The sleeps that wait for a
/// deadline are capped by their syscalls anyway (poll: i32 ms, sigtimedwait: i32 s) and loop.
/// A year is more than any drain, stop delay or preStop sleep needs.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// `500ms`, `3s`, `1m`, `1h 30m`, or a bare number of seconds (`2`, `0.5`); at most
/// `MAX_DURATION`.
pub fn duration(v: &str) -> Result<Duration, Error> {
    parse_duration(v).map_err(Error::Usage)
}

/// `duration`, its error the reason alone.
pub(crate) fn parse_duration(v: &str) -> Result<Duration, String> {
    let d = any_duration(v.trim())?;
    if d > MAX_DURATION {
        return Err(format!("duration '{}' is too long (at most 365d)", v.trim()));
    }
    Ok(d)
}

fn any_duration(v: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration '{v}' (e.g. 500ms, 3s, 1m)");
    if v.starts_with(|c: char| c.is_ascii_digit()) && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // Whole and fractional seconds by hand: float parsing would cost 12 KB of binary.
        let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
        if frac.len() > 9 || frac.contains('.') {
            return Err(bad());
        }
        let secs: u64 = secs.parse().map_err(|_| bad())?;
        let nanos = if frac.is_empty() {
            0
        } else {
            frac.parse::<u32>().map_err(|_| bad())? * 10u32.pow(9 - frac.len() as u32)
        };
        return Ok(Duration::new(secs, nanos));
    }
    with_units(v).ok_or_else(bad)
}

/// `1h 30m`, `500ms`, `1h30m`, `5 min`: numbers with units, summed. (Not the humantime crate: it
/// costs 2-4 KB for units like months that no timeout needs: docs/design.md.)
fn with_units(mut rest: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    loop {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        // `1.5s`: whole units, then the fraction of one (to the nanosecond, as humantime).
        let (whole, frac) = rest[..digits].split_once('.').unwrap_or((&rest[..digits], "0"));
        if frac.is_empty() || frac.len() > 9 {
            return None;
        }
        let n: u64 = whole.parse().ok()?;
        let f: u32 = frac.parse().ok()?;
        let rest_unit = rest[digits..].trim_start();
        let len =
            rest_unit.find(|c: char| c.is_ascii_digit() || c.is_whitespace()).unwrap_or(rest_unit.len());
        let secs = |per: u64| Some((n.checked_mul(per).map(Duration::from_secs)?, Duration::from_secs(per)));
        let (d, unit) = match &rest_unit[..len] {
            "ns" | "nsec" => (Duration::from_nanos(n), Duration::from_nanos(1)),
            "us" | "µs" | "usec" => (Duration::from_micros(n), Duration::from_micros(1)),
            "ms" | "msec" => (Duration::from_millis(n), Duration::from_millis(1)),
            "s" | "sec" | "secs" | "second" | "seconds" => secs(1)?,
            "m" | "min" | "mins" | "minute" | "minutes" => secs(60)?,
            "h" | "hr" | "hrs" | "hour" | "hours" => secs(3600)?,
            "d" | "day" | "days" => secs(86_400)?,
            _ => return None,
        };
        let part = unit.checked_mul(f)? / 10u32.pow(frac.len() as u32);
        total = total.checked_add(d)?.checked_add(part)?;
        rest = rest_unit[len..].trim_start();
        if rest.is_empty() {
            return Some(total);
        }
    }
}

fn rewrite(v: &str) -> Result<(i32, i32), String> {
    let (from, to) =
        v.split_once(':').ok_or_else(|| format!("invalid rewrite '{v}' (FROM:TO, e.g. TERM:QUIT)"))?;
    let from = signals::parse(from)?;
    // KILL and STOP cannot be caught, CHLD is reaper's own, and TTIN/TTOU are ignored by
    // reaper (the kernel discards them): a rule for them could never fire.
    if matches!(from, libc::SIGCHLD | libc::SIGKILL | libc::SIGSTOP | libc::SIGTTIN | libc::SIGTTOU) {
        return Err(format!("cannot rewrite {}: reaper never receives it", signals::name(from)));
    }
    let to = match to.trim() {
        "0" | "-" => 0,
        t => signals::parse(t)?,
    };
    Ok((from, to))
}

/// `--also`/`--respawn`'s command line: split into words by the POSIX shell's quoting rules,
/// without running a shell and without expansion; its leading `--...` words are the
/// command's settings (see `settings::split`), the rest its argv.
fn cmdline(flag: &str, kind: Kind, v: &str) -> Result<Entry, String> {
    let words = match split_words(v) {
        Ok(words) if words.is_empty() => return Err("empty command line".into()),
        Ok(words) => words,
        Err(why) => return Err(format!("'{v}': {why}")),
    };
    let (given, argv) = settings::split(words, kind).map_err(|why| format!("'{v}': {why}"))?;
    let source = format!("{flag}: '{v}'");
    Ok(Entry {
        argv: argv.into_iter().map(OsString::from).collect(),
        kind,
        given,
        name_source: source.clone(),
        after_source: source,
    })
}

/// Splits like `sh` does, and nothing more: `'...'` is literal, `"..."` keeps everything but
/// `\` before `$`, `` ` ``, `"`, `\` or a newline, a backslash outside quotes escapes the next
/// character (backslash-newline joins lines), and unquoted blanks separate words. `$HOME`, `*`
/// and `~` stay literal: no expansion of any kind.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('\n') => {}
                            Some(c @ ('$' | '`' | '"' | '\\')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => w.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("backslash at the end".into()),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

fn list<T>(v: &str, item: fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    v.split(',').filter(|s| !s.trim().is_empty()).map(item).collect()
}

fn level_index(l: LevelFilter) -> i32 {
    l as i32
}

fn level(i: i32) -> LevelFilter {
    match i {
        i32::MIN..=0 => LevelFilter::Off,
        1 => LevelFilter::Error,
        2 => LevelFilter::Warn,
        3 => LevelFilter::Info,
        4 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// Convenience for tests and fuzzing: parse with a fixed environment.
pub fn parse_with_env(args: &[&OsStr], env: &[(&str, &OsStr)]) -> Result<Parsed, Error> {
    parse(args.iter().map(|a| a.to_os_string()), env.iter().map(|(k, v)| (OsStr::new(k), *v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Ready, Role, Settings};

    fn words(line: &str) -> Vec<String> {
        split_words(line).unwrap()
    }

    #[test]
    fn splits_like_the_shell_without_expanding() {
        assert_eq!(words("php-fpm -F"), ["php-fpm", "-F"]);
        assert_eq!(words("  a \t b\nc  "), ["a", "b", "c"]);
        assert_eq!(words("nginx -g 'daemon off;'"), ["nginx", "-g", "daemon off;"]);
        assert_eq!(words(r#"echo "it's" 'say "hi"'"#), ["echo", "it's", r#"say "hi""#]);
        assert_eq!(words(r#"a\ b c\'d \\"#), ["a b", "c'd", "\\"]);
        assert_eq!(words(r#""\$HOME \" \\ \x""#), [r#"$HOME " \ \x"#]);
        assert_eq!(words("echo $HOME ~ * `id`"), ["echo", "$HOME", "~", "*", "`id`"]);
        assert_eq!(words("a'b'\"c\"d"), ["abcd"]);
        assert_eq!(words("x '' \"\""), ["x", "", ""]);
        assert_eq!(words("a\\\nb \"c\\\nd\""), ["ab", "cd"]);
        assert_eq!(words(""), Vec::<String>::new());
    }

    #[test]
    fn unterminated_quotes_and_escapes_are_errors() {
        assert_eq!(split_words("echo 'x"), Err("unterminated single quote".into()));
        assert_eq!(split_words("echo \"x"), Err("unterminated double quote".into()));
        assert_eq!(split_words("echo \"x\\"), Err("unterminated double quote".into()));
        assert_eq!(split_words("echo x\\"), Err("backslash at the end".into()));
    }

    fn run(args: &[&str]) -> Result<Options, String> {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        match parse_with_env(&args, &[]) {
            Ok(Parsed::Run(o)) => Ok(*o),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e.message()),
        }
    }

    /// A new row of `OPTIONS` is in --help, and its flag, letter and variable are its own.
    #[test]
    fn every_option_is_in_the_help_once() {
        for (i, opt) in OPTIONS.iter().enumerate() {
            assert!(!opt.long.is_empty() || !opt.var.is_empty(), "row {i}: neither flag nor variable");
            let later = &OPTIONS[i + 1..];
            if !opt.long.is_empty() {
                assert!(opt.long.starts_with("--"), "{}", opt.long);
                assert!(HELP.contains(&format!("{} ", opt.long)), "{} not in --help", opt.long);
                assert!(later.iter().all(|o| o.long != opt.long), "{} twice", opt.long);
            }
            if opt.short != NO_SHORT {
                assert!(HELP.contains(&format!("-{}, {}", opt.short, opt.long)), "-{}", opt.short);
                assert!(later.iter().all(|o| o.short != opt.short), "-{} twice", opt.short);
            }
            if !opt.var.is_empty() {
                assert!(HELP.contains(opt.var), "{} not in --help", opt.var);
                assert!(later.iter().all(|o| o.var != opt.var), "{} twice", opt.var);
            }
            if opt.to != To::NotMain {
                assert!(later.iter().all(|o| o.to != opt.to), "{:?} twice", opt.to);
            }
        }
    }

    #[test]
    fn probe_collects_checks_in_order_with_its_two_options() {
        let parse = |args: &[&str]| {
            let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
            parse_with_env(&args, &[("REAPER_DRAIN", OsStr::new("bad"))])
        };
        let Ok(Parsed::Probe { checks, timeout, max_zombies }) =
            parse(&["--probe", "tcp:h:1", "--max-zombies", "3", "--probe=file:/x", "--timeout", "500ms"])
        else {
            panic!("not a probe")
        };
        let specs: Vec<&str> = checks.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(specs, ["tcp:h:1", "file:/x"]);
        assert_eq!(checks[1].1, Check::File { path: "/x".into(), within: None });
        assert_eq!((timeout, max_zombies), (Duration::from_millis(500), Some(3)));
        let Ok(Parsed::Probe { timeout, max_zombies, .. }) = parse(&["--probe", "file:/"]) else {
            panic!("not a probe")
        };
        assert_eq!((timeout, max_zombies), (probe::DEFAULT_TIMEOUT, None));
        let err = |args: &[&str]| parse(args).unwrap_err().message();
        assert_eq!(err(&["--probe", "tcp:h"]), "--probe 'tcp:h': missing port (tcp:HOST:PORT)");
        assert_eq!(
            err(&["--probe", "fresh:1x:/f"]),
            "--probe 'fresh:1x:/f': invalid duration '1x' (e.g. 500ms, 3s, 1m)"
        );
        assert_eq!(err(&["--probe", "file:/", "--timeout", "0s"]), "--timeout: must be more than 0");
        assert_eq!(err(&["--timeout", "1s", "x"]), "--timeout needs --probe");
        assert_eq!(
            err(&["--probe", "file:/", "-v"]),
            "--probe takes no other option than --timeout and --max-zombies"
        );
        assert_eq!(err(&["--probe", "file:/", "x"]), "--probe takes no COMMAND");
        assert_eq!(err(&["--ps", "--timeout", "1s"]), "--ps takes no other option than --max-zombies");
    }

    #[test]
    fn also_and_respawn_collect_argv_in_order() {
        let o =
            run(&["--also", "php-fpm -F", "--respawn", "crond -f", "--also", "b", "--", "nginx"]).unwrap();
        let argv = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let got: Vec<_> = o.commands.iter().map(|c| (c.argv.clone(), c.settings.role.clone())).collect();
        let also = Role::Also { essential: true };
        let respawn = Role::Respawn { budget: Some(crate::command::DEFAULT_BUDGET), done: vec![] };
        assert_eq!(
            got,
            [
                (argv(&["nginx"]), Role::Main),
                (argv(&["php-fpm", "-F"]), also.clone()),
                (argv(&["crond", "-f"]), respawn),
                (argv(&["b"]), also)
            ]
        );
    }

    #[test]
    fn the_main_commands_settings_are_flags_or_variables_and_a_flag_wins() {
        let flags = ["--name=web", "--stop-signal", "QUIT", "--ready=fd:4", "--ready-timeout=5s"];
        let o = run(&[&flags[..], &["--after", "db", "--also", "--name=db pg", "nginx"]].concat()).unwrap();
        let s = &o.commands[0].settings;
        assert_eq!(
            (s.name.as_str(), s.stop_signal, s.ready),
            ("web", Some(libc::SIGQUIT), Some(Ready::Fd(4)))
        );
        assert_eq!((s.ready_timeout, s.after.as_slice()), (Duration::from_secs(5), &[1][..]));
        let env = [
            ("REAPER_NAME", "app"),
            ("REAPER_STOP_SIGNAL", "INT"),
            ("REAPER_READY", "notify"),
            ("REAPER_READY_TIMEOUT", "1m"),
            ("REAPER_AFTER", "x"),
        ];
        let o = with_env(&["--also", "x", "nginx"], &env).unwrap();
        let s = &o.commands[0].settings;
        assert_eq!(
            (s.name.as_str(), s.stop_signal, s.ready),
            ("app", Some(libc::SIGINT), Some(Ready::Notify))
        );
        assert_eq!((s.ready_timeout, s.after.as_slice()), (Duration::from_secs(60), &[1][..]));
        let o = with_env(&[&flags[..], &["--after=y", "--also", "x", "--also", "y", "nginx"]].concat(), &env)
            .unwrap();
        assert_eq!(
            o.commands[0].settings,
            run(&[&flags[..], &["--after=y", "--also", "x", "--also", "y", "nginx"]].concat())
                .unwrap()
                .commands[0]
                .settings
        );
        // Empty variables are unset.
        let empty: Vec<(&str, &str)> = env.iter().map(|(k, _)| (*k, "")).collect();
        assert_eq!(
            with_env(&["nginx"], &empty).unwrap().commands[0].settings,
            Settings::new("nginx".into(), Role::Main)
        );
    }

    #[test]
    fn bad_main_settings_name_their_flag_or_variable() {
        assert_eq!(
            run(&["--ready=bad", "x"]),
            Err("--ready: invalid readiness 'bad' (notify or fd:N, N from 3 to 1023)".into())
        );
        assert_eq!(
            with_env(&["x"], &[("REAPER_READY", "bad")]),
            Err("REAPER_READY: invalid readiness 'bad' (notify or fd:N, N from 3 to 1023)".into())
        );
        assert_eq!(
            with_env(&["x"], &[("REAPER_NAME", "a b")]),
            Err("REAPER_NAME: invalid name 'a b' (letters, digits, '.', '_' and '-', 1 to 32)".into())
        );
        assert_eq!(run(&["--after=nope", "x"]), Err("--after: no command is named 'nope'".into()));
        assert_eq!(
            with_env(&["x"], &[("REAPER_AFTER", "nope")]),
            Err("REAPER_AFTER: no command is named 'nope'".into())
        );
        assert_eq!(run(&["--after=x", "x"]), Err("--after: 'x' cannot be after itself".into()));
        assert_eq!(
            run(&["--name=a", "--also", "--name=a b", "x"]),
            Err("--also: '--name=a b': the name 'a' is given to two commands".into())
        );
        assert_eq!(
            with_env(&["--also", "--name=a b", "x"], &[("REAPER_NAME", "a")]),
            Err("--also: '--name=a b': the name 'a' is given to two commands".into())
        );
        assert_eq!(
            run(&["--ready-timeout=1s", "x"]),
            Err("--ready-timeout needs --ready (or REAPER_READY)".into())
        );
        assert_eq!(
            with_env(&["x"], &[("REAPER_READY_TIMEOUT", "1s")]),
            Err("REAPER_READY_TIMEOUT needs --ready (or REAPER_READY)".into())
        );
        assert!(with_env(&["--ready-timeout=1s", "x"], &[("REAPER_READY", "notify")]).is_ok());
        assert_eq!(
            run(&["--restarts", "3/1s", "x"]),
            Err("--restarts is a --respawn command's setting, not the main command's".into())
        );
        assert_eq!(
            run(&["--optional", "x"]),
            Err("--optional is an --also command's setting, not the main command's".into())
        );
        assert_eq!(
            run(&["--done=0", "x"]),
            Err("--done is a --respawn command's setting, not the main command's".into())
        );
        assert_eq!(run(&["--name", "--", "x"]), Err("missing argument for option '--name'".into()));
    }

    #[test]
    fn cmdline_settings_errors_name_the_flag_and_the_command_line() {
        assert_eq!(
            run(&["--also", "--optional=x a", "m"]),
            Err("--also: '--optional=x a': --optional takes no value (got 'x')".into())
        );
        assert_eq!(run(&["--respawn", "--optional a", "m"]), Err("--respawn: '--optional a': --optional is an --also command's setting, not a --respawn command's".into()));
        assert_eq!(
            run(&["--also", "--name=x", "m"]),
            Err("--also: '--name=x': no command after the settings".into())
        );
        assert_eq!(
            run(&["--also", "--after=b a", "--also", "--after=a b", "m"]),
            Err("--also: '--after=b a': a cycle: a after b after a".into())
        );
        let o = run(&["--respawn", "--restarts=unlimited --done=0,2 -- --x", "m"]).unwrap();
        assert_eq!(o.commands[1].argv, [OsString::from("--x")]);
        assert_eq!(o.commands[1].settings.role, Role::Respawn { budget: None, done: vec![0, 2] });
    }

    #[test]
    fn commands_settings_are_for_commands() {
        assert_eq!(
            run(&["--name=a", "--pause"]),
            Err("--name is a command's setting: it cannot be used with --pause".into())
        );
        assert_eq!(
            with_env(&[], &[("REAPER_PAUSE", "1"), ("REAPER_NAME", ""), ("REAPER_READY", "notify")]),
            Err("REAPER_READY is a command's setting: it cannot be used with REAPER_PAUSE=1".into())
        );
        assert_eq!(with_env(&["--pause"], &[("REAPER_NAME", "")]).unwrap().commands, []);
        assert_eq!(
            run(&["--sleep", "1", "--stop-signal=INT"]),
            Err("--stop-signal is a command's setting: --sleep runs no command".into())
        );
        assert_eq!(run(&["--ps", "--name=a"]), Err("--ps takes no other option than --max-zombies".into()));
        assert_eq!(
            run(&["--probe", "file:/", "--name=a"]),
            Err("--probe takes no other option than --timeout and --max-zombies".into())
        );
    }

    #[test]
    fn prefix_output_is_a_flag_or_a_variable() {
        assert!(!run(&["x"]).unwrap().prefix_output);
        assert!(run(&["--prefix-output", "x"]).unwrap().prefix_output);
        assert!(with_env(&["x"], &[("REAPER_PREFIX_OUTPUT", "yes")]).unwrap().prefix_output);
        assert!(!with_env(&["x"], &[("REAPER_PREFIX_OUTPUT", "0")]).unwrap().prefix_output);
        assert!(with_env(&["--prefix-output", "x"], &[("REAPER_PREFIX_OUTPUT", "0")]).unwrap().prefix_output);
    }

    #[test]
    fn also_and_respawn_refuse_what_they_cannot_combine_with() {
        assert_eq!(run(&["--also", "", "x"]), Err("--also: empty command line".into()));
        assert_eq!(run(&["--respawn", "'", "x"]), Err("--respawn: ''': unterminated single quote".into()));
        let pause = Err("--also and --respawn need a COMMAND: they cannot be used with --pause".into());
        assert_eq!(run(&["--also", "a", "--pause"]), pause);
        assert_eq!(run(&["--respawn", "a", "--pause"]), pause);
        let exclusive = |with: &str| Err(format!("--also and --respawn cannot be combined with {with}"));
        assert_eq!(run(&["--also", "a", "--wait-all", "x"]), exclusive("--wait-all"));
        assert_eq!(run(&["--respawn", "a", "--follow-pidfile", "f", "x"]), exclusive("--follow-pidfile"));
        assert!(run(&["--also", "a", "--daemon", "x"]).is_ok(), "a daemon supervises the set");
    }

    fn with_env(args: &[&str], env: &[(&str, &str)]) -> Result<Options, String> {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, OsStr::new(v))).collect();
        match parse_with_env(&args, &env) {
            Ok(Parsed::Run(o)) => Ok(*o),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e.message()),
        }
    }

    #[test]
    fn follow_pidfile_remembers_who_set_it() {
        let o = with_env(&["x"], &[("REAPER_FOLLOW_PIDFILE", "a.pid")]).unwrap();
        assert_eq!(
            (o.follow_pidfile, o.follow_pidfile_source),
            (Some("a.pid".into()), "REAPER_FOLLOW_PIDFILE=")
        );
        let o = with_env(&["--follow-pidfile", "b.pid", "x"], &[("REAPER_FOLLOW_PIDFILE", "a.pid")]).unwrap();
        assert_eq!((o.follow_pidfile, o.follow_pidfile_source), (Some("b.pid".into()), "--follow-pidfile "));
        let o = run(&["--follow-pidfile", "b.pid", "x"]).unwrap();
        assert_eq!(o.follow_pidfile_source, "--follow-pidfile ");
    }

    #[test]
    fn user_comes_from_the_flag_or_the_variable() {
        use crate::user::{Id, Spec};
        let app = Spec { user: Id::Name("app".into()), group: Some(Id::Num(33)) };
        assert_eq!(run(&["--user", "app:33", "x"]).unwrap().user, Some((app.clone(), "--user")));
        assert_eq!(with_env(&["x"], &[("REAPER_USER", "app:33")]).unwrap().user, Some((app, "REAPER_USER")));
        let flag = with_env(&["--user", "0", "x"], &[("REAPER_USER", "app")]).unwrap().user;
        assert_eq!(flag, Some((Spec { user: Id::Num(0), group: None }, "--user")));
        assert_eq!(with_env(&["x"], &[("REAPER_USER", "")]).unwrap().user, None);
        assert_eq!(run(&["x"]).unwrap().user, None);
        assert!(run(&["--no-new-privs", "x"]).unwrap().no_new_privs);
        assert!(with_env(&["x"], &[("REAPER_NO_NEW_PRIVS", "1")]).unwrap().no_new_privs);
        assert!(!run(&["x"]).unwrap().no_new_privs);
    }

    #[test]
    fn bad_users_name_their_source() {
        assert_eq!(
            run(&["--user", "app:", "x"]),
            Err("--user: empty group (USER[:GROUP], names or numbers)".into())
        );
        assert_eq!(
            run(&["--user", "", "x"]),
            Err("--user: empty user (USER[:GROUP], names or numbers)".into())
        );
        assert_eq!(
            with_env(&["x"], &[("REAPER_USER", "a b")]),
            Err("REAPER_USER: invalid user name 'a b'".into())
        );
        let pause =
            Err("--user and --no-new-privs apply to commands: they cannot be used with --pause".into());
        assert_eq!(run(&["--user", "app", "--pause"]), pause);
        assert_eq!(run(&["--no-new-privs", "--pause"]), pause);
        assert!(run(&["--user", "app", "--daemon", "x"]).is_ok());
    }
}

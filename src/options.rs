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

fn usage(msg: impl std::fmt::Display) -> Error {
    Error::Usage(msg.to_string())
}

/// lexopt's messages, with values quoted as in reaper's others ('x', lossily): lexopt quotes
/// with Debug, whose escaping and Unicode tables cost 2 KB of binary.
fn bad_args(e: lexopt::Error) -> Error {
    use lexopt::Error::*;
    let lossy = |v: OsString| v.to_string_lossy().into_owned();
    usage(match e {
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

/// An option's value. `--` is the end of the options, never a value: `reaper -t -- true` lacks
/// -t's DURATION (lexopt would hand `--` over as one).
fn value(p: &mut lexopt::Parser, spelt: &str) -> Result<OsString, Error> {
    match p.value() {
        Ok(v) if v == "--" => Err(usage(format!("missing argument for option '{spelt}'"))),
        v => v.map_err(bad_args),
    }
}

/// A flag's value, parsed; errors name the flag (as the environment's name their variable).
fn flag<T>(
    flag: &str,
    v: Result<OsString, Error>,
    parse: impl Fn(&str) -> Result<T, Error>,
) -> Result<T, Error> {
    let named = |e: Error| usage(format!("{flag}: {}", e.message()));
    let v = v?
        .into_string()
        .map_err(|v| named(usage(format!("invalid value '{}': not UTF-8", v.to_string_lossy()))))?;
    parse(&v).map_err(named)
}

/// `-r` and `-e` take one item each; their variables take a comma-separated list. A flag given
/// a list is told to repeat itself, with the line it meant.
fn one<T>(
    (long, spelt, what, var): (&str, &str, &str, &str),
    v: Result<OsString, Error>,
    item: fn(&str) -> Result<T, Error>,
) -> Result<T, Error> {
    flag(long, v, |v| {
        if !v.contains(',') {
            return item(v);
        }
        let repeated: Vec<String> =
            v.split(',').filter(|i| !i.trim().is_empty()).map(|i| format!("{spelt} {}", i.trim())).collect();
        Err(usage(format!(
            "one {what} per flag: repeat it ({}); {var} takes a comma-separated list",
            repeated.join(" ")
        )))
    })
}

/// `args` excludes argv[0]; `env` looks up one variable.
pub fn parse<I, E>(args: I, env: E) -> Result<Parsed, Error>
where
    I: IntoIterator<Item = OsString>,
    E: Fn(&str) -> Option<OsString>,
{
    let mut o = Options::default();
    // The environment configures the init. Read first, as the flags override it, but its
    // errors count only once a run is certain: --help, --version, --ps and --sleep use none of
    // it, and must work whatever an image's REAPER_*/TINI_* hold (dockerd runs `docker-init
    // --version` with no environment; `docker exec` passes the container's).
    let env_error = apply_env(&mut o, &env).err();
    // The main command's settings: from the variables (errors as above), then from the flags.
    let (main_env, main_env_error) = match main_env(&env) {
        Ok(given) => (given, None),
        Err(e) => (Given::default(), Some(e)),
    };
    let env_error = env_error.or(main_env_error);
    let mut main = Given::default();
    // The first of the main command's settings given as a flag, as spelt.
    let mut main_flag: Option<String> = None;
    let mut command: Vec<OsString> = Vec::new();
    // --also and --respawn, in the order given.
    let mut others: Vec<Entry> = Vec::new();

    let mut verbosity: i32 = 0;
    let mut daemon = false;
    let mut chdir = None;
    let mut umask = None;
    let mut stdout = None;
    let mut stderr = None;
    let mut remap_from_flags = Vec::new();
    let mut rewrite_from_flags = Vec::new();
    let mut ps = false;
    let mut max_zombies = None;
    // An option --ps does not take (environment variables do not count: a container's
    // `docker exec /reaper --ps` inherits the image's REAPER_*).
    let mut not_for_ps = false;
    // The same for --probe: any option but --probe, --timeout and --max-zombies.
    let mut not_for_probe = false;
    let mut checks = Vec::new();
    let mut timeout = None;
    let mut sleep = None;
    // --pause as a flag: REAPER_PAUSE (in `o.pause`) is a setting of the init, not of --sleep.
    let mut pause = false;
    // The settings the combination rules below check, set by a flag (else by a variable, which
    // the error then names: `REAPER_PAUSE=1 takes no COMMAND`, not `--pause ...`).
    let (mut wait_all_flag, mut follow_flag, mut pdeathsig_flag) = (false, false, false);

    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    loop {
        let arg = p.next().map_err(bad_args)?;
        let Some(arg) = arg else { break };
        match arg {
            Long("ps") | Long("max-zombies") | Value(_) => {}
            _ => not_for_ps = true,
        }
        // How the user spelt the option (`-t`, `--kill-after`), for a missing value.
        let spelt = match &arg {
            Short(c) => format!("-{c}"),
            Long(l) => format!("--{l}"),
            Value(_) => String::new(),
        };
        match arg {
            Long("probe") | Long("timeout") | Long("max-zombies") | Value(_) => {}
            _ => not_for_probe = true,
        }
        match arg {
            Long("ps") => ps = true,
            Long("max-zombies") => {
                max_zombies = Some(flag("--max-zombies", value(&mut p, &spelt), zombie_count)?)
            }
            Long("probe") => {
                let spec = flag("--probe", value(&mut p, &spelt), |v| Ok(v.to_owned()))?;
                let check = probe::parse(&spec, |d| duration(d).map_err(|e| e.message()))
                    .map_err(|why| usage(format!("--probe '{spec}': {why}")))?;
                checks.push((spec, check));
            }
            Long("timeout") => timeout = Some(flag("--timeout", value(&mut p, &spelt), duration)?),
            Short('s') | Long("subreaper") => o.subreaper = true,
            Long("no-subreaper") => o.subreaper = false,
            Short('g') | Long("process-group") => o.process_group = true,
            Short('p') | Long("pdeathsig") => {
                o.pdeathsig = Some(flag("--pdeathsig", value(&mut p, &spelt), signal)?);
                pdeathsig_flag = true;
            }
            Short('e') | Long("remap-exit") => {
                let names = ("--remap-exit", spelt.as_str(), "CODE", "REAPER_REMAP_EXIT");
                remap_from_flags.push(one(names, value(&mut p, &spelt), exit_code)?)
            }
            Short('w') | Long("warn-on-reap") => o.warn_on_reap = true,
            Short('r') | Long("rewrite") => {
                let names = ("--rewrite", spelt.as_str(), "FROM:TO", "REAPER_REWRITE");
                rewrite_from_flags.push(one(names, value(&mut p, &spelt), rewrite)?)
            }
            Long("drain") => o.drain = flag("--drain", value(&mut p, &spelt), duration)?,
            Long("drain-signal") => o.drain_signal = flag("--drain-signal", value(&mut p, &spelt), signal)?,
            Short('t') | Long("kill-after") => {
                o.kill_after = Some(flag("--kill-after", value(&mut p, &spelt), duration)?)
            }
            Long("stop-delay") => o.stop_delay = flag("--stop-delay", value(&mut p, &spelt), duration)?,
            Short('P') | Long("pause") => pause = true,
            Long("sleep") => sleep = Some(flag("--sleep", value(&mut p, &spelt), duration)?),
            Short('d') | Long("daemon") => daemon = true,
            Long("pidfile") => o.pidfile = Some(path("--pidfile", value(&mut p, &spelt))?),
            Long("chdir") => chdir = Some(path("--chdir", value(&mut p, &spelt))?),
            Long("umask") => umask = Some(flag("--umask", value(&mut p, &spelt), mode)?),
            Long("stdout") => stdout = Some(path("--stdout", value(&mut p, &spelt))?),
            Long("stderr") => stderr = Some(path("--stderr", value(&mut p, &spelt))?),
            Long("wait-all") => {
                o.wait_all = true;
                wait_all_flag = true;
            }
            Long("follow-pidfile") => {
                o.follow_pidfile = Some(path("--follow-pidfile", value(&mut p, &spelt))?);
                o.follow_pidfile_source = "--follow-pidfile ";
                follow_flag = true;
            }
            Long("also") => {
                others.push(flag("--also", value(&mut p, &spelt), |v| cmdline("--also", Kind::Also, v))?)
            }
            Long("respawn") => others
                .push(flag("--respawn", value(&mut p, &spelt), |v| cmdline("--respawn", Kind::Respawn, v))?),
            Long("name" | "stop-signal" | "ready" | "ready-timeout" | "after") => {
                let v = value(&mut p, &spelt)?.into_string().map_err(|v| {
                    usage(format!("{spelt}: invalid value '{}': not UTF-8", v.to_string_lossy()))
                })?;
                settings::set(&mut main, Kind::Main, &spelt[2..], Some(&v)).map_err(usage)?;
                main_flag.get_or_insert(spelt);
            }
            // Not the main command's: the error says whose they are.
            Long("restarts" | "done" | "optional") => {
                let wrong = settings::set(&mut main, Kind::Main, &spelt[2..], None);
                return Err(usage(wrong.err().unwrap_or_default()));
            }
            Long("prefix-output") => o.prefix_output = true,
            Long("user") => {
                let spec =
                    flag("--user", value(&mut p, &spelt), |v| crate::user::parse_spec(v).map_err(usage))?;
                o.user = Some((spec, "--user"));
            }
            Long("no-new-privs") => o.no_new_privs = true,
            Short('v') | Long("verbose") => verbosity += 1,
            Short('q') | Long("quiet") => verbosity -= 1,
            Short('h') | Long("help") => return Ok(Parsed::Help),
            Short('V') | Long("version") => return Ok(Parsed::Version),
            Value(cmd) => {
                command.push(cmd);
                command.extend(p.raw_args().map_err(bad_args)?);
                break;
            }
            _ => return Err(bad_args(arg.unexpected())),
        }
    }

    if ps {
        return if !command.is_empty() {
            Err(usage("--ps takes no COMMAND"))
        } else if not_for_ps {
            Err(usage("--ps takes no other option than --max-zombies"))
        } else {
            Ok(Parsed::Ps { max_zombies })
        };
    }
    if !checks.is_empty() {
        return if !command.is_empty() {
            Err(usage("--probe takes no COMMAND"))
        } else if not_for_probe {
            Err(usage("--probe takes no other option than --timeout and --max-zombies"))
        } else if timeout == Some(Duration::ZERO) {
            Err(usage("--timeout: must be more than 0"))
        } else {
            Ok(Parsed::Probe { checks, timeout: timeout.unwrap_or(probe::DEFAULT_TIMEOUT), max_zombies })
        };
    } else if max_zombies.is_some() {
        return Err(usage("--max-zombies needs --ps or --probe"));
    } else if timeout.is_some() {
        return Err(usage("--timeout needs --probe"));
    }
    if let Some(d) = sleep {
        if !command.is_empty() {
            return Err(usage("--sleep takes no COMMAND"));
        }
        if let Some(f) = main_flag {
            return Err(usage(format!("{f} is a command's setting: --sleep runs no command")));
        }
        if pause || daemon {
            return Err(usage("--sleep cannot be combined with --pause or --daemon"));
        }
        return Ok(Parsed::Sleep(d));
    }
    if let Some(e) = env_error {
        return Err(e);
    }
    o.pause |= pause;
    if !remap_from_flags.is_empty() {
        o.remap_exit = remap_from_flags;
    }
    if !rewrite_from_flags.is_empty() {
        o.rewrite = rewrite_from_flags;
    }
    if verbosity != 0 {
        o.log_level = level(level_index(LevelFilter::Warn) + verbosity);
    }

    // Who set a setting: its flag, or its variable as the environment spelt it.
    let source = |by_flag: bool, flag: &str, var: &str| match (by_flag, env(var)) {
        (false, Some(v)) => format!("{var}={}", v.to_string_lossy()),
        _ => flag.to_owned(),
    };
    let pause_src = || source(pause, "--pause", "REAPER_PAUSE");
    let wait_all_src = || source(wait_all_flag, "--wait-all", "REAPER_WAIT_ALL");
    let follow_src = || source(follow_flag, "--follow-pidfile", "REAPER_FOLLOW_PIDFILE");
    // --wait-all or --follow-pidfile, whichever is set (the first when both are).
    let on_success_src = |wait_all: bool| if wait_all { wait_all_src() } else { follow_src() };

    if daemon {
        if o.pdeathsig.is_some() {
            // The daemon's parent exits by design: the signal would fire at once.
            let src = source(pdeathsig_flag, "--pdeathsig", "REAPER_PDEATHSIG");
            return Err(usage(format!("{src} cannot be used with --daemon")));
        }
        o.daemon = Some(Daemon {
            chdir: chdir.unwrap_or_else(|| PathBuf::from("/")),
            umask: umask.unwrap_or(0o022),
            stdout,
            stderr,
        });
    } else if chdir.is_some() || umask.is_some() || stdout.is_some() || stderr.is_some() {
        return Err(usage("--chdir, --umask, --stdout and --stderr need --daemon"));
    }
    if o.pause && (o.user.is_some() || o.no_new_privs) {
        return Err(usage("--user and --no-new-privs apply to commands: they cannot be used with --pause"));
    }
    // The main command's settings: a flag wins over its variable.
    let (name_source, after_source) = (
        if main.name.is_some() { "--name" } else { "REAPER_NAME" },
        if main.after.is_some() { "--after" } else { "REAPER_AFTER" },
    );
    let ready_timeout_source =
        if main.ready_timeout.is_some() { "--ready-timeout" } else { "REAPER_READY_TIMEOUT" };
    let main = Given {
        name: main.name.or(main_env.name),
        stop_signal: main.stop_signal.or(main_env.stop_signal),
        ready: main.ready.or(main_env.ready),
        ready_timeout: main.ready_timeout.or(main_env.ready_timeout),
        after: main.after.or(main_env.after),
        ..Given::default()
    };
    if o.pause && main != Given::default() {
        let setting = main_flag.unwrap_or_else(|| main_env_source(&env).to_owned());
        return Err(usage(format!(
            "{setting} is a command's setting: it cannot be used with {}",
            pause_src()
        )));
    }
    if main.ready_timeout.is_some() && main.ready.is_none() {
        return Err(usage(format!("{ready_timeout_source} needs --ready (or REAPER_READY)")));
    }
    if o.pause {
        if !command.is_empty() {
            return Err(usage(format!("{} takes no COMMAND", pause_src())));
        }
        if daemon || o.wait_all || o.follow_pidfile.is_some() {
            let other = if daemon { "--daemon".to_owned() } else { on_success_src(o.wait_all) };
            return Err(usage(format!("{} cannot be combined with {other}", pause_src())));
        }
    } else if command.is_empty() {
        return Err(usage("missing COMMAND"));
    }
    if o.wait_all && o.follow_pidfile.is_some() {
        return Err(usage(format!("{} and {} exclude each other", wait_all_src(), follow_src())));
    }
    if !others.is_empty() {
        if o.pause {
            let pause = pause_src();
            return Err(usage(format!(
                "--also and --respawn need a COMMAND: they cannot be used with {pause}"
            )));
        }
        if o.wait_all || o.follow_pidfile.is_some() {
            // Both redefine when the workload ends around one command's exit 0.
            let with = on_success_src(o.wait_all);
            return Err(usage(format!("--also and --respawn cannot be combined with {with}")));
        }
    }
    let main = (!o.pause).then(|| Entry {
        argv: command,
        kind: Kind::Main,
        given: main,
        name_source: name_source.to_owned(),
        after_source: after_source.to_owned(),
    });
    o.commands = settings::resolve(main.into_iter().chain(others).collect()).map_err(usage)?;
    Ok(Parsed::Run(Box::new(o)))
}

fn apply_env<E: Fn(&str) -> Option<OsString>>(o: &mut Options, env: &E) -> Result<(), Error> {
    // tini's variables: any value, even empty or 0, switches the feature on (as in tini).
    if env("TINI_SUBREAPER").is_some() {
        o.subreaper = true;
    }
    if env("TINI_KILL_PROCESS_GROUP").is_some() {
        o.process_group = true;
    }
    if let Some(n) = var(env, "TINI_VERBOSITY", tini_verbosity)? {
        // tini: 0 fatal only, 1 warnings (the default), 2 info, 3 debug, 4 trace.
        o.log_level = level(n.clamp(0, 4) + 1);
    }
    if let Some(v) = var(env, "REAPER_SUBREAPER", boolean)? {
        o.subreaper = v;
    }
    if let Some(v) = var(env, "REAPER_PROCESS_GROUP", boolean)? {
        o.process_group = v;
    }
    if let Some(v) = var(env, "REAPER_PDEATHSIG", signal)? {
        o.pdeathsig = Some(v);
    }
    if let Some(v) = var(env, "REAPER_REMAP_EXIT", |v| list(v, exit_code))? {
        o.remap_exit = v;
    }
    if let Some(v) = var(env, "REAPER_WARN_ON_REAP", boolean)? {
        o.warn_on_reap = v;
    }
    if let Some(v) = var(env, "REAPER_REWRITE", |v| list(v, rewrite))? {
        o.rewrite = v;
    }
    if let Some(v) = var(env, "REAPER_DRAIN", duration)? {
        o.drain = v;
    }
    if let Some(v) = var(env, "REAPER_DRAIN_SIGNAL", signal)? {
        o.drain_signal = v;
    }
    if let Some(v) = var(env, "REAPER_KILL_AFTER", duration)? {
        o.kill_after = Some(v);
    }
    if let Some(v) = var(env, "REAPER_STOP_DELAY", duration)? {
        o.stop_delay = v;
    }
    if let Some(v) = var(env, "REAPER_PAUSE", boolean)? {
        o.pause = v;
    }
    if let Some(v) = var(env, "REAPER_WAIT_ALL", boolean)? {
        o.wait_all = v;
    }
    if let Some(v) = var(env, "REAPER_FOLLOW_PIDFILE", nonempty_path)? {
        o.follow_pidfile = Some(v);
        o.follow_pidfile_source = "REAPER_FOLLOW_PIDFILE=";
    }
    // Empty is unset: an image may pass an empty build argument through.
    if let Some(v) = var(env, "REAPER_USER", |v| {
        (!v.is_empty()).then(|| crate::user::parse_spec(v).map_err(usage)).transpose()
    })?
    .flatten()
    {
        o.user = Some((v, "REAPER_USER"));
    }
    if let Some(v) = var(env, "REAPER_NO_NEW_PRIVS", boolean)? {
        o.no_new_privs = v;
    }
    if let Some(v) = var(env, "REAPER_PREFIX_OUTPUT", boolean)? {
        o.prefix_output = v;
    }
    o.log_filter = var(env, "REAPER_LOG", |v| Ok(v.to_owned()))?.filter(|f| !f.is_empty());
    Ok(())
}

/// The variables of the main command's settings, in the order `main_env_source` checks them.
const MAIN_VARS: [&str; 5] =
    ["REAPER_NAME", "REAPER_STOP_SIGNAL", "REAPER_READY", "REAPER_READY_TIMEOUT", "REAPER_AFTER"];

/// The main command's settings from `REAPER_NAME`, `REAPER_STOP_SIGNAL`, `REAPER_READY`,
/// `REAPER_READY_TIMEOUT` and `REAPER_AFTER`; empty is unset (an image may pass an empty
/// build argument through).
fn main_env<E: Fn(&str) -> Option<OsString>>(env: &E) -> Result<Given, Error> {
    fn set<T>(v: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>, Error> {
        if v.is_empty() { Ok(None) } else { parse(v).map(Some).map_err(usage) }
    }
    let [name, stop_signal, ready, ready_timeout, after] = MAIN_VARS;
    Ok(Given {
        name: var(env, name, |v| set(v, settings::name))?.flatten(),
        stop_signal: var(env, stop_signal, |v| set(v, signals::parse))?.flatten(),
        ready: var(env, ready, |v| set(v, settings::ready))?.flatten(),
        ready_timeout: var(env, ready_timeout, |v| set(v, settings::ready_timeout))?.flatten(),
        after: var(env, after, |v| set(v, settings::after))?.flatten(),
        ..Given::default()
    })
}

/// The first of the main command's variables that is set (not empty).
fn main_env_source<E: Fn(&str) -> Option<OsString>>(env: &E) -> &'static str {
    MAIN_VARS.into_iter().find(|n| env(n).is_some_and(|v| !v.is_empty())).unwrap_or("REAPER_NAME")
}

/// One environment variable, parsed; errors name the variable.
fn var<T, E: Fn(&str) -> Option<OsString>>(
    env: &E,
    name: &str,
    parse: impl Fn(&str) -> Result<T, Error>,
) -> Result<Option<T>, Error> {
    let Some(value) = env(name) else {
        return Ok(None);
    };
    let value = value.into_string().map_err(|_| usage(format!("{name}: value is not valid UTF-8")))?;
    parse(&value).map(Some).map_err(|e| usage(format!("{name}: {}", e.message())))
}

fn nonempty_path(v: &str) -> Result<PathBuf, Error> {
    if v.is_empty() {
        return Err(usage("empty path"));
    }
    Ok(PathBuf::from(v))
}

/// A flag's FILE or DIR, kept as given (paths need not be UTF-8); errors name the flag.
fn path(flag: &str, v: Result<OsString, Error>) -> Result<PathBuf, Error> {
    let v = v?;
    if v.is_empty() {
        return Err(usage(format!("{flag}: empty path")));
    }
    Ok(PathBuf::from(v))
}

fn signal(v: &str) -> Result<i32, Error> {
    signals::parse(v).map_err(usage)
}

fn boolean(v: &str) -> Result<bool, Error> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(usage(format!("invalid boolean '{v}' (use 1/true/yes/on or 0/false/no/off)"))),
    }
}

/// tini reads TINI_VERBOSITY with atoi(3): empty is 0 there, so here too. Other text is an
/// error rather than atoi's silent 0 (a typo would otherwise hide every warning).
fn tini_verbosity(v: &str) -> Result<i32, Error> {
    match v.trim() {
        "" => Ok(0),
        n => n.parse().map_err(|_| usage(format!("invalid verbosity '{v}' (a number, 0-4)"))),
    }
}

fn exit_code(v: &str) -> Result<u8, Error> {
    v.trim().parse::<u8>().map_err(|_| usage(format!("invalid exit code '{v}' (0-255)")))
}

fn zombie_count(v: &str) -> Result<u64, Error> {
    crate::ps::number(v.trim()).ok_or_else(|| usage(format!("invalid zombie count '{v}' (0 or more)")))
}

fn mode(v: &str) -> Result<u32, Error> {
    match u32::from_str_radix(v.trim(), 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(usage(format!("invalid umask '{v}' (octal, 000-777)"))),
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
    let d = any_duration(v.trim())?;
    if d > MAX_DURATION {
        return Err(usage(format!("duration '{}' is too long (at most 365d)", v.trim())));
    }
    Ok(d)
}

fn any_duration(v: &str) -> Result<Duration, Error> {
    let bad = || usage(format!("invalid duration '{v}' (e.g. 500ms, 3s, 1m)"));
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

fn rewrite(v: &str) -> Result<(i32, i32), Error> {
    let (from, to) =
        v.split_once(':').ok_or_else(|| usage(format!("invalid rewrite '{v}' (FROM:TO, e.g. TERM:QUIT)")))?;
    let from = signal(from)?;
    // KILL and STOP cannot be caught, CHLD is reaper's own, and TTIN/TTOU are ignored by
    // reaper (the kernel discards them): a rule for them could never fire.
    if matches!(from, libc::SIGCHLD | libc::SIGKILL | libc::SIGSTOP | libc::SIGTTIN | libc::SIGTTOU) {
        return Err(usage(format!("cannot rewrite {}: reaper never receives it", signals::name(from))));
    }
    let to = match to.trim() {
        "0" | "-" => 0,
        t => signal(t)?,
    };
    Ok((from, to))
}

/// `--also`/`--respawn`'s command line: split into words by the POSIX shell's quoting rules,
/// without running a shell and without expansion; its leading `--...` words are the
/// command's settings (see `settings::split`), the rest its argv.
fn cmdline(flag: &str, kind: Kind, v: &str) -> Result<Entry, Error> {
    let words = match split_words(v) {
        Ok(words) if words.is_empty() => return Err(usage("empty command line")),
        Ok(words) => words,
        Err(why) => return Err(usage(format!("'{v}': {why}"))),
    };
    let (given, argv) = settings::split(words, kind).map_err(|why| usage(format!("'{v}': {why}")))?;
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

fn list<T>(v: &str, item: fn(&str) -> Result<T, Error>) -> Result<Vec<T>, Error> {
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
    parse(args.iter().map(|a| a.to_os_string()), |k| {
        env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_os_string())
    })
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

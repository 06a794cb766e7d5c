//! The environment is the only way to reach reaper's options under `docker run --init` (it is
//! started as `docker-init -- CMD ARGS`): every option that makes sense there has a `REAPER_*`
//! variable, and `--version` prints what dockerd parses. In-process, through
//! `reaper::options::parse_with_env`.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use reaper::error::Error;
use reaper::options::{HELP, Options, Parsed, VERSION, parse_with_env};

fn try_parse(args: &[&str], env: &[(&str, &str)]) -> Result<Parsed, Error> {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, OsStr::new(v))).collect();
    parse_with_env(&args, &env)
}

/// `docker-init -- sleep 1` with `env`, which must be valid.
fn docker_init(env: &[(&str, &str)]) -> Options {
    match try_parse(&["--", "sleep", "1"], env) {
        Ok(Parsed::Run(o)) => *o,
        other => panic!("{env:?}: expected Run, got {other:?}"),
    }
}

/// Options that have no variable, because they make no sense for an init started by a
/// container engine: the daemon's (PID 1 must stay in the foreground, or the container ends),
/// `--pidfile` (PID 1 has pid 1), and the one-shot ones. `--no-subreaper` is
/// `REAPER_SUBREAPER=0`. `--ps` and `--max-zombies` are a diagnostic run beside the init.
/// `--also` and `--respawn` name commands to run: they belong in the
/// ENTRYPOINT beside COMMAND, not in a variable that a `docker run -e` could inject.
/// `REAPER_SUBREAPER=0`. `--sleep` is a mode of its own, not a setting of the init, and so are
/// `--probe` and its `--timeout` (a health check run beside the init).
const WITHOUT_VARIABLE: &[&str] = &[
    "--probe",
    "--timeout",
    "--ps",
    "--max-zombies",
    "--also",
    "--respawn",
    "--no-subreaper",
    "--sleep",
    "--daemon",
    "--pidfile",
    "--chdir",
    "--umask",
    "--stdout",
    "--stderr",
    "--help",
    "--version",
];

/// Every `--long` option of `--help` and the `REAPER_*` variable named in its entry (an entry
/// is an option line and the deeper-indented lines under it).
fn help_options() -> Vec<(&'static str, Option<&'static str>)> {
    let mut entries: Vec<String> = Vec::new();
    for line in HELP.lines() {
        match entries.last_mut() {
            Some(entry) if line.starts_with("          ") => entry.push_str(line),
            _ if line.trim_start().starts_with('-') => entries.push(line.to_owned()),
            _ => {}
        }
    }
    entries
        .into_iter()
        .filter_map(|entry| {
            let entry: &'static str = entry.leak();
            let long = entry.split_whitespace().find(|w| w.starts_with("--") && w.len() > 2)?;
            let var = entry.rsplit_once('[').and_then(|(_, v)| v.split([']', '=', ' ']).next());
            Some((long.trim_end_matches(','), var.filter(|v| v.starts_with("REAPER_"))))
        })
        .collect()
}

#[test]
fn every_option_that_fits_docker_init_has_a_variable() {
    let options = help_options();
    assert!(options.len() > 20, "help parsing found too little: {options:?}");
    for (long, var) in &options {
        if WITHOUT_VARIABLE.contains(long) {
            assert_eq!(*var, None, "{long} is listed as having no variable");
        } else {
            assert!(
                var.is_some(),
                "{long} has no REAPER_* variable in --help (or belongs in WITHOUT_VARIABLE)"
            );
        }
    }
}

/// What a variable must change in the parsed options.
type Effect = fn(&Options) -> bool;

/// Each variable `--help` names, set, changes what `docker-init -- CMD` runs with.
#[test]
fn every_variable_in_help_takes_effect() {
    let cases: &[(&str, &str, Effect)] = &[
        ("REAPER_SUBREAPER", "0", |o| !o.subreaper),
        ("REAPER_PROCESS_GROUP", "1", |o| o.process_group),
        ("REAPER_PDEATHSIG", "KILL", |o| o.pdeathsig == Some(libc::SIGKILL)),
        ("REAPER_REMAP_EXIT", "143", |o| o.remap_exit == [143]),
        ("REAPER_WARN_ON_REAP", "yes", |o| o.warn_on_reap),
        ("REAPER_REWRITE", "TERM:QUIT", |o| o.rewrite == [(libc::SIGTERM, libc::SIGQUIT)]),
        ("REAPER_DRAIN", "1s", |o| o.drain == Duration::from_secs(1)),
        ("REAPER_DRAIN_SIGNAL", "INT", |o| o.drain_signal == libc::SIGINT),
        ("REAPER_KILL_AFTER", "5s", |o| o.kill_after == Some(Duration::from_secs(5))),
        ("REAPER_STOP_DELAY", "5s", |o| o.stop_delay == Duration::from_secs(5)),
        ("REAPER_WAIT_ALL", "1", |o| o.wait_all),
        ("REAPER_FOLLOW_PIDFILE", "/run/app.pid", |o| {
            o.follow_pidfile.as_deref() == Some(std::path::Path::new("/run/app.pid"))
        }),
        ("REAPER_LOG", "debug", |o| o.log_filter.as_deref() == Some("debug")),
        ("REAPER_USER", "app", |o| o.user.as_ref().is_some_and(|(_, source)| *source == "REAPER_USER")),
        ("REAPER_NO_NEW_PRIVS", "1", |o| o.no_new_privs),
        ("REAPER_PREFIX_OUTPUT", "1", |o| o.prefix_output),
    ];
    for (var, value, effect) in cases {
        let o = docker_init(&[(var, value)]);
        assert!(effect(&o), "{var}={value} had no effect: {o:?}");
        assert!(!effect(&docker_init(&[])), "{var}: the default already has this effect");
    }
    // REAPER_PAUSE takes no command: `reaper` alone, as an infra container's entrypoint would be.
    assert!(matches!(try_parse(&[], &[("REAPER_PAUSE", "1")]), Ok(Parsed::Run(o)) if o.pause));
    let tested: Vec<&str> = cases.iter().map(|c| c.0).chain(["REAPER_PAUSE"]).collect();
    for (long, var) in help_options() {
        if let Some(var) = var {
            assert!(tested.contains(&var), "{var} ({long}) is in --help but not tested here");
        }
    }
}

#[test]
fn follow_pidfile_from_the_environment() {
    let o = docker_init(&[("REAPER_FOLLOW_PIDFILE", "/run/nginx.pid")]);
    assert_eq!(o.follow_pidfile, Some(PathBuf::from("/run/nginx.pid")));
    // The flag wins over the variable.
    match try_parse(&["--follow-pidfile", "/a.pid", "x"], &[("REAPER_FOLLOW_PIDFILE", "/b.pid")]) {
        Ok(Parsed::Run(o)) => assert_eq!(o.follow_pidfile, Some(PathBuf::from("/a.pid"))),
        other => panic!("{other:?}"),
    }
    // Bad values are usage errors naming the variable, as for the flag.
    for (env, want) in [
        (&[("REAPER_FOLLOW_PIDFILE", "")][..], "REAPER_FOLLOW_PIDFILE: empty path"),
        (
            &[("REAPER_FOLLOW_PIDFILE", "/x.pid"), ("REAPER_WAIT_ALL", "1")],
            "REAPER_WAIT_ALL=1 and REAPER_FOLLOW_PIDFILE=/x.pid exclude each other",
        ),
        (&[("REAPER_FOLLOW_PIDFILE", "/x.pid"), ("REAPER_PAUSE", "1")], "REAPER_PAUSE=1 takes no COMMAND"),
    ] {
        match try_parse(&["--", "sleep", "1"], env) {
            Err(e @ Error::Usage(_)) => assert_eq!(e.message(), want, "{env:?}"),
            other => panic!("{env:?}: expected a usage error, got {other:?}"),
        }
    }
}

/// dockerd's parser (daemon/info_unix.go, parseInitVersion): split on " - ", the second part
/// split on "." must be exactly ["git", COMMIT]. Anything else logs "failed to parse … unknown
/// output format" and shows the init version as N/A.
fn dockerd_init_commit(output: &str) -> Option<&str> {
    let second = output.split(" - ").nth(1)?;
    match second.trim().split('.').collect::<Vec<_>>()[..] {
        ["git", commit] => Some(commit),
        _ => None,
    }
}

#[test]
fn version_is_what_dockerd_parses() {
    assert!(VERSION.ends_with('\n') && VERSION.lines().count() == 1, "{VERSION:?}");
    let version = format!("reaper {} - git.", env!("CARGO_PKG_VERSION"));
    assert!(VERSION.starts_with(&version), "{VERSION:?}");
    let commit = dockerd_init_commit(VERSION).unwrap_or_else(|| panic!("dockerd cannot parse {VERSION:?}"));
    // The commit the build script saw: this checkout's HEAD, or the documented fallback.
    let head = std::process::Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match (std::env::var("REAPER_BUILD_COMMIT"), head) {
        (Ok(c), _) if !c.trim().is_empty() => {}
        (_, Some(head)) => assert_eq!(commit, head, "stale commit: rebuild (build.rs watches .git/HEAD)"),
        (_, None) => assert_eq!(commit, "unknown"),
    }
    assert!(matches!(try_parse(&["-V"], &[]), Ok(Parsed::Version)));
    // The old format, for contrast, is what dockerd rejected.
    assert_eq!(dockerd_init_commit("reaper 0.1.0\n"), None);
    assert_eq!(dockerd_init_commit("tini version 0.19.0 - git.de40ad0\n"), Some("de40ad0"));
}

/// One bad value for each variable reaper reads.
const BAD_ENVIRONMENT: &[(&str, &str)] = &[
    ("REAPER_SUBREAPER", "maybe"),
    ("REAPER_PROCESS_GROUP", "maybe"),
    ("REAPER_PDEATHSIG", "FOO"),
    ("REAPER_REMAP_EXIT", "300"),
    ("REAPER_WARN_ON_REAP", "maybe"),
    ("REAPER_REWRITE", "KILL:TERM"),
    ("REAPER_DRAIN", "bogus"),
    ("REAPER_DRAIN_SIGNAL", "FOO"),
    ("REAPER_KILL_AFTER", "18446744073709551615s"),
    ("REAPER_STOP_DELAY", "x"),
    ("REAPER_PAUSE", "maybe"),
    ("REAPER_WAIT_ALL", "maybe"),
    ("REAPER_FOLLOW_PIDFILE", ""),
    ("TINI_VERBOSITY", "loud"),
];

/// Issue 19: the environment was parsed before `--version`, so `REAPER_DRAIN=bogus reaper
/// --version` exited 2, and dockerd runs `docker-init --version` for `docker info`. --help,
/// --version, --ps and --sleep use no REAPER_*/TINI_* setting: each bad value leaves them
/// working, while a run with it is still a usage error naming the variable.
#[test]
fn version_help_ps_and_sleep_ignore_a_bad_environment() {
    for &(var, value) in BAD_ENVIRONMENT {
        let env = [(var, value)];
        assert!(matches!(try_parse(&["--version"], &env), Ok(Parsed::Version)), "{var}={value}");
        assert!(matches!(try_parse(&["-V"], &env), Ok(Parsed::Version)), "{var}={value}");
        assert!(matches!(try_parse(&["--help"], &env), Ok(Parsed::Help)), "{var}={value}");
        assert!(matches!(try_parse(&["-g", "-h"], &env), Ok(Parsed::Help)), "{var}={value}");
        assert!(
            matches!(
                try_parse(&["--ps", "--max-zombies", "3"], &env),
                Ok(Parsed::Ps { max_zombies: Some(3) })
            ),
            "{var}={value}"
        );
        assert!(
            matches!(try_parse(&["--sleep", "2s"], &env), Ok(Parsed::Sleep(d)) if d == Duration::from_secs(2)),
            "{var}={value}"
        );
        match try_parse(&["--", "sleep", "1"], &env) {
            Err(e @ Error::Usage(_)) => {
                assert!(e.message().starts_with(&format!("{var}: ")), "{}", e.message())
            }
            other => panic!("{var}={value}: a run must still refuse it, got {other:?}"),
        }
    }
    // All at once, too.
    assert!(matches!(try_parse(&["--version"], BAD_ENVIRONMENT), Ok(Parsed::Version)));
    // Their own usage errors still count.
    for args in [&["--ps", "x"][..], &["--sleep", "1", "x"], &["--sleep", "1", "--pause"]] {
        assert!(matches!(try_parse(args, BAD_ENVIRONMENT), Err(Error::Usage(_))), "{args:?}");
    }
}

/// A pause container's image sets REAPER_PAUSE=1 for its init; `--sleep` run in it (a preStop
/// hook through `docker exec`) is not that init, and was refused as "--sleep cannot be
/// combined with --pause".
#[test]
fn sleep_ignores_reaper_pause_from_the_environment() {
    let env = [("REAPER_PAUSE", "1")];
    assert!(matches!(try_parse(&["--sleep", "1"], &env), Ok(Parsed::Sleep(_))));
    assert!(matches!(try_parse(&[], &env), Ok(Parsed::Run(o)) if o.pause), "the init still pauses");
    // --pause as a flag and REAPER_PAUSE=0: the flag wins, as for every option.
    assert!(matches!(try_parse(&["--pause"], &[("REAPER_PAUSE", "0")]), Ok(Parsed::Run(o)) if o.pause));
}

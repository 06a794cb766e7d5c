//! Option parsing through the library: `reaper::options::parse_with_env` / `parse`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use log::LevelFilter;
use reaper::error::Error;
use reaper::options::{Options, Parsed, parse, parse_with_env};

fn try_parse(args: &[&str], env: &[(&str, &str)]) -> Result<Parsed, Error> {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, OsStr::new(v))).collect();
    parse_with_env(&args, &env)
}

/// Parses a command line that must be valid and run something.
fn opts(args: &[&str], env: &[(&str, &str)]) -> Options {
    match try_parse(args, env) {
        Ok(Parsed::Run(o)) => *o,
        other => panic!("{args:?} {env:?}: expected Run, got {other:?}"),
    }
}

/// Parses a command line that must be a usage error; returns the message.
fn usage_error(args: &[&str], env: &[(&str, &str)]) -> String {
    match try_parse(args, env) {
        Err(e @ Error::Usage(_)) => {
            assert_eq!(e.exit_code(), 2, "{args:?} {env:?}");
            assert!(e.report().ends_with("\nTry 'reaper --help'."), "{args:?}: {}", e.report());
            e.message()
        }
        other => panic!("{args:?} {env:?}: expected a usage error, got {other:?}"),
    }
}

fn command(o: &Options) -> Vec<&str> {
    o.command.iter().map(|a| a.to_str().unwrap()).collect()
}

#[test]
fn defaults() {
    let o = opts(&["true"], &[]);
    assert_eq!(o, Options { command: vec![OsString::from("true")], ..Options::default() });
    assert!(o.subreaper, "subreaper is the default");
    assert!(!o.process_group);
    assert_eq!(o.pdeathsig, None);
    assert!(o.remap_exit.is_empty());
    assert!(!o.warn_on_reap);
    assert_eq!(o.log_level, LevelFilter::Warn);
    assert_eq!(o.log_filter, None);
}

#[test]
fn options_end_at_the_first_non_option() {
    let o = opts(&["sh", "-c", "x"], &[]);
    assert_eq!(command(&o), ["sh", "-c", "x"]);
    assert_eq!(o, opts(&["--", "sh", "-c", "x"], &[]));

    let o = opts(&["-g", "cmd", "-g", "-v", "--help", "-e", "256", "--", "x"], &[]);
    assert!(o.process_group);
    assert_eq!(o.log_level, LevelFilter::Warn, "-v after COMMAND is COMMAND's");
    assert!(o.remap_exit.is_empty());
    assert_eq!(command(&o), ["cmd", "-g", "-v", "--help", "-e", "256", "--", "x"]);
    // --help after COMMAND is the command's, not ours.
    assert!(matches!(try_parse(&["sh", "--help"], &[]), Ok(Parsed::Run(_))));
}

#[test]
fn double_dash() {
    let o = opts(&["--", "cmd", "-v"], &[]);
    assert_eq!(command(&o), ["cmd", "-v"]);
    assert_eq!(o.log_level, LevelFilter::Warn);

    // A command whose name starts with a dash.
    assert_eq!(command(&opts(&["--", "-v"], &[])), ["-v"]);
    // Only the first -- is ours.
    assert_eq!(command(&opts(&["-v", "--", "--", "x"], &[])), ["--", "x"]);
    assert_eq!(opts(&["-v", "--", "--", "x"], &[]).log_level, LevelFilter::Info);
    // Options before -- still count.
    let o = opts(&["-g", "-e", "3", "--", "cmd"], &[]);
    assert!(o.process_group);
    assert_eq!(o.remap_exit, [3]);

    assert!(usage_error(&["--"], &[]).contains("missing COMMAND"));
    assert!(usage_error(&["-g", "--"], &[]).contains("missing COMMAND"));
}

#[test]
fn missing_command_and_unknown_options() {
    assert!(usage_error(&[], &[]).contains("missing COMMAND"));
    assert!(usage_error(&["-g"], &[]).contains("missing COMMAND"));
    assert!(usage_error(&["--bogus", "true"], &[]).contains("--bogus"));
    assert!(usage_error(&["-x", "true"], &[]).contains("-x"));
    // An option that needs a value and has none.
    assert!(usage_error(&["-e"], &[]).contains("-e"));
    assert!(usage_error(&["-p"], &[]).contains("-p"));
    // Flags do not take values.
    assert!(!usage_error(&["--process-group=yes", "true"], &[]).is_empty());
}

#[test]
fn verbosity() {
    let level = |args: &[&str]| {
        let mut a = args.to_vec();
        a.push("true");
        opts(&a, &[]).log_level
    };
    assert_eq!(level(&[]), LevelFilter::Warn);
    assert_eq!(level(&["-v"]), LevelFilter::Info);
    assert_eq!(level(&["-vv"]), LevelFilter::Debug);
    assert_eq!(level(&["-vvv"]), LevelFilter::Trace);
    assert_eq!(level(&["-vvvvvv"]), LevelFilter::Trace);
    assert_eq!(level(&["-v", "-v", "-v"]), LevelFilter::Trace);
    assert_eq!(level(&["--verbose", "--verbose"]), LevelFilter::Debug);
    assert_eq!(level(&["-q"]), LevelFilter::Error);
    assert_eq!(level(&["-qq"]), LevelFilter::Off);
    assert_eq!(level(&["-qqqq"]), LevelFilter::Off);
    assert_eq!(level(&["--quiet"]), LevelFilter::Error);
    assert_eq!(level(&["-vq"]), LevelFilter::Warn);
    assert_eq!(level(&["-vvq"]), LevelFilter::Info);
    // Clustered with other short flags.
    let o = opts(&["-gvvw", "true"], &[]);
    assert!(o.process_group && o.warn_on_reap);
    assert_eq!(o.log_level, LevelFilter::Debug);
}

#[test]
fn short_and_long_forms_agree() {
    let short = opts(&["-s", "-g", "-p", "USR1", "-e", "143", "-e", "3", "-w", "cmd"], &[]);
    let long = opts(
        &[
            "--subreaper",
            "--process-group",
            "--pdeathsig",
            "SIGUSR1",
            "--remap-exit",
            "143",
            "--remap-exit=3",
            "--warn-on-reap",
            "cmd",
        ],
        &[],
    );
    assert_eq!(short, long);
    assert!(short.subreaper && short.process_group && short.warn_on_reap);
    assert_eq!(short.pdeathsig, Some(libc::SIGUSR1));
    assert_eq!(short.remap_exit, [143, 3]);
    assert!(!opts(&["--no-subreaper", "cmd"], &[]).subreaper);
    // Attached values.
    assert_eq!(opts(&["-pTERM", "x"], &[]).pdeathsig, Some(15));
    assert_eq!(opts(&["-e7", "x"], &[]).remap_exit, [7]);
}

#[test]
fn pdeathsig_values() {
    for (text, sig) in [
        ("TERM", 15),
        ("SIGTERM", 15),
        ("sigterm", 15),
        ("15", 15),
        ("KILL", 9),
        ("USR1", libc::SIGUSR1),
        ("RTMIN", 34),
        ("RTMIN+3", 37),
        ("SIGRTMIN+3", 37),
        ("RTMAX-1", 63),
        ("64", 64),
    ] {
        assert_eq!(opts(&["-p", text, "x"], &[]).pdeathsig, Some(sig), "{text}");
    }
    for bad in ["FOO", "0", "32", "65", "-1", "RTMIN+31", ""] {
        let msg = usage_error(&["-p", bad, "x"], &[]);
        assert!(msg.contains(&format!("'{bad}'")), "{bad}: {msg}");
    }
}

#[test]
fn remap_exit_values() {
    assert_eq!(opts(&["-e", "0", "x"], &[]).remap_exit, [0]);
    assert_eq!(opts(&["-e", "255", "x"], &[]).remap_exit, [255]);
    assert_eq!(opts(&["-e", "1", "-e", "2", "-e", "143", "x"], &[]).remap_exit, [1, 2, 143]);
    for bad in ["256", "-1", "x", "", "1.5", "1,2"] {
        let msg = usage_error(&["-e", bad, "x"], &[]);
        assert!(msg.contains("exit code"), "{bad}: {msg}");
    }
}

#[test]
fn remap_exit_env_comma_list() {
    let remap = |v: &str| opts(&["x"], &[("REAPER_REMAP_EXIT", v)]).remap_exit;
    assert_eq!(remap("143"), [143]);
    assert_eq!(remap("143,3"), [143, 3]);
    assert_eq!(remap(" 1 , 2 ,, 255 "), [1, 2, 255]);
    assert_eq!(remap("1,"), [1]);
    assert!(remap("").is_empty());
    for bad in ["256", "1,x", "1;2", "-1"] {
        let msg = usage_error(&["x"], &[("REAPER_REMAP_EXIT", bad)]);
        assert!(msg.contains("REAPER_REMAP_EXIT"), "{bad}: {msg}");
    }
    // The flags replace the environment's list.
    assert_eq!(opts(&["-e", "3", "x"], &[("REAPER_REMAP_EXIT", "9,10")]).remap_exit, [3]);
}

#[test]
fn boolean_environment_values() {
    for v in ["1", "true", "yes", "on", "TRUE", "Yes", "ON", " on "] {
        let o =
            opts(&["x"], &[("REAPER_PROCESS_GROUP", v), ("REAPER_WARN_ON_REAP", v), ("REAPER_SUBREAPER", v)]);
        assert!(o.process_group && o.warn_on_reap && o.subreaper, "{v:?}");
    }
    for v in ["0", "false", "no", "off", "FALSE", "Off"] {
        let o =
            opts(&["x"], &[("REAPER_PROCESS_GROUP", v), ("REAPER_WARN_ON_REAP", v), ("REAPER_SUBREAPER", v)]);
        assert!(!o.process_group && !o.warn_on_reap && !o.subreaper, "{v:?}");
    }
    for var in ["REAPER_SUBREAPER", "REAPER_PROCESS_GROUP", "REAPER_WARN_ON_REAP"] {
        for bad in ["maybe", "", "2", "y", "enabled"] {
            let msg = usage_error(&["x"], &[(var, bad)]);
            assert!(msg.contains(var), "{var}={bad}: {msg}");
            assert!(msg.contains(&format!("'{bad}'")), "{var}={bad}: {msg}");
        }
    }
}

#[test]
fn flags_win_over_environment() {
    assert!(opts(&["-g", "x"], &[("REAPER_PROCESS_GROUP", "0")]).process_group);
    assert!(opts(&["-s", "x"], &[("REAPER_SUBREAPER", "0")]).subreaper);
    assert!(!opts(&["x"], &[("REAPER_SUBREAPER", "0")]).subreaper);
    assert!(!opts(&["--no-subreaper", "x"], &[("REAPER_SUBREAPER", "1")]).subreaper);
    assert!(opts(&["-w", "x"], &[("REAPER_WARN_ON_REAP", "off")]).warn_on_reap);
    assert_eq!(opts(&["-p", "KILL", "x"], &[("REAPER_PDEATHSIG", "TERM")]).pdeathsig, Some(9));
    assert_eq!(opts(&["x"], &[("REAPER_PDEATHSIG", "RTMIN+3")]).pdeathsig, Some(37));
    assert!(usage_error(&["x"], &[("REAPER_PDEATHSIG", "FOO")]).contains("REAPER_PDEATHSIG"));
    // A bad environment value is an error even if a flag would override it.
    assert!(usage_error(&["-g", "x"], &[("REAPER_PROCESS_GROUP", "maybe")]).contains("REAPER_PROCESS_GROUP"));
}

#[test]
fn tini_variables() {
    // tini: any value, even empty or 0, turns the feature on.
    for v in ["", "0", "1", "anything"] {
        assert!(opts(&["x"], &[("TINI_KILL_PROCESS_GROUP", v)]).process_group, "{v:?}");
        assert!(
            !opts(&["x"], &[("TINI_SUBREAPER", v), ("REAPER_SUBREAPER", "0")]).subreaper,
            "REAPER_SUBREAPER wins over TINI_SUBREAPER"
        );
    }
    assert!(opts(&["x"], &[("TINI_SUBREAPER", "")]).subreaper);
    assert!(!opts(&["--no-subreaper", "x"], &[("TINI_SUBREAPER", "1")]).subreaper);
    // REAPER_* wins over TINI_*.
    assert!(
        !opts(&["x"], &[("TINI_KILL_PROCESS_GROUP", "1"), ("REAPER_PROCESS_GROUP", "off")]).process_group
    );
    assert!(!opts(&["x"], &[("TINI_KILL_PROCESS_GROUP_X", "1")]).process_group);

    // TINI_VERBOSITY: 0 fatal only, 1 warnings (default), 2 info, 3 debug, 4 trace.
    let verbosity = |v: &str| opts(&["x"], &[("TINI_VERBOSITY", v)]).log_level;
    assert_eq!(verbosity("0"), LevelFilter::Error);
    assert_eq!(verbosity("1"), LevelFilter::Warn);
    assert_eq!(verbosity("2"), LevelFilter::Info);
    assert_eq!(verbosity("3"), LevelFilter::Debug);
    assert_eq!(verbosity("4"), LevelFilter::Trace);
    assert_eq!(verbosity("99"), LevelFilter::Trace);
    assert!(usage_error(&["x"], &[("TINI_VERBOSITY", "loud")]).contains("TINI_VERBOSITY"));
    // -v/-q flags win over TINI_VERBOSITY.
    assert_eq!(opts(&["-q", "x"], &[("TINI_VERBOSITY", "3")]).log_level, LevelFilter::Error);
}

#[test]
fn reaper_log_filter() {
    assert_eq!(opts(&["x"], &[("REAPER_LOG", "debug")]).log_filter.as_deref(), Some("debug"));
    assert_eq!(opts(&["x"], &[("REAPER_LOG", "")]).log_filter, None);
    assert_eq!(opts(&["x"], &[]).log_filter, None);
}

#[test]
fn help_and_version() {
    for a in [&["-h"][..], &["--help"], &["-g", "--help"], &["-h", "x"]] {
        assert!(matches!(try_parse(a, &[]), Ok(Parsed::Help)), "{a:?}");
    }
    for a in [&["-V"][..], &["--version"], &["-v", "-V"]] {
        assert!(matches!(try_parse(a, &[]), Ok(Parsed::Version)), "{a:?}");
    }
    assert!(reaper::options::HELP.contains("Usage: reaper"));
}

#[test]
fn non_utf8_arguments_are_kept() {
    let raw = OsString::from_vec(b"\xff\xfe arg".to_vec());
    let args: Vec<&OsStr> = ["cmd", "", " spaced "].iter().map(OsStr::new).chain([raw.as_os_str()]).collect();
    match parse_with_env(&args, &[]) {
        Ok(Parsed::Run(o)) => {
            let got: Vec<&[u8]> = o.command.iter().map(|a| a.as_bytes()).collect();
            assert_eq!(got, [&b"cmd"[..], b"", b" spaced ", b"\xff\xfe arg"], "arguments changed");
        }
        other => panic!("{other:?}"),
    }
    // A non-UTF-8 option value is a usage error, not a panic.
    let bad = OsString::from_vec(b"\xff".to_vec());
    let args = [OsStr::new("-p"), bad.as_os_str(), OsStr::new("x")];
    assert!(matches!(parse_with_env(&args, &[]), Err(Error::Usage(_))));
    // So is a non-UTF-8 environment value.
    let env = [("REAPER_SUBREAPER", bad.as_os_str())];
    assert!(matches!(
        parse_with_env(&[OsStr::new("x")], &env),
        Err(Error::Usage(m)) if m.contains("REAPER_SUBREAPER")
    ));
}

#[test]
fn parse_takes_an_environment_lookup() {
    let args = ["-g", "sh", "-c", "exit 3"].map(OsString::from);
    let got = parse(args, |k| (k == "REAPER_REMAP_EXIT").then(|| OsString::from("3")));
    match got {
        Ok(Parsed::Run(o)) => {
            assert!(o.process_group);
            assert_eq!(o.remap_exit, [3]);
            assert_eq!(command(&o), ["sh", "-c", "exit 3"]);
        }
        other => panic!("{other:?}"),
    }
    // The lookup is what counts, not the test process's real environment.
    let got = parse([OsString::from("x")], |_| None);
    assert!(matches!(got, Ok(Parsed::Run(o)) if o.remap_exit.is_empty() && o.subreaper));
}

#[test]
fn stop_delay_from_flag_or_environment() {
    use std::time::Duration;
    assert_eq!(opts(&["true"], &[]).stop_delay, Duration::ZERO, "off by default");
    assert_eq!(opts(&["--stop-delay", "5s", "true"], &[]).stop_delay, Duration::from_secs(5));
    assert_eq!(opts(&["true"], &[("REAPER_STOP_DELAY", "500ms")]).stop_delay, Duration::from_millis(500));
    let o = opts(&["--stop-delay", "2", "true"], &[("REAPER_STOP_DELAY", "9s")]);
    assert_eq!(o.stop_delay, Duration::from_secs(2), "the flag wins");
    assert_eq!(opts(&["--pause", "--stop-delay", "1s"], &[]).stop_delay, Duration::from_secs(1));
    assert_eq!(
        usage_error(&["--stop-delay", "soon", "true"], &[]),
        "invalid duration 'soon' (e.g. 500ms, 3s, 1m)"
    );
    assert_eq!(
        usage_error(&["true"], &[("REAPER_STOP_DELAY", "x")]),
        "REAPER_STOP_DELAY: invalid duration 'x' (e.g. 500ms, 3s, 1m)"
    );
}

#[test]
fn sleep_is_a_mode_of_its_own() {
    use std::time::Duration;
    let sleep = |args: &[&str]| match try_parse(args, &[]) {
        Ok(Parsed::Sleep(d)) => d,
        other => panic!("{args:?}: expected Sleep, got {other:?}"),
    };
    assert_eq!(sleep(&["--sleep", "5s"]), Duration::from_secs(5));
    assert_eq!(sleep(&["--sleep", "0.25"]), Duration::from_millis(250));
    assert_eq!(sleep(&["--sleep=1m"]), Duration::from_secs(60));
    // reaper's own settings, e.g. from a container's environment under `docker exec`, do no harm.
    assert_eq!(sleep(&["-v", "--sleep", "1"]), Duration::from_secs(1));
    for (args, want) in [
        (&["--sleep", "5s", "true"][..], "--sleep takes no COMMAND"),
        (&["--sleep", "5s", "--", "true"], "--sleep takes no COMMAND"),
        (&["--sleep", "5s", "--pause"], "--sleep cannot be combined with --pause or --daemon"),
        (&["-d", "--sleep", "5s"], "--sleep cannot be combined with --pause or --daemon"),
        (&["--sleep", "5 parsecs"], "invalid duration '5 parsecs' (e.g. 500ms, 3s, 1m)"),
        (&["--sleep"], "missing argument for option '--sleep'"),
    ] {
        assert_eq!(usage_error(args, &[]), want, "{args:?}");
    }
}

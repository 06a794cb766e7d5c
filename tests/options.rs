//! Option parsing through the library: `reaper::options::parse_with_env` / `parse`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::time::Duration;

use log::LevelFilter;
use reaper::command::{Command, Role, Settings};
use reaper::error::Error;
use reaper::options::{Daemon, Options, Parsed, parse, parse_with_env};

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
    o.commands[0].argv.iter().map(|a| a.to_str().unwrap()).collect()
}

#[test]
fn defaults() {
    let o = opts(&["true"], &[]);
    let main =
        Command { argv: vec![OsString::from("true")], settings: Settings::new("true".into(), Role::Main) };
    assert_eq!(o, Options { commands: vec![main], ..Options::default() });
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
    for bad in ["256", "-1", "x", "", "1.5"] {
        let msg = usage_error(&["-e", bad, "x"], &[]);
        assert_eq!(msg, format!("--remap-exit: invalid exit code '{bad}' (0-255)"));
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
    assert_eq!(verbosity(" 2 "), LevelFilter::Info);
    assert_eq!(verbosity("-3"), LevelFilter::Error);
    for bad in ["loud", "2x", "1.5"] {
        assert_eq!(
            usage_error(&["x"], &[("TINI_VERBOSITY", bad)]),
            format!("TINI_VERBOSITY: invalid verbosity '{bad}' (a number, 0-4)")
        );
    }
    // -v/-q flags win over TINI_VERBOSITY.
    assert_eq!(opts(&["-q", "x"], &[("TINI_VERBOSITY", "3")]).log_level, LevelFilter::Error);
}

/// Issue 19: tini reads TINI_VERBOSITY with atoi(3), so an empty value is 0 (errors only);
/// reaper refused it as a usage error.
#[test]
fn empty_tini_verbosity_is_0_as_in_tini() {
    for v in ["", " ", "0"] {
        assert_eq!(opts(&["x"], &[("TINI_VERBOSITY", v)]).log_level, LevelFilter::Error, "{v:?}");
    }
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
    // Whatever the environment holds (tests/env_options.rs tries every variable).
    let bad = [("REAPER_DRAIN", "bogus"), ("TINI_VERBOSITY", "loud")];
    assert!(matches!(try_parse(&["--version"], &bad), Ok(Parsed::Version)));
    assert!(matches!(try_parse(&["--help"], &bad), Ok(Parsed::Help)));
    assert!(matches!(try_parse(&["--ps"], &bad), Ok(Parsed::Ps { max_zombies: None })));
    assert!(matches!(try_parse(&["--sleep", "1"], &bad), Ok(Parsed::Sleep(_))));
    assert!(usage_error(&["x"], &bad).starts_with("TINI_VERBOSITY: "), "a run still refuses it");
}

#[test]
fn non_utf8_arguments_are_kept() {
    let raw = OsString::from_vec(b"\xff\xfe arg".to_vec());
    let args: Vec<&OsStr> = ["cmd", "", " spaced "].iter().map(OsStr::new).chain([raw.as_os_str()]).collect();
    match parse_with_env(&args, &[]) {
        Ok(Parsed::Run(o)) => {
            let got: Vec<&[u8]> = o.commands[0].argv.iter().map(|a| a.as_bytes()).collect();
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
fn parse_takes_the_environment_as_name_value_pairs() {
    let args = ["-g", "sh", "-c", "exit 3"].map(OsString::from);
    // As getenv(3): a name's first value counts; other variables are not reaper's business.
    let env = [("PATH", "/bin"), ("REAPER_REMAP_EXIT", "3"), ("REAPER_REMAP_EXIT", "bad")];
    let got = parse(args, env.map(|(k, v)| (OsStr::new(k), OsStr::new(v))));
    match got {
        Ok(Parsed::Run(o)) => {
            assert!(o.process_group);
            assert_eq!(o.remap_exit, [3]);
            assert_eq!(command(&o), ["sh", "-c", "exit 3"]);
        }
        other => panic!("{other:?}"),
    }
    // The pairs are what counts, not the test process's real environment.
    let got = parse([OsString::from("x")], []);
    assert!(matches!(got, Ok(Parsed::Run(o)) if o.remap_exit.is_empty() && o.subreaper));
}

// ---------------------------------------------------------------------------------------------
// Checks that used to run the binary once per case (tests/core.rs keeps one usage error and
// one environment error through the binary; `Error::report` is exactly what main prints).

/// The report of a rejection: `reaper: MESSAGE` on one line (control characters escaped, so a
/// newline in a value cannot break it nor an escape sequence reach the terminal), then the hint.
fn assert_one_line_report(e: &Error, what: &str) {
    let report = e.report();
    let lines: Vec<&str> = report.split('\n').collect();
    assert_eq!(lines.len(), 2, "{what}: {report:?}");
    assert!(lines[0].starts_with("reaper: ") && lines[0].len() > "reaper: ".len(), "{what}: {report:?}");
    assert!(!lines[0].chars().any(char::is_control), "{what}: raw control character in {report:?}");
    assert_eq!(lines[1], "Try 'reaper --help'.", "{what}");
}

#[test]
fn usage_errors_stay_on_one_line() {
    for (args, env) in [
        (&["-p", "TE\nRM", "true"][..], &[][..]),
        (&["--drain", "1\n2", "true"], &[]),
        (&["-r", "a\nb", "true"], &[]),
        (&["--fo\no", "true"], &[]),
        (&["--umask", "7\r8", "-d", "true"], &[]),
        (&["--drain-signal", "\x1b[2J", "true"], &[]),
        (&["true"], &[("REAPER_DRAIN", "x\ny")]),
    ] {
        let msg = usage_error(args, env);
        let e = Error::Usage(msg.clone());
        assert_one_line_report(&e, &format!("{args:?} {env:?}"));
    }
    // The escaping itself: a newline becomes the two characters `\n`.
    let e = Error::Usage("a\nb\x1b".into());
    assert_eq!(e.report(), "reaper: a\\nb\\u{1b}\nTry 'reaper --help'.");
    // Start failures are one line without the hint.
    assert_eq!(Error::Start("x\ny".into()).report(), "reaper: x\\ny");
}

/// Signal numbers 0, 32, 33, 65, negative ones and nonsense are refused wherever a signal is
/// taken: -p/--pdeathsig, --drain-signal, -r/--rewrite (either side), and their variables.
#[test]
fn bad_signal_numbers_are_usage_errors() {
    let bad = ["0", "32", "33", "65", "-1", "-15", "SIG0", "RTMIN+31", "RTMAX-31", "999999999999"];
    for b in bad {
        for opt in ["-p", "--pdeathsig", "--drain-signal"] {
            let e = usage_error(&[opt, b, "true"], &[]);
            assert!(e.contains(&format!("'{b}'")), "{opt} {b}: {e}");
            usage_error(&[&format!("{opt}={b}"), "true"], &[]);
        }
        usage_error(&["-r", &format!("{b}:TERM"), "true"], &[]);
        if b != "0" {
            // TO 0 means "drop it": valid.
            usage_error(&["--rewrite", &format!("TERM:{b}"), "true"], &[]);
            usage_error(&["true"], &[("REAPER_REWRITE", &format!("HUP:{b}"))]);
        }
        for var in ["REAPER_PDEATHSIG", "REAPER_DRAIN_SIGNAL"] {
            let e = usage_error(&["true"], &[(var, b)]);
            assert!(e.starts_with(&format!("{var}: invalid signal '{b}'")), "{var}={b}: {e}");
        }
    }
    // TO may be 0 or - (drop the signal), but FROM never.
    usage_error(&["-r", "0:0", "true"], &[]);
    // Which message: a number out of range, or not a signal at all.
    assert_eq!(
        usage_error(&["-p", "65", "x"], &[]),
        "--pdeathsig: invalid signal '65': not a signal number (1-31, 34-64)"
    );
    assert_eq!(
        usage_error(&["-p", "RTMIN+31", "x"], &[]),
        "--pdeathsig: invalid signal 'RTMIN+31': not a signal number (1-31, 34-64)"
    );
    assert_eq!(usage_error(&["-p", "FOO", "x"], &[]), "--pdeathsig: invalid signal 'FOO'");
    assert_eq!(
        usage_error(&["--drain-signal", "RTMIN+x", "x"], &[]),
        "--drain-signal: invalid signal 'RTMIN+x'"
    );
}

/// Durations that cannot be represented (past u64 seconds, or not a number at all) are usage
/// errors naming their flag or variable, in every place a duration is taken.
#[test]
fn overflowing_and_bad_durations() {
    for d in [
        "99999999999999999999s",
        "1e30",
        "18446744073709551616",
        "99999999999999999999999",
        "600000000000y",
        "-1",
        "inf",
        "NaN",
        "1.7976931348623157e308",
        "abc",
        "",
        "1x",
        "soon",
        "1.2.3",
        "1.1234567890",
        ".5",
        "1w",
        "1.s",
        "1.1234567890s",
        "ms",
        "1s2",
        "s1",
        "1h -1m",
        "307445734561825861m",
    ] {
        for (opt, named) in [
            ("--drain", "--drain"),
            ("--kill-after", "--kill-after"),
            ("-t", "--kill-after"),
            ("--stop-delay", "--stop-delay"),
        ] {
            let e = usage_error(&[opt, d, "true"], &[]);
            assert_eq!(
                e,
                format!("{named}: invalid duration '{}' (e.g. 500ms, 3s, 1m)", d.trim()),
                "{opt} {d}"
            );
        }
        assert_eq!(
            usage_error(&["--sleep", d], &[]),
            format!("--sleep: invalid duration '{}' (e.g. 500ms, 3s, 1m)", d.trim())
        );
        for var in ["REAPER_KILL_AFTER", "REAPER_DRAIN", "REAPER_STOP_DELAY"] {
            assert_eq!(
                usage_error(&["true"], &[(var, d)]),
                format!("{var}: invalid duration '{}' (e.g. 500ms, 3s, 1m)", d.trim()),
                "{var}={d}"
            );
        }
    }
}

/// Issue 19: `--stop-delay 18446744073709551615s` was accepted and meant "never" (the deadline
/// `now + d` overflowed: a held TERM was never forwarded, --kill-after never armed). Every
/// duration is at most 365 days; above is a usage error naming the flag or variable.
#[test]
fn durations_above_365_days_are_usage_errors() {
    let max = Duration::from_secs(365 * 86_400);
    assert_eq!(reaper::options::MAX_DURATION, max);
    for (d, shown) in [
        ("18446744073709551615s", "18446744073709551615s"),
        ("18446744073709551615", "18446744073709551615"),
        ("10000000000000000000", "10000000000000000000"),
        ("365d 1ns", "365d 1ns"),
        ("31536000.000000001", "31536000.000000001"),
        ("8761h", "8761h"),
        (" 366d ", "366d"),
        ("106751991167300d", "106751991167300d"),
    ] {
        let too_long = format!("duration '{shown}' is too long (at most 365d)");
        for (args, named) in [
            (&["--drain", d, "true"][..], "--drain"),
            (&["--kill-after", d, "true"], "--kill-after"),
            (&["-t", d, "true"], "--kill-after"),
            (&["--stop-delay", d, "true"], "--stop-delay"),
            (&["--pause", "--stop-delay", d], "--stop-delay"),
            (&["--sleep", d], "--sleep"),
        ] {
            assert_eq!(usage_error(args, &[]), format!("{named}: {too_long}"), "{args:?}");
        }
        for var in ["REAPER_DRAIN", "REAPER_KILL_AFTER", "REAPER_STOP_DELAY"] {
            assert_eq!(usage_error(&["true"], &[(var, d)]), format!("{var}: {too_long}"), "{var}={d}");
        }
    }
    // The maximum itself, however written, is taken everywhere.
    for d in ["365d", "8760h", "525600m", "31536000", "31536000s", "31536000.000000000", "364d 24h"] {
        let o = opts(&["--drain", d, "--kill-after", d, "--stop-delay", d, "x"], &[]);
        assert_eq!((o.drain, o.kill_after, o.stop_delay), (max, Some(max), max), "{d}");
        let env = [("REAPER_DRAIN", d), ("REAPER_KILL_AFTER", d), ("REAPER_STOP_DELAY", d)];
        let o = opts(&["x"], &env);
        assert_eq!((o.drain, o.kill_after, o.stop_delay), (max, Some(max), max), "{d}");
        assert!(matches!(try_parse(&["--sleep", d], &[]), Ok(Parsed::Sleep(s)) if s == max), "{d}");
    }
    assert_eq!(reaper::options::duration("31536000").unwrap(), max);
    assert!(reaper::options::duration("31536001").is_err());
}

/// A deadline at the longest duration is armed, and behaves: `Instant + MAX_DURATION` does
/// not overflow even a century into the clock (std's Instant is i64 seconds on every target),
/// so the state machine forwards a held TERM on a second TERM, arms --kill-after, drains, and
/// a pause exits on a second TERM.
#[test]
fn deadlines_at_the_longest_duration_are_armed() {
    use reaper::state::Ended;
    use reaper::state::{Config, Deadline, Effect, Event, Machine, Proc, Target};
    let max = reaper::options::MAX_DURATION;
    let o = opts(&["--stop-delay", "365d", "--kill-after", "365d", "--drain", "365d", "x"], &[]);
    let cfg = Config {
        kill_after: o.kill_after,
        drain: o.drain,
        drain_signal: o.drain_signal,
        stop_delay: o.stop_delay,
        ..Config::default()
    };
    let main = Proc { pid: 10, pgid: 10 };
    let sends = |effects: Vec<Effect>| -> Vec<(Target, i32)> {
        effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::Send { to, sig } => Some((to, sig)),
                _ => None,
            })
            .collect()
    };
    // However long the machine has been up.
    for now in
        [std::time::Instant::now(), std::time::Instant::now() + Duration::from_secs(100 * 365 * 86_400)]
    {
        let mut m = Machine::new(cfg.clone(), vec![(0, main)]);
        assert_eq!(sends(m.handle(Event::Signal(libc::SIGTERM), now)), [], "the first TERM is held");
        assert_eq!(m.next_deadline(), Some(now + max), "--stop-delay armed");
        // A second TERM ends the delay: forwarded, and --kill-after counts from here.
        let later = now + Duration::from_secs(1);
        assert_eq!(sends(m.handle(Event::Signal(libc::SIGTERM), later)), [(Target::Pid(10), libc::SIGTERM)]);
        assert_eq!(m.next_deadline(), Some(later + max), "--kill-after armed");
        // The command exits, a leftover remains: the drain's deadline is armed too.
        m.handle(Event::Reaped { pid: 10, ended: Ended::Exited(0), name: None }, later);
        m.handle(Event::BatchDone { children_left: true }, later);
        assert_eq!(m.deadline(Deadline::Drain), Some(later + max));

        // --pause with the longest --stop-delay: the first TERM arms the exit, a second exits.
        let mut m = Machine::new(cfg.clone(), Vec::new());
        m.handle(Event::Signal(libc::SIGTERM), now);
        assert_eq!(m.deadline(Deadline::PauseExit), Some(now + max));
        m.handle(Event::Signal(libc::SIGTERM), later);
        assert_eq!(m.exit_code(), Some(0));
    }
}

#[test]
fn good_durations() {
    for (text, want) in [
        ("500ms", Duration::from_millis(500)),
        ("1m", Duration::from_secs(60)),
        ("1h 30m", Duration::from_secs(5400)),
        ("3s", Duration::from_secs(3)),
        (" 3s ", Duration::from_secs(3)),
        ("2", Duration::from_secs(2)),
        ("0", Duration::ZERO),
        ("0.5", Duration::from_millis(500)),
        ("1.25", Duration::from_millis(1250)),
        ("5.", Duration::from_secs(5)),
        ("0.000000001", Duration::from_nanos(1)),
        ("2.123456789", Duration::new(2, 123_456_789)),
        ("007", Duration::from_secs(7)),
        ("1h30m", Duration::from_secs(5400)),
        ("2d", Duration::from_secs(172_800)),
        ("1500us", Duration::from_micros(1500)),
        ("1500µs", Duration::from_micros(1500)),
        ("250000ns", Duration::from_nanos(250_000)),
        ("90sec 2min 1hr", Duration::from_secs(90 + 120 + 3600)),
        ("1 s", Duration::from_secs(1)),
        ("1.5s", Duration::from_millis(1500)),
        ("1.5h 0.25m", Duration::from_secs(5415)),
        ("0.5ms", Duration::from_micros(500)),
        ("1.000000001s", Duration::new(1, 1)),
    ] {
        assert_eq!(opts(&["--drain", text, "x"], &[]).drain, want, "--drain {text}");
        assert_eq!(opts(&["-t", text, "x"], &[]).kill_after, Some(want), "-t {text}");
        assert_eq!(opts(&["--kill-after", text, "x"], &[]).kill_after, Some(want));
        assert_eq!(opts(&["x"], &[("REAPER_DRAIN", text)]).drain, want, "REAPER_DRAIN={text}");
        assert_eq!(opts(&["x"], &[("REAPER_KILL_AFTER", text)]).kill_after, Some(want));
    }
    // Defaults, and flags over the environment.
    assert_eq!(opts(&["x"], &[]).drain, Duration::from_secs(3));
    assert_eq!(opts(&["x"], &[]).kill_after, None);
    assert_eq!(opts(&["--drain", "1", "x"], &[("REAPER_DRAIN", "7")]).drain, Duration::from_secs(1));
    assert_eq!(
        opts(&["-t", "1", "x"], &[("REAPER_KILL_AFTER", "7")]).kill_after,
        Some(Duration::from_secs(1))
    );
}

#[test]
fn drain_signal_values() {
    assert_eq!(opts(&["x"], &[]).drain_signal, libc::SIGTERM);
    assert_eq!(opts(&["--drain-signal", "USR1", "x"], &[]).drain_signal, libc::SIGUSR1);
    assert_eq!(opts(&["--drain-signal=RTMIN+3", "x"], &[]).drain_signal, 37);
    assert_eq!(opts(&["x"], &[("REAPER_DRAIN_SIGNAL", "HUP")]).drain_signal, libc::SIGHUP);
    assert_eq!(
        opts(&["--drain-signal", "INT", "x"], &[("REAPER_DRAIN_SIGNAL", "HUP")]).drain_signal,
        libc::SIGINT
    );
}

#[test]
fn rewrite_rules() {
    let rules = |args: &[&str], env: &[(&str, &str)]| {
        let mut a = args.to_vec();
        a.push("x");
        opts(&a, env).rewrite
    };
    let (term, int, quit, usr1, usr2) =
        (libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2);
    assert!(rules(&[], &[]).is_empty());
    assert_eq!(rules(&["-r", "TERM:QUIT"], &[]), [(term, quit)]);
    assert_eq!(rules(&["-r", "INT:0"], &[]), [(int, 0)]);
    assert_eq!(rules(&["--rewrite", "SIGINT:-"], &[]), [(int, 0)]);
    assert_eq!(rules(&["-r", "INT: - "], &[]), [(int, 0)]);
    assert_eq!(rules(&["-r", "15:3"], &[]), [(term, quit)]);
    assert_eq!(rules(&["-r", "RTMIN+3:TERM"], &[]), [(37, term)]);
    assert_eq!(rules(&["-r", "USR1:RTMAX"], &[]), [(usr1, 64)]);
    assert_eq!(rules(&["--rewrite=HUP:USR1"], &[]), [(libc::SIGHUP, usr1)]);
    // Repeatable, in order.
    assert_eq!(rules(&["-r", "USR1:USR2", "-r", "TERM:QUIT"], &[]), [(usr1, usr2), (term, quit)]);
    assert_eq!(rules(&[], &[("REAPER_REWRITE", "TERM:QUIT,USR1:USR2")]), [(term, quit), (usr1, usr2)]);
    assert_eq!(rules(&[], &[("REAPER_REWRITE", ",TERM:QUIT,,")]), [(term, quit)]);
    // Flags replace the environment's list.
    assert_eq!(rules(&["-r", "TERM:QUIT"], &[("REAPER_REWRITE", "TERM:INT,USR1:USR2")]), [(term, quit)]);

    for rule in [
        "CHLD:TERM",
        "KILL:TERM",
        "STOP:1",
        "9:15",
        "17:1",
        "19:1",
        "TERM",
        "TERM:FOO",
        "99:1",
        "TERM:99",
        ":TERM",
        "",
    ] {
        usage_error(&["-r", rule, "true"], &[]);
    }
    for (rule, msg) in [
        ("CHLD:TERM", "--rewrite: cannot rewrite SIGCHLD: reaper never receives it"),
        ("KILL:TERM", "--rewrite: cannot rewrite SIGKILL: reaper never receives it"),
        ("STOP:TERM", "--rewrite: cannot rewrite SIGSTOP: reaper never receives it"),
        ("TERM", "--rewrite: invalid rewrite 'TERM' (FROM:TO, e.g. TERM:QUIT)"),
    ] {
        assert_eq!(usage_error(&["-r", rule, "true"], &[]), msg);
    }
    let e = usage_error(&["true"], &[("REAPER_REWRITE", "TERM:QUIT,KILL:TERM")]);
    assert_eq!(e, "REAPER_REWRITE: cannot rewrite SIGKILL: reaper never receives it");
}

#[test]
fn pause_mode() {
    let o = opts(&["--pause"], &[]);
    assert!(o.pause && o.commands.is_empty());
    assert!(opts(&["-P"], &[]).pause);
    assert!(opts(&[], &[("REAPER_PAUSE", "1")]).pause, "REAPER_PAUSE=1 without a command");
    assert!(!opts(&["x"], &[("REAPER_PAUSE", "0")]).pause);
    assert!(!opts(&["x"], &[]).pause);
    assert_eq!(usage_error(&["--pause", "sleep", "1"], &[]), "--pause takes no COMMAND");
    assert_eq!(usage_error(&["-P", "--", "true"], &[]), "--pause takes no COMMAND");
    assert_eq!(usage_error(&["x"], &[("REAPER_PAUSE", "1")]), "REAPER_PAUSE=1 takes no COMMAND");
    assert_eq!(usage_error(&["-P", "-d"], &[]), "--pause cannot be combined with --daemon");
    assert_eq!(usage_error(&["-P", "--wait-all"], &[]), "--pause cannot be combined with --wait-all");
    assert_eq!(
        usage_error(&["-P"], &[("REAPER_WAIT_ALL", "1")]),
        "--pause cannot be combined with REAPER_WAIT_ALL=1"
    );
    assert_eq!(
        usage_error(&["-P", "--follow-pidfile", "f"], &[]),
        "--pause cannot be combined with --follow-pidfile"
    );
}

#[test]
fn daemon_options() {
    let o = opts(&["-d", "x"], &[]);
    let d = o.daemon.expect("daemon");
    assert_eq!(d, Daemon { chdir: "/".into(), umask: 0o022, stdout: None, stderr: None });
    assert!(opts(&["--daemon", "x"], &[]).daemon.is_some());
    assert!(opts(&["x"], &[]).daemon.is_none());
    let o = opts(
        &["-d", "--chdir", "/srv", "--umask", "027", "--stdout", "o.log", "--stderr", "e.log", "x"],
        &[],
    );
    assert_eq!(
        o.daemon,
        Some(Daemon {
            chdir: "/srv".into(),
            umask: 0o027,
            stdout: Some("o.log".into()),
            stderr: Some("e.log".into())
        })
    );
    for (text, want) in [("0", 0), ("000", 0), ("777", 0o777), (" 22 ", 0o022), ("7", 0o7)] {
        assert_eq!(opts(&["-d", "--umask", text, "x"], &[]).daemon.unwrap().umask, want, "{text}");
    }
    for bad in ["1000", "778", "8", "-1", "x", "", "0o22"] {
        let e = usage_error(&["-d", "--umask", bad, "x"], &[]);
        assert_eq!(e, format!("--umask: invalid umask '{bad}' (octal, 000-777)"));
    }
    for opt in ["--chdir", "--umask", "--stdout", "--stderr"] {
        let value = if opt == "--umask" { "022" } else { "/tmp" };
        let e = usage_error(&[opt, value, "x"], &[]);
        assert_eq!(e, "--chdir, --umask, --stdout and --stderr need --daemon", "{opt}");
    }
    assert_eq!(usage_error(&["-d", "-p", "TERM", "x"], &[]), "--pdeathsig cannot be used with --daemon");
    assert_eq!(
        usage_error(&["-d", "x"], &[("REAPER_PDEATHSIG", "TERM")]),
        "REAPER_PDEATHSIG=TERM cannot be used with --daemon"
    );
    // Paths.
    for opt in ["--pidfile", "--chdir", "--stdout", "--stderr", "--follow-pidfile"] {
        assert_eq!(usage_error(&["-d", opt, "", "x"], &[]), format!("{opt}: empty path"));
    }
    assert_eq!(usage_error(&["x"], &[("REAPER_FOLLOW_PIDFILE", "")]), "REAPER_FOLLOW_PIDFILE: empty path");
    assert_eq!(opts(&["--pidfile", "r.pid", "x"], &[]).pidfile, Some("r.pid".into()));
    assert_eq!(opts(&["x"], &[]).pidfile, None);
    let raw = OsString::from_vec(b"p\xff.pid".to_vec());
    let args = [OsStr::new("--pidfile"), raw.as_os_str(), OsStr::new("x")];
    match parse_with_env(&args, &[]) {
        Ok(Parsed::Run(o)) => assert_eq!(o.pidfile.unwrap().as_os_str().as_bytes(), b"p\xff.pid"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn wait_all_and_follow_pidfile() {
    assert!(opts(&["--wait-all", "x"], &[]).wait_all);
    assert!(opts(&["x"], &[("REAPER_WAIT_ALL", "yes")]).wait_all);
    assert!(!opts(&["x"], &[]).wait_all);
    assert_eq!(opts(&["--follow-pidfile", "d.pid", "x"], &[]).follow_pidfile, Some("d.pid".into()));
    assert_eq!(opts(&["x"], &[]).follow_pidfile, None);
    let e = "--wait-all and --follow-pidfile exclude each other";
    assert_eq!(usage_error(&["--wait-all", "--follow-pidfile", "f", "x"], &[]), e);
    assert_eq!(
        usage_error(&["--follow-pidfile", "f", "x"], &[("REAPER_WAIT_ALL", "1")]),
        "REAPER_WAIT_ALL=1 and --follow-pidfile exclude each other"
    );
}

#[test]
fn more_usage_errors() {
    // The one-line messages name what is wrong.
    for (args, env, names) in [
        (&["-e", "256", "x"][..], &[][..], "256"),
        (&["-e", "-1", "x"], &[], "-1"),
        (&["-p", "FOO", "x"], &[], "FOO"),
        (&["-p", "0", "x"], &[], "'0'"),
        (&["x"], &[("REAPER_REMAP_EXIT", "1,300")], "REAPER_REMAP_EXIT"),
        (&["x"], &[("REAPER_DRAIN", "abc")], "REAPER_DRAIN"),
        (&["x"], &[("REAPER_KILL_AFTER", "1x")], "REAPER_KILL_AFTER"),
        (&["--"], &[], "missing COMMAND"),
        (&["-g", "--"], &[], "missing COMMAND"),
    ] {
        let msg = usage_error(args, env);
        assert!(msg.contains(names), "{args:?} {env:?}: {msg}");
    }
    assert_eq!(usage_error(&[], &[]), "missing COMMAND");
    // A variable reaper itself reads must be text: refused, not mangled.
    let bad = OsString::from_vec(b"3\xffs".to_vec());
    let env = [("REAPER_DRAIN", bad.as_os_str())];
    match parse_with_env(&[OsStr::new("x")], &env) {
        Err(e @ Error::Usage(_)) => assert_eq!(e.message(), "REAPER_DRAIN: value is not valid UTF-8"),
        other => panic!("{other:?}"),
    }
    // A non-UTF-8 option value names itself.
    let raw = OsString::from_vec(b"\xff".to_vec());
    let args = [OsStr::new("--drain"), raw.as_os_str(), OsStr::new("x")];
    match parse_with_env(&args, &[]) {
        Err(e @ Error::Usage(_)) => assert!(e.message().contains("not UTF-8"), "{}", e.message()),
        other => panic!("{other:?}"),
    }
    // `reaper ''` is a command (that cannot be found: exit 127, tests/core.rs).
    assert_eq!(opts(&[""], &[]).commands[0].argv, [OsString::new()]);
}

/// Every long option `--help` lists is one the parser accepts (with a value where it takes
/// one), and the other way round for the ones a user is most likely to look for.
#[test]
fn help_lists_the_accepted_options() {
    let help = reaper::options::HELP;
    let mut listed: Vec<&str> = help
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .collect();
    listed.sort_unstable();
    listed.dedup();
    assert_eq!(listed.len(), 42, "{listed:?}");
    for opt in ["--subreaper", "--process-group", "--kill-after", "--drain", "--rewrite", "--version"] {
        assert!(listed.contains(&opt), "help lacks {opt}");
    }
    for opt in listed {
        let value: &[&str] = match opt {
            "--pdeathsig" | "--drain-signal" => &["TERM"],
            "--remap-exit" => &["3"],
            "--rewrite" => &["TERM:QUIT"],
            "--drain" | "--kill-after" | "--stop-delay" | "--sleep" => &["1s"],
            "--also" | "--respawn" => &["true"],
            "--max-zombies" => &["0"],
            "--probe" => &["tcp:127.0.0.1:80"],
            "--timeout" => &["1s"],
            "--umask" => &["022"],
            "--user" => &["0"],
            "--pidfile" | "--chdir" | "--stdout" | "--stderr" | "--follow-pidfile" => &["/tmp/f"],
            "--name" => &["web"],
            "--stop-signal" => &["QUIT"],
            "--ready" => &["fd:3"],
            "--ready-timeout" => &["1s", "--ready", "notify"],
            "--after" => &["db", "--also", "--name=db true"],
            _ => &[],
        };
        // The settings only an --also or a --respawn command has: in its CMDLINE.
        let cmdline = match opt {
            "--restarts" => Some(("--respawn", "--restarts 3/1m true")),
            "--done" => Some(("--respawn", "--done 0 true")),
            "--optional" => Some(("--also", "--optional true")),
            _ => None,
        };
        if let Some((flag, line)) = cmdline {
            assert!(try_parse(&[flag, line, "x"], &[]).is_ok(), "{flag} {line}");
            continue;
        }
        let mut args = vec![opt];
        args.extend(value);
        if matches!(opt, "--chdir" | "--umask" | "--stdout" | "--stderr") {
            args.push("-d");
        }
        if opt == "--max-zombies" {
            args.push("--ps");
        }
        if opt == "--timeout" {
            args.extend(["--probe", "file:/"]);
        }
        // The modes that run no command.
        if !matches!(opt, "--pause" | "--ps" | "--max-zombies" | "--sleep" | "--probe" | "--timeout") {
            args.push("x");
        }
        assert!(try_parse(&args, &[]).is_ok(), "{args:?}: {:?}", try_parse(&args, &[]));
    }
}

// ---------------------------------------------------------------------------------------------
// Signal names and numbers (`reaper::signals`), as options and variables take them.

#[test]
fn signal_parse_edges() {
    use reaper::signals::parse;
    for (text, want) in [
        (" TERM ", libc::SIGTERM),
        ("sigRtMin+3", 37),
        ("RTMIN+0", 34),
        ("RTMIN+010", 44),
        ("RTMIN+30", 64),
        ("RTMAX-0", 64),
        ("RTMAX-30", 34),
        ("RTMAX", 64),
        ("CLD", libc::SIGCHLD),
        ("IOT", libc::SIGABRT),
        ("POLL", libc::SIGIO),
        ("1", 1),
        ("31", 31),
        ("34", 34),
    ] {
        assert_eq!(parse(text), Ok(want), "{text:?}");
    }
    for bad in [
        "RTMIN+0003",
        "RTMIN3",
        "RTMIN+-3",
        "RTMIN++3",
        "RTMIN-1",
        "RTMAX+1",
        "RTMAX-",
        "RTMAX-x",
        "RTMIN+31",
        "RTMAX-31",
        "SIGSIGTERM",
        "TERM2",
        "0",
        "32",
        "33",
        "65",
        "-15",
    ] {
        let e = parse(bad).expect_err(bad);
        assert!(e.starts_with(&format!("invalid signal '{bad}'")), "{bad}: {e}");
    }
}

#[test]
fn signal_classes_and_names() {
    use reaper::signals::{RTMAX, RTMIN, is_stop, is_valid, name};
    assert_eq!((RTMIN, RTMAX), (34, 64));
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT] {
        assert!(is_stop(sig), "{sig}");
    }
    for sig in [libc::SIGHUP, libc::SIGUSR1, libc::SIGKILL, libc::SIGCHLD, 0, 37] {
        assert!(!is_stop(sig), "{sig}");
    }
    for (sig, valid) in [
        (-1, false),
        (0, false),
        (1, true),
        (31, true),
        (32, false),
        (33, false),
        (34, true),
        (64, true),
        (65, false),
    ] {
        assert_eq!(is_valid(sig), valid, "{sig}");
    }
    for (sig, want) in [
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGCHLD, "SIGCHLD"),
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGIO, "SIGIO"),
        (34, "SIGRTMIN+0"),
        (37, "SIGRTMIN+3"),
        (64, "SIGRTMIN+30"),
        (0, "signal 0"),
        (32, "signal 32"),
        (33, "signal 33"),
        (65, "signal 65"),
    ] {
        assert_eq!(name(sig), want, "{sig}");
    }
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
        "--stop-delay: invalid duration 'soon' (e.g. 500ms, 3s, 1m)"
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
        (&["--sleep", "5 parsecs"], "--sleep: invalid duration '5 parsecs' (e.g. 500ms, 3s, 1m)"),
        (&["--sleep"], "missing argument for option '--sleep'"),
    ] {
        assert_eq!(usage_error(args, &[]), want, "{args:?}");
    }
}

/// lexopt's errors in reaper's words: values quoted '…' like every other message.
#[test]
fn command_line_shape_errors() {
    for (args, want) in [
        (&["--bogus", "x"][..], "invalid option '--bogus'"),
        (&["-Z", "x"], "invalid option '-Z'"),
        (&["--wait-all=yes", "x"], "unexpected argument for option '--wait-all': 'yes'"),
        (&["--drain"], "missing argument for option '--drain'"),
        (&["-t"], "missing argument for option '-t'"),
    ] {
        assert_eq!(usage_error(args, &[]), want, "{args:?}");
    }
}

/// Every option that takes a value says so when it has none: at the end of the line, and
/// before `--`, which ends the options and is never a value (`reaper -t -- true` said
/// "invalid duration '--'").
#[test]
fn a_missing_value_is_named_for_every_option_that_takes_one() {
    let takes_a_value = [
        "-p",
        "--pdeathsig",
        "-e",
        "--remap-exit",
        "-r",
        "--rewrite",
        "--drain",
        "--drain-signal",
        "-t",
        "--kill-after",
        "--stop-delay",
        "--sleep",
        "--pidfile",
        "--chdir",
        "--umask",
        "--stdout",
        "--stderr",
        "--follow-pidfile",
        "--also",
        "--respawn",
        "--max-zombies",
    ];
    for opt in takes_a_value {
        let want = format!("missing argument for option '{opt}'");
        assert_eq!(usage_error(&[opt, "--", "true"], &[]), want);
        assert_eq!(usage_error(&[opt], &[]), want);
        assert_eq!(usage_error(&["-v", opt, "--"], &[]), want);
    }
    // `--` after a value is the usual end of the options.
    assert_eq!(opts(&["-t", "5s", "--", "true"], &[]).kill_after, Some(Duration::from_secs(5)));
}

/// `-r` and `-e` take one item; their variables take a list. A list given to the flag says
/// how to write it, in the spelling the user chose.
#[test]
fn a_list_given_to_a_flag_says_to_repeat_the_flag() {
    for (args, want) in [
        (
            &["-r", "TERM:QUIT,INT:0", "true"][..],
            "--rewrite: one FROM:TO per flag: repeat it (-r TERM:QUIT -r INT:0); \
             REAPER_REWRITE takes a comma-separated list",
        ),
        (
            &["--rewrite", "TERM:QUIT, INT:0,", "true"],
            "--rewrite: one FROM:TO per flag: repeat it (--rewrite TERM:QUIT --rewrite INT:0); \
             REAPER_REWRITE takes a comma-separated list",
        ),
        (
            &["-e", "1,143", "true"],
            "--remap-exit: one CODE per flag: repeat it (-e 1 -e 143); \
             REAPER_REMAP_EXIT takes a comma-separated list",
        ),
        (
            &["--remap-exit=1,2", "true"],
            "--remap-exit: one CODE per flag: repeat it (--remap-exit 1 --remap-exit 2); \
             REAPER_REMAP_EXIT takes a comma-separated list",
        ),
    ] {
        assert_eq!(usage_error(args, &[]), want, "{args:?}");
    }
}

/// A setting that conflicts with another is named the way it was set: its flag, or its
/// variable with the value the environment gave it (`REAPER_PAUSE=1 reaper -- true` said
/// "--pause takes no COMMAND", though no --pause was written).
#[test]
fn conflicts_name_the_variable_or_flag_that_set_them() {
    for (args, env, want) in [
        (&["--", "true"][..], &[("REAPER_PAUSE", "1")][..], "REAPER_PAUSE=1 takes no COMMAND"),
        (&["-d"], &[("REAPER_PAUSE", "yes")], "REAPER_PAUSE=yes cannot be combined with --daemon"),
        (
            &[],
            &[("REAPER_PAUSE", "on"), ("REAPER_WAIT_ALL", "1")],
            "REAPER_PAUSE=on cannot be combined with REAPER_WAIT_ALL=1",
        ),
        (
            &[],
            &[("REAPER_PAUSE", "1"), ("REAPER_FOLLOW_PIDFILE", "/run/app.pid")],
            "REAPER_PAUSE=1 cannot be combined with REAPER_FOLLOW_PIDFILE=/run/app.pid",
        ),
        (
            &["x"],
            &[("REAPER_WAIT_ALL", "true"), ("REAPER_FOLLOW_PIDFILE", "a.pid")],
            "REAPER_WAIT_ALL=true and REAPER_FOLLOW_PIDFILE=a.pid exclude each other",
        ),
        (
            &["--wait-all", "x"],
            &[("REAPER_FOLLOW_PIDFILE", "a.pid")],
            "--wait-all and REAPER_FOLLOW_PIDFILE=a.pid exclude each other",
        ),
        (
            &["--also", "a"],
            &[("REAPER_PAUSE", "1")],
            "--also and --respawn need a COMMAND: they cannot be used with REAPER_PAUSE=1",
        ),
        (
            &["--respawn", "a", "x"],
            &[("REAPER_FOLLOW_PIDFILE", "a.pid")],
            "--also and --respawn cannot be combined with REAPER_FOLLOW_PIDFILE=a.pid",
        ),
        (
            &["--also", "a", "x"],
            &[("REAPER_WAIT_ALL", "1")],
            "--also and --respawn cannot be combined with REAPER_WAIT_ALL=1",
        ),
        (&["-d", "x"], &[("REAPER_PDEATHSIG", "9")], "REAPER_PDEATHSIG=9 cannot be used with --daemon"),
        // A flag overrides its variable, and is what the message names.
        (&["--pause", "x"], &[("REAPER_PAUSE", "0")], "--pause takes no COMMAND"),
        (&["-P", "x"], &[("REAPER_PAUSE", "1")], "--pause takes no COMMAND"),
        (
            &["-d", "-p", "TERM", "x"],
            &[("REAPER_PDEATHSIG", "9")],
            "--pdeathsig cannot be used with --daemon",
        ),
        (
            &["--follow-pidfile", "b.pid", "x"],
            &[("REAPER_WAIT_ALL", "1"), ("REAPER_FOLLOW_PIDFILE", "a.pid")],
            "REAPER_WAIT_ALL=1 and --follow-pidfile exclude each other",
        ),
    ] {
        assert_eq!(usage_error(args, env), want, "{args:?} {env:?}");
    }
    // The variable's value is the user's text: a control character in it stays on the line.
    match try_parse(&["x"], &[("REAPER_PAUSE", "1\n")]) {
        Err(e) => assert_eq!(e.report(), "reaper: REAPER_PAUSE=1\\n takes no COMMAND\nTry 'reaper --help'."),
        other => panic!("{other:?}"),
    }
}

/// The messages above as the real binary prints them: one line (and the help hint), exit 2.
#[test]
fn the_binary_prints_each_usage_error_on_one_line_with_status_2() {
    for (args, env, want) in [
        (&["--", "true"][..], &[("REAPER_PAUSE", "1")][..], "REAPER_PAUSE=1 takes no COMMAND"),
        (&["-t", "--", "true"], &[], "missing argument for option '-t'"),
        (
            &["-r", "TERM:QUIT,INT:0", "true"],
            &[],
            "--rewrite: one FROM:TO per flag: repeat it (-r TERM:QUIT -r INT:0); \
             REAPER_REWRITE takes a comma-separated list",
        ),
    ] {
        usage_error_of_the_binary(args, env, want);
    }
}

/// Per-command settings that cannot be: the real binary says which flag, variable or
/// command line, on one line, exit 2, before anything runs.
#[test]
fn bad_command_settings_are_one_line_usage_errors_of_the_binary() {
    let name_rule = "(letters, digits, '.', '_' and '-', 1 to 32)";
    let bad_name = format!("--respawn: '--name=a/b x': --name: invalid name 'a/b' {name_rule}");
    for (args, env, want) in [
        (
            &["--also", "--optional=x a", "true"][..],
            &[][..],
            "--also: '--optional=x a': --optional takes no value (got 'x')",
        ),
        (&["--after=nope", "true"], &[], "--after: no command is named 'nope'"),
        (&["true"], &[("REAPER_AFTER", "nope")], "REAPER_AFTER: no command is named 'nope'"),
        (&["--after=true", "true"], &[], "--after: 'true' cannot be after itself"),
        (
            &["--after=b", "--also", "--name=b --after=true sleep 1", "true"],
            &[],
            "--after: a cycle: true after b after true",
        ),
        (
            &["--restarts", "3/10s", "true"],
            &[],
            "--restarts is a --respawn command's setting, not the main command's",
        ),
        (
            &["--also", "--restarts=3/10s sleep 1", "true"],
            &[],
            "--also: '--restarts=3/10s sleep 1': --restarts is a --respawn command's setting, \
             not an --also command's",
        ),
        (
            &["--respawn", "--optional sleep 1", "true"],
            &[],
            "--respawn: '--optional sleep 1': --optional is an --also command's setting, \
             not a --respawn command's",
        ),
        (
            &["--name=db", "--also", "--name=db sleep 1", "true"],
            &[],
            "--also: '--name=db sleep 1': the name 'db' is given to two commands",
        ),
        (
            &["true"],
            &[("REAPER_READY", "bad")],
            "REAPER_READY: invalid readiness 'bad' (notify or fd:N, N from 3 to 1023)",
        ),
        (
            &["--ready", "fd:1", "true"],
            &[],
            "--ready: invalid readiness 'fd:1' (notify or fd:N, N from 3 to 1023)",
        ),
        (&["--respawn", "--name=a/b x", "true"], &[], bad_name.as_str()),
        (
            &["--respawn", "--done=300 x", "true"],
            &[],
            "--respawn: '--done=300 x': --done: invalid exit code '300' (0-255)",
        ),
        (&["--also", "--name=x --", "true"], &[], "--also: '--name=x --': no command after the settings"),
        (&["--name=x", "--pause"], &[], "--name is a command's setting: it cannot be used with --pause"),
        (&["--ready-timeout=5s", "true"], &[], "--ready-timeout needs --ready (or REAPER_READY)"),
    ] {
        usage_error_of_the_binary(args, env, want);
    }
}

/// The design's three-service example parses into three commands with their own settings.
#[test]
fn the_three_service_example_parses_into_its_commands() {
    let o = opts(
        &[
            "--also",
            "--name=db --ready=notify postgres -D /var/lib/postgresql/data",
            "--respawn",
            "--name=cron crond -f",
            "--name=web",
            "--after=db",
            "--stop-signal=QUIT",
            "--",
            "nginx",
            "-g",
            "daemon off;",
        ],
        &[],
    );
    let argv = |c: &Command| c.argv.iter().map(|a| a.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    let web = &o.commands[0];
    assert_eq!(argv(web), ["nginx", "-g", "daemon off;"]);
    assert_eq!(
        web.settings,
        Settings {
            stop_signal: Some(libc::SIGQUIT),
            after: vec![1],
            ..Settings::new("web".into(), Role::Main)
        }
    );
    let db = &o.commands[1];
    assert_eq!(argv(db), ["postgres", "-D", "/var/lib/postgresql/data"]);
    assert_eq!(
        db.settings,
        Settings {
            ready: Some(reaper::command::Ready::Notify),
            ..Settings::new("db".into(), Role::Also { essential: true })
        }
    );
    let cron = &o.commands[2];
    assert_eq!(argv(cron), ["crond", "-f"]);
    let role = Role::Respawn { budget: Some(reaper::command::DEFAULT_BUDGET), done: vec![] };
    assert_eq!(cron.settings, Settings::new("cron".into(), role));
    assert_eq!(o.commands.len(), 3);
}

/// `--help` shows an example, `-q` on a line of its own, and tini's variables.
#[test]
fn help_has_an_example_quiet_and_the_tini_variables() {
    let help = reaper::options::HELP;
    assert!(help.lines().any(|l| l.starts_with("Example: reaper ") && l.contains(" -- ")), "{help}");
    assert!(help.lines().any(|l| l.starts_with("  -q, --quiet ")), "{help}");
    for var in ["TINI_SUBREAPER", "TINI_KILL_PROCESS_GROUP", "TINI_VERBOSITY"] {
        assert!(help.contains(var), "help lacks {var}");
    }
}

// Ten thousand commands of one argv[0] take their default names in one pass each (`true`,
// `true-2`, … `true-10000`), not one try per taken suffix: that was cubic, hours here.
#[test]
fn ten_thousand_default_names_parse_in_time() {
    let mut args = Vec::new();
    for _ in 0..9_999 {
        args.extend(["--also", "true"]);
    }
    args.push("true");
    let started = std::time::Instant::now();
    let o = opts(&args, &[]);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    let names: Vec<&str> = o.commands.iter().map(|c| c.settings.name.as_str()).collect();
    assert_eq!((names[0], names[1], names[9_999]), ("true", "true-2", "true-10000"));
}

/// The real binary, given `args` and only the variables `env`, says `want` as its one-line
/// usage error on stderr and nothing on stdout, and exits 2.
fn usage_error_of_the_binary(args: &[&str], env: &[(&str, &str)], want: &str) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reaper"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run reaper");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        (out.status.code(), stderr.as_ref()),
        (Some(2), format!("reaper: {want}\nTry 'reaper --help'.\n").as_str()),
        "{args:?} {env:?}"
    );
    assert!(out.stdout.is_empty(), "{args:?}");
}

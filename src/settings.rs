//! Each command's own settings as the user writes them: `--name`, `--stop-signal`, `--ready`,
//! `--ready-timeout`, `--after`, `--restarts`, `--done`, `--optional` — the main command's as
//! reaper's flags (or `REAPER_*`), an `--also`/`--respawn` command's as the leading `--...`
//! words of its CMDLINE. Pure: `options` hands words in, gets `command::Command`s out.

use std::ffi::OsString;
use std::time::Duration;

use crate::command::{Budget, Command, DEFAULT_BUDGET, Ready, Role, Settings};

/// Which kind of command the settings are for: each takes the common settings, a respawn
/// also `--restarts` and `--done`, an also `--optional`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Main,
    Also,
    Respawn,
}

/// What one command's settings said (nothing said: `None`), before names are resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Given {
    pub name: Option<String>,
    pub stop_signal: Option<i32>,
    pub ready: Option<Ready>,
    pub ready_timeout: Option<Duration>,
    /// `--after`'s names, as given.
    pub after: Option<Vec<String>>,
    /// `--restarts`: `Some(None)` is `unlimited`.
    pub restarts: Option<Option<Budget>>,
    pub done: Option<Vec<u8>>,
    pub optional: bool,
}

/// The longest name: a log prefix, not a sentence.
pub const MAX_NAME: usize = 32;

/// The highest descriptor `--ready fd:N` takes: below the usual soft RLIMIT_NOFILE (1024).
pub const MAX_READY_FD: i32 = 1023;

/// Every setting's key, as `--help` and the errors list them.
pub const KEYS: &str =
    "--name, --stop-signal, --ready, --ready-timeout, --after, --restarts, --done, --optional";

/// Sets one setting of a command of `kind` from `--key` (without the dashes) and its value
/// (`None`: none was given). Errors name the setting.
pub fn set(given: &mut Given, kind: Kind, key: &str, value: Option<&str>) -> Result<(), String> {
    match key {
        "optional" => {
            if kind != Kind::Also {
                return Err(wrong_kind(key, "an --also", kind));
            }
            if let Some(v) = value {
                return Err(format!("--optional takes no value (got '{v}')"));
            }
            given.optional = true;
            Ok(())
        }
        "restarts" | "done" if kind != Kind::Respawn => Err(wrong_kind(key, "a --respawn", kind)),
        "restarts" | "done" | "name" | "stop-signal" | "ready" | "ready-timeout" | "after" => {
            let v = value.ok_or_else(|| format!("--{key} needs a value"))?;
            set_value(given, key, v).map_err(|why| format!("--{key}: {why}"))
        }
        _ => Err(format!("unknown setting '--{key}' (the settings: {KEYS})")),
    }
}

/// Sets the setting `--key` (without the dashes) that takes a value: the reason of an error
/// alone, for the caller to name (the main command's come from a flag or a variable).
pub fn set_value(given: &mut Given, key: &str, v: &str) -> Result<(), String> {
    match key {
        "restarts" => given.restarts = Some(restarts(v)?),
        "done" => given.done = Some(done(v)?),
        "name" => given.name = Some(name(v)?),
        "stop-signal" => given.stop_signal = Some(crate::signals::parse(v)?),
        "ready" => given.ready = Some(ready(v)?),
        "ready-timeout" => given.ready_timeout = Some(ready_timeout(v)?),
        "after" => given.after = Some(after(v)?),
        _ => return Err(format!("unknown setting '--{key}' (the settings: {KEYS})")),
    }
    Ok(())
}

fn wrong_kind(key: &str, owner: &str, kind: Kind) -> String {
    let this = match kind {
        Kind::Main => "the main command",
        Kind::Also => "an --also command",
        Kind::Respawn => "a --respawn command",
    };
    format!("--{key} is {owner} command's setting, not {this}'s")
}

/// An `--also`/`--respawn` CMDLINE's words: its leading `--key[=value]` and `--key value`
/// words are settings, up to the first word that does not start with `--` (a lone `--` ends
/// them and is dropped); the rest is the command's argv.
pub fn split(words: Vec<String>, kind: Kind) -> Result<(Given, Vec<String>), String> {
    let mut given = Given::default();
    let mut words = words.into_iter().peekable();
    while let Some(word) = words.next_if(|w| w.starts_with("--")) {
        if word == "--" {
            break;
        }
        let (key, value) = match word[2..].split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            // `--optional` takes no value: the next word is not its.
            None if word == "--optional" => (word[2..].to_owned(), None),
            None => (word[2..].to_owned(), words.next_if(|w| w != "--")),
        };
        set(&mut given, kind, &key, value.as_deref())?;
    }
    if given.ready_timeout.is_some() && given.ready.is_none() {
        return Err("--ready-timeout needs --ready".into());
    }
    let argv: Vec<String> = words.collect();
    if argv.is_empty() {
        return Err("no command after the settings".into());
    }
    Ok((given, argv))
}

/// `[A-Za-z0-9._-]`, 1 to `MAX_NAME` characters: it goes into log lines as it is.
pub fn name(v: &str) -> Result<String, String> {
    if v.is_empty() || v.len() > MAX_NAME || !v.bytes().all(name_byte) {
        return Err(format!("invalid name '{v}' (letters, digits, '.', '_' and '-', 1 to {MAX_NAME})"));
    }
    Ok(v.to_owned())
}

fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// The name a command has when none is given: `argv[0]`'s basename, every other character
/// than those of a name as `_`, at most `MAX_NAME` long; `command` when nothing is left.
pub fn default_name(argv0: &std::ffi::OsStr) -> String {
    let argv0 = argv0.to_string_lossy();
    let base = argv0.rsplit('/').next().unwrap_or_default();
    let name: String = base
        .chars()
        .map(|c| if c.is_ascii() && name_byte(c as u8) { c } else { '_' })
        .take(MAX_NAME)
        .collect();
    if name.is_empty() { "command".to_owned() } else { name }
}

/// `--restarts N/DURATION` or `unlimited`.
pub fn restarts(v: &str) -> Result<Option<Budget>, String> {
    let v = v.trim();
    if v == "unlimited" {
        return Ok(None);
    }
    let bad = || format!("invalid restart budget '{v}' (N/DURATION as in 5/10s, or unlimited)");
    let (n, within) = v.split_once('/').ok_or_else(bad)?;
    let exits = crate::text::number(n.trim()).and_then(|n| u32::try_from(n).ok()).ok_or_else(bad)?;
    let within = crate::options::parse_duration(within)?;
    if within.is_zero() {
        return Err(format!("'{v}': the DURATION must be more than 0"));
    }
    Ok(Some(Budget { exits, within }))
}

/// `--done CODE[,CODE...]`: exit statuses 0-255, at least one.
pub fn done(v: &str) -> Result<Vec<u8>, String> {
    let mut codes = Vec::new();
    for code in v.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let code = code.parse::<u8>().map_err(|_| format!("invalid exit code '{code}' (0-255)"))?;
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    if codes.is_empty() {
        return Err("no exit code (CODE[,CODE...], 0-255)".into());
    }
    Ok(codes)
}

/// `--ready notify` or `--ready fd:N` (3 ≤ N ≤ `MAX_READY_FD`).
pub fn ready(v: &str) -> Result<Ready, String> {
    let bad = || format!("invalid readiness '{v}' (notify or fd:N, N from 3 to {MAX_READY_FD})");
    match v.trim() {
        "notify" => Ok(Ready::Notify),
        v => {
            let n = v.strip_prefix("fd:").and_then(|n| crate::text::number(n.trim())).ok_or_else(bad)?;
            match i32::try_from(n) {
                Ok(n) if (3..=MAX_READY_FD).contains(&n) => Ok(Ready::Fd(n)),
                _ => Err(bad()),
            }
        }
    }
}

pub fn ready_timeout(v: &str) -> Result<Duration, String> {
    match crate::options::parse_duration(v)? {
        d if d.is_zero() => Err("must be more than 0".into()),
        d => Ok(d),
    }
}

/// `--after NAME[,NAME...]`: names, each once, at least one.
pub fn after(v: &str) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    for n in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let n = name(n)?;
        if !names.contains(&n) {
            names.push(n);
        }
    }
    if names.is_empty() {
        return Err("no name (NAME[,NAME...])".into());
    }
    Ok(names)
}

/// One command as parsed, before names are resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub argv: Vec<OsString>,
    pub kind: Kind,
    pub given: Given,
    /// How an error about its `--name` names where it came from (`--name`, `REAPER_NAME`,
    /// `--also: 'CMDLINE'`).
    pub name_source: String,
    /// The same for its `--after`.
    pub after_source: String,
}

/// The commands, in order, with their settings: names defaulted (explicit ones first, then
/// each unnamed command its `argv[0]`'s, `-2`, `-3`... when taken), `--after` names resolved
/// to indices. An explicit name given twice, an unknown, own or circular `--after` name is an
/// error naming where it came from.
pub fn resolve(entries: Vec<Entry>) -> Result<Vec<Command>, String> {
    let mut names: Vec<Option<String>> = Vec::with_capacity(entries.len());
    for e in &entries {
        if let Some(n) = &e.given.name {
            if names.contains(&Some(n.clone())) {
                return Err(format!("{}: the name '{n}' is given to two commands", e.name_source));
            }
        }
        names.push(e.given.name.clone());
    }
    // Each default's next suffix to try: names are only ever taken, so the ones below it stay
    // taken (10,000 `sh` commands cost 10,000 tries, not 50 million).
    let mut next: Vec<(String, usize)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if names[i].is_none() {
            let base = default_name(e.argv.first().map_or(std::ffi::OsStr::new(""), |a| a.as_os_str()));
            let at = next.iter().position(|(b, _)| *b == base).unwrap_or_else(|| {
                next.push((base.clone(), 2));
                next.len() - 1
            });
            names[i] = Some(unique(&base, &names, &mut next[at].1));
        }
    }
    let names: Vec<String> = names.into_iter().map(Option::unwrap_or_default).collect();
    let mut commands = Vec::with_capacity(entries.len());
    for (i, e) in entries.into_iter().enumerate() {
        let mut after = Vec::new();
        for n in e.given.after.iter().flatten() {
            match names.iter().position(|m| m == n) {
                Some(j) if j == i => return Err(format!("{}: '{n}' cannot be after itself", e.after_source)),
                Some(j) => after.push(j),
                None => return Err(format!("{}: no command is named '{n}'", e.after_source)),
            }
        }
        let role = match e.kind {
            Kind::Main => Role::Main,
            Kind::Also => Role::Also { essential: !e.given.optional },
            Kind::Respawn => Role::Respawn {
                budget: e.given.restarts.unwrap_or(Some(DEFAULT_BUDGET)),
                done: e.given.done.unwrap_or_default(),
            },
        };
        let mut settings = Settings::new(names[i].clone(), role);
        settings.stop_signal = e.given.stop_signal;
        settings.ready = e.given.ready;
        settings.ready_timeout = e.given.ready_timeout.unwrap_or(settings.ready_timeout);
        settings.after = after;
        commands.push((Command { argv: e.argv, settings }, e.after_source));
    }
    if let Some((i, cycle)) = (0..commands.len()).find_map(|i| cycle_from(&commands, i).map(|c| (i, c))) {
        let path: Vec<&str> = cycle.iter().map(|&j| commands[j].0.settings.name.as_str()).collect();
        return Err(format!("{}: a cycle: {}", commands[i].1, path.join(" after ")));
    }
    Ok(commands.into_iter().map(|(c, _)| c).collect())
}

/// `base`, or `base-K` with K from `from` on (cut to fit `MAX_NAME`): the first not in
/// `taken`. `from` moves past the suffix given.
fn unique(base: &str, taken: &[Option<String>], from: &mut usize) -> String {
    let free = |n: &str| !taken.iter().flatten().any(|t| t == n);
    if free(base) {
        return base.to_owned();
    }
    for k in *from.. {
        let suffix = format!("-{k}");
        let name = format!("{}{suffix}", &base[..base.len().min(MAX_NAME - suffix.len())]);
        if free(&name) {
            *from = k + 1;
            return name;
        }
    }
    String::new()
}

/// A path of `after` edges from `start` back to `start` (first and last element), if any.
fn cycle_from(commands: &[(Command, String)], start: usize) -> Option<Vec<usize>> {
    // Depth-first, each command once: the list is small, the walk bounded by its size.
    let mut path = vec![start];
    let mut next = vec![0usize];
    let mut seen = vec![false; commands.len()];
    while let (Some(&at), Some(k)) = (path.last(), next.last_mut()) {
        let Some(&to) = commands[at].0.settings.after.get(*k) else {
            path.pop();
            next.pop();
            continue;
        };
        *k += 1;
        if to == start {
            path.push(start);
            return Some(path);
        }
        if !seen[to] {
            seen[to] = true;
            path.push(to);
            next.push(0);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[&str]) -> Vec<String> {
        v.iter().map(|w| w.to_string()).collect()
    }

    fn given(kind: Kind, v: &[&str]) -> Result<(Given, Vec<String>), String> {
        split(words(v), kind)
    }

    #[test]
    fn settings_lead_the_command_line_until_the_first_other_word() {
        let (g, argv) =
            given(Kind::Also, &["--name=db", "--ready", "notify", "postgres", "--name=x"]).unwrap();
        assert_eq!(g, Given { name: Some("db".into()), ready: Some(Ready::Notify), ..Given::default() });
        assert_eq!(argv, ["postgres", "--name=x"]);
        let (g, argv) = given(Kind::Also, &["pg", "--name=db"]).unwrap();
        assert_eq!((g, argv), (Given::default(), words(&["pg", "--name=db"])));
    }

    #[test]
    fn a_lone_double_dash_ends_the_settings_and_is_dropped() {
        let (g, argv) = given(Kind::Respawn, &["--name=a", "--", "--weird", "x"]).unwrap();
        assert_eq!(g.name.as_deref(), Some("a"));
        assert_eq!(argv, ["--weird", "x"]);
        let (_, argv) = given(Kind::Respawn, &["--", "--", "x"]).unwrap();
        assert_eq!(argv, ["--", "x"], "only the first ends them");
        // A key's value never is the `--` that ends them.
        assert_eq!(given(Kind::Also, &["--name", "--", "x"]), Err("--name needs a value".into()));
    }

    #[test]
    fn a_key_takes_the_next_word_as_its_value() {
        let (g, argv) = given(Kind::Respawn, &["--restarts", "3/1m", "--done", "0,3", "crond"]).unwrap();
        assert_eq!(g.restarts, Some(Some(Budget { exits: 3, within: Duration::from_secs(60) })));
        assert_eq!(g.done, Some(vec![0, 3]));
        assert_eq!(argv, ["crond"]);
        assert_eq!(given(Kind::Also, &["--name"]), Err("--name needs a value".into()));
    }

    #[test]
    fn optional_takes_no_value_and_never_the_next_word() {
        let (g, argv) = given(Kind::Also, &["--optional", "x"]).unwrap();
        assert!(g.optional);
        assert_eq!(argv, ["x"]);
        assert_eq!(
            given(Kind::Also, &["--optional=x", "a"]),
            Err("--optional takes no value (got 'x')".into())
        );
        assert_eq!(given(Kind::Also, &["--optional="]), Err("--optional takes no value (got '')".into()));
    }

    #[test]
    fn a_ready_timeout_needs_a_readiness() {
        assert_eq!(
            given(Kind::Also, &["--ready-timeout=5s", "a"]),
            Err("--ready-timeout needs --ready".into())
        );
        let (g, _) = given(Kind::Also, &["--ready-timeout=5s", "--ready=notify", "a"]).unwrap();
        assert_eq!(g.ready_timeout, Some(Duration::from_secs(5)));
    }

    #[test]
    fn settings_alone_are_no_command() {
        assert_eq!(given(Kind::Also, &["--name=a"]), Err("no command after the settings".into()));
        assert_eq!(given(Kind::Also, &["--name=a", "--"]), Err("no command after the settings".into()));
        assert_eq!(given(Kind::Also, &["--optional"]), Err("no command after the settings".into()));
    }

    #[test]
    fn unknown_settings_and_wrong_kinds_are_named() {
        assert_eq!(
            given(Kind::Also, &["--nmae=x", "a"]),
            Err(format!("unknown setting '--nmae' (the settings: {KEYS})"))
        );
        assert_eq!(
            given(Kind::Also, &["--restarts=3/1s", "a"]),
            Err("--restarts is a --respawn command's setting, not an --also command's".into())
        );
        assert_eq!(
            given(Kind::Also, &["--done=0", "a"]),
            Err("--done is a --respawn command's setting, not an --also command's".into())
        );
        assert_eq!(
            given(Kind::Respawn, &["--optional", "a"]),
            Err("--optional is an --also command's setting, not a --respawn command's".into())
        );
        let mut g = Given::default();
        assert_eq!(
            set(&mut g, Kind::Main, "restarts", Some("1/1s")),
            Err("--restarts is a --respawn command's setting, not the main command's".into())
        );
        assert_eq!(
            set(&mut g, Kind::Main, "optional", None),
            Err("--optional is an --also command's setting, not the main command's".into())
        );
        assert_eq!(g, Given::default());
    }

    #[test]
    fn every_common_setting_parses_for_every_kind() {
        for kind in [Kind::Main, Kind::Also, Kind::Respawn] {
            let mut g = Given::default();
            set(&mut g, kind, "name", Some("web.1_a-B")).unwrap();
            set(&mut g, kind, "stop-signal", Some("QUIT")).unwrap();
            set(&mut g, kind, "ready", Some("fd:3")).unwrap();
            set(&mut g, kind, "ready-timeout", Some("2m")).unwrap();
            set(&mut g, kind, "after", Some("db, cache,db")).unwrap();
            let want = Given {
                name: Some("web.1_a-B".into()),
                stop_signal: Some(libc::SIGQUIT),
                ready: Some(Ready::Fd(3)),
                ready_timeout: Some(Duration::from_secs(120)),
                after: Some(vec!["db".into(), "cache".into()]),
                ..Given::default()
            };
            assert_eq!(g, want, "{kind:?}");
        }
    }

    #[test]
    fn bad_values_name_their_setting() {
        let err = |key: &str, v: &str| set(&mut Given::default(), Kind::Respawn, key, Some(v)).unwrap_err();
        assert_eq!(
            err("name", "a b"),
            "--name: invalid name 'a b' (letters, digits, '.', '_' and '-', 1 to 32)"
        );
        assert_eq!(
            err("stop-signal", "NOPE"),
            format!("--stop-signal: {}", crate::signals::parse("NOPE").unwrap_err())
        );
        assert_eq!(
            err("ready", "fd:2"),
            "--ready: invalid readiness 'fd:2' (notify or fd:N, N from 3 to 1023)"
        );
        assert_eq!(err("ready-timeout", "0"), "--ready-timeout: must be more than 0");
        assert_eq!(err("ready-timeout", "x"), "--ready-timeout: invalid duration 'x' (e.g. 500ms, 3s, 1m)");
        assert_eq!(err("after", ","), "--after: no name (NAME[,NAME...])");
        assert_eq!(
            err("after", "a,b c"),
            "--after: invalid name 'b c' (letters, digits, '.', '_' and '-', 1 to 32)"
        );
        assert_eq!(
            err("restarts", "3"),
            "--restarts: invalid restart budget '3' (N/DURATION as in 5/10s, or unlimited)"
        );
        assert_eq!(err("done", "256"), "--done: invalid exit code '256' (0-255)");
    }

    #[test]
    fn names_are_short_plain_words() {
        assert_eq!(name("a"), Ok("a".into()));
        assert_eq!(name(&"x".repeat(32)), Ok("x".repeat(32)));
        assert!(name(&"x".repeat(33)).is_err());
        assert!(name("").is_err());
        for bad in ["a/b", "a b", "é", "a:b", "a\n"] {
            assert!(name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn default_names_are_argv0s_basename_made_a_name() {
        let n = |a: &str| default_name(std::ffi::OsStr::new(a));
        assert_eq!(n("/usr/sbin/nginx"), "nginx");
        assert_eq!(n("php-fpm8.2"), "php-fpm8.2");
        assert_eq!(n("my server:é"), "my_server__");
        assert_eq!(n(""), "command");
        assert_eq!(n("/bin/"), "command");
        assert_eq!(n(&"y".repeat(40)), "y".repeat(32));
    }

    #[test]
    fn restart_budgets() {
        assert_eq!(restarts("unlimited"), Ok(None));
        assert_eq!(restarts(" 5/10s "), Ok(Some(Budget { exits: 5, within: Duration::from_secs(10) })));
        assert_eq!(restarts("0/1"), Ok(Some(Budget { exits: 0, within: Duration::from_secs(1) })));
        assert_eq!(restarts("4294967295/1s").map(|b| b.map(|b| b.exits)), Ok(Some(u32::MAX)));
        assert!(restarts("4294967296/1s").is_err());
        assert!(restarts("-1/1s").is_err());
        assert!(restarts("/1s").is_err());
        assert!(restarts("x/1s").is_err());
        assert_eq!(restarts("3/0s"), Err("'3/0s': the DURATION must be more than 0".into()));
        assert_eq!(restarts("3/x"), Err("invalid duration 'x' (e.g. 500ms, 3s, 1m)".into()));
        assert_eq!(restarts("3/400d"), Err("duration '400d' is too long (at most 365d)".into()));
    }

    #[test]
    fn done_codes() {
        assert_eq!(done("0"), Ok(vec![0]));
        assert_eq!(done(" 0, 3,,255,3"), Ok(vec![0, 3, 255]));
        assert_eq!(done(""), Err("no exit code (CODE[,CODE...], 0-255)".into()));
        assert_eq!(done("-1"), Err("invalid exit code '-1' (0-255)".into()));
    }

    #[test]
    fn readiness() {
        assert_eq!(ready("notify"), Ok(Ready::Notify));
        assert_eq!(ready(" fd:3 "), Ok(Ready::Fd(3)));
        assert_eq!(ready("fd:1023"), Ok(Ready::Fd(1023)));
        for bad in ["fd:1024", "fd:2", "fd:0", "fd:", "fd:-3", "3", "Notify", "fd:99999999999"] {
            assert!(ready(bad).is_err(), "{bad}");
        }
    }

    fn entry(argv: &[&str], kind: Kind, given: Given) -> Entry {
        Entry {
            argv: argv.iter().map(OsString::from).collect(),
            kind,
            given,
            name_source: format!("name of {}", argv[0]),
            after_source: format!("after of {}", argv[0]),
        }
    }

    fn named(n: &str) -> Given {
        Given { name: Some(n.into()), ..Given::default() }
    }

    fn after_(names: &[&str]) -> Given {
        Given { after: Some(names.iter().map(|n| n.to_string()).collect()), ..Given::default() }
    }

    fn names(commands: &[Command]) -> Vec<&str> {
        commands.iter().map(|c| c.settings.name.as_str()).collect()
    }

    #[test]
    fn roles_and_defaults() {
        let c = resolve(vec![
            entry(&["web", "-x"], Kind::Main, Given::default()),
            entry(&["a"], Kind::Also, Given::default()),
            entry(&["b"], Kind::Also, Given { optional: true, ..Given::default() }),
            entry(&["c"], Kind::Respawn, Given::default()),
            entry(
                &["d"],
                Kind::Respawn,
                Given { restarts: Some(None), done: Some(vec![0]), ..Given::default() },
            ),
        ])
        .unwrap();
        assert_eq!(
            c[0],
            Command {
                argv: vec!["web".into(), "-x".into()],
                settings: Settings::new("web".into(), Role::Main)
            }
        );
        assert_eq!(c[1].settings.role, Role::Also { essential: true });
        assert_eq!(c[2].settings.role, Role::Also { essential: false });
        assert_eq!(c[3].settings.role, Role::Respawn { budget: Some(DEFAULT_BUDGET), done: vec![] });
        assert_eq!(c[4].settings.role, Role::Respawn { budget: None, done: vec![0] });
        let given = Given {
            stop_signal: Some(3),
            ready: Some(Ready::Notify),
            ready_timeout: Some(Duration::from_secs(5)),
            ..Given::default()
        };
        let c = resolve(vec![entry(&["x"], Kind::Main, given)]).unwrap();
        let s = &c[0].settings;
        assert_eq!(
            (s.stop_signal, s.ready, s.ready_timeout),
            (Some(3), Some(Ready::Notify), Duration::from_secs(5))
        );
    }

    #[test]
    fn unnamed_duplicates_get_numbered_and_explicit_names_win() {
        let c = resolve(vec![
            entry(&["/bin/sh"], Kind::Main, Given::default()),
            entry(&["sh"], Kind::Also, Given::default()),
            entry(&["x"], Kind::Also, named("sh-3")),
            entry(&["sh"], Kind::Respawn, Given::default()),
            entry(&["y"], Kind::Respawn, named("db")),
            entry(&["db"], Kind::Respawn, Given::default()),
        ])
        .unwrap();
        assert_eq!(names(&c), ["sh", "sh-2", "sh-3", "sh-4", "db", "db-2"]);
    }

    #[test]
    fn numbered_names_stay_within_the_length() {
        let long = "z".repeat(32);
        let c = resolve(vec![
            entry(&[&long], Kind::Main, Given::default()),
            entry(&[&long], Kind::Also, Given::default()),
        ])
        .unwrap();
        assert_eq!(names(&c), [long.clone(), format!("{}-2", "z".repeat(30))]);
    }

    #[test]
    fn an_explicit_name_given_twice_is_an_error() {
        let e = resolve(vec![entry(&["a"], Kind::Main, named("db")), entry(&["b"], Kind::Also, named("db"))]);
        assert_eq!(e, Err("name of b: the name 'db' is given to two commands".into()));
    }

    #[test]
    fn after_names_become_indices() {
        let c = resolve(vec![
            entry(&["nginx"], Kind::Main, after_(&["db", "cache"])),
            entry(&["postgres"], Kind::Also, named("db")),
            entry(&["redis"], Kind::Also, Given { after: Some(vec!["db".into()]), ..named("cache") }),
            entry(&["crond"], Kind::Respawn, after_(&["nginx"])),
        ])
        .unwrap();
        let after: Vec<&[usize]> = c.iter().map(|c| c.settings.after.as_slice()).collect();
        assert_eq!(after, [&[1, 2][..], &[], &[1], &[0]]);
    }

    #[test]
    fn unknown_or_own_after_names_are_errors() {
        let e = resolve(vec![
            entry(&["a"], Kind::Main, Given::default()),
            entry(&["b"], Kind::Also, after_(&["nope"])),
        ]);
        assert_eq!(e, Err("after of b: no command is named 'nope'".into()));
        let e = resolve(vec![
            entry(&["a"], Kind::Main, Given::default()),
            entry(&["b"], Kind::Also, after_(&["a", "b"])),
        ]);
        assert_eq!(e, Err("after of b: 'b' cannot be after itself".into()));
    }

    #[test]
    fn cycles_are_errors_that_show_the_cycle() {
        let e = resolve(vec![
            entry(&["a"], Kind::Main, after_(&["b"])),
            entry(&["b"], Kind::Also, after_(&["a"])),
        ]);
        assert_eq!(e, Err("after of a: a cycle: a after b after a".into()));
        // Reached through a command outside it: named from the first command on it.
        let e = resolve(vec![
            entry(&["a"], Kind::Main, after_(&["b"])),
            entry(&["b"], Kind::Also, after_(&["d", "c"])),
            entry(&["c"], Kind::Also, after_(&["d"])),
            entry(&["d"], Kind::Also, after_(&["e"])),
            entry(&["e"], Kind::Also, after_(&["c"])),
        ]);
        assert_eq!(e, Err("after of c: a cycle: c after d after e after c".into()));
        // Two paths to one command are no cycle.
        let ok = resolve(vec![
            entry(&["a"], Kind::Main, after_(&["b", "c"])),
            entry(&["b"], Kind::Also, after_(&["c"])),
            entry(&["c"], Kind::Also, Given::default()),
        ]);
        assert!(ok.is_ok(), "{ok:?}");
    }
}

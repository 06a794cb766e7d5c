//! The log backend: `reaper: LEVEL message` lines on stderr, at the level -v/-q or `REAPER_LOG`
//! sets, per module if `REAPER_LOG` says so.
//!
//! Not env_logger: reaper needs one line format and env_logger's filter syntax without its
//! `/regex` part, which is this page; env_logger without its default features costs about
//! 15 KB of a binary that aims at 150 KB (measured: docs/design.md).

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use log::{LevelFilter, Log, Metadata, Record};

/// Where reaper's own lines go. With `--prefix-output` reaper's stderr is written only when
/// poll(2) says it takes a write, from the queue `logs` keeps: a line written straight there
/// would block reaper once a stalled reader let that queue fill the pipe (and could pass the
/// commands' lines queued before it). So the lines wait in `DIVERTED` for `logs` to queue.
static MODE: AtomicU8 = AtomicU8::new(DIRECT);
/// Straight to stderr (without `--prefix-output`, and before the loop).
const DIRECT: u8 = 0;
/// Into `DIVERTED`.
const DIVERT: u8 = 1;
/// Straight to stderr, but only if poll(2) says it takes a write now (after `logs` is done, at
/// exit); otherwise the line is lost rather than reaper stuck.
const GUARDED: u8 = 2;
static DIVERTED: Mutex<Vec<u8>> = Mutex::new(Vec::new());
/// What `DIVERTED` holds at most (it is emptied every wake-up).
const DIVERTED_MAX: usize = 1024 * 1024;

/// From now on reaper's lines wait for [`take_diverted`].
pub fn divert() {
    MODE.store(DIVERT, Ordering::Relaxed);
}

/// From now on reaper's lines go straight to stderr, when it takes them without blocking.
pub fn undivert() {
    MODE.store(GUARDED, Ordering::Relaxed);
}

/// Moves the lines waiting (whole lines, each with its newline) to the end of `into`.
pub fn take_diverted(into: &mut Vec<u8>) {
    let mut lines = DIVERTED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    into.append(&mut lines);
}

fn stderr_takes_a_write() -> bool {
    let mut fd = libc::pollfd { fd: 2, events: libc::POLLOUT, revents: 0 };
    // SAFETY: poll(2) on one pollfd of ours, zero timeout.
    unsafe { libc::poll(&mut fd, 1, 0) == 1 && fd.revents & libc::POLLOUT != 0 }
}

/// A default level and `module=level` directives: the longest module that is a prefix of a
/// record's target decides (env_logger's rule), else the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub default: LevelFilter,
    pub modules: Vec<(String, LevelFilter)>,
}

impl Filter {
    /// `spec` (`REAPER_LOG`) on top of `default` (-v/-q): comma-separated `level`, `module=level`
    /// or `module` (all of it: trace). A later directive for the same module wins. Also returns
    /// the directives it could not read, which are ignored.
    pub fn parse(spec: &str, default: LevelFilter) -> (Filter, Vec<&str>) {
        let mut filter = Filter { default, modules: Vec::new() };
        let mut bad = Vec::new();
        // env_logger's `spec/regex` message filter is not supported: reported, not applied.
        let spec = match spec.find('/') {
            Some(slash) => {
                bad.push(&spec[slash..]);
                &spec[..slash]
            }
            None => spec,
        };
        for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let (module, level) = match directive.split_once('=') {
                Some((module, level)) => (module.trim(), level.trim().parse().ok()),
                // A bare word is a level if it names one, else a module.
                None => match directive.parse() {
                    Ok(level) => ("", Some(level)),
                    Err(_) => (directive, Some(LevelFilter::Trace)),
                },
            };
            match level {
                Some(level) if module.is_empty() => filter.default = level,
                Some(level) => {
                    filter.modules.retain(|(m, _)| m != module);
                    filter.modules.push((module.to_owned(), level));
                }
                None => bad.push(directive),
            }
        }
        (filter, bad)
    }

    /// The level that applies to a record from `target`.
    pub fn level(&self, target: &str) -> LevelFilter {
        self.modules
            .iter()
            .filter(|(module, _)| target.starts_with(module.as_str()))
            .max_by_key(|(module, _)| module.len())
            .map_or(self.default, |&(_, level)| level)
    }

    /// The most verbose level any target gets: `log`'s global fast check.
    pub fn max(&self) -> LevelFilter {
        self.modules.iter().map(|&(_, level)| level).fold(self.default, Ord::max)
    }
}

struct Logger(Filter);

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.0.level(metadata.target())
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            // One write(2) per line: stderr is unbuffered, and lines from reaper and the
            // command's processes share it.
            let line = format!("reaper: {} {}\n", record.level(), record.args());
            match MODE.load(Ordering::Relaxed) {
                DIVERT => {
                    let mut lines = DIVERTED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if lines.len() + line.len() <= DIVERTED_MAX {
                        lines.extend_from_slice(line.as_bytes());
                    }
                }
                GUARDED if !stderr_takes_a_write() => {}
                _ => {
                    let _ = std::io::stderr().write_all(line.as_bytes());
                }
            }
        }
    }

    fn flush(&self) {}
}

/// Installs the logger (once; a second call changes nothing) and warns about the parts of
/// `spec` it ignored.
pub fn init(default: LevelFilter, spec: Option<&str>) {
    let (filter, bad) = Filter::parse(spec.unwrap_or(""), default);
    let max = filter.max();
    if log::set_logger(Box::leak(Box::new(Logger(filter)))).is_ok() {
        log::set_max_level(max);
        // Whatever the level: a filter that silenced its own warning would hide the typo.
        for directive in bad {
            let line = format!(
                "reaper: WARN REAPER_LOG: ignoring \"{directive}\": it takes a level (off, error, \
                 warn, info, debug, trace) or module=level, comma-separated\n"
            );
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LevelFilter::*;

    fn parse(spec: &str) -> (Filter, Vec<&str>) {
        Filter::parse(spec, Warn)
    }

    #[test]
    fn empty_keeps_the_default() {
        assert_eq!(parse(""), (Filter { default: Warn, modules: vec![] }, vec![]));
        assert_eq!(parse(" , ,"), (Filter { default: Warn, modules: vec![] }, vec![]));
    }

    #[test]
    fn a_bare_level_sets_the_default_in_any_case() {
        for (spec, level) in [
            ("off", Off),
            ("error", Error),
            ("WARN", Warn),
            ("Info", Info),
            ("debug", Debug),
            ("trace", Trace),
        ] {
            assert_eq!(parse(spec).0, Filter { default: level, modules: vec![] }, "{spec}");
        }
        assert_eq!(parse("info,debug").0.default, Debug, "the later one wins");
    }

    #[test]
    fn module_directives() {
        let (f, bad) = parse("reaper::state=debug, reaper = info ,reaper::spawn");
        assert!(bad.is_empty());
        assert_eq!(f.default, Warn);
        assert_eq!(
            f.modules,
            vec![("reaper::state".into(), Debug), ("reaper".into(), Info), ("reaper::spawn".into(), Trace)]
        );
        assert_eq!(parse("=info").0.default, Info, "an empty module is the default");
        let (f, _) = parse("reaper=info,reaper=error");
        assert_eq!(f.modules, vec![("reaper".into(), Error)], "a later directive for a module replaces it");
    }

    #[test]
    fn unreadable_directives_are_reported_and_ignored() {
        let (f, bad) = parse("info,reaper=loud,x=");
        assert_eq!(bad, vec!["reaper=loud", "x="]);
        assert_eq!(f, Filter { default: Info, modules: vec![] });
        let (f, bad) = parse("debug,reaper=info/spawn.*");
        assert_eq!(bad, vec!["/spawn.*"], "env_logger's regex filter");
        assert_eq!(f, Filter { default: Debug, modules: vec![("reaper".into(), Info)] });
    }

    #[test]
    fn the_longest_matching_module_decides() {
        let (f, _) = parse("error,reaper=info,reaper::state=trace,reaper::stat=off");
        assert_eq!(f.level("reaper::state"), Trace);
        assert_eq!(f.level("reaper::state::x"), Trace);
        assert_eq!(f.level("reaper::statistics"), Off, "a plain prefix, as env_logger");
        assert_eq!(f.level("reaper::spawn"), Info);
        assert_eq!(f.level("reape"), Error);
        assert_eq!(f.level("other"), Error);
        assert_eq!(Filter::parse("", Debug).0.level("reaper"), Debug);
    }

    #[test]
    fn max_is_the_most_verbose_level() {
        assert_eq!(parse("").0.max(), Warn);
        assert_eq!(parse("error").0.max(), Error);
        assert_eq!(parse("error,reaper::state=debug,reaper=info").0.max(), Debug);
        assert_eq!(parse("trace,reaper=off").0.max(), Trace);
    }

    #[test]
    fn records_are_filtered_by_their_target() {
        let logger = Logger(parse("reaper::spawn=debug").0);
        let at = |level, target| logger.enabled(&Metadata::builder().level(level).target(target).build());
        assert!(at(log::Level::Debug, "reaper::spawn"));
        assert!(!at(log::Level::Trace, "reaper::spawn"));
        assert!(at(log::Level::Warn, "reaper::state"));
        assert!(at(log::Level::Error, "reaper::state"));
        assert!(!at(log::Level::Info, "reaper::state"));
    }
}

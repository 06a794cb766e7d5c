//! Signal names and numbers: parsing, printing, and which ones mean "stop".
//!
//! Signal numbers stay plain `i32` everywhere: nix's `Signal` enum cannot hold real-time
//! signals, and systemd images stop with SIGRTMIN+3.

/// Real-time signals in the kernel's numbering, which is what Docker (`STOPSIGNAL SIGRTMIN+3`),
/// Go and glibc programs use. musl's `SIGRTMIN()` is 35, so we never ask the C library.
pub const RTMIN: i32 = 34;
pub const RTMAX: i32 = 64;

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// TERM, INT and QUIT ask the workload to stop: they start `--kill-after` and end `--pause`.
pub fn is_stop(sig: i32) -> bool {
    matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)
}

/// A signal number that can be sent: 1–31 or RTMIN–RTMAX (32 and 33 belong to the C library).
pub fn is_valid(sig: i32) -> bool {
    (1..32).contains(&sig) || (RTMIN..=RTMAX).contains(&sig)
}

/// Parses `TERM`, `SIGTERM`, `sigterm`, `15`, `RTMIN+3`, `SIGRTMAX-2`.
pub fn parse(text: &str) -> Result<i32, String> {
    let bad = || format!("invalid signal '{text}'");
    let upper = text.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let sig = if let Ok(n) = name.parse::<i32>() {
        n
    } else if let Some(&(_, n)) = NAMES.iter().find(|(s, _)| *s == name) {
        n
    } else if let Some(rest) = name.strip_prefix("RTMIN") {
        RTMIN + offset(rest, '+').ok_or_else(bad)?
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        RTMAX - offset(rest, '-').ok_or_else(bad)?
    } else {
        return Err(bad());
    };
    if is_valid(sig) {
        Ok(sig)
    } else {
        Err(format!("invalid signal '{text}': not a signal number (1-31, 34-64)"))
    }
}

/// The `+3` of `RTMIN+3`; empty means 0. Bounded so the sum cannot overflow.
fn offset(rest: &str, sign: char) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    let digits = rest.strip_prefix(sign)?;
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `SIGTERM`, `SIGRTMIN+3`, or the bare number for anything else.
pub fn name(sig: i32) -> String {
    match NAMES.iter().find(|&&(_, n)| n == sig) {
        Some((s, _)) => format!("SIG{s}"),
        None if (RTMIN..=RTMAX).contains(&sig) => format!("SIGRTMIN+{}", sig - RTMIN),
        None => format!("signal {sig}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_numbers_and_realtime() {
        assert_eq!(parse("TERM"), Ok(15));
        assert_eq!(parse("SIGTERM"), Ok(15));
        assert_eq!(parse("sigterm"), Ok(15));
        assert_eq!(parse("15"), Ok(15));
        assert_eq!(parse("RTMIN"), Ok(34));
        assert_eq!(parse("RTMIN+3"), Ok(37));
        assert_eq!(parse("SIGRTMIN+3"), Ok(37));
        assert_eq!(parse("RTMAX"), Ok(64));
        assert_eq!(parse("RTMAX-2"), Ok(62));
        assert_eq!(parse("64"), Ok(64));
        assert_eq!(parse("WINCH"), Ok(libc::SIGWINCH));
    }

    #[test]
    fn rejects_bad_signals() {
        for bad in [
            "",
            "0",
            "32",
            "33",
            "65",
            "-1",
            "FOO",
            "RTMIN+31",
            "RTMIN-1",
            "RTMAX+1",
            "RTMIN+",
            "RTMIN+99999999999",
            "99999999999",
            "SIG",
            "RTMAX-31",
        ] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn names_round_trip() {
        for sig in (1..32).chain(RTMIN..=RTMAX) {
            assert_eq!(parse(&name(sig)), Ok(sig), "{}", name(sig));
        }
    }
}

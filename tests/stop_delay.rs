//! `--stop-delay` with real processes, as PID 1 and as a subreaper: the first TERM is held
//! back while the command keeps working, everything else passes at once, `--kill-after`
//! counts from the forward; and `reaper --sleep`.
//!
//! The command is a Python probe that appends a heartbeat (its CLOCK_MONOTONIC time) every
//! 20 ms and logs each signal it gets with the time it got it. The test reads the same clock,
//! so the delays below are measured between processes, not guessed from exit times.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const LONG: Duration = Duration::from_secs(30);
/// "At once", on a loaded 2-core machine: far below every delay these tests hold.
const PROMPT: f64 = 1.5;

/// Seconds on CLOCK_MONOTONIC, the clock of Python's `time.monotonic()`.
fn mono() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime(2) writes into our timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// The probe, in `dir`: heartbeats in `beat`, `SIG TIME` lines in `signals`, `ready` once its
/// handlers are in place. `exits`: (signal, exit code) pairs; other signals are only logged.
fn probe(dir: &Path, exits: &[(i32, i32)]) -> Vec<String> {
    let exits: Vec<String> = exits.iter().map(|(s, c)| format!("{s}: {c}")).collect();
    let script = format!(
        r#"
import signal, sys, time
log = open("signals", "a", buffering=1)
beat = open("beat", "a", buffering=1)
exits = {{{exits}}}
def h(n, f):
    log.write("%d %.6f\n" % (n, time.monotonic()))
    if n in exits:
        sys.exit(exits[n])
for n in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGTERM):
    signal.signal(n, h)
open("ready", "w").close()
while True:
    beat.write("%.6f\n" % time.monotonic())
    time.sleep(0.02)
"#,
        exits = exits.join(", ")
    );
    std::fs::write(dir.join("probe.py"), script).unwrap();
    vec!["python3".into(), "probe.py".into()]
}

/// reaper with `opts`, running the probe in a fresh directory, started and ready.
fn start_probe(
    mode: Mode,
    tag: &str,
    opts: &[&str],
    exits: &[(i32, i32)],
) -> (Reaper, Guard, std::path::PathBuf) {
    let dir = tempdir(tag);
    let cmd = probe(&dir, exits);
    let mut args: Vec<&str> = vec!["-v"];
    args.extend_from_slice(opts);
    args.push("--");
    args.extend(cmd.iter().map(String::as_str));
    let (r, g) = start_in(mode, &dir, &args);
    assert!(wait_for_file(&dir.join("ready"), LONG), "probe not ready: {}", stderr_of(&dir));
    (r, g, dir)
}

/// The signals the probe got, with when.
fn signals(dir: &Path) -> Vec<(i32, f64)> {
    let text = std::fs::read_to_string(dir.join("signals")).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(s, t)| (s.parse().unwrap(), t.parse().unwrap()))
        .collect()
}

fn beats(dir: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(dir.join("beat")).unwrap_or_default();
    text.lines().filter_map(|l| l.parse().ok()).collect()
}

/// When the probe got `sig`, waiting for it up to `LONG`.
fn got(dir: &Path, sig: i32) -> f64 {
    let mut at = None;
    wait_until(LONG, || {
        at = signals(dir).iter().find(|(s, _)| *s == sig).map(|&(_, t)| t);
        at.is_some()
    });
    at.unwrap_or_else(|| panic!("the probe never got signal {sig}: {}", stderr_of(dir)))
}

/// Sends TERM and waits until reaper has logged that it holds it; returns when it was sent.
fn term_held(r: &Reaper, dir: &Path, delay: &str) -> f64 {
    let sent = mono();
    r.signal(libc::SIGTERM);
    wait_for_log(dir, &format!("TERM received: forwarding in {delay} (--stop-delay)"));
    sent
}

/// Sends `sig` to reaper during the delay and checks it reaches the command at once.
fn passes_at_once(r: &Reaper, dir: &Path, sig: i32) {
    let sent = mono();
    r.signal(sig);
    let took = got(dir, sig) - sent;
    assert!(took < PROMPT, "signal {sig} took {took:.3} s to reach the command");
}

// The held TERM reaches the command no earlier than the delay after it was sent, and the
// command keeps working (heartbeats) all that time; then its TERM handler's status is reaper's.
both_modes!(term_reaches_the_command_only_after_the_delay, |mode| {
    let (mut r, _g, dir) = start_probe(mode, "held", &["--stop-delay", "1s"], &[(libc::SIGTERM, 42)]);
    let sent = term_held(&r, &dir, "1s");
    assert_eq!(r.code(LONG), 42, "{}", stderr_of(&dir));
    let term = got(&dir, libc::SIGTERM);
    let delay = term - sent;
    println!("figure: {mode:?}: --stop-delay 1s, TERM reached the command {delay:.3} s after it was sent");
    assert!(delay >= 1.0, "TERM came {delay:.3} s after it was sent: before --stop-delay 1s");
    assert!(delay < 1.0 + PROMPT, "TERM came {delay:.3} s after it was sent: long after the delay");
    let during: Vec<f64> = beats(&dir).into_iter().filter(|&b| b > sent && b < term).collect();
    assert!(during.len() >= 10, "only {} heartbeats during the delay", during.len());
    assert!(during.iter().any(|&b| b >= sent + 0.5), "no heartbeat in the delay's second half: {during:?}");
});

// A second TERM ends the delay: forwarded at once, and only once.
both_modes!(a_second_term_is_forwarded_at_once, |mode| {
    let (mut r, _g, dir) = start_probe(mode, "second", &["--stop-delay", "10s"], &[(libc::SIGTERM, 42)]);
    term_held(&r, &dir, "10s");
    passes_at_once(&r, &dir, libc::SIGTERM);
    assert_eq!(r.code(LONG), 42, "{}", stderr_of(&dir));
    assert_eq!(signals(&dir).len(), 1, "{:?}", signals(&dir));
});

// The longest delay (365d: longer ones are usage errors, tests/options.rs) is armed like any
// other: a second TERM still ends it at once. (Past the limit, the deadline overflowed and the
// held TERM was never forwarded.)
both_modes!(a_second_term_ends_the_longest_stop_delay, |mode| {
    let (mut r, _g, dir) = start_probe(mode, "longest", &["--stop-delay", "365d"], &[(libc::SIGTERM, 42)]);
    term_held(&r, &dir, "31536000s");
    passes_at_once(&r, &dir, libc::SIGTERM);
    assert_eq!(r.code(LONG), 42, "{}", stderr_of(&dir));
    assert_eq!(signals(&dir).len(), 1, "{:?}", signals(&dir));
});

// INT is never delayed and ends the delay; the held TERM is dropped (never sent later).
both_modes!(int_is_not_delayed_and_drops_the_held_term, |mode| {
    let (mut r, _g, dir) = start_probe(mode, "int", &["--stop-delay", "2s"], &[(libc::SIGQUIT, 44)]);
    let sent = term_held(&r, &dir, "2s");
    passes_at_once(&r, &dir, libc::SIGINT);
    // Well past the end of the delay: the TERM it held must not come.
    wait_until(LONG, || mono() > sent + 3.5);
    assert_eq!(signals(&dir).iter().map(|s| s.0).collect::<Vec<_>>(), [libc::SIGINT], "{}", stderr_of(&dir));
    assert!(stderr_of(&dir).contains("SIGINT ends --stop-delay: forwarded now; the held TERM is dropped"));
    r.signal(libc::SIGQUIT);
    assert_eq!(r.code(LONG), 44, "{}", stderr_of(&dir));
});

// Any other signal during the delay is forwarded at once; the TERM still waits its turn.
both_modes!(usr1_during_the_delay_is_forwarded_at_once, |mode| {
    let (mut r, _g, dir) = start_probe(mode, "usr1", &["--stop-delay", "2s"], &[(libc::SIGTERM, 42)]);
    let sent = term_held(&r, &dir, "2s");
    passes_at_once(&r, &dir, libc::SIGUSR1);
    assert_eq!(r.code(LONG), 42, "{}", stderr_of(&dir));
    let term = got(&dir, libc::SIGTERM);
    assert!(term - sent >= 2.0, "TERM came {:.3} s after it was sent", term - sent);
    assert_eq!(signals(&dir).iter().map(|s| s.0).collect::<Vec<_>>(), [libc::SIGUSR1, libc::SIGTERM]);
});

// The command exits during the delay: its status is reaper's, and the drain follows at once
// (the leftover gets the drain signal long before the delay would have ended).
both_modes!(the_command_exiting_during_the_delay_drains_at_once, |mode| {
    let dir = tempdir("exit-during");
    let cmd = probe(&dir, &[(libc::SIGTERM, 0)]);
    let main = format!("{} & while [ ! -e go ]; do sleep 0.02; done; exit 7", cmd.join(" "));
    let (mut r, _g) = start_in(mode, &dir, &["-v", "--stop-delay", "10s", "--", "sh", "-c", &main]);
    assert!(wait_for_file(&dir.join("ready"), LONG), "{}", stderr_of(&dir));
    term_held(&r, &dir, "10s");
    let go = mono();
    std::fs::write(dir.join("go"), "").unwrap();
    let t0 = Instant::now();
    assert_eq!(r.code(LONG), 7, "{}", stderr_of(&dir));
    assert!(t0.elapsed() < Duration::from_secs(5), "reaper took {:?}: it waited for the delay", t0.elapsed());
    // The leftover probe got exactly one TERM: the drain's, soon after the command exited.
    let drained = got(&dir, libc::SIGTERM) - go;
    assert!(
        drained < 1.0 + PROMPT,
        "the drain's TERM came {drained:.3} s after the command was told to exit"
    );
    assert_eq!(signals(&dir).len(), 1, "{:?}", signals(&dir));
});

// Issue 19: an --also command exits 3 during the delay. The TERM came first, so COMMAND's
// status is reaper's (0 here, its answer to the drain signal), not the --also command's; the
// drain starts at once, and the command gets one TERM, the drain's.
both_modes!(an_also_command_exiting_during_the_delay_leaves_the_status_to_the_command, |mode| {
    let dir = tempdir("also-during");
    let cmd = probe(&dir, &[(libc::SIGTERM, 0)]);
    let also = "sh -c 'while [ ! -e go ]; do sleep 0.02; done; exit 3'";
    let mut args = vec!["-v", "--stop-delay", "10s", "--also", also, "--"];
    args.extend(cmd.iter().map(String::as_str));
    let (mut r, _g) = start_in(mode, &dir, &args);
    assert!(wait_for_file(&dir.join("ready"), LONG), "{}", stderr_of(&dir));
    term_held(&r, &dir, "10s");
    std::fs::write(dir.join("go"), "").unwrap();
    let t0 = Instant::now();
    assert_eq!(r.code(LONG), 0, "{}", stderr_of(&dir));
    assert!(t0.elapsed() < Duration::from_secs(5), "reaper took {:?}: it waited for the delay", t0.elapsed());
    assert_eq!(signals(&dir).iter().map(|s| s.0).collect::<Vec<_>>(), [libc::SIGTERM]);
    assert!(stderr_of(&dir).contains("exited with status 3: stopping python3 (pid "), "{}", stderr_of(&dir));
});

// --kill-after counts from the moment the TERM is forwarded: with a 1 s delay and a 1 s
// kill-after, a TERM-ignoring command is SIGKILLed no earlier than 2 s after the TERM was sent.
both_modes!(kill_after_counts_from_the_forward, |mode| {
    let (mut r, _g, dir) =
        start_probe(mode, "kill-after", &["--stop-delay", "1s", "--kill-after", "1s"], &[]);
    let sent = term_held(&r, &dir, "1s");
    assert_eq!(r.code(LONG), 137, "{}", stderr_of(&dir));
    let gone = mono() - sent;
    let term = got(&dir, libc::SIGTERM) - sent;
    println!(
        "figure: {mode:?}: --stop-delay 1s --kill-after 1s: TERM at {term:.3} s, reaper gone at {gone:.3} s"
    );
    assert!(term >= 1.0, "TERM came {term:.3} s after it was sent");
    assert!(gone >= 2.0, "SIGKILL within {gone:.3} s of the TERM: kill-after counted from the receipt");
    assert!(gone < 2.0 + 2.0 * PROMPT, "reaper took {gone:.3} s to kill");
    let log = stderr_of(&dir);
    let (forwarded, armed) = (log.find("--stop-delay is over").unwrap(), log.find("SIGKILL in 1s").unwrap());
    assert!(forwarded < armed, "kill-after armed before the forward:\n{log}");
});

// With --stop-delay configured, an idle reaper still never wakes up: no timer before a stop.
both_modes!(idle_with_stop_delay_never_wakes_up, |mode| {
    let dir = tempdir("idle");
    let (r, _g) = start_in(mode, &dir, &["--stop-delay", "5s", "--", "sleep", "1000"]);
    let main = r.command_pid();
    assert!(wait_until(LONG, || settled(main) && state(r.pid) == Some('S')));
    let switches =
        || ["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"].map(|f| status_field(r.pid, f).unwrap());
    let before = switches();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(before, switches(), "reaper woke up while idle");
});

// Pause mode: the delay applies to the exit on TERM.
both_modes!(pause_exits_after_the_delay, |mode| {
    let dir = tempdir("pause");
    let (mut r, _g) = start_in(mode, &dir, &["-v", "--pause", "--stop-delay", "1s"]);
    assert!(wait_until(LONG, || state(r.pid) == Some('S')));
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(LONG), 0, "{}", stderr_of(&dir));
    let took = t0.elapsed();
    assert!(took >= Duration::from_secs(1), "pause mode exited {took:?} after TERM");
    assert!(took < Duration::from_secs_f64(1.0 + PROMPT), "pause mode took {took:?}");
    assert!(stderr_of(&dir).contains("TERM received: exiting in 1s (--stop-delay)"));
});

// --- reaper --sleep ---------------------------------------------------------------------------

// Sleeps the duration and exits 0, silently; signals other than TERM/INT/QUIT do not end it.
both_modes!(sleep_exits_0_after_the_duration, |mode| {
    let dir = tempdir("sleep");
    let t0 = Instant::now();
    let (r, _g) = start_in(mode, &dir, &["--sleep", "1"]);
    r.signal(libc::SIGUSR1);
    r.signal(libc::SIGHUP);
    let mut r = r;
    assert_eq!(r.code(LONG), 0);
    let took = t0.elapsed();
    assert!(took >= Duration::from_secs(1), "--sleep 1 took {took:?}");
    assert!(took < Duration::from_secs_f64(1.0 + PROMPT), "--sleep 1 took {took:?}");
    assert_eq!(stderr_of(&dir), "", "no output at default verbosity (no 'not PID 1' warning either)");
});

both_modes!(sleep_ends_at_once_with_0_on_term_int_or_quit, |mode| {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT] {
        let dir = tempdir("sleep-stop");
        let (mut r, _g) = start_in(mode, &dir, &["--sleep", "60s"]);
        assert!(wait_until(LONG, || state(r.pid) == Some('S')));
        let t0 = Instant::now();
        r.signal(sig);
        assert_eq!(r.code(LONG), 0, "signal {sig}: {}", stderr_of(&dir));
        assert!(t0.elapsed() < Duration::from_secs_f64(PROMPT), "signal {sig}: took {:?}", t0.elapsed());
        assert_eq!(stderr_of(&dir), "");
    }
});

#[test]
fn sleep_usage_errors_exit_2() {
    for args in
        [&["--sleep", "1", "true"][..], &["--sleep", "1", "--pause"], &["--sleep", "forever"], &["--sleep"]]
    {
        let (code, _out, err) = run_with_timeout(&mut reaper_cmd(Mode::Subreaper, args), LONG);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 2, "{args:?}: {err}");
        assert!(err.starts_with("reaper: ") && err.ends_with("Try 'reaper --help'.\n"), "{args:?}: {err}");
    }
}

// At the default level (no -v), the hold is one line when it begins: what is held, and for
// how long, so that a `docker stop` that takes the delay explains itself in the logs.
both_modes!(the_hold_is_logged_at_the_default_level, |mode| {
    let dir = tempdir("held-quiet");
    let cmd = probe(&dir, &[(libc::SIGTERM, 42)]);
    let mut args = vec!["--stop-delay", "1s", "--"];
    args.extend(cmd.iter().map(String::as_str));
    let (mut r, _g) = start_in(mode, &dir, &args);
    assert!(wait_for_file(&dir.join("ready"), LONG), "probe not ready: {}", stderr_of(&dir));
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(LONG), 42, "{}", stderr_of(&dir));
    assert_eq!(stderr_of(&dir), "reaper: WARN TERM received: forwarding in 1s (--stop-delay)\n");
});

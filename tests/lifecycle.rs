//! Issue 3: graceful drain of leftovers, kill-after escalation, signal rewriting, pause mode.
//! Every scenario runs real processes, as PID 1 of a fresh PID namespace and as a subreaper.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use common::*;

const LONG: Duration = Duration::from_secs(20);

/// The fork-heavy test runs alone: every test started with `start` holds this lock shared,
/// so the thousands of processes of that one test cannot skew the others' timing.
static HEAVY: RwLock<()> = RwLock::new(());

fn shared_load() -> RwLockReadGuard<'static, ()> {
    HEAVY.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive_load() -> RwLockWriteGuard<'static, ()> {
    HEAVY.write().unwrap_or_else(|e| e.into_inner())
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Asserts `lo < took < hi` (seconds) with a readable message.
fn assert_between(took: Duration, lo: f64, hi: f64, what: &str) {
    let t = secs(took);
    assert!(t > lo && t < hi, "{what}: took {t:.3}s, expected between {lo}s and {hi}s");
}

/// Starts reaper, waits for the scenario's `ready` files, records the processes for cleanup
/// and returns the command's pid.
fn start(mode: Mode, cmd: &mut Command, dir: &Path, ready: &[&str]) -> (Reaper, Guard, i32) {
    let load = shared_load();
    let (r, mut guard, main) = start_alone(mode, cmd, dir, ready);
    guard.load = Some(load);
    (r, guard, main)
}

/// `start` without taking the shared lock (the caller holds it exclusively).
fn start_alone(mode: Mode, cmd: &mut Command, dir: &Path, ready: &[&str]) -> (Reaper, Guard, i32) {
    let r = Reaper::start(mode, cmd);
    let mut guard = Guard::new(&r, dir);
    let main = r.command_pid();
    for f in ready {
        assert!(wait_for_file(&dir.join(f), LONG), "{mode:?}: {f} never appeared");
    }
    guard.record();
    (r, guard, main)
}

/// Lets the command (which waits for `go`) exit, and returns the moment its exit was seen.
fn release(dir: &Path, main: i32, mode: Mode) -> Instant {
    std::fs::write(dir.join("go"), "").unwrap();
    assert!(wait_gone(main, LONG), "{mode:?}: the command did not exit after go");
    Instant::now()
}

// ---------------------------------------------------------------------------------------------
// Drain: leftovers get TERM when the command exits; reaper leaves as soon as none is left.

/// The leftover needs ~1 s after TERM to finish its cleanup; reaper waits for exactly that,
/// not for the drain deadline (20 s here), and exits with the command's status.
fn slow_leftover_finishes(mode: Mode) {
    let dir = tempdir("slow-leftover");
    // The trap's own `sleep 1` starts after the drain signal, so it is not signalled.
    let script = r#"(trap 'sleep 1; touch finished; exit 0' TERM; touch ready; while :; do sleep 0.05; done) &
        while [ ! -e go ]; do sleep 0.01; done
        exit 5"#;
    let mut cmd = cmd_in(mode, &dir, ["--drain", "20s", "sh", "-c", script]);
    let (mut r, _g, main) = start(mode, &mut cmd, &dir, &["ready"]);
    let t0 = release(&dir, main, mode);
    let code = r.code(LONG);
    let took = t0.elapsed();
    assert!(
        dir.join("finished").exists(),
        "{mode:?}: the leftover did not finish its cleanup before reaper exited"
    );
    assert_eq!(code, 5, "{mode:?}: exit status must be the command's");
    assert_between(
        took,
        0.9,
        10.0,
        &format!("{mode:?}: exit after the leftover finished, long before the deadline"),
    );
}

both_modes!(slow_leftover_finishes);

/// A leftover that ignores TERM; the command exits 5 once `go` exists.
const STUBBORN: &str = r#"(trap '' TERM; touch ready; exec sleep 1000) &
    while [ ! -e go ]; do sleep 0.01; done
    exit 5"#;

/// Runs the stubborn leftover with `args`; returns (exit code, time from command exit to
/// reaper exit) and checks the leftover is gone.
fn stubborn_leftover(mode: Mode, args: &[&str]) -> (i32, Duration) {
    let dir = tempdir("stubborn");
    let mut all = args.to_vec();
    all.extend(["sh", "-c", STUBBORN]);
    let mut cmd = cmd_in(mode, &dir, &all);
    let (mut r, _g, main) = start(mode, &mut cmd, &dir, &["ready"]);
    let leftovers: Vec<i32> = descendants(r.pid).into_iter().filter(|&p| p != main).collect();
    assert!(!leftovers.is_empty(), "{mode:?}: no leftover found");
    let t0 = release(&dir, main, mode);
    let code = r.code(LONG);
    let took = t0.elapsed();
    for p in leftovers {
        assert!(
            wait_gone(p, Duration::from_secs(2)),
            "{mode:?} {args:?}: leftover {p} ({:?}) survived reaper",
            comm(p)
        );
    }
    (code, took)
}

/// `--drain 1s`: the leftover is SIGKILLed at the deadline, not before (it had the time) and not
/// at the 3 s default (the option counts). The lower bound allows for `release` seeing the
/// command's exit late on a busy machine.
fn stubborn_leftover_killed_at_deadline(mode: Mode) {
    let (code, took) = stubborn_leftover(mode, &["--drain", "1s"]);
    assert_eq!(code, 5, "{mode:?}: exit status must be the command's");
    assert_between(took, 0.5, 2.5, &format!("{mode:?} --drain 1s"));
}

both_modes!(stubborn_leftover_killed_at_deadline);

fn drain_zero_kills_at_once(mode: Mode) {
    let (code, took) = stubborn_leftover(mode, &["--drain", "0"]);
    assert_eq!(code, 5, "{mode:?}");
    assert!(
        took < Duration::from_millis(1500),
        "{mode:?} --drain 0: took {took:?}, expected an immediate SIGKILL, well before the 3 s default"
    );
}

both_modes!(drain_zero_kills_at_once);

/// `--drain-signal USR1`: leftovers get USR1, not TERM.
fn drain_signal(mode: Mode) {
    let dir = tempdir("drain-signal");
    let log = dir.join("probe.log");
    let probe = signal_probe(&log, Some(libc::SIGUSR1));
    std::fs::write(dir.join("probe.py"), &probe[2]).unwrap();
    let script = r#"python3 probe.py &
        while [ ! -e go ]; do sleep 0.01; done
        exit 4"#;
    let mut cmd = cmd_in(mode, &dir, ["--drain-signal", "USR1", "--drain", "20s", "sh", "-c", script]);
    let (mut r, _g, main) = start(mode, &mut cmd, &dir, &["probe.ready"]);
    let t0 = release(&dir, main, mode);
    assert_eq!(r.code(LONG), 4, "{mode:?}");
    assert_eq!(probe_log(&log), vec![libc::SIGUSR1], "{mode:?}: signals the leftover got");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "{mode:?}: reaper waited for the 20 s deadline although the leftover left at once"
    );
}

both_modes!(drain_signal);

/// A leftover that keeps forking (`while :; do sleep 5 & done`) when the drain starts: every
/// process must get the drain signal, including children forked while reaper walks /proc,
/// so reaper exits at once instead of waiting for escaped `sleep 5`s. As PID 1, kill(-1)
/// covers forks in flight; as a subreaper, a scan-then-signal walk lets them escape.
fn drain_reaches_processes_forked_during_the_scan(mode: Mode) {
    let dir = tempdir("forking-leftover");
    // Three forking loops, so that one of them is likely to fork during the walk even when
    // the machine is busy. Bounded, so a runaway loop cannot exhaust the pid space.
    let script = r#"for n in 1 2 3; do
            (i=0; touch ready.$n; while [ $i -lt 600 ]; do sleep 5 & i=$((i+1)); done; wait) &
        done
        while [ ! -e go ]; do sleep 0.01; done
        exit 6"#;
    let mut cmd = cmd_in(mode, &dir, ["--drain", "20s", "sh", "-c", script]);
    let _alone = exclusive_load();
    let (mut r, mut g, main) = start_alone(mode, &mut cmd, &dir, &["ready.1", "ready.2", "ready.3"]);
    // Let them build up some children, so the walk takes a while.
    assert!(wait_until(LONG, || descendants(r.pid).len() > 150), "{mode:?}: the loops did not fork");
    let t0 = release(&dir, main, mode);
    let code = r.code(LONG);
    let took = t0.elapsed();
    g.record();
    assert_eq!(code, 6, "{mode:?}");
    assert!(
        took < Duration::from_secs(10),
        "{mode:?}: reaper stayed {took:?} after the command exited (deadline 20 s): processes \
         forked during the drain's /proc walk never got SIGTERM and kept it waiting"
    );
}

both_modes!(drain_reaches_processes_forked_during_the_scan);

/// `sh -c 'worker & worker & wait'` under `-g`, TERM to reaper: the group gets TERM, the
/// shell dies at once, and reaper waits for both workers' cleanups before it exits.
fn shell_with_workers(mode: Mode) {
    let dir = tempdir("workers");
    // Cleanup takes 0.5 s and cannot be cut short: the trap ignores TERM first (and `sleep`
    // inherits that). (The drain leaves the group's members out: they had the TERM.)
    std::fs::write(
        dir.join("worker.sh"),
        r#"trap 'trap "" TERM; sleep 0.5; touch "cleaned.$1"; exit 0' TERM
touch "ready.$1"
while :; do sleep 0.05; done
"#,
    )
    .unwrap();
    let script = "sh ./worker.sh 1 & sh ./worker.sh 2 & wait";
    let mut cmd = cmd_in(mode, &dir, ["-g", "sh", "-c", script]);
    let (mut r, _g, _main) = start(mode, &mut cmd, &dir, &["ready.1", "ready.2"]);
    let before = descendants(r.pid);
    assert!(before.len() >= 3, "{mode:?}: expected the shell and two workers: {before:?}");
    r.signal(libc::SIGTERM);
    let code = r.code(LONG);
    for w in ["cleaned.1", "cleaned.2"] {
        assert!(
            dir.join(w).exists(),
            "{mode:?}: reaper exited before a worker finished its cleanup ({w} missing)"
        );
    }
    for p in before {
        assert!(!alive(p), "{mode:?}: process {p} ({:?}) outlived reaper", comm(p));
    }
    assert_eq!(code, 128 + libc::SIGTERM, "{mode:?}: the shell died of TERM");
}

both_modes!(shell_with_workers);

/// Issue 19: `-g`, TERM to reaper: the command's whole group gets it, and the drain after the
/// command's exit does not send it to the group's members a second time (the stop signal is
/// the drain signal). The member logs every signal and survives TERM: the drain's SIGKILL
/// ends it, 2 s after any second TERM would have come.
fn process_group_members_get_the_stop_signal_once(mode: Mode) {
    let dir = tempdir("group-once");
    let log = dir.join("probe.log");
    std::fs::write(dir.join("probe.py"), &signal_probe(&log, None)[2]).unwrap();
    let script = "python3 probe.py & trap 'exit 0' TERM; while :; do sleep 0.05; done";
    let mut cmd = cmd_in(mode, &dir, ["-g", "--drain", "2s", "sh", "-c", script]);
    let (mut r, _g, _main) = start(mode, &mut cmd, &dir, &["probe.ready"]);
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(LONG), 0, "{mode:?}: the command's status");
    assert_eq!(probe_log(&log), [libc::SIGTERM], "{mode:?}: the group member's signals");
}

both_modes!(process_group_members_get_the_stop_signal_once);

/// Not PID 1: processes outside reaper's tree are never signalled, whatever the shutdown path.
#[test]
fn subreaper_drain_spares_processes_outside_its_tree() {
    let dir = tempdir("outsiders");
    // The outsiders' files live elsewhere: the per-scenario cleanup kills whatever uses `dir`.
    let log = tempdir("outsider-probe").join("outsider.log");
    let probe = signal_probe(&log, None);
    let mut outsider = Command::new(&probe[0]);
    outsider.args(&probe[1..]).process_group(0).stdin(Stdio::null()).stdout(Stdio::null());
    let mut outsider = outsider.spawn().expect("spawn outsider probe");
    let mut sleeper = Command::new("sleep")
        .arg("1000")
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn outsider sleep");
    let mut outsiders = Guard::default();
    outsiders.record_pid(outsider.id() as i32);
    outsiders.record_pid(sleeper.id() as i32);
    assert!(wait_for_file(&log.with_extension("ready"), LONG), "probe never got ready");

    // (arguments, the exit status the README promises)
    let scenarios: [(&[&str], i32); 4] = [
        (&["--drain", "1s", "sh", "-c", "sleep 1000 & exit 0"], 0),
        (&["--drain", "0", "sh", "-c", "sleep 1000 & exit 0"], 0),
        (&["--drain", "1s", "sh", "-c", "(trap '' TERM; exec sleep 1000) & exit 0"], 0),
        // The kill-after deadline: SIGKILL, exit 137.
        (&["-t", "300ms", "sh", "-c", "trap '' TERM; sleep 1000 & touch ready; wait"], 137),
    ];
    for (args, want) in scenarios {
        let _ = std::fs::remove_file(dir.join("ready"));
        let mut cmd = cmd_in(Mode::Subreaper, &dir, args);
        let mut r = Reaper::start(Mode::Subreaper, &mut cmd);
        let mut g = Guard::new(&r, &dir);
        g.record();
        if args[0] == "-t" {
            assert!(wait_for_file(&dir.join("ready"), LONG));
            g.record();
            r.signal(libc::SIGTERM);
        }
        assert_eq!(r.code(LONG), want, "{args:?}: exit status");
        assert!(alive(outsider.id() as i32), "{args:?}: outsider probe died");
        assert!(alive(sleeper.id() as i32), "{args:?}: outsider sleep died");
    }
    assert_probe_got_nothing(outsider.id() as i32, &log, "the outsider");
    assert!(outsider.try_wait().unwrap().is_none());
    assert!(sleeper.try_wait().unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// Kill-after.

/// A command that ignores TERM is SIGKILLed `-t` after the TERM; reaper exits 137.
fn kill_after_ignored_term(mode: Mode) {
    let dir = tempdir("kill-after");
    let script = "trap '' TERM; touch ready; exec sleep 1000";
    let mut cmd = cmd_in(mode, &dir, ["-t", "1s", "sh", "-c", script]);
    let (mut r, _g, main) = start(mode, &mut cmd, &dir, &["ready"]);
    assert!(wait_until(LONG, || comm(main).as_deref() == Some("sleep")));
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    let code = r.code(LONG);
    assert_eq!(code, 137, "{mode:?}");
    // Not before the deadline (t0 precedes reaper reading the TERM); then promptly.
    assert_between(t0.elapsed(), 0.95, 4.0, &format!("{mode:?} -t 1s"));
}

both_modes!(kill_after_ignored_term);

/// A command that stops promptly on TERM is not killed: its own status comes through, before
/// the deadline would have fired.
fn kill_after_prompt_exit(mode: Mode) {
    for (script, want) in [
        ("touch ready; exec sleep 1000", 128 + libc::SIGTERM),
        ("trap 'exit 3' TERM; touch ready; while :; do sleep 0.05; done", 3),
    ] {
        let dir = tempdir("kill-after-prompt");
        let mut cmd = cmd_in(mode, &dir, ["-t", "5s", "sh", "-c", script]);
        let (mut r, _g, main) = start(mode, &mut cmd, &dir, &["ready"]);
        if want != 3 {
            assert!(wait_until(LONG, || comm(main).as_deref() == Some("sleep")));
        }
        let t0 = Instant::now();
        r.signal(libc::SIGTERM);
        let code = r.code(LONG);
        assert_eq!(code, want, "{mode:?} {script}");
        assert!(t0.elapsed() < Duration::from_secs(5), "{mode:?} {script}: took {:?}", t0.elapsed());
    }
}

both_modes!(kill_after_prompt_exit);

/// A second TERM is forwarded but does not move the deadline: `-t 2s`, TERMs at 0 and 1.5 s,
/// SIGKILL at 2 s (from the second it would be 3.5 s).
fn kill_after_not_reset(mode: Mode) {
    let dir = tempdir("kill-after-twice");
    let log = dir.join("probe.log");
    let mut args = vec!["-t".to_string(), "2s".to_string()];
    args.extend(signal_probe(&log, None));
    let mut cmd = cmd_in(mode, &dir, &args);
    let (mut r, _g, _main) = start(mode, &mut cmd, &dir, &["probe.ready"]);
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    assert!(wait_until(LONG, || probe_log(&log).len() == 1));
    // Spacing between the two TERMs, not an assertion.
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(t0.elapsed()));
    r.signal(libc::SIGTERM);
    let code = r.code(LONG);
    let took = t0.elapsed();
    assert_eq!(code, 137, "{mode:?}");
    assert_between(took, 1.95, 3.2, &format!("{mode:?}: deadline from the first TERM"));
    assert_eq!(probe_log(&log), vec![libc::SIGTERM, libc::SIGTERM], "{mode:?}: both TERMs are forwarded");
}

both_modes!(kill_after_not_reset);

/// A stop signal starts the deadline even when it is rewritten or dropped; REAPER_KILL_AFTER
/// sets it too.
fn kill_after_rewritten_stop(mode: Mode) {
    for (rewrite, want) in [("TERM:0", vec![]), ("TERM:USR1", vec![libc::SIGUSR1])] {
        let dir = tempdir("kill-after-rewrite");
        let log = dir.join("probe.log");
        let mut args = vec!["-r".to_string(), rewrite.to_string()];
        args.extend(signal_probe(&log, None));
        let mut cmd = cmd_in(mode, &dir, &args);
        cmd.env("REAPER_KILL_AFTER", "1s");
        let (mut r, _g, _main) = start(mode, &mut cmd, &dir, &["probe.ready"]);
        let t0 = Instant::now();
        r.signal(libc::SIGTERM);
        let code = r.code(LONG);
        assert_eq!(code, 137, "{mode:?} -r {rewrite}");
        assert_between(t0.elapsed(), 0.95, 4.0, &format!("{mode:?} -r {rewrite}"));
        assert_eq!(probe_log(&log), want, "{mode:?} -r {rewrite}");
    }
}

both_modes!(kill_after_rewritten_stop);

// ---------------------------------------------------------------------------------------------
// Signal rewriting.

/// Runs a probe under reaper with `args`/`env` and sends the `steps` one at a time: each
/// signal is sent, then the test waits until the probe logged the expected signal (`Some`), or
/// until reaper read it (`None`: dropped). The probe exits 0 on the last expected signal; at
/// the end its log must hold exactly the expected signals.
fn rewrite_case(mode: Mode, args: &[&str], env: &[(&str, &str)], steps: &[(i32, Option<i32>)]) {
    let rt = steps.iter().any(|&(_, want)| want.unwrap_or(0) > 31);
    if rt && skip_under_emulation("qemu-user renumbers real-time signals") {
        return;
    }
    let dir = tempdir("rewrite");
    let log = dir.join("probe.log");
    let want: Vec<i32> = steps.iter().filter_map(|s| s.1).collect();
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(signal_probe(&log, want.last().copied()));
    let mut cmd = cmd_in(mode, &dir, &all);
    cmd.envs(env.iter().copied());
    let (mut r, _g, main) = start(mode, &mut cmd, &dir, &["probe.ready"]);
    let mut logged = 0;
    for &(sig, expect) in steps {
        r.signal(sig);
        assert!(wait_no_pending_signals(r.pid, LONG), "{mode:?}: reaper never read signal {sig}");
        if expect.is_some() {
            // One at a time: the probe handles pending signals in numeric order, not in the
            // order they were sent.
            logged += 1;
            assert!(
                wait_until(LONG, || probe_log(&log).len() >= logged),
                "{mode:?} {args:?} {env:?}: signal {sig} delivered nothing; log {:?}; probe: {}",
                probe_log(&log),
                std::fs::read_to_string(format!("/proc/{main}/status")).unwrap_or_default()
            );
        }
    }
    let code = r.code(LONG);
    assert_eq!(probe_log(&log), want, "{mode:?} {args:?} {env:?}: delivered signals");
    assert_eq!(code, 0, "{mode:?} {args:?}: the probe exits 0");
}

fn rewrite(mode: Mode) {
    let (term, int, quit, usr1, usr2, hup) =
        (libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGHUP);
    rewrite_case(mode, &["-r", "TERM:QUIT"], &[], &[(term, Some(quit))]);
    // Dropped: INT never arrives (it would be logged before USR1, which ends the probe).
    rewrite_case(mode, &["-r", "INT:0"], &[], &[(int, None), (usr1, Some(usr1))]);
    rewrite_case(mode, &["--rewrite", "SIGINT:-"], &[], &[(int, None), (usr1, Some(usr1))]);
    rewrite_case(mode, &["-r", "15:3"], &[], &[(term, Some(quit))]);
    rewrite_case(mode, &["-r", "RTMIN+3:TERM"], &[], &[(34 + 3, Some(term))]);
    rewrite_case(mode, &["-r", "USR1:RTMAX"], &[], &[(usr1, Some(64)), (term, Some(term))]);
    // Repeatable; signals without a rule pass through unchanged.
    rewrite_case(
        mode,
        &["-r", "USR1:USR2", "-r", "TERM:QUIT"],
        &[],
        &[(hup, Some(hup)), (usr1, Some(usr2)), (term, Some(quit))],
    );
    rewrite_case(
        mode,
        &[],
        &[("REAPER_REWRITE", "TERM:QUIT,USR1:USR2")],
        &[(usr1, Some(usr2)), (term, Some(quit))],
    );
    // Flags replace the environment's list.
    rewrite_case(mode, &["-r", "TERM:QUIT"], &[("REAPER_REWRITE", "TERM:INT")], &[(term, Some(quit))]);
}

both_modes!(rewrite);

// ---------------------------------------------------------------------------------------------
// Pause mode.

/// As PID 1 of a namespace: orphans of processes started inside it with nsenter become
/// reaper's children and are reaped; TERM ends it with 0.
#[test]
fn pause_reaps_orphans_in_its_namespace() {
    let dir = tempdir("pause-nsenter");
    let mut r = Reaper::start(Mode::Pid1, &mut cmd_in(Mode::Pid1, &dir, ["--pause"]));
    let _g = Guard::new(&r, &dir);
    let target = r.pid.to_string();
    let script = "(sleep 1 >/dev/null 2>&1 &); (sleep 1 >/dev/null 2>&1 &); \
                  (sh -c 'sleep 1; exit 3' >/dev/null 2>&1 &); exit 0";
    let mut nsenter = Command::new("nsenter");
    nsenter.args(["--target", &target, "--pid", "--mount", "--", "sh", "-c", script]).stdin(Stdio::null());
    let (code, _out, err) = run_with_timeout(&mut nsenter, LONG);
    assert_eq!(code, 0, "nsenter failed: {err}");
    // The orphans were re-parented to reaper (they sleep 1 s, so they are still there) …
    assert!(
        wait_until(LONG, || children(r.pid).len() >= 3),
        "the orphans never became reaper's children: {:?}",
        children(r.pid)
    );
    // … and once they exit, reaper reaps them: no zombie stays behind.
    assert!(
        wait_until(LONG, || children(r.pid).is_empty()),
        "reaper left children behind: {:?} (zombies {:?})",
        children(r.pid),
        zombies_under(r.pid)
    );
    assert!(zombies_under(r.pid).is_empty());
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(LONG), 0);
    assert!(t0.elapsed() < Duration::from_secs(3), "TERM: exit took {:?}", t0.elapsed());
}

/// Idle pause mode never wakes up; non-stop signals are ignored (it is still there a second
/// later, or after the 2 s idle window); TERM, INT, QUIT exit 0, promptly.
fn pause_idle(mode: Mode, stop: i32, idle_check: bool) {
    let dir = tempdir("pause");
    let mut r = Reaper::start(mode, &mut cmd_in(mode, &dir, ["--pause"]));
    let _g = Guard::new(&r, &dir);
    assert!(wait_until(LONG, || state(r.pid) == Some('S')));
    for sig in [libc::SIGUSR1, libc::SIGHUP, libc::SIGWINCH, 34 + 3] {
        r.signal(sig);
        assert!(wait_no_pending_signals(r.pid, LONG), "{mode:?}: signal {sig} never read");
    }
    if !idle_check {
        assert!(
            r.wait_timeout(Duration::from_secs(1)).is_none(),
            "{mode:?}: pause mode exited on a non-stop signal"
        );
    } else {
        let switches = || {
            let v = status_field(r.pid, "voluntary_ctxt_switches").unwrap();
            let n = status_field(r.pid, "nonvoluntary_ctxt_switches").unwrap();
            (v, n)
        };
        // The last signal read is not the end of its handling (slow under load or qemu):
        // reaper is asleep once two reads 100 ms apart agree.
        let settled = wait_until(LONG, || {
            let a = switches();
            std::thread::sleep(Duration::from_millis(100));
            a == switches()
        });
        assert!(settled, "{mode:?}: reaper never went idle");
        let before = switches();
        std::thread::sleep(Duration::from_secs(2));
        let after = switches();
        assert_eq!(before, after, "{mode:?}: reaper woke up while idle");
        assert!(r.wait_timeout(Duration::ZERO).is_none(), "{mode:?}: pause mode exited on a non-stop signal");
    }
    let t0 = Instant::now();
    r.signal(stop);
    assert_eq!(r.code(LONG), 0, "{mode:?} signal {stop}");
    assert!(t0.elapsed() < Duration::from_secs(3), "{mode:?}: exit took {:?}", t0.elapsed());
}

fn pause_idle_term(mode: Mode) {
    pause_idle(mode, libc::SIGTERM, true);
}
both_modes!(pause_idle_term);

fn pause_int_and_quit_exit_zero(mode: Mode) {
    pause_idle(mode, libc::SIGINT, false);
    pause_idle(mode, libc::SIGQUIT, false);
}
both_modes!(pause_int_and_quit_exit_zero);

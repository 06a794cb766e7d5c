//! Issue 20: what a command's own settings change, through the real binary, in both modes:
//! restart budgets, `--done` statuses, `--optional` commands, start order after readiness, the
//! readiness timeout, and the stop order.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

const LONG: Duration = Duration::from_secs(30);

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(String::from).collect()
}

/// The timestamp (`date +%s.%N`) a command wrote to `dir/name`, once it is there.
fn stamp(dir: &Path, name: &str) -> f64 {
    let path = dir.join(name);
    assert!(wait_until(LONG, || lines(&path).len() == 1), "{name} never written; {}", stderr_of(dir));
    lines(&path)[0].parse().unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn nothing_left(dir: &Path) {
    assert!(
        wait_until(Duration::from_secs(10), || processes_using(dir).is_empty()),
        "{:?}",
        processes_using(dir)
    );
}

/// The main command, waiting until the test creates `go`, then exiting with `code`.
fn main_until_go(code: i32) -> String {
    format!("trap 'exit 0' TERM; : > main.ready; while [ ! -e go ]; do sleep 0.02; done; exit {code}")
}

// A helper that keeps failing spends its budget (more than 2 exits within 10s): one line says
// so, the main command is stopped, reaper's status is the helper's, or 1 if it exited 0.
both_modes!(a_spent_restart_budget_stops_the_workload, |mode| {
    for (code, status) in [(3, 3), (0, 1)] {
        let dir = tempdir("budget");
        let helper = format!("--restarts=2/10s sh -c 'echo run >> runs; exit {code}'");
        let main = "trap 'echo TERM >> main.log; exit 0' TERM; sleep 60 & wait";
        let (mut r, _g) = start_in(mode, &dir, &["--respawn", &helper, "--", "sh", "-c", main]);
        assert_eq!(r.code(LONG), status, "{}", stderr_of(&dir));
        assert_eq!(lines(&dir.join("runs")).len(), 3, "started three times");
        assert_eq!(lines(&dir.join("main.log")), ["TERM"]);
        let log = stderr_of(&dir);
        let line =
            format!("exited with status {code}: 3 exits within 10s (--restarts 2/10s): stopping sh (pid ");
        assert!(log.contains(&line), "{log}");
        nothing_left(&dir);
    }
});

// Without --restarts, the default budget (5 exits within 10s, as systemd's start limit): a
// helper that crashes at once is started 6 times in about 3 s (back-off 0.1, 0.2, 0.4, 0.8,
// 1.6 s), then the workload stops with its status.
both_modes!(the_default_budget_stops_a_crash_looping_helper, |mode| {
    let dir = tempdir("budget-default");
    let helper = "sh -c 'echo run >> runs; exit 3'";
    let main = "trap 'exit 0' TERM; sleep 60 & wait";
    let (mut r, _g) = start_in(mode, &dir, &["--respawn", helper, "--", "sh", "-c", main]);
    assert_eq!(r.code(LONG), 3, "{}", stderr_of(&dir));
    assert_eq!(lines(&dir.join("runs")).len(), 6);
    let log = stderr_of(&dir);
    assert!(
        log.contains("exited with status 3: 6 exits within 10s (--restarts 5/10s): stopping sh (pid "),
        "{log}"
    );
    nothing_left(&dir);
});

// `--done 0`: the helper's exit 0 ends it for good; the workload goes on.
both_modes!(a_done_status_is_not_restarted_and_stops_nothing, |mode| {
    let dir = tempdir("done");
    let helper = "--done=0 sh -c 'echo run >> runs; exit 0'";
    let (mut r, _g) = start_in(mode, &dir, &["-v", "--respawn", helper, "--", "sh", "-c", &main_until_go(7)]);
    wait_for_log(&dir, "exited with status 0: done");
    // A restart would come after 100 ms.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lines(&dir.join("runs")), ["run"]);
    assert!(r.wait_timeout(Duration::from_millis(10)).is_none(), "reaper exited: {}", stderr_of(&dir));
    std::fs::write(dir.join("go"), "").unwrap();
    assert_eq!(r.code(LONG), 7, "the main command's status: {}", stderr_of(&dir));
});

// `--optional`: the --also command's exit is logged, nothing stops.
both_modes!(an_optional_also_command_exits_alone, |mode| {
    let dir = tempdir("optional");
    let (mut r, _g) = start_in(
        mode,
        &dir,
        &["-v", "--also", "--optional sh -c 'exit 5'", "--", "sh", "-c", &main_until_go(0)],
    );
    wait_for_log(&dir, "exited with status 5");
    assert!(r.wait_timeout(Duration::from_millis(10)).is_none(), "reaper exited: {}", stderr_of(&dir));
    std::fs::write(dir.join("go"), "").unwrap();
    assert_eq!(r.code(LONG), 0, "{}", stderr_of(&dir));
});

// The main command starts after its prerequisite said it is ready (a newline on fd 3, a second
// after it started), not when it started.
both_modes!(the_main_command_starts_after_its_prerequisite_is_ready, |mode| {
    let dir = tempdir("after");
    let db = "--name=db --ready=fd:3 sh -c 'sleep 1; date +%s.%N > db.ready; echo >&3; exec sleep 60'";
    // The trap is set and the sleep runs before the test can see main.start and send TERM.
    let main = "trap 'exit 0' TERM; sleep 60 & date +%s.%N > main.start; wait";
    let (mut r, _g) = start_in(mode, &dir, &["--also", db, "--after", "db", "--", "sh", "-c", main]);
    let (ready, started) = (stamp(&dir, "db.ready"), stamp(&dir, "main.start"));
    assert!(started > ready, "main started at {started}, db ready at {ready}");
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(LONG), 0, "{}", stderr_of(&dir));
    nothing_left(&dir);
});

// A prerequisite that never says it is ready: exit 1 at its timeout, one line naming it, the
// main command never started, nothing left.
both_modes!(a_readiness_timeout_ends_the_start_with_1, |mode| {
    let dir = tempdir("ready-timeout");
    let db = "--name=db --ready=fd:3 --ready-timeout=1s sh -c 'sleep 60 & wait'";
    let (mut r, _g) =
        start_in(mode, &dir, &["--also", db, "--after=db", "--", "sh", "-c", ": > main.started"]);
    assert_eq!(r.code(LONG), 1, "{}", stderr_of(&dir));
    assert!(stderr_of(&dir).contains("db never became ready within 1s"), "{}", stderr_of(&dir));
    assert!(!dir.join("main.started").exists(), "the main command started");
    nothing_left(&dir);
});

// Stop order: the main command (after db) gets the TERM first and takes half a second to go;
// db gets its TERM only once the main command is reaped.
both_modes!(a_prerequisite_stops_after_its_dependents, |mode| {
    let dir = tempdir("stop-order");
    // Each .up file once its sleep runs: a TERM while sh forks it would wait for the sleep.
    // db's trap forks nothing: the drain that follows the main command's exit reaches db's
    // children (as any command's), and would kill a `date` there.
    let db = "--name=db sh -c \"trap '[ -e main.gone ] && echo after > db.term; exit 0' TERM; sleep 60 & : > db.up; wait\"";
    let main = "trap 'sleep 0.5; : > main.gone; exit 0' TERM; sleep 60 & : > main.up; wait";
    let (mut r, _g) = start_in(mode, &dir, &["--also", db, "--after", "db", "--", "sh", "-c", main]);
    for f in ["db.up", "main.up"] {
        assert!(wait_for_file(&dir.join(f), LONG), "{f}");
    }
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(LONG), 0, "{}", stderr_of(&dir));
    assert_eq!(lines(&dir.join("db.term")), ["after"], "db's TERM came first: {}", stderr_of(&dir));
    nothing_left(&dir);
});

// PID 1 of a new PID namespace whose /proc is still the host's (`unshare --pid --fork`
// without `--mount-proc`): when db is held back (its dependent still runs), the drain leaves
// db's group out and so cannot use kill(-1); /proc cannot list reaper's descendants, as its
// numbers are another namespace's. The drain signal still reaches the main command (through
// its group) at once, not only SIGKILL at the drain deadline.
#[test]
fn the_drain_reaches_the_commands_when_proc_is_another_namespaces() {
    let dir = tempdir("foreign-proc");
    let mut cmd = std::process::Command::new("unshare");
    if !is_root() {
        cmd.args(["--user", "--map-root-user"]);
    }
    cmd.args(["--pid", "--fork", "--kill-child", REAPER]);
    // Each one's sleep runs before x can end the workload: without /proc, reaper cannot see
    // a process forked after the group's TERM.
    let db = "--name=db sh -c \"trap 'echo TERM > db.log; exit 0' TERM; sleep 60 & : > db.up; wait\"";
    let main = "trap 'echo TERM > main.log; exit 0' TERM; sleep 60 & : > main.up; wait";
    let x = "--name=x --after=db sh -c 'until [ -e main.up ] && [ -e db.up ]; do sleep 0.02; done; exit 3'";
    cmd.args(["--drain=30s", "--also", db, "--also", x, "--after=db", "--", "sh", "-c", main]);
    let log = std::fs::File::create(dir.join("reaper.stderr")).unwrap();
    cmd.current_dir(&dir).stdin(std::process::Stdio::null()).stderr(log);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut r = Reaper::start(Mode::Pid1, &mut cmd);
    let _g = Guard::new(&r, &dir);
    assert!(wait_for_file(&dir.join("main.log"), Duration::from_secs(10)), "{}", stderr_of(&dir));
    assert_eq!(r.code(LONG), 3, "{}", stderr_of(&dir));
    assert_eq!(lines(&dir.join("db.log")), ["TERM"], "{}", stderr_of(&dir));
    nothing_left(&dir);
}

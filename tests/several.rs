//! Several processes in one container: `--also` commands beside the main one and
//! `--respawn` helpers, supervised by the one state machine, in both modes.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(String::from).collect()
}

// The --also command exits 5 first: the main command gets the drain signal, reaper exits 5,
// and the log names both by argv[0] and pid.
both_modes!(also_exiting_first_stops_the_main_command_with_its_status, |mode| {
    let dir = tempdir("also-exits");
    let main = "trap 'echo TERM >> main.log; exit 0' TERM; : > main.ready; sleep 60 & wait";
    let (mut r, _g) = start_in(
        mode,
        &dir,
        &[
            "-v",
            "--also",
            "sh -c 'while [ ! -e main.ready ]; do sleep 0.02; done; exit 5'",
            "--",
            "sh",
            "-c",
            main,
        ],
    );
    assert_eq!(r.code(Duration::from_secs(30)), 5, "{}", stderr_of(&dir));
    assert_eq!(lines(&dir.join("main.log")), ["TERM"]);
    let log = stderr_of(&dir);
    assert!(log.contains(") exited with status 5: stopping sh (pid "), "{log}");
});

// A TERM from outside reaches every command once; the main command's status is reaper's,
// even though the --also command exits first (with 9).
both_modes!(term_reaches_every_command_and_the_main_status_wins, |mode| {
    let dir = tempdir("also-term");
    let cmd = |name: &str, code: i32| {
        format!("trap 'echo TERM >> {name}.log; exit {code}' TERM; : > {name}.ready; sleep 60 & wait")
    };
    let also = format!("sh -c \"{}\"", cmd("also", 9));
    let helper = format!("sh -c \"{}\"", cmd("helper", 4));
    let (mut r, _g) =
        start_in(mode, &dir, &["--also", &also, "--respawn", &helper, "--", "sh", "-c", &cmd("main", 3)]);
    for name in ["main", "also", "helper"] {
        assert!(wait_for_file(&dir.join(format!("{name}.ready")), Duration::from_secs(20)), "{name}");
    }
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(Duration::from_secs(30)), 3, "{}", stderr_of(&dir));
    for name in ["main", "also", "helper"] {
        assert_eq!(lines(&dir.join(format!("{name}.log"))), ["TERM"], "{name}");
    }
});

// -g: a signal reaches every command's process group (here each command's `sleep`), and the
// orphans every command leaves are reaped.
both_modes!(process_group_signals_reach_every_group_and_orphans_are_reaped, |mode| {
    let dir = tempdir("also-groups");
    // Each command's `sleep 60` is in the command's group: only a signal to the group can
    // reach it (a trap, unlike an ignored disposition, is not inherited).
    let cmd = |name: &str| {
        format!(
            "trap 'echo HUP >> {name}.log' HUP; (sleep 0.2 &); sleep 60 & echo $! > {name}.pid; wait; sleep 60"
        )
    };
    let also = format!("sh -c \"{}\"", cmd("also"));
    let (mut r, _g) = start_in(mode, &dir, &["-g", "--also", &also, "--", "sh", "-c", &cmd("main")]);
    let mut sleeps = Vec::new();
    for name in ["main", "also"] {
        let pidfile = dir.join(format!("{name}.pid"));
        assert!(wait_until(Duration::from_secs(20), || lines(&pidfile).len() == 1), "{name}");
        let inner: i32 = lines(&pidfile)[0].parse().unwrap();
        sleeps.push(outer_pid(r.pid, inner).unwrap_or_else(|| panic!("no pid {inner} under reaper")));
    }
    // The double-forked `sleep 0.2`s are orphaned to reaper and must not stay zombies: in the
    // end only the two `sleep 60`s are left.
    let count = |pid| descendants(pid).into_iter().filter(|&p| comm(p).as_deref() == Some("sleep")).count();
    assert!(
        wait_until(Duration::from_secs(20), || zombies_under(r.pid).is_empty() && count(r.pid) == 2),
        "orphans left: {:?}",
        descendants(r.pid)
    );
    r.signal(libc::SIGHUP);
    for (name, pid) in ["main", "also"].into_iter().zip(sleeps) {
        assert!(wait_gone(pid, Duration::from_secs(20)), "{name}'s group did not get HUP");
        assert!(
            wait_until(Duration::from_secs(20), || lines(&dir.join(format!("{name}.log"))) == ["HUP"]),
            "{name}"
        );
    }
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(Duration::from_secs(30)), 143, "{}", stderr_of(&dir));
});

/// The pid, as the test sees it, of reaper's descendant whose pid in reaper's namespace is
/// `inner` (the last NSpid entry; the same number when reaper is not PID 1).
fn outer_pid(reaper: i32, inner: i32) -> Option<i32> {
    let ns_pid =
        |p: i32| status_field(p, "NSpid").and_then(|v| v.split_whitespace().last()?.parse::<i32>().ok());
    descendants(reaper).into_iter().find(|&p| ns_pid(p) == Some(inner))
}

// Log lines name each command by its settings: `--name` (the main command's as a flag, the
// others' in their CMDLINE), else argv[0]'s basename, a second `sh` as `sh-2`.
both_modes!(log_lines_name_commands_by_their_settings, |mode| {
    let dir = tempdir("names");
    let main = "trap 'exit 0' TERM; : > main.ready; sleep 60 & wait";
    let also = "--name=db sh -c 'until [ -e helper.twice ]; do sleep 0.02; done; exit 5'";
    let helper = "sh -c 'if [ -e helper.once ]; then : > helper.twice; fi; : > helper.once; exit 1'";
    let (mut r, _g) =
        start_in(mode, &dir, &["-v", "--also", also, "--respawn", helper, "--", "sh", "-c", main]);
    assert_eq!(r.code(Duration::from_secs(30)), 5, "{}", stderr_of(&dir));
    let log = stderr_of(&dir);
    assert!(log.contains(") exited with status 1: restarting it in 100ms"), "{log}");
    assert!(log.contains("sh-2 (pid "), "the helper is the second sh: {log}");
    assert!(log.contains("db (pid "), "{log}");
    assert!(log.contains(") exited with status 5: stopping sh (pid "), "{log}");
    let line = log.lines().find(|l| l.contains("exited with status 1: restarting")).unwrap_or_default();
    assert!(line.contains("sh-2 (pid "), "{line}");
    let line = log.lines().find(|l| l.contains("exited with status 5")).unwrap_or_default();
    assert!(line.contains("db (pid "), "{line}");

    let dir = tempdir("names-flag");
    let also = "sh -c 'until [ -e main.ready ]; do sleep 0.02; done; exit 4'";
    let (mut r, _g) = start_in(mode, &dir, &["-v", "--name=web", "--also", also, "--", "sh", "-c", main]);
    assert_eq!(r.code(Duration::from_secs(30)), 4, "{}", stderr_of(&dir));
    let log = stderr_of(&dir);
    assert!(log.contains(") exited with status 4: stopping web (pid "), "{log}");
});

// A failing --respawn helper is restarted with growing gaps (100 ms, 200 ms, 400 ms, ...), at
// most 5 starts in 2.5 s; never after the stop signal; its exits never change the status.
both_modes!(respawn_backs_off_and_stops_with_the_shutdown, |mode| {
    let dir = tempdir("respawn");
    let helper = "sh -c 'date +%s.%N >> starts; exit 1'";
    let main = "trap 'sleep 1; exit 0' TERM; sleep 60 & wait";
    let (mut r, _g) = start_in(mode, &dir, &["-v", "--respawn", helper, "--", "sh", "-c", main]);
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(2500).saturating_sub(started.elapsed()));
    let starts: Vec<f64> = lines(&dir.join("starts")).iter().map(|l| l.parse().unwrap()).collect();
    assert!((3..=5).contains(&starts.len()), "{} starts in 2.5 s: {starts:?}", starts.len());
    for (i, gap) in starts.windows(2).map(|w| w[1] - w[0]).enumerate() {
        let want = 0.1 * f64::from(1u32 << i);
        assert!(gap >= want - 0.005, "gap {i}: {gap:.3} s, back-off {want} s; starts {starts:?}");
    }
    r.signal(libc::SIGTERM);
    // The main command takes a second to stop: wait until then, so that a start already under
    // way at the TERM has written its line, then no further start may come.
    std::thread::sleep(Duration::from_millis(500));
    let at_stop = lines(&dir.join("starts")).len();
    assert_eq!(r.code(Duration::from_secs(30)), 0, "{}", stderr_of(&dir));
    assert_eq!(lines(&dir.join("starts")).len(), at_stop, "restarted after the stop signal");
    assert!(stderr_of(&dir).contains("exited with status 1: restarting it in 100ms"), "{}", stderr_of(&dir));
});

// Issue 19: after `-r TERM:0` a forwarded INT begins the shutdown: the helper it kills is not
// restarted (before, only a stop signal that went out first counted, and a dropped TERM came
// first). The main command takes a second to stop: a restart would have come after 100 ms.
both_modes!(a_forwarded_int_after_a_dropped_term_stops_the_restarts, |mode| {
    let dir = tempdir("respawn-int");
    let helper = "sh -c 'echo started >> starts; exec sleep 60'";
    let main = "trap 'sleep 1; exit 0' INT; : > main.ready; while :; do sleep 0.05; done";
    let (mut r, _g) =
        start_in(mode, &dir, &["-v", "-r", "TERM:0", "--respawn", helper, "--", "sh", "-c", main]);
    assert!(wait_for_file(&dir.join("main.ready"), Duration::from_secs(20)));
    assert!(wait_until(Duration::from_secs(20), || lines(&dir.join("starts")).len() == 1));
    r.signal(libc::SIGTERM);
    assert!(wait_no_pending_signals(r.pid, Duration::from_secs(20)), "reaper never read the TERM");
    r.signal(libc::SIGINT);
    assert_eq!(r.code(Duration::from_secs(30)), 0, "{}", stderr_of(&dir));
    assert_eq!(lines(&dir.join("starts")), ["started"], "restarted after the INT: {}", stderr_of(&dir));
    assert!(stderr_of(&dir).contains("killed by SIGINT"), "{}", stderr_of(&dir));
});

// An --also command that cannot be executed: 127, the main command (already running) is
// stopped, nothing is left.
both_modes!(exec_failure_of_an_also_command_stops_everything, |mode| {
    let dir = tempdir("also-enoent");
    // The main command and the first --also one have children of their own by then.
    let (mut r, _g) = start_in(
        mode,
        &dir,
        &[
            "--also",
            "sh -c 'sleep 61 & wait'",
            "--also",
            "/nonexistent/helper -x",
            "--",
            "sh",
            "-c",
            "sleep 60 & wait",
        ],
    );
    assert_eq!(r.code(Duration::from_secs(30)), 127);
    assert_eq!(stderr_of(&dir), "reaper: cannot run '/nonexistent/helper': No such file or directory\n");
    assert!(
        wait_until(Duration::from_secs(10), || processes_using(&dir).is_empty()),
        "{:?}",
        processes_using(&dir)
    );
});

// Three commands running: reaper sleeps with no timer at all.
both_modes!(idle_with_three_commands_never_wakes, |mode| {
    let dir = tempdir("also-idle");
    let (mut r, _g) =
        start_in(mode, &dir, &["--also", "sleep 60", "--respawn", "sleep 60", "--", "sleep", "60"]);
    assert!(wait_until(Duration::from_secs(20), || children(r.pid).len() == 3), "{:?}", children(r.pid));
    assert!(wait_until(Duration::from_secs(20), || state(r.pid) == Some('S')
        && children(r.pid).into_iter().all(settled)));
    assert!(wait_quiet(r.pid, Duration::from_secs(20)), "reaper never went idle");
    let before = context_switches(r.pid);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(context_switches(r.pid), before, "reaper woke up while idle");
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(Duration::from_secs(30)), 143);
});

// Issue 19: systemd socket activation addressed to reaper (LISTEN_PID is reaper's pid) is the
// main command's: it gets LISTEN_PID set to its own pid, while --also and --respawn commands
// (a restarted helper too) get no LISTEN_* variable, so none takes the sockets for its own.
both_modes!(socket_activation_goes_to_the_main_command_only, |mode| {
    let dir = tempdir("listen-also");
    let main = r#"echo "$LISTEN_PID $$ $LISTEN_FDS $LISTEN_FDNAMES" > main.out
        until [ -e also.out ] && [ "$(cat helper.starts 2>/dev/null | wc -l)" -ge 2 ]; do sleep 0.02; done"#;
    let also = "sh -c 'env | grep ^LISTEN_ > also.env; : > also.out; exec sleep 60'";
    // Exits at once: restarted by the supervisor, and the restart is checked too.
    let helper = "sh -c 'env | grep ^LISTEN_ >> helper.env; echo started >> helper.starts'";
    let args = ["--also", also, "--respawn", helper, "--", "sh", "-c", main];
    let mut cmd = match mode {
        Mode::Pid1 => {
            let mut c = reaper_cmd(mode, args);
            c.env("LISTEN_PID", "1");
            c
        }
        // A wrapper puts its own pid in LISTEN_PID and execs reaper (same pid), as systemd does.
        Mode::Subreaper => {
            let mut c = Command::new("sh");
            c.args(["-c", "export LISTEN_PID=$$; exec \"$@\"", "sh", REAPER]).args(args);
            c.stdin(Stdio::null()).process_group(0);
            c
        }
    };
    let log = std::fs::File::create(dir.join(STDERR)).unwrap();
    cmd.env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "web")
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(log);
    let mut r = Reaper::start(mode, &mut cmd);
    let _g = Guard::new(&r, &dir);
    assert_eq!(r.code(Duration::from_secs(30)), 0, "{}", stderr_of(&dir));
    let main: Vec<String> = lines(&dir.join("main.out"))[0].split(' ').map(String::from).collect();
    assert_eq!(main.len(), 4, "{main:?}");
    assert_eq!(main[0], main[1], "LISTEN_PID must be the main command's own pid: {main:?}");
    assert_eq!(main[2..], ["1", "web"], "the main command gets the rest unchanged");
    assert!(dir.join("also.env").exists() && dir.join("helper.env").exists());
    assert_eq!(lines(&dir.join("also.env")), Vec::<String>::new(), "the --also command");
    assert!(lines(&dir.join("helper.starts")).len() >= 2);
    assert_eq!(lines(&dir.join("helper.env")), Vec::<String>::new(), "the --respawn helper");
});

#[test]
fn bad_command_lines_are_usage_errors() {
    for (args, want) in [
        (vec!["--also", "sh -c 'echo", "true"], "reaper: --also: 'sh -c 'echo': unterminated single quote"),
        (vec!["--respawn", "   ", "true"], "reaper: --respawn: empty command line"),
        (
            vec!["--also", "x", "--pause"],
            "reaper: --also and --respawn need a COMMAND: they cannot be used with --pause",
        ),
        (
            vec!["--respawn", "x", "--wait-all", "true"],
            "reaper: --also and --respawn cannot be combined with --wait-all",
        ),
    ] {
        let (code, _, err) =
            run_with_timeout(&mut reaper_cmd(Mode::Subreaper, &args), Duration::from_secs(20));
        assert_eq!(code, 2, "{args:?}");
        assert_eq!(err, format!("{want}\nTry 'reaper --help'.\n"), "{args:?}");
    }
}

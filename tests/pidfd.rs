//! Signals reach only the processes they are meant for: leftovers and the followed daemon go
//! through pidfds, so a pid reused between reaper's /proc walk and its signal is never hit;
//! the fallback without pidfds (ENOSYS, injected with strace); and the pidfile's inode check
//! under a three-starter race.
//!
//! The pid-reuse reproduction needs root (a private PID namespace whose ns_last_pid we set),
//! strace and python3; each test says "skipped: …" on stderr where one is missing.

mod common;

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// The reproduction script: see its header.
const REUSE_PY: &str = include_str!("pidfd/reuse.py");

/// How long strace holds reaper in each signal syscall: the window in which the script ends
/// G and gives its pid away. Generous, for a loaded machine.
const DELAY_US: &str = "1000000";

const LONG: Duration = Duration::from_secs(20);

const NOSYS: &str = "not supported by this kernel (ENOSYS)";

fn need(test: &str, root: bool) -> bool {
    let missing: Vec<&str> = ["strace", "python3"].into_iter().filter(|t| which(t).is_none()).collect();
    if root && !is_root() {
        eprintln!("{test}: skipped: needs root (ns_last_pid of a private PID namespace)");
        return false;
    }
    if !missing.is_empty() {
        eprintln!("{test}: skipped: {} not installed (scripts/install-deps)", missing.join(", "));
        return false;
    }
    true
}

/// Runs the reproduction (`path`: "drain" or "kill-after") and returns its report, the strace
/// log and reaper's stderr.
fn reproduce(path: &str, strace_extra: &[&str]) -> (HashMap<String, String>, String, String) {
    let dir = tempdir(&format!("reuse-{path}"));
    std::fs::write(dir.join("reuse.py"), REUSE_PY).unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child", "python3", "reuse.py", REAPER, path])
        .arg(DELAY_US)
        .args(strace_extra)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .process_group(0);
    let (code, out, err) = run_with_timeout(&mut cmd, Duration::from_secs(120));
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let (strace, stderr) = (read("strace.log"), read("reaper.stderr"));
    assert_eq!(code, 0, "reuse.py failed: {err}\nstrace:\n{strace}\nreaper:\n{stderr}");
    let report = out
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect::<HashMap<_, _>>();
    // The race really happened: the outsider holds the pid reaper's walk saw for G.
    assert_eq!(report["O"], report["G"], "the outsider did not get G's pid: {report:?}");
    (report, strace, stderr)
}

/// The outsider got nothing and is still running; the skipped pid was logged.
fn assert_outsider_untouched(report: &HashMap<String, String>, stderr: &str) {
    assert_eq!(report["o_log"], "", "the outsider got a signal: {report:?}\n{stderr}");
    assert_eq!(report["o_alive"], "1", "the outsider was killed: {report:?}\n{stderr}");
    let skipped = format!("pid {}: gone or no longer reaper's descendant, not signalled", report["G"]);
    assert!(stderr.contains(&skipped), "{report:?}\n{stderr}");
}

/// G's pidfd was opened during the walk, before the signals of that pass were sent: the
/// window was after it. (An earlier pass may have signalled someone else: a walk right after
/// `kill(-pgid, SIGKILL)` can find the dying command alone, its children not yet re-parented.)
fn assert_opened_before_signalling(report: &HashMap<String, String>, strace: &str) {
    let opened = strace.find(&format!("pidfd_open({}, 0)", report["G"]));
    let signalled_after = opened.is_some_and(|at| strace[at..].contains("pidfd_send_signal("));
    assert!(signalled_after, "{report:?}\nstrace:\n{strace}");
}

/// The drain (subreaper mode; as PID 1 the drain is kill(-1), which by design reaches every
/// process of the namespace): the outsider that took the pid of a reaped grandchild does not
/// get the drain TERM, the leftover does.
#[test]
fn drain_does_not_signal_a_process_that_reused_a_leftovers_pid() {
    if !need("drain_does_not_signal_a_process_that_reused_a_leftovers_pid", true) {
        return;
    }
    let (report, strace, stderr) = reproduce("drain", &[]);
    assert_opened_before_signalling(&report, &strace);
    assert_outsider_untouched(&report, &stderr);
    assert_eq!(report["l_log"], "15", "the leftover's signals: {report:?}\n{stderr}");
    assert_eq!(report["reaper"], "137", "the command's status (SIGKILL): {report:?}");
}

/// --kill-after: the SIGKILL to every leftover does not kill the outsider; the leftover dies.
#[test]
fn kill_after_does_not_kill_a_process_that_reused_a_leftovers_pid() {
    if !need("kill_after_does_not_kill_a_process_that_reused_a_leftovers_pid", true) {
        return;
    }
    let (report, strace, stderr) = reproduce("kill-after", &[]);
    assert_opened_before_signalling(&report, &strace);
    assert_outsider_untouched(&report, &stderr);
    let killed = format!("reaped pid {}: killed by SIGKILL", report["L"]);
    assert!(stderr.contains(&killed), "{report:?}\n{stderr}");
    assert_eq!(report["reaper"], "137");
}

/// Without pidfds (pidfd_open made to fail with ENOSYS, as on a kernel before 5.3): reaper
/// says so once at debug level and signals by pid. The parent check still runs just before
/// each kill, so this reuse (during the previous signal) is caught too; only a reuse between
/// that check and the kill could get through.
#[test]
fn without_pidfds_the_drain_signals_by_pid() {
    if !need("without_pidfds_the_drain_signals_by_pid", true) {
        return;
    }
    let (report, strace, stderr) = reproduce("drain", &["-e", "inject=pidfd_open:error=ENOSYS"]);
    assert!(!strace.contains("pidfd_send_signal("), "{strace}");
    assert!(strace.contains(&format!("kill({}, SIGTERM)", report["L"])), "{strace}");
    assert_eq!(stderr.matches(NOSYS).count(), 1, "{stderr}");
    assert_outsider_untouched(&report, &stderr);
    assert_eq!(report["l_log"], "15", "{report:?}\n{stderr}");
}

/// The pids that reaper's pidfds refer to, as the test's /proc numbers them.
fn pidfds(pid: i32) -> Vec<i32> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    fds.flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.as_os_str() == "anon_inode:[pidfd]"))
        .filter_map(|e| {
            let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", e.file_name().to_str()?));
            info.ok()?.lines().find_map(|l| l.strip_prefix("Pid:")).and_then(|p| p.trim().parse().ok())
        })
        .collect()
}

/// Attaches strace to `pid`, making pidfd_open fail with `errno` (ENOSYS: a kernel before 5.3;
/// EPERM: a seccomp profile older than pidfd_open); returns once attached.
fn inject(pid: i32, dir: &Path, errno: &str) -> std::process::Child {
    let mut st = Command::new("strace")
        .args(["-p", &pid.to_string(), "-o", "/dev/null", "-e", "trace=pidfd_open"])
        .args(["-e", &format!("inject=pidfd_open:error={errno}")])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(st.stderr.take().unwrap()), &mut line).unwrap();
    assert!(line.contains("attached"), "strace: {line}");
    st
}

/// What reaper says, once, when pidfd_open fails with `errno`.
fn fallback_note(errno: &str) -> String {
    match errno {
        "ENOSYS" => NOSYS.to_owned(),
        // strerror's text, as reaper words every OS error (no "EPERM: " prefix since issue 23).
        _ => {
            let n = match errno {
                "EPERM" => libc::EPERM,
                "EACCES" => libc::EACCES,
                other => panic!("fallback_note: add {other}"),
            };
            let text = std::io::Error::from_raw_os_error(n).to_string();
            let text = text.split(" (os error").next().unwrap_or_default();
            format!("reaper: WARN pidfd_open: {text}; ")
        }
    }
}

/// `--follow-pidfile`: no pidfd while reaper waits for its command; from the adoption on the
/// daemon is held as one, and a forwarded TERM goes through it. With `denied`, pidfd_open
/// fails with that errno: no pidfd at all, the TERM goes by pid, and reaper says so once.
fn follow(mode: Mode, denied: Option<&str>) {
    let dir = tempdir("follow-pidfd");
    let log = dir.join("d.log");
    std::fs::write(dir.join("probe.py"), &signal_probe(&log, Some(libc::SIGTERM))[2]).unwrap();
    let script = "(python3 ./probe.py & echo $! > d.pid) ; while [ ! -e go ]; do sleep 0.02; done; exit 0";
    let mut cmd = reaper_cmd(mode, ["--follow-pidfile", "d.pid", "--", "sh", "-c", script]);
    cmd.current_dir(&dir).env("REAPER_LOG", "debug").stderr(std::fs::File::create(dir.join(STDERR)).unwrap());
    let mut r = Reaper::start(mode, &mut cmd);
    let _g = Guard::new(&r, &dir);
    assert!(wait_for_file(&log.with_extension("ready"), Duration::from_secs(20)));
    let strace = denied.map(|errno| inject(r.pid, &dir, errno));
    assert_eq!(pidfds(r.pid), Vec::<i32>::new(), "a pidfd while waiting for the command");
    std::fs::write(dir.join("go"), "").unwrap();
    let stderr = || std::fs::read_to_string(dir.join(STDERR)).unwrap_or_default();
    assert!(wait_until(Duration::from_secs(20), || stderr().contains("following pid")), "{}", stderr());
    let daemon = descendants(r.pid).into_iter().find(|&p| comm(&p) == "python3");
    let expected: Vec<i32> = if denied.is_some() { vec![] } else { daemon.into_iter().collect() };
    // "following" is logged within the batch that reaped the command, whose pidfd (kept while
    // the batch could still signal its group) is closed at the batch's end: poll past it.
    assert!(
        wait_until(Duration::from_secs(20), || pidfds(r.pid) == expected),
        "pidfds while following: {:?}, not {expected:?}; stderr:\n{}",
        pidfds(r.pid),
        stderr()
    );
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(Duration::from_secs(20)), 0, "{}", stderr());
    assert_eq!(probe_log(&log), [libc::SIGTERM]);
    let ns_pid = std::fs::read_to_string(dir.join("d.pid")).unwrap().trim().to_owned();
    let via = if denied.is_some() { "" } else { " (pidfd)" };
    assert!(stderr().contains(&format!("sent SIGTERM to {ns_pid}{via}\n")), "{}", stderr());
    if let Some(errno) = denied {
        assert_eq!(stderr().matches(&fallback_note(errno)).count(), 1, "{}", stderr());
    }
    if let Some(mut st) = strace {
        let _ = st.wait();
    }
}

fn comm(pid: &i32) -> String {
    common::comm(*pid).unwrap_or_default()
}

#[test]
fn followed_daemon_is_held_as_a_pidfd() {
    if which("python3").is_none() {
        return eprintln!("followed_daemon_is_held_as_a_pidfd: skipped: python3 not installed");
    }
    for mode in MODES {
        follow(mode, None);
    }
}

#[test]
fn without_pidfds_the_followed_daemon_is_signalled_by_pid() {
    if !need("without_pidfds_the_followed_daemon_is_signalled_by_pid", false) {
        return;
    }
    for mode in MODES {
        follow(mode, Some("ENOSYS"));
    }
}

/// A seccomp profile that answers EPERM to pidfd_open: the followed daemon is adopted all the
/// same (held by pid and start time), and signalled by pid.
#[test]
fn followed_daemon_is_adopted_when_pidfd_open_is_denied() {
    if !need("followed_daemon_is_adopted_when_pidfd_open_is_denied", false) {
        return;
    }
    for mode in MODES {
        follow(mode, Some("EPERM"));
    }
}

/// Leftovers, one of them a grandchild whose parent lives: with pidfd_open denied (EPERM, or
/// ENOSYS) each still gets the drain signal, then SIGKILL at the --drain deadline, and
/// reaper exits with the command's status; it says once why it signals by pid.
fn drain_without_pidfds(mode: Mode, errno: &str) {
    let dir = tempdir("drain-denied");
    let logs: Vec<_> = (0..3).map(|i| dir.join(format!("l{i}.log"))).collect();
    for (i, log) in logs.iter().enumerate() {
        std::fs::write(dir.join(format!("l{i}.py")), &signal_probe(log, None)[2]).unwrap();
    }
    // l2 is the grandchild: its sh waits for it (and dies on the drain TERM itself).
    let script = "python3 l0.py & python3 l1.py & sh -c 'python3 l2.py; :' & \
                  while [ ! -e go ]; do sleep 0.02; done; exit 0";
    let mut cmd = cmd_in(mode, &dir, ["--drain", "1s", "--", "sh", "-c", script]);
    let mut r = Reaper::start(mode, &mut cmd);
    let _g = Guard::new(&r, &dir);
    for log in &logs {
        assert!(
            wait_for_file(&log.with_extension("ready"), Duration::from_secs(20)),
            "{mode:?}: probe not ready"
        );
    }
    let probes = snapshot_descendants(r.pid);
    let mut st = inject(r.pid, &dir, errno);
    std::fs::write(dir.join("go"), "").unwrap();
    let code = r.wait_timeout(LONG).map(exit_code);
    kill_recorded(&probes);
    let _ = st.wait();
    assert_eq!(code, Some(0), "{mode:?} {errno}: reaper's exit (None: it hung)\n{}", stderr_of(&dir));
    for log in &logs {
        assert_eq!(probe_log(log), [libc::SIGTERM], "{mode:?} {errno}: {}", log.display());
    }
    assert!(probes.iter().all(|(p, _)| !alive(*p)), "{mode:?} {errno}: a leftover survived");
    if mode == Mode::Subreaper {
        let said = stderr_of(&dir).matches(&fallback_note(errno)).count();
        assert_eq!(said, usize::from(errno != "ENOSYS"), "{mode:?} {errno}: {}", stderr_of(&dir));
    }
}

both_modes!(leftovers_are_drained_and_killed_when_pidfd_open_is_denied, |mode| {
    if need("leftovers_are_drained_and_killed_when_pidfd_open_is_denied", false) {
        drain_without_pidfds(mode, "EPERM");
    }
});

both_modes!(leftovers_are_drained_and_killed_without_pidfds, |mode| {
    if need("leftovers_are_drained_and_killed_without_pidfds", false) {
        drain_without_pidfds(mode, "ENOSYS");
    }
});

/// Runs `reaper --drain DRAIN -- sh -c SCRIPT` in `dir` with `ulimit -n LIMIT` (reaper and its
/// tree) and returns its exit code, `None` if it did not exit within a minute.
fn drain_under_fd_limit(mode: Mode, dir: &Path, limit: u64, drain: &str, script: &str) -> Option<i32> {
    let mut cmd = cmd_in(mode, dir, ["--drain", drain, "--", "sh", "-c", script]);
    // SAFETY: setrlimit(2) between fork and exec, with a valid struct.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut r = Reaper::start(mode, &mut cmd);
    let _g = Guard::new(&r, dir);
    r.wait_timeout(Duration::from_secs(60)).map(exit_code)
}

// With `ulimit -n 64` and 100 leftovers, every one gets the drain signal: the pidfd batch
// ends where the descriptors do, and the next batch gets them back.
both_modes!(every_leftover_gets_the_drain_signal_under_a_low_fd_limit, |mode| {
    let dir = tempdir("drain-fds");
    // One process each, no child (a child re-parented during the drain would start another
    // pass): sh blocked reading a FIFO that it holds open for writing too.
    let one = "trap 'echo $$ >> got; exit 0' TERM; echo $$ >> ready; while :; do read x <> ff; done";
    std::fs::write(dir.join("one.sh"), one).unwrap();
    let script = "mkfifo ff; for i in $(seq 100); do sh ./one.sh & done; \
                  while [ \"$(wc -l < ready 2>/dev/null)\" != 100 ]; do sleep 0.05; done; exit 0";
    let code = drain_under_fd_limit(mode, &dir, 64, "20s", script);
    let got = std::fs::read_to_string(dir.join("got")).unwrap_or_default();
    assert_eq!(code, Some(0), "{mode:?}: reaper's exit\n{}", stderr_of(&dir));
    assert_eq!(got.lines().count(), 100, "{mode:?}: leftovers that got TERM\n{}", stderr_of(&dir));
});

/// Without pidfds nothing announces the exit of a followed daemon that its own parent reaps:
/// reaper looks for it in /proc twice a second, and ends the workload soon after (status 1:
/// its exit status is unknown).
#[test]
fn without_pidfds_a_followed_daemon_reaped_by_its_parent_is_noticed() {
    if !need("without_pidfds_a_followed_daemon_reaped_by_its_parent_is_noticed", false) {
        return;
    }
    for mode in MODES {
        let dir = tempdir("follow-reaped");
        // The intermediate sh reaps the daemon (sleep) and lives on.
        let script = "sh -c 'sleep 600 & echo $! > d.pid; wait; sleep 600' & \
                      while [ ! -s d.pid ] || [ ! -e go ]; do sleep 0.02; done; exit 0";
        let mut cmd =
            cmd_in(mode, &dir, ["--follow-pidfile", "d.pid", "--drain", "2s", "--", "sh", "-c", script]);
        cmd.env("REAPER_LOG", "info");
        let mut r = Reaper::start(mode, &mut cmd);
        let _g = Guard::new(&r, &dir);
        let mut st = inject(r.pid, &dir, "ENOSYS");
        std::fs::write(dir.join("go"), "").unwrap();
        let cmdline = |p: i32| std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        let sleeps = || {
            descendants(r.pid).into_iter().filter(|&p| cmdline(p) == b"sleep\x00600\x00").collect::<Vec<_>>()
        };
        assert!(wait_until(LONG, || sleeps().len() == 1), "{mode:?}: the daemon never started");
        let daemon = sleeps()[0];
        let stderr = || stderr_of(&dir);
        assert!(wait_until(LONG, || stderr().contains("following pid")), "{mode:?}: {}", stderr());
        let t0 = std::time::Instant::now();
        // SAFETY: kill(2) of the daemon this test started (still alive: just seen).
        unsafe { libc::kill(daemon, libc::SIGKILL) };
        let code = r.wait_timeout(LONG).map(exit_code);
        let took = t0.elapsed();
        let _ = st.wait();
        assert_eq!(code, Some(1), "{mode:?}: {}", stderr());
        assert!(stderr().contains("exited and was reaped by another process"), "{mode:?}: {}", stderr());
        // Noticed within a check or two, then the drain (the intermediate dies on its TERM):
        // well under the 2 s drain deadline plus the 10 s the test would wait.
        assert!(took < Duration::from_secs(5), "{mode:?}: noticed after {took:?}");
    }
}

/// A `reaper --pidfile PF -- sleep 1000` in its own process group, stderr to `err`.
fn starter(pf: &Path, err: &Path, prefix: &[&str]) -> std::process::Child {
    let (prog, rest) = prefix.split_first().map_or((REAPER, &[][..]), |(p, r)| (*p, r));
    let mut cmd = Command::new(prog);
    cmd.args(rest);
    if !prefix.is_empty() {
        cmd.arg(REAPER);
    }
    cmd.arg("--pidfile")
        .arg(pf)
        .args(["--", "sleep", "1000"])
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(err).unwrap())
        .process_group(0)
        .spawn()
        .unwrap()
}

fn pidfile_names(pf: &Path, pid: u32) -> bool {
    std::fs::read_to_string(pf).is_ok_and(|t| t.trim() == pid.to_string())
}

/// A holds the pidfile; B opens it and is held by strace before its flock; A exits and
/// unlinks it; C creates it afresh and runs. B then locks the unlinked inode: it must notice,
/// start over, find C's lock and exit 1 naming C, leaving C's file alone. (Subreaper mode
/// only: as PID 1 of its own namespace each reaper would write pid 1.)
#[test]
fn pidfile_three_starters_one_runs() {
    if !need("pidfile_three_starters_one_runs", false)
        || skip_under_emulation("/proc/PID/syscall shows qemu-user's host system call numbers")
    {
        return;
    }
    let dir = tempdir("pidfile-race");
    let pf = dir.join("reaper.pid");
    let mut a = starter(&pf, &dir.join("a.err"), &[]);
    assert!(wait_until(Duration::from_secs(20), || pidfile_names(&pf, a.id())), "A never wrote the pidfile");
    let strace =
        ["strace", "-o", "/dev/null", "-e", "trace=flock", "-e", "inject=flock:delay_enter=3000000:when=1"];
    let mut b = starter(&pf, &dir.join("b.err"), &strace);
    let mut b_pid = None;
    let in_flock = |b_pid: &mut Option<i32>| {
        *b_pid = children(b.id() as i32).first().copied();
        b_pid.is_some_and(|p| {
            std::fs::read_to_string(format!("/proc/{p}/syscall"))
                .is_ok_and(|s| s.split_whitespace().next() == Some(&libc::SYS_flock.to_string()))
        })
    };
    assert!(wait_until(Duration::from_secs(20), || in_flock(&mut b_pid)), "B never reached flock");
    // SAFETY: kill(2) of the reaper this test started.
    unsafe { libc::kill(a.id() as i32, libc::SIGTERM) };
    assert_eq!(exit_code(wait_child(&mut a, Duration::from_secs(20)).expect("A did not exit")), 143);
    assert!(!pf.exists(), "A left its pidfile behind");
    let mut c = starter(&pf, &dir.join("c.err"), &[]);
    assert!(wait_until(Duration::from_secs(20), || pidfile_names(&pf, c.id())), "C never wrote the pidfile");
    let b_code = exit_code(wait_child(&mut b, Duration::from_secs(30)).expect("B did not exit"));
    let b_err = std::fs::read_to_string(dir.join("b.err")).unwrap();
    assert_eq!(b_code, 1, "B: {b_err}");
    assert!(b_err.contains(&format!("already running (pid {})", c.id())), "B: {b_err}");
    assert!(pidfile_names(&pf, c.id()), "C's pidfile after B gave up");
    assert_eq!(c.try_wait().unwrap(), None, "C stopped");
    // SAFETY: kill(2) of the reaper this test started.
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    assert_eq!(exit_code(wait_child(&mut c, Duration::from_secs(20)).expect("C did not exit")), 143);
    assert!(!pf.exists(), "C left its pidfile behind");
}

// Review of issue 19: with `ulimit -n 16`, a batch could take the very last descriptor, and
// the /proc read that confirms each process then failed and was read as "gone": one
// grandchild in nine went without the drain signal. 50 parents, each keeping a child and
// ignoring nothing: each of the 100 gets TERM once.
both_modes!(every_leftover_gets_the_drain_signal_when_the_last_descriptor_is_taken, |mode| {
    let dir = tempdir("drain-lastfd");
    let child = "trap 'echo $$ >> got; exit 0' TERM; echo $$ >> ready; while :; do read x <> ff; done";
    let parent = "sh ./child.sh & trap 'echo $$ >> pgot' TERM; while :; do read x <> ff; done";
    std::fs::write(dir.join("child.sh"), child).unwrap();
    std::fs::write(dir.join("parent.sh"), parent).unwrap();
    let script = "mkfifo ff; for i in $(seq 50); do sh ./parent.sh & done; \\
                  while [ \"$(wc -l < ready 2>/dev/null)\" != 50 ]; do sleep 0.05; done; exit 0";
    let code = drain_under_fd_limit(mode, &dir, 16, "2s", script);
    let count = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default().lines().count();
    assert_eq!(code, Some(0), "{mode:?}: reaper's exit\n{}", stderr_of(&dir));
    assert_eq!(
        (count("got"), count("pgot")),
        (50, 50),
        "{mode:?}: children, parents that got TERM\n{}",
        stderr_of(&dir)
    );
});

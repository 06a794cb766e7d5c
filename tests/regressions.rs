//! The eight findings of the state-machine review (issue 9), each reproduced with real
//! processes, in both modes where both apply. Every test here failed on the code before the
//! state machine; the matching transition rows are in src/state.rs's unit tests.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

// 1. The followed pid is a grandchild: its parent (a subshell) reaps it, then exits. Before,
// reaper never saw the followed pid exit and slept for ever with no child left. Now no child
// left ends it; the followed daemon's status is unknown, which is an error (exit 1).
both_modes!(follow_pidfile_grandchild_reaped_by_its_parent_ends_reaper, |mode| {
    let dir = tempdir("follow-grandchild");
    let (mut r, _g) = start_in(
        mode,
        &dir,
        &["-v", "--follow-pidfile", "d.pid", "--", "sh", "-c", "(sleep 1 & echo $! > d.pid; wait) & exit 0"],
    );
    assert_eq!(r.code(Duration::from_secs(30)), 1, "{}", stderr_of(&dir));
    let log = stderr_of(&dir);
    assert!(log.contains("following pid"), "{log}");
    assert!(log.contains("its exit status is unknown"), "{log}");
});

// 1b (review): the same, but the intermediate lives on after reaping the followed daemon.
// The followed pidfd turns readable when the daemon exits: reaper ends the workload then
// (status unknown: 1) and drains the intermediate, instead of waiting out its 30 s.
both_modes!(follow_pidfile_daemon_reaped_by_a_surviving_parent_ends_the_workload, |mode| {
    let dir = tempdir("follow-survivor");
    let script = "(sleep 1 & echo $! > d.pid; wait; trap 'exit 0' TERM; sleep 30 & wait) & exit 0";
    let (mut r, _g) = start_in(mode, &dir, &["-v", "--follow-pidfile", "d.pid", "--", "sh", "-c", script]);
    wait_for_log(&dir, "following pid");
    let adopted = Instant::now();
    assert_eq!(r.code(Duration::from_secs(40)), 1, "{}", stderr_of(&dir));
    let took = adopted.elapsed();
    assert!(took < Duration::from_secs(15), "reaper waited {took:?} for the intermediate");
    assert!(stderr_of(&dir).contains("was reaped by another process"), "{}", stderr_of(&dir));
});

// 2. A stop signal while waiting for the pidfile used to switch --kill-after off: the
// TERM-ignoring daemon adopted afterwards was never SIGKILLed. Now the deadline armed by
// the TERM survives the adoption: SIGKILL at 1 s, long before the 5 s drain, exit 137.
both_modes!(kill_after_armed_while_awaiting_the_pidfile_kills_the_daemon, |mode| {
    let dir = tempdir("follow-kill-after");
    write(
        &dir,
        "daemon.sh",
        "trap '' TERM; : > started; while [ ! -e go ]; do sleep 0.02; done; echo $$ > d.pid; exec sleep 60",
    );
    let args = [
        "-v",
        "-t",
        "1s",
        "--drain",
        "5s",
        "--follow-pidfile",
        "d.pid",
        "--",
        "sh",
        "-c",
        "sh ./daemon.sh & exit 0",
    ];
    let (mut r, _g) = start_in(mode, &dir, &args);
    wait_for_log(&dir, "command exited with status 0");
    assert!(wait_for_file(&dir.join("started"), Duration::from_secs(20)));
    r.signal(libc::SIGTERM);
    wait_for_log(&dir, "stop requested");
    let stopped = Instant::now();
    write(&dir, "go", "");
    assert_eq!(r.code(Duration::from_secs(30)), 137, "{}", stderr_of(&dir));
    let took = stopped.elapsed();
    assert!(took < Duration::from_secs(4), "SIGKILL came {took:?} after the stop: not --kill-after's 1 s");
    assert!(stderr_of(&dir).contains("following pid"), "{}", stderr_of(&dir));
});

// 3. A grandchild orphaned during the drain: as PID 1, kill(-1) reached it but only direct
// children were recorded, so it got the drain signal a second time when its parent exited.
// Now every process gets it exactly once, in both modes.
both_modes!(orphaned_grandchild_gets_the_drain_signal_once, |mode| {
    let dir = tempdir("drain-once");
    let log = dir.join("g.log");
    let probe = signal_probe(&log, None);
    write(&dir, "probe.py", &probe[2]);
    // The parent takes 0.3 s of cleanup on TERM, then exits, orphaning the probe to reaper.
    write(&dir, "parent.sh", "trap 'sleep 0.3; exit 0' TERM; python3 ./probe.py & wait; wait");
    let main = "sh ./parent.sh & while [ ! -e g.ready ]; do sleep 0.02; done; exit 3";
    let (mut r, _g) = start_in(mode, &dir, &["-v", "--drain", "2s", "--", "sh", "-c", main]);
    // The drain lasts until its 2 s deadline (the probe ignores TERM): long enough for a
    // second TERM to arrive if one were coming.
    assert_eq!(r.code(Duration::from_secs(30)), 3, "{}", stderr_of(&dir));
    let got = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(got, "15\n", "the probe's signals; stderr:\n{}", stderr_of(&dir));
});

// 4. An unreadable /proc/PID/task/*/children (here reaper's own, made to fail with EIO by a
// bind mount) used to pass as "no descendants": the drain signalled nobody and the
// TERM-ignoring leftover outlived it. Now it is "cannot list": reaper warns and signals the
// command's process group, so the drain's SIGKILL reaches the leftover. Subreaper only: as
// PID 1 the drain uses kill(-1), which needs no list.
#[test]
fn unreadable_children_file_falls_back_to_the_process_group() {
    let dir = tempdir("children-eio");
    let log = std::fs::File::create(dir.join(STDERR)).unwrap();
    let script = r#"mount --bind /proc/$$/mem /proc/$$/task/$$/children && exec "$0" "$@""#;
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", script, REAPER])
        .args(["--drain", "1s", "--", "sh", "-c", "trap '' TERM; sleep 60 & : > ready; exit 4"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stderr(Stdio::from(log));
    let mut r = Reaper::start(Mode::Subreaper, &mut cmd);
    let _g = Guard::new(&r, &dir);
    assert!(wait_for_file(&dir.join("ready"), Duration::from_secs(20)));
    assert_eq!(r.code(Duration::from_secs(30)), 4, "{}", stderr_of(&dir));
    let log = stderr_of(&dir);
    assert!(log.contains("cannot list descendants"), "{log}");
    // strerror's text, in the C library's own words (glibc "Input/output error", musl "I/O
    // error"), and no errno number.
    let eio = reaper::error::os(std::io::Error::from_raw_os_error(libc::EIO));
    assert!(log.contains("cannot list descendants in /proc (/proc/"), "{log}");
    assert!(log.contains(&format!("/children: {eio}); signalling only")), "{log}");
    assert!(!log.contains("(os error"), "{log}");
}

// 5. `--daemon --chdir D --follow-pidfile app.pid`: the command writes app.pid inside D, its
// working directory. reaper used to look in the caller's directory, gave up after the
// drain deadline and exited 1. Now the relative path is the command's; reaper follows it.
#[test]
fn daemon_follows_a_relative_pidfile_inside_its_chdir() {
    let dir = tempdir("daemon-chdir-follow");
    let (work, caller) = (dir.join("work"), dir.join("caller"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&caller).unwrap();
    let log = dir.join(STDERR);
    let st = Command::new(REAPER)
        .args(["--daemon", "-v", "--drain", "1s", "--pidfile", "reaper.pid"])
        .arg("--chdir")
        .arg(&work)
        .arg("--stderr")
        .arg(&log)
        .args(["--follow-pidfile", "app.pid", "--", "sh", "-c", "sleep 60 & echo $! > app.pid; exit 0"])
        .current_dir(&caller)
        .status()
        .unwrap();
    assert!(st.success());
    let pidfile = caller.join("reaper.pid");
    let daemon =
        wait_for_line(&pidfile, Duration::from_secs(20)).expect("--pidfile stays relative to the caller");
    let daemon: i32 = daemon.trim().parse().unwrap();
    let _g = Guard::pidfile(&pidfile);
    wait_for_log(&dir, &format!("from {}", work.join("app.pid").display()));
    // Before, it gave up at the 1 s drain deadline; wait twice that to see it stay.
    std::thread::sleep(Duration::from_secs(2));
    assert!(alive(daemon), "reaper gave up on the pidfile: {}", stderr_of(&dir));
    // SAFETY: kill(2) of the daemon this test started.
    unsafe { libc::kill(daemon, libc::SIGTERM) };
    assert!(wait_gone(daemon, Duration::from_secs(20)));
    let log = stderr_of(&dir);
    assert!(log.contains("exiting with status 143"), "{log}");
}

// 6. The kill-after deadline passes while the command's exit is already pending: its real
// status must win. strace holds every return of reaper's wait (poll(2), or rt_sigtimedwait(2)
// while it watches only signals) back by 1.5 s, so the command (which exits 0 1.8 s after its
// TERM) exits after the kill deadline passed but before reaper looks: the same wake-up. Before, reaper fired the kill first and exited 137.
both_modes!(real_status_wins_over_a_simultaneous_kill_after, |mode| {
    if skip_under_emulation("strace would hold qemu's system calls, not reaper's") {
        return;
    }
    let Some(strace) = which("strace") else {
        eprintln!("skipped: real_status_wins_over_a_simultaneous_kill_after: strace is not installed");
        return;
    };
    let dir = tempdir("kill-after-race");
    let (mut r, _g) = start_in(
        mode,
        &dir,
        &["-v", "-t", "1s", "--", "sh", "-c", "trap 'sleep 1.8; exit 0' TERM; : > ready; sleep 60 & wait"],
    );
    assert!(wait_for_file(&dir.join("ready"), Duration::from_secs(20)));
    let mut tracer = Command::new(strace)
        .args(["-qq", "-o", "/dev/null", "-e", "trace=poll,rt_sigtimedwait"])
        .args(["-e", "inject=poll,rt_sigtimedwait:delay_exit=1500000", "-p"])
        .arg(r.pid.to_string())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || status_field(r.pid, "TracerPid").is_some_and(|t| t != "0")),
        "strace never attached"
    );
    r.signal(libc::SIGTERM);
    let code = r.code(Duration::from_secs(30));
    let _ = tracer.wait();
    assert_eq!(code, 0, "{}", stderr_of(&dir));
});

// 7. `-r` rules that can never fire are usage errors: TTIN and TTOU are ignored by reaper
// (the kernel discards them). Fault signals can be rewritten now that they are forwarded (8).
#[test]
fn rewrite_of_ttin_or_ttou_is_a_usage_error() {
    for sig in ["TTIN", "SIGTTOU"] {
        let rule = format!("{sig}:TERM");
        let (code, _, err) = run_with_timeout(
            &mut reaper_cmd(Mode::Subreaper, ["-r", &rule, "true"]),
            Duration::from_secs(20),
        );
        assert_eq!(code, 2, "{rule}: {err}");
        let name = format!("SIG{}", sig.trim_start_matches("SIG"));
        assert_eq!(
            err,
            format!(
                "reaper: --rewrite: cannot rewrite {name}: reaper never receives it\nTry 'reaper --help'.\n"
            )
        );
    }
}

const FAULTS: [i32; 7] =
    [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGABRT, libc::SIGTRAP, libc::SIGSYS];

// 8. A fault signal sent with kill(2) used to kill a non-PID-1 reaper and leave the command
// unsupervised. Blocked now, each arrives in the signalfd and is forwarded like any other;
// `-r SEGV:USR1` fires.
both_modes!(fault_signals_sent_with_kill_are_forwarded, |mode| {
    if skip_under_emulation("qemu-user takes the fault signals for its own emulation") {
        return;
    }
    let dir = tempdir("faults");
    let log = dir.join("probe.log");
    let probe = signal_probe(&log, Some(libc::SIGTERM));
    let mut args = vec!["-r".to_string(), "SEGV:USR1".into(), "--".into()];
    args.extend(probe);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (mut r, _g) = start_in(mode, &dir, &args);
    assert!(wait_for_file(&log.with_extension("ready"), Duration::from_secs(20)));
    for (i, sig) in FAULTS.into_iter().enumerate() {
        r.signal(sig);
        // One at a time: the probe logs in arrival order.
        assert!(
            wait_until(Duration::from_secs(20), || probe_log(&log).len() == i + 1),
            "signal {sig} not forwarded: {:?}; stderr:\n{}",
            probe_log(&log),
            stderr_of(&dir)
        );
    }
    let mut want = FAULTS.to_vec();
    want[0] = libc::SIGUSR1;
    assert_eq!(probe_log(&log), want);
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(Duration::from_secs(30)), 0, "{}", stderr_of(&dir));
});

/// Blocking the fault signals must not make a genuine fault of reaper's own survivable (it
/// would spin or hang): the kernel unblocks a forced fault. A tracer points reaper's
/// instruction pointer at address 0; reaper must die of SIGSEGV. x86_64 only (the register
/// offset), and subreaper mode only (the test must be reaper's parent to see how it died).
#[test]
fn a_genuine_fault_still_kills_reaper() {
    if !cfg!(target_arch = "x86_64") {
        eprintln!("skipped: a_genuine_fault_still_kills_reaper: needs x86_64 (rip offset in struct user)");
        return;
    }
    let dir = tempdir("genuine-fault");
    let (mut r, _g) = start_in(Mode::Subreaper, &dir, &["--", "sleep", "60"]);
    let poke = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
pid = int(sys.argv[1])
PTRACE_POKEUSER, PTRACE_ATTACH, PTRACE_DETACH, RIP = 6, 16, 17, 16 * 8
if libc.ptrace(PTRACE_ATTACH, pid, None, None) != 0:
    sys.exit("attach: errno %d" % ctypes.get_errno())
os.waitpid(pid, 0)
if libc.ptrace(PTRACE_POKEUSER, pid, RIP, 0) != 0:
    sys.exit("poke: errno %d" % ctypes.get_errno())
libc.ptrace(PTRACE_DETACH, pid, None, None)
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", poke, &r.pid.to_string()]).process_group(0);
    let (code, _, err) = run_with_timeout(&mut cmd, Duration::from_secs(20));
    assert_eq!(code, 0, "{err}");
    let st = r.wait_timeout(Duration::from_secs(20)).expect("reaper survived its own fault");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGSEGV), "{st:?}");
}

// Issue 19: a FIFO where the followed pidfile should be. Opening it for reading blocked the
// whole loop in open(2) until a writer came (no signal, no reap, no deadline in between).
// Now it is opened non-blocking and refused as not a regular file, and at the --drain
// deadline reaper gives up as for any bogus pidfile (exit 1) and drains the daemon.
both_modes!(a_fifo_as_the_followed_pidfile_never_blocks_reaper, |mode| {
    let dir = tempdir("follow-fifo");
    let script = "mkfifo d.pid && (sleep 600 &) && exit 0";
    let (mut r, _g) =
        start_in(mode, &dir, &["--drain", "1s", "--follow-pidfile", "d.pid", "--", "sh", "-c", script]);
    assert_eq!(r.code(Duration::from_secs(20)), 1, "{}", stderr_of(&dir));
    assert!(stderr_of(&dir).contains("d.pid: is a FIFO, not a regular file"), "{}", stderr_of(&dir));
});

// Issue 19: the followed pidfile was there (with junk) and vanished before reaper gave up: the
// error says what it held, not only that there is no such file.
both_modes!(a_vanished_followed_pidfile_is_reported_with_what_it_held, |mode| {
    let dir = tempdir("follow-vanished");
    let script = "printf 'abc\\n' > d.pid; (sleep 1; rm d.pid) >/dev/null 2>&1 & exit 0";
    let (mut r, _g) =
        start_in(mode, &dir, &["--drain", "3s", "--follow-pidfile", "d.pid", "--", "sh", "-c", script]);
    assert_eq!(r.code(Duration::from_secs(20)), 1, "{}", stderr_of(&dir));
    let said = "(it was there before, with no pid on its first line: \"abc\")";
    assert!(stderr_of(&dir).contains(said), "{}", stderr_of(&dir));
});

// Review of issue 19: --follow-pidfile through another user's link to a root-only file put
// that file's first line in the log. The link is not followed now (as for --stdout).
#[test]
fn a_followed_pidfile_through_another_users_link_is_not_read() {
    if !is_root() {
        return eprintln!("a_followed_pidfile_through_another_users_link_is_not_read: skipped: needs root");
    }
    let dir = tempdir("follow-link");
    write(&dir, "secret", "root:secret-hash:20228\n");
    std::os::unix::fs::symlink(dir.join("secret"), dir.join("d.pid")).unwrap();
    std::os::unix::fs::lchown(dir.join("d.pid"), Some(65534), Some(65534)).unwrap();
    let (mut r, _g) =
        start_in(Mode::Subreaper, &dir, &["--drain", "0.5s", "--follow-pidfile", "d.pid", "--", "true"]);
    assert_eq!(r.code(Duration::from_secs(20)), 1, "{}", stderr_of(&dir));
    assert!(stderr_of(&dir).contains("symbolic link owned by uid 65534"), "{}", stderr_of(&dir));
    assert!(!stderr_of(&dir).contains("secret-hash"), "{}", stderr_of(&dir));
}

// Review of issue 19: with `-g`, a followed daemon that joined a group outside reaper's tree
// (setpgid allows any group of its session: here reaper's own, with an outsider in it) gets
// the forwarded TERM alone; the outsider is not signalled. Subreaper mode: the outsider must
// share the daemon's session.
#[test]
fn with_g_a_group_shared_with_outsiders_is_not_signalled_whole() {
    if which("python3").is_none() {
        return eprintln!("with_g_a_group_shared_with_outsiders_is_not_signalled_whole: skipped: python3");
    }
    let dir = tempdir("g-foreign");
    let daemon = "import os, sys, time\nos.setpgid(0, int(sys.argv[1]))\n\
                  open('d.tmp', 'w').write(str(os.getpid()))\nos.rename('d.tmp', 'd.pid')\ntime.sleep(600)\n";
    write(&dir, "daemon.py", daemon);
    let mut cmd = cmd_in(
        Mode::Subreaper,
        &dir,
        ["-g", "--follow-pidfile", "d.pid", "--", "sh", "-c", "python3 daemon.py $PPID & exit 0"],
    );
    cmd.env("REAPER_LOG", "info");
    let mut r = Reaper::start(Mode::Subreaper, &mut cmd);
    let _g = Guard::new(&r, &dir);
    // The outsider: the test's own child, in reaper's group (which reaper_cmd made).
    let mut outsider = Command::new("sleep").arg("600").process_group(r.pid).spawn().unwrap();
    wait_for_log(&dir, "following pid");
    r.signal(libc::SIGTERM);
    let code = r.code(Duration::from_secs(20));
    let alive = outsider.try_wait().unwrap().is_none();
    let _ = outsider.kill();
    let _ = outsider.wait();
    assert!(alive, "the outsider was signalled: {}", stderr_of(&dir));
    assert_eq!(code, 143, "the daemon's status (killed by TERM): {}", stderr_of(&dir));
    assert!(stderr_of(&dir).contains("holds processes outside reaper's tree"), "{}", stderr_of(&dir));
}

// Review of issue 23: a followed pidfile set by REAPER_FOLLOW_PIDFILE (the only way under
// `docker run --init`) was reported as `--follow-pidfile: …`, an option nobody wrote.
both_modes!(a_followed_pidfile_error_names_the_setting_that_named_it, |mode| {
    let dir = tempdir("follow-source");
    for (args, env, said) in [
        (&["--drain", "0", "--follow-pidfile", "gone.pid", "--", "true"][..], None, "--follow-pidfile /"),
        (&["--drain", "0", "--", "true"][..], Some("gone.pid"), "REAPER_FOLLOW_PIDFILE=/"),
    ] {
        let log = std::fs::File::create(dir.join(STDERR)).unwrap();
        let mut cmd = reaper_cmd(mode, args);
        cmd.current_dir(&dir).stderr(Stdio::from(log));
        if let Some(v) = env {
            cmd.env("REAPER_FOLLOW_PIDFILE", v);
        }
        let mut r = Reaper::start(mode, &mut cmd);
        let _g = Guard::new(&r, &dir);
        assert_eq!(r.code(Duration::from_secs(20)), 1, "{}", stderr_of(&dir));
        let line = stderr_of(&dir);
        // The path as reaper resolved it, against the directory it was started in.
        assert!(line.contains(&format!("reaper: ERROR {said}")), "{line}");
        assert!(line.contains("/gone.pid: No such file or directory"), "{line}");
    }
});

// Hostile review of the rt_sigtimedwait loop: the reap batch runs only on news (a SIGCHLD,
// a deadline, ...). A child that exited before reaper's exec (an entrypoint that started
// something, then exec'd reaper) sends no SIGCHLD to reaper: its signal went to the old
// image (where SIG_DFL discarded it). Before the fix that zombie stayed until some other
// child happened to exit; in --pause mode, for ever. Now the first batch runs at start.
#[test]
fn a_zombie_inherited_across_exec_is_reaped_without_a_signal() {
    let mut cmd = reaper_cmd(Mode::Subreaper, ["--pause"]);
    cmd.stderr(Stdio::null());
    // SAFETY: between fork and exec only fork, _exit and waitid (async-signal-safe).
    unsafe {
        cmd.pre_exec(|| {
            let pid = libc::fork();
            if pid == 0 {
                libc::_exit(0);
            }
            if pid > 0 {
                // Exited, still unreaped: the zombie reaper inherits.
                let mut info: libc::siginfo_t = std::mem::zeroed();
                libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let pid = child.id() as i32;
    let reaped = wait_until(Duration::from_secs(10), || {
        comm(pid).as_deref() == Some("reaper") && children(pid).is_empty()
    });
    let left = zombies_under(pid);
    kill_tree(pid);
    let _ = child.wait();
    assert!(reaped, "the inherited zombie is still there: {left:?}");
}

//! The core init, end to end: the real binary, as PID 1 of a fresh PID namespace and as a
//! plain process (child subreaper), with real processes only.

mod common;
use common::*;

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

/// For anything that is not being timed: generous, the machine may be loaded.
const LONG: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Helpers local to these tests.

fn kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) };
}

/// Reads the launcher's piped stderr in the background (the launcher's `stderr` must be
/// `Stdio::piped()`), so a chatty reaper can never block on a full pipe.
fn capture_stderr(r: &mut Reaper) -> JoinHandle<String> {
    let mut err = r.child.stderr.take().expect("stderr was not piped");
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    })
}

fn ppid(pid: i32) -> Option<i32> {
    status_field(pid, "PPid")?.parse().ok()
}

/// argv of `pid`, exactly as the kernel holds it.
fn cmdline(pid: i32) -> Vec<Vec<u8>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    split_nul(&raw)
}

/// `a\0b\0` → [a, b]; empty entries are kept.
fn split_nul(raw: &[u8]) -> Vec<Vec<u8>> {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0).map(<[u8]>::to_vec).collect()
}

fn pgrp(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(2)?.parse().ok()
}

fn hex_field(status: &str, field: &str) -> u64 {
    let v = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in {status:?}"));
    u64::from_str_radix(v.trim(), 16).unwrap()
}

fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

/// Writes an executable shell script into `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn wait_for_signal(log: &Path, sig: i32) -> bool {
    wait_until(LONG, || probe_log(log).contains(&sig))
}

fn ready(log: &Path) -> PathBuf {
    log.with_extension("ready")
}

/// `args` as a Vec of OsString, for building command lines out of mixed pieces.
fn os_args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I) -> Vec<OsString> {
    args.into_iter().map(|a| a.as_ref().to_os_string()).collect()
}

/// `reaper ARGS` in `mode`, run to completion: (exit code, stdout, stderr).
fn run(mode: Mode, args: &[&str]) -> (i32, String, String) {
    run_with_timeout(&mut reaper_cmd(mode, args), LONG)
}

/// Between fork and exec, sets exactly `block` as the signal mask and exactly `ignore` as
/// the ignored set (every other signal back to SIG_DFL, whatever the test process had): a
/// wrapper around whatever `cmd` runs. Raw syscalls, so that the C library's reserved
/// signals 32 and 33 are reset too.
fn with_signal_state(cmd: &mut Command, block: &[i32], ignore: &[i32]) {
    let mask: u64 = block.iter().map(|&s| bit(s)).fold(0, |a, b| a | b);
    let ignored: u64 = ignore.iter().map(|&s| bit(s)).fold(0, |a, b| a | b);
    /// The kernel's struct sigaction on x86_64 and aarch64.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    // SAFETY: only raw rt_sigaction/rt_sigprocmask syscalls (async-signal-safe) on stack
    // memory; SIG_DFL and SIG_IGN need no restorer.
    unsafe {
        cmd.pre_exec(move || {
            for sig in 1..=64 {
                if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                    continue;
                }
                let act = KernelSigaction {
                    handler: if ignored & bit(sig) != 0 { libc::SIG_IGN } else { libc::SIG_DFL },
                    flags: 0,
                    restorer: 0,
                    mask: 0,
                };
                let rc = libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &act as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8,
                );
                if rc != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            let rc = libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &mask as *const u64,
                std::ptr::null_mut::<u64>(),
                8,
            );
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
}

/// The same launcher reaper_cmd would use, but running `args` directly, without reaper.
fn direct_cmd(mode: Mode, args: &[&str]) -> Command {
    let mut cmd = match mode {
        Mode::Pid1 => {
            let mut c = Command::new("unshare");
            if !is_root() {
                c.args(["--user", "--map-root-user"]);
            }
            c.args(["--pid", "--fork", "--mount-proc", "--kill-child"]);
            c.args(args);
            c
        }
        Mode::Subreaper => {
            let mut c = Command::new(args[0]);
            c.args(&args[1..]);
            c
        }
    };
    cmd.stdin(Stdio::null());
    cmd.process_group(0);
    cmd
}

// ---------------------------------------------------------------------------------------
// Exit status.

#[test]
fn exit_codes_pass_through() {
    // Not Reaper::start: in Pid1 mode it waits for unshare's child to appear, and with a
    // command this short the whole namespace may be gone before it looks (a 10 s stall).
    for mode in MODES {
        for code in [0, 1, 7, 255] {
            let (got, _, err) = run(mode, &["sh", "-c", &format!("exit {code}")]);
            assert_eq!(got, code, "{mode:?} exit {code}; stderr: {err}");
        }
    }
}

#[test]
fn death_by_signal_is_128_plus_n() {
    let py_kill = |sig: i32| format!("import os; os.kill(os.getpid(), {sig})");
    for mode in MODES {
        for (args, want) in [
            (vec!["sh".into(), "-c".into(), "kill -TERM $$".into()], 143),
            (vec!["sh".into(), "-c".into(), "kill -KILL $$".into()], 137),
            (vec!["python3".into(), "-c".into(), py_kill(40)], 128 + 40),
            // SIGRTMIN+3, systemd's stop signal.
            (vec!["python3".into(), "-c".into(), py_kill(37)], 128 + 37),
        ] {
            if want > 128 + 31 && skip_under_emulation("qemu-user renumbers real-time signals") {
                continue;
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (got, _, err) = run(mode, &args);
            assert_eq!(got, want, "{mode:?} {args:?}; stderr: {err}");
        }
    }
}

#[test]
fn command_not_found_is_127() {
    for mode in MODES {
        // `reaper ''` too: an empty name is a command that cannot be found.
        for cmd in ["/nonexistent/dir/reaper-test-cmd", "reaper-test-no-such-command", ""] {
            let (code, out, err) = run(mode, &[cmd, "arg"]);
            assert_eq!(code, 127, "{mode:?} {cmd}: {err}");
            assert!(out.is_empty(), "{out}");
            assert_eq!(err.lines().count(), 1, "{mode:?} {cmd}: {err:?}");
            assert!(
                err.contains(&format!("reaper: cannot run '{cmd}'"))
                    && err.contains("No such file or directory"),
                "{mode:?}: message should name the command and the OS error: {err:?}"
            );
        }
    }
}

#[test]
fn command_not_executable_is_126() {
    let dir = tempdir("noexec");
    let file = dir.join("not-executable");
    std::fs::write(&file, "#!/bin/sh\nexit 0\n").unwrap();
    // 0644 has no execute bit at all, so even root gets EACCES.
    let dir_s = dir.to_str().unwrap();
    let file_s = file.to_str().unwrap();
    for mode in MODES {
        for cmd in [dir_s, file_s] {
            let (code, _, err) = run(mode, &[cmd]);
            assert_eq!(code, 126, "{mode:?} {cmd}: {err}");
            assert!(
                err.contains(&format!("reaper: cannot run '{cmd}'")) && err.contains("Permission denied"),
                "{mode:?}: {err:?}"
            );
        }
    }
}

#[test]
fn command_killed_from_outside_is_137() {
    for mode in MODES {
        let mut r = Reaper::start(mode, &mut reaper_cmd(mode, ["sleep", "30"]));
        let cmd = r.command_pid();
        assert!(wait_until(LONG, || comm(cmd).as_deref() == Some("sleep")));
        kill(cmd, libc::SIGKILL);
        assert_eq!(r.code(LONG), 137, "{mode:?}");
    }
}

#[test]
fn remap_exit() {
    for mode in MODES {
        for (args, want) in [
            (&["-e", "143", "sh", "-c", "kill -TERM $$"][..], 0),
            (&["-e", "143", "sh", "-c", "exit 142"], 142),
            (&["-e", "143", "sh", "-c", "kill -KILL $$"], 137),
            (&["-e", "3", "sh", "-c", "exit 3"], 0),
            (&["-e", "3", "sh", "-c", "exit 4"], 4),
            (&["-e", "3", "sh", "-c", "exit 0"], 0),
            (&["-e", "3", "-e", "4", "sh", "-c", "exit 4"], 0),
            (&["--remap-exit", "255", "sh", "-c", "exit 255"], 0),
            (&["-e", "0", "sh", "-c", "exit 1"], 1),
        ] {
            let (code, _, err) = run(mode, args);
            assert_eq!(code, want, "{mode:?} {args:?}: {err}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Signals.

#[test]
fn signals_reach_the_command() {
    let sigs = [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGWINCH,
        libc::SIGCONT,
        libc::SIGALRM,
        37, // SIGRTMIN+3 in the kernel's numbering
    ];
    for mode in MODES {
        let dir = tempdir("signals");
        let log = dir.join("cmd.log");
        let mut r = Reaper::start(mode, &mut reaper_cmd(mode, signal_probe(&log, Some(libc::SIGTERM))));
        assert!(wait_for_file(&ready(&log), LONG), "{mode:?}: probe never ready");
        let mut want = Vec::new();
        for &sig in &sigs {
            if sig > 31 && skip_under_emulation("qemu-user renumbers real-time signals") {
                continue;
            }
            want.push(sig);
            r.signal(sig);
            assert!(
                wait_for_signal(&log, sig),
                "{mode:?}: signal {sig} never reached the command; log {:?}",
                probe_log(&log)
            );
        }
        // TERM too: the probe exits 0 on it.
        r.signal(libc::SIGTERM);
        assert_eq!(r.code(LONG), 0, "{mode:?}");
        want.push(libc::SIGTERM);
        assert_eq!(probe_log(&log), want, "{mode:?}: each exactly once, in order");
    }
}

/// The command is a probe and has a background probe (the grandchild) in its process group.
fn probe_family(mode: Mode, dir: &Path, flags: &[&str]) -> (Reaper, PathBuf, PathBuf) {
    let cmd_log = dir.join("cmd.log");
    let grand_log = dir.join("grand.log");
    let cmd_probe = signal_probe(&cmd_log, Some(libc::SIGTERM));
    let grand_probe = signal_probe(&grand_log, Some(libc::SIGTERM));
    let mut args = os_args(flags);
    args.extend(os_args([
        "--",
        "sh",
        "-c",
        r#"python3 -c "$1" & exec python3 -c "$2""#,
        "sh",
        &grand_probe[2],
        &cmd_probe[2],
    ]));
    let r = Reaper::start(mode, &mut reaper_cmd(mode, args));
    assert!(wait_for_file(&ready(&cmd_log), LONG), "{mode:?}: command probe");
    assert!(wait_for_file(&ready(&grand_log), LONG), "{mode:?}: grandchild probe");
    (r, cmd_log, grand_log)
}

#[test]
fn process_group_flag_reaches_grandchild() {
    for mode in MODES {
        let dir = tempdir("pgroup");
        let (mut r, cmd_log, grand_log) = probe_family(mode, &dir, &["-g"]);
        let cmd = r.command_pid();
        let grand = children(cmd)[0];
        assert_eq!(pgrp(grand), Some(cmd), "{mode:?}: grandchild in the command's group");
        r.signal(libc::SIGUSR1);
        assert!(wait_for_signal(&cmd_log, libc::SIGUSR1), "{mode:?}: command");
        assert!(
            wait_for_signal(&grand_log, libc::SIGUSR1),
            "{mode:?}: with -g the grandchild must get the signal"
        );
        r.signal(libc::SIGTERM);
        assert_eq!(r.code(LONG), 0, "{mode:?}");
        assert_eq!(probe_log(&grand_log), [libc::SIGUSR1, libc::SIGTERM]);
    }
}

#[test]
fn without_process_group_flag_grandchild_is_spared() {
    for mode in MODES {
        let dir = tempdir("no-pgroup");
        let (mut r, cmd_log, grand_log) = probe_family(mode, &dir, &[]);
        let cmd = r.command_pid();
        let grand = children(cmd)[0];
        assert_eq!(pgrp(grand), Some(cmd), "{mode:?}: grandchild in the command's group");
        r.signal(libc::SIGUSR1);
        assert!(wait_for_signal(&cmd_log, libc::SIGUSR1), "{mode:?}: command");
        // A barrier: USR2 sent straight to the grandchild. Had reaper signalled the group, the
        // grandchild's USR1 would have been pending before this USR2, and Python runs pending
        // handlers in signal-number order, so USR1 would be logged first.
        kill(grand, libc::SIGUSR2);
        assert!(wait_for_signal(&grand_log, libc::SIGUSR2), "{mode:?}: barrier");
        assert_eq!(
            probe_log(&grand_log),
            [libc::SIGUSR2],
            "{mode:?}: without -g only the command gets the signal"
        );
        r.signal(libc::SIGTERM);
        assert_eq!(r.code(LONG), 0, "{mode:?}");
        assert_eq!(probe_log(&cmd_log), [libc::SIGUSR1, libc::SIGTERM]);
    }
}

#[test]
fn pdeathsig_reaches_command_when_parent_dies_pid1() {
    // The intermediate process is `unshare` itself: reaper's parent.
    let mode = Mode::Pid1;
    let dir = tempdir("pdeath-pid1");
    let log = dir.join("cmd.log");
    let mut args = os_args(["-p", "USR1", "--"]);
    args.extend(os_args(signal_probe(&log, Some(libc::SIGTERM))));
    let mut r = Reaper::start(mode, &mut reaper_cmd(mode, args));
    assert!(wait_for_file(&ready(&log), LONG));
    let reaper = r.pid;
    // Once unshare is dead, `Reaper` cannot clean up: the guard's SIGKILL ends the namespace.
    let mut guard = Guard::default();
    guard.record_pid(reaper);
    kill(r.child.id() as i32, libc::SIGKILL);
    assert!(
        wait_for_signal(&log, libc::SIGUSR1),
        "the command never saw USR1 after reaper's parent died; log {:?}",
        probe_log(&log)
    );
    assert_eq!(probe_log(&log), [libc::SIGUSR1]);
    // reaper outlived its parent and still forwards: TERM ends the probe, and reaper with it.
    assert!(alive(reaper));
    kill(reaper, libc::SIGTERM);
    assert!(wait_until(LONG, || !alive(reaper)), "reaper did not exit");
    assert_eq!(r.code(LONG), 137, "unshare was SIGKILLed");
}

#[test]
fn pdeathsig_reaches_command_when_parent_dies_subreaper() {
    let dir = tempdir("pdeath");
    let log = dir.join("cmd.log");
    // `; exit $?` keeps sh from exec'ing reaper: sh stays reaper's parent.
    let mut parent = Command::new("sh");
    parent
        .args(["-c", r#""$@"; exit $?"#, "sh", REAPER, "-p", "USR1", "--"])
        .args(signal_probe(&log, Some(libc::SIGTERM)))
        .stdin(Stdio::null())
        .process_group(0);
    let mut parent = parent.spawn().unwrap();
    let sh = parent.id() as i32;
    let mut guard = Guard::default();
    guard.record_pid(sh);
    let mut reaper = 0;
    assert!(wait_until(LONG, || {
        reaper = children(sh).first().copied().unwrap_or(0);
        reaper != 0 && comm(reaper).as_deref() == Some("reaper")
    }));
    guard.record_pid(reaper);
    assert!(wait_for_file(&ready(&log), LONG));
    let mut cmd = 0;
    assert!(wait_until(LONG, || {
        cmd = children(reaper).first().copied().unwrap_or(0);
        cmd != 0
    }));
    kill(sh, libc::SIGKILL);
    assert_eq!(exit_code(parent.wait().unwrap()), 137);
    assert!(
        wait_for_signal(&log, libc::SIGUSR1),
        "the command never saw USR1 after reaper's parent died; log {:?}",
        probe_log(&log)
    );
    assert_ne!(ppid(reaper), Some(sh));
    assert_eq!(probe_log(&log), [libc::SIGUSR1]);
    kill(reaper, libc::SIGTERM);
    assert!(wait_until(LONG, || !alive(reaper)), "reaper did not exit");
    assert!(!alive(cmd));
}

// ---------------------------------------------------------------------------------------
// Reaping.

/// 200 short-lived orphans and one long-lived one; reaper must adopt and reap them all
/// while the command still runs.
fn orphans_leave_no_zombie(mode: Mode) {
    let dir = tempdir("orphans");
    let body = format!(
        "for i in $(seq 200); do (sleep 0.01 &); done\n\
         (sleep 31 &)\n\
         touch '{done}'\n\
         exec sleep 30\n",
        done = dir.join("done").display()
    );
    let sh = script(&dir, "orphans.sh", &body);
    let mut r = Reaper::start(mode, &mut reaper_cmd(mode, [OsStr::new("sh"), sh.as_os_str()]));
    let cmd = r.command_pid();
    assert!(wait_for_file(&dir.join("done"), LONG), "{mode:?}: loop");
    // The long-lived orphan was re-parented to reaper.
    let mut orphan = None;
    assert!(
        wait_until(LONG, || {
            orphan = children(r.pid).into_iter().find(|&p| cmdline(p) == [b"sleep".to_vec(), b"31".to_vec()]);
            orphan.is_some()
        }),
        "{mode:?}: the orphan was not adopted by reaper; reaper's children {:?}",
        children(r.pid)
    );
    let orphan = orphan.unwrap();
    assert_eq!(ppid(orphan), Some(r.pid));
    // Every short-lived orphan is gone, reaped: only the command and the long orphan remain.
    let mut left = Vec::new();
    let clean = wait_until(LONG, || {
        left = descendants(r.pid);
        zombies_under(r.pid).is_empty() && left.len() == 2
    });
    assert!(clean, "{mode:?}: {} zombies under reaper, descendants {left:?}", zombies_under(r.pid).len());
    assert!(left.contains(&cmd) && left.contains(&orphan));
    assert!(alive(cmd), "{mode:?}: checked before the command exits");
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(LONG), 143, "{mode:?}");
}

both_modes!(orphans_leave_no_zombie);

/// The command starts an intermediate `sh` that backgrounds `sleep 32`, writes its pid and
/// exits: the sleep is orphaned. Returns (reaper, orphan pid, stderr). The orphan's stdio is
/// /dev/null so that it does not hold reaper's stderr pipe open.
fn orphan_under(args: &[&str], dir: &Path) -> (Reaper, i32, JoinHandle<String>) {
    let body = format!(
        "sh -c 'sleep 32 >/dev/null 2>&1 & echo $! > \"$1/orphan.tmp\"; mv \"$1/orphan.tmp\" \"$1/orphan\"' sh '{d}'\n\
         touch '{d}/done'\n\
         exec sleep 30\n",
        d = dir.display()
    );
    let sh = script(dir, "orphan.sh", &body);
    let mut all = os_args(args);
    all.extend(os_args([OsStr::new("sh"), sh.as_os_str()]));
    let mut cmd = reaper_cmd(Mode::Subreaper, all);
    cmd.stderr(Stdio::piped());
    let mut r = Reaper::start(Mode::Subreaper, &mut cmd);
    let err = capture_stderr(&mut r);
    assert!(wait_for_file(&dir.join("done"), LONG));
    let orphan: i32 = std::fs::read_to_string(dir.join("orphan")).unwrap().trim().parse().unwrap();
    (r, orphan, err)
}

#[test]
fn no_subreaper_does_not_adopt_orphans() {
    // Control: by default the orphan is adopted by reaper.
    let dir = tempdir("subreaper");
    let (mut r, orphan, err) = orphan_under(&[], &dir);
    let mut guard = Guard::default();
    guard.record_pid(orphan);
    assert!(
        wait_until(LONG, || ppid(orphan) == Some(r.pid)),
        "control: orphan's parent is {:?}, reaper is {}",
        ppid(orphan),
        r.pid
    );
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(LONG), 143);
    assert!(!err.join().unwrap().contains("reaping won't work"));

    let dir = tempdir("no-subreaper");
    let (mut r, orphan, err) = orphan_under(&["--no-subreaper"], &dir);
    guard.record_pid(orphan);
    // The intermediate sh has exited (done exists), so the orphan has its new parent by now.
    assert!(alive(orphan));
    assert_ne!(ppid(orphan), Some(r.pid), "--no-subreaper: adopted anyway");
    assert!(!descendants(r.pid).contains(&orphan));
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(LONG), 143);
    let err = err.join().unwrap();
    assert!(err.contains("zombie reaping won't work"), "missing warning in stderr: {err:?}");
    assert!(err.starts_with("reaper: WARN "), "{err:?}");
}

#[test]
fn warn_on_reap_names_pid_name_and_ending() {
    for mode in MODES {
        let dir = tempdir("warn");
        for name in ["orph-exit", "orph-kill"] {
            std::os::unix::fs::symlink("/bin/sh", dir.join(name)).unwrap();
        }
        // Each orphan writes its own pid (as reaper sees it) and ends in its own way.
        let body = format!(
            "D='{d}'\n\
             ( \"$D/orph-exit\" -c 'echo $$ > \"$1/a.tmp\"; mv \"$1/a.tmp\" \"$1/a.pid\"; exit 5' x \"$D\" & )\n\
             ( \"$D/orph-kill\" -c 'echo $$ > \"$1/b.tmp\"; mv \"$1/b.tmp\" \"$1/b.pid\"; kill -KILL $$' x \"$D\" & )\n\
             exec sleep 30\n",
            d = dir.display()
        );
        let sh = script(&dir, "warn.sh", &body);
        for warn in [true, false] {
            let mut args = os_args(if warn { &["-w"][..] } else { &[] });
            args.extend(os_args([OsStr::new("sh"), sh.as_os_str()]));
            let mut cmd = reaper_cmd(mode, args);
            cmd.stderr(Stdio::piped());
            let mut r = Reaper::start(mode, &mut cmd);
            let err = capture_stderr(&mut r);
            let cmd_pid = r.command_pid();
            let read_pid = |f: &str| {
                let mut pid = String::new();
                assert!(wait_until(LONG, || {
                    pid = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
                    !pid.is_empty()
                }));
                pid.trim().to_owned()
            };
            let (a, b) = (read_pid("a.pid"), read_pid("b.pid"));
            // Both orphans reaped: only the command is left.
            assert!(
                wait_until(LONG, || descendants(r.pid) == [cmd_pid]),
                "{mode:?}: left {:?}",
                descendants(r.pid)
            );
            r.signal(libc::SIGTERM);
            assert_eq!(r.code(LONG), 143, "{mode:?}");
            let err = err.join().unwrap();
            let exit_line = format!("reaper: WARN reaped pid {a} (orph-exit): exited with status 5");
            let kill_line = format!("reaper: WARN reaped pid {b} (orph-kill): killed by SIGKILL");
            if warn {
                let lines: Vec<&str> = err.lines().collect();
                assert!(lines.contains(&exit_line.as_str()), "{mode:?}: {err}");
                assert!(lines.contains(&kill_line.as_str()), "{mode:?}: {err}");
                // Not for the command itself.
                assert!(!err.contains("(sleep)"), "{mode:?}: {err}");
                assert_eq!(err.matches("reaped pid").count(), 2, "{mode:?}: {err}");
            } else {
                assert!(!err.contains("reaped pid"), "{mode:?} without -w: {err}");
            }
            for f in ["a.pid", "b.pid"] {
                std::fs::remove_file(dir.join(f)).unwrap();
            }
        }
    }
}

/// An orphan names itself `\nreaper: ERROR forged` (the kernel keeps 15 bytes of it) and
/// exits: `-w` logs it on one line, the newline shown as `?`, and forges no ERROR line.
fn warn_on_reap_shows_a_name_with_a_newline_on_one_line(mode: Mode) {
    let dir = tempdir("forged");
    let orphan = r#"
import os, sys
d = sys.argv[1]
middle = os.fork()
if middle == 0:
    if os.fork() == 0:
        with open("/proc/self/comm", "wb") as f:
            f.write(b"\nreaper: ERROR forged")
        with open(d + "/orphan.tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(d + "/orphan.tmp", d + "/orphan.pid")
        os._exit(7)
    os._exit(0)
os.waitpid(middle, 0)
os.execvp("sleep", ["sleep", "1000"])
"#;
    let mut cmd = reaper_cmd(mode, [OsStr::new("-w"), "python3".as_ref(), "-c".as_ref(), orphan.as_ref()]);
    cmd.arg(&dir).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut r = Reaper::start(mode, &mut cmd);
    let err = capture_stderr(&mut r);
    let path = dir.join("orphan.pid");
    assert!(wait_for_file(&path, LONG), "{mode:?}: the orphan never ran");
    let pid = std::fs::read_to_string(&path).unwrap();
    let cmd_pid = r.command_pid();
    assert!(
        wait_until(LONG, || descendants(r.pid) == [cmd_pid] && comm(cmd_pid).as_deref() == Some("sleep")),
        "{mode:?}: left {:?}",
        descendants(r.pid)
    );
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(LONG), 143, "{mode:?}");
    let err = err.join().unwrap();
    let named: Vec<&str> = err.lines().filter(|l| l.contains("reaper: ERROR")).collect();
    assert_eq!(
        named,
        [format!("reaper: WARN reaped pid {pid} (?reaper: ERROR ): exited with status 7")],
        "{err}"
    );
}

both_modes!(warn_on_reap_shows_a_name_with_a_newline_on_one_line);

// ---------------------------------------------------------------------------------------
// Idle cost.

fn no_wakeups_while_idle(mode: Mode) {
    let mut r = Reaper::start(mode, &mut reaper_cmd(mode, ["sleep", "30"]));
    let cmd = r.command_pid();
    assert!(wait_until(LONG, || comm(cmd).as_deref() == Some("sleep")));
    assert!(wait_quiet(r.pid, LONG), "{mode:?}: reaper never went idle");
    let before = context_switches(r.pid);
    // The measurement window.
    std::thread::sleep(Duration::from_secs(2));
    let after = context_switches(r.pid);
    assert_eq!(after - before, 0, "{mode:?}: reaper woke up while the command slept");
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(LONG), 143);
}

both_modes!(no_wakeups_while_idle);

// ---------------------------------------------------------------------------------------
// What the command inherits.

/// (SigBlk, SigIgn) of `cat /proc/self/status`, run by `cmd`.
fn cat_signal_state(cmd: &mut Command) -> (u64, u64) {
    let (code, out, err) = run_with_timeout(cmd, LONG);
    assert_eq!(code, 0, "{cmd:?}: {err}");
    (hex_field(&out, "SigBlk"), hex_field(&out, "SigIgn"))
}

#[test]
fn signal_mask_and_ignored_set_are_preserved() {
    let status = ["cat", "/proc/self/status"];
    for mode in MODES {
        for (block, ignore) in [
            (&[libc::SIGTERM][..], &[libc::SIGINT][..]),
            // Nothing at all: reaper must not leak its own TTIN/TTOU or SIGPIPE settings.
            (&[], &[]),
            // A real-time signal in the mask; TTOU (which reaper itself ignores) and PIPE.
            (&[libc::SIGUSR2, 40], &[libc::SIGTTOU, libc::SIGHUP, libc::SIGPIPE]),
        ] {
            if block.contains(&40) && skip_under_emulation("qemu-user renumbers real-time signals") {
                continue;
            }
            let want_blk = block.iter().map(|&s| bit(s)).fold(0, |a, b| a | b);
            let want_ign = ignore.iter().map(|&s| bit(s)).fold(0, |a, b| a | b);
            let mut direct = direct_cmd(mode, &status);
            with_signal_state(&mut direct, block, ignore);
            let baseline = cat_signal_state(&mut direct);
            assert_eq!(baseline, (want_blk, want_ign), "{mode:?}: the wrapper itself");
            let mut via = reaper_cmd(mode, status);
            with_signal_state(&mut via, block, ignore);
            let got = cat_signal_state(&mut via);
            assert_eq!(
                got, baseline,
                "{mode:?} block {block:?} ignore {ignore:?}: (SigBlk, SigIgn) {got:#x?} != {baseline:#x?}"
            );
        }
    }
}

#[test]
fn command_is_terminal_foreground_group() {
    for mode in MODES {
        let line = match mode {
            Mode::Pid1 => {
                format!("unshare --pid --fork --mount-proc --kill-child {REAPER} -- cat /proc/self/stat")
            }
            Mode::Subreaper => format!("{REAPER} -- cat /proc/self/stat"),
        };
        let mut script = Command::new("script");
        script.args(["-qec", &line, "/dev/null"]).stdin(Stdio::null()).process_group(0);
        let (code, out, err) = run_with_timeout(&mut script, LONG);
        assert_eq!(code, 0, "{mode:?}: {out} {err}");
        let stat = out
            .lines()
            .find(|l| l.contains(" (cat) "))
            .unwrap_or_else(|| panic!("{mode:?}: no stat line in {out:?}"));
        let pid = stat.split(' ').next().unwrap().to_owned();
        let f: Vec<&str> = stat[stat.rfind(") ").unwrap() + 2..].split_whitespace().collect();
        let (pgrp, tty, tpgid) = (f[2], f[4], f[5]);
        assert_ne!(tty, "0", "{mode:?}: cat has no controlling terminal: {stat}");
        assert_eq!(pgrp, pid, "{mode:?}: the command leads its own group: {stat}");
        assert_eq!(tpgid, pid, "{mode:?}: and that group is the foreground: {stat}");
    }
}

#[test]
fn argv_passed_unchanged() {
    let print = "import sys; sys.stdout.buffer.write(open('/proc/self/cmdline', 'rb').read())";
    let args: Vec<OsString> = [
        &b"plain"[..],
        b"with space",
        b"",
        b"  two  leading",
        b"tab\there",
        b"new\nline",
        b"\xff\xfe not utf-8 \x80",
        b"-v",
        b"--",
        b"--help",
        b"-e",
        b"256",
        b"",
        b"$HOME '\"\\",
    ]
    .iter()
    .map(|a| OsString::from_vec(a.to_vec()))
    .collect();
    for mode in MODES {
        let mut all = os_args(["--", "python3", "-c", print]);
        all.extend(args.iter().cloned());
        let (code, out, err) = run_bytes(&mut reaper_cmd(mode, all));
        assert_eq!(code, 0, "{mode:?}: {err}");
        let got = split_nul(&out);
        assert!(got.len() > args.len(), "{mode:?}: {got:?}");
        let tail = &got[got.len() - args.len()..];
        let want: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        assert_eq!(tail, want, "{mode:?}");
        assert_eq!(got[got.len() - args.len() - 1], print.as_bytes(), "{mode:?}");
    }
}

#[test]
fn environment_passed_unchanged() {
    let vars: Vec<(OsString, OsString)> = [
        (&b"PATH"[..], &b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"[..]),
        (b"EMPTY", b""),
        (b"SPACES", b" a  b "),
        (b"NEWLINE", b"x\ny"),
        (b"EQUALS", b"a=b=c"),
        (b"NON_UTF8", b"\xff\xfe\x80"),
        (b"K\xe9Y", b"non-utf-8 key"),
        (b"LISTEN_FDS", b"3"),
        (b"REAPER_WARN_ON_REAP", b"0"),
        (b"TINI_SUBREAPER", b""),
    ]
    .iter()
    .map(|(k, v)| (OsString::from_vec(k.to_vec()), OsString::from_vec(v.to_vec())))
    .collect();
    let mut want: Vec<Vec<u8>> =
        vars.iter().map(|(k, v)| [k.as_bytes(), b"=", v.as_bytes()].concat()).collect();
    want.sort();
    for mode in MODES {
        let mut cmd = reaper_cmd(mode, ["/usr/bin/env", "-0"]);
        cmd.env_clear().envs(vars.iter().map(|(k, v)| (k, v)));
        let (code, out, err) = run_bytes(&mut cmd);
        assert_eq!(code, 0, "{mode:?}: {err}");
        let mut got = split_nul(&out);
        got.sort();
        assert_eq!(
            got.iter().map(|e| String::from_utf8_lossy(e)).collect::<Vec<_>>(),
            want.iter().map(|e| String::from_utf8_lossy(e)).collect::<Vec<_>>(),
            "{mode:?}"
        );
        assert_eq!(got, want, "{mode:?}: bytes");
    }
}

/// Like run_with_timeout, with stdout as bytes.
fn run_bytes(cmd: &mut Command) -> (i32, Vec<u8>, String) {
    run_captured(cmd, LONG).unwrap_or_else(|| panic!("{cmd:?} did not finish within {LONG:?}"))
}

#[test]
fn listen_pid_naming_reaper_becomes_the_commands_pid() {
    let show = r#"echo "$LISTEN_PID $$ $PPID""#;
    let fields = |out: &str| -> Vec<String> { out.split_whitespace().map(String::from).collect() };

    // PID 1: LISTEN_PID=1 is reaper.
    let mut cmd = reaper_cmd(Mode::Pid1, ["sh", "-c", show]);
    cmd.env("LISTEN_PID", "1");
    let (code, out, err) = run_with_timeout(&mut cmd, LONG);
    assert_eq!(code, 0, "{err}");
    let f = fields(&out);
    assert_eq!(f.len(), 3, "{out:?}");
    assert_eq!(f[2], "1", "reaper is the command's parent: {out:?}");
    assert_eq!(f[0], f[1], "LISTEN_PID must be the command's own pid: {out:?}");

    // Not PID 1: a wrapper puts its own pid in LISTEN_PID and execs reaper (same pid).
    let dir = tempdir("listen");
    let wrapper = script(&dir, "listen.sh", "LISTEN_PID=$$\nexport LISTEN_PID\nexec \"$@\"\n");
    let mut cmd = Command::new("sh");
    cmd.arg(&wrapper).args([REAPER, "--", "sh", "-c", show]).stdin(Stdio::null()).process_group(0);
    let (code, out, err) = run_with_timeout(&mut cmd, LONG);
    assert_eq!(code, 0, "{err}");
    let f = fields(&out);
    assert_eq!(f.len(), 3, "{out:?}");
    assert_eq!(f[0], f[1], "LISTEN_PID must be the command's own pid: {out:?}");
    assert_ne!(f[0], f[2], "{out:?}");
}

#[test]
fn listen_pid_naming_someone_else_is_unchanged() {
    let show = r#"echo "$LISTEN_PID""#;
    for (mode, value) in
        [(Mode::Pid1, "3"), (Mode::Subreaper, "1"), (Mode::Subreaper, "not a pid"), (Mode::Subreaper, "")]
    {
        let mut cmd = reaper_cmd(mode, ["sh", "-c", show]);
        cmd.env("LISTEN_PID", value);
        let (code, out, err) = run_with_timeout(&mut cmd, LONG);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, format!("{value}\n"), "{mode:?}");
    }
}

#[test]
fn reaper_moves_to_root_but_command_keeps_cwd() {
    for mode in MODES {
        let dir = tempdir("cwd");
        let mut cmd = reaper_cmd(mode, ["sleep", "30"]);
        cmd.current_dir(&dir);
        let mut r = Reaper::start(mode, &mut cmd);
        let cmd_pid = r.command_pid();
        // Forked in / (reaper moved first), it goes back to the caller's directory just
        // before exec.
        assert!(wait_until(LONG, || comm(cmd_pid).as_deref() == Some("sleep")), "{mode:?}: never exec'd");
        let cwd = |pid: i32| std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
        assert!(
            wait_until(LONG, || cwd(r.pid).as_deref() == Some(Path::new("/"))),
            "{mode:?}: reaper's cwd is {:?}",
            cwd(r.pid)
        );
        assert_eq!(cwd(cmd_pid), Some(dir.clone()), "{mode:?}");
        r.signal(libc::SIGTERM);
        assert_eq!(r.code(LONG), 143);
    }
}

/// reaper is out of the caller's directory before the command starts: the command, looking
/// at its parent at once, sees reaper in / (it moved after the exec was confirmed, 42 runs in
/// 200 saw the old directory). Many runs: the window was short.
fn the_command_never_sees_reaper_in_the_callers_directory(mode: Mode) {
    let dir = tempdir("cwd-first");
    for run in 0..100 {
        let mut cmd = reaper_cmd(mode, ["sh", "-c", "readlink /proc/$PPID/cwd; pwd"]);
        cmd.current_dir(&dir);
        let (code, out, err) = run_with_timeout(&mut cmd, LONG);
        assert_eq!(
            (code, out.as_str()),
            (0, format!("/\n{}\n", dir.display()).as_str()),
            "{mode:?} run {run}: {err}"
        );
    }
}

both_modes!(the_command_never_sees_reaper_in_the_callers_directory);

/// prctl(2) refused (a seccomp profile): reaper says it could not become a subreaper, and
/// that orphans will not come to it (the check asks prctl too, refused as well), and runs the
/// command all the same.
#[test]
fn a_refused_subreaper_prctl_is_said_and_the_command_runs() {
    let Some(strace) = which("strace").filter(|_| !emulated()) else {
        return skip("strace (and not under qemu-user)");
    };
    let mut cmd = Command::new(strace);
    cmd.args(["-qq", "-o", "/dev/null", "-e", "trace=prctl", "-e", "inject=prctl:error=EPERM"])
        .args([REAPER, "--", "sh", "-c", "exit 3"]);
    let (code, _, err) = run_with_timeout(&mut cmd, LONG);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("reaper: WARN cannot become a child subreaper: "), "{err}");
    assert!(err.contains("zombie reaping won't work"), "{err}");
}

/// getcwd(2) refused (a seccomp profile): reaper cannot name the caller's directory to send
/// the command back to, so it does not leave it: the command still starts there.
#[test]
fn a_refused_getcwd_keeps_reaper_and_the_command_in_the_callers_directory() {
    let Some(strace) = which("strace").filter(|_| !emulated()) else {
        return skip("strace (and not under qemu-user)");
    };
    let dir = tempdir("cwd-refused");
    let mut cmd = Command::new(strace);
    cmd.args(["-qq", "-o", "/dev/null", "-e", "trace=getcwd", "-e", "inject=getcwd:error=EPERM"])
        .args([REAPER, "--", "sh", "-c", "readlink /proc/$PPID/cwd; pwd"])
        .current_dir(&dir);
    let (code, out, err) = run_with_timeout(&mut cmd, LONG);
    assert_eq!((code, out), (0, format!("{0}\n{0}\n", dir.display())), "{err}");
    remove_tree(&dir);
}

/// A failed start (an --also that cannot be exec'd) kills and reaps what was started, but does
/// not wait for ever for a child it cannot see: here one that reaper inherited (the shell
/// forked it before exec'ing reaper) while /proc hides reaper's tasks (a tmpfs over
/// /proc/PID/task, in a private mount namespace). Subreaper mode: it needs the exec.
#[test]
fn a_failed_start_does_not_wait_for_ever_for_a_child_it_cannot_see() {
    if !is_root() {
        return eprintln!(
            "a_failed_start_does_not_wait_for_ever_for_a_child_it_cannot_see: skipped: needs root (mount)"
        );
    }
    let dir = tempdir("start-fail-hidden");
    let script = format!(
        "mount -t tmpfs none /proc/$$/task || exit 99; (setsid sleep 600 & echo $! > hidden.pid; wait) >/dev/null 2>&1 & \
         while [ ! -s hidden.pid ]; do sleep 0.01; done; exec {REAPER} --also /nonexistent -- sleep 600"
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]).current_dir(&dir).process_group(0);
    let (code, _, err) = run_with_timeout(&mut cmd, LONG);
    if let Some(pid) =
        std::fs::read_to_string(dir.join("hidden.pid")).ok().and_then(|p| p.trim().parse().ok())
    {
        kill_tree(pid);
    }
    if code == 99 {
        return eprintln!(
            "a_failed_start_does_not_wait_for_ever_for_a_child_it_cannot_see: skipped: cannot mount over /proc here: {err}"
        );
    }
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("children left that would not go within 2s"), "{err}");
}

/// reaper inherits SIGCHLD set to SIG_IGN (exec keeps ignored signals, and a parent that
/// does not care about its children may well have set it): the kernel then reaps reaper's
/// children by itself and sends no SIGCHLD, so reaper would neither wake up nor learn the
/// command's status. The command must still inherit the ignored SIGCHLD (it gets exactly the
/// ignored set reaper inherited).
fn inherited_ignored_sigchld(mode: Mode) {
    // The wrapper runs where reaper would: as PID 1 it execs reaper, so reaper is PID 1.
    let wrapper = "import os, signal, sys\n\
                   signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n\
                   os.execvp(sys.argv[1], sys.argv[1:])";
    let launcher = |args: &[&str]| {
        let mut all = vec!["python3", "-c", wrapper];
        all.extend_from_slice(args);
        direct_cmd(mode, &all)
    };
    let mut cmd = launcher(&[REAPER, "--", "sh", "-c", "exit 3"]);
    let (code, _, err) = run_captured(&mut cmd, Duration::from_secs(10)).unwrap_or_else(|| {
        panic!(
            "{mode:?}: reaper hung after its command exited because it inherited \
             SIGCHLD=SIG_IGN (the kernel auto-reaped the command, no SIGCHLD arrived)"
        )
    });
    assert_eq!(code, 3, "{mode:?}: {err}");

    if skip_under_emulation("qemu-user hands exec'd programs its own ignored-signal set") {
        return;
    }
    let baseline = cat_signal_state(&mut launcher(&["cat", "/proc/self/status"]));
    assert_ne!(baseline.1 & bit(libc::SIGCHLD), 0, "the wrapper ignores SIGCHLD");
    let got = cat_signal_state(&mut launcher(&[REAPER, "cat", "/proc/self/status"]));
    assert_eq!(got, baseline, "{mode:?}: the command's (SigBlk, SigIgn)");
}

both_modes!(inherited_ignored_sigchld);

/// reaper's stderr is a pipe nobody reads any more (a log collector that went away, `| head`):
/// each log line reaper writes raises SIGPIPE against reaper itself. That signal is reaper's
/// own business, not one sent to it, and must not be forwarded: SIGPIPE kills most commands.
fn own_sigpipe_not_forwarded(mode: Mode) {
    let dir = tempdir("sigpipe");
    let log = dir.join("cmd.log");
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors that we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors are fresh and ours.
    let (rd, wr) = unsafe {
        use std::os::fd::FromRawFd;
        (std::os::fd::OwnedFd::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1]))
    };
    drop(rd);
    // -v: reaper logs "started ..." right after the command is running.
    let mut args = os_args(["-v", "--"]);
    args.extend(os_args(signal_probe(&log, Some(libc::SIGTERM))));
    let mut cmd = reaper_cmd(mode, args);
    cmd.stderr(Stdio::from(wr));
    // Not Reaper::start: if the command dies at once, so does the whole thing.
    let child = cmd.spawn().unwrap();
    let mut r = Reaper { child, pid: 0, mode };
    let mut exited = None;
    assert!(wait_until(LONG, || {
        exited = r.child.try_wait().ok().flatten();
        ready(&log).exists() || exited.is_some()
    }));
    if let Some(st) = exited {
        panic!(
            "{mode:?}: reaper exited ({}) before the command was even set up (the command got \
             signals {:?}): reaper forwarded the SIGPIPE its own stderr write raised",
            exit_code(st),
            probe_log(&log)
        );
    }
    r.pid = match mode {
        Mode::Subreaper => r.child.id() as i32,
        Mode::Pid1 => children(r.child.id() as i32)[0],
    };
    // Any SIGPIPE from the log write is pending on reaper's thread before this TERM is read
    // (thread-directed signals are dequeued first), so had it been forwarded, the probe
    // would log 13 before 15.
    r.signal(libc::SIGTERM);
    let code = r.code(LONG);
    assert_eq!(
        (code, probe_log(&log)),
        (0, vec![libc::SIGTERM]),
        "{mode:?}: reaper forwarded the SIGPIPE its own stderr write raised"
    );
}

both_modes!(own_sigpipe_not_forwarded);

// ---------------------------------------------------------------------------------------
// Command line.

/// Through the binary, a usage error on the command line and one in the environment: exit 2,
/// one line naming the problem, the hint, nothing on stdout, and the command never runs.
/// Every other rejection is checked in-process (tests/options.rs: `Error::report`, which is
/// what main prints, and `Error::exit_code`).
#[test]
fn usage_errors_exit_2_with_a_hint() {
    let dir = tempdir("usage");
    let marker = dir.join("ran");
    let marker = marker.to_str().unwrap();
    for (args, env, names) in [
        (&["--bogus", "touch", marker][..], None, "--bogus"),
        (&["touch", marker], Some(("REAPER_SUBREAPER", "maybe")), "REAPER_SUBREAPER"),
    ] {
        let mut cmd = reaper_cmd(Mode::Subreaper, args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let (code, out, err) = run_with_timeout(&mut cmd, LONG);
        assert_eq!(code, 2, "{args:?} {env:?}: {err}");
        assert!(out.is_empty(), "{args:?}: stdout {out:?}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?} {env:?}: {err:?}");
        assert!(lines[0].starts_with("reaper: ") && lines[0].contains(names), "{args:?} {env:?}: {err:?}");
        assert_eq!(lines[1], "Try 'reaper --help'.");
    }
    // A command that had been started would have touched the file at once.
    assert!(!wait_for_file(Path::new(marker), Duration::from_secs(1)), "the command ran");
}

/// `--version` and `--help` print on stdout and exit 0 (which flags mean help is in-process).
#[test]
fn help_and_version_exit_0() {
    let version = reaper::options::VERSION;
    assert!(version.starts_with("reaper 0.1.0 - git."), "{version:?}");
    for args in [&["--version"][..], &["-V"], &["-g", "-V"]] {
        let (code, out, err) = run(Mode::Subreaper, args);
        assert_eq!((code, out.as_str(), err.as_str()), (0, version, ""), "{args:?}");
    }
    for args in [&["--help"][..], &["-h"], &["-v", "--help"]] {
        let (code, out, err) = run(Mode::Subreaper, args);
        assert_eq!((code, out.as_str(), err.as_str()), (0, reaper::options::HELP, ""), "{args:?}");
    }
    // After COMMAND, --help belongs to the command.
    let (code, out, _) = run(Mode::Subreaper, &["sh", "-c", "echo \"$0\"", "--help"]);
    assert_eq!((code, out.as_str()), (0, "--help\n"));
}

// ---------------------------------------------------------------------------------------
// How the command is started: clone(CLONE_VM|CLONE_VFORK), else fork.

/// `reaper ARGS` (plain process) under `strace -e FAULTS` (reaper only, not its children):
/// (exit code, stdout, stderr, strace's log).
fn straced(dir: &Path, faults: &[&str], args: &[&str]) -> (i32, String, String, String) {
    let strace = which("strace").expect("strace");
    let (code, out, err) = run_with_timeout(&mut straced_cmd(&strace, dir, faults, args), LONG);
    let log = std::fs::read_to_string(dir.join("strace.log")).unwrap_or_default();
    (code, out, err, log)
}

/// The exit code, the messages of a command that cannot be found or run, LISTEN_PID and the
/// signal state, checked against whatever starts the command under `faults`.
fn start_keeps_its_promises(dir: &Path, faults: &[&str]) -> Vec<String> {
    let mut logs = Vec::new();
    let (code, _, err, log) = straced(dir, faults, &["sh", "-c", "exit 7"]);
    assert_eq!(code, 7, "{err}");
    logs.push(log);
    for (cmd, want, why) in [
        ("reaper-test-no-such-command", 127, "No such file or directory"),
        ("/nonexistent/dir/reaper-test-cmd", 127, "No such file or directory"),
        ("/", 126, "Permission denied"),
    ] {
        let (code, _, err, log) = straced(dir, faults, &[cmd]);
        assert_eq!((code, err.trim()), (want, format!("reaper: cannot run '{cmd}': {why}").as_str()));
        logs.push(log);
    }
    // A wrapper puts its own pid in LISTEN_PID and execs reaper (same pid, traced the same).
    let wrapper = script(dir, "listen.sh", "LISTEN_PID=$$\nexport LISTEN_PID\nexec \"$@\"\n");
    let mut cmd = Command::new(which("strace").unwrap());
    cmd.args(["-o", "/dev/null"]).args(faults).arg("sh").arg(&wrapper);
    cmd.args([REAPER, "--", "sh", "-c", r#"echo "$LISTEN_PID $$""#]).stdin(Stdio::null()).process_group(0);
    let (code, out, err) = run_with_timeout(&mut cmd, LONG);
    assert_eq!(code, 0, "{err}");
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!((f.len(), f.first()), (2, f.get(1)), "LISTEN_PID must be the command's own pid: {out:?}");
    let mut via = Command::new(which("strace").unwrap());
    via.args(["-o", "/dev/null"]).args(faults).args([REAPER, "cat", "/proc/self/status"]);
    via.stdin(Stdio::null()).process_group(0);
    with_signal_state(&mut via, &[libc::SIGTERM], &[libc::SIGINT, libc::SIGTTOU]);
    let want = (bit(libc::SIGTERM), bit(libc::SIGINT) | bit(libc::SIGTTOU));
    assert_eq!(cat_signal_state(&mut via), want);
    logs
}

/// By default the command is started by clone(CLONE_VM|CLONE_VFORK): no page tables copied.
#[test]
fn the_command_is_started_by_clone_vm_vfork() {
    if which("strace").is_none() || emulated() {
        return skip("strace (and not under qemu-user, whose CLONE_VFORK is a fork)");
    }
    let dir = tempdir("spawn-clone");
    let faults = ["-e", "trace=clone,clone3,fork,vfork"];
    for log in start_keeps_its_promises(&dir, &faults) {
        let calls: Vec<&str> =
            log.lines().filter(|l| !l.starts_with("+++") && !l.starts_with("---")).collect();
        assert_eq!(calls.len(), 1, "{log}");
        assert!(
            calls[0].contains("flags=CLONE_VM|CLONE_VFORK|SIGCHLD") && !calls[0].contains("= -1"),
            "{log}"
        );
    }
    remove_tree(&dir);
}

/// clone refused (EPERM, as a seccomp filter answers; injected with strace on the first clone
/// only): the same command starts through fork, with the same exit codes, messages,
/// LISTEN_PID and signal state.
#[test]
fn a_refused_clone_falls_back_to_fork() {
    if which("strace").is_none() || emulated() {
        return skip("strace (and not under qemu-user)");
    }
    let dir = tempdir("spawn-fork");
    let faults = ["-e", "trace=clone,clone3,fork,vfork", "-e", "inject=clone:error=EPERM:when=1"];
    for log in start_keeps_its_promises(&dir, &faults) {
        let calls: Vec<&str> =
            log.lines().filter(|l| !l.starts_with("+++") && !l.starts_with("---")).collect();
        assert_eq!(calls.len(), 2, "{log}");
        assert!(calls[0].contains("CLONE_VM|CLONE_VFORK") && calls[0].contains("EPERM"), "{log}");
        // glibc's fork is a clone without CLONE_VM, musl's (x86_64) the fork system call.
        assert!(!calls[1].contains("CLONE_VM") && !calls[1].contains("= -1"), "{log}");
    }
    remove_tree(&dir);
}

/// No memory for the clone child's stack (mmap's ENOMEM injected on that one mmap, found by a
/// first run): the command starts through fork.
#[test]
fn no_memory_for_the_clone_stack_falls_back_to_fork() {
    if which("strace").is_none() || emulated() {
        return skip("strace (and not under qemu-user)");
    }
    let dir = tempdir("spawn-mmap");
    let count = ["-e", "trace=mmap,clone,fork"];
    let (code, _, err, log) = straced(&dir, &count, &["sh", "-c", "exit 7"]);
    assert_eq!(code, 7, "{err}");
    let mmaps: Vec<&str> = log.lines().filter(|l| l.starts_with("mmap(")).collect();
    let nth = 1 + mmaps.iter().position(|l| l.contains("MAP_STACK")).expect(&log);
    let inject = format!("inject=mmap:error=ENOMEM:when={nth}");
    let (code, _, err, log) =
        straced(&dir, &["-e", "trace=mmap,clone,fork", "-e", &inject], &["sh", "-c", "exit 7"]);
    assert_eq!(code, 7, "{err}");
    assert!(log.contains("MAP_STACK, -1, 0) = -1 ENOMEM"), "{log}");
    assert!(!log.contains("CLONE_VM"), "{log}");
    let (code, _, err, _) = straced(&dir, &["-e", &inject], &["reaper-test-no-such-command"]);
    assert_eq!(
        (code, err.trim()),
        (127, "reaper: cannot run 'reaper-test-no-such-command': No such file or directory")
    );
    remove_tree(&dir);
}

/// The clone child's stack is mapped once and kept for the next start (here an --also
/// command's): each start used to map its own and unmap it right after the clone, a munmap(2)
/// between the command's start and reaper's first wait.
#[test]
fn the_clone_stack_is_mapped_once() {
    if which("strace").is_none() || emulated() {
        return skip("strace (and not under qemu-user, whose CLONE_VFORK is a fork)");
    }
    let dir = tempdir("spawn-stack");
    let trace = ["-e", "trace=mmap,munmap,clone"];
    let (code, _, err, log) = straced(&dir, &trace, &["--also", "true", "--", "sh", "-c", "exit 7"]);
    assert_eq!(code, 7, "{err}");
    let clones = log.lines().filter(|l| l.starts_with("clone(") && !l.contains("= -1")).count();
    let stacks: Vec<&str> = log.lines().filter(|l| l.contains("MAP_STACK")).collect();
    assert_eq!((clones, stacks.len()), (2, 1), "{log}");
    let base = stacks[0].rsplit("= ").next().unwrap_or_default().trim();
    assert!(!log.lines().any(|l| l.starts_with(&format!("munmap({base},"))), "{log}");
    remove_tree(&dir);
}

/// A working directory longer than the 256 bytes reaper first reads it into: the rest of
/// PATH_MAX comes from the heap, and the command still runs there.
#[test]
fn a_long_working_directory_is_still_the_command_s() {
    let mut dir = tempdir("long-cwd");
    let top = dir.clone();
    for _ in 0..6 {
        dir.push("d".repeat(60));
    }
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    assert!(dir.as_os_str().len() > 360);
    let mut cmd = Command::new(REAPER);
    cmd.args(["--", "sh", "-c", "pwd -P"]).current_dir(&dir).stdin(Stdio::null());
    let (code, out, err) = run_with_timeout(&mut cmd, LONG);
    assert_eq!((code, out.trim_end()), (0, dir.to_str().unwrap()), "{err}");
    remove_tree(&top);
}

/// The OOM counter's memory cgroup is found without /proc/self/mountinfo (some 20 us of the
/// kernel's for a new process, between the command's start and reaper's first wait) where
/// the hierarchy is mounted at the usual place and shows reaper's cgroup below it: the
/// cgroup's own cgroup.procs, listing reaper, says so.
#[test]
fn the_memory_cgroup_is_found_without_mountinfo() {
    let Some(cgroup) = usual_memory_cgroup_to_trace() else { return };
    let dir = tempdir("cgroup-usual");
    let (code, _, err, log) = straced(&dir, &["-e", "trace=open,openat"], &["true"]);
    assert_eq!(code, 0, "{err}");
    assert!(log.contains(&format!("\"{cgroup}/cgroup.procs\"")), "{log}");
    assert!(!log.contains("mountinfo"), "{log}");
    remove_tree(&dir);
}

/// A guess the kernel will not confirm (statfs refused, as a seccomp profile may) is not taken:
/// mountinfo finds the cgroup as before, and the OOM counter is still read from it.
#[test]
fn a_refused_statfs_falls_back_to_mountinfo() {
    let Some(cgroup) = usual_memory_cgroup_to_trace() else { return };
    let dir = tempdir("cgroup-statfs");
    let faults = ["-e", "trace=open,openat,statfs", "-e", "inject=statfs:error=EPERM"];
    let (code, _, err, log) = straced(&dir, &faults, &["true"]);
    assert_eq!(code, 0, "{err}");
    assert!(log.contains("statfs(") && log.contains("EPERM"), "{log}");
    assert!(log.contains("/proc/self/mountinfo"), "{log}");
    assert!(!log.contains(&format!("\"{cgroup}/cgroup.procs\"")), "{log}");
    assert!(
        ["memory.oom_control", "memory.events"].iter().any(|f| log.contains(&format!("\"{cgroup}/{f}\""))),
        "{log}"
    );
    remove_tree(&dir);
}

/// This process's memory cgroup below the usual mount point, if it is there (what reaper,
/// started from here, guesses first) and strace can watch reaper look for it; else a skip line.
fn usual_memory_cgroup_to_trace() -> Option<String> {
    if which("strace").is_none() || emulated() {
        skip("strace (and not under qemu-user)");
        return None;
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    own.lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| format!("/sys/fs/cgroup/memory{p}")))
        .or_else(|| own.lines().find_map(|l| l.strip_prefix("0::").map(|p| format!("/sys/fs/cgroup{p}"))))
        .map(|d| d.trim_end_matches('/').to_owned())
        .filter(|d| Path::new(d).join("cgroup.procs").exists())
        .or_else(|| {
            skip("no memory cgroup of this process's below the usual mount point");
            None
        })
}

/// On the way from the command's exit to reaper's: the exited command is looked at once
/// (waitid's WNOWAIT, for its pidfd and whether SIGKILL ended it), reaped, and one more look
/// says no child is left. (Each took two: the batch's look and reap_one's own; and a second
/// batch ran after the state had become the exit.)
#[test]
fn the_exit_path_looks_once() {
    if which("strace").is_none() || emulated() {
        return skip("strace (and not under qemu-user)");
    }
    let dir = tempdir("exit-path");
    let (code, _, err, log) = straced(&dir, &["-e", "trace=waitid,wait4"], &["sh", "-c", "exit 3"]);
    assert_eq!(code, 3, "{err}");
    let calls: Vec<&str> = log.lines().filter(|l| l.starts_with("wait")).collect();
    let reaped = calls.iter().position(|l| l.starts_with("wait4(")).expect(&log);
    let pid = calls[reaped].trim_start_matches("wait4(").split(',').next().unwrap_or_default();
    let looked = calls[..reaped].iter().filter(|l| l.contains(&format!("si_pid={pid},"))).count();
    assert_eq!((looked, calls.len() - reaped - 1), (1, 1), "{log}");
    assert!(calls[reaped + 1].contains("ECHILD"), "{log}");
    remove_tree(&dir);
}

/// Hostile review: the reap batch runs only on news (a SIGCHLD above all), and one waitid
/// refused once (injected ENOMEM on the batch the command's SIGCHLD brought) lost the exit
/// for good: no second SIGCHLD comes, and reaper waited for ever. The batch is tried again.
#[test]
fn a_reap_batch_that_failed_once_is_tried_again() {
    if which("strace").is_none() || emulated() {
        return skip("strace (and not under qemu-user)");
    }
    let dir = tempdir("reap-retry");
    // The command exits once reaper's start-up batch (the first waitid) is behind it, so the
    // second waitid is the one its SIGCHLD brings.
    let mut cmd = Command::new(which("strace").unwrap());
    cmd.args(["-o", "strace.log", "-e", "trace=waitid", "-e", "inject=waitid:error=ENOMEM:when=2", REAPER])
        .args(["--", "sh", "-c", "while [ ! -e go ]; do sleep 0.02; done; exit 7"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().unwrap();
    let log = dir.join("strace.log");
    let first = wait_until(LONG, || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("waitid(")));
    std::fs::write(dir.join("go"), "").unwrap();
    let status = wait_child(&mut child, LONG);
    if status.is_none() {
        kill_tree(child.id() as i32);
        let _ = child.wait();
    }
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
    assert!(first, "no first waitid");
    assert_eq!(status.map(exit_code), Some(7), "{err}");
    remove_tree(&dir);
}

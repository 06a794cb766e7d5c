//! Issue 4: `--daemon` (fork, setsid, fork, pidfile, start report) and hosting programs that
//! daemonize themselves (`--wait-all`, `--follow-pidfile`). Real processes throughout.

mod common;

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

const LONG: Duration = Duration::from_secs(20);

/// The daemon's pid from its pidfile (which must hold exactly `PID\n`), recorded in the
/// test's guard so the daemon is cleaned up even once the pidfile is gone.
fn daemon_pid(g: &mut Guard, pidfile: &Path) -> i32 {
    let text =
        std::fs::read_to_string(pidfile).unwrap_or_else(|e| panic!("reading {}: {e}", pidfile.display()));
    let pid: i32 = text.trim().parse().unwrap_or_else(|_| panic!("pidfile holds {text:?}"));
    assert_eq!(text, format!("{pid}\n"), "pidfile format");
    g.record_pid(pid);
    pid
}

/// What the foreground `reaper` process did.
#[derive(Debug)]
struct Fg {
    code: i32,
    out: String,
    err: String,
    took: Duration,
}

/// Runs the foreground process to its exit with stdout/stderr on pipes. The daemon must not
/// keep them open: reading them must reach EOF soon after the foreground exits.
fn run_fg(cmd: &mut Command) -> Fg {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let t0 = Instant::now();
    let mut child = cmd.spawn().expect("spawn reaper");
    let reader = |mut pipe: Box<dyn Read + Send>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            let _ = tx.send(s);
        });
        rx
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let Some(st) = wait_child(&mut child, LONG) else {
        // SAFETY: kill(2) of the foreground's own process group (reaper_cmd sets one).
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        let _ = child.wait();
        panic!("{cmd:?}: the foreground did not exit within {LONG:?}");
    };
    let took = t0.elapsed();
    let eof = |rx: mpsc::Receiver<String>, what: &str| {
        rx.recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("{cmd:?}: the daemon keeps the caller's {what} open"))
    };
    Fg { code: exit_code(st), out: eof(out, "stdout"), err: eof(err, "stderr"), took }
}

/// `reaper ARGS...` as a plain process started from `dir`.
fn reaper_in(dir: &Path, args: &[&str]) -> Command {
    let mut c = reaper_cmd(Mode::Subreaper, args);
    c.current_dir(dir);
    c
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Starts `reaper --daemon --pidfile PIDFILE EXTRA... -- COMMAND...`, asserts the foreground
/// exits 0 promptly (not waiting for COMMAND), and returns the guard (the pidfile exists by then).
fn start_daemon(dir: &Path, pidfile: &Path, extra: &[&str], command: &[&str]) -> Guard {
    let guard = Guard::pidfile(pidfile);
    let mut args = vec!["--daemon", "--pidfile", s(pidfile)];
    args.extend(extra);
    args.push("--");
    args.extend(command);
    let fg = run_fg(&mut reaper_in(dir, &args));
    assert_eq!(fg.code, 0, "foreground failed: {fg:?}");
    assert_eq!(fg.out, "", "the foreground prints nothing on success");
    assert!(fg.took < Duration::from_secs(5), "the foreground took {:?} to return", fg.took);
    assert!(pidfile.exists(), "no pidfile when the foreground returned: {fg:?}");
    guard
}

/// The daemon's (single) child: the command.
fn command_of(daemon: i32) -> i32 {
    let mut kids = Vec::new();
    assert!(
        wait_until(LONG, || {
            kids = children(daemon);
            !kids.is_empty()
        }),
        "the daemon has no child"
    );
    assert_eq!(kids.len(), 1, "the daemon's children: {kids:?}");
    assert!(wait_until(LONG, || settled(kids[0])), "the command never settled");
    kids[0]
}

fn umask_of(pid: i32) -> String {
    status_field(pid, "Umask").expect("Umask in /proc/PID/status")
}

/// Stops the daemon with TERM and checks it went away and removed its pidfile.
fn stop_daemon(g: &mut Guard, pidfile: &Path) {
    let pid = daemon_pid(g, pidfile);
    // SAFETY: kill(2) of the daemon this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert!(wait_gone(pid, LONG), "the daemon did not exit on TERM");
    assert!(wait_until(Duration::from_secs(5), || !pidfile.exists()), "the pidfile outlived the daemon");
}

// ---------------------------------------------------------------------------------------------
// --daemon

#[test]
fn daemon_detaches_cleanly() {
    let dir = tempdir("daemon");
    let pidfile = dir.join("reaper.pid");
    let mut g = start_daemon(&dir, &pidfile, &[], &["sleep", "1000"]);
    let pid = daemon_pid(&mut g, &pidfile);
    assert!(alive(pid), "the daemon is not running");
    assert_eq!(comm(pid).as_deref(), Some("reaper"));

    let stat = stat_fields(pid).unwrap();
    let (ppid, pgrp, sid, tty) = (&stat[1], &stat[2], &stat[3], &stat[4]);
    assert_ne!(sid, &pid.to_string(), "the daemon is a session leader");
    assert_ne!(pgrp, &pid.to_string(), "the daemon is a process group leader");
    let test_sid = stat_fields(std::process::id() as i32).unwrap()[3].clone();
    assert_ne!(sid, &test_sid, "the daemon stayed in the caller's session");
    assert_eq!(tty, "0", "the daemon has a controlling terminal");
    assert_ne!(ppid, &std::process::id().to_string(), "the daemon is still the caller's child");

    assert_eq!(proc_link(pid, "cwd"), Some(PathBuf::from("/")), "daemon cwd");
    assert_eq!(umask_of(pid), "0022", "default umask");
    for fd in 0..3 {
        assert_eq!(proc_link(pid, &format!("fd/{fd}")), Some(PathBuf::from("/dev/null")), "daemon fd {fd}");
    }

    // The command is the daemon's child, in the same clean state.
    let cmd = command_of(pid);
    assert_eq!(comm(cmd).as_deref(), Some("sleep"));
    assert_eq!(proc_link(cmd, "cwd"), Some(PathBuf::from("/")), "command cwd");
    assert_eq!(umask_of(cmd), "0022", "command umask");
    assert_eq!(open_fds(cmd), vec![0, 1, 2], "the command's descriptors");
    for fd in 0..3 {
        assert_eq!(proc_link(cmd, &format!("fd/{fd}")), Some(PathBuf::from("/dev/null")), "command fd {fd}");
    }
    assert_eq!(stat_fields(cmd).unwrap()[3], *sid, "the command is in the daemon's session");

    stop_daemon(&mut g, &pidfile);
    assert!(wait_gone(cmd, LONG), "the command outlived the daemon");
}

/// TERM to the pidfile pid reaches the command; `--umask 027` applies to daemon and command.
#[test]
fn daemon_forwards_term_and_applies_umask() {
    let dir = tempdir("daemon-term");
    let pidfile = dir.join("reaper.pid");
    let log = dir.join("probe.log");
    let probe = signal_probe(&log, Some(libc::SIGTERM));
    let probe: Vec<&str> = probe.iter().map(String::as_str).collect();
    let mut g = start_daemon(&dir, &pidfile, &["--umask", "027"], &probe);
    let pid = daemon_pid(&mut g, &pidfile);
    assert_eq!(umask_of(pid), "0027", "daemon umask");
    let cmd = command_of(pid);
    assert_eq!(umask_of(cmd), "0027", "command umask");
    assert!(wait_for_file(&log.with_extension("ready"), LONG), "the probe never got ready");
    stop_daemon(&mut g, &pidfile);
    assert_eq!(probe_log(&log), vec![libc::SIGTERM], "signals the command got");
}

/// `--stdout`/`--stderr` (relative to the caller's directory) collect the command's output,
/// appending; new log files are created 0640.
#[test]
fn daemon_log_files() {
    let dir = tempdir("daemon-logs");
    let pidfile = dir.join("reaper.pid");
    std::fs::write(dir.join("out.log"), "old line\n").unwrap();
    let mut g = start_daemon(
        &dir,
        &pidfile,
        &["--stdout", "out.log", "--stderr", "err.log"],
        &["sh", "-c", "echo to-stdout; echo to-stderr >&2; exec sleep 1000"],
    );
    let pid = daemon_pid(&mut g, &pidfile);
    let (out, err) = (dir.join("out.log"), dir.join("err.log"));
    assert_eq!(proc_link(pid, "fd/1"), Some(out.clone()), "daemon stdout");
    assert_eq!(proc_link(pid, "fd/2"), Some(err.clone()), "daemon stderr");
    assert_eq!(proc_link(pid, "fd/0"), Some(PathBuf::from("/dev/null")));
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(wait_until(LONG, || read(&out).contains("to-stdout")), "stdout log: {:?}", read(&out));
    assert!(wait_until(LONG, || read(&err).contains("to-stderr")), "stderr log: {:?}", read(&err));
    assert_eq!(read(&out), "old line\nto-stdout\n", "the stdout log is appended to");
    let caller_umask = u32::from_str_radix(&umask_of(std::process::id() as i32), 8).unwrap();
    let mode = std::fs::metadata(&err).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640 & !caller_umask, "mode of the created log file");
    stop_daemon(&mut g, &pidfile);
}

/// `--chdir DIR` is the command's working directory; a relative `--pidfile` is named from the
/// caller's directory, and still removed at exit although the daemon changed directory.
#[test]
fn daemon_chdir_and_relative_pidfile() {
    let dir = tempdir("daemon-chdir");
    let work = dir.join("work");
    std::fs::create_dir(&work).unwrap();
    let pidfile = dir.join("rel.pid");
    let mut g = Guard::pidfile(&pidfile);
    let fg = run_fg(&mut reaper_in(
        &dir,
        &[
            "--daemon",
            "--pidfile",
            "rel.pid",
            "--chdir",
            s(&work),
            "--",
            "sh",
            "-c",
            "pwd > cwd.txt; exec sleep 1000",
        ],
    ));
    assert_eq!(fg.code, 0, "{fg:?}");
    assert!(pidfile.exists(), "relative pidfile not in the caller's directory");
    let pid = daemon_pid(&mut g, &pidfile);
    let cmd = command_of(pid);
    assert_eq!(proc_link(cmd, "cwd"), Some(work.clone()), "command cwd");
    assert!(wait_until(LONG, || work.join("cwd.txt").exists()), "the command did not run in --chdir");
    stop_daemon(&mut g, &pidfile);
}

// ---------------------------------------------------------------------------------------------
// Pidfile semantics.

#[test]
fn daemon_second_start_is_refused() {
    let dir = tempdir("daemon-twice");
    let pidfile = dir.join("reaper.pid");
    let mut g = start_daemon(&dir, &pidfile, &[], &["sleep", "1000"]);
    let pid = daemon_pid(&mut g, &pidfile);
    let fg = run_fg(&mut reaper_in(
        &dir,
        &[
            "--daemon",
            "--pidfile",
            s(&pidfile),
            "--",
            "sh",
            "-c",
            &format!("touch {}/second-ran; exec sleep 1000", s(&dir)),
        ],
    ));
    assert_eq!(fg.code, 1, "{fg:?}");
    assert!(fg.err.contains(&format!("already running (pid {pid})")), "message: {:?}", fg.err);
    assert!(alive(pid), "the first daemon was disturbed");
    assert_eq!(daemon_pid(&mut g, &pidfile), pid, "the pidfile changed");
    assert!(
        !wait_for_file(&dir.join("second-ran"), Duration::from_secs(1)),
        "the second start ran its command"
    );
    stop_daemon(&mut g, &pidfile);
}

/// A pidfile nobody holds a lock on is taken over, whatever it contains.
#[test]
fn daemon_takes_over_stale_pidfile() {
    let dir = tempdir("daemon-stale");
    let pidfile = dir.join("reaper.pid");
    // A pid that cannot exist (above pid_max), and a longer text than any real pid.
    std::fs::write(&pidfile, "99999999\nleftover junk from an old run\n").unwrap();
    let mut g = start_daemon(&dir, &pidfile, &[], &["sleep", "1000"]);
    let pid = daemon_pid(&mut g, &pidfile); // also checks the file holds exactly "PID\n"
    assert!(alive(pid));
    assert_eq!(comm(pid).as_deref(), Some("reaper"));
    stop_daemon(&mut g, &pidfile);
}

/// A start failure as the foreground reports it: exit 1, exactly one line `reaper: ...`
/// naming `needle`, nothing on stdout.
fn assert_start_error(fg: &Fg, needle: &str, what: &str) {
    assert_eq!(fg.code, 1, "{what}: {fg:?}");
    assert_eq!(fg.out, "", "{what}: {fg:?}");
    let lines: Vec<&str> = fg.err.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("reaper: ") && lines[0].contains(needle),
        "{what}: want one line 'reaper: ...{needle}...', got {:?}",
        fg.err
    );
}

/// A pidfile that is a symlink is refused (O_NOFOLLOW), in the foreground and as a daemon:
/// the target is neither followed, created nor truncated, and the command does not run.
#[test]
fn pidfile_symlink_is_refused() {
    let dir = tempdir("pidfile-symlink");
    let _clean = Guard::dir(&dir);
    let target = dir.join("precious");
    std::fs::write(&target, "precious data\n").unwrap();
    let dangling = dir.join("not-there");
    let ran = dir.join("ran");
    let touch = format!("touch {}; exec sleep 1000", s(&ran));
    for (link, to) in [(dir.join("a.pid"), &target), (dir.join("b.pid"), &dangling)] {
        std::os::unix::fs::symlink(to, &link).unwrap();
        for daemon in [false, true] {
            let mut args = vec!["--pidfile", s(&link), "--", "sh", "-c", &touch];
            if daemon {
                args.insert(0, "--daemon");
            }
            let fg = run_fg(&mut reaper_in(&dir, &args));
            assert_start_error(&fg, "symbolic link", &format!("{args:?}"));
            assert!(
                std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(),
                "{args:?}: the symlink was replaced"
            );
        }
    }
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "precious data\n",
        "the symlink's target was modified"
    );
    assert!(!dangling.exists(), "the dangling symlink's target was created");
    // Had a command run, it would have touched the file at once: a second is plenty.
    assert!(!wait_for_file(&ran, Duration::from_secs(1)), "a command ran");
}

/// A pidfile locked by another process is left byte-identical (never truncated before the
/// lock is ours), and reaper says who holds it; in the foreground and as a daemon.
#[test]
fn locked_pidfile_is_left_untouched() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let dir = tempdir("pidfile-locked");
    let _clean = Guard::dir(&dir);
    let path = dir.join("reaper.pid");
    let content = b"4242\n";
    std::fs::write(&path, content).unwrap();
    let holder = File::open(&path).unwrap();
    // SAFETY: flock(2) on our own descriptor.
    assert_eq!(unsafe { libc::flock(holder.as_raw_fd(), libc::LOCK_EX) }, 0);
    let before = std::fs::metadata(&path).unwrap();
    for daemon in [false, true] {
        let mut args = vec!["--pidfile", s(&path), "sh", "-c", "exit 0"];
        if daemon {
            args.insert(0, "-d");
        }
        let fg = run_fg(&mut reaper_in(&dir, &args));
        assert_start_error(&fg, "already running (pid 4242)", &format!("{args:?}"));
        assert_eq!(std::fs::read(&path).unwrap(), content, "{args:?}");
    }
    let after = std::fs::metadata(&path).unwrap();
    assert_eq!(
        (before.ino(), before.mtime(), before.mtime_nsec()),
        (after.ino(), after.mtime(), after.mtime_nsec())
    );
    drop(holder);
}

// ---------------------------------------------------------------------------------------------
// Start failures are reported by the foreground.

#[test]
fn daemon_exec_failure_is_reported() {
    let dir = tempdir("daemon-exec");
    let plain = dir.join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let missing = dir.join("missing-program");
    for (prog, want) in [(s(&missing), 127), ("reaper-test-no-such-command", 127), (s(&plain), 126)] {
        let fg = run_fg(&mut reaper_in(&dir, &["--daemon", "--", prog]));
        assert_eq!(fg.code, want, "{prog}: {fg:?}");
        assert!(
            fg.err.contains("cannot run") && fg.err.contains(prog),
            "{prog}: message on the foreground's stderr: {:?}",
            fg.err
        );
        assert!(fg.took < Duration::from_secs(5), "{prog}: took {:?}", fg.took);
    }
}

/// A reaper that failed to start its command does not leave its pidfile behind, in daemon
/// mode or in the foreground ("removed when the daemon exits").
#[test]
fn exec_failure_removes_pidfile() {
    for daemon in [true, false] {
        let dir = tempdir("exec-pidfile");
        let pidfile = dir.join("reaper.pid");
        let _g = Guard::pidfile(&pidfile);
        let mut args = vec!["--pidfile", s(&pidfile), "--", "/nonexistent/program"];
        if daemon {
            args.insert(0, "--daemon");
        }
        let fg = run_fg(&mut reaper_in(&dir, &args));
        assert_eq!(fg.code, 127, "{args:?}: {fg:?}");
        assert!(
            wait_until(Duration::from_secs(2), || !pidfile.exists()),
            "{args:?}: the pidfile was left behind, naming a dead process: {:?}",
            std::fs::read_to_string(&pidfile)
        );
    }
}

/// A file or directory that cannot be opened is a start failure: exit 1 with one line that
/// names the option and the path, and the C library's words for the error (no errno number).
#[test]
fn daemon_bad_log_file_fails() {
    let dir = tempdir("daemon-badlog");
    let enoent = reaper::error::os(std::io::Error::from_raw_os_error(libc::ENOENT));
    for (args, want) in [
        (&["--daemon", "--stdout", "/nonexistent/dir/out.log"][..], "--stdout /nonexistent/dir/out.log"),
        (&["--daemon", "--stderr", "/nonexistent/dir/err.log"], "--stderr /nonexistent/dir/err.log"),
        (&["--pidfile", "/nonexistent/dir/r.pid"], "--pidfile /nonexistent/dir/r.pid"),
        (&["--daemon", "--pidfile", "/nonexistent/dir/r.pid"], "--pidfile /nonexistent/dir/r.pid"),
        (&["--daemon", "--chdir", "/nonexistent/dir"], "--chdir /nonexistent/dir"),
    ] {
        let mut args = args.to_vec();
        args.extend(["--", "sleep", "1000"]);
        let fg = run_fg(&mut reaper_in(&dir, &args));
        assert_eq!(
            (fg.code, fg.err.as_str()),
            (1, format!("reaper: {want}: {enoent}\n").as_str()),
            "{args:?}"
        );
    }
}

/// `--stdout /root/out.log` as a user who cannot write there: the option, the path and
/// strerror's words, on one line (issue 23: the option was missing, and "(os error 13)" ended it).
#[test]
fn log_file_permission_denied_names_the_option() {
    if !need_root("log_file_permission_denied_names_the_option") {
        return;
    }
    let dir = tempdir("daemon-eacces");
    let _clean = Guard::dir(&dir);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let private = dir.join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let log = private.join("out.log");
    let eacces = reaper::error::os(std::io::Error::from_raw_os_error(libc::EACCES));
    for flag in ["--stdout", "--stderr"] {
        let mut cmd = reaper_in(&dir, &["--daemon", flag, s(&log), "--", "sleep", "1000"]);
        cmd.uid(NOBODY).gid(NOBODY);
        let fg = run_fg(&mut cmd);
        let want = format!("reaper: {flag} {}: {eacces}\n", log.display());
        assert_eq!((fg.code, fg.err.as_str()), (1, want.as_str()), "{flag}");
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile files (issue 19): --stdout, --stderr and --pidfile where other users can write.
//
// All are start-up failures or successes decided before the first fork, on a path that does
// not depend on the PID (and `--daemon` as the PID 1 of a namespace would end the namespace
// when it detaches): one mode, the plain process, covers them.

const NOBODY: u32 = 65534;

/// A fresh directory like /tmp: sticky and world-writable.
fn sticky_dir(tag: &str) -> PathBuf {
    let dir = tempdir(tag);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

/// Root's 0600 file `secret` in a private directory of its own, and its content.
fn root_secret(dir: &Path) -> (PathBuf, &'static str) {
    let private = dir.join("root-only");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let secret = private.join("secret");
    std::fs::write(&secret, "root's secret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    (secret, "root's secret\n")
}

/// `--daemon FLAG PATH -- sh -c 'touch RAN; echo leaked; echo leaked >&2'` from `dir`.
fn daemon_writing(dir: &Path, flag: &str, path: &Path) -> Fg {
    let script = format!("touch {}; echo leaked; echo leaked >&2; exec sleep 1000", s(&dir.join("ran")));
    run_fg(&mut reaper_in(dir, &["--daemon", flag, s(path), "--", "sh", "-c", &script]))
}

/// A symbolic link planted by another user in a sticky world-writable directory is not
/// followed, as the file itself or as a directory on the way: root's 0600 file stays
/// unchanged, nothing is created through the link, and the command never runs.
#[test]
fn planted_symlink_in_a_sticky_dir_is_not_followed() {
    if !need_root("planted_symlink_in_a_sticky_dir_is_not_followed") {
        return;
    }
    let dir = sticky_dir("planted-link");
    let _clean = Guard::dir(&dir);
    let (secret, content) = root_secret(&dir);
    let plant = |name: &str, to: &Path| {
        std::os::unix::fs::symlink(to, dir.join(name)).unwrap();
        std::os::unix::fs::lchown(dir.join(name), Some(NOBODY), Some(NOBODY)).unwrap();
        dir.join(name)
    };
    let file_link = plant("app.log", &secret);
    let dir_link = plant("logs", secret.parent().unwrap());
    for flag in ["--stdout", "--stderr"] {
        for (path, link) in [(file_link.clone(), "app.log"), (dir_link.join("app.log"), "logs")] {
            let fg = daemon_writing(&dir, flag, &path);
            let what = format!("{flag} {}", path.display());
            assert_start_error(&fg, &format!("{link} is a symbolic link owned by uid 65534"), &what);
            assert!(fg.err.contains(flag), "{what}: the message names the flag: {:?}", fg.err);
        }
    }
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        content,
        "root's file was written through the link"
    );
    assert!(!secret.with_file_name("app.log").exists(), "a file was created through the directory link");
    assert!(!wait_for_file(&dir.join("ran"), Duration::from_secs(1)), "a command ran");
}

/// A file another user created in a sticky directory (mode 0666, so they could read what
/// the daemon writes) is refused as a log and as a pidfile, and left as it was.
#[test]
fn another_users_file_in_a_sticky_dir_is_refused() {
    if !need_root("another_users_file_in_a_sticky_dir_is_refused") {
        return;
    }
    let dir = sticky_dir("theirs");
    let _clean = Guard::dir(&dir);
    let theirs = dir.join("app.log");
    std::fs::write(&theirs, "").unwrap();
    std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o666)).unwrap();
    let want = "belongs to uid 65534 in a directory other users can write to";
    for flag in ["--stdout", "--stderr"] {
        let fg = daemon_writing(&dir, flag, &theirs);
        assert_start_error(&fg, want, flag);
    }
    for daemon in [false, true] {
        let mut args = vec!["--pidfile", s(&theirs), "--", "sh", "-c", "exit 0"];
        if daemon {
            args.insert(0, "--daemon");
        }
        assert_start_error(&run_fg(&mut reaper_in(&dir, &args)), want, &format!("{args:?}"));
    }
    assert_eq!(std::fs::read(&theirs).unwrap(), b"", "their file was written to");
    assert!(!wait_for_file(&dir.join("ran"), Duration::from_secs(1)), "a command ran");
}

/// A FIFO nobody reads: exit 1 at once with one line, not a hang that TERM cannot end
/// (reaper's signals are blocked by then).
#[test]
fn fifo_without_reader_is_an_error_not_a_hang() {
    let dir = tempdir("fifo-no-reader");
    let _clean = Guard::dir(&dir);
    let fifo = dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for flag in ["--stdout", "--stderr"] {
        let fg = daemon_writing(&dir, flag, &fifo);
        assert_start_error(&fg, "is a FIFO with no reader", flag);
        assert!(fg.took < Duration::from_secs(5), "{flag}: took {:?}", fg.took);
    }
    assert!(!wait_for_file(&dir.join("ran"), Duration::from_secs(1)), "a command ran");
}

/// A FIFO with a reader gets the command's output, and the command's descriptor is an
/// ordinary blocking one (the non-blocking open does not leak into its writes).
#[test]
fn fifo_with_a_reader_gets_the_output() {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tempdir("fifo-reader");
    let fifo = dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut reader = File::options().read(true).custom_flags(libc::O_NONBLOCK).open(&fifo).unwrap();
    let pidfile = dir.join("reaper.pid");
    let mut g =
        start_daemon(&dir, &pidfile, &["--stdout", s(&fifo)], &["sh", "-c", "echo to-fifo; exec sleep 1000"]);
    let mut got = Vec::new();
    let heard = wait_until(LONG, || {
        let mut buf = [0u8; 256];
        if let Ok(n) = reader.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        got == b"to-fifo\n"
    });
    assert!(heard, "the reader got {:?}", String::from_utf8_lossy(&got));
    let cmd = command_of(daemon_pid(&mut g, &pidfile));
    let fdinfo = std::fs::read_to_string(format!("/proc/{cmd}/fdinfo/1")).unwrap();
    let flags = fdinfo.lines().find_map(|l| l.strip_prefix("flags:")).unwrap().trim();
    let flags = u32::from_str_radix(flags, 8).unwrap();
    assert_eq!(flags & libc::O_NONBLOCK as u32, 0, "the command's stdout is non-blocking: {fdinfo}");
    stop_daemon(&mut g, &pidfile);
}

/// The ways to send a daemon's output to the container log keep working: /dev/stdout and
/// /proc/self/fd/1 (root's links to the caller's stdout, here a pipe), and /dev/null.
#[test]
fn container_log_paths_keep_working() {
    for path in ["/dev/stdout", "/proc/self/fd/1"] {
        let dir = tempdir("container-log");
        let pidfile = dir.join("reaper.pid");
        let mut g = Guard::pidfile(&pidfile);
        let script = "echo to-the-log; echo hidden >&2; exec sleep 1000";
        let args = [
            "--daemon",
            "--pidfile",
            s(&pidfile),
            "--stdout",
            path,
            "--stderr",
            "/dev/null",
            "--",
            "sh",
            "-c",
            script,
        ];
        let mut cmd = reaper_in(&dir, &args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
        let mut fg = cmd.spawn().unwrap();
        let mut out = fg.stdout.take().unwrap();
        let code = wait_child(&mut fg, LONG).map(exit_code);
        assert_eq!(code, Some(0), "{path}");
        // The daemon holds the pipe, as it would the container's: read up to the line.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = Vec::new();
            let mut byte = [0u8];
            while out.read(&mut byte).is_ok_and(|n| n == 1) && byte[0] != b'\n' {
                line.push(byte[0]);
            }
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(LONG).unwrap_or_else(|_| panic!("{path}: nothing came through"));
        assert_eq!(String::from_utf8_lossy(&line), "to-the-log", "{path}");
        let pid = daemon_pid(&mut g, &pidfile);
        assert_eq!(proc_link(pid, "fd/2"), Some(PathBuf::from("/dev/null")), "{path}: --stderr /dev/null");
        stop_daemon(&mut g, &pidfile);
    }
}

/// A pidfile that is a FIFO or a device is refused before anything starts (one line, exit 1),
/// in the foreground and as a daemon, and left what it was.
#[test]
fn pidfile_fifo_or_device_is_refused() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempdir("pidfile-fifo");
    let _clean = Guard::dir(&dir);
    let fifo = dir.join("reaper.pid");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let ran = dir.join("ran");
    let touch = format!("touch {}; exec sleep 1000", s(&ran));
    for (path, want) in [
        (s(&fifo), "is a FIFO, not a regular file"),
        ("/dev/null", "is a character device, not a regular file"),
    ] {
        for daemon in [false, true] {
            let mut args = vec!["--pidfile", path, "--", "sh", "-c", &touch];
            if daemon {
                args.insert(0, "--daemon");
            }
            let fg = run_fg(&mut reaper_in(&dir, &args));
            assert_start_error(&fg, want, &format!("{args:?}"));
            assert!(fg.took < Duration::from_secs(5), "{args:?}: took {:?}", fg.took);
        }
    }
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO was replaced");
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    assert!(!wait_for_file(&ran, Duration::from_secs(1)), "a command ran");
}

// ---------------------------------------------------------------------------------------------
// --wait-all

const SELF_DAEMONIZING: &str = "(sleep 1; touch done) & exit 0";

fn wait_all(mode: Mode) {
    let dir = tempdir("wait-all");
    let _clean = Guard::dir(&dir);
    let (code, took) = run_timed(&mut cmd_in(mode, &dir, ["--wait-all", "sh", "-c", SELF_DAEMONIZING]), LONG);
    assert_eq!(code, 0, "{mode:?}");
    assert!(dir.join("done").exists(), "{mode:?}: reaper returned before the background job finished");
    assert!(took > Duration::from_millis(900), "{mode:?}: took {took:?}");
}

both_modes!(wait_all);

/// Without --wait-all the command's exit starts the drain: the background job gets TERM at
/// once and never writes its file.
///
/// The command exits only once the job sleeps (the test creates `go` then): if the drain
/// caught the subshell in the middle of forking `sleep`, the new child could escape the
/// signal (see `drain_reaches_processes_forked_during_the_scan` in lifecycle.rs), and this
/// test is about --wait-all, not about that race.
fn without_wait_all(mode: Mode) {
    let dir = tempdir("no-wait-all");
    let script = "(sleep 1; touch done) & while [ ! -e go ]; do sleep 0.01; done; exit 0";
    let mut r = Reaper::start(mode, &mut cmd_in(mode, &dir, ["sh", "-c", script]));
    let mut g = Guard::new(&r, &dir);
    let main = r.command_pid();
    assert!(
        wait_until(LONG, || descendants(r.pid).iter().any(|&p| cmdline(p) == ["sleep", "1"])),
        "{mode:?}: the background job never started sleeping"
    );
    g.record();
    std::fs::write(dir.join("go"), "").unwrap();
    assert!(wait_gone(main, LONG), "{mode:?}: the command did not exit");
    let t0 = Instant::now();
    let code = r.code(LONG);
    let took = t0.elapsed();
    assert_eq!(code, 0, "{mode:?}");
    // The job dies of the drain's TERM at once: reaper neither waits for it (the `done` check
    // below) nor for the 3 s drain deadline.
    assert!(took < Duration::from_millis(2500), "{mode:?}: reaper stayed {took:?} after the command");
    assert!(
        !wait_for_file(&dir.join("done"), Duration::from_millis(1500)),
        "{mode:?}: the background job survived the drain"
    );
}

/// The arguments of `pid`, from /proc/PID/cmdline.
fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into())
                .collect()
        })
        .unwrap_or_default()
}

both_modes!(without_wait_all);

/// With --wait-all, reaper stays while the orphans run and forwards signals to them; once
/// they are gone it exits. A failing command behaves as without --wait-all.
fn wait_all_forwards(mode: Mode) {
    let dir = tempdir("wait-all-fwd");
    let script = r#"(trap 'touch got-term; exit 3' TERM; touch ready; while :; do sleep 0.05; done) &
        exit 0"#;
    let mut cmd = cmd_in(mode, &dir, ["--wait-all", "--drain", "1s", "sh", "-c", script]);
    let mut r = Reaper::start(mode, &mut cmd);
    let mut g = Guard::new(&r, &dir);
    assert!(wait_for_file(&dir.join("ready"), LONG), "{mode:?}: orphan not ready");
    g.record();
    // The launcher exits at once; the orphan keeps reaper running past the drain deadline
    // (1 s; a second more to mean something).
    assert!(
        r.wait_timeout(Duration::from_secs(2)).is_none(),
        "{mode:?}: reaper exited while the orphan was running"
    );
    r.signal(libc::SIGTERM);
    let code = r.code(LONG);
    assert!(dir.join("got-term").exists(), "{mode:?}: TERM was not forwarded to the orphan");
    // README: the main command's status (0), whatever the leftovers' (here 3).
    assert_eq!(code, 0, "{mode:?}: exit status");

    let (code, took) =
        run_timed(&mut cmd_in(mode, &dir, ["--wait-all", "sh", "-c", "sleep 1000 & exit 3"]), LONG);
    assert_eq!(code, 3, "{mode:?}: failing command under --wait-all");
    // Drained by TERM: before the 3 s drain deadline, and not waiting for `sleep 1000`.
    assert!(took < Duration::from_millis(2500), "{mode:?}: took {took:?}");
}

both_modes!(wait_all_forwards);

// ---------------------------------------------------------------------------------------------
// --follow-pidfile

/// The launcher starts a TERM-trapping loop in the background, writes its pid and exits 0:
/// reaper follows the loop, forwards TERM to it and exits with its status.
fn follow_pidfile(mode: Mode) {
    let dir = tempdir("follow");
    let launcher = r#"sh -c 'trap "exit 7" TERM; while :; do sleep 0.05; done' &
        echo $! > daemon.pid
        exit 0"#;
    let mut cmd =
        cmd_in(mode, &dir, ["--drain", "1s", "--follow-pidfile", "daemon.pid", "sh", "-c", launcher]);
    let mut r = Reaper::start(mode, &mut cmd);
    let mut g = Guard::new(&r, &dir);
    assert!(wait_for_file(&dir.join("daemon.pid"), LONG));
    g.record();
    // Past the launcher's exit and the 1 s deadline for the pidfile (and a second more): still
    // running.
    assert!(
        r.wait_timeout(Duration::from_secs(2)).is_none(),
        "{mode:?}: reaper exited although the followed daemon runs"
    );
    let kids = children(r.pid);
    assert_eq!(kids.len(), 1, "{mode:?}: reaper's children {kids:?}");
    assert_eq!(comm(kids[0]).as_deref(), Some("sh"), "{mode:?}");
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(LONG), 7, "{mode:?}: the followed daemon's status");
}

both_modes!(follow_pidfile);

/// The followed daemon's own exit (not only a signal) ends reaper with its status.
fn follow_pidfile_exit_status(mode: Mode) {
    let dir = tempdir("follow-exit");
    let launcher = r#"sh -c 'while [ ! -e go ]; do sleep 0.02; done; exit 9' &
        echo $! > daemon.pid
        exit 0"#;
    let mut cmd = cmd_in(mode, &dir, ["-v", "--follow-pidfile", "daemon.pid", "sh", "-c", launcher]);
    let log = dir.join(STDERR);
    let mut r = Reaper::start(mode, &mut cmd);
    let mut g = Guard::new(&r, &dir);
    assert!(wait_for_file(&dir.join("daemon.pid"), LONG));
    g.record();
    // Let the followed process exit only once reaper follows it (its log says so).
    assert!(
        wait_until(LONG, || std::fs::read_to_string(&log).unwrap_or_default().contains("following pid")),
        "{mode:?}: reaper never followed the pidfile: {:?}",
        std::fs::read_to_string(&log)
    );
    std::fs::write(dir.join("go"), "").unwrap();
    assert_eq!(r.code(LONG), 9, "{mode:?}");
}

both_modes!(follow_pidfile_exit_status);

/// No pidfile ever appears: reaper gives up at the drain deadline, drains, exits 1.
fn follow_pidfile_missing(mode: Mode) {
    let dir = tempdir("follow-missing");
    // A live leftover, so reaper has something to wait for until the deadline.
    let launcher = "sleep 1000 & touch started; exit 0";
    let mut cmd =
        cmd_in(mode, &dir, ["--drain", "1s", "--follow-pidfile", "daemon.pid", "sh", "-c", launcher]);
    let mut r = Reaper::start(mode, &mut cmd);
    let mut g = Guard::new(&r, &dir);
    assert!(wait_for_file(&dir.join("started"), LONG));
    g.record();
    let leftover = descendants(r.pid);
    let t0 = Instant::now();
    let code = r.code(LONG);
    let took = t0.elapsed();
    assert_eq!(code, 1, "{mode:?}");
    // t0 is taken a moment after the launcher exited (later on a busy machine), so allow
    // well below 1 s; the leftover would keep reaper for 1000 s.
    assert!(
        took > Duration::from_millis(500) && took < Duration::from_secs(3),
        "{mode:?}: exit after {took:?}, expected about 1 s (the drain deadline)"
    );
    for p in leftover {
        assert!(wait_gone(p, Duration::from_secs(2)), "{mode:?}: {p} survived");
    }
}

both_modes!(follow_pidfile_missing);

/// A launcher without any leftover and without a pidfile: exit 1, at the latest at the deadline.
#[test]
fn follow_pidfile_missing_no_leftover() {
    for mode in MODES {
        let dir = tempdir("follow-nothing");
        let _clean = Guard::dir(&dir);
        let (code, took) = run_timed(
            &mut cmd_in(mode, &dir, ["--drain", "1s", "--follow-pidfile", "daemon.pid", "true"]),
            LONG,
        );
        assert_eq!(code, 1, "{mode:?}");
        assert!(took < Duration::from_secs(3), "{mode:?}: took {took:?}");
    }
}

/// A pidfile naming a process outside reaper's tree is bogus: reaper exits 1 and never
/// signals that process.
#[test]
fn follow_pidfile_bogus_pid_is_not_followed() {
    let dir = tempdir("follow-bogus");
    let _clean = Guard::dir(&dir);
    let log = dir.join("outsider.log");
    let probe = signal_probe(&log, None);
    let mut outsider = Command::new(&probe[0])
        .args(&probe[1..])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn outsider");
    let opid = outsider.id() as i32;
    let mut outsiders = Guard::default();
    outsiders.record_pid(opid);
    assert!(wait_for_file(&log.with_extension("ready"), LONG));
    let launcher = format!("sleep 1000 & echo {opid} > daemon.pid; exit 0");
    let args = ["--drain", "1s", "--follow-pidfile", "daemon.pid", "sh", "-c", &launcher];
    let (code, took) = run_timed(&mut cmd_in(Mode::Subreaper, &dir, args), LONG);
    assert_eq!(code, 1);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(alive(opid), "the outsider was killed");
    assert_probe_got_nothing(opid, &log, "the outsider");
    assert!(outsider.try_wait().unwrap().is_none());
}

/// A hard link to root's 0600 file, in a directory another user owns (that user could make
/// it where fs.protected_hardlinks is 0; root stands in for them here): refused as a log, the
/// file stays unchanged.
#[test]
fn a_hard_link_in_another_users_directory_is_refused() {
    if !need_root("a_hard_link_in_another_users_directory_is_refused") {
        return;
    }
    let dir = tempdir("their-dir");
    let _clean = Guard::dir(&dir);
    let (secret, content) = root_secret(&dir);
    let theirs = dir.join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).unwrap();
    std::fs::hard_link(&secret, theirs.join("out.log")).unwrap();
    let fg = daemon_writing(&dir, "--stdout", &theirs.join("out.log"));
    assert_start_error(&fg, "has other hard links", "--stdout in nobody's directory");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), content, "root's file was written");
}

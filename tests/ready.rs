//! Readiness (issue 20, section 2): s6's notification fd and sd_notify, the sender's
//! credentials, the start order they gate, and reaper's own READY=1/STOPPING=1 upward, in
//! both modes where they apply; an end-to-end run under podman `--sdnotify=container`.

mod common;

use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::*;

const T: Duration = Duration::from_secs(30);

/// A `date +%s.%N` a command wrote to `dir/name`.
fn stamp(dir: &Path, name: &str) -> f64 {
    let text = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    text.trim().parse().unwrap_or_else(|e| panic!("{name}: {text:?}: {e}"))
}

fn now() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64()
}

/// `notify.py MESSAGE [SECONDS]`: sends MESSAGE to $NOTIFY_SOCKET from its own pid (python
/// passes no credentials of its own choosing), then stays SECONDS (default 5) alive: reaper
/// finds a sender's command through /proc, where it must still be when the message is read.
fn write_notify_py(dir: &Path) {
    let script = r#"import os, socket, sys, time
a = os.environ["NOTIFY_SOCKET"]
if a.startswith("@"):
    a = "\0" + a[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(sys.argv[1].encode(), a)
time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 5)
"#;
    std::fs::write(dir.join("notify.py"), script).unwrap();
}

// The NOTIFY_SOCKET reaper was given is reaper's own: with no `--ready notify` command (no
// socket of reaper's to hand out) no command sees it, not the main one, not an --also or
// --respawn one. (Needs no per-command settings.)
both_modes!(the_commands_never_see_the_notify_socket_reaper_was_given, |mode| {
    let dir = tempdir("ready-env");
    let save = |name: &str| format!(r#"sh -c 'echo "${{NOTIFY_SOCKET-unset}}" > {name}; exec sleep 100'"#);
    let main = r#"while [ ! -e also.env ] || [ ! -e respawn.env ]; do sleep 0.02; done; echo "${NOTIFY_SOCKET-unset}" > main.env"#;
    let mut cmd = cmd_in(
        mode,
        &dir,
        ["--also", &save("also.env"), "--respawn", &save("respawn.env"), "--", "sh", "-c", main],
    );
    cmd.env("NOTIFY_SOCKET", dir.join("given.sock"));
    let (code, _) = run_timed(&mut cmd, T);
    assert_eq!(code, 0, "{}", stderr_of(&dir));
    for name in ["main.env", "also.env", "respawn.env"] {
        assert_eq!(std::fs::read_to_string(dir.join(name)).unwrap(), "unset\n", "{name}");
    }
});

// s6: the prerequisite writes a newline to fd 3 after a second; the main command starts after
// that, not before, and its exit stops the prerequisite (status 0).
both_modes!(the_main_command_starts_once_its_prerequisite_wrote_to_its_fd, |mode| {
    let dir = tempdir("ready-fd");
    let db = r#"--name=db --ready=fd:3 sh -c "sleep 1; date +%s.%N > db.ready; echo >&3; exec sleep 100""#;
    let (mut r, _g) =
        start_in(mode, &dir, &["--also", db, "--after=db", "--", "sh", "-c", "date +%s.%N > main.start"]);
    assert_eq!(r.code(T), 0, "{}", stderr_of(&dir));
    let (ready, started) = (stamp(&dir, "db.ready"), stamp(&dir, "main.start"));
    assert!(started >= ready, "main started at {started}, before db was ready at {ready}");
});

// sd_notify, with systemd-notify when installed (as root it names its parent, the command, as
// the sender) and with a grandchild of the command sending from its own pid (python). Each
// command gets reaper's own socket as NOTIFY_SOCKET, not the one reaper was given.
both_modes!(the_main_command_starts_once_its_prerequisite_sent_ready, |mode| {
    let dir = tempdir("ready-notify");
    write_notify_py(&dir);
    let notify = if which("systemd-notify").is_some() {
        "systemd-notify --ready"
    } else {
        "python3 notify.py READY=1"
    };
    let db = format!(
        r#"--name=db --ready=notify sh -c "echo $NOTIFY_SOCKET > db.env; sleep 1; date +%s.%N > db.ready; {notify}; exec sleep 100""#
    );
    // The second prerequisite's READY=1 comes from a child of a child of the command.
    let cache = r#"--name=cache --ready=notify sh -c "sh -c 'sleep 0.5; date +%s.%N > cache.ready; python3 notify.py READY=1 100'; exit 0""#;
    let given = dir.join("given.sock");
    let _given = UnixDatagram::bind(&given).unwrap();
    let mut cmd = cmd_in(
        mode,
        &dir,
        ["--also", &db, "--also", cache, "--after=db,cache", "--", "sh", "-c", "date +%s.%N > main.start"],
    );
    cmd.env("NOTIFY_SOCKET", &given);
    let (code, _) = run_timed(&mut cmd, T);
    assert_eq!(code, 0, "{}", stderr_of(&dir));
    let started = stamp(&dir, "main.start");
    for name in ["db.ready", "cache.ready"] {
        assert!(started >= stamp(&dir, name), "main started before {name}");
    }
    let env = std::fs::read_to_string(dir.join("db.env")).unwrap();
    assert!(env.starts_with('@') && !env.contains("given.sock"), "{env}");
});

// A READY=1 for db from processes that are not db or its descendants: another command (and
// its child), and a process outside reaper (as `docker exec` would start one) sending to the
// socket's name. db never becomes ready: after its timeout, exit 1 with one line naming it,
// the main command never started, nothing left running.
both_modes!(a_forged_ready_is_ignored_and_the_timeout_ends_the_start, |mode| {
    let dir = tempdir("ready-forged");
    write_notify_py(&dir);
    let db = "--name=db --ready=notify --ready-timeout=3s sleep 100";
    let forger = r#"--name=forger sh -c "echo $NOTIFY_SOCKET > socket.name; while :; do python3 notify.py READY=1 0.1; done""#;
    let (mut r, _g) =
        start_in(mode, &dir, &["--also", db, "--also", forger, "--after=db", "--", "touch", "main.started"]);
    let name = wait_for_line(&dir.join("socket.name"), T).unwrap_or_else(|| panic!("{}", stderr_of(&dir)));
    let name = name.trim().strip_prefix('@').unwrap_or_else(|| panic!("{name:?}")).to_owned();
    let addr =
        <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(name)
            .unwrap();
    let outside = UnixDatagram::unbound().unwrap();
    let give_up = Instant::now() + T;
    let status = loop {
        let _ = outside.send_to_addr(b"READY=1", &addr);
        if let Some(st) = r.wait_timeout(Duration::from_millis(50)) {
            break exit_code(st);
        }
        assert!(Instant::now() < give_up, "reaper did not end: {}", stderr_of(&dir));
    };
    let log = stderr_of(&dir);
    assert_eq!(status, 1, "{log}");
    assert!(log.contains("db never became ready within 3s"), "{log}");
    assert!(!dir.join("main.started").exists(), "{log}");
    assert!(wait_until(Duration::from_secs(5), || processes_using(&dir).is_empty()), "left running");
});

// PID 1 of a PID namespace that still sees its parent's /proc (`unshare -p -f` without
// --mount-proc): /proc/N there is another process than pid N here (the host's pid 3 is a
// kernel thread, child of kthreadd, pid 2). A sibling must not pass for db (pid 2 here) by
// that walk: only a command's own pid counts then, as without /proc.
#[test]
fn a_foreign_proc_is_not_walked() {
    // qemu-user's own processes take pids in the new namespace: the pids asserted differ.
    if skip_under_emulation("pid numbers in a new PID namespace include the emulator's") {
        return;
    }
    let dir = tempdir("ready-foreign-proc");
    write_notify_py(&dir);
    let db = "--name=db --ready=notify --ready-timeout=3s sleep 100";
    let forger = "--name=forger python3 notify.py READY=1 100";
    let own = "--name=own --ready=notify python3 notify.py READY=1 100";
    let mut cmd = Command::new("unshare");
    if !is_root() {
        cmd.args(["--user", "--map-root-user"]);
    }
    cmd.args(["--pid", "--fork", "--kill-child", REAPER, "-v"]).args([
        "--also",
        db,
        "--also",
        forger,
        "--also",
        own,
        "--after=db",
        "--",
        "touch",
        "main.started",
    ]);
    let log = std::fs::File::create(dir.join(STDERR)).unwrap();
    cmd.current_dir(&dir).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).process_group(0);
    let (code, _) = run_timed(&mut cmd, T);
    let log = stderr_of(&dir);
    assert!(log.contains("started sleep as pid 2"), "{log}");
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("db never became ready within 3s"), "{log}");
    assert!(log.contains("own is ready"), "{log}");
    assert!(!dir.join("main.started").exists(), "{log}");
    remove_tree(&dir);
}

// The same foreign /proc and the stop order: x's exit begins the shutdown, web (after db)
// is stopped first and db, held back, once web is gone. A walk of that /proc would take the
// parent namespace's processes for reaper's; instead the commands' groups are signalled
// (said once at warn), and db still gets its TERM after web, not a SIGKILL at the drain's end.
#[test]
fn a_foreign_proc_keeps_the_stop_order() {
    // qemu-user's own processes take pids in the new namespace: the pids asserted differ.
    if skip_under_emulation("pid numbers in a new PID namespace include the emulator's") {
        return;
    }
    let dir = tempdir("ready-foreign-stop");
    let db = r#"--name=db sh -c "trap 'echo db got TERM >&2; exit 0' TERM; sleep 100 & wait""#;
    let x = r#"--name=x sh -c "sleep 0.5; exit 3""#;
    let mut cmd = Command::new("unshare");
    if !is_root() {
        cmd.args(["--user", "--map-root-user"]);
    }
    cmd.args(["--pid", "--fork", "--kill-child", REAPER, "-v", "--also", db, "--also", x]).args([
        "--name=web",
        "--after=db",
        "--",
        "sh",
        "-c",
        "trap 'exit 0' TERM; sleep 100 & wait",
    ]);
    let log = std::fs::File::create(dir.join(STDERR)).unwrap();
    cmd.current_dir(&dir).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).process_group(0);
    let (code, _) = run_timed(&mut cmd, T);
    let log = stderr_of(&dir);
    assert_eq!(code, 3, "{log}");
    assert!(log.contains("db (pid 2): its dependents are gone, sending SIGTERM"), "{log}");
    assert!(log.contains("db got TERM"), "{log}");
    assert!(!log.contains("SIGKILL"), "{log}");
    assert_eq!(log.matches("/proc is another PID namespace's").count(), 1, "{log}");
    remove_tree(&dir);
}

// The command closes its fd without a newline: not ready (said once), and the timeout ends it.
both_modes!(a_closed_fd_without_a_newline_is_not_ready, |mode| {
    let dir = tempdir("ready-eof");
    let db =
        r#"--name=db --ready=fd:3 --ready-timeout=2s sh -c "printf partial >&3; exec 3>&-; exec sleep 100""#;
    let (mut r, _g) = start_in(mode, &dir, &["--also", db, "--after=db", "--", "touch", "main.started"]);
    let log = || stderr_of(&dir);
    assert_eq!(r.code(T), 1, "{}", log());
    assert!(log().contains("db closed its readiness descriptor without writing a newline"), "{}", log());
    assert!(log().contains("db never became ready within 2s"), "{}", log());
    assert!(!dir.join("main.started").exists());
});

// A timeout is one line: the stop that follows closes the readiness descriptors of the
// commands it ends (a grandchild holds db's, and one of cache's), which is not news.
both_modes!(a_timeout_is_one_line, |mode| {
    let dir = tempdir("ready-timeout-line");
    let db = r#"--name=db --ready=fd:3 --ready-timeout=1s sh -c "sleep 100 & exec sleep 100""#;
    let cache = r#"--name=cache --ready=fd:4 --ready-timeout=5s sleep 100"#;
    let (mut r, _g) = start_in(
        mode,
        &dir,
        &["--also", db, "--also", cache, "--after=db,cache", "--", "touch", "main.started"],
    );
    assert_eq!(r.code(T), 1, "{}", stderr_of(&dir));
    let log = stderr_of(&dir);
    let said: Vec<&str> = log.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).collect();
    assert_eq!(said, ["reaper: ERROR db never became ready within 1s"], "{log}");
    assert!(!dir.join("main.started").exists());
    // db's grandchild too: nothing left running.
    assert!(wait_until(Duration::from_secs(5), || processes_using(&dir).is_empty()), "left running");
});

// Any N ≥ 3 works, also one that reaper's own descriptors (signalfd, the pipe's ends, the
// exec-report pipe) happen to have when the command starts.
#[test]
fn every_fd_number_reaches_the_command() {
    // (3 to 9: sh redirects single-digit descriptors only.)
    for n in 3..=9 {
        let dir = tempdir("ready-fd-n");
        let db =
            format!(r#"--name=db --ready=fd:{n} --ready-timeout=10s sh -c "echo >&{n}; exec sleep 100""#);
        let mut cmd = cmd_in(Mode::Subreaper, &dir, ["--also", &db, "--after=db", "--", "true"]);
        let (code, _) = run_timed(&mut cmd, T);
        assert_eq!(code, 0, "fd {n}: {}", stderr_of(&dir));
        remove_tree(&dir);
    }
}

/// Receives the next datagram on `sock` as text (panics after `T`).
fn next_message(sock: &UnixDatagram) -> String {
    sock.set_read_timeout(Some(T)).unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("no message on NOTIFY_SOCKET");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

// Upward: reaper, given NOTIFY_SOCKET (a path, as systemd gives it), sends READY=1 once db is
// ready and the main command runs, STOPPING=1 when the shutdown begins; the commands do not
// get that NOTIFY_SOCKET (none has --ready notify: no socket of reaper's either).
both_modes!(reaper_sends_ready_and_stopping_to_the_socket_it_was_given, |mode| {
    let dir = tempdir("ready-up");
    let sock = UnixDatagram::bind(dir.join("notify.sock")).unwrap();
    let db = r#"--name=db --ready=fd:3 sh -c "sleep 0.5; date +%s.%N > db.ready; echo >&3; exec sleep 100""#;
    let main = r#"echo "${NOTIFY_SOCKET-unset}" > main.env; while [ ! -e stop ]; do sleep 0.05; done"#;
    let mut cmd = cmd_in(mode, &dir, ["--also", db, "--after=db", "--", "sh", "-c", main]);
    cmd.env("NOTIFY_SOCKET", dir.join("notify.sock"));
    let mut r = Reaper::start(mode, &mut cmd);
    let _g = Guard::new(&r, &dir);
    assert_eq!(next_message(&sock), "READY=1");
    assert!(now() >= stamp(&dir, "db.ready"));
    assert_eq!(wait_for_line(&dir.join("main.env"), T).as_deref(), Some("unset\n"));
    std::fs::write(dir.join("stop"), "").unwrap();
    assert_eq!(next_message(&sock), "STOPPING=1");
    assert_eq!(r.code(T), 0, "{}", stderr_of(&dir));
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    assert!(sock.recv(&mut [0u8; 64]).is_err(), "one READY=1 and one STOPPING=1 only");
});

// An abstract NOTIFY_SOCKET (@name), and --pause: ready at once; a TERM is the shutdown.
#[test]
fn an_abstract_notify_socket_and_pause() {
    use std::os::linux::net::SocketAddrExt;
    let dir = tempdir("ready-up-abstract");
    let name = format!("reaper-test-{}-up", std::process::id());
    let sock =
        UnixDatagram::bind_addr(&std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
    let mut cmd = cmd_in(Mode::Subreaper, &dir, ["--pause"]);
    cmd.env("NOTIFY_SOCKET", format!("@{name}"));
    let mut r = Reaper::start(Mode::Subreaper, &mut cmd);
    let _g = Guard::new(&r, &dir);
    assert_eq!(next_message(&sock), "READY=1");
    r.signal(libc::SIGTERM);
    assert_eq!(next_message(&sock), "STOPPING=1");
    assert_eq!(r.code(T), 0, "{}", stderr_of(&dir));
}

// Fault: socket(2) denied (seccomp, or strace's injection here): one warning naming the
// commands that can then never be ready; their timeout applies (exit 1); the commands get no
// NOTIFY_SOCKET.
#[test]
fn without_a_socket_notify_commands_time_out() {
    let Some(strace) = which("strace") else {
        return skip("no strace");
    };
    let dir = tempdir("ready-eperm");
    let db = r#"--name=db --ready=notify --ready-timeout=1s sh -c "echo ${NOTIFY_SOCKET-unset} > db.env; exec sleep 100""#;
    let log = std::fs::File::create(dir.join("reaper.stderr")).unwrap();
    let mut cmd = Command::new(strace);
    cmd.args(["-o", "/dev/null", "-f", "-e", "trace=socket", "-e", "inject=socket:error=EPERM", REAPER])
        .args(["--also", db, "--after=db", "--", "touch", "main.started"])
        .current_dir(&dir)
        .env("NOTIFY_SOCKET", "@reaper-test-given")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0);
    let (code, _) = run_timed(&mut cmd, T);
    let log = stderr_of(&dir);
    assert_eq!(code, 1, "{log}");
    let warning = "cannot open the sd_notify socket: Operation not permitted: db can never be ready";
    assert_eq!(log.matches(warning).count(), 1, "{log}");
    assert!(log.contains("db never became ready within 1s"), "{log}");
    assert!(!dir.join("main.started").exists());
    assert_eq!(std::fs::read_to_string(dir.join("db.env")).unwrap(), "unset\n");
}

/// `strace` running reaper (not its children) with `faults` (`-e` arguments), in `dir`, its
/// syscalls logged to `dir/strace.log`: the exit code and reaper's stderr.
fn run_straced(strace: &Path, dir: &Path, faults: &[&str], args: &[&str]) -> (i32, String) {
    let log = std::fs::File::create(dir.join("reaper.stderr")).unwrap();
    let mut cmd = straced_cmd(strace, dir, faults, args);
    cmd.env_remove("NOTIFY_SOCKET").stdout(Stdio::null()).stderr(log);
    let (code, _) = run_timed(&mut cmd, T);
    (code, stderr_of(dir))
}

// A command that says it is ready and exits at once (a one-shot `--respawn --done=0`, as a
// migration step others are `--after`): what it said before its exit counts, also when
// reaper reaps it before it read the pipe or the socket. waitid(2) is slowed down so that
// both commands have exited when reaper first looks for exits after starting them.
#[test]
fn ready_said_just_before_exiting_counts() {
    let Some(strace) = which("strace") else {
        return skip("no strace");
    };
    let dir = tempdir("ready-exit");
    write_notify_py(&dir);
    let db = r#"--name=db --ready=fd:3 sh -c "sleep 0.3; echo >&3; exec sleep 100""#;
    let by_fd = r#"--name=by-fd --after=db --done=0 --ready=fd:3 --ready-timeout=5s sh -c "echo >&3""#;
    let by_notify = r#"--name=by-notify --after=db --done=0 --ready=notify --ready-timeout=5s python3 notify.py READY=1 0"#;
    let faults = ["-e", "trace=waitid", "-e", "inject=waitid:delay_enter=500000"];
    let args = ["--also", db, "--respawn", by_fd, "--respawn", by_notify, "--after=by-fd,by-notify", "--"];
    let (code, log) = run_straced(&strace, &dir, &faults, &[&args[..], &["touch", "main.started"]].concat());
    assert_eq!(code, 0, "{log}");
    assert!(dir.join("main.started").exists(), "{log}");
    assert!(!log.contains("never became ready"), "{log}");
    remove_tree(&dir);
}

// Fault: recvmsg(2) on reaper's socket fails every time, also with EINTR (which a
// non-blocking read never returns, but seccomp or a tracer can): the datagram stays queued,
// so poll says readable at once again. reaper gives the socket up after 100 failures in a
// row rather than spin until the timeout.
#[test]
fn a_failing_recvmsg_does_not_spin() {
    let Some(strace) = which("strace") else {
        return skip("no strace");
    };
    let dir = tempdir("ready-eintr");
    write_notify_py(&dir);
    let db = "--name=db --ready=notify --ready-timeout=3s python3 notify.py READY=1 100";
    let faults = ["-e", "trace=recvmsg", "-e", "inject=recvmsg:error=EINTR"];
    let (code, log) = run_straced(&strace, &dir, &faults, &["--also", db, "--after=db", "--", "true"]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("db never became ready within 3s"), "{log}");
    assert!(log.contains("failed 100 times in a row (Interrupted system call)"), "{log}");
    let calls = std::fs::read_to_string(dir.join("strace.log")).unwrap().matches("recvmsg(").count();
    assert!(calls <= 100, "{calls} recvmsg calls");
    remove_tree(&dir);
}

/// `reaper ARGS...` in `dir` under an open-file limit of `limit`, with nothing open beyond
/// 0, 1 and 2 (the harness's own descriptors are made close-on-exec): the exit code and
/// reaper's stderr.
fn run_with_fd_limit(dir: &Path, limit: u64, args: &[&str]) -> (i32, String) {
    let mut cmd = cmd_in(Mode::Subreaper, dir, args);
    // SAFETY: only raw setrlimit(2) and close_range(2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (code, _) = run_timed(&mut cmd, T);
    (code, stderr_of(dir))
}

// A low open-file limit (ulimit -n 8): a readiness descriptor that cannot be given is said
// plainly, naming the command, the descriptor and the limit, with exit 1 (reaper failed
// before the command ran). N at the limit's edge (7 of 8) meets the exec-report pipe's
// write end; a limit too low for the pipe names the command whose pipe it is.
#[test]
fn a_low_open_file_limit_is_said_plainly() {
    // In the C library's own words (musl's EMFILE is "No file descriptors available").
    let os = |errno| reaper::error::os(std::io::Error::from_raw_os_error(errno));
    let (ebadf, emfile) = (os(libc::EBADF), os(libc::EMFILE));
    let dir = tempdir("ready-nofile");
    let (code, log) = run_with_fd_limit(&dir, 8, &["--ready=fd:1000", "--", "sh", "-c", "echo >&3"]);
    assert_eq!(code, 1, "{log}");
    let beyond = format!(
        "reaper: cannot give 'sh' its readiness descriptor 1000: {ebadf} (the open-file limit, ulimit -n, is 8)"
    );
    assert_eq!(log.trim(), beyond);
    std::fs::remove_file(dir.join(STDERR)).unwrap();
    let (code, log) = run_with_fd_limit(&dir, 8, &["--ready=fd:7", "--", "sh", "-c", "echo >&7"]);
    assert_eq!(code, 1, "{log}");
    assert_eq!(log.trim(), format!("reaper: cannot give 'sh' its readiness descriptor 7: {emfile}"));
    std::fs::remove_file(dir.join(STDERR)).unwrap();
    let (code, log) =
        run_with_fd_limit(&dir, 5, &["--name=db", "--ready=fd:3", "--", "sh", "-c", "echo >&3"]);
    assert_eq!(code, 1, "{log}");
    assert_eq!(log.trim(), format!("reaper: db's readiness pipe (--ready fd:3): {emfile}"));
    std::fs::remove_file(dir.join(STDERR)).unwrap();
    // One descriptor more: it starts and is ready.
    // (Not sh: dash saves descriptors at 10 and up for a redirection.)
    let write = r#"import os; os.write(8, b"\n")"#;
    let (code, log) = run_with_fd_limit(&dir, 9, &["--ready=fd:8", "--", "python3", "-c", write]);
    assert_eq!(code, 0, "{log}");
    // dup2 failing otherwise (injected): the error alone, no limit blamed. (Not under
    // qemu-user: aarch64 has no dup2, the C library calls dup3.)
    if let Some(strace) = which("strace").filter(|_| !emulated()) {
        std::fs::remove_file(dir.join(STDERR)).unwrap();
        let faults = ["-f", "-e", "trace=dup2", "-e", "inject=dup2:error=EBADF"];
        let (code, log) =
            run_straced(&strace, &dir, &faults, &["--ready=fd:3", "--", "sh", "-c", "echo >&3"]);
        assert_eq!(code, 1, "{log}");
        assert_eq!(log.trim(), format!("reaper: cannot give 'sh' its readiness descriptor 3: {ebadf}"));
    }
    remove_tree(&dir);
}

// reaper's socket and the readiness pipes wake it only when something is said: once db is
// ready (its pipe closed) and the other command said READY=1, an idle reaper stays asleep.
both_modes!(no_idle_wakeups_with_readiness_open, |mode| {
    if skip_under_emulation("context switches count the emulator") {
        return;
    }
    let dir = tempdir("ready-idle");
    write_notify_py(&dir);
    let db = r#"--name=db --ready=fd:3 sh -c "echo >&3; exec sleep 100""#;
    let cache = r#"--name=cache --ready=notify python3 notify.py READY=1 100"#;
    let (mut r, _g) = start_in(
        mode,
        &dir,
        &[
            "--also",
            db,
            "--also",
            cache,
            "--after=db,cache",
            "--",
            "sh",
            "-c",
            "touch main.started; exec sleep 100",
        ],
    );
    assert!(wait_for_file(&dir.join("main.started"), T), "{}", stderr_of(&dir));
    assert!(wait_quiet(r.pid, T), "reaper never went idle");
    let before = context_switches(r.pid);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(context_switches(r.pid), before, "reaper woke up while idle");
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(T), 143, "{}", stderr_of(&dir));
});

// --- podman --sdnotify=container -----------------------------------------------------------

/// podman with a root, run root and tmpdir of its own (as tests/kube_play.rs), removed after.
struct Podman {
    dir: PathBuf,
    conf: PathBuf,
}

impl Podman {
    fn start() -> Result<Podman, String> {
        which("podman").ok_or("no podman")?;
        let help = Command::new("podman").args(["run", "--help"]).output().map_err(|e| e.to_string())?;
        if !String::from_utf8_lossy(&help.stdout).contains("--sdnotify") {
            return Err("this podman has no --sdnotify".into());
        }
        let dir = tempdir("ready-podman");
        let p = Podman { conf: dir.join("containers.conf"), dir };
        let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_err(|e| e.to_string())?
            .1;
        let conf = format!(
            "[containers]\ndefault_ulimits = [\"nofile={hard}:{hard}\", \"nproc=32768:32768\"]\nnetns = \"none\"\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nruntime = \"runc\"\n"
        );
        std::fs::write(&p.conf, conf).map_err(|e| e.to_string())?;
        let (code, out, err) =
            run_with_timeout(&mut p.podman(["info", "--format", "{{.Host.OCIRuntime.Name}}"]), T);
        if code != 0 || out.trim() != "runc" {
            return Err(format!("podman cannot start here: {code} {out} {err}"));
        }
        Ok(p)
    }

    fn podman<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(&self, args: I) -> Command {
        let mut cmd = Command::new("podman");
        let d = |n: &str| self.dir.join(n);
        cmd.arg("--root").arg(d("root")).arg("--runroot").arg(d("runroot")).arg("--tmpdir").arg(d("tmp"));
        cmd.args(["--storage-driver", "overlay"]).env("CONTAINERS_CONF", &self.conf).stdin(Stdio::null());
        cmd.args(args);
        cmd
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = run_with_timeout(&mut self.podman(["rm", "-af", "-t", "0"]), T);
        let _ = run_with_timeout(&mut self.podman(["system", "reset", "-f"]), T);
        kill_processes_using(&self.dir);
        remove_tree(&self.dir);
    }
}

// End to end: a FROM-scratch image (reaper and busybox), run by podman with
// --sdnotify=container and NOTIFY_SOCKET pointing at the test's socket: podman passes reaper's
// READY=1 on once db (ready by fd after a second) is ready and the main command runs, on a
// read-only root filesystem.
#[test]
fn podman_sdnotify_container_gets_ready_from_reaper() {
    // The engine runs outside the emulator, with the host's binary (as scripts/test-cross
    // leaves out tests/docker*, engines and kube_play).
    if skip_under_emulation("a container engine runs the host's binary, not the emulated one") {
        return;
    }
    let p = match Podman::start() {
        Ok(p) => p,
        Err(why) => return skip(&why),
    };
    let reaper = match static_binary() {
        Ok(b) => b,
        Err(why) => return skip(&why),
    };
    let ctx = p.dir.join("context");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(common::docker::BUSYBOX, ctx.join("busybox")).expect("busybox-static");
    std::fs::copy(reaper, ctx.join("reaper")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         COPY reaper /reaper\nENTRYPOINT [\"/reaper\", \"--also\", \
         \"--name=db --ready=fd:3 sh -c 'sleep 1; echo >&3; exec sleep 100'\", \"--after=db\", \"--\"]\n\
         CMD [\"sleep\", \"100\"]\n",
    )
    .unwrap();
    let (code, id, err) = run_with_timeout(p.podman(["build", "-q"]).arg(&ctx), Duration::from_secs(300));
    assert_eq!(code, 0, "{err}");
    let sock_path = p.dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let t0 = Instant::now();
    let mut run =
        p.podman(["run", "-d", "--read-only", "--sdnotify=container", "--name", "ready-e2e", id.trim()]);
    run.env("NOTIFY_SOCKET", &sock_path);
    let (code, _, err) = run_with_timeout(&mut run, Duration::from_secs(120));
    assert_eq!(code, 0, "{err}");
    // podman sends MAINPID= and READY=1 (one datagram or two).
    let mut said = String::new();
    while !said.lines().any(|l| l == "READY=1") {
        said.push('\n');
        said.push_str(&next_message(&sock));
    }
    assert!(t0.elapsed() >= Duration::from_secs(1), "READY=1 before db was ready: {said}");
    let (code, _, err) = run_with_timeout(&mut p.podman(["stop", "-t", "10", "ready-e2e"]), T);
    assert_eq!(code, 0, "{err}");
}

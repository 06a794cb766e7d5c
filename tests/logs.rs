//! `--prefix-output`: each command's stdout and stderr pass through pipes reaper reads; every
//! line leaves whole, prefixed once with the command's name, on the same stream, in both modes.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, ChildStdout, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// reaper in `mode` working in `dir`, its stdout a pipe the test reads (or holds, unread),
/// its stderr in `dir/reaper.stderr`.
fn start_piped(mode: Mode, dir: &Path, args: &[&str]) -> (Reaper, Guard, ChildStdout) {
    let log = std::fs::File::create(dir.join(STDERR)).unwrap();
    let mut cmd = reaper_cmd(mode, args);
    cmd.current_dir(dir).stdout(Stdio::piped()).stderr(Stdio::from(log));
    let mut r = Reaper::start(mode, &mut cmd);
    let out = r.child.stdout.take().unwrap();
    let g = Guard::new(&r, dir);
    (r, g, out)
}

/// Reads `out` to its end in a thread; what came so far is in the returned buffer.
fn collect(mut out: ChildStdout) -> (Arc<Mutex<Vec<u8>>>, std::thread::JoinHandle<()>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    (got, reader)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn exited(child: &mut Child, timeout: Duration) -> i32 {
    exit_code(wait_child(child, timeout).unwrap_or_else(|| panic!("reaper did not exit within {timeout:?}")))
}

// Two commands write 100,000 lines each at once: every line arrives whole, prefixed once with
// its command's name, none lost, each command's in its own order; nothing else on stdout.
both_modes!(two_floods_lose_no_line_and_tear_none, |mode| {
    let dir = tempdir("logs-flood");
    let main = "seq -f m%g 100000; while [ ! -e also.done ]; do sleep 0.01; done";
    let also = "env sh -c 'seq -f a%g 100000 && : > also.done; sleep 60'";
    let (mut r, _g, out) =
        start_piped(mode, &dir, &["--prefix-output", "--also", also, "--", "sh", "-c", main]);
    let (got, reader) = collect(out);
    assert_eq!(exited(&mut r.child, Duration::from_secs(120)), 0, "{}", stderr_of(&dir));
    reader.join().unwrap();
    let out = text(&got.lock().unwrap());
    let (mut sh, mut env) = (0u32, 0u32);
    for line in out.lines() {
        if let Some(n) = line.strip_prefix("sh | m") {
            sh += 1;
            assert_eq!(n.parse::<u32>().ok(), Some(sh), "main's line {sh}: {line:?}");
        } else if let Some(n) = line.strip_prefix("env | a") {
            env += 1;
            assert_eq!(n.parse::<u32>().ok(), Some(env), "also's line {env}: {line:?}");
        } else {
            panic!("a line that is not a whole prefixed line: {line:?}");
        }
    }
    assert_eq!((sh, env), (100_000, 100_000));
    assert!(out.ends_with('\n'));
    assert!(!stderr_of(&dir).contains("dropped"), "{}", stderr_of(&dir));
});

// stdout lines go to reaper's stdout, stderr lines to its stderr, each with its prefix.
both_modes!(stderr_lines_go_to_stderr, |mode| {
    let dir = tempdir("logs-stderr");
    let (mut r, _g, out) =
        start_piped(mode, &dir, &["--prefix-output", "--", "sh", "-c", "echo out; echo err >&2; echo out2"]);
    let (got, reader) = collect(out);
    assert_eq!(exited(&mut r.child, Duration::from_secs(30)), 0, "{}", stderr_of(&dir));
    reader.join().unwrap();
    assert_eq!(text(&got.lock().unwrap()), "sh | out\nsh | out2\n");
    assert_eq!(stderr_of(&dir), "sh | err\n");
});

// A line longer than PIPE_BUF leaves in pieces of at most 4096 bytes, newline and prefix
// included; the first has `NAME | `, the others `NAME + `, and together they are the line.
both_modes!(a_long_line_is_split_at_pipe_buf_and_marked, |mode| {
    let dir = tempdir("logs-long");
    let script = "head -c 10000 /dev/zero | tr '\\0' x; echo; echo next";
    let (mut r, _g, out) = start_piped(mode, &dir, &["--prefix-output", "--", "sh", "-c", script]);
    let (got, reader) = collect(out);
    assert_eq!(exited(&mut r.child, Duration::from_secs(30)), 0, "{}", stderr_of(&dir));
    reader.join().unwrap();
    let out = text(&got.lock().unwrap());
    let lines: Vec<&str> = out.split_inclusive('\n').collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines.iter().all(|l| l.len() <= 4096), "{:?}", lines.iter().map(|l| l.len()).collect::<Vec<_>>());
    assert_eq!(lines[0].len(), 4096);
    assert!(lines[0].starts_with("sh | x"));
    assert!(lines[1].starts_with("sh + x") && lines[2].starts_with("sh + x"));
    let joined: String = lines[..3].iter().map(|l| &l[5..l.len() - 1]).collect();
    assert_eq!(joined, "x".repeat(10000));
    assert_eq!(lines[3], "sh | next\n");
});

// A last line without newline goes out (with one) before reaper logs the command's exit and
// its own (stdout and stderr one file here, so their order shows).
both_modes!(the_last_partial_line_comes_before_the_exit_is_logged, |mode| {
    let dir = tempdir("logs-partial");
    let log = std::fs::File::create(dir.join(STDERR)).unwrap();
    let mut cmd = reaper_cmd(mode, ["-v", "--prefix-output", "--", "sh", "-c", "echo one; printf partial"]);
    cmd.current_dir(&dir).stdout(Stdio::from(log.try_clone().unwrap())).stderr(Stdio::from(log));
    let mut r = Reaper::start(mode, &mut cmd);
    let _g = Guard::new(&r, &dir);
    assert_eq!(r.code(Duration::from_secs(30)), 0);
    let out = stderr_of(&dir);
    let at = |what: &str| out.find(what).unwrap_or_else(|| panic!("no {what:?} in:\n{out}"));
    assert!(at("sh | one\n") < at("sh | partial\n"), "{out}");
    assert!(at("sh | partial\n") < at("exited with status 0"), "{out}");
    assert!(at("exited with status 0") < at("exiting with status 0"), "{out}");
});

// The command floods, nobody reads reaper's stdout: reaper keeps forwarding signals and
// reaping; once the reader is back it says how many lines were dropped.
both_modes!(a_stalled_reader_starves_neither_signals_nor_reaps, |mode| {
    let dir = tempdir("logs-stall");
    let main = "trap 'echo USR1 >> sig.log' USR1; trap 'echo TERM >> sig.log; exit 7' TERM; \
                yes flood & while :; do sleep 0.05; done";
    let (mut r, _g, out) = start_piped(mode, &dir, &["--prefix-output", "--", "sh", "-c", main]);
    wait_for_log(&dir, "reaper's stdout took nothing for 1s");
    r.signal(libc::SIGUSR1);
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(dir.join("sig.log"))
            .unwrap_or_default()
            == "USR1\n"),
        "USR1 not forwarded while the reader stalls: {}",
        stderr_of(&dir)
    );
    let (got, reader) = collect(out);
    let report =
        |out: &str| out.lines().any(|l| l.starts_with("reaper | dropped ") && l.ends_with(" lines from sh"));
    assert!(
        wait_until(Duration::from_secs(20), || report(&text(&got.lock().unwrap()))),
        "no report of the dropped lines once the reader is back"
    );
    r.signal(libc::SIGTERM);
    assert_eq!(exited(&mut r.child, Duration::from_secs(15)), 7, "{}", stderr_of(&dir));
    reader.join().unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("sig.log")).unwrap(), "USR1\nTERM\n");
    let out = text(&got.lock().unwrap());
    let lines: Vec<&str> = out.lines().collect();
    // `yes` writes blocks, and the drain's TERM may end it in the middle of a line: that last
    // one is flushed as it was.
    let (last, before) = lines.split_last().unwrap();
    for line in before {
        assert!(*line == "sh | flood" || report(line), "a torn line: {line:?}");
    }
    assert!(last.strip_prefix("sh | ").is_some_and(|l| "flood".starts_with(l)) || report(last), "{last:?}");
});

// Nobody ever reads: TERM still stops the command, reaper exits with its status within the
// drain and its exit grace, and says on stderr that lines were dropped.
both_modes!(a_reader_that_never_comes_back_loses_lines_not_the_stop, |mode| {
    let dir = tempdir("logs-never");
    let main = "trap 'exit 7' TERM; yes flood & while :; do sleep 0.05; done";
    let (mut r, _g, _out) = start_piped(mode, &dir, &["--prefix-output", "--", "sh", "-c", main]);
    wait_for_log(&dir, "reaper's stdout took nothing for 1s");
    r.signal(libc::SIGTERM);
    assert_eq!(exited(&mut r.child, Duration::from_secs(15)), 7, "{}", stderr_of(&dir));
    let log = stderr_of(&dir);
    assert!(log.contains("lines for reaper's stdout dropped or lost at exit: nobody took them"), "{log}");
});

// A restarted --respawn helper writes through a pipe of its own too, prefixed with its --name;
// without the option the commands write straight to reaper's stdio (no prefix).
both_modes!(restarted_helpers_are_prefixed_and_the_option_is_opt_in, |mode| {
    let dir = tempdir("logs-respawn");
    let helper = "--name=greeter sh -c 'echo run >> runs; echo hello'";
    let main = "while [ $(wc -l < runs 2>/dev/null || echo 0) -lt 3 ]; do sleep 0.02; done";
    for (args, want) in [(vec!["--prefix-output"], "greeter | hello\n"), (vec![], "hello\n")] {
        let _ = std::fs::remove_file(dir.join("runs"));
        let mut all = args.clone();
        all.extend(["--respawn", helper, "--", "sh", "-c", main]);
        let (mut r, _g, out) = start_piped(mode, &dir, &all);
        let (got, reader) = collect(out);
        assert_eq!(exited(&mut r.child, Duration::from_secs(30)), 0, "{}", stderr_of(&dir));
        reader.join().unwrap();
        let out = text(&got.lock().unwrap());
        assert!(out.len() >= 3 * want.len(), "{args:?}: {out:?}");
        assert_eq!(out, want.repeat(out.len() / want.len()), "{args:?}");
    }
});

// The reader goes away: the commands' pipes to it close, so a command that writes gets SIGPIPE
// as it would writing there itself (reaper exits 128 + 13).
both_modes!(a_reader_gone_ends_the_writers_as_without_the_option, |mode| {
    let dir = tempdir("logs-epipe");
    let (mut r, _g, mut out) = start_piped(mode, &dir, &["--prefix-output", "--", "yes"]);
    let mut first = [0u8; 6];
    out.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"yes | ");
    drop(out);
    assert_eq!(exited(&mut r.child, Duration::from_secs(15)), 141, "{}", stderr_of(&dir));
    assert!(stderr_of(&dir).contains("the commands' stdout pipes closed"), "{}", stderr_of(&dir));
});

// No descriptors left for a command's output pipes (EMFILE, forced with strace on the second
// pipe2: the first is spawn's exec report): one line naming the command and the option, exit 1
// (reaper failed before the command ran), nothing started.
#[test]
fn output_pipes_that_cannot_be_made_are_said_plainly() {
    let Some(strace) = which("strace").filter(|_| !emulated()) else {
        return skip("strace (and not under qemu-user)");
    };
    let dir = tempdir("logs-emfile");
    let log = std::fs::File::create(dir.join(STDERR)).unwrap();
    let mut cmd = std::process::Command::new(strace);
    cmd.args(["-o", "strace.log", "-e", "trace=pipe2", "-e", "inject=pipe2:error=EMFILE:when=2"])
        .args([REAPER, "--prefix-output", "--", "touch", "started"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let (code, _) = run_timed(&mut cmd, Duration::from_secs(30));
    let emfile = reaper::error::os(std::io::Error::from_raw_os_error(libc::EMFILE));
    let log = stderr_of(&dir);
    assert_eq!(code, 1, "{log}");
    assert_eq!(
        log.trim(),
        format!("reaper: cannot give 'touch' its output pipes (--prefix-output): {emfile}")
    );
    assert!(!dir.join("started").exists());
    remove_tree(&dir);
}

// reaper's stdout is a full disk (/dev/full: every write fails with ENOSPC). Without the option
// the command would get ENOSPC and run on: with it, it must not be killed by a SIGPIPE instead
// (its pipe closed as if the reader were gone); its lines are dropped, its status is reaper's.
both_modes!(a_full_disk_is_not_a_reader_gone, |mode| {
    let dir = tempdir("logs-enospc");
    let log = std::fs::File::create(dir.join(STDERR)).unwrap();
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let main = "i=0; while [ $i -lt 100000 ]; do echo line $i; i=$((i+1)); done; exit 7";
    let mut cmd = reaper_cmd(mode, ["--prefix-output", "--", "sh", "-c", main]);
    cmd.current_dir(&dir).stdout(Stdio::from(full)).stderr(Stdio::from(log));
    let mut r = Reaper::start(mode, &mut cmd);
    let _g = Guard::new(&r, &dir);
    assert_eq!(exited(&mut r.child, Duration::from_secs(60)), 7, "{}", stderr_of(&dir));
});

// reaper's stdout is a terminal whose reader stops reading (`docker run -t`, an attached
// client that stalls). poll(2) says POLLOUT while the terminal has any room at all, and a
// blocking write of 4 KiB then sleeps until the reader comes back: reaper must not write
// there blocking. It notices the stall like any other, and TERM still stops the command.
both_modes!(a_terminal_nobody_reads_blocks_not_the_stop, |mode| {
    let dir = tempdir("logs-tty");
    let (_master, slave) = terminal();
    let log = std::fs::File::create(dir.join(STDERR)).unwrap();
    let main = "trap 'exit 7' TERM; yes flood & while :; do sleep 0.05; done";
    let mut cmd = reaper_cmd(mode, ["--prefix-output", "--", "sh", "-c", main]);
    cmd.current_dir(&dir).stdout(Stdio::from(slave)).stderr(Stdio::from(log));
    let mut r = Reaper::start(mode, &mut cmd);
    let _g = Guard::new(&r, &dir);
    wait_for_log(&dir, "reaper's stdout took nothing for 1s");
    r.signal(libc::SIGTERM);
    assert_eq!(exited(&mut r.child, Duration::from_secs(15)), 7, "{}", stderr_of(&dir));
});

// The same terminal, when reaper cannot open it anew (EACCES forced with strace on that
// open): O_NONBLOCK is set around each of reaper's writes instead, and the stop still works.
#[test]
fn a_terminal_that_cannot_be_reopened_blocks_not_the_stop() {
    let Some(strace) = which("strace").filter(|_| !emulated()) else {
        return skip("strace (and not under qemu-user)");
    };
    let dir = tempdir("logs-tty-reopen");
    let (_master, slave) = terminal();
    let log = std::fs::File::create(dir.join(STDERR)).unwrap();
    let main = "trap 'exit 7' TERM; yes flood & while :; do sleep 0.05; done";
    let mut cmd = std::process::Command::new(strace);
    cmd.args(["-o", "strace.log", "-e", "trace=openat", "-e", "inject=openat:error=EACCES"])
        .args(["-P", "/proc/self/fd/1", REAPER, "--prefix-output", "--", "sh", "-c", main])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave))
        .stderr(log);
    let mut child = cmd.spawn().unwrap();
    let _g = Guard::dir(&dir);
    wait_for_log(&dir, "reaper's stdout took nothing for 1s");
    assert!(stderr_of(&dir).contains("cannot reopen reaper's stdout (a terminal)"), "{}", stderr_of(&dir));
    let reaper = children(child.id() as i32);
    assert_eq!(reaper.len(), 1, "strace's one child: reaper");
    // SAFETY: kill(2) to reaper, strace's child, alive (it logged just now).
    unsafe { libc::kill(reaper[0], libc::SIGTERM) };
    assert_eq!(exited(&mut child, Duration::from_secs(15)), 7, "{}", stderr_of(&dir));
}

/// A terminal (master, slave); the master stays with the test, open and unread.
fn terminal() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty(3) fills in two descriptors; no name, termios or size asked for.
    let rc = unsafe {
        libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null())
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are ours, just opened.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

// A read of a command's pipe fails (ENOMEM forced with strace on every fifth of reaper's reads;
// the signalfd's share only delays a wake-up's signals): the pipe is read again later, not
// closed. Before, the command's next write got SIGPIPE (exit 141) and lines were lost.
#[test]
fn a_failed_read_of_a_pipe_loses_neither_the_command_nor_its_lines() {
    let Some(strace) = which("strace").filter(|_| !emulated()) else {
        return skip("strace (and not under qemu-user)");
    };
    let dir = tempdir("logs-read-enomem");
    let log = std::fs::File::create(dir.join(STDERR)).unwrap();
    let main = "i=0; while [ $i -lt 30000 ]; do echo line $i; i=$((i+1)); done; exit 7";
    let mut cmd = std::process::Command::new(strace);
    cmd.args(["-o", "strace.log", "-e", "trace=read", "-e", "inject=read:error=ENOMEM:when=10+5"])
        .args([REAPER, "--prefix-output", "--", "sh", "-c", main])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    let mut child = cmd.spawn().unwrap();
    let _g = Guard::dir(&dir);
    let (got, reader) = collect(child.stdout.take().unwrap());
    assert_eq!(exited(&mut child, Duration::from_secs(60)), 7, "{}", stderr_of(&dir));
    reader.join().unwrap();
    let want: String = (0..30000).map(|i| format!("sh | line {i}\n")).collect();
    assert!(text(&got.lock().unwrap()) == want, "lines lost or torn; stderr: {}", stderr_of(&dir));
}

// reaper's stdout and stderr are one pipe nobody reads (`2>&1 | stalled`). The commands' lines
// fill it (each write after POLLOUT), then reaper logs that its reader stalled: that line of
// its own must not be a blocking write to the full pipe either. TERM still stops the command.
both_modes!(reapers_own_lines_do_not_block_on_a_full_stderr, |mode| {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let dir = tempdir("logs-own-lines");
    let mut ends = [-1; 2];
    // SAFETY: pipe2(2) fills in two descriptors, owned at once.
    assert_eq!(unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both just made, ours alone. The read end stays open, unread, to the end.
    let (_read, write) = unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
    let main = "trap 'exit 7' TERM; yes flood >&2 & while :; do sleep 0.05; done";
    let mut cmd = reaper_cmd(mode, ["--prefix-output", "--", "sh", "-c", main]);
    let kept = write.try_clone().unwrap();
    cmd.current_dir(&dir).stdout(Stdio::from(write.try_clone().unwrap())).stderr(Stdio::from(write));
    let mut r = Reaper::start(mode, &mut cmd);
    let _g = Guard::new(&r, &dir);
    // Full: no room for a write (poll on a write end of our own says no POLLOUT).
    let full = || {
        let mut fd = libc::pollfd { fd: kept.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
        // SAFETY: poll(2) on one pollfd of ours, zero timeout.
        unsafe { libc::poll(&mut fd, 1, 0) == 0 }
    };
    assert!(wait_until(Duration::from_secs(20), full), "the pipe never filled");
    // The stall is said 1s after the pipe filled: the old code then sleeps in pipe_write.
    let blocked =
        || std::fs::read_to_string(format!("/proc/{}/wchan", r.pid)).is_ok_and(|w| w.contains("pipe_write"));
    wait_until(Duration::from_secs(3), blocked);
    r.signal(libc::SIGTERM);
    assert_eq!(exited(&mut r.child, Duration::from_secs(15)), 7);
});

// stdout and stderr the same terminal, read in small pieces: written without blocking, the
// terminal takes part of a write when its room is short; the other stream's lines must not
// land in the middle of the line left half out.
both_modes!(two_streams_on_one_terminal_do_not_tear, |mode| {
    use std::os::fd::AsRawFd;
    let dir = tempdir("logs-tty-tear");
    let (master, slave) = terminal();
    let main = "yes outoutoutoutoutoutoutoutoutoutout | head -n 100000 & \
                yes errerrerrerrerrerrerrerrerrerrerrerrerr | head -n 100000 >&2 & wait";
    let mut cmd = reaper_cmd(mode, ["--prefix-output", "--", "sh", "-c", main]);
    cmd.current_dir(&dir).stdout(Stdio::from(slave.try_clone().unwrap())).stderr(Stdio::from(slave));
    let mut r = Reaper::start(mode, &mut cmd);
    let _g = Guard::new(&r, &dir);
    drop(cmd); // its copies of the slave: the reader ends when reaper and its commands are gone
    let reader = std::thread::spawn(move || {
        let (mut got, mut buf) = (Vec::new(), [0u8; 300]);
        // SAFETY: read(2) into our own buffer; EIO once every slave is closed.
        while let n @ 1.. = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } {
            got.extend_from_slice(&buf[..n as usize]);
        }
        got
    });
    assert_eq!(exited(&mut r.child, Duration::from_secs(120)), 0);
    let out = text(&reader.join().unwrap());
    let whole = ["sh | outoutoutoutoutoutoutoutoutoutout", "sh | errerrerrerrerrerrerrerrerrerrerrerrerr"];
    let torn: Vec<&str> =
        out.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !whole.contains(l)).collect();
    assert!(
        torn.iter().all(|l| l.starts_with("reaper | dropped ")),
        "torn lines: {:?}",
        &torn[..torn.len().min(3)]
    );
});

// Someone lowers reaper's open-file limit below the size of its poll set (prlimit from
// outside): every poll(2) then fails with EINVAL. reaper must not spin on it: it says so once,
// waits for signals alone (a second at a time), and TERM still stops the command.
both_modes!(a_poll_that_keeps_failing_does_not_spin_and_the_stop_still_works, |mode| {
    let dir = tempdir("logs-poll-einval");
    let main = "trap 'exit 7' TERM; trap '' USR1; echo up; while :; do sleep 0.05; done";
    let (mut r, _g, out) = start_piped(mode, &dir, &["--prefix-output", "--", "sh", "-c", main]);
    let (got, _reader) = collect(out);
    assert!(
        wait_until(Duration::from_secs(20), || text(&got.lock().unwrap()).contains("sh | up\n")),
        "{}",
        stderr_of(&dir)
    );
    let limit = std::process::Command::new("prlimit")
        .args(["--pid", &r.pid.to_string(), "--nofile=1:1"])
        .status()
        .unwrap();
    assert!(limit.success());
    // The limit counts from reaper's next poll: a forwarded signal wakes it.
    r.signal(libc::SIGUSR1);
    let said = || stderr_of(&dir).matches("reaper: ERROR poll: ").count();
    assert!(wait_until(Duration::from_secs(20), || said() == 1), "{}", stderr_of(&dir));
    // CPU time (user + system, in clock ticks) over 2 s: a spinning loop takes most of it.
    let cpu = || {
        let f = stat_fields(r.pid).unwrap();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let before = cpu();
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let used = cpu() - before;
    assert!(used * 4 < ticks, "{mode:?}: {used} ticks of CPU in 2 s with poll failing");
    r.signal(libc::SIGTERM);
    assert_eq!(exited(&mut r.child, Duration::from_secs(20)), 7, "{}", stderr_of(&dir));
    assert_eq!(said(), 1, "{}", stderr_of(&dir));
});

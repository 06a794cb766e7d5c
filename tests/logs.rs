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

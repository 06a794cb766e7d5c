//! Hardening (issue 6): storms, faults and hostile input, with measured figures.
//!
//! Every figure is printed with `eprintln!` (run with `--nocapture` to see them) and asserted
//! only loosely: the machine is small and shared. `REAPER_LONG_TESTS=1` switches the load tests
//! and the fuzzing to their full size (100,000 reaps, 100,000 signals, many more fuzz cases);
//! the default sizes keep this file well under two minutes.
//!
//! Load tests need a command that creates orphans faster than a shell can: this test binary
//! itself, re-run as `helper_orphan_factory` (an ignored test that only acts when
//! `REAPER_HARDENING_HELPER` is set), driven line by line over its stdin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reaper::options::{self, Parsed};

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// `REAPER_LONG_TESTS=1`: full-size load tests and long fuzzing.
fn long() -> bool {
    std::env::var_os("REAPER_LONG_TESTS").is_some_and(|v| v == "1")
}

fn size(default: usize, long_size: usize) -> usize {
    if long() { long_size } else { default }
}

/// The load tests each want the whole (2-core) machine and thousands of pids: one at a time.
fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

const NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];

/// A command in its own process group (so `run_with_timeout` can clean it up).
fn command<S: AsRef<OsStr>>(prog: &str, args: impl IntoIterator<Item = S>) -> Command {
    let mut c = Command::new(prog);
    c.args(args).stdin(Stdio::null()).process_group(0);
    c
}

/// `unshare [FLAGS] sh -c SCRIPT reaper ARGS...`: SCRIPT prepares the namespace and ends
/// with `exec "$0" "$@"`, which becomes reaper.
fn in_namespace<S: AsRef<OsStr>>(flags: &[&str], script: &str, args: impl IntoIterator<Item = S>) -> Command {
    let mut c = command("unshare", flags);
    c.args(["sh", "-c", script, REAPER]).args(args);
    c
}

/// A start failure: exit 1, exactly one line `reaper: ...` naming `needle`.
fn assert_start_error(code: i32, stderr: &str, needle: &str, what: &str) {
    assert_eq!(code, 1, "{what}: exit code (stderr {stderr:?})");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: want one line, got {stderr:?}");
    assert!(
        lines[0].starts_with("reaper: ") && lines[0].contains(needle),
        "{what}: want 'reaper: ...{needle}...', got {stderr:?}"
    );
}

/// reaper's stderr, collected in the background.
#[derive(Clone, Default)]
struct Stderr {
    text: Arc<Mutex<String>>,
    closed: Arc<AtomicBool>,
}

impl Stderr {
    fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    fn contains(&self, needle: &str) -> bool {
        self.text.lock().unwrap().contains(needle)
    }

    /// Everything, once every writer has closed the pipe (reaper has exited).
    fn all(&self) -> String {
        assert!(
            wait_until(Duration::from_secs(10), || self.closed.load(Ordering::SeqCst)),
            "stderr still open"
        );
        self.text()
    }
}

/// A started reaper whose stderr is collected in the background.
fn start_capturing(mode: Mode, cmd: &mut Command) -> (Reaper, Stderr) {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut r = Reaper::start(mode, cmd);
    let err = Stderr::default();
    let mut pipe = r.child.stderr.take().unwrap();
    let sink = err.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.text.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        sink.closed.store(true, Ordering::SeqCst);
    });
    (r, err)
}

/// reaper has read every signal sent to it (nothing pending, shared or per-thread).
fn no_pending_signals(pid: i32) -> bool {
    ["SigPnd", "ShdPnd"].iter().all(|f| status_field(pid, f).is_some_and(|v| v.bytes().all(|b| b == b'0')))
}

fn vm_hwm_kb(pid: i32) -> u64 {
    let v = status_field(pid, "VmHWM").expect("VmHWM");
    v.trim_end_matches("kB").trim().parse().expect("VmHWM in kB")
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
    // stat(5): utime and stime are fields 14 and 15; we start counting at field 3.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

fn monotonic_now() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime fills the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// A pidfd: signals sent through it can never hit a recycled pid once reaper is gone.
fn pidfd(pid: i32) -> OwnedFd {
    // SAFETY: pidfd_open(2) returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    assert!(fd >= 0, "pidfd_open({pid}): {}", std::io::Error::last_os_error());
    // SAFETY: the kernel just gave us this descriptor.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Whether the process held by `fd` has exited (its pidfd is readable).
fn exited(fd: &OwnedFd) -> bool {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: poll(2) of one valid pollfd, without waiting.
    unsafe { libc::poll(&mut p, 1, 0) == 1 }
}

/// pidfd_send_signal(2): 0 or the errno.
fn pidfd_kill(fd: &OwnedFd, sig: i32) -> i32 {
    // SAFETY: raw syscall with a valid pidfd and a null siginfo.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc == 0 { 0 } else { std::io::Error::last_os_error().raw_os_error().unwrap_or(-1) }
}

#[derive(Debug, Default)]
struct Storm {
    /// Signals the kernel accepted.
    sent: u64,
    /// EAGAIN: the real-time queue was full; retried.
    full: u64,
    elapsed: Duration,
    /// The target died (ESRCH) while we were sending.
    gone: bool,
}

/// Sends `limit` signals (cycling through `sigs`) to `pid` as fast as one thread can, until
/// `stop` is set, the target dies, or `max` passes.
fn storm(pid: i32, sigs: &[i32], limit: u64, stop: &AtomicBool, max: Duration) -> Storm {
    storm_at(pid, false, sigs, limit, stop, max)
}

/// [`storm`], to the process (`thread` false: the queue SIGCHLD is in) or to its main thread
/// (tgkill: a queue of its own, which the kernel empties first).
fn storm_at(pid: i32, thread: bool, sigs: &[i32], limit: u64, stop: &AtomicBool, max: Duration) -> Storm {
    let fd = pidfd(pid);
    let send = |sig: i32| match thread {
        false => pidfd_kill(&fd, sig),
        // The pidfd turns readable when reaper exits; only before that is `pid` surely
        // reaper's (once reaped, by this test or by unshare, the number is free for reuse).
        true if exited(&fd) => libc::ESRCH,
        // SAFETY: raw tgkill(2) to the main thread of the reaper this test started, alive a
        // moment ago (the window to a reused pid is the exit, reap and a new fork in between).
        true => match unsafe { libc::syscall(libc::SYS_tgkill, pid, pid, sig) } {
            0 => 0,
            _ => std::io::Error::last_os_error().raw_os_error().unwrap_or(-1),
        },
    };
    let start = Instant::now();
    let mut s = Storm::default();
    let (mut i, mut tries) = (0usize, 0u64);
    while s.sent < limit {
        tries += 1;
        if tries % 256 == 0 && (stop.load(Ordering::Relaxed) || start.elapsed() > max) {
            break;
        }
        match send(sigs[i % sigs.len()]) {
            0 => {
                s.sent += 1;
                i += 1;
            }
            libc::EAGAIN => {
                s.full += 1;
                std::thread::yield_now();
            }
            libc::ESRCH => {
                s.gone = true;
                break;
            }
            e => panic!("pidfd_send_signal: errno {e}"),
        }
    }
    s.elapsed = start.elapsed();
    s
}

const RTMIN: i32 = 34;
/// The mixed storm: the usual job-control and reload signals plus real-time ones (which queue
/// instead of merging).
const STORM_SIGNALS: [i32; 8] =
    [libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH, libc::SIGHUP, RTMIN, RTMIN + 1, RTMIN + 3, 64];

/// A Python command that counts the storm signals it receives. After TERM it exits 42; with a
/// nonzero `exit_after` it exits 43 by itself once it has counted that many. Either way it
/// first writes `sig:count ...` and its CLOCK_MONOTONIC exit time to `out`.
fn counter(out: &Path, exit_after: u32) -> Vec<String> {
    let sigs: Vec<String> = STORM_SIGNALS.iter().map(|s| s.to_string()).collect();
    let script = format!(
        r#"
import os, signal, sys, time
out, exit_after, counts, done = {out:?}, {exit_after}, {{}}, [False]
def finish(code):
    if done[0]:
        return
    done[0] = True
    with open(out + ".tmp", "w") as f:
        f.write(" ".join("%d:%d" % kv for kv in sorted(counts.items())))
        f.write("\n%r\n" % time.clock_gettime(time.CLOCK_MONOTONIC))
    os.rename(out + ".tmp", out)
    os._exit(code)
def h(n, f):
    counts[n] = counts.get(n, 0) + 1
    if exit_after and sum(counts.values()) >= exit_after:
        finish(43)
for n in [{sigs}, signal.SIGTERM]:
    signal.signal(n, h)
open(out + ".ready", "w").close()
# Not from the TERM handler: Python runs the handlers of signals that arrived together in
# numeric order, and TERM (15) must not cut short those of the real-time ones.
while signal.SIGTERM not in counts:
    time.sleep(0.05)
finish(42)
"#,
        out = out.to_str().unwrap(),
        sigs = sigs.join(", "),
    );
    vec!["python3".into(), "-c".into(), script]
}

/// What a `counter` wrote: per-signal counts and its exit time.
fn counter_report(out: &Path) -> (BTreeMap<i32, u64>, f64) {
    let text = std::fs::read_to_string(out).expect("counter report");
    let mut lines = text.lines();
    let counts = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|kv| kv.split_once(':'))
        .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
        .collect();
    let at = lines.next().unwrap().parse().unwrap();
    (counts, at)
}

// ---------------------------------------------------------------------------------------------
// The orphan factory: this test binary re-run as reaper's command
// ---------------------------------------------------------------------------------------------

const HELPER_ENV: &str = "REAPER_HARDENING_HELPER";
/// Marks the factory's answers among libtest's output.
const REPLY: &str = "factory: ";

/// Not a test: the command the load tests run under reaper. Reads commands from stdin:
/// `instant N` (N orphans that exit at once), `held N` (N orphans blocked on a pipe),
/// `release` (lets the held ones exit, all at once), `exit CODE`. Answers `ok SECONDS FAILED`.
#[test]
#[ignore = "helper process: the load tests run it as reaper's command"]
fn helper_orphan_factory() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let mut held: Option<(i32, i32)> = None;
    let mut out = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let mut words = line.split_whitespace();
        let (verb, n) =
            (words.next().unwrap_or(""), words.next().and_then(|n| n.parse::<usize>().ok()).unwrap_or(0));
        let reply = match verb {
            "instant" => {
                let (t, failed) = make_orphans(n, None);
                format!("ok {} {failed}", t.as_secs_f64())
            }
            "held" => {
                let mut fds = [0; 2];
                // SAFETY: pipe(2) into a 2-element array.
                assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
                held = Some((fds[0], fds[1]));
                let (t, failed) = make_orphans(n, held);
                format!("ok {} {failed}", t.as_secs_f64())
            }
            "release" => {
                if let Some((r, w)) = held.take() {
                    // SAFETY: closing our own pipe ends; EOF releases every held orphan.
                    unsafe {
                        libc::close(w);
                        libc::close(r);
                    }
                }
                "ok 0 0".to_string()
            }
            "exit" => std::process::exit(n as i32),
            _ => format!("bad command {line:?}"),
        };
        // On a line of its own: libtest has printed "test helper_orphan_factory ... ".
        writeln!(out, "\n{REPLY}{reply}").unwrap();
        out.flush().unwrap();
    }
    std::process::exit(3);
}

/// Creates `n` orphans: workers each fork up to 100 children and exit without waiting, so
/// the children are re-parented to reaper. With `hold`, the children block reading the pipe
/// until it is closed; otherwise they exit at once. Returns the time taken and how many
/// forks failed.
fn make_orphans(n: usize, hold: Option<(i32, i32)>) -> (Duration, usize) {
    let start = Instant::now();
    let mut failed = 0;
    let mut left = n;
    while left > 0 {
        let k = left.min(100);
        left -= k;
        // SAFETY: the children only call async-signal-safe functions (fork, close, read,
        // _exit) before exiting.
        let worker = unsafe { libc::fork() };
        if worker == 0 {
            for _ in 0..k {
                // SAFETY: as above.
                let child = unsafe { libc::fork() };
                if child == 0 {
                    if let Some((r, w)) = hold {
                        let mut b = 0u8;
                        // SAFETY: plain syscalls on our own descriptors and stack byte.
                        unsafe {
                            libc::close(w);
                            while libc::read(r, (&mut b as *mut u8).cast(), 1) < 0
                                && *libc::__errno_location() == libc::EINTR
                            {}
                        }
                    }
                    // SAFETY: _exit without running the parent's atexit handlers.
                    unsafe { libc::_exit(0) };
                }
                if child < 0 {
                    // SAFETY: as above.
                    unsafe { libc::_exit(1) };
                }
            }
            // SAFETY: as above.
            unsafe { libc::_exit(0) };
        }
        if worker < 0 {
            failed += k;
            continue;
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(worker, &mut status, 0) };
        if status != 0 {
            failed += 1;
        }
    }
    (start.elapsed(), failed)
}

/// reaper running the orphan factory.
struct Factory {
    r: Reaper,
    stdin: ChildStdin,
    replies: Receiver<String>,
}

impl Factory {
    /// reaper `options` running the factory; reaper's stderr goes to /dev/null.
    fn start(mode: Mode, options: &[&str]) -> Factory {
        let exe = std::env::current_exe().unwrap();
        let mut args: Vec<OsString> = options.iter().map(OsString::from).collect();
        args.push(exe.into_os_string());
        for a in ["helper_orphan_factory", "--exact", "--ignored", "--nocapture", "--test-threads=1"] {
            args.push(a.into());
        }
        let mut cmd = reaper_cmd(mode, args);
        cmd.env(HELPER_ENV, "1").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut r = Reaper::start(mode, &mut cmd);
        let stdin = r.child.stdin.take().unwrap();
        let stdout = r.child.stdout.take().unwrap();
        let (tx, replies) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest's own chatter ("running 1 test") is not for us.
                if let Some(reply) = line.strip_prefix(REPLY) {
                    if tx.send(reply.to_owned()).is_err() {
                        break;
                    }
                }
            }
        });
        Factory { r, stdin, replies }
    }

    /// Sends one command; returns the factory's (seconds, failures).
    fn ask(&mut self, line: &str, timeout: Duration) -> (f64, usize) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let reply = self
            .replies
            .recv_timeout(timeout)
            .unwrap_or_else(|_| panic!("no answer to '{line}' within {timeout:?}"));
        let w: Vec<&str> = reply.split_whitespace().collect();
        (w[1].parse().unwrap(), w[2].parse().unwrap())
    }

    /// Tells the factory to exit with `code` (no answer comes); returns reaper's exit code.
    fn exit(mut self, code: i32) -> i32 {
        writeln!(self.stdin, "exit {code}").unwrap();
        let _ = self.stdin.flush();
        self.r.code(Duration::from_secs(30))
    }

    /// Waits until reaper's only child is the factory (every orphan reaped); returns how
    /// long that took.
    fn wait_all_reaped(&self, helper: i32, timeout: Duration) -> Duration {
        let start = Instant::now();
        let mut last = Vec::new();
        let ok = wait_until(timeout, || {
            last = children(self.r.pid);
            last == [helper]
        });
        assert!(
            ok,
            "{:?}: {} children left under reaper after {timeout:?} ({} zombies)",
            self.r.mode,
            last.len(),
            zombies_under(self.r.pid).len()
        );
        start.elapsed()
    }
}

// ---------------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------------

/// 10,000 orphans created as fast as possible, as PID 1 and as a subreaper: none is left as a
/// zombie. Twice: orphans that exit at once (a continuous SIGCHLD stream while they are
/// created), then orphans held alive until all are re-parented and released together (one
/// burst of 10,000 exits, whose SIGCHLDs merge).
#[test]
fn orphan_storm_leaves_no_zombie() {
    let _heavy = heavy();
    let n = 10_000;
    for mode in MODES {
        let mut f = Factory::start(mode, &[]);
        let helper = f.r.command_pid();

        let start = Instant::now();
        let (created, failed) = f.ask(&format!("instant {n}"), Duration::from_secs(120));
        assert_eq!(failed, 0, "{mode:?}: forks failed");
        f.wait_all_reaped(helper, Duration::from_secs(60));
        let instant_total = start.elapsed().as_secs_f64();
        assert!(zombies_under(f.r.pid).is_empty());

        let (held_created, failed) = f.ask(&format!("held {n}"), Duration::from_secs(120));
        assert_eq!(failed, 0, "{mode:?}: forks failed");
        // Every one of them is reaper's child now: the test really measures reaper.
        let mut count = 0;
        assert!(
            wait_until(Duration::from_secs(30), || {
                count = children(f.r.pid).len();
                count == n + 1
            }),
            "{mode:?}: {count} children under reaper, want {} (orphans not re-parented?)",
            n + 1
        );
        let release = Instant::now();
        f.ask("release", Duration::from_secs(10));
        f.wait_all_reaped(helper, Duration::from_secs(60));
        let burst = release.elapsed();
        assert!(zombies_under(f.r.pid).is_empty());

        eprintln!(
            "orphan storm {mode:?}: {n} orphans created in {created:.2}s, all reaped \
             {instant_total:.2}s after the first fork ({:.0} ms after the last); {n} held \
             orphans (created in {held_created:.2}s) released together: all exited and reaped \
             within {:.2}s",
            (instant_total - created).max(0.0) * 1000.0,
            burst.as_secs_f64()
        );
        assert_eq!(f.exit(7), 7, "{mode:?}");
    }
}

/// Memory stays flat: reaper's peak RSS after many reaps is within 64 KB of its peak after the
/// first 1,000. Default 20,000 reaps; 100,000 with REAPER_LONG_TESTS=1. Also with
/// --warn-on-reap, where every reap reads /proc and formats a log line.
#[test]
fn memory_stays_flat_over_many_reaps() {
    if skip_under_emulation("VmHWM is qemu-user's, whose cache of translated code grows with new paths") {
        return;
    }
    let _heavy = heavy();
    let (first, total) = (1_000, size(20_000, 100_000));
    for (mode, options) in [(Mode::Pid1, &[][..]), (Mode::Subreaper, &[]), (Mode::Subreaper, &["-w"])] {
        let mut f = Factory::start(mode, options);
        let helper = f.r.command_pid();
        f.ask(&format!("instant {first}"), Duration::from_secs(60));
        f.wait_all_reaped(helper, Duration::from_secs(60));
        let before = vm_hwm_kb(f.r.pid);
        let start = Instant::now();
        // In batches, so no more than 10,000 zombies wait at once.
        let mut done = first;
        while done < total {
            let n = (total - done).min(10_000);
            let (_, failed) = f.ask(&format!("instant {n}"), Duration::from_secs(300));
            assert_eq!(failed, 0, "{mode:?}: forks failed");
            f.wait_all_reaped(helper, Duration::from_secs(60));
            done += n;
        }
        let after = vm_hwm_kb(f.r.pid);
        eprintln!(
            "memory {mode:?} {options:?}: VmHWM {before} kB after {first} reaps, {after} kB \
             after {total} reaps ({:+} kB; {:.1}s for the rest)",
            after as i64 - before as i64,
            start.elapsed().as_secs_f64()
        );
        assert!(after <= before + 64, "{mode:?}: VmHWM grew from {before} kB to {after} kB");
        assert_eq!(f.exit(0), 0, "{mode:?}");
    }
}

/// A storm of mixed signals at reaper while the command runs: reaper survives, keeps
/// forwarding (the command counts every kind), and the command's exit status comes through.
/// Default 20,000 signals; 100,000 with REAPER_LONG_TESTS=1.
#[test]
fn signal_storm_is_survived_and_forwarded() {
    if skip_under_emulation("qemu-user renumbers real-time signals (the storm sends RTMIN..64)") {
        return;
    }
    let _heavy = heavy();
    let n = size(20_000, 100_000) as u64;
    for mode in MODES {
        let dir = tempdir("storm");
        let out = dir.join("counts");
        let (mut r, err) = start_capturing(mode, &mut reaper_cmd(mode, counter(&out, 0)));
        assert!(
            wait_for_file(&out.with_extension("ready"), Duration::from_secs(20)),
            "counter never got ready"
        );
        let command = r.command_pid();
        let cpu_before = cpu_seconds(r.pid);
        let s = storm(r.pid, &STORM_SIGNALS, n, &AtomicBool::new(false), Duration::from_secs(120));
        assert!(!s.gone, "{mode:?}: reaper died during the storm: {s:?}");
        assert_eq!(s.sent, n, "{mode:?}: storm cut short: {s:?}");
        assert!(alive(r.pid), "{mode:?}: reaper is not running after the storm");
        // reaper works through the whole backlog (and the command through what it was sent)...
        let backlog = Instant::now();
        assert!(
            wait_until(Duration::from_secs(60), || no_pending_signals(r.pid)),
            "{mode:?}: reaper did not read its pending signals"
        );
        let backlog = backlog.elapsed();
        let cpu = cpu_seconds(r.pid) - cpu_before;
        assert!(wait_until(Duration::from_secs(60), || no_pending_signals(command)));
        // ...and still forwards: TERM reaches the command, whose status (42) comes back.
        r.signal(libc::SIGTERM);
        let code = r.code(Duration::from_secs(30));
        let (counts, _) = counter_report(&out);
        eprintln!(
            "signal storm {mode:?}: {} signals in {:.3}s ({:.0}/s, {} EAGAIN retries); the \
             command counted {counts:?} (merged signals count once); backlog read {:.0} ms \
             after the last send; reaper used {cpu:.2}s CPU ({:.1} us/signal); reaper stderr: {} \
             lines",
            s.sent,
            s.elapsed.as_secs_f64(),
            s.sent as f64 / s.elapsed.as_secs_f64(),
            s.full,
            backlog.as_secs_f64() * 1000.0,
            cpu * 1e6 / s.sent as f64,
            err.all().lines().count()
        );
        assert_eq!(code, 42, "{mode:?}: exit status; stderr {}", err.text());
        for sig in STORM_SIGNALS {
            assert!(
                counts.get(&sig).copied().unwrap_or(0) > 0,
                "{mode:?}: the command never got signal {sig}: {counts:?}"
            );
        }
        assert_eq!(counts.get(&libc::SIGTERM), Some(&1), "{mode:?}");
    }
}

/// The command exits in the middle of a signal storm: its SIGCHLD must not be lost among the
/// storm's signals, so reaper exits promptly with the command's status. Repeated, as it is a
/// race (5 rounds per mode; 25 with REAPER_LONG_TESTS=1).
#[test]
fn sigchld_is_not_lost_in_a_storm() {
    sigchld_in_a_storm(false);
}

/// As [`sigchld_is_not_lost_in_a_storm`], the storm aimed at reaper's thread: the kernel hands
/// out thread-directed signals before the process-wide SIGCHLD, so with the real-time ones
/// queueing, SIGCHLD may not come out of the queue while the storm lasts. reaper reaps at
/// least once per batch of signals all the same.
#[test]
fn sigchld_is_not_lost_in_a_thread_directed_storm() {
    sigchld_in_a_storm(true);
}

fn sigchld_in_a_storm(thread: bool) {
    if skip_under_emulation("qemu-user renumbers real-time signals (the storm sends RTMIN..64)") {
        return;
    }
    let _heavy = heavy();
    let rounds = size(5, 25);
    for mode in MODES {
        let (mut worst, mut total_sent) = (0.0f64, 0u64);
        for round in 0..rounds {
            let dir = tempdir("chld");
            let out = dir.join("counts");
            let mut r = Reaper::start(mode, &mut reaper_cmd(mode, counter(&out, 200)));
            assert!(wait_for_file(&out.with_extension("ready"), Duration::from_secs(20)));
            let stop = Arc::new(AtomicBool::new(false));
            let (pid, flag) = (r.pid, stop.clone());
            let sender = std::thread::spawn(move || {
                storm_at(pid, thread, &STORM_SIGNALS, u64::MAX, &flag, Duration::from_secs(60))
            });
            let st = r.wait_timeout(Duration::from_secs(30));
            let seen = monotonic_now();
            stop.store(true, Ordering::Relaxed);
            let s = sender.join().unwrap();
            let st = st.unwrap_or_else(|| {
                panic!("{mode:?} round {round}: reaper still running 30s into the storm ({s:?})")
            });
            assert_eq!(exit_code(st), 43, "{mode:?} round {round}");
            assert!(
                s.elapsed < Duration::from_secs(60),
                "{mode:?}: the storm ended before reaper did: {s:?}"
            );
            let (_, exited_at) = counter_report(&out);
            worst = worst.max(seen - exited_at);
            total_sent += s.sent;
        }
        eprintln!(
            "SIGCHLD in a storm (thread-directed: {thread}) {mode:?}: {rounds} rounds, {total_sent} signals; reaper exited \
             with the command's status at most {:.0} ms after the command (incl. 5 ms polling)",
            worst * 1000.0
        );
        assert!(worst < 5.0, "{mode:?}: reaper took {worst:.1}s to notice");
    }
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

/// A seccomp profile that does not know rt_sigtimedwait answers EPERM: reaper, which waits
/// for signals with it while it watches nothing else, polls its signalfd from then on (after
/// that one failure, never again), and signals are forwarded as before.
#[test]
fn signals_are_forwarded_when_sigtimedwait_is_denied() {
    if skip_under_emulation("strace cannot attach under qemu-user") {
        return;
    }
    if which("strace").is_none() || which("python3").is_none() {
        return eprintln!(
            "signals_are_forwarded_when_sigtimedwait_is_denied: skipped: strace or python3 missing"
        );
    }
    for mode in MODES {
        let dir = tempdir("sigtimedwait");
        let log = dir.join("probe.log");
        let mut r = Reaper::start(mode, &mut reaper_cmd(mode, signal_probe(&log, Some(libc::SIGTERM))));
        assert!(wait_for_file(&log.with_extension("ready"), Duration::from_secs(20)), "{mode:?}");
        let trace = dir.join("strace.log");
        let mut st = Command::new("strace")
            .args(["-p", &r.pid.to_string(), "-o"])
            .arg(&trace)
            .args(["-e", "trace=rt_sigtimedwait,poll", "-e", "inject=rt_sigtimedwait:error=EPERM"])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(st.stderr.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.contains("attached"), "strace: {line}");
        r.signal(libc::SIGUSR1);
        assert!(
            wait_until(Duration::from_secs(20), || probe_log(&log) == [libc::SIGUSR1]),
            "{mode:?}: {:?}",
            probe_log(&log)
        );
        r.signal(libc::SIGTERM);
        let code = r.code(Duration::from_secs(20));
        let _ = st.wait();
        let trace = std::fs::read_to_string(&trace).unwrap();
        assert_eq!((code, probe_log(&log)), (0, vec![libc::SIGUSR1, libc::SIGTERM]), "{mode:?}\n{trace}");
        let denied = trace.lines().filter(|l| l.contains("rt_sigtimedwait(") && l.contains("(INJECTED)"));
        assert_eq!(denied.count(), 1, "{mode:?}: rt_sigtimedwait tried again after EPERM\n{trace}");
        assert!(trace.contains("poll(["), "{mode:?}: never polled\n{trace}");
    }
}

/// The open descriptors of `pid` and what they point to, as the test sees them in /proc.
fn fd_links(pid: i32) -> BTreeMap<i32, String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let fd = e.file_name().to_str()?.parse().ok()?;
                    let target = std::fs::read_link(e.path()).ok()?;
                    Some((fd, target.to_string_lossy().into_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The command reaper started, once it has exec'd `comm`.
fn command_running(r: &Reaper, comm_name: &str) -> i32 {
    let pid = r.command_pid();
    assert!(
        wait_until(Duration::from_secs(20), || comm(pid).as_deref() == Some(comm_name) && settled(pid)),
        "the command never became {comm_name}"
    );
    pid
}

fn close_stdio(cmd: &mut Command) {
    // SAFETY: close(2) only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            for fd in 0..3 {
                libc::close(fd);
            }
            Ok(())
        })
    };
}

/// Started with 0, 1 and 2 closed: reaper's own descriptors (signalfd, pipes) must not land
/// there and be handed to the command, which gets /dev/null and runs. The test looks at the
/// command's descriptors from outside (a shell would add its own).
#[test]
fn closed_stdio_gives_the_command_dev_null() {
    for mode in MODES {
        let mut cmd = match mode {
            Mode::Subreaper => {
                let mut c = command(REAPER, ["sleep", "60"]);
                close_stdio(&mut c);
                c
            }
            Mode::Pid1 => in_namespace(
                &["--pid", "--fork", "--mount-proc", "--kill-child"],
                r#"exec <&- >&- 2>&-; exec "$0" "$@""#,
                ["sleep", "60"],
            ),
        };
        let mut r = Reaper::start(mode, &mut cmd);
        let links = fd_links(command_running(&r, "sleep"));
        assert!(
            (0..3).all(|fd| links.get(&fd).map(String::as_str) == Some("/dev/null")),
            "{mode:?}: the command's 0-2: {links:?}"
        );
        assert_eq!(
            links.keys().copied().collect::<Vec<_>>(),
            with_inherited(&[0, 1, 2]),
            "{mode:?}: the command's descriptors: {links:?}"
        );
        let own = fd_links(r.pid);
        assert!(
            (0..3).all(|fd| own.get(&fd).map(String::as_str) == Some("/dev/null")),
            "{mode:?}: reaper's 0-2: {own:?}"
        );
        r.signal(libc::SIGTERM);
        assert_eq!(r.code(Duration::from_secs(20)), 128 + libc::SIGTERM, "{mode:?}");
    }
}

/// The same without /dev/null (a tmpfs over /dev): fds 0-2 are then absent for the command,
/// never one of reaper's own descriptors.
#[test]
fn closed_stdio_without_dev_null_leaves_them_closed() {
    if !need_root("closed_stdio_without_dev_null_leaves_them_closed") {
        return;
    }
    let mut cmd = in_namespace(
        &["--mount"],
        r#"mount -t tmpfs none /dev && exec <&- >&- 2>&- && exec "$0" "$@""#,
        ["sleep", "60"],
    );
    let mut r = Reaper::start(Mode::Subreaper, &mut cmd);
    let links = fd_links(command_running(&r, "sleep"));
    assert_eq!(
        links.keys().copied().collect::<Vec<_>>(),
        with_inherited(&[]),
        "the command's descriptors: {links:?}"
    );
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(Duration::from_secs(20)), 128 + libc::SIGTERM);
}

/// As PID 1 without /proc (unmounted in a private mount namespace): orphans are still reaped
/// and signals still forwarded.
#[test]
fn pid1_without_proc_reaps_and_forwards() {
    if !need_root("pid1_without_proc_reaps_and_forwards")
        || skip_under_emulation("umount -l /proc: /proc is locked in test-cross's user namespace")
    {
        return;
    }
    let dir = tempdir("noproc1");
    let (ready, saw_proc) = (dir.join("ready"), dir.join("saw-proc"));
    let script = format!(
        "test -e /proc/self && : > {saw}; trap 'exit 5' USR1; \
         for i in 1 2 3 4 5 6 7 8 9 10; do (sleep 0.1 &); (true &); done; \
         : > {ready}; while :; do sleep 0.05; done",
        saw = saw_proc.display(),
        ready = ready.display()
    );
    let mut cmd = in_namespace(
        &["--mount", "--pid", "--fork", "--kill-child"],
        r#"umount -l /proc && exec "$0" "$@""#,
        ["sh", "-c", &script],
    );
    let (mut r, err) = start_capturing(Mode::Pid1, &mut cmd);
    assert!(wait_for_file(&ready, Duration::from_secs(20)));
    assert!(!saw_proc.exists(), "/proc was still mounted for the command");
    let sh = r.command_pid();
    // The 20 orphans were re-parented to reaper; all of them must be reaped.
    let mut left = Vec::new();
    assert!(
        wait_until(Duration::from_secs(20), || {
            left = children(r.pid);
            left == [sh]
        }),
        "left under reaper: {left:?}"
    );
    r.signal(libc::SIGUSR1);
    assert_eq!(r.code(Duration::from_secs(20)), 5, "{}", err.text());
}

/// As a subreaper with /proc hidden (an empty tmpfs over it), the drain cannot list
/// descendants: it falls back to the command's process group, says so exactly once however
/// often it has to signal, and still kills the leftover.
#[test]
fn subreaper_without_proc_drains_the_process_group_and_warns_once() {
    if !need_root("subreaper_without_proc_drains_the_process_group_and_warns_once") {
        return;
    }
    let dir = tempdir("noproc");
    let (ready, saw_proc) = (dir.join("ready"), dir.join("saw-proc"));
    // The leftover ignores TERM: only the drain's SIGKILL, sent to the group, can end it.
    let script = format!(
        "test -e /proc/self && : > {saw}; trap '' TERM; (sleep 0.1 &); sleep 60 & \
         : > {ready}; exit 4",
        saw = saw_proc.display(),
        ready = ready.display()
    );
    let mut cmd = in_namespace(
        &["--mount"],
        r#"mount -t tmpfs none /proc && exec "$0" "$@""#,
        ["--drain", "2s", "sh", "-c", &script],
    );
    let (mut r, err) = start_capturing(Mode::Subreaper, &mut cmd);
    assert!(wait_for_file(&ready, Duration::from_secs(20)));
    assert!(!saw_proc.exists(), "/proc was still visible to the command");
    const WARNING: &str = "cannot list descendants";
    assert!(
        wait_until(Duration::from_secs(20), || err.contains(WARNING)),
        "no warning; stderr {:?}",
        err.text()
    );
    // Forwarded during the drain: each goes through the fallback again.
    for _ in 0..3 {
        r.signal(libc::SIGWINCH);
    }
    let start = Instant::now();
    let code = r.code(Duration::from_secs(30));
    let stderr = err.all();
    assert_eq!(code, 4, "{stderr}");
    assert!(start.elapsed() < Duration::from_secs(25), "the leftover outlived the drain");
    assert_eq!(stderr.matches(WARNING).count(), 1, "stderr: {stderr}");
}

/// Issue 19: drain, SIGKILL, exit, never hang. Without /proc the SIGKILL reaches only the
/// command's group, and a leftover in a session of its own (`setsid`) survives it: reaper
/// gives up on it `KILL_WAIT` (5 s) after the SIGKILL, says so, and exits with the command's
/// status. (As PID 1, kill(-1) needs no /proc: only the subreaper can miss one this way.)
#[test]
fn subreaper_without_proc_gives_up_on_what_sigkill_cannot_reach() {
    if !need_root("subreaper_without_proc_gives_up_on_what_sigkill_cannot_reach") {
        return;
    }
    let dir = tempdir("noproc-kill");
    let _cleanup = Guard::dir(&dir);
    let mut cmd = in_namespace(
        &["--mount"],
        r#"mount -t tmpfs none /proc && exec "$0" "$@""#,
        [
            "--drain",
            "1s",
            "sh",
            "-c",
            "setsid sh -c ': > detached; exec sleep 120 2>/dev/null' & while [ ! -e detached ]; do sleep 0.01; done; exit 4",
        ],
    );
    cmd.current_dir(&dir);
    // Before the start: reaper may be asleep for the first time only while it waits in vain.
    let start = Instant::now();
    let (mut r, err) = start_capturing(Mode::Subreaper, &mut cmd);
    let code = r.code(Duration::from_secs(40));
    let took = start.elapsed();
    let stderr = err.all();
    assert_eq!(code, 4, "{stderr}");
    assert!(took >= Duration::from_secs(6), "gave up after {took:?}, before --drain + KILL_WAIT: {stderr}");
    assert!(took < Duration::from_secs(30), "took {took:?}: {stderr}");
    assert!(
        stderr.contains(
            "children still there 5s after SIGKILL (/proc could not list them, or the kill was denied)"
        ),
        "{stderr}"
    );
}

/// fork fails (RLIMIT_NPROC as nobody; root ignores it): exit 1 with a message, no hang.
#[test]
fn fork_failure_is_exit_1_with_a_message() {
    if !need_root("fork_failure_is_exit_1_with_a_message")
        || skip_under_emulation("qemu-user starts a thread of its own, which RLIMIT_NPROC=1 forbids")
    {
        return;
    }
    for daemon in [false, true] {
        let mut cmd = command("setpriv", NOBODY);
        cmd.args(["prlimit", "--nproc=1:1", REAPER]);
        if daemon {
            cmd.arg("-d");
        }
        cmd.args(["sh", "-c", "exit 0"]);
        let (code, _, err) = run_with_timeout(&mut cmd, Duration::from_secs(20));
        assert_start_error(code, &err, "fork", &format!("daemon={daemon}"));
    }
}

/// As a non-root user, in both modes, reaper runs the command and passes its status.
#[test]
fn runs_as_non_root() {
    if !need_root("runs_as_non_root") {
        return;
    }
    let script = "(sleep 0.05 &); [ \"$(id -u)\" = \"$1\" ] || exit 99; exit 3";
    let mut sub = command("setpriv", NOBODY);
    sub.args([REAPER, "sh", "-c", script, "sh", "65534"]);
    let (code, _, err) = run_with_timeout(&mut sub, Duration::from_secs(20));
    assert_eq!(code, 3, "subreaper as nobody: {err}");

    let mut pid1 = command("setpriv", NOBODY);
    pid1.args(["unshare", "--user", "--map-root-user", "--pid", "--fork"]).args([
        "--mount-proc",
        "--kill-child",
        REAPER,
        "sh",
        "-c",
        script,
        "sh",
        "0",
    ]);
    let (code, _, err) = run_with_timeout(&mut pid1, Duration::from_secs(20));
    assert_eq!(code, 3, "PID 1 as nobody (user namespace): {err}");
}

/// On a read-only root filesystem reaper runs the command normally (it writes nothing), and
/// a pidfile or log file on a read-only mount is a clear error, exit 1.
#[test]
fn read_only_filesystem() {
    if !need_root("read_only_filesystem") {
        return;
    }
    let mut cmd = in_namespace(
        &["--mount"],
        r#"mount -o remount,bind,ro / && exec "$0" "$@""#,
        ["sh", "-c", "if touch /.reaper-rw-probe 2>/dev/null; then exit 99; fi; exit 4"],
    );
    let (code, _, err) = run_with_timeout(&mut cmd, Duration::from_secs(20));
    assert_eq!(code, 4, "read-only root: {err}");

    let dir = tempdir("ro");
    let d = dir.to_str().unwrap();
    let ro = r#"mount --bind "$D" "$D" && mount -o remount,bind,ro "$D" && exec "$0" "$@""#;
    for (args, needle) in [
        (vec!["--pidfile", &format!("{d}/p.pid"), "true"], "p.pid"),
        (vec!["-d", "--pidfile", &format!("{d}/p.pid"), "true"], "p.pid"),
        (vec!["-d", "--stdout", &format!("{d}/out.log"), "true"], "out.log"),
        (vec!["-d", "--stderr", &format!("{d}/err.log"), "true"], "err.log"),
    ] {
        let mut cmd = in_namespace(&["--mount"], ro, &args);
        cmd.env("D", d);
        let (code, _, err) = run_with_timeout(&mut cmd, Duration::from_secs(20));
        assert_start_error(code, &err, needle, &format!("{args:?}"));
        assert!(err.contains("Read-only"), "{args:?}: {err}");
    }
}

/// A pidfile or log directory the (non-root) user cannot write: clear error, exit 1, nothing
/// created.
#[test]
fn unwritable_pidfile_or_log_directory() {
    if !need_root("unwritable_pidfile_or_log_directory") {
        return;
    }
    let dir = tempdir("unwritable");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = dir.to_str().unwrap();
    for (args, needle) in [
        (vec!["--pidfile", &format!("{d}/p.pid"), "true"], "p.pid"),
        (vec!["-d", "--pidfile", &format!("{d}/p.pid"), "true"], "p.pid"),
        (vec!["-d", "--stdout", &format!("{d}/out.log"), "true"], "out.log"),
        (vec!["-d", "--stderr", &format!("{d}/err.log"), "true"], "err.log"),
    ] {
        let mut cmd = command("setpriv", NOBODY);
        cmd.arg(REAPER).args(&args);
        let (code, _, err) = run_with_timeout(&mut cmd, Duration::from_secs(20));
        assert_start_error(code, &err, needle, &format!("{args:?}"));
        assert!(err.contains("denied"), "{args:?}: {err}");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "{args:?}");
    }
}

/// The command exits while a burst of signals is being forwarded: the sends that find it gone
/// (ESRCH) are normal, so no error exit and nothing on stderr at the default level.
#[test]
fn command_exiting_during_a_signal_burst_is_quiet() {
    let _heavy = heavy();
    // Signals the command ignores by default, so the burst cannot kill it.
    let sigs = [libc::SIGWINCH, libc::SIGURG, libc::SIGCONT];
    for mode in MODES {
        for group in [false, true] {
            let mut args = vec![];
            if group {
                args.push("-g");
            }
            args.extend(["sh", "-c", "sleep 0.3; exit 3"]);
            let (mut r, err) = start_capturing(mode, &mut reaper_cmd(mode, &args));
            let stop = Arc::new(AtomicBool::new(false));
            let (pid, flag) = (r.pid, stop.clone());
            let sender =
                std::thread::spawn(move || storm(pid, &sigs, u64::MAX, &flag, Duration::from_secs(60)));
            let code = r.code(Duration::from_secs(30));
            stop.store(true, Ordering::Relaxed);
            let s = sender.join().unwrap();
            assert!(s.sent > 0 && s.elapsed < Duration::from_secs(60), "{s:?}");
            let what = format!("{mode:?} -g={group}, {} signals", s.sent);
            assert_eq!(code, 3, "{what}");
            assert_eq!(err.all(), "", "{what}: stderr");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile input: fuzzing the option parser
// ---------------------------------------------------------------------------------------------

const OPTIONS: &[&str] = &[
    "-s",
    "--subreaper",
    "--no-subreaper",
    "-g",
    "--process-group",
    "-p",
    "--pdeathsig",
    "-e",
    "--remap-exit",
    "-w",
    "--warn-on-reap",
    "-r",
    "--rewrite",
    "--drain",
    "--drain-signal",
    "-t",
    "--kill-after",
    "--stop-delay",
    "--sleep",
    "-P",
    "--pause",
    "-d",
    "--daemon",
    "--pidfile",
    "--chdir",
    "--umask",
    "--stdout",
    "--stderr",
    "--wait-all",
    "--follow-pidfile",
    "-v",
    "--verbose",
    "-q",
    "--quiet",
    "-h",
    "--help",
    "-V",
    "--version",
    "--",
    "-",
    "-vvq",
    "-gs",
    "-pTERM",
    "-e1",
    "-x",
    "--bogus",
    "--help=1",
    "--probe",
    "--timeout",
    "--also",
    "--respawn",
    "--name",
    "--stop-signal",
    "--ready",
    "--ready-timeout",
    "--after",
    "--restarts",
    "--done",
    "--optional",
    "--prefix-output",
];

const VALUES: &[&str] = &[
    "TERM",
    "SIGTERM",
    "sigkill",
    "RTMIN",
    "RTMIN+3",
    "RTMAX-2",
    "RTMIN+31",
    "0",
    "1",
    "15",
    "32",
    "33",
    "64",
    "65",
    "-1",
    "-15",
    "255",
    "256",
    "3s",
    "500ms",
    "1h 30m",
    "0.5",
    "1e30",
    "99999999999999999999s",
    "18446744073709551616",
    "10000000000000000000s",
    "365d",
    "365d 1ns",
    "TERM:QUIT",
    "CHLD:TERM",
    "USR1:0",
    "HUP:-",
    "1,2,,3",
    "022",
    "777",
    "1000",
    "true",
    "off",
    "",
    " ",
    "/tmp/x",
    "true",
    "sh",
    "tcp:127.0.0.1:80",
    "tcp:[::1]:0",
    "http://h:8080/a?b",
    "http://h/a b",
    "https://h/",
    "unix:@x",
    "file:/x",
    "fresh:1s:/x",
    "fresh:0:/x",
    "notify",
    "fd:3",
    "fd:2",
    "db",
    "sh",
    "sh,db",
    "3/1s",
    "unlimited",
    "--name=db sh",
    "--name db --ready notify sh",
    "--after=sh true",
    "--after=db sh",
    "--restarts=3/1s --done=0 sh",
    "--optional true",
    "--optional=1 true",
    "-- --x",
];

const ENV_VARS: &[&str] = &[
    "REAPER_SUBREAPER",
    "REAPER_PROCESS_GROUP",
    "REAPER_PDEATHSIG",
    "REAPER_REMAP_EXIT",
    "REAPER_WARN_ON_REAP",
    "REAPER_REWRITE",
    "REAPER_DRAIN",
    "REAPER_DRAIN_SIGNAL",
    "REAPER_KILL_AFTER",
    "REAPER_STOP_DELAY",
    "REAPER_PAUSE",
    "REAPER_WAIT_ALL",
    "REAPER_LOG",
    "REAPER_NAME",
    "REAPER_STOP_SIGNAL",
    "REAPER_READY",
    "REAPER_READY_TIMEOUT",
    "REAPER_AFTER",
    "REAPER_PREFIX_OUTPUT",
    "TINI_SUBREAPER",
    "TINI_KILL_PROCESS_GROUP",
    "TINI_VERBOSITY",
];

/// Bytes without NUL (no argv or environment string can hold one).
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![proptest::collection::vec(1u8..=255, 0..16), "[ -~]{0,16}".prop_map(String::into_bytes),]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::sample::select(VALUES).prop_map(|v| v.as_bytes().to_vec()),
        1 => bytes(),
    ]
}

fn arg() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::sample::select(OPTIONS).prop_map(|o| o.as_bytes().to_vec()),
        2 => (proptest::sample::select(OPTIONS), value()).prop_map(|(o, v)| {
            let mut a = o.as_bytes().to_vec();
            a.push(b'=');
            a.extend(v);
            a
        }),
        4 => value(),
    ]
}

type Input = (Vec<Vec<u8>>, Vec<(String, Vec<u8>)>);

fn input() -> impl Strategy<Value = Input> {
    let var = prop_oneof![
        4 => proptest::sample::select(ENV_VARS).prop_map(str::to_owned),
        1 => "(REAPER|TINI)_[A-Z_]{0,8}",
    ];
    (proptest::collection::vec(arg(), 0..8), proptest::collection::vec((var, value()), 0..4))
}

fn parse_input((args, env): &Input) -> Result<Parsed, reaper::error::Error> {
    // The last of a name wins here: the environment is given newest first.
    let env = env.iter().rev().map(|(n, v)| (OsStr::new(n), OsStr::from_bytes(v)));
    options::parse(args.iter().map(|a| OsString::from_vec(a.clone())), env)
}

fn fuzz(name: &str, cases: u32, check: impl Fn(&Input) -> Result<(), TestCaseError>) {
    // A core's worth of work in the long run: not alongside the load tests' measurements.
    let _heavy = heavy();
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let start = Instant::now();
    let result = runner.run(&input(), |i| check(&i));
    eprintln!(
        "fuzz {name}: {cases} cases in {:.2}s: {}",
        start.elapsed().as_secs_f64(),
        match &result {
            Ok(()) => "no finding".to_string(),
            Err(e) => format!("FOUND {e}"),
        }
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// Arbitrary argv and REAPER_*/TINI_* environment never make the parser panic; what it
/// accepts is consistent, and every rejection is a usage error (exit 2).
#[test]
fn fuzz_parse_never_panics() {
    fuzz("parse never panics", size(10_000, 2_000_000) as u32, |i| {
        match parse_input(i) {
            Ok(Parsed::Run(o)) => {
                prop_assert!(o.pause == o.commands.is_empty(), "{o:?}");
                // The main command first, names unique and plain, prerequisites other commands.
                for (i, c) in o.commands.iter().enumerate() {
                    let s = &c.settings;
                    prop_assert!((i == 0) == (s.role == reaper::command::Role::Main), "{o:?}");
                    prop_assert!(!c.argv.is_empty());
                    prop_assert!(reaper::settings::name(&s.name).is_ok(), "{:?}", s.name);
                    prop_assert!(o.commands[..i].iter().all(|d| d.settings.name != s.name), "{o:?}");
                    prop_assert!(s.after.iter().all(|&j| j != i && j < o.commands.len()), "{o:?}");
                    prop_assert!(s.stop_signal.is_none_or(reaper::signals::is_valid));
                }
                prop_assert!(!(o.wait_all && o.follow_pidfile.is_some()));
                prop_assert!(reaper::signals::is_valid(o.drain_signal));
                prop_assert!(o.pdeathsig.is_none_or(reaper::signals::is_valid));
                for &(from, to) in &o.rewrite {
                    prop_assert!(reaper::signals::is_valid(from), "{from}");
                    prop_assert!(to == 0 || reaper::signals::is_valid(to), "{to}");
                    prop_assert!(![libc::SIGCHLD, libc::SIGKILL, libc::SIGSTOP].contains(&from));
                }
                prop_assert!(o.daemon.as_ref().is_none_or(|d| d.umask <= 0o777));
                // Every duration fits a deadline.
                let max = reaper::options::MAX_DURATION;
                prop_assert!(o.drain <= max && o.stop_delay <= max, "{o:?}");
                prop_assert!(o.kill_after.is_none_or(|d| d <= max), "{o:?}");
            }
            Ok(Parsed::Sleep(d)) => prop_assert!(d <= reaper::options::MAX_DURATION, "{d:?}"),
            Ok(Parsed::Probe { checks, timeout, .. }) => {
                prop_assert!(!checks.is_empty());
                prop_assert!(!timeout.is_zero() && timeout <= reaper::options::MAX_DURATION, "{timeout:?}");
                for (spec, check) in &checks {
                    // Nothing that could forge a request line or header, or break the report.
                    prop_assert!(!spec.chars().any(char::is_control), "{spec:?}");
                    if let reaper::probe::Check::Http { path, .. } = check {
                        prop_assert!(path.bytes().all(|b| b.is_ascii_graphic()), "{path:?}");
                    }
                }
            }
            Ok(Parsed::Help | Parsed::Version | Parsed::Ps { .. }) => {}
            Err(e) => prop_assert_eq!(e.exit_code(), 2, "{}", e.report()),
        }
        Ok(())
    });
}

/// Every rejection's report is exactly `reaper: MESSAGE` (one line) and the hint.
#[test]
fn fuzz_rejections_are_one_line() {
    fuzz("rejections are one line", size(10_000, 2_000_000) as u32, |i| {
        if let Err(e) = parse_input(i) {
            let report = e.report();
            let lines: Vec<&str> = report.split('\n').collect();
            prop_assert_eq!(lines.len(), 2, "{:?}", report);
            prop_assert!(lines[0].starts_with("reaper: ") && lines[0].len() > 8);
            prop_assert_eq!(lines[1], "Try 'reaper --help'.");
            prop_assert!(!lines[0].chars().any(|c| c.is_control()), "control character in {:?}", lines[0]);
        }
        Ok(())
    });
}

/// The same at the process level, for a sample of generated rejected inputs: the real binary
/// exits 2 and prints exactly what `Error::report` says (the two lines), nothing on stdout.
/// A small sample: the checks themselves run in-process above and in tests/options.rs; this
/// one is about main's glue.
#[test]
fn fuzz_rejections_at_process_level() {
    let _heavy = heavy();
    let want = size(20, 3_000);
    let mut runner = TestRunner::new(Config::default());
    let strategy = input();
    let (start, mut tried, mut ran) = (Instant::now(), 0, 0);
    let mut bad = Vec::new();
    while ran < want && tried < want * 50 {
        tried += 1;
        let i = strategy.new_tree(&mut runner).unwrap().current();
        let Err(e) = parse_input(&i) else { continue };
        ran += 1;
        let (args, env) = &i;
        let mut cmd = command(REAPER, args.iter().map(|a| OsStr::from_bytes(a)));
        cmd.env_clear().envs(env.iter().map(|(k, v)| (k, OsStr::from_bytes(v))));
        let (code, out, err) = run_with_timeout(&mut cmd, Duration::from_secs(20));
        let lines = err.split_terminator('\n').count();
        if code != 2 || !out.is_empty() || err != format!("{}\n", e.report()) || lines != 2 {
            bad.push(format!("{args:?} env {env:?}: exit {code}, stderr {err:?}"));
        }
    }
    eprintln!(
        "fuzz process level: {ran} rejected inputs run in {:.2}s, {} bad",
        start.elapsed().as_secs_f64(),
        bad.len()
    );
    assert!(ran >= want / 2, "only {ran} rejected inputs generated");
    assert!(bad.is_empty(), "{} bad, e.g.:\n{}", bad.len(), bad[..bad.len().min(5)].join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Hostile input: edge values
// ---------------------------------------------------------------------------------------------

/// The longest durations (365d; tests/options.rs: longer ones are usage errors) are accepted
/// and armed: they neither panic nor fire early, and the stop is still forwarded.
#[test]
fn the_longest_durations_are_accepted_and_do_not_fire() {
    let dir = tempdir("hugeduration");
    let ready = dir.join("ready");
    let script = format!("trap 'exit 9' TERM; : > {}; while :; do sleep 0.05; done", ready.display());
    for mode in MODES {
        let _ = std::fs::remove_file(&ready);
        let (mut r, err) = start_capturing(
            mode,
            &mut reaper_cmd(mode, ["--kill-after", "365d", "--drain", "365d", "sh", "-c", &script]),
        );
        assert!(wait_for_file(&ready, Duration::from_secs(20)));
        r.signal(libc::SIGTERM);
        assert_eq!(r.code(Duration::from_secs(20)), 9, "{mode:?}");
        assert_eq!(err.all(), "", "{mode:?}");
    }
}

/// An argument list near ARG_MAX (including one argument of the maximum single length) is
/// passed through whole: the command counts every argument and byte.
#[test]
fn huge_argument_list_is_passed_through() {
    if skip_under_emulation("qemu-user's ARG_MAX is its own (from an unlimited stack: 2^58 bytes)") {
        return;
    }
    // SAFETY: sysconf has no preconditions.
    let arg_max = unsafe { libc::sysconf(libc::_SC_ARG_MAX) } as usize;
    let env: usize = std::env::vars_os().map(|(k, v)| k.len() + v.len() + 2 + 8).sum();
    let big = "B".repeat(128 * 1024 - 1); // MAX_ARG_STRLEN minus the NUL
    let budget = arg_max - env - big.len() - 64 * 1024;
    let each = "a".repeat(999);
    let count = budget / (each.len() + 1 + 8);
    let mut args: Vec<&str> = vec![big.as_str()];
    args.extend(std::iter::repeat_n(each.as_str(), count));
    let bytes: usize = args.iter().map(|a| a.len()).sum::<usize>() + args.len() - 1;
    for mode in MODES {
        let dir = tempdir("argmax");
        let out = dir.join("count");
        let script = format!("echo $# $(printf '%s' \"$*\" | wc -c) > {}; exit 0", out.display());
        let mut cmd = reaper_cmd(mode, ["sh", "-c", &script, "sh"]);
        cmd.args(&args);
        let (code, _, err) = run_with_timeout(&mut cmd, Duration::from_secs(30));
        assert_eq!(code, 0, "{mode:?}: {err}");
        let got = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            got.split_whitespace().collect::<Vec<_>>(),
            [args.len().to_string(), bytes.to_string()],
            "{mode:?}"
        );
        if mode == Mode::Pid1 {
            eprintln!(
                "ARG_MAX {arg_max}: passed {} arguments, {} bytes ({:.0}% of ARG_MAX)",
                args.len(),
                bytes,
                100.0 * (bytes + 8 * args.len()) as f64 / arg_max as f64
            );
        }
    }
}

/// Non-UTF-8 arguments and environment reach the command byte for byte.
#[test]
fn non_utf8_arguments_and_environment_pass_through() {
    let args: [&[u8]; 4] = [b"\xff\xfe-a\x80b", b"\xc3\x28", b"-p", b"caf\xe9 \x1b[0m"];
    for mode in MODES {
        let dir = tempdir("bytes");
        let (argv, environ) = (dir.join("argv"), dir.join("environ"));
        let script = format!(
            "cat /proc/$$/cmdline > {}; cat /proc/$$/environ > {}; exit 0",
            argv.display(),
            environ.display()
        );
        let mut cmd = reaper_cmd(mode, ["sh", "-c", &script, "sh"]);
        cmd.args(args.iter().map(|a| OsStr::from_bytes(a)));
        cmd.env(OsStr::from_bytes(b"X_BYTES"), OsStr::from_bytes(b"\xff\xfe\x80\x01="));
        cmd.env(OsStr::from_bytes(b"X_\xe9"), OsStr::from_bytes(b"v\xa0"));
        let (code, _, err) = run_with_timeout(&mut cmd, Duration::from_secs(20));
        assert_eq!(code, 0, "{mode:?}: {err}");

        let mut want = b"sh\0-c\0".to_vec();
        want.extend(script.as_bytes());
        want.extend(b"\0sh\0");
        for a in args {
            want.extend(a);
            want.push(0);
        }
        assert_eq!(std::fs::read(&argv).unwrap(), want, "{mode:?}: argv");
        let env = std::fs::read(&environ).unwrap();
        let vars: Vec<&[u8]> = env.split(|&b| b == 0).collect();
        assert!(vars.contains(&&b"X_BYTES=\xff\xfe\x80\x01="[..]), "{mode:?}: {env:?}");
        assert!(vars.contains(&&b"X_\xe9=v\xa0"[..]), "{mode:?}: {env:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Guard rails: descriptors
// ---------------------------------------------------------------------------------------------

/// Descriptors above 2 that this test process would pass on to any child (not close-on-exec):
/// a jobserver pipe from cargo, say. reaper is given them too, so the command may have them.
fn inherited_fds() -> Vec<i32> {
    fd_links(std::process::id() as i32)
        .into_keys()
        // SAFETY: F_GETFD only queries.
        .filter(|&fd| fd > 2 && unsafe { libc::fcntl(fd, libc::F_GETFD) } == 0)
        .collect()
}

/// `fds` plus `inherited_fds()`, sorted.
fn with_inherited(fds: &[i32]) -> Vec<i32> {
    let mut all = inherited_fds();
    all.extend(fds);
    all.sort_unstable();
    all.dedup();
    all
}

/// The command sees exactly the descriptors reaper was given (0, 1, 2, an inherited 7, and
/// whatever else the test process passes on): none of reaper's own (signalfd, pidfile lock,
/// report pipe) leaks. As PID 1, as a subreaper, and as a daemon, which closes inherited
/// descriptors in itself too (so the command has only 0, 1, 2, all /dev/null).
#[test]
fn command_sees_exactly_the_descriptors_reaper_was_given() {
    for (mode, daemon) in [(Mode::Pid1, false), (Mode::Subreaper, false), (Mode::Subreaper, true)] {
        let dir = tempdir("fds");
        let extra_path = dir.join("extra");
        let extra = std::fs::File::create(&extra_path).unwrap();
        let extra_fd = extra.as_raw_fd();
        let pidfile = dir.join("reaper.pid");
        let mut args = vec!["-v", "--pidfile", pidfile.to_str().unwrap()];
        if daemon {
            args.push("-d");
        }
        args.extend(["sleep", "60"]);
        let mut cmd = reaper_cmd(mode, &args);
        // SAFETY: dup2(2) and fcntl(2) only, between fork and exec. dup2 leaves a new fd 7
        // without CLOEXEC, but when the file already is fd 7 it does nothing at all, and Rust
        // opened it close-on-exec: clear the flag explicitly.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(extra_fd, 7) < 0 || libc::fcntl(7, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        let what = format!("{mode:?} daemon={daemon}");
        let (links, code) = if daemon {
            let (code, _, err) = run_with_timeout(&mut cmd, Duration::from_secs(20));
            assert_eq!(code, 0, "{what}: {err}");
            let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
            let mut command = None;
            assert!(wait_until(Duration::from_secs(20), || {
                command = children(pid).first().copied();
                command.is_some_and(|c| comm(c).as_deref() == Some("sleep") && settled(c))
            }));
            let links = fd_links(command.unwrap());
            let own = fd_links(pid);
            assert!(
                !own.values().any(|t| t == extra_path.to_str().unwrap()),
                "{what}: the daemon kept fd 7: {own:?}"
            );
            // SAFETY: kill(2): TERM to the daemon, which forwards it to the command.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            assert!(wait_until(Duration::from_secs(20), || !pidfile.exists()));
            (links, None)
        } else {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let mut r = Reaper::start(mode, &mut cmd);
            let links = fd_links(command_running(&r, "sleep"));
            r.signal(libc::SIGTERM);
            (links, Some(r.code(Duration::from_secs(20))))
        };
        drop(extra);
        let numbers: Vec<i32> = links.keys().copied().collect();
        if daemon {
            assert_eq!(numbers, [0, 1, 2], "{what}: {links:?}");
            assert!(links.values().all(|t| t == "/dev/null"), "{what}: {links:?}");
        } else {
            assert_eq!(numbers, with_inherited(&[0, 1, 2, 7]), "{what}: {links:?}");
            assert_eq!(links[&7], extra_path.to_str().unwrap(), "{what}");
            assert_eq!(code, Some(128 + libc::SIGTERM), "{what}");
        }
    }
}

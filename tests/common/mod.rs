//! Shared helpers for the integration tests: run the real reaper binary as PID 1 of a fresh
//! PID namespace or as a plain process (subreaper), and poll for conditions instead of sleeping.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod docker;

pub const REAPER: &str = env!("CARGO_BIN_EXE_reaper");

/// How reaper is started.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// PID 1 of a new PID namespace (`unshare --pid --fork --mount-proc`, plus
    /// `--user --map-root-user` when not root).
    Pid1,
    /// A plain process: not PID 1, so reaper registers as child subreaper.
    Subreaper,
}

pub const MODES: [Mode; 2] = [Mode::Pid1, Mode::Subreaper];

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Tests that mount, change user, chown or set rlimits need root (CI runs as root): false,
/// after saying "TEST: SKIPPED, needs root", when not root.
pub fn need_root(test: &str) -> bool {
    if !is_root() {
        eprintln!("{test}: SKIPPED, needs root");
    }
    is_root()
}

/// A `Command` that runs `reaper ARGS...` in `mode`. Its own process group, so tests can
/// clean up everything with one kill, and stdin from /dev/null unless the test changes it.
pub fn reaper_cmd<I, S>(mode: Mode, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = match mode {
        Mode::Pid1 => {
            let mut c = Command::new("unshare");
            if !is_root() {
                c.args(["--user", "--map-root-user"]);
            }
            c.args(["--pid", "--fork", "--mount-proc", "--kill-child"]).arg(REAPER);
            c
        }
        Mode::Subreaper => Command::new(REAPER),
    };
    cmd.args(args);
    cmd.stdin(Stdio::null());
    cmd.process_group(0);
    cmd
}

/// A started reaper. `pid` is reaper's own pid as seen from the test (for Pid1, the child of
/// `unshare`). Dropping it kills whatever is left.
pub struct Reaper {
    pub child: Child,
    pub pid: i32,
    pub mode: Mode,
}

impl Reaper {
    pub fn start(mode: Mode, cmd: &mut Command) -> Reaper {
        let child = cmd.spawn().expect("spawn reaper");
        let pid = match mode {
            Mode::Subreaper => child.id() as i32,
            Mode::Pid1 => {
                let outer = child.id() as i32;
                let mut found = None;
                // A short command may be over (unshare gone too) before we look: then there
                // is no reaper pid to report, and the caller only wants the exit status.
                assert!(
                    wait_until(Duration::from_secs(10), || {
                        found = children(outer).first().copied();
                        found.is_some() || !alive(outer)
                    }),
                    "unshare never started reaper"
                );
                found.unwrap_or(outer)
            }
        };
        // Wait until reaper has exec'd, blocked its signals and gone to sleep. comm turns
        // "reaper" at execve, before the loader has run main(): a TERM in that window kills a
        // plain reaper (143) and, as PID 1 with SIG_DFL, is discarded by the kernel. (Before
        // the exec, unshare's child has signals blocked too, hence the name.)
        wait_until(Duration::from_secs(10), || ready(pid) || !alive(pid));
        Reaper { child, pid, mode }
    }

    /// Sends `sig` to reaper itself.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2).
        unsafe { libc::kill(self.pid, sig) };
    }

    /// Waits up to `timeout` for reaper to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, timeout)
    }

    /// Waits for exit (panics after `timeout`) and returns the exit code.
    pub fn code(&mut self, timeout: Duration) -> i32 {
        let st =
            self.wait_timeout(timeout).unwrap_or_else(|| panic!("reaper did not exit within {timeout:?}"));
        exit_code(st)
    }

    /// The command reaper started (its first child), once it exists.
    pub fn command_pid(&self) -> i32 {
        let mut found = None;
        assert!(
            wait_until(Duration::from_secs(10), || {
                found = children(self.pid).first().copied();
                found.is_some() || !alive(self.pid)
            }),
            "reaper never started its command"
        );
        found.unwrap_or_else(|| panic!("reaper exited before its command could be seen"))
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        // Only while the launcher is unreaped: afterwards the pids may belong to someone else.
        if let Ok(None) = self.child.try_wait() {
            // The command runs in its own process group, which the group kill below does not
            // reach in subreaper mode.
            for p in descendants(self.pid) {
                // SAFETY: kill(2) of processes under the reaper this test started.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            // SAFETY: kill(2) of the test's own process group.
            unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}

/// Runs a scenario `fn NAME(mode: Mode)` (or `both_modes!(NAME, |mode| { … })`, a closure)
/// in both modes, as two tests of their own: `NAME::pid1` and `NAME::subreaper`. Attributes
/// after the name (`#[ignore = "…"]`) go on both tests.
#[allow(unused_macros)] // not every test file has scenarios for both modes
macro_rules! both_modes {
    ($name:ident $(, #[$attr:meta])*) => {
        mod $name {
            #[test]
            $(#[$attr])*
            fn pid1() {
                super::$name(crate::common::Mode::Pid1);
            }

            #[test]
            $(#[$attr])*
            fn subreaper() {
                super::$name(crate::common::Mode::Subreaper);
            }
        }
    };
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn pid1() {
                ($body)(Mode::Pid1)
            }
            #[test]
            fn subreaper() {
                ($body)(Mode::Subreaper)
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use both_modes;

/// Runs `cmd` to its exit without `Reaper::start` (which cannot find a reaper that is already
/// gone) and without capturing its output; returns the exit code and how long it ran. Kills
/// its process group (`reaper_cmd` makes one) and panics after `timeout`.
pub fn run_timed(cmd: &mut Command, timeout: Duration) -> (i32, Duration) {
    let t0 = Instant::now();
    let mut child = cmd.spawn().expect("spawn reaper");
    let Some(st) = wait_child(&mut child, timeout) else {
        // SAFETY: kill(2) of the child's own process group.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        let _ = child.wait();
        panic!("{cmd:?} did not exit within {timeout:?}");
    };
    (exit_code(st), t0.elapsed())
}

/// `reaper ARGS...` in `mode`, running in `dir` (the command inherits reaper's directory).
/// stdout goes to /dev/null and stderr to `dir/STDERR` (shown by `Guard` when a test fails),
/// away from the test harness's pipes: a leftover that a buggy reaper abandoned must not keep
/// `cargo test` waiting for EOF.
pub fn cmd_in<S: AsRef<OsStr>>(mode: Mode, dir: &Path, args: impl IntoIterator<Item = S>) -> Command {
    let mut c = reaper_cmd(mode, args);
    let stderr =
        std::fs::File::options().create(true).append(true).open(dir.join(STDERR)).expect("stderr file");
    c.current_dir(dir).stdout(Stdio::null()).stderr(stderr);
    c
}

/// Exit code as a shell would report it: 128+N for death by signal N.
pub fn exit_code(st: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `cond` every 5 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Direct children of `pid` (all threads), from /proc.
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|c| c.parse::<i32>().ok()));
            }
        }
    }
    out
}

/// Every descendant of `pid`.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        for c in children(p) {
            out.push(c);
            queue.push(c);
        }
    }
    out
}

pub fn alive(pid: i32) -> bool {
    // A zombie still "exists" for kill(0); look at the state instead.
    matches!(state(pid), Some(s) if s != 'Z' && s != 'X')
}

/// Process state letter from /proc/PID/stat (R, S, Z, …).
pub fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.chars().next()
}

pub fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|s| s.trim_end().to_owned())
}

/// Whether reaper `pid` is past its start-up: named reaper (exec'd), SIGUSR1 blocked (main()
/// has run `sigmask::block_all`, so a signal sent now is queued for its signalfd or its
/// sigtimedwait) and asleep, all in one read of /proc/PID/status. Not SIGTERM: while
/// `reaper --sleep` waits in sigtimedwait, the kernel shows the awaited signals unblocked.
///
/// Asleep, because under qemu-user SigBlk is the emulator's own host mask: qemu blocks every
/// signal for a moment while it starts its threads, before the guest's main() has run, and
/// a check of SigBlk alone passes there. Those moments are busy (state R); once the guest has
/// blocked its signals qemu keeps the host mask equal to the guest's, and reaper's first
/// sleep (the exec-status pipe, poll, sigtimedwait) comes after block_all.
pub fn ready(pid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':'))).map(str::trim)
    };
    let usr1 = 1u64 << (libc::SIGUSR1 - 1);
    // While a task sleeps in rt_sigtimedwait, the kernel takes the signals it waits for out of
    // its blocked set (SigBlk) until it wakes (it keeps them blocked in `real_blocked`, which
    // /proc does not show): asleep there, reaper has blocked its signals long before.
    let in_sigtimedwait = || {
        std::fs::read_to_string(format!("/proc/{pid}/wchan")).is_ok_and(|w| w.starts_with("do_sigtimedwait"))
    };
    field("Name") == Some("reaper")
        && field("State").is_some_and(|s| s.starts_with('S'))
        && (field("SigBlk").and_then(|m| u64::from_str_radix(m, 16).ok()).is_some_and(|m| m & usr1 != 0)
            || in_sigtimedwait())
}

/// A field of /proc/PID/status, e.g. `status_field(pid, "voluntary_ctxt_switches")`.
pub fn status_field(pid: i32, field: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_owned())
}

/// Zombies among the descendants of `pid`.
pub fn zombies_under(pid: i32) -> Vec<i32> {
    descendants(pid).into_iter().filter(|&p| state(p) == Some('Z')).collect()
}

/// A fresh empty directory for one test.
pub fn tempdir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "reaper-test-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create tempdir");
    dir
}

/// Polls until `path` exists.
pub fn wait_for_file(path: &Path, timeout: Duration) -> bool {
    wait_until(timeout, || path.exists())
}

/// A file's text once it ends in a newline: `sh`'s `echo x > f` and an O_EXCL pidfile are
/// created before they are written, so a file that exists may still be empty.
pub fn wait_for_line(path: &Path, timeout: Duration) -> Option<String> {
    let mut text = String::new();
    let done = wait_until(timeout, || {
        text = std::fs::read_to_string(path).unwrap_or_default();
        text.ends_with('\n')
    });
    done.then_some(text)
}

/// Path to a helper on PATH, e.g. `which("python3")`.
pub fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(prog)).find(|p| p.is_file())
}

/// Signal numbers recorded by a `signal_probe`.
pub fn probe_log(log: &Path) -> Vec<i32> {
    std::fs::read_to_string(log).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Runs `cmd` to completion with a timeout, capturing output; panics on timeout.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> (i32, String, String) {
    let (code, out, err) =
        run_captured(cmd, timeout).unwrap_or_else(|| panic!("{cmd:?} did not finish within {timeout:?}"));
    (code, String::from_utf8_lossy(&out).into_owned(), err)
}

/// Runs `cmd` (which must be in its own process group, as `reaper_cmd` makes it) to
/// completion, stdout as bytes; `None` if it took longer than `timeout`, after killing its
/// group and everything under it.
pub fn run_captured(cmd: &mut Command, timeout: Duration) -> Option<(i32, Vec<u8>, String)> {
    use std::io::Read;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let Some(st) = wait_child(&mut child, timeout) else {
        // The group, and anything reaper started (the command has a group of its own).
        let pid = child.id() as i32;
        for p in descendants(pid) {
            // SAFETY: kill(2) of processes this test started.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        // SAFETY: as above, the child's own process group.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = child.wait();
        return None;
    };
    Some((exit_code(st), t_out.join().unwrap(), t_err.join().unwrap()))
}

/// The fields of /proc/PID/stat after the command name: `[0]` state, `[1]` ppid, `[2]` pgrp,
/// `[3]` session, `[4]` tty_nr, … (stat(5) numbering minus 3).
pub fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.get(stat.rfind(')')? + 2..)?;
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// Where the /proc/PID/NAME symlink points: `proc_link(pid, "cwd")`, `proc_link(pid, "fd/1")`.
pub fn proc_link(pid: i32, name: &str) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/{name}")).ok()
}

/// The open file descriptors of `pid`, sorted.
pub fn open_fds(pid: i32) -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    fds.sort_unstable();
    fds
}

/// SIGKILLs every descendant of `pid`, then `pid` itself. For cleanup in Drop guards: the
/// command and the processes it starts live in their own process groups.
pub fn kill_tree(pid: i32) {
    // SAFETY: kill(2). Stop `pid` first so it does not start new processes meanwhile.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    for p in descendants(pid) {
        // SAFETY: kill(2).
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    // SAFETY: kill(2).
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Polls until `pid` is gone (or a zombie); returns whether it went within `timeout`.
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    wait_until(timeout, || !alive(pid))
}

/// Polls until `pid` has no pending signal (SigPnd and ShdPnd all zero): reaper has read
/// everything sent to it from its signalfd. A reaper that has exited (gone, or a zombie)
/// pends nothing either: it may have exited on that very signal (the probe under it ends on
/// the last one it expects), and whether that exit was right is the caller's exit-code check.
pub fn wait_no_pending_signals(pid: i32, timeout: Duration) -> bool {
    let zero = |f: &str| status_field(pid, f).is_some_and(|v| v.bytes().all(|b| b == b'0'));
    wait_until(timeout, || !alive(pid) || (zero("SigPnd") && zero("ShdPnd")))
}

/// A process identified by pid and start time, so a later kill cannot hit a reused pid.
pub type ProcId = (i32, String);

/// `pid` and its start time (field 22 of /proc/PID/stat).
pub fn proc_id(pid: i32) -> Option<ProcId> {
    Some((pid, stat_fields(pid)?.get(19)?.clone()))
}

/// Every current descendant of `pid`, as `ProcId`s.
pub fn snapshot_descendants(pid: i32) -> Vec<ProcId> {
    descendants(pid).into_iter().filter_map(proc_id).collect()
}

/// SIGKILLs each process that still is the one recorded (same pid and start time).
pub fn kill_recorded(procs: &[ProcId]) {
    for (pid, start) in procs {
        if proc_id(*pid).as_ref().is_some_and(|(_, s)| s == start) {
            // SAFETY: kill(2) of a process this test started (start time checked).
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
    }
}

/// A Python program that records every signal it receives (one line per signal, the number,
/// appended to `log`), writes `ready` next to the log when its handlers are installed, and
/// exits 0 on `exit_on` (if given). A non-shell probe: shells reset masks and can't trap RT
/// signals portably. The C-level handler also writes to a wakeup pipe that the main loop
/// `select`s on, so a signal arriving just before the loop blocks is still handled at once.
pub fn signal_probe(log: &Path, exit_on: Option<i32>) -> Vec<String> {
    let script = format!(
        r#"
import os, select, signal, sys
# os.write, not a buffered file: a handler that runs while another is inside a buffered
# write raises "reentrant call" and the probe dies with status 1.
log = os.open({log:?}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
exit_on = {exit_on}
def h(n, f):
    os.write(log, b"%d\n" % n)
    if n == exit_on:
        sys.exit(0)
r, w = os.pipe()
os.set_blocking(w, False)
signal.set_wakeup_fd(w)
for n in range(1, 65):
    if n in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, 32, 33):
        continue
    try:
        signal.signal(n, h)
    except (OSError, ValueError, RuntimeError):
        pass
open({ready:?}, "w").close()
while True:
    select.select([r], [], [])
    os.read(r, 4096)
"#,
        log = log.to_str().unwrap(),
        ready = log.with_extension("ready").to_str().unwrap(),
        exit_on = exit_on.map_or("None".to_string(), |n| n.to_string()),
    );
    vec!["python3".into(), "-c".into(), script]
}

/// Every process whose working directory is `dir` or below it, or whose command line
/// mentions `dir`. Tests run their commands in a unique tempdir, so this finds whatever a
/// test left behind, wherever it was re-parented to.
pub fn processes_using(dir: &Path) -> Vec<i32> {
    let needle = dir.as_os_str().as_encoded_bytes();
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"));
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            cwd.is_ok_and(|c| c.starts_with(dir)) || cmdline.windows(needle.len()).any(|w| w == needle)
        })
        .collect()
}

/// SIGKILLs everything `processes_using(dir)` finds, a few rounds (a dying shell's children
/// may show up late). For Drop guards.
pub fn kill_processes_using(dir: &Path) {
    for _ in 0..3 {
        let pids = processes_using(dir);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            // SAFETY: kill(2) of a process working in this test's own tempdir.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Where tests send reaper's (and its processes') stderr, inside the test's directory.
pub const STDERR: &str = "reaper.stderr";

/// The one cleanup guard: whatever a test started is gone when it ends, however it ends.
/// - a reaper (`Guard::new`) or a daemon named by a pidfile (`Guard::pidfile`): killed with
///   everything under it while it still is reaper (the command and its children live in their
///   own process groups, which `Reaper`'s Drop does not always reach);
/// - the processes recorded with `record` / `record_pid`: killed if they still are the ones
///   recorded (same pid and start time), so a reused pid is never hit;
/// - everything working in (or naming) the test's directory;
/// - on failure, what reaper wrote to `dir/STDERR`.
#[derive(Default)]
pub struct Guard {
    reaper: Option<i32>,
    pidfile: Option<PathBuf>,
    dir: Option<PathBuf>,
    pub procs: Vec<ProcId>,
    /// A lock the test holds for as long as it runs (e.g. to keep fork-heavy tests apart).
    pub load: Option<std::sync::RwLockReadGuard<'static, ()>>,
}

impl Guard {
    /// For a foreground reaper whose stderr goes to `dir/STDERR` (see `cmd_in`).
    pub fn new(r: &Reaper, dir: &Path) -> Guard {
        Guard::with(Some(r.pid), None, Some(dir))
    }

    /// Only the processes working in `dir`.
    pub fn dir(dir: &Path) -> Guard {
        Guard::with(None, None, Some(dir))
    }

    /// For a daemon that writes its pid to `pidfile` (its directory is the test's).
    pub fn pidfile(pidfile: &Path) -> Guard {
        Guard::with(None, Some(pidfile), pidfile.parent())
    }

    fn with(reaper: Option<i32>, pidfile: Option<&Path>, dir: Option<&Path>) -> Guard {
        Guard {
            reaper,
            pidfile: pidfile.map(Path::to_owned),
            dir: dir.map(Path::to_owned),
            procs: Vec::new(),
            load: None,
        }
    }

    /// Records reaper's current descendants for cleanup.
    pub fn record(&mut self) {
        if let Some(pid) = self.reaper {
            self.procs.extend(snapshot_descendants(pid));
        }
    }

    /// Records one process (and its current descendants) for cleanup.
    pub fn record_pid(&mut self, pid: i32) {
        self.procs.extend(proc_id(pid));
        self.procs.extend(snapshot_descendants(pid));
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(dir) = &self.dir {
                if let Ok(text) = std::fs::read_to_string(dir.join(STDERR)) {
                    eprintln!("--- reaper's stderr ({}):\n{text}---", dir.join(STDERR).display());
                }
            }
        }
        let from_pidfile =
            self.pidfile.as_ref().and_then(|p| std::fs::read_to_string(p).ok()?.trim().parse().ok());
        // A recorded reaper (a daemon whose pidfile is gone, say) takes its tree with it too.
        let recorded =
            self.procs.iter().filter(|(pid, start)| proc_id(*pid).is_some_and(|(_, s)| &s == start));
        for pid in self.reaper.into_iter().chain(from_pidfile).chain(recorded.map(|p| p.0)) {
            if comm(pid).as_deref() == Some("reaper") {
                kill_tree(pid);
            }
        }
        kill_recorded(&self.procs);
        if let Some(dir) = &self.dir {
            kill_processes_using(dir);
        }
    }
}

/// reaper in `mode`, working in `dir`, its stderr (and its command's) in `dir/reaper.stderr`.
pub fn start_in(mode: Mode, dir: &Path, args: &[&str]) -> (Reaper, Guard) {
    let log = std::fs::File::create(dir.join(STDERR)).unwrap();
    let mut cmd = reaper_cmd(mode, args);
    cmd.current_dir(dir).stderr(Stdio::from(log));
    let r = Reaper::start(mode, &mut cmd);
    let g = Guard::new(&r, dir);
    (r, g)
}

/// What reaper (and its command) wrote to `dir/reaper.stderr`.
pub fn stderr_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(STDERR)).unwrap_or_default()
}

/// Polls `dir/reaper.stderr` until it contains `text`; panics after 20 s.
pub fn wait_for_log(dir: &Path, text: &str) {
    assert!(
        wait_until(Duration::from_secs(20), || stderr_of(dir).contains(text)),
        "never logged {text:?}; stderr:\n{}",
        stderr_of(dir)
    );
}

/// Asleep, exec'd and done with its own start-up: sleep(1) opens and closes locale files
/// right after exec, which a descriptor listing taken at that moment would count.
pub fn settled(pid: i32) -> bool {
    let locale = |e: std::fs::DirEntry| {
        std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().contains("/locale"))
    };
    state(pid) == Some('S')
        && comm(pid).as_deref() != Some("reaper")
        && std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|d| !d.flatten().any(locale))
}

// --- container engines (tests/docker.rs, tests/engines.rs) ----------------------------------

/// The fully static binary, built once per test process with the project's one documented
/// build, scripts/build-static (musl, else glibc +crt-static), into target/static: a target
/// dir of its own, so it never waits on the cargo lock of the running `cargo test`. Container
/// images and engines' init paths need it: the test build is dynamically linked.
pub fn static_binary() -> Result<PathBuf, String> {
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_static_binary).clone()
}

fn build_static_binary() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("scripts/build-static");
    let mut cmd = Command::new(&script);
    cmd.current_dir(root)
        .env("CARGO_TARGET_DIR", root.join("target/static"))
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .stdin(Stdio::null())
        .process_group(0);
    let start = Instant::now();
    let (code, out, err) = run_captured(&mut cmd, Duration::from_secs(900))
        .ok_or_else(|| format!("{} did not finish in 15 minutes", script.display()))?;
    if code != 0 {
        return Err(format!("{} failed: {err}", script.display()));
    }
    let out = String::from_utf8_lossy(&out);
    let path = PathBuf::from(out.lines().last().unwrap_or_default().trim());
    if !path.is_file() {
        return Err(format!("{} printed {}, which is no file", script.display(), path.display()));
    }
    eprintln!("static binary {} built in {:.1} s", path.display(), start.elapsed().as_secs_f64());
    Ok(path)
}

/// A busybox script: `count` orphans (`sleep 2` double-forked away), reports how many were
/// adopted by PID 1, then waits until none is left and no zombie exists in the PID namespace.
/// Exit 1 if zombies stay for ~30 s.
pub fn orphan_storm(count: usize) -> String {
    format!(
        r#"
i=0
while [ $i -lt {count} ]; do (sleep 2 &); i=$((i+1)); done
procs() {{ cat /proc/[0-9]*/stat 2>/dev/null; }}
echo "pid1=$(cat /proc/1/comm) adopted=$(procs | awk '$2=="(sleep)" && $4==1 {{n++}} END {{print n+0}}')"
n=0
while :; do
  z=$(procs | awk '$3=="Z" {{n++}} END {{print n+0}}')
  s=$(procs | awk '$2=="(sleep)" {{n++}} END {{print n+0}}')
  [ "$z" = 0 ] && [ "$s" = 0 ] && break
  n=$((n+1))
  if [ $n -gt 300 ]; then echo "zombies=$z sleeps=$s"; procs | awk '$3=="Z"' | head; exit 1; fi
  sleep 0.1
done
echo "zombies=0"
"#
    )
}

/// The `adopted=N` figure an `orphan_storm` printed.
pub fn adopted(out: &str) -> usize {
    out.split_whitespace().find_map(|w| w.strip_prefix("adopted=")).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// voluntary + nonvoluntary context switches of `pid`.
pub fn context_switches(pid: i32) -> u64 {
    ["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"]
        .iter()
        .map(|f| {
            status_field(pid, f)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no {f} for pid {pid}"))
        })
        .sum()
}

/// Waits (up to `timeout`) until `pid` has finished what it was doing: two reads of its context
/// switches 100 ms apart agree. An idle measurement starts only then, so that the end of a
/// start-up (slower under qemu-user or a loaded machine) is not counted as a wake-up.
pub fn wait_quiet(pid: i32, timeout: Duration) -> bool {
    wait_until(timeout, || {
        let a = context_switches(pid);
        std::thread::sleep(Duration::from_millis(100));
        a == context_switches(pid)
    })
}

/// Says "skipped: WHY" straight to stderr (the harness captures eprintln! of passing tests),
/// so that a check an environment cannot make is visible in every run.
pub fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// True under qemu-user emulation (scripts/test-cross sets REAPER_EMULATED=1), after printing
/// "skipped under qemu-user: WHY" straight to stderr: a test that would observe the emulator
/// rather than reaper (qemu renumbers real-time signals, keeps its own signal masks in
/// /proc/PID/status, can hang as PID 1 when the guest crashes) returns early on it.
pub fn skip_under_emulation(why: &str) -> bool {
    use std::io::Write;
    if emulated() {
        let _ = writeln!(std::io::stderr(), "skipped under qemu-user: {why}");
    }
    emulated()
}

/// Under qemu-user (scripts/test-cross sets REAPER_EMULATED=1).
pub fn emulated() -> bool {
    std::env::var_os("REAPER_EMULATED").is_some_and(|v| v == "1")
}
/// A `Command` that runs in the PID and mount namespaces of `pid` (and in its user namespace
/// when not root, as `reaper_cmd` made it): `nsenter_cmd(r.pid).arg(REAPER)`.
pub fn nsenter_cmd(pid: i32) -> Command {
    let mut c = Command::new("nsenter");
    c.arg("--target").arg(pid.to_string());
    if !is_root() {
        c.args(["--user", "--preserve-credentials"]);
    }
    c.args(["--pid", "--mount", "--"]);
    c.stdin(Stdio::null());
    c.process_group(0);
    c
}

/// `pid` as its own (innermost) PID namespace numbers it: the last field of NSpid.
pub fn ns_pid(pid: i32) -> Option<i32> {
    status_field(pid, "NSpid")?.split_whitespace().last()?.parse().ok()
}

/// One process line of the listing.
#[derive(Debug)]
pub struct Row<'a> {
    pub pid: i32,
    pub ppid: i32,
    pub state: &'a str,
    pub uid: &'a str,
    pub depth: usize,
    /// The command and the note.
    pub text: &'a str,
}

/// The process lines: five columns, then the command indented two spaces per tree level.
pub fn rows(out: &str) -> Vec<Row<'_>> {
    out.lines()
        .skip(1)
        .filter_map(|l| {
            let mut rest = l;
            let mut cols = Vec::new();
            for _ in 0..5 {
                rest = rest.trim_start();
                let end = rest.find(' ')?;
                cols.push(&rest[..end]);
                rest = &rest[end + 1..];
            }
            let text = rest.trim_start();
            Some(Row {
                pid: cols[0].parse().ok()?,
                ppid: cols[1].parse().ok()?,
                state: cols[2],
                uid: cols[4],
                depth: (rest.len() - text.len()) / 2,
                text,
            })
        })
        .collect()
}

/// The row of `pid` and its index, or a panic showing the listing.
pub fn row<'a>(out: &'a str, pid: i32) -> (usize, Row<'a>) {
    rows(out)
        .into_iter()
        .enumerate()
        .find(|(_, r)| r.pid == pid)
        .unwrap_or_else(|| panic!("no {pid}:\n{out}"))
}

/// The end of the summary `reaper --ps` prints when PID 1 is no init.
pub const NOT_AN_INIT: &str = "which does not reap orphans: processes whose parent exits will stay zombies. \
                           Run it under reaper.";
/// The negative check for a `signal_probe` that must have received nothing: sends it RTMAX
/// (64, the highest signal it handles) and waits until that is logged. The kernel delivers
/// lower signals first and Python runs the handlers of pending signals in numeric order, so
/// whatever reached the probe before is in the log by then: it must hold only 64. Under
/// qemu-user the barrier is SIGSYS (31, the highest standard signal): qemu renumbers the
/// real-time signals an emulated test sends to a native probe.
pub fn assert_probe_got_nothing(probe: i32, log: &Path, what: &str) {
    let barrier = if emulated() { libc::SIGSYS } else { 64 };
    // SAFETY: kill(2) of a probe the test started.
    unsafe { libc::kill(probe, barrier) };
    assert!(
        wait_until(Duration::from_secs(20), || probe_log(log).contains(&barrier)),
        "{what}: the probe never logged the barrier signal; log {:?}",
        probe_log(log)
    );
    assert_eq!(probe_log(log), [barrier], "{what} received signals");
}

/// Unmounts whatever is still mounted under `dir` (deepest first), then removes it.
pub fn remove_tree(dir: &Path) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let Ok(c) = std::ffi::CString::new(p) else { continue };
        // SAFETY: umount2(2) with a NUL-terminated path, of a mount under this test's own dir.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!("cannot remove {}: {e}", dir.display());
    }
}

/// `strace -o strace.log FAULTS reaper ARGS` in `dir`, a plain process with stdin from
/// /dev/null in a process group of its own: strace's log of reaper's system calls (not its
/// children's) lands in `dir/strace.log`.
#[allow(dead_code)] // not every test file injects faults
pub fn straced_cmd(strace: &Path, dir: &Path, faults: &[&str], args: &[&str]) -> Command {
    let mut cmd = Command::new(strace);
    cmd.args(["-o", "strace.log"]).args(faults).arg(REAPER).args(args);
    cmd.current_dir(dir).stdin(Stdio::null()).process_group(0);
    cmd
}

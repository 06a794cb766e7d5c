//! OOM-kill reports and the termination log, with the real kernel: each test makes a memory
//! cgroup with a small limit, starts reaper in it, and lets a Python memory hog meet the OOM
//! killer, or kills a command with an ordinary `kill -9`, which must not be blamed on it.
//! cgroup v1 where its memory controller is mounted (/sys/fs/cgroup/memory); v2 where the
//! unified hierarchy has the memory controller; otherwise a visible "skipped" line.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Grows by touched megabytes until the OOM killer ends it (`b'x' * n` writes every page).
const HOG: &str = "a = []\nwhile True:\n    a.append(b'x' * (1 << 20))\n";
const LIMIT: u64 = 64 << 20;
const OOM_LINE: &str = ") was killed by the OOM killer (memory limit 64 MiB)";

/// A memory cgroup of this test's own, removed (once empty) when dropped.
struct Cgroup {
    dir: PathBuf,
    v2: bool,
}

impl Cgroup {
    /// Under this process's v1 memory cgroup, else under the v2 hierarchy's root when it
    /// delegates the memory controller; `Err` says why neither can be had.
    fn new(tag: &str) -> Result<Cgroup, String> {
        Cgroup::v1(tag).or_else(|why| Cgroup::v2(tag).map_err(|also| format!("{why}; {also}")))
    }

    fn name(tag: &str) -> String {
        // Both modes of a test run at once, in the same test process.
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        format!("reaper-test-{tag}-{}-{n}", std::process::id())
    }

    fn v1(tag: &str) -> Result<Cgroup, String> {
        if !is_root() {
            return Err("needs root to create a memory cgroup".into());
        }
        let own =
            std::fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
        let name = Cgroup::name(tag);
        let v1 = own.lines().find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_owned()));
        let v1_root = Path::new("/sys/fs/cgroup/memory");
        if let Some(path) = v1.filter(|_| v1_root.join("memory.oom_control").exists()) {
            let dir = v1_root.join(path.trim_start_matches('/')).join(name);
            std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
            let cg = Cgroup { dir, v2: false };
            cg.set("memory.limit_in_bytes", LIMIT)?;
            // Without swap to fall back on, the limit is reached at once.
            if cg.dir.join("memory.memsw.limit_in_bytes").exists() {
                cg.set("memory.memsw.limit_in_bytes", LIMIT)?;
            } else if swap_on() {
                return Err("swap is on and cgroup v1 has no memory.memsw to forbid it".into());
            }
            return Ok(cg);
        }
        Err("no cgroup v1 memory controller".into())
    }

    /// A child of the v2 hierarchy's root (the root cgroup may hold processes and delegate
    /// controllers at once).
    fn v2(tag: &str) -> Result<Cgroup, String> {
        if !is_root() {
            return Err("needs root to create a memory cgroup".into());
        }
        let name = Cgroup::name(tag);
        let v2_root = v2_mount().ok_or("no cgroup v2 mount")?;
        let delegated = std::fs::read_to_string(v2_root.join("cgroup.subtree_control")).unwrap_or_default();
        if !delegated.split_whitespace().any(|c| c == "memory") {
            return Err(format!(
                "cgroup v2 at {} does not delegate the memory controller",
                v2_root.display()
            ));
        }
        let dir = v2_root.join(name);
        std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let cg = Cgroup { dir, v2: true };
        cg.set("memory.max", LIMIT)?;
        if cg.dir.join("memory.swap.max").exists() {
            cg.set("memory.swap.max", 0)?;
        } else if swap_on() {
            return Err("swap is on and cgroup v2 has no memory.swap.max to forbid it".into());
        }
        Ok(cg)
    }

    fn set(&self, file: &str, value: u64) -> Result<(), String> {
        std::fs::write(self.dir.join(file), value.to_string()).map_err(|e| format!("{file}: {e}"))
    }

    fn oom_kills(&self) -> u64 {
        let file = if self.v2 { "memory.events" } else { "memory.oom_control" };
        let text = std::fs::read_to_string(self.dir.join(file)).unwrap_or_default();
        text.lines().find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok()).unwrap_or(0)
    }

    /// `cmd` started inside this cgroup: a shell moves itself in, then execs it (same pid, so
    /// `Reaper::start` finds reaper as it would without the shell).
    fn wrap(&self, cmd: &Command) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg("echo $$ > \"$0\"/cgroup.procs && exec \"$@\"").arg(&self.dir);
        c.arg(cmd.get_program()).args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            c.current_dir(d);
        }
        c.stdin(Stdio::null()).process_group(0);
        c
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Whatever the test left in it was started by the test.
        let procs = std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) of a process in the cgroup this test created.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if !wait_until(Duration::from_secs(10), || std::fs::remove_dir(&self.dir).is_ok()) {
            eprintln!("could not remove {}", self.dir.display());
        }
    }
}

/// The hog would swap rather than meet the OOM killer.
fn swap_on() -> bool {
    std::fs::read_to_string("/proc/swaps").is_ok_and(|s| s.lines().count() > 1)
}

fn v2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find(|l| l.contains(" - cgroup2 ")).and_then(|l| l.split(' ').nth(4)).map(PathBuf::from)
}

/// The cgroup for a test, or `None` after a visible "skipped" line.
fn cgroup(test: &str) -> Option<Cgroup> {
    match Cgroup::new(test) {
        Ok(cg) => Some(cg),
        Err(why) => {
            eprintln!("{test}: skipped: {why}");
            None
        }
    }
}

/// A termination log as Kubernetes provides it: an existing empty file.
fn termination_log(dir: &Path) -> PathBuf {
    let path = dir.join("termination-log");
    std::fs::write(&path, "").unwrap();
    path
}

/// reaper (in `mode`, in `cg` if given) with `args`, its termination log in `dir`; waits for
/// its exit. Returns the exit code, its stderr and the termination log's text.
fn run(mode: Mode, cg: Option<&Cgroup>, dir: &Path, args: &[&str]) -> (i32, String, String) {
    let log = termination_log(dir);
    let mut cmd = cmd_in(mode, dir, args);
    cmd.env("REAPER_TERMINATION_LOG", &log);
    let mut cmd = match cg {
        Some(cg) => {
            let mut c = cg.wrap(&cmd);
            let stderr = std::fs::File::options().append(true).open(dir.join(STDERR)).unwrap();
            c.stdout(Stdio::null()).stderr(stderr);
            c
        }
        None => cmd,
    };
    let mut r = Reaper::start(mode, &mut cmd);
    let _g = Guard::new(&r, dir);
    let code = r.code(Duration::from_secs(60));
    (code, stderr_of(dir), std::fs::read_to_string(&log).unwrap_or_default())
}

/// The pid in `NAME (pid N)…` at the start of `text` after `prefix`.
fn pid_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    let end = rest.find(')')?;
    rest[..end].chars().all(|c| c.is_ascii_digit()).then_some(&rest[..end])
}

both_modes!(the_oom_killer_is_named_and_the_limit_given, |mode: Mode| {
    let Some(cg) = cgroup("oom") else { return };
    let Some(_) = which("python3") else { return eprintln!("skipped: no python3") };
    let dir = tempdir("oom");
    let (code, err, log) = run(mode, Some(&cg), &dir, &["--", "python3", "-c", HOG]);
    assert_eq!(code, 137, "{err}");
    assert_eq!(cg.oom_kills(), 1, "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("OOM")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    let pid = pid_after(lines[0], "reaper: WARN python3 (pid ").unwrap_or_else(|| panic!("{err}"));
    assert_eq!(lines[0], format!("reaper: WARN python3 (pid {pid}{OOM_LINE}"));
    assert_eq!(
        log,
        format!("python3 (pid {pid}) killed by the OOM killer (memory limit 64 MiB); exit status 137\n")
    );
});

both_modes!(a_leftover_killed_by_the_oom_killer_is_named_too, |mode: Mode| {
    let Some(cg) = cgroup("leftover") else { return };
    let Some(_) = which("python3") else { return eprintln!("skipped: no python3") };
    let dir = tempdir("oom-leftover");
    // The hog is orphaned to reaper, which reaps it: a leftover, named from /proc.
    let script = format!("python3 -c \"{HOG}\" & exit 0");
    let (code, err, log) = run(mode, Some(&cg), &dir, &["--wait-all", "--", "sh", "-c", &script]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("OOM")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    let pid = pid_after(lines[0], "reaper: WARN python3 (pid ").unwrap_or_else(|| panic!("{err}"));
    assert_eq!(lines[0], format!("reaper: WARN python3 (pid {pid}{OOM_LINE}"));
    assert!(
        log.starts_with("sh (pid ")
            && log
                .ends_with(") exited with status 0; the OOM killer killed 1 other process; exit status 0\n"),
        "{log}"
    );
});

both_modes!(an_ordinary_kill_9_is_not_blamed_on_the_oom_killer, |mode: Mode| {
    let Some(cg) = cgroup("kill9") else { return };
    let dir = tempdir("oom-kill9");
    let log = termination_log(&dir);
    let mut cmd = cmd_in(mode, &dir, ["--", "sleep", "1000"]);
    cmd.env("REAPER_TERMINATION_LOG", &log);
    let mut cmd = cg.wrap(&cmd);
    cmd.stdout(Stdio::null()).stderr(std::fs::File::options().append(true).open(dir.join(STDERR)).unwrap());
    let mut r = Reaper::start(mode, &mut cmd);
    let _g = Guard::new(&r, &dir);
    let sleep = r.command_pid();
    assert!(wait_until(Duration::from_secs(10), || comm(sleep).as_deref() == Some("sleep")));
    // SAFETY: kill(2) of the command this test started.
    unsafe { libc::kill(sleep, libc::SIGKILL) };
    assert_eq!(r.code(Duration::from_secs(20)), 137);
    let err = stderr_of(&dir);
    assert!(!err.contains("OOM"), "{err}");
    assert_eq!(cg.oom_kills(), 0);
    let text = std::fs::read_to_string(&log).unwrap();
    let pid = pid_after(&text, "sleep (pid ").unwrap_or_else(|| panic!("{text}"));
    assert_eq!(text, format!("sleep (pid {pid}) killed by SIGKILL; exit status 137\n"));
});

/// cgroup v2 for real, wherever the unified hierarchy has the memory controller (the tests
/// above use v1 first, where it is mounted).
#[test]
fn cgroup_v2_oom_kill_is_named() {
    let cg = match Cgroup::v2("v2") {
        Ok(cg) => cg,
        Err(why) => return eprintln!("cgroup_v2_oom_kill_is_named: skipped: {why}"),
    };
    let Some(_) = which("python3") else { return eprintln!("skipped: no python3") };
    let dir = tempdir("oom-v2");
    let (code, err, log) = run(Mode::Subreaper, Some(&cg), &dir, &["--", "python3", "-c", HOG]);
    assert_eq!(code, 137, "{err}");
    assert_eq!(cg.oom_kills(), 1, "{err}");
    let pid = pid_after(&err, "reaper: WARN python3 (pid ").unwrap_or_else(|| panic!("{err}"));
    assert!(err.contains(&format!("reaper: WARN python3 (pid {pid}{OOM_LINE}\n")), "{err}");
    assert_eq!(
        log,
        format!("python3 (pid {pid}) killed by the OOM killer (memory limit 64 MiB); exit status 137\n")
    );
}

/// `--ps` in the cgroup: its limit, use and OOM-kill count.
#[test]
fn ps_shows_the_cgroup_s_memory() {
    let Some(cg) = cgroup("ps") else { return };
    let mut ps = Command::new(REAPER);
    ps.arg("--ps");
    let (code, out, err) = run_with_timeout(&mut cg.wrap(&ps), Duration::from_secs(20));
    assert_eq!(code, 0, "{err}");
    let line = out.lines().find(|l| l.starts_with("Memory (cgroup): ")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.ends_with(" used, memory limit 64 MiB, 0 OOM kills."), "{line}");
    // Above the counts, which the summary's last two lines keep.
    assert!(out.contains(&format!("{line}\n")) && out.lines().rev().nth(2) == Some(line), "{out}");
}

both_modes!(the_termination_log_says_why_reaper_ended, |mode: Mode| {
    let dir = tempdir("termlog");
    let (code, err, log) = run(mode, None, &dir, &["--", "sh", "-c", "exit 3"]);
    assert_eq!(code, 3, "{err}");
    let pid = pid_after(&log, "sh (pid ").unwrap_or_else(|| panic!("{log}"));
    assert_eq!(log, format!("sh (pid {pid}) exited with status 3; exit status 3\n"));

    // A stop from outside, and a command that dies of it.
    let log = termination_log(&dir);
    let mut cmd = cmd_in(mode, &dir, ["--", "sleep", "1000"]);
    cmd.env("REAPER_TERMINATION_LOG", &log);
    let mut r = Reaper::start(mode, &mut cmd);
    let _g = Guard::new(&r, &dir);
    let sleep = r.command_pid();
    assert!(wait_until(Duration::from_secs(10), || comm(sleep).as_deref() == Some("sleep")));
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(Duration::from_secs(20)), 143);
    let text = std::fs::read_to_string(&log).unwrap();
    let pid = pid_after(&text, "sleep (pid ").unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        text,
        format!("sleep (pid {pid}) killed by SIGTERM after reaper received SIGTERM; exit status 143\n")
    );

    // --kill-after: the command ignores TERM.
    let log = termination_log(&dir);
    let mut cmd = cmd_in(
        mode,
        &dir,
        ["--kill-after", "1s", "--", "sh", "-c", "trap '' TERM; echo > ready; while :; do sleep 1; done"],
    );
    cmd.env("REAPER_TERMINATION_LOG", &log);
    let mut r = Reaper::start(mode, &mut cmd);
    let _g2 = Guard::new(&r, &dir);
    assert!(wait_for_file(&dir.join("ready"), Duration::from_secs(10)));
    r.signal(libc::SIGTERM);
    assert_eq!(r.code(Duration::from_secs(20)), 137);
    let text = std::fs::read_to_string(&log).unwrap();
    let pid = pid_after(&text, "sh (pid ").unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        text,
        format!(
            "sh (pid {pid}) killed by SIGKILL after reaper received SIGTERM, SIGKILL by --kill-after; exit status 137\n"
        )
    );
});

/// access(2) refused (a seccomp profile), whose answer reaper takes as a quick "no log here"
/// only when it is ENOENT: anything else leaves it to the walk, which finds the log.
#[test]
fn a_refused_access_still_writes_the_termination_log() {
    let Some(strace) = which("strace").filter(|_| !emulated()) else {
        return skip("strace (and not under qemu-user)");
    };
    let dir = tempdir("termlog-access-refused");
    let log = termination_log(&dir);
    let calls = "?access,?faccessat,?faccessat2";
    let mut cmd = Command::new(strace);
    cmd.args(["-qq", "-o", "/dev/null", "-e", &format!("trace={calls}")])
        .args(["-e", &format!("inject={calls}:error=EPERM"), REAPER, "true"])
        .env("REAPER_TERMINATION_LOG", &log);
    let (code, _, err) = run_with_timeout(&mut cmd, Duration::from_secs(20));
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with("true (pid ") && text.ends_with(") exited with status 0; exit status 0\n"),
        "{text}"
    );
    remove_tree(&dir);
}

/// Never created, and an empty variable turns it off.
#[test]
fn the_termination_log_is_never_created() {
    let dir = tempdir("termlog-absent");
    let missing = dir.join("missing");
    let (code, _, _) = run_with_timeout(
        Command::new(REAPER).env("REAPER_TERMINATION_LOG", &missing).args(["true"]),
        Duration::from_secs(20),
    );
    assert_eq!(code, 0);
    assert!(!missing.exists());
    let log = termination_log(&dir);
    std::fs::write(&log, "before\n").unwrap();
    let (code, _, _) = run_with_timeout(
        Command::new(REAPER).current_dir(&dir).env("REAPER_TERMINATION_LOG", "").args(["true"]),
        Duration::from_secs(20),
    );
    assert_eq!(code, 0);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "before\n");
    // A longer line written before is replaced, not overwritten in part.
    std::fs::write(&log, "x".repeat(500)).unwrap();
    let (code, _, _) = run_with_timeout(
        Command::new(REAPER).env("REAPER_TERMINATION_LOG", &log).args(["true"]),
        Duration::from_secs(20),
    );
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with("true (pid ") && text.ends_with(") exited with status 0; exit status 0\n"),
        "{text}"
    );
    // A command that cannot be started.
    let (code, _, _) = run_with_timeout(
        Command::new(REAPER).env("REAPER_TERMINATION_LOG", &log).args(["/nonexistent/cmd"]),
        Duration::from_secs(20),
    );
    assert_eq!(code, 127);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with("cannot run '/nonexistent/cmd': ") && text.ends_with("; exit status 127\n"),
        "{text}"
    );
}

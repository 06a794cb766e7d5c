//! `reaper --ps` against real processes: a Python program that leaks a zombie and orphans a
//! child, under reaper as PID 1 of a PID namespace and as a subreaper; the listing is taken
//! from inside that namespace (nsenter) or, for a subreaper on the host, from the host.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// Forks `leaky`, which forks a child that exits at once and never waits for it (a zombie),
/// and `middle`, which starts `sleep 1001` and exits (an orphan, adopted by reaper). The main
/// process reaps both of its own children, so once the test kills `leaky` nothing leaks.
const LEAK: &str = r#"
import os, time
leaky = os.fork()
if leaky == 0:
    if os.fork() == 0:
        os._exit(0)
    time.sleep(1000)
    os._exit(0)
middle = os.fork()
if middle == 0:
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "1001"])
    os._exit(0)
os.waitpid(middle, 0)
os.waitpid(leaky, 0)
time.sleep(1000)
"#;

const T: Duration = Duration::from_secs(20);

/// Where reaper runs the leak.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scene {
    /// PID 1 of a new PID namespace (`reaper_cmd(Mode::Pid1)`); listed from inside.
    Pid1,
    /// A plain process on the host, a subreaper (`reaper_cmd(Mode::Subreaper)`); listed from
    /// the host, which has zombies of its own, so no zombie count is asserted here.
    HostSubreaper,
    /// A subreaper in a PID namespace whose PID 1 is `sleep`; listed from inside.
    SubreaperUnderSleep,
}

/// The running scene, with the host pids of its processes.
struct Leak {
    child: Child,
    /// The PID namespace's PID 1 (`nsenter` target), or `None` on the host.
    init: Option<i32>,
    reaper: i32,
    leaky: i32,
    zombie: i32,
    orphan: i32,
}

fn python() -> [&'static str; 4] {
    ["--", "python3", "-c", LEAK]
}

impl Leak {
    fn start(scene: Scene) -> Leak {
        let mut cmd = match scene {
            Scene::Pid1 => reaper_cmd(Mode::Pid1, python()),
            Scene::HostSubreaper => reaper_cmd(Mode::Subreaper, python()),
            Scene::SubreaperUnderSleep => {
                let mut c = Command::new("unshare");
                if !is_root() {
                    c.args(["--user", "--map-root-user"]);
                }
                c.args(["--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c"]);
                c.args([r#""$0" -- python3 -c "$1" & exec sleep 1000"#, REAPER, LEAK]);
                c.stdin(Stdio::null()).process_group(0);
                c
            }
        };
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
        let outer = child.id() as i32;
        let (mut init, mut reaper, mut main, mut leaky, mut zombie, mut orphan) = (None, 0, 0, 0, 0, 0);
        let found = wait_until(T, || {
            init = match scene {
                Scene::HostSubreaper => None,
                _ => children(outer).first().copied(),
            };
            let parent = match scene {
                Scene::Pid1 => Some(outer),
                Scene::HostSubreaper => None,
                Scene::SubreaperUnderSleep => init,
            };
            reaper = match parent {
                Some(p) => {
                    children(p).into_iter().find(|&c| comm(c).as_deref() == Some("reaper")).unwrap_or(0)
                }
                None => outer,
            };
            let kids = children(reaper);
            let is_sleep_1001 = |&p: &i32| {
                std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == b"sleep\x001001\x00")
            };
            orphan = kids.iter().copied().find(is_sleep_1001).unwrap_or(0);
            main = kids.iter().copied().find(|&p| comm(p).as_deref() == Some("python3")).unwrap_or(0);
            // `middle` is gone (reaped by main), so main's one child is `leaky`.
            let mine = children(main);
            leaky = if mine.len() == 1 { mine[0] } else { 0 };
            zombie = children(leaky).into_iter().find(|&z| state(z) == Some('Z')).unwrap_or(0);
            reaper > 0 && orphan > 0 && leaky > 0 && zombie > 0
        });
        let leak = Leak { child, init, reaper, leaky, zombie, orphan };
        assert!(found, "{scene:?}: the leak never set up (reaper {reaper}, main {main}, leaky {leaky})");
        leak
    }

    /// `reaper --ps ARGS` where the scene's processes live: exit code, stdout, stderr.
    fn ps(&self, args: &[&str]) -> (i32, String, String) {
        ps_in(self.init, args)
    }

    /// A host pid as the listing numbers it.
    fn id(&self, host: i32) -> i32 {
        listed_id(self.init, host)
    }
}

/// `reaper --ps ARGS` in the PID namespace whose PID 1 is `init`, or on the host: exit code,
/// stdout, stderr.
fn ps_in(init: Option<i32>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = match init {
        Some(init) => nsenter_cmd(init),
        None => {
            let mut c = Command::new("env");
            c.stdin(Stdio::null()).process_group(0);
            c
        }
    };
    cmd.arg(REAPER).arg("--ps").args(args);
    run_with_timeout(&mut cmd, T)
}

/// A host pid as a listing in the PID namespace of `init` (or on the host) numbers it.
fn listed_id(init: Option<i32>, host: i32) -> i32 {
    if init.is_some() { ns_pid(host).expect("NSpid") } else { host }
}

impl Drop for Leak {
    fn drop(&mut self) {
        // PID 1 of a namespace takes everything in it along; on the host, reaper's command
        // has a process group of its own.
        kill_tree(self.init.unwrap_or(self.reaper));
        // SAFETY: kill(2) of the process group this test started.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// `child` is listed after `parent`, one level deeper, naming it as its parent.
fn assert_under(out: &str, child: i32, parent: i32) {
    let ((ci, c), (pi, p)) = (row(out, child), row(out, parent));
    assert!(ci > pi && c.depth == p.depth + 1 && c.ppid == parent, "{child} not under {parent}:\n{out}");
}

/// The header and the process lines without a note (which may run past the width).
fn tree(out: &str) -> Vec<&str> {
    let lines: Vec<&str> = out.lines().collect();
    let head = &lines[..lines.len().saturating_sub(2)];
    // The cgroup's memory line, where there is one, is part of the summary.
    let head = match head.last() {
        Some(l) if l.starts_with("Memory (cgroup): ") => &head[..head.len() - 1],
        _ => head,
    };
    head.iter().copied().filter(|l| !l.contains("  zombie: ") && !l.contains("  subreaper: ")).collect()
}

#[test]
fn the_zombie_names_its_parent_and_the_orphan_sits_under_reaper() {
    if skip_under_emulation("/proc shows qemu-user's command line for an emulated reaper") {
        return;
    }
    for scene in [Scene::Pid1, Scene::HostSubreaper] {
        let leak = Leak::start(scene);
        let (code, out, err) = leak.ps(&[]);
        assert_eq!((code, err.as_str()), (0, ""), "{scene:?}:\n{out}");
        assert!(out.starts_with("    PID    PPID S    AGE   UID COMMAND\n"), "{out}");
        let (reaper, leaky, zombie, orphan) =
            (leak.id(leak.reaper), leak.id(leak.leaky), leak.id(leak.zombie), leak.id(leak.orphan));
        let (_, z) = row(&out, zombie);
        assert_eq!(z.state, "Z", "{out}");
        assert_eq!(z.uid, "0", "{out}");
        assert_eq!(z.text, format!("[python3]  zombie: parent {leaky} (python3) has not called wait()"));
        assert_under(&out, zombie, leaky);
        assert_eq!(row(&out, orphan).1.text, "sleep 1001", "{out}");
        assert_under(&out, orphan, reaper);
        let (_, r) = row(&out, reaper);
        match scene {
            Scene::Pid1 => {
                assert_eq!((r.pid, r.depth), (1, 0), "{out}");
                assert!(r.text.starts_with(REAPER) && !r.text.contains("subreaper"), "{out}");
                assert!(out.ends_with("\nPID 1 is reaper: it reaps orphans.\n"), "{out}");
            }
            _ => assert!(r.text.ends_with("  subreaper: reaps the orphans below it"), "{out}"),
        }
        // Not a terminal: 80 columns. Only a line with a note may be longer.
        for l in tree(&out) {
            assert!(l.chars().count() <= 80, "{l:?}");
        }
    }
}

#[test]
fn max_zombies_fails_during_the_leak_and_passes_once_reaper_reaped_it() {
    for scene in [Scene::Pid1, Scene::SubreaperUnderSleep] {
        let leak = Leak::start(scene);
        let (code, out, err) = leak.ps(&["--max-zombies", "0"]);
        assert_eq!(code, 1, "{scene:?}: {err}\n{out}");
        assert_eq!(err, "reaper: 1 zombie, more than --max-zombies 0\n");
        let summary = if scene == Scene::Pid1 {
            "PID 1 is reaper: it reaps orphans.".to_owned()
        } else {
            format!("PID 1 is sleep, {NOT_AN_INIT}")
        };
        assert!(out.contains(&format!(" processes, 1 zombie\n{summary}\n")), "{out}");
        assert_eq!(leak.ps(&["--max-zombies", "1"]).0, 0, "{scene:?}");

        // The parent goes: its zombie is re-parented to reaper, which reaps it.
        // SAFETY: kill(2) of a process this test started.
        unsafe { libc::kill(leak.leaky, libc::SIGKILL) };
        let mut last = (0, String::new(), String::new());
        let healthy = wait_until(T, || {
            last = leak.ps(&["--max-zombies", "0"]);
            last.0 == 0
        });
        assert!(healthy, "{scene:?}: still unhealthy: {last:?}");
        assert_eq!(last.2, "");
        assert!(last.1.contains(" processes, 0 zombies\n"), "{}", last.1);
        assert!(rows(&last.1).iter().all(|r| r.state != "Z"), "{}", last.1);
    }
}

#[test]
fn a_namespace_whose_pid1_is_sleep_is_told_it_has_no_init() {
    if skip_under_emulation("/proc shows qemu-user's command line for an emulated reaper") {
        return;
    }
    let mut cmd = Command::new("unshare");
    if !is_root() {
        cmd.args(["--user", "--map-root-user"]);
    }
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child", "sleep", "1000"]);
    let mut child = cmd.stdin(Stdio::null()).process_group(0).spawn().expect("unshare");
    let mut init = None;
    let started = wait_until(T, || {
        init = children(child.id() as i32).first().copied().filter(|&p| comm(p).as_deref() == Some("sleep"));
        init.is_some()
    });
    let result = started.then(|| run_with_timeout(nsenter_cmd(init.unwrap_or(0)).args([REAPER, "--ps"]), T));
    // SAFETY: kill(2) of the namespace's PID 1 and of the group this test started.
    unsafe {
        libc::kill(init.unwrap_or(-1), libc::SIGKILL);
        libc::kill(-(child.id() as i32), libc::SIGKILL);
    }
    let _ = child.wait();
    let (code, out, err) = result.expect("sleep never started");
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let rows = rows(&out);
    assert_eq!((rows[0].pid, rows[0].ppid, rows[0].text), (1, 0, "sleep 1000"), "{out}");
    // The listing itself, started from outside (nsenter): parent 0.
    assert!(rows[1].text.starts_with(&format!("{REAPER} --ps")) && rows[1].ppid == 0, "{out}");
    assert!(out.ends_with(&format!("\n2 processes, 0 zombies\nPID 1 is sleep, {NOT_AN_INIT}\n")), "{out}");
}

#[test]
fn usage_errors() {
    for (args, message) in [
        (&["--ps", "sleep", "1"][..], "--ps takes no COMMAND"),
        (&["--ps", "--", "true"], "--ps takes no COMMAND"),
        (&["--ps", "--pause"], "--ps takes no other option than --max-zombies"),
        (&["--daemon", "--ps"], "--ps takes no other option than --max-zombies"),
        (&["--ps", "--wait-all"], "--ps takes no other option than --max-zombies"),
        (&["--ps", "--pidfile", "/tmp/x"], "--ps takes no other option than --max-zombies"),
        (&["--max-zombies", "1", "--", "true"], "--max-zombies needs --ps or --probe"),
        (&["--max-zombies", "1"], "--max-zombies needs --ps or --probe"),
        (&["--ps", "--max-zombies", "x"], "--max-zombies: invalid zombie count 'x' (0 or more)"),
        (&["--ps", "--max-zombies"], "missing argument for option '--max-zombies'"),
    ] {
        let (code, out, err) = run_with_timeout(Command::new(REAPER).args(args).process_group(0), T);
        assert_eq!((code, out.as_str()), (2, ""), "{args:?}");
        assert_eq!(err, format!("reaper: {message}\nTry 'reaper --help'.\n"), "{args:?}");
    }
    // The image's environment does not count: `docker exec` inherits REAPER_PAUSE and friends.
    let (code, out, _) =
        run_with_timeout(Command::new(REAPER).arg("--ps").env("REAPER_PAUSE", "1").process_group(0), T);
    assert_eq!(code, 0, "{out}");
    let (_, help, _) = run_with_timeout(Command::new(REAPER).arg("--help").process_group(0), T);
    assert!(help.contains("reaper --ps [--max-zombies N]") && help.contains("--max-zombies N"), "{help}");
}

#[test]
fn without_a_readable_proc_it_says_so_in_one_line_and_exits_1() {
    let mut hide = vec!["mount -t tmpfs none /proc"];
    // (scripts/test-cross runs the emulated suite in a user namespace of its own.)
    if is_root() && !skip_under_emulation("umount -l /proc: /proc is locked in test-cross's user namespace") {
        // A user namespace may not unmount the /proc it inherited (the mount is locked).
        hide.push("umount -l /proc");
    }
    for how in hide {
        let mut cmd = Command::new("unshare");
        if !is_root() {
            cmd.args(["--user", "--map-root-user"]);
        }
        cmd.args(["--mount", "sh", "-c", &format!(r#"{how} && exec "$0" --ps --max-zombies 5"#), REAPER]);
        let (code, out, err) = run_with_timeout(cmd.stdin(Stdio::null()).process_group(0), T);
        assert_eq!((code, out.as_str()), (1, ""), "{how}: {err}");
        assert_eq!(
            err, "reaper: /proc is not mounted or not readable: /proc/uptime: No such file or directory\n",
            "{how}"
        );
    }
}

#[test]
fn an_unprivileged_user_sees_every_process_with_what_is_readable() {
    if !is_root() {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), b"skipped: needs root to switch users\n");
        return;
    }
    // Another user's /proc/PID/exe (and more) is closed to nobody; the listing goes on.
    let mut cmd = Command::new(REAPER);
    cmd.arg("--ps").uid(65534).gid(65534).process_group(0);
    let (code, out, err) = run_with_timeout(&mut cmd, T);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let me = std::process::id() as i32;
    assert_eq!(row(&out, me).1.uid, "0", "{out}");
    let listed = rows(&out).len();
    assert!(out.contains(&format!("\n{listed} processes, ")), "{listed} rows:\n{out}");
    assert!(rows(&out).iter().any(|r| r.pid == 1), "{out}");
}

#[test]
fn on_a_terminal_lines_are_cut_to_its_width() {
    if which("script").is_none() {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), b"skipped: no script(1)\n");
        return;
    }
    // script(1) runs the command on a pseudo-terminal, here 40 columns wide.
    let shell = format!("stty cols 40 && {REAPER} --ps");
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &shell, "/dev/null"]).process_group(0);
    let (code, out, err) = run_with_timeout(&mut cmd, T);
    assert_eq!(code, 0, "{err}");
    let out = out.replace("\r\n", "\n");
    let tree = tree(&out);
    assert!(tree.len() > 2, "{out}");
    assert!(tree.iter().all(|l| l.chars().count() <= 40), "{out}");
    assert!(tree.iter().any(|l| l.chars().count() == 40), "nothing cut: {out}");
}

/// The command renames itself and leaves a zombie that renamed itself too, both with escape
/// sequences, BEL and newlines in their names; two children exec `sleep` under a hostile
/// argv[0]: controls and a RIGHT-TO-LEFT OVERRIDE, and 80 CJK characters (160 columns).
const NAMES: &str = r#"
import os, time
def rename(name):
    with open("/proc/self/comm", "wb") as f:
        f.write(name)
rename(b"p\x1b]0;T\x07\n")
if os.fork() == 0:
    rename(b"z\x1b[2J\x07\nq")
    os._exit(0)
if os.fork() == 0:
    os.execvp("sleep", [b"\x1b[31mred\x07\nx\xe2\x80\xaeevil", b"1001"])
if os.fork() == 0:
    os.execvp("sleep", [b"\xe7\x9d\xa1" * 80, b"1002"])
time.sleep(1000)
"#;

/// Columns on a terminal of a line of ASCII and CJK characters.
fn columns(line: &str) -> usize {
    line.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}

/// `--ps` under reaper shows each control character and the override of [`NAMES`] as `?`, and
/// cuts the CJK line at 80 columns without splitting a character.
fn names_show_controls_as_question_marks_and_wide_ones_keep_the_columns(mode: Mode) {
    let mut cmd = reaper_cmd(mode, ["--", "python3", "-c", NAMES]);
    let r = Reaper::start(mode, cmd.stdout(Stdio::null()).stderr(Stdio::null()));
    let main = r.command_pid();
    let (mut zombie, mut red, mut wide) = (0, 0, 0);
    let ends =
        |pid: i32, end: &[u8]| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.ends_with(end));
    // The zombie by its name too: python3 may be a pyenv shim, a shell whose helpers are
    // zombies for a moment before it execs python.
    let named_z =
        |pid: i32| std::fs::read(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with(b"z\x1b"));
    let ready = wait_until(T, || {
        for p in children(main) {
            if state(p) == Some('Z') && named_z(p) {
                zombie = p;
            } else if ends(p, b"\x001001\0") {
                red = p;
            } else if ends(p, b"\x001002\0") {
                wide = p;
            }
        }
        zombie > 0 && red > 0 && wide > 0
    });
    assert!(ready, "{mode:?}: zombie {zombie}, sleeps {red} {wide}");
    let init = (mode == Mode::Pid1).then_some(r.pid);
    let (code, out, err) = ps_in(init, &[]);
    assert_eq!((code, err.as_str()), (0, ""), "{mode:?}:\n{out}");
    let id = |host| listed_id(init, host);
    assert!(
        !out.chars().any(|c| (c.is_control() && c != '\n')
            || ('\u{2066}'..='\u{2069}').contains(&c)
            || ('\u{202a}'..='\u{202e}').contains(&c)),
        "{out:?}"
    );

    let (_, z) = row(&out, id(zombie));
    assert_eq!((z.state, z.ppid), ("Z", id(main)), "{out}");
    assert_eq!(z.text, format!("[z?[2J??q]  zombie: parent {} (p?]0;T??) has not called wait()", id(main)));

    // Not a terminal: 80 columns, 31 of them before the command.
    let (_, s) = row(&out, id(red));
    let room = (80 - 31usize).saturating_sub(2 * s.depth);
    assert_eq!(s.text, &"?[31mred??x?evil 1001"[..room.min(21)], "{out}");

    let (_, w) = row(&out, id(wide));
    assert_eq!((w.ppid, w.depth), (id(main), s.depth), "{out}");
    // Whole characters only: with an odd room, one column stays empty.
    assert_eq!(w.text, "睡".repeat(room / 2), "{out}");
    let line = out.lines().find(|l| l.ends_with(w.text)).unwrap();
    assert_eq!(columns(line), 80 - room % 2, "{line}");
}

both_modes!(names_show_controls_as_question_marks_and_wide_ones_keep_the_columns);

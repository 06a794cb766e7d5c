//! `--user` and `--no-new-privs` with real processes, as root (CI runs as root; elsewhere each
//! test says "SKIPPED, needs root"). Names come from a passwd and a group file of the test's
//! own, bind-mounted over /etc/passwd and /etc/group in a private mount namespace, so that
//! reaper and util-linux `setpriv` (the reference for what the command's /proc/PID/status must
//! show) read the same accounts on any machine.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
    app:x:1234:2345:App:/home/app:/bin/sh\n\
    nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\n\
    app:x:2345:\n\
    web:x:3000:other,app\n\
    audio:x:3001:app\n\
    nogroup:x:65534:\n";

const T: Duration = Duration::from_secs(30);

/// A directory holding the test's passwd and group files, writable by everyone (the commands
/// run as other users write their markers there).
fn etc(tag: &str) -> std::path::PathBuf {
    let dir = tempdir(tag);
    std::fs::write(dir.join("passwd"), PASSWD).unwrap();
    std::fs::write(dir.join("group"), GROUP).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// `inner` run where /etc/passwd and /etc/group are `dir`'s (a private mount namespace).
fn with_etc(dir: &Path, inner: &Command) -> Command {
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(
            r#"mount --bind "$D/passwd" /etc/passwd && mount --bind "$D/group" /etc/group && exec "$0" "$@""#,
        )
        .arg(inner.get_program())
        .args(inner.get_args())
        .env("D", dir)
        .stdin(Stdio::null())
        .process_group(0);
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

fn reaper_with_etc(mode: Mode, dir: &Path, args: &[&str]) -> Command {
    with_etc(dir, &reaper_cmd(mode, args))
}

const STATUS_FIELDS: [&str; 10] =
    ["Uid", "Gid", "Groups", "NoNewPrivs", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "Seccomp"];

fn fields(status: &str) -> Vec<String> {
    status
        .lines()
        .filter(|l| STATUS_FIELDS.iter().any(|f| l.starts_with(&format!("{f}:"))))
        .map(str::to_owned)
        .collect()
}

/// The command's ids, groups, no_new_privs and capability sets are those `setpriv` gives for
/// the same request.
fn status_matches_setpriv(mode: Mode) {
    if !need_root("status_matches_setpriv") {
        return;
    }
    if which("setpriv").is_none() {
        return eprintln!("skipped: no setpriv (util-linux)");
    }
    let dir = etc("setpriv");
    let no_caps = ["--inh-caps=-all", "--bounding-set=-all"];
    let cases: &[(&[&str], &[&str])] = &[
        (&["--user", "app"], &["--reuid=1234", "--regid=2345", "--init-groups"]),
        (
            &["--user", "app", "--no-new-privs"],
            &["--reuid=1234", "--regid=2345", "--init-groups", "--no-new-privs"],
        ),
        (&["--user", "1234"], &["--reuid=1234", "--regid=2345", "--init-groups"]),
        (&["--user", "app:web"], &["--reuid=1234", "--regid=3000", "--clear-groups"]),
        (&["--user", "app:4000"], &["--reuid=1234", "--regid=4000", "--clear-groups"]),
        (&["--user", "4242"], &["--reuid=4242", "--regid=4242", "--clear-groups"]),
        (&["--user", "4242:audio"], &["--reuid=4242", "--regid=3001", "--clear-groups"]),
        (&["--user", "nobody"], &["--reuid=65534", "--regid=65534", "--init-groups"]),
    ];
    for (ours, theirs) in cases {
        let mut args = ours.to_vec();
        args.extend(["--", "cat", "/proc/self/status"]);
        let (code, got, err) = run_with_timeout(&mut reaper_with_etc(mode, &dir, &args), T);
        assert_eq!(code, 0, "{ours:?}: {err}");
        let mut setpriv = Command::new("setpriv");
        setpriv.args(*theirs).args(no_caps).args(["cat", "/proc/self/status"]);
        let (code, want, err) = run_with_timeout(&mut with_etc(&dir, &setpriv), T);
        assert_eq!(code, 0, "setpriv {theirs:?}: {err}");
        assert_eq!(fields(&got), fields(&want), "{ours:?} against setpriv {theirs:?}");
        assert!(fields(&got).iter().any(|l| l.starts_with("CapBnd:\t0000000000000000")), "{got}");
    }
    // Root keeps reaper's capabilities, as setpriv without capability options.
    let (code, got, err) = run_with_timeout(
        &mut reaper_with_etc(mode, &dir, &["--user", "root", "--", "cat", "/proc/self/status"]),
        T,
    );
    assert_eq!(code, 0, "{err}");
    let mut setpriv = Command::new("setpriv");
    setpriv.args(["--reuid=0", "--regid=0", "--init-groups", "cat", "/proc/self/status"]);
    let (_, want, _) = run_with_timeout(&mut with_etc(&dir, &setpriv), T);
    assert_eq!(fields(&got), fields(&want));
    let _ = std::fs::remove_dir_all(&dir);
}
both_modes!(status_matches_setpriv);

/// HOME is the user's unless set to something else than root's own; USER and LOGNAME name the
/// user, or are removed when the uid has no name.
fn home_user_and_logname(mode: Mode) {
    if !need_root("home_user_and_logname") {
        return;
    }
    let dir = etc("home");
    let show = ["--", "sh", "-c", r#"echo "${HOME-unset}|${USER-unset}|${LOGNAME-unset}""#];
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("app", Some("/root"), "/home/app|app|app"),
        ("app", None, "/home/app|app|app"),
        ("app", Some(""), "/home/app|app|app"),
        ("app", Some("/data"), "/data|app|app"),
        ("4242", Some("/root"), "/|unset|unset"),
        ("root", Some("/root"), "/root|root|root"),
    ];
    for (user, home, want) in cases {
        let mut args = vec!["--user", user];
        args.extend(show);
        let mut cmd = reaper_cmd(mode, &args);
        cmd.env("USER", "root").env("LOGNAME", "root");
        match home {
            Some(h) => cmd.env("HOME", h),
            None => cmd.env_remove("HOME"),
        };
        let (code, out, err) = run_with_timeout(&mut with_etc(&dir, &cmd), T);
        assert_eq!((code, out.trim()), (0, *want), "--user {user} with HOME={home:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
both_modes!(home_user_and_logname);

/// Files the commands create are the user's; --also and --respawn commands switch too.
fn every_command_runs_as_the_user(mode: Mode) {
    if !need_root("every_command_runs_as_the_user") {
        return;
    }
    let dir = etc("owner");
    let d = dir.to_str().unwrap();
    let also = format!("sh -c 'touch {d}/also; exec sleep 1000'");
    let respawn = format!("sh -c 'test -e {d}/respawn || touch {d}/respawn; exec sleep 1000'");
    let main = format!("touch {d}/main; while ! test -e {d}/also -a -e {d}/respawn; do sleep 0.05; done");
    let args = ["--user", "app", "--also", &also, "--respawn", &respawn, "--", "sh", "-c", &main];
    let (code, _, err) = run_with_timeout(&mut reaper_with_etc(mode, &dir, &args), T);
    assert_eq!(code, 0, "{err}");
    for f in ["main", "also", "respawn"] {
        let m = std::fs::metadata(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}; {err}"));
        assert_eq!((m.uid(), m.gid()), (1234, 2345), "{f}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
both_modes!(every_command_runs_as_the_user);

/// The user cannot signal reaper (EPERM), while reaper, root, forwards signals to the user's
/// command, and drains and reaps the user's orphans.
fn user_cannot_signal_reaper_but_reaper_signals_and_reaps_the_users(mode: Mode) {
    if !need_root("user_cannot_signal_reaper") {
        return;
    }
    let dir = etc("signals");
    let d = dir.to_str().unwrap();
    let script = format!(
        "kill -USR1 $PPID 2>{d}/kill.err; echo $? >{d}/kill; \
         (sleep 1000 & echo $! >{d}/orphan); \
         trap 'exit 7' TERM; echo ready >{d}/ready; sleep 1000 & wait"
    );
    let mut cmd = reaper_with_etc(mode, &dir, &["-w", "--user", "app", "--", "sh", "-c", &script]);
    cmd.stderr(std::fs::File::create(dir.join("STDERR")).unwrap());
    // Not Reaper::start: the first child of the wrapper is a `mount`, not reaper.
    let child = cmd.spawn().unwrap();
    let outer = child.id() as i32;
    let mut r = Reaper { child, pid: outer, mode };
    assert!(wait_for_file(&dir.join("ready"), T), "the command never got ready");
    if mode == Mode::Pid1 {
        r.pid = descendants(outer).into_iter().find(|&p| comm(p).as_deref() == Some("reaper")).unwrap();
    }
    assert_eq!(std::fs::read_to_string(dir.join("kill")).unwrap().trim(), "1");
    let kill_err = std::fs::read_to_string(dir.join("kill.err")).unwrap();
    assert!(kill_err.contains("not permitted"), "{kill_err}");
    let orphan = std::fs::read_to_string(dir.join("orphan")).unwrap().trim().to_owned();
    r.signal(libc::SIGTERM);
    let code = r.code(T);
    let log = std::fs::read_to_string(dir.join("STDERR")).unwrap();
    assert_eq!(code, 7, "{log}");
    // Its name may still be sh: the TERM can come before its exec of sleep.
    assert!(log.contains(&format!("reaped pid {orphan} (")), "the orphan was not reaped: {log}");
    assert!(!log.contains("USR1"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
both_modes!(user_cannot_signal_reaper_but_reaper_signals_and_reaps_the_users);

/// A failing setgroups, setresgid or setresuid (EPERM injected with strace), or one that
/// claims success without effect: exit 126 with the reason, and the command never runs.
fn failed_switch_never_runs_the_command(mode: Mode) {
    if !need_root("failed_switch_never_runs_the_command") {
        return;
    }
    if which("strace").is_none() || which("setpriv").is_none() {
        return eprintln!("skipped: no strace or no setpriv");
    }
    const FAKED: &str = "the ids, groups or capabilities did not change although the system calls succeeded";
    let dir = etc("inject");
    let marker = dir.join("ran");
    // The 32-bit calls are the ones reaper makes on i686 and armv7.
    let cases = [
        ("setgroups,?setgroups32:error=EPERM", "setgroups: Operation not permitted"),
        ("setresgid,?setresgid32:error=EPERM", "setresgid: Operation not permitted"),
        ("setresuid,?setresuid32:error=EPERM", "setresuid: Operation not permitted"),
        ("setresuid,?setresuid32:retval=0", FAKED),
        // reaper in root's group: a faked setgroups must not leave the command in it.
        ("setgroups,?setgroups32:retval=0", FAKED),
        // reaper with an inheritable capability: a faked capset must not leave it.
        ("capset:retval=0", FAKED),
    ];
    for (inject, why) in cases {
        let inner = reaper_cmd(mode, ["--user", "app", "--", "touch", marker.to_str().unwrap()]);
        // setpriv outside strace: its own setgroups and capset are not faked.
        let mut cmd = Command::new("setpriv");
        cmd.args(["--groups=0,10", "--inh-caps=+net_raw", "strace"])
            .args(["-f", "-qq", "-o", "/dev/null", "-e", &format!("inject={inject}")])
            .arg(inner.get_program())
            .args(inner.get_args());
        let (code, _, err) = run_with_timeout(&mut with_etc(&dir, &cmd), T);
        let want = format!("reaper: cannot run 'touch' as app (uid 1234, gid 2345): {why}");
        assert_eq!((code, err.trim()), (126, want.as_str()), "inject={inject}");
        assert!(!marker.exists(), "inject={inject}: the command ran");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
both_modes!(failed_switch_never_runs_the_command);

/// Without CAP_SETPCAP reaper cannot empty the bounding set: exit 126 saying so, unless
/// --no-new-privs makes the bounding set moot (then it stays as it is).
fn bounding_set_without_setpcap(mode: Mode) {
    if !need_root("bounding_set_without_setpcap") {
        return;
    }
    if which("setpriv").is_none() {
        return eprintln!("skipped: no setpriv (util-linux)");
    }
    let dir = etc("setpcap");
    let marker = dir.join("ran");
    let without_setpcap = |args: &[&str]| {
        let inner = reaper_cmd(mode, args);
        let mut cmd = Command::new("setpriv");
        cmd.arg("--bounding-set=-setpcap").arg(inner.get_program()).args(inner.get_args());
        with_etc(&dir, &cmd)
    };
    let (code, _, err) = run_with_timeout(
        &mut without_setpcap(&["--user", "app", "--", "touch", marker.to_str().unwrap()]),
        T,
    );
    assert_eq!(code, 126, "{err}");
    assert!(
        err.starts_with(
            "reaper: cannot run 'touch' as app (uid 1234, gid 2345): cannot clear the capability \
             bounding set: Operation not permitted (reaper needs CAP_SETPCAP;"
        ),
        "{err}"
    );
    assert!(!marker.exists());
    let (code, out, err) = run_with_timeout(
        &mut without_setpcap(&["--user", "app", "--no-new-privs", "--", "cat", "/proc/self/status"]),
        T,
    );
    assert_eq!(code, 0, "{err}");
    let got = fields(&out);
    for want in [
        "Uid:\t1234\t1234\t1234\t1234",
        "NoNewPrivs:\t1",
        "CapEff:\t0000000000000000",
        "CapPrm:\t0000000000000000",
    ] {
        assert!(got.iter().any(|l| l == want), "{want:?} not in {got:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
both_modes!(bounding_set_without_setpcap);

/// Unknown names and malformed specs: one line naming --user or REAPER_USER, exit 2, nothing
/// started.
#[test]
fn bad_users_are_usage_errors_before_anything_starts() {
    if !need_root("bad_users_are_usage_errors") {
        return;
    }
    let dir = etc("usage");
    let marker = dir.join("ran");
    let touch = ["--", "touch", marker.to_str().unwrap()];
    let cases: &[(&[&str], Option<&str>, &str)] = &[
        (&["--user", "nosuch"], None, "--user: no user 'nosuch' in /etc/passwd"),
        (&["--user", "app:nosuch"], None, "--user: no group 'nosuch' in /etc/group"),
        (&["--user", "app:a:b"], None, "--user: invalid group name 'a:b'"),
        (&["--user", ":"], None, "--user: empty user (USER[:GROUP], names or numbers)"),
        (&[], Some("nosuch"), "REAPER_USER: no user 'nosuch' in /etc/passwd"),
        (&[], Some("4294967295"), "REAPER_USER: user id 4294967295 is out of range (0-4294967294)"),
    ];
    for (args, var, want) in cases {
        let mut all = args.to_vec();
        all.extend(touch);
        let mut cmd = reaper_cmd(Mode::Subreaper, &all);
        if let Some(v) = var {
            cmd.env("REAPER_USER", v);
        }
        let (code, _, err) = run_with_timeout(&mut with_etc(&dir, &cmd), T);
        assert_eq!(code, 2, "{args:?} {var:?}: {err}");
        assert_eq!(err.lines().next(), Some(format!("reaper: {want}").as_str()), "{args:?} {var:?}");
        assert!(!marker.exists());
    }
    let (code, _, err) = run_with_timeout(&mut reaper_cmd(Mode::Subreaper, ["--user", "app", "--pause"]), T);
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("reaper: --user and --no-new-privs apply to commands"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--no-new-privs` alone: the command cannot gain privileges, and keeps its user.
#[test]
fn no_new_privs_alone() {
    let (code, out, err) = run_with_timeout(
        &mut reaper_cmd(
            Mode::Subreaper,
            ["--no-new-privs", "--", "grep", "^NoNewPrivs:", "/proc/self/status"],
        ),
        T,
    );
    assert_eq!((code, out.split_whitespace().collect::<Vec<_>>()), (0, vec!["NoNewPrivs:", "1"]), "{err}");
}

/// In a user namespace whose /proc/self/setgroups says "deny", setgroups cannot work: exit 126
/// saying so, rather than leave the caller's groups to the command.
#[test]
fn setgroups_denied_in_a_user_namespace_is_exit_126() {
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", common::REAPER, "--user", "0", "--", "true"]).stdin(Stdio::null());
    let (code, _, err) = run_with_timeout(&mut cmd, T);
    if code == 1 && err.starts_with("unshare:") {
        return eprintln!("skipped: no user namespaces here ({})", err.trim());
    }
    assert_eq!(code, 126, "{err}");
    assert!(
        err.trim().ends_with(
            "(/proc/self/setgroups is \"deny\" in this user namespace: supplementary groups cannot be set)"
        ),
        "{err}"
    );
}

/// With --daemon, the files reaper opens stay root's; the command, as the user, writes to the
/// inherited stdout.
#[test]
fn daemon_files_stay_reapers() {
    if !need_root("daemon_files_stay_reapers") {
        return;
    }
    let dir = etc("daemon");
    let (log, pidfile) = (dir.join("out.log"), dir.join("reaper.pid"));
    let args = [
        "--daemon",
        "--stdout",
        log.to_str().unwrap(),
        "--pidfile",
        pidfile.to_str().unwrap(),
        "--user",
        "app",
        "--",
        "sh",
        "-c",
        "id -u; id -G",
    ];
    let (code, _, err) = run_with_timeout(&mut reaper_with_etc(Mode::Subreaper, &dir, &args), T);
    assert_eq!(code, 0, "{err}");
    // The pidfile goes when the daemon exits, after the command's output is written.
    assert!(wait_until(T, || std::fs::read_to_string(&log).is_ok_and(|l| l.lines().count() == 2)
        && !pidfile.exists()));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "1234\n2345 3000 3001\n");
    let m = std::fs::metadata(&log).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// On a terminal, the command run as the user still leads the foreground process group.
#[test]
fn the_users_command_is_the_terminal_foreground_group() {
    if !need_root("the_users_command_is_the_terminal_foreground_group") {
        return;
    }
    if which("script").is_none() {
        return eprintln!("skipped: no script (util-linux)");
    }
    for mode in MODES {
        let reaper = format!("{} --user 4242 -- sh -c 'id -u; exec cat /proc/self/stat'", common::REAPER);
        let line = match mode {
            Mode::Pid1 => format!("unshare --pid --fork --mount-proc --kill-child {reaper}"),
            Mode::Subreaper => reaper,
        };
        let mut script = Command::new("script");
        script.args(["-qec", &line, "/dev/null"]).stdin(Stdio::null()).process_group(0);
        let (code, out, err) = run_with_timeout(&mut script, T);
        assert_eq!(code, 0, "{mode:?}: {out} {err}");
        assert!(out.lines().any(|l| l.trim() == "4242"), "{mode:?}: {out}");
        let stat = out.lines().find(|l| l.contains(" (cat) ")).unwrap_or_else(|| panic!("{mode:?}: {out:?}"));
        let pid = stat.split(' ').next().unwrap();
        let f: Vec<&str> = stat[stat.rfind(") ").unwrap() + 2..].split_whitespace().collect();
        assert_ne!(f[4], "0", "{mode:?}: no controlling terminal: {stat}");
        assert_eq!((f[2], f[5]), (pid, pid), "{mode:?}: not the foreground group: {stat}");
    }
}

/// A reaper that is not root (no CAP_SETGID, CAP_SETUID, CAP_SETPCAP) fails at setgroups and
/// says so, exit 126, as docs/user.md states: not at the bounding set with a message that
/// blames CAP_SETPCAP (as it did when the bounding set was cleared first).
fn reaper_not_root_fails_at_setgroups(mode: Mode) {
    if !need_root("reaper_not_root_fails_at_setgroups") {
        return;
    }
    if which("setpriv").is_none() {
        return eprintln!("skipped: no setpriv (util-linux)");
    }
    let dir = etc("notroot");
    let marker = dir.join("ran");
    for extra in [&[][..], &["--no-new-privs"][..]] {
        // setpriv inside unshare: a non-root unshare could not make the PID namespace.
        let mut cmd = match mode {
            Mode::Pid1 => {
                let mut c = Command::new("unshare");
                c.args(["--pid", "--fork", "--mount-proc", "--kill-child", "setpriv"]);
                c
            }
            Mode::Subreaper => Command::new("setpriv"),
        };
        cmd.args(["--reuid=1234", "--regid=2345", "--clear-groups", common::REAPER, "--user", "app"])
            .args(extra)
            .args(["--", "touch", marker.to_str().unwrap()]);
        let (code, _, err) = run_with_timeout(&mut with_etc(&dir, &cmd), T);
        let want =
            "reaper: cannot run 'touch' as app (uid 1234, gid 2345): setgroups: Operation not permitted";
        assert_eq!((code, err.trim()), (126, want), "{extra:?}");
        assert!(!marker.exists(), "{extra:?}: the command ran");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
both_modes!(reaper_not_root_fails_at_setgroups);

/// PR_CAPBSET_READ failing in the child for one capability (EINVAL injected with strace on the
/// child's third prctl: the read of capability 1) is a failure, exit 126; it was taken for the
/// end of the set, and the command ran with 39 capabilities left in its bounding set.
fn bounding_set_read_error_is_a_failure(mode: Mode) {
    if !need_root("bounding_set_read_error_is_a_failure") {
        return;
    }
    if which("strace").is_none() {
        return eprintln!("skipped: no strace");
    }
    let dir = etc("capbset");
    let script = format!("grep ^CapBnd: /proc/self/status > {}/ran", dir.display());
    let inner = reaper_cmd(mode, ["--user", "app", "--", "sh", "-c", &script]);
    let mut cmd = Command::new("strace");
    // The counter is per process: the third prctl of the forked child, whatever reaper made.
    cmd.args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=prctl", "-e", "inject=prctl:error=EINVAL:when=3"])
        .arg(inner.get_program())
        .args(inner.get_args());
    let (code, _, err) = run_with_timeout(&mut with_etc(&dir, &cmd), T);
    let ran = std::fs::read_to_string(dir.join("ran")).unwrap_or_default();
    assert_eq!(code, 126, "{err} {ran}");
    assert!(
        err.contains("cannot run 'sh' as app (uid 1234, gid 2345): cannot clear the capability bounding set: Invalid argument"),
        "{err}"
    );
    assert_eq!(ran, "", "the command ran");
    let _ = std::fs::remove_dir_all(&dir);
}
both_modes!(bounding_set_read_error_is_a_failure);

/// A numeric user with an unreadable /etc/passwd (here a FIFO) still runs, as a uid without an
/// entry, but not silently: that uid's real entry may have another gid and groups.
fn unreadable_passwd_with_a_uid_warns(mode: Mode) {
    if !need_root("unreadable_passwd_with_a_uid_warns") {
        return;
    }
    let dir = etc("fifo");
    std::fs::remove_file(dir.join("passwd")).unwrap();
    let fifo = std::ffi::CString::new(dir.join("passwd").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let (code, out, err) = run_with_timeout(
        &mut reaper_with_etc(mode, &dir, &["--user", "1234", "--", "cat", "/proc/self/status"]),
        T,
    );
    assert_eq!(code, 0, "{err}");
    assert!(fields(&out).iter().any(|l| l == "Gid:\t1234\t1234\t1234\t1234"), "{out}");
    assert!(
        err.contains(
            "cannot read /etc/passwd: not a regular file: uid 1234 is taken as having no entry (gid 1234, no groups)"
        ),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
both_modes!(unreadable_passwd_with_a_uid_warns);

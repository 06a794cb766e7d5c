//! Real servers from Debian's packages, hosted the way their users host them.
//!
//! PostgreSQL: `pg_ctl -w start` daemonizes the postmaster, which writes postmaster.pid with
//! its pid on the first line and six more lines after it. reaper follows it, turns the
//! container's TERM into INT (PostgreSQL's fast shutdown: TERM would be its "smart" shutdown,
//! which waits for every client to leave) and exits with its status. Needs root (the server
//! runs as nobody: PostgreSQL refuses root) and the postgresql package (scripts/install-deps).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const LONG: Duration = Duration::from_secs(60);

/// The newest PostgreSQL's bin directory, if one is installed.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("pg_ctl").exists())
        .collect();
    found.sort_by_key(|p| p.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()));
    found.pop()
}

/// Runs `args` as nobody (setpriv, util-linux) and returns its exit code and output.
fn as_nobody(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]).args(args).current_dir(dir);
    run_with_timeout(&mut cmd, LONG)
}

fn postgresql_is_followed_and_shut_down_cleanly(mode: Mode) {
    let name = "postgresql_is_followed_and_shut_down_cleanly";
    if !is_root() {
        return eprintln!("{name}: skipped: needs root (the server runs as nobody)");
    }
    let Some(bin) = postgres_bin() else {
        return eprintln!("{name}: skipped: postgresql not installed (scripts/install-deps)");
    };
    let tool = |t: &str| bin.join(t).to_str().unwrap().to_owned();
    let dir = tempdir("postgres");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let data_s = data.to_str().unwrap();
    let (code, _, err) = as_nobody(&dir, &[&tool("initdb"), "-D", data_s, "-A", "trust", "-U", "postgres"]);
    assert_eq!(code, 0, "initdb: {err}");

    // No TCP; the socket in the data directory (the packaged default, /run/postgresql, is
    // root's).
    let opts = format!("-c listen_addresses= -k {data_s}");
    let log = data.join("server.log");
    let pidfile = data.join("postmaster.pid");
    let mut cmd = cmd_in(
        mode,
        &dir,
        ["--follow-pidfile", pidfile.to_str().unwrap(), "-r", "TERM:INT", "--drain", "20s"],
    );
    cmd.args(["--", "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .args([&tool("pg_ctl"), "-D", data_s, "-l", log.to_str().unwrap(), "-o", &opts, "-w", "start"])
        .env("REAPER_LOG", "info");
    let mut r = Reaper::start(mode, &mut cmd);
    let _g = Guard::new(&r, &dir);
    let server_log = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_until(LONG, || stderr_of(&dir).contains("following pid") || stderr_of(&dir).contains("exiting")),
        "{mode:?}: reaper never got to the postmaster\nreaper:\n{}\nserver:\n{}",
        stderr_of(&dir),
        server_log()
    );
    assert!(
        stderr_of(&dir).contains("following pid"),
        "{mode:?}: never followed the postmaster\nreaper:\n{}\nserver:\n{}",
        stderr_of(&dir),
        server_log()
    );
    let (code, out, err) = as_nobody(&dir, &[&tool("pg_isready"), "-h", data_s, "-U", "postgres"]);
    assert_eq!(code, 0, "{mode:?}: pg_isready: {out}{err}");

    r.signal(libc::SIGTERM);
    let code = r.wait_timeout(LONG).map(exit_code);
    assert_eq!(
        code,
        Some(0),
        "{mode:?}: reaper's exit\nreaper:\n{}\nserver:\n{}",
        stderr_of(&dir),
        server_log()
    );
    assert!(server_log().contains("fast shutdown request"), "{mode:?}: {}", server_log());
    let (_, control, _) = as_nobody(&dir, &[&tool("pg_controldata"), "-D", data_s]);
    let state = control.lines().find(|l| l.starts_with("Database cluster state:")).unwrap_or_default();
    assert!(state.ends_with(" shut down"), "{mode:?}: {state}\n{control}");
    assert_eq!(processes_using(&data), Vec::<i32>::new(), "{mode:?}: left running");
}

both_modes!(postgresql_is_followed_and_shut_down_cleanly);

//! The termination log: Kubernetes mounts an empty file at `/dev/termination-log` and shows
//! what the container wrote there when it ended (`kubectl describe pod`, "Message"). reaper
//! writes one line saying why it ended: the command's status or signal, an OOM kill, a stop
//! from outside, `--kill-after`. [`Ending`] collects the facts as the supervisor sees them and
//! is pure; [`write`] is the thin layer that opens the file.
//!
//! `REAPER_TERMINATION_LOG` names another file (for tests, or other orchestrators); empty
//! disables it. The file is never created (reaper writes only where the orchestrator put a
//! file), opened by the rules of `safe_open`, and a failure is a debug line, nothing more.

use std::path::PathBuf;

use crate::state::Ended;

pub const DEFAULT: &str = "/dev/termination-log";
pub const VARIABLE: &str = "REAPER_TERMINATION_LOG";
/// Kubernetes keeps 4096 bytes of the message; one short line is the aim.
const MAX_LINE: usize = 1024;

/// What the supervisor saw that explains reaper's exit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ending {
    /// The command, and the `--also` commands (whose exit ends the workload too).
    main: Option<(i32, String)>,
    also: Vec<(i32, String)>,
    /// The first stop signal received.
    stop: Option<i32>,
    kill_after: bool,
    /// The first of those commands to end, and how.
    first: Option<(i32, String, Ended)>,
    failed: Option<String>,
    /// Pids the OOM killer was blamed for (`certain`: the only SIGKILL death of its batch).
    oom: Vec<(i32, bool, String)>,
}

impl Ending {
    pub fn new(main: Option<(i32, String)>, also: Vec<(i32, String)>) -> Ending {
        Ending { main, also, ..Ending::default() }
    }

    /// A command started: the main one and the essential `--also` ones end the workload.
    pub fn started(&mut self, pid: i32, settings: &crate::command::Settings) {
        use crate::command::Role;
        match settings.role {
            Role::Main => self.main = Some((pid, settings.name.clone())),
            Role::Also { essential: true } => self.also.push((pid, settings.name.clone())),
            _ => {}
        }
    }

    /// The workload failed for a reason no command's exit says (the lifecycle machine's
    /// word: a helper's restart budget spent, a readiness timeout).
    pub fn failed(&mut self, why: &str) {
        self.failed = Some(why.to_owned());
    }

    /// A signal reaper received.
    pub fn signal(&mut self, sig: i32) {
        if self.stop.is_none() && crate::signals::is_stop(sig) {
            self.stop = Some(sig);
        }
    }

    pub fn reaped(&mut self, pid: i32, ended: Ended) {
        if self.first.is_some() {
            return;
        }
        let name = self.main.iter().chain(&self.also).find(|(p, _)| *p == pid).map(|(_, n)| n.clone());
        if let Some(name) = name {
            self.first = Some((pid, name, ended));
        }
    }

    /// `--kill-after` fired (the lifecycle machine knows).
    pub fn kill_after(&mut self) {
        self.kill_after = true;
    }

    pub fn oom(&mut self, blame: &crate::cgroup::Blame) {
        for &pid in blame.pids.iter().take(64 - self.oom.len().min(64)) {
            self.oom.push((pid, blame.certain, blame.limit.clone()));
        }
    }

    /// The line for the termination log, reaper exiting with `code`.
    pub fn line(&self, code: i32) -> String {
        let mut line = match (&self.failed, &self.first) {
            // The machine's word: no command's exit says why (a helper's budget, a timeout).
            (Some(why), _) => why.clone(),
            (None, Some((pid, name, ended))) => {
                let how = match self.oom.iter().find(|(p, ..)| p == pid) {
                    Some((_, true, limit)) => format!("killed by the OOM killer ({limit})"),
                    Some((_, false, limit)) => {
                        format!("killed by SIGKILL, maybe by the OOM killer ({limit})")
                    }
                    None => ended.to_string(),
                };
                format!("{name} (pid {pid}) {how}")
            }
            (None, None) if self.main.is_none() => "no command (--pause)".to_owned(),
            (None, None) => "the workload ended".to_owned(),
        };
        if let Some(sig) = self.stop {
            line += &format!(" after reaper received {}", crate::signals::name(sig));
        }
        if self.kill_after {
            line += ", SIGKILL by --kill-after";
        }
        let others = self.oom.iter().filter(|(p, ..)| self.first.as_ref().is_none_or(|f| f.0 != *p)).count();
        if others > 0 {
            line += &format!(
                "; the OOM killer killed {others} other process{}",
                if others == 1 { "" } else { "es" }
            );
        }
        line += &format!("; exit status {code}");
        // One line whatever the commands' names hold.
        let mut line = crate::text::printable(line.as_bytes());
        let mut cut = line.len().min(MAX_LINE);
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line
    }
}

/// Where the termination log is: `REAPER_TERMINATION_LOG`'s value (empty: none), else
/// `/dev/termination-log`.
pub fn path(var: Option<std::ffi::OsString>) -> Option<PathBuf> {
    match var {
        Some(v) if v.is_empty() => None,
        Some(v) => Some(v.into()),
        None => Some(DEFAULT.into()),
    }
}

/// Writes `line()` to the termination log if there is one; never an error. The line is made
/// only once the log is known to exist (between the command's exit and reaper's).
pub fn write(line: impl FnOnce() -> String) {
    if let Some(path) = path(std::env::var_os(VARIABLE)) {
        write_to(&path, line);
    }
}

fn write_to(path: &std::path::Path, line: impl FnOnce() -> String) {
    use std::io::Write;
    // Most places have no termination log: one access(2) says so, where safe_open's walk
    // took six system calls, between the command's exit and reaper's. Only a sure "no such
    // file" skips the walk (the walk could find nothing the kernel does not); any other
    // answer, a seccomp EPERM too, leaves the decision to safe_open.
    if nix::unistd::access(path, nix::unistd::AccessFlags::F_OK) == Err(nix::errno::Errno::ENOENT) {
        return log::debug!(
            "termination log {}: {}",
            path.display(),
            crate::error::os(nix::errno::Errno::ENOENT)
        );
    }
    let result = crate::safe_open::open(path, crate::safe_open::Purpose::Report).and_then(|mut file| {
        file.set_len(0).map_err(|e| e.to_string())?;
        file.write_all(format!("{}\n", line()).as_bytes()).map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => log::debug!("wrote the termination log {}", path.display()),
        Err(e) => log::debug!("termination log {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::Blame;

    fn ending() -> Ending {
        Ending::new(Some((7, "python3".into())), vec![(9, "worker".into())])
    }

    /// Issue 20: a helper's spent budget or a readiness timeout is the reason, whatever
    /// command is reaped first after it; commands started late count as the others.
    #[test]
    fn the_machine_s_reason_when_no_exit_says_it() {
        let mut e = Ending::new(None, Vec::new());
        let web = crate::command::Settings::new("web".into(), crate::command::Role::Main);
        e.started(12, &web);
        e.reaped(12, Ended::Exited(143));
        e.failed("cron failed: 6 exits within 10s (--restarts 5/10s)");
        assert_eq!(e.line(1), "cron failed: 6 exits within 10s (--restarts 5/10s); exit status 1");
        let mut e = Ending::new(None, Vec::new());
        e.started(12, &web);
        e.reaped(12, Ended::Exited(4));
        assert_eq!(e.line(4), "web (pid 12) exited with status 4; exit status 4");
    }

    #[test]
    fn the_command_s_status_or_signal() {
        let mut e = ending();
        e.reaped(7, Ended::Exited(3));
        assert_eq!(e.line(3), "python3 (pid 7) exited with status 3; exit status 3");
        let mut e = ending();
        e.signal(libc::SIGHUP);
        e.signal(libc::SIGINT);
        e.signal(libc::SIGTERM);
        e.reaped(7, Ended::Signaled(libc::SIGINT));
        assert_eq!(
            e.line(130),
            "python3 (pid 7) killed by SIGINT after reaper received SIGINT; exit status 130"
        );
    }

    #[test]
    fn the_first_command_to_end_is_the_cause() {
        let mut e = ending();
        e.reaped(12, Ended::Exited(0)); // a leftover
        e.reaped(9, Ended::Exited(4));
        e.reaped(7, Ended::Signaled(libc::SIGTERM));
        assert_eq!(e.line(4), "worker (pid 9) exited with status 4; exit status 4");
    }

    #[test]
    fn kill_after_and_the_oom_killer() {
        let mut e = ending();
        e.signal(libc::SIGQUIT);
        e.kill_after();
        e.reaped(7, Ended::Signaled(libc::SIGKILL));
        assert_eq!(
            e.line(137),
            "python3 (pid 7) killed by SIGKILL after reaper received SIGQUIT, SIGKILL by --kill-after; exit status 137"
        );
        let mut e = ending();
        e.oom(&Blame { pids: vec![7], certain: true, limit: "memory limit 64 MiB".into() });
        e.reaped(7, Ended::Signaled(libc::SIGKILL));
        assert_eq!(
            e.line(137),
            "python3 (pid 7) killed by the OOM killer (memory limit 64 MiB); exit status 137"
        );
        let mut e = ending();
        e.oom(&Blame { pids: vec![9, 7], certain: false, limit: "no memory limit".into() });
        e.reaped(7, Ended::Signaled(libc::SIGKILL));
        assert_eq!(
            e.line(137),
            "python3 (pid 7) killed by SIGKILL, maybe by the OOM killer (no memory limit); the OOM killer \
             killed 1 other process; exit status 137"
        );
        let mut e = ending();
        e.oom(&Blame { pids: vec![20], certain: true, limit: String::new() });
        e.oom(&Blame { pids: vec![21], certain: true, limit: String::new() });
        e.reaped(7, Ended::Exited(1));
        assert_eq!(
            e.line(1),
            "python3 (pid 7) exited with status 1; the OOM killer killed 2 other processes; exit status 1"
        );
    }

    #[test]
    fn no_command_and_bounds() {
        let mut e = Ending::new(None, Vec::new());
        e.signal(libc::SIGTERM);
        assert_eq!(e.line(0), "no command (--pause) after reaper received SIGTERM; exit status 0");
        let e = ending();
        assert_eq!(e.line(1), "the workload ended; exit status 1");
        // Cut at a character's start: 1024 falls inside an "é".
        let mut e = Ending::new(Some((7, format!("x{}", "é".repeat(2000)))), Vec::new());
        e.reaped(7, Ended::Exited(0));
        assert_eq!(e.line(0).len(), MAX_LINE - 1);
        let mut e = Ending::new(Some((7, "é".repeat(2000))), Vec::new());
        e.reaped(7, Ended::Exited(0));
        assert_eq!(e.line(0).len(), MAX_LINE);
        let mut e = Ending::new(Some((7, "x".repeat(MAX_LINE - 32))), Vec::new());
        e.reaped(7, Ended::Exited(0));
        assert_eq!(e.line(0).len(), MAX_LINE, "{}", e.line(0));
        let mut e = ending();
        for pid in 0..100 {
            e.oom(&Blame { pids: vec![pid + 100], certain: true, limit: String::new() });
        }
        assert_eq!(e.oom.len(), 64);
    }

    #[test]
    fn names_cannot_break_the_line() {
        let mut e = Ending::new(Some((7, "a\nb\x1b[2J".into())), Vec::new());
        e.reaped(7, Ended::Exited(0));
        assert_eq!(e.line(0), "a?b?[2J (pid 7) exited with status 0; exit status 0");
    }

    #[test]
    fn the_file_is_replaced_never_created() {
        let dir = std::env::temp_dir().join(format!("reaper-termlog-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("log");
        write_to(&file, || "first".into());
        assert!(!file.exists());
        let _ = std::fs::write(&file, "a much longer line than the next\n");
        write_to(&file, || "why".into());
        assert_eq!(std::fs::read_to_string(&file).ok().as_deref(), Some("why\n"));
        // A FIFO without a reader in its place: refused at once, never waited on.
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap_or_default();
        // SAFETY: mkfifo(3) with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        write_to(&fifo, || "why".into());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_path() {
        assert_eq!(path(None), Some(PathBuf::from("/dev/termination-log")));
        assert_eq!(path(Some("".into())), None);
        assert_eq!(path(Some("/tmp/x".into())), Some(PathBuf::from("/tmp/x")));
    }
}

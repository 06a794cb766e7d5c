//! The `--pidfile`: reaper's pid in a file that stays flock-ed while reaper lives, so a stale
//! file (no lock) can be taken over and a live one refused without guessing from pids.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::Error;
use crate::safe_open::{self, Purpose};

pub struct Pidfile {
    path: PathBuf,
    // Holds the lock until reaper exits (the descriptor is CLOEXEC, so the command never has it).
    _lock: Flock<File>,
}

/// How many times `acquire` starts over when the file it locked was replaced meanwhile.
const ATTEMPTS: usize = 5;

impl Pidfile {
    /// Opens (see `lock`), locks, checks that the locked inode is still the one
    /// the path names, and only then truncates and writes our pid.
    pub fn acquire(path: PathBuf) -> Result<Pidfile, Error> {
        let path = match path.is_absolute() {
            true => path,
            false => std::env::current_dir().map_err(|e| Error::start(path.display(), e))?.join(path),
        };
        let what = || format!("--pidfile {}", path.display());
        for _ in 0..ATTEMPTS {
            let mut lock = Self::lock(&path, &what)?;
            // Between our open and our flock, the reaper that held the file may have exited
            // and unlinked it, and another starter created a fresh one at the path: a lock on
            // the unlinked inode guards nothing. Only the inode the path names now counts.
            if !names(&path, &lock) {
                log::debug!("{} was replaced while we locked it: trying again", what());
                continue;
            }
            let pid = format!("{}\n", std::process::id());
            lock.set_len(0)
                .and_then(|_| lock.rewind())
                .and_then(|_| lock.write_all(pid.as_bytes()))
                .map_err(|e| Error::start(what(), e))?;
            return Ok(Pidfile { path, _lock: lock });
        }
        Err(Error::Start(format!("{}: replaced {ATTEMPTS} times while we locked it, giving up", what())))
    }

    /// Opens under `safe_open`'s rules: a regular file that is no symbolic link itself (a FIFO
    /// or a device is refused before anything starts), reached through no other user's link.
    fn lock(path: &Path, what: &dyn Fn() -> String) -> Result<Flock<File>, Error> {
        let file = safe_open::open(path, Purpose::Pidfile)
            .map_err(|why| Error::Start(format!("{}: {why}", what())))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(lock),
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                Err(Error::Start(format!("already running (pid {}): {} is locked", pid.trim(), what())))
            }
            Err((_, e)) => Err(Error::start(what(), e)),
        }
    }

    /// Removes the file while still holding the lock, and only if the path still names our
    /// inode. A starter that opened the file before the unlink locks the unlinked inode after
    /// it, and notices in `acquire` (the path names another inode, or none): it starts over.
    ///
    /// Check, then unlink: two steps (Linux has no "unlink if this inode"), and not a race that
    /// matters. While we hold the lock no other starter replaces the file: it opens our inode,
    /// fails to lock it and gives up; it creates a new file only once the path is gone, which
    /// is after our unlink. Only someone who can rename or unlink in the directory can slip
    /// another file in between; in a sticky directory (/tmp) that is only our own user or
    /// root, and in a directory they may write freely they can remove any pidfile at will anyway.
    /// The one loss: an operator who deletes a live pidfile and starts a second reaper at
    /// that very microsecond may see its fresh pidfile removed.
    pub fn remove(self) {
        if !names(&self.path, &self._lock) {
            log::warn!("pidfile {} is no longer ours: left alone", self.path.display());
            return;
        }
        if let Err(e) = std::fs::remove_file(&self.path) {
            log::warn!("removing pidfile {}: {}", self.path.display(), crate::error::os(e));
        }
    }
}

/// Whether `path` (not following a symlink) is the inode `file` has open.
fn names(path: &Path, file: &File) -> bool {
    match (std::fs::symlink_metadata(path), file.metadata()) {
        (Ok(at_path), Ok(ours)) => at_path.dev() == ours.dev() && at_path.ino() == ours.ino(),
        _ => false,
    }
}

/// The pid in a pidfile written by someone else (`--follow-pidfile`): the first line, as
/// systemd's `PIDFile=` reads it. PostgreSQL's postmaster.pid has six more lines after it;
/// blanks around the number are ignored. Pids 0 and 1 are never a daemon reaper started.
/// The error quotes what was there, escaped: the file is untrusted input.
pub fn parse_pid(text: &str) -> Result<i32, String> {
    let first = text.lines().next().unwrap_or("").trim();
    let digits = !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit());
    match first.parse::<i32>() {
        Ok(pid) if digits && pid > 1 => Ok(pid),
        Ok(pid) if digits => Err(format!("pid {pid} on its first line cannot be a daemon's")),
        _ => {
            let shown: String = first.chars().take(40).collect();
            let more = if first.chars().count() > 40 { "…" } else { "" };
            Err(format!("no pid on its first line: {shown:?}{more}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_is_the_first_line() {
        assert_eq!(parse_pid("123"), Ok(123));
        assert_eq!(parse_pid(" 123 \n"), Ok(123));
        assert_eq!(
            parse_pid("4242\n/var/lib/postgresql/data\n1733390000\n5432\n/run\n*\n  1 2\nready\n"),
            Ok(4242)
        );
        assert_eq!(parse_pid("2\r\n"), Ok(2));
        assert_eq!(parse_pid("\n123\n"), Err("no pid on its first line: \"\"".into()));
        assert_eq!(parse_pid("1\n"), Err("pid 1 on its first line cannot be a daemon's".into()));
        assert_eq!(parse_pid("0"), Err("pid 0 on its first line cannot be a daemon's".into()));
        assert_eq!(parse_pid("+5"), Err("no pid on its first line: \"+5\"".into()));
        assert_eq!(parse_pid("-5"), Err("no pid on its first line: \"-5\"".into()));
        assert_eq!(parse_pid("12 34"), Err("no pid on its first line: \"12 34\"".into()));
        assert_eq!(parse_pid(""), Err("no pid on its first line: \"\"".into()));
    }

    #[test]
    fn what_was_there_is_quoted_escaped_and_bounded() {
        assert_eq!(
            parse_pid("\x1b[31mx\x07"),
            Err("no pid on its first line: \"\\u{1b}[31mx\\u{7}\"".into())
        );
        let long = "9".repeat(41);
        assert_eq!(parse_pid(&long), Err(format!("no pid on its first line: {:?}…", &long[..40])));
        let exact = "x".repeat(40);
        assert_eq!(parse_pid(&exact), Err(format!("no pid on its first line: {exact:?}")));
    }
}

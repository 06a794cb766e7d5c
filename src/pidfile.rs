//! The `--pidfile`: reaper's pid in a file that stays flock-ed while reaper lives, so a stale
//! file (no lock) can be taken over and a live one refused without guessing from pids.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::Error;

pub struct Pidfile {
    path: PathBuf,
    // Holds the lock until reaper exits (the descriptor is CLOEXEC, so the command never has it).
    _lock: Flock<File>,
}

impl Pidfile {
    /// Opens without following symlinks, locks, and only then truncates and writes our pid.
    pub fn acquire(path: PathBuf) -> Result<Pidfile, Error> {
        let path = std::path::absolute(&path).map_err(|e| Error::start(path.display(), e))?;
        let what = || format!("pidfile {}", path.display());
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => {
                    Error::Start(format!("{}: is a symbolic link, refusing to follow it", what()))
                }
                _ => Error::start(what(), e),
            })?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(Error::Start(format!(
                    "already running (pid {}): {} is locked",
                    pid.trim(),
                    what()
                )));
            }
            Err((_, e)) => return Err(Error::start(what(), e)),
        };
        let pid = format!("{}\n", std::process::id());
        lock.set_len(0)
            .and_then(|_| lock.rewind())
            .and_then(|_| lock.write_all(pid.as_bytes()))
            .map_err(|e| Error::start(what(), e))?;
        Ok(Pidfile { path, _lock: lock })
    }

    /// Removes the file while still holding the lock, so no other reaper can be mid-takeover.
    pub fn remove(self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            log::warn!("removing pidfile {}: {e}", self.path.display());
        }
    }
}

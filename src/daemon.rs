//! `--daemon`: fork → setsid → fork, a clean working directory, umask and stdio, and the start
//! report that the foreground process waits for before it exits.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, fork, pipe2, setsid};

use crate::error::Error;
use crate::options::Daemon;
use crate::safe_open::{self, Purpose};

/// The daemon's end of the start report: exactly one of `started` or `failed` is sent.
pub struct Report(File);

impl Report {
    pub fn started(self) {
        self.send(0, "");
    }

    pub fn failed(self, e: &Error) {
        self.send(e.exit_code(), &e.report());
    }

    /// One byte of exit code for the foreground process, then the message for its stderr.
    fn send(mut self, code: i32, message: &str) {
        let mut msg = vec![code as u8];
        msg.extend_from_slice(message.as_bytes());
        let _ = self.0.write_all(&msg);
    }
}

/// Detaches. Returns only in the daemon; the foreground process exits with the report's code.
pub fn detach(d: &Daemon) -> Result<Report, Error> {
    // Opened before forking, relative to the caller's directory, so a bad path fails loudly.
    let stdout = d.stdout.as_deref().map(|p| open_log("--stdout", p)).transpose()?;
    let stderr = d.stderr.as_deref().map(|p| open_log("--stderr", p)).transpose()?;
    let (report_rd, report_wr) = pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::start("pipe", e))?;

    // SAFETY: single-threaded; both halves continue as ordinary Rust programs.
    if let ForkResult::Parent { child } = unsafe { fork() }.map_err(|e| Error::start("fork", e))? {
        drop(report_wr);
        foreground(report_rd, child);
    }
    drop(report_rd);
    let report = Report(File::from(report_wr));
    match daemonize(d, stdout, stderr, report.0.as_raw_fd()) {
        Ok(()) => Ok(report),
        Err(e) => {
            report.failed(&e);
            std::process::exit(e.exit_code());
        }
    }
}

/// Waits for the start report: exit 0 once COMMAND was exec'd, its error otherwise. Never
/// hangs: if the daemon dies first, the pipe reaches EOF with nothing in it.
fn foreground(report: OwnedFd, intermediate: nix::unistd::Pid) -> ! {
    let _ = nix::sys::wait::waitpid(intermediate, None);
    let mut msg = Vec::new();
    let _ = File::from(report).read_to_end(&mut msg);
    let code = match msg.split_first() {
        Some((&code, text)) => {
            if !text.is_empty() {
                let _ = writeln!(std::io::stderr(), "{}", String::from_utf8_lossy(text));
            }
            i32::from(code)
        }
        None => {
            let _ = writeln!(
                std::io::stderr(),
                "reaper: the daemon exited before reporting whether COMMAND started"
            );
            1
        }
    };
    std::process::exit(code);
}

fn daemonize(d: &Daemon, stdout: Option<File>, stderr: Option<File>, keep: i32) -> Result<(), Error> {
    // A new session: no controlling terminal, and the caller's job control cannot reach us.
    setsid().map_err(|e| Error::start("setsid", e))?;
    // Fork again so the daemon is not a session leader and can never acquire a terminal by
    // opening one. The session leader exits; the foreground process reaps it.
    // SAFETY: single-threaded; the parent only calls _exit.
    if let ForkResult::Parent { .. } = unsafe { fork() }.map_err(|e| Error::start("fork", e))? {
        // SAFETY: _exit: nothing of ours to flush or run.
        unsafe { libc::_exit(0) };
    }
    // 022, not 0: files the workload creates must not become world-writable.
    nix::sys::stat::umask(Mode::from_bits_truncate(d.umask));
    std::env::set_current_dir(&d.chdir)
        .map_err(|e| Error::start(format!("--chdir {}", d.chdir.display()), e))?;

    let null = |write: bool| {
        File::options().read(!write).write(write).open("/dev/null").map_err(|e| Error::start("/dev/null", e))
    };
    let stdin = null(false)?;
    let stdout = stdout.map_or_else(|| null(true), Ok)?;
    let stderr = stderr.map_or_else(|| null(true), Ok)?;
    for (file, fd) in [(&stdin, 0), (&stdout, 1), (&stderr, 2)] {
        // SAFETY: dup2 onto a standard descriptor; both are valid.
        if unsafe { libc::dup2(file.as_raw_fd(), fd) } < 0 {
            return Err(Error::start("dup2", std::io::Error::last_os_error()));
        }
    }
    drop((stdin, stdout, stderr));
    close_inherited(keep);
    Ok(())
}

/// Log files are appended to, created 0640, and opened under `safe_open`'s rules: never
/// through another user's symbolic link, never blocking.
fn open_log(flag: &str, path: &Path) -> Result<File, Error> {
    safe_open::open(path, Purpose::Log)
        .map_err(|why| Error::Start(format!("{flag} {}: {why}", path.display())))
}

/// Closes every descriptor above stderr except `keep`, so the daemon does not hold the
/// caller's files, sockets or terminal open.
pub fn close_inherited(keep: i32) {
    let close_range = |lo: u32, hi: u32| {
        if lo > hi {
            return true;
        }
        // SAFETY: raw close_range(2) over descriptors we do not use (Linux ≥ 5.9).
        unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0) == 0 }
    };
    let keep = keep as u32;
    if close_range(3, keep.saturating_sub(1)) && close_range(keep + 1, u32::MAX) {
        return;
    }
    // Older kernels: close one by one up to the descriptor limit.
    let max = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft.min(1 << 20) as i32);
    for fd in (3..max).filter(|&fd| fd != keep as i32) {
        // SAFETY: closing a descriptor nobody in this process uses.
        unsafe { libc::close(fd) };
    }
}

//! reaper's own errors and the one place that maps them to exit codes.

use std::ffi::OsString;
use std::fmt;

use nix::errno::Errno;

#[derive(Debug)]
pub enum Error {
    /// Bad command line or environment: exit 2.
    Usage(String),
    /// The command could not be executed: 127 when not found, 126 otherwise.
    Exec { command: OsString, errno: Errno },
    /// reaper failed before the command ran (fork, pidfile, log file…): exit 1.
    Start(String),
    /// The command could not be given the user or privileges asked for (--user,
    /// --no-new-privs): exit 126, as a command that cannot be run.
    Privs(String),
}

pub const EXIT_USAGE: i32 = 2;
pub const EXIT_START: i32 = 1;
pub const EXIT_NOT_FOUND: i32 = 127;
pub const EXIT_CANNOT_EXEC: i32 = 126;

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            Error::Start(_) => EXIT_START,
            Error::Privs(_) => EXIT_CANNOT_EXEC,
            // The shell's convention: 127 "not found" (including a bad path), 126 "found but
            // cannot be run" (permission, directory, bad format, …).
            Error::Exec { errno, .. } => match errno {
                Errno::ENOENT | Errno::ENOTDIR | Errno::ENAMETOOLONG | Errno::ELOOP => EXIT_NOT_FOUND,
                _ => EXIT_CANNOT_EXEC,
            },
        }
    }

    /// The message without the `reaper:` prefix.
    pub fn message(&self) -> String {
        match self {
            Error::Usage(m) | Error::Start(m) | Error::Privs(m) => m.clone(),
            Error::Exec { command, errno } => {
                format!("cannot run '{}': {}", command.to_string_lossy(), os(*errno))
            }
        }
    }

    /// What the user sees on stderr: one line, plus the help hint for usage errors.
    pub fn report(&self) -> String {
        // Messages quote user input (arguments, variables, pidfile contents): escape control
        // characters so the report stays one line and cannot drive the terminal.
        let message: String = self
            .message()
            .chars()
            .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
            .collect();
        match self {
            Error::Usage(_) => format!("reaper: {message}\nTry 'reaper --help'."),
            _ => format!("reaper: {message}"),
        }
    }

    /// A start failure from a system call: "what: error".
    pub fn start(what: impl fmt::Display, err: impl Into<std::io::Error>) -> Error {
        Error::Start(format!("{what}: {}", os(err)))
    }
}

/// An OS error in the one way reaper words them, strerror's text as the shell prints it:
/// "Permission denied". Every message and log line with an errno goes through here: an
/// io::Error's Display appends " (os error 13)", nix's Errno Display prefixes "EACCES: " (and
/// its desc() carries nix's own strerror table, 4 KB of binary beside the C library's).
pub fn os(err: impl Into<std::io::Error>) -> String {
    let text = err.into().to_string();
    match text.rfind(" (os error ") {
        Some(end) if text.ends_with(')') => text[..end].to_owned(),
        _ => text,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_are_strerror_text_only() {
        let eacces = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(os(eacces), "Permission denied");
        assert_eq!(os(Errno::ENOENT), "No such file or directory");
        // Not an errno: the message as it is, even one that quotes an errno's wording.
        assert_eq!(os(std::io::Error::other("plain")), "plain");
        let quoted = std::io::Error::other("/proc/1/children (os error 5) read");
        assert_eq!(os(quoted), "/proc/1/children (os error 5) read");
        assert_eq!(Error::start("fork", Errno::EAGAIN).message(), "fork: Resource temporarily unavailable");
        let exec = Error::Exec { command: "x".into(), errno: Errno::EACCES };
        assert_eq!(exec.message(), "cannot run 'x': Permission denied");
    }
}

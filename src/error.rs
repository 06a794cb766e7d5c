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
                format!("cannot run '{}': {}", command.to_string_lossy(), describe(*errno))
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

    /// A start failure from a system call: "what: error". (An io::Error: nix's Display for
    /// Errno carries its own errno names and strerror table, 4 KB of binary beside musl's.)
    pub fn start(what: impl fmt::Display, err: impl Into<std::io::Error>) -> Error {
        Error::Start(format!("{what}: {}", err.into()))
    }
}

/// strerror's text for `errno`, as the shell prints it: "No such file or directory".
pub fn describe(errno: Errno) -> String {
    let text = std::io::Error::from(errno).to_string();
    match text.rfind(" (os error ") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Error {}

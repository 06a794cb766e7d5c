//! Starting the command: fork, give it its own process group (the terminal's foreground group
//! when reaper holds the terminal), hand back the signal state reaper inherited, exec. Exec
//! errors come back through a CLOEXEC pipe, so the parent knows the command really started.
//!
//! Hand-written rather than `std::process::Command`: we need to set LISTEN_PID to the child's
//! own pid after fork, and to restore a mask containing signals the C library will not name.

use std::ffi::{CStr, CString, OsStr, OsString, c_char};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::unistd::{ForkResult, Pid, fork, getpgrp, getpid, isatty, pipe2, setpgid, tcgetpgrp, tcsetpgrp};

use crate::error::Error;
use crate::privs::Privs;
use crate::sigmask::Inherited;

const EXEC_FAILED: u8 = b'E';
const TTY_FAILED: u8 = b'T';
const CHDIR_FAILED: u8 = b'D';
const READY_FD_FAILED: u8 = b'R';
const STDIO_FAILED: u8 = b'O';
const LISTEN_PID: &[u8] = b"LISTEN_PID=";

/// Starts `command` and returns its pid once exec has succeeded. Only the `main` command (not
/// an `--also` or `--respawn` one) may become the terminal's foreground group, and only it is
/// handed systemd socket activation (see `environment`). `dir`: where it runs, if not in
/// reaper's own working directory (helpers restarted after reaper moved to `/`). `privs`: the
/// user and privileges it starts with (`--user`, `--no-new-privs`).
pub fn spawn(
    command: &[OsString],
    inherited: &Inherited,
    main: bool,
    dir: Option<&CStr>,
    privs: &Privs,
) -> Result<i32, Error> {
    spawn_with(command, inherited, main, dir, privs, &Extra::default()).map(|(pid, _)| pid)
}

/// What a command gets beyond [`spawn`]'s: its readiness descriptor and environment changes
/// (`readiness` fills them), and its output pipes.
#[derive(Default)]
pub struct Extra<'a> {
    /// `--ready fd:N`: (the pipe's write end, N). The child gets the write end at N, without
    /// close-on-exec; the original descriptor is close-on-exec and goes at exec.
    pub ready_fd: Option<(BorrowedFd<'a>, i32)>,
    /// Set (`Some`) or remove (`None`) these variables, after the ones of `--user`.
    pub env: Vec<(&'static str, Option<Vec<u8>>)>,
    /// `--prefix-output`: the command's stdout and stderr are the write ends of two pipes whose
    /// read ends come back ([`Output`]). Its stdin stays reaper's.
    pub logged: bool,
}

/// The read ends of a command's stdout and stderr pipes (`--prefix-output`): close-on-exec
/// and non-blocking (both only reaper's: the command has the write ends).
pub struct Output {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// [`spawn`] with `extra`; the output pipes' read ends with `extra.logged`.
pub fn spawn_with(
    command: &[OsString],
    inherited: &Inherited,
    main: bool,
    dir: Option<&CStr>,
    privs: &Privs,
    extra: &Extra,
) -> Result<(i32, Option<Output>), Error> {
    let cstr = |s: &OsStr| {
        CString::new(s.as_bytes()).map_err(|_| Error::Usage("argument contains a NUL byte".into()))
    };
    let argv: Vec<CString> = command.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?;
    let Some(program) = argv.first() else {
        return Err(Error::Usage("missing COMMAND".into()));
    };
    let mut argv_ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());

    let mut changes = privs.env().to_vec();
    changes.retain(|(k, _)| !extra.env.iter().any(|(e, _)| e == k));
    changes.extend(extra.env.iter().cloned());
    // `_owned` holds the entries made for the command (kept until after the fork); the others
    // point into reaper's own environment.
    let (_owned, envp_ptrs, listen_pid_ptr) = environment(main, &changes);

    // Only take the terminal if reaper's own group holds it: started in the background, we
    // must not steal the foreground from the shell.
    // SAFETY: fd 0 stays open for the duration of these calls.
    let stdin = unsafe { BorrowedFd::borrow_raw(0) };
    let take_tty = main && isatty(stdin).unwrap_or(false) && tcgetpgrp(stdin).ok() == Some(getpgrp());

    let (report_rd, mut report_wr) = pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::start("pipe", e))?;
    let ready_fd = extra.ready_fd.map(|(fd, n)| (fd.as_raw_fd(), n));
    let no_ready_fd = |n: i32, errno: Errno| {
        // dup2's EBADF when N is not below the open-file limit.
        let limit = match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
            Ok((soft, _)) if errno == Errno::EBADF && n as u64 >= soft => {
                format!(" (the open-file limit, ulimit -n, is {soft})")
            }
            _ => String::new(),
        };
        Error::Start(format!(
            "cannot give '{}' its readiness descriptor {n}: {}{limit}",
            command[0].to_string_lossy(),
            crate::error::os(errno)
        ))
    };
    if let Some((_, n)) = ready_fd {
        // The child's dup2 onto N must not replace the pipe that reports its exec: it moves
        // to the lowest free descriptor (not N+1, which may be past the open-file limit).
        if report_wr.as_raw_fd() == n {
            report_wr = nix::fcntl::fcntl(report_wr.as_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
                .map(|fd| {
                    // SAFETY: F_DUPFD_CLOEXEC just made this descriptor; nobody else owns it.
                    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
                })
                .map_err(|e| no_ready_fd(n, e))?;
        }
    }

    // Close-on-exec everywhere: the child's dup2 onto 1 and 2 makes the copies it keeps, and
    // no other command inherits another's pipe. (fds 0-2 are always open, see lib.rs
    // fill_stdio, so none of these is 1 or 2 itself.)
    let pipes = if extra.logged {
        let what =
            || format!("cannot give '{}' its output pipes (--prefix-output)", command[0].to_string_lossy());
        let out = pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::start(what(), e))?;
        let err = pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::start(what(), e))?;
        Some((out, err))
    } else {
        None
    };
    let stdio = pipes.as_ref().map(|((_, out), (_, err))| (out.as_raw_fd(), err.as_raw_fd()));

    // SAFETY: reaper is single-threaded. Between fork and exec the child only makes
    // async-signal-safe calls (setpgid, dup2, tcsetpgrp, chdir, fcntl, the raw calls of Privs::apply,
    // sigaction, rt_sigprocmask, write, execvpe, _exit) and writes into memory it already
    // owns; nothing allocates.
    match unsafe { fork() }.map_err(|e| Error::start("fork", e))? {
        ForkResult::Child => {
            let report = |tag: u8, errno: Errno| {
                let mut rec = [tag, 0, 0, 0, 0];
                rec[1..].copy_from_slice(&(errno as i32).to_le_bytes());
                // SAFETY: write(2) of a stack buffer to our pipe.
                unsafe { libc::write(report_wr.as_raw_fd(), rec.as_ptr().cast(), rec.len()) };
            };
            let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
            if let Some((out, err)) = stdio {
                // SAFETY: dup2(2) of descriptors we own onto 1 and 2 (the copies lose
                // close-on-exec; the originals close at exec).
                if unsafe { libc::dup2(out, 1) } < 0 || unsafe { libc::dup2(err, 2) } < 0 {
                    report(STDIO_FAILED, Errno::last());
                    // SAFETY: as below.
                    unsafe { libc::_exit(126) }
                }
            }
            if take_tty {
                // SIGTTOU is still ignored here (restored below), so this cannot stop us.
                match tcsetpgrp(stdin, getpid()) {
                    Ok(()) | Err(Errno::ENOTTY) | Err(Errno::ENXIO) => {}
                    Err(e) => report(TTY_FAILED, e),
                }
            }
            if let Some(buf) = listen_pid_ptr {
                // SAFETY: the buffer was sized for any pid in environment(); this is our copy.
                unsafe { write_pid(buf.add(LISTEN_PID.len()), getpid().as_raw()) };
            }
            if let Some(dir) = dir {
                // SAFETY: chdir(2) with a NUL-terminated path built before fork.
                if unsafe { libc::chdir(dir.as_ptr()) } != 0 {
                    report(CHDIR_FAILED, Errno::last());
                    // SAFETY: as below.
                    unsafe { libc::_exit(127) }
                }
            }
            if let Some((fd, n)) = ready_fd {
                // dup2 onto itself keeps close-on-exec: then it is cleared by hand.
                // SAFETY: dup2(2) and fcntl(2) on descriptors this process holds.
                let failed = unsafe {
                    if fd == n { libc::fcntl(n, libc::F_SETFD, 0) < 0 } else { libc::dup2(fd, n) < 0 }
                };
                if failed {
                    report(READY_FD_FAILED, Errno::last());
                    // SAFETY: as below.
                    unsafe { libc::_exit(127) }
                }
            }
            // After the directory (the caller's, which the new user may not be allowed to
            // enter: the command keeps it as with gosu) and the terminal; before exec. A
            // failed step is never followed by exec.
            if let Err((step, errno)) = privs.apply() {
                report(step, errno);
                // SAFETY: as below.
                unsafe { libc::_exit(126) }
            }
            inherited.restore();
            // SAFETY: NUL-terminated argv/envp arrays of valid C strings built before fork.
            unsafe { libc::execvpe(program.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
            report(EXEC_FAILED, Errno::last());
            // SAFETY: _exit skips atexit handlers and stdio flushing that belong to the parent.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => {
            drop(report_wr);
            // Only the read ends stay: EOF comes once the command and all it forked are done.
            let output = pipes.map(|((out, out_wr), (err, err_wr))| {
                drop((out_wr, err_wr));
                for fd in [&out, &err] {
                    // SAFETY: fcntl(2) on a pipe end only reaper holds.
                    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
                }
                Output { stdout: out, stderr: err }
            });
            // No setpgid(child) from here too: we wait for the exec below, and the child's
            // own setpgid came before it.
            let mut records = Vec::new();
            let _ = File::from(report_rd).read_to_end(&mut records);
            for rec in records.chunks_exact(5) {
                let errno = Errno::from_raw(i32::from_le_bytes([rec[1], rec[2], rec[3], rec[4]]));
                if rec[0] == TTY_FAILED {
                    log::warn!(
                        "cannot make the command the terminal's foreground group: {}",
                        crate::error::os(errno)
                    );
                } else if rec[0] == STDIO_FAILED {
                    let _ = nix::sys::wait::waitpid(child, None);
                    return Err(Error::Start(format!(
                        "cannot give '{}' its output pipes: {}",
                        command[0].to_string_lossy(),
                        crate::error::os(errno)
                    )));
                } else if rec[0] == CHDIR_FAILED {
                    let _ = nix::sys::wait::waitpid(child, None);
                    let dir = dir.map(|d| d.to_string_lossy()).unwrap_or_default();
                    return Err(Error::Start(format!(
                        "cannot run '{}' in {dir}: {}",
                        command[0].to_string_lossy(),
                        crate::error::os(errno)
                    )));
                } else if rec[0] == READY_FD_FAILED {
                    let _ = nix::sys::wait::waitpid(child, None);
                    return Err(no_ready_fd(ready_fd.map_or(-1, |(_, n)| n), errno));
                } else if let Some(why) = privs.failure(&command[0], rec[0], errno) {
                    let _ = nix::sys::wait::waitpid(child, None);
                    return Err(Error::Privs(why));
                } else {
                    let _ = nix::sys::wait::waitpid(child, None);
                    return Err(Error::Exec { command: command[0].clone(), errno });
                }
            }
            log::info!("started {} as pid {child}", command[0].to_string_lossy());
            Ok((child.as_raw(), output))
        }
    }
}

/// The environment as NUL-terminated `KEY=VALUE` buffers, and the index of LISTEN_PID when
/// it names reaper (systemd socket activation). The activation is the `main` command's: its
/// LISTEN_PID entry gets room for its own pid. The other commands get no LISTEN_PID,
/// LISTEN_FDS or LISTEN_FDNAMES at all, or each would take the sockets for its own. (They
/// still inherit the descriptors, as every other one reaper was given: closing descriptors it
/// did not open, counted by a variable, is not reaper's business.) `changes` (from `--user`)
/// set or, with `None`, remove variables.
fn environment(
    main: bool,
    changes: &[(&str, Option<Vec<u8>>)],
) -> (Vec<Vec<u8>>, Vec<*const c_char>, Option<*mut u8>) {
    let me = getpid().to_string();
    // What `std::env::var_os("LISTEN_PID")` finds: the first entry of that name.
    let activated = own_environment_entries()
        .find(|(_, (k, _))| *k == b"LISTEN_PID")
        .is_some_and(|(_, (_, v))| v == me.as_bytes());
    let activation = |k: &[u8]| [&b"LISTEN_PID"[..], b"LISTEN_FDS", b"LISTEN_FDNAMES"].contains(&k);
    let changed = |k: &[u8]| changes.iter().any(|(c, _)| c.as_bytes() == k);
    let (mut owned, mut ptrs, mut listen) = (Vec::new(), Vec::new(), None);
    for (entry, (k, v)) in own_environment_entries() {
        if (!main && activated && activation(k)) || changed(k) {
            continue;
        }
        if k == b"LISTEN_PID" && v == me.as_bytes() {
            let mut e = Vec::with_capacity(LISTEN_PID.len() + 21);
            e.extend_from_slice(k);
            e.push(b'=');
            e.resize(LISTEN_PID.len() + 21, 0);
            listen = Some(e.as_mut_ptr());
            ptrs.push(e.as_ptr().cast());
            owned.push(e);
        } else {
            // Unchanged: the entry itself, a NUL-terminated `key=value` that stays put (nothing
            // changes reaper's environment between here and the exec).
            ptrs.push(entry);
        }
    }
    for (k, v) in changes {
        if let Some(v) = v {
            let e = [k.as_bytes(), b"=", v, b"\0"].concat();
            ptrs.push(e.as_ptr().cast());
            owned.push(e);
        }
    }
    ptrs.push(std::ptr::null());
    (owned, ptrs, listen)
}

unsafe extern "C" {
    static environ: *const *const c_char;
}

/// reaper's environment as `std::env::vars_os` sees it, without copies: each entry's pointer
/// and its key and value (an entry without a `=` after its first byte is left out, as std
/// does). `'static` only in name: the slices never leave [`environment`], which runs with no
/// change to the environment before the exec.
fn own_environment_entries() -> impl Iterator<Item = (*const c_char, (&'static [u8], &'static [u8]))> {
    // SAFETY: `environ` is the C library's NULL-terminated array of NUL-terminated strings;
    // reaper is single-threaded and does not change its environment while it starts a command
    // (the entries are read here and until the exec, never kept beyond).
    let mut at = unsafe { environ };
    std::iter::from_fn(move || {
        if at.is_null() {
            return None;
        }
        // SAFETY: as above; `at` is within the array until its NULL.
        let entry = unsafe { *at };
        if entry.is_null() {
            return None;
        }
        // SAFETY: as above.
        at = unsafe { at.add(1) };
        // SAFETY: a NUL-terminated string of the environment.
        Some((entry, unsafe { CStr::from_ptr(entry) }.to_bytes()))
    })
    .filter_map(|(entry, bytes)| {
        let eq = bytes.get(1..)?.iter().position(|&b| b == b'=')? + 1;
        Some((entry, (&bytes[..eq], &bytes[eq + 1..])))
    })
}

/// Writes `pid` in decimal plus a NUL at `dst` (room for 21 bytes). Async-signal-safe.
///
/// # Safety
/// `dst` must point to at least 21 writable bytes.
unsafe fn write_pid(dst: *mut u8, pid: i32) {
    let mut digits = [0u8; 20];
    let mut n = pid.unsigned_abs();
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        // SAFETY: i < 20 and the caller guarantees 21 bytes.
        unsafe { *dst.add(i) = digits[len - 1 - i] };
    }
    // SAFETY: as above, len <= 10 here.
    unsafe { *dst.add(len) = 0 };
}

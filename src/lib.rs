//! reaper: a tiny init for containers. It starts one command, forwards every signal to it,
//! reaps every zombie, drains leftover processes when the command ends, and can daemonize.
//!
//! `main.rs` calls [`main`]; the modules each do one job:
//! [`options`] parses the command line into [`command`]s and settings ([`settings`] parses each
//! command's own), [`signals`] names signals, [`sigmask`] sets reaper's
//! mask and dispositions (and gives the inherited ones back), [`sigfd`] is the signalfd,
//! [`spawn`] starts the command, [`reap`] collects exited children, [`procfs`] walks /proc,
//! [`pidfd`] holds a process by descriptor (so a reused pid cannot redirect a signal),
//! [`send`] sends every signal, by pidfd or, where none can be had, by a pid checked in /proc,
//! [`state`] is the lifecycle as a pure state machine, [`supervisor`] drives it,
//! [`daemon`] detaches, [`pidfile`] locks the pidfile, [`safe_open`] opens the files the user
//! names without trusting other users' links and files, [`error`] maps failures to exit codes,
//! [`logger`] writes the log lines, [`environ`] reads reaper's environment in place,
//! [`ps`] lists the processes for `--ps`, [`text`] makes names from /proc printable.
//! [`sleep`] is `reaper --sleep`; [`probe`] parses `reaper --probe`'s checks and [`prober`]
//! runs them. [`user`] resolves `--user` from /etc/passwd and /etc/group, [`privs`] gives
//! each command that user and drops its privileges.
//! [`notify`] parses sd_notify messages and decides whose they are, [`readiness`] is the
//! readiness I/O (reaper's notify socket, the fd pipes, NOTIFY_SOCKET upward).
//! [`cgroup`] reads the memory cgroup (OOM kills, limit), [`termlog`] writes why reaper
//! ended to the termination log. [`logpipe`] frames the commands' output into prefixed lines
//! and [`logs`] carries them from their pipes to reaper's stdout and stderr (`--prefix-output`).

// A panic in PID 1 takes the whole container down: no unwrap/expect outside tests.
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod cgroup;
pub mod command;
pub mod daemon;
pub mod environ;
pub mod error;
pub mod logger;
pub mod logpipe;
pub mod logs;
pub mod notify;
pub mod options;
pub mod pidfd;
pub mod pidfile;
pub mod privs;
pub mod probe;
pub mod prober;
pub mod procfs;
pub mod ps;
pub mod readiness;
pub mod reap;
pub mod safe_open;
pub mod send;
pub mod settings;
pub mod sigfd;
pub mod sigmask;
pub mod signals;
pub mod sleep;
pub mod spawn;
pub mod state;
pub mod supervisor;
pub mod termlog;
pub mod text;
pub mod user;

use std::ffi::OsString;
use std::io::Write;

use error::Error;
use nix::errno::Errno;
use options::{Options, Parsed};
use pidfile::Pidfile;
use sigfd::SignalFd;
use sigmask::{Inherited, KernelMask};
use supervisor::Supervisor;

/// Everything after `sigmask::block_all()`: `args` is the full argv, `mask` what we inherited.
pub fn main(args: Vec<OsString>, mask: KernelMask) -> i32 {
    fill_stdio();
    let mut opts = match options::parse(args.into_iter().skip(1), environ::entries()) {
        Ok(Parsed::Run(o)) => *o,
        Ok(Parsed::Sleep(duration)) => return sleep::sleep(duration),
        Ok(Parsed::Probe { checks, timeout, max_zombies }) => {
            // On failure the signals stay blocked: the deadline still ends the probe.
            let _ = sigmask::unblock_inherited(mask);
            return prober::main(&checks, timeout, max_zombies);
        }
        Ok(Parsed::Help) => return print(options::HELP),
        Ok(Parsed::Version) => return print(options::VERSION),
        Ok(Parsed::Ps { max_zombies }) => {
            return match ps::main(max_zombies) {
                Ok(within_limit) => i32::from(!within_limit),
                Err(e) => fail(&e),
            };
        }
        Err(e) => return fail(&e),
    };
    logger::init(opts.log_level, opts.log_filter.as_deref());
    // reaper's own pidfile is named relative to the caller's directory; the followed one is
    // the command's file, relative to the command's directory (the daemon's --chdir).
    // (Joined by hand: std::path::absolute costs 2 KB of binary. An unknown directory, deleted
    // under us, leaves the paths relative.)
    if let Some(d) = &opts.daemon {
        opts.follow_pidfile = opts.follow_pidfile.take().map(|p| d.chdir.join(p));
    }
    // Read only when there is a path to join it to: most starts name no pidfile, and `start`
    // reads the directory again anyway (after --daemon's chdir it is another one).
    let paths = [&mut opts.pidfile, &mut opts.follow_pidfile];
    let cwd = if paths.iter().any(|p| p.is_some()) {
        std::env::current_dir().unwrap_or_default()
    } else {
        Default::default()
    };
    for path in paths.into_iter().flatten() {
        // components(): "/a/./b//c" as "/a/b/c", as std::path::absolute printed it.
        *path = cwd.join(&*path).components().collect();
    }
    // Before anything starts (and before a daemon detaches): an unknown name is a usage error
    // on the caller's terminal.
    let privs = match privs::Privs::prepare(opts.user.as_ref().map(|(s, src)| (s, *src)), opts.no_new_privs) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let inherited = match sigmask::set_own_dispositions(mask) {
        Ok(i) => i,
        Err(e) => return fail(&Error::start("sigaction", e)),
    };
    let report = match opts.daemon.as_ref().map(daemon::detach).transpose() {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    match launch(&opts, &inherited, privs) {
        Ok((mut supervisor, pidfile)) => {
            if let Some(r) = report {
                r.started();
            }
            let code = supervisor.run();
            if let Some(p) = pidfile {
                p.remove();
            }
            // Not dropped: reaper exits right after this, and exit_group closes and frees it
            // all. Dropping it closed each descriptor and freed the last block of one of musl's
            // allocator groups, whose munmap(2) sat between the command's exit and reaper's.
            std::mem::forget(supervisor);
            code
        }
        Err(e) => {
            termlog::write(|| {
                text::printable(format!("{}; exit status {}", e.message(), e.exit_code()).as_bytes())
            });
            match report {
                Some(r) => {
                    r.failed(&e);
                    e.exit_code()
                }
                None => fail(&e),
            }
        }
    }
}

/// Everything up to and including exec of the command; any failure here is exit 1, 2, 126
/// or 127. After this returns, reaper never exits because of its own error.
fn launch(
    opts: &Options,
    inherited: &Inherited,
    privs: privs::Privs,
) -> Result<(Supervisor, Option<Pidfile>), Error> {
    let pidfile = opts.pidfile.clone().map(Pidfile::acquire).transpose()?;
    match start(opts, inherited, privs) {
        Ok(supervisor) => Ok((supervisor, pidfile)),
        Err(e) => {
            // Nothing runs: a pidfile naming this soon-dead process would only mislead.
            if let Some(p) = pidfile {
                p.remove();
            }
            Err(e)
        }
    }
}

fn start(opts: &Options, inherited: &Inherited, privs: privs::Privs) -> Result<Supervisor, Error> {
    let me = nix::unistd::getpid().as_raw();
    if let Some(sig) = opts.pdeathsig {
        set_pdeathsig(sig)?;
    }
    if me != 1 {
        let registered = opts.subreaper
            && nix::sys::prctl::set_child_subreaper(true)
                .map_err(|e| log::warn!("cannot become a child subreaper: {}", crate::error::os(e)))
                .is_ok();
        // Asked only when reaper did not register itself: it may have been a subreaper before
        // its exec (the attribute survives execve), which --no-subreaper does not undo.
        if !registered && !nix::sys::prctl::get_child_subreaper().unwrap_or(false) {
            log::warn!(
                "not PID 1 and not a child subreaper: orphans will not be re-parented to reaper, \
                 so zombie reaping won't work (drop --no-subreaper)"
            );
        }
    }
    let signals = SignalFd::new(me as u32).map_err(|e| Error::start("signalfd", e))?;
    // reaper must not pin the caller's directory (a mount the host may want to unmount), not
    // even while the command starts: it moves to / first, and every command (restarted helpers
    // too) goes back to the caller's directory between fork and exec. A directory that has no
    // name any more (deleted under us) cannot be gone back to: then reaper stays in it.
    let dir = current_dir();
    if dir.is_some() {
        if let Err(e) = std::env::set_current_dir("/") {
            log::debug!("chdir /: {}", crate::error::os(e));
        }
    }
    // Before any command starts: a command may send READY=1 at once.
    let ready: Vec<_> = opts.commands.iter().map(|c| (c.settings.name.clone(), c.settings.ready)).collect();
    let mut readiness = readiness::Readiness::new(&ready, std::env::var_os("NOTIFY_SOCKET"), me as u32);
    let mut logs = opts.prefix_output.then(logs::Logs::open);
    let started =
        spawn_all(&opts.commands, inherited, dir.as_deref(), &privs, &mut readiness, logs.as_mut())?;
    let mut supervisor = Supervisor::new(opts, signals, *inherited, dir, privs, readiness, started);
    supervisor.set_logs(logs);
    Ok(supervisor)
}

/// The commands that wait for nobody (no `--after`), in order: the main command first (it may
/// take the terminal); the others start from the loop once their prerequisites are ready.
/// Returns the pids by index. If any cannot be started, the ones already running are killed
/// and reaped: nothing is left.
fn spawn_all(
    commands: &[command::Command],
    inherited: &Inherited,
    dir: Option<&std::ffi::CStr>,
    privs: &privs::Privs,
    readiness: &mut readiness::Readiness,
    mut logs: Option<&mut logs::Logs>,
) -> Result<Vec<(usize, i32)>, Error> {
    let mut started: Vec<(usize, i32)> = Vec::new();
    for (index, command) in commands.iter().enumerate().filter(|(_, c)| c.settings.after.is_empty()) {
        match supervisor::start_one(readiness, logs.as_deref_mut(), index, command, inherited, dir, privs) {
            Ok(pid) => started.push((index, pid)),
            Err(e) => {
                // Each started command leads its own group (still ours: none is reaped yet);
                // whatever they forked already goes too, then every child is reaped.
                for &(_, pid) in &started {
                    // SAFETY: kill(2) of a process group whose leader is our unreaped child.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                }
                kill_children_for_a_while();
                return Err(e);
            }
        }
    }
    Ok(started)
}

/// After a failed start: SIGKILLs every descendant /proc shows and reaps them, again and again
/// (orphans of the killed keep arriving), but for two seconds at most. One that /proc does not
/// show or that will not die must not keep reaper from reporting the failure: it is left to
/// whoever reaps after reaper (as PID 1, the kernel kills it with the namespace).
fn kill_children_for_a_while() {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        for pid in procfs::descendants(std::process::id() as i32).unwrap_or_default() {
            // SAFETY: kill(2) of a descendant just seen in /proc (nothing here has reaped a
            // child that this walk could see, so none of these pids can have been reused).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if std::time::Instant::now() < give_up => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Ok(WaitStatus::StillAlive) => {
                return log::warn!("children left that would not go within 2s: not waiting for them");
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// PR_SET_PDEATHSIG on reaper itself (raw prctl: the signal may be real-time). If the parent
/// died before the prctl took effect, the kernel will never send it, so we send it ourselves.
fn set_pdeathsig(sig: i32) -> Result<(), Error> {
    let parent = nix::unistd::getppid();
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a plain integer.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong) } != 0 {
        return Err(Error::start("prctl(PR_SET_PDEATHSIG)", std::io::Error::last_os_error()));
    }
    if parent.as_raw() != 0 && nix::unistd::getppid() != parent {
        // tgkill, not kill: the signalfd drops SI_USER signals reaper sent itself (see
        // SignalFd::next_signal); this one is SI_TKILL and gets forwarded.
        let me = nix::unistd::getpid().as_raw();
        // SAFETY: raw tgkill(2) to our own (only) thread; the signal is blocked and lands in
        // the signalfd.
        unsafe { libc::syscall(libc::SYS_tgkill, me, me, sig) };
    }
    Ok(())
}

/// The working directory as the C string a command's chdir takes; `None` when it has no name
/// (deleted under us, or outside our root: the C library says ENOENT for both).
/// Not `std::env::current_dir`: that reads into a 512-byte heap buffer and shrinks it, and
/// musl's allocator maps a page for that buffer and unmaps it at the shrink, two system calls
/// and a page fault before the command can start. A small buffer on the stack holds nearly
/// every directory; getcwd(2) says ERANGE for a longer one, and never returns more than
/// PATH_MAX bytes (ENAMETOOLONG beyond), which the heap then holds. (PATH_MAX bytes on the
/// stack, inlined into `main` with the rest of the start, took one more stack page, a fault,
/// on every start.)
fn current_dir() -> Option<std::ffi::CString> {
    fn getcwd(buf: &mut [u8]) -> Option<std::ffi::CString> {
        // SAFETY: getcwd(3) writes at most `buf.len()` bytes, NUL included, into our buffer.
        if unsafe { libc::getcwd(buf.as_mut_ptr().cast(), buf.len()) }.is_null() {
            return None;
        }
        std::ffi::CStr::from_bytes_until_nul(buf).ok().map(std::ffi::CStr::to_owned)
    }
    getcwd(&mut [0u8; 256]).or_else(|| {
        (Errno::last() == Errno::ERANGE).then(|| getcwd(&mut vec![0u8; libc::PATH_MAX as usize])).flatten()
    })
}

/// If reaper was started with 0, 1 or 2 closed, its own descriptors (signalfd, pipes) would
/// land there and be handed to the command as stdio. Fill the holes with /dev/null, or with a
/// close-on-exec placeholder if there is no /dev/null, so the command sees nothing there.
fn fill_stdio() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
            continue;
        }
        // SAFETY: open(2) with static NUL-terminated paths; the lowest free descriptor is `fd`.
        unsafe {
            if libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) < 0 {
                libc::open(c"/".as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
            }
        }
    }
}

fn print(text: &str) -> i32 {
    let _ = std::io::stdout().write_all(text.as_bytes());
    let _ = std::io::stdout().flush();
    0
}

fn fail(e: &Error) -> i32 {
    let _ = writeln!(std::io::stderr(), "{}", e.report());
    e.exit_code()
}

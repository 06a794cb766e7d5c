//! Starting the command the way posix_spawn does: clone(CLONE_VM|CLONE_VFORK) on a stack of
//! its own, so the kernel copies no page tables (reaper's address space is shared, not
//! duplicated) and reaper stays suspended until the child has exec'd or exited. The child gives
//! itself its own process group (the terminal's foreground group when reaper holds the
//! terminal), hands back the signal state reaper inherited, and execs. What failed on the way
//! comes back through a close-on-exec pipe, read to its end: EOF is the exec (or the exit),
//! also where CLONE_VFORK does not suspend reaper (qemu-user runs it as a plain fork). If
//! clone is refused (seccomp's EPERM, ENOSYS) or its stack cannot be mapped, the same child
//! steps run after a fork.
//!
//! Hand-written rather than `std::process::Command`: we need to set LISTEN_PID to the child's
//! own pid before exec, and to restore a mask containing signals the C library will not name.

use std::ffi::{CStr, CString, OsStr, OsString, c_char, c_int, c_void};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicUsize, Ordering};

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
    // `env` holds the entries made for the command (kept until after the exec); the others
    // point into reaper's own environment.
    let env = environment(main, &changes);

    // Only take the terminal if reaper's own group holds it: started in the background, we
    // must not steal the foreground from the shell.
    // SAFETY: fd 0 stays open for the duration of these calls.
    let stdin = unsafe { BorrowedFd::borrow_raw(0) };
    let take_tty = main && isatty(stdin).unwrap_or(false) && tcgetpgrp(stdin).ok() == Some(getpgrp());

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
    let (report_rd, mut report_wr) = pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::start("pipe", e))?;
    if let Some((_, n)) = ready_fd {
        // The child's dup2 onto N must not replace the pipe that reports its exec: it moves
        // to the lowest free descriptor (not N+1, which may be past the open-file limit).
        if report_wr.as_raw_fd() == n {
            report_wr = nix::fcntl::fcntl(report_wr.as_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
                .map(|fd| {
                    // SAFETY: F_DUPFD_CLOEXEC just made this descriptor; nobody else owns it.
                    unsafe { OwnedFd::from_raw_fd(fd) }
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

    let mut child = Child {
        program: program.as_ptr(),
        argv: argv_ptrs.as_ptr(),
        envp: env.envp(),
        listen_pid: env.listen,
        dir,
        stdio,
        take_tty,
        ready_fd,
        privs,
        inherited,
        report_fd: report_wr.as_raw_fd(),
    };
    let pid = match spawn_vfork(&mut child, argv_ptrs.len()) {
        Some(pid) => pid,
        None => spawn_fork(&child)?,
    };
    // The child's copy of the write end closes at its exec (or exit); with ours gone too, the
    // read below ends there.
    drop(report_wr);
    // Read with read(2) alone: `read_to_end` on a `File` asks fstat and lseek for a size
    // hint first, two system calls between the command's start and reaper's first wait.
    // Records come only from failures; each is one atomic 5-byte write.
    let mut bytes = Vec::new();
    let mut report = File::from(report_rd);
    let mut buf = [0u8; 64];
    loop {
        match report.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let records =
        bytes.chunks_exact(5).map(|r| (r[0], Errno::from_raw(i32::from_le_bytes([r[1], r[2], r[3], r[4]]))));

    // Only the read ends stay: EOF comes once the command and all it forked are done.
    let output = pipes.map(|((out, out_wr), (err, err_wr))| {
        drop((out_wr, err_wr));
        for fd in [&out, &err] {
            // SAFETY: fcntl(2) on a pipe end only reaper holds.
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        }
        Output { stdout: out, stderr: err }
    });
    // No setpgid(child) from here too: the child's own setpgid came before its exec, which
    // both ways of starting it wait for.
    for (tag, errno) in records {
        if tag == TTY_FAILED {
            log::warn!(
                "cannot make the command the terminal's foreground group: {}",
                crate::error::os(errno)
            );
            continue;
        }
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(if tag == STDIO_FAILED {
            Error::Start(format!(
                "cannot give '{}' its output pipes: {}",
                command[0].to_string_lossy(),
                crate::error::os(errno)
            ))
        } else if tag == CHDIR_FAILED {
            let dir = dir.map(|d| d.to_string_lossy()).unwrap_or_default();
            Error::Start(format!(
                "cannot run '{}' in {dir}: {}",
                command[0].to_string_lossy(),
                crate::error::os(errno)
            ))
        } else if tag == READY_FD_FAILED {
            no_ready_fd(ready_fd.map_or(-1, |(_, n)| n), errno)
        } else if let Some(why) = privs.failure(&command[0], tag, errno) {
            Error::Privs(why)
        } else {
            Error::Exec { command: command[0].clone(), errno }
        });
    }
    log::info!("started {} as pid {pid}", command[0].to_string_lossy());
    Ok((pid.as_raw(), output))
}

/// Everything the child needs, made before clone or fork: between them and exec the child
/// only reads it (and writes its records, LISTEN_PID's digits and `Privs`' scratch room, none
/// of which reaper reads back but the records).
struct Child<'a> {
    program: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    listen_pid: Option<*mut u8>,
    dir: Option<&'a CStr>,
    stdio: Option<(i32, i32)>,
    take_tty: bool,
    ready_fd: Option<(i32, i32)>,
    privs: &'a Privs,
    inherited: &'a Inherited,
    /// The write end of the exec-report pipe (close-on-exec).
    report_fd: i32,
}

/// Starts the child with clone(CLONE_VM|CLONE_VFORK): its pid. `None`: the fork path must start
/// it (clone refused, or no memory for the stack; no child exists then).
fn spawn_vfork(child: &mut Child, argc: usize) -> Option<Pid> {
    let stack = Stack::get(argc)?;
    // CLONE_VM: the child runs in reaper's memory, so the kernel copies no page tables; it
    // still gets copies of the descriptor table, working directory and signal dispositions
    // (no CLONE_FILES, CLONE_FS, CLONE_SIGHAND), so its dup2, chdir and restored dispositions
    // stay its own. CLONE_VFORK: reaper's thread sleeps until the child has exec'd or exited,
    // so the child's stack and everything `child` points to stay put. Where an emulator runs
    // this as a plain fork (qemu-user), the child has copies of them instead, and the report
    // pipe still says when it has exec'd. Signals: all blocked in reaper (main.rs), so blocked
    // in the child too until `restore` right before exec; no handler can run on the child's
    // stack. TTIN/TTOU are ignored, not blocked, and have no handler either.
    //
    // SAFETY: `cloned` never returns into reaper's frames (it execs or _exits on every path:
    // `Child::run` returns `!`), runs on its own stack, and between clone and exec makes only
    // async-signal-safe calls without allocating or taking a lock (see `Child::run`). `child`
    // and the stack outlive the call, which returns only after the exec or the exit.
    let pid = unsafe {
        libc::clone(
            cloned,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (child as *mut Child).cast::<c_void>(),
        )
    };
    if pid < 0 {
        log::debug!("clone(CLONE_VM|CLONE_VFORK): {}; forking instead", crate::error::os(Errno::last()));
        return None;
    }
    Some(Pid::from_raw(pid))
}

/// Starts the child with fork: its pid.
fn spawn_fork(child: &Child) -> Result<Pid, Error> {
    // SAFETY: reaper is single-threaded. Between fork and exec the child makes the calls of
    // `Child::run` only (async-signal-safe, no allocation).
    match unsafe { fork() }.map_err(|e| Error::start("fork", e))? {
        ForkResult::Child => child.run(),
        ForkResult::Parent { child: pid } => Ok(pid),
    }
}

/// The clone child's entry point, on its own stack.
extern "C" fn cloned(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Child` spawn_vfork passed, alive while reaper waits for the exec.
    let child = unsafe { &*arg.cast::<Child>() };
    child.run()
}

impl Child<'_> {
    /// What the child does between clone (or fork) and exec. With CLONE_VM it runs in reaper's
    /// memory on a stack of its own, so: no allocation and no lock (reaper's malloc and stdio
    /// are reaper's), only system calls the C library passes straight on (setpgid, dup2,
    /// ioctl, chdir, fcntl, the raw ones of `Privs::apply`, sigaction, rt_sigprocmask, write,
    /// execvpe, _exit; getpid as a raw call, which no C library can answer from a cache that
    /// would be reaper's), and writes only to the records, LISTEN_PID's digits in the buffer
    /// made for this command, and `Privs`' scratch room. Its errno is reaper's thread's (the
    /// same thread-local storage): harmless, reaper is suspended and reads errno only right
    /// after its own failing calls. Never returns: a failed step is never followed by exec.
    fn run(&self) -> ! {
        let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
        if let Some((out, err)) = self.stdio {
            // SAFETY: dup2(2) of descriptors we own onto 1 and 2 (the copies lose
            // close-on-exec; the originals close at exec).
            if unsafe { libc::dup2(out, 1) } < 0 || unsafe { libc::dup2(err, 2) } < 0 {
                self.fail(STDIO_FAILED, 126);
            }
        }
        // SAFETY: getpid(2) has no preconditions.
        let me = unsafe { libc::syscall(libc::SYS_getpid) } as libc::pid_t;
        if self.take_tty {
            // SAFETY: fd 0 is open (lib.rs fill_stdio).
            let stdin = unsafe { BorrowedFd::borrow_raw(0) };
            // SIGTTOU is still ignored here (restored below), so this cannot stop us.
            match tcsetpgrp(stdin, Pid::from_raw(me)) {
                Ok(()) | Err(Errno::ENOTTY) | Err(Errno::ENXIO) => {}
                Err(e) => self.report(TTY_FAILED, e),
            }
        }
        if let Some(buf) = self.listen_pid {
            // SAFETY: the buffer was sized for any pid in environment(); reaper does not read
            // it (with CLONE_VM it gets our pid too, harmlessly).
            unsafe { write_pid(buf.add(LISTEN_PID.len()), me) };
        }
        if let Some(dir) = self.dir {
            // SAFETY: chdir(2) with a NUL-terminated path built before clone.
            if unsafe { libc::chdir(dir.as_ptr()) } != 0 {
                self.fail(CHDIR_FAILED, 127);
            }
        }
        if let Some((fd, n)) = self.ready_fd {
            // dup2 onto itself keeps close-on-exec: then it is cleared by hand.
            // SAFETY: dup2(2) and fcntl(2) on descriptors this process holds.
            let failed =
                unsafe { if fd == n { libc::fcntl(n, libc::F_SETFD, 0) < 0 } else { libc::dup2(fd, n) < 0 } };
            if failed {
                self.fail(READY_FD_FAILED, 127);
            }
        }
        // After the directory (the caller's, which the new user may not be allowed to
        // enter: the command keeps it as with gosu) and the terminal; before exec. A
        // failed step is never followed by exec.
        if let Err((step, errno)) = self.privs.apply() {
            self.report(step, errno);
            self.exit(126);
        }
        self.inherited.restore();
        // SAFETY: NUL-terminated argv/envp arrays of valid C strings built before clone.
        unsafe { libc::execvpe(self.program, self.argv, self.envp) };
        self.report(EXEC_FAILED, Errno::last());
        self.exit(127)
    }

    /// Reports `tag` with errno's current value, then exits with `code`.
    fn fail(&self, tag: u8, code: c_int) -> ! {
        self.report(tag, Errno::last());
        self.exit(code)
    }

    /// Tells reaper `tag` and `errno` through the report pipe (5 bytes: one atomic write).
    fn report(&self, tag: u8, errno: Errno) {
        let mut rec = [tag, 0, 0, 0, 0];
        let [_, errno_bytes @ ..] = &mut rec;
        *errno_bytes = (errno as i32).to_le_bytes();
        // SAFETY: write(2) of a stack buffer to our pipe.
        unsafe { libc::write(self.report_fd, rec.as_ptr().cast(), rec.len()) };
    }

    /// _exit after a failed step (its record written).
    fn exit(&self, code: c_int) -> ! {
        // SAFETY: _exit skips atexit handlers and stdio flushing, which are reaper's.
        unsafe { libc::_exit(code) }
    }
}

/// The clone child's stack. Its size: 64 KiB for the child's own frames and the C library's
/// calls (glibc's posix_spawn allows 32 KiB for compilers' stack checks), plus what execvpe
/// may put on the stack: the PATH search's buffer for a directory and the name (musl and glibc
/// cap them at PATH_MAX and NAME_MAX: a VLA of at most PATH_MAX + NAME_MAX + 1 bytes; musl's
/// posix_spawn stack is 1024 + PATH_MAX for that reason), and glibc's ENOEXEC fallback, which
/// runs /bin/sh with the arguments in a VLA of argc + 2 pointers (argc is bounded by nothing
/// but the exec limits, so it is counted). The size covers every frame the child can make,
/// and there is no recursion. Pages the child does not touch cost nothing.
///
/// One anonymous mapping, kept for the next start (a `--respawn` helper's, or `--after`'s)
/// while it is large enough: unmapping it after every start put a munmap(2) before reaper's
/// first wait, and the pages the child touched are touched again at once. Each child is done
/// with it before the next start: with CLONE_VFORK clone returns once the child has exec'd or
/// exited; under qemu-user's plain fork each child has a copy of its own.
/// MAP_GROWSDOWN: the kernel keeps its stack guard gap (1 MiB) below it free of other
/// mappings, which a mapping kept while the allocator maps more would not otherwise have, so
/// a child that went past the end would grow it or fault, never write into reaper's heap.
/// (Neither C library's posix_spawn has a guard at all.)
struct Stack {
    base: *mut c_void,
    len: usize,
}

/// The kept stack's address and length (0: none yet, or given up).
static KEPT_BASE: AtomicUsize = AtomicUsize::new(0);
static KEPT_LEN: AtomicUsize = AtomicUsize::new(0);

impl Stack {
    fn get(argc: usize) -> Option<Stack> {
        let len = Stack::len(argc);
        let (base, kept) = (KEPT_BASE.load(Ordering::Relaxed), KEPT_LEN.load(Ordering::Relaxed));
        if base != 0 && kept >= len {
            return Some(Stack { base: base as *mut c_void, len: kept });
        }
        let stack = Stack::map(len)?;
        if base != 0 {
            // SAFETY: the kept mapping, which no child uses any more (see above).
            unsafe { libc::munmap(base as *mut c_void, kept) };
        }
        KEPT_BASE.store(stack.base as usize, Ordering::Relaxed);
        KEPT_LEN.store(stack.len, Ordering::Relaxed);
        Some(stack)
    }

    /// Rounded up to 4 KiB, as mmap rounds the mapping to whole pages: the top is then the
    /// mapping's end, not 248 bytes into its last page, where the child's first frames
    /// crossed into the page below at once (two pages faulted in, and kept, instead of one).
    fn len(argc: usize) -> usize {
        const OWN: usize = 64 << 10;
        let path = libc::PATH_MAX as usize + 256;
        let script = argc.saturating_add(3).saturating_mul(size_of::<*const c_char>());
        let len = OWN.saturating_add(path).saturating_add(script);
        len.checked_next_multiple_of(4096).unwrap_or(len)
    }

    fn map(len: usize) -> Option<Stack> {
        // SAFETY: a new anonymous mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_GROWSDOWN,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            log::debug!("mmap of the child's stack: {}; forking instead", crate::error::os(Errno::last()));
            return None;
        }
        Some(Stack { base, len })
    }

    /// Where the stack starts (it grows down): the mapping's end, 64-byte aligned (the ABIs
    /// ask for 16).
    fn top(&self) -> *mut c_void {
        ((self.base as usize + self.len) & !63) as *mut c_void
    }
}

/// A command's environment: `ptrs` the NULL-terminated array its exec takes, pointing into
/// `_owned` (the entries made for it) and reaper's own environment; `listen` LISTEN_PID's
/// digits, when it names reaper. Empty `ptrs`: reaper's own environment, unchanged.
struct Env {
    _owned: Vec<Vec<u8>>,
    ptrs: Vec<*const c_char>,
    listen: Option<*mut u8>,
}

impl Env {
    fn envp(&self) -> *const *const c_char {
        if self.ptrs.is_empty() { crate::environ::block() } else { self.ptrs.as_ptr() }
    }
}

/// The environment as NUL-terminated `KEY=VALUE` buffers, and the index of LISTEN_PID when
/// it names reaper (systemd socket activation). The activation is the `main` command's: its
/// LISTEN_PID entry gets room for its own pid. The other commands get no LISTEN_PID,
/// LISTEN_FDS or LISTEN_FDNAMES at all, or each would take the sockets for its own. (They
/// still inherit the descriptors, as every other one reaper was given: closing descriptors it
/// did not open, counted by a variable, is not reaper's business.) `changes` (from `--user`)
/// set or, with `None`, remove variables.
fn environment(main: bool, changes: &[(&str, Option<Vec<u8>>)]) -> Env {
    let me = getpid().to_string();
    let changed = |k: &[u8]| changes.iter().any(|(c, _)| c.as_bytes() == k);
    let rewritten = |k: &[u8], v: &[u8]| k == b"LISTEN_PID" && v == me.as_bytes();
    // Most commands get reaper's environment as it is: nothing left out, rewritten or added
    // (an activation reaper's LISTEN_PID does not name leaves nothing to leave out either),
    // and no entry that the copy would skip (one without a `=`, which `raw` skips as std
    // does). Then the block itself is handed on: the array of pointers to copy was a page of
    // musl's allocator mapped before the clone and unmapped after it (40 variables). One pass:
    // each one reads every variable's length.
    let mut seen = 0;
    let as_is = changes.iter().all(|(_, v)| v.is_none())
        && crate::environ::raw().all(|(_, k, v)| {
            seen += 1;
            !changed(k) && !rewritten(k, v)
        });
    let entries = crate::environ::len();
    // (A C library that left `environ` NULL gets the copy: an empty array, not a NULL one.)
    if as_is && seen == entries && !crate::environ::block().is_null() {
        return Env { _owned: Vec::new(), ptrs: Vec::new(), listen: None };
    }
    // What `std::env::var_os("LISTEN_PID")` finds: the first entry of that name.
    let activated = crate::environ::raw()
        .find(|(_, k, _)| *k == b"LISTEN_PID")
        .is_some_and(|(_, _, v)| v == me.as_bytes());
    let activation = |k: &[u8]| [&b"LISTEN_PID"[..], b"LISTEN_FDS", b"LISTEN_FDNAMES"].contains(&k);
    let dropped = |k: &[u8]| (!main && activated && activation(k)) || changed(k);
    let mut ptrs = Vec::with_capacity(entries + changes.len() + 1);
    let (mut owned, mut listen) = (Vec::new(), None);
    for (entry, k, v) in crate::environ::raw() {
        if dropped(k) {
            continue;
        }
        if rewritten(k, v) {
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
    Env { _owned: owned, ptrs, listen }
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

//! Readiness I/O: reaper's own sd_notify socket, the s6 notification pipes, and the upward
//! `READY=1`/`STOPPING=1` to the socket reaper itself was given. What a datagram says and
//! whose it is are decided in `notify` (pure); this module only moves bytes.
//!
//! - reaper's socket is an abstract `AF_UNIX` datagram socket, `@reaper/<pid>/notify`: no
//!   file, so it works on a read-only root filesystem. Abstract names live in the network
//!   namespace, which the containers of a pod share (each reaper there is pid 1): if the name
//!   is taken, the kernel picks a free one (autobind) and that is what the commands get.
//!   `SO_PASSCRED` makes the kernel attach each sender's pid, which reaper checks; without it
//!   no message would be trusted, so the socket is not used at all.
//! - `--ready fd:N`: a pipe per command; the command's end is descriptor N, reaper's end is
//!   in the poll set only until the newline arrives or the command closes its end (EOF).
//! - Upward: one datagram per message on a fresh non-blocking socket; a failure is logged
//!   once at warn and is never fatal.

use std::ffi::{CStr, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use crate::command::Ready;
use crate::error::Error;
use crate::notify;
use crate::privs::Privs;
use crate::sigmask::Inherited;
use crate::spawn;
use crate::text::printable;

/// reaper's own sd_notify socket.
pub struct NotifySocket {
    fd: OwnedFd,
    /// As `NOTIFY_SOCKET` gives it: `@` and the abstract name.
    name: String,
}

/// One datagram received on [`NotifySocket`].
#[derive(Debug, PartialEq, Eq)]
pub enum Datagram {
    /// From `pid` (the kernel's word, in reaper's pid namespace; 0 if the sender is outside
    /// it), the whole message.
    Message { pid: i32, bytes: Vec<u8> },
    /// Longer than [`notify::MAX_MESSAGE`]: ignored whole.
    Truncated { pid: i32 },
    /// No credentials attached (cannot happen with `SO_PASSCRED`): ignored.
    Anonymous,
}

fn last_error<T>() -> io::Result<T> {
    Err(io::Error::last_os_error())
}

/// The `sockaddr_un` for `path` (its bytes as they go in `sun_path`: a leading NUL for an
/// abstract name), and its length; `None` if it does not fit.
fn sockaddr(path: &[u8]) -> Option<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain old data; all-zero is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if path.is_empty() || path.len() > addr.sun_path.len() {
        return None;
    }
    for (dst, &src) in addr.sun_path.iter_mut().zip(path) {
        *dst = src as libc::c_char;
    }
    let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + path.len();
    Some((addr, len as libc::socklen_t))
}

/// A non-blocking, close-on-exec datagram socket.
fn dgram_socket() -> io::Result<OwnedFd> {
    let flags = libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    // SAFETY: socket(2) creating a new descriptor.
    let fd = unsafe { libc::socket(libc::AF_UNIX, flags, 0) };
    if fd < 0 {
        return last_error();
    }
    // SAFETY: the kernel just gave us this descriptor and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl NotifySocket {
    /// Opens `@reaper/<me>/notify` (or a name the kernel picks, if that one is taken), with
    /// `SO_PASSCRED`.
    pub fn open(me: u32) -> io::Result<NotifySocket> {
        let fd = dgram_socket()?;
        let one: libc::c_int = 1;
        // SAFETY: setsockopt(2) with a pointer to an int and its size.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PASSCRED,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return last_error();
        }
        let wanted = format!("\0reaper/{me}/notify");
        let Some((addr, len)) = sockaddr(wanted.as_bytes()) else {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        };
        // SAFETY: bind(2) with a sockaddr_un of the given length.
        if unsafe { libc::bind(fd.as_raw_fd(), (&addr as *const libc::sockaddr_un).cast(), len) } != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EADDRINUSE) {
                return Err(err);
            }
            log::info!(
                "@{} is taken (another reaper in this network namespace?): letting the kernel pick a name",
                &wanted[1..]
            );
            // Autobind: a length of just the family asks for a free abstract name.
            let family = std::mem::size_of::<libc::sa_family_t>() as libc::socklen_t;
            // SAFETY: as above.
            if unsafe { libc::bind(fd.as_raw_fd(), (&addr as *const libc::sockaddr_un).cast(), family) } != 0
            {
                return last_error();
            }
        }
        let name = bound_name(fd.as_fd())?;
        Ok(NotifySocket { fd, name })
    }

    /// As `NOTIFY_SOCKET` says it: `@reaper/1/notify`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One datagram, `None` when none is waiting. Never blocks. Any descriptors passed along
    /// (`FDSTORE=1`) are closed at once. `EINTR` (which a non-blocking read never returns,
    /// but seccomp or a tracer can) is an error like any other: the datagram is still queued,
    /// and only the caller's count of failures keeps that from spinning.
    pub fn recv(&self) -> io::Result<Option<Datagram>> {
        let mut buf = [0u8; notify::MAX_MESSAGE];
        // Room for the credentials and for a full SCM_RIGHTS (253 descriptors), aligned.
        #[repr(C, align(8))]
        struct Control([u8; 1536]);
        let mut control = Control([0; 1536]);
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        // SAFETY: msghdr is plain old data; all-zero is valid.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = control.0.len() as _;
        let flags = libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC | libc::MSG_TRUNC;
        // SAFETY: recvmsg(2) into our own buffers, described by `msg`.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, flags) };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::EAGAIN) => Ok(None),
                _ => Err(err),
            };
        }
        let mut pid = None;
        // SAFETY: walking the control messages the kernel wrote into `control`, with the
        // length it set in `msg`; each is read unaligned.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                let data = libc::CMSG_DATA(cmsg);
                let len = ((*cmsg).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
                    (libc::SOL_SOCKET, libc::SCM_CREDENTIALS)
                        if len >= std::mem::size_of::<libc::ucred>() =>
                    {
                        pid = Some(std::ptr::read_unaligned(data.cast::<libc::ucred>()).pid);
                    }
                    (libc::SOL_SOCKET, libc::SCM_RIGHTS) => {
                        for i in 0..len / std::mem::size_of::<libc::c_int>() {
                            libc::close(std::ptr::read_unaligned(data.cast::<libc::c_int>().add(i)));
                        }
                    }
                    _ => {}
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        let Some(pid) = pid else { return Ok(Some(Datagram::Anonymous)) };
        if msg.msg_flags & libc::MSG_TRUNC != 0 || n as usize > buf.len() {
            return Ok(Some(Datagram::Truncated { pid }));
        }
        Ok(Some(Datagram::Message { pid, bytes: buf[..n as usize].to_vec() }))
    }
}

impl AsFd for NotifySocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The abstract name `fd` is bound to, as `@name`.
fn bound_name(fd: BorrowedFd) -> io::Result<String> {
    // SAFETY: sockaddr_un is plain old data; all-zero is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: getsockname(2) into a sockaddr_un of that size.
    if unsafe { libc::getsockname(fd.as_raw_fd(), (&mut addr as *mut libc::sockaddr_un).cast(), &mut len) }
        != 0
    {
        return last_error();
    }
    let start = std::mem::offset_of!(libc::sockaddr_un, sun_path);
    let bytes: Vec<u8> =
        addr.sun_path.iter().map(|&c| c as u8).take((len as usize).saturating_sub(start)).collect();
    match bytes.split_first() {
        Some((0, name)) if !name.is_empty() => Ok(format!("@{}", printable(name))),
        _ => Err(io::Error::from(io::ErrorKind::AddrNotAvailable)),
    }
}

/// The pipe for `--ready fd:N`: (reaper's end: close-on-exec, non-blocking; the command's
/// end: close-on-exec, blocking, to be duplicated onto N in the child).
pub fn ready_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) filling a two-int array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return last_error();
    }
    // SAFETY: the kernel just gave us both descriptors.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl(2) on our own descriptor.
    if unsafe { libc::fcntl(rd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        return last_error();
    }
    Ok((rd, wr))
}

/// What one read of a readiness pipe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeRead {
    /// A newline: ready.
    Ready,
    /// The command closed its end without a newline (or the read failed): never ready.
    Closed,
    /// Bytes without a newline.
    Pending,
    /// Nothing there yet.
    Empty,
}

/// Reads what is there (at most 512 bytes: a command cannot keep the loop here).
pub fn read_pipe(fd: BorrowedFd) -> PipeRead {
    let mut buf = [0u8; 512];
    // SAFETY: read(2) into our own buffer.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    match n {
        0 => PipeRead::Closed,
        n if n > 0 && buf[..n as usize].contains(&b'\n') => PipeRead::Ready,
        n if n > 0 => PipeRead::Pending,
        _ => match io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => PipeRead::Empty,
            _ => PipeRead::Closed,
        },
    }
}

/// Where `NOTIFY_SOCKET`'s value points, as `sun_path` bytes: an absolute path (NUL added),
/// or `@name` for an abstract one. `None` for anything else (relative paths, `vsock:`).
pub fn upward_address(value: &[u8]) -> Option<Vec<u8>> {
    match value.split_first() {
        Some((b'/', _)) if !value.contains(&0) => Some([value, b"\0"].concat()),
        Some((b'@', name)) if !name.is_empty() => Some([b"\0", name].concat()),
        _ => None,
    }
}

/// The socket reaper itself was given (`NOTIFY_SOCKET`): podman `--sdnotify=container`,
/// a systemd `Type=notify` service.
pub struct Upward {
    addr: libc::sockaddr_un,
    len: libc::socklen_t,
    shown: String,
    warned: bool,
}

impl Upward {
    /// `Err` (a message to log) if the value names no socket reaper can send to.
    pub fn new(value: &OsStr) -> Result<Upward, String> {
        let shown = printable(value.as_bytes());
        let (addr, len) = upward_address(value.as_bytes())
            .and_then(|path| sockaddr(&path))
            .ok_or_else(|| format!("NOTIFY_SOCKET={shown}: not an absolute path or @abstract name that fits a socket address; not notifying"))?;
        Ok(Upward { addr, len, shown, warned: false })
    }

    /// Sends `msg` (`READY=1`, `STOPPING=1`) as one datagram; a failure is logged once.
    pub fn send(&mut self, msg: &str) {
        match self.try_send(msg) {
            Ok(()) => log::debug!("sent {msg} to NOTIFY_SOCKET={}", self.shown),
            Err(e) if !self.warned => {
                self.warned = true;
                log::warn!("cannot send {msg} to NOTIFY_SOCKET={}: {}", self.shown, crate::error::os(e));
            }
            Err(e) => {
                log::debug!("cannot send {msg} to NOTIFY_SOCKET={}: {}", self.shown, crate::error::os(e))
            }
        }
    }

    fn try_send(&self, msg: &str) -> io::Result<()> {
        let fd = dgram_socket()?;
        // SAFETY: sendto(2) of our bytes to a sockaddr_un of the given length.
        let n = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                (&self.addr as *const libc::sockaddr_un).cast(),
                self.len,
            )
        };
        if n < 0 { last_error() } else { Ok(()) }
    }
}

/// Where a readiness event can come from, as the driver polls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Socket,
    Pipe(usize),
}

/// One command as readiness sees it.
struct Slot {
    name: String,
    ready: Option<Ready>,
    /// While it runs (set at start, cleared when reaped).
    pid: Option<i32>,
    /// `--ready fd:N`: reaper's end, until ready or closed.
    pipe: Option<OwnedFd>,
    /// Ready reported for this run: later messages are not reported again.
    reported: bool,
}

/// Failed reads in a row after which reaper's socket is given up.
const MAX_RECV_ERRORS: u32 = 100;

/// Reads of a reaped command's pipe at most (512 bytes each: a pipe's default 64 KiB).
const LAST_READS: usize = 128;

/// Datagrams read per wake-up at most: a flood on the socket cannot starve the signals.
const BATCH: usize = 16;

/// All of reaper's readiness I/O, per command index.
pub struct Readiness {
    socket: Option<NotifySocket>,
    upward: Option<Upward>,
    slots: Vec<Slot>,
    me: i32,
    /// /proc is this PID namespace's: a sender's parents can be looked up there. Not so
    /// without /proc, nor with another namespace's (`unshare -p -f` without `--mount-proc`,
    /// where /proc/N is some other process than pid N here): then only a command's own pid
    /// counts.
    walk: bool,
    recv_errors: u32,
    /// The shutdown began (`STOPPING=1`): a descriptor closed now is that of a command being
    /// stopped, not news.
    stopping: bool,
}

impl Readiness {
    /// `commands`: each command's name and `--ready`, in command order. reaper's socket is
    /// opened only if some command has `--ready notify`; `given` is the `NOTIFY_SOCKET`
    /// reaper was started with (the upward one); `me` reaper's pid.
    pub fn new(commands: &[(String, Option<Ready>)], given: Option<OsString>, me: u32) -> Readiness {
        let notified: Vec<&str> =
            commands.iter().filter(|(_, r)| *r == Some(Ready::Notify)).map(|(n, _)| n.as_str()).collect();
        let socket = if notified.is_empty() {
            None
        } else {
            match NotifySocket::open(me) {
                Ok(s) => {
                    log::debug!("sd_notify socket {}", s.name());
                    Some(s)
                }
                Err(e) => {
                    log::warn!(
                        "cannot open the sd_notify socket: {}: {} can never be ready (--ready-timeout applies)",
                        crate::error::os(e),
                        notified.join(", ")
                    );
                    None
                }
            }
        };
        let upward = given
            .filter(|v| !v.is_empty())
            .and_then(|v| Upward::new(&v).map_err(|why| log::warn!("{why}")).ok());
        let slots = commands
            .iter()
            .map(|(name, ready)| Slot {
                name: name.clone(),
                ready: *ready,
                pid: None,
                pipe: None,
                reported: false,
            })
            .collect();
        // (Only looked at when some command reports by the socket: no syscall otherwise.)
        let walk = !notified.is_empty() && !crate::procfs::foreign();
        if !walk && !notified.is_empty() {
            log::debug!("/proc is not this PID namespace's: only a command's own pid counts for it");
        }
        Readiness { socket, upward, slots, me: me as i32, walk, recv_errors: 0, stopping: false }
    }

    /// reaper's socket's name, if it has one.
    pub fn socket_name(&self) -> Option<&str> {
        self.socket.as_ref().map(NotifySocket::name)
    }

    /// The `NOTIFY_SOCKET` every command gets: reaper's own socket, or none at all (the one
    /// reaper was given is reaper's, never the commands').
    pub fn env(&self) -> (&'static str, Option<Vec<u8>>) {
        ("NOTIFY_SOCKET", self.socket_name().map(|n| n.as_bytes().to_vec()))
    }

    /// Starts command `index` with its readiness descriptor (a fresh pipe, for `--ready
    /// fd:N`) and reaper's `NOTIFY_SOCKET`, and remembers its pid. `logged`: with output
    /// pipes (`--prefix-output`), whose read ends come back.
    #[allow(clippy::too_many_arguments)]
    pub fn spawn(
        &mut self,
        index: usize,
        command: &[OsString],
        inherited: &Inherited,
        main: bool,
        dir: Option<&CStr>,
        privs: &Privs,
        logged: bool,
    ) -> Result<(i32, Option<spawn::Output>), Error> {
        let fd_n = self.slots.get(index).and_then(|s| match s.ready {
            Some(Ready::Fd(n)) => Some(n),
            _ => None,
        });
        let pipe = fd_n
            .map(|n| {
                ready_pipe().map_err(|e| {
                    Error::start(format!("{}'s readiness pipe (--ready fd:{n})", self.name(index)), e)
                })
            })
            .transpose()?;
        let extra = spawn::Extra {
            ready_fd: pipe.as_ref().zip(fd_n).map(|((_, wr), n)| (wr.as_fd(), n)),
            env: vec![self.env()],
            logged,
        };
        let (pid, output) = spawn::spawn_with(command, inherited, main, dir, privs, &extra)?;
        if let Some(slot) = self.slots.get_mut(index) {
            // Our copy of the write end goes now (dropped with `pipe`): EOF then means the
            // command and all it handed the descriptor to have closed it.
            slot.pipe = pipe.map(|(rd, _)| rd);
            slot.pid = Some(pid);
            slot.reported = false;
        }
        Ok((pid, output))
    }

    /// Records that `pid` was reaped: it no longer stands for its command. What the command
    /// said before it exited still counts, though reaper may reap it before it read that (a
    /// one-shot that says ready and exits): its pipe is read to the end, and the socket's
    /// queued messages are read while its pid still names it. The indices of the commands
    /// made ready go to `ready`.
    pub fn reaped(&mut self, pid: i32, ready: &mut Vec<usize>) {
        let Some(i) = self.slots.iter().position(|s| s.pid == Some(pid)) else { return };
        if self.slots[i].ready == Some(Ready::Notify) {
            self.read_socket(ready);
        }
        // A pipe holds 64 KiB unless the command asked for more: bounded all the same.
        for _ in 0..LAST_READS {
            if self.slots[i].pipe.is_none() || !self.read_pipe(i, ready) {
                break;
            }
        }
        let slot = &mut self.slots[i];
        slot.pid = None;
        slot.pipe = None;
    }

    /// What to poll (besides the signalfd): the socket, and each pipe still open.
    pub fn poll_fds(&self) -> impl Iterator<Item = (Source, BorrowedFd<'_>)> {
        let socket = self.socket.as_ref().map(|s| (Source::Socket, s.as_fd()));
        let pipes = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((Source::Pipe(i), s.pipe.as_ref()?.as_fd())));
        socket.into_iter().chain(pipes)
    }

    /// Whether `poll_fds` has nothing to poll: asked on every wake-up, so without the iterator.
    pub fn polls_nothing(&self) -> bool {
        self.socket.is_none() && self.slots.iter().all(|s| s.pipe.is_none())
    }

    #[cfg(test)]
    pub fn fds(&self) -> Vec<(Source, BorrowedFd<'_>)> {
        let fds: Vec<_> = self.poll_fds().collect();
        assert_eq!(self.polls_nothing(), fds.is_empty());
        fds
    }

    /// Reads what `source` has; the indices of the commands it made ready go to `ready`.
    pub fn read(&mut self, source: Source, ready: &mut Vec<usize>) {
        match source {
            Source::Pipe(i) => {
                self.read_pipe(i, ready);
            }
            Source::Socket => self.read_socket(ready),
        }
    }

    /// Whether bytes without a newline came (there may be more).
    fn read_pipe(&mut self, i: usize, ready: &mut Vec<usize>) -> bool {
        let Some(slot) = self.slots.get_mut(i) else { return false };
        let Some(fd) = slot.pipe.as_ref() else { return false };
        match read_pipe(fd.as_fd()) {
            PipeRead::Pending => return true,
            PipeRead::Empty => {}
            PipeRead::Ready => {
                slot.pipe = None;
                if !std::mem::replace(&mut slot.reported, true) {
                    ready.push(i);
                }
            }
            PipeRead::Closed => {
                slot.pipe = None;
                let level = if self.stopping { log::Level::Debug } else { log::Level::Warn };
                log::log!(
                    level,
                    "{} closed its readiness descriptor without writing a newline: not ready",
                    slot.name
                );
            }
        }
        false
    }

    fn read_socket(&mut self, ready: &mut Vec<usize>) {
        for _ in 0..BATCH {
            let Some(socket) = &self.socket else { return };
            let datagram = match socket.recv() {
                Ok(Some(d)) => d,
                Ok(None) => return,
                Err(e) => return self.recv_failed(e),
            };
            self.recv_errors = 0;
            let (pid, bytes) = match datagram {
                Datagram::Message { pid, bytes } => (pid, bytes),
                Datagram::Truncated { pid } => {
                    log::debug!("sd_notify message from pid {pid} longer than 4096 bytes: ignored");
                    continue;
                }
                Datagram::Anonymous => {
                    log::debug!("sd_notify message without credentials: ignored");
                    continue;
                }
            };
            let msg = match notify::parse(&bytes) {
                Ok(m) => m,
                Err(why) => {
                    log::debug!("sd_notify message from pid {pid}: {}: ignored", why.as_str());
                    continue;
                }
            };
            let waiting: Vec<(usize, i32)> = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.ready == Some(Ready::Notify))
                .filter_map(|(i, s)| Some((i, s.pid?)))
                .collect();
            let walk = self.walk;
            let ppid = |p: i32| if walk { crate::procfs::stat(p).map(|s| s.ppid) } else { None };
            let Some(i) = notify::attribute(pid, &waiting, self.me, ppid) else {
                log::debug!(
                    "sd_notify message from pid {pid}, not a command with --ready notify or its descendant: ignored"
                );
                continue;
            };
            let slot = &mut self.slots[i];
            if let Some(status) = msg.status {
                let status = &status[..status.len().min(200)];
                log::debug!("{} (pid {pid}): STATUS={}", slot.name, printable(status));
            }
            if msg.ready && !std::mem::replace(&mut slot.reported, true) {
                ready.push(i);
            }
        }
    }

    /// A failed recvmsg(2) leaves the datagram queued, so poll says readable at once again:
    /// after [`MAX_RECV_ERRORS`] failures in a row the socket is closed (its commands can then
    /// never be ready; their timeout applies) rather than spin.
    fn recv_failed(&mut self, e: io::Error) {
        self.recv_errors += 1;
        if self.recv_errors == 1 {
            log::warn!("reading the sd_notify socket: {}", crate::error::os(e));
        } else if self.recv_errors >= MAX_RECV_ERRORS {
            log::warn!(
                "reading the sd_notify socket failed {MAX_RECV_ERRORS} times in a row ({}): closing it; \
                 commands with --ready notify that are not ready yet never will be",
                crate::error::os(e)
            );
            self.socket = None;
        }
    }

    /// Whether reaper was given a `NOTIFY_SOCKET` to report to.
    pub fn has_upward(&self) -> bool {
        self.upward.is_some()
    }

    /// Sends `msg` to the socket reaper was given, if any. The machine says `STOPPING=1`
    /// once the shutdown begins, with or without that socket.
    pub fn notify_up(&mut self, msg: &str) {
        self.stopping |= msg == "STOPPING=1";
        if let Some(up) = &mut self.upward {
            up.send(msg);
        }
    }

    /// A command's name, for log lines.
    pub fn name(&self, index: usize) -> &str {
        self.slots.get(index).map_or("?", |s| s.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    /// Held by each test whose `Readiness` opens `@reaper/<this pid>/notify`: tests run in
    /// threads of one process, and a second socket would get a name the kernel picks.
    static OWN_NAME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn own_name() -> std::sync::MutexGuard<'static, ()> {
        OWN_NAME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn abstract_addr(name: &[u8]) -> io::Result<std::os::unix::net::SocketAddr> {
        <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(name)
    }

    /// Forks a child that (through a grandchild when `via_child`) sends `msg` to `name`; the
    /// child lives until the message went out. Returns the child's pid once it is reaped.
    fn fork_sender(name: &str, msg: &[u8], via_child: bool) -> i32 {
        let (addr, len) = sockaddr(&[b"\0", &name.as_bytes()[1..]].concat()).unwrap();
        let send = || {
            // SAFETY: async-signal-safe calls only (socket, sendto, _exit) after fork.
            unsafe {
                let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0);
                let ok = libc::sendto(
                    fd,
                    msg.as_ptr().cast(),
                    msg.len(),
                    0,
                    (&addr as *const libc::sockaddr_un).cast(),
                    len,
                );
                // Alive while the message is read: the walk needs the sender in /proc.
                let second = libc::timespec { tv_sec: 1, tv_nsec: 0 };
                libc::nanosleep(&second, std::ptr::null_mut());
                libc::_exit(i32::from(ok < 0));
            }
        };
        // SAFETY: see `send`; the child only forks, waits and exits besides.
        match unsafe { libc::fork() } {
            0 => {
                if via_child {
                    // SAFETY: as above.
                    unsafe {
                        match libc::fork() {
                            0 => {
                                send();
                                libc::_exit(1)
                            }
                            g => {
                                let mut st = 0;
                                libc::waitpid(g, &mut st, 0);
                                libc::_exit(st);
                            }
                        }
                    }
                }
                send();
                0
            }
            pid => pid,
        }
    }

    fn reap(pid: i32) -> i32 {
        let mut st = 0;
        // SAFETY: waitpid(2) of our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        st
    }

    #[test]
    fn a_message_counts_for_the_command_it_comes_from_or_its_descendant_only() {
        let _name = own_name();
        let cmds = [
            ("db".to_string(), Some(Ready::Notify)),
            ("web".to_string(), None),
            ("x".to_string(), Some(Ready::Notify)),
        ];
        let mut r = Readiness::new(&cmds, None, std::process::id());
        let Some(name) = r.socket_name().map(str::to_owned) else { panic!("no socket") };
        assert_eq!(name, format!("@reaper/{}/notify", std::process::id()));
        assert_eq!(r.env(), ("NOTIFY_SOCKET", Some(name.as_bytes().to_vec())));
        assert_eq!(r.fds().len(), 1);
        // Reads for up to `secs`, until something is ready.
        let read = |r: &mut Readiness, secs: u64| {
            let mut ready = Vec::new();
            let give_up = std::time::Instant::now() + std::time::Duration::from_secs(secs);
            while ready.is_empty() && std::time::Instant::now() < give_up {
                r.read(Source::Socket, &mut ready);
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            ready
        };
        // A grandchild of the command "db" (a wrapper's child): db is ready.
        let db = fork_sender(&name, b"READY=1", true);
        r.slots[0].pid = Some(db);
        assert_eq!(read(&mut r, 10), [0]);
        // A process that is no command's: ignored. "web" has no --ready notify: its own
        // message is ignored too.
        let web = fork_sender(&name, b"READY=1", false);
        r.slots[1].pid = Some(web);
        assert_eq!(read(&mut r, 1), [0usize; 0]);
        let stranger = fork_sender(&name, b"READY=1", true);
        assert_eq!(read(&mut r, 1), [0usize; 0]);
        // x's own message, with other lines.
        let x = fork_sender(&name, b"STATUS=starting\nREADY=1\n", false);
        r.slots[2].pid = Some(x);
        assert_eq!(read(&mut r, 10), [2]);
        // Once ready, not again; a malformed message is nothing.
        let again = fork_sender(&name, b"READY=1", false);
        r.slots[2].pid = Some(again);
        let bad = fork_sender(&name, b"READY=1\nnonsense", false);
        r.slots[0].pid = Some(bad);
        r.slots[0].reported = false;
        assert_eq!(read(&mut r, 1), [0usize; 0]);
        for pid in [db, web, stranger, x, again, bad] {
            assert_eq!(reap(pid), 0);
        }
        // Reaped: the pid no longer stands for x.
        r.reaped(again, &mut Vec::new());
        assert_eq!(r.slots[2].pid, None);
    }

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    // The real spawn path: a command with `--ready fd:N` writes to N (3 to 9), and each
    // command's NOTIFY_SOCKET is reaper's socket. (In reaper, N meeting the pipe's own ends
    // and the exec-report pipe is tests/ready.rs's every_fd_number_reaches_the_command: the
    // test harness's descriptors are numbered differently.)
    #[test]
    fn a_started_command_gets_its_fd_and_reapers_socket() {
        let _name = own_name();
        let privs = Privs::prepare(None, false).unwrap();
        let inherited = Inherited::defaults();
        let dir = std::env::temp_dir().join(format!("reaper-ready-spawn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for n in 3..=9 {
            let cmds = [("db".to_string(), Some(Ready::Fd(n))), ("web".to_string(), Some(Ready::Notify))];
            let mut r = Readiness::new(&cmds, None, std::process::id());
            let script = format!("echo \"$NOTIFY_SOCKET\" > {}/env; echo >&{n}", dir.display());
            let (pid, _) =
                r.spawn(0, &os(&["sh", "-c", &script]), &inherited, false, None, &privs, false).unwrap();
            let (source, fd) = r.fds()[1];
            assert_eq!(source, Source::Pipe(0));
            let mut pfd = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
            nix::poll::poll(&mut pfd, 10_000u16).unwrap();
            let mut ready = Vec::new();
            r.read(Source::Pipe(0), &mut ready);
            assert_eq!(ready, [0], "fd {n}");
            assert_eq!(r.fds().len(), 1, "the pipe left the poll set once ready");
            assert_eq!(reap(pid), 0);
            let env = std::fs::read_to_string(dir.join("env")).unwrap();
            assert_eq!(env.trim(), r.socket_name().unwrap());
        }
        // Closed without a newline: not ready, the pipe leaves the poll set.
        let cmds = [("db".to_string(), Some(Ready::Fd(3)))];
        let mut r = Readiness::new(&cmds, Some("/nonexistent".into()), std::process::id());
        assert!(r.has_upward());
        assert_eq!(r.env(), ("NOTIFY_SOCKET", None));
        let (pid, _) =
            r.spawn(0, &os(&["sh", "-c", "printf x >&3"]), &inherited, false, None, &privs, false).unwrap();
        assert_eq!(reap(pid), 0);
        // (Another test's child, between its fork and exec, may hold a copy for a moment.)
        let mut ready = Vec::new();
        for _ in 0..500 {
            r.read(Source::Pipe(0), &mut ready);
            if r.fds().is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(ready.is_empty());
        assert!(r.fds().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn upward_addresses() {
        assert_eq!(upward_address(b"/run/notify.sock").as_deref(), Some(&b"/run/notify.sock\0"[..]));
        assert_eq!(upward_address(b"@x/y").as_deref(), Some(&b"\0x/y"[..]));
        assert_eq!(upward_address(b"@"), None);
        assert_eq!(upward_address(b""), None);
        assert_eq!(upward_address(b"run/x"), None);
        assert_eq!(upward_address(b"vsock:2:1234"), None);
        assert_eq!(upward_address(b"/a\0b"), None);
        let long = [b"/".as_slice(), &[b'x'; 107]].concat();
        assert!(Upward::new(OsStr::from_bytes(&long)).is_err(), "108 bytes and a NUL do not fit");
        assert!(Upward::new(OsStr::from_bytes(&long[..107])).is_ok());
        assert!(Upward::new(OsStr::new("relative")).err().unwrap().contains("NOTIFY_SOCKET=relative"));
    }

    fn recv_wait(s: &NotifySocket) -> Datagram {
        for _ in 0..500 {
            if let Some(d) = s.recv().unwrap() {
                return d;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("no datagram");
    }

    #[test]
    fn the_socket_gets_each_datagram_with_its_senders_pid() {
        // A made-up pid no other test uses for its name.
        let me = 4_000_000_000u32 - std::process::id();
        let s = NotifySocket::open(me).unwrap();
        assert_eq!(s.name(), format!("@reaper/{me}/notify"));
        assert_eq!(s.recv().unwrap(), None, "nothing yet, and no blocking");
        let addr = abstract_addr(&s.name().as_bytes()[1..]).unwrap();
        let c = UnixDatagram::unbound().unwrap();
        c.send_to_addr(b"READY=1\n", &addr).unwrap();
        let pid = std::process::id() as i32;
        assert_eq!(recv_wait(&s), Datagram::Message { pid, bytes: b"READY=1\n".to_vec() });
        // The largest message whole; one byte more is truncated and ignored.
        let big = vec![b'x'; notify::MAX_MESSAGE];
        c.send_to_addr(&big, &addr).unwrap();
        assert_eq!(recv_wait(&s), Datagram::Message { pid, bytes: big.clone() });
        c.send_to_addr(&[&big[..], b"y"].concat(), &addr).unwrap();
        assert_eq!(recv_wait(&s), Datagram::Truncated { pid });
        // The same name again: taken, so the kernel picks one, and it works as well.
        let t = NotifySocket::open(me).unwrap();
        assert_ne!(t.name(), s.name());
        assert!(t.name().starts_with('@') && t.name().len() > 1);
        let addr = abstract_addr(&t.name().as_bytes()[1..]).unwrap();
        c.send_to_addr(b"STATUS=x", &addr).unwrap();
        assert_eq!(recv_wait(&t), Datagram::Message { pid, bytes: b"STATUS=x".to_vec() });
        // Both close-on-exec and non-blocking.
        for fd in [s.as_fd(), t.as_fd()] {
            let fl = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).unwrap();
            assert!(fl & libc::O_NONBLOCK != 0);
            let fd_fl = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).unwrap();
            assert!(fd_fl & libc::FD_CLOEXEC != 0);
        }
    }

    #[test]
    fn passed_descriptors_are_closed() {
        let me = 3_000_000_000u32 - std::process::id();
        let s = NotifySocket::open(me).unwrap();
        let c = UnixDatagram::unbound().unwrap();
        c.connect_addr(&abstract_addr(&s.name().as_bytes()[1..]).unwrap()).unwrap();
        let (a, _b) = UnixDatagram::pair().unwrap();
        let fd = a.as_raw_fd();
        let mut space = [0u8; 64];
        // SAFETY: a sendmsg with one SCM_RIGHTS control message, laid out by the CMSG macros.
        unsafe {
            let mut iov = libc::iovec { iov_base: b"FDSTORE=1".as_ptr() as *mut _, iov_len: 9 };
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = space.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>(), fd);
            assert!(libc::sendmsg(c.as_raw_fd(), &msg, 0) > 0);
        }
        drop(a);
        // The only other copy is the one in flight: once received and closed, `_b`'s peer is
        // gone, which a send on `_b` shows (after a moment: another test's forked child may
        // hold a copy briefly).
        assert!(matches!(recv_wait(&s), Datagram::Message { .. }));
        let closed = (0..300).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            _b.send(b"x").is_err()
        });
        assert!(closed, "the passed descriptor was closed");
    }

    #[test]
    fn a_reaped_commands_pipe_is_read_to_the_end() {
        let cmds = [("a".to_string(), Some(Ready::Fd(3))), ("b".to_string(), Some(Ready::Fd(3)))];
        let mut r = Readiness::new(&cmds, None, std::process::id());
        // a wrote more than one read's worth, then its newline; b only bytes, and still holds
        // its end (a grandchild): both are done with at the reap, without blocking.
        let (rd, wr) = ready_pipe().unwrap();
        nix::unistd::write(&wr, &[b'x'; 2000]).unwrap();
        nix::unistd::write(&wr, b"\n").unwrap();
        drop(wr);
        (r.slots[0].pipe, r.slots[0].pid) = (Some(rd), Some(100));
        let (rd, b_wr) = ready_pipe().unwrap();
        nix::unistd::write(&b_wr, b"partial").unwrap();
        (r.slots[1].pipe, r.slots[1].pid) = (Some(rd), Some(200));
        let mut ready = Vec::new();
        r.reaped(300, &mut ready);
        assert_eq!(r.fds().len(), 2, "not a command's pid: nothing changes");
        r.reaped(200, &mut ready);
        r.reaped(100, &mut ready);
        assert_eq!(ready, [0]);
        assert!(r.fds().is_empty());
        assert_eq!((r.slots[0].pid, r.slots[1].pid), (None, None));
    }

    #[test]
    fn a_pipe_is_ready_at_a_newline_and_closed_at_eof() {
        let (rd, wr) = ready_pipe().unwrap();
        assert_eq!(read_pipe(rd.as_fd()), PipeRead::Empty);
        nix::unistd::write(&wr, b"abc").unwrap();
        assert_eq!(read_pipe(rd.as_fd()), PipeRead::Pending);
        nix::unistd::write(&wr, b"d\ne").unwrap();
        assert_eq!(read_pipe(rd.as_fd()), PipeRead::Ready);
        drop(wr);
        // Another test's forked child may hold a copy of `wr` for a while (one sleeps a second
        // before it exits, and under qemu-user an exec takes that long): wait for the hang-up.
        let mut pfd = [libc::pollfd { fd: rd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        // SAFETY: poll(2) on one pollfd we own.
        assert_eq!(unsafe { libc::poll(pfd.as_mut_ptr(), 1, 60_000) }, 1, "the write end was never closed");
        assert_eq!(read_pipe(rd.as_fd()), PipeRead::Closed);
        let fl = nix::fcntl::fcntl(rd.as_fd(), nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert!(fl & libc::FD_CLOEXEC != 0);
    }

    #[test]
    fn upward_sends_one_datagram_and_a_failure_is_not_fatal() {
        let dir = std::env::temp_dir().join(format!("reaper-upward-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        listener.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        let mut up = Upward::new(path.as_os_str()).unwrap();
        up.send("READY=1");
        up.send("STOPPING=1");
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
        drop(listener);
        std::fs::remove_file(&path).unwrap();
        assert!(up.try_send("READY=1").is_err());
        up.send("READY=1");
        assert!(up.warned);
        up.send("STOPPING=1");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

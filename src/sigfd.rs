//! The signalfd through which the supervisor receives every blocked signal.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::sigmask;

/// The non-blocking signalfd that delivers every blocked signal to the supervisor loop.
pub struct SignalFd {
    fd: OwnedFd,
    me: u32,
    buf: [libc::signalfd_siginfo; 16],
    len: usize,
    pos: usize,
    /// The last read was short: the queue was empty then, so the batch ends without another
    /// read(2) that could only say EAGAIN (poll says when more comes).
    drained: bool,
    /// rt_sigtimedwait failed other than by timing out (a seccomp profile that does not know
    /// it answers EPERM): from then on the driver polls the descriptor.
    no_wait: bool,
}

/// What [`SignalFd::wait`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// A signal was taken from the queue: [`SignalFd::next_signal`] returns it.
    Signal,
    /// The timeout passed (or a stop and continue interrupted the wait).
    TimedOut,
    /// rt_sigtimedwait cannot be used here: poll the descriptor instead.
    Unavailable,
}

impl SignalFd {
    /// `me`: reaper's pid (the caller has it: no getpid(2) here).
    pub fn new(me: u32) -> io::Result<Self> {
        let mask = sigmask::blocked_set();
        let flags = libc::SFD_CLOEXEC | libc::SFD_NONBLOCK;
        // SAFETY: raw signalfd4 creating a new descriptor (-1) from an 8-byte kernel sigset.
        let fd =
            unsafe { libc::syscall(libc::SYS_signalfd4, -1, &mask as *const sigmask::KernelMask, 8, flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just gave us this descriptor and nobody else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // SAFETY: signalfd_siginfo is plain old data; all-zero is a valid value.
        let buf = unsafe { std::mem::zeroed() };
        Ok(SignalFd { fd, me, buf, len: 0, pos: 0, drained: false, no_wait: false })
    }

    /// The next pending signal number, `None` once the queue is empty. Reads in batches so a
    /// signal storm costs one syscall per 16 signals.
    pub fn next_signal(&mut self) -> io::Result<Option<i32>> {
        loop {
            let me = self.me;
            let Some(info) = self.next_info()? else { return Ok(None) };
            // A write to a closed stderr pipe or past RLIMIT_FSIZE makes the kernel send
            // SIGPIPE/SIGXFSZ to reaper itself (SI_USER, our pid). That is reaper's own trouble,
            // not the command's: forwarding it would kill the command.
            if info.ssi_code == libc::SI_USER && info.ssi_pid == me {
                continue;
            }
            return Ok(Some(info.ssi_signo as i32));
        }
    }

    /// Sleeps until a signal is pending or `timeout` passes (for ever without one), and takes
    /// that one signal from the queue: one system call where poll and a read of the descriptor
    /// are two, for the loop's common case of nothing else to watch. The signalfd reads the
    /// same queue (its signals stay blocked), so the two ways mix freely; a signal taken here
    /// is a batch of one, which also gives the reap and the deadlines their turn after every
    /// signal of a storm.
    pub fn wait(&mut self, timeout: Option<std::time::Duration>) -> Waited {
        if self.no_wait || self.buffered() {
            return Waited::Unavailable;
        }
        let mask = sigmask::blocked_set();
        let ts = timeout.map(|t| libc::timespec {
            // At most 68 years: the raw call takes the 32-bit timespec on 32-bit targets.
            tv_sec: t.as_secs().min(i32::MAX as u64) as _,
            tv_nsec: t.subsec_nanos() as _,
        });
        let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // Zeroed, although Linux writes all of it: an emulator (qemu-user) may write only the
        // fields it knows, and bytes nobody wrote must not be read as integers.
        let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
        // SAFETY: raw rt_sigtimedwait with an 8-byte kernel sigset (the C library's would
        // refuse its reserved real-time signals), a valid siginfo pointer and a timespec or
        // null (no timeout).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                &mask as *const sigmask::KernelMask,
                info.as_mut_ptr(),
                ts_ptr,
                8,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Waited::TimedOut,
                _ => {
                    log::debug!("rt_sigtimedwait: {}; polling the signalfd instead", crate::error::os(err));
                    self.no_wait = true;
                    Waited::Unavailable
                }
            };
        }
        // SAFETY: a siginfo_t is plain integers, all zero or written by rt_sigtimedwait.
        let info = unsafe { info.assume_init() };
        // The fields next_signal looks at, as the signalfd would have given them.
        self.buf[0].ssi_signo = info.si_signo as u32;
        self.buf[0].ssi_code = info.si_code;
        // SAFETY: si_pid is valid for the signals reaper gets (kill, sigqueue, SIGCHLD);
        // for a kernel-generated fault it reads whatever the kernel left there, as the
        // signalfd's ssi_pid does.
        self.buf[0].ssi_pid = unsafe { info.si_pid() } as u32;
        (self.len, self.pos, self.drained) = (1, 0, true);
        Waited::Signal
    }

    /// Signals read from the descriptor that `next_signal` has not returned yet.
    pub fn buffered(&self) -> bool {
        self.pos < self.len
    }

    /// The next record, borrowed from the buffer (a copy is 128 bytes, on every signal).
    fn next_info(&mut self) -> io::Result<Option<&libc::signalfd_siginfo>> {
        if self.pos == self.len {
            if std::mem::take(&mut self.drained) {
                return Ok(None);
            }
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: reading into our own buffer of exactly that many bytes.
            let n = unsafe {
                libc::read(self.fd.as_raw_fd(), self.buf.as_mut_ptr().cast(), size * self.buf.len())
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                return match err.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
                    _ => Err(err),
                };
            }
            self.len = n as usize / size;
            self.pos = 0;
            self.drained = self.len < self.buf.len();
            if self.len == 0 {
                return Ok(None);
            }
        }
        self.pos += 1;
        Ok(self.buf.get(self.pos - 1))
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

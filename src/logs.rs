//! Per-process log pipes (`--prefix-output`), the I/O part: reads the commands' pipes, frames
//! their lines (`logpipe`) and writes them to reaper's own stdout and stderr, never blocking.
//!
//! - reaper's stdout and stderr are inherited descriptions that other processes may share:
//!   they stay blocking. A write goes out only when poll(2) has just said POLLOUT, and is at
//!   most `PIPE_BUF` bytes of whole lines, so on a pipe it neither blocks nor tears. Then
//!   poll(2) again (zero timeout) before the next one.
//! - The read ends are reaper's alone, non-blocking. Each wake-up reads at most
//!   `READ_PER_WAKEUP` from a pipe, after the signals and the reaps have been handled.
//! - Backpressure first: a pipe is read only while its destination's queue has room for the
//!   worst that a read can produce; otherwise the command waits in its own write(2). If the
//!   destination then takes nothing for `STALL`, its reader is stalled: from then on the pipes
//!   are read and the lines that do not fit are dropped whole and counted, until a write to
//!   the destination succeeds again (then a line says how many were dropped).
//! - A reaped command's pipes are read right away, and at their end its unfinished last line
//!   is flushed, before its exit is logged. A process it left behind may still hold them open:
//!   then they are read as before, under the command's name, until their end.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::logpipe::{Framer, PIPE_BUF, QUEUE_BYTES, Queue, clean_name};
use crate::spawn::Output;

/// The most one pipe gives per wake-up: the signals and reaps of the next one are not delayed
/// by a flood.
const READ_PER_WAKEUP: usize = 64 * 1024;
/// One read(2).
const READ_CHUNK: usize = 16 * 1024;
/// A read smaller than this waits for room instead.
const MIN_CHUNK: usize = 512;
/// How long a destination may take nothing while pipes wait for room before lines are dropped.
pub const STALL: Duration = Duration::from_secs(1);
/// What a reaped command left in its pipe is taken in beyond the queue's bound, up to this.
const REAPED_LIMIT: usize = 4 * QUEUE_BYTES;
/// At exit, how long reaper waits for its readers to take what is queued.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// The destinations, as messages name them.
const NAMES: [&str; 2] = ["stdout", "stderr"];

struct Source {
    pid: i32,
    name: String,
    /// 0: reaper's stdout, 1: reaper's stderr.
    dest: usize,
    fd: OwnedFd,
    framer: Framer,
    /// Its end was read: closed at the next `close_finished`.
    ended: bool,
    /// A read failed (not its end): not polled again before then. Closing the pipe would
    /// kill the command with SIGPIPE for reaper's trouble; polling it at once could spin.
    retry_at: Option<Instant>,
    /// The failure was said (once per pipe).
    failed: bool,
}

struct Dest {
    fd: RawFd,
    queue: Queue,
    /// Since when pipes wait for room and nothing was written.
    held_since: Option<Instant>,
    /// The reader is stalled: lines that do not fit are dropped.
    dropping: bool,
    /// The reader is gone (EPIPE): the pipes for it are closed.
    broken: bool,
    /// A write failed otherwise (ENOSPC, EIO…): not polled again before then. A file always
    /// says POLLOUT: polling it at once would spin on the same error.
    retry_at: Option<Instant>,
    /// The failure was said (once, until a write succeeds again).
    failing: bool,
    /// A terminal's own description, non-blocking: `fd` is this one then.
    _own: Option<OwnedFd>,
    /// A terminal reaper could not reopen: O_NONBLOCK is set around each write.
    nonblock_each: bool,
    /// The terminal's device number: stdout and stderr on the same terminal are written one
    /// at a time (see `write`).
    tty: Option<u64>,
}

impl Dest {
    /// reaper's stdout (1) or stderr (2). A terminal says POLLOUT while it has any room at
    /// all, and a blocking write longer than that room sleeps until its reader reads (a
    /// `docker run -t` client that stalls would stop reaper's loop): a terminal is written
    /// through a description of its own, opened non-blocking (the inherited one stays as it
    /// is: the main command reads the same terminal through it as stdin). Pipes need none of
    /// this: a write of at most PIPE_BUF after POLLOUT fits.
    fn new(fd: RawFd) -> Dest {
        let queue = Queue::default();
        let (own, nonblock_each) = match terminal(fd) {
            false => (None, false),
            true => match reopen(fd) {
                Ok(own) => (Some(own), false),
                Err(e) => {
                    log::warn!(
                        "cannot reopen reaper's {} (a terminal) to write to it without blocking: {}; \
                         it is made non-blocking for each write instead",
                        NAMES[fd as usize - 1],
                        crate::error::os(e)
                    );
                    (None, true)
                }
            },
        };
        let tty = if own.is_some() || nonblock_each { device(fd) } else { None };
        let fd = own.as_ref().map_or(fd, |own| own.as_raw_fd());
        Dest {
            fd,
            queue,
            held_since: None,
            dropping: false,
            broken: false,
            retry_at: None,
            failing: false,
            _own: own,
            nonblock_each,
            tty,
        }
    }

    /// Lines wait and reaper may write them now (when poll allows).
    fn wants_write(&self) -> bool {
        !self.queue.is_empty() && !self.broken && self.retry_at.is_none()
    }
}

/// Every command's pipes, and what waits for reaper's stdout and stderr.
pub struct Logs {
    sources: Vec<Source>,
    dests: [Dest; 2],
    buf: Vec<u8>,
    lines: Vec<Vec<u8>>,
}

impl Logs {
    /// reaper's own log lines wait for this queue from now on (`collect_own`).
    pub fn open() -> Logs {
        let logs = Logs {
            sources: Vec::new(),
            dests: [Dest::new(1), Dest::new(2)],
            buf: Vec::new(),
            lines: Vec::new(),
        };
        crate::logger::divert();
        logs
    }

    /// Before reaper sleeps: its own lines logged since the last wake-up enter stderr's queue,
    /// after the commands' lines queued before them, and go out if stderr takes them now.
    pub fn before_sleep(&mut self) {
        if self.collect_own() {
            self.write_ready();
        }
    }

    /// reaper's own lines, logged meanwhile, enter stderr's queue (whole lines of at most
    /// `PIPE_BUF`: one longer is cut in pieces). Whether there were any.
    fn collect_own(&mut self) -> bool {
        self.buf.clear();
        crate::logger::take_diverted(&mut self.buf);
        if self.buf.is_empty() {
            return false;
        }
        let dest = &mut self.dests[1];
        for line in self.buf.split_inclusive(|&b| b == b'\n') {
            for piece in line.chunks(PIPE_BUF - 1) {
                let mut piece = piece.to_vec();
                if piece.last() != Some(&b'\n') {
                    piece.push(b'\n');
                }
                if !dest.broken {
                    dest.queue.push_within("reaper", piece, REAPED_LIMIT);
                }
            }
        }
        true
    }

    /// The command `pid` named `name` writes to `output`'s pipes from now on.
    pub fn add(&mut self, pid: i32, name: &str, output: Output) {
        let name = clean_name(name);
        for (dest, fd) in [(0, output.stdout), (1, output.stderr)] {
            if self.dests[dest].broken {
                continue;
            }
            self.sources.push(Source {
                pid,
                name: name.clone(),
                dest,
                fd,
                framer: Framer::new(&name),
                ended: false,
                retry_at: None,
                failed: false,
            });
        }
    }

    /// How much the next read from `source` may take: as much as its destination has room for
    /// (the worst case: empty lines, each a whole prefix), 0 when it must wait.
    fn chunk(&self, source: &Source) -> usize {
        let dest = &self.dests[source.dest];
        if dest.dropping || dest.broken {
            return READ_CHUNK;
        }
        let per_byte = source.framer.worst_case(1) - PIPE_BUF;
        let chunk = dest.queue.room().saturating_sub(PIPE_BUF) / per_byte;
        if chunk < MIN_CHUNK { 0 } else { chunk.min(READ_CHUNK) }
    }

    /// What to poll: the pipes that may be read now (POLLIN), and reaper's stdout or stderr
    /// when lines wait for it (POLLOUT). Nothing waiting, no pipe open: nothing at all.
    pub fn interest(&self) -> Vec<PollFd<'_>> {
        let mut fds: Vec<PollFd<'_>> = (self.sources.iter())
            .filter(|s| s.retry_at.is_none() && self.chunk(s) > 0)
            .map(|s| PollFd::new(s.fd.as_fd(), PollFlags::POLLIN))
            .collect();
        for (_, dest) in
            self.dests.iter().enumerate().filter(|(d, dest)| dest.wants_write() && !self.waits_for_other(*d))
        {
            fds.push(PollFd::new(stdio(dest.fd), PollFlags::POLLOUT));
        }
        fds
    }

    /// When a stalled reader's grace ends (lines are dropped from then on), or a failed
    /// destination or pipe is tried again.
    pub fn deadline(&self) -> Option<Instant> {
        let stalls =
            self.dests.iter().filter(|d| !d.dropping).filter_map(|d| d.held_since).map(|t| t + STALL);
        let retries = self.dests.iter().filter_map(|d| d.retry_at);
        stalls.chain(retries).chain(self.sources.iter().filter_map(|s| s.retry_at)).min()
    }

    /// After a wake-up (the signals and reaps done): `ready` is what poll said for the
    /// descriptors of `interest`, by number. Writes what fits, reads what may be read (bounded),
    /// writes again.
    pub fn pump(&mut self, ready: &[(RawFd, PollFlags)], now: Instant) {
        self.collect_own();
        for dest in &mut self.dests {
            if dest.retry_at.is_some_and(|t| now >= t) {
                dest.retry_at = None;
            }
        }
        for source in &mut self.sources {
            if source.retry_at.is_some_and(|t| now >= t) {
                source.retry_at = None;
            }
        }
        for (d, name) in NAMES.iter().enumerate() {
            if ready.iter().any(|(fd, r)| *fd == self.dests[d].fd && !r.is_empty()) {
                self.write(d);
            }
            let dest = &mut self.dests[d];
            if !dest.dropping && dest.held_since.is_some_and(|t| now >= t + STALL) {
                dest.dropping = true;
                log::warn!(
                    "reaper's {} took nothing for {}s: the commands' lines that do not fit are dropped \
                     until it does",
                    name,
                    STALL.as_secs()
                );
            }
        }
        for i in 0..self.sources.len() {
            let fd = self.sources[i].fd.as_raw_fd();
            if ready.iter().any(|(r, flags)| *r == fd && !flags.is_empty()) {
                self.read(i, READ_PER_WAKEUP, None);
            }
        }
        self.write_ready();
        self.close_finished();
        for d in 0..2 {
            let held = self.sources.iter().any(|s| s.dest == d && self.chunk(s) == 0);
            let dest = &mut self.dests[d];
            dest.held_since = if held { Some(dest.held_since.unwrap_or(now)) } else { None };
        }
    }

    /// The command `pid` was reaped: what its pipes hold now goes out (its last line with a
    /// newline added if it had none) before its exit is logged. A pipe that a process it left
    /// behind still holds open stays, under the same name, until its end (its last line too).
    pub fn reaped(&mut self, pid: i32) {
        self.collect_own();
        for i in 0..self.sources.len() {
            // At its end, the last line is flushed. A pipe still open is shared with a process
            // the command left behind: the unfinished line may be that one's, and waits.
            if self.sources[i].pid == pid {
                self.read(i, REAPED_LIMIT, Some(REAPED_LIMIT));
            }
        }
        self.write_ready();
        self.close_finished();
    }

    /// reaper is about to exit: everything readable is read, every last line flushed, and the
    /// readers get `EXIT_GRACE` to take what is queued. What they leave is lost: one warning
    /// says how much (as do drops not reported yet).
    pub fn finish(&mut self) {
        self.collect_own();
        for i in 0..self.sources.len() {
            self.read(i, REAPED_LIMIT, Some(REAPED_LIMIT));
            self.flush(i);
        }
        self.sources.clear();
        self.collect_own();
        let give_up = Instant::now() + EXIT_GRACE;
        loop {
            let mut fds: Vec<PollFd<'_>> = (self.dests.iter())
                .filter(|d| d.wants_write())
                .map(|d| PollFd::new(stdio(d.fd), PollFlags::POLLOUT))
                .collect();
            if fds.is_empty() {
                break;
            }
            let left = give_up.saturating_duration_since(Instant::now());
            let ms = PollTimeout::try_from(left.as_millis().min(1000) as i32).unwrap_or(PollTimeout::ZERO);
            match poll(&mut fds, ms) {
                Ok(0) => break,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => break,
            }
            let ready: Vec<RawFd> = (fds.iter())
                .filter(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .map(|f| f.as_fd().as_raw_fd())
                .collect();
            drop(fds);
            for d in 0..2 {
                if ready.contains(&self.dests[d].fd) {
                    self.write(d);
                }
            }
        }
        self.collect_own();
        crate::logger::undivert();
        for (d, what) in NAMES.iter().enumerate() {
            let lost = self.dests[d].queue.abandon();
            if lost > 0 {
                log::warn!("{lost} lines for reaper's {what} dropped or lost at exit: nobody took them");
            }
        }
    }

    /// Reads up to `max` bytes from source `i`, frames them and queues the lines (within
    /// `limit` for the queue instead of its bound, if given). At the pipe's end (or on an
    /// error) the last line is flushed and the descriptor marked for closing.
    fn read(&mut self, i: usize, max: usize, limit: Option<usize>) {
        let mut total = 0;
        while total < max {
            let chunk = match limit {
                Some(_) => READ_CHUNK,
                None => self.chunk(&self.sources[i]),
            }
            .min(max - total);
            if chunk == 0 {
                return;
            }
            self.buf.resize(chunk, 0);
            let source = &mut self.sources[i];
            // SAFETY: read(2) into our own buffer of `chunk` bytes.
            let n = unsafe { libc::read(source.fd.as_raw_fd(), self.buf.as_mut_ptr().cast(), chunk) };
            if n > 0 {
                let n = n as usize;
                total += n;
                source.framer.feed(&self.buf[..n], &mut self.lines);
                self.queue(i, limit);
                continue;
            }
            if n < 0 {
                match Errno::last() {
                    Errno::EAGAIN => return,
                    Errno::EINTR => continue,
                    e => {
                        source.retry_at = Some(Instant::now() + STALL);
                        if !source.failed {
                            source.failed = true;
                            let stream = ["stdout", "stderr"][source.dest];
                            log::warn!(
                                "cannot read {}'s {stream}: {}; trying again every {}s",
                                source.name,
                                crate::error::os(e),
                                STALL.as_secs()
                            );
                        }
                        return;
                    }
                }
            }
            // The end: every writer is gone.
            self.flush(i);
            self.sources[i].ended = true;
            return;
        }
    }

    /// Source `i`'s unfinished line leaves now, with a newline added.
    fn flush(&mut self, i: usize) {
        self.sources[i].framer.finish(&mut self.lines);
        self.queue(i, Some(REAPED_LIMIT));
    }

    /// The lines framed from source `i` enter its destination's queue.
    fn queue(&mut self, i: usize, limit: Option<usize>) {
        let source = &self.sources[i];
        let dest = &mut self.dests[source.dest];
        for line in self.lines.drain(..) {
            if dest.broken {
                continue;
            }
            match limit {
                Some(limit) => dest.queue.push_within(&source.name, line, limit),
                None => dest.queue.push(&source.name, line),
            };
        }
    }

    /// Pipes whose end was read are closed, and so are those whose destination failed for good:
    /// their commands' next write fails (EPIPE, SIGPIPE) as if they wrote there themselves.
    fn close_finished(&mut self) {
        let dests = &self.dests;
        self.sources.retain(|s| !s.ended && !dests[s.dest].broken);
    }

    /// Each destination with lines waiting gets what it takes now without blocking.
    fn write_ready(&mut self) {
        for d in 0..2 {
            if self.dests[d].wants_write() && writable(self.dests[d].fd) {
                self.write(d);
            }
        }
    }

    /// A terminal written without blocking takes part of a write when its room is short:
    /// while the other stream's line on the same terminal is half out, destination `d`'s lines
    /// would land in its middle, so `d` waits (it is not polled meanwhile: no spin). A pipe
    /// takes a write of PIPE_BUF whole.
    fn waits_for_other(&self, d: usize) -> bool {
        let (this, other) = (&self.dests[d], &self.dests[1 - d]);
        this.tty.is_some() && this.tty == other.tty && other.queue.mid_line()
    }

    /// Destination `d` said POLLOUT: one write of at most `PIPE_BUF` bytes of whole lines, and
    /// more while poll(2) keeps saying POLLOUT.
    fn write(&mut self, d: usize) {
        if self.waits_for_other(d) {
            return;
        }
        let dest = &mut self.dests[d];
        while !dest.queue.is_empty() && !dest.broken {
            self.buf.clear();
            dest.queue.fill(PIPE_BUF, &mut self.buf);
            let n = write_nonblocking(dest.fd, &self.buf, dest.nonblock_each);
            if n == 0 {
                return;
            }
            if n > 0 {
                dest.queue.consume(n as usize);
                dest.held_since = None;
                dest.dropping = false;
                dest.failing = false;
            } else {
                match Errno::last() {
                    Errno::EINTR => continue,
                    Errno::EAGAIN => return,
                    // Only a reader gone is for good. A full disk (ENOSPC, EDQUOT), an I/O
                    // error, a refused write: the commands writing there themselves would get
                    // the error and run on, not a SIGPIPE. So the lines wait, as for a stalled
                    // reader (then are dropped, counted), and the write is tried again later.
                    e if e != Errno::EPIPE => {
                        dest.retry_at = Some(Instant::now() + STALL);
                        if !dest.failing {
                            dest.failing = true;
                            log::warn!(
                                "cannot write the commands' lines to reaper's {}: {}; trying again every {}s",
                                NAMES[d],
                                crate::error::os(e),
                                STALL.as_secs()
                            );
                        }
                        return;
                    }
                    e => {
                        dest.broken = true;
                        let lost = dest.queue.abandon();
                        let what = NAMES[d];
                        log::warn!(
                            "cannot write the commands' lines to reaper's {what}: {}; {lost} lines lost, \
                             the commands' {what} pipes closed",
                            crate::error::os(e)
                        );
                        return;
                    }
                }
            }
            if !writable(dest.fd) {
                return;
            }
        }
    }
}

/// One write(2) of `buf` to a destination; with `nonblock_each`, O_NONBLOCK is set on its
/// description for just this write (a terminal that could not be reopened).
fn write_nonblocking(fd: RawFd, buf: &[u8], nonblock_each: bool) -> isize {
    // SAFETY: F_GETFL only queries.
    let flags = if nonblock_each { unsafe { libc::fcntl(fd, libc::F_GETFL) } } else { -1 };
    let toggle = flags >= 0 && flags & libc::O_NONBLOCK == 0;
    // SAFETY: F_SETFL on reaper's own stdout or stderr; put back right after the write.
    let toggled = toggle && unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } == 0;
    // SAFETY: write(2) from our own buffer to fd 1 or 2 (always open: lib.rs fill_stdio), or
    // to the terminal's own description that `Dest` holds.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if toggled {
        let errno = Errno::last();
        // SAFETY: as above: the flags as they were.
        unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
        Errno::set(errno);
    }
    n
}

/// The device number of the terminal at `fd`.
fn device(fd: RawFd) -> Option<u64> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat(2) fills in the struct it is given.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: fstat succeeded: the struct is initialized.
    Some(unsafe { st.assume_init() }.st_rdev)
}

/// `fd` is a terminal.
fn terminal(fd: RawFd) -> bool {
    // SAFETY: isatty(3) only queries (TCGETS).
    unsafe { libc::isatty(fd) == 1 }
}

/// The terminal at `fd` (1 or 2) opened anew, write-only and non-blocking: a description of
/// reaper's own. O_NOCTTY: reaper as PID 1 of a session without a terminal would take it as
/// its controlling terminal otherwise.
fn reopen(fd: RawFd) -> Result<OwnedFd, Errno> {
    let path = if fd == 1 { c"/proc/self/fd/1" } else { c"/proc/self/fd/2" };
    let flags = libc::O_WRONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: open(2) of a static NUL-terminated path; the descriptor is owned at once.
    let own = unsafe { libc::open(path.as_ptr(), flags) };
    if own < 0 {
        return Err(Errno::last());
    }
    // SAFETY: just opened, ours alone.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(own) })
}

/// reaper's stdout or stderr, borrowed.
fn stdio(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: fds 0-2 stay open for reaper's whole life (lib.rs fill_stdio fills holes); a
    // terminal's own description lives as long as the `Logs` that uses it.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// poll(2) says a write to `fd` would not block now.
fn writable(fd: RawFd) -> bool {
    let mut fds = [PollFd::new(stdio(fd), PollFlags::POLLOUT)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(1))
        && fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLOUT | PollFlags::POLLERR | PollFlags::POLLHUP))
}

//! Runs `reaper --probe`'s checks ([`probe`] parses them) against one deadline: non-blocking
//! sockets and poll(2) with the time that is left, so no peer can hold reaper longer, not one
//! that accepts and never answers, nor one that sends a byte a second. Names come from
//! /etc/hosts only: no DNS (see docs/probe.md).

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime};

use crate::error::os;
use crate::probe::{self, Check, Host, Outcome};

/// At most this much of /etc/hosts is read (it is the container's, but a mounted one is
/// anyone's): far more than any real one.
const HOSTS_LIMIT: u64 = 64 * 1024;

/// At most this much of an HTTP answer is read: the status line comes first.
const ANSWER_LIMIT: usize = 1024;

/// Runs every check, prints one line on stdout; 0 when all passed, else 1.
pub fn main(checks: &[(String, Check)], timeout: Duration, max_zombies: Option<u64>) -> i32 {
    let deadline = Instant::now() + timeout;
    let mut hosts = None;
    let mut outcomes = Vec::new();
    for (name, check) in checks {
        let result = if Instant::now() >= deadline {
            Err("not run: earlier checks used up --timeout".to_owned())
        } else {
            run(check, deadline, &mut hosts)
        };
        let (passed, detail) = match result {
            Ok((passed, detail)) => (passed, detail),
            Err(why) => (false, why),
        };
        outcomes.push(Outcome { name: name.clone(), passed, detail });
    }
    if let Some(max) = max_zombies {
        let (passed, detail) = match crate::ps::read_proc() {
            Ok(procs) => {
                let n = procs.iter().filter(|p| p.state == 'Z').count() as u64;
                (n <= max, format!("{n} zombie{}", if n == 1 { "" } else { "s" }))
            }
            Err(e) => (false, e.message()),
        };
        outcomes.push(Outcome { name: format!("--max-zombies {max}"), passed, detail });
    }
    let (line, passed) = probe::report(&outcomes);
    println(&line);
    i32::from(!passed)
}

fn println(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// (passed, what was seen), or why the check could not be made (a failure too).
fn run(check: &Check, deadline: Instant, hosts: &mut Option<Vec<u8>>) -> Result<(bool, String), String> {
    match check {
        Check::Tcp { host, port } => {
            connect_any(host, *port, deadline, hosts)?;
            Ok((true, "connected".into()))
        }
        Check::Http { host, port, authority, path } => {
            let fd = connect_any(host, *port, deadline, hosts)?;
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: reaper-probe\r\nAccept: */*\r\n\
                 Connection: close\r\n\r\n"
            );
            send_all(&fd, request.as_bytes(), deadline)?;
            let answer = status_line(&fd, deadline)?;
            match probe::status_code(&answer) {
                Some(code) => Ok((probe::healthy(code), probe::first_line(&answer))),
                None if answer.is_empty() => Err("closed without an answer".into()),
                None => Err(format!("not an HTTP answer: {}", probe::first_line(&answer))),
            }
        }
        Check::Unix(path) => {
            let (addr, len) = unix_address(path);
            connect(libc::AF_UNIX, &addr, len, deadline)?;
            Ok((true, "connected".into()))
        }
        Check::File { path, within } => {
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).map_err(os)?;
            let age = SystemTime::now().duration_since(modified).ok();
            Ok(probe::file_outcome(age, *within))
        }
    }
}

/// A connection to the first of `host`'s addresses that accepts one.
fn connect_any(
    host: &Host,
    port: u16,
    deadline: Instant,
    hosts: &mut Option<Vec<u8>>,
) -> Result<OwnedFd, String> {
    let addresses = match host {
        Host::Ip(ip) => vec![*ip],
        Host::Name(name) => {
            let found = probe::lookup(hosts.get_or_insert_with(read_hosts), name);
            match found.is_empty() {
                false => found,
                // No /etc/hosts (a bare chroot, a scratch image run by hand): localhost anyway.
                true if name == "localhost" => vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()],
                true => return Err(format!("no address for '{name}' in /etc/hosts; reaper does no DNS")),
            }
        }
    };
    // Each address's failure: the last alone would hide a refusal on 127.0.0.1 behind ::1's
    // "Cannot assign requested address" where IPv6 is off.
    let several = addresses.len() > 1;
    let mut failures = Vec::new();
    for ip in addresses {
        let (addr, len, family) = ip_address(ip, port);
        match connect(family, &addr, len, deadline) {
            Ok(fd) => return Ok(fd),
            Err(e) if several => failures.push(match ip {
                IpAddr::V4(_) => format!("{ip}: {e}"),
                IpAddr::V6(_) => format!("[{ip}]: {e}"),
            }),
            Err(e) => failures.push(e),
        }
    }
    Err(failures.join(", "))
}

fn read_hosts() -> Vec<u8> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut text = Vec::new();
    // O_NONBLOCK: a FIFO put there must not hold the open past the deadline (it reads as empty).
    let file = std::fs::File::options().read(true).custom_flags(libc::O_NONBLOCK).open("/etc/hosts");
    if let Ok(f) = file {
        // A read error midway, or a file over the limit, leaves the whole lines that were
        // read: names in them still resolve.
        let whole =
            f.take(HOSTS_LIMIT + 1).read_to_end(&mut text).is_ok() && text.len() as u64 <= HOSTS_LIMIT;
        if !whole {
            text.truncate(HOSTS_LIMIT as usize);
            text.truncate(probe::whole_lines(&text));
        }
    }
    text
}

fn ip_address(ip: IpAddr, port: u16) -> (libc::sockaddr_storage, libc::socklen_t, libc::c_int) {
    // SAFETY: sockaddr_storage is plain old data, all zeroes a valid (unspecified) address.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let (len, family) = match ip {
        IpAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is larger than and aligned for every sockaddr type.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = port.to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(v4.octets());
            (std::mem::size_of::<libc::sockaddr_in>(), libc::AF_INET)
        }
        IpAddr::V6(v6) => {
            // SAFETY: as above.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = port.to_be();
            sin6.sin6_addr.s6_addr = v6.octets();
            (std::mem::size_of::<libc::sockaddr_in6>(), libc::AF_INET6)
        }
    };
    (storage, len as libc::socklen_t, family)
}

/// `path` as a sockaddr_un; `@NAME` is the abstract NAME (a NUL first, no NUL after). The
/// parser keeps `path` within sun_path with room for the NUL.
fn unix_address(path: &str) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data, all zeroes a valid (unspecified) address.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    // SAFETY: sockaddr_storage is larger than and aligned for every sockaddr type.
    let sun = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_un) };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let (bytes, skip) = match path.strip_prefix('@') {
        Some(name) => (name.as_bytes(), 1),
        None => (path.as_bytes(), 0),
    };
    for (slot, &b) in sun.sun_path.iter_mut().skip(skip).zip(bytes) {
        *slot = b as libc::c_char;
    }
    // The family, then the path: with its NUL, or the abstract name's leading NUL.
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    (storage, len as libc::socklen_t)
}

/// A connected stream socket, or why not by `deadline`.
fn connect(
    family: libc::c_int,
    addr: &libc::sockaddr_storage,
    len: libc::socklen_t,
    deadline: Instant,
) -> Result<OwnedFd, String> {
    let flags = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket(2) takes plain integers.
    let fd = unsafe { libc::socket(family, flags, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", os(std::io::Error::last_os_error())));
    }
    // SAFETY: fd is a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: addr is a valid sockaddr of `len` bytes.
    if unsafe { libc::connect(fd.as_raw_fd(), addr as *const _ as *const libc::sockaddr, len) } == 0 {
        return Ok(fd);
    }
    let e = std::io::Error::last_os_error();
    // A Unix socket whose backlog is full says EAGAIN: it is not accepting, a failure.
    if e.raw_os_error() != Some(libc::EINPROGRESS) {
        return Err(os(e));
    }
    if !wait(&fd, libc::POLLOUT, deadline)? {
        return Err("timed out connecting".into());
    }
    let mut err: libc::c_int = 0;
    let mut size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt(SO_ERROR) writes one c_int into err.
    let got = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut _ as *mut _,
            &mut size,
        )
    };
    match (got, err) {
        (0, 0) => Ok(fd),
        (0, err) => Err(os(std::io::Error::from_raw_os_error(err))),
        _ => Err(os(std::io::Error::last_os_error())),
    }
}

/// Whether `fd` got ready for `events` before `deadline` (an error or hang-up counts as ready:
/// the next call reports it).
fn wait(fd: &OwnedFd, events: libc::c_short, deadline: Instant) -> Result<bool, String> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        // Rounded up, so that the last sub-millisecond does not spin.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events, revents: 0 };
        // SAFETY: poll(2) on one valid pollfd.
        match unsafe { libc::poll(&mut pfd, 1, ms) } {
            n if n > 0 => return Ok(true),
            0 => {}
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(format!("poll: {}", os(e)));
                }
            }
        }
    }
}

fn send_all(fd: &OwnedFd, mut data: &[u8], deadline: Instant) -> Result<(), String> {
    while !data.is_empty() {
        if !wait(fd, libc::POLLOUT, deadline)? {
            return Err("timed out sending the request".into());
        }
        // SAFETY: send(2) reads data.len() bytes of data; MSG_NOSIGNAL: a closed peer is an
        // error, not a SIGPIPE.
        let n = unsafe { libc::send(fd.as_raw_fd(), data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::Interrupted {
                return Err(os(e));
            }
        } else {
            data = &data[n as usize..];
        }
    }
    Ok(())
}

/// What the peer sends up to the end of its first line, the end of the connection or
/// [`ANSWER_LIMIT`] bytes, whichever comes first, by `deadline`.
fn status_line(fd: &OwnedFd, deadline: Instant) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; ANSWER_LIMIT];
    let mut len = 0;
    while len < ANSWER_LIMIT && !buf[..len].contains(&b'\n') {
        if !wait(fd, libc::POLLIN, deadline)? {
            return Err(match len {
                0 => "timed out waiting for an answer".into(),
                _ => format!("timed out in the status line: {}", probe::first_line(&buf[..len])),
            });
        }
        // SAFETY: read(2) into the free part of buf.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf[len..].as_mut_ptr().cast(), ANSWER_LIMIT - len) };
        match n {
            0 => break,
            n if n > 0 => len += n as usize,
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(os(e));
                }
            }
        }
    }
    buf.truncate(len);
    Ok(buf)
}

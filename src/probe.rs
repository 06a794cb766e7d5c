//! `reaper --probe CHECK`: what a CHECK means and what its answer says, without any I/O.
//! [`parse`] reads one CHECK, [`lookup`] finds a name in /etc/hosts, [`status_code`] reads an
//! HTTP status line, [`report`] makes the one line a health check prints. [`prober`] does the
//! connecting and reading.
//!
//! [`prober`]: crate::prober

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::text;

/// `--timeout`'s default: under the 30 s of Docker's HEALTHCHECK, above a loaded machine's
/// connect time, and no longer than a stuck peer deserves. (Kubernetes' exec probes time out
/// after `timeoutSeconds`, 1 s by default: set `--timeout` below it, or raise it.)
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest `unix:` path: sockaddr_un's 108 bytes, less the terminating NUL.
pub const MAX_SOCKET_PATH: usize = 107;

/// At most this many addresses of one name are tried (a hosts file may list any number).
pub const MAX_ADDRESSES: usize = 4;

#[derive(Debug, Clone, PartialEq)]
pub enum Host {
    Ip(IpAddr),
    /// Lower-case; looked up in /etc/hosts (`localhost` also without it). Never DNS.
    Name(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// `tcp:HOST:PORT`: a connection is accepted.
    Tcp { host: Host, port: u16 },
    /// `http://HOST[:PORT]/PATH`: a GET is answered with a 2xx or 3xx status line. `authority`
    /// is sent as the Host header, as given.
    Http { host: Host, port: u16, authority: String, path: String },
    /// `unix:PATH`: a stream socket accepts a connection; `@NAME` is an abstract socket.
    Unix(String),
    /// `file:PATH` exists; `fresh:DURATION:PATH` was also modified within `within`.
    File { path: String, within: Option<Duration> },
}

const KINDS: &str = "tcp:HOST:PORT, http://HOST[:PORT]/PATH, unix:PATH, file:PATH, fresh:DURATION:PATH";

/// One CHECK, or why it is not one. `duration` parses `fresh:`'s DURATION as every other
/// option's (it lives in `options`, which calls this: passed in, no import cycle).
pub fn parse(spec: &str, duration: impl Fn(&str) -> Result<Duration, String>) -> Result<Check, String> {
    // The report quotes the check on one line; in an HTTP path a CR or LF would forge a header.
    if spec.chars().any(char::is_control) {
        return Err("control character in the check".into());
    }
    let Some((kind, rest)) = spec.split_once(':') else {
        return Err(format!("not a check (one of {KINDS})"));
    };
    match kind {
        "tcp" => match authority(rest)? {
            (host, Some(port)) => Ok(Check::Tcp { host, port }),
            (_, None) => Err("missing port (tcp:HOST:PORT)".into()),
        },
        "http" => {
            let rest = rest.strip_prefix("//").ok_or("expected http://HOST[:PORT]/PATH")?;
            let (auth, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
            // Anything else would end the request line early or forge a header (space, CR,
            // LF), is not allowed in a request target (controls, non-ASCII), or is never sent
            // (a #fragment).
            if !path.bytes().all(|b| (b'!'..=b'~').contains(&b) && b != b'#') {
                return Err("the path must be printable ASCII, without spaces or '#'".into());
            }
            let (host, port) = authority(auth)?;
            Ok(Check::Http { host, port: port.unwrap_or(80), authority: auth.into(), path: path.into() })
        }
        "https" => {
            Err("plain HTTP only: reaper speaks no TLS (probe a plain-HTTP port, or tcp:HOST:PORT)".into())
        }
        "unix" => {
            let path = file_path(rest)?;
            if path.len() > MAX_SOCKET_PATH || path == "@" {
                return Err(format!("a socket path has 1 to {MAX_SOCKET_PATH} bytes"));
            }
            Ok(Check::Unix(path))
        }
        "file" => Ok(Check::File { path: file_path(rest)?, within: None }),
        "fresh" => {
            let (d, path) = rest.split_once(':').ok_or("expected fresh:DURATION:PATH")?;
            let within = duration(d)?;
            if within.is_zero() {
                return Err("the DURATION of fresh: must be more than 0".into());
            }
            Ok(Check::File { path: file_path(path)?, within: Some(within) })
        }
        _ => Err(format!("unknown kind '{kind}:' (one of {KINDS})")),
    }
}

/// `HOST` or `HOST:PORT`, IPv6 in brackets.
fn authority(s: &str) -> Result<(Host, Option<u16>), String> {
    let (host, port) = match s.strip_prefix('[') {
        Some(v6) => {
            let (inside, after) = v6.split_once(']').ok_or("missing ']' after the IPv6 address")?;
            let ip: Ipv6Addr = inside.parse().map_err(|_| format!("bad IPv6 address '{inside}'"))?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or("expected :PORT after ']'")?),
            };
            (Host::Ip(ip.into()), port)
        }
        None => {
            let (host, port) = s.split_once(':').map_or((s, None), |(h, p)| (h, Some(p)));
            if port.is_some_and(|p| p.contains(':')) {
                return Err("an IPv6 address goes in brackets: [::1]:8080".into());
            }
            (host_name(host)?, port)
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            crate::ps::number(p)
                .and_then(|n| u16::try_from(n).ok())
                .filter(|&n| n != 0)
                .ok_or_else(|| format!("bad port '{p}' (1-65535)"))?,
        ),
    };
    Ok((host, port))
}

fn host_name(h: &str) -> Result<Host, String> {
    if h.is_empty() {
        return Err("empty host".into());
    }
    if h.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let ip: Ipv4Addr = h.parse().map_err(|_| format!("bad IPv4 address '{h}'"))?;
        return Ok(Host::Ip(ip.into()));
    }
    if h.len() > 253 || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
        return Err(format!("bad host '{h}' (an IP address, localhost, or a name in /etc/hosts)"));
    }
    Ok(Host::Name(h.to_ascii_lowercase()))
}

fn file_path(p: &str) -> Result<String, String> {
    if p.is_empty() {
        return Err("empty path".into());
    }
    Ok(p.into())
}

/// The addresses /etc/hosts (`hosts`, its bytes) gives `name` (lower-case), in file order,
/// at most [`MAX_ADDRESSES`]. Lines that are not `ADDRESS NAME...` are skipped, as the C
/// library's resolver skips them; scoped IPv6 addresses (`fe80::1%eth0`) too.
pub fn lookup(hosts: &[u8], name: &str) -> Vec<IpAddr> {
    let mut found = Vec::new();
    for line in hosts.split(|&b| b == b'\n') {
        let line = line.split(|&b| b == b'#').next().unwrap_or_default();
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let mut fields = line.split_ascii_whitespace();
        let Some(ip) = fields.next().and_then(|a| a.parse::<IpAddr>().ok()) else {
            continue;
        };
        if fields.any(|n| n.eq_ignore_ascii_case(name)) && !found.contains(&ip) {
            found.push(ip);
            if found.len() == MAX_ADDRESSES {
                break;
            }
        }
    }
    found
}

/// How much of a hosts file read only in part (cut at a size limit, or by a read error) can
/// be used: up to its last newline. A cut line would give a prefix of a name (`db` of
/// `dbserver`) that line's address.
pub fn whole_lines(part: &[u8]) -> usize {
    part.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`).
pub fn status_code(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let [minor, b' ', a, b, c, ref tail @ ..] = *rest else {
        return None;
    };
    let digit = |d: u8| d.is_ascii_digit().then(|| u16::from(d - b'0'));
    digit(minor)?;
    if !matches!(tail.first(), None | Some(b' ' | b'\r' | b'\n')) {
        return None;
    }
    Some(digit(a)? * 100 + digit(b)? * 10 + digit(c)?)
}

/// Healthy by the status code: 2xx and 3xx (a redirect is an answer from a live server).
pub fn healthy(code: u16) -> bool {
    (200..400).contains(&code)
}

/// The first line of what the peer sent, printable and at most 80 columns, for the report.
pub fn first_line(answer: &[u8]) -> String {
    let end = answer.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(answer.len());
    text::fit(&text::printable(&answer[..end]), 80).to_owned()
}

/// One check's outcome: passed, and what was seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// The line a health check prints (Docker keeps it in `docker inspect`), and whether every
/// check passed: `healthy: CHECK ok (DETAIL)` or `unhealthy: CHECK failed (DETAIL); ...`.
pub fn report(outcomes: &[Outcome]) -> (String, bool) {
    let all = outcomes.iter().all(|o| o.passed);
    let parts: Vec<String> = outcomes
        .iter()
        .map(|o| {
            let verdict = if o.passed { "ok" } else { "failed" };
            format!(
                "{} {verdict} ({})",
                text::printable(o.name.as_bytes()),
                text::printable(o.detail.as_bytes())
            )
        })
        .collect();
    (format!("{}: {}", if all { "healthy" } else { "unhealthy" }, parts.join("; ")), all)
}

/// The detail of a file check: `age` since its last modification (`None`: in the future, as
/// a clock step can make it), checked against `within`.
pub fn file_outcome(age: Option<Duration>, within: Option<Duration>) -> (bool, String) {
    let age = age.unwrap_or_default();
    match within {
        None => (true, "exists".into()),
        Some(w) => (age <= w, format!("modified {} ago", crate::ps::age(age.as_secs()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dur(d: &str) -> Result<Duration, String> {
        crate::options::duration(d).map_err(|e| e.message())
    }

    fn check(spec: &str) -> Check {
        parse(spec, dur).unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    fn error(spec: &str) -> String {
        match parse(spec, dur) {
            Ok(c) => panic!("{spec}: accepted as {c:?}"),
            Err(e) => e,
        }
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Host {
        Host::Ip(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
    }

    #[test]
    fn tcp_takes_ipv4_bracketed_ipv6_and_names() {
        assert_eq!(check("tcp:127.0.0.1:8080"), Check::Tcp { host: v4(127, 0, 0, 1), port: 8080 });
        assert_eq!(check("tcp:[::1]:1"), Check::Tcp { host: Host::Ip(Ipv6Addr::LOCALHOST.into()), port: 1 });
        assert_eq!(
            check("tcp:Db-1.internal_x:65535"),
            Check::Tcp { host: Host::Name("db-1.internal_x".into()), port: 65535 }
        );
        assert_eq!(
            check("tcp:localhost:05432"),
            Check::Tcp { host: Host::Name("localhost".into()), port: 5432 }
        );
    }

    #[test]
    fn bad_hosts_and_ports_are_refused() {
        assert_eq!(error("tcp:127.0.0.1"), "missing port (tcp:HOST:PORT)");
        assert_eq!(error("tcp:[::1]"), "missing port (tcp:HOST:PORT)");
        assert_eq!(error("tcp::80"), "empty host");
        assert_eq!(error("tcp:h:0"), "bad port '0' (1-65535)");
        assert_eq!(error("tcp:h:65536"), "bad port '65536' (1-65535)");
        assert_eq!(error("tcp:h:"), "bad port '' (1-65535)");
        assert_eq!(error("tcp:h:+80"), "bad port '+80' (1-65535)");
        assert_eq!(error("tcp:h:99999999999999999999"), "bad port '99999999999999999999' (1-65535)");
        assert_eq!(error("tcp:::1:80"), "an IPv6 address goes in brackets: [::1]:8080");
        assert_eq!(error("tcp:[::1:80"), "missing ']' after the IPv6 address");
        assert_eq!(error("tcp:[::g]:80"), "bad IPv6 address '::g'");
        assert_eq!(error("tcp:[127.0.0.1]:80"), "bad IPv6 address '127.0.0.1'");
        assert_eq!(error("tcp:[::1]80"), "expected :PORT after ']'");
        assert_eq!(error("tcp:1.2.3:80"), "bad IPv4 address '1.2.3'");
        assert_eq!(error("tcp:256.0.0.1:80"), "bad IPv4 address '256.0.0.1'");
        let bad_host =
            |h: &str| format!("bad host '{h}' (an IP address, localhost, or a name in /etc/hosts)");
        for h in ["a b", "a/b", "user@h", "h;", "é"] {
            assert_eq!(error(&format!("tcp:{h}:80")), bad_host(h), "{h:?}");
        }
        let long = "a".repeat(254);
        assert_eq!(error(&format!("tcp:{long}:80")), bad_host(&long));
        let longest = "a".repeat(253);
        assert_eq!(check(&format!("tcp:{longest}:80")), Check::Tcp { host: Host::Name(longest), port: 80 });
    }

    #[test]
    fn http_defaults_to_port_80_and_path_slash_and_keeps_the_authority() {
        assert_eq!(
            check("http://127.0.0.1:8080/healthz?full=1"),
            Check::Http {
                host: v4(127, 0, 0, 1),
                port: 8080,
                authority: "127.0.0.1:8080".into(),
                path: "/healthz?full=1".into()
            }
        );
        assert_eq!(
            check("http://LocalHost"),
            Check::Http {
                host: Host::Name("localhost".into()),
                port: 80,
                authority: "LocalHost".into(),
                path: "/".into()
            }
        );
        assert_eq!(
            check("http://[::1]/!~"),
            Check::Http {
                host: Host::Ip(Ipv6Addr::LOCALHOST.into()),
                port: 80,
                authority: "[::1]".into(),
                path: "/!~".into()
            }
        );
    }

    #[test]
    fn http_paths_that_could_forge_a_request_are_refused() {
        let msg = "the path must be printable ASCII, without spaces or '#'";
        for path in ["/a b", "/é", "/#top", "/\u{a0}"] {
            assert_eq!(error(&format!("http://h{path}")), msg, "{path:?}");
        }
        for path in ["/a\r\nX-Evil: 1", "/\t", "/\x7f", "/\u{1f}", "/a\0", "/\u{85}"] {
            assert_eq!(error(&format!("http://h{path}")), "control character in the check", "{path:?}");
        }
        assert_eq!(error("http:/h/"), "expected http://HOST[:PORT]/PATH");
        assert_eq!(error("http://:80/"), "empty host");
        assert_eq!(error("http:///"), "empty host");
        assert_eq!(error("http://h:0/"), "bad port '0' (1-65535)");
        assert!(error("https://h/").starts_with("plain HTTP only: reaper speaks no TLS"));
    }

    #[test]
    fn unix_file_and_fresh_take_paths_with_colons_and_spaces() {
        assert_eq!(check("unix:/run/app.sock"), Check::Unix("/run/app.sock".into()));
        assert_eq!(check("unix:@abstract"), Check::Unix("@abstract".into()));
        assert_eq!(check("file:/tmp/a b:c"), Check::File { path: "/tmp/a b:c".into(), within: None });
        assert_eq!(
            check("fresh:30s:/tmp/x:y"),
            Check::File { path: "/tmp/x:y".into(), within: Some(Duration::from_secs(30)) }
        );
        assert_eq!(
            check("fresh:1m 30s:rel"),
            Check::File { path: "rel".into(), within: Some(Duration::from_secs(90)) }
        );
        let longest = format!("/{}", "s".repeat(MAX_SOCKET_PATH - 1));
        assert_eq!(check(&format!("unix:{longest}")), Check::Unix(longest.clone()));
        let socket = "a socket path has 1 to 107 bytes";
        assert_eq!(error(&format!("unix:{longest}s")), socket);
        assert_eq!(error("unix:@"), socket);
        assert_eq!(error("unix:"), "empty path");
        assert_eq!(error("file:"), "empty path");
        assert_eq!(error("fresh:1s:"), "empty path");
        assert_eq!(error("file:/a\nb"), "control character in the check");
        assert_eq!(error("unix:/a\rb"), "control character in the check");
        assert_eq!(error("fresh:\n1s:/x"), "control character in the check");
        assert_eq!(error("tcp\r:h:1"), "control character in the check");
        assert_eq!(error("fresh:30s"), "expected fresh:DURATION:PATH");
        assert_eq!(error("fresh:0s:/x"), "the DURATION of fresh: must be more than 0");
        assert_eq!(error("fresh:soon:/x"), "invalid duration 'soon' (e.g. 500ms, 3s, 1m)");
    }

    #[test]
    fn unknown_kinds_are_refused_with_the_list() {
        assert_eq!(error("ftp://h/"), format!("unknown kind 'ftp:' (one of {KINDS})"));
        assert_eq!(error("TCP:h:1"), format!("unknown kind 'TCP:' (one of {KINDS})"));
        assert_eq!(error("/tmp/x"), format!("not a check (one of {KINDS})"));
        assert_eq!(error(""), format!("not a check (one of {KINDS})"));
    }

    #[test]
    fn hosts_file_lookup() {
        let hosts =
            b"# comment localhost\n127.0.0.1\tlocalhost  ip6-localhost\n::1 localhost ip6-localhost # x\n\
            10.0.0.7 Db db.internal\nfe80::1%eth0 scoped\nnot-an-ip db\n\xff\xfe 10.9.9.9 db\n10.0.0.8 db\n\
            10.0.0.7 db\n   \n10.0.0.9 #db\n";
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(lookup(hosts, "localhost"), [ip("127.0.0.1"), ip("::1")]);
        assert_eq!(lookup(hosts, "db"), [ip("10.0.0.7"), ip("10.0.0.8")]);
        assert_eq!(lookup(hosts, "db.internal"), [ip("10.0.0.7")]);
        assert!(lookup(hosts, "scoped").is_empty());
        assert!(lookup(hosts, "comment").is_empty());
        assert!(lookup(hosts, "10.0.0.9").is_empty());
        assert!(lookup(b"", "db").is_empty());
        let many: String = (1..=9).map(|i| format!("10.0.0.{i} many\n")).collect();
        assert_eq!(lookup(many.as_bytes(), "many").len(), MAX_ADDRESSES);
        assert_eq!(lookup(many.as_bytes(), "many")[3], ip("10.0.0.4"));
    }

    #[test]
    fn a_hosts_file_read_in_part_keeps_its_whole_lines() {
        assert_eq!(whole_lines(b"127.0.0.1 a\n10.0.0.1 dbserv"), 12);
        assert_eq!(whole_lines(b"a\nb\n"), 4);
        assert_eq!(whole_lines(b"127.0.0.1 db"), 0);
        assert_eq!(whole_lines(b""), 0);
        let cut = b"127.0.0.1 a\n10.0.0.1 db";
        assert!(lookup(&cut[..whole_lines(cut)], "db").is_empty());
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_code(b"HTTP/1.0 301 Moved Permanently\r\n"), Some(301));
        assert_eq!(status_code(b"HTTP/1.1 500\r\n"), Some(500));
        assert_eq!(status_code(b"HTTP/1.1 204\n"), Some(204));
        assert_eq!(status_code(b"HTTP/1.1 999"), Some(999));
        assert_eq!(status_code(b"HTTP/1.1 099 x"), Some(99));
        for bad in [
            &b"HTTP/2 200 OK"[..],
            b"HTTP/1.x 200 OK",
            b"HTTP/1.1  200 OK",
            b"HTTP/1.1 20 OK",
            b"HTTP/1.1 2000 OK",
            b"HTTP/1.1 2x0 OK",
            b"HTTP/1.1 x00 OK",
            b"HTTP/1.1 20x OK",
            b"HTTP/1.1 200x",
            b"http/1.1 200 OK",
            b"SSH-2.0-OpenSSH_9.6\r\n",
            b"HTTP/1.1",
            b"",
        ] {
            assert_eq!(status_code(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert!(!healthy(199));
        assert!(healthy(200));
        assert!(healthy(399));
        assert!(!healthy(400));
        assert!(!healthy(500));
    }

    #[test]
    fn the_first_line_is_printable_and_short() {
        assert_eq!(first_line(b"HTTP/1.1 200 OK\r\nServer: x\r\n"), "HTTP/1.1 200 OK");
        assert_eq!(first_line(b"HTTP/1.1 500 \x1b[2Jboom\nX"), "HTTP/1.1 500 ?[2Jboom");
        assert_eq!(first_line(b"no end"), "no end");
        assert_eq!(first_line(b""), "");
        assert_eq!(first_line(&[b'a'; 200]), "a".repeat(80));
    }

    #[test]
    fn the_report_is_one_line_naming_each_check() {
        let o =
            |name: &str, passed, detail: &str| Outcome { name: name.into(), passed, detail: detail.into() };
        assert_eq!(
            report(&[o("tcp:h:1", true, "connected")]),
            ("healthy: tcp:h:1 ok (connected)".into(), true)
        );
        assert_eq!(
            report(&[o("tcp:h:1", true, "connected"), o("http://h/", false, "HTTP/1.1 500 x\u{202e}\n")]),
            ("unhealthy: tcp:h:1 ok (connected); http://h/ failed (HTTP/1.1 500 x??)".into(), false)
        );
        assert_eq!(report(&[o("a\u{1b}", false, "d")]), ("unhealthy: a? failed (d)".into(), false));
    }

    #[test]
    fn file_ages() {
        let s = Duration::from_secs;
        assert_eq!(file_outcome(Some(s(5)), None), (true, "exists".into()));
        assert_eq!(file_outcome(Some(s(30)), Some(s(30))), (true, "modified 30s ago".into()));
        assert_eq!(file_outcome(Some(s(31)), Some(s(30))), (false, "modified 31s ago".into()));
        assert_eq!(file_outcome(Some(s(125)), Some(s(60))), (false, "modified 2m05s ago".into()));
        assert_eq!(file_outcome(None, Some(s(1))), (true, "modified 0s ago".into()));
    }
}

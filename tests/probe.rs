//! `reaper --probe` against servers this test starts (python3 listeners: an HTTP server with a
//! chosen status, a port that refuses, a peer that accepts and never answers, one that drips a
//! byte a second, Unix sockets) and files it writes. The one-line report, the exit code (0 all
//! passed, 1 any failed, 2 usage) and the deadline are what the README promises.
//! Prints "skipped: no python3" without python3.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::*;

const T: Duration = Duration::from_secs(30);

/// The listener: MODE OUT [UNIX-PATH]. Writes its port (or "ready") to OUT once listening, and
/// each HTTP request it reads to OUT.request. Modes: an HTTP status (`200`, `301`, `500`), `v6`
/// (200 on [::1], OUT says "none" when there is no IPv6 loopback), `refuse` (bound, never
/// listening: connections are refused), `silent` (accepts, never answers), `drip` (answers a
/// byte a second), `garbage` (answers with something that is not HTTP), `unix` (a Unix stream
/// socket at UNIX-PATH, `@name` for an abstract one, accepting and holding connections).
const SERVER: &str = r#"
import os, socket, sys, time
mode, out = sys.argv[1], sys.argv[2]
def ready(text):
    open(out + ".tmp", "w").write(text)
    os.rename(out + ".tmp", out)
if mode == "unix":
    s = socket.socket(socket.AF_UNIX)
    path = sys.argv[3]
    s.bind("\0" + path[1:] if path.startswith("@") else path)
else:
    v6 = mode == "v6"
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
    try:
        s.bind(("::1" if v6 else "127.0.0.1", 0))
    except OSError:
        ready("none")
        time.sleep(1000)
if mode != "refuse":
    s.listen(16)
ready("ready" if mode == "unix" else str(s.getsockname()[1]))
held = []
while True:
    if mode == "refuse":
        time.sleep(1000)
    c, _ = s.accept()
    if mode in ("silent", "unix"):
        held.append(c)
        continue
    req = b""
    while b"\r\n\r\n" not in req:
        d = c.recv(4096)
        if not d:
            break
        req += d
    open(out + ".request", "wb").write(req)
    try:
        if mode == "drip":
            for b in b"HTTP/1.1 200 OK\r\n\r\n":
                c.send(bytes([b]))
                time.sleep(1)
        elif mode == "garbage":
            c.sendall(b"SSH-2.0-OpenSSH\x1b[2J\r\n")
        else:
            code = "200" if mode == "v6" else mode
            reason = {"200": "OK", "301": "Moved Permanently", "500": "Internal Server Error"}[code]
            c.sendall(("HTTP/1.1 %s %s\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n" % (code, reason)).encode())
    except OSError:
        pass
    c.close()
"#;

/// A python3 listener, killed (by pid) when dropped.
struct Server {
    child: Child,
    /// The port, or "ready" for a Unix socket, or "none".
    said: String,
    out: PathBuf,
}

impl Server {
    fn start(dir: &Path, mode: &str, extra: &[&str]) -> Server {
        let out = dir.join(format!("server-{mode}"));
        // Another server of this mode may have written here before.
        let _ = std::fs::remove_file(&out);
        let child = Command::new("python3")
            .args(["-c", SERVER, mode])
            .arg(&out)
            .args(extra)
            .stdin(Stdio::null())
            .spawn()
            .expect("python3");
        let mut server = Server { child, said: String::new(), out };
        assert!(
            wait_until(T, || {
                server.said = std::fs::read_to_string(&server.out).unwrap_or_default();
                !server.said.is_empty()
            }),
            "the {mode} server did not start"
        );
        server
    }

    fn port(&self) -> &str {
        &self.said
    }

    fn request(&self) -> String {
        std::fs::read_to_string(self.out.with_extension("request")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `reaper ARGS`: exit code, stdout, stderr, and how long it ran.
fn reaper(args: &[&str]) -> (i32, String, String, Duration) {
    let start = Instant::now();
    let mut cmd = reaper_cmd(Mode::Subreaper, args);
    let (code, out, err) = run_with_timeout(&mut cmd, T);
    (code, out, err, start.elapsed())
}

/// The report line and the exit code of `reaper --probe A --probe B ... --OPTION VALUE`.
fn probe(args: &[&str]) -> (i32, String) {
    let mut argv = Vec::new();
    let mut value = false;
    for a in args {
        // Options and their values as they are, every other argument a CHECK.
        if value || a.starts_with("--") {
            argv.push(*a);
            value = !value;
        } else {
            argv.extend(["--probe", a]);
        }
    }
    let (code, out, err, _) = reaper(&argv);
    assert_eq!(err, "", "{args:?}: nothing on stderr");
    assert_eq!(out.lines().count(), 1, "{args:?}: one line: {out:?}");
    (code, out.trim_end().to_owned())
}

fn python() -> bool {
    if which("python3").is_none() {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "skipped: no python3");
        return false;
    }
    true
}

#[test]
fn http_passes_on_2xx_and_3xx_with_a_well_formed_request() {
    if !python() {
        return;
    }
    let dir = tempdir("probe-http");
    let ok = Server::start(&dir, "200", &[]);
    let url = format!("http://127.0.0.1:{}/healthz?x=1", ok.port());
    assert_eq!(probe(&[&url]), (0, format!("healthy: {url} ok (HTTP/1.1 200 OK)")));
    let request = ok.request();
    assert!(
        request.starts_with(&format!("GET /healthz?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n", ok.port())),
        "{request:?}"
    );
    assert!(request.contains("\r\nConnection: close\r\n"), "{request:?}");
    assert!(request.ends_with("\r\n\r\n"), "{request:?}");

    let moved = Server::start(&dir, "301", &[]);
    let url = format!("http://localhost:{}", moved.port());
    assert_eq!(probe(&[&url]), (0, format!("healthy: {url} ok (HTTP/1.1 301 Moved Permanently)")));
    assert!(moved.request().starts_with("GET / HTTP/1.1\r\nHost: localhost:"), "{:?}", moved.request());
}

#[test]
fn http_fails_on_500_on_refusal_and_on_an_answer_that_is_not_http() {
    if !python() {
        return;
    }
    let dir = tempdir("probe-http-fail");
    let err = Server::start(&dir, "500", &[]);
    let url = format!("http://127.0.0.1:{}/", err.port());
    assert_eq!(probe(&[&url]), (1, format!("unhealthy: {url} failed (HTTP/1.1 500 Internal Server Error)")));

    let refuse = Server::start(&dir, "refuse", &[]);
    let url = format!("http://127.0.0.1:{}/", refuse.port());
    let tcp = format!("tcp:127.0.0.1:{}", refuse.port());
    assert_eq!(
        probe(&[&url, &tcp]),
        (1, format!("unhealthy: {url} failed (Connection refused); {tcp} failed (Connection refused)"))
    );

    let garbage = Server::start(&dir, "garbage", &[]);
    let url = format!("http://127.0.0.1:{}/", garbage.port());
    // Sanitized: the escape sequence from the peer is shown as '?'.
    assert_eq!(
        probe(&[&url]),
        (1, format!("unhealthy: {url} failed (not an HTTP answer: SSH-2.0-OpenSSH?[2J)"))
    );
}

#[test]
fn the_timeout_holds_against_a_silent_peer_and_a_dripping_one() {
    if !python() {
        return;
    }
    let dir = tempdir("probe-slow");
    let timeout = Duration::from_secs(1);
    for (mode, why) in
        [("silent", "timed out waiting for an answer"), ("drip", "timed out in the status line: H")]
    {
        let server = Server::start(&dir, mode, &[]);
        let url = format!("http://127.0.0.1:{}/", server.port());
        let (code, out, err, took) = reaper(&["--probe", &url, "--timeout", "1s"]);
        assert_eq!((code, err.as_str()), (1, ""), "{mode}: {out}");
        // The drip has sent a byte or two by then: "H", "HT".
        assert!(out.starts_with(&format!("unhealthy: {url} failed ({why}")), "{mode}: {out}");
        assert!(took >= timeout, "{mode}: ended early, after {took:?}: {out}");
        // Generous for a loaded machine; without the deadline it would take 19 s (drip) or
        // forever (silent).
        assert!(took < timeout + Duration::from_secs(3), "{mode}: took {took:?}: {out}");
        println!("figure: --probe against a {mode} peer, --timeout 1s: {took:?}");
    }
    // A silent peer spends the whole budget: the checks after it are not run, and say so.
    let server = Server::start(&dir, "silent", &[]);
    let url = format!("http://127.0.0.1:{}/", server.port());
    let (code, out) = probe(&[&url, "file:/", "--timeout", "300ms"]);
    assert_eq!(code, 1);
    assert!(out.ends_with("; file:/ failed (not run: earlier checks used up --timeout)"), "{out}");
}

#[test]
fn tcp_over_ipv4_ipv6_and_localhost_and_no_dns() {
    if !python() {
        return;
    }
    let dir = tempdir("probe-tcp");
    let v4 = Server::start(&dir, "200", &[]);
    let by_ip = format!("tcp:127.0.0.1:{}", v4.port());
    let by_name = format!("tcp:localhost:{}", v4.port());
    assert_eq!(
        probe(&[&by_ip, &by_name]),
        (0, format!("healthy: {by_ip} ok (connected); {by_name} ok (connected)"))
    );
    let v6 = Server::start(&dir, "v6", &[]);
    if v6.port() == "none" {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "skipped: IPv6 probe: no ::1 here");
    } else {
        let tcp = format!("tcp:[::1]:{}", v6.port());
        let http = format!("http://[::1]:{}/", v6.port());
        assert_eq!(
            probe(&[&tcp, &http]),
            (0, format!("healthy: {tcp} ok (connected); {http} ok (HTTP/1.1 200 OK)"))
        );
        assert!(v6.request().contains(&format!("\r\nHost: [::1]:{}\r\n", v6.port())), "{:?}", v6.request());
    }
    // .invalid never resolves, and reaper asks no DNS server anyway.
    assert_eq!(
        probe(&["tcp:no-such-host.invalid:80"]),
        (
            1,
            "unhealthy: tcp:no-such-host.invalid:80 failed (no address for 'no-such-host.invalid' in \
             /etc/hosts; reaper does no DNS)"
                .into()
        )
    );
}

#[test]
fn unix_sockets_by_path_and_abstract_name() {
    if !python() {
        return;
    }
    let dir = tempdir("probe-unix");
    let path = dir.join("app.sock");
    let path = path.to_str().expect("utf-8");
    let _server = Server::start(&dir, "unix", &[path]);
    let abstract_name = format!("@reaper-probe-test-{}", std::process::id());
    let _abstract = {
        let d = dir.join("abstract");
        std::fs::create_dir(&d).expect("mkdir");
        Server::start(&d, "unix", &[&abstract_name])
    };
    let by_path = format!("unix:{path}");
    let by_name = format!("unix:{abstract_name}");
    assert_eq!(
        probe(&[&by_path, &by_name]),
        (0, format!("healthy: {by_path} ok (connected); {by_name} ok (connected)"))
    );
    // A file that is not a socket, a missing one.
    let not_socket = dir.join("plain");
    std::fs::write(&not_socket, "").expect("write");
    let plain = format!("unix:{}", not_socket.display());
    let missing = format!("unix:{}/missing.sock", dir.display());
    assert_eq!(
        probe(&[&plain, &missing]),
        (
            1,
            format!(
                "unhealthy: {plain} failed (Connection refused); {missing} failed (No such file or directory)"
            )
        )
    );
}

#[test]
fn files_exist_and_heartbeats_are_fresh_or_stale() {
    let dir = tempdir("probe-file");
    let beat = dir.join("heartbeat");
    std::fs::write(&beat, "").expect("write");
    let exists = format!("file:{}", beat.display());
    let fresh = format!("fresh:1m:{}", beat.display());
    let (code, out) = probe(&[&exists, &fresh]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with(&format!("healthy: {exists} ok (exists); {fresh} ok (modified ")), "{out}");

    let f = std::fs::File::options().write(true).open(&beat).expect("open");
    f.set_modified(SystemTime::now() - Duration::from_secs(125)).expect("set mtime");
    let (code, out) = probe(&[&fresh]);
    assert_eq!(code, 1, "{out}");
    // 125 s, or 126 on a slow machine: the age is whole seconds.
    assert!(out.starts_with(&format!("unhealthy: {fresh} failed (modified 2m0")), "{out}");

    let missing = format!("file:{}/none", dir.display());
    assert_eq!(probe(&[&missing]), (1, format!("unhealthy: {missing} failed (No such file or directory)")));
}

#[test]
fn max_zombies_is_one_more_check() {
    // PID 1 of a new PID namespace: reaper is its only process, so 0 zombies exactly.
    let (code, out, err) =
        run_with_timeout(&mut reaper_cmd(Mode::Pid1, ["--probe", "file:/", "--max-zombies", "0"]), T);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "healthy: file:/ ok (exists); --max-zombies 0 ok (0 zombies)\n", "")
    );
}

#[test]
fn bad_checks_are_usage_errors_naming_probe() {
    for (args, message) in [
        (&["--probe", "ftp://h/"][..], "--probe 'ftp://h/': unknown kind 'ftp:'"),
        (&["--probe", "https://h/"], "--probe 'https://h/': plain HTTP only"),
        (&["--probe", "tcp:h:0"], "--probe 'tcp:h:0': bad port '0' (1-65535)"),
        (&["--probe", "tcp::80"], "--probe 'tcp::80': empty host"),
        (&["--probe", "tcp:h"], "--probe 'tcp:h': missing port"),
        (&["--probe", "http://h/a b"], "--probe 'http://h/a b': the path must be printable ASCII"),
        (&["--probe", "http://h/\r\nX: y"], "--probe 'http://h/\\r\\nX: y': control character in the check"),
        (&["--probe", "file:"], "--probe 'file:': empty path"),
        (&["--probe", "fresh:x:/f"], "--probe 'fresh:x:/f': invalid duration 'x'"),
        (&["--probe"], "missing argument for option '--probe'"),
        (&["--probe", "file:/", "--timeout", "0"], "--timeout: must be more than 0"),
        (&["--probe", "file:/", "--timeout", "x"], "--timeout: invalid duration 'x'"),
        (&["--timeout", "1s"], "--timeout needs --probe"),
        (&["--probe", "file:/", "true"], "--probe takes no COMMAND"),
        (
            &["--probe", "file:/", "--drain", "1s"],
            "--probe takes no other option than --timeout and --max-zombies",
        ),
        (&["--probe", "file:/", "--ps"], "--ps takes no other option than --max-zombies"),
    ] {
        let (code, out, err, _) = reaper(args);
        assert_eq!((code, out.as_str()), (2, ""), "{args:?}: {err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(first.starts_with(&format!("reaper: {message}")), "{args:?}: {err}");
        assert_eq!(err.lines().nth(1), Some("Try 'reaper --help'."), "{args:?}: {err}");
    }
}

#[test]
fn the_environment_of_an_init_does_not_break_a_probe() {
    // `docker exec` and HEALTHCHECK pass the container's REAPER_* variables.
    let mut cmd = reaper_cmd(Mode::Subreaper, ["--probe", "file:/"]);
    cmd.env("REAPER_DRAIN", "nonsense");
    let (code, out, err) = run_with_timeout(&mut cmd, T);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "healthy: file:/ ok (exists)\n", ""));
}

#[test]
fn term_and_int_end_a_probe_at_once() {
    // reaper blocks every signal from its first instruction (for the init's signalfd); a probe
    // must not keep that mask, or Ctrl-C and `timeout(1)` wait for all of --timeout.
    if !python() {
        return;
    }
    use std::os::unix::process::ExitStatusExt;
    let dir = tempdir("probe-term");
    let server = Server::start(&dir, "silent", &[]);
    let url = format!("http://127.0.0.1:{}/", server.port());
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_reaper"))
            .args(["--probe", &url, "--timeout", "300s"])
            .stdout(Stdio::null())
            .spawn()
            .expect("reaper");
        let pid = child.id() as i32;
        // Mid-check: its socket is open, so the signal comes after main's first instruction.
        let fds = format!("/proc/{pid}/fd");
        let connected = wait_until(T, || {
            std::fs::read_dir(&fds).into_iter().flatten().flatten().any(|e| {
                std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
            })
        });
        // SAFETY: kill(2) on the child we spawned and have not reaped.
        unsafe { libc::kill(pid, sig) };
        let mut status = None;
        wait_until(T, || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(connected, "signal {sig}: the probe never connected");
        assert_eq!(status.and_then(|s| s.signal()), Some(sig), "signal {sig}: {status:?}");
    }
}

#[test]
fn a_hosts_file_cut_at_its_size_limit_gives_no_name_a_prefix_address() {
    // /etc/hosts is read up to 64 KiB: the line cut there must not make "abcdefghi" resolve
    // when the file says "abcdefghijklmnopqrstuvwxyz".
    if !need_root("a_hosts_file_cut_at_its_size_limit_gives_no_name_a_prefix_address") {
        return;
    }
    if which("unshare").is_none() {
        println!("skipped: no unshare");
        return;
    }
    let dir = tempdir("probe-hosts-cut");
    let hosts = dir.join("hosts");
    let mut text = vec![b'#'; 65_536 - 20];
    text.extend_from_slice(b"\n127.0.0.1 abcdefghijklmnopqrstuvwxyz\n");
    std::fs::write(&hosts, &text).expect("hosts");
    let script = format!(
        "mount --bind {} /etc/hosts && exec {} --probe tcp:abcdefghi:1",
        hosts.display(),
        env!("CARGO_BIN_EXE_reaper")
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c", &script]);
    // unshare(1) puts nothing in a process group of its own: run_with_timeout needs one.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let (code, out, err) = run_with_timeout(&mut cmd, T);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            1,
            "unhealthy: tcp:abcdefghi:1 failed (no address for 'abcdefghi' in /etc/hosts; reaper does no DNS)\n",
            ""
        )
    );
}

#[test]
fn a_name_with_several_addresses_reports_each_failure() {
    // Docker's /etc/hosts lists localhost as 127.0.0.1 and ::1; with IPv6 off, ::1 fails
    // with "Cannot assign requested address", and that alone hid the refusal on 127.0.0.1.
    // Here the second address is unreachable: a network namespace with only loopback.
    let test = "a_name_with_several_addresses_reports_each_failure";
    if !need_root(test) {
        return;
    }
    if which("unshare").is_none() || which("ip").is_none() {
        println!("skipped: {test}: no unshare or ip");
        return;
    }
    let dir = tempdir("probe-two-addresses");
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, "127.0.0.1 svc\n192.0.2.1 svc\n").expect("hosts");
    let script = format!(
        "ip link set lo up && mount --bind {} /etc/hosts && exec {} --probe tcp:svc:1",
        hosts.display(),
        env!("CARGO_BIN_EXE_reaper")
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-n", "-m", "sh", "-c", &script]);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let (code, out, err) = run_with_timeout(&mut cmd, T);
    // In the C library's own words, as reaper prints them: glibc says "Network is
    // unreachable", musl (the aarch64 run) "Network unreachable".
    let unreachable = std::io::Error::from_raw_os_error(libc::ENETUNREACH).to_string();
    let unreachable = unreachable.split(" (os error").next().unwrap_or_default();
    let want =
        format!("unhealthy: tcp:svc:1 failed (127.0.0.1: Connection refused, 192.0.2.1: {unreachable})\n");
    assert_eq!((code, out.as_str(), err.as_str()), (1, want.as_str(), ""));
}
